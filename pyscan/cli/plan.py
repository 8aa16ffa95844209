"""What a masscan or zmap command line asks for, in pyscan's terms: a `Plan`.

The personality parsers (cli/masscan.py, cli/zmap.py) turn argv into a Plan without touching
the network or writing anything (they read the config files the command line names);
cli/personality.py carries it out. A flag that needs a capability pyscan has not built yet
raises `NotSupportedYet`, naming the flag; every other bad value raises `ConfigError` naming
the value and what is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyscan.errors import NotSupportedYet
from pyscan.output import OutputSpec

__all__ = ["NotSupportedYet", "Plan", "output"]


def output(writer: str, path: str | None = None, *, append: bool = False,
           **options: Any) -> OutputSpec:
    """One output of a plan: a pyscan.output.WRITERS name, a path (None or "-" = standard
    output), masscan's --append-output, the writer's own options."""
    return OutputSpec.parse(path, writer, append=append, **options)


@dataclass
class Plan:
    """A parsed masscan/zmap command line. `scan` holds ScanConfig.parse's keyword
    arguments; `action` is what to do: scan, or one of the tools' information commands."""

    tool: str
    targets: list[str] = field(default_factory=list)
    scan: dict[str, Any] = field(default_factory=dict)
    outputs: list[OutputSpec] = field(default_factory=list)
    action: str = "scan"   # scan | list-targets | echo | iflist | list-output-fields | ...
    quiet: bool = False
    verbose: int = 0
    metadata_path: str | None = None
    pcap_path: str | None = None
    notes: list[str] = field(default_factory=list)
    resume_path: str | None = None  # masscan --resume paused.conf
