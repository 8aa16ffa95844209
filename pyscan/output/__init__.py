"""Output formats: one module per format, one literal registry, and the output settings.

`FORMATS[name]` is the writer class; `open_writer(path, name, ...)` opens the file (or uses
standard output when path is None) and returns a writer whose `close()` also closes the file
it opened. `OutputSpec` is where results go and in which format: a scan's `ScanConfig` does
not carry it, since a scan produces results whether or not anything writes them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pyscan.config import ConfigError
from pyscan.output.base import ResultWriter, reason_of
from pyscan.output.csv import CsvWriter
from pyscan.output.grepable import GrepableWriter
from pyscan.output.json import JsonWriter
from pyscan.output.list import ListWriter
from pyscan.output.ndjson import NdjsonWriter

__all__ = ["FORMATS", "FORMAT_NAMES", "OutputSpec", "ResultWriter", "open_writer", "reason_of"]

FORMATS: dict[str, type[ResultWriter]] = {
    "list": ListWriter,
    "ndjson": NdjsonWriter,
    "json": JsonWriter,
    "csv": CsvWriter,
    "grepable": GrepableWriter,
}
FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)


def open_writer(
    path: Path | None,
    name: str,
    *,
    started: float,
    ports: tuple[int, ...] = (),
    stream: TextIO | None = None,
) -> ResultWriter:
    """A writer for format `name` on file `path`, on `stream`, or on standard output."""
    writer_class = FORMATS[name]
    if path is None:
        target = stream if stream is not None else sys.stdout
        return writer_class(target, started=started, ports=ports)
    try:
        file = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - writer closes it
    except OSError as error:
        raise OSError(f"cannot write output file {str(path)!r}: {error.strerror}") from None
    try:
        return writer_class(file, started=started, ports=ports, owns_stream=True)
    except BaseException:
        file.close()
        raise


@dataclass(frozen=True)
class OutputSpec:
    """Where results are written (None = standard output) and in which format."""

    path: Path | None = None
    format: str = "list"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(
                f"unknown output format {self.format!r} (accepted: {', '.join(FORMAT_NAMES)})"
            )

    @classmethod
    def parse(cls, path: str | Path | None, format: str = "list") -> OutputSpec:
        """From command-line text; raises ConfigError on an unknown format."""
        return cls(path=Path(path) if path is not None else None, format=format)

    def check_writable(self) -> None:
        """ConfigError now, before a scan starts, when the file could not be written later;
        the file itself is not created."""
        if self.path is None:
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
             stream: TextIO | None = None) -> ResultWriter:
        """The writer: on the file, on ``stream``, or on standard output."""
        return open_writer(self.path, self.format, started=started, ports=ports, stream=stream)
