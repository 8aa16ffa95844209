// SPDX-License-Identifier: GPL-2.0-only
/*
 * xdp_live.bpf.c - the xdp-live driver's transmit path: an XDP program run by BPF_PROG_RUN
 * with BPF_F_TEST_XDP_LIVE_FRAMES that turns each page-pool frame into the next probe the
 * engine wrote, and redirects it to the scanning interface (ndo_xdp_xmit: no skb, no socket).
 * Two tracepoint programs account for what the device did with each redirected frame.
 *
 * The frame's XDP metadata (4 bytes, set once per run from the template) names the runner;
 * its ctrl block (xdp_live.h) says which slot comes next. Frames leave in slot order.
 *
 * Invariant: a program run that advances ctrl->next either redirects the slot's frame (and
 * remembers the slot in the fifo until the device's bulk flush reports it) or counts the
 * slot as rejected; no slot is copied twice in one run.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "xdp_live.h"

/* Sized by the loader (runners, runners * PYSCAN_XL_REGION) before load; mmapped by it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pyscan_xl_ctrl);
} xdplive_ctrl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, PYSCAN_XL_REGION);
	__type(key, __u32);
	__type(value, struct pyscan_xl_slot);
} xdplive_frames SEC(".maps");

/* Runner thread id -> runner index, written by the runner when a thread first uses it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PYSCAN_XL_MAX_RUNNERS);
	__type(key, __u32);
	__type(value, __u32);
} xdplive_tids SEC(".maps");

/* Only the field we read; CO-RE finds its offset in the running kernel's BTF. */
struct net_device {
	int ifindex;
} __attribute__((preserve_access_index));

SEC("xdp")
int pyscan_xdp_live(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *meta = (void *)(long)ctx->data_meta;
	struct pyscan_xl_ctrl *ctrl;
	struct pyscan_xl_slot *slot;
	__u32 runner, next, index, len, have, tail;

	/* Only frames of our own BPF_PROG_RUN carry metadata; anything else (the anchor
	 * attachment, drv_xdp_live.c) passes untouched. */
	if (meta + sizeof(__u32) > data)
		return XDP_PASS;
	runner = *(__u32 *)meta;
	ctrl = bpf_map_lookup_elem(&xdplive_ctrl, &runner);
	if (!ctrl)
		return XDP_ABORTED;
	next = ctrl->next;
	if (next >= ctrl->end || next >= PYSCAN_XL_REGION)
		return XDP_DROP; /* more runs than slots: the runner sees next == end and stops */
	index = runner * PYSCAN_XL_REGION + next;
	slot = bpf_map_lookup_elem(&xdplive_frames, &index);
	if (!slot)
		return XDP_ABORTED;
	ctrl->next = next + 1;

	len = slot->len;
	if (len < ETH_HLEN || len > PYSCAN_XL_SLOT_DATA)
		goto reject;
	have = ctx->data_end - ctx->data;
	if (len != have && bpf_xdp_adjust_tail(ctx, (int)len - (int)have))
		goto reject;
	if (bpf_xdp_store_bytes(ctx, 0, slot->data, len))
		goto reject;

	tail = ctrl->fifo_tail;
	if (tail - ctrl->fifo_head >= PYSCAN_XL_FIFO)
		goto reject; /* the kernel flushes every 16 frames: cannot happen, never unaccounted */
	ctrl->fifo[tail & (PYSCAN_XL_FIFO - 1)] = next;
	ctrl->fifo_tail = tail + 1;
	return bpf_redirect(ctrl->ifindex, 0);

reject:
	ctrl->rejected++;
	return XDP_DROP;
}

static __always_inline struct pyscan_xl_ctrl *current_runner(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u32 *runner = bpf_map_lookup_elem(&xdplive_tids, &tid);
	struct pyscan_xl_ctrl *ctrl;

	if (!runner)
		return 0;
	ctrl = bpf_map_lookup_elem(&xdplive_ctrl, runner);
	if (!ctrl || ctrl->tid != tid)
		return 0;
	return ctrl;
}

static __always_inline void record_drop(struct pyscan_xl_ctrl *ctrl, __u32 slot)
{
	__u32 n = ctrl->n_dropped;

	if (n < PYSCAN_XL_REGION) {
		ctrl->dropped[n & (PYSCAN_XL_REGION - 1)] = slot;
		ctrl->n_dropped = n + 1;
	}
}

/* A device bulk flush: the oldest sent + drops fifo entries, of which the last drops were
 * refused (ndo_xdp_xmit takes a prefix and the caller frees the rest). */
SEC("tp_btf/xdp_devmap_xmit")
int BPF_PROG(pyscan_xdp_live_xmit, const struct net_device *from_dev,
	     const struct net_device *to_dev, int sent, int drops, int err)
{
	struct pyscan_xl_ctrl *ctrl = current_runner();
	__u32 head, avail, total;

	if (!ctrl || !to_dev || to_dev->ifindex != (int)ctrl->ifindex)
		return 0;
	if (sent < 0 || drops < 0)
		return 0;
	ctrl->xmit_sent += sent;
	ctrl->xmit_dropped += drops;
	if (drops && err)
		ctrl->last_error = err;
	head = ctrl->fifo_head;
	avail = ctrl->fifo_tail - head;
	total = (__u32)sent + (__u32)drops;
	if (total > avail) {
		ctrl->unmatched += total - avail;
		total = avail;
	}
	for (__u32 i = 0; i < PYSCAN_XL_FIFO; i++) {
		if (i >= total)
			break;
		if (i >= (__u32)sent)
			record_drop(ctrl, ctrl->fifo[(head + i) & (PYSCAN_XL_FIFO - 1)]);
	}
	ctrl->fifo_head = head + total;
	return 0;
}

/* A redirect that failed before reaching the device queue: always the frame just run. */
SEC("tp_btf/xdp_redirect_err")
int BPF_PROG(pyscan_xdp_live_redirect_err, const struct net_device *dev, const void *xdp,
	     const void *tgt, int err, int map_type, __u32 map_id, __u32 index)
{
	struct pyscan_xl_ctrl *ctrl = current_runner();
	__u32 tail;

	if (!ctrl || index != ctrl->ifindex)
		return 0;
	tail = ctrl->fifo_tail;
	if (tail == ctrl->fifo_head) {
		ctrl->unmatched++;
		return 0;
	}
	tail--;
	record_drop(ctrl, ctrl->fifo[tail & (PYSCAN_XL_FIFO - 1)]);
	ctrl->fifo_tail = tail;
	ctrl->redirect_errors++;
	ctrl->last_error = err;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
