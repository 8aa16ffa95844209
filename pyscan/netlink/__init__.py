"""Every pyroute2 call in pyscan, one module per concern:

- ``namespaces``: enter (per thread or per process), create, list and remove network
  namespaces; namespaced sysctls;
- ``links``: veth pairs, addresses, routes, neighbours, link index/MAC/counters (the lab and
  the tests build with these);
- ``source``: whether --source-ip is the host's own address or a free one of the link;
- ``path``: the path to a target (route, source address, next-hop MAC by the kernel's ARP,
  MTU) as one ``PathInfo``;
- ``queues``: the active TX/RX queue counts of an interface, the one source for them;
- ``xdp``: what a device offers XDP (netdev xdp-features) and GRO (a veth peer's NAPI).

Nothing outside this package imports pyroute2. Every function takes ``netns`` and opens its
netlink socket on the calling thread inside that namespace, never through a forked helper.
"""

from pyscan.netlink.common import NetlinkError
from pyscan.netlink.links import (
    LINK_COUNTERS,
    add_address,
    add_local_route,
    add_neighbour,
    add_route,
    create_veth,
    delete_link,
    link_index,
    link_kind,
    link_mac,
    link_names,
    link_stats,
    set_link_up,
    set_tx_checksum_offload,
)
from pyscan.netlink.multicast import solicited_node_group, solicited_node_membership
from pyscan.netlink.namespaces import (
    NETNS_DIR,
    create_netns,
    enter_netns_for_process,
    in_netns,
    list_netns,
    netns_exists,
    remove_netns,
    write_sysctl,
)
from pyscan.netlink.path import PathInfo, check_source_address, resolve_path
from pyscan.netlink.queues import QueueCounts, queue_counts
from pyscan.netlink.source import ARP_PROBE_SECONDS, SourceAddressRefused
from pyscan.netlink.xdp import XDP_FEATURE_NDO_XMIT, set_gro, xdp_features

__all__ = [
    "ARP_PROBE_SECONDS",
    "LINK_COUNTERS",
    "NETNS_DIR",
    "XDP_FEATURE_NDO_XMIT",
    "NetlinkError",
    "PathInfo",
    "QueueCounts",
    "SourceAddressRefused",
    "add_address",
    "add_local_route",
    "add_neighbour",
    "add_route",
    "check_source_address",
    "create_netns",
    "create_veth",
    "delete_link",
    "enter_netns_for_process",
    "in_netns",
    "link_index",
    "link_kind",
    "link_mac",
    "link_names",
    "link_stats",
    "list_netns",
    "netns_exists",
    "queue_counts",
    "remove_netns",
    "resolve_path",
    "set_gro",
    "set_link_up",
    "set_tx_checksum_offload",
    "solicited_node_group",
    "solicited_node_membership",
    "write_sysctl",
    "xdp_features",
]
