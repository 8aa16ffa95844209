"""The dedup benchmark: distinct replies through the null driver's reply injection into a
running RX thread (bench/dedup_inject.c), peak RSS and worst RX stall for each size, this
tree's reported-set ("new") against the one of an earlier commit ("old", default: the
merge-base with main) in the same run.

``python -m bench.dedup [--sizes 1e6,1e7,1e8] [--old-sizes 1e6,1e7] [--old-ref REF]`` prints
the rows as JSON; bench/run.py calls ``dedup_section`` for its "dedup" section.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyscan.bench_command import BenchError

ROOT = Path(__file__).resolve().parent.parent
SIZES = (10**6, 10**7, 10**8)
OLD_SIZES = (10**6, 10**7)  # the old hash set needs 3 GiB and minutes of rehash at 10^8
CPU_SIZE = 10**7
# not the ring back-ends or the BPF loader: the injection path needs none of them
SKIPPED_SOURCES = ("drv_af", "drv_pfring", "bpf_object")


def _sources(native: Path) -> list[str]:
    return [str(p) for p in sorted(native.glob("*.c"))
            if not p.name.startswith(SKIPPED_SOURCES)]


def compile_injector(tree: Path, target: Path, old: bool) -> Path:
    """gcc bench/dedup_inject.c against tree's pyscan/native sources."""
    native, bpf = tree / "pyscan" / "native", tree / "pyscan" / "bpf"
    flags = ["-DPYSCAN_BENCH_OLD_ENGINE"] if old else []
    libs = [] if old else ["-lroaring"]
    done = subprocess.run(
        ["gcc", "-O3", "-std=gnu11", "-D_GNU_SOURCE", "-w", *flags, f"-I{native}", f"-I{bpf}",
         "-o", str(target), str(ROOT / "bench" / "dedup_inject.c"), *_sources(native), *libs,
         "-lpthread"], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"cannot compile bench/dedup_inject.c against {tree}: "
                         f"{done.stderr.strip()[:300]}")
    return target


def old_tree(ref: str, into: Path) -> Path:
    """pyscan/native and pyscan/bpf as they were at ref (git archive)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "pyscan/native",
                              "pyscan/bpf"], capture_output=True)
    if archive.returncode != 0:
        raise BenchError(f"git archive {ref}: {archive.stderr.decode().strip()[:200]}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def merge_base() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
                          capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "HEAD~1"


def _run(binary: Path, args: list[str], timeout: float) -> dict[str, Any]:
    done = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise BenchError(f"{binary.name} {' '.join(args)}: exit {done.returncode}, "
                         f"{(done.stderr or done.stdout).strip()[:300]}")
    row: dict[str, Any] = json.loads(lines[-1])
    return row


def dedup_section(log: Callable[[str], None], sizes: tuple[int, ...] = SIZES,
                  old_sizes: tuple[int, ...] = OLD_SIZES, old_ref: str | None = None,
                  cpu_size: int = CPU_SIZE) -> list[dict[str, Any]]:
    ref = old_ref or merge_base()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pyscan-dedup-") as tmp:
        work = Path(tmp)
        (work / "old").mkdir()
        binaries = {
            "new": compile_injector(ROOT, work / "inject_new", old=False),
            f"old ({ref[:10]})": compile_injector(old_tree(ref, work / "old"),
                                                  work / "inject_old", old=True),
        }
        plan: list[tuple[str, list[str]]] = []
        for size in sorted(set(sizes) | set(old_sizes)):
            for variant in binaries:
                if (variant == "new" and size in sizes) or (variant != "new"
                                                            and size in old_sizes):
                    plan.append((variant, ["sparse", str(size)]))
        plan += [(variant, ["lab"]) for variant in binaries]
        for variant, args in plan:
            try:
                row = _run(binaries[variant], args, timeout=3600)
            except (BenchError, subprocess.TimeoutExpired) as error:
                log(f"dedup {variant} {' '.join(args)}: failed: {error}")
                rows.append({"variant": variant, "mode": args[0], "error": str(error)})
                continue
            row["variant"] = variant
            rows.append(row)
            log(f"dedup {variant} {row['mode']} {row['replies']:,} replies: peak RSS "
                f"{row['max_rss_kib'] / 1024:.1f} MiB, ring full at most "
                f"{row['ring_full_max_ns'] / 1e6:.1f} ms"
                + (f", set {row['dedup_bytes'] / row['replies']:.2f} B/reply, worst insert "
                   f"{row['dedup_max_insert_ns'] / 1e6:.2f} ms" if "dedup_bytes" in row else ""))
        if cpu_size:
            row = _run(binaries["new"], ["cpu", str(cpu_size)], timeout=3600)
            row["variant"] = "new"
            rows.append(row)
            log(f"dedup new cpu: worst insert {row['sparse_max_insert_cpu_ns'] / 1e3:.0f} us "
                f"CPU over {cpu_size:,} sparse, {row['front_max_insert_cpu_ns'] / 1e3:.0f} us "
                "opening blocks in front of 65536")
    return rows


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(float(part)) for part in text.split(",") if part)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dedup")
    parser.add_argument("--sizes", default="1e6,1e7,1e8")
    parser.add_argument("--old-sizes", default="1e6,1e7")
    parser.add_argument("--old-ref", default=None)
    parser.add_argument("--cpu-size", default="1e7")
    args = parser.parse_args(argv)
    rows = dedup_section(lambda m: print(m, file=sys.stderr, flush=True), _sizes(args.sizes),
                         _sizes(args.old_sizes), args.old_ref, int(float(args.cpu_size)))
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
