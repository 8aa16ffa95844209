"""Truth-lab scans over IPv6 (issue 12): TCP SYN and ICMPv6 echo against the lab's IPv6 half
(2001:2::/120 by AnyIP, an exact open set, echo from drawn hosts only) on af-xdp, af-packet
and xdp-live: exact recall against the truth, nothing twice, no false positive, and forged
replies refused. Neighbour discovery resolves the gateway with the XDP filter attached."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv6Address, IPv6Network

import pytest
from scapy.layers.inet import TCP
from scapy.layers.inet6 import ICMPv6EchoReply, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

import pyscan
from pyscan import netlink
from pyscan.lab import Lab
from tests.net.helpers import assert_no_duplicates, draw_lab6, require_driver, scan_lab

SUBNET6 = "2001:2::/120"
PORTS = (22, 80, 443)
SCANNER6 = "2001:2:0:ffff::1"
DRIVERS_UNDER_TEST = ["af-xdp", "af-packet", "xdp-live"]


def _draw_lab(lab_factory: Callable[..., Lab], seed: int) -> Lab:
    return draw_lab6(lab_factory, seed, SUBNET6, PORTS, open_count=90, echo_count=70)


def _forged(lab: Lab) -> list[Packet]:
    """From the target side: an echo reply from a host that stays silent and a SYN-ACK from a
    closed pair to a spread of source ports, both with made-up cookies."""
    silent = next(a for a in IPv6Network(SUBNET6) if a not in lab.echo_truth6())
    closed = next((a, 80) for a in IPv6Network(SUBNET6) if (a, 80) not in lab.truth6())
    src_mac = netlink.link_mac(lab.target_interface, lab.target_netns)
    dst_mac = netlink.link_mac(lab.scan_interface, lab.scan_netns)
    ether = Ether(src=src_mac, dst=dst_mac)
    frames = [ether / IPv6(src=str(silent), dst=SCANNER6) / ICMPv6EchoReply(id=1, seq=2)]
    frames += [ether / IPv6(src=str(closed[0]), dst=SCANNER6) /
               TCP(sport=80, dport=port, flags="SA", ack=12345)
               for port in range(1024, 65536, 61)]
    return frames


def _scan(lab: Lab, driver: str, ports: str, ping: bool
          ) -> tuple[list[pyscan.Result], pyscan.Summary]:
    return scan_lab(lab, SUBNET6, driver, forged=_forged(lab), ports=ports, ping=ping,
                    probe="icmp-echo" if not ports else "tcp-syn", wait=1.5, show_closed=True,
                    seed=6)


@pytest.mark.parametrize("driver", DRIVERS_UNDER_TEST)
def test_tcp_syn_over_ipv6_is_exact(lab_factory: Callable[..., Lab], driver: str) -> None:
    require_driver(driver)
    lab = _draw_lab(lab_factory, seed=61)
    results, summary = _scan(lab, driver, ports=",".join(map(str, PORTS)), ping=False)
    every_pair = {(a, p) for a in IPv6Network(SUBNET6) for p in PORTS}
    opened = {(r.ip, r.port) for r in results if r.status == "open"}
    closed = {(r.ip, r.port) for r in results if r.status == "closed"}
    assert opened == lab.truth6()
    assert closed == every_pair - lab.truth6()
    assert all(isinstance(r.ip, IPv6Address) and r.protocol == "tcp" for r in results)
    assert all(r.ttl == 64 for r in results)  # the lab's hop limit, one hop: not decremented
    assert_no_duplicates(results)
    assert summary.sent == len(every_pair)
    assert summary.duplicates == 0


@pytest.mark.parametrize("driver", DRIVERS_UNDER_TEST)
def test_icmpv6_echo_is_exact(lab_factory: Callable[..., Lab], driver: str) -> None:
    require_driver(driver)
    lab = _draw_lab(lab_factory, seed=62)
    results, summary = _scan(lab, driver, ports="", ping=True)
    assert {r.ip for r in results if r.status == "up"} == lab.echo_truth6()
    assert all(r.protocol == "icmp" and r.port == 0 and r.status == "up" for r in results)
    assert all((r.icmp_type, r.icmp_code) == (129, 0) for r in results)
    assert_no_duplicates(results)
    assert summary.sent == IPv6Network(SUBNET6).num_addresses


def test_ipv6_tcp_and_echo_in_one_scan(lab_factory: Callable[..., Lab]) -> None:
    require_driver("af-xdp")
    lab = _draw_lab(lab_factory, seed=63)
    results, summary = _scan(lab, "af-xdp", ports="80", ping=True)
    assert {(r.ip, r.port) for r in results if r.protocol == "tcp" and r.status == "open"} == \
        {pair for pair in lab.truth6() if pair[1] == 80}
    assert {r.ip for r in results if r.protocol == "icmp"} == lab.echo_truth6()
    assert_no_duplicates(results)
    assert summary.sent == 2 * IPv6Network(SUBNET6).num_addresses
