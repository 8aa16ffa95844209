"""How many TX and RX queues an interface has active: the one source every queue count in
pyscan comes from (the default --tx-threads, af-xdp's sockets, pfring-zc's devices).

The answer is the interface's active ethtool channels (``ethtool -l``): TX = tx + combined,
RX = rx + combined, read with ETHTOOL_GCHANNELS through pyroute2's ethtool support. That is
the count AF_XDP can bind to (the kernel's ``real_num_tx_queues``), which can be fewer than
the queues the device was created with (``ethtool -L eth0 combined 2`` on an 8-queue NIC).
A device without ethtool channels (loopback, dummy, many virtual devices) keeps every queue
it was created with active, so rtnetlink's ``IFLA_NUM_TX_QUEUES`` / ``IFLA_NUM_RX_QUEUES``
answer there. sysfs (``/sys/class/net/IF/queues``) is not used: it shows the namespace
sysfs was mounted in, not the calling thread's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyroute2.ethtool.ioctl import EthtoolError, IoctlEthtool

from pyscan.netlink.links import rtnl, rtnl_index

__all__ = ["QueueCounts", "counts_from_channels", "queue_counts"]

SOURCE_CHANNELS = "ethtool channels"
SOURCE_RTNETLINK = "rtnetlink queue count"


@dataclass(frozen=True)
class QueueCounts:
    """Active TX and RX queues of one interface, and where the numbers came from."""

    tx: int
    rx: int
    source: str


def counts_from_channels(rx_count: int, tx_count: int, combined_count: int) -> QueueCounts | None:
    """The queues that ethtool channels describe; None when the driver reports none at all
    (some fill in only the maxima), so the caller falls back."""
    tx, rx = tx_count + combined_count, rx_count + combined_count
    if tx == 0 and rx == 0:
        return None
    return QueueCounts(tx=max(1, tx), rx=max(1, rx), source=SOURCE_CHANNELS)


def counts_from_link(link: Any) -> QueueCounts:
    """The queues an rtnetlink link message says the device has (at least one each)."""
    return QueueCounts(tx=int(link.get("IFLA_NUM_TX_QUEUES") or 1),
                       rx=int(link.get("IFLA_NUM_RX_QUEUES") or 1), source=SOURCE_RTNETLINK)


def _channels(ifname: str) -> QueueCounts | None:
    """ETHTOOL_GCHANNELS on a socket of the calling thread's namespace; None = unsupported."""
    try:
        ethtool = IoctlEthtool(ifname)
        try:
            channels = ethtool.get_channels()
        finally:
            ethtool.close()
    except (EthtoolError, OSError):   # NotSupportedError, NoSuchDevice (gone meanwhile)
        return None
    return counts_from_channels(int(channels.rx_count), int(channels.tx_count),
                                int(channels.combined_count))


def queue_counts_here(ifname: str, link: Any) -> QueueCounts:
    """:func:`queue_counts` for a caller already in the namespace holding ``link``."""
    return _channels(ifname) or counts_from_link(link)


def queue_counts(ifname: str, netns: str | None = None) -> QueueCounts:
    """Active TX/RX queues of ``ifname`` in namespace ``netns`` (None = the caller's);
    NetlinkError when there is no such interface."""
    with rtnl(netns) as ipr:
        link = ipr.link("get", index=rtnl_index(ipr, ifname, netns))[0]
        return queue_counts_here(ifname, link)
