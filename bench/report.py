"""Turn a bench run (results.json) into the markdown tables and PNG plots in bench/results/.

Pure functions over plain data: the numbers come from the run file, never from here, and
every table says which counter and clock produced its figures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pyscan.bench_command import Spread, ratio, summarize, wire_bits_per_second

Run = Mapping[str, Any]

CEILING_OF = {"af-packet": "bare_tpacket", "af-xdp": "bare_afxdp"}


def group_rates(runs: Iterable[Run], key: str = "sink_pps") -> dict[tuple[str, int], Spread]:
    """Median/spread of ``key`` per (contender, threads), skipping failed or empty runs."""
    grouped: dict[tuple[str, int], list[float]] = defaultdict(list)
    for run in runs:
        value = run.get(key)
        if value is not None and not run.get("error"):
            grouped[(str(run["contender"]), int(run["threads"]))].append(float(value))
    return {k: summarize(v) for k, v in grouped.items() if v}


def cpu_ns_per_frame(runs: Iterable[Run]) -> dict[tuple[str, int], float]:
    """Median CPU ns per frame the contender counted as sent, per (contender, threads)."""
    grouped: dict[tuple[str, int], list[float]] = defaultdict(list)
    for run in runs:
        if run.get("cpu_ns") and run.get("self_sent"):
            grouped[(str(run["contender"]), int(run["threads"]))].append(
                int(run["cpu_ns"]) / int(run["self_sent"]))
    return {k: summarize(v).median for k, v in grouped.items()}


def _fmt_rate(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.3f} Mpps"
    if value >= 1e3:
        return f"{value / 1e3:.1f} kpps"
    return f"{value:.0f} pps"


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _ratio_to(spread: Spread, other: Spread | None) -> str:
    """``spread``'s median over ``other``'s, formatted; "-" without ``other``."""
    return _fmt_ratio(ratio(spread.median, other.median if other else None))


def _fmt_spread(spread: Spread) -> str:
    return f"{_fmt_rate(spread.low)} - {_fmt_rate(spread.high)} ({spread.relative:.0%})"


def tx_table(runs: Sequence[Run]) -> list[str]:
    rates = group_rates(runs)
    own = group_rates(runs, "self_pps")
    exact: dict[tuple[str, int], list[bool]] = defaultdict(list)
    frame: dict[tuple[str, int], int] = {}
    cpu = cpu_ns_per_frame(runs)
    for run in runs:
        key = (str(run["contender"]), int(run["threads"]))
        if run.get("self_sent") is not None and not run.get("error"):
            exact[key].append(int(run["self_sent"]) == int(run["sink_frames"]))
        if run.get("frame_len"):
            frame[key] = int(run["frame_len"])
    lines = [
        "| contender | TX threads | frame B | TX rate at sink (median) | spread (min - max) "
        "| Gbit/s on the wire | ÷ bare TPACKET | ÷ bare AF_XDP | own count pps "
        "| sent = received | CPU ns/pkt |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for key in sorted(rates, key=lambda k: (k[1], -rates[k].median)):
        name, threads = key
        spread = rates[key]
        gbps = wire_bits_per_second(spread.median, frame.get(key, 60)) / 1e9
        tp = rates.get(("bare_tpacket", threads))
        xdp = rates.get(("bare_afxdp", threads))
        checks = exact.get(key)
        exact_text = "-" if not checks else (
            f"yes ({len(checks)}/{len(checks)})" if all(checks)
            else f"NO ({checks.count(True)}/{len(checks)})")
        cpu_text = "-" if key not in cpu else f"{cpu[key]:.0f}"
        lines.append(
            f"| {name} | {threads} | {frame.get(key, '-')} | {_fmt_rate(spread.median)} "
            f"| {_fmt_spread(spread)} | {gbps:.3f} "
            f"| {_ratio_to(spread, tp)} "
            f"| {_ratio_to(spread, xdp)} "
            f"| {_fmt_rate(own[key].median) if key in own else '-'} | {exact_text} "
            f"| {cpu_text} |")
    return lines


def probe_rates(runs: Iterable[Run]) -> dict[tuple[str, str, int], Spread]:
    """Median/spread per (probe, contender, threads): the sink's rate for the sink runs, the
    own count for the null driver's (nothing reaches a sink)."""
    grouped: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for run in runs:
        value = run.get("self_pps" if run["contender"] == "null" else "sink_pps")
        if value is not None and not run.get("error"):
            grouped[(str(run.get("probe", "tcp-syn")), str(run["contender"]),
                     int(run["threads"]))].append(float(value))
    return {k: summarize(v) for k, v in grouped.items() if v}


def probe_table(runs: Sequence[Run], tcp_runs: Sequence[Run] = (),
                generation: Sequence[Run] = ()) -> list[str]:
    """One row per (probe type, contender, threads): pyscan's rate against the bare loop that
    resends a frame of the same protocol and length (÷ bare), against zmap's module for the
    probe with as many threads (pyscan drivers), and against the same contender's TCP SYN rate
    of the tx section (÷ its SYN)."""
    rates = probe_rates(runs)
    syn = {**group_rates(tcp_runs), **{key: spread for key, spread in group_rates(
        generation, "self_pps").items() if key[0] == "null"}}
    frame: dict[tuple[str, str, int], int] = {}
    for run in runs:
        if run.get("frame_len") and not run.get("error"):
            frame[(str(run.get("probe", "tcp-syn")), str(run["contender"]),
                   int(run["threads"]))] = int(run["frame_len"])
    lines = ["| probe | contender | TX threads | frame B | rate (median) | spread (min - max) "
             "| ÷ bare loop, same frame | ÷ zmap, same probe | ÷ its TCP SYN rate |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    order = {name: i for i, name in enumerate(("bare_tpacket", "af-packet", "bare_afxdp",
                                               "af-xdp", "xdp-live", "zmap", "null"))}
    for key in sorted(rates, key=lambda k: (k[0], k[2], order.get(k[1], 99), k[1])):
        probe, name, threads = key
        spread = rates[key]
        ceiling = CEILING_OF.get(name)
        bare = rates.get((probe, ceiling, threads)) if ceiling else None
        own_syn = syn.get((name, threads))
        zmap = rates.get((probe, "zmap", threads)) if name in CEILING_OF or name == "xdp-live" \
            else None
        lines.append(
            f"| {probe} | {name} | {threads} | {frame.get(key, '-')} "
            f"| {_fmt_rate(spread.median)} | {_fmt_spread(spread)} "
            f"| {_ratio_to(spread, bare)} | {_ratio_to(spread, zmap)} "
            f"| {_ratio_to(spread, own_syn)} |")
    return lines


def failures(runs: Iterable[Run]) -> list[str]:
    seen = {}
    for run in runs:
        if run.get("error"):
            probe = run.get("probe", "tcp-syn")
            name = run["contender"] + ("" if probe == "tcp-syn" else f" {probe}")
            seen[(name, run["threads"])] = run["error"]
    return [f"- {name} ({threads} thread(s)) failed: {error}"
            for (name, threads), error in sorted(seen.items())]


def fidelity_table(runs: Sequence[Run]) -> list[str]:
    grouped: dict[tuple[str, float], list[float]] = defaultdict(list)
    for run in runs:
        if run.get("sink_pps") is not None and not run.get("error") and run.get("requested_pps"):
            grouped[(str(run["contender"]), float(run["requested_pps"]))].append(
                float(run["sink_pps"]))
    lines = ["| contender | requested | achieved at sink (median) | spread (min - max) "
             "| error of median |", "|---|---:|---:|---:|---:|"]
    for (name, requested), values in sorted(grouped.items()):
        spread = summarize(values)
        lines.append(f"| {name} | {_fmt_rate(requested)} | {_fmt_rate(spread.median)} "
                     f"| {_fmt_spread(spread)} | {(spread.median / requested - 1):+.2%} |")
    return lines


def generation_table(runs: Sequence[Run]) -> list[str]:
    rates = group_rates(runs, "self_pps")
    cpu = cpu_ns_per_frame(runs)
    lines = ["| generator | TX threads | frames/s (median, wall clock) | spread (min - max) "
             "| CPU ns/frame | per core (1e9 / CPU ns) | ÷ bare_gen | scaling vs 1 thread |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key, spread in sorted(rates.items(), key=lambda kv: (kv[0][0] != "null", kv[0])):
        name, threads = key
        ns = cpu.get(key)
        bare = rates.get(("bare_gen", threads))
        one = rates.get((name, 1))
        lines.append(
            f"| {name} | {threads} | {_fmt_rate(spread.median)} | {_fmt_spread(spread)} "
            f"| {'-' if ns is None else f'{ns:.1f}'} "
            f"| {'-' if ns is None else f'{1e3 / ns:.1f} M/s'} "
            f"| {_ratio_to(spread, bare)} "
            f"| {_ratio_to(spread, one)} |")
    return lines


def memory_table(rows: Sequence[Run]) -> list[str]:
    lines = ["| targets | probes | peak RSS | wall s | sent |", "|---|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['label']} | {row['probes']:,} | {row['max_rss_kib'] / 1024:.1f} MiB "
                     f"| {row['wall_s']:.2f} | {row.get('sent', '-'):,} |")
    return lines


def dedup_table(rows: Sequence[Run]) -> list[str]:
    lines = ["| reported-set | replies | peak RSS | RSS - RSS before | set bytes / reply "
             "| longest RX ring full | ring full > 10 ms | worst insert (wall) | wall s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    cpu = []
    for row in rows:
        if row.get("error"):
            lines.append(f"| {row['variant']} | {row.get('mode', '-')} | failed: {row['error']} "
                         "| | | | | | |")
            continue
        if row["mode"] == "cpu":
            cpu.append(row)
            continue
        what = ("lab: /16 x 200 ports, all RST" if row["mode"] == "lab"
                else "sparse (/15 x 65536 ports)")
        per_reply = (f"{row['dedup_bytes'] / row['replies']:.2f} B" if "dedup_bytes" in row
                     else "-")
        worst = (f"{row['dedup_max_insert_ns'] / 1e6:.2f} ms" if "dedup_max_insert_ns" in row
                 else "-")
        lines.append(
            f"| {row['variant']} | {what}: {row['replies']:,} "
            f"| {row['max_rss_kib'] / 1024:.1f} MiB "
            f"| {(row['max_rss_kib'] - row['rss_before_kib']) / 1024:.1f} MiB | {per_reply} "
            f"| {row['ring_full_max_ns'] / 1e6:.1f} ms | {row['ring_full_over_10ms']:,} "
            f"| {worst} | {row['wall_s']:.1f} |")
    for row in cpu:
        lines += ["", f"Worst single insert in thread CPU time (no preemption counted): "
                      f"{row['sparse_max_insert_cpu_ns'] / 1e3:.0f} us over {row['replies']:,} "
                      f"sparse replies; {row['front_max_insert_cpu_ns'] / 1e3:.0f} us when each "
                      f"of 65536 inserts opens a block in front of all others on one port"
                      + (f"; {row['inserts_over_1ms']} of the sparse inserts took over 1 ms, "
                         f"{row['inserts_over_100us']} over 100 us."
                         if "inserts_over_1ms" in row else ".")]
    return lines


def accuracy_table(rows: Sequence[Run]) -> list[str]:
    """One row per (probe type, rate, scanner); rows of runs before probe types existed are
    TCP SYN rows. `lab drops`: UDP probes to open pairs the lab's responders never read
    (socket buffer full), so replies no scanner could have seen."""
    lines = ["| probe | scanner | requested rate | probes | open (truth) | found | recall "
             "| false positives | duplicates | lab drops | wall s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        probe = row.get("probe", "tcp-syn")
        drops = row.get("lab_dropped")
        drops_text = "-" if drops is None else f"{drops:,}"
        if row.get("error"):
            lines.append(f"| {probe} | {row['scanner']} | {_fmt_rate(row['rate'])} | - | - | - "
                         f"| - | - | - | {drops_text} | failed: {row['error']} |")
            continue
        lines.append(
            f"| {probe} | {row['scanner']} | {_fmt_rate(row['rate'])} | {row['probes']:,} "
            f"| {row['truth']:,} | {row['found']:,} | {row['recall']:.4%} "
            f"| {row['false_positives']:,} | {row['duplicates']:,} | {drops_text} "
            f"| {row['wall_s']:.1f} |")
    return lines


def target_checks(results: Mapping[str, Any]) -> list[str]:
    """The project's stated targets, each with the measured figure and a verdict."""
    tx = group_rates(results.get("tx", []))
    lines = ["| target | measured | verdict |", "|---|---|---|"]

    def check(label: str, value: float | None, goal: float, what: str) -> None:
        if value is None:
            lines.append(f"| {label} | not measured | - |")
        else:
            lines.append(f"| {label} | {what.format(value)} | "
                         f"{'met' if value >= goal else 'NOT met'} |")

    def median(name: str, threads: int) -> float | None:
        spread = tx.get((name, threads))
        return spread.median if spread else None

    for threads in (1, 2):
        for driver, ceiling in CEILING_OF.items():
            check(f"{driver} >= 90 % of {ceiling}, {threads} thread(s)",
                  ratio(median(driver, threads), median(ceiling, threads)), 0.9, "{:.1%}")
            if median(f"{driver} scan", threads) is not None:
                check(f"full {driver} scan (RX thread, reply filter, output) >= 95 % of "
                      f"{ceiling}, {threads} thread(s)",
                      ratio(median(f"{driver} scan", threads), median(ceiling, threads)), 0.95,
                      "{:.1%}")
    for anchor in ("masscan", "zmap"):
        check(f"af-xdp >= 2x {anchor} (1 thread each)",
              ratio(median("af-xdp", 1), median(anchor, 1)), 2.0, "{:.2f}x")
    check("xdp-live >= 4x bare_afxdp (1 thread each)",
          ratio(median("xdp-live", 1), median("bare_afxdp", 1)), 4.0, "{:.2f}x")
    check("xdp-live, 2 threads >= 7x bare_afxdp, 1 thread",
          ratio(median("xdp-live", 2), median("bare_afxdp", 1)), 7.0, "{:.2f}x")
    check("af-packet >= 1.3x masscan (1 thread each)",
          ratio(median("af-packet", 1), median("masscan", 1)), 1.3, "{:.2f}x")
    probes = probe_rates(results.get("probes", []))
    for probe in sorted({key[0] for key in probes}):
        for driver, ceiling in CEILING_OF.items():
            for threads in (1, 2):
                mine, bare = probes.get((probe, driver, threads)), probes.get(
                    (probe, ceiling, threads))
                if mine and bare:
                    check(f"{driver} {probe} >= 90 % of {ceiling} with the same frame, "
                          f"{threads} thread(s)", ratio(mine.median, bare.median), 0.9,
                          "{:.1%}")
    gen = group_rates(results.get("generation", []), "self_pps").get(("null", 1))
    check("null >= 25 M frames/s on one core (wall clock, 1 thread)",
          gen.median if gen else None, 25e6, "{:,.0f} frames/s")
    # issue 9's generation goals: per core (CPU ns per frame, so a busy second core does not
    # count against it) and the 2-thread scaling of the wall-clock rate
    gen_cpu = cpu_ns_per_frame(results.get("generation", []))
    for threads in (1, 2):
        null_ns, bare_ns = gen_cpu.get(("null", threads)), gen_cpu.get(("bare_gen", threads))
        check(f"null >= 95 % of bare_gen per core (1e9 / CPU ns per frame), {threads} "
              f"thread(s)", ratio(bare_ns, null_ns), 0.95, "{:.1%}")
    gen2 = group_rates(results.get("generation", []), "self_pps").get(("null", 2))
    check("null with 2 threads >= 1.9x null with 1 (wall clock)",
          ratio(gen2.median if gen2 else None, gen.median if gen else None), 1.9, "{:.2f}x")
    fidelity = results.get("fidelity", [])
    worst = None
    grouped: dict[tuple[str, float], list[float]] = defaultdict(list)
    for run in fidelity:
        if run.get("sink_pps") and run.get("requested_pps") and str(
                run["contender"]) in ("af-packet", "af-xdp", "xdp-live"):
            grouped[(run["contender"], float(run["requested_pps"]))].append(run["sink_pps"])
    for (_, requested), values in grouped.items():
        err = abs(summarize(values).median / requested - 1)
        worst = err if worst is None else max(worst, err)
    if worst is None:
        lines.append("| requested rate held within 2 % (1k - 500k pps) | not measured | - |")
    else:
        lines.append(f"| requested rate held within 2 % (1k - 500k pps) | worst median error "
                     f"{worst:.2%} | {'met' if worst <= 0.02 else 'NOT met'} |")
    memory = results.get("memory", [])
    if len(memory) >= 2:
        small, large = memory[0]["max_rss_kib"], memory[-1]["max_rss_kib"]
        lines.append(f"| peak RSS flat in target count | {memory[0]['label']}: "
                     f"{small / 1024:.1f} MiB, {memory[-1]['label']}: {large / 1024:.1f} MiB "
                     f"| {'met' if large <= small * 1.1 + 2048 else 'NOT met'} |")
    lines.extend(dedup_checks(results.get("dedup", [])))
    for row in results.get("accuracy", []):
        if str(row.get("scanner", "")).startswith("pyscan") and not row.get("error"):
            ok = row["recall"] >= 0.999 and not row["false_positives"] and not row["duplicates"]
            probe = row.get("probe", "tcp-syn")
            missed = row["truth"] - round(row["recall"] * row["truth"])
            dropped = row.get("lab_dropped") or 0
            verdict = "met" if ok else "NOT met"
            if not ok and missed and dropped >= missed and not row["false_positives"] \
                    and not row["duplicates"]:
                # every miss is a probe the lab's responder never read: nothing to score
                verdict = f"lab-limited: its responders dropped {dropped}, every miss"
            lines.append(f"| {row['scanner']}{'' if probe == 'tcp-syn' else ' ' + probe} "
                         f"recall >= 99.9 %, no FP, no duplicates at "
                         f"{_fmt_rate(row['rate'])} | recall {row['recall']:.3%}, "
                         f"FP {row['false_positives']}, dup {row['duplicates']}"
                         f"{f', lab drops {dropped}' if dropped else ''} | {verdict} |")
    return lines


def dedup_checks(rows: Sequence[Run]) -> list[str]:
    """The issue-9 targets: <= 4 B per distinct reply at 10^8, no RX stall over 10 ms, and
    the README's memory row: peak RSS with replies."""
    new = [r for r in rows if r.get("variant") == "new" and not r.get("error")]
    sparse = sorted((r for r in new if r["mode"] == "sparse"), key=lambda r: r["replies"])
    lines = []
    if sparse:
        rss = ", ".join(f"{r['replies']:.0e}: {r['max_rss_kib'] / 1024:.0f} MiB"
                        for r in sparse).replace("e+0", "e")
        old = {r["replies"]: r for r in rows if r.get("mode") == "sparse"
               and r.get("variant", "").startswith("old") and not r.get("error")}
        old_rss = ", ".join(f"{n:.0e}: {r['max_rss_kib'] / 1024:.0f} MiB"
                            for n, r in sorted(old.items())).replace("e+0", "e")
        lines.append(f"| peak RSS with replies (null-driver injection, RX thread running) "
                     f"| {rss}{f' (old set: {old_rss})' if old_rss else ''} | - |")
        big = sparse[-1]
        per_reply = big["dedup_bytes"] / big["replies"]
        lines.append(f"| dedup <= 4 B per distinct reply at 10^8 | {per_reply:.2f} B at "
                     f"{big['replies']:,} | "
                     f"{'met' if per_reply <= 4 and big['replies'] >= 10**8 else 'NOT met'} |")
    cpu = [r for r in new if r["mode"] == "cpu"]
    if cpu:
        worst = max(max(r["sparse_max_insert_cpu_ns"], r["front_max_insert_cpu_ns"]) for r in cpu)
        lines.append(f"| no RX stall over 10 ms from dedup (worst insert, thread CPU time) "
                     f"| {worst / 1e6:.2f} ms | {'met' if worst <= 10e6 else 'NOT met'} |")
    return lines


METHOD_ORDER = ("sink", "own", "exact", "cpu", "wire", "spread", "bare", "gen", "anchors")


def cluster_table(rows: list[dict[str, Any]]) -> list[str]:
    from bench.cluster import markdown_rows

    return markdown_rows(rows)


def markdown(results: Mapping[str, Any]) -> str:
    env = results["environment"]
    given = results.get("method", {})
    method = {key: given[key] for key in (*METHOD_ORDER, *sorted(given)) if key in given}
    out = [
        "# pyscan benchmark results",
        "",
        f"Run `{env['run_id']}` at {env['time_utc']} on Linux {env['kernel']}, "
        f"{env['cpus']} x {env['cpu']}; command `make bench` (`python -m bench.run`).",
        "",
        *([f"**Note:** {results['run_note']}", ""] if results.get("run_note") else []),
        "How it was measured (applies to every table unless it says otherwise):",
        "",
        *[f"- {text}" for text in method.values()],
        "",
        "## Targets",
        "",
        *target_checks(results),
        "",
        "## TX rate on the lab sink",
        "",
        *tx_table(results.get("tx", [])),
        *(["", *failures(results.get("tx", []))] if failures(results.get("tx", [])) else []),
        "",
        *(["## Probe types: ICMP echo and UDP against the bare loops (same frame)", "",
            "Sink-counted rate for the drivers and bare loops (as in the TX table); the null "
            "driver's own count (no link). ÷ its TCP SYN rate divides by the same contender's "
            "median in the TX table (null: the generation table). ICMP echo has one probe per "
            "address: each pyscan run sends 16 passes over 198.19.0.0/16 per engine and starts "
            "the next engine when one is spent (the gaps count). UDP: ports 1-1024 of the /16, "
            "each with the DNS version.bind payload, so every frame is the same length. zmap "
            "2.1.1: -M icmp_echoscan (its echo carries a payload: longer frames) and -M udp -p 53 "
            "with pyscan's DNS payload, -P 100 probes per target as in the TX table.", "",
            *probe_table(results["probes"], results.get("tx", []),
                         results.get("generation", [])),
            *(["", *failures(results["probes"])] if failures(results["probes"]) else []),
            ""] if results.get("probes") else []),
        "## Rate fidelity",
        "",
        *fidelity_table(results.get("fidelity", [])),
        "",
        "## Generation speed (null driver, no I/O)",
        "",
        *generation_table(results.get("generation", [])),
        "",
        "## Memory",
        "",
        *memory_table(results.get("memory", [])),
        "",
        "## Dedup (distinct replies through null-driver injection)",
        "",
        *dedup_table(results.get("dedup", [])),
        "",
        "## Accuracy on the truth lab",
        "",
        *accuracy_table(results.get("accuracy", [])),
        "",
        *(["## Cluster (Dask): local:2 against 2 TX threads, streaming, control plane", "",
           *cluster_table(results["cluster"]), ""] if results.get("cluster") else []),
        *[f"- {note}" for note in results.get("notes", [])],
        "",
    ]
    return "\n".join(out)


# --- plots -------------------------------------------------------------------------------------


def plot_all(results: Mapping[str, Any], directory: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    tx = group_rates(results.get("tx", []))
    if tx:
        keys = sorted(tx, key=lambda k: (k[1], -tx[k].median))
        fig, ax = plt.subplots(figsize=(9, 4.5))
        labels = [f"{name}\n{threads}T" for name, threads in keys]
        medians = [tx[k].median / 1e6 for k in keys]
        errors = [[(tx[k].median - tx[k].low) / 1e6 for k in keys],
                  [(tx[k].high - tx[k].median) / 1e6 for k in keys]]
        colors = ["#888888" if k[0].startswith("bare") else "#1f77b4"
                  if k[0].startswith("af-") else "#d62728" for k in keys]
        ax.bar(labels, medians, yerr=errors, capsize=4, color=colors)
        ax.set_ylabel("Mpps received by the sink (median, min-max)")
        ax.set_title("TX rate on the lab sink (grey: bare ceilings, red: masscan/zmap)")
        ax.tick_params(axis="x", labelsize=8)
        fig.tight_layout()
        written.append(directory / "tx_rate.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    fidelity: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in results.get("fidelity", []):
        if run.get("sink_pps") and run.get("requested_pps"):
            fidelity[run["contender"]][float(run["requested_pps"])].append(run["sink_pps"])
    if fidelity:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, by_rate in sorted(fidelity.items()):
            requested = sorted(by_rate)
            errors = [(summarize(by_rate[r]).median / r - 1) * 100 for r in requested]
            ax.plot(requested, errors, marker="o", label=name)
        ax.axhspan(-2, 2, color="#dddddd", label="target: within 2 %")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("requested pps")
        ax.set_ylabel("achieved at the sink vs requested, % (median)")
        ax.set_title("Rate fidelity")
        ax.legend()
        fig.tight_layout()
        written.append(directory / "rate_fidelity.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    gen = group_rates(results.get("generation", []), "self_pps")
    if gen:
        keys = sorted(gen, key=lambda k: (k[1], k[0] != "null"))
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.bar([f"{k[0]}\n{k[1]} thread(s)" for k in keys], [gen[k].median / 1e6 for k in keys],
               color=["#1f77b4" if k[0] == "null" else "#888888" for k in keys],
               yerr=[[(gen[k].median - gen[k].low) / 1e6 for k in keys],
                     [(gen[k].high - gen[k].median) / 1e6 for k in keys]], capsize=4)
        ax.axhline(25, linestyle=":", color="black", label="target 25 M/core")
        ax.set_ylabel("M frames/s generated (grey: bare C ceiling)")
        ax.legend()
        fig.tight_layout()
        written.append(directory / "generation.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    accuracy = [r for r in results.get("accuracy", []) if not r.get("error")]
    if accuracy:
        fig, ax = plt.subplots(figsize=(6, 4))
        by_scanner: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for row in accuracy:
            probe = row.get("probe", "tcp-syn")
            by_scanner[row["scanner"] + ("" if probe == "tcp-syn" else f" {probe}")].append(
                (row["rate"], row["recall"] * 100))
        for name, points in sorted(by_scanner.items()):
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
        ax.set_xscale("log")
        ax.set_xlabel("requested pps")
        ax.set_ylabel("recall %")
        ax.legend()
        fig.tight_layout()
        written.append(directory / "accuracy.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written
