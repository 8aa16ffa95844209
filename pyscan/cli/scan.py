"""`pyscan scan` (also the default command): parse the options, make one library call, write
the results through the chosen output, print the summary."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand

from pyscan.cli.common import (
    DRIVER_HELP,
    EXIT_FAILED,
    OPTIONS_HELP,
    fail,
    parse_count,
    plain_help_type,
)
from pyscan.cli.session import Pause, ScanTimes, run_resumed, run_scan, silence_stdout
from pyscan.config import DEFAULT_TCP_OPTIONS, ConfigError, ScanConfig
from pyscan.output import OutputSpec
from pyscan.resume import DEFAULT_PAUSE_FILE

if TYPE_CHECKING:
    from pyscan.scanner import Summary

__all__ = ["ScanCommand", "scan_command"]

NO_PORTS = ("no ports given (accepted: -p 80 | -p 22,80,443 | -p 1-1024 | -p- | -p U:53, or "
            "--ping)")


class ScanCommand(TyperCommand):
    """`pyscan scan`: -p is required (and shown so), values are shown by what they are, and a
    missing -p is the usual one-line bad-input error rather than click's box."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            plain_help_type(param)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            plain_help_type(option)
        return option

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as error:
            if (type(error).__name__ == "MissingParameter"
                    and getattr(getattr(error, "param", None), "name", None) == "ports"):
                raise ConfigError(NO_PORTS) from None
            raise



def scan_command(
    ctx: typer.Context,
    ports: Annotated[str | None, typer.Option(
        "--ports", "-p", metavar="PORTS", show_default=False,
        help="Ports: 80 | 22,80,443 | 1-1024 | 0-65535 | -p- (every port); UDP as U:53 "
        "(masscan), mixed: 80,U:53,U:161. Not needed with --ping or --probe icmp-echo.")] = None,
    targets: Annotated[list[str] | None, typer.Argument(
        metavar="TARGET", help="IPv4 address, CIDR, or first-last range; comma lists allowed.",
        show_default=False)] = None,
    ping: Annotated[bool, typer.Option(
        "--ping", help="Also send an ICMP echo to every address (masscan --ping).")] = False,
    probe: Annotated[str, typer.Option(
        "--probe", help="Probe type of -p's ports: tcp-syn | udp | icmp-echo (no -p).")
    ] = "tcp-syn",
    udp_payload: Annotated[list[str] | None, typer.Option(
        "--udp-payload", help="[PORT:]NAME: a built-in UDP payload for PORT (or every UDP "
        "port): dns, ntp, ntp-version, snmp, snmp-v1, ssdp, netbios, empty.")] = None,
    udp_payload_file: Annotated[list[str] | None, typer.Option(
        "--udp-payload-file", help="[PORT:]FILE: send FILE's bytes (hex if it is named "
        "*.hex) to PORT, or to every UDP port (zmap --probe-args=file:).")] = None,
    udp_capture_bytes: Annotated[str, typer.Option(
        "--udp-capture-bytes", help="Bytes of each UDP reply kept in ndjson/json (0..234).")
    ] = "64",
    rate: Annotated[str, typer.Option(help="Packets per second: 1000, 250k, 10M, max.")] = "10k",
    driver: Annotated[str | None, typer.Option(
        help=DRIVER_HELP)] = None,
    interface: Annotated[str | None, typer.Option(
        "--interface", "-i", help="Interface to send on (default: the route's).")] = None,
    source_ip: Annotated[str | None, typer.Option(help="Source address.")] = None,
    source_port: Annotated[str | None, typer.Option(
        help="Source port or range; refused below 1024, in the ephemeral range or with a "
             "listener (default: 256 free ports above the ephemeral range).")] = None,
    force_source_port: Annotated[bool, typer.Option(
        "--force-source-port", help="Use --source-port even where it is refused.")] = False,
    gateway_mac: Annotated[str | None, typer.Option(help="Next-hop MAC (skip ARP).")] = None,
    gateway_ip: Annotated[str | None, typer.Option(
        help="Next hop to ARP for instead of the route's (masscan --router-ip).")] = None,
    source_mac: Annotated[str | None, typer.Option(
        help="Source MAC of probes (default: the interface's; masscan --adapter-mac).")
    ] = None,
    seed: Annotated[str | None, typer.Option(
        help="Permutation seed, to repeat an order (default: random).")] = None,
    wait: Annotated[str, typer.Option(
        help="Seconds to keep receiving after the last probe.")] = "10",
    shard: Annotated[str, typer.Option(help="This machine's part, masscan style: 1/2.")] = "1/1",
    output: Annotated[str | None, typer.Option(
        "--output", "-o", metavar="FILE",
        help="Write results to FILE (default: standard output).")] = None,
    output_format: Annotated[str, typer.Option(
        "--format", help="pyscan's clean schemas: list | ndjson | json | csv | grepable. "
        "masscan's files: -oL -oJ -oD -oG -oX FILE (masscan-list, ...); zmap's modules: "
        "-O csv | -O json (zmap-csv, zmap-json).")] = "list",
    output_fields: Annotated[str | None, typer.Option(
        "--output-fields", "-f", metavar="FIELDS",
        help="zmap's -f: fields of -O csv|json, comma separated, "
        "or * (zmap's names: saddr,sport,classification,success,ttl,...).")] = None,
    output_filter: Annotated[str | None, typer.Option(
        help="zmap's --output-filter for -O csv|json, e.g. 'success = 1 && ttl > 32'.")
    ] = None,
    append_output: Annotated[bool, typer.Option(
        "--append-output", help="Add to the output file instead of replacing it (masscan).")
    ] = False,
    pcap: Annotated[str | None, typer.Option(
        metavar="FILE",
        help="Also write every reply with a valid cookie to FILE as pcap (masscan --pcap).")
    ] = None,
    exclude: Annotated[list[str] | None, typer.Option(
        metavar="TARGET", help="Addresses to leave out.")] = None,
    exclude_file: Annotated[list[str] | None, typer.Option(
        metavar="FILE", help="File of addresses to leave out.")] = None,
    include_file: Annotated[list[str] | None, typer.Option(
        metavar="FILE", help="File of targets (-iL).")] = None,
    blocklist_file: Annotated[list[str] | None, typer.Option(
        "--blocklist-file", "-b",
        help="File of addresses never to scan, on top of the default blocklist (zmap -b).")
    ] = None,
    allowlist_file: Annotated[list[str] | None, typer.Option(
        "--allowlist-file", "-w",
        help="Scan only addresses in FILE (zmap -w); without TARGETs, all of it.")] = None,
    max_targets: Annotated[str | None, typer.Option(
        "--max-targets", "-n",
        help="Send only the first N probes of the scan's random order, or P% of them "
             "(zmap -n); all shards together.")] = None,
    no_default_blocklist: Annotated[bool, typer.Option(
        "--no-default-blocklist",
        help="Also scan reserved and special-purpose space (IANA registry, multicast, 240/4).")
    ] = False,
    tx_threads: Annotated[str, typer.Option(
        help="Sending threads, one TX queue each (default: auto = TX queues, cores allowing).")
    ] = "auto",
    xdp_mode: Annotated[str | None, typer.Option(
        help="af-xdp sockets: auto | zerocopy | copy (default: auto).")] = None,
    xdp_attach: Annotated[str | None, typer.Option(
        help="af-xdp filter attach: auto | native | generic (default: auto).")] = None,
    ttl: Annotated[str | None, typer.Option(
        help="IP TTL of probes (default: the --tcp-options stack's, 64 or 128).")] = None,
    tcp_options: Annotated[str, typer.Option(
        help="SYN shape, a copy of that stack's SYN: windows | linux | bsd | mss | none "
             "(zmap --probe-args).")] = DEFAULT_TCP_OPTIONS,
    retries: Annotated[str | None, typer.Option(
        help="Extra probes per address and port (masscan --retries; default 0).")] = None,
    probes: Annotated[str | None, typer.Option(
        "--probes", "-P", help="Probes per address and port, = --retries + 1 (zmap -P).")
    ] = None,
    retry_delay: Annotated[str, typer.Option(
        help="Seconds between two probes of one address and port, at least.")] = "1",
    max_runtime: Annotated[str | None, typer.Option(
        "--max-runtime", "-t", help="Stop sending after this many seconds (zmap -t).")] = None,
    max_results: Annotated[str | None, typer.Option(
        "--max-results", "-N", help="Stop once this many results are reported (zmap -N).")
    ] = None,
    show_closed: Annotated[bool, typer.Option(
        "--show-closed", help="Also report closed ports (RST, ICMP port unreachable) and "
        "unreachable ones; masscan --show closed.")] = False,
    show_unreachable: Annotated[bool, typer.Option(
        "--show-unreachable", help="Also report ICMP destination unreachables quoting a probe "
        "(status unreachable, ICMP type and code); --show unreachable.")] = False,
    open_only: Annotated[bool, typer.Option(
        "--open-only", help="Report open ports only (the default).")] = False,
    no_isolation: Annotated[bool, typer.Option(
        "--no-isolation", help="Do not add the nftables rules that stop the kernel's RSTs.")
    ] = False,
    netns: Annotated[str | None, typer.Option(help="Run the scan inside this namespace.")] = None,
    driver_option: Annotated[list[str] | None, typer.Option(
        "--driver-option", "-O", metavar="KEY=VALUE",
        help=OPTIONS_HELP + " -O csv and -O json (no =) select zmap's output modules.")] = None,
    pfring_lib: Annotated[str | None, typer.Option(
        metavar="PATH",
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
    cluster: Annotated[str | None, typer.Option(
        help="Spread the scan over Dask workers: tcp://SCHEDULER:8786 or local:N "
             "(docs/cluster.md).")] = None,
    cluster_workers: Annotated[str, typer.Option(
        help="With --cluster: start once this many pyscan workers are connected.")] = "1",
    pause_file: Annotated[str | None, typer.Option(
        "--pause-file", metavar="FILE",
        help="Where Ctrl-C, SIGTERM and checkpoints save the scan's state (default: "
             "paused.json; masscan's paused.conf).")] = None,
    checkpoint_every: Annotated[str, typer.Option(
        "--checkpoint-every", metavar="SECONDS",
        help="Save the state this often while scanning, so even a killed scan can go on "
             "(0 = only on a stop).")] = "10",
    resume: Annotated[str | None, typer.Option(
        "--resume", metavar="FILE",
        help="Go on with the scan FILE describes (paused.json), appending to its outputs; "
             "other options: only --rate, --wait, -q, --status, --json-summary, "
             "--pause-file, --checkpoint-every.")] = None,
) -> None:
    from pyscan import scanner

    every = _checkpoint_seconds(checkpoint_every)
    if resume is not None:
        _resume_command(ctx, resume, pause_file=pause_file, checkpoint_every=every,
                        rate=rate, wait=wait, quiet=quiet, status=status,
                        json_summary=json_summary)
        return
    if ports is None and not ping and probe != "icmp-echo":
        fail(NO_PORTS)
    if show_closed and open_only:
        fail("--show-closed and --open-only contradict each other (accepted: one of them)")
    if show_unreachable and open_only:
        fail("--show-unreachable and --open-only contradict each other (accepted: one of them)")
    min_workers = parse_count(cluster_workers, "--cluster-workers count", 1, 100_000)
    if dry_run and driver not in (None, "null"):
        fail(f"--dry-run uses the null driver, not {driver!r} (accepted: drop --driver)")
    try:
        retry_count = _retry_count(retries, probes)
        config = ScanConfig.parse(
            targets or [],
            ports=ports or (),
            probe=probe,
            ping=ping,
            udp_payloads=udp_payload or [],
            udp_payload_files=udp_payload_file or [],
            udp_capture_bytes=parse_count(udp_capture_bytes, "UDP capture length", 0, 234),
            include_files=include_file or [],
            excludes=exclude or [],
            exclude_files=exclude_file or [],
            blocklist_files=blocklist_file or [],
            allowlist_files=allowlist_file or [],
            default_blocklist=not no_default_blocklist,
            max_targets=max_targets,
            rate=rate,
            driver="null" if dry_run else driver,
            interface=interface,
            source_ip=source_ip,
            source_ports=source_port,
            force_source_port=force_source_port,
            gateway_mac=gateway_mac,
            gateway_ip=gateway_ip,
            source_mac=source_mac,
            seed=seed,
            shard=shard,
            wait=wait,
            tx_threads=None if tx_threads == "auto"
            else parse_count(tx_threads, "TX thread count", 1, 64),
            ttl=parse_count(ttl, "TTL", 1, 255) if ttl is not None else None,
            show_closed=show_closed,
            show_unreachable=show_unreachable,
            isolation=not no_isolation,
            netns=netns,
            driver_options=[*(driver_option or []), *_xdp_options(xdp_mode, xdp_attach),
                            *([f"lib={pfring_lib}"] if pfring_lib else [])],
            retries=retry_count,
            retry_delay=retry_delay,
            max_runtime=max_runtime,
            max_results=max_results,
            tcp_options=tcp_options,
        )
        output_spec = OutputSpec.parse(
            output, output_format, append=append_output,
            **_zmap_options(output_format, output_fields, output_filter, config.ports))
        # Catch an unwritable -o before the scan starts, without creating the file.
        output_spec.check_writable()
        if pcap is not None:
            OutputSpec.parse(pcap).check_writable()
        if cluster is not None:
            from pyscan.cli.cluster import check_cluster_option

            check_cluster_option(cluster, config, pcap=pcap)
    except ConfigError as error:
        fail(str(error))

    if list_targets:
        for warning in config.input_warnings:
            typer.echo(f"pyscan: warning: {warning}", err=True)
        _print_target_list(config, scanner.list_probes(config))
        return
    if config.udp_ports_without_payload and not quiet:
        empty = ",".join(str(port) for port in config.udp_ports_without_payload)
        typer.echo(f"pyscan: note: UDP ports {empty} have no payload: they get empty datagrams "
                   "(choose one with --udp-payload PORT:NAME or --udp-payload-file)", err=True)

    if cluster is not None:
        from pyscan.cli.cluster import run_cluster_scan

        if pause_file is not None:
            fail("--pause-file with --cluster is not supported yet (accepted: a cluster scan "
                 "without it; it saves no pause state)")

        run_cluster_scan(config, output_spec, cluster, quiet=quiet, status=status,
                         json_summary=json_summary, min_workers=min_workers)
        return

    def after(summary: Summary | None, times: ScanTimes) -> None:
        if summary is not None and summary.capture_dropped and not quiet:
            typer.echo(f"pyscan: warning: {summary.capture_dropped} reply frames did not fit "
                       "the capture ring and are missing from the pcap file", err=True)

    run_scan(config, [output_spec], quiet=quiet, status=status, json_summary=json_summary,
             pcap_path=pcap, after=after,
             pause=Pause(path=pause_file or DEFAULT_PAUSE_FILE, checkpoint_every=every,
                         pcap=pcap))


# Options a --resume run may be given: they change how fast or how long the run goes or what
# it prints, never which probes are sent or what a result line says.
RESUME_CHANGEABLE = ("rate", "wait", "quiet", "status", "json_summary", "pause_file",
                     "checkpoint_every", "resume")
# Given with --resume, these must say what the state file says.
RESUME_SAME = ("output", "output_format")


def _checkpoint_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (0 <= value <= 86400):
        fail(f"bad --checkpoint-every {text!r} (accepted: seconds 0..86400, 0 = only on a "
             "stop)")
    return value


def _resume_command(ctx: typer.Context, state_path: str, *, pause_file: str | None,
                    checkpoint_every: float, rate: str, wait: str, quiet: bool,
                    status: bool | None, json_summary: bool) -> None:
    """--resume FILE: the scan FILE describes, from where it stopped; every option that
    would change it is refused (exit 2), naming each."""
    from pyscan.config import parse_rate, parse_wait
    from pyscan.resume import load_state

    try:
        state = load_state(state_path)
    except ConfigError as error:
        fail(str(error))
    saved_outputs = [OutputSpec.parse(o.get("path"), o["format"], append=True,
                                      **dict(o.get("options") or {})) for o in state.outputs]
    # By name: typer vendors its own click, whose ParameterSource is not click's.
    given = {param.name: param for param in ctx.command.params
             if param.name and getattr(ctx.get_parameter_source(param.name), "name", None)
             in ("COMMANDLINE", "ENVIRONMENT")}
    problems = []
    first = saved_outputs[0] if saved_outputs else OutputSpec()
    for name, param in given.items():
        if name in RESUME_CHANGEABLE:
            continue
        value = ctx.params.get(name)
        flag = param.opts[0] if param.opts else name
        if name == "output" and first.path is not None and value is not None \
                and Path(value).resolve() == Path(first.path).resolve():
            continue
        if name == "output_format" and value == first.format:
            continue
        saved = ({"output": str(first.path) if first.path else "standard output",
                  "output_format": first.format}.get(name) if name in RESUME_SAME
                 else "the state file's")
        shown = " ".join(value) if isinstance(value, list) else value
        problems.append(f"{flag} {shown!r} (saved: {saved})")
    if problems:
        fail(f"--resume {state_path} takes the scan's options from the file; these contradict "
             f"or change it: {'; '.join(problems)} (accepted with --resume: --rate, --wait, "
             "-q, --status, --json-summary, --pause-file, --checkpoint-every, and -o/--format "
             "equal to the saved ones)")
    try:
        new_rate = parse_rate(rate) if "rate" in given else None
        new_wait = parse_wait(wait) if "wait" in given else None
    except ConfigError as error:
        fail(str(error))
    run_resumed(state, state_path, saved_outputs, pause_path=pause_file or state_path,
                checkpoint_every=checkpoint_every, rate=new_rate, wait=new_wait, quiet=quiet,
                status=status, json_summary=json_summary)


def _zmap_options(output_format: str, fields: str | None, output_filter: str | None,
                  ports: tuple[int, ...]) -> dict[str, Any]:
    """-f / --output-filter for zmap's modules; refused with any other format."""
    if not output_format.startswith("zmap-"):
        for flag, value in (("--output-fields", fields), ("--output-filter", output_filter)):
            if value is not None:
                raise ConfigError(f"{flag} applies to zmap's output modules (accepted: -O csv "
                                  "or -O json with it)")
        return {}
    from pyscan.output.zmap import default_fields, parse_filter, parse_output_fields

    try:
        return {"fields": parse_output_fields(fields) if fields else default_fields(ports),
                "output_filter": (parse_filter(output_filter) if output_filter is not None
                                  else None)}
    except ValueError as error:
        raise ConfigError(str(error)) from None

def _retry_count(retries: str | None, probes: str | None) -> int:
    """--retries N (masscan) or -P/--probes N+1 (zmap): the same setting, spelled twice."""
    from pyscan.config import parse_probes, parse_retries

    from_retries = parse_retries(retries) if retries is not None else None
    from_probes = parse_probes(probes) if probes is not None else None
    if from_retries is not None and from_probes is not None and from_retries != from_probes:
        raise ConfigError(f"--retries {retries} and --probes {probes} contradict each other "
                          f"(accepted: --probes = --retries + 1, or only one of them)")
    return from_retries if from_retries is not None else from_probes or 0




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


def _print_target_list(config: ScanConfig,
                       probes: Iterator[tuple[IPv4Address | IPv6Address, str, int]]) -> None:
    """-sL: one address per line with one port entry, address:port with several of one
    protocol (both as masscan), and with several protocols address:port/protocol (ICMP echo:
    address/icmp), so that each line names its probe (docs/cli.md). An IPv6 address before a
    port is written [address], so the port cannot be read as part of it."""
    from pyscan.probes import PROBES

    single_port = len(config.entries) == 1
    mixed = len({PROBES[probe].protocol for probe, _ in config.entries}) > 1
    write = sys.stdout.write
    try:
        for address, protocol, port in probes:
            host = f"[{address}]" if address.version == 6 else f"{address}"
            if single_port:
                write(f"{address}\n")
            elif not mixed:
                write(f"{host}:{port}\n")
            else:
                write(f"{address}/icmp\n" if protocol == "icmp"
                      else f"{host}:{port}/{protocol}\n")
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        fail("standard output was closed by the reader (broken pipe); listing stopped",
             EXIT_FAILED)
