"""A cluster scan of IPv6 targets: accepted, planned over the IPv6 target set, each shard's
config keeps the family, and merged results keep IPv6 and IPv4 pairs apart (no root)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

pytest.importorskip("distributed")

from pyscan.cluster.client import ClusterRun, ResultMerger
from pyscan.cluster.plan import plan_shards
from pyscan.cluster.wire import pack_results
from pyscan.cluster.worker import ShardTask, WorkerSettings
from pyscan.config import ScanConfig
from pyscan.scanner import Result


def v6_scan(**options: object) -> ScanConfig:
    return ScanConfig.parse(["2001:2::/116"], ports="22,80,443", rate="20k", seed="5",
                            **options)  # type: ignore[arg-type]


def test_an_ipv6_scan_is_accepted_and_planned_over_its_own_target_set() -> None:
    config = v6_scan()
    run = ClusterRun(config, client=None)  # type: ignore[arg-type] - refusals come first
    assert run.config.targets.family == 6
    plan = plan_shards(config.probe_count, workers=3, shards_per_worker=2)
    assert config.probe_count == 4096 * 3
    # The shards' probe counts add up to the IPv6 scan's, each owed once.
    assert sum(plan.probes_of(index) for index, _ in plan.shards) == config.probe_count
    assert plan.count == 6


def test_a_shard_of_an_ipv6_scan_keeps_its_targets_and_probe() -> None:
    config = v6_scan()
    task = ShardTask(scan_id="s6", shard=(2, 6), scan=config, total_rate=config.rate)
    shard = task.config(WorkerSettings(interface="lo"), rate=1000.0)
    assert shard.targets == config.targets and shard.targets.family == 6
    assert (shard.shard, shard.rate, shard.interface) == ((2, 6), 1000.0, "lo")


def test_a_worker_source_address_of_the_scan_family_is_used_the_other_family_is_not() -> None:
    config = v6_scan()
    task = ShardTask(scan_id="s6", shard=(1, 2), scan=config, total_rate=config.rate)
    own = task.config(WorkerSettings(source_ip="2001:2:0:ffff::1"), rate=1.0)
    assert own.source_ip == IPv6Address("2001:2:0:ffff::1")
    # A worker set up with an IPv4 source scans IPv6 from its route's address, not from
    # an address of the wrong family (which no IPv6 header can carry).
    other = task.config(WorkerSettings(source_ip="198.18.0.1"), rate=1.0)
    assert other.source_ip is None
    v4 = ScanConfig.parse(["198.19.0.0/24"], ports="80")
    v4_task = ShardTask(scan_id="s4", shard=(1, 2), scan=v4, total_rate=v4.rate)
    assert v4_task.config(WorkerSettings(source_ip="198.18.0.1"), rate=1.0).source_ip == \
        IPv4Address("198.18.0.1")


def test_merged_ipv6_results_come_out_once_each_with_their_codes() -> None:
    results = [Result(IPv6Address(f"2001:2::{i:x}"), 80, "open", 64, 1.0, window=64240)
               for i in range(1, 50)]
    results.append(Result(IPv6Address("2001:2::7"), 443, "unreachable", 64, 1.0,
                          icmp_type=1, icmp_code=4))
    # The same low 64 bits as an IPv4 result must not collide with it.
    results.append(Result(IPv6Address("::c613:1"), 80, "open", 64, 1.0))
    merger = ResultMerger()
    first = list(merger.merge(pack_results(results)))
    again = list(merger.merge(pack_results(results[:10])))        # a re-run attempt
    v4 = list(merger.merge(pack_results([Result(IPv4Address("198.19.0.1"), 80, "open", 64,
                                                 1.0)])))
    assert again == [] and merger.duplicates == 10
    assert [(r.ip, r.port, r.status) for r in first] == [
        (r.ip, r.port, r.status) for r in results]
    assert (first[-2].icmp_type, first[-2].icmp_code) == (1, 4)
    assert len(v4) == 1 and merger.open == len(results)       # 49 + 1 v6 + 1 v4 open
    assert merger.unreachable == 1
