/* SPDX-License-Identifier: GPL-2.0-only
 *
 * drv_af_xdp_rx.c - the RX ring ops of the AF_XDP driver: one RX ring object over every socket
 * that has an RX ring (peek, release back to the fill ring, wait, counters).
 *
 * Invariant: an RX frame is in the fill ring, the RX ring, or the caller's hands (peeked, not
 * yet released); release puts it straight back into the fill ring, which is as large as the
 * RX half, so the refill never waits. Only the one RX thread runs these ops, and the frames of
 * one peek all come from one queue (rx_release gives back to that queue). A queue found empty
 * whose fill ring asks for a wakeup (zero-copy drivers set it) gets its own wakeup there and
 * then, as xdpsock does: the poll() in rx_wait only runs when every queue is empty, so a busy
 * queue would otherwise starve a quiet one of fill descriptors.
 */
#include <errno.h>
#include <linux/if_xdp.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "drv_af_xdp_private.h"

static uint32_t afxdp_rx_peek(struct pyscan_ring *ring, struct pyscan_rx_frame *frames,
			      uint32_t max)
{
	struct afxdp_rx_ring *rxr = (struct afxdp_rx_ring *)ring;
	struct pyscan_afxdp *xdp = rxr->owner;

	for (uint32_t tried = 0; tried < xdp->queue_count; tried++) {
		struct afxdp_queue *q = &xdp->queues[(rxr->cursor + tried) % xdp->queue_count];
		uint32_t index, n;

		if (!q->has_rx)
			continue;
		n = xsk_ring_cons__peek(&q->rx, max, &index);
		if (!n) {
			if (xsk_ring_prod__needs_wakeup(&q->fill))
				recvfrom(q->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
			continue;
		}
		for (uint32_t i = 0; i < n; i++) {
			const struct xdp_desc *desc = xsk_ring_cons__rx_desc(&q->rx, index + i);

			frames[i].data = xsk_umem__get_data(q->area, desc->addr);
			frames[i].len = desc->len;
			frames[i].flags = 0;
		}
		q->rx_peek_index = index;
		q->rx_peeked = n;
		rxr->active = q;
		rxr->cursor = (rxr->cursor + tried + 1) % xdp->queue_count;
		return n;
	}
	rxr->active = NULL;
	return 0;
}

static void afxdp_rx_release(struct pyscan_ring *ring, uint32_t n)
{
	struct afxdp_rx_ring *rxr = (struct afxdp_rx_ring *)ring;
	struct afxdp_queue *q = rxr->active;
	uint32_t fill_index;
	uint64_t bytes = 0;

	if (!q)
		return;
	if (n > q->rx_peeked)
		n = q->rx_peeked;
	if (n && xsk_ring_prod__reserve(&q->fill, n, &fill_index) == n) {
		for (uint32_t i = 0; i < n; i++) {
			const struct xdp_desc *desc = xsk_ring_cons__rx_desc(&q->rx,
									      q->rx_peek_index + i);

			/* The descriptor points past the headroom; the fill ring wants the frame. */
			*xsk_ring_prod__fill_addr(&q->fill, fill_index + i) =
				desc->addr & ~((uint64_t)q->frame_size - 1);
			bytes += desc->len;
		}
		xsk_ring_prod__submit(&q->fill, n);
		pyscan_counter__bump(&q->rx_frames, n);
		pyscan_counter__bump(&q->rx_bytes, bytes);
	} else if (n) {
		/* Cannot happen: the fill ring holds every RX frame. Keep them rather than lose them. */
		snprintf(ring->error, sizeof(ring->error), "af-xdp queue %u: fill ring full",
			 q->queue_id);
		n = 0;
	}
	xsk_ring_cons__cancel(&q->rx, q->rx_peeked - n);
	xsk_ring_cons__release(&q->rx, n);
	q->rx_peeked = 0;
	rxr->active = NULL;
}

/* The longest nap on a socket that also transmits: replies arriving meanwhile wait in its RX
 * ring (RX_FRAMES_TOTAL in drivers/af_xdp.py, 32768 frames over the sockets: a nap overflows
 * it only above 16 M replies/s), and 500 wakeups a second cost the TX threads well under 1 %. */
#ifndef AFXDP_RX_NAP_NS
#define AFXDP_RX_NAP_NS 2000000L
#endif

static int afxdp_rx_wait(struct pyscan_ring *ring, int timeout_ms)
{
	struct afxdp_rx_ring *rxr = (struct afxdp_rx_ring *)ring;
	struct pyscan_afxdp *xdp = rxr->owner;
	struct pollfd fds[xdp->queue_count];
	int shares_tx = 0;
	int rc;

	for (uint32_t i = 0; i < xdp->queue_count; i++) {
		struct afxdp_queue *q = &xdp->queues[i];

		if (q->has_rx && xsk_cons_nb_avail(&q->rx, 1))
			return 1;
		/* poll() skips negative fds: TX-only sockets never wake the RX thread, and a
		 * socket that transmits is never slept on (below). An RX-only socket's ring is
		 * looked at after each nap by rx_peek. */
		fds[i].fd = q->has_rx && !q->has_tx ? q->fd : -1;
		fds[i].events = POLLIN;
		fds[i].revents = 0;
		shares_tx |= q->has_rx && q->has_tx;
	}
	if (shares_tx) {
		/* A poll() waiter on a socket's wait queue makes every one of its TX completions
		 * (sock_wfree -> sock_def_write_space) take that queue's lock and try a wakeup:
		 * 8 % of a TX core in the lab, the gap between a full scan and `pyscan bench`. So
		 * the RX thread naps instead and looks again (rx_peek also does the fill-ring
		 * wakeup a zero-copy driver may ask for). */
		const long nap_ns = (long)timeout_ms * 1000000L < AFXDP_RX_NAP_NS
					    ? (long)timeout_ms * 1000000L
					    : AFXDP_RX_NAP_NS;
		const struct timespec nap = {0, nap_ns};

		nanosleep(&nap, NULL);
		return 0;
	}
	/* poll() also performs the fill-ring wakeup that need_wakeup may ask for. */
	rc = poll(fds, xdp->queue_count, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	return rc > 0;
}

static void afxdp_rx_stats(struct pyscan_ring *ring, struct pyscan_ring_stats *out)
{
	struct pyscan_afxdp *xdp = ((struct afxdp_rx_ring *)ring)->owner;
	uint64_t counters[PYSCAN_RF_NCOUNTERS] = {0};

	for (uint32_t i = 0; i < xdp->queue_count; i++) {
		struct afxdp_queue *q = &xdp->queues[i];

		out->rx_frames += pyscan_counter__load(&q->rx_frames);
		out->rx_bytes += pyscan_counter__load(&q->rx_bytes);
		if (q->fd >= 0) {
			struct xdp_statistics xs = {0};
			socklen_t len = sizeof(xs);

			/* Every reply the kernel could not put on the ring, each counted once:
			 * rx_dropped covers an empty fill ring (rx_fill_ring_empty_descs counts
			 * the same events again) and frames too large for a UMEM frame;
			 * rx_ring_full a full RX ring. rx_invalid_descs counts bad descriptors,
			 * not frames. */
			if (getsockopt(q->fd, SOL_XDP, XDP_STATISTICS, &xs, &len) == 0)
				out->rx_drops += xs.rx_dropped + xs.rx_ring_full;
		}
	}
	/* A matched reply the filter had to pass (no socket on its queue) is lost to the scan:
	 * a drop, not a frame the filter chose to leave to the kernel. */
	if (pyscan_afxdp__filter_counters(xdp, counters, PYSCAN_RF_NCOUNTERS) == 0) {
		out->rx_filtered = counters[PYSCAN_RF_PASSED];
		out->rx_drops += counters[PYSCAN_RF_UNQUEUED];
	}
}

static void afxdp_rx_destroy(struct pyscan_ring *ring)
{
	afxdp_drop_reference(((struct afxdp_rx_ring *)ring)->owner);
}

const struct pyscan_ring_ops afxdp_rx_ops = {
	.name = "af-xdp",
	.rx_peek = afxdp_rx_peek,
	.rx_release = afxdp_rx_release,
	.rx_wait = afxdp_rx_wait,
	.get_stats = afxdp_rx_stats,
	.destroy = afxdp_rx_destroy,
};
