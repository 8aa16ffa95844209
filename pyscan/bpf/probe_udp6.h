/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe_udp6.h - the XDP match of probe module "udp6" (C twin: ../native/probe_udp6.c),
 * included by reply_filter.bpf.c for IPv6 frames, which checks the fixed header once
 * (ipv6_parse.h: untagged, version 6, payload inside the frame) and passes it in.
 *
 * match(): an untagged Ethernet IPv6 packet whose fixed header's next header is UDP (no
 * extension headers), whose payload length covers the UDP header inside the frame, addressed
 * to the source port the cookie of (its destination, its source, 0, its source port)
 * selects. match_icmp(): a destination unreachable (1) quoting a UDP datagram sent from the
 * reply's destination whose source port and flow label are those the cookie of the quoted
 * tuple selects (the flow label carries the cookie's low 20 bits, probe_udp6.c). The
 * scanner's address is not in the config: the cookie covers it.
 *
 * Invariant: returns 1 for every frame the C classifier would report or count as a
 * duplicate; it may also return 1 for a datagram C then refuses (a port that was not
 * probed, a DNS answer with the wrong id: the fast path does not know the payload table),
 * which C counts as not ours or invalid cookie. Never reads past data_end.
 */
#ifndef PYSCAN_PROBE_UDP6_H
#define PYSCAN_PROBE_UDP6_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cookie.h"
#include "ipv6_parse.h"
#include "probe_udp4.h"
#include "reply_filter.h"

#define PYSCAN_UDP6_FLOW_LABEL_MASK 0xfffffu

static __always_inline int
pyscan_probe_udp6__match(struct xdp_md *ctx, const volatile struct pyscan_reply_filter_config *cfg,
			 struct ipv6hdr *ip6)
{
	struct udphdr *udp = pyscan_ipv6__payload(ctx, ip6, sizeof(*udp));
	struct pyscan_cookie_key key;
	__u32 cookie;

	if (!udp)
		return 0;
	key = pyscan_reply_filter__key(cfg);
	/* The reply's tuple reversed is the probe's (source port 0 in the hash). */
	cookie = pyscan_cookie6(&key, pyscan_cookie_addr6__load(&ip6->daddr),
				pyscan_cookie_addr6__load(&ip6->saddr), 0, udp->source);
	return bpf_ntohs(udp->dest) == pyscan_probe_udp4__source_port(cfg, cookie);
}

static __always_inline int
pyscan_probe_udp6__match_icmp(struct xdp_md *ctx,
			      const volatile struct pyscan_reply_filter_config *cfg,
			      struct ipv6hdr *ip6)
{
	struct pyscan_icmp6_quote *q = pyscan_ipv6__unreachable_quote(ctx, ip6, IPPROTO_UDP);
	struct pyscan_cookie_key key;
	struct udphdr *qudp;
	__u32 cookie, label;

	if (!q)
		return 0;
	qudp = (void *)q->l4;
	key = pyscan_reply_filter__key(cfg);
	cookie = pyscan_cookie6(&key, pyscan_cookie_addr6__load(&q->ip6.saddr),
				pyscan_cookie_addr6__load(&q->ip6.daddr), 0, qudp->dest);
	label = ((__u32)(q->ip6.flow_lbl[0] & 0x0f) << 16) | ((__u32)q->ip6.flow_lbl[1] << 8) |
		q->ip6.flow_lbl[2];
	return bpf_ntohs(qudp->source) == pyscan_probe_udp4__source_port(cfg, cookie) &&
	       label == (cookie & PYSCAN_UDP6_FLOW_LABEL_MASK);
}

#endif /* PYSCAN_PROBE_UDP6_H */
