"""The command line through typer's CliRunner: routing, masscan spellings, errors, -sL, and
(once the engine and null driver are built) a whole dry-run scan."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from pyscan.cli import app, rewrite_argv
from pyscan.config import ConfigError

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_help_lists_subcommands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("scan", "drivers", "cleanup", "lab"):
        assert command in result.output


def test_positional_targets_route_to_scan_help() -> None:
    result = invoke("scan", "--help")
    assert result.exit_code == 0
    assert "--ports" in result.output


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-oL", "f.txt"], ["--output", "f.txt", "--format", "list"]),
        (["-oJ=f.json"], ["--output", "f.json", "--format", "json"]),
        (["-oD", "f"], ["--output", "f", "--format", "ndjson"]),
        (["-oG", "f"], ["--output", "f", "--format", "grepable"]),
        (["-sL"], ["--list-targets"]),
        (["-iL", "t.txt"], ["--include-file", "t.txt"]),
        (["--excludefile", "x"], ["--exclude-file", "x"]),
        (["--max-rate=5k"], ["--rate=5k"]),
        (["--show", "closed"], ["--show-closed"]),
        (["--show=open"], []),
        (["--open"], ["--open-only"]),
        (["198.19.0.1", "--", "-oL"], ["198.19.0.1", "--", "-oL"]),
    ],
)
def test_masscan_spellings(argv: list[str], expected: list[str]) -> None:
    assert rewrite_argv(argv) == expected


@pytest.mark.parametrize(
    ("argv", "named"),
    [(["-oX", "f"], "-oX"), (["-oL"], "-oL"), (["--show", "filtered"], "filtered")],
)
def test_bad_masscan_spellings(argv: list[str], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        rewrite_argv(argv)


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pyscan: error: ")
    assert "accepted" in lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["198.19.0.0/24", "-p", "65536", "--dry-run"], "65536"),
        (["198.19.0.0/24", "-p", "90-80", "--dry-run"], "90-80"),
        (["198.19.0.0/33", "-p", "80", "--dry-run"], "33"),
        (["198.19.0.0/24", "-p", "80", "--rate", "fast", "--dry-run"], "fast"),
        (["198.19.0.0/24", "-p", "80", "--rate", "0", "--dry-run"], "'0'"),
        (["198.19.0.0/24", "-p", "80", "--shard", "3/2", "--dry-run"], "3/2"),
        (["198.19.0.0/24", "-p", "80", "--seed", "x", "--dry-run"], "'x'"),
        (["198.19.0.0/24", "-p", "80", "--ttl", "300", "--dry-run"], "300"),
        (["198.19.0.0/24", "-p", "80", "--tx-threads", "0", "--dry-run"], "'0'"),
        (["198.19.0.0/24", "-p", "80", "--format", "xml", "--dry-run"], "xml"),
        (["198.19.0.0/24", "-p", "80", "--driver", "dpdk"], "dpdk"),
        (["198.19.0.0/24", "-p", "80", "--exclude", "198.19.0.0/23", "--dry-run"], "excludes"),
        (["198.19.0.0/24", "--dry-run"], "no ports"),
        (["-p", "80", "--dry-run"], "no targets"),
        (["198.19.0.0/24", "-p", "80", "--bogus"], "--bogus"),
        (["198.19.0.0/24", "-p", "80", "-oX", "out.xml"], "-oX"),
        (["198.19.0.0/24", "-p", "80", "--dry-run", "-o", "/nonexistent-dir/x"], "nonexistent"),
        (["198.19.0.0/24", "-p", "80", "--dry-run", "--driver", "af-packet"], "af-packet"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], named: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert named in one_error_line(result)
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing created


def list_targets(*args: str) -> list[str]:
    result = invoke(*args, "-sL")
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_list_targets_prints_every_pair_once() -> None:
    lines = list_targets("198.19.0.0/28", "198.19.1.7", "-p", "22,80-81", "--seed", "9")
    expected = {f"198.19.0.{host}:{port}" for host in range(16) for port in (22, 80, 81)}
    expected |= {f"198.19.1.7:{port}" for port in (22, 80, 81)}
    assert len(lines) == len(expected)
    assert set(lines) == expected
    assert lines != sorted(lines)  # permuted, not in address order


def test_list_targets_single_port_prints_addresses_only() -> None:
    lines = list_targets("198.19.0.0/29", "-p", "80", "--exclude", "198.19.0.3")
    assert sorted(lines) == sorted(f"198.19.0.{h}" for h in range(8) if h != 3)


def test_list_targets_seed_decides_the_order() -> None:
    args = ("198.19.0.0/24", "-p", "80,443")
    assert list_targets(*args, "--seed", "1") == list_targets(*args, "--seed", "1")
    assert list_targets(*args, "--seed", "1") != list_targets(*args, "--seed", "2")


def test_list_targets_shards_are_disjoint_and_complete() -> None:
    args = ("198.19.0.0/26", "-p", "1-3", "--seed", "77")
    whole = list_targets(*args)
    shards = [list_targets(*args, "--shard", f"{i}/3") for i in (1, 2, 3)]
    assert sum(len(s) for s in shards) == len(whole) == 64 * 3
    assert set().union(*map(set, shards)) == set(whole)
    # masscan's interleaving: shard i takes every third index starting at i-1
    for index, shard in enumerate(shards):
        assert shard == whole[index::3]


def test_include_file(tmp_path) -> None:
    path = tmp_path / "targets.txt"
    path.write_text("198.19.0.1\n# comment\n198.19.0.2-198.19.0.3\n")
    lines = list_targets("-iL", str(path), "-p", "80")
    assert sorted(lines) == ["198.19.0.1", "198.19.0.2", "198.19.0.3"]

