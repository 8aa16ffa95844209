"""One scan on a local Dask cluster of pyscan worker processes, against the truth lab.

What must hold (issue 13): the union of the shards equals the lab's truth with nothing twice,
whatever happens to a worker - killed mid-scan (its shard runs again elsewhere), unable to scan
(the others finish the scan, the summary names it), or the client stopping the scan (every
worker stops; no thread, nft table or ring is left in the lab's namespaces).

Labs are small (/20 x 4 ports) so the file stays well inside the suite's time budget.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
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
    assert _open(results) == lab.truth()
    assert len(pairs) == PROBES                                # every probe answered once


def _open(results: list[pyscan.Result]) -> set[tuple[IPv4Address, int]]:
    return {(r.ip, r.port) for r in results if r.status == "open"}


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


def test_without_show_closed_the_summary_counts_closed_as_a_single_host_scan_does(
        truth_lab: Lab, cluster_of: Callable[..., tuple[object, object]]) -> None:
    """Closed replies are not shown, so none travel; the summary still counts every one the
    shards' engines saw, the number a single-host scan of the same lab reports."""
    config = _config(truth_lab, rate=40_000, show_closed=False)
    with pyscan.scan(config) as single:
        single_results = list(single)
    assert single.summary is not None
    _cluster, client = cluster_of(WorkerSettings(), WorkerSettings())

    results, summary = _scan(config, client)

    assert {r.status for r in results} == {"open"} and _open(results) == truth_lab.truth()
    assert summary.closed == single.summary.closed == PROBES - OPEN_PAIRS
    assert summary.open == single.summary.open == len(single_results) == OPEN_PAIRS
    assert summary.unreachable == single.summary.unreachable == 0
    assert not summary.interrupted


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
    assert _open(results) <= truth_lab.truth()
    processing = client.processing()  # type: ignore[attr-defined]
    assert all(not keys for keys in processing.values())   # no shard task still running
    _assert_nothing_left(truth_lab)


# -- the command line ---------------------------------------------------------------------------

def _pyscan(*args: str) -> list[str]:
    return [sys.executable, "-m", "pyscan", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.getcwd()}


def _wait_for_lines(path: Path, count: int, process: subprocess.Popen[str],
                    seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} did not reach {count} lines (exit {process.poll()})")


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _ndjson_pairs(path: Path) -> Counter[tuple[IPv4Address, int]]:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return Counter((IPv4Address(r["ip"]), int(r["port"])) for r in records)


def test_ctrl_c_on_the_client_stops_every_worker_and_leaves_nothing(
        truth_lab: Lab, tmp_path: Path) -> None:
    """Ctrl-C at a terminal reaches the whole foreground process group: the client and its
    local:2 workers. The client stops every shard, flushes, prints the summary, exits 130."""
    out = tmp_path / "out.ndjson"
    process = subprocess.Popen(
        _pyscan("--netns", truth_lab.scan_netns, SUBNET, "-p", ",".join(map(str, PORTS)),
                "--rate", "2k", "--wait", "0.5", "--driver", "af-packet", "--cluster",
                "local:2", "-oD", str(out)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
        start_new_session=True)   # its own process group, like a terminal's foreground job
    try:
        _wait_for_lines(out, 5, process)     # workers are scanning and results stream
        os.killpg(process.pid, signal.SIGINT)
        _stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "pyscan-1" in stderr and "pyscan-2" in stderr
    pairs = _ndjson_pairs(out)
    assert max(pairs.values()) == 1
    assert 5 <= len(pairs) < OPEN_PAIRS and set(pairs) <= truth_lab.truth()
    deadline = time.monotonic() + 10
    while not _group_gone(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _group_gone(process.pid), "a worker process outlived the client"
    _assert_nothing_left(truth_lab)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_pyscan_workers_serve_a_dask_scheduler(truth_lab: Lab, tmp_path: Path) -> None:
    """The deployment of docs/cluster.md by hand: `dask scheduler`, two `pyscan worker`s
    (one capped with --max-rate), the client with --cluster tcp://... and -oD."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    processes: list[subprocess.Popen[str]] = []

    def start(command: list[str]) -> subprocess.Popen[str]:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, text=True, env=_env(),
                                   start_new_session=True)
        processes.append(process)
        return process

    out = tmp_path / "out.ndjson"
    try:
        start([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
               "--port", address.rsplit(":", 1)[1], "--no-dashboard"])
        for name, extra in (("w1", []), ("w2", ["--max-rate", "5k"])):
            start(_pyscan("worker", address, "--netns", truth_lab.scan_netns, "--driver",
                          "af-packet", "--name", name, *extra))
        done = subprocess.run(
            _pyscan("--cluster", address, SUBNET, "-p", ",".join(map(str, PORTS)),
                    "--rate", "20k", "--wait", "0.5", "-oD", str(out), "--json-summary",
                    "--cluster-workers", "2"),
            capture_output=True, text=True, env=_env(), timeout=120)
    finally:
        for process in reversed(processes):
            process.terminate()        # SIGTERM: a worker closes and leaves the scheduler
        for process in reversed(processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert done.returncode == 0, done.stderr
    pairs = _ndjson_pairs(out)
    assert set(pairs) == truth_lab.truth() and max(pairs.values()) == 1
    summary = json.loads(done.stderr.strip().splitlines()[-1])
    assert summary["sent"] == PROBES and summary["open"] == OPEN_PAIRS
    rows = {row["name"]: row for row in summary["workers"]}
    assert set(rows) == {"w1", "w2"}
    assert rows["w2"]["rate"] == 5000           # its --max-rate
    assert rows["w1"]["rate"] == 15000          # the rest of the total 20k
    assert all(row["interface"] == truth_lab.scan_interface for row in rows.values())
    _assert_nothing_left(truth_lab)


# -- every kind of result: unreachables, UDP replies, echo replies ----------------------------

MIXED_SUBNET = "198.19.16.0/22"
MIXED_TCP = (22, 80)
MIXED_UDP = (53, 123)
# Differs between two scans of the same lab: when the reply came, and what is derived from the
# scanner's or the target's clock (TCP timestamps, round trip).
VOLATILE = ("timestamp", "rtt", "ts_val", "ts_ecr")
CLI_VOLATILE = ("timestamp", "rtt_us", "tcpopt_ts_val", "tcpopt_ts_ecr")  # ndjson's names


def _without_dns_id(record: dict[str, object]) -> dict[str, object]:
    """A DNS answer's first two bytes echo the query id, which is the probe's cookie: keyed
    per scan, so it differs between two scans (the rest of the reply does not)."""
    payload = record.get("payload")
    if record["port"] == 53 and isinstance(payload, str):
        record["payload"] = "----" + payload[4:]
    return record


@pytest.fixture
def mixed_lab(lab_factory: Callable[..., Lab]) -> Lab:
    """TCP open pairs and unreachable pairs (all four ICMP codes), UDP responders on a drawn
    set of pairs (ICMP port unreachable from the others), echo replies from a drawn set of
    addresses."""
    _require_af_packet()
    import random
    from ipaddress import IPv4Network

    rng = random.Random(41)
    addresses = list(IPv4Network(MIXED_SUBNET))
    return lab_factory(
        subnet=MIXED_SUBNET, ports=MIXED_TCP, open_count=120, unreachable_count=80, seed=41,
        udp_ports=MIXED_UDP, echo_hosts=set(rng.sample(addresses, 150)),
        udp_open=set(rng.sample([(a, p) for a in addresses for p in MIXED_UDP], 90)))


def _comparable(result: pyscan.Result) -> str:
    """Every field but the volatile ones, whose presence (None or not) still counts."""
    record = result.to_dict()
    for name in VOLATILE:
        record[name] = record[name] is None
    return json.dumps(_without_dns_id(record), sort_keys=True)


def _mixed_config(lab: Lab, **settings: object) -> pyscan.ScanConfig:
    return pyscan.ScanConfig.parse(
        [MIXED_SUBNET], ports="22,80,U:53,U:123", ping=True, rate=20_000,
        driver="af-packet", wait=1.0, netns=lab.scan_netns, seed=17, **settings)


def test_cluster_output_equals_a_single_host_scan_for_every_kind_of_result(
        mixed_lab: Lab, cluster_of: Callable[..., tuple[object, object]]) -> None:
    config = _mixed_config(mixed_lab, show_closed=True)  # closed and unreachable too
    with pyscan.scan(config) as run:
        alone = list(run)
    _cluster, client = cluster_of(WorkerSettings(), WorkerSettings())
    together, summary = _scan(config, client)

    assert mixed_lab.udp_drops() == 0   # a UDP miss below would be the scanner's, not the lab's
    assert sorted(map(_comparable, together)) == sorted(map(_comparable, alone))
    # ... and both are the lab's truth, status by status
    by = Counter((r.protocol, r.status) for r in together)
    addresses = 1024
    unreachable = mixed_lab.unreachable_truth()
    assert {(r.ip, r.port): (r.icmp_type, r.icmp_code) for r in together
            if r.status == "unreachable"} == {pair: (3, code) for pair, code in
                                               unreachable.items()}
    assert {(r.ip, r.port) for r in together
            if (r.protocol, r.status) == ("tcp", "open")} == mixed_lab.truth()
    assert {(r.ip, r.port) for r in together
            if (r.protocol, r.status) == ("udp", "open")} == mixed_lab.udp_truth()
    assert {r.ip for r in together if r.status == "up"} == mixed_lab.echo_truth()
    assert by == {
        ("tcp", "open"): len(mixed_lab.truth()), ("tcp", "unreachable"): len(unreachable),
        ("tcp", "closed"): addresses * 2 - len(mixed_lab.truth()) - len(unreachable),
        ("udp", "open"): len(mixed_lab.udp_truth()),
        ("udp", "closed"): addresses * 2 - len(mixed_lab.udp_truth()),
        ("icmp", "up"): len(mixed_lab.echo_truth())}
    assert all(r.payload for r in together if (r.protocol, r.status) == ("udp", "open"))
    assert all(r.window is not None for r in together if r.protocol == "tcp"
               and r.status != "unreachable")
    assert (summary.open, summary.closed, summary.unreachable, summary.duplicates) == (
        by["tcp", "open"] + by["udp", "open"] + by["icmp", "up"],
        by["tcp", "closed"] + by["udp", "closed"], len(unreachable), 0)
    _assert_nothing_left(mixed_lab)


def test_cli_cluster_show_unreachable_writes_what_a_single_host_scan_writes(
        mixed_lab: Lab, tmp_path: Path) -> None:
    """--show unreachable with --cluster (refused before the batches carried the status)."""
    outputs = []
    for extra in ((), ("--cluster", "local:2")):
        out = tmp_path / f"out{len(outputs)}.ndjson"
        done = subprocess.run(
            _pyscan("--netns", mixed_lab.scan_netns, MIXED_SUBNET, "-p", "22,80,U:53",
                    "--ping", "--rate", "20k", "--wait", "1", "--driver", "af-packet",
                    "--seed", "3", "--show", "unreachable", "--format", "ndjson", "-o",
                    str(out), *extra),
            capture_output=True, text=True, env=_env(), timeout=120)
        assert done.returncode == 0, done.stderr
        records = [json.loads(line) for line in out.read_text().splitlines()]
        outputs.append(sorted(json.dumps(_without_dns_id(
            {k: v for k, v in r.items() if k not in CLI_VOLATILE}), sort_keys=True)
            for r in records))
    alone, together = outputs
    assert together == alone
    statuses = Counter(json.loads(line)["status"] for line in together)
    assert statuses["unreachable"] == len(mixed_lab.unreachable_truth())
    assert set(statuses) == {"open", "up", "unreachable"}
    _assert_nothing_left(mixed_lab)
