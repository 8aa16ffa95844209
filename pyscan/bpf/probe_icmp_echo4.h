/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe_icmp_echo4.h - the XDP match of probe module "icmp-echo" (C twin:
 * ../native/probe_icmp_echo4.c), included by reply_filter.bpf.c, which checks the
 * IPv4 header once (ipv4_parse.h: untagged, no options, no fragment, to the scanner) and
 * passes it in.
 *
 * Matches an untagged Ethernet IPv4 ICMP message without IP options or fragmentation,
 * addressed to the scanner, that is either an echo reply whose identifier and sequence are
 * the cookie of (scanner, its source), or a destination unreachable quoting an echo request
 * (with an option-less IP header) from the scanner whose identifier and sequence are the
 * cookie of (scanner, quoted destination).
 *
 * Invariant: returns 1 only for frames the C classifier would report or count as a
 * duplicate (a quote with IP options is left to the kernel: C would take it, the fast path
 * does not); never reads past data_end.
 */
#ifndef PYSCAN_PROBE_ICMP_ECHO4_H
#define PYSCAN_PROBE_ICMP_ECHO4_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cookie.h"
#include "ipv4_parse.h"
#include "reply_filter.h"

/* An echo message's identifier and sequence as the one 32-bit value the cookie fills. */
static __always_inline __u32 pyscan_icmp__echoed(const struct pyscan_icmphdr *icmp)
{
	return ((__u32)bpf_ntohs(icmp->id) << 16) | bpf_ntohs(icmp->sequence);
}

static __always_inline int
pyscan_probe_icmp_echo4__match(struct xdp_md *ctx,
			       const volatile struct pyscan_reply_filter_config *cfg, struct iphdr *ip)
{
	struct pyscan_icmphdr *icmp = pyscan_ipv4__payload(ctx, ip, sizeof(*icmp));
	struct pyscan_cookie_key key;
	__u32 peer_be, echoed;

	if (!icmp)
		return 0;
	if (icmp->type == PYSCAN_ICMP_ECHO_REPLY && icmp->code == 0) {
		peer_be = ip->saddr;
		echoed = pyscan_icmp__echoed(icmp);
	} else if (icmp->type == PYSCAN_ICMP_UNREACHABLE) {
		struct pyscan_icmp_quote4 *q = pyscan_ipv4__unreachable_quote(ctx, ip, IPPROTO_ICMP);
		struct pyscan_icmphdr *qicmp;

		if (!q)
			return 0;
		qicmp = (void *)q->l4;
		if (qicmp->type != PYSCAN_ICMP_ECHO_REQUEST)
			return 0;
		peer_be = q->ip.daddr;
		echoed = pyscan_icmp__echoed(qicmp);
	} else {
		return 0;
	}
	key = pyscan_reply_filter__key(cfg);
	return echoed == pyscan_cookie(&key, ip->daddr, peer_be, 0, 0);
}

#endif /* PYSCAN_PROBE_ICMP_ECHO4_H */
