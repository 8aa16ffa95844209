/* SPDX-License-Identifier: GPL-2.0-only
 *
 * ring.h - the one ring-buffer interface every driver implements.
 *
 * The TX loop (engine) and the RX loop are written once against these operations; a driver
 * (af_packet, af_xdp, pfring_zc, null) is a struct whose first member is a struct pyscan_ring
 * and whose ops table fills in what it supports.
 *
 * Invariants:
 *  - A ring is used by exactly one thread per direction: one TX thread owns a TX ring, one RX
 *    thread owns an RX ring. No op takes a lock; a driver that needs one is doing it wrong.
 *  - A TX ring declares tx_slot_capacity when it opens: every slot tx_reserve hands out has
 *    at least that many bytes, so a caller checks the size before reserving anything.
 *  - tx_reserve hands out up to max writable slots (data + capacity), all or some; the caller
 *    writes frames, sets len on each, and passes exactly those slots, in order, to tx_submit.
 *    A submitted frame is sent exactly once: a driver whose hardware takes part of a burst
 *    retries the rest itself before tx_submit returns. tx_submit returns how many of the n
 *    frames it accepted (0..n); the others are lost, counted in tx_errors, their slots given
 *    back, and ring->error says why. A ring that can no longer send (device gone or down)
 *    says so by a negative tx_kick, which ends the TX loop.
 *  - tx_reclaim frees slots whose frames have left (completions); tx_kick makes the kernel
 *    or NIC start sending what was submitted. tx_flush waits (bounded) until every submitted
 *    frame has left, so counters are final when the TX thread ends.
 *  - rx_peek returns up to max frames that stay valid until rx_release(n) gives the first n
 *    back; rx_wait blocks until frames may be ready or the timeout passes (returns 0 on
 *    timeout, 1 when woken, -errno on error).
 *  - destroy releases every resource the ring holds (sockets, mmaps, UMEM, libraries); it is
 *    safe on a ring that failed half-way through opening.
 *  - Lifetime (ring.c): a thread that loops over a ring (the engine's run_tx/run_rx) enters it
 *    first and leaves it when done; pyscan_ring__destroy sets closing, which such loops check
 *    every batch, and waits until no thread is inside before the driver frees anything.
 */
#ifndef PYSCAN_RING_H
#define PYSCAN_RING_H

#include <stdint.h>

struct pyscan_ring;
typedef struct pyscan_ring pyscan_ring;

struct pyscan_tx_slot {
	uint8_t *data;     /* where to write the frame (Ethernet header first) */
	uint32_t capacity; /* bytes available at data */
	uint32_t len;      /* set by the caller before submit */
	uint64_t handle;   /* driver-private: frame address, ring index, buffer handle index */
};

/* pyscan_rx_frame.flags: the kernel or NIC vouches for the frame's L4 checksum - it verified
 * it, or the frame was built on this host with the checksum left to an offload that never ran
 * (veth, loopback: TP_STATUS_CSUMNOTREADY), so the bytes cannot be checked and need not be. */
#define PYSCAN_RX_L4_CSUM_TRUSTED 1u

struct pyscan_rx_frame {
	const uint8_t *data; /* Ethernet header first */
	uint32_t len;
	uint32_t flags;      /* PYSCAN_RX_* */
};

/* Counters a driver keeps; the engine adds its own. Monotonic, read racily by Python. */
struct pyscan_ring_stats {
	uint64_t tx_frames;     /* frames accepted by the kernel/NIC */
	uint64_t tx_bytes;
	uint64_t tx_retries;    /* reserve or submit found the ring full and had to wait */
	uint64_t tx_errors;     /* frames the driver failed to send (never silently dropped) */
	uint64_t rx_frames;     /* frames seen on the RX ring */
	uint64_t rx_bytes;
	uint64_t rx_drops;      /* frames the kernel/NIC dropped before we saw them */
	uint64_t rx_filtered;   /* frames dropped/passed by an in-kernel filter before the ring */
};

struct pyscan_ring_ops {
	const char *name;
	/* TX side; NULL on an RX-only ring */
	uint32_t (*tx_reserve)(struct pyscan_ring *ring, struct pyscan_tx_slot *slots, uint32_t max);
	int (*tx_submit)(struct pyscan_ring *ring, struct pyscan_tx_slot *slots, uint32_t n);
	uint32_t (*tx_reclaim)(struct pyscan_ring *ring);
	int (*tx_kick)(struct pyscan_ring *ring);
	int (*tx_flush)(struct pyscan_ring *ring, int timeout_ms);
	/* RX side; NULL on a TX-only ring */
	uint32_t (*rx_peek)(struct pyscan_ring *ring, struct pyscan_rx_frame *frames, uint32_t max);
	void (*rx_release)(struct pyscan_ring *ring, uint32_t n);
	int (*rx_wait)(struct pyscan_ring *ring, int timeout_ms);
	/* both */
	void (*get_stats)(struct pyscan_ring *ring, struct pyscan_ring_stats *out);
	void (*destroy)(struct pyscan_ring *ring);
};

struct pyscan_ring {
	const struct pyscan_ring_ops *ops;
	char error[128]; /* last error text, for Python; empty when none */
	uint32_t tx_slot_capacity; /* TX rings: bytes every reserved slot has at least */
	uint32_t users;            /* threads inside (pyscan_ring__enter), atomic */
	uint32_t closing;          /* set once by destroy/quiesce, atomic */
};

/* Exported to Python (ring.cdef). */
void pyscan_ring__stats(struct pyscan_ring *ring, struct pyscan_ring_stats *out);
const char *pyscan_ring__error(struct pyscan_ring *ring);
void pyscan_ring__destroy(struct pyscan_ring *ring);

/* Lifetime, for the loops in the engine and for drivers that release shared resources:
 * enter returns 0, or -ESHUTDOWN once the ring is closing (then the caller did not enter);
 * closing is what loops poll; quiesce sets closing and returns once no thread is inside. */
int pyscan_ring__enter(struct pyscan_ring *ring);
void pyscan_ring__leave(struct pyscan_ring *ring);
void pyscan_ring__quiesce(struct pyscan_ring *ring);
/* Sets closing without waiting: loops inside return within a batch (Python's close() of a
 * ring that a TX/RX call still uses; the destroy follows when that call returns). */
void pyscan_ring__shutdown(struct pyscan_ring *ring);
static inline int pyscan_ring__closing(const struct pyscan_ring *ring)
{
	return (int)__atomic_load_n(&ring->closing, __ATOMIC_RELAXED);
}

_Static_assert(sizeof(struct pyscan_tx_slot) == 24, "pyscan_tx_slot layout");
_Static_assert(sizeof(struct pyscan_rx_frame) == 16, "pyscan_rx_frame layout");
_Static_assert(sizeof(struct pyscan_ring_stats) == 64, "pyscan_ring_stats layout");

#endif /* PYSCAN_RING_H */
