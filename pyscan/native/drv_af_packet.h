/* SPDX-License-Identifier: GPL-2.0-only
 *
 * drv_af_packet.h - AF_PACKET rings: a TPACKET_V2 TX ring per TX thread (qdisc bypass) and
 * one TPACKET_V3 RX ring with a classic BPF filter that keeps only what can be a reply.
 *
 * Invariants: TX frames are handed to the kernel in ring order, each exactly once, and a frame
 * slot is reused only after the kernel gave it back; RX frames come out of peek once each
 * and a block returns to the kernel only when every frame in it was released.
 */
#ifndef PYSCAN_DRV_AF_PACKET_H
#define PYSCAN_DRV_AF_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"

#define PYSCAN_AFPACKET_FRAME_SIZE 2048
#define PYSCAN_AFPACKET_DEFAULT_TX_FRAMES 4096
#define PYSCAN_AFPACKET_DEFAULT_BLOCK_SIZE 1048576
#define PYSCAN_AFPACKET_DEFAULT_BLOCKS 16
#define PYSCAN_AFPACKET_RETIRE_MS 10

/* TX ring on ifindex of the calling thread's netns; frames (0 = default) rounded up to a
 * power of two (and so to whole blocks). NULL + errno + a one-line message in err on failure. */
pyscan_ring *pyscan_afpacket__open_tx(int ifindex, uint32_t frames, char *err, size_t errlen);
/* RX ring: blocks (0 = default) of block_size bytes (0 = default; a power of two, at least a
 * page). NULL + errno + a one-line message in err on failure. */
pyscan_ring *pyscan_afpacket__open_rx(int ifindex, uint32_t block_size, uint32_t blocks,
				      char *err, size_t errlen);

/* Narrows an RX ring's in-kernel filter to replies whose destination port is in
 * [first, first + count): 0, -EINVAL (not an af-packet RX ring, empty or too wide a range)
 * or -errno from the kernel. Safe while the RX thread runs. */
int pyscan_afpacket__filter_ports(pyscan_ring *ring, uint16_t first, uint32_t count);
/* The reply protocols an RX socket keeps (filter_replies): a bit per protocol. */
#define PYSCAN_AFPACKET_TCP 1
#define PYSCAN_AFPACKET_UDP 2
#define PYSCAN_AFPACKET_ICMP 4
/* IPv6 scans (one family per scan): a separate program; IPv4 and IPv6 bits never mix. */
#define PYSCAN_AFPACKET_TCP6 8
#define PYSCAN_AFPACKET_ICMP6 16
#define PYSCAN_AFPACKET_UDP6 32
#define PYSCAN_AFPACKET_ALL 7
#define PYSCAN_AFPACKET_ALL6 56
/* with IPv6 reply bits only: neighbour solicitations pass too (an unowned IPv6 source's
 * responder, arp_responder.h) */
#define PYSCAN_AFPACKET_NDP6 64
int pyscan_afpacket__filter_replies(pyscan_ring *ring, uint16_t first, uint32_t count,
                                    uint32_t protocols);
/* The classic BPF program filter_ports attaches for [first, last]: its instruction count, and
 * when max is at least that, the instructions (struct sock_filter, 8 bytes each) in out. For
 * tests that run it against the other reply filters. */
uint32_t pyscan_afpacket__reply_filter(uint16_t first, uint16_t last, uint8_t *out,
				       uint32_t max);
/* --source-ip of an address the host does not own: ARP requests for ip_be (network order;
 * 0 = none) pass the filter too, for the RX thread's responder (arp_responder.h). Takes
 * effect with the next filter_replies / filter_ports. */
int pyscan_afpacket__pass_arp(pyscan_ring *ring, uint32_t ip_be);
/* The ARP instructions pass_arp puts in front of the reply program, as reply_filter gives
 * the program (tests). */
uint32_t pyscan_afpacket__arp_prefix(uint32_t ip_be, uint8_t *out, uint32_t max);

/* The same for the IPv6 program with PYSCAN_AFPACKET_TCP6 | ICMP6 | UDP6 bits in protocols. */
uint32_t pyscan_afpacket__reply_filter6(uint16_t first, uint16_t last, uint32_t protocols,
					uint8_t *out, uint32_t max);

#endif /* PYSCAN_DRV_AF_PACKET_H */
