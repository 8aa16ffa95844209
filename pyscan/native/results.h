/* SPDX-License-Identifier: GPL-2.0-only
 *
 * results.h - where validated replies go between the RX thread and Python: an exact
 * "already reported" set, a single-producer single-consumer ring, and a stash behind it.
 *
 * Invariants:
 *  - A (source address, port) is reported at most once: the seen set (dedup.h)
 *    never forgets, and its memory follows the distinct replies, never a rehash.
 *  - Nothing is dropped: push() waits for the consumer while the RX loop runs (counting the
 *    waits), and parks results in the stash once stopping or outside the RX loop; drain()
 *    reads the stash only when no RX thread runs, after the ring, keeping arrival order.
 *  - The producer is the one thread that runs run_rx or ingest at a time; the consumer is
 *    one thread calling drain().
 */
#ifndef PYSCAN_RESULTS_H
#define PYSCAN_RESULTS_H

#include <stdint.h>

#include "dedup.h"
#include "engine.h"

#define PYSCAN_RESULTS_CACHELINE 64

struct pyscan_results {
	struct pyscan_result *buf;
	uint64_t mask;
	uint64_t head __attribute__((aligned(PYSCAN_RESULTS_CACHELINE))); /* producer writes */
	uint64_t tail __attribute__((aligned(PYSCAN_RESULTS_CACHELINE))); /* consumer writes */
	struct pyscan_dedup seen __attribute__((aligned(PYSCAN_RESULTS_CACHELINE)));
	struct pyscan_result *stash;
	uint64_t stash_len, stash_cap, stash_read;
	uint64_t stash_count; /* stash_len - stash_read, published for stats */
	uint64_t full_waits;  /* producer's counter: waits on a full ring */
	uint64_t lost;        /* producer's counter: results dropped, out of memory for the stash */
};

/* 0, or -ENOMEM. The ring holds max_results rounded up to a power of two (at least 2); the
 * seen set keys replies by their place in targets, which must outlive r (dedup.h). */
int pyscan_results__init(struct pyscan_results *r, uint64_t max_results,
			 const struct pyscan_targetset *targets);
void pyscan_results__free(struct pyscan_results *r);
/* 1 when res's (address, port) was not reported before (and now is), 0 when it was;
 * < 0 when the set cannot remember it (out of memory, a family it does not key yet): then
 * the caller reports anyway, a possible later duplicate beats a lost result. */
int pyscan_results__first_time(struct pyscan_results *r, const struct pyscan_result *res);
/* Producer only. stop_rx is the engine's stop flag (read relaxed). */
void pyscan_results__push(struct pyscan_results *r, const struct pyscan_result *res,
			  int in_rx_loop, const int *stop_rx);
/* Consumer only; rx_running says whether the stash may be read. */
uint32_t pyscan_results__drain(struct pyscan_results *r, struct pyscan_result *out,
			       uint32_t max, int rx_running);
uint64_t pyscan_results__pending(const struct pyscan_results *r);

#endif /* PYSCAN_RESULTS_H */
