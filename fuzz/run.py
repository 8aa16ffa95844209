"""Run pyscan's fuzzers for a bounded time: ``python -m fuzz.run [--budget S | --seconds S]``.

- C, libFuzzer + ASan + UBSan (built here with clang into build/fuzz/): the reply parser
  (fuzz/reply_parse_fuzz.c, seeded with tests/corpus/replies/*.bin and fuzz/corpus/reply-parse)
  and the engine's ingest path through every probe module (fuzz/ingest_fuzz.c: the first
  input byte picks the scan; seeded with fuzz/corpus/ingest, see fuzz/seeds.py).
- Python, hypothesis (fuzz/harness.py): the differential fuzzer of the three reply filters
  (fuzz/filters_differential.py, root only) and the text parsers (fuzz/text_parsers.py).

``--budget S`` splits S seconds over every target (``make test``: about 30 s in all);
``--seconds S`` gives each target S seconds (``make fuzz``). A crash or failed property
prints the reproducer's path (build/fuzz/crashes/) and makes the exit status 1; new corpus
entries libFuzzer finds stay in build/fuzz/work-<target>/, outside the repository.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NATIVE = ROOT / "pyscan" / "native"
BPF = ROOT / "pyscan" / "bpf"
BUILD = ROOT / "build" / "fuzz"
REPLY_SEEDS = ROOT / "tests" / "corpus" / "replies"
SANITIZE = "-fsanitize=fuzzer,address,undefined"
CFLAGS = ["-g", "-O1", SANITIZE, "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
          "-std=gnu11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Wno-unused-parameter",
          f"-I{NATIVE}", f"-I{BPF}"]
# No -Werror here: the extension's own -Werror build is gcc's (make test-sanitize); a warning
# only clang gives must not stop the fuzzers from running.
LIBS = ["-lxdp", "-lbpf", "-lroaring", "-ldl", "-lpthread"]  # as pyscan/native/_build.py links


@dataclass(frozen=True)
class CTarget:
    name: str
    source: str
    natives: tuple[str, ...]  # pyscan/native/*.c linked in; () = all of them
    # the shared reply corpus as seed: raw frames (ingest's inputs start with a scan byte,
    # its seeds are fuzz/corpus/ingest, written by fuzz/seeds.py)
    raw_frames: bool


C_TARGETS = (
    CTarget("reply-parse", "reply_parse_fuzz.c", ("reply_parse.c",), True),
    CTarget("ingest", "ingest_fuzz.c", (), False),
)


@dataclass
class Result:
    name: str
    seconds: float
    runs: int | str
    reproducer: Path | None = None  # set on failure: the input (or the build log) to look at
    note: str = ""
    label: str = "reproducer"


def build_c(target: CTarget) -> tuple[Path | None, str]:
    """The fuzzer binary, rebuilt when a source is newer; (None, why) when it cannot be."""
    clang = shutil.which("clang")
    if clang is None:
        BUILD.mkdir(parents=True, exist_ok=True)
        (BUILD / f"{target.name}-build.log").write_text("clang not found\n")
        return None, "clang not found (apt-get install clang libclang-rt-14-dev)"
    natives = [NATIVE / n for n in target.natives] or sorted(NATIVE.glob("*.c"))
    sources = [ROOT / "fuzz" / target.source, *natives]
    binary = BUILD / target.source.removesuffix(".c")
    inputs = [*sources, *NATIVE.glob("*.h"), *BPF.glob("*.h")]
    if binary.exists() and all(p.stat().st_mtime <= binary.stat().st_mtime for p in inputs):
        return binary, ""
    BUILD.mkdir(parents=True, exist_ok=True)
    command = [clang, *CFLAGS, *map(str, sources), *LIBS, "-o", str(binary)]
    built = subprocess.run(command, capture_output=True, text=True)
    if built.returncode != 0:
        log = BUILD / f"{target.name}-build.log"
        log.write_text(built.stderr)
        first_error = next((line for line in built.stderr.splitlines() if "error" in line),
                           built.stderr.strip()[-200:])
        return None, (f"build failed: {first_error} (full output: {log}; libFuzzer comes with "
                      "clang's runtime package, Debian: libclang-rt-14-dev)")
    return binary, ""


def run_c(target: CTarget, seconds: float, crash_dir: Path) -> Result:
    binary, why = build_c(target)
    if binary is None:  # a fuzzer that cannot be built is a failure, not a skip
        return Result(target.name, 0.0, "-", BUILD / f"{target.name}-build.log", why,
                      "build log")
    work = BUILD / f"work-{target.name}"
    work.mkdir(parents=True, exist_ok=True)
    crash_dir.mkdir(parents=True, exist_ok=True)
    seed_dirs = [REPLY_SEEDS] if target.raw_frames else []
    seeds = [p for p in (*seed_dirs, ROOT / "fuzz" / "corpus" / target.name) if p.is_dir()]
    before = set(crash_dir.iterdir())
    log = BUILD / f"{target.name}.log"
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.run(
            [str(binary), f"-max_total_time={max(1, round(seconds))}",
             f"-artifact_prefix={crash_dir}/{target.name}-", "-print_final_stats=1",
             str(work), *map(str, seeds)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "ASAN_OPTIONS":
                                                       "abort_on_error=0:detect_leaks=1"})
    elapsed = time.monotonic() - started
    text = log.read_text(errors="replace")
    runs_match = re.search(r"stat::number_of_executed_units:\s*(\d+)", text)
    runs: int | str = int(runs_match[1]) if runs_match else "?"
    if proc.returncode == 0:
        return Result(target.name, elapsed, runs)
    new = sorted(set(crash_dir.iterdir()) - before)
    reason = next((line for line in text.splitlines() if "ERROR:" in line or
                   "runtime error" in line or "deadly signal" in line), f"exit {proc.returncode}")
    return Result(target.name, elapsed, runs, new[-1] if new else log,
                  f"{reason.strip()} (log: {log}; replay: {binary} <reproducer>)")


def run_python(name: str, seconds: float, crash_dir: Path) -> Result:
    from fuzz import filters_differential, text_parsers
    from fuzz.harness import fuzz_property

    seeds: Callable[[], list[object]]
    if name == "filters-differential":
        why = filters_differential.available()
        if why:
            return Result(name, 0.0, "-", note=f"not run: {why}")
        strategy, check = filters_differential.frames, filters_differential.check_frame
        seeds = lambda: list(filters_differential.SEEDS)  # noqa: E731
    else:
        strategy, check, seeds = text_parsers.TARGETS[name]
    try:
        outcome = fuzz_property(name, strategy, check, seconds, crash_dir, seeds())
    finally:
        if name == "filters-differential":
            filters_differential.close()
    return Result(name, outcome.seconds, outcome.examples, outcome.reproducer, outcome.error)


def all_targets() -> list[str]:
    from fuzz import text_parsers
    return [*(t.name for t in C_TARGETS), "filters-differential", *text_parsers.TARGETS]


# Shares of --budget: the C targets execute 10^5 inputs a second and find the most per second,
# the differential fuzzer is the slowest per input; the text parsers split the rest.
WEIGHTS = {"reply-parse": 4.0, "ingest": 5.0, "filters-differential": 8.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run pyscan's fuzzers for a bounded time.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--budget", type=float, help="seconds for all targets together")
    group.add_argument("--seconds", type=float, default=30.0, help="seconds per target")
    parser.add_argument("--only", default="", help="comma-separated target names")
    parser.add_argument("--crash-dir", type=Path, default=BUILD / "crashes")
    parser.add_argument("--list", action="store_true", help="print the target names")
    args = parser.parse_args(argv)

    names = all_targets()
    if args.list:
        print("\n".join(names))
        return 0
    if args.only:
        wanted = args.only.split(",")
        unknown = [n for n in wanted if n not in names]
        if unknown:
            parser.error(f"unknown target {unknown[0]!r} (accepted: {', '.join(names)})")
        names = wanted
    if args.budget is not None:
        weights = {n: WEIGHTS.get(n, 1.3) for n in names}
        total = sum(weights.values())
        seconds = {n: args.budget * w / total for n, w in weights.items()}
    else:
        seconds = dict.fromkeys(names, args.seconds)

    failed = False
    by_name = {t.name: t for t in C_TARGETS}
    for name in names:
        result = (run_c(by_name[name], seconds[name], args.crash_dir) if name in by_name
                  else run_python(name, seconds[name], args.crash_dir))
        line = f"fuzz {result.name}: {result.runs} inputs in {result.seconds:.1f} s"
        if result.reproducer is not None:
            failed = True
            print(f"{line}: FAILED {result.note}\n  {result.label}: {result.reproducer}",
                  flush=True)
        else:
            print(f"{line}{': ' + result.note if result.note else ', no failure'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
