"""Every pyroute2 call in pyscan: the path to a target, links, addresses, routes, namespaces.

Two facts shape this module:

- A netlink socket belongs to the network namespace of the thread that created it. So instead
  of ``IPRoute(netns=...)`` (which forks a helper process, unsafe once the data-plane threads
  run) every function takes ``netns`` and opens its socket on the calling thread inside
  :func:`in_netns`, which moves only that thread, and back.
- ``setns`` is per thread: :func:`in_netns` saves the *thread's* namespace
  (``/proc/thread-self``), never the process's, so threads can each visit a namespace at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError as _PyrouteNetlinkError
from pyroute2.netlink.rtnl import ndmsg

from pyscan.errors import Error

__all__ = [
    "LINK_COUNTERS",
    "NETNS_DIR",
    "NetlinkError",
    "PathInfo",
    "add_address",
    "add_local_route",
    "add_neighbour",
    "add_route",
    "create_netns",
    "create_veth",
    "delete_link",
    "enter_netns_for_process",
    "in_netns",
    "link_index",
    "link_mac",
    "link_names",
    "link_stats",
    "list_netns",
    "netns_exists",
    "remove_netns",
    "resolve_path",
    "set_link_up",
]

NETNS_DIR = "/run/netns"
_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_MS_REC = 16384
_MS_SHARED = 1 << 20
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
_libc = ctypes.CDLL(None, use_errno=True)


class NetlinkError(Error):
    """The network path cannot be used as asked; the message is one line saying why."""


@dataclass(frozen=True)
class PathInfo:
    """Everything the data plane needs to put a probe on the wire toward a target."""

    interface: str
    ifindex: int
    mtu: int
    tx_queues: int
    rx_queues: int
    source_ip: IPv4Address
    source_mac: str
    gateway_ip: IPv4Address | None  # None when the target is on-link
    gateway_mac: str                # next hop's MAC: the gateway, or the on-link target


# --- namespaces ----------------------------------------------------------------------------

def _setns(fd: int, what: str) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise NetlinkError(f"cannot enter network namespace {what}: {os.strerror(code)}")


def _open_netns(name: str | int) -> int:
    if isinstance(name, int):
        return os.dup(name)   # an fd of /proc/<pid>/ns/net or /run/netns/<name>
    try:
        return os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        available = ", ".join(list_netns()) or "none"
        raise NetlinkError(
            f"no network namespace named {name!r} (available: {available})"
        ) from None


@contextlib.contextmanager
def in_netns(name: str | int | None) -> Iterator[None]:
    """Run the block with the calling thread (only) in namespace ``name``; None = stay.

    ``name`` is a named namespace or an open namespace fd. Sockets, netlink handles and
    child processes created in the block belong to that namespace.
    """
    if name is None:
        yield
        return
    target = _open_netns(name)
    try:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except BaseException:
        os.close(target)
        raise
    try:
        _setns(target, repr(name))
        try:
            yield
        finally:
            # Failing to return would leave this thread sending from the wrong namespace.
            _setns(home, "of this thread (returning)")
    finally:
        os.close(target)
        os.close(home)



def write_sysctl(key: str, value: str, netns: str) -> None:
    """Set a namespaced sysctl (``net/...``) inside ``netns``."""
    # /proc/sys/net is resolved against the opening thread's namespace.
    with in_netns(netns), open(f"/proc/sys/{key}", "w") as sysctl:
        sysctl.write(value)

def enter_netns_for_process(name: str) -> None:
    """Move the calling thread into ``name`` for good (``pyscan --netns``).

    Call it first thing, before any thread starts: threads started later inherit the
    namespace of the thread that starts them, threads already running do not move.
    """
    others = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
    if others:
        raise NetlinkError(
            f"--netns must be entered before threads start (running: {', '.join(others)})"
        )
    fd = _open_netns(name)
    try:
        _setns(fd, repr(name))
    finally:
        os.close(fd)


def list_netns(prefix: str = "") -> list[str]:
    """Named network namespaces (``ip netns`` names) starting with ``prefix``, sorted."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(prefix))


def netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def _mount(source: str, target: str, flags: int) -> int:
    return int(_libc.mount(source.encode(), target.encode(), b"none", flags, None))


def _share_netns_dir() -> None:
    """Make NETNS_DIR a shared mount point, as `ip netns add` does, so namespace bind mounts
    made here are seen by every mount namespace (and `ip netns exec`)."""
    os.makedirs(NETNS_DIR, exist_ok=True)
    if _mount("", NETNS_DIR, _MS_SHARED | _MS_REC) == 0:
        return
    # Not a mount point yet: bind it onto itself, then share it.
    if _mount(NETNS_DIR, NETNS_DIR, _MS_BIND | _MS_REC) != 0 or \
            _mount("", NETNS_DIR, _MS_SHARED | _MS_REC) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"cannot make {NETNS_DIR} a shared mount: {os.strerror(code)}")


def _bind_new_netns(path: str, failure: list[BaseException]) -> None:
    # Runs on a throwaway thread: unshare moves only this thread into the new namespace,
    # and the bind mount keeps the namespace alive after the thread is gone.
    try:
        if _libc.unshare(_CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"unshare: {os.strerror(code)}")
        if _mount("/proc/thread-self/ns/net", path, _MS_BIND) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"bind mount: {os.strerror(code)}")
    except BaseException as error:
        failure.append(error)


def create_netns(name: str) -> None:
    """Create named namespace ``name`` (like ``ip netns add``); its loopback is brought up.

    No fork (unlike pyroute2's ``netns.create``): a helper thread unshares and bind-mounts,
    so it is safe while data-plane threads run.
    """
    if not name or "/" in name or name in (".", ".."):
        raise NetlinkError(f"network namespace name {name!r} is not usable (no '/', not empty)")
    path = os.path.join(NETNS_DIR, name)
    try:
        _share_netns_dir()
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    except FileExistsError:
        raise NetlinkError(f"network namespace {name!r} already exists") from None
    except OSError as error:
        raise NetlinkError(f"cannot create network namespace {name!r}: {error}") from error
    failure: list[BaseException] = []
    helper = threading.Thread(target=_bind_new_netns, args=(path, failure),
                              name=f"netns-create-{name}")
    helper.start()
    helper.join()
    if failure:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise NetlinkError(f"cannot create network namespace {name!r}: {failure[0]}")
    set_link_up("lo", netns=name)


def remove_netns(name: str) -> bool:
    """Remove named namespace ``name``; False (no error) when it is already gone."""
    if not netns_exists(name):
        return False
    try:
        netns.remove(name)
    except FileNotFoundError:
        return False
    except OSError as error:
        raise NetlinkError(f"cannot remove network namespace {name!r}: {error}") from error
    return True


# --- links, addresses, routes ----------------------------------------------------------------

@contextlib.contextmanager
def _rtnl(name: str | None) -> Iterator[IPRoute]:
    with in_netns(name), IPRoute() as ipr:
        yield ipr


def _index(ipr: IPRoute, ifname: str, name: str | None) -> int:
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
    with _rtnl(netns) as ipr:
        return _index(ipr, ifname, netns)


def link_names(netns: str | None = None) -> list[str]:
    with _rtnl(netns) as ipr:
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
        with _rtnl(netns) as ipr:
            ipr.link("add", ifname=ifname, kind="veth", num_tx_queues=queues,
                     num_rx_queues=queues, peer=peer_spec)
    except _PyrouteNetlinkError as error:
        raise NetlinkError(f"cannot create veth pair {ifname}/{peer}: {error}") from error


def delete_link(ifname: str, netns: str | None = None) -> bool:
    """Delete ``ifname``; False (no error) when it or its namespace is already gone."""
    if netns is not None and not netns_exists(netns):
        return False
    with _rtnl(netns) as ipr:
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
    with _rtnl(netns) as ipr:
        ipr.link("set", index=_index(ipr, ifname, netns), state="up")


def add_address(ifname: str, address: IPv4Interface, netns: str | None = None) -> None:
    try:
        with _rtnl(netns) as ipr:
            ipr.addr("add", index=_index(ipr, ifname, netns), address=str(address.ip),
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
        with _rtnl(netns) as ipr:
            if ifname is not None:
                spec["oif"] = _index(ipr, ifname, netns)
            ipr.route("add", **spec)
    except _PyrouteNetlinkError as error:
        raise NetlinkError(f"cannot add route to {destination}: {error}") from error


def add_neighbour(address: IPv4Address, mac: str, ifname: str,
                  netns: str | None = None) -> None:
    """A permanent ARP entry (``ip neigh replace ADDRESS lladdr MAC nud permanent``): for a
    next hop that will never answer ARP itself, like the lab target in sink mode."""
    try:
        with _rtnl(netns) as ipr:
            ipr.neigh("replace", dst=str(address), lladdr=_normalise_mac(mac, "MAC"),
                      ifindex=_index(ipr, ifname, netns), state=ndmsg.states["permanent"])
    except _PyrouteNetlinkError as error:
        raise NetlinkError(f"cannot add neighbour {address} on {ifname}: {error}") from error


LINK_COUNTERS = ("rx_packets", "rx_bytes", "rx_dropped", "tx_packets", "tx_bytes",
                 "tx_dropped", "tx_errors")


def link_stats(ifname: str, netns: str | None = None) -> dict[str, int]:
    """The kernel's 64-bit counters of ``ifname`` (``ip -s link``): a veth whose peer cannot
    keep up counts the frames it had to drop as ``tx_dropped``."""
    with _rtnl(netns) as ipr:
        link = ipr.link("get", index=_index(ipr, ifname, netns))[0]
        stats = link.get("IFLA_STATS64") or {}
        return {name: int(stats.get(name, 0)) for name in LINK_COUNTERS}


def link_mac(ifname: str, netns: str | None = None) -> str:
    with _rtnl(netns) as ipr:
        link = ipr.link("get", index=_index(ipr, ifname, netns))[0]
        return str(link.get("IFLA_ADDRESS"))


def add_local_route(network: IPv4Network, netns: str | None = None) -> None:
    """``ip route add local NETWORK dev lo``: the namespace owns every address in ``network``
    (AnyIP), so its kernel answers for all of them without one address per host."""
    try:
        with _rtnl(netns) as ipr:
            ipr.route("add", dst=str(network), type="local", table=255, scope="host",
                      oif=_index(ipr, "lo", netns))
    except _PyrouteNetlinkError as error:
        raise NetlinkError(f"cannot add local route {network}: {error}") from error


# --- the path to a target ------------------------------------------------------------------

def _neighbour_mac(ipr: IPRoute, address: IPv4Address, ifindex: int) -> str | None:
    for entry in ipr.get_neighbours(dst=str(address), ifindex=ifindex):
        if entry["state"] & _RESOLVED_STATES and entry.get("NDA_LLADDR"):
            return str(entry.get("NDA_LLADDR"))
    return None


def _resolve_mac(ipr: IPRoute, address: IPv4Address, ifindex: int, ifname: str,
                 timeout: float) -> str:
    known = _neighbour_mac(ipr, address, ifindex)
    if known:
        return known
    # NTF_USE makes the kernel run its own ARP state machine for the entry (like
    # `ip neigh replace ... use`); we only read the table, so nothing is sent from Python.
    try:
        ipr.neigh("replace", dst=str(address), ifindex=ifindex, flags=ndmsg.NTF_USE)
    except _PyrouteNetlinkError as error:
        raise NetlinkError(f"cannot start ARP for {address} on {ifname}: {error}") from error
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(_ARP_POLL_SECONDS)
        known = _neighbour_mac(ipr, address, ifindex)
        if known:
            return known
    raise NetlinkError(
        f"{address} did not answer ARP within {timeout:g} s on {ifname} - pass --gateway-mac"
    )


def _first_ipv4(ipr: IPRoute, ifindex: int) -> IPv4Address | None:
    for entry in ipr.get_addr(family=socket.AF_INET, index=ifindex):
        address = entry.get("IFA_LOCAL") or entry.get("IFA_ADDRESS")
        if address:
            return IPv4Address(address)
    return None


def _normalise_mac(mac: str, what: str) -> str:
    parts = mac.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) in (1, 2) for p in parts):
        raise NetlinkError(f"{what} {mac!r} is not a MAC address (expected aa:bb:cc:dd:ee:ff)")
    try:
        return ":".join(f"{int(p, 16):02x}" for p in parts)
    except ValueError:
        raise NetlinkError(
            f"{what} {mac!r} is not a MAC address (expected aa:bb:cc:dd:ee:ff)"
        ) from None


def resolve_path(target: IPv4Address | None = None, interface: str | None = None,
                 source_ip: IPv4Address | None = None, gateway_mac: str | None = None,
                 arp_timeout: float = 3.0, netns: str | None = None) -> PathInfo:
    """Interface, addresses and next-hop MAC for probes toward ``target``.

    The kernel's own FIB decides the route (``ip route get``), or the default route when no
    target is given; ``interface``, ``source_ip`` and ``gateway_mac`` override what they
    name. A next hop not in the neighbour table is ARPed by the kernel, waiting at most
    ``arp_timeout`` seconds. ``netns`` resolves inside that namespace.
    """
    with _rtnl(netns) as ipr:
        oif: int | None = None
        if interface:
            oif = _index(ipr, interface, netns)
            _check_usable(ipr.link("get", index=oif)[0])   # a down link has no routes at all
        route = _route(ipr, target, oif, interface)
        ifindex = oif or route.oif
        link = ipr.link("get", index=ifindex)[0]
        ifname = str(link.get("IFLA_IFNAME"))
        flags = int(link["flags"])
        _check_usable(link)
        gateway_ip = route.gateway

        if source_ip is None:
            source_ip = route.prefsrc or _first_ipv4(ipr, ifindex)
            if source_ip is None:
                raise NetlinkError(f"interface {ifname} has no IPv4 address - pass --source-ip")

        source_mac = str(link.get("IFLA_ADDRESS") or "00:00:00:00:00:00")
        if gateway_mac is not None:
            next_hop_mac = _normalise_mac(gateway_mac, "gateway MAC")
        elif flags & _IFF_LOOPBACK or route.local:
            next_hop_mac = "00:00:00:00:00:00"   # loopback frames carry no real addresses
        elif flags & _IFF_NOARP:
            raise NetlinkError(
                f"interface {ifname} has no ARP (not Ethernet?) - pass --gateway-mac"
            )
        else:
            next_hop = gateway_ip or target
            assert next_hop is not None   # no target means a default route via a gateway
            next_hop_mac = _resolve_mac(ipr, next_hop, ifindex, ifname, arp_timeout)

        return PathInfo(
            interface=ifname,
            ifindex=ifindex,
            mtu=int(link.get("IFLA_MTU") or 1500),
            tx_queues=int(link.get("IFLA_NUM_TX_QUEUES") or 1),
            rx_queues=int(link.get("IFLA_NUM_RX_QUEUES") or 1),
            source_ip=source_ip,
            source_mac=source_mac,
            gateway_ip=gateway_ip,
            gateway_mac=next_hop_mac,
        )


def _check_usable(link: Any) -> None:
    ifname, flags = link.get("IFLA_IFNAME"), int(link["flags"])
    if not flags & _IFF_UP:
        raise NetlinkError(f"interface {ifname} is down")
    if not flags & _IFF_RUNNING:
        raise NetlinkError(f"interface {ifname} is up but has no carrier")


@dataclass(frozen=True)
class _Route:
    oif: int
    gateway: IPv4Address | None
    prefsrc: IPv4Address | None
    local: bool   # the destination is an address of this host (RTN_LOCAL)


def _route(ipr: IPRoute, target: IPv4Address | None, oif: int | None,
           interface: str | None) -> _Route:
    on = f" on {interface}" if interface else ""
    if target is None:
        target_gateway = _default_gateway(ipr, oif, on)
        found = _route_get(ipr, target_gateway, oif, on)
        # The FIB answer for an on-link gateway has no gateway of its own: it is the gateway.
        return _Route(found.oif, target_gateway, found.prefsrc, found.local)
    return _route_get(ipr, target, oif, on)


def _route_get(ipr: IPRoute, destination: IPv4Address, oif: int | None, on: str) -> _Route:
    spec: dict[str, object] = {"dst": str(destination)}
    if oif is not None:
        spec["oif"] = oif
    try:
        found = ipr.route("get", **spec)[0]
    except _PyrouteNetlinkError as error:
        raise NetlinkError(f"no route to {destination}{on} ({error.args[-1]})") from None
    gateway, prefsrc = found.get("RTA_GATEWAY"), found.get("RTA_PREFSRC")
    return _Route(
        oif=int(found.get("RTA_OIF")),
        gateway=IPv4Address(gateway) if gateway else None,
        prefsrc=IPv4Address(prefsrc) if prefsrc else None,
        local=found["type"] == _RTN_LOCAL,
    )


def _default_gateway(ipr: IPRoute, oif: int | None, on: str) -> IPv4Address:
    for route in ipr.get_default_routes(family=socket.AF_INET):
        # ECMP default routes keep their next hops in RTA_MULTIPATH: take the first usable.
        hops = [(route.get("RTA_OIF"), route.get("RTA_GATEWAY"))]
        for hop in route.get("RTA_MULTIPATH") or []:
            hops.append((hop["oif"], hop.get("RTA_GATEWAY")))
        for hop_oif, gateway in hops:
            if gateway and (oif is None or hop_oif == oif):
                return IPv4Address(gateway)
    raise NetlinkError(f"no default route via a gateway{on} - give a target")
