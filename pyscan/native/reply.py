"""The one reply parser (reply_parse.h) as Python sees it: for tests and tools that want to
know how the data plane reads a frame, without reaching for the compiled ``lib``."""

from __future__ import annotations

from typing import NamedTuple

from pyscan.native._lib import ffi, lib

__all__ = ["REPLY_OUTCOMES", "ReplyView", "reply_checksums_ok", "reply_parse"]

REPLY_OUTCOMES = {
    int(lib.PYSCAN_REPLY_OK): "ok",
    int(lib.PYSCAN_REPLY_MALFORMED): "malformed",
    int(lib.PYSCAN_REPLY_NOT_IP): "not-ip",
}


class ReplyView(NamedTuple):
    """What ``pyscan_reply__parse`` saw; the fields past ``outcome`` mean something only when
    ``outcome == "ok"``."""

    outcome: str
    family: int
    l4_proto: int
    ttl: int
    vlan_tags: int
    l3_len: int
    l4_len: int
    l4_complete: bool
    saddr: bytes  # 16 bytes: IPv4 in the first 4, network order
    daddr: bytes
    sport: int
    dport: int
    tcp_seq: int
    tcp_ack: int
    tcp_flags: int
    tcp_doff: int
    icmp_type: int
    icmp_code: int


def reply_parse(frame: bytes, length: int | None = None) -> ReplyView:
    """Parse the first ``length`` bytes of ``frame`` (all of it by default) as a reply."""
    if length is None:
        length = len(frame)
    if not 0 <= length <= len(frame):
        raise ValueError(f"length {length} is out of range: accepted 0..{len(frame)}")
    # A buffer of exactly ``length`` bytes, so reading past it is a sanitizer-visible bug.
    buf = ffi.new("uint8_t[]", bytes(frame[:length])) if length else ffi.NULL
    view = ffi.new("struct pyscan_reply_view *")
    rc = int(lib.pyscan_reply__parse(buf, length, view))
    v = view[0]
    return ReplyView(
        REPLY_OUTCOMES.get(rc, f"unknown({rc})"), int(v.family), int(v.l4_proto), int(v.ttl),
        int(v.vlan_tags), int(v.l3_len), int(v.l4_len), bool(v.l4_complete),
        bytes(ffi.buffer(v.saddr)), bytes(ffi.buffer(v.daddr)), int(v.sport), int(v.dport),
        int(v.tcp_seq), int(v.tcp_ack), int(v.tcp_flags), int(v.tcp_doff), int(v.icmp_type),
        int(v.icmp_code))


def reply_checksums_ok(frame: bytes, *, l4_trusted: bool = False) -> bool | None:
    """``pyscan_reply__checksums_ok`` on ``frame``: whether its IPv4 header checksum and (unless
    ``l4_trusted``) its L4 checksum verify; None when the parser does not accept the frame."""
    buf = ffi.new("uint8_t[]", bytes(frame)) if frame else ffi.NULL
    view = ffi.new("struct pyscan_reply_view *")
    if int(lib.pyscan_reply__parse(buf, len(frame), view)) != int(lib.PYSCAN_REPLY_OK):
        return None
    return bool(lib.pyscan_reply__checksums_ok(view, 1 if l4_trusted else 0))
