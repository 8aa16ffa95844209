/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe_icmp_echo4.h - the XDP match of probe module "icmp-echo" (C twin:
 * ../native/probe_icmp_echo4.c), included by reply_filter.bpf.c.
 *
 * Matches an untagged Ethernet IPv4 ICMP message without IP options or fragmentation,
 * addressed to the scanner, that is either an echo reply whose identifier and sequence are
 * the cookie of (scanner, its source), or a destination unreachable quoting an echo request
 * (with an option-less IP header) from the scanner whose identifier and sequence are the
 * cookie of (scanner, quoted destination).
 *
 * Invariant: returns 1 only for frames the C classifier would report or count as a
 * duplicate (a quote with IP options is left to the kernel: C would take it, the fast path
 * does not); never reads past data_end.
 */
#ifndef PYSCAN_PROBE_ICMP_ECHO4_H
#define PYSCAN_PROBE_ICMP_ECHO4_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "cookie.h"
#include "reply_filter.h"

#ifndef PYSCAN_IP_FRAGMENT_BITS
#define PYSCAN_IP_FRAGMENT_BITS 0x3fff /* MF flag and fragment offset */
#endif

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

static __always_inline int
pyscan_probe_icmp_echo4__match(struct xdp_md *ctx,
			       const volatile struct pyscan_reply_filter_config *cfg)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct pyscan_icmphdr *icmp = (void *)(ip + 1);
	struct pyscan_cookie_key key;
	__u32 peer_be, echoed;

	if ((void *)(icmp + 1) > data_end)
		return 0;
	if (ip->version != 4 || ip->ihl != 5 || ip->protocol != IPPROTO_ICMP)
		return 0;
	if (ip->frag_off & bpf_htons(PYSCAN_IP_FRAGMENT_BITS))
		return 0;
	if (cfg->scanner_ip_be && ip->daddr != cfg->scanner_ip_be)
		return 0;

	if (icmp->type == PYSCAN_ICMP_ECHO_REPLY && icmp->code == 0) {
		peer_be = ip->saddr;
		echoed = ((__u32)bpf_ntohs(icmp->id) << 16) |
			 bpf_ntohs(icmp->sequence);
	} else if (icmp->type == PYSCAN_ICMP_UNREACHABLE) {
		struct pyscan_icmp_quote4 *q = (void *)icmp;
		struct pyscan_icmphdr *qicmp = (void *)q->l4;

		if ((void *)(q + 1) > data_end)
			return 0;
		if (q->ip.version != 4 || q->ip.ihl != 5 || q->ip.protocol != IPPROTO_ICMP ||
		    q->ip.saddr != ip->daddr || qicmp->type != PYSCAN_ICMP_ECHO_REQUEST)
			return 0;
		peer_be = q->ip.daddr;
		echoed = ((__u32)bpf_ntohs(qicmp->id) << 16) |
			 bpf_ntohs(qicmp->sequence);
	} else {
		return 0;
	}
	key.k0 = cfg->key.k0;
	key.k1 = cfg->key.k1;
	return echoed == pyscan_cookie(&key, ip->daddr, peer_be, 0, 0);
}

#endif /* PYSCAN_PROBE_ICMP_ECHO4_H */
