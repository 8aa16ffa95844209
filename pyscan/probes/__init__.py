"""Probe types: one entry each behind the ``Probe`` protocol, in one literal dict.

A probe type is a C module (pyscan/native/probe_<name>.c, a row of probe.c's table), its XDP
match (pyscan/bpf/probe_<name>.h, a case of reply_filter.bpf.c's switch) and a row here.
``id`` is the row index in the C table (pyscan/bpf/probe_ids.h); a unit test checks that
every id here names the same module in C. Importing this package needs neither root nor the
compiled extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "IPV6_TWIN",
    "PROBES",
    "PROBE_FOR_PROTOCOL",
    "PROBE_NAMES",
    "Probe",
    "ProbeType",
    "for_family",
    "get_probe",
    "reply_protocols",
]


class Probe(Protocol):
    """What the rest of pyscan may know about a probe type."""

    @property
    def id(self) -> int: ...  # row of the C probe table (probe_ids.h)

    @property
    def name(self) -> str: ...  # registry key, equal to the C module's name

    @property
    def description(self) -> str: ...

    @property
    def takes_ports(self) -> bool: ...  # whether targets are (address, port) or addresses

    @property
    def protocol(self) -> str: ...  # protocol label for results ("tcp", "udp", "icmp")

    @property
    def replies(self) -> tuple[str, ...]: ...  # protocols its replies come in (RX filters)

    @property
    def family(self) -> int: ...  # 4 or 6: the address family of its targets


@dataclass(frozen=True)
class ProbeType:
    id: int
    name: str
    description: str
    takes_ports: bool
    protocol: str
    replies: tuple[str, ...] = ()
    family: int = 4


PROBES: dict[str, Probe] = {
    "tcp-syn": ProbeType(
        id=0, name="tcp-syn", takes_ports=True, protocol="tcp", replies=("tcp",),
        description="TCP SYN over IPv4: open on SYN-ACK, closed on RST+ACK",
    ),
    "icmp-echo": ProbeType(
        id=1, name="icmp-echo", takes_ports=False, protocol="icmp", replies=("icmp",),
        description="ICMP echo over IPv4 (host discovery): up on echo reply, unreachable on "
                    "destination unreachable",
    ),
    "udp": ProbeType(
        id=2, name="udp", takes_ports=True, protocol="udp", replies=("udp", "icmp"),
        description="UDP over IPv4 with the port's protocol payload: open on any UDP reply, "
                    "closed on ICMP port unreachable",
    ),
    "tcp-syn6": ProbeType(
        id=3, name="tcp-syn6", takes_ports=True, protocol="tcp", replies=("tcp6",), family=6,
        description="TCP SYN over IPv6 (chosen by --probe tcp-syn for IPv6 targets): open on "
                    "SYN-ACK, closed on RST+ACK",
    ),
    "icmp-echo6": ProbeType(
        id=4, name="icmp-echo6", takes_ports=False, protocol="icmp", replies=("icmp6",),
        family=6,
        description="ICMPv6 echo (chosen by --ping / --probe icmp-echo for IPv6 targets): up "
                    "on echo reply, unreachable on destination unreachable",
    ),
    "udp6": ProbeType(
        id=5, name="udp6", takes_ports=True, protocol="udp", replies=("udp6",),
        family=6,
        description="UDP over IPv6 (chosen by -p U:PORT / --probe udp for IPv6 targets) with "
                    "the port's protocol payload: open on any UDP reply, closed on ICMPv6 "
                    "port unreachable",
    ),
}

# Users name the IPv4 probe types; a scan of IPv6 targets runs each one's IPv6 twin. A probe
# type without a twin is refused for IPv6 targets by for_family().
IPV6_TWIN: dict[str, str] = {"tcp-syn": "tcp-syn6", "icmp-echo": "icmp-echo6", "udp": "udp6"}

# What users name (--probe, ScanConfig.probe): the IPv4 types; IPv6 targets run their twins.
PROBE_NAMES: tuple[str, ...] = tuple(sorted(name for name, probe in PROBES.items()
                                            if probe.family == 4))

# The probe type that sends each protocol's probes (a scan's port entries name protocols).
PROBE_FOR_PROTOCOL: dict[str, str] = {probe.protocol: name for name, probe in PROBES.items()
                                      if probe.family == 4}


def reply_protocols(probe_ids: tuple[int, ...]) -> tuple[str, ...]:
    """The protocols replies to these probe types come in, for RX filters (af-packet)."""
    wanted = {protocol for probe in PROBES.values() if probe.id in probe_ids
              for protocol in probe.replies}
    return tuple(sorted(wanted))


def get_probe(name: str) -> Probe:
    """The probe type called ``name``; ValueError naming the accepted names otherwise."""
    try:
        return PROBES[name]
    except (KeyError, TypeError):
        raise ValueError(f"probe {name!r} is unknown: accepted {', '.join(PROBE_NAMES)}") \
            from None


def for_family(name: str, family: int) -> Probe:
    """The probe type that runs ``name`` (a user-facing, IPv4 name or its twin) against targets
    of ``family``: the IPv6 twin for 6. ValueError with one line when there is none."""
    probe = get_probe(name)
    if probe.family == family:
        return probe
    if family == 6 and name in IPV6_TWIN:
        return PROBES[IPV6_TWIN[name]]
    if family == 4:
        ipv4 = next((v4 for v4, v6 in IPV6_TWIN.items() if v6 == name), None)
        if ipv4 is not None:
            return PROBES[ipv4]
    accepted = ", ".join(sorted(IPV6_TWIN))
    raise ValueError(f"probe {name!r} is not supported yet for IPv{family} targets: "
                     f"accepted for IPv6 {accepted}")
