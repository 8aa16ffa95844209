"""One scan, start to finish: the orchestration behind `pyscan.scan()`.

Order (DESIGN.md "Data flow"): validated config -> driver candidates (the registry's
automatic order, or --driver) -> privileges -> (network namespace) -> netlink path ->
firewall isolation -> driver rings (falling back along the automatic order when the
descriptor allows) -> `on_start` with the driver that really runs -> native engine -> one
RX thread and N TX threads running the C loops with the GIL released -> this thread drains
results every `DRAIN_INTERVAL` seconds and yields them -> TX done -> `wait` seconds of
receiving -> RX stopped -> final drain -> summary. Everything opened is closed in reverse
order on every exit path, including an abandoned iterator and an exception in the caller's
loop.

Invariant: every result the engine reports is yielded exactly once (closed ones only with
`show_closed`), and `summary` is set once the iterator is exhausted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from ipaddress import IPv4Address, IPv6Address
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from pyscan.config import ScanConfig
from pyscan.errors import ConfigError, RunFinishedError, ScanError

if TYPE_CHECKING:
    from pyscan.drivers import DriverDescriptor, DriverRequest, DriverSession
    from pyscan.native import Engine, RawResult  # the extension loads when a scan runs
    from pyscan.resume import Progress, ProgressTracker, ResumePoint

__all__ = [
    "DRY_RUN_GATEWAY_MAC",
    "DRY_RUN_SOURCE_IP",
    "DRY_RUN_SOURCE_MAC",
    "Result",
    "ScanError",
    "ScanRun",
    "ScanStart",
    "ScanStatus",
    "Summary",
    "check_source_ip",
    "check_source_ports",
    "choose_driver",
    "driver_candidates",
    "list_probes",
    "list_targets",
    "scan",
]

DRAIN_INTERVAL = 0.025  # seconds between drains: results reach the output within ~25 ms
STATUS_INTERVAL = 0.25  # seconds between on_status calls
DRAIN_BATCH = 4096
LIST_CHUNK = 1 << 16  # targets fetched per C call by list_targets

# The null driver sends nothing, so the dry run needs no route: fixed, obviously fake values
# from the benchmarking range (RFC 2544) and the locally administered MAC space.
DRY_RUN_SOURCE_IP = IPv4Address("198.18.0.1")
DRY_RUN_SOURCE_IP6 = IPv6Address("2001:2::1")
# The engine's IPv6 target set holds at most 2^32 addresses (targetset.h); config.py lets a
# larger IPv6 set through only with --max-targets, whose sample then comes from its first
# 2^32 addresses.
ENGINE_MAX_IPV6_ADDRESSES = 2**32
DRY_RUN_GATEWAY_MAC = "02:00:00:00:00:01"
DRY_RUN_SOURCE_MAC = "02:00:00:00:00:02"

Status = Literal["open", "closed", "up", "unreachable"]
PROTOCOL_OF_L4 = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}  # struct pyscan_result.l4_proto


@dataclass(frozen=True, slots=True)
class Result:
    """One (address, port, protocol) that answered, reported once: TCP SYN-ACK = open, RST =
    closed; UDP reply = open, ICMP port unreachable = closed; ICMP echo reply = up; another
    ICMP destination unreachable quoting the probe (TCP SYN, UDP datagram or echo request) =
    unreachable (type and code kept)."""

    ip: IPv4Address | IPv6Address
    port: int
    status: Status
    ttl: int
    timestamp: float  # seconds since the epoch (CLOCK_REALTIME when the reply was parsed)
    # What the answering TCP stack said (zmap's window and tcpopt_* fields); None = absent.
    window: int | None = None
    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool | None = None
    ts_val: int | None = None
    ts_ecr: int | None = None
    rtt: float | None = None  # seconds, probe sent to reply parsed: needs a probe with a
    #                           timestamp (--tcp-options linux|bsd) that the reply echoes
    protocol: str = "tcp"          # the probe's: tcp, udp, icmp (echo; port 0)
    payload: bytes | None = None   # UDP open: the reply's first --udp-capture-bytes bytes
    icmp_type: int | None = None   # the reply was ICMP (echo reply, unreachable)
    icmp_code: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field as a JSON-ready value (the address as text): `json.dumps(r.to_dict())`.
        Fields added to Result later come along."""
        return {item.name: _plain(getattr(self, item.name)) for item in dataclass_fields(self)}


@dataclass(frozen=True, slots=True)
class ScanStatus:
    """A live snapshot for progress displays; `phase` is 'sending', 'waiting' or 'done'."""

    phase: str
    elapsed: float
    sent: int           # frames, retries included
    total: int          # frames this shard owes (probes x passes)
    rate: float         # packets per second over the last status interval
    found: int          # open so far
    closed: int
    drops: int          # frames the driver/kernel dropped before the RX thread saw them
    wait_left: float    # seconds of waiting left (phase 'waiting')
    unreachable: int = 0  # ICMP destination unreachables so far

    @property
    def fraction(self) -> float:
        return self.sent / self.total if self.total else 1.0

    @property
    def eta(self) -> float | None:
        """Seconds until sending ends, from the recent rate; None when unknown."""
        if self.phase != "sending" or self.rate <= 0:
            return None
        return max(self.total - self.sent, 0) / self.rate


@dataclass(frozen=True, slots=True)
class Summary:
    """What a finished scan did. Counters come straight from the engine and the driver."""

    targets: int             # addresses (after excludes)
    ports: int
    probes: int              # probes this shard owed
    sent: int                # frames the driver accepted
    tx_errors: int
    duration: float          # seconds from first probe to end of the wait
    send_duration: float     # seconds the TX threads ran
    replies: int             # frames the RX thread examined that were for us
    valid: int               # valid cookies: open + closed + unreachable + duplicates
    invalid_cookies: int
    open: int
    closed: int
    duplicates: int          # valid replies suppressed because the pair was already reported
    driver_drops: int
    driver: str              # driver name
    driver_description: str  # mode chosen and why
    seed: int
    shard: tuple[int, int]
    interrupted: bool        # sending was stopped before every probe went out
    # Driver counters beyond the ring's: af-xdp's reply filter xdp_seen/xdp_matched/xdp_passed.
    driver_counters: dict[str, int] = field(default_factory=dict)
    # --pcap: reply frames the capture ring had no room for (the results are all there).
    capture_dropped: int = 0
    # The cap that kept part of targets x ports out of the scan by design ("max-targets"),
    # None without one; what stopped sending is `ended_by`.
    limit: str | None = None
    # First and last source port the scan used (chosen at start when none was given).
    source_ports: tuple[int, int] | None = None
    passes: int = 1          # probes per pair: --retries + 1
    frames: int = 0          # frames this shard owed: probes x passes (sent counts frames)
    ended_by: str = "completed"  # completed | interrupted | max-runtime | max-results
    # ICMP destination unreachables quoting a probe (not in `closed`), shown or not.
    unreachable: int = 0
    # --source-ip of an address the host does not own: ARP requests for it (IPv6: neighbour
    # solicitations) that pyscan answered (XDP filter or RX thread); None when the host owns
    # the source (the kernel's)
    arp_replies: int | None = None
    # ARP frames (IPv6: duplicate address detection, advertisements or solicitations) from
    # another MAC claiming that address as its own, counted by the RX thread's responder or
    # the XDP filter (xdp_arp_conflict) with one rule: the address is in use after all
    arp_conflicts: int = 0
    # The scan's address family (4 or 6): whether arp_replies / arp_conflicts are ARP or
    # neighbour discovery
    family: int = 4

    @property
    def send_rate(self) -> float:
        """Average probes per second while sending."""
        return self.sent / self.send_duration if self.send_duration > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        fields["send_rate"] = round(self.send_rate, 1)
        fields["shard"] = f"{self.shard[0]}/{self.shard[1]}"
        return fields


@dataclass(frozen=True, slots=True)
class ScanStart:
    """The driver that really runs, announced once its rings are open and before the first
    probe, so a start line never names a driver the scan then replaces."""

    driver: str        # registry name
    why: str           # "chosen with --driver" or "automatic: ..." (with any fallback)
    description: str   # the session's one line: mode, queues, rings
    interface: str
    source_ports: range | None = None  # the ports the scan claimed
    # What the scan went ahead with despite a check: --force-source-port over unsafe ports.
    warnings: tuple[str, ...] = ()


StatusCallback = Callable[[ScanStatus], None]
StartCallback = Callable[[ScanStart], None]
CheckpointCallback = Callable[["Progress"], None]
FrameCallback = Callable[[float, bytes, int], None]
CAPTURE_SLOTS = 16384  # frames the --pcap ring holds between two drains (25 ms)


POSITIVE = frozenset({"open", "up"})  # shown without --show closed


def shown_statuses(config: ScanConfig) -> frozenset[str]:
    """The result statuses a scan reports: open and up always; --show closed adds closed and
    unreachable (every negative answer, as before unreachable had its own switch);
    --show unreachable adds unreachable alone."""
    if config.show_closed:
        return POSITIVE | {"closed", "unreachable"}
    return POSITIVE | {"unreachable"} if config.show_unreachable else POSITIVE


def udp_probe_args(config: ScanConfig) -> bytes:
    """The udp module's payload records for the scan's UDP ports (pyscan.probes.udp_payloads);
    ports without a payload send an empty datagram (config.udp_ports_without_payload)."""
    from pyscan.probes.udp_payloads import payload_for, payload_records

    chosen = {port: payload_for(port, config.udp_payloads) for port in config.udp_ports}
    return payload_records({port: p for port, p in chosen.items() if p is not None and p.data})


def engine_ranges(config: ScanConfig) -> list[tuple[int, int]]:
    """The target ranges as the engine takes them: an IPv6 set above 2^32 addresses (which
    config.py admits only with --max-targets) is cut to its first 2^32 addresses."""
    ranges = list(config.targets.ranges)
    if config.targets.family != 6:
        return ranges
    kept, room = [], ENGINE_MAX_IPV6_ADDRESSES
    for first, last in ranges:
        if room <= 0:
            break
        last = min(last, first + room - 1)
        kept.append((first, last))
        room -= last - first + 1
    return kept


def engine_probe(config: ScanConfig, name: str) -> int:
    """The probe module id that runs probe type ``name`` against the scan's targets: the
    IPv6 twin (pyscan.probes.for_family) for IPv6 targets."""
    from pyscan.probes import for_family

    return for_family(name, config.targets.family).id


def list_targets(config: ScanConfig) -> Iterator[tuple[IPv4Address | IPv6Address, int]]:
    """Every (address, port) of this shard, in the exact order the TX side visits them
    (thread interleaving aside). Nothing is sent; this is `-sL`."""
    from pyscan.native import Engine  # the order is the engine's; import on use

    if not config.targets.count or not config.entries:
        return
    family = config.targets.family
    address_type = IPv6Address if family == 6 else IPv4Address
    # One TX thread walks the whole shard in order (engine.h); addresses, MACs and the key
    # only shape frames, which are never built here.
    with Engine(cookie_key=bytes(16), seed=config.seed, source_ip=0, source_mac=bytes(6),
                gateway_mac=bytes(6), ranges=engine_ranges(config),
                ports=[port for _, port in config.entries],
                port_probes=[engine_probe(config, probe) for probe, _ in config.entries],
                shard=(config.shard[0] - 1, config.shard[1]), tx_threads=1,
                max_results=2, max_probes=config.max_targets or 0, family=family) as engine:
        k = 0
        while chunk := engine.targets(0, k, LIST_CHUNK):
            for address, port in chunk:
                yield address_type(address), port
            k += len(chunk)


def list_probes(config: ScanConfig) -> Iterator[tuple[IPv4Address | IPv6Address, str, int]]:
    """(address, protocol, port) of every probe of this shard in sending order: list_targets
    with each entry's protocol ("tcp", "udp", "icmp" with port 0), for -sL of scans that mix
    probe types. Nothing is sent."""
    from pyscan.probes import PROBES

    protocol_of: dict[int, set[str]] = {}
    for probe, port in config.entries:
        protocol_of.setdefault(port, set()).add(PROBES[probe].protocol)
    if all(len(protocols) == 1 for protocols in protocol_of.values()):
        for address, port in list_targets(config):
            yield address, next(iter(protocol_of[port])), port
        return
    yield from _list_entries(config)


def _list_entries(config: ScanConfig) -> Iterator[tuple[IPv4Address, str, int]]:
    """list_probes for a scan with one port number under two protocols (-p 53,U:53): the
    engine reports only the port number, so a second engine with the same number of probes
    (hence the same keyed order, permute.h: it depends on the total and the seed only), one
    range of that many addresses from 0 and one port, reports each probe's index t; the entry
    is t // addresses and the address the (t % addresses)-th of the target set (targetset.h's
    layout). One IPv4 range holds at most 2^32 indices."""
    from pyscan.native import Engine
    from pyscan.probes import PROBES

    entries = config.entries
    addresses = config.targets.count
    total = addresses * len(entries)
    if not total:
        return
    if total > 2**32:
        raise ConfigError(
            f"-sL of this scan ({total} probes) cannot tell its TCP and UDP probes to the same "
            "port apart: accepted at most 2^32 probes when a port number is both TCP and UDP")
    with Engine(cookie_key=bytes(16), seed=config.seed, source_ip=0, source_mac=bytes(6),
                gateway_mac=bytes(6), ranges=[(0, total - 1)], ports=[1],
                shard=(config.shard[0] - 1, config.shard[1]), tx_threads=1,
                max_results=2, max_probes=config.max_targets or 0) as engine:
        k = 0
        while chunk := engine.targets(0, k, LIST_CHUNK):
            for index, _ in chunk:
                probe, port = entries[index // addresses]
                yield (IPv4Address(config.targets.address_at(index % addresses)),
                       PROBES[probe].protocol, port)
            k += len(chunk)


def scan(config: ScanConfig, on_status: StatusCallback | None = None,
         on_start: StartCallback | None = None,
         on_frame: FrameCallback | None = None, *,
         resume_from: ResumePoint | None = None, checkpoint_every: float = 0.0,
         on_checkpoint: CheckpointCallback | None = None) -> ScanRun:
    """Start describing a scan; it runs while the returned ScanRun is iterated.

    ``on_start`` is called once, from the iterating thread, when the driver is open (after
    any fallback) and before the first probe; ``run.start`` holds the same value after.
    ``on_frame(timestamp, frame, length)`` receives every reply frame with a valid cookie,
    duplicates too (what --pcap writes), from the iterating thread; the first
    ``CAPTURE_SNAPLEN`` bytes of each, and a full capture ring drops frames (counted in
    ``Summary.capture_dropped``) rather than slow the receive thread.

    Resume (pyscan.resume): ``resume_from`` continues a stopped scan of the same config
    (same TX thread count) where its lanes stopped, with its cookie key, its counters and
    its already-reported pairs; ``on_checkpoint(progress)`` is called from the iterating
    thread every ``checkpoint_every`` seconds, after every result before it was yielded;
    ``run.progress`` is what the run safely did once it ended.

    >>> with scan(config) as run:               # doctest: +SKIP
    ...     for result in run:
    ...         print(result.ip, result.port)
    ...     print(run.summary.sent)
    """
    return ScanRun(config, on_status, on_start, on_frame, resume_from=resume_from,
                   checkpoint_every=checkpoint_every, on_checkpoint=on_checkpoint)


class ScanRun:
    """Iterator of `Result`s for one scan; `.summary` once exhausted; `.stop()` from any
    thread or a signal handler. Use it as a context manager so that leaving early cleans up."""

    def __init__(self, config: ScanConfig, on_status: StatusCallback | None = None,
                 on_start: StartCallback | None = None,
                 on_frame: FrameCallback | None = None, *,
                 resume_from: ResumePoint | None = None, checkpoint_every: float = 0.0,
                 on_checkpoint: CheckpointCallback | None = None) -> None:
        if not isinstance(config, ScanConfig):
            raise ConfigError(f"scan() needs a ScanConfig, not {type(config).__name__}")
        self.config = config
        self.on_status = on_status
        self.on_start = on_start
        self.on_frame = on_frame
        self._capture: Any = None
        self._snippets: Any = None  # Result.payload's side ring (UDP scans)
        self._arp_responder: Any = None  # --source-ip not the host's, on a driver without XDP
        self._source_owned = True
        self._payloads: dict[tuple[Any, int], bytes] = {}
        self._finished = False
        self.start: ScanStart | None = None  # set before the first probe is sent
        self.summary: Summary | None = None
        self.interrupted = False
        self._stop_sending = threading.Event()
        self._skip_wait = threading.Event()
        self._sending_done = threading.Event()
        self._iterator: Iterator[Result] | None = None
        self._interruptible = False
        self._reported = 0                # results yielded so far (--max-results)
        self._limit: str | None = None    # the limit that ended sending, if one did
        # -- resume (pyscan.resume) --
        self.resume_from = resume_from
        self.checkpoint_every = checkpoint_every
        self.on_checkpoint = on_checkpoint
        self.progress: Progress | None = None  # what this run safely did, once it ended
        self._tracker: ProgressTracker | None = None
        if resume_from is not None:
            self._reported = resume_from.reported

    # -- control ---------------------------------------------------------------------------

    def stop(self) -> None:
        """While sending: stop sending, then go on receiving for `wait` seconds. Called again,
        or once sending is over: end the wait now. Safe from a signal handler (it only sets
        events)."""
        self.interrupted = True
        if self._stop_sending.is_set() or self._sending_done.is_set():
            self._skip_wait.set()
        self._stop_sending.set()

    def close(self) -> None:
        """Stop now and release everything (also what `with` does on exit)."""
        self._stop_sending.set()
        self._skip_wait.set()
        if self._iterator is not None:
            with contextlib.suppress(ValueError):
                # ValueError: the iterator is running in another thread; the events set
                # above end it there, through the same clean-up path.
                self._iterator.close()  # type: ignore[attr-defined]

    def __enter__(self) -> ScanRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[Result]:
        if self._finished:
            raise RunFinishedError("this scan has finished: its results were all delivered "
                                   "(accepted: a new run, pyscan.scan(config))")
        if self._iterator is None:
            self._iterator = self._run()
        return self._iterator

    # -- the scan --------------------------------------------------------------------------

    @property
    def interruptible(self) -> bool:
        """True only while the threads run and this thread merely drains and reports: the
        one stretch where a signal handler may raise (KeyboardInterrupt) without leaving a
        half-made or half-removed firewall table, XDP program or ring behind."""
        return self._interruptible

    def _run(self) -> Iterator[Result]:
        try:
            with contextlib.ExitStack() as resources:
                yield from self._scan(resources)
        finally:
            self._finished = True

    def _scan(self, resources: contextlib.ExitStack) -> Iterator[Result]:
        # Imports on use: `import pyscan` and the CLI's parsing must work without the
        # compiled extension, pyroute2 sockets or root.
        from pyscan.drivers import DriverRequest
        from pyscan.native import Engine

        config = self.config
        candidates = driver_candidates(config)

        if not config.is_dry_run:
            from pyscan.privileges import require_scan_privileges

            require_scan_privileges(candidates[0].descriptor.name, isolation=config.isolation,
                                    netns=config.netns)
            if config.netns is not None:
                from pyscan.netlink import NetlinkError, in_netns

                # Before any thread starts, so the RX/TX threads are born inside it; only
                # this thread moves, and it moves back when the scan's resources are closed.
                try:
                    resources.enter_context(in_netns(config.netns))
                except NetlinkError as error:
                    raise ScanError(str(error)) from None
        # In the scan's namespace and before anything is created or sent: an unsafe
        # --source-port is refused here (ConfigError, exit 2) with nothing to undo.
        source_ports, port_warnings = _source_ports(config)

        path = _resolve_path(config)
        cookie_key = (self.resume_from.cookie_key if self.resume_from is not None
                      else secrets.token_bytes(16))
        scan_id = f"{os.getpid()}_{secrets.token_hex(3)}"

        # An unowned source: the kernel drops the replies as not its own, it never answers
        # them, so there is nothing to isolate (docs/cli.md, --source-ip).
        if config.isolation and not config.is_dry_run and path.source_owned:
            from pyscan.firewall import FirewallError, isolation

            try:
                resources.enter_context(isolation(scan_id, path.interface, source_ports))
            except FirewallError as error:
                raise ScanError(f"{error} (--no-isolation scans without the firewall)") from None

        tx_threads = tx_thread_count(config, path.tx_queues)
        # an unowned source: pyscan answers ARP (IPv6: neighbour solicitations) for it
        arp_source = path.source_ip if not path.source_owned else None
        if isinstance(arp_source, IPv6Address) and not config.is_dry_run:
            from pyscan.netlink import NetlinkError, solicited_node_membership

            try:
                # a real NIC filters the solicitations' multicast group out otherwise; the
                # membership ends when resources unwind (docs/cli.md, --source-ip)
                resources.enter_context(solicited_node_membership(path.ifindex, arp_source))
            except NetlinkError as error:
                raise ScanError(str(error)) from None
        request = DriverRequest(
            interface=path.interface,
            ifindex=path.ifindex,
            tx_threads=tx_threads,
            want_rx=True,
            source_ip=path.source_ip,
            source_ports=source_ports,
            cookie_key=cookie_key,
            options=dict(config.driver_options),
            probe_id=engine_probe(config, config.probe),
            probe_ids=tuple(engine_probe(config, name) for name in config.probe_types),
            arp_answer=None if arp_source is None else (arp_source, path.link_mac),
        )
        chosen, why, session = _open_driver(config, candidates, request, resources)
        if request.arp_answer is not None and not chosen.answers_arp \
                and session.rx_ring is not None:
            from pyscan.native import ArpResponder

            try:
                # Registered before the engine, so it is closed after it (LIFO).
                self._arp_responder = resources.enter_context(
                    ArpResponder(path.ifindex, request.arp_answer[0], path.link_mac))
            except OSError as error:
                raise ScanError(f"cannot answer ARP/NDP for --source-ip {path.source_ip}: "
                                f"{error.strerror or error}") from None
        if self.on_frame is not None:
            from pyscan.native import Capture

            # Registered before the engine, so it is freed after it (ExitStack is LIFO).
            self._capture = resources.enter_context(Capture(CAPTURE_SLOTS))
        if config.udp_ports:
            from pyscan.native import Capture

            # Result.payload's side ring, freed after the engine like the capture.
            self._snippets = resources.enter_context(Capture(CAPTURE_SLOTS))
        try:
            engine = self._make_engine(Engine, path, cookie_key, tx_threads,
                                       chosen.engine_batch(config.driver_options),
                                       source_ports)
        except (ValueError, OSError) as error:
            raise ScanError(f"the scan engine rejected its configuration: {error}") from None
        resources.callback(engine.close)
        self._start_tracking(engine, cookie_key, tx_threads)
        if self._capture is not None:
            engine.set_capture(self._capture)
        if config.udp_ports:
            engine.set_snippets(self._snippets)
        if self._arp_responder is not None:
            engine.set_arp_responder(self._arp_responder)
        self._source_owned = path.source_owned
        next_hop = path.next_hop_ip
        if arp_source is not None and next_hop is not None \
                and next_hop.version == arp_source.version:
            from pyscan.native import announce_arp, announce_ndp

            try:
                if isinstance(arp_source, IPv6Address) and isinstance(next_hop, IPv6Address):
                    announce_ndp(path.ifindex, arp_source, path.link_mac, next_hop)
                elif isinstance(arp_source, IPv4Address) and isinstance(next_hop, IPv4Address):
                    announce_arp(path.ifindex, arp_source, path.link_mac, next_hop)
            except OSError as error:
                raise ScanError(f"--source-ip {path.source_ip}: {error.strerror}") from None
        self.start = ScanStart(driver=chosen.name, why=why, description=session.description,
                               interface=path.interface, source_ports=source_ports,
                               warnings=port_warnings)
        if self.on_start is not None:
            self.on_start(self.start)
        yield from self._drive(engine, session, chosen.name, path.interface)

    def _make_engine(self, engine_class: type[Engine], path: _Path, cookie_key: bytes,
                     tx_threads: int, batch_size: int, source_ports: range) -> Engine:
        config = self.config
        return engine_class(
            cookie_key=cookie_key,
            seed=config.seed,
            rate=0.0 if config.rate == float("inf") else config.rate,
            ranges=engine_ranges(config),
            ports=[port for _, port in config.entries],
            port_probes=[engine_probe(config, probe) for probe, _ in config.entries],
            probe_args=udp_probe_args(config),
            family=config.targets.family,
            source_ip=path.source_ip,
            source_mac=path.source_mac,
            gateway_mac=path.gateway_mac,
            source_ports=source_ports,
            ttl=config.ttl,
            shard=(config.shard[0] - 1, config.shard[1]),
            tx_threads=tx_threads,
            batch_size=batch_size,  # the driver descriptor's engine hint
            probe=engine_probe(config, config.probe),
            max_probes=config.max_targets or 0,
            retries=config.retries,
            retry_delay=config.retry_delay,
            tcp_options=config.tcp_options,
        )

    def _drive(self, engine: Engine, session: DriverSession, driver_name: str,
               interface: str) -> Iterator[Result]:
        config = self.config
        failures: list[BaseException] = []

        def guarded(target: Callable[..., object], *args: object) -> Callable[[], None]:
            def run() -> None:
                try:
                    target(*args)
                except BaseException as error:  # reported on the main thread
                    failures.append(error)
            return run

        rx_thread = None
        if session.rx_ring is not None:
            rx_thread = threading.Thread(
                target=guarded(engine.run_rx, session.rx_ring), name="pyscan-rx", daemon=True
            )
        tx_threads = [
            threading.Thread(target=guarded(engine.run_tx, index, ring), name=f"pyscan-tx{index}",
                             daemon=True)
            for index, ring in enumerate(session.tx_rings)
        ]
        started = time.monotonic()
        send_ended = started
        stopped_early = False
        counters = _Counters()
        completed = False
        try:
            if rx_thread is not None:
                rx_thread.start()
            for thread in tx_threads:
                thread.start()
            self._interruptible = True

            # Phase 1: sending (until done, stopped, or a limit is reached).
            stopped_tx = False
            while any(thread.is_alive() for thread in tx_threads):
                if not stopped_tx and self._limit is None and config.max_runtime is not None \
                        and time.monotonic() - started >= config.max_runtime - self._sent_before:
                    self._limit = "max-runtime"
                if (self._stop_sending.is_set() or self._limit is not None) and not stopped_tx:
                    engine.stop_tx()
                    stopped_tx = True
                yield from self._drain(engine)
                self._track(engine, time.monotonic() - started)
                self._report(engine, session, "sending", started, counters, 0.0)
                if failures:
                    engine.stop_tx()  # the other TX threads would otherwise run to the end
                    break
                time.sleep(DRAIN_INTERVAL)
            join_all(tx_threads)
            send_ended = time.monotonic()
            self._sending_done.set()
            stopped_early = self._stop_sending.is_set()

            # Phase 2: waiting for late replies, when there is a receive side at all (and no
            # thread failed: then the scan ends after the final drain below).
            if rx_thread is not None and not failures:
                deadline = send_ended + config.wait
                while not self._skip_wait.is_set() and time.monotonic() < deadline \
                        and self._limit != "max-results":
                    yield from self._drain(engine)
                    self._track(engine, send_ended - started)
                    self._report(engine, session, "waiting", started, counters,
                                 deadline - time.monotonic())
                    if failures:
                        break
                    time.sleep(DRAIN_INTERVAL)
            completed = True
            # The wait ran out (not cut short): every probe sent had its reply window.
            waited = rx_thread is None or not self._skip_wait.is_set()
        finally:
            self._interruptible = False
            engine.stop_tx()
            engine.stop_rx()
            join_all([*tx_threads, *([rx_thread] if rx_thread else [])])
            if not completed:
                # Left early (break out of the loop then close(), a failure, Ctrl-C three
                # times): the counters are still the engine's, so the summary is still true.
                if send_ended == started:
                    send_ended = time.monotonic()
                self._drain_frames()
                self.summary = _summarize(
                    config, engine.stats(), session, driver_name,
                    duration=time.monotonic() - started, send_duration=send_ended - started,
                    interrupted=True, limit=self._limit,
                    capture_dropped=self._capture_dropped(), source_ports=engine.source_ports,
                    arp_replies=self._arp_replies(session),
                    arp_conflicts=self._arp_conflicts(session))
                self._end_tracking(engine, send_ended - started, exact=False)

        # Phase 3: whatever the RX thread queued before it stopped, also after a failure.
        yield from self._drain(engine)
        self._drain_frames()
        ended = time.monotonic()
        self.summary = _summarize(
            config, engine.stats(), session, driver_name,
            duration=ended - started, send_duration=send_ended - started,
            interrupted=stopped_early, limit=self._limit,
            capture_dropped=self._capture_dropped(), source_ports=engine.source_ports,
            arp_replies=self._arp_replies(session),
            arp_conflicts=self._arp_conflicts(session),
        )
        self._end_tracking(engine, send_ended - started, exact=waited and not failures)
        if failures:  # after the summary: what was sent and found is still true
            raise _thread_failure(failures[0], interface) from failures[0]
        self._report(engine, session, "done", started, counters, 0.0)

    def _arp_replies(self, session: DriverSession) -> int | None:
        """ARP requests for an unowned source answered so far: by the driver's XDP filter
        or by the RX thread's responder; None when the host owns the source address."""
        if self._source_owned:
            return None
        answered = int(session.stats().get("xdp_arp_replied", 0))
        if self._arp_responder is not None:
            answered += self._arp_responder.stats()["answered"]
        return answered

    def _arp_conflicts(self, session: DriverSession) -> int:
        """Frames of another host claiming the unowned source address: counted by the
        driver's XDP filter (xdp_arp_conflict) or by the RX thread's responder."""
        claims = int(session.stats().get("xdp_arp_conflict", 0))
        if self._arp_responder is not None:
            claims += self._arp_responder.stats()["conflicts"]
        return claims

    # -- resume: what this run safely did (pyscan.resume) -----------------------------------

    @property
    def _sent_before(self) -> float:
        return self.resume_from.send_seconds if self.resume_from is not None else 0.0

    def _start_tracking(self, engine: Engine, cookie_key: bytes, tx_threads: int) -> None:
        """Seek every lane to the resume point and pre-seed duplicate suppression with the
        pairs already reported; start the tracker whose samples checkpoints and the final
        progress come from."""
        from pyscan.resume import ProgressTracker

        start = self.resume_from
        if start is not None:
            if len(start.positions) != tx_threads:
                raise ScanError(f"the resume point has {len(start.positions)} TX lanes but the "
                                f"scan runs {tx_threads} (accepted: --tx-threads "
                                f"{len(start.positions)})")
            try:
                for lane, position in enumerate(start.positions):
                    engine.seek(lane, position)
                engine.mark_reported(start.known)
            except (ValueError, OSError) as error:
                raise ScanError(f"cannot resume: {error}") from None
        # A limit reached before the stop: nothing more is sent.
        if self.config.max_results is not None and self._reported >= self.config.max_results:
            self._limit = "max-results"
        elif self.config.max_runtime is not None and start is not None \
                and start.send_seconds >= self.config.max_runtime:
            self._limit = "max-runtime"
        if self._limit is not None:
            engine.stop_tx()
        self._tracker = ProgressTracker(cookie_key, self.config.wait, tx_threads, start=start,
                                        checkpoint_every=self.checkpoint_every,
                                        now=time.monotonic())

    def _lanes(self, engine: Engine, *, ends: bool = False
               ) -> tuple[tuple[int, ...], int, bool]:
        """(each lane's position, frames sent this run, every lane at its end; the last
        only with ``ends``, at the end of the run)."""
        stats = engine.stats()
        positions = tuple(stats[f"thread_generated_{lane}"]
                          for lane in range(engine.tx_threads))
        passes = int(stats.get("passes", 1))
        ended = ends and all(position >= engine.thread_total(lane) * passes
                             for lane, position in enumerate(positions))
        return positions, int(stats.get("sent", 0)), ended

    def _track(self, engine: Engine, send_seconds: float) -> None:
        tracker = self._tracker
        if tracker is None:
            return
        now = time.monotonic()
        positions, sent, _ = self._lanes(engine)
        tracker.sample(now, positions, sent, send_seconds)
        if self.on_checkpoint is not None and tracker.checkpoint_due(now):
            tracker.checkpointed(now)
            self.on_checkpoint(tracker.progress(now, self._reported))

    def _end_tracking(self, engine: Engine, send_seconds: float, *, exact: bool) -> None:
        tracker = self._tracker
        if tracker is None:
            return
        now = time.monotonic()
        positions, sent, ended = self._lanes(engine, ends=True)
        tracker.sample(now, positions, sent, send_seconds)
        # A limit ends the scan as asked: nothing is left to resume.
        finished = (exact and ended) or self._limit is not None
        self.progress = tracker.progress(now, self._reported, finished=finished, exact=exact)

    def _drain(self, engine: Engine) -> Iterator[Result]:
        """Everything queued now, in batches: one batch per tick would cap the result rate
        at DRAIN_BATCH / DRAIN_INTERVAL and make the RX thread wait on a full ring."""
        shown = shown_statuses(self.config)
        max_results = self.config.max_results
        self._drain_frames()
        while True:
            batch = engine.drain(DRAIN_BATCH)
            if self._snippets is not None and batch:
                self._take_snippets()
            for raw in batch:
                # Closed results are the bulk of a scan; skip them before building anything.
                if raw.status not in shown:
                    continue
                if max_results is not None and self._reported >= max_results:
                    break  # the rest is drained and dropped: the limit was reached
                self._reported += 1
                yield self._result(raw)
                if max_results is not None and self._reported >= max_results \
                        and self._limit is None:
                    self._limit = "max-results"
                    engine.stop_tx()
            if len(batch) < DRAIN_BATCH:
                return

    def _result(self, raw: RawResult) -> Result:
        if raw.l4_proto == 6 and raw.status == "unreachable":
            return Result(raw.ip, raw.port, raw.status, raw.ttl, raw.timestamp,
                          icmp_type=raw.icmp_type, icmp_code=raw.icmp_code)
        if raw.l4_proto == 6:
            return Result(raw.ip, raw.port, raw.status, raw.ttl, raw.timestamp,
                          raw.window, raw.mss, raw.wscale, raw.sack_permitted,
                          raw.ts_val, raw.ts_ecr, raw.rtt)
        payload = None
        if raw.l4_proto == 17 and raw.status == "open":
            # The snippet is pushed before its result, so it is here unless its ring was
            # full (then the result comes without payload).
            payload = self._payloads.pop((raw.ip, raw.port), None)
        replied_icmp = raw.l4_proto in (1, 58) or raw.status != "open"
        return Result(raw.ip, raw.port, raw.status, raw.ttl, raw.timestamp,
                      protocol=PROTOCOL_OF_L4.get(raw.l4_proto, str(raw.l4_proto)),
                      payload=payload,
                      icmp_type=raw.icmp_type if replied_icmp else None,
                      icmp_code=raw.icmp_code if replied_icmp else None)

    def _take_snippets(self) -> None:
        from pyscan.native import snippet_records

        keep = self.config.udp_capture_bytes
        family = self.config.targets.family
        while records := snippet_records(self._snippets, 1024, family):
            for address, port, data in records:
                self._payloads[(address, port)] = data[:keep]

    def _drain_frames(self) -> None:
        """Hand every captured reply frame to on_frame (--pcap)."""
        if self._capture is None or self.on_frame is None:
            return
        while frames := self._capture.drain(1024):
            for frame in frames:
                self.on_frame(frame.timestamp, frame.data, frame.length)

    def _capture_dropped(self) -> int:
        return int(self._capture.dropped) if self._capture is not None else 0

    def _report(self, engine: Engine, session: DriverSession, phase: str, started: float,
                counters: _Counters, wait_left: float) -> None:
        if self.on_status is None:
            return
        now = time.monotonic()
        if phase != "done" and now - counters.last_status < STATUS_INTERVAL:
            return
        stats = engine.stats()
        sent = int(stats.get("sent", 0))
        interval = now - counters.last_status if counters.last_status else now - started
        rate = (sent - counters.last_sent) / interval if interval > 0 else 0.0
        counters.last_status, counters.last_sent = now, sent
        driver_stats = session.stats()
        self.on_status(ScanStatus(
            phase=phase,
            elapsed=now - started,
            sent=sent,
            total=int(stats.get("total_frames", 0)),
            rate=rate,
            found=int(stats.get("rx_open", 0)),
            closed=int(stats.get("rx_closed", 0)),
            drops=int(driver_stats.get("rx_drops", 0)),
            wait_left=max(wait_left, 0.0),
            unreachable=int(stats.get("rx_unreachable", 0)),
        ))


def join_all(threads: list[threading.Thread]) -> None:
    """Join every started thread, even through Ctrl-C: the scan's threads were told to stop
    and return within a batch or a flush, and leaving them inside C while the resources they
    use are closed is what must never happen. A KeyboardInterrupt that came meanwhile is
    raised again once all have returned."""
    interrupted: KeyboardInterrupt | None = None
    for thread in threads:
        while thread.ident is not None and thread.is_alive():
            try:
                thread.join()
            except KeyboardInterrupt as error:
                interrupted = error
    if interrupted is not None:
        raise interrupted


# A TX/RX loop that ended with one of these lost its interface (ring.h: a negative tx_kick).
_LINK_GONE = frozenset({errno.ENETDOWN, errno.ENXIO, errno.ENODEV})


def _thread_failure(error: BaseException, interface: str) -> ScanError:
    """The one line a failed TX/RX thread becomes."""
    if isinstance(error, OSError) and error.errno in _LINK_GONE:
        return ScanError(f"interface {interface} went down during the scan "
                         f"({os.strerror(error.errno)}); the results so far were written")
    detail = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return ScanError(f"a scan thread failed: {detail}")


@dataclass
class _Counters:
    last_status: float = 0.0
    last_sent: int = 0


@dataclass(frozen=True)
class _Path:
    interface: str
    ifindex: int
    source_ip: IPv4Address | IPv6Address
    source_mac: str
    gateway_mac: str
    tx_queues: int = 1
    source_owned: bool = True   # False: --source-ip borrows a free address of the link
    next_hop_ip: IPv4Address | IPv6Address | None = None  # the gateway; None: target on-link
    link_mac: str = ""          # the interface's own MAC: ARP for an unowned source answers it


def check_source_ports(config: ScanConfig) -> None:
    """Refuse an unsafe --source-port early, from outside a scan: the CLI calls it before its
    start line so a refusal is its only output. Reads the host in config.netns; anything
    that stops the reading (privileges, a missing namespace) is left for scan() to report."""
    if config.is_dry_run or config.source_ports is None or config.force_source_port:
        return
    from pyscan.errors import Error
    from pyscan.sourceports import check_source_ports as check
    from pyscan.sourceports import read_host_ports_in

    try:
        host = read_host_ports_in(config.netns)
    except (Error, OSError):
        return
    check(config.source_ports, host, isolation=config.isolation)


def check_source_ip(config: ScanConfig) -> None:
    """Refuse an unusable --source-ip early, like check_source_ports: an address that is
    neither the host's nor a free one of the interface's subnet (ConfigError, exit 2).
    Whether another host answers ARP for it is only asked by the scan itself. Anything that
    stops the reading (privileges, no route) is left for scan() to report."""
    if config.is_dry_run or config.source_ip is None:
        return
    from pyscan.errors import Error
    from pyscan.netlink import SourceAddressRefused, check_source_address

    try:
        check_source_address(config.source_ip, config.targets[0],
                             config.interface, config.netns, config.gateway_ip)
    except SourceAddressRefused as error:
        raise ConfigError(str(error)) from None
    except (Error, OSError):
        return


def _source_ports(config: ScanConfig) -> tuple[range, tuple[str, ...]]:
    """The scan's source ports and any warning, read in the calling thread's namespace.

    No --source-port: a free run above the ephemeral range, chosen against this host. A
    given range: refused if unsafe (pyscan.sourceports), or kept with a warning under
    force_source_port. A dry run sends nothing and claims nothing, so the host is not read.
    """
    from pyscan.config import default_source_ports
    from pyscan.sourceports import (
        check_source_ports,
        choose_source_ports,
        read_host_ports,
        source_port_problems,
    )

    if config.is_dry_run:
        return config.source_ports or default_source_ports(), ()
    try:
        host = read_host_ports()
    except OSError as error:
        raise ScanError(f"cannot read the host's TCP ports from /proc: {error}") from None
    if config.source_ports is None:
        return choose_source_ports(host), ()
    if not config.force_source_port:
        check_source_ports(config.source_ports, host, isolation=config.isolation)
        return config.source_ports, ()
    problems = source_port_problems(config.source_ports, host)
    if not problems:
        return config.source_ports, ()
    return config.source_ports, (
        f"--force-source-port: {'; '.join(problems)}; their inbound TCP is "
        + ("dropped while the scan runs" if config.isolation else "mixed with the scan's"),)


def tx_thread_count(config: ScanConfig, tx_queues: int) -> int:
    """--tx-threads, or by default one per TX queue as far as cores go (null: one)."""
    if config.tx_threads is not None:
        return config.tx_threads
    if config.is_dry_run:
        return 1
    return max(1, min(tx_queues, os.cpu_count() or 1, 64))


@dataclass(frozen=True)
class DriverCandidate:
    descriptor: DriverDescriptor
    why: str   # for the start line: "chosen with --driver" or "automatic: ..."


def driver_candidates(config: ScanConfig) -> list[DriverCandidate]:
    """The drivers this scan may open, in order: --driver alone, or every driver of the
    registry's automatic order that says it can run here (asked once each). ScanError when
    none can."""
    from pyscan.drivers import DRIVERS, automatic_order, available_with, descriptor

    if config.driver is not None:
        row = descriptor(config.driver)
        available, reason = available_with(DRIVERS[row.name], config.driver_options)
        if not available:
            raise ScanError(f"driver {row.name!r} is not available here: {reason}")
        return [DriverCandidate(row, "chosen with --driver")]
    skipped: list[str] = []
    candidates = []
    for row in automatic_order():
        available, reason = available_with(DRIVERS[row.name], config.driver_options)
        if not available:
            skipped.append(f"{row.name} is not available ({reason})")
            continue
        why = "; ".join(skipped) if skipped else reason
        candidates.append(DriverCandidate(row, f"automatic: {why}"))
    if not candidates:
        raise ScanError(f"no driver can run here: {'; '.join(skipped)} (pyscan drivers says "
                        "why; --dry-run needs none)")
    return candidates


def choose_driver(config: ScanConfig) -> tuple[str, str]:
    """(driver name, why) of the driver a scan would try first. Only a prediction: the scan
    itself may fall back when opening it fails (ScanStart says what really ran)."""
    first = driver_candidates(config)[0]
    return first.descriptor.name, first.why


def _open_driver(config: ScanConfig, candidates: list[DriverCandidate], request: DriverRequest,
                 resources: contextlib.ExitStack
                 ) -> tuple[DriverDescriptor, str, DriverSession]:
    """Open the first candidate that can take the interface: (its descriptor, why, session).

    An automatic choice goes on to the next candidate only when the error is one of the
    failed driver's ``fallback_on`` classes; a bad option or any other failure stops here,
    as does every failure of a driver named with --driver."""
    from pyscan.drivers import DRIVERS, DriverError
    from pyscan.privileges import missing_capabilities

    failed: list[tuple[str, DriverError]] = []
    for index, candidate in enumerate(candidates):
        row = candidate.descriptor
        missing = missing_capabilities(row.capabilities) if failed else []
        try:
            if missing:  # the first candidate was checked up front
                raise DriverError(f"needs {', '.join(missing)}")
            session = resources.enter_context(DRIVERS[row.name].open(request))
        except DriverError as error:
            last = index == len(candidates) - 1
            if config.driver is not None or last or not isinstance(error, row.fallback_on):
                before = "".join(f" ({name} before it: {earlier})" for name, earlier in failed)
                raise ScanError(f"driver {row.name!r} could not open {request.interface!r}: "
                                f"{error}{before}") from None
            failed.append((row.name, error))
            continue
        if not failed:
            return row, candidate.why, session
        reasons = "; ".join(f"{name} could not be used ({error})" for name, error in failed)
        # Also in the summary's driver line, which outlives the start line on a terminal.
        session.description += f" - warning: {reasons}"
        return row, f"automatic: {reasons}", session
    raise AssertionError("driver_candidates() returned no candidate")  # never empty


def _resolve_path(config: ScanConfig) -> _Path:
    if config.is_dry_run:
        return _Path(
            interface=config.interface or "lo",
            ifindex=0,
            source_ip=config.source_ip or (DRY_RUN_SOURCE_IP6 if config.targets.family == 6
                                           else DRY_RUN_SOURCE_IP),
            source_mac=config.source_mac or DRY_RUN_SOURCE_MAC,
            gateway_mac=config.gateway_mac or DRY_RUN_GATEWAY_MAC,
        )
    from pyscan.netlink import NetlinkError, SourceAddressRefused, resolve_path

    first_target = config.targets[0]  # an address of the targets' family
    try:
        info = resolve_path(first_target, config.interface, config.source_ip, config.gateway_mac,
                            source_mac=config.source_mac, gateway_ip=config.gateway_ip)
    except SourceAddressRefused as error:
        raise ConfigError(str(error)) from None
    except NetlinkError as error:
        raise ScanError(str(error)) from None
    return _Path(
        interface=info.interface,
        ifindex=info.ifindex,
        source_ip=info.source_ip,
        source_mac=info.source_mac,
        gateway_mac=info.gateway_mac,
        tx_queues=info.tx_queues,
        source_owned=info.source_owned,
        next_hop_ip=info.gateway_ip,
        link_mac=info.link_mac,
    )


def _summarize(config: ScanConfig, stats: dict[str, int], session: DriverSession,
               driver_name: str, *,
               duration: float, send_duration: float, interrupted: bool,
               limit: str | None = None, capture_dropped: int = 0,
               source_ports: range | None = None, arp_replies: int | None = None,
               arp_conflicts: int = 0) -> Summary:
    driver_stats = session.stats()
    opened, closed = int(stats.get("rx_open", 0)), int(stats.get("rx_closed", 0))
    unreachable = int(stats.get("rx_unreachable", 0))
    duplicates = int(stats.get("rx_duplicates", 0))
    probes, sent = int(stats.get("total_targets", 0)), int(stats.get("sent", 0))
    frames = int(stats.get("total_frames", probes))
    # A limit ends a scan as asked (exit 0); only a stop the user asked for interrupts it.
    cut_short = interrupted and limit is None and sent < frames
    return Summary(
        targets=config.targets.count,
        ports=len(config.entries),  # port entries: TCP, UDP, the echo
        probes=probes,
        sent=sent,
        tx_errors=int(stats.get("tx_errors", 0)),
        duration=duration,
        send_duration=send_duration,
        replies=int(stats.get("rx_ours", 0)),
        valid=opened + closed + unreachable + duplicates,
        invalid_cookies=int(stats.get("rx_invalid_cookie", 0)),
        open=opened,
        closed=closed,
        duplicates=duplicates,
        driver_drops=int(driver_stats.get("rx_drops", 0)),
        driver=driver_name,
        driver_description=session.description,
        seed=config.seed,
        shard=config.shard,
        interrupted=cut_short,
        driver_counters={name: int(value) for name, value in driver_stats.items()
                         if name.startswith("xdp_")},
        capture_dropped=capture_dropped,
        source_ports=(source_ports[0], source_ports[-1]) if source_ports else None,
        limit=("max-targets" if config.planned_probes < config.probe_count
               and not cut_short else None),
        passes=int(stats.get("passes", 1)),
        frames=frames,
        ended_by=limit or ("interrupted" if cut_short else "completed"),
        unreachable=unreachable,
        arp_replies=arp_replies,
        arp_conflicts=arp_conflicts,
        family=config.targets.family,
    )


def _plain(value: object) -> object:
    """A Result field as JSON has it: numbers, text and None as they are, addresses as text,
    bytes (a UDP reply's payload) as hex."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
