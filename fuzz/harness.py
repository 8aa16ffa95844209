"""Time-bounded property fuzzing with hypothesis: feed a strategy's examples to a check until a
time budget is spent, and on the first failure keep hypothesis's shrunk input as the
reproducer. Hypothesis is used rather than atheris because it installs as a plain wheel,
needs no clang-built CPython extension, and shrinks what it finds to a readable case."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

FIRST_BATCH = 10
MAX_BATCH = 1000


@dataclass(frozen=True)
class Outcome:
    name: str
    examples: int
    seconds: float
    reproducer: Path | None = None
    error: str = ""


def save_reproducer(crash_dir: Path, name: str, value: Any) -> Path:
    """The failing input as bytes (.bin) when it is bytes, else as its repr (.txt)."""
    crash_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(value, bytes | bytearray):
        data, suffix = bytes(value), ".bin"
    else:
        data, suffix = (repr(value) + "\n").encode(), ".txt"
    path = crash_dir / f"{name}-{hashlib.sha1(data).hexdigest()[:12]}{suffix}"
    path.write_bytes(data)
    return path


def fuzz_property(name: str, strategy: st.SearchStrategy[Any], check: Callable[[Any], None],
                  seconds: float, crash_dir: Path, seeds: Iterable[Any] = ()) -> Outcome:
    """Run ``check`` on every seed, then on generated examples until ``seconds`` pass. Any
    exception from ``check`` is a failure: hypothesis shrinks it, and the smallest failing
    input is saved under crash_dir."""
    started = time.monotonic()
    count = 0
    last: list[Any] = [None]

    def observed(value: Any) -> None:
        nonlocal count
        count += 1
        last[0] = value
        check(value)

    for seed in seeds:
        try:
            observed(seed)
        except Exception as error:  # a seed that fails needs no shrinking
            path = save_reproducer(crash_dir, name, seed)
            return Outcome(name, count, time.monotonic() - started, path, _line(error))

    def batch_of(size: int) -> Callable[[], None]:
        @settings(max_examples=size, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck),
                  phases=(Phase.generate, Phase.shrink))
        @given(strategy)
        def run_batch(value: Any) -> None:
            observed(value)
        return run_batch

    # Batches sized from the measured speed, so a slow target stops near its budget too.
    size = FIRST_BATCH
    while (left := seconds - (time.monotonic() - started)) > 0:
        batch_started, batch_count = time.monotonic(), count
        try:
            batch_of(size)()
        except Exception as error:
            # hypothesis replays the shrunk example last, so `last` holds it
            path = save_reproducer(crash_dir, name, last[0])
            return Outcome(name, count, time.monotonic() - started, path, _line(error))
        per_example = (time.monotonic() - batch_started) / max(1, count - batch_count)
        size = int(min(MAX_BATCH, max(1, (left - (time.monotonic() - batch_started))
                                      / per_example)))
    return Outcome(name, count, time.monotonic() - started)


def _line(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text.splitlines()[0] if text else type(error).__name__
