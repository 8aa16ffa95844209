/* SPDX-License-Identifier: GPL-2.0-only
 *
 * template.h - the probe: Ethernet + IPv4 + TCP SYN with one MSS option, 58 bytes.
 *
 * Everything constant in a probe is written once at init, together with the one's complement
 * sums of the constant parts of the IPv4 header and of the TCP segment plus pseudo-header.
 * fill() copies the frame, writes the five per-probe fields (destination address, source and
 * destination port, sequence number, IP ID) and finishes both checksums by adding only those
 * fields to the precomputed sums.
 *
 * Invariant: every frame fill() writes is a well-formed probe whose IPv4 header checksum and
 * TCP checksum (RFC 793 pseudo-header) verify. The sums work on 16-bit words as they sit in
 * memory, which makes them independent of host byte order (RFC 1071 section 2(B)).
 */
#ifndef PYSCAN_TEMPLATE_H
#define PYSCAN_TEMPLATE_H

#include <stdint.h>
#include <string.h>

#define PYSCAN_SYN_FRAME_LEN 58
#define PYSCAN_SYN_IP_OFFSET 14
#define PYSCAN_SYN_TCP_OFFSET 34

struct pyscan_syn_template {
	uint8_t frame[64];    /* PYSCAN_SYN_FRAME_LEN bytes used; per-probe fields zero */
	uint32_t ip_sum;      /* unfolded sum of the constant IPv4 header words */
	uint32_t tcp_sum;     /* unfolded sum of the constant TCP + pseudo-header words */
};

_Static_assert(sizeof(struct pyscan_syn_template) == 72, "pyscan_syn_template layout");

/* saddr_be in network byte order as it goes on the wire; ttl, mss, window host order. */
void pyscan_template__init(struct pyscan_syn_template *t, const uint8_t src_mac[6],
			   const uint8_t dst_mac[6], uint32_t saddr_be, uint8_t ttl, uint16_t mss,
			   uint16_t window);
/* Out-of-line copy of pyscan_template__fill for Python. */
uint32_t pyscan_template__fill_export(const struct pyscan_syn_template *t, uint8_t *out,
				      uint32_t daddr_be, uint16_t sport_be, uint16_t dport_be,
				      uint32_t seq_host, uint16_t ip_id_host);

static inline uint16_t pyscan_template__fold(uint64_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Writes the whole frame into out (at least PYSCAN_SYN_FRAME_LEN bytes) and returns its length. */
static inline uint32_t pyscan_template__fill(const struct pyscan_syn_template *t, uint8_t *out,
					     uint32_t daddr_be, uint16_t sport_be, uint16_t dport_be,
					     uint32_t seq_host, uint16_t ip_id_host)
{
	const uint32_t seq_be = __builtin_bswap32(seq_host);
	const uint16_t ip_id_be = __builtin_bswap16(ip_id_host);
	uint8_t *ip = out + PYSCAN_SYN_IP_OFFSET;
	uint8_t *tcp = out + PYSCAN_SYN_TCP_OFFSET;

	memcpy(out, t->frame, PYSCAN_SYN_FRAME_LEN);

	const uint64_t daddr_words = (daddr_be & 0xffff) + (daddr_be >> 16);
	const uint16_t ip_check = pyscan_template__fold(t->ip_sum + daddr_words + ip_id_be);
	const uint16_t tcp_check = pyscan_template__fold(t->tcp_sum + daddr_words + sport_be +
							 dport_be + (seq_be & 0xffff) + (seq_be >> 16));

	memcpy(ip + 4, &ip_id_be, 2);
	memcpy(ip + 10, &ip_check, 2);
	memcpy(ip + 16, &daddr_be, 4);
	memcpy(tcp + 0, &sport_be, 2);
	memcpy(tcp + 2, &dport_be, 2);
	memcpy(tcp + 4, &seq_be, 4);
	memcpy(tcp + 16, &tcp_check, 2);
	return PYSCAN_SYN_FRAME_LEN;
}

#endif /* PYSCAN_TEMPLATE_H */
