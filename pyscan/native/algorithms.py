"""The per-packet algorithms as Python sees them: permutation, target set, cookie, SYN
template, rate limiter and the native clock.

The engine calls these from C on every probe; the wrappers exist for tests, target listing
and tools, so a Python answer can never disagree with the one the engine computes.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from pyscan.native._lib import TargetSetPtr, ffi, lib
from pyscan.native._values import U64_MAX as _U64_MAX
from pyscan.native._values import check_int as _check_int
from pyscan.native._values import ipv4 as _ipv4
from pyscan.native._values import ipv4_be as _ipv4_be
from pyscan.native._values import ipv6 as _ipv6
from pyscan.native._values import mac as _mac
from pyscan.native._values import port_be as _port_be
from pyscan.native.handles import CHandle

AddressT = TypeVar("AddressT", ipaddress.IPv4Address, ipaddress.IPv6Address)

PERMUTE_MAX_RANGE = int(lib.PYSCAN_PERMUTE_MAX_RANGE)
SYN_FRAME_LEN = int(lib.PYSCAN_SYN_FRAME_LEN)  # the mss profile's frame
SYN_MAX_FRAME_LEN = int(lib.PYSCAN_SYN_MAX_FRAME_LEN)
# --tcp-options profile name -> id (template.h), in the C table's order.
TCP_OPTION_IDS: dict[str, int] = {
    ffi.string(lib.pyscan_template__profile_name(i)).decode(): i
    for i in range(int(lib.PYSCAN_TCP_OPTIONS_COUNT))
}


def tcp_options_id(name: str) -> int:
    """The template's id of TCP option profile ``name``; ValueError names the accepted ones."""
    if name not in TCP_OPTION_IDS:
        raise ValueError(f"TCP options {name!r} are unknown: accepted "
                         f"{', '.join(TCP_OPTION_IDS)}")
    return TCP_OPTION_IDS[name]


class Permutation:
    """Keyed bijection over ``range(n)`` (permute.h): ``at(i)`` for ``0 <= i < n`` visits every
    value of ``range(n)`` exactly once, in an order fixed by ``seed``."""

    def __init__(self, n: int, seed: int) -> None:
        _check_int("permutation range", n, 1, PERMUTE_MAX_RANGE)
        _check_int("permutation seed", seed, 0, _U64_MAX)
        self._state = ffi.new("struct pyscan_permute *")
        if lib.pyscan_permute__init(self._state, n, seed) != 0:
            raise ValueError(f"permutation range {n} rejected by pyscan_permute__init")
        self.n = n
        self.seed = seed

    def __len__(self) -> int:
        return self.n

    def _index(self, what: str, value: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self.n:
            raise IndexError(f"{what} {value!r} is out of range: accepted 0..{self.n - 1}")
        return value

    def at(self, index: int) -> int:
        return int(lib.pyscan_permute__at_export(self._state, self._index("index", index)))

    def inverse(self, value: int) -> int:
        """The index whose image is ``value``: ``inverse(at(i)) == i``."""
        return int(lib.pyscan_permute__inverse(self._state, self._index("value", value)))

    def values(self, start: int = 0, stop: int | None = None, step: int = 1) -> list[int]:
        """``[at(i) for i in range(start, stop, step)]`` in one C call (stop defaults to n)."""
        stop = self.n if stop is None else stop
        if start < 0 or not 0 <= stop <= self.n:
            raise IndexError(f"slice {start}..{stop} is out of range: accepted within 0..{self.n}")
        _check_int("step", step, 1, _U64_MAX)
        count = len(range(start, stop, step))
        out = ffi.new("uint64_t[]", max(count, 1))
        lib.pyscan_permute__fill(self._state, start, step, out, count)
        return list(ffi.unpack(out, count))


class _IndexedTargets(CHandle[TargetSetPtr], Generic[AddressT]):
    """What both families' target sets share (targetset.h): index i is address number
    ``i % n_ips`` with port number ``i // n_ips``; subclasses build the C struct and read one
    target (``_target``)."""

    _kind = "target set"

    def _adopt(self, state: Any) -> None:
        """Take ownership of an initialised ``struct pyscan_targetset *``."""
        self._state = state   # the struct itself is Python's memory; C owns what it points to
        self._handle = TargetSetPtr(state)
        self.n_ips = int(state.n_ips)
        self.n_ports = int(state.n_ports)
        self.total = int(state.total)

    def __len__(self) -> int:
        return self.total

    @staticmethod
    def _destroy(handle: TargetSetPtr) -> None:
        lib.pyscan_targetset__free(handle)

    def at(self, index: int) -> tuple[AddressT, int]:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.total:
            raise IndexError(f"target index {index!r} is out of range: accepted "
                             f"0..{self.total - 1}")
        return self._target(self._live(), index)

    def _target(self, handle: TargetSetPtr, index: int) -> tuple[AddressT, int]:
        raise NotImplementedError


class TargetSet(_IndexedTargets[ipaddress.IPv4Address]):
    """Sorted, disjoint, inclusive IPv4 ranges x distinct ports as one index space
    (targetset.h): index i is address number ``i % n_ips`` with port number ``i // n_ips``."""

    def __init__(self, ranges: Sequence[tuple[int | str | ipaddress.IPv4Address,
                                              int | str | ipaddress.IPv4Address]],
                 ports: Sequence[int]) -> None:
        pairs = [(int(_ipv4("range start", first)), int(_ipv4("range end", last)))
                 for first, last in ranges]
        if not pairs:
            raise ValueError("target ranges are empty: at least one (first, last) is needed")
        for previous, (first, last) in zip([None, *pairs], pairs, strict=False):
            if first > last:
                raise ValueError(f"range {ipaddress.IPv4Address(first)}-"
                                 f"{ipaddress.IPv4Address(last)} ends before it starts")
            if previous is not None and first <= previous[1]:
                raise ValueError(f"range starting at {ipaddress.IPv4Address(first)} overlaps or "
                                 "precedes the one before it: ranges must be sorted and disjoint")
        port_list = [_check_int("port", port, 0, 65535) for port in ports]
        if not port_list:
            raise ValueError("port list is empty: at least one port 0..65535 is needed")
        if len(set(port_list)) != len(port_list):
            repeated = next(p for p in port_list if port_list.count(p) > 1)
            raise ValueError(f"port {repeated} is listed twice: ports must be distinct")

        c_ranges = ffi.new("struct pyscan_ip_range[]", pairs)
        c_ports = ffi.new("uint16_t[]", port_list)
        state = ffi.new("struct pyscan_targetset *")
        rc = lib.pyscan_targetset__init(state, c_ranges, len(pairs), c_ports, len(port_list))
        if rc != 0:
            raise OSError(-rc, f"pyscan_targetset__init failed: {os.strerror(-rc)}")
        self._adopt(state)

    def _target(self, handle: TargetSetPtr, index: int) -> tuple[ipaddress.IPv4Address, int]:
        ip = ffi.new("uint32_t *")
        port = ffi.new("uint16_t *")
        lib.pyscan_targetset__at_export(handle, index, ip, port)
        return ipaddress.IPv4Address(int(ip[0])), int(port[0])


class TargetSet6(_IndexedTargets[ipaddress.IPv6Address]):
    """Sorted, disjoint, inclusive IPv6 ranges (at most 2^32 addresses in all) x distinct
    ports as one index space (targetset.h, init6): the same order as TargetSet."""

    def __init__(self, ranges: Sequence[tuple[int | str | ipaddress.IPv6Address,
                                              int | str | ipaddress.IPv6Address]],
                 ports: Sequence[int]) -> None:
        pairs = [(_ipv6("range start", first).packed, _ipv6("range end", last).packed)
                 for first, last in ranges]
        if not pairs:
            raise ValueError("target ranges are empty: at least one (first, last) is needed")
        port_list = [_check_int("port", port, 0, 65535) for port in ports]
        c_ranges = ffi.new("struct pyscan_ip6_range[]", [{"first": f, "last": la}
                                                         for f, la in pairs])
        c_ports = ffi.new("uint16_t[]", port_list or [0])
        state = ffi.new("struct pyscan_targetset *")
        rc = lib.pyscan_targetset__init6(state, c_ranges, len(pairs), c_ports, ffi.NULL,
                                         len(port_list))
        if rc != 0:
            raise ValueError(f"IPv6 target set refused: {os.strerror(-rc)} (accepted: sorted "
                             "disjoint ranges, at most 2^32 addresses, distinct ports)")
        self._adopt(state)

    def _target(self, handle: TargetSetPtr, index: int) -> tuple[ipaddress.IPv6Address, int]:
        addr = ffi.new("uint8_t[16]")
        port = ffi.new("uint16_t *")
        lib.pyscan_targetset__at6_export(handle, index, addr, port)
        return ipaddress.IPv6Address(bytes(addr)), int(port[0])

    def ip_number(self, address: str | int | ipaddress.IPv6Address) -> int | None:
        """The address's number in the set (the inverse of ``at`` on addresses), or None."""
        number = int(lib.pyscan_targetset__ip_number6_export(
            self._live(), _ipv6("address", address).packed))
        return None if number < 0 else number


def cookie6_siphash(key: bytes, saddr: str | int | ipaddress.IPv6Address,
                    daddr: str | int | ipaddress.IPv6Address, sport: int, dport: int) -> int:
    """The 64-bit SipHash-2-4 of the IPv6 probe's 36-byte tuple (cookie.h); the probe's
    cookie is its low 32 bits."""
    if not isinstance(key, bytes | bytearray) or len(key) != 16:
        raise ValueError(f"cookie key {key!r} is not 16 bytes")
    return int(lib.pyscan_cookie__siphash6(bytes(key), _ipv6("source address", saddr).packed,
                                           _ipv6("destination address", daddr).packed,
                                           _port_be("source port", sport),
                                           _port_be("destination port", dport)))


def cookie6(key: bytes, saddr: str | int | ipaddress.IPv6Address,
            daddr: str | int | ipaddress.IPv6Address, sport: int, dport: int) -> int:
    """The IPv6 probe's cookie: the low 32 bits of cookie6_siphash."""
    return cookie6_siphash(key, saddr, daddr, sport, dport) & 0xffffffff


def build_syn6(src_mac: str | bytes, dst_mac: str | bytes,
               saddr: str | int | ipaddress.IPv6Address,
               daddr: str | int | ipaddress.IPv6Address, sport: int, dport: int, seq: int,
               ttl: int = 0, mss: int = 0, window: int = 0, tcp_options: str = "windows",
               tsval: int = 0) -> bytes:
    """The IPv6 probe frame the engine sends (template6.h): Ethernet + IPv6 + TCP SYN with
    the options of profile ``tcp_options``; ``ttl`` is the hop limit (0 = the profile's)."""
    template = ffi.new("struct pyscan_syn6_template *")
    rc = lib.pyscan_template6__init(template, _mac("source MAC", src_mac),
                                    _mac("destination MAC", dst_mac),
                                    _ipv6("source address", saddr).packed,
                                    tcp_options_id(tcp_options), _check_int("TTL", ttl, 0, 255),
                                    _check_int("MSS", mss, 0, 65535),
                                    _check_int("window", window, 0, 65535))
    if rc < 0:
        raise ValueError(f"TCP options profile {tcp_options!r} is unknown")
    out = ffi.new("uint8_t[]", int(lib.PYSCAN_SYN6_COPY_LEN))
    length = lib.pyscan_template6__fill_export(
        template, out, _ipv6("destination address", daddr).packed,
        _port_be("source port", sport), _port_be("destination port", dport),
        _check_int("sequence number", seq, 0, 2**32 - 1),
        _check_int("timestamp", tsval, 0, 2**32 - 1))
    return bytes(ffi.buffer(out, length))


def cookie(key: bytes, saddr: str | int | ipaddress.IPv4Address,
           daddr: str | int | ipaddress.IPv4Address, sport: int, dport: int) -> int:
    """The probe's TCP sequence number for (saddr, daddr, sport, dport) of the probe: low
    32 bits of SipHash-2-4 of the 12-byte tuple in network byte order (cookie.h)."""
    return int(lib.pyscan_cookie__compute(*_cookie_args(key, saddr, daddr, sport, dport)))


def cookie_siphash(key: bytes, saddr: str | int | ipaddress.IPv4Address,
                   daddr: str | int | ipaddress.IPv4Address, sport: int, dport: int) -> int:
    """The whole 64-bit SipHash-2-4 the cookie is cut from (for tests against references)."""
    return int(lib.pyscan_cookie__siphash(*_cookie_args(key, saddr, daddr, sport, dport)))


def _cookie_args(key: bytes, saddr: str | int | ipaddress.IPv4Address,
                 daddr: str | int | ipaddress.IPv4Address, sport: int,
                 dport: int) -> tuple[bytes, int, int, int, int]:
    if not isinstance(key, bytes | bytearray) or len(key) != 16:
        raise ValueError(f"cookie key {key!r} is not 16 bytes")
    return (bytes(key), _ipv4_be("source address", saddr), _ipv4_be("destination address", daddr),
            _port_be("source port", sport), _port_be("destination port", dport))


def build_syn(src_mac: str | bytes, dst_mac: str | bytes,
              saddr: str | int | ipaddress.IPv4Address, daddr: str | int | ipaddress.IPv4Address,
              sport: int, dport: int, seq: int, ip_id: int, ttl: int = 0, mss: int = 0,
              window: int = 0, tcp_options: str = "windows", tsval: int = 0) -> bytes:
    """The probe frame the engine sends (template.h): Ethernet + IPv4 + TCP SYN with the
    options of profile ``tcp_options``; ttl, mss, window 0 = the profile's own; ``tsval`` is
    the timestamp option's value (profiles with one)."""
    template = ffi.new("struct pyscan_syn_template *")
    lib.pyscan_template__init(template, _mac("source MAC", src_mac),
                              _mac("destination MAC", dst_mac), _ipv4_be("source address", saddr),
                              tcp_options_id(tcp_options),
                              _check_int("TTL", ttl, 0, 255), _check_int("MSS", mss, 0, 65535),
                              _check_int("window", window, 0, 65535))
    out = ffi.new("uint8_t[]", int(lib.PYSCAN_SYN_COPY_LEN))
    length = lib.pyscan_template__fill_export(
        template, out, _ipv4_be("destination address", daddr), _port_be("source port", sport),
        _port_be("destination port", dport), _check_int("sequence number", seq, 0, 2**32 - 1),
        _check_int("IP ID", ip_id, 0, 65535), _check_int("timestamp", tsval, 0, 2**32 - 1))
    return bytes(ffi.buffer(out, length))


class RateLimit:
    """Token bucket (ratelimit.h) with an explicit clock, so tests can drive it with fake
    time; ``pps <= 0`` means unlimited. ``reserve(n, now_ns)`` takes n tokens and answers how
    many ns to wait before sending them."""

    def __init__(self, pps: float, max_burst: int, now_ns: int = 0) -> None:
        if not isinstance(pps, int | float) or pps != pps:
            raise ValueError(f"rate {pps!r} is not a number of packets per second")
        _check_int("max burst", max_burst, 0, 2**32 - 1)
        self._state = ffi.new("struct pyscan_ratelimit *")
        lib.pyscan_ratelimit__init(self._state, float(pps), max_burst,
                                   _check_int("now_ns", now_ns, 0, _U64_MAX))
        self.pps = pps
        self.max_burst = max_burst

    @property
    def unlimited(self) -> bool:
        return bool(self._state.unlimited)

    def reserve(self, n: int, now_ns: int) -> int:
        return int(lib.pyscan_ratelimit__reserve_export(
            self._state, _check_int("token count", n, 0, 2**32 - 1),
            _check_int("now_ns", now_ns, 0, _U64_MAX)))


def monotonic_ns() -> int:
    """CLOCK_MONOTONIC as the native rate limiter reads it."""
    return int(lib.pyscan_clock__now_ns())


def sleep_until_ns(deadline_ns: int) -> None:
    """The native TX loop's wait: nanosleep, then spin the last ~50 us (holds the GIL)."""
    lib.pyscan_clock__sleep_until_ns(_check_int("deadline_ns", deadline_ns, 0, _U64_MAX))
