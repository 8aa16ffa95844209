"""The three reply filters side by side, and the documented ways they may differ.

- C: the engine's ingest (reply parser, checksums, tcp-syn classifier) on a fresh engine; it
  *reports* a frame when it says open or closed (an ICMP unreachable quoting a SYN is
  reported as closed by ingest, with status unreachable).
- XDP: pyscan/bpf/reply_filter.bpf.c run with BPF_PROG_TEST_RUN; it *accepts* a frame when
  its match counter moves (the frame would go to the AF_XDP socket).
- cBPF: af-packet's classic socket filter (the instructions drv_af_packet.c attaches), run by
  libpcap's bpf_filter(), the reference classic-BPF interpreter; it accepts when it returns
  non-zero.

A frame that one filter accepts and the C side does not report (or the reverse) is a bug,
unless one of EXCEPTIONS names that filter, that direction, and holds for the frame. The
acceptance rules and the reasons for each exception are in docs/internals.md.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from dataclasses import dataclass

from pyscan.native import Engine, ReplyFilter, afpacket_reply_filter
from tests.corpus.replies.frames import (
    GATEWAY_MAC,
    KEY,
    SCANNER,
    SCANNER_MAC,
    SOURCE_PORTS,
    Traits,
    traits,
)

REPORTED = ("open", "closed")
# BPF_PROG_TEST_RUN refuses XDP input shorter than an Ethernet header, and no NIC delivers one.
XDP_MIN_FRAME = 14


def c_outcome(frame: bytes) -> str:
    """What a fresh engine's ingest says of frame (no earlier frame can make it a duplicate)."""
    engine = Engine(cookie_key=KEY, seed=1, source_ip=str(SCANNER), source_mac=SCANNER_MAC,
                    gateway_mac=GATEWAY_MAC, ranges=[("0.0.0.0", "255.255.255.255")],
                    ports=[1], source_ports=SOURCE_PORTS)
    try:
        return engine.ingest(frame)
    finally:
        engine.close()


class ClassicFilter:
    """af-packet's socket filter for SOURCE_PORTS, run by libpcap's bpf_filter()."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("pcap")
        if name is None:
            raise OSError("libpcap is not installed (Debian: apt-get install libpcap0.8)")
        self._pcap = ctypes.CDLL(name)
        self._pcap.bpf_filter.restype = ctypes.c_uint
        self._pcap.bpf_filter.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint,
                                          ctypes.c_uint]
        code = afpacket_reply_filter(SOURCE_PORTS)
        self._code = ctypes.create_string_buffer(code, len(code))

    def accepts(self, frame: bytes) -> bool:
        return self._pcap.bpf_filter(self._code, frame, len(frame), len(frame)) != 0


def xdp_accepts(reply_filter: ReplyFilter, frame: bytes) -> bool | None:
    """Whether the XDP filter matches frame; None for frames the kernel cannot run it on."""
    if len(frame) < XDP_MIN_FRAME:
        return None
    before = reply_filter.counters()["matched"]
    reply_filter.test_run(frame)
    return reply_filter.counters()["matched"] == before + 1


def open_xdp_filter() -> ReplyFilter:
    return ReplyFilter(KEY, scanner_ip=SCANNER, ports=SOURCE_PORTS)


def header_fields_inconsistent(frame: bytes) -> bool:
    """IPv4 version, IHL, total length or TCP data offset at odds with each other or with the
    frame, read at the untagged offsets the classic filter uses."""
    ip = frame[14:]
    if len(ip) < 20:
        return True
    ihl, total = (ip[0] & 15) * 4, int.from_bytes(ip[2:4], "big")
    if ip[0] >> 4 != 4 or ihl < 20 or total < ihl + 20 or total > len(ip):
        return True
    doff = (ip[ihl + 12] >> 4) * 4
    return doff < 20 or doff > total - ihl


def ipv4_at(frame: bytes) -> bytes | None:
    """The untagged IPv4 packet of frame (from its header on), or None."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[14] >> 4 != 4:
        return None
    return frame[14:]


def to_scanner(frame: bytes) -> bool:
    ip = ipv4_at(frame)
    return ip is not None and ip[16:20] == SCANNER.packed


def icmp_quote(frame: bytes) -> bytes | None:
    """What an untagged ICMP error without IP options quotes (its IPv4 header on, at least
    up to the quoted protocol byte), or None."""
    ip = ipv4_at(frame)
    if ip is None or ip[9] != 1 or ip[0] & 15 != 5 or len(ip) < 28 + 10:
        return None
    return ip[28:]


@dataclass(frozen=True)
class Exception_:
    """One documented difference: ``filter`` accepts what C does not report (direction
    "accepts") or rejects what C reports ("rejects"), when ``holds`` is true of the frame."""

    name: str
    filter: str
    direction: str
    holds: Callable[[bytes, Traits | None, str], bool]


EXCEPTIONS = (
    # VLAN: the XDP match reads fixed untagged offsets (NICs with VLAN offload strip the tag
    # before XDP; scan a VLAN through its VLAN device). Packet sockets get the outer tag
    # removed by the kernel before any tap, so only a tag left in the data (QinQ inner tag)
    # reaches the classic filter, which then does not match.
    Exception_("vlan", "xdp", "rejects", lambda f, t, c: t is not None and t.vlan_tags > 0),
    Exception_("vlan", "cbpf", "rejects", lambda f, t, c: t is not None and t.vlan_tags > 0),
    # IP options: probes never carry them and a reply with them is rare; the XDP match keeps a
    # fixed TCP offset for the verifier, and passes them to the kernel.
    Exception_("ip-options", "xdp", "rejects", lambda f, t, c: t is not None and t.ip_options),
    # Checksums are the C side's (it counts rx_bad_checksum); neither filter sums.
    Exception_("checksum", "xdp", "accepts", lambda f, t, c: c == "bad-checksum"),
    Exception_("checksum", "cbpf", "accepts", lambda f, t, c: c == "bad-checksum"),
    # Classic BPF cannot compute SipHash and is not told the scanner's address: cookie and
    # destination are checked in C. It reads fixed fields and does not cross-check lengths.
    Exception_("cookie", "cbpf", "accepts", lambda f, t, c: c == "invalid-cookie"),
    Exception_("destination", "cbpf", "accepts",
               lambda f, t, c: c == "not-ours" and not to_scanner(f)),
    # Of an ICMP error's quote it reads only the protocol: the quoted source address, source
    # port and whether 8 bytes of the quoted datagram are there are checked in C.
    Exception_("quoted-fields", "cbpf", "accepts",
               lambda f, t, c: c == "not-ours" and icmp_quote(f) is not None),
    # A quote whose IPv4 header has options: the XDP match reads the quoted TCP bytes at a
    # fixed offset, as for replies with options (C takes them).
    Exception_("quote-ip-options", "xdp", "rejects",
               lambda f, t, c: (q := icmp_quote(f)) is not None and q[0] & 15 > 5),
    Exception_("header-fields", "cbpf", "accepts",
               lambda f, t, c: c == "malformed" and header_fields_inconsistent(f)),
)


@dataclass(frozen=True)
class Verdicts:
    c: str
    xdp: bool | None
    cbpf: bool | None  # None: no classic program for this scan
    traits: Traits | None


def judge(frame: bytes, reply_filter: ReplyFilter | None, classic: ClassicFilter) -> Verdicts:
    """Every filter's verdict; without a loaded XDP filter (no root) its verdict is None."""
    xdp = xdp_accepts(reply_filter, frame) if reply_filter is not None else None
    return Verdicts(c_outcome(frame), xdp, classic.accepts(frame), traits(frame))


def disagreements(frame: bytes, v: Verdicts,
                  exceptions: tuple[Exception_, ...] = EXCEPTIONS) -> tuple[list[str], set[str]]:
    """Undocumented disagreements with the C side (each one line), and the names of the
    exceptions that explained the documented ones."""
    reported = v.c in REPORTED
    problems: list[str] = []
    used: set[str] = set()
    for name, accepted in (("xdp", v.xdp), ("cbpf", v.cbpf)):
        if accepted is None or accepted == reported:
            continue
        direction = "accepts" if accepted else "rejects"
        why = [e for e in exceptions
               if e.filter == name and e.direction == direction and e.holds(frame, v.traits, v.c)]
        if why:
            used.update(f"{name}:{e.name}" for e in why)
        else:
            problems.append(f"{name} {direction} a frame C says is {v.c!r} ({v.traits})")
    return problems, used


# ---------------------------------------------------------------------------------------
# The other probe modules: icmp-echo and udp beside tcp-syn (IPv4), and the three IPv6
# modules, each family in one scan with all its modules (modules4.py, frames6.py). The
# differences from C that frames6.py's rows name ("xdp, cbpf: ..."), as predicates, so the
# differential fuzzer can hold mutated frames to them.

def layer3(frame: bytes) -> tuple[int, bytes, int]:
    """(4 or 6 or 0, the IP packet from its header on, VLAN tags skipped)."""
    at, tags = 14, 0
    if len(frame) < 14:
        return 0, b"", 0
    ethertype = int.from_bytes(frame[12:14], "big")
    while ethertype in (0x8100, 0x88A8) and len(frame) >= at + 4:
        ethertype = int.from_bytes(frame[at + 2:at + 4], "big")
        at, tags = at + 4, tags + 1
    family = {0x0800: 4, 0x86DD: 6}.get(ethertype, 0)
    return family, frame[at:], tags


def protocol(frame: bytes) -> int | None:
    family, ip, _ = layer3(frame)
    if family == 4 and len(ip) >= 20:
        return ip[9]
    if family == 6 and len(ip) >= 40:
        return ip[6]
    return None


def is_udp(frame: bytes) -> bool:
    return protocol(frame) == 17


def icmp_error(frame: bytes) -> bool:
    """An ICMP (IPv4: type 3) or ICMPv6 (types below 128) error, from the first header."""
    family, ip, _ = layer3(frame)
    if family == 4 and len(ip) >= 21 and ip[9] == 1:
        at = (ip[0] & 15) * 4
        return len(ip) > at and ip[at] == 3
    return family == 6 and len(ip) > 40 and ip[6] == 58 and ip[40] < 128


def to_scanner_of(scanner: bytes) -> Callable[[bytes], bool]:
    def check(frame: bytes) -> bool:
        family, ip, _ = layer3(frame)
        return (family == 4 and ip[16:20] == scanner) or (family == 6 and ip[24:40] == scanner)
    return check


def _tagged(f: bytes, t: Traits | None, c: str) -> bool:
    return layer3(f)[2] > 0


def _ipv4_options(f: bytes, t: Traits | None, c: str) -> bool:
    family, ip, _ = layer3(f)
    return family == 4 and len(ip) > 0 and ip[0] & 15 > 5


def _quote_options(f: bytes, t: Traits | None, c: str) -> bool:
    family, ip, _ = layer3(f)
    if family != 4 or not icmp_error(f):
        return False
    at = (ip[0] & 15) * 4 + 8
    return len(ip) > at and ip[at] & 15 > 5


def module_exceptions(scanner: bytes) -> tuple[Exception_, ...]:
    """The documented differences of a scan with every module of its family."""
    to_us = to_scanner_of(scanner)
    return (
        Exception_("vlan", "xdp", "rejects", _tagged),
        Exception_("vlan", "cbpf", "rejects", _tagged),
        Exception_("ip-options", "xdp", "rejects", _ipv4_options),
        Exception_("quote-ip-options", "xdp", "rejects", _quote_options),
        Exception_("checksum", "xdp", "accepts", lambda f, t, c: c == "bad-checksum"),
        Exception_("checksum", "cbpf", "accepts", lambda f, t, c: c == "bad-checksum"),
        # the UDP payload table (DNS ids, which ports were probed over UDP) is C's
        Exception_("udp-payload-table", "xdp", "accepts",
                   lambda f, t, c: c in ("invalid-cookie", "not-ours") and
                   (is_udp(f) or icmp_error(f))),
        Exception_("udp-payload-table", "cbpf", "accepts",
                   lambda f, t, c: c in ("invalid-cookie", "not-ours") and
                   (is_udp(f) or icmp_error(f))),
        # IPv6: the cookie covers the destination, which the filters do not compare
        Exception_("destination", "xdp", "accepts",
                   lambda f, t, c: c == "not-ours" and layer3(f)[0] == 6 and not to_us(f)),
        Exception_("destination", "cbpf", "accepts",
                   lambda f, t, c: c == "not-ours" and not to_us(f)),
        # the target set (a quoted destination must be in it) is C's
        Exception_("quoted-fields", "xdp", "accepts",
                   lambda f, t, c: c == "not-ours" and icmp_error(f)),
        Exception_("cookie", "cbpf", "accepts", lambda f, t, c: c == "invalid-cookie"),
        Exception_("header-fields", "cbpf", "accepts", lambda f, t, c: c == "malformed"),
    )
