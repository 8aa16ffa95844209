"""zmap-style CSV with a header row: saddr,sport,classification,success,ttl,timestamp, then the
reply's window, TCP options and RTT (window,tcpopt_mss,...,rtt_us; empty when not known).

`saddr`/`sport` are the replying host and port (zmap's names, from the reply's point of view);
`classification` is zmap's `synack` or `rst`; `success` is 1 for open.
"""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING

from pyscan.output.base import TCP_FIELDS, ResultWriter, tcp_fields

if TYPE_CHECKING:
    from pyscan.scanner import Result

COLUMNS = ("saddr", "sport", "classification", "success", "ttl", "timestamp", *TCP_FIELDS)


class CsvWriter(ResultWriter):
    name = "csv"
    description = ("zmap-style CSV: saddr,sport,classification,success,ttl,timestamp,window,"
                   "tcpopt_*,rtt_us")

    def open(self) -> None:
        self._csv = csv.writer(self.stream, lineterminator="\n")
        self._csv.writerow(COLUMNS)

    def reopen(self) -> None:
        self._csv = csv.writer(self.stream, lineterminator="\n")

    def write_record(self, result: Result) -> None:
        is_open = result.status == "open"
        self._csv.writerow((
            result.ip, result.port, "synack" if is_open else "rst", int(is_open), result.ttl,
            f"{result.timestamp:.6f}",
            *("" if value is None else int(value) for value in tcp_fields(result).values()),
        ))
