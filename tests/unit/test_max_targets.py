"""--max-targets N|P% (zmap -n): the whole scan sends the first N probes of its keyed order.

The reference is the engine's own uncapped order (`Engine.targets`, what -sL prints): the
capped scan must send exactly its first N entries, once each, however it is sharded or
threaded. Frames are captured on the null driver; nothing is sent.
"""

from __future__ import annotations

import json

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from typer.testing import CliRunner

from pyscan.cli import app
from pyscan.config import ConfigError, ScanConfig, parse_max_targets
from pyscan.native import Engine, close_ring, null_captured, open_null_tx

RANGES = [("198.19.4.0", "198.19.4.199"), ("198.19.9.1", "198.19.9.1")]
PORTS = [22, 80, 443]
TOTAL = 201 * 3


def engine(**settings: object) -> Engine:
    return Engine(cookie_key=bytes(16), seed=21, source_ip="198.18.0.1",
                  source_mac="02:00:00:00:00:01", gateway_mac="02:00:00:00:00:02",
                  ranges=RANGES, ports=PORTS, **settings)  # type: ignore[arg-type]


def uncapped_order() -> list[tuple[int, int]]:
    with engine() as whole:
        return whole.targets(0, 0, TOTAL)


def sent_by(capped: Engine, tx_threads: int) -> list[tuple[int, int]]:
    import ipaddress
    import threading

    rings = [open_null_tx(capture_frames=TOTAL) for _ in range(tx_threads)]
    threads = [threading.Thread(target=capped.run_tx, args=(i, ring))
               for i, ring in enumerate(rings)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    sent = []
    for ring in rings:
        for frame in null_captured(ring):
            packet = Ether(frame)
            sent.append((int(ipaddress.IPv4Address(packet[IP].dst)), packet[TCP].dport))
        close_ring(ring)
    return sent


@pytest.mark.parametrize(("cap", "shards", "tx_threads"), [
    (1, 1, 1), (100, 1, 1), (100, 3, 2), (257, 5, 3), (TOTAL - 1, 2, 2),
])
def test_capped_scan_sends_the_first_n_of_its_order_once(cap: int, shards: int,
                                                          tx_threads: int) -> None:
    order = uncapped_order()
    sent: list[tuple[int, int]] = []
    owed = 0
    for shard in range(shards):
        with engine(max_probes=cap, shard=(shard, shards), tx_threads=tx_threads) as capped:
            sent += sent_by(capped, tx_threads)
            stats = capped.stats()
            assert stats["sent"] == stats["total_targets"]
            owed += stats["total_targets"]
    assert owed == len(sent) == len(set(sent)) == cap
    assert set(sent) == set(order[:cap])


def test_cap_at_or_above_the_scan_changes_nothing() -> None:
    for cap in (TOTAL, TOTAL + 1, 2**63):
        with engine(max_probes=cap) as capped:
            assert capped.targets(0, 0, TOTAL + 5) == uncapped_order()


def test_capped_order_lists_the_same_prefix() -> None:
    with engine(max_probes=50) as capped:
        assert capped.targets(0, 0, TOTAL) == uncapped_order()[:50]


@pytest.mark.parametrize(("text", "probes", "expected"), [
    ("1000", 50, 1000), ("1", 10**9, 1), ("10%", 1000, 100), ("0.1%", 1000, 1),
    ("0.0001%", 10, 1), ("33.4%", 1000, 334), ("100%", 7, 7),
])
def test_grammar(text: str, probes: int, expected: int) -> None:
    assert parse_max_targets(text, probes) == expected


@pytest.mark.parametrize("bad", ["0", "-5", "x", "10k", "0%", "101%", "nan%", "%", ""])
def test_bad_values_name_themselves(bad: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_max_targets(bad, 100)
    assert repr(bad) in str(error.value) and "accepted" in str(error.value)


def test_config_keeps_the_cap_and_the_planned_count() -> None:
    config = ScanConfig.parse(["198.19.0.0/24"], ports="80,443", max_targets="25%")
    assert config.max_targets == 128 and config.planned_probes == 128
    assert config.probe_count == 512
    above = ScanConfig.parse(["198.19.0.0/30"], ports="80", max_targets="1000")
    assert above.planned_probes == above.probe_count == 4
    with pytest.raises(ConfigError, match="max targets 0"):
        ScanConfig(targets=config.targets, ports=(80,), max_targets=0)


def test_cli_shards_add_up_and_the_summary_names_the_limit() -> None:
    runner = CliRunner()
    sent = 0
    for index in (1, 2, 3):
        result = runner.invoke(app, ["198.19.0.0/20", "-p", "22,80", "-n", "1000",
                                     "--dry-run", "--rate", "max", "--seed", "8",
                                     "--shard", f"{index}/3", "--json-summary"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stderr.strip().splitlines()[-1])
        assert summary["limit"] == "max-targets"
        sent += summary["sent"]
    assert sent == 1000
    human = runner.invoke(app, ["198.19.0.0/20", "-p", "22,80", "--max-targets", "10%",
                                "--dry-run", "--rate", "max"])
    assert "(820 of 8192 probes, --max-targets)" in human.stderr
    assert "limit      --max-targets ended the scan: 820 of the 8192 targets x ports" \
        in human.stderr
    whole = runner.invoke(app, ["198.19.0.0/28", "-p", "80", "-n", "100", "--dry-run",
                                "--json-summary"])
    assert json.loads(whole.stderr.strip().splitlines()[-1])["limit"] is None


def test_list_targets_prints_the_capped_prefix() -> None:
    runner = CliRunner()
    args = ["198.19.0.0/24", "-p", "80,443", "--seed", "6", "-sL"]
    whole = runner.invoke(app, args).stdout.splitlines()
    capped = runner.invoke(app, [*args, "-n", "37"]).stdout.splitlines()
    assert capped == whole[:37]
