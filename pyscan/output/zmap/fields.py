"""zmap's output fields (tcp_synscan + IP + system fields), with zmap's names and types.

`FIELDS` lists them in the order zmap 2.1.1 prints `-f '*'`, then the fields zmap 4 added.
Each field reads one value from a `Result`. Fields whose value pyscan does not record yet
(daddr, ipid, seqnum, ...) name the `Result` attribute they will read
(`needs`): the day `Result` gains that attribute, the field becomes available, with no edit
here. Until then asking for one says "not supported yet", never a made-up value.

zmap 4 spells some names with `_` where 2.1.1 has `-` (`timestamp_str`, `saddr_raw`); both
are accepted, and the output uses the spelling asked for.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pyscan.scanner import Result

__all__ = ["FIELDS", "ZmapField", "ZmapFieldError", "available_fields", "classification", "field",
           "parse_output_fields", "zmap_record"]

Value = str | int | None


class ZmapFieldError(ValueError):
    """A field name zmap does not have, or one pyscan cannot fill yet; one line."""


@dataclass(frozen=True)
class ZmapField:
    name: str
    type: Literal["string", "int"]
    description: str
    read: Callable[[Result], Value]
    needs: str | None = None  # the Result attribute this field reads, if it is not a core one


def _attribute(name: str) -> Callable[[Result], Value]:
    def read(result: Result) -> Value:
        value = getattr(result, name, None)
        if value is None:
            return None
        return value if isinstance(value, int | str) else str(value)
    return read


def _raw(address: object) -> int | None:
    """zmap's `*-raw`: the address's network-order bytes read as a host (little-endian on
    the x86/arm hosts zmap runs on) integer."""
    packed = getattr(address, "packed", None)
    if packed is None or len(packed) != 4:
        return None
    return int.from_bytes(packed, "little")


def _is_rst(result: Result) -> bool:
    flags = getattr(result, "tcp_flags", None)
    return bool(flags & 0x04) if flags is not None else result.status != "open"


def classification(result: Result) -> str:
    """zmap's per-module classification: tcp_synscan synack/rst (icmp for an ICMP error
    quoting the SYN), icmp_echoscan echoreply / unreach, udp udp / icmp (src/probe_modules)."""
    protocol = getattr(result, "protocol", "tcp")
    if result.status == "unreachable" and protocol == "tcp":
        return "icmp"
    if protocol == "icmp":
        return "echoreply" if result.status == "up" else "unreach"
    if protocol == "udp":
        return "udp" if result.status == "open" else "icmp"
    return "rst" if _is_rst(result) else "synack"


def _seconds_micros(result: Result) -> tuple[int, int]:
    seconds, micros = divmod(round(result.timestamp * 1_000_000), 1_000_000)
    return int(seconds), int(micros)


def _timestamp_str(result: Result) -> str:
    """zmap's ISO 8601 local time with milliseconds: 2026-11-29T23:38:11.306+0000."""
    seconds, micros = _seconds_micros(result)
    local = time.localtime(seconds)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{micros // 1000:03d}"
            + time.strftime("%z", local))


def _as_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _microseconds(seconds: object) -> int | None:
    return None if seconds is None else round(float(seconds) * 1e6)  # type: ignore[arg-type]


def _f(name: str, kind: Literal["string", "int"], description: str,
       read: Callable[[Result], Value] | None = None) -> ZmapField:
    if read is None:
        attribute = name.replace("-", "_")
        return ZmapField(name, kind, description, _attribute(attribute), needs=attribute)
    return ZmapField(name, kind, description, read)


FIELDS: tuple[ZmapField, ...] = (
    _f("saddr", "string", "source IP address of response", lambda r: str(r.ip)),
    _f("saddr-raw", "int", "network order integer form of source IP address",
       lambda r: _raw(r.ip)),
    ZmapField("daddr", "string", "destination IP address of response",
              _attribute("source_ip"), needs="source_ip"),
    ZmapField("daddr-raw", "int", "network order integer form of destination IP address",
              lambda r: _raw(getattr(r, "source_ip", None)), needs="source_ip"),
    _f("ipid", "int", "IP identification number of response"),
    _f("ttl", "int", "time-to-live of response packet", lambda r: r.ttl),
    _f("sport", "int", "TCP source port", lambda r: r.port),
    ZmapField("dport", "int", "TCP destination port", _attribute("source_port"),
              needs="source_port"),
    _f("seqnum", "int", "TCP sequence number"),
    _f("acknum", "int", "TCP acknowledgement number"),
    _f("window", "int", "TCP window"),
    _f("classification", "string", "packet classification",
       classification),
    _f("success", "int", "is response considered success",
       lambda r: int(r.status in ("open", "up"))),
    # pyscan reports every (address, port) once and suppresses the rest: nothing is a repeat.
    _f("repeat", "int", "Is response a repeat response from host", lambda r: 0),
    _f("cooldown", "int", "Was response received during the cooldown period"),
    _f("timestamp-str", "string", "timestamp of when response arrived in ISO8601 format.",
       _timestamp_str),
    _f("timestamp-ts", "int", "timestamp of when response arrived in seconds since Epoch",
       lambda r: _seconds_micros(r)[0]),
    _f("timestamp-us", "int",
       "microsecond part of timestamp (e.g. microseconds since 'timestamp-ts')",
       lambda r: _seconds_micros(r)[1]),
    # zmap 4's TCP option fields and round-trip time (Result's mss, wscale, ... ; rtt is in
    # seconds there, microseconds here as in zmap).
    ZmapField("tcpopt_mss", "int", "TCP MSS option", _attribute("mss"), needs="mss"),
    ZmapField("tcpopt_wscale", "int", "TCP Window scale option", _attribute("wscale"),
              needs="wscale"),
    ZmapField("tcpopt_sack_perm", "int", "TCP SACK permitted option",
              lambda r: _as_int(getattr(r, "sack_permitted", None)), needs="sack_permitted"),
    ZmapField("tcpopt_ts_val", "int", "TCP timestamp option value", _attribute("ts_val"),
              needs="ts_val"),
    ZmapField("tcpopt_ts_ecr", "int", "TCP timestamp option echo reply", _attribute("ts_ecr"),
              needs="ts_ecr"),
    ZmapField("rtt", "int", "round trip time in microseconds",
              lambda r: _microseconds(getattr(r, "rtt", None)), needs="rtt"),
)
_BY_NAME = {item.name: item for item in FIELDS}
# zmap 4 renamed the dashed names; accept both spellings.
_ALIASES = {item.name.replace("-", "_"): item.name for item in FIELDS if "-" in item.name}


@cache
def _result_attributes() -> frozenset[str]:
    from pyscan.scanner import Result

    return frozenset(item.name for item in dataclasses.fields(Result))


def is_available(item: ZmapField) -> bool:
    return item.needs is None or item.needs in _result_attributes()


def available_fields() -> tuple[str, ...]:
    """The zmap field names pyscan can fill today, in zmap's order."""
    return tuple(item.name for item in FIELDS if is_available(item))


def field(name: str) -> ZmapField:
    """The field called `name` (either spelling); ZmapFieldError when zmap has no such field
    or pyscan cannot fill it yet."""
    item = _BY_NAME.get(name) or _BY_NAME.get(_ALIASES.get(name, ""))
    if item is None:
        raise ZmapFieldError(f"unknown zmap output field {name!r} "
                             f"(accepted: {', '.join(available_fields())}, or *)")
    if not is_available(item):
        raise ZmapFieldError(f"zmap output field {name!r} is not supported yet: pyscan does "
                             f"not record it (accepted: {', '.join(available_fields())})")
    return item


def parse_output_fields(text: str) -> tuple[str, ...]:
    """zmap's -f/--output-fields: names separated by commas and/or spaces, or `*` for every
    field pyscan can fill. Names are checked; duplicates are kept, as zmap keeps them."""
    names = [part for part in text.replace(",", " ").split() if part]
    if not names:
        raise ZmapFieldError(f"bad output field list {text!r} (accepted: comma list of "
                             f"{', '.join(available_fields())}, or *)")
    if names == ["*"]:
        return available_fields()
    for name in names:
        field(name)
    return tuple(names)


def zmap_record(result: Result, names: Iterable[str]) -> dict[str, Value]:
    """{field name as spelled: value} for one result; a field with no value here is None."""
    return {name: field(name).read(result) for name in names}

