"""The one Python module that touches the compiled data plane (``pyscan._native``).

Everything else in pyscan calls the typed wrappers below; nothing else imports ``lib``.
Sections are per area (core engine, drivers, BPF) so each can grow without touching the others.
"""

from __future__ import annotations

from pyscan._native import ffi, lib  # type: ignore[import-not-found]

__all__ = ["RING_STATS_FIELDS", "ffi", "ring_error", "ring_stats"]

RING_STATS_FIELDS = (
    "tx_frames", "tx_bytes", "tx_retries", "tx_errors",
    "rx_frames", "rx_bytes", "rx_drops", "rx_filtered",
)


def ring_stats(ring: object) -> dict[str, int]:
    """Counters of one driver ring (see ring.h)."""
    out = ffi.new("struct pyscan_ring_stats *")
    lib.pyscan_ring__stats(ring, out)
    return {name: int(getattr(out, name)) for name in RING_STATS_FIELDS}


def ring_error(ring: object) -> str:
    return ffi.string(lib.pyscan_ring__error(ring)).decode(errors="replace")


# --- core: permutation, cookie, template, rate limiter, engine (tx/rx loops) ----------------


# --- drivers: null, af_packet ---------------------------------------------------------------


# --- BPF objects: load, attach, maps (lab sink, reply filter) --------------------------------


# --- driver: af_xdp -------------------------------------------------------------------------
# The reply filter (pyscan/bpf/reply_filter.bpf.o) and the AF_XDP socket set of one interface
# (pyscan/native/drv_af_xdp.c). Rings handed out by AfXdp belong to it: AfXdp.close() detaches
# the filter, closes the sockets and destroys the rings; nobody else destroys them.

from ipaddress import IPv4Address as _IPv4Address  # noqa: E402
from os import strerror as _strerror  # noqa: E402
from pathlib import Path as _Path  # noqa: E402

REPLY_FILTER_OBJECT = str(_Path(__file__).resolve().parent.parent / "bpf" / "reply_filter.bpf.o")
REPLY_FILTER_COUNTERS = ("seen", "matched", "passed")
XDP_BIND_MODES = {"auto": lib.PYSCAN_AFXDP_BIND_AUTO, "zerocopy": lib.PYSCAN_AFXDP_BIND_ZEROCOPY,
                  "copy": lib.PYSCAN_AFXDP_BIND_COPY}
XDP_ATTACH_MODES = {"auto": lib.PYSCAN_AFXDP_ATTACH_AUTO,
                    "native": lib.PYSCAN_AFXDP_ATTACH_NATIVE,
                    "generic": lib.PYSCAN_AFXDP_ATTACH_GENERIC}
XDP_ACTIONS = {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}
_ERROR_BUFFER = 320


class AfXdpError(OSError):
    """Opening the AF_XDP driver or loading its filter failed; str() is the one-line reason."""


def _ip_be(address: object) -> int:
    """An IPv4 address (or None = any) as the u32 whose memory holds it in network order."""
    if address is None:
        return 0
    return int.from_bytes(_IPv4Address(address).packed, "little")  # type: ignore[arg-type]


def _raise_from(err: object, fallback: str) -> None:
    errno_value = ffi.errno or 0
    message = ffi.string(err).decode(errors="replace") or fallback
    raise AfXdpError(errno_value, message)


class ReplyFilter:
    """The XDP reply filter loaded and verified with a key, not attached anywhere."""

    def __init__(self, key: bytes, scanner_ip: object = None, ports: range = range(0, 65536),
                 queue_slots: int = 1, object_path: str = REPLY_FILTER_OBJECT) -> None:
        if len(key) != 16:
            raise ValueError(f"cookie key must be 16 bytes, got {len(key)}")
        if not ports or ports.step != 1 or ports.start < 0 or ports.stop > 65536:
            raise ValueError(f"port range {ports!r} invalid; use a non-empty range within 0-65535")
        err = ffi.new("char[]", _ERROR_BUFFER)
        handle = lib.pyscan_replyfilter__load(object_path.encode(), key, _ip_be(scanner_ip),
                                              ports.start, ports.stop - 1, queue_slots,
                                              err, _ERROR_BUFFER)
        if handle == ffi.NULL:
            _raise_from(err, "reply filter failed to load")
        self._handle = handle

    @property
    def prog_id(self) -> int:
        return int(lib.pyscan_replyfilter__prog_id(self._handle))

    def test_run(self, frame: bytes) -> str:
        """Runs the program once on frame (BPF_PROG_TEST_RUN); returns the XDP action name."""
        action = ffi.new("uint32_t *")
        rc = lib.pyscan_replyfilter__test_run(self._handle, frame, len(frame), action)
        if rc < 0:
            raise AfXdpError(-rc, f"BPF_PROG_TEST_RUN failed: {_strerror(-rc)}")
        return XDP_ACTIONS.get(int(action[0]), str(int(action[0])))

    def counters(self) -> dict[str, int]:
        out = ffi.new("uint64_t[]", len(REPLY_FILTER_COUNTERS))
        lib.pyscan_replyfilter__counters(self._handle, out, len(REPLY_FILTER_COUNTERS))
        return {name: int(out[i]) for i, name in enumerate(REPLY_FILTER_COUNTERS)}

    def close(self) -> None:
        if self._handle is not None:
            lib.pyscan_replyfilter__close(self._handle)
            self._handle = None

    def __enter__(self) -> ReplyFilter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def afxdp_probe() -> tuple[bool, str]:
    """Whether this kernel and these privileges allow AF_XDP sockets, and why not."""
    err = ffi.new("char[]", _ERROR_BUFFER)
    if lib.pyscan_afxdp__probe(err, _ERROR_BUFFER) == 0:
        return True, "AF_XDP sockets available"
    return False, ffi.string(err).decode(errors="replace")


def afxdp_queue_counts(interface: str) -> tuple[int, int] | None:
    """(rx, tx) queue counts of interface in the calling thread's netns, None if unknown."""
    rx, tx = ffi.new("uint32_t *"), ffi.new("uint32_t *")
    if lib.pyscan_afxdp__queue_counts(interface.encode(), rx, tx) < 0:
        return None
    return int(rx[0]), int(tx[0])


def ring_send_frames(ring: object, frames: list[bytes], flush_timeout_ms: int = 2000) -> int:
    """Sends frames through a TX ring's ops (reserve, copy, submit, flush); tests and checks."""
    lens = ffi.new("uint32_t[]", [len(f) for f in frames] or [0])
    rc = lib.pyscan_afxdp__send_frames(ring, b"".join(frames), lens, len(frames),
                                       flush_timeout_ms)
    if rc < 0:
        raise AfXdpError(-rc, f"sending {len(frames)} frames failed: {_strerror(-rc)}"
                              f" ({ring_error(ring)})")
    return int(rc)


def ring_recv_frames(ring: object, max_frames: int = 64, timeout_ms: int = 100) -> list[bytes]:
    """Up to max_frames frames from an RX ring, waiting up to timeout_ms for the first."""
    cap = 2048 * max_frames
    buf, lens = ffi.new("uint8_t[]", cap), ffi.new("uint32_t[]", max_frames)
    rc = lib.pyscan_afxdp__recv_frames(ring, buf, cap, lens, max_frames, timeout_ms)
    if rc < 0:
        raise AfXdpError(-rc, f"receiving failed: {_strerror(-rc)}")
    data, frames, offset = ffi.buffer(buf, cap), [], 0
    for i in range(rc):
        frames.append(bytes(data[offset:offset + lens[i]]))
        offset += lens[i]
    return frames


class AfXdp:
    """AF_XDP sockets on queues 0..queue_count-1 of one interface plus the attached filter."""

    def __init__(self, interface: str, *, key: bytes, queue_count: int, tx_queues: int,
                 want_rx: bool = True, bind_mode: str = "auto", attach_mode: str = "auto",
                 ring_size: int = 2048, frame_size: int = 2048, scanner_ip: object = None,
                 ports: range = range(0, 65536),
                 object_path: str = REPLY_FILTER_OBJECT) -> None:
        if bind_mode not in XDP_BIND_MODES:
            raise ValueError(f"xdp mode {bind_mode!r} unknown; use one of "
                             f"{', '.join(XDP_BIND_MODES)}")
        if attach_mode not in XDP_ATTACH_MODES:
            raise ValueError(f"xdp attach {attach_mode!r} unknown; use one of "
                             f"{', '.join(XDP_ATTACH_MODES)}")
        if len(key) != 16:
            raise ValueError(f"cookie key must be 16 bytes, got {len(key)}")
        name = interface.encode()
        if not 0 < len(name) < 16:
            raise ValueError(f"interface name {interface!r} invalid; use 1 to 15 bytes")
        if not ports or ports.step != 1 or ports.start < 0 or ports.stop > 65536:
            raise ValueError(f"port range {ports!r} invalid; use a non-empty range within 0-65535")
        cfg = ffi.new("struct pyscan_afxdp_config *")
        cfg.ifname = name
        cfg.queue_count = queue_count
        cfg.tx_queues = tx_queues
        cfg.want_rx = int(want_rx)
        cfg.bind_mode = XDP_BIND_MODES[bind_mode]
        cfg.attach_mode = XDP_ATTACH_MODES[attach_mode]
        cfg.ring_size = ring_size
        cfg.frame_size = frame_size
        cfg.scanner_ip_be = _ip_be(scanner_ip)
        cfg.port_lo = ports.start
        cfg.port_hi = ports.stop - 1
        cfg.key = key
        err = ffi.new("char[]", _ERROR_BUFFER)
        handle = lib.pyscan_afxdp__open(cfg, object_path.encode(), err, _ERROR_BUFFER)
        if handle == ffi.NULL:
            _raise_from(err, f"af-xdp failed to open {interface}")
        self._handle = handle
        self.tx_rings = [lib.pyscan_afxdp__tx_ring(handle, i) for i in range(tx_queues)]
        rx = lib.pyscan_afxdp__rx_ring(handle)
        self.rx_ring = None if rx == ffi.NULL else rx

    def info(self) -> dict[str, object]:
        out = ffi.new("struct pyscan_afxdp_info *")
        lib.pyscan_afxdp__info(self._handle, out)
        warnings = ffi.string(out.warnings).decode(errors="replace")
        return {
            "zerocopy": bool(out.zerocopy), "generic_attach": bool(out.generic_attach),
            "queue_count": int(out.queue_count), "tx_queues": int(out.tx_queues),
            "ring_size": int(out.ring_size), "frame_size": int(out.frame_size),
            "prog_id": int(out.prog_id), "warnings": [w for w in warnings.split("; ") if w],
        }

    def filter_counters(self) -> dict[str, int]:
        out = ffi.new("uint64_t[]", len(REPLY_FILTER_COUNTERS))
        lib.pyscan_afxdp__filter_counters(self._handle, out, len(REPLY_FILTER_COUNTERS))
        return {name: int(out[i]) for i, name in enumerate(REPLY_FILTER_COUNTERS)}

    def close(self) -> None:
        """Detaches the filter, closes the sockets, destroys the rings. Idempotent."""
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        rings = [*self.tx_rings, *([self.rx_ring] if self.rx_ring is not None else [])]
        self.tx_rings, self.rx_ring = [], None
        lib.pyscan_afxdp__close(handle)
        for ring in rings:
            lib.pyscan_ring__destroy(ring)



# --- driver: pfring_zc ----------------------------------------------------------------------
