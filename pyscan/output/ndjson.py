"""masscan -oD style newline-delimited JSON, flattened: one object per result, per line.

masscan nests status/reason/ttl under "data" and quotes the timestamp; we keep every field at
the top level with its natural JSON type, so `jq 'select(.status=="open") | .ip'` just works.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pyscan.output.base import ResultWriter, reason_of, tcp_fields

if TYPE_CHECKING:
    from pyscan.scanner import Result


def result_record(result: Result) -> dict[str, object]:
    return {
        "ip": str(result.ip),
        "timestamp": int(result.timestamp),
        "port": result.port,
        "proto": "tcp",
        "status": result.status,
        "reason": reason_of(result.status),
        "ttl": result.ttl,
        **tcp_fields(result),
    }


class NdjsonWriter(ResultWriter):
    name = "ndjson"
    description = ("one JSON object per line: ip, timestamp, port, proto, status, reason, ttl, "
                   "window, tcpopt_*, rtt_us")

    def write_record(self, result: Result) -> None:
        self.stream.write(json.dumps(result_record(result), separators=(",", ":")) + "\n")
