"""zmap-style CSV with a header row: saddr,sport,classification,success,ttl,timestamp, then the
reply's window, TCP options and RTT (window,tcpopt_mss,...,rtt_us; empty when not known), and
the ICMP type and code of an ICMP reply (icmp_type,icmp_code; empty otherwise).

`saddr`/`sport` are the replying host and port (zmap's names, from the reply's point of view);
`classification` is what zmap's probe module for the result's protocol writes: `synack`, `rst`,
`icmp` (an ICMP error quoting the SYN) for TCP; `udp`, `icmp` for UDP; `echoreply`, `unreach`
for ICMP echo; `success` is 1 for open and up.
"""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING

from pyscan.output.base import TCP_FIELDS, ResultWriter, tcp_fields
from pyscan.output.zmap.fields import classification

if TYPE_CHECKING:
    from pyscan.scanner import Result

COLUMNS = ("saddr", "sport", "classification", "success", "ttl", "timestamp", *TCP_FIELDS,
           "icmp_type", "icmp_code")


class CsvWriter(ResultWriter):
    name = "csv"
    description = ("zmap-style CSV: saddr,sport,classification,success,ttl,timestamp,window,"
                   "tcpopt_*,rtt_us,icmp_type,icmp_code")

    def open(self) -> None:
        self._csv = csv.writer(self.stream, lineterminator="\n")
        self._csv.writerow(COLUMNS)

    def reopen(self) -> None:
        self._csv = csv.writer(self.stream, lineterminator="\n")

    def write_record(self, result: Result) -> None:
        is_open = result.status == "open"
        self._csv.writerow((
            result.ip, result.port, classification(result), int(is_open or result.status == "up"),
            result.ttl, f"{result.timestamp:.6f}",
            *("" if value is None else int(value) for value in tcp_fields(result).values()),
            *("" if value is None else value
              for value in (getattr(result, "icmp_type", None),
                            getattr(result, "icmp_code", None))),
        ))
