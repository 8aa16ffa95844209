"""cffi builder (API mode, out of line) for the C data plane.

Every ``*.c`` in this folder is compiled into ``pyscan._native``. Every ``*.cdef`` file is
one area's declarations for Python; its same-named ``.h`` is what the C side includes. Adding
a concept is adding files, never editing this builder.

PYSCAN_SANITIZE=1 builds it with ASan + UBSan (every finding fatal) and -Werror, for
``make test-sanitize``, which builds into build/sanitize and loads it through PYSCAN_NATIVE
(pyscan/native/_lib.py) with libasan preloaded.
"""

import os
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
BPF_DIR = HERE.parent / "bpf"

SANITIZE = os.environ.get("PYSCAN_SANITIZE") == "1"
SANITIZER_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                   "-fno-omit-frame-pointer", "-g", "-O1", "-Werror"] if SANITIZE else []

cdef_files = sorted(HERE.glob("*.cdef"))
ffibuilder = FFI()
ffibuilder.cdef("\n".join(p.read_text() for p in cdef_files))
ffibuilder.set_source(
    "pyscan._native",
    "\n".join(f'#include "{p.stem}.h"' for p in cdef_files),
    sources=[str(p.relative_to(HERE.parent.parent)) for p in sorted(HERE.glob("*.c"))],
    include_dirs=[str(HERE), str(BPF_DIR)],
    # headers hold the inline hot paths: a header-only change must rebuild the module
    depends=[str(p.relative_to(HERE.parent.parent))
             for p in [*HERE.glob("*.h"), *BPF_DIR.glob("*.h")]],
    # roaring: Debian's libroaring-dev (CRoaring), the RX thread's reported-set (dedup.h)
    libraries=["xdp", "bpf", "roaring", "dl", "pthread"],
    extra_compile_args=["-O3", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                        "-fno-strict-aliasing", "-D_GNU_SOURCE", *SANITIZER_FLAGS],
    extra_link_args=["-fsanitize=address,undefined"] if SANITIZE else [],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
