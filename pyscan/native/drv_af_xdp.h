/* SPDX-License-Identifier: GPL-2.0-only
 *
 * drv_af_xdp.h - the AF_XDP driver (libxdp sockets + the XDP reply filter) as C and Python
 * see it.
 *
 * One pyscan_afxdp owns, for one interface: the reply filter (loaded by bpf_object.c with the
 * scan's key, attached here through a bpf_link, so the kernel detaches it when the process
 * dies however it dies), and one AF_XDP socket with its own UMEM per queue. The first
 * tx_queues sockets carry a TX ring each (one TX thread per ring); every socket carries an RX
 * ring, and one RX ring object reads all of them, because replies arrive on whichever queue
 * the peer hashes them to. TX ops: drv_af_xdp_tx.c; RX ops: drv_af_xdp_rx.c; open, close and
 * lifetime: drv_af_xdp.c; what they share: drv_af_xdp_private.h.
 */
#ifndef PYSCAN_DRV_AF_XDP_H
#define PYSCAN_DRV_AF_XDP_H

#include <stddef.h>
#include <stdint.h>

#include "bpf_object.h"
#include "reply_filter.h"
#include "ring.h"

#define PYSCAN_AFXDP_BIND_AUTO 0     /* zero-copy when the driver can, copy otherwise */
#define PYSCAN_AFXDP_BIND_ZEROCOPY 1 /* ask for zero-copy; copy with a warning if refused */
#define PYSCAN_AFXDP_BIND_COPY 2

#define PYSCAN_AFXDP_ATTACH_AUTO 0    /* native when the driver has XDP, generic otherwise */
#define PYSCAN_AFXDP_ATTACH_NATIVE 1  /* ask for native; generic with a warning if refused */
#define PYSCAN_AFXDP_ATTACH_GENERIC 2

struct pyscan_afxdp_config {
	char ifname[16];
	uint32_t queue_count; /* sockets on queues 0 .. queue_count-1 */
	uint32_t tx_queues;   /* the first tx_queues sockets also get a TX ring */
	uint32_t want_rx;     /* 0: TX only, no filter program, no RX rings */
	uint32_t bind_mode;   /* PYSCAN_AFXDP_BIND_* */
	uint32_t attach_mode; /* PYSCAN_AFXDP_ATTACH_* */
	uint32_t ring_size;   /* descriptors per ring, power of two; also UMEM frames per direction */
	uint32_t frame_size;  /* UMEM frame size, 2048 or 4096 */
	uint32_t scanner_ip_be; /* the filter accepts replies to this address only; 0 = any */
	uint16_t port_lo;       /* the scan's source ports, host order, inclusive */
	uint16_t port_hi;
	uint32_t rx_queues;     /* the first rx_queues sockets get an RX ring; 0 = all */
	uint8_t key[16];        /* the scan's cookie key, as the engine gets it */
	uint32_t rx_ring_size;  /* RX and fill ring descriptors and RX UMEM frames per RX socket,
				 * power of two; 0 = ring_size. The RX thread may be off the CPU
				 * for milliseconds: this is how many replies a socket holds meanwhile */
	uint32_t probe_mask;    /* the scan's probe modules (bit = id, probe_ids.h): the filter's matches */
	uint32_t arp_ip_be;     /* an unowned source address whose ARP requests the filter
				 * answers (XDP_TX, arp_reply.h); 0 = none, the kernel's job */
	uint8_t arp_mac[6];     /* the answer's MAC: the interface's */
	uint8_t arp_redirect;   /* 1: answer by redirect to the interface (veth), 0: XDP_TX */
	uint8_t arp_reserved;
	uint8_t ndp_ip[16];     /* with arp_ip_be 0: an unowned IPv6 source whose neighbour
				 * solicitations the filter answers (ndp_reply.h); all zero = none */
};

/* What was chosen, for the status line and the summary. */
struct pyscan_afxdp_info {
	uint32_t zerocopy;       /* 1 when every socket is bound zero-copy */
	uint32_t generic_attach; /* 1 when the filter runs in generic (skb) mode */
	uint32_t queue_count;
	uint32_t tx_queues;
	uint32_t ring_size;
	uint32_t frame_size;
	uint32_t prog_id;        /* kernel id of the attached filter, 0 when TX only */
	uint32_t rx_queues;      /* sockets with an RX ring */
	uint32_t rx_ring_size;   /* per RX socket; 0 when TX only */
	char warnings[256];      /* fallbacks taken, "; "-separated; empty when none */
};

struct pyscan_afxdp;

/* Kernel support and privileges, checked without side effects. 0 = usable, else -errno. */
int pyscan_afxdp__probe(char *err, size_t errlen);
/* Queue counts through ethtool (current netns); -errno when the driver will not say. */

struct pyscan_afxdp *pyscan_afxdp__open(const struct pyscan_afxdp_config *cfg,
					const char *object_path, char *err, size_t errlen);
pyscan_ring *pyscan_afxdp__tx_ring(struct pyscan_afxdp *xdp, uint32_t index);
pyscan_ring *pyscan_afxdp__rx_ring(struct pyscan_afxdp *xdp);
void pyscan_afxdp__info(struct pyscan_afxdp *xdp, struct pyscan_afxdp_info *out);
int pyscan_afxdp__filter_counters(struct pyscan_afxdp *xdp, uint64_t *out, uint32_t n);
/* Detaches the filter and closes every socket now; memory goes when the last ring is destroyed. */
void pyscan_afxdp__close(struct pyscan_afxdp *xdp);

_Static_assert(sizeof(struct pyscan_afxdp_config) == 108, "pyscan_afxdp_config layout");
_Static_assert(sizeof(struct pyscan_afxdp_info) == 292, "pyscan_afxdp_info layout");

#endif /* PYSCAN_DRV_AF_XDP_H */
