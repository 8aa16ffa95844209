/* SPDX-License-Identifier: GPL-2.0-only
 *
 * bare_frame.h - the one constant frame the bare ceiling loops resend: Ethernet + IPv4 + TCP
 * SYN from 198.18.0.1 to 198.19.0.1:80 (or, by protocol, an ICMP echo request to 198.19.0.1
 * or a UDP datagram to 198.19.0.1:53), zero-padded to the requested length, with valid IPv4
 * and L4 checksums so that a sink or a capture sees a well-formed probe. The protocol and
 * length follow the pyscan probe a loop is set against, so the two send the same frame size.
 * IPv6 ("tcp6", "icmp6"): the same SYN (with an MSS option when there is room, as pyscan's
 * "mss" profile) or echo request from 2001:2:0:ffff::1 to 2001:2:0:1::1.
 *
 * Invariant: the frame is len bytes exactly (no FCS; the NIC adds it),
 * len >= bare_frame_min(protocol), and it only ever targets the RFC 2544 benchmarking range
 * 198.18.0.0/15 or the RFC 5180 one, 2001:2::/48.
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
/* not IP protocol numbers: IPv6 variants, next header = the low byte */
#define BARE_PROTO_TCP6 (0x100 | 6)
#define BARE_PROTO_ICMP6 (0x100 | 58)

/* "tcp", "icmp", "udp", "tcp6" or "icmp6" -> BARE_PROTO_*; -1 for anything else */
static inline int bare_frame_proto(const char *name)
{
	if (!strcmp(name, "tcp"))
		return BARE_PROTO_TCP;
	if (!strcmp(name, "icmp"))
		return BARE_PROTO_ICMP;
	if (!strcmp(name, "udp"))
		return BARE_PROTO_UDP;
	if (!strcmp(name, "tcp6"))
		return BARE_PROTO_TCP6;
	if (!strcmp(name, "icmp6"))
		return BARE_PROTO_ICMP6;
	return -1;
}

static inline unsigned bare_frame_min(int proto)
{
	if (proto == BARE_PROTO_TCP6)
		return 14 + 40 + 20;
	if (proto == BARE_PROTO_ICMP6)
		return 14 + 40 + 8;
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

/* IPv6: SYN to [2001:2:0:1::1]:80 or ICMPv6 echo request to 2001:2:0:1::1 */
static void bare_frame_fill6(uint8_t *f, unsigned len, uint16_t sport, int proto)
{
	static const uint8_t src[16] = { 0x20, 0x01, 0, 0x02, 0, 0, 0xff, 0xff, [15] = 1 };
	static const uint8_t dst[16] = { 0x20, 0x01, 0, 0x02, 0, 0, 0, 0x01, [15] = 1 };
	uint8_t *ip = f + 14, *l4 = ip + 40, pseudo[40];
	unsigned l4_len = len - 14 - 40;
	uint8_t next = (uint8_t)(proto & 0xff);
	unsigned csum_at = next == 6 ? 16 : 2;
	uint16_t csum;

	f[12] = 0x86;
	f[13] = 0xdd;
	ip[0] = 0x60;
	ip[4] = (uint8_t)(l4_len >> 8);
	ip[5] = (uint8_t)l4_len;
	ip[6] = next;
	ip[7] = 64; /* hop limit */
	memcpy(ip + 8, src, 16);
	memcpy(ip + 24, dst, 16);
	if (next == 58) {
		l4[0] = 128; /* echo request; id varies by sender as the source port does */
		l4[4] = (uint8_t)(sport >> 8);
		l4[5] = (uint8_t)sport;
		l4[7] = 1;
	} else {
		l4[0] = (uint8_t)(sport >> 8);
		l4[1] = (uint8_t)sport;
		l4[3] = 80;
		l4[4] = 0x12; l4[5] = 0x34; l4[6] = 0x56; l4[7] = 0x78;
		l4[13] = 0x02; /* SYN */
		l4[14] = 0xff; l4[15] = 0xff;
		if (l4_len >= 24) { /* MSS 1460, as pyscan's "mss" option profile */
			l4[12] = 6 << 4;
			l4[20] = 2; l4[21] = 4; l4[22] = 0x05; l4[23] = 0xb4;
		} else {
			l4[12] = 5 << 4;
		}
	}
	/* pseudo header: source, destination, upper-layer length (32 bits), zeros, next header */
	memcpy(pseudo, ip + 8, 32);
	memset(pseudo + 32, 0, 8);
	pseudo[34] = (uint8_t)(l4_len >> 8);
	pseudo[35] = (uint8_t)l4_len;
	pseudo[39] = next;
	csum = htons(bare_fold(bare_sum(l4, l4_len, bare_sum(pseudo, sizeof(pseudo), 0))));
	memcpy(l4 + csum_at, &csum, 2);
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
	if (proto & 0x100) {
		bare_frame_fill6(f, len, sport, proto);
		return;
	}
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
