"""Reply checksums: the engine verifies the IPv4 header and L4 checksums before a probe module
classifies a frame, and counts the ones that fail (rx_bad_checksum) instead of reporting them.
Checksums here are computed by scapy, independently of pyscan."""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from pyscan.native import ENGINE_STATS_FIELDS, Engine, reply_checksums_ok
from tests.corpus.replies.frames import (
    GATEWAY_MAC,
    KEY,
    SCANNER,
    SCANNER_MAC,
    SOURCE_PORTS,
    TARGET,
    bad_ip_checksum,
    bad_tcp_checksum,
    corpus,
    stored,
    tcp_reply,
    traits,
)


def make_engine() -> Engine:
    return Engine(cookie_key=KEY, seed=1, source_ip=str(SCANNER), source_mac=SCANNER_MAC,
                  gateway_mac=GATEWAY_MAC, ranges=[("198.19.0.0", "198.19.255.255")],
                  ports=[22, 443], source_ports=SOURCE_PORTS)


def test_bad_checksum_counter_is_an_engine_stat() -> None:
    # Read by name from struct pyscan_engine_stats: a name cffi does not know raises here.
    assert "rx_bad_checksum" in ENGINE_STATS_FIELDS
    assert make_engine().stats()["rx_bad_checksum"] == 0


@pytest.mark.parametrize("flags", ["SA", "RA"])
def test_valid_cookie_with_bad_ip_checksum_is_counted_not_reported(flags: str) -> None:
    engine = make_engine()
    frame = bad_ip_checksum(bytes(tcp_reply(flags)))
    assert engine.ingest(frame) == "bad-checksum"
    stats = engine.stats()
    assert stats["rx_bad_checksum"] == 1 and stats["rx_frames"] == 1
    assert stats["rx_open"] == stats["rx_closed"] == stats["rx_ours"] == 0
    assert engine.drain() == []


@pytest.mark.parametrize("flags", ["SA", "RA"])
def test_valid_cookie_with_bad_tcp_checksum_is_counted_not_reported(flags: str) -> None:
    engine = make_engine()
    assert engine.ingest(bad_tcp_checksum(bytes(tcp_reply(flags)))) == "bad-checksum"
    assert engine.stats()["rx_bad_checksum"] == 1
    assert engine.drain() == []
    # the same reply intact is still reported: a bad copy does not poison the seen set
    assert engine.ingest(bytes(tcp_reply(flags))) in ("open", "closed")
    assert len(engine.drain()) == 1


def test_correct_checksums_are_reported() -> None:
    engine = make_engine()
    assert engine.ingest(bytes(tcp_reply("SA"))) == "open"
    assert engine.ingest(bytes(tcp_reply("RA", sport=22))) == "closed"
    assert engine.stats()["rx_bad_checksum"] == 0


def test_ethernet_padding_is_outside_the_checksums() -> None:
    # A 54-byte reply is padded to the 60-byte Ethernet minimum; the padding is not part of
    # the IPv4 packet (total length), so garbage there must not fail the TCP checksum.
    engine = make_engine()
    frame = bytes(tcp_reply("RA")) + b"\xa5\x5a\xff\x01\x02\x03"
    assert engine.ingest(frame) == "closed"
    assert engine.stats()["rx_bad_checksum"] == 0


def test_checksum_with_ip_options_and_tcp_payload_of_odd_length() -> None:
    engine = make_engine()
    frame = bytes(tcp_reply(ip={"options": [b"\x94\x04\x00\x00"]}, payload=b"odd"))
    assert engine.ingest(frame) == "open"
    assert engine.ingest(bad_tcp_checksum(bytes(tcp_reply(sport=80, payload=b"odd")))) \
        == "bad-checksum"


def test_one_bit_anywhere_in_the_packet_fails_a_checksum() -> None:
    frame = bytes(tcp_reply())
    for bit in range(14 * 8, len(frame) * 8):
        flipped = bytearray(frame)
        flipped[bit // 8] ^= 1 << (bit % 8)
        ok = reply_checksums_ok(bytes(flipped))
        assert ok is None or ok is False, f"bit {bit} flipped and both checksums still verify"


def test_trusted_l4_skips_only_the_l4_checksum() -> None:
    frame = bad_tcp_checksum(bytes(tcp_reply()))
    assert reply_checksums_ok(frame) is False
    assert reply_checksums_ok(frame, l4_trusted=True) is True
    assert reply_checksums_ok(bad_ip_checksum(bytes(tcp_reply())), l4_trusted=True) is False


def _l2() -> Ether:
    return Ether(src=GATEWAY_MAC, dst=SCANNER_MAC)


def test_udp_and_icmp_checksums() -> None:
    udp = bytes(_l2() / IP(src=str(TARGET), dst=str(SCANNER)) / UDP(sport=53, dport=40001)
                / Raw(b"abc"))
    assert reply_checksums_ok(udp) is True
    assert reply_checksums_ok(udp[:40] + b"\0\0" + udp[42:]) is True  # UDP over IPv4: 0 = none
    assert reply_checksums_ok(udp[:-1] + bytes([udp[-1] ^ 1])) is False
    icmp = bytes(_l2() / IP(src=str(TARGET), dst=str(SCANNER)) / ICMP(type=0) / Raw(b"ping"))
    assert reply_checksums_ok(icmp) is True
    assert reply_checksums_ok(icmp[:-1] + bytes([icmp[-1] ^ 0x80])) is False


def test_unparsable_frames_have_no_checksum_verdict() -> None:
    assert reply_checksums_ok(b"") is None
    assert reply_checksums_ok(bytes(tcp_reply())[:30]) is None


def test_stored_corpus_is_what_the_builder_makes() -> None:
    assert stored() == corpus(), \
        "tests/corpus/replies/*.bin is stale: run python -m tests.corpus.replies.frames --write"


def test_engine_checksum_verdict_matches_an_independent_one_on_the_corpus() -> None:
    for name, frame in corpus().items():
        t = traits(frame)
        if t is None:
            continue
        outcome = make_engine().ingest(frame)
        bad = not (t.ip_checksum_ok and t.tcp_checksum_ok)
        assert (outcome == "bad-checksum") == bad, f"{name}: engine says {outcome}"
