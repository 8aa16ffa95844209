"""-sL of scans that mix probe types: every line names its probe, in the engine's order."""

from __future__ import annotations

from collections import Counter
from ipaddress import IPv4Network

from typer.testing import CliRunner

from pyscan import ScanConfig
from pyscan.cli import app
from pyscan.scanner import list_probes, list_targets

SUBNET = "198.19.0.0/28"


def _lines(*args: str) -> list[str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_list_probes_follows_list_targets_order_with_a_port_under_two_protocols() -> None:
    config = ScanConfig.parse([SUBNET, "198.19.3.9"], ports="53,80,U:53,U:80", ping=True,
                              seed=7)
    probes = list(list_probes(config))
    assert [(address, port) for address, _, port in probes] == list(list_targets(config))
    assert len(set(probes)) == len(probes) == 17 * 5
    per_entry = Counter((protocol, port) for _, protocol, port in probes)
    assert per_entry == {("tcp", 53): 17, ("tcp", 80): 17, ("udp", 53): 17, ("udp", 80): 17,
                         ("icmp", 0): 17}


def test_list_probes_of_a_shard_is_that_shards_part() -> None:
    whole = set(list_probes(ScanConfig.parse([SUBNET], ports="53,U:53", ping=True, seed=3)))
    parts = [list(list_probes(ScanConfig.parse([SUBNET], ports="53,U:53", ping=True, seed=3,
                                               shard=(i, 3)))) for i in (1, 2, 3)]
    assert sum(len(part) for part in parts) == len(whole)
    assert set().union(*map(set, parts)) == whole


def test_scan_sl_names_the_protocol_when_protocols_mix() -> None:
    lines = _lines("scan", SUBNET, "-p", "53,U:53", "--ping", "-sL", "--seed", "4")
    hosts = [str(ip) for ip in IPv4Network(SUBNET)]
    assert sorted(lines) == sorted([f"{h}:53/tcp" for h in hosts] + [f"{h}:53/udp" for h in hosts]
                                   + [f"{h}/icmp" for h in hosts])
    assert lines != sorted(lines)


def test_scan_sl_of_one_protocol_keeps_masscans_shape() -> None:
    assert sorted(_lines("scan", SUBNET, "-p", "U:53,U:123", "-sL")) == sorted(
        f"{ip}:{port}" for ip in IPv4Network(SUBNET) for port in (53, 123))
    assert sorted(_lines("scan", SUBNET, "--ping", "-sL")) == sorted(
        str(ip) for ip in IPv4Network(SUBNET))


def test_masscan_sl_uses_masscans_port_numbers() -> None:
    lines = _lines("masscan", SUBNET, "-p80,U:53", "--ping", "-sL", "--seed", "4")
    ports = Counter(line.rsplit(":", 1)[1] for line in lines)
    assert ports == {"80": 16, str(65536 + 53): 16, str(3 * 65536): 16}


def test_masscan_sl_with_ping_alone_or_no_ports_lists_addresses() -> None:
    hosts = sorted(str(ip) for ip in IPv4Network(SUBNET))
    assert sorted(_lines("masscan", SUBNET, "--ping", "-sL")) == hosts
    assert sorted(_lines("masscan", SUBNET, "-sL")) == hosts
