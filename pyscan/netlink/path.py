"""The path to a target: the route the kernel would take, the source address, the next hop's
MAC (ARP, or IPv6 neighbour discovery, done by the kernel), the interface's MTU and active
queues. One code path for both families: the target's (or `family`'s) address type picks
AF_INET or AF_INET6 for the route lookup, the address dump and the neighbour table."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError as _PyrouteNetlinkError
from pyroute2.netlink.rtnl import ndmsg

from pyscan.netlink.common import NetlinkError, normalise_mac
from pyscan.netlink.links import rtnl, rtnl_index
from pyscan.netlink.queues import queue_counts_here
from pyscan.netlink.source import source_is_owned

__all__ = ["PathInfo", "check_source_address", "resolve_path"]

_IFF_UP = 0x1
_IFF_LOOPBACK = 0x8
_IFF_NOARP = 0x80
_IFF_RUNNING = 0x40
_RTN_LOCAL = 2
_RESOLVED_STATES = (
    ndmsg.states["reachable"] | ndmsg.states["stale"] | ndmsg.states["delay"]
    | ndmsg.states["probe"] | ndmsg.states["permanent"] | ndmsg.states["noarp"]
)
_ARP_POLL_SECONDS = 0.05
# IPv6 address flags (linux/if_addr.h) that make an address unusable as a source: not yet
# through duplicate address detection, failed it, or deprecated (preferred lifetime over).
_IFA_F_DADFAILED = 0x08
_IFA_F_DEPRECATED = 0x20
_IFA_F_TENTATIVE = 0x40
_IFA_UNUSABLE = _IFA_F_DADFAILED | _IFA_F_DEPRECATED | _IFA_F_TENTATIVE
_RT_SCOPE_UNIVERSE = 0

Address = IPv4Address | IPv6Address


def _af(family: int) -> int:
    return socket.AF_INET if family == 4 else socket.AF_INET6


def _resolution(family: int) -> str:
    return "ARP" if family == 4 else "neighbour discovery"


@dataclass(frozen=True)
class PathInfo:
    """Everything the data plane needs to put a probe on the wire toward a target."""

    interface: str
    ifindex: int
    mtu: int
    tx_queues: int   # active queues (pyscan.netlink.queue_counts): what af-xdp can bind
    rx_queues: int
    source_ip: Address              # of the target's family
    source_mac: str
    gateway_ip: Address | None      # None when the target is on-link
    gateway_mac: str                # next hop's MAC: the gateway, or the on-link target
    # False: source_ip is a free address of the link the host does not own (--source-ip):
    # the scan answers ARP (IPv6: neighbour solicitations) for it and needs no isolation
    # firewall (netlink.source)
    source_owned: bool = True
    # the interface's own MAC (source_mac may be --source-mac's): what ARP for an unowned
    # source_ip is answered with, so the replies reach this interface
    link_mac: str = ""


def _neighbour_mac(ipr: IPRoute, address: Address, ifindex: int) -> str | None:
    for entry in ipr.get_neighbours(family=_af(address.version), dst=str(address),
                                    ifindex=ifindex):
        if entry["state"] & _RESOLVED_STATES and entry.get("NDA_LLADDR"):
            return str(entry.get("NDA_LLADDR"))
    return None


def _resolve_mac(ipr: IPRoute, address: Address, ifindex: int, ifname: str,
                 timeout: float) -> str:
    known = _neighbour_mac(ipr, address, ifindex)
    if known:
        return known
    how = _resolution(address.version)
    # NTF_USE makes the kernel run its own ARP / ND state machine for the entry (like
    # `ip neigh replace ... use`): an ARP request or a neighbour solicitation to the
    # solicited-node multicast group. We only read the table, so nothing is sent from Python.
    try:
        ipr.neigh("replace", family=_af(address.version), dst=str(address), ifindex=ifindex,
                  flags=ndmsg.NTF_USE)
    except _PyrouteNetlinkError as error:
        raise NetlinkError(f"cannot start {how} for {address} on {ifname}: {error}") from error
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(_ARP_POLL_SECONDS)
        known = _neighbour_mac(ipr, address, ifindex)
        if known:
            return known
    raise NetlinkError(
        f"{address} did not answer {how} within {timeout:g} s on {ifname} - pass --gateway-mac"
    )


def _first_address(ipr: IPRoute, ifindex: int, family: int) -> Address | None:
    """The interface's first usable address of `family`; for IPv6 a global one (a link-local
    source cannot reach a routed target), past duplicate address detection."""
    for entry in ipr.get_addr(family=_af(family), index=ifindex):
        address = entry.get("IFA_LOCAL") or entry.get("IFA_ADDRESS")
        if not address:
            continue
        if family == 4:
            return IPv4Address(address)
        flags = int(entry.get("IFA_FLAGS") or entry["flags"])
        if entry["scope"] == _RT_SCOPE_UNIVERSE and not flags & _IFA_UNUSABLE:
            return IPv6Address(address)
    return None


def resolve_path(target: Address | None = None, interface: str | None = None,
                 source_ip: Address | None = None, gateway_mac: str | None = None,
                 arp_timeout: float = 3.0, netns: str | None = None,
                 source_mac: str | None = None,
                 gateway_ip: Address | None = None, family: int | None = None) -> PathInfo:
    """Interface, addresses and next-hop MAC for probes toward ``target``.

    The kernel's own FIB decides the route (``ip route get``), or the default route when no
    target is given; ``interface``, ``source_ip``, ``source_mac`` and ``gateway_mac`` override
    what they name, and ``gateway_ip`` is the next hop to resolve instead of the route's
    (masscan's --router-ip). A next hop not in the neighbour table is resolved by the kernel
    (ARP for IPv4, neighbour discovery for IPv6), waiting at most ``arp_timeout`` seconds.
    ``netns`` resolves inside that namespace. The family is the target's; without a target,
    ``family`` (default 4) picks which default route. The source address is the route's
    preferred source, else the interface's first (for IPv6: global, not tentative) address.
    A given ``source_ip`` the host does not own must be a free address of the interface's
    subnet (IPv6: on-link prefix; ``source_owned`` False), else SourceAddressRefused
    (netlink.source).
    """
    family = target.version if target is not None else (family or 4)
    for name, value in (("source IP", source_ip), ("gateway IP", gateway_ip)):
        if value is not None and value.version != family:
            raise NetlinkError(f"{name} {value} is not IPv{family} like the target")
    with rtnl(netns) as ipr:
        oif: int | None = None
        if interface:
            oif = rtnl_index(ipr, interface, netns)
            _check_usable(ipr.link("get", index=oif)[0])   # a down link has no routes at all
        route = _route(ipr, target, oif, interface, family)
        ifindex = oif or route.oif
        link = ipr.link("get", index=ifindex)[0]
        ifname = str(link.get("IFLA_IFNAME"))
        flags = int(link["flags"])
        _check_usable(link)
        asked_next_hop = gateway_ip
        gateway_ip = gateway_ip or route.gateway

        source_owned = True
        if source_ip is None:
            source_ip = route.prefsrc or _first_address(ipr, ifindex, family)
            if source_ip is None:
                kind = "IPv4 address" if family == 4 else "global IPv6 address (past DAD)"
                raise NetlinkError(f"interface {ifname} has no {kind} - pass --source-ip")
        else:
            source_owned = source_is_owned(ipr, source_ip, ifindex, ifname, gateway_ip, netns)

        if source_mac is not None:
            source_mac = normalise_mac(source_mac, "source MAC")
        else:
            source_mac = str(link.get("IFLA_ADDRESS") or "00:00:00:00:00:00")
        if gateway_mac is not None:
            next_hop_mac = normalise_mac(gateway_mac, "gateway MAC")
        elif asked_next_hop is not None:
            # Asked for explicitly, so resolved even where the route says on-link or local.
            if flags & _IFF_NOARP:
                raise NetlinkError(f"interface {ifname} has no {_resolution(family)} "
                                   "(not Ethernet?) - pass --gateway-mac")
            next_hop_mac = _resolve_mac(ipr, asked_next_hop, ifindex, ifname, arp_timeout)
        elif flags & _IFF_LOOPBACK or route.local:
            next_hop_mac = "00:00:00:00:00:00"   # loopback frames carry no real addresses
        elif flags & _IFF_NOARP:
            raise NetlinkError(f"interface {ifname} has no {_resolution(family)} "
                               "(not Ethernet?) - pass --gateway-mac")
        else:
            next_hop = gateway_ip or target
            assert next_hop is not None   # no target means a default route via a gateway
            next_hop_mac = _resolve_mac(ipr, next_hop, ifindex, ifname, arp_timeout)

        queues = queue_counts_here(ifname, link)
        return PathInfo(
            interface=ifname,
            ifindex=ifindex,
            mtu=int(link.get("IFLA_MTU") or 1500),
            tx_queues=queues.tx,
            rx_queues=queues.rx,
            source_ip=source_ip,
            source_mac=source_mac,
            gateway_ip=gateway_ip,
            gateway_mac=next_hop_mac,
            source_owned=source_owned,
            link_mac=str(link.get("IFLA_ADDRESS") or "00:00:00:00:00:00"),
        )


def check_source_address(source_ip: Address, target: Address | None = None,
                         interface: str | None = None, netns: str | None = None,
                         gateway_ip: Address | None = None) -> bool:
    """resolve_path's verdict on a given source address (True: the host's own, False: a free
    address of the link), without the ARP exchanges: no next-hop resolution, no probe for the
    address being in use (the scan does both). SourceAddressRefused for an unusable one."""
    with rtnl(netns) as ipr:
        oif = rtnl_index(ipr, interface, netns) if interface else None
        family = target.version if target is not None else source_ip.version
        route = _route(ipr, target, oif, interface, family)
        ifindex = oif or route.oif
        ifname = str(ipr.link("get", index=ifindex)[0].get("IFLA_IFNAME"))
        return source_is_owned(ipr, source_ip, ifindex, ifname, gateway_ip or route.gateway,
                               netns, arp_probe_seconds=0)


def _check_usable(link: Any) -> None:
    ifname, flags = link.get("IFLA_IFNAME"), int(link["flags"])
    if not flags & _IFF_UP:
        raise NetlinkError(f"interface {ifname} is down")
    if not flags & _IFF_RUNNING:
        raise NetlinkError(f"interface {ifname} is up but has no carrier")


@dataclass(frozen=True)
class _Route:
    oif: int
    gateway: Address | None
    prefsrc: Address | None
    local: bool   # the destination is an address of this host (RTN_LOCAL)


def _route(ipr: IPRoute, target: Address | None, oif: int | None,
           interface: str | None, family: int) -> _Route:
    on = f" on {interface}" if interface else ""
    if target is None:
        target_gateway = _default_gateway(ipr, oif, on, family)
        found = _route_get(ipr, target_gateway, oif, on)
        # The FIB answer for an on-link gateway has no gateway of its own: it is the gateway.
        return _Route(found.oif, target_gateway, found.prefsrc, found.local)
    return _route_get(ipr, target, oif, on)


def _route_get(ipr: IPRoute, destination: Address, oif: int | None, on: str) -> _Route:
    spec: dict[str, object] = {"dst": str(destination), "family": _af(destination.version)}
    if oif is not None:
        spec["oif"] = oif
    try:
        found = ipr.route("get", **spec)[0]
    except _PyrouteNetlinkError as error:
        raise NetlinkError(f"no route to {destination}{on} ({error.args[-1]})") from None
    gateway, prefsrc = found.get("RTA_GATEWAY"), found.get("RTA_PREFSRC")
    make = IPv4Address if destination.version == 4 else IPv6Address
    return _Route(
        oif=int(found.get("RTA_OIF")),
        gateway=make(gateway) if gateway else None,
        prefsrc=make(prefsrc) if prefsrc else None,
        local=found["type"] == _RTN_LOCAL,
    )


def _default_gateway(ipr: IPRoute, oif: int | None, on: str, family: int) -> Address:
    make = IPv4Address if family == 4 else IPv6Address
    for route in ipr.get_default_routes(family=_af(family)):
        # ECMP default routes keep their next hops in RTA_MULTIPATH: take the first usable.
        hops = [(route.get("RTA_OIF"), route.get("RTA_GATEWAY"))]
        for hop in route.get("RTA_MULTIPATH") or []:
            hops.append((hop["oif"], hop.get("RTA_GATEWAY")))
        for hop_oif, gateway in hops:
            if gateway and (oif is None or hop_oif == oif):
                return make(gateway)
    raise NetlinkError(f"no default route via a gateway{on} for IPv{family} - give a target")
