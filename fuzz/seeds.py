"""The C fuzzers' seeds from the shared reply corpora: ``python -m fuzz.seeds --write``.

- fuzz/corpus/ingest/seed-<scan>-<frame>: byte 0 picks the scan of fuzz/ingest_fuzz.c
  (SCANS: each probe module alone, then all IPv4 / all IPv6 modules; bit 7: keep the
  frame's checksums instead of recomputing them; bit 6: set the IP length from the frame),
  the rest is the frame.
  Every frame goes to its own module's scan and to its family's all-modules scan, so each
  module's classify starts from its valid replies, the ICMP / ICMPv6 errors quoting its
  probes, truncations and the other modules' replies.
- fuzz/corpus/reply-parse/seed-<frame>: the IPv6 and the IPv4 icmp-echo / udp frames (the
  tcp-syn frames are tests/corpus/replies/*.bin, which run.py gives both C targets' parser).

tests/unit/test_fuzz_corpus.py fails while the stored seeds and this list differ. Other files
in those directories (inputs libFuzzer found, named by their hash) are left alone.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tests.corpus.replies import frames, frames6, modules4

CORPUS = Path(__file__).resolve().parent / "corpus"
PREFIX = "seed-"
# fuzz/ingest_fuzz.c SCANS, in order: the index is the input's first byte.
SCANS = ("tcp-syn", "icmp-echo", "udp", "tcp-syn6", "icmp-echo6", "udp6", "all4", "all6")


def _module6(name: str) -> str:
    if name.startswith("udp_"):
        return "udp6"
    if "echo" in name or name.startswith("neighbour_"):
        return "icmp-echo6"
    return "tcp-syn6"


def frames_by_module() -> dict[str, dict[str, bytes]]:
    """Every corpus frame, under the module whose replies (or near misses) it holds."""
    out: dict[str, dict[str, bytes]] = {m: {} for m in SCANS[:6]}
    out["tcp-syn"] = frames.corpus()
    for name, (frame, _) in modules4.outcomes().items():
        out["icmp-echo" if "echo" in name else "udp"][name] = frame
    for name, row in frames6.rows().items():
        out[_module6(name)][name] = row.frame
    return out


def scan_byte(scan: str, name: str) -> int:
    """The input's first byte: the scan; bit 7 for a frame whose bad checksums are the point
    (the harness recomputes the others' checksums, as every mutant's); bit 6 (the harness
    sets the IP length to the frame's) for the all-modules scans, so their cut mutants reach
    classify, while the single-module ones keep lengths that disagree with the frame."""
    length_fix = 0x40 if scan.startswith("all") else 0
    return SCANS.index(scan) | length_fix | (0x80 if "checksum" in name else 0)


def ingest_seeds() -> dict[str, bytes]:
    seeds = {}
    for module, named in frames_by_module().items():
        family_scan = "all6" if module.endswith("6") else "all4"
        for scan in (module, family_scan):
            for name, frame in named.items():
                seeds[f"{PREFIX}{scan}-{name}"] = bytes([scan_byte(scan, name)]) + frame
    return seeds


def reply_parse_seeds() -> dict[str, bytes]:
    by_module = frames_by_module()
    return {f"{PREFIX}{module}-{name}": frame for module, named in by_module.items()
            if module != "tcp-syn" for name, frame in named.items()}


def wanted() -> dict[Path, bytes]:
    return {**{CORPUS / "ingest" / n: d for n, d in ingest_seeds().items()},
            **{CORPUS / "reply-parse" / n: d for n, d in reply_parse_seeds().items()}}


def stored() -> dict[Path, bytes]:
    return {p: p.read_bytes() for target in ("ingest", "reply-parse")
            for p in sorted((CORPUS / target).glob(f"{PREFIX}*"))}


def write() -> int:
    seeds = wanted()
    for old in stored():
        if old not in seeds:
            old.unlink()
    for path, data in seeds.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return len(seeds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store the seeds")
    if parser.parse_args().write:
        print(f"wrote {write()} seeds under {CORPUS}")
