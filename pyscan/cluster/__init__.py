"""One scan across many scanning hosts, on Dask distributed (`pip install pyscan[cluster]`).

    from distributed import Client
    from pyscan.cluster import scan_on_cluster
    with Client("tcp://sched:8786") as client, scan_on_cluster(config, client) as run:
        for result in run:
            ...
        print(run.summary)

`pyscan.cluster.plan` (shard planning, rate sharing) needs no Dask, so `import pyscan.cluster`
does not either; the other names import Dask on first use and say how to get it.
"""

from __future__ import annotations

import importlib
from typing import Any

from pyscan.cluster.plan import ShardPlan, plan_shards, share_rate

_LAZY = {
    "ClusterError": "client", "ClusterRun": "client", "ClusterStatus": "client",
    "ClusterSummary": "client", "Resend": "client", "WorkerRow": "client",
    "scan_on_cluster": "client", "scanning_workers": "client",
    "local_cluster": "local", "parse_local": "local",
    "ScanWorker": "worker", "ShardFailed": "worker", "WorkerSettings": "worker",
    "run_shard": "worker",
}

__all__ = ["ShardPlan", "plan_shards", "share_rate", *sorted(_LAZY)]


def require_distributed() -> None:
    """Raise ImportError with the install command when Dask distributed is missing."""
    try:
        importlib.import_module("distributed")
    except ImportError as error:
        raise ImportError(
            "pyscan's cluster mode needs Dask distributed: pip install 'pyscan[cluster]'"
        ) from error


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pyscan.cluster' has no attribute {name!r}")
    require_distributed()
    return getattr(importlib.import_module(f"pyscan.cluster.{module}"), name)
