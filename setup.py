"""Only what pyproject.toml cannot say: the cffi extension and the BPF objects."""

import platform
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
BPF_DIR = HERE / "pyscan" / "bpf"


def build_bpf_objects() -> None:
    """Compile every pyscan/bpf/*.bpf.c into a .bpf.o next to it (shipped as package data)."""
    # asm/types.h lives under the multiarch include directory on Debian
    multiarch = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}.get(
        platform.machine(), "")
    for source in sorted(BPF_DIR.glob("*.bpf.c")):
        target = source.with_suffix(".o")
        if target.exists() and target.stat().st_mtime >= max(
            p.stat().st_mtime for p in [source, *BPF_DIR.glob("*.h")]
        ):
            continue
        subprocess.run(
            ["clang", "-O2", "-g", "-Wall", "-Werror", "-target", "bpf",
             f"-I{BPF_DIR}", f"-I/usr/include/{multiarch}",
             "-c", str(source), "-o", str(target)],
            check=True,
        )


class BuildPyWithBpf(build_py):
    def run(self) -> None:
        build_bpf_objects()
        super().run()


class BuildExtWithBpf(build_ext):
    def run(self) -> None:
        build_bpf_objects()
        super().run()


setup(
    cffi_modules=["pyscan/native/_build.py:ffibuilder"],
    cmdclass={"build_py": BuildPyWithBpf, "build_ext": BuildExtWithBpf},
)
