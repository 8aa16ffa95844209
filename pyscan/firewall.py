"""Isolation rules: while a scan runs, the host kernel must not see the replies to our probes.

A SYN-ACK arriving for a source port no socket owns makes the kernel answer RST, which closes
the port on the target before anyone else could see it and doubles the traffic; conntrack
would also fill with entries for half-open flows we never meant to track. One nftables table
per scan, ``inet pyscan_<scan_id>``, drops inbound TCP and UDP (a UDP answer would draw an
ICMP port unreachable) to the scan's source ports on the scan's interface in a prerouting
chain at priority ``raw`` (before conntrack). Packet sockets and XDP see frames before
netfilter, so the scanner still receives everything. The table is of the ``inet`` family and
its rules match on ``tcp dport``/``udp dport`` alone, so they cover IPv6 replies exactly as
IPv4 ones (an IPv6 SYN-ACK would draw the same RST); ICMPv6 is never matched, so neighbour
discovery toward the scanner keeps working (tests/net/test_lab_ipv6.py proves both).

The table is removed on every exit path: the context manager's ``finally``, an ``atexit`` hook,
and SIGTERM/SIGHUP turned into ``SystemExit`` while the table exists. Only SIGKILL escapes;
for that the table records its owner's pid and start time, and :func:`cleanup_stale` removes
tables whose owner is gone.

nftables is driven through ``nft -f -`` (libnftables' own parser); pyroute2's nftables support
cannot express these rules.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from types import FrameType
from typing import ClassVar

from pyscan.errors import Error
from pyscan.netlink import in_netns, netns_exists

__all__ = [
    "TABLE_PREFIX",
    "FirewallError",
    "cleanup_stale",
    "isolation",
    "list_tables",
    "owner_alive",
    "process_start_time",
    "run_nft",
    "table_name",
]

TABLE_PREFIX = "pyscan_"
_OWNER_RE = re.compile(r"pyscan-owner pid=(\d+) start=(\d+)")
_SCAN_ID_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
_IFNAME_RE = re.compile(r"[A-Za-z0-9_.:@-]{1,15}")
_NFT_TIMEOUT_SECONDS = 30


class FirewallError(Error):
    """nft is missing, not permitted, or refused a ruleset; one line saying which."""


def run_nft(script: str, netns: str | int | None = None, json_output: bool = False) -> str:
    """Run an nft script (``nft -f -``), in namespace ``netns`` (a name or an open namespace
    fd) if given, else the calling thread's; returns stdout.

    With ``json_output`` the script is one command given as arguments (``nft -j list ...``):
    nft prints nothing for list commands read from a file in JSON mode.
    """
    nft = shutil.which("nft") or next(
        (p for p in ("/usr/sbin/nft", "/sbin/nft") if os.path.exists(p)), None
    )
    if nft is None:
        raise FirewallError("nft not found: install nftables (apt-get install nftables)")
    if json_output:
        command, stdin = [nft, "-j", *script.split()], None
    else:
        command, stdin = [nft, "-f", "-"], script
    # A child started from inside in_netns() is born in that namespace.
    with in_netns(netns):
        result = subprocess.run(command, input=stdin, capture_output=True, text=True,
                                timeout=_NFT_TIMEOUT_SECONDS, check=False)
    if result.returncode != 0:
        message = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
        if "Operation not permitted" in message:
            raise FirewallError("nft needs CAP_NET_ADMIN (run as root): " + message[:200])
        raise FirewallError("nft refused the ruleset: " + message[:300])
    return result.stdout


def table_name(scan_id: str) -> str:
    if not _SCAN_ID_RE.fullmatch(scan_id):
        raise FirewallError(
            f"scan id {scan_id!r} is not usable in a table name (accepted: 1-64 of A-Z a-z 0-9 _)"
        )
    return TABLE_PREFIX + scan_id


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (tells a pid apart from its reuse)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(fields[19])  # field 22 of stat(5), counted after "pid (comm)"


def owner_alive(pid: int, start_time: int) -> bool:
    """True while process ``pid`` started at ``start_time`` runs (a zombie has ended)."""
    if process_start_time(pid) != start_time:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def list_tables(prefix: str = TABLE_PREFIX, netns: str | None = None) -> list[str]:
    """Names of inet tables starting with ``prefix``."""
    listing = json.loads(run_nft("list tables", netns, json_output=True) or "{}")
    return sorted(
        item["table"]["name"] for item in listing.get("nftables", [])
        if "table" in item and item["table"].get("family") == "inet"
        and item["table"]["name"].startswith(prefix)
    )


def _table_owner(name: str, netns: str | None) -> tuple[int, int] | None:
    listing = json.loads(run_nft(f"list table inet {name}", netns, json_output=True) or "{}")
    for item in listing.get("nftables", []):
        match = _OWNER_RE.search(item.get("rule", {}).get("comment", ""))
        if match:
            return int(match.group(1)), int(match.group(2))
    return None


def _delete_table(name: str, netns: str | int | None) -> None:
    # "destroy" would be idempotent but needs nftables 1.0.8; tolerate "no such table", and
    # a namespace that is gone took its tables with it.
    if isinstance(netns, str) and not netns_exists(netns):
        return
    try:
        run_nft(f"delete table inet {name}\n", netns)
    except FirewallError as error:
        if "No such file or directory" not in str(error):
            raise


def cleanup_stale(netns: str | None = None) -> list[str]:
    """Remove ``pyscan_*`` tables whose owning process is gone; returns their names.

    Tables without an owner record are left alone: they are not ours to judge.
    """
    removed = []
    for name in list_tables(TABLE_PREFIX, netns):
        owner = _table_owner(name, netns)
        if owner is not None and not owner_alive(*owner):
            _delete_table(name, netns)
            removed.append(name)
    return removed


def _ruleset(name: str, interface: str, ports: range, owner: str) -> str:
    return (
        f'create table inet {name} {{ comment "{owner}"; }}\n'
        f"add chain inet {name} isolate {{ type filter hook prerouting priority raw; "
        "policy accept; }\n"
        f'add rule inet {name} isolate iifname "{interface}" tcp dport '
        f'{ports.start}-{ports.stop - 1} drop comment "{owner}"\n'
        # UDP replies too (probes branch): the kernel would answer each with a port unreachable
        f'add rule inet {name} isolate iifname "{interface}" udp dport '
        f'{ports.start}-{ports.stop - 1} drop comment "{owner}"\n'
    )


class _SignalGuard:
    """While any isolation table exists, SIGTERM/SIGHUP raise SystemExit so that ``finally``
    blocks run; handlers are only taken over when still at their default (a program that set
    its own keeps it), only from the main thread, and restored when the last table goes."""

    _lock = threading.Lock()
    _depth = 0
    _saved: ClassVar[dict[int, object]] = {}

    @staticmethod
    def _raise_exit(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    @classmethod
    def enter(cls) -> None:
        with cls._lock:
            cls._depth += 1
            if cls._depth > 1 or threading.current_thread() is not threading.main_thread():
                return
            for signum in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(signum) is signal.SIG_DFL:
                    cls._saved[signum] = signal.signal(signum, cls._raise_exit)

    @classmethod
    def leave(cls) -> None:
        with cls._lock:
            cls._depth -= 1
            if cls._depth > 0 or threading.current_thread() is not threading.main_thread():
                return
            for signum, handler in cls._saved.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
            cls._saved.clear()


@contextlib.contextmanager
def isolation(scan_id: str, interface: str, source_ports: range,
              netns: str | None = None) -> Iterator[str]:
    """Drop inbound TCP to ``source_ports`` on ``interface`` for the duration of the block.

    Yields the table name. ``netns`` installs the table in that namespace (default: the
    calling thread's).
    """
    name = table_name(scan_id)
    if not _IFNAME_RE.fullmatch(interface):
        raise FirewallError(f"interface name {interface!r} is not valid (at most 15 characters)")
    if len(source_ports) == 0 or source_ports.step != 1 or not (
        source_ports.start > 0 and source_ports.stop - 1 <= 65535
    ):
        raise FirewallError(
            f"source ports {source_ports} are not a non-empty contiguous range within 1-65535"
        )
    pid = os.getpid()
    owner = f"pyscan-owner pid={pid} start={process_start_time(pid)}"
    # Pin the namespace now: the atexit hook may run on a thread that is somewhere else.
    where: str | int = netns if netns is not None else os.open(
        "/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

    removed = False

    def remove() -> None:
        nonlocal removed
        if not removed:
            removed = True
            _delete_table(name, where)

    _SignalGuard.enter()
    try:
        try:
            run_nft(_ruleset(name, interface, source_ports, owner), where)
        except FirewallError as error:
            if "File exists" in str(error):
                raise FirewallError(
                    f"nft table {name} already exists: another scan uses id {scan_id!r}"
                ) from None
            raise
        atexit.register(remove)
        try:
            yield name
        finally:
            atexit.unregister(remove)
            remove()
    finally:
        _SignalGuard.leave()
        if isinstance(where, int):
            os.close(where)
