"""The one Python module that touches the compiled data plane (``pyscan._native``).

Everything else in pyscan calls the typed wrappers below; nothing else imports ``lib``.
Sections are per area (core engine, drivers, BPF) so each can grow without touching the others.
"""

from __future__ import annotations

from pyscan._native import ffi, lib  # type: ignore[import-not-found]

__all__ = ["RING_STATS_FIELDS", "ffi", "ring_error", "ring_stats"]

RING_STATS_FIELDS = (
    "tx_frames", "tx_bytes", "tx_retries", "tx_errors",
    "rx_frames", "rx_bytes", "rx_drops", "rx_filtered",
)


def ring_stats(ring: object) -> dict[str, int]:
    """Counters of one driver ring (see ring.h)."""
    out = ffi.new("struct pyscan_ring_stats *")
    lib.pyscan_ring__stats(ring, out)
    return {name: int(getattr(out, name)) for name in RING_STATS_FIELDS}


def ring_error(ring: object) -> str:
    return ffi.string(lib.pyscan_ring__error(ring)).decode(errors="replace")


# --- core: permutation, cookie, template, rate limiter, engine (tx/rx loops) ----------------


# --- drivers: null, af_packet ---------------------------------------------------------------


# --- BPF objects: load, attach, maps (lab sink, reply filter) --------------------------------


# --- driver: af_xdp -------------------------------------------------------------------------


# --- driver: pfring_zc ----------------------------------------------------------------------
