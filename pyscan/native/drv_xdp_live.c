/* SPDX-License-Identifier: GPL-2.0-only
 *
 * drv_xdp_live.c - the xdp-live object's lifetime: load the program with maps sized for
 * the runners, attach its tracepoint programs, keep it in the XDP dispatcher, mmap the maps,
 * hand out rings (their operations: drv_xdp_live_tx.c), probe the kernel, test runs, close.
 *
 * Invariant: every path out of open() either returns an object whose rings are all usable or
 * releases everything it made (links, maps, namespaces, fds) before returning NULL.
 */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/if_link.h>

#include "drv_xdp_live_private.h"

static void set_error(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void xdplive_release(struct pyscan_xdplive *xl)
{
	if (--xl->refs > 0)
		return;
	for (int i = 0; i < 2; i++)
		bpf_link__destroy(xl->links[i]);
	if (xl->ctrl_mem && xl->ctrl_mem != MAP_FAILED)
		munmap(xl->ctrl_mem, xl->ctrl_len);
	if (xl->frames_mem && xl->frames_mem != MAP_FAILED)
		munmap(xl->frames_mem, xl->frames_len);
	bpf_object__close(xl->obj);
	if (xl->netns_fd >= 0)
		close(xl->netns_fd);
	if (xl->anchor_link_fd >= 0)
		close(xl->anchor_link_fd);
	if (xl->egress_link_fd >= 0)
		close(xl->egress_link_fd);
	if (xl->anchor_netns_fd >= 0)
		close(xl->anchor_netns_fd);
	free(xl->rings);
	free(xl);
}

/* ---- open / close ------------------------------------------------------------------------- */

static const char *load_hint(int rc)
{
	switch (rc) {
	case -EPERM:
	case -EACCES:
		return "needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN, or CAP_SYS_ADMIN (run as root)";
	case -EINVAL:
	case -524: /* the kernel-internal ENOTSUPP */
	case -EOPNOTSUPP:
		return "the kernel lacks bpf_xdp_store_bytes or live-frames test runs (Linux >= 5.18)";
	case -ESRCH:
	case -ENOENT:
		return "the kernel has no BTF for the xdp tracepoints (CONFIG_DEBUG_INFO_BTF=y)";
	default:
		return "see PYSCAN_DEBUG_BPF=1 for libbpf's messages";
	}
}

static int map_mmap(struct bpf_map *map, void **mem, size_t *len)
{
	const long page = sysconf(_SC_PAGESIZE);
	const size_t value = (bpf_map__value_size(map) + 7) & ~(size_t)7;
	const size_t bytes = value * bpf_map__max_entries(map);

	*len = (bytes + (size_t)page - 1) & ~((size_t)page - 1);
	*mem = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(map), 0);
	return *mem == MAP_FAILED ? -errno : 0;
}

static int cpus_allowed(int *cpus, int max)
{
	cpu_set_t set;
	int n = 0;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 0;
	for (int cpu = 0; cpu < CPU_SETSIZE && n < max; cpu++)
		if (CPU_ISSET(cpu, &set))
			cpus[n++] = cpu;
	return n;
}

/* BPF_PROG_RUN with repeat > 1 adds the program to the kernel's XDP dispatcher for the run
 * and removes it afterwards, and each change waits for an RCU grace period: 20-30 ms per call
 * here, 400 times what sending 1024 frames takes. A program already in the dispatcher is only
 * reference-counted. Attaching it (generic mode, bpf_link) to the loopback device of a new,
 * empty network namespace keeps it there: no traffic ever reaches that device, nothing is
 * visible outside this process, and closing the link and the namespace fd undoes it all. */
struct anchor_job {
	int prog_fd;
	int link_fd;
	int netns_fd;
	int error;
};

static void *anchor_thread(void *arg)
{
	struct anchor_job *job = arg;

	/* unshare moves only this short-lived thread */
	if (unshare(CLONE_NEWNET)) {
		job->error = -errno;
		return NULL;
	}
	job->netns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_SKB_MODE);
	job->link_fd = bpf_link_create(job->prog_fd, 1 /* lo */, BPF_XDP, &opts);
	if (job->netns_fd < 0 || job->link_fd < 0)
		job->error = -errno;
	return NULL;
}

static int anchor_in_dispatcher(struct pyscan_xdplive *xl)
{
	struct anchor_job job = { .prog_fd = xl->prog_fd, .link_fd = -1, .netns_fd = -1 };
	pthread_t thread;
	int rc = pthread_create(&thread, NULL, anchor_thread, &job);

	if (rc)
		return -rc;
	pthread_join(thread, NULL);
	if (job.error) {
		if (job.link_fd >= 0)
			close(job.link_fd);
		if (job.netns_fd >= 0)
			close(job.netns_fd);
		return job.error;
	}
	xl->anchor_link_fd = job.link_fd;
	xl->anchor_netns_fd = job.netns_fd;
	return 0;
}

struct pyscan_xdplive *pyscan_xdplive__open(const struct pyscan_xdplive_config *cfg,
					    const char *object_path, char *err, size_t errlen)
{
	struct pyscan_xdplive *xl = NULL;
	struct bpf_program *prog;
	struct bpf_map *ctrl_map, *frames_map;
	int rc;

	if (!cfg || !object_path || !cfg->runners || cfg->runners > PYSCAN_XL_MAX_RUNNERS ||
	    cfg->frame_len < 14 || cfg->frame_len > PYSCAN_XL_SLOT_DATA || cfg->batch_size > 256) {
		set_error(err, errlen, "xdp-live configuration invalid: runners 1..%d, frame length "
			  "14..%d, batch 0..256", PYSCAN_XL_MAX_RUNNERS, PYSCAN_XL_SLOT_DATA);
		errno = EINVAL;
		return NULL;
	}
	xl = calloc(1, sizeof(*xl));
	if (!xl)
		goto nomem;
	xl->cfg = *cfg;
	xl->refs = 1;
	xl->netns_fd = -1;
	xl->anchor_link_fd = -1;
	xl->egress_link_fd = -1;
	xl->anchor_netns_fd = -1;
	xl->rings = calloc(cfg->runners, sizeof(*xl->rings));
	if (!xl->rings)
		goto nomem;

	xl->netns_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (xl->netns_fd < 0 || fstat(xl->netns_fd, &xl->netns)) {
		rc = -errno;
		set_error(err, errlen, "cannot open this thread's network namespace: %s",
			  strerror(-rc));
		goto fail;
	}
	xl->obj = bpf_object__open_file(object_path, NULL);
	if (!xl->obj) {
		rc = -errno;
		set_error(err, errlen, "cannot open %s: %s", object_path, strerror(-rc));
		goto fail;
	}
	prog = bpf_object__find_program_by_name(xl->obj, "pyscan_xdp_live");
	ctrl_map = bpf_object__find_map_by_name(xl->obj, "xdplive_ctrl");
	frames_map = bpf_object__find_map_by_name(xl->obj, "xdplive_frames");
	if (!prog || !ctrl_map || !frames_map) {
		rc = -ENOENT;
		set_error(err, errlen, "%s lacks the xdp-live program or its maps", object_path);
		goto fail;
	}
	bpf_map__set_max_entries(ctrl_map, cfg->runners);
	bpf_map__set_max_entries(frames_map, cfg->runners * PYSCAN_XL_REGION);
	rc = bpf_object__load(xl->obj);
	if (rc) {
		rc = rc < 0 ? rc : -errno;
		set_error(err, errlen, "cannot load the xdp-live program (%s): %s", strerror(-rc),
			  load_hint(rc));
		goto fail;
	}
	xl->prog_fd = bpf_program__fd(prog);
	xl->tids_fd = bpf_object__find_map_fd_by_name(xl->obj, "xdplive_tids");
	const char *tracers[2] = { "pyscan_xdp_live_xmit", "pyscan_xdp_live_redirect_err" };
	for (int i = 0; i < 2; i++) {
		struct bpf_program *tp = bpf_object__find_program_by_name(xl->obj, tracers[i]);

		xl->links[i] = tp ? bpf_program__attach(tp) : NULL;
		if (!xl->links[i]) {
			rc = tp ? -errno : -ENOENT;
			set_error(err, errlen, "cannot attach the xdp tracepoint program %s (%s): %s",
				  tracers[i], strerror(-rc), load_hint(rc));
			goto fail;
		}
	}
	if (cfg->anchor)
		xl->anchored = anchor_in_dispatcher(xl) == 0; /* slow without it, still correct */
	if ((rc = map_mmap(ctrl_map, &xl->ctrl_mem, &xl->ctrl_len)) ||
	    (rc = map_mmap(frames_map, &xl->frames_mem, &xl->frames_len))) {
		set_error(err, errlen, "cannot mmap the xdp-live maps: %s", strerror(-rc));
		goto fail;
	}

	int cpus[CPU_SETSIZE];
	const int ncpus = cpus_allowed(cpus, CPU_SETSIZE);
	for (uint32_t i = 0; i < cfg->runners; i++) {
		struct xdplive_ring *r = &xl->rings[i];
		uint32_t runner = i;

		r->ring.ops = &xdplive_tx_ops;
		r->ring.tx_slot_capacity = PYSCAN_XL_SLOT_DATA;
		r->home_netns_fd = -1;
		r->owner = xl;
		r->index = i;
		r->ctrl = (struct pyscan_xl_ctrl *)xl->ctrl_mem + i;
		r->slots = (struct pyscan_xl_slot *)xl->frames_mem + (size_t)i * PYSCAN_XL_REGION;
		r->ctrl->ifindex = cfg->ifindex;
		r->cpu = cfg->pin && ncpus ? cpus[i % (uint32_t)ncpus] : -1;
		memcpy(r->tmpl, &runner, sizeof(runner));
		xl->refs++;
	}
	return xl;

nomem:
	rc = -ENOMEM;
	set_error(err, errlen, "out of memory");
fail:
	if (xl) {
		xl->refs = 1;
		xdplive_release(xl);
	}
	errno = -rc;
	return NULL;
}

pyscan_ring *pyscan_xdplive__tx_ring(struct pyscan_xdplive *xl, uint32_t index)
{
	return xl && index < xl->cfg.runners ? &xl->rings[index].ring : NULL;
}

void pyscan_xdplive__counters(struct pyscan_xdplive *xl, struct pyscan_xdplive_counters *out)
{
	memset(out, 0, sizeof(*out));
	if (!xl)
		return;
	for (uint32_t i = 0; i < xl->cfg.runners; i++) {
		const struct xdplive_ring *r = &xl->rings[i];
		const struct pyscan_xl_ctrl *c = r->ctrl;

		out->runs += r->runs;
		out->device_taken += c->xmit_sent;
		out->device_refused += c->xmit_dropped;
		out->redirect_errors += c->redirect_errors;
		out->resent += r->resent;
		out->unaccounted += r->unaccounted + c->unmatched;
		out->rejected += c->rejected;
		if (c->last_error)
			out->last_error = c->last_error;
	}
	out->anchored = (uint64_t)xl->anchored;
}

int pyscan_xdplive__test_fill(struct pyscan_xdplive *xl, const uint8_t *frames,
			      const uint32_t *lens, uint32_t n, uint8_t *out, uint32_t out_cap,
			      uint32_t *out_lens, uint32_t *actions)
{
	if (!xl || n > PYSCAN_XL_REGION)
		return -EINVAL;
	struct xdplive_ring *r = &xl->rings[0];
	struct pyscan_xl_ctrl *c = r->ctrl;
	const uint32_t frame_len = xl->cfg.frame_len;
	uint32_t used = 0;
	size_t offset = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (lens[i] > PYSCAN_XL_SLOT_DATA)
			return -EMSGSIZE;
		memcpy(r->slots[i].data, frames + offset, lens[i]);
		r->slots[i].len = (uint16_t)lens[i];
		offset += lens[i];
	}
	for (uint32_t i = 0; i < n; i++) {
		uint8_t buf[PYSCAN_XL_META_LEN + PYSCAN_XL_SLOT_DATA + 64];
		struct xdp_md md = { .data = PYSCAN_XL_META_LEN,
				     .data_end = PYSCAN_XL_META_LEN + frame_len };
		struct xdp_md md_out = { 0 };
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = r->tmpl,
			    .data_size_in = PYSCAN_XL_META_LEN + frame_len, .data_out = buf,
			    .data_size_out = sizeof(buf), .ctx_in = &md, .ctx_size_in = sizeof(md),
			    .ctx_out = &md_out, .ctx_size_out = sizeof(md_out), .repeat = 1);

		c->next = i;
		c->end = i + 1;
		c->fifo_head = c->fifo_tail = 0;
		if (bpf_prog_test_run_opts(xl->prog_fd, &opts) < 0)
			return -errno;
		const uint32_t start = md_out.data, end = md_out.data_end;
		if (end < start || end > opts.data_size_out || used + (end - start) > out_cap)
			return -EMSGSIZE;
		memcpy(out + used, buf + start, end - start);
		out_lens[i] = end - start;
		actions[i] = opts.retval;
		used += end - start;
	}
	c->fifo_head = c->fifo_tail = 0;
	return (int)n;
}

int pyscan_xdplive__attach_egress(struct pyscan_xdplive *xl, char *err, size_t errlen)
{
	if (!xl)
		return -EINVAL;
	if (xl->egress_link_fd >= 0)
		return 0;
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_DRV_MODE);
	xl->egress_link_fd = bpf_link_create(xl->prog_fd, (int)xl->cfg.ifindex, BPF_XDP, &opts);
	if (xl->egress_link_fd < 0) {
		int rc = -errno;

		set_error(err, errlen, "cannot attach the xdp-live program to ifindex %u in native "
			  "mode: %s", xl->cfg.ifindex, strerror(-rc));
		return rc;
	}
	return 0;
}

void pyscan_xdplive__close(struct pyscan_xdplive *xl)
{
	if (xl)
		xdplive_release(xl);
}

int pyscan_xdplive__probe(const char *object_path, char *err, size_t errlen)
{
	/* no anchor: one run does not need it, and it would create a namespace per probe */
	const struct pyscan_xdplive_config cfg = { .ifindex = 1, .runners = 1, .frame_len = 60 };
	struct pyscan_xdplive *xl = pyscan_xdplive__open(&cfg, object_path, err, errlen);

	if (!xl)
		return -(errno ? errno : EINVAL);
	struct xdplive_ring *r = &xl->rings[0];
	struct xdp_md md = { .data = PYSCAN_XL_META_LEN, .data_end = PYSCAN_XL_META_LEN + 60 };
	/* end = 0: the program drops the one frame, so nothing leaves any device. */
	r->ctrl->next = r->ctrl->end = 0;
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = r->tmpl,
		    .data_size_in = PYSCAN_XL_META_LEN + 60, .ctx_in = &md,
		    .ctx_size_in = sizeof(md), .repeat = 1, .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
	int rc = bpf_prog_test_run_opts(xl->prog_fd, &opts) < 0 ? -errno : 0;
	if (rc)
		set_error(err, errlen, "a live-frames BPF_PROG_RUN failed (%s): %s", strerror(-rc),
			  rc == -EINVAL ? "this kernel lacks BPF_F_TEST_XDP_LIVE_FRAMES "
			  "(Linux >= 5.18)" : load_hint(rc));
	pyscan_xdplive__close(xl);
	return rc;
}
