"""The worker side: a Dask worker that owns one scanning NIC and runs pyscan shard tasks.

A `ScanWorker` advertises a `nic` resource of 1 (so it runs one shard at a time, and only
tasks that ask for a `nic` land on scanning hosts) and its scan settings (interface, driver,
source address, namespace, max rate) as a Dask worker metric, which the client reads from the
scheduler. It executes `run_shard` and nothing else: any other task fails with a
PermissionError, and the `run`/`plugin-add` handlers (arbitrary code from any client) are
refused. That narrows what a connected client can do; keeping strangers from connecting at all
is TLS's job (docs/cluster.md).

`run_shard` runs one shard through the public API `pyscan.scan(ScanConfig)`, streams its
results in packed batches to the scan's Dask queue while it runs, and stops when the client
says so (the scan's control variable) or when Dask cancels the task (client gone).

Invariant: everything a shard's scan yields is put on the queue before the task returns.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from distributed import Queue, Variable, Worker, get_worker
from distributed.worker import DEFAULT_METRICS
from distributed.worker_state_machine import ExecuteFailureEvent

from pyscan.cluster.wire import pack_results
from pyscan.config import (
    ConfigError,
    ScanConfig,
    parse_interface,
    parse_netns,
    parse_rate,
    parse_source_ip,
)
from pyscan.drivers import names as driver_names
from pyscan.errors import Error
from pyscan.scanner import Result, ScanStart, ScanStatus, scan

__all__ = ["SETTINGS_METRIC", "ScanWorker", "ShardFailed", "ShardTask", "WorkerSettings",
           "run_shard"]

ENVIRONMENT_PREFIX = "PYSCAN_WORKER_"  # settings of a worker started by `dask worker`
SETTINGS_METRIC = "pyscan"      # the worker metric that carries WorkerSettings.as_dict()
PUBLISH_INTERVAL = 0.05         # seconds between result batches: results reach the client fast
STATUS_INTERVAL = 0.5           # seconds between progress messages
CONTROL_INTERVAL = 0.2          # seconds between looks at the control variable
RATE_TABLE_WAIT = 3.0           # seconds a new worker waits to appear in the client's rate table
MAX_BATCH = 16384               # results per queue message at most


@dataclass(frozen=True)
class WorkerSettings:
    """What `pyscan worker` is told about its host; None = what the scan (or route) says."""

    interface: str | None = None
    driver: str | None = None
    source_ip: str | None = None
    netns: str | None = None
    max_rate: float = math.inf

    def __post_init__(self) -> None:
        if self.interface is not None:
            parse_interface(self.interface)
        if self.driver is not None and self.driver not in driver_names():
            raise ConfigError(f"unknown driver {self.driver!r} "
                              f"(accepted: {', '.join(driver_names())})")
        if self.source_ip is not None:
            parse_source_ip(self.source_ip)
        if self.netns is not None:
            parse_netns(self.netns)
        if not self.max_rate > 0:
            raise ConfigError(f"bad max rate {self.max_rate!r}: must be above 0")

    @classmethod
    def parse(cls, *, interface: str | None = None, driver: str | None = None,
              source_ip: str | None = None, netns: str | None = None,
              max_rate: str | float | None = None) -> WorkerSettings:
        rate = (math.inf if max_rate is None else
                parse_rate(max_rate) if isinstance(max_rate, str) else float(max_rate))
        return cls(interface=interface, driver=driver, source_ip=source_ip, netns=netns,
                   max_rate=rate)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        """PYSCAN_WORKER_INTERFACE, _DRIVER, _SOURCE_IP, _NETNS, _MAX_RATE: how a worker
        started by Dask's own `dask worker --worker-class pyscan.cluster.worker.ScanWorker`
        (dask-jobqueue, dask-kubernetes) learns its host's settings."""
        values = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return values.get(f"{ENVIRONMENT_PREFIX}{name}") or None

        return cls.parse(interface=get("INTERFACE"), driver=get("DRIVER"),
                         source_ip=get("SOURCE_IP"), netns=get("NETNS"),
                         max_rate=get("MAX_RATE"))

    def as_dict(self) -> dict[str, Any]:
        """msgpack/JSON-safe: an unlimited max rate is None."""
        fields = asdict(self)
        fields["max_rate"] = None if math.isinf(self.max_rate) else self.max_rate
        return fields

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> WorkerSettings:
        values = dict(fields)
        values["max_rate"] = math.inf if values.get("max_rate") is None else values["max_rate"]
        return cls(**values)


class ShardFailed(Error):
    """A worker could not scan its shard; the message is one line naming the worker."""

    def __init__(self, worker: str, address: str, reason: str) -> None:
        super().__init__(worker, address, reason)
        self.worker, self.address, self.reason = worker, address, reason

    def __str__(self) -> str:
        return f"worker {self.worker}: {self.reason}"


@dataclass(frozen=True)
class ShardTask:
    """One shard of one scan: the client's whole ScanConfig (every scan option travels, so
    none can be dropped on the way) and where to report. The worker swaps in its shard, its
    rate share and its host's own settings."""

    scan_id: str
    shard: tuple[int, int]
    scan: ScanConfig
    total_rate: float

    @property
    def queue_name(self) -> str:
        return f"pyscan-{self.scan_id}-results"

    @property
    def control_name(self) -> str:
        return f"pyscan-{self.scan_id}-control"

    @property
    def rates_name(self) -> str:
        return f"pyscan-{self.scan_id}-rates"

    def config(self, settings: WorkerSettings, rate: float) -> ScanConfig:
        """The shard's ScanConfig on this host: the worker's own settings win over the
        client's (they describe this host's NIC), the client's fill the gaps."""
        scan = self.scan
        return replace(
            scan, shard=self.shard, rate=rate,
            driver=settings.driver or scan.driver,
            interface=settings.interface or scan.interface,
            source_ip=self._source_ip(settings),
            netns=settings.netns or scan.netns,
        )


    def _source_ip(self, settings: WorkerSettings) -> IPv4Address | IPv6Address | None:
        """The worker's --source-ip when it has one of the scan's family; a worker set up
        for the other family scans from its route's own address of this one."""
        if settings.source_ip is None:
            return self.scan.source_ip
        address = parse_source_ip(settings.source_ip)
        if address.version != self.scan.targets.family:
            return self.scan.source_ip
        return address


def _advertise(worker: Worker) -> dict[str, Any]:
    settings = getattr(worker, "pyscan_settings", None)
    return settings.as_dict() if isinstance(settings, WorkerSettings) else {}


async def _refuse(*args: Any, **kwargs: Any) -> None:
    raise PermissionError("a pyscan worker runs only pyscan scan tasks")


class ScanWorker(Worker):
    """A Dask worker for one scanning NIC (see the module docstring)."""

    def __init__(self, *args: Any, pyscan_settings: WorkerSettings | Mapping[str, Any] | None
                 = None, ignore_interrupts: bool = False, **kwargs: Any) -> None:
        if ignore_interrupts:
            # A local:N worker shares the terminal's process group: Ctrl-C reaches it too, but
            # stopping is the client's to order (every shard stops, output flushed), so the
            # worker must not die of it half-way through a shard.
            with contextlib.suppress(ValueError):  # not the main thread: nothing to ignore
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        if pyscan_settings is None:
            settings = WorkerSettings.from_environment()
        elif isinstance(pyscan_settings, WorkerSettings):
            settings = pyscan_settings
        else:
            settings = WorkerSettings.from_dict(pyscan_settings)
        resources = dict(kwargs.pop("resources", None) or {})
        resources["nic"] = 1
        metrics = {**DEFAULT_METRICS, **dict(kwargs.pop("metrics", None) or {}),
                   SETTINGS_METRIC: _advertise}
        self.pyscan_settings = settings
        super().__init__(*args, resources=resources, metrics=metrics, **kwargs)
        for handler in ("run", "run_coroutine", "plugin-add"):
            self.handlers[handler] = _refuse

    async def execute(self, key: Any, *, stimulus_id: str) -> Any:
        task = self.state.tasks.get(key)
        function = getattr(getattr(task, "run_spec", None), "func", None)
        if task is not None and function is not run_shard:
            name = getattr(function, "__qualname__", type(function).__name__)
            return ExecuteFailureEvent.from_exception(
                PermissionError(f"pyscan worker {self.name} runs only pyscan scan tasks, "
                                f"not {name}"),
                key=key, run_id=task.run_id, stimulus_id=f"pyscan-refused-{time.time()}")
        return await super().execute(key, stimulus_id=stimulus_id)


class _Publisher:
    """Batches a shard's results and progress onto the scan's queue from its own thread, so
    the scan's drain loop never waits on the network."""

    def __init__(self, queue: Queue, header: dict[str, Any]) -> None:
        self._queue = queue
        self._header = header
        self._lock = threading.Lock()
        self._results: list[Result] = []
        self._status: ScanStatus | None = None
        self._status_sent = 0.0
        self._closing = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="pyscan-publish", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add(self, result: Result) -> None:
        with self._lock:
            self._results.append(result)

    def status(self, status: ScanStatus) -> None:
        with self._lock:
            self._status = status

    def put(self, kind: str, **fields: Any) -> None:
        self._queue.put({"kind": kind, **self._header, **fields})

    def _flush(self, final: bool = False) -> None:
        with self._lock:
            results, self._results = self._results, []
            status = self._status
        for start in range(0, len(results), MAX_BATCH):
            self.put("results", data=pack_results(results[start:start + MAX_BATCH]))
        now = time.monotonic()
        if status is not None and (final or now - self._status_sent >= STATUS_INTERVAL):
            self._status_sent = now
            self.put("status", phase=status.phase, sent=status.sent, total=status.total,
                     rate=status.rate, found=status.found, closed=status.closed,
                     unreachable=status.unreachable, drops=status.drops)

    def _loop(self) -> None:
        try:
            while not self._closing.wait(PUBLISH_INTERVAL):
                self._flush()
        except Exception as error:  # the scan stops when it cannot report
            self.error = error

    def close(self) -> None:
        """Stop the thread, then send what is left from this thread (the task's)."""
        self._closing.set()
        self._thread.join()
        if self.error is None:
            self._flush(final=True)


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _shard_rate(task: ShardTask, address: str, settings: WorkerSettings) -> float:
    """This worker's share of the total rate, from the table the client keeps current as
    workers come and go; a worker the table does not know yet takes a newcomer's share."""
    rates = Variable(task.rates_name)
    deadline = time.monotonic() + RATE_TABLE_WAIT
    while True:
        table = rates.get(timeout=RATE_TABLE_WAIT)
        if address in table:
            share = table[address]      # None: no limit (msgpack has no infinity to spare)
            break
        if time.monotonic() >= deadline:
            share = task.total_rate / (len(table) + 1)
            break
        time.sleep(CONTROL_INTERVAL)
    share = math.inf if share is None else float(share)
    return min(share, settings.max_rate)


def run_shard(task: ShardTask) -> dict[str, Any]:
    """Scan one shard on this worker; returns the shard's report (a plain dict)."""
    worker = get_worker()
    name, address = str(worker.name), worker.address
    settings = getattr(worker, "pyscan_settings", None)
    if not isinstance(settings, WorkerSettings):
        raise ShardFailed(name, address, "is not a pyscan worker (start it with `pyscan worker`)")
    key = worker.get_current_task()
    attempt = secrets.token_hex(4)
    control = Variable(task.control_name)
    if control.get(timeout=10) != "run":
        return {"skipped": True, "shard": list(task.shard), "attempt": attempt,
                "worker": address, "name": name}
    try:
        rate = _shard_rate(task, address, settings)
        config = task.config(settings, rate)
    except Exception as error:
        raise ShardFailed(name, address, _one_line(error)) from None

    host = socket.gethostname()
    publisher = _Publisher(Queue(task.queue_name), {
        "shard": list(task.shard), "attempt": attempt, "worker": address, "name": name})
    opened: list[ScanStart] = []

    def on_start(start: ScanStart) -> None:
        # The driver and interface that really run (after any fallback), before any probe.
        opened.append(start)
        publisher.put("start", host=host, interface=start.interface, driver=start.driver,
                      rate=None if math.isinf(rate) else rate)

    publisher.start()
    run = scan(config, on_status=publisher.status, on_start=on_start)
    finished = threading.Event()

    def watch() -> None:
        stopping = False
        while not finished.wait(CONTROL_INTERVAL):
            try:
                order = control.get(timeout=5)
            except Exception:  # scheduler unreachable: nobody is listening any more
                order = "now"
            state = getattr(worker.state.tasks.get(key), "state", "cancelled")
            if order == "now" or state == "cancelled" or publisher.error is not None:
                run.stop()
                run.stop()  # the second stop also ends the wait for late replies
                return
            if order == "stop" and not stopping:
                stopping = True
                run.stop()

    watcher = threading.Thread(target=watch, name="pyscan-control", daemon=True)
    watcher.start()
    try:
        with run:
            for result in run:
                publisher.add(result)
    except Exception as error:
        raise ShardFailed(name, address, _one_line(error)) from None
    finally:
        finished.set()
        watcher.join()
        publisher.close()
    if publisher.error is not None:
        raise ShardFailed(name, address,
                          f"could not report to the client: {_one_line(publisher.error)}")
    summary = run.summary
    assert summary is not None
    interface = opened[0].interface if opened else config.interface or "(route)"
    return {"skipped": False, "shard": list(task.shard), "attempt": attempt,
            "worker": address, "name": name, "host": host, "interface": interface,
            "rate": None if math.isinf(rate) else rate, "summary": summary.as_dict()}
