"""masscan and zmap spellings rewritten into this CLI's options before click parses them.

Click would read masscan's ``-oL`` as ``-o L``, so the whole argument list is rewritten first.
A masscan spelling means masscan's file: ``-oL f`` -> ``--output f --format masscan-list``
(pyscan's clean schemas stay ``--format list|ndjson|json|csv|grepable``). zmap's ``-O csv``
and ``-O json`` name its output modules (``--format zmap-csv``); any other ``-O`` stays a
driver option. Also ``-p-``, ``-sL``, ``-iL``, ``--show closed``, ...
"""

from __future__ import annotations

from collections.abc import Sequence

from pyscan.errors import ConfigError, NotSupportedYet
from pyscan.output import FORMAT_NAMES

__all__ = ["masscan_spellings_help", "rewrite_argv"]

_MASSCAN_OUTPUT_FLAGS = {"-oL": "masscan-list", "-oJ": "masscan-json", "-oD": "masscan-ndjson",
                         "-oG": "masscan-grepable", "-oX": "masscan-xml", "-oC": "csv"}
_UNSUPPORTED_OUTPUT_FLAGS = {"-oB": "binary", "-oU": "unicornscan", "-oH": "host-only",
                             "-oR": "redis"}
_ZMAP_MODULES = {"csv": "zmap-csv", "json": "zmap-json"}
_ALIASES = {
    "-sL": "--list-targets",
    "-iL": "--include-file",
    "--includefile": "--include-file",
    "--excludefile": "--exclude-file",
    # zmap before 3.0 spelled -b/-w this way
    "--blacklist-file": "--blocklist-file",
    "--whitelist-file": "--allowlist-file",
    "--max-rate": "--rate",
    "--adapter": "--interface",
    "--router-mac": "--gateway-mac",
    "--router-ip": "--gateway-ip",
    "--adapter-mac": "--source-mac",
    "--adapter-ip": "--source-ip",
    "--adapter-port": "--source-port",
    "--open": "--open-only",
    "--offline": "--dry-run",
    "--probe-args": "--tcp-options",   # zmap: --probe-args=windows|linux|bsd|smallest-probes
}


def _value(items: list[str], index: int, equals: str, tail: str) -> str:
    """The value of the option at items[index]: after '=', else the next argument."""
    if equals:
        return tail
    return items[index + 1] if index + 1 < len(items) else ""


def rewrite_argv(args: Sequence[str]) -> list[str]:
    """masscan/zmap habits -> this CLI's options: `-oL f` -> `-o f --format list`, `-sL`,
    `-iL`, `--show closed,unreachable`, `--excludefile`, `--max-rate`, ..."""
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
            raise NotSupportedYet(
                head, f"pyscan does not write masscan's {_UNSUPPORTED_OUTPUT_FLAGS[head]} "
                f"output (accepted: {accepted}, or --format {'|'.join(FORMAT_NAMES)})")
        elif head in ("-O", "--output-module") and _value(items, index, equals, tail) in \
                _ZMAP_MODULES:
            # zmap's -O csv|json: its output module; -O KEY=VALUE stays a driver option.
            module = _value(items, index, equals, tail)
            index += 0 if equals else 1
            out += ["--format", _ZMAP_MODULES[module]]
        elif arg == "-p-":
            out += ["-p", "1-65535"]  # nmap's and masscan's spelling of every port
        elif head in _ALIASES:
            out.append(_ALIASES[head] + (equals + tail if equals else ""))
        elif head in ("--show", "--noshow"):
            # masscan: --show closed / --noshow closed; a comma list (closed,unreachable)
            value = tail if equals else (items[index + 1] if index + 1 < len(items) else "")
            if not equals:
                index += 1
            out += _show_flags(head, value)
        else:
            out.append(arg)
        index += 1
    return out


_SHOW_FLAGS = {"open": None, "closed": "--show-closed", "unreachable": "--show-unreachable"}


def _show_flags(head: str, value: str) -> list[str]:
    """--show A,B / --noshow A: the flags of each listed status (open is always shown)."""
    accepted = "open, closed, unreachable" if head == "--show" else "open, closed"
    flags: list[str] = []
    for item in value.split(","):
        if item not in _SHOW_FLAGS or (head == "--noshow" and item == "unreachable"):
            raise ConfigError(f"bad {head} value {item!r} (accepted: {accepted}, or a comma "
                              "list of them)")
        flag = _SHOW_FLAGS[item] if head == "--show" else \
            ("--open-only" if item == "closed" else None)
        if flag is not None and flag not in flags:
            flags.append(flag)
    return flags


def masscan_spellings_help() -> str:
    """The spellings rewrite_argv accepts, for `pyscan scan --help` (from the same tables,
    so the help cannot list one that is not read)."""
    outputs = " ".join(f"{flag} FILE" for flag in _MASSCAN_OUTPUT_FLAGS if flag != "-oC")
    aliases = ", ".join(f"{old} = {new}" for old, new in _ALIASES.items())
    return (f"masscan spellings also work: {outputs} (masscan's own file formats; - is "
            "standard output), -p- (every port), --show closed|unreachable (or a comma "
            f"list), --noshow closed, {aliases}. "
            "zmap's -O csv | -O json pick its output modules. `pyscan masscan ARGS` and "
            "`pyscan zmap ARGS` take those tools' whole command lines (docs/cli.md).")
