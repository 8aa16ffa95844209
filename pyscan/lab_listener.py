"""The lab target's listening sockets, held by a small process living in the target namespace.

Usage (started by pyscan.lab inside the target namespace; runnable as a plain script, it
imports nothing from pyscan so it needs no install):
    python3 lab_listener.py --ports 22,80,443 [--ports6 22,80] [--udp-ports 53,123]
                            [--backlog 4096]

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
"""

from __future__ import annotations

import argparse
import selectors
import signal
import socket
import struct
import sys

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # linux/in.h; Python does not export it
DNS_VERSION = b"pyscan-lab"


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


def listen_udp(ports: list[int]) -> list[socket.socket]:
    sockets = []
    for port in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        sock.bind(("0.0.0.0", port))
        sock.setblocking(False)
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
    try:
        data, ancillary, _, peer = sock.recvmsg(2048, socket.CMSG_SPACE(12))
    except BlockingIOError:
        return
    local = None
    for level, kind, value in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 12:
            local = value[8:12]  # struct in_pktinfo: ifindex, spec_dst, addr (the header's)
    reply = dns_answer(data) if sock.getsockname()[1] == 53 else data
    if reply is None or local is None:
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
    parser.add_argument("--backlog", type=int, default=4096)
    args = parser.parse_args()

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sockets = listen(parse_ports(args.ports, allow_none=True), args.backlog)
    sockets += listen(parse_ports(args.ports6, allow_none=True), args.backlog, socket.AF_INET6)
    udp_sockets = listen_udp(parse_ports(args.udp_ports, allow_none=True))
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
