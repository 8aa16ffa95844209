"""The AF_PACKET driver: one TPACKET_V2 TX ring per TX thread (qdisc bypass) and one
TPACKET_V3 RX ring with an in-kernel classic BPF filter (pyscan/native/drv_af_packet.c).

Works on any Linux interface with CAP_NET_RAW; the automatic choice's last resort. Options
are declared in DESCRIPTOR. Rings are opened in the calling thread's network namespace.
"""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING

from pyscan.drivers.base import (
    DriverDescriptor,
    DriverError,
    DriverOption,
    DriverRequest,
    RingSession,
    close_rings,
    native_built,
    require_tx_threads,
)
from pyscan.probes import reply_protocols

if TYPE_CHECKING:
    from pyscan.native import Ring

__all__ = ["DESCRIPTOR", "AfPacketDriver", "filter_text"]

# What the classic filter keeps for each reply protocol of the scan (drv_af_packet.c's
# reply_filter): frames to the scan's source ports, then what ICMP unreachables may quote.
_TO_SOURCE_PORTS = {"tcp": "SYN-ACK/RST", "udp": "UDP replies"}
_QUOTED = {"tcp": "TCP", "udp": "UDP", "icmp": "echo"}


def filter_text(protocols: tuple[str, ...]) -> str:
    """What the RX filter accepts for these reply protocols (pyscan.probes.reply_protocols):
    ('tcp',) -> 'SYN-ACK/RST to the source ports and ICMP unreachables quoting TCP probes'."""
    # IPv6 scans name their protocols tcp6/icmp6 (their own program, never mixed with IPv4)
    ipv6 = any(name.endswith("6") for name in protocols)
    protocols = tuple(name.removesuffix("6") for name in protocols)
    parts = []
    to_ports = [text for name, text in _TO_SOURCE_PORTS.items() if name in protocols]
    if to_ports:
        parts.append(f"{' and '.join(to_ports)} to the source ports")
    if "icmp" in protocols:
        parts.append("ICMP echo replies")
    quoted = [text for name, text in _QUOTED.items() if name in protocols]
    parts.append(f"ICMP unreachables quoting {_listed(quoted, 'or')} probes")
    return _listed(parts, "and") + (" (IPv6)" if ipv6 else "")


def _listed(items: list[str], last: str) -> str:
    return ", ".join(items[:-1]) + f" {last} {items[-1]}" if len(items) > 1 else items[0]


class AfPacketDriver:
    name = "af-packet"

    def available(self) -> tuple[bool, str]:
        built, reason = native_built()
        if not built:
            return False, reason
        try:
            probe = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            return False, "needs CAP_NET_RAW (run as root)"
        except OSError as error:
            if error.errno in (errno.EPERM, errno.EACCES):
                return False, "needs CAP_NET_RAW (run as root)"
            return False, f"cannot create an AF_PACKET socket: {error.strerror}"
        probe.close()
        return True, "AF_PACKET TX/RX rings"

    def open(self, request: DriverRequest) -> RingSession:
        from pyscan.native import (
            afpacket_filter_ports,
            open_afpacket_rx,
            open_afpacket_tx,
        )

        options = DESCRIPTOR.parse_options(request.options, strict=False)
        tx_frames = int(options["tx_frames"])
        block_size = int(options["rx_block_size"])
        blocks = int(options["rx_blocks"])
        require_tx_threads(request)
        tx_rings: list[Ring] = []
        rx_ring = None
        try:
            # RX first: replies to the first probes must find the ring already there.
            protocols = reply_protocols(request.probe_ids or (request.probe_id,))
            if request.want_rx:
                rx_ring = open_afpacket_rx(request.ifindex, block_size, blocks)
                afpacket_filter_ports(rx_ring, request.source_ports, protocols,
                                      arp_for=request.arp_answer[0] if request.arp_answer
                                      else None)
            for _ in range(request.tx_threads):
                tx_rings.append(open_afpacket_tx(request.ifindex, tx_frames))
        except (OSError, ValueError) as error:
            close_rings([*tx_rings, rx_ring])
            message = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise DriverError(str(message)) from None
        rx_text = (f"TPACKET_V3 RX ring {blocks} x {block_size // 1024} KiB with a filter for "
                   f"{filter_text(protocols)}" if request.want_rx else "no RX")
        description = (f"af-packet on {request.interface}: {request.tx_threads} TPACKET_V2 TX "
                       f"ring(s) of {tx_frames} frames with qdisc bypass, {rx_text}")
        return RingSession(tx_rings, rx_ring, description)


DESCRIPTOR = DriverDescriptor(
    name=AfPacketDriver.name,
    summary="AF_PACKET TX/RX rings: any Linux interface, CAP_NET_RAW",
    factory=AfPacketDriver,
    capabilities={"CAP_NET_RAW": "the af-packet driver opens raw packet sockets"},
    options=(
        DriverOption("tx_frames", "int", "frames per TX ring", 4096, 32, 1 << 20),
        DriverOption("rx_block_size", "power-of-two", "bytes per RX ring block", 1 << 20,
                     4096, 1 << 30),
        DriverOption("rx_blocks", "int", "blocks in the RX ring", 16, 2, 4096),
    ),
    automatic_rank=1,
)
