// SPDX-License-Identifier: GPL-2.0-only
/*
 * reply_filter.bpf.c - XDP program that hands the scan's replies to its AF_XDP sockets.
 *
 * A frame is redirected to the XSK of its receive queue only if it is an untagged Ethernet
 * IPv4 TCP segment without IP options or fragmentation, addressed to the scanner (and to one
 * of its source ports), with ACK plus SYN or RST, whose ack_seq is the probe cookie + 1
 * recomputed from the reply's tuple with the scan's key (cookie.h, the same code the C data
 * plane uses to build probes). Everything else - ARP, the host's own traffic, wrong cookies,
 * truncated frames - returns XDP_PASS untouched.
 *
 * Invariant: every frame increments SEEN and exactly one of MATCHED / PASSED. A matched frame
 * whose queue has no socket falls back to XDP_PASS (the redirect flag) and also increments
 * UNQUEUED: the kernel gets it (the host firewall rule installed for the scan keeps it from
 * answering), the scanner never does, so the driver counts it as a drop, not as filtered.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cookie.h"
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

#define IP_FRAGMENT_BITS 0x3fff /* MF flag and fragment offset, network order via bpf_htons */

static __always_inline void count(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&reply_filter_counters, &index);

	if (value)
		*value += 1; /* per-CPU slot: no other CPU writes it */
}

static __always_inline int is_scan_reply(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp = (void *)(ip + 1);
	struct pyscan_cookie_key key;
	__u16 dport;
	__u32 cookie;

	if ((void *)(tcp + 1) > data_end)
		return 0;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	/* Probes never carry IP options, so a reply with them is not ours to fast-path. */
	if (ip->version != 4 || ip->ihl != 5 || ip->protocol != IPPROTO_TCP)
		return 0;
	if (ip->frag_off & bpf_htons(IP_FRAGMENT_BITS))
		return 0;
	if (!tcp->ack || !(tcp->syn || tcp->rst))
		return 0;
	if (reply_filter_config.scanner_ip_be && ip->daddr != reply_filter_config.scanner_ip_be)
		return 0;
	dport = bpf_ntohs(tcp->dest);
	if (dport < reply_filter_config.port_lo || dport > reply_filter_config.port_hi)
		return 0;

	key.k0 = reply_filter_config.key.k0;
	key.k1 = reply_filter_config.key.k1;
	/* The reply's tuple reversed is the probe's: we sent from daddr:dest to saddr:source. */
	cookie = pyscan_cookie(&key, ip->daddr, ip->saddr, tcp->dest, tcp->source);
	return bpf_ntohl(tcp->ack_seq) == cookie + 1;
}

SEC("xdp")
int pyscan_reply_filter(struct xdp_md *ctx)
{
	count(PYSCAN_RF_SEEN);
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
