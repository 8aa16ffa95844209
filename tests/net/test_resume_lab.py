"""Pause and resume against the lab's truth: a CLI scan stopped at a random moment by SIGINT,
SIGTERM, two SIGINTs (the wait cut short) or SIGKILL, then `pyscan --resume paused.json`,
must together report every open pair of the truth exactly once, in one well-formed output
file (list, ndjson, json), on af-packet and af-xdp; and a sink lab counts the probes: a
graceful stop sends each exactly once, a SIGKILL at most one checkpoint interval (plus the
reply wait) twice.

An IPv6 scan of the lab's IPv6 prefix is stopped (SIGINT, SIGKILL) and resumed the same way:
the pairs read back from the output pre-seed the engine's dedup by IPv6 address number.

The moments come from a seeded generator printed on failure. Bounded for CI: a /18 x 4
ports (65536 probes) at 20 kpps, about 3 s of sending per scan; IPv6 a /117 x 4 ports (8192
probes) at 3 kpps, about the same.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

from pyscan import netlink
from pyscan.lab import Lab

SUBNET = "198.19.0.0/18"
PORTS = (22, 80, 443, 8080)
PROBES = 16384 * len(PORTS)
RATE = 20_000
WAIT = 1
CHECKPOINT = 1.0
MASSCAN_FLAGS = {"list": "-oL", "ndjson": "-oD", "json": "-oJ"}
DOUBLE_SIGINT = -2  # two Ctrl-C: the second cuts the reply wait short (positions roll back)
# (signal, output format, driver): every signal on both drivers, every format under a
# graceful stop and a kill; the sink test adds SIGINT/SIGTERM with ndjson and SIGKILL with
# list. Seven, not the full cross, to keep the file near 90 s on a busy CI machine.
CASES = [
    (signal.SIGINT, "list", "af-packet"), (signal.SIGINT, "ndjson", "af-xdp"),
    (DOUBLE_SIGINT, "json", "af-packet"), (signal.SIGTERM, "json", "af-xdp"),
    (signal.SIGTERM, "list", "af-packet"), (signal.SIGKILL, "ndjson", "af-packet"),
    (signal.SIGKILL, "json", "af-xdp"),
]


def read_pairs(path: Path, format: str) -> list[tuple[IPv4Address | IPv6Address, int]]:
    """Every record of a finished output file, through the format's own reader (json.load,
    one json.loads per line, the masscan list grammar with its header and trailer)."""
    text = path.read_text()
    if format == "json":
        return [(ip_address(e["ip"]), e["ports"][0]["port"]) for e in json.loads(text)]
    if format == "ndjson":
        assert text.endswith("\n")
        return [(ip_address(e["ip"]), e["port"]) for e in map(json.loads, text.splitlines())]
    lines = text.splitlines()
    assert lines[0] == "#masscan" and lines[-1] == "# end", (lines[:1], lines[-1:])
    pairs = []
    for line in lines[1:-1]:
        status, proto, port, ip, _ = line.split(" ")
        assert (status, proto) == ("open", "tcp"), line
        pairs.append((ip_address(ip), int(port)))
    return pairs


def start_scan(command: list[str], cwd: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-m", "pyscan", *command],
                               stderr=subprocess.PIPE, text=True, cwd=cwd)
    assert process.stderr is not None
    line = process.stderr.readline()
    assert line.startswith("pyscan: scanning"), line + (process.stderr.read() or "")
    return process


def stop(process: subprocess.Popen[str], signum: int, delay: float) -> tuple[int, str]:
    time.sleep(delay)
    if signum == DOUBLE_SIGINT:
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)  # inside the 1 s wait: the second one cuts it short
        signum = signal.SIGINT
    process.send_signal(signum)
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr


def resume(workdir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyscan", "--resume", "paused.json",
                           "--json-summary", *extra],
                          capture_output=True, text=True, cwd=workdir, timeout=120, check=False)


def cleanup(netns: str) -> None:
    # A SIGKILLed scan cannot remove its isolation table; the lab's namespace goes with the
    # lab anyway, but the next scan there should not run beside it.
    subprocess.run([sys.executable, "-m", "pyscan", "cleanup", "--netns", netns],
                   capture_output=True, check=False, timeout=30)


def test_stopped_and_resumed_scans_report_the_truth_exactly_once(
        lab_factory: Callable[..., Lab], tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    lab = lab_factory(subnet=SUBNET, ports=PORTS, open_count=3000, seed=23)
    truth = lab.truth()
    for index, (signum, format, driver) in enumerate(CASES):
        workdir = tmp_path / f"case{index}"
        workdir.mkdir()
        out = workdir / f"out.{format}"
        name = "SIGINT x2" if signum == DOUBLE_SIGINT else signal.Signals(signum).name
        where = f"case {index} ({name}, {format}, {driver}; seed {seed})"
        command = ["--netns", lab.scan_netns, SUBNET, "-p", ",".join(map(str, PORTS)),
                   "--rate", str(RATE), "--driver", driver, "--wait", str(WAIT),
                   "--checkpoint-every", str(CHECKPOINT),
                   # pyscan's own format and masscan's bytes of it, in turn
                   *(["--format", format, "-o", str(out)] if index % 2 == 0
                     else [MASSCAN_FLAGS[format], str(out)])]
        # SIGKILL after the first checkpoint (1 s after the start), the others anywhere.
        delay = rng.uniform(1.6, 2.6) if signum == signal.SIGKILL else rng.uniform(0.3, 2.6)
        code, stderr = stop(start_scan(command, workdir), signum, delay)
        expected = {signal.SIGKILL: -signal.SIGKILL, DOUBLE_SIGINT: 130}.get(signum,
                                                                          128 + signum)
        assert code == expected, \
            f"{where}: exit {code}: {stderr[-800:]}"
        assert "Traceback" not in stderr, f"{where}: {stderr}"
        if signum == signal.SIGKILL:
            cleanup(lab.scan_netns)
        assert (workdir / "paused.json").exists(), f"{where}: no pause file: {stderr[-800:]}"
        saved = json.loads((workdir / "paused.json").read_text())
        assert saved["exact"] is (signum not in (signal.SIGKILL, DOUBLE_SIGINT)), where

        resumed = resume(workdir)
        assert resumed.returncode == 0, f"{where}: resume exit {resumed.returncode}: " \
            f"{resumed.stderr[-1500:]}"
        assert "resuming paused.json" in resumed.stderr, where
        assert not (workdir / "paused.json").exists(), f"{where}: the pause file stayed"
        pairs = read_pairs(out, format)
        assert len(pairs) == len(set(pairs)), \
            f"{where}: {len(pairs) - len(set(pairs))} results written twice"
        assert set(pairs) == truth, (f"{where}: missing {len(truth - set(pairs))}, "
                                     f"extra {len(set(pairs) - truth)}")


def test_the_sink_counts_each_probe_once_or_one_interval_twice_after_sigkill(
        lab_factory: Callable[..., Lab], tmp_path: Path) -> None:
    """Graceful stops (SIGINT, then SIGTERM on the resumed run): exactly every probe. A
    SIGKILL: every probe, plus at most the probes after the last checkpoint's positions."""
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    lab = lab_factory(subnet=SUBNET, ports=PORTS, sink=True)
    gateway = netlink.link_mac(lab.target_interface, lab.target_netns)
    base = ["--netns", lab.scan_netns, SUBNET, "-p", ",".join(map(str, PORTS)), "--rate",
            str(RATE), "--driver", "af-packet", "--wait", str(WAIT), "--gateway-mac", gateway]

    graceful = tmp_path / "graceful"
    graceful.mkdir()
    lab.sink_reset()
    code, stderr = stop(start_scan([*base, "-oD", str(graceful / "out.ndjson")], graceful),
                        signal.SIGINT, rng.uniform(0.3, 1.5))
    assert code == 130, stderr
    first = json.loads((graceful / "paused.json").read_text())
    process = subprocess.Popen([sys.executable, "-m", "pyscan", "--resume", "paused.json"],
                               stderr=subprocess.PIPE, text=True, cwd=graceful)
    assert process.stderr is not None
    assert process.stderr.readline().startswith("pyscan: scanning")
    code, stderr = stop(process, signal.SIGTERM, rng.uniform(0.3, 1.0))
    assert code == 143, stderr
    second = json.loads((graceful / "paused.json").read_text())
    assert sum(second["positions"]) > sum(first["positions"]), (seed, first, second)
    finished = resume(graceful)
    assert finished.returncode == 0, finished.stderr
    assert _settled_syns(lab) == PROBES, f"seed {seed}"

    killed = tmp_path / "killed"
    killed.mkdir()
    lab.sink_reset()
    out = killed / "out.txt"
    code, _ = stop(start_scan([*base, "--checkpoint-every", str(CHECKPOINT), "-oL", str(out)],
                              killed), signal.SIGKILL, rng.uniform(1.6, 2.6))
    assert code == -signal.SIGKILL
    cleanup(lab.scan_netns)
    finished = resume(killed)
    assert finished.returncode == 0, finished.stderr
    assert out.read_text() == ""  # the sink answers nothing: masscan's -oL of no results
    syns = _settled_syns(lab)
    # Re-sent: the probes after the last checkpoint's (lagging) positions: at most one
    # interval plus the reply wait and its margin, at the rate (and its catch-up burst).
    bound = RATE * (CHECKPOINT + WAIT + 0.5 + 0.5)
    assert PROBES <= syns <= PROBES + bound, f"{syns} SYNs for {PROBES} probes (seed {seed})"


def _settled_syns(lab: Lab) -> int:
    """The sink's SYN count once it stops growing (frames still in the veth)."""
    last, deadline = -1, time.monotonic() + 5.0
    while time.monotonic() < deadline:
        count = lab.sink_count()["syns"]
        if count == last:
            return count
        last = count
        time.sleep(0.2)
    return last


SUBNET6 = "2001:2::/117"
RATE6 = 3_000
# (signal, output format): a graceful stop and a kill, pyscan's list and masscan's -oD.
CASES6 = [(signal.SIGINT, "list"), (signal.SIGKILL, "ndjson")]


def test_a_stopped_and_resumed_ipv6_scan_reports_the_truth_exactly_once(
        lab_factory: Callable[..., Lab], tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    lab = lab_factory(subnet="198.19.0.0/28", ports=PORTS, subnet6=SUBNET6, open_count6=700,
                      seed=29)
    truth6 = lab.truth6()
    assert len(truth6) == 700
    for index, (signum, format) in enumerate(CASES6):
        workdir = tmp_path / f"v6case{index}"
        workdir.mkdir()
        out = workdir / f"out.{format}"
        where = f"IPv6 case {index} ({signal.Signals(signum).name}, {format}; seed {seed})"
        command = ["--netns", lab.scan_netns, SUBNET6, "-p", ",".join(map(str, PORTS)),
                   "--rate", str(RATE6), "--driver", "af-packet", "--wait", str(WAIT),
                   "--checkpoint-every", str(CHECKPOINT),
                   *(["--format", format, "-o", str(out)] if index % 2 == 0
                     else [MASSCAN_FLAGS[format], str(out)])]
        delay = rng.uniform(1.6, 2.4) if signum == signal.SIGKILL else rng.uniform(0.3, 2.4)
        code, stderr = stop(start_scan(command, workdir), signum, delay)
        expected = -signal.SIGKILL if signum == signal.SIGKILL else 128 + signum
        assert code == expected, f"{where}: exit {code}: {stderr[-800:]}"
        assert "Traceback" not in stderr, f"{where}: {stderr}"
        if signum == signal.SIGKILL:
            cleanup(lab.scan_netns)
        assert (workdir / "paused.json").exists(), f"{where}: no pause file: {stderr[-800:]}"
        before = read_pairs(out, format) if signum != signal.SIGKILL else []

        resumed = resume(workdir)
        assert resumed.returncode == 0, f"{where}: resume exit {resumed.returncode}: " \
            f"{resumed.stderr[-1500:]}"
        assert "resuming paused.json" in resumed.stderr, where
        pairs = read_pairs(out, format)
        assert pairs[:len(before)] == before, f"{where}: the first run's records changed"
        assert len(pairs) == len(set(pairs)), \
            f"{where}: {len(pairs) - len(set(pairs))} results written twice"
        assert set(pairs) == truth6, (f"{where}: missing {len(truth6 - set(pairs))}, "
                                      f"extra {len(set(pairs) - truth6)}")
