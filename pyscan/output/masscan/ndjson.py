"""masscan -oD, byte for byte: status, reason and ttl nested under `data`, a `rec_type`, and
the timestamp as a string (src/out-ndjson.c), so `jq 'select(.data.status=="open")'` and
DuckDB's `data.status` work on pyscan's files as on masscan's."""

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


class MasscanNdjsonWriter(MasscanWriter):
    name = "masscan-ndjson"
    description = "masscan -oD: one JSON object per line, status under data"

    def write_record(self, result: Result) -> None:
        self.stream.write(
            f'{{"ip":"{result.ip}","timestamp":"{int(result.timestamp)}",'
            f'"port":{result.port},"proto":"{protocol_of(result)}","rec_type":"status",'
            f'"data":{{"status":"{masscan_status(result)}","reason":"{masscan_reason(result)}",'
            f'"ttl":{result.ttl}}}}}\n'
        )
