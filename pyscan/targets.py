"""Target address sets as sorted, disjoint, merged IPv4 ranges.

A set is never expanded per address: `0.0.0.0/0` minus a few excludes is a handful of
(first, last) pairs, so counting, subtracting and indexing cost O(ranges), not O(addresses).
Addresses are host-order integers inside; `IPv4Address` only at the edges.

Grammar of one target spec (masscan's): `198.19.0.1`, `198.19.0.0/16` (host bits are ignored,
`198.19.0.5/24` means the whole /24), `198.19.0.1-198.19.0.9`; several specs may be joined
with commas in one argument. Files hold specs separated by newlines, commas or spaces, with
`#` starting a comment.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

__all__ = [
    "TARGET_GRAMMAR",
    "AddressFile",
    "TargetError",
    "TargetSet",
    "parse_target_file",
    "parse_target_spec",
    "read_address_file",
]

TARGET_GRAMMAR = (
    "IPv4 address, CIDR like 198.19.0.0/16, range like 198.19.0.1-198.19.0.9, comma-separated"
)

Range = tuple[int, int]


class TargetError(ValueError):
    """A target spec or file that cannot be parsed; the message names the bad value."""


def _parse_address(text: str, spec: str) -> int:
    if ":" in text:
        raise TargetError(
            f"bad target {spec!r}: IPv6 is not supported (accepted: {TARGET_GRAMMAR})"
        )
    try:
        return int(IPv4Address(text))
    except ValueError:
        raise TargetError(f"bad target {spec!r} (accepted: {TARGET_GRAMMAR})") from None


def _parse_one(spec: str) -> Range:
    text = spec.strip()
    if not text:
        raise TargetError(f"empty target in {spec!r} (accepted: {TARGET_GRAMMAR})")
    if "/" in text:
        address_text, _, prefix_text = text.partition("/")
        first = _parse_address(address_text, spec)
        if not (prefix_text.isascii() and prefix_text.isdigit()) or not 0 <= int(prefix_text) <= 32:
            raise TargetError(
                f"bad prefix length in target {spec!r}: {prefix_text!r} is not 0..32 "
                f"(accepted: {TARGET_GRAMMAR})"
            )
        # masscan habit: 198.19.0.5/24 means the network the address is in, not an error.
        network = ipaddress.IPv4Network((first, int(prefix_text)), strict=False)
        return int(network.network_address), int(network.broadcast_address)
    if "-" in text:
        low_text, _, high_text = text.partition("-")
        low, high = _parse_address(low_text.strip(), spec), _parse_address(high_text.strip(), spec)
        if low > high:
            raise TargetError(
                f"bad target range {spec!r}: first address is above the last "
                f"(accepted: {TARGET_GRAMMAR})"
            )
        return low, high
    address = _parse_address(text, spec)
    return address, address


def parse_target_spec(spec: str) -> list[Range]:
    """Ranges named by one command-line argument (which may hold comma-separated specs)."""
    if not spec.strip():
        raise TargetError(f"empty target {spec!r} (accepted: {TARGET_GRAMMAR})")
    parts = spec.split(",")
    if any(not part.strip() for part in parts):
        raise TargetError(f"empty item in target list {spec!r} (accepted: {TARGET_GRAMMAR})")
    return [_parse_one(part) for part in parts]


@dataclass(frozen=True)
class AddressFile:
    """The IPv4 ranges of one address file, and where it held IPv6 (skipped, not scanned)."""

    path: str
    what: str                          # "target file", "blocklist file", ... for messages
    ranges: tuple[Range, ...]
    ipv6_lines: tuple[int, ...] = ()   # 1-based line numbers of skipped IPv6 words
    first_ipv6: str = ""               # the first such word, to quote in the warning

    def ipv6_warning(self) -> str | None:
        """One line for all of the file's IPv6 entries, or None when it had none."""
        if not self.ipv6_lines:
            return None
        count = len(self.ipv6_lines)
        return (
            f"skipped {count} IPv6 entr{'y' if count == 1 else 'ies'} in {self.what} "
            f"{self.path!r} (first: line {self.ipv6_lines[0]}, {self.first_ipv6!r}): "
            "pyscan scans IPv4 only"
        )


def _is_ipv6_spec(word: str) -> bool:
    """An IPv6 address, prefix or first-last range: what a blocklist may hold beside IPv4."""
    if ":" not in word:
        return False
    low, dash, high = word.partition("-")
    try:
        if dash:
            ipaddress.IPv6Address(low.strip())
            ipaddress.IPv6Address(high.strip())
        else:
            ipaddress.IPv6Network(word, strict=False)
    except ValueError:
        return False
    return True


def read_address_file(
    path: str | Path, *, what: str = "target file", skip_ipv6: bool = False
) -> AddressFile:
    """An address file: specs separated by newlines, commas or blanks, `#` comments.

    With `skip_ipv6`, well-formed IPv6 entries are collected and left out instead of refused:
    blocklists (zmap's, masscan's exclude.conf) mix both families, and an IPv4 scan loses
    nothing by ignoring the IPv6 half. A malformed word is refused either way.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise TargetError(f"cannot read {what} {str(path)!r}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise TargetError(f"{what} {str(path)!r} is not UTF-8 text") from None
    ranges: list[Range] = []
    ipv6_lines: list[int] = []
    first_ipv6 = ""
    for line_number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0]
        for word in content.replace(",", " ").split():
            if skip_ipv6 and _is_ipv6_spec(word):
                ipv6_lines.append(line_number)
                first_ipv6 = first_ipv6 or word
                continue
            try:
                ranges.append(_parse_one(word))
            except TargetError as error:
                raise TargetError(f"{path}:{line_number}: {error}") from None
    return AddressFile(str(path), what, tuple(ranges), tuple(ipv6_lines), first_ipv6)


def parse_target_file(path: str | Path) -> list[Range]:
    """Ranges listed in a target file; IPv6 entries are refused (they cannot be scanned)."""
    return list(read_address_file(path).ranges)


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


@dataclass(frozen=True)
class TargetSet:
    """An immutable set of IPv4 addresses kept as sorted, disjoint, non-adjacent ranges."""

    ranges: tuple[Range, ...] = ()
    _starts: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)
    _offsets: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        merged = _merge(self.ranges)
        for first, last in merged:
            if not 0 <= first <= last <= 0xFFFFFFFF:
                raise TargetError(f"bad address range ({first}, {last}): not within 0..2^32-1")
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
        ranges: list[Range] = []
        for spec in specs:
            ranges.extend(parse_target_spec(spec))
        for path in files:
            ranges.extend(parse_target_file(path))
        return cls(tuple(ranges))

    @property
    def count(self) -> int:
        """Number of addresses in the set."""
        if not self.ranges:
            return 0
        first, last = self.ranges[-1]
        return self._offsets[-1] + last - first + 1

    def __len__(self) -> int:
        # len() must fit a C ssize_t; even 0.0.0.0/0 (2^32) does on 64-bit.
        return self.count

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __sub__(self, other: TargetSet) -> TargetSet:
        return TargetSet(_subtract(self.ranges, other.ranges))

    def __or__(self, other: TargetSet) -> TargetSet:
        return TargetSet(self.ranges + other.ranges)

    def __and__(self, other: TargetSet) -> TargetSet:
        # a & b = a - (complement of b): two linear passes, still O(ranges).
        return self - (_EVERYTHING - other)

    def covers(self, first: int, last: int) -> bool:
        """Whether every address of first..last is in the set (one merged range holds it)."""
        position = bisect.bisect_right(self._starts, first) - 1
        return position >= 0 and last <= self.ranges[position][1]

    def __contains__(self, address: object) -> bool:
        value = int(address) if isinstance(address, IPv4Address | int) else None
        if value is None:
            return False
        position = bisect.bisect_right(self._starts, value) - 1
        return position >= 0 and value <= self.ranges[position][1]

    def __getitem__(self, index: int) -> IPv4Address:
        """The index-th address in ascending order (what the scan permutation indexes into)."""
        return IPv4Address(self.address_at(index))

    def address_at(self, index: int) -> int:
        """Host-order integer of the index-th address; O(log ranges)."""
        if index < 0:
            index += self.count
        if not 0 <= index < self.count:
            raise IndexError(f"target index {index} outside 0..{self.count - 1}")
        position = bisect.bisect_right(self._offsets, index) - 1
        return self.ranges[position][0] + index - self._offsets[position]

    def __iter__(self) -> Iterator[IPv4Address]:
        for first, last in self.ranges:
            for value in range(first, last + 1):
                yield IPv4Address(value)

    def describe(self) -> str:
        """Short human text: `198.19.0.0/16` for one CIDR-shaped range, else a count."""
        if len(self.ranges) == 1:
            first, last = self.ranges[0]
            low, high = IPv4Address(first), IPv4Address(last)
            networks = list(ipaddress.summarize_address_range(low, high))
            if len(networks) == 1:
                return str(networks[0])
            return f"{IPv4Address(first)}-{IPv4Address(last)}"
        return f"{self.count} addresses in {len(self.ranges)} ranges"


_EVERYTHING = TargetSet(((0, 0xFFFFFFFF),))
