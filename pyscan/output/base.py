"""The writer interface every output format implements, and the record fields they share.

A writer streams: `write()` emits one record as soon as it arrives (so `tail -f` and a pipe
into `jq` see results during the scan) and `close()` writes the trailer and flushes. Nothing
but the JSON array's comma state is kept between records.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, TextIO

if TYPE_CHECKING:
    from pyscan.scanner import Result

__all__ = ["TCP_FIELDS", "ResultWriter", "reason_of", "tcp_fields"]

# What the answering stack said, in zmap's field names (ndjson, json, csv; list and grepable
# keep masscan's shape). rtt_us needs a probe with a timestamp (--tcp-options linux|bsd).
TCP_FIELDS = ("window", "tcpopt_mss", "tcpopt_wscale", "tcpopt_sack_perm", "tcpopt_ts_val",
              "tcpopt_ts_ecr", "rtt_us")


def reason_of(status: str, protocol: str = "tcp") -> str:
    """masscan's `reason` field: the TCP flags that decided the status; for UDP and ICMP
    the reply that did (masscan writes "udp-response" and "echo-reply" too)."""
    if protocol == "tcp" and status != "unreachable":
        return "syn-ack" if status == "open" else "rst"
    return {"open": "udp-response", "closed": "port-unreach", "up": "echo-reply",
            "unreachable": "unreach"}.get(status, status)


def probe_fields(result: object) -> dict[str, object]:
    """What UDP and ICMP results add to a JSON record: the reply's first bytes as hex, the
    ICMP type and code. Empty for TCP results, so their records stay as they were."""
    extra: dict[str, object] = {}
    payload = getattr(result, "payload", None)
    if payload is not None:
        extra["payload"] = payload.hex()
    icmp_type = getattr(result, "icmp_type", None)
    if icmp_type is not None:
        extra["icmp_type"] = icmp_type
        extra["icmp_code"] = getattr(result, "icmp_code", None)
    return extra


def tcp_fields(result: Result) -> dict[str, int | bool | None]:
    """The reply's window, options and RTT under TCP_FIELDS' names (None: not known)."""
    return {
        "window": result.window,
        "tcpopt_mss": result.mss,
        "tcpopt_wscale": result.wscale,
        "tcpopt_sack_perm": result.sack_permitted,
        "tcpopt_ts_val": result.ts_val,
        "tcpopt_ts_ecr": result.ts_ecr,
        "rtt_us": None if result.rtt is None else round(result.rtt * 1e6),
    }


class ResultWriter:
    """Base class: subclasses set `name`, `description` and override the three hooks."""

    name: ClassVar[str]
    description: ClassVar[str]

    def __init__(
        self,
        stream: TextIO,
        *,
        started: float,
        ports: tuple[int, ...] = (),
        owns_stream: bool = False,
        udp_ports: tuple[int, ...] = (),
        ping: bool = False,
        continued: int | None = None,
    ) -> None:
        """``continued``: the stream already holds this format's header and that many
        records, repaired for appending (pyscan.output.append, resume): no header is
        written and separators and trailer carry on from there."""
        self.stream = stream
        self.owns_stream = owns_stream
        self.started = started
        self.ports = ports          # the scanned TCP ports (headers say what was scanned)
        self.udp_ports = udp_ports  # the scanned UDP ports
        self.ping = ping            # an ICMP echo per address was sent too
        self.records = 0
        self._closed = False
        if continued is None:
            self.open()
        else:
            self.records = continued
            self.reopen()

    def open(self) -> None:
        """Write the header, if the format has one."""

    def reopen(self) -> None:
        """Set up what open() sets up, without writing (a continued file has its header)."""

    def write(self, result: Result) -> None:
        self.records += 1
        self.write_record(result)

    def write_record(self, result: Result) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Write the trailer, if the format has one."""

    def close(self) -> None:
        """Trailer + flush; idempotent. Closes the stream only if the writer owns it."""
        if self._closed:
            return
        self._closed = True
        try:
            self.finish()
            self.stream.flush()
        finally:
            if self.owns_stream:
                self.stream.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
