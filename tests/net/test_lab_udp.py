"""The lab's UDP responders hold a whole burst (large receive buffers), and the lab counts the
datagrams its own kernel dropped (Lab.udp_drops), so a truth test can tell a lab drop from a
scanner miss."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Callable
from ipaddress import IPv4Network

import pyscan
from pyscan import netlink
from pyscan.drivers import DRIVERS
from pyscan.lab import Lab

SUBNET = "198.19.32.0/19"   # 8192 addresses: one UDP probe each
UDP_PORT = 123


def _queued_bytes(netns: str, port: int) -> int:
    """rx_queue of the UDP socket bound to `port` in `netns` (/proc/net/udp: bytes the kernel
    holds for it, skb truesize, what SO_RCVBUF limits)."""
    with netlink.in_netns(netns), open("/proc/thread-self/net/udp", encoding="ascii") as table:
        for line in list(table)[1:]:
            fields = line.split()
            if int(fields[1].rpartition(":")[2], 16) == port:
                return int(fields[4].partition(":")[2], 16)
    raise AssertionError(f"no UDP socket on port {port} in {netns}")


def _default_rcvbuf(netns: str) -> int:
    with netlink.in_netns(netns), open("/proc/sys/net/core/rmem_default",
                                       encoding="ascii") as sysctl:
        return int(sysctl.read())


def test_a_burst_the_default_buffer_cannot_hold_is_answered_in_full(
        lab_factory: Callable[..., Lab]) -> None:
    """The responder is stopped (SIGSTOP) while the scan sends, so every datagram of the burst
    waits in its socket at once; resumed, it answers them all, and the lab dropped none."""
    ok, reason = DRIVERS["af-packet"].available()
    assert ok, f"af-packet must run on this machine: {reason}"
    lab = lab_factory(subnet=SUBNET, ports=(80,), open_count=0, udp_ports=(UDP_PORT,))
    listener = lab.status()["listener_pid"]
    drops_before = lab.udp_drops()
    peak = 0
    paused = True

    def on_status(status: pyscan.ScanStatus) -> None:
        nonlocal peak, paused
        if not paused:
            return
        peak = max(peak, _queued_bytes(lab.target_netns, UDP_PORT))
        if status.phase == "waiting":
            paused = False
            os.kill(listener, signal.SIGCONT)

    config = pyscan.ScanConfig.parse(
        [SUBNET], ports=f"U:{UDP_PORT}", rate=100_000, driver="af-packet", wait=4.0,
        netns=lab.scan_netns, seed=3)
    os.kill(listener, signal.SIGSTOP)
    try:
        with pyscan.scan(config, on_status=on_status) as run:
            results = list(run)
    finally:
        os.kill(listener, signal.SIGCONT)
    assert not paused, "the scan never reached its waiting phase"
    # The burst needed more room than a socket gets by default (what the responders had).
    assert peak > _default_rcvbuf(lab.target_netns)
    assert {(r.ip, r.port) for r in results if r.status == "open"} == lab.udp_truth()
    assert len(lab.udp_truth()) == IPv4Network(SUBNET).num_addresses
    assert lab.udp_drops() == drops_before == 0


def test_udp_drops_counts_what_the_target_kernel_dropped(
        lab_factory: Callable[..., Lab]) -> None:
    """A socket of the target namespace with a small buffer that nobody reads: what the kernel
    could not queue for it is in udp_drops (at most what did not arrive; the veth's own
    backlog could drop some before UDP sees them)."""
    lab = lab_factory(subnet="198.19.64.0/24", ports=(80,), open_count=0,
                      udp_ports=(UDP_PORT,))
    drops_before = lab.udp_drops()
    sent = 3000
    with netlink.in_netns(lab.target_netns):
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sink:
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sink.bind(("0.0.0.0", 9))
        with netlink.in_netns(lab.scan_netns):
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sender:
            for _ in range(sent):
                sender.sendto(b"x" * 32, ("198.19.64.7", 9))
        received = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                sink.recv(64, socket.MSG_DONTWAIT)
                received += 1
    dropped = lab.udp_drops() - drops_before
    assert 0 < received < sent
    assert 0 < dropped <= sent - received
