"""`pyscan worker`: run one pyscan Dask worker in this process until stopped.

No nanny: the process is the worker, so a service manager (systemd, Kubernetes, Slurm) sees
its exit and restarts it, and its scan threads and firewall tables live and die with it.
SIGINT/SIGTERM close the worker gracefully: Dask hands its unfinished shard to another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from distributed.core import Status

from pyscan.cluster.worker import ScanWorker, WorkerSettings

__all__ = ["CONNECT_TIMEOUT", "run_worker", "worker_security"]

CONNECT_TIMEOUT = 60.0   # seconds a worker keeps trying to reach its scheduler before it exits


def worker_security(ca_file: str | None, cert: str | None, key: str | None) -> Any:
    """Dask Security for a worker with TLS (all three files), or None for Dask's defaults
    (which include any `distributed.comm.tls` configuration)."""
    if ca_file is None and cert is None and key is None:
        return None
    if not (ca_file and cert):
        raise ValueError("incomplete TLS settings (accepted: --tls-ca-file and --tls-cert, "
                         "and --tls-key unless the certificate file holds the key)")
    from distributed.security import Security

    return Security(tls_ca_file=ca_file, tls_worker_cert=cert, tls_worker_key=key,
                    tls_client_cert=cert, tls_client_key=key, require_encryption=True)


def run_worker(scheduler: str, settings: WorkerSettings, *, name: str | None = None,
               security: Any = None, listen_host: str | None = None,
               dashboard: bool = False, connect_timeout: float = CONNECT_TIMEOUT) -> None:
    """Connect to `scheduler` and run shard tasks until SIGINT/SIGTERM or the scheduler
    closes. Raises OSError when the scheduler cannot be reached within `connect_timeout`
    seconds (also after losing it for that long)."""

    async def serve() -> None:
        worker = ScanWorker(scheduler, pyscan_settings=settings, name=name, nthreads=1,
                            security=security, host=listen_host, death_timeout=connect_timeout,
                            dashboard=dashboard, dashboard_address=":0" if dashboard else None)
        main = asyncio.current_task()
        loop = asyncio.get_running_loop()
        closing: set[asyncio.Future[Any]] = set()   # a reference, so the close is not lost

        def on_signal() -> None:
            if worker.status == Status.running:
                closing.add(asyncio.ensure_future(
                    worker.close(reason="pyscan worker stopped by a signal")))
            elif main is not None:
                main.cancel()  # still connecting: nothing to hand back, just stop

        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, on_signal)
        async with worker:
            await worker.finished()

    try:
        asyncio.run(serve())
    except asyncio.CancelledError:
        return
    except TimeoutError as error:  # distributed raises it for death_timeout
        raise OSError(f"no answer within {connect_timeout:g} s") from error
