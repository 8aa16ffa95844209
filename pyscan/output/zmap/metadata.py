"""zmap's -m/--metadata-file: one JSON object about the whole scan, with zmap's keys
(src/summary.c:json_metadata) where a key means the same thing in pyscan.

Keys for what pyscan does not have (generator, min_hitrate, syslog, pcap_ifdrop, the cooldown
success counters, ...) are left out rather than filled with a made-up value. Times are local
time in zmap's `%Y-%m-%dT%H:%M:%S%z`.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyscan.scanner import Summary

__all__ = ["ZmapRunInfo", "zmap_metadata", "zmap_metadata_json"]


@dataclass(frozen=True)
class ZmapRunInfo:
    """What the scan was asked to do and when it ran (wall-clock seconds since the epoch)."""

    targets: tuple[str, ...]
    ports: tuple[int, ...]
    source_ports: tuple[int, int]
    rate: float
    cooldown: float
    seed: int
    seed_given: bool
    shard: tuple[int, int]          # pyscan's 1-based (index, count)
    senders: int
    send_start: float
    send_end: float
    recv_start: float
    recv_end: float
    output_module: str = "csv"
    output_filename: str | None = None
    output_filter: str | None = None
    filter_unsuccessful: bool = False
    interface: str | None = None
    source_ip: str | None = None
    source_mac: str | None = None
    gateway_mac: str | None = None
    probe_args: str | None = None
    dryrun: bool = False
    quiet: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _zmap_time(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(when))


def zmap_metadata(run: ZmapRunInfo, summary: Summary | None) -> dict[str, Any]:
    """The metadata object, keys in zmap's order."""
    hostname = socket.gethostname()
    meta: dict[str, Any] = {"local_hostname": hostname, "full_hostname": socket.getfqdn()}
    if len(run.ports) == 1:
        meta["target_port"] = run.ports[0]
    meta["target_ports"] = list(run.ports)
    meta["source_port_first"], meta["source_port_last"] = run.source_ports
    meta["max_targets"] = -1
    meta["max_runtime"] = 0
    meta["max_results"] = -1
    if run.interface:
        meta["iface"] = run.interface
    meta["rate"] = 0 if run.rate == float("inf") else int(run.rate)
    meta["bandwidth"] = 0
    meta["cooldown_secs"] = int(run.cooldown) if float(run.cooldown).is_integer() \
        else run.cooldown
    meta["senders"] = run.senders
    meta["use_seed"] = int(run.seed_given)
    meta["seed"] = run.seed
    if summary is not None:
        meta["hitrate"] = 100.0 * summary.open / summary.sent if summary.sent else 0.0
    meta["shard_num"] = run.shard[0] - 1
    meta["total_shards"] = run.shard[1]
    meta["filter_duplicates"] = 1  # pyscan always suppresses duplicates
    meta["filter_unsuccessful"] = int(run.filter_unsuccessful)
    if summary is not None:
        meta["pcap_recv"] = summary.replies
        meta["pcap_drop"] = summary.driver_drops
        meta["blacklist_total_allowed"] = summary.targets
        meta["send_to_failures"] = summary.tx_errors
        meta["total_sent"] = summary.sent
        # Only the first reply of a pair is a result; duplicates are counted apart.
        meta["success_total"] = summary.open
        meta["success_unique"] = summary.open
        meta["failure_total"] = summary.closed
        meta["duplicates"] = summary.duplicates
    meta["packet_streams"] = 1
    meta["probe_module"] = "tcp_synscan"
    meta["output_module"] = run.output_module
    meta["send_start_time"] = _zmap_time(run.send_start)
    meta["send_end_time"] = _zmap_time(run.send_end)
    meta["recv_start_time"] = _zmap_time(run.recv_start)
    meta["recv_end_time"] = _zmap_time(run.recv_end)
    if run.output_filter:
        meta["output_filter"] = run.output_filter
    meta["cli_cidr_destinations"] = list(run.targets)
    if run.probe_args:
        meta["probe_args"] = run.probe_args
    if run.gateway_mac:
        meta["gateway_mac"] = run.gateway_mac.lower()
    if run.source_mac:
        meta["source_mac"] = run.source_mac.lower()
    if run.source_ip:
        meta["source_ip_first"] = meta["source_ip_last"] = run.source_ip
    if run.output_filename:
        meta["output_filename"] = run.output_filename
    meta["dryrun"] = int(run.dryrun)
    meta["quiet"] = int(run.quiet)
    meta.update(run.extra)
    return meta


def zmap_metadata_json(run: ZmapRunInfo, summary: Summary | None) -> str:
    """One line of JSON, as zmap writes it."""
    return json.dumps(zmap_metadata(run, summary)) + "\n"
