/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe_icmp_echo6.h - the XDP match of probe module "icmp-echo6" (C twin:
 * ../native/probe_icmp_echo6.c), included by reply_filter.bpf.c for IPv6 frames, which checks
 * the fixed header once (ipv6_parse.h: untagged, version 6, payload inside the frame) and
 * passes it in.
 *
 * Matches an untagged Ethernet IPv6 packet whose next header is ICMPv6 (no extension
 * headers), whose payload length lies inside the frame, that is either an echo reply (129,
 * code 0) whose identifier and sequence are the cookie of (its destination, its source), or
 * a destination unreachable (1) quoting an echo request (128) sent from its destination,
 * whose identifier and sequence are the cookie of (that source, the quoted destination).
 * Everything else - neighbour solicitations and advertisements (135, 136), router messages -
 * does not match and goes to the kernel untouched, so neighbour discovery keeps working while
 * the filter is attached. The scanner's address is not in the config: the cookie covers it.
 *
 * Invariant: returns 1 only for frames the C classifier reports or counts as a duplicate;
 * never reads past data_end.
 */
#ifndef PYSCAN_PROBE_ICMP_ECHO6_H
#define PYSCAN_PROBE_ICMP_ECHO6_H

#include <linux/bpf.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cookie.h"
#include "ipv6_parse.h"
#include "probe_icmp_echo4.h"
#include "reply_filter.h"

static __always_inline int
pyscan_probe_icmp_echo6__match(struct xdp_md *ctx,
			       const volatile struct pyscan_reply_filter_config *cfg,
			       struct ipv6hdr *ip6)
{
	struct pyscan_icmphdr *icmp = pyscan_ipv6__payload(ctx, ip6, sizeof(*icmp));
	struct pyscan_cookie_key key;
	struct pyscan_cookie_addr6 peer;
	__u32 echoed;

	if (!icmp)
		return 0;
	if (icmp->type == PYSCAN_ICMP6_ECHO_REPLY && icmp->code == 0) {
		peer = pyscan_cookie_addr6__load(&ip6->saddr);
		echoed = pyscan_icmp__echoed(icmp);
	} else if (icmp->type == PYSCAN_ICMP6_UNREACHABLE) {
		struct pyscan_icmp6_quote *q =
			pyscan_ipv6__unreachable_quote(ctx, ip6, PYSCAN_IPPROTO_ICMPV6);
		struct pyscan_icmphdr *quoted;

		if (!q)
			return 0;
		quoted = (void *)q->l4;
		if (quoted->type != PYSCAN_ICMP6_ECHO_REQUEST)
			return 0;
		peer = pyscan_cookie_addr6__load(&q->ip6.daddr);
		echoed = pyscan_icmp__echoed(quoted);
	} else {
		return 0; /* neighbour discovery and the rest: the kernel's */
	}
	key = pyscan_reply_filter__key(cfg);
	return echoed == pyscan_cookie6(&key, pyscan_cookie_addr6__load(&ip6->daddr), peer, 0, 0);
}

#endif /* PYSCAN_PROBE_ICMP_ECHO6_H */
