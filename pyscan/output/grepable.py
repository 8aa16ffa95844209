"""masscan -oG (nmap grepable): `Timestamp: T<TAB>Host: IP ()<TAB>Ports: P/open/tcp////`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pyscan.output.base import ResultWriter

if TYPE_CHECKING:
    from pyscan.scanner import Result

_CTIME = "%a %b %d %H:%M:%S %Y"


def _port_ranges(ports: tuple[int, ...]) -> str:
    ranges: list[str] = []
    start = previous = None
    for port in ports:
        if previous is not None and port == previous + 1:
            previous = port
            continue
        if start is not None:
            ranges.append(f"{start}-{previous}")
        start = previous = port
    if start is not None:
        ranges.append(f"{start}-{previous}")
    return ",".join(ranges)


class GrepableWriter(ResultWriter):
    name = "grepable"
    description = "masscan/nmap grepable lines: Host: ... Ports: port/status/tcp////"

    def open(self) -> None:
        started = time.strftime(_CTIME, time.gmtime(self.started))
        self.stream.write(f"# pyscan scan initiated {started}\n")
        # masscan's layout with plain port numbers (masscan -oG writes UDP port p as
        # 65536 + p: pyscan.output.masscan.grepable keeps that, this clean format does not)
        tcp, udp = sorted(set(self.ports)), sorted(set(self.udp_ports))
        self.stream.write(
            f"# Ports scanned: TCP({len(tcp)};{_port_ranges(tuple(tcp))}) "
            f"UDP({len(udp)};{_port_ranges(tuple(udp))}) SCTP(0;) PROTOCOLS(0;)\n"
        )

    def write_record(self, result: Result) -> None:
        self.stream.write(
            f"Timestamp: {int(result.timestamp)}\tHost: {result.ip} ()"
            f"\tPorts: {result.port}/{result.status}/{getattr(result, 'protocol', 'tcp')}////\n"
        )

    def finish(self) -> None:
        self.stream.write(f"# pyscan done at {time.strftime(_CTIME, time.gmtime())}\n")
