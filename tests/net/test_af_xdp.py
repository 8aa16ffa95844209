"""The AF_XDP driver and its reply filter on the lab (two namespaces, a veth pair).

The lab's target owns the subnet as AnyIP and answers truthfully: SYN-ACK on its open pairs,
RST elsewhere. Two layers are tested:

- the driver alone: probes built here with scapy and an independent SipHash (siphashc) go out
  through the driver's TX rings and the replies are read back from its RX ring, no engine;
- whole scans through ``pyscan.scan()`` with ``driver="af-xdp"`` on 1 and 2 TX queues,
  compared with the lab's ground truth: every open pair found, nothing false, nothing twice.

Rings are opened inside the scanner namespace; nothing is sent from the host's own. The shared
``no_leftovers`` fixture checks namespaces and tables; these tests also check that no XDP
program stays on the interface, after close and after SIGKILL.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import siphashc
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from pyscan import netlink
from pyscan.config import ScanConfig
from pyscan.lab import Lab
from pyscan.scanner import ScanError, ScanStart, choose_driver, scan
from tests.ring_io.build import RingIo

native = pytest.importorskip("pyscan.native")

SCANNER = IPv4Address("198.18.0.1")
OPEN_PORTS = (22, 80)
CLOSED_PORTS = (81, 8081)
SOURCE_PORTS = range(40000, 40064)
KEY = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
REPO_ROOT = Path(native.__file__).resolve().parents[2]


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True)


def xdp_attached(lab: Lab) -> bool:
    out = sh("ip", "-n", lab.scan_netns, "-j", "-d", "link", "show", "dev",
             lab.scan_interface).stdout
    return "xdp" in json.loads(out)[0]


def assert_detached_soon(lab: Lab) -> None:
    """After a SIGKILL the kernel drops the bpf_link when the last fd goes: allow it 5 s."""
    deadline = time.monotonic() + 5
    while xdp_attached(lab) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not xdp_attached(lab)


@pytest.fixture(scope="module")
def ring_io(tmp_path_factory: pytest.TempPathFactory) -> RingIo:
    """Frame I/O through the driver's rings without the engine (tests/ring_io)."""
    return RingIo(tmp_path_factory.mktemp("ring_io"))


@pytest.fixture
def all_open_lab(lab_factory: Callable[..., Lab]) -> Callable[[int], Lab]:
    """A lab where OPEN_PORTS answer SYN-ACK on every address and every other port RST."""
    def make(queues: int = 1) -> Lab:
        return lab_factory(subnet="198.19.3.0/24", ports=OPEN_PORTS, queues=queues)
    return make


def cookie(saddr: IPv4Address, daddr: IPv4Address, sport: int, dport: int,
           key: bytes = KEY) -> int:
    message = saddr.packed + daddr.packed + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
    return siphashc.siphash(key, message) & 0xFFFFFFFF


def probes(lab: Lab, targets: list[tuple[IPv4Address, int]], *, seq_offset: int = 0,
           key: bytes = KEY) -> list[bytes]:
    frames = []
    for i, (ip, port) in enumerate(targets):
        sport = SOURCE_PORTS.start + i % len(SOURCE_PORTS)
        seq = (cookie(SCANNER, ip, sport, port, key) + seq_offset) & 0xFFFFFFFF
        frames.append(bytes(Ether(src=netlink.link_mac(lab.scan_interface, lab.scan_netns),
                                  dst=netlink.link_mac(lab.target_interface, lab.target_netns))
                            / IP(src=str(SCANNER), dst=str(ip), ttl=64, id=i)
                            / TCP(sport=sport, dport=port, flags="S", seq=seq, window=1024)))
    return frames


def collect(ring_io: RingIo, xdp: native.AfXdp, expected: int,
            seconds: float = 3.0) -> dict[tuple, str]:
    """Replies read from the RX ring, as {(target ip, target port, our port): flags}."""
    replies: dict[tuple, str] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(replies) < expected:
        for raw in ring_io.recv(xdp.rx_ring, 64, 50):
            frame = Ether(raw)
            ip, tcp = frame[IP], frame[TCP]
            replies[(IPv4Address(ip.src), tcp.sport, tcp.dport)] = str(tcp.flags)
    return replies


def targets_for(count: int) -> list[tuple[IPv4Address, int]]:
    hosts = [IPv4Address("198.19.3.1") + 7 * i for i in range(count)]
    return [(h, p) for h in hosts for p in (*OPEN_PORTS, *CLOSED_PORTS)]


def open_xdp(lab: Lab, **options: object) -> native.AfXdp:
    """The driver's sockets and filter on the lab's scanner end (call inside its netns)."""
    settings: dict[str, object] = {"key": KEY, "queue_count": lab.queues,
                                   "tx_queues": lab.queues, "scanner_ip": SCANNER,
                                   "ports": SOURCE_PORTS, "ring_size": 512}
    settings.update(options)
    return native.AfXdp(lab.scan_interface, **settings)  # type: ignore[arg-type]


def expected_replies(targets: list[tuple[IPv4Address, int]]) -> dict[tuple, str]:
    return {(ip, port, SOURCE_PORTS.start + i % len(SOURCE_PORTS)):
            ("SA" if port in OPEN_PORTS else "RA") for i, (ip, port) in enumerate(targets)}


# --- the driver alone ------------------------------------------------------------------------


@pytest.mark.parametrize("queues", [1, 2])
def test_probes_out_replies_in_exactly(all_open_lab: Callable[[int], Lab], queues: int,
                                       ring_io: RingIo) -> None:
    lab = all_open_lab(queues)
    with netlink.in_netns(lab.scan_netns):
        counts = netlink.queue_counts(lab.scan_interface)
        assert (counts.rx, counts.tx) == (queues, queues)
        xdp = open_xdp(lab)
    try:
        assert xdp_attached(lab)
        targets = targets_for(8)
        frames = probes(lab, targets)
        # Each TX ring sends its own share, as the engine's TX threads do.
        for q, ring in enumerate(xdp.tx_rings):
            assert ring_io.send(ring, frames[q::queues]) == len(frames[q::queues])
        replies = collect(ring_io, xdp, len(targets))
        assert replies == expected_replies(targets)
        tx = [native.ring_stats(ring) for ring in xdp.tx_rings]
        assert [s["tx_frames"] for s in tx] == [len(frames[q::queues]) for q in range(queues)]
        assert all(s["tx_errors"] == 0 for s in tx)
        assert sum(s["tx_bytes"] for s in tx) == sum(map(len, frames))
        counters = xdp.filter_counters()
        assert counters["matched"] == len(targets)
        assert counters["seen"] == counters["matched"] + counters["passed"]
        rx = native.ring_stats(xdp.rx_ring)
        assert rx["rx_frames"] == len(targets) and rx["rx_drops"] == 0
        info = xdp.info()
        assert info["zerocopy"] is False  # veth has no zero-copy
        assert info["generic_attach"] is False  # veth has native XDP
        assert info["queue_count"] == queues and info["warnings"] == []
    finally:
        xdp.close()
    assert not xdp_attached(lab)
    assert sh("bpftool", "prog", "show", "id", str(info["prog_id"]), check=False).returncode
    # Counters stay readable after close, for the summary; the sockets themselves do not.
    assert xdp.filter_counters()["matched"] == len(targets)
    with pytest.raises(ValueError, match="closed"):
        xdp.info()


def test_replies_the_rx_ring_cannot_hold_are_counted_as_drops(
        all_open_lab: Callable[[int], Lab], ring_io: RingIo) -> None:
    # Nobody reads while 2 x 64 replies arrive at a socket whose RX and fill rings hold 64:
    # the kernel keeps the first 64 and drops the rest (XSK rx_dropped, the fill ring being
    # empty). Every one of those must show in rx_drops, the counter behind driver_drops.
    lab = all_open_lab(1)
    with netlink.in_netns(lab.scan_netns):
        xdp = open_xdp(lab, rx_ring_size=64)
    try:
        assert xdp.info()["rx_ring_size"] == 64
        targets = targets_for(32)  # 128 probes, all inside the lab's /24
        frames = probes(lab, targets)
        before = veth_redirect_failures(lab)
        for start in range(0, len(frames), 64):  # bursts the veth's 256-slot queue takes
            assert ring_io.send(xdp.tx_rings[0], frames[start:start + 64]) == 64
            time.sleep(0.05)
        deadline = time.monotonic() + 3
        while xdp.filter_counters()["matched"] < len(targets) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert xdp.filter_counters()["matched"] == len(targets)  # every reply reached XDP
        received = collect(ring_io, xdp, len(targets), seconds=1.0)
        rx = native.ring_stats(xdp.rx_ring)
        assert len(received) == rx["rx_frames"] == 64
        assert rx["rx_drops"] == len(targets) - 64   # lost replies == counted drops
        # The veth's own count of frames its XDP program could not hand over agrees.
        assert veth_redirect_failures(lab) - before == rx["rx_drops"]
    finally:
        xdp.close()


def veth_redirect_failures(lab: Lab) -> int:
    """veth's per-queue rx_queue_N_drops summed (ethtool -S): frames lost after XDP."""
    out = sh("ip", "netns", "exec", lab.scan_netns, "ethtool", "-S", lab.scan_interface).stdout
    total = 0
    for line in out.splitlines():
        name, _, value = line.strip().partition(": ")
        if name.startswith("rx_queue_") and name.endswith("_drops"):
            total += int(value)
    return total


def test_back_to_back_sessions_on_one_interface(all_open_lab: Callable[[int], Lab],
                                                ring_io: RingIo) -> None:
    # The kernel frees a closed socket's queue a little after close(): reopening at once
    # must wait for it rather than fail with EBUSY.
    lab = all_open_lab(1)
    targets = targets_for(1)
    for _ in range(3):
        with netlink.in_netns(lab.scan_netns):
            xdp = open_xdp(lab)
        try:
            ring_io.send(xdp.tx_rings[0], probes(lab, targets))
            assert collect(ring_io, xdp, len(targets)) == expected_replies(targets)
        finally:
            xdp.close()


def test_tx_only_sockets_beyond_the_receive_queues(all_open_lab: Callable[[int], Lab],
                                                   ring_io: RingIo) -> None:
    # An interface can have more TX than RX queues: sockets past the RX queues carry only a
    # TX ring, and the RX side must leave them alone.
    lab = all_open_lab(2)
    with netlink.in_netns(lab.scan_netns):
        xdp = open_xdp(lab, rx_queues=1)
    try:
        assert xdp.info()["rx_queues"] == 1
        targets = targets_for(8)
        frames = probes(lab, targets)
        for q, ring in enumerate(xdp.tx_rings):
            assert ring_io.send(ring, frames[q::2]) == len(frames[q::2])
        assert [native.ring_stats(r)["tx_frames"] for r in xdp.tx_rings] == [16, 16]
        replies = collect(ring_io, xdp, len(targets), seconds=1.0)
        want = expected_replies(targets)
        # Replies hashed to queue 1 find no socket there and go to the kernel instead: lost
        # to the scan, so each is counted as unqueued and as a drop.
        assert replies.items() <= want.items()
        counters = xdp.filter_counters()
        assert counters["matched"] == len(targets)
        assert 0 < counters["unqueued"] == len(targets) - len(replies)
        assert native.ring_stats(xdp.rx_ring)["rx_drops"] == counters["unqueued"]
    finally:
        xdp.close()


def test_wrong_cookies_never_reach_the_socket(all_open_lab: Callable[[int], Lab],
                                              ring_io: RingIo) -> None:
    lab = all_open_lab(1)
    with netlink.in_netns(lab.scan_netns):
        xdp = open_xdp(lab)
    try:
        targets = targets_for(4)
        ring_io.send(xdp.tx_rings[0], probes(lab, targets, seq_offset=5))
        ring_io.send(xdp.tx_rings[0], probes(lab, targets, key=bytes(16)))
        assert collect(ring_io, xdp, 1, seconds=1.0) == {}
        counters = xdp.filter_counters()
        assert counters["matched"] == 0
        assert counters["passed"] >= 2 * len(targets)  # the kernel got them instead
    finally:
        xdp.close()


def test_hosts_own_traffic_keeps_working_during_a_scan(all_open_lab: Callable[[int], Lab],
                                                       tcp_connect: Callable[..., str],
                                                       ring_io: RingIo) -> None:
    lab = all_open_lab(1)
    with netlink.in_netns(lab.scan_netns):
        server = socket.socket()
        server.bind((str(SCANNER), 5555))
        server.listen(1)
        xdp = open_xdp(lab)
    try:
        targets = targets_for(2)
        ring_io.send(xdp.tx_rings[0], probes(lab, targets))
        # The scanner's kernel keeps its connections both ways through the filter: one it
        # accepts from the target side, one it makes itself (SYN-ACK with a foreign ack).
        client = subprocess.Popen(
            ["ip", "netns", "exec", lab.target_netns, sys.executable, "-c",
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
        assert tcp_connect(lab.scan_netns, "198.19.3.200", OPEN_PORTS[0]) == "open"
        assert tcp_connect(lab.scan_netns, "198.19.3.200", CLOSED_PORTS[0]) == "refused"
        assert collect(ring_io, xdp, len(targets)) == expected_replies(targets)
        assert xdp.filter_counters()["passed"] > 0
    finally:
        xdp.close()
        server.close()


def test_forced_generic_attach_and_copy_mode_work(all_open_lab: Callable[[int], Lab],
                                                  ring_io: RingIo) -> None:
    lab = all_open_lab(1)
    with netlink.in_netns(lab.scan_netns):
        xdp = open_xdp(lab, attach_mode="generic", bind_mode="copy")
    try:
        info = xdp.info()
        assert info["generic_attach"] is True and info["zerocopy"] is False
        out = sh("ip", "-n", lab.scan_netns, "link", "show", "dev", lab.scan_interface).stdout
        assert "xdpgeneric" in out
        targets = targets_for(2)
        ring_io.send(xdp.tx_rings[0], probes(lab, targets))
        assert collect(ring_io, xdp, len(targets)) == expected_replies(targets)
    finally:
        xdp.close()
    assert not xdp_attached(lab)


def test_zerocopy_refused_falls_back_to_copy_with_a_warning(
        all_open_lab: Callable[[int], Lab]) -> None:
    lab = all_open_lab(1)
    with netlink.in_netns(lab.scan_netns):
        xdp = open_xdp(lab, bind_mode="zerocopy")
    try:
        info = xdp.info()
        assert info["zerocopy"] is False
        assert any("zero-copy refused" in w for w in info["warnings"])
    finally:
        xdp.close()


def attach_foreign_program(lab: Lab) -> None:
    sh("ip", "-n", lab.scan_netns, "link", "set", "dev", lab.scan_interface, "xdp", "obj",
       native.REPLY_FILTER_OBJECT, "sec", "xdp")


def test_interface_busy_with_another_program_is_refused_and_left_alone(
        all_open_lab: Callable[[int], Lab]) -> None:
    lab = all_open_lab(1)
    attach_foreign_program(lab)
    try:
        with netlink.in_netns(lab.scan_netns), pytest.raises(
                native.AfXdpError, match=f"{lab.scan_interface} already has an XDP program"):
            open_xdp(lab)
        assert xdp_attached(lab)  # theirs, untouched
    finally:
        sh("ip", "-n", lab.scan_netns, "link", "set", "dev", lab.scan_interface, "xdp", "off")
    assert not xdp_attached(lab)


def test_sigkill_leaves_nothing_attached(all_open_lab: Callable[[int], Lab]) -> None:
    lab = all_open_lab(1)
    child = """
import sys, time
import pyscan.native as n
x = n.AfXdp(sys.argv[1], key=bytes(16), queue_count=1, tx_queues=1, ring_size=256)
print("ready", flush=True)
time.sleep(3600)
"""
    proc = subprocess.Popen(["ip", "netns", "exec", lab.scan_netns, sys.executable, "-c", child,
                             lab.scan_interface], stdout=subprocess.PIPE, text=True,
                            cwd=REPO_ROOT)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        assert xdp_attached(lab)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert_detached_soon(lab)


@pytest.mark.parametrize("options,message", [
    ({"ring_size": 100}, "ring size 100"),
    ({"frame_size": 1500}, "frame size 1500"),
    ({"tx_queues": 3}, "3 TX queues"),
])
def test_bad_configuration_names_the_value(all_open_lab: Callable[[int], Lab],
                                           options: dict[str, object], message: str) -> None:
    lab = all_open_lab(1)
    with netlink.in_netns(lab.scan_netns), pytest.raises(native.AfXdpError, match=message):
        open_xdp(lab, **options)
    assert not xdp_attached(lab)


def test_unknown_interface_is_named() -> None:
    with pytest.raises(native.AfXdpError, match="no interface named nosuchif0"):
        native.AfXdp("nosuchif0", key=KEY, queue_count=1, tx_queues=1)


# --- whole scans -----------------------------------------------------------------------------

LAB_SUBNET = IPv4Network("198.19.8.0/23")
LAB_PORTS = (22, 80, 443, 8080)


def run_scan(lab: Lab, **settings: object) -> tuple[list, object]:
    config = ScanConfig.parse([str(LAB_SUBNET)], ports=",".join(map(str, LAB_PORTS)),
                              rate="100k", wait="1", netns=lab.scan_netns, show_closed=True,
                              **settings)  # type: ignore[arg-type]
    with scan(config) as run:
        results = list(run)
    return results, run.summary


@pytest.mark.parametrize("queues", [1, 2])
def test_truth_lab_scan_finds_exactly_the_open_set(lab_factory: Callable[..., Lab],
                                                   queues: int) -> None:
    lab = lab_factory(subnet=str(LAB_SUBNET), ports=LAB_PORTS, open_count=150, seed=queues,
                      queues=queues)
    results, summary = run_scan(lab, driver="af-xdp", tx_threads=queues)
    opened = [(r.ip, r.port) for r in results if r.status == "open"]
    closed = [(r.ip, r.port) for r in results if r.status == "closed"]
    probes_total = LAB_SUBNET.num_addresses * len(LAB_PORTS)
    assert set(opened) == lab.truth()                       # every open pair, nothing false
    assert len(opened) == len(set(opened)) == 150           # nothing twice
    assert len(closed) == len(set(closed)) == probes_total - 150
    assert summary.sent == summary.probes == probes_total   # every probe sent once
    assert summary.invalid_cookies == 0 and summary.driver_drops == 0
    assert summary.driver == "af-xdp"
    assert f"{queues} TX queue(s)" in summary.driver_description
    counters = summary.driver_counters
    assert counters["xdp_matched"] == probes_total          # one reply per probe, all redirected
    assert counters["xdp_seen"] == counters["xdp_matched"] + counters["xdp_passed"] \
        + counters["xdp_arp_replied"]
    # Replies were spread over every receive queue, and each queue's socket took its share.
    redirected = per_queue_redirects(lab)
    assert len(redirected) == queues and all(redirected) and sum(redirected) == probes_total
    assert not xdp_attached(lab)


def per_queue_redirects(lab: Lab) -> list[int]:
    """veth's own per-queue counters of frames its XDP program redirected (ethtool -S)."""
    out = sh("ip", "netns", "exec", lab.scan_netns, "ethtool", "-S", lab.scan_interface).stdout
    counts = {}
    for line in out.splitlines():
        name, _, value = line.strip().partition(": ")
        if name.startswith("rx_queue_") and name.endswith("_xdp_redirect"):
            counts[int(name.split("_")[2])] = int(value)
    return [counts[q] for q in sorted(counts)]


def test_automatic_choice_is_af_xdp_and_falls_back_when_the_interface_is_busy(
        lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(subnet=str(LAB_SUBNET), ports=LAB_PORTS, open_count=40, seed=5)
    auto = ScanConfig.parse([str(LAB_SUBNET)], ports="22", netns=lab.scan_netns)
    # xdp-live is tried before af-xdp (issue 14); both fall back on a busy interface
    assert choose_driver(auto)[0] == "xdp-live"
    attach_foreign_program(lab)
    try:
        results, summary = run_scan(lab)
        assert summary.driver == "af-packet"
        assert "af-xdp could not be used" in summary.driver_description
        assert "already has an XDP program" in summary.driver_description
        assert {(r.ip, r.port) for r in results if r.status == "open"} == lab.truth()
        # The start is announced after the fallback, so it names the driver that runs.
        starts: list[ScanStart] = []
        with scan(ScanConfig.parse([str(LAB_SUBNET)], ports="22", wait="0",
                                   netns=lab.scan_netns), on_start=starts.append) as run:
            list(run)
        assert [start.driver for start in starts] == ["af-packet"] == [run.summary.driver]
        assert "af-xdp could not be used" in starts[0].why
        assert "already has an XDP program" in starts[0].why
        with pytest.raises(ScanError, match="already has an XDP program"):
            run_scan(lab, driver="af-xdp")  # asked for explicitly: no silent fallback
        with pytest.raises(ScanError, match="batch='5000' is invalid"):
            run_scan(lab, driver_options=["batch=5000"])  # a bad option is no reason to switch
        assert xdp_attached(lab)  # the other program is still there
    finally:
        sh("ip", "-n", lab.scan_netns, "link", "set", "dev", lab.scan_interface, "xdp", "off")


def test_killed_scan_leaves_no_program_behind(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(subnet=str(LAB_SUBNET), ports=LAB_PORTS, open_count=10, seed=9)
    # A slow CLI scan, killed with SIGKILL while it sends: the kernel drops the bpf_link.
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyscan", "--netns", lab.scan_netns, str(LAB_SUBNET), "-p",
         "22,80,443,8080", "--rate", "500", "--driver", "af-xdp", "--no-isolation", "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 20
        while not xdp_attached(lab) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert xdp_attached(lab), proc.stderr.read() if proc.poll() is not None else "no XDP"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert_detached_soon(lab)


# --- the full truth lab at speed -----------------------------------------------------------
# /16 x 4 ports, every probe answered: 262144 replies arriving as fast as probes leave. The
# RX thread shares 2 cores with the TX thread and the veth softirqs, so its RX rings must
# hold every reply that arrives while it is off the CPU (a 2048-slot ring lost 0.3-8 %).

TRUTH_SUBNET = IPv4Network("198.19.0.0/16")
TRUTH_PROBES = TRUTH_SUBNET.num_addresses * len(LAB_PORTS)
TRUTH_OPEN = 4000


def scan_truth_lab(lab: Lab, rate: str, options: list[str] | None = None) -> tuple[list, object]:
    config = ScanConfig.parse([str(TRUTH_SUBNET)], ports=",".join(map(str, LAB_PORTS)),
                              rate=rate, wait="2", netns=lab.scan_netns, show_closed=True,
                              driver="af-xdp", seed=3, driver_options=options or [])
    with scan(config) as run:
        results = list(run)
    return results, run.summary


@pytest.mark.parametrize("rate", ["250k", "max"])
def test_full_truth_lab_at_speed_loses_nothing(lab_factory: Callable[..., Lab],
                                               rate: str) -> None:
    lab = lab_factory(subnet=str(TRUTH_SUBNET), ports=LAB_PORTS, open_count=TRUTH_OPEN, seed=11)
    results, summary = scan_truth_lab(lab, rate)
    opened = [(r.ip, r.port) for r in results if r.status == "open"]
    closed = [(r.ip, r.port) for r in results if r.status == "closed"]
    assert summary.sent == summary.probes == TRUTH_PROBES     # every probe sent once
    assert summary.driver_drops == 0
    assert set(opened) == lab.truth()                         # exact open set
    assert len(opened) == len(set(opened)) == TRUTH_OPEN      # nothing twice
    assert len(closed) == len(set(closed)) == TRUTH_PROBES - TRUTH_OPEN
    assert summary.duplicates == 0 and summary.invalid_cookies == 0
    assert summary.driver_counters["xdp_matched"] == TRUTH_PROBES


def test_truth_lab_overflowing_a_tiny_rx_ring_counts_every_lost_reply(
        lab_factory: Callable[..., Lab]) -> None:
    # A 64-slot RX ring at full speed overflows: whatever is missing from the results must be
    # in driver_drops, one for one - never silently gone.
    lab = lab_factory(subnet=str(TRUTH_SUBNET), ports=LAB_PORTS, open_count=TRUTH_OPEN, seed=12)
    before = veth_redirect_failures(lab)
    results, summary = scan_truth_lab(lab, "max", ["rx-ring-size=64"])
    assert "of 64 frames" in summary.driver_description
    pairs = [(r.ip, r.port) for r in results]
    assert len(pairs) == len(set(pairs))                      # nothing twice
    opened = {(r.ip, r.port) for r in results if r.status == "open"}
    assert opened <= lab.truth()                              # nothing false
    assert summary.sent == TRUTH_PROBES
    assert summary.driver_counters["xdp_matched"] == TRUTH_PROBES  # every reply reached XDP
    assert summary.driver_drops > 0                           # the ring did overflow
    assert len(pairs) + summary.driver_drops == TRUTH_PROBES  # lost == counted
    assert veth_redirect_failures(lab) - before == summary.driver_drops


def test_default_rx_rings_fit_a_locked_memory_limit(lab_factory: Callable[..., Lab]) -> None:
    # Without CAP_IPC_LOCK the kernel charges UMEM to ulimit -l (8 MiB by default on Debian):
    # the default RX ring shrinks to fit and says so; an explicit size that does not fit is
    # refused, naming the limit.
    lab = lab_factory(subnet=str(LAB_SUBNET), ports=LAB_PORTS, open_count=30, seed=13)
    probes_total = LAB_SUBNET.num_addresses * len(LAB_PORTS)

    def cli_scan(*extra: str) -> subprocess.CompletedProcess[str]:
        command = (f"exec {sys.executable} -m pyscan --netns {lab.scan_netns} {LAB_SUBNET} -p "
                   f"{','.join(map(str, LAB_PORTS))} --rate 50000 --driver af-xdp --wait 1 "
                   f"--format ndjson {' '.join(extra)}")
        return subprocess.run(["prlimit", f"--memlock={8 << 20}", "--", "capsh",
                               "--drop=cap_ipc_lock", "--", "-c", command],
                              capture_output=True, text=True, timeout=60,
                              cwd=REPO_ROOT)

    fitted = cli_scan()
    assert fitted.returncode == 0, fitted.stderr
    assert "RX queue(s) of 2048 frames" in fitted.stderr
    assert "RX rings cut to 2048 frames by the locked-memory limit (ulimit -l)" in fitted.stderr
    found = [json.loads(line) for line in fitted.stdout.splitlines()]
    assert {(IPv4Address(r["ip"]), r["port"]) for r in found} == lab.truth()
    assert f"sent       {probes_total} of {probes_total} probes" in fitted.stderr
    assert "drops      0 frames" in fitted.stderr

    refused = cli_scan("-O", "rx-ring-size=32768")
    assert refused.returncode != 0
    assert "cannot register" in refused.stderr and "ulimit -l" in refused.stderr
    assert "rx-ring-size" in refused.stderr
    assert not xdp_attached(lab)
