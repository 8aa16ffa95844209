/* SPDX-License-Identifier: GPL-2.0-only
 *
 * schedule.h - the retry schedule of one TX lane: in which order the lane sends its P passes
 * (P = retries + 1) over its pairs k = 0 .. probes - 1, as a pure function of one counter, the
 * lane's position (frames sent so far). No per-target memory.
 *
 * The lane's pairs are cut into blocks of `block` consecutive k (the last may be shorter).
 * Frames go out in phases p = 0, 1, ...: phase p is block p's pass 0, then block p-1's pass 1,
 * ..., block p-R's pass R (R = P - 1), each "chunk" present only if its block exists. So a
 * pair's pass r+1 is separated from its pass r by P whole chunks (the P-1 other blocks of the
 * phase and the next phase's first chunks): P * block frames in the steady state, fewer only
 * where blocks are missing (the first and last R phases). engine_tx.c sizes blocks from
 * rate x retry-delay so that P * block frames take at least the delay at the lane's rate, and
 * still checks a clock per chunk (the tail, unlimited rates, resume): at most P timestamps.
 *
 * Invariants: the chunks, in order, cover every (k, pass) exactly once; a block's passes come
 * in pass order; the chunks between a block's pass r and pass r+1 belong to P distinct other
 * blocks, none congruent to it modulo P (so one timestamp per block mod P suffices); with
 * P = 1 the order is k = 0, 1, 2, ... (the scan without retries, unchanged).
 */
#ifndef PYSCAN_SCHEDULE_H
#define PYSCAN_SCHEDULE_H

#include <stdint.h>

#define PYSCAN_SCHEDULE_MAX_PASSES 16

struct pyscan_schedule {
	uint64_t probes; /* pairs of the lane */
	uint64_t block;  /* pairs per block, >= 1 */
	uint64_t blocks; /* ceil(probes / block) */
	uint32_t passes; /* 1 .. PYSCAN_SCHEDULE_MAX_PASSES */
	uint32_t reserved;
};

/* One block's pass: pairs k_first .. k_first + len - 1, all in pass `pass`. */
struct pyscan_schedule_chunk {
	uint64_t block;
	uint64_t k_first;
	uint64_t len;
	uint32_t pass;
	uint32_t reserved;
};

static inline void pyscan_schedule__init(struct pyscan_schedule *s, uint64_t probes,
					 uint64_t block, uint32_t passes)
{
	s->probes = probes;
	s->block = block ? block : 1;
	s->blocks = (probes + s->block - 1) / s->block;
	s->passes = passes ? passes : 1;
	s->reserved = 0;
}

static inline uint64_t pyscan_schedule__frames(const struct pyscan_schedule *s)
{
	return s->probes * s->passes;
}

static inline uint64_t pyscan_schedule__block_len(const struct pyscan_schedule *s, uint64_t b)
{
	const uint64_t first = b * s->block;
	return s->probes - first < s->block ? s->probes - first : s->block;
}

static inline void pyscan_schedule__make_chunk(const struct pyscan_schedule *s, uint64_t b,
					       uint32_t pass, struct pyscan_schedule_chunk *c)
{
	c->block = b;
	c->pass = pass;
	c->k_first = b * s->block;
	c->len = pyscan_schedule__block_len(s, b);
	c->reserved = 0;
}

/* The first chunk of phase p, or 0 when p is past the last phase. */
static inline int pyscan_schedule__phase_start(const struct pyscan_schedule *s, uint64_t p,
					       struct pyscan_schedule_chunk *c)
{
	/* slot r holds block p - r: it exists when p - r < blocks, i.e. r >= p + 1 - blocks */
	const uint64_t r = p + 1 > s->blocks ? p + 1 - s->blocks : 0;
	if (r >= s->passes || !s->blocks)
		return 0;
	pyscan_schedule__make_chunk(s, p - r, (uint32_t)r, c);
	return 1;
}

/* Moves c to the chunk after it; 0 when c was the last. */
static inline int pyscan_schedule__next(const struct pyscan_schedule *s,
					struct pyscan_schedule_chunk *c)
{
	const uint64_t phase = c->block + c->pass;
	if (c->pass + 1 < s->passes && c->block > 0) {
		pyscan_schedule__make_chunk(s, c->block - 1, c->pass + 1, c);
		return 1;
	}
	return pyscan_schedule__phase_start(s, phase + 1, c);
}

/* Total length of blocks 0 .. b - 1 (b may exceed blocks). */
static inline uint64_t pyscan_schedule__pairs_before(const struct pyscan_schedule *s, uint64_t b)
{
	return b >= s->blocks ? s->probes : b * s->block;
}

/* Frames of all phases before phase p. */
static inline uint64_t pyscan_schedule__phase_position(const struct pyscan_schedule *s, uint64_t p)
{
	/* Block b has had min(p - b, P) of its passes before phase p (none when b >= p). */
	const uint64_t P = s->passes;
	uint64_t frames = p >= P ? P * pyscan_schedule__pairs_before(s, p - P + 1) : 0;
	for (uint64_t b = p >= P ? p - P + 1 : 0; b < p && b < s->blocks; b++)
		frames += (p - b) * pyscan_schedule__block_len(s, b);
	return frames;
}

/* The chunk holding frame `position` and the offset of that frame in it; 0 when the
 * position is at or past the end. O(P log blocks): this is how a lane resumes from its one
 * counter. */
static inline int pyscan_schedule__seek(const struct pyscan_schedule *s, uint64_t position,
					struct pyscan_schedule_chunk *c, uint64_t *offset)
{
	if (position >= pyscan_schedule__frames(s))
		return 0;
	/* the last phase p with phase_position(p) <= position */
	uint64_t lo = 0, hi = s->blocks + s->passes - 1; /* phases 0 .. hi - 1 exist */
	while (hi - lo > 1) {
		const uint64_t mid = lo + (hi - lo) / 2;
		if (pyscan_schedule__phase_position(s, mid) <= position)
			lo = mid;
		else
			hi = mid;
	}
	uint64_t at = pyscan_schedule__phase_position(s, lo);
	if (!pyscan_schedule__phase_start(s, lo, c))
		return 0;
	while (at + c->len <= position) {
		at += c->len;
		if (!pyscan_schedule__next(s, c))
			return 0;
	}
	*offset = position - at;
	return 1;
}

#endif /* PYSCAN_SCHEDULE_H */
