"""`pyscan worker` and `pyscan --cluster` at the command line: bad input is one line, exit 2,
before any process starts; a dry run through local:2 covers every probe exactly once."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pyscan.cli import app

pytest.importorskip("distributed")

runner = CliRunner()


def _one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pyscan: error: ") and "accepted" in lines[0]
    return lines[0]


@pytest.mark.parametrize(("args", "named"), [
    (["198.19.0.0/24", "-p", "80", "--dry-run", "--cluster", "sched:8786"], "sched:8786"),
    (["198.19.0.0/24", "-p", "80", "--dry-run", "--cluster", "local:0"], "local:0"),
    (["198.19.0.0/24", "-p", "80", "--dry-run", "--cluster", "local:x"], "local:x"),
    (["198.19.0.0/24", "-p", "80", "--dry-run", "--cluster", "local:2", "--shard", "1/2"],
     "--shard 1/2"),
    (["198.19.0.0/24", "-p", "80", "--dry-run", "--cluster", "tls://127.0.0.1:1"],
     "TLS client settings"),
    (["198.19.0.0/24", "-p", "80", "--dry-run", "--cluster", "local:2",
      "--cluster-workers", "0"], "'0'"),
    (["198.19.0.0/24", "-p", "80", "--dry-run", "--cluster", "local:2", "--pcap", "x.pcap"],
     "--pcap with --cluster"),
    (["worker", "local:2"], "local:2"),
    (["worker", "sched"], "sched"),
    (["worker", "tcp://127.0.0.1:8786", "--max-rate", "fast"], "fast"),
    (["worker", "tcp://127.0.0.1:8786", "--driver", "dpdk"], "dpdk"),
    (["worker", "tcp://127.0.0.1:8786", "--interface", "x" * 16], "x" * 16),
    (["worker", "tcp://127.0.0.1:8786", "--tls-cert", "c.pem"], "--tls-ca-file"),
])
def test_bad_cluster_input_is_one_line_exit_2(args: list[str], named: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert named in _one_error_line(result)


def test_worker_help_names_its_options() -> None:
    result = runner.invoke(app, ["worker", "--help"])
    assert result.exit_code == 0
    for option in ("--interface", "--driver", "--source-ip", "--netns", "--max-rate",
                   "--tls-ca-file"):
        assert option in result.output


def test_dry_run_on_a_local_cluster_covers_every_probe_once() -> None:
    result = runner.invoke(app, ["198.19.0.0/22", "-p", "80,443", "--dry-run", "--rate", "max",
                                 "--cluster", "local:2", "--json-summary", "--seed", "9"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stderr.strip().splitlines()[-1])
    assert summary["probes"] == summary["sent"] == 1024 * 2
    assert summary["seed"] == 9 and not summary["interrupted"]
    assert len(summary["workers"]) == 2
    assert sum(row["shards"] for row in summary["workers"]) == summary["shards"] >= 2
    assert all(row["driver"] == "null" for row in summary["workers"])
