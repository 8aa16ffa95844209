"""UDP over IPv6 against the lab's IPv6 UDP responders (issue 12, probe module udp6): on
af-xdp, af-packet and xdp-live the open pairs are exactly Lab.udp_truth6() (DNS version.bind
answers carry their payload), every other pair is closed by an ICMPv6 port unreachable
(type 1 code 4), nothing is reported twice, and forged datagrams and forged unreachables
sent from the target side all the while are refused. A mixed TCP + UDP + ICMPv6 echo scan
keeps each protocol's truth."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from ipaddress import IPv6Address, IPv6Network

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
from scapy.layers.l2 import Ether
from scapy.sendrecv import sendp

import pyscan
from pyscan import netlink
from pyscan.drivers import DRIVERS
from pyscan.lab import Lab

SUBNET6 = "2001:2::/120"
TCP_PORTS = (22, 80)
UDP_PORTS = (53, 123, 161)  # 161 has no responder anywhere: the kernel's unreachable
SCANNER6 = "2001:2:0:ffff::1"
DRIVERS_UNDER_TEST = ["af-xdp", "af-packet", "xdp-live"]


def _require(driver: str) -> None:
    ok, reason = DRIVERS[driver].available()
    assert ok, f"{driver} must run on this machine: {reason}"


def _draw_lab(lab_factory: Callable[..., Lab], seed: int) -> Lab:
    rng = random.Random(seed)
    addresses = list(IPv6Network(SUBNET6))
    open6 = set(rng.sample([(a, p) for a in addresses for p in TCP_PORTS], 60))
    udp6 = set(rng.sample([(a, p) for a in addresses for p in (53, 123)], 80))
    echo6 = set(rng.sample(addresses, 50))
    return lab_factory(subnet="198.19.0.0/28", ports=TCP_PORTS, subnet6=SUBNET6,
                       open_pairs6=open6, echo_hosts6=echo6, open_udp_pairs6=udp6)


def _forge(lab: Lab, stop: threading.Event) -> None:
    """From the target side, every 0.1 s: datagrams from a closed UDP pair to a spread of
    source ports, and port unreachables quoting made-up datagrams from the scanner."""
    closed = next(a for a in IPv6Network(SUBNET6) if (a, 53) not in lab.udp_truth6())
    src_mac = netlink.link_mac(lab.target_interface, lab.target_netns)
    dst_mac = netlink.link_mac(lab.scan_interface, lab.scan_netns)
    ether = Ether(src=src_mac, dst=dst_mac)
    frames = [ether / IPv6(src=str(closed), dst=SCANNER6) / UDP(sport=53, dport=port) / b"x"
              for port in range(1024, 65536, 61)]
    frames += [ether / IPv6(src=str(closed), dst=SCANNER6) / ICMPv6DestUnreach(code=4) /
               IPv6(src=SCANNER6, dst=str(closed), fl=7) / UDP(sport=port, dport=123)
               for port in range(1024, 65536, 257)]
    while not stop.wait(0.1):
        with netlink.in_netns(lab.target_netns):
            sendp(frames, iface=lab.target_interface, verbose=False)


def _scan(lab: Lab, driver: str, ports: str, ping: bool = False
          ) -> tuple[list[pyscan.Result], pyscan.Summary]:
    config = pyscan.ScanConfig.parse(
        [SUBNET6], ports=ports, ping=ping, rate=20_000, driver=driver, wait=1.5,
        show_closed=True, netns=lab.scan_netns, seed=16)
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
    if driver == "af-packet":
        assert summary.invalid_cookies > 0  # the forgeries reached C and were refused
    else:
        assert summary.driver_counters["xdp_passed"] > 0  # the XDP filter left them
    return results, summary


def _no_duplicates(results: list[pyscan.Result]) -> None:
    keys = Counter((r.protocol, r.ip, r.port) for r in results)
    assert not keys or max(keys.values()) == 1


def _check_udp(lab: Lab, results: list[pyscan.Result]) -> None:
    udp = [r for r in results if r.protocol == "udp"]
    every_pair = {(a, p) for a in IPv6Network(SUBNET6) for p in UDP_PORTS}
    opened = {(r.ip, r.port) for r in udp if r.status == "open"}
    closed = {(r.ip, r.port) for r in udp if r.status == "closed"}
    assert opened == lab.udp_truth6()
    assert closed == every_pair - lab.udp_truth6()
    assert all(isinstance(r.ip, IPv6Address) for r in udp)
    assert all((r.icmp_type, r.icmp_code) == (1, 4) for r in udp if r.status == "closed")
    dns = [r for r in udp if r.status == "open" and r.port == 53]
    assert dns and all(r.payload and b"pyscan-lab" in r.payload for r in dns)
    assert all(r.payload for r in udp if r.status == "open" and r.port == 123)


@pytest.mark.parametrize("driver", DRIVERS_UNDER_TEST)
def test_udp_over_ipv6_is_exact(lab_factory: Callable[..., Lab], driver: str) -> None:
    _require(driver)
    lab = _draw_lab(lab_factory, seed=161)
    results, summary = _scan(lab, driver, ports=",".join(f"U:{p}" for p in UDP_PORTS))
    _check_udp(lab, results)
    _no_duplicates(results)
    assert summary.sent == IPv6Network(SUBNET6).num_addresses * len(UDP_PORTS)
    assert summary.duplicates == 0


def test_ipv6_tcp_udp_and_echo_in_one_scan(lab_factory: Callable[..., Lab]) -> None:
    _require("af-xdp")
    lab = _draw_lab(lab_factory, seed=162)
    ports = ",".join([*map(str, TCP_PORTS), *(f"U:{p}" for p in UDP_PORTS)])
    results, summary = _scan(lab, "af-xdp", ports=ports, ping=True)
    _check_udp(lab, results)
    assert {(r.ip, r.port) for r in results if r.protocol == "tcp" and r.status == "open"} == \
        lab.truth6()
    assert {r.ip for r in results if r.protocol == "icmp"} == lab.echo_truth6()
    _no_duplicates(results)
    n = IPv6Network(SUBNET6).num_addresses
    assert summary.sent == n * (len(TCP_PORTS) + len(UDP_PORTS) + 1)
