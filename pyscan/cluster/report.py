"""The cluster scan's live status line and end-of-scan summary (text and JSON), on stderr.

Same conventions as pyscan.status: one line redrawn in place while scanning, then a short
block with a row per worker (host, interface, driver, probes, pps achieved, replies, drops),
what was re-sent after a worker was lost, and which workers could not scan and why.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, TextIO

from pyscan.cluster.client import ClusterStatus, ClusterSummary
from pyscan.status import LiveLine, format_rate

__all__ = ["ClusterStatusLine", "cluster_summary_json", "format_cluster_status",
           "render_cluster_summary"]

MAX_WORKERS_ON_LINE = 8   # beyond this the status line shows the total and the worker count


def format_cluster_status(status: ClusterStatus) -> str:
    head = (f"{status.phase} {format_rate(status.rate):>10}  {100 * status.fraction:6.2f} %  "
            f"sent {status.sent}/{status.total}  open {status.found}")
    workers = sorted(status.workers.items())
    if not workers:
        return head
    if len(workers) > MAX_WORKERS_ON_LINE:
        return f"{head}  ({len(workers)} workers sending)"
    return head + "  |  " + "  ".join(f"{name} {format_rate(rate)}" for name, rate in workers)


class ClusterStatusLine(LiveLine[ClusterStatus]):
    """An on_status callback for ClusterRun that redraws one line on a terminal."""

    def __init__(self, stream: TextIO | None = None, *, force: bool = False) -> None:
        super().__init__(format_cluster_status, stream, force=force)


def render_cluster_summary(summary: ClusterSummary) -> str:
    state = "interrupted" if summary.interrupted else "done"
    lines = [
        f"pyscan: {state} in {summary.duration:.2f} s on {len(summary.workers)} worker"
        f"{'s' if len(summary.workers) != 1 else ''}, {summary.shards} shards of seed "
        f"{summary.seed}",
        f"  sent       {summary.sent} of {summary.probes} probes by completed shards",
        f"  results    {summary.open} open, {summary.closed} closed, {summary.unreachable} "
        f"unreachable, {summary.duplicates} duplicates suppressed at the client",
    ]
    header = ("worker", "host", "interface", "driver", "shards", "probes", "pps", "replies",
              "drops")
    rows = [header] + [
        (row.name, row.host, row.interface, row.driver, str(row.shards), str(row.sent),
         format_rate(row.pps) if row.sent else "-", str(row.replies), str(row.drops))
        for row in summary.workers
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append(("  " + "  ".join(cells)).rstrip())
    for resend in summary.resent:
        lines.append(f"  re-sent    shard {resend.shard[0]}/{resend.shard[1]}: its attempt on "
                     f"{resend.lost_on} was lost after {resend.probes_before} probes; it ran "
                     "again in full elsewhere")
    for failure in summary.failures:
        lines.append(f"  failed     {failure}")
    lines.append(f"  seed       {summary.seed} (repeat this order with --seed {summary.seed})")
    return "\n".join(lines)


def _jsonable(summary: ClusterSummary) -> dict[str, Any]:
    fields = asdict(summary)
    for row, worker in zip(fields["workers"], summary.workers, strict=True):
        row["pps"] = round(worker.pps, 1)
    for resend in fields["resent"]:
        resend["shard"] = f"{resend['shard'][0]}/{resend['shard'][1]}"
    return fields


def cluster_summary_json(summary: ClusterSummary) -> str:
    return json.dumps(_jsonable(summary), sort_keys=True)
