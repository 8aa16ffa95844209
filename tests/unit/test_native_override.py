"""PYSCAN_NATIVE: the hook through which ``make test-sanitize`` runs the unit tests on the
ASan + UBSan build of the extension (pyscan/native/_lib.py)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(path: str) -> subprocess.CompletedProcess[str]:
    code = "import sys, pyscan.native; print(sys.modules['pyscan._native'].__file__)"
    env = {**os.environ, "PYSCAN_NATIVE": path}
    env.pop("LD_PRELOAD", None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=env)


def test_override_loads_the_named_build() -> None:
    default = next((ROOT / "pyscan").glob("_native*.so"))
    loaded = _load(str(default))
    assert loaded.returncode == 0, loaded.stderr
    assert Path(loaded.stdout.strip()) == default


def test_override_that_is_not_a_module_fails_naming_it(tmp_path: Path) -> None:
    bogus = tmp_path / "_native.abi3.so"
    bogus.write_bytes(b"not an ELF file")
    loaded = _load(str(bogus))
    assert loaded.returncode != 0 and "ImportError" in loaded.stderr


@pytest.mark.skipif(not os.environ.get("PYSCAN_NATIVE"), reason="make test-sanitize only")
def test_sanitizer_run_uses_the_sanitizer_build() -> None:
    import pyscan.native  # noqa: F401  (loads the extension)

    module = sys.modules["pyscan._native"]
    assert module.__file__ == os.path.abspath(os.environ["PYSCAN_NATIVE"])
    assert hasattr(ctypes.CDLL(module.__file__), "__asan_report_load1"), \
        "the extension in use was not built with -fsanitize=address"
