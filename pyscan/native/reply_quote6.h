/* SPDX-License-Identifier: GPL-2.0-only
 *
 * reply_quote6.h - what an ICMPv6 destination unreachable quotes of the packet that caused
 * it (RFC 4443 3.1: as much of it as fits, so at least its IPv6 header and first 8 bytes),
 * read once for the IPv6 modules' classify() (probe_tcp_syn6.c, probe_udp6.c,
 * probe_icmp_echo6.c): the IPv6 twin of reply_parse.h's pyscan_reply__unreachable_quote4,
 * so each module only judges the fields that carry its cookie.
 *
 * Invariant: reads only inside the view (l4, l4_len); no extension header of the quote is
 * walked: our probes carry none, so a quote with one names another next header than the
 * probe's protocol and is not ours.
 */
#ifndef PYSCAN_REPLY_QUOTE6_H
#define PYSCAN_REPLY_QUOTE6_H

#include <stdint.h>

#include "reply_parse.h"

#define PYSCAN_QUOTE6_ICMP6_UNREACHABLE 1
#define PYSCAN_QUOTE6_MIN (8 + 40 + 8) /* ICMPv6 header, the quoted IPv6 header, 8 L4 bytes */

struct pyscan_reply_quote6 {
	const uint8_t *ip;     /* the quoted IPv6 header: the flow label is in bytes 1-3 */
	const uint8_t *saddr;  /* its addresses, 16 bytes each, network order */
	const uint8_t *daddr;
	const uint8_t *l4;     /* the quoted packet's first 8 L4 bytes (ports, TCP sequence) */
	uint16_t sport;        /* host order: bytes 0-1 and 2-3 of l4 (TCP and UDP ports) */
	uint16_t dport;
	uint8_t next_header;
};

/* 0 and *q filled when v is a whole ICMPv6 destination unreachable (type 1, any code) whose
 * quote holds an IPv6 header and 8 bytes after it; -1 otherwise (another message, or a quote
 * cut too short to tell whose probe it was). */
static inline int pyscan_reply__unreachable_quote6(const struct pyscan_reply_view *v,
						   struct pyscan_reply_quote6 *q)
{
	if (v->family != 6 || v->l4_proto != PYSCAN_IPPROTO_ICMPV6 || !v->l4_complete ||
	    v->icmp_type != PYSCAN_QUOTE6_ICMP6_UNREACHABLE || v->l4_len < PYSCAN_QUOTE6_MIN)
		return -1;
	const uint8_t *ip = v->l4 + 8;
	if ((ip[0] >> 4) != 6)
		return -1;
	q->ip = ip;
	q->saddr = ip + 8;
	q->daddr = ip + 24;
	q->l4 = ip + 40;
	q->sport = (uint16_t)(q->l4[0] << 8 | q->l4[1]);
	q->dport = (uint16_t)(q->l4[2] << 8 | q->l4[3]);
	q->next_header = ip[6];
	return 0;
}

#endif /* PYSCAN_REPLY_QUOTE6_H */
