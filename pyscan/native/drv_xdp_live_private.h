/* SPDX-License-Identifier: GPL-2.0-only
 *
 * drv_xdp_live_private.h - what drv_xdp_live.c (load, open, close) and drv_xdp_live_tx.c
 * (the ring operations) share; invisible outside pyscan._native.
 *
 * Invariant: the owner lives while refs > 0; refs counts the owner handle and every ring not
 * yet destroyed, and xdplive_release() frees everything when it reaches 0.
 */
#ifndef PYSCAN_DRV_XDP_LIVE_PRIVATE_H
#define PYSCAN_DRV_XDP_LIVE_PRIVATE_H

#include <sched.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "drv_xdp_live.h"

#define XDPLIVE_PRIVATE __attribute__((visibility("hidden")))

struct xdplive_ring {
	struct pyscan_ring ring; /* first: the engine sees a pyscan_ring */
	struct pyscan_xdplive *owner;
	struct pyscan_xl_ctrl *ctrl;
	struct pyscan_xl_slot *slots; /* this runner's PYSCAN_XL_REGION slots */
	uint32_t index;
	uint32_t reserved;            /* slots handed out, not yet submitted */
	pid_t tid;                    /* thread registered in xdplive_tids, 0 = none */
	int cpu;                      /* CPU to pin to, -1 = do not pin */
	int pinned;
	int home_netns_fd;            /* the thread's own netns while it visits ours, else -1 */
	int netns_error;              /* -errno: the thread could not enter our netns */
	int fatal;                    /* -errno once a submit gave up: tx_kick reports it, so
				       * the engine stops instead of failing batch after batch */
	cpu_set_t saved_affinity;
	uint8_t tmpl[PYSCAN_XL_META_LEN + PYSCAN_XL_SLOT_DATA];
	struct pyscan_ring_stats stats;
	uint64_t runs, resent, unaccounted;
};

struct pyscan_xdplive {
	struct pyscan_xdplive_config cfg;
	struct bpf_object *obj;
	struct bpf_link *links[2];
	int prog_fd;
	int tids_fd;
	int netns_fd;        /* the netns ifindex belongs to: BPF_PROG_RUN redirects within the
			      * caller's netns, so a runner thread must be in this one */
	struct stat netns;
	int anchor_link_fd;  /* the program attached (generic mode) to the loopback of ... */
	int anchor_netns_fd; /* ... a private, empty netns: see anchor_in_dispatcher() */
	void *ctrl_mem;
	size_t ctrl_len;
	void *frames_mem;
	size_t frames_len;
	int refs; /* the owner handle + one per live ring */
	int anchored;
	int egress_link_fd; /* the program attached (native) to ifindex itself, or -1 */
	struct xdplive_ring *rings;
};

XDPLIVE_PRIVATE extern const struct pyscan_ring_ops xdplive_tx_ops;
XDPLIVE_PRIVATE void xdplive_release(struct pyscan_xdplive *xl);

#endif /* PYSCAN_DRV_XDP_LIVE_PRIVATE_H */
