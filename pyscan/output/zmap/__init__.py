"""zmap's output side: the csv and json output modules with zmap's field names, -f field
selection, --output-filter, zmap's default output and -m metadata.

`ZMAP_MODULES[name]` is the writer for `-O name`; `zmap_default_writer` is what zmap writes
without -O: the addresses that answered SYN-ACK, one per line (and the port with them when
several ports are scanned, as zmap 4 does).
"""

from __future__ import annotations

from typing import TextIO

from pyscan.output.zmap.csv import ZmapCsvWriter
from pyscan.output.zmap.fields import (
    FIELDS,
    ZmapFieldError,
    available_fields,
    parse_output_fields,
    zmap_record,
)
from pyscan.output.zmap.filter import FilterError, OutputFilter, parse_filter
from pyscan.output.zmap.json import ZmapJsonWriter
from pyscan.output.zmap.metadata import ZmapRunInfo, zmap_metadata, zmap_metadata_json
from pyscan.output.zmap.writer import ZmapWriter

__all__ = [
    "FIELDS",
    "ZMAP_MODULES",
    "FilterError",
    "OutputFilter",
    "ZmapCsvWriter",
    "ZmapFieldError",
    "ZmapJsonWriter",
    "ZmapRunInfo",
    "ZmapWriter",
    "available_fields",
    "default_fields",
    "parse_filter",
    "parse_output_fields",
    "zmap_default_writer",
    "zmap_metadata",
    "zmap_metadata_json",
    "zmap_record",
]

ZMAP_MODULES: dict[str, type[ZmapWriter]] = {
    "csv": ZmapCsvWriter,
    "json": ZmapJsonWriter,
}


def default_fields(ports: tuple[int, ...]) -> tuple[str, ...]:
    """zmap's -f default: saddr, plus sport when several ports are scanned (zmap 4)."""
    return ("saddr", "sport") if len(ports) > 1 else ("saddr",)


def zmap_default_writer(stream: TextIO, *, started: float, ports: tuple[int, ...] = (),
                        owns_stream: bool = False,
                        output_filter: OutputFilter | None = None,
                        udp_ports: tuple[int, ...] = (), ping: bool = False) -> ZmapCsvWriter:
    """zmap without -O: csv, default fields, successes only, no header row."""
    writer = ZmapCsvWriter(stream, started=started, ports=ports, owns_stream=owns_stream,
                           fields=default_fields(ports), output_filter=output_filter,
                           only_success=True, header_row=False, udp_ports=udp_ports,
                           ping=ping)
    return writer
