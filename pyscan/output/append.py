"""Continuing an output file (resume): repair its end, read back what it holds, append.

A scan stopped gracefully left a complete file (trailer included); one killed (SIGKILL, power
loss) may end in the middle of a record or lack its trailer. `prepare_append(path, format)`
reads the file line by line, keeps the header and every complete record, cuts the rest (a
partial last line, the trailer, a JSON array's separator that belongs to the next element),
and returns how many records it kept and their (address, port, protocol) pairs, which the
resumed scan's duplicate suppression starts with (IPv4 and IPv6 alike: a scan is one family,
so the address int is 32-bit or 128-bit by the scan's family). The writer is then opened in
append mode with ``continued=records``: no second header, the JSON array's separators and
trailer go on as if the run had never stopped, so the finished file is exactly one well-formed
file.

Only formats whose records can be read back are continued (`APPENDABLE`); the others are
refused (ConfigError, exit 2) naming the format.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

from pyscan.config import ConfigError

__all__ = ["APPENDABLE", "Continued", "prepare_append", "protocol_number"]

PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1}
Pair = tuple[int, int, int]  # (address as int, 128-bit for IPv6, port, protocol 6/17/1)


def protocol_number(name: str) -> int:
    return PROTOCOLS[name]


@dataclass(frozen=True)
class Continued:
    """What an output file holds once repaired."""

    records: int             # complete records kept
    known: tuple[Pair, ...]  # their (address, port, protocol)
    has_header: bool         # the format's header is there (else the writer writes it)
    cut: int                 # bytes removed from the end (a partial record, the trailer)


@dataclass(frozen=True)
class _Shape:
    """How to read one format's lines: which are header and trailer, how a record reads,
    and whether the record's text ends before a trailing separator (the JSON array)."""

    header: Callable[[str], bool]
    trailer: Callable[[str], bool]
    record: Callable[[str], Pair | None]
    separator: Callable[[str], bool] = lambda line: False
    strip_comma: bool = False


def _ip(text: str) -> int:
    return int(ip_address(text))


def _list_record(line: str) -> Pair | None:
    parts = line.split(" ")
    if len(parts) != 5 or not parts[2].isdigit():
        return None
    return _ip(parts[3]), int(parts[2]), protocol_number(parts[1])


def _flat_json_record(line: str) -> Pair | None:
    data = json.loads(line)
    return _ip(data["ip"]), int(data["port"]), protocol_number(data["proto"])


def _nested_json_record(line: str) -> Pair | None:
    data = json.loads(line.rstrip(","))
    port = data["ports"][0]
    return _ip(data["ip"]), int(port["port"]), protocol_number(port["proto"])


_GREPABLE = re.compile(r"^Timestamp: \d+\tHost: (\S+) \(\)\tPorts: (\d+)/\w+/(\w+)/")


def _grepable_record(line: str) -> Pair | None:
    match = _GREPABLE.match(line)
    if match is None:
        return None
    return _ip(match.group(1)), int(match.group(2)), protocol_number(match.group(3))


_XML_HOST = re.compile(r'^<host endtime="\d+">.*<address addr="([^"]+)" addrtype="ipv[46]"/>'
                       r'<ports><port protocol="(\w+)" portid="(\d+)">.*</host>$')


def _xml_record(line: str) -> Pair | None:
    match = _XML_HOST.match(line)
    if match is None:
        return None
    return _ip(match.group(1)), int(match.group(3)), protocol_number(match.group(2))


def _csv_record(line: str) -> Pair | None:
    # pyscan's csv has no protocol column: TCP (the only protocol its classification names).
    row = next(csv.reader([line]))
    return _ip(row[0]), int(row[1]), 6


_SHAPES: dict[str, _Shape] = {
    "list": _Shape(header=lambda line: line == "#masscan", trailer=lambda line: line == "# end",
                   record=_list_record),
    "masscan-list": _Shape(header=lambda line: line == "#masscan",
                           trailer=lambda line: line == "# end", record=_list_record),
    "ndjson": _Shape(header=lambda line: False, trailer=lambda line: False,
                     record=_flat_json_record),
    "masscan-ndjson": _Shape(header=lambda line: False, trailer=lambda line: False,
                             record=_flat_json_record),
    "json": _Shape(header=lambda line: line == "[", trailer=lambda line: line == "]",
                   record=_nested_json_record, strip_comma=True),
    "masscan-json": _Shape(header=lambda line: line == "[", trailer=lambda line: line == "]",
                           record=_nested_json_record, separator=lambda line: line == ","),
    "csv": _Shape(header=lambda line: line.startswith("saddr,sport,"),
                  trailer=lambda line: False, record=_csv_record),
    "grepable": _Shape(header=lambda line: line.startswith("# pyscan scan initiated")
                       or line.startswith("# Ports scanned:"),
                       trailer=lambda line: line.startswith("# pyscan done"),
                       record=_grepable_record),
    "masscan-grepable": _Shape(header=lambda line: (line.startswith("# Masscan ")
                               and "scan initiated" in line)
                               or line.startswith("# Ports scanned:"),
                               trailer=lambda line: line.startswith("# Masscan done"),
                               record=_grepable_record),
    # One <host> per line; the <runstats> block and </nmaprun> are the trailer.
    "masscan-xml": _Shape(header=lambda line: line.startswith(("<?xml", "<!--", "<nmaprun",
                                                               "<scaninfo")),
                          trailer=lambda line: line.startswith("<runstats>"),
                          record=_xml_record),
}
APPENDABLE: tuple[str, ...] = tuple(_SHAPES)


def prepare_append(path: str | Path, format: str) -> Continued | None:
    """Repair ``path`` (a ``format`` output of an earlier run) in place for appending and
    say what it holds; None when there is no file or it is empty (the writer starts it).
    ConfigError for a format that cannot be continued or a file that is not that format."""
    shape = _SHAPES.get(format)
    if shape is None:
        raise ConfigError(f"output format {format!r} cannot be continued by --resume "
                          f"(accepted: {', '.join(APPENDABLE)}); finish that scan anew")
    target = Path(path)
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigError(f"cannot read output {str(target)!r}: {error.strerror}") from None
    if not data:
        return None
    keep, records, known, has_header = _scan_lines(data, shape, format, str(target))
    if keep < len(data):
        try:
            with open(target, "r+b") as file:
                file.truncate(keep)
                file.flush()
                os.fsync(file.fileno())
        except OSError as error:
            raise ConfigError(f"cannot repair output {str(target)!r}: {error.strerror}") \
                from None
    if not has_header and not records:
        return None if keep == 0 else Continued(0, (), False, len(data) - keep)
    return Continued(records, tuple(known), has_header, len(data) - keep)


def _scan_lines(data: bytes, shape: _Shape, format: str, shown: str
                ) -> tuple[int, int, list[Pair], bool]:
    """(bytes to keep, records, their pairs, header seen)."""
    # A last line without its newline was cut short, except in the JSON array, whose
    # elements get their newline with the next separator: there a last line that parses is
    # a whole element.
    complete = data if shape.strip_comma else data[:data.rfind(b"\n") + 1]
    keep = 0
    records = 0
    known: list[Pair] = []
    has_header = False
    offset = 0
    number = 0
    for raw in complete.splitlines(keepends=True):
        number += 1
        start, offset = offset, offset + len(raw)
        try:
            line = raw.decode("utf-8").rstrip("\r\n")  # -oX ends lines with CRLF
        except UnicodeDecodeError:
            line = None
        if line is not None and records == 0 and shape.header(line):
            has_header = True
            keep = offset
            continue
        if line is not None and shape.trailer(line):
            break  # the trailer is rewritten when the resumed run ends
        if line is not None and shape.separator(line):
            continue
        pair: Pair | None = None
        if line is not None:
            try:
                pair = shape.record(line)
            except (ValueError, KeyError, IndexError, TypeError, StopIteration):
                pair = None
        if pair is None:
            if offset == len(complete):
                break  # a damaged last line: cut it like a partial one
            raise ConfigError(f"output {shown!r} line {number} is not a {format} record "
                              f"({raw[:60]!r}); accepted: the file the paused scan wrote")
        records += 1
        known.append(pair)
        if shape.strip_comma:
            stripped = raw.rstrip(b"\n")
            keep = start + len(stripped.rstrip(b","))
        else:
            keep = offset
    return keep, records, known, has_header
