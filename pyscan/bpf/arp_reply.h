/* SPDX-License-Identifier: GPL-2.0-only
 *
 * arp_reply.h - answering "who-has A" for a source address the host does not own (--source-ip
 * of a free address on the link, masscan's trick). One in-place rewrite shared by the XDP
 * reply filter (reply_filter.bpf.c, which returns XDP_TX) and the RX-thread responder of the
 * other drivers (pyscan/native/arp_responder.c, which sends a copy).
 *
 * Invariant: a frame is rewritten only when it is an Ethernet/IPv4 ARP request whose target
 * protocol address is A, whose sender is neither A (a gratuitous ARP: another host claims A,
 * which must not be fought over) nor our own MAC (our own request looped back); everything
 * else is left byte for byte as it was. pyscan_arp__claims tells the frames of another host
 * claiming A. The caller has checked that the frame holds at least PYSCAN_ARP_FRAME_LEN bytes.
 */
#ifndef PYSCAN_ARP_REPLY_H
#define PYSCAN_ARP_REPLY_H

#include <linux/types.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define PYSCAN_ARP_FRAME_LEN 42      /* Ethernet header + the IPv4-over-Ethernet ARP body */
#define PYSCAN_ARP_ETHERTYPE 0x0806
#define PYSCAN_ARP_OP_REQUEST 1
#define PYSCAN_ARP_OP_REPLY 2

/* Offsets in the frame (RFC 826 over Ethernet). */
#define PYSCAN_ARP_OFF_HTYPE 14
#define PYSCAN_ARP_OFF_OP 20
#define PYSCAN_ARP_OFF_SHA 22
#define PYSCAN_ARP_OFF_SPA 28
#define PYSCAN_ARP_OFF_THA 32
#define PYSCAN_ARP_OFF_TPA 38

static __always_inline int pyscan_arp__same_mac(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] &&
	       a[5] == b[5];
}

/* The fixed part every IPv4-over-Ethernet request carries: ethertype, htype 1, ptype
 * 0x0800, hlen 6, plen 4, op 1 - compared as bytes, so the frame's alignment never matters. */
static __always_inline int pyscan_arp__is_request(const __u8 *f)
{
	return f[12] == 0x08 && f[13] == 0x06 && f[14] == 0 && f[15] == 1 && f[16] == 0x08 &&
	       f[17] == 0 && f[18] == 6 && f[19] == 4 && f[20] == 0 && f[21] == PYSCAN_ARP_OP_REQUEST;
}

/* Rewrites the request in f into the reply "A is-at mac" addressed to its sender; 1 when it
 * did, 0 when f is not a request to answer (left untouched). ip_be: A in network order. */
static __always_inline int pyscan_arp__answer_in_place(__u8 *f, __u32 ip_be, const __u8 *mac)
{
	__u8 sender_mac[6], sender_ip[4];
	__u32 target_ip, sender_ip_be;

	if (!pyscan_arp__is_request(f))
		return 0;
	__builtin_memcpy(&target_ip, f + PYSCAN_ARP_OFF_TPA, 4);
	__builtin_memcpy(&sender_ip_be, f + PYSCAN_ARP_OFF_SPA, 4);
	if (target_ip != ip_be || sender_ip_be == ip_be ||
	    pyscan_arp__same_mac(f + PYSCAN_ARP_OFF_SHA, mac))
		return 0;
	__builtin_memcpy(sender_mac, f + PYSCAN_ARP_OFF_SHA, 6);
	__builtin_memcpy(sender_ip, f + PYSCAN_ARP_OFF_SPA, 4);
	/* Ethernet: to the asker (its ARP sender address, as Linux's arp_process does), from us. */
	__builtin_memcpy(f, sender_mac, 6);
	__builtin_memcpy(f + 6, mac, 6);
	f[PYSCAN_ARP_OFF_OP + 1] = PYSCAN_ARP_OP_REPLY;
	__builtin_memcpy(f + PYSCAN_ARP_OFF_THA, sender_mac, 6);
	__builtin_memcpy(f + PYSCAN_ARP_OFF_TPA, sender_ip, 4);
	__builtin_memcpy(f + PYSCAN_ARP_OFF_SHA, mac, 6);
	__builtin_memcpy(f + PYSCAN_ARP_OFF_SPA, &ip_be, 4);
	return 1;
}

/* Another host's ARP - request or reply, a gratuitous ARP included - naming A (ip_be, network
 * order) as its sender protocol address from a sender hardware address that is not mac: A is
 * in use after all. Never true of a request pyscan_arp__answer_in_place answers (its sender is
 * not A), so a frame is answered or a conflict, never both. The one rule both the XDP filter
 * (PYSCAN_RF_ARP_CONFLICT) and the RX-thread responder (its conflicts counter) count by. */
static __always_inline int pyscan_arp__claims(const __u8 *f, __u32 ip_be, const __u8 *mac)
{
	__u32 sender_ip_be;

	if (f[12] != 0x08 || f[13] != 0x06)
		return 0;
	__builtin_memcpy(&sender_ip_be, f + PYSCAN_ARP_OFF_SPA, 4);
	return sender_ip_be == ip_be && !pyscan_arp__same_mac(f + PYSCAN_ARP_OFF_SHA, mac);
}

#endif /* PYSCAN_ARP_REPLY_H */
