"""masscan -oG, byte for byte (src/out-grepable.c): masscan's `# Masscan 1.3.2 scan
initiated` header with the scanned port ranges, one `Timestamp: T<TAB>Host: IP ()<TAB>Ports:
P/status/proto//service//` line per result with the system's service name, and the
`# Masscan done at` trailer.

The `# Ports scanned:` line is grepable_out_open's, quirks included: masscan keeps every port
entry in one range list (TCP port p as p, UDP port p as 65536 + p, --ping's echo as 196608;
src/massip-port.h), so UDP ranges are written with that offset (`-pU:53` is `UDP(1;65589-
65589)`, as in masscan issue #132), and a range is followed by a comma whenever any entry of
the list comes after it, even one another group writes (or none: the echo)."""

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


# masscan's port entry numbering (src/massip-port.h: Templ_UDP, Templ_SCTP, Templ_ICMP_echo,
# Templ_Oproto_first/_last)
UDP_BASE, SCTP_BASE, ICMP_ECHO = 65536, 65536 * 2, 65536 * 3
OTHER_PROTOCOLS = (65536 * 3 + 256, 65536 * 3 + 256 + 255)
# (name, first entry, last entry counted): what grepable_out_open writes, in its order
_GROUPS = (("TCP", 0, 65535), ("UDP", UDP_BASE, UDP_BASE + 65535),
           ("SCTP", SCTP_BASE, SCTP_BASE + 65535), ("PROTOCOLS", *OTHER_PROTOCOLS))


def _group(ranges: list[tuple[int, int]], first: int, last: int) -> str:
    """count_type() then, when the count is not 0, print_port_list() of
    src/out-grepable.c: `count;` and the ranges within [first, first + 65535], clamped and
    unshifted, each followed by a comma unless it is the list's last range."""
    count = sum(min(end, last) - max(begin, first) + 1 for begin, end in ranges
                if begin <= last and end >= first)
    if not count:
        return "0;"
    listed = "".join(
        f"{max(begin, first)}-{min(end, first + 65535)}{',' if i + 1 < len(ranges) else ''}"
        for i, (begin, end) in enumerate(ranges)
        if begin <= first + 65535 and end >= first)
    return f"{count};{listed}"


class MasscanGrepableWriter(MasscanWriter):
    name = "masscan-grepable"
    description = "masscan -oG: nmap grepable lines with service names"

    def header(self) -> None:
        entries = (*self.ports, *(UDP_BASE + port for port in self.udp_ports),
                   *((ICMP_ECHO,) if self.ping else ()))
        ranges = port_ranges(entries)  # masscan's RangeList: sorted, adjacent ones merged
        groups = " ".join(f"{name}({_group(ranges, first, last)})"
                          for name, first, last in _GROUPS)
        self.stream.write(
            f"# Masscan {MASSCAN_VERSION} scan initiated {ctime_utc(self.started)}\n"
            f"# Ports scanned: {groups}\n"
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
