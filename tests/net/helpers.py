"""What the lab truth tests share (root, throwaway namespaces; fixtures are in conftest.py):

- ``require_driver(driver)``: fail (not skip) when a driver this machine must run is missing.
- ``draw_pairs(rng, addresses, ports, count)``: ``count`` random (address, port) pairs.
- ``draw_lab6(lab_factory, seed, ...)``: a lab whose IPv6 TCP open pairs, UDP open pairs and
  echo hosts are drawn with ``seed``.
- ``scan_lab(lab, targets, driver, forged=None, **settings)``: one library scan from the lab's
  scan namespace; with ``forged`` frames the target side sends them every 0.1 s all along, and
  the scan must have refused them (af-packet: wrong cookies counted in C; the XDP drivers:
  left to the kernel by the filter).
- ``send_frames(lab, frames)``: frames sent once from the target's end of the veth.
- ``assert_no_duplicates(results)``, ``assert_unreachable_scan(...)``: result checks.
- ``tcp_connect_from(netns, ip, port, ...)``: a plain TCP connect (IPv4 or IPv6) made inside
  ``netns``.
- ``run_cli(*args)``: ``python -m pyscan ARGS`` from the repository, as a user types it.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

from scapy.packet import Packet
from scapy.sendrecv import sendp

import pyscan
from pyscan import netlink
from pyscan.drivers import DRIVERS
from pyscan.lab import Lab

Address = IPv4Address | IPv6Address
REPO_ROOT = Path(__file__).resolve().parents[2]


def require_driver(driver: str) -> None:
    ok, reason = DRIVERS[driver].available()
    assert ok, f"{driver} must run on this machine: {reason}"


def draw_pairs(rng: random.Random, addresses: Sequence[Address], ports: Iterable[int],
               count: int) -> set[tuple[Any, int]]:
    port_list = tuple(ports)
    return set(rng.sample([(a, p) for a in addresses for p in port_list], count))


def draw_lab6(lab_factory: Callable[..., Lab], seed: int, subnet6: str, tcp_ports: tuple[int, ...],
              open_count: int, echo_count: int, udp_ports: tuple[int, ...] = (),
              udp_count: int = 0) -> Lab:
    """IPv6 truth: ``open_count`` TCP pairs of subnet6 x tcp_ports, ``udp_count`` UDP pairs of
    subnet6 x udp_ports (responders), ``echo_count`` echo hosts; IPv4 a small /28 beside."""
    rng = random.Random(seed)
    addresses = list(IPv6Network(subnet6))
    open6 = draw_pairs(rng, addresses, tcp_ports, open_count)
    udp6 = draw_pairs(rng, addresses, udp_ports, udp_count) if udp_count else None
    echo6 = set(rng.sample(addresses, echo_count))
    return lab_factory(subnet="198.19.0.0/28", ports=tcp_ports, subnet6=subnet6,
                       open_pairs6=open6, echo_hosts6=echo6, open_udp_pairs6=udp6)


def send_frames(lab: Lab, frames: list[Packet]) -> None:
    with netlink.in_netns(lab.target_netns):
        sendp(frames, iface=lab.target_interface, verbose=False)


def _forge_until(lab: Lab, frames: list[Packet], stop: threading.Event) -> None:
    while not stop.wait(0.1):
        send_frames(lab, frames)


def scan_lab(lab: Lab, targets: str, driver: str, forged: list[Packet] | None = None,
             **settings: Any) -> tuple[list[pyscan.Result], pyscan.Summary]:
    settings.setdefault("rate", 20_000)
    config = pyscan.ScanConfig.parse([targets], driver=driver, netns=lab.scan_netns,
                                     **settings)
    stop = threading.Event()
    forger = threading.Thread(target=_forge_until, args=(lab, forged, stop), daemon=True)
    if forged:
        forger.start()
    try:
        with pyscan.scan(config) as run:
            results = list(run)
    finally:
        stop.set()
        if forged:
            forger.join()
    summary = run.summary
    assert summary is not None
    if forged:
        # The forged replies arrived and were refused: af-packet hands them to the engine,
        # whose modules count wrong cookies; the XDP filter (af-xdp, xdp-live) leaves them to
        # the kernel, except a forged DNS answer that hits the cookie's source port by chance:
        # XDP cannot check the DNS id, so C refuses it (docs/probes.md).
        if driver == "af-packet":
            assert summary.invalid_cookies > 0
        else:
            assert summary.driver_counters["xdp_passed"] > 0
    return results, summary


def assert_no_duplicates(results: list[pyscan.Result]) -> None:
    keys = Counter((r.protocol, r.ip, r.port) for r in results)
    assert keys, "the scan reported nothing"
    assert max(keys.values()) == 1


def assert_unreachable_scan(results: list[pyscan.Result], summary: pyscan.Summary,
                            truth: set[tuple[Any, int]], unreachable: dict[tuple[Any, int], int],
                            icmp_type: int, pairs: int) -> None:
    """A --show unreachable scan of a lab: the unreachable results are exactly the lab's
    unreachable pairs with their codes, the open ones exactly ``truth``, nothing twice, and
    the summary counts the ``pairs`` probed (closed ones stay hidden)."""
    found = {(r.ip, r.port): (r.icmp_type, r.icmp_code) for r in results
             if r.status == "unreachable"}
    assert found == {pair: (icmp_type, code) for pair, code in unreachable.items()}
    assert {(r.ip, r.port) for r in results if r.status == "open"} == truth
    assert {r.status for r in results} == {"open", "unreachable"}   # closed stay hidden
    assert all(r.protocol == "tcp" and r.window is None for r in results
               if r.status == "unreachable")
    assert max(Counter((r.ip, r.port) for r in results).values()) == 1
    assert (summary.open, summary.unreachable, summary.closed) == (
        len(truth), len(unreachable), pairs - len(truth) - len(unreachable))
    assert summary.duplicates == 0 and summary.invalid_cookies == 0


def tcp_connect_from(netns: str, ip: str, port: int, source_port: int = 0,
                     timeout: float = 2.0) -> str:
    """A plain TCP connect made inside ``netns``: "open", "refused" or "timeout"; IPv6 when
    ``ip`` is an IPv6 address."""
    family, anywhere = (socket.AF_INET6, "::") if ":" in ip else (socket.AF_INET, "0.0.0.0")
    with netlink.in_netns(netns):
        sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        if source_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((anywhere, source_port))
        sock.connect((ip, port))
        return "open"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"
    finally:
        sock.close()


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyscan", *args], capture_output=True,
                          text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
