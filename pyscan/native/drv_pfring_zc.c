/* SPDX-License-Identifier: GPL-2.0-only
 *
 * drv_pfring_zc.c - the PF_RING ZC driver behind ring.h.
 *
 * libpfring.so is opened with dlopen when a scan asks for it and its pfring_zc_* functions are
 * resolved once into a table; nothing is linked and no pfring header is needed to build. The
 * declarations below are written from pfring_zc.h (PF_RING 8.x; the calls used exist since 7.x).
 *
 * Zero copy means buffer handles are EXCHANGED with ring slots on every send and receive: the
 * handle array a ring holds refers to different buffers after each call, so data pointers
 * are fetched again with pfring_zc_pkt_buff_data() every time slots are handed out and never
 * kept across a send or receive.
 *
 * Invariants: a frame passed to tx_submit is handed to the card exactly once - a partial
 * burst is re-sent from the first unsent handle until all went or the card made no progress
 * for TX_STALL_NS; rx frames stay valid until released, because the handles holding them are
 * only given back to the card by the next receive, which happens only after all are released.
 */
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drv_pfring_zc.h"

/* ---- pfring_zc.h, as much as this driver needs ---- */

typedef void pfring_zc_cluster;
typedef void pfring_zc_queue;
typedef enum { zc_rx_only, zc_tx_only } pfring_zc_queue_mode;
typedef struct {
	uint64_t recv;
	uint64_t sent;
	uint64_t drop;
} pfring_zc_stat;
typedef struct {
	uint16_t len;
	uint16_t flags;
	uint32_t hash;
	struct {
		uint32_t tv_sec;
		uint32_t tv_nsec;
	} ts;
} pfring_zc_pkt_buff;
typedef struct {
	uint64_t total_memory;
	uint32_t buffer_len;
	uint32_t real_buffer_len;
} pfring_zc_cluster_info;

_Static_assert(sizeof(pfring_zc_pkt_buff) == 16, "pfring_zc_pkt_buff layout of pfring_zc.h");
_Static_assert(sizeof(pfring_zc_stat) == 24, "pfring_zc_stat layout of pfring_zc.h");

struct zc_api {
	void *library;
	char *(*version)(void);
	int (*check_license)(void);
	pfring_zc_cluster *(*create_cluster)(uint32_t cluster_id, uint32_t buffer_len,
					     uint32_t metadata_len, uint32_t tot_num_buffers,
					     int32_t numa_node_id, const char *hugepages_mountpoint,
					     uint32_t flags);
	void (*destroy_cluster)(pfring_zc_cluster *cluster);
	pfring_zc_queue *(*open_device)(pfring_zc_cluster *cluster, const char *device_name,
					pfring_zc_queue_mode queue_mode, uint32_t flags);
	pfring_zc_pkt_buff *(*get_packet_handle)(pfring_zc_cluster *cluster);
	void (*release_packet_handle)(pfring_zc_cluster *cluster, pfring_zc_pkt_buff *handle);
	uint8_t *(*pkt_buff_data)(pfring_zc_pkt_buff *handle, pfring_zc_queue *queue);
	int (*send_pkt_burst)(pfring_zc_queue *queue, pfring_zc_pkt_buff **handles,
			      uint32_t num_packets, uint8_t flush_packets);
	int (*recv_pkt_burst)(pfring_zc_queue *queue, pfring_zc_pkt_buff **handles,
			      uint32_t max_num_packets, uint8_t wait_for_incoming_packet);
	void (*sync_queue)(pfring_zc_queue *queue, pfring_zc_queue_mode direction);
	int (*stats)(pfring_zc_queue *queue, pfring_zc_stat *stats);
	/* optional: older libraries lack them and the driver copes */
	void (*close_device)(pfring_zc_queue *queue);
	int (*precompute_cluster_settings)(pfring_zc_cluster_info *info, uint32_t buffer_len,
					   uint32_t metadata_len, uint32_t tot_num_buffers,
					   uint32_t flags);
	int (*check_device_license)(pfring_zc_queue *queue, uint32_t *expiration_epoch);
};

#define REQUIRED(field, symbol) {offsetof(struct zc_api, field), symbol, 1}
#define OPTIONAL(field, symbol) {offsetof(struct zc_api, field), symbol, 0}

static const struct {
	size_t offset;
	const char *symbol;
	int required;
} zc_symbols[] = {
	REQUIRED(version, "pfring_zc_version"),
	REQUIRED(check_license, "pfring_zc_check_license"),
	REQUIRED(create_cluster, "pfring_zc_create_cluster"),
	REQUIRED(destroy_cluster, "pfring_zc_destroy_cluster"),
	REQUIRED(open_device, "pfring_zc_open_device"),
	REQUIRED(get_packet_handle, "pfring_zc_get_packet_handle"),
	REQUIRED(release_packet_handle, "pfring_zc_release_packet_handle"),
	REQUIRED(pkt_buff_data, "pfring_zc_pkt_buff_data"),
	REQUIRED(send_pkt_burst, "pfring_zc_send_pkt_burst"),
	REQUIRED(recv_pkt_burst, "pfring_zc_recv_pkt_burst"),
	REQUIRED(sync_queue, "pfring_zc_sync_queue"),
	REQUIRED(stats, "pfring_zc_stats"),
	OPTIONAL(close_device, "pfring_zc_close_device"),
	OPTIONAL(precompute_cluster_settings, "pfring_zc_precompute_cluster_settings"),
	OPTIONAL(check_device_license, "pfring_zc_check_device_license"),
};

/* A ring that makes no progress for this long is reported as failed instead of spinning. */
#define TX_STALL_NS 2000000000ULL
#define RX_IDLE_PAUSE_NS 50000L

struct pyscan_pfring_zc_cluster {
	struct zc_api api;
	pfring_zc_cluster *zc;
	uint32_t buffer_len;
	int refs;
	char version[64];
};

struct zc_tx_ring {
	struct pyscan_ring ring; /* first: ring.h casts */
	struct pyscan_pfring_zc_cluster *cluster;
	pfring_zc_queue *queue;
	uint32_t reserved;       /* handles handed out by tx_reserve and not yet submitted */
	int stalled;             /* the last submit gave up on a card that took nothing */
	uint32_t num_handles;
	struct pyscan_ring_stats stats;
	pfring_zc_pkt_buff *handles[PYSCAN_PFRING_ZC_TX_HANDLES];
	pfring_zc_pkt_buff *burst[PYSCAN_PFRING_ZC_TX_HANDLES];
};

struct zc_rx_ring {
	struct pyscan_ring ring; /* first: ring.h casts */
	struct pyscan_pfring_zc_cluster *cluster;
	pfring_zc_queue *queues[PYSCAN_PFRING_ZC_MAX_RX_QUEUES];
	uint32_t num_queues;
	uint32_t next_queue;     /* round robin: where the next receive starts */
	uint32_t held_queue;     /* queue the frames in handles[] came from */
	uint32_t held;           /* frames received into handles[] */
	uint32_t released;       /* of those, given back by rx_release */
	uint32_t num_handles;
	struct pyscan_ring_stats stats;
	pfring_zc_pkt_buff *handles[PYSCAN_PFRING_ZC_RX_HANDLES];
};

static const struct pyscan_ring_ops zc_tx_ops;
static const struct pyscan_ring_ops zc_rx_ops;

/* ---- loading ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void copy_text(char *dst, size_t size, const char *src)
{
	if (size)
		snprintf(dst, size, "%s", src ? src : "");
}

/* 0, -1 (dlopen failed: error) or -2 (symbol missing: missing). */
static int load_api(const char *library, struct zc_api *api, char *error, size_t error_size,
		    char *missing, size_t missing_size)
{
	memset(api, 0, sizeof(*api));
	/* RTLD_NOW: a library with unresolvable dependencies fails here, not in the hot loop */
	api->library = dlopen(library, RTLD_NOW | RTLD_LOCAL);
	if (!api->library) {
		copy_text(error, error_size, dlerror());
		return -1;
	}
	for (size_t i = 0; i < sizeof(zc_symbols) / sizeof(zc_symbols[0]); i++) {
		void *fn = dlsym(api->library, zc_symbols[i].symbol);
		if (!fn && zc_symbols[i].required) {
			copy_text(missing, missing_size, zc_symbols[i].symbol);
			dlclose(api->library);
			memset(api, 0, sizeof(*api));
			return -2;
		}
		memcpy((char *)api + zc_symbols[i].offset, &fn, sizeof(fn));
	}
	return 0;
}

int pyscan_pfring_zc__probe(const char *library, uint32_t buffer_len, uint32_t num_buffers,
			    struct pyscan_pfring_zc_probe *out)
{
	struct zc_api api;
	memset(out, 0, sizeof(*out));
	int rc = load_api(library, &api, out->error, sizeof(out->error), out->missing,
			  sizeof(out->missing));
	if (rc)
		return rc;
	Dl_info where;
	if (dladdr((void *)api.version, &where) && where.dli_fname)
		copy_text(out->loaded_from, sizeof(out->loaded_from), where.dli_fname);
	copy_text(out->version, sizeof(out->version), api.version());
	pfring_zc_cluster_info info;
	memset(&info, 0, sizeof(info));
	if (api.precompute_cluster_settings && buffer_len && num_buffers &&
	    api.precompute_cluster_settings(&info, buffer_len, 0, num_buffers, 0) == 0) {
		out->total_memory = info.total_memory;
		out->real_buffer_len = info.real_buffer_len;
	}
	dlclose(api.library);
	return 0;
}

/* ---- cluster ---- */

static void cluster_unref(struct pyscan_pfring_zc_cluster *c)
{
	if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	if (c->zc)
		c->api.destroy_cluster(c->zc);
	if (c->api.library)
		dlclose(c->api.library);
	free(c);
}

static void cluster_ref(struct pyscan_pfring_zc_cluster *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
}

pyscan_pfring_zc_cluster *pyscan_pfring_zc__create(const char *library, uint32_t cluster_id,
						  uint32_t buffer_len, uint32_t num_buffers,
						  int32_t numa_node, const char *hugepages_mount, char *err,
						  uint32_t err_len)
{
	struct pyscan_pfring_zc_cluster *c = calloc(1, sizeof(*c));
	char dl_error[200] = "", missing[64] = "";
	if (!c) {
		copy_text(err, err_len, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	c->refs = 1;
	int rc = load_api(library, &c->api, dl_error, sizeof(dl_error), missing, sizeof(missing));
	if (rc) {
		if (rc == -1)
			snprintf(err, err_len, "cannot load %s: %s", library, dl_error);
		else
			snprintf(err, err_len, "%s does not export %s", library, missing);
		free(c);
		errno = rc == -1 ? ENOENT : ENOSYS;
		return NULL;
	}
	copy_text(c->version, sizeof(c->version), c->api.version());
	errno = 0;
	c->zc = c->api.create_cluster(cluster_id, buffer_len, 0, num_buffers, numa_node,
				      hugepages_mount && *hugepages_mount ? hugepages_mount : NULL,
				      0);
	if (!c->zc) {
		int saved = errno ? errno : EIO;
		snprintf(err, err_len,
			 "pfring_zc_create_cluster(id %u, %u buffers of %u bytes): %s", cluster_id,
			 num_buffers, buffer_len, strerror(saved));
		cluster_unref(c);
		errno = saved;
		return NULL;
	}
	c->buffer_len = buffer_len;
	return c;
}

void pyscan_pfring_zc__release(pyscan_pfring_zc_cluster *cluster)
{
	cluster_unref(cluster);
}

const char *pyscan_pfring_zc__version(pyscan_pfring_zc_cluster *cluster)
{
	return cluster ? cluster->version : "";
}

static pfring_zc_queue *open_queue(struct pyscan_pfring_zc_cluster *c, const char *device,
				   pfring_zc_queue_mode mode, char *err, uint32_t err_len)
{
	errno = 0;
	pfring_zc_queue *q = c->api.open_device(c->zc, device, mode, 0);
	if (!q) {
		int saved = errno ? errno : EIO;
		snprintf(err, err_len, "pfring_zc_open_device(%s, %s): %s", device,
			 mode == zc_tx_only ? "tx_only" : "rx_only", strerror(saved));
		errno = saved;
	}
	return q;
}

static void close_queue(struct pyscan_pfring_zc_cluster *c, pfring_zc_queue *q)
{
	/* without close_device (old libraries) the queue goes with the cluster */
	if (q && c->api.close_device)
		c->api.close_device(q);
}

static int take_handles(struct pyscan_pfring_zc_cluster *c, pfring_zc_pkt_buff **handles,
			uint32_t want, uint32_t *got, char *err, uint32_t err_len)
{
	for (*got = 0; *got < want; (*got)++) {
		handles[*got] = c->api.get_packet_handle(c->zc);
		if (!handles[*got]) {
			snprintf(err, err_len,
				 "pfring_zc_get_packet_handle: cluster out of buffers after %u of %u",
				 *got, want);
			errno = ENOBUFS;
			return -1;
		}
	}
	return 0;
}

static void give_back_handles(struct pyscan_pfring_zc_cluster *c, pfring_zc_pkt_buff **handles,
			      uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		c->api.release_packet_handle(c->zc, handles[i]);
}

/* ---- TX ---- */

static uint32_t zc_tx_reserve(struct pyscan_ring *ring, struct pyscan_tx_slot *slots,
			      uint32_t max)
{
	struct zc_tx_ring *r = (struct zc_tx_ring *)ring;
	struct pyscan_pfring_zc_cluster *c = r->cluster;
	uint32_t n = r->num_handles - r->reserved;
	if (n > max)
		n = max;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t h = r->reserved + i;
		/* fetched again every time: the previous send swapped this handle's buffer */
		slots[i].data = c->api.pkt_buff_data(r->handles[h], r->queue);
		slots[i].capacity = c->buffer_len;
		slots[i].len = 0;
		slots[i].handle = h;
	}
	r->reserved += n;
	return n;
}

static int zc_tx_submit(struct pyscan_ring *ring, struct pyscan_tx_slot *slots, uint32_t n)
{
	struct zc_tx_ring *r = (struct zc_tx_ring *)ring;
	struct pyscan_pfring_zc_cluster *c = r->cluster;
	uint64_t bytes = 0;
	int rc = 0;

	/* slots name their handles by index; send them in the order given */
	for (uint32_t i = 0; i < n; i++) {
		pfring_zc_pkt_buff *h = r->handles[slots[i].handle];
		h->len = (uint16_t)slots[i].len;
		r->burst[i] = h;
	}

	uint32_t done = 0;
	uint64_t stalled_since = 0;
	while (done < n) {
		int sent = c->api.send_pkt_burst(r->queue, r->burst + done, n - done, 1);
		if (sent > 0) {
			done += (uint32_t)sent;
			stalled_since = 0;
			r->stalled = 0;
			continue;
		}
		if (sent < 0) {
			snprintf(ring->error, sizeof(ring->error),
				 "pfring_zc_send_pkt_burst failed (%d) after %u of %u frames", sent,
				 done, n);
			rc = -EIO;
			break;
		}
		/* the card's ring is full: it drains by itself, so wait for it, boundedly */
		__atomic_fetch_add(&r->stats.tx_retries, 1, __ATOMIC_RELAXED);
		uint64_t now = now_ns();
		if (!stalled_since) {
			stalled_since = now;
		} else if (r->stalled || now - stalled_since > TX_STALL_NS) {
			/* once stalled, later bursts get one try each: a dead card (link down,
			 * demo time over) ends the scan with every probe counted as an error
			 * instead of waiting 2 s per burst; any progress clears the state */
			snprintf(ring->error, sizeof(ring->error),
				 "%u of %u frames not taken: the TX ring made no progress for 2 s",
				 n - done, n);
			r->stalled = 1;
			rc = -ETIMEDOUT;
			break;
		}
		sched_yield();
	}

	/* the sent handles now hold other buffers; put them where their slots said */
	for (uint32_t i = 0; i < n; i++)
		r->handles[slots[i].handle] = r->burst[i];
	r->reserved = 0;

	for (uint32_t i = 0; i < done; i++)
		bytes += slots[i].len;
	__atomic_fetch_add(&r->stats.tx_frames, done, __ATOMIC_RELAXED);
	__atomic_fetch_add(&r->stats.tx_bytes, bytes, __ATOMIC_RELAXED);
	if (done < n)
		__atomic_fetch_add(&r->stats.tx_errors, n - done, __ATOMIC_RELAXED);
	(void)rc; /* ring.h: the count accepted; ring->error says why the rest were not */
	return (int)done;
}

static int zc_tx_flush(struct pyscan_ring *ring, int timeout_ms)
{
	struct zc_tx_ring *r = (struct zc_tx_ring *)ring;
	/* every send was flushed already; sync makes the card finish what it holds */
	r->cluster->api.sync_queue(r->queue, zc_tx_only);
	return 0;
}

static void sum_queue_stats(struct pyscan_pfring_zc_cluster *c, pfring_zc_queue *const *queues,
			    uint32_t n, struct pyscan_pfring_zc_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < n; i++) {
		pfring_zc_stat st;
		if (queues[i] && c->api.stats(queues[i], &st) == 0) {
			out->recv += st.recv;
			out->sent += st.sent;
			out->drop += st.drop;
			out->queues++;
		}
	}
}

static void copy_ring_stats(const struct pyscan_ring_stats *from, struct pyscan_ring_stats *to)
{
	const uint64_t *src = (const uint64_t *)from;
	uint64_t *dst = (uint64_t *)to;
	for (size_t i = 0; i < sizeof(*from) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

static void zc_tx_get_stats(struct pyscan_ring *ring, struct pyscan_ring_stats *out)
{
	struct zc_tx_ring *r = (struct zc_tx_ring *)ring;
	copy_ring_stats(&r->stats, out);
}

static void zc_tx_destroy(struct pyscan_ring *ring)
{
	struct zc_tx_ring *r = (struct zc_tx_ring *)ring;
	struct pyscan_pfring_zc_cluster *c = r->cluster;
	if (c) {
		close_queue(c, r->queue);
		give_back_handles(c, r->handles, r->num_handles);
		cluster_unref(c);
	}
	free(r);
}

static const struct pyscan_ring_ops zc_tx_ops = {
	.name = "pfring_zc",
	.tx_reserve = zc_tx_reserve,
	.tx_submit = zc_tx_submit,
	.tx_flush = zc_tx_flush,
	.get_stats = zc_tx_get_stats,
	.destroy = zc_tx_destroy,
};

pyscan_ring *pyscan_pfring_zc__open_tx(pyscan_pfring_zc_cluster *cluster, const char *device,
				       char *err, uint32_t err_len)
{
	if (!cluster || !device) {
		copy_text(err, err_len, "pfring_zc open_tx: no cluster or device");
		errno = EINVAL;
		return NULL;
	}
	struct zc_tx_ring *r = calloc(1, sizeof(*r));
	if (!r) {
		copy_text(err, err_len, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	r->ring.ops = &zc_tx_ops;
	r->ring.tx_slot_capacity = cluster->buffer_len;
	r->cluster = cluster;
	cluster_ref(cluster);
	r->queue = open_queue(cluster, device, zc_tx_only, err, err_len);
	if (!r->queue)
		goto fail;
	if (take_handles(cluster, r->handles, PYSCAN_PFRING_ZC_TX_HANDLES, &r->num_handles, err,
			 err_len))
		goto fail;
	return &r->ring;
fail:;
	int saved = errno;
	zc_tx_destroy(&r->ring);
	errno = saved;
	return NULL;
}

/* ---- RX ---- */

/* One non-blocking receive, starting at the next queue in turn; frames land in handles[]. */
static uint32_t zc_rx_fill(struct zc_rx_ring *r)
{
	struct pyscan_pfring_zc_cluster *c = r->cluster;
	for (uint32_t k = 0; k < r->num_queues; k++) {
		uint32_t qi = (r->next_queue + k) % r->num_queues;
		int n = c->api.recv_pkt_burst(r->queues[qi], r->handles, r->num_handles, 0);
		if (n < 0) {
			snprintf(r->ring.error, sizeof(r->ring.error),
				 "pfring_zc_recv_pkt_burst failed (%d) on queue %u", n, qi);
			continue;
		}
		if (n > 0) {
			r->held_queue = qi;
			r->held = (uint32_t)n;
			r->released = 0;
			r->next_queue = (qi + 1) % r->num_queues;
			uint64_t bytes = 0;
			for (int i = 0; i < n; i++)
				bytes += r->handles[i]->len;
			__atomic_fetch_add(&r->stats.rx_frames, (uint64_t)n, __ATOMIC_RELAXED);
			__atomic_fetch_add(&r->stats.rx_bytes, bytes, __ATOMIC_RELAXED);
			return (uint32_t)n;
		}
	}
	return 0;
}

static uint32_t zc_rx_peek(struct pyscan_ring *ring, struct pyscan_rx_frame *frames,
			   uint32_t max)
{
	struct zc_rx_ring *r = (struct zc_rx_ring *)ring;
	/* receiving again hands handles[] back to the card: only once every frame is released */
	if (r->released == r->held && !zc_rx_fill(r))
		return 0;
	struct pyscan_pfring_zc_cluster *c = r->cluster;
	pfring_zc_queue *q = r->queues[r->held_queue];
	uint32_t n = r->held - r->released;
	if (n > max)
		n = max;
	for (uint32_t i = 0; i < n; i++) {
		pfring_zc_pkt_buff *h = r->handles[r->released + i];
		frames[i].data = c->api.pkt_buff_data(h, q);
		frames[i].len = h->len;
		frames[i].flags = 0;
	}
	return n;
}

static void zc_rx_release(struct pyscan_ring *ring, uint32_t n)
{
	struct zc_rx_ring *r = (struct zc_rx_ring *)ring;
	uint32_t left = r->held - r->released;
	r->released += n < left ? n : left;
}

static int zc_rx_wait(struct pyscan_ring *ring, int timeout_ms)
{
	struct zc_rx_ring *r = (struct zc_rx_ring *)ring;
	if (r->released < r->held)
		return 1;
	/* ZC has no file descriptor to sleep on: poll the queues with short pauses */
	const uint64_t deadline = now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ULL;
	int synced = 0;
	for (;;) {
		if (zc_rx_fill(r))
			return 1;
		if (!synced) {
			/* idle: hand consumed slots back to the card, as zcount does */
			for (uint32_t i = 0; i < r->num_queues; i++)
				r->cluster->api.sync_queue(r->queues[i], zc_rx_only);
			synced = 1;
		}
		if (now_ns() >= deadline)
			return 0;
		const struct timespec pause = {0, RX_IDLE_PAUSE_NS};
		nanosleep(&pause, NULL);
	}
}

static void zc_rx_get_stats(struct pyscan_ring *ring, struct pyscan_ring_stats *out)
{
	struct zc_rx_ring *r = (struct zc_rx_ring *)ring;
	struct pyscan_pfring_zc_stats zs;
	copy_ring_stats(&r->stats, out);
	/* pfring_zc_stats may be read from another thread while receiving (zcount does) */
	sum_queue_stats(r->cluster, r->queues, r->num_queues, &zs);
	out->rx_drops = zs.drop;
}

static void zc_rx_destroy(struct pyscan_ring *ring)
{
	struct zc_rx_ring *r = (struct zc_rx_ring *)ring;
	struct pyscan_pfring_zc_cluster *c = r->cluster;
	if (c) {
		for (uint32_t i = 0; i < r->num_queues; i++)
			close_queue(c, r->queues[i]);
		give_back_handles(c, r->handles, r->num_handles);
		cluster_unref(c);
	}
	free(r);
}

static const struct pyscan_ring_ops zc_rx_ops = {
	.name = "pfring_zc",
	.rx_peek = zc_rx_peek,
	.rx_release = zc_rx_release,
	.rx_wait = zc_rx_wait,
	.get_stats = zc_rx_get_stats,
	.destroy = zc_rx_destroy,
};

pyscan_ring *pyscan_pfring_zc__open_rx(pyscan_pfring_zc_cluster *cluster,
				       const char *const *devices, uint32_t n, char *err,
				       uint32_t err_len)
{
	if (!cluster || !devices || n == 0 || n > PYSCAN_PFRING_ZC_MAX_RX_QUEUES) {
		snprintf(err, err_len, "pfring_zc open_rx: %u queues (accepted: 1 to %d)", n,
			 PYSCAN_PFRING_ZC_MAX_RX_QUEUES);
		errno = EINVAL;
		return NULL;
	}
	struct zc_rx_ring *r = calloc(1, sizeof(*r));
	if (!r) {
		copy_text(err, err_len, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	r->ring.ops = &zc_rx_ops;
	r->cluster = cluster;
	cluster_ref(cluster);
	for (uint32_t i = 0; i < n; i++) {
		r->queues[i] = open_queue(cluster, devices[i], zc_rx_only, err, err_len);
		if (!r->queues[i])
			goto fail;
		r->num_queues = i + 1;
	}
	if (take_handles(cluster, r->handles, PYSCAN_PFRING_ZC_RX_HANDLES, &r->num_handles, err,
			 err_len))
		goto fail;
	return &r->ring;
fail:;
	int saved = errno;
	zc_rx_destroy(&r->ring);
	errno = saved;
	return NULL;
}

/* ---- licence and stats ---- */

int pyscan_pfring_zc__licence(pyscan_pfring_zc_cluster *cluster, pyscan_ring *ring,
			      uint32_t *expiration_epoch)
{
	if (!cluster)
		return -1;
	pfring_zc_queue *q = NULL;
	if (ring && ring->ops == &zc_tx_ops)
		q = ((struct zc_tx_ring *)ring)->queue;
	else if (ring && ring->ops == &zc_rx_ops)
		q = ((struct zc_rx_ring *)ring)->queues[0];
	if (expiration_epoch)
		*expiration_epoch = 0;
	if (!cluster->api.check_license())
		return 0;
	if (q && cluster->api.check_device_license)
		return cluster->api.check_device_license(q, expiration_epoch) ? 1 : 0;
	return 1;
}

void pyscan_pfring_zc__queue_stats(pyscan_ring *ring, struct pyscan_pfring_zc_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (ring && ring->ops == &zc_tx_ops) {
		struct zc_tx_ring *r = (struct zc_tx_ring *)ring;
		sum_queue_stats(r->cluster, &r->queue, 1, out);
	} else if (ring && ring->ops == &zc_rx_ops) {
		struct zc_rx_ring *r = (struct zc_rx_ring *)ring;
		sum_queue_stats(r->cluster, r->queues, r->num_queues, out);
	}
}
