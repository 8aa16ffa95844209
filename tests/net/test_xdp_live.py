"""xdp-live in throwaway labs: the sink counts exactly what the driver says the device took,
the probes per lane are af-xdp's for the same seed, and a device that refuses XDP frames
stops the scan with the reason and the fix (never a silent "sent").

The truth-lab acceptance test (exact open set, nothing twice) runs for xdp-live in
tests/net/test_scan_truth.py, with every scanning driver.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Address

import pytest

import pyscan
from pyscan import netlink
from pyscan.bench_command import BenchOptions, run_bench
from pyscan.drivers import DRIVERS
from pyscan.lab import Lab
from pyscan.scanner import ScanError, list_targets

ETH_P_IP = 0x0800


def _require(driver: str) -> None:
    ok, reason = DRIVERS[driver].available()
    assert ok, f"{driver} must run on this machine: {reason}"


@pytest.mark.parametrize("threads", [1, 2])
def test_at_max_rate_the_sink_counts_exactly_what_the_device_took(unique_name,
                                                                  threads: int) -> None:
    _require("xdp-live")
    report = run_bench(BenchOptions(driver="xdp-live", lab=True, duration=1.0,
                                    tx_threads=threads, lab_name=unique_name("x")))
    assert report.sent > 10_000
    assert report.sink_received == report.sent
    assert report.sink_queues is not None and sum(report.sink_queues.values()) == report.sent
    assert report.driver_drops == 0
    assert sum(q.sent for q in report.queues) == report.sent
    assert all(q.sent > 0 for q in report.queues)


class _Capture:
    """Every IPv4 TCP SYN arriving on the target veth, as (address, port), in arrival order."""

    def __init__(self, lab: Lab) -> None:
        with netlink.in_netns(lab.target_netns):
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
            self._sock.bind((lab.target_interface, ETH_P_IP))
        self._sock.settimeout(0.2)
        self.probes: list[tuple[IPv4Address, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame, address = self._sock.recvfrom(2048)
            except TimeoutError:
                continue
            if address[2] == socket.PACKET_OUTGOING or len(frame) < 54:
                continue
            ip, tcp = frame[14:34], frame[34:54]
            if ip[9] == 6 and tcp[13] == 0x02:  # TCP, SYN only: a probe
                self.probes.append((IPv4Address(ip[16:20]), int.from_bytes(tcp[2:4], "big")))

    def stop(self) -> list[tuple[IPv4Address, int]]:
        time.sleep(0.3)
        self._stop.set()
        self._thread.join()
        self._sock.close()
        return self.probes


def _lanes(driver: str, lab: Lab, seed: int) -> tuple[list[list[int]], int]:
    """The probes one scan put on the wire, as permutation positions per TX lane."""
    config = pyscan.ScanConfig.parse(
        ["198.19.0.0/22"], ports="22,80", rate=20_000, driver=driver, wait=0.5, seed=seed,
        netns=lab.scan_netns, tx_threads=2)
    order = {pair: index for index, pair in enumerate(list_targets(config))}
    capture = _Capture(lab)
    with pyscan.scan(config) as run:
        for _ in run:
            pass
    probes = capture.stop()
    assert run.summary is not None and run.summary.sent == len(order)
    assert sorted(probes) == sorted(order), f"{driver}: the set on the wire is not the scan's"
    lanes: list[list[int]] = [[], []]
    for pair in probes:
        index = order[pair]
        lanes[index % 2].append(index)  # engine.h: thread t owns i = t + T*k (one shard)
    return lanes, len(order)


def test_same_seed_same_probes_in_the_same_order_per_lane_as_af_xdp(
        lab_factory: Callable[..., Lab]) -> None:
    _require("xdp-live")
    _require("af-xdp")
    lab = lab_factory(subnet="198.19.0.0/22", ports=(22, 80), open_count=50, seed=3, queues=2)
    live, total = _lanes("xdp-live", lab, seed=99)
    xdp, _ = _lanes("af-xdp", lab, seed=99)
    assert live == xdp
    for lane in live:
        assert lane == sorted(lane)  # each lane walks its share of the permutation in order
    assert sum(map(len, live)) == total


def test_a_veth_whose_peer_has_no_napi_stops_the_scan_with_the_fix(
        lab_factory: Callable[..., Lab], monkeypatch: pytest.MonkeyPatch) -> None:
    _require("xdp-live")
    lab = lab_factory(subnet="198.19.0.0/24", ports=(80,), open_count=5, seed=5)
    netlink.set_gro(lab.target_interface, lab.target_netns, enable=False)
    config = pyscan.ScanConfig.parse(["198.19.0.0/24"], ports="80", rate=10_000,
                                     driver="xdp-live", wait=0, netns=lab.scan_netns)
    with pytest.raises(ScanError, match=r"does not take XDP redirects.*gro on"), \
            pyscan.scan(config) as run:
        for _ in run:
            pass
    # a kernel without the netdev family cannot say up front: the first refused batch
    # (tracepoint programs, never assumed sent) stops the scan with the same advice
    from pyscan.drivers import xdp_live

    monkeypatch.setattr(xdp_live, "_takes_redirects", lambda interface: True)
    with pytest.raises(ScanError, match="veth peer needs GRO or XDP"), \
            pyscan.scan(config) as run:
        for _ in run:
            pass


def test_unavailable_reasons_name_what_is_missing_and_how_to_get_it() -> None:
    from pyscan.privileges import required_capabilities

    needs = required_capabilities("xdp-live", isolation=False, netns=None)
    assert {"CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN", "CAP_NET_RAW"} <= set(needs)
    from pyscan.native.xdp_live import xdplive_probe

    usable, reason = xdplive_probe("/nonexistent/xdp_live.bpf.o")
    assert not usable and "not built" in reason and "make build" in reason
