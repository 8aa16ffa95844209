"""``python -m bench.pyscan_tx``: one ``pyscan bench`` run as JSON on stdout, for bench/run.py,
which starts it inside the sink lab's scan namespace (the bench must not depend on how the
CLI spells its flags)."""

from __future__ import annotations

import argparse
import sys

from pyscan.bench_command import (
    BENCH_PROBES,
    ETHERNET_OVERHEAD,
    BenchError,
    BenchOptions,
    bench_probe,
    run_bench,
    wire_bytes,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pyscan_tx")
    parser.add_argument("--driver", required=True)
    parser.add_argument("--interface")
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--tx-threads", type=int, default=1)
    parser.add_argument("--size", type=int, help="default: the probe's frame + FCS")
    parser.add_argument("--probe", default="tcp-syn", choices=BENCH_PROBES)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--source-ip")
    parser.add_argument("--gateway-mac")
    parser.add_argument("--driver-option", action="append", default=[],
                        help="KEY=VALUE, repeatable")
    args = parser.parse_args(argv)
    options = BenchOptions(
        driver=args.driver, interface=args.interface if args.driver != "null" else None,
        duration=args.duration, tx_threads=args.tx_threads, rate=args.rate, probe=args.probe,
        size=args.size or wire_bytes(bench_probe(args.probe).frame_len) - ETHERNET_OVERHEAD,
        source_ip=args.source_ip, gateway_mac=args.gateway_mac,
        driver_options=dict(item.split("=", 1) for item in args.driver_option),
    )
    try:
        report = run_bench(options)
    except BenchError as error:
        print(f"pyscan bench: error: {error}", file=sys.stderr)
        return 2
    print(report.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
