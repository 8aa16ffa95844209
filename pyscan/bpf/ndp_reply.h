/* SPDX-License-Identifier: GPL-2.0-only
 *
 * ndp_reply.h - answering IPv6 neighbour solicitations for a source address the host does not
 * own (--source-ip of a free address in the link's prefix): the IPv6 twin of arp_reply.h. One
 * in-place rewrite shared by the XDP reply filter (reply_filter.bpf.c, XDP_TX or a redirect)
 * and the RX-thread responder of the other drivers (pyscan/native/arp_responder.c).
 *
 * Invariant: a frame is rewritten only when it is an Ethernet/IPv6 neighbour solicitation
 * (RFC 4861 4.3: next header 58, hop limit 255, type 135, code 0) whose target is A, whose
 * IPv6 source is neither unspecified (duplicate address detection: another host wants A,
 * which must not be fought over, the IPv4 gratuitous-ARP case) nor A, whose Ethernet source
 * is not our MAC, and which carries the source link-layer address option first (every
 * multicast solicitation does; Linux puts it in its unicast ones too). It becomes the solicited
 * advertisement (type 136, S and O set, target A, the target link-layer address option = mac)
 * from A to the solicitation's source, hop limit 255, ICMPv6 checksum recomputed, IPv6 payload
 * 32 bytes. Everything else is left byte for byte as it was. The caller has checked that the
 * frame holds at least PYSCAN_NDP_FRAME_LEN bytes.
 */
#ifndef PYSCAN_NDP_REPLY_H
#define PYSCAN_NDP_REPLY_H

#include <linux/types.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define PYSCAN_NDP_FRAME_LEN 86 /* Ethernet + IPv6 + NS/NA (24) + one link-layer option (8) */
#define PYSCAN_NDP_CLAIM_LEN 78 /* up to the NS/NA target: what pyscan_ndp__claims reads */
#define PYSCAN_NDP_ICMP_LEN 32
#define PYSCAN_NDP_NS 135
#define PYSCAN_NDP_NA 136
#define PYSCAN_NDP_OPT_SOURCE_LL 1
#define PYSCAN_NDP_OPT_TARGET_LL 2
#define PYSCAN_NDP_NA_SOLICITED 0x40
#define PYSCAN_NDP_NA_OVERRIDE 0x20

/* Offsets in the frame. */
#define PYSCAN_NDP_OFF_PLEN 18
#define PYSCAN_NDP_OFF_NEXT 20
#define PYSCAN_NDP_OFF_HOPS 21
#define PYSCAN_NDP_OFF_SRC 22
#define PYSCAN_NDP_OFF_DST 38
#define PYSCAN_NDP_OFF_ICMP 54
#define PYSCAN_NDP_OFF_CSUM 56
#define PYSCAN_NDP_OFF_FLAGS 58
#define PYSCAN_NDP_OFF_TARGET 62
#define PYSCAN_NDP_OFF_OPT 78
#define PYSCAN_NDP_OFF_OPT_MAC 80

static __always_inline int pyscan_ndp__same16(const __u8 *a, const __u8 *b)
{
	int diff = 0;

	for (int i = 0; i < 16; i++)
		diff |= a[i] ^ b[i];
	return !diff;
}

static __always_inline int pyscan_ndp__unspecified(const __u8 *a)
{
	int any = 0;

	for (int i = 0; i < 16; i++)
		any |= a[i];
	return !any;
}

static __always_inline int pyscan_ndp__same_mac(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] &&
	       a[5] == b[5];
}

/* Ethernet/IPv6 ICMPv6 neighbour solicitation, hop limit 255, code 0, at least 24 bytes of
 * ICMPv6 - compared as bytes, so the frame's alignment never matters. */
static __always_inline int pyscan_ndp__is_solicitation(const __u8 *f)
{
	const __u32 plen = ((__u32)f[PYSCAN_NDP_OFF_PLEN] << 8) | f[PYSCAN_NDP_OFF_PLEN + 1];

	return f[12] == 0x86 && f[13] == 0xdd && (f[14] >> 4) == 6 &&
	       f[PYSCAN_NDP_OFF_NEXT] == 58 && f[PYSCAN_NDP_OFF_HOPS] == 255 &&
	       f[PYSCAN_NDP_OFF_ICMP] == PYSCAN_NDP_NS && f[PYSCAN_NDP_OFF_ICMP + 1] == 0 &&
	       plen >= 24;
}

/* A solicitation for target whose source is unspecified: another host's duplicate address
 * detection for that address (it is about to claim it). */
static __always_inline int pyscan_ndp__is_dad_for(const __u8 *f, const __u8 *target)
{
	return pyscan_ndp__is_solicitation(f) &&
	       pyscan_ndp__same16(f + PYSCAN_NDP_OFF_TARGET, target) &&
	       pyscan_ndp__unspecified(f + PYSCAN_NDP_OFF_SRC);
}

/* Another host's neighbour discovery claiming A (ip, 16 bytes) from an Ethernet source that is
 * not mac: its duplicate address detection for A, an advertisement for A, or a solicitation
 * from A. Never true of a solicitation pyscan_ndp__answer_in_place answers (its source is
 * neither unspecified nor A), so a frame is answered or a conflict, never both. The one rule
 * both the XDP filter (PYSCAN_RF_ARP_CONFLICT) and the RX-thread responder count by; the
 * caller has checked that the frame holds at least PYSCAN_NDP_CLAIM_LEN bytes. */
static __always_inline int pyscan_ndp__claims(const __u8 *f, const __u8 *ip, const __u8 *mac)
{
	if (f[12] != 0x86 || f[13] != 0xdd || f[PYSCAN_NDP_OFF_NEXT] != 58 ||
	    pyscan_ndp__same_mac(f + 6, mac))
		return 0;
	if (pyscan_ndp__is_dad_for(f, ip))
		return 1;
	if (f[PYSCAN_NDP_OFF_ICMP] == PYSCAN_NDP_NA)
		return pyscan_ndp__same16(f + PYSCAN_NDP_OFF_TARGET, ip);
	return f[PYSCAN_NDP_OFF_ICMP] == PYSCAN_NDP_NS &&
	       pyscan_ndp__same16(f + PYSCAN_NDP_OFF_SRC, ip);
}

/* The ICMPv6 checksum of the 32-byte message at f + 54 over the IPv6 pseudo-header (RFC
 * 8200 8.1), with the checksum field itself counted as zero. */
static __always_inline __u16 pyscan_ndp__checksum(const __u8 *f)
{
	__u32 sum = PYSCAN_NDP_ICMP_LEN + 58;

	for (int i = PYSCAN_NDP_OFF_SRC; i < PYSCAN_NDP_OFF_ICMP + PYSCAN_NDP_ICMP_LEN; i += 2) {
		if (i == PYSCAN_NDP_OFF_CSUM)
			continue;
		sum += ((__u32)f[i] << 8) | f[i + 1];
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Rewrites the solicitation in f into "A is at mac" addressed to its sender; 1 when it did,
 * 0 when f is not a solicitation to answer (left untouched). ip: A, 16 bytes. */
static __always_inline int pyscan_ndp__answer_in_place(__u8 *f, const __u8 *ip, const __u8 *mac)
{
	__u16 csum;

	if (!pyscan_ndp__is_solicitation(f) ||
	    !pyscan_ndp__same16(f + PYSCAN_NDP_OFF_TARGET, ip) ||
	    pyscan_ndp__unspecified(f + PYSCAN_NDP_OFF_SRC) ||
	    pyscan_ndp__same16(f + PYSCAN_NDP_OFF_SRC, ip) || pyscan_ndp__same_mac(f + 6, mac) ||
	    ((__u32)f[PYSCAN_NDP_OFF_PLEN] << 8 | f[PYSCAN_NDP_OFF_PLEN + 1]) < PYSCAN_NDP_ICMP_LEN ||
	    f[PYSCAN_NDP_OFF_OPT] != PYSCAN_NDP_OPT_SOURCE_LL || f[PYSCAN_NDP_OFF_OPT + 1] != 1)
		return 0;
	/* Ethernet: back to the asker, from us. */
	__builtin_memcpy(f, f + 6, 6);
	__builtin_memcpy(f + 6, mac, 6);
	/* IPv6: from A to the asker, no traffic class or flow label; 32 bytes of payload
	 * (extra options are not echoed). */
	f[14] = 0x60;
	f[15] = 0;
	f[16] = 0;
	f[17] = 0;
	f[PYSCAN_NDP_OFF_PLEN] = 0;
	f[PYSCAN_NDP_OFF_PLEN + 1] = PYSCAN_NDP_ICMP_LEN;
	f[PYSCAN_NDP_OFF_HOPS] = 255;
	__builtin_memcpy(f + PYSCAN_NDP_OFF_DST, f + PYSCAN_NDP_OFF_SRC, 16);
	__builtin_memcpy(f + PYSCAN_NDP_OFF_SRC, ip, 16);
	/* ICMPv6: solicited, override; the target stays A; our MAC as the target's address. */
	f[PYSCAN_NDP_OFF_ICMP] = PYSCAN_NDP_NA;
	f[PYSCAN_NDP_OFF_FLAGS] = PYSCAN_NDP_NA_SOLICITED | PYSCAN_NDP_NA_OVERRIDE;
	f[PYSCAN_NDP_OFF_FLAGS + 1] = 0;
	f[PYSCAN_NDP_OFF_FLAGS + 2] = 0;
	f[PYSCAN_NDP_OFF_FLAGS + 3] = 0;
	f[PYSCAN_NDP_OFF_OPT] = PYSCAN_NDP_OPT_TARGET_LL;
	f[PYSCAN_NDP_OFF_OPT + 1] = 1;
	__builtin_memcpy(f + PYSCAN_NDP_OFF_OPT_MAC, mac, 6);
	csum = pyscan_ndp__checksum(f);
	f[PYSCAN_NDP_OFF_CSUM] = (__u8)(csum >> 8);
	f[PYSCAN_NDP_OFF_CSUM + 1] = (__u8)csum;
	return 1;
}

#endif /* PYSCAN_NDP_REPLY_H */
