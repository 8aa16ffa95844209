"""The loader's generic features on a small program compiled for the test: .rodata set before
load, .bss written after load, plain maps read and written, the frame a program returns."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyscan.native import BpfError, BpfObject, bpf_map_sizes

pytestmark = [
    pytest.mark.bpf,
    pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root"),
    pytest.mark.skipif(shutil.which("clang") is None, reason="needs clang to build the probe"),
]

XDP_DROP, XDP_PASS, XDP_TX = 1, 2, 3

PROBE_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
} seen SEC(".maps");

const volatile __u32 verdict = 2;   /* .rodata: XDP_PASS unless set before load */
__u8 marker = 0;                     /* .bss: written from userspace after load */

SEC("xdp")
int probe(struct xdp_md *ctx)
{
    __u8 *data = (void *)(long)ctx->data;
    __u8 *end = (void *)(long)ctx->data_end;
    __u32 key = 1;
    __u64 *count = bpf_map_lookup_elem(&seen, &key);

    if (count)
        __sync_fetch_and_add(count, 1);
    if (data + 1 <= end)
        data[0] = marker;             /* the frame comes back carrying the .bss value */
    return verdict;
}

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture(scope="module")
def probe_object(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bpf")
    source, target = folder / "probe.bpf.c", folder / "probe.bpf.o"
    source.write_text(PROBE_SOURCE)
    arch = os.uname().machine
    multiarch = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}.get(arch, "")
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", f"-I/usr/include/{multiarch}",
                    "-c", str(source), "-o", str(target)], check=True, capture_output=True)
    return target


@pytest.fixture
def probe(probe_object: Path) -> Iterator[BpfObject]:
    with BpfObject(probe_object) as obj:
        yield obj


FRAME = bytes(range(64))


def test_defaults_without_initial_values(probe: BpfObject) -> None:
    probe.load()
    retval, _, out = probe.test_run("probe", FRAME)
    assert retval == XDP_PASS
    assert out == b"\x00" + FRAME[1:]


def test_rodata_before_load_and_bss_after_load_reach_the_program(probe: BpfObject) -> None:
    probe.set_rodata(XDP_TX.to_bytes(4, "little"))
    probe.load()
    probe.map_update(".bss", 0, b"\xab")
    retval, _, out = probe.test_run("probe", FRAME, repeat=3)
    assert retval == XDP_TX
    assert out[0] == 0xAB


def test_plain_maps_are_read_and_written(probe: BpfObject) -> None:
    probe.load()
    fd = probe.map_fd("seen")
    key_size, value_size, max_entries, _ = bpf_map_sizes(fd)
    assert (key_size, value_size, max_entries) == (4, 8, 4)
    probe.test_run("probe", FRAME, repeat=5)
    assert int.from_bytes(probe.map_lookup("seen", 1), "little") == 5
    probe.map_update("seen", 1, (100).to_bytes(8, "little"))
    probe.test_run("probe", FRAME)
    assert int.from_bytes(probe.map_lookup("seen", 1), "little") == 101
    with pytest.raises(BpfError, match="cannot look up"):
        probe.map_lookup("seen", 9)   # beyond max_entries
    with pytest.raises(ValueError, match="takes 4-byte keys and 8-byte values"):
        probe.map_update("seen", 1, b"\x01")


def test_per_cpu_sum_refuses_a_plain_array(probe: BpfObject) -> None:
    probe.load()
    with pytest.raises(BpfError, match="not a per-CPU map"):
        probe.percpu_sum("seen", 1)


def test_errors_before_load_say_what_to_do(probe: BpfObject) -> None:
    with pytest.raises(BpfError, match=r"load\(\) before"):
        probe.map_fd("seen")
    with pytest.raises(BpfError, match=r"load\(\) before"):
        probe.attach_xdp(1)


def test_closed_object_is_refused(probe_object: Path) -> None:
    obj = BpfObject(probe_object)
    obj.close()
    obj.close()   # idempotent
    with pytest.raises(ValueError, match="is closed"):
        obj.load()


def test_verifier_rejection_carries_the_log(tmp_path: Path) -> None:
    source, target = tmp_path / "bad.bpf.c", tmp_path / "bad.bpf.o"
    # reads the packet without a bounds check: the verifier must refuse it
    source.write_text(PROBE_SOURCE.replace("if (data + 1 <= end)\n", ""))
    arch = os.uname().machine
    multiarch = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}.get(arch, "")
    subprocess.run(["clang", "-O2", "-g", "-target", "bpf", f"-I/usr/include/{multiarch}",
                    "-c", str(source), "-o", str(target)], check=True, capture_output=True)
    with BpfObject(target) as obj, pytest.raises(BpfError) as caught:
        obj.load()
    assert "cannot load BPF object" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert "invalid access to packet" in caught.value.log
