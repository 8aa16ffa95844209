/* SPDX-License-Identifier: GPL-2.0-only
 *
 * drv_af_xdp_tx.c - the TX ring ops of the AF_XDP driver: reserve UMEM frames, submit them as
 * TX descriptors, kick the kernel, reclaim completions, flush.
 *
 * Invariant: a TX frame is in exactly one place: the free stack, the caller's hands
 * (reserved), the TX ring, or the completion ring. The TX ring has as many slots as there are
 * TX frames, so a submit of frames the caller holds can always reserve descriptors. Only the
 * queue's one TX thread runs these ops.
 */
#include <errno.h>
#include <linux/if_xdp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "drv_af_xdp_private.h"

/* Copy-mode sendto transmits at most this many frames per call (kernel TX_BATCH_SIZE) and
 * answers EAGAIN while more are queued, so a kick repeats up to ring_size / 32 + slack times. */
#define COPY_MODE_FRAMES_PER_KICK 32

static struct afxdp_queue *tx_queue_of(struct pyscan_ring *ring)
{
	return ((struct afxdp_tx_ring *)ring)->queue;
}

static uint32_t afxdp_tx_reclaim(struct pyscan_ring *ring)
{
	struct afxdp_queue *q = tx_queue_of(ring);
	uint32_t index, done;

	done = xsk_ring_cons__peek(&q->comp, q->ring_size, &index);
	for (uint32_t i = 0; i < done; i++) {
		uint64_t addr = *xsk_ring_cons__comp_addr(&q->comp, index + i);

		q->tx_frames++;
		q->tx_bytes += q->frame_len[addr >> q->frame_shift];
		q->free_frames[q->free_count++] = addr;
	}
	if (done) {
		xsk_ring_cons__release(&q->comp, done);
		q->outstanding -= done;
	}
	return done;
}

static int tx_ring_empty(struct afxdp_queue *q)
{
	return xsk_prod_nb_free(&q->tx, q->ring_size) == q->ring_size;
}

static int afxdp_tx_kick(struct pyscan_ring *ring)
{
	struct afxdp_queue *q = tx_queue_of(ring);
	uint32_t attempts = q->ring_size / COPY_MODE_FRAMES_PER_KICK + 4;

	/* Callers kick after every submit and whenever they wait; a syscall is only worth it
	 * when descriptors are waiting and the kernel asked to be woken. */
	if (!xsk_ring_prod__needs_wakeup(&q->tx) || tx_ring_empty(q))
		return 0;
	/* Zero-copy: one wakeup starts the driver. Copy: each call sends a batch synchronously,
	 * so repeat until the ring is drained or the device pushes back. */
	do {
		if (sendto(q->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0) {
			if (q->zerocopy)
				return 0;
			continue;
		}
		switch (errno) {
		case EAGAIN:
			continue;
		case EBUSY:
		case ENOBUFS:
		case ENETDOWN:
			return 0; /* device busy or queue full: completions will free room */
		default: {
			int rc = -errno;

			snprintf(ring->error, sizeof(ring->error), "af-xdp kick on queue %u: %s",
				 q->queue_id, strerror(-rc));
			return rc;
		}
		}
	} while (!q->zerocopy && !tx_ring_empty(q) && --attempts);
	return 0;
}

static uint32_t afxdp_tx_reserve(struct pyscan_ring *ring, struct pyscan_tx_slot *slots,
				 uint32_t max)
{
	struct afxdp_queue *q = tx_queue_of(ring);
	uint32_t n;

	if (q->free_count < max)
		afxdp_tx_reclaim(ring);
	if (q->free_count == 0) {
		q->tx_retries++;
		afxdp_tx_kick(ring);
		afxdp_tx_reclaim(ring);
	}
	n = max < q->free_count ? max : q->free_count;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t addr = q->free_frames[--q->free_count];

		slots[i].data = q->area + addr;
		slots[i].capacity = q->frame_size;
		slots[i].len = 0;
		slots[i].handle = addr;
	}
	return n;
}

static int afxdp_tx_submit(struct pyscan_ring *ring, struct pyscan_tx_slot *slots, uint32_t n)
{
	struct afxdp_queue *q = tx_queue_of(ring);
	uint32_t valid = 0, index;

	/* A descriptor with a bad length would be dropped by the kernel without a completion,
	 * losing its frame for good: refuse it here, count it, keep the frame. */
	for (uint32_t i = 0; i < n; i++) {
		if (slots[i].len == 0 || slots[i].len > q->frame_size) {
			q->tx_errors++;
			q->free_frames[q->free_count++] = slots[i].handle;
		} else {
			valid++;
		}
	}
	if (!valid)
		return valid == n ? 0 : -EINVAL;
	if (xsk_ring_prod__reserve(&q->tx, valid, &index) != valid) {
		/* Cannot happen while the TX ring is as large as the TX half of the UMEM. */
		snprintf(ring->error, sizeof(ring->error),
			 "af-xdp queue %u: TX ring full with frames in hand", q->queue_id);
		return -ENOSPC;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct xdp_desc *desc;

		if (slots[i].len == 0 || slots[i].len > q->frame_size)
			continue;
		desc = xsk_ring_prod__tx_desc(&q->tx, index++);
		desc->addr = slots[i].handle;
		desc->len = slots[i].len;
		desc->options = 0;
		q->frame_len[slots[i].handle >> q->frame_shift] = slots[i].len;
	}
	xsk_ring_prod__submit(&q->tx, valid);
	q->outstanding += valid;
	return valid == n ? 0 : -EINVAL;
}

static int64_t monotonic_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int afxdp_tx_flush(struct pyscan_ring *ring, int timeout_ms)
{
	struct afxdp_queue *q = tx_queue_of(ring);
	int64_t deadline = monotonic_ms() + timeout_ms;
	struct timespec pause = {.tv_nsec = 50 * 1000};

	while (q->outstanding) {
		int rc = afxdp_tx_kick(ring);

		if (rc < 0)
			return rc;
		if (afxdp_tx_reclaim(ring))
			continue;
		if (monotonic_ms() >= deadline) {
			snprintf(ring->error, sizeof(ring->error),
				 "af-xdp queue %u: %u frames not completed after %d ms",
				 q->queue_id, q->outstanding, timeout_ms);
			return -ETIMEDOUT;
		}
		nanosleep(&pause, NULL);
	}
	return 0;
}

static void afxdp_tx_stats(struct pyscan_ring *ring, struct pyscan_ring_stats *out)
{
	struct afxdp_queue *q = tx_queue_of(ring);

	out->tx_frames = q->tx_frames;
	out->tx_bytes = q->tx_bytes;
	out->tx_retries = q->tx_retries;
	out->tx_errors = q->tx_errors;
	if (q->fd >= 0) {
		struct xdp_statistics xs = {0};
		socklen_t len = sizeof(xs);

		if (getsockopt(q->fd, SOL_XDP, XDP_STATISTICS, &xs, &len) == 0)
			out->tx_errors += xs.tx_invalid_descs;
	}
}

static void afxdp_tx_destroy(struct pyscan_ring *ring)
{
	afxdp_drop_reference(((struct afxdp_tx_ring *)ring)->owner);
}

const struct pyscan_ring_ops afxdp_tx_ops = {
	.name = "af-xdp",
	.tx_reserve = afxdp_tx_reserve,
	.tx_submit = afxdp_tx_submit,
	.tx_reclaim = afxdp_tx_reclaim,
	.tx_kick = afxdp_tx_kick,
	.tx_flush = afxdp_tx_flush,
	.get_stats = afxdp_tx_stats,
	.destroy = afxdp_tx_destroy,
};
