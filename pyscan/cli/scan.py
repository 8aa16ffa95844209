"""`pyscan scan` (also the default command): parse the options, make one library call, write
the results through the chosen output, print the summary."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pyscan.cli.common import (
    DRIVER_HELP,
    EXIT_FAILED,
    OPTIONS_HELP,
    fail,
    parse_count,
)
from pyscan.cli.session import ScanTimes, run_scan, silence_stdout
from pyscan.config import DEFAULT_TTL, ConfigError, ScanConfig
from pyscan.output import OutputSpec

if TYPE_CHECKING:
    from pyscan.scanner import Summary

__all__ = ["scan_command"]


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
        help="Source port or range; refused below 1024, in the ephemeral range or with a "
             "listener (default: 256 free ports above the ephemeral range).")] = None,
    force_source_port: Annotated[bool, typer.Option(
        "--force-source-port", help="Use --source-port even where it is refused.")] = False,
    gateway_mac: Annotated[str | None, typer.Option(help="Next-hop MAC (skip ARP).")] = None,
    seed: Annotated[str | None, typer.Option(
        help="Permutation seed, to repeat an order (default: random).")] = None,
    wait: Annotated[str, typer.Option(
        help="Seconds to keep receiving after the last probe.")] = "10",
    shard: Annotated[str, typer.Option(help="This machine's part, masscan style: 1/2.")] = "1/1",
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="Write results to FILE (default: standard output).")] = None,
    output_format: Annotated[str, typer.Option(
        "--format", help="pyscan's clean schemas: list | ndjson | json | csv | grepable. "
        "masscan's files: -oL -oJ -oD -oG -oX FILE (masscan-list, ...); zmap's modules: "
        "-O csv | -O json (zmap-csv, zmap-json).")] = "list",
    output_fields: Annotated[str | None, typer.Option(
        "--output-fields", "-f", help="zmap's -f: fields of -O csv|json, comma separated, "
        "or * (zmap's names: saddr,sport,classification,success,ttl,...).")] = None,
    output_filter: Annotated[str | None, typer.Option(
        help="zmap's --output-filter for -O csv|json, e.g. 'success = 1 && ttl > 32'.")
    ] = None,
    append_output: Annotated[bool, typer.Option(
        "--append-output", help="Add to the output file instead of replacing it (masscan).")
    ] = False,
    pcap: Annotated[str | None, typer.Option(
        help="Also write every reply with a valid cookie to FILE as pcap (masscan --pcap).")
    ] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Addresses to leave out.")] = None,
    exclude_file: Annotated[list[str] | None, typer.Option(
        help="File of addresses to leave out.")] = None,
    include_file: Annotated[list[str] | None, typer.Option(
        help="File of targets (-iL).")] = None,
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
        "--driver-option", "-O",
        help=OPTIONS_HELP + " -O csv and -O json (no =) select zmap's output modules.")] = None,
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
        output_spec = OutputSpec.parse(
            output, output_format, append=append_output,
            **_zmap_options(output_format, output_fields, output_filter, config.ports))
        # Catch an unwritable -o before the scan starts, without creating the file.
        output_spec.check_writable()
        if pcap is not None:
            OutputSpec.parse(pcap).check_writable()
    except ConfigError as error:
        fail(str(error))

    if list_targets:
        for warning in config.input_warnings:
            typer.echo(f"pyscan: warning: {warning}", err=True)
        _print_target_list(config, scanner.list_targets(config))
        return

    def after(summary: Summary | None, times: ScanTimes) -> None:
        if summary is not None and summary.capture_dropped and not quiet:
            typer.echo(f"pyscan: warning: {summary.capture_dropped} reply frames did not fit "
                       "the capture ring and are missing from the pcap file", err=True)

    run_scan(config, [output_spec], quiet=quiet, status=status, json_summary=json_summary,
             pcap_path=pcap, after=after)


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
        silence_stdout()
        fail("standard output was closed by the reader (broken pipe); listing stopped",
             EXIT_FAILED)
