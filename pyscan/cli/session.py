"""One scan from the command line, shared by `pyscan scan`, `pyscan masscan` and
`pyscan zmap`: the start line, the status line, every output the command asked for, Ctrl-C,
the summary, and what is written after the scan (zmap's metadata, the pcap file).

Output files are opened when the first result arrives (or when the scan ends with none), so
bad input, a missing privilege or an unreachable route leave no file behind.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

import typer

from pyscan.cli.common import EXIT_INTERRUPTED, fail_with
from pyscan.errors import Error
from pyscan.output import is_stdout

if TYPE_CHECKING:
    from pyscan.config import ScanConfig
    from pyscan.output import OutputSpec, ResultWriter
    from pyscan.scanner import ScanRun, ScanStart, ScanStatus, Summary

__all__ = ["ScanTimes", "run_scan"]


@dataclass(frozen=True)
class ScanTimes:
    """Wall-clock seconds since the epoch: scan start, end of sending, end of the scan."""

    started: float
    send_end: float
    ended: float


@contextlib.contextmanager
def interrupts(run: ScanRun, quiet: bool) -> Iterator[None]:
    """Ctrl-C once: stop sending, keep receiving for --wait. Twice: skip the wait. Three
    times: abandon at once (everything is still removed on the way out)."""
    presses = 0

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        nonlocal presses
        presses += 1
        if presses >= 3:
            raise KeyboardInterrupt
        if presses == 1 and not quiet:
            typer.echo("\npyscan: stopping; waiting for late replies (Ctrl-C again to skip)",
                       err=True)
        run.stop()

    try:
        previous = signal.signal(signal.SIGINT, on_interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _probes_text(config: ScanConfig) -> str:
    if config.planned_probes < config.probe_count:
        return f"{config.planned_probes} of {config.probe_count} probes, --max-targets"
    return f"{config.probe_count} probe{'s' if config.probe_count != 1 else ''}"


def _rate_text(rate: float) -> str:
    from pyscan.status import format_rate

    return "with no rate limit" if rate == float("inf") else f"at {format_rate(rate)}"


def run_scan(
    config: ScanConfig,
    outputs: Sequence[OutputSpec],
    *,
    quiet: bool = False,
    status: bool | None = None,
    json_summary: bool = False,
    pcap_path: str | None = None,
    after: Callable[[Summary | None, ScanTimes], None] | None = None,
) -> None:
    """Run the scan, write every output, print the summary; typer.Exit(130) when
    interrupted, one `pyscan: error:` line and the table's exit code on an Error."""
    from pyscan import scanner
    from pyscan.status import StatusLine, render_summary, summary_json

    for warning in config.input_warnings:
        typer.echo(f"pyscan: warning: {warning}", err=True)
    for output in outputs:
        try:
            output.check_writable()
        except Error as error:
            fail_with(error)
    try:
        # An unsafe --source-port is refused before the start line: the refusal is the
        # only line (the scan itself checks again, in its namespace, before creating anything).
        scanner.check_source_ports(config)
    except Error as error:
        fail_with(error)
    if not quiet:
        retry_text = (f" x {config.passes} = {config.frame_count} frames, "
                      f"retries {config.retry_delay:g} s apart" if config.retries else "")
        typer.echo(
            f"pyscan: scanning {config.targets.describe()} x {len(config.entries)} "
            f"port{'s' if len(config.entries) != 1 else ''} "
            f"({_probes_text(config)}{retry_text}) "
            f"{_rate_text(config.rate)}, seed {config.seed}"
            + (" (dry run: nothing is sent)" if config.is_dry_run else ""),
            err=True,
        )
        if config.blocklist_note is not None:
            typer.echo(f"pyscan: {config.blocklist_note}", err=True)
    status_line = StatusLine(force=bool(status)) if not quiet and status is not False else None
    writers: list[ResultWriter] = []
    capture = _PcapCapture(pcap_path) if pcap_path is not None else None

    def on_status(progress: ScanStatus) -> None:
        # Each status tick (~4 per second) also flushes the results written so far, so
        # `tail -f` on the output file follows the scan without a flush per record.
        for writer in writers:
            writer.stream.flush()
        if status_line is not None:
            status_line(progress)

    def on_start(start: ScanStart) -> None:
        # Called once the driver is open, after any fallback: it names the driver that runs.
        if not quiet and not config.is_dry_run:
            typer.echo(f"pyscan: driver {start.driver} ({start.why})", err=True)
        for warning in start.warnings:
            typer.echo(f"pyscan: warning: {warning}", err=True)

    def open_all() -> list[ResultWriter]:
        return [output.open(started=started, ports=config.ports) for output in outputs]

    run = scanner.scan(config, on_status=on_status, on_start=on_start,
                       on_frame=capture.write if capture is not None else None)
    started = time.time()
    try:
        with run, interrupts(run, quiet):
            for result in run:
                if not writers:
                    writers = open_all()
                for writer in writers:
                    writer.write(result)
    except Error as error:
        fail_with(error)
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        if status_line is not None:
            status_line.clear()
        if not writers and run.summary is not None:
            writers = open_all()
        for writer in writers:
            writer.close()
        if capture is not None:
            capture.close(create=run.summary is not None)

    summary = run.summary
    ended = time.time()
    if summary is not None:
        if json_summary:
            typer.echo(summary_json(summary), err=True)
        elif not quiet:
            typer.echo(render_summary(summary), err=True)
    if after is not None:
        send_end = started + summary.send_duration if summary is not None else ended
        after(summary, ScanTimes(started, send_end, ended))
    if run.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)


class _PcapCapture:
    """--pcap FILE: created with the first frame (or at the end), like the other outputs."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.writer: object | None = None

    def _open(self) -> object:
        from pyscan.output.pcap import PcapWriter

        if self.writer is None:
            if is_stdout(self.path):
                self.writer = PcapWriter(sys.stdout.buffer)  # `--pcap -`: a pipe into tshark
            else:
                self.writer = PcapWriter(open(self.path, "wb"), owns_stream=True)  # noqa: SIM115
        return self.writer

    def write(self, timestamp: float, frame: bytes, length: int) -> None:
        from pyscan.output.pcap import PcapWriter

        writer = self._open()
        assert isinstance(writer, PcapWriter)
        writer.write_frame(timestamp, frame, length)

    def close(self, create: bool) -> None:
        """Close the file; `create`: write an empty pcap if no frame came (the scan ran)."""
        from pyscan.output.pcap import PcapWriter

        if self.writer is None and not create:
            return  # the scan never started: leave nothing behind
        writer = self._open()
        assert isinstance(writer, PcapWriter)
        writer.close()
