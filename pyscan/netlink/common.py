"""What every part of the netlink package shares: its error and the MAC address spelling."""

from __future__ import annotations

from pyscan.errors import Error

__all__ = ["NetlinkError", "normalise_mac"]


class NetlinkError(Error):
    """The network path cannot be used as asked; the message is one line saying why."""


def normalise_mac(mac: str, what: str) -> str:
    """``aa:bb:cc:dd:ee:ff`` from any of its usual spellings (``-`` separators, one digit)."""
    parts = mac.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) in (1, 2) for p in parts):
        raise NetlinkError(f"{what} {mac!r} is not a MAC address (expected aa:bb:cc:dd:ee:ff)")
    try:
        return ":".join(f"{int(p, 16):02x}" for p in parts)
    except ValueError:
        raise NetlinkError(
            f"{what} {mac!r} is not a MAC address (expected aa:bb:cc:dd:ee:ff)"
        ) from None
