"""The cluster summary counts closed and unreachable replies as a single-host summary does:
every one the shards' engines counted, whether the scan shows them (--show closed /
unreachable) or not; shown ones once each across attempts (no root)."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest

pytest.importorskip("distributed")

from pyscan.cluster.client import ClusterRun, ResultMerger, _State
from pyscan.cluster.report import cluster_summary_json, render_cluster_summary
from pyscan.cluster.wire import pack_results
from pyscan.config import ScanConfig
from pyscan.scanner import POSITIVE, Result

A = IPv4Address("198.19.1.2")


def _scan(**options: object) -> ScanConfig:
    return ScanConfig.parse(["198.19.1.0/28"], ports="22,80", rate="20k", seed="5",
                            **options)  # type: ignore[arg-type]


def _report(attempt: str, name: str, *, opened: int, closed: int,
            unreachable: int) -> dict[str, Any]:
    """What run_shard returns for a completed shard (its summary as Summary.as_dict)."""
    return {"skipped": False, "attempt": attempt, "worker": f"tcp://10.0.0.1:{name[-1]}",
            "name": name, "host": "h", "interface": "veth0", "rate": 1000.0,
            "summary": {"driver": "af-packet", "sent": 16, "send_duration": 0.1,
                        "replies": opened + closed + unreachable, "open": opened,
                        "closed": closed, "unreachable": unreachable, "driver_drops": 0}}


def test_unshown_closed_and_unreachable_come_from_the_shards_counters() -> None:
    merger = ResultMerger(POSITIVE)           # the default --show: open and up only
    opened = [Result(A, 80, "open", 64, 1.0), Result(A, 0, "up", 64, 1.0, protocol="icmp")]
    assert len(list(merger.merge(pack_results(opened)))) == 2
    merger.count_shard((1, 2), {"closed": 3, "unreachable": 1}, completed=True)
    merger.count_shard((2, 2), {"closed": 4, "unreachable": 0}, completed=True)
    assert (merger.open, merger.closed, merger.unreachable) == (2, 7, 1)


def test_a_running_shard_counts_its_best_attempt_until_one_completes() -> None:
    merger = ResultMerger(POSITIVE)
    merger.count_shard((1, 1), {"closed": 2, "unreachable": 1}, completed=False)
    merger.count_shard((1, 1), {"closed": 1, "unreachable": 0}, completed=False)  # re-run
    assert (merger.closed, merger.unreachable) == (2, 1)
    merger.count_shard((1, 1), {"closed": 5, "unreachable": 2}, completed=True)
    merger.count_shard((1, 1), {"closed": 9, "unreachable": 9}, completed=False)  # late, lost
    merger.count_shard((1, 1), {"closed": 8, "unreachable": 8}, completed=True)   # 2nd finish
    assert (merger.closed, merger.unreachable) == (5, 2)


def test_shown_statuses_are_counted_once_each_from_the_merged_results() -> None:
    merger = ResultMerger(POSITIVE | {"closed", "unreachable"})
    batch = [Result(A, 22, "closed", 64, 1.0),
             Result(A, 23, "unreachable", 64, 1.0, icmp_type=3, icmp_code=13)]
    list(merger.merge(pack_results(batch)))
    list(merger.merge(pack_results(batch)))   # a re-run attempt's copies
    merger.count_shard((1, 1), {"closed": 1, "unreachable": 1}, completed=True)
    assert (merger.closed, merger.unreachable, merger.duplicates) == (1, 1, 2)


@pytest.mark.parametrize("show", [{}, {"show_unreachable": True}, {"show_closed": True}])
def test_the_rendered_summary_counts_what_the_shards_counted(show: dict[str, bool]) -> None:
    config = _scan(**show)
    state = _State(ClusterRun(config, client=None))  # type: ignore[arg-type]
    shown = [Result(A, 80, "open", 64, 1.0)]
    if show:
        shown.append(Result(A, 81, "unreachable", 64, 1.0, icmp_type=3, icmp_code=13))
    if show.get("show_closed"):
        shown += [Result(A, 22, "closed", 64, 1.0), Result(A, 23, "closed", 64, 1.0)]
    list(state.merger.merge(pack_results(shown)))
    state._finished((1, 2), _report("a1", "pyscan-1", opened=1, closed=2, unreachable=1))
    state._finished((2, 2), _report("a2", "pyscan-2", opened=0, closed=0, unreachable=0))
    state.plan_count = 2
    summary = state.summary()
    assert (summary.open, summary.closed, summary.unreachable) == (1, 2, 1)
    assert sum(row.closed for row in summary.workers) == summary.closed
    assert "1 open, 2 closed, 1 unreachable" in render_cluster_summary(summary)
    assert '"closed": 2' in cluster_summary_json(summary)
