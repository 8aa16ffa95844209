"""masscan's files for ICMP echo and UDP results and for `unreachable` results of any
protocol: masscan's own shape where masscan has one (an echo reply is its --ping record,
`open icmp 0 IP`), nmap's `filtered` in nmap's formats, and no crash for any status."""

from __future__ import annotations

import io
import json
from ipaddress import IPv4Address
from xml.etree import ElementTree

import pytest

from pyscan.output.masscan import MASSCAN_FORMATS
from pyscan.output.masscan.common import masscan_reason, service_name
from pyscan.output.masscan.console import MasscanConsoleWriter
from pyscan.scanner import Result

ECHO_UP = Result(IPv4Address("198.19.0.1"), 0, "up", 64, 1_700_000_000.0, protocol="icmp",
                 icmp_type=0, icmp_code=0)
UDP_OPEN = Result(IPv4Address("198.19.0.2"), 53, "open", 63, 1_700_000_001.0, protocol="udp",
                  payload=b"\x12\x34")
TCP_UNREACH = Result(IPv4Address("198.19.0.3"), 80, "unreachable", 62, 1_700_000_002.0,
                     protocol="tcp", icmp_type=3, icmp_code=13)
UDP_UNREACH = Result(IPv4Address("198.19.0.4"), 123, "unreachable", 61, 1_700_000_003.0,
                     protocol="udp", icmp_type=3, icmp_code=1)
ECHO_UNREACH = Result(IPv4Address("198.19.0.5"), 0, "unreachable", 60, 1_700_000_004.0,
                      protocol="icmp", icmp_type=3, icmp_code=0)
ALL = [ECHO_UP, UDP_OPEN, TCP_UNREACH, UDP_UNREACH, ECHO_UNREACH]


def render(letter: str, results: list[Result]) -> str:
    stream = io.StringIO()
    with MASSCAN_FORMATS[letter](stream, started=1_700_000_000.0, ports=(80,)) as writer:
        for result in results:
            writer.write(result)
    return stream.getvalue()


def test_ol_writes_the_echo_reply_as_masscans_ping_record() -> None:
    lines = render("L", ALL).splitlines()
    assert lines == ["#masscan",
                     "open icmp 0 198.19.0.1 1700000000",
                     "open udp 53 198.19.0.2 1700000001",
                     "unreachable tcp 80 198.19.0.3 1700000002",
                     "unreachable udp 123 198.19.0.4 1700000003",
                     "unreachable icmp 0 198.19.0.5 1700000004",
                     "# end"]


def test_oj_and_od_carry_status_proto_and_nmaps_unreachable_reason() -> None:
    array = json.loads(render("J", ALL))
    ports = [record["ports"][0] for record in array]
    assert [(p["proto"], p["port"], p["status"], p["reason"]) for p in ports] == [
        ("icmp", 0, "open", "none"), ("udp", 53, "open", "none"),
        ("tcp", 80, "unreachable", "admin-prohibited"),
        ("udp", 123, "unreachable", "host-unreach"),
        ("icmp", 0, "unreachable", "net-unreach")]
    lines = [json.loads(line) for line in render("D", ALL).splitlines()]
    assert [(r["proto"], r["data"]["status"], r["data"]["reason"]) for r in lines] == [
        (p["proto"], p["status"], p["reason"]) for p in ports]


def test_og_uses_nmaps_filtered_and_the_icmp_protocol_name() -> None:
    lines = [line for line in render("G", ALL).splitlines() if line.startswith("Timestamp")]
    ports = [line.split("\tPorts: ")[1] for line in lines]
    assert ports[0] == f"0/open/icmp//{service_name(0, 'icmp')}//"
    assert service_name(0, "icmp") in ("icmp", "unknown")  # unknown without /etc/protocols
    assert ports[1] == f"53/open/udp//{service_name(53, 'udp')}//"
    assert [p.split("/")[1] for p in ports[2:]] == ["filtered"] * 3


def test_ox_reads_in_python_libnmap_with_unreachable_hosts_not_up() -> None:
    parser = pytest.importorskip("libnmap.parser")
    text = render("X", ALL)
    root = ElementTree.fromstring(text)
    hosts = root.find("runstats/hosts")
    assert hosts is not None and hosts.attrib == {"up": "2", "down": "3", "total": "5"}
    report = parser.NmapParser.parse_fromstring(text)
    states = [(host.address, host.status, service.protocol, service.port, service.state,
               service.reason) for host in report.hosts for service in host.services]
    assert states == [
        ("198.19.0.1", "up", "icmp", 0, "open", "none"),
        ("198.19.0.2", "up", "udp", 53, "open", "none"),
        ("198.19.0.3", "unknown", "tcp", 80, "filtered", "admin-prohibited"),
        ("198.19.0.4", "unknown", "udp", 123, "filtered", "host-unreach"),
        ("198.19.0.5", "unknown", "icmp", 0, "filtered", "net-unreach")]


def test_console_says_what_masscan_prints_for_ping() -> None:
    stream = io.StringIO()
    with MasscanConsoleWriter(stream, started=0.0) as writer:
        writer.write(ECHO_UP)
        writer.write(TCP_UNREACH)
    assert [line.rstrip() for line in stream.getvalue().splitlines()] == [
        "Discovered open port 0/icmp on 198.19.0.1",
        "Discovered unreachable port 80/tcp on 198.19.0.3"]


def test_unreachable_without_a_known_code_is_plain_unreach() -> None:
    odd = Result(IPv4Address("198.19.0.6"), 80, "unreachable", 60, 0.0, protocol="tcp",
                 icmp_type=3, icmp_code=7)
    bare = Result(IPv4Address("198.19.0.6"), 80, "unreachable", 60, 0.0, protocol="tcp")
    assert masscan_reason(odd) == masscan_reason(bare) == "unreach"
    for letter in MASSCAN_FORMATS:
        assert "198.19.0.6" in render(letter, [odd, bare])
