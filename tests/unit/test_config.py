"""Every parser's grammar, and that every error names the bad value in one line."""

from __future__ import annotations

import math
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pyscan.config import (
    MAX_TARGETS_WITHOUT_EXCLUDE,
    ConfigError,
    ScanConfig,
    default_source_ports,
    parse_driver_options,
    parse_interface,
    parse_mac,
    parse_netns,
    parse_ports,
    parse_rate,
    parse_seed,
    parse_shard,
    parse_source_ports,
    parse_wait,
)
from pyscan.targets import TargetSet


def assert_names(error: pytest.ExceptionInfo[ConfigError], value: str) -> None:
    message = str(error.value)
    assert repr(value) in message or value in message
    assert "\n" not in message
    assert "accepted" in message


@pytest.mark.parametrize(
    ("text", "rate"),
    [("1000", 1000.0), ("250k", 250_000.0), ("250K", 250_000.0), ("10M", 10_000_000.0),
     ("1.5G", 1_500_000_000.0), ("0.5", 0.5), ("10kpps", 10_000.0), ("max", math.inf)],
)
def test_rate_grammar(text: str, rate: float) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["0", "0k", "-5", "fast", "10T", "", "1e5", "k"])
def test_rate_errors(text: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_rate(text)
    assert_names(error, text)


@pytest.mark.parametrize(
    ("text", "ports"),
    [("80", (80,)), ("443,22,80", (22, 80, 443)), ("1-5", (1, 2, 3, 4, 5)),
     ("80,79-81,80", (79, 80, 81)), ("0", (0,)), ("T:22,T:80", (22, 80)), (" 22 , 23 ", (22, 23))],
)
def test_port_grammar(text: str, ports: tuple[int, ...]) -> None:
    assert parse_ports(text) == ports


def test_all_ports() -> None:
    assert parse_ports("0-65535") == tuple(range(65536))


@pytest.mark.parametrize(
    ("text", "named"),
    [("65536", "65536"), ("10-5", "10-5"), ("", "''"), ("http", "http"), ("80,,81", "80,,81"),
     ("1-70000", "70000"), ("-1", "-1"), ("80-", "80-")],
)
def test_port_errors(text: str, named: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_ports(text)
    assert_names(error, named)


def test_shard() -> None:
    assert parse_shard("1/1") == (1, 1)
    assert parse_shard("3/4") == (3, 4)
    for bad in ("0/2", "3/2", "1", "a/b", "1/0"):
        with pytest.raises(ConfigError) as error:
            parse_shard(bad)
        assert_names(error, bad)


def test_seed() -> None:
    assert parse_seed("42") == 42
    assert parse_seed("0xff") == 255
    assert parse_seed(str(2**64 - 1)) == 2**64 - 1
    for bad in (str(2**64), "-1", "abc", ""):
        with pytest.raises(ConfigError) as error:
            parse_seed(bad)
        assert_names(error, bad)


def test_wait() -> None:
    assert parse_wait("0") == 0.0
    assert parse_wait("2.5") == 2.5
    assert parse_wait("10s") == 10.0
    for bad in ("-1", "soon", "inf", "nan"):
        with pytest.raises(ConfigError) as error:
            parse_wait(bad)
        assert_names(error, bad)


def test_source_ports() -> None:
    assert parse_source_ports("40000") == range(40000, 40001)
    assert parse_source_ports("40000-40255") == range(40000, 40256)
    for bad in ("0", "65536", "5-4", "x", "1-"):
        with pytest.raises(ConfigError) as error:
            parse_source_ports(bad)
        assert_names(error, bad)


def test_default_source_ports_avoid_linux_ephemeral_range() -> None:
    for _ in range(200):
        ports = default_source_ports()
        assert len(ports) == 256
        assert ports.start >= 61000
        assert ports[-1] <= 65535


def test_mac() -> None:
    assert parse_mac("02-00-00-00-00-0A") == "02:00:00:00:00:0a"
    assert parse_mac("2:0:0:0:0:1") == "02:00:00:00:00:01"
    for bad in ("02:00:00:00:00", "zz:00:00:00:00:00", "0200.0000.0001"):
        with pytest.raises(ConfigError) as error:
            parse_mac(bad)
        assert_names(error, bad)


def test_names() -> None:
    assert parse_interface("veth-scan0") == "veth-scan0"
    assert parse_netns("pyscan-scan") == "pyscan-scan"
    for bad in ("", "a" * 16, "eth/0", "a b", ".."):
        with pytest.raises(ConfigError) as error:
            parse_interface(bad)
        assert_names(error, bad)


def test_driver_options() -> None:
    options = parse_driver_options(["xdp-mode=native", "ring = 4096"])
    assert options == {"xdp-mode": "native", "ring": "4096"}
    with pytest.raises(ConfigError) as error:
        parse_driver_options(["novalue"])
    assert_names(error, "novalue")


def test_parse_builds_a_typed_config() -> None:
    config = ScanConfig.parse(
        ["198.19.0.0/24", "198.19.1.0/30"], ports="80,22", excludes=["198.19.0.0/25"],
        rate="250k", seed="7", shard="2/3", wait="0", source_ports="40000-40003",
        source_ip="198.18.0.1", gateway_mac="02-00-00-00-00-01", driver="null",
    )
    assert config.targets.count == 128 + 4
    assert config.excludes.count == 128
    assert config.ports == (22, 80)
    assert config.probe_count == 132 * 2
    assert config.rate == 250_000.0
    assert config.seed == 7
    assert config.shard == (2, 3)
    assert config.wait == 0.0
    assert config.source_ports == range(40000, 40004)
    assert config.source_ip == IPv4Address("198.18.0.1")
    assert config.gateway_mac == "02:00:00:00:00:01"
    assert config.is_dry_run


def test_default_seeds_differ_and_are_64_bit() -> None:
    seeds = {ScanConfig.parse(["198.19.0.1"], ports="80").seed for _ in range(8)}
    assert len(seeds) > 1
    assert all(0 <= seed < 2**64 for seed in seeds)


def test_everything_excluded_is_an_error() -> None:
    with pytest.raises(ConfigError, match="excludes remove all 256"):
        ScanConfig.parse(["198.19.0.0/24"], ports="80", excludes=["198.19.0.0/23"])


def test_no_targets_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no targets"):
        ScanConfig.parse([], ports="80")


def test_huge_target_set_needs_an_exclude() -> None:
    with pytest.raises(ConfigError) as error:
        ScanConfig.parse(["0.0.0.0/1"], ports="80", default_blocklist=False)
    assert str(2**31) in str(error.value)
    assert str(MAX_TARGETS_WITHOUT_EXCLUDE) in str(error.value)
    config = ScanConfig.parse(["0.0.0.0/1"], ports="80", excludes=["10.0.0.0/8"],
                              default_blocklist=False)
    assert config.targets.count == 2**31 - 2**24


def test_default_blocklist_counts_as_the_exclude_the_size_rule_asks_for() -> None:
    config = ScanConfig.parse(["0.0.0.0/1"], ports="80")
    # 0/8, 10/8, 127/8 and 100.64/10 are reserved: gone, and the note says so
    assert config.targets.count == 2**31 - 3 * 2**24 - 2**22
    assert config.blocklist_note is not None
    assert f"left out {3 * 2**24 + 2**22:,} addresses" in config.blocklist_note


def test_lab_targets_inside_one_row_are_kept_whole() -> None:
    config = ScanConfig.parse(["198.19.0.0/16"], ports="80")
    assert config.targets.count == 65536
    assert config.blocklist_note is None


def test_blocklist_allowlist_and_default_switch(tmp_path: Path) -> None:
    blocklist = tmp_path / "block.txt"
    blocklist.write_text("198.19.0.0/24\n2001:db8::/32\n")
    allowlist = tmp_path / "allow.txt"
    allowlist.write_text("198.19.0.0/23\n")
    config = ScanConfig.parse(["198.19.0.0/16"], ports="80", blocklist_files=[blocklist],
                              allowlist_files=[allowlist])
    assert config.targets == TargetSet.parse(["198.19.1.0/24"])
    assert config.excludes.count == 256
    assert config.input_warnings == ()   # the IPv6 row is for IPv6 scans, not a warning
    off = ScanConfig.parse(["198.16.0.0/12"], ports="80", default_blocklist=False)
    assert off.targets.count == 2**20 and off.blocklist_note is None


@pytest.mark.parametrize(("specs", "kwargs", "named"), [
    (["224.0.0.0/3"], {}, "the default blocklist removes all 536870912"),
    (["198.19.0.0/24"], {"excludes": ["198.19.0.0/23"]}, "the excludes remove all 256"),
])
def test_nothing_left_names_what_took_it(specs: list[str], kwargs: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        ScanConfig.parse(specs, ports="80", **kwargs)


def test_source_ports_default_to_a_choice_made_at_scan_time() -> None:
    config = ScanConfig.parse(["198.19.0.1"], ports="80")
    assert config.source_ports is None and not config.force_source_port
    forced = ScanConfig.parse(["198.19.0.1"], ports="80", source_ports="22",
                              force_source_port=True)
    assert forced.source_ports == range(22, 23) and forced.force_source_port


def test_bad_target_becomes_config_error() -> None:
    with pytest.raises(ConfigError, match=r"198\.19\.0\.999"):
        ScanConfig.parse(["198.19.0.999"], ports="80")


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [("tx_threads", 0, "0"), ("tx_threads", 65, "65"), ("ttl", 0, "0"), ("ttl", 256, "256"),
     ("driver", "dpdk", "dpdk"), ("rate", 0.0, "0.0"),
     ("wait", -1.0, "-1.0"), ("shard", (3, 2), "3/2"), ("seed", -1, "-1")],
)
def test_typed_fields_are_validated(field: str, value: object, named: str) -> None:
    with pytest.raises(ConfigError) as error:
        ScanConfig.parse(["198.19.0.1"], ports="80", **{field: value})  # type: ignore[arg-type]
    assert named in str(error.value)
    assert "accepted" in str(error.value)


def test_config_is_frozen() -> None:
    config = ScanConfig.parse(["198.19.0.1"], ports="80", driver_options=["batch=64"])
    with pytest.raises(AttributeError):
        config.rate = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.driver_options["batch"] = "32"  # type: ignore[index]


def test_driver_names_come_from_the_registry() -> None:
    from pyscan.drivers import names

    with pytest.raises(ConfigError) as error:
        ScanConfig.parse(["198.19.0.1"], ports="80", driver="dpdk")
    assert_names(error, "dpdk")
    assert f"accepted: {', '.join(names())}" in str(error.value)
    for name in names():
        assert ScanConfig.parse(["198.19.0.1"], ports="80", driver=name).driver == name


@pytest.mark.parametrize(("driver", "options", "named", "accepted"), [
    ("af-xdp", ["xdp-mode=fast"], "xdp-mode='fast'", "auto | zerocopy | copy"),
    ("af-xdp", ["batch=5000"], "batch='5000'", "integers 1..1024"),
    ("af-packet", ["rx_block_size=5000"], "rx_block_size=5000", "a power of two from 4096"),
    ("null", ["slots=0"], "slots='0'", "integers 1..65536"),
    ("pfring-zc", ["card-slots=many"], "card-slots='many'", "integers 64..1048576"),
    ("af-packet", ["xdp-mode=copy"], "'xdp-mode' is unknown to af-packet",
     "tx_frames, rx_block_size, rx_blocks"),
])
def test_a_chosen_driver_checks_its_options_up_front(driver: str, options: list[str],
                                                      named: str, accepted: str) -> None:
    from pyscan.errors import EXIT_BAD_INPUT, exit_code

    with pytest.raises(ConfigError) as error:
        ScanConfig.parse(["198.19.0.1"], ports="80", driver=driver, driver_options=options)
    assert named in str(error.value) and accepted in str(error.value)
    assert "\n" not in str(error.value)
    assert exit_code(error.value) == EXIT_BAD_INPUT


def test_automatic_choice_accepts_the_options_of_any_candidate() -> None:
    config = ScanConfig.parse(["198.19.0.1"], ports="80",
                              driver_options=["xdp-mode=copy", "tx_frames=64"])
    assert config.driver is None and not config.is_dry_run
    with pytest.raises(ConfigError) as error:
        ScanConfig.parse(["198.19.0.1"], ports="80", driver_options=["lib=/x.so"])
    assert "'lib' is unknown to the automatic choice (xdp-live, af-xdp, af-packet" in \
        str(error.value)
    assert "--driver" in str(error.value)


def test_dry_run_is_a_driver_that_sends_nothing() -> None:
    from pyscan.drivers import REGISTRY

    for row in REGISTRY:
        config = ScanConfig.parse(["198.19.0.1"], ports="80", driver=row.name)
        assert config.is_dry_run is (not row.sends)
    assert [row.name for row in REGISTRY if not row.sends] == ["null"]


def test_probe_type_comes_from_the_probe_registry() -> None:
    assert ScanConfig.parse(["198.19.0.1"], ports="80").probe == "tcp-syn"
    with pytest.raises(ConfigError,
                       match=r"unknown probe 'udp-dns' \(accepted: icmp-echo, tcp-syn, udp"):
        ScanConfig.parse(["198.19.0.1"], ports="80", probe="udp-dns")
