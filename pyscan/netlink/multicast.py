"""The solicited-node multicast group of an IPv6 source address the host does not own. Its
neighbour solicitations go to ff02::1:ffXX:XXXX (RFC 4291 2.7.1; XX:XXXX = the address's last
24 bits), Ethernet 33:33:ff:XX:XX:XX: a real NIC drops such frames in hardware unless the
group is in its multicast filter, so pyscan's answerer (XDP or the RX thread) would never see
them. Joining the group through an IPv6 socket makes the kernel program the filter (and tell
MLD snooping switches); closing the socket leaves it, so the membership ends with the scan on
every exit path, a crash included (the kernel closes the socket)."""

from __future__ import annotations

import contextlib
import socket
import struct
from collections.abc import Iterator
from ipaddress import IPv6Address

from pyscan.netlink.common import NetlinkError
from pyscan.netlink.namespaces import in_netns

__all__ = ["solicited_node_group", "solicited_node_membership"]


def solicited_node_group(address: IPv6Address) -> IPv6Address:
    """ff02::1:ffXX:XXXX for ``address``."""
    return IPv6Address(b"\xff\x02" + bytes(9) + b"\x01\xff" + address.packed[13:])


@contextlib.contextmanager
def solicited_node_membership(ifindex: int, address: IPv6Address,
                              netns: str | None = None) -> Iterator[IPv6Address]:
    """Member of ``address``'s solicited-node group on interface ``ifindex`` (of ``netns``)
    while the context lasts; yields the group. NetlinkError when the kernel refuses."""
    group = solicited_node_group(address)
    with in_netns(netns):
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                            group.packed + struct.pack("@I", ifindex))
        except OSError as error:
            raise NetlinkError(f"cannot join the solicited-node group {group} of --source-ip "
                               f"{address} on interface {ifindex}: {error.strerror}") from None
        yield group
    finally:
        sock.close()   # leaves the group
