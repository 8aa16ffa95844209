"""What a shard task and the client say to each other through the scan's Dask queue.

Results travel in packed batches rather than one message each: the queue lives on the
scheduler, so messages, not bytes, are what costs. Messages are plain msgpack-able dicts
(Dask queues carry msgpack, not pickle).

A batch carries every field of `pyscan.Result`, so a cluster scan writes what a single-host
scan writes: a record count, then fixed-size records (struct `_RECORD`, decoded with one
`iter_unpack`), then the UDP reply bytes of the records that have some, in record order.
A field that is None has its presence bit clear in `flags`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address, IPv6Address
from typing import Any, NamedTuple

from pyscan.scanner import Result

__all__ = ["PROTOCOLS", "RECORD_SIZE", "STATUSES", "RawRecord", "pack_results",
           "pair_key", "to_result", "unpack_raw", "unpack_results"]

# address (two 64-bit halves: high, low; IPv4 in the low one), port, status, protocol, ttl,
# flags, icmp type, icmp code, wscale, window, mss, ts_val, ts_ecr, timestamp, rtt, payload
# length
_RECORD = struct.Struct("<QQHBBBHBBBHHIIddH")
_COUNT = struct.Struct("<I")
RECORD_SIZE = _RECORD.size

STATUSES = ("open", "closed", "up", "unreachable")
PROTOCOLS = ("tcp", "udp", "icmp")
_STATUS_CODE = {name: code for code, name in enumerate(STATUSES)}
_PROTOCOL_CODE = {name: code for code, name in enumerate(PROTOCOLS)}

# flags: which optional Result fields are present (and the one boolean's value)
IPV6, WINDOW, MSS, WSCALE, SACK, SACK_SET, TS_VAL, TS_ECR, RTT, ICMP_TYPE, ICMP_CODE, \
    PAYLOAD = (1 << bit for bit in range(12))
_MASK64 = (1 << 64) - 1


class RawRecord(NamedTuple):
    """One record as `_RECORD` unpacks it (the client reads plain tuples by these indices)."""

    address_high: int
    address_low: int
    port: int
    status: int
    protocol: int
    ttl: int
    flags: int
    icmp_type: int
    icmp_code: int
    wscale: int
    window: int
    mss: int
    ts_val: int
    ts_ecr: int
    timestamp: float
    rtt: float
    payload_length: int


def _code(table: dict[str, int], kind: str, value: str) -> int:
    try:
        return table[value]
    except KeyError:
        raise ValueError(f"a result with {kind} {value!r} cannot travel in a cluster batch "
                         f"(accepted: {', '.join(table)})") from None


# _pack_one and to_result spell each optional field out on purpose: they run once per result
# (to_result on the one client for every worker), and a table of (field, flag, index) walked
# with getattr / a dict of keywords measured 2.1x slower to pack, 1.26x to unpack
# (docs/_drafts/pydup.md).
def _pack_one(result: Result) -> bytes:
    flags = IPV6 if isinstance(result.ip, IPv6Address) else 0
    window, mss, wscale, sack = result.window, result.mss, result.wscale, result.sack_permitted
    ts_val, ts_ecr, rtt = result.ts_val, result.ts_ecr, result.rtt
    icmp_type, icmp_code, payload = result.icmp_type, result.icmp_code, result.payload
    if window is not None:
        flags |= WINDOW
    if mss is not None:
        flags |= MSS
    if wscale is not None:
        flags |= WSCALE
    if sack is not None:
        flags |= SACK | (SACK_SET if sack else 0)
    if ts_val is not None:
        flags |= TS_VAL
    if ts_ecr is not None:
        flags |= TS_ECR
    if rtt is not None:
        flags |= RTT
    if icmp_type is not None:
        flags |= ICMP_TYPE
    if icmp_code is not None:
        flags |= ICMP_CODE
    if payload is not None:
        flags |= PAYLOAD
    address = int(result.ip)
    return _RECORD.pack(
        address >> 64, address & _MASK64, result.port,
        _code(_STATUS_CODE, "status", result.status),
        _code(_PROTOCOL_CODE, "protocol", result.protocol), result.ttl, flags,
        icmp_type or 0, icmp_code or 0, wscale or 0, window or 0, mss or 0, ts_val or 0,
        ts_ecr or 0, result.timestamp, rtt or 0.0, len(payload) if payload else 0)


def pack_results(results: Iterable[Result]) -> bytes:
    records, payloads = bytearray(), bytearray()
    count = 0
    for result in results:
        records += _pack_one(result)
        if result.payload:
            payloads += result.payload
        count += 1
    return _COUNT.pack(count) + bytes(records) + bytes(payloads)


def unpack_raw(packed: bytes) -> Iterator[tuple[tuple[Any, ...], bytes | None]]:
    """Each record (a plain tuple in RawRecord's order) with its payload (None when the
    result had none): the client de-duplicates on `pair_key` before building any object."""
    if len(packed) < _COUNT.size:
        raise ValueError(f"result batch of {len(packed)} bytes has no record count")
    (count,) = _COUNT.unpack_from(packed)
    end = _COUNT.size + count * RECORD_SIZE
    if len(packed) < end:
        raise ValueError(f"result batch of {len(packed)} bytes is too short for its "
                         f"{count} records of {RECORD_SIZE} bytes")
    offset = end
    for record in _RECORD.iter_unpack(memoryview(packed)[_COUNT.size:end]):
        payload = None
        if record[6] & PAYLOAD:
            payload = packed[offset:offset + record[16]]
            offset += record[16]
        yield record, payload
    if offset != len(packed):
        raise ValueError(f"result batch of {len(packed)} bytes: its records account for "
                         f"{offset}")


def pair_key(record: tuple[Any, ...]) -> int:
    """What a scan reports once: (address, port, protocol, family), as one int (small in a
    set: an IPv4 key fits in 60 bits)."""
    key: int = (record[1] << 16 | record[2]) << 3 | record[4] << 1 | (record[6] & IPV6)
    return key | record[0] << 83 if record[0] else key


def to_result(record: tuple[Any, ...], payload: bytes | None) -> Result:
    (high, low, port, status, protocol, ttl, flags, icmp_type, icmp_code, wscale, window, mss,
     ts_val, ts_ecr, timestamp, rtt, _length) = record
    ip = IPv6Address(high << 64 | low) if flags & IPV6 else IPv4Address(low)
    if not flags & ~IPV6:  # the bulk: a closed or open result with nothing optional
        return Result(ip, port, STATUSES[status], ttl, timestamp,  # type: ignore[arg-type]
                      protocol=PROTOCOLS[protocol])
    return Result(
        ip, port, STATUSES[status], ttl, timestamp,  # type: ignore[arg-type]
        window=window if flags & WINDOW else None,
        mss=mss if flags & MSS else None,
        wscale=wscale if flags & WSCALE else None,
        sack_permitted=bool(flags & SACK_SET) if flags & SACK else None,
        ts_val=ts_val if flags & TS_VAL else None,
        ts_ecr=ts_ecr if flags & TS_ECR else None,
        rtt=rtt if flags & RTT else None,
        protocol=PROTOCOLS[protocol], payload=payload,
        icmp_type=icmp_type if flags & ICMP_TYPE else None,
        icmp_code=icmp_code if flags & ICMP_CODE else None)


def unpack_results(packed: bytes) -> Iterator[Result]:
    for record, payload in unpack_raw(packed):
        yield to_result(record, payload)
