/* SPDX-License-Identifier: GPL-2.0-only
 *
 * template.c - builds the constant part of the SYN probe and its partial checksums.
 *
 * Invariant: the per-probe fields (IP ID, IP checksum, destination address, ports, sequence
 * number, TCP checksum) are zero in t->frame, so summing the frame's words gives exactly the
 * constant contribution that fill() completes.
 */
#include <string.h>

#include "template.h"

#define ETHERTYPE_IPV4 0x0800
#define IP_PROTO_TCP 6
#define IP_FLAG_DONT_FRAGMENT 0x4000
#define TCP_FLAG_SYN 0x02
#define TCP_OPTION_MSS 2
#define TCP_OPTION_MSS_LEN 4
#define IP_HEADER_LEN 20
#define TCP_SEGMENT_LEN (20 + TCP_OPTION_MSS_LEN)

_Static_assert(PYSCAN_SYN_FRAME_LEN == PYSCAN_SYN_TCP_OFFSET + TCP_SEGMENT_LEN, "frame length");

static void put_be16(uint8_t *at, uint16_t v)
{
	at[0] = (uint8_t)(v >> 8);
	at[1] = (uint8_t)v;
}

/* Sum of len bytes read as 16-bit words in memory order (len even). */
static uint32_t sum_words(const uint8_t *at, uint32_t len)
{
	uint32_t sum = 0;
	for (uint32_t i = 0; i < len; i += 2) {
		uint16_t word;
		memcpy(&word, at + i, 2);
		sum += word;
	}
	return sum;
}

void pyscan_template__init(struct pyscan_syn_template *t, const uint8_t src_mac[6],
			   const uint8_t dst_mac[6], uint32_t saddr_be, uint8_t ttl, uint16_t mss,
			   uint16_t window)
{
	uint8_t *eth = t->frame, *ip = t->frame + PYSCAN_SYN_IP_OFFSET;
	uint8_t *tcp = t->frame + PYSCAN_SYN_TCP_OFFSET;

	memset(t, 0, sizeof(*t));
	memcpy(eth, dst_mac, 6);
	memcpy(eth + 6, src_mac, 6);
	put_be16(eth + 12, ETHERTYPE_IPV4);

	ip[0] = 0x45; /* version 4, 5 words of header */
	put_be16(ip + 2, IP_HEADER_LEN + TCP_SEGMENT_LEN);
	put_be16(ip + 6, IP_FLAG_DONT_FRAGMENT);
	ip[8] = ttl;
	ip[9] = IP_PROTO_TCP;
	memcpy(ip + 12, &saddr_be, 4);

	tcp[12] = (TCP_SEGMENT_LEN / 4) << 4; /* data offset in words */
	tcp[13] = TCP_FLAG_SYN;
	put_be16(tcp + 14, window);
	tcp[20] = TCP_OPTION_MSS;
	tcp[21] = TCP_OPTION_MSS_LEN;
	put_be16(tcp + 22, mss);

	uint8_t pseudo_tail[4]; /* zero, protocol, TCP length; the addresses are summed from ip */
	pseudo_tail[0] = 0;
	pseudo_tail[1] = IP_PROTO_TCP;
	put_be16(pseudo_tail + 2, TCP_SEGMENT_LEN);

	t->ip_sum = sum_words(ip, IP_HEADER_LEN);
	t->tcp_sum = sum_words(ip + 12, 4) + sum_words(pseudo_tail, 4) + sum_words(tcp, TCP_SEGMENT_LEN);
}

uint32_t pyscan_template__fill_export(const struct pyscan_syn_template *t, uint8_t *out,
				      uint32_t daddr_be, uint16_t sport_be, uint16_t dport_be,
				      uint32_t seq_host, uint16_t ip_id_host)
{
	return pyscan_template__fill(t, out, daddr_be, sport_be, dport_be, seq_host, ip_id_host);
}
