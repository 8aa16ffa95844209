"""Isolation tables: in place while the block runs, gone on every way out of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pyscan import firewall
from pyscan.firewall import FirewallError
from pyscan.lab import Lab

REPO_ROOT = Path(__file__).resolve().parents[2]
PORTS = range(42000, 42100)


def scan_id(ns: str) -> str:
    return "t" + ns.replace("-", "_")


def tables(ns: str) -> list[str]:
    return firewall.list_tables(netns=ns)


def test_table_exists_during_the_block_and_not_after(
        scratch_netns: Callable[[str], str]) -> None:
    ns = scratch_netns("")
    with firewall.isolation(scan_id(ns), "lo", PORTS, netns=ns) as table:
        assert tables(ns) == [table]
        listing = firewall.run_nft(f"list table inet {table}\n", ns)
        assert 'iifname "lo" tcp dport 42000-42099 drop' in listing
        assert 'iifname "lo" udp dport 42000-42099 drop' in listing
        assert "hook prerouting priority raw" in listing
        assert f"pyscan-owner pid={os.getpid()}" in listing
    assert tables(ns) == []


def test_table_is_removed_when_the_block_raises(scratch_netns: Callable[[str], str]) -> None:
    ns = scratch_netns("")
    with pytest.raises(ZeroDivisionError), \
            firewall.isolation(scan_id(ns), "lo", PORTS, netns=ns):
        assert len(tables(ns)) == 1
        1 / 0  # noqa: B018
    assert tables(ns) == []


def test_replies_to_isolated_ports_never_reach_the_kernel(
        lab_factory: Callable[..., Lab], tcp_connect: Callable[..., str]) -> None:
    lab = lab_factory(open_pairs=set(), ports=(80,))
    # a closed port answers RST; with our source port isolated the RST is dropped in
    # prerouting, so the connecting socket never hears back
    assert tcp_connect(lab.scan_netns, "198.19.0.1", 80, source_port=42010) == "refused"
    with firewall.isolation(scan_id(lab.name), lab.scan_interface, PORTS, netns=lab.scan_netns):
        assert tcp_connect(lab.scan_netns, "198.19.0.1", 80, source_port=42011,
                           timeout=1.0) == "timeout"
        assert tcp_connect(lab.scan_netns, "198.19.0.1", 80, source_port=42100) == "refused"
    assert tcp_connect(lab.scan_netns, "198.19.0.1", 80, source_port=42012) == "refused"


def test_same_scan_id_twice_is_refused_and_the_first_table_survives(
        scratch_netns: Callable[[str], str]) -> None:
    ns = scratch_netns("")
    with firewall.isolation(scan_id(ns), "lo", PORTS, netns=ns) as table:
        with pytest.raises(FirewallError, match="already exists"), \
                firewall.isolation(scan_id(ns), "lo", PORTS, netns=ns):
            pass
        assert tables(ns) == [table]
    assert tables(ns) == []


def _child(ns: str, sid: str) -> subprocess.Popen[str]:
    code = (
        "import time\n"
        "from pyscan import firewall\n"
        f"with firewall.isolation({sid!r}, 'lo', range(42000, 42100), netns={ns!r}):\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    return child


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_table_is_removed_when_the_process_is_signalled(
        scratch_netns: Callable[[str], str], signum: int) -> None:
    ns = scratch_netns("")
    child = _child(ns, scan_id(ns))
    try:
        assert tables(ns) == [f"pyscan_{scan_id(ns)}"]
        child.send_signal(signum)
        child.wait(timeout=30)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]
        child.stderr.close()  # type: ignore[union-attr]
    assert tables(ns) == []


def test_cleanup_stale_removes_tables_of_killed_scans_only(
        scratch_netns: Callable[[str], str]) -> None:
    ns = scratch_netns("")
    killed = _child(ns, "tkilled")
    killed.kill()   # SIGKILL: no handler runs, the table stays behind
    killed.wait()
    killed.stdout.close()  # type: ignore[union-attr]
    killed.stderr.close()  # type: ignore[union-attr]
    firewall.run_nft("add table inet pyscan_unowned\n", ns)
    with firewall.isolation("tlive", "lo", range(43000, 43010), netns=ns):
        assert tables(ns) == ["pyscan_tkilled", "pyscan_tlive", "pyscan_unowned"]
        assert firewall.cleanup_stale(ns) == ["pyscan_tkilled"]
        assert tables(ns) == ["pyscan_tlive", "pyscan_unowned"]
    firewall.run_nft("delete table inet pyscan_unowned\n", ns)


def test_namespace_gone_before_the_block_ends_is_not_an_error(
        scratch_netns: Callable[[str], str]) -> None:
    from pyscan import netlink

    ns = scratch_netns("")
    with firewall.isolation(scan_id(ns), "lo", PORTS, netns=ns):
        netlink.remove_netns(ns)
    assert not netlink.netns_exists(ns)


def test_table_goes_from_the_namespace_it_was_made_in_even_if_the_thread_moved(
        scratch_netns: Callable[[str], str]) -> None:
    from pyscan import netlink

    ns = scratch_netns("")
    guard = firewall.isolation(scan_id(ns), "lo", PORTS)   # no netns: the thread's own
    with netlink.in_netns(ns):
        guard.__enter__()
    assert tables(ns) == [f"pyscan_{scan_id(ns)}"]
    guard.__exit__(None, None, None)   # back in the host namespace by now
    assert tables(ns) == []
