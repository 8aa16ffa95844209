"""The AF_XDP driver: one libxdp socket per queue and the in-kernel SipHash reply filter
(pyscan/native/drv_af_xdp.c, pyscan/bpf/reply_filter.bpf.c).

TX: one socket + UMEM per TX thread, bound to TX queue i. RX: a socket on every receive queue
of the interface, because replies land on whichever queue the peer's hashing picks; the
filter redirects only the replies whose cookie the scan's probe modules accept (SYN-ACK/RST,
UDP replies, echo replies, ICMP unreachables quoting a probe) to them and passes everything
else (ARP, the host's own traffic) to the kernel. The filter is attached with a bpf_link, so
it disappears when the scan ends, crashes or is killed.

Options (``-O key=value``; dashes and underscores both accepted) are declared in DESCRIPTOR.
Rings are opened in the calling thread's network namespace.
"""

from __future__ import annotations

import resource
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pyscan.drivers.base import (
    DriverDescriptor,
    DriverError,
    DriverOption,
    DriverOptionError,
    DriverRequest,
    RingSession,
    xdp_driver_ready,
)

if TYPE_CHECKING:
    from pyscan.native import AfXdp

__all__ = ["DESCRIPTOR", "XDP_ATTACH_MODES", "XDP_MODES", "AfXdpDriver", "AfXdpSession",
           "AfXdpUnusable", "describe"]

XDP_MODES = ("auto", "zerocopy", "copy")
XDP_ATTACH_MODES = ("auto", "native", "generic")
FILTER_COUNTERS = ("xdp_seen", "xdp_matched", "xdp_passed", "xdp_unqueued", "xdp_arp_replied",
                   "xdp_arp_conflict")
# Replies the RX sockets can hold together while the RX thread is off the CPU: 131 ms at
# 250 kpps. With 2048 (the TX default) a scheduling pause of 8 ms overflowed the ring on a
# 2-core machine and lost 0.3-8 % of a 250 kpps scan (counted in rx_drops, but lost).
RX_FRAMES_TOTAL = 32768
RX_FRAMES_MIN = 2048


CAP_IPC_LOCK = 14  # lifts RLIMIT_MEMLOCK for the UMEM


def default_rx_ring_size(rx_queues: int) -> int:
    """RX_FRAMES_TOTAL spread over the RX sockets (replies are hashed over the queues and
    one RX thread serves them all), rounded down to a power of two, at least RX_FRAMES_MIN."""
    share = RX_FRAMES_TOTAL // max(rx_queues, 1)
    return max(RX_FRAMES_MIN, 1 << (share.bit_length() - 1)) if share else RX_FRAMES_MIN


def memlock_budget() -> int | None:
    """Bytes of UMEM this process may pin, None when unlimited (root, CAP_IPC_LOCK, or an
    unlimited ulimit -l): the kernel charges UMEM to RLIMIT_MEMLOCK otherwise."""
    from pyscan.privileges import effective_capabilities

    if effective_capabilities() & (1 << CAP_IPC_LOCK):
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return None if soft == resource.RLIM_INFINITY else soft


def fit_rx_ring_size(wanted: int, rx_sockets: int, tx_bytes: int, frame_size: int,
                     budget: int | None) -> int:
    """The default RX ring cut down to the largest power of two whose UMEM fits budget next
    to the TX UMEM (never below 64: a limit that small fails at open, naming ulimit -l)."""
    if budget is None or not rx_sockets:
        return wanted
    frames = max(budget - tx_bytes, 0) // (rx_sockets * frame_size)
    fitting = 1 << (frames.bit_length() - 1) if frames else 0
    return max(64, min(wanted, fitting))


class AfXdpUnusable(DriverError):
    """AF_XDP cannot take this interface (another XDP program, too few queues, no BPF
    permission...) although the options are fine: an automatic choice may use af-packet."""


class AfXdpSession(RingSession):
    """The rings of one AF_XDP scan; close() detaches the filter and frees every socket.

    The ring counters are RingSession's; this adds the filter's. The rings belong to the
    AfXdp object (one UMEM per socket), so close() hands them back to it rather than
    destroying them one by one as RingSession would."""

    def __init__(self, xdp: AfXdp, interface: str, notes: tuple[str, ...] = ()) -> None:
        self._xdp = xdp
        self.info: dict[str, Any] = xdp.info()
        self.info["warnings"] = [*xdp.warnings(self.info), *notes]
        super().__init__(xdp.tx_rings, xdp.rx_ring,
                         describe(interface, self.info, xdp.rx_ring is not None))
        self._final: dict[str, int] | None = None

    def stats(self) -> dict[str, int]:
        """Summed ring counters plus the filter's xdp_seen / xdp_matched / xdp_passed /
        xdp_unqueued (matched replies whose queue had no socket; also in rx_drops) /
        xdp_arp_replied (ARP requests for an unowned source address, answered)."""
        if self._final is not None:
            return dict(self._final)
        total = super().stats()
        counters = self._xdp.filter_counters()
        for name in FILTER_COUNTERS:
            total[name] = counters[name.removeprefix("xdp_")]
        total["xdp_zerocopy"] = int(self.info["zerocopy"])
        return total

    def close(self) -> None:
        if self._final is not None:
            return
        # Counters stay readable for the summary after the sockets are gone.
        self._final = self.stats()
        self._closed = True
        self.tx_rings, self.rx_ring = [], None
        self._xdp.close()


def describe(interface: str, info: Mapping[str, Any], with_rx: bool) -> str:
    """One line: what was chosen, e.g. for the status line and the summary."""
    mode = "zero-copy" if info["zerocopy"] else "copy mode"
    attach = "generic (skb) attach" if info["generic_attach"] else "native attach"
    text = (f"af-xdp on {interface}: {mode}, {info['tx_queues']} TX queue(s), "
            f"rings of {info['ring_size']} x {info['frame_size']} B")
    if with_rx:
        text += (f", SipHash reply filter ({attach}, prog {info['prog_id']}) feeding "
                 f"{info['rx_queues']} RX queue(s) of {info.get('rx_ring_size', 0)} frames")
    if info["warnings"]:
        text += " - warning: " + "; ".join(info["warnings"])
    return text


class AfXdpDriver:
    name = "af-xdp"

    def available(self) -> tuple[bool, str]:
        usable, reason = xdp_driver_ready(DESCRIPTOR, ("afxdp_probe", ""))
        if not usable:
            return False, reason
        return True, "AF_XDP sockets with the in-kernel SipHash reply filter"

    def open(self, request: DriverRequest) -> AfXdpSession:
        from pyscan.native import AfXdp
        from pyscan.netlink import NetlinkError, queue_counts

        options = DESCRIPTOR.parse_options(request.options, strict=False)
        bind_mode, attach_mode = str(options["xdp_mode"]), str(options["xdp_attach"])
        ring_size, frame_size = int(options["ring_size"]), int(options["frame_size"])
        batch = int(options["batch"])
        if batch > ring_size:
            spelled = next(k for k in request.options if k.replace("-", "_") == "batch")
            raise DriverOptionError(f"driver option {spelled}={request.options[spelled]!r} is "
                                    f"invalid: accepted integers 1..{ring_size} (at most "
                                    "ring-size)")
        try:
            counts = queue_counts(request.interface)  # the one source: active channels
        except NetlinkError as error:
            raise AfXdpUnusable(str(error)) from None
        rx_queues, tx_queues = counts.rx, counts.tx
        rx_queues = int(options.get("rx_queues", rx_queues))
        if request.tx_threads < 1 or request.tx_threads > tx_queues:
            raise AfXdpUnusable(
                f"tx_threads {request.tx_threads} is invalid for {request.interface}, which has "
                f"{tx_queues} TX queue(s): accepted 1..{tx_queues} (more queues: ethtool -L "
                f"{request.interface} combined N)")
        queue_count = max(rx_queues, request.tx_threads) if request.want_rx else \
            request.tx_threads
        rx_sockets = min(rx_queues, queue_count)
        notes: tuple[str, ...] = ()
        if "rx_ring_size" in options:
            rx_ring_size = int(options["rx_ring_size"])
        else:
            wanted = default_rx_ring_size(rx_sockets)
            rx_ring_size = fit_rx_ring_size(wanted, rx_sockets if request.want_rx else 0,
                                            request.tx_threads * ring_size * frame_size,
                                            frame_size, memlock_budget())
            if rx_ring_size < wanted:
                notes = (f"RX rings cut to {rx_ring_size} frames by the locked-memory limit "
                         f"(ulimit -l); replies beyond them are dropped and counted at high "
                         f"rates: raise the limit or run as root",)
        try:
            xdp = AfXdp(request.interface, key=request.cookie_key, queue_count=queue_count,
                        tx_queues=request.tx_threads, want_rx=request.want_rx,
                        bind_mode=bind_mode, attach_mode=attach_mode, ring_size=ring_size,
                        frame_size=frame_size, scanner_ip=request.source_ip,
                        ports=request.source_ports,
                        rx_queues=rx_sockets, rx_ring_size=rx_ring_size,
                        probe=request.probe_ids or (request.probe_id,),
                        arp_answer=request.arp_answer,
                        arp_redirect=arp_by_redirect(request))
        except (OSError, ValueError) as error:
            if isinstance(error, ValueError):
                raise DriverError(str(error)) from None
            raise AfXdpUnusable(error.strerror or str(error)) from None
        return AfXdpSession(xdp, request.interface, notes)


def arp_by_redirect(request: DriverRequest) -> bool:
    """Whether the filter sends its ARP (or NDP) answers by a redirect to the interface instead of
    XDP_TX: on a veth, whose XDP_TX frames reach a peer only when that runs XDP itself
    (reply_filter.bpf.c)."""
    from pyscan.netlink import NetlinkError, link_kind

    if request.arp_answer is None:
        return False
    try:
        return link_kind(request.interface) == "veth"
    except NetlinkError:
        return False


DESCRIPTOR = DriverDescriptor(
    name=AfXdpDriver.name,
    summary="AF_XDP sockets with the in-kernel SipHash reply filter (libxdp, CAP_BPF)",
    factory=AfXdpDriver,
    capabilities={
        "CAP_NET_RAW": "the af-xdp driver opens AF_XDP sockets",
        "CAP_NET_ADMIN": "the af-xdp driver attaches to the interface",
        "CAP_BPF": "the af-xdp driver loads its XDP reply filter",
    },
    options=(
        DriverOption("xdp_mode", "choice", "socket bind mode (auto: zero-copy when the NIC "
                     "can)", "auto", choices=XDP_MODES),
        DriverOption("xdp_attach", "choice", "filter attach mode (auto: native when the "
                     "driver can)", "auto", choices=XDP_ATTACH_MODES),
        DriverOption("ring_size", "power-of-two", "TX descriptors and TX UMEM frames per TX "
                     "queue", 2048, 64, 65536),
        DriverOption("rx_ring_size", "power-of-two", f"RX/fill descriptors and UMEM frames "
                     f"per RX queue (default {RX_FRAMES_TOTAL} spread over the RX queues, at "
                     f"least {RX_FRAMES_MIN} each, cut to fit ulimit -l)", None, 64, 65536),
        DriverOption("frame_size", "power-of-two", "UMEM frame size", 2048, 2048, 4096),
        DriverOption("rx_queues", "int", "receive queues to cover (default: the interface's "
                     "channel count)", None, 1, 1024),
        DriverOption("batch", "int", "frames per reserve/submit/kick in the TX loop, at most "
                     "ring_size", 64, 1, 1024),
    ),
    batch_size=64,
    batch_option="batch",
    automatic_rank=0,
    answers_arp=True,
    # The interface cannot take AF_XDP (another XDP program, too few queues, no BPF...):
    # af-packet can. A bad option is no such reason.
    fallback_on=(AfXdpUnusable,),
)
