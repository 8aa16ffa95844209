/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe_tcp_syn4.h - the XDP match of probe module "tcp-syn" (C twin:
 * ../native/probe_tcp_syn4.c), included by reply_filter.bpf.c, which checks the
 * IPv4 header once (ipv4_parse.h: untagged, no options, no fragment, to the scanner) and
 * passes it in.
 *
 * Matches an untagged Ethernet IPv4 TCP segment without IP options or fragmentation, whose
 * total length covers the IP and TCP headers and lies inside the frame, addressed to the
 * scanner (and to one of its source ports), with SYN+ACK (no RST, no FIN) or RST+ACK (no SYN),
 * whose ack_seq is the probe cookie + 1 recomputed from the reply's tuple with the scan's key
 * (cookie.h, the same code the C data plane uses to build probes). Checksums are not
 * verified here: the C side does it and counts failures (rx_bad_checksum), where the kernel
 * would drop them without the scan knowing.
 *
 * match_icmp(): an ICMP destination unreachable (any code) of the same shape, addressed to
 * the scanner, whose total length covers the ICMP header and a quote of an option-less IPv4
 * header and 8 TCP bytes, quoting a TCP segment from the scanner, from one of its source
 * ports, whose sequence number is the cookie of the quoted tuple (the SYN's own cookie).
 *
 * Invariant: returns 1 exactly for the frames the C classifier reports (open, closed or
 * unreachable, or counts as a duplicate), except those the acceptance rules in
 * docs/internals.md list: VLAN-tagged, with IP options in the reply or in the quote (not
 * matched here), bad checksums (matched here) and, for match_icmp, a quoted destination
 * outside the target set (matched here: the filter does not know the set; C counts it not
 * ours). tests/bpf/test_filters_agree.py holds it to that. Never reads past data_end.
 */
#ifndef PYSCAN_PROBE_TCP_SYN4_H
#define PYSCAN_PROBE_TCP_SYN4_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cookie.h"
#include "ipv4_parse.h"
#include "reply_filter.h"

/* The first 8 bytes of a TCP header, all an ICMP error is sure to quote (RFC 792, and RFC 4443
 * for IPv6: probe_tcp_syn6.h reads its quote with it too). */
struct pyscan_tcp_quote {
	__be16 source;
	__be16 dest;
	__be32 seq;
};

_Static_assert(sizeof(struct pyscan_tcp_quote) == 8, "quoted TCP bytes layout");

/* Whether a reply's TCP flags are a probe_tcp_syn4.c / probe_tcp_syn6.c verdict: SYN+ACK
 * without RST or FIN is open, RST+ACK without SYN closed. */
static __always_inline int pyscan_tcp__is_syn_ack_or_rst_ack(const struct tcphdr *tcp)
{
	if (!tcp->ack)
		return 0;
	if (tcp->syn && !tcp->rst && !tcp->fin)
		return 1;
	return tcp->rst && !tcp->syn;
}

/* Whether a host-order port is in the scan's source-port range. */
static __always_inline int
pyscan_tcp__is_scan_port(const volatile struct pyscan_reply_filter_config *cfg, __u16 port)
{
	return port >= cfg->port_lo && port <= cfg->port_hi;
}

static __always_inline int
pyscan_probe_tcp_syn4__match(struct xdp_md *ctx,
			     const volatile struct pyscan_reply_filter_config *cfg, struct iphdr *ip)
{
	struct tcphdr *tcp = pyscan_ipv4__payload(ctx, ip, sizeof(*tcp));
	struct pyscan_cookie_key key;
	__u16 total;
	__u32 cookie;

	if (!tcp)
		return 0;
	/* The header length the segment claims must lie inside the packet too. */
	total = bpf_ntohs(ip->tot_len);
	if (tcp->doff < 5 || tcp->doff * 4u > total - sizeof(*ip))
		return 0;
	if (!pyscan_tcp__is_syn_ack_or_rst_ack(tcp) ||
	    !pyscan_tcp__is_scan_port(cfg, bpf_ntohs(tcp->dest)))
		return 0;

	key = pyscan_reply_filter__key(cfg);
	/* The reply's tuple reversed is the probe's: we sent from daddr:dest to saddr:source. */
	cookie = pyscan_cookie(&key, ip->daddr, ip->saddr, tcp->dest, tcp->source);
	return bpf_ntohl(tcp->ack_seq) == cookie + 1;
}

static __always_inline int
pyscan_probe_tcp_syn4__match_icmp(struct xdp_md *ctx,
				  const volatile struct pyscan_reply_filter_config *cfg,
				  struct iphdr *ip)
{
	struct pyscan_icmp_quote4 *q = pyscan_ipv4__unreachable_quote(ctx, ip, IPPROTO_TCP);
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
	       pyscan_cookie(&key, q->ip.saddr, q->ip.daddr, qtcp->source, qtcp->dest);
}

#endif /* PYSCAN_PROBE_TCP_SYN4_H */
