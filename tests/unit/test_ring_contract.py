"""The TX loop keeps ring.h's contract on a null ring that misbehaves like a real device, and
handles can be closed while the engine's threads still run.

The null TX ring audits every reserve and submit (pyscan.native.null_audit) and can be told
to hand out small slots, partial reserves, lose frames on submit or fail its kick
(null_set_faults). Closing while threads run is checked in a child process, so a
use-after-free shows up as a crashed child rather than a crashed test run.
"""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap
import threading

import pytest

from pyscan.native import (
    Engine,
    null_audit,
    null_set_faults,
    open_null_tx,
    ring_stats,
)
from pyscan.scanner import join_all

KEY = bytes(range(16))
RANGES = [("198.19.0.0", "198.19.3.255")]  # 1024 addresses
PORTS = [22, 80, 443]                     # 3072 probes


def make_engine(**kw: object) -> Engine:
    args: dict[str, object] = dict(cookie_key=KEY, seed=7, source_ip="198.18.0.1",
                                   source_mac="02:00:00:00:00:01",
                                   gateway_mac="02:00:00:00:00:02", ranges=RANGES,
                                   ports=PORTS, source_ports=range(40000, 40016))
    args.update(kw)
    return Engine(**args)  # type: ignore[arg-type]


def test_a_perfect_ring_sees_every_reserved_slot_submitted_in_order() -> None:
    with make_engine(batch_size=64) as engine, open_null_tx(slots=100) as ring:
        null_set_faults(ring, reserve_max=7)  # partial reserves: the loop must top up
        engine.run_tx(0, ring)
        audit = null_audit(ring)
        assert audit == {"reserved": 3072, "submitted": 3072, "out_of_order": 0}
        assert engine.stats()["sent"] == 3072


def test_slots_too_small_are_refused_before_anything_is_reserved() -> None:
    # Checking after tx_reserve and breaking out would leave reserved slots unsubmitted:
    # a gap that stalls a TPACKET ring for good.
    with make_engine() as engine, open_null_tx() as ring:
        null_set_faults(ring, slot_capacity=64)
        with pytest.raises(OSError, match="too small for a probe") as caught:
            engine.run_tx(0, ring)
        assert caught.value.errno == errno.EMSGSIZE
        assert null_audit(ring)["reserved"] == null_audit(ring)["submitted"] == 0
        assert engine.stats()["tx_threads_done"] == 1


def test_a_device_that_goes_down_ends_the_loop_with_every_reserved_slot_submitted() -> None:
    with make_engine(batch_size=32) as engine, open_null_tx(slots=64) as ring:
        null_set_faults(ring, reserve_max=5, kick_errno=errno.ENETDOWN, kick_error_after=1000)
        with pytest.raises(OSError) as caught:
            engine.run_tx(0, ring)
        assert caught.value.errno == errno.ENETDOWN
        assert "Network is down" in str(caught.value)
        audit = null_audit(ring)
        assert audit["reserved"] == audit["submitted"]
        assert 1000 <= audit["submitted"] < 3072
        assert audit["out_of_order"] == 0
        stats = engine.stats()
        assert stats["sent"] == stats["generated"] == audit["submitted"]
        assert stats["tx_errors"] == 0


def test_a_failed_submit_counts_only_the_frames_actually_lost() -> None:
    with make_engine(batch_size=64) as engine, open_null_tx() as ring:
        null_set_faults(ring, submit_accept_limit=1000)  # 1000 = 15 batches + 40 of one
        engine.run_tx(0, ring)
        stats = engine.stats()
        assert stats["sent"] == 1000
        assert stats["tx_errors"] == 3072 - 1000
        assert ring_stats(ring)["tx_frames"] == 1000
        assert ring_stats(ring)["tx_errors"] == 3072 - 1000


def test_join_all_survives_a_keyboard_interrupt_and_raises_it_after() -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait, args=(10,))
    thread.start()
    real_join = threading.Thread.join
    calls = 0

    def interrupted_join(self: threading.Thread, timeout: float | None = None) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            release.set()  # the thread ends soon after the "Ctrl-C"
            raise KeyboardInterrupt
        real_join(self, timeout)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(threading.Thread, "join", interrupted_join)
        with pytest.raises(KeyboardInterrupt):
            join_all([thread, threading.Thread(target=print)])  # never started: skipped
    assert calls == 2
    assert not thread.is_alive()


CHILD = textwrap.dedent("""
    import sys, threading, time
    from pyscan.native import Engine, open_null_tx, open_null_rx, null_inject, ring_stats

    what = sys.argv[1]
    for round in range(20):
        engine = Engine(cookie_key=bytes(16), seed=round, source_ip="198.18.0.1",
                        source_mac="02:00:00:00:00:01", gateway_mac="02:00:00:00:00:02",
                        ranges=[("198.18.0.0", "198.19.255.255")], ports=list(range(1, 65)),
                        source_ports=range(40000, 40016), tx_threads=2)
        rings = [open_null_tx() for _ in range(2)]
        rx = open_null_rx()
        errors = []
        def guarded(f, *a):
            try:
                f(*a)
            except Exception as e:
                errors.append(e)
        threads = [threading.Thread(target=guarded, args=(engine.run_tx, i, r))
                   for i, r in enumerate(rings)]
        threads.append(threading.Thread(target=guarded, args=(engine.run_rx, rx)))
        for t in threads:
            t.start()
        time.sleep(0.002 * (round % 5))  # sometimes before the threads entered C at all
        if what == "engine":
            engine.close()
        else:
            for r in [*rings, rx]:
                r.close()
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive(), "a loop did not stop"
        assert not errors, errors
        engine.close()
        for r in [*rings, rx]:
            r.close()
    print("ok")
""")


@pytest.mark.parametrize("what", ["engine", "rings"])
def test_closing_while_the_loops_run_stops_them_and_frees_after(what: str) -> None:
    # Before: close() freed the engine (or the rings) under running TX/RX loops.
    done = subprocess.run([sys.executable, "-c", CHILD, what], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
