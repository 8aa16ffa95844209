"""pyscan's compiled data plane (``pyscan._native``) as typed Python, one module per area.

Nothing outside this package imports ``pyscan._native``; everything imports from here.

- ``_lib``        the only import of ``ffi``/``lib``, and the typed handle kinds (CData)
- ``handles``     CHandle: the one way a wrapper owns a C pointer (close/with/__del__)
- ``algorithms``  permutation, target set, cookie, SYN template, rate limiter, clock
- ``engine``      the TX/RX engine of one shard and its results
- ``capture``     the --pcap ring of reply frames
- ``rings``       Ring, ring counters, and the null and af-packet drivers
- ``bpf``         BPF objects, maps, XDP attachments, BPF_PROG_TEST_RUN
- ``af_xdp``      the XDP reply filter and the AF_XDP socket set
- ``pfring_zc``   the pfring-zc cluster, its rings and its library probe
"""

from pyscan.native._lib import CData, ffi
from pyscan.native.af_xdp import (
    REPLY_FILTER_COUNTERS,
    REPLY_FILTER_OBJECT,
    XDP_ACTIONS,
    XDP_ATTACH_MODES,
    XDP_BIND_MODES,
    AfXdp,
    AfXdpError,
    ReplyFilter,
    afxdp_probe,
)
from pyscan.native.algorithms import (
    PERMUTE_MAX_RANGE,
    SYN_FRAME_LEN,
    Permutation,
    RateLimit,
    TargetSet,
    build_syn,
    cookie,
    cookie_siphash,
    monotonic_ns,
    sleep_until_ns,
)
from pyscan.native.bpf import (
    XDP_MODES,
    BpfError,
    BpfObject,
    bpf_map_lookup,
    bpf_map_sizes,
    bpf_map_update,
    bpf_percpu_sum,
    bpf_possible_cpus,
    bpf_test_run,
    read_attached_percpu,
    reset_attached_percpu,
    xdp_attached_prog_id,
    xdp_detach,
    xdp_query,
)
from pyscan.native.capture import CAPTURE_SNAPLEN, Capture, CapturedFrame
from pyscan.native.engine import (
    ENGINE_MAX_BATCH,
    ENGINE_MAX_TX_THREADS,
    ENGINE_STATS_FIELDS,
    INGEST_OUTCOMES,
    RESULT_STATUS,
    Engine,
    RawResult,
    probe_by_name,
    probe_count,
    probe_name,
)
from pyscan.native.handles import CHandle
from pyscan.native.pfring_zc import (
    PFRING_ZC_MAX_RX_QUEUES,
    PFRING_ZC_RX_HANDLES,
    PFRING_ZC_TX_HANDLES,
    PfringZcCluster,
    PfringZcProbe,
    pfring_zc_probe,
    pfring_zc_queue_stats,
)
from pyscan.native.reply import REPLY_OUTCOMES, ReplyView, reply_parse
from pyscan.native.rings import (
    NULL_CAPTURE_STRIDE,
    NULL_MAX_SLOTS,
    NULL_SLOT_SIZE,
    RING_STATS_FIELDS,
    Ring,
    afpacket_filter_ports,
    close_ring,
    null_captured,
    null_inject,
    open_afpacket_rx,
    open_afpacket_tx,
    open_null_rx,
    open_null_tx,
    ring_error,
    ring_stats,
)

__all__ = [
    "CAPTURE_SNAPLEN",
    "ENGINE_MAX_BATCH",
    "ENGINE_MAX_TX_THREADS",
    "ENGINE_STATS_FIELDS",
    "INGEST_OUTCOMES",
    "NULL_CAPTURE_STRIDE",
    "NULL_MAX_SLOTS",
    "NULL_SLOT_SIZE",
    "PERMUTE_MAX_RANGE",
    "PFRING_ZC_MAX_RX_QUEUES",
    "PFRING_ZC_RX_HANDLES",
    "PFRING_ZC_TX_HANDLES",
    "REPLY_FILTER_COUNTERS",
    "REPLY_FILTER_OBJECT",
    "REPLY_OUTCOMES",
    "RESULT_STATUS",
    "RING_STATS_FIELDS",
    "SYN_FRAME_LEN",
    "XDP_ACTIONS",
    "XDP_ATTACH_MODES",
    "XDP_BIND_MODES",
    "XDP_MODES",
    "AfXdp",
    "AfXdpError",
    "BpfError",
    "BpfObject",
    "CData",
    "CHandle",
    "Capture",
    "CapturedFrame",
    "Engine",
    "Permutation",
    "PfringZcCluster",
    "PfringZcProbe",
    "RateLimit",
    "RawResult",
    "ReplyFilter",
    "ReplyView",
    "Ring",
    "TargetSet",
    "afpacket_filter_ports",
    "afxdp_probe",
    "bpf_map_lookup",
    "bpf_map_sizes",
    "bpf_map_update",
    "bpf_percpu_sum",
    "bpf_possible_cpus",
    "bpf_test_run",
    "build_syn",
    "close_ring",
    "cookie",
    "cookie_siphash",
    "ffi",
    "monotonic_ns",
    "null_captured",
    "null_inject",
    "open_afpacket_rx",
    "open_afpacket_tx",
    "open_null_rx",
    "open_null_tx",
    "pfring_zc_probe",
    "pfring_zc_queue_stats",
    "probe_by_name",
    "probe_count",
    "probe_name",
    "read_attached_percpu",
    "reply_parse",
    "reset_attached_percpu",
    "ring_error",
    "ring_stats",
    "sleep_until_ns",
    "xdp_attached_prog_id",
    "xdp_detach",
    "xdp_query",
]
