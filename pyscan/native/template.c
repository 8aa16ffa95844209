/* SPDX-License-Identifier: GPL-2.0-only
 *
 * template.c - builds the constant part of the SYN probe for a TCP option profile, and its
 * partial checksums.
 *
 * The profiles copy what each stack puts in its SYN (observed with tcpdump on the stacks
 * themselves and as zmap 4 sends them): the options in that stack's order, its window and
 * window scale, DF set, and its TTL family. Timestamp options carry a per-probe value (fill)
 * and an echo of 0, as in any first SYN.
 *
 * Invariant: the per-probe fields (IP ID, IP checksum, destination address, ports, sequence
 * number, timestamp value, TCP checksum) are zero in t->frame, so summing the frame's words
 * gives exactly the constant contribution that fill() completes. The timestamp value starts
 * at an even offset of the TCP header, so it adds as two whole 16-bit words.
 */
#include <stddef.h>
#include <string.h>

#include "template.h"

#define ETHERTYPE_IPV4 0x0800
#define IP_PROTO_TCP 6
#define IP_FLAG_DONT_FRAGMENT 0x4000
#define TCP_FLAG_SYN 0x02
#define IP_HEADER_LEN 20
#define TCP_HEADER_LEN 20
#define DEFAULT_MSS 1460
#define OPT_EOL 0
#define OPT_NOP 1
#define OPT_MSS 2
#define OPT_WSCALE 3
#define OPT_SACK_OK 4
#define OPT_TIMESTAMP 8
#define MSS_HI (DEFAULT_MSS >> 8)
#define MSS_LO (DEFAULT_MSS & 0xff)
#define TS_ZERO 0, 0, 0, 0
#define MAX_OPTIONS_LEN (PYSCAN_SYN_MAX_FRAME_LEN - PYSCAN_SYN_TCP_OFFSET - TCP_HEADER_LEN)

struct profile {
	const char *name;
	uint16_t window;
	uint8_t ttl;
	uint8_t options_len;  /* a multiple of 4 */
	uint8_t mss_at;       /* offset of the MSS value in options */
	uint8_t tsval_at;     /* offset of the timestamp value in options; 0 = none */
	uint8_t options[MAX_OPTIONS_LEN];
};

static const struct profile profiles[PYSCAN_TCP_OPTIONS_COUNT] = {
	[PYSCAN_TCP_OPTIONS_WINDOWS] = {
		"windows", 64240, 128, 12, 2, 0,
		{OPT_MSS, 4, MSS_HI, MSS_LO, OPT_NOP, OPT_WSCALE, 3, 8, OPT_NOP, OPT_NOP,
		 OPT_SACK_OK, 2}},
	[PYSCAN_TCP_OPTIONS_LINUX] = {
		"linux", 64240, 64, 20, 2, 8,
		{OPT_MSS, 4, MSS_HI, MSS_LO, OPT_SACK_OK, 2, OPT_TIMESTAMP, 10, TS_ZERO, TS_ZERO,
		 OPT_NOP, OPT_WSCALE, 3, 7}},
	[PYSCAN_TCP_OPTIONS_BSD] = {
		"bsd", 65535, 64, 24, 2, 12,
		{OPT_MSS, 4, MSS_HI, MSS_LO, OPT_NOP, OPT_WSCALE, 3, 6, OPT_NOP, OPT_NOP,
		 OPT_TIMESTAMP, 10, TS_ZERO, TS_ZERO, OPT_SACK_OK, 2, OPT_EOL, OPT_EOL}},
	[PYSCAN_TCP_OPTIONS_MSS] = {"mss", 1024, 64, 4, 2, 0, {OPT_MSS, 4, MSS_HI, MSS_LO}},
	[PYSCAN_TCP_OPTIONS_NONE] = {"none", 1024, 64, 0, 0, 0, {0}},
};

_Static_assert(PYSCAN_SYN_FRAME_LEN == PYSCAN_SYN_TCP_OFFSET + TCP_HEADER_LEN + 4,
	       "the mss profile's frame length");
_Static_assert(PYSCAN_SYN_MAX_FRAME_LEN <= PYSCAN_SYN_COPY_LEN, "fill copies whole frames");

static void put_be16(uint8_t *at, uint16_t v)
{
	at[0] = (uint8_t)(v >> 8);
	at[1] = (uint8_t)v;
}

const char *pyscan_template__profile_name(uint32_t profile)
{
	return profile < PYSCAN_TCP_OPTIONS_COUNT ? profiles[profile].name : NULL;
}

int pyscan_template__init(struct pyscan_syn_template *t, const uint8_t src_mac[6],
			  const uint8_t dst_mac[6], uint32_t saddr_be, uint32_t profile,
			  uint8_t ttl, uint16_t mss, uint16_t window)
{
	if (profile >= PYSCAN_TCP_OPTIONS_COUNT)
		return -1;
	const struct profile *p = &profiles[profile];
	const uint32_t segment_len = TCP_HEADER_LEN + p->options_len;
	uint8_t *eth = t->frame, *ip = t->frame + PYSCAN_SYN_IP_OFFSET;
	uint8_t *tcp = t->frame + PYSCAN_SYN_TCP_OFFSET;

	memset(t, 0, sizeof(*t));
	memcpy(eth, dst_mac, 6);
	memcpy(eth + 6, src_mac, 6);
	put_be16(eth + 12, ETHERTYPE_IPV4);

	ip[0] = 0x45; /* version 4, 5 words of header */
	put_be16(ip + 2, (uint16_t)(IP_HEADER_LEN + segment_len));
	put_be16(ip + 6, IP_FLAG_DONT_FRAGMENT);
	ip[8] = ttl ? ttl : p->ttl;
	ip[9] = IP_PROTO_TCP;
	memcpy(ip + 12, &saddr_be, 4);

	tcp[12] = (uint8_t)((segment_len / 4) << 4); /* data offset in words */
	tcp[13] = TCP_FLAG_SYN;
	put_be16(tcp + 14, window ? window : p->window);
	memcpy(tcp + TCP_HEADER_LEN, p->options, p->options_len);
	if (p->options_len && mss)
		put_be16(tcp + TCP_HEADER_LEN + p->mss_at, mss);

	uint8_t pseudo_tail[4]; /* zero, protocol, TCP length; the addresses are summed from ip */
	pseudo_tail[0] = 0;
	pseudo_tail[1] = IP_PROTO_TCP;
	put_be16(pseudo_tail + 2, (uint16_t)segment_len);

	t->frame_len = (uint16_t)(PYSCAN_SYN_TCP_OFFSET + segment_len);
	t->tsval_offset = p->tsval_at ? (uint16_t)(PYSCAN_SYN_TCP_OFFSET + TCP_HEADER_LEN +
						   p->tsval_at) : 0;
	t->profile = (uint8_t)profile;
	t->ip_sum = pyscan_template__sum_words(ip, IP_HEADER_LEN);
	t->tcp_sum = pyscan_template__sum_words(ip + 12, 4) + pyscan_template__sum_words(pseudo_tail, 4) + pyscan_template__sum_words(tcp, segment_len);
	return 0;
}

uint32_t pyscan_template__fill_export(const struct pyscan_syn_template *t, uint8_t *out,
				      uint32_t daddr_be, uint16_t sport_be, uint16_t dport_be,
				      uint32_t seq_host, uint16_t ip_id_host, uint32_t tsval_host)
{
	return pyscan_template__fill(t, out, daddr_be, sport_be, dport_be, seq_host, ip_id_host,
				     tsval_host);
}
