/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe_tcp_syn6.h - the XDP match of probe module "tcp-syn6" (C twin:
 * ../native/probe_tcp_syn6.c), included by reply_filter.bpf.c for IPv6 frames.
 *
 * Matches an untagged Ethernet IPv6 packet whose fixed header's next header is TCP (no
 * extension headers: the C parser does not walk them either), whose payload length covers
 * the TCP header and the header length it claims and lies inside the frame, to one of the
 * scan's source ports, with SYN+ACK (no RST, no FIN) or RST+ACK (no SYN), whose ack_seq is
 * the cookie + 1 recomputed over the reply's 16-byte addresses reversed (cookie.h,
 * pyscan_cookie6). The scanner's IPv6 address is not in the filter's config: the cookie
 * covers the reply's destination (a reply to another address matches only by a 2^-32
 * chance), and the C side checks it exactly. Checksums are the C side's, as for IPv4.
 *
 * match_icmp(): an ICMPv6 destination unreachable (type 1, any code) of the same shape
 * whose payload length covers the ICMPv6 header, a quoted IPv6 header and 8 TCP bytes,
 * quoting a TCP segment from the reply's destination, from one of the scan's source ports,
 * whose sequence number is the cookie of the quoted tuple (the SYN's own cookie).
 *
 * Invariant: returns 1 exactly for the frames the C classifier reports (open, closed,
 * unreachable or a duplicate), except VLAN-tagged ones, bad checksums and, for match_icmp,
 * a quoted destination outside the target set (the filter does not know the set)
 * (docs/internals.md's table); never reads past data_end.
 */
#ifndef PYSCAN_PROBE_TCP_SYN6_H
#define PYSCAN_PROBE_TCP_SYN6_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cookie.h"
#include "probe_icmp_echo6.h"
#include "reply_filter.h"

/* An ICMPv6 error's header, the quoted IPv6 header and the first 8 quoted TCP bytes. */
struct pyscan_icmp6_tcp_quote {
	struct pyscan_icmp6hdr icmp;
	struct ipv6hdr ip6;
	__be16 source;
	__be16 dest;
	__be32 seq;
};

_Static_assert(sizeof(struct pyscan_icmp6_tcp_quote) == 56, "ICMPv6 quote of a SYN layout");

static __always_inline int
pyscan_probe_tcp_syn6__match(struct xdp_md *ctx,
			     const volatile struct pyscan_reply_filter_config *cfg)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct tcphdr *tcp = (void *)(ip6 + 1);
	struct pyscan_cookie_key key;
	__u16 dport, payload;
	__u32 cookie;

	if ((void *)(tcp + 1) > data_end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6) || ip6->version != 6 ||
	    ip6->nexthdr != IPPROTO_TCP)
		return 0;
	/* Ethernet pads short frames: the payload length ends the packet. */
	payload = bpf_ntohs(ip6->payload_len);
	if (payload < sizeof(*tcp) || (void *)(ip6 + 1) + payload > data_end)
		return 0;
	if (tcp->doff < 5 || tcp->doff * 4u > payload)
		return 0;
	if (!tcp->ack)
		return 0;
	if (!(tcp->syn && !tcp->rst && !tcp->fin) && !(tcp->rst && !tcp->syn))
		return 0;
	dport = bpf_ntohs(tcp->dest);
	if (dport < cfg->port_lo || dport > cfg->port_hi)
		return 0;

	key.k0 = cfg->key.k0;
	key.k1 = cfg->key.k1;
	/* The reply's tuple reversed is the probe's. */
	cookie = pyscan_cookie6(&key, pyscan_cookie_addr6__load(&ip6->daddr),
				pyscan_cookie_addr6__load(&ip6->saddr), tcp->dest, tcp->source);
	return bpf_ntohl(tcp->ack_seq) == cookie + 1;
}

static __always_inline int
pyscan_probe_tcp_syn6__match_icmp(struct xdp_md *ctx,
				  const volatile struct pyscan_reply_filter_config *cfg)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct pyscan_icmp6_tcp_quote *q = (void *)(ip6 + 1);
	struct pyscan_cookie_key key;
	__u16 sport, payload;

	if ((void *)(q + 1) > data_end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6) || ip6->version != 6 ||
	    ip6->nexthdr != PYSCAN_IPPROTO_ICMPV6)
		return 0;
	payload = bpf_ntohs(ip6->payload_len);
	if (payload < sizeof(*q) || (void *)(ip6 + 1) + payload > data_end)
		return 0;
	if (q->icmp.type != PYSCAN_ICMP6_UNREACHABLE || q->ip6.version != 6 ||
	    q->ip6.nexthdr != IPPROTO_TCP || !pyscan_addr6_equal(&q->ip6.saddr, &ip6->daddr))
		return 0;
	sport = bpf_ntohs(q->source);
	if (sport < cfg->port_lo || sport > cfg->port_hi)
		return 0;

	key.k0 = cfg->key.k0;
	key.k1 = cfg->key.k1;
	return bpf_ntohl(q->seq) == pyscan_cookie6(&key, pyscan_cookie_addr6__load(&q->ip6.saddr),
						   pyscan_cookie_addr6__load(&q->ip6.daddr),
						   q->source, q->dest);
}

#endif /* PYSCAN_PROBE_TCP_SYN6_H */
