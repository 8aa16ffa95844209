/* SPDX-License-Identifier: GPL-2.0-only
 *
 * template.h - the probe: Ethernet + IPv4 + TCP SYN, shaped like one real stack's SYN (a TCP
 * option profile: option kinds and order, window, window scale, IP flags, TTL family), from
 * 54 bytes (no options) to 78 (bsd).
 *
 * Everything constant in a probe is written once at init, together with the one's complement
 * sums of the constant parts of the IPv4 header and of the TCP segment plus pseudo-header.
 * fill() copies the frame, writes the per-probe fields (destination address, source and
 * destination port, sequence number, IP ID and, in profiles with a timestamp option, its
 * value) and finishes both checksums by adding only those fields to the precomputed sums.
 * The copy is always PYSCAN_SYN_COPY_LEN bytes (a constant-size copy the compiler inlines);
 * the frame's length is the template's frame_len.
 *
 * Invariant: every frame fill() writes is a well-formed probe whose IPv4 header checksum and
 * TCP checksum (RFC 793 pseudo-header) verify. The sums work on 16-bit words as they sit in
 * memory, which makes them independent of host byte order (RFC 1071 section 2(B)); every
 * per-probe field starts at an even offset of its header.
 */
#ifndef PYSCAN_TEMPLATE_H
#define PYSCAN_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* TCP option profiles (--tcp-options), each a copy of that stack's SYN:
 *  windows  Windows 10/11: MSS, NOP, WS 8, NOP, NOP, SACK-permitted; window 64240; TTL 128
 *  linux    Linux 5/6: MSS, SACK-permitted, timestamps, NOP, WS 7; window 64240; TTL 64
 *  bsd      macOS/BSD: MSS, NOP, WS 6, NOP, NOP, timestamps, SACK-permitted, EOL, EOL;
 *           window 65535; TTL 64
 *  mss      MSS only, window 1024, TTL 64: the minimum probe with an option (benchmarks)
 *  none     no options, window 1024, TTL 64
 * All set DF, TOS 0, MSS 1460. */
#define PYSCAN_TCP_OPTIONS_WINDOWS 0
#define PYSCAN_TCP_OPTIONS_LINUX 1
#define PYSCAN_TCP_OPTIONS_BSD 2
#define PYSCAN_TCP_OPTIONS_MSS 3
#define PYSCAN_TCP_OPTIONS_NONE 4
#define PYSCAN_TCP_OPTIONS_COUNT 5

#define PYSCAN_SYN_FRAME_LEN 58     /* the mss profile's frame */
#define PYSCAN_SYN_MAX_FRAME_LEN 78 /* the longest profile's frame (bsd) */
#define PYSCAN_SYN_COPY_LEN 80      /* bytes fill() writes, whatever the profile */
#define PYSCAN_SYN_IP_OFFSET 14
#define PYSCAN_SYN_TCP_OFFSET 34

struct pyscan_syn_template {
	uint8_t frame[PYSCAN_SYN_COPY_LEN]; /* frame_len bytes used; per-probe fields zero */
	uint32_t ip_sum;      /* unfolded sum of the constant IPv4 header words */
	uint32_t tcp_sum;     /* unfolded sum of the constant TCP + pseudo-header words */
	uint16_t frame_len;
	uint16_t tsval_offset; /* offset in frame of the timestamp value; 0 = no timestamp */
	uint8_t profile;      /* PYSCAN_TCP_OPTIONS_* */
	uint8_t reserved[3];
};

_Static_assert(sizeof(struct pyscan_syn_template) == 96, "pyscan_syn_template layout");

/* saddr_be in network byte order as it goes on the wire; ttl, mss, window host order, each 0
 * for the profile's own value. Returns 0, or -1 when the profile is unknown. */
int pyscan_template__init(struct pyscan_syn_template *t, const uint8_t src_mac[6],
			  const uint8_t dst_mac[6], uint32_t saddr_be, uint32_t profile,
			  uint8_t ttl, uint16_t mss, uint16_t window);
/* The one line a module's init() gives when pyscan_template__init (or template6's) refused
 * profile: a TCP options profile that is not one of PYSCAN_TCP_OPTIONS_*. */
static inline void pyscan_template__unknown_profile(char *err, size_t errlen, uint32_t profile)
{
	if (err && errlen)
		snprintf(err, errlen, "TCP options profile %u is unknown (known: 0..%d, "
			 "see template.h)", profile, PYSCAN_TCP_OPTIONS_COUNT - 1);
}
/* The profile's name ("windows", ...), or NULL when unknown. */
const char *pyscan_template__profile_name(uint32_t profile);
/* Out-of-line copy of pyscan_template__fill for Python. */
uint32_t pyscan_template__fill_export(const struct pyscan_syn_template *t, uint8_t *out,
				      uint32_t daddr_be, uint16_t sport_be, uint16_t dport_be,
				      uint32_t seq_host, uint16_t ip_id_host, uint32_t tsval_host);

/* Sum of len bytes read as 16-bit words in memory order (len even), unfolded: the constant
 * parts init() sums, for the IPv4 template and the IPv6 one (template6.c). */
static inline uint32_t pyscan_template__sum_words(const uint8_t *at, uint32_t len)
{
	uint32_t sum = 0;
	for (uint32_t i = 0; i < len; i += 2) {
		uint16_t word;
		memcpy(&word, at + i, 2);
		sum += word;
	}
	return sum;
}

static inline uint16_t pyscan_template__fold(uint64_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* pyscan_template__fill for a caller that knows whether the profile has a timestamp option
 * (has_timestamp == (t->tsval_offset != 0)): with a constant flag the compiler drops the
 * other profile's branches from the caller's frame loop. */
static inline __attribute__((always_inline)) uint32_t pyscan_template__fill_as(
	const struct pyscan_syn_template *t, uint8_t *out, uint32_t daddr_be, uint16_t sport_be,
	uint16_t dport_be, uint32_t seq_host, uint16_t ip_id_host, uint32_t tsval_host,
	const int has_timestamp)
{
	const uint32_t seq_be = __builtin_bswap32(seq_host);
	const uint16_t ip_id_be = __builtin_bswap16(ip_id_host);
	uint8_t *ip = out + PYSCAN_SYN_IP_OFFSET;
	uint8_t *tcp = out + PYSCAN_SYN_TCP_OFFSET;

	memcpy(out, t->frame, PYSCAN_SYN_COPY_LEN);

	const uint64_t daddr_words = (daddr_be & 0xffff) + (daddr_be >> 16);
	uint64_t tcp_sum = t->tcp_sum + daddr_words + sport_be + dport_be + (seq_be & 0xffff) +
			   (seq_be >> 16);
	if (has_timestamp) {
		const uint32_t tsval_be = __builtin_bswap32(tsval_host);
		memcpy(out + t->tsval_offset, &tsval_be, 4);
		tcp_sum += (tsval_be & 0xffff) + (tsval_be >> 16);
	}
	const uint16_t ip_check = pyscan_template__fold(t->ip_sum + daddr_words + ip_id_be);
	const uint16_t tcp_check = pyscan_template__fold(tcp_sum);

	memcpy(ip + 4, &ip_id_be, 2);
	memcpy(ip + 10, &ip_check, 2);
	memcpy(ip + 16, &daddr_be, 4);
	memcpy(tcp + 0, &sport_be, 2);
	memcpy(tcp + 2, &dport_be, 2);
	memcpy(tcp + 4, &seq_be, 4);
	memcpy(tcp + 16, &tcp_check, 2);
	return t->frame_len;
}

/* Writes the frame into out (at least PYSCAN_SYN_COPY_LEN bytes) and returns its length.
 * tsval_host is ignored by profiles without a timestamp option. */
static inline uint32_t pyscan_template__fill(const struct pyscan_syn_template *t, uint8_t *out,
					     uint32_t daddr_be, uint16_t sport_be, uint16_t dport_be,
					     uint32_t seq_host, uint16_t ip_id_host,
					     uint32_t tsval_host)
{
	return pyscan_template__fill_as(t, out, daddr_be, sport_be, dport_be, seq_host,
					ip_id_host, tsval_host, t->tsval_offset != 0);
}

#endif /* PYSCAN_TEMPLATE_H */
