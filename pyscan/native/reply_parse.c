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
#define ETHERTYPE_IPV6 0x86dd
#define IPV6_HEADER_LEN 40
#define IPV6_NEXT_FRAGMENT 44
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
	case PYSCAN_IPPROTO_ICMPV6:
		/* ICMP belongs to IPv4, ICMPv6 to IPv6: the other pairing is no known protocol */
		if ((v->l4_proto == PYSCAN_IPPROTO_ICMP) != (v->family == 4))
			return;
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

/* IPv6 has no header checksum; TCP, UDP and ICMPv6 all sum the pseudo-header (RFC 8200
 * 8.1: both addresses, the upper-layer length, the next header), and UDP's zero sum is not
 * allowed. Other next headers (extensions the modules do not claim) carry nothing to check. */
static int checksums6_ok(const struct pyscan_reply_view *v, int l4_trusted)
{
	if (l4_trusted || !v->l4_complete)
		return 1;
	switch (v->l4_proto) {
	case PYSCAN_IPPROTO_UDP:
		if (rd16(v->l4 + 6) == 0)
			return 0;
		break;
	case PYSCAN_IPPROTO_TCP:
	case PYSCAN_IPPROTO_ICMPV6:
		break;
	default:
		return 1;
	}
	const uint64_t acc = sum16(v->l3 + 8, 32, 0) + v->l4_proto + (v->l4_len >> 16) +
			     (v->l4_len & 0xffff);
	return sum_verifies(sum16(v->l4, v->l4_len, acc));
}

int pyscan_reply__checksums_ok(const struct pyscan_reply_view *v, int l4_trusted)
{
	if (v->family == 6 && v->l3 && v->l4)
		return checksums6_ok(v, l4_trusted);
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

/* The fixed header only: the payload length (never the frame length: padding) ends the
 * packet; the next header is the L4 protocol as it stands. A fragment header is MALFORMED
 * like an IPv4 fragment; any other extension header is left as l4_proto for the modules,
 * which claim only TCP, UDP and ICMPv6 (so such a reply is not ours, as documented). */
static int parse_ipv6(const uint8_t *frame, uint32_t len, uint32_t l3,
		      struct pyscan_reply_view *v)
{
	const uint8_t *ip = frame + l3;
	if (len < l3 + IPV6_HEADER_LEN || (ip[0] >> 4) != 6)
		return PYSCAN_REPLY_MALFORMED;
	const uint32_t payload = rd16(ip + 4);
	if (payload > len - l3 - IPV6_HEADER_LEN)
		return PYSCAN_REPLY_MALFORMED;
	if (ip[6] == IPV6_NEXT_FRAGMENT)
		return PYSCAN_REPLY_MALFORMED;

	v->family = 6;
	v->l3 = ip;
	v->l3_len = IPV6_HEADER_LEN + payload;
	v->l4 = ip + IPV6_HEADER_LEN;
	v->l4_len = payload;
	v->ttl = ip[7];
	v->l4_proto = ip[6];
	memcpy(v->saddr, ip + 8, 16);
	memcpy(v->daddr, ip + 24, 16);
	parse_l4(v);
	return PYSCAN_REPLY_OK;
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
	if (ethertype == ETHERTYPE_IPV6)
		return parse_ipv6(frame, len, l3, v);
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
