"""Live one-line status and the end-of-scan summary, both on standard error.

The live line is redrawn in place (carriage return + erase) about four times a second, only
when standard error is a terminal unless forced, so logs and pipes stay clean. The summary is
a short block of plain text, or one JSON object with `--json-summary` for scripts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Generic, Protocol, TextIO, TypeVar

from pyscan.scanner import ScanStatus, Summary

__all__ = ["LiveLine", "StatusLine", "format_rate", "format_status", "render_summary",
           "summary_json"]


def format_rate(pps: float) -> str:
    if pps >= 1e6:
        return f"{pps / 1e6:.2f} Mpps"
    if pps >= 1e3:
        return f"{pps / 1e3:.1f} kpps"
    return f"{pps:.0f} pps"


def _clock(seconds: float) -> str:
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_status(status: ScanStatus) -> str:
    unreachable = f"  unreachable {status.unreachable}" if status.unreachable else ""
    counts = (f"open {status.found}  closed {status.closed}{unreachable}  "
              f"drops {status.drops}")
    if status.phase == "sending":
        eta = status.eta
        return (
            f"sending {format_rate(status.rate):>10}  {100 * status.fraction:6.2f} %  "
            f"ETA {_clock(eta) if eta is not None else '--:--'}  "
            f"sent {status.sent}/{status.total}  {counts}"
        )
    if status.phase == "waiting":
        return (
            f"waiting {status.wait_left:4.1f} s for late replies (Ctrl-C to skip)  "
            f"sent {status.sent}/{status.total}  {counts}"
        )
    return f"done in {_clock(status.elapsed)}  sent {status.sent}/{status.total}  {counts}"


class _Phased(Protocol):
    @property
    def phase(self) -> str: ...


StatusT = TypeVar("StatusT", bound=_Phased)


class LiveLine(Generic[StatusT]):
    """An on_status callback that redraws one line on a terminal, ``render(status)``; nothing
    once the phase is "done" (the summary follows). Scans and cluster scans share it."""

    def __init__(self, render: Callable[[StatusT], str], stream: TextIO | None = None, *,
                 force: bool = False) -> None:
        self.render = render
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.enabled = force or bool(isatty())
        self._drawn = False

    def __call__(self, status: StatusT) -> None:
        if not self.enabled or status.phase == "done":
            return
        self.stream.write("\r\x1b[2K" + self.render(status))
        self.stream.flush()
        self._drawn = True

    def clear(self) -> None:
        """Erase the live line so the summary starts on a clean line."""
        if self._drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._drawn = False


class StatusLine(LiveLine[ScanStatus]):
    """The scan's live line (format_status)."""

    def __init__(self, stream: TextIO | None = None, *, force: bool = False) -> None:
        super().__init__(format_status, stream, force=force)


def render_summary(summary: Summary) -> str:
    shard = f", shard {summary.shard[0]}/{summary.shard[1]}" if summary.shard != (1, 1) else ""
    state = ("interrupted" if summary.interrupted
             else f"stopped by --{summary.ended_by}" if summary.ended_by.startswith("max-")
             else "done")
    frames = summary.frames or summary.probes
    sent = (f"{summary.sent} of {summary.probes} probes" if summary.passes == 1 else
            f"{summary.sent} of {frames} frames = {summary.probes} probes x {summary.passes} "
            f"(retries {summary.passes - 1})")
    lines = [
        f"pyscan: {state} in {summary.duration:.2f} s (sending {summary.send_duration:.2f} s), "
        f"driver {summary.driver_description}",
        f"  sent       {sent} "
        f"({summary.targets} addresses x {summary.ports} ports{shard}), "
        f"{format_rate(summary.send_rate)} average, {summary.tx_errors} TX errors",
        f"  replies    {summary.replies}: {summary.valid} valid cookies, "
        f"{summary.invalid_cookies} invalid",
        f"  results    {summary.open} open, {summary.closed} closed, "
        f"{summary.unreachable} unreachable, {summary.duplicates} duplicates suppressed",
        f"  drops      {summary.driver_drops} frames dropped before the receive thread",
        *([f"  xdp filter {c.get('xdp_seen', 0)} frames seen, {c.get('xdp_matched', 0)} replies "
           f"to the scanner, {c.get('xdp_passed', 0)} passed to the kernel"]
          if (c := summary.driver_counters) else []),
        *([_neighbour_line(summary)] if summary.arp_replies is not None else []),
        *([_limit_line(summary)] if summary.limit is not None else []),
        f"  seed       {summary.seed} (repeat this order with --seed {summary.seed})",
    ]
    return "\n".join(lines)


def _neighbour_line(summary: Summary) -> str:
    """Requests for an unowned source address that pyscan answered: ARP in an IPv4 scan,
    neighbour solicitations in an IPv6 one; a warning when another host claims the address."""
    label, asked, frames = (("ndp", "neighbour solicitations", "neighbour discovery")
                            if summary.family == 6 else ("arp", "requests", "ARP"))
    warning = (f"; warning: {summary.arp_conflicts} {frames} frames from another host "
               "claiming it" if summary.arp_conflicts else "")
    return (f"  {label:<10} {summary.arp_replies} {asked} for the source address answered "
            f"(not this host's address: no isolation firewall){warning}")


def _limit_line(summary: Summary) -> str:
    """Which limit ended the scan before every target x port was probed."""
    space = summary.targets * summary.ports
    part = "" if summary.shard == (1, 1) else " (this shard's part of the sample)"
    return (f"  limit      --{summary.limit} ended the scan: {summary.probes} of the {space} "
            f"targets x ports, a random sample{part}")


def summary_json(summary: Summary) -> str:
    return json.dumps(summary.as_dict(), sort_keys=True)
