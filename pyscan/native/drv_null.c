/* SPDX-License-Identifier: GPL-2.0-only
 *
 * drv_null.c - the null driver: generation without I/O (dry runs, the generation benchmark)
 * and a frame-injection RX side for testing the RX loop without a network.
 *
 * Invariant (see drv_null.h): submitted frames are counted once; the RX side is a
 * single-producer (inject) single-consumer (RX thread) ring published with release stores.
 * The TX side audits the ring.h contract (every reserved slot submitted once, in order) and
 * can be told to misbehave like a real device (pyscan_null__set_faults), for the tests of
 * the engine's failure paths.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drv_null.h"
#include "ratelimit.h"

struct null_ring {
	struct pyscan_ring ring;
	struct pyscan_ring_stats stats; /* written by the owning thread, read racily */

	/* TX */
	uint8_t *slab;
	uint32_t slots;
	uint32_t next;        /* slot the next reserve hands out */
	uint32_t outstanding; /* reserved, not yet submitted */
	uint64_t reserved_seq; /* slots ever reserved: the next slot's handle */
	uint8_t *capture;
	uint64_t capture_cap;
	uint64_t captured;
	struct pyscan_null_faults faults;
	struct pyscan_null_audit audit; /* written by the TX thread, read racily */

	/* RX */
	uint8_t *rx_slab;
	uint32_t *rx_len;
	uint64_t rx_slots;
	uint64_t rx_head; /* written by inject */
	uint64_t rx_tail; /* written by the RX thread on release */
	uint64_t rx_peeked;
};

static inline void bump(uint64_t *p, uint64_t n)
{
	__atomic_store_n(p, *p + n, __ATOMIC_RELAXED);
}

static uint32_t null_tx_reserve(struct pyscan_ring *ring, struct pyscan_tx_slot *slots,
				uint32_t max)
{
	struct null_ring *r = (struct null_ring *)ring;
	uint32_t n = r->slots - r->outstanding;
	if (n > max)
		n = max;
	if (r->faults.reserve_max && n > r->faults.reserve_max)
		n = r->faults.reserve_max;
	/* At most two runs of consecutive slots (before and after the slab's end), so the
	 * per-slot loop has no wrap-around test. */
	const uint32_t capacity = ring->tx_slot_capacity;
	for (uint32_t i = 0; i < n;) {
		const uint32_t run = r->slots - r->next < n - i ? r->slots - r->next : n - i;
		uint8_t *const data = r->slab + (uint64_t)r->next * PYSCAN_NULL_SLOT_SIZE;
		const uint64_t sequence = r->reserved_seq + i;
		struct pyscan_tx_slot *const out = slots + i;
		for (uint32_t k = 0; k < run; k++)
			out[k] = (struct pyscan_tx_slot){.data = data + (uint64_t)k * PYSCAN_NULL_SLOT_SIZE,
							 .capacity = capacity, .len = 0,
							 .handle = sequence + k};
		i += run;
		r->next = r->next + run == r->slots ? 0 : r->next + run;
	}
	r->reserved_seq += n;
	r->outstanding += n;
	bump(&r->audit.reserved, n);
	return n;
}

/* Keeps the first frames whole (up to PYSCAN_NULL_CAPTURE_KEEP bytes) for the tests. */
static void capture(struct null_ring *r, const struct pyscan_tx_slot *slots, uint32_t n)
{
	const uint64_t submitted_ns = pyscan_clock__now_ns();
	for (uint32_t i = 0; i < n && r->captured < r->capture_cap; i++) {
		const uint32_t len = slots[i].len;
		uint8_t *rec = r->capture + r->captured * PYSCAN_NULL_CAPTURE_STRIDE;
		const uint32_t keep = len < PYSCAN_NULL_CAPTURE_KEEP ? len : PYSCAN_NULL_CAPTURE_KEEP;
		rec[0] = (uint8_t)len;
		rec[1] = (uint8_t)(len >> 8);
		rec[2] = (uint8_t)(len >> 16);
		rec[3] = (uint8_t)(len >> 24);
		memcpy(rec + 4, slots[i].data, keep);
		memcpy(rec + PYSCAN_NULL_CAPTURE_STRIDE - 8, &submitted_ns, 8);
		__atomic_store_n(&r->captured, r->captured + 1, __ATOMIC_RELEASE);
	}
}

static int null_tx_submit(struct pyscan_ring *ring, struct pyscan_tx_slot *slots, uint32_t n)
{
	struct null_ring *r = (struct null_ring *)ring;
	/* Handles are reserve sequence numbers: the oldest outstanding slot's is
	 * reserved_seq - outstanding, and submits must come in reserve order, without gaps,
	 * never more than were reserved. Counted without a branch per slot: the audit costs
	 * the generation benchmark as little as a real device's descriptor writes. */
	const uint32_t checked = n < r->outstanding ? n : r->outstanding;
	const uint64_t expect = r->reserved_seq - r->outstanding;
	uint32_t misplaced = n - checked;
	uint64_t bytes = 0;
	for (uint32_t i = 0; i < checked; i++) {
		misplaced += slots[i].handle != expect + i;
		bytes += slots[i].len;
	}
	if (misplaced)
		bump(&r->audit.out_of_order, misplaced);
	n = checked;
	bump(&r->audit.submitted, n);
	r->outstanding -= n;
	/* A device that takes only part of the burst: the rest are lost (ring.h), and only
	 * the accepted frames' bytes count. */
	uint32_t accepted = n;
	if (r->faults.submit_accept_limit && r->audit.submitted > r->faults.submit_accept_limit) {
		const uint64_t before = r->audit.submitted - n;
		accepted = before >= r->faults.submit_accept_limit
				   ? 0 : (uint32_t)(r->faults.submit_accept_limit - before);
		bump(&r->stats.tx_errors, n - accepted);
		snprintf(ring->error, sizeof(ring->error),
			 "null TX: %u of %u frames lost (fault injected)", n - accepted, n);
		bytes = 0;
		for (uint32_t i = 0; i < accepted; i++)
			bytes += slots[i].len;
	}
	if (r->captured < r->capture_cap)
		capture(r, slots, accepted);
	bump(&r->stats.tx_frames, accepted);
	bump(&r->stats.tx_bytes, bytes);
	return (int)accepted;
}

static uint32_t null_tx_reclaim(struct pyscan_ring *ring)
{
	return 0; /* submit completes frames at once */
}

static int null_tx_kick(struct pyscan_ring *ring)
{
	struct null_ring *r = (struct null_ring *)ring;
	if (r->faults.kick_error && r->audit.submitted >= r->faults.kick_error_after) {
		snprintf(ring->error, sizeof(ring->error), "null TX: %s (fault injected)",
			 strerror(-r->faults.kick_error));
		return r->faults.kick_error;
	}
	return 0;
}

static int null_tx_flush(struct pyscan_ring *ring, int timeout_ms)
{
	return 0;
}

static uint32_t null_rx_peek(struct pyscan_ring *ring, struct pyscan_rx_frame *frames, uint32_t max)
{
	struct null_ring *r = (struct null_ring *)ring;
	const uint64_t head = __atomic_load_n(&r->rx_head, __ATOMIC_ACQUIRE);
	uint64_t pos = r->rx_tail + r->rx_peeked;
	uint32_t n = 0;
	while (pos != head && n < max) {
		const uint64_t slot = pos % r->rx_slots;
		frames[n].data = r->rx_slab + slot * PYSCAN_NULL_SLOT_SIZE;
		frames[n].len = r->rx_len[slot];
		frames[n].flags = 0;
		bump(&r->stats.rx_bytes, frames[n].len);
		n++;
		pos++;
	}
	r->rx_peeked += n;
	bump(&r->stats.rx_frames, n);
	return n;
}

static void null_rx_release(struct pyscan_ring *ring, uint32_t n)
{
	struct null_ring *r = (struct null_ring *)ring;
	if (n > r->rx_peeked)
		n = (uint32_t)r->rx_peeked;
	r->rx_peeked -= n;
	__atomic_store_n(&r->rx_tail, r->rx_tail + n, __ATOMIC_RELEASE);
}

static int null_rx_wait(struct pyscan_ring *ring, int timeout_ms)
{
	struct null_ring *r = (struct null_ring *)ring;
	/* Nothing to poll: look every millisecond, which is plenty for tests. */
	for (int waited = 0;; waited++) {
		if (__atomic_load_n(&r->rx_head, __ATOMIC_ACQUIRE) != r->rx_tail + r->rx_peeked)
			return 1;
		if (waited >= timeout_ms)
			return 0;
		const struct timespec ms = {0, 1000000};
		nanosleep(&ms, NULL);
	}
}

static void null_get_stats(struct pyscan_ring *ring, struct pyscan_ring_stats *out)
{
	struct null_ring *r = (struct null_ring *)ring;
	const uint64_t *src = (const uint64_t *)&r->stats;
	uint64_t *dst = (uint64_t *)out;
	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

static void null_destroy(struct pyscan_ring *ring)
{
	struct null_ring *r = (struct null_ring *)ring;
	free(r->slab);
	free(r->capture);
	free(r->rx_slab);
	free(r->rx_len);
	free(r);
}

static const struct pyscan_ring_ops null_tx_ops = {
	.name = "null",
	.tx_reserve = null_tx_reserve,
	.tx_submit = null_tx_submit,
	.tx_reclaim = null_tx_reclaim,
	.tx_kick = null_tx_kick,
	.tx_flush = null_tx_flush,
	.get_stats = null_get_stats,
	.destroy = null_destroy,
};

static const struct pyscan_ring_ops null_rx_ops = {
	.name = "null-rx",
	.rx_peek = null_rx_peek,
	.rx_release = null_rx_release,
	.rx_wait = null_rx_wait,
	.get_stats = null_get_stats,
	.destroy = null_destroy,
};

pyscan_ring *pyscan_null__open_capture(uint32_t slots, uint32_t capture_frames)
{
	if (slots < 1 || slots > PYSCAN_NULL_MAX_SLOTS) {
		errno = EINVAL;
		return NULL;
	}
	struct null_ring *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->ring.ops = &null_tx_ops;
	r->ring.tx_slot_capacity = PYSCAN_NULL_SLOT_SIZE;
	r->slots = slots;
	r->slab = calloc(slots, PYSCAN_NULL_SLOT_SIZE);
	r->capture_cap = capture_frames;
	if (capture_frames)
		r->capture = malloc((uint64_t)capture_frames * PYSCAN_NULL_CAPTURE_STRIDE);
	if (!r->slab || (capture_frames && !r->capture)) {
		null_destroy(&r->ring);
		errno = ENOMEM;
		return NULL;
	}
	return &r->ring;
}

pyscan_ring *pyscan_null__open(uint32_t slots)
{
	return pyscan_null__open_capture(slots, 0);
}

pyscan_ring *pyscan_null__open_rx(uint32_t rx_slots)
{
	if (rx_slots < 1 || rx_slots > PYSCAN_NULL_MAX_SLOTS) {
		errno = EINVAL;
		return NULL;
	}
	struct null_ring *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->ring.ops = &null_rx_ops;
	r->rx_slots = rx_slots;
	r->rx_slab = calloc(rx_slots, PYSCAN_NULL_SLOT_SIZE);
	r->rx_len = calloc(rx_slots, sizeof(*r->rx_len));
	if (!r->rx_slab || !r->rx_len) {
		null_destroy(&r->ring);
		errno = ENOMEM;
		return NULL;
	}
	return &r->ring;
}

uint64_t pyscan_null__captured(pyscan_ring *ring, const uint8_t **records)
{
	if (!ring || (ring->ops != &null_tx_ops)) {
		if (records)
			*records = NULL;
		return 0;
	}
	struct null_ring *r = (struct null_ring *)ring;
	if (records)
		*records = r->capture;
	return __atomic_load_n(&r->captured, __ATOMIC_ACQUIRE);
}

int pyscan_null__set_faults(pyscan_ring *ring, const struct pyscan_null_faults *faults)
{
	if (!ring || ring->ops != &null_tx_ops || !faults ||
	    faults->slot_capacity > PYSCAN_NULL_SLOT_SIZE || faults->kick_error > 0)
		return -EINVAL;
	struct null_ring *r = (struct null_ring *)ring;
	r->faults = *faults;
	ring->tx_slot_capacity = faults->slot_capacity ? faults->slot_capacity
						       : PYSCAN_NULL_SLOT_SIZE;
	return 0;
}

int pyscan_null__audit(pyscan_ring *ring, struct pyscan_null_audit *out)
{
	if (!ring || ring->ops != &null_tx_ops || !out)
		return -EINVAL;
	struct null_ring *r = (struct null_ring *)ring;
	out->reserved = __atomic_load_n(&r->audit.reserved, __ATOMIC_RELAXED);
	out->submitted = __atomic_load_n(&r->audit.submitted, __ATOMIC_RELAXED);
	out->out_of_order = __atomic_load_n(&r->audit.out_of_order, __ATOMIC_RELAXED);
	return 0;
}

int pyscan_null__inject(pyscan_ring *ring, const uint8_t *frame, uint32_t len)
{
	if (!ring || ring->ops != &null_rx_ops || (!frame && len))
		return -EINVAL;
	if (len > PYSCAN_NULL_SLOT_SIZE)
		return -EMSGSIZE;
	struct null_ring *r = (struct null_ring *)ring;
	const uint64_t head = r->rx_head;
	if (head - __atomic_load_n(&r->rx_tail, __ATOMIC_ACQUIRE) >= r->rx_slots)
		return -ENOBUFS;
	const uint64_t slot = head % r->rx_slots;
	memcpy(r->rx_slab + slot * PYSCAN_NULL_SLOT_SIZE, frame, len);
	r->rx_len[slot] = len;
	__atomic_store_n(&r->rx_head, head + 1, __ATOMIC_RELEASE);
	return 0;
}
