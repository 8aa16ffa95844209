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
/* A busy device is asked whether its link is still up at most this often (two ioctls). */
#define LINK_CHECK_INTERVAL_NS 10000000LL

static struct afxdp_queue *tx_queue_of(struct pyscan_ring *ring)
{
	return ((struct afxdp_tx_ring *)ring)->queue;
}

static uint32_t afxdp_tx_reclaim(struct pyscan_ring *ring)
{
	struct afxdp_queue *q = tx_queue_of(ring);
	uint32_t index, done;
	uint64_t bytes = 0;

	done = xsk_ring_cons__peek(&q->comp, q->ring_size, &index);
	/* Locals: the stores below may alias any field of q as far as the compiler knows
	 * (-fno-strict-aliasing), which would reload them for every frame. */
	uint64_t *const free_frames = q->free_frames;
	const uint32_t *const frame_len = q->frame_len;
	const uint32_t frame_shift = q->frame_shift;
	uint32_t free_count = q->free_count;
	for (uint32_t i = 0; i < done; i++) {
		uint64_t addr = *xsk_ring_cons__comp_addr(&q->comp, index + i);

		bytes += frame_len[addr >> frame_shift];
		free_frames[free_count++] = addr;
	}
	q->free_count = free_count;
	if (done) {
		pyscan_counter__bump(&q->tx_frames, done);
		pyscan_counter__bump(&q->tx_bytes, bytes);
		xsk_ring_cons__release(&q->comp, done);
		q->outstanding -= done;
	}
	return done;
}

/* A kick the device refused: busy (0, completions will free room), or down or gone, which
 * no amount of waiting fixes (copy mode drops every frame of a down link as "busy"). */
static int busy_or_down(struct pyscan_ring *ring, struct afxdp_queue *q, int code)
{
	struct pyscan_afxdp *xdp = ((struct afxdp_tx_ring *)ring)->owner;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	const int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	if (code != ENETDOWN && now - q->link_checked_ns < LINK_CHECK_INTERVAL_NS)
		return 0;
	q->link_checked_ns = now;
	if (!afxdp_link_down(xdp))
		return 0;
	snprintf(ring->error, sizeof(ring->error), "af-xdp: interface %s went down (%s)",
		 xdp->ifname, strerror(code));
	return -ENETDOWN;
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
			return busy_or_down(ring, q, errno);
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
		pyscan_counter__bump(&q->tx_retries, 1);
		afxdp_tx_kick(ring);
		afxdp_tx_reclaim(ring);
	}
	n = max < q->free_count ? max : q->free_count;
	/* Locals, for the aliasing reason afxdp_tx_reclaim gives. */
	const uint64_t *const top = q->free_frames + q->free_count;
	uint8_t *const area = q->area;
	const uint32_t frame_size = q->frame_size;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t addr = top[-1 - (int64_t)i];

		slots[i].data = area + addr;
		slots[i].capacity = frame_size;
		slots[i].len = 0;
		slots[i].handle = addr;
	}
	q->free_count -= n;
	return n;
}

/* Every slot's length in 1..frame_size, counted without a branch per slot (len - 1 wraps
 * for 0). */
static uint32_t count_bad_lengths(const struct pyscan_tx_slot *slots, uint32_t n,
				  uint32_t frame_size)
{
	uint32_t bad = 0;
	for (uint32_t i = 0; i < n; i++)
		bad += slots[i].len - 1u >= frame_size;
	return bad;
}

/* The usual batch, every length valid: one pass writes the descriptors. 0 when the batch
 * needs afxdp_tx_submit's careful path (a bad length, or a full TX ring). */
static int submit_valid_batch(struct afxdp_queue *q, const struct pyscan_tx_slot *slots,
			      uint32_t n)
{
	uint32_t index;

	if (count_bad_lengths(slots, n, q->frame_size) ||
	    xsk_ring_prod__reserve(&q->tx, n, &index) != n)
		return 0;
	/* Locals, for the aliasing reason afxdp_tx_reclaim gives. */
	struct xsk_ring_prod tx = q->tx; /* read only: where the descriptors are */
	uint32_t *const frame_len = q->frame_len;
	const uint32_t frame_shift = q->frame_shift;
	for (uint32_t i = 0; i < n; i++) {
		struct xdp_desc *desc = xsk_ring_prod__tx_desc(&tx, index + i);

		desc->addr = slots[i].handle;
		desc->len = slots[i].len;
		desc->options = 0;
		frame_len[slots[i].handle >> frame_shift] = slots[i].len;
	}
	xsk_ring_prod__submit(&q->tx, n);
	q->outstanding += n;
	return 1;
}

static int afxdp_tx_submit(struct pyscan_ring *ring, struct pyscan_tx_slot *slots, uint32_t n)
{
	struct afxdp_queue *q = tx_queue_of(ring);
	uint32_t valid = 0, index;

	if (n && submit_valid_batch(q, slots, n))
		return (int)n;
	/* A descriptor with a bad length would be dropped by the kernel without a completion,
	 * losing its frame for good: refuse it here, count it, keep the frame. */
	for (uint32_t i = 0; i < n; i++) {
		if (slots[i].len == 0 || slots[i].len > q->frame_size) {
			pyscan_counter__bump(&q->tx_errors, 1);
			q->free_frames[q->free_count++] = slots[i].handle;
		} else {
			valid++;
		}
	}
	if (valid < n)
		snprintf(ring->error, sizeof(ring->error),
			 "af-xdp queue %u: %u frames with a length outside 1..%u bytes", q->queue_id,
			 n - valid, q->frame_size);
	if (!valid)
		return 0;
	if (xsk_ring_prod__reserve(&q->tx, valid, &index) != valid) {
		/* Cannot happen while the TX ring is as large as the TX half of the UMEM; if it
		 * did, the frames go back to the free stack, lost but not leaked. */
		for (uint32_t i = 0; i < n; i++)
			if (slots[i].len && slots[i].len <= q->frame_size)
				q->free_frames[q->free_count++] = slots[i].handle;
		pyscan_counter__bump(&q->tx_errors, valid);
		snprintf(ring->error, sizeof(ring->error),
			 "af-xdp queue %u: TX ring full with frames in hand", q->queue_id);
		return 0;
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
	return (int)valid;
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

	out->tx_frames = pyscan_counter__load(&q->tx_frames);
	out->tx_bytes = pyscan_counter__load(&q->tx_bytes);
	out->tx_retries = pyscan_counter__load(&q->tx_retries);
	out->tx_errors = pyscan_counter__load(&q->tx_errors);
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
