"""Run a `Plan`: the information actions, or the scan with every output the plan names.

Output files are opened when the first result arrives (or when the scan ends with none), so
bad input, a missing privilege or an unreachable route leave no file behind; their
directories are checked before anything is sent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from pyscan.config import ConfigError, ScanConfig
from pyscan.output import WRITERS, ResultWriter, is_stdout, open_writer
from pyscan.personality.plan import NotSupportedYet, OutputPlan, Plan

if TYPE_CHECKING:
    from pyscan.scanner import ScanRun, ScanStatus

__all__ = ["EXIT_INTERRUPTED", "build_config", "check_writable", "run_plan"]

EXIT_INTERRUPTED = 130


def build_config(plan: Plan) -> ScanConfig:
    """The ScanConfig a plan asks for; ConfigError names what is wrong."""
    return ScanConfig.parse(plan.targets, **plan.scan)


def check_writable(path: str | None) -> None:
    """ConfigError now, before a scan starts, when `path` could not be written later."""
    if is_stdout(path):
        return
    target = Path(str(path))
    directory = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise ConfigError(f"output {str(path)!r} is a directory (accepted: a file path)")
    if not directory.is_dir():
        raise ConfigError(f"output directory {str(directory)!r} does not exist (accepted: a "
                          "file path in an existing directory)")
    if not os.access(directory, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ConfigError(f"output {str(path)!r} is not writable (accepted: a writable path)")


@contextlib.contextmanager
def _interrupts(run: ScanRun, quiet: bool, err: TextIO) -> Iterator[None]:
    """Ctrl-C once: stop sending, keep receiving; twice: skip the wait; three times: abandon
    (everything is still removed on the way out). SIGTERM acts like the first Ctrl-C."""
    presses = 0

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        nonlocal presses
        presses += 1
        if presses >= 3:
            raise KeyboardInterrupt
        if presses == 1 and not quiet:
            err.write("\npyscan: stopping; waiting for late replies (Ctrl-C again to skip)\n")
        run.stop()

    try:
        previous = signal.signal(signal.SIGINT, on_interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _open(output: OutputPlan, started: float, ports: tuple[int, ...], out: TextIO) -> ResultWriter:
    if output.writer not in WRITERS:
        raise ConfigError(f"unknown output {output.writer!r}")
    return open_writer(output.path, output.writer, started=started, ports=ports,
                       stream=out if is_stdout(output.path) else None, append=output.append,
                       **output.options)


def run_plan(plan: Plan, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Carry out `plan`. Returns the exit code (0, or 130 when interrupted); raises
    ConfigError (bad input), PrivilegeError, ScanError like the scan command does."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    if plan.action != "scan":
        return _information(plan, out)
    config = build_config(plan)
    for output in plan.outputs:
        check_writable(output.path)
    if plan.pcap_path is not None:
        raise NotSupportedYet("--pcap", "the engine does not hand reply frames to Python yet")
    if plan.metadata_path is not None:
        check_writable(plan.metadata_path)

    from pyscan import scanner
    from pyscan.status import StatusLine, render_summary

    if not config.is_dry_run:
        from pyscan.privileges import require_scan_privileges

        require_scan_privileges(scanner.choose_driver(config)[0], isolation=config.isolation,
                                netns=config.netns)
    for note in plan.notes if plan.verbose else ():
        err.write(f"pyscan {plan.tool}: {note}\n")
    status_line = None if plan.quiet else StatusLine(err)
    writers: list[ResultWriter] = []

    def on_status(progress: ScanStatus) -> None:
        for writer in writers:
            writer.stream.flush()
        if status_line is not None:
            status_line(progress)

    run = scanner.scan(config, on_status=on_status)
    started = time.time()
    send_end = started
    try:
        with run, _interrupts(run, plan.quiet, err):
            for result in run:
                if not writers:
                    writers = [_open(o, started, config.ports, out) for o in plan.outputs]
                for writer in writers:
                    writer.write(result)
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        if status_line is not None:
            status_line.clear()
        if not writers and run.summary is not None:
            writers = [_open(o, started, config.ports, out) for o in plan.outputs]
        for writer in writers:
            writer.close()
    ended = time.time()
    summary = run.summary
    if summary is not None:
        send_end = started + summary.send_duration
        if not plan.quiet:
            err.write(render_summary(summary) + "\n")
    if plan.metadata_path is not None:
        _write_metadata(plan, config, summary, started, send_end, ended, out)
    return EXIT_INTERRUPTED if run.interrupted else 0


def _write_metadata(plan: Plan, config: ScanConfig, summary: Any, started: float,
                    send_end: float, ended: float, out: TextIO) -> None:
    from pyscan.output.zmap import ZmapRunInfo, zmap_metadata_json

    output = plan.outputs[0] if plan.outputs else None
    filter_unsuccessful = bool(output and output.options.get("only_success"))
    output_filter = output.options.get("output_filter") if output else None
    info = ZmapRunInfo(
        targets=tuple(plan.targets), ports=config.ports,
        source_ports=(config.source_ports[0], config.source_ports[-1]),
        rate=config.rate, cooldown=config.wait, seed=config.seed,
        seed_given="seed" in plan.scan, shard=config.shard,
        senders=config.tx_threads or 1, send_start=started, send_end=send_end,
        recv_start=started, recv_end=ended,
        output_module="csv" if output is None else output.writer.removeprefix("zmap-"),
        output_filename=output.path if output else None,
        output_filter=output_filter.text if output_filter is not None else None,
        filter_unsuccessful=filter_unsuccessful, interface=config.interface,
        source_ip=str(config.source_ip) if config.source_ip else None,
        gateway_mac=config.gateway_mac, dryrun=config.is_dry_run, quiet=plan.quiet)
    text = zmap_metadata_json(info, summary)
    if is_stdout(plan.metadata_path):
        out.write(text)
        out.flush()
    else:
        Path(str(plan.metadata_path)).write_text(text)


def _information(plan: Plan, out: TextIO) -> int:
    if plan.action == "list-targets":
        from pyscan.scanner import list_targets

        config = build_config(plan)
        single = len(config.ports) == 1
        for address, port in list_targets(config):
            out.write(f"{address}\n" if single else f"{address}:{port}\n")
    elif plan.action == "echo":
        from pyscan.personality.masscan import echo_lines

        out.write("\n".join(echo_lines(plan)) + "\n")
    elif plan.action == "iflist":
        from pyscan import netlink

        for index, name in enumerate(netlink.link_names(plan.scan.get("netns")), 1):
            out.write(f"{index:2d}  {name}\n")
    elif plan.action == "list-output-fields":
        from pyscan.output.zmap.fields import FIELDS, is_available

        for item in FIELDS:
            if is_available(item):
                out.write(f"{item.name:<15} {item.type:>6}: {item.description}\n")
    elif plan.action == "list-output-modules":
        out.write("csv\njson\n")
    elif plan.action == "list-probe-modules":
        out.write("tcp_synscan\n")
    elif plan.action == "version":
        from pyscan import __version__

        grammar = "masscan 1.3.2" if plan.tool == "masscan" else "zmap 2.1.1"
        out.write(f"pyscan {__version__} ({grammar} command line)\n")
    elif plan.action == "help":
        out.write(f"usage: pyscan {plan.tool} ARGS... ({plan.tool}'s options; "
                  f"see docs/cli.md, section 'pyscan {plan.tool}')\n")
    else:
        raise ConfigError(f"unknown action {plan.action!r}")
    out.flush()
    return 0
