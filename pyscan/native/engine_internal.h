/* SPDX-License-Identifier: GPL-2.0-only
 *
 * engine_internal.h - the engine's state, shared by its three files: engine.c (create,
 * destroy, stats, targets, stop flags), engine_tx.c (TX loop) and engine_rx.c (RX loop and
 * ingest). Not part of the API: Python sees only engine.h.
 *
 * Invariant: after create() everything here is read-only except the per-thread TX state
 * (written by its one TX thread), the RX counters and results producer side (the one RX or
 * ingest caller), the results consumer side (drain), and the stop/running flags (atomics).
 * Every exported entry point that touches the engine after create() enters it first
 * (engine_enter) and leaves it on return; destroy() sets closing and the stop flags, then
 * waits until no thread is inside before freeing anything.
 */
#ifndef PYSCAN_ENGINE_INTERNAL_H
#define PYSCAN_ENGINE_INTERNAL_H

#include <errno.h>
#include <stdint.h>

#include "arp_responder.h"
#include "capture.h"
#include "engine.h"
#include "permute.h"
#include "probe.h"
#include "results.h"
#include "schedule.h"
#include "targetset.h"

#define PYSCAN_ENGINE_CACHELINE 64

struct pyscan_engine_tx_state {
	uint64_t total;     /* pairs this thread owes (it sends each one `passes` times) */
	uint64_t generated; /* frames; also the resume point: the lane's schedule position */
	uint64_t sent;
	uint64_t errors;
	uint64_t retries;
	int running;        /* one run_tx per thread index at a time, or probes go out twice */
} __attribute__((aligned(PYSCAN_ENGINE_CACHELINE)));

struct pyscan_engine_rx_counters {
	uint64_t frames, malformed, not_ours, ours, ignored_flags, invalid_cookie;
	uint64_t open, closed, unreachable, duplicates;
	uint64_t bad_checksum;
};

struct pyscan_engine {
	struct pyscan_engine_config cfg; /* pointers in it cleared: the engine owns copies */
	struct pyscan_permute permute;
	struct pyscan_targetset targets;
	struct pyscan_probe_env env;     /* points into permute and targets above */
	const struct pyscan_probe_ops *probe; /* the lowest enabled module (the only one, mostly) */
	/* The scan's modules (ids ascending): one per distinct probe id of the port entries.
	 * With one, the TX loop calls its fill_batch per batch as ever; with more, per run of
	 * consecutive probes of one module (engine_tx.c). */
	const struct pyscan_probe_ops *modules[PYSCAN_PROBE_COUNT];
	uint8_t module_ids[PYSCAN_PROBE_COUNT];
	uint32_t n_modules;
	uint32_t initialised;  /* probe mask of modules whose init succeeded (fini owed) */
	uint32_t max_frame_len; /* over the enabled modules */
	uint64_t stride; /* S * T */
	uint32_t batch;
	uint32_t passes;           /* retries + 1 */
	uint64_t schedule_block;   /* pairs per schedule block (schedule.h), the same in every lane */

	int stop_tx;
	int stop_rx;
	int rx_running;
	uint64_t threads_done;
	uint32_t users;  /* threads inside an entry point (engine_enter), atomic */
	uint32_t closing; /* set by destroy, atomic */

	/* each enabled module's template, built by its init(), indexed by probe id */
	uint8_t probe_state[PYSCAN_PROBE_COUNT][PYSCAN_PROBE_STATE_MAX]
		__attribute__((aligned(PYSCAN_ENGINE_CACHELINE)));

	struct pyscan_engine_tx_state tx[PYSCAN_ENGINE_MAX_TX_THREADS];

	struct pyscan_engine_rx_counters rx __attribute__((aligned(PYSCAN_ENGINE_CACHELINE)));
	struct pyscan_results results;
	/* --pcap: valid replies (duplicates too) copied here when set; not owned (capture.h) */
	pyscan_capture *capture;
	/* UDP reply payload snippets for Result.payload; not owned (engine.h) */
	pyscan_capture *snippets;
	/* --source-ip of an address the host does not own: answers its ARP requests; not owned */
	pyscan_arp_responder *arp;
};

/* 0, or -ESHUTDOWN when destroy has begun (then the caller did not enter). Sequentially
 * consistent against destroy's store to closing and load of users (see ring.c). */
static inline int pyscan_engine__enter(struct pyscan_engine *e)
{
	__atomic_fetch_add(&e->users, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&e->closing, __ATOMIC_SEQ_CST)) {
		__atomic_fetch_sub(&e->users, 1, __ATOMIC_SEQ_CST);
		return -ESHUTDOWN;
	}
	return 0;
}

static inline void pyscan_engine__leave(struct pyscan_engine *e)
{
	__atomic_fetch_sub(&e->users, 1, __ATOMIC_SEQ_CST);
}

/* The first permutation input of TX thread t (it then steps by stride). */
static inline uint64_t pyscan_engine__first_index(const struct pyscan_engine *e, uint32_t t)
{
	return e->cfg.shard_index + (uint64_t)e->cfg.shard_count * t;
}

/* Lane t's retry schedule. */
static inline void pyscan_engine__lane_schedule(const struct pyscan_engine *e, uint32_t t,
						struct pyscan_schedule *s)
{
	pyscan_schedule__init(s, e->tx[t].total, e->schedule_block, e->passes);
}

#endif /* PYSCAN_ENGINE_INTERNAL_H */
