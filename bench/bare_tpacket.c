// SPDX-License-Identifier: GPL-2.0-only
/*
 * bare_tpacket.c - the AF_PACKET ceiling: a bare TPACKET_V2 TX-ring loop resending one
 * constant SYN frame as fast as the kernel takes it, one thread and socket per queue.
 *
 * It exists only to be the yardstick the af-packet driver is compared with, so it does the
 * least a TX-ring sender can do: the frame is written into every slot once at start-up and the
 * loop only flips slot status and calls send(). Same socket options as a fast driver would use
 * (PACKET_QDISC_BYPASS, TX-only socket bound with protocol 0).
 *
 * Invariant: "sent" counts frames the kernel handed back as transmitted (status returned to
 * TP_STATUS_AVAILABLE after TP_STATUS_SEND_REQUEST); frames that came back with
 * TP_STATUS_WRONG_FORMAT are counted as errors, never as sent. The loop drains the ring before
 * it reports, so the counts are final.
 *
 * Usage: bare_tpacket IFNAME SECONDS FRAME_LEN THREADS [tcp|icmp|udp|tcp6|icmp6]   (in the lab scan netns)
 * Prints one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
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

#include "bare_common.h"
#include "bare_frame.h"

enum { RING_FRAMES = 4096, FRAME_SIZE = 2048, BLOCK_SIZE = 1 << 20, MAX_THREADS = 16 };

struct sender {
	pthread_t thread;
	int index;
	int fd;
	uint8_t *ring;
	uint64_t sent;
	uint64_t errors;
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

static struct tpacket2_hdr *slot(struct sender *s, unsigned i)
{
	return (struct tpacket2_hdr *)(s->ring + (size_t)i * FRAME_SIZE);
}

static int open_socket(struct sender *s)
{
	int version = TPACKET_V2, one = 1;
	struct tpacket_req req = {
		.tp_block_size = BLOCK_SIZE,
		.tp_block_nr = (RING_FRAMES * FRAME_SIZE) / BLOCK_SIZE,
		.tp_frame_size = FRAME_SIZE,
		.tp_frame_nr = RING_FRAMES,
	};
	struct sockaddr_ll addr = { .sll_family = AF_PACKET };

	addr.sll_ifindex = (int)if_nametoindex(ifname);
	if (addr.sll_ifindex == 0)
		return snprintf(s->error, sizeof(s->error), "no interface %s", ifname), -1;
	/* protocol 0: a TX-only socket, so the kernel does not run packet_rcv() for it */
	s->fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (s->fd < 0 ||
	    setsockopt(s->fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) ||
	    setsockopt(s->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) ||
	    setsockopt(s->fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)))
		return snprintf(s->error, sizeof(s->error), "socket setup: %s", strerror(errno)), -1;
	s->ring = mmap(NULL, (size_t)RING_FRAMES * FRAME_SIZE, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, s->fd, 0);
	if (s->ring == MAP_FAILED)
		return snprintf(s->error, sizeof(s->error), "mmap: %s", strerror(errno)), -1;
	if (bind(s->fd, (struct sockaddr *)&addr, sizeof(addr)))
		return snprintf(s->error, sizeof(s->error), "bind: %s", strerror(errno)), -1;
	for (unsigned i = 0; i < RING_FRAMES; i++) {
		uint8_t *data = (uint8_t *)slot(s, i) + TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);

		bare_frame_fill_proto(data, frame_len, (uint16_t)s->index, frame_proto);
	}
	return 0;
}

/* Read a slot's status; a frame the kernel rejected is counted once and the slot freed. */
static void settle(struct sender *s, uint32_t *status_seen, unsigned i)
{
	uint32_t status = __atomic_load_n(&slot(s, i)->tp_status, __ATOMIC_ACQUIRE);

	*status_seen = status;
	if (status == TP_STATUS_WRONG_FORMAT) {
		s->errors++;
		__atomic_store_n(&slot(s, i)->tp_status, TP_STATUS_AVAILABLE, __ATOMIC_RELEASE);
	}
}

static void *run(void *arg)
{
	struct sender *s = arg;
	cpu_set_t cpus;
	unsigned head = 0;       /* next slot to fill */
	uint64_t submitted = 0;  /* slots handed to the kernel, including errors */
	uint64_t start, deadline, cpu0;

	CPU_ZERO(&cpus);
	CPU_SET(s->index % (int)sysconf(_SC_NPROCESSORS_ONLN), &cpus);
	pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	if (open_socket(s))
		return NULL;
	start = clock_ns(CLOCK_MONOTONIC);
	cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	deadline = start + (uint64_t)(seconds * 1e9);
	for (;;) {
		unsigned queued = 0;

		for (; queued < 256; queued++) {
			uint32_t status;

			settle(s, &status, head);
			if (status != TP_STATUS_AVAILABLE && status != TP_STATUS_WRONG_FORMAT)
				break;
			slot(s, head)->tp_len = frame_len;
			__atomic_store_n(&slot(s, head)->tp_status, TP_STATUS_SEND_REQUEST,
					 __ATOMIC_RELEASE);
			head = (head + 1) % RING_FRAMES;
		}
		submitted += queued;
		/* A full ring means the sink has not freed our frames yet: a send() then would only
		 * take CPU from the softirq that frees them. */
		if (queued && send(s->fd, NULL, 0, MSG_DONTWAIT) < 0 && errno != EAGAIN &&
		    errno != ENOBUFS) {
			snprintf(s->error, sizeof(s->error), "send: %s", strerror(errno));
			break;
		}
		if (!queued)
			sched_yield();
		if (clock_ns(CLOCK_MONOTONIC) >= deadline)
			break;
	}
	/* Drain: every submitted slot must come back before the counts are final. */
	for (int tries = 0; tries < 2000; tries++) {
		unsigned busy = 0;

		send(s->fd, NULL, 0, MSG_DONTWAIT);
		for (unsigned i = 0; i < RING_FRAMES; i++) {
			uint32_t status;

			settle(s, &status, i);
			busy += status != TP_STATUS_AVAILABLE;
		}
		if (!busy)
			break;
		usleep(1000);
	}
	s->wall_ns = clock_ns(CLOCK_MONOTONIC) - start;
	s->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	s->sent = submitted - s->errors;
	return NULL;
}

BARE_MAIN(bare_tpacket, errors, 1514)
