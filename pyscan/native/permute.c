/* SPDX-License-Identifier: GPL-2.0-only
 *
 * permute.c - set-up of the keyed permutation (see permute.h for the construction).
 *
 * Invariant: init derives everything from (range, seed) alone, so two processes given the same
 * pair (shards of one scan on different machines) visit targets in the same order.
 */
#include <errno.h>
#include <string.h>

#include "permute.h"

/* splitmix64: expands one 64-bit seed into independent-looking round keys. */
static uint64_t splitmix64_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint32_t floor_log2(uint64_t x)
{
	return 63u - (uint32_t)__builtin_clzll(x);
}

int pyscan_permute__init(struct pyscan_permute *p, uint64_t range, uint64_t seed)
{
	if (range == 0 || range > PYSCAN_PERMUTE_MAX_RANGE)
		return -EINVAL;

	memset(p, 0, sizeof(*p));
	p->range = range;
	/* a = 2^k with 4^k <= range < 4^(k+1): a <= sqrt(range) <= b <= 4a, so a*b - range < a
	 * keeps cycle walking rare, and the halves stay balanced enough for Feistel mixing. */
	p->low_bits = floor_log2(range) / 2;
	p->low_mask = (1ULL << p->low_bits) - 1;
	p->high_size = (range + p->low_mask) >> p->low_bits;
	p->rounds = PYSCAN_PERMUTE_ROUNDS;

	uint64_t state = seed;
	for (uint32_t j = 0; j < PYSCAN_PERMUTE_ROUNDS; j++)
		p->round_key[j] = splitmix64_next(&state);
	return 0;
}

uint64_t pyscan_permute__at_export(const struct pyscan_permute *p, uint64_t index)
{
	return pyscan_permute__at(p, index);
}

void pyscan_permute__fill(const struct pyscan_permute *p, uint64_t first, uint64_t *out, uint64_t count)
{
	for (uint64_t i = 0; i < count; i++)
		out[i] = pyscan_permute__at(p, first + i);
}
