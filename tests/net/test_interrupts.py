"""Teardown under fire: 50 CLI scans at max rate in a small lab, each interrupted at a random
moment with 1, 2 or 3 SIGINTs or a SIGTERM. Every one must exit 130 (SIGINT) or 143
(SIGTERM) with well-formed output, no crash (no signal death, core file or traceback), and
nothing left behind: no nft table in the scan namespace and no XDP program on its interface
after each scan, and conftest's no_leftovers after the test.

The moments are drawn from a seeded generator (printed on failure) so a failing plan can be
replayed; they count from the CLI's start line, after which its signal handlers are in place.
Bounded for CI: about 2 s per scan.
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
from dataclasses import dataclass
from pathlib import Path

from pyscan import firewall
from pyscan.lab import Lab

SUBNET = "198.19.0.0/17"
PORTS = (22, 80, 443, 8080)   # 131072 probes: about a second at max rate in the lab
SCANS = 50
WAIT = 2                      # seconds: longer than any plan, so each scan is interrupted
DRIVERS = ("af-packet", "af-xdp", "xdp-live")
FORMATS = {"json": "-oJ", "ndjson": "-oD"}


@dataclass(frozen=True)
class Plan:
    driver: str
    format: str
    signals: tuple[int, ...]   # sent in order
    delay: float               # seconds after the start line until the first
    gaps: tuple[float, ...]    # seconds between the following ones

    @property
    def expected_exit(self) -> int:
        return 128 + self.signals[0]


def plans(seed: int) -> list[Plan]:
    rng = random.Random(seed)
    out = []
    for _ in range(SCANS):
        kind = rng.choice(["int1", "int2", "int3", "term"])
        signals = ((signal.SIGTERM,) if kind == "term"
                   else (signal.SIGINT,) * int(kind[-1]))
        out.append(Plan(driver=rng.choice(DRIVERS), format=rng.choice(list(FORMATS)),
                        signals=signals, delay=rng.uniform(0.05, 1.0),
                        gaps=tuple(rng.uniform(0.01, 0.2) for _ in signals[1:])))
    return out


def _check_output(path: Path, format: str) -> int:
    """The number of records in a well-formed output file."""
    text = path.read_text()
    if format == "json":
        return len(json.loads(text))
    assert text == "" or text.endswith("\n"), f"ndjson ends mid-line: {text[-80:]!r}"
    return len([json.loads(line) for line in text.splitlines()])


def _xdp_attached(netns: str, interface: str) -> bool:
    shown = subprocess.run(["ip", "-n", netns, "-d", "link", "show", "dev", interface],
                           capture_output=True, text=True, check=True).stdout
    return "prog/xdp" in shown or " xdp" in shown.split("\n")[0]


def test_fifty_interrupted_scans_end_cleanly(lab_factory: Callable[..., Lab],
                                             tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "little")
    lab = lab_factory(subnet=SUBNET, ports=PORTS, open_count=2000, seed=31)
    problems: list[str] = []
    for index, plan in enumerate(plans(seed)):
        out = tmp_path / f"scan{index}.{plan.format}"
        process = subprocess.Popen(
            [sys.executable, "-m", "pyscan", "--netns", lab.scan_netns, SUBNET,
             "-p", ",".join(map(str, PORTS)), "--rate", "max", "--driver", plan.driver,
             "--wait", str(WAIT), FORMATS[plan.format], str(out)],
            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        assert process.stderr is not None
        start = process.stderr.readline()
        try:
            assert start.startswith("pyscan: scanning"), start
            time.sleep(plan.delay)
            for signum, gap in zip(plan.signals, (0.0, *plan.gaps), strict=True):
                time.sleep(gap)
                process.send_signal(signum)
            try:
                stderr = start + process.communicate(timeout=60)[1]
            except subprocess.TimeoutExpired:
                process.kill()
                stderr = start + process.communicate()[1] + "\n(did not end within 60 s)"
            code = process.returncode
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        where = f"scan {index} {plan} (seed {seed})"
        if code != plan.expected_exit:
            problems.append(f"{where}: exit {code}, expected {plan.expected_exit}: "
                            f"{stderr[-600:]}")
        for marker in ("Traceback", "Fatal Python error", "Segmentation", "core dumped",
                       "Exception ignored"):
            if marker in stderr:
                problems.append(f"{where}: {marker!r} on stderr: {stderr[-1500:]}")
        try:
            _check_output(out, plan.format)
        except (OSError, ValueError, AssertionError) as error:
            problems.append(f"{where}: output not well formed: {error}")
        tables = firewall.list_tables(netns=lab.scan_netns)
        if tables:
            problems.append(f"{where}: nft tables left in {lab.scan_netns}: {tables}")
        if _xdp_attached(lab.scan_netns, lab.scan_interface):
            problems.append(f"{where}: XDP program left on {lab.scan_interface}")
        if problems:
            break  # the first broken scan is the one to look at
    cores = [p.name for p in tmp_path.iterdir() if p.name.startswith("core")]
    assert not cores, f"core files: {cores} (seed {seed})"
    assert not problems, "\n".join(problems)
