/* SPDX-License-Identifier: GPL-2.0-only
 *
 * ipv4_parse.h - the IPv4 header checks of the XDP reply filter: the outer header of a reply
 * (checked once per frame by reply_filter.bpf.c for every IPv4 match), the bounds of what follows
 * it, its total length, and the IPv4 header an ICMP destination unreachable quotes (the three
 * IPv4 matches, probe_tcp_syn4.h, probe_icmp_echo4.h and probe_udp4.h, read their quotes with it).
 *
 * The C parser (../native/reply_parse.c) accepts IP options and the matches do not: probes
 * never carry options, so a reply with them, or an error quoting a header with them, is left to
 * the kernel (docs/internals.md lists it as an accepted difference).
 *
 * Invariant: a non-NULL result has passed a bounds check against data_end that the verifier
 * can follow (every size is a compile-time constant once inlined), so the caller may read the
 * IPv4 header, the `need` bytes after it, or the whole quote, without checking again. Never
 * reads past data_end.
 */
#ifndef PYSCAN_IPV4_PARSE_H
#define PYSCAN_IPV4_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "reply_filter.h"

#define PYSCAN_IP_FRAGMENT_BITS 0x3fff /* MF flag and fragment offset */

#define PYSCAN_ICMP_ECHO_REPLY 0
#define PYSCAN_ICMP_UNREACHABLE 3
#define PYSCAN_ICMP_ECHO_REQUEST 8

/* RFC 792's header of echo messages and errors (linux/icmp.h would pull in libc headers). */
struct pyscan_icmphdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u16 id;       /* echo: identifier; errors: unused */
	__u16 sequence;
};

/* The option-less IPv4 header and 8 bytes of an ICMP error's quote (RFC 792). */
struct pyscan_icmp_quote4 {
	struct pyscan_icmphdr icmp;
	struct iphdr ip;
	__u8 l4[8];
};

_Static_assert(sizeof(struct pyscan_icmphdr) == 8, "ICMP header layout");
_Static_assert(sizeof(struct pyscan_icmp_quote4) == 36, "ICMP error quote layout");

/* The IPv4 header of an untagged Ethernet frame without IP options or fragmentation,
 * addressed to the scanner (to any address when the config names none); NULL otherwise. Every
 * IPv4 match requires all of this, so reply_filter.bpf.c checks it once per frame and hands the
 * header to the matches of its protocol. */
static __always_inline struct iphdr *
pyscan_ipv4__parse(struct xdp_md *ctx, const volatile struct pyscan_reply_filter_config *cfg)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end)
		return NULL;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	if (ip->version != 4 || ip->ihl != 5)
		return NULL;
	if (ip->frag_off & bpf_htons(PYSCAN_IP_FRAGMENT_BITS))
		return NULL;
	if (cfg->scanner_ip_be && ip->daddr != cfg->scanner_ip_be)
		return NULL;
	return ip;
}

/* What follows ip (its protocol's header) when ip's total length covers the header and `need`
 * bytes of it and the packet it bounds ends inside the frame; NULL otherwise. Ethernet pads
 * short frames, so the total length, not the frame, ends the packet, as in the C parser (and
 * as pyscan_ipv6__payload reads the payload length). */
static __always_inline void *pyscan_ipv4__payload(struct xdp_md *ctx, const struct iphdr *ip,
						  __u32 need)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *payload = (void *)(ip + 1);
	__u16 total = bpf_ntohs(ip->tot_len);

	/* The frame check is implied by the total-length checks; the verifier needs it spelled
	 * out with a constant size. */
	if (payload + need > data_end)
		return NULL;
	if (total < sizeof(*ip) + need || (void *)ip + total > data_end)
		return NULL;
	return payload;
}

/* The quote of an ICMP destination unreachable (any code) that follows ip: an option-less
 * IPv4 header of `protocol` sent from ip's destination (the scanner) and 8 bytes of its
 * payload, all inside ip's total length and the frame; NULL otherwise. */
static __always_inline struct pyscan_icmp_quote4 *
pyscan_ipv4__unreachable_quote(struct xdp_md *ctx, const struct iphdr *ip, __u8 protocol)
{
	struct pyscan_icmp_quote4 *q = pyscan_ipv4__payload(ctx, ip, sizeof(*q));

	if (!q)
		return NULL;
	if (q->icmp.type != PYSCAN_ICMP_UNREACHABLE || q->ip.version != 4 || q->ip.ihl != 5 ||
	    q->ip.protocol != protocol || q->ip.saddr != ip->daddr)
		return NULL;
	return q;
}

#endif /* PYSCAN_IPV4_PARSE_H */
