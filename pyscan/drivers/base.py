"""The driver contract (docs/internals.md): a ``Driver`` opens a ``DriverSession`` of rings
for one scan; the native engine runs on those rings.

Drivers answer ``available()`` without raising, so ``import pyscan`` and ``pyscan drivers``
work on a machine without root, libxdp or libpfring. ``open()`` raises ``DriverError`` with
a one-line reason (``DriverOptionError`` for a bad ``-O`` value); a session releases
everything in ``close()``, on every path. Each driver module also declares one
``DriverDescriptor``: what pyscan knows about it before opening it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Literal, Protocol, Self, runtime_checkable

from pyscan.errors import DriverError, DriverOptionError

if TYPE_CHECKING:
    from pyscan.native import Ring  # the native layer loads only when a driver opens

__all__ = ["Driver", "DriverDescriptor", "DriverError", "DriverOption", "DriverOptionError",
           "DriverRequest", "DriverSession", "RingSession", "close_rings", "native_built",
           "require_tx_threads"]


@dataclass(frozen=True)
class DriverRequest:
    interface: str
    ifindex: int
    tx_threads: int
    want_rx: bool
    source_ip: IPv4Address | IPv6Address  # the targets' family
    source_ports: range
    cookie_key: bytes
    options: Mapping[str, str] = field(default_factory=dict)  # driver-specific
    probe_id: int = 0  # the scan's probe module (pyscan.probes): selects in-kernel matching
    # every probe module of the scan (a mixed scan has several); () = (probe_id,)
    probe_ids: tuple[int, ...] = ()
    # (source address the host does not own, the interface's MAC): ARP requests for it (an
    # IPv6 address: its neighbour solicitations) must be answered - in the driver's XDP filter
    # (answers_arp) or by the RX thread's responder, which needs the driver to deliver them
    # (af-packet's filter lets them through)
    arp_answer: tuple[IPv4Address | IPv6Address, str] | None = None


@runtime_checkable
class DriverSession(Protocol):
    """Rings of one scan; a context manager whose ``close()`` is idempotent."""

    @property
    def tx_rings(self) -> Sequence[Ring]: ...     # one per TX thread

    @property
    def rx_ring(self) -> Ring | None: ...

    description: str             # one line: mode chosen and why

    def stats(self) -> dict[str, int]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class Driver(Protocol):
    name: str

    def available(self) -> tuple[bool, str]: ...

    def open(self, request: DriverRequest) -> DriverSession: ...


OptionKind = Literal["int", "power-of-two", "choice", "text"]


@dataclass(frozen=True)
class DriverOption:
    """One ``-O key=value`` a driver accepts. ``default`` None = computed when the driver
    opens (from the interface, the MTU...); ``help`` says from what."""

    name: str                      # canonical spelling; "-" and "_" are interchangeable
    kind: OptionKind
    help: str
    default: int | str | None = None
    low: int = 0                   # int / power-of-two bounds, inclusive
    high: int = 0
    choices: tuple[str, ...] = ()  # kind "choice"

    @property
    def key(self) -> str:
        return normal_key(self.name)

    def accepted(self) -> str:
        """What the value may be, as the error and the help text say it."""
        if self.kind == "int":
            return f"integers {self.low}..{self.high}"
        if self.kind == "power-of-two":
            return f"a power of two from {self.low} to {self.high}"
        if self.kind == "choice":
            return " | ".join(self.choices)
        return "any text"

    def parse(self, spelled: str, raw: str) -> int | str:
        """The value of ``raw``, or DriverOptionError naming it as the user spelled it."""
        if self.kind == "choice":
            if raw not in self.choices:
                raise DriverOptionError(f"driver option {spelled}={raw!r} is invalid: "
                                        f"accepted {self.accepted()}")
            return raw
        if self.kind == "text":
            return raw
        try:
            value = int(raw, 0)
        except ValueError:
            value = None
        if value is None or not self.low <= value <= self.high:
            raise DriverOptionError(f"driver option {spelled}={raw!r} is invalid: accepted "
                                    f"integers {self.low}..{self.high}")
        if self.kind == "power-of-two" and value & (value - 1):
            raise DriverOptionError(f"driver option {spelled}={value} is invalid: accepted "
                                    f"{self.accepted()}")
        return value


def normal_key(name: str) -> str:
    return name.replace("-", "_")


@dataclass(frozen=True)
class DriverDescriptor:
    """Everything pyscan knows about a driver before opening it; the registry's row.

    Config validation, privileges, the automatic choice and its fallback, the engine's batch
    size, ``pyscan drivers`` and the CLI help are all read from here, never from the name.
    """

    name: str
    summary: str                               # one line for --help and `pyscan drivers`
    factory: Callable[[], Driver]              # builds the driver (imports no native code)
    # {capability: why}; CAP_BPF may be replaced by CAP_SYS_ADMIN (privileges.py)
    capabilities: Mapping[str, str] = field(default_factory=dict)
    options: tuple[DriverOption, ...] = ()
    sends: bool = True                         # False: a dry run (no route, no firewall)
    batch_size: int = 64                       # frames per reserve/submit in the TX loop
    batch_option: str | None = None            # the option that overrides batch_size
    automatic_rank: int | None = None          # place in the automatic order; None = never
    # True: the driver answers ARP / neighbour solicitations for DriverRequest.arp_answer
    # itself (XDP_TX in its filter); False: the engine's RX thread does
    # (pyscan.native.ArpResponder)
    answers_arp: bool = False
    # Errors from open() that let an automatic choice go on to the next driver; anything
    # else (a bad option, a failed allocation) stops the scan.
    fallback_on: tuple[type[DriverError], ...] = ()

    def option(self, key: str) -> DriverOption | None:
        wanted = normal_key(key)
        return next((o for o in self.options if o.key == wanted), None)

    def parse_options(self, options: Mapping[str, str], *, strict: bool = True
                      ) -> dict[str, int | str]:
        """{canonical key: value} for the options given plus every static default.

        strict: a key this driver does not know is an error naming the accepted keys;
        otherwise it is skipped (an automatic choice passes one set of options to each
        candidate in turn)."""
        values: dict[str, int | str] = {o.key: o.default for o in self.options
                                        if o.default is not None}
        for spelled, raw in options.items():
            option = self.option(spelled)
            if option is None:
                if strict:
                    accepted = ", ".join(o.name for o in self.options) or "none"
                    raise DriverOptionError(f"driver option {spelled!r} is unknown to "
                                            f"{self.name} (accepted: {accepted})")
                continue
            values[option.key] = option.parse(spelled, str(raw))
        return values

    def engine_batch(self, options: Mapping[str, str]) -> int:
        """Frames per reserve/submit the engine should use with these options."""
        if self.batch_option is None:
            return self.batch_size
        value = self.parse_options(options, strict=False).get(normal_key(self.batch_option))
        return int(value) if value is not None else self.batch_size

    def help_text(self) -> str:
        """The options block of `pyscan drivers --help`-style text, one line each."""
        lines = []
        for option in self.options:
            default = "" if option.default is None else f" (default {option.default})"
            lines.append(f"{option.name}: {option.accepted()}{default}; {option.help}")
        return "\n".join(lines)


def native_built() -> tuple[bool, str]:
    """Whether the compiled extension imports, as ``available()`` says it: (False, why and
    how to build it) or (True, "")."""
    try:
        import pyscan.native  # noqa: F401 - importing it is the check
    except ImportError as error:
        return False, f"the native extension is not built ({error}): run make build"
    return True, ""


def require_tx_threads(request: DriverRequest) -> None:
    """DriverError unless the request asks for at least one TX thread (drivers without a
    queue limit; the others name their limit themselves)."""
    if request.tx_threads < 1:
        raise DriverError(f"tx_threads {request.tx_threads} is invalid: accepted 1 or more")


def close_rings(rings: Iterable[Ring | None]) -> None:
    """Close every ring given (None: not opened): what a session, or an ``open()`` that
    failed half-way, releases."""
    from pyscan.native import close_ring

    for ring in rings:
        close_ring(ring)


def xdp_driver_ready(descriptor: DriverDescriptor,
                     *native_checks: tuple[str, str]) -> tuple[bool, str]:
    """The checks every XDP driver's ``available()`` makes, in order, without raising: the
    native extension is built, the reply filter object exists, the process holds the
    descriptor's capabilities, then each ``(name, prefix)`` of ``native_checks``: the
    pyscan.native probe function ``name`` (e.g. "afxdp_probe"), whose refusal is reported
    after ``prefix``. (True, "") when all pass."""
    import os

    built, reason = native_built()
    if not built:
        return False, reason
    from pyscan import native

    if not os.path.exists(native.REPLY_FILTER_OBJECT):
        return False, f"the reply filter {native.REPLY_FILTER_OBJECT} is not built: run make build"
    from pyscan.privileges import missing_capabilities

    missing = missing_capabilities(descriptor.capabilities)
    if missing:
        return False, f"needs {', '.join(missing)} (run as root)"
    for name, prefix in native_checks:
        usable, reason = getattr(native, name)()
        if not usable:
            return False, prefix + reason
    return True, ""


class RingSession:
    """A session over native rings: sums their stats, releases them once.

    Subclasses (or drivers) hand over rings already opened; ``close()`` destroys them, so it
    must run only after the engine's threads using them have returned.
    """

    def __init__(self, tx_rings: Sequence[Ring], rx_ring: Ring | None, description: str) -> None:
        self.tx_rings: list[Ring] = list(tx_rings)
        self.rx_ring: Ring | None = rx_ring
        self.description = description
        self._closed = False

    def stats(self) -> dict[str, int]:
        from pyscan.native import RING_STATS_FIELDS, ring_stats

        total = dict.fromkeys(RING_STATS_FIELDS, 0)
        if self._closed:
            return total
        for ring in [*self.tx_rings, *([self.rx_ring] if self.rx_ring is not None else [])]:
            for name, value in ring_stats(ring).items():
                total[name] += value
        return total

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        close_rings([*self.tx_rings, self.rx_ring])
        self.tx_rings = []
        self.rx_ring = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
