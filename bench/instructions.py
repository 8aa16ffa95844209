"""``python -m bench.instructions``: instructions per frame of the null driver's TX path and of
bench/bare_gen.c, counted by valgrind's callgrind.

Why: the bench machine is shared and has no hardware performance counters, so CPU ns per frame
moves by a few per cent between runs, more than the engine changes being judged. Callgrind
counts the instructions executed (Ir) exactly: the same build gives the same Ir per frame on a
busy or an idle machine. Ir is not time (it ignores cache misses, branch mispredictions and
IPC), so it complements ``make bench``'s ns and frames/s, never replaces them.

What is counted: everything inside ``pyscan_engine__run_tx`` (the TX loop, the probe module's
fill_batch, the permutation, the null ring's reserve/submit) over the bench's target set and
probe (198.19.0.0/16 x 1-65535, tcp-options mss), and everything inside bare_gen's ``run``
thread function. ``--native PATH`` measures another build of the extension (PYSCAN_NATIVE),
for A/B comparisons. Needs valgrind (Debian: ``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import contenders

ROOT = Path(__file__).resolve().parent.parent
COLLECTED = re.compile(r"Collected : ([\d,]+)")

# Runs inside valgrind: the null driver's TX for a few (slow, instrumented) seconds.
NULL_TX = """
import ipaddress, sys, threading, time
from pyscan.bench_command import BENCH_PORTS, BENCH_SOURCE_PORTS, BENCH_TARGETS
from pyscan.native import Engine, close_ring, open_null_tx
ring = open_null_tx(1024, 0)
engine = Engine(cookie_key=bytes(range(16)), seed=7, source_ip=ipaddress.IPv4Address("198.18.0.1"),
                source_mac="02:00:00:00:00:01", gateway_mac="02:00:00:00:00:02",
                ranges=[BENCH_TARGETS], ports=BENCH_PORTS, source_ports=BENCH_SOURCE_PORTS,
                rate=0.0, tx_threads=1, batch_size=int(sys.argv[2]), tcp_options="mss")
thread = threading.Thread(target=engine.run_tx, args=(0, ring))
thread.start()
time.sleep(float(sys.argv[1]))
engine.stop_tx()
thread.join()
print("SENT", engine.stats()["sent"])
engine.close()
close_ring(ring)
"""


def callgrind(argv: list[str], toggle: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Instructions executed inside function `toggle` (and what it calls), and stdout."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
             f"--toggle-collect={toggle}", *argv],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    match = COLLECTED.search(done.stderr)
    if done.returncode != 0 or not match:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"bench.instructions: {argv[0]} failed under valgrind: {tail}")
    return int(match.group(1).replace(",", "")), done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions")
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="instrumented run time of each (about 50x slower than native)")
    parser.add_argument("--batch", type=int, default=64, help="engine batch (null driver: 64)")
    parser.add_argument("--native", action="append", default=[],
                        help="another build of pyscan/_native*.so to measure (repeatable)")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("bench.instructions: valgrind is not installed (Debian: apt-get install valgrind)",
              file=sys.stderr)
        return 2
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bare_gen = contenders.compile_bare_loops(Path(tmp))["bare_gen"]
        ir, stdout = callgrind([str(bare_gen), str(args.seconds), "1"], "run")
        results["bare_gen"] = ir / int(contenders.parse_bare_output(stdout)["sent"])  # type: ignore[call-overload]
    for native in [None, *args.native]:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        if native:
            env["PYSCAN_NATIVE"] = native
        ir, stdout = callgrind(
            [sys.executable, "-c", NULL_TX, str(args.seconds), str(args.batch)],
            "pyscan_engine__run_tx", env)
        sent = int(stdout.split("SENT", 1)[1].split()[0])
        results[f"null {native or 'this build'}"] = ir / sent
    base = results["bare_gen"]
    for name, per_frame in results.items():
        print(f"{name:40s} {per_frame:8.1f} instructions/frame  bare_gen / this = "
              f"{base / per_frame:.3f}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
