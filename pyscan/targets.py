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
    "TargetError",
    "TargetSet",
    "parse_target_file",
    "parse_target_spec",
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
        if not prefix_text.isdigit() or not 0 <= int(prefix_text) <= 32:
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


def parse_target_file(path: str | Path) -> list[Range]:
    """Ranges listed in a file: specs separated by newlines, commas or blanks, `#` comments."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise TargetError(f"cannot read target file {str(path)!r}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise TargetError(f"target file {str(path)!r} is not UTF-8 text") from None
    ranges: list[Range] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0]
        for word in content.replace(",", " ").split():
            try:
                ranges.append(_parse_one(word))
            except TargetError as error:
                raise TargetError(f"{path}:{line_number}: {error}") from None
    return ranges


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
