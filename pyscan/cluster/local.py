"""`--cluster local:N`: a Dask cluster of N pyscan worker processes on this host.

Each worker is its own process under a Dask nanny (a worker killed mid-scan is restarted, and
its shard runs again elsewhere), with its own settings, so a test can give one worker a bad
interface. The scheduler listens on loopback only.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Sequence

from distributed import Client, Nanny, Scheduler, SpecCluster

from pyscan.cluster.worker import ScanWorker, WorkerSettings
from pyscan.config import ConfigError, ScanConfig

__all__ = ["LOCAL_PREFIX", "MAX_LOCAL_WORKERS", "connect", "local_cluster", "parse_local"]

LOCAL_PREFIX = "local:"
MAX_LOCAL_WORKERS = 64


def parse_local(text: str) -> int | None:
    """'local:3' -> 3; a scheduler address -> None; 'local:x' -> ConfigError."""
    if not text.startswith(LOCAL_PREFIX):
        return None
    count = text[len(LOCAL_PREFIX):]
    if not re.fullmatch(r"\d+", count) or not 1 <= int(count) <= MAX_LOCAL_WORKERS:
        raise ConfigError(f"bad cluster {text!r} (accepted: local:N with N in "
                          f"1..{MAX_LOCAL_WORKERS}, or a scheduler address like "
                          "tcp://host:8786)")
    return int(count)


def local_cluster(workers: Sequence[WorkerSettings], *, dashboard: bool = False,
                  log_level: int = logging.CRITICAL) -> SpecCluster:
    """Start one pyscan worker process per entry of `workers` (named pyscan-1, pyscan-2...)
    and a scheduler on 127.0.0.1; close it (or use `with`) to stop them all. Dask's own logs
    are quiet by default: what matters (a worker that cannot scan, a lost worker) reaches
    the client's summary."""
    if not workers:
        raise ConfigError("a local cluster needs at least one worker")
    spec = {
        f"pyscan-{number}": {"cls": Nanny, "options": {
            "worker_class": ScanWorker,
            "nthreads": 1,
            "host": "127.0.0.1",
            "pyscan_settings": settings.as_dict(),
            "ignore_interrupts": True,
            "silence_logs": log_level,
        }}
        for number, settings in enumerate(workers, start=1)
    }
    # The scheduler's HTTP server always starts (health, metrics): on a free port, so that
    # several local clusters (tests, users) never fight over Dask's default 8787.
    scheduler = {"cls": Scheduler, "options": {
        "host": "127.0.0.1", "dashboard_address": "127.0.0.1:0", "dashboard": dashboard}}
    return SpecCluster(workers=spec, scheduler=scheduler, silence_logs=log_level,
                       name="pyscan-local")


@contextlib.contextmanager
def connect(cluster: str, config: ScanConfig, *, timeout: float = 10.0) -> Iterator[Client]:
    """A Dask client for `cluster` (a scheduler address, or local:N). local:N starts N pyscan
    worker processes here with the scan's interface, driver, source address and namespace,
    and stops them on the way out."""
    count = parse_local(cluster)
    if count is None:
        with Client(cluster, timeout=f"{timeout}s") as client:
            yield client
        return
    settings = WorkerSettings(
        interface=config.interface, driver=config.driver,
        source_ip=str(config.source_ip) if config.source_ip else None, netns=config.netns)
    with local_cluster([settings] * count) as spec_cluster, Client(spec_cluster) as client:
        yield client
