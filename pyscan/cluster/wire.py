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


# The optional Result fields that travel in the record, in record order: (name, presence
# flag, record index). Encoding and decoding both walk this one table.
_OPTIONAL: tuple[tuple[str, int, int], ...] = tuple(
    (name, flag, RawRecord._fields.index(name)) for name, flag in (
        ("icmp_type", ICMP_TYPE), ("icmp_code", ICMP_CODE), ("wscale", WSCALE),
        ("window", WINDOW), ("mss", MSS), ("ts_val", TS_VAL), ("ts_ecr", TS_ECR),
        ("rtt", RTT)))
_TIMESTAMP = RawRecord._fields.index("timestamp")
_BEFORE_TIMESTAMP = sum(index < _TIMESTAMP for _name, _flag, index in _OPTIONAL)
# _pack_one lays them out as flags, the optional ones before the timestamp, the timestamp,
# the rest, the payload length: the table must match _RECORD's order.
assert [index for _name, _flag, index in _OPTIONAL] == [
    *range(RawRecord._fields.index("flags") + 1, _TIMESTAMP),
    *range(_TIMESTAMP + 1, RawRecord._fields.index("payload_length"))]


def _code(table: dict[str, int], kind: str, value: str) -> int:
    try:
        return table[value]
    except KeyError:
        raise ValueError(f"a result with {kind} {value!r} cannot travel in a cluster batch "
                         f"(accepted: {', '.join(table)})") from None


def _pack_one(result: Result) -> bytes:
    flags = IPV6 if isinstance(result.ip, IPv6Address) else 0
    optional = []
    for name, flag, _index in _OPTIONAL:
        value = getattr(result, name)
        if value is not None:
            flags |= flag
        optional.append(value or 0)
    sack, payload = result.sack_permitted, result.payload
    if sack is not None:
        flags |= SACK | (SACK_SET if sack else 0)
    if payload is not None:
        flags |= PAYLOAD
    address = int(result.ip)
    return _RECORD.pack(
        address >> 64, address & _MASK64, result.port,
        _code(_STATUS_CODE, "status", result.status),
        _code(_PROTOCOL_CODE, "protocol", result.protocol), result.ttl, flags,
        *optional[:_BEFORE_TIMESTAMP], result.timestamp, *optional[_BEFORE_TIMESTAMP:],
        len(payload) if payload else 0)


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
    high, low, port, status, protocol, ttl, flags = record[:7]
    ip = IPv6Address(high << 64 | low) if flags & IPV6 else IPv4Address(low)
    timestamp = record[_TIMESTAMP]
    if not flags & ~IPV6:  # the bulk: a closed or open result with nothing optional
        return Result(ip, port, STATUSES[status], ttl, timestamp,  # type: ignore[arg-type]
                      protocol=PROTOCOLS[protocol])
    present = {name: record[index] for name, flag, index in _OPTIONAL if flags & flag}
    return Result(
        ip, port, STATUSES[status], ttl, timestamp,  # type: ignore[arg-type]
        sack_permitted=bool(flags & SACK_SET) if flags & SACK else None,
        protocol=PROTOCOLS[protocol], payload=payload, **present)


def unpack_results(packed: bytes) -> Iterator[Result]:
    for record, payload in unpack_raw(packed):
        yield to_result(record, payload)
