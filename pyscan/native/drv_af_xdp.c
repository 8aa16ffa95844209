/* SPDX-License-Identifier: GPL-2.0-only
 *
 * drv_af_xdp.c - the AF_XDP driver: libxdp sockets behind the ring interface, and the loader
 * of the XDP reply filter (pyscan/bpf/reply_filter.bpf.c).
 *
 * Layout: one UMEM per queue socket (apis.md 2.5: simpler than a shared UMEM, which would need
 * a fill/completion pair per queue anyway). A UMEM holds the frames of each direction the
 * socket has: ring_size for the TX thread first (when the queue sends), then rx_ring_size for
 * the RX thread, whose ring is larger because it must absorb every reply that arrives while
 * the RX thread is off the CPU (2 ms lost at 250 kpps overflow 512 slots). Neither
 * thread ever touches the other's frames or the other's rings (TX: tx + completion; RX: rx +
 * fill), so the two threads share a socket without a lock. One RX ring object reads every
 * socket that has an RX ring, since replies arrive on whichever queue the peer hashes them to.
 *
 * Invariants:
 *  - A TX frame is in exactly one place: the free stack, the caller's hands (reserved), the
 *    TX ring, or the completion ring. The TX ring has as many slots as there are TX frames,
 *    so a submit of frames the caller holds can always reserve descriptors.
 *  - An RX frame is in the fill ring, the RX ring, or the caller's hands (peeked, not yet
 *    released); release puts it straight back into the fill ring, which is as large as the
 *    RX half, so the refill never waits.
 *  - The filter is attached through a bpf_link: the kernel detaches it when the link fd
 *    closes, so close, a crash or SIGKILL all leave the interface as it was.
 */
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#include "drv_af_xdp.h"

#ifndef SOL_XDP
#define SOL_XDP 283
#endif

/* Copy-mode sendto transmits at most this many frames per call (kernel TX_BATCH_SIZE) and
 * answers EAGAIN while more are queued, so a kick repeats up to ring_size / 32 + slack times. */
#define COPY_MODE_FRAMES_PER_KICK 32

/* How long a bind waits for a queue that a just-closed socket still holds (see open_queue). */
#define QUEUE_RELEASE_WAIT_MS 2000

struct afxdp_queue {
	uint32_t queue_id;
	int has_tx;
	int has_rx;
	int fd;
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	uint8_t *area;
	size_t area_size;
	uint32_t frame_size;
	uint32_t ring_size;    /* TX ring, completion ring and TX frames */
	uint32_t rx_ring_size; /* RX ring, fill ring and RX frames */
	int zerocopy;
	/* Zero-initialised by calloc: libxdp 1.3.1 leaves cached_prod/cached_cons of fill and
	 * completion unset (apis.md 2.2), which produced phantom completions. */
	struct xsk_ring_prod fill;
	struct xsk_ring_cons comp;
	struct xsk_ring_cons rx;
	struct xsk_ring_prod tx;

	/* TX thread only */
	uint64_t *free_frames;
	uint32_t free_count;
	uint32_t outstanding; /* submitted, not yet completed */
	uint32_t *frame_len;  /* length submitted for each TX frame, for tx_bytes at completion */
	uint64_t tx_frames, tx_bytes, tx_retries, tx_errors;

	/* RX thread only */
	uint32_t rx_peek_index;
	uint32_t rx_peeked;
	uint64_t rx_frames, rx_bytes;
};

struct afxdp_tx_ring {
	struct pyscan_ring base;
	struct pyscan_afxdp *owner;
	struct afxdp_queue *queue;
};

struct afxdp_rx_ring {
	struct pyscan_ring base;
	struct pyscan_afxdp *owner;
	uint32_t cursor;             /* next queue to look at first, for fairness */
	struct afxdp_queue *active;  /* the queue the last rx_peek took frames from */
};

struct pyscan_replyfilter {
	struct bpf_object *obj;
	int prog_fd;
	int xsks_map_fd;
	int counters_fd;
	uint32_t prog_id;
};

struct pyscan_afxdp {
	/* One reference for the handle, one per ring; memory goes with the last. */
	uint32_t refs;
	int closed;
	int ifindex;
	struct afxdp_queue *queues;
	uint32_t queue_count;
	struct afxdp_tx_ring *tx_rings;
	uint32_t tx_count;
	struct afxdp_rx_ring rx_ring;
	int has_rx;
	struct pyscan_replyfilter *filter;
	int link_fd;
	uint64_t final_counters[PYSCAN_RF_NCOUNTERS]; /* the filter's counters when it was closed */
	struct pyscan_afxdp_info info;
};

/* ---- library noise ------------------------------------------------------------------------ */

/* libbpf and libxdp print to stderr by default (the dispatcher EPERM fallback, skipped ELF
 * sections). Keep the last warning so an error message can quote it; print only on request. */
static __thread char last_library_warning[160];

static void remember_warning(const char *fmt, va_list ap)
{
	va_list copy;

	va_copy(copy, ap);
	vsnprintf(last_library_warning, sizeof(last_library_warning), fmt, copy);
	va_end(copy);
	last_library_warning[strcspn(last_library_warning, "\n")] = '\0';
}

static int print_if_debugging(const char *fmt, va_list ap)
{
	return getenv("PYSCAN_DEBUG_BPF") ? vfprintf(stderr, fmt, ap) : 0;
}

/* Whoever installed a libbpf printer before us (bpf_object.c keeps a log for its own error
 * messages) still gets every line. */
static libbpf_print_fn_t chained_libbpf_print;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN)
		remember_warning(fmt, ap);
	if (chained_libbpf_print)
		return chained_libbpf_print(level, fmt, ap);
	return level == LIBBPF_WARN ? print_if_debugging(fmt, ap) : 0;
}

static int libxdp_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	if (level != LIBXDP_WARN)
		return 0;
	remember_warning(fmt, ap);
	return print_if_debugging(fmt, ap);
}

static void quiet_libraries(void)
{
	libbpf_print_fn_t previous = libbpf_set_print(libbpf_print);

	if (previous != libbpf_print)
		chained_libbpf_print = previous;
	libxdp_set_print(libxdp_print);
	last_library_warning[0] = '\0';
}

static void set_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void add_warning(struct pyscan_afxdp_info *info, const char *text)
{
	size_t used = strlen(info->warnings);

	snprintf(info->warnings + used, sizeof(info->warnings) - used, "%s%s",
		 used ? "; " : "", text);
}

/* ---- the reply filter --------------------------------------------------------------------- */

struct pyscan_replyfilter *pyscan_replyfilter__load(const char *object_path, const uint8_t *key,
						    uint32_t scanner_ip_be, uint16_t port_lo,
						    uint16_t port_hi, uint32_t queue_slots,
						    char *err, size_t errlen)
{
	struct pyscan_reply_filter_config config = {0};
	struct bpf_prog_info prog_info = {0};
	uint32_t prog_info_len = sizeof(prog_info);
	struct pyscan_replyfilter *filter;
	struct bpf_program *prog;
	struct bpf_map *rodata, *xsks_map;
	size_t rodata_size = 0;
	int rc;

	quiet_libraries();
	if (port_lo > port_hi) {
		set_error(err, errlen, "reply filter: port range %u-%u is empty", port_lo, port_hi);
		errno = EINVAL;
		return NULL;
	}
	filter = calloc(1, sizeof(*filter));
	if (!filter) {
		set_error(err, errlen, "reply filter: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	filter->prog_fd = filter->xsks_map_fd = filter->counters_fd = -1;

	filter->obj = bpf_object__open_file(object_path, NULL);
	if (!filter->obj) {
		rc = -errno;
		filter->obj = NULL;
		set_error(err, errlen, "reply filter: cannot open %s: %s (rebuild with setup.py build_ext)",
			  object_path, strerror(-rc));
		goto fail;
	}
	rodata = bpf_object__find_map_by_name(filter->obj, ".rodata");
	if (!rodata || !bpf_map__initial_value(rodata, &rodata_size) ||
	    rodata_size != sizeof(config)) {
		rc = -EINVAL;
		set_error(err, errlen, "reply filter: %s has a .rodata of %zu bytes, expected exactly "
			  "struct pyscan_reply_filter_config (%zu)", object_path, rodata_size,
			  sizeof(config));
		goto fail;
	}
	memcpy(&config.key.k0, key, 8);
	memcpy(&config.key.k1, key + 8, 8);
	config.scanner_ip_be = scanner_ip_be;
	config.port_lo = port_lo;
	config.port_hi = port_hi;
	config.probe_id = PYSCAN_PROBE_TCP_SYN4; /* the only module with an XDP match so far */
	rc = bpf_map__set_initial_value(rodata, &config, sizeof(config));
	if (rc)
		goto fail_generic;
	xsks_map = bpf_object__find_map_by_name(filter->obj, "xsks_map");
	if (!xsks_map) {
		rc = -ENOENT;
		set_error(err, errlen, "reply filter: %s has no xsks_map", object_path);
		goto fail;
	}
	rc = bpf_map__set_max_entries(xsks_map, queue_slots ? queue_slots : 1);
	if (rc)
		goto fail_generic;

	rc = bpf_object__load(filter->obj);
	if (rc) {
		rc = rc < 0 ? rc : -errno;
		if (rc == -EPERM || rc == -EACCES)
			set_error(err, errlen, "loading the XDP reply filter was refused (%s): it needs "
				  "CAP_BPF and CAP_NET_ADMIN (run as root)", strerror(-rc));
		else
			set_error(err, errlen, "reply filter: load/verify failed: %s (%s)",
				  strerror(-rc), last_library_warning);
		goto fail;
	}
	prog = bpf_object__find_program_by_name(filter->obj, "pyscan_reply_filter");
	if (!prog) {
		rc = -ENOENT;
		set_error(err, errlen, "reply filter: %s has no program pyscan_reply_filter",
			  object_path);
		goto fail;
	}
	filter->prog_fd = bpf_program__fd(prog);
	filter->xsks_map_fd = bpf_map__fd(xsks_map);
	filter->counters_fd = bpf_object__find_map_fd_by_name(filter->obj, "reply_filter_counters");
	if (filter->prog_fd < 0 || filter->xsks_map_fd < 0 || filter->counters_fd < 0) {
		rc = -ENOENT;
		set_error(err, errlen, "reply filter: program or maps missing after load");
		goto fail;
	}
	if (bpf_obj_get_info_by_fd(filter->prog_fd, &prog_info, &prog_info_len) == 0)
		filter->prog_id = prog_info.id;
	return filter;

fail_generic:
	set_error(err, errlen, "reply filter: preparing %s failed: %s", object_path, strerror(-rc));
fail:
	pyscan_replyfilter__close(filter);
	errno = -rc;
	return NULL;
}

int pyscan_replyfilter__test_run(struct pyscan_replyfilter *filter, const uint8_t *frame,
				 uint32_t len, uint32_t *action)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = len, .repeat = 1);
	int rc;

	rc = bpf_prog_test_run_opts(filter->prog_fd, &opts);
	if (rc)
		return rc < 0 ? rc : -errno;
	*action = opts.retval;
	return 0;
}

/* Sums each counter over all possible CPUs into out[0 .. n-1]. */
int pyscan_replyfilter__counters(struct pyscan_replyfilter *filter, uint64_t *out, uint32_t n)
{
	int ncpus = libbpf_num_possible_cpus();
	uint64_t *per_cpu;
	uint32_t index;

	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	per_cpu = calloc((size_t)ncpus, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	for (index = 0; index < n && index < PYSCAN_RF_NCOUNTERS; index++) {
		out[index] = 0;
		if (bpf_map_lookup_elem(filter->counters_fd, &index, per_cpu) == 0)
			for (int cpu = 0; cpu < ncpus; cpu++)
				out[index] += per_cpu[cpu];
	}
	free(per_cpu);
	return 0;
}

uint32_t pyscan_replyfilter__prog_id(struct pyscan_replyfilter *filter)
{
	return filter->prog_id;
}

void pyscan_replyfilter__close(struct pyscan_replyfilter *filter)
{
	if (!filter)
		return;
	if (filter->obj)
		bpf_object__close(filter->obj);
	free(filter);
}

/* ---- probing ------------------------------------------------------------------------------ */

int pyscan_afxdp__probe(char *err, size_t errlen)
{
	int fd = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		int rc = -errno;

		if (rc == -EPERM || rc == -EACCES)
			set_error(err, errlen, "AF_XDP sockets need CAP_NET_RAW (run as root)");
		else
			set_error(err, errlen, "this kernel has no AF_XDP sockets (%s); "
				  "CONFIG_XDP_SOCKETS is off", strerror(-rc));
		return rc;
	}
	close(fd);
	return 0;
}

int pyscan_afxdp__queue_counts(const char *ifname, uint32_t *rx, uint32_t *tx)
{
	struct ethtool_channels channels = {.cmd = ETHTOOL_GCHANNELS};
	struct ifreq ifr = {0};
	int fd, rc = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&channels;
	if (ioctl(fd, SIOCETHTOOL, &ifr) < 0) {
		rc = -errno;
	} else {
		/* Drivers report either separate rx/tx queues or combined ones (veth: separate). */
		*rx = channels.rx_count + channels.combined_count;
		*tx = channels.tx_count + channels.combined_count;
		if (!*rx || !*tx)
			rc = -ENODATA;
	}
	close(fd);
	return rc;
}

/* ---- TX ring ops ------------------------------------------------------------------------- */

static struct afxdp_queue *tx_queue_of(struct pyscan_ring *ring)
{
	return ((struct afxdp_tx_ring *)ring)->queue;
}

static uint32_t afxdp_tx_reclaim(struct pyscan_ring *ring)
{
	struct afxdp_queue *q = tx_queue_of(ring);
	uint32_t index, done;

	done = xsk_ring_cons__peek(&q->comp, q->ring_size, &index);
	for (uint32_t i = 0; i < done; i++) {
		uint64_t addr = *xsk_ring_cons__comp_addr(&q->comp, index + i);

		q->tx_frames++;
		q->tx_bytes += q->frame_len[addr / q->frame_size];
		q->free_frames[q->free_count++] = addr;
	}
	if (done) {
		xsk_ring_cons__release(&q->comp, done);
		q->outstanding -= done;
	}
	return done;
}

static int tx_ring_empty(struct afxdp_queue *q)
{
	return xsk_prod_nb_free(&q->tx, q->ring_size) == q->ring_size;
}

static int afxdp_tx_kick(struct pyscan_ring *ring)
{
	struct afxdp_queue *q = tx_queue_of(ring);
	uint32_t attempts = q->ring_size / COPY_MODE_FRAMES_PER_KICK + 4;

	/* Callers kick after every submit and whenever they wait; a syscall is only worth it
	 * when descriptors are waiting and the kernel asked to be woken. */
	if (!xsk_ring_prod__needs_wakeup(&q->tx) || tx_ring_empty(q))
		return 0;
	/* Zero-copy: one wakeup starts the driver. Copy: each call sends a batch synchronously,
	 * so repeat until the ring is drained or the device pushes back. */
	do {
		if (sendto(q->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0) {
			if (q->zerocopy)
				return 0;
			continue;
		}
		switch (errno) {
		case EAGAIN:
			continue;
		case EBUSY:
		case ENOBUFS:
		case ENETDOWN:
			return 0; /* device busy or queue full: completions will free room */
		default: {
			int rc = -errno;

			snprintf(ring->error, sizeof(ring->error), "af-xdp kick on queue %u: %s",
				 q->queue_id, strerror(-rc));
			return rc;
		}
		}
	} while (!q->zerocopy && !tx_ring_empty(q) && --attempts);
	return 0;
}

static uint32_t afxdp_tx_reserve(struct pyscan_ring *ring, struct pyscan_tx_slot *slots,
				 uint32_t max)
{
	struct afxdp_queue *q = tx_queue_of(ring);
	uint32_t n;

	if (q->free_count < max)
		afxdp_tx_reclaim(ring);
	if (q->free_count == 0) {
		q->tx_retries++;
		afxdp_tx_kick(ring);
		afxdp_tx_reclaim(ring);
	}
	n = max < q->free_count ? max : q->free_count;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t addr = q->free_frames[--q->free_count];

		slots[i].data = q->area + addr;
		slots[i].capacity = q->frame_size;
		slots[i].len = 0;
		slots[i].handle = addr;
	}
	return n;
}

static int afxdp_tx_submit(struct pyscan_ring *ring, struct pyscan_tx_slot *slots, uint32_t n)
{
	struct afxdp_queue *q = tx_queue_of(ring);
	uint32_t valid = 0, index;

	/* A descriptor with a bad length would be dropped by the kernel without a completion,
	 * losing its frame for good: refuse it here, count it, keep the frame. */
	for (uint32_t i = 0; i < n; i++) {
		if (slots[i].len == 0 || slots[i].len > q->frame_size) {
			q->tx_errors++;
			q->free_frames[q->free_count++] = slots[i].handle;
		} else {
			valid++;
		}
	}
	if (!valid)
		return valid == n ? 0 : -EINVAL;
	if (xsk_ring_prod__reserve(&q->tx, valid, &index) != valid) {
		/* Cannot happen while the TX ring is as large as the TX half of the UMEM. */
		snprintf(ring->error, sizeof(ring->error),
			 "af-xdp queue %u: TX ring full with frames in hand", q->queue_id);
		return -ENOSPC;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct xdp_desc *desc;

		if (slots[i].len == 0 || slots[i].len > q->frame_size)
			continue;
		desc = xsk_ring_prod__tx_desc(&q->tx, index++);
		desc->addr = slots[i].handle;
		desc->len = slots[i].len;
		desc->options = 0;
		q->frame_len[slots[i].handle / q->frame_size] = slots[i].len;
	}
	xsk_ring_prod__submit(&q->tx, valid);
	q->outstanding += valid;
	return valid == n ? 0 : -EINVAL;
}

static int64_t monotonic_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int afxdp_tx_flush(struct pyscan_ring *ring, int timeout_ms)
{
	struct afxdp_queue *q = tx_queue_of(ring);
	int64_t deadline = monotonic_ms() + timeout_ms;
	struct timespec pause = {.tv_nsec = 50 * 1000};

	while (q->outstanding) {
		int rc = afxdp_tx_kick(ring);

		if (rc < 0)
			return rc;
		if (afxdp_tx_reclaim(ring))
			continue;
		if (monotonic_ms() >= deadline) {
			snprintf(ring->error, sizeof(ring->error),
				 "af-xdp queue %u: %u frames not completed after %d ms",
				 q->queue_id, q->outstanding, timeout_ms);
			return -ETIMEDOUT;
		}
		nanosleep(&pause, NULL);
	}
	return 0;
}

static void afxdp_tx_stats(struct pyscan_ring *ring, struct pyscan_ring_stats *out)
{
	struct afxdp_queue *q = tx_queue_of(ring);

	out->tx_frames = q->tx_frames;
	out->tx_bytes = q->tx_bytes;
	out->tx_retries = q->tx_retries;
	out->tx_errors = q->tx_errors;
	if (q->fd >= 0) {
		struct xdp_statistics xs = {0};
		socklen_t len = sizeof(xs);

		if (getsockopt(q->fd, SOL_XDP, XDP_STATISTICS, &xs, &len) == 0)
			out->tx_errors += xs.tx_invalid_descs;
	}
}

/* ---- RX ring ops ------------------------------------------------------------------------- */

static uint32_t afxdp_rx_peek(struct pyscan_ring *ring, struct pyscan_rx_frame *frames,
			      uint32_t max)
{
	struct afxdp_rx_ring *rxr = (struct afxdp_rx_ring *)ring;
	struct pyscan_afxdp *xdp = rxr->owner;

	for (uint32_t tried = 0; tried < xdp->queue_count; tried++) {
		struct afxdp_queue *q = &xdp->queues[(rxr->cursor + tried) % xdp->queue_count];
		uint32_t index, n;

		if (!q->has_rx)
			continue;
		n = xsk_ring_cons__peek(&q->rx, max, &index);
		if (!n)
			continue;
		for (uint32_t i = 0; i < n; i++) {
			const struct xdp_desc *desc = xsk_ring_cons__rx_desc(&q->rx, index + i);

			frames[i].data = xsk_umem__get_data(q->area, desc->addr);
			frames[i].len = desc->len;
			frames[i].pad = 0;
		}
		q->rx_peek_index = index;
		q->rx_peeked = n;
		rxr->active = q;
		rxr->cursor = (rxr->cursor + tried + 1) % xdp->queue_count;
		return n;
	}
	rxr->active = NULL;
	return 0;
}

static void afxdp_rx_release(struct pyscan_ring *ring, uint32_t n)
{
	struct afxdp_rx_ring *rxr = (struct afxdp_rx_ring *)ring;
	struct afxdp_queue *q = rxr->active;
	uint32_t fill_index;

	if (!q)
		return;
	if (n > q->rx_peeked)
		n = q->rx_peeked;
	if (n && xsk_ring_prod__reserve(&q->fill, n, &fill_index) == n) {
		for (uint32_t i = 0; i < n; i++) {
			const struct xdp_desc *desc = xsk_ring_cons__rx_desc(&q->rx,
									      q->rx_peek_index + i);

			/* The descriptor points past the headroom; the fill ring wants the frame. */
			*xsk_ring_prod__fill_addr(&q->fill, fill_index + i) =
				desc->addr - desc->addr % q->frame_size;
			q->rx_frames++;
			q->rx_bytes += desc->len;
		}
		xsk_ring_prod__submit(&q->fill, n);
	} else if (n) {
		/* Cannot happen: the fill ring holds every RX frame. Keep them rather than lose them. */
		snprintf(ring->error, sizeof(ring->error), "af-xdp queue %u: fill ring full",
			 q->queue_id);
		n = 0;
	}
	xsk_ring_cons__cancel(&q->rx, q->rx_peeked - n);
	xsk_ring_cons__release(&q->rx, n);
	q->rx_peeked = 0;
	rxr->active = NULL;
}

static int afxdp_rx_wait(struct pyscan_ring *ring, int timeout_ms)
{
	struct afxdp_rx_ring *rxr = (struct afxdp_rx_ring *)ring;
	struct pyscan_afxdp *xdp = rxr->owner;
	struct pollfd fds[xdp->queue_count];
	int rc;

	for (uint32_t i = 0; i < xdp->queue_count; i++) {
		if (xdp->queues[i].has_rx && xsk_cons_nb_avail(&xdp->queues[i].rx, 1))
			return 1;
		/* poll() skips negative fds: TX-only sockets never wake the RX thread. */
		fds[i].fd = xdp->queues[i].has_rx ? xdp->queues[i].fd : -1;
		fds[i].events = POLLIN;
		fds[i].revents = 0;
	}
	/* poll() also performs the fill-ring wakeup that need_wakeup may ask for. */
	rc = poll(fds, xdp->queue_count, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	return rc > 0;
}

static void afxdp_rx_stats(struct pyscan_ring *ring, struct pyscan_ring_stats *out)
{
	struct pyscan_afxdp *xdp = ((struct afxdp_rx_ring *)ring)->owner;
	uint64_t counters[PYSCAN_RF_NCOUNTERS] = {0};

	for (uint32_t i = 0; i < xdp->queue_count; i++) {
		struct afxdp_queue *q = &xdp->queues[i];

		out->rx_frames += q->rx_frames;
		out->rx_bytes += q->rx_bytes;
		if (q->fd >= 0) {
			struct xdp_statistics xs = {0};
			socklen_t len = sizeof(xs);

			/* Every reply the kernel could not put on the ring, each counted once:
			 * rx_dropped covers an empty fill ring (rx_fill_ring_empty_descs counts
			 * the same events again) and frames too large for a UMEM frame;
			 * rx_ring_full a full RX ring. rx_invalid_descs counts bad descriptors,
			 * not frames. */
			if (getsockopt(q->fd, SOL_XDP, XDP_STATISTICS, &xs, &len) == 0)
				out->rx_drops += xs.rx_dropped + xs.rx_ring_full;
		}
	}
	/* A matched reply the filter had to pass (no socket on its queue) is lost to the scan:
	 * a drop, not a frame the filter chose to leave to the kernel. */
	if (pyscan_afxdp__filter_counters(xdp, counters, PYSCAN_RF_NCOUNTERS) == 0) {
		out->rx_filtered = counters[PYSCAN_RF_PASSED];
		out->rx_drops += counters[PYSCAN_RF_UNQUEUED];
	}
}

/* ---- lifetime ---------------------------------------------------------------------------- */

static void release_kernel_resources(struct pyscan_afxdp *xdp)
{
	if (xdp->closed)
		return;
	xdp->closed = 1;
	/* Detach first, so no frame is redirected to a socket that is going away. */
	if (xdp->link_fd >= 0)
		close(xdp->link_fd);
	xdp->link_fd = -1;
	for (uint32_t i = 0; xdp->queues && i < xdp->queue_count; i++) {
		struct afxdp_queue *q = &xdp->queues[i];

		if (q->xsk)
			xsk_socket__delete(q->xsk);
		q->xsk = NULL;
		q->fd = -1;
		if (q->umem)
			xsk_umem__delete(q->umem);
		q->umem = NULL;
		if (q->area)
			munmap(q->area, q->area_size);
		q->area = NULL;
	}
	/* The summary is printed after close: keep what the filter counted. */
	if (xdp->filter)
		pyscan_replyfilter__counters(xdp->filter, xdp->final_counters, PYSCAN_RF_NCOUNTERS);
	pyscan_replyfilter__close(xdp->filter);
	xdp->filter = NULL;
}

static void drop_reference(struct pyscan_afxdp *xdp)
{
	if (--xdp->refs)
		return;
	release_kernel_resources(xdp);
	for (uint32_t i = 0; xdp->queues && i < xdp->queue_count; i++) {
		free(xdp->queues[i].free_frames);
		free(xdp->queues[i].frame_len);
	}
	free(xdp->queues);
	free(xdp->tx_rings);
	free(xdp);
}

static void afxdp_tx_destroy(struct pyscan_ring *ring)
{
	drop_reference(((struct afxdp_tx_ring *)ring)->owner);
}

static void afxdp_rx_destroy(struct pyscan_ring *ring)
{
	drop_reference(((struct afxdp_rx_ring *)ring)->owner);
}

static const struct pyscan_ring_ops afxdp_tx_ops = {
	.name = "af-xdp",
	.tx_reserve = afxdp_tx_reserve,
	.tx_submit = afxdp_tx_submit,
	.tx_reclaim = afxdp_tx_reclaim,
	.tx_kick = afxdp_tx_kick,
	.tx_flush = afxdp_tx_flush,
	.get_stats = afxdp_tx_stats,
	.destroy = afxdp_tx_destroy,
};

static const struct pyscan_ring_ops afxdp_rx_ops = {
	.name = "af-xdp",
	.rx_peek = afxdp_rx_peek,
	.rx_release = afxdp_rx_release,
	.rx_wait = afxdp_rx_wait,
	.get_stats = afxdp_rx_stats,
	.destroy = afxdp_rx_destroy,
};

/* ---- open --------------------------------------------------------------------------------- */

static int attach_filter(struct pyscan_afxdp *xdp, const struct pyscan_afxdp_config *cfg,
			 char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts);
	int want_native = cfg->attach_mode != PYSCAN_AFXDP_ATTACH_GENERIC;
	uint32_t existing = 0;
	int fd;

	opts.flags = want_native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
	fd = bpf_link_create(xdp->filter->prog_fd, xdp->ifindex, BPF_XDP, &opts);
	if (fd < 0 && want_native && (errno == EOPNOTSUPP || errno == EINVAL)) {
		if (cfg->attach_mode == PYSCAN_AFXDP_ATTACH_NATIVE)
			add_warning(&xdp->info, "native XDP refused by the driver, "
				    "using generic attach");
		opts.flags = XDP_FLAGS_SKB_MODE;
		fd = bpf_link_create(xdp->filter->prog_fd, xdp->ifindex, BPF_XDP, &opts);
	}
	if (fd >= 0) {
		xdp->link_fd = fd;
		xdp->info.generic_attach = opts.flags == XDP_FLAGS_SKB_MODE;
		return 0;
	}
	fd = -errno;
	if (fd == -EBUSY || fd == -EEXIST) {
		bpf_xdp_query_id(xdp->ifindex, 0, &existing);
		set_error(err, errlen, "%s already has an XDP program attached (id %u); pyscan will "
			  "not replace it: detach it (ip link set dev %s xdp off) or use "
			  "--driver af-packet", cfg->ifname, existing, cfg->ifname);
	} else if (fd == -EPERM || fd == -EACCES) {
		set_error(err, errlen, "attaching XDP to %s was refused: it needs CAP_NET_ADMIN "
			  "and CAP_BPF (run as root)", cfg->ifname);
	} else if (fd == -EINVAL) {
		set_error(err, errlen, "attaching XDP to %s failed: %s (XDP through a bpf_link needs "
			  "Linux 5.9 or later; else use --driver af-packet)", cfg->ifname,
			  strerror(-fd));
	} else {
		set_error(err, errlen, "attaching XDP to %s failed: %s", cfg->ifname, strerror(-fd));
	}
	return fd;
}

static int open_queue(struct pyscan_afxdp *xdp, struct afxdp_queue *q,
		      const struct pyscan_afxdp_config *cfg, char *err, size_t errlen)
{
	uint32_t rx_ring_size = cfg->rx_ring_size ? cfg->rx_ring_size : cfg->ring_size;
	struct xsk_umem_config umem_cfg = {
		.fill_size = rx_ring_size,
		.comp_size = cfg->ring_size,
		.frame_size = cfg->frame_size,
		.frame_headroom = 0,
	};
	struct xsk_socket_config sock_cfg = {
		.rx_size = rx_ring_size,
		.tx_size = cfg->ring_size,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
	};
	struct xdp_options options = {0};
	socklen_t options_len = sizeof(options);
	uint32_t frames = (q->has_tx ? cfg->ring_size : 0) + (q->has_rx ? rx_ring_size : 0);
	uint32_t rx_first = q->has_tx ? cfg->ring_size : 0;
	uint32_t fill_index;
	int rc;

	q->frame_size = cfg->frame_size;
	q->ring_size = cfg->ring_size;
	q->rx_ring_size = rx_ring_size;
	q->fd = -1;
	q->area_size = (size_t)frames * cfg->frame_size;
	q->area = mmap(NULL, q->area_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (q->area == MAP_FAILED) {
		q->area = NULL;
		rc = -errno;
		set_error(err, errlen, "af-xdp: cannot map %zu bytes of UMEM: %s", q->area_size,
			  strerror(-rc));
		return rc;
	}
	rc = xsk_umem__create(&q->umem, q->area, q->area_size, &q->fill, &q->comp, &umem_cfg);
	if (rc) {
		q->umem = NULL;
		/* ENOBUFS: the pages would exceed RLIMIT_MEMLOCK (no CAP_IPC_LOCK). */
		if (rc == -ENOMEM || rc == -EPERM || rc == -ENOBUFS)
			set_error(err, errlen, "af-xdp: cannot register %zu bytes of UMEM (%s): raise "
				  "the locked-memory limit (ulimit -l) or lower -O ring-size / "
				  "-O rx-ring-size",
				  q->area_size, strerror(-rc));
		else
			set_error(err, errlen, "af-xdp: UMEM registration failed: %s", strerror(-rc));
		return rc;
	}

	sock_cfg.bind_flags = XDP_USE_NEED_WAKEUP;
	if (cfg->bind_mode == PYSCAN_AFXDP_BIND_COPY || xdp->info.generic_attach)
		sock_cfg.bind_flags |= XDP_COPY;
	else if (cfg->bind_mode == PYSCAN_AFXDP_BIND_ZEROCOPY)
		sock_cfg.bind_flags |= XDP_ZEROCOPY;
	rc = xsk_socket__create(&q->xsk, cfg->ifname, q->queue_id, q->umem,
				q->has_rx ? &q->rx : NULL, q->has_tx ? &q->tx : NULL, &sock_cfg);
	if (rc == -EOPNOTSUPP && (sock_cfg.bind_flags & XDP_ZEROCOPY)) {
		if (q->queue_id == 0)
			add_warning(&xdp->info, "zero-copy refused by the driver, using copy mode");
		q->xsk = NULL;
		sock_cfg.bind_flags = XDP_USE_NEED_WAKEUP | XDP_COPY;
		rc = xsk_socket__create(&q->xsk, cfg->ifname, q->queue_id, q->umem,
					q->has_rx ? &q->rx : NULL, q->has_tx ? &q->tx : NULL,
					&sock_cfg);
	}
	/* A socket closed a moment ago (a previous scan, a killed process) releases its queue
	 * from a kernel work item, after close() has returned: wait that out, bounded. */
	for (int waited_ms = 0; rc == -EBUSY && waited_ms < QUEUE_RELEASE_WAIT_MS; waited_ms += 10) {
		struct timespec pause = {.tv_nsec = 10 * 1000 * 1000};

		nanosleep(&pause, NULL);
		q->xsk = NULL;
		rc = xsk_socket__create(&q->xsk, cfg->ifname, q->queue_id, q->umem,
					q->has_rx ? &q->rx : NULL, q->has_tx ? &q->tx : NULL,
					&sock_cfg);
	}
	if (rc) {
		q->xsk = NULL;
		if (rc == -EPERM || rc == -EACCES)
			set_error(err, errlen, "af-xdp: binding a socket to %s was refused: it needs "
				  "CAP_NET_RAW (run as root)", cfg->ifname);
		else if (rc == -EBUSY)
			set_error(err, errlen, "af-xdp: queue %u of %s is already used by another "
				  "AF_XDP socket", q->queue_id, cfg->ifname);
		else if (rc == -EINVAL)
			set_error(err, errlen, "af-xdp: cannot bind to queue %u of %s (%s): the "
				  "interface has fewer queues", q->queue_id, cfg->ifname,
				  strerror(-rc));
		else
			set_error(err, errlen, "af-xdp: socket on %s queue %u failed: %s", cfg->ifname,
				  q->queue_id, strerror(-rc));
		return rc;
	}
	q->fd = xsk_socket__fd(q->xsk);
	if (getsockopt(q->fd, SOL_XDP, XDP_OPTIONS, &options, &options_len) == 0)
		q->zerocopy = !!(options.flags & XDP_OPTIONS_ZEROCOPY);

	if (q->has_tx) {
		q->free_frames = calloc(cfg->ring_size, sizeof(*q->free_frames));
		q->frame_len = calloc(cfg->ring_size, sizeof(*q->frame_len));
		if (!q->free_frames || !q->frame_len) {
			set_error(err, errlen, "af-xdp: out of memory");
			return -ENOMEM;
		}
		for (uint32_t i = 0; i < cfg->ring_size; i++)
			q->free_frames[q->free_count++] = (uint64_t)(cfg->ring_size - 1 - i) *
							  cfg->frame_size;
	}
	if (q->has_rx) {
		if (xsk_ring_prod__reserve(&q->fill, rx_ring_size, &fill_index) != rx_ring_size) {
			set_error(err, errlen, "af-xdp: cannot prime the fill ring");
			return -ENOSPC;
		}
		for (uint32_t i = 0; i < rx_ring_size; i++)
			*xsk_ring_prod__fill_addr(&q->fill, fill_index + i) =
				(uint64_t)(rx_first + i) * cfg->frame_size;
		xsk_ring_prod__submit(&q->fill, rx_ring_size);
	}
	return 0;
}

static int valid_config(const struct pyscan_afxdp_config *cfg, char *err, size_t errlen)
{
	uint32_t ring = cfg->ring_size;

	if (!memchr(cfg->ifname, '\0', sizeof(cfg->ifname)) || !cfg->ifname[0]) {
		set_error(err, errlen, "af-xdp: interface name missing or longer than 15 bytes");
		return 0;
	}
	if (ring < 64 || ring > 65536 || (ring & (ring - 1))) {
		set_error(err, errlen, "af-xdp: ring size %u is invalid; use a power of two "
			  "from 64 to 65536", ring);
		return 0;
	}
	ring = cfg->rx_ring_size;
	if (ring && (ring < 64 || ring > 65536 || (ring & (ring - 1)))) {
		set_error(err, errlen, "af-xdp: RX ring size %u is invalid; use a power of two "
			  "from 64 to 65536 (0: the TX ring size)", ring);
		return 0;
	}
	if (cfg->frame_size != 2048 && cfg->frame_size != 4096) {
		set_error(err, errlen, "af-xdp: frame size %u is invalid; use 2048 or 4096",
			  cfg->frame_size);
		return 0;
	}
	if (!cfg->queue_count || cfg->queue_count > 1024 || cfg->tx_queues > cfg->queue_count ||
	    (!cfg->tx_queues && !cfg->want_rx)) {
		set_error(err, errlen, "af-xdp: %u TX queues out of %u queues is invalid; use 1 to "
			  "%u TX queues", cfg->tx_queues, cfg->queue_count, cfg->queue_count);
		return 0;
	}
	if (cfg->rx_queues > cfg->queue_count) {
		set_error(err, errlen, "af-xdp: %u RX queues out of %u queues is invalid",
			  cfg->rx_queues, cfg->queue_count);
		return 0;
	}
	if (cfg->bind_mode > PYSCAN_AFXDP_BIND_COPY || cfg->attach_mode > PYSCAN_AFXDP_ATTACH_GENERIC) {
		set_error(err, errlen, "af-xdp: bind mode %u / attach mode %u unknown",
			  cfg->bind_mode, cfg->attach_mode);
		return 0;
	}
	return 1;
}

struct pyscan_afxdp *pyscan_afxdp__open(const struct pyscan_afxdp_config *cfg,
					const char *object_path, char *err, size_t errlen)
{
	struct pyscan_afxdp *xdp;
	int rc;

	quiet_libraries();
	if (!valid_config(cfg, err, errlen)) {
		errno = EINVAL;
		return NULL;
	}
	xdp = calloc(1, sizeof(*xdp));
	if (!xdp) {
		set_error(err, errlen, "af-xdp: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	xdp->refs = 1;
	xdp->link_fd = -1;
	xdp->info.queue_count = cfg->queue_count;
	xdp->info.tx_queues = cfg->tx_queues;
	xdp->info.ring_size = cfg->ring_size;
	xdp->info.rx_ring_size = cfg->want_rx ? (cfg->rx_ring_size ? cfg->rx_ring_size
								 : cfg->ring_size) : 0;
	xdp->info.frame_size = cfg->frame_size;
	xdp->ifindex = (int)if_nametoindex(cfg->ifname);
	if (!xdp->ifindex) {
		rc = -errno;
		set_error(err, errlen, "af-xdp: no interface named %s in this network namespace",
			  cfg->ifname);
		goto fail;
	}
	xdp->queues = calloc(cfg->queue_count, sizeof(*xdp->queues));
	xdp->tx_rings = calloc(cfg->tx_queues ? cfg->tx_queues : 1, sizeof(*xdp->tx_rings));
	if (!xdp->queues || !xdp->tx_rings) {
		rc = -ENOMEM;
		set_error(err, errlen, "af-xdp: out of memory");
		goto fail;
	}
	xdp->queue_count = cfg->queue_count;
	for (uint32_t i = 0; i < cfg->queue_count; i++)
		xdp->queues[i].fd = -1;

	/* The filter is attached before the sockets exist: until the XSKMAP is filled its
	 * redirects fall back to XDP_PASS, so nothing is lost, and a refused attach (busy,
	 * permissions) fails before any UMEM is pinned. */
	if (cfg->want_rx) {
		xdp->filter = pyscan_replyfilter__load(object_path, cfg->key, cfg->scanner_ip_be,
						       cfg->port_lo, cfg->port_hi,
						       cfg->queue_count, err, errlen);
		if (!xdp->filter) {
			rc = -errno;
			goto fail;
		}
		xdp->info.prog_id = xdp->filter->prog_id;
		rc = attach_filter(xdp, cfg, err, errlen);
		if (rc)
			goto fail;
	} else if (cfg->attach_mode == PYSCAN_AFXDP_ATTACH_GENERIC) {
		xdp->info.generic_attach = 1;
	}

	xdp->info.zerocopy = 1;
	for (uint32_t i = 0; i < cfg->queue_count; i++) {
		struct afxdp_queue *q = &xdp->queues[i];

		q->queue_id = i;
		q->has_tx = i < cfg->tx_queues;
		/* A socket with an RX ring must sit on an existing receive queue (EINVAL else). */
		q->has_rx = cfg->want_rx && (!cfg->rx_queues || i < cfg->rx_queues);
		if (!q->has_tx && !q->has_rx)
			continue;
		rc = open_queue(xdp, q, cfg, err, errlen);
		if (rc)
			goto fail;
		xdp->info.zerocopy &= q->zerocopy;
		if (q->has_rx) {
			xdp->info.rx_queues++;
			rc = xsk_socket__update_xskmap(q->xsk, xdp->filter->xsks_map_fd);
			if (rc) {
				set_error(err, errlen, "af-xdp: cannot add queue %u to the XSKMAP: %s",
					  i, strerror(-rc));
				goto fail;
			}
		}
	}

	xdp->tx_count = cfg->tx_queues;
	for (uint32_t i = 0; i < cfg->tx_queues; i++) {
		xdp->tx_rings[i].base.ops = &afxdp_tx_ops;
		xdp->tx_rings[i].owner = xdp;
		xdp->tx_rings[i].queue = &xdp->queues[i];
		xdp->refs++;
	}
	if (cfg->want_rx) {
		xdp->has_rx = 1;
		xdp->rx_ring.base.ops = &afxdp_rx_ops;
		xdp->rx_ring.owner = xdp;
		xdp->refs++;
	}
	return xdp;

fail:
	drop_reference(xdp);
	errno = -rc;
	return NULL;
}

pyscan_ring *pyscan_afxdp__tx_ring(struct pyscan_afxdp *xdp, uint32_t index)
{
	return index < xdp->tx_count ? &xdp->tx_rings[index].base : NULL;
}

pyscan_ring *pyscan_afxdp__rx_ring(struct pyscan_afxdp *xdp)
{
	return xdp->has_rx ? &xdp->rx_ring.base : NULL;
}

void pyscan_afxdp__info(struct pyscan_afxdp *xdp, struct pyscan_afxdp_info *out)
{
	*out = xdp->info;
}

int pyscan_afxdp__filter_counters(struct pyscan_afxdp *xdp, uint64_t *out, uint32_t n)
{
	memset(out, 0, n * sizeof(*out));
	if (xdp->filter)
		return pyscan_replyfilter__counters(xdp->filter, out, n);
	for (uint32_t i = 0; i < n && i < PYSCAN_RF_NCOUNTERS; i++)
		out[i] = xdp->final_counters[i];
	return 0;
}

int pyscan_afxdp__send_frames(pyscan_ring *ring, const uint8_t *frames, const uint32_t *lens,
			      uint32_t n, int flush_timeout_ms)
{
	struct pyscan_tx_slot slots[64];
	int64_t deadline = monotonic_ms() + flush_timeout_ms;
	uint32_t sent = 0;
	size_t offset = 0;
	int rc;

	if (!ring || !ring->ops->tx_reserve)
		return -EINVAL;
	while (sent < n) {
		uint32_t want = n - sent < 64 ? n - sent : 64;
		uint32_t got = ring->ops->tx_reserve(ring, slots, want);

		if (!got) {
			if (monotonic_ms() >= deadline)
				return -ETIMEDOUT;
			continue;
		}
		for (uint32_t i = 0; i < got; i++) {
			uint32_t len = lens[sent + i];

			if (len > slots[i].capacity)
				len = 0; /* refused by submit and counted as an error */
			memcpy(slots[i].data, frames + offset, len);
			slots[i].len = len;
			offset += lens[sent + i];
		}
		rc = ring->ops->tx_submit(ring, slots, got);
		if (rc < 0)
			return rc;
		ring->ops->tx_kick(ring);
		sent += got;
	}
	rc = ring->ops->tx_flush(ring, flush_timeout_ms);
	return rc < 0 ? rc : (int)sent;
}

int pyscan_afxdp__recv_frames(pyscan_ring *ring, uint8_t *buf, uint32_t cap, uint32_t *lens,
			      uint32_t max, int timeout_ms)
{
	struct pyscan_rx_frame frames[64];
	uint32_t done = 0, used = 0, n, take;
	int rc;

	if (!ring || !ring->ops->rx_peek)
		return -EINVAL;
	rc = ring->ops->rx_wait(ring, timeout_ms);
	if (rc <= 0)
		return rc;
	while (done < max) {
		n = ring->ops->rx_peek(ring, frames, max - done < 64 ? max - done : 64);
		if (!n)
			break;
		for (take = 0; take < n && used + frames[take].len <= cap; take++) {
			memcpy(buf + used, frames[take].data, frames[take].len);
			used += frames[take].len;
			lens[done++] = frames[take].len;
		}
		ring->ops->rx_release(ring, take);
		if (take < n)
			break;
	}
	return (int)done;
}

void pyscan_afxdp__close(struct pyscan_afxdp *xdp)
{
	if (!xdp)
		return;
	release_kernel_resources(xdp);
	drop_reference(xdp);
}
