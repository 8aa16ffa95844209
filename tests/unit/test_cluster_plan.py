"""Shard planning and rate sharing for cluster scans (pyscan.cluster.plan: no Dask needed),
and the packed result batches shard tasks send to the client."""

from __future__ import annotations

import math

import pytest

from pyscan.cluster.plan import (
    DEFAULT_SHARDS_PER_WORKER,
    MIN_PROBES_PER_SHARD,
    ShardPlan,
    plan_shards,
    shard_probes,
    share_rate,
)


@pytest.mark.parametrize("workers", [1, 2, 3, 8, 100])
def test_a_large_scan_gets_more_shards_than_workers(workers: int) -> None:
    plan = plan_shards(probes=65536 * 4 * 256, workers=workers)
    assert plan.count == workers * DEFAULT_SHARDS_PER_WORKER
    assert plan.shards == tuple((i, plan.count) for i in range(1, plan.count + 1))


def test_a_small_scan_keeps_shards_worth_their_overhead() -> None:
    plan = plan_shards(probes=4 * MIN_PROBES_PER_SHARD, workers=8)
    assert plan.count == 8                     # one per worker, not 32 tiny ones
    assert plan_shards(probes=3, workers=8).count == 3   # never an empty shard
    assert plan_shards(probes=10 * MIN_PROBES_PER_SHARD, workers=2).count == 8


@pytest.mark.parametrize("probes", [1, 2, 7, 1000, 16384, 65537, 1 << 20])
@pytest.mark.parametrize("workers", [1, 2, 3, 5])
def test_shards_partition_the_probes_exactly(probes: int, workers: int) -> None:
    plan = plan_shards(probes, workers)
    sizes = [plan.probes_of(index) for index, _ in plan.shards]
    assert sum(sizes) == probes
    assert all(size >= 1 for size in sizes)
    assert max(sizes) - min(sizes) <= 1        # interleaved shards are balanced


def test_shard_probes_matches_the_engine_rule() -> None:
    # engine.h: permutation index k belongs to shard k mod n (0-based)
    total, count = 103, 7
    for index in range(1, count + 1):
        expected = sum(1 for k in range(total) if k % count == index - 1)
        assert shard_probes(total, index, count) == expected


@pytest.mark.parametrize("bad", [(0, 4), (5, 4), (-1, 4)])
def test_shard_probes_refuses_a_shard_outside_the_plan(bad: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="bad shard"):
        shard_probes(100, *bad)


@pytest.mark.parametrize(("probes", "workers", "per_worker"), [(0, 1, 4), (10, 0, 4), (10, 1, 0)])
def test_plan_refuses_nonsense(probes: int, workers: int, per_worker: int) -> None:
    with pytest.raises(ValueError):
        plan_shards(probes, workers, per_worker)
    with pytest.raises(ValueError):
        ShardPlan(count=0, probes=10)


def test_rate_is_split_evenly_without_caps() -> None:
    rates = share_rate(9_000_000, {"a": math.inf, "b": math.inf, "c": math.inf})
    assert rates == {"a": 3_000_000, "b": 3_000_000, "c": 3_000_000}


def test_a_capped_worker_gets_its_cap_and_the_rest_goes_to_the_others() -> None:
    rates = share_rate(10_000_000, {"slow": 1_000_000, "b": math.inf, "c": math.inf})
    assert rates["slow"] == 1_000_000
    assert rates["b"] == rates["c"] == pytest.approx(4_500_000)
    assert sum(rates.values()) == pytest.approx(10_000_000)


def test_when_every_cap_is_below_the_share_the_total_is_not_reached() -> None:
    rates = share_rate(10_000_000, {"a": 1_000_000, "b": 2_000_000})
    assert rates == {"a": 1_000_000, "b": 2_000_000}


def test_an_unlimited_scan_runs_every_worker_at_its_cap() -> None:
    rates = share_rate(math.inf, {"a": 5e6, "b": math.inf})
    assert rates == {"a": 5e6, "b": math.inf}


@pytest.mark.parametrize("total", [1.0, 999.0, 25e6])
@pytest.mark.parametrize("caps", [[math.inf], [1e3, 1e9, 5e5], [7.0, 7.0, 7.0, math.inf],
                                  [2e6] * 8, [3.0, 1e12]])
def test_shared_rates_never_exceed_the_total_or_a_cap(total: float, caps: list[float]) -> None:
    named = {f"w{i}": cap for i, cap in enumerate(caps)}
    rates = share_rate(total, named)
    assert set(rates) == set(named)
    assert sum(rates.values()) <= total * (1 + 1e-12)
    assert all(0 < rates[name] <= cap for name, cap in named.items())
    # max-min fair: a worker below its cap gets at least as much as any other worker
    uncapped = [rates[n] for n, cap in named.items() if rates[n] < cap]
    assert all(rate >= max(rates.values()) * (1 - 1e-12) for rate in uncapped)


@pytest.mark.parametrize(("total", "caps"), [(0.0, {"a": 1.0}), (10.0, {"a": 0.0})])
def test_rate_sharing_refuses_zero(total: float, caps: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be above 0"):
        share_rate(total, caps)


def test_worker_settings_reject_bad_values_and_round_trip() -> None:
    pytest.importorskip("distributed")
    from pyscan.cluster.worker import WorkerSettings
    from pyscan.config import ConfigError

    settings = WorkerSettings.parse(interface="eth1", driver="af-packet", max_rate="2M")
    assert settings.max_rate == 2e6
    assert WorkerSettings.from_dict(settings.as_dict()) == settings
    assert WorkerSettings().as_dict()["max_rate"] is None      # unlimited travels as None
    with pytest.raises(ConfigError, match="unknown driver 'dpdk'"):
        WorkerSettings(driver="dpdk")
    with pytest.raises(ConfigError, match="bad rate"):
        WorkerSettings.parse(max_rate="fast")
    with pytest.raises(ConfigError, match="interface name"):
        WorkerSettings(interface="x" * 16)


def test_a_worker_started_by_dask_reads_its_settings_from_the_environment() -> None:
    pytest.importorskip("distributed")
    from pyscan.cluster.worker import WorkerSettings
    from pyscan.config import ConfigError

    settings = WorkerSettings.from_environment({
        "PYSCAN_WORKER_INTERFACE": "eth1", "PYSCAN_WORKER_MAX_RATE": "250k",
        "PYSCAN_WORKER_NETNS": "", "HOME": "/root"})
    assert settings == WorkerSettings(interface="eth1", max_rate=250_000)
    assert WorkerSettings.from_environment({}) == WorkerSettings()
    with pytest.raises(ConfigError, match="'warp'"):
        WorkerSettings.from_environment({"PYSCAN_WORKER_DRIVER": "warp"})
