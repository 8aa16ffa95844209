"""Truth-lab scans over IPv6 (issue 12): TCP SYN and ICMPv6 echo against the lab's IPv6 half
(2001:2::/120 by AnyIP, an exact open set, echo from drawn hosts only) on af-xdp, af-packet
and xdp-live: exact recall against the truth, nothing twice, no false positive, and forged
replies refused. Neighbour discovery resolves the gateway with the XDP filter attached."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from ipaddress import IPv6Address, IPv6Network

import pytest
from scapy.layers.inet import TCP
from scapy.layers.inet6 import ICMPv6EchoReply, IPv6
from scapy.layers.l2 import Ether
from scapy.sendrecv import sendp

import pyscan
from pyscan import netlink
from pyscan.drivers import DRIVERS
from pyscan.lab import Lab

SUBNET6 = "2001:2::/120"
PORTS = (22, 80, 443)
SCANNER6 = "2001:2:0:ffff::1"
DRIVERS_UNDER_TEST = ["af-xdp", "af-packet", "xdp-live"]


def _require(driver: str) -> None:
    ok, reason = DRIVERS[driver].available()
    assert ok, f"{driver} must run on this machine: {reason}"


def _draw_lab(lab_factory: Callable[..., Lab], seed: int) -> Lab:
    rng = random.Random(seed)
    addresses = list(IPv6Network(SUBNET6))
    open6 = set(rng.sample([(a, p) for a in addresses for p in PORTS], 90))
    echo6 = set(rng.sample(addresses, 70))
    return lab_factory(subnet="198.19.0.0/28", ports=PORTS, subnet6=SUBNET6,
                       open_pairs6=open6, echo_hosts6=echo6)


def _forge(lab: Lab, stop: threading.Event) -> None:
    """From the target side, every 0.1 s: an echo reply from a host that stays silent and a
    SYN-ACK from a closed pair to a spread of source ports, both with made-up cookies."""
    silent = next(a for a in IPv6Network(SUBNET6) if a not in lab.echo_truth6())
    closed = next((a, 80) for a in IPv6Network(SUBNET6) if (a, 80) not in lab.truth6())
    src_mac = netlink.link_mac(lab.target_interface, lab.target_netns)
    dst_mac = netlink.link_mac(lab.scan_interface, lab.scan_netns)
    ether = Ether(src=src_mac, dst=dst_mac)
    frames = [ether / IPv6(src=str(silent), dst=SCANNER6) / ICMPv6EchoReply(id=1, seq=2)]
    frames += [ether / IPv6(src=str(closed[0]), dst=SCANNER6) /
               TCP(sport=80, dport=port, flags="SA", ack=12345)
               for port in range(1024, 65536, 61)]
    while not stop.wait(0.1):
        with netlink.in_netns(lab.target_netns):
            sendp(frames, iface=lab.target_interface, verbose=False)


def _scan(lab: Lab, driver: str, ports: str, ping: bool
          ) -> tuple[list[pyscan.Result], pyscan.Summary]:
    config = pyscan.ScanConfig.parse(
        [SUBNET6], ports=ports, ping=ping, probe="icmp-echo" if not ports else "tcp-syn",
        rate=20_000, driver=driver, wait=1.5, show_closed=True, netns=lab.scan_netns, seed=6)
    stop = threading.Event()
    forger = threading.Thread(target=_forge, args=(lab, stop), daemon=True)
    forger.start()
    try:
        with pyscan.scan(config) as run:
            results = list(run)
    finally:
        stop.set()
        forger.join()
    summary = run.summary
    assert summary is not None
    # the forgeries arrived and were refused: af-packet hands them to the engine, which
    # counts wrong cookies; the XDP filter leaves them to the kernel
    if driver == "af-packet":
        assert summary.invalid_cookies > 0
    else:
        assert summary.driver_counters["xdp_passed"] > 0
    return results, summary


def _no_duplicates(results: list[pyscan.Result]) -> None:
    keys = Counter((r.protocol, r.ip, r.port) for r in results)
    assert not keys or max(keys.values()) == 1


@pytest.mark.parametrize("driver", DRIVERS_UNDER_TEST)
def test_tcp_syn_over_ipv6_is_exact(lab_factory: Callable[..., Lab], driver: str) -> None:
    _require(driver)
    lab = _draw_lab(lab_factory, seed=61)
    results, summary = _scan(lab, driver, ports=",".join(map(str, PORTS)), ping=False)
    every_pair = {(a, p) for a in IPv6Network(SUBNET6) for p in PORTS}
    opened = {(r.ip, r.port) for r in results if r.status == "open"}
    closed = {(r.ip, r.port) for r in results if r.status == "closed"}
    assert opened == lab.truth6()
    assert closed == every_pair - lab.truth6()
    assert all(isinstance(r.ip, IPv6Address) and r.protocol == "tcp" for r in results)
    assert all(r.ttl == 64 for r in results)  # the lab's hop limit, one hop: not decremented
    _no_duplicates(results)
    assert summary.sent == len(every_pair)
    assert summary.duplicates == 0


@pytest.mark.parametrize("driver", DRIVERS_UNDER_TEST)
def test_icmpv6_echo_is_exact(lab_factory: Callable[..., Lab], driver: str) -> None:
    _require(driver)
    lab = _draw_lab(lab_factory, seed=62)
    results, summary = _scan(lab, driver, ports="", ping=True)
    assert {r.ip for r in results if r.status == "up"} == lab.echo_truth6()
    assert all(r.protocol == "icmp" and r.port == 0 and r.status == "up" for r in results)
    assert all((r.icmp_type, r.icmp_code) == (129, 0) for r in results)
    _no_duplicates(results)
    assert summary.sent == IPv6Network(SUBNET6).num_addresses


def test_ipv6_tcp_and_echo_in_one_scan(lab_factory: Callable[..., Lab]) -> None:
    _require("af-xdp")
    lab = _draw_lab(lab_factory, seed=63)
    results, summary = _scan(lab, "af-xdp", ports="80", ping=True)
    assert {(r.ip, r.port) for r in results if r.protocol == "tcp" and r.status == "open"} == \
        {pair for pair in lab.truth6() if pair[1] == 80}
    assert {r.ip for r in results if r.protocol == "icmp"} == lab.echo_truth6()
    _no_duplicates(results)
    assert summary.sent == 2 * IPv6Network(SUBNET6).num_addresses
