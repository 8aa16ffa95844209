"""Source ports a scan may claim without breaking the host's own TCP.

While a scan runs, the isolation firewall drops every inbound TCP segment to the scan's
source ports on its interface (see firewall.py). That is harmless only for ports nothing else
uses, so a range is refused when any of its ports is

- below 1024: a system service's port (`--source-port 22` would cut inbound SSH);
- in the kernel's ephemeral range (`net.ipv4.ip_local_port_range`), unless listed in
  `net.ipv4.ip_local_reserved_ports`: the host's own outgoing connections get those ports,
  and their replies would be dropped;
- the port of a listening TCP socket (IPv4 or IPv6) on the host.

All three are read from /proc in the scan's network namespace: the sysctls under
/proc/sys/net and the socket tables under /proc/thread-self/net both answer for the namespace
of the thread that opens them, which is the one `in_netns` moved. `--force-source-port`
skips the refusal (the CLI still prints what was found, as a warning).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pyscan.errors import ConfigError

__all__ = [
    "PRIVILEGED_PORTS_BELOW",
    "HostPorts",
    "SourcePortError",
    "check_source_ports",
    "choose_source_ports",
    "format_ports",
    "read_host_ports",
    "read_host_ports_in",
    "source_port_problems",
    "suggest_source_ports",
]

PRIVILEGED_PORTS_BELOW = 1024
_TCP_LISTEN = 0x0A  # include/net/tcp_states.h: TCP_LISTEN
_LISTED_PORTS = 4   # a message quotes at most this many port ranges per reason
# Linux's default when the sysctl cannot be read (a /proc without /proc/sys/net).
_LINUX_DEFAULT_EPHEMERAL = range(32768, 61000)


class SourcePortError(ConfigError):
    """A source-port range that would break the host's TCP; one line naming the port.
    Bad input (exit 2): the user picks another range or says --force-source-port."""


@dataclass(frozen=True)
class HostPorts:
    """What the host's kernel does with ports, in one network namespace."""

    ephemeral: range = _LINUX_DEFAULT_EPHEMERAL
    reserved: frozenset[int] = frozenset()   # never handed out as ephemeral ports
    listening: frozenset[int] = frozenset()  # TCP ports with a LISTEN socket, v4 or v6

    def unsafe(self, port: int) -> bool:
        return (port < PRIVILEGED_PORTS_BELOW or port in self.listening
                or (port in self.ephemeral and port not in self.reserved))


def _parse_port_list(text: str, source: str) -> frozenset[int]:
    """The sysctl's '8080,9000-9100' (empty when nothing is reserved)."""
    ports: set[int] = set()
    for item in text.replace("\n", "").split(","):
        if not item.strip():
            continue
        low, dash, high = item.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise OSError(f"unexpected content in {source}: {text.strip()!r}")
        ports.update(range(int(low), int(high if dash else low) + 1))
    return frozenset(ports)


def _read_ephemeral(path: Path) -> range:
    fields = path.read_text().split()
    if len(fields) != 2 or not all(field.isdigit() for field in fields):
        raise OSError(f"unexpected content in {path}: {' '.join(fields)!r}")
    low, high = int(fields[0]), int(fields[1])
    return range(low, high + 1)


def _listening_ports(table: Path) -> set[int]:
    """Local ports of LISTEN sockets in one /proc/net/tcp{,6} table."""
    ports: set[int] = set()
    lines = table.read_text().splitlines()
    for line in lines[1:]:  # the first line is the column header
        fields = line.split()
        # sl local_address rem_address st ...; local_address is HEXADDR:HEXPORT
        if len(fields) < 4 or ":" not in fields[1]:
            continue
        if int(fields[3], 16) == _TCP_LISTEN:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def read_host_ports(proc: Path = Path("/proc")) -> HostPorts:
    """Ephemeral range, reserved ports and listening TCP ports of the calling thread's
    network namespace. A missing tcp6 table (IPv6 disabled) counts as no IPv6 listeners."""
    ipv4 = proc / "sys" / "net" / "ipv4"
    ephemeral = _read_ephemeral(ipv4 / "ip_local_port_range")
    reserved_path = ipv4 / "ip_local_reserved_ports"
    reserved = (_parse_port_list(reserved_path.read_text(), str(reserved_path))
                if reserved_path.exists() else frozenset())
    net = proc / "thread-self" / "net"
    listening = _listening_ports(net / "tcp")
    if (net / "tcp6").exists():
        listening |= _listening_ports(net / "tcp6")
    return HostPorts(ephemeral=ephemeral, reserved=reserved, listening=frozenset(listening))


def read_host_ports_in(netns: str | None) -> HostPorts:
    """`read_host_ports` inside the named namespace (None: the current one)."""
    if netns is None:
        return read_host_ports()
    from pyscan.netlink import in_netns

    with in_netns(netns):
        return read_host_ports()


def _spans(ports: Iterable[int]) -> list[tuple[int, int]]:
    spans: list[list[int]] = []
    for port in sorted(ports):
        if spans and port == spans[-1][1] + 1:
            spans[-1][1] = port
        else:
            spans.append([port, port])
    return [(low, high) for low, high in spans]


def format_ports(ports: Iterable[int], limit: int = _LISTED_PORTS) -> str:
    """{22, 80, 81, 82} -> '22, 80-82'; past `limit` spans, '... and N more ports'."""
    spans = _spans(ports)
    shown = [f"{low}" if low == high else f"{low}-{high}" for low, high in spans[:limit]]
    rest = sum(high - low + 1 for low, high in spans[limit:])
    return ", ".join(shown) + (f" and {rest} more" if rest else "")


def _subject(ports: set[int], singular: str, plural: str) -> str:
    """'port 22 is' / 'ports 22, 80 are': the port list as a sentence's subject."""
    if len(ports) == 1:
        return f"port {format_ports(ports)} {singular}"
    return f"ports {format_ports(ports)} {plural}"


def source_port_problems(ports: range, host: HostPorts) -> list[str]:
    """Why each unsafe port of `ports` is unsafe, one phrase per reason; empty when safe."""
    problems = []
    privileged = {port for port in ports if port < PRIVILEGED_PORTS_BELOW}
    if privileged:
        problems.append(f"{_subject(privileged, 'is', 'are')} below {PRIVILEGED_PORTS_BELOW} "
                        "(system services' ports)")
    ephemeral_range = range(max(ports.start, host.ephemeral.start),
                            min(ports.stop, host.ephemeral.stop))
    ephemeral = set(ephemeral_range) - host.reserved
    if ephemeral:
        problems.append(
            f"{_subject(ephemeral, 'is', 'are')} in the kernel's ephemeral range "
            f"{host.ephemeral.start}-{host.ephemeral[-1]} (the host's own connections)")
    listening = {port for port in host.listening if port in ports}
    if listening:
        problems.append(f"{_subject(listening, 'has a', 'have')} listening TCP "
                        f"socket{'s' if len(listening) > 1 else ''} on this host")
    return problems


def suggest_source_ports(count: int, host: HostPorts, *, start: int | None = None) -> range | None:
    """The first `count` consecutive safe ports at or after `start` (wrapping around to 1024),
    or None when no such run exists."""
    first = PRIVILEGED_PORTS_BELOW if start is None else max(start, PRIVILEGED_PORTS_BELOW)
    for begin, end in ((first, 65536), (PRIVILEGED_PORTS_BELOW, first)):
        run_start = begin
        for port in range(begin, end):
            if host.unsafe(port):
                run_start = port + 1
            elif port - run_start + 1 == count:
                return range(run_start, port + 1)
    return None


def choose_source_ports(host: HostPorts, count: int = 256) -> range:
    """A random run of `count` safe ports above the ephemeral range when there is room,
    else the first safe run anywhere: the default when no --source-port is given."""
    above = max(host.ephemeral.stop, PRIVILEGED_PORTS_BELOW)
    span = 65536 - above - count + 1
    start = above + secrets.randbelow(span) if span > 0 else PRIVILEGED_PORTS_BELOW
    chosen = suggest_source_ports(count, host, start=start)
    if chosen is None:
        raise SourcePortError(
            f"no {count} consecutive free source ports on this host (accepted: "
            "--source-port A-B with a smaller range)")
    return chosen


def check_source_ports(ports: range, host: HostPorts, *, isolation: bool = True,
                       option: str = "--source-port") -> None:
    """Raise SourcePortError naming the unsafe ports of `ports`, with a safe alternative.

    Without isolation no port is taken from the host, but the scan's replies would land on
    the host's sockets and connections instead, so the same ports are refused."""
    problems = source_port_problems(ports, host)
    if not problems:
        return
    given = f"{ports.start}" if len(ports) == 1 else f"{ports.start}-{ports[-1]}"
    alternative = suggest_source_ports(len(ports), host,
                                       start=max(host.ephemeral.stop, ports.start))
    like = ""
    if alternative is not None:
        like = (f", like {alternative.start}" if len(alternative) == 1
                else f", like {alternative.start}-{alternative[-1]}")
    harm = ("the scan's firewall would drop their inbound TCP" if isolation
            else "the scan's replies would reach the host's sockets")
    raise SourcePortError(
        f"unsafe {option} {given}: {'; '.join(problems)}; {harm} "
        f"(accepted: ports outside those{like}, or --force-source-port)"
    )
