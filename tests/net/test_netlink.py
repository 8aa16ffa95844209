"""Netlink helpers and resolve_path, run inside throwaway namespaces only."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from pyscan import netlink
from pyscan.lab import Lab
from pyscan.netlink import NetlinkError

REPO_ROOT = Path(__file__).resolve().parents[2]


def thread_netns_inode() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def test_resolve_path_in_the_lab_finds_the_veth_gateway_and_its_mac(
        lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(queues=3)
    path = netlink.resolve_path(IPv4Address("198.19.77.1"), netns=lab.scan_netns)
    assert path.interface == lab.scan_interface
    assert path.ifindex == netlink.link_index(lab.scan_interface, lab.scan_netns)
    assert path.source_ip == IPv4Address("198.18.0.1")
    assert path.source_mac == netlink.link_mac(lab.scan_interface, lab.scan_netns)
    assert path.gateway_ip == IPv4Address("198.18.0.2")
    # learned through a real ARP exchange: the lab has no static entry without a sink
    assert path.gateway_mac == netlink.link_mac(lab.target_interface, lab.target_netns)
    assert (path.tx_queues, path.rx_queues) == (3, 3)
    assert path.mtu == 1500


def test_resolve_path_source_mac_and_gateway_ip_overrides(
        lab_factory: Callable[..., Lab]) -> None:
    """masscan's --adapter-mac and --router-ip: the source MAC is taken as given; the next hop
    ARPed is the given address, not the route's (a silent one fails, naming it)."""
    lab = lab_factory()
    target = IPv4Address("198.19.0.1")
    path = netlink.resolve_path(target, netns=lab.scan_netns, source_mac="02-5C-A1-00-00-03",
                                gateway_ip=IPv4Address("198.18.0.2"))
    assert path.source_mac == "02:5c:a1:00:00:03"
    assert path.gateway_ip == IPv4Address("198.18.0.2")
    assert path.gateway_mac == netlink.link_mac(lab.target_interface, lab.target_netns)
    with pytest.raises(NetlinkError, match=r"198\.18\.0\.77 did not answer ARP"):
        netlink.resolve_path(target, netns=lab.scan_netns, arp_timeout=0.5,
                             gateway_ip=IPv4Address("198.18.0.77"))


def test_resolve_path_without_a_target_uses_the_default_route(
        lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory()
    path = netlink.resolve_path(netns=lab.scan_netns)
    assert path.interface == lab.scan_interface
    assert path.gateway_ip == IPv4Address("198.18.0.2")


def test_on_link_target_is_arped_itself(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory()
    path = netlink.resolve_path(IPv4Address("198.18.0.2"), netns=lab.scan_netns)
    assert path.gateway_ip is None
    assert path.gateway_mac == netlink.link_mac(lab.target_interface, lab.target_netns)


def test_overrides_are_used_as_given(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory()
    path = netlink.resolve_path(IPv4Address("198.19.0.1"), interface=lab.scan_interface,
                                source_ip=IPv4Address("198.18.0.9"),
                                gateway_mac="02-00-00-AA-bb-1", netns=lab.scan_netns)
    assert path.source_ip == IPv4Address("198.18.0.9")
    assert path.gateway_mac == "02:00:00:aa:bb:01"


def test_bad_gateway_mac_is_named(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory()
    with pytest.raises(NetlinkError, match="'02:00:zz' is not a MAC address"):
        netlink.resolve_path(IPv4Address("198.19.0.1"), gateway_mac="02:00:zz",
                             netns=lab.scan_netns)


def test_unknown_interface_lists_the_available_ones(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory()
    with pytest.raises(NetlinkError, match=r"no interface named 'eth9'.*available: .*lo"):
        netlink.resolve_path(IPv4Address("198.19.0.1"), interface="eth9", netns=lab.scan_netns)


def test_interface_down_or_without_carrier_is_reported(
        scratch_netns: Callable[[str], str]) -> None:
    ns = scratch_netns("")
    netlink.create_veth("pt-a", "pt-b", ns, ns)
    netlink.add_address("pt-a", IPv4Interface("198.18.9.1/24"), ns)
    with pytest.raises(NetlinkError, match="interface pt-a is down"):
        netlink.resolve_path(IPv4Address("198.18.9.2"), interface="pt-a", netns=ns)
    netlink.set_link_up("pt-a", ns)   # its peer pt-b stays down: no carrier
    with pytest.raises(NetlinkError, match="interface pt-a is up but has no carrier"):
        netlink.resolve_path(IPv4Address("198.18.9.2"), interface="pt-a", netns=ns)


def test_no_route_is_reported(scratch_netns: Callable[[str], str]) -> None:
    ns = scratch_netns("")
    with pytest.raises(NetlinkError, match=r"no route to 198\.19\.0\.1"):
        netlink.resolve_path(IPv4Address("198.19.0.1"), netns=ns)
    with pytest.raises(NetlinkError, match="no default route"):
        netlink.resolve_path(netns=ns)


def test_silent_next_hop_times_out_with_advice(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory()
    # an on-link address nobody owns: the kernel ARPs, nobody answers
    netlink.add_address(lab.scan_interface, IPv4Interface("198.18.5.1/24"), lab.scan_netns)
    with pytest.raises(NetlinkError,
                       match=r"198.18.5.77 did not answer ARP within 0.3 s on .* --gateway-mac"):
        netlink.resolve_path(IPv4Address("198.18.5.77"), netns=lab.scan_netns, arp_timeout=0.3)


def test_in_netns_moves_only_this_thread_and_comes_back(
        scratch_netns: Callable[[str], str]) -> None:
    ns = scratch_netns("")
    home = thread_netns_inode()
    seen: dict[str, int] = {}
    inside = threading.Event()
    release = threading.Event()

    def other_thread() -> None:
        inside.wait(5)
        seen["other"] = thread_netns_inode()
        release.set()

    worker = threading.Thread(target=other_thread)
    worker.start()
    with netlink.in_netns(ns):
        seen["inside"] = thread_netns_inode()
        assert netlink.link_names() == ["lo"]
        inside.set()
        release.wait(5)
    worker.join()
    assert seen["inside"] != home
    assert seen["other"] == home
    assert thread_netns_inode() == home


def test_in_netns_comes_back_after_an_exception(scratch_netns: Callable[[str], str]) -> None:
    ns = scratch_netns("")
    home = thread_netns_inode()
    with pytest.raises(RuntimeError), netlink.in_netns(ns):
        raise RuntimeError("boom")
    assert thread_netns_inode() == home


def test_in_netns_unknown_name_lists_namespaces() -> None:
    with pytest.raises(NetlinkError, match="no network namespace named 'pt-none-such'"), \
            netlink.in_netns("pt-none-such"):
        pass


def test_enter_netns_for_process_moves_threads_started_later(
        scratch_netns: Callable[[str], str]) -> None:
    ns = scratch_netns("")
    code = (
        "import threading, os\n"
        "from pyscan import netlink\n"
        f"netlink.enter_netns_for_process({ns!r})\n"
        "names = []\n"
        "t = threading.Thread(target=lambda: names.append(netlink.link_names()))\n"
        "t.start(); t.join()\n"
        "print(names[0], netlink.link_names())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO_ROOT, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['lo'] ['lo']"


def test_enter_netns_for_process_refuses_once_threads_run(
        scratch_netns: Callable[[str], str]) -> None:
    ns = scratch_netns("")
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, name="busy-worker")
    worker.start()
    try:
        with pytest.raises(NetlinkError, match=r"before threads start.*busy-worker"):
            netlink.enter_netns_for_process(ns)
    finally:
        stop.set()
        worker.join()


def test_veth_queue_counts_and_deletion(scratch_netns: Callable[[str], str]) -> None:
    left, right = scratch_netns("l"), scratch_netns("r")
    netlink.create_veth("pt-q0", "pt-q1", left, right, queues=4)
    netlink.set_link_up("pt-q0", left)
    netlink.set_link_up("pt-q1", right)
    netlink.add_address("pt-q0", IPv4Interface("198.18.7.1/30"), left)
    netlink.add_address("pt-q1", IPv4Interface("198.18.7.2/30"), right)
    path = netlink.resolve_path(IPv4Address("198.18.7.2"), netns=left)
    assert (path.tx_queues, path.rx_queues) == (4, 4)
    assert "pt-q1" in netlink.link_names(right)
    assert netlink.delete_link("pt-q0", left) is True
    assert "pt-q1" not in netlink.link_names(right)   # a veth goes as a pair
    assert netlink.delete_link("pt-q0", left) is False


def test_queue_counts_are_the_active_channels(scratch_netns: Callable[[str], str]) -> None:
    """A veth made with 4 queues and cut to 2 TX / 3 RX with `ethtool -L`: the counts (and
    so the default --tx-threads) follow what is active, not what the device was made with."""
    left, right = scratch_netns("l"), scratch_netns("r")
    netlink.create_veth("pt-c0", "pt-c1", left, right, queues=4)
    assert netlink.queue_counts("pt-c0", left) == netlink.QueueCounts(4, 4, "ethtool channels")
    subprocess.run(["ip", "netns", "exec", left, "ethtool", "-L", "pt-c0", "tx", "2", "rx", "3"],
                   check=True, capture_output=True)
    assert netlink.queue_counts("pt-c0", left) == netlink.QueueCounts(2, 3, "ethtool channels")
    netlink.set_link_up("pt-c0", left)
    netlink.set_link_up("pt-c1", right)
    netlink.add_address("pt-c0", IPv4Interface("198.18.7.5/30"), left)
    path = netlink.resolve_path(IPv4Address("198.18.7.6"), gateway_mac="02:00:00:00:00:01",
                                netns=left)
    assert (path.tx_queues, path.rx_queues) == (2, 3)


def test_queue_counts_without_ethtool_channels_and_of_a_missing_link(
        scratch_netns: Callable[[str], str]) -> None:
    ns = scratch_netns("q")
    # loopback has no ethtool channels: every queue it was made with is active
    assert netlink.queue_counts("lo", ns) == netlink.QueueCounts(1, 1, "rtnetlink queue count")
    with pytest.raises(NetlinkError, match=r"no interface named 'pt-none'.*available: lo"):
        netlink.queue_counts("pt-none", ns)


def test_namespace_create_list_remove(unique_name: Callable[[str], str]) -> None:
    name = unique_name("ns")
    netlink.create_netns(name)
    try:
        assert name in netlink.list_netns(name[:4])
        with pytest.raises(NetlinkError, match="already exists"):
            netlink.create_netns(name)
    finally:
        assert netlink.remove_netns(name) is True
    assert netlink.remove_netns(name) is False
    assert name not in netlink.list_netns()


def test_ecmp_default_route_uses_its_first_next_hop(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory()
    netlink.add_address(lab.scan_interface, IPv4Interface("198.18.6.1/24"), lab.scan_netns)
    subprocess.run(["ip", "-n", lab.scan_netns, "route", "replace", "default",
                    "nexthop", "via", "198.18.0.2", "dev", lab.scan_interface,
                    "nexthop", "via", "198.18.6.50", "dev", lab.scan_interface],
                   check=True, capture_output=True)
    path = netlink.resolve_path(netns=lab.scan_netns)
    assert path.gateway_ip == IPv4Address("198.18.0.2")
    assert path.source_ip == IPv4Address("198.18.0.1")
    assert path.gateway_mac == netlink.link_mac(lab.target_interface, lab.target_netns)
