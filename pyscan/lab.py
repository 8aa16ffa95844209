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
tear it down. Only 198.18.0.0/15 (RFC 2544 benchmarking) is ever used.
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
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

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
                 unreachable_count: int | None = None) -> None:
        """UDP: responders on ``udp_ports`` (port 53 answers DNS version.bind, the others echo
        the datagram like an NTP-ish server) for the pairs of ``udp_open`` (None = every
        address); any other UDP pair answers ICMP port unreachable. ICMP echo: only
        ``echo_hosts`` answer (None = every address, the kernel's default). TCP: a SYN to
        one of ``unreachable_pairs`` (or ``unreachable_count`` pairs drawn with ``seed``
        outside the open set) is answered with an ICMP destination unreachable instead
        (:meth:`unreachable_truth` says which code)."""
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

        self.udp_ports = tuple(sorted(set(udp_ports)))
        if not all(1 <= p <= 65535 for p in self.udp_ports):
            raise LabInputError(f"lab UDP ports {list(udp_ports)} must be within 1-65535")
        self._udp_open = (None if udp_open is None else
                          frozenset((IPv4Address(ip), int(port)) for ip, port in udp_open))
        if self._udp_open is not None and any(
                ip not in network or port not in self.udp_ports for ip, port in self._udp_open):
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
            self._open = frozenset((IPv4Address(ip), int(port)) for ip, port in open_pairs)
            for ip, port in self._open:
                if ip not in network or not 1 <= port <= 65535:
                    raise LabInputError(
                        f"open pair {ip}:{port} is outside the lab ({network}, ports 1-65535)"
                    )
        elif open_count is not None:
            self._open = self._draw(open_count, seed)
        self._unreachable = self._unreachable_pairs(unreachable_pairs, unreachable_count, seed)

    def _draw(self, count: int, seed: int | None) -> frozenset[tuple[IPv4Address, int]]:
        size = self.subnet.num_addresses * len(self.ports)
        if not 0 <= count <= size:
            raise LabInputError(
                f"open_count {count} is out of range (accepted: 0 to {size} = "
                f"{self.subnet.num_addresses} addresses x {len(self.ports)} ports)"
            )
        base = int(self.subnet.network_address)
        picks = random.Random(seed).sample(range(size), count)
        return frozenset(
            (IPv4Address(base + index // len(self.ports)), self.ports[index % len(self.ports)])
            for index in picks
        )

    # --- unreachable pairs (ICMP destination unreachable answers to SYNs) -------------------

    # The codes nft answers with, given to the pairs in turn (sorted order), so a scan sees
    # several: (nft's name, ICMP code).
    UNREACHABLE_CODES = (("net-unreachable", 0), ("host-unreachable", 1),
                         ("host-prohibited", 10), ("admin-prohibited", 13))

    def _unreachable_pairs(self, pairs: set[tuple[IPv4Address, int]] | None,
                           count: int | None, seed: int | None
                           ) -> frozenset[tuple[IPv4Address, int]]:
        if pairs is not None and count is not None:
            raise LabInputError("give unreachable_pairs or unreachable_count, not both")
        if pairs is not None:
            chosen = frozenset((IPv4Address(ip), int(port)) for ip, port in pairs)
            for ip, port in chosen:
                if ip not in self.subnet or not 1 <= port <= 65535:
                    raise LabInputError(f"unreachable pair {ip}:{port} is outside the lab "
                                        f"({self.subnet}, ports 1-65535)")
            if chosen & self._open:
                raise LabInputError("unreachable pairs must not be open pairs too")
            return chosen
        if not count:
            if count is not None and count < 0:
                raise LabInputError(f"unreachable_count {count} is out of range (accepted: 0 "
                                    "or more)")
            return frozenset()
        size = self.subnet.num_addresses * len(self.ports)
        free = size if self._open_all else size - len(self._open)
        if not 0 <= count <= free:
            raise LabInputError(
                f"unreachable_count {count} is out of range (accepted: 0 to {free}, the "
                "pairs of subnet x ports that are not open)")
        base, ports = int(self.subnet.network_address), self.ports
        # Its own stream of the seed: the open draw stays what it was without unreachables.
        rng = random.Random(f"unreachable:{seed}")
        chosen_set: set[tuple[IPv4Address, int]] = set()
        while len(chosen_set) < count:
            index = rng.randrange(size)
            pair = (IPv4Address(base + index // len(ports)), ports[index % len(ports)])
            if self._open_all or pair not in self._open:
                chosen_set.add(pair)
        return frozenset(chosen_set)

    def unreachable_truth(self) -> dict[tuple[IPv4Address, int], int]:
        """Every (ip, port) whose SYN is answered with ICMP destination unreachable (type 3),
        and the code it answers with."""
        codes = self.UNREACHABLE_CODES
        return {pair: codes[i % len(codes)][1] for i, pair in enumerate(sorted(self._unreachable))}

    def _install_unreachable(self) -> None:
        """One set per code; SYNs to their pairs are rejected with that ICMP code before the
        open set's RST rule sees them (lower priority number). The target namespace has no
        ICMP rate limit (_TARGET_SYSCTLS), so every SYN gets its answer."""
        if not self._unreachable:
            return
        lines = ["add table ip labunreach",
                 "add chain ip labunreach input { type filter hook input priority -10; "
                 "policy accept; }"]
        by_code: dict[str, list[tuple[IPv4Address, int]]] = {}
        for i, pair in enumerate(sorted(self._unreachable)):
            by_code.setdefault(self.UNREACHABLE_CODES[i % len(self.UNREACHABLE_CODES)][0],
                               []).append(pair)
        for name, pairs in by_code.items():
            set_name = name.replace("-", "_")
            lines.append(f"add set ip labunreach {set_name} {{ type ipv4_addr . inet_service; }}")
            lines.append(f"add rule ip labunreach input tcp flags & (syn | ack) == syn "
                         f"ip daddr . tcp dport @{set_name} reject with icmp type {name}")
            for start in range(0, len(pairs), 4096):
                chunk = ", ".join(f"{ip} . {port}" for ip, port in pairs[start:start + 4096])
                lines.append(f"add element ip labunreach {set_name} {{ {chunk} }}")
        try:
            run_nft("\n".join(lines) + "\n", self.target_netns)
        except FirewallError as error:
            raise LabError(f"cannot install the lab's unreachable pairs: {error}") from error

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
        ports = ",".join(str(p) for p in self.ports)
        return f"pyscan --netns {self.scan_netns} {self.subnet} -p {ports}"

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
            for key, value in _QUIET_SYSCTLS.items():
                netlink.write_sysctl(key, value, netns)
        for key, value in _TARGET_SYSCTLS.items():
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
        if not self._open_all:
            self._install_open_set()
        self._install_probe_rules()
        self._install_unreachable()
        if self.loss:
            self._install_loss()
        self._start_listener()
        if self.sink:
            self._attach_sink()

    def _install_open_set(self) -> None:
        lines = [
            "add table inet lab",
            "add set inet lab open { type ipv4_addr . inet_service; }",
            "add chain inet lab input { type filter hook input priority filter; policy accept; }",
            # Only new connections: the rest of a handshake to an open pair must pass.
            "add rule inet lab input tcp flags & (syn | ack) == syn "
            "ip daddr . tcp dport != @open reject with tcp reset",
        ]
        pairs = sorted(self._open)
        for start in range(0, len(pairs), 4096):
            chunk = ", ".join(f"{ip} . {port}" for ip, port in pairs[start:start + 4096])
            lines.append(f"add element inet lab open {{ {chunk} }}")
        try:
            run_nft("\n".join(lines) + "\n", self.target_netns)
        except FirewallError as error:
            raise LabError(f"cannot install the lab's open set: {error}") from error

    def _install_probe_rules(self) -> None:
        """The UDP and echo truth: nft drops echo requests to addresses not in echo_hosts and
        rejects UDP to pairs not in udp_open with ICMP port unreachable (inet's default
        reject for IPv4)."""
        lines = []
        if self._echo is not None or self._udp_open is not None:
            lines += ["add table inet labprobes",
                      "add chain inet labprobes input { type filter hook input priority "
                      "filter; policy accept; }"]
        if self._echo is not None:
            lines.append("add set inet labprobes echo { type ipv4_addr; }")
            lines.append("add rule inet labprobes input icmp type echo-request "
                         "ip daddr != @echo drop")
            hosts = sorted(self._echo)
            for start in range(0, len(hosts), 4096):
                chunk = ", ".join(str(ip) for ip in hosts[start:start + 4096])
                lines.append(f"add element inet labprobes echo {{ {chunk} }}")
        if self._udp_open is not None:
            lines.append("add set inet labprobes udp_open { type ipv4_addr . inet_service; }")
            lines.append("add rule inet labprobes input ip daddr " + str(self.subnet)
                         + " ip daddr . udp dport != @udp_open reject")
            pairs = sorted(self._udp_open)
            for start in range(0, len(pairs), 4096):
                chunk = ", ".join(f"{ip} . {port}" for ip, port in pairs[start:start + 4096])
                lines.append(f"add element inet labprobes udp_open {{ {chunk} }}")
        if not lines:
            return
        try:
            run_nft("\n".join(lines) + "\n", self.target_netns)
        except FirewallError as error:
            raise LabError(f"cannot install the lab's UDP/echo truth: {error}") from error
    def _install_loss(self) -> None:
        """Drop self.loss percent of IPv4 frames at random, each way, on the target's veth.
        Only IPv4: ARP must get through, or the scanner never learns the gateway's MAC."""
        threshold = round(self.loss * 100)  # in 1/10000: 0.01 % steps
        device = self.target_interface
        lines = ["add table netdev lab_loss"]
        for chain, hook in (("inbound", "ingress"), ("outbound", "egress")):
            lines += [
                f'add chain netdev lab_loss {chain} {{ type filter hook {hook} device "{device}" '
                "priority filter; policy accept; }",
                f"add rule netdev lab_loss {chain} ether type ip "
                f"numgen random mod 10000 < {threshold} counter drop",
            ]
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
        udp_ports = self.udp_ports if self._udp_open is None else tuple(
            sorted({port for _, port in self._udp_open}))
        if not ports and not udp_ports:
            return
        script = Path(__file__).with_name("lab_listener.py")
        command = [sys.executable, str(script), "--ports", ",".join(map(str, ports)),
                   "--udp-ports", ",".join(map(str, udp_ports))]
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
            "open": "all" if self._open_all else sorted(f"{ip}:{port}" for ip, port in self._open),
            "udp_ports": list(self.udp_ports),
            "udp_open": (None if self._udp_open is None
                         else sorted(f"{ip}:{port}" for ip, port in self._udp_open)),
            "echo": None if self._echo is None else sorted(str(ip) for ip in self._echo),
            "unreachable": sorted(f"{ip}:{port}" for ip, port in self._unreachable),
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
        pairs = None
        if open_spec != "all":
            pairs = set()
            for item in open_spec:
                ip, port = item.rsplit(":", 1)
                pairs.add((IPv4Address(ip), int(port)))
        udp_open = record.get("udp_open")
        echo = record.get("echo")
        lab = cls(name=name, subnet=record["subnet"], ports=record["ports"], open_pairs=pairs,
                  sink=bool(record.get("sink")), queues=int(record.get("queues", 1)),
                  seed=record.get("seed"), loss=float(record.get("loss", 0.0)),
                  udp_ports=record.get("udp_ports", ()),
                  udp_open=(None if udp_open is None else
                            {(IPv4Address(i.rsplit(":", 1)[0]), int(i.rsplit(":", 1)[1]))
                             for i in udp_open}),
                  echo_hosts=None if echo is None else [IPv4Address(ip) for ip in echo],
                  unreachable_pairs={(IPv4Address(i.rsplit(":", 1)[0]), int(i.rsplit(":", 1)[1]))
                                     for i in record.get("unreachable", ())})
        listener = record.get("listener")
        if listener:
            lab._listener = _Listener(int(listener["pid"]), int(listener["start_time"]))
        lab._sink_prog_id = int(record.get("sink_prog_id") or 0)
        lab._recorded_state = str(record.get("state", ""))
        return lab

