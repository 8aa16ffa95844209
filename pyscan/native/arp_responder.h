/* SPDX-License-Identifier: GPL-2.0-only
 *
 * arp_responder.h - answers ARP requests for a scan source address the host does not own
 * (--source-ip of a free address on the link), for the drivers whose received frames reach
 * the RX thread (af-packet, pfring-zc). af-xdp and xdp-live answer in their XDP filter
 * instead (pyscan/bpf/reply_filter.bpf.c); both use the same rewrite (pyscan/bpf/arp_reply.h).
 * An IPv6 source gets the same responder for neighbour discovery (pyscan_ndp_responder__open,
 * rewrite pyscan/bpf/ndp_reply.h): solicitations for the address are answered, another
 * host's duplicate address detection or advertisement for it is counted as a conflict.
 *
 * The answer leaves through a packet socket of its own, not through a driver TX ring: those
 * rings have one user thread each (ring.h), the TX threads, and they are gone once the
 * probes are sent, while targets keep asking for the address until the last reply is in.
 * One sendto() of 60 bytes per request is plenty: only the next hop ever asks, a few times.
 *
 * Invariant: handle() is called by one thread (the engine's RX or ingest caller); stats()
 * may run on any thread and reads only relaxed atomics. The responder never receives: its
 * socket is bound with protocol 0.
 */
#ifndef PYSCAN_ARP_RESPONDER_H
#define PYSCAN_ARP_RESPONDER_H

#include <stddef.h>
#include <stdint.h>

#define PYSCAN_ARP_REPLY_LEN 60 /* the 42-byte reply padded to Ethernet's minimum frame */
#define PYSCAN_NDP_REPLY_LEN 86 /* Ethernet + IPv6 + NA or NS with one link-layer option */

struct pyscan_arp_responder_stats {
	uint64_t answered;    /* requests for the address, replies handed to the kernel */
	uint64_t send_errors; /* replies the socket refused (counted, not retried: ARP retries) */
	uint64_t conflicts;   /* ARP from another MAC claiming the address as its sender: the
			       * address is in use on the link, replies may go there instead */
};

typedef struct pyscan_arp_responder pyscan_arp_responder;

/* The reply to request (len bytes) when it is an ARP request to answer for ip_be (network
 * order) with mac (6 bytes): written to out, PYSCAN_ARP_REPLY_LEN returned. 0 when the frame
 * is anything else or capacity is too small; out is then untouched. */
uint32_t pyscan_arp__build_reply(const uint8_t *request, uint32_t len, uint32_t ip_be,
				 const uint8_t *mac, uint8_t *out, uint32_t capacity);

/* The broadcast request "who-has target_ip_be, tell ip_be at mac" (60 bytes) into out; 0 when
 * capacity is too small. */
uint32_t pyscan_arp__build_request(uint32_t ip_be, const uint8_t *mac, uint32_t target_ip_be,
				   uint8_t *out, uint32_t capacity);
/* Sends that request once on ifindex (calling thread's namespace) and returns 0, or -errno.
 * Before the first probe, to the next hop: a host answering a request for its own address
 * also learns the asker's (Linux: a STALE neighbour entry), so the first replies to an
 * unowned source leave at once instead of waiting in the gateway's unresolved-neighbour
 * queue (unres_qlen_bytes), which overflows at scan rates while the RX thread answers.
 * masscan ARPs its router from --source-ip the same way. */
int pyscan_arp__announce(int ifindex, uint32_t ip_be, const uint8_t *mac, uint32_t target_ip_be);

/* The IPv6 twins, addresses 16 bytes: the advertisement answering request for ip (86 bytes,
 * ndp_reply.h), 0 when it is not a solicitation to answer; the solicitation "who has target,
 * I am ip at mac" (to target's solicited-node group, with our link-layer address option);
 * that solicitation sent once on ifindex, 0 or -errno. Before the first probe, to the next
 * hop: Linux creates a STALE neighbour entry for the source of a solicitation with that
 * option, so the first replies to ip leave at once (the IPv6 form of pyscan_arp__announce). */
uint32_t pyscan_ndp__build_reply(const uint8_t *request, uint32_t len, const uint8_t *ip,
				 const uint8_t *mac, uint8_t *out, uint32_t capacity);
uint32_t pyscan_ndp__build_solicit(const uint8_t *ip, const uint8_t *mac, const uint8_t *target,
				   uint8_t *out, uint32_t capacity);
int pyscan_ndp__announce(int ifindex, const uint8_t *ip, const uint8_t *mac,
			 const uint8_t *target);

/* A responder for ip_be on interface ifindex of the calling thread's network namespace.
 * NULL + errno and a one-line reason in err on failure. */
pyscan_arp_responder *pyscan_arp_responder__open(int ifindex, uint32_t ip_be, const uint8_t *mac,
						 char *err, size_t errlen);
/* The same for the IPv6 address ip (16 bytes): handle() answers neighbour solicitations. */
pyscan_arp_responder *pyscan_ndp_responder__open(int ifindex, const uint8_t *ip,
						 const uint8_t *mac, char *err, size_t errlen);
/* 1 when frame was an ARP request for the address (answered, or counted as a send error),
 * 0 otherwise (a claimant's ARP is counted in conflicts, still 0). */
int pyscan_arp_responder__handle(pyscan_arp_responder *r, const uint8_t *frame, uint32_t len);
void pyscan_arp_responder__stats(const pyscan_arp_responder *r,
				 struct pyscan_arp_responder_stats *out);
void pyscan_arp_responder__close(pyscan_arp_responder *r);

_Static_assert(sizeof(struct pyscan_arp_responder_stats) == 24, "arp responder stats layout");

#endif /* PYSCAN_ARP_RESPONDER_H */
