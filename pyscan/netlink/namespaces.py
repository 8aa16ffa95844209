"""Network namespaces: enter one (per thread, or for the whole process), create, list, remove,
and write a namespaced sysctl.

``setns`` is per thread: :func:`in_netns` saves the *thread's* namespace
(``/proc/thread-self``), never the process's, so threads can each visit a namespace at once.
Creating a namespace forks nothing, so it is safe while data-plane threads run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterator

from pyroute2 import IPRoute
from pyroute2 import netns as _pyroute_netns

from pyscan.netlink.common import NetlinkError

__all__ = [
    "NETNS_DIR",
    "create_netns",
    "enter_netns_for_process",
    "in_netns",
    "list_netns",
    "netns_exists",
    "remove_netns",
    "write_sysctl",
]

NETNS_DIR = "/run/netns"
_CLONE_NEWNET = 0x40000000
_MS_BIND = 4096
_MS_REC = 16384
_MS_SHARED = 1 << 20
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int, what: str) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise NetlinkError(f"cannot enter network namespace {what}: {os.strerror(code)}")


def _open_netns(name: str | int) -> int:
    if isinstance(name, int):
        return os.dup(name)   # an fd of /proc/<pid>/ns/net or /run/netns/<name>
    try:
        return os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        available = ", ".join(list_netns()) or "none"
        raise NetlinkError(
            f"no network namespace named {name!r} (available: {available})"
        ) from None


@contextlib.contextmanager
def in_netns(name: str | int | None) -> Iterator[None]:
    """Run the block with the calling thread (only) in namespace ``name``; None = stay.

    ``name`` is a named namespace or an open namespace fd. Sockets, netlink handles and
    child processes created in the block belong to that namespace.
    """
    if name is None:
        yield
        return
    target = _open_netns(name)
    try:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except BaseException:
        os.close(target)
        raise
    try:
        _setns(target, repr(name))
        try:
            yield
        finally:
            # Failing to return would leave this thread sending from the wrong namespace.
            _setns(home, "of this thread (returning)")
    finally:
        os.close(target)
        os.close(home)


def write_sysctl(key: str, value: str, netns: str) -> None:
    """Set a namespaced sysctl (``net/...``) inside ``netns``."""
    # /proc/sys/net is resolved against the opening thread's namespace.
    with in_netns(netns), open(f"/proc/sys/{key}", "w") as sysctl:
        sysctl.write(value)


def enter_netns_for_process(name: str) -> None:
    """Move the calling thread into ``name`` for good (``pyscan --netns``).

    Call it first thing, before any thread starts: threads started later inherit the
    namespace of the thread that starts them, threads already running do not move.
    """
    others = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
    if others:
        raise NetlinkError(
            f"--netns must be entered before threads start (running: {', '.join(others)})"
        )
    fd = _open_netns(name)
    try:
        _setns(fd, repr(name))
    finally:
        os.close(fd)


def list_netns(prefix: str = "") -> list[str]:
    """Named network namespaces (``ip netns`` names) starting with ``prefix``, sorted."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(prefix))


def netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def _mount(source: str, target: str, flags: int) -> int:
    return int(_libc.mount(source.encode(), target.encode(), b"none", flags, None))


def _share_netns_dir() -> None:
    """Make NETNS_DIR a shared mount point, as `ip netns add` does, so namespace bind mounts
    made here are seen by every mount namespace (and `ip netns exec`)."""
    os.makedirs(NETNS_DIR, exist_ok=True)
    if _mount("", NETNS_DIR, _MS_SHARED | _MS_REC) == 0:
        return
    # Not a mount point yet: bind it onto itself, then share it.
    if _mount(NETNS_DIR, NETNS_DIR, _MS_BIND | _MS_REC) != 0 or \
            _mount("", NETNS_DIR, _MS_SHARED | _MS_REC) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"cannot make {NETNS_DIR} a shared mount: {os.strerror(code)}")


def _bind_new_netns(path: str, failure: list[BaseException]) -> None:
    # Runs on a throwaway thread: unshare moves only this thread into the new namespace,
    # and the bind mount keeps the namespace alive after the thread is gone.
    try:
        if _libc.unshare(_CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"unshare: {os.strerror(code)}")
        if _mount("/proc/thread-self/ns/net", path, _MS_BIND) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"bind mount: {os.strerror(code)}")
    except BaseException as error:
        failure.append(error)


def create_netns(name: str) -> None:
    """Create named namespace ``name`` (like ``ip netns add``); its loopback is brought up.

    No fork (unlike pyroute2's ``netns.create``): a helper thread unshares and bind-mounts,
    so it is safe while data-plane threads run.
    """
    if not name or "/" in name or name in (".", ".."):
        raise NetlinkError(f"network namespace name {name!r} is not usable (no '/', not empty)")
    path = os.path.join(NETNS_DIR, name)
    try:
        _share_netns_dir()
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    except FileExistsError:
        raise NetlinkError(f"network namespace {name!r} already exists") from None
    except OSError as error:
        raise NetlinkError(f"cannot create network namespace {name!r}: {error}") from error
    failure: list[BaseException] = []
    helper = threading.Thread(target=_bind_new_netns, args=(path, failure),
                              name=f"netns-create-{name}")
    helper.start()
    helper.join()
    if failure:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise NetlinkError(f"cannot create network namespace {name!r}: {failure[0]}")
    with in_netns(name), IPRoute() as ipr:
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")


def remove_netns(name: str) -> bool:
    """Remove named namespace ``name``; False (no error) when it is already gone."""
    if not netns_exists(name):
        return False
    try:
        _pyroute_netns.remove(name)
    except FileNotFoundError:
        return False
    except OSError as error:
        raise NetlinkError(f"cannot remove network namespace {name!r}: {error}") from error
    return True
