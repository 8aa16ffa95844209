/* SPDX-License-Identifier: GPL-2.0-only
 *
 * drv_xdp_live.h - the xdp-live driver's TX rings: the engine writes probes into slots of a
 * BPF_F_MMAPABLE array, and tx_submit makes the kernel send them with BPF_PROG_RUN +
 * BPF_F_TEST_XDP_LIVE_FRAMES running pyscan/bpf/xdp_live.bpf.c, which redirects each frame to
 * the scanning interface's ndo_xdp_xmit.
 *
 * One pyscan_xdplive owns the loaded object (program, tracepoint links, mmapped maps) and one
 * TX ring per runner. Runner i has its own ctrl block and slot region; the thread that uses
 * it pins itself to one CPU (spread over the allowed CPUs) while it sends.
 *
 * Invariants:
 *  - tx_submit returns only when every slot it was given was taken by the device, or was
 *    refused MAX times and is counted in tx_errors; a refused slot is resent, never a taken
 *    one (the tracepoint programs name refused slots exactly, xdp_live.h).
 *  - Ring stats: tx_frames counts frames ndo_xdp_xmit took, tx_errors frames never taken,
 *    tx_retries resend rounds. Nothing is assumed delivered.
 *  - The object, maps and links live until close() and the last ring's destroy, in any order.
 */
#ifndef PYSCAN_DRV_XDP_LIVE_H
#define PYSCAN_DRV_XDP_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"
#include "xdp_live.h"

struct pyscan_xdplive_config {
	uint32_t ifindex;    /* egress interface, in the calling thread's netns */
	uint32_t runners;    /* TX rings, 1..PYSCAN_XL_MAX_RUNNERS */
	uint32_t frame_len;  /* template length: the probe frame's length (slots may differ) */
	uint32_t batch_size; /* frames per kernel batch inside one BPF_PROG_RUN; 0 = 64 */
	uint32_t pin;        /* 1: a runner's thread pins itself to one CPU while it sends */
	uint32_t anchor;     /* 1: keep the program in the XDP dispatcher (drv_xdp_live.c) */
};

/* Driver counters summed over the runners (monotonic, read racily). */
struct pyscan_xdplive_counters {
	uint64_t runs;            /* BPF_PROG_RUN calls */
	uint64_t device_taken;    /* frames ndo_xdp_xmit took (tracepoint xdp_devmap_xmit) */
	uint64_t device_refused;  /* frames it refused, before resending */
	uint64_t redirect_errors; /* frames that failed before the device queue */
	uint64_t resent;          /* refused frames sent again */
	uint64_t unaccounted;     /* frames whose fate no tracepoint reported (counted as errors) */
	uint64_t rejected;        /* slots the program could not send (bad length) */
	int64_t last_error;       /* -errno the device or redirect last reported, 0 if none */
	uint64_t anchored;        /* 1: the program stays in the XDP dispatcher between runs
				   * (else every run waits for two RCU grace periods) */
};

struct pyscan_xdplive;

/* Loads the program and attaches its tracepoints, then runs it once in live-frames mode with
 * nothing to send: 0 when this kernel and these privileges can run the driver, else -errno
 * and a one-line reason with the fix. */
int pyscan_xdplive__probe(const char *object_path, char *err, size_t errlen);

struct pyscan_xdplive *pyscan_xdplive__open(const struct pyscan_xdplive_config *cfg,
					    const char *object_path, char *err, size_t errlen);
pyscan_ring *pyscan_xdplive__tx_ring(struct pyscan_xdplive *xl, uint32_t index);
void pyscan_xdplive__counters(struct pyscan_xdplive *xl, struct pyscan_xdplive_counters *out);
/* BPF_PROG_RUN without the live flag over runner 0's region: n frames (lens[i] each, packed)
 * go into slots 0..n-1, each run's output frame is packed into out (out_lens[i]); actions[i]
 * is the program's verdict. For tests: nothing is transmitted. Returns n or -errno. */
int pyscan_xdplive__test_fill(struct pyscan_xdplive *xl, const uint8_t *frames,
			      const uint32_t *lens, uint32_t n, uint8_t *out, uint32_t out_cap,
			      uint32_t *out_lens, uint32_t *actions);
/* Detaches the tracepoints and releases the object once no ring is left. */
/* Attaches the program (native mode, bpf_link) to the egress device itself: it passes every
 * received frame, and its presence makes drivers that allocate XDP transmit queues only for
 * an attached program take redirects. For sessions without the reply filter (benchmarks). */
int pyscan_xdplive__attach_egress(struct pyscan_xdplive *xl, char *err, size_t errlen);
void pyscan_xdplive__close(struct pyscan_xdplive *xl);

_Static_assert(sizeof(struct pyscan_xdplive_config) == 24, "pyscan_xdplive_config layout");
_Static_assert(sizeof(struct pyscan_xdplive_counters) == 72, "pyscan_xdplive_counters layout");

#endif /* PYSCAN_DRV_XDP_LIVE_H */
