// SPDX-License-Identifier: GPL-2.0-only
/*
 * sink.bpf.c - the lab's packet sink: an XDP program on the target veth that counts every
 * frame (and, separately, every TCP SYN probe) and drops it.
 *
 * It is how a benchmark measures what a driver really put on the wire: the count is taken
 * where the frames arrive, after every queue and copy on the way, and dropping at XDP keeps
 * the target's kernel out of the measurement.
 *
 * Invariant: every frame the program sees adds exactly 1 to frames and its length to bytes in
 * key 0 of sink_counters (per CPU, so no contention); a frame is also a SYN exactly when it is
 * IPv4 TCP, or IPv6 with TCP as the fixed header's next header (pyscan's probes carry no
 * extension headers), with SYN set and ACK clear. Verdict is always XDP_DROP.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct sink_counters {
	__u64 frames;
	__u64 bytes;
	__u64 syns;
	__u64 syn_bytes;
};

_Static_assert(sizeof(struct sink_counters) == 32, "read by Python as 4 u64 words");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sink_counters);
} sink_counters SEC(".maps");

/* Set before load (.rodata); 0 skips header parsing when only frame counts matter. */
const volatile __u32 count_syns = 1;

static __always_inline struct tcphdr *tcp_of_ipv6(struct ethhdr *eth, void *data_end)
{
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_TCP)
		return 0;
	return (void *)(ip6 + 1);
}

static __always_inline int is_tcp_syn(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct tcphdr *tcp;
	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		tcp = tcp_of_ipv6(eth, data_end);
	} else {
		struct iphdr *ip = (void *)(eth + 1);
		if (eth->h_proto != bpf_htons(ETH_P_IP) || (void *)(ip + 1) > data_end ||
		    ip->protocol != IPPROTO_TCP || ip->ihl < 5)
			return 0;
		tcp = (void *)ip + ip->ihl * 4;
	}
	if (!tcp || (void *)(tcp + 1) > data_end)
		return 0;
	return tcp->syn && !tcp->ack;
}

SEC("xdp")
int pyscan_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 len = data_end - data;
	__u32 key = 0;
	struct sink_counters *counters = bpf_map_lookup_elem(&sink_counters, &key);

	if (!counters)
		return XDP_DROP;
	counters->frames++;
	counters->bytes += len;
	if (count_syns && is_tcp_syn(data, data_end)) {
		counters->syns++;
		counters->syn_bytes += len;
	}
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
