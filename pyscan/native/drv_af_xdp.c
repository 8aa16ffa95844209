/* SPDX-License-Identifier: GPL-2.0-only
 *
 * drv_af_xdp.c - the AF_XDP driver's lifetime: probe, open (reply filter attach, one socket
 * and UMEM per queue, XSKMAP entries), the handle's accessors, close. The ring ops are in
 * drv_af_xdp_tx.c and drv_af_xdp_rx.c; the data layout in drv_af_xdp_private.h; the filter
 * program is loaded by bpf_object.c.
 *
 * Invariants:
 *  - The filter is attached through a bpf_link: the kernel detaches it when the link fd
 *    closes, so close, a crash or SIGKILL all leave the interface as it was.
 *  - open either returns a handle whose every requested socket is bound and in the XSKMAP,
 *    or fails having released everything it took.
 */
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>
#include <net/if.h>
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

#include "drv_af_xdp_private.h"

/* How long a bind waits for a queue that a just-closed socket still holds (see open_queue). */
#define QUEUE_RELEASE_WAIT_MS 2000

/* The config names an unowned IPv6 source (ndp_ip not all zero, arp_ip_be 0). */
static int ndp_answered(const struct pyscan_afxdp_config *cfg)
{
	uint8_t any = 0;

	for (size_t i = 0; i < sizeof(cfg->ndp_ip); i++)
		any |= cfg->ndp_ip[i];
	return !cfg->arp_ip_be && any;
}

/* ---- library noise ------------------------------------------------------------------------ */

/* libxdp prints to stderr by default (the dispatcher EPERM fallback). libbpf's printing is
 * bpf_object.c's; libxdp's is handled here, its only user: quiet unless debugging. */
static int libxdp_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	if (level != LIBXDP_WARN || !getenv("PYSCAN_DEBUG_BPF"))
		return 0;
	return vfprintf(stderr, fmt, ap);
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
	if (xdp->ctl_fd >= 0)
		close(xdp->ctl_fd);
	xdp->ctl_fd = -1;
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

int afxdp_link_down(struct pyscan_afxdp *xdp)
{
	struct ifreq ifr;

	if (xdp->ctl_fd < 0)
		return 0;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_ifindex = xdp->ifindex;
	/* By index: a renamed interface is still ours, a deleted one is down for good. */
	if (ioctl(xdp->ctl_fd, SIOCGIFNAME, &ifr) < 0)
		return errno == ENODEV;
	if (ioctl(xdp->ctl_fd, SIOCGIFFLAGS, &ifr) < 0)
		return errno == ENODEV;
	return !(ifr.ifr_flags & IFF_UP) || !(ifr.ifr_flags & IFF_RUNNING);
}

void afxdp_drop_reference(struct pyscan_afxdp *xdp)
{
	/* Rings may be destroyed on other threads than the handle (the last user of a Python
	 * Ring frees it), so the count is atomic. */
	if (__atomic_sub_fetch(&xdp->refs, 1, __ATOMIC_ACQ_REL))
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

/* ---- open --------------------------------------------------------------------------------- */

static int attach_filter(struct pyscan_afxdp *xdp, const struct pyscan_afxdp_config *cfg,
			 char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts);
	int want_native = cfg->attach_mode != PYSCAN_AFXDP_ATTACH_GENERIC;
	uint32_t existing = 0;
	int fd;

	opts.flags = want_native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
	fd = bpf_link_create(pyscan_replyfilter__prog_fd(xdp->filter), xdp->ifindex, BPF_XDP, &opts);
	if (fd < 0 && want_native && (errno == EOPNOTSUPP || errno == EINVAL)) {
		if (cfg->attach_mode == PYSCAN_AFXDP_ATTACH_NATIVE)
			add_warning(&xdp->info, "native XDP refused by the driver, "
				    "using generic attach");
		opts.flags = XDP_FLAGS_SKB_MODE;
		fd = bpf_link_create(pyscan_replyfilter__prog_fd(xdp->filter), xdp->ifindex, BPF_XDP, &opts);
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
	q->frame_shift = (uint32_t)__builtin_ctz(cfg->frame_size); /* 2048 or 4096, checked */
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

	libxdp_set_print(libxdp_print);
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
	/* For link-state questions from the TX threads, in the namespace we open in. */
	xdp->ctl_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(xdp->ifname, sizeof(xdp->ifname), "%s", cfg->ifname);
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
						       cfg->port_lo, cfg->port_hi, cfg->queue_count,
						       cfg->probe_mask, cfg->arp_ip_be, cfg->arp_mac,
						       cfg->arp_redirect,
						       ndp_answered(cfg) ? cfg->ndp_ip : NULL);
		if (!xdp->filter) {
			rc = -errno;
			set_error(err, errlen, "%s", pyscan_bpf__error());
			goto fail;
		}
		xdp->info.prog_id = pyscan_replyfilter__prog_id(xdp->filter);
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
			rc = xsk_socket__update_xskmap(q->xsk, pyscan_replyfilter__xsks_map_fd(xdp->filter));
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
		xdp->tx_rings[i].base.tx_slot_capacity = cfg->frame_size;
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
	afxdp_drop_reference(xdp);
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

void pyscan_afxdp__close(struct pyscan_afxdp *xdp)
{
	if (!xdp)
		return;
	/* The sockets and UMEM go now, so first every TX/RX loop still inside one of our
	 * rings must have left (ring.h lifetime): they see closing and return within a batch. */
	for (uint32_t i = 0; i < xdp->tx_count; i++)
		pyscan_ring__quiesce(&xdp->tx_rings[i].base);
	if (xdp->has_rx)
		pyscan_ring__quiesce(&xdp->rx_ring.base);
	release_kernel_resources(xdp);
	afxdp_drop_reference(xdp);
}
