"""Output formats: one module per format, one literal registry.

`FORMATS[name]` is the writer class; `open_writer(path, name, ...)` opens the file (or uses
standard output when path is None) and returns a writer whose `close()` also closes the file
it opened.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from pyscan.output.base import ResultWriter, reason_of
from pyscan.output.csv import CsvWriter
from pyscan.output.grepable import GrepableWriter
from pyscan.output.json import JsonWriter
from pyscan.output.list import ListWriter
from pyscan.output.ndjson import NdjsonWriter

__all__ = ["FORMATS", "ResultWriter", "open_writer", "reason_of"]

FORMATS: dict[str, type[ResultWriter]] = {
    "list": ListWriter,
    "ndjson": NdjsonWriter,
    "json": JsonWriter,
    "csv": CsvWriter,
    "grepable": GrepableWriter,
}


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
