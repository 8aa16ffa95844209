"""UDP over IPv6 against the lab's IPv6 UDP responders (issue 12, probe module udp6): on
af-xdp, af-packet and xdp-live the open pairs are exactly Lab.udp_truth6() (DNS version.bind
answers carry their payload), every other pair is closed by an ICMPv6 port unreachable
(type 1 code 4), nothing is reported twice, and forged datagrams and forged unreachables
sent from the target side all the while are refused. A mixed TCP + UDP + ICMPv6 echo scan
keeps each protocol's truth."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv6Address, IPv6Network

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

import pyscan
from pyscan import netlink
from pyscan.lab import Lab
from tests.net.helpers import assert_no_duplicates, draw_lab6, require_driver, scan_lab

SUBNET6 = "2001:2::/120"
TCP_PORTS = (22, 80)
UDP_PORTS = (53, 123, 161)  # 161 has no responder anywhere: the kernel's unreachable
SCANNER6 = "2001:2:0:ffff::1"
DRIVERS_UNDER_TEST = ["af-xdp", "af-packet", "xdp-live"]


def _draw_lab(lab_factory: Callable[..., Lab], seed: int) -> Lab:
    return draw_lab6(lab_factory, seed, SUBNET6, TCP_PORTS, open_count=60, echo_count=50,
                     udp_ports=(53, 123), udp_count=80)


def _forged(lab: Lab) -> list[Packet]:
    """From the target side: datagrams from a closed UDP pair to a spread of source ports,
    and port unreachables quoting made-up datagrams from the scanner."""
    closed = next(a for a in IPv6Network(SUBNET6) if (a, 53) not in lab.udp_truth6())
    src_mac = netlink.link_mac(lab.target_interface, lab.target_netns)
    dst_mac = netlink.link_mac(lab.scan_interface, lab.scan_netns)
    ether = Ether(src=src_mac, dst=dst_mac)
    frames = [ether / IPv6(src=str(closed), dst=SCANNER6) / UDP(sport=53, dport=port) / b"x"
              for port in range(1024, 65536, 61)]
    frames += [ether / IPv6(src=str(closed), dst=SCANNER6) / ICMPv6DestUnreach(code=4) /
               IPv6(src=SCANNER6, dst=str(closed), fl=7) / UDP(sport=port, dport=123)
               for port in range(1024, 65536, 257)]
    return frames


def _scan(lab: Lab, driver: str, ports: str, ping: bool = False
          ) -> tuple[list[pyscan.Result], pyscan.Summary]:
    return scan_lab(lab, SUBNET6, driver, forged=_forged(lab), ports=ports, ping=ping,
                    wait=1.5, show_closed=True, seed=16)


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
    require_driver(driver)
    lab = _draw_lab(lab_factory, seed=161)
    results, summary = _scan(lab, driver, ports=",".join(f"U:{p}" for p in UDP_PORTS))
    _check_udp(lab, results)
    assert_no_duplicates(results)
    assert summary.sent == IPv6Network(SUBNET6).num_addresses * len(UDP_PORTS)
    assert summary.duplicates == 0


def test_ipv6_tcp_udp_and_echo_in_one_scan(lab_factory: Callable[..., Lab]) -> None:
    require_driver("af-xdp")
    lab = _draw_lab(lab_factory, seed=162)
    ports = ",".join([*map(str, TCP_PORTS), *(f"U:{p}" for p in UDP_PORTS)])
    results, summary = _scan(lab, "af-xdp", ports=ports, ping=True)
    _check_udp(lab, results)
    assert {(r.ip, r.port) for r in results if r.protocol == "tcp" and r.status == "open"} == \
        lab.truth6()
    assert {r.ip for r in results if r.protocol == "icmp"} == lab.echo_truth6()
    assert_no_duplicates(results)
    n = IPv6Network(SUBNET6).num_addresses
    assert summary.sent == n * (len(TCP_PORTS) + len(UDP_PORTS) + 1)
