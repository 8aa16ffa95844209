"""The token bucket (ratelimit.h), driven by a fake clock: rates and bursts, no real time."""

from __future__ import annotations

import random

import pytest

from pyscan.native import RateLimit, monotonic_ns, sleep_until_ns

SECOND = 1_000_000_000
START = 5 * SECOND  # an arbitrary CLOCK_MONOTONIC reading


def simulate(pps: float, batch: int, max_burst: int, duration_ns: int,
             oversleep_ns: int = 0, seed: int = 0) -> int:
    """Tokens sent in [START, START + duration) by a sender that sleeps as told, waking up
    late by up to oversleep_ns each time it sleeps."""
    rng = random.Random(seed)
    bucket = RateLimit(pps, max_burst, START)
    now, sent = START, 0
    while True:
        wait = bucket.reserve(batch, now)
        if wait:
            now += wait + (rng.randrange(oversleep_ns + 1) if oversleep_ns else 0)
        if now >= START + duration_ns:
            return sent
        sent += batch


@pytest.mark.parametrize(("pps", "batch"), [
    (1_000, 1), (1_000, 8), (10_000, 64), (100_000, 64), (1_000_000, 64), (3_333_333, 16),
    (10_000_000, 64), (10_000_000, 1024),
])
def test_exact_sleeper_holds_the_rate_within_one_percent(pps: int, batch: int) -> None:
    sent = simulate(pps, batch, max_burst=4 * batch, duration_ns=SECOND)
    assert abs(sent - pps) <= 0.01 * pps, sent


@pytest.mark.parametrize(("pps", "batch", "oversleep_ns"), [
    (1_000, 1, 200_000), (100_000, 16, 50_000), (1_000_000, 64, 30_000),
    (10_000_000, 64, 20_000),
])
def test_late_wake_ups_are_made_up_from_the_burst(pps: int, batch: int,
                                                  oversleep_ns: int) -> None:
    """A scheduler that wakes the sender late must not lower the rate: the time lost comes
    back as credit, up to max_burst."""
    max_burst = 4 * batch + pps * oversleep_ns // SECOND
    sent = simulate(pps, batch, max_burst, duration_ns=SECOND, oversleep_ns=oversleep_ns)
    assert abs(sent - pps) <= 0.01 * pps, sent


def test_no_drift_over_a_long_scan() -> None:
    """Over 100 s the only error left is the interval's 1/256 ns resolution (here 0.4 ppm of
    810.0004 ns) and one batch: nothing accumulates per reserve."""
    sent = simulate(1_234_567, 64, 256, duration_ns=100 * SECOND)
    assert abs(sent - 123_456_700) <= 2 * 64 + 123_456_700 * 1e-6


def test_fractional_rates() -> None:
    assert simulate(0.5, 1, 1, duration_ns=10 * SECOND) == 5
    assert simulate(2.5, 1, 1, duration_ns=10 * SECOND) == 25


@pytest.mark.parametrize("max_burst", [0, 1, 7, 64, 1000])
def test_a_pause_buys_no_burst_larger_than_max_burst(max_burst: int) -> None:
    bucket = RateLimit(100_000, max_burst, START)
    now = START
    for _ in range(10_000):  # steady sending first
        now += bucket.reserve(10, now)
    now += 30 * SECOND  # the sender stalls
    free = 0
    while bucket.reserve(1, now) == 0:
        free += 1
        assert free <= max_burst + 1
    assert free == max_burst


def test_first_batch_goes_at_once_then_the_rate_applies() -> None:
    bucket = RateLimit(1_000, 100, START)
    assert bucket.reserve(50, START) == 0
    # the second 50 tokens are paid for 50 ms after the first batch, the next one 1 ms later
    assert bucket.reserve(50, START) == 50_000_000
    assert bucket.reserve(1, START + 10_000_000) == 41_000_000


def test_wait_is_exact_to_the_nanosecond_at_awkward_rates() -> None:
    bucket = RateLimit(3, 1, START)
    bucket.reserve(1, START)
    assert bucket.reserve(1, START) == 333_333_334  # ceil(1e9 / 3)
    assert bucket.reserve(1, START) == 666_666_667


@pytest.mark.parametrize("pps", [0, -5, float("inf")])
def test_non_positive_rate_means_unlimited(pps: float) -> None:
    bucket = RateLimit(pps, 0, START)
    assert bucket.unlimited
    assert all(bucket.reserve(1_000_000, START) == 0 for _ in range(100))


def test_limited_bucket_is_not_unlimited() -> None:
    assert not RateLimit(1, 0).unlimited


def test_a_clock_reading_before_init_is_treated_as_init() -> None:
    bucket = RateLimit(1_000, 10, START)
    assert bucket.reserve(1, START - SECOND) == 0
    assert bucket.reserve(1, START - SECOND) == 1_000_000


@pytest.mark.parametrize(("args", "message"), [
    ((float("nan"), 1), "rate nan is not a number"),
    (("fast", 1), "rate 'fast' is not a number"),
    ((1000, -1), "max burst -1 is out of range"),
])
def test_bad_input_is_rejected(args: tuple[object, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimit(*args)  # type: ignore[arg-type]


def test_native_clock_is_clock_monotonic_and_sleep_reaches_its_deadline() -> None:
    import time

    before = time.monotonic_ns()
    native = monotonic_ns()
    after = time.monotonic_ns()
    assert before <= native <= after
    deadline = monotonic_ns() + 200_000
    sleep_until_ns(deadline)
    assert monotonic_ns() >= deadline
    sleep_until_ns(0)  # a deadline in the past returns at once


def test_a_slow_rate_with_a_huge_burst_stays_limited() -> None:
    """max_burst x interval beyond 64 bits must not wrap the bucket's clock into 'always in
    time'; the allowance is capped instead."""
    bucket = RateLimit(0.001, 2**32 - 1, START)
    assert bucket.reserve(1, START) == 0
    now = START + 10**9 * SECOND  # 31 years later: far more than any real pause
    free = 0
    while bucket.reserve(2**20, now) == 0:
        free += 2**20
        assert free < 2**33
    assert bucket.reserve(1, now) > 0
    fresh = RateLimit(0.001, 2**32 - 1, START)
    fresh.reserve(1, START)
    assert fresh.reserve(1, START) == 1000 * SECOND
