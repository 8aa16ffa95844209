"""The pfring-zc driver: ntop's PF_RING ZC, loaded at run time, never linked.

``available()`` and ``diagnose()`` say exactly why ZC cannot run here and how to fix it:
library not found or of the wrong version, kernel module not loaded (or of another version
than the library), no hugepages or no hugetlbfs mount, device not ZC-capable; a demo-mode
licence (traffic stops after 5 minutes) is announced when the scan opens its queues, before
the first probe. None of this raises on import or in ``available()``.

Library: driver option ``lib`` (``-O lib=PATH``, ``--pfring-lib``), else the environment
variable PYSCAN_LIBPFRING, else the loader's search for libpfring.so and its versioned names.

The stand-in: the test suite builds a libpfring.so double (tests/pfring_standin) whose
pfring_zc_version() contains "standin". For such a library - and only for it - the kernel
module, hugepage and device checks are skipped, because the stand-in moves frames over an
AF_PACKET socket and needs none of them; the session's description says so. No environment
variable or option turns these checks off for a real library.

Options (``-O key=value``): ``lib``, ``cluster-id`` (default: derived from the pid),
``buffer-len`` (default: max(1536, MTU + 18), as ntop's examples size it), ``card-slots``
(buffers a device queue's ring takes; default from /proc/net/pf_ring/dev/IFACE/info, else
32768), ``tx-queues`` / ``rx-queues`` (default: "TX/RX Queues" of /proc/net/pf_ring/dev/IFACE/info,
else the device's ethtool channel counts),
``hugepages`` (hugetlbfs mount point; default: the library's auto-detection), ``numa-node``
(default: the NIC's, from /sys/class/net/IFACE/device/numa_node, else 0).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import socket
import struct
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyscan.drivers.base import (
    DriverDescriptor,
    DriverError,
    DriverOption,
    DriverRequest,
    RingSession,
    close_rings,
)
from pyscan.text import ascii_digits

if TYPE_CHECKING:
    from pyscan.native import PfringZcCluster, Ring

__all__ = [
    "DESCRIPTOR", "ENV_LIBRARY", "MIN_VERSION",
    "Environment", "PfringDemoLicenceWarning", "PfringZcDriver",
    "PfringZcSession", "diagnose", "find_library", "is_standin", "parse_version",
]

ENV_LIBRARY = "PYSCAN_LIBPFRING"
DEFAULT_LIBRARIES = ("libpfring.so", "libpfring.so.9", "libpfring.so.8", "libpfring.so.7",
                     "/usr/local/lib/libpfring.so", "/usr/lib/libpfring.so")
# pfring_zc_pkt_buff with its timestamp, create_cluster with flags: PF_RING 7.0 and later.
MIN_VERSION = (7, 0)
DEFAULT_CARD_SLOTS = 32768   # MAX_CARD_SLOTS of ntop's ZC examples: no ZC card has more
DEFAULT_BUFFER_LEN = 1536
DEMO_LIMIT = "5 minutes"
MAX_RX_QUEUES = 64  # PYSCAN_PFRING_ZC_MAX_RX_QUEUES; tests/unit/test_drivers_registry.py checks
INSTALL_HINT = ("install ntop's 'pfring' package (packages.ntop.org) or point "
                f"{ENV_LIBRARY} / --pfring-lib at libpfring.so")


class PfringDemoLicenceWarning(UserWarning):
    """PF_RING ZC runs in demo mode: capture and transmission stop after 5 minutes."""


@dataclass(frozen=True)
class Environment:
    """Where the kernel's answers are read; tests point these at fake trees."""

    proc: Path = Path("/proc")
    licences: Path = Path("/etc/pf_ring")   # one licence file per card, named by its MAC


# --- library --------------------------------------------------------------------------------

def parse_version(text: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) from a version string such as "8.9.0" or "8.9.0-standin"."""
    match = re.match(r"\s*v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def is_standin(version: str) -> bool:
    """True only for the test suite's stand-in library (its version says "standin")."""
    return "standin" in version


def library_candidates(options: Mapping[str, str] | None = None,
                       environ: Mapping[str, str] | None = None) -> list[str]:
    """The explicit choice alone when there is one, else the usual names."""
    environ = os.environ if environ is None else environ
    explicit = (options or {}).get("lib") or environ.get(ENV_LIBRARY)
    return [explicit] if explicit else list(DEFAULT_LIBRARIES)


def find_library(candidates: Sequence[str], buffer_len: int = DEFAULT_BUFFER_LEN,
                 num_buffers: int = 0) -> tuple[Any | None, str]:
    """The first candidate that loads as a ZC library of a usable version, or (None, why)."""
    from pyscan.native import pfring_zc_probe

    not_found: list[str] = []
    for name in candidates:
        probe = pfring_zc_probe(name, buffer_len, num_buffers)
        if not probe.loaded and not probe.missing_symbol:
            not_found.append(probe.error or name)
            continue
        where = probe.loaded_from or name
        if probe.missing_symbol:
            return None, (f"wrong version: {where} is not a PF_RING ZC library of version "
                          f">= {MIN_VERSION[0]}.{MIN_VERSION[1]} (it does not export "
                          f"{probe.missing_symbol}); install PF_RING >= "
                          f"{MIN_VERSION[0]}.{MIN_VERSION[1]} (ntop's 'pfring' package)")
        version = parse_version(probe.version)
        if version is None or version[:2] < MIN_VERSION:
            return None, (f"wrong version: {where} reports PF_RING ZC version "
                          f"{probe.version!r}; the driver needs >= "
                          f"{MIN_VERSION[0]}.{MIN_VERSION[1]}: upgrade ntop's 'pfring' package")
        return probe, ""
    shown = "; ".join(not_found[:2]) + ("; ..." if len(not_found) > 2 else "")
    return None, f"libpfring.so not found ({shown}): {INSTALL_HINT}"


# --- kernel, hugepages, device ----------------------------------------------------------------

def _read(path: Path) -> str | None:
    try:  # the kernel writes ASCII; anything else must not turn a check into a traceback
        return path.read_text(errors="replace")
    except OSError:
        return None


def check_kernel_module(env: Environment, library_version: str) -> str | None:
    """Why pf_ring.ko cannot serve this library, or None."""
    pf_ring = env.proc / "net" / "pf_ring"
    if not pf_ring.is_dir():
        if not (env.proc / "modules").exists():
            return ("kernel module pf_ring not loaded (/proc/net/pf_ring absent) and this "
                    "kernel cannot load modules (no /proc/modules, CONFIG_MODULES unset): "
                    "PF_RING ZC needs a kernel with module support and pf_ring.ko "
                    "(package pfring-dkms)")
        return ("kernel module pf_ring not loaded (/proc/net/pf_ring absent): load it with "
                "'modprobe pf_ring' or 'systemctl start pf_ring' (package pfring-dkms)")
    info = _read(pf_ring / "info") or ""
    match = re.search(r"PF_RING Version\s*:\s*(\S+)", info)
    module = parse_version(match[1]) if match else None
    library = parse_version(library_version)
    if module and library and module[:2] != library[:2]:
        return (f"wrong version: kernel module pf_ring is {match[1] if match else '?'} but "
                f"libpfring is {library_version}; they must come from the same PF_RING "
                "release: reinstall pfring-dkms and pfring together, then reload pf_ring")
    return None


def _meminfo(env: Environment) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in (_read(env.proc / "meminfo") or "").splitlines():
        key, _, rest = line.partition(":")
        number = rest.split()
        if number and ascii_digits(number[0]):
            values[key.strip()] = int(number[0])
    return values


def hugetlbfs_mounts(env: Environment) -> list[str]:
    mounts = []
    for line in (_read(env.proc / "mounts") or "").splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "hugetlbfs":
            mounts.append(fields[1])
    return mounts


def check_hugepages(env: Environment, need_bytes: int = 0) -> str | None:
    """Why a cluster of need_bytes (0 = any) cannot get hugepages, or None."""
    info = _meminfo(env)
    total, free = info.get("HugePages_Total", 0), info.get("HugePages_Free", 0)
    page_kb = info.get("Hugepagesize", 2048) or 2048
    reserve = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"
    if total == 0:
        return ("no hugepages (HugePages_Total: 0 in /proc/meminfo): reserve 2 MB pages, e.g. "
                f"'echo 1024 > {reserve}' or node=0 hugepagenumber=1024 in "
                "/etc/pf_ring/hugepages.conf")
    if page_kb != 2048:
        return (f"default hugepage size is {page_kb} kB but PF_RING ZC uses 2 MB pages: "
                f"reserve them with 'echo 1024 > {reserve}'")
    need_pages = -(-need_bytes // (page_kb * 1024)) if need_bytes else 1
    if free < need_pages:
        return (f"not enough free hugepages (HugePages_Free: {free} of {total}, the cluster "
                f"needs {need_pages} of {page_kb} kB): reserve more with "
                f"'echo {total + need_pages - free} > {reserve}' or stop other ZC "
                "applications")
    if not hugetlbfs_mounts(env):
        return ("no hugetlbfs mounted (none in /proc/mounts): "
                "'mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages'")
    return None


def device_info(env: Environment, interface: str) -> dict[str, str] | None:
    """/proc/net/pf_ring/dev/IFACE/info as a dict, None when PF_RING does not list it."""
    text = _read(env.proc / "net" / "pf_ring" / "dev" / interface / "info")
    if text is None:
        return None
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def check_device(env: Environment, interface: str) -> str | None:
    """Why interface cannot be opened in ZC mode, or None."""
    info = device_info(env, interface)
    if info is None:
        return (f"device {interface} is not known to PF_RING (no /proc/net/pf_ring/dev/"
                f"{interface}/info): is the name right and pf_ring loaded in this namespace?")
    mode = info.get("Polling Mode", "")
    if "ZC" not in mode:
        family = info.get("Family", "")
        return (f"device {interface} is not ZC-capable (Polling Mode: {mode or '?'}"
                f"{', ' + family if family else ''}): load the ZC driver for its card "
                "(package pfring-drivers-zc-dkms: ixgbe_zc, i40e_zc, ice_zc, igb_zc, e1000e_zc) "
                "and bring the interface up")
    return None


def licensed_macs(env: Environment) -> list[str]:
    """MACs with a ZC licence file (/etc/pf_ring/<12 hex digits>), as aa:bb:cc:dd:ee:ff."""
    try:
        names = sorted(p.name for p in env.licences.iterdir() if p.is_file())
    except OSError:
        return []
    return [":".join(n[i:i + 2] for i in range(0, 12, 2)).lower() for n in names
            if re.fullmatch(r"[0-9A-Fa-f]{12}", n)]


def licence_file(env: Environment, mac: str) -> Path:
    return env.licences / mac.replace(":", "").upper()


def diagnose(options: Mapping[str, str] | None = None, env: Environment | None = None,
             environ: Mapping[str, str] | None = None,
             interface: str | None = None) -> tuple[Any | None, list[str]]:
    """(probe of the library, every problem found with its fix). No problems = usable."""
    env = env or Environment()
    probe, problem = find_library(library_candidates(options, environ))
    if probe is None:
        return None, [problem]
    if is_standin(probe.version):
        return probe, []
    problems = [p for p in (check_kernel_module(env, probe.version), check_hugepages(env))
                if p]
    if interface and not problems and (p := check_device(env, interface)):
        problems.append(p)
    return probe, problems


# --- device geometry ----------------------------------------------------------------------------

_SIOCGIFMTU = 0x8921
_SIOCGIFHWADDR = 0x8927


def _ifreq(interface: str, payload: bytes) -> bytes:
    return struct.pack("16s", interface.encode()) + payload.ljust(24, b"\0")


def interface_mac(interface: str) -> str:
    """aa:bb:cc:dd:ee:ff of interface in this thread's namespace; "" if unknown."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            reply = fcntl.ioctl(sock.fileno(), _SIOCGIFHWADDR, _ifreq(interface, b""))
    except OSError:
        return ""
    return ":".join(f"{b:02x}" for b in reply[18:24])


def interface_mtu(interface: str) -> int:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            reply = fcntl.ioctl(sock.fileno(), _SIOCGIFMTU, _ifreq(interface, b""))
    except OSError:
        return 1500
    return struct.unpack_from("i", reply, 16)[0] or 1500


def nic_numa_node(interface: str, sys: Path = Path("/sys")) -> int:
    """The NUMA node of the NIC's PCI device (buffers belong there); 0 when unknown."""
    text = _read(sys / "class" / "net" / interface / "device" / "numa_node")
    try:
        return max(0, int(text or "0"))
    except ValueError:
        return 0


def queue_names(interface: str, count: int) -> list[str]:
    """ZC device names of the first count queues: "zc:IFACE" for a one-queue device."""
    if count == 1:
        return [f"zc:{interface}"]
    return [f"zc:{interface}@{q}" for q in range(count)]


def explain_open_error(error: OSError, interface: str, buffer_len: int) -> str:
    """The fix for a failed pfring_zc_create_cluster / pfring_zc_open_device."""
    code = error.errno or 0
    hints = {
        errno.ENODEV: f"no such ZC device or queue on {interface}",
        errno.EBUSY: "the queue is already used by another ZC application (one owner per queue)",
        errno.EPERM: "needs root, or cap_net_admin,cap_ipc_lock,cap_sys_admin",
        errno.EACCES: "needs root, or cap_net_admin,cap_ipc_lock,cap_sys_admin",
        errno.EAFNOSUPPORT: "kernel module pf_ring is not loaded: 'modprobe pf_ring'",
        errno.ENOMEM: "not enough free hugepages for the cluster: reserve more",
        errno.ENOBUFS: "the cluster has too few buffers for the card's rings: raise -O card-slots",
        errno.ESOCKTNOSUPPORT: (f"{interface} is not in ZC mode, or buffer-len {buffer_len} does "
                                f"not match its slot size ('RX Slot Size' in /proc/net/pf_ring/"
                                f"dev/{interface}/info): set -O buffer-len"),
        errno.EOPNOTSUPP: f"{interface} does not support ZC (load its *_zc driver)",
    }
    hint = hints.get(code)
    return f"{error.strerror}: {hint}" if hint else str(error.strerror or error)


# --- the driver -----------------------------------------------------------------------------------

class PfringZcSession(RingSession):
    """Rings on one ZC cluster; close() destroys rings, then the cluster, on every path."""

    def __init__(self, cluster: PfringZcCluster, tx_rings: Sequence[Ring], rx_ring: Ring | None,
                 description: str, notices: Sequence[str]) -> None:
        self._setup = description
        self._final: dict[str, int] | None = None
        super().__init__(tx_rings, rx_ring, description)
        self.cluster: PfringZcCluster | None = cluster
        self.notices = list(notices)   # shown before the scan starts (demo licence)

    @property
    def description(self) -> str:
        """The setup, then the library's own counters (pfring_zc_stats) as of now."""
        zc = self.stats()
        return (f"{self._setup}; pfring_zc_stats: sent {zc['zc_sent']}, "
                f"recv {zc['zc_recv']}, drop {zc['zc_drop']}")

    @description.setter
    def description(self, text: str) -> None:
        self._setup = text

    def stats(self) -> dict[str, int]:
        """Ring counters plus pfring_zc_stats() of every queue (zc_sent, zc_recv, zc_drop);
        after close(), the last values."""
        from pyscan.native import pfring_zc_queue_stats

        if self._closed:
            return dict(self._final or super().stats())
        total = super().stats()
        zc = {"zc_sent": 0, "zc_recv": 0, "zc_drop": 0}
        for ring in [*self.tx_rings, *([self.rx_ring] if self.rx_ring is not None else [])]:
            queue = pfring_zc_queue_stats(ring)
            zc["zc_sent"] += queue["sent"]
            zc["zc_recv"] += queue["recv"]
            zc["zc_drop"] += queue["drop"]
        return {**total, **zc}

    def close(self) -> None:
        if not self._closed:
            self._final = self.stats()
        try:
            super().close()
        finally:
            if self.cluster is not None:
                self.cluster.close()
                self.cluster = None


class PfringZcDriver:
    name = "pfring-zc"

    def __init__(self, env: Environment | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.env = env or Environment()
        self.environ = environ

    def available(self) -> tuple[bool, str]:
        return self.available_for({})

    def available_for(self, options: Mapping[str, str]) -> tuple[bool, str]:
        """available(), honouring the ``lib`` driver option."""
        try:
            import pyscan.native  # noqa: F401
        except Exception as error:  # not built, or built from other sources: never raise
            return False, f"the native extension is not usable ({error})"
        try:
            probe, problems = diagnose(options, self.env, self.environ)
        except Exception as error:  # never raise from available()
            return False, f"could not check PF_RING ZC: {error}"
        if problems:
            return False, "; ".join(problems)
        assert probe is not None
        where = probe.loaded_from or probe.library
        if is_standin(probe.version):
            return True, (f"STAND-IN test library {where} ({probe.version}): frames go over "
                          "AF_PACKET; kernel module and hugepage checks skipped")
        macs = licensed_macs(self.env)
        if not macs:
            return True, (f"PF_RING ZC {probe.version} ({where}); no licence in "
                          f"{self.env.licences}/ (files named by card MAC): ZC runs in DEMO MODE, "
                          f"capture and transmission stop after {DEMO_LIMIT}")
        return True, (f"PF_RING ZC {probe.version} ({where}); licences for "
                      f"{', '.join(macs)}; any other card runs in demo mode ({DEMO_LIMIT})")

    def open(self, request: DriverRequest) -> PfringZcSession:
        from pyscan.native import (
            PFRING_ZC_RX_HANDLES,
            PFRING_ZC_TX_HANDLES,
            PfringZcCluster,
        )

        options = request.options
        given = DESCRIPTOR.parse_options(options, strict=False)
        interface = request.interface
        info = device_info(self.env, interface) or {}
        buffer_len = int(given.get("buffer_len")
                         or max(DEFAULT_BUFFER_LEN, interface_mtu(interface) + 18))
        card_default = max([int(info[k]) for k in ("Num RX Slots", "Num TX Slots")
                            if ascii_digits(info.get(k, ""))] or [DEFAULT_CARD_SLOTS])
        card_slots = int(given.get("card_slots", card_default))
        device_tx, device_rx = _queue_counts(interface)
        # pf_ring's own view of a ZC device wins over ethtool's
        if ascii_digits(info.get("TX Queues", "")):
            device_tx = max(1, int(info["TX Queues"]))
        if ascii_digits(info.get("RX Queues", "")):
            device_rx = max(1, int(info["RX Queues"]))
        tx_queues = int(given.get("tx_queues", device_tx))
        rx_queues = int(given.get("rx_queues", device_rx))
        cluster_id = int(given.get("cluster_id", os.getpid() % 32768 + 1))
        numa_node = int(given["numa_node"]) if "numa_node" in given \
            else nic_numa_node(interface)
        if not 1 <= request.tx_threads <= tx_queues:
            raise DriverError(f"{request.tx_threads} TX threads on {interface}, which has "
                              f"{tx_queues} TX queue(s): accepted 1..{tx_queues} (one ZC queue "
                              "per thread)")
        n_rx = rx_queues if request.want_rx else 0
        num_buffers = ((request.tx_threads + n_rx) * card_slots
                       + request.tx_threads * PFRING_ZC_TX_HANDLES
                       + (PFRING_ZC_RX_HANDLES if n_rx else 0))

        probe, problem = find_library(library_candidates(options, self.environ), buffer_len,
                                      num_buffers)
        if probe is None:
            raise DriverError(problem)
        library = probe.loaded_from or probe.library
        standin = is_standin(probe.version)
        if not standin:
            problems = [p for p in (check_kernel_module(self.env, probe.version),
                                    check_hugepages(self.env, probe.total_memory),
                                    check_device(self.env, interface)) if p]
            if problems:
                raise DriverError("; ".join(problems))

        tx_names = queue_names(interface, tx_queues)[:request.tx_threads]
        rx_names = queue_names(interface, n_rx) if n_rx else []
        try:
            cluster = PfringZcCluster(library, cluster_id, buffer_len, num_buffers,
                                      _text_or_none(given.get("hugepages")), numa_node)
        except OSError as error:
            raise DriverError(explain_open_error(error, interface, buffer_len)) from None
        rings: list[Ring] = []
        rx_ring = None
        try:
            for name in tx_names:
                rings.append(cluster.open_tx(name))
            if rx_names:
                rx_ring = cluster.open_rx(rx_names)
            state, _expiration = cluster.licence(rings[0])
        except (OSError, ValueError) as error:
            close_rings([*rings, rx_ring])
            cluster.close()
            if isinstance(error, OSError):
                raise DriverError(explain_open_error(error, interface, buffer_len)) from None
            raise DriverError(str(error)) from None

        notices = []
        if state == 0:
            mac = interface_mac(interface)
            where = (licence_file(self.env, mac) if mac
                     else self.env.licences / "<MAC without colons>")
            notices.append(f"PF_RING ZC is in DEMO MODE on {interface}: capture and "
                           f"transmission stop after {DEMO_LIMIT}; put the licence of this "
                           f"card{' (' + mac + ')' if mac else ''} in {where}")
            warnings.warn(notices[-1], PfringDemoLicenceWarning, stacklevel=2)
        mode = "STAND-IN library over AF_PACKET, " if standin else ""
        licence = "demo licence (5 min), " if state == 0 else ""
        description = (f"pfring-zc {cluster.version}: {mode}{licence}cluster {cluster_id}, "
                       f"TX {', '.join(tx_names)}, RX {', '.join(rx_names) or 'none'}, "
                       f"{num_buffers} buffers of {buffer_len} B")
        return PfringZcSession(cluster, rings, rx_ring, description, notices)


DESCRIPTOR = DriverDescriptor(
    name=PfringZcDriver.name,
    summary="ntop's PF_RING ZC, loaded at run time (-O lib=PATH or --pfring-lib)",
    factory=PfringZcDriver,
    capabilities={
        "CAP_NET_RAW": "the pfring-zc driver opens raw packet sockets",
        "CAP_NET_ADMIN": "the pfring-zc driver attaches to the interface",
    },
    options=(
        DriverOption("lib", "text", f"path of libpfring.so (default: ${ENV_LIBRARY}, then the "
                     "loader's search)"),
        DriverOption("cluster-id", "int", "ZC cluster id (default: derived from the pid)",
                     None, 0, 2**31),
        DriverOption("buffer-len", "int", f"bytes per buffer (default: max({DEFAULT_BUFFER_LEN},"
                     " MTU + 18))", None, 64, 4096),
        DriverOption("card-slots", "int", "buffers a device queue's ring takes (default: "
                     f"/proc/net/pf_ring/dev/IFACE/info, else {DEFAULT_CARD_SLOTS})", None, 64,
                     1 << 20),
        DriverOption("tx-queues", "int", "TX queues of the device (default: pf_ring's info, "
                     "else ethtool)", None, 1, 1024),
        DriverOption("rx-queues", "int", "RX queues to cover (default: pf_ring's info, else "
                     "ethtool)", None, 1, MAX_RX_QUEUES),
        DriverOption("hugepages", "text", "hugetlbfs mount point (default: the library's "
                     "auto-detection)"),
        DriverOption("numa-node", "int", "NUMA node for buffers (default: the NIC's)", None,
                     0, 1023),
    ),
)


def _queue_counts(interface: str) -> tuple[int, int]:
    """(tx, rx) active queues from the one source (netlink's channel reader); (1, 1) when the
    interface cannot say, so pf_ring's own /proc view can still decide."""
    from pyscan.netlink import NetlinkError, queue_counts

    try:
        counts = queue_counts(interface)
    except NetlinkError:
        return 1, 1
    return counts.tx, counts.rx


def _text_or_none(value: object) -> str | None:
    """A parsed text option (the hugetlbfs mount point), None when it was not given."""
    return None if value is None else str(value)
