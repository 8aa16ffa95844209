/* SPDX-License-Identifier: GPL-2.0-only
 *
 * ipv6_parse.h - the IPv6 header checks of the XDP reply filter: the fixed header of a reply
 * (checked once per frame by reply_filter.bpf.c for every IPv6 match), the bounds of what
 * follows it, and the IPv6 header an ICMPv6 destination unreachable quotes (the three IPv6
 * matches, probe_tcp_syn6.h, probe_icmp_echo6.h and probe_udp6.h, read their quotes with it).
 *
 * Only the fixed header is read: a next header that is an extension header does not match,
 * as the C parser (../native/reply_parse.c) does not walk them either. The scanner's IPv6
 * address is not in the filter's config (the cookie covers it), so unlike ipv4_parse.h nothing
 * here checks the reply's destination; a quote must still come from that destination.
 *
 * Invariant: a non-NULL result has passed a bounds check against data_end that the verifier
 * can follow (every size is a compile-time constant once inlined), so the caller may read the
 * fixed header, the `need` bytes after it, or the whole quote, without checking again. Never
 * reads past data_end.
 */
#ifndef PYSCAN_IPV6_PARSE_H
#define PYSCAN_IPV6_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cookie.h"
#include "ipv4_parse.h"

#define PYSCAN_ICMP6_UNREACHABLE 1
#define PYSCAN_ICMP6_ECHO_REQUEST 128
#define PYSCAN_ICMP6_ECHO_REPLY 129
#define PYSCAN_IPPROTO_ICMPV6 58

/* An ICMPv6 error's header (RFC 4443 gives echo messages and errors ICMP's 8-byte layout,
 * struct pyscan_icmphdr), the quoted IPv6 header and the first 8 quoted bytes after it. */
struct pyscan_icmp6_quote {
	struct pyscan_icmphdr icmp;
	struct ipv6hdr ip6;
	__u8 l4[8];
};

_Static_assert(sizeof(struct pyscan_icmp6_quote) == 56, "ICMPv6 error quote layout");

/* Two 16-byte addresses compared as two words each (no memcmp in BPF). */
static __always_inline int pyscan_addr6_equal(const struct in6_addr *a, const struct in6_addr *b)
{
	const struct pyscan_cookie_addr6 x = pyscan_cookie_addr6__load(a);
	const struct pyscan_cookie_addr6 y = pyscan_cookie_addr6__load(b);

	return x.lo == y.lo && x.hi == y.hi;
}

/* The fixed IPv6 header of an untagged Ethernet frame whose payload length ends inside the
 * frame (Ethernet pads short frames, so the payload length, not the frame, ends the packet);
 * NULL otherwise. Every IPv6 match requires all of this, so reply_filter.bpf.c checks it once
 * per frame and hands the header to the matches of its next header. */
static __always_inline struct ipv6hdr *pyscan_ipv6__parse(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);

	if ((void *)(ip6 + 1) > data_end)
		return NULL;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6) || ip6->version != 6)
		return NULL;
	if ((void *)(ip6 + 1) + bpf_ntohs(ip6->payload_len) > data_end)
		return NULL;
	return ip6;
}

/* What follows ip6's fixed header (its next header) when the payload length, and so the frame,
 * covers `need` bytes of it; NULL otherwise. */
static __always_inline void *pyscan_ipv6__payload(struct xdp_md *ctx, const struct ipv6hdr *ip6,
						  __u32 need)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *payload = (void *)(ip6 + 1);

	/* The frame check is implied by the length check for a parsed header; the verifier needs
	 * it spelled out with a constant size. */
	if (payload + need > data_end || bpf_ntohs(ip6->payload_len) < need)
		return NULL;
	return payload;
}

/* The quote of an ICMPv6 destination unreachable (type 1, any code) that follows ip6: a fixed
 * IPv6 header with next header `nexthdr`, sent from ip6's destination (the scanner), and 8
 * bytes after it, all inside ip6's payload; NULL otherwise. */
static __always_inline struct pyscan_icmp6_quote *
pyscan_ipv6__unreachable_quote(struct xdp_md *ctx, const struct ipv6hdr *ip6, __u8 nexthdr)
{
	struct pyscan_icmp6_quote *q = pyscan_ipv6__payload(ctx, ip6, sizeof(*q));

	if (!q)
		return NULL;
	if (q->icmp.type != PYSCAN_ICMP6_UNREACHABLE || q->ip6.version != 6 ||
	    q->ip6.nexthdr != nexthdr || !pyscan_addr6_equal(&q->ip6.saddr, &ip6->daddr))
		return NULL;
	return q;
}

#endif /* PYSCAN_IPV6_PARSE_H */
