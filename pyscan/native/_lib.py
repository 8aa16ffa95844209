"""The one place that imports the compiled data plane (``pyscan._native``).

Every other module of this package takes ``ffi`` and ``lib`` from here, and nothing outside
the package imports either: C is reached only through the typed wrappers.

The handle kinds below are distinct types for a type checker and plain cffi pointers at run
time, so an engine pointer cannot be handed to a function that wants a ring.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import TYPE_CHECKING, NewType


def _load_override(path: str) -> None:
    """PYSCAN_NATIVE=/path/to/_native.abi3.so: use that build of the extension (the sanitizer
    build of ``make test-sanitize``) instead of the one next to the package."""
    spec = importlib.util.spec_from_file_location("pyscan._native", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"PYSCAN_NATIVE={path!r} is not a loadable extension module")
    module = importlib.util.module_from_spec(spec)
    sys.modules["pyscan._native"] = module
    spec.loader.exec_module(module)


if os.environ.get("PYSCAN_NATIVE") and "pyscan._native" not in sys.modules:
    _load_override(os.environ["PYSCAN_NATIVE"])

from pyscan._native import ffi, lib  # type: ignore[import-not-found]  # noqa: E402

if TYPE_CHECKING:
    class CData:
        """A cffi pointer (``ffi.CData``) as a type checker sees it: opaque."""
else:
    CData = ffi.CData

EnginePtr = NewType("EnginePtr", CData)                  # struct pyscan_engine *
RingPtr = NewType("RingPtr", CData)                      # struct pyscan_ring *
BpfObjectPtr = NewType("BpfObjectPtr", CData)            # pyscan_bpf_object *
ReplyFilterPtr = NewType("ReplyFilterPtr", CData)        # struct pyscan_replyfilter *
AfXdpPtr = NewType("AfXdpPtr", CData)                    # struct pyscan_afxdp *
PfringZcClusterPtr = NewType("PfringZcClusterPtr", CData)  # pyscan_pfring_zc_cluster *
TargetSetPtr = NewType("TargetSetPtr", CData)            # struct pyscan_targetset *


def c_text(field: CData) -> str:
    """A NUL-terminated C string (char array or char *) as text; undecodable bytes replaced."""
    return str(ffi.string(field).decode(errors="replace"))


def is_null(pointer: CData) -> bool:
    return bool(pointer == ffi.NULL)


__all__ = ["AfXdpPtr", "BpfObjectPtr", "CData", "EnginePtr", "PfringZcClusterPtr",
           "ReplyFilterPtr", "RingPtr", "TargetSetPtr", "c_text", "ffi", "is_null", "lib"]
