"""The bench's way of running masscan 1.3.2 in a lab (bench/contenders.py): after its scan and
wait, datagrams to its address from the target namespace end it cleanly, so its -oL file is
complete; it runs in a temporary working directory, so no paused.conf is left anywhere."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.accuracy import parse_masscan_list
from bench.contenders import masscan_argv, masscan_cwd, nudge_until_exit, start_masscan
from pyscan import netlink
from pyscan.lab import Lab

ROOT = Path(__file__).resolve().parents[2]
SUBNET = "198.19.0.0/26"
PORTS = (22, 80)


def test_masscan_ends_cleanly_after_a_datagram_with_a_complete_file(
        lab_factory: Callable[..., Lab], tmp_path: Path) -> None:
    if shutil.which("masscan") is None:
        pytest.skip("masscan is not installed (make bench installs it)")
    lab = lab_factory(subnet=SUBNET, ports=PORTS, open_count=20, seed=4)
    output = tmp_path / "masscan.txt"
    argv = masscan_argv(lab.scan_interface, netlink.link_mac(lab.scan_interface, lab.scan_netns),
                        netlink.link_mac(lab.target_interface, lab.target_netns), [SUBNET],
                        "22,80", 2000, output, 1)
    root_had_paused = (ROOT / "paused.conf").exists()
    with masscan_cwd() as cwd:
        process = start_masscan(["ip", "netns", "exec", lab.scan_netns], argv, cwd)
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline and \
                "waiting -" not in (cwd / "masscan.stderr").read_text(errors="replace")[-300:]:
            time.sleep(0.25)
        nudges = nudge_until_exit(lab.target_netns, process, timeout=30)
        if process.poll() is None:
            process.kill()
            process.wait()
            pytest.fail(f"masscan did not exit after {nudges} datagrams")
        assert process.returncode == 0
        assert nudges >= 1   # it does not end by itself: the datagram is what ends it
        assert not (cwd / "paused.conf").exists()
    assert not cwd.exists()                       # the temporary directory is gone
    assert (ROOT / "paused.conf").exists() == root_had_paused
    text = output.read_text()
    assert text.startswith("#masscan") and text.rstrip().endswith("# end")
    found = parse_masscan_list(text)
    assert found and set(found) <= lab.truth()    # masscan misses some; it invents none
