"""The lab target's listening sockets, held by a small process living in the target namespace.

Usage (started by pyscan.lab inside the target namespace; runnable as a plain script, it
imports nothing from pyscan so it needs no install):
    python3 lab_listener.py --ports 22,80,443 [--ports6 22,80] [--udp-ports 53,123]
                            [--udp-ports6 53,123] [--backlog 4096]

A listener on 0.0.0.0:port makes the namespace's kernel answer SYN-ACK on every address it
owns (the lab's AnyIP range), so one socket per port serves the whole subnet; the kernel does
the handshake, this process only keeps the sockets open and accepts-and-closes whatever
completes so the accept queue never fills. It prints "ready" once every port is listening,
and exits cleanly on SIGTERM/SIGINT. --ports6 listens on [::]:port (IPV6_V6ONLY, so the
two families' port lists stay apart) for the lab's IPv6 AnyIP prefix.

UDP responders (--udp-ports) answer every datagram from the address it was sent to
(IP_PKTINFO: the lab's addresses are AnyIP, so the kernel would otherwise pick the veth's):
port 53 answers a DNS query for version.bind (CHAOS TXT "pyscan-lab", the query's id echoed),
any other port echoes the datagram, as an NTP-like responder that only needs to answer.
--udp-ports6 does the same over IPv6 ([::]:port, IPV6_V6ONLY, IPV6_RECVPKTINFO; IPv6 checks
a sendmsg source address against the host's, so the socket is IP_FREEBIND to answer from an
AnyIP address).
A scan sends faster than this process answers, so each UDP socket gets a receive buffer of
UDP_BUFFER_BYTES (SO_RCVBUFFORCE: the lab runs as root, and no sysctl changes) that holds a
whole burst while it catches up; what still overflows is counted by the namespace's kernel
(Udp RcvbufErrors, read by Lab.udp_drops()). Replies are sent blocking, so none is dropped on
the way out.
"""

from __future__ import annotations

import argparse
import selectors
import signal
import socket
import struct
import sys

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # linux/in.h; Python does not export it
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # asm-generic/socket.h
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)
DNS_VERSION = b"pyscan-lab"
# 32 MiB (the kernel doubles it for its bookkeeping): at ~1 KiB of accounting per small
# datagram, some 60k probes in flight, a quarter second at 250 kpps. Memory is taken only
# while datagrams wait.
UDP_BUFFER_BYTES = 32 << 20
UDP_BATCH = 256  # datagrams answered per socket before the other sockets get a turn


def parse_ports(text: str, allow_none: bool = False) -> list[int]:
    try:
        ports = sorted({int(part) for part in text.split(",") if part})
    except ValueError:
        raise SystemExit(f"ports {text!r} are not comma-separated integers") from None
    if (not ports and not allow_none) or not all(1 <= port <= 65535 for port in ports):
        raise SystemExit(f"ports {text!r} must be 1 to 65535")
    return ports


def listen(ports: list[int], backlog: int, family: int = socket.AF_INET) -> list[socket.socket]:
    sockets = []
    for port in ports:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
        sock.listen(backlog)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def _large_buffer(sock: socket.socket, force: int, plain: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, UDP_BUFFER_BYTES)
    except PermissionError:  # not root (a hand-run listener): as much as rmem_max allows
        sock.setsockopt(socket.SOL_SOCKET, plain, UDP_BUFFER_BYTES)


def listen_udp(ports: list[int]) -> list[socket.socket]:
    sockets = []
    for port in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        _large_buffer(sock, SO_RCVBUFFORCE, socket.SO_RCVBUF)
        _large_buffer(sock, SO_SNDBUFFORCE, socket.SO_SNDBUF)
        sock.bind(("0.0.0.0", port))
        sockets.append(sock)  # blocking: sends wait for room; receives use MSG_DONTWAIT
    return sockets


def listen_udp6(ports: list[int]) -> list[socket.socket]:
    sockets = []
    for port in ports:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        _large_buffer(sock, SO_RCVBUFFORCE, socket.SO_RCVBUF)
        _large_buffer(sock, SO_SNDBUFFORCE, socket.SO_SNDBUF)
        sock.bind(("::", port))
        sockets.append(sock)
    return sockets


def dns_answer(query: bytes) -> bytes | None:
    """The answer to a DNS query (RFC 1035): the question copied, one TXT record in the
    query's class; None for anything that is not one query."""
    if len(query) < 12 or query[2] & 0x80 or struct.unpack("!H", query[4:6])[0] != 1:
        return None
    end = 12
    while end < len(query) and query[end]:
        end += 1 + query[end]
    question = query[12:end + 5]
    if len(question) < end - 12 + 5:
        return None
    qclass = query[end + 3:end + 5]
    header = query[:2] + b"\x84\x00" + struct.pack("!HHHH", 1, 1, 0, 0)
    rdata = bytes([len(DNS_VERSION)]) + DNS_VERSION
    answer = b"\xc0\x0c" + struct.pack("!H", 16) + qclass + struct.pack("!IH", 0, len(rdata))
    return header + question + answer + rdata


def answer_udp(sock: socket.socket) -> None:
    """Answer what is waiting on `sock`, up to UDP_BATCH datagrams."""
    is_dns = sock.getsockname()[1] == 53
    for _ in range(UDP_BATCH):
        try:
            data, ancillary, _, peer = sock.recvmsg(2048, socket.CMSG_SPACE(20),
                                                    socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        answer_one(sock, is_dns, data, ancillary, peer)


def answer_one(sock: socket.socket, is_dns: bool, data: bytes,
               ancillary: list[tuple[int, int, bytes]], peer: tuple[str, int]) -> None:
    local = local6 = None
    for level, kind, value in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 12:
            local = value[8:12]  # struct in_pktinfo: ifindex, spec_dst, addr (the header's)
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(value) >= 16:
            local6 = value[:16]  # struct in6_pktinfo: addr, ifindex
    reply = dns_answer(data) if is_dns else data
    if reply is None:
        return
    if local6 is not None:
        pktinfo6 = struct.pack("=16si", local6, 0)
        sock.sendmsg([reply], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo6)], 0, peer)
        return
    if local is None:
        return
    pktinfo = struct.pack("=i4s4s", 0, local, b"\0\0\0\0")
    sock.sendmsg([reply], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], 0, peer)


def serve(sockets: list[socket.socket], udp_sockets: tuple[socket.socket, ...] = ()) -> None:
    selector = selectors.DefaultSelector()
    for sock in sockets:
        selector.register(sock, selectors.EVENT_READ)
    for sock in udp_sockets:
        selector.register(sock, selectors.EVENT_READ, "udp")
    while True:
        for key, _ in selector.select():
            listener = key.fileobj
            assert isinstance(listener, socket.socket)
            if key.data == "udp":
                answer_udp(listener)
                continue
            try:
                connection, _ = listener.accept()
            except (BlockingIOError, ConnectionAbortedError):
                continue
            connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", required=True)
    parser.add_argument("--ports6", default="")
    parser.add_argument("--udp-ports", default="")
    parser.add_argument("--udp-ports6", default="")
    parser.add_argument("--backlog", type=int, default=4096)
    args = parser.parse_args()

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sockets = listen(parse_ports(args.ports, allow_none=True), args.backlog)
    sockets += listen(parse_ports(args.ports6, allow_none=True), args.backlog, socket.AF_INET6)
    udp_sockets = listen_udp(parse_ports(args.udp_ports, allow_none=True))
    udp_sockets += listen_udp6(parse_ports(args.udp_ports6, allow_none=True))
    print("ready", flush=True)
    # The parent stops reading after "ready"; later writes must not kill us with SIGPIPE.
    sys.stdout.close()
    try:
        serve(sockets, tuple(udp_sockets))
    finally:
        for sock in [*sockets, *udp_sockets]:
            sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
