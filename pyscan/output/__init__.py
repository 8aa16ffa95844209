"""Output formats: one module per format, literal registries, one way to open a writer.

- `FORMATS[name]`: pyscan's own clean schemas (`--format list|ndjson|json|csv|grepable`).
- `MASSCAN_FORMATS[letter]`: masscan 1.3.2's bytes for `-o<letter>` (L J D G X).
- `ZMAP_MODULES[name]`: zmap's csv and json output modules (`-O csv|json`).
- `WRITERS[name]`: all of them by one name each (`list`, ..., `masscan-json`, `zmap-csv`).

`open_writer(path, name, ...)` opens a file (or standard output for None or "-") and returns
a writer whose `close()` also closes the file it opened; writers are context managers. This is
the public way to write pyscan's files from the API:

    with pyscan.scan(config) as run, open_writer("out.xml", "masscan-xml",
                                                  ports=config.ports) as out:
        for result in run:
            out.write(result)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

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

__all__ = ["FORMATS", "MASSCAN_FORMATS", "STDOUT", "WRITERS", "ZMAP_MODULES", "ResultWriter",
           "open_writer", "reason_of", "write_results"]

STDOUT = "-"  # as an output path: standard output, as masscan and zmap read it

FORMATS: dict[str, type[ResultWriter]] = {
    "list": ListWriter,
    "ndjson": NdjsonWriter,
    "json": JsonWriter,
    "csv": CsvWriter,
    "grepable": GrepableWriter,
}

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
    **options: Any,
) -> ResultWriter:
    """A writer for format `name` (a WRITERS key or a writer class) on file `path`, on
    `stream`, or on standard output (path None or "-"). `started`: the scan's start time
    (default now); `ports`: the scanned ports (-oG's header); `append`: add to the file
    (masscan's --append-output); `options`: the format's own (zmap: fields, output_filter)."""
    if isinstance(name, str):
        if name not in WRITERS:
            raise ValueError(f"unknown output format {name!r} (accepted: {', '.join(WRITERS)})")
        writer_class = WRITERS[name]
    else:
        writer_class = name
    started = time.time() if started is None else started
    port_tuple = tuple(ports)
    if is_stdout(path):
        target = stream if stream is not None else sys.stdout
        return writer_class(target, started=started, ports=port_tuple, **options)
    try:
        mode = "a" if append else "w"
        file = open(path, mode, encoding="utf-8", newline="")  # type: ignore[arg-type]  # noqa: SIM115
    except OSError as error:
        raise OSError(f"cannot write output file {str(path)!r}: {error.strerror}") from None
    try:
        return writer_class(file, started=started, ports=port_tuple, owns_stream=True,
                            **options)
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
