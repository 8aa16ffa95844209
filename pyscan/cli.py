"""The `pyscan` command: parse, make one library call, format. Nothing else lives here.

`pyscan [OPTIONS] TARGET...` scans; `pyscan lab up|down|status`, `pyscan drivers` and
`pyscan cleanup` are subcommands. A first argument that is not a subcommand name routes to
the scan, so masscan habits (`pyscan 198.19.0.0/16 -p80 --rate 100k -oL out.txt`) work.

Exit codes: 0 done, 1 the scan failed at run time (route, driver, firewall), 2 bad input
(nothing was created), 77 missing capability, 130 interrupted (after flushing output and
printing the summary).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Address
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from pyscan.config import DEFAULT_TTL, OUTPUT_FORMATS, ConfigError, ScanConfig
from pyscan.privileges import EXIT_NO_PERMISSION, PrivilegeError

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_INTERRUPTED", "app", "main", "rewrite_argv"]

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

# masscan spellings -> ours. Click would read `-oL` as `-o L`, so they are rewritten first.
_MASSCAN_OUTPUT_FLAGS = {"-oL": "list", "-oJ": "json", "-oD": "ndjson", "-oG": "grepable",
                         "-oC": "csv"}
_UNSUPPORTED_OUTPUT_FLAGS = {"-oX": "XML", "-oB": "binary", "-oU": "unicornscan",
                             "-oH": "host-only", "-oR": "redis"}
_ALIASES = {
    "-sL": "--list-targets",
    "-iL": "--include-file",
    "--includefile": "--include-file",
    "--excludefile": "--exclude-file",
    "--max-rate": "--rate",
    "--adapter": "--interface",
    "--router-mac": "--gateway-mac",
    "--adapter-ip": "--source-ip",
    "--adapter-port": "--source-port",
    "--open": "--open-only",
    "--offline": "--dry-run",
}


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    typer.echo(f"pyscan: error: {message}", err=True)
    raise typer.Exit(code)


def rewrite_argv(args: Sequence[str]) -> list[str]:
    """masscan/zmap habits -> this CLI's options: `-oL f` -> `-o f --format list`, `-sL`,
    `-iL`, `--show closed`, `--excludefile`, `--max-rate`, ..."""
    out: list[str] = []
    items = list(args)
    index = 0
    while index < len(items):
        arg = items[index]
        if arg == "--":
            out.extend(items[index:])
            break
        head, equals, tail = arg.partition("=")
        if head in _MASSCAN_OUTPUT_FLAGS:
            if equals:
                path = tail
            elif index + 1 < len(items):
                index += 1
                path = items[index]
            else:
                raise ConfigError(f"{head} needs a file name (accepted: {head} FILE)")
            out += ["--output", path, "--format", _MASSCAN_OUTPUT_FLAGS[head]]
        elif head in _UNSUPPORTED_OUTPUT_FLAGS:
            accepted = " ".join(_MASSCAN_OUTPUT_FLAGS)
            raise ConfigError(
                f"{head} ({_UNSUPPORTED_OUTPUT_FLAGS[head]} output) is not supported "
                f"(accepted: {accepted}, or --format {'|'.join(OUTPUT_FORMATS)})"
            )
        elif head in _ALIASES:
            out.append(_ALIASES[head] + (equals + tail if equals else ""))
        elif head in ("--show", "--noshow"):
            # masscan: --show closed / --noshow closed
            value = tail if equals else (items[index + 1] if index + 1 < len(items) else "")
            if not equals:
                index += 1
            if value not in ("closed", "open"):
                raise ConfigError(f"bad {head} value {value!r} (accepted: open, closed)")
            if value == "closed":
                out.append("--show-closed" if head == "--show" else "--open-only")
        else:
            out.append(arg)
        index += 1
    return out


class _PyscanGroup(TyperGroup):
    """Routes a first argument that is not a subcommand to `scan`, rewrites masscan
    spellings, and prints every usage error as one `pyscan: error:` line with exit 2."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        args = rewrite_argv(args)
        if args[:1] == ["--version"]:
            from pyscan import __version__

            typer.echo(f"pyscan {__version__}")
            raise typer.Exit(0)
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["scan", *args]
        return super().parse_args(ctx, args)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        try:
            result = super().main(args=args, prog_name=prog_name or "pyscan",
                                  complete_var=complete_var, standalone_mode=False, **extra)
        except (ConfigError, typer.TyperException) as error:
            # TyperException is the base of typer's (vendored click's) usage errors.
            if not standalone_mode:
                raise
            format_message = getattr(error, "format_message", None)
            message = (format_message() if format_message else str(error)).rstrip(".")
            if type(error).__name__ == "NoArgsIsHelpError":
                # No arguments at all: the message is the help text (rich prints it itself).
                if message:
                    typer.echo(message, err=True)
                sys.exit(EXIT_BAD_INPUT)
            if "accepted:" not in message:
                message += " (accepted: see pyscan --help)"
            typer.echo(f"pyscan: error: {message}", err=True)
            code = getattr(error, "exit_code", EXIT_BAD_INPUT)
            sys.exit(EXIT_BAD_INPUT if code in (1, 2) else code)
        except typer.Abort:
            if not standalone_mode:
                raise
            sys.exit(EXIT_INTERRUPTED)
        if standalone_mode:
            sys.exit(result if isinstance(result, int) else 0)
        return result


app = typer.Typer(
    cls=_PyscanGroup,
    add_completion=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Stateless kernel-bypass TCP SYN port scanner. `pyscan TARGET... -p PORTS` scans; "
         "the commands below manage the lab, drivers and leftovers.",
)
lab_app = typer.Typer(no_args_is_help=True, help="The virtual lab: namespaces, veth, targets.")
app.add_typer(lab_app, name="lab")


def _check_output_path(path: str | None) -> None:
    """Catch an unwritable -o before the scan starts, without creating the file."""
    if path is None:
        return
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        _fail(f"output {path!r} is a directory (accepted: a file path)")
    if not directory.is_dir():
        _fail(f"output directory {str(directory)!r} does not exist (accepted: a file path in "
              "an existing directory)")
    if not os.access(directory, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        _fail(f"output {path!r} is not writable (accepted: a writable file path)")


def _parse_count(text: str, what: str, low: int, high: int) -> int:
    if not text.strip().isdigit() or not low <= int(text) <= high:
        _fail(f"bad {what} {text!r} (accepted: integer {low}..{high})")
    return int(text)


@contextlib.contextmanager
def _interrupts(run: Any) -> Iterator[None]:
    """Ctrl-C once: stop sending, keep receiving for --wait. Twice: skip the wait. Three
    times: abandon at once (everything is still removed on the way out)."""
    presses = 0

    def on_interrupt(signum: int, frame: object) -> None:
        nonlocal presses
        presses += 1
        if presses >= 3:
            raise KeyboardInterrupt
        if presses == 1:
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


@app.command("scan", help="Scan TARGETs (also the default: `pyscan TARGET... -p PORTS`).")
def scan_command(
    targets: Annotated[list[str] | None, typer.Argument(
        help="IPv4 address, CIDR, or first-last range; comma lists allowed.",
        show_default=False)] = None,
    ports: Annotated[str | None, typer.Option(
        "--ports", "-p", help="Ports: 80 | 22,80,443 | 1-1024 | 0-65535.")] = None,
    rate: Annotated[str, typer.Option(help="Packets per second: 1000, 250k, 10M, max.")] = "10k",
    driver: Annotated[str | None, typer.Option(
        help="af-packet | af-xdp | xdp-live | pfring-zc | null (default: automatic).")] = None,
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
        "--driver-option", "-O", help="Driver setting key=value (repeatable).")] = None,
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
    from pyscan.output import open_writer
    from pyscan.status import StatusLine, render_summary, summary_json

    if ports is None:
        _fail("no ports given (accepted: -p 80 | -p 22,80,443 | -p 1-1024)")
    if show_closed and open_only:
        _fail("--show-closed and --open-only contradict each other (accepted: one of them)")
    if dry_run and driver not in (None, "null"):
        _fail(f"--dry-run uses the null driver, not {driver!r} (accepted: drop --driver)")
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
            else _parse_count(tx_threads, "TX thread count", 1, 64),
            ttl=_parse_count(ttl, "TTL", 1, 255),
            show_closed=show_closed,
            output_path=output,
            output_format=output_format,
            isolation=not no_isolation,
            netns=netns,
            driver_options=[*(driver_option or []), *_xdp_options(xdp_mode, xdp_attach),
                            *([f"lib={pfring_lib}"] if pfring_lib else [])],
        )
    except ConfigError as error:
        _fail(str(error))
    _check_output_path(output)

    if list_targets:
        _print_target_list(config, scanner.list_targets(config))
        return

    if not config.is_dry_run:
        from pyscan.privileges import require_scan_privileges

        try:
            require_scan_privileges(scanner.choose_driver(config)[0],
                                    isolation=config.isolation, netns=config.netns)
        except PrivilegeError as error:
            _fail(str(error), EXIT_NO_PERMISSION)

    if not quiet:
        typer.echo(
            f"pyscan: scanning {config.targets.describe()} x {len(config.ports)} "
            f"port{'s' if len(config.ports) != 1 else ''} "
            f"({config.probe_count} probe{'s' if config.probe_count != 1 else ''}) "
            f"{_rate_text(config.rate)}, seed {config.seed}"
            + (" (dry run: nothing is sent)" if config.is_dry_run else ""),
            err=True,
        )
        if not config.is_dry_run:
            driver_name, why = scanner.choose_driver(config)
            typer.echo(f"pyscan: driver {driver_name} ({why})", err=True)
    status_line = StatusLine(force=bool(status)) if not quiet and status is not False else None
    writer = None

    def on_status(progress: scanner.ScanStatus) -> None:
        # Each status tick (~4 per second) also flushes the results written so far, so
        # `tail -f` on the output file follows the scan without a flush per record.
        if writer is not None:
            writer.stream.flush()
        if status_line is not None:
            status_line(progress)

    run = scanner.scan(config, on_status=on_status)
    started = _now()
    try:
        with run, _interrupts(run):
            for result in run:
                if writer is None:
                    writer = open_writer(config.output_path, config.output_format,
                                         started=started, ports=config.ports)
                writer.write(result)
    except scanner.ScanError as error:
        _fail(str(error), EXIT_FAILED)
    except PrivilegeError as error:
        _fail(str(error), EXIT_NO_PERMISSION)
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        if status_line is not None:
            status_line.clear()
        if writer is None and run.summary is not None:
            writer = open_writer(config.output_path, config.output_format, started=started,
                                 ports=config.ports)
        if writer is not None:
            writer.close()

    summary = run.summary
    if summary is not None:
        if json_summary:
            typer.echo(summary_json(summary), err=True)
        elif not quiet:
            typer.echo(render_summary(summary), err=True)
    if run.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)


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
            _fail(f"bad {flag} {value!r} (accepted: {' | '.join(accepted)})")
        options.append(f"{key}={value}")
    return options


def _now() -> float:
    import time

    return time.time()


def _print_target_list(config: ScanConfig, pairs: Iterator[tuple[IPv4Address, int]]) -> None:
    """masscan -sL: one address per line, or address:port when scanning several ports."""
    single_port = len(config.ports) == 1
    write = sys.stdout.write
    for address, port in pairs:
        write(f"{address}\n" if single_port else f"{address}:{port}\n")
    sys.stdout.flush()


@app.command("drivers", help="List the drivers and whether each can run here, and why.")
def drivers_command() -> None:
    from pyscan.drivers import DRIVERS

    rows = []
    for name, driver in DRIVERS.items():
        available, reason = driver.available()
        rows.append((name, "yes" if available else "no", reason))
    width = max(len(name) for name, _, _ in rows)
    typer.echo(f"{'driver':<{width}}  available  reason")
    for name, available, reason in rows:
        typer.echo(f"{name:<{width}}  {available:<9}  {reason}")


@app.command("cleanup", help="Remove firewall tables left behind by scans that died.")
def cleanup_command(
    netns: Annotated[str | None, typer.Option(
        help="Clean this namespace instead of the current one.")] = None,
) -> None:
    from pyscan.config import parse_netns
    from pyscan.firewall import FirewallError, cleanup_stale
    from pyscan.netlink import NetlinkError
    from pyscan.privileges import missing_capabilities

    try:
        namespace = parse_netns(netns) if netns is not None else None
    except ConfigError as error:
        _fail(str(error))
    missing = missing_capabilities(["CAP_NET_ADMIN"])
    if missing:
        _fail("missing capability CAP_NET_ADMIN (listing and deleting nftables tables); "
              "run as root (sudo pyscan cleanup)", EXIT_NO_PERMISSION)
    try:
        removed = cleanup_stale(namespace)
    except (FirewallError, NetlinkError) as error:
        _fail(str(error), EXIT_FAILED)
    where = f" in {namespace}" if namespace else ""
    typer.echo(f"removed {len(removed)} stale table(s){where}"
               + (": " + ", ".join(removed) if removed else ""))


@app.command("bench", help="Driver TX benchmark: pps, Gbit/s on the wire, CPU/packet, "
             "line-rate share; --lab adds an exact sink count.")
def bench_command(
    driver: Annotated[str, typer.Option(help="af-packet | af-xdp | xdp-live | pfring-zc | null.")],
    interface: Annotated[str | None, typer.Option("--interface", "-i",
                                                  help="Interface to send on.")] = None,
    duration: Annotated[str, typer.Option(help="Seconds to send.")] = "10",
    tx_threads: Annotated[str, typer.Option(help="Sending threads (one queue each).")] = "1",
    size: Annotated[str, typer.Option(help="Frame bytes on the wire incl. FCS.")] = "64",
    rate: Annotated[str | None, typer.Option(help="Packets per second (default: max).")] = None,
    lab: Annotated[bool, typer.Option("--lab", help="Build a sink lab and send into it.")
                   ] = False,
    source_ip: Annotated[str | None, typer.Option(help="Source address.")] = None,
    gateway_mac: Annotated[str | None, typer.Option(help="Next-hop MAC (skip ARP).")] = None,
    driver_option: Annotated[list[str] | None, typer.Option(
        "--driver-option", "-O", help="Driver setting key=value (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON report on stdout.")] = False,
) -> None:
    from pyscan import bench

    try:
        options = bench.options_from_text(driver, interface, duration, tx_threads, size, rate,
                                          lab, source_ip, gateway_mac, driver_option or [])
        if driver != "null":
            from pyscan.privileges import require_scan_privileges

            require_scan_privileges(driver, isolation=False, netns="lab" if lab else None)
        bench.bench_command(options, as_json=as_json)
    except bench.BenchInputError as error:
        _fail(str(error))
    except PrivilegeError as error:
        _fail(str(error), EXIT_NO_PERMISSION)
    except bench.BenchError as error:
        _fail(str(error), EXIT_FAILED)


def _lab_call(action: Any) -> Any:
    """Run one lab operation with the privilege check and errors as one line."""
    from pyscan.lab import LabError
    from pyscan.privileges import require_lab_privileges

    try:
        require_lab_privileges()
    except PrivilegeError as error:
        _fail(str(error), EXIT_NO_PERMISSION)
    try:
        return action()
    except LabError as error:
        _fail(str(error), EXIT_FAILED)


@lab_app.command("up", help="Build the lab: two namespaces, a veth pair, AnyIP targets.")
def lab_up(
    name: Annotated[str, typer.Option(help="Lab name (prefix of its namespaces).")] = "pyscan",
    subnet: Annotated[str, typer.Option(
        help="Target addresses, inside 198.18.0.0/15.")] = "198.19.0.0/16",
    ports: Annotated[str, typer.Option(help="Ports the targets listen on.")] = "22,80,443,8080",
    open_count: Annotated[str | None, typer.Option(
        help="Open exactly this many random (address, port) pairs instead of all.")] = None,
    seed: Annotated[str | None, typer.Option(help="Seed for --open-count's draw.")] = None,
    sink: Annotated[bool, typer.Option(
        "--sink", help="Count and drop every probe at the target (TX-rate measurement).")
    ] = False,
    queues: Annotated[str, typer.Option(help="veth queue pairs.")] = "1",
) -> None:
    from pyscan.config import parse_ports, parse_seed
    from pyscan.lab import Lab

    try:
        port_list = parse_ports(ports)
        draw_seed = parse_seed(seed) if seed is not None else None
    except ConfigError as error:
        _fail(str(error))
    count = _parse_count(open_count, "--open-count", 0, 2**32) if open_count is not None else None
    queue_count = _parse_count(queues, "--queues", 1, 64)

    def build() -> Any:
        lab = Lab(name=name, subnet=subnet, ports=port_list, open_count=count, seed=draw_seed,
                  sink=sink, queues=queue_count)
        return lab.up()

    lab = _lab_call(build)
    typer.echo(_format_status(lab.status()))
    typer.echo(f"scan it with:  {lab.scan_command()}")


@lab_app.command("down", help="Remove the lab's namespaces, links and programs.")
def lab_down(
    name: Annotated[str, typer.Option(help="Lab name.")] = "pyscan",
) -> None:
    from pyscan.lab import Lab

    _lab_call(lambda: Lab.load(name).down())
    typer.echo(f"lab {name!r} removed")


@lab_app.command("status", help="Show what the lab has running.")
def lab_status(
    name: Annotated[str | None, typer.Option(help="Lab name (default: every lab).")] = None,
) -> None:
    from pyscan.lab import Lab, list_labs

    names = [name] if name is not None else list_labs()
    if not names:
        typer.echo("no labs are up")
        return
    for index, lab_name in enumerate(names):
        if index:
            typer.echo("")
        typer.echo(_format_status(_lab_call(lambda n=lab_name: Lab.load(n).status())))


def _format_status(status: object) -> str:
    if isinstance(status, dict):
        return "\n".join(f"{key}: {value}" for key, value in status.items())
    return str(status)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point (`pyscan`, `python -m pyscan`)."""
    typer.main.get_command(app).main(args=argv, prog_name="pyscan")
