/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe_tcp_syn6.h - the XDP match of probe module "tcp-syn6" (C twin:
 * ../native/probe_tcp_syn6.c), included by reply_filter.bpf.c for IPv6 frames, which checks
 * the fixed header once (ipv6_parse.h: untagged, version 6, payload inside the frame) and
 * passes it in.
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
#include <linux/in.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cookie.h"
#include "ipv6_parse.h"
#include "probe_tcp_syn4.h"
#include "reply_filter.h"

static __always_inline int
pyscan_probe_tcp_syn6__match(struct xdp_md *ctx,
			     const volatile struct pyscan_reply_filter_config *cfg,
			     struct ipv6hdr *ip6)
{
	struct tcphdr *tcp = pyscan_ipv6__payload(ctx, ip6, sizeof(*tcp));
	struct pyscan_cookie_key key;
	__u32 cookie;

	if (!tcp)
		return 0;
	if (tcp->doff < 5 || tcp->doff * 4u > bpf_ntohs(ip6->payload_len))
		return 0;
	if (!pyscan_tcp__is_syn_ack_or_rst_ack(tcp) ||
	    !pyscan_tcp__is_scan_port(cfg, bpf_ntohs(tcp->dest)))
		return 0;

	key = pyscan_reply_filter__key(cfg);
	/* The reply's tuple reversed is the probe's. */
	cookie = pyscan_cookie6(&key, pyscan_cookie_addr6__load(&ip6->daddr),
				pyscan_cookie_addr6__load(&ip6->saddr), tcp->dest, tcp->source);
	return bpf_ntohl(tcp->ack_seq) == cookie + 1;
}

static __always_inline int
pyscan_probe_tcp_syn6__match_icmp(struct xdp_md *ctx,
				  const volatile struct pyscan_reply_filter_config *cfg,
				  struct ipv6hdr *ip6)
{
	struct pyscan_icmp6_quote *q = pyscan_ipv6__unreachable_quote(ctx, ip6, IPPROTO_TCP);
	struct pyscan_tcp_quote *qtcp;
	struct pyscan_cookie_key key;

	if (!q)
		return 0;
	qtcp = (void *)q->l4;
	if (!pyscan_tcp__is_scan_port(cfg, bpf_ntohs(qtcp->source)))
		return 0;

	key = pyscan_reply_filter__key(cfg);
	/* The quote is our SYN itself: its sequence number is the cookie of its own tuple. */
	return bpf_ntohl(qtcp->seq) ==
	       pyscan_cookie6(&key, pyscan_cookie_addr6__load(&q->ip6.saddr),
			      pyscan_cookie_addr6__load(&q->ip6.daddr), qtcp->source, qtcp->dest);
}

#endif /* PYSCAN_PROBE_TCP_SYN6_H */
