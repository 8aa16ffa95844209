"""Which addresses a scan may send to: targets, allowlist, excludes and the default blocklist.

The default blocklist (pyscan/data/blocklist-ipv4.txt and blocklist-ipv6.txt) is IANA
special-purpose space, multicast and 240/4; each scan uses the rows of its targets' family
(one family per scan), and the same for the user's excludes, blocklist and allowlist files,
which may mix both. One rule decides how the default blocklist meets the targets:

- a named range (a target, or an allowlist entry) that lies wholly inside ONE blocklist row
  was named on purpose (a 10.1.0.0/16 lab, the lab's 198.19.0.0/16 inside 198.18.0.0/15,
  the IPv6 lab's 2001:2::/120 inside 2001:2::/48) and is scanned as asked;
- everything else has the blocklist subtracted, and `Selection.note` says how many addresses
  were left out and which rows took them.

"Inside one row", not "inside the blocklist": 224.0.0.0/3 spans multicast and 240/4, two
rows, so it is a broad target and both are subtracted (nothing is left, which is refused).
The user's own excludes (`--exclude`, `--exclude-file`, `-b`) are always subtracted, and an
allowlist (`-w`) restricts the result; without targets, the allowlist is the target list
(zmap's behaviour).
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pyscan.targets import (
    NamedRange,
    Range,
    TargetError,
    TargetSet,
    make_address,
    parse_spec,
    read_address_file,
    split_families,
)

__all__ = [
    "BlocklistEntry",
    "Selection",
    "default_blocklist",
    "default_blocklist_all",
    "default_blocklist_ipv6",
    "parse_blocklist_text",
    "select_from_text",
    "select_targets",
]

_DATA = "data"
_IPV4_FILE = "blocklist-ipv4.txt"
_IPV6_FILE = "blocklist-ipv6.txt"
# The note names this many rows by size and counts the rest, to stay one short line.
_NOTE_NAMES = 3


@dataclass(frozen=True)
class BlocklistEntry:
    """One row of a blocklist data file: a range and the registry's name for it."""

    first: int
    last: int
    name: str
    family: int = 4

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def contains(self, first: int, last: int) -> bool:
        return self.first <= first and last <= self.last

    def cidr(self) -> str:
        networks = ipaddress.summarize_address_range(
            make_address(self.first, self.family),
            make_address(self.last, self.family))
        return ", ".join(str(network) for network in networks)


def _rows(text: str) -> Iterable[tuple[int, str, str]]:
    """(line number, spec, name) for each non-comment row: `spec  # name [RFC]`."""
    for line_number, line in enumerate(text.splitlines(), start=1):
        spec, _, comment = line.partition("#")
        if spec.strip():
            yield line_number, spec.strip(), comment.strip()


def parse_blocklist_text(text: str, source: str) -> tuple[BlocklistEntry, ...]:
    """Rows of a data file (either family); each row one spec, its `#` comment the row's
    name."""
    entries: list[BlocklistEntry] = []
    for line_number, spec, name in _rows(text):
        try:
            named = parse_spec(spec)
        except TargetError as error:
            raise TargetError(f"{source}:{line_number}: {error}") from None
        entries.extend(BlocklistEntry(item.first, item.last, name or spec, item.family)
                       for item in named)
    return tuple(entries)


def _data_text(name: str) -> str:
    return resources.files("pyscan").joinpath(_DATA, name).read_text(encoding="utf-8")


@functools.cache
def default_blocklist() -> tuple[BlocklistEntry, ...]:
    """The shipped IPv4 blocklist rows (IANA special-purpose space, multicast, 240/4)."""
    return parse_blocklist_text(_data_text(_IPV4_FILE), _IPV4_FILE)


@functools.cache
def default_blocklist_ipv6() -> tuple[BlocklistEntry, ...]:
    """The shipped IPv6 rows (IANA IPv6 special-purpose registry, multicast)."""
    return parse_blocklist_text(_data_text(_IPV6_FILE), _IPV6_FILE)


def default_blocklist_all() -> tuple[BlocklistEntry, ...]:
    """Both families' shipped rows; a selection uses those of its targets' family."""
    return default_blocklist() + default_blocklist_ipv6()


@dataclass(frozen=True)
class Selection:
    """What will be scanned, and why the rest was not."""

    targets: TargetSet
    asked: TargetSet = field(default_factory=TargetSet)     # the targets as named, merged
    outside_allowlist: int = 0                              # addresses the allowlist dropped
    excluded_count: int = 0                                 # addresses the excludes dropped
    # Addresses the default blocklist took from the targets (after the user's own excludes).
    left_out: TargetSet = field(default_factory=TargetSet)
    # Rows that took something, with how much, largest first.
    left_out_by: tuple[tuple[BlocklistEntry, int], ...] = ()
    # Named ranges that lie inside one row and are scanned as asked.
    named_inside: tuple[tuple[Range, BlocklistEntry], ...] = ()
    excluded: TargetSet = field(default_factory=TargetSet)  # the user's excludes, merged
    warnings: tuple[str, ...] = ()                            # e.g. IPv6 lines skipped

    @property
    def note(self) -> str | None:
        """One line for the start line, or None when the default blocklist took nothing."""
        if not self.left_out:
            return None
        named = [f"{entry.cidr()} {_short(entry.name)}"
                 for entry, _count in self.left_out_by[:_NOTE_NAMES]]
        more = len(self.left_out_by) - len(named)
        reasons = ", ".join(named) + (f" and {more} more" if more else "")
        count = self.left_out.count
        return (f"left out {count:,} address{'es' if count != 1 else ''} in reserved and "
                f"special-purpose space ({reasons}); --no-default-blocklist scans them")


def _short(name: str) -> str:
    """'Private-Use [RFC1918]' -> 'Private-Use': the note has room for names, not RFCs."""
    return name.split("[", 1)[0].strip()


def _top_rows(entries: Sequence[BlocklistEntry]) -> list[BlocklistEntry]:
    """Rows not inside another row: 0.0.0.0/32 is counted under 0.0.0.0/8, not twice."""
    def covered(index: int, entry: BlocklistEntry) -> bool:
        # A larger row holding it, or an identical row listed earlier.
        return any(other.contains(entry.first, entry.last)
                   and (other.size > entry.size or other_index < index)
                   for other_index, other in enumerate(entries) if other_index != index)

    return [entry for index, entry in enumerate(entries) if not covered(index, entry)]


def _inside_one(ranges: Iterable[Range], entries: Sequence[BlocklistEntry],
                blocked: TargetSet) -> list[tuple[Range, BlocklistEntry]]:
    inside = []
    for first, last in ranges:
        # Most ranges miss the blocklist entirely; one bisect says so before the row scan.
        if not blocked.covers(first, last):
            continue
        for entry in entries:
            if entry.contains(first, last):
                inside.append(((first, last), entry))
                break
    return inside


def select_targets(
    targets: Sequence[Range],
    *,
    excludes: Sequence[Range] = (),
    allowlist: Sequence[Range] | None = None,
    blocklist: Sequence[BlocklistEntry] | None = None,
    warnings: Sequence[str] = (),
    family: int = 4,
) -> Selection:
    """Apply the rule in this module's docstring to raw (unmerged) ranges of `family`.

    `targets` and `allowlist` must be the ranges as named (one per spec or file entry), not
    merged: two adjacent /16s inside 10.0.0.0/8 are each inside one row, their merge may not
    be. `blocklist=None` is `--no-default-blocklist`; rows of the other family are ignored.
    """
    if not targets and allowlist is not None:
        targets = allowlist
    if blocklist:
        blocklist = [entry for entry in blocklist if entry.family == family]
    named = TargetSet(tuple(targets), family=family)
    allowed = (named & TargetSet(tuple(allowlist), family=family) if allowlist is not None
               else named)
    excluded = TargetSet(tuple(excludes), family=family)
    asked = allowed - excluded
    plain = Selection(asked, asked=named, outside_allowlist=named.count - allowed.count,
                      excluded_count=allowed.count - asked.count, excluded=excluded,
                      warnings=tuple(warnings))
    if not blocklist:
        return plain
    blocked = TargetSet(tuple((entry.first, entry.last) for entry in blocklist), family=family)
    named_inside = _inside_one([*targets, *(allowlist or ())], blocklist, blocked)
    exempt = TargetSet(tuple(named for named, _entry in named_inside), family=family)
    left_out = (asked & blocked) - exempt
    left_out_by = []
    for entry in _top_rows(blocklist):
        taken = (left_out & TargetSet(((entry.first, entry.last),), family=family)).count
        if taken:
            left_out_by.append((entry, taken))
    left_out_by.sort(key=lambda item: (-item[1], item[0].first))
    return dataclasses.replace(
        plain,
        targets=asked - left_out,
        left_out=left_out,
        left_out_by=tuple(left_out_by),
        named_inside=tuple(named_inside),
    )


def select_from_text(
    specs: Sequence[str] = (),
    *,
    include_files: Sequence[str | Path] = (),
    excludes: Sequence[str] = (),
    exclude_files: Sequence[str | Path] = (),
    blocklist_files: Sequence[str | Path] = (),
    allowlist_files: Sequence[str | Path] = (),
    default_blocklist_on: bool = True,
    blocklist: Sequence[BlocklistEntry] | None = None,
) -> Selection:
    """`select_targets` from command-line text; raises TargetError naming the bad value.

    The targets (or, without targets, the allowlist) decide the scan's family and must not
    mix both; excludes, blocklist and allowlist files may mix them, and only the entries of
    the scan's family count. `blocklist` replaces the shipped rows when given (and
    `default_blocklist_on`).
    """
    targets: list[NamedRange] = []
    for spec in specs:
        targets.extend(parse_spec(spec))
    for path in include_files:
        targets.extend(read_address_file(path, what="target file").named)
    excluded: list[NamedRange] = []
    for spec in excludes:
        excluded.extend(parse_spec(spec))
    for path, what in [*((p, "exclude file") for p in exclude_files),
                       *((p, "blocklist file") for p in blocklist_files)]:
        excluded.extend(read_address_file(path, what=what).named)
    allowed: list[NamedRange] | None = None
    if allowlist_files:
        allowed = []
        for path in allowlist_files:
            allowed.extend(read_address_file(path, what="allowlist file").named)
    # TargetSet.of_one_family refuses a mix with one line naming an address of each.
    family = TargetSet.of_one_family(targets or allowed or ()).family
    allowed_ranges = split_families(allowed)[family] if allowed is not None else None
    return select_targets(
        split_families(targets)[family],
        excludes=split_families(excluded)[family],
        allowlist=allowed_ranges,
        blocklist=(None if not default_blocklist_on
                   else blocklist if blocklist is not None else default_blocklist_all()),
        family=family,
    )
