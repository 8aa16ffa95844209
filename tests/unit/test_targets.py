"""Target grammar and interval arithmetic, checked against brute-force address sets."""

from __future__ import annotations

import random
from ipaddress import IPv4Address

import pytest

from pyscan.targets import TargetError, TargetSet, parse_target_file, parse_target_spec


def ip(text: str) -> int:
    return int(IPv4Address(text))


def brute(ranges: list[tuple[int, int]]) -> set[int]:
    return {value for first, last in ranges for value in range(first, last + 1)}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("198.19.0.1", [(ip("198.19.0.1"), ip("198.19.0.1"))]),
        ("198.19.0.0/30", [(ip("198.19.0.0"), ip("198.19.0.3"))]),
        # masscan habit: host bits are ignored, the whole network is meant
        ("198.19.0.5/24", [(ip("198.19.0.0"), ip("198.19.0.255"))]),
        ("198.19.0.9/32", [(ip("198.19.0.9"), ip("198.19.0.9"))]),
        ("0.0.0.0/0", [(0, 0xFFFFFFFF)]),
        ("198.19.0.1-198.19.0.9", [(ip("198.19.0.1"), ip("198.19.0.9"))]),
        (" 198.19.0.1 - 198.19.0.2 ", [(ip("198.19.0.1"), ip("198.19.0.2"))]),
        (
            "198.19.0.1,198.19.1.0/31",
            [(ip("198.19.0.1"),) * 2, (ip("198.19.1.0"), ip("198.19.1.1"))],
        ),
    ],
)
def test_spec_grammar(spec: str, expected: list[tuple[int, int]]) -> None:
    assert parse_target_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("198.19.0.256", "198.19.0.256"),
        ("example.com", "example.com"),
        ("198.19.0.0/33", "33"),
        ("198.19.0.0/x", "x"),
        ("198.19.0.9-198.19.0.1", "198.19.0.9-198.19.0.1"),
        ("2001:db8::1", "IPv6"),
        ("198.19.0.1,,198.19.0.2", "198.19.0.1,,198.19.0.2"),
        ("", "''"),
    ],
)
def test_bad_specs_name_the_value(spec: str, named: str) -> None:
    with pytest.raises(TargetError) as error:
        parse_target_spec(spec)
    message = str(error.value)
    assert named in message
    assert "\n" not in message


def test_merge_is_sorted_disjoint_and_non_adjacent() -> None:
    targets = TargetSet.parse(
        ["198.19.0.10-198.19.0.20", "198.19.0.0/29", "198.19.0.8", "198.19.0.9"]
    )
    assert targets.ranges == ((ip("198.19.0.0"), ip("198.19.0.20")),)
    assert targets.count == 21


def test_subtract_matches_brute_force_on_random_sets() -> None:
    generator = random.Random(1234)
    for _ in range(300):
        def random_ranges(count: int) -> list[tuple[int, int]]:
            out = []
            for _ in range(count):
                first = generator.randrange(0, 200)
                out.append((first, first + generator.randrange(0, 30)))
            return out

        include = random_ranges(generator.randrange(0, 6))
        exclude = random_ranges(generator.randrange(0, 6))
        result = TargetSet(tuple(include)) - TargetSet(tuple(exclude))
        expected = brute(include) - brute(exclude)
        assert brute(list(result.ranges)) == expected
        assert result.count == len(expected)
        assert [int(a) for a in result] == sorted(expected)
        for first, last in result.ranges:
            assert first <= last
        for (_, last), (next_first, _) in zip(result.ranges, result.ranges[1:], strict=False):
            assert next_first > last + 1  # disjoint and merged


def test_index_matches_sorted_iteration() -> None:
    targets = TargetSet.parse(["198.19.0.250-198.19.1.3", "198.18.0.7", "198.19.9.0/30"])
    addresses = list(targets)
    assert len(addresses) == targets.count == 15
    assert [targets[i] for i in range(targets.count)] == addresses
    assert targets[-1] == IPv4Address("198.19.9.3")
    with pytest.raises(IndexError):
        targets.address_at(targets.count)


def test_membership() -> None:
    targets = TargetSet.parse(["198.19.0.0/24"]) - TargetSet.parse(["198.19.0.128/25"])
    assert IPv4Address("198.19.0.5") in targets
    assert IPv4Address("198.19.0.200") not in targets
    assert IPv4Address("198.18.0.1") not in targets


def test_whole_space_minus_excludes_is_instant() -> None:
    # No timing assertion (speed belongs in bench/): the check is that it completes at all
    # without per-address memory, and the arithmetic is exact.
    everything = TargetSet.parse(["0.0.0.0/0"])
    holes = TargetSet.parse(["10.0.0.0/8", "127.0.0.0/8", "255.255.255.255", "0.0.0.0"])
    remaining = everything - holes
    assert remaining.count == 2**32 - 2 * 2**24 - 2
    assert remaining.ranges[0][0] == 1
    assert remaining.address_at(remaining.count - 1) == ip("255.255.255.254")


def test_target_file(tmp_path) -> None:
    path = tmp_path / "targets.txt"
    path.write_text(
        "# lab\n198.19.0.0/31  # two\n\n198.19.1.1, 198.19.1.2\n198.19.2.1-198.19.2.2\n"
    )
    assert brute(parse_target_file(path)) == {
        ip("198.19.0.0"), ip("198.19.0.1"), ip("198.19.1.1"), ip("198.19.1.2"),
        ip("198.19.2.1"), ip("198.19.2.2"),
    }


def test_target_file_errors_name_file_line_and_value(tmp_path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("198.19.0.1\n198.19.0.300\n")
    with pytest.raises(TargetError, match=r"bad\.txt:2: .*198\.19\.0\.300"):
        parse_target_file(path)
    with pytest.raises(TargetError, match=r"missing\.txt"):
        parse_target_file(tmp_path / "missing.txt")


def test_describe() -> None:
    assert TargetSet.parse(["198.19.0.0/16"]).describe() == "198.19.0.0/16"
    assert TargetSet.parse(["198.19.0.1-198.19.0.3"]).describe() == "198.19.0.1-198.19.0.3"
    assert TargetSet.parse(["198.19.0.1", "198.19.0.3"]).describe() == "2 addresses in 2 ranges"
