"""The target index space (targetset.h) against a plain-Python reference."""

from __future__ import annotations

import itertools
import random
from ipaddress import IPv4Address

import pytest

from pyscan.native import Permutation, TargetSet


def reference_at(ranges: list[tuple[int, int]], ports: list[int],
                 index: int) -> tuple[IPv4Address, int]:
    n_ips = sum(last - first + 1 for first, last in ranges)
    ip_index, port_index = index % n_ips, index // n_ips
    for first, last in ranges:
        if ip_index <= last - first:
            return IPv4Address(first + ip_index), ports[port_index]
        ip_index -= last - first + 1
    raise AssertionError("index beyond the ranges")


def random_ranges(rng: random.Random, count: int, max_len: int) -> list[tuple[int, int]]:
    ranges, cursor = [], rng.randrange(2**24)
    for _ in range(count):
        cursor += rng.randrange(0, 50)  # 0 makes ranges adjacent, which is allowed
        last = cursor + rng.randrange(max_len)
        ranges.append((cursor, last))
        cursor = last + 1
    return ranges


@pytest.mark.parametrize("case", range(12))
def test_every_index_matches_the_reference(case: int) -> None:
    rng = random.Random(case)
    ranges = random_ranges(rng, rng.randrange(1, 40), rng.choice([1, 3, 60]))
    ports = rng.sample(range(65536), rng.randrange(1, 8))
    targets = TargetSet(ranges, ports)
    n_ips = sum(last - first + 1 for first, last in ranges)
    assert (targets.n_ips, targets.n_ports, targets.total) == (n_ips, len(ports),
                                                               n_ips * len(ports))
    got = [targets.at(i) for i in range(targets.total)]
    assert got == [reference_at(ranges, ports, i) for i in range(targets.total)]
    expected = {(IPv4Address(ip), port) for (first, last) in ranges
                for ip in range(first, last + 1) for port in ports}
    assert set(got) == expected


def test_many_ranges_exercise_the_binary_search() -> None:
    rng = random.Random(42)
    ranges = random_ranges(rng, 5000, 300)
    ports = [22, 80, 443]
    targets = TargetSet(ranges, ports)
    for index in [0, targets.total - 1, *(rng.randrange(targets.total) for _ in range(2_000))]:
        assert targets.at(index) == reference_at(ranges, ports, index)
    # the first and last address of every range
    before = 0
    for first, last in ranges:
        assert targets.at(before) == (IPv4Address(first), 22)
        before += last - first + 1
        assert targets.at(before - 1) == (IPv4Address(last), 22)


@pytest.mark.parametrize("shape", ["even", "clustered", "one_huge_last", "singles"])
def test_bucketed_lookup_matches_the_reference_exhaustively(shape: str) -> None:
    """Above 64 ranges a bucket table narrows the search; buckets that hold many ranges,
    none, or a range's edge must all still find the right one."""
    rng = random.Random(shape)
    if shape == "even":
        ranges = random_ranges(rng, 300, 20)
    elif shape == "clustered":  # 400 tiny ranges, then a gap, then a big one
        ranges = random_ranges(rng, 400, 2)
        ranges.append((ranges[-1][1] + 10_000, ranges[-1][1] + 30_000))
    elif shape == "one_huge_last":
        ranges = [*random_ranges(rng, 100, 3)]
        ranges.append((ranges[-1][1] + 2, ranges[-1][1] + 2 + 2**18))
    else:  # an include list of single addresses
        addresses = sorted(rng.sample(range(2**32), 3000))
        ranges = [(a, a) for a in addresses]
    ports = [443, 22]
    targets = TargetSet(ranges, ports)
    n_ips = targets.n_ips
    step = max(1, targets.total // 40_000)
    for index in range(0, targets.total, step):
        assert targets.at(index) == reference_at(ranges, ports, index), index
    for index in (n_ips - 1, n_ips, targets.total - 1):
        assert targets.at(index) == reference_at(ranges, ports, index)


def test_consecutive_indices_walk_hosts_before_ports() -> None:
    targets = TargetSet([("198.19.0.0", "198.19.0.3")], [443, 80])
    assert [targets.at(i) for i in range(5)] == [
        (IPv4Address("198.19.0.0"), 443), (IPv4Address("198.19.0.1"), 443),
        (IPv4Address("198.19.0.2"), 443), (IPv4Address("198.19.0.3"), 443),
        (IPv4Address("198.19.0.0"), 80)]


def test_whole_ipv4_space_times_all_ports() -> None:
    ports = list(range(65536))
    random.Random(3).shuffle(ports)
    targets = TargetSet([(0, 2**32 - 1)], ports)
    assert targets.total == 2**48
    assert targets.at(0) == (IPv4Address(0), ports[0])
    assert targets.at(2**32 - 1) == (IPv4Address("255.255.255.255"), ports[0])
    assert targets.at(2**32) == (IPv4Address(0), ports[1])
    assert targets.at(2**48 - 1) == (IPv4Address("255.255.255.255"), ports[-1])
    assert targets.at(123_456_789_012) == reference_at([(0, 2**32 - 1)], ports, 123_456_789_012)


def test_permuted_scan_probes_every_target_exactly_once() -> None:
    ranges = [(int(IPv4Address("198.19.0.0")), int(IPv4Address("198.19.0.200"))),
              (int(IPv4Address("198.19.3.7")), int(IPv4Address("198.19.3.7")))]
    targets = TargetSet(ranges, [22, 80, 8080])
    perm = Permutation(targets.total, 11)
    probes = [targets.at(value) for value in perm.values()]
    assert len(set(probes)) == len(probes) == targets.total == 202 * 3


@pytest.mark.parametrize(("ranges", "ports", "message"), [
    ([], [80], "ranges are empty"),
    ([(5, 4)], [80], "ends before it starts"),
    ([(10, 20), (20, 30)], [80], "overlaps"),
    ([(10, 20), (0, 5)], [80], "overlaps or precedes"),
    ([("10.0.0.1", "10.0.0.300")], [80], "'10.0.0.300' is not an IPv4 address"),
    ([(0, 2**32)], [80], "is not an IPv4 address"),
    ([(1, 2)], [], "port list is empty"),
    ([(1, 2)], [80, 443, 80], "port 80 is listed twice"),
    ([(1, 2)], [65536], "port 65536 is out of range"),
    ([(1, 2)], [-1], "port -1 is out of range"),
])
def test_bad_input_is_rejected_with_a_message_naming_it(
        ranges: list[tuple[object, object]], ports: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TargetSet(ranges, ports)  # type: ignore[arg-type]


def test_indices_outside_the_set_are_rejected() -> None:
    targets = TargetSet([(1, 2)], [80])
    with pytest.raises(IndexError, match="index 2 is out of range"):
        targets.at(2)
    with pytest.raises(IndexError):
        targets.at(-1)


def test_sets_are_independent_copies() -> None:
    """The C side copies its inputs: later changes to the caller's lists change nothing."""
    ranges, ports = [(100, 101)], [1, 2]
    sets = [TargetSet(ranges, ports) for _ in range(50)]
    ranges.append((200, 300))
    ports.append(3)
    for targets in sets:
        assert [targets.at(i) for i in range(4)] == [
            (IPv4Address(ip), port) for port, ip in itertools.product([1, 2], [100, 101])]


@pytest.mark.parametrize("n_ips", [1, 2, 3, 7, 255, 256, 65537, 2**31 - 1, 2**31, 2**31 + 1,
                                   3_000_000_019, 2**32 - 1, 2**32])
def test_reciprocal_split_is_exact_at_every_quotient_edge(n_ips: int) -> None:
    """at() splits an index into (address, port) numbers by a multiply and shift, not a
    divide: exact on both sides of every multiple of n_ips, up to the largest index (2^48 - 1
    with the whole IPv4 space and every port)."""
    ports = list(range(65536))
    targets = TargetSet([(0, n_ips - 1)], ports)
    rng = random.Random(n_ips)
    quotients = {0, 1, 2, 255, 256, 32767, 32768, 65534, 65535,
                 *(rng.randrange(65536) for _ in range(20))}
    for q in quotients:
        for index in (q * n_ips - 1, q * n_ips, q * n_ips + 1, q * n_ips + n_ips - 1):
            if 0 <= index < targets.total:
                assert targets.at(index) == (IPv4Address(index % n_ips), index // n_ips), index


@pytest.mark.parametrize("ports", [[80], list(range(1, 1001)), [65534, 65535, 0, 1],
                                   [5, 6, 8], [7, 6, 5], [100, 101, 102, 1]])
def test_port_runs_and_near_runs_match_the_reference(ports: list[int]) -> None:
    """A port list that is a run (the usual -p A-B) is computed, not looked up; lists that
    only look like one must still come from the table."""
    ranges = [(0xC6120000, 0xC6120002)]
    targets = TargetSet(ranges, ports)
    assert [targets.at(i) for i in range(targets.total)] == \
        [reference_at(ranges, ports, i) for i in range(targets.total)]
