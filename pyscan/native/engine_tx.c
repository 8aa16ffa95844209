/* SPDX-License-Identifier: GPL-2.0-only
 *
 * engine_tx.c - the TX loop, written once for every driver (ring.h) and every probe type
 * (probe.h).
 *
 * Thread t of T in shard s of S owns permutation inputs i = s + S*(t + T*k). It sends each
 * of its pairs k `passes` times (retries + 1) in the order of its retry schedule
 * (schedule.h): chunks of consecutive k, each one pass of one block. Each batch lies within
 * one chunk, is rate-limited first (so a stop request never leaves reserved slots unsent; the
 * limiter counts every frame, retries included), then slots are reserved until the batch is
 * complete, filled by the probe module's fill_batch() in one call and submitted.
 *
 * Retry delay: before the first frame of a chunk of pass r > 0 the thread waits until
 * retry_delay_ns after the moment the same block's pass r - 1 was completely submitted. Every
 * pair of that pass was submitted at or before that moment and every pair of this pass is
 * submitted after it, so each pair's probes are at least the delay apart, whatever the rate,
 * at the end of the scan (the tail's last passes wait) and after a resume (the clocks start
 * at the run's start, which is after any earlier probe). The schedule keeps the block's
 * previous pass P chunks back, so one timestamp per block mod P is enough (schedule.h).
 * Blocks are sized so that at a limited rate the wait is normally already over.
 *
 * Invariant: every reserved slot is filled and submitted exactly once (ring.h), even when
 * the ring reports a fatal error meanwhile: the slot size is checked against the ring's
 * declared tx_slot_capacity before anything is reserved, and nothing breaks out between a
 * reserve and its submit. sent counts frames the ring accepted, tx_errors only frames it
 * lost. Only this thread writes its pyscan_engine_tx_state.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>

#include "counter.h"
#include "engine_internal.h"
#include "ratelimit.h"

#define TX_FLUSH_TIMEOUT_MS 5000
/* The flush is waited for in slices so that a ring being destroyed ends it early. */
#define TX_FLUSH_SLICE_MS 50
#define TX_SLEEP_SLICE_NS 20000000ULL
#define TX_CATCH_UP_NS 5000000ULL
/* Below this a slot cannot hold any probe with headroom for the drivers' own headers. */
#define MIN_SLOT_CAPACITY 128u

#define bump pyscan_counter__bump

static inline int tx_stopping(struct pyscan_engine *e, const struct pyscan_ring *ring)
{
	return __atomic_load_n(&e->stop_tx, __ATOMIC_RELAXED) | pyscan_ring__closing(ring);
}

/* Sleeps until deadline in slices, so a stop request is seen within TX_SLEEP_SLICE_NS.
 * 0 when the deadline passed, 1 when stopped. */
static int tx_wait_until(struct pyscan_engine *e, const struct pyscan_ring *ring,
			 uint64_t deadline)
{
	for (;;) {
		if (tx_stopping(e, ring))
			return 1;
		const uint64_t now = pyscan_clock__now_ns();
		if (now >= deadline)
			return 0;
		const uint64_t slice_end = now + TX_SLEEP_SLICE_NS;
		pyscan_clock__sleep_until_ns(deadline < slice_end ? deadline : slice_end);
	}
}

/* A scan of several modules (--ping -p80,U:53): one fill_batch call per run of consecutive
 * probes of the same module. Runs are short in a mixed scan (the permutation interleaves
 * them), which costs one extra permutation step per probe; a one-module scan never comes
 * here. */
static void fill_mixed(const struct pyscan_engine *e, struct pyscan_tx_slot *slots, uint32_t n,
		       uint64_t index, uint64_t stride)
{
	uint32_t j = 0;
	while (j < n) {
		const uint64_t run_index = index + j * stride;
		const uint8_t id = pyscan_targetset__probe_at(
			&e->targets, pyscan_permute__at(&e->permute, run_index));
		uint32_t run = 1;
		while (j + run < n &&
		       pyscan_targetset__probe_at(&e->targets,
						  pyscan_permute__at(&e->permute,
								     run_index + run * stride)) == id)
			run++;
		pyscan_probe__ops(id)->fill_batch(e->probe_state[id], &e->env, slots + j, run,
						  run_index, stride);
		j += run;
	}
}

/* Waits (bounded) until every submitted frame has left; a ring that starts closing ends
 * the wait, since its frames are about to be released anyway. */
static int tx_flush(const struct pyscan_ring_ops *ops, struct pyscan_ring *ring)
{
	for (int waited = 0; waited < TX_FLUSH_TIMEOUT_MS; waited += TX_FLUSH_SLICE_MS) {
		const int rc = ops->tx_flush(ring, TX_FLUSH_SLICE_MS);
		if (rc != -ETIMEDOUT)
			return rc;
		if (pyscan_ring__closing(ring))
			return 0;
	}
	snprintf(ring->error, sizeof(ring->error),
		 "%s: frames still queued after %d ms", ops->name, TX_FLUSH_TIMEOUT_MS);
	return -ETIMEDOUT;
}

static int run_tx(struct pyscan_engine *e, uint32_t thread_index, pyscan_ring *ring);

int pyscan_engine__run_tx(pyscan_engine *e, uint32_t thread_index, pyscan_ring *ring)
{
	if (!e || !ring || thread_index >= e->cfg.tx_threads)
		return -EINVAL;
	if (!ring->ops->tx_reserve || !ring->ops->tx_submit)
		return -EOPNOTSUPP;
	if (pyscan_engine__enter(e) < 0)
		return -ESHUTDOWN;
	if (pyscan_ring__enter(ring) < 0) {
		pyscan_engine__leave(e);
		return -ESHUTDOWN;
	}
	const int rc = run_tx(e, thread_index, ring);
	pyscan_ring__leave(ring);
	pyscan_engine__leave(e);
	return rc;
}

static int run_tx(struct pyscan_engine *e, uint32_t thread_index, pyscan_ring *ring)
{
	const struct pyscan_ring_ops *ops = ring->ops;
	struct pyscan_engine_tx_state *st = &e->tx[thread_index];
	if (__atomic_exchange_n(&st->running, 1, __ATOMIC_ACQ_REL))
		return -EBUSY;
	const uint64_t stride = e->stride;
	const uint64_t first_index = pyscan_engine__first_index(e, thread_index);
	const void *probe_state = e->probe_state[e->module_ids[0]];
	const int mixed = e->n_modules > 1;
	void (*const fill_batch)(const void *, const struct pyscan_probe_env *,
				 struct pyscan_tx_slot *, uint32_t, uint64_t, uint64_t) =
		e->probe->fill_batch;
	const uint32_t min_capacity = e->max_frame_len > MIN_SLOT_CAPACITY ?
		e->max_frame_len : MIN_SLOT_CAPACITY;
	const int limited = e->cfg.rate_pps > 0;
	struct pyscan_tx_slot slots[PYSCAN_ENGINE_MAX_BATCH];
	struct pyscan_ratelimit limiter;
	uint64_t position = st->generated; /* 0 unless run_tx is resumed on the same engine */
	struct pyscan_schedule schedule;
	struct pyscan_schedule_chunk chunk = {0};
	uint64_t offset = 0;
	uint64_t pass_done_at[PYSCAN_SCHEDULE_MAX_PASSES];
	const uint64_t retry_delay = e->cfg.retry_delay_ns;
	int chunk_cleared = 0; /* the current chunk's retry delay has been waited for */
	int rc = 0;

	/* Before any reserve: once slots are reserved they must all be submitted (ring.h). */
	if (ring->tx_slot_capacity < min_capacity) {
		snprintf(ring->error, sizeof(ring->error),
			 "ring slots of %u bytes are too small for a probe (need %u)",
			 ring->tx_slot_capacity, min_capacity);
		rc = -EMSGSIZE;
	}
	pyscan_engine__lane_schedule(e, thread_index, &schedule);
	const uint64_t my_frames = pyscan_schedule__frames(&schedule);
	if (!pyscan_schedule__seek(&schedule, position, &chunk, &offset))
		position = my_frames;
	/* Whatever was sent before this run (a resume) was sent before now. */
	const uint64_t run_started = pyscan_clock__now_ns();
	for (uint32_t p = 0; p < PYSCAN_SCHEDULE_MAX_PASSES; p++)
		pass_done_at[p] = run_started;

	if (limited) {
		/* Burst allowance: what TX_CATCH_UP_NS at the rate is worth, at least two batches.
		 * A thread that is descheduled or wakes late makes up that much lag at once, so
		 * the average holds on a busy machine; a longer stall is not made up (no flood). */
		const double per_thread = e->cfg.rate_pps / e->cfg.tx_threads;
		double burst = per_thread * (double)TX_CATCH_UP_NS / 1e9;
		if (burst < 2.0 * e->batch)
			burst = 2.0 * e->batch;
		if (burst > (double)(1u << 20))
			burst = (double)(1u << 20);
		pyscan_ratelimit__init(&limiter, per_thread, (uint32_t)burst, pyscan_clock__now_ns());
	}

	while (!rc && position < my_frames && !tx_stopping(e, ring)) {
		if (!chunk_cleared) {
			if (chunk.pass > 0 && retry_delay &&
			    tx_wait_until(e, ring, pass_done_at[chunk.block % schedule.passes] + retry_delay))
				break;
			chunk_cleared = 1;
		}
		const uint64_t chunk_left = chunk.len - offset;
		const uint32_t want = (uint32_t)(chunk_left < e->batch ? chunk_left : e->batch);

		if (limited) {
			const uint64_t now = pyscan_clock__now_ns();
			const uint64_t wait = pyscan_ratelimit__reserve(&limiter, want, now);
			if (wait && tx_wait_until(e, ring, now + wait))
				break;
		}

		uint32_t got = 0;
		while (got < want) {
			got += ops->tx_reserve(ring, slots + got, want - got);
			if (got == want)
				break;
			bump(&st->retries, 1);
			if (ops->tx_reclaim)
				ops->tx_reclaim(ring);
			if (ops->tx_kick && (rc = ops->tx_kick(ring)) < 0)
				break; /* the device is gone or down: waiting would never end */
			if (tx_stopping(e, ring))
				break;
			sched_yield();
		}
		if (!got)
			break;

		/* One indirect call per batch (per run of one module's probes when the scan mixes
		 * modules); the module inlines its per-probe work. */
		if (!mixed)
			fill_batch(probe_state, &e->env, slots, got,
				   first_index + (chunk.k_first + offset) * stride, stride);
		else
			fill_mixed(e, slots, got, first_index + (chunk.k_first + offset) * stride,
				   stride);
		offset += got;
		position += got;
		__atomic_store_n(&st->generated, position, __ATOMIC_RELAXED);

		int accepted = ops->tx_submit(ring, slots, got);
		if (accepted < 0 || (uint32_t)accepted > got)
			accepted = 0; /* outside the contract: count the batch as lost */
		bump(&st->sent, (uint32_t)accepted);
		if ((uint32_t)accepted < got)
			bump(&st->errors, got - (uint32_t)accepted);
		if (offset == chunk.len) {
			pass_done_at[chunk.block % schedule.passes] = pyscan_clock__now_ns();
			offset = 0;
			chunk_cleared = 0;
			if (!pyscan_schedule__next(&schedule, &chunk))
				position = my_frames; /* already equal: the last chunk ended */
		}
		if (rc < 0)
			break; /* after submitting what was reserved, as ring.h demands */
		if (ops->tx_kick && (rc = ops->tx_kick(ring)) < 0)
			break;
		if (ops->tx_reclaim)
			ops->tx_reclaim(ring);
	}

	/* After a fatal error queued frames cannot leave: waiting for them would only bury
	 * the ring's error message under a timeout. */
	if (!rc && ops->tx_flush && !pyscan_ring__closing(ring))
		rc = tx_flush(ops, ring);
	__atomic_fetch_add(&e->threads_done, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&st->running, 0, __ATOMIC_RELEASE);
	return rc;
}
