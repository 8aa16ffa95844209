"""pfring-zc end to end over the stand-in libpfring.so, in throwaway labs (root).

The stand-in (tests/pfring_standin) is loaded through the driver's ordinary dlopen path and
moves frames over AF_PACKET on the lab's veth, with the semantics of the ZC API: handles are
exchanged on every send and receive, a full TX ring takes part of a burst, frames leave only
once flushed. The truth comes from the lab (its nft open set and its XDP sink), never from
the code under test. What this cannot show: anything about a real ZC NIC (docs/pfring.md).
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyscan import ScanConfig, netlink, scan
from pyscan.drivers.pfring_zc import PfringDemoLicenceWarning, interface_mac
from tests.pfring_standin.build import build_standin

SUBNET = "198.19.1.0/25"
PORTS = (22, 80, 443, 8080)


@pytest.fixture(scope="session")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_standin(tmp_path_factory.mktemp("pfring-standin-net"))


@pytest.fixture
def events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in's lifecycle log for this test."""
    path = tmp_path / "standin-events"
    monkeypatch.setenv("PYSCAN_STANDIN_EVENTS", str(path))
    return path


def threads_and_fds() -> tuple[int, int]:
    return len(os.listdir("/proc/self/task")), len(os.listdir("/proc/self/fd"))


@pytest.fixture
def released() -> Iterator[None]:
    """Nothing the scan made is left in this process: no stand-in NIC thread, no socket."""
    before = threads_and_fds()
    yield
    assert threads_and_fds() == before


def run_scan(lab: Any, standin: Path, **settings: Any) -> tuple[list[Any], Any]:
    options = {"lib": str(standin), **settings.pop("driver_options", {})}
    config = ScanConfig.parse(
        [str(settings.pop("subnet", SUBNET))], ports=",".join(map(str, PORTS)),
        driver="pfring-zc", netns=lab.scan_netns, seed=settings.pop("seed", 11),
        rate=settings.pop("rate", "50k"), wait=settings.pop("wait", 1.0),
        driver_options=options, **settings)
    with scan(config) as run:
        results = list(run)
    return results, run.summary


def check_lifecycle(events: Path, queues: int) -> list[dict[str, str]]:
    """Every queue and the cluster were closed by the driver itself, every handle returned."""
    lines = [dict(re.findall(r"(\w+)=(\S+)", line)) | {"event": line.split()[0]}
             for line in events.read_text().splitlines()]
    kinds = Counter(line["event"] for line in lines)
    assert kinds == {"create_cluster": 1, "open_device": queues, "close_device": queues,
                     "destroy_cluster": 1}
    closes = [line for line in lines if line["event"] == "close_device"]
    assert all(line["by"] == "close_device" for line in closes)
    destroy = next(line for line in lines if line["event"] == "destroy_cluster")
    assert destroy["open_queues"] == "0" and destroy["handles_held"] == "0"
    return closes


def test_truth_lab_scan_finds_every_open_pair_once_and_nothing_else(
        lab_factory: Callable[..., Any], standin: Path, events: Path, released: None) -> None:
    lab = lab_factory(subnet=SUBNET, ports=PORTS, open_count=37, seed=5)
    results, summary = run_scan(lab, standin)

    opened = [(r.ip, r.port) for r in results if r.status == "open"]
    assert Counter(opened).most_common(1)[0][1] == 1          # nothing twice
    assert set(opened) == lab.truth()                           # all found, nothing false
    probes = 128 * len(PORTS)
    assert summary.probes == probes and summary.sent == probes
    assert summary.tx_errors == 0 and summary.invalid_cookies == 0
    assert summary.open == 37 and summary.closed == probes - 37  # every probe answered once
    assert summary.driver == "pfring-zc" and "STAND-IN" in summary.driver_description
    assert f"pfring_zc_stats: sent {probes}, recv " in summary.driver_description
    assert summary.driver_description.endswith("drop 0") and summary.driver_drops == 0
    closes = check_lifecycle(events, queues=2)
    tx = next(line for line in closes if line["mode"] == "tx")
    assert int(tx["sent"]) == probes                            # the "NIC" sent each once


def test_partial_bursts_lose_no_probe_and_send_none_twice(
        lab_factory: Callable[..., Any], standin: Path, events: Path, released: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # An 8-slot card ring under 64-frame bursts: nearly every send is partial.
    monkeypatch.setenv("PYSCAN_STANDIN_RING_SLOTS", "8")
    lab = lab_factory(subnet=SUBNET, ports=PORTS, open_count=0, sink=True)
    lab.sink_reset()
    results, summary = run_scan(lab, standin, rate="max", wait=0.2)

    probes = 128 * len(PORTS)
    assert results == []
    assert summary.sent == probes and summary.tx_errors == 0
    assert lab.sink_count()["syns"] == probes                  # counted by the lab's XDP sink
    tx = next(line for line in check_lifecycle(events, queues=2) if line["mode"] == "tx")
    assert int(tx["partial"]) > 0
    assert int(tx["sent"]) == probes


def test_two_tx_threads_use_two_zc_queues(
        lab_factory: Callable[..., Any], standin: Path, events: Path, released: None) -> None:
    lab = lab_factory(subnet=SUBNET, ports=PORTS, open_count=20, seed=9, queues=2)
    results, summary = run_scan(lab, standin, tx_threads=2)

    opened = [(r.ip, r.port) for r in results if r.status == "open"]
    assert len(opened) == len(set(opened)) and set(opened) == lab.truth()
    assert summary.sent == 128 * len(PORTS) and summary.duplicates == 0
    opens = [line for line in events.read_text().splitlines() if line.startswith("open_device")]
    names = sorted(re.search(r"name=(\S+) mode=(\w+)", line).groups() for line in opens)
    iface = lab.scan_interface
    assert names == [(f"zc:{iface}@0", "rx"), (f"zc:{iface}@0", "tx"),
                     (f"zc:{iface}@1", "rx"), (f"zc:{iface}@1", "tx")]
    check_lifecycle(events, queues=4)


def test_demo_licence_is_announced_before_the_scan(
        lab_factory: Callable[..., Any], standin: Path, events: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYSCAN_STANDIN_LICENSE", "demo")
    lab = lab_factory(subnet=SUBNET, ports=PORTS, open_count=3, seed=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results, summary = run_scan(lab, standin)
    demo = [w for w in caught if issubclass(w.category, PfringDemoLicenceWarning)]
    assert len(demo) == 1 and "5 minutes" in str(demo[0].message)
    with netlink.in_netns(lab.scan_netns):
        mac = interface_mac(lab.scan_interface)
    assert mac and f"/etc/pf_ring/{mac.replace(':', '').upper()}" in str(demo[0].message)
    assert "demo licence" in summary.driver_description
    assert {(r.ip, r.port) for r in results if r.status == "open"} == lab.truth()


def test_open_failure_releases_what_was_opened(
        lab_factory: Callable[..., Any], standin: Path, events: Path, released: None) -> None:
    # A cluster too small for the card's rings: the RX queue cannot get its buffers.
    lab = lab_factory(subnet=SUBNET, ports=PORTS, open_count=1, seed=2)
    with pytest.raises(Exception, match="too few buffers"):
        run_scan(lab, standin, driver_options={"card-slots": "64"},
                 )
    lines = events.read_text().splitlines()
    assert lines[-1].startswith("destroy_cluster") and "open_queues=0" in lines[-1]
    assert sum(line.startswith("open_device") for line in lines) == \
        sum(line.startswith("close_device") for line in lines)


def test_cli_pfring_lib_option_scans_the_lab(
        lab_factory: Callable[..., Any], standin: Path, events: Path, released: None) -> None:
    from typer.testing import CliRunner

    from pyscan.cli import app

    lab = lab_factory(subnet="198.19.1.0/28", ports=(22, 80), open_count=3, seed=4)
    result = CliRunner().invoke(app, [
        "scan", "198.19.1.0/28", "-p", "22,80", "--driver", "pfring-zc", "--pfring-lib",
        str(standin), "--netns", lab.scan_netns, "--wait", "1", "--format", "list"])
    assert result.exit_code == 0, result.output
    found = {(line.split()[3], int(line.split()[2])) for line in result.stdout.splitlines()
             if line.startswith("open ")}
    assert found == {(str(ip), port) for ip, port in lab.truth()}
    check_lifecycle(events, queues=2)


def test_stopping_mid_scan_releases_everything(
        lab_factory: Callable[..., Any], standin: Path, events: Path, released: None) -> None:
    lab = lab_factory(subnet=SUBNET, ports=PORTS, open_count=128 * len(PORTS))  # all open
    config = ScanConfig.parse([SUBNET], ports=",".join(map(str, PORTS)), driver="pfring-zc",
                              netns=lab.scan_netns, rate="1k", wait=5.0,
                              driver_options={"lib": str(standin)})
    seen = []
    with scan(config) as run:
        for result in run:
            seen.append((result.ip, result.port))
            if len(seen) == 5:
                run.stop()   # stop sending
                run.stop()   # and end the wait
    summary = run.summary
    assert summary.interrupted and 5 <= summary.sent < summary.probes
    assert len(seen) == len(set(seen)) and set(seen) <= lab.truth()
    tx = next(line for line in check_lifecycle(events, queues=2) if line["mode"] == "tx")
    assert int(tx["sent"]) == summary.sent    # every accepted probe left, none after the stop


def test_a_card_that_takes_nothing_counts_every_probe_as_an_error(
        lab_factory: Callable[..., Any], standin: Path, events: Path, released: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYSCAN_STANDIN_TX_DEAD", "1")
    lab = lab_factory(subnet=SUBNET, ports=PORTS, open_count=1, seed=3)
    results, summary = run_scan(lab, standin, rate="max", wait=0.2)
    assert results == []
    assert summary.sent == 0 and summary.tx_errors == summary.probes == 128 * len(PORTS)
    check_lifecycle(events, queues=2)
