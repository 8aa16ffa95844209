/* SPDX-License-Identifier: GPL-2.0-only
 *
 * counter.h - single-writer statistics counters read racily by other threads.
 *
 * Invariant: each counter has exactly one writing thread, which uses bump(); readers use
 * load_relaxed(). No locked read-modify-write on the hot path.
 */
#ifndef PYSCAN_COUNTER_H
#define PYSCAN_COUNTER_H

#include <stdint.h>

static inline uint64_t pyscan_counter__load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* A plain add published with a relaxed store. */
static inline void pyscan_counter__bump(uint64_t *p, uint64_t n)
{
	__atomic_store_n(p, *p + n, __ATOMIC_RELAXED);
}

#endif /* PYSCAN_COUNTER_H */
