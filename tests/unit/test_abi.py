"""Every struct that crosses a language boundary states its size in C.

cffi already refuses a struct whose .cdef size or field offsets differ from what the C
compiler says (the first use of the type raises), so comparing sizes again here could not
fail. What cffi cannot see is a struct whose layout changed on both sides at once, or one
shared with BPF programs: the ``_Static_assert(sizeof(struct X) == N)`` next to it is what
makes such a change deliberate. This lint checks that every struct Python sees (declared in a
``.cdef``) and every struct the BPF programs share (defined in ``pyscan/bpf/*.h``) has one.
"""

from __future__ import annotations

import re
from pathlib import Path

NATIVE_DIR = Path(__file__).resolve().parents[2] / "pyscan" / "native"
BPF_DIR = NATIVE_DIR.parent / "bpf"

SIZE_ASSERT = re.compile(r"_Static_assert\(\s*sizeof\(struct (\w+)\)")
STRUCT_BODY = re.compile(r"^struct (\w+) \{", re.M)


def size_asserted() -> set[str]:
    return {name for folder in (NATIVE_DIR, BPF_DIR) for header in folder.glob("*.h")
            for name in SIZE_ASSERT.findall(header.read_text())}


def shared_structs() -> dict[str, str]:
    """Struct name -> the file that declares it with a body, for .cdef files and BPF headers."""
    files = [*sorted(NATIVE_DIR.glob("*.cdef")), *sorted(BPF_DIR.glob("*.h"))]
    return {name: path.name for path in files for name in STRUCT_BODY.findall(path.read_text())}


def test_the_lint_finds_the_shared_structs() -> None:
    # a broken pattern would find nothing and pass the test below vacuously
    structs = shared_structs()
    assert {"pyscan_ring_stats", "pyscan_engine_config", "pyscan_reply_filter_config"} \
        <= structs.keys()


def test_every_shared_struct_has_a_size_assertion() -> None:
    asserted = size_asserted()
    missing = sorted(f"{name} ({where})" for name, where in shared_structs().items()
                     if name not in asserted)
    assert not missing, f"structs without _Static_assert(sizeof(struct ...)): {missing}"
