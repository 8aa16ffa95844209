"""masscan and zmap spellings rewritten into this CLI's options before click parses them.

Click would read masscan's ``-oL`` as ``-o L``, so the whole argument list is rewritten first:
``-oL f`` -> ``--output f --format list``, ``-sL``, ``-iL``, ``--show closed``, ...
"""

from __future__ import annotations

from collections.abc import Sequence

from pyscan.config import ConfigError
from pyscan.output import FORMAT_NAMES

__all__ = ["rewrite_argv"]

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
                f"(accepted: {accepted}, or --format {'|'.join(FORMAT_NAMES)})"
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
