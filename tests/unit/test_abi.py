"""Every struct that crosses between C and Python has the same size on both sides.

The C side states sizes with _Static_assert(sizeof(struct X) == N) in the headers; this test
reads those assertions and compares each with what cffi computed from the .cdef, so a field
added to a header but not to its .cdef (or the other way round) fails here, not at run time.
"""

from __future__ import annotations

import re
from pathlib import Path

from pyscan.native import ffi

NATIVE_DIR = Path(__file__).resolve().parents[2] / "pyscan" / "native"
HEADER_DIRS = (NATIVE_DIR, NATIVE_DIR.parent / "bpf")

# Structs this test must find, so it can never pass by finding nothing.
REQUIRED = {
    "pyscan_ring_stats": 64,
    "pyscan_permute": 80,
    "pyscan_ip_range": 8,
    "pyscan_targetset": 64,
    "pyscan_syn_template": 72,
    "pyscan_ratelimit": 40,
}

ASSERT = re.compile(r"_Static_assert\(\s*sizeof\(struct (\w+)\)\s*==\s*([^,]+),", re.S)
DEFINE = re.compile(r"^#define\s+(\w+)\s+\(?(\d+)(?:ULL|UL|U)?\)?\s*(?:/\*.*)?$", re.M)
CDEF_STRUCT = re.compile(r"^struct (\w+) \{", re.M)


def _macros() -> dict[str, int]:
    values: dict[str, int] = {}
    for folder in HEADER_DIRS:
        for header in folder.glob("*.h"):
            values.update((name, int(v)) for name, v in DEFINE.findall(header.read_text()))
    return values


def _evaluate(expression: str, macros: dict[str, int]) -> int:
    arithmetic = re.sub(r"[A-Za-z_]\w*", lambda name: str(macros[name.group(0)]), expression)
    assert re.fullmatch(r"[\d\s()+*/-]+", arithmetic), expression
    return int(eval(arithmetic))


def asserted_sizes() -> dict[str, int]:
    macros = _macros()
    sizes: dict[str, int] = {}
    for folder in HEADER_DIRS:
        for header in sorted(folder.glob("*.h")):
            for name, expression in ASSERT.findall(header.read_text()):
                sizes[name] = _evaluate(expression, macros)
    return sizes


def cdef_structs() -> set[str]:
    return {name for cdef in NATIVE_DIR.glob("*.cdef")
            for name in CDEF_STRUCT.findall(cdef.read_text())}


def test_required_structs_are_asserted_with_the_expected_sizes() -> None:
    sizes = asserted_sizes()
    for name, size in REQUIRED.items():
        assert sizes.get(name) == size, name


def test_python_sees_every_asserted_struct_at_its_c_size() -> None:
    sizes = asserted_sizes()
    checked = 0
    for name in sorted(cdef_structs() & sizes.keys()):
        assert ffi.sizeof(f"struct {name}") == sizes[name], name
        checked += 1
    assert checked >= len(REQUIRED)


def test_every_struct_python_sees_has_a_size_assertion() -> None:
    missing = sorted(cdef_structs() - asserted_sizes().keys())
    assert not missing, f"structs in .cdef files without _Static_assert(sizeof...): {missing}"


def test_field_offsets_match_for_the_core_structs() -> None:
    """Same size could still hide swapped fields; the offsets Python reads must be C's."""
    assert ffi.offsetof("struct pyscan_targetset", "total") == 16
    assert ffi.offsetof("struct pyscan_targetset", "ports") == 40
    assert ffi.offsetof("struct pyscan_syn_template", "ip_sum") == 64
    assert ffi.offsetof("struct pyscan_permute", "round_key") == 32
    assert ffi.offsetof("struct pyscan_ratelimit", "started") == 38
