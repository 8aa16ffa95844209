"""The lab, built for real in throwaway namespaces: its ground truth holds on the wire."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from pyscan import firewall, netlink
from pyscan.lab import Lab, LabError

OPEN_A = (IPv4Address("198.19.0.5"), 80)
OPEN_B = (IPv4Address("198.19.200.9"), 22)
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
REPO_ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str) -> str:
    """Run ``code`` in a new interpreter (a different process from the one that made the lab)."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_open_pairs_accept_and_everything_else_resets(
        lab_factory: Callable[..., Lab], tcp_connect: Callable[..., str]) -> None:
    lab = lab_factory(open_pairs={OPEN_A, OPEN_B})
    assert tcp_connect(lab.scan_netns, "198.19.0.5", 80) == "open"
    assert tcp_connect(lab.scan_netns, "198.19.200.9", 22) == "open"
    # same address, other lab port / same port, other address / a port with no listener
    assert tcp_connect(lab.scan_netns, "198.19.0.5", 22) == "refused"
    assert tcp_connect(lab.scan_netns, "198.19.0.6", 80) == "refused"
    assert tcp_connect(lab.scan_netns, "198.19.0.5", 9) == "refused"
    assert lab.truth() == {OPEN_A, OPEN_B}


def test_without_an_open_set_every_address_is_open_on_every_lab_port(
        lab_factory: Callable[..., Lab], tcp_connect: Callable[..., str]) -> None:
    lab = lab_factory(subnet="198.19.4.0/30", ports=(443, 8080))
    for address in ("198.19.4.0", "198.19.4.3"):
        assert tcp_connect(lab.scan_netns, address, 443) == "open"
        assert tcp_connect(lab.scan_netns, address, 8080) == "open"
        assert tcp_connect(lab.scan_netns, address, 80) == "refused"
    assert len(lab.truth()) == 4 * 2


def test_every_probe_gets_exactly_one_reply_of_the_right_kind(
        lab_factory: Callable[..., Lab]) -> None:
    """SYN-ACK for open pairs, RST for the rest, each exactly once, acknowledging seq + 1 -
    the target's promise the scanner's accounting is measured against."""
    opened = {(IPv4Address(f"198.19.1.{i}"), 80) for i in range(1, 41)}
    lab = lab_factory(open_pairs=opened, ports=(80, 443))
    probes = [(IPv4Address(f"198.19.1.{i}"), port) for i in range(1, 61) for port in (80, 443)]
    path = netlink.resolve_path(probes[0][0], netns=lab.scan_netns)
    ports = range(41000, 41000 + len(probes))
    with firewall.isolation(f"t{lab.name.replace('-', '_')}", path.interface, ports,
                            netns=lab.scan_netns), netlink.in_netns(lab.scan_netns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    with sock:
        sock.bind((path.interface, 0))
        for index, (address, port) in enumerate(probes):
            frame = (Ether(src=path.source_mac, dst=path.gateway_mac)
                     / IP(src=str(path.source_ip), dst=str(address))
                     / TCP(sport=ports[index], dport=port, flags="S", seq=1000 + index))
            sock.send(bytes(frame))
        replies = _collect_replies(sock, expected=len(probes))
    kinds = Counter()
    for (address, port, sport), (flags, ack) in replies.items():
        index = sport - ports.start
        assert probes[index] == (address, port)
        assert ack == 1000 + index + 1
        kinds[flags] += 1
        expected_flags = "SA" if (address, port) in opened else "RA"
        assert flags == expected_flags, (address, port, flags)
    assert len(replies) == len(probes)
    assert kinds == Counter({"SA": 40, "RA": len(probes) - 40})


def _collect_replies(sock: socket.socket, expected: int) -> dict:
    """Replies keyed by (target, target port, our port); a second reply for a key fails."""
    replies: dict = {}
    deadline = time.monotonic() + 10.0
    quiet_until = None
    while time.monotonic() < deadline:
        # after the last expected reply, keep listening briefly for duplicates
        if quiet_until is None and len(replies) == expected:
            quiet_until = time.monotonic() + 0.5
        if quiet_until is not None and time.monotonic() > quiet_until:
            break
        ready, _, _ = select.select([sock], [], [], 0.1)
        if not ready:
            continue
        data, address = sock.recvfrom(2048)
        if address[2] == PACKET_OUTGOING:
            continue
        packet = Ether(data)
        if not packet.haslayer(TCP):
            continue
        tcp = packet[TCP]
        key = (IPv4Address(packet[IP].src), tcp.sport, tcp.dport)
        assert key not in replies, f"second reply for {key}"
        replies[key] = (str(tcp.flags), tcp.ack)
    return replies


def test_open_count_draws_a_reproducible_set_inside_the_lab() -> None:
    first = Lab("pure1", subnet="198.19.8.0/24", ports=(22, 80), open_count=50, seed=7)
    again = Lab("pure2", subnet="198.19.8.0/24", ports=(22, 80), open_count=50, seed=7)
    other = Lab("pure3", subnet="198.19.8.0/24", ports=(22, 80), open_count=50, seed=8)
    assert first.truth() == again.truth() != other.truth()
    assert len(first.truth()) == 50
    assert all(ip in first.subnet and port in (22, 80) for ip, port in first.truth())


def test_status_and_down_work_from_another_process(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(open_pairs={OPEN_A})
    status = json.loads(run_python(
        f"import json; from pyscan.lab import Lab; "
        f"print(json.dumps(Lab.load({lab.name!r}).status()))"))
    assert status["up"] is True
    assert status["listener_alive"] is True
    assert status["open_pairs"] == 1
    assert status["scan_command"] == (
        f"pyscan --netns {lab.name}-scan 198.19.0.0/16 -p 22,80,443,8080")
    listener_pid = status["listener_pid"]
    listener_start = firewall.process_start_time(listener_pid)
    assert listener_start is not None

    run_python(f"from pyscan.lab import Lab; Lab.load({lab.name!r}).down()")
    assert not netlink.netns_exists(lab.scan_netns)
    assert not netlink.netns_exists(lab.target_netns)
    assert not lab.state_path.exists()
    assert not firewall.owner_alive(listener_pid, listener_start)
    with pytest.raises(LabError, match="no lab named"):
        Lab.load(lab.name)


def test_sink_counts_every_frame_sent_from_the_scan_namespace(
        lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(sink=True, queues=2)
    path = netlink.resolve_path(IPv4Address("198.19.3.3"), netns=lab.scan_netns)
    assert path.gateway_mac == netlink.link_mac(lab.target_interface, lab.target_netns)
    syn = bytes(Ether(src=path.source_mac, dst=path.gateway_mac)
                / IP(src="198.18.0.1", dst="198.19.3.3") / TCP(dport=80, flags="S"))
    ack = bytes(Ether(src=path.source_mac, dst=path.gateway_mac)
                / IP(src="198.18.0.1", dst="198.19.3.3") / TCP(dport=80, flags="A"))
    lab.sink_reset()
    with netlink.in_netns(lab.scan_netns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    with sock:
        sock.bind((path.interface, 0))
        for _ in range(500):
            sock.send(syn)
        sock.send(ack)
    counts = _wait_for_sink(lab, frames=501)
    assert counts == {"frames": 501, "bytes": 500 * len(syn) + len(ack),
                      "syns": 500, "syn_bytes": 500 * len(syn)}
    # read again by a process that never loaded the program
    other = json.loads(run_python(
        f"import json; from pyscan.lab import Lab; "
        f"print(json.dumps(Lab.load({lab.name!r}).sink_count()))"))
    assert other == counts
    status = lab.status()
    assert status["sink_counters"] == counts
    assert status["scan_interface_counters"]["tx_packets"] >= 501
    assert status["scan_interface_counters"]["tx_dropped"] == 0


def _wait_for_sink(lab: Lab, frames: int) -> dict[str, int]:
    deadline = time.monotonic() + 5.0
    counts = lab.sink_count()
    while counts["frames"] < frames and time.monotonic() < deadline:
        time.sleep(0.05)
        counts = lab.sink_count()
    return counts


def test_sink_program_is_attached_natively_and_goes_with_the_lab(
        lab_factory: Callable[..., Lab]) -> None:
    from pyscan.native import xdp_query

    lab = lab_factory(sink=True)
    with netlink.in_netns(lab.target_netns):
        attached = xdp_query(netlink.link_index(lab.target_interface))
    assert attached["native_id"] != 0
    assert attached["generic_id"] == 0
    lab.down()
    assert not lab.is_up()


def test_two_labs_side_by_side_do_not_interfere(
        lab_factory: Callable[..., Lab], tcp_connect: Callable[..., str]) -> None:
    first = lab_factory(open_pairs={OPEN_A})
    second = lab_factory(open_pairs={OPEN_B})
    assert tcp_connect(first.scan_netns, "198.19.0.5", 80) == "open"
    assert tcp_connect(first.scan_netns, "198.19.200.9", 22) == "refused"
    assert tcp_connect(second.scan_netns, "198.19.200.9", 22) == "open"
    assert tcp_connect(second.scan_netns, "198.19.0.5", 80) == "refused"
    first.down()
    assert second.is_up() and second.listener_alive()
    assert tcp_connect(second.scan_netns, "198.19.200.9", 22) == "open"


def test_up_again_with_same_settings_is_a_no_op_and_other_settings_are_refused(
        lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(open_pairs={OPEN_A})
    same = Lab(lab.name, open_pairs={OPEN_A}).up()
    assert same.status()["listener_pid"] == lab.status()["listener_pid"]
    with pytest.raises(LabError, match="already up with other settings"):
        Lab(lab.name, open_pairs={OPEN_B}).up()


def test_failure_half_way_removes_what_was_made(
        monkeypatch: pytest.MonkeyPatch, unique_name: Callable[[], str]) -> None:
    def broken_listener(self: Lab) -> None:
        raise LabError("listener exploded")

    monkeypatch.setattr(Lab, "_start_listener", broken_listener)
    lab = Lab(unique_name())
    with pytest.raises(LabError, match="listener exploded"):
        lab.up()
    assert not netlink.netns_exists(lab.scan_netns)
    assert not netlink.netns_exists(lab.target_netns)
    assert not lab.state_path.exists()


def test_down_is_quiet_about_parts_already_gone(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory()
    netlink.remove_netns(lab.target_netns)   # someone removed a part by hand
    lab.down()
    lab.down()
    assert not lab.is_up()
    assert not netlink.netns_exists(lab.scan_netns)


def test_up_over_a_half_made_lab_clears_it_and_builds_afresh(
        lab_factory: Callable[..., Lab], tcp_connect: Callable[..., str]) -> None:
    crashed = lab_factory(open_pairs={OPEN_A})
    record = json.loads(crashed.state_path.read_text())
    record["state"] = "starting"   # as left by a process killed in the middle of up()
    crashed.state_path.write_text(json.dumps(record))
    old_listener = crashed.status()["listener_pid"]

    rebuilt = Lab(crashed.name, open_pairs={OPEN_A}).up()
    try:
        assert rebuilt.status()["listener_pid"] != old_listener
        assert json.loads(rebuilt.state_path.read_text())["state"] == "up"
        assert tcp_connect(rebuilt.scan_netns, "198.19.0.5", 80) == "open"
    finally:
        rebuilt.down()


def test_concurrent_up_of_one_lab_builds_it_once(unique_name: Callable[[], str]) -> None:
    """Two processes race to bring the same lab up: one builds, the other finds it up."""
    name = unique_name()
    code = (f"from ipaddress import IPv4Address\nfrom pyscan.lab import Lab\n"
            f"print(Lab({name!r}, open_pairs={{{OPEN_A!r}}}).up().status()['listener_pid'])\n")
    racers = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
              for _ in range(2)]
    outputs = [racer.communicate(timeout=60) for racer in racers]
    try:
        assert all(racer.returncode == 0 for racer in racers), outputs
        assert outputs[0][0] == outputs[1][0] != "None\n"   # the same lab, one listener
    finally:
        Lab.load(name).down()
