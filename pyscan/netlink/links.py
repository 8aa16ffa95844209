"""Links, addresses, routes and neighbours: what the lab and the tests build, and the link
facts (index, MAC, counters) the rest of pyscan reads.

A netlink socket belongs to the network namespace of the thread that created it. So instead
of ``IPRoute(netns=...)`` (which forks a helper process, unsafe once the data-plane threads
run) every function takes ``netns`` and opens its socket on the calling thread inside
:func:`~pyscan.netlink.namespaces.in_netns`.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from pyroute2 import IPRoute
from pyroute2.ethtool.ioctl import EthtoolError, IoctlEthtool
from pyroute2.netlink.exceptions import NetlinkError as _PyrouteNetlinkError
from pyroute2.netlink.rtnl import ndmsg

from pyscan.netlink.common import NetlinkError, normalise_mac
from pyscan.netlink.namespaces import in_netns, netns_exists

__all__ = [
    "LINK_COUNTERS",
    "add_address",
    "add_local_route",
    "add_neighbour",
    "add_route",
    "create_veth",
    "delete_link",
    "link_index",
    "link_mac",
    "link_names",
    "link_stats",
    "rtnl",
    "rtnl_index",
    "set_link_up",
    "set_tx_checksum_offload",
]

LINK_COUNTERS = ("rx_packets", "rx_bytes", "rx_dropped", "tx_packets", "tx_bytes",
                 "tx_dropped", "tx_errors")


@contextlib.contextmanager
def rtnl(name: str | None) -> Iterator[IPRoute]:
    """An rtnetlink socket of namespace ``name`` (None = the calling thread's)."""
    with in_netns(name), IPRoute() as ipr:
        yield ipr


def rtnl_index(ipr: IPRoute, ifname: str, name: str | None) -> int:
    """ifindex of ``ifname`` on ``ipr``; the error lists the interfaces there are."""
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        available = ", ".join(
            sorted(str(link.get("IFLA_IFNAME")) for link in ipr.get_links())
        )
        where = f" in namespace {name!r}" if name else ""
        raise NetlinkError(f"no interface named {ifname!r}{where} (available: {available})")
    return int(found[0])


def link_index(ifname: str, netns: str | None = None) -> int:
    """ifindex of ``ifname`` in namespace ``netns`` (None = the caller's)."""
    with rtnl(netns) as ipr:
        return rtnl_index(ipr, ifname, netns)


def link_names(netns: str | None = None) -> list[str]:
    with rtnl(netns) as ipr:
        return sorted(str(link.get("IFLA_IFNAME")) for link in ipr.get_links())


def create_veth(ifname: str, peer: str, netns: str | None, peer_netns: str | None,
                queues: int = 1) -> None:
    """A veth pair made inside ``netns`` whose ``peer`` end starts life in ``peer_netns``,
    both with ``queues`` TX and RX queues (one AF_XDP socket / TX thread per queue)."""
    if not 1 <= queues <= 64:
        raise NetlinkError(f"queue count {queues} is out of range (accepted: 1 to 64)")
    peer_spec: dict[str, object] = {
        "ifname": peer, "num_tx_queues": queues, "num_rx_queues": queues,
    }
    if peer_netns is not None:
        peer_spec["net_ns_fd"] = peer_netns
    try:
        with rtnl(netns) as ipr:
            ipr.link("add", ifname=ifname, kind="veth", num_tx_queues=queues,
                     num_rx_queues=queues, peer=peer_spec)
    except _PyrouteNetlinkError as error:
        raise NetlinkError(f"cannot create veth pair {ifname}/{peer}: {error}") from error


def delete_link(ifname: str, netns: str | None = None) -> bool:
    """Delete ``ifname``; False (no error) when it or its namespace is already gone."""
    if netns is not None and not netns_exists(netns):
        return False
    with rtnl(netns) as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            return False
        try:
            ipr.link("del", index=found[0])
        except _PyrouteNetlinkError as error:
            if error.code == errno.ENODEV:
                return False
            raise NetlinkError(f"cannot delete interface {ifname}: {error}") from error
    return True


def set_link_up(ifname: str, netns: str | None = None) -> None:
    with rtnl(netns) as ipr:
        ipr.link("set", index=rtnl_index(ipr, ifname, netns), state="up")


def set_tx_checksum_offload(ifname: str, enabled: bool, netns: str | None = None) -> None:
    """``ethtool -K ifname tx on|off``. With it on (the veth default) a TCP segment crosses a
    veth with its checksum never filled in, which no real wire carries and which the data
    plane then counts as a bad checksum when the driver cannot tell (AF_XDP)."""
    with in_netns(netns):
        try:
            ethtool = IoctlEthtool(ifname)
            try:
                ethtool.set_offload_flag("tx-checksumming", 1 if enabled else 0)
            finally:
                ethtool.close()
        except (EthtoolError, OSError) as error:
            state = "on" if enabled else "off"
            raise NetlinkError(f"cannot turn tx checksum offload {state} on {ifname}: "
                               f"{error}") from error


def add_address(ifname: str, address: IPv4Interface, netns: str | None = None) -> None:
    try:
        with rtnl(netns) as ipr:
            ipr.addr("add", index=rtnl_index(ipr, ifname, netns), address=str(address.ip),
                     prefixlen=address.network.prefixlen)
    except _PyrouteNetlinkError as error:
        raise NetlinkError(f"cannot add {address} to {ifname}: {error}") from error


def add_route(destination: IPv4Network | str, gateway: IPv4Address | None = None,
              ifname: str | None = None, netns: str | None = None) -> None:
    """Route ``destination`` ("default" or a network) via ``gateway`` and/or ``ifname``."""
    spec: dict[str, object] = {"dst": "0.0.0.0/0" if destination == "default"
                               else str(destination)}
    if gateway is not None:
        spec["gateway"] = str(gateway)
    try:
        with rtnl(netns) as ipr:
            if ifname is not None:
                spec["oif"] = rtnl_index(ipr, ifname, netns)
            ipr.route("add", **spec)
    except _PyrouteNetlinkError as error:
        raise NetlinkError(f"cannot add route to {destination}: {error}") from error


def add_neighbour(address: IPv4Address, mac: str, ifname: str,
                  netns: str | None = None) -> None:
    """A permanent ARP entry (``ip neigh replace ADDRESS lladdr MAC nud permanent``): for a
    next hop that will never answer ARP itself, like the lab target in sink mode."""
    try:
        with rtnl(netns) as ipr:
            ipr.neigh("replace", dst=str(address), lladdr=normalise_mac(mac, "MAC"),
                      ifindex=rtnl_index(ipr, ifname, netns), state=ndmsg.states["permanent"])
    except _PyrouteNetlinkError as error:
        raise NetlinkError(f"cannot add neighbour {address} on {ifname}: {error}") from error


def link_stats(ifname: str, netns: str | None = None) -> dict[str, int]:
    """The kernel's 64-bit counters of ``ifname`` (``ip -s link``): a veth whose peer cannot
    keep up counts the frames it had to drop as ``tx_dropped``."""
    with rtnl(netns) as ipr:
        link = ipr.link("get", index=rtnl_index(ipr, ifname, netns))[0]
        stats = link.get("IFLA_STATS64") or {}
        return {name: int(stats.get(name, 0)) for name in LINK_COUNTERS}


def link_kind(ifname: str, netns: str | None = None) -> str | None:
    """The rtnetlink kind of a virtual link ("veth", "bridge", ...); None for a device
    without one (a physical NIC)."""
    with rtnl(netns) as ipr:
        link = ipr.link("get", index=rtnl_index(ipr, ifname, netns))[0]
        info = link.get("IFLA_LINKINFO")
        kind = info.get("IFLA_INFO_KIND") if info is not None else None
        return str(kind) if kind else None


def link_mac(ifname: str, netns: str | None = None) -> str:
    with rtnl(netns) as ipr:
        link = ipr.link("get", index=rtnl_index(ipr, ifname, netns))[0]
        return str(link.get("IFLA_ADDRESS"))


def add_local_route(network: IPv4Network, netns: str | None = None) -> None:
    """``ip route add local NETWORK dev lo``: the namespace owns every address in ``network``
    (AnyIP), so its kernel answers for all of them without one address per host."""
    try:
        with rtnl(netns) as ipr:
            ipr.route("add", dst=str(network), type="local", table=255, scope="host",
                      oif=rtnl_index(ipr, "lo", netns))
    except _PyrouteNetlinkError as error:
        raise NetlinkError(f"cannot add local route {network}: {error}") from error
