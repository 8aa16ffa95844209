/* SPDX-License-Identifier: GPL-2.0-only
 *
 * pfring_standin.c - a test double for ntop's libpfring.so (PF_RING ZC API), built by the test
 * suite so the pfring-zc driver can run end to end on a machine without pf_ring.ko, hugepages
 * or a ZC NIC. It exports the pfring_zc_* symbols the driver uses with the prototypes of
 * pfring_zc.h (PF_RING 8.x) and emulates their semantics, not their implementation:
 *
 *  - A cluster owns tot_num_buffers fixed-size buffers. Applications take handles with
 *    pfring_zc_get_packet_handle(); opening a device queue takes ring_slots more buffers for
 *    the "NIC ring" and fails with ENOBUFS when the cluster has too few.
 *  - Send and receive EXCHANGE buffers: after pfring_zc_send_pkt_burst() returned k, the first
 *    k handles in the caller's array point to other (already transmitted) buffers; after
 *    pfring_zc_recv_pkt_burst() returned k, they point to the received buffers. An
 *    application that keeps writing through a stale data pointer corrupts frames here exactly
 *    as it would on a NIC.
 *  - The TX ring has ring_slots entries (env PYSCAN_STANDIN_RING_SLOTS, default 512); a burst
 *    larger than the free space is taken in part and the return value says how much. Frames
 *    become visible to the "NIC" (a thread sending them over an AF_PACKET socket) only when a
 *    send is flushed or pfring_zc_sync_queue(tx_only) is called, like the tail register of a
 *    real card. pfring_zc_sync_queue(tx_only) returns once every flushed frame has left.
 *  - The RX ring is filled by a thread reading an AF_PACKET socket (incoming frames only);
 *    when the application does not keep up, frames are dropped and counted in stats.drop.
 *  - pfring_zc_version() returns "<PYSCAN_STANDIN_VERSION or 8.9.0>-standin": the word
 *    "standin" is how the driver knows it must not look for pf_ring.ko or hugepages.
 *  - pfring_zc_check_license() and pfring_zc_check_device_license() report demo mode when
 *    PYSCAN_STANDIN_LICENSE=demo.
 *  - PYSCAN_STANDIN_TX_DEAD=1 makes every TX queue opened afterwards a card that takes
 *    nothing (link down): every send returns 0.
 *  - PYSCAN_STANDIN_EVENTS=<path> appends one line per lifecycle event (create/destroy
 *    cluster, open/close device, handles held at destroy) so tests can check clean-up.
 *
 * Invariant: every buffer is in exactly one place - the cluster's free list, the
 * application's hands, or a device ring - and the stand-in aborts with a message on any call
 * that would break this (sending a handle the application does not hold, releasing twice).
 * A real library would silently corrupt memory instead; a test double should be louder.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

/* Variants the unit tests build to exercise the driver's diagnostics:
 * STANDIN_HIDE_RECV_BURST leaves pfring_zc_recv_pkt_burst unexported (a library too old or
 * not ZC); STANDIN_IMPERSONATE_REAL drops "-standin" from the version, so the driver treats
 * it as the real library and runs its kernel-module and hugepage checks. */
#ifdef STANDIN_HIDE_RECV_BURST
#define EXPORT_RECV_BURST
#else
#define EXPORT_RECV_BURST EXPORT
#endif
#ifdef STANDIN_IMPERSONATE_REAL
#define VERSION_SUFFIX ""
#else
#define VERSION_SUFFIX "-standin"
#endif

/* ---- the public types of pfring_zc.h (layout must match the real header) ---- */

typedef void pfring_zc_cluster;
typedef void pfring_zc_queue;
typedef enum { rx_only, tx_only } pfring_zc_queue_mode;
typedef struct {
	uint64_t recv;
	uint64_t sent;
	uint64_t drop;
} pfring_zc_stat;
typedef struct {
	uint32_t tv_sec;
	uint32_t tv_nsec;
} pfring_zc_timespec;
typedef struct {
	uint16_t len;
	uint16_t flags;
	uint32_t hash;
	pfring_zc_timespec ts;
	unsigned char user[];
} pfring_zc_pkt_buff;
typedef struct {
	uint64_t total_memory;
	uint32_t buffer_len;
	uint32_t real_buffer_len;
} pfring_zc_cluster_info;

_Static_assert(sizeof(pfring_zc_pkt_buff) == 16, "pfring_zc_pkt_buff layout of pfring_zc.h");
_Static_assert(sizeof(pfring_zc_stat) == 24, "pfring_zc_stat layout of pfring_zc.h");

#define PF_RING_ZC_BUFFER_HEAD_ROOM 64
#define CACHE_LINE 64
#define DEFAULT_RING_SLOTS 512
#define MAX_QUEUES 64

enum buffer_place { IN_FREE_LIST, IN_APP, IN_RING };

struct standin_queue;

struct standin_cluster {
	uint32_t id;
	uint32_t buffer_len;      /* usable data bytes per buffer */
	uint32_t metadata_len;
	uint32_t real_buffer_len; /* header + metadata + head room + data, cache aligned */
	uint32_t header_len;      /* header + metadata, cache aligned: data starts after head room */
	uint32_t num_buffers;
	uint8_t *memory;
	size_t memory_len;
	uint8_t *place;           /* enum buffer_place per buffer */
	uint32_t *free_list;      /* indices of free buffers (a stack) */
	uint32_t num_free;
	pthread_mutex_t lock;     /* the free list: handles may be taken by several threads */
	struct standin_queue *queues[MAX_QUEUES];
};

struct standin_queue {
	struct standin_cluster *cluster;
	pfring_zc_queue_mode mode;
	char name[IFNAMSIZ + 16];
	int ifindex;
	int queue_id;
	int fd;
	uint32_t ring_slots;
	pfring_zc_pkt_buff **ring; /* ring_slots buffers, owned by the "NIC" or waiting in it */
	/* TX: the application produces (prod, published on flush); the NIC thread consumes.
	 * RX: the NIC thread produces; the application consumes. Single producer, single consumer. */
	uint64_t prod;             /* written by the producer only */
	_Atomic uint64_t published;
	_Atomic uint64_t cons;
	_Atomic uint64_t sent;
	_Atomic uint64_t recv;
	_Atomic uint64_t drop;
	uint64_t partial_bursts;   /* sends that took fewer frames than offered (ring full) */
	int dead;                  /* PYSCAN_STANDIN_TX_DEAD: a card that takes nothing */
	_Atomic int stop;
	_Atomic int breakloop;
	pthread_t nic_thread;
	int thread_started;
};

/* ---- helpers ---- */

static void log_event(const char *fmt, ...)
{
	const char *path = getenv("PYSCAN_STANDIN_EVENTS");
	if (!path || !*path)
		return;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* O_APPEND writes of one line are atomic enough for a test log */
	ssize_t ignored = write(fd, line, (size_t)n);
	(void)ignored;
	close(fd);
}

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "pfring stand-in: misuse of the ZC API: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

static uint32_t round_up(uint32_t value, uint32_t unit)
{
	return (value + unit - 1) / unit * unit;
}

static uint32_t buffer_index(struct standin_cluster *c, const pfring_zc_pkt_buff *handle)
{
	const uint8_t *p = (const uint8_t *)handle;
	if (p < c->memory || p >= c->memory + c->memory_len ||
	    (size_t)(p - c->memory) % c->real_buffer_len)
		die("handle %p does not belong to cluster %u", (const void *)handle, c->id);
	return (uint32_t)((size_t)(p - c->memory) / c->real_buffer_len);
}

static pfring_zc_pkt_buff *buffer_at(struct standin_cluster *c, uint32_t index)
{
	return (pfring_zc_pkt_buff *)(c->memory + (size_t)index * c->real_buffer_len);
}

static uint8_t *buffer_data(struct standin_cluster *c, pfring_zc_pkt_buff *handle)
{
	return (uint8_t *)handle + c->header_len + PF_RING_ZC_BUFFER_HEAD_ROOM;
}

static void move_buffer(struct standin_cluster *c, pfring_zc_pkt_buff *handle,
			enum buffer_place from, enum buffer_place to, const char *what)
{
	uint32_t i = buffer_index(c, handle);
	if (c->place[i] != from)
		die("%s: buffer %u is not where the caller claims (place %d, expected %d)", what, i,
		    c->place[i], from);
	c->place[i] = (uint8_t)to;
}

static pfring_zc_pkt_buff *take_free_buffer(struct standin_cluster *c, enum buffer_place to)
{
	pfring_zc_pkt_buff *handle = NULL;
	pthread_mutex_lock(&c->lock);
	if (c->num_free) {
		uint32_t i = c->free_list[--c->num_free];
		c->place[i] = (uint8_t)to;
		handle = buffer_at(c, i);
		handle->len = 0;
		handle->flags = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return handle;
}

static void give_back_buffer(struct standin_cluster *c, pfring_zc_pkt_buff *handle,
			     enum buffer_place from, const char *what)
{
	pthread_mutex_lock(&c->lock);
	move_buffer(c, handle, from, IN_FREE_LIST, what);
	c->free_list[c->num_free++] = buffer_index(c, handle);
	pthread_mutex_unlock(&c->lock);
}

static uint32_t env_ring_slots(void)
{
	const char *s = getenv("PYSCAN_STANDIN_RING_SLOTS");
	if (!s || !*s)
		return DEFAULT_RING_SLOTS;
	long v = strtol(s, NULL, 10);
	return v >= 1 && v <= (1 << 20) ? (uint32_t)v : DEFAULT_RING_SLOTS;
}

static int demo_licence(void)
{
	const char *s = getenv("PYSCAN_STANDIN_LICENSE");
	return s && strcmp(s, "demo") == 0;
}

static void pause_briefly(void)
{
	struct timespec ts = {0, 20000};
	nanosleep(&ts, NULL);
}

/* every cluster of the process, for the "device already in use" check */
static pthread_mutex_t clusters_lock = PTHREAD_MUTEX_INITIALIZER;
static struct standin_cluster *clusters[64];

static int queue_in_use(const char *name, pfring_zc_queue_mode mode)
{
	int busy = 0;
	pthread_mutex_lock(&clusters_lock);
	for (int i = 0; i < 64 && !busy; i++) {
		struct standin_cluster *c = clusters[i];
		for (int j = 0; c && j < MAX_QUEUES && !busy; j++)
			busy = c->queues[j] && c->queues[j]->mode == mode &&
			       strcmp(c->queues[j]->name, name) == 0;
	}
	pthread_mutex_unlock(&clusters_lock);
	return busy;
}

static void register_cluster(struct standin_cluster *c, int add)
{
	pthread_mutex_lock(&clusters_lock);
	for (int i = 0; i < 64; i++) {
		if (add && !clusters[i]) {
			clusters[i] = c;
			break;
		}
		if (!add && clusters[i] == c)
			clusters[i] = NULL;
	}
	pthread_mutex_unlock(&clusters_lock);
}

/* ---- the "NIC": one thread per device queue ---- */

static void *tx_nic(void *arg)
{
	struct standin_queue *q = arg;
	struct standin_cluster *c = q->cluster;
	for (;;) {
		uint64_t cons = atomic_load_explicit(&q->cons, memory_order_relaxed);
		uint64_t ready = atomic_load_explicit(&q->published, memory_order_acquire);
		if (cons == ready) {
			if (atomic_load(&q->stop))
				return NULL;
			pause_briefly();
			continue;
		}
		pfring_zc_pkt_buff *frame = q->ring[cons % q->ring_slots];
		ssize_t n;
		for (;;) {
			n = send(q->fd, buffer_data(c, frame), frame->len, 0);
			if (n >= 0)
				break;
			/* a full device queue is back-pressure, never a reason to lose a frame */
			if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) {
				pause_briefly();
				continue;
			}
			atomic_fetch_add(&q->drop, 1);
			n = -1;
			break;
		}
		if (n >= 0)
			atomic_fetch_add_explicit(&q->sent, 1, memory_order_relaxed);
		atomic_store_explicit(&q->cons, cons + 1, memory_order_release);
	}
}

static void *rx_nic(void *arg)
{
	struct standin_queue *q = arg;
	struct standin_cluster *c = q->cluster;
	uint8_t scratch[65536];
	while (!atomic_load(&q->stop)) {
		struct pollfd pfd = {.fd = q->fd, .events = POLLIN};
		if (poll(&pfd, 1, 5) <= 0)
			continue;
		uint64_t cons = atomic_load_explicit(&q->cons, memory_order_acquire);
		if (q->prod - cons >= q->ring_slots) {
			/* the application is behind: the card drops, as a real one would */
			if (recv(q->fd, scratch, sizeof(scratch), MSG_DONTWAIT) >= 0)
				atomic_fetch_add(&q->drop, 1);
			continue;
		}
		pfring_zc_pkt_buff *slot = q->ring[q->prod % q->ring_slots];
		ssize_t n = recv(q->fd, buffer_data(c, slot), c->buffer_len, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0)
			continue;
		slot->len = (uint16_t)(n > (ssize_t)c->buffer_len ? c->buffer_len : (uint32_t)n);
		slot->flags = 0;
		slot->hash = 0;
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		slot->ts.tv_sec = (uint32_t)now.tv_sec;
		slot->ts.tv_nsec = (uint32_t)now.tv_nsec;
		q->prod++;
		atomic_fetch_add_explicit(&q->recv, 1, memory_order_relaxed);
		atomic_store_explicit(&q->published, q->prod, memory_order_release);
	}
	return NULL;
}

/* ---- cluster ---- */

EXPORT char *pfring_zc_version(void)
{
	static char version[64];
	const char *base = getenv("PYSCAN_STANDIN_VERSION");
	snprintf(version, sizeof(version), "%s" VERSION_SUFFIX, base && *base ? base : "8.9.0");
	return version;
}

EXPORT int pfring_zc_check_license(void)
{
	return demo_licence() ? 0 : 1;
}

EXPORT int pfring_zc_numa_get_cpu_node(int core_id)
{
	return 0;
}

static int cluster_geometry(uint32_t buffer_len, uint32_t metadata_len, uint32_t *data_len,
			    uint32_t *header_len, uint32_t *real_len)
{
	/* pfring_zc.h: buffer_len is rounded up to a cache line and may not exceed a page */
	if (buffer_len == 0 || round_up(buffer_len, CACHE_LINE) > 4096 || metadata_len > 1024)
		return -1;
	*data_len = round_up(buffer_len, CACHE_LINE);
	*header_len = round_up((uint32_t)sizeof(pfring_zc_pkt_buff) + metadata_len, CACHE_LINE);
	*real_len = *header_len + PF_RING_ZC_BUFFER_HEAD_ROOM + *data_len;
	return 0;
}

EXPORT int pfring_zc_precompute_cluster_settings(pfring_zc_cluster_info *info,
						 uint32_t buffer_len, uint32_t metadata_len,
						 uint32_t tot_num_buffers, uint32_t flags)
{
	uint32_t data_len, header_len, real_len;
	if (!info || cluster_geometry(buffer_len, metadata_len, &data_len, &header_len, &real_len)) {
		errno = EINVAL;
		return -1;
	}
	info->buffer_len = data_len;
	info->real_buffer_len = real_len;
	info->total_memory = (uint64_t)real_len * tot_num_buffers;
	return 0;
}

EXPORT pfring_zc_cluster *pfring_zc_create_cluster(uint32_t cluster_id, uint32_t buffer_len,
						   uint32_t metadata_len, uint32_t tot_num_buffers,
						   int32_t numa_node_id,
						   const char *hugepages_mountpoint, uint32_t flags)
{
	uint32_t data_len, header_len, real_len;
	if (cluster_geometry(buffer_len, metadata_len, &data_len, &header_len, &real_len) ||
	    tot_num_buffers == 0 || tot_num_buffers > (1u << 24)) {
		errno = EINVAL;
		return NULL;
	}
	struct standin_cluster *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->id = cluster_id;
	c->buffer_len = data_len;
	c->metadata_len = metadata_len;
	c->header_len = header_len;
	c->real_buffer_len = real_len;
	c->num_buffers = tot_num_buffers;
	c->memory_len = (size_t)real_len * tot_num_buffers;
	/* untouched pages cost nothing, so a cluster sized for a real card stays cheap here */
	c->memory = mmap(NULL, c->memory_len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	c->place = calloc(tot_num_buffers, 1);
	c->free_list = malloc(sizeof(uint32_t) * tot_num_buffers);
	if (c->memory == MAP_FAILED || !c->place || !c->free_list) {
		if (c->memory != MAP_FAILED)
			munmap(c->memory, c->memory_len);
		free(c->place);
		free(c->free_list);
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	for (uint32_t i = 0; i < tot_num_buffers; i++)
		c->free_list[i] = tot_num_buffers - 1 - i;
	c->num_free = tot_num_buffers;
	pthread_mutex_init(&c->lock, NULL);
	register_cluster(c, 1);
	log_event("create_cluster id=%u buffers=%u buffer_len=%u", cluster_id, tot_num_buffers,
		  data_len);
	return c;
}

EXPORT pfring_zc_pkt_buff *pfring_zc_get_packet_handle(pfring_zc_cluster *cluster)
{
	pfring_zc_pkt_buff *h = take_free_buffer(cluster, IN_APP);
	if (!h)
		errno = ENOBUFS;
	return h;
}

EXPORT void pfring_zc_release_packet_handle(pfring_zc_cluster *cluster,
					    pfring_zc_pkt_buff *pkt_handle)
{
	give_back_buffer(cluster, pkt_handle, IN_APP, "pfring_zc_release_packet_handle");
}

EXPORT unsigned char *pfring_zc_pkt_buff_data(pfring_zc_pkt_buff *pkt_handle,
					      pfring_zc_queue *queue)
{
	struct standin_queue *q = queue;
	return buffer_data(q->cluster, pkt_handle);
}

EXPORT unsigned char *pfring_zc_pkt_buff_data_from_cluster(pfring_zc_pkt_buff *pkt_handle,
							   pfring_zc_cluster *cluster)
{
	return buffer_data(cluster, pkt_handle);
}

/* ---- devices ---- */

static int parse_device(const char *device_name, char *ifname, int *queue_id)
{
	if (strncmp(device_name, "zc:", 3) != 0)
		return -1; /* 1-copy (non-ZC) devices need pf_ring.ko; the stand-in has none */
	const char *name = device_name + 3;
	const char *at = strchr(name, '@');
	size_t len = at ? (size_t)(at - name) : strlen(name);
	if (len == 0 || len >= IFNAMSIZ)
		return -1;
	memcpy(ifname, name, len);
	ifname[len] = 0;
	*queue_id = -1;
	if (at) {
		char *end;
		long q = strtol(at + 1, &end, 10);
		if (*end || end == at + 1 || q < 0 || q >= MAX_QUEUES)
			return -1;
		*queue_id = (int)q;
	}
	return 0;
}

/* One AF_PACKET socket per queue. The queue number is not checked against the device: sysfs
 * shows the mounting namespace's devices, not this thread's, and veth takes any queue. */
static int open_socket(struct standin_queue *q, int rss_queue)
{
	int proto = q->mode == rx_only ? htons(ETH_P_ALL) : 0;
	q->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, proto);
	if (q->fd < 0)
		return -1;
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET, .sll_protocol = (uint16_t)proto, .sll_ifindex = q->ifindex};
	if (bind(q->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		return -1;
	if (q->mode == rx_only) {
		int one = 1, size = 8 << 20;
		/* a NIC RX queue sees what arrives, never what this host sends */
		if (setsockopt(q->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0)
			return -1;
		setsockopt(q->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
		if (rss_queue) {
			/* "@N" names one RSS queue: sockets of one device share the frames, none twice */
			int arg = ((getpid() ^ q->ifindex) & 0xffff) | (PACKET_FANOUT_QM << 16);
			if (setsockopt(q->fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) < 0)
				return -1;
		}
	}
	return 0;
}

static void close_queue(struct standin_queue *q, const char *why)
{
	struct standin_cluster *c = q->cluster;
	if (q->thread_started) {
		atomic_store(&q->stop, 1);
		pthread_join(q->nic_thread, NULL);
	}
	if (q->fd >= 0)
		close(q->fd);
	if (q->ring) {
		for (uint32_t i = 0; i < q->ring_slots; i++)
			if (q->ring[i])
				give_back_buffer(c, q->ring[i], IN_RING, "close_device");
		free(q->ring);
	}
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < MAX_QUEUES; i++)
		if (c->queues[i] == q)
			c->queues[i] = NULL;
	pthread_mutex_unlock(&c->lock);
	if (why)
		log_event("close_device name=%s mode=%s sent=%llu recv=%llu drop=%llu partial=%llu "
			  "by=%s", q->name, q->mode == tx_only ? "tx" : "rx",
			  (unsigned long long)q->sent, (unsigned long long)q->recv,
			  (unsigned long long)q->drop, (unsigned long long)q->partial_bursts, why);
	free(q);
}

EXPORT pfring_zc_queue *pfring_zc_open_device(pfring_zc_cluster *cluster,
					      const char *device_name,
					      pfring_zc_queue_mode queue_mode, uint32_t flags)
{
	struct standin_cluster *c = cluster;
	char ifname[IFNAMSIZ];
	int queue_id;
	if (!c || !device_name || (queue_mode != rx_only && queue_mode != tx_only) ||
	    parse_device(device_name, ifname, &queue_id)) {
		errno = EINVAL;
		return NULL;
	}
	int ifindex = (int)if_nametoindex(ifname);
	if (!ifindex) {
		errno = ENODEV;
		return NULL;
	}
	if (queue_in_use(device_name, queue_mode)) {
		errno = EBUSY;
		return NULL;
	}
	struct standin_queue *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->cluster = c;
	q->mode = queue_mode;
	q->fd = -1;
	q->ifindex = ifindex;
	q->queue_id = queue_id < 0 ? 0 : queue_id;
	snprintf(q->name, sizeof(q->name), "%s", device_name);
	q->ring_slots = env_ring_slots();
	q->dead = getenv("PYSCAN_STANDIN_TX_DEAD") != NULL;
	q->ring = calloc(q->ring_slots, sizeof(*q->ring));
	int saved;
	if (!q->ring) {
		saved = ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < q->ring_slots; i++) {
		q->ring[i] = take_free_buffer(c, IN_RING);
		if (!q->ring[i]) {
			saved = ENOBUFS; /* cluster too small for the card's ring */
			goto fail;
		}
	}
	if (open_socket(q, queue_id >= 0)) {
		saved = errno;
		goto fail;
	}
	pthread_mutex_lock(&c->lock);
	int slot = -1;
	for (int i = 0; i < MAX_QUEUES && slot < 0; i++)
		if (!c->queues[i])
			slot = i;
	if (slot >= 0)
		c->queues[slot] = q;
	pthread_mutex_unlock(&c->lock);
	if (slot < 0) {
		saved = EMFILE;
		goto fail;
	}
	if (pthread_create(&q->nic_thread, NULL, queue_mode == tx_only ? tx_nic : rx_nic, q)) {
		saved = EAGAIN;
		goto fail;
	}
	q->thread_started = 1;
	log_event("open_device name=%s mode=%s ring_slots=%u", device_name,
		  queue_mode == tx_only ? "tx" : "rx", q->ring_slots);
	return q;
fail:
	close_queue(q, NULL);
	errno = saved;
	return NULL;
}

EXPORT void pfring_zc_close_device(pfring_zc_queue *queue)
{
	if (queue)
		close_queue(queue, "close_device");
}

EXPORT void pfring_zc_destroy_cluster(pfring_zc_cluster *cluster)
{
	struct standin_cluster *c = cluster;
	if (!c)
		return;
	int open_queues = 0;
	for (int i = 0; i < MAX_QUEUES; i++)
		if (c->queues[i]) {
			open_queues++;
			close_queue(c->queues[i], "destroy_cluster");
		}
	register_cluster(c, 0);
	uint32_t held = 0;
	for (uint32_t i = 0; i < c->num_buffers; i++)
		held += c->place[i] == IN_APP;
	log_event("destroy_cluster id=%u open_queues=%d handles_held=%u", c->id, open_queues, held);
	munmap(c->memory, c->memory_len);
	free(c->place);
	free(c->free_list);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* ---- data path ---- */

static struct standin_queue *checked(pfring_zc_queue *queue, pfring_zc_queue_mode mode,
				     const char *what)
{
	struct standin_queue *q = queue;
	if (!q || q->mode != mode)
		die("%s on a queue that is not %s", what, mode == tx_only ? "tx_only" : "rx_only");
	return q;
}

EXPORT int pfring_zc_send_pkt_burst(pfring_zc_queue *queue, pfring_zc_pkt_buff **pkt_handles,
				    uint32_t num_packets, uint8_t flush_packets)
{
	struct standin_queue *q = checked(queue, tx_only, "pfring_zc_send_pkt_burst");
	struct standin_cluster *c = q->cluster;
	uint64_t cons = atomic_load_explicit(&q->cons, memory_order_acquire);
	uint64_t space = q->dead ? 0 : q->ring_slots - (q->prod - cons);
	uint32_t n = num_packets < space ? num_packets : (uint32_t)space;
	for (uint32_t i = 0; i < n; i++) {
		pfring_zc_pkt_buff *frame = pkt_handles[i];
		uint32_t slot = (uint32_t)(q->prod % q->ring_slots);
		if (frame->len == 0 || frame->len > c->buffer_len)
			die("send of a %u-byte frame (buffer_len %u)", frame->len, c->buffer_len);
		move_buffer(c, frame, IN_APP, IN_RING, "pfring_zc_send_pkt_burst");
		/* the slot's old buffer has left the card (prod - cons < slots): it is the swap */
		move_buffer(c, q->ring[slot], IN_RING, IN_APP, "pfring_zc_send_pkt_burst");
		pkt_handles[i] = q->ring[slot];
		q->ring[slot] = frame;
		q->prod++;
	}
	if (n < num_packets)
		q->partial_bursts++;
	if (flush_packets)
		atomic_store_explicit(&q->published, q->prod, memory_order_release);
	return (int)n;
}

EXPORT int pfring_zc_send_pkt(pfring_zc_queue *queue, pfring_zc_pkt_buff **pkt_handle,
			      uint8_t flush_packet)
{
	uint16_t len = (*pkt_handle)->len;
	int n = pfring_zc_send_pkt_burst(queue, pkt_handle, 1, flush_packet);
	return n == 1 ? len : -1;
}

EXPORT int pfring_zc_queue_is_full(pfring_zc_queue *queue)
{
	struct standin_queue *q = checked(queue, tx_only, "pfring_zc_queue_is_full");
	return q->prod - atomic_load(&q->cons) >= q->ring_slots;
}

EXPORT_RECV_BURST int pfring_zc_recv_pkt_burst(pfring_zc_queue *queue, pfring_zc_pkt_buff **pkt_handles,
				    uint32_t max_num_packets, uint8_t wait_for_incoming_packet)
{
	struct standin_queue *q = checked(queue, rx_only, "pfring_zc_recv_pkt_burst");
	struct standin_cluster *c = q->cluster;
	uint64_t cons = atomic_load_explicit(&q->cons, memory_order_relaxed);
	uint64_t ready;
	for (;;) {
		ready = atomic_load_explicit(&q->published, memory_order_acquire);
		if (ready != cons || !wait_for_incoming_packet)
			break;
		if (atomic_exchange(&q->breakloop, 0))
			return 0;
		pause_briefly();
	}
	uint64_t avail = ready - cons;
	uint32_t n = max_num_packets < avail ? max_num_packets : (uint32_t)avail;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t slot = (uint32_t)((cons + i) % q->ring_slots);
		move_buffer(c, pkt_handles[i], IN_APP, IN_RING, "pfring_zc_recv_pkt_burst");
		move_buffer(c, q->ring[slot], IN_RING, IN_APP, "pfring_zc_recv_pkt_burst");
		pfring_zc_pkt_buff *frame = q->ring[slot];
		q->ring[slot] = pkt_handles[i];
		pkt_handles[i] = frame;
	}
	atomic_store_explicit(&q->cons, cons + n, memory_order_release);
	return (int)n;
}

EXPORT int pfring_zc_recv_pkt(pfring_zc_queue *queue, pfring_zc_pkt_buff **pkt_handle,
			      uint8_t wait_for_incoming_packet)
{
	return pfring_zc_recv_pkt_burst(queue, pkt_handle, 1, wait_for_incoming_packet);
}

EXPORT int pfring_zc_queue_is_empty(pfring_zc_queue *queue)
{
	struct standin_queue *q = checked(queue, rx_only, "pfring_zc_queue_is_empty");
	return atomic_load(&q->published) == atomic_load(&q->cons);
}

EXPORT void pfring_zc_queue_breakloop(pfring_zc_queue *queue)
{
	struct standin_queue *q = queue;
	atomic_store(&q->breakloop, 1);
}

EXPORT void pfring_zc_sync_queue(pfring_zc_queue *queue, pfring_zc_queue_mode direction)
{
	struct standin_queue *q = queue;
	if (direction != tx_only || q->mode != tx_only)
		return; /* RX: the stand-in returns ring slots at once, nothing to hand back */
	atomic_store_explicit(&q->published, q->prod, memory_order_release);
	while (atomic_load_explicit(&q->cons, memory_order_acquire) != q->prod)
		pause_briefly();
}

EXPORT int pfring_zc_stats(pfring_zc_queue *queue, pfring_zc_stat *stats)
{
	struct standin_queue *q = queue;
	if (!q || !stats)
		return -1;
	if (q->mode == rx_only) {
		struct tpacket_stats st;
		socklen_t len = sizeof(st);
		/* the socket's own drops are the card's drops; reading them resets them */
		if (getsockopt(q->fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0)
			atomic_fetch_add(&q->drop, st.tp_drops);
	}
	stats->recv = atomic_load(&q->recv);
	stats->sent = atomic_load(&q->sent);
	stats->drop = atomic_load(&q->drop);
	return 0;
}

EXPORT uint32_t pfring_zc_get_queue_speed(pfring_zc_queue *queue)
{
	struct standin_queue *q = queue;
	char ifname[IFNAMSIZ], path[96];
	if (!if_indextoname((unsigned)q->ifindex, ifname))
		return 0;
	snprintf(path, sizeof(path), "/sys/class/net/%s/speed", ifname);
	FILE *f = fopen(path, "re");
	long speed = 0;
	if (f) {
		if (fscanf(f, "%ld", &speed) != 1)
			speed = 0;
		fclose(f);
	}
	return speed > 0 ? (uint32_t)speed : 0;
}

EXPORT int pfring_zc_check_device_license(pfring_zc_queue *queue, uint32_t *expiration_epoch)
{
	if (demo_licence())
		return 0;
	if (expiration_epoch)
		*expiration_epoch = (uint32_t)time(NULL) + 365u * 86400u;
	return 1;
}
