"""The client side: one scan split into shard tasks on a Dask cluster of pyscan workers.

`ClusterRun` is the cluster's `ScanRun`: iterate it for results while the scan runs, read
`.summary` afterwards, call `.stop()` from anywhere (a signal handler too).

Exactness: the plan's shards are i/n of one seed's permutation (disjoint, exact union); every
shard task that fails or whose worker dies runs again until one attempt completes; results of
every attempt stream back and the client writes each (address, port) once, counting what it
suppressed. Re-run attempts are listed in the summary with what their lost attempt had sent.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from distributed import Client, Future, Queue, Variable
from distributed.scheduler import KilledWorker

from pyscan.cluster.plan import DEFAULT_SHARDS_PER_WORKER, plan_shards, share_rate
from pyscan.cluster.wire import STATUSES, pair_key, to_result, unpack_raw
from pyscan.cluster.worker import SETTINGS_METRIC, ShardFailed, ShardTask, run_shard
from pyscan.config import ScanConfig
from pyscan.errors import ConfigError, Error
from pyscan.scanner import Result, shown_statuses

__all__ = ["ClusterError", "ClusterRun", "ClusterStatus", "ClusterSummary", "Resend",
           "ResultMerger", "WorkerRow", "scan_on_cluster", "scanning_workers"]

POLL_INTERVAL = 0.02        # seconds between looks at the queue when it was empty
WORKERS_INTERVAL = 1.0      # seconds between refreshes of the worker set and rate table
STATUS_INTERVAL = 0.25      # seconds between on_status calls
LIVE_STATUS_AGE = 2.0       # a running attempt's rate counts while its last report is this fresh
SCHEDULER_TIMEOUT = 60.0    # seconds one queue read may take before the scan gives up
RELEASE_SECONDS = 10.0      # how long an aborted run waits for its shards to stop by themselves
CLOSED, UNREACHABLE = STATUSES.index("closed"), STATUSES.index("unreachable")
MAX_SUBMISSIONS = 4         # times one shard is submitted before the scan gives up


class ClusterError(Error, RuntimeError):
    """The cluster scan cannot go on (no worker can scan, a shard failed everywhere)."""


@dataclass
class WorkerRow:
    """One line of the summary: what one worker did over all its shards."""

    worker: str            # Dask address
    name: str
    host: str = "?"
    interface: str = "?"
    driver: str = "?"
    shards: int = 0        # shards completed here
    sent: int = 0
    send_seconds: float = 0.0
    replies: int = 0
    open: int = 0
    closed: int = 0
    unreachable: int = 0
    drops: int = 0
    lost: int = 0          # attempts lost with this worker (it died or left)
    rate: float | None = None  # the rate its last shard was given (None: no limit)
    failure: str | None = None

    @property
    def pps(self) -> float:
        return self.sent / self.send_seconds if self.send_seconds > 0 else 0.0


@dataclass(frozen=True)
class Resend:
    """A shard that ran again because an attempt of it was lost."""

    shard: tuple[int, int]
    lost_on: str           # worker name of the lost attempt
    probes_before: int     # what that attempt had reported sent (at least this many re-sent)


@dataclass
class ClusterSummary:
    seed: int
    shards: int
    probes: int
    sent: int = 0
    open: int = 0
    closed: int = 0
    unreachable: int = 0   # ICMP destination unreachables quoting a probe (not in closed)
    duplicates: int = 0    # results suppressed at the client (lost attempts, re-runs)
    duration: float = 0.0
    interrupted: bool = False
    workers: list[WorkerRow] = field(default_factory=list)
    resent: list[Resend] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # "worker NAME: reason (shard i/n)"


@dataclass(frozen=True)
class ClusterStatus:
    phase: str             # 'scanning', 'stopping' or 'done'
    elapsed: float
    sent: int
    total: int
    rate: float            # packets/s of all workers together (latest reports)
    found: int             # distinct open results so far
    workers: dict[str, float]  # worker name -> its latest packets/s
    phases: dict[str, str] = field(default_factory=dict)  # worker name -> 'sending'/'waiting'

    @property
    def fraction(self) -> float:
        return self.sent / self.total if self.total else 1.0


@dataclass
class _Attempt:
    shard: tuple[int, int]
    worker: str
    name: str
    sent: int = 0
    rate: float = 0.0
    phase: str = "starting"
    seen: float = 0.0
    done: bool = False


@dataclass
class _Submission:
    shard: tuple[int, int]
    future: Future[dict[str, Any]]
    count: int             # 1 for the first submission of this shard
    allowed: tuple[str, ...] = ()  # the only workers it may run on; () = any pyscan worker


def scan_on_cluster(config: ScanConfig, client: Client, *,
                    shards_per_worker: int = DEFAULT_SHARDS_PER_WORKER,
                    on_status: Callable[[ClusterStatus], None] | None = None,
                    min_workers: int = 1, worker_timeout: float = 30.0) -> ClusterRun:
    """Start describing a scan on the cluster behind `client`; it runs while iterated.
    It starts once `min_workers` pyscan workers are connected (at most `worker_timeout` s)."""
    return ClusterRun(config, client, shards_per_worker=shards_per_worker,
                      on_status=on_status, min_workers=min_workers,
                      worker_timeout=worker_timeout)


def scanning_workers(client: Client) -> dict[str, dict[str, Any]]:
    """Dask address -> the scheduler's record, for workers that offer a `nic`."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return {address: info for address, info in workers.items()
            if info.get("resources", {}).get("nic", 0) >= 1}


def _max_rate(info: dict[str, Any]) -> float:
    settings = info.get("metrics", {}).get(SETTINGS_METRIC) or {}
    value = settings.get("max_rate")
    return math.inf if value is None else float(value)


class ClusterRun:
    def __init__(self, config: ScanConfig, client: Client, *,
                 shards_per_worker: int = DEFAULT_SHARDS_PER_WORKER,
                 on_status: Callable[[ClusterStatus], None] | None = None,
                 min_workers: int = 1, worker_timeout: float = 30.0) -> None:
        if config.shard != (1, 1):
            raise ConfigError(f"--shard {config.shard[0]}/{config.shard[1]} cannot be combined "
                              "with --cluster (accepted: --shard 1/1; the cluster shards the "
                              "scan itself)")
        self.config = config
        self.client = client
        self.shards_per_worker = shards_per_worker
        self.on_status = on_status
        self.worker_timeout = worker_timeout
        if min_workers < 1:
            raise ConfigError(f"bad worker count {min_workers} (accepted: 1 or more)")
        self.min_workers = min_workers
        self.summary: ClusterSummary | None = None
        self.scan_id = secrets.token_hex(6)
        self._orders: list[str] = []       # "stop" then "now", set from any thread
        self._order_lock = threading.Lock()
        self._iterator: Iterator[Result] | None = None

    # -- control ---------------------------------------------------------------------------

    def stop(self) -> None:
        """First call: every shard stops sending and receives for `wait` seconds, no new
        shard starts. Second call: every shard ends now. Safe from a signal handler."""
        with self._order_lock:
            self._orders.append("now" if self._orders else "stop")

    def close(self) -> None:
        with self._order_lock:
            self._orders.extend(["stop", "now"])
        if self._iterator is not None:
            with contextlib.suppress(ValueError):
                self._iterator.close()  # type: ignore[attr-defined]

    def __enter__(self) -> ClusterRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Result]:
        if self._iterator is None:
            self._iterator = self._run()
        return self._iterator

    # -- the scan --------------------------------------------------------------------------

    def _wait_for_workers(self) -> dict[str, dict[str, Any]]:
        address = self.client.scheduler.address if self.client.scheduler else "?"
        deadline = time.monotonic() + self.worker_timeout
        while True:
            workers = scanning_workers(self.client)
            if len(workers) >= self.min_workers:
                return workers
            if time.monotonic() >= deadline:
                raise ClusterError(
                    f"{len(workers)} of {self.min_workers} pyscan workers joined the "
                    f"scheduler {address} within "
                    f"{self.worker_timeout:g} s (start some with `pyscan worker {address} "
                    "--interface IF`)")
            time.sleep(0.2)

    def _task(self, shard: tuple[int, int]) -> ShardTask:
        return ShardTask(scan_id=self.scan_id, shard=shard, scan=self.config,
                         total_rate=self.config.rate)

    def _run(self) -> Iterator[Result]:
        state = _State(self)
        try:
            yield from state.run()
        finally:
            state.release()
        self.summary = state.summary()

    def take_orders(self) -> list[str]:
        with self._order_lock:
            return list(self._orders)


class ResultMerger:
    """Packed result batches from every attempt of every shard -> each (address, port,
    protocol) once, as the single-host scan reports it. The shards already filtered by the
    scan's --show settings (they run the client's ScanConfig), so every result merged is shown.

    Counts follow Summary's: a status the scan shows (``shown``) is counted here, one per
    distinct result; closed and unreachable replies the scan does not show never travel, so
    those two come from the shards' own counters (``count_shard``), as a single-host scan's
    come from its engine's: a completed shard's summary, or while a shard has none, the
    highest count any attempt of it has reported (every attempt runs the whole shard).

    Memory: one Python int per distinct result in a set (about 60-70 bytes each)."""

    def __init__(self, shown: frozenset[str] = frozenset(STATUSES)) -> None:
        self.shown = shown
        self.seen: set[int] = set()
        self.open = self.duplicates = 0
        self.merged_closed = self.merged_unreachable = 0
        self._shard_counts: dict[tuple[int, int], tuple[int, int]] = {}  # (closed, unreachable)
        self._completed: set[tuple[int, int]] = set()

    def merge(self, packed: bytes) -> Iterator[Result]:
        seen = self.seen
        for record, payload in unpack_raw(packed):
            pair = pair_key(record)
            if pair in seen:
                self.duplicates += 1
                continue
            seen.add(pair)
            # As Summary counts them: echo replies (up) with open (the engine's rx_open).
            status = record[3]
            if status == CLOSED:
                self.merged_closed += 1
            elif status == UNREACHABLE:
                self.merged_unreachable += 1
            else:
                self.open += 1
            yield to_result(record, payload)

    def count_shard(self, shard: tuple[int, int], counts: dict[str, Any], *,
                    completed: bool) -> None:
        """A shard attempt's own closed/unreachable counters: from its summary (completed)
        or from a status report while it runs."""
        if shard in self._completed:
            return
        closed, unreachable = int(counts.get("closed", 0)), int(counts.get("unreachable", 0))
        if completed:
            self._completed.add(shard)
        else:
            before = self._shard_counts.get(shard, (0, 0))
            closed, unreachable = max(closed, before[0]), max(unreachable, before[1])
        self._shard_counts[shard] = (closed, unreachable)

    @property
    def closed(self) -> int:
        if "closed" in self.shown:
            return self.merged_closed
        return sum(closed for closed, _ in self._shard_counts.values())

    @property
    def unreachable(self) -> int:
        if "unreachable" in self.shown:
            return self.merged_unreachable
        return sum(unreachable for _, unreachable in self._shard_counts.values())


class _State:
    """The bookkeeping of one ClusterRun while it runs."""

    def __init__(self, run: ClusterRun) -> None:
        self.owner = run
        self.client = run.client
        self.config = run.config
        self.started = time.monotonic()
        self.queue: Queue | None = None
        self.control: Variable | None = None
        self.rates: Variable | None = None
        self.order = "run"
        self.pending: dict[Any, _Submission] = {}
        self.submissions: dict[tuple[int, int], int] = {}
        self.attempts: dict[str, _Attempt] = {}
        self.completed: dict[tuple[int, int], str] = {}    # shard -> attempt that finished
        self.returned: set[str] = set()    # attempts whose task returned (start may come later)
        self.rows: dict[str, WorkerRow] = {}
        self.bad_workers: dict[str, str] = {}             # address -> reason
        self.failures: list[str] = []
        self.merger = ResultMerger(shown_statuses(self.config))
        self.workers: dict[str, dict[str, Any]] = {}
        self.rate_table: dict[str, float] = {}
        self.plan_count = 0
        self.last_workers = self.last_status = 0.0

    # -- set-up and tear-down --------------------------------------------------------------

    def run(self) -> Iterator[Result]:
        run, client = self.owner, self.client
        self.workers = run._wait_for_workers()
        plan = plan_shards(self.config.probe_count, len(self.workers), run.shards_per_worker)
        self.plan_count = plan.count
        names = run._task((1, 1))
        self.queue = Queue(names.queue_name, client=client)
        self.control = Variable(names.control_name, client=client)
        self.rates = Variable(names.rates_name, client=client)
        self.control.set("run")
        self._publish_rates()
        for shard in plan.shards:
            self._submit(shard)
        while self.pending:
            got = yield from self._drain()
            self._follow_orders()
            self._collect()
            now = time.monotonic()
            if now - self.last_workers >= WORKERS_INTERVAL:
                self._refresh_workers()
            if now - self.last_status >= STATUS_INTERVAL:
                self._status("stopping" if self.order != "run" else "scanning")
            if not got:
                time.sleep(POLL_INTERVAL)
        # Every task has returned, so everything it put is on the queue already.
        while (yield from self._drain()):
            pass
        self._status("done")

    def release(self) -> None:
        """Whatever ended the run (done, an error, the caller leaving the loop): no shard may
        go on scanning. Running shards are told "now" and given a moment to close their rings
        and firewall tables by themselves (a local cluster's processes are torn down right
        after); what is still pending then is cancelled, which a shard also obeys."""
        with contextlib.suppress(Exception):
            if self.control is not None:
                self.control.set("now" if self.pending else "done")
        deadline = time.monotonic() + RELEASE_SECONDS
        while self.pending and time.monotonic() < deadline and any(
                not s.future.done() for s in self.pending.values()):
            time.sleep(0.05)
        for submission in self.pending.values():
            with contextlib.suppress(Exception):
                submission.future.cancel()
        for variable in (self.control, self.rates):
            with contextlib.suppress(Exception):
                if variable is not None:
                    variable.delete()
        with contextlib.suppress(Exception):
            if self.queue is not None:
                self.queue.close()

    # -- shards ----------------------------------------------------------------------------

    def _submit(self, shard: tuple[int, int]) -> None:
        count = self.submissions.get(shard, 0) + 1
        if count > MAX_SUBMISSIONS:
            raise ClusterError(f"shard {shard[0]}/{shard[1]} failed {MAX_SUBMISSIONS} times: "
                               + "; ".join(self.failures[-3:]))
        self.submissions[shard] = count
        good = [address for address in self.workers if address not in self.bad_workers]
        if self.bad_workers and not good:
            raise ClusterError("no worker can scan: " + "; ".join(self.failures))
        restrictions: dict[str, Any] = {}
        if self.bad_workers:
            restrictions = {"workers": good, "allow_other_workers": False}
        future = self.client.submit(
            run_shard, self.owner._task(shard), resources={"nic": 1}, pure=False,
            key=f"pyscan-{self.owner.scan_id}-shard-{shard[0]}-of-{shard[1]}-try-{count}",
            **restrictions)
        self.pending[future.key] = _Submission(shard, future, count,
                                               tuple(restrictions.get("workers", ())))

    def _collect(self) -> None:
        for key, submission in list(self.pending.items()):
            future = submission.future
            if not future.done():
                continue
            del self.pending[key]
            if future.status == "finished":
                self._finished(submission.shard, future.result())
                continue
            if future.status == "cancelled":
                if self.order == "run":
                    self._submit(submission.shard)
                continue
            error = future.exception()
            if isinstance(error, ShardFailed):
                self.bad_workers[error.address] = error.reason
                shard = f"{submission.shard[0]}/{submission.shard[1]}"
                # One line per worker and reason, listing the shards it gave back.
                line = next((i for i, text in enumerate(self.failures)
                             if text.startswith(f"{error} (shard")), None)
                if line is None:
                    self.failures.append(f"{error} (shard {shard})")
                else:
                    text = self.failures[line].replace(" (shard ", " (shards ")
                    self.failures[line] = text[:-1] + f", {shard})"
                row = self._row(error.address, error.worker)
                row.failure = error.reason
                if row.host == "?":
                    row.host = error.address.rpartition("://")[2].rpartition(":")[0]
            elif isinstance(error, KilledWorker):
                self.failures.append(f"shard {submission.shard[0]}/{submission.shard[1]}: "
                                     f"{error}")
            else:
                raise ClusterError(f"shard {submission.shard[0]}/{submission.shard[1]} "
                                   f"failed: {error}") from error
            if self.order == "run":
                self._submit(submission.shard)

    def _finished(self, shard: tuple[int, int], report: dict[str, Any]) -> None:
        self.returned.add(report["attempt"])
        attempt = self.attempts.get(report["attempt"])
        if attempt is not None:
            attempt.done = True
        if report.get("skipped"):
            return
        self.completed[shard] = report["attempt"]
        summary = report["summary"]
        self.merger.count_shard(shard, summary, completed=True)
        row = self._row(report["worker"], report["name"])
        row.host, row.interface, row.driver = report["host"], report["interface"], \
            summary["driver"]
        row.shards += 1
        row.rate = report["rate"]
        row.sent += summary["sent"]
        row.send_seconds += summary["send_duration"]
        row.replies += summary["replies"]
        row.open += summary["open"]
        row.closed += summary["closed"]
        row.unreachable += summary.get("unreachable", 0)
        row.drops += summary["driver_drops"]

    def _row(self, address: str, name: str) -> WorkerRow:
        row = self.rows.get(address)
        if row is None:
            row = self.rows[address] = WorkerRow(worker=address, name=name)
        return row

    # -- messages from the shards ----------------------------------------------------------

    def _drain(self) -> Generator[Result, None, bool]:
        """Yields the results of every message waiting; returns whether there were any."""
        assert self.queue is not None
        try:
            messages = self.queue.get(batch=True, callback_timeout=SCHEDULER_TIMEOUT)
        except TimeoutError:
            # Never wait forever, and never guess: what that call took off the queue may be
            # lost, so the scan fails loudly rather than finishing inexact.
            raise ClusterError(f"the scheduler did not hand over results for "
                               f"{SCHEDULER_TIMEOUT:g} s; the output may be incomplete") from None
        for value in messages:
            kind = value["kind"]
            if kind == "results":
                yield from self.merger.merge(value["data"])
            elif kind == "start":
                started = self.attempts[value["attempt"]] = _Attempt(
                    (value["shard"][0], value["shard"][1]), value["worker"], value["name"],
                    seen=time.monotonic(), done=value["attempt"] in self.returned)
                row = self._row(started.worker, started.name)
                row.host, row.interface = value["host"], value["interface"]
                if row.driver == "?":
                    row.driver = value["driver"]
            elif kind == "status":
                attempt = self.attempts.get(value["attempt"])
                if attempt is not None:
                    attempt.sent, attempt.rate = value["sent"], value["rate"]
                    attempt.phase = value["phase"]
                    self.merger.count_shard(attempt.shard, value, completed=False)
                    attempt.seen = time.monotonic()
        return bool(messages)

    # -- workers, rates, orders ------------------------------------------------------------

    def _publish_rates(self) -> None:
        caps = {address: _max_rate(info) for address, info in self.workers.items()
                if address not in self.bad_workers}
        table = share_rate(self.config.rate, caps) if caps else {}
        if table != self.rate_table:
            self.rate_table = table
            assert self.rates is not None
            self.rates.set({address: None if math.isinf(rate) else rate
                            for address, rate in table.items()})

    def _refresh_workers(self) -> None:
        self.last_workers = time.monotonic()
        current = scanning_workers(self.client)
        for address in set(self.workers) - set(current):
            for attempt in self.attempts.values():
                if attempt.worker == address and not attempt.done:
                    self._row(address, attempt.name).lost += 1
        self.workers = current
        self._publish_rates()
        # A shard kept off a failed worker waits for the workers it was allowed; when all of
        # those left, Dask would hold it forever: cancel it, and _collect resubmits it to
        # the workers there are now.
        for submission in self.pending.values():
            if submission.allowed and not any(w in current for w in submission.allowed) \
                    and not submission.future.done():
                submission.future.cancel()

    def _follow_orders(self) -> None:
        orders = self.owner.take_orders()
        wanted = "now" if "now" in orders else "stop" if orders else "run"
        if wanted != self.order:
            self.order = wanted
            assert self.control is not None
            self.control.set(wanted)

    def _status(self, phase: str) -> None:
        self.last_status = time.monotonic()
        callback = self.owner.on_status
        if callback is None:
            return
        now = time.monotonic()
        per_worker: dict[str, float] = {}
        phases: dict[str, str] = {}
        sent = sum(row.sent for row in self.rows.values())  # completed shards
        for attempt in self.attempts.values():
            if not attempt.done and now - attempt.seen < LIVE_STATUS_AGE:
                per_worker[attempt.name] = per_worker.get(attempt.name, 0.0) + attempt.rate
                phases[attempt.name] = attempt.phase
                sent += attempt.sent
        callback(ClusterStatus(phase=phase, elapsed=now - self.started, sent=sent,
                               total=self.config.probe_count, rate=sum(per_worker.values()),
                               found=self.merger.open, workers=per_worker, phases=phases))

    # -- the end ---------------------------------------------------------------------------

    def summary(self) -> ClusterSummary:
        resent = []
        for attempt_id, attempt in self.attempts.items():
            finished_by = self.completed.get(attempt.shard)
            if finished_by is not None and finished_by != attempt_id and not attempt.done:
                resent.append(Resend(attempt.shard, attempt.name, attempt.sent))
        rows = sorted(self.rows.values(), key=lambda row: row.name)
        return ClusterSummary(
            seed=self.config.seed, shards=self.plan_count, probes=self.config.probe_count,
            sent=sum(row.sent for row in rows), open=self.merger.open,
            closed=self.merger.closed, unreachable=self.merger.unreachable,
            duplicates=self.merger.duplicates,
            duration=time.monotonic() - self.started,
            interrupted=self.order != "run" or len(self.completed) < self.plan_count,
            workers=rows, resent=sorted(resent, key=lambda r: r.shard),
            failures=list(self.failures))
