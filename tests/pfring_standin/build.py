"""How the tests build the stand-in libpfring.so (pfring_standin.c) with gcc.

Tests call ``build_standin`` from a session-scoped fixture with a pytest tmp directory; the
driver then loads the result through its ordinary dlopen path (driver option ``lib`` or
PYSCAN_LIBPFRING), exactly as it would load ntop's library.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "pfring_standin.c"


def build_standin(directory: Path, name: str = "libpfring.so",
                  defines: Sequence[str] = ()) -> Path:
    """Compile the stand-in into directory/name; ``defines`` select test variants
    (STANDIN_HIDE_RECV_BURST, STANDIN_IMPERSONATE_REAL)."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise RuntimeError("no C compiler (gcc or cc) to build the PF_RING stand-in")
    target = Path(directory) / name
    subprocess.run(
        [compiler, "-O2", "-g", "-std=gnu11", "-Wall", "-Wextra", "-Werror",
         "-Wno-unused-parameter", "-shared", "-fPIC", "-fvisibility=hidden", "-pthread",
         *[f"-D{d}" for d in defines], str(SOURCE), "-o", str(target)],
        check=True, capture_output=True, text=True,
    )
    return target
