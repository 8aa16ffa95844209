"""Source-port safety reads the scan's namespace, not the host's (root: a scratch namespace)."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from pyscan import netlink
from pyscan.sourceports import SourcePortError, check_source_ports, read_host_ports_in

LISTEN_PORT = 43210


def test_host_ports_come_from_the_scans_namespace(scratch_netns: Callable[[str], str]) -> None:
    namespace = scratch_netns("sp")
    netlink.write_sysctl("net/ipv4/ip_local_port_range", "20000 20999", namespace)
    netlink.write_sysctl("net/ipv4/ip_local_reserved_ports", "20500-20509", namespace)
    with netlink.in_netns(namespace):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", LISTEN_PORT))
        listener.listen()
        inside = read_host_ports_in(namespace)
        assert inside.ephemeral == range(20000, 21000)
        assert inside.reserved == frozenset(range(20500, 20510))
        assert inside.listening == {LISTEN_PORT}
        with pytest.raises(SourcePortError, match=f"port {LISTEN_PORT} has a listening"):
            check_source_ports(range(LISTEN_PORT, LISTEN_PORT + 1), inside)
        with pytest.raises(SourcePortError, match="ports 20000-20499, 20510-20999 are in"):
            check_source_ports(range(20000, 21000), inside)
        # 32768-60999 is free in this namespace: what the host calls ephemeral is fine here
        check_source_ports(range(40000, 40256), inside)

        outside = read_host_ports_in(None)
        assert outside.ephemeral != inside.ephemeral
        assert LISTEN_PORT not in outside.listening
    finally:
        listener.close()
