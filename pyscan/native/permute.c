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

/* Undoes pyscan_permute__feistel round by round: each round's new half is
 * (old half + F(other half)) mod its size, and the other half is carried over unchanged. */
static uint64_t feistel_inverse(const struct pyscan_permute *p, uint64_t value)
{
	const uint64_t a = p->low_mask + 1, b = p->high_size;
	uint64_t left = value & p->low_mask;
	uint64_t right = value >> p->low_bits;

	for (uint32_t j = PYSCAN_PERMUTE_ROUNDS; j-- > 0;) {
		const uint64_t modulus = (j & 1) ? b : a;
		const uint64_t f = pyscan_permute__round(left, p->round_key[j], modulus);
		const uint64_t previous_left = right >= f ? right - f : right + modulus - f;
		right = left;
		left = previous_left;
	}
	return (right << p->low_bits) | left;
}

uint64_t pyscan_permute__inverse(const struct pyscan_permute *p, uint64_t value)
{
	uint64_t index = feistel_inverse(p, value);
	while (index >= p->range)
		index = feistel_inverse(p, index);
	return index;
}

void pyscan_permute__fill(const struct pyscan_permute *p, uint64_t first, uint64_t stride,
			  uint64_t *out, uint64_t count)
{
	const uint32_t chunk = 1u << 20;
	for (uint64_t done = 0; done < count; done += chunk) {
		const uint64_t left = count - done;
		pyscan_permute__at_many(p, first + done * stride, stride, out + done,
					left < chunk ? (uint32_t)left : chunk);
	}
}
