/* SPDX-License-Identifier: GPL-2.0-only
 *
 * reply_parse.c - Ethernet / VLAN / IPv4 / L4-header parser for received frames (acceptance
 * rules in reply_parse.h).
 *
 * Invariant: bytes are read only after the length check that covers them; the view is fully
 * written (zeroed first) so a module never sees a previous frame's fields.
 */
#include <string.h>

#include "reply_parse.h"

#define ETH_HEADER_LEN 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8
#define VLAN_TAG_LEN 4
#define MAX_VLAN_TAGS 2
#define IPV4_MIN_HEADER 20
#define IPV4_FRAGMENT_BITS 0x3fff /* MF flag and fragment offset */
#define TCP_HEADER_LEN 20
#define UDP_HEADER_LEN 8
#define ICMP_HEADER_LEN 8

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void parse_l4(struct pyscan_reply_view *v)
{
	const uint8_t *l4 = v->l4;

	switch (v->l4_proto) {
	case PYSCAN_IPPROTO_TCP:
		if (v->l4_len < TCP_HEADER_LEN)
			return;
		v->sport = rd16(l4);
		v->dport = rd16(l4 + 2);
		v->tcp_seq = rd32(l4 + 4);
		v->tcp_ack = rd32(l4 + 8);
		v->tcp_doff = l4[12] >> 4;
		v->tcp_flags = l4[13];
		break;
	case PYSCAN_IPPROTO_UDP:
		if (v->l4_len < UDP_HEADER_LEN)
			return;
		v->sport = rd16(l4);
		v->dport = rd16(l4 + 2);
		break;
	case PYSCAN_IPPROTO_ICMP:
		if (v->l4_len < ICMP_HEADER_LEN)
			return;
		v->icmp_type = l4[0];
		v->icmp_code = l4[1];
		break;
	default:
		return;
	}
	v->l4_complete = 1;
}

/* RFC 1071 one's-complement sum of n bytes read as big-endian 16-bit words (an odd last byte
 * is the high half of a word), added to acc. 64 bits hold any IPv4 packet without folding. */
static uint64_t sum16(const uint8_t *p, uint32_t n, uint64_t acc)
{
	for (; n >= 2; p += 2, n -= 2)
		acc += rd16(p);
	if (n)
		acc += (uint32_t)p[0] << 8;
	return acc;
}

/* A sum over data that includes its checksum field verifies when it folds to 0xffff. */
static int sum_verifies(uint64_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return acc == 0xffff;
}

int pyscan_reply__checksums_ok(const struct pyscan_reply_view *v, int l4_trusted)
{
	if (v->family != 4 || !v->l3 || !v->l4)
		return 0;
	const uint32_t ihl = (uint32_t)(v->l4 - v->l3);
	if (!sum_verifies(sum16(v->l3, ihl, 0)))
		return 0;
	if (l4_trusted || !v->l4_complete)
		return 1;

	uint64_t acc = 0;
	switch (v->l4_proto) {
	case PYSCAN_IPPROTO_UDP:
		if (rd16(v->l4 + 6) == 0) /* IPv4 UDP may go without a checksum */
			return 1;
		acc = sum16(v->l3 + 12, 8, 0) + v->l4_proto + v->l4_len;
		break;
	case PYSCAN_IPPROTO_TCP: /* pseudo-header: addresses, protocol, L4 length */
		acc = sum16(v->l3 + 12, 8, 0) + v->l4_proto + v->l4_len;
		break;
	case PYSCAN_IPPROTO_ICMP:
		break;
	default:
		return 1;
	}
	return sum_verifies(sum16(v->l4, v->l4_len, acc));
}

#define ICMP_UNREACHABLE 3
#define QUOTED_L4_LEN 8

int pyscan_reply__unreachable_quote4(const struct pyscan_reply_view *v,
				     struct pyscan_reply_quote4 *q)
{
	if (v->family != 4 || v->l4_proto != PYSCAN_IPPROTO_ICMP || !v->l4_complete ||
	    v->icmp_type != ICMP_UNREACHABLE || v->l4_len < ICMP_HEADER_LEN + IPV4_MIN_HEADER)
		return -1;
	const uint8_t *ip = v->l4 + ICMP_HEADER_LEN;
	const uint32_t ihl = (uint32_t)(ip[0] & 0x0f) * 4;
	if ((ip[0] >> 4) != 4 || ihl < IPV4_MIN_HEADER ||
	    v->l4_len < ICMP_HEADER_LEN + ihl + QUOTED_L4_LEN)
		return -1;
	q->l4 = ip + ihl;
	memcpy(&q->saddr_be, ip + 12, 4);
	memcpy(&q->daddr_be, ip + 16, 4);
	q->ip_id = rd16(ip + 4);
	q->protocol = ip[9];
	q->sport = rd16(q->l4);
	q->dport = rd16(q->l4 + 2);
	q->reserved = 0;
	return 0;
}

int pyscan_reply__parse(const uint8_t *frame, uint32_t len, struct pyscan_reply_view *v)
{
	memset(v, 0, sizeof(*v));
	if (!frame || len < ETH_HEADER_LEN)
		return PYSCAN_REPLY_MALFORMED;

	uint32_t l3 = ETH_HEADER_LEN;
	uint16_t ethertype = rd16(frame + 12);
	while (v->vlan_tags < MAX_VLAN_TAGS &&
	       (ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ)) {
		if (len < l3 + VLAN_TAG_LEN)
			return PYSCAN_REPLY_MALFORMED;
		ethertype = rd16(frame + l3 + 2);
		l3 += VLAN_TAG_LEN;
		v->vlan_tags++;
	}
	if (ethertype != ETHERTYPE_IPV4)
		return PYSCAN_REPLY_NOT_IP;

	const uint8_t *ip = frame + l3;
	if (len < l3 + IPV4_MIN_HEADER || (ip[0] >> 4) != 4)
		return PYSCAN_REPLY_MALFORMED;
	const uint32_t ihl = (uint32_t)(ip[0] & 0x0f) * 4;
	const uint32_t total = rd16(ip + 2);
	if (ihl < IPV4_MIN_HEADER || total < ihl || total > len - l3)
		return PYSCAN_REPLY_MALFORMED;
	if (rd16(ip + 6) & IPV4_FRAGMENT_BITS)
		return PYSCAN_REPLY_MALFORMED;

	v->family = 4;
	v->l3 = ip;
	v->l3_len = total;
	v->l4 = ip + ihl;
	v->l4_len = total - ihl;
	v->ttl = ip[8];
	v->l4_proto = ip[9];
	memcpy(v->saddr, ip + 12, 4);
	memcpy(v->daddr, ip + 16, 4);
	memcpy(&v->saddr4_be, ip + 12, 4);
	memcpy(&v->daddr4_be, ip + 16, 4);
	parse_l4(v);
	return PYSCAN_REPLY_OK;
}
