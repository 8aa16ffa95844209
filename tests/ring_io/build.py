"""How the tests build and call ring_io.c, the test-only frame I/O over a driver ring's ops.

``RingIo(directory)`` compiles the library with gcc into ``directory`` and loads it with cffi
(ABI mode); ``send`` and ``recv`` take the ``pyscan.native.Ring`` objects the drivers hand
out. Production code (pyscan._native) does not contain these functions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from cffi import FFI

from pyscan.native import Ring, ffi, ring_error

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "ring_io.c"
NATIVE_DIR = HERE.parent.parent / "pyscan" / "native"
MAX_FRAME = 2048

CDEF = """
int ring_io_send(void *ring, const uint8_t *frames, const uint32_t *lens, uint32_t n,
                 int flush_timeout_ms);
int ring_io_recv(void *ring, uint8_t *buf, uint32_t cap, uint32_t *lens, uint32_t max,
                 int timeout_ms);
"""


def build_ring_io(directory: Path) -> Path:
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise RuntimeError("no C compiler (gcc or cc) to build tests/ring_io")
    target = Path(directory) / "libring_io.so"
    subprocess.run(
        [compiler, "-O2", "-g", "-std=gnu11", "-Wall", "-Wextra", "-Werror",
         "-Wno-unused-parameter", "-shared", "-fPIC", "-fvisibility=hidden",
         f"-I{NATIVE_DIR}", str(SOURCE), "-o", str(target)],
        check=True, capture_output=True, text=True,
    )
    return target


class RingIo:
    """Frame I/O through a ring's ops, without the engine; errors raise OSError."""

    def __init__(self, directory: Path) -> None:
        self._ffi = FFI()
        self._ffi.cdef(CDEF)
        self._lib = self._ffi.dlopen(str(build_ring_io(directory)))

    def _pointer(self, ring: Ring) -> object:
        # the ring's pointer belongs to pyscan's ffi; hand its address to this library's
        return self._ffi.cast("void *", int(ffi.cast("uintptr_t", ring.ptr)))

    def send(self, ring: Ring, frames: list[bytes], flush_timeout_ms: int = 2000) -> int:
        """Send frames (reserve, copy, submit, kick; then flush); returns how many."""
        lens = self._ffi.new("uint32_t[]", [len(f) for f in frames] or [0])
        rc = self._lib.ring_io_send(self._pointer(ring), b"".join(frames), lens, len(frames),
                                    flush_timeout_ms)
        if rc < 0:
            raise OSError(-rc, f"sending {len(frames)} frames failed: {os.strerror(-rc)}"
                               f" ({ring_error(ring)})")
        return int(rc)

    def recv(self, ring: Ring, max_frames: int = 64, timeout_ms: int = 100) -> list[bytes]:
        """Up to max_frames frames, waiting up to timeout_ms for the first."""
        cap = MAX_FRAME * max_frames
        buf = self._ffi.new("uint8_t[]", cap)
        lens = self._ffi.new("uint32_t[]", max_frames)
        rc = self._lib.ring_io_recv(self._pointer(ring), buf, cap, lens, max_frames, timeout_ms)
        if rc < 0:
            raise OSError(-rc, f"receiving failed: {os.strerror(-rc)}")
        data, frames, offset = self._ffi.buffer(buf, cap), [], 0
        for i in range(rc):
            frames.append(bytes(data[offset:offset + lens[i]]))
            offset += lens[i]
        return frames
