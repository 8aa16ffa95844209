/* SPDX-License-Identifier: GPL-2.0-only
 *
 * drv_af_xdp_private.h - what the three parts of the AF_XDP driver share, and nobody else
 * includes: drv_af_xdp.c (open, close, lifetime), drv_af_xdp_tx.c (TX ring ops) and
 * drv_af_xdp_rx.c (RX ring ops).
 *
 * Layout: one UMEM per queue socket (apis.md 2.5: simpler than a shared UMEM, which would need
 * a fill/completion pair per queue anyway). A UMEM holds the frames of each direction the
 * socket has: ring_size for the TX thread first (when the queue sends), then rx_ring_size for
 * the RX thread, whose ring is larger because it must absorb every reply that arrives while
 * the RX thread is off the CPU (2 ms lost at 250 kpps overflow 512 slots). Neither
 * thread ever touches the other's frames or the other's rings (TX: tx + completion; RX: rx +
 * fill), so the two threads share a socket without a lock. One RX ring object reads every
 * socket that has an RX ring, since replies arrive on whichever queue the peer hashes them to.
 *
 * Invariant: a struct pyscan_afxdp holds one reference for its handle and one per ring it
 * handed out; the memory (queues, rings) goes with the last reference, so rings and handle may
 * be destroyed in any order, on any thread. Kernel resources (link, sockets, UMEM) go at the
 * first close, once no thread is inside any of the rings (pyscan_ring__quiesce).
 */
#ifndef PYSCAN_DRV_AF_XDP_PRIVATE_H
#define PYSCAN_DRV_AF_XDP_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include <xdp/xsk.h>

#include "counter.h"
#include "drv_af_xdp.h"

#ifndef SOL_XDP
#define SOL_XDP 283
#endif

/* Shared between the driver's files, invisible outside pyscan._native. */
#define AFXDP_PRIVATE __attribute__((visibility("hidden")))

struct afxdp_queue {
	uint32_t queue_id;
	int has_tx;
	int has_rx;
	int fd;
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	uint8_t *area;
	size_t area_size;
	uint32_t frame_size;
	uint32_t frame_shift;  /* log2(frame_size): frame number = address >> frame_shift */
	uint32_t ring_size;    /* TX ring, completion ring and TX frames */
	uint32_t rx_ring_size; /* RX ring, fill ring and RX frames */
	int zerocopy;
	/* Zero-initialised by calloc: libxdp 1.3.1 leaves cached_prod/cached_cons of fill and
	 * completion unset (apis.md 2.2), which produced phantom completions. */
	struct xsk_ring_prod fill;
	struct xsk_ring_cons comp;
	struct xsk_ring_cons rx;
	struct xsk_ring_prod tx;

	/* TX thread only */
	uint64_t *free_frames;
	uint32_t free_count;
	uint32_t outstanding; /* submitted, not yet completed */
	uint32_t *frame_len;  /* length submitted for each TX frame, for tx_bytes at completion */
	int64_t link_checked_ns; /* CLOCK_MONOTONIC of the last link-state check */
	uint64_t tx_frames, tx_bytes, tx_retries, tx_errors; /* counter.h: bump / load */

	/* RX thread only */
	uint32_t rx_peek_index;
	uint32_t rx_peeked;
	uint64_t rx_frames, rx_bytes; /* counter.h: bump / load */
};

struct afxdp_tx_ring {
	struct pyscan_ring base;
	struct pyscan_afxdp *owner;
	struct afxdp_queue *queue;
};

struct afxdp_rx_ring {
	struct pyscan_ring base;
	struct pyscan_afxdp *owner;
	uint32_t cursor;             /* next queue to look at first, for fairness */
	struct afxdp_queue *active;  /* the queue the last rx_peek took frames from */
};

struct pyscan_afxdp {
	/* One reference for the handle, one per ring; memory goes with the last (atomic). */
	uint32_t refs;
	int closed;
	int ifindex;
	struct afxdp_queue *queues;
	uint32_t queue_count;
	struct afxdp_tx_ring *tx_rings;
	uint32_t tx_count;
	struct afxdp_rx_ring rx_ring;
	int has_rx;
	struct pyscan_replyfilter *filter;
	int link_fd;
	int ctl_fd;       /* AF_INET datagram socket for link-state ioctls; -1 if none */
	char ifname[16];
	uint64_t final_counters[PYSCAN_RF_NCOUNTERS]; /* the filter's counters when it was closed */
	struct pyscan_afxdp_info info;
};

AFXDP_PRIVATE extern const struct pyscan_ring_ops afxdp_tx_ops;
AFXDP_PRIVATE extern const struct pyscan_ring_ops afxdp_rx_ops;

/* 1 when the interface is administratively down, has no carrier, or is gone. */
AFXDP_PRIVATE int afxdp_link_down(struct pyscan_afxdp *xdp);

/* Gives back one reference (the handle's or a ring's); the last frees everything. */
AFXDP_PRIVATE void afxdp_drop_reference(struct pyscan_afxdp *xdp);

#endif /* PYSCAN_DRV_AF_XDP_PRIVATE_H */
