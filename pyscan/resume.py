"""Pause and resume: the state file a stopped scan leaves (`paused.json`), and the progress
a running scan reports for it.

The state holds everything a resumed run needs and nothing it must guess: the whole resolved
`ScanConfig` (seed and TX thread count included: the order and the lanes must be the same),
the outputs, the cookie key (late replies to the first run's probes still validate), each TX
lane's position in its retry schedule (`Engine.seek`), and the counters the limits keep
across runs (results reported, seconds of sending, frames sent).

Positions are *safe*: every probe before a lane's position had its full reply window (--wait)
while the run was alive, so its results are in the output. A graceful stop waits for the
replies and saves the exact positions; a checkpoint saves positions sampled --wait seconds
earlier (docs/_drafts/resume.md says why and what that costs).

The file is written atomically (a temporary file in the same directory, fsync, rename, fsync
of the directory): a reader, or a crash at any moment, sees the old state or the new one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

from pyscan.config import ScanConfig
from pyscan.errors import ConfigError
from pyscan.probes.udp_payloads import UdpPayload
from pyscan.targets import TargetSet

__all__ = [
    "DEFAULT_CHECKPOINT_EVERY",
    "DEFAULT_PAUSE_FILE",
    "FORMAT_VERSION",
    "PauseState",
    "Progress",
    "ResumePoint",
    "config_from_dict",
    "config_to_dict",
    "load_state",
    "save_state",
]

FORMAT_VERSION = 1
DEFAULT_PAUSE_FILE = "paused.json"
DEFAULT_CHECKPOINT_EVERY = 10.0  # seconds; 0 = no checkpoints (a stop still saves)
KIND = "pyscan-paused-scan"


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run starts: what `scan(config, resume_from=...)` takes."""

    cookie_key: bytes
    positions: tuple[int, ...]   # frames already sent per TX lane (thread_generated_<i>)
    reported: int = 0            # results reported before (--max-results counts on)
    send_seconds: float = 0.0    # seconds spent sending before (--max-runtime counts on)
    sent: int = 0                # frames the drivers accepted before
    # (address as int, 128-bit in an IPv6 scan, port, probe protocol 6/17/1) already in the
    # output: the engine's duplicate suppression starts with them, so a probe sent again
    # never repeats a line.
    known: tuple[tuple[int, int, int], ...] = ()


@dataclass(frozen=True)
class Progress:
    """What a run has safely done, as the scanner reports it (ScanRun.progress)."""

    cookie_key: bytes
    positions: tuple[int, ...]
    reported: int
    send_seconds: float
    sent: int
    finished: bool               # nothing is left to send (every lane ended, or a limit did)
    exact: bool                  # positions are where sending stopped (no probe is re-sent)


@dataclass(frozen=True)
class PauseState:
    """The content of a pause file."""

    config: ScanConfig
    progress: Progress
    tx_threads: int
    outputs: tuple[Mapping[str, Any], ...] = ()   # {"path", "format", "options"}
    pcap: str | None = None
    saved_at: float = field(default_factory=time.time)
    reason: str = "checkpoint"                    # checkpoint | interrupted | terminated | error

    def resume_point(self, *, reported: int | None = None,
                     known: Iterable[tuple[int, int, int]] = ()) -> ResumePoint:
        p = self.progress
        return ResumePoint(cookie_key=p.cookie_key, positions=p.positions,
                           reported=p.reported if reported is None else reported,
                           send_seconds=p.send_seconds, sent=p.sent, known=tuple(known))

    def to_dict(self) -> dict[str, Any]:
        p = self.progress
        return {
            "kind": KIND,
            "version": FORMAT_VERSION,
            "saved_at": self.saved_at,
            "reason": self.reason,
            "seed": self.config.seed,
            "cookie_key": p.cookie_key.hex(),
            "tx_threads": self.tx_threads,
            "positions": list(p.positions),
            "exact": p.exact,
            "counters": {"reported": p.reported, "send_seconds": p.send_seconds,
                         "sent": p.sent},
            "config": config_to_dict(self.config),
            "outputs": [dict(output) for output in self.outputs],
            "pcap": self.pcap,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "state") -> PauseState:
        if not isinstance(data, Mapping) or data.get("kind") != KIND:
            raise ConfigError(f"{where} is not a pyscan pause file (accepted: a paused.json "
                              "that pyscan wrote)")
        if data.get("version") != FORMAT_VERSION:
            raise ConfigError(f"{where} has format version {data.get('version')!r} (accepted: "
                              f"{FORMAT_VERSION}, what this pyscan writes)")
        try:
            config = config_from_dict(data["config"])
            if data["seed"] != config.seed:
                raise ValueError("seed and config.seed differ")
            counters = data["counters"]
            tx_threads = int(data["tx_threads"])
            positions = tuple(int(p) for p in data["positions"])
            if len(positions) != tx_threads or any(p < 0 for p in positions):
                raise ValueError("one non-negative position per TX thread is needed")
            progress = Progress(
                cookie_key=bytes.fromhex(data["cookie_key"]), positions=positions,
                reported=int(counters["reported"]),
                send_seconds=float(counters["send_seconds"]), sent=int(counters["sent"]),
                finished=False, exact=bool(data["exact"]))
            if len(progress.cookie_key) != 16:
                raise ValueError("the cookie key is not 16 bytes")
            outputs = tuple(dict(o) for o in data["outputs"])
            for output in outputs:
                if not isinstance(output.get("format"), str):
                    raise ValueError("an output has no format")
        except ConfigError as error:
            raise ConfigError(f"{where}: its scan settings are invalid: {error}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ConfigError(f"{where} is damaged ({type(error).__name__}: {error}; accepted: "
                              "a paused.json that pyscan wrote)") from None
        return cls(config=config, progress=progress, tx_threads=tx_threads, outputs=outputs,
                   pcap=data.get("pcap"), saved_at=float(data.get("saved_at", 0.0)),
                   reason=str(data.get("reason", "checkpoint")))


def save_state(path: str | Path, state: PauseState) -> None:
    """Write ``state`` to ``path`` atomically: old or new content, never a mix, even after a
    crash (temporary file in the same directory, fsync, rename, fsync of the directory)."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    text = json.dumps(state.to_dict(), indent=1, sort_keys=True) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                         dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with _suppress_os_error():
            os.unlink(temporary)
        raise
    with _suppress_os_error():
        directory_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)


def load_state(path: str | Path) -> PauseState:
    """The pause file at ``path``; ConfigError (exit 2) naming it when it cannot be used."""
    shown = repr(str(path))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"pause file {shown} does not exist (accepted: the file a stopped "
                          "scan wrote, paused.json by default)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read pause file {shown}: {error}") from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"pause file {shown} is not JSON ({error})") from None
    return PauseState.from_dict(data, f"pause file {shown}")


class _suppress_os_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> bool:
        return isinstance(exc, OSError)


# -- ScanConfig <-> plain JSON values --------------------------------------------------------

def _number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)  # JSON has no infinity: "inf"


def _encode(name: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, TargetSet):
        ranges = [[first, last] for first, last in value.ranges]
        # IPv4 keeps the plain list; an IPv6 set says its family (128-bit range ints)
        return ranges if value.family == 4 else {"family": value.family, "ranges": ranges}
    if isinstance(value, IPv4Address | IPv6Address):
        return str(value)
    if isinstance(value, range):
        return [value.start, value.stop - 1]
    if name == "udp_payloads":
        return [[port, {"name": p.name, "data": p.data.hex(), "echoes_id": p.echoes_id,
                        "description": p.description}] for port, p in value]
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return [list(item) if isinstance(item, tuple) else item for item in value]
    if isinstance(value, float):
        return _number(value)
    return value


def config_to_dict(config: ScanConfig) -> dict[str, Any]:
    """Every field of ``config`` as a JSON value; config_from_dict() rebuilds an equal one."""
    return {item.name: _encode(item.name, getattr(config, item.name))
            for item in fields(config)}


_TARGET_FIELDS = ("targets", "excludes")
_ADDRESS_FIELDS = ("source_ip", "gateway_ip")
_FLOAT_FIELDS = ("rate", "wait", "retry_delay", "max_runtime")


def config_from_dict(data: Mapping[str, Any]) -> ScanConfig:
    known = {item.name for item in fields(ScanConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown settings {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        if value is None:
            values[name] = None
        elif name in _TARGET_FIELDS:
            family, ranges = (int(value["family"]), value["ranges"]) \
                if isinstance(value, Mapping) else (4, value)
            values[name] = TargetSet(tuple((int(a), int(b)) for a, b in ranges), family)
        elif name in _ADDRESS_FIELDS:
            values[name] = ip_address(value)
        elif name == "source_ports":
            values[name] = range(int(value[0]), int(value[1]) + 1)
        elif name in _FLOAT_FIELDS:
            values[name] = float(value)
        elif name == "udp_payloads":
            values[name] = tuple(
                (port, UdpPayload(name=p["name"], data=bytes.fromhex(p["data"]),
                                  echoes_id=bool(p["echoes_id"]),
                                  description=p["description"])) for port, p in value)
        elif name == "shard":
            values[name] = (int(value[0]), int(value[1]))
        elif isinstance(value, list):
            values[name] = tuple(value)
        else:
            values[name] = value
    return ScanConfig(**values)


# -- what a running scan has safely done -----------------------------------------------------

SAFETY_MARGIN = 0.5  # seconds beyond --wait: a reply in the RX ring, a drain tick


@dataclass
class _Sample:
    at: float                    # monotonic seconds
    positions: tuple[int, ...]
    sent: int                    # this run's frames
    send_seconds: float          # this run's seconds of sending


class ProgressTracker:
    """The scanner's record of lane positions over time, from which it reports `Progress`.

    A position is safe to save once every probe before it had its reply window: positions
    sampled at least `wait` (+ a margin) seconds ago, or the exact positions after sending
    stopped and the wait ran to its end. Pure bookkeeping (no engine, no clock of its own),
    so it is unit-tested on its own."""

    def __init__(self, cookie_key: bytes, wait: float, tx_threads: int, *,
                 start: ResumePoint | None = None, checkpoint_every: float = 0.0,
                 now: float = 0.0) -> None:
        self.cookie_key = cookie_key
        self.lag = wait + SAFETY_MARGIN
        self.checkpoint_every = checkpoint_every
        self.start = start
        first = start.positions if start is not None else (0,) * tx_threads
        if len(first) != tx_threads:
            raise ValueError(f"the resume point has {len(first)} TX lanes, the scan "
                             f"{tx_threads}")
        self._samples = [_Sample(now, tuple(first), 0, 0.0)]
        self._last_checkpoint = now

    def sample(self, now: float, positions: Iterable[int], sent: int,
               send_seconds: float) -> None:
        self._samples.append(_Sample(now, tuple(positions), sent, send_seconds))
        # Keep the newest sample that is already safe and everything after it.
        safe = self._safe_index(now)
        if safe > 0:
            del self._samples[:safe]

    def _safe_index(self, now: float) -> int:
        index = 0
        for i, item in enumerate(self._samples):
            if item.at <= now - self.lag:
                index = i
        return index

    def checkpoint_due(self, now: float) -> bool:
        return self.checkpoint_every > 0 and now - self._last_checkpoint >= self.checkpoint_every

    def progress(self, now: float, reported: int, *, finished: bool = False,
                 exact: bool = False) -> Progress:
        """Progress to save: the newest sample when ``exact`` (sending stopped and the wait
        ran out), else the newest safe one. ``reported``: results the caller has written."""
        item = self._samples[-1] if exact or finished else self._samples[self._safe_index(now)]
        before = self.start or ResumePoint(self.cookie_key, item.positions)
        return Progress(cookie_key=self.cookie_key, positions=item.positions,
                        reported=reported,
                        send_seconds=before.send_seconds + item.send_seconds,
                        sent=before.sent + item.sent, finished=finished,
                        exact=exact or finished)

    def checkpointed(self, now: float) -> None:
        self._last_checkpoint = now
