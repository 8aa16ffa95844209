"""The one Python module that touches the compiled data plane (``pyscan._native``).

Everything else in pyscan calls the typed wrappers below; nothing else imports ``lib``.
Sections are per area (core engine, drivers, BPF) so each can grow without touching the others.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from typing import NamedTuple, Self

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
# Algorithms (permute.h, targetset.h, template.h, ratelimit.h, cookie.h): the engine calls them
# from C; these wrappers exist for tests, target listing and tools.

PERMUTE_MAX_RANGE = int(lib.PYSCAN_PERMUTE_MAX_RANGE)
SYN_FRAME_LEN = int(lib.PYSCAN_SYN_FRAME_LEN)
_U64_MAX = 2**64 - 1


def _check_int(what: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} {value!r} is out of range: accepted integers {low}..{high}")
    return value


def _ipv4(what: str, value: str | int | ipaddress.IPv4Address) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(value)
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise ValueError(f"{what} {value!r} is not an IPv4 address "
                         "(accepted: dotted quad, int or IPv4Address)") from None


def _ipv4_be(what: str, value: str | int | ipaddress.IPv4Address) -> int:
    """The address as the native u32 whose bytes in memory are network order."""
    return int.from_bytes(_ipv4(what, value).packed, "little")


def _port_be(what: str, port: int) -> int:
    return int.from_bytes(_check_int(what, port, 0, 65535).to_bytes(2, "big"), "little")


def _mac(what: str, value: str | bytes) -> bytes:
    if isinstance(value, bytes | bytearray) and len(value) == 6:
        return bytes(value)
    if isinstance(value, str):
        parts = value.replace("-", ":").split(":")
        if len(parts) == 6 and all(len(p) == 2 for p in parts):
            try:
                return bytes(int(p, 16) for p in parts)
            except ValueError:
                pass
    raise ValueError(f"{what} {value!r} is not a MAC address (accepted: 'aa:bb:cc:dd:ee:ff' "
                     "or 6 bytes)")


class Permutation:
    """Keyed bijection over ``range(n)`` (permute.h): ``at(i)`` for ``0 <= i < n`` visits every
    value of ``range(n)`` exactly once, in an order fixed by ``seed``."""

    def __init__(self, n: int, seed: int) -> None:
        _check_int("permutation range", n, 1, PERMUTE_MAX_RANGE)
        _check_int("permutation seed", seed, 0, _U64_MAX)
        self._state = ffi.new("struct pyscan_permute *")
        if lib.pyscan_permute__init(self._state, n, seed) != 0:
            raise ValueError(f"permutation range {n} rejected by pyscan_permute__init")
        self.n = n
        self.seed = seed

    def __len__(self) -> int:
        return self.n

    def _index(self, what: str, value: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self.n:
            raise IndexError(f"{what} {value!r} is out of range: accepted 0..{self.n - 1}")
        return value

    def at(self, index: int) -> int:
        return int(lib.pyscan_permute__at_export(self._state, self._index("index", index)))

    def inverse(self, value: int) -> int:
        """The index whose image is ``value``: ``inverse(at(i)) == i``."""
        return int(lib.pyscan_permute__inverse(self._state, self._index("value", value)))

    def values(self, start: int = 0, stop: int | None = None, step: int = 1) -> list[int]:
        """``[at(i) for i in range(start, stop, step)]`` in one C call (stop defaults to n)."""
        stop = self.n if stop is None else stop
        if start < 0 or not 0 <= stop <= self.n:
            raise IndexError(f"slice {start}..{stop} is out of range: accepted within 0..{self.n}")
        _check_int("step", step, 1, _U64_MAX)
        count = len(range(start, stop, step))
        out = ffi.new("uint64_t[]", max(count, 1))
        lib.pyscan_permute__fill(self._state, start, step, out, count)
        return list(ffi.unpack(out, count))


class TargetSet:
    """Sorted, disjoint, inclusive IPv4 ranges x distinct ports as one index space
    (targetset.h): index i is address number ``i % n_ips`` with port number ``i // n_ips``."""

    def __init__(self, ranges: Sequence[tuple[int | str | ipaddress.IPv4Address,
                                              int | str | ipaddress.IPv4Address]],
                 ports: Sequence[int]) -> None:
        pairs = [(int(_ipv4("range start", first)), int(_ipv4("range end", last)))
                 for first, last in ranges]
        if not pairs:
            raise ValueError("target ranges are empty: at least one (first, last) is needed")
        for previous, (first, last) in zip([None, *pairs], pairs, strict=False):
            if first > last:
                raise ValueError(f"range {ipaddress.IPv4Address(first)}-"
                                 f"{ipaddress.IPv4Address(last)} ends before it starts")
            if previous is not None and first <= previous[1]:
                raise ValueError(f"range starting at {ipaddress.IPv4Address(first)} overlaps or "
                                 "precedes the one before it: ranges must be sorted and disjoint")
        port_list = [_check_int("port", port, 0, 65535) for port in ports]
        if not port_list:
            raise ValueError("port list is empty: at least one port 0..65535 is needed")
        if len(set(port_list)) != len(port_list):
            repeated = next(p for p in port_list if port_list.count(p) > 1)
            raise ValueError(f"port {repeated} is listed twice: ports must be distinct")

        c_ranges = ffi.new("struct pyscan_ip_range[]", pairs)
        c_ports = ffi.new("uint16_t[]", port_list)
        state = ffi.new("struct pyscan_targetset *")
        rc = lib.pyscan_targetset__init(state, c_ranges, len(pairs), c_ports, len(port_list))
        if rc != 0:
            raise OSError(-rc, f"pyscan_targetset__init failed: {os.strerror(-rc)}")
        self._state = ffi.gc(state, lib.pyscan_targetset__free)
        self.n_ips = int(state.n_ips)
        self.n_ports = int(state.n_ports)
        self.total = int(state.total)

    def __len__(self) -> int:
        return self.total

    def at(self, index: int) -> tuple[ipaddress.IPv4Address, int]:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.total:
            raise IndexError(f"target index {index!r} is out of range: accepted "
                             f"0..{self.total - 1}")
        ip = ffi.new("uint32_t *")
        port = ffi.new("uint16_t *")
        lib.pyscan_targetset__at_export(self._state, index, ip, port)
        return ipaddress.IPv4Address(int(ip[0])), int(port[0])


def cookie(key: bytes, saddr: str | int | ipaddress.IPv4Address,
           daddr: str | int | ipaddress.IPv4Address, sport: int, dport: int) -> int:
    """The probe's TCP sequence number for (saddr, daddr, sport, dport) of the probe: low
    32 bits of SipHash-2-4 of the 12-byte tuple in network byte order (cookie.h)."""
    return int(lib.pyscan_cookie__compute(*_cookie_args(key, saddr, daddr, sport, dport)))


def cookie_siphash(key: bytes, saddr: str | int | ipaddress.IPv4Address,
                   daddr: str | int | ipaddress.IPv4Address, sport: int, dport: int) -> int:
    """The whole 64-bit SipHash-2-4 the cookie is cut from (for tests against references)."""
    return int(lib.pyscan_cookie__siphash(*_cookie_args(key, saddr, daddr, sport, dport)))


def _cookie_args(key: bytes, saddr: str | int | ipaddress.IPv4Address,
                 daddr: str | int | ipaddress.IPv4Address, sport: int,
                 dport: int) -> tuple[bytes, int, int, int, int]:
    if not isinstance(key, bytes | bytearray) or len(key) != 16:
        raise ValueError(f"cookie key {key!r} is not 16 bytes")
    return (bytes(key), _ipv4_be("source address", saddr), _ipv4_be("destination address", daddr),
            _port_be("source port", sport), _port_be("destination port", dport))


def build_syn(src_mac: str | bytes, dst_mac: str | bytes,
              saddr: str | int | ipaddress.IPv4Address, daddr: str | int | ipaddress.IPv4Address,
              sport: int, dport: int, seq: int, ip_id: int, ttl: int = 64, mss: int = 1460,
              window: int = 1024) -> bytes:
    """The probe frame the engine sends (template.h): Ethernet + IPv4 + TCP SYN + MSS."""
    template = ffi.new("struct pyscan_syn_template *")
    lib.pyscan_template__init(template, _mac("source MAC", src_mac),
                              _mac("destination MAC", dst_mac), _ipv4_be("source address", saddr),
                              _check_int("TTL", ttl, 0, 255), _check_int("MSS", mss, 0, 65535),
                              _check_int("window", window, 0, 65535))
    out = ffi.new("uint8_t[]", SYN_FRAME_LEN)
    length = lib.pyscan_template__fill_export(
        template, out, _ipv4_be("destination address", daddr), _port_be("source port", sport),
        _port_be("destination port", dport), _check_int("sequence number", seq, 0, 2**32 - 1),
        _check_int("IP ID", ip_id, 0, 65535))
    return bytes(ffi.buffer(out, length))


class RateLimit:
    """Token bucket (ratelimit.h) with an explicit clock, so tests can drive it with fake
    time; ``pps <= 0`` means unlimited. ``reserve(n, now_ns)`` takes n tokens and answers how
    many ns to wait before sending them."""

    def __init__(self, pps: float, max_burst: int, now_ns: int = 0) -> None:
        if not isinstance(pps, int | float) or pps != pps:
            raise ValueError(f"rate {pps!r} is not a number of packets per second")
        _check_int("max burst", max_burst, 0, 2**32 - 1)
        self._state = ffi.new("struct pyscan_ratelimit *")
        lib.pyscan_ratelimit__init(self._state, float(pps), max_burst,
                                   _check_int("now_ns", now_ns, 0, _U64_MAX))
        self.pps = pps
        self.max_burst = max_burst

    @property
    def unlimited(self) -> bool:
        return bool(self._state.unlimited)

    def reserve(self, n: int, now_ns: int) -> int:
        return int(lib.pyscan_ratelimit__reserve_export(
            self._state, _check_int("token count", n, 0, 2**32 - 1),
            _check_int("now_ns", now_ns, 0, _U64_MAX)))


def monotonic_ns() -> int:
    """CLOCK_MONOTONIC as the native rate limiter reads it."""
    return int(lib.pyscan_clock__now_ns())


def sleep_until_ns(deadline_ns: int) -> None:
    """The native TX loop's wait: nanosleep, then spin the last ~50 us (holds the GIL)."""
    lib.pyscan_clock__sleep_until_ns(_check_int("deadline_ns", deadline_ns, 0, _U64_MAX))



# ---- core / engine: TX and RX loops (engine.h) - owned by the engine/drivers area ----------
# Engine is built from plain Python values; run_tx/run_rx block in C with the GIL released,
# so the caller runs them in threading.Thread and stops them with stop_tx()/stop_rx().

ENGINE_MAX_TX_THREADS = int(lib.PYSCAN_ENGINE_MAX_TX_THREADS)
ENGINE_MAX_BATCH = int(lib.PYSCAN_ENGINE_MAX_BATCH)
RESULT_STATUS = {int(lib.PYSCAN_RESULT_OPEN): "open", int(lib.PYSCAN_RESULT_CLOSED): "closed"}
INGEST_OUTCOMES = {
    int(lib.PYSCAN_INGEST_OPEN): "open",
    int(lib.PYSCAN_INGEST_CLOSED): "closed",
    int(lib.PYSCAN_INGEST_MALFORMED): "malformed",
    int(lib.PYSCAN_INGEST_NOT_OURS): "not-ours",
    int(lib.PYSCAN_INGEST_INVALID_COOKIE): "invalid-cookie",
    int(lib.PYSCAN_INGEST_DUPLICATE): "duplicate",
    int(lib.PYSCAN_INGEST_IGNORED_FLAGS): "ignored-flags",
}
ENGINE_STATS_FIELDS = (
    "total_targets", "generated", "sent", "tx_errors", "tx_retries", "tx_threads",
    "tx_threads_done", "tx_stopped", "rx_frames", "rx_malformed", "rx_not_ours", "rx_ours",
    "rx_ignored_flags", "rx_invalid_cookie", "rx_open", "rx_closed", "rx_duplicates",
    "results_pending", "results_full_waits",
)


class RawResult(NamedTuple):
    """One validated, deduplicated reply as the RX thread reported it (struct pyscan_result)."""

    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int
    status: str       # "open" (SYN-ACK) or "closed" (RST+ACK)
    ttl: int
    timestamp: float  # seconds since the epoch (CLOCK_REALTIME at parse time)
    l4_proto: int = 6  # IP protocol number of the reply
    icmp_type: int = 0  # ICMP replies only
    icmp_code: int = 0


def _raw_result(r: object) -> RawResult:
    address = bytes(ffi.buffer(r.addr))  # type: ignore[attr-defined]
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = (
        ipaddress.IPv4Address(address[:4]) if r.family == 4  # type: ignore[attr-defined]
        else ipaddress.IPv6Address(address))
    return RawResult(ip, int(r.port), RESULT_STATUS.get(int(r.status), "unknown"),  # type: ignore[attr-defined]
                     int(r.ttl), int(r.timestamp_ns) / 1e9, int(r.l4_proto),  # type: ignore[attr-defined]
                     int(r.icmp_type), int(r.icmp_code))  # type: ignore[attr-defined]


def probe_name(probe_id: int) -> str | None:
    """The C probe table's name for ``probe_id`` (probe.c), or None if there is no such row."""
    name = lib.pyscan_probe__name(probe_id) if 0 <= probe_id < 2**32 else ffi.NULL
    return None if name == ffi.NULL else ffi.string(name).decode()


def probe_count() -> int:
    """Rows in the C probe table (probe_ids.h)."""
    return int(lib.pyscan_probe__count())


def _probe_id(probe: str | int) -> int:
    if isinstance(probe, str):
        probe_id = int(lib.pyscan_probe__by_name(probe.encode()))
        if probe_id < 0:
            known = ", ".join(str(probe_name(i)) for i in range(probe_count()))
            raise ValueError(f"probe {probe!r} is unknown: accepted {known}")
        return probe_id
    return _check_int("probe id", probe, 0, 255)  # engine create refuses ids it lacks


class _OwnsHandle:
    """A Python object owning one C handle: ``close()`` frees it once (idempotent), ``with``
    closes it, and so does garbage collection of an object that was never closed."""

    _handle: object

    @staticmethod
    def _destroy(handle: object) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Free the handle; idempotent."""
        if self._handle is not None:
            self._destroy(self._handle)
            self._handle = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # __init__ may have raised before _handle existed
        if getattr(self, "_handle", None) is not None:
            self.close()


class Engine(_OwnsHandle):
    """The native scan engine for one shard (engine.h).

    ``run_tx(i, ring)`` for each TX thread i and ``run_rx(ring)`` block until done/stopped;
    call them from ``threading.Thread``s. ``close()`` only after those threads have returned.
    """

    def __init__(self, *, cookie_key: bytes, seed: int,
                 source_ip: str | int | ipaddress.IPv4Address, source_mac: str | bytes,
                 gateway_mac: str | bytes,
                 ranges: Sequence[tuple[str | int | ipaddress.IPv4Address,
                                        str | int | ipaddress.IPv4Address]],
                 ports: Sequence[int], source_ports: range = range(40000, 40001),
                 ttl: int = 64, mss: int = 1460, window: int = 1024, rate: float = 0.0,
                 shard: tuple[int, int] = (0, 1), tx_threads: int = 1,
                 batch_size: int = 64, max_results: int = 0,
                 probe: str | int = "tcp-syn") -> None:
        if not isinstance(cookie_key, bytes | bytearray) or len(cookie_key) != 16:
            raise ValueError(f"cookie key {cookie_key!r} is not 16 bytes")
        if not isinstance(source_ports, range) or source_ports.step != 1 or not source_ports \
                or source_ports.start < 0 or source_ports.stop > 65536:
            raise ValueError(f"source ports {source_ports!r} are invalid: accepted a non-empty "
                             "range(first, last + 1) with step 1 within 0..65535")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate >= 0 \
                or rate == float("inf"):
            raise ValueError(f"rate {rate!r} is invalid: accepted packets per second >= 0 "
                             "(0 = unlimited)")
        if not isinstance(shard, tuple) or len(shard) != 2:
            raise ValueError(f"shard {shard!r} is invalid: accepted (index, count), 0-based")
        shard_index, shard_count = shard
        pairs = [v for first, last in ranges
                 for v in (int(_ipv4("range start", first)), int(_ipv4("range end", last)))]
        port_list = [_check_int("port", p, 0, 65535) for p in ports]
        self._ranges = ffi.new("uint32_t[]", pairs or [0])
        self._ports = ffi.new("uint16_t[]", port_list or [0])
        cfg = ffi.new("struct pyscan_engine_config *")
        cfg.cookie_key = bytes(cookie_key)
        cfg.seed = _check_int("seed", seed, 0, _U64_MAX)
        cfg.rate_pps = float(rate)
        cfg.ranges = self._ranges
        cfg.ports = self._ports
        cfg.n_ranges = len(pairs) // 2
        cfg.n_ports = len(port_list)
        cfg.source_ip_be = _ipv4_be("source address", source_ip)
        cfg.shard_index = _check_int("shard index", shard_index, 0, 2**32 - 1)
        cfg.shard_count = _check_int("shard count", shard_count, 1, 2**32 - 1)
        if shard_index >= shard_count:
            raise ValueError(f"shard {shard!r} is invalid: accepted (index, count) with "
                             "0 <= index < count")
        cfg.tx_threads = _check_int("tx_threads", tx_threads, 1, ENGINE_MAX_TX_THREADS)
        cfg.batch_size = _check_int("batch size", batch_size, 1, ENGINE_MAX_BATCH)
        cfg.max_results = _check_int("max results", max_results, 0, 2**31)
        cfg.source_mac = _mac("source MAC", source_mac)
        cfg.gateway_mac = _mac("gateway MAC", gateway_mac)
        cfg.source_port_first = source_ports.start
        cfg.source_port_count = len(source_ports)
        cfg.mss = _check_int("MSS", mss, 0, 65535)
        cfg.window = _check_int("window", window, 0, 65535)
        cfg.ttl = _check_int("TTL", ttl, 0, 255)
        cfg.probe_id = _probe_id(probe)
        err = ffi.new("char[256]")
        handle = lib.pyscan_engine__create(cfg, err, 256)
        if handle == ffi.NULL:
            raise ValueError(ffi.string(err).decode(errors="replace"))
        self._cfg = cfg
        self._handle = handle
        self.tx_threads = tx_threads
        self.source_ports = source_ports
        self._drain_buf = ffi.new("struct pyscan_result[]", 1)
        self._stats_buf = ffi.new("struct pyscan_engine_stats *")

    def _live(self) -> object:
        if self._handle is None:
            raise ValueError("engine is closed")
        return self._handle

    def thread_total(self, thread_index: int) -> int:
        """Probes TX thread ``thread_index`` owes in this shard."""
        _check_int("thread index", thread_index, 0, self.tx_threads - 1)
        return int(lib.pyscan_engine__thread_total(self._live(), thread_index))

    def run_tx(self, thread_index: int, ring: object) -> None:
        """Send thread ``thread_index``'s probes on ``ring``; returns when done or stopped."""
        _check_int("thread index", thread_index, 0, self.tx_threads - 1)
        rc = lib.pyscan_engine__run_tx(self._live(), thread_index, ring)
        if rc < 0:
            detail = ring_error(ring) or os.strerror(-rc)
            raise OSError(-rc, f"TX thread {thread_index} failed: {detail}")

    def run_rx(self, ring: object) -> None:
        """Receive and validate replies from ``ring`` until ``stop_rx()``."""
        rc = lib.pyscan_engine__run_rx(self._live(), ring)
        if rc < 0:
            detail = ring_error(ring) or os.strerror(-rc)
            raise OSError(-rc, f"RX thread failed: {detail}")

    def stop_tx(self) -> None:
        lib.pyscan_engine__stop_tx(self._live())

    def stop_rx(self) -> None:
        lib.pyscan_engine__stop_rx(self._live())

    def ingest(self, frame: bytes) -> str:
        """Feed one received frame to the RX path directly (tests; not while run_rx runs).
        Returns what became of it: see INGEST_OUTCOMES."""
        rc = lib.pyscan_engine__ingest(self._live(), bytes(frame), len(frame))
        return INGEST_OUTCOMES[int(rc)]

    def drain(self, max: int = 8192) -> list[RawResult]:
        """Take up to ``max`` queued results (from one consumer thread at a time)."""
        _check_int("max", max, 1, 2**31)
        if len(self._drain_buf) < max:
            self._drain_buf = ffi.new("struct pyscan_result[]", max)
        buf = self._drain_buf
        n = lib.pyscan_engine__drain(self._live(), buf, max)
        return [_raw_result(buf[i]) for i in range(n)]

    def targets(self, thread_index: int, k_first: int, n: int) -> list[tuple[int, int]]:
        """(address as int, port) of TX thread ``thread_index``'s probes ``k_first`` ..
        ``k_first + n - 1`` in sending order (fewer at the end): the engine's own order."""
        _check_int("thread index", thread_index, 0, self.tx_threads - 1)
        _check_int("count", n, 0, 2**31)
        ips, ports = ffi.new("uint32_t[]", max(n, 1)), ffi.new("uint16_t[]", max(n, 1))
        got = lib.pyscan_engine__targets(self._live(), thread_index,
                                         _check_int("k", k_first, 0, _U64_MAX), n, ips, ports)
        return list(zip(ips[0:got], ports[0:got], strict=True))

    def stats(self) -> dict[str, int]:
        """Engine counters (racy snapshot); ``thread_sent_<i>``/``thread_generated_<i>`` per
        TX thread (generated is also how far that thread got, for resume)."""
        out = self._stats_buf
        lib.pyscan_engine__stats(self._live(), out)
        stats = {name: int(getattr(out, name)) for name in ENGINE_STATS_FIELDS}
        for i in range(self.tx_threads):
            stats[f"thread_sent_{i}"] = int(out.thread_sent[i])
            stats[f"thread_generated_{i}"] = int(out.thread_generated[i])
        return stats

    @staticmethod
    def _destroy(handle: object) -> None:
        # close(): its TX/RX threads must have returned
        lib.pyscan_engine__destroy(handle)


# --- drivers: null, af_packet ---------------------------------------------------------------
# Rings are cdata owned by whoever opened them: pass them to Engine.run_tx/run_rx, read
# ring_stats(), and close_ring() exactly when no thread uses them any more.

NULL_SLOT_SIZE = int(lib.PYSCAN_NULL_SLOT_SIZE)
NULL_MAX_SLOTS = int(lib.PYSCAN_NULL_MAX_SLOTS)
NULL_CAPTURE_STRIDE = int(lib.PYSCAN_NULL_CAPTURE_STRIDE)


def close_ring(ring: object) -> None:
    """Release a ring opened here (sockets, maps, memory); idempotent."""
    if ring is not None and ring != ffi.NULL:
        ffi.release(ring)


def _opened(ring: object, what: str) -> object:
    if ring == ffi.NULL:
        code = ffi.errno or 12
        raise OSError(code, f"{what} failed: {os.strerror(code)}")
    return ffi.gc(ring, lib.pyscan_ring__destroy)


def open_null_tx(slots: int = 1024, capture_frames: int = 0) -> object:
    """A TX ring that sends nothing (null driver); with ``capture_frames`` it records the
    first NULL_CAPTURE_STRIDE - 4 bytes of that many frames (read with null_captured)."""
    _check_int("null ring slots", slots, 1, NULL_MAX_SLOTS)
    _check_int("capture frames", capture_frames, 0, 2**32 - 1)
    return _opened(lib.pyscan_null__open_capture(slots, capture_frames), "null TX ring")


def open_null_rx(slots: int = 1024) -> object:
    """An RX ring that yields the frames given to null_inject (tests of the RX loop)."""
    _check_int("null RX slots", slots, 1, NULL_MAX_SLOTS)
    return _opened(lib.pyscan_null__open_rx(slots), "null RX ring")


def null_captured(ring: object) -> list[bytes]:
    """Frames a capturing null TX ring recorded, in submission order (truncated to
    NULL_CAPTURE_STRIDE - 4 bytes)."""
    base = ffi.new("const uint8_t **")
    count = int(lib.pyscan_null__captured(ring, base))
    if not count:
        return []
    raw = bytes(ffi.buffer(base[0], count * NULL_CAPTURE_STRIDE))
    frames = []
    for i in range(count):
        record = raw[i * NULL_CAPTURE_STRIDE:(i + 1) * NULL_CAPTURE_STRIDE]
        length = min(int.from_bytes(record[:4], "little"), NULL_CAPTURE_STRIDE - 4)
        frames.append(record[4:4 + length])
    return frames


def null_inject(ring: object, frame: bytes) -> bool:
    """Queue a frame on a null RX ring; False when the ring is full."""
    rc = lib.pyscan_null__inject(ring, bytes(frame), len(frame))
    if rc == -105:  # ENOBUFS
        return False
    if rc < 0:
        raise ValueError(f"frame of {len(frame)} bytes rejected by the null RX ring: "
                         f"{os.strerror(-rc)} (accepted up to {NULL_SLOT_SIZE} bytes)")
    return True


def open_afpacket_tx(ifindex: int, frames: int = 0) -> object:
    """An AF_PACKET TPACKET_V2 TX ring on ``ifindex`` of the calling thread's netns
    (0 frames = default). Raises OSError with a one-line reason."""
    _check_int("ifindex", ifindex, 1, 2**31 - 1)
    _check_int("TX ring frames", frames, 0, 1 << 20)
    err = ffi.new("char[256]")
    ring = lib.pyscan_afpacket__open_tx(ifindex, frames, err, 256)
    if ring == ffi.NULL:
        raise OSError(ffi.errno or 22, ffi.string(err).decode(errors="replace"))
    return ffi.gc(ring, lib.pyscan_ring__destroy)


def afpacket_filter_ports(ring: object, ports: range) -> None:
    """Let an af-packet RX ring's kernel filter pass only replies to ``ports`` (the scan's
    source ports); safe while the RX thread runs."""
    if not isinstance(ports, range) or ports.step != 1 or not ports or ports.start < 0 \
            or ports.stop > 65536:
        raise ValueError(f"port range {ports!r} is invalid: accepted a non-empty "
                         "range(first, last + 1) within 0..65535")
    rc = lib.pyscan_afpacket__filter_ports(ring, ports.start, len(ports))
    if rc < 0:
        raise OSError(-rc, ring_error(ring) or os.strerror(-rc))


def open_afpacket_rx(ifindex: int, block_size: int = 0, blocks: int = 0) -> object:
    """An AF_PACKET TPACKET_V3 RX ring (reply filter attached) on ``ifindex`` of the calling
    thread's netns (0 = defaults). Raises OSError with a one-line reason."""
    _check_int("ifindex", ifindex, 1, 2**31 - 1)
    _check_int("RX block size", block_size, 0, 2**31)
    _check_int("RX blocks", blocks, 0, 2**20)
    err = ffi.new("char[256]")
    ring = lib.pyscan_afpacket__open_rx(ifindex, block_size, blocks, err, 256)
    if ring == ffi.NULL:
        raise OSError(ffi.errno or 22, ffi.string(err).decode(errors="replace"))
    return ffi.gc(ring, lib.pyscan_ring__destroy)




# --- BPF objects: load, attach, maps (lab sink, reply filter) --------------------------------
# bpf_object.c reports failures as -errno plus a thread-local one-line reason; BpfError carries
# both, and the full libbpf output (verifier log) in .log for when the one line is not enough.

XDP_MODES = {"native": lib.PYSCAN_XDP_MODE_NATIVE, "generic": lib.PYSCAN_XDP_MODE_GENERIC}


class BpfError(OSError):
    """A libbpf operation failed; ``str()`` is one line, ``.log`` what libbpf printed."""

    def __init__(self, errno: int, message: str, log: str = "") -> None:
        super().__init__(errno, message)
        self.log = log

    def __str__(self) -> str:
        return str(self.strerror)


def _bpf_check(rc: int) -> int:
    if rc < 0:
        raise BpfError(
            -rc,
            ffi.string(lib.pyscan_bpf__error()).decode(errors="replace"),
            ffi.string(lib.pyscan_bpf__log()).decode(errors="replace"),
        )
    return rc


def _xdp_mode(mode: str | None) -> int:
    if mode is None:
        return 0
    if mode not in XDP_MODES:
        raise ValueError(f"XDP mode {mode!r} is not one of: {', '.join(XDP_MODES)}")
    return int(XDP_MODES[mode])


def _u32_key(key: int | bytes) -> bytes:
    return key if isinstance(key, bytes) else int(key).to_bytes(4, "little")


def bpf_set_verbose(verbose: bool) -> None:
    """Let libbpf print to stderr (debugging a load failure); silent by default."""
    lib.pyscan_bpf__set_verbose(1 if verbose else 0)


def bpf_possible_cpus() -> int:
    """How many per-CPU slots a per-CPU map value has (possible, not online, CPUs)."""
    return _bpf_check(lib.pyscan_bpf__possible_cpus())


def bpf_map_sizes(map_fd: int) -> tuple[int, int, int, int]:
    """(key_size, value_size, max_entries, map_type) of a map fd."""
    out = ffi.new("uint32_t[4]")
    _bpf_check(lib.pyscan_bpf_map__sizes(map_fd, out, out + 1, out + 2, out + 3))
    return int(out[0]), int(out[1]), int(out[2]), int(out[3])


def bpf_map_update(map_fd: int, key: int | bytes, value: bytes, flags: int = 0) -> None:
    """Write one element (for per-CPU maps ``value`` holds one 8-aligned value per CPU)."""
    key_bytes = _u32_key(key)
    key_size, value_size, _, _ = bpf_map_sizes(map_fd)
    if len(key_bytes) != key_size or len(value) < value_size:
        raise ValueError(
            f"map fd {map_fd} takes {key_size}-byte keys and {value_size}-byte values, "
            f"got {len(key_bytes)} and {len(value)}"
        )
    _bpf_check(lib.pyscan_bpf_map__update(map_fd, key_bytes, value, flags))


def bpf_map_lookup(map_fd: int, key: int | bytes) -> bytes:
    """Read one element of a (non-per-CPU) map."""
    key_bytes = _u32_key(key)
    key_size, value_size, _, _ = bpf_map_sizes(map_fd)
    if len(key_bytes) != key_size:
        raise ValueError(f"map fd {map_fd} takes {key_size}-byte keys, got {len(key_bytes)}")
    value = ffi.new("uint8_t[]", max(value_size, 1))
    _bpf_check(lib.pyscan_bpf_map__lookup(map_fd, key_bytes, value))
    return bytes(ffi.buffer(value, value_size))


def bpf_percpu_sum(map_fd: int, key: int = 0) -> tuple[int, ...]:
    """Each u64 word of a per-CPU map's value at ``key``, summed over all possible CPUs."""
    words = ffi.new("uint64_t[64]")
    count = _bpf_check(lib.pyscan_bpf_map__percpu_sum(map_fd, key, words, 64))
    return tuple(int(words[i]) for i in range(count))


def bpf_test_run(prog_fd: int, data: bytes, repeat: int = 1) -> tuple[int, int, bytes]:
    """BPF_PROG_TEST_RUN: (retval, mean duration in ns, frame as the program left it)."""
    if repeat < 1:
        raise ValueError(f"repeat {repeat} must be at least 1")
    result = ffi.new("struct pyscan_bpf_test_result *")
    capacity = len(data) + 4096   # room for a program that grows the frame (adjust_tail)
    out = ffi.new("uint8_t[]", capacity)
    _bpf_check(lib.pyscan_bpf_prog__test_run(prog_fd, data, len(data), repeat, out, capacity,
                                             result))
    return int(result.retval), int(result.duration_ns), bytes(ffi.buffer(out,
                                                                        result.data_out_len))


def xdp_query(ifindex: int) -> dict[str, int]:
    """Program ids attached to an interface of the calling thread's netns (0 = none)."""
    out = ffi.new("struct pyscan_xdp_attachment *")
    _bpf_check(lib.pyscan_xdp__query(ifindex, out))
    return {"prog_id": int(out.prog_id), "native_id": int(out.native_id),
            "generic_id": int(out.generic_id), "mode": int(out.mode)}


def xdp_attached_prog_id(ifindex: int, mode: str | None = None) -> int:
    """Id of the XDP program on ``ifindex`` (in ``mode`` if given), 0 when there is none."""
    ids = xdp_query(ifindex)
    if mode is None:
        return ids["prog_id"] or ids["native_id"] or ids["generic_id"]
    _xdp_mode(mode)
    return ids["native_id"] if mode == "native" else ids["generic_id"]


def xdp_detach(ifindex: int, mode: str | None = None, expected_prog_id: int = 0) -> None:
    """Remove the netlink-attached XDP program(s) on ``ifindex``: only ``expected_prog_id``
    when given (a program someone else attached since is left alone), any mode when None.
    A missing interface or program is not an error."""
    _bpf_check(lib.pyscan_xdp__detach(ifindex, _xdp_mode(mode), expected_prog_id))


def read_attached_percpu(ifindex: int, map_name: str, key: int = 0,
                         prog_id: int = 0) -> tuple[int, ...]:
    """Per-CPU sums of ``map_name`` of the program attached to ``ifindex`` (or ``prog_id``),
    from any process: the program need not have been loaded by this one."""
    import os

    map_fd = _bpf_check(lib.pyscan_xdp__attached_map_fd(ifindex, prog_id, map_name.encode()))
    try:
        return bpf_percpu_sum(map_fd, key)
    finally:
        os.close(map_fd)


def reset_attached_percpu(ifindex: int, map_name: str, key: int = 0, prog_id: int = 0) -> None:
    """Zero entry ``key`` of per-CPU map ``map_name`` of the program attached to ``ifindex``
    on every CPU (a benchmark starting from a clean count)."""
    import os

    map_fd = _bpf_check(lib.pyscan_xdp__attached_map_fd(ifindex, prog_id, map_name.encode()))
    try:
        _, value_size, _, _ = bpf_map_sizes(map_fd)
        stride = (value_size + 7) // 8 * 8
        bpf_map_update(map_fd, key, bytes(stride * bpf_possible_cpus()))
    finally:
        os.close(map_fd)


class BpfObject(_OwnsHandle):
    """One BPF object file: ``set_rodata`` -> ``load`` -> ``attach_xdp`` -> maps -> ``close``.

    ``attach_xdp(persist=False)`` makes a bpf_link (gone with ``close()`` or the process);
    ``persist=True`` attaches through netlink and outlives the process until ``detach()`` or
    ``xdp_detach(ifindex, expected_prog_id=...)``. Fds returned belong to the object.
    """

    def __init__(self, path: object) -> None:
        self.path = str(path)
        handle = lib.pyscan_bpf_object__open(self.path.encode())
        if handle == ffi.NULL:
            _bpf_check(-(ffi.errno or 22))
        self._handle = handle
        self.attached_ifindex = 0
        self.attached_prog_id = 0

    def _live(self) -> object:
        if self._handle is None:
            raise ValueError(f"BPF object {self.path} is closed")
        return self._handle

    def set_initial_value(self, map_name: str, data: bytes) -> None:
        """Initial contents of a global-data map (``.rodata``, ``.data``), before ``load``."""
        _bpf_check(lib.pyscan_bpf_object__set_initial_value(self._live(), map_name.encode(),
                                                            data, len(data)))

    def set_rodata(self, data: bytes) -> None:
        """The whole ``.rodata`` (``const volatile`` globals, in declaration order)."""
        self.set_initial_value(".rodata", data)

    def load(self) -> BpfObject:
        _bpf_check(lib.pyscan_bpf_object__load(self._live()))
        return self

    def prog_fd(self, prog: str | None = None) -> int:
        """Fd of program ``prog`` (its function name), or of the only program when None."""
        return _bpf_check(lib.pyscan_bpf_object__prog_fd(
            self._live(), prog.encode() if prog else ffi.NULL))

    def map_fd(self, map_name: str) -> int:
        return _bpf_check(lib.pyscan_bpf_object__map_fd(self._live(), map_name.encode()))

    def attach_xdp(self, ifindex: int, mode: str = "native", persist: bool = False,
                   prog: str | None = None) -> int:
        """Attach program ``prog`` (default: the only one) to ``ifindex`` of the calling
        thread's netns; returns the kernel's program id."""
        _bpf_check(lib.pyscan_bpf_object__attach_xdp(
            self._live(), prog.encode() if prog else ffi.NULL, ifindex, _xdp_mode(mode),
            1 if persist else 0))
        self.attached_ifindex = ifindex
        self.attached_prog_id = xdp_attached_prog_id(ifindex, mode)
        return self.attached_prog_id

    def detach(self) -> None:
        """Remove this object's attachment (link or netlink); no-op when not attached."""
        _bpf_check(lib.pyscan_bpf_object__detach(self._live()))
        self.attached_ifindex = 0
        self.attached_prog_id = 0

    def map_update(self, map_name: str, key: int | bytes, value: bytes, flags: int = 0) -> None:
        bpf_map_update(self.map_fd(map_name), key, value, flags)

    def map_lookup(self, map_name: str, key: int | bytes) -> bytes:
        return bpf_map_lookup(self.map_fd(map_name), key)

    def percpu_sum(self, map_name: str, key: int = 0) -> tuple[int, ...]:
        return bpf_percpu_sum(self.map_fd(map_name), key)

    def test_run(self, prog: str | None, data: bytes, repeat: int = 1) -> tuple[int, int, bytes]:
        """BPF_PROG_TEST_RUN: (retval, mean duration in ns, frame as the program left it)."""
        return bpf_test_run(self.prog_fd(prog), data, repeat)

    @staticmethod
    def _destroy(handle: object) -> None:
        # close(): a bpf_link attachment ends, a persistent one stays
        lib.pyscan_bpf_object__close(handle)



# --- driver: af_xdp -------------------------------------------------------------------------
# The reply filter (pyscan/bpf/reply_filter.bpf.o) and the AF_XDP socket set of one interface
# (pyscan/native/drv_af_xdp.c). Rings handed out by AfXdp belong to it: AfXdp.close() detaches
# the filter, closes the sockets and destroys the rings; nobody else destroys them.

from ipaddress import IPv4Address as _IPv4Address  # noqa: E402
from os import strerror as _strerror  # noqa: E402
from pathlib import Path as _Path  # noqa: E402
from typing import NoReturn as _NoReturn  # noqa: E402

REPLY_FILTER_OBJECT = str(_Path(__file__).resolve().parent.parent / "bpf" / "reply_filter.bpf.o")
REPLY_FILTER_COUNTERS = ("seen", "matched", "passed", "unqueued")
XDP_BIND_MODES = {"auto": lib.PYSCAN_AFXDP_BIND_AUTO, "zerocopy": lib.PYSCAN_AFXDP_BIND_ZEROCOPY,
                  "copy": lib.PYSCAN_AFXDP_BIND_COPY}
XDP_ATTACH_MODES = {"auto": lib.PYSCAN_AFXDP_ATTACH_AUTO,
                    "native": lib.PYSCAN_AFXDP_ATTACH_NATIVE,
                    "generic": lib.PYSCAN_AFXDP_ATTACH_GENERIC}
XDP_ACTIONS = {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}
_ERROR_BUFFER = 320


class AfXdpError(OSError):
    """Opening the AF_XDP driver or loading its filter failed; .strerror is the one-line
    reason (str() adds the errno in front, as for any OSError)."""


def _ip_be(address: object) -> int:
    """An IPv4 address (or None = any) as the u32 whose memory holds it in network order."""
    if address is None:
        return 0
    return int.from_bytes(_IPv4Address(address).packed, "little")  # type: ignore[arg-type]


def _raise_from(err: object, fallback: str) -> _NoReturn:
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

    def _live(self) -> object:
        if self._handle is None:
            raise ValueError("reply filter is closed")
        return self._handle

    @property
    def prog_id(self) -> int:
        return int(lib.pyscan_replyfilter__prog_id(self._live()))

    def test_run(self, frame: bytes) -> str:
        """Runs the program once on frame (BPF_PROG_TEST_RUN); returns the XDP action name."""
        action = ffi.new("uint32_t *")
        rc = lib.pyscan_replyfilter__test_run(self._live(), frame, len(frame), action)
        if rc < 0:
            raise AfXdpError(-rc, f"BPF_PROG_TEST_RUN failed: {_strerror(-rc)}")
        return XDP_ACTIONS.get(int(action[0]), str(int(action[0])))

    def counters(self) -> dict[str, int]:
        out = ffi.new("uint64_t[]", len(REPLY_FILTER_COUNTERS))
        lib.pyscan_replyfilter__counters(self._live(), out, len(REPLY_FILTER_COUNTERS))
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
                 ports: range = range(0, 65536), rx_queues: int | None = None,
                 rx_ring_size: int = 0, object_path: str = REPLY_FILTER_OBJECT) -> None:
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
        cfg.rx_queues = queue_count if rx_queues is None else rx_queues
        cfg.key = key
        cfg.rx_ring_size = rx_ring_size  # 0: ring_size
        err = ffi.new("char[]", _ERROR_BUFFER)
        handle = lib.pyscan_afxdp__open(cfg, object_path.encode(), err, _ERROR_BUFFER)
        if handle == ffi.NULL:
            _raise_from(err, f"af-xdp failed to open {interface}")
        self._handle = handle
        self._final_counters: dict[str, int] = {}
        self.tx_rings = [lib.pyscan_afxdp__tx_ring(handle, i) for i in range(tx_queues)]
        rx = lib.pyscan_afxdp__rx_ring(handle)
        self.rx_ring = None if rx == ffi.NULL else rx

    def info(self) -> dict[str, object]:
        if self._handle is None:
            raise ValueError("af-xdp sockets are closed")
        out = ffi.new("struct pyscan_afxdp_info *")
        lib.pyscan_afxdp__info(self._handle, out)
        warnings = ffi.string(out.warnings).decode(errors="replace")
        return {
            "zerocopy": bool(out.zerocopy), "generic_attach": bool(out.generic_attach),
            "queue_count": int(out.queue_count), "tx_queues": int(out.tx_queues),
            "ring_size": int(out.ring_size), "frame_size": int(out.frame_size),
            "prog_id": int(out.prog_id), "rx_queues": int(out.rx_queues),
            "rx_ring_size": int(out.rx_ring_size),
            "warnings": [w for w in warnings.split("; ") if w],
        }

    def filter_counters(self) -> dict[str, int]:
        """The filter's seen/matched/passed/unqueued; after close(), the values it ended
        with."""
        if self._handle is None:
            return dict(self._final_counters)
        out = ffi.new("uint64_t[]", len(REPLY_FILTER_COUNTERS))
        lib.pyscan_afxdp__filter_counters(self._handle, out, len(REPLY_FILTER_COUNTERS))
        return {name: int(out[i]) for i, name in enumerate(REPLY_FILTER_COUNTERS)}

    def close(self) -> None:
        """Detaches the filter, closes the sockets, destroys the rings. Idempotent."""
        if self._handle is None:
            return
        self._final_counters = self.filter_counters()
        handle, self._handle = self._handle, None
        rings = [*self.tx_rings, *([self.rx_ring] if self.rx_ring is not None else [])]
        self.tx_rings, self.rx_ring = [], None
        lib.pyscan_afxdp__close(handle)
        for ring in rings:
            lib.pyscan_ring__destroy(ring)



# --- driver: pfring_zc ----------------------------------------------------------------------
# libpfring.so is dlopen'd by C (drv_pfring_zc.c), never linked: probing a path that does not
# exist returns a reason, never raises. One cluster per scan; rings hold references on it, so
# rings and cluster may be released in any order (close_ring / PfringZcCluster.close).

PFRING_ZC_TX_HANDLES = int(lib.PYSCAN_PFRING_ZC_TX_HANDLES)
PFRING_ZC_RX_HANDLES = int(lib.PYSCAN_PFRING_ZC_RX_HANDLES)
PFRING_ZC_MAX_RX_QUEUES = int(lib.PYSCAN_PFRING_ZC_MAX_RX_QUEUES)


class PfringZcProbe(NamedTuple):
    """What loading one libpfring candidate found (nothing stays loaded)."""

    library: str         # the name or path that was tried
    loaded: bool         # dlopen worked and every required pfring_zc_* symbol is exported
    loaded_from: str     # the file the loader mapped ("" when not loaded)
    version: str         # pfring_zc_version()
    missing_symbol: str  # first required symbol the library lacks
    error: str           # dlerror() text when it could not be loaded
    total_memory: int    # bytes a cluster of the probed size needs (0 = library cannot say)


def pfring_zc_probe(library: str, buffer_len: int = 1536, num_buffers: int = 0) -> PfringZcProbe:
    out = ffi.new("struct pyscan_pfring_zc_probe *")
    rc = lib.pyscan_pfring_zc__probe(library.encode(), buffer_len, num_buffers, out)
    return PfringZcProbe(library=library, loaded=rc == 0,
                         loaded_from=_c_text(out.loaded_from), version=_c_text(out.version),
                         missing_symbol=_c_text(out.missing), error=_c_text(out.error),
                         total_memory=int(out.total_memory))


def _c_text(field: object) -> str:
    return ffi.string(field).decode(errors="replace")


def _pfring_zc_failed(what: str, err: object) -> OSError:
    code = ffi.errno or 5
    message = ffi.string(err).decode(errors="replace") or f"{what}: {os.strerror(code)}"
    return OSError(code, message)


def pfring_zc_queue_stats(ring: object) -> dict[str, int]:
    """pfring_zc_stats() summed over the queues of a pfring-zc ring."""
    out = ffi.new("struct pyscan_pfring_zc_stats *")
    lib.pyscan_pfring_zc__queue_stats(ring, out)
    return {"recv": int(out.recv), "sent": int(out.sent), "drop": int(out.drop),
            "queues": int(out.queues)}


class PfringZcCluster:
    """A ZC cluster created by the library at ``library``; raises OSError (errno + message)."""

    def __init__(self, library: str, cluster_id: int, buffer_len: int, num_buffers: int,
                 hugepages_mount: str | None = None, numa_node: int = 0) -> None:
        _check_int("cluster id", cluster_id, 0, 2**32 - 1)
        _check_int("buffer length", buffer_len, 64, 65535)
        _check_int("number of buffers", num_buffers, 1, 2**32 - 1)
        _check_int("NUMA node", numa_node, 0, 1023)
        err = ffi.new("char[256]")
        raw = lib.pyscan_pfring_zc__create(library.encode(), cluster_id, buffer_len,
                                           num_buffers, numa_node,
                                           (hugepages_mount or "").encode(), err, len(err))
        if raw == ffi.NULL:
            raise _pfring_zc_failed("pfring_zc_create_cluster", err)
        self._cluster = ffi.gc(raw, lib.pyscan_pfring_zc__release)

    @property
    def version(self) -> str:
        return ffi.string(lib.pyscan_pfring_zc__version(self._cluster)).decode(errors="replace")

    def open_tx(self, device: str) -> object:
        """A TX ring on the tx_only device queue ``device`` ("zc:eth1" or "zc:eth1@2")."""
        err = ffi.new("char[256]")
        ring = lib.pyscan_pfring_zc__open_tx(self._cluster, device.encode(), err, len(err))
        if ring == ffi.NULL:
            raise _pfring_zc_failed(f"pfring_zc_open_device({device})", err)
        return ffi.gc(ring, lib.pyscan_ring__destroy)

    def open_rx(self, devices: Sequence[str]) -> object:
        """One RX ring reading the rx_only queues ``devices`` in turn."""
        if not 1 <= len(devices) <= PFRING_ZC_MAX_RX_QUEUES:
            raise ValueError(f"{len(devices)} RX queues: accepted 1 to {PFRING_ZC_MAX_RX_QUEUES}")
        names = [ffi.new("char[]", d.encode()) for d in devices]
        array = ffi.new("const char *[]", names)
        err = ffi.new("char[256]")
        ring = lib.pyscan_pfring_zc__open_rx(self._cluster, array, len(names), err, len(err))
        if ring == ffi.NULL:
            raise _pfring_zc_failed(f"pfring_zc_open_device({', '.join(devices)})", err)
        return ffi.gc(ring, lib.pyscan_ring__destroy)

    def licence(self, ring: object = None) -> tuple[int, int]:
        """(1 licensed / 0 demo mode / -1 unknown, expiration epoch or 0)."""
        expiration = ffi.new("uint32_t *")
        state = lib.pyscan_pfring_zc__licence(self._cluster, ring if ring is not None
                                              else ffi.NULL, expiration)
        return int(state), int(expiration[0])

    def close(self) -> None:
        """Drop this reference; the cluster goes when its rings are closed too. Idempotent."""
        if self._cluster is not None:
            ffi.release(self._cluster)
            self._cluster = None
