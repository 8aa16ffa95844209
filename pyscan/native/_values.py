"""Argument checks shared by the wrappers: each turns a Python value into what C takes, or
raises ValueError with one line naming the bad value and what is accepted."""

from __future__ import annotations

import ipaddress

U64_MAX = 2**64 - 1


def check_int(what: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} {value!r} is out of range: accepted integers {low}..{high}")
    return value


def ipv4(what: str, value: object) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(value)
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise ValueError(f"{what} {value!r} is not an IPv4 address "
                         "(accepted: dotted quad, int or IPv4Address)") from None


def ipv4_be(what: str, value: object) -> int:
    """The address as the native u32 whose bytes in memory are network order."""
    return int.from_bytes(ipv4(what, value).packed, "little")


def port_be(what: str, port: int) -> int:
    return int.from_bytes(check_int(what, port, 0, 65535).to_bytes(2, "big"), "little")


def mac(what: str, value: str | bytes) -> bytes:
    if isinstance(value, bytes | bytearray) and len(value) == 6:
        return bytes(value)
    if isinstance(value, str):
        parts = value.replace("-", ":").split(":")
        if len(parts) == 6 and all(len(p) == 2 for p in parts):
            try:
                return bytes(int(p, 16) for p in parts)
            except ValueError:
                pass
    raise ValueError(f"{what} {value!r} is not a MAC address (accepted: 'aa:bb:cc:dd:ee:ff' "
                     "or 6 bytes)")




def ipv6(what: str, value: object) -> ipaddress.IPv6Address:
    try:
        return ipaddress.IPv6Address(value)
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise ValueError(f"{what} {value!r} is not an IPv6 address "
                         "(accepted: 'x:y::z', int or IPv6Address)") from None
