"""`pyscan masscan ARGS...` and `pyscan zmap ARGS...`: each tool's grammar (cli/masscan.py,
cli/zmap.py) parsed into a Plan, then carried out: an information action, or the scan
through the same session as `pyscan scan` (cli/session.py), plus zmap's metadata file.

The arguments reach the parsers untouched: click never sees them (app.py routes them here),
so `-oX`, `-sS`, `-c`, `-T4` keep the meaning each tool gives them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pyscan.cli.common import fail_with
from pyscan.cli.plan import Plan
from pyscan.cli.session import ScanTimes, run_scan
from pyscan.errors import ConfigError, Error
from pyscan.output import is_stdout

# masscan's one port numbering for all protocols (massip-port.h: Templ_TCP, Templ_UDP,
# Templ_ICMP_echo), what its -sL prints
MASSCAN_PORT_BASE = {"tcp": 0, "udp": 65536, "icmp": 3 * 65536}

if TYPE_CHECKING:
    from pyscan.config import ScanConfig
    from pyscan.scanner import Summary

__all__ = ["PERSONALITIES", "build_config", "parse_plan", "run_personality", "run_plan"]

PERSONALITIES = ("masscan", "zmap")


def parse_plan(tool: str, argv: Sequence[str]) -> Plan:
    if tool == "masscan":
        from pyscan.cli.masscan import parse_masscan

        return parse_masscan(argv)
    from pyscan.cli.zmap import parse_zmap

    return parse_zmap(argv)


def build_config(plan: Plan) -> ScanConfig:
    """The ScanConfig a plan asks for; ConfigError names what is wrong."""
    from pyscan.config import ScanConfig

    return ScanConfig.parse(plan.targets, **plan.scan)


def run_personality(tool: str, argv: Sequence[str]) -> None:
    """Parse and run; every pyscan error becomes one `pyscan: error:` line and its exit code."""
    try:
        plan = parse_plan(tool, argv)
        if plan.action == "resume":
            _resume_masscan(plan)
            return
        if plan.action != "scan":
            _information(plan)
            return
        config = build_config(plan)
        from pyscan.output import OutputSpec

        for path in (plan.metadata_path, plan.pcap_path):
            if path is not None:
                OutputSpec.parse(path).check_writable()
    except Error as error:
        fail_with(error)
    run_plan(plan, config)


def run_plan(plan: Plan, config: ScanConfig) -> None:
    """The scan of a parsed plan, with its outputs, pcap and metadata."""
    for note in plan.notes if plan.verbose else ():
        typer.echo(f"pyscan {plan.tool}: {note}", err=True)

    def after(summary: Summary | None, times: ScanTimes) -> None:
        if plan.metadata_path is not None:
            _write_metadata(plan, config, summary, times)
        if summary is not None and summary.capture_dropped and not plan.quiet:
            typer.echo(f"pyscan: warning: {summary.capture_dropped} reply frames did not fit "
                       "the capture ring and are missing from the pcap file", err=True)

    pause = None
    if plan.tool == "masscan":  # zmap has no pause file
        from pyscan.cli.masscan import PAUSE_FILE
        from pyscan.cli.session import Pause
        from pyscan.resume import DEFAULT_CHECKPOINT_EVERY

        pause = Pause(path=PAUSE_FILE, checkpoint_every=DEFAULT_CHECKPOINT_EVERY,
                      pcap=plan.pcap_path, command="pyscan masscan")
    run_scan(config, plan.outputs, quiet=plan.quiet, pcap_path=plan.pcap_path, after=after,
             pause=pause)


def _resume_masscan(plan: Plan) -> None:
    """masscan --resume paused.conf [--rate R] [--wait S]."""
    from pyscan.cli.session import run_resumed
    from pyscan.config import parse_rate, parse_wait
    from pyscan.output import OutputSpec
    from pyscan.resume import DEFAULT_CHECKPOINT_EVERY, load_state

    assert plan.resume_path is not None
    from pyscan.cli.masscan import MASSCAN_DEFAULTS

    state = load_state(plan.resume_path)
    outputs = [OutputSpec.parse(o.get("path"), o["format"], append=True,
                                **dict(o.get("options") or {})) for o in state.outputs]
    rate = plan.scan.get("rate")
    wait = plan.scan.get("wait")
    run_resumed(state, plan.resume_path, outputs, pause_path=plan.resume_path,
                checkpoint_every=DEFAULT_CHECKPOINT_EVERY,
                rate=parse_rate(rate) if rate not in (None, MASSCAN_DEFAULTS["rate"]) else None,
                wait=parse_wait(wait) if wait not in (None, MASSCAN_DEFAULTS["wait"]) else None,
                quiet=plan.quiet, command="pyscan masscan")


def _source_ports(config: ScanConfig, summary: Summary | None) -> tuple[int, int]:
    """The ports the scan used; those asked for when it never started (0, 0 if none were)."""
    if summary is not None and summary.source_ports is not None:
        return summary.source_ports
    if config.source_ports:
        return config.source_ports[0], config.source_ports[-1]
    return 0, 0


def _write_metadata(plan: Plan, config: ScanConfig, summary: Summary | None,
                    times: ScanTimes) -> None:
    from pyscan.output.zmap import ZmapRunInfo, zmap_metadata_json

    output = plan.outputs[0] if plan.outputs else None
    options = dict(output.options) if output is not None else {}
    output_filter = options.get("output_filter")
    info = ZmapRunInfo(
        targets=tuple(plan.targets), ports=config.ports,
        source_ports=_source_ports(config, summary),
        rate=config.rate, cooldown=config.wait, seed=config.seed,
        seed_given="seed" in plan.scan, shard=config.shard,
        senders=config.tx_threads or 1, send_start=times.started, send_end=times.send_end,
        recv_start=times.started, recv_end=times.ended,
        output_module="csv" if output is None else output.format.removeprefix("zmap-"),
        output_filename=str(output.path) if output is not None and output.path else None,
        output_filter=getattr(output_filter, "text", None),
        filter_unsuccessful=bool(options.get("only_success")), interface=config.interface,
        source_ip=str(config.source_ip) if config.source_ip else None,
        gateway_mac=config.gateway_mac, dryrun=config.is_dry_run, quiet=plan.quiet)
    text = zmap_metadata_json(info, summary)
    if is_stdout(plan.metadata_path):
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        Path(str(plan.metadata_path)).write_text(text)


def _information(plan: Plan) -> None:
    out = sys.stdout
    if plan.action == "list-targets":
        from pyscan.scanner import list_probes

        config = build_config(plan)
        # masscan -sL (main-listscan.c): the address alone with one port entry, else
        # address:port in its port numbering (MASSCAN_PORT_BASE); [address]:port for IPv6
        single = len(config.entries) == 1
        for address, protocol, port in list_probes(config):
            host = f"[{address}]" if address.version == 6 else f"{address}"
            out.write(f"{address}\n" if single
                      else f"{host}:{MASSCAN_PORT_BASE[protocol] + port}\n")
    elif plan.action == "echo":
        from pyscan.cli.masscan import echo_lines

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
        out.write("tcp_synscan\nicmp_echoscan\nudp\n")
    elif plan.action == "version":
        from pyscan import __version__

        grammar = "masscan 1.3.2" if plan.tool == "masscan" else "zmap 2.1.1"
        out.write(f"pyscan {__version__} ({grammar} command line)\n")
    elif plan.action == "help":
        out.write(f"usage: pyscan {plan.tool} ARGS...\n\n{plan.tool}'s own options, with "
                  f"{plan.tool}'s defaults; docs/cli.md has the table of every flag and what "
                  f"pyscan does with it. Flags pyscan has not built yet are refused by name.\n")
    else:
        raise ConfigError(f"unknown action {plan.action!r}")
    out.flush()
