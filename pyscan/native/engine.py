"""The native scan engine for one shard (engine.h) and its results.

Engine is built from plain Python values; run_tx/run_rx block in C with the GIL released, so
the caller runs them in threading.Thread and stops them with stop_tx()/stop_rx(). Rings come
from the driver modules (``pyscan.native.rings``, ``af_xdp``, ``pfring_zc``) as Ring objects.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from pyscan.native._lib import EnginePtr, ffi, lib
from pyscan.native._values import U64_MAX as _U64_MAX
from pyscan.native._values import check_int as _check_int
from pyscan.native._values import ipv4 as _ipv4
from pyscan.native._values import ipv4_be as _ipv4_be
from pyscan.native._values import ipv6 as _ipv6
from pyscan.native._values import mac as _mac
from pyscan.native.algorithms import tcp_options_id
from pyscan.native.arp import ArpResponder
from pyscan.native.capture import Capture
from pyscan.native.handles import CHandle
from pyscan.native.rings import Ring, ring_error

ENGINE_MAX_TX_THREADS = int(lib.PYSCAN_ENGINE_MAX_TX_THREADS)
ENGINE_MAX_BATCH = int(lib.PYSCAN_ENGINE_MAX_BATCH)
ResultStatus = Literal["open", "closed", "up", "unreachable"]
RESULT_STATUS: dict[int, ResultStatus] = {
    int(lib.PYSCAN_RESULT_OPEN): "open", int(lib.PYSCAN_RESULT_CLOSED): "closed",
    int(lib.PYSCAN_RESULT_UP): "up", int(lib.PYSCAN_RESULT_UNREACHABLE): "unreachable"}
INGEST_OUTCOMES = {
    int(lib.PYSCAN_INGEST_OPEN): "open",
    int(lib.PYSCAN_INGEST_CLOSED): "closed",
    int(lib.PYSCAN_INGEST_MALFORMED): "malformed",
    int(lib.PYSCAN_INGEST_NOT_OURS): "not-ours",
    int(lib.PYSCAN_INGEST_INVALID_COOKIE): "invalid-cookie",
    int(lib.PYSCAN_INGEST_DUPLICATE): "duplicate",
    int(lib.PYSCAN_INGEST_IGNORED_FLAGS): "ignored-flags",
    int(lib.PYSCAN_INGEST_BAD_CHECKSUM): "bad-checksum",
}
ENGINE_STATS_FIELDS = (
    "total_targets", "generated", "sent", "tx_errors", "tx_retries", "tx_threads",
    "tx_threads_done", "tx_stopped", "rx_frames", "rx_malformed", "rx_not_ours", "rx_ours",
    "rx_ignored_flags", "rx_invalid_cookie", "rx_open", "rx_closed", "rx_duplicates",
    "results_pending", "results_full_waits", "rx_bad_checksum", "dedup_bytes",
    "dedup_max_insert_ns", "total_frames", "passes", "results_lost", "rx_unreachable",
)
ENGINE_MAX_RETRIES = int(lib.PYSCAN_ENGINE_MAX_RETRIES)
_TCPOPT_MSS = int(lib.PYSCAN_TCPOPT_MSS)
_TCPOPT_WSCALE = int(lib.PYSCAN_TCPOPT_WSCALE)
_TCPOPT_SACK_OK = int(lib.PYSCAN_TCPOPT_SACK_OK)
_TCPOPT_TIMESTAMP = int(lib.PYSCAN_TCPOPT_TIMESTAMP)
_RTT_UNKNOWN = int(lib.PYSCAN_RESULT_RTT_UNKNOWN)


class RawResult(NamedTuple):
    """One validated, deduplicated reply as the RX thread reported it (struct pyscan_result)."""

    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int
    status: ResultStatus  # open/closed (TCP, UDP), up (echo reply), unreachable (ICMP error)
    ttl: int
    timestamp: float  # seconds since the epoch (CLOCK_REALTIME at parse time)
    l4_proto: int = 6  # IP protocol of the probe: 6 TCP, 17 UDP, 1 ICMP echo, 58 ICMPv6 echo
    icmp_type: int = 0  # ICMP replies only
    icmp_code: int = 0
    # TCP replies: the window and the options MSS, window scale, SACK-permitted, timestamps
    # (None: not in the reply), and the RTT in seconds when the reply echoed our timestamp.
    window: int | None = None
    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool | None = None
    ts_val: int | None = None
    ts_ecr: int | None = None
    rtt: float | None = None


def _raw_result(r: Any) -> RawResult:
    # r: a struct pyscan_result cdata; cffi gives its fields no static types.
    address = bytes(ffi.buffer(r.addr))
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = (
        ipaddress.IPv4Address(address[:4]) if r.family == 4 else ipaddress.IPv6Address(address))
    # An ICMP error about a TCP probe carries no TCP header of the target's: no window/options.
    if int(r.l4_proto) != 6 or int(r.status) == int(lib.PYSCAN_RESULT_UNREACHABLE):
        return RawResult(ip, int(r.port), RESULT_STATUS[int(r.status)],
                         int(r.ttl), int(r.timestamp_ns) / 1e9, int(r.l4_proto),
                         int(r.icmp_type), int(r.icmp_code))
    options = int(r.tcp_options)
    timestamps = bool(options & _TCPOPT_TIMESTAMP)
    return RawResult(ip, int(r.port), RESULT_STATUS[int(r.status)],
                     int(r.ttl), int(r.timestamp_ns) / 1e9, int(r.l4_proto),
                     int(r.icmp_type), int(r.icmp_code),
                     window=int(r.window),
                     mss=int(r.mss) if options & _TCPOPT_MSS else None,
                     wscale=int(r.wscale) if options & _TCPOPT_WSCALE else None,
                     sack_permitted=bool(options & _TCPOPT_SACK_OK),
                     ts_val=int(r.ts_val) if timestamps else None,
                     ts_ecr=int(r.ts_ecr) if timestamps else None,
                     rtt=None if r.rtt_us == _RTT_UNKNOWN else int(r.rtt_us) / 1e6)


def snippet_records(snippets: Capture, max: int = 1024, family: int = 4
                    ) -> list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int, bytes]]:
    """(target address, target port, first payload bytes) of UDP replies the engine
    reported, oldest first (pyscan_engine__set_snippets' record layout: the address is 16
    bytes in an IPv6 scan, ``family`` 6)."""
    size = 16 if family == 6 else 4
    address = ipaddress.IPv6Address if family == 6 else ipaddress.IPv4Address
    return [(address(bytes(frame.data[:size])),
             int.from_bytes(frame.data[size:size + 2], "big"),
             bytes(frame.data[size + 2:])) for frame in snippets.drain(max)]


def probe_name(probe_id: int) -> str | None:
    """The C probe table's name for ``probe_id`` (probe.c), or None if there is no such row."""
    name = lib.pyscan_probe__name(probe_id) if 0 <= probe_id < 2**32 else ffi.NULL
    return None if name == ffi.NULL else ffi.string(name).decode()


def probe_count() -> int:
    """Rows in the C probe table (probe_ids.h)."""
    return int(lib.pyscan_probe__count())


def probe_by_name(name: str) -> int | None:
    """The C probe table's id for ``name``, or None if no row has that name."""
    probe_id = int(lib.pyscan_probe__by_name(name.encode()))
    return None if probe_id < 0 else probe_id


def _probe_id(probe: str | int) -> int:
    if isinstance(probe, str):
        probe_id = probe_by_name(probe)
        if probe_id is None:
            known = ", ".join(str(probe_name(i)) for i in range(probe_count()))
            raise ValueError(f"probe {probe!r} is unknown: accepted {known}")
        return probe_id
    return _check_int("probe id", probe, 0, 255)  # engine create refuses ids it lacks


class Engine(CHandle[EnginePtr]):
    """The native scan engine for one shard (engine.h).

    ``run_tx(i, ring)`` for each TX thread i and ``run_rx(ring)`` block until done/stopped;
    call them from ``threading.Thread``s. ``close()`` at any time stops them; the memory goes
    when the last of them returns (handles.py).
    """

    _kind = "engine"

    def __init__(self, *, cookie_key: bytes, seed: int,
                 source_ip: str | int | ipaddress.IPv4Address | ipaddress.IPv6Address,
                 source_mac: str | bytes,
                 gateway_mac: str | bytes,
                 ranges: Sequence[tuple[str | int | ipaddress.IPv4Address | ipaddress.IPv6Address,
                                        str | int | ipaddress.IPv4Address | ipaddress.IPv6Address]],
                 ports: Sequence[int], source_ports: range = range(40000, 40001),
                 ttl: int | None = None, mss: int | None = None, window: int | None = None,
                 rate: float = 0.0,
                 shard: tuple[int, int] = (0, 1), tx_threads: int = 1,
                 batch_size: int = 64, max_results: int = 0,
                 probe: str | int = "tcp-syn", max_probes: int = 0, retries: int = 0,
                 retry_delay: float = 1.0, tcp_options: str = "windows",
                 port_probes: Sequence[str | int] | None = None,
                 probe_args: bytes = b"", family: int = 4) -> None:
        """``port_probes``: the probe type of each entry of ``ports`` (a name or id; None =
        ``probe`` for all), so one scan mixes TCP, UDP and ICMP echo (ICMP's entry is port
        0). ``probe_args``: the udp module's payload records (pyscan.probes.udp_payloads).
        ``family`` 6: ``ranges`` and ``source_ip`` are IPv6 (at most 2^32 addresses) and
        every module must be an IPv6 one (tcp-syn6, icmp-echo6)."""
        if family not in (4, 6):
            raise ValueError(f"address family {family!r} is unknown: accepted 4 or 6")
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
        if family == 6:
            pairs6 = [_ipv6("range start", first).packed + _ipv6("range end", last).packed
                      for first, last in ranges]
            pairs: list[int] = []
        else:
            pairs = [v for first, last in ranges
                     for v in (int(_ipv4("range start", first)), int(_ipv4("range end", last)))]
            pairs6 = []
        port_list = [_check_int("port", p, 0, 65535) for p in ports]
        self._ranges = ffi.new("uint32_t[]", pairs or [0])
        self._ranges6 = ffi.new("uint8_t[]", b"".join(pairs6) or b"\0")
        self._ports = ffi.new("uint16_t[]", port_list or [0])
        cfg = ffi.new("struct pyscan_engine_config *")
        cfg.cookie_key = bytes(cookie_key)
        cfg.seed = _check_int("seed", seed, 0, _U64_MAX)
        cfg.rate_pps = float(rate)
        cfg.ranges = self._ranges
        cfg.ports = self._ports
        cfg.n_ranges = len(pairs6) if family == 6 else len(pairs) // 2
        cfg.n_ports = len(port_list)
        cfg.family = family
        if family == 6:
            cfg.ranges = ffi.NULL
            cfg.ranges6 = self._ranges6 if pairs6 else ffi.NULL
            cfg.source_ip6 = _ipv6("source address", source_ip).packed
        else:
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
        # None (0 in C): the TCP option profile's own value
        cfg.mss = _check_int("MSS", mss or 0, 0, 65535)
        cfg.window = _check_int("window", window or 0, 0, 65535)
        cfg.ttl = _check_int("TTL", ttl or 0, 0, 255)
        cfg.tcp_options = tcp_options_id(tcp_options)
        cfg.probe_id = _probe_id(probe)
        if port_probes is not None:
            if len(port_probes) != len(port_list):
                raise ValueError(f"port_probes has {len(port_probes)} entries for "
                                 f"{len(port_list)} ports: accepted one per port")
            self._port_probes = ffi.new("uint8_t[]", [_probe_id(p) for p in port_probes]
                                        or [0])
            cfg.port_probes = self._port_probes
        self._probe_args = ffi.new("uint8_t[]", bytes(probe_args) or b"\0")
        cfg.probe_args = self._probe_args
        cfg.probe_args_len = len(probe_args)
        # 0 = all; else the whole scan (all shards) sends the first max_probes of its order
        cfg.max_probes = _check_int("max probes", max_probes, 0, _U64_MAX)
        cfg.retries = _check_int("retries", retries, 0, ENGINE_MAX_RETRIES)
        if isinstance(retry_delay, bool) or not isinstance(retry_delay, int | float) \
                or not 0 <= retry_delay <= 3600:
            raise ValueError(f"retry delay {retry_delay!r} is invalid: accepted seconds "
                             "0..3600")
        cfg.retry_delay_ns = round(retry_delay * 1e9)
        err = ffi.new("char[256]")
        handle = lib.pyscan_engine__create(cfg, err, 256)
        if handle == ffi.NULL:
            raise ValueError(ffi.string(err).decode(errors="replace"))
        self._cfg = cfg
        self._handle = EnginePtr(handle)
        self.tx_threads = tx_threads
        self.source_ports = source_ports
        self.family = family
        self._drain_buf = ffi.new("struct pyscan_result[]", 1)
        self._capture: Capture | None = None
        self._stats_buf = ffi.new("struct pyscan_engine_stats *")

    def thread_total(self, thread_index: int) -> int:
        """Probes TX thread ``thread_index`` owes in this shard."""
        _check_int("thread index", thread_index, 0, self.tx_threads - 1)
        return int(lib.pyscan_engine__thread_total(self._live(), thread_index))

    def schedule(self, thread_index: int, position: int, n: int) -> list[tuple[int, int]]:
        """(pair index k, pass) of TX thread ``thread_index``'s frames ``position`` ..
        ``position + n - 1`` in sending order (fewer at the end): the retry schedule."""
        _check_int("thread index", thread_index, 0, self.tx_threads - 1)
        _check_int("count", n, 0, 2**31)
        ks, passes = ffi.new("uint64_t[]", max(n, 1)), ffi.new("uint32_t[]", max(n, 1))
        got = lib.pyscan_engine__schedule(self._live(), thread_index,
                                          _check_int("position", position, 0, _U64_MAX), n,
                                          ks, passes)
        return list(zip(ks[0:got], passes[0:got], strict=True))

    def seek(self, thread_index: int, position: int) -> None:
        """Start TX thread ``thread_index``'s next ``run_tx`` at frame ``position`` of its
        schedule (``stats()['thread_generated_<i>']`` of an earlier run: resume)."""
        _check_int("thread index", thread_index, 0, self.tx_threads - 1)
        rc = lib.pyscan_engine__seek(self._live(), thread_index,
                                     _check_int("position", position, 0, _U64_MAX))
        if rc < 0:
            raise ValueError(f"cannot move TX thread {thread_index} to position {position}: "
                             f"{os.strerror(-rc)} (accepted: 0..frames it owes, while it is "
                             "not running)")

    def run_tx(self, thread_index: int, ring: Ring) -> None:
        """Send thread ``thread_index``'s probes on ``ring``; returns when done or stopped."""
        _check_int("thread index", thread_index, 0, self.tx_threads - 1)
        # _using: a close() of the engine or the ring meanwhile stops the loop and leaves
        # the destroy to this call's return (handles.py).
        with self._using() as engine, ring._using() as ring_ptr:
            rc = lib.pyscan_engine__run_tx(engine, thread_index, ring_ptr)
        # -ESHUTDOWN: a close() of the engine or ring began before the loop entered; that
        # is the stop the closer asked for, not a failure of this thread.
        if rc < 0 and rc != -errno.ESHUTDOWN:
            detail = ring_error(ring) or os.strerror(-rc)
            raise OSError(-rc, f"TX thread {thread_index} failed: {detail}")

    def run_rx(self, ring: Ring) -> None:
        """Receive and validate replies from ``ring`` until ``stop_rx()``."""
        with self._using() as engine, ring._using() as ring_ptr:
            rc = lib.pyscan_engine__run_rx(engine, ring_ptr)
        if rc < 0 and rc != -errno.ESHUTDOWN:  # see run_tx
            detail = ring_error(ring) or os.strerror(-rc)
            raise OSError(-rc, f"RX thread failed: {detail}")

    def set_capture(self, capture: Capture | None) -> None:
        """Copy every reply with a valid cookie into ``capture`` (--pcap); before run_rx.
        The capture must outlive the engine's RX thread: close it after the engine."""
        lib.pyscan_engine__set_capture(self._live(), capture.ptr if capture is not None
                                       else ffi.NULL)
        self._capture = capture  # kept alive as long as the engine points at it

    def set_snippets(self, snippets: Capture | None) -> None:
        """Copy the first bytes of every reported UDP reply into ``snippets`` (records of
        address, port, payload: ``snippet_records``); before run_rx, closed after the
        engine, like set_capture."""
        lib.pyscan_engine__set_snippets(self._live(), snippets.ptr if snippets is not None
                                        else ffi.NULL)
        self._snippets = snippets

    def set_arp_responder(self, responder: ArpResponder | None) -> None:
        """Let ``responder`` answer ARP requests (or IPv6 neighbour solicitations) for an
        unowned source address from the RX thread; before run_rx, closed after the engine,
        like set_capture."""
        lib.pyscan_engine__set_arp_responder(self._live(), responder.ptr if responder is not None
                                             else ffi.NULL)
        self._arp_responder = responder  # kept alive as long as the engine points at it

    def stop_tx(self) -> None:
        lib.pyscan_engine__stop_tx(self._live())

    def stop_rx(self) -> None:
        lib.pyscan_engine__stop_rx(self._live())

    def ingest(self, frame: bytes) -> str:
        """Feed one received frame to the RX path directly (tests; not while run_rx runs).
        Returns what became of it: see INGEST_OUTCOMES."""
        rc = lib.pyscan_engine__ingest(self._live(), bytes(frame), len(frame))
        return INGEST_OUTCOMES[int(rc)]

    def mark_reported(self, pairs: Sequence[tuple[int, int, int]]) -> int:
        """Remember (address as int, 128-bit for an IPv6 engine, port, probe protocol
        6/17/1) pairs as already reported, before run_rx (resume: what the output file
        holds). Returns how many were new; an IPv6 address outside the target set is
        skipped, as the RX path does not remember those either."""
        n = len(pairs)
        ports = ffi.new("uint16_t[]", [_check_int("port", p, 0, 65535)
                                       for _, p, _ in pairs] or [0])
        protos = ffi.new("uint8_t[]", [_check_int("protocol", x, 0, 255)
                                       for _, _, x in pairs] or [0])
        if self.family == 6:
            packed = b"".join(_check_int("IPv6 address", a, 0, 2**128 - 1).to_bytes(16, "big")
                              for a, _, _ in pairs)
            addrs = ffi.new("uint8_t[]", packed or b"\0")
            rc = int(lib.pyscan_engine__mark_reported6(self._live(), addrs, ports, protos, n))
        else:
            ips = ffi.new("uint32_t[]", [_check_int("address", a, 0, 2**32 - 1)
                                         for a, _, _ in pairs] or [0])
            rc = int(lib.pyscan_engine__mark_reported(self._live(), ips, ports, protos, n))
        if rc < 0:
            raise OSError(-rc, f"cannot remember reported pairs: {os.strerror(-rc)}")
        return rc

    def drain(self, max: int = 8192) -> list[RawResult]:
        """Take up to ``max`` queued results (from one consumer thread at a time)."""
        _check_int("max", max, 1, 2**31)
        if len(self._drain_buf) < max:
            self._drain_buf = ffi.new("struct pyscan_result[]", max)
        buf = self._drain_buf
        n = lib.pyscan_engine__drain(self._live(), buf, max)
        return [_raw_result(buf[i]) for i in range(n)]

    def targets(self, thread_index: int, k_first: int, n: int) -> list[tuple[int, int]]:
        """(address as int, 128-bit for IPv6, port) of TX thread ``thread_index``'s probes
        ``k_first`` .. ``k_first + n - 1`` in sending order (fewer at the end): the engine's
        own order."""
        _check_int("thread index", thread_index, 0, self.tx_threads - 1)
        _check_int("count", n, 0, 2**31)
        ports = ffi.new("uint16_t[]", max(n, 1))
        k = _check_int("k", k_first, 0, _U64_MAX)
        if self.family == 6:  # addresses as 128-bit ints
            addrs = ffi.new("uint8_t[]", 16 * max(n, 1))
            got = lib.pyscan_engine__targets6(self._live(), thread_index, k, n, addrs, ports)
            raw = bytes(ffi.buffer(addrs, 16 * got))
            return [(int.from_bytes(raw[16 * j:16 * j + 16], "big"), int(ports[j]))
                    for j in range(got)]
        ips = ffi.new("uint32_t[]", max(n, 1))
        got = lib.pyscan_engine__targets(self._live(), thread_index, k, n, ips, ports)
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
    def _destroy(handle: EnginePtr) -> None:
        lib.pyscan_engine__destroy(handle)  # stops and waits for C threads still inside

    @staticmethod
    def _request_stop(handle: EnginePtr) -> None:
        lib.pyscan_engine__stop_tx(handle)
        lib.pyscan_engine__stop_rx(handle)
