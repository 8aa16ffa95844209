"""masscan -oG, byte for byte (src/out-grepable.c): masscan's `# Masscan 1.3.2 scan
initiated` header with the scanned port ranges, one `Timestamp: T<TAB>Host: IP ()<TAB>Ports:
P/status/proto//service//` line per result with the system's service name, and the
`# Masscan done at` trailer."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pyscan.output.masscan.common import (
    MASSCAN_VERSION,
    MasscanWriter,
    ctime_utc,
    nmap_state,
    port_ranges,
    protocol_of,
    service_name,
)

if TYPE_CHECKING:
    from pyscan.scanner import Result


class MasscanGrepableWriter(MasscanWriter):
    name = "masscan-grepable"
    description = "masscan -oG: nmap grepable lines with service names"

    def header(self) -> None:
        ranges = port_ranges(self.ports)
        listed = ",".join(f"{first}-{last}" for first, last in ranges)
        count = sum(last - first + 1 for first, last in ranges)
        self.stream.write(
            f"# Masscan {MASSCAN_VERSION} scan initiated {ctime_utc(self.started)}\n"
            f"# Ports scanned: TCP({count};{listed}) UDP(0;) SCTP(0;) PROTOCOLS(0;)\n"
        )

    def write_record(self, result: Result) -> None:
        protocol = protocol_of(result)
        self.stream.write(
            f"Timestamp: {int(result.timestamp)}\tHost: {result.ip} ()"
            f"\tPorts: {result.port}/{nmap_state(result)}/{protocol}//"
            f"{service_name(result.port, protocol)}//\n"
        )

    def trailer(self) -> None:
        self.stream.write(f"# Masscan done at {ctime_utc(time.time())}\n")
