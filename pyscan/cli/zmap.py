"""`pyscan zmap ARGS...`: zmap's command-line grammar (2.1.1's, plus the flags zmap 4 added
that pyscan can honour) and its defaults: 10,000 packets per second, 8 s cooldown, TTL 255,
and its default output, the addresses that answered SYN-ACK, one per line, on stdout.

zmap parses with GNU getopt_long (`-p 80`, `-p80`, `--target-port=80`, unambiguous prefixes
of long names); argparse reads the same grammar. `-C FILE` reads zmap's config files,
`name value` per line.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from pyscan.cli.plan import NotSupportedYet, Plan, output
from pyscan.config import (
    parse_max_results,
    parse_max_runtime,
    parse_ports,
    parse_probes,
    parse_tcp_options,
)
from pyscan.errors import ConfigError
from pyscan.output.zmap import (
    FilterError,
    ZmapFieldError,
    default_fields,
    parse_filter,
    parse_output_fields,
)
from pyscan.text import ascii_digits

__all__ = ["ZMAP_DEFAULTS", "ZMAP_PROBE_MODULES", "parse_zmap", "zmap_bandwidth_to_rate"]

ZMAP_DEFAULTS = {"rate": "10000", "wait": "8", "ttl": 255}
# zmap's probe modules; pyscan has tcp_synscan.
ZMAP_PROBE_MODULES = ("tcp_synscan", "tcp_synackscan", "icmp_echoscan", "icmp_echo_time",
                      "udp", "ntp", "upnp", "dns", "bacnet", "ipip")
# Bytes on the wire per probe for -B: pyscan's SYN frame (58 bytes) + preamble, CRC and gap
# (24), at least the 84 of a minimum frame, as zmap counts (src/send.c).
_WIRE_BYTES = max(58 + 24, 84)
_BANDWIDTH = re.compile(r"(\d+(?:\.\d+)?)([GMK]?)", re.IGNORECASE)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (accepted: zmap's options, see docs/cli.md)")


def _build_parser() -> _Parser:
    parser = _Parser(prog="pyscan zmap", add_help=False, allow_abbrev=True)
    add = parser.add_argument
    add("subnets", nargs="*")
    add("-p", "--target-port", "--target-ports", dest="ports")
    add("-o", "--output-file", dest="output_file")
    add("-b", "--blacklist-file", "--blocklist-file", dest="blocklist", action="append")
    add("-w", "--whitelist-file", "--allowlist-file", dest="allowlist", action="append")
    add("-I", "--list-of-ips", dest="list_of_ips", action="append")
    # ZMapv6's (tumi8/zmap) IPv6 spellings: a hit list and the IPv6 source.
    add("--ipv6-target-file", dest="ipv6_target_file", action="append")
    add("--ipv6-source-ip", dest="ipv6_source_ip")
    add("-r", "--rate")
    add("-B", "--bandwidth")
    add("-n", "--max-targets")
    add("-t", "--max-runtime")
    add("-N", "--max-results")
    add("-P", "--probes")
    add("-c", "--cooldown-time", dest="cooldown")
    add("-e", "--seed")
    add("--retries")
    add("-d", "--dryrun", action="store_true")
    add("--shards", type=str)
    add("--shard", type=str)
    add("-s", "--source-port")
    add("-S", "--source-ip")
    add("-G", "--gateway-mac")
    add("--source-mac")
    add("-i", "--interface")
    add("-X", "--vpn", "--iplayer", dest="vpn", action="store_true")
    add("-M", "--probe-module")
    add("--probe-args")
    add("--probe-ttl")
    add("--list-probe-modules", action="store_true")
    add("-f", "--output-fields")
    add("-O", "--output-module")
    add("--output-args")
    add("--output-filter")
    add("--no-header-row", action="store_true")
    add("--list-output-modules", action="store_true")
    add("--list-output-fields", action="store_true")
    add("-v", "--verbosity")
    add("-l", "--log-file")
    add("-L", "--log-directory")
    add("-m", "--metadata-file")
    add("-u", "--status-updates-file")
    add("-q", "--quiet", action="store_true")
    add("--disable-syslog", action="store_true")
    add("--notes")
    add("--user-metadata")
    add("-C", "--config", action="append")
    add("--max-sendto-failures")
    add("--min-hitrate")
    add("-T", "--sender-threads")
    add("--cores")
    add("--ignore-invalid-hosts", action="store_true")
    add("-h", "--help", action="store_true")
    add("-V", "--version", action="store_true")
    # pyscan's own, so a zmap command line can run in a lab namespace or pick a driver.
    add("--netns")
    add("--driver")
    return parser


def zmap_bandwidth_to_rate(text: str) -> str:
    """zmap's -B (bits per second, G/M/K suffixes, decimal) -> packets per second."""
    match = _BANDWIDTH.fullmatch(text.strip())
    if match is None:
        raise ConfigError(f"bad bandwidth {text!r} (accepted: bits per second like 10M, 1G)")
    bits = float(match.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[match.group(2).lower()]
    packets = int(bits / (_WIRE_BYTES * 8))
    if packets < 1:
        raise ConfigError(f"bandwidth {text!r} is below one probe per second (accepted: at "
                          f"least {_WIRE_BYTES * 8} bits per second)")
    return str(packets)


def _config_args(path: str) -> list[str]:
    """zmap's -C file: `name value` per line, `#` comments -> --name value."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ConfigError(f"cannot read config file {path!r}: {error.strerror} (accepted: a "
                          "readable file of 'name value' lines)") from None
    args: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, value = line.partition(" ")
            value = value.strip().strip('"')
            args += [f"--{name}", value] if value else [f"--{name}"]
    return args


def _expand_config(argv: Sequence[str]) -> list[str]:
    """-C FILE inlined first, so the command line overrides what the file sets."""
    args = list(argv)
    files: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("-C", "--config") and index + 1 < len(args):
            files.append(args[index + 1])
            index += 2
            continue
        if arg.startswith("--config="):
            files.append(arg.partition("=")[2])
        elif arg.startswith("-C") and len(arg) > 2:
            files.append(arg[2:])
        else:
            rest.append(arg)
        index += 1
    expanded: list[str] = []
    for path in files:
        expanded += _config_args(path)
    return expanded + rest


def _refuse_if(value: Any, flag: str, why: str) -> None:
    if value not in (None, False):
        raise NotSupportedYet(flag, why)


def parse_zmap(argv: Sequence[str]) -> Plan:
    """zmap's argv -> Plan (ConfigError / NotSupportedYet on bad or unbuilt options)."""
    options = _build_parser().parse_args(_expand_config(argv))
    plan = Plan(tool="zmap", scan=dict(ZMAP_DEFAULTS), targets=list(options.subnets),
                quiet=options.quiet)
    for flag, action in (("help", "help"), ("version", "version"),
                         ("list_probe_modules", "list-probe-modules"),
                         ("list_output_modules", "list-output-modules"),
                         ("list_output_fields", "list-output-fields")):
        if getattr(options, flag):
            plan.action = action
    if options.max_targets is not None and options.max_targets.strip().endswith("%"):
        # zmap's percentage is of the whole IPv4 space, pyscan's of this scan's probes
        raise NotSupportedYet(f"-n {options.max_targets}", "zmap's percentage of the IPv4 "
                              "space; give a count, or `pyscan scan -n P%` for a share of "
                              "this scan")
    if options.max_targets is not None:
        plan.scan["max_targets"] = options.max_targets
    _refuse_if(options.vpn, "-X/--vpn", "pyscan sends Ethernet frames only")
    _refuse_if(options.output_args, "--output-args", "pyscan's csv and json modules take none")
    _refuse_if(options.status_updates_file, "-u/--status-updates-file",
               "the CSV status file is not built yet")
    _refuse_if(options.log_file, "-l/--log-file", "pyscan logs to standard error only")
    _refuse_if(options.log_directory, "-L/--log-directory", "pyscan logs to standard error only")
    _refuse_if(options.max_sendto_failures, "--max-sendto-failures",
               "pyscan does not abort on send failures; it counts them in the summary")
    _refuse_if(options.retries, "--retries", "re-trying failed sends is not built yet "
               "(pyscan counts send failures in the summary)")
    _refuse_if(options.min_hitrate, "--min-hitrate", "aborting on a low hit rate is not built yet")
    _refuse_if(options.cores, "--cores", "pinning sending threads to cores is not built yet")
    module = options.probe_module or "tcp_synscan"
    # ZMapv6's IPv6 module names: the targets' family picks pyscan's IPv6 twin anyway.
    module = _ZMAPV6_MODULES.get(module, module)
    if module not in _PYSCAN_PROBE:
        if module in ZMAP_PROBE_MODULES:
            raise NotSupportedYet(f"-M {module}", "pyscan has the tcp_synscan, icmp_echoscan "
                                  "and udp probe modules")
        raise ConfigError(f"unknown probe module {module!r} (accepted: "
                          f"{', '.join(_PYSCAN_PROBE)})")

    scan = plan.scan
    if module != "tcp_synscan":
        scan["probe"] = _PYSCAN_PROBE[module]
    # -P N: N probes per target (pyscan spaces them by --retry-delay, 1 s, where zmap sends
    # them back to back); -t, -N: zmap's limits; --probe-args: tcp_synscan's option style,
    # udp's payload.
    if options.probes is not None:
        scan["retries"] = parse_probes(options.probes)
    if options.max_runtime is not None:
        scan["max_runtime"] = parse_max_runtime(options.max_runtime)
    if options.max_results is not None:
        scan["max_results"] = parse_max_results(options.max_results)
    if options.probe_args and module == "tcp_synscan":
        scan["tcp_options"] = parse_tcp_options(options.probe_args)
    elif options.probe_args:
        _probe_args(scan, module, options.probe_args)
    if module == "icmp_echoscan":
        scan["ports"] = ""  # zmap's icmp_echoscan takes no port
    elif options.ports is not None:
        scan["ports"] = "0-65535" if options.ports == "*" else options.ports
    elif plan.action == "scan":
        raise ConfigError("no port given (accepted: -p 80 | -p 80,443 | -p 1-1024)")
    if options.rate is not None and options.bandwidth is not None:
        raise ConfigError("-r and -B contradict each other (accepted: one of them)")
    if options.rate is not None:
        scan["rate"] = options.rate
    if options.bandwidth is not None:
        scan["rate"] = zmap_bandwidth_to_rate(options.bandwidth)
    if options.cooldown is not None:
        scan["wait"] = options.cooldown
    if options.seed is not None:
        scan["seed"] = options.seed
    if options.shards is not None or options.shard is not None:
        scan["shard"] = _shard(options.shard, options.shards, options.seed)
    for key, value in (("source_ports", options.source_port), ("source_ip", options.source_ip),
                       ("gateway_mac", options.gateway_mac), ("source_mac", options.source_mac),
                       ("interface", options.interface),
                       ("netns", options.netns), ("driver", options.driver)):
        if value is not None:
            scan[key] = value
    if options.probe_ttl is not None:
        if not ascii_digits(options.probe_ttl) or not 1 <= int(options.probe_ttl) <= 255:
            raise ConfigError(f"bad --probe-ttl {options.probe_ttl!r} (accepted: 1..255)")
        scan["ttl"] = int(options.probe_ttl)
    if options.sender_threads is not None:
        if not ascii_digits(options.sender_threads) or not 1 <= int(options.sender_threads) <= 64:
            raise ConfigError(f"bad -T {options.sender_threads!r} (accepted: 1..64)")
        scan["tx_threads"] = int(options.sender_threads)
    if options.dryrun:
        scan["driver"] = "null"
    if options.blocklist:
        scan["exclude_files"] = list(options.blocklist)
    if options.ipv6_source_ip is not None:
        if options.source_ip is not None:
            raise ConfigError("-S and --ipv6-source-ip both given (accepted: one source "
                              "address, of the targets' family)")
        scan["source_ip"] = options.ipv6_source_ip
    include_files = [*(options.allowlist or []), *(options.list_of_ips or []),
                     *(options.ipv6_target_file or [])]
    if include_files:
        scan["include_files"] = include_files
    if options.verbosity is not None:
        if not ascii_digits(options.verbosity) or int(options.verbosity) > 5:
            raise ConfigError(f"bad -v {options.verbosity!r} (accepted: 0..5)")
        plan.verbose = int(options.verbosity)
    plan.metadata_path = options.metadata_file
    if options.notes or options.user_metadata:
        plan.notes.append("metadata: " + str({"notes": options.notes,
                                              "user-metadata": options.user_metadata}))
    _outputs(plan, options)
    return plan


def _shard(shard: str | None, shards: str | None, seed: str | None) -> str:
    count_text, index_text = shards or "1", shard or "0"
    if not ascii_digits(count_text) or int(count_text) < 1:
        raise ConfigError(f"bad --shards {count_text!r} (accepted: integer >= 1)")
    count = int(count_text)
    if not ascii_digits(index_text) or int(index_text) >= count:
        raise ConfigError(f"bad --shard {index_text!r} (accepted: 0..{count - 1}, zmap counts "
                          "shards from 0)")
    if count > 1 and seed is None:
        raise ConfigError("--shards needs --seed, so that every shard walks the same order "
                          "(accepted: -e/--seed N with the same N on every shard)")
    return f"{int(index_text) + 1}/{count}"


_PYSCAN_PROBE = {"tcp_synscan": "tcp-syn", "icmp_echoscan": "icmp-echo", "udp": "udp"}
_ZMAPV6_MODULES = {"ipv6_tcp_synscan": "tcp_synscan", "icmp6_echoscan": "icmp_echoscan",
                   "ipv6_udp": "udp"}


def _probe_args(scan: dict[str, Any], module: str, text: str) -> None:
    """zmap's --probe-args: for udp, text:STR, hex:HEX or file:PATH (the payload of every
    UDP port); the other modules take none pyscan knows."""
    if module != "udp":
        raise NotSupportedYet("--probe-args", f"{module}'s probe arguments are not built yet")
    kind, _, value = text.partition(":")
    if kind == "file":
        scan["udp_payload_files"] = [value]
    elif kind == "text":
        scan["udp_payload_data"] = [value.encode()]
    elif kind == "hex":
        try:
            scan["udp_payload_data"] = [bytes.fromhex(value)]
        except ValueError:
            raise ConfigError(f"--probe-args hex:{value!r} is not hex (accepted: pairs of hex "
                              "digits)") from None
    elif kind == "template":
        raise NotSupportedYet("--probe-args template:", "zmap's UDP payload templates are not "
                              "built yet (accepted: text:, hex:, file:)")
    else:
        raise ConfigError(f"bad --probe-args {text!r} for udp (accepted: text:STR, hex:HEX, "
                          "file:PATH)")


def _outputs(plan: Plan, options: argparse.Namespace) -> None:
    module = options.output_module or "default"
    if module not in ("default", "csv", "json"):
        if module in ("redis", "mongodb", "extended_file", "simple_file"):
            raise NotSupportedYet(f"-O {module}", "pyscan writes zmap's csv and json modules")
        raise ConfigError(f"unknown output module {module!r} (accepted: csv, json)")
    ports = parse_ports(plan.scan["ports"]) if plan.scan.get("ports") else ()
    try:
        fields = (parse_output_fields(options.output_fields) if options.output_fields
                  else default_fields(ports))
        output_filter = (parse_filter(options.output_filter)
                         if options.output_filter is not None else None)
    except (ZmapFieldError, FilterError) as error:
        raise ConfigError(str(error)) from None
    path = options.output_file
    writer_options: dict[str, Any] = {"fields": fields, "output_filter": output_filter}
    if module == "default":
        # zmap's default mode: successes only, no header row.
        writer_options.update(only_success=True, header_row=False)
        plan.outputs.append(output("zmap-csv", path, **writer_options))
        return
    # An output module chosen: every reply goes to it, RSTs too, unless a filter says not.
    plan.scan["show_closed"] = True
    if options.no_header_row:
        writer_options["header_row"] = False
    plan.outputs.append(output(f"zmap-{module}", path, **writer_options))
