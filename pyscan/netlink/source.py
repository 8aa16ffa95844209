"""Whose address the scan's source is: the host's own (the kernel owns the replies, the
isolation firewall keeps it from answering them), or a free address on the interface's link
that the host does not own (masscan's trick: pyscan answers ARP - for IPv6 neighbour
solicitations - for it, the kernel drops the replies as not its own, no firewall is needed).
Anything else is refused."""

from __future__ import annotations

import contextlib
import socket
import time
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError as _PyrouteNetlinkError
from pyroute2.netlink.rtnl import ndmsg

from pyscan.netlink.common import NetlinkError
from pyscan.netlink.namespaces import in_netns

__all__ = ["ARP_PROBE_SECONDS", "SourceAddressRefused", "source_is_owned"]

# How long the kernel's ARP (IPv6: neighbour solicitation) for the address may go unanswered
# before it counts as free: the first request leaves at once, and a host on the link answers
# within milliseconds.
ARP_PROBE_SECONDS = 1.0
_POLL_SECONDS = 0.05
_ANSWERED = (ndmsg.states["reachable"] | ndmsg.states["stale"] | ndmsg.states["delay"]
             | ndmsg.states["probe"] | ndmsg.states["permanent"])


class SourceAddressRefused(NetlinkError):
    """--source-ip names an address pyscan cannot use (bad input: exit 2)."""


Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


def _family(address: Address) -> int:
    return socket.AF_INET6 if isinstance(address, IPv6Address) else socket.AF_INET


def _local(entry: Any) -> str | None:
    value = entry.get("IFA_LOCAL") or entry.get("IFA_ADDRESS")
    return str(value) if value else None


def _host_owns(ipr: IPRoute, address: Address) -> bool:
    kind = type(address)
    return any(kind(local) == address
               for entry in ipr.get_addr(family=_family(address))
               if (local := _local(entry)))


def _link_networks(ipr: IPRoute, ifindex: int, family: int) -> list[Network]:
    """The interface's subnets (IPv4) or on-link prefixes (IPv6, link-local ones left out:
    a link-local source cannot reach the targets' prefixes)."""
    networks: list[Network] = []
    for entry in ipr.get_addr(family=family, index=ifindex):
        local = _local(entry)
        if not local:
            continue
        if family == socket.AF_INET6:
            prefix = IPv6Network(f"{local}/{entry['prefixlen']}", strict=False)
            if not prefix.is_link_local and prefix not in networks:
                networks.append(prefix)
        else:
            networks.append(IPv4Network(f"{local}/{entry['prefixlen']}", strict=False))
    return networks


def _unusable_in(network: Network, gateway: Address | None) -> set[Address]:
    """The addresses of a subnet a scan may not borrow: the gateway; IPv4: the network and
    broadcast addresses (a /31 and /32 have none); IPv6: the subnet-router anycast address
    (the prefix itself, RFC 4291 2.6.1)."""
    taken: set[Address] = {gateway} if gateway is not None else set()
    if isinstance(network, IPv6Network):
        if network.prefixlen < 127:
            taken.add(network.network_address)
    elif network.prefixlen <= 30:
        taken |= {network.network_address, network.broadcast_address}
    return taken


def _answered_neighbour(ipr: IPRoute, address: Address, ifindex: int,
                        timeout: float) -> str | None:
    """The MAC that answers the kernel's ARP (IPv6: neighbour solicitation) for ``address``
    within ``timeout``, or None. The kernel sends the requests (NTF_USE starts its state
    machine), from the host's own address; the entry is removed afterwards, so the host is
    left as it was."""
    family = _family(address)
    try:
        ipr.neigh("replace", dst=str(address), ifindex=ifindex, family=family,
                  flags=ndmsg.NTF_USE)
    except _PyrouteNetlinkError:
        return None   # no resolution possible here: nothing to learn, nothing to refuse
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)
            for entry in ipr.get_neighbours(family=family, dst=str(address), ifindex=ifindex):
                if entry["state"] & _ANSWERED and entry.get("NDA_LLADDR"):
                    return str(entry.get("NDA_LLADDR"))
        return None
    finally:
        with contextlib.suppress(_PyrouteNetlinkError):
            ipr.neigh("del", dst=str(address), ifindex=ifindex, family=family)


def _forwarding(ifname: str, netns: str | None, version: int) -> bool:
    # /proc/sys/net is resolved against the opening thread's namespace.
    try:
        with in_netns(netns), open(f"/proc/sys/net/ipv{version}/conf/{ifname}/forwarding") \
                as value:
            return value.read().strip() == "1"
    except OSError:
        return False


def source_is_owned(ipr: IPRoute, address: Address, ifindex: int, ifname: str,
                    gateway: Address | None, netns: str | None = None,
                    arp_probe_seconds: float = ARP_PROBE_SECONDS) -> bool:
    """True when the host owns ``address`` (today's path), False when it is a free address
    inside the subnet (IPv6: on-link prefix) of ``ifname`` that pyscan may borrow (it then
    answers ARP, or neighbour solicitations, for it); SourceAddressRefused naming the address
    and what is accepted otherwise."""
    if gateway is not None and gateway.version != address.version:
        gateway = None   # resolve_path keeps both of the target's family
    if _host_owns(ipr, address):
        return True
    v6 = isinstance(address, IPv6Address)
    networks = _link_networks(ipr, ifindex, _family(address))
    gateway_text = f" and gateway ({gateway})" if gateway is not None else ""
    if v6:
        prefixes = ", ".join(map(str, networks)) or "none: it has no global IPv6 address"
        accepted = (f"accepted: an address of this host, or a free address in an on-link "
                    f"prefix of {ifname} ({prefixes}) other than its subnet-router anycast"
                    f"{gateway_text} addresses")
        where, unusable = "an on-link prefix", "subnet-router anycast or gateway"
        resolution, sysctl = "neighbour discovery", f"net.ipv6.conf.{ifname}.forwarding"
    else:
        accepted = (f"accepted: an address of this host, or a free address in the subnet of "
                    f"{ifname} ({', '.join(map(str, networks)) or 'none: it has no IPv4 address'})"
                    f" other than its network, broadcast{gateway_text} addresses")
        where, unusable = "the subnet", "network, broadcast or gateway"
        resolution, sysctl = "ARP", f"net.ipv4.conf.{ifname}.forwarding"
    inside = [network for network in networks if address in network]
    if not inside:
        raise SourceAddressRefused(f"--source-ip {address} is neither an address of this host "
                                   f"nor in {where} of {ifname} ({accepted})")
    if any(address in _unusable_in(network, gateway) for network in inside):
        raise SourceAddressRefused(f"--source-ip {address} is the {unusable} address of "
                                   f"{ifname}'s {'prefix' if v6 else 'subnet'} ({accepted})")
    if _forwarding(ifname, netns, address.version):
        raise SourceAddressRefused(
            f"--source-ip {address} is not an address of this host and IP forwarding is on for "
            f"{ifname}: the kernel would route the replies to {address} back onto the link "
            f"(turn it off with sysctl {sysctl}=0, or use an address of this host)")
    if arp_probe_seconds > 0:
        owner = _answered_neighbour(ipr, address, ifindex, arp_probe_seconds)
        if owner is not None:
            raise SourceAddressRefused(f"--source-ip {address} is in use on {ifname}: {owner} "
                                       f"answered {resolution} for it ({accepted})")
    return False
