"""BPF objects (bpf_object.h): load, attach, maps, BPF_PROG_TEST_RUN, for the lab sink and
any other program; the reply filter of the af-xdp driver is in ``pyscan.native.af_xdp``.

bpf_object.c reports failures as -errno plus a thread-local one-line reason; BpfError carries
both, and the full libbpf output (verifier log) in .log for when the one line is not enough.
"""

from __future__ import annotations

import os

from pyscan.native._lib import BpfObjectPtr, c_text, ffi, is_null, lib
from pyscan.native.handles import CHandle

XDP_MODES = {"native": lib.PYSCAN_XDP_MODE_NATIVE, "generic": lib.PYSCAN_XDP_MODE_GENERIC}


class BpfError(OSError):
    """A libbpf operation failed; ``str()`` is one line, ``.log`` what libbpf printed."""

    def __init__(self, errno: int, message: str, log: str = "") -> None:
        super().__init__(errno, message)
        self.log = log

    def __str__(self) -> str:
        return str(self.strerror)


def _bpf_check(rc: int) -> int:
    if rc < 0:
        raise BpfError(
            -rc,
            c_text(lib.pyscan_bpf__error()),
            c_text(lib.pyscan_bpf__log()),
        )
    return rc


def _xdp_mode(mode: str | None) -> int:
    if mode is None:
        return 0
    if mode not in XDP_MODES:
        raise ValueError(f"XDP mode {mode!r} is not one of: {', '.join(XDP_MODES)}")
    return int(XDP_MODES[mode])


def _u32_key(key: int | bytes) -> bytes:
    return key if isinstance(key, bytes) else int(key).to_bytes(4, "little")


def bpf_possible_cpus() -> int:
    """How many per-CPU slots a per-CPU map value has (possible, not online, CPUs)."""
    return _bpf_check(lib.pyscan_bpf__possible_cpus())


def bpf_map_sizes(map_fd: int) -> tuple[int, int, int, int]:
    """(key_size, value_size, max_entries, map_type) of a map fd."""
    out = ffi.new("uint32_t[4]")
    _bpf_check(lib.pyscan_bpf_map__sizes(map_fd, out, out + 1, out + 2, out + 3))
    return int(out[0]), int(out[1]), int(out[2]), int(out[3])


def bpf_map_update(map_fd: int, key: int | bytes, value: bytes, flags: int = 0) -> None:
    """Write one element (for per-CPU maps ``value`` holds one 8-aligned value per CPU)."""
    key_bytes = _u32_key(key)
    key_size, value_size, _, _ = bpf_map_sizes(map_fd)
    if len(key_bytes) != key_size or len(value) < value_size:
        raise ValueError(
            f"map fd {map_fd} takes {key_size}-byte keys and {value_size}-byte values, "
            f"got {len(key_bytes)} and {len(value)}"
        )
    _bpf_check(lib.pyscan_bpf_map__update(map_fd, key_bytes, value, flags))


def bpf_map_lookup(map_fd: int, key: int | bytes) -> bytes:
    """Read one element of a (non-per-CPU) map."""
    key_bytes = _u32_key(key)
    key_size, value_size, _, _ = bpf_map_sizes(map_fd)
    if len(key_bytes) != key_size:
        raise ValueError(f"map fd {map_fd} takes {key_size}-byte keys, got {len(key_bytes)}")
    value = ffi.new("uint8_t[]", max(value_size, 1))
    _bpf_check(lib.pyscan_bpf_map__lookup(map_fd, key_bytes, value))
    return bytes(ffi.buffer(value, value_size))


def bpf_percpu_sum(map_fd: int, key: int = 0) -> tuple[int, ...]:
    """Each u64 word of a per-CPU map's value at ``key``, summed over all possible CPUs."""
    words = ffi.new("uint64_t[64]")
    count = _bpf_check(lib.pyscan_bpf_map__percpu_sum(map_fd, key, words, 64))
    return tuple(int(words[i]) for i in range(count))


def bpf_test_run(prog_fd: int, data: bytes, repeat: int = 1) -> tuple[int, int, bytes]:
    """BPF_PROG_TEST_RUN: (retval, mean duration in ns, frame as the program left it)."""
    if repeat < 1:
        raise ValueError(f"repeat {repeat} must be at least 1")
    result = ffi.new("struct pyscan_bpf_test_result *")
    capacity = len(data) + 4096   # room for a program that grows the frame (adjust_tail)
    out = ffi.new("uint8_t[]", capacity)
    _bpf_check(lib.pyscan_bpf_prog__test_run(prog_fd, data, len(data), repeat, out, capacity,
                                             result))
    return int(result.retval), int(result.duration_ns), bytes(ffi.buffer(out,
                                                                        result.data_out_len))


def xdp_query(ifindex: int) -> dict[str, int]:
    """Program ids attached to an interface of the calling thread's netns (0 = none)."""
    out = ffi.new("struct pyscan_xdp_attachment *")
    _bpf_check(lib.pyscan_xdp__query(ifindex, out))
    return {"prog_id": int(out.prog_id), "native_id": int(out.native_id),
            "generic_id": int(out.generic_id), "mode": int(out.mode)}


def xdp_attached_prog_id(ifindex: int, mode: str | None = None) -> int:
    """Id of the XDP program on ``ifindex`` (in ``mode`` if given), 0 when there is none."""
    ids = xdp_query(ifindex)
    if mode is None:
        return ids["prog_id"] or ids["native_id"] or ids["generic_id"]
    _xdp_mode(mode)
    return ids["native_id"] if mode == "native" else ids["generic_id"]


def xdp_detach(ifindex: int, mode: str | None = None, expected_prog_id: int = 0) -> None:
    """Remove the netlink-attached XDP program(s) on ``ifindex``: only ``expected_prog_id``
    when given (a program someone else attached since is left alone), any mode when None.
    A missing interface or program is not an error."""
    _bpf_check(lib.pyscan_xdp__detach(ifindex, _xdp_mode(mode), expected_prog_id))


def read_attached_percpu(ifindex: int, map_name: str, key: int = 0,
                         prog_id: int = 0) -> tuple[int, ...]:
    """Per-CPU sums of ``map_name`` of the program attached to ``ifindex`` (or ``prog_id``),
    from any process: the program need not have been loaded by this one."""
    map_fd = _bpf_check(lib.pyscan_xdp__attached_map_fd(ifindex, prog_id, map_name.encode()))
    try:
        return bpf_percpu_sum(map_fd, key)
    finally:
        os.close(map_fd)


def reset_attached_percpu(ifindex: int, map_name: str, key: int = 0, prog_id: int = 0) -> None:
    """Zero entry ``key`` of per-CPU map ``map_name`` of the program attached to ``ifindex``
    on every CPU (a benchmark starting from a clean count)."""
    map_fd = _bpf_check(lib.pyscan_xdp__attached_map_fd(ifindex, prog_id, map_name.encode()))
    try:
        _, value_size, _, _ = bpf_map_sizes(map_fd)
        stride = (value_size + 7) // 8 * 8
        bpf_map_update(map_fd, key, bytes(stride * bpf_possible_cpus()))
    finally:
        os.close(map_fd)


class BpfObject(CHandle[BpfObjectPtr]):
    """One BPF object file: ``set_rodata`` -> ``load`` -> ``attach_xdp`` -> maps -> ``close``.

    ``attach_xdp(persist=False)`` makes a bpf_link (gone with ``close()`` or the process);
    ``persist=True`` attaches through netlink and outlives the process until ``detach()`` or
    ``xdp_detach(ifindex, expected_prog_id=...)``. Fds returned belong to the object.
    """

    _kind = "BPF object"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        handle = lib.pyscan_bpf_object__open(self.path.encode())
        if is_null(handle):
            _bpf_check(-(ffi.errno or 22))
        self._handle = BpfObjectPtr(handle)
        self.attached_ifindex = 0
        self.attached_prog_id = 0

    def _closed_message(self) -> str:
        return f"BPF object {self.path} is closed"

    def set_initial_value(self, map_name: str, data: bytes) -> None:
        """Initial contents of a global-data map (``.rodata``, ``.data``), before ``load``."""
        _bpf_check(lib.pyscan_bpf_object__set_initial_value(self._live(), map_name.encode(),
                                                            data, len(data)))

    def set_rodata(self, data: bytes) -> None:
        """The whole ``.rodata`` (``const volatile`` globals, in declaration order)."""
        self.set_initial_value(".rodata", data)

    def load(self) -> BpfObject:
        _bpf_check(lib.pyscan_bpf_object__load(self._live()))
        return self

    def prog_fd(self, prog: str | None = None) -> int:
        """Fd of program ``prog`` (its function name), or of the only program when None."""
        return _bpf_check(lib.pyscan_bpf_object__prog_fd(
            self._live(), prog.encode() if prog else ffi.NULL))

    def map_fd(self, map_name: str) -> int:
        return _bpf_check(lib.pyscan_bpf_object__map_fd(self._live(), map_name.encode()))

    def attach_xdp(self, ifindex: int, mode: str = "native", persist: bool = False,
                   prog: str | None = None) -> int:
        """Attach program ``prog`` (default: the only one) to ``ifindex`` of the calling
        thread's netns; returns the kernel's program id."""
        _bpf_check(lib.pyscan_bpf_object__attach_xdp(
            self._live(), prog.encode() if prog else ffi.NULL, ifindex, _xdp_mode(mode),
            1 if persist else 0))
        self.attached_ifindex = ifindex
        self.attached_prog_id = xdp_attached_prog_id(ifindex, mode)
        return self.attached_prog_id

    def detach(self) -> None:
        """Remove this object's attachment (link or netlink); no-op when not attached."""
        _bpf_check(lib.pyscan_bpf_object__detach(self._live()))
        self.attached_ifindex = 0
        self.attached_prog_id = 0

    def map_update(self, map_name: str, key: int | bytes, value: bytes, flags: int = 0) -> None:
        bpf_map_update(self.map_fd(map_name), key, value, flags)

    def map_lookup(self, map_name: str, key: int | bytes) -> bytes:
        return bpf_map_lookup(self.map_fd(map_name), key)

    def percpu_sum(self, map_name: str, key: int = 0) -> tuple[int, ...]:
        return bpf_percpu_sum(self.map_fd(map_name), key)

    def test_run(self, prog: str | None, data: bytes, repeat: int = 1) -> tuple[int, int, bytes]:
        """BPF_PROG_TEST_RUN: (retval, mean duration in ns, frame as the program left it)."""
        return bpf_test_run(self.prog_fd(prog), data, repeat)

    @staticmethod
    def _destroy(handle: BpfObjectPtr) -> None:
        # close(): a bpf_link attachment ends, a persistent one stays
        lib.pyscan_bpf_object__close(handle)
