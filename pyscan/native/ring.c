/* SPDX-License-Identifier: GPL-2.0-only
 *
 * ring.c - the driver-independent entry points Python uses on any ring.
 *
 * Invariant: these only dispatch through ring->ops; no driver logic lives here. Destroy frees
 * nothing while a thread is inside the ring: enter increments users before it looks at
 * closing, quiesce sets closing before it looks at users (both sequentially consistent), so
 * either the entering thread sees closing and backs out, or quiesce sees it and waits.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "ring.h"

void pyscan_ring__stats(struct pyscan_ring *ring, struct pyscan_ring_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (ring && ring->ops->get_stats)
		ring->ops->get_stats(ring, out);
}

const char *pyscan_ring__error(struct pyscan_ring *ring)
{
	return ring ? ring->error : "";
}

int pyscan_ring__enter(struct pyscan_ring *ring)
{
	__atomic_fetch_add(&ring->users, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&ring->closing, __ATOMIC_SEQ_CST)) {
		pyscan_ring__leave(ring);
		return -ESHUTDOWN;
	}
	return 0;
}

void pyscan_ring__leave(struct pyscan_ring *ring)
{
	__atomic_fetch_sub(&ring->users, 1, __ATOMIC_SEQ_CST);
}

void pyscan_ring__shutdown(struct pyscan_ring *ring)
{
	if (ring)
		__atomic_store_n(&ring->closing, 1, __ATOMIC_SEQ_CST);
}

void pyscan_ring__quiesce(struct pyscan_ring *ring)
{
	__atomic_store_n(&ring->closing, 1, __ATOMIC_SEQ_CST);
	/* The loops look at closing once per batch or wait slice (tens of ms at most). */
	while (__atomic_load_n(&ring->users, __ATOMIC_SEQ_CST)) {
		const struct timespec pause = {0, 1000000};
		nanosleep(&pause, NULL);
	}
}

void pyscan_ring__destroy(struct pyscan_ring *ring)
{
	if (!ring)
		return;
	pyscan_ring__quiesce(ring);
	ring->ops->destroy(ring);
}
