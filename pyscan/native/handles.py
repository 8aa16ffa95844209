"""One way of owning a C handle, used by every wrapper that holds one (engine, rings, BPF
objects, reply filter, af-xdp socket set, pfring-zc cluster, target set).

Invariant: a wrapper holds its pointer in ``_handle`` until ``close()``, which sets it to
None *before* calling C's destroy function, so the pointer is freed exactly once even when
close() is re-entered (``__del__`` during close, a second ``with`` exit). Every method that
passes the pointer to C takes it from ``_live()``, which raises ValueError on a closed
wrapper: C is never handed NULL or a freed pointer. ``__del__`` is only a safety net for a
wrapper nobody closed; code that owns one closes it (or uses ``with``).
"""

from __future__ import annotations

from typing import ClassVar, Generic, Self, TypeVar

from pyscan.native._lib import CData

H = TypeVar("H", bound=CData)


class CHandle(Generic[H]):
    """Owns one C pointer of kind ``H``; subclasses name it (``_kind``) and free it
    (``_destroy``)."""

    _kind: ClassVar[str] = "C handle"
    _handle: H | None = None   # class default: __del__ is safe when __init__ raised early

    def _destroy(self, handle: H) -> None:
        raise NotImplementedError

    def _closed_message(self) -> str:
        return f"{self._kind} is closed"

    def _live(self) -> H:
        """The pointer, for a C call; ValueError once closed."""
        if self._handle is None:
            raise ValueError(self._closed_message())
        return self._handle

    @property
    def closed(self) -> bool:
        return self._handle is None

    def close(self) -> None:
        """Free the handle; idempotent."""
        handle, self._handle = self._handle, None
        if handle is not None:
            self._destroy(handle)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
