"""`pyscan masscan ARGS...`: masscan 1.3.2's command-line grammar and defaults.

masscan reads `--name value`, `--name=value`, nmap-style short options (`-p80`, `-oX f`,
`-iL f`, `-sS`, `-Pn`, `-n`, `-T4`) and config files of `name = value` lines (`-c FILE`,
the format `--echo` prints). Names ignore `-` and `_` (`--excludefile` = `--exclude-file`),
as masscan's do. Defaults are masscan's: 100 packets per second, 10 s wait, TTL 255, open
ports only, and without -o the `Discovered open port ...` lines on standard output.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyscan.cli.plan import NotSupportedYet, Plan, output
from pyscan.cli.top_ports import TOP_TCP_PORTS
from pyscan.errors import ConfigError
from pyscan.text import ascii_digits

__all__ = ["MASSCAN_DEFAULTS", "PAUSE_FILE", "echo_lines", "parse_masscan",
           "parse_masscan_ports"]

MASSCAN_DEFAULTS = {"rate": "100", "wait": "10", "ttl": 255}
_OUTPUT_LETTERS = {"L": "list", "J": "json", "D": "ndjson", "G": "grepable", "X": "xml",
                   "B": "binary", "U": "unicornscan", "H": "hostonly", "R": "redis"}
_WRITERS = {"list": "masscan-list", "json": "masscan-json", "ndjson": "masscan-ndjson",
            "grepable": "masscan-grepable", "xml": "masscan-xml"}
_PROTOCOL_PREFIXES = {"T": "TCP", "U": "UDP", "S": "SCTP", "O": "other IP protocol",
                      "I": "ICMP"}


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def parse_masscan_ports(text: str) -> str:
    """masscan's port list -> pyscan's: `-` is 1-65535 (as masscan reads `-p-`), `T:` is
    TCP, `U:` UDP (pyscan's own U:N items); a prefix holds for the items after it, as in
    nmap."""
    protocol = "T"
    items = []
    for raw in text.split(","):
        item = raw.strip()
        if len(item) > 2 and item[1] == ":" and item[0].upper() in _PROTOCOL_PREFIXES:
            protocol, item = item[0].upper(), item[2:]
        if protocol not in ("T", "U"):
            raise NotSupportedYet(f"-p {protocol}:{item}",
                                  f"pyscan scans TCP, UDP and ICMP echo (--ping); "
                                  f"{_PROTOCOL_PREFIXES[protocol]} probes are not built yet "
                                  "(accepted: T:PORTS, U:PORTS or PORTS)")
        if item == "-":
            item = "1-65535"
        if not item:
            raise ConfigError(f"bad port list {text!r} (accepted: 80 | 22,80 | 1-1024 | - "
                              "| T:80 | U:53)")
        items.append(f"U:{item}" if protocol == "U" else item)
    return ",".join(items)


@dataclass
class _State:
    plan: Plan
    output_format: str | None = None
    output_path: str | None = None
    append: bool = False
    show_open: bool = True
    show_closed: bool = False
    show_unreachable: bool = False
    interactive: bool = False


def _set(key: str) -> Callable[[_State, str], None]:
    def apply(state: _State, value: str) -> None:
        state.plan.scan[key] = value
    return apply


def _extend(key: str) -> Callable[[_State, str], None]:
    def apply(state: _State, value: str) -> None:
        state.plan.scan.setdefault(key, []).extend(
            part.strip() for part in value.split(",") if part.strip())
    return apply


def _refuse(flag: str, why: str) -> Callable[[_State, str], None]:
    def apply(state: _State, value: str) -> None:
        raise NotSupportedYet(flag, why)
    return apply


def _refuse_when_on(flag: str, why: str) -> Callable[[_State, str], None]:
    def apply(state: _State, value: str) -> None:
        if _bool(value):
            raise NotSupportedYet(flag, why)
    return apply


def _no_op(state: _State, value: str) -> None:
    """masscan options that change nothing in pyscan (it never resolves names, etc.)."""


def _targets(state: _State, value: str) -> None:
    state.plan.targets.extend(part.strip() for part in value.split(",") if part.strip())


def _ports(state: _State, value: str) -> None:
    existing = state.plan.scan.get("ports")
    ports = parse_masscan_ports(value)
    state.plan.scan["ports"] = f"{existing},{ports}" if existing else ports


def _top_ports(state: _State, value: str) -> None:
    if not ascii_digits(value) or not 1 <= int(value) <= len(TOP_TCP_PORTS):
        raise ConfigError(f"bad --top-ports {value!r} (accepted: 1..{len(TOP_TCP_PORTS)})")
    _ports(state, ",".join(str(port) for port in TOP_TCP_PORTS[:int(value)]))


def _ttl(state: _State, value: str) -> None:
    if not ascii_digits(value) or not 1 <= int(value) <= 255:
        raise ConfigError(f"bad --ttl {value!r} (accepted: 1..255)")
    state.plan.scan["ttl"] = int(value)


def _wait(state: _State, value: str) -> None:
    if value == "forever":
        raise NotSupportedYet("--wait forever", "pyscan waits a given number of seconds "
                              "(accepted: --wait SECONDS)")
    state.plan.scan["wait"] = value


def _seed(state: _State, value: str) -> None:
    state.plan.scan["seed"] = str(int(time.time())) if value == "time" else value


def _show(state: _State, value: str, shown: bool) -> None:
    for item in (part.strip() for part in value.split(",")):
        if item == "open":
            state.show_open = shown
        elif item == "closed":
            state.show_closed = shown
        elif item == "unreachable":  # pyscan's own: ICMP unreachables quoting a SYN
            state.show_unreachable = shown
        else:
            flag = "--show" if shown else "--noshow"
            raise ConfigError(f"bad {flag} value {item!r} (accepted: open, closed, "
                              "unreachable)")


def _output_format(state: _State, value: str) -> None:
    name = value.lower()
    if name not in _WRITERS:
        if name in _OUTPUT_LETTERS.values():
            raise NotSupportedYet(f"--output-format {name}", "pyscan writes masscan's list, "
                                  "json, ndjson, grepable and xml formats")
        raise ConfigError(f"unknown --output-format {value!r} (accepted: "
                          f"{', '.join(_WRITERS)})")
    state.output_format = name


def _output_filename(state: _State, value: str) -> None:
    state.output_path = value
    if state.output_format is None:
        state.output_format = "xml"  # masscan's default for a file without a format


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("", "true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise ConfigError(f"bad boolean {value!r} (accepted: true, false)")


def _flag(apply: Callable[[_State, bool], None]) -> Callable[[_State, str], None]:
    def handler(state: _State, value: str) -> None:
        apply(state, _bool(value))
    return handler


def _action(name: str) -> Callable[[_State, bool], None]:
    def apply(state: _State, on: bool) -> None:
        if on:
            state.plan.action = name
    return apply


def _set_attr(attribute: str, to: object = True) -> Callable[[_State, bool], None]:
    def apply(state: _State, on: bool) -> None:
        if on:
            setattr(state, attribute, to)
    return apply


def _offline(state: _State, on: bool) -> None:
    if on:
        state.plan.scan["driver"] = "null"


def _open_only(state: _State, on: bool) -> None:
    if on:
        state.show_open, state.show_closed = True, False


_NOT_YET_BANNERS = "banner grabbing needs a TCP stack pyscan does not have yet"
_RESUME_INDEX = ("pyscan resumes each sending thread where it stopped, from the pause file "
                 "a stopped scan wrote (accepted: --resume paused.conf)")
# masscan's paused.conf, written on Ctrl-C (pyscan's pause state, JSON, under masscan's name)
PAUSE_FILE = "paused.conf"
# What a --resume command line may still set: how fast and how long, never what is sent.
RESUME_CHANGEABLE = ("rate", "wait")

# (takes a value, handler). Keys are masscan's names without '-' and '_'.
_OPTIONS: dict[str, tuple[bool, Callable[[_State, str], None]]] = {
    "ports": (True, _ports), "port": (True, _ports),
    "range": (True, _targets), "ranges": (True, _targets), "dstip": (True, _targets),
    "ip": (True, _targets), "include": (True, _targets),
    "includefile": (True, _extend("include_files")),
    "exclude": (True, _extend("excludes")), "excluderange": (True, _extend("excludes")),
    "excludefile": (True, _extend("exclude_files")),
    "rate": (True, _set("rate")), "maxrate": (True, _set("rate")),
    "adapter": (True, _set("interface")), "interface": (True, _set("interface")),
    "if": (True, _set("interface")),
    "adapterip": (True, _set("source_ip")), "sourceip": (True, _set("source_ip")),
    "srcip": (True, _set("source_ip")),
    "adapterport": (True, _set("source_ports")), "sourceport": (True, _set("source_ports")),
    "srcport": (True, _set("source_ports")),
    "adaptermac": (True, _set("source_mac")), "sourcemac": (True, _set("source_mac")),
    "srcmac": (True, _set("source_mac")),
    "routermac": (True, _set("gateway_mac")), "routermacipv4": (True, _set("gateway_mac_ipv4")),
    "gatewaymac": (True, _set("gateway_mac")),
    "routermacipv6": (True, _set("gateway_mac_ipv6")),  # the scan's family picks one
    "routerip": (True, _set("gateway_ip")),
    "ttl": (True, _ttl), "wait": (True, _wait), "seed": (True, _seed),
    "shard": (True, _set("shard")), "shards": (True, _set("shard")),
    # each retry at least --retry-delay (1 s, masscan's spacing) after the previous probe
    "retries": (True, _set("retries")), "retry": (True, _set("retries")),
    "resume": (True, lambda s, v: setattr(s.plan, "resume_path", v)),
    "resumeindex": (True, _refuse("--resume-index", _RESUME_INDEX)),
    "resumecount": (True, _refuse("--resume-count", _RESUME_INDEX)),
    "topports": (True, _top_ports),
    "ping": (False, _flag(lambda s, on: s.plan.scan.__setitem__("ping", on))),
    "banners": (False, _refuse_when_on("--banners", _NOT_YET_BANNERS)),
    "banner": (False, _refuse_when_on("--banners", _NOT_YET_BANNERS)),
    "capture": (True, _refuse("--capture", _NOT_YET_BANNERS)),
    "nocapture": (True, _no_op),  # what not to keep of banners pyscan does not grab
    "open": (False, _flag(_open_only)), "openonly": (False, _flag(_open_only)),
    "show": (True, lambda s, v: _show(s, v, True)),
    "noshow": (True, lambda s, v: _show(s, v, False)),
    "offline": (False, _flag(_offline)),
    "pcap": (True, lambda s, v: setattr(s.plan, "pcap_path", v)),
    "outputformat": (True, _output_format), "outputfilename": (True, _output_filename),
    "appendoutput": (False, _flag(_set_attr("append"))),
    "interactive": (False, _flag(_set_attr("interactive"))),
    "iflist": (False, _flag(_action("iflist"))),
    "echo": (False, _flag(_action("echo"))),
    "version": (False, _flag(_action("version"))),
    "help": (False, _flag(_action("help"))),
    "randomizehosts": (False, _flag(lambda s, on: None)),
    "sendeth": (False, _flag(lambda s, on: None)),
    "readscan": (True, _refuse("--readscan", "pyscan does not read masscan's binary files")),
    "rotate": (True, _refuse("--rotate", "output file rotation is not built yet")),
    # pyscan's own, so a masscan command line can run in a lab namespace or pick a driver.
    "netns": (True, _set("netns")), "driver": (True, _set("driver")),
}


def _conf(state: _State, value: str, depth: int) -> None:
    if depth > 8:
        raise ConfigError(f"config file {value!r} includes itself (accepted: no loops)")
    try:
        text = Path(value).read_text()
    except OSError as error:
        raise ConfigError(f"cannot read config file {value!r}: {error.strerror} "
                          "(accepted: a readable file of 'name = value' lines)") from None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, equals, setting = line.partition("=")
        if not equals:
            # masscan also takes a bare boolean name on a line ("open-only").
            name, setting = line, ""
        try:
            _apply(state, name.strip(), setting.strip(), depth + 1, from_file=True)
        except ConfigError as error:
            error.args = (f"{value}:{number}: {error}",)  # keep the type (NotSupportedYet)
            raise


def _apply(state: _State, name: str, value: str | None, depth: int = 0,
           from_file: bool = False) -> bool:
    """Apply one option; returns whether it consumed `value`."""
    key = _norm(name)
    if key in ("conf", "config"):
        if value is None:
            raise ConfigError(f"--{name} needs a file (accepted: --{name} FILE)")
        _conf(state, value, depth)
        return True
    if key not in _OPTIONS:
        raise ConfigError(f"unknown masscan option --{name} (accepted: masscan's options, "
                          "see docs/cli.md)")
    takes_value, handler = _OPTIONS[key]
    if takes_value:
        if value is None or (value == "" and not from_file):
            raise ConfigError(f"--{name} needs a value (accepted: --{name} VALUE)")
        handler(state, value)
        return True
    handler(state, "" if value is None else value)
    return value is not None


def _short(state: _State, args: list[str], index: int) -> int:
    """One nmap/masscan short option at args[index]; the index of the next argument."""
    arg = args[index]
    letter, rest = arg[1], arg[2:]

    def value() -> tuple[str, int]:
        if rest:
            return rest, index + 1
        if index + 1 >= len(args):
            raise ConfigError(f"{arg} needs a value (accepted: {arg} VALUE)")
        return args[index + 1], index + 2

    plan = state.plan
    if letter == "p":
        text, following = value()
        _ports(state, text)
        return following
    if letter == "o":
        if len(rest) != 1 or rest not in _OUTPUT_LETTERS:
            raise ConfigError(f"unknown output option {arg} (accepted: -oL -oJ -oD -oG -oX)")
        if index + 1 >= len(args) or (args[index + 1].startswith("-") and args[index + 1] != "-"):
            raise ConfigError(f"{arg} needs a file name (accepted: {arg} FILE, - for stdout)")
        if _OUTPUT_LETTERS[rest] not in _WRITERS:
            raise NotSupportedYet(arg, f"pyscan does not write masscan's "
                                  f"{_OUTPUT_LETTERS[rest]} format (accepted: -oL -oJ -oD -oG "
                                  "-oX)")
        _output_format(state, _OUTPUT_LETTERS[rest])
        state.output_path = args[index + 1]
        return index + 2
    if letter == "i":
        if rest == "L":
            if index + 1 >= len(args):
                raise ConfigError("-iL needs a file (accepted: -iL FILE)")
            _extend("include_files")(state, args[index + 1])
            return index + 2
        if rest == "R":
            raise NotSupportedYet("-iR", "random Internet targets are never scanned by pyscan")
        text, following = value()
        plan.scan["interface"] = text
        return following
    if letter in ("c", "e", "g", "S"):
        text, following = value()
        if letter == "c":
            _conf(state, text, 0)
        else:
            _apply(state, {"e": "adapter", "g": "adapter-port", "S": "adapter-ip"}[letter], text)
        return following
    if letter == "s":
        if not rest:
            raise ConfigError("-s needs a scan type (accepted: -sS, -sL)")
        for kind in rest:
            if kind == "L":
                plan.action = "list-targets"
            elif kind in ("S", "T"):
                plan.notes.append(f"-s{kind}: pyscan sends TCP SYN probes, as masscan does")
            elif kind == "U":
                raise NotSupportedYet("-sU", "masscan names UDP ports in the port list "
                                      "(accepted: -p U:53,U:161)")
            else:
                raise ConfigError(f"unsupported nmap scan type -s{kind} (accepted: -sS, -sL)")
        return index + 1
    if letter == "P":
        if rest != "n":
            raise ConfigError(f"unsupported nmap option {arg} (accepted: -Pn)")
        return index + 1
    if letter == "T" and ascii_digits(rest):
        plan.notes.append(f"{arg}: timing templates change nothing; --rate sets the pace")
        return index + 1
    if letter in ("n", "6") and not rest:
        return index + 1
    if letter in ("v", "d") and set(rest) <= {letter}:
        plan.verbose += 1 + len(rest)
        return index + 1
    if letter in ("h", "?") and not rest:
        plan.action = "help"
        return index + 1
    if letter == "V" and not rest:
        plan.action = "version"
        return index + 1
    if letter == "W" and not rest:
        plan.action = "iflist"
        return index + 1
    raise ConfigError(f"unknown masscan option {arg} (accepted: masscan's options, see "
                      "docs/cli.md)")


def parse_masscan(argv: Sequence[str]) -> Plan:
    """masscan's argv -> Plan (ConfigError / NotSupportedYet on bad or unbuilt options)."""
    state = _State(plan=Plan(tool="masscan", scan=dict(MASSCAN_DEFAULTS)))
    args = list(argv)
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            for target in args[index + 1:]:
                _targets(state, target)
            break
        if arg.startswith("--"):
            name, equals, inline = arg[2:].partition("=")
            key = _norm(name)
            takes_value = key in ("conf", "config") or _OPTIONS.get(key, (False,))[0]
            if equals:
                _apply(state, name, inline)
                index += 1
            elif takes_value:
                _apply(state, name, args[index + 1] if index + 1 < len(args) else None)
                index += 2
            else:
                _apply(state, name, None)
                index += 1
        elif arg.startswith("-") and len(arg) > 1:
            index = _short(state, args, index)
        else:
            _targets(state, arg)
            index += 1
    return _finish(state)


def _finish(state: _State) -> Plan:
    plan = state.plan
    if plan.resume_path is not None:
        return _finish_resume(state)
    if not state.show_open:
        raise NotSupportedYet("--noshow open", "pyscan always reports open ports")
    plan.scan["show_closed"] = state.show_closed
    if state.show_unreachable:
        plan.scan["show_unreachable"] = True
    if state.output_format is not None:
        plan.outputs.append(output(_WRITERS[state.output_format], state.output_path,
                                   append=state.append))
    if state.output_format is None or state.interactive:
        # masscan without an output file: "Discovered open port 80/tcp on IP" on stdout.
        plan.outputs.append(output("masscan-console"))
    if plan.action == "list-targets" and "ports" not in plan.scan and not plan.scan.get("ping"):
        plan.scan["ports"] = "80"  # masscan -sL without ports lists with a pseudo-port 80
    if plan.action in ("scan", "list-targets") and "ports" not in plan.scan:
        if not plan.scan.get("ping"):
            raise ConfigError("no ports given (accepted: -p 80 | -p 22,80,443 | -p- | "
                              "--top-ports N | --ping)")
        plan.scan["ports"] = ""  # --ping alone: an echo per address, no port entries
    return plan


def _finish_resume(state: _State) -> Plan:
    """--resume FILE: the scan comes from the file; options that would change it are refused
    (exit 2), naming each."""
    plan = state.plan
    given = [f"--{key.replace('_', '-')} {value}" for key, value in plan.scan.items()
             if key not in RESUME_CHANGEABLE and MASSCAN_DEFAULTS.get(key) != value]
    given += [f"target {target}" for target in plan.targets]
    if state.output_format is not None:
        given.append(f"-o {state.output_path}")
    if plan.pcap_path is not None:
        given.append(f"--pcap {plan.pcap_path}")
    if given:
        raise ConfigError(f"--resume {plan.resume_path} takes the scan's options from the file; "
                          f"these change it: {', '.join(given)} (accepted with --resume: "
                          "--rate, --wait)")
    plan.action = "resume"
    return plan


def echo_lines(plan: Plan) -> list[str]:
    """masscan --echo: the parsed configuration as `name = value` lines that -c reads back."""
    scan = plan.scan
    lines = []
    for key, name in (("seed", "seed"), ("rate", "rate"), ("shard", "shard")):
        if key in scan:
            lines.append(f"{name} = {scan[key]}")
    for key, name in (("interface", "adapter"), ("source_ip", "adapter-ip"),
                      ("source_ports", "adapter-port"), ("source_mac", "adapter-mac"),
                      ("gateway_mac", "router-mac"), ("gateway_mac_ipv4", "router-mac-ipv4"),
                      ("gateway_mac_ipv6", "router-mac-ipv6"), ("gateway_ip", "router-ip"),
                      ("ttl", "ttl"), ("wait", "wait")):
        if key in scan:
            lines.append(f"{name} = {scan[key]}")
    shown = [name for name in ("closed", "unreachable") if scan.get(f"show_{name}")]
    if shown:
        lines.append(f"show = open,{','.join(shown)}")
    for spec in plan.outputs:
        if spec.format != "masscan-console":
            lines.append(f"output-format = {spec.format.removeprefix('masscan-')}")
            lines.append(f"output-filename = {spec.path}")
    lines.append("# TARGET SELECTION (IP, PORTS, EXCLUDES)")
    if scan.get("ports"):
        lines.append(f"ports = {scan['ports']}")
    if scan.get("ping"):
        lines.append("ping = true")
    for target in plan.targets:
        lines.append(f"range = {target}")
    for path in scan.get("include_files", []):
        lines.append(f"include-file = {path}")
    for exclude in scan.get("excludes", []):
        lines.append(f"exclude = {exclude}")
    for path in scan.get("exclude_files", []):
        lines.append(f"exclude-file = {path}")
    return lines
