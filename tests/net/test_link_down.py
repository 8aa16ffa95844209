"""The scanner's interface goes down in the middle of a scan (`ip link set dev X down`): the
TX loop must not spin on a device that will never take a frame again. One error line, exit
1, the results found so far flushed and well formed, nothing left behind (conftest's
no_leftovers: namespaces, nft tables, XDP programs).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pyscan.drivers import DRIVERS
from pyscan.lab import Lab

# 2^16 x 4 probes at 20 kpps: 13 s, so the link goes down while sending.
SUBNET = "198.19.0.0/16"
PORTS = (22, 80, 443, 8080)


@pytest.mark.parametrize("side", ["scanner", "peer"])
@pytest.mark.parametrize("driver", ["af-packet", "af-xdp"])
def test_link_down_ends_the_scan_with_one_line_and_exit_1(
        lab_factory: Callable[..., Lab], driver: str, side: str, tmp_path: Path) -> None:
    # scanner: our interface is set down (the kernel says ENETDOWN, or drops as "busy");
    # peer: the other end is, so ours loses its carrier and every frame is dropped as "busy".
    available, reason = DRIVERS[driver].available()
    assert available, f"{driver} must run on this machine: {reason}"
    lab = lab_factory(subnet=SUBNET, ports=PORTS, open_count=3000, seed=5)
    out = tmp_path / "results.ndjson"
    process = subprocess.Popen(
        [sys.executable, "-m", "pyscan", "--netns", lab.scan_netns, SUBNET,
         "-p", ",".join(map(str, PORTS)), "--rate", "20k", "--driver", driver, "--wait", "1",
         "-oD", str(out), "--seed", "3"],
        stderr=subprocess.PIPE, text=True, cwd=tmp_path)  # its pause file goes there
    assert process.stderr is not None
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            if out.exists() and out.stat().st_size > 200:
                break  # sending, and results are coming in
            time.sleep(0.05)
        assert process.poll() is None, process.stderr.read()
        netns, interface = ((lab.scan_netns, lab.scan_interface) if side == "scanner"
                            else (lab.target_netns, lab.target_interface))
        subprocess.run(["ip", "-n", netns, "link", "set", "dev", interface, "down"], check=True)
        try:
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
            pytest.fail(f"the scan went on after its link went down: {stderr[-1000:]}")
        code = process.returncode
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code == 1, stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("pyscan: error:")]
    assert errors == [f"pyscan: error: interface {lab.scan_interface} went down during the scan "
                      "(Network is down); the results so far were written"], stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records, "the results found before the link went down are in the file"
    truth = {(str(ip), port) for ip, port in lab.truth()}
    assert {(r["ip"], r["port"]) for r in records} <= truth
