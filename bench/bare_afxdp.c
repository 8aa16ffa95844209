// SPDX-License-Identifier: GPL-2.0-only
/*
 * bare_afxdp.c - the AF_XDP ceiling: a bare xsk TX loop (libxdp) resending one constant SYN
 * frame, one socket + UMEM + thread per queue, after bpf-examples' xdpsock "txonly".
 *
 * It is the yardstick the af-xdp driver is compared with: every UMEM frame holds the same
 * frame, written once at start-up, so the loop is only reserve / fill descriptors / submit /
 * kick / reclaim completions. Copy mode with need_wakeup (veth has no zero-copy); no XDP
 * program is loaded (TX-only sockets need none).
 *
 * Invariant: "sent" counts completions, i.e. frames the kernel reports as transmitted; the
 * loop waits for all outstanding completions (bounded) before it reports, and frames still
 * outstanding after that are reported as "lost", never as sent.
 *
 * Usage: bare_afxdp IFNAME SECONDS FRAME_LEN THREADS [tcp|icmp|udp|tcp6|icmp6]   (in the lab scan netns)
 * Prints one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/if_xdp.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xdp/xsk.h>

#include "bare_common.h"
#include "bare_frame.h"

enum { NUM_FRAMES = 4096, FRAME_SIZE = 2048, BATCH = 64, RING_SIZE = 2048, MAX_THREADS = 16 };

struct sender {
	pthread_t thread;
	int index;
	void *area;
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	struct xsk_ring_prod fill;
	struct xsk_ring_cons comp;
	struct xsk_ring_prod tx;
	uint64_t sent;
	uint64_t lost;
	uint64_t wall_ns;
	uint64_t cpu_ns;
	char error[160];
};

static const char *ifname;
static double seconds;
static unsigned frame_len;
static int frame_proto = BARE_PROTO_TCP; /* optional 5th argument: tcp, icmp, udp, tcp6, icmp6 */

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int open_socket(struct sender *s)
{
	struct xsk_umem_config ucfg = {
		.fill_size = RING_SIZE, .comp_size = RING_SIZE, .frame_size = FRAME_SIZE,
	};
	struct xsk_socket_config scfg = {
		.tx_size = RING_SIZE,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP,
	};
	int err;

	s->area = mmap(NULL, (size_t)NUM_FRAMES * FRAME_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (s->area == MAP_FAILED)
		return snprintf(s->error, sizeof(s->error), "mmap: %s", strerror(errno)), -1;
	for (unsigned i = 0; i < NUM_FRAMES; i++)
		bare_frame_fill_proto((uint8_t *)s->area + (size_t)i * FRAME_SIZE, frame_len,
				      (uint16_t)s->index, frame_proto);
	/* the ring structs are zeroed by the caller: libxdp leaves cached_prod/cons unset */
	err = xsk_umem__create(&s->umem, s->area, (uint64_t)NUM_FRAMES * FRAME_SIZE, &s->fill,
			       &s->comp, &ucfg);
	if (err)
		return snprintf(s->error, sizeof(s->error), "xsk_umem__create: %s", strerror(-err)), -1;
	err = xsk_socket__create(&s->xsk, ifname, (uint32_t)s->index, s->umem, NULL, &s->tx, &scfg);
	if (err)
		return snprintf(s->error, sizeof(s->error), "xsk_socket__create(%s, queue %d): %s",
				ifname, s->index, strerror(-err)), -1;
	return 0;
}

static void kick(struct sender *s)
{
	if (xsk_ring_prod__needs_wakeup(&s->tx) &&
	    sendto(xsk_socket__fd(s->xsk), NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 &&
	    errno != EAGAIN && errno != ENOBUFS && errno != EBUSY && errno != ENETDOWN)
		snprintf(s->error, sizeof(s->error), "sendto: %s", strerror(errno));
}

static uint32_t reclaim(struct sender *s)
{
	uint32_t idx, done = xsk_ring_cons__peek(&s->comp, RING_SIZE, &idx);

	if (done)
		xsk_ring_cons__release(&s->comp, done);
	s->sent += done;
	return done;
}

static void *run(void *arg)
{
	struct sender *s = arg;
	cpu_set_t cpus;
	uint64_t outstanding = 0, next_frame = 0, start, deadline, cpu0;

	CPU_ZERO(&cpus);
	CPU_SET(s->index % (int)sysconf(_SC_NPROCESSORS_ONLN), &cpus);
	pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	if (open_socket(s))
		return NULL;
	start = clock_ns(CLOCK_MONOTONIC);
	cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	deadline = start + (uint64_t)(seconds * 1e9);
	while (!s->error[0]) {
		uint32_t idx;

		/* never more frames in flight than UMEM frames: each descriptor owns its frame */
		if (outstanding + BATCH <= NUM_FRAMES &&
		    xsk_ring_prod__reserve(&s->tx, BATCH, &idx) == BATCH) {
			for (unsigned i = 0; i < BATCH; i++) {
				struct xdp_desc *d = xsk_ring_prod__tx_desc(&s->tx, idx + i);

				d->addr = (next_frame++ % NUM_FRAMES) * FRAME_SIZE;
				d->len = frame_len;
				d->options = 0;
			}
			xsk_ring_prod__submit(&s->tx, BATCH);
			outstanding += BATCH;
		}
		kick(s);
		outstanding -= reclaim(s);
		if (clock_ns(CLOCK_MONOTONIC) >= deadline)
			break;
	}
	for (int tries = 0; outstanding && tries < 2000; tries++) {
		kick(s);
		outstanding -= reclaim(s);
		if (outstanding)
			usleep(500);
	}
	s->wall_ns = clock_ns(CLOCK_MONOTONIC) - start;
	s->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	s->lost = outstanding;
	xsk_socket__delete(s->xsk);
	xsk_umem__delete(s->umem);
	munmap(s->area, (size_t)NUM_FRAMES * FRAME_SIZE);
	return NULL;
}

BARE_MAIN(bare_afxdp, lost, FRAME_SIZE)
