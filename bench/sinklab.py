"""The bench's measuring instrument: a two-namespace veth lab whose target side drops every
frame at XDP, and counts it, per RX queue.

Every TX-rate contender (pyscan drivers, the bare ceiling loops, masscan, zmap) runs inside
the scan namespace and is measured by the same counter read the same way: veth's own per-queue
``rx_queue_N_xdp_packets`` (``ethtool -S``), which counts every frame the XDP program saw
whatever it returned. The sink is the bench's own so that the instrument does not change with
the code under test; pyscan's lab (pyscan/lab.py) is used for the truth lab.

Safety: the namespaces are created here and deleted on every exit path (context manager);
deleting a namespace destroys its veth end and the XDP program with it. IPv6 is disabled in
both namespaces so the link carries only what the contender sends, until an IPv6 row asks for
it (:meth:`SinkLab.ensure_ipv6`): then the scan side alone gets 2001:2:0:ffff::1/64 (no DAD,
no link-local address, no router solicitations), a static gateway 2001:2:0:ffff::2 and a
route to 2001:2:0:1::/64 - all inside the RFC 5180 benchmarking prefix 2001:2::/48.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from pyscan.bench_command import BenchError, parse_ethtool_queue_counters

SCAN_IP = "198.18.0.1"
GATEWAY_IP = "198.18.0.2"
TARGET_NET = "198.19.0.0/16"
SCAN_IP6 = "2001:2:0:ffff::1"
GATEWAY_IP6 = "2001:2:0:ffff::2"
TARGET_NET6 = "2001:2:0:1::/64"  # holds pyscan.bench_command.BENCH_TARGETS6 and bare_frame.h's
# MLD reports for the new address's solicited-node group: robustness 2 x 1 s interval
IPV6_SETTLE_SECONDS = 3.0
ETHERNET_HEADER = 14

_DROP_PROGRAM = """\
// SPDX-License-Identifier: GPL-2.0-only
// bench sink: drop every frame; veth counts it per RX queue before the verdict applies.
#include <linux/bpf.h>
__attribute__((section("xdp"), used)) int bench_sink(struct xdp_md *ctx) { return XDP_DROP; }
char _license[] __attribute__((section("license"), used)) = "GPL";
"""


def _run(*argv: str, check: bool = True) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.returncode}")
    return done.stdout


def build_drop_program(workdir: Path) -> Path:
    source = workdir / "bench_sink.bpf.c"
    target = workdir / "bench_sink.bpf.o"
    source.write_text(_DROP_PROGRAM)
    arch = os.uname().machine
    _run("clang", "-O2", "-target", "bpf", f"-I/usr/include/{arch}-linux-gnu",
         "-c", str(source), "-o", str(target))
    return target


@dataclass
class SinkSamples:
    """Sink totals sampled on the wall clock while a contender runs."""

    times: list[float] = field(default_factory=list)
    totals: list[int] = field(default_factory=list)

    def steady_rate(self) -> float | None:
        """Frames/s between the first and the last sample taken while frames were still
        arriving (count strictly above the first sample and below the last), so start-up,
        ramp and tail are excluded; None when fewer than two such samples exist."""
        if len(self.totals) < 4:
            return None
        start_total, end_total = self.totals[0], self.totals[-1]
        inside = [i for i, total in enumerate(self.totals) if start_total < total < end_total]
        if len(inside) < 2:
            return None
        first, last = inside[0], inside[-1]
        elapsed = self.times[last] - self.times[first]
        if elapsed <= 0:
            return None
        return (self.totals[last] - self.totals[first]) / elapsed


@dataclass(frozen=True)
class SinkSnapshot:
    """The sink's per-queue frame and byte counters at one moment (or a difference)."""

    frames: dict[int, int]
    bytes: dict[int, int]

    def since(self, earlier: SinkSnapshot) -> SinkSnapshot:
        return SinkSnapshot(
            {q: n - earlier.frames.get(q, 0) for q, n in self.frames.items()},
            {q: n - earlier.bytes.get(q, 0) for q, n in self.bytes.items()},
        )

    @property
    def total_frames(self) -> int:
        return sum(self.frames.values())

    @property
    def mean_frame_len(self) -> int | None:
        """Average frame length in bytes (Ethernet header included, no FCS), rounded. veth
        counts skb->len after the Ethernet header was pulled, hence the + 14."""
        frames = self.total_frames
        if frames <= 0:
            return None
        return round(sum(self.bytes.values()) / frames) + ETHERNET_HEADER


class SinkLab:
    """``with SinkLab(queues=2, workdir=...) as lab:`` - scan namespace ``lab.scan_ns`` with
    ``lab.scan_if`` (198.18.0.1/30, route to 198.19.0.0/16 via a static gateway whose MAC is
    ``lab.gateway_mac``), target namespace with the XDP sink."""

    def __init__(self, workdir: Path, queues: int = 2, tag: str = "bench") -> None:
        base = f"{tag[:4]}{os.getpid() % 100000}"
        self.scan_ns = f"{base}-scan"
        self.target_ns = f"{base}-sink"
        self.scan_if = f"{base}s"
        self.target_if = f"{base}t"
        self.queues = queues
        self.workdir = workdir
        self.gateway_mac = ""
        self.scan_mac = ""
        self.ipv6 = False
        self._created: list[str] = []

    def __enter__(self) -> SinkLab:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.down()

    def up(self) -> None:
        program = build_drop_program(self.workdir)
        for ns in (self.scan_ns, self.target_ns):
            _run("ip", "netns", "add", ns)
            self._created.append(ns)
            for key in ("all", "default"):
                _run("ip", "netns", "exec", ns, "sysctl", "-qw",
                     f"net.ipv6.conf.{key}.disable_ipv6=1")
        q = str(self.queues)
        _run("ip", "link", "add", self.scan_if, "netns", self.scan_ns, "numtxqueues", q,
             "numrxqueues", q, "type", "veth", "peer", "name", self.target_if, "netns",
             self.target_ns, "numtxqueues", q, "numrxqueues", q)
        _run("ip", "-n", self.target_ns, "link", "set", self.target_if, "xdp", "obj",
             str(program), "sec", "xdp")
        _run("ip", "-n", self.scan_ns, "addr", "add", f"{SCAN_IP}/30", "dev", self.scan_if)
        _run("ip", "-n", self.target_ns, "addr", "add", f"{GATEWAY_IP}/30", "dev",
             self.target_if)
        for ns, dev in ((self.scan_ns, self.scan_if), (self.target_ns, self.target_if)):
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "-n", ns, "link", "set", dev, "up")
        self.gateway_mac = self._mac(self.target_ns, self.target_if)
        self.scan_mac = self._mac(self.scan_ns, self.scan_if)
        # the sink never answers ARP (it drops everything), so the gateway entry is static
        _run("ip", "-n", self.scan_ns, "neigh", "replace", GATEWAY_IP, "lladdr",
             self.gateway_mac, "dev", self.scan_if, "nud", "permanent")
        _run("ip", "-n", self.scan_ns, "route", "add", TARGET_NET, "via", GATEWAY_IP)

    def ensure_ipv6(self) -> None:
        """Give the scan side its IPv6 address, gateway and route (once; see the module)."""
        if self.ipv6:
            return
        ns, dev = self.scan_ns, self.scan_if
        _run("ip", "-n", ns, "link", "set", dev, "addrgenmode", "none")
        for key in ("all", "default", dev):
            for setting in ("accept_ra=0", "router_solicitations=0", "accept_dad=0"):
                _run("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.{setting}")
        for key in ("all", dev):
            _run("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=0")
        _run("ip", "-n", ns, "addr", "add", f"{SCAN_IP6}/64", "dev", dev, "nodad")
        _run("ip", "-n", ns, "neigh", "replace", GATEWAY_IP6, "lladdr", self.gateway_mac, "dev",
             dev, "nud", "permanent")
        _run("ip", "-n", ns, "route", "add", TARGET_NET6, "via", GATEWAY_IP6)
        self.ipv6 = True
        time.sleep(IPV6_SETTLE_SECONDS)  # the MLD reports arrive before any measured run

    def down(self) -> None:
        while self._created:
            _run("ip", "netns", "del", self._created.pop(), check=False)

    @staticmethod
    def _mac(ns: str, dev: str) -> str:
        return _run("ip", "-n", ns, "-br", "link", "show", dev).split()[2]

    def exec_argv(self, *argv: str) -> list[str]:
        """argv that runs a command inside the scan namespace."""
        return ["ip", "netns", "exec", self.scan_ns, *argv]

    def snapshot(self) -> SinkSnapshot:
        text = _run("ip", "netns", "exec", self.target_ns, "ethtool", "-S", self.target_if)
        return SinkSnapshot(parse_ethtool_queue_counters(text),
                            parse_ethtool_queue_counters(text, "bytes"))

    def total(self) -> int:
        return self.snapshot().total_frames


class Sampler:
    """Samples a SinkLab's total in a background thread between start() and stop()."""

    def __init__(self, lab: SinkLab, interval: float = 0.25) -> None:
        self.lab = lab
        self.interval = interval
        self.samples = SinkSamples()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            self.samples.times.append(time.monotonic())
            self.samples.totals.append(self.lab.total())
            if self._stop.wait(self.interval):
                break

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> SinkSamples:
        self._stop.set()
        self._thread.join()
        self.samples.times.append(time.monotonic())
        self.samples.totals.append(self.lab.total())
        return self.samples
