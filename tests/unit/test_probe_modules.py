"""The icmp-echo and udp probe modules (probe_icmp_echo4.c, probe_udp4.c) without a network:
their frames read back with scapy (checksums, cookie fields, payloads), their classification
of crafted replies through the engine's RX path (valid, forged, quoted), scans that mix
modules (one result per protocol), and the UDP payload data."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from scapy.layers.dns import DNS
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.netbios import NBNSHeader
from scapy.layers.ntp import NTPHeader
from scapy.layers.snmp import SNMP

from pyscan.config import ScanConfig, parse_port_spec
from pyscan.errors import ConfigError
from pyscan.lab_listener import dns_answer
from pyscan.native import Engine, cookie, null_captured, open_null_tx
from pyscan.probes.udp_payloads import (
    BUILTIN,
    parse_payload_file,
    parse_payload_name,
    payload_records,
)

KEY = bytes(range(16))
SOURCE_IP = "198.18.0.1"
SOURCE_PORTS = range(61000, 61256)
TARGETS = [("198.19.0.0", "198.19.0.15")]


def make_engine(ports: list[int], port_probes: list[str], payloads: dict | None = None
                ) -> Engine:
    return Engine(cookie_key=KEY, seed=3, source_ip=SOURCE_IP, source_mac="02:00:00:00:00:01",
                  gateway_mac="02:00:00:00:00:02", ranges=TARGETS, ports=ports,
                  port_probes=port_probes, source_ports=SOURCE_PORTS,
                  probe_args=payload_records(payloads or {}))


def sent_frames(engine: Engine) -> list[Ether]:
    ring = open_null_tx(capture_frames=4096)
    engine.run_tx(0, ring)
    return [Ether(frame) for frame in null_captured(ring)]


def checksums_verify(packet: Ether) -> bool:
    """scapy recomputes every checksum it is told to forget; equal bytes = they verified."""
    fresh = packet.copy()
    del fresh[IP].chksum
    for layer in (ICMP, UDP, TCP):
        if fresh.haslayer(layer):
            del fresh[layer].chksum
    return bytes(Ether(bytes(fresh))) == bytes(packet)


def udp_cookie(target: str, port: int) -> tuple[int, int]:
    """(source port, cookie) the udp module derives for a probe to target:port."""
    value = cookie(KEY, SOURCE_IP, target, 0, port)
    return SOURCE_PORTS.start + ((value * len(SOURCE_PORTS)) >> 32), value


def reply(src: str, layer: object) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
                 / IP(src=src, dst=SOURCE_IP) / layer)


# ---- frames ---------------------------------------------------------------------------

def test_echo_requests_carry_the_cookie_in_identifier_and_sequence() -> None:
    with make_engine([0], ["icmp-echo"]) as engine:
        frames = sent_frames(engine)
    assert len(frames) == 16
    assert {f[IP].dst for f in frames} == {f"198.19.0.{i}" for i in range(16)}
    for frame in frames:
        assert frame[ICMP].type == 8 and frame[ICMP].code == 0
        value = cookie(KEY, SOURCE_IP, frame[IP].dst, 0, 0)
        assert (frame[ICMP].id, frame[ICMP].seq) == (value >> 16, value & 0xFFFF)
        assert checksums_verify(frame)


def test_udp_probes_carry_payloads_and_a_cookie_derived_source_port() -> None:
    with make_engine([53, 161, 7], ["udp"] * 3, {53: BUILTIN["dns"], 161: BUILTIN["snmp"]}
                     ) as engine:
        frames = sent_frames(engine)
    assert len(frames) == 48
    for frame in frames:
        sport, value = udp_cookie(frame[IP].dst, frame[UDP].dport)
        assert frame[UDP].sport == sport
        assert frame[IP].id == value & 0xFFFF  # quoted back by ICMP errors
        assert checksums_verify(frame)
        data = bytes(frame[UDP].payload)
        if frame[UDP].dport == 53:
            assert DNS(data).id == value & 0xFFFF
            assert data[2:] == BUILTIN["dns"].data[2:]
        elif frame[UDP].dport == 161:
            assert data == BUILTIN["snmp"].data
        else:
            assert data == b""  # no payload: an empty datagram


def test_mixed_scan_sends_each_entry_with_its_module() -> None:
    with make_engine([80, 53, 53, 0], ["tcp-syn", "tcp-syn", "udp", "icmp-echo"],
                     {53: BUILTIN["dns"]}) as engine:
        frames = sent_frames(engine)
    kinds = sorted((("tcp", f[TCP].dport) if f.haslayer(TCP) else ("udp", f[UDP].dport)
                    if f.haslayer(UDP) else ("icmp", 0)) for f in frames)
    expected = sorted([("tcp", 80), ("tcp", 53), ("udp", 53), ("icmp", 0)] * 16)
    assert kinds == expected
    assert all(checksums_verify(f) for f in frames)


def test_same_port_twice_for_one_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="distinct ports per protocol"):
        make_engine([53, 53], ["udp", "udp"])


# ---- classification -------------------------------------------------------------------

def test_echo_reply_is_up_and_a_forged_one_is_refused() -> None:
    value = cookie(KEY, SOURCE_IP, "198.19.0.3", 0, 0)
    with make_engine([0], ["icmp-echo"]) as engine:
        good = reply("198.19.0.3", ICMP(type=0, id=value >> 16, seq=value & 0xFFFF))
        forged = reply("198.19.0.4", ICMP(type=0, id=value >> 16, seq=value & 0xFFFF))
        assert engine.ingest(forged) == "invalid-cookie"
        assert engine.ingest(good) == "open"
        assert engine.ingest(good) == "duplicate"
        [result] = engine.drain()
    assert (result.ip, result.port, result.status, result.l4_proto) == (
        IPv4Address("198.19.0.3"), 0, "up", 1)
    assert result.rtt is None  # an echo request carries no send time: unknown, not 0 s


def test_unreachable_quoting_our_echo_names_the_target_with_type_and_code() -> None:
    value = cookie(KEY, SOURCE_IP, "198.19.0.9", 0, 0)
    quote = bytes(IP(src=SOURCE_IP, dst="198.19.0.9") / ICMP(type=8, id=value >> 16,
                                                              seq=value & 0xFFFF))
    with make_engine([0], ["icmp-echo"]) as engine:
        assert engine.ingest(reply("198.18.0.2", ICMP(type=3, code=1) / quote)) == "closed"
        wrong = bytes(IP(src=SOURCE_IP, dst="198.19.0.9") / ICMP(type=8, id=1, seq=2))
        assert engine.ingest(reply("198.18.0.2", ICMP(type=3, code=1) / wrong)) == \
            "invalid-cookie"
        [result] = engine.drain()
    assert (result.ip, result.status, result.icmp_type, result.icmp_code, result.rtt) == (
        IPv4Address("198.19.0.9"), "unreachable", 3, 1, None)


def test_udp_reply_is_open_only_to_the_cookies_source_port() -> None:
    sport, _value = udp_cookie("198.19.0.5", 123)
    with make_engine([123], ["udp"], {123: BUILTIN["ntp"]}) as engine:
        wrong_port = SOURCE_PORTS.start + (sport - SOURCE_PORTS.start + 1) % 256
        assert engine.ingest(reply("198.19.0.5", UDP(sport=123, dport=wrong_port) / b"x")) \
            == "invalid-cookie"
        assert engine.ingest(reply("198.19.0.5", UDP(sport=124, dport=sport))) == "not-ours"
        assert engine.ingest(reply("198.19.0.5", UDP(sport=123, dport=sport) / b"ntp")) \
            == "open"
        [result] = engine.drain()
    assert (result.ip, result.port, result.status, result.l4_proto) == (
        IPv4Address("198.19.0.5"), 123, "open", 17)
    assert result.rtt is None


def test_udp_reply_from_an_address_never_probed_is_not_ours() -> None:
    # 198.19.0.200 is outside TARGETS: its datagram carries the source port its cookie picks
    # (the whole cookie of a reply without a payload echo), yet it answers no probe
    stray = "198.19.0.200"
    sport, value = udp_cookie(stray, 161)
    quote = bytes(IP(src=SOURCE_IP, dst=stray, id=value & 0xFFFF)
                  / UDP(sport=sport, dport=161))[:28]
    with make_engine([161], ["udp"]) as engine:
        assert engine.ingest(reply(stray, UDP(sport=161, dport=sport) / b"x")) == "not-ours"
        assert engine.ingest(reply("198.18.0.2", ICMP(type=3, code=3) / quote)) == "not-ours"
        assert engine.drain() == []
        assert engine.stats()["rx_open"] + engine.stats()["rx_closed"] == 0


def test_dns_answers_must_echo_the_cookie_as_transaction_id() -> None:
    sport, value = udp_cookie("198.19.0.6", 53)
    with make_engine([53], ["udp"], {53: BUILTIN["dns"]}) as engine:
        forged = reply("198.19.0.6", UDP(sport=53, dport=sport) / DNS(id=(value + 1) & 0xFFFF))
        assert engine.ingest(forged) == "invalid-cookie"
        good = reply("198.19.0.6", UDP(sport=53, dport=sport) / DNS(id=value & 0xFFFF, qr=1))
        assert engine.ingest(good) == "open"


def test_port_unreachable_quoting_our_datagram_is_closed() -> None:
    sport, value = udp_cookie("198.19.0.7", 161)
    quote = bytes(IP(src=SOURCE_IP, dst="198.19.0.7", id=value & 0xFFFF)
                  / UDP(sport=sport, dport=161))[:28]
    forged = bytes(IP(src=SOURCE_IP, dst="198.19.0.7", id=(value + 1) & 0xFFFF)
                   / UDP(sport=sport, dport=161))[:28]
    with make_engine([161], ["udp"]) as engine:
        assert engine.ingest(reply("198.19.0.7", ICMP(type=3, code=3) / forged)) == \
            "invalid-cookie"
        assert engine.ingest(reply("198.19.0.7", ICMP(type=3, code=3) / quote)) == "closed"
        [result] = engine.drain()
    assert (result.ip, result.port, result.status, result.icmp_type, result.icmp_code) == (
        IPv4Address("198.19.0.7"), 161, "closed", 3, 3)


def test_tcp_53_and_udp_53_are_two_results() -> None:
    sport, _value = udp_cookie("198.19.0.8", 53)
    with make_engine([53, 53], ["tcp-syn", "udp"]) as engine:
        # tcp-syn's source port comes from the target index: take it from its own probe
        frames = sent_frames(engine)
        syn = next(f for f in frames if f.haslayer(TCP) and f[IP].dst == "198.19.0.8")
        synack = reply("198.19.0.8", TCP(sport=53, dport=syn[TCP].sport, flags="SA",
                                         ack=syn[TCP].seq + 1))
        assert engine.ingest(synack) == "open"
        assert engine.ingest(reply("198.19.0.8", UDP(sport=53, dport=sport))) == "open"
        results = engine.drain()
    assert sorted((r.port, r.l4_proto) for r in results) == [(53, 6), (53, 17)]


# ---- payloads, grammar ----------------------------------------------------------------

def test_builtin_payloads_are_the_protocols_requests() -> None:
    dns = DNS(BUILTIN["dns"].data)
    assert dns.qd[0].qname == b"version.bind."
    assert (dns.qd[0].qtype, dns.qd[0].qclass) == (16, 3)
    assert NTPHeader(BUILTIN["ntp"].data).mode == 3
    assert BUILTIN["ntp-version"].data[:2] == b"\x16\x02"  # mode 6, READVAR, never monlist
    for name, version in (("snmp", 1), ("snmp-v1", 0)):
        snmp = SNMP(BUILTIN[name].data)
        assert snmp.version.val == version and snmp.community.val == b"public"
        assert snmp.PDU.varbindlist[0].oid.val == "1.3.6.1.2.1.1.1.0"
    assert BUILTIN["ssdp"].data.startswith(b"M-SEARCH * HTTP/1.1\r\n")
    assert BUILTIN["netbios"].data[12:14] == b"\x20C"  # the name "*" first-level encoded
    assert NBNSHeader(BUILTIN["netbios"].data).QDCOUNT == 1
    assert BUILTIN["dns"].echoes_id and BUILTIN["netbios"].echoes_id


def test_payload_names_and_files(tmp_path) -> None:
    assert parse_payload_name("5353:dns") == (5353, BUILTIN["dns"])
    assert parse_payload_name("ssdp") == (None, BUILTIN["ssdp"])
    with pytest.raises(ConfigError, match="unknown UDP payload '²:dns'"):
        parse_payload_name("²:dns")  # not a port: a name, and an unknown one
    with pytest.raises(ConfigError, match=r"unknown UDP payload 'chargen' \(accepted: dns, ntp"):
        parse_payload_name("19:chargen")
    raw = tmp_path / "probe.bin"
    raw.write_bytes(b"\x00\xffhello")
    assert parse_payload_file(f"7:{raw}")[1].data == b"\x00\xffhello"
    hexfile = tmp_path / "probe.hex"
    hexfile.write_text("de ad\nbe ef\n")
    assert parse_payload_file(str(hexfile))[1].data == b"\xde\xad\xbe\xef"
    hexfile.write_text("xyz")
    with pytest.raises(ConfigError, match="is not hex"):
        parse_payload_file(str(hexfile))


def test_port_grammar_and_probe_choice() -> None:
    assert parse_port_spec("80,U:53,U:123-124,T:443") == ((80, 443), (53, 123, 124))
    config = ScanConfig.parse(["198.19.0.0/30"], ports="80,U:53,U:7", ping=True)
    assert config.entries == (("tcp-syn", 80), ("udp", 7), ("udp", 53), ("icmp-echo", 0))
    assert config.probe_types == ("tcp-syn", "icmp-echo", "udp")
    assert config.udp_ports_without_payload == (7,)
    assert config.probe_count == 16
    assert ScanConfig.parse(["198.19.0.1"], ports="53", probe="udp").entries == (("udp", 53),)
    with pytest.raises(ConfigError, match="probe icmp-echo takes no ports"):
        ScanConfig.parse(["198.19.0.1"], ports="80", probe="icmp-echo")
    with pytest.raises(ConfigError, match="bad UDP capture length 500"):
        ScanConfig.parse(["198.19.0.1"], ports="U:53", udp_capture_bytes=500)


def test_lab_dns_responder_answers_version_bind() -> None:
    query = bytes(DNS(id=0x4242, qd=DNS(BUILTIN["dns"].data).qd))
    answer = DNS(dns_answer(query))
    assert answer.id == 0x4242 and answer.qr == 1 and answer.an[0].rdata == [b"pyscan-lab"]
    assert dns_answer(b"\x00" * 5) is None
