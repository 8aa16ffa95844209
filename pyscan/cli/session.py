"""One scan from the command line, shared by `pyscan scan`, `pyscan masscan` and
`pyscan zmap`: the start line, the status line, every output the command asked for, Ctrl-C,
the summary, and what is written after the scan (zmap's metadata, the pcap file).

Output files are opened when the first result arrives (or when the scan ends with none), so
bad input, a missing privilege or an unreachable route leave no file behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

import typer

from pyscan.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    fail,
    fail_with,
)
from pyscan.errors import Error
from pyscan.output import is_stdout

if TYPE_CHECKING:
    from pyscan.config import ScanConfig
    from pyscan.output import OutputSpec, ResultWriter
    from pyscan.resume import PauseState, Progress, ResumePoint
    from pyscan.scanner import ScanRun, ScanStart, ScanStatus, Summary

__all__ = ["Pause", "ScanTimes", "Signals", "is_broken_pipe", "run_resumed", "run_scan",
           "silence_stdout"]


@dataclass(frozen=True)
class Pause:
    """Where a stopped scan's state goes (--pause-file), how often it is checkpointed
    (--checkpoint-every, 0 = never), and the state a --resume run continues."""

    path: str
    checkpoint_every: float
    resumed: PauseState | None = None
    resumed_path: str | None = None   # the file --resume read (deleted once the scan ends)
    pcap: str | None = None
    command: str = "pyscan"           # how the stop message spells the resume command


@dataclass(frozen=True)
class ScanTimes:
    """Wall-clock seconds since the epoch: scan start, end of sending, end of the scan."""

    started: float
    send_end: float
    ended: float


@dataclass
class Signals:
    """What the signal handlers saw during one scan."""

    presses: int = 0          # Ctrl-C so far
    terminated: bool = False  # SIGTERM came: exit 143


@contextlib.contextmanager
def interrupts(run: ScanRun, quiet: bool) -> Iterator[Signals]:
    """Ctrl-C once: stop sending, keep receiving for --wait. Twice: skip the wait. Three
    times: abandon at once (everything is still removed on the way out: the third Ctrl-C
    raises only while the scan merely drains, never into setting up or removing resources).
    SIGTERM: like the first Ctrl-C, stop sending and collect the replies for --wait, so the
    saved pause state is exact (every probe sent once across a resume); a second SIGTERM or
    Ctrl-C skips the wait. The output is complete and the firewall table gone before the
    exit (143)."""
    state = Signals()

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        state.presses += 1
        if state.presses >= 3 and run.interruptible:
            raise KeyboardInterrupt
        if state.presses == 1 and not quiet:
            typer.echo("\npyscan: stopping; waiting for late replies (Ctrl-C again to skip)",
                       err=True)
        run.stop()

    def on_terminate(signum: int, frame: FrameType | None) -> None:
        state.terminated = True
        run.stop()  # a second signal ends the wait too

    try:
        previous = signal.signal(signal.SIGINT, on_interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield state
        return
    previous_term = signal.signal(signal.SIGTERM, on_terminate)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)


def silence_stdout() -> None:
    """Point standard output at /dev/null once its reader is gone, so that the interpreter's
    own flush at exit does not fail a second time and print an 'Exception ignored' note."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def is_broken_pipe(error: OSError) -> bool:
    return isinstance(error, BrokenPipeError) or error.errno in (errno.EPIPE, errno.ECONNRESET)


def _output_message(spec: OutputSpec | None, error: OSError) -> str:
    """One line naming the output and the error (open_writer's own errors name the file
    already and carry no strerror)."""
    if not error.strerror:
        return str(error)
    where = "standard output" if spec is None or is_stdout(spec.path) else repr(str(spec.path))
    return f"cannot write {where}: {error.strerror} (the results so far are in it)"


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
    pause: Pause | None = None,
) -> None:
    """Run the scan, write every output, print the summary; typer.Exit(130) when
    interrupted, 143 on SIGTERM, one `pyscan: error:` line and the table's exit code on an
    Error, and exit 1 with one line when an output cannot be written (a full disk: then the
    summary too; a closed pipe: nothing else)."""
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
        # An unsafe --source-port or an unusable --source-ip is refused before the start
        # line: the refusal is the only line (the scan itself checks again, in its
        # namespace, before creating anything).
        scanner.check_source_ports(config)
        scanner.check_source_ip(config)
    except Error as error:
        fail_with(error)
    resume_from: ResumePoint | None = None
    if pause is not None and pause.resumed is not None:
        try:
            outputs, resume_from = _continue_outputs(outputs, pause.resumed)
        except Error as error:
            fail_with(error)
    status_line = StatusLine(force=bool(status)) if not quiet and status is not False else None
    writers: list[ResultWriter] = []
    capture = _PcapCapture(pcap_path) if pcap_path is not None else None
    output_error: tuple[OutputSpec | None, OSError] | None = None

    def output_failed(spec: OutputSpec | None, error: OSError) -> None:
        # The first write or flush that fails ends the scan at once (no use sending probes
        # whose results cannot be kept); later results are drained and dropped.
        nonlocal output_error
        if output_error is None:
            output_error = (spec, error)
            run.stop()
            run.stop()

    def on_status(progress: ScanStatus) -> None:
        # Each status tick (~4 per second) also flushes the results written so far, so
        # `tail -f` on the output file follows the scan without a flush per record.
        if output_error is None:
            for spec, writer in zip(outputs, writers, strict=False):
                try:
                    writer.stream.flush()
                except OSError as error:
                    output_failed(spec, error)
                    break
        if status_line is not None:
            status_line(progress)

    def on_start(start: ScanStart) -> None:
        # Called once the driver is open, after any fallback: it names the driver that runs.
        if not quiet and not config.is_dry_run:
            typer.echo(f"pyscan: driver {start.driver} ({start.why})", err=True)
        for warning in start.warnings:
            typer.echo(f"pyscan: warning: {warning}", err=True)

    def open_all() -> None:
        nonlocal writers
        opened: list[ResultWriter] = []
        for spec in outputs:
            try:
                opened.append(spec.open(started=started, ports=config.ports,
                                        udp_ports=config.udp_ports, ping=config.ping))
            except OSError as error:
                output_failed(spec, error)
                break
        writers = opened

    def finish_outputs() -> None:
        # Open the outputs if no result came (the scan ran), close them (trailers, flush),
        # close the pcap file.
        if status_line is not None:
            status_line.clear()
        if not writers and run.summary is not None and output_error is None:
            open_all()
        for spec, writer in zip(outputs, writers, strict=False):
            try:
                writer.close()
            except OSError as error:
                output_failed(spec, error)
        if capture is not None:
            capture.close(create=run.summary is not None)

    checkpointed: list[Progress] = []
    checkpoint_failed: list[OSError] = []

    def on_checkpoint(progress: Progress) -> None:
        # Every result before this moment was handed to the writers: on disk first, then
        # the state that counts on them.
        if pause is None or output_error is not None or checkpoint_failed:
            return
        for writer in writers:
            _sync(writer.stream)
        try:
            _save_pause(pause, config, outputs, progress, "checkpoint")
            checkpointed.append(progress)
        except OSError as error:
            # Said once; the scan goes on without checkpoints (a stop still tries to save).
            checkpoint_failed.append(error)
            typer.echo(f"pyscan: warning: cannot write checkpoint {pause.path!r}: "
                       f"{error.strerror or error}; no more checkpoints in this scan",
                       err=True)

    run = scanner.scan(config, on_status=on_status, on_start=on_start,
                       on_frame=capture.write if capture is not None else None,
                       resume_from=resume_from,
                       checkpoint_every=pause.checkpoint_every if pause is not None else 0.0,
                       on_checkpoint=on_checkpoint if pause is not None else None)
    # The handlers stay until the exit code is decided: a signal after the scan ended must
    # not turn a finished run into a traceback or a death by signal.
    with interrupts(run, quiet) as signals:
        # Printed once the handlers are in place: a SIGTERM after this line is always a
        # clean stop (143).
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
            if pause is not None and pause.resumed is None and os.path.exists(pause.path):
                # After the start line, which scripts read first.
                typer.echo(f"pyscan: warning: {pause.path} holds a paused scan; this scan "
                           "replaces it at its first checkpoint or stop (resume that one "
                           f"with --resume {pause.path}, or choose another --pause-file)",
                           err=True)
            if resume_from is not None and pause is not None:
                typer.echo(f"pyscan: resuming {pause.resumed_path}: "
                           f"{sum(resume_from.positions)} of {config.frame_count} frames sent "
                           f"before, {resume_from.reported} results so far", err=True)
        started = time.time()
        try:
            with run:
                for result in run:
                    if output_error is not None:
                        continue
                    if not writers:
                        open_all()
                    for spec, writer in zip(outputs, writers, strict=False):
                        try:
                            writer.write(result)
                        except OSError as error:
                            output_failed(spec, error)
                            break
        except Error as error:
            finish_outputs()
            if pause is not None:
                _settle_pause(pause, config, outputs, run, signals, quiet, bool(checkpointed))
            fail_with(error)
        except KeyboardInterrupt:
            run.interrupted = True
        finish_outputs()
        if pause is not None and output_error is not None and is_broken_pipe(output_error[1]):
            # `pyscan ... | head -1`: the reader had all it wanted; nothing to go on with.
            if checkpointed:
                with contextlib.suppress(OSError):
                    os.unlink(pause.path)
        elif pause is not None:
            _settle_pause(pause, config, outputs, run, signals, quiet, bool(checkpointed))

        if output_error is not None and is_broken_pipe(output_error[1]):
            # `pyscan ... | head -1`: the reader has all it wanted; say so once, quietly.
            silence_stdout()
            fail("standard output was closed by the reader (broken pipe); scan stopped",
                 EXIT_FAILED)
        if output_error is not None:
            typer.echo(f"pyscan: error: {_output_message(*output_error)}", err=True)
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
        if output_error is not None:
            raise typer.Exit(EXIT_FAILED)
        if signals.terminated:
            raise typer.Exit(EXIT_TERMINATED)
        if run.interrupted:
            raise typer.Exit(EXIT_INTERRUPTED)


def run_resumed(state: PauseState, state_path: str, outputs: Sequence[OutputSpec], *,
                pause_path: str, checkpoint_every: float, rate: float | None = None,
                wait: float | None = None, quiet: bool = False, status: bool | None = None,
                json_summary: bool = False, command: str = "pyscan") -> None:
    """The scan a pause file describes, from where it stopped (`pyscan --resume`, `pyscan
    masscan --resume`): its config with the same TX lanes, a new rate or wait if given, its
    outputs continued."""
    from dataclasses import replace

    from pyscan.output import OutputSpec

    if state.pcap is not None:
        fail(f"--resume of a scan with --pcap {state.pcap!r} is not supported yet (accepted: "
             "a scan without --pcap)")
    config = replace(state.config, tx_threads=state.tx_threads)
    if rate is not None:
        config = replace(config, rate=rate)
    if wait is not None:
        config = replace(config, wait=wait)
    run_scan(config, list(outputs) or [OutputSpec()], quiet=quiet, status=status,
             json_summary=json_summary,
             pause=Pause(path=pause_path, checkpoint_every=checkpoint_every, resumed=state,
                         resumed_path=state_path, command=command))


def _sync(stream: object) -> None:
    """Flush a writer's stream and put it on disk (a pipe or terminal: flushed only)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        stream.flush()  # type: ignore[attr-defined]
        os.fsync(stream.fileno())  # type: ignore[attr-defined]


def _continue_outputs(outputs: Sequence[OutputSpec], state: PauseState
                      ) -> tuple[list[OutputSpec], ResumePoint]:
    """Repair every output file for appending and read back what it holds: the outputs as
    continued writers, and the resume point whose duplicate suppression knows those pairs."""
    from dataclasses import replace

    from pyscan.output.append import prepare_append

    continued: list[OutputSpec] = []
    known: set[tuple[int, int, int]] = set()
    records: int | None = None
    for spec in outputs:
        if spec.to_stdout or spec.path is None:
            continued.append(spec)
            continue
        held = prepare_append(spec.path, spec.format)
        options = dict(spec.options)
        if held is not None and (held.has_header or held.records):
            options["continued"] = held.records
            known.update(held.known)
            records = held.records if records is None else min(records, held.records)
        continued.append(replace(spec, append=True, options=options))
    # The file is the truth after a kill: results written after the last checkpoint count.
    reported = records if records is not None else state.progress.reported
    return continued, state.resume_point(reported=reported, known=sorted(known))


def _save_pause(pause: Pause, config: ScanConfig, outputs: Sequence[OutputSpec],
                progress: Progress, reason: str) -> None:
    from dataclasses import replace

    from pyscan.resume import PauseState, save_state

    tx_threads = len(progress.positions)
    saved_outputs = tuple(
        {"path": None if spec.to_stdout or spec.path is None else os.path.abspath(spec.path),
         "format": spec.format,
         "options": {key: value for key, value in spec.options.items()
                     if key != "continued" and isinstance(value, str | int | float | bool)}}
        for spec in outputs)
    save_state(pause.path, PauseState(config=replace(config, tx_threads=tx_threads),
                                      progress=progress, tx_threads=tx_threads,
                                      outputs=saved_outputs, pcap=pause.pcap, reason=reason))


def _settle_pause(pause: Pause, config: ScanConfig, outputs: Sequence[OutputSpec],
                  run: ScanRun, signals: Signals, quiet: bool, checkpointed: bool) -> None:
    """After the scan: a finished scan removes the pause file it wrote (and the one it
    resumed; never another scan's); a stopped one saves where it stopped and says how to
    go on."""
    progress = run.progress
    if progress is None:
        return  # nothing was sent: a resumed state stays as it was
    if progress.finished:
        mine = {pause.path} if checkpointed or pause.resumed_path == pause.path else set()
        for path in mine | {pause.resumed_path}:
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        return
    reason = "terminated" if signals.terminated else (
        "interrupted" if run.interrupted else "error")
    try:
        _save_pause(pause, config, outputs, progress, reason)
    except OSError as error:
        typer.echo(f"pyscan: error: cannot write pause file {pause.path!r}: "
                   f"{error.strerror or error}", err=True)
        return
    if not quiet:
        exact = "" if progress.exact else (
            " (the wait was cut short: the probes of its last --wait seconds go out again)")
        typer.echo(f"pyscan: paused: state saved to {pause.path}{exact}; go on with "
                   f"{pause.command} --resume {pause.path}", err=True)


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
