"""The pfring-zc driver (drv_pfring_zc.h).

libpfring.so is dlopen'd by C (drv_pfring_zc.c), never linked: probing a path that does not
exist returns a reason, never raises. One cluster per scan; rings hold references on it, so
rings and cluster may be closed in any order (close_ring / PfringZcCluster.close).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

from pyscan.native._lib import CData, PfringZcClusterPtr, RingPtr, c_text, ffi, is_null, lib
from pyscan.native._values import check_int as _check_int
from pyscan.native.handles import CHandle
from pyscan.native.rings import Ring

PFRING_ZC_TX_HANDLES = int(lib.PYSCAN_PFRING_ZC_TX_HANDLES)
PFRING_ZC_RX_HANDLES = int(lib.PYSCAN_PFRING_ZC_RX_HANDLES)
PFRING_ZC_MAX_RX_QUEUES = int(lib.PYSCAN_PFRING_ZC_MAX_RX_QUEUES)


class PfringZcProbe(NamedTuple):
    """What loading one libpfring candidate found (nothing stays loaded)."""

    library: str         # the name or path that was tried
    loaded: bool         # dlopen worked and every required pfring_zc_* symbol is exported
    loaded_from: str     # the file the loader mapped ("" when not loaded)
    version: str         # pfring_zc_version()
    missing_symbol: str  # first required symbol the library lacks
    error: str           # dlerror() text when it could not be loaded
    total_memory: int    # bytes a cluster of the probed size needs (0 = library cannot say)


def pfring_zc_probe(library: str, buffer_len: int = 1536, num_buffers: int = 0) -> PfringZcProbe:
    out = ffi.new("struct pyscan_pfring_zc_probe *")
    rc = lib.pyscan_pfring_zc__probe(library.encode(), buffer_len, num_buffers, out)
    return PfringZcProbe(library=library, loaded=rc == 0,
                         loaded_from=c_text(out.loaded_from), version=c_text(out.version),
                         missing_symbol=c_text(out.missing), error=c_text(out.error),
                         total_memory=int(out.total_memory))


def _pfring_zc_failed(what: str, err: CData) -> OSError:
    code = ffi.errno or 5
    return OSError(code, c_text(err) or f"{what}: {os.strerror(code)}")


def pfring_zc_queue_stats(ring: Ring) -> dict[str, int]:
    """pfring_zc_stats() summed over the queues of a pfring-zc ring."""
    out = ffi.new("struct pyscan_pfring_zc_stats *")
    lib.pyscan_pfring_zc__queue_stats(ring.ptr, out)
    return {"recv": int(out.recv), "sent": int(out.sent), "drop": int(out.drop),
            "queues": int(out.queues)}


class PfringZcCluster(CHandle[PfringZcClusterPtr]):
    """A ZC cluster created by the library at ``library``; raises OSError (errno + message).
    close() drops this reference; the cluster goes when its rings are closed too."""

    _kind = "pfring-zc cluster"

    def __init__(self, library: str, cluster_id: int, buffer_len: int, num_buffers: int,
                 hugepages_mount: str | None = None, numa_node: int = 0) -> None:
        _check_int("cluster id", cluster_id, 0, 2**32 - 1)
        _check_int("buffer length", buffer_len, 64, 65535)
        _check_int("number of buffers", num_buffers, 1, 2**32 - 1)
        _check_int("NUMA node", numa_node, 0, 1023)
        err = ffi.new("char[256]")
        raw = lib.pyscan_pfring_zc__create(library.encode(), cluster_id, buffer_len,
                                           num_buffers, numa_node,
                                           (hugepages_mount or "").encode(), err, len(err))
        if is_null(raw):
            raise _pfring_zc_failed("pfring_zc_create_cluster", err)
        self._handle = PfringZcClusterPtr(raw)

    @property
    def version(self) -> str:
        return c_text(lib.pyscan_pfring_zc__version(self._live()))

    def open_tx(self, device: str) -> Ring:
        """A TX ring on the tx_only device queue ``device`` ("zc:eth1" or "zc:eth1@2")."""
        err = ffi.new("char[256]")
        ring = lib.pyscan_pfring_zc__open_tx(self._live(), device.encode(), err, len(err))
        if is_null(ring):
            raise _pfring_zc_failed(f"pfring_zc_open_device({device})", err)
        return Ring(RingPtr(ring), f"pfring-zc TX ring {device}")

    def open_rx(self, devices: Sequence[str]) -> Ring:
        """One RX ring reading the rx_only queues ``devices`` in turn."""
        if not 1 <= len(devices) <= PFRING_ZC_MAX_RX_QUEUES:
            raise ValueError(f"{len(devices)} RX queues: accepted 1 to {PFRING_ZC_MAX_RX_QUEUES}")
        names = [ffi.new("char[]", d.encode()) for d in devices]
        array = ffi.new("const char *[]", names)
        err = ffi.new("char[256]")
        ring = lib.pyscan_pfring_zc__open_rx(self._live(), array, len(names), err, len(err))
        if is_null(ring):
            raise _pfring_zc_failed(f"pfring_zc_open_device({', '.join(devices)})", err)
        return Ring(RingPtr(ring), "pfring-zc RX ring")

    def licence(self, ring: Ring | None = None) -> tuple[int, int]:
        """(1 licensed / 0 demo mode / -1 unknown, expiration epoch or 0)."""
        expiration = ffi.new("uint32_t *")
        state = lib.pyscan_pfring_zc__licence(self._live(), ring.ptr if ring is not None
                                              else ffi.NULL, expiration)
        return int(state), int(expiration[0])

    @staticmethod
    def _destroy(handle: PfringZcClusterPtr) -> None:
        lib.pyscan_pfring_zc__release(handle)
