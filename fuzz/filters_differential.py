"""Differential fuzzer: the C reply parser + classifiers against the XDP filter (through
BPF_PROG_TEST_RUN) and af-packet's classic filter, on mutations of the shared reply corpora,
for three scans: tcp-syn alone (frames.py, the checks of agreement.EXCEPTIONS), the three
IPv4 modules together (frames.py and modules4.py; C and XDP: pyscan.native gives the IPv4
classic program only for TCP), and the three IPv6 modules together (frames6.py, all three).

Mutations aim at the fields the filters decide on (ethertype, version/IHL, lengths, fragment
bits, protocol, destination, ports, ack / ICMP id, data offset, flags, the quoted header),
plus bit flips, truncation and padding; half of the mutants get their checksums recomputed
(IPv4 header, TCP / UDP / ICMP / ICMPv6) so they get past the C side's checksum check and
reach the classifiers. A disagreement that tests/corpus/replies/agreement.py does not
document is a failure, and so (tcp-syn scan) is a C checksum verdict that differs from the
independent one of tests/corpus/replies/frames.traits(). Needs root (BPF)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import strategies as st

from pyscan.native import Engine, ReplyFilter, afpacket_reply_filter6, reply_checksums_ok
from pyscan.probes import PROBES
from tests.corpus.replies import agreement, frames6, modules4
from tests.corpus.replies.frames import (
    GATEWAY_MAC,
    KEY,
    SCANNER,
    SCANNER_MAC,
    SOURCE_PORTS,
    fold,
    stored,
    word_sum,
)
from tests.unit.test_ipv6_classic_filter import c_outcome as ipv6_modules_outcome

# Offsets in an untagged frame of the fields the filters look at: IPv4 (12..47) and the
# IPv6 header's payload length / next header and the first L4 and quoted bytes (18..97).
FIELD_OFFSETS = (12, 13, 14, 16, 17, 20, 21, 23, 30, 31, 32, 33, 34, 35, 36, 37, 42, 43, 44,
                 45, 46, 47, 18, 19, 20, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 66, 67,
                 68, 69, 70, 71, 89, 90, 91, 92, 93, 94, 95, 96, 97)
L4_CHECKSUM_AT = {6: 16, 17: 6, 1: 2, 58: 2}


def refresh_checksums(frame: bytes) -> bytes:
    """The IPv4 header checksum and the L4 one (TCP, UDP, ICMP, ICMPv6) recomputed where the
    headers allow it; the frame unchanged otherwise."""
    family, ip, _ = agreement.layer3(frame)
    at = len(frame) - len(ip)
    out = bytearray(frame)
    if family == 4 and len(ip) >= 20:
        ihl, total, proto = (ip[0] & 15) * 4, int.from_bytes(ip[2:4], "big"), ip[9]
        if ihl < 20 or len(ip) < ihl:
            return frame
        out[at + 10:at + 12] = b"\0\0"
        value = ~fold(word_sum(bytes(out[at:at + ihl]))) & 0xFFFF
        out[at + 10:at + 12] = value.to_bytes(2, "big")
        l4, end = at + ihl, at + total
        if not ihl <= total <= len(ip):
            return bytes(out)
        pseudo = ip[12:20] + bytes([0, proto]) + (end - l4).to_bytes(2, "big")
        if proto == 1:
            pseudo = b""
    elif family == 6 and len(ip) >= 40:
        proto, l4 = ip[6], at + 40
        end = l4 + int.from_bytes(ip[4:6], "big")
        if end > len(frame):
            return frame
        pseudo = ip[8:40] + (end - l4).to_bytes(4, "big") + bytes([0, 0, 0, proto])
    else:
        return frame
    where = L4_CHECKSUM_AT.get(proto)
    if where is None or end - l4 < where + 2:
        return bytes(out)
    out[l4 + where:l4 + where + 2] = b"\0\0"
    value = ~fold(word_sum(pseudo + bytes(out[l4:end]))) & 0xFFFF
    if value == 0 and proto == 17:
        value = 0xFFFF
    out[l4 + where:l4 + where + 2] = value.to_bytes(2, "big")
    return bytes(out)


def _ipv4_modules_outcome(frame: bytes) -> str:
    with Engine(cookie_key=KEY, seed=1, source_ip=str(SCANNER), source_mac=SCANNER_MAC,
                gateway_mac=GATEWAY_MAC, ranges=[("0.0.0.0", "255.255.255.255")],
                ports=modules4.ENGINE_PORTS, port_probes=modules4.ENGINE_PROBES,
                source_ports=SOURCE_PORTS, probe_args=modules4.engine_probe_args()) as engine:
        return engine.ingest(frame)


class Classic6(agreement.ClassicFilter):
    """af-packet's IPv6 socket filter for every IPv6 module."""

    def __init__(self) -> None:
        super().__init__()
        code = afpacket_reply_filter6(frames6.SOURCE_PORTS)
        self._code = agreement.ctypes.create_string_buffer(code, len(code))


@dataclass(frozen=True)
class Scan:
    name: str
    seeds: tuple[bytes, ...]
    c_outcome: Callable[[bytes], str]
    open_xdp: Callable[[], ReplyFilter]
    classic: Callable[[], agreement.ClassicFilter] | None
    exceptions: tuple[agreement.Exception_, ...]


def _ids(*names: str) -> tuple[int, ...]:
    return tuple(PROBES[n].id for n in names)


SCANS = (
    Scan("tcp-syn", tuple(stored().values()), agreement.c_outcome, agreement.open_xdp_filter,
         agreement.ClassicFilter, agreement.EXCEPTIONS),
    Scan("ipv4-modules",
         tuple(stored().values()) + tuple(f for f, _ in modules4.outcomes().values()),
         _ipv4_modules_outcome,
         lambda: ReplyFilter(KEY, scanner_ip=SCANNER, ports=SOURCE_PORTS,
                             probe=_ids("tcp-syn", "icmp-echo", "udp")),
         None, agreement.module_exceptions(SCANNER.packed)),
    Scan("ipv6-modules", tuple(row.frame for row in frames6.rows().values()),
         ipv6_modules_outcome,
         lambda: ReplyFilter(frames6.KEY, ports=frames6.SOURCE_PORTS,
                             probe=_ids("tcp-syn6", "icmp-echo6", "udp6")),
         Classic6, agreement.module_exceptions(frames6.SCANNER.packed)),
)
BY_NAME = {scan.name: scan for scan in SCANS}
SEEDS = [(scan.name, frame) for scan in SCANS for frame in scan.seeds]

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


def _mutant(seed: tuple[str, bytes], steps: list[tuple[str, int, int]],
            refresh: bool) -> tuple[str, bytes]:
    return seed[0], mutate(seed[1], steps, refresh)


frames = st.builds(_mutant, st.sampled_from(SEEDS), st.lists(mutation, max_size=4),
                   st.booleans())

_filters: dict[str, tuple[ReplyFilter, agreement.ClassicFilter | None]] = {}


def _open_filters(scan: Scan) -> tuple[ReplyFilter, agreement.ClassicFilter | None]:
    if scan.name not in _filters:
        xdp = scan.open_xdp()
        _filters[scan.name] = (xdp, scan.classic() if scan.classic is not None else None)
    return _filters[scan.name]


def close() -> None:
    for xdp, _ in _filters.values():
        xdp.close()
    _filters.clear()


def check_frame(case: tuple[str, bytes]) -> None:
    scan = BY_NAME[case[0]]
    frame = case[1]
    xdp, classic = _open_filters(scan)
    c = scan.c_outcome(frame)
    verdicts = agreement.Verdicts(c, agreement.xdp_accepts(xdp, frame),
                                  classic.accepts(frame) if classic is not None else None,
                                  agreement.traits(frame))
    problems, _ = agreement.disagreements(frame, verdicts, scan.exceptions)
    assert not problems, f"{scan.name}: {problems[0]}"
    c_checksums = reply_checksums_ok(frame)
    if scan.name == "tcp-syn" and verdicts.traits is not None and c_checksums is not None:
        independent = verdicts.traits.ip_checksum_ok and verdicts.traits.tcp_checksum_ok
        assert c_checksums == independent, \
            f"C says checksums {'verify' if c_checksums else 'fail'}, {verdicts.traits}"


def available() -> str | None:
    """Why this fuzzer cannot run here, or None."""
    return None if os.geteuid() == 0 else "needs root to load the XDP filter"
