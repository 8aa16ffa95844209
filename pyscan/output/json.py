"""masscan -oJ records in one valid JSON array, streamed.

Each element has masscan's shape, `{"ip", "timestamp", "ports": [{"port", "proto", "status",
"reason", "ttl", ...}]}`, so existing -oJ consumers keep working (the reply's window, TCP
options and RTT follow `ttl` under zmap's names). masscan's -oJ was invalid for
years (trailing comma, missing `]`); here the comma goes before every element but the first
and `]` is written on close, so 0, 1 or n records all parse.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from pyscan.output.base import ResultWriter, reason_of, tcp_fields

if TYPE_CHECKING:
    from pyscan.scanner import Result


class JsonWriter(ResultWriter):
    name = "json"
    description = "a JSON array of masscan -oJ objects (valid JSON, streamed)"

    def open(self) -> None:
        self.stream.write("[\n")

    def write_record(self, result: Result) -> None:
        element = {
            "ip": str(result.ip),
            "timestamp": int(result.timestamp),
            "ports": [{
                "port": result.port,
                "proto": "tcp",
                "status": result.status,
                "reason": reason_of(result.status),
                "ttl": result.ttl,
                **tcp_fields(result),
            }],
        }
        separator = "" if self.records == 1 else ",\n"
        self.stream.write(separator + json.dumps(element, separators=(",", ":")))

    def finish(self) -> None:
        self.stream.write("\n]\n" if self.records else "]\n")
