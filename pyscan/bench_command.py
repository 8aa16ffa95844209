"""`pyscan bench`, the user command: how fast a driver puts probe frames on a link, measured,
not estimated. (The bench/ suite, `make bench`, is the side-by-side comparison with masscan,
zmap and the bare loops; it imports this module.)

The arithmetic here is the one every pyscan benchmark uses (the bench/ suite imports it):

- a frame of L bytes as written to the ring (no FCS) occupies ``max(L + 4, 64) + 20`` bytes of
  link time: 4 bytes of FCS added by the NIC, the 64-byte Ethernet minimum, and 20 bytes of
  preamble (7), start delimiter (1) and inter-frame gap (12). Bit rates are on the wire;
- line rate for a link of S Mbit/s is ``S * 1e6 / (8 * wire_bytes(L))`` frames per second;
- repeated runs are summarised by their median and their spread (min, max).

Every figure in a report names its source (driver counter, sink counter, thread CPU clock,
wall clock) in ``BenchReport.sources``; nothing is extrapolated.
"""

from __future__ import annotations

import ipaddress
import json
import os
import platform
import re
import secrets
import statistics
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "BENCH_PROBES",
    "ETHERNET_FCS",
    "ETHERNET_MIN_FRAME",
    "ETHERNET_OVERHEAD",
    "BenchError",
    "BenchInputError",
    "BenchOptions",
    "BenchProbe",
    "BenchReport",
    "QueueFigures",
    "Spread",
    "bench_probe",
    "default_lab_name",
    "environment",
    "line_rate_fraction",
    "line_rate_pps",
    "link_speed_mbps",
    "ns_per_packet",
    "options_from_text",
    "parse_ethtool_queue_counters",
    "ratio",
    "render",
    "run_and_print",
    "run_bench",
    "summarize",
    "wire_bits_per_second",
    "wire_bytes",
]

ETHERNET_FCS = 4
ETHERNET_MIN_FRAME = 64  # including the FCS
ETHERNET_OVERHEAD = 20  # preamble 7 + start-of-frame delimiter 1 + inter-frame gap 12


class BenchError(RuntimeError):
    """A benchmark cannot run; the message is one line saying what and why."""


class BenchInputError(BenchError):
    """The benchmark was asked for something invalid (exit code 2: nothing was created)."""


# --- arithmetic --------------------------------------------------------------------------------


def wire_bytes(frame_len: int) -> int:
    """Bytes of link time one frame of ``frame_len`` bytes (as written, no FCS) occupies."""
    if frame_len <= 0:
        raise ValueError(f"frame length {frame_len} must be > 0 bytes")
    return max(frame_len + ETHERNET_FCS, ETHERNET_MIN_FRAME) + ETHERNET_OVERHEAD


def wire_bits_per_second(pps: float, frame_len: int) -> float:
    """On-the-wire bit rate of ``pps`` frames per second of ``frame_len`` bytes each."""
    return pps * wire_bytes(frame_len) * 8


def line_rate_pps(speed_mbps: float, frame_len: int) -> float:
    """Most frames per second a link of ``speed_mbps`` can carry at this frame length."""
    return speed_mbps * 1e6 / (wire_bytes(frame_len) * 8)


def line_rate_fraction(pps: float, frame_len: int, speed_mbps: float | None) -> float | None:
    """Achieved share of line rate; None when the link speed is unknown (veth, down links)."""
    if speed_mbps is None or speed_mbps <= 0:
        return None
    return pps / line_rate_pps(speed_mbps, frame_len)


def ns_per_packet(cpu_ns: int, frames: int) -> float | None:
    """CPU nanoseconds spent per frame; None when nothing was sent."""
    return cpu_ns / frames if frames > 0 else None


def ratio(value: float | None, reference: float | None) -> float | None:
    """value / reference, None when either is missing or the reference is 0."""
    if value is None or reference is None or reference == 0:
        return None
    return value / reference


@dataclass(frozen=True)
class Spread:
    """Median and range of repeated measurements of one quantity."""

    median: float
    low: float
    high: float
    runs: int

    @property
    def relative(self) -> float:
        """(high - low) / median: how far apart the runs were, as a fraction of the median."""
        return (self.high - self.low) / self.median if self.median else 0.0


def summarize(values: Sequence[float]) -> Spread:
    if not values:
        raise ValueError("no measurements to summarize")
    return Spread(
        median=float(statistics.median(values)),
        low=float(min(values)),
        high=float(max(values)),
        runs=len(values),
    )


# --- reading the machine ----------------------------------------------------------------------


def link_speed_mbps(interface: str, sysfs: Path = Path("/sys/class/net")) -> int | None:
    """The link speed the kernel reports, in Mbit/s; None when it has none (veth, link down)."""
    try:
        text = (sysfs / interface / "speed").read_text().strip()
        speed = int(text)
    except (OSError, ValueError):
        return None
    return speed if speed > 0 else None


_QUEUE_COUNTER = re.compile(r"^\s*rx_queue_(\d+)_xdp_(packets|bytes):\s*(\d+)\s*$")


def parse_ethtool_queue_counters(text: str, what: str = "packets") -> dict[int, int]:
    """Per-queue XDP receive counters from ``ethtool -S`` on a veth: {queue: frames}.

    veth counts every frame its XDP program saw per RX queue, whatever the program returned,
    so on a sink this is the exact number of frames that arrived, queue by queue.
    ``what="bytes"`` reads the byte counters instead (frame bytes without FCS).
    """
    counters: dict[int, int] = {}
    for line in text.splitlines():
        match = _QUEUE_COUNTER.match(line)
        if match and match.group(2) == what:
            counters[int(match.group(1))] = int(match.group(3))
    return counters


def environment() -> dict[str, str]:
    """What the numbers were measured on: kernel, CPU model and count, when, which run."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "kernel": platform.release(),
        "cpu": cpu,
        "cpus": str(os.cpu_count() or 0),
        "python": platform.python_version(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "run_id": f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{os.getpid()}",
    }


# --- the report --------------------------------------------------------------------------------


@dataclass
class QueueFigures:
    """One TX thread (one queue) of one run."""

    queue: int
    sent: int
    cpu_ns: int
    pps: float
    ns_per_packet: float | None


@dataclass
class BenchReport:
    driver: str
    interface: str
    description: str
    tx_threads: int
    frame_len: int
    requested_rate: float | None
    wall_s: float
    sent: int
    driver_drops: int
    driver_retries: int
    pps: float
    wire_bps: float
    link_speed_mbps: int | None
    line_rate_fraction: float | None
    cpu_ns: int
    ns_per_packet: float | None
    queues: list[QueueFigures]
    sink_received: int | None = None
    sink_queues: dict[int, int] | None = None   # frames per sink RX queue (lab only)
    sources: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> BenchReport:
        values = dict(data)
        queues = values.pop("queues", [])
        sink_queues = values.pop("sink_queues", None)
        if not isinstance(queues, list):
            raise ValueError(f"report queues must be a list, not {type(queues).__name__}")
        if isinstance(sink_queues, Mapping):  # JSON object keys are strings
            sink_queues = {int(q): int(n) for q, n in sink_queues.items()}
        return cls(queues=[QueueFigures(**q) for q in queues],
                   sink_queues=sink_queues, **values)  # type: ignore[arg-type]


# --- running a driver --------------------------------------------------------------------------

# Probes go to the RFC 2544 benchmarking range only, whatever the interface: on a real link
# they leave toward the gateway, and nobody owns these addresses.
BENCH_TARGETS = ("198.19.0.0", "198.19.255.255")
BENCH_PORTS = range(1, 65536)
BENCH_SOURCE_PORTS = range(61000, 61256)
MAX_DURATION = 3600.0
MAX_TX_THREADS = 64
LAB_IPV6_SETTLE_SECONDS = 3.0  # MLDv2: robustness 2 x unsolicited report interval 1 s, + margin
ICMP4_ECHO_FRAME_LEN = 42  # Ethernet 14 + IPv4 20 + ICMP echo 8, no payload (probe_icmp_echo4.c)
UDP4_HEADERS_LEN = 42      # Ethernet 14 + IPv4 20 + UDP 8 (probe_udp4.c)
BENCH_UDP_PORTS = range(1, 1025)
# IPv6 probes go to the RFC 5180 benchmarking prefix only: 2^16 addresses like the IPv4 /16
BENCH_TARGETS6 = ("2001:2:0:1::", "2001:2:0:1::ffff")
TCP6_SYN_FRAME_LEN = 78    # Ethernet 14 + IPv6 40 + TCP 20 + MSS 4: the IPv4 rows' "mss" profile
ICMP6_ECHO_FRAME_LEN = 62  # Ethernet 14 + IPv6 40 + ICMPv6 echo 8, no payload


@dataclass(frozen=True)
class BenchProbe:
    """What the benchmark sends for one probe type: the engine's ports, payload records and
    passes over BENCH_TARGETS, and the frame length that results. A probe whose target set is
    short (ICMP echo: one probe per address) is given retries so that one engine lasts a
    while; when it is exhausted before the duration is over, the bench starts the next engine
    (the report counts every engine's frames and the whole wall clock, gaps included)."""

    name: str
    frame_len: int
    ports: Sequence[int]
    probe_args: bytes = b""
    retries: int = 0
    family: int = 4

    @property
    def targets(self) -> tuple[str, str]:
        """The one address range this probe is sent to (by family)."""
        return BENCH_TARGETS6 if self.family == 6 else BENCH_TARGETS


def _udp_dns_probe() -> BenchProbe:
    from pyscan.probes.udp_payloads import BUILTIN, payload_records

    dns = BUILTIN["dns"]
    # every port carries the DNS version.bind query, so every frame has the same length
    return BenchProbe("udp", UDP4_HEADERS_LEN + len(dns.data), BENCH_UDP_PORTS,
                      payload_records(dict.fromkeys(BENCH_UDP_PORTS, dns)))


def bench_probe(name: str) -> BenchProbe:
    """The benchmark's probe of type ``name`` (BENCH_PROBES); BenchInputError otherwise."""
    from pyscan.native import SYN_FRAME_LEN

    if name == "tcp-syn":
        return BenchProbe("tcp-syn", SYN_FRAME_LEN, BENCH_PORTS)
    if name == "icmp-echo":
        return BenchProbe("icmp-echo", ICMP4_ECHO_FRAME_LEN, (0,), retries=15)
    if name == "udp":
        return _udp_dns_probe()
    if name == "tcp-syn6":
        return BenchProbe("tcp-syn6", TCP6_SYN_FRAME_LEN, BENCH_PORTS, family=6)
    if name == "icmp-echo6":
        return BenchProbe("icmp-echo6", ICMP6_ECHO_FRAME_LEN, (0,), retries=15, family=6)
    raise BenchInputError(f"probe {name!r} is not benchmarked: accepted "
                          f"{', '.join(BENCH_PROBES)}")


# The probe types the benchmark can send; the IPv6 ones to BENCH_TARGETS6 (2001:2::/48).
BENCH_PROBES = ("tcp-syn", "icmp-echo", "udp", "tcp-syn6", "icmp-echo6")


@dataclass(frozen=True)
class BenchOptions:
    """What ``pyscan bench`` was asked to do (the CLI's flags, validated by ``check()``)."""

    driver: str
    interface: str | None = None
    duration: float = 10.0
    tx_threads: int = 1
    size: int = 64
    rate: float | None = None          # packets per second for all threads; None = max
    lab: bool = False
    source_ip: str | None = None
    gateway_mac: str | None = None
    driver_options: Mapping[str, str] = field(default_factory=dict)
    lab_name: str | None = None        # default: pbench<pid>
    probe: str = "tcp-syn"             # one of BENCH_PROBES (bench/ only; the CLI sends SYN)

    def check(self) -> None:
        frame_len = bench_probe(self.probe).frame_len
        probe_size = wire_bytes(frame_len) - ETHERNET_OVERHEAD
        if not 0 < self.duration <= MAX_DURATION:
            raise BenchInputError(f"--duration {self.duration:g} is invalid: accepted seconds "
                                  f"> 0 and <= {MAX_DURATION:g}")
        if not 1 <= self.tx_threads <= MAX_TX_THREADS:
            raise BenchInputError(f"--tx-threads {self.tx_threads} is invalid: accepted "
                                  f"1..{MAX_TX_THREADS}")
        if self.size != probe_size:
            raise BenchInputError(
                f"--size {self.size} is not supported: pyscan sends its {self.probe} probe, "
                f"{frame_len} bytes + FCS, {probe_size} on the wire; accepted: "
                f"{probe_size} (bench/ measures other sizes with the bare loops)")
        if self.rate is not None and not 0 < self.rate < 1e10:
            raise BenchInputError(f"--rate {self.rate:g} is invalid: accepted packets per second "
                                  "> 0, or no --rate for as fast as possible")
        if self.driver != "null" and not self.lab and not self.interface:
            raise BenchInputError(f"driver {self.driver} needs --interface IFACE (or --lab)")
        if self.lab and self.interface:
            raise BenchInputError("--lab builds its own interface: give --lab or --interface, "
                                  "not both")


def run_bench(options: BenchOptions) -> BenchReport:
    """Send probe frames with ``options.driver`` for ``options.duration`` seconds and report
    what was sent (driver counter), how fast (wall clock), at what CPU cost (thread CPU
    clock), and with ``lab`` what the lab's sink received (sink counter)."""
    options.check()
    from pyscan.drivers import DRIVERS, available_with

    driver = DRIVERS.get(options.driver)
    if driver is None:
        raise BenchInputError(f"unknown driver {options.driver!r}: accepted "
                              f"{', '.join(sorted(DRIVERS))}")
    ok, reason = available_with(driver, options.driver_options)
    if not ok:
        raise BenchError(f"driver {options.driver} is not available here: {reason}")
    if not options.lab:
        return _run_on(options, driver, options.interface, netns=None, lab=None)

    from pyscan.lab import Lab, LabError

    try:
        # an IPv6 probe needs the lab's IPv6 half (its link comes up before the sink counts)
        lab = Lab(name=options.lab_name or default_lab_name(), sink=True,
                  queues=options.tx_threads, ipv6=bench_probe(options.probe).family == 6)
        with lab:
            if lab.ipv6:
                # the new IPv6 addresses' MLD reports (an initial one and a retransmission
                # within 1 s) reach the sink: let them pass before the count starts
                time.sleep(LAB_IPV6_SETTLE_SECONDS)
            return _run_on(options, driver, lab.scan_interface, netns=lab.scan_netns, lab=lab)
    except LabError as error:
        raise BenchError(f"sink lab: {error}") from None


def default_lab_name() -> str:
    """The lab ``pyscan bench --lab`` builds: unique to this process (13 characters max)."""
    return f"pbench{os.getpid() % 10_000_000}"


def sink_queue_counts(netns: str, interface: str) -> dict[int, int] | None:
    """Frames each RX queue of a veth sink received (``ethtool -S`` in its namespace);
    None when ethtool is missing or the interface has no such counters."""
    import subprocess

    try:
        done = subprocess.run(["ip", "netns", "exec", netns, "ethtool", "-S", interface],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    counts = parse_ethtool_queue_counters(done.stdout) if done.returncode == 0 else {}
    return counts or None


def _run_on(options: BenchOptions, driver: object, interface: str | None, netns: str | None,
            lab: object | None) -> BenchReport:
    from pyscan.drivers import descriptor
    from pyscan.drivers.base import DriverError, DriverRequest
    from pyscan.native import Engine
    from pyscan.netlink import NetlinkError, in_netns, resolve_path

    sources = {
        "sent": "driver counter (frames the kernel/NIC accepted, ring stats tx_frames)",
        "pps": "sent / wall clock from TX start to the last TX thread's end (CLOCK_MONOTONIC)",
        "wire_bps": "pps x (max(frame + 4 FCS, 64) + 20 preamble/SFD/IFG) x 8 (computed)",
        "ns_per_packet": "TX thread CPU time (CLOCK_THREAD_CPUTIME_ID) / frames it sent",
        "link_speed_mbps": "/sys/class/net/IFACE/speed (none on veth: unknown)",
    }
    cookie_key = secrets.token_bytes(16)
    probe = bench_probe(options.probe)
    if interface is None:  # null driver: no link at all
        source_ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
            options.source_ip or ("2001:2:0:ffff::1" if probe.family == 6 else "198.18.0.1"))
        source_mac, gateway_mac, ifindex, speed = "02:00:00:00:00:01", "02:00:00:00:00:02", 0, None
        iface_name = "-"
    else:
        try:
            path = resolve_path(
                ipaddress.ip_address(probe.targets[0]), interface,
                ipaddress.ip_address(options.source_ip) if options.source_ip else None,
                options.gateway_mac, netns=netns)
        except (NetlinkError, ValueError) as error:
            raise BenchError(f"cannot use interface {interface}: {error}") from None
        source_ip, source_mac, gateway_mac = path.source_ip, path.source_mac, path.gateway_mac
        ifindex, iface_name = path.ifindex, path.interface
        speed = None if netns else link_speed_mbps(path.interface)
    request = DriverRequest(
        interface=iface_name, ifindex=ifindex, tx_threads=options.tx_threads, want_rx=False,
        source_ip=source_ip, source_ports=BENCH_SOURCE_PORTS, cookie_key=cookie_key,
        options=dict(options.driver_options))
    sink_before, queues_before = None, None
    if lab is not None:
        sink_before = lab.sink_count()["frames"]  # type: ignore[attr-defined]
        queues_before = sink_queue_counts(lab.target_netns,  # type: ignore[attr-defined]
                                          lab.target_interface)  # type: ignore[attr-defined]
    try:
        with in_netns(netns):
            session = driver.open(request)  # type: ignore[attr-defined]
    except DriverError as error:
        raise BenchError(f"driver {options.driver}: {error}") from None
    with session:
        cpu_ns = [0] * options.tx_threads
        errors: list[str] = []
        stats: dict[str, int] = {}
        engines = 0
        started = time.monotonic()
        deadline = started + options.duration
        # one engine, or the next ones while the duration lasts when a probe's target set
        # runs out first (icmp-echo: see BenchProbe)
        while time.monotonic() < deadline and not errors:
            engine = Engine(
                cookie_key=cookie_key, seed=secrets.randbits(64), source_ip=source_ip,
                source_mac=source_mac, gateway_mac=gateway_mac, ranges=[probe.targets],
                ports=probe.ports, source_ports=BENCH_SOURCE_PORTS,
                rate=options.rate or 0.0, tx_threads=options.tx_threads,
                # frames per reserve/submit as a scan uses them (xdp-live: one BPF_PROG_RUN)
                batch_size=descriptor(options.driver).engine_batch(options.driver_options),
                # the 58-byte minimum probe, so the figures stay comparable across versions
                # and with the bare loops, masscan and zmap's smallest-probes
                tcp_options="mss", probe=probe.name, probe_args=probe.probe_args,
                retries=probe.retries, retry_delay=0.0, family=probe.family)
            engines += 1
            with engine:

                def transmit(index: int, engine: Engine = engine) -> None:
                    start = time.thread_time_ns()
                    try:
                        engine.run_tx(index, session.tx_rings[index])
                    except OSError as error:
                        errors.append(str(error))
                    finally:
                        cpu_ns[index] += time.thread_time_ns() - start

                threads = [threading.Thread(target=transmit, args=(i,), name=f"bench-tx{i}")
                           for i in range(options.tx_threads)]
                for thread in threads:
                    thread.start()
                while time.monotonic() < deadline and any(t.is_alive() for t in threads):
                    time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
                engine.stop_tx()
                for thread in threads:
                    thread.join()
                for name, value in engine.stats().items():
                    if isinstance(value, int):
                        stats[name] = stats.get(name, 0) + value
        wall = time.monotonic() - started
        if engines > 1:
            sources["engines"] = (f"{engines} engines one after another (the {probe.name} "
                                  "target set ran out before the duration; gaps included)")
        ring_totals = session.stats()
        description = session.description
    if errors:
        raise BenchError(f"driver {options.driver}: {errors[0]}")
    sink_received, queues_after = None, None
    if lab is not None:
        sink_received = lab.sink_count()["frames"] - sink_before  # type: ignore[attr-defined]
        queues_after = sink_queue_counts(lab.target_netns,  # type: ignore[attr-defined]
                                         lab.target_interface)  # type: ignore[attr-defined]
        sources["sink_received"] = ("lab sink XDP program's frame counter on the target veth "
                                    "(per queue: veth rx_queue_N_xdp_packets)")
    sent = ring_totals["tx_frames"] if options.driver != "null" else stats["sent"]
    if options.driver == "null":
        sources["sent"] = "engine counter (frames generated into null ring slots)"
    queues = [
        QueueFigures(queue=i, sent=stats[f"thread_sent_{i}"], cpu_ns=cpu_ns[i],
                     pps=stats[f"thread_sent_{i}"] / wall,
                     ns_per_packet=ns_per_packet(cpu_ns[i], stats[f"thread_sent_{i}"]))
        for i in range(options.tx_threads)
    ]
    sink_queues = None
    if queues_before is not None and queues_after is not None:
        sink_queues = {q: n - queues_before.get(q, 0) for q, n in queues_after.items()}
    pps = sent / wall
    return BenchReport(
        driver=options.driver, interface=iface_name, description=description,
        tx_threads=options.tx_threads, frame_len=probe.frame_len, requested_rate=options.rate,
        wall_s=wall, sent=sent, driver_drops=ring_totals["tx_errors"] + stats["tx_errors"],
        driver_retries=ring_totals["tx_retries"], pps=pps,
        wire_bps=wire_bits_per_second(pps, probe.frame_len), link_speed_mbps=speed,
        line_rate_fraction=line_rate_fraction(pps, probe.frame_len, speed),
        cpu_ns=sum(cpu_ns), ns_per_packet=ns_per_packet(sum(cpu_ns), sent), queues=queues,
        sink_received=sink_received, sink_queues=sink_queues, sources=sources,
        environment=environment(),
    )


# --- showing it --------------------------------------------------------------------------------


def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3f} {prefix}{unit}"
    return f"{value:.1f} {unit}"


def render(report: BenchReport, console: object | None = None) -> None:
    """The report as rich tables, for people."""
    from rich.console import Console
    from rich.table import Table

    out = console if console is not None else Console()
    table = Table(title=f"pyscan bench: {report.driver} on {report.interface}",
                  show_header=True, header_style="bold")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("measured by")
    src = report.sources
    fraction = ("unknown (no link speed)" if report.line_rate_fraction is None
                else f"{report.line_rate_fraction:.1%} of {report.link_speed_mbps} Mbit/s")
    rows = [
        ("mode", report.description, "driver"),
        ("TX threads", str(report.tx_threads), "option"),
        ("frame", f"{report.frame_len} B (+4 FCS, {wire_bytes(report.frame_len)} B on the wire)",
         "probe template"),
        ("requested rate", "max" if report.requested_rate is None
         else _si(report.requested_rate, "pps"), "option"),
        ("duration", f"{report.wall_s:.3f} s", "wall clock"),
        ("sent", f"{report.sent:,}", src.get("sent", "")),
        ("TX rate", _si(report.pps, "pps"), src.get("pps", "")),
        ("on the wire", _si(report.wire_bps, "bit/s"), src.get("wire_bps", "")),
        ("line rate", fraction, src.get("link_speed_mbps", "")),
        ("CPU per packet", "-" if report.ns_per_packet is None
         else f"{report.ns_per_packet:.1f} ns", src.get("ns_per_packet", "")),
        ("driver drops", f"{report.driver_drops:,}", "driver + engine tx_errors"),
        ("ring-full waits", f"{report.driver_retries:,}", "driver tx_retries"),
    ]
    if report.sink_received is not None:
        verdict = "equal" if report.sink_received == report.sent else (
            f"differs by {report.sink_received - report.sent:+,}")
        rows.append(("sink received", f"{report.sink_received:,} ({verdict})",
                     src.get("sink_received", "")))
    for row in rows:
        table.add_row(*row)
    out.print(table)  # type: ignore[attr-defined]
    per_queue = Table(title="per TX thread / queue", header_style="bold")
    for column in ("TX thread", "sent", "pps", "CPU ns/pkt"):
        per_queue.add_column(column, justify="right")
    for q in report.queues:
        per_queue.add_row(str(q.queue), f"{q.sent:,}", _si(q.pps, "pps"),
                          "-" if q.ns_per_packet is None else f"{q.ns_per_packet:.1f}")
    out.print(per_queue)  # type: ignore[attr-defined]
    if report.sink_queues:
        received = ", ".join(f"queue {q}: {n:,}" for q, n in sorted(report.sink_queues.items()))
        out.print(f"sink received per RX queue: {received}")  # type: ignore[attr-defined]
    env = report.environment
    out.print(f"kernel {env.get('kernel')}, {env.get('cpus')} x {env.get('cpu')}, "  # type: ignore[attr-defined]
              f"run {env.get('run_id')}")


def options_from_text(driver: str, interface: str | None, duration: str, tx_threads: str,
                      size: str, rate: str | None, lab: bool, source_ip: str | None,
                      gateway_mac: str | None, driver_options: list[str]) -> BenchOptions:
    """BenchOptions from command-line text; BenchInputError naming the bad value."""
    from pyscan.config import ConfigError, parse_driver_options, parse_rate

    def number(text: str, flag: str, kind: type, accepted: str) -> float:
        try:
            return kind(text)  # type: ignore[no-any-return]
        except ValueError:
            raise BenchInputError(f"{flag} {text!r} is not a number (accepted: {accepted})") \
                from None

    try:
        requested = None if rate is None else parse_rate(rate)
        extra = dict(parse_driver_options(driver_options))
    except ConfigError as error:
        raise BenchInputError(str(error)) from None
    options = BenchOptions(
        driver=driver, interface=interface,
        duration=number(duration, "--duration", float, "seconds, like 10 or 2.5"),
        tx_threads=int(number(tx_threads, "--tx-threads", int, f"1..{MAX_TX_THREADS}")),
        size=int(number(size, "--size", int, "frame bytes on the wire incl. FCS, like 64")),
        rate=None if requested is None or requested == float("inf") else requested,
        lab=lab, source_ip=source_ip, gateway_mac=gateway_mac, driver_options=extra,
    )
    options.check()
    return options


def run_and_print(options: BenchOptions, as_json: bool = False) -> BenchReport:
    """What ``pyscan bench`` calls: run, then print JSON (machines) or tables (people)."""
    report = run_bench(options)
    if as_json:
        print(report.to_json())
    else:
        render(report)
    return report
