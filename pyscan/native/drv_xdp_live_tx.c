/* SPDX-License-Identifier: GPL-2.0-only
 *
 * drv_xdp_live_tx.c - the xdp-live ring operations (contract in drv_xdp_live.h, shared
 * layout in pyscan/bpf/xdp_live.h).
 *
 * tx_reserve hands out the runner's mmapped slots in order; tx_submit writes their lengths,
 * sets ctrl {next = 0, end = n} and calls BPF_PROG_RUN(repeat = n, live frames) over a
 * template whose XDP metadata names the runner. After the call the tracepoint programs have
 * listed the slots the device refused: those are moved to the front of the region and run
 * again, with a growing pause, until the device takes them or the attempts run out.
 *
 * Invariant: a slot counts once, as taken (tx_frames) or as never taken (tx_errors), and is
 * resent only when a tracepoint named it refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "drv_xdp_live_private.h"

#define MAX_ATTEMPTS 64          /* runs of one batch before its refused frames are errors */
#define MAX_PAUSE_NS 1000000L    /* the pause between attempts grows to this */
#define MAX_STALLED_CALLS 16     /* BPF_PROG_RUN calls in a row that ran nothing */

static void adopt_thread(struct xdplive_ring *r)
{
	const pid_t tid = gettid();

	if (r->tid == tid)
		return;
	if (r->tid) {
		uint32_t old = (uint32_t)r->tid;
		bpf_map_delete_elem(r->owner->tids_fd, &old);
	}
	/* The live run redirects to ifindex in the calling thread's netns: a thread from
	 * elsewhere visits ours while it sends (tx_flush takes it home), never sends there. */
	struct stat here;
	r->netns_error = 0;
	if (stat("/proc/thread-self/ns/net", &here)) {
		r->netns_error = -errno;
	} else if (here.st_ino != r->owner->netns.st_ino || here.st_dev != r->owner->netns.st_dev) {
		r->home_netns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (r->home_netns_fd < 0 || setns(r->owner->netns_fd, CLONE_NEWNET)) {
			r->netns_error = -errno;
			if (r->home_netns_fd >= 0)
				close(r->home_netns_fd);
			r->home_netns_fd = -1;
		}
	}
	uint32_t key = (uint32_t)tid, value = r->index;
	bpf_map_update_elem(r->owner->tids_fd, &key, &value, BPF_ANY);
	r->ctrl->tid = (uint32_t)tid;
	r->tid = tid;
	if (r->cpu >= 0 && !r->pinned &&
	    !pthread_getaffinity_np(pthread_self(), sizeof(r->saved_affinity), &r->saved_affinity)) {
		cpu_set_t one;

		CPU_ZERO(&one);
		CPU_SET(r->cpu, &one);
		r->pinned = !pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
	}
}

static uint32_t xl_tx_reserve(struct pyscan_ring *ring, struct pyscan_tx_slot *slots,
			      uint32_t max)
{
	struct xdplive_ring *r = (struct xdplive_ring *)ring;
	uint32_t n = PYSCAN_XL_REGION - r->reserved;

	adopt_thread(r);
	if (n > max)
		n = max;
	for (uint32_t i = 0; i < n; i++) {
		const uint32_t at = r->reserved + i;

		slots[i].data = r->slots[at].data;
		slots[i].capacity = PYSCAN_XL_SLOT_DATA;
		slots[i].len = 0;
		slots[i].handle = at;
	}
	r->reserved += n;
	return n;
}

/* Redirected slots no flush event named: their fate is unknown, so they are neither taken
 * nor resent (a resend could duplicate a probe). Every run flushes before it returns, so
 * this stays 0 unless a tracepoint program missed an event. */
static void settle_fifo(struct xdplive_ring *r)
{
	struct pyscan_xl_ctrl *c = r->ctrl;

	r->unaccounted += c->fifo_tail - c->fifo_head;
	c->fifo_head = c->fifo_tail;
}

/* One BPF_PROG_RUN series over slots 0..count-1: returns 0 once every slot was run (their
 * fates are in ctrl), -errno when the kernel stops running the program. */
static int run_region(struct xdplive_ring *r, uint32_t count)
{
	struct pyscan_xl_ctrl *c = r->ctrl;
	const uint32_t frame_len = r->owner->cfg.frame_len;
	struct xdp_md md = { .data = PYSCAN_XL_META_LEN,
			     .data_end = PYSCAN_XL_META_LEN + frame_len };
	int stalled = 0;

	c->next = 0;
	c->end = count;
	c->fifo_head = c->fifo_tail = 0;
	c->n_dropped = 0;
	while (c->next < count) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = r->tmpl,
			    .data_size_in = PYSCAN_XL_META_LEN + frame_len, .ctx_in = &md,
			    .ctx_size_in = sizeof(md), .repeat = (int)(count - c->next),
			    .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
			    .batch_size = r->owner->cfg.batch_size);
		const uint32_t before = c->next;
		int rc = bpf_prog_test_run_opts(r->owner->prog_fd, &opts);

		r->runs++;
		if (rc < 0)
			rc = -errno;
		/* A signal interrupts the run between kernel batches; next says how far it got. */
		if (c->next > before) {
			stalled = 0;
			continue;
		}
		if ((rc == -EINTR || rc == -ENOMEM) && ++stalled < MAX_STALLED_CALLS)
			continue;
		snprintf(r->ring.error, sizeof(r->ring.error),
			 "BPF_PROG_RUN (live frames) sent nothing: %s", strerror(rc ? -rc : EIO));
		settle_fifo(r);
		return rc ? rc : -EIO;
	}
	settle_fifo(r);
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void pause_before(int attempt)
{
	if (attempt < 4) {
		sched_yield();
		return;
	}
	long ns = 10000L * attempt;
	struct timespec ts = { 0, ns < MAX_PAUSE_NS ? ns : MAX_PAUSE_NS };
	nanosleep(&ts, NULL);
}

/* ring.h: returns how many of the n frames went out; a submit that gave up also sets
 * r->fatal, which the next kick reports. */
static int xl_tx_submit(struct pyscan_ring *ring, struct pyscan_tx_slot *slots, uint32_t n)
{
	struct xdplive_ring *r = (struct xdplive_ring *)ring;
	struct pyscan_xl_ctrl *c = r->ctrl;
	uint64_t bytes = 0;
	uint32_t sent = 0;

	adopt_thread(r);
	if (r->netns_error) {
		snprintf(r->ring.error, sizeof(r->ring.error),
			 "cannot enter the network namespace the ring was opened in: %s",
			 strerror(-r->netns_error));
		r->reserved = 0;
		r->stats.tx_errors += n;
		r->fatal = r->netns_error;
		return 0;
	}
	for (uint32_t i = 0; i < n; i++) {
		if (slots[i].handle != i || slots[i].len > PYSCAN_XL_SLOT_DATA) {
			snprintf(r->ring.error, sizeof(r->ring.error),
				 "tx_submit got slot %u of %u out of order or oversized", i, n);
			r->reserved = 0;
			r->stats.tx_errors += n;
			r->fatal = -EINVAL; /* a caller outside ring.h: stop rather than stall */
			return 0;
		}
		r->slots[i].len = (uint16_t)slots[i].len;
		bytes += slots[i].len;
	}
	r->reserved = 0;

	uint32_t todo = n;
	for (int attempt = 0;; attempt++) {
		const uint64_t rejected_before = c->rejected, unaccounted_before = r->unaccounted;
		const int rc = run_region(r, todo);
		const uint32_t ran = c->next < todo ? c->next : todo;
		const uint32_t dropped = c->n_dropped;
		const uint32_t lost = (uint32_t)(c->rejected - rejected_before) +
				      (uint32_t)(r->unaccounted - unaccounted_before);

		r->stats.tx_frames += ran - dropped - lost;
		r->stats.tx_errors += lost;
		sent += ran - dropped - lost;
		if (rc < 0) {
			/* refused ones are not resent after a failed run, nor are unrun ones */
			r->stats.tx_errors += dropped + (todo - ran);
			r->fatal = rc;
			return (int)sent;
		}
		if (!dropped)
			break;
		if (attempt + 1 >= MAX_ATTEMPTS) {
			r->stats.tx_errors += dropped;
			snprintf(r->ring.error, sizeof(r->ring.error),
				 "%u frames refused %dx (%s)%s", dropped, MAX_ATTEMPTS,
				 strerror(c->last_error ? -c->last_error : EIO),
				 c->last_error == -ENXIO || c->last_error == -EOPNOTSUPP ?
				 ": veth peer needs GRO or XDP; NIC: driver lacks XDP TX" : "");
			r->fatal = -EIO;
			return (int)sent;
		}
		/* Refused slots to the front, in slot order: each moves to a position not after
		 * its own, so a forward copy never overwrites one still to move. */
		qsort(c->dropped, dropped, sizeof(c->dropped[0]), cmp_u32);
		for (uint32_t j = 0; j < dropped; j++) {
			const uint32_t from = c->dropped[j] & (PYSCAN_XL_REGION - 1);

			if (from != j)
				memcpy(&r->slots[j], &r->slots[from], sizeof(r->slots[j]));
		}
		r->stats.tx_retries++;
		r->resent += dropped;
		todo = dropped;
		pause_before(attempt);
	}
	r->stats.tx_bytes += bytes;
	return (int)sent;
}

static int xl_tx_flush(struct pyscan_ring *ring, int timeout_ms)
{
	struct xdplive_ring *r = (struct xdplive_ring *)ring;

	/* Sending is synchronous: nothing is in flight. Hand the CPU mask back. */
	if (r->pinned && r->tid == gettid()) {
		pthread_setaffinity_np(pthread_self(), sizeof(r->saved_affinity),
				       &r->saved_affinity);
		r->pinned = 0;
	}
	if (r->home_netns_fd >= 0 && r->tid == gettid()) {
		setns(r->home_netns_fd, CLONE_NEWNET);
		close(r->home_netns_fd);
		r->home_netns_fd = -1;
	}
	return 0;
}

/* Sending happens inside tx_submit: nothing waits for a kick. It reports a submit that gave
 * up, which is how the engine learns that waiting and retrying cannot help. */
static int xl_tx_kick(struct pyscan_ring *ring)
{
	return ((struct xdplive_ring *)ring)->fatal;
}

static void xl_get_stats(struct pyscan_ring *ring, struct pyscan_ring_stats *out)
{
	*out = ((struct xdplive_ring *)ring)->stats;
}

static void xl_destroy(struct pyscan_ring *ring)
{
	xdplive_release(((struct xdplive_ring *)ring)->owner);
}

const struct pyscan_ring_ops xdplive_tx_ops = {
	.name = "xdp-live",
	.tx_reserve = xl_tx_reserve,
	.tx_submit = xl_tx_submit,
	.tx_kick = xl_tx_kick,
	.tx_flush = xl_tx_flush,
	.get_stats = xl_get_stats,
	.destroy = xl_destroy,
};
