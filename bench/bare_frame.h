/* SPDX-License-Identifier: GPL-2.0-only
 *
 * bare_frame.h - the one constant frame the bare ceiling loops resend: Ethernet + IPv4 + TCP
 * SYN from 198.18.0.1 to 198.19.0.1:80 (or, by protocol, an ICMP echo request to 198.19.0.1
 * or a UDP datagram to 198.19.0.1:53), zero-padded to the requested length, with valid IPv4
 * and L4 checksums so that a sink or a capture sees a well-formed probe. The protocol and
 * length follow the pyscan probe a loop is set against, so the two send the same frame size.
 *
 * Invariant: the frame is len bytes exactly (no FCS; the NIC adds it),
 * len >= bare_frame_min(protocol), and it only ever targets the RFC 2544 benchmarking range
 * 198.18.0.0/15.
 */
#ifndef BARE_FRAME_H
#define BARE_FRAME_H

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#define BARE_FRAME_MIN 54 /* TCP; bare_frame_min() for the others */
#define BARE_PROTO_ICMP 1
#define BARE_PROTO_TCP 6
#define BARE_PROTO_UDP 17

/* "tcp", "icmp" or "udp" -> IP protocol number; -1 for anything else */
static inline int bare_frame_proto(const char *name)
{
	if (!strcmp(name, "tcp"))
		return BARE_PROTO_TCP;
	if (!strcmp(name, "icmp"))
		return BARE_PROTO_ICMP;
	if (!strcmp(name, "udp"))
		return BARE_PROTO_UDP;
	return -1;
}

static inline unsigned bare_frame_min(int proto)
{
	return proto == BARE_PROTO_TCP ? BARE_FRAME_MIN : 42; /* ICMP echo / UDP: 14 + 20 + 8 */
}

static uint32_t bare_sum(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

static uint16_t bare_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* variant changes the source port so that several senders' flows hash to different queues */
static void bare_frame_fill_proto(uint8_t *f, unsigned len, uint16_t variant, int proto)
{
	static const uint8_t dst_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	static const uint8_t src_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	uint8_t *ip = f + 14, *l4 = ip + 20, *tcp = l4, pseudo[12];
	unsigned ip_len = len - 14, tcp_len = ip_len - 20, l4_len = tcp_len;
	uint16_t sport = (uint16_t)(40000 + variant), csum;
	uint32_t sum;

	memset(f, 0, len);
	memcpy(f, dst_mac, 6);
	memcpy(f + 6, src_mac, 6);
	f[12] = 0x08;
	ip[0] = 0x45;
	ip[2] = (uint8_t)(ip_len >> 8);
	ip[3] = (uint8_t)ip_len;
	ip[8] = 64;  /* TTL */
	ip[9] = (uint8_t)proto;
	ip[12] = 198; ip[13] = 18; ip[14] = 0; ip[15] = 1;
	ip[16] = 198; ip[17] = 19; ip[18] = 0; ip[19] = 1;
	csum = htons(bare_fold(bare_sum(ip, 20, 0)));
	memcpy(ip + 10, &csum, 2);
	if (proto == BARE_PROTO_ICMP) {
		l4[0] = 8; /* echo request; id and sequence vary by sender as the source port does */
		l4[4] = (uint8_t)(sport >> 8);
		l4[5] = (uint8_t)sport;
		l4[7] = 1;
		csum = htons(bare_fold(bare_sum(l4, l4_len, 0)));
		memcpy(l4 + 2, &csum, 2);
		return;
	}
	if (proto == BARE_PROTO_UDP) {
		l4[0] = (uint8_t)(sport >> 8);
		l4[1] = (uint8_t)sport;
		l4[3] = 53;
		l4[4] = (uint8_t)(l4_len >> 8);
		l4[5] = (uint8_t)l4_len;
		memcpy(pseudo, ip + 12, 8);
		pseudo[8] = 0;
		pseudo[9] = BARE_PROTO_UDP;
		pseudo[10] = (uint8_t)(l4_len >> 8);
		pseudo[11] = (uint8_t)l4_len;
		csum = htons(bare_fold(bare_sum(l4, l4_len, bare_sum(pseudo, sizeof(pseudo), 0))));
		memcpy(l4 + 6, &csum, 2);
		return;
	}
	tcp[0] = (uint8_t)(sport >> 8);
	tcp[1] = (uint8_t)sport;
	tcp[3] = 80;
	tcp[4] = 0x12; tcp[5] = 0x34; tcp[6] = 0x56; tcp[7] = 0x78;
	tcp[12] = 5 << 4;
	tcp[13] = 0x02; /* SYN */
	tcp[14] = 0xff; tcp[15] = 0xff;
	memcpy(pseudo, ip + 12, 8);
	pseudo[8] = 0;
	pseudo[9] = 6;
	pseudo[10] = (uint8_t)(tcp_len >> 8);
	pseudo[11] = (uint8_t)tcp_len;
	sum = bare_sum(pseudo, sizeof(pseudo), 0);
	csum = htons(bare_fold(bare_sum(tcp, tcp_len, sum)));
	memcpy(tcp + 16, &csum, 2);
}

#endif /* BARE_FRAME_H */
