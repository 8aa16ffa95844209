"""The XDP programs pyscan ships, compiled by setup.py from ``*.bpf.c`` next to this file."""

from __future__ import annotations

from pathlib import Path

__all__ = ["object_path"]

_HERE = Path(__file__).resolve().parent


def object_path(name: str) -> Path:
    """Path of the compiled program ``name`` (e.g. ``"sink"`` -> ``.../sink.bpf.o``)."""
    path = _HERE / f"{name}.bpf.o"
    if not path.exists():
        available = sorted(p.name.removesuffix(".bpf.o") for p in _HERE.glob("*.bpf.o"))
        source = _HERE / f"{name}.bpf.c"
        if source.exists():
            raise FileNotFoundError(
                f"BPF object {path} is not built; run `python3 setup.py build_ext --inplace`"
            )
        raise FileNotFoundError(
            f"no BPF program named {name!r} (available: {', '.join(available) or 'none'})"
        )
    return path
