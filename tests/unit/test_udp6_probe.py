"""The udp6 probe module (probe_udp6.c, issue 12) without a network: its frames read back with
scapy (UDP checksum over the IPv6 pseudo-header, never zero; the cookie-derived source port;
the flow label and DNS id carrying the cookie; the payload table shared with udp), its
classification of crafted replies through the engine's RX path (valid, forged, quoted,
quotes of other modules' probes in a mixed scan), the reply payload snippets of IPv6 results,
and the registry/config changes that let -p U:PORT scan IPv6 targets."""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest
from scapy.layers.dns import DNS
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrFragment,
)
from scapy.layers.l2 import Ether

from pyscan.config import ScanConfig
from pyscan.native import (
    Capture,
    Engine,
    TargetSet6,
    cookie6,
    null_captured,
    open_null_tx,
    snippet_records,
)
from pyscan.probes import PROBES, for_family, reply_protocols
from pyscan.probes.udp_payloads import BUILTIN, UdpPayload, payload_records

KEY = bytes(range(16))
SCANNER = "2001:2::1"
SCANNER_MAC = "02:00:00:00:00:01"
GATEWAY_MAC = "02:00:00:00:00:02"
SOURCE_PORTS = range(61000, 61256)
TARGETS = [("2001:2:0:1::", "2001:2:0:1::f")]


def make_engine(ports: list[int], port_probes: list[str], payloads: dict | None = None
                ) -> Engine:
    return Engine(cookie_key=KEY, seed=3, source_ip=SCANNER, source_mac=SCANNER_MAC,
                  gateway_mac=GATEWAY_MAC, ranges=TARGETS, ports=ports,
                  port_probes=port_probes, source_ports=SOURCE_PORTS, family=6,
                  probe_args=payload_records(payloads or {}))


def sent(engine: Engine) -> list[Ether]:
    ring = open_null_tx(capture_frames=4096)
    engine.run_tx(0, ring)
    return [Ether(frame) for frame in null_captured(ring)]


def scapy_checksum(frame: Ether) -> int:
    fresh = frame.copy()
    del fresh[UDP].chksum
    return Ether(bytes(fresh))[UDP].chksum


def udp6_cookie(target: str, port: int) -> tuple[int, int]:
    """(source port, cookie) udp6 derives for a probe to target:port."""
    value = cookie6(KEY, SCANNER, target, 0, port)
    return SOURCE_PORTS.start + ((value * len(SOURCE_PORTS)) >> 32), value


def reply(src: str, layer: object) -> bytes:
    return bytes(Ether(src=GATEWAY_MAC, dst=SCANNER_MAC) / IPv6(src=src, dst=SCANNER, hlim=60)
                 / layer)


def unreachable(probe_ip6: bytes, code: int = 4, src: str = "2001:2::fe") -> bytes:
    return reply(src, ICMPv6DestUnreach(code=code) / probe_ip6)


def all_targets() -> list[str]:
    t = TargetSet6(TARGETS, [0])
    return sorted(str(t.at(i)[0]) for i in range(len(t)))


# ---- frames ---------------------------------------------------------------------------

def test_udp6_probes_carry_payloads_cookie_fields_and_a_verifying_checksum() -> None:
    with make_engine([53, 161, 7], ["udp6"] * 3,
                     {53: BUILTIN["dns"], 161: BUILTIN["snmp"]}) as engine:
        frames = sent(engine)
    assert len(frames) == 48
    assert sorted({f[IPv6].dst for f in frames}) == all_targets()
    for frame in frames:
        ip6, udp = frame[IPv6], frame[UDP]
        sport, value = udp6_cookie(ip6.dst, udp.dport)
        assert (ip6.src, ip6.nh, ip6.hlim, ip6.tc) == (SCANNER, 17, 64, 0)
        assert udp.sport == sport
        assert ip6.fl == value & 0xFFFFF  # quoted back by ICMPv6 errors
        assert ip6.plen == udp.len == 8 + len(bytes(udp.payload))
        assert len(bytes(frame)) == 62 + len(bytes(udp.payload))
        assert udp.chksum != 0 and udp.chksum == scapy_checksum(frame)
        data = bytes(udp.payload)
        if udp.dport == 53:
            assert DNS(data).id == value & 0xFFFF
            assert data[2:] == BUILTIN["dns"].data[2:]
        elif udp.dport == 161:
            assert data == BUILTIN["snmp"].data
        else:
            assert data == b""


def test_a_checksum_that_sums_to_zero_is_sent_as_ffff() -> None:
    # A two-byte payload equal to the checksum of the same datagram with zero bytes there
    # makes the one's complement sum 0xffff, so the computed checksum is 0.
    target, port = all_targets()[0], 9
    sport, _ = udp6_cookie(target, port)
    zeros = Ether() / IPv6(src=SCANNER, dst=target) / UDP(sport=sport, dport=port) / b"\0\0"
    payload = Ether(bytes(zeros))[UDP].chksum.to_bytes(2, "big")
    with make_engine([port], ["udp6"], {port: UdpPayload("filler", payload)}) as engine:
        frame = next(f for f in sent(engine) if f[IPv6].dst == target)
    assert bytes(frame[UDP].payload) == payload
    assert frame[UDP].chksum == 0xFFFF


def test_mixed_ipv6_scan_sends_each_entry_with_its_module() -> None:
    with make_engine([80, 53, 53, 0], ["tcp-syn6", "tcp-syn6", "udp6", "icmp-echo6"],
                     {53: BUILTIN["dns"]}) as engine:
        frames = sent(engine)
    kinds = sorted(("tcp", f[TCP].dport) if f.haslayer(TCP) else ("udp", f[UDP].dport)
                   if f.haslayer(UDP) else ("icmp", 0) for f in frames)
    assert kinds == sorted([("tcp", 80), ("tcp", 53), ("udp", 53), ("icmp", 0)] * 16)


def test_udp6_is_not_for_ipv4_targets_and_udp_not_for_ipv6() -> None:
    with pytest.raises(ValueError, match="not for IPv4 targets"):
        Engine(cookie_key=KEY, seed=3, source_ip="198.18.0.1", source_mac=SCANNER_MAC,
               gateway_mac=GATEWAY_MAC, ranges=[("198.19.0.0", "198.19.0.3")], ports=[53],
               port_probes=["udp6"], source_ports=SOURCE_PORTS)
    with pytest.raises(ValueError, match="not for IPv6 targets"):
        make_engine([53], ["udp"])


# ---- classification -------------------------------------------------------------------

def test_udp6_reply_is_open_only_to_the_cookies_source_port() -> None:
    target = all_targets()[5]
    sport, _ = udp6_cookie(target, 123)
    with make_engine([123], ["udp6"], {123: BUILTIN["ntp"]}) as engine:
        wrong_port = SOURCE_PORTS.start + (sport - SOURCE_PORTS.start + 1) % 256
        assert engine.ingest(reply(target, UDP(sport=123, dport=wrong_port) / b"x")) == \
            "invalid-cookie"
        assert engine.ingest(reply(target, UDP(sport=124, dport=sport))) == "not-ours"
        assert engine.ingest(reply(target, UDP(sport=123, dport=61999))) == "not-ours"
        other = all_targets()[6]
        assert engine.ingest(reply(other, UDP(sport=123, dport=sport) / b"x")) in (
            "invalid-cookie", "open")  # another target: its own cookie decides
        good = reply(target, UDP(sport=123, dport=sport) / b"ntp")
        assert engine.ingest(good) == "open"
        assert engine.ingest(good) == "duplicate"
        bad_sum = bytearray(good)
        bad_sum[-1] ^= 0xFF
        assert engine.ingest(bytes(bad_sum)) == "bad-checksum"
        zero_sum = bytearray(good)
        zero_sum[54 + 6:54 + 8] = b"\0\0"  # "no checksum": refused over IPv6
        assert engine.ingest(bytes(zero_sum)) == "bad-checksum"
        frag = reply(target, IPv6ExtHdrFragment() / UDP(sport=123, dport=sport))
        assert engine.ingest(frag) == "malformed"
        results = [r for r in engine.drain() if str(r.ip) == target]
    assert [(r.port, r.status, r.l4_proto, r.ip.version, r.ttl, r.icmp_type) for r in results] == [
        (123, "open", 17, 6, 60, 0)]


def test_udp6_reply_from_an_address_never_probed_is_not_ours() -> None:
    stray = "2001:2:0:1::100"  # outside TARGETS, cookie-matching source port and flow label
    sport, value = udp6_cookie(stray, 161)
    with make_engine([161], ["udp6"]) as engine:
        probe = bytes(sent(engine)[0][IPv6])
        assert engine.ingest(reply(stray, UDP(sport=161, dport=sport) / b"x")) == "not-ours"
        quoted = bytearray(probe)
        quoted[24:40] = IPv6Address(stray).packed
        quoted[1:4] = bytes([(quoted[1] & 0xF0) | ((value >> 16) & 0x0F),
                             (value >> 8) & 0xFF, value & 0xFF])
        quoted[40:42] = sport.to_bytes(2, "big")
        assert engine.ingest(unreachable(bytes(quoted))) == "not-ours"
        assert engine.drain() == []


def test_dns_answers_over_ipv6_must_echo_the_cookie_as_transaction_id() -> None:
    target = all_targets()[2]
    sport, value = udp6_cookie(target, 53)
    with make_engine([53], ["udp6"], {53: BUILTIN["dns"]}) as engine:
        forged = reply(target, UDP(sport=53, dport=sport) / DNS(id=(value + 1) & 0xFFFF))
        assert engine.ingest(forged) == "invalid-cookie"
        good = reply(target, UDP(sport=53, dport=sport) / DNS(id=value & 0xFFFF, qr=1))
        assert engine.ingest(good) == "open"


def test_icmpv6_port_unreachable_quoting_our_datagram_is_closed_others_unreachable() -> None:
    with make_engine([161], ["udp6"], {161: BUILTIN["snmp"]}) as engine:
        probes = {f[IPv6].dst: bytes(f[IPv6]) for f in sent(engine)}
        a, b, c, d, e = all_targets()[:5]
        assert engine.ingest(unreachable(probes[a], code=4, src=a)) == "closed"
        assert engine.ingest(unreachable(probes[a], code=4, src=a)) == "duplicate"
        assert engine.ingest(unreachable(probes[b], code=1)) == "closed"  # counted by status
        forged = bytearray(probes[c])
        forged[3] ^= 1  # a bit of the quoted flow label
        assert engine.ingest(unreachable(bytes(forged))) == "invalid-cookie"
        wrong_sport = bytearray(probes[d])
        wrong_sport[41] ^= 1  # the quoted source port's low bit (still in the range)
        assert engine.ingest(unreachable(bytes(wrong_sport))) == "invalid-cookie"
        not_from_us = bytearray(probes[e])
        not_from_us[8 + 15] ^= 1  # quoted source: another address
        assert engine.ingest(unreachable(bytes(not_from_us))) == "not-ours"
        assert engine.ingest(unreachable(probes[e][:40 + 6])) == "not-ours"  # cut in UDP
        results = engine.drain()
        stats = engine.stats()
    assert [(str(r.ip), r.port, r.status, r.icmp_type, r.icmp_code, r.l4_proto, r.ip.version)
            for r in results] == [(a, 161, "closed", 1, 4, 17, 6),
                                  (b, 161, "unreachable", 1, 1, 17, 6)]
    assert (stats["rx_closed"], stats["rx_unreachable"], stats["rx_invalid_cookie"]) == (1, 1, 2)


def test_mixed_ipv6_scan_routes_each_reply_and_quote_to_its_module() -> None:
    payloads = {53: BUILTIN["dns"]}
    with make_engine([53, 53, 0], ["tcp-syn6", "udp6", "icmp-echo6"], payloads) as engine:
        frames = sent(engine)
        target = all_targets()[7]
        syn = next(f for f in frames if f.haslayer(TCP) and f[IPv6].dst == target)
        datagram = next(f for f in frames if f.haslayer(UDP) and f[IPv6].dst == target)
        echo = next(f for f in frames if f.haslayer(ICMPv6EchoRequest) and f[IPv6].dst == target)
        sport, value = udp6_cookie(target, 53)
        synack = reply(target, TCP(sport=53, dport=syn[TCP].sport, flags="SA",
                                   ack=syn[TCP].seq + 1))
        assert engine.ingest(synack) == "open"
        assert engine.ingest(reply(target, UDP(sport=53, dport=sport)
                                   / DNS(id=value & 0xFFFF, qr=1))) == "open"
        req = echo[ICMPv6EchoRequest]
        assert engine.ingest(reply(target, ICMPv6EchoReply(id=req.id, seq=req.seq))) == "open"
        # each unreachable goes to the module whose probe it quotes, none is stolen
        assert engine.ingest(unreachable(bytes(syn[IPv6]), code=4)) == "duplicate"
        assert engine.ingest(unreachable(bytes(datagram[IPv6]), code=4)) == "duplicate"
        assert engine.ingest(unreachable(bytes(echo[IPv6]), code=4)) == "duplicate"
        other = all_targets()[8]
        other_udp = next(f for f in frames if f.haslayer(UDP) and f[IPv6].dst == other)
        other_syn = next(f for f in frames if f.haslayer(TCP) and f[IPv6].dst == other)
        assert engine.ingest(unreachable(bytes(other_udp[IPv6]), code=4)) == "closed"
        assert engine.ingest(unreachable(bytes(other_syn[IPv6]), code=1)) == "closed"
        results = engine.drain()
    assert sorted((str(r.ip), r.port, r.l4_proto, r.status) for r in results) == sorted([
        (target, 53, 6, "open"), (target, 53, 17, "open"), (target, 0, 58, "up"),
        (other, 53, 17, "closed"), (other, 53, 6, "unreachable")])


def test_ipv6_udp_replies_give_their_payload_snippet_keyed_by_the_16_byte_address() -> None:
    target = all_targets()[3]
    sport, _ = udp6_cookie(target, 7)
    with make_engine([7], ["udp6"]) as engine, Capture(64) as snippets:
        engine.set_snippets(snippets)
        assert engine.ingest(reply(target, UDP(sport=7, dport=sport) / b"hello v6")) == "open"
        records = snippet_records(snippets, 16, family=6)
    assert records == [(IPv6Address(target), 7, b"hello v6")]


# ---- registry and config ----------------------------------------------------------------

def test_udp_runs_as_udp6_for_ipv6_targets() -> None:
    assert for_family("udp", 6) is PROBES["udp6"]
    assert for_family("udp6", 4) is PROBES["udp"]
    assert reply_protocols((PROBES["udp6"].id,)) == ("udp6",)
    config = ScanConfig.parse(["2001:2::/126"], ports="80,U:53,U:123", ping=True,
                              driver="null", seed="7", rate="max", wait="0")
    assert config.udp_ports == (53, 123)
    assert [(probe, port) for probe, port in config.entries] == [
        ("tcp-syn", 80), ("udp", 53), ("udp", 123), ("icmp-echo", 0)]


def test_zmapv6_udp_module_name_scans_udp_over_ipv6() -> None:
    from pyscan.cli.zmap import parse_zmap

    plan = parse_zmap(["-M", "ipv6_udp", "-p", "53", "2001:2::/126"])
    config = ScanConfig.parse(plan.targets, **plan.scan)
    assert config.udp_ports == (53,) and not config.ports


def test_lab_ipv6_udp_pairs_are_checked_and_recorded() -> None:
    from ipaddress import IPv6Address as A

    from pyscan.lab import Lab, LabInputError

    pairs = {(A("2001:2::5"), 53), (A("2001:2::9"), 123)}
    lab = Lab(name="udp6unit", subnet6="2001:2::/120", open_udp_pairs6=pairs)
    assert lab.udp_truth6() == pairs and lab.udp_ports6() == (53, 123)
    assert Lab._load_settings_udp6(lab._settings())["open_udp_pairs6"] == pairs
    with pytest.raises(LabInputError, match="outside the lab"):
        Lab(name="udp6unit", subnet6="2001:2::/120", open_udp_pairs6={(A("2001:2::1:1"), 53)})
    with pytest.raises(LabInputError, match="without IPv6"):
        Lab(name="udp6unit", ipv6=False, open_udp_pairs6=pairs)
