/* SPDX-License-Identifier: GPL-2.0-only
 *
 * drv_null.h - a ring that sends nothing: TX frames are generated into reusable memory slots
 * and counted; optionally the first bytes of every frame are captured for tests; optionally
 * an RX side replays frames that a test injects.
 *
 * Invariant: every submitted frame is counted exactly once in tx_frames/tx_bytes (and, while
 * the capture buffer has room, recorded in submission order); injected frames come out of
 * rx_peek once each, in injection order.
 */
#ifndef PYSCAN_DRV_NULL_H
#define PYSCAN_DRV_NULL_H

#include <stdint.h>

#include "ring.h"

#define PYSCAN_NULL_SLOT_SIZE 2048
#define PYSCAN_NULL_MAX_SLOTS 65536
/* One capture record: little-endian u32 frame length, the frame's first 116 bytes, then the
 * host-order u64 CLOCK_MONOTONIC ns at which it was submitted (retry-delay tests). */
#define PYSCAN_NULL_CAPTURE_STRIDE 128
#define PYSCAN_NULL_CAPTURE_KEEP 116

/* Misbehaviour a test asks of a null TX ring; all zero = a perfect device. */
struct pyscan_null_faults {
	uint32_t slot_capacity;       /* declare and hand out slots this small (0: SLOT_SIZE) */
	uint32_t reserve_max;         /* hand out at most this many slots per reserve (0: all) */
	uint64_t submit_accept_limit; /* accept only this many frames in all, lose the rest */
	int32_t kick_error;           /* -errno every kick returns once kick_error_after frames
				         were submitted (the device went down); 0: never */
	uint32_t pad;
	uint64_t kick_error_after;
};

/* What a null TX ring saw of the ring.h contract. */
struct pyscan_null_audit {
	uint64_t reserved;     /* slots handed out */
	uint64_t submitted;    /* slots given back through submit */
	uint64_t out_of_order; /* submitted slots that were not the oldest reserved one */
};

_Static_assert(sizeof(struct pyscan_null_faults) == 32, "pyscan_null_faults layout");
_Static_assert(sizeof(struct pyscan_null_audit) == 24, "pyscan_null_audit layout");

/* TX-only ring of `slots` reusable frames (1..PYSCAN_NULL_MAX_SLOTS). NULL + errno on failure. */
pyscan_ring *pyscan_null__open(uint32_t slots);
/* Same, recording up to capture_frames frames (later ones are counted, not recorded). */
pyscan_ring *pyscan_null__open_capture(uint32_t slots, uint32_t capture_frames);
/* RX-only ring that returns what pyscan_null__inject puts in (rx_slots frames of room). */
pyscan_ring *pyscan_null__open_rx(uint32_t rx_slots);
/* Number of records captured; *records points at them (valid until the ring is destroyed). */
uint64_t pyscan_null__captured(pyscan_ring *ring, const uint8_t **records);
/* Queues one frame for the RX side: 0, -ENOBUFS when full, -EMSGSIZE, -EINVAL (not an RX
 * null ring). One injecting thread at a time, concurrent with the RX thread. */
int pyscan_null__inject(pyscan_ring *ring, const uint8_t *frame, uint32_t len);
/* Test hooks of a null TX ring: 0, or -EINVAL (not a null TX ring, bad values). Set faults
 * before the TX thread starts. */
int pyscan_null__set_faults(pyscan_ring *ring, const struct pyscan_null_faults *faults);
int pyscan_null__audit(pyscan_ring *ring, struct pyscan_null_audit *out);

#endif /* PYSCAN_DRV_NULL_H */
