/* SPDX-License-Identifier: GPL-2.0-only
 *
 * template6.h - the IPv6 SYN probe: Ethernet + IPv6 + TCP SYN with the same TCP option
 * profiles as the IPv4 probe (template.h), from 74 bytes (no options) to 98 (bsd).
 *
 * Built from the IPv4 template of the same profile (pyscan_template__init), so the option
 * bytes, window, MSS and TTL family are the IPv4 probe's by construction: the TCP segment is
 * copied as is and the hop limit is the IPv4 TTL (the profile's family, or the --ttl value).
 * The fixed header has traffic class 0 and flow label 0, next header TCP and no extension
 * headers. fill() copies the frame and completes the TCP checksum, whose constant part
 * (source address, the RFC 8200 pseudo-header's length and next header, the constant TCP
 * words) is summed once at init.
 *
 * Invariant: every frame fill() writes is a well-formed probe whose TCP checksum over the
 * IPv6 pseudo-header verifies; sums are over 16-bit words in memory order (RFC 1071 2(B)).
 */
#ifndef PYSCAN_TEMPLATE6_H
#define PYSCAN_TEMPLATE6_H

#include <stdint.h>
#include <string.h>

#include "template.h"

#define PYSCAN_SYN6_IP_OFFSET 14
#define PYSCAN_SYN6_TCP_OFFSET 54
#define PYSCAN_SYN6_MAX_FRAME_LEN (PYSCAN_SYN_MAX_FRAME_LEN + 20) /* 98: bsd */
#define PYSCAN_SYN6_COPY_LEN 104  /* bytes fill() writes, whatever the profile */

struct pyscan_syn6_template {
	uint8_t frame[PYSCAN_SYN6_COPY_LEN]; /* frame_len used; per-probe fields zero */
	uint32_t tcp_sum;      /* unfolded sum of the constant TCP + pseudo-header words */
	uint16_t frame_len;
	uint16_t tsval_offset; /* offset in frame of the timestamp value; 0 = none */
	uint8_t profile;
	uint8_t reserved[7];
};

_Static_assert(sizeof(struct pyscan_syn6_template) == 120, "pyscan_syn6_template layout");

/* saddr_be: the scanner's 16-byte address; ttl (hop limit), mss, window 0 = the profile's.
 * 0, or -1 when the profile is unknown. */
int pyscan_template6__init(struct pyscan_syn6_template *t, const uint8_t src_mac[6],
			   const uint8_t dst_mac[6], const uint8_t saddr_be[16], uint32_t profile,
			   uint8_t ttl, uint16_t mss, uint16_t window);
/* Out-of-line copy of pyscan_template6__fill for Python. */
uint32_t pyscan_template6__fill_export(const struct pyscan_syn6_template *t, uint8_t *out,
				       const uint8_t daddr_be[16], uint16_t sport_be,
				       uint16_t dport_be, uint32_t seq_host, uint32_t tsval_host);

/* The 16-bit words of a 64-bit memory word, summed without folding (two 32-bit halves: the
 * fold at the end makes it the same one's complement sum). */
static inline uint64_t pyscan_template6__sum64(uint64_t x)
{
	return (x & 0xffffffffu) + (x >> 32);
}

/* Writes the frame into out (at least PYSCAN_SYN6_COPY_LEN bytes), returns its length. */
static inline uint32_t pyscan_template6__fill(const struct pyscan_syn6_template *t, uint8_t *out,
					      const uint8_t daddr_be[16], uint16_t sport_be,
					      uint16_t dport_be, uint32_t seq_host,
					      uint32_t tsval_host)
{
	const uint32_t seq_be = __builtin_bswap32(seq_host);
	uint8_t *tcp = out + PYSCAN_SYN6_TCP_OFFSET;
	uint64_t d0, d1;

	memcpy(out, t->frame, PYSCAN_SYN6_COPY_LEN);
	memcpy(&d0, daddr_be, 8);
	memcpy(&d1, daddr_be + 8, 8);
	uint64_t sum = t->tcp_sum + pyscan_template6__sum64(d0) + pyscan_template6__sum64(d1) +
		       sport_be + dport_be + (seq_be & 0xffff) + (seq_be >> 16);
	if (t->tsval_offset) {
		const uint32_t tsval_be = __builtin_bswap32(tsval_host);
		memcpy(out + t->tsval_offset, &tsval_be, 4);
		sum += (tsval_be & 0xffff) + (tsval_be >> 16);
	}
	const uint16_t check = pyscan_template__fold(sum);

	memcpy(out + PYSCAN_SYN6_IP_OFFSET + 24, &d0, 8);
	memcpy(out + PYSCAN_SYN6_IP_OFFSET + 32, &d1, 8);
	memcpy(tcp + 0, &sport_be, 2);
	memcpy(tcp + 2, &dport_be, 2);
	memcpy(tcp + 4, &seq_be, 4);
	memcpy(tcp + 16, &check, 2);
	return t->frame_len;
}

#endif /* PYSCAN_TEMPLATE6_H */
