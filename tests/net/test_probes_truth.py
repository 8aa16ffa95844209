"""Truth-lab scans of the icmp-echo and udp probe types, alone and mixed with tcp-syn, on
af-xdp and af-packet: exact results, nothing twice, and no forged reply reported.

The lab answers ICMP echo for a drawn set of addresses only (nft drops echo requests to the
others), runs real UDP responders (DNS answering version.bind on 53, an echoing NTP-like
responder on 123) on a drawn set of (address, port) pairs and answers ICMP port unreachable
for every other UDP pair, with the target namespace's ICMP rate limits off: the truth is
exact, so every reply is accounted for.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet

import pyscan
from pyscan import netlink
from pyscan.lab import Lab
from tests.net.helpers import (
    assert_no_duplicates,
    draw_pairs,
    require_driver,
    run_cli,
    scan_lab,
    send_frames,
)

SUBNET = "198.19.0.0/22"
TCP_PORTS = (80, 443)
UDP_PORTS = (53, 123)
DRIVERS_UNDER_TEST = ["af-xdp", "af-packet", "xdp-live"]


def _draw_lab(lab_factory: Callable[..., Lab], seed: int) -> Lab:
    rng = random.Random(seed)
    addresses = list(IPv4Network(SUBNET))
    echo = set(rng.sample(addresses, 150))
    udp_open = draw_pairs(rng, addresses, UDP_PORTS, 120)
    tcp_open = draw_pairs(rng, addresses, TCP_PORTS, 100)
    return lab_factory(subnet=SUBNET, ports=TCP_PORTS, open_pairs=tcp_open,
                       udp_ports=UDP_PORTS, udp_open=udp_open, echo_hosts=echo)


def _forged(lab: Lab) -> list[Packet]:
    """From the target side, replies the scan never asked for or with a wrong cookie: an echo
    reply from an address that stays silent, a UDP answer from a closed pair to every source
    port, and a port unreachable quoting a datagram the scan did not send."""
    scanner = "198.18.0.1"
    silent = next(a for a in IPv4Network(SUBNET) if a not in lab.echo_truth())
    closed_udp = next((a, 53) for a in IPv4Network(SUBNET) if (a, 53) not in lab.udp_truth())
    src_mac = netlink.link_mac(lab.target_interface, lab.target_netns)
    dst_mac = netlink.link_mac(lab.scan_interface, lab.scan_netns)
    ether = Ether(src=src_mac, dst=dst_mac)
    frames = [ether / IP(src=str(silent), dst=scanner) / ICMP(type=0, id=0x1234, seq=0x5678)]
    frames += [ether / IP(src=str(closed_udp[0]), dst=scanner) / UDP(sport=53, dport=port)
               / b"\x12\x34\x84\x00" for port in range(61000, 65536, 7)]
    quoted = IP(src=scanner, dst=str(silent), id=1) / UDP(sport=61000, dport=123)
    frames.append(ether / IP(src=str(silent), dst=scanner) / ICMP(type=3, code=3)
                  / bytes(quoted)[:28])
    return frames


def _scan(lab: Lab, driver: str, ports: str, ping: bool, capture_bytes: int = 64
          ) -> tuple[list[pyscan.Result], pyscan.Summary]:
    return scan_lab(lab, SUBNET, driver, forged=_forged(lab), ports=ports, ping=ping,
                    probe="icmp-echo" if not ports else "tcp-syn", wait=1.5,
                    show_closed=True, seed=5, udp_capture_bytes=capture_bytes)


def _by(results: list[pyscan.Result], protocol: str, status: str
        ) -> list[tuple[IPv4Address, int]]:
    return [(r.ip, r.port) for r in results if r.protocol == protocol and r.status == status]


@pytest.mark.parametrize("driver", DRIVERS_UNDER_TEST)
def test_icmp_echo_alone_is_exact(lab_factory: Callable[..., Lab], driver: str) -> None:
    require_driver(driver)
    lab = _draw_lab(lab_factory, seed=21)
    results, summary = _scan(lab, driver, ports="", ping=True)
    up = {ip for ip, port in _by(results, "icmp", "up")}
    assert up == lab.echo_truth()
    assert all(r.protocol == "icmp" and r.port == 0 and r.status == "up" for r in results)
    assert all(r.icmp_type == 0 and r.icmp_code == 0 for r in results)
    assert_no_duplicates(results)
    assert summary.sent == IPv4Network(SUBNET).num_addresses
    assert summary.duplicates == 0


@pytest.mark.parametrize("driver", DRIVERS_UNDER_TEST)
def test_udp_alone_is_exact_with_payloads(lab_factory: Callable[..., Lab], driver: str) -> None:
    require_driver(driver)
    lab = _draw_lab(lab_factory, seed=22)
    results, summary = _scan(lab, driver, ports="U:53,U:123", ping=False)
    every_pair = {(a, p) for a in IPv4Network(SUBNET) for p in UDP_PORTS}
    assert set(_by(results, "udp", "open")) == lab.udp_truth()
    assert set(_by(results, "udp", "closed")) == every_pair - lab.udp_truth()
    assert_no_duplicates(results)
    for result in results:
        if result.status == "open" and result.port == 53:
            # the responder's answer: our id echoed, QR set, the TXT record kept
            assert result.payload is not None and result.payload[2] & 0x80
            assert result.payload.endswith(b"\npyscan-lab")  # 53 bytes: all of it
        elif result.status == "open":
            assert result.payload == bytes([0x23]) + bytes(47)  # our NTP request echoed
        else:
            assert (result.icmp_type, result.icmp_code) == (3, 3)
    assert summary.sent == len(every_pair)
    assert summary.open + summary.closed == len(every_pair)


@pytest.mark.parametrize("driver", DRIVERS_UNDER_TEST)
def test_tcp_udp_and_icmp_mixed_in_one_scan(lab_factory: Callable[..., Lab], driver: str
                                            ) -> None:
    require_driver(driver)
    lab = _draw_lab(lab_factory, seed=23)
    results, summary = _scan(lab, driver, ports="80,443,U:53,U:123", ping=True,
                             capture_bytes=16)
    addresses = list(IPv4Network(SUBNET))
    assert set(_by(results, "tcp", "open")) == lab.truth()
    assert set(_by(results, "tcp", "closed")) == {
        (a, p) for a in addresses for p in TCP_PORTS} - lab.truth()
    assert set(_by(results, "udp", "open")) == lab.udp_truth()
    assert {ip for ip, _ in _by(results, "icmp", "up")} == lab.echo_truth()
    assert_no_duplicates(results)
    assert all(len(r.payload or b"") == 16 for r in results if r.protocol == "udp"
               and r.status == "open")
    assert all(r.payload is None for r in results if r.protocol != "udp")
    # TCP 53 would be a different result from UDP 53: the protocols never mix
    assert {r.port for r in results if r.protocol == "tcp"} <= set(TCP_PORTS)
    assert {r.port for r in results if r.protocol == "udp"} <= set(UDP_PORTS)
    expected = len(addresses) * (len(TCP_PORTS) + len(UDP_PORTS) + 1)
    assert summary.sent == expected
    assert summary.open + summary.closed == expected - (len(addresses) - len(lab.echo_truth()))
    assert summary.duplicates == 0


def test_the_forged_replies_reach_the_scanner(lab_factory: Callable[..., Lab]) -> None:
    """The forgery above is real: without a scan, the frames arrive on the scanner side."""
    require_driver("af-packet")
    lab = _draw_lab(lab_factory, seed=24)
    before = netlink.link_stats(lab.target_interface, lab.target_netns)["tx_packets"]
    frames = _forged(lab)
    send_frames(lab, frames)
    sent = len(frames)
    after = netlink.link_stats(lab.target_interface, lab.target_netns)["tx_packets"]
    assert sent > 600 and after - before >= sent


def test_masscan_ping_and_udp_ports_from_the_command_line(lab_factory: Callable[..., Lab],
                                                          tmp_path) -> None:
    """masscan's spellings end to end: --ping -p80,U:53,U:123, records in -oD say their
    protocol; pyscan's own ndjson carries the UDP payload as hex."""
    require_driver("af-packet")
    lab = _draw_lab(lab_factory, seed=25)
    out = tmp_path / "masscan.ndjson"
    done = run_cli("masscan", "--netns", lab.scan_netns, SUBNET, "--ping", "-p80,U:53,U:123",
                "--rate", "20000", "--wait", "1", "--driver", "af-packet", "-oD", str(out))
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    by_proto = Counter(r["proto"] for r in records)
    assert by_proto == {"tcp": len([p for p in lab.truth() if p[1] == 80]),
                        "udp": len(lab.udp_truth()), "icmp": len(lab.echo_truth())}
    mine = tmp_path / "pyscan.ndjson"
    done = run_cli("scan", "--netns", lab.scan_netns, SUBNET, "-p", "U:53", "--rate", "20000",
                "--wait", "1", "--driver", "af-xdp", "--format", "ndjson", "-o", str(mine),
                "--udp-capture-bytes", "8")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in mine.read_text().splitlines() if line.strip()]
    assert {(IPv4Address(r["ip"]), r["port"]) for r in records} == {
        pair for pair in lab.udp_truth() if pair[1] == 53}
    assert all(r["proto"] == "udp" and len(bytes.fromhex(r["payload"])) == 8
               for r in records)


def test_zmap_icmp_echoscan_and_udp_modules(lab_factory: Callable[..., Lab], tmp_path) -> None:
    require_driver("af-xdp")
    lab = _draw_lab(lab_factory, seed=26)
    out = tmp_path / "echo.csv"
    done = run_cli("zmap", "--netns", lab.scan_netns, SUBNET, "-M", "icmp_echoscan", "-r",
                "20000", "-c", "1", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert {IPv4Address(line) for line in out.read_text().split()} == lab.echo_truth()
    out = tmp_path / "udp.csv"
    done = run_cli("zmap", "--netns", lab.scan_netns, SUBNET, "-M", "udp", "-p", "123", "-r",
                "20000", "-c", "1", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert {IPv4Address(line) for line in out.read_text().split()} == {
        ip for ip, port in lab.udp_truth() if port == 123}
