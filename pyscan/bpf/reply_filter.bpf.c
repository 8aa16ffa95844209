// SPDX-License-Identifier: GPL-2.0-only
/*
 * reply_filter.bpf.c - XDP program that hands the scan's replies to its AF_XDP sockets.
 *
 * Generic part only: counters, the XSK redirect and the dispatch. Whether a frame is a reply
 * to this scan is the probe modules' match (one include per module, e.g. probe_tcp_syn4.h):
 * the IP header every module of the family requires is checked once (ipv4_parse.h,
 * ipv6_parse.h), its protocol / next header picks the modules that could have sent the
 * probe, and those enabled in reply_filter_config.probe_mask run. The config is const volatile
 * .rodata written by the loader before load, so the verifier sees the mask as a constant and
 * prunes every disabled module's branch. Everything not matched - ARP, the host's own traffic,
 * wrong cookies, truncated frames, an unknown probe id - returns XDP_PASS untouched. One
 * exception, only when the scan's source address is not the host's (arp_ip_be set): an ARP
 * request for that address is rewritten into the reply and sent back out with XDP_TX
 * (arp_reply.h; on a veth a redirect to the same device, see pyscan_reply_filter), since the
 * kernel, which does not own the address, would never answer it. The IPv6 twin (ndp_answer
 * set): a neighbour solicitation for ndp_ip becomes the solicited advertisement (ndp_reply.h).
 * In those scans a frame of another host claiming the address (pyscan_arp__claims,
 * pyscan_ndp__claims: the RX-thread responder's rule) is passed and counted in ARP_CONFLICT.
 *
 * Invariant: every frame increments SEEN and exactly one of MATCHED / PASSED / ARP_REPLIED; a
 * passed frame may also increment ARP_CONFLICT (an extra count, not a partition). A
 * matched frame whose queue has no socket falls back to XDP_PASS (the redirect flag) and also
 * increments UNQUEUED: the kernel gets it (the host firewall rule installed for the scan keeps
 * it from answering), the scanner never does, so the driver counts it as a drop, not as
 * filtered.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "arp_reply.h"
#include "ipv4_parse.h"
#include "ipv6_parse.h"
#include "ndp_reply.h"
#include "probe_icmp_echo4.h"
#include "probe_icmp_echo6.h"
#include "probe_ids.h"
#include "probe_tcp_syn4.h"
#include "probe_tcp_syn6.h"
#include "probe_udp4.h"
#include "probe_udp6.h"
#include "reply_filter.h"

/* Sized by the loader to the interface's queue count before load. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PYSCAN_RF_NCOUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} reply_filter_counters SEC(".maps");

/* Written by the loader before load: the verifier then sees the key as constants. */
const volatile struct pyscan_reply_filter_config reply_filter_config = {};

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&reply_filter_counters, &index);

	if (value)
		*value += 1; /* per-CPU slot: no other CPU writes it */
}

static __always_inline int enabled(__u32 id)
{
	return reply_filter_config.probe_mask & PYSCAN_PROBE_BIT(id);
}

/* IPv6 (a scan is one family, so at most one of the two switches has enabled modules): the
 * fixed header every IPv6 match requires is checked once, then one case per next header;
 * ICMPv6 that is not ours (neighbour discovery included) is passed. */
static __always_inline int is_scan_reply6(struct xdp_md *ctx)
{
	const volatile struct pyscan_reply_filter_config *cfg = &reply_filter_config;
	struct ipv6hdr *ip6 = pyscan_ipv6__parse(ctx);

	if (!ip6)
		return 0;
	switch (ip6->nexthdr) {
	case IPPROTO_TCP:
		return enabled(PYSCAN_PROBE_TCP_SYN6) && pyscan_probe_tcp_syn6__match(ctx, cfg, ip6);
	case IPPROTO_UDP:
		return enabled(PYSCAN_PROBE_UDP6) && pyscan_probe_udp6__match(ctx, cfg, ip6);
	case PYSCAN_IPPROTO_ICMPV6:
		return (enabled(PYSCAN_PROBE_TCP_SYN6) &&
			pyscan_probe_tcp_syn6__match_icmp(ctx, cfg, ip6)) ||
		       (enabled(PYSCAN_PROBE_ICMP_ECHO6) &&
			pyscan_probe_icmp_echo6__match(ctx, cfg, ip6)) ||
		       (enabled(PYSCAN_PROBE_UDP6) && pyscan_probe_udp6__match_icmp(ctx, cfg, ip6));
	default:
		return 0;
	}
}

/* IPv4: the header every IPv4 match requires (no options, no fragment, to the scanner) is
 * checked once, then one case per protocol, one call per module that sends it (probe_ids.h).
 * ICMP carries three modules' replies: echo replies and errors quoting an echo request
 * (icmp-echo), errors quoting a UDP datagram (udp), errors quoting a SYN (tcp-syn). */
static __always_inline int is_scan_reply4(struct xdp_md *ctx)
{
	const volatile struct pyscan_reply_filter_config *cfg = &reply_filter_config;
	struct iphdr *ip = pyscan_ipv4__parse(ctx, cfg);

	if (!ip)
		return 0;
	switch (ip->protocol) {
	case IPPROTO_TCP:
		return enabled(PYSCAN_PROBE_TCP_SYN4) && pyscan_probe_tcp_syn4__match(ctx, cfg, ip);
	case IPPROTO_UDP:
		return enabled(PYSCAN_PROBE_UDP4) && pyscan_probe_udp4__match(ctx, cfg, ip);
	case IPPROTO_ICMP:
		return (enabled(PYSCAN_PROBE_ICMP_ECHO4) &&
			pyscan_probe_icmp_echo4__match(ctx, cfg, ip)) ||
		       (enabled(PYSCAN_PROBE_UDP4) && pyscan_probe_udp4__match_icmp(ctx, cfg, ip)) ||
		       (enabled(PYSCAN_PROBE_TCP_SYN4) &&
			pyscan_probe_tcp_syn4__match_icmp(ctx, cfg, ip));
	default:
		return 0;
	}
}

static __always_inline int is_scan_reply(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return 0;
	switch (eth->h_proto) {
	case bpf_htons(ETH_P_IP):
		return is_scan_reply4(ctx);
	case bpf_htons(ETH_P_IPV6):
		return is_scan_reply6(ctx);
	default:
		return 0;
	}
}

/* 1 when the frame was an ARP request for the unowned source address and is now its reply. */
static __always_inline int answer_arp(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	__u8 *data_end = (void *)(long)ctx->data_end;
	__u8 mac[6];

	if (data + PYSCAN_ARP_FRAME_LEN > data_end)
		return 0;
	/* Read through the volatile config one byte at a time: a pointer cast that dropped the
	 * qualifier would let the compiler fold the all-zero initial value into the program. */
	for (int i = 0; i < 6; i++)
		mac[i] = reply_filter_config.arp_mac[i];
	return pyscan_arp__answer_in_place(data, reply_filter_config.arp_ip_be, mac);
}

/* 1 when the frame was a neighbour solicitation for the unowned IPv6 source address and is
 * now its advertisement. */
static __always_inline int answer_ndp(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	__u8 *data_end = (void *)(long)ctx->data_end;
	__u8 mac[6], ip[16];

	if (data + PYSCAN_NDP_FRAME_LEN > data_end)
		return 0;
	/* byte by byte out of the volatile config, as in answer_arp */
	for (int i = 0; i < 6; i++)
		mac[i] = reply_filter_config.arp_mac[i];
	for (int i = 0; i < 16; i++)
		ip[i] = reply_filter_config.ndp_ip[i];
	return pyscan_ndp__answer_in_place(data, ip, mac);
}

/* 1 when the frame is another host claiming the unowned source address (IPv4 or IPv6). */
static __always_inline int claims_source(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	__u8 *data_end = (void *)(long)ctx->data_end;
	__u8 mac[6], ip[16];

	/* byte by byte out of the volatile config, as in answer_arp */
	for (int i = 0; i < 6; i++)
		mac[i] = reply_filter_config.arp_mac[i];
	if (reply_filter_config.arp_ip_be)
		return data + PYSCAN_ARP_FRAME_LEN <= data_end &&
		       pyscan_arp__claims(data, reply_filter_config.arp_ip_be, mac);
	if (data + PYSCAN_NDP_CLAIM_LEN > data_end)
		return 0;
	for (int i = 0; i < 16; i++)
		ip[i] = reply_filter_config.ndp_ip[i];
	return pyscan_ndp__claims(data, ip, mac);
}

SEC("xdp")
int pyscan_reply_filter(struct xdp_md *ctx)
{
	count(PYSCAN_RF_SEEN);
	/* Constants 0 in an owned-address scan: the verifier prunes the branches. */
	if ((reply_filter_config.arp_ip_be && answer_arp(ctx)) ||
	    (reply_filter_config.ndp_answer && answer_ndp(ctx))) {
		count(PYSCAN_RF_ARP_REPLIED);
		/* A veth only flushes XDP_TX frames into a peer that runs an XDP program itself;
		 * a redirect to the same device goes through ndo_xdp_xmit, which a peer with
		 * NAPI (GRO, as xdp-live needs too) takes. Real NICs: XDP_TX. */
		if (reply_filter_config.arp_redirect)
			return bpf_redirect(ctx->ingress_ifindex, 0);
		return XDP_TX;
	}
	if ((reply_filter_config.arp_ip_be || reply_filter_config.ndp_answer) && claims_source(ctx)) {
		/* ARP or neighbour discovery, never a scan reply: left to the kernel. */
		count(PYSCAN_RF_ARP_CONFLICT);
		count(PYSCAN_RF_PASSED);
		return XDP_PASS;
	}
	if (is_scan_reply(ctx)) {
		long action;

		count(PYSCAN_RF_MATCHED);
		action = bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
		if (action != XDP_REDIRECT)
			count(PYSCAN_RF_UNQUEUED);
		return action;
	}
	count(PYSCAN_RF_PASSED);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
