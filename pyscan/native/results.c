/* SPDX-License-Identifier: GPL-2.0-only
 *
 * results.c - the seen set, results ring and stash of results.h.
 *
 * Invariant: the results ring is a power of two; the stash only grows.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "counter.h"
#include "results.h"

#define STASH_INITIAL 1024

static uint64_t round_up_pow2(uint64_t x)
{
	uint64_t p = 1;
	while (p < x)
		p <<= 1;
	return p;
}

int pyscan_results__init(struct pyscan_results *r, uint64_t max_results,
			 const struct pyscan_targetset *targets)
{
	memset(r, 0, sizeof(*r));
	if (pyscan_dedup__init(&r->seen, targets) < 0)
		return -ENOMEM;
	const uint64_t size = round_up_pow2(max_results < 2 ? 2 : max_results);
	r->buf = calloc(size, sizeof(*r->buf));
	r->mask = size - 1;
	return r->buf ? 0 : -ENOMEM;
}

void pyscan_results__free(struct pyscan_results *r)
{
	pyscan_dedup__free(&r->seen);
	free(r->buf);
	free(r->stash);
	r->buf = NULL;
	r->stash = NULL;
}

int pyscan_results__first_time(struct pyscan_results *r, const struct pyscan_result *res)
{
	return pyscan_dedup__first_time(&r->seen, res);
}

static int ring_try_push(struct pyscan_results *r, const struct pyscan_result *res)
{
	const uint64_t head = r->head;
	const uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	if (head - tail > r->mask)
		return 0;
	r->buf[head & r->mask] = *res;
	__atomic_store_n(&r->head, head + 1, __ATOMIC_RELEASE);
	return 1;
}

static int stash_push(struct pyscan_results *r, const struct pyscan_result *res)
{
	if (r->stash_len == r->stash_cap) {
		const uint64_t cap = r->stash_cap ? r->stash_cap * 2 : STASH_INITIAL;
		struct pyscan_result *bigger = realloc(r->stash, cap * sizeof(*bigger));
		if (!bigger)
			return -ENOMEM;
		r->stash = bigger;
		r->stash_cap = cap;
	}
	r->stash[r->stash_len++] = *res;
	pyscan_counter__bump(&r->stash_count, 1);
	return 0;
}

void pyscan_results__push(struct pyscan_results *r, const struct pyscan_result *res,
			  int in_rx_loop, const int *stop_rx)
{
	/* Once something is stashed, later results go behind it to keep arrival order. */
	if (r->stash_len == r->stash_read || !in_rx_loop) {
		while (!ring_try_push(r, res)) {
			if (!in_rx_loop || __atomic_load_n(stop_rx, __ATOMIC_RELAXED))
				goto stash;
			pyscan_counter__bump(&r->full_waits, 1);
			const struct timespec pause = {0, 1000000};
			nanosleep(&pause, NULL);
		}
		return;
	}
stash:
	if (stash_push(r, res) < 0)
		/* Out of memory with a full ring: the one place a result can be lost, and then
		 * it is at least not silent. */
		pyscan_counter__bump(&r->lost, 1);
}

uint32_t pyscan_results__drain(struct pyscan_results *r, struct pyscan_result *out,
			       uint32_t max, int rx_running)
{
	const uint64_t tail = r->tail;
	const uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	uint32_t n = 0;
	for (uint64_t i = tail; i != head && n < max; i++)
		out[n++] = r->buf[i & r->mask];
	__atomic_store_n(&r->tail, tail + n, __ATOMIC_RELEASE);

	if (n < max && !rx_running) {
		while (n < max && r->stash_read < r->stash_len)
			out[n++] = r->stash[r->stash_read++];
		__atomic_store_n(&r->stash_count, r->stash_len - r->stash_read, __ATOMIC_RELAXED);
	}
	return n;
}

uint64_t pyscan_results__pending(const struct pyscan_results *r)
{
	const uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	const uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	return head - tail + pyscan_counter__load(&r->stash_count);
}
