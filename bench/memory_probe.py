"""``python -m bench.memory_probe TARGET PORTS``: run one complete null-driver scan through
the public API (pyscan.scan) and print its peak RSS (getrusage ru_maxrss of this process) and
counts as JSON. One process per measurement, so each peak belongs to one target set."""

from __future__ import annotations

import json
import resource
import sys
import time

from pyscan.config import ScanConfig
from pyscan.scanner import scan


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m bench.memory_probe TARGET PORTS", file=sys.stderr)
        return 2
    config = ScanConfig.parse([argv[0]], ports=argv[1], rate="max", driver="null", wait=0,
                              isolation=False)
    started = time.monotonic()
    run = scan(config)
    with run:
        for _ in run:
            pass
    summary = run.summary
    print(json.dumps({
        "probes": len(config.targets) * len(config.ports),
        "sent": int(summary.sent),
        "wall_s": time.monotonic() - started,
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
