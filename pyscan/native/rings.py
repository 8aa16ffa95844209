"""Driver rings (ring.h) as Python holds them, and the drivers that are nothing but a ring:
null and af-packet.

A Ring owns one ``struct pyscan_ring *``: pass it to Engine.run_tx/run_rx, read
``ring_stats()``, and close it (``close_ring()`` or ``ring.close()``) exactly when no thread
uses it any more. Rings opened by AfXdp or a PfringZcCluster are Ring objects too; AfXdp
closes its own when it closes.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Iterable

from pyscan.native._lib import CData, RingPtr, c_text, ffi, is_null, lib
from pyscan.native._values import check_int as _check_int
from pyscan.native._values import ipv4_be
from pyscan.native.handles import CHandle

RING_STATS_FIELDS = (
    "tx_frames", "tx_bytes", "tx_retries", "tx_errors",
    "rx_frames", "rx_bytes", "rx_drops", "rx_filtered",
)
NULL_SLOT_SIZE = int(lib.PYSCAN_NULL_SLOT_SIZE)
NULL_MAX_SLOTS = int(lib.PYSCAN_NULL_MAX_SLOTS)
NULL_CAPTURE_STRIDE = int(lib.PYSCAN_NULL_CAPTURE_STRIDE)
NULL_CAPTURE_KEEP = int(lib.PYSCAN_NULL_CAPTURE_KEEP)


class Ring(CHandle[RingPtr]):
    """One driver ring; ``close()`` releases its sockets, maps and memory (ring ops destroy)."""

    _kind = "ring"

    def __init__(self, handle: RingPtr, what: str = "ring") -> None:
        self._handle = handle
        self.what = what

    def _closed_message(self) -> str:
        return f"{self.what} is closed"

    @property
    def ptr(self) -> RingPtr:
        """The live pointer, for a C call (ValueError once closed)."""
        return self._live()

    @staticmethod
    def _destroy(handle: RingPtr) -> None:
        lib.pyscan_ring__destroy(handle)  # waits for C loops still inside (ring.h)

    @staticmethod
    def _request_stop(handle: RingPtr) -> None:
        lib.pyscan_ring__shutdown(handle)


def ring_stats(ring: Ring) -> dict[str, int]:
    """Counters of one driver ring (see ring.h)."""
    out = ffi.new("struct pyscan_ring_stats *")
    lib.pyscan_ring__stats(ring.ptr, out)
    return {name: int(getattr(out, name)) for name in RING_STATS_FIELDS}


def ring_error(ring: Ring) -> str:
    """The ring's last error text ("" when none, or when the ring is closed)."""
    if ring.closed:
        return ""
    return c_text(lib.pyscan_ring__error(ring.ptr))


def close_ring(ring: Ring | None) -> None:
    """Release a ring (sockets, maps, memory); idempotent, and None is accepted."""
    if ring is not None:
        ring.close()


def _opened(ring: RingPtr, what: str) -> Ring:
    if is_null(ring):
        code = ffi.errno or 12
        raise OSError(code, f"{what} failed: {os.strerror(code)}")
    return Ring(ring, what)


def open_null_tx(slots: int = 1024, capture_frames: int = 0) -> Ring:
    """A TX ring that sends nothing (null driver); with ``capture_frames`` it records the
    first NULL_CAPTURE_KEEP bytes of that many frames (read with null_captured)."""
    _check_int("null ring slots", slots, 1, NULL_MAX_SLOTS)
    _check_int("capture frames", capture_frames, 0, 2**32 - 1)
    return _opened(lib.pyscan_null__open_capture(slots, capture_frames), "null TX ring")


def open_null_rx(slots: int = 1024) -> Ring:
    """An RX ring that yields the frames given to null_inject (tests of the RX loop)."""
    _check_int("null RX slots", slots, 1, NULL_MAX_SLOTS)
    return _opened(lib.pyscan_null__open_rx(slots), "null RX ring")


def null_captured(ring: Ring) -> list[bytes]:
    """Frames a capturing null TX ring recorded, in submission order (truncated to
    NULL_CAPTURE_KEEP bytes)."""
    return [frame for frame, _ in null_captured_timed(ring)]


def null_captured_timed(ring: Ring) -> list[tuple[bytes, int]]:
    """(frame, CLOCK_MONOTONIC ns when it was submitted) for every frame a capturing null TX
    ring recorded, in submission order (frames truncated to NULL_CAPTURE_KEEP bytes)."""
    base = ffi.new("const uint8_t **")
    count = int(lib.pyscan_null__captured(ring.ptr, base))
    if not count:
        return []
    raw = bytes(ffi.buffer(base[0], count * NULL_CAPTURE_STRIDE))
    frames = []
    for i in range(count):
        record = raw[i * NULL_CAPTURE_STRIDE:(i + 1) * NULL_CAPTURE_STRIDE]
        length = min(int.from_bytes(record[:4], "little"), NULL_CAPTURE_KEEP)
        submitted = int.from_bytes(record[-8:], sys.byteorder)
        frames.append((record[4:4 + length], submitted))
    return frames


def null_inject(ring: Ring, frame: bytes) -> bool:
    """Queue a frame on a null RX ring; False when the ring is full."""
    rc = lib.pyscan_null__inject(ring.ptr, bytes(frame), len(frame))
    if rc == -105:  # ENOBUFS
        return False
    if rc < 0:
        raise ValueError(f"frame of {len(frame)} bytes rejected by the null RX ring: "
                         f"{os.strerror(-rc)} (accepted up to {NULL_SLOT_SIZE} bytes)")
    return True


def null_set_faults(ring: Ring, *, slot_capacity: int = 0, reserve_max: int = 0,
                    submit_accept_limit: int = 0, kick_errno: int = 0,
                    kick_error_after: int = 0) -> None:
    """Make a null TX ring misbehave like a real device (tests of the TX loop's failure
    paths): slots of ``slot_capacity`` bytes, at most ``reserve_max`` slots per reserve, only
    ``submit_accept_limit`` frames accepted in all (the rest lost), and every kick failing
    with ``kick_errno`` once ``kick_error_after`` frames were submitted. 0 = no such fault."""
    faults = ffi.new("struct pyscan_null_faults *")
    faults.slot_capacity = _check_int("slot capacity", slot_capacity, 0, NULL_SLOT_SIZE)
    faults.reserve_max = _check_int("reserve max", reserve_max, 0, 2**32 - 1)
    faults.submit_accept_limit = _check_int("submit accept limit", submit_accept_limit, 0,
                                            2**64 - 1)
    faults.kick_error = -_check_int("kick errno", kick_errno, 0, 4095)
    faults.kick_error_after = _check_int("kick error after", kick_error_after, 0, 2**64 - 1)
    if lib.pyscan_null__set_faults(ring.ptr, faults) < 0:
        raise ValueError(f"{ring.what} is not a null TX ring")


def null_audit(ring: Ring) -> dict[str, int]:
    """What a null TX ring saw of the ring.h contract: slots ``reserved``, ``submitted``,
    and ``out_of_order`` submits (never anything but 0 from a correct caller)."""
    out = ffi.new("struct pyscan_null_audit *")
    if lib.pyscan_null__audit(ring.ptr, out) < 0:
        raise ValueError(f"{ring.what} is not a null TX ring")
    return {"reserved": int(out.reserved), "submitted": int(out.submitted),
            "out_of_order": int(out.out_of_order)}


def _afpacket_opened(ring: RingPtr, err: CData, what: str) -> Ring:
    if is_null(ring):
        raise OSError(ffi.errno or 22, c_text(err))
    return Ring(ring, what)


def open_afpacket_tx(ifindex: int, frames: int = 0) -> Ring:
    """An AF_PACKET TPACKET_V2 TX ring on ``ifindex`` of the calling thread's netns
    (0 frames = default). Raises OSError with a one-line reason."""
    _check_int("ifindex", ifindex, 1, 2**31 - 1)
    _check_int("TX ring frames", frames, 0, 1 << 20)
    err = ffi.new("char[256]")
    return _afpacket_opened(lib.pyscan_afpacket__open_tx(ifindex, frames, err, 256), err,
                            "af-packet TX ring")


AFPACKET_PROTOCOLS = {"tcp": int(lib.PYSCAN_AFPACKET_TCP), "udp": int(lib.PYSCAN_AFPACKET_UDP),
                      "icmp": int(lib.PYSCAN_AFPACKET_ICMP),
                      # IPv6 scans: their own program (one family per scan, never mixed)
                      "tcp6": int(lib.PYSCAN_AFPACKET_TCP6),
                      "icmp6": int(lib.PYSCAN_AFPACKET_ICMP6),
                      "udp6": int(lib.PYSCAN_AFPACKET_UDP6),
                      # with IPv6 reply protocols: neighbour solicitations for the responder
                      "ndp6": int(lib.PYSCAN_AFPACKET_NDP6)}


def _check_port_range(ports: object) -> None:
    """ValueError unless ``ports`` is a non-empty step-1 range within 0..65535."""
    if not isinstance(ports, range) or ports.step != 1 or not ports or ports.start < 0 \
            or ports.stop > 65536:
        raise ValueError(f"port range {ports!r} is invalid: accepted a non-empty "
                         "range(first, last + 1) within 0..65535")


def afpacket_filter_ports(ring: Ring, ports: range,
                          protocols: Iterable[str] = ("tcp",),
                          arp_for: str | ipaddress.IPv4Address | ipaddress.IPv6Address
                          | None = None) -> None:
    """Let an af-packet RX ring's kernel filter pass only replies to ``ports`` (the scan's
    source ports) of the scan's ``protocols`` (the probe types' labels: tcp, udp, icmp),
    and ARP requests for ``arp_for`` (an unowned source address, for the RX thread's
    ARP responder; an IPv6 ``arp_for`` passes neighbour solicitations instead, "ndp6");
    safe while the RX thread runs."""
    _check_port_range(ports)
    mask = 0
    for name in protocols:
        if name not in AFPACKET_PROTOCOLS:
            raise ValueError(f"reply protocol {name!r} is unknown: accepted "
                             f"{', '.join(AFPACKET_PROTOCOLS)}")
        mask |= AFPACKET_PROTOCOLS[name]
    if arp_for is not None and ipaddress.ip_address(str(arp_for)).version == 6:
        mask |= AFPACKET_PROTOCOLS["ndp6"]
        arp_for = None
    rc = lib.pyscan_afpacket__pass_arp(ring.ptr, 0 if arp_for is None
                                       else ipv4_be("ARP address", arp_for))
    if rc == 0:
        rc = lib.pyscan_afpacket__filter_replies(ring.ptr, ports.start, len(ports), mask)
    if rc < 0:
        raise OSError(-rc, ring_error(ring) or os.strerror(-rc))


def afpacket_arp_prefix(address: str | ipaddress.IPv4Address) -> bytes:
    """The classic BPF instructions that let ARP requests for ``address`` through in front
    of the reply program (a frame that is not ARP goes on past them), for tests."""
    count = int(lib.pyscan_afpacket__arp_prefix(0, ffi.NULL, 0))
    out = ffi.new("uint8_t[]", count * 8)
    lib.pyscan_afpacket__arp_prefix(ipv4_be("ARP address", address), out, count)
    return bytes(ffi.buffer(out, count * 8))


def afpacket_reply_filter6(ports: range,
                           protocols: Iterable[str] = ("tcp6", "icmp6", "udp6")) -> bytes:
    """The IPv6 scan's classic BPF program for ``ports`` and ``protocols`` (tcp6, icmp6, udp6), as
    :func:`afpacket_filter_ports` attaches it, for tests."""
    _check_port_range(ports)
    mask = 0
    for name in protocols:
        if name not in ("tcp6", "icmp6", "udp6", "ndp6"):
            raise ValueError(f"IPv6 reply protocol {name!r} is unknown: accepted tcp6, icmp6, "
                             "udp6, ndp6")
        mask |= AFPACKET_PROTOCOLS[name]
    count = int(lib.pyscan_afpacket__reply_filter6(ports.start, ports.stop - 1, mask,
                                                   ffi.NULL, 0))
    out = ffi.new("uint8_t[]", 8 * count)
    lib.pyscan_afpacket__reply_filter6(ports.start, ports.stop - 1, mask, out, count)
    return bytes(ffi.buffer(out))


def afpacket_reply_filter(ports: range) -> bytes:
    """The classic BPF program (struct sock_filter array) that :func:`afpacket_filter_ports`
    attaches for ``ports``, for tests that run it beside the other reply filters."""
    _check_port_range(ports)
    count = int(lib.pyscan_afpacket__reply_filter(ports.start, ports.stop - 1, ffi.NULL, 0))
    out = ffi.new("uint8_t[]", 8 * count)
    lib.pyscan_afpacket__reply_filter(ports.start, ports.stop - 1, out, count)
    return bytes(ffi.buffer(out))


def open_afpacket_rx(ifindex: int, block_size: int = 0, blocks: int = 0) -> Ring:
    """An AF_PACKET TPACKET_V3 RX ring (reply filter attached) on ``ifindex`` of the calling
    thread's netns (0 = defaults). Raises OSError with a one-line reason."""
    _check_int("ifindex", ifindex, 1, 2**31 - 1)
    _check_int("RX block size", block_size, 0, 2**31)
    _check_int("RX blocks", blocks, 0, 2**20)
    err = ffi.new("char[256]")
    return _afpacket_opened(lib.pyscan_afpacket__open_rx(ifindex, block_size, blocks, err, 256),
                            err, "af-packet RX ring")
