"""The C fuzzers' stored seeds (fuzz/corpus, written by fuzz/seeds.py) match the corpora they
come from, and the IPv4 module frames (tests/corpus/replies/modules4.py) get the ingest
outcome they are stored as seeds for."""

from __future__ import annotations

import pytest

from fuzz import seeds
from pyscan.native import Engine
from tests.corpus.replies import frames, modules4


def test_stored_seeds_match_the_corpora() -> None:
    wanted, stored = seeds.wanted(), seeds.stored()
    assert sorted(stored) == sorted(wanted), "run python -m fuzz.seeds --write"
    assert all(stored[p] == wanted[p] for p in wanted), "run python -m fuzz.seeds --write"


def test_every_scan_of_the_ingest_harness_has_seeds() -> None:
    first_bytes = {data[0] & 7 for data in seeds.ingest_seeds().values()}
    assert first_bytes == set(range(len(seeds.SCANS)))


@pytest.mark.parametrize("name", sorted(modules4.outcomes()))
def test_ipv4_module_frames_get_their_outcome(name: str) -> None:
    frame, outcome = modules4.outcomes()[name]
    with Engine(cookie_key=frames.KEY, seed=1, source_ip=str(frames.SCANNER),
                source_mac=frames.SCANNER_MAC, gateway_mac=frames.GATEWAY_MAC,
                ranges=[("0.0.0.0", "255.255.255.255")], ports=modules4.ENGINE_PORTS,
                port_probes=modules4.ENGINE_PROBES, source_ports=frames.SOURCE_PORTS,
                probe_args=modules4.engine_probe_args()) as engine:
        assert engine.ingest(frame) == outcome
