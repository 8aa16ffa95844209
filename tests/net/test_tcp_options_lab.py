"""--tcp-options against the lab's truth: every profile's SYN leaves the scanner as built
(captured on the target's side of the veth and parsed by scapy), the target's Linux stack
answers it (with the options it supports, so replies differ in length), and the XDP filter
and the C classifier find exactly the open set, on af-packet and af-xdp."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

import pyscan
from pyscan import netlink
from pyscan.drivers import DRIVERS
from pyscan.lab import Lab

PORTS = (22, 80, 443, 8080)
SUBNET = "198.19.0.0/22"
# profile -> (frame length, window, TTL, scapy option names in order up to the first EOL)
SHAPES = {
    "windows": (66, 64240, 128, ["MSS", "NOP", "WScale", "NOP", "NOP", "SAckOK"]),
    "linux": (74, 64240, 64, ["MSS", "SAckOK", "Timestamp", "NOP", "WScale"]),
    "bsd": (78, 65535, 64, ["MSS", "NOP", "WScale", "NOP", "NOP", "Timestamp", "SAckOK", "EOL"]),
    "mss": (58, 1024, 64, ["MSS"]),
    "none": (54, 1024, 64, []),
}
ETH_P_IP = 0x0800


def _require(driver: str) -> None:
    ok, reason = DRIVERS[driver].available()
    assert ok, f"{driver} must run on this machine: {reason}"


class _Capture:
    """The first SYNs arriving on the lab target's veth, read with an AF_PACKET socket in the
    target namespace (what the wire carried, not what the scanner meant to send)."""

    def __init__(self, lab: Lab, count: int) -> None:
        with netlink.in_netns(lab.target_netns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
        self.sock.bind((lab.target_interface, ETH_P_IP))
        self.sock.settimeout(0.5)
        self.count = count
        self.frames: list[bytes] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        misses = 0
        while len(self.frames) < self.count and misses < 20:
            try:
                frame, address = self.sock.recvfrom(2048)
            except TimeoutError:
                misses += 1
                continue
            if address[2] != socket.PACKET_OUTGOING and TCP in Ether(frame) \
                    and Ether(frame)[TCP].flags == "S":
                self.frames.append(frame)

    def close(self) -> list[bytes]:
        self.thread.join(timeout=15)
        self.sock.close()
        return self.frames


@pytest.mark.parametrize("driver", ["af-packet", "af-xdp"])
@pytest.mark.parametrize("profile", list(SHAPES))
def test_each_profile_finds_exactly_the_open_set(lab_factory: Callable[..., Lab], driver: str,
                                                 profile: str) -> None:
    _require(driver)
    lab = lab_factory(subnet=SUBNET, ports=PORTS, open_count=300, seed=31)
    capture = _Capture(lab, count=20)
    config = pyscan.ScanConfig.parse([SUBNET], ports=",".join(map(str, PORTS)), driver=driver,
                                     rate=50_000, wait=1, netns=lab.scan_netns, seed=6,
                                     tcp_options=profile, show_closed=True)
    with pyscan.scan(config) as run:
        results = list(run)
        summary = run.summary
    syns = capture.close()
    assert summary is not None
    found = [(r.ip, r.port) for r in results if r.status == "open"]
    assert set(found) == lab.truth() and len(found) == len(set(found))
    assert summary.closed == 1024 * len(PORTS) - 300  # every RST classified too
    assert summary.invalid_cookies == 0
    # the target's Linux stack tells about itself; with a timestamp in the probe, the echo
    # gives each open pair's RTT (richer replies)
    opened = [r for r in results if r.status == "open"]
    assert all(r.window and r.mss for r in opened)
    if profile in ("linux", "bsd"):
        assert all(r.ts_ecr is not None and r.rtt is not None and r.rtt >= 0 for r in opened)
    else:
        assert all(r.rtt is None for r in opened)

    length, window, ttl, options = SHAPES[profile]
    assert len(syns) == 20
    for frame in syns:
        packet = Ether(frame)
        assert len(frame) == length
        assert (packet[IP].ttl, packet[IP].flags, packet[TCP].window) == (ttl, "DF", window)
        assert [name for name, _ in packet[TCP].options] == options
