"""Target address sets as sorted, disjoint, merged ranges of one address family.

A set is never expanded per address: `0.0.0.0/0` minus a few excludes is a handful of
(first, last) pairs, so counting, subtracting and indexing cost O(ranges), not O(addresses).
Addresses are host-order integers inside (32-bit for IPv4, 128-bit for IPv6); `IPv4Address`
and `IPv6Address` only at the edges. A set has one `family` (4 or 6): the data plane builds
one template per scan, so a scan mixing both is refused (`TargetSet.parse`).

Grammar of one target spec (masscan's, both families): `198.19.0.1`, `198.19.0.0/16` (host
bits are ignored, `198.19.0.5/24` means the whole /24), `198.19.0.1-198.19.0.9`,
`2001:2::1`, `2001:2::/120`, `2001:2::1-2001:2::9`; several specs may be joined with commas
in one argument. Files hold specs separated by newlines, commas or blanks, with `#` starting
a comment: a zmap `--ipv6-target-file` (one address per line) reads as it is, with blank
lines, trailing blanks, CRLF line ends and a UTF-8 byte-order mark ignored.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import NamedTuple

from pyscan.text import ascii_digits

__all__ = [
    "FAMILY_BITS",
    "TARGET_GRAMMAR",
    "AddressFile",
    "NamedRange",
    "Range",
    "TargetError",
    "TargetSet",
    "address_family",
    "make_address",
    "parse_spec",
    "parse_target_file",
    "parse_target_spec",
    "read_address_file",
    "split_families",
]

TARGET_GRAMMAR = (
    "IPv4 or IPv6 address, CIDR like 198.19.0.0/16 or 2001:2::/120, range like "
    "198.19.0.1-198.19.0.9, comma-separated"
)
FAMILY_BITS = {4: 32, 6: 128}

Range = tuple[int, int]


class NamedRange(NamedTuple):
    """One range as named in a spec or file, with its address family (4 or 6)."""

    family: int
    first: int
    last: int

    @property
    def range(self) -> Range:
        return self.first, self.last


class TargetError(ValueError):
    """A target spec or file that cannot be parsed; the message names the bad value."""


def make_address(value: int, family: int) -> IPv4Address | IPv6Address:
    """The address object for a host-order integer of `family`."""
    return IPv4Address(value) if family == 4 else IPv6Address(value)


def address_family(address: object) -> int:
    """4 or 6 for an address object or its text; TargetError for anything else."""
    if isinstance(address, IPv4Address):
        return 4
    if isinstance(address, IPv6Address):
        return 6
    try:
        return ipaddress.ip_address(str(address).strip()).version
    except ValueError:
        raise TargetError(f"{address!r} is not an IPv4 or IPv6 address") from None


def _parse_address(text: str, spec: str) -> tuple[int, int]:
    """(family, integer) of one address word."""
    try:
        if ":" in text:
            if "%" in text:   # a scope (fe80::1%eth0) names an interface, not a target
                raise ValueError(text)
            return 6, int(IPv6Address(text))
        return 4, int(IPv4Address(text))
    except ValueError:
        raise TargetError(f"bad target {spec!r} (accepted: {TARGET_GRAMMAR})") from None


def _parse_one(spec: str) -> NamedRange:
    text = spec.strip()
    if not text:
        raise TargetError(f"empty target in {spec!r} (accepted: {TARGET_GRAMMAR})")
    if "/" in text:
        address_text, _, prefix_text = text.partition("/")
        family, first = _parse_address(address_text.strip(), spec)
        bits = FAMILY_BITS[family]
        if not ascii_digits(prefix_text) or not 0 <= int(prefix_text) <= bits:
            raise TargetError(
                f"bad prefix length in target {spec!r}: {prefix_text!r} is not 0..{bits} "
                f"(accepted: {TARGET_GRAMMAR})"
            )
        # masscan habit: 198.19.0.5/24 means the network the address is in, not an error.
        host_bits = bits - int(prefix_text)
        network = first >> host_bits << host_bits
        return NamedRange(family, network, network | ((1 << host_bits) - 1))
    if "-" in text:
        low_text, _, high_text = text.partition("-")
        low_family, low = _parse_address(low_text.strip(), spec)
        high_family, high = _parse_address(high_text.strip(), spec)
        if low_family != high_family:
            raise TargetError(
                f"bad target range {spec!r}: one end is IPv4, the other IPv6 "
                f"(accepted: {TARGET_GRAMMAR})"
            )
        if low > high:
            raise TargetError(
                f"bad target range {spec!r}: first address is above the last "
                f"(accepted: {TARGET_GRAMMAR})"
            )
        return NamedRange(low_family, low, high)
    family, address = _parse_address(text, spec)
    return NamedRange(family, address, address)


def parse_spec(spec: str) -> list[NamedRange]:
    """Ranges, with their family, named by one argument (which may hold comma-separated specs)."""
    if not spec.strip():
        raise TargetError(f"empty target {spec!r} (accepted: {TARGET_GRAMMAR})")
    parts = spec.split(",")
    if any(not part.strip() for part in parts):
        raise TargetError(f"empty item in target list {spec!r} (accepted: {TARGET_GRAMMAR})")
    return [_parse_one(part) for part in parts]


def parse_target_spec(spec: str, family: int = 4) -> list[Range]:
    """Ranges of one argument where only `family` is accepted (IPv4 data files, tests)."""
    named = parse_spec(spec)
    for item in named:
        if item.family != family:
            raise TargetError(f"bad target {spec!r}: IPv{item.family} where IPv{family} is "
                              f"expected (accepted: IPv{family} addresses, prefixes, ranges)")
    return [item.range for item in named]


def split_families(named: Iterable[NamedRange]) -> dict[int, list[Range]]:
    """{4: [...], 6: [...]}: the ranges of each family, in the order named."""
    by_family: dict[int, list[Range]] = {4: [], 6: []}
    for item in named:
        by_family[item.family].append(item.range)
    return by_family


@dataclass(frozen=True)
class AddressFile:
    """The ranges of one address file, both families, in the order listed."""

    path: str
    what: str                          # "target file", "blocklist file", ... for messages
    named: tuple[NamedRange, ...]

    @property
    def ranges(self) -> tuple[Range, ...]:
        """The IPv4 ranges (what IPv4-only callers want)."""
        return tuple(item.range for item in self.named if item.family == 4)

    def of_family(self, family: int) -> tuple[Range, ...]:
        return tuple(item.range for item in self.named if item.family == family)


def read_address_file(path: str | Path, *, what: str = "target file") -> AddressFile:
    """An address file: specs separated by newlines, commas or blanks, `#` comments.

    Both families are read; blocklists (zmap's, masscan's exclude.conf) mix them, and each
    scan uses the entries of its own family. `splitlines` takes CRLF and lone CR line ends,
    `split()` any run of blanks, and `utf-8-sig` a byte-order mark: what hit lists written
    on other systems hold.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise TargetError(f"cannot read {what} {str(path)!r}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise TargetError(f"{what} {str(path)!r} is not UTF-8 text") from None
    named: list[NamedRange] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0]
        for word in content.replace(",", " ").split():
            try:
                named.append(_parse_one(word))
            except TargetError as error:
                raise TargetError(f"{path}:{line_number}: {error}") from None
    return AddressFile(str(path), what, tuple(named))


def parse_target_file(path: str | Path) -> list[Range]:
    """IPv4 ranges listed in a target file (IPv6 entries are refused)."""
    named = read_address_file(path).named
    if any(item.family == 6 for item in named):
        raise TargetError(f"target file {str(path)!r} holds IPv6 entries where IPv4 is "
                          "expected (use TargetSet.parse(files=...) for either family)")
    return [item.range for item in named]


def _merge(ranges: Iterable[Range]) -> tuple[Range, ...]:
    merged: list[list[int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return tuple((first, last) for first, last in merged)


def _subtract(ranges: Sequence[Range], holes: Sequence[Range]) -> tuple[Range, ...]:
    """ranges minus holes; both sorted, disjoint and merged. One linear pass over both."""
    result: list[Range] = []
    hole_index = 0
    for first, last in ranges:
        start = first
        while hole_index < len(holes) and holes[hole_index][1] < start:
            hole_index += 1
        scan = hole_index
        while scan < len(holes) and holes[scan][0] <= last:
            hole_first, hole_last = holes[scan]
            if hole_first > start:
                result.append((start, hole_first - 1))
            start = max(start, hole_last + 1)
            if hole_last > last:
                break
            scan += 1
        if start <= last:
            result.append((start, last))
    return tuple(result)


def _mixed_error(v4: Sequence[Range], v6: Sequence[Range]) -> TargetError:
    return TargetError(
        f"targets mix IPv4 ({IPv4Address(v4[0][0])}) and IPv6 ({IPv6Address(v6[0][0])}): "
        "one scan sends one address family (accepted: only IPv4 or only IPv6 targets; "
        "run one scan per family)"
    )


@dataclass(frozen=True)
class TargetSet:
    """An immutable set of addresses of one family kept as sorted, disjoint, non-adjacent
    ranges: 32-bit integers for `family=4`, 128-bit for `family=6`.

    Sets of different families are disjoint: `a - b` is `a`, `a & b` is empty, and `a | b`
    is refused unless one side is empty (an empty set takes the other's family).
    """

    ranges: tuple[Range, ...] = ()
    family: int = 4
    _starts: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)
    _offsets: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.family not in FAMILY_BITS:
            raise TargetError(f"bad address family {self.family!r} (accepted: 4 or 6)")
        merged = _merge(self.ranges)
        top = (1 << FAMILY_BITS[self.family]) - 1
        for first, last in merged:
            if not 0 <= first <= last <= top:
                raise TargetError(f"bad address range ({first}, {last}): not within "
                                  f"0..2^{FAMILY_BITS[self.family]}-1")
        offsets, total = [], 0
        for first, last in merged:
            offsets.append(total)
            total += last - first + 1
        object.__setattr__(self, "ranges", merged)
        object.__setattr__(self, "_starts", tuple(first for first, _ in merged))
        object.__setattr__(self, "_offsets", tuple(offsets))

    @classmethod
    def parse(
        cls,
        specs: Iterable[str] = (),
        *,
        files: Iterable[str | Path] = (),
    ) -> TargetSet:
        """Specs and files of either family; TargetError when they mix both."""
        named: list[NamedRange] = []
        for spec in specs:
            named.extend(parse_spec(spec))
        for path in files:
            named.extend(read_address_file(path).named)
        return cls.of_one_family(named)

    @classmethod
    def of_one_family(cls, named: Iterable[NamedRange]) -> TargetSet:
        """The set of `named` ranges, which must all be of one family (refused otherwise)."""
        by_family = split_families(named)
        if by_family[4] and by_family[6]:
            raise _mixed_error(by_family[4], by_family[6])
        if by_family[6]:
            return cls(tuple(by_family[6]), family=6)
        return cls(tuple(by_family[4]))

    @property
    def count(self) -> int:
        """Number of addresses in the set."""
        if not self.ranges:
            return 0
        first, last = self.ranges[-1]
        return self._offsets[-1] + last - first + 1

    def __len__(self) -> int:
        # len() must fit a C ssize_t; even 0.0.0.0/0 (2^32) does on 64-bit, an IPv6 /64
        # does not (OverflowError): use .count for IPv6 sets.
        return self.count

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def _same_family(self, other: TargetSet) -> bool:
        return self.family == other.family or not self.ranges or not other.ranges

    def _like(self, ranges: tuple[Range, ...]) -> TargetSet:
        return TargetSet(ranges, family=self.family)

    def __sub__(self, other: TargetSet) -> TargetSet:
        if self.family != other.family:
            return self
        return self._like(_subtract(self.ranges, other.ranges))

    def __or__(self, other: TargetSet) -> TargetSet:
        if not self._same_family(other):
            raise _mixed_error(*((self.ranges, other.ranges) if self.family == 4
                                 else (other.ranges, self.ranges)))
        family = self.family if self.ranges else other.family
        return TargetSet(self.ranges + other.ranges, family=family)

    def __and__(self, other: TargetSet) -> TargetSet:
        if self.family != other.family:
            return self._like(())
        # a & b = a - (complement of b): two linear passes, still O(ranges).
        return self - (_EVERYTHING[self.family] - other)

    def covers(self, first: int, last: int) -> bool:
        """Whether every address of first..last is in the set (one merged range holds it)."""
        position = bisect.bisect_right(self._starts, first) - 1
        return position >= 0 and last <= self.ranges[position][1]

    def __contains__(self, address: object) -> bool:
        if isinstance(address, IPv4Address | IPv6Address):
            if address.version != self.family:
                return False
            value = int(address)
        elif isinstance(address, int) and not isinstance(address, bool):
            value = address
        else:
            return False
        position = bisect.bisect_right(self._starts, value) - 1
        return position >= 0 and value <= self.ranges[position][1]

    def __getitem__(self, index: int) -> IPv4Address | IPv6Address:
        """The index-th address in ascending order (what the scan permutation indexes into)."""
        return make_address(self.address_at(index), self.family)

    def address_at(self, index: int) -> int:
        """Host-order integer of the index-th address; O(log ranges)."""
        if index < 0:
            index += self.count
        if not 0 <= index < self.count:
            raise IndexError(f"target index {index} outside 0..{self.count - 1}")
        position = bisect.bisect_right(self._offsets, index) - 1
        return self.ranges[position][0] + index - self._offsets[position]

    def __iter__(self) -> Iterator[IPv4Address | IPv6Address]:
        for first, last in self.ranges:
            for value in range(first, last + 1):
                yield make_address(value, self.family)

    def describe(self) -> str:
        """Short human text: `198.19.0.0/16` for one CIDR-shaped range, else a count."""
        if len(self.ranges) == 1:
            first, last = self.ranges[0]
            low, high = make_address(first, self.family), make_address(last, self.family)
            networks = list(ipaddress.summarize_address_range(low, high))
            if len(networks) == 1:
                return str(networks[0])
            return f"{low}-{high}"
        return f"{self.count} addresses in {len(self.ranges)} ranges"


_EVERYTHING = {
    4: TargetSet(((0, 0xFFFFFFFF),)),
    6: TargetSet(((0, (1 << 128) - 1),), family=6),
}
