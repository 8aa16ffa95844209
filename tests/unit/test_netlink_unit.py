"""Pure parts of netlink, firewall and lab: validation and bookkeeping, no root, no network."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from pyscan import firewall
from pyscan.firewall import FirewallError
from pyscan.lab import BENCHMARK_RANGE, Lab, LabError
from pyscan.netlink import NetlinkError
from pyscan.netlink.common import normalise_mac
from pyscan.netlink.queues import QueueCounts, counts_from_channels, counts_from_link


@pytest.mark.parametrize(("given", "expected"), [
    ("02:00:00:AA:bb:01", "02:00:00:aa:bb:01"),
    ("2-0-0-aa-bb-1", "02:00:00:aa:bb:01"),
])
def test_mac_addresses_are_normalised(given: str, expected: str) -> None:
    assert normalise_mac(given, "gateway MAC") == expected


@pytest.mark.parametrize("bad", ["", "02:00:00:aa:bb", "02:00:00:aa:bb:01:02", "0g:00:00:00:00:00",
                                 "020:00:00:00:00:00"])
def test_bad_mac_addresses_are_named(bad: str) -> None:
    with pytest.raises(NetlinkError, match="is not a MAC address"):
        normalise_mac(bad, "gateway MAC")


@pytest.mark.parametrize(("rx", "tx", "combined", "expected"), [
    (0, 0, 8, (8, 8)),      # a NIC with combined channels only (mlx5, ice, virtio-net)
    (3, 2, 0, (2, 3)),      # separate TX and RX channels (veth)
    (1, 1, 4, (5, 5)),      # both kinds: each direction has its own plus the combined
    (0, 4, 0, (4, 1)),      # TX only: a direction with none still has its one queue
])
def test_queue_counts_from_ethtool_channels(rx: int, tx: int, combined: int,
                                            expected: tuple[int, int]) -> None:
    counts = counts_from_channels(rx, tx, combined)
    assert counts == QueueCounts(*expected, source="ethtool channels")


def test_queue_counts_fall_back_when_channels_report_nothing() -> None:
    assert counts_from_channels(0, 0, 0) is None
    link = {"IFLA_NUM_TX_QUEUES": 6, "IFLA_NUM_RX_QUEUES": 2}
    assert counts_from_link(link) == QueueCounts(6, 2, "rtnetlink queue count")
    assert counts_from_link({}) == QueueCounts(1, 1, "rtnetlink queue count")


def test_lab_names_follow_the_subnet_and_name() -> None:
    lab = Lab("demo", subnet="198.19.0.0/24", ports=(80, 22))
    assert (lab.scan_netns, lab.target_netns) == ("demo-scan", "demo-tgt")
    assert (lab.scan_interface, lab.target_interface) == ("demo-s", "demo-t")
    assert lab.ports == (22, 80)
    assert lab.scan_command() == "pyscan --netns demo-scan 198.19.0.0/24 -p 22,80"


@pytest.mark.parametrize(("settings", "message"), [
    ({"name": "Has_Upper"}, "lab name 'Has_Upper' is not usable"),
    ({"name": "a" * 14}, "is not usable"),
    ({"subnet": "10.0.0.0/8"}, "must lie in 198.18.0.0/15"),
    ({"subnet": "198.18.0.128/25"}, "outside 198.18.0.0/24"),
    ({"subnet": "not-a-net"}, "is not an IPv4 network"),
    ({"ports": ()}, "must be a non-empty set"),
    ({"ports": (0,)}, "within 1-65535"),
    ({"queues": 0}, "queue count 0 is out of range"),
    ({"open_pairs": set(), "open_count": 1}, "not both"),
    ({"open_pairs": {(IPv4Address("198.18.0.1"), 80)}}, "open pair 198.18.0.1:80 is outside"),
    ({"subnet": "198.19.0.0/30", "ports": (80,), "open_count": 5}, "accepted: 0 to 4"),
])
def test_bad_lab_settings_are_named(settings: dict, message: str) -> None:
    with pytest.raises(LabError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Lab(**settings)


def test_open_all_truth_covers_every_address_including_network_and_broadcast() -> None:
    lab = Lab("t", subnet="198.19.1.0/30", ports=(80,))
    assert lab.truth() == {(IPv4Address(f"198.19.1.{i}"), 80) for i in range(4)}
    assert lab.open_count() == 4
    assert lab.listening_ports() == (80,)


def test_exact_open_set_listens_only_where_something_is_open() -> None:
    pairs = {(IPv4Address("198.19.0.9"), 443)}
    lab = Lab("t", ports=(22, 80, 443), open_pairs=pairs)
    assert lab.truth() == pairs
    assert lab.listening_ports() == (443,)
    assert Lab("t", open_pairs=set()).listening_ports() == ()


def test_lab_subnet_default_is_inside_the_benchmark_range() -> None:
    assert IPv4Network(Lab().subnet).subnet_of(BENCHMARK_RANGE)


@pytest.mark.parametrize(("scan_id", "interface", "ports", "message"), [
    ("bad id", "eth0", range(40000, 40010), "scan id 'bad id' is not usable"),
    ("ok", "name-longer-than-15", range(40000, 40010), "is not valid"),
    ("ok", "eth0", range(40000, 40000), "not a non-empty contiguous range"),
    ("ok", "eth0", range(40000, 40010, 2), "not a non-empty contiguous range"),
    ("ok", "eth0", range(65530, 65540), "within 1-65535"),
])
def test_bad_isolation_requests_are_refused_before_nft_runs(
        monkeypatch: pytest.MonkeyPatch, scan_id: str, interface: str, ports: range,
        message: str) -> None:
    def no_nft(*args: object, **kwargs: object) -> str:
        raise AssertionError("nft must not run for a bad request")

    monkeypatch.setattr(firewall, "run_nft", no_nft)
    with pytest.raises(FirewallError, match=message), \
            firewall.isolation(scan_id, interface, ports):
        pass


def test_missing_nft_is_reported_with_the_package_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(firewall.shutil, "which", lambda name: None)
    monkeypatch.setattr(firewall.os.path, "exists", lambda path: False)
    with pytest.raises(FirewallError, match=r"nft not found: install nftables"):
        firewall.run_nft("list tables")


def test_process_start_time_tells_a_live_pid_from_a_missing_one() -> None:
    import os

    me = firewall.process_start_time(os.getpid())
    assert me is not None
    assert firewall.owner_alive(os.getpid(), me)
    assert not firewall.owner_alive(os.getpid(), me + 1)   # same pid, other process
    assert firewall.process_start_time(2**22 + 1) is None   # above pid_max


def test_only_the_netlink_package_imports_pyroute2() -> None:
    """All pyroute2 stays in pyscan/netlink (checked on the source, lazy imports included)."""
    import ast
    from pathlib import Path

    import pyscan

    root = Path(pyscan.__file__).parent
    importers = set()
    for source in root.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] == "pyroute2" for name in names):
                importers.add(source.relative_to(root).parts[0])
    assert importers == {"netlink"}
