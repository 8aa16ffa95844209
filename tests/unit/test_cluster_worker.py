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


def test_every_scan_option_reaches_the_shard_and_the_host_settings_win() -> None:
    from pyscan.cluster.worker import ShardTask
    from pyscan.config import ScanConfig

    scan = ScanConfig.parse(["198.19.0.0/24"], ports="80,443", rate="20k", seed="7",
                            retries="2", retry_delay="0.5", tcp_options="linux",
                            max_targets="300", interface="eth9", probe="tcp-syn")
    task = ShardTask(scan_id="s1", shard=(3, 8), scan=scan, total_rate=scan.rate)
    shard = task.config(WorkerSettings(interface="lo", max_rate=1e6), rate=5000.0)
    # The client's options travel whole: nothing is copied field by field, so none is lost.
    assert (shard.retries, shard.retry_delay, shard.tcp_options, shard.max_targets) == (
        2, 0.5, "linux", 300)
    assert (shard.shard, shard.rate, shard.seed, shard.targets) == (
        (3, 8), 5000.0, 7, scan.targets)
    assert shard.interface == "lo"  # the worker's NIC, not the client's guess
