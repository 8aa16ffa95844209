/* SPDX-License-Identifier: GPL-2.0-only
 *
 * xdp_live.h - what the xdp-live TX program (xdp_live.bpf.c) and its runner
 * (pyscan/native/drv_xdp_live.c) share: two BPF_F_MMAPABLE arrays that both sides read and
 * write without syscalls.
 *
 * xdplive_frames: PYSCAN_XL_REGION slots per runner, the frames the engine wrote. A slot is
 * one array element, so slot i of runner r is element r * PYSCAN_XL_REGION + i.
 * xdplive_ctrl: one struct pyscan_xl_ctrl per runner. Before a BPF_PROG_RUN the runner sets
 * next = 0 and end = n; every program run copies slot `next` into its frame, advances next
 * and redirects the frame to ifindex. The tracepoint programs then record which slots the
 * device did not take (dropped[]), so the runner resends exactly those.
 *
 * Invariants:
 *  - A runner's ctrl and region are touched only by that runner's thread and by programs
 *    running inside that thread's syscalls (the tracepoint programs check the thread id), so
 *    nothing needs atomics.
 *  - Every slot a run copied (next after the run) ends in exactly one of: taken by the
 *    device, dropped[] (refused by ndo_xdp_xmit or failed to redirect), or unaccounted (a
 *    tracepoint event was missed; counted, never resent, never assumed delivered).
 */
#ifndef PYSCAN_XDP_LIVE_H
#define PYSCAN_XDP_LIVE_H

#include <linux/types.h>

#define PYSCAN_XL_SLOT_SIZE 256
#define PYSCAN_XL_SLOT_DATA 248 /* the engine needs at least 128 bytes per slot */
#define PYSCAN_XL_REGION 1024   /* slots per runner: the engine's largest batch */
#define PYSCAN_XL_FIFO 64       /* frames redirected but not yet flushed (a bulk is 16) */
#define PYSCAN_XL_MAX_RUNNERS 64
#define PYSCAN_XL_META_LEN 4    /* XDP metadata in front of the template: the runner index */

struct pyscan_xl_slot {
	__u16 len;
	__u16 reserved[3];
	__u8 data[PYSCAN_XL_SLOT_DATA];
};

struct pyscan_xl_ctrl {
	__u32 next;          /* region slot the next program run copies */
	__u32 end;           /* slots in this run */
	__u32 ifindex;       /* where frames are redirected */
	__u32 tid;           /* the runner's thread id (tracepoint programs match it) */
	__u32 fifo_head;     /* redirected slots waiting for the device's bulk flush ... */
	__u32 fifo_tail;     /* ... fifo[head .. tail) */
	__u32 n_dropped;     /* entries of dropped[] written in this run */
	__u32 reserved;
	__u64 xmit_sent;     /* cumulative: frames ndo_xdp_xmit took */
	__u64 xmit_dropped;  /* cumulative: frames ndo_xdp_xmit refused */
	__u64 redirect_errors; /* cumulative: frames that failed before the device queue */
	__u64 unmatched;     /* cumulative: tracepoint frames not in the fifo (never expected) */
	__u64 rejected;      /* cumulative: slots with a length the program cannot send */
	__s32 last_error;    /* -errno of the last refused bulk or failed redirect */
	__u32 reserved2;
	__u32 fifo[PYSCAN_XL_FIFO];
	__u32 dropped[PYSCAN_XL_REGION];
};

_Static_assert(sizeof(struct pyscan_xl_slot) == PYSCAN_XL_SLOT_SIZE, "xdp-live slot layout");
_Static_assert(sizeof(struct pyscan_xl_ctrl) == 4432, "xdp-live ctrl layout");
_Static_assert((PYSCAN_XL_REGION & (PYSCAN_XL_REGION - 1)) == 0, "region is a power of two");
_Static_assert((PYSCAN_XL_FIFO & (PYSCAN_XL_FIFO - 1)) == 0, "fifo is a power of two");

#endif /* PYSCAN_XDP_LIVE_H */
