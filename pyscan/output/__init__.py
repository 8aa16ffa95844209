"""Output formats: one module per format, literal registries, one way to open a writer.

- `FORMATS[name]`: pyscan's own clean schemas (`--format list|ndjson|json|csv|grepable`).
- `MASSCAN_FORMATS[letter]`: masscan 1.3.2's bytes for `-o<letter>` (L J D G X).
- `ZMAP_MODULES[name]`: zmap's csv and json output modules (`-O csv|json`).
- `WRITERS[name]`: all of them by one name each (`list`, ..., `masscan-json`, `zmap-csv`).

`open_writer(path, name, ...)` opens a file (or standard output for None or "-") and returns
a writer whose `close()` also closes the file it opened; writers are context managers.
`OutputSpec` is one output's settings (path, writer, its options): a scan's `ScanConfig`
does not carry it, since a scan produces results whether or not anything writes them.
This is the public way to write pyscan's files from the API:

    with pyscan.scan(config) as run, open_writer("out.xml", "masscan-xml",
                                                  ports=config.ports,
                                                  udp_ports=config.udp_ports,
                                                  ping=config.ping) as out:
        for result in run:
            out.write(result)
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pyscan.config import ConfigError
from pyscan.output.base import ResultWriter, reason_of
from pyscan.output.csv import CsvWriter
from pyscan.output.grepable import GrepableWriter
from pyscan.output.json import JsonWriter
from pyscan.output.list import ListWriter
from pyscan.output.masscan import MASSCAN_FORMATS, MasscanConsoleWriter
from pyscan.output.ndjson import NdjsonWriter
from pyscan.output.zmap import ZMAP_MODULES

if TYPE_CHECKING:
    from pyscan.scanner import Result

__all__ = ["FORMATS", "FORMAT_NAMES", "MASSCAN_FORMATS", "STDOUT", "WRITERS", "ZMAP_MODULES",
           "OutputSpec", "ResultWriter", "is_stdout", "open_writer", "reason_of",
           "write_results"]

STDOUT = "-"  # as an output path: standard output, as masscan and zmap read it

FORMATS: dict[str, type[ResultWriter]] = {
    "list": ListWriter,
    "ndjson": NdjsonWriter,
    "json": JsonWriter,
    "csv": CsvWriter,
    "grepable": GrepableWriter,
}
FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)

WRITERS: dict[str, type[ResultWriter]] = {
    **FORMATS,
    **{writer.name: writer for writer in MASSCAN_FORMATS.values()},
    MasscanConsoleWriter.name: MasscanConsoleWriter,
    **{writer.name: writer for writer in ZMAP_MODULES.values()},
}


def is_stdout(path: str | Path | None) -> bool:
    return path is None or str(path) == STDOUT


def open_writer(
    path: str | Path | None,
    name: str | type[ResultWriter],
    *,
    started: float | None = None,
    ports: Iterable[int] = (),
    stream: TextIO | None = None,
    append: bool = False,
    udp_ports: Iterable[int] = (),
    ping: bool = False,
    **options: Any,
) -> ResultWriter:
    """A writer for format `name` (a WRITERS key or a writer class) on file `path`, on
    `stream`, or on standard output (path None or "-"). `started`: the scan's start time
    (default now); `ports`, `udp_ports`, `ping`: what was scanned (TCP ports, UDP ports, an
    ICMP echo per address: -oG's and -oX's headers); `append`: add to the file (masscan's
    --append-output); `options`: the format's own (zmap: fields, output_filter)."""
    if isinstance(name, str):
        if name not in WRITERS:
            raise ValueError(f"unknown output format {name!r} (accepted: {', '.join(WRITERS)})")
        writer_class = WRITERS[name]
    else:
        writer_class = name
    started = time.time() if started is None else started
    port_tuple, udp_tuple = tuple(ports), tuple(udp_ports)
    if is_stdout(path):
        target = stream if stream is not None else sys.stdout
        return writer_class(target, started=started, ports=port_tuple, udp_ports=udp_tuple,
                            ping=ping, **options)
    try:
        assert path is not None  # is_stdout() took None
        if append:
            file = open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        else:
            file = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as error:
        raise OSError(f"cannot write output file {str(path)!r}: {error.strerror}") from None
    try:
        return writer_class(file, started=started, ports=port_tuple, udp_ports=udp_tuple,
                            ping=ping, owns_stream=True, **options)
    except BaseException:
        file.close()
        raise


def write_results(results: Iterable[Result], path: str | Path | None, name: str,
                  **options: Any) -> int:
    """Write every result to `path` in format `name` (see open_writer); the record count."""
    with open_writer(path, name, **options) as writer:
        for result in results:
            writer.write(result)
    return writer.records


@dataclass(frozen=True)
class OutputSpec:
    """One output: where (None or "-" = standard output), which writer (a WRITERS name: a
    clean `--format`, a masscan `-o` format, a zmap module), masscan's --append-output, and
    the writer's own options (zmap: fields, output_filter, only_success, header_row)."""

    path: Path | None = None
    format: str = "list"
    append: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.format not in WRITERS:
            raise ConfigError(
                f"unknown output format {self.format!r} (accepted: {', '.join(FORMAT_NAMES)}, "
                f"or {', '.join(name for name in WRITERS if name not in FORMATS)})"
            )

    @classmethod
    def parse(cls, path: str | Path | None, format: str = "list", *, append: bool = False,
              **options: Any) -> OutputSpec:
        """From command-line text; raises ConfigError on an unknown format."""
        return cls(path=Path(path) if path is not None else None, format=format,
                   append=append, options=options)

    @property
    def to_stdout(self) -> bool:
        return is_stdout(self.path)

    def check_writable(self) -> None:
        """ConfigError now, before a scan starts, when the file could not be written later;
        the file itself is not created."""
        if self.path is None or self.to_stdout:
            return
        target, shown = self.path, str(self.path)
        directory = target.parent if str(target.parent) else Path(".")
        if target.is_dir():
            raise ConfigError(f"output {shown!r} is a directory (accepted: a file path)")
        if not directory.is_dir():
            raise ConfigError(f"output directory {str(directory)!r} does not exist (accepted: "
                              "a file path in an existing directory)")
        if not os.access(directory, os.W_OK) or (
                target.exists() and not os.access(target, os.W_OK)):
            raise ConfigError(f"output {shown!r} is not writable (accepted: a writable file path)")

    def open(self, *, started: float, ports: tuple[int, ...] = (),
             stream: TextIO | None = None, udp_ports: tuple[int, ...] = (),
             ping: bool = False) -> ResultWriter:
        """The writer: on the file, on ``stream``, or on standard output. ``ports``,
        ``udp_ports``, ``ping``: what the scan sends (ScanConfig's fields of those names)."""
        return open_writer(self.path, self.format, started=started, ports=ports, stream=stream,
                           append=self.append, udp_ports=udp_ports, ping=ping,
                           **dict(self.options))
