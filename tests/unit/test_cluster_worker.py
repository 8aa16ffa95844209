"""A pyscan worker runs pyscan shard tasks and nothing else (no root needed: dry runs)."""

from __future__ import annotations

import operator
from collections.abc import Iterator

import pytest

distributed = pytest.importorskip("distributed")

from pyscan.cluster import WorkerSettings, local_cluster, scanning_workers  # noqa: E402


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    with local_cluster([WorkerSettings(max_rate=1e6, interface="lo")]) as cluster, \
            distributed.Client(cluster) as connected:
        yield connected


def test_a_foreign_task_fails_with_permission_error(client) -> None:
    future = client.submit(operator.add, 1, 2, resources={"nic": 1}, pure=False)
    with pytest.raises(PermissionError, match="runs only pyscan scan tasks, not add"):
        future.result(timeout=30)


def test_client_run_is_refused(client) -> None:
    # Dask re-raises a handler's error as a plain Exception naming the original
    with pytest.raises(Exception, match=r"PermissionError.*only pyscan scan tasks"):
        client.run(operator.add, 1, 2)


def test_the_worker_advertises_its_nic_and_settings(client) -> None:
    workers = scanning_workers(client)
    assert len(workers) == 1
    info = next(iter(workers.values()))
    assert info["resources"] == {"nic": 1}
    settings = info["metrics"]["pyscan"]
    assert settings["interface"] == "lo" and settings["max_rate"] == 1e6
