"""The probe-module seam: the Python registry against the C table, the engine's probe choice,
the tcp-syn module's frames against the template, the engine's target order, and the one
reply parser's acceptance rules (reply_parse.h)."""

from __future__ import annotations

import ipaddress

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether

from pyscan.native import (
    Engine,
    ReplyView,
    build_syn,
    cookie,
    null_captured,
    open_null_tx,
    probe_by_name,
    probe_count,
    probe_name,
    reply_parse,
)
from pyscan.probes import PROBES, get_probe

KEY = bytes(range(16))
SOURCE_IP = "198.18.0.1"
SOURCE_MAC = "02:00:00:00:00:01"
GATEWAY_MAC = "02:00:00:00:00:02"
SOURCE_PORTS = range(40000, 40016)


def make_engine(**kw: object) -> Engine:
    args: dict[str, object] = dict(
        cookie_key=KEY, seed=11, source_ip=SOURCE_IP, source_mac=SOURCE_MAC,
        gateway_mac=GATEWAY_MAC, ranges=[("198.19.0.0", "198.19.0.63")], ports=[22, 80, 443],
        source_ports=SOURCE_PORTS)
    args.update(kw)
    return Engine(**args)  # type: ignore[arg-type]


# ---- registry and table -------------------------------------------------------------------

def test_python_registry_ids_name_the_same_c_modules() -> None:
    assert probe_count() == len(PROBES)
    assert {probe.id: name for name, probe in PROBES.items()} == {
        i: probe_name(i) for i in range(probe_count())}
    assert all(probe.name == name for name, probe in PROBES.items())


def test_c_table_has_no_row_past_its_count() -> None:
    assert probe_name(probe_count()) is None
    assert probe_name(255) is None
    assert probe_by_name("tcp-syn") == 0
    assert probe_by_name("icmp-echo") == 1
    assert probe_by_name("udp") == 2
    assert probe_by_name("sctp-init") is None


def test_get_probe_names_the_accepted_probes() -> None:
    assert get_probe("tcp-syn").protocol == "tcp"
    assert get_probe("udp").protocol == "udp"
    assert get_probe("icmp-echo").protocol == "icmp"
    with pytest.raises(ValueError, match=r"probe 'sctp' is unknown: accepted icmp-echo, "
                                         r"tcp-syn, udp"):
        get_probe("sctp")


def test_engine_refuses_an_unknown_probe_id_with_the_id() -> None:
    with pytest.raises(ValueError, match=r"probe id 7 is unknown \(known: 0\.\.5"):
        make_engine(probe=7)
    with pytest.raises(ValueError, match=r"probe 'syn' is unknown: accepted tcp-syn, "
                                         r"icmp-echo, udp, tcp-syn6, icmp-echo6, udp6"):
        make_engine(probe="syn")


def test_probe_by_name_and_by_id_build_the_same_frames() -> None:
    frames = []
    for probe in ("tcp-syn", 0):
        with make_engine(probe=probe) as engine:
            ring = open_null_tx(capture_frames=192)
            engine.run_tx(0, ring)
            frames.append(null_captured(ring))
    assert len(frames[0]) == 192 and frames[0] == frames[1]


# ---- TX through the module ----------------------------------------------------------------

def test_module_frames_equal_the_template_with_the_cookie() -> None:
    """fill_batch via the probe table writes exactly build_syn's bytes (template.h) for the
    target the engine lists, with the SipHash cookie as the sequence number."""
    with make_engine(ttl=50, mss=1200, window=2048) as engine:
        ring = open_null_tx(capture_frames=192)
        engine.run_tx(0, ring)
        frames = null_captured(ring)
        targets = engine.targets(0, 0, 1000)
    assert len(frames) == len(targets) == 192
    for frame, (address, port) in zip(frames, targets, strict=True):
        tcp = Ether(frame)[TCP]
        ip_id = Ether(frame)[IP].id
        daddr = ipaddress.IPv4Address(address)
        assert tcp.sport in SOURCE_PORTS and tcp.dport == port
        seq = cookie(KEY, SOURCE_IP, daddr, tcp.sport, port)
        assert frame == build_syn(SOURCE_MAC, GATEWAY_MAC, SOURCE_IP, daddr, tcp.sport, port,
                                  seq, ip_id, ttl=50, mss=1200, window=2048)


@pytest.mark.parametrize("shard", [(0, 1), (1, 3)])
def test_targets_follow_the_permutation_of_each_thread(shard: tuple[int, int]) -> None:
    with make_engine(tx_threads=2, shard=shard) as engine:
        rings = [open_null_tx(capture_frames=1000) for _ in range(2)]
        for t in range(2):
            engine.run_tx(t, rings[t])
            sent = [(int(ipaddress.IPv4Address(Ether(f)[IP].dst)), Ether(f)[TCP].dport)
                    for f in null_captured(rings[t])]
            listed = engine.targets(t, 0, 10_000)
            assert listed == sent and len(listed) == engine.thread_total(t)
            assert engine.targets(t, 5, 3) == listed[5:8]
            assert engine.targets(t, len(listed), 10) == []


# ---- RX: the parser -----------------------------------------------------------------------

def parse(frame: bytes, length: int | None = None) -> tuple[str, ReplyView]:
    view = reply_parse(frame, length)
    return view.outcome, view


L2 = Ether(src=GATEWAY_MAC, dst=SOURCE_MAC)


def test_parser_views_a_tcp_reply() -> None:
    frame = bytes(L2 / IP(src="198.19.0.9", dst=SOURCE_IP, ttl=57)
                  / TCP(sport=443, dport=40001, flags="SA", seq=5, ack=77))
    rc, v = parse(frame)
    assert rc == "ok"
    assert (v.family, v.l4_proto, v.ttl, v.vlan_tags, v.l4_complete) == (4, 6, 57, 0, 1)
    assert v.saddr[:4] == ipaddress.IPv4Address("198.19.0.9").packed
    assert v.saddr[4:] == bytes(12)
    assert (v.sport, v.dport, v.tcp_seq, v.tcp_ack, v.tcp_flags, v.tcp_doff) == (
        443, 40001, 5, 77, 0x12, 5)
    assert v.l4_len == 20 and v.l3_len == 40


def test_parser_skips_two_vlan_tags_but_not_three() -> None:
    inner = IP(src="198.19.0.9", dst=SOURCE_IP) / TCP(flags="SA")
    rc, v = parse(bytes(L2 / Dot1AD(vlan=3) / Dot1Q(vlan=5) / inner))
    assert rc == "ok" and v.vlan_tags == 2
    rc, _ = parse(bytes(L2 / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / inner))
    assert rc == "not-ip"


def test_parser_trusts_no_length_field() -> None:
    frame = bytes(L2 / IP(src="198.19.0.9", dst=SOURCE_IP) / TCP(flags="SA"))
    assert parse(frame, 13)[0] == "malformed"
    assert parse(frame, 14 + 19)[0] == "malformed"
    # total length says 40 but only 39 bytes of IP were captured
    assert parse(frame, len(frame) - 1)[0] == "malformed"
    # IHL beyond the total length
    bad_ihl = bytearray(frame)
    bad_ihl[14] = 0x4F
    assert parse(bytes(bad_ihl))[0] == "malformed"
    # Ethernet padding after the IP packet is ignored, not counted as L4
    rc, v = parse(frame + bytes(20))
    assert rc == "ok" and v.l4_len == 20


def test_parser_refuses_fragments_and_flags_short_l4_headers() -> None:
    for ip in (IP(src="198.19.0.9", dst=SOURCE_IP, flags="MF"),
               IP(src="198.19.0.9", dst=SOURCE_IP, frag=3)):
        assert parse(bytes(L2 / ip / TCP()))[0] == "malformed"
    short = bytes(L2 / IP(src="198.19.0.9", dst=SOURCE_IP, proto=6) / (b"\x00" * 12))
    rc, v = parse(short)
    assert rc == "ok" and not v.l4_complete and v.l4_len == 12


def test_parser_views_udp_and_icmp_headers_for_later_modules() -> None:
    rc, v = parse(bytes(L2 / IP(src="198.19.0.9", dst=SOURCE_IP) / UDP(sport=53, dport=40002)))
    assert rc == "ok" and (v.l4_proto, v.sport, v.dport, v.l4_complete) == (
        17, 53, 40002, 1)
    rc, v = parse(bytes(L2 / IP(src="198.19.0.9", dst=SOURCE_IP) / ICMP(type=3, code=13)))
    assert rc == "ok" and (v.l4_proto, v.icmp_type, v.icmp_code) == (1, 3, 13)


def test_parser_accepts_no_truncated_prefix_of_a_reply() -> None:
    frame = bytes(L2 / Dot1Q(vlan=5) / IP(src="198.19.0.9", dst=SOURCE_IP)
                  / TCP(flags="SA", options=[("MSS", 1460)]))
    for cut in range(len(frame) + 1):
        rc, v = parse(frame[:cut])  # a fresh buffer of exactly cut bytes each time
        if rc == "ok":
            assert cut == len(frame) and v.l4_complete


# ---- RX: the module's result record ---------------------------------------------------------

def test_results_carry_family_and_protocol() -> None:
    with make_engine() as engine:
        ack = (cookie(KEY, SOURCE_IP, "198.19.0.5", 40003, 80) + 1) & 0xFFFFFFFF
        frame = bytes(L2 / IP(src="198.19.0.5", dst=SOURCE_IP)
                      / TCP(sport=80, dport=40003, flags="SA", ack=ack))
        assert engine.ingest(frame) == "open"
        (result,) = engine.drain()
    assert result.ip == ipaddress.IPv4Address("198.19.0.5")
    assert (result.port, result.l4_proto, result.icmp_type, result.icmp_code) == (80, 6, 0, 0)
