"""Resume of an IPv6 scan in the engine: pairs an earlier run wrote, pre-seeded through
Engine.mark_reported (pyscan_engine__mark_reported6), are keyed exactly as the RX path keys
a reply, so a re-sent probe's reply is a duplicate and every other target still reports."""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest
from scapy.layers.inet import TCP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether

from pyscan.native import Engine, null_captured, open_null_tx

KEY = bytes(range(16))
SCANNER = "2001:2::1"
SCANNER_MAC = "02:00:00:00:00:01"
GATEWAY_MAC = "02:00:00:00:00:02"
TARGETS = [("2001:2:0:1::", "2001:2:0:1::f"), ("2001:2:0:2::10", "2001:2:0:2::13")]


def engine_and_probes(probe: str, ports: list[int]) -> tuple[Engine, list[Ether]]:
    engine = Engine(cookie_key=KEY, seed=5, source_ip=SCANNER, source_mac=SCANNER_MAC,
                    gateway_mac=GATEWAY_MAC, ranges=TARGETS, ports=ports, probe=probe,
                    source_ports=range(61000, 61256), family=6)
    ring = open_null_tx(capture_frames=4096)
    engine.run_tx(0, ring)
    return engine, [Ether(frame) for frame in null_captured(ring)]


def synack(probe: Ether, flags: str = "SA") -> bytes:
    return bytes(Ether(src=GATEWAY_MAC, dst=SCANNER_MAC) /
                 IPv6(src=probe[IPv6].dst, dst=SCANNER, hlim=61) /
                 TCP(sport=probe[TCP].dport, dport=probe[TCP].sport, flags=flags, seq=7,
                     ack=(probe[TCP].seq + 1) & 0xFFFFFFFF))


def number(address: str) -> int:
    return int(IPv6Address(address))


def test_a_preseeded_ipv6_pair_is_a_duplicate_and_the_others_still_report() -> None:
    engine, probes = engine_and_probes("tcp-syn6", [80, 443])
    seeded = probes[:6]
    pairs = [(number(p[IPv6].dst), p[TCP].dport, 6) for p in seeded]
    assert engine.mark_reported(pairs) == 6
    assert engine.mark_reported(pairs[:2]) == 0  # already remembered
    for probe in seeded:
        assert engine.ingest(synack(probe)) == "duplicate"
        assert engine.ingest(synack(probe, "RA")) == "duplicate"
    for probe in probes[6:]:
        assert engine.ingest(synack(probe)) == "open"
    reported = {(str(r.ip), r.port) for r in engine.drain()}
    assert reported == {(p[IPv6].dst, p[TCP].dport) for p in probes[6:]}


def test_the_key_is_the_probe_protocol_and_port_not_the_address_alone() -> None:
    engine, probes = engine_and_probes("tcp-syn6", [80, 443])
    probe = next(p for p in probes if p[TCP].dport == 80)
    twin = next(p for p in probes if p[IPv6].dst == probe[IPv6].dst and p[TCP].dport == 443)
    # the same address on another port, and the same pair under UDP: neither suppresses it
    assert engine.mark_reported([(number(probe[IPv6].dst), 443, 6),
                                 (number(probe[IPv6].dst), 80, 17)]) == 2
    assert engine.ingest(synack(probe)) == "open"
    assert engine.ingest(synack(twin)) == "duplicate"


def test_a_preseeded_echo6_target_is_a_duplicate() -> None:
    engine, probes = engine_and_probes("icmp-echo6", [0])
    probe = probes[0]
    assert engine.mark_reported([(number(probe[IPv6].dst), 0, 1)]) == 1
    request = probe[ICMPv6EchoRequest]
    reply = bytes(Ether(src=GATEWAY_MAC, dst=SCANNER_MAC) /
                  IPv6(src=probe[IPv6].dst, dst=SCANNER, hlim=64) /
                  ICMPv6EchoReply(id=request.id, seq=request.seq))
    assert engine.ingest(reply) == "duplicate"


def test_an_address_outside_the_target_set_is_skipped_not_an_error() -> None:
    engine, _ = engine_and_probes("tcp-syn6", [80])
    # outside the ranges, and a port not scanned: the RX path does not remember them either
    assert engine.mark_reported([(number("2001:2:0:9::1"), 80, 6),
                                 (number("2001:2:0:1::1"), 81, 6)]) == 0
    assert engine.mark_reported([(number("2001:2:0:1::1"), 80, 6)]) == 1


def test_bad_ipv6_pairs_are_refused_by_value() -> None:
    engine, _ = engine_and_probes("tcp-syn6", [80])
    with pytest.raises(ValueError, match="IPv6 address -1 is out of range"):
        engine.mark_reported([(-1, 80, 6)])
    with pytest.raises(ValueError, match="port 70000 is out of range"):
        engine.mark_reported([(number("2001:2:0:1::1"), 70000, 6)])
    assert engine.mark_reported([]) == 0
