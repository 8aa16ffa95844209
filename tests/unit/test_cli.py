"""The command line through typer's CliRunner: routing, masscan spellings, errors, -sL, and
(once the engine and null driver are built) a whole dry-run scan."""

from __future__ import annotations

import json
import re
from pathlib import Path

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
        # A masscan spelling means masscan's file; --format keeps pyscan's clean schemas.
        (["-oL", "f.txt"], ["--output", "f.txt", "--format", "masscan-list"]),
        (["-oJ=f.json"], ["--output", "f.json", "--format", "masscan-json"]),
        (["-oD", "f"], ["--output", "f", "--format", "masscan-ndjson"]),
        (["-oG", "f"], ["--output", "f", "--format", "masscan-grepable"]),
        (["-oX", "f"], ["--output", "f", "--format", "masscan-xml"]),
        (["-oL", "-"], ["--output", "-", "--format", "masscan-list"]),
        # zmap's -O csv|json is its output module; -O KEY=VALUE stays a driver option.
        (["-O", "csv"], ["--format", "zmap-csv"]),
        (["-O=json"], ["--format", "zmap-json"]),
        (["--output-module", "csv"], ["--format", "zmap-csv"]),
        (["-O", "tx_frames=64"], ["-O", "tx_frames=64"]),
        (["-p-"], ["-p", "1-65535"]),
        (["-sL"], ["--list-targets"]),
        (["-iL", "t.txt"], ["--include-file", "t.txt"]),
        (["--excludefile", "x"], ["--exclude-file", "x"]),
        (["--blacklist-file", "b"], ["--blocklist-file", "b"]),
        (["--whitelist-file=w"], ["--allowlist-file=w"]),
        (["--max-rate=5k"], ["--rate=5k"]),
        (["--show", "closed"], ["--show-closed"]),
        (["--show", "unreachable"], ["--show-unreachable"]),
        (["--show=closed,unreachable"], ["--show-closed", "--show-unreachable"]),
        (["--show", "open,closed,closed"], ["--show-closed"]),
        (["--noshow", "closed"], ["--open-only"]),
        (["--show=open"], []),
        (["--open"], ["--open-only"]),
        (["198.19.0.1", "--", "-oL"], ["198.19.0.1", "--", "-oL"]),
    ],
)
def test_masscan_spellings(argv: list[str], expected: list[str]) -> None:
    assert rewrite_argv(argv) == expected


@pytest.mark.parametrize(
    ("argv", "named"),
    [(["-oB", "f"], "-oB is not supported yet"), (["-oL"], "-oL"),
     (["--show", "filtered"], "filtered"),
     (["--show", "closed,filtered"], "'filtered' (accepted: open, closed, unreachable"),
     (["--noshow", "unreachable"], "'unreachable' (accepted: open, closed,")],
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
        (["198.19.0.0/24", "-p", "80", "-oB", "out.bin"], "-oB"),
        (["198.19.0.0/24", "-p", "80", "--dry-run", "-f", "saddr"], "--output-fields"),
        (["198.19.0.0/24", "-p", "80", "--dry-run", "-O", "csv", "-f", "ipid"], "ipid"),
        (["198.19.0.0/24", "-p", "80", "--dry-run", "-O", "json", "--output-filter",
          "bogus = 1"], "bogus"),
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



def test_allowlist_without_targets_is_the_target_list(tmp_path) -> None:
    allowlist = tmp_path / "allow.txt"
    allowlist.write_text("198.19.0.0/30  # lab\n")
    result = invoke("-w", str(allowlist), "-p", "80", "-sL")
    assert result.exit_code == 0, result.output
    assert sorted(result.stdout.splitlines()) == [f"198.19.0.{h}" for h in range(4)]
    allowlist.write_text("198.19.0.0/30  # lab\n2001:2::/48  # and IPv6\n")
    mixed = invoke("-w", str(allowlist), "-p", "80", "-sL")
    assert mixed.exit_code == 2
    assert "mix IPv4 (198.19.0.0) and IPv6 (2001:2::)" in one_error_line(mixed)


@pytest.mark.parametrize("flag", ["-b", "--blocklist-file", "--blacklist-file", "--excludefile"])
def test_blocklist_files_subtract(tmp_path, flag: str) -> None:
    blocklist = tmp_path / "block.txt"
    blocklist.write_text("198.19.0.1\n198.19.0.2  # and IPv6:\nfe80::/10\n")
    lines = list_targets("198.19.0.0/29", "-p", "80", flag, str(blocklist))
    assert sorted(lines) == sorted(f"198.19.0.{h}" for h in range(8) if h not in (1, 2))


def test_a_target_file_mixing_families_is_refused(tmp_path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("198.19.0.0/30\n2001:2::1\n")
    result = invoke("-iL", str(targets), "-p", "80", "-sL")
    assert result.exit_code == 2
    assert "mix IPv4 (198.19.0.0) and IPv6 (2001:2::1)" in one_error_line(result)


def test_broad_target_beside_reserved_space_exits_2_when_nothing_is_left() -> None:
    result = invoke("224.0.0.0/3", "-p", "80", "--dry-run")
    assert result.exit_code == 2
    assert "--no-default-blocklist" in one_error_line(result)


# --- whole dry-run scans (null driver: no root, nothing sent) ---------------------------------

native = pytest.importorskip("pyscan.native", reason="native extension not built")


def test_dry_run_summary_counts_every_probe() -> None:
    result = invoke("198.19.0.0/24", "198.19.1.1-198.19.1.10", "-p", "22,80,443", "--dry-run",
                    "--json-summary", "--seed", "99")
    assert result.exit_code == 0, result.output
    assert result.stdout == "#masscan\n# end\n"
    summary = json.loads(result.stderr.strip().splitlines()[-1])
    assert summary["sent"] == summary["probes"] == (256 + 10) * 3
    assert summary["targets"] == 266
    assert summary["seed"] == 99
    assert summary["driver"] == "null"
    assert summary["interrupted"] is False


def test_dry_run_sharded_and_threaded() -> None:
    total = 0
    for index in (1, 2):
        result = invoke("198.19.0.0/25", "-p", "1-5", "--dry-run", "--json-summary",
                        "--shard", f"{index}/2", "--tx-threads", "2", "--seed", "4")
        assert result.exit_code == 0, result.output
        total += json.loads(result.stderr.strip().splitlines()[-1])["sent"]
    assert total == 128 * 5


def test_dry_run_human_summary_and_quiet() -> None:
    result = invoke("198.19.0.0/30", "-p", "80", "--dry-run", "--seed", "5")
    assert result.exit_code == 0
    assert "sent       4 of 4 probes" in result.stderr
    assert "--seed 5" in result.stderr
    quiet = invoke("198.19.0.0/30", "-p", "80", "--dry-run", "-q")
    assert quiet.exit_code == 0
    assert quiet.stderr == ""


@pytest.mark.parametrize(("flag", "check"), [
    # masscan's files: masscan leaves -oL/-oD/-oG empty for an empty scan; -oJ and -oX stay
    # complete documents, where masscan's are broken.
    ("-oJ", lambda text: json.loads(text) == []),
    ("-oD", lambda text: text == ""),
    ("-oL", lambda text: text == ""),
    ("-oG", lambda text: text == ""),
    ("-oX", lambda text: text.startswith('<?xml version="1.0"?>') and text.endswith(
        "</nmaprun>\r\n")),
    # pyscan's clean schemas.
    ("--format=list", lambda text: text == "#masscan\n# end\n"),
    ("--format=grepable", lambda text: text.startswith("# pyscan scan initiated")),
    ("--format=json", lambda text: json.loads(text) == []),
])
def test_dry_run_output_files(tmp_path, flag: str, check) -> None:
    path = tmp_path / "out"
    args = [flag, "-o", str(path)] if flag.startswith("--format") else [flag, str(path)]
    result = invoke("198.19.0.0/30", "-p", "80", "--dry-run", "-q", *args)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert check(path.read_bytes().decode())  # bytes: -oX ends lines with CRLF


def test_missing_capability_exit_77_and_nothing_created(monkeypatch, tmp_path) -> None:
    import pyscan.privileges

    monkeypatch.setattr(pyscan.privileges, "effective_capabilities", lambda *args: 0)
    out = tmp_path / "out.txt"
    result = invoke("198.19.0.0/30", "-p", "80", "--driver", "af-packet", "-o", str(out))
    assert result.exit_code == 77
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("pyscan: error: missing capability CAP_NET_RAW")
    assert "sudo" in line
    assert not out.exists()


def test_drivers_table() -> None:
    result = invoke("drivers")
    assert result.exit_code == 0
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:]}
    assert rows["null"] == "yes"
    assert "af-packet" in rows


def test_ctrl_c_stops_flushes_summarizes_and_exits_130(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import signal
    import threading

    monkeypatch.chdir(tmp_path)  # the stop leaves paused.json in the working directory

    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        result = invoke("198.18.0.0/16", "-p", "80", "--dry-run", "--rate", "1000",
                        "--json-summary")
    finally:
        timer.join()
    assert result.exit_code == 130, result.output
    assert result.stdout == "#masscan\n# end\n"  # output completed, trailer written
    summary = json.loads(result.stderr.strip().splitlines()[-1])
    assert summary["interrupted"] is True
    assert 0 < summary["sent"] < summary["probes"] == 65536
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    assert json.loads((tmp_path / "paused.json").read_text())["reason"] == "interrupted"


def test_lab_subcommands_route() -> None:
    result = invoke("lab", "--help")
    assert result.exit_code == 0
    for command in ("up", "down", "status"):
        assert command in result.stdout


def test_cli_modules_only_parse() -> None:
    """The cli package turns arguments into library calls; packet, netlink and native code
    live elsewhere (checked on the source of every module in it, so a lazy import inside a
    function counts too)."""
    import ast
    from pathlib import Path

    import pyscan.cli

    sources = sorted(Path(pyscan.cli.__file__).parent.glob("*.py"))
    assert {"app.py", "argv.py", "scan.py", "lab.py", "bench.py"} <= {p.name for p in sources}
    imported: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
    forbidden = {"socket", "cffi", "pyroute2", "pyscan.native", "pyscan._native", "ctypes"}
    assert not {name for name in imported if name.split(".")[0] in forbidden or name in forbidden}


def test_no_arguments_prints_help_without_an_error_line() -> None:
    result = invoke()
    assert result.exit_code == 2
    assert "pyscan: error" not in result.output
    assert "Commands" in result.output or "scan" in result.output


def test_version() -> None:
    import pyscan

    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"pyscan {pyscan.__version__}\n"


@pytest.mark.parametrize("args", [["lab", "up", "--name", "h3never"], ["lab", "down"],
                                  ["lab", "status", "--name", "h3never"]])
def test_lab_without_privileges_exits_77(monkeypatch, args: list[str]) -> None:
    import pyscan.privileges

    monkeypatch.setattr(pyscan.privileges, "effective_capabilities", lambda *a: 0)
    result = invoke(*args)
    assert result.exit_code == 77
    assert "CAP_SYS_ADMIN" in one_error_line_any(result)


def one_error_line_any(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyscan: error: missing capability")
    return lines[0]


def test_lab_bad_ports_exit_2() -> None:
    result = invoke("lab", "up", "--ports", "80,99999")
    assert result.exit_code == 2
    assert "99999" in one_error_line(result)


def test_results_reach_every_output_format(monkeypatch, tmp_path) -> None:
    """The CLI end to end with replies: the reflecting driver of test_scanner answers the
    null driver's probes, so results flow through the engine into the chosen writer."""
    from pyscan import ScanConfig, list_targets
    from pyscan.drivers import DRIVERS
    from tests.unit.test_scanner import ReflectingDriver

    targets, ports = "198.19.0.0/28", "22,80"
    config = ScanConfig.parse([targets], ports=ports, seed=1)
    pairs = sorted((str(ip), port) for ip, port in list_targets(config))
    open_pairs = set(pairs[::3])
    from xml.etree import ElementTree

    def xml_pairs(text: str) -> set[tuple[str, int]]:
        hosts = ElementTree.fromstring(text).iter("host")
        return {(h.find("address").get("addr"), int(h.find("ports/port").get("portid")))  # type: ignore[union-attr, arg-type]
                for h in hosts}

    for flag, parse in (("-oJ", lambda text: {(r["ip"], r["ports"][0]["port"])
                                               for r in json.loads(text)}),
                        ("-oD", lambda text: {(json.loads(line)["ip"], json.loads(line)["port"])
                                              for line in text.splitlines()}),
                        ("-oL", lambda text: {(line.split()[3], int(line.split()[2]))
                                              for line in text.splitlines()
                                              if line.startswith("open ")}),
                        ("-oX", xml_pairs),
                        ("-O csv -f saddr,sport,success --output-filter success=1 -o",
                         lambda text: {(row.split(",")[0], int(row.split(",")[1]))
                                       for row in text.splitlines()[1:]}),
                        ("--format ndjson -o", lambda text: {
                            (json.loads(line)["ip"], json.loads(line)["port"])
                            for line in text.splitlines()})):
        monkeypatch.setitem(DRIVERS, "null", ReflectingDriver(len(pairs), open_pairs, set()))
        path = tmp_path / f"out{flag.split()[0]}"
        # The wait only has to outlast a few thousand in-process injections.
        result = invoke(targets, "-p", ports, "--dry-run", "--wait", "3", "-q", "--json-summary",
                        *flag.split(), str(path))
        assert result.exit_code == 0, result.output
        assert parse(path.read_text()) == open_pairs
        summary = json.loads(result.stderr.strip().splitlines()[-1])
        assert summary["open"] == len(open_pairs)
        assert summary["duplicates"] == summary["invalid_cookies"] == len(open_pairs)


def test_dry_run_straddling_target_leaves_out_the_row_and_says_so() -> None:
    """198.16.0.0/12 holds 198.18.0.0/15 (benchmarking): a broad target, so the row goes."""
    result = invoke("198.16.0.0/12", "-p", "80", "--dry-run", "--rate", "max", "--seed", "3",
                    "--json-summary")
    assert result.exit_code == 0, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[1] == ("pyscan: left out 131,072 addresses in reserved and special-purpose "
                        "space (198.18.0.0/15 Benchmarking); --no-default-blocklist scans them")
    assert json.loads(lines[-1])["sent"] == 2**20 - 2**17
    off = invoke("198.16.0.0/12", "-p", "80", "--dry-run", "--rate", "max",
                 "--no-default-blocklist", "--json-summary")
    assert off.exit_code == 0, off.output
    assert "left out" not in off.stderr
    assert json.loads(off.stderr.strip().splitlines()[-1])["sent"] == 2**20
