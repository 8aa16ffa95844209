"""The lab target's listening sockets, held by a small process living in the target namespace.

Usage (started by pyscan.lab inside the target namespace; runnable as a plain script, it
imports nothing from pyscan so it needs no install):
    python3 lab_listener.py --ports 22,80,443 [--backlog 4096]

A listener on 0.0.0.0:port makes the namespace's kernel answer SYN-ACK on every address it
owns (the lab's AnyIP range), so one socket per port serves the whole subnet; the kernel does
the handshake, this process only keeps the sockets open and accepts-and-closes whatever
completes so the accept queue never fills. It prints "ready" once every port is listening,
and exits cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import selectors
import signal
import socket
import sys


def parse_ports(text: str) -> list[int]:
    try:
        ports = sorted({int(part) for part in text.split(",") if part})
    except ValueError:
        raise SystemExit(f"ports {text!r} are not comma-separated integers") from None
    if not ports or not all(1 <= port <= 65535 for port in ports):
        raise SystemExit(f"ports {text!r} must be 1 to 65535")
    return ports


def listen(ports: list[int], backlog: int) -> list[socket.socket]:
    sockets = []
    for port in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("0.0.0.0", port))
        sock.listen(backlog)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def serve(sockets: list[socket.socket]) -> None:
    selector = selectors.DefaultSelector()
    for sock in sockets:
        selector.register(sock, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            listener = key.fileobj
            assert isinstance(listener, socket.socket)
            try:
                connection, _ = listener.accept()
            except (BlockingIOError, ConnectionAbortedError):
                continue
            connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", required=True)
    parser.add_argument("--backlog", type=int, default=4096)
    args = parser.parse_args()

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sockets = listen(parse_ports(args.ports), args.backlog)
    print("ready", flush=True)
    # The parent stops reading after "ready"; later writes must not kill us with SIGPIPE.
    sys.stdout.close()
    try:
        serve(sockets)
    finally:
        for sock in sockets:
            sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
