"""``python -m bench.run``: every benchmark, side by side in one run, into bench/results/.

Sections (each bounded in time; the whole run takes a few minutes on 2 cores):

1. TX rate on the sink lab: each available pyscan driver, the bare TPACKET and AF_XDP ceiling
   loops (bench/*.c, compiled here with gcc), masscan and zmap; 1 and 2 TX threads; several
   repetitions, interleaved so that drift in the machine hits every contender alike.
2. Rate fidelity: requested vs achieved at 1k, 10k, 100k, 500k pps.
3. Generation speed of the null driver, 1 and 2 TX threads.
3b. Probe types besides TCP SYN (``probes``): ICMP echo and UDP (DNS payload) per driver,
   each next to the bare loops resending a frame of the same protocol and size, and the
   null driver's generation speed per probe type.
4. Peak RSS of complete null-driver scans of a /24 and of a /8-sized target set.
5. Accuracy on pyscan's truth lab: recall, false positives and duplicates for pyscan drivers,
   masscan and zmap at several rates.
6. Dedup: 10^6, 10^7, 10^8 distinct replies injected through the null driver into a running
   RX thread, peak RSS and worst RX stall, this tree against the merge-base (bench/dedup.py).

``--only`` runs some sections and keeps the others' last results from results.json.

Results: bench/results/results.json (every raw run), RESULTS.md (tables), *.png (plots);
the README's results section is rewritten between its bench markers. Raw logs and the
compiled loops stay in bench/results/raw/<run id>/ (not committed).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import contenders
from bench.report import markdown, plot_all
from bench.sinklab import SinkLab
from pyscan.bench_command import BenchError, environment

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
README_BEGIN = "<!-- bench results: begin (written by python -m bench.run) -->"
README_END = "<!-- bench results: end -->"

FIDELITY_RATES = (1_000.0, 10_000.0, 100_000.0, 500_000.0)
SINK_DRIVERS = ("af-packet", "af-xdp", "xdp-live")
# Probe types measured in the probes section (IPv4 TCP SYN is the tx section's). The IPv6 ones
# go last: the sink lab's scan side gets IPv6 only when they start (SinkLab.ensure_ipv6).
PROBE_ROWS = ("icmp-echo", "udp", "tcp-syn6", "icmp-echo6")
# zmap 2.1.1 (Debian) has no IPv6 support at all: no zmap rows for these
NO_ZMAP_PROBES = ("tcp-syn6", "icmp-echo6")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def available_drivers() -> dict[str, str]:
    """pyscan drivers that can run here -> why not, for those that cannot ('' = available)."""
    try:
        from pyscan.drivers import DRIVERS
    except ImportError as error:
        return dict.fromkeys((*SINK_DRIVERS, "null"), f"pyscan.drivers missing: {error}")
    status = {}
    for name in (*SINK_DRIVERS, "null", "pfring-zc"):
        driver = DRIVERS.get(name)
        if driver is None:
            status[name] = "not in pyscan.drivers.DRIVERS"
            continue
        ok, reason = driver.available()
        status[name] = "" if ok else reason
    return status


def _attempt(results: list[dict[str, Any]], what: str, action: Callable[[], Any]) -> None:
    try:
        run = action()
    except (BenchError, OSError, subprocess.SubprocessError, ValueError) as error:
        log(f"{what}: failed: {error}")
        results.append({"contender": what.split()[0], "threads": 0, "error": str(error)})
        return
    record = asdict(run)
    record.get("extra", {}).pop("stdout", None)
    record.get("extra", {}).pop("stderr", None)
    results.append(record)
    rate = record.get("sink_pps")
    log(f"{what}: sink {record['sink_frames']:,} frames, steady "
        f"{rate / 1e6 if rate else 0:.3f} Mpps, own count {record.get('self_sent')}"
        f"{', error: ' + record['error'] if record.get('error') else ''}")


def tx_section(lab: SinkLab, workdir: Path, drivers: dict[str, str], reps: int,
               seconds: float) -> list[dict[str, Any]]:
    binaries = contenders.compile_bare_loops(workdir)
    plan: list[tuple[str, Callable[[], Any]]] = []
    for threads in (1, 2):
        for name in ("bare_tpacket", "bare_afxdp"):
            binary = binaries[name]
            plan.append((f"{name} {threads}T", lambda b=binary, t=threads: contenders.run_bare(
                lab, b, seconds, 60, t)))
        for driver in SINK_DRIVERS:
            if not drivers.get(driver):
                plan.append((f"{driver} {threads}T", lambda d=driver, t=threads:
                             contenders.run_pyscan(lab, d, seconds, t)))
                # the same driver as a whole scanner: reply filter, RX thread, output
                plan.append((f"{driver} scan {threads}T", lambda d=driver, t=threads:
                             contenders.run_pyscan_scan(lab, workdir, d, seconds, t)))
        plan.append((f"zmap {threads}T", lambda t=threads: contenders.run_zmap_tx(
            lab, workdir, seconds, threads=t)))
    plan.append(("masscan 1T", lambda: contenders.run_masscan_tx(lab, workdir, seconds)))
    runs: list[dict[str, Any]] = []
    for rep in range(reps):
        for what, action in plan:
            _attempt(runs, f"{what} (run {rep + 1}/{reps})", action)
    return runs


def fidelity_section(lab: SinkLab, workdir: Path, drivers: dict[str, str], reps: int,
                     seconds: float) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    for rep in range(reps):
        for rate in FIDELITY_RATES:
            for driver in SINK_DRIVERS:
                if not drivers.get(driver):
                    _attempt(runs, f"{driver} at {rate:g} pps (run {rep + 1}/{reps})",
                             lambda d=driver, r=rate: contenders.run_pyscan(
                                 lab, d, seconds, 1, rate=r))
            _attempt(runs, f"masscan at {rate:g} pps (run {rep + 1}/{reps})",
                     lambda r=rate: contenders.run_masscan_tx(lab, workdir, seconds, rate=r))
            _attempt(runs, f"zmap at {rate:g} pps (run {rep + 1}/{reps})",
                     lambda r=rate: contenders.run_zmap_tx(lab, workdir, seconds, rate=r))
    return runs


def probe_plan(lab: SinkLab, workdir: Path, binaries: dict[str, Path], drivers: dict[str, str],
               seconds: float, probes: tuple[str, ...] = PROBE_ROWS,
               threads_list: tuple[int, ...] = (1, 2)) -> list[tuple[str, Callable[[], Any]]]:
    """(label, action) for every probe row on the sink: the bare loops with the probe's frame
    (protocol and length), each available pyscan driver sending that probe, and zmap's module
    for it."""
    from pyscan.bench_command import bench_probe

    plan: list[tuple[str, Callable[[], Any]]] = []
    for probe in probes:
        frame_len = bench_probe(probe).frame_len
        for threads in threads_list:
            for name in ("bare_tpacket", "bare_afxdp"):
                plan.append((f"{name} {probe} {threads}T",
                             lambda b=binaries[name], t=threads, p=probe, n=frame_len:
                             contenders.run_bare(lab, b, seconds, n, t, probe=p)))
            for driver in SINK_DRIVERS:
                if not drivers.get(driver):
                    plan.append((f"{driver} {probe} {threads}T",
                                 lambda d=driver, t=threads, p=probe: contenders.run_pyscan(
                                     lab, d, seconds, t, probe=p)))
            # zmap 2.1.1 has both modules (-M icmp_echoscan, -M udp); masscan's --ping and
            # -pU: cannot be made to last a TX run over the lab's /16 (no -P)
            if probe in NO_ZMAP_PROBES:
                continue
            plan.append((f"zmap {probe} {threads}T",
                         lambda t=threads, p=probe: contenders.run_zmap_tx(
                             lab, workdir, seconds, threads=t, probe=p)))
    return plan


def probes_section(lab: SinkLab, workdir: Path, drivers: dict[str, str], reps: int,
                   seconds: float, probes: tuple[str, ...] = PROBE_ROWS) -> list[dict[str, Any]]:
    binaries = contenders.compile_bare_loops(workdir)
    plan = probe_plan(lab, workdir, binaries, drivers, seconds, probes)
    runs: list[dict[str, Any]] = []
    for rep in range(reps):
        for what, action in plan:
            _attempt(runs, f"{what} (run {rep + 1}/{reps})", action)
        if not drivers.get("null"):
            for probe in probes:
                for threads in (1, 2):
                    runs.append(null_generation(probe, threads, seconds))
                    log(f"null {probe} {threads}T (run {rep + 1}/{reps}): "
                        + (f"failed: {runs[-1]['error']}" if runs[-1].get("error") else
                           f"{runs[-1]['self_pps'] / 1e6:.2f} M frames/s"))
    return runs


def null_generation(probe: str, threads: int, seconds: float) -> dict[str, Any]:
    """The null driver generating ``probe`` frames (bench/pyscan_tx.py), as a run record."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.pyscan_tx", "--driver", "null", "--duration",
         str(seconds), "--tx-threads", str(threads), "--probe", probe],
        capture_output=True, text=True, cwd=ROOT, timeout=seconds + 60)
    if done.returncode != 0:
        error = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"contender": "null", "threads": threads, "probe": probe, "error": error}
    report = json.loads(done.stdout)
    return {"contender": "null", "threads": threads, "probe": probe, "self_pps": report["pps"],
            "self_sent": report["sent"], "cpu_ns": report["cpu_ns"],
            "wall_s": report["wall_s"], "frame_len": report["frame_len"],
            "engines": report["sources"].get("engines", "")}


def generation_section(workdir: Path, reps: int, seconds: float) -> list[dict[str, Any]]:
    bare_gen = contenders.compile_bare_loops(workdir)["bare_gen"]
    runs: list[dict[str, Any]] = []
    for rep in range(reps):
        for threads in (1, 2):
            done = subprocess.run([str(bare_gen), str(seconds), str(threads)],
                                  capture_output=True, text=True, timeout=seconds + 30)
            report = contenders.parse_bare_output(done.stdout)
            sent, wall_ns = int(report["sent"]), int(report["wall_ns"])
            runs.append({"contender": "bare_gen", "threads": threads,
                         "self_pps": sent / (wall_ns / 1e9), "self_sent": sent,
                         "cpu_ns": int(report["cpu_ns"]), "wall_s": wall_ns / 1e9})
            log(f"bare_gen {threads}T (run {rep + 1}/{reps}): "
                f"{runs[-1]['self_pps'] / 1e6:.2f} M frames/s")
            done = subprocess.run(
                [sys.executable, "-m", "bench.pyscan_tx", "--driver", "null", "--duration",
                 str(seconds), "--tx-threads", str(threads)],
                capture_output=True, text=True, cwd=ROOT, timeout=seconds + 60)
            if done.returncode != 0:
                error = (done.stderr.strip().splitlines() or ["no output"])[-1]
                log(f"null {threads}T: failed: {error}")
                runs.append({"contender": "null", "threads": threads, "error": error})
                continue
            report = json.loads(done.stdout)
            runs.append({"contender": "null", "threads": threads, "self_pps": report["pps"],
                         "self_sent": report["sent"], "cpu_ns": report["cpu_ns"],
                         "wall_s": report["wall_s"], "queues": report["queues"]})
            log(f"null {threads}T (run {rep + 1}/{reps}): {report['pps'] / 1e6:.2f} M frames/s")
    return runs


MEMORY_SETS = (
    ("/24 x 1 port (198.19.0.0/24:80)", "198.19.0.0/24", "80"),
    ("/8-sized: /15 x 128 ports = 2^24 probes (198.18.0.0/15:1-128)", "198.18.0.0/15",
     "1-128"),
)


def memory_section() -> list[dict[str, Any]]:
    rows = []
    for label, target, ports in MEMORY_SETS:
        done = subprocess.run([sys.executable, "-m", "bench.memory_probe", target, ports],
                              capture_output=True, text=True, cwd=ROOT, timeout=300)
        if done.returncode != 0:
            log(f"memory {label}: failed: {done.stderr.strip()[-300:]}")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["label"] = label
        rows.append(row)
        log(f"memory {label}: peak RSS {row['max_rss_kib'] / 1024:.1f} MiB")
    return rows


def update_readme(table_md: str) -> None:
    if not README.exists():
        return
    text = README.read_text()
    if README_BEGIN not in text or README_END not in text:
        return
    pattern = re.compile(re.escape(README_BEGIN) + ".*?" + re.escape(README_END), re.DOTALL)
    README.write_text(pattern.sub(lambda _: f"{README_BEGIN}\n{table_md}\n{README_END}", text))


METHOD = {
    "sink": "TX rate = frames counted by the sink (veth per-queue rx_queue_N_xdp_packets of the "
            "target veth, whose XDP program drops everything) over a steady window: the first "
            "to the last 0.25 s wall-clock sample taken while frames were still arriving "
            "(start-up, ramp and tail excluded). Same instrument for every contender; each "
            "sample (ethtool -S in the sink namespace) costs about 3 ms of CPU, about 1 % of "
            "one core, alike for all.",
    "own": "'own count pps' = what the contender itself counted as sent, over its own wall "
           "clock (driver ring counter for pyscan, completions/ring status for the bare loops; "
           "masscan and zmap are measured by the sink only).",
    "exact": "'sent = received' compares the contender's own count with the sink's count of "
             "the whole run (IPv6 is disabled in the lab so nothing else crosses the link).",
    "cpu": "CPU ns/pkt = CPU time of the sending threads (CLOCK_THREAD_CPUTIME_ID) / frames "
           "sent; on veth the kernel's transmit work runs in the sender's context, so it is "
           "included; the sink's XDP work is not.",
    "wire": "Gbit/s on the wire = pps x (max(frame + 4 FCS, 64) + 20) x 8; veth has no link "
            "speed, so no line-rate fraction is given for the lab.",
    "spread": "Medians of N interleaved repetitions; spread = min - max (and (max - min) / "
              "median). The machine is shared (2 cores) and other jobs may run: the spread "
              "shows how much that moved the numbers.",
    "bare": "Ceilings: bench/bare_tpacket.c (TPACKET_V2 TX ring, QDISC_BYPASS) and "
            "bench/bare_afxdp.c (libxdp xsk, copy mode, need_wakeup) resend one constant "
            "60-byte frame written once per slot; N threads = N sockets on queues 0..N-1.",
    "gen": "Generation ceiling: bench/bare_gen.c runs the engine's algorithms without the "
           "engine (pyscan's keyed permutation, SipHash cookie, 58-byte template with "
           "incremental checksums into a slot ring), no ring interface, rate limiter or "
           "counters; frames/s per core = 1e9 / CPU ns per frame.",
    "anchors": "masscan 1.3.2 and zmap 2.1.1 (Debian) run inside the lab scan namespace only, "
               "targets 198.19.0.0/16 (checked; masscan via --echo), zmap with an empty -C "
               "config and -b blocklist; masscan: --router-mac/--adapter/--adapter-ip, "
               "--rate 100M for max, stopped with SIGTERM after a TX run (accuracy runs: see the "
               "notes under the accuracy table); zmap: -r 0 for max, -P 100 probes "
               "per target so a /16 lasts, -t caps the run; zmap's -r counts targets, so a "
               "packet rate R is requested as -r R/20 -P 20.",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="per TX-rate run")
    parser.add_argument("--quick", action="store_true", help="1 repetition, 2 s runs")
    parser.add_argument("--only", default=",".join(ALL_SECTIONS))
    parser.add_argument("--accuracy-probes",
                        default="tcp-syn,icmp-echo,udp,tcp-syn6,icmp-echo6",
                        help="probe types of the accuracy section; the others' rows are kept "
                             "from the last results.json")
    parser.add_argument("--probe-rows", default=",".join(PROBE_ROWS),
                        help="probe types of the probes section; the others' rows are kept "
                             "from the last results.json")
    parser.add_argument("--report-only", action="store_true",
                        help="re-render tables, plots and README from results.json")
    parser.add_argument("--note", help="one line shown under the run's header (README too), "
                                       "e.g. that the machine was loaded; with --report-only "
                                       "it is added to results.json")
    args = parser.parse_args(argv)
    if args.report_only:
        results_file = RESULTS / "results.json"
        previous = json.loads(results_file.read_text())
        if args.note is not None:
            previous["run_note"] = args.note
            results_file.write_text(json.dumps(previous, indent=1, sort_keys=True))
        publish(previous)
        return 0
    reps, seconds = (1, 2.0) if args.quick else (args.reps, args.seconds)
    sections = set(args.only.split(","))
    env = environment()
    run_id = env["run_id"]
    workdir = RESULTS / "raw" / run_id
    workdir.mkdir(parents=True, exist_ok=True)
    drivers = available_drivers()
    results: dict[str, Any] = {"environment": env, "method": dict(METHOD), "drivers": drivers,
                               "notes": []}
    if args.note:
        results["run_note"] = args.note
    for name, reason in drivers.items():
        if reason:
            results["notes"].append(f"pyscan driver {name} not measured: {reason}")
    log(f"run {env['run_id']}: kernel {env['kernel']}, {env['cpus']} x {env['cpu']}")
    started = time.monotonic()
    if sections & {"tx", "fidelity", "probes"}:
        with SinkLab(workdir, queues=2) as lab:
            log(f"sink lab up: {lab.scan_ns}/{lab.scan_if} -> {lab.target_ns}/{lab.target_if}")
            if "tx" in sections:
                results["tx"] = tx_section(lab, workdir, drivers, reps, seconds)
            if "fidelity" in sections:
                results["fidelity"] = fidelity_section(lab, workdir, drivers, reps,
                                                       min(seconds, 2.0))
            if "probes" in sections:
                rows = tuple(args.probe_rows.split(","))
                results["probes"] = keep_other_probe_rows(
                    probes_section(lab, workdir, drivers, reps, seconds, rows), rows, run_id)
    if "generation" in sections:
        if drivers.get("null"):
            results["notes"].append("generation speed not measured: null driver unavailable")
        else:
            results["generation"] = generation_section(workdir, reps, min(seconds, 2.0))
    if "memory" in sections:
        results["memory"] = memory_section()
    if "accuracy" in sections:
        from bench.accuracy import accuracy_section

        probes = tuple(args.accuracy_probes.split(","))
        results["accuracy"], notes = accuracy_section(workdir, drivers, log, probes)
        results["accuracy"] = keep_other_accuracy_rows(results["accuracy"], probes, run_id)
        results["notes"].extend(notes)
    if "dedup" in sections:
        from bench.dedup import dedup_section

        results["dedup"] = dedup_section(log)
    if "cluster" in sections:
        from bench.cluster import cluster_section

        results["cluster"], notes = cluster_section(log)
        results["notes"].extend(notes)
    results["wall_s"] = time.monotonic() - started
    keep_unmeasured_sections(results, sections)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True))
    publish(results)
    return 0


ALL_SECTIONS = ("tx", "fidelity", "probes", "generation", "memory", "accuracy", "dedup",
                "cluster")


def keep_other_accuracy_rows(rows: list[dict[str, Any]], probes: tuple[str, ...],
                             run_id: str) -> list[dict[str, Any]]:
    """Accuracy rows of this run (tagged with it) and, for the probe types it did not measure,
    the rows of the last results.json (which keep their own run tag)."""
    for row in rows:
        row.setdefault("run", run_id)
    previous_file = RESULTS / "results.json"
    if not previous_file.exists():
        return rows
    previous = json.loads(previous_file.read_text())
    earlier = previous.get("section_runs", {}).get("accuracy",
                                                   previous["environment"]["run_id"])
    kept = [dict(row, run=row.get("run", earlier)) for row in previous.get("accuracy", [])
            if row.get("probe", "tcp-syn") not in probes]
    return kept + rows


def keep_other_probe_rows(runs: list[dict[str, Any]], probes: tuple[str, ...],
                          run_id: str) -> list[dict[str, Any]]:
    """Probes-section runs of this run (tagged with it) and, for the probe types it did not
    measure, the runs of the last results.json (which keep their own run tag)."""
    for run in runs:
        run.setdefault("run", run_id)
    previous_file = RESULTS / "results.json"
    if not previous_file.exists():
        return runs
    previous = json.loads(previous_file.read_text())
    earlier = previous.get("section_runs", {}).get("probes", previous["environment"]["run_id"])
    kept = [dict(run, run=run.get("run", earlier)) for run in previous.get("probes", [])
            if run.get("probe", "tcp-syn") not in probes]
    return kept + runs


def keep_unmeasured_sections(results: dict[str, Any], sections: set[str]) -> None:
    """A partial run (--only) keeps the other sections of the last results.json, so the
    published tables stay whole; the environment then names both runs."""
    run_id = results["environment"]["run_id"]
    results["section_runs"] = {name: run_id for name in ALL_SECTIONS if name in results}
    previous_file = RESULTS / "results.json"
    if sections >= set(ALL_SECTIONS) or not previous_file.exists():
        return
    previous = json.loads(previous_file.read_text())
    earlier = previous.get("section_runs", {})
    kept = [name for name in ALL_SECTIONS if name not in sections and name in previous]
    for name in kept:
        results[name] = previous[name]
        results["section_runs"][name] = earlier.get(name, previous["environment"]["run_id"])
    if kept:
        results["notes"].append(
            "partial run (--only): " + ", ".join(
                f"{name} from run {results['section_runs'][name]}"
                for name in ALL_SECTIONS if name in results["section_runs"]))


def publish(results: dict[str, Any]) -> None:
    """RESULTS.md, the plots and the README section, all from one results dict."""
    table = markdown(results)
    (RESULTS / "RESULTS.md").write_text(table)
    plots = plot_all(results, RESULTS)
    summary = table.split("\n## TX rate", 1)[0].replace("\n## ", "\n#### ")
    update_readme(summary.replace("# pyscan benchmark results", "### Latest benchmark run")
                  + "\nFull tables and plots: [bench/results/RESULTS.md]"
                  "(bench/results/RESULTS.md).")
    log(f"done in {results.get('wall_s', 0):.0f} s: bench/results/RESULTS.md, "
        f"{', '.join(p.name for p in plots)}")


if __name__ == "__main__":
    sys.exit(main())
