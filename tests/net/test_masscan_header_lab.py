"""masscan 1.3.2 itself and `pyscan masscan` scan the same lab with TCP and UDP ports and
--ping, each writing -oG: the `# Ports scanned:` lines are the same bytes (UDP entries offset
by 65536, the trailing commas masscan's one range list leaves)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.contenders import masscan_argv, masscan_cwd, nudge_until_exit, start_masscan
from pyscan import netlink
from pyscan.lab import Lab

SUBNET = "198.19.0.0/28"


@pytest.mark.parametrize("ports", ["80,U:53", "U:53,U:123"])
def test_og_ports_scanned_line_is_masscans(lab_factory: Callable[..., Lab], tmp_path: Path,
                                           ports: str) -> None:
    if shutil.which("masscan") is None:
        pytest.skip("masscan is not installed (make bench installs it)")
    lab = lab_factory(subnet=SUBNET, ports=(22, 80), open_count=8, seed=5,
                      udp_ports=(53, 123))
    theirs = tmp_path / "masscan.gnmap"
    argv = [*masscan_argv(lab.scan_interface,
                          netlink.link_mac(lab.scan_interface, lab.scan_netns),
                          netlink.link_mac(lab.target_interface, lab.target_netns), [SUBNET],
                          ports, 2000, None, 1, ping=True), "-oG", str(theirs)]
    with masscan_cwd() as cwd:
        process = start_masscan(["ip", "netns", "exec", lab.scan_netns], argv, cwd)
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline and \
                "waiting -" not in (cwd / "masscan.stderr").read_text(errors="replace")[-300:]:
            time.sleep(0.25)
        nudge_until_exit(lab.target_netns, process, timeout=30)
        if process.poll() is None:
            process.kill()
            process.wait()
            pytest.fail("masscan did not exit")
    ours = tmp_path / "pyscan.gnmap"
    done = subprocess.run(
        [sys.executable, "-m", "pyscan", "masscan", "--netns", lab.scan_netns, SUBNET,
         "--ping", f"-p{ports}", "--rate", "2000", "--wait", "1", "--driver", "af-packet",
         "-oG", str(ours)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == 0, done.stderr
    their_lines, our_lines = theirs.read_text().splitlines(), ours.read_text().splitlines()
    assert their_lines[1].startswith("# Ports scanned: ")
    assert our_lines[1] == their_lines[1]
    assert "UDP(0;)" not in our_lines[1]
