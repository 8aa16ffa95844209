"""The engine on real AF_PACKET rings, scanning a lab whose target kernel answers every SYN.

The lab (pyscan.lab) gives two namespaces joined by a veth; its target owns the subnet as
AnyIP, answers SYN-ACK on the open (ip, port) pairs it was built with and RST everywhere
else. Rings are opened inside the scanner namespace; nothing is sent from the host's own.
No firewall isolation here: the scanner kernel RSTs the SYN-ACKs, which changes nothing for
what the RX thread sees.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

import pytest

import pyscan
from pyscan import netlink
from pyscan.drivers import DriverError, DriverRequest, get_driver
from pyscan.lab import Lab
from pyscan.native import (
    Engine,
    afpacket_filter_ports,
    close_ring,
    open_afpacket_rx,
    open_afpacket_tx,
    ring_stats,
)

SOURCE_IP = IPv4Address("198.18.0.1")
SOURCE_PORTS = range(41000, 41064)
REPO_ROOT = Path(__file__).resolve().parents[2]


def scan(lab: Lab, ranges: list[tuple[str, str]], ports: list[int], tx_threads: int = 1,
         rate: float = 0.0, options: dict[str, str] | None = None,
         ) -> tuple[list, dict[str, int], dict[str, int]]:
    """Scan through the af-packet driver session inside the lab; (results, engine stats,
    driver stats)."""
    key = secrets.token_bytes(16)
    with netlink.in_netns(lab.scan_netns):
        ifindex = netlink.link_index(lab.scan_interface)
        request = DriverRequest(interface=lab.scan_interface, ifindex=ifindex,
                                tx_threads=tx_threads, want_rx=True, source_ip=SOURCE_IP,
                                source_ports=SOURCE_PORTS, cookie_key=key,
                                options=options or {})
        session = get_driver("af-packet").open(request)
    engine = Engine(cookie_key=key, seed=secrets.randbits(64), source_ip=SOURCE_IP,
                    source_mac=netlink.link_mac(lab.scan_interface, lab.scan_netns),
                    gateway_mac=netlink.link_mac(lab.target_interface, lab.target_netns),
                    ranges=ranges, ports=ports, source_ports=SOURCE_PORTS,
                    tx_threads=tx_threads, rate=rate)
    results: list = []
    with session:
        rx = threading.Thread(target=engine.run_rx, args=(session.rx_ring,))
        tx = [threading.Thread(target=engine.run_tx, args=(i, ring))
              for i, ring in enumerate(session.tx_rings)]
        rx.start()
        try:
            for thread in tx:
                thread.start()
            for thread in tx:
                thread.join(timeout=120)
                assert not thread.is_alive()
            total = engine.stats()["total_targets"]
            # Replies trail the last probe by a little; wait (bounded) for one per probe.
            for _ in range(1000):
                results += engine.drain()
                stats = engine.stats()
                if stats["rx_open"] + stats["rx_closed"] >= total:
                    break
                time.sleep(0.01)
            time.sleep(0.2)  # anything extra (duplicates) would arrive now
        finally:
            engine.stop_tx()
            engine.stop_rx()
            rx.join(timeout=10)
        assert not rx.is_alive()
        while batch := engine.drain():
            results += batch
        driver_stats = session.stats()
    stats = engine.stats()
    engine.close()
    return results, stats, driver_stats


def expected(lab: Lab, ranges: list[tuple[str, str]], ports: list[int]) -> dict:
    truth = lab.truth()
    out = {}
    for first, last in ranges:
        for ip in range(int(IPv4Address(first)), int(IPv4Address(last)) + 1):
            for port in ports:
                pair = (IPv4Address(ip), port)
                out[pair] = "open" if pair in truth else "closed"
    return out


@pytest.mark.parametrize("tx_threads", [1, 2])
def test_open_and_closed_exactly_match_the_lab(lab_factory: Callable[..., Lab],
                                               tx_threads: int) -> None:
    lab = lab_factory(subnet="198.19.0.0/24", ports=(22, 80, 443, 8080), open_count=60,
                      seed=tx_threads)
    ranges = [("198.19.0.0", "198.19.0.255")]
    ports = [22, 80, 443, 8080, 9]
    results, stats, driver = scan(lab, ranges, ports, tx_threads=tx_threads)
    want = expected(lab, ranges, ports)
    got = {(r.ip, r.port): r.status for r in results}
    assert len(results) == len(got)  # reported once each
    assert got == want
    assert stats["sent"] == stats["total_targets"] == len(want) == 256 * 5
    assert stats["rx_open"] == sum(v == "open" for v in want.values()) == 60
    assert stats["rx_invalid_cookie"] == 0 and stats["rx_duplicates"] == 0
    assert stats["tx_errors"] == 0 and driver["tx_errors"] == 0
    assert driver["tx_frames"] == stats["sent"]
    assert all(r.ttl > 0 for r in results)


def test_rate_limited_scan_with_small_rings_still_exact(lab_factory: Callable[..., Lab]) -> None:
    # 64-frame TX rings and 4 x 4 KiB RX blocks force ring wrap-around on both sides.
    lab = lab_factory(subnet="198.19.1.0/26", ports=(80, 443), open_count=20, seed=3)
    ranges = [("198.19.1.0", "198.19.1.63")]
    ports = [80, 443]
    results, stats, driver = scan(lab, ranges, ports, rate=20000.0,
                                  options={"tx_frames": "64", "rx_block_size": "4096",
                                           "rx_blocks": "4"})
    got = {(r.ip, r.port): r.status for r in results}
    assert got == expected(lab, ranges, ports)
    assert len(results) == 128 and stats["sent"] == 128
    assert driver["rx_frames"] >= 128


def receive_two_frames(rx: object, subnet: tuple[str, str],
                       linger: float = 0.0) -> dict[str, int]:
    """Run an engine's RX thread on ``rx`` until it has read 2 frames (bounded), then
    ``linger`` seconds more for any frame that should not come; its final stats."""
    engine = Engine(cookie_key=bytes(16), seed=1, source_ip=SOURCE_IP,
                    source_mac="02:00:00:00:00:01", gateway_mac="02:00:00:00:00:02",
                    ranges=[subnet], ports=[80], source_ports=range(1, 65536))
    thread = threading.Thread(target=engine.run_rx, args=(rx,))
    thread.start()
    for _ in range(200):
        if engine.stats()["rx_frames"] >= 2:
            break
        time.sleep(0.01)
    time.sleep(linger)
    engine.stop_rx()
    thread.join(timeout=5)
    stats = engine.stats()
    engine.close()
    return stats


def test_rx_ring_filter_keeps_only_replies(lab_factory: Callable[..., Lab],
                                           tcp_connect: Callable[..., str]) -> None:
    lab = lab_factory(subnet="198.19.2.0/30", ports=(80,))
    with netlink.in_netns(lab.scan_netns):
        rx = open_afpacket_rx(netlink.link_index(lab.scan_interface), 4096, 4)
    try:
        # A full handshake from the scanner's kernel: SYN-ACK comes in (kept), ACKs and
        # FINs come in too (filtered), our own outgoing frames are ignored.
        assert tcp_connect(lab.scan_netns, "198.19.2.1", 80) == "open"
        assert tcp_connect(lab.scan_netns, "198.19.2.1", 81) == "refused"
        time.sleep(0.05)  # block retire timeout is 10 ms
        stats = receive_two_frames(rx, ("198.19.2.0", "198.19.2.3"))
        # exactly the SYN-ACK and the RST reached user space; neither has our cookie
        assert stats["rx_frames"] == 2 == ring_stats(rx)["rx_frames"]
        assert stats["rx_invalid_cookie"] == 2
    finally:
        close_ring(rx)


def test_rx_ring_port_filter_drops_replies_to_other_ports(
        lab_factory: Callable[..., Lab], tcp_connect: Callable[..., str]) -> None:
    lab = lab_factory(subnet="198.19.2.4/30", ports=(80,))
    with netlink.in_netns(lab.scan_netns):
        rx = open_afpacket_rx(netlink.link_index(lab.scan_interface), 4096, 4)
    try:
        afpacket_filter_ports(rx, range(50000, 50010))
        with pytest.raises(ValueError, match="port range"):
            afpacket_filter_ports(rx, range(5, 5))
        assert tcp_connect(lab.scan_netns, "198.19.2.5", 80, source_port=50009) == "open"
        assert tcp_connect(lab.scan_netns, "198.19.2.5", 81, source_port=50000) == "refused"
        assert tcp_connect(lab.scan_netns, "198.19.2.5", 80, source_port=49999) == "open"
        assert tcp_connect(lab.scan_netns, "198.19.2.5", 81, source_port=50010) == "refused"
        time.sleep(0.05)
        stats = receive_two_frames(rx, ("198.19.2.4", "198.19.2.7"), linger=0.05)
        # the SYN-ACK to 50009 and the RST to 50000 passed; 49999 and 50010 did not
        assert stats["rx_frames"] == 2 == ring_stats(rx)["rx_frames"]
    finally:
        close_ring(rx)


def test_bad_interface_errors_name_the_value(scratch_netns: Callable[[str], str]) -> None:
    netns = scratch_netns("x")
    with netlink.in_netns(netns):
        with pytest.raises(OSError, match="interface index 4242 does not exist"):
            open_afpacket_tx(4242)
        with pytest.raises(OSError, match="interface index 4242 does not exist"):
            open_afpacket_rx(4242)
        with pytest.raises(OSError, match="block size 1000"):
            open_afpacket_rx(1, 1000, 4)
        request = DriverRequest(interface="nope", ifindex=4242, tx_threads=1, want_rx=True,
                                source_ip=SOURCE_IP, source_ports=SOURCE_PORTS,
                                cookie_key=bytes(16))
        with pytest.raises(DriverError, match="4242"):
            get_driver("af-packet").open(request)
        with pytest.raises(DriverError, match="rx_block_size=5000"):
            get_driver("af-packet").open(DriverRequest(
                interface="lo", ifindex=1, tx_threads=1, want_rx=True, source_ip=SOURCE_IP,
                source_ports=SOURCE_PORTS, cookie_key=bytes(16),
                options={"rx_block_size": "5000"}))


def test_available_as_root() -> None:
    ok, reason = get_driver("af-packet").available()
    assert ok, reason


def test_tx_thread_ends_with_an_error_when_the_link_goes_down(
        lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(subnet="198.19.3.0/24", ports=(80,), sink=True)
    engine = Engine(cookie_key=bytes(16), seed=1, source_ip=SOURCE_IP,
                    source_mac="02:00:00:00:00:01", gateway_mac="02:00:00:00:00:02",
                    ranges=[("198.19.3.0", "198.19.3.255")], ports=list(range(1, 200)),
                    source_ports=SOURCE_PORTS, rate=5000.0)
    with netlink.in_netns(lab.scan_netns):
        ring = open_afpacket_tx(netlink.link_index(lab.scan_interface), 64)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            engine.run_tx(0, ring)
        except OSError as error:
            failures.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        for _ in range(500):
            if engine.stats()["sent"] > 200:
                break
            time.sleep(0.01)
        subprocess.run(["ip", "-n", lab.scan_netns, "link", "set", "dev", lab.scan_interface,
                        "down"], check=True)
        thread.join(timeout=30)
        assert not thread.is_alive()  # it did not spin forever on a ring that cannot drain
    finally:
        engine.stop_tx()
        thread.join(timeout=10)
        close_ring(ring)
    assert failures and "Network is down" in str(failures[0])
    stats = engine.stats()
    assert 200 < stats["sent"] < stats["total_targets"]
    engine.close()


def test_without_cap_net_raw_the_errors_say_so() -> None:
    code = (
        "from pyscan.drivers import get_driver\n"
        "from pyscan.native import open_afpacket_rx, open_afpacket_tx\n"
        "print(get_driver('af-packet').available())\n"
        "for open_ring in (open_afpacket_tx, open_afpacket_rx):\n"
        "    try:\n"
        "        open_ring(1)\n"
        "    except OSError as error:\n"
        "        print(error)\n"
    )
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    result = subprocess.run([*nobody, sys.executable, "-c", code], capture_output=True,
                            text=True, timeout=60, check=False, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "(False, 'needs CAP_NET_RAW (run as root)')"
    assert "af-packet TX socket: AF_PACKET sockets need CAP_NET_RAW (run as root)" in lines[1]
    assert "af-packet RX socket: AF_PACKET sockets need CAP_NET_RAW (run as root)" in lines[2]


@pytest.mark.parametrize(("ports", "ping", "accepted"), [
    ("80", False, "with a filter for SYN-ACK/RST to the source ports and ICMP unreachables "
                  "quoting TCP probes"),
    ("U:53", False, "with a filter for UDP replies to the source ports, ICMP echo replies and "
                    "ICMP unreachables quoting UDP or echo probes"),
    ("", True, "with a filter for ICMP echo replies and ICMP unreachables quoting echo "
               "probes"),
])
def test_start_line_says_what_the_rx_filter_accepts(lab_factory: Callable[..., Lab],
                                                    ports: str, ping: bool,
                                                    accepted: str) -> None:
    lab = lab_factory(subnet="198.19.2.8/30", ports=(80,), udp_ports=(53,))
    config = pyscan.ScanConfig.parse(
        ["198.19.2.8/30"], ports=ports, ping=ping, probe="tcp-syn" if ports else "icmp-echo",
        driver="af-packet", rate=1000, wait=0.2, netns=lab.scan_netns)
    starts: list[pyscan.ScanStart] = []
    with pyscan.scan(config, on_start=starts.append) as run:
        results = list(run)
    assert len(starts) == 1 and starts[0].description.endswith(accepted)
    assert results  # the filter let this scan's replies through
