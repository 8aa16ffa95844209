"""The AF_XDP driver on a veth pair between two throwaway namespaces.

The target namespace owns 198.19.0.0/16 as AnyIP and listens on OPEN_PORTS, so its kernel
answers every probe truthfully: SYN-ACK from an open port, RST-ACK from a closed one. Probes are
built here with scapy and an independent SipHash (siphashc), sent through the driver's TX rings,
and the replies read back from its RX ring - the engine is not involved, so these tests pin the
driver and the filter alone. Every namespace is removed on every path; the tests also check
that no XDP program is left on the interface, after close and after SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import siphashc
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

pytestmark = [
    pytest.mark.net,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and AF_XDP"),
]

native = pytest.importorskip("pyscan.native")

SCANNER = IPv4Address("198.18.0.1")
TARGET_GATEWAY = IPv4Address("198.18.0.2")
OPEN_PORTS = (22, 80)
CLOSED_PORTS = (81, 8081)
SOURCE_PORTS = range(40000, 40064)
KEY = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
_counter = itertools.count()
_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000

LISTENER = """
import socket, sys, time
socks = []
for port in map(int, sys.argv[1:]):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(4096); socks.append(s)
print("ready", flush=True)
time.sleep(3600)
"""


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True)


@dataclass
class VethLab:
    scan_ns: str
    target_ns: str
    scan_if: str
    target_if: str
    scan_mac: str
    target_mac: str
    queues: int

    def xdp_attached(self) -> bool:
        out = sh("ip", "-n", self.scan_ns, "-j", "-d", "link", "show", "dev", self.scan_if).stdout
        return "xdp" in json.loads(out)[0]


@contextlib.contextmanager
def inside(netns: str) -> Iterator[None]:
    """Moves the calling thread into netns for the block (sockets made there stay there)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    there = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if _libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {netns} failed")
        try:
            yield
        finally:
            if _libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back home failed")
    finally:
        os.close(there)
        os.close(home)


@contextlib.contextmanager
def veth_lab(queues: int = 1) -> Iterator[VethLab]:
    n = next(_counter)
    tag = f"{os.getpid()}-{n}"
    scan_ns, target_ns = f"pyscan-afxdp-{tag}-s", f"pyscan-afxdp-{tag}-t"
    scan_if, target_if = f"xs{os.getpid() % 100000}n{n}"[:15], f"xt{os.getpid() % 100000}n{n}"[:15]
    listener = None
    try:
        sh("ip", "netns", "add", scan_ns)
        sh("ip", "netns", "add", target_ns)
        sh("ip", "link", "add", scan_if, "numtxqueues", str(queues), "numrxqueues", str(queues),
           "netns", scan_ns, "type", "veth", "peer", "name", target_if,
           "numtxqueues", str(queues), "numrxqueues", str(queues), "netns", target_ns)
        for ns, dev, addr in ((scan_ns, scan_if, f"{SCANNER}/30"),
                              (target_ns, target_if, f"{TARGET_GATEWAY}/30")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", "dev", dev, "up")
            sh("ip", "-n", ns, "link", "set", "dev", "lo", "up")
        sh("ip", "-n", target_ns, "route", "add", "local", "198.19.0.0/16", "dev", "lo")
        sh("ip", "-n", scan_ns, "route", "add", "198.19.0.0/16", "via", str(TARGET_GATEWAY))
        macs = {}
        for ns, dev in ((scan_ns, scan_if), (target_ns, target_if)):
            out = sh("ip", "-n", ns, "-j", "link", "show", "dev", dev).stdout
            macs[dev] = json.loads(out)[0]["address"]
        listener = subprocess.Popen(
            ["ip", "netns", "exec", target_ns, sys.executable, "-c", LISTENER,
             *map(str, OPEN_PORTS)], stdout=subprocess.PIPE, text=True)
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        yield VethLab(scan_ns, target_ns, scan_if, target_if, macs[scan_if], macs[target_if],
                      queues)
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        sh("ip", "netns", "del", scan_ns, check=False)
        sh("ip", "netns", "del", target_ns, check=False)


def cookie(saddr: IPv4Address, daddr: IPv4Address, sport: int, dport: int,
           key: bytes = KEY) -> int:
    message = saddr.packed + daddr.packed + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
    return siphashc.siphash(key, message) & 0xFFFFFFFF


def probes(lab: VethLab, targets: list[tuple[IPv4Address, int]], *, seq_offset: int = 0,
           key: bytes = KEY) -> list[bytes]:
    frames = []
    for i, (ip, port) in enumerate(targets):
        sport = SOURCE_PORTS.start + i % len(SOURCE_PORTS)
        seq = (cookie(SCANNER, ip, sport, port, key) + seq_offset) & 0xFFFFFFFF
        frames.append(bytes(Ether(src=lab.scan_mac, dst=lab.target_mac)
                            / IP(src=str(SCANNER), dst=str(ip), ttl=64, id=i)
                            / TCP(sport=sport, dport=port, flags="S", seq=seq, window=1024)))
    return frames


def collect(xdp: native.AfXdp, expected: int, seconds: float = 3.0) -> dict[tuple, str]:
    """Replies read from the RX ring, as {(target ip, target port, our port): flags}."""
    replies: dict[tuple, str] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(replies) < expected:
        for raw in native.ring_recv_frames(xdp.rx_ring, 64, 50):
            frame = Ether(raw)
            ip, tcp = frame[IP], frame[TCP]
            replies[(IPv4Address(ip.src), tcp.sport, tcp.dport)] = str(tcp.flags)
    return replies


def targets_for(count: int) -> list[tuple[IPv4Address, int]]:
    hosts = [IPv4Address("198.19.3.1") + 7 * i for i in range(count)]
    return [(h, p) for h in hosts for p in (*OPEN_PORTS, *CLOSED_PORTS)]


def open_xdp(lab: VethLab, **options: object) -> native.AfXdp:
    settings: dict[str, object] = {"key": KEY, "queue_count": lab.queues,
                                   "tx_queues": lab.queues, "scanner_ip": SCANNER,
                                   "ports": SOURCE_PORTS, "ring_size": 512}
    settings.update(options)
    return native.AfXdp(lab.scan_if, **settings)  # type: ignore[arg-type]


def expected_replies(targets: list[tuple[IPv4Address, int]]) -> dict[tuple, str]:
    return {(ip, port, SOURCE_PORTS.start + i % len(SOURCE_PORTS)):
            ("SA" if port in OPEN_PORTS else "RA") for i, (ip, port) in enumerate(targets)}


@pytest.mark.parametrize("queues", [1, 2])
def test_probes_out_replies_in_exactly(queues: int) -> None:
    with veth_lab(queues) as lab, inside(lab.scan_ns):
        assert native.afxdp_queue_counts(lab.scan_if) == (queues, queues)
        xdp = open_xdp(lab)
        try:
            assert lab.xdp_attached()
            targets = targets_for(8)
            frames = probes(lab, targets)
            # Each TX ring sends its own share, as the engine's TX threads do.
            for q, ring in enumerate(xdp.tx_rings):
                assert native.ring_send_frames(ring, frames[q::queues]) == len(frames[q::queues])
            replies = collect(xdp, len(targets))
            assert replies == expected_replies(targets)
            tx = [native.ring_stats(ring) for ring in xdp.tx_rings]
            assert [s["tx_frames"] for s in tx] == [len(frames[q::queues]) for q in range(queues)]
            assert all(s["tx_errors"] == 0 for s in tx)
            assert sum(s["tx_bytes"] for s in tx) == sum(map(len, frames))
            counters = xdp.filter_counters()
            assert counters["matched"] >= len(targets)
            assert counters["seen"] == counters["matched"] + counters["passed"]
            rx = native.ring_stats(xdp.rx_ring)
            assert rx["rx_frames"] >= len(targets) and rx["rx_drops"] == 0
            info = xdp.info()
            assert info["zerocopy"] is False  # veth has no zero-copy
            assert info["generic_attach"] is False  # veth has native XDP
            assert info["queue_count"] == queues and info["warnings"] == []
        finally:
            xdp.close()
        assert not lab.xdp_attached()
        assert sh("bpftool", "prog", "show", "id", str(info["prog_id"]), check=False).returncode


def test_wrong_cookies_never_reach_the_socket() -> None:
    with veth_lab() as lab, inside(lab.scan_ns):
        xdp = open_xdp(lab)
        try:
            targets = targets_for(4)
            native.ring_send_frames(xdp.tx_rings[0], probes(lab, targets, seq_offset=5))
            native.ring_send_frames(xdp.tx_rings[0], probes(lab, targets, key=bytes(16)))
            assert collect(xdp, 1, seconds=1.0) == {}
            counters = xdp.filter_counters()
            assert counters["matched"] == 0
            assert counters["passed"] >= 2 * len(targets)  # the kernel got them instead
        finally:
            xdp.close()


def test_hosts_own_traffic_keeps_working_during_a_scan() -> None:
    with veth_lab() as lab:
        with inside(lab.scan_ns):
            server = socket.socket()
            server.bind((str(SCANNER), 5555))
            server.listen(1)
            xdp = open_xdp(lab)
        try:
            targets = targets_for(2)
            native.ring_send_frames(xdp.tx_rings[0], probes(lab, targets))
            # ARP, then a whole TCP exchange with the scanner's kernel, through the filter.
            client = subprocess.Popen(
                ["ip", "netns", "exec", lab.target_ns, sys.executable, "-c",
                 f"import socket; c = socket.create_connection(('{SCANNER}', 5555), timeout=5);"
                 "c.sendall(b'ping'); print(c.recv(4).decode())"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            server.settimeout(10)
            conn, _ = server.accept()
            assert conn.recv(4) == b"ping"
            conn.sendall(b"pong")
            conn.close()
            out, err = client.communicate(timeout=20)
            assert client.returncode == 0 and out.strip() == "pong", err
            assert collect(xdp, len(targets)) == expected_replies(targets)
        finally:
            xdp.close()
            server.close()


def test_forced_generic_attach_and_copy_mode_work() -> None:
    with veth_lab() as lab, inside(lab.scan_ns):
        xdp = open_xdp(lab, attach_mode="generic", bind_mode="copy")
        try:
            info = xdp.info()
            assert info["generic_attach"] is True and info["zerocopy"] is False
            out = sh("ip", "-n", lab.scan_ns, "link", "show", "dev", lab.scan_if).stdout
            assert "xdpgeneric" in out
            targets = targets_for(2)
            native.ring_send_frames(xdp.tx_rings[0], probes(lab, targets))
            assert collect(xdp, len(targets)) == expected_replies(targets)
        finally:
            xdp.close()
        assert not lab.xdp_attached()


def test_zerocopy_refused_falls_back_to_copy_with_a_warning() -> None:
    with veth_lab() as lab, inside(lab.scan_ns):
        xdp = open_xdp(lab, bind_mode="zerocopy")
        try:
            info = xdp.info()
            assert info["zerocopy"] is False
            assert any("zero-copy refused" in w for w in info["warnings"])
        finally:
            xdp.close()


def test_interface_busy_with_another_program_is_refused_and_left_alone() -> None:
    with veth_lab() as lab:
        sh("ip", "-n", lab.scan_ns, "link", "set", "dev", lab.scan_if, "xdp", "obj",
           native.REPLY_FILTER_OBJECT, "sec", "xdp")
        with inside(lab.scan_ns), pytest.raises(native.AfXdpError,
                                                match="already has an XDP program"):
            open_xdp(lab)
        assert lab.xdp_attached()  # theirs, untouched
        sh("ip", "-n", lab.scan_ns, "link", "set", "dev", lab.scan_if, "xdp", "off")
        assert not lab.xdp_attached()


def test_sigkill_leaves_nothing_attached() -> None:
    child = """
import sys, time
import pyscan.native as n
x = n.AfXdp(sys.argv[1], key=bytes(16), queue_count=1, tx_queues=1, ring_size=256)
print("ready", flush=True)
time.sleep(3600)
"""
    with veth_lab() as lab:
        proc = subprocess.Popen(["ip", "netns", "exec", lab.scan_ns, sys.executable, "-c", child,
                                 lab.scan_if], stdout=subprocess.PIPE, text=True,
                                cwd=Path(native.__file__).resolve().parents[2])
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            assert lab.xdp_attached()
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        deadline = time.monotonic() + 5
        while lab.xdp_attached() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not lab.xdp_attached()


@pytest.mark.parametrize("options,message", [
    ({"ring_size": 100}, "ring size 100"),
    ({"frame_size": 1500}, "frame size 1500"),
    ({"tx_queues": 3}, "3 TX queues"),
])
def test_bad_configuration_names_the_value(options: dict[str, object], message: str) -> None:
    with veth_lab() as lab, inside(lab.scan_ns), pytest.raises(native.AfXdpError, match=message):
        open_xdp(lab, **options)


def test_unknown_interface_is_named() -> None:
    with pytest.raises(native.AfXdpError, match="no interface named nosuchif0"):
        native.AfXdp("nosuchif0", key=KEY, queue_count=1, tx_queues=1)
