"""One way of owning a C handle, used by every wrapper that holds one (engine, rings, BPF
objects, reply filter, af-xdp socket set, pfring-zc cluster, target set).

Invariant: a wrapper holds its pointer in ``_handle`` until ``close()``, which sets it to
None *before* calling C's destroy function, so the pointer is freed exactly once even when
close() is re-entered (``__del__`` during close, a second ``with`` exit). Every method that
passes the pointer to C takes it from ``_live()``, which raises ValueError on a closed
wrapper: C is never handed NULL or a freed pointer. ``__del__`` is only a safety net for a
wrapper nobody closed; code that owns one closes it (or uses ``with``).

Calls that block in C on another thread (the engine's TX and RX loops) take the pointer with
``_using()`` instead: it counts the call, and a ``close()`` while calls are in flight first
asks them to end (``_request_stop``, which must not block) and leaves the destroy to the last
call on its way out. So no thread can be between fetching the pointer and entering C when
the memory goes, and close() never waits on a thread (a Ctrl-C cannot leave it half-done).
The C side guards the same way (ring.h and engine_internal.h lifetime): destroy waits for
threads still inside.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import ClassVar, Generic, Self, TypeVar

from pyscan.native._lib import CData

H = TypeVar("H", bound=CData)

# One lock for every handle: taken only around counter updates, never across a C call.
# Reentrant, because __del__ (garbage collection) may run close() on a thread holding it.
_CALLS_LOCK = threading.RLock()


class CHandle(Generic[H]):
    """Owns one C pointer of kind ``H``; subclasses name it (``_kind``) and free it
    (``_destroy``)."""

    _kind: ClassVar[str] = "C handle"
    _handle: H | None = None   # class default: __del__ is safe when __init__ raised early
    _calls: int = 0            # _using() calls in flight
    _orphan: H | None = None   # closed while calls were in flight: the last one frees it

    def _destroy(self, handle: H) -> None:
        raise NotImplementedError

    def _request_stop(self, handle: H) -> None:
        """Ask calls in flight on ``handle`` to return soon; must not block. Default: none."""

    def _closed_message(self) -> str:
        return f"{self._kind} is closed"

    def _live(self) -> H:
        """The pointer, for a C call; ValueError once closed."""
        if self._handle is None:
            raise ValueError(self._closed_message())
        return self._handle

    @contextlib.contextmanager
    def _using(self) -> Iterator[H]:
        """The pointer for a long C call that may outlive a close() on another thread."""
        with _CALLS_LOCK:
            handle = self._live()
            self._calls += 1
        try:
            yield handle
        finally:
            with _CALLS_LOCK:
                self._calls -= 1
                orphan = self._orphan if self._calls == 0 else None
                if orphan is not None:
                    self._orphan = None
            if orphan is not None:
                self._destroy(orphan)

    @property
    def closed(self) -> bool:
        return self._handle is None

    def close(self) -> None:
        """Free the handle (now, or when the last call in flight returns); idempotent."""
        with _CALLS_LOCK:
            handle, self._handle = self._handle, None
            if handle is not None and self._calls:
                self._orphan, handle = handle, None
                self._request_stop(self._orphan)
        if handle is not None:
            self._destroy(handle)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
