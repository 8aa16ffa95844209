"""What a masscan or zmap command line asks for, in pyscan's terms: a `Plan`.

The personality parsers (masscan.py, zmap.py) turn argv into a Plan without touching the
network or the file system beyond reading the config files the command line names; the CLI
runs it. A flag that needs a capability pyscan does not have yet raises `NotSupportedYet`,
naming the flag; every other bad value raises `ConfigError` naming the value and what is
accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyscan.config import ConfigError

__all__ = ["NotSupportedYet", "OutputPlan", "Plan"]


class NotSupportedYet(ConfigError):
    """A flag the anchor tool has and pyscan will have, but does not yet."""

    def __init__(self, flag: str, why: str) -> None:
        super().__init__(f"{flag} is not supported yet: {why}")
        self.flag = flag


@dataclass
class OutputPlan:
    """One output: a writer name from pyscan.output.WRITERS, a path (None or "-" = standard
    output), masscan's --append-output, and the writer's own options."""

    writer: str
    path: str | None = None
    append: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    """A parsed masscan/zmap command line. `scan` holds ScanConfig.parse's keyword
    arguments; `action` is what to do: scan, or one of the tools' information commands."""

    tool: str
    targets: list[str] = field(default_factory=list)
    scan: dict[str, Any] = field(default_factory=dict)
    outputs: list[OutputPlan] = field(default_factory=list)
    action: str = "scan"   # scan | list-targets | echo | iflist | list-output-fields | ...
    quiet: bool = False
    verbose: int = 0
    metadata_path: str | None = None
    pcap_path: str | None = None
    notes: list[str] = field(default_factory=list)
