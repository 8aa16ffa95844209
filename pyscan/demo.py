"""`make run`: build a lab with a known random open set, scan it for real, check the answer.

Steps: bring up a lab (two namespaces, a veth pair, a /20 of AnyIP targets, a few hundred
random open (address, port) pairs, RST everywhere else); run the `pyscan` command line on it
with the automatic driver choice (af-xdp here) and a live status line; compare what it
reported with the lab's ground truth; print recall, false positives and duplicates; take
the lab down whatever happened. Needs root; sends packets only inside the lab's own
namespaces (198.18.0.0/15).
"""

from __future__ import annotations

import json
import os
import random
import shlex
import sys
import tempfile
from collections import Counter
from ipaddress import IPv4Address
from pathlib import Path

__all__ = ["main"]

SUBNET = "198.19.0.0/20"
PORTS = (22, 80, 443, 8080)
OPEN_PAIRS = 300
RATE = "20k"
WAIT = "2"


def _scan_with_cli(argv: list[str]) -> int:
    from pyscan.cli import main as cli_main

    try:
        cli_main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def _read_results(path: Path) -> list[tuple[IPv4Address, int, str]]:
    """masscan's -oD records: status under `data`, as masscan writes them."""
    rows = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        rows.append((IPv4Address(record["ip"]), int(record["port"]), record["data"]["status"]))
    return rows


def main() -> int:
    from pyscan.lab import Lab, LabError
    from pyscan.privileges import PrivilegeError, require_lab_privileges

    try:
        require_lab_privileges()
    except PrivilegeError as error:
        print(f"pyscan demo: {error}", file=sys.stderr)
        return 77

    seed = random.SystemRandom().randrange(2**32)
    lab = Lab(name=f"demo{os.getpid() % 100000}", subnet=SUBNET, ports=PORTS,
              open_count=OPEN_PAIRS, seed=seed)
    with tempfile.TemporaryDirectory(prefix="pyscan-demo-") as workdir:
        output = Path(workdir) / "results.ndjson"
        try:
            print(f"building lab {lab.name}: {SUBNET} x ports {','.join(map(str, PORTS))}, "
                  f"{OPEN_PAIRS} random open pairs (draw seed {seed}), RST elsewhere")
            try:
                lab.up()
            except LabError as error:
                print(f"pyscan demo: {error}", file=sys.stderr)
                return 1
            status = lab.status()
            print(f"  scanner namespace {status['scan_netns']} ({status['scan_address']}), "
                  f"target namespace {status['target_netns']} (gateway {status['gateway']})")
            truth = lab.truth()
            sample = ", ".join(f"{ip}:{port}" for ip, port in sorted(truth)[:5])
            print(f"  open pairs include {sample}, ...")

            argv = ["--netns", lab.scan_netns, SUBNET, "-p", ",".join(map(str, PORTS)),
                    "--rate", RATE, "--wait", WAIT, "--status",
                    "-oD", str(output)]
            print(f"\n$ pyscan {shlex.join(argv)}", flush=True)
            code = _scan_with_cli(argv)
            if code != 0:
                print(f"pyscan demo: the scan exited with {code}", file=sys.stderr)
                return code

            results = _read_results(output)
            reported = Counter((ip, port) for ip, port, status in results if status == "open")
            found = set(reported)
            print(f"\n{len(results)} result records (ndjson, -oD), the first ten open:")
            for ip, port in sorted(found)[:10]:
                print(f"  open tcp {port:>5} {ip}")
            duplicates = sum(count - 1 for count in reported.values())
            hits = len(found & truth)
            false_positives = len(found - truth)
            recall = 100.0 * hits / len(truth) if truth else 100.0
            print(f"\nlab truth {len(truth)} open pairs; pyscan reported {len(found)}")
            print(f"recall {recall:.2f} %, false positives {false_positives}, "
                  f"duplicates {duplicates}")
            missed = sorted(truth - found)[:5]
            if missed:
                print("missed, e.g.: " + ", ".join(f"{ip}:{port}" for ip, port in missed))
            return 0 if hits == len(truth) and not false_positives and not duplicates else 1
        finally:
            try:
                lab.down()
                print(f"lab {lab.name} removed")
            except LabError as error:
                print(f"pyscan demo: {error}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
