"""Which Linux capabilities a scan needs, and a clear message when one is missing.

Read from `CapEff` in /proc/self/status (the effective set is what the kernel checks), so a
process given capabilities by systemd, capsh or setcap is accepted, not just uid 0. A missing
capability is reported up front, before any namespace, firewall table or socket is created.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pyscan.errors import EXIT_NO_PERMISSION, PrivilegeError

__all__ = [
    "EXIT_NO_PERMISSION",
    "PrivilegeError",
    "effective_capabilities",
    "missing_capabilities",
    "require_lab_privileges",
    "require_scan_privileges",
    "required_capabilities",
]

CAPABILITY_BITS = {
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_SYS_ADMIN": 21,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
}


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
    """{capability: why} for one scan: the driver's (its descriptor), then the firewall's and
    the namespace's. CAP_BPF may be replaced by CAP_SYS_ADMIN."""
    from pyscan.drivers import descriptor

    spec = descriptor(driver)
    needs: dict[str, str] = dict(spec.capabilities)
    if isolation and spec.sends:
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
        # CAP_SYS_ADMIN covers what CAP_BPF and CAP_PERFMON split off from it (Linux 5.8)
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
