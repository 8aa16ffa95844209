"""`pyscan worker SCHEDULER ...` and the `--cluster` path of `pyscan scan` (docs/cluster.md).

Both need Dask distributed (`pip install 'pyscan[cluster]'`); without it they fail with that
command (exit 2) before anything starts.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pyscan.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, fail, fail_with
from pyscan.config import ConfigError, ScanConfig
from pyscan.errors import Error, NotSupportedYet
from pyscan.output import OutputSpec, ResultWriter
from pyscan.text import ascii_digits

if TYPE_CHECKING:
    from pyscan.cluster.client import ClusterRun

__all__ = ["check_cluster_option", "run_cluster_scan", "worker_command"]

SCHEDULER_GRAMMAR = "tcp://HOST:PORT or tls://HOST:PORT (Dask's scheduler), or local:N"


def _require_distributed() -> None:
    from pyscan.cluster import require_distributed

    try:
        require_distributed()
    except ImportError as error:
        fail(str(error))


def _check_scheduler(address: str) -> str:
    _require_distributed()
    from pyscan.cluster.local import parse_local

    if parse_local(address) is not None:
        return address
    scheme, sep, rest = address.partition("://")
    host, colon, port = rest.rpartition(":")
    if not sep or scheme not in ("tcp", "tls") or not colon or not host or not ascii_digits(port):
        raise ConfigError(f"bad cluster address {address!r} (accepted: {SCHEDULER_GRAMMAR})")
    return address


def worker_command(
    scheduler: Annotated[str, typer.Argument(
        help="The Dask scheduler: tcp://HOST:8786 (or tls://...).", show_default=False)],
    interface: Annotated[str | None, typer.Option(
        "--interface", "-i", help="The scanning NIC (default: the route's).")] = None,
    driver: Annotated[str | None, typer.Option(
        help="Driver for every shard here (default: automatic).")] = None,
    source_ip: Annotated[str | None, typer.Option(help="Source address of probes.")] = None,
    netns: Annotated[str | None, typer.Option(
        help="Scan from inside this network namespace.")] = None,
    max_rate: Annotated[str | None, typer.Option(
        help="Packets/s this host may send at most (default: no cap).")] = None,
    name: Annotated[str | None, typer.Option(
        help="Worker name in summaries (default: Dask's).")] = None,
    listen_host: Annotated[str | None, typer.Option(
        help="Address the worker listens on for the scheduler (default: Dask's).")] = None,
    tls_ca_file: Annotated[str | None, typer.Option(help="TLS: CA certificate file.")] = None,
    tls_cert: Annotated[str | None, typer.Option(help="TLS: this worker's certificate.")
                        ] = None,
    tls_key: Annotated[str | None, typer.Option(help="TLS: this worker's private key.")
                       ] = None,
) -> None:
    _require_distributed()
    from pyscan.cluster.local import parse_local
    from pyscan.cluster.serve import run_worker, worker_security
    from pyscan.cluster.worker import WorkerSettings

    try:
        if parse_local(scheduler) is not None:
            raise ConfigError(f"bad scheduler {scheduler!r} for a worker (accepted: "
                              "tcp://HOST:PORT or tls://HOST:PORT)")
        _check_scheduler(scheduler)
        settings = WorkerSettings.parse(interface=interface, driver=driver,
                                        source_ip=source_ip, netns=netns, max_rate=max_rate)
        security = worker_security(tls_ca_file, tls_cert, tls_key)
    except (ConfigError, ValueError) as error:
        fail(str(error))
    cap = "no rate cap" if max_rate is None else f"at most {max_rate} pps"
    typer.echo(f"pyscan: worker for {scheduler}: interface {interface or '(route)'}, driver "
               f"{driver or 'automatic'}, {cap}" + (f", netns {netns}" if netns else ""),
               err=True)
    try:
        run_worker(scheduler, settings, name=name, security=security, listen_host=listen_host)
    except OSError as error:
        fail(f"cannot serve scheduler {scheduler}: {error}", EXIT_FAILED)


@contextlib.contextmanager
def _interrupts(run: ClusterRun) -> Iterator[None]:
    """Ctrl-C once: every shard stops sending and waits --wait for late replies. Twice: every
    shard ends now. Three times: abandon (the workers still see the stop)."""
    presses = 0

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        nonlocal presses
        presses += 1
        if presses >= 3:
            raise KeyboardInterrupt
        if presses == 1:
            typer.echo("\npyscan: stopping every shard; waiting for late replies "
                       "(Ctrl-C again to skip)", err=True)
        run.stop()

    try:
        previous = signal.signal(signal.SIGINT, on_interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def check_cluster_option(cluster: str, config: ScanConfig, *, pcap: str | None = None
                         ) -> None:
    """--cluster's value and what cannot go with it; ConfigError before anything starts."""
    _check_scheduler(cluster)
    if pcap is not None:
        raise NotSupportedYet("--pcap with --cluster", "the reply frames stay on the workers "
                              "(accepted: --pcap on a single-host scan)")
    if cluster.startswith("tls://"):
        import dask.config

        if not (dask.config.get("distributed.comm.tls.ca-file", None)
                and dask.config.get("distributed.comm.tls.client.cert", None)):
            raise ConfigError(
                f"--cluster {cluster} needs Dask's TLS client settings (accepted: "
                "DASK_DISTRIBUTED__COMM__TLS__CA_FILE and DASK_DISTRIBUTED__COMM__TLS__CLIENT__"
                "CERT/KEY in the environment, or the same in Dask's config file)")
    if config.shard != (1, 1):
        raise ConfigError(f"--shard {config.shard[0]}/{config.shard[1]} cannot be combined "
                          "with --cluster (accepted: --shard 1/1; the cluster shards the scan "
                          "itself)")


def run_cluster_scan(config: ScanConfig, output_spec: OutputSpec, cluster: str, *,
                     quiet: bool, status: bool | None, json_summary: bool,
                     min_workers: int = 1) -> None:
    """The `--cluster` path of `pyscan scan`: same output formats, a per-worker summary."""
    from pyscan.cluster.client import scan_on_cluster
    from pyscan.cluster.local import connect
    from pyscan.cluster.report import (
        ClusterStatusLine,
        cluster_summary_json,
        render_cluster_summary,
    )

    if not quiet:
        from pyscan.status import format_rate

        rate = ("with no rate limit" if config.rate == float("inf")
                else f"at {format_rate(config.rate)} in total")
        typer.echo(f"pyscan: scanning {config.targets.describe()} x {len(config.ports)} "
                   f"port{'s' if len(config.ports) != 1 else ''} ({config.probe_count} probes) "
                   f"{rate} on cluster {cluster}, seed {config.seed}"
                   + (" (dry run: nothing is sent)" if config.is_dry_run else ""), err=True)
    status_line = (ClusterStatusLine(force=bool(status))
                   if not quiet and status is not False else None)
    writer: ResultWriter | None = None

    def on_status(progress: Any) -> None:
        if writer is not None:
            writer.stream.flush()
        if status_line is not None:
            status_line(progress)

    started = time.time()

    def open_output() -> ResultWriter:
        return output_spec.open(started=started, ports=config.ports,
                                udp_ports=config.udp_ports, ping=config.ping)

    interrupted = False
    run = None
    try:
        with connect(cluster, config) as client:
            run = scan_on_cluster(config, client, on_status=on_status,
                                  min_workers=min_workers)
            with run, _interrupts(run):
                for result in run:
                    if writer is None:
                        writer = open_output()
                    writer.write(result)
    except Error as error:
        fail_with(error)
    except OSError as error:
        fail(f"cannot use cluster {cluster}: {error}", EXIT_FAILED)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if status_line is not None:
            status_line.clear()
        if writer is None and run is not None and run.summary is not None:
            writer = open_output()
        if writer is not None:
            writer.close()
    summary = run.summary if run is not None else None
    if summary is not None:
        if json_summary:
            typer.echo(cluster_summary_json(summary), err=True)
        elif not quiet:
            typer.echo(render_cluster_summary(summary), err=True)
        interrupted = interrupted or summary.interrupted
    if interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
