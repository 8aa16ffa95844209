"""IPv6 targets: grammar, hit-list files as zmap writes them, family rules, the 2^32 cap and
the default blocklist's IPv6 rows, checked against Python's ipaddress."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from pathlib import Path

import pytest

from pyscan.blocklist import select_from_text
from pyscan.config import ConfigError, ScanConfig
from pyscan.targets import TargetError, TargetSet, parse_spec


def v6(text: str) -> int:
    return int(IPv6Address(text))


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [
        ("2001:2::1", "2001:2::1", "2001:2::1"),
        ("2001:2::/120", "2001:2::", "2001:2::ff"),
        # host bits ignored, as for IPv4 (masscan habit)
        ("2001:2::5/126", "2001:2::4", "2001:2::7"),
        ("2001:2::1-2001:2::9", "2001:2::1", "2001:2::9"),
        (" 2001:2::1 - 2001:2::2 ", "2001:2::1", "2001:2::2"),
        ("::/0", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ("2001:0002:0000::00ff/128", "2001:2::ff", "2001:2::ff"),
    ],
)
def test_ipv6_grammar(spec: str, first: str, last: str) -> None:
    (named,) = parse_spec(spec)
    assert (named.family, named.first, named.last) == (6, v6(first), v6(last))


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("2001:2::/129", "129"),
        ("2001:2::zz", "2001:2::zz"),
        ("2001:2::9-2001:2::1", "first address is above the last"),
        ("2001:2::1-198.19.0.1", "one end is IPv4"),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("2001:2:::1", "2001:2:::1"),
    ],
)
def test_bad_ipv6_specs_name_the_value(spec: str, named: str) -> None:
    with pytest.raises(TargetError) as error:
        parse_spec(spec)
    assert named in str(error.value) and "\n" not in str(error.value)


def test_ipv6_set_counts_indexes_and_contains_like_ipaddress() -> None:
    targets = TargetSet.parse(["2001:2::/120", "2001:2::100-2001:2::104", "2001:2::ff"])
    assert targets.family == 6
    assert targets.ranges == ((v6("2001:2::"), v6("2001:2::104")),)   # merged
    assert targets.count == 261
    assert targets[0] == IPv6Address("2001:2::") and targets[-1] == IPv6Address("2001:2::104")
    assert IPv6Address("2001:2::50") in targets and IPv6Address("2001:2::105") not in targets
    assert IPv4Address("0.0.0.1") not in TargetSet.parse(["::/96"])   # families never meet
    assert list(TargetSet.parse(["2001:2::/126"])) == list(
        IPv6Network("2001:2::/126"))
    assert TargetSet.parse(["2001:2::/64"]).count == 2**64
    assert TargetSet.parse(["2001:2::/120"]).describe() == "2001:2::/120"


def test_set_algebra_keeps_families_apart() -> None:
    four, six = TargetSet.parse(["198.19.0.0/24"]), TargetSet.parse(["2001:2::/120"])
    assert six - four == six and (six & four).count == 0 and (six & four).family == 6
    assert six - TargetSet.parse(["2001:2::/121"]) == TargetSet.parse(["2001:2::80/121"])
    assert TargetSet() | six == six
    with pytest.raises(TargetError, match="mix IPv4"):
        four | six


def test_mixed_families_in_one_scan_are_refused_in_one_line() -> None:
    with pytest.raises(TargetError) as error:
        TargetSet.parse(["198.19.0.1", "2001:2::1"])
    message = str(error.value)
    assert "198.19.0.1" in message and "2001:2::1" in message and "\n" not in message


def test_hit_list_file_as_users_write_them(tmp_path: Path) -> None:
    """zmap's --ipv6-target-file is one address per line; editors and other systems add
    blank lines, trailing blanks, tabs, CRLF, a byte-order mark and comments."""
    path = tmp_path / "hits.txt"
    path.write_bytes(
        b"\xef\xbb\xbf2001:2::1\r\n"
        b"\r\n"
        b"2001:2::2   \r\n"
        b"\t2001:2::3\t\n"
        b"   \n"
        b"# a comment line\n"
        b"2001:2::a  # why this one\n"
        b"2001:2::1\n"                       # duplicates are one target
        b"2001:2::b"                         # no newline at the end
    )
    targets = TargetSet.parse(files=[path])
    assert [str(address) for address in targets] == [
        "2001:2::1", "2001:2::2", "2001:2::3", "2001:2::a", "2001:2::b"]


def test_hit_list_bad_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "hits.txt"
    path.write_text("2001:2::1\n\n2001:2::g\n")
    with pytest.raises(TargetError, match=r"hits\.txt:3: .*2001:2::g"):
        TargetSet.parse(files=[path])


def test_more_than_2_32_addresses_need_max_targets() -> None:
    ScanConfig.parse(["2001:2::/96"], ports="80")   # exactly 2^32: accepted
    with pytest.raises(ConfigError) as error:
        ScanConfig.parse(["2001:2::/95"], ports="80")
    message = str(error.value)
    assert "2001:2::/95" in message and "2^32" in message and "--max-targets" in message
    capped = ScanConfig.parse(["2001:2::/64"], ports="80", max_targets="1000")
    assert capped.targets.count == 2**64 and capped.max_targets == 1000
    with pytest.raises(ConfigError, match="above 2"):
        ScanConfig(targets="2001:2::/64", ports=[80])   # the API checks the same


def test_source_and_gateway_ip_follow_the_targets_family() -> None:
    config = ScanConfig.parse(["2001:2::/120"], ports="80", source_ip="2001:2:0:ffff::1",
                              gateway_ip="2001:2:0:ffff::2")
    assert config.source_ip == IPv6Address("2001:2:0:ffff::1")
    assert config.gateway_ip == IPv6Address("2001:2:0:ffff::2")
    with pytest.raises(ConfigError, match=r"bad source IP '198\.19\.0\.1': the targets are IPv6"):
        ScanConfig.parse(["2001:2::/120"], ports="80", source_ip="198.19.0.1")
    with pytest.raises(ConfigError, match=r"bad source IP '2001:2::1': the targets are IPv4"):
        ScanConfig.parse(["198.19.0.0/24"], ports="80", source_ip="2001:2::1")
    with pytest.raises(ConfigError, match="accepted: one unicast address of the targets' family"):
        ScanConfig.parse(["2001:2::/120"], ports="80", source_ip="fe80::1%eth0")


def test_default_blocklist_ipv6_same_rules_as_ipv4() -> None:
    # Inside one row (2001:2::/48, benchmarking): scanned as asked, no note.
    lab = select_from_text(["2001:2::/120"])
    assert lab.targets == TargetSet.parse(["2001:2::/120"]) and lab.note is None
    # Broad: 2001::/16 holds 2001:2::/48, 2001:db8::/32 and more; they are subtracted.
    broad = select_from_text(["2001::/16"])
    assert broad.left_out and broad.note is not None
    assert "2001:db8::/32" in broad.note and "--no-default-blocklist" in broad.note
    for special in ("2001:db8::1", "2001:2::1", "2001::1"):
        assert IPv6Address(special) not in broad.targets
    assert IPv6Address("2001:4860::8888") in broad.targets
    blocked = [network for network in (IPv6Network("2001:db8::/32"), IPv6Network("2001:2::/48"))]
    expected = 2**112 - sum(network.num_addresses for network in blocked)
    assert broad.targets.count <= expected
    off = select_from_text(["2001::/16"], default_blocklist_on=False)
    assert off.targets.count == 2**112


def test_every_special_ipv6_network_python_knows_is_left_out_of_a_broad_scan() -> None:
    selection = select_from_text(["::/0"])
    private = getattr(ipaddress, "_IPv6Constants", None)
    for network in getattr(private, "_private_networks", []):
        assert network[0] not in selection.targets, network
        assert network[-1] not in selection.targets, network


def test_user_excludes_apply_per_family() -> None:
    selection = select_from_text(["2001:2::/120"], excludes=["2001:2::/121", "198.19.0.0/16"])
    assert selection.targets == TargetSet.parse(["2001:2::80/121"])


def test_zmapv6_spellings_reach_the_config(tmp_path: Path) -> None:
    """ZMapv6 (tumi8/zmap) users bring --ipv6-target-file, --ipv6-source-ip and the
    ipv6_tcp_synscan / icmp6_echoscan module names."""
    from pyscan.cli.zmap import parse_zmap

    hits = tmp_path / "hits.txt"
    hits.write_text("2001:2::1\n\n2001:2::2  \r\n")
    plan = parse_zmap(["--ipv6-target-file", str(hits), "-M", "ipv6_tcp_synscan", "-p", "80",
                       "--ipv6-source-ip", "2001:2:0:ffff::1"])
    config = ScanConfig.parse(plan.targets, **plan.scan)
    assert [str(address) for address in config.targets] == ["2001:2::1", "2001:2::2"]
    assert config.source_ip == IPv6Address("2001:2:0:ffff::1") and config.probe == "tcp-syn"
    echo = parse_zmap(["--ipv6-target-file", str(hits), "-M", "icmp6_echoscan"])
    assert ScanConfig.parse(echo.targets, **echo.scan).ping
    with pytest.raises(ConfigError, match="-S and --ipv6-source-ip"):
        parse_zmap(["-p", "80", "-S", "2001:2::9", "--ipv6-source-ip", "2001:2::9", "2001:2::1"])


@pytest.mark.parametrize(("targets", "expected"), [("198.19.0.0/30", "02:00:00:00:00:04"),
                                                   ("2001:2::/126", "02:00:00:00:00:06")])
def test_masscan_router_mac_per_family(targets: str, expected: str) -> None:
    """masscan's --router-mac-ipv4 / --router-mac-ipv6: the scan's family picks its own,
    over the shared --router-mac."""
    from pyscan.cli.masscan import parse_masscan

    plan = parse_masscan([targets, "-p", "80", "--router-mac", "02:00:00:00:00:01",
                          "--router-mac-ipv4", "02-00-00-00-00-04",
                          "--router-mac-ipv6", "02:00:00:00:00:06"])
    assert ScanConfig.parse(plan.targets, **plan.scan).gateway_mac == expected
    shared = parse_masscan([targets, "-p", "80", "--router-mac", "02:00:00:00:00:01"])
    assert ScanConfig.parse(shared.targets, **shared.scan).gateway_mac == "02:00:00:00:00:01"


def test_cli_lists_a_crlf_hit_list_with_excludes_exactly_once(tmp_path: Path) -> None:
    """The whole path: -iL hit list -> TargetSet -> the engine's permutation -> -sL."""
    from typer.testing import CliRunner

    from pyscan.cli import app

    hits = tmp_path / "hits.txt"
    hits.write_bytes(b"2001:2::1\r\n\r\n2001:2::2 \r\n 2001:2::3\t\r\n# skip me\r\n2001:2::4\r\n")
    exclude = tmp_path / "exclude.txt"
    exclude.write_text("198.19.0.0/16  # the other family: unused\n2001:2::3\n")
    result = CliRunner().invoke(app, ["-iL", str(hits), "--exclude-file", str(exclude),
                                      "-p", "80", "-sL", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert sorted(result.stdout.split()) == ["2001:2::1", "2001:2::2", "2001:2::4"]


def test_lab_counts_its_ipv6_truth_without_building_it() -> None:
    from pyscan.lab import Lab

    big = Lab(name="x", subnet6="2001:2::/108", ports=(22, 80, 443, 8080))
    assert big.open_count6() == 2**20 * 4
    small = Lab(name="x", subnet6="2001:2::/126", ports=(80, 443))
    assert small.open_count6() == len(small.truth6()) == 8
    assert Lab(name="x", ipv6=False).open_count6() == 0 == len(Lab(name="x", sink=True).truth6())
