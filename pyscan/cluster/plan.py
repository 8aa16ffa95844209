"""Shard planning and rate sharing for a scan spread over Dask workers. Pure Python: no Dask,
no root, no compiled extension, so the arithmetic is unit-tested on its own.

Invariant: the plan's shards are `i/n` for i = 1..n of ONE permutation (one seed), which the
engine makes disjoint with an exact union (engine.h: input index k belongs to shard k mod n).
Rate invariant: the rates handed out add up to at most the scan's total rate, and no worker's
rate exceeds its own `--max-rate`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DEFAULT_SHARDS_PER_WORKER",
    "MIN_PROBES_PER_SHARD",
    "ShardPlan",
    "plan_shards",
    "shard_probes",
    "share_rate",
]

# Several shards per worker: a lost or failed worker costs only a small re-sent shard, and a
# fast worker takes more shards than a slow one (Dask gives the next shard to whichever worker
# frees its `nic` first).
DEFAULT_SHARDS_PER_WORKER = 4
# Below this a shard's task overhead (scheduling, firewall rules, ring set-up, the wait for late
# replies) dwarfs its sending time: small scans get fewer shards.
MIN_PROBES_PER_SHARD = 1024


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """`count` shards of one permutation; shard numbers are masscan's 1-based `index/count`."""

    count: int
    probes: int

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"a plan needs at least one shard, not {self.count}")
        if self.probes < 0:
            raise ValueError(f"probe count {self.probes} is negative")

    @property
    def shards(self) -> tuple[tuple[int, int], ...]:
        return tuple((index, self.count) for index in range(1, self.count + 1))

    def probes_of(self, index: int) -> int:
        return shard_probes(self.probes, index, self.count)


def shard_probes(total: int, index: int, count: int) -> int:
    """Probes shard `index/count` (1-based) owes: permutation indices k with k mod count ==
    index - 1 (the engine's rule), i.e. ceil((total - (index-1)) / count)."""
    if not 1 <= index <= count:
        raise ValueError(f"bad shard {index}/{count}: need 1 <= index <= count")
    first = index - 1
    return 0 if first >= total else (total - first + count - 1) // count


def plan_shards(probes: int, workers: int,
                shards_per_worker: int = DEFAULT_SHARDS_PER_WORKER) -> ShardPlan:
    """More shards than workers (`shards_per_worker` each), but never so many that a shard
    owes fewer than MIN_PROBES_PER_SHARD probes, and never fewer shards than workers while
    there are probes for each."""
    if workers < 1:
        raise ValueError(f"cannot plan a scan for {workers} workers (need at least 1)")
    if shards_per_worker < 1:
        raise ValueError(f"shards per worker must be at least 1, not {shards_per_worker}")
    if probes < 1:
        raise ValueError(f"cannot plan a scan of {probes} probes (need at least 1)")
    wanted = workers * shards_per_worker
    by_size = max(1, probes // MIN_PROBES_PER_SHARD)
    count = min(wanted, max(by_size, min(workers, probes)))
    return ShardPlan(count=count, probes=probes)


def share_rate(total: float, caps: Mapping[str, float]) -> dict[str, float]:
    """Split `total` packets/s over workers (one running shard each: their `nic` is 1) by
    max-min fairness: every worker gets an equal share, except that a worker capped below its
    share (`--max-rate`) gets its cap and the rest is shared by the others.

    `total` may be math.inf (no limit): each worker then gets its cap (inf when it has none).
    The sum never exceeds `total`; no worker exceeds its cap."""
    if not total > 0:
        raise ValueError(f"total rate {total!r} must be above 0")
    for name, cap in caps.items():
        if not cap > 0:
            raise ValueError(f"worker {name}: max rate {cap!r} must be above 0")
    rates: dict[str, float] = {}
    left = total
    # Ascending caps: once a worker's cap is at or above the fair share of what is left, so
    # are all later ones, and they split the rest evenly.
    ordered = sorted(caps.items(), key=lambda item: (item[1], item[0]))
    for position, (name, cap) in enumerate(ordered):
        fair = left / (len(ordered) - position)
        rate = min(cap, fair)
        rates[name] = rate
        if not math.isinf(left):
            left -= rate
    return rates
