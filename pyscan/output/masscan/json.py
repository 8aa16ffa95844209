"""masscan -oJ, byte for byte (src/out-json.c): `[`, one `{ ... }` object per line with a
comma line between them, `]`. Timestamps are strings, as masscan writes them.

Where masscan is broken this is not: masscan writes the brackets only around records, so an
empty scan leaves an empty file, which no JSON reader accepts. Here an empty scan is `[\\n]\\n`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyscan.output.masscan.common import (
    MasscanWriter,
    masscan_reason,
    masscan_status,
    protocol_of,
)

if TYPE_CHECKING:
    from pyscan.scanner import Result


class MasscanJsonWriter(MasscanWriter):
    name = "masscan-json"
    description = "masscan -oJ: a JSON array, one object per port, string timestamps"
    always_complete = True

    def header(self) -> None:
        self.stream.write("[\n")

    def write_record(self, result: Result) -> None:
        separator = ",\n" if self.records > 1 else ""
        self.stream.write(
            f'{separator}{{   "ip": "{result.ip}",   "timestamp": "{int(result.timestamp)}", '
            f'"ports": [ {{"port": {result.port}, "proto": "{protocol_of(result)}", '
            f'"status": "{masscan_status(result)}", "reason": "{masscan_reason(result)}", '
            f'"ttl": {result.ttl}}} ] }}\n'
        )

    def trailer(self) -> None:
        self.stream.write("]\n")
