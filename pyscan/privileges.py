"""Which Linux capabilities a scan needs, and a clear message when one is missing.

Read from `CapEff` in /proc/self/status (the effective set is what the kernel checks), so a
process given capabilities by systemd, capsh or setcap is accepted, not just uid 0. A missing
capability is reported up front, before any namespace, firewall table or socket is created.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "EXIT_NO_PERMISSION",
    "PrivilegeError",
    "effective_capabilities",
    "missing_capabilities",
    "require_lab_privileges",
    "require_scan_privileges",
    "required_capabilities",
]

# sysexits.h EX_NOPERM: distinct from bad input (2), so scripts can tell "fix your command"
# from "run me with more privilege".
EXIT_NO_PERMISSION = 77

CAPABILITY_BITS = {
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_SYS_ADMIN": 21,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
}


class PrivilegeError(PermissionError):
    """The process lacks a capability the scan needs; the message says which and why."""


def effective_capabilities(status_path: str | Path = "/proc/self/status") -> int:
    """The CapEff bit mask of this process (0 when it cannot be read)."""
    try:
        for line in Path(status_path).read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def required_capabilities(driver: str, *, isolation: bool, netns: str | None) -> dict[str, str]:
    """{capability: why} for one scan. CAP_BPF may be replaced by CAP_SYS_ADMIN."""
    needs: dict[str, str] = {}
    if driver in ("af-packet", "af-xdp", "pfring-zc", "xdp-live"):
        needs["CAP_NET_RAW"] = f"the {driver} driver opens raw packet sockets"
    if driver in ("af-xdp", "pfring-zc", "xdp-live"):
        needs["CAP_NET_ADMIN"] = f"the {driver} driver attaches to the interface"
    if driver in ("af-xdp", "xdp-live"):
        needs["CAP_BPF"] = f"the {driver} driver loads its XDP reply filter"
    if driver == "xdp-live":
        needs["CAP_PERFMON"] = "the xdp-live driver counts refused frames on xdp tracepoints"
    if isolation and driver != "null":
        needs.setdefault("CAP_NET_ADMIN", "the isolation firewall adds an nftables table "
                                          "(--no-isolation skips it)")
    if netns is not None:
        needs["CAP_SYS_ADMIN"] = f"--netns {netns} enters a network namespace"
    return needs


def missing_capabilities(needed: Iterable[str], effective: int | None = None) -> list[str]:
    mask = effective_capabilities() if effective is None else effective
    have = {name for name, bit in CAPABILITY_BITS.items() if mask >> bit & 1}
    missing = []
    for name in needed:
        if name in have or (name in ("CAP_BPF", "CAP_PERFMON") and "CAP_SYS_ADMIN" in have):
            continue
        missing.append(name)
    return missing


def require_scan_privileges(
    driver: str, *, isolation: bool, netns: str | None, effective: int | None = None
) -> None:
    """Raise PrivilegeError naming the first missing capability, why, and how to get it."""
    needs = required_capabilities(driver, isolation=isolation, netns=netns)
    missing = missing_capabilities(needs, effective)
    if missing:
        reasons = "; ".join(f"{name}: {needs[name]}" for name in missing)
        raise PrivilegeError(
            f"missing capability {', '.join(missing)} ({reasons}); run as root (sudo pyscan ...) "
            f"or give the process {', '.join(missing)} (systemd AmbientCapabilities=, capsh), "
            "or use --dry-run to test without sending"
        )


def require_lab_privileges(effective: int | None = None) -> None:
    """The lab creates namespaces, links, nft tables and XDP programs: root's capabilities."""
    needs = {
        "CAP_SYS_ADMIN": "the lab creates and enters network namespaces",
        "CAP_NET_ADMIN": "the lab creates links, routes and nftables rules",
    }
    missing = missing_capabilities(needs, effective)
    if missing:
        reasons = "; ".join(f"{name}: {needs[name]}" for name in missing)
        raise PrivilegeError(
            f"missing capability {', '.join(missing)} ({reasons}); "
            "run as root (sudo pyscan lab ...)"
        )
