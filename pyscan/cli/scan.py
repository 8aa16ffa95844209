"""`pyscan scan` (also the default command): parse the options, make one library call, write
the results through the chosen output, print the summary."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from pyscan.cli.common import (
    DRIVER_HELP,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    OPTIONS_HELP,
    fail,
    fail_with,
    parse_count,
)
from pyscan.config import DEFAULT_TTL, ConfigError, ScanConfig
from pyscan.errors import Error
from pyscan.output import OutputSpec, ResultWriter

if TYPE_CHECKING:
    from pyscan.scanner import ScanRun, ScanStatus

__all__ = ["scan_command"]


@dataclass
class _Signals:
    presses: int = 0          # Ctrl-C so far
    terminated: bool = False  # SIGTERM came: exit 143


@contextlib.contextmanager
def _interrupts(run: ScanRun) -> Iterator[_Signals]:
    """Ctrl-C once: stop sending, keep receiving for --wait. Twice: skip the wait. Three
    times: abandon at once (everything is still removed on the way out: the third Ctrl-C
    raises only while the scan merely drains, never into setting up or removing resources).
    SIGTERM: stop sending and skip the wait, so the output is complete and the firewall
    table gone before the exit (143)."""
    state = _Signals()

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        state.presses += 1
        if state.presses >= 3 and run.interruptible:
            raise KeyboardInterrupt
        if state.presses == 1:
            typer.echo("\npyscan: stopping; waiting for late replies (Ctrl-C again to skip)",
                       err=True)
        run.stop()

    def on_terminate(signum: int, frame: FrameType | None) -> None:
        state.terminated = True
        run.stop()
        run.stop()  # the second stop ends the wait too

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


def scan_command(
    targets: Annotated[list[str] | None, typer.Argument(
        help="IPv4 address, CIDR, or first-last range; comma lists allowed.",
        show_default=False)] = None,
    ports: Annotated[str | None, typer.Option(
        "--ports", "-p", help="Ports: 80 | 22,80,443 | 1-1024 | 0-65535.")] = None,
    rate: Annotated[str, typer.Option(help="Packets per second: 1000, 250k, 10M, max.")] = "10k",
    driver: Annotated[str | None, typer.Option(
        help=DRIVER_HELP)] = None,
    interface: Annotated[str | None, typer.Option(
        "--interface", "-i", help="Interface to send on (default: the route's).")] = None,
    source_ip: Annotated[str | None, typer.Option(help="Source address.")] = None,
    source_port: Annotated[str | None, typer.Option(
        help="Source port or range (default: 256 random ports in 61000-65535).")] = None,
    gateway_mac: Annotated[str | None, typer.Option(help="Next-hop MAC (skip ARP).")] = None,
    seed: Annotated[str | None, typer.Option(
        help="Permutation seed, to repeat an order (default: random).")] = None,
    wait: Annotated[str, typer.Option(
        help="Seconds to keep receiving after the last probe.")] = "10",
    shard: Annotated[str, typer.Option(help="This machine's part, masscan style: 1/2.")] = "1/1",
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Write results to FILE (default: standard output).")] = None,
    output_format: Annotated[str, typer.Option(
        "--format", help="list | ndjson | json | csv | grepable (-oL -oD -oJ -oC -oG).")] = "list",
    exclude: Annotated[list[str] | None, typer.Option(help="Addresses to leave out.")] = None,
    exclude_file: Annotated[list[str] | None, typer.Option(
        help="File of addresses to leave out.")] = None,
    include_file: Annotated[list[str] | None, typer.Option(
        help="File of targets (-iL).")] = None,
    tx_threads: Annotated[str, typer.Option(
        help="Sending threads, one TX queue each (default: auto = TX queues, cores allowing).")
    ] = "auto",
    xdp_mode: Annotated[str | None, typer.Option(
        help="af-xdp sockets: auto | zerocopy | copy (default: auto).")] = None,
    xdp_attach: Annotated[str | None, typer.Option(
        help="af-xdp filter attach: auto | native | generic (default: auto).")] = None,
    ttl: Annotated[str, typer.Option(help="IP TTL of probes.")] = str(DEFAULT_TTL),
    show_closed: Annotated[bool, typer.Option(
        "--show-closed", help="Also report closed ports (RST); masscan --show closed.")] = False,
    open_only: Annotated[bool, typer.Option(
        "--open-only", help="Report open ports only (the default).")] = False,
    no_isolation: Annotated[bool, typer.Option(
        "--no-isolation", help="Do not add the nftables rules that stop the kernel's RSTs.")
    ] = False,
    netns: Annotated[str | None, typer.Option(help="Run the scan inside this namespace.")] = None,
    driver_option: Annotated[list[str] | None, typer.Option(
        "--driver-option", "-O", help=OPTIONS_HELP)] = None,
    pfring_lib: Annotated[str | None, typer.Option(
        help="libpfring.so for --driver pfring-zc (= -O lib=PATH; env PYSCAN_LIBPFRING).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Generate every probe with the null driver; send nothing.")] = False,
    list_targets: Annotated[bool, typer.Option(
        "--list-targets", help="Print the probe order (-sL) without sending.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No status, no summary.")] = False,
    status: Annotated[bool | None, typer.Option(
        "--status/--no-status", help="Live status line (default: when stderr is a terminal).",
        show_default=False)] = None,
    json_summary: Annotated[bool, typer.Option(
        "--json-summary", help="Print the summary as one JSON line on stderr.")] = False,
) -> None:
    from pyscan import scanner
    from pyscan.status import StatusLine, render_summary, summary_json

    if ports is None:
        fail("no ports given (accepted: -p 80 | -p 22,80,443 | -p 1-1024)")
    if show_closed and open_only:
        fail("--show-closed and --open-only contradict each other (accepted: one of them)")
    if dry_run and driver not in (None, "null"):
        fail(f"--dry-run uses the null driver, not {driver!r} (accepted: drop --driver)")
    try:
        config = ScanConfig.parse(
            targets or [],
            ports=ports,
            include_files=include_file or [],
            excludes=exclude or [],
            exclude_files=exclude_file or [],
            rate=rate,
            driver="null" if dry_run else driver,
            interface=interface,
            source_ip=source_ip,
            source_ports=source_port,
            gateway_mac=gateway_mac,
            seed=seed,
            shard=shard,
            wait=wait,
            tx_threads=None if tx_threads == "auto"
            else parse_count(tx_threads, "TX thread count", 1, 64),
            ttl=parse_count(ttl, "TTL", 1, 255),
            show_closed=show_closed,
            isolation=not no_isolation,
            netns=netns,
            driver_options=[*(driver_option or []), *_xdp_options(xdp_mode, xdp_attach),
                            *([f"lib={pfring_lib}"] if pfring_lib else [])],
        )
        output_spec = OutputSpec.parse(output, output_format)
        # Catch an unwritable -o before the scan starts, without creating the file.
        output_spec.check_writable()
    except ConfigError as error:
        fail(str(error))

    if list_targets:
        _print_target_list(config, scanner.list_targets(config))
        return

    status_line = StatusLine(force=bool(status)) if not quiet and status is not False else None
    writer: ResultWriter | None = None
    output_error: OSError | None = None

    def output_failed(error: OSError) -> None:
        # The first write or flush that fails ends the scan at once (no use sending probes
        # whose results cannot be kept); later results are drained and dropped.
        nonlocal output_error
        if output_error is None:
            output_error = error
            run.stop()
            run.stop()

    def on_status(progress: ScanStatus) -> None:
        # Each status tick (~4 per second) also flushes the results written so far, so
        # `tail -f` on the output file follows the scan without a flush per record.
        if writer is not None and output_error is None:
            try:
                writer.stream.flush()
            except OSError as error:
                output_failed(error)
        if status_line is not None:
            status_line(progress)

    def on_start(start: scanner.ScanStart) -> None:
        # Called once the driver is open, after any fallback: it names the driver that runs.
        if not quiet and not config.is_dry_run:
            typer.echo(f"pyscan: driver {start.driver} ({start.why})", err=True)

    run = scanner.scan(config, on_status=on_status, on_start=on_start)
    # The handlers stay until the exit code is decided: a signal after the scan ended
    # must not turn a finished run into a traceback or a death by signal.
    with _interrupts(run) as signals:
        started = time.time()
        try:
            with run:
                # Printed once the signal handlers are in place: a SIGTERM after this line is
                # always a clean stop (143).
                if not quiet:
                    typer.echo(
                        f"pyscan: scanning {config.targets.describe()} x {len(config.ports)} "
                        f"port{'s' if len(config.ports) != 1 else ''} "
                        f"({config.probe_count} probe{'s' if config.probe_count != 1 else ''}) "
                        f"{_rate_text(config.rate)}, seed {config.seed}"
                        + (" (dry run: nothing is sent)" if config.is_dry_run else ""),
                        err=True,
                    )
                for result in run:
                    if output_error is not None:
                        continue
                    try:
                        if writer is None:
                            writer = output_spec.open(started=started, ports=config.ports)
                        writer.write(result)
                    except OSError as error:
                        output_failed(error)
        except Error as error:
            _close_output(writer, output_error)
            fail_with(error)
        except KeyboardInterrupt:
            run.interrupted = True
        finally:
            if status_line is not None:
                status_line.clear()
        if output_error is None:
            try:
                if writer is None:  # no result came: the file still says so, well formed
                    writer = output_spec.open(started=started, ports=config.ports)
            except OSError as error:
                output_error = error
        output_error = _close_output(writer, output_error)

        if output_error is not None and _is_broken_pipe(output_error):
            # `pyscan ... | head -1`: the reader has all it wanted; say so once, quietly.
            _silence_stdout()
            fail("standard output was closed by the reader (broken pipe); scan stopped",
                 EXIT_FAILED)
        if output_error is not None:
            typer.echo(f"pyscan: error: {_output_message(output, output_error)}", err=True)
        summary = run.summary
        if summary is not None:
            if json_summary:
                typer.echo(summary_json(summary), err=True)
            elif not quiet:
                typer.echo(render_summary(summary), err=True)
        if output_error is not None:
            raise typer.Exit(EXIT_FAILED)
        if signals.terminated:
            raise typer.Exit(EXIT_TERMINATED)
        if run.interrupted:
            raise typer.Exit(EXIT_INTERRUPTED)


def _close_output(writer: ResultWriter | None, error: OSError | None) -> OSError | None:
    """Close the writer (trailer, flush, file); the first output error, if any."""
    if writer is None:
        return error
    try:
        writer.close()
    except OSError as close_error:
        return error or close_error
    return error


def _is_broken_pipe(error: OSError) -> bool:
    return error.errno in (errno.EPIPE, errno.ECONNRESET) or isinstance(error, BrokenPipeError)


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's own flush at exit does
    not fail a second time and print a traceback-like warning."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _output_message(output: str | None, error: OSError) -> str:
    """One line naming the output and the error (open_writer's own errors name the file
    already and carry no strerror)."""
    if not error.strerror:
        return str(error)
    where = repr(output) if output else "standard output"
    return f"cannot write {where}: {error.strerror} (the results so far are in it)"


def _rate_text(rate: float) -> str:
    from pyscan.status import format_rate

    return "with no rate limit" if rate == float("inf") else f"at {format_rate(rate)}"


def _xdp_options(mode: str | None, attach: str | None) -> list[str]:
    """--xdp-mode / --xdp-attach as af-xdp driver options; bad values stop here (exit 2)."""
    if mode is None and attach is None:
        return []
    from pyscan.drivers.af_xdp import XDP_ATTACH_MODES, XDP_MODES

    options = []
    for flag, value, accepted, key in (("--xdp-mode", mode, XDP_MODES, "xdp_mode"),
                                       ("--xdp-attach", attach, XDP_ATTACH_MODES, "xdp_attach")):
        if value is None:
            continue
        if value not in accepted:
            fail(f"bad {flag} {value!r} (accepted: {' | '.join(accepted)})")
        options.append(f"{key}={value}")
    return options


def _print_target_list(config: ScanConfig, pairs: Iterator[tuple[IPv4Address, int]]) -> None:
    """masscan -sL: one address per line, or address:port when scanning several ports."""
    single_port = len(config.ports) == 1
    write = sys.stdout.write
    try:
        for address, port in pairs:
            write(f"{address}\n" if single_port else f"{address}:{port}\n")
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        fail("standard output was closed by the reader (broken pipe); listing stopped",
             EXIT_FAILED)
