/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe_icmp_echo6.h - the XDP match of probe module "icmp-echo6" (C twin:
 * ../native/probe_icmp_echo6.c), included by reply_filter.bpf.c for IPv6 frames.
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
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cookie.h"
#include "reply_filter.h"

#define PYSCAN_ICMP6_UNREACHABLE 1
#define PYSCAN_ICMP6_ECHO_REQUEST 128
#define PYSCAN_ICMP6_ECHO_REPLY 129
#define PYSCAN_IPPROTO_ICMPV6 58

/* RFC 4443's header of echo messages and errors. */
struct pyscan_icmp6hdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u16 id;       /* echo: identifier; errors: unused */
	__u16 sequence;
};

/* A destination unreachable: its header, the quoted IPv6 header and our ICMPv6 header. */
struct pyscan_icmp6_quote {
	struct pyscan_icmp6hdr icmp;
	struct ipv6hdr ip6;
	struct pyscan_icmp6hdr quoted;
};

_Static_assert(sizeof(struct pyscan_icmp6hdr) == 8, "ICMPv6 header layout");
_Static_assert(sizeof(struct pyscan_icmp6_quote) == 56, "ICMPv6 error quote layout");

static __always_inline int pyscan_addr6_equal(const struct in6_addr *a, const struct in6_addr *b)
{
	const struct pyscan_cookie_addr6 x = pyscan_cookie_addr6__load(a);
	const struct pyscan_cookie_addr6 y = pyscan_cookie_addr6__load(b);

	return x.lo == y.lo && x.hi == y.hi;
}

static __always_inline int
pyscan_probe_icmp_echo6__match(struct xdp_md *ctx,
			       const volatile struct pyscan_reply_filter_config *cfg)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct pyscan_icmp6hdr *icmp = (void *)(ip6 + 1);
	struct pyscan_cookie_key key;
	struct pyscan_cookie_addr6 peer;
	__u16 payload;
	__u32 echoed;

	if ((void *)(icmp + 1) > data_end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6) || ip6->version != 6 ||
	    ip6->nexthdr != PYSCAN_IPPROTO_ICMPV6)
		return 0;
	payload = bpf_ntohs(ip6->payload_len);
	if (payload < sizeof(*icmp) || (void *)(ip6 + 1) + payload > data_end)
		return 0;

	if (icmp->type == PYSCAN_ICMP6_ECHO_REPLY && icmp->code == 0) {
		peer = pyscan_cookie_addr6__load(&ip6->saddr);
		echoed = ((__u32)bpf_ntohs(icmp->id) << 16) | bpf_ntohs(icmp->sequence);
	} else if (icmp->type == PYSCAN_ICMP6_UNREACHABLE) {
		struct pyscan_icmp6_quote *q = (void *)icmp;

		if ((void *)(q + 1) > data_end || payload < sizeof(*q))
			return 0;
		if (q->ip6.version != 6 || q->ip6.nexthdr != PYSCAN_IPPROTO_ICMPV6 ||
		    q->quoted.type != PYSCAN_ICMP6_ECHO_REQUEST ||
		    !pyscan_addr6_equal(&q->ip6.saddr, &ip6->daddr))
			return 0;
		peer = pyscan_cookie_addr6__load(&q->ip6.daddr);
		echoed = ((__u32)bpf_ntohs(q->quoted.id) << 16) | bpf_ntohs(q->quoted.sequence);
	} else {
		return 0; /* neighbour discovery and the rest: the kernel's */
	}
	key.k0 = cfg->key.k0;
	key.k1 = cfg->key.k1;
	return echoed == pyscan_cookie6(&key, pyscan_cookie_addr6__load(&ip6->daddr), peer, 0, 0);
}

#endif /* PYSCAN_PROBE_ICMP_ECHO6_H */
