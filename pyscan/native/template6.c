/* SPDX-License-Identifier: GPL-2.0-only
 *
 * template6.c - the IPv6 SYN probe's constant part, made from the IPv4 probe of the same
 * profile (template6.h says why).
 *
 * Invariant: the per-probe fields (destination address, ports, sequence number, timestamp
 * value, TCP checksum) are zero in t->frame, so summing its words gives the constant part.
 */
#include <string.h>

#include "template6.h"

#define ETHERTYPE_IPV6 0x86dd
#define IPV6_HEADER_LEN 40
#define IP_PROTO_TCP 6

int pyscan_template6__init(struct pyscan_syn6_template *t, const uint8_t src_mac[6],
			   const uint8_t dst_mac[6], const uint8_t saddr_be[16], uint32_t profile,
			   uint8_t ttl, uint16_t mss, uint16_t window)
{
	struct pyscan_syn_template v4;
	if (pyscan_template__init(&v4, src_mac, dst_mac, 0, profile, ttl, mss, window) < 0)
		return -1;
	const uint32_t segment_len = v4.frame_len - PYSCAN_SYN_TCP_OFFSET;
	uint8_t *ip = t->frame + PYSCAN_SYN6_IP_OFFSET, *tcp = t->frame + PYSCAN_SYN6_TCP_OFFSET;

	memset(t, 0, sizeof(*t));
	memcpy(t->frame, v4.frame, 12); /* the MACs */
	t->frame[12] = ETHERTYPE_IPV6 >> 8;
	t->frame[13] = ETHERTYPE_IPV6 & 0xff;
	ip[0] = 0x60; /* version 6, traffic class 0, flow label 0 */
	ip[4] = (uint8_t)(segment_len >> 8);
	ip[5] = (uint8_t)segment_len;
	ip[6] = IP_PROTO_TCP;
	ip[7] = v4.frame[PYSCAN_SYN_IP_OFFSET + 8]; /* the profile's TTL family, or --ttl */
	memcpy(ip + 8, saddr_be, 16);
	/* The IPv4 segment has no per-probe value in it but those fill() writes here too. */
	memcpy(tcp, v4.frame + PYSCAN_SYN_TCP_OFFSET, segment_len);

	const uint8_t pseudo_tail[8] = {0, 0, (uint8_t)(segment_len >> 8), (uint8_t)segment_len,
					0, 0, 0, IP_PROTO_TCP};
	t->frame_len = (uint16_t)(PYSCAN_SYN6_TCP_OFFSET + segment_len);
	t->tsval_offset = v4.tsval_offset ?
		(uint16_t)(v4.tsval_offset - PYSCAN_SYN_TCP_OFFSET + PYSCAN_SYN6_TCP_OFFSET) : 0;
	t->profile = (uint8_t)profile;
	t->tcp_sum = pyscan_template__sum_words(ip + 8, 16) + pyscan_template__sum_words(pseudo_tail, 8) +
		     pyscan_template__sum_words(tcp, segment_len);
	return 0;
}

uint32_t pyscan_template6__fill_export(const struct pyscan_syn6_template *t, uint8_t *out,
				       const uint8_t daddr_be[16], uint16_t sport_be,
				       uint16_t dport_be, uint32_t seq_host, uint32_t tsval_host)
{
	return pyscan_template6__fill(t, out, daddr_be, sport_be, dport_be, seq_host, tsval_host);
}
