"""A masscan spelling means masscan 1.3.2's bytes, checked live: masscan and pyscan scan the
same lab, and every output file pyscan writes has the structure of the one masscan wrote,
field by field, with the same records (timestamps aside). zmap's csv output and default
output likewise against zmap. masscan and zmap run only inside the lab's scan namespace,
against the lab's 198.19.x.x addresses (checked with masscan --echo first), as the bench
runs them; masscan is ended by one datagram to its address after the scan (its receive
thread notices the end only when a packet arrives), so its files are complete."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

import pyscan
from bench.contenders import check_lab_targets, masscan_echo_ranges
from pyscan import netlink
from pyscan.lab import SCAN_ADDRESS, Lab
from pyscan.output import open_writer

SUBNET = "198.19.0.0/29"
PORTS = (22, 80)
LETTERS = ("L", "J", "D", "G", "X")
WRITER = {"L": "masscan-list", "J": "masscan-json", "D": "masscan-ndjson",
          "G": "masscan-grepable", "X": "masscan-xml"}


def _need(program: str) -> None:
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed (make test installs it)")


def _nudge_until_exit(lab: Lab, process: subprocess.Popen[str], timeout: float = 60) -> None:
    """One datagram to the scanner's address every half second until masscan exits."""
    deadline = time.monotonic() + timeout
    with netlink.in_netns(lab.target_netns), \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                pytest.fail("masscan did not exit after the scan")
            sock.sendto(b"end", (str(SCAN_ADDRESS.ip), 9))
            time.sleep(0.5)
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""


def masscan_argv(lab: Lab) -> list[str]:
    """The one command line both masscan and `pyscan masscan` run (without -o)."""
    gateway_mac = netlink.link_mac(lab.target_interface, lab.target_netns)
    return [SUBNET, "-p", ",".join(map(str, PORTS)), "--rate", "1000", "--wait", "1",
            "--show", "closed", "--adapter", lab.scan_interface,
            "--adapter-ip", str(SCAN_ADDRESS.ip), "--router-mac", gateway_mac]


def run_masscan(lab: Lab, workdir: Path, letter: str) -> Path:
    """masscan -o<letter> over the lab, --show closed, in the scan namespace."""
    argv = ["masscan", *masscan_argv(lab)]
    exec_argv = ["ip", "netns", "exec", lab.scan_netns]
    # cwd: masscan writes paused.conf into its working directory if it is ever stopped.
    echo = subprocess.run([*exec_argv, *argv, "--echo"], capture_output=True, text=True,
                          check=True, cwd=workdir)
    ranges = masscan_echo_ranges(echo.stdout)
    assert ranges == [SUBNET]
    check_lab_targets(ranges)
    path = workdir / f"masscan.o{letter}"
    process = subprocess.Popen([*exec_argv, *argv, f"-o{letter}", str(path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               cwd=workdir)
    _nudge_until_exit(lab, process)
    return path


def run_pyscan_cli(lab: Lab, workdir: Path, letter: str) -> Path:
    """`pyscan masscan` with masscan's own command line (and --netns for the lab)."""
    path = workdir / f"pyscan-cli.o{letter}"
    done = subprocess.run([sys.executable, "-m", "pyscan", "masscan", *masscan_argv(lab),
                           f"-o{letter}", str(path), "--netns", lab.scan_netns],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return path


def run_pyscan(lab: Lab, workdir: Path) -> dict[str, Path]:
    """One pyscan scan of the same lab through the API, written in every masscan format."""
    config = pyscan.ScanConfig.parse([SUBNET], ports=",".join(map(str, PORTS)), rate=1000,
                                     wait=1, show_closed=True, netns=lab.scan_netns)
    paths = {letter: workdir / f"pyscan.o{letter}" for letter in LETTERS}
    started = time.time()
    writers = [open_writer(paths[letter], WRITER[letter], started=started, ports=PORTS)
               for letter in LETTERS]
    with pyscan.scan(config) as run:
        for result in run:
            for writer in writers:
                writer.write(result)
    for writer in writers:
        writer.close()
    return paths


def _shape(value: Any) -> Any:
    """The structure of a JSON value: keys and types, not the values."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def _records_od(path: Path) -> tuple[list[Any], set[tuple[Any, ...]]]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return ([_shape(r) for r in records],
            {(r["ip"], r["port"], r["data"]["status"], r["data"]["reason"], r["data"]["ttl"])
             for r in records})


def _records_oj(path: Path) -> tuple[list[Any], set[tuple[Any, ...]]]:
    items = json.loads(path.read_text())
    return ([_shape(item) for item in items],
            {(i["ip"], p["port"], p["status"], p["reason"], p["ttl"])
             for i in items for p in i["ports"]})


def _records_ol(path: Path) -> tuple[list[str], set[tuple[str, ...]]]:
    lines = path.read_text().splitlines()
    frame = [line for line in lines if line.startswith("#")]
    return frame, {tuple(line.split()[:4]) for line in lines if not line.startswith("#")}


def _records_og(path: Path) -> tuple[list[str], set[str]]:
    lines = path.read_text().splitlines()
    frame = [re.sub(r"(initiated|done at) .*", r"\1 T", line) for line in lines
             if line.startswith("#")]
    return frame, {line.split("\t", 1)[1] for line in lines if not line.startswith("#")}


def _records_ox(path: Path) -> tuple[list[Any], set[tuple[str, ...]]]:
    root = ElementTree.fromstring(path.read_text())
    structure: list[Any] = [root.tag, sorted(root.attrib)]
    records = set()
    for element in root:
        if element.tag == "host":
            children = [(child.tag, sorted(child.attrib)) for child in element.iter()
                        if child.tag != "status"]
            structure.append(children)
            state = element.find("ports/port/state")
            address = element.find("address")
            port = element.find("ports/port")
            assert state is not None and address is not None and port is not None
            records.add((address.get("addr", ""), port.get("portid", ""),
                         state.get("state", ""), state.get("reason", ""),
                         state.get("reason_ttl", "")))
        else:
            structure.append([(child.tag, sorted(child.attrib)) for child in element.iter()])
    return sorted(structure, key=str), records


READERS: dict[str, Callable[[Path], tuple[Any, set[Any]]]] = {
    "L": _records_ol, "J": _records_oj, "D": _records_od, "G": _records_og, "X": _records_ox}


def test_masscan_spellings_match_masscan_field_by_field(lab_factory: Callable[..., Lab],
                                                        tmp_path: Path) -> None:
    _need("masscan")
    lab = lab_factory(subnet=SUBNET, ports=PORTS, open_count=5, seed=7)
    api = run_pyscan(lab, tmp_path)
    for letter in LETTERS:
        theirs = run_masscan(lab, tmp_path, letter)
        cli = run_pyscan_cli(lab, tmp_path, letter)
        for ours in (api[letter], cli):
            _compare(letter, theirs, ours)
    # python-libnmap reads pyscan's -oX completely, masscan's without is_up().
    parser = pytest.importorskip("libnmap.parser")
    for path in (api["X"], tmp_path / "pyscan-cli.oX"):
        report = parser.NmapParser.parse_fromfile(str(path))
        assert len(report.hosts) == 16 and all(host.is_up() for host in report.hosts)
    masscan_report = parser.NmapParser.parse_fromfile(str(tmp_path / "masscan.oX"))
    with pytest.raises(KeyError):
        masscan_report.hosts[0].is_up()


def _compare(letter: str, theirs: Path, ours: Path) -> None:
    """Same records, same structure (masscan's file vs pyscan's) for -o<letter>."""
    their_shape, their_records = READERS[letter](theirs)
    our_shape, our_records = READERS[letter](ours)
    assert len(their_records) == 8 * len(PORTS), letter  # every pair answers
    assert our_records == their_records, letter
    if letter == "X":
        # Ours adds nmap's <status> per host (stripped above) and counts hosts nmap's way.
        their_shape = [s for s in their_shape if not (isinstance(s, list) and s
                                                      and s[0][0] == "runstats")]
        our_shape = [s for s in our_shape if not (isinstance(s, list) and s
                                                  and s[0][0] == "runstats")]
    if letter in ("J", "D"):
        assert set(map(json.dumps, our_shape)) == set(map(json.dumps, their_shape)), letter
    else:
        assert our_shape == their_shape, letter


def zmap_argv(lab: Lab, workdir: Path) -> list[str]:
    """The command line both zmap and `pyscan zmap` run; empty config and blocklist files, so
    the system's /etc/zmap/zmap.conf and its blocklist are not read."""
    empty = workdir / "zmap-empty.conf"
    empty.write_text("")
    check_lab_targets([SUBNET])
    gateway_mac = netlink.link_mac(lab.target_interface, lab.target_netns)
    return ["-C", str(empty), "-b", str(empty), "-p", "80", "-i", lab.scan_interface,
            "-S", str(SCAN_ADDRESS.ip), "-G", gateway_mac, "-c", "1", "-r", "1000", "-q"]


def run_zmap(lab: Lab, workdir: Path, *args: str) -> str:
    done = subprocess.run(["ip", "netns", "exec", lab.scan_netns, "zmap",
                           *zmap_argv(lab, workdir), *args, SUBNET],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def run_pyscan_zmap(lab: Lab, workdir: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "pyscan", "zmap", *zmap_argv(lab, workdir),
                           *args, SUBNET, "--netns", lab.scan_netns],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_zmap_outputs_match_zmap(lab_factory: Callable[..., Lab], tmp_path: Path) -> None:
    _need("zmap")
    from pyscan.output.zmap import available_fields, zmap_default_writer

    lab = lab_factory(subnet=SUBNET, ports=(80,), open_count=3, seed=11)
    # the installed zmap is 2.1.1: it has no zmap 4 fields (tcpopt_*, rtt)
    fields = tuple(name for name in available_fields()
                   if not name.startswith("tcpopt_") and name != "rtt")
    their_default = run_zmap(lab, tmp_path)
    their_csv = run_zmap(lab, tmp_path, "-O", "csv", "-f", ",".join(fields))
    config = pyscan.ScanConfig.parse([SUBNET], ports="80", rate=1000, wait=1,
                                     show_closed=True, netns=lab.scan_netns)
    default_out, csv_out = io.StringIO(), io.StringIO()
    default_writer = zmap_default_writer(default_out, started=0.0, ports=(80,))
    csv_writer = open_writer(None, "zmap-csv", stream=csv_out, fields=fields)
    with pyscan.scan(config) as run:
        for result in run:
            default_writer.write(result)
            csv_writer.write(result)
    default_writer.close()
    csv_writer.close()
    assert sorted(default_out.getvalue().splitlines()) == sorted(their_default.splitlines())
    assert len(their_default.splitlines()) == 3
    ours = list(csv.DictReader(io.StringIO(csv_out.getvalue())))
    theirs = list(csv.DictReader(io.StringIO(their_csv)))
    assert list(ours[0]) == list(theirs[0]) == list(fields)
    stable = ("saddr", "saddr-raw", "ttl", "sport", "classification", "success", "repeat")
    assert sorted(tuple(row[k] for k in stable) for row in ours) == \
        sorted(tuple(row[k] for k in stable) for row in theirs)
    # `pyscan zmap` with zmap's own command line: the same default output and csv rows.
    assert sorted(run_pyscan_zmap(lab, tmp_path).splitlines()) == \
        sorted(their_default.splitlines())
    cli = list(csv.DictReader(io.StringIO(
        run_pyscan_zmap(lab, tmp_path, "-O", "csv", "-f", ",".join(fields)))))
    assert sorted(tuple(row[k] for k in stable) for row in cli) == \
        sorted(tuple(row[k] for k in stable) for row in theirs)
