"""The BPF object loader's attach modes on a real veth in a throwaway namespace:
a bpf_link ends with the object, a netlink attach outlives its process until detached."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pyscan import netlink
from pyscan.bpf import object_path
from pyscan.native import (
    BpfError,
    BpfObject,
    read_attached_percpu,
    xdp_attached_prog_id,
    xdp_detach,
    xdp_query,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def veth(scratch_netns: Callable[[str], str]) -> tuple[str, int]:
    """(namespace, ifindex) of an up veth end in a fresh namespace."""
    ns = scratch_netns("")
    netlink.create_veth("pt-x0", "pt-x1", ns, ns)
    netlink.set_link_up("pt-x0", ns)
    netlink.set_link_up("pt-x1", ns)
    return ns, netlink.link_index("pt-x0", ns)


@pytest.mark.parametrize("mode", ["native", "generic"])
def test_link_attach_ends_with_close(veth: tuple[str, int], mode: str) -> None:
    ns, ifindex = veth
    with netlink.in_netns(ns):
        sink = BpfObject(object_path("sink")).load()
        prog_id = sink.attach_xdp(ifindex, mode=mode)
        assert prog_id != 0
        assert xdp_attached_prog_id(ifindex, mode) == prog_id
        other = "generic" if mode == "native" else "native"
        assert xdp_attached_prog_id(ifindex, other) == 0
        sink.close()
        assert xdp_attached_prog_id(ifindex) == 0


def test_link_attach_can_be_detached_and_reattached(veth: tuple[str, int]) -> None:
    ns, ifindex = veth
    with netlink.in_netns(ns), BpfObject(object_path("sink")) as sink:
        sink.load()
        sink.attach_xdp(ifindex)
        with pytest.raises(BpfError, match="already attached"):
            sink.attach_xdp(ifindex)
        sink.detach()
        assert xdp_attached_prog_id(ifindex) == 0
        assert sink.attach_xdp(ifindex, mode="generic") != 0
        sink.detach()
        assert xdp_attached_prog_id(ifindex) == 0


def test_persistent_attach_outlives_its_process_and_reads_from_another(
        veth: tuple[str, int]) -> None:
    ns, ifindex = veth
    code = (
        "from pyscan import netlink\n"
        "from pyscan.bpf import object_path\n"
        "from pyscan.native import BpfObject\n"
        f"with netlink.in_netns({ns!r}):\n"
        "    sink = BpfObject(object_path('sink')).load()\n"
        f"    print(sink.attach_xdp({ifindex}, persist=True))\n"
        "    sink.test_run(None, bytes(60), repeat=7)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    prog_id = int(result.stdout)
    with netlink.in_netns(ns):
        try:
            assert xdp_query(ifindex)["native_id"] == prog_id
            # the test run above counted into the very map the attached program uses
            assert read_attached_percpu(ifindex, "sink_counters")[:2] == (7, 7 * 60)
            xdp_detach(ifindex, expected_prog_id=prog_id + 1000)   # not ours: left alone
            assert xdp_attached_prog_id(ifindex) == prog_id
        finally:
            xdp_detach(ifindex, mode="native", expected_prog_id=prog_id)
        assert xdp_attached_prog_id(ifindex) == 0
        xdp_detach(ifindex)   # nothing attached: not an error


def test_persistent_attach_does_not_replace_someone_elses_program(
        veth: tuple[str, int]) -> None:
    ns, ifindex = veth
    with netlink.in_netns(ns), BpfObject(object_path("sink")) as first, \
            BpfObject(object_path("sink")) as second:
        first.load()
        second.load()
        first.attach_xdp(ifindex, persist=True)
        try:
            with pytest.raises(BpfError, match="cannot attach"):
                second.attach_xdp(ifindex, persist=True)
        finally:
            first.detach()
        assert xdp_attached_prog_id(ifindex) == 0


def test_reading_a_map_where_nothing_is_attached_is_a_clear_error(
        veth: tuple[str, int]) -> None:
    ns, ifindex = veth
    with netlink.in_netns(ns), pytest.raises(BpfError, match="no XDP program attached"):
        read_attached_percpu(ifindex, "sink_counters")
