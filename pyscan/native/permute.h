/* SPDX-License-Identifier: GPL-2.0-only
 *
 * permute.h - a keyed bijection over [0, range): the order in which a scan visits its targets.
 *
 * Construction: Black & Rogaway's FE2 ("Ciphers with Arbitrary Finite Domains", 2002), the
 * generalised Feistel network masscan's BlackRock also uses, over the domain [0, a*b) with
 * a = 2^k <= sqrt(range) and b = ceil(range / a), then cycle walking back into [0, range).
 * Choosing a as a power of two makes the split into (low, high) halves a mask and a shift, so
 * the hot path has no division; each round adds a keyed hash reduced into [0, a) or [0, b)
 * with a multiply-high (Lemire's fastrange), which needs no division either.
 *
 * Invariant: for every seed and every range in [1, PYSCAN_PERMUTE_MAX_RANGE], at() maps
 * [0, range) onto [0, range) one-to-one. Each Feistel round is invertible whatever the round
 * function (the new half is old half + F(other half) modulo its own size), so the network is a
 * permutation of [0, a*b); cycle walking restricts a permutation to a subset and stays one.
 * a*b - range < a <= sqrt(range), so the walk takes one step in all but a vanishing fraction
 * of indices. No per-element memory: the struct is the whole state.
 */
#ifndef PYSCAN_PERMUTE_H
#define PYSCAN_PERMUTE_H

#include <stdint.h>

/* Six rounds. Four (Luby-Rackoff's count for a pseudo-random permutation) is not enough when
 * the scan enumerates the whole domain with halves of a few hundred values: with four, the low
 * bits of consecutive outputs failed a chi-square pair test for 4 of 20 seeds (statistic up
 * to 457 for 255 degrees of freedom, n = 2^16 and 10^6+3); with six, 20 of 20 pass. Cost:
 * 9.1 ns per index instead of 6.7 (throughput, one core of this machine). masscan uses 14
 * rounds of a weaker function. */
#define PYSCAN_PERMUTE_ROUNDS 6
/* a*b must not overflow 64 bits; 2^62 covers 2^32 addresses x 65536 ports with room to spare. */
#define PYSCAN_PERMUTE_MAX_RANGE (1ULL << 62)

struct pyscan_permute {
	uint64_t range;      /* the permutation is over [0, range) */
	uint64_t low_mask;   /* a - 1, a = 2^low_bits */
	uint64_t high_size;  /* b = ceil(range / a) */
	uint32_t low_bits;   /* k */
	uint32_t rounds;     /* PYSCAN_PERMUTE_ROUNDS, so Python and debuggers see which network */
	uint64_t round_key[PYSCAN_PERMUTE_ROUNDS];
};

_Static_assert(sizeof(struct pyscan_permute) == 80, "pyscan_permute layout");
_Static_assert(PYSCAN_PERMUTE_ROUNDS == 6, "permute.cdef spells out round_key[6]");

/* 0, or -EINVAL when range is 0 or above PYSCAN_PERMUTE_MAX_RANGE. */
int pyscan_permute__init(struct pyscan_permute *p, uint64_t range, uint64_t seed);
/* Out-of-line copy of pyscan_permute__at for Python (cffi cannot call a static inline). */
uint64_t pyscan_permute__at_export(const struct pyscan_permute *p, uint64_t index);
/* The inverse of at(): inverse(at(i)) == i. Not used while scanning; it is what lets tests
 * prove the permutation one-to-one on ranges too large to enumerate. */
uint64_t pyscan_permute__inverse(const struct pyscan_permute *p, uint64_t value);
/* out[i] = at(first + i * stride) for i < count: one call for bulk use (tests, list mode). */
void pyscan_permute__fill(const struct pyscan_permute *p, uint64_t first, uint64_t stride,
			  uint64_t *out, uint64_t count);

/* A keyed hash of x reduced into [0, modulus): multiply, fold the high half down, multiply
 * again (splitmix64's finaliser without its last shift, which would only mix the low bits the
 * reduction ignores), then a multiply-high range reduction that reads the well-mixed high
 * bits. A single multiply was tried: its high bits move in near-arithmetic progression for
 * consecutive x and the order failed every pair test. */
static inline uint64_t pyscan_permute__round(uint64_t x, uint64_t key, uint64_t modulus)
{
	uint64_t h = (x ^ key) * 0x9e3779b97f4a7c15ULL;
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93ULL;
	return (uint64_t)(((unsigned __int128)h * modulus) >> 64);
}

/* One pass of the FE2 network over [0, a*b); the domain's own permutation. */
static inline uint64_t pyscan_permute__feistel(const struct pyscan_permute *p, uint64_t m)
{
	const uint64_t a = p->low_mask + 1, b = p->high_size;
	uint64_t left = m & p->low_mask;  /* in [0, a) */
	uint64_t right = m >> p->low_bits; /* in [0, b) */

	for (uint32_t j = 0; j < PYSCAN_PERMUTE_ROUNDS; j++) {
		/* Rounds alternate moduli so that each half keeps its own size: after an even
		 * number of rounds left is back in [0, a) and right in [0, b). */
		const uint64_t modulus = (j & 1) ? b : a;
		uint64_t next = left + pyscan_permute__round(right, p->round_key[j], modulus);
		if (next >= modulus)
			next -= modulus;
		left = right;
		right = next;
	}
	_Static_assert(PYSCAN_PERMUTE_ROUNDS % 2 == 0, "the recombination below assumes even rounds");
	return (right << p->low_bits) | left;
}

/* index < range -> a value < range, distinct for distinct indices. */
static inline uint64_t pyscan_permute__at(const struct pyscan_permute *p, uint64_t index)
{
	uint64_t value = pyscan_permute__feistel(p, index);
	while (value >= p->range)
		value = pyscan_permute__feistel(p, value);
	return value;
}

/* out[i] = at(first + i * stride) for i < count. The same values as calling at() in a loop,
 * but in two passes with no other work: first one Feistel pass per index, a loop without
 * branches whose iterations the CPU overlaps (one at() is a chain of dependent multiplies,
 * about 26 ns of latency here; independent ones take about 9 ns each), then the cycle walk
 * for the rare values that landed in [range, a*b). A TX loop permutes its batch with this
 * first and then builds its frames. */
static inline void pyscan_permute__at_many(const struct pyscan_permute *p, uint64_t first,
					   uint64_t stride, uint64_t *out, uint32_t count)
{
	const struct pyscan_permute local = *p; /* out[] stores must not force reloads of *p */
	for (uint32_t i = 0; i < count; i++)
		out[i] = pyscan_permute__feistel(&local, first + (uint64_t)i * stride);
	for (uint32_t i = 0; i < count; i++)
		while (out[i] >= local.range)
			out[i] = pyscan_permute__feistel(&local, out[i]);
}

#endif /* PYSCAN_PERMUTE_H */
