"""What every masscan-shaped writer shares: masscan 1.3.2's field values and its file life.

masscan opens the output file when the scan starts but writes the header only with the first
record, and the trailer only if a header was written (src/output.c, `is_virgin_file`): a scan
that found nothing leaves an empty file. `MasscanWriter` does the same, except where that
empty file is broken for its readers (-oJ, -oX), which say so with `always_complete`.

Values come from the `Result`; fields a Result does not have yet (`tcp_flags`, `protocol`)
fall back to what pyscan's probes imply, so new Result fields flow through without edits here.

Statuses (docs/output.md, "masscan formats and probe types"): an ICMP echo reply (`up`) is
masscan's `--ping` record, `open icmp 0 IP` (src/proto-icmp.c reports an echo reply as
PortStatus_Open, port 0, reason 0 = "none"); UDP `closed` is masscan's port unreachable.
masscan has no `unreachable` (it drops every destination unreachable but port unreachable),
so pyscan's `unreachable` results, of any protocol, keep that word in masscan's own formats
(-oL -oJ -oD and the console) and are nmap's `filtered` in nmap's (-oG, -oX); their reason
is nmap's name for the ICMP type and code (`host-unreach`, `admin-prohibited`, ...).
"""

from __future__ import annotations

import socket
import time
from functools import lru_cache
from typing import TYPE_CHECKING

from pyscan.output.base import ResultWriter

if TYPE_CHECKING:
    from pyscan.scanner import Result

__all__ = ["MASSCAN_VERSION", "MasscanWriter", "ctime_utc", "masscan_reason", "masscan_status",
           "nmap_state", "port_ranges", "protocol_of", "service_name", "unreachable_reason"]

# masscan writes its version into -oG's header; readers match on the header's shape.
MASSCAN_VERSION = "1.3.2"

_TCP_FIN, _TCP_SYN, _TCP_RST, _TCP_PSH, _TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_FLAG_NAMES = ("fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr")
# pyscan's probe is a SYN: the kernel answers SYN-ACK (open) or RST-ACK (closed).
_IMPLIED_FLAGS = {"open": _TCP_SYN | _TCP_ACK, "closed": _TCP_RST | _TCP_ACK}


def masscan_status(result: Result) -> str:
    """The status word of masscan's own formats: `open` for an ICMP echo reply (masscan's
    --ping), otherwise pyscan's (`open`, `closed`, and `unreachable`, which masscan lacks)."""
    return "open" if result.status == "up" else str(result.status)


def nmap_state(result: Result) -> str:
    """The port state of nmap's formats (-oG, -oX): masscan_status, except `unreachable`,
    which nmap calls `filtered` (an ICMP unreachable answered the probe)."""
    return "filtered" if result.status == "unreachable" else masscan_status(result)


# nmap's reason names for ICMP destination unreachable codes (nmap's reason.cc)
_UNREACH_REASONS = {0: "net-unreach", 1: "host-unreach", 2: "proto-unreach", 3: "port-unreach",
                    9: "net-prohibited", 10: "host-prohibited", 13: "admin-prohibited"}


def unreachable_reason(result: Result) -> str:
    """nmap's reason for an ICMP destination unreachable of this code; `unreach` for a code
    nmap has no name for, or a result that kept no code."""
    code = getattr(result, "icmp_code", None)
    if getattr(result, "icmp_type", 3) not in (3, None) or code is None:
        return "unreach"
    return _UNREACH_REASONS.get(code, "unreach")


def masscan_reason(result: Result) -> str:
    """masscan's `reason`: the reply's TCP flags, lowest bit first (`syn-ack`, `rst-ack`),
    exactly as src/output.c:reason_string spells them; `none` for replies without TCP flags
    (UDP, ICMP echo: masscan's reason 0). An `unreachable` result has nmap's name for its
    ICMP code instead (unreachable_reason)."""
    if result.status == "unreachable":
        return unreachable_reason(result)
    flags = getattr(result, "tcp_flags", None)
    if flags is None:
        # UDP and ICMP replies have no TCP flags: masscan writes "none" for them too.
        flags = _IMPLIED_FLAGS.get(result.status, 0) if protocol_of(result) == "tcp" else 0
    names = [name for bit, name in enumerate(_FLAG_NAMES) if flags & (1 << bit)]
    return "-".join(names) if names else "none"


def protocol_of(result: Result) -> str:
    return str(getattr(result, "protocol", "tcp"))


@lru_cache(maxsize=4096)
def service_name(port: int, protocol: str = "tcp") -> str:
    """The service name masscan's -oG prints: getservbyport (the system's /etc/services),
    or `unknown`; for ICMP the protocol's name (getprotobynumber, /etc/protocols), as
    src/out-tcp-services.c:oproto_service_name."""
    if protocol == "icmp":
        try:
            return "icmp" if socket.getprotobyname("icmp") == 1 else "unknown"
        except OSError:
            return "unknown"
    try:
        return socket.getservbyport(port, protocol)
    except (OSError, OverflowError):
        return "unknown"


def ctime_utc(when: float) -> str:
    """strftime("%c") in the C locale over gmtime, as masscan writes -oG's header."""
    return time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(when))


def port_ranges(ports: tuple[int, ...]) -> list[tuple[int, int]]:
    """Sorted, merged (first, last) ranges: masscan's RangeList for the scanned ports."""
    ranges: list[tuple[int, int]] = []
    for port in sorted(set(ports)):
        if ranges and port == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], port)
        else:
            ranges.append((port, port))
    return ranges


class MasscanWriter(ResultWriter):
    """Header with the first record, trailer only after a header (masscan's file life)."""

    always_complete = False  # True: write header and trailer even for an empty scan

    def open(self) -> None:
        self._header_written = False
        self.opened_at = time.time()
        if self.always_complete:
            self._write_header_once()

    def reopen(self) -> None:
        self._header_written = True
        self.opened_at = time.time()

    def _write_header_once(self) -> None:
        if not self._header_written:
            self._header_written = True
            self.header()

    def write(self, result: Result) -> None:
        self._write_header_once()
        super().write(result)

    def header(self) -> None:
        """The text masscan writes before the first record."""

    def trailer(self) -> None:
        """The text masscan writes on close, after a header."""

    def finish(self) -> None:
        if self._header_written:
            self.trailer()
