/* SPDX-License-Identifier: GPL-2.0-only
 *
 * ring_io.c - test-only frame I/O through any driver ring's ops (ring.h), for tests that
 * check a driver's TX and RX paths without the engine. Built by tests/ring_io/build.py into
 * a shared library the tests load with cffi; never part of pyscan._native.
 *
 * Invariant: it uses only the ops table of the ring it is given (no driver internals), in the
 * order ring.h prescribes: reserve -> write -> submit -> kick, then flush; wait -> peek ->
 * copy -> release. Both return frames done, or -errno.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "ring.h"

#define RING_IO_BURST 64
#define RING_IO_EXPORT __attribute__((visibility("default")))

static int64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Send n frames packed back to back (lens[i] bytes each) and flush. */
RING_IO_EXPORT int ring_io_send(void *ring_ptr, const uint8_t *frames, const uint32_t *lens,
				uint32_t n, int flush_timeout_ms)
{
	struct pyscan_ring *ring = ring_ptr;
	struct pyscan_tx_slot slots[RING_IO_BURST];
	int64_t deadline = monotonic_ms() + flush_timeout_ms;
	uint32_t sent = 0;
	size_t offset = 0;
	int rc;

	if (!ring || !ring->ops->tx_reserve)
		return -EINVAL;
	while (sent < n) {
		uint32_t want = n - sent < RING_IO_BURST ? n - sent : RING_IO_BURST;
		uint32_t got = ring->ops->tx_reserve(ring, slots, want);

		if (!got) {
			if (monotonic_ms() >= deadline)
				return -ETIMEDOUT;
			continue;
		}
		for (uint32_t i = 0; i < got; i++) {
			uint32_t len = lens[sent + i];

			if (len > slots[i].capacity)
				len = 0; /* refused by submit and counted as an error */
			memcpy(slots[i].data, frames + offset, len);
			slots[i].len = len;
			offset += lens[sent + i];
		}
		rc = ring->ops->tx_submit(ring, slots, got);
		if (rc < 0)
			return rc;
		ring->ops->tx_kick(ring);
		sent += got;
	}
	rc = ring->ops->tx_flush(ring, flush_timeout_ms);
	return rc < 0 ? rc : (int)sent;
}

/* Receive up to max frames into buf (cap bytes), waiting up to timeout_ms for the first. */
RING_IO_EXPORT int ring_io_recv(void *ring_ptr, uint8_t *buf, uint32_t cap, uint32_t *lens,
				uint32_t max, int timeout_ms)
{
	struct pyscan_ring *ring = ring_ptr;
	struct pyscan_rx_frame frames[RING_IO_BURST];
	uint32_t done = 0, used = 0, n, take;
	int rc;

	if (!ring || !ring->ops->rx_peek)
		return -EINVAL;
	rc = ring->ops->rx_wait(ring, timeout_ms);
	if (rc <= 0)
		return rc;
	while (done < max) {
		n = ring->ops->rx_peek(ring, frames,
				       max - done < RING_IO_BURST ? max - done : RING_IO_BURST);
		if (!n)
			break;
		for (take = 0; take < n && used + frames[take].len <= cap; take++) {
			memcpy(buf + used, frames[take].data, frames[take].len);
			used += frames[take].len;
			lens[done++] = frames[take].len;
		}
		ring->ops->rx_release(ring, take);
		if (take < n)
			break;
	}
	return (int)done;
}
