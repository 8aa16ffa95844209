"""Counters that must be true: a result lost to out-of-memory is counted as lost (and only
there), not as a wait on a full results ring.

The loss is real, not simulated: a child process caps its address space (RLIMIT_AS) at what
it uses and fills the free heap inside it, then feeds the engine distinct replies through
ingest() with a results ring of two entries, so every further result has to go to the
stash, which soon cannot grow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import ctypes, ipaddress, resource, struct
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from pyscan.native import Engine, cookie

    KEY = bytes(range(16))
    ME = "198.18.0.1"
    engine = Engine(cookie_key=KEY, seed=1, source_ip=ME, source_mac="02:00:00:00:00:01",
                    gateway_mac="02:00:00:00:00:02", ranges=[("198.19.0.0", "198.19.255.255")],
                    ports=list(range(80, 96)), source_ports=range(40000, 40001), max_results=2)
    template = bytearray(bytes(Ether() / IP(src="198.19.0.0", dst=ME, ttl=61)
                               / TCP(sport=80, dport=40000, flags="SA", seq=1, ack=0)))

    def checksum(data):
        if len(data) % 2:
            data += b"\\0"
        total = sum(struct.unpack(f"!{len(data) // 2}H", data))
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        return ~total & 0xFFFF

    def frame(index):
        ip = ipaddress.IPv4Address(0xC6130000 + (index & 0xFFFF)).packed
        port = 80 + (index >> 16)
        f = bytearray(template)
        f[26:30] = ip
        f[34:36] = port.to_bytes(2, "big")
        f[42:46] = ((cookie(KEY, ME, str(ipaddress.IPv4Address(ip)), 40000, port) + 1)
                    & 0xFFFFFFFF).to_bytes(4, "big")
        f[24:26] = b"\\0\\0"
        f[24:26] = checksum(bytes(f[14:34])).to_bytes(2, "big")
        f[50:52] = b"\\0\\0"
        tcp = bytes(f[34:54])
        pseudo = bytes(f[26:34]) + b"\\0\\x06" + len(tcp).to_bytes(2, "big")
        f[50:52] = checksum(pseudo + tcp).to_bytes(2, "big")
        return bytes(f)

    frame(0)  # everything imported and warm before the cap
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[0])
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (pages * resource.getpagesize(), hard))  # soft
    # Take what is still free inside the cap, then give 2 MiB back for this loop's own
    # small needs: the results stash then runs out after a few thousand results.
    ballast = []
    while (chunk := libc.malloc(1 << 16)):
        ballast.append(chunk)
    for chunk in ballast[-32:]:
        libc.free(chunk)
    del ballast[-32:]
    outcomes = {}
    for index in range(16 << 16):  # far more than fit
        outcome = engine.ingest(frame(index))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if engine.stats()["results_lost"]:
            break
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    for chunk in ballast:
        libc.free(chunk)
    stats = engine.stats()
    drained = 0
    while batch := engine.drain(4096):
        drained += len(batch)
    print(stats["results_lost"], stats["results_full_waits"], stats["rx_open"], drained,
          outcomes.get("open", 0))
""")


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="ASan reserves terabytes of shadow memory: RLIMIT_AS cannot work")
def test_a_result_lost_to_out_of_memory_is_counted_as_lost() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lost, full_waits, rx_open, drained, reported_open = map(int, done.stdout.split())
    assert lost == 1            # the loop stopped at the first loss
    assert full_waits == 0      # ingest never waits: waits are the RX loop's
    assert rx_open == reported_open > 2
    assert drained == rx_open - lost  # everything else is there, nothing counted twice
