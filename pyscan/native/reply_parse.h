/* SPDX-License-Identifier: GPL-2.0-only
 *
 * reply_parse.h - the one parser of received frames: Ethernet (up to two VLAN tags), IPv4 and
 * a view of the L4 header, for every probe module's classify() (probe.h).
 *
 * Acceptance rules (no length field is trusted; every read is bounded by what was captured):
 *  - len >= 14; each 802.1Q (0x8100) or 802.1ad (0x88a8) tag needs 4 more bytes, at most
 *    two tags are skipped. Any other ethertype than IPv4 after them: NOT_IP.
 *  - IPv4: 20 bytes present, version 4, 20 <= IHL*4 <= total length <= bytes captured after
 *    the L2 header (Ethernet pads short frames, so total length, not len, ends the packet);
 *    MF set or a fragment offset: MALFORMED (a fragment is never a whole reply).
 *  - L4: l4/l4_len is the IPv4 payload (total length - IHL*4). Its fixed header is decoded
 *    only when wholly inside it (TCP 20, UDP 8, ICMP 8 bytes): then l4_complete = 1. A cut
 *    short header is for the module to judge (it counts as MALFORMED only if the reply is
 *    otherwise ours), so it is not an error here. TCP options are not read.
 * Checksums are verified apart, by pyscan_reply__checksums_ok() on a parsed view: the IPv4
 * header checksum always, and the L4 checksum (TCP, UDP unless zero, ICMP) over the IPv4
 * payload when the fixed header is complete, unless the driver vouches for it (the kernel or
 * NIC validated it, or the frame was built on this host and never carried one). The engine
 * calls it before a module classifies (engine_rx.c); parsing alone stays a structural check.
 *
 * Invariant: pyscan_reply__parse is a pure function of (frame, len) - no globals, no
 * allocation - and on PYSCAN_REPLY_OK every pointer + length in the view lies inside
 * frame[0, len). Easy to fuzz: any bytes, any len, never a read out of bounds.
 */
#ifndef PYSCAN_REPLY_PARSE_H
#define PYSCAN_REPLY_PARSE_H

#include <stdint.h>

#define PYSCAN_REPLY_OK 0
#define PYSCAN_REPLY_MALFORMED -1
#define PYSCAN_REPLY_NOT_IP -2

#define PYSCAN_IPPROTO_ICMP 1
#define PYSCAN_IPPROTO_TCP 6
#define PYSCAN_IPPROTO_UDP 17

struct pyscan_reply_view {
	const uint8_t *l3;      /* IP header */
	const uint8_t *l4;      /* IP payload */
	uint32_t l3_len;        /* IP total length */
	uint32_t l4_len;        /* payload bytes, within the capture */
	uint8_t saddr[16];      /* IPv4: the first 4 bytes, network order; rest zero */
	uint8_t daddr[16];
	uint32_t saddr4_be;     /* IPv4 shortcut for the same addresses */
	uint32_t daddr4_be;
	uint8_t family;         /* 4 (6 once IPv6 is parsed) */
	uint8_t l4_proto;       /* IP protocol number */
	uint8_t ttl;            /* TTL / hop limit */
	uint8_t vlan_tags;      /* 0..2 skipped */
	uint8_t l4_complete;    /* the protocol's fixed header is inside l4_len */
	uint8_t tcp_flags;      /* TCP only */
	uint8_t tcp_doff;       /* TCP data offset in 32-bit words, as sent (not checked) */
	uint8_t icmp_type;      /* ICMP only */
	uint8_t icmp_code;
	uint8_t reserved[3];
	uint16_t sport;         /* TCP/UDP, host order */
	uint16_t dport;
	uint32_t tcp_seq;       /* host order */
	uint32_t tcp_ack;
};

_Static_assert(sizeof(struct pyscan_reply_view) == 88, "pyscan_reply_view layout");

int pyscan_reply__parse(const uint8_t *frame, uint32_t len, struct pyscan_reply_view *out);

/* What an ICMP destination unreachable quotes of the datagram that caused it (RFC 792: its
 * IPv4 header and at least its first 8 bytes): the one reader of quotes for every module's
 * classify(), so each only judges the fields that carry its cookie. */
struct pyscan_reply_quote4 {
	const uint8_t *l4;   /* the quoted datagram's first 8 bytes (ports and TCP sequence) */
	uint32_t saddr_be;   /* the quoted header's addresses, network order */
	uint32_t daddr_be;
	uint16_t ip_id;      /* host order */
	uint16_t sport;      /* host order: bytes 0-1 and 2-3 of l4 (TCP and UDP ports) */
	uint16_t dport;
	uint8_t protocol;
	uint8_t reserved;
};

/* 0 and *q filled when view is a whole ICMP destination unreachable (type 3, any code) whose
 * quote holds an IPv4 header (IHL >= 5, options allowed) and 8 bytes after it, all inside
 * the ICMP payload; -1 otherwise (another message, or a quote cut too short to tell whose
 * probe it was). Reads only inside the view. */
int pyscan_reply__unreachable_quote4(const struct pyscan_reply_view *view,
				     struct pyscan_reply_quote4 *q);
/* 1 when the IPv4 header checksum of a view pyscan_reply__parse accepted verifies, and so does
 * its L4 checksum (skipped when l4_trusted, for a protocol without one, or a cut-short fixed
 * header, which classify() calls MALFORMED anyway); else 0. Reads only inside the view. */
int pyscan_reply__checksums_ok(const struct pyscan_reply_view *view, int l4_trusted);

#endif /* PYSCAN_REPLY_PARSE_H */
