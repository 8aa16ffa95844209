"""Whose address the scan's source is: the host's own (the kernel owns the replies, the
isolation firewall keeps it from answering them), or a free address on the interface's link
that the host does not own (masscan's trick: pyscan answers ARP for it, the kernel drops the
replies as not its own, no firewall is needed). Anything else is refused."""

from __future__ import annotations

import contextlib
import socket
import time
from ipaddress import IPv4Address, IPv4Network

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError as _PyrouteNetlinkError
from pyroute2.netlink.rtnl import ndmsg

from pyscan.netlink.common import NetlinkError
from pyscan.netlink.namespaces import in_netns

__all__ = ["ARP_PROBE_SECONDS", "SourceAddressRefused", "source_is_owned"]

# How long the kernel's ARP for the address may go unanswered before it counts as free: the
# first request leaves at once, and a host on the link answers within milliseconds.
ARP_PROBE_SECONDS = 1.0
_POLL_SECONDS = 0.05
_ANSWERED = (ndmsg.states["reachable"] | ndmsg.states["stale"] | ndmsg.states["delay"]
             | ndmsg.states["probe"] | ndmsg.states["permanent"])


class SourceAddressRefused(NetlinkError):
    """--source-ip names an address pyscan cannot use (bad input: exit 2)."""


def _host_owns(ipr: IPRoute, address: IPv4Address) -> bool:
    return any(IPv4Address(entry.get("IFA_LOCAL") or entry.get("IFA_ADDRESS")) == address
               for entry in ipr.get_addr(family=socket.AF_INET)
               if entry.get("IFA_LOCAL") or entry.get("IFA_ADDRESS"))


def _link_networks(ipr: IPRoute, ifindex: int) -> list[IPv4Network]:
    networks = []
    for entry in ipr.get_addr(family=socket.AF_INET, index=ifindex):
        local = entry.get("IFA_LOCAL") or entry.get("IFA_ADDRESS")
        if local:
            networks.append(IPv4Network(f"{local}/{entry['prefixlen']}", strict=False))
    return networks


def _unusable_in(network: IPv4Network, gateway: IPv4Address | None) -> set[IPv4Address]:
    """The addresses of a subnet a scan may not borrow: its network and broadcast addresses
    (a /31 and /32 have none) and the gateway."""
    taken = {gateway} if gateway is not None else set()
    if network.prefixlen <= 30:
        taken |= {network.network_address, network.broadcast_address}
    return taken


def _answered_arp(ipr: IPRoute, address: IPv4Address, ifindex: int, timeout: float) -> str | None:
    """The MAC that answers the kernel's ARP for ``address`` within ``timeout``, or None. The
    kernel sends the requests (NTF_USE starts its state machine), from the host's own address;
    the entry is removed afterwards, so the host is left as it was."""
    try:
        ipr.neigh("replace", dst=str(address), ifindex=ifindex, flags=ndmsg.NTF_USE)
    except _PyrouteNetlinkError:
        return None   # no ARP possible here: nothing to learn, nothing to refuse
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)
            for entry in ipr.get_neighbours(dst=str(address), ifindex=ifindex):
                if entry["state"] & _ANSWERED and entry.get("NDA_LLADDR"):
                    return str(entry.get("NDA_LLADDR"))
        return None
    finally:
        with contextlib.suppress(_PyrouteNetlinkError):
            ipr.neigh("del", dst=str(address), ifindex=ifindex)


def _forwarding(ifname: str, netns: str | None) -> bool:
    # /proc/sys/net is resolved against the opening thread's namespace.
    try:
        with in_netns(netns), open(f"/proc/sys/net/ipv4/conf/{ifname}/forwarding") as value:
            return value.read().strip() == "1"
    except OSError:
        return False


def source_is_owned(ipr: IPRoute, address: IPv4Address, ifindex: int, ifname: str,
                    gateway: IPv4Address | None, netns: str | None = None,
                    arp_probe_seconds: float = ARP_PROBE_SECONDS) -> bool:
    """True when the host owns ``address`` (today's path), False when it is a free address
    inside the subnet of ``ifname`` that pyscan may borrow (ARP mode); SourceAddressRefused
    naming the address and what is accepted otherwise."""
    if _host_owns(ipr, address):
        return True
    networks = _link_networks(ipr, ifindex)
    accepted = (f"accepted: an address of this host, or a free address in the subnet of "
                f"{ifname} ({', '.join(map(str, networks)) or 'none: it has no IPv4 address'})"
                f" other than its network, broadcast"
                f"{f' and gateway ({gateway})' if gateway is not None else ''} addresses")
    inside = [network for network in networks if address in network]
    if not inside:
        raise SourceAddressRefused(f"--source-ip {address} is neither an address of this host "
                                   f"nor in the subnet of {ifname} ({accepted})")
    if any(address in _unusable_in(network, gateway) for network in inside):
        raise SourceAddressRefused(f"--source-ip {address} is the network, broadcast or gateway "
                                   f"address of {ifname}'s subnet ({accepted})")
    if _forwarding(ifname, netns):
        raise SourceAddressRefused(
            f"--source-ip {address} is not an address of this host and IP forwarding is on for "
            f"{ifname}: the kernel would route the replies to {address} back onto the link "
            f"(turn it off with sysctl net.ipv4.conf.{ifname}.forwarding=0, or use an address "
            "of this host)")
    if arp_probe_seconds > 0:
        owner = _answered_arp(ipr, address, ifindex, arp_probe_seconds)
        if owner is not None:
            raise SourceAddressRefused(f"--source-ip {address} is in use on {ifname}: {owner} "
                                       f"answered ARP for it ({accepted})")
    return False
