"""pfring-zc without PF_RING: every reason it cannot run is reported (never raised) with its fix.

No root, no network: the stand-in library is built with gcc into a tmp dir and loaded through
the driver's ordinary dlopen path; kernel facts come from fake /proc trees.
"""

from __future__ import annotations

import ctypes.util
import errno
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from pyscan.drivers.base import DriverError, DriverRequest
from pyscan.drivers.pfring_zc import (
    ENV_LIBRARY,
    Environment,
    PfringZcDriver,
    check_device,
    check_hugepages,
    check_kernel_module,
    diagnose,
    explain_open_error,
    find_library,
    interface_mtu,
    is_standin,
    library_candidates,
    nic_numa_node,
    parse_version,
    queue_names,
)
from pyscan.native import PfringZcCluster, pfring_zc_probe
from tests.pfring_standin.build import build_standin


@pytest.fixture(scope="session")
def standin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pfring-standin-unit")


@pytest.fixture(scope="session")
def standin(standin_dir: Path) -> Path:
    return build_standin(standin_dir)


@pytest.fixture(scope="session")
def standin_without_recv(standin_dir: Path) -> Path:
    return build_standin(standin_dir, "libpfring-norecv.so", ["STANDIN_HIDE_RECV_BURST"])


@pytest.fixture(scope="session")
def impostor(standin_dir: Path) -> Path:
    """The stand-in claiming to be the real library: the driver must run every check."""
    return build_standin(standin_dir, "libpfring-real.so", ["STANDIN_IMPERSONATE_REAL"])


def fake_proc(root: Path, *, module: str | None = None, modules_file: bool = True,
              hugepages: tuple[int, int] = (1024, 1024), page_kb: int = 2048,
              hugetlbfs: bool = True, devices: dict[str, str] | None = None,
              licences: tuple[str, ...] = ()) -> Environment:
    (root / "pf_ring").mkdir(parents=True)
    for name in licences:
        (root / "pf_ring" / name).write_text("licence\n")
    proc = root / "proc"
    proc.mkdir(parents=True)
    if modules_file:
        (proc / "modules").write_text("")
    if module is not None:
        (proc / "net" / "pf_ring" / "dev").mkdir(parents=True)
        (proc / "net" / "pf_ring" / "info").write_text(
            f"PF_RING Version          : {module} (dev:abc)\nTotal rings              : 0\n")
        for name, mode in (devices or {}).items():
            (proc / "net" / "pf_ring" / "dev" / name).mkdir()
            (proc / "net" / "pf_ring" / "dev" / name / "info").write_text(
                f"Name:         {name}\nIndex:        4\nPolling Mode: {mode}\n"
                "Family:       Intel ixgbe 82599\nNum RX Slots: 4096\nNum TX Slots: 4096\n")
    total, free = hugepages
    (proc / "meminfo").write_text(
        f"MemTotal:       16000000 kB\nHugePages_Total:   {total}\nHugePages_Free:    {free}\n"
        f"Hugepagesize:       {page_kb} kB\n")
    mounts = "proc /proc proc rw 0 0\n"
    if hugetlbfs:
        mounts += "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n"
    (proc / "mounts").write_text(mounts)
    return Environment(proc=proc, licences=root / "pf_ring")


# --- library loading -----------------------------------------------------------------------------

def test_missing_library_is_a_reason_not_an_exception(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere" / "libpfring.so")
    ok, reason = PfringZcDriver(environ={ENV_LIBRARY: missing}).available()
    assert not ok
    assert reason.startswith("libpfring.so not found")
    assert missing in reason and ENV_LIBRARY in reason and "--pfring-lib" in reason


@pytest.mark.skipif(ctypes.util.find_library("pfring") is not None,
                    reason="a real libpfring is installed on this machine")
def test_default_search_reports_every_name_it_tried_is_absent() -> None:
    ok, reason = PfringZcDriver(environ={}).available()
    assert not ok
    assert "libpfring.so not found" in reason and "packages.ntop.org" in reason


def test_explicit_option_wins_over_environment_and_defaults() -> None:
    assert library_candidates({"lib": "/opt/a.so"}, {ENV_LIBRARY: "/opt/b.so"}) == ["/opt/a.so"]
    assert library_candidates({}, {ENV_LIBRARY: "/opt/b.so"}) == ["/opt/b.so"]
    assert library_candidates({}, {})[0] == "libpfring.so"


def test_library_lacking_a_zc_symbol_is_the_wrong_version(standin_without_recv: Path) -> None:
    ok, reason = PfringZcDriver(environ={ENV_LIBRARY: str(standin_without_recv)}).available()
    assert not ok
    assert reason.startswith("wrong version")
    assert "pfring_zc_recv_pkt_burst" in reason


def test_library_older_than_the_api_used_is_the_wrong_version(
        standin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYSCAN_STANDIN_VERSION", "6.0.3")
    probe, reason = find_library([str(standin)])
    assert probe is None
    assert "wrong version" in reason and "'6.0.3-standin'" in reason and ">= 7.0" in reason


def test_standin_is_available_and_says_it_is_a_standin(standin: Path) -> None:
    ok, reason = PfringZcDriver(environ={ENV_LIBRARY: str(standin)}).available()
    assert ok, reason
    assert "STAND-IN" in reason and str(standin) in reason


def test_probe_reports_the_loaded_file_version_and_cluster_memory(standin: Path) -> None:
    probe = pfring_zc_probe(str(standin), 1536, 1000)
    assert probe.loaded and probe.missing_symbol == "" and probe.error == ""
    assert probe.loaded_from == str(standin)
    assert probe.version == "8.9.0-standin" and is_standin(probe.version)
    # stand-in geometry: 64 B header line + 64 B head room + 1536 B data per buffer
    assert probe.total_memory == 1000 * (64 + 64 + 1536)


def test_version_parsing() -> None:
    assert parse_version("8.9.0") == (8, 9, 0)
    assert parse_version("8.9.0-standin") == (8, 9, 0)
    assert parse_version("v7.4") == (7, 4, 0)
    assert parse_version("dev build") is None
    assert not is_standin("8.9.0")


# --- the checks the stand-in must not skip for a real library ------------------------------------

def test_real_library_gets_module_and_hugepage_checks(impostor: Path, tmp_path: Path) -> None:
    env = fake_proc(tmp_path, module=None, modules_file=False, hugepages=(0, 0))
    probe, problems = diagnose({"lib": str(impostor)}, env, environ={})
    assert probe is not None and probe.version == "8.9.0"
    assert len(problems) == 2
    assert "kernel module pf_ring not loaded" in problems[0]
    assert "cannot load modules" in problems[0]
    assert "HugePages_Total: 0" in problems[1] and "nr_hugepages" in problems[1]
    ok, reason = PfringZcDriver(env, environ={ENV_LIBRARY: str(impostor)}).available()
    assert not ok and reason == "; ".join(problems)


def test_standin_skips_them_on_the_same_machine(standin: Path, tmp_path: Path) -> None:
    env = fake_proc(tmp_path, module=None, modules_file=False, hugepages=(0, 0))
    probe, problems = diagnose({"lib": str(standin)}, env, environ={})
    assert probe is not None and problems == []


def test_real_library_on_a_ready_machine_is_available(impostor: Path, tmp_path: Path) -> None:
    env = fake_proc(tmp_path, module="8.9.0", devices={"eth1": "NAPI/ZC"},
                    licences=("001B21A0B1C2", "hugepages.conf"))
    ok, reason = PfringZcDriver(env, environ={ENV_LIBRARY: str(impostor)}).available()
    assert ok, reason
    assert "PF_RING ZC 8.9.0" in reason
    assert "licences for 00:1b:21:a0:b1:c2; any other card runs in demo mode" in reason


def test_no_licence_file_announces_demo_mode_in_drivers(impostor: Path, tmp_path: Path) -> None:
    env = fake_proc(tmp_path, module="8.9.0", licences=("hugepages.conf",))
    ok, reason = PfringZcDriver(env, environ={ENV_LIBRARY: str(impostor)}).available()
    assert ok, reason
    assert "no licence in" in reason and "DEMO MODE" in reason and "5 minutes" in reason


def test_module_not_loaded_on_a_modular_kernel(tmp_path: Path) -> None:
    problem = check_kernel_module(fake_proc(tmp_path, module=None), "8.9.0")
    assert problem is not None
    assert "/proc/net/pf_ring absent" in problem and "modprobe pf_ring" in problem


def test_module_and_library_of_different_releases(tmp_path: Path) -> None:
    problem = check_kernel_module(fake_proc(tmp_path, module="8.4.0"), "8.9.0")
    assert problem is not None
    assert problem.startswith("wrong version") and "8.4.0" in problem and "8.9.0" in problem
    assert check_kernel_module(fake_proc(tmp_path / "same", module="8.9.1"), "8.9.0") is None


def test_hugepages_reserved_but_too_few_free(tmp_path: Path) -> None:
    env = fake_proc(tmp_path, hugepages=(64, 10))
    problem = check_hugepages(env, need_bytes=100 * 2 * 1024 * 1024)
    assert problem is not None
    assert "HugePages_Free: 10 of 64" in problem and "needs 100" in problem
    assert "echo 154 >" in problem
    assert check_hugepages(env, need_bytes=10 * 2 * 1024 * 1024) is None


def test_hugepages_without_hugetlbfs_mount(tmp_path: Path) -> None:
    problem = check_hugepages(fake_proc(tmp_path, hugetlbfs=False))
    assert problem is not None and "mount -t hugetlbfs" in problem


def test_gigabyte_default_hugepages_are_not_what_zc_uses(tmp_path: Path) -> None:
    problem = check_hugepages(fake_proc(tmp_path, page_kb=1048576))
    assert problem is not None and "2 MB pages" in problem


def test_device_not_zc_capable(tmp_path: Path) -> None:
    env = fake_proc(tmp_path, module="8.9.0", devices={"eth1": "NAPI", "eth2": "NAPI/ZC"})
    problem = check_device(env, "eth1")
    assert problem is not None
    assert "not ZC-capable" in problem and "Polling Mode: NAPI" in problem and "_zc" in problem
    assert check_device(env, "eth2") is None
    unknown = check_device(env, "eth9")
    assert unknown is not None and "not known to PF_RING" in unknown


def test_diagnose_checks_the_device_when_given(impostor: Path, tmp_path: Path) -> None:
    env = fake_proc(tmp_path, module="8.9.0", devices={"eth1": "NAPI"})
    _, problems = diagnose({"lib": str(impostor)}, env, environ={}, interface="eth1")
    assert len(problems) == 1 and "not ZC-capable" in problems[0]


# --- failed opens: errno from the library, turned into a fix --------------------------------------

def test_open_of_a_missing_device_fails_with_enodev(standin: Path) -> None:
    cluster = PfringZcCluster(str(standin), 7, 1536, 4096)
    try:
        assert cluster.version == "8.9.0-standin"
        with pytest.raises(OSError) as raised:
            cluster.open_tx("zc:pyscan-nodev0")
        assert raised.value.errno == errno.ENODEV
        assert "pfring_zc_open_device(zc:pyscan-nodev0, tx_only)" in str(raised.value)
        with pytest.raises(OSError) as raised:
            cluster.open_rx(["pyscan-nodev0"])   # not a zc: name
        assert raised.value.errno == errno.EINVAL
    finally:
        cluster.close()
        cluster.close()   # idempotent


def test_cluster_creation_errors_carry_errno(standin: Path) -> None:
    with pytest.raises(OSError) as raised:
        PfringZcCluster(str(standin), 7, 8192, 16)   # buffers larger than a page
    assert raised.value.errno == errno.EINVAL
    assert "pfring_zc_create_cluster" in str(raised.value)
    with pytest.raises(OSError) as raised:
        PfringZcCluster("/nonexistent/libpfring.so", 7, 1536, 16)
    assert raised.value.errno == errno.ENOENT and "cannot load" in str(raised.value)


def test_cluster_lifecycle_is_logged_by_the_standin(
        standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = tmp_path / "events"
    monkeypatch.setenv("PYSCAN_STANDIN_EVENTS", str(events))
    PfringZcCluster(str(standin), 9, 1536, 64).close()
    lines = events.read_text().splitlines()
    assert lines == ["create_cluster id=9 buffers=64 buffer_len=1536",
                     "destroy_cluster id=9 open_queues=0 handles_held=0"]


def test_open_errors_are_explained_with_a_fix() -> None:
    busy = explain_open_error(OSError(errno.EBUSY, "Device or resource busy"), "eth1", 1536)
    assert busy.startswith("Device or resource busy") and "another ZC application" in busy
    slot = explain_open_error(OSError(errno.ESOCKTNOSUPPORT, "Socket type not supported"),
                              "eth1", 1536)
    assert "buffer-len 1536" in slot and "/proc/net/pf_ring/dev/eth1/info" in slot
    assert "modprobe pf_ring" in explain_open_error(
        OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol"), "eth1", 1536)


def test_queue_names_follow_zc_syntax() -> None:
    assert queue_names("eth1", 1) == ["zc:eth1"]
    assert queue_names("eth1", 3) == ["zc:eth1@0", "zc:eth1@1", "zc:eth1@2"]


def test_device_geometry_falls_back_when_ethtool_cannot_say() -> None:
    assert interface_mtu("lo") == 65536
    assert interface_mtu("pyscan-nodev0") == 1500


def test_more_tx_threads_than_zc_queues_is_refused(standin: Path, tmp_path: Path) -> None:
    request = DriverRequest(interface="pyscan-nodev0", ifindex=0, tx_threads=2, want_rx=True,
                            source_ip=IPv4Address("198.18.0.1"), source_ports=range(40000, 40001),
                            cookie_key=bytes(16), options={"lib": str(standin)})
    driver = PfringZcDriver(fake_proc(tmp_path), environ={})
    with pytest.raises(DriverError, match=r"2 TX threads on pyscan-nodev0, which has 1 TX "
                                          r"queue\(s\): accepted 1\.\.1"):
        driver.open(request)


def test_bad_driver_option_names_the_value(standin: Path, tmp_path: Path) -> None:
    request = DriverRequest(interface="pyscan-nodev0", ifindex=0, tx_threads=1, want_rx=True,
                            source_ip=IPv4Address("198.18.0.1"), source_ports=range(40000, 40001),
                            cookie_key=bytes(16), options={"lib": str(standin),
                                                           "buffer-len": "9000"})
    with pytest.raises(DriverError, match=r"buffer-len='9000' is invalid: accepted integers "
                                          r"64\.\.4096"):
        PfringZcDriver(fake_proc(tmp_path), environ={}).open(request)


def test_open_on_a_missing_device_explains_enodev(standin: Path, tmp_path: Path) -> None:
    request = DriverRequest(interface="pyscan-nodev0", ifindex=0, tx_threads=1, want_rx=True,
                            source_ip=IPv4Address("198.18.0.1"), source_ports=range(40000, 40001),
                            cookie_key=bytes(16), options={"lib": str(standin)})
    with pytest.raises(DriverError, match="no such ZC device or queue on pyscan-nodev0"):
        PfringZcDriver(fake_proc(tmp_path), environ={}).open(request)


def test_numa_node_of_the_nic_from_sysfs(tmp_path: Path) -> None:
    device = tmp_path / "class" / "net" / "eth1" / "device"
    device.mkdir(parents=True)
    (device / "numa_node").write_text("1\n")
    assert nic_numa_node("eth1", tmp_path) == 1
    (device / "numa_node").write_text("-1\n")          # no NUMA information
    assert nic_numa_node("eth1", tmp_path) == 0
    assert nic_numa_node("veth0", tmp_path) == 0        # virtual: no PCI device
