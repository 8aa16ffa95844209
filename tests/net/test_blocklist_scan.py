"""The blocklist and source-port safety against the lab's truth (root, throwaway labs).

The lab lives in 198.18.0.0/15, which is itself a default blocklist row, so the lab's own
range must still scan fully (it is named on purpose). To show that a straddling target sends
nothing into a blocklisted row without ever leaving 198.18.0.0/15, the scan is given a row
inside the lab instead of the shipped list (`ScanConfig.parse(default_blocklist=[...])`, the
same code path with other data).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Network

import pytest

import pyscan
from pyscan import firewall, netlink
from pyscan.blocklist import BlocklistEntry
from pyscan.lab import Lab

SUBNET = "198.19.0.0/22"
ROW = IPv4Network("198.19.1.0/24")
PORTS = (80, 443)
TEST_ROWS = [BlocklistEntry(int(ROW.network_address), int(ROW.broadcast_address), "test row")]
OUTSIDE = [address for address in IPv4Network(SUBNET) if address not in ROW]
# pfring-zc runs over the test suite's stand-in libpfring (tests/pfring_standin), at a rate
# its one-recv-per-frame receive path keeps up with.
DRIVERS = ["af-packet", "af-xdp", "pfring-zc"]
RATES = {"pfring-zc": 2_000}


@pytest.fixture(scope="module")
def standin_options(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    from tests.pfring_standin.build import build_standin

    return {"pfring-zc": {"lib": str(build_standin(tmp_path_factory.mktemp("standin")))}}


def _scan(lab: Lab, driver: str, **settings: object) -> tuple[list[pyscan.Result],
                                                               pyscan.Summary]:
    config = pyscan.ScanConfig.parse(
        [settings.pop("subnet", SUBNET)], ports=",".join(map(str, PORTS)),
        rate=RATES.get(driver, 50_000), driver=driver, wait=1, netns=lab.scan_netns, seed=5,
        **settings)  # type: ignore[arg-type]
    with pyscan.scan(config) as run:
        results = list(run)
    assert run.summary is not None
    return results, run.summary


def _require(driver: str) -> None:
    from pyscan.drivers import DRIVERS as REGISTERED

    available, reason = REGISTERED[driver].available()
    assert available, f"{driver} must run on this machine: {reason}"


@pytest.mark.parametrize("driver", DRIVERS)
def test_straddling_target_gets_no_probe_into_the_row(
        lab_factory: Callable[..., Lab], driver: str,
        standin_options: dict[str, dict[str, str]]) -> None:
    """Every lab address answers every probe, so the replies are exactly what was sent."""
    options = standin_options.get(driver, {})
    if not options:
        _require(driver)
    lab = lab_factory(subnet=SUBNET, ports=PORTS)
    results, summary = _scan(lab, driver, show_closed=True, default_blocklist=TEST_ROWS,
                             driver_options=options)
    pairs = [(result.ip, result.port) for result in results]
    assert len(pairs) == len(set(pairs))
    assert not [pair for pair in pairs if pair[0] in ROW]
    assert set(pairs) == {(address, port) for address in OUTSIDE for port in PORTS}
    assert summary.sent == len(OUTSIDE) * len(PORTS)


def test_sink_counts_no_frame_for_the_row(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(subnet=SUBNET, ports=PORTS, sink=True)
    lab.sink_reset()
    _results, summary = _scan(lab, "af-packet", default_blocklist=TEST_ROWS,
                              gateway_mac=netlink.link_mac(lab.target_interface,
                                                           lab.target_netns))
    expected = len(OUTSIDE) * len(PORTS)
    counts = _wait_for_sink(lab, expected)
    assert summary.sent == expected
    assert counts["syns"] == expected


def test_the_labs_own_range_scans_fully_under_the_shipped_blocklist(
        lab_factory: Callable[..., Lab]) -> None:
    """198.19.0.0/16 lies inside the 198.18.0.0/15 row: named on purpose, nothing left out."""
    lab = lab_factory(subnet="198.19.0.0/16", ports=(80,), sink=True)
    config = pyscan.ScanConfig.parse(["198.19.0.0/16"], ports="80", rate="max", wait=0,
                                     driver="af-packet", netns=lab.scan_netns,
                                     gateway_mac=netlink.link_mac(lab.target_interface,
                                                                  lab.target_netns))
    assert config.blocklist_note is None
    lab.sink_reset()
    with pyscan.scan(config) as run:
        list(run)
    assert run.summary is not None and run.summary.sent == 65536
    assert _wait_for_sink(lab, 65536)["syns"] == 65536


def _wait_for_sink(lab: Lab, syns: int) -> dict[str, int]:
    deadline = time.monotonic() + 5.0
    counts = lab.sink_count()
    while counts["syns"] < syns and time.monotonic() < deadline:
        time.sleep(0.05)
        counts = lab.sink_count()
    time.sleep(0.2)  # anything extra would have arrived by now
    return lab.sink_count()


# --- source ports ----------------------------------------------------------------------------

def _pyscan(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    # --wait 1: late replies are part of the truth the forced scan is checked against
    command = [sys.executable, "-m", "pyscan", "--netns", lab.scan_netns, "198.19.0.0/30",
               "-p", "80", "--driver", "af-packet", "--wait", "1", "--no-status", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})


@pytest.mark.parametrize(("source_port", "named"), [
    ("22", "port 22 is below 1024"),
    ("40000-40255", "ports 40000-40255 are in the kernel's ephemeral range"),
    ("45000", "port 45000 has a listening TCP socket"),
])
def test_refused_source_port_exits_2_and_leaves_no_table(
        lab_factory: Callable[..., Lab], source_port: str, named: str) -> None:
    lab = lab_factory(subnet="198.19.0.0/24", ports=(80,))
    with netlink.in_netns(lab.scan_netns):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with listener:
        listener.bind(("0.0.0.0", 45000))
        listener.listen()
        done = _pyscan(lab, "--source-port", source_port, "-oL", "/dev/null")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyscan: error: unsafe --source-port")
    assert named in lines[0]
    assert firewall.list_tables(netns=lab.scan_netns) == []


def test_forced_source_port_scans_with_a_warning(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(subnet="198.19.0.0/24", ports=(80,))
    done = _pyscan(lab, "--source-port", "1000", "--force-source-port")
    assert done.returncode == 0, done.stderr
    assert "pyscan: warning: --force-source-port: port 1000 is below 1024" in done.stderr
    found = {line.split()[3] for line in done.stdout.splitlines() if line.startswith("open")}
    assert found == {f"198.19.0.{host}" for host in range(4)}
    assert firewall.list_tables(netns=lab.scan_netns) == []


def test_default_source_ports_follow_the_scans_namespace(
        lab_factory: Callable[..., Lab]) -> None:
    """The scan namespace's ephemeral range reaches 65000 here: the default moves above it."""
    lab = lab_factory(subnet="198.19.0.0/24", ports=(80,))
    netlink.write_sysctl("net/ipv4/ip_local_port_range", "1024 65000", lab.scan_netns)
    config = pyscan.ScanConfig.parse(["198.19.0.0/28"], ports="80", driver="af-packet",
                                     wait=1, netns=lab.scan_netns)
    with pyscan.scan(config) as run:
        found = {result.ip for result in run}
    assert run.start is not None and run.start.source_ports is not None
    assert run.start.source_ports.start >= 65001 and len(run.start.source_ports) == 256
    assert found == set(IPv4Network("198.19.0.0/28"))
