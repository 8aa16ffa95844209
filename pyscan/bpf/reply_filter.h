/* SPDX-License-Identifier: GPL-2.0-only
 *
 * reply_filter.h - what the XDP reply filter and its loader (pyscan/native/drv_af_xdp.c) share:
 * the scan configuration frozen into the program's .rodata and the layout of its counters.
 *
 * Invariant: the filter's .rodata holds exactly one struct pyscan_reply_filter_config and
 * nothing else, so the loader can write it as the section's whole initial value and refuse a
 * build where the compiler put anything else there (size mismatch).
 */
#ifndef PYSCAN_REPLY_FILTER_H
#define PYSCAN_REPLY_FILTER_H

#include <linux/types.h>

#include "cookie.h"
#include "probe_ids.h"

struct pyscan_reply_filter_config {
	struct pyscan_cookie_key key;
	__u32 scanner_ip_be; /* replies must be addressed here; 0 accepts any destination */
	__u16 port_lo;       /* the scan's source-port range, host order, inclusive */
	__u16 port_hi;
	__u32 probe_mask;    /* the scan's probe modules: bit id set = its match runs (probe_ids.h) */
	__u32 reserved;      /* zero */
	/* --source-ip of an address the host does not own: ARP requests for it are answered
	 * with XDP_TX (arp_reply.h). 0 = the host owns the source address: ARP is the kernel's. */
	__u32 arp_ip_be;
	__u8 arp_mac[6];     /* the interface's MAC, the answer's "is-at" */
	__u8 arp_redirect;   /* 1: send the answer by bpf_redirect to the ingress device (veth),
			      * 0: XDP_TX */
	/* --source-ip of an IPv6 address the host does not own: neighbour solicitations for
	 * ndp_ip are answered the same way (ndp_reply.h) with arp_mac and arp_redirect.
	 * 0 = none (an IPv4 scan, or the host owns the address). */
	__u8 ndp_answer;
	__u8 arp_reserved[4]; /* zero */
	__u8 ndp_ip[16];      /* the unowned IPv6 source, network order */
};

/* Indexes into the per-CPU counter array; seen == matched + passed + arp_replied on every
 * CPU, unqueued <= matched and arp_conflict <= passed: ARP_CONFLICT is an extra count of
 * frames also counted in PASSED (a conflict is left to the kernel like any frame not ours),
 * not a partition of its own. */
enum pyscan_reply_filter_counter {
	PYSCAN_RF_SEEN = 0,
	PYSCAN_RF_MATCHED = 1, /* cookie valid: handed to the AF_XDP socket of the frame's queue */
	PYSCAN_RF_PASSED = 2,  /* everything else: left to the kernel untouched */
	PYSCAN_RF_UNQUEUED = 3, /* matched, but its queue had no socket: passed, lost to the scan */
	PYSCAN_RF_ARP_REPLIED = 4, /* an ARP request for arp_ip_be (or a neighbour
				    * solicitation for ndp_ip), sent back as the reply
				    * (XDP_TX, or XDP_REDIRECT with arp_redirect) */
	PYSCAN_RF_ARP_CONFLICT = 5, /* another host claiming arp_ip_be (or ndp_ip): the rule
				     * of pyscan_arp__claims / pyscan_ndp__claims, the RX-thread
				     * responder's; also counted in PASSED */
	PYSCAN_RF_NCOUNTERS = 6,
};

_Static_assert(sizeof(struct pyscan_reply_filter_config) == 64, "reply filter config layout");

/* The scan's cookie key out of the program's const volatile config (the matches hash with it). */
PYSCAN_ALWAYS_INLINE struct pyscan_cookie_key
pyscan_reply_filter__key(const volatile struct pyscan_reply_filter_config *cfg)
{
	struct pyscan_cookie_key key;

	key.k0 = cfg->key.k0;
	key.k1 = cfg->key.k1;
	return key;
}

#endif /* PYSCAN_REPLY_FILTER_H */
