/* SPDX-License-Identifier: GPL-2.0-only
 *
 * results.c - the seen set, results ring and stash of results.h.
 *
 * Invariant: an IPv4 result's dedup key is exact, ((address << 16) | port); other families
 * (none yet) are keyed by a 63-bit mix with the top bit set, disjoint from IPv4 keys, until
 * IPv6 brings a set with 18-byte keys.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "counter.h"
#include "probe.h"
#include "results.h"

#define SEEN_INITIAL_SLOTS 4096
#define STASH_INITIAL 1024

static uint64_t round_up_pow2(uint64_t x)
{
	uint64_t p = 1;
	while (p < x)
		p <<= 1;
	return p;
}

static uint64_t dedup_key(const struct pyscan_result *res)
{
	if (res->family == 4) {
		uint32_t ip_be;
		memcpy(&ip_be, res->addr, 4);
		return ((uint64_t)ip_be << 16) | res->port;
	}
	uint64_t a, b;
	memcpy(&a, res->addr, 8);
	memcpy(&b, res->addr + 8, 8);
	return (pyscan_probe__mix64(a ^ pyscan_probe__mix64(b ^ res->port)) >> 1) | (1ULL << 63);
}

static void seen_place(uint64_t *slots, uint64_t mask, uint64_t key)
{
	uint64_t i = pyscan_probe__mix64(key) & mask;
	while (slots[i])
		i = (i + 1) & mask;
	slots[i] = key;
}

static int seen_insert(struct pyscan_seen_set *s, uint64_t key)
{
	uint64_t i = pyscan_probe__mix64(key) & s->mask;
	while (s->slots[i]) {
		if (s->slots[i] == key)
			return 0;
		i = (i + 1) & s->mask;
	}
	if ((s->used + 1) * 2 > s->mask + 1) {
		const uint64_t new_mask = s->mask * 2 + 1;
		uint64_t *bigger = calloc(new_mask + 1, sizeof(*bigger));
		if (!bigger)
			return -ENOMEM;
		for (uint64_t j = 0; j <= s->mask; j++)
			if (s->slots[j])
				seen_place(bigger, new_mask, s->slots[j]);
		free(s->slots);
		s->slots = bigger;
		s->mask = new_mask;
		seen_place(s->slots, s->mask, key);
	} else {
		s->slots[i] = key;
	}
	s->used++;
	return 1;
}

int pyscan_results__init(struct pyscan_results *r, uint64_t max_results)
{
	memset(r, 0, sizeof(*r));
	r->seen.slots = calloc(SEEN_INITIAL_SLOTS, sizeof(*r->seen.slots));
	r->seen.mask = SEEN_INITIAL_SLOTS - 1;
	const uint64_t size = round_up_pow2(max_results < 2 ? 2 : max_results);
	r->buf = calloc(size, sizeof(*r->buf));
	r->mask = size - 1;
	return r->seen.slots && r->buf ? 0 : -ENOMEM;
}

void pyscan_results__free(struct pyscan_results *r)
{
	free(r->seen.slots);
	free(r->buf);
	free(r->stash);
	r->seen.slots = NULL;
	r->buf = NULL;
	r->stash = NULL;
}

int pyscan_results__first_time(struct pyscan_results *r, const struct pyscan_result *res)
{
	/* + 1: an all-zero key must not look like an empty slot */
	return seen_insert(&r->seen, dedup_key(res) + 1);
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
