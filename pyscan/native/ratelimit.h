/* SPDX-License-Identifier: GPL-2.0-only
 *
 * ratelimit.h - batch-granular token bucket on CLOCK_MONOTONIC, and the clock it runs on.
 *
 * The bucket is kept as one number, the instant at which it would be empty ("empty_at",
 * a generic cell rate algorithm): tokens available at time t = (t - empty_at) / interval,
 * capped at max_burst. Taking n tokens moves empty_at n intervals later; if that lands in the
 * future the caller waits until then. Time is kept in ticks of 1/256 ns relative to init, so
 * the interval is exact to 0.004 ns (0.04 % at 100 Mpps) and nothing drifts however many
 * batches are taken: each reserve adds an exact integer.
 *
 * Invariants: after the first batch (granted at once, whatever its size), the tokens a
 * caller may send during any interval [t0, t1] are at most max_burst + (t1 - t0) * pps, so
 * a pause, however long, buys no burst larger than max_burst; a caller that sleeps exactly as
 * told sends at pps on average, with no drift however long the scan. A late wake-up is made up from
 * the burst allowance, up to max_burst tokens, which is why max_burst should be a few batches.
 * The rate is per bucket: a caller with k sending threads gives each a bucket of pps / k.
 */
#ifndef PYSCAN_RATELIMIT_H
#define PYSCAN_RATELIMIT_H

#include <stdint.h>

#define PYSCAN_RATELIMIT_TICKS_PER_NS 256
/* Ticks since init are clamped below 2^63 (2^55 ns, over a year) and the burst below 2^62,
 * so their sum, the bucket's clock, cannot overflow. */
#define PYSCAN_RATELIMIT_MAX_SINCE_TICKS (1ULL << 63)
#define PYSCAN_RATELIMIT_MAX_BURST_TICKS (1ULL << 62)

struct pyscan_ratelimit {
	uint64_t epoch_ns;        /* now_ns at init; ticks count from here */
	uint64_t empty_at;        /* ticks, offset by burst_ticks so it never goes below 0 */
	uint64_t ticks_per_token; /* 0 = unlimited */
	uint64_t burst_ticks;     /* max_burst * ticks_per_token, at most MAX_BURST_TICKS */
	uint32_t max_burst;
	uint16_t unlimited;
	uint16_t started;         /* 0 until the first reserve */
};

_Static_assert(sizeof(struct pyscan_ratelimit) == 40, "pyscan_ratelimit layout");

/* pps <= 0 (or NaN) means unlimited. The first reserve is granted at once whatever its size;
 * tokens accrue from then on. */
void pyscan_ratelimit__init(struct pyscan_ratelimit *r, double pps, uint32_t max_burst,
			    uint64_t now_ns);
/* Out-of-line copy of pyscan_ratelimit__reserve for Python. */
uint64_t pyscan_ratelimit__reserve_export(struct pyscan_ratelimit *r, uint32_t n, uint64_t now_ns);

uint64_t pyscan_clock__now_ns(void);
/* nanosleep while far from the deadline, spin the last ~50 us (a scheduler wake-up is often
 * that late); returns at or after deadline_ns. */
void pyscan_clock__sleep_until_ns(uint64_t deadline_ns);

static inline uint64_t pyscan_ratelimit__saturating_mul(uint64_t a, uint64_t b)
{
	uint64_t product;
	return __builtin_mul_overflow(a, b, &product) ? UINT64_MAX : product;
}

static inline uint64_t pyscan_ratelimit__saturating_add(uint64_t a, uint64_t b)
{
	uint64_t sum;
	return __builtin_add_overflow(a, b, &sum) ? UINT64_MAX : sum;
}

/* Takes n tokens; returns how many ns from now_ns the caller must wait before sending those n
 * (0 = send now). now_ns must come from pyscan_clock__now_ns (or a test's fake clock). */
static inline uint64_t pyscan_ratelimit__reserve(struct pyscan_ratelimit *r, uint32_t n,
						 uint64_t now_ns)
{
	if (r->unlimited)
		return 0;

	const uint64_t since_epoch = now_ns > r->epoch_ns ? now_ns - r->epoch_ns : 0;
	const uint64_t since_ticks =
		since_epoch < PYSCAN_RATELIMIT_MAX_SINCE_TICKS / PYSCAN_RATELIMIT_TICKS_PER_NS
			? since_epoch * PYSCAN_RATELIMIT_TICKS_PER_NS
			: PYSCAN_RATELIMIT_MAX_SINCE_TICKS;
	const uint64_t now = since_ticks + r->burst_ticks;
	/* The first batch goes out at once and the bucket fills from empty after it: a scan
	 * neither waits a whole interval for its first probe nor opens with a burst. */
	if (!r->started) {
		r->started = 1;
		r->empty_at = now;
		return 0;
	}
	/* Tokens accrued during a pause beyond max_burst are forgotten. */
	const uint64_t full_since = now - r->burst_ticks;
	if (r->empty_at < full_since)
		r->empty_at = full_since;

	r->empty_at = pyscan_ratelimit__saturating_add(
		r->empty_at, pyscan_ratelimit__saturating_mul(n, r->ticks_per_token));
	if (r->empty_at <= now)
		return 0;
	const uint64_t wait_ticks = r->empty_at - now;
	return (wait_ticks + PYSCAN_RATELIMIT_TICKS_PER_NS - 1) / PYSCAN_RATELIMIT_TICKS_PER_NS;
}

#endif /* PYSCAN_RATELIMIT_H */
