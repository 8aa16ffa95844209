"""One scan on a local Dask cluster of pyscan worker processes, against the truth lab.

What must hold (issue 13): the union of the shards equals the lab's truth with nothing twice,
whatever happens to a worker - killed mid-scan (its shard runs again elsewhere), unable to scan
(the others finish the scan, the summary names it), or the client stopping the scan (every
worker stops; no thread, nft table or ring is left in the lab's namespaces).

Labs are small (/20 x 4 ports) so the file stays well inside the suite's time budget.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

import pyscan
from pyscan import firewall
from pyscan.lab import Lab

distributed = pytest.importorskip("distributed")

from pyscan.cluster import (  # noqa: E402 - needs distributed
    ClusterStatus,
    ClusterSummary,
    WorkerSettings,
    local_cluster,
    scan_on_cluster,
)

SUBNET = "198.19.0.0/20"
PORTS = (22, 80, 443, 8080)
PROBES = 4096 * len(PORTS)
OPEN_PAIRS = 400
SHARDS_PER_WORKER = 2


def _require_af_packet() -> None:
    from pyscan.drivers import DRIVERS

    ok, reason = DRIVERS["af-packet"].available()
    assert ok, f"af-packet must run on this machine: {reason}"


def _config(lab: Lab, rate: float, wait: float = 0.5, show_closed: bool = True
            ) -> pyscan.ScanConfig:
    return pyscan.ScanConfig.parse(
        [SUBNET], ports=",".join(map(str, PORTS)), rate=rate, driver="af-packet", wait=wait,
        show_closed=show_closed, netns=lab.scan_netns, seed=21)


@pytest.fixture
def truth_lab(lab_factory: Callable[..., Lab]) -> Lab:
    _require_af_packet()
    return lab_factory(subnet=SUBNET, ports=PORTS, open_count=OPEN_PAIRS, seed=31)


@pytest.fixture
def cluster_of() -> Iterator[Callable[..., tuple[object, object]]]:
    """``cluster_of(settings...) -> (cluster, client)``, both closed after the test."""
    made: list[tuple[object, object]] = []

    def make(*settings: WorkerSettings) -> tuple[object, object]:
        cluster = local_cluster(list(settings))
        client = distributed.Client(cluster)
        made.append((cluster, client))
        return cluster, client

    yield make
    for cluster, client in reversed(made):
        client.close()  # type: ignore[attr-defined]
        cluster.close()  # type: ignore[attr-defined]


def _scan(config: pyscan.ScanConfig, client: object,
          on_status: Callable[[ClusterStatus], None] | None = None,
          ) -> tuple[list[pyscan.Result], ClusterSummary]:
    # Two shards per worker: still more shards than workers, half the per-shard overhead.
    with scan_on_cluster(config, client, on_status=on_status,  # type: ignore[arg-type]
                         shards_per_worker=SHARDS_PER_WORKER) as run:
        results = list(run)
    assert run.summary is not None
    return results, run.summary


def _assert_exact(results: list[pyscan.Result], lab: Lab) -> None:
    pairs = Counter((r.ip, r.port) for r in results)
    assert max(pairs.values()) == 1                          # nothing written twice
    assert {pair for pair in pairs if _status(results, pair) == "open"} == lab.truth()
    assert len(pairs) == PROBES                                # every probe answered once


def _status(results: list[pyscan.Result], pair: tuple[IPv4Address, int]) -> str:
    return next(r.status for r in results if (r.ip, r.port) == pair)


def _threads_in(netns: str) -> list[str]:
    """Every thread of every process on the host whose network namespace is ``netns``."""
    inode = os.stat(f"/run/netns/{netns}").st_ino
    found = []
    for task in Path("/proc").glob("[0-9]*/task/[0-9]*"):
        try:
            if os.stat(task / "ns" / "net").st_ino == inode:
                found.append(str(task))
        except OSError:  # the thread ended while we looked
            continue
    return found


def _assert_nothing_left(lab: Lab) -> None:
    assert firewall.list_tables(netns=lab.scan_netns) == []
    assert _threads_in(lab.scan_netns) == []


@pytest.mark.parametrize("workers", [2, 3])
def test_local_cluster_union_is_the_truth_exactly_once(
        truth_lab: Lab, cluster_of: Callable[..., tuple[object, object]], workers: int) -> None:
    _cluster, client = cluster_of(*[WorkerSettings()] * workers)

    results, summary = _scan(_config(truth_lab, rate=40_000), client)

    _assert_exact(results, truth_lab)
    assert summary.sent == PROBES                   # each probe sent once, by one worker
    assert summary.open == OPEN_PAIRS and summary.closed == PROBES - OPEN_PAIRS
    assert summary.duplicates == 0 and summary.resent == [] and summary.failures == []
    assert not summary.interrupted
    assert summary.shards > workers                 # more shards than workers
    assert len(summary.workers) == workers
    assert all(row.shards >= 1 and row.driver == "af-packet" for row in summary.workers)
    assert sum(row.shards for row in summary.workers) == summary.shards
    assert sum(row.open for row in summary.workers) == OPEN_PAIRS
    _assert_nothing_left(truth_lab)


def test_sink_counts_exactly_the_probes_of_all_workers(
        lab_factory: Callable[..., Lab], cluster_of: Callable[..., tuple[object, object]]
        ) -> None:
    _require_af_packet()
    lab = lab_factory(subnet=SUBNET, ports=PORTS, sink=True)
    _cluster, client = cluster_of(WorkerSettings(), WorkerSettings())

    results, summary = _scan(_config(lab, rate=40_000, wait=0), client)

    assert results == []                            # the sink answers nothing
    assert summary.sent == PROBES
    assert lab.sink_count()["syns"] == PROBES       # what left the workers, exactly once
    assert sum(row.sent for row in summary.workers) == PROBES


def test_a_worker_killed_mid_scan_costs_nothing(
        truth_lab: Lab, cluster_of: Callable[..., tuple[object, object]]) -> None:
    cluster, client = cluster_of(*[WorkerSettings()] * 3)
    killed: list[str] = []

    def kill_one_sending(status: ClusterStatus) -> None:
        if killed:
            return
        # A worker whose shard is sending and has reported probes sent (its rate is > 0).
        sending = sorted(name for name, phase in status.phases.items()
                         if phase == "sending" and status.workers.get(name, 0.0) > 0)
        if sending:
            killed.append(sending[0])
            os.kill(cluster.workers[sending[0]].pid, signal.SIGKILL)  # type: ignore[attr-defined]

    # 3 workers share 6k pps: each of the 6 shards sends for ~1.4 s, then waits 1 s for
    # replies, so the worker is still inside its shard task when the kill lands.
    results, summary = _scan(_config(truth_lab, rate=6_000, wait=1.0), client,
                             on_status=kill_one_sending)

    assert killed, "no worker was seen sending"
    _assert_exact(results, truth_lab)
    assert summary.open == OPEN_PAIRS and summary.closed == PROBES - OPEN_PAIRS
    assert summary.sent == PROBES                   # completed shards: every probe once
    assert [resend.lost_on for resend in summary.resent] == killed
    assert summary.resent[0].probes_before > 0
    assert not summary.interrupted
    # SIGKILL leaves the killed shard's nft table behind, recorded as owned by a dead
    # process: exactly what `pyscan cleanup` (firewall.cleanup_stale) removes.
    assert len(firewall.cleanup_stale(truth_lab.scan_netns)) <= 1
    _assert_nothing_left(truth_lab)


def test_a_worker_that_cannot_scan_is_named_and_the_others_finish(
        truth_lab: Lab, cluster_of: Callable[..., tuple[object, object]]) -> None:
    _cluster, client = cluster_of(WorkerSettings(), WorkerSettings(),
                                  WorkerSettings(interface="nosuch0"))

    results, summary = _scan(_config(truth_lab, rate=40_000), client)

    _assert_exact(results, truth_lab)
    assert summary.sent == PROBES
    assert summary.failures, "the bad worker's failure must be reported"
    assert all(failure.startswith("worker pyscan-3: ") for failure in summary.failures)
    assert all("nosuch0" in failure for failure in summary.failures)
    bad = [row for row in summary.workers if row.name == "pyscan-3"]
    assert len(bad) == 1 and bad[0].shards == 0 and bad[0].failure is not None
    assert sum(row.shards for row in summary.workers) == summary.shards
    assert not summary.interrupted
    _assert_nothing_left(truth_lab)


def test_stop_ends_every_shard_and_leaves_nothing(
        truth_lab: Lab, cluster_of: Callable[..., tuple[object, object]]) -> None:
    _cluster, client = cluster_of(WorkerSettings(), WorkerSettings())
    config = _config(truth_lab, rate=2_000, wait=0.5)   # ~8 s of sending if left alone
    results: list[pyscan.Result] = []
    with scan_on_cluster(config, client) as run:  # type: ignore[arg-type]
        timer = threading.Timer(1.5, run.stop)
        timer.start()
        try:
            results = list(run)
        finally:
            timer.cancel()
    summary = run.summary
    assert summary is not None
    assert summary.interrupted
    assert 0 < summary.sent < PROBES
    pairs = Counter((r.ip, r.port) for r in results)
    assert not pairs or max(pairs.values()) == 1
    assert {p for p in pairs if _status(results, p) == "open"} <= truth_lab.truth()
    processing = client.processing()  # type: ignore[attr-defined]
    assert all(not keys for keys in processing.values())   # no shard task still running
    _assert_nothing_left(truth_lab)
