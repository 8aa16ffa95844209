"""What a device offers XDP: the kernel's netdev ``xdp-features`` (generic netlink, Linux
>= 6.3), and GRO, which on a veth decides whether its peer may transmit XDP frames into it.
"""

from __future__ import annotations

from pyroute2.ethtool import Ethtool
from pyroute2.netlink import NLM_F_REQUEST, genlmsg
from pyroute2.netlink.exceptions import NetlinkError as _PyrouteNetlinkError
from pyroute2.netlink.generic import GenericNetlinkSocket

from pyscan.netlink.common import NetlinkError
from pyscan.netlink.links import link_index
from pyscan.netlink.namespaces import in_netns

__all__ = ["XDP_FEATURE_NDO_XMIT", "set_gro", "xdp_features"]

XDP_FEATURE_NDO_XMIT = 1 << 2  # NETDEV_XDP_ACT_NDO_XMIT: takes XDP_REDIRECT frames
_NETDEV_CMD_DEV_GET = 1


class _netdev_msg(genlmsg):
    prefix = "NETDEV_A_DEV_"
    nla_map = (
        ("NETDEV_A_DEV_UNSPEC", "none"),
        ("NETDEV_A_DEV_IFINDEX", "uint32"),
        ("NETDEV_A_DEV_PAD", "none"),
        ("NETDEV_A_DEV_XDP_FEATURES", "uint64"),
    )


def xdp_features(ifname: str, netns: str | None = None) -> int | None:
    """The NETDEV_XDP_ACT_* mask the kernel reports for ``ifname``, or None when this kernel
    has no netdev family. veth reports NDO_XMIT only while its peer is up with NAPI (GRO or an
    XDP program): exactly when redirected frames can leave through it."""
    index = link_index(ifname, netns)
    with in_netns(netns):
        sock = GenericNetlinkSocket()
        try:
            try:
                sock.bind("netdev", _netdev_msg)
            except _PyrouteNetlinkError:
                return None
            msg = _netdev_msg()
            msg["cmd"] = _NETDEV_CMD_DEV_GET
            msg["version"] = 1
            msg["attrs"] = [("NETDEV_A_DEV_IFINDEX", index)]
            try:
                reply = sock.nlm_request(msg, msg_type=sock.prid, msg_flags=NLM_F_REQUEST)
            except _PyrouteNetlinkError as error:
                raise NetlinkError(f"cannot read the XDP features of {ifname}: {error}") \
                    from error
            value = reply[0].get_attr("NETDEV_A_DEV_XDP_FEATURES") if reply else None
            return None if value is None else int(value)
        finally:
            sock.close()


def set_gro(ifname: str, netns: str | None = None, enable: bool = True) -> None:
    """Turn generic receive offload on ``ifname`` on or off. On a veth, GRO gives the device
    a NAPI instance, which is what lets its peer transmit XDP frames into it (ndo_xdp_xmit):
    the xdp-live driver needs it on the far end of the scanning veth."""
    with in_netns(netns):
        ethtool = Ethtool()
        try:
            features = ethtool.get_features(ifname)
            features.features["rx-gro"].enable = enable
            ethtool.set_features(ifname, features)
        except (OSError, KeyError) as error:
            raise NetlinkError(f"cannot set GRO on {ifname}: {error}") from error
        finally:
            ethtool.close()
