/* SPDX-License-Identifier: GPL-2.0-only
 *
 * ratelimit.c - token bucket set-up and the monotonic clock (see ratelimit.h).
 *
 * Invariant: a bucket is either unlimited (reserve always answers 0) or has a nonzero
 * interval; no rate, however large or small, makes the arithmetic in reserve overflow
 * silently (it saturates instead).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "ratelimit.h"

#define NS_PER_S 1000000000ULL
/* A scheduler wake-up is routinely tens of microseconds late; spinning this last stretch is
 * what makes the limiter accurate at 1 kpps and up. */
#define SPIN_NS 50000ULL

void pyscan_ratelimit__init(struct pyscan_ratelimit *r, double pps, uint32_t max_burst,
			    uint64_t now_ns)
{
	memset(r, 0, sizeof(*r));
	r->epoch_ns = now_ns;
	r->max_burst = max_burst;
	if (!(pps > 0) || pps > 1e300) { /* also NaN and infinity */
		r->unlimited = 1;
		return;
	}
	/* + 0.5 rounds to nearest without libm, which the extension does not link. */
	const double ticks = (double)NS_PER_S * PYSCAN_RATELIMIT_TICKS_PER_NS / pps + 0.5;
	/* Above ~512 G pps the interval rounds to 0 ticks: no limit can be told apart from that. */
	if (ticks < 1) {
		r->unlimited = 1;
		return;
	}
	r->ticks_per_token = ticks >= 0x1p63 ? (1ULL << 63) : (uint64_t)ticks;
	/* Capped so that reserve's clock (< 2^63 ticks) plus the burst never saturates, which
	 * would make every reserve look in time: a slow rate with a huge burst stays limited. */
	r->burst_ticks = pyscan_ratelimit__saturating_mul(max_burst, r->ticks_per_token);
	if (r->burst_ticks > PYSCAN_RATELIMIT_MAX_BURST_TICKS)
		r->burst_ticks = PYSCAN_RATELIMIT_MAX_BURST_TICKS;
}

uint64_t pyscan_ratelimit__reserve_export(struct pyscan_ratelimit *r, uint32_t n, uint64_t now_ns)
{
	return pyscan_ratelimit__reserve(r, n, now_ns);
}

uint64_t pyscan_clock__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

void pyscan_clock__sleep_until_ns(uint64_t deadline_ns)
{
	if (deadline_ns > SPIN_NS) {
		const uint64_t wake = deadline_ns - SPIN_NS;
		const struct timespec ts = { .tv_sec = (time_t)(wake / NS_PER_S),
					     .tv_nsec = (long)(wake % NS_PER_S) };
		/* An absolute deadline makes a retry after EINTR exact. */
		while (pyscan_clock__now_ns() < wake &&
		       clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
	}
	while (pyscan_clock__now_ns() < deadline_ns)
		cpu_relax();
}
