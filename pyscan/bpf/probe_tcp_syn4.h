/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe_tcp_syn4.h - the XDP match of probe module "tcp-syn" (C twin:
 * ../native/probe_tcp_syn4.c), included by reply_filter.bpf.c.
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
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cookie.h"
#include "probe_icmp_echo4.h"
#include "reply_filter.h"

#ifndef PYSCAN_IP_FRAGMENT_BITS
#define PYSCAN_IP_FRAGMENT_BITS 0x3fff /* MF flag and fragment offset */
#endif

/* The first 8 bytes of a TCP header, all an ICMP error is sure to quote (RFC 792). */
struct pyscan_tcp_quote {
	__be16 source;
	__be16 dest;
	__be32 seq;
};

_Static_assert(sizeof(struct pyscan_tcp_quote) == 8, "quoted TCP bytes layout");

static __always_inline int
pyscan_probe_tcp_syn4__match(struct xdp_md *ctx,
			     const volatile struct pyscan_reply_filter_config *cfg)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp = (void *)(ip + 1);
	struct pyscan_cookie_key key;
	__u16 dport, total;
	__u32 cookie;

	if ((void *)(tcp + 1) > data_end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	/* Probes never carry IP options, so a reply with them is not ours to fast-path. */
	if (ip->version != 4 || ip->ihl != 5 || ip->protocol != IPPROTO_TCP)
		return 0;
	if (ip->frag_off & bpf_htons(PYSCAN_IP_FRAGMENT_BITS))
		return 0;
	/* Ethernet pads short frames, so the packet ends at its total length, which must hold
	 * both headers and the TCP header length the segment claims. */
	total = bpf_ntohs(ip->tot_len);
	if (total < sizeof(*ip) + sizeof(*tcp) || (void *)ip + total > data_end)
		return 0;
	if (tcp->doff < 5 || tcp->doff * 4u > total - sizeof(*ip))
		return 0;
	/* SYN+ACK without RST or FIN is open, RST+ACK without SYN closed (probe_tcp_syn4.c). */
	if (!tcp->ack)
		return 0;
	if (!(tcp->syn && !tcp->rst && !tcp->fin) && !(tcp->rst && !tcp->syn))
		return 0;
	if (cfg->scanner_ip_be && ip->daddr != cfg->scanner_ip_be)
		return 0;
	dport = bpf_ntohs(tcp->dest);
	if (dport < cfg->port_lo || dport > cfg->port_hi)
		return 0;

	key.k0 = cfg->key.k0;
	key.k1 = cfg->key.k1;
	/* The reply's tuple reversed is the probe's: we sent from daddr:dest to saddr:source. */
	cookie = pyscan_cookie(&key, ip->daddr, ip->saddr, tcp->dest, tcp->source);
	return bpf_ntohl(tcp->ack_seq) == cookie + 1;
}

static __always_inline int
pyscan_probe_tcp_syn4__match_icmp(struct xdp_md *ctx,
				  const volatile struct pyscan_reply_filter_config *cfg)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct pyscan_icmp_quote4 *q = (void *)(ip + 1);
	struct pyscan_tcp_quote *qtcp = (void *)q->l4;
	struct pyscan_cookie_key key;
	__u16 sport, total;

	if ((void *)(q + 1) > data_end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	if (ip->version != 4 || ip->ihl != 5 || ip->protocol != IPPROTO_ICMP)
		return 0;
	if (ip->frag_off & bpf_htons(PYSCAN_IP_FRAGMENT_BITS))
		return 0;
	/* The C parser ends the packet at its total length: the quote must lie inside it. */
	total = bpf_ntohs(ip->tot_len);
	if (total < sizeof(*ip) + sizeof(*q) || (void *)ip + total > data_end)
		return 0;
	if (cfg->scanner_ip_be && ip->daddr != cfg->scanner_ip_be)
		return 0;
	if (q->icmp.type != PYSCAN_ICMP_UNREACHABLE || q->ip.version != 4 || q->ip.ihl != 5 ||
	    q->ip.protocol != IPPROTO_TCP || q->ip.saddr != ip->daddr)
		return 0;
	sport = bpf_ntohs(qtcp->source);
	if (sport < cfg->port_lo || sport > cfg->port_hi)
		return 0;

	key.k0 = cfg->key.k0;
	key.k1 = cfg->key.k1;
	/* The quote is our SYN itself: its sequence number is the cookie of its own tuple. */
	return bpf_ntohl(qtcp->seq) ==
	       pyscan_cookie(&key, q->ip.saddr, q->ip.daddr, qtcp->source, qtcp->dest);
}

#endif /* PYSCAN_PROBE_TCP_SYN4_H */
