"""Differential fuzzer: the C reply parser + classifier against the XDP filter (through
BPF_PROG_TEST_RUN) and af-packet's classic filter, on mutations of the shared reply corpus.

Mutations aim at the fields the filters decide on (ethertype, version/IHL, total length,
fragment bits, protocol, destination, ports, ack, data offset, flags), plus bit flips,
truncation and padding; half of the mutants get both checksums recomputed so they get past
the C side's checksum check and reach the classifier. A disagreement that
tests/corpus/replies/agreement.py does not document is a failure, and so is a C checksum
verdict that differs from the independent one of tests/corpus/replies/frames.traits(). Needs
root (BPF)."""

from __future__ import annotations

import os
import struct
from typing import Any

from hypothesis import strategies as st

from pyscan.native import reply_checksums_ok
from tests.corpus.replies import agreement
from tests.corpus.replies.frames import stored

# Offsets in an untagged frame of the fields the filters look at.
FIELD_OFFSETS = (12, 13, 14, 16, 17, 20, 21, 23, 30, 31, 32, 33, 34, 35, 36, 37, 42, 43, 44,
                 45, 46, 47)


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def refresh_checksums(frame: bytes) -> bytes:
    """Both checksums recomputed where the headers allow it; the frame unchanged otherwise."""
    out = bytearray(frame)
    at = 14
    if len(out) < at:
        return frame
    ethertype = int.from_bytes(out[12:14], "big")
    while ethertype in (0x8100, 0x88A8) and len(out) >= at + 4:
        ethertype = int.from_bytes(out[at + 2:at + 4], "big")
        at += 4
    if ethertype != 0x0800 or len(out) < at + 20:
        return frame
    ihl, total = (out[at] & 15) * 4, int.from_bytes(out[at + 2:at + 4], "big")
    if ihl < 20 or len(out) < at + ihl:
        return frame
    out[at + 10:at + 12] = b"\0\0"
    out[at + 10:at + 12] = (~_fold(_sum(bytes(out[at:at + ihl]))) & 0xFFFF).to_bytes(2, "big")
    l4 = at + ihl
    end = at + total
    if out[at + 9] == 6 and ihl <= total <= len(out) - at and end - l4 >= 18:
        out[l4 + 16:l4 + 18] = b"\0\0"
        pseudo = bytes(out[at + 12:at + 20]) + bytes([0, 6]) + (end - l4).to_bytes(2, "big")
        value = ~_fold(_sum(pseudo + bytes(out[l4:end]))) & 0xFFFF
        out[l4 + 16:l4 + 18] = value.to_bytes(2, "big")
    return bytes(out)


SEEDS = list(stored().values())

mutation = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(FIELD_OFFSETS), st.integers(0, 255)),
    st.tuples(st.just("set"), st.integers(0, 127), st.integers(0, 255)),
    st.tuples(st.just("flip"), st.integers(0, 127), st.integers(0, 7)),
    st.tuples(st.just("cut"), st.integers(0, 127), st.just(0)),
    st.tuples(st.just("pad"), st.integers(1, 40), st.integers(0, 255)),
)


def mutate(seed: bytes, steps: list[tuple[str, int, int]], refresh: bool) -> bytes:
    frame = bytearray(seed)
    for kind, at, value in steps:
        if kind == "pad":
            frame += bytes([value]) * at
        elif kind == "cut":
            del frame[at:]
        elif at < len(frame):
            frame[at] = value if kind == "set" else frame[at] ^ (1 << value)
    return refresh_checksums(bytes(frame)) if refresh else bytes(frame)


frames = st.builds(mutate, st.sampled_from(SEEDS), st.lists(mutation, max_size=4),
                   st.booleans())

_filters: list[Any] = []


def _open_filters() -> tuple[agreement.ReplyFilter, agreement.ClassicFilter]:
    if not _filters:
        _filters.append(agreement.open_xdp_filter().__enter__())
        _filters.append(agreement.ClassicFilter())
    return _filters[0], _filters[1]


def close() -> None:
    if _filters:
        _filters[0].close()
        _filters.clear()


def check_frame(frame: bytes) -> None:
    verdicts = agreement.judge(frame, *_open_filters())
    problems, _ = agreement.disagreements(frame, verdicts)
    assert not problems, problems[0]
    c_checksums = reply_checksums_ok(frame)
    if verdicts.traits is not None and c_checksums is not None:
        independent = verdicts.traits.ip_checksum_ok and verdicts.traits.tcp_checksum_ok
        assert c_checksums == independent, \
            f"C says checksums {'verify' if c_checksums else 'fail'}, {verdicts.traits}"


def available() -> str | None:
    """Why this fuzzer cannot run here, or None."""
    return None if os.geteuid() == 0 else "needs root to load the XDP filter"
