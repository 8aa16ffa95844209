"""What a shard task and the client say to each other through the scan's Dask queue.

Results travel in packed batches (16 bytes a result, one message per batch) rather than one
message each: the queue lives on the scheduler, so messages, not bytes, are what costs.
Messages are plain msgpack-able dicts (Dask queues carry msgpack, not pickle).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from ipaddress import IPv4Address

from pyscan.scanner import Result

__all__ = ["RESULT_SIZE", "pack_results", "to_result", "unpack_raw", "unpack_results"]

_RESULT = struct.Struct("<IHBBd")  # address, port, status (1 open / 0 closed), ttl, timestamp
RESULT_SIZE = _RESULT.size


def pack_results(results: Iterable[Result]) -> bytes:
    packed = bytearray()
    for result in results:
        packed += _RESULT.pack(int(result.ip), result.port, result.status == "open",
                               result.ttl, result.timestamp)
    return bytes(packed)


def unpack_raw(packed: bytes) -> Iterator[tuple[int, int, int, int, float]]:
    """(address as int, port, open flag, ttl, timestamp): the client de-duplicates on the
    first two before building any object."""
    if len(packed) % RESULT_SIZE:
        raise ValueError(f"result batch of {len(packed)} bytes is not a multiple of "
                         f"{RESULT_SIZE}")
    return _RESULT.iter_unpack(packed)


def unpack_results(packed: bytes) -> Iterator[Result]:
    for address, port, is_open, ttl, timestamp in unpack_raw(packed):
        yield to_result(address, port, is_open, ttl, timestamp)


def to_result(address: int, port: int, is_open: int, ttl: int, timestamp: float) -> Result:
    return Result(ip=IPv4Address(address), port=port, status="open" if is_open else "closed",
                  ttl=ttl, timestamp=timestamp)
