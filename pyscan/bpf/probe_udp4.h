/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe_udp4.h - the XDP match of probe module "udp" (C twin: ../native/probe_udp4.c),
 * included by reply_filter.bpf.c, which checks the IPv4 header once
 * (ipv4_parse.h: untagged, no options, no fragment, to the scanner) and passes it in.
 *
 * match(): an untagged Ethernet IPv4 UDP datagram without IP options or fragmentation,
 * addressed to the scanner and to the source port the cookie of (scanner, its source
 * address, 0, its source port) selects. match_icmp(): a destination unreachable quoting a
 * UDP datagram (option-less IP header) from the scanner whose source port and IP ID are
 * those the cookie of the quoted tuple selects.
 *
 * Invariant: returns 1 for every frame the C classifier would report or count as a
 * duplicate whose headers carry no IP options; it may also return 1 for a datagram C then
 * refuses (a port that was not probed, a DNS answer with the wrong id: the fast path does
 * not know the payload table), which C counts as not ours or invalid cookie. Never reads
 * past data_end.
 */
#ifndef PYSCAN_PROBE_UDP4_H
#define PYSCAN_PROBE_UDP4_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cookie.h"
#include "ipv4_parse.h"
#include "reply_filter.h"

/* The source port probe_udp4.c derives from the cookie, host order. */
static __always_inline __u16
pyscan_probe_udp4__source_port(const volatile struct pyscan_reply_filter_config *cfg,
			       __u32 cookie)
{
	const __u64 count = (__u64)cfg->port_hi - cfg->port_lo + 1;

	return (__u16)(cfg->port_lo + (((__u64)cookie * count) >> 32));
}

static __always_inline int
pyscan_probe_udp4__match(struct xdp_md *ctx, const volatile struct pyscan_reply_filter_config *cfg,
			 struct iphdr *ip)
{
	struct udphdr *udp = pyscan_ipv4__payload(ctx, ip, sizeof(*udp));
	struct pyscan_cookie_key key;
	__u32 cookie;

	if (!udp)
		return 0;
	key = pyscan_reply_filter__key(cfg);
	/* The reply's tuple reversed is the probe's (source port 0 in the hash). */
	cookie = pyscan_cookie(&key, ip->daddr, ip->saddr, 0, udp->source);
	return bpf_ntohs(udp->dest) == pyscan_probe_udp4__source_port(cfg, cookie);
}

static __always_inline int
pyscan_probe_udp4__match_icmp(struct xdp_md *ctx,
			      const volatile struct pyscan_reply_filter_config *cfg, struct iphdr *ip)
{
	struct pyscan_icmp_quote4 *q = pyscan_ipv4__unreachable_quote(ctx, ip, IPPROTO_UDP);
	struct pyscan_cookie_key key;
	struct udphdr *qudp;
	__u32 cookie;

	if (!q)
		return 0;
	qudp = (void *)q->l4;
	key = pyscan_reply_filter__key(cfg);
	cookie = pyscan_cookie(&key, q->ip.saddr, q->ip.daddr, 0, qudp->dest);
	return bpf_ntohs(qudp->source) == pyscan_probe_udp4__source_port(cfg, cookie) &&
	       bpf_ntohs(q->ip.id) == (__u16)cookie;
}

#endif /* PYSCAN_PROBE_UDP4_H */
