"""`pyscan bench`: how fast a driver puts probe frames on a link, measured, not estimated.

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

import json
import os
import platform
import re
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "ETHERNET_FCS",
    "ETHERNET_MIN_FRAME",
    "ETHERNET_OVERHEAD",
    "BenchError",
    "BenchReport",
    "QueueFigures",
    "Spread",
    "environment",
    "line_rate_fraction",
    "line_rate_pps",
    "link_speed_mbps",
    "ns_per_packet",
    "parse_ethtool_queue_counters",
    "ratio",
    "summarize",
    "wire_bits_per_second",
    "wire_bytes",
]

ETHERNET_FCS = 4
ETHERNET_MIN_FRAME = 64  # including the FCS
ETHERNET_OVERHEAD = 20  # preamble 7 + start-of-frame delimiter 1 + inter-frame gap 12
MAX_FRAME = 1514  # without FCS, standard MTU


class BenchError(RuntimeError):
    """A benchmark cannot run; the message is one line saying what and why."""


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
    sink_received: int | None = None


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
    sources: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> BenchReport:
        values = dict(data)
        queues = values.pop("queues", [])
        assert isinstance(queues, list)
        return cls(queues=[QueueFigures(**q) for q in queues], **values)  # type: ignore[arg-type]
