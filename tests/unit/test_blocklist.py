"""The default blocklist's data and the named-on-purpose subtraction rule.

Independent references: Python's `ipaddress` (its private/reserved/multicast tables follow
the same IANA registries) for the data, and a per-address reference of the rule for the
arithmetic.
"""

from __future__ import annotations

import ipaddress
import random
import re
from importlib import resources
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

import pytest

from pyscan.blocklist import (
    BlocklistEntry,
    default_blocklist,
    default_blocklist_ipv6,
    parse_blocklist_text,
    select_from_text,
    select_targets,
)
from pyscan.targets import Range, TargetError, TargetSet, parse_target_spec

FIXTURES = Path(__file__).parent / "fixtures"


def ip(text: str) -> int:
    return int(IPv4Address(text))


def net(text: str) -> Range:
    network = IPv4Network(text)
    return int(network.network_address), int(network.broadcast_address)


def blocked_set() -> TargetSet:
    return TargetSet(tuple((entry.first, entry.last) for entry in default_blocklist()))


# --- the shipped data -----------------------------------------------------------------------

def test_data_files_are_package_data_with_sources_and_date() -> None:
    for name, source in (("blocklist-ipv4.txt", "iana-ipv4-special-registry"),
                         ("blocklist-ipv6.txt", "iana-ipv6-special-registry")):
        text = resources.files("pyscan").joinpath("data", name).read_text()
        header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
        assert source in header
        assert "RFC 6890" in header
        assert re.search(r"Compiled: \d{4}-\d{2}-\d{2}", header)
    text = resources.files("pyscan").joinpath("data", "blocklist-ipv4.txt").read_text()
    assert "224.0.0.0/4" in text and "multicast-addresses" in text


def test_every_ipv4_row_is_a_strict_cidr_with_a_name() -> None:
    rows = [line for line in resources.files("pyscan").joinpath(
        "data", "blocklist-ipv4.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")]
    assert len(rows) == len(default_blocklist()) >= 25
    for line, entry in zip(rows, default_blocklist(), strict=True):
        spec = line.split("#")[0].strip()
        network = IPv4Network(spec)  # strict: host bits set would raise
        assert (entry.first, entry.last) == net(spec)
        assert entry.cidr() == str(network)
        assert re.search(r"\[RFC\d+", entry.name)


@pytest.mark.parametrize("must_hold", [
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "255.255.255.255/32",
])
def test_zmap_default_blocklist_is_covered(must_hold: str) -> None:
    """Every range of zmap's conf/blocklist.conf (research/anchors.md) is in ours."""
    first, last = net(must_hold)
    assert blocked_set().covers(first, last)


def test_pythons_special_networks_are_covered() -> None:
    """ipaddress's private table (from the same registry) and a random sample judged by its
    public predicates: nothing Python calls special is missing from our list."""
    blocked = blocked_set()
    private = getattr(ipaddress, "_IPv4Constants", None)
    for network in getattr(private, "_private_networks", []):
        assert blocked.covers(int(network.network_address), int(network.broadcast_address)), \
            network
    rng = random.Random(6890)
    for _ in range(50_000):
        address = IPv4Address(rng.getrandbits(32))
        special = (address.is_private or address.is_multicast or address.is_reserved
                   or address.is_loopback or address.is_link_local or address.is_unspecified)
        if special:
            assert int(address) in blocked, address


def test_ipv6_rows_parse_and_cover_pythons_special_networks() -> None:
    rows = default_blocklist_ipv6()
    assert all(row.family == 6 for row in rows)
    networks = [IPv6Network(row.cidr()) for row in rows]
    assert IPv6Network("ff00::/8") in networks
    assert IPv6Network("2001:2::/48") in networks  # the lab's IPv6 benchmarking range
    assert all(re.search(r"\[RFC", row.name) for row in rows)
    private = getattr(ipaddress, "_IPv6Constants", None)
    for special in getattr(private, "_private_networks", []):
        assert any(special.subnet_of(network) for network in networks), special


def test_bad_data_row_names_file_and_line() -> None:
    with pytest.raises(TargetError, match=r"custom\.txt:2: .*10\.0\.0\.300"):
        parse_blocklist_text("10.0.0.0/8  # ok\n10.0.0.300/32 # bad\n", "custom.txt")


# --- the rule -------------------------------------------------------------------------------

def reference(targets: list[Range], address: int, excludes: list[Range] = (),
              allowlist: list[Range] | None = None) -> bool:
    """Per address, straight from the rule's words."""
    rows = [(entry.first, entry.last) for entry in default_blocklist()]
    if not targets and allowlist is not None:
        targets = allowlist
    named = [*targets, *(allowlist or [])]

    def inside(ranges: list[Range]) -> bool:
        return any(first <= address <= last for first, last in ranges)

    if not inside(targets) or inside(list(excludes)):
        return False
    if allowlist is not None and not inside(allowlist):
        return False
    if not inside(rows):
        return True
    # blocklisted: scanned only if some named range holding it sits inside a single row
    return any(first <= address <= last and any(r0 <= first and last <= r1 for r0, r1 in rows)
               for first, last in named)


def probe_points(ranges: list[Range]) -> set[int]:
    """Edges of every range and row, and their neighbours: where the rule can go wrong."""
    points = set()
    for first, last in [*ranges, *((e.first, e.last) for e in default_blocklist())]:
        for value in (first - 1, first, first + 1, last - 1, last, last + 1):
            if 0 <= value <= 0xFFFFFFFF:
                points.add(value)
    return points


CASES = {
    "lab /16 inside benchmarking": (["198.19.0.0/16"], [], None),
    "private lab": (["10.1.0.0/16"], [], None),
    "whole row": (["198.18.0.0/15"], [], None),
    "whole internet": (["0.0.0.0/0"], [], None),
    "straddles benchmarking": (["198.16.0.0/12"], [], None),
    "spans two rows": (["224.0.0.0/3"], [], None),
    "range over a row edge": (["9.255.255.0-10.0.0.255"], [], None),
    "adjacent named /16s": (["10.1.0.0/16", "10.2.0.0/16"], [], None),
    "broad and narrow": (["0.0.0.0/0", "10.1.0.0/16"], [], None),
    "nested rows": (["0.0.0.0/7"], [], None),
    "excludes inside a named range": (["198.19.0.0/16"], ["198.19.0.0/24"], None),
    "allowlist restricts": (["0.0.0.0/0"], [], ["8.8.8.0/24", "10.1.0.0/16"]),
    "allowlist alone": ([], ["8.8.8.128/25"], ["8.8.8.0/24", "192.168.7.0/24", "11.0.0.0/7"]),
}


@pytest.mark.parametrize("case", CASES)
def test_rule_matches_the_per_address_reference(case: str) -> None:
    specs, exclude_specs, allow_specs = CASES[case]
    targets = [r for spec in specs for r in parse_target_spec(spec)]
    excludes = [r for spec in exclude_specs for r in parse_target_spec(spec)]
    allowlist = None if allow_specs is None else [
        r for spec in allow_specs for r in parse_target_spec(spec)]
    selection = select_targets(targets, excludes=excludes, allowlist=allowlist,
                               blocklist=default_blocklist())
    rng = random.Random(case)
    points = probe_points([*targets, *excludes, *(allowlist or [])])
    points |= {rng.getrandbits(32) for _ in range(5_000)}
    for first, last in [*targets, *(allowlist or [])]:
        points |= {rng.randint(first, last) for _ in range(200)}
    for address in points:
        assert (address in selection.targets) == reference(
            targets, address, excludes, allowlist), (case, IPv4Address(address))


def test_named_ranges_inside_one_row_are_scanned_whole() -> None:
    for spec, row in (("198.19.0.0/16", "198.18.0.0/15"), ("10.1.0.0/16", "10.0.0.0/8")):
        selection = select_targets(parse_target_spec(spec), blocklist=default_blocklist())
        assert selection.targets == TargetSet(tuple(parse_target_spec(spec)))
        assert selection.note is None
        assert [entry.cidr() for _named, entry in selection.named_inside] == [row]


def test_whole_internet_loses_every_row_and_says_so() -> None:
    selection = select_targets([(0, 2**32 - 1)], blocklist=default_blocklist())
    blocked = blocked_set()
    assert selection.targets.count == 2**32 - blocked.count
    assert selection.left_out == blocked
    assert not selection.targets & blocked
    # nested rows (0.0.0.0/32 in 0.0.0.0/8, 192.0.0.8/32 in 192.0.0.0/24) are counted once
    assert sum(count for _entry, count in selection.left_out_by) == blocked.count
    note = selection.note
    assert note is not None and "\n" not in note
    assert f"left out {blocked.count:,} addresses" in note
    assert "224.0.0.0/4 Multicast" in note and "240.0.0.0/4 Reserved" in note
    assert "--no-default-blocklist" in note


def test_straddling_target_loses_only_the_row_inside_it() -> None:
    selection = select_targets([net("198.16.0.0/12")], blocklist=default_blocklist())
    assert selection.targets.count == 2**20 - 2**17
    assert selection.note == ("left out 131,072 addresses in reserved and special-purpose "
                              "space (198.18.0.0/15 Benchmarking); --no-default-blocklist "
                              "scans them")


def test_target_spanning_two_rows_is_not_named_inside_either() -> None:
    selection = select_targets([net("224.0.0.0/3")], blocklist=default_blocklist())
    assert not selection.targets
    assert selection.left_out.count == 2**29


def test_without_the_default_only_the_users_lists_apply() -> None:
    selection = select_targets([(0, 2**32 - 1)], excludes=[net("10.0.0.0/8")], blocklist=None)
    assert selection.targets.count == 2**32 - 2**24
    assert selection.note is None and not selection.left_out


# --- from command-line text and files -------------------------------------------------------

def test_blocklist_file_with_ipv6_lines_uses_the_ipv4_rows_for_an_ipv4_scan() -> None:
    path = FIXTURES / "blocklist-mixed.txt"
    selection = select_from_text(["8.0.0.0/8", "1.1.0.0/16"], blocklist_files=[path])
    for address in ("8.8.8.1", "8.8.4.4", "1.1.1.1"):
        assert ip(address) not in selection.targets
    assert ip("8.8.4.3") in selection.targets and ip("1.1.2.1") in selection.targets
    assert selection.targets.count == 2**24 + 2**16 - 256 - 1 - 256
    assert selection.warnings == ()


def test_blocklist_file_with_ipv4_lines_uses_the_ipv6_rows_for_an_ipv6_scan() -> None:
    path = FIXTURES / "blocklist-mixed.txt"
    selection = select_from_text(["2001:db8::/120", "2606:4700::/120", "fe80::/120"],
                                 blocklist_files=[path], default_blocklist_on=False)
    assert selection.targets.family == 6
    # 2001:db8::/32 and 2606:4700::/32 take their /120s, fe80::1-fe80::ff all but fe80::.
    assert selection.targets == TargetSet(((int(IPv6Address("fe80::")),) * 2,), family=6)


def test_exclude_file_applies_per_family() -> None:
    selection = select_from_text(["8.8.8.0/24"], exclude_files=[FIXTURES / "blocklist-mixed.txt"])
    assert not selection.targets and not selection.warnings


def test_allowlist_file_restricts_and_names_on_purpose() -> None:
    path = FIXTURES / "allowlist.txt"
    selection = select_from_text(["0.0.0.0/0"], allowlist_files=[path])
    assert selection.targets == TargetSet((net("8.8.8.0/24"), net("10.1.0.0/16")))
    assert selection.note is None and not selection.warnings
    v6 = select_from_text(["2001:db8::/32"], allowlist_files=[path])
    assert v6.targets == TargetSet.parse(["2001:db8:1::/48"])
    # Without targets the allowlist is the target list, and one scan is one family.
    with pytest.raises(TargetError, match=r"mix IPv4 \(8\.8\.8\.0\) and IPv6"):
        select_from_text([], allowlist_files=[path])


def test_malformed_word_with_a_colon_is_still_refused() -> None:
    with pytest.raises(TargetError, match=r"blocklist-bad\.txt:2: .*2001:db8::zz/32"):
        select_from_text(["8.0.0.0/8"], blocklist_files=[FIXTURES / "blocklist-bad.txt"])


def test_target_files_mixing_families_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "targets.txt"
    path.write_text("198.19.0.0/24\n2001:2::/48\n")
    with pytest.raises(TargetError, match=r"mix IPv4 \(198\.19\.0\.0\) and IPv6 \(2001:2::\)"):
        select_from_text([], include_files=[path])


def test_default_can_be_turned_off_from_text() -> None:
    on = select_from_text(["192.168.0.0/15"])
    off = select_from_text(["192.168.0.0/15"], default_blocklist_on=False)
    assert on.targets.count == 2**16 and off.targets.count == 2**17


def test_entry_helpers() -> None:
    entry = BlocklistEntry(ip("192.0.0.170"), ip("192.0.0.171"), "NAT64/DNS64 Discovery")
    assert entry.size == 2 and entry.cidr() == "192.0.0.170/31"
    assert entry.contains(ip("192.0.0.171"), ip("192.0.0.171"))
    assert not entry.contains(ip("192.0.0.170"), ip("192.0.0.172"))


def test_intersection_against_brute_force() -> None:
    rng = random.Random(5)
    for _ in range(30):
        a = [(lo, lo + rng.randrange(40)) for lo in rng.sample(range(2000), 8)]
        b = [(lo, lo + rng.randrange(40)) for lo in rng.sample(range(2000), 8)]
        expected = ({v for lo, hi in a for v in range(lo, hi + 1)}
                    & {v for lo, hi in b for v in range(lo, hi + 1)})
        got = TargetSet(tuple(a)) & TargetSet(tuple(b))
        assert {v for lo, hi in got.ranges for v in range(lo, hi + 1)} == expected
