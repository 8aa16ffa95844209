"""The lab's IPv6 half, checked with plain sockets from the scan namespace: the TCP truth
(SYN-ACK on open pairs, RST elsewhere), the ICMPv6 echo truth, neighbour discovery through
resolve_path, and the isolation firewall's rules applying to IPv6 replies."""

from __future__ import annotations

import os
import select
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, IPv6Network

import pytest

from pyscan import firewall, netlink
from pyscan.lab import SCAN_ADDRESS6, TARGET_ADDRESS6, Lab, LabInputError
from tests.net.helpers import tcp_connect_from

SUBNET6 = IPv6Network("2001:2::/124")
PORTS = (22, 80)
OPEN6 = {(IPv6Address("2001:2::3"), 80), (IPv6Address("2001:2::7"), 22),
         (IPv6Address("2001:2::7"), 80)}
ECHO6 = {IPv6Address("2001:2::2"), IPv6Address("2001:2::9")}
ISOLATED = range(42200, 42300)


def echo_answers(netns: str, addresses: list[IPv6Address], wait: float = 1.5) -> set[IPv6Address]:
    """Which addresses answer one ICMPv6 echo request each (raw socket: the kernel fills in
    the ICMPv6 checksum)."""
    with netlink.in_netns(netns):
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    ident = os.getpid() & 0xFFFF
    try:
        for sequence, address in enumerate(addresses):
            sock.sendto(struct.pack("!BBHHH", 128, 0, 0, ident, sequence) + b"pyscan",
                        (str(address), 0))
        answered: set[IPv6Address] = set()
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            data, peer = sock.recvfrom(2048)
            if data[0] == 129 and struct.unpack("!H", data[4:6])[0] == ident:
                answered.add(IPv6Address(peer[0]))
        return answered
    finally:
        sock.close()


def test_tcp_truth6_is_exact_with_plain_sockets(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(ports=PORTS, subnet6=SUBNET6, open_pairs6=OPEN6, open_count=0)
    assert lab.truth6() == OPEN6
    seen = {(address, port): tcp_connect_from(lab.scan_netns, str(address), port)
            for address in SUBNET6 for port in PORTS}
    assert {pair for pair, state in seen.items() if state == "open"} == OPEN6
    assert {state for pair, state in seen.items() if pair not in OPEN6} == {"refused"}
    # The IPv4 half is untouched by the IPv6 truth: its open set (empty) is its own.
    with netlink.in_netns(lab.scan_netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(2)
    with pytest.raises(ConnectionRefusedError):
        sock.connect(("198.19.0.3", 80))
    sock.close()


def test_every_pair_is_open_by_default(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(ports=(80,), subnet6="2001:2::10/126", open_count=0)
    assert lab.truth6() == {(address, 80) for address in IPv6Network("2001:2::10/126")}
    for address in IPv6Network("2001:2::10/126"):
        assert tcp_connect_from(lab.scan_netns, str(address), 80) == "open"
        assert tcp_connect_from(lab.scan_netns, str(address), 81) == "refused"


def test_echo_truth6_answers_only_the_chosen_addresses(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(ports=(80,), subnet6=SUBNET6, echo_hosts6=ECHO6, open_count=0)
    assert lab.echo_truth6() == ECHO6
    assert echo_answers(lab.scan_netns, list(SUBNET6)) == ECHO6


def test_resolve_path_finds_the_gateway_by_neighbour_discovery(
        lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(ports=(80,), subnet6=SUBNET6, open_count=0)
    gateway_mac = netlink.link_mac(lab.target_interface, lab.target_netns)
    # Nothing has talked IPv6 yet: the gateway is not in the neighbour table before this.
    path = netlink.resolve_path(IPv6Address("2001:2::5"), netns=lab.scan_netns)
    assert path.interface == lab.scan_interface
    assert path.source_ip == SCAN_ADDRESS6.ip
    assert path.gateway_ip == TARGET_ADDRESS6.ip
    assert path.gateway_mac == gateway_mac
    # The same through the default route (no target), and with an explicit next hop.
    default = netlink.resolve_path(family=6, netns=lab.scan_netns)
    assert (default.gateway_ip, default.gateway_mac) == (TARGET_ADDRESS6.ip, gateway_mac)
    # An on-link target is resolved itself, not through the gateway.
    on_link = netlink.resolve_path(TARGET_ADDRESS6.ip, netns=lab.scan_netns)
    assert on_link.gateway_ip is None and on_link.gateway_mac == gateway_mac


def test_an_unanswered_neighbour_solicitation_names_the_address(
        lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(ports=(80,), subnet6=SUBNET6, open_count=0)
    with pytest.raises(netlink.NetlinkError,
                       match=r"2001:2:0:ffff::99 did not answer neighbour discovery .* "
                             r"--gateway-mac"):
        netlink.resolve_path(IPv6Address("2001:2::5"), netns=lab.scan_netns,
                             gateway_ip=IPv6Address("2001:2:0:ffff::99"), arp_timeout=1.0)
    with pytest.raises(netlink.NetlinkError, match="is not IPv6 like the target"):
        netlink.resolve_path(IPv6Address("2001:2::5"), netns=lab.scan_netns,
                             source_ip=IPv4Address("198.18.0.1"))


def test_isolation_rules_drop_ipv6_replies_and_leave_nd_alone(
        lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(ports=(80,), subnet6=SUBNET6, open_pairs6=set(), open_count=0)
    target = "2001:2::4"
    assert tcp_connect_from(lab.scan_netns, target, 80, source_port=42210) == "refused"
    scan_id = "t" + lab.name.replace("-", "_")
    with firewall.isolation(scan_id, lab.scan_interface, ISOLATED, netns=lab.scan_netns) as table:
        assert firewall.list_tables(netns=lab.scan_netns) == [table]
        # The RST to an isolated port is dropped before the kernel's TCP sees it...
        assert tcp_connect_from(lab.scan_netns, target, 80, source_port=42211,
                                timeout=1.0) == "timeout"
        # ...while ports outside the range, and neighbour discovery, still work.
        assert tcp_connect_from(lab.scan_netns, target, 80, source_port=42400) == "refused"
        with netlink.in_netns(lab.scan_netns):
            # Forget the gateway, so ND runs again under the table (a child of this thread is
            # born in its namespace).
            subprocess.run(["ip", "-6", "neigh", "flush", "dev", lab.scan_interface],
                           check=True)
        path = netlink.resolve_path(IPv6Address(target), netns=lab.scan_netns)
        assert path.gateway_mac == netlink.link_mac(lab.target_interface, lab.target_netns)
    assert firewall.list_tables(netns=lab.scan_netns) == []


def test_lab_ipv6_settings_are_checked_before_anything_is_built() -> None:
    with pytest.raises(LabInputError, match="must lie in 2001:2::/48"):
        Lab(name="x", subnet6="2001:db8::/120")
    with pytest.raises(LabInputError, match="outside 2001:2:0:ffff::/64"):
        Lab(name="x", subnet6="2001:2:0:ffff::/120")
    with pytest.raises(LabInputError, match="too large"):
        Lab(name="x", subnet6="2001:2::/64")
    with pytest.raises(LabInputError, match=r"\[2001:2::1:1\]:80 is outside"):
        Lab(name="x", open_pairs6={(IPv6Address("2001:2::1:1"), 80)})
    with pytest.raises(LabInputError, match="without IPv6"):
        Lab(name="x", ipv6=False, echo_hosts6=[IPv6Address("2001:2::1")])
    assert Lab(name="x", sink=True).subnet6 is None      # sink labs: IPv4 unless asked
    assert Lab(name="x").subnet6 == IPv6Network("2001:2::/120")


def test_load_reproduces_the_ipv6_truth(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(ports=PORTS, subnet6=SUBNET6, open_count6=5, seed=11, echo_hosts6=ECHO6)
    loaded = Lab.load(lab.name)
    assert loaded.truth6() == lab.truth6() and len(lab.truth6()) == 5
    assert lab.open_count6() == 5 and lab.status()["open_pairs6"] == 5
    assert loaded.echo_truth6() == ECHO6
    assert lab.status()["scan_command6"] == (
        f"pyscan --netns {lab.scan_netns} {SUBNET6} -p 22,80")


def test_loss_drops_ipv6_frames_but_never_neighbour_discovery(
        lab_factory: Callable[..., Lab]) -> None:
    # 99.99 % loss: any IP frame is all but certainly dropped, so a resolved gateway proves
    # that neighbour discovery is exempt, and a timed-out connect that IPv6 is not.
    lab = lab_factory(ports=(80,), subnet6=SUBNET6, open_count=0, loss=99.99)
    path = netlink.resolve_path(IPv6Address("2001:2::5"), netns=lab.scan_netns,
                                arp_timeout=2.0)
    assert path.gateway_mac == netlink.link_mac(lab.target_interface, lab.target_netns)
    assert tcp_connect_from(lab.scan_netns, "2001:2::5", 80, timeout=1.0) == "timeout"
    assert lab.loss_counts()["inbound"] >= 1


def test_ipv6_blocklist_row_gets_no_probe_and_the_lab_prefix_scans_as_asked(
        lab_factory: Callable[..., Lab]) -> None:
    """The shipped IPv6 rows leave the lab's 2001:2::/124 alone (inside 2001:2::/48); a row
    inside the lab (same code path, other data) takes its addresses out of a straddling
    target, and the scan sends nothing to them: every lab address answers every probe, so the
    replies are exactly what was sent."""
    import pyscan
    from pyscan.blocklist import BlocklistEntry

    lab = lab_factory(ports=(80,), subnet6=SUBNET6, open_count=0)
    row = IPv6Network("2001:2::8/125")

    def scan(**settings: object) -> tuple[list[pyscan.Result], pyscan.ScanConfig]:
        config = pyscan.ScanConfig.parse([str(SUBNET6)], ports="80", driver="af-packet",
                                         wait=1, netns=lab.scan_netns, seed=3,
                                         **settings)  # type: ignore[arg-type]
        with pyscan.scan(config) as run:
            return list(run), config

    shipped, shipped_config = scan()
    assert shipped_config.blocklist_note is None
    assert {(r.ip, r.port) for r in shipped} == lab.truth6()
    rows = [BlocklistEntry(int(row.network_address), int(row.broadcast_address), "test row",
                           family=6)]
    results, config = scan(default_blocklist=rows)
    assert config.blocklist_note is not None and "2001:2::8/125" in config.blocklist_note
    assert sorted(r.ip for r in results) == [a for a in SUBNET6 if a not in row]


def test_target_answers_icmpv6_errors_at_any_rate(lab_factory: Callable[..., Lab]) -> None:
    """UDP to the IPv6 subnet draws ICMPv6 port unreachable, and 50 of them in a burst all
    come back (the kernel's default would allow one a second)."""
    lab = lab_factory(ports=(80,), subnet6=SUBNET6, open_count=0)
    with netlink.in_netns(lab.scan_netns):
        raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        for index in range(50):
            udp.sendto(b"x", (str(SUBNET6[index % SUBNET6.num_addresses]), 40000 + index))
        unreachable = 0
        deadline = time.monotonic() + 2
        while (left := deadline - time.monotonic()) > 0 and unreachable < 50:
            ready, _, _ = select.select([raw], [], [], left)
            if not ready:
                break
            data = raw.recv(2048)
            unreachable += data[0] == 1 and data[1] == 4   # type 1 code 4: port unreachable
        assert unreachable == 50
    finally:
        raw.close()
        udp.close()
