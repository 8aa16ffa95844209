"""Cluster result batches carry every field of a Result: what a cluster scan writes is what a
single-host scan writes (status, protocol, ICMP type/code, TCP fields, UDP reply bytes)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

pytest.importorskip("distributed")

from pyscan.cluster.client import ResultMerger
from pyscan.cluster.wire import (
    RECORD_SIZE,
    pack_results,
    unpack_results,
)
from pyscan.scanner import Result

A = IPv4Address("198.19.1.2")

# One of every kind of result a scan yields, as scanner.ScanRun._result builds them.
EVERY_KIND = [
    Result(A, 443, "open", 64, 1.5e9, window=64240, mss=1460, wscale=7,
           sack_permitted=True, ts_val=4_000_000_000, ts_ecr=12345, rtt=0.000731),
    Result(A, 444, "open", 64, 1.5e9, window=29200, mss=1400, wscale=0,
           sack_permitted=False, ts_val=None, ts_ecr=None, rtt=None),
    Result(A, 22, "closed", 255, 1.75e9, window=0),
    Result(A, 23, "closed", 63, 1.75e9),
    Result(A, 8080, "unreachable", 62, 1.8e9, icmp_type=3, icmp_code=13),
    Result(A, 53, "open", 61, 1.9e9, protocol="udp", payload=b"\x12\x34\x81\x80" + bytes(60)),
    Result(A, 161, "open", 61, 1.9e9, protocol="udp", payload=b""),
    Result(A, 123, "open", 61, 1.9e9, protocol="udp", payload=None),  # snippet ring was full
    Result(A, 54, "closed", 61, 1.9e9, protocol="udp", icmp_type=3, icmp_code=3),
    Result(A, 55, "unreachable", 61, 1.9e9, protocol="udp", icmp_type=3, icmp_code=1),
    Result(IPv4Address("198.19.255.255"), 0, "up", 64, 2.0e9, protocol="icmp",
           icmp_type=0, icmp_code=0),
    Result(A, 0, "unreachable", 64, 2.0e9, protocol="icmp", icmp_type=3, icmp_code=10),
    Result(IPv6Address("2001:2::ff:1"), 443, "open", 64, 2.1e9, window=65535),
    Result(IPv6Address("2001:2::1"), 53, "open", 64, 2.1e9, protocol="udp", payload=b"v6"),
]


def test_every_status_and_protocol_round_trips_field_for_field() -> None:
    packed = pack_results(EVERY_KIND)
    payload_bytes = sum(len(r.payload or b"") for r in EVERY_KIND)
    assert len(packed) == 4 + len(EVERY_KIND) * RECORD_SIZE + payload_bytes
    back = list(unpack_results(packed))
    assert back == EVERY_KIND
    # None, False, 0 and b"" stay distinct (False == 0 would pass ==, not `is`).
    assert back[1].sack_permitted is False and back[3].sack_permitted is None
    assert back[6].payload == b"" and back[7].payload is None
    assert back[2].window == 0 and back[3].window is None
    assert [r.to_dict() for r in back] == [r.to_dict() for r in EVERY_KIND]


def test_an_empty_batch_and_a_broken_one() -> None:
    assert list(unpack_results(pack_results([]))) == []
    packed = pack_results(EVERY_KIND)
    with pytest.raises(ValueError, match="too short"):
        list(unpack_results(packed[:4 + RECORD_SIZE]))
    with pytest.raises(ValueError, match="account for"):
        list(unpack_results(packed + b"x"))
    with pytest.raises(ValueError, match="no record count"):
        list(unpack_results(b"\x01"))


def test_a_result_the_batch_cannot_name_is_refused() -> None:
    with pytest.raises(ValueError, match="protocol 'sctp'"):
        pack_results([Result(A, 1, "open", 64, 1.0, protocol="sctp")])


def test_the_client_writes_each_result_once_across_attempts() -> None:
    first = [Result(A, 80, "open", 64, 1.0),
             Result(A, 81, "closed", 64, 1.0),
             Result(A, 53, "open", 64, 1.0, protocol="udp", payload=b"a"),
             Result(A, 0, "up", 64, 1.0, protocol="icmp", icmp_type=0, icmp_code=0)]
    again = [Result(A, 80, "open", 64, 2.0),                       # a re-run attempt
             Result(A, 53, "open", 64, 2.0, protocol="udp", payload=b"b"),
             Result(A, 0, "up", 64, 2.0, protocol="icmp", icmp_type=0, icmp_code=0),
             Result(A, 53, "open", 64, 2.0),                       # TCP 53: another result
             Result(A, 82, "unreachable", 64, 2.0, icmp_type=3, icmp_code=13),
             Result(IPv6Address(f"::{A}"), 80, "open", 64, 2.0)]   # not the IPv4 address
    merger = ResultMerger()
    written = [*merger.merge(pack_results(first)), *merger.merge(pack_results(again))]
    assert written == [*first, *again[3:]]
    assert (merger.open, merger.closed, merger.unreachable, merger.duplicates) == (5, 1, 1, 3)
