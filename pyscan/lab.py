"""The virtual lab: a scanner namespace and a target namespace joined by a veth pair.

::

    <name>-scan                                  <name>-tgt
    <name>-s 198.18.0.1/24  ==== veth ====  <name>-t 198.18.0.2/24
    default via 198.18.0.2                      local 198.19.0.0/16 dev lo  (AnyIP)
                                                listeners on the lab's ports (lab_listener)
                                                nft: SYN to (ip . port) not open -> RST
                                                [UDP responders on udp_ports; nft: UDP to
                                                 (ip . port) not in udp_open -> ICMP port
                                                 unreachable]
                                                [nft: echo request to ip not in echo_hosts
                                                 -> dropped]
                                                [nft: SYN to an unreachable pair -> ICMP
                                                 destination unreachable, mixed codes]
                                                [loss: nft drops N % of IP frames each way]
                                                [sink: XDP counts and drops every frame]
    --- IPv6 (v6lab; off in sink labs unless asked) ---
    2001:2:0:ffff::1/64  ====  veth  ====  2001:2:0:ffff::2/64
    default via 2001:2:0:ffff::2                local 2001:2::/120 dev lo   (AnyIP)
                                                listeners on [::]:port (V6ONLY)
                                                nft: SYN to (ip6 . port) not open6 -> RST
                                                [nft: echo request to ip6 not in echo6 ->
                                                 dropped; ND (ICMPv6 133-137) never matched]

The scanner reaches the subnet through a gateway (the target end of the veth), exactly like a
real network, so resolving the gateway's MAC goes through ARP. The target namespace owns the
whole subnet as local addresses: with a listener on 0.0.0.0:port its kernel answers SYN-ACK
on every address, and without one RST. An nftables set narrows "open" to exact (ip, port)
pairs, so every test knows the ground truth (:meth:`Lab.truth`). ``loss`` drops that percentage
of IPv4 frames at random, independently in each direction, on the target's veth (nftables
``numgen random`` on the netdev ingress and egress hooks; this kernel has no netem), so a
scan sees a lossy path: one probe finds an open pair with probability (1 - loss)^2. The sink
(XDP) sits before the ingress hook and still counts every frame. ``tcp_syncookies=2`` makes
the target answer each SYN with exactly one stateless SYN-ACK - no backlog to overflow at high
rates and no SYN-ACK retransmissions to look like duplicates.

A lab outlives the process that made it (``pyscan lab up`` returns); its state is in
``/run/pyscan/labs/<name>.json`` so that :meth:`Lab.load` in another process can report or
tear it down. Only 198.18.0.0/15 (RFC 2544 benchmarking) is ever used, and for IPv6 only
2001:2::/48 (RFC 5180 benchmarking).

IPv6 (``ipv6=None``: on, unless ``sink``): the link gets 2001:2:0:ffff::1/64 and ::2 added
with ``nodad`` and ``accept_dad=0`` in both namespaces (usable at once, link-local included:
the kernel's neighbour solicitation needs a link-local source), no router solicitations or
router advertisements (``accept_ra=0``, ``router_solicitations=0``), and the target owns
``subnet6`` through an IPv6 local route. The scanner resolves the gateway's MAC through
neighbour discovery, as it does ARP for IPv4. The truth is :meth:`Lab.truth6` and
:meth:`Lab.echo_truth6`. Sink labs stay IPv4-only by default: an IPv6 link sends a few MLD
reports when it comes up, which the sink would count as frames. ``loss`` drops IPv6 frames
alike, except neighbour solicitations and advertisements.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from pathlib import Path
from typing import Any, Generic, TypeVar

from pyscan import netlink
from pyscan.errors import ConfigError, Error
from pyscan.firewall import FirewallError, owner_alive, process_start_time, run_nft

__all__ = [
    "BENCHMARK_RANGE",
    "LAB_STATE_DIR",
    "Lab",
    "LabError",
    "LabInputError",
    "list_labs",
]

BENCHMARK_RANGE = IPv4Network("198.18.0.0/15")
# A /24, not a /30: the rest of it is free addresses a scan may borrow with --source-ip
# (ARP answered by pyscan, tests/net/test_source_ip_lab.py). Lab subnets lie outside it.
LINK_NETWORK = IPv4Network("198.18.0.0/24")
SCAN_ADDRESS = IPv4Interface("198.18.0.1/24")
TARGET_ADDRESS = IPv4Interface("198.18.0.2/24")
# --- IPv6 (v6lab) ---
BENCHMARK_RANGE6 = IPv6Network("2001:2::/48")
LINK_NETWORK6 = IPv6Network("2001:2:0:ffff::/64")
SCAN_ADDRESS6 = IPv6Interface("2001:2:0:ffff::1/64")
TARGET_ADDRESS6 = IPv6Interface("2001:2:0:ffff::2/64")
DEFAULT_SUBNET6 = "2001:2::/120"
# Before the veth exists, so it inherits them (default) and nothing global differs (all):
# addresses usable at once, no router discovery traffic.
_IPV6_SYSCTLS = {
    **{f"net/ipv6/conf/{scope}/{key}": value
       for scope in ("all", "default")
       for key, value in (("disable_ipv6", "0"), ("accept_dad", "0"), ("accept_ra", "0"),
                          ("router_solicitations", "0"))},
}
# The target answers ICMPv6 errors (unreachable) at any rate, as IPv4's icmp_ratelimit=0 and
# icmp_ratemask=0: the per-peer limit off, and the mask of types under the global limit
# (icmp_msgs_per_sec) narrowed to type 255 alone (reserved, never sent; an empty mask
# cannot be written).
_TARGET_IPV6_SYSCTLS = {"net/ipv6/icmp/ratelimit": "0", "net/ipv6/icmp/ratemask": "255"}
# --- end IPv6 (v6lab) ---
LAB_STATE_DIR = Path(os.environ.get("PYSCAN_LAB_DIR", "/run/pyscan/labs"))
SINK_MAP = "sink_counters"
SINK_FIELDS = ("frames", "bytes", "syns", "syn_bytes")
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,12}")
_LISTENER_READY_SECONDS = 15.0
_STOP_SECONDS = 5.0
# Target-namespace kernel settings: every SYN answered once, statelessly, at any rate.
# Both namespaces: no IPv6, so no router solicitations or MLD reports on the veth - the sink
# counts only what a scanner sends.
_QUIET_SYSCTLS = {
    "net/ipv6/conf/all/disable_ipv6": "1",
    "net/ipv6/conf/default/disable_ipv6": "1",
}
_TARGET_SYSCTLS = {
    "net/ipv4/tcp_syncookies": "2",
    "net/core/somaxconn": "65535",
    "net/ipv4/tcp_max_syn_backlog": "65535",
    # Every closed UDP pair answers port unreachable, at any rate: no ICMP rate limits.
    "net/ipv4/icmp_ratemask": "0",
    "net/ipv4/icmp_ratelimit": "0",
}


class LabError(Error):
    """The lab cannot be built, found or removed as asked; one line saying why."""


class LabInputError(LabError, ConfigError):
    """A lab asked for with a bad name, subnet, port list or count: bad input (exit 2), found
    before anything is built."""


# --- what the IPv4 and IPv6 halves share, parameterised by family --------------------------

_A = TypeVar("_A", IPv4Address, IPv6Address)
# nft parses a transaction of thousands of set elements at once, but not a line of millions.
_NFT_ELEMENTS_PER_LINE = 4096


@dataclass(frozen=True)
class _Family(Generic[_A]):
    """How one address family spells the lab's truth: nft names, Lab arguments, draws."""

    address: type[_A]
    nft: str          # "ip" / "ip6": the nft table family and the `daddr` match's protocol
    addr_type: str    # the nft set type of one address
    icmp: str         # "icmp" / "icmpv6": the `reject with` and echo-request keyword
    suffix: str       # "" / "6": lab table and set names, Lab arguments, state keys
    # The codes nft answers unreachable pairs with, given to the sorted pairs in turn so a
    # scan sees several: (nft's name, code).
    unreachable_codes: tuple[tuple[str, int], ...]

    def pair_text(self, ip: _A, port: int) -> str:
        """'198.19.0.1:80' / '[2001:2::1]:80': the state file's and error messages' form."""
        return f"{ip}:{port}" if self.address is IPv4Address else f"[{ip}]:{port}"

    def parse_pairs(self, items: Iterable[str]) -> set[tuple[_A, int]]:
        pairs = set()
        for item in items:
            host, _, port = item.rpartition(":")
            pairs.add((self.address(host.strip("[]")), int(port)))
        return pairs

    def pairs_text(self, pairs: Iterable[tuple[_A, int]]) -> list[str]:
        return sorted(self.pair_text(ip, port) for ip, port in pairs)

    def checked_pairs(self, pairs: Iterable[tuple[Any, int]], network: IPv4Network | IPv6Network,
                      what: str) -> frozenset[tuple[_A, int]]:
        """``pairs`` as addresses of this family, each inside ``network`` on a real port."""
        chosen = frozenset((self.address(ip), int(port)) for ip, port in pairs)
        for ip, port in chosen:
            if ip not in network or not 1 <= port <= 65535:
                raise LabInputError(f"{what} {self.pair_text(ip, port)} is outside the lab "
                                    f"({network}, ports 1-65535)")
        return chosen

    def pair_at(self, network: IPv4Network | IPv6Network, ports: tuple[int, ...],
                index: int) -> tuple[_A, int]:
        """Pair number ``index`` of network x ports, address-major."""
        return (self.address(int(network.network_address) + index // len(ports)),
                ports[index % len(ports)])

    def draw(self, network: IPv4Network | IPv6Network, ports: tuple[int, ...], count: int,
             rng: random.Random, what: str) -> frozenset[tuple[_A, int]]:
        """``count`` distinct pairs of network x ports (``what`` names the count)."""
        size = network.num_addresses * len(ports)
        if not 0 <= count <= size:
            raise LabInputError(
                f"{what} {count} is out of range (accepted: 0 to {size} = "
                f"{network.num_addresses} addresses x {len(ports)} ports)")
        return frozenset(self.pair_at(network, ports, index)
                         for index in rng.sample(range(size), count))

    def unreachable(self, network: IPv4Network | IPv6Network, ports: tuple[int, ...],
                    pairs: Iterable[tuple[Any, int]] | None, count: int | None,
                    seed: int | None, open_pairs: frozenset[tuple[_A, int]] | None
                    ) -> frozenset[tuple[_A, int]]:
        """The pairs answering a SYN with an ICMP destination unreachable: ``pairs``, or
        ``count`` drawn with ``seed`` among the pairs not in ``open_pairs`` (None: every pair
        is open, any may be drawn)."""
        suffix = self.suffix
        if pairs is not None and count is not None:
            raise LabInputError(f"give unreachable_pairs{suffix} or unreachable_count{suffix}, "
                                "not both")
        if pairs is not None:
            chosen = self.checked_pairs(pairs, network, "unreachable pair")
            if open_pairs and chosen & open_pairs:
                raise LabInputError("unreachable pairs must not be open pairs too")
            return chosen
        if not count:
            return frozenset()
        size = network.num_addresses * len(ports)
        free = size - len(open_pairs or ())
        if not 0 <= count <= free:
            raise LabInputError(
                f"unreachable_count{suffix} {count} is out of range (accepted: 0 to {free}, the "
                f"pairs of subnet{suffix} x ports that are not open)")
        # Its own stream of the seed: the open draw stays what it was without unreachables.
        rng = random.Random(f"unreachable{suffix}:{seed}")
        chosen_set: set[tuple[_A, int]] = set()
        while len(chosen_set) < count:
            pair = self.pair_at(network, ports, rng.randrange(size))
            if open_pairs is None or pair not in open_pairs:
                chosen_set.add(pair)
        return frozenset(chosen_set)

    def unreachable_codes_of(self, pairs: Iterable[tuple[_A, int]]) -> dict[tuple[_A, int], int]:
        codes = self.unreachable_codes
        return {pair: codes[i % len(codes)][1] for i, pair in enumerate(sorted(pairs))}

    # nft rules, as lines of one transaction

    def truth_rules(self, network: IPv4Network | IPv6Network,
                    open_pairs: frozenset[tuple[_A, int]] | None,
                    echo: frozenset[_A] | None,
                    udp_open: frozenset[tuple[_A, int]] | None) -> list[str]:
        """Table ``inet lab`` / ``inet lab6``: a SYN (SYN set, ACK clear: the rest of a
        handshake must pass) to a pair not in ``open_pairs`` is reset, an echo request to an
        address not in ``echo`` dropped (neighbour discovery never matches), UDP to a pair
        of ``network`` not in ``udp_open`` rejected with port unreachable. None: no rule."""
        table: str = f"inet lab{self.suffix}"
        suffix: str = self.suffix
        daddr: str = f"{self.nft} daddr"
        pair_type: str = f"{self.addr_type} . inet_service"
        lines: list[str] = []
        if open_pairs is not None:
            lines += _nft_set(table, f"open{suffix}", pair_type,
                              f"tcp flags & (syn | ack) == syn {daddr} . tcp dport != "
                              f"@open{suffix} reject with tcp reset", _nft_pairs(open_pairs))
        if echo is not None:
            lines += _nft_set(table, f"echo{suffix}", self.addr_type,
                              f"{self.icmp} type echo-request {daddr} != @echo{suffix} drop",
                              sorted(str(ip) for ip in echo))
        if udp_open is not None:
            lines += _nft_set(table, f"udp_open{suffix}", pair_type,
                              f"{daddr} {network} {daddr} . udp dport != @udp_open{suffix} "
                              f"reject with {self.icmp} type port-unreachable",
                              _nft_pairs(udp_open))
        if not lines:
            return []
        return [f"add table {table}",
                f"add chain {table} input {{ type filter hook input priority filter; "
                "policy accept; }", *lines]

    def unreachable_rules(self, pairs: frozenset[tuple[_A, int]]) -> list[str]:
        """Table ``ip labunreach`` / ``ip6 labunreach6``, one set per code, at input priority
        -10: before the open set's RST rule and the listener see the SYN. The target has no
        ICMP rate limit (_TARGET_SYSCTLS, _TARGET_IPV6_SYSCTLS): every SYN gets its answer."""
        if not pairs:
            return []
        table: str = f"{self.nft} labunreach{self.suffix}"
        lines = [f"add table {table}",
                 f"add chain {table} input {{ type filter hook input priority -10; "
                 "policy accept; }"]
        by_code: dict[str, list[tuple[_A, int]]] = {}
        for i, pair in enumerate(sorted(pairs)):
            name = self.unreachable_codes[i % len(self.unreachable_codes)][0]
            by_code.setdefault(name, []).append(pair)
        for name, chosen in by_code.items():
            set_name: str = name.replace("-", "_")
            lines += _nft_set(table, set_name, f"{self.addr_type} . inet_service",
                              f"tcp flags & (syn | ack) == syn {self.nft} daddr . tcp dport "
                              f"@{set_name} reject with {self.icmp} type {name}",
                              _nft_pairs(chosen))
        return lines


def _nft_pairs(pairs: Iterable[tuple[IPv4Address | IPv6Address, int]]) -> list[str]:
    return [f"{ip} . {port}" for ip, port in sorted(pairs)]


def _nft_set(table: str, set_name: str, set_type: str, rule: str, elements: list[str]
             ) -> list[str]:
    """A set of ``table``, the input-chain ``rule`` that reads it, and its ``elements``."""
    return [f"add set {table} {set_name} {{ type {set_type}; }}",
            f"add rule {table} input {rule}", *_nft_elements(table, set_name, elements)]


def _nft_elements(table: str, set_name: str, elements: list[str]) -> list[str]:
    step = _NFT_ELEMENTS_PER_LINE
    return [f"add element {table} {set_name} {{ {', '.join(elements[start:start + step])} }}"
            for start in range(0, len(elements), step)]


_V4 = _Family(IPv4Address, "ip", "ipv4_addr", "icmp", "",
              (("net-unreachable", 0), ("host-unreachable", 1), ("host-prohibited", 10),
               ("admin-prohibited", 13)))
# RFC 4443 3.1 codes
_V6 = _Family(IPv6Address, "ip6", "ipv6_addr", "icmpv6", "6",
              (("no-route", 0), ("admin-prohibited", 1), ("addr-unreachable", 3),
               ("port-unreachable", 4)))


@dataclass(frozen=True)
class _Listener:
    pid: int
    start_time: int


def _stop_process(pid: int, start_time: int) -> None:
    """SIGTERM, then SIGKILL after a grace period, a process only if it is still the one we
    started (a recycled pid belongs to someone else)."""
    for signum, grace in ((signal.SIGTERM, _STOP_SECONDS), (signal.SIGKILL, _STOP_SECONDS)):
        if not owner_alive(pid, start_time):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)   # reap it when it is our own child
            if not owner_alive(pid, start_time):
                return
            time.sleep(0.02)


def list_labs() -> list[str]:
    """Names of labs with a state file (up, or left half-made by a crashed process)."""
    if not LAB_STATE_DIR.is_dir():
        return []
    return sorted(p.stem for p in LAB_STATE_DIR.glob("*.json"))


class Lab:
    """A lab with a known open set; ``with Lab(...) as lab:`` brings it up and down.

    Open set: ``open_pairs`` exactly; else ``open_count`` pairs drawn from subnet x ports with
    ``seed``; else every address of the subnet on every port in ``ports``.
    """

    def __init__(self, name: str = "pyscan", subnet: str | IPv4Network = "198.19.0.0/16",
                 ports: Iterable[int] = (22, 80, 443, 8080),
                 open_pairs: set[tuple[IPv4Address, int]] | None = None,
                 open_count: int | None = None, seed: int | None = None, sink: bool = False,
                 queues: int = 1, loss: float = 0.0, udp_ports: Iterable[int] = (),
                 udp_open: set[tuple[IPv4Address, int]] | None = None,
                 echo_hosts: Iterable[IPv4Address] | None = None,
                 unreachable_pairs: set[tuple[IPv4Address, int]] | None = None,
                 unreachable_count: int | None = None,
                 ipv6: bool | None = None, subnet6: str | IPv6Network = DEFAULT_SUBNET6,
                 open_pairs6: set[tuple[IPv6Address, int]] | None = None,
                 open_count6: int | None = None,
                 echo_hosts6: Iterable[IPv6Address] | None = None,
                 unreachable_pairs6: set[tuple[IPv6Address, int]] | None = None,
                 unreachable_count6: int | None = None,
                 open_udp_pairs6: set[tuple[IPv6Address, int]] | None = None,
                 udp_open_count: int | None = None,
                 udp_open_count6: int | None = None) -> None:
        """UDP: responders on ``udp_ports`` (port 53 answers DNS version.bind, the others echo
        the datagram like an NTP-ish server) for the pairs of ``udp_open`` (None = every
        address; or ``udp_open_count`` pairs of subnet x udp_ports drawn with ``seed``); any
        other UDP pair answers ICMP port unreachable. ICMP echo: only
        ``echo_hosts`` answer (None = every address, the kernel's default). TCP: a SYN to
        one of ``unreachable_pairs`` (or ``unreachable_count`` pairs drawn with ``seed``
        outside the open set) is answered with an ICMP destination unreachable instead
        (:meth:`unreachable_truth` says which code).

        IPv6 (``ipv6``: None = on unless ``sink``): ``subnet6`` inside 2001:2::/48, TCP open
        set ``open_pairs6`` exactly, else ``open_count6`` pairs drawn from subnet6 x ports
        with ``seed``, else every address on every port; ICMPv6 echo answered by
        ``echo_hosts6`` only (None = every address). IPv6 UDP: responders answer the pairs of
        ``open_udp_pairs6``, or ``udp_open_count6`` pairs of subnet6 x udp_ports drawn with
        ``seed`` (as the IPv4 ones: DNS version.bind on 53, echo elsewhere);
        every other UDP pair of subnet6 answers ICMPv6 port unreachable. A SYN to one of
        ``unreachable_pairs6`` (or ``unreachable_count6`` pairs drawn with ``seed`` outside
        the IPv6 open set) is answered with an ICMPv6 destination unreachable
        (:meth:`unreachable_truth6`)."""
        if not _NAME_RE.fullmatch(name):
            raise LabInputError(
                f"lab name {name!r} is not usable (accepted: 1-13 of a-z 0-9 -, "
                "starting with a letter or digit)"
            )
        try:
            network = IPv4Network(subnet)
        except ValueError as error:
            raise LabInputError(f"lab subnet {subnet!r} is not an IPv4 network ({error})") from None
        if not network.subnet_of(BENCHMARK_RANGE) or network.overlaps(LINK_NETWORK):
            raise LabInputError(
                f"lab subnet {network} must lie in {BENCHMARK_RANGE} outside {LINK_NETWORK}"
            )
        port_list = sorted(set(ports))
        if not port_list or not all(1 <= p <= 65535 for p in port_list):
            raise LabInputError(f"lab ports {list(ports)} must be a non-empty set within 1-65535")
        if not 1 <= queues <= 64:
            raise LabInputError(f"lab queue count {queues} is out of range (accepted: 1 to 64)")
        if open_pairs is not None and open_count is not None:
            raise LabInputError("give open_pairs or open_count, not both")
        if isinstance(loss, bool) or not isinstance(loss, int | float) or not 0 <= loss < 100:
            raise LabInputError(
                f"lab loss {loss!r} is out of range (accepted: percent 0 <= loss < 100)")

        ipv6_off = sink if ipv6 is None else not ipv6
        self.udp_ports = tuple(sorted(set(udp_ports)))
        if not all(1 <= p <= 65535 for p in self.udp_ports):
            raise LabInputError(f"lab UDP ports {list(udp_ports)} must be within 1-65535")
        self._init_ipv6(ipv6_off, subnet6, open_pairs6, open_count6, echo_hosts6,
                        tuple(port_list), seed)
        self._init_udp6(open_udp_pairs6, udp_open_count6, seed)
        self._udp_open = self._udp_pairs(_V4, network, udp_open, udp_open_count, seed)
        if self._udp_open is not None and any(port not in self.udp_ports
                                              for _, port in self._udp_open):
            # IPv6 pairs bring their own ports; the IPv4 responders are on udp_ports.
            raise LabInputError("UDP open pairs must lie in the lab's subnet and udp_ports")
        self._echo = (None if echo_hosts is None
                      else frozenset(IPv4Address(ip) for ip in echo_hosts))
        self.name = name
        self.subnet = network
        self.ports = tuple(port_list)
        self.sink = sink
        self.queues = queues
        self.loss = float(loss)
        self.seed = seed
        self.scan_netns = f"{name}-scan"
        self.target_netns = f"{name}-tgt"
        self.scan_interface = f"{name}-s"
        self.target_interface = f"{name}-t"
        self.state_path = LAB_STATE_DIR / f"{name}.json"
        self._listener: _Listener | None = None
        self._listener_process: subprocess.Popen[str] | None = None
        self._sink_prog_id = 0
        self._recorded_state = ""   # what the state file said when loaded ("starting", "up")
        self._lock_fd: int | None = None

        self._open_all = open_pairs is None and open_count is None
        self._open: frozenset[tuple[IPv4Address, int]] = frozenset()
        if open_pairs is not None:
            self._open = _V4.checked_pairs(open_pairs, network, "open pair")
        elif open_count is not None:
            self._open = _V4.draw(network, self.ports, open_count, random.Random(seed),
                                  "open_count")
        self._unreachable = _V4.unreachable(network, self.ports, unreachable_pairs,
                                            unreachable_count, seed,
                                            None if self._open_all else self._open)
        self._unreachable6: frozenset[tuple[IPv6Address, int]] = frozenset()
        if unreachable_pairs6 is not None or unreachable_count6 is not None:
            if self.subnet6 is None:
                raise LabInputError("IPv6 unreachable pairs given to a lab without IPv6 "
                                    "(accepted: ipv6=True, or no IPv6 settings)")
            self._unreachable6 = _V6.unreachable(self.subnet6, self.ports, unreachable_pairs6,
                                                 unreachable_count6, seed,
                                                 None if self._open6_all else self._open6)

    def _udp_pairs(self, family: _Family[_A], network: IPv4Network | IPv6Network,
                   pairs: Iterable[tuple[Any, int]] | None, count: int | None,
                   seed: int | None) -> frozenset[tuple[_A, int]] | None:
        """The UDP pairs whose responder answers: ``pairs``, or ``count`` pairs of network x
        udp_ports drawn with ``seed``; None: every pair (no set, no rule)."""
        suffix = family.suffix
        if pairs is not None and count is not None:
            raise LabInputError(f"give the UDP open pairs or udp_open_count{suffix}, not both")
        if count is not None:
            if count and not self.udp_ports:
                raise LabInputError(f"udp_open_count{suffix} {count} needs UDP ports "
                                    "(accepted: udp_ports too, or no count)")
            # Its own stream of the seed: the TCP draws stay what they were without it.
            return family.draw(network, self.udp_ports, count,
                               random.Random(f"udp{suffix}:{seed}"), f"udp_open_count{suffix}")
        return None if pairs is None else family.checked_pairs(pairs, network, "UDP open pair")

    # --- IPv6 (v6lab) ----------------------------------------------------------------------

    def _init_ipv6(self, off: bool, subnet6: str | IPv6Network,
                   open_pairs6: set[tuple[IPv6Address, int]] | None, open_count6: int | None,
                   echo_hosts6: Iterable[IPv6Address] | None, ports: tuple[int, ...],
                   seed: int | None) -> None:
        self.subnet6: IPv6Network | None = None
        self._open6_all = True
        self._open6: frozenset[tuple[IPv6Address, int]] = frozenset()
        self._echo6: frozenset[IPv6Address] | None = None
        if off:
            if open_pairs6 is not None or open_count6 is not None or echo_hosts6 is not None:
                raise LabInputError("IPv6 open pairs or echo hosts given to a lab without "
                                    "IPv6 (accepted: ipv6=True, or no IPv6 settings)")
            return
        try:
            network = IPv6Network(subnet6)
        except ValueError as error:
            raise LabInputError(
                f"lab IPv6 subnet {subnet6!r} is not an IPv6 network ({error})") from None
        if not network.subnet_of(BENCHMARK_RANGE6) or network.overlaps(LINK_NETWORK6):
            raise LabInputError(
                f"lab IPv6 subnet {network} must lie in {BENCHMARK_RANGE6} outside "
                f"{LINK_NETWORK6}")
        if network.num_addresses > 2**20:
            raise LabInputError(f"lab IPv6 subnet {network} is too large for an exact truth "
                                "(accepted: /108 or longer)")
        if open_pairs6 is not None and open_count6 is not None:
            raise LabInputError("give open_pairs6 or open_count6, not both")
        self.subnet6 = network
        if open_pairs6 is not None:
            self._open6_all = False
            self._open6 = _V6.checked_pairs(open_pairs6, network, "open pair")
        elif open_count6 is not None:
            self._open6_all = False
            # Another stream than the IPv4 draw's, so the two sets are not the same shape.
            self._open6 = _V6.draw(network, ports, open_count6,
                                   random.Random(None if seed is None else f"ipv6-{seed}"),
                                   "open_count6")
        if echo_hosts6 is not None:
            self._echo6 = frozenset(IPv6Address(ip) for ip in echo_hosts6)
            if any(ip not in network for ip in self._echo6):
                raise LabInputError(f"IPv6 echo hosts must lie in the lab's subnet {network}")

    @property
    def ipv6(self) -> bool:
        return self.subnet6 is not None

    def truth6(self) -> set[tuple[IPv6Address, int]]:
        """Every (IPv6 address, port) that answers SYN-ACK; every other address of subnet6
        answers RST on every port."""
        if self.subnet6 is None:
            return set()
        if self._open6_all:
            return {(address, port) for address in self.subnet6 for port in self.ports
                    if (address, port) not in self._unreachable6}
        return set(self._open6)

    def echo_truth6(self) -> set[IPv6Address]:
        """Every IPv6 address that answers an ICMPv6 echo; the others stay silent."""
        if self.subnet6 is None:
            return set()
        return set(self.subnet6) if self._echo6 is None else set(self._echo6)

    def open_count6(self) -> int:
        """len(truth6()) without building it (a /108 on 4 ports is 4M pairs)."""
        if self.subnet6 is None:
            return 0
        if self._open6_all:
            return self.subnet6.num_addresses * len(self.ports) - len(self._unreachable6)
        return len(self._open6)

    def listening_ports6(self) -> tuple[int, ...]:
        if self.subnet6 is None:
            return ()
        if self._open6_all:
            return self.ports
        return tuple(sorted({port for _, port in self._open6}))

    def scan_command6(self) -> str | None:
        if self.subnet6 is None:
            return None
        return self._scan_command(self.subnet6, map(str, self.ports))

    def _build_ipv6(self) -> None:
        """Addresses and routes of the IPv6 half, once the link is up (its nft rules come with
        the IPv4 ones, _install_truth)."""
        assert self.subnet6 is not None
        netlink.add_address(self.scan_interface, SCAN_ADDRESS6, self.scan_netns)
        netlink.add_address(self.target_interface, TARGET_ADDRESS6, self.target_netns)
        netlink.add_route("default", TARGET_ADDRESS6.ip, self.scan_interface, self.scan_netns)
        netlink.add_local_route(self.subnet6, self.target_netns)

    def _settings6(self) -> dict[str, Any]:
        if self.subnet6 is None:
            return {"subnet6": None}
        return {
            "subnet6": str(self.subnet6),
            "open6": "all" if self._open6_all else _V6.pairs_text(self._open6),
            "echo6": None if self._echo6 is None else sorted(str(ip) for ip in self._echo6),
        }

    @staticmethod
    def _load_settings6(record: dict[str, Any]) -> dict[str, Any]:
        subnet6 = record.get("subnet6")
        if subnet6 is None:
            return {"ipv6": False}
        open6 = record.get("open6", "all")
        echo6 = record.get("echo6")
        return {
            "ipv6": True, "subnet6": subnet6,
            "open_pairs6": None if open6 == "all" else _V6.parse_pairs(open6),
            "echo_hosts6": None if echo6 is None else [IPv6Address(ip) for ip in echo6],
        }

    # --- end IPv6 (v6lab) ------------------------------------------------------------------

    # --- IPv6 UDP responders (udp6) --------------------------------------------------------

    def _init_udp6(self, pairs: set[tuple[IPv6Address, int]] | None, count: int | None,
                   seed: int | None) -> None:
        self._udp_open6: frozenset[tuple[IPv6Address, int]] = frozenset()
        if not pairs and count is None:
            return
        if self.subnet6 is None:
            raise LabInputError("IPv6 UDP pairs given to a lab without IPv6 (accepted: "
                                "ipv6=True, or no open_udp_pairs6/udp_open_count6)")
        self._udp_open6 = self._udp_pairs(_V6, self.subnet6, pairs, count, seed) or frozenset()

    def udp_truth6(self) -> set[tuple[IPv6Address, int]]:
        """Every (IPv6 address, UDP port) whose responder answers; every other UDP pair of
        subnet6 answers ICMPv6 port unreachable (type 1 code 4)."""
        return set(self._udp_open6)

    def udp_ports6(self) -> tuple[int, ...]:
        """The ports the IPv6 UDP responders listen on."""
        return tuple(sorted({port for _, port in self._udp_open6}))

    def udp_scan_command6(self) -> str | None:
        """The IPv6 UDP scan of the responders' ports and udp_ports; None without IPv6 UDP
        responders."""
        if self.subnet6 is None or not self._udp_open6:
            return None
        ports = sorted({*self.udp_ports, *self.udp_ports6()})
        return self._scan_command(self.subnet6, (f"U:{port}" for port in ports))

    def _settings_udp6(self) -> dict[str, Any]:
        return {"udp_open6": _V6.pairs_text(self._udp_open6)}

    @staticmethod
    def _load_settings_udp6(record: dict[str, Any]) -> dict[str, Any]:
        return {"open_udp_pairs6": _V6.parse_pairs(record.get("udp_open6", ()))}

    # --- end IPv6 UDP responders (udp6) ----------------------------------------------------

    # --- unreachable pairs (ICMP destination unreachable answers to SYNs) -------------------

    # (nft's name, code) of each family, given to the sorted pairs in turn (_Family).
    UNREACHABLE_CODES = _V4.unreachable_codes
    UNREACHABLE_CODES6 = _V6.unreachable_codes

    def unreachable_truth(self) -> dict[tuple[IPv4Address, int], int]:
        """Every (ip, port) whose SYN is answered with ICMP destination unreachable (type 3),
        and the code it answers with."""
        return _V4.unreachable_codes_of(self._unreachable)

    def unreachable_truth6(self) -> dict[tuple[IPv6Address, int], int]:
        """Every IPv6 (address, port) whose SYN is answered with an ICMPv6 destination
        unreachable (type 1), and the code it answers with."""
        return _V6.unreachable_codes_of(self._unreachable6)

    @staticmethod
    def draw_echo_hosts6(subnet6: str | IPv6Network, count: int, seed: int | None
                         ) -> frozenset[IPv6Address]:
        """`count` addresses of subnet6 drawn with `seed` (`pyscan lab up --echo-count6`):
        the ``echo_hosts6`` of a lab built from the command line."""
        try:
            network = IPv6Network(subnet6)
        except ValueError as error:
            raise LabInputError(
                f"lab IPv6 subnet {subnet6!r} is not an IPv6 network ({error})") from None
        if not 0 <= count <= min(network.num_addresses, 2**20):
            raise LabInputError(f"echo host count {count} is out of range (accepted: 0 to "
                                f"{min(network.num_addresses, 2**20)}, the addresses of "
                                f"{network})")
        base = int(network.network_address)
        picks = random.Random(f"echo6:{seed}").sample(range(network.num_addresses), count)
        return frozenset(IPv6Address(base + index) for index in picks)

    # --- what the lab promises --------------------------------------------------------------

    def truth(self) -> set[tuple[IPv4Address, int]]:
        """Every (ip, port) that answers SYN-ACK; everything else in the lab answers RST
        (in sink mode nothing answers at all)."""
        if self._open_all:
            return {(address, port) for address in self.subnet for port in self.ports
                    if (address, port) not in self._unreachable}
        return set(self._open)

    def udp_truth(self) -> set[tuple[IPv4Address, int]]:
        """Every (ip, UDP port) whose responder answers; every other (ip, UDP port) of the
        lab answers ICMP port unreachable."""
        if self._udp_open is None:
            return {(address, port) for address in self.subnet for port in self.udp_ports}
        return set(self._udp_open)

    def udp_open_count(self) -> int:
        """len(udp_truth()) without building it."""
        if self._udp_open is None:
            return self.subnet.num_addresses * len(self.udp_ports)
        return len(self._udp_open)

    def echo_truth(self) -> set[IPv4Address]:
        """Every address that answers an ICMP echo; the others stay silent."""
        return set(self.subnet) if self._echo is None else set(self._echo)

    def open_count(self) -> int:
        return (self.subnet.num_addresses * len(self.ports) - len(self._unreachable)
                if self._open_all else len(self._open))

    def listening_ports(self) -> tuple[int, ...]:
        if self._open_all:
            return self.ports
        return tuple(sorted({port for _, port in self._open}))

    def scan_command(self) -> str:
        return self._scan_command(self.subnet, map(str, self.ports))

    def udp_scan_command(self) -> str | None:
        """The IPv4 UDP scan of udp_ports; None without UDP responders."""
        if not self.udp_ports:
            return None
        return self._scan_command(self.subnet, (f"U:{port}" for port in self.udp_ports))

    def _scan_command(self, network: IPv4Network | IPv6Network, ports: Iterable[str]) -> str:
        return f"pyscan --netns {self.scan_netns} {network} -p {','.join(ports)}"

    # --- up --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One process at a time builds or removes lab ``name`` (re-entrant in this object:
        a failed up() calls down())."""
        if self._lock_fd is not None:
            yield
            return
        lock_path = self._lock_path()
        while True:
            try:
                LAB_STATE_DIR.mkdir(parents=True, exist_ok=True)
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as error:
                raise LabError(
                    f"cannot lock lab {self.name} in {LAB_STATE_DIR}: {error}") from error
            fcntl.flock(fd, fcntl.LOCK_EX)
            # down() unlinks the lock file when done; a lock on an unlinked file guards nothing.
            try:
                if os.fstat(fd).st_ino == os.stat(lock_path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        try:
            self._lock_fd = fd
            yield
        finally:
            self._lock_fd = None
            os.close(fd)   # releases the lock

    def _lock_path(self) -> Path:
        return LAB_STATE_DIR / f".{self.name}.lock"

    def up(self) -> Lab:
        """Build the lab. Already up with the same settings: nothing to do. Any failure half-way
        removes what was made, then raises."""
        with self._exclusive():
            return self._up()

    def _up(self) -> Lab:
        if self.state_path.exists():
            existing = Lab.load(self.name)
            if existing.is_up() and existing._recorded_state == "up":
                if existing._settings() != self._settings():
                    raise LabError(
                        f"lab {self.name} is already up with other settings "
                        f"(pyscan lab down {self.name} first)"
                    )
                self._adopt(existing)
                return self
            existing._down()   # a crashed half-made lab (we hold its lock): ours to clear
        leftovers = [n for n in (self.scan_netns, self.target_netns) if netlink.netns_exists(n)]
        if leftovers:
            raise LabError(
                f"namespaces {', '.join(leftovers)} exist but no lab {self.name} is recorded; "
                "remove them (ip netns del) or pick another lab name"
            )
        self._save(state="starting")
        try:
            self._build()
        except BaseException:
            with contextlib.suppress(Exception):
                self.down()
            raise
        self._save(state="up")
        return self

    def _build(self) -> None:
        netlink.create_netns(self.scan_netns)
        netlink.create_netns(self.target_netns)
        for netns in (self.scan_netns, self.target_netns):
            for key, value in (_IPV6_SYSCTLS if self.ipv6 else _QUIET_SYSCTLS).items():
                netlink.write_sysctl(key, value, netns)
        for key, value in _TARGET_SYSCTLS.items():
            netlink.write_sysctl(key, value, self.target_netns)
        if self.ipv6:
            for key, value in _TARGET_IPV6_SYSCTLS.items():
                netlink.write_sysctl(key, value, self.target_netns)
        netlink.create_veth(self.scan_interface, self.target_interface, self.scan_netns,
                            self.target_netns, self.queues)
        netlink.add_address(self.scan_interface, SCAN_ADDRESS, self.scan_netns)
        netlink.add_address(self.target_interface, TARGET_ADDRESS, self.target_netns)
        # Replies leave the target with their checksums computed, as off a real wire: the
        # scanner verifies them, and AF_XDP cannot tell a never-filled-in one (veth offload).
        netlink.set_tx_checksum_offload(self.target_interface, False, self.target_netns)
        # NAPI on the target end lets the scanner's end take XDP redirects (xdp-live).
        netlink.set_gro(self.target_interface, self.target_netns)
        netlink.set_link_up(self.target_interface, self.target_netns)
        netlink.set_link_up(self.scan_interface, self.scan_netns)
        netlink.add_route("default", TARGET_ADDRESS.ip, self.scan_interface, self.scan_netns)
        netlink.add_local_route(self.subnet, self.target_netns)
        if self.ipv6:
            self._build_ipv6()
        self._install_truth()
        if self.loss:
            self._install_loss()
        self._start_listener()
        if self.sink:
            self._attach_sink()

    def _install_truth(self) -> None:
        """The nft rules of both families' truth, in one transaction: open sets (RST
        elsewhere), echo hosts, UDP open pairs (port unreachable elsewhere) and the
        unreachable pairs (_Family.truth_rules, _Family.unreachable_rules)."""
        lines = _V4.truth_rules(self.subnet, None if self._open_all else self._open,
                                self._echo, self._udp_open)
        lines += _V4.unreachable_rules(self._unreachable)
        if self.subnet6 is not None:
            # No IPv6 UDP pairs: no rule, the kernel itself answers port unreachable.
            lines += _V6.truth_rules(self.subnet6, None if self._open6_all else self._open6,
                                     self._echo6, self._udp_open6 or None)
            lines += _V6.unreachable_rules(self._unreachable6)
        if not lines:
            return
        try:
            run_nft("\n".join(lines) + "\n", self.target_netns)
        except FirewallError as error:
            raise LabError(f"cannot install the lab's truth rules: {error}") from error

    def _install_loss(self) -> None:
        """Drop self.loss percent of IP frames at random, each way, on the target's veth.
        Never ARP or IPv6 neighbour discovery: they must get through, or the scanner never
        learns the gateway's MAC."""
        threshold = round(self.loss * 100)  # in 1/10000: 0.01 % steps
        device = self.target_interface
        lines = ["add table netdev lab_loss"]
        # IPv6 (v6lab): IPv6 frames are lost alike, except neighbour discovery (IPv6's ARP).
        ether_types = "{ ip, ip6 }" if self.ipv6 else "ip"
        for chain, hook in (("inbound", "ingress"), ("outbound", "egress")):
            lines += [
                f'add chain netdev lab_loss {chain} {{ type filter hook {hook} device "{device}" '
                "priority filter; policy accept; }",
            ]
            if self.ipv6:
                lines.append(f"add rule netdev lab_loss {chain} ether type ip6 ip6 nexthdr "
                             "ipv6-icmp icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert }"
                             " accept")
            lines.append(f"add rule netdev lab_loss {chain} ether type {ether_types} "
                         f"numgen random mod 10000 < {threshold} counter drop")
        try:
            run_nft("\n".join(lines) + "\n", self.target_netns)
        except FirewallError as error:
            raise LabError(f"cannot install the lab's {self.loss:g} % loss: {error}") from error

    def loss_counts(self) -> dict[str, int]:
        """Frames the loss rules dropped so far: {'inbound': n, 'outbound': n}."""
        if not self.loss:
            return {"inbound": 0, "outbound": 0}
        try:
            listing = json.loads(run_nft("list table netdev lab_loss", self.target_netns,
                                         json_output=True))
        except (FirewallError, json.JSONDecodeError) as error:
            raise LabError(f"cannot read the loss counters of lab {self.name}: {error}") from error
        counts: dict[str, int] = {}
        for item in listing.get("nftables", []):
            rule = item.get("rule")
            for expression in (rule or {}).get("expr", []):
                if isinstance(expression, dict) and "counter" in expression:
                    counts[rule["chain"]] = int(expression["counter"]["packets"])
        return counts

    def _start_listener(self) -> None:
        ports = self.listening_ports()
        ports6 = self.listening_ports6()
        udp_ports = self.udp_ports if self._udp_open is None else tuple(
            sorted({port for _, port in self._udp_open}))
        udp_ports6 = self.udp_ports6()
        if not ports and not udp_ports and not ports6 and not udp_ports6:
            return
        script = Path(__file__).with_name("lab_listener.py")
        command = [sys.executable, str(script), "--ports", ",".join(map(str, ports)),
                   "--ports6", ",".join(map(str, ports6)),
                   "--udp-ports", ",".join(map(str, udp_ports)),
                   "--udp-ports6", ",".join(map(str, udp_ports6))]
        # Started from inside the namespace, the child lives there; its own session keeps it
        # alive after `pyscan lab up` exits and out of the terminal's Ctrl-C.
        with netlink.in_netns(self.target_netns):
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True, start_new_session=True, close_fds=True)
        self._listener_process = process
        start_time = process_start_time(process.pid)
        self._listener = _Listener(process.pid, start_time or 0)
        assert process.stdout is not None and process.stderr is not None
        ready, _, _ = select.select([process.stdout], [], [], _LISTENER_READY_SECONDS)
        line = process.stdout.readline().strip() if ready else ""
        process.stdout.close()
        if line != "ready":
            process.kill()
            process.wait()
            reason = " ".join(process.stderr.read().split())[-300:] or "no answer"
            process.stderr.close()
            raise LabError(f"lab listener on ports {ports} did not start: {reason}")
        process.stderr.close()
        self._save(state="starting")

    def _attach_sink(self) -> None:
        from pyscan.bpf import object_path
        from pyscan.native import BpfError, BpfObject

        # The sink drops ARP too: give the scanner the gateway's MAC up front.
        target_mac = netlink.link_mac(self.target_interface, self.target_netns)
        netlink.add_neighbour(TARGET_ADDRESS.ip, target_mac, self.scan_interface,
                              self.scan_netns)
        if self.ipv6:
            netlink.add_neighbour(TARGET_ADDRESS6.ip, target_mac, self.scan_interface,
                                  self.scan_netns)
        ifindex = netlink.link_index(self.target_interface, self.target_netns)
        try:
            with netlink.in_netns(self.target_netns), BpfObject(object_path("sink")) as sink:
                sink.load()
                self._sink_prog_id = sink.attach_xdp(ifindex, mode="native", persist=True)
        except BpfError as error:
            raise LabError(f"cannot attach the sink to {self.target_interface}: {error}") from error

    # --- reading a running lab ------------------------------------------------------------------

    def is_up(self) -> bool:
        return netlink.netns_exists(self.scan_netns) and netlink.netns_exists(self.target_netns)

    def listener_alive(self) -> bool:
        return self._listener is not None and owner_alive(self._listener.pid,
                                                          self._listener.start_time)

    def udp_drops(self) -> int:
        """Datagrams the target namespace's kernel dropped for want of receive-buffer room
        (Udp RcvbufErrors, since the lab came up): probes the lab never answered, so a
        truth test can tell a lab drop from a scanner miss. The responders' large buffers
        (lab_listener.UDP_BUFFER_BYTES) keep it at 0 unless a burst outruns them."""
        try:
            with netlink.in_netns(self.target_netns), \
                    open("/proc/thread-self/net/snmp", encoding="ascii") as snmp:
                # /proc/net/snmp resolves against the process's namespace, thread-self
                # against this thread's (the one in_netns moved).
                lines = [line.split() for line in snmp if line.startswith("Udp:")]
        except (OSError, netlink.NetlinkError) as error:
            raise LabError(f"cannot read the UDP counters of lab {self.name}: {error}"
                           ) from error
        if len(lines) != 2 or "RcvbufErrors" not in lines[0]:
            raise LabError(f"lab {self.name}: no Udp RcvbufErrors in the target namespace's "
                           "/proc/net/snmp")
        return int(lines[1][lines[0].index("RcvbufErrors")])

    def sink_count(self) -> dict[str, int]:
        """The sink's counters (frames, bytes, syns, syn_bytes), from any process."""
        from pyscan.native import BpfError, read_attached_percpu

        if not self.sink:
            raise LabError(f"lab {self.name} has no sink (create it with sink=True)")
        try:
            with netlink.in_netns(self.target_netns):
                ifindex = netlink.link_index(self.target_interface)
                values = read_attached_percpu(ifindex, SINK_MAP)
        except (BpfError, netlink.NetlinkError) as error:
            raise LabError(f"cannot read the sink of lab {self.name}: {error}") from error
        return dict(zip(SINK_FIELDS, values, strict=False))

    def sink_reset(self) -> None:
        """Zero the sink's counters (a benchmark run starting from a clean count)."""
        from pyscan.native import BpfError, reset_attached_percpu

        if not self.sink:
            raise LabError(f"lab {self.name} has no sink (create it with sink=True)")
        try:
            with netlink.in_netns(self.target_netns):
                reset_attached_percpu(netlink.link_index(self.target_interface), SINK_MAP)
        except (BpfError, netlink.NetlinkError) as error:
            raise LabError(f"cannot reset the sink of lab {self.name}: {error}") from error

    def status(self) -> dict[str, Any]:
        up = self.is_up()
        report: dict[str, Any] = {
            "name": self.name,
            "up": up,
            "scan_netns": self.scan_netns,
            "target_netns": self.target_netns,
            "scan_interface": self.scan_interface,
            "target_interface": self.target_interface,
            "scan_address": str(SCAN_ADDRESS),
            "gateway": str(TARGET_ADDRESS.ip),
            "subnet": str(self.subnet),
            "ports": list(self.ports),
            "open_pairs": self.open_count(),
            "unreachable_pairs": len(self._unreachable),
            "queues": self.queues,
            "listener_pid": self._listener.pid if self._listener else None,
            "listener_alive": self.listener_alive(),
            "sink": self.sink,
            "loss_percent": self.loss,
            "scan_command": self.scan_command(),
            "subnet6": str(self.subnet6) if self.subnet6 else None,
            "scan_address6": str(SCAN_ADDRESS6) if self.ipv6 else None,
            "gateway6": str(TARGET_ADDRESS6.ip) if self.ipv6 else None,
            "open_pairs6": self.open_count6(),
            "unreachable_pairs6": len(self._unreachable6),
            "echo_hosts6": ("all" if self._echo6 is None else len(self._echo6))
            if self.ipv6 else None,
            "scan_command6": self.scan_command6(),
            "udp_ports": list(self.udp_ports),
            "udp_open_pairs": self.udp_open_count(),
            "udp_open_pairs6": len(self._udp_open6),
            "udp_scan_command": self.udp_scan_command(),
            "udp_scan_command6": self.udp_scan_command6(),
        }
        if up:
            try:
                report["scan_interface_counters"] = netlink.link_stats(self.scan_interface,
                                                                       self.scan_netns)
                report["target_interface_counters"] = netlink.link_stats(self.target_interface,
                                                                         self.target_netns)
            except netlink.NetlinkError as error:
                report["interface_error"] = str(error)
        if self.udp_ports and up:
            try:
                report["udp_drops"] = self.udp_drops()
            except LabError as error:
                report["udp_drops_error"] = str(error)
        if self.sink and up:
            try:
                report["sink_counters"] = self.sink_count()
            except LabError as error:
                report["sink_error"] = str(error)
        return report

    # --- down ------------------------------------------------------------------------------

    def down(self) -> None:
        """Remove everything the lab made; parts already gone are not an error. Every part is
        attempted even if one fails; the failures are reported together at the end."""
        with self._exclusive():
            self._down()

    def _down(self) -> None:
        failures: list[str] = []
        listener = self._listener
        if listener is None and self.state_path.exists():
            with contextlib.suppress(LabError):
                listener = Lab.load(self.name)._listener
        if listener is not None:
            try:
                _stop_process(listener.pid, listener.start_time)
            except OSError as error:
                failures.append(f"listener {listener.pid}: {error}")
        if self._listener_process is not None:
            with contextlib.suppress(Exception):
                self._listener_process.wait(timeout=_STOP_SECONDS)
        # Deleting the veth takes its peer and the sink program with it.
        try:
            netlink.delete_link(self.scan_interface, self.scan_netns)
        except netlink.NetlinkError as error:
            failures.append(str(error))
        for name in (self.scan_netns, self.target_netns):
            try:
                netlink.remove_netns(name)
            except netlink.NetlinkError as error:
                failures.append(str(error))
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()
        if self._lock_fd is not None:   # still held: waiters will see it gone and retry
            with contextlib.suppress(FileNotFoundError):
                self._lock_path().unlink()
        self._listener = None
        self._listener_process = None
        self._sink_prog_id = 0
        if failures:
            raise LabError(f"lab {self.name} down left parts behind: {'; '.join(failures)}")

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # --- state file ---------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        return {
            "subnet": str(self.subnet),
            "ports": list(self.ports),
            "sink": self.sink,
            "queues": self.queues,
            "loss": self.loss,
            "open": "all" if self._open_all else _V4.pairs_text(self._open),
            "udp_ports": list(self.udp_ports),
            "udp_open": None if self._udp_open is None else _V4.pairs_text(self._udp_open),
            "echo": None if self._echo is None else sorted(str(ip) for ip in self._echo),
            "unreachable": _V4.pairs_text(self._unreachable),
            **self._settings6(),
            "unreachable6": _V6.pairs_text(self._unreachable6),
            **self._settings_udp6(),
        }

    def _adopt(self, other: Lab) -> None:
        self._listener = other._listener
        self._sink_prog_id = other._sink_prog_id

    def _save(self, state: str) -> None:
        try:
            LAB_STATE_DIR.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise LabError(f"cannot create {LAB_STATE_DIR} for lab state: {error}") from error
        record = {
            "name": self.name,
            "state": state,
            "created_by": os.getpid(),
            "seed": self.seed,
            "listener": ({"pid": self._listener.pid, "start_time": self._listener.start_time}
                         if self._listener else None),
            "sink_prog_id": self._sink_prog_id,
            **self._settings(),
        }
        temporary = self.state_path.with_suffix(".json.tmp")
        try:
            temporary.write_text(json.dumps(record, indent=1) + "\n")
            temporary.replace(self.state_path)   # readers never see half a file
        except OSError as error:
            raise LabError(f"cannot record lab state in {self.state_path}: {error}") from error

    @classmethod
    def load(cls, name: str) -> Lab:
        """The lab ``name`` as recorded by the process that brought it up."""
        path = LAB_STATE_DIR / f"{name}.json"
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            raise LabError(
                f"no lab named {name!r} (labs: {', '.join(list_labs()) or 'none'})"
            ) from None
        except json.JSONDecodeError as error:
            raise LabError(f"lab state {path} is corrupt: {error}") from None
        open_spec = record.get("open", "all")
        udp_open = record.get("udp_open")
        echo = record.get("echo")
        lab = cls(name=name, subnet=record["subnet"], ports=record["ports"],
                  open_pairs=None if open_spec == "all" else _V4.parse_pairs(open_spec),
                  sink=bool(record.get("sink")), queues=int(record.get("queues", 1)),
                  seed=record.get("seed"), loss=float(record.get("loss", 0.0)),
                  udp_ports=record.get("udp_ports", ()),
                  udp_open=None if udp_open is None else _V4.parse_pairs(udp_open),
                  echo_hosts=None if echo is None else [IPv4Address(ip) for ip in echo],
                  unreachable_pairs=_V4.parse_pairs(record.get("unreachable", ())),
                  unreachable_pairs6=(_V6.parse_pairs(record["unreachable6"])
                                      if record.get("unreachable6") else None),
                  **cls._load_settings6(record), **cls._load_settings_udp6(record))
        listener = record.get("listener")
        if listener:
            lab._listener = _Listener(int(listener["pid"]), int(listener["start_time"]))
        lab._sink_prog_id = int(record.get("sink_prog_id") or 0)
        lab._recorded_state = str(record.get("state", ""))
        return lab

