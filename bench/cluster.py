"""``python -m bench.cluster``: what spreading a scan over Dask workers costs and gives (issue 13).

Sections, each a few seconds (root needed for the lab sections):

1. tx: total packets/s of ``local:2`` (two worker processes, one TX thread each) against one
   process with 2 TX threads, both on a 2-queue sink lab (pyscan's lab with sink=True: every
   frame counted and dropped at XDP), same probes, no rate limit. Aggregate pps while sending =
   probes / the longest worker's sending time (workers send in parallel).
2. stream: the overhead of streaming results through Dask: one plain Dask worker process runs
   the real worker-side publisher (pyscan.cluster.worker._Publisher) fed with distinct
   synthetic results at a paced rate (default 250k/s), the client drains the scan's queue with
   the real ResultMerger. Reported: results/s that arrived, CPU of the client process (which
   also runs the scheduler here) and of the worker, per million results.
3. control: per-shard control-plane cost on local clusters of 2, 4 and 8 workers: dry runs
   (null driver, nothing sent) of many tiny shards; (wall time x workers) / shards.

Results: bench/results/cluster.json, and a table on stdout (docs/cluster.md quotes it).
Measured on the same 2-core machine as everything else, shared: numbers are indicative.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "cluster.json"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


# -- 1. TX: local:2 against 2 TX threads ------------------------------------------------------

def tx_section(lab_name: str, ports: int = 8, reps: int = 2) -> list[dict[str, Any]]:
    from distributed import Client

    import pyscan
    from pyscan.cluster import WorkerSettings, local_cluster, scan_on_cluster
    from pyscan.lab import Lab

    rows: list[dict[str, Any]] = []
    port_list = ",".join(str(1000 + p) for p in range(ports))
    with Lab(name=lab_name, subnet="198.19.0.0/16", ports=(1000,), sink=True, queues=2) as lab:
        def config(tx_threads: int | None) -> pyscan.ScanConfig:
            return pyscan.ScanConfig.parse(
                ["198.19.0.0/16"], ports=port_list, rate="max", driver="af-packet", wait=0,
                netns=lab.scan_netns, tx_threads=tx_threads)

        settings = WorkerSettings(driver="af-packet", netns=lab.scan_netns)
        with local_cluster([settings, settings]) as cluster, Client(cluster) as client:
            for rep in range(reps):
                lab.sink_reset()
                one = config(tx_threads=2)
                with pyscan.scan(one) as run:
                    for _ in run:
                        pass
                assert run.summary is not None
                sink = lab.sink_count()["syns"]
                rows.append({"section": "tx", "how": "1 process, 2 TX threads", "rep": rep,
                             "sent": run.summary.sent, "sink": sink,
                             "pps": run.summary.send_rate})
                lab.sink_reset()
                spread = config(tx_threads=1)
                with scan_on_cluster(spread, client, shards_per_worker=1) as cluster_run:
                    for _ in cluster_run:
                        pass
                summary = cluster_run.summary
                assert summary is not None
                longest = max(row.send_seconds for row in summary.workers)
                rows.append({"section": "tx", "how": "local:2, 1 TX thread each", "rep": rep,
                             "sent": summary.sent, "sink": lab.sink_count()["syns"],
                             "pps": summary.sent / longest if longest else 0.0,
                             "wall_s": summary.duration})
    return rows


# -- 2. streaming overhead --------------------------------------------------------------------

def _synthetic_publisher(queue_name: str, rate: float, seconds: float) -> dict[str, float]:
    """Runs on a plain Dask worker: the real _Publisher fed with distinct results."""
    from ipaddress import IPv4Address

    from distributed import Queue

    from pyscan.cluster.worker import _Publisher
    from pyscan.scanner import Result

    total = int(rate * seconds)
    results = [Result(IPv4Address(0xC6130000 + (i >> 4)), 1000 + (i & 15), "closed", 64, 0.0)
               for i in range(total)]
    publisher = _Publisher(Queue(queue_name), {"shard": [1, 1], "attempt": "x",
                                               "worker": "bench", "name": "bench"})
    cpu_before = time.process_time()
    publisher.start()
    started = time.monotonic()
    step = max(1, int(rate / 200))            # 5 ms worth at a time
    for index in range(0, total, step):
        due = started + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for result in results[index:index + step]:
            publisher.add(result)
    publisher.close()
    return {"worker_cpu_s": time.process_time() - cpu_before,
            "publish_s": time.monotonic() - started}


def stream_section(rate: float = 250_000, seconds: float = 2.0) -> list[dict[str, Any]]:
    from distributed import Client, LocalCluster, Queue

    from pyscan.cluster.client import ResultMerger

    rows = []
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        worker_pid = next(iter(client.run(os.getpid).values()))
        for paced in (rate, math.inf):
            name = f"bench-{secrets.token_hex(4)}"
            queue = Queue(name, client=client)
            merger = ResultMerger()
            count = messages = 0
            # unpaced: a million results offered as fast as the publisher takes them
            go_rate, go_seconds = (paced, seconds) if math.isfinite(paced) else (5e6, 0.2)
            cpu_client = time.process_time()
            cpu_worker = _cpu_seconds(worker_pid)
            started = time.monotonic()
            future = client.submit(_synthetic_publisher, name, go_rate, go_seconds, pure=False)
            while True:
                batch = queue.get(batch=True)
                messages += len(batch)
                for message in batch:
                    if message["kind"] == "results":
                        count += sum(1 for _ in merger.merge(message["data"]))
                if not batch:
                    if future.done():
                        if not queue.get(batch=True):
                            break
                        continue
                    time.sleep(0.02)
            elapsed = time.monotonic() - started
            client_cpu = time.process_time() - cpu_client
            worker_process_cpu = _cpu_seconds(worker_pid) - cpu_worker
            inside = future.result()
            worker_cpu = inside["worker_cpu_s"]  # from the first result fed: without set-up
            queue.close()
            rows.append({"section": "stream",
                         "offered": "unpaced" if math.isinf(paced) else paced,
                         "results": count, "messages": messages, "wall_s": elapsed,
                         "results_per_s": count / inside["publish_s"],
                         "client_cpu_s": client_cpu, "worker_cpu_s": worker_cpu,
                         "worker_process_cpu_s": worker_process_cpu,
                         "client_cpu_s_per_M": 1e6 * client_cpu / max(count, 1),
                         "worker_cpu_s_per_M": 1e6 * worker_cpu / max(count, 1)})
    return rows


# -- 3. control plane -------------------------------------------------------------------------

def control_section(worker_counts: tuple[int, ...] = (2, 4, 8),
                    shards_per_worker: int = 8) -> list[dict[str, Any]]:
    from distributed import Client

    import pyscan
    from pyscan.cluster import WorkerSettings, local_cluster, scan_on_cluster

    rows = []
    for workers in worker_counts:
        started = time.monotonic()
        with local_cluster([WorkerSettings()] * workers) as cluster, Client(cluster) as client:
            up = time.monotonic() - started
            probes_per_shard = 2048
            ports = max(1, workers * shards_per_worker * probes_per_shard // 65536)
            config = pyscan.ScanConfig.parse(
                ["198.19.0.0/16"], ports=f"1-{ports}", rate="max", driver="null", wait=0)
            with scan_on_cluster(config, client, shards_per_worker=shards_per_worker) as run:
                for _ in run:
                    pass
            summary = run.summary
            assert summary is not None
            rows.append({"section": "control", "workers": workers, "shards": summary.shards,
                         "cluster_start_s": up, "scan_wall_s": summary.duration,
                         "s_per_shard": summary.duration * workers / summary.shards})
    return rows


def cluster_section(log: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """`make bench`'s cluster rows: TX of local:2 against 2 TX threads, and streaming at
    250k results/s (the control-plane sweep stays in `python -m bench.cluster`: it starts
    8 worker processes)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return [], ["cluster rows not measured: Dask distributed is not installed "
                    "(pip install 'pyscan[cluster]')"]
    log("cluster: local:2 against 2 TX threads on a 2-queue sink lab")
    rows = tx_section(f"bcl{os.getpid() % 100000}")
    log("cluster: streaming results through Dask at 250k/s")
    rows += stream_section()
    return rows, []


def markdown_rows(rows: list[dict[str, Any]]) -> list[str]:
    out = ["| measurement | value |", "|---|---|"]
    for row in rows:
        if row["section"] == "tx":
            out.append(f"| TX, {row['how']} (rep {row['rep']}) | {row['pps'] / 1e3:.0f} kpps, "
                       f"sink {row['sink']} of {row['sent']} sent |")
        elif row["section"] == "stream":
            offered = (row["offered"] if isinstance(row["offered"], str)
                       else f"{row['offered'] / 1e3:.0f}k/s offered")
            out.append(f"| streaming results, {offered} | {row['results_per_s'] / 1e3:.0f}k "
                       f"results/s; client {row['client_cpu_s_per_M']:.2f} CPU-s per million, "
                       f"worker {row['worker_cpu_s_per_M']:.2f} |")
        elif row["section"] == "control":
            out.append(f"| control plane, {row['workers']} workers | "
                       f"{1e3 * row['s_per_shard']:.0f} ms per shard |")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="tx,stream,control")
    parser.add_argument("--stream-rate", type=float, default=250_000)
    parser.add_argument("--lab-name", default=f"bcl{os.getpid() % 100000}")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    sections = args.sections.split(",")
    if "stream" in sections:
        rows += stream_section(args.stream_rate)
    if "control" in sections:
        rows += control_section()
    if "tx" in sections:
        rows += tx_section(args.lab_name)
    for row in rows:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}))
    print("\n".join(markdown_rows(rows)))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench-cluster"
    raise SystemExit(main())
