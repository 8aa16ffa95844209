"""A cluster scan of the lab's IPv6 prefix (issue 12) on a local Dask cluster of pyscan worker
processes: the union of the shards is the lab's IPv6 truth exactly, every pair once, and the
ICMPv6 destination unreachables travel back with their codes. No IPv4 target is scanned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pyscan
from pyscan import firewall
from pyscan.drivers import DRIVERS
from pyscan.lab import Lab

distributed = pytest.importorskip("distributed")

from pyscan.cluster import WorkerSettings, local_cluster, scan_on_cluster  # noqa: E402

SUBNET6 = "2001:2::/118"        # 1024 addresses
PORTS = (22, 80, 443)
PROBES = 1024 * len(PORTS)
OPEN6 = 300
UNREACHABLE6 = 40
VOLATILE = ("timestamp", "rtt_us", "tcpopt_ts_val", "tcpopt_ts_ecr")  # ndjson's names


@pytest.fixture
def client() -> Iterator[object]:
    with local_cluster([WorkerSettings(), WorkerSettings()]) as cluster, \
            distributed.Client(cluster) as connected:
        yield connected


def test_ipv6_union_is_the_truth_exactly_once(lab_factory: Callable[..., Lab],
                                              client: object) -> None:
    ok, reason = DRIVERS["af-packet"].available()
    assert ok, f"af-packet must run on this machine: {reason}"
    lab = lab_factory(subnet="198.19.0.0/28", ports=PORTS, subnet6=SUBNET6,
                      open_count6=OPEN6, unreachable_count6=UNREACHABLE6, seed=41)
    config = pyscan.ScanConfig.parse(
        [SUBNET6], ports=",".join(map(str, PORTS)), rate=20_000, driver="af-packet",
        wait=1.0, show_closed=True, show_unreachable=True, netns=lab.scan_netns, seed=9)

    with scan_on_cluster(config, client, shards_per_worker=2) as run:  # type: ignore[arg-type]
        results = list(run)
    summary = run.summary
    assert summary is not None

    pairs = Counter((r.ip, r.port) for r in results)
    assert max(pairs.values()) == 1                                # nothing written twice
    assert len(pairs) == PROBES                                    # every probe answered once
    assert all(r.ip.version == 6 for r in results)
    assert {(r.ip, r.port) for r in results if r.status == "open"} == lab.truth6()
    assert {(r.ip, r.port): r.icmp_code for r in results if r.status == "unreachable"} == \
        lab.unreachable_truth6()
    assert summary.sent == PROBES and summary.shards > 2
    assert summary.open == OPEN6 and summary.unreachable == UNREACHABLE6
    assert summary.closed == PROBES - OPEN6 - UNREACHABLE6
    assert summary.duplicates == 0 and summary.failures == [] and not summary.interrupted
    assert len(summary.workers) == 2 and all(row.shards >= 1 for row in summary.workers)
    assert firewall.list_tables(netns=lab.scan_netns) == []


def test_cli_cluster_ipv6_writes_what_a_single_host_scan_writes(
        lab_factory: Callable[..., Lab], tmp_path: Path) -> None:
    """`--cluster local:2` with IPv6 targets from the command line (refused before wire.py
    carried 16-byte addresses): the same records and the same summary counts as the scan
    without --cluster (closed too, which --show unreachable does not write)."""
    lab = lab_factory(subnet="198.19.0.0/28", ports=PORTS, subnet6="2001:2::/120",
                      open_count6=60, unreachable_count6=20, seed=42)
    outputs, summaries = [], []
    for extra in ((), ("--cluster", "local:2")):
        out = tmp_path / f"out{len(outputs)}.ndjson"
        done = subprocess.run(
            [sys.executable, "-m", "pyscan", "--netns", lab.scan_netns, "2001:2::/120", "-p",
             ",".join(map(str, PORTS)), "--rate", "20k", "--wait", "1", "--driver",
             "af-packet", "--seed", "3", "--show", "unreachable", "--format", "ndjson", "-o",
             str(out), "--json-summary", *extra],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": os.getcwd()})
        assert done.returncode == 0, done.stderr
        summaries.append(json.loads(done.stderr.strip().splitlines()[-1]))
        records = [json.loads(line) for line in out.read_text().splitlines()]
        outputs.append(sorted(json.dumps({k: v for k, v in r.items() if k not in VOLATILE},
                                         sort_keys=True) for r in records))
    alone, together = outputs
    assert together == alone
    statuses = Counter(json.loads(line)["status"] for line in together)
    assert statuses == {"open": 60, "unreachable": 20}
    counts = [{key: summary[key] for key in ("open", "closed", "unreachable")}
              for summary in summaries]
    assert counts[1] == counts[0] == {"open": 60, "closed": 256 * len(PORTS) - 80,
                                      "unreachable": 20}
    assert firewall.list_tables(netns=lab.scan_netns) == []


def test_ipv6_echo_scan_on_the_cluster_finds_exactly_the_echo_hosts(
        lab_factory: Callable[..., Lab], client: object) -> None:
    """icmp-echo6 shards: the probe module follows the targets' family on every worker."""
    lab = lab_factory(subnet="198.19.0.0/28", ports=PORTS, subnet6="2001:2::/120",
                      echo_hosts6=Lab.draw_echo_hosts6("2001:2::/120", 37, 8))
    config = pyscan.ScanConfig.parse(
        ["2001:2::/120"], ports="", probe="icmp-echo", rate=20_000, driver="af-packet",
        wait=1.0, netns=lab.scan_netns, seed=4)

    with scan_on_cluster(config, client) as run:  # type: ignore[arg-type]
        results = list(run)
    assert run.summary is not None

    assert Counter(r.ip for r in results).most_common(1)[0][1] == 1
    assert {r.ip for r in results if r.status == "up"} == lab.echo_truth6()
    assert len(lab.echo_truth6()) == 37 and run.summary.sent == 256
