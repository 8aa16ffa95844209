// SPDX-License-Identifier: GPL-2.0-only
/*
 * dedup_inject.c - the dedup benchmark: N distinct valid replies through the null driver's
 * reply injection into a running RX thread, at C speed (Python would need an hour for 10^8).
 *
 * Built by bench/dedup.py against pyscan/native's sources - those of this tree, and for "old"
 * those of an earlier commit - so both run the same engine code path: null RX ring ->
 * run_rx -> reply parser -> probe classify (cookie) -> reported-set -> results ring, which
 * this program's main thread drains as a scan's consumer would.
 *
 * Replies (all sources inside 198.18.0.0/15, nothing is sent anywhere):
 *   sparse N: N distinct (address, port) of 198.18.0.0/15 x 65536 ports, in a pseudo-random
 *             order (a bijection of [0, 2^33)): density N / 2^33, like an Internet scan's.
 *   lab:      every (address, port) of 198.18.0.0/16 x ports 1-200 (13,107,200 replies, the
 *             issue's "/16 x 200 ports, every closed port answering RST"), shuffled.
 *
 * Stall: the longest time the 1024-slot RX ring stayed full (the injector waits on it), and,
 * on the new engine, the worst single reported-set call measured inside C
 * (dedup_max_insert_ns). Both include preemption by other jobs on a shared machine.
 *
 * cpu N (new engine only): the worst single reported-set call in thread CPU time, which no
 *   preemption inflates: N sparse replies straight into the set, then the adversarial case -
 *   one port, one address per /16 in descending order, so every insert opens a block in
 *   front of all others (CRoaring moves its whole block index: up to 65536 entries) - each
 *   timed with CLOCK_THREAD_CPUTIME_ID.
 *
 * Usage: dedup_inject sparse N | dedup_inject lab | dedup_inject cpu N  -> one JSON object.
 */

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cookie.h"
#include "drv_null.h"
#include "engine.h"
#ifndef PYSCAN_BENCH_OLD_ENGINE
#include "dedup.h"
#endif

#define RX_SLOTS 1024
#define OUR_IP 0xC6120001u /* 198.18.0.1 */
#define OUR_PORT 40000
#define FRAME_LEN 54
#define DRAIN_MAX 4096
#define SPARSE_BITS 33
#define LAB_PORTS 200

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	return sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

/* A SYN-ACK (or RST+ACK) from ip:port to our probe's source, acknowledging its cookie. */
static void build_reply(uint8_t *f, const struct pyscan_cookie_key *key, uint32_t ip,
			uint16_t port, int rst)
{
	static const uint8_t ether[14] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0};
	memcpy(f, ether, sizeof(ether));
	uint8_t *iph = f + 14, *tcp = f + 34;
	memset(iph, 0, 40);
	iph[0] = 0x45;
	put16(iph + 2, 40);
	iph[8] = 61;
	iph[9] = 6;
	put32(iph + 12, ip);
	put32(iph + 16, OUR_IP);
	put16(iph + 10, csum_fold(csum_add(0, iph, 20)));
	const uint32_t cookie = pyscan_cookie(key, __builtin_bswap32(OUR_IP), __builtin_bswap32(ip),
					      __builtin_bswap16(OUR_PORT), __builtin_bswap16(port));
	put16(tcp, port);
	put16(tcp + 2, OUR_PORT);
	put32(tcp + 4, 12345);
	put32(tcp + 8, cookie + 1);
	tcp[12] = 5 << 4;
	tcp[13] = rst ? 0x14 : 0x12;
	put16(tcp + 14, 1024);
	uint32_t sum = csum_add(0, iph + 12, 8) + 6 + 20;
	put16(tcp + 16, csum_fold(csum_add(sum, tcp, 20)));
}

/* A bijection of [0, 2^33): the i-th distinct sparse reply. */
static uint64_t scatter(uint64_t x)
{
	const uint64_t mask = (1ull << SPARSE_BITS) - 1;
	x = (x * 0x9E3779B97F4A7C15ull) & mask;
	x ^= x >> 17;
	x = (x * 0xC2B2AE3D27D4EB4Full) & mask;
	x ^= x >> 15;
	return x;
}

static void *rx_main(void *arg)
{
	void **a = arg;
	pyscan_engine__run_rx(a[0], a[1]);
	return NULL;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, resident = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return resident * 4;
}

#ifndef PYSCAN_BENCH_OLD_ENGINE
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* inserts that took over 100 us and over 1 ms of thread CPU time */
static uint64_t over_100us, over_1ms;

static uint64_t timed_insert(struct pyscan_dedup *d, uint32_t ip, uint16_t port, uint64_t *max)
{
	struct pyscan_result res = {.port = port, .family = 4, .status = PYSCAN_RESULT_OPEN};
	const uint32_t ip_be = __builtin_bswap32(ip);
	memcpy(res.addr, &ip_be, 4);
	const uint64_t t0 = thread_cpu_ns();
	const int rc = pyscan_dedup__first_time(d, &res);
	const uint64_t took = thread_cpu_ns() - t0;
	*max = took > *max ? took : *max;
	over_100us += took > 100000;
	over_1ms += took > 1000000;
	return rc == 1;
}

static int cpu_mode(uint64_t n)
{
	struct pyscan_dedup d;
	const uint32_t lab_range[2] = {0xC6120000u, 0xC613FFFFu};
	uint16_t all_ports[PYSCAN_DEDUP_PORTS];
	for (uint32_t p = 0; p < PYSCAN_DEDUP_PORTS; p++)
		all_ports[p] = (uint16_t)p;
	struct pyscan_targetset targets;
	if (pyscan_targetset__init(&targets, (const struct pyscan_ip_range *)lab_range, 1,
				   all_ports, PYSCAN_DEDUP_PORTS) < 0 ||
	    pyscan_dedup__init(&d, &targets) < 0)
		return 1;
	uint64_t sparse_max = 0, fresh = 0;
	for (uint64_t i = 0; i < n; i++) {
		const uint64_t x = scatter(i);
		fresh += timed_insert(&d, 0xC6120000u | (uint32_t)(x & 0x1ffff), (uint16_t)(x >> 17),
				      &sparse_max);
	}
	const uint64_t sparse_bytes = d.bytes;
	pyscan_dedup__free(&d);
	pyscan_targetset__free(&targets);
	/* the whole IPv4 space on one port: 65536 blocks of address numbers */
	const uint32_t everything[2] = {0, 0xFFFFFFFFu};
	const uint16_t port_seven = 7;
	if (pyscan_targetset__init(&targets, (const struct pyscan_ip_range *)everything, 1,
				   &port_seven, 1) < 0 ||
	    pyscan_dedup__init(&d, &targets) < 0)
		return 1;
	uint64_t front_max = 0;
	for (int64_t block = 65535; block >= 0; block--)
		fresh += timed_insert(&d, (uint32_t)block << 16, 7, &front_max);
	pyscan_dedup__free(&d);
	pyscan_targetset__free(&targets);
	printf("{\"mode\": \"cpu\", \"replies\": %llu, \"fresh\": %llu, "
	       "\"sparse_max_insert_cpu_ns\": %llu, \"sparse_dedup_bytes\": %llu, "
	       "\"front_blocks\": 65536, \"front_max_insert_cpu_ns\": %llu, "
	       "\"inserts_over_100us\": %llu, \"inserts_over_1ms\": %llu}\n",
	       (unsigned long long)n, (unsigned long long)fresh, (unsigned long long)sparse_max,
	       (unsigned long long)sparse_bytes, (unsigned long long)front_max,
	       (unsigned long long)over_100us, (unsigned long long)over_1ms);
	return fresh == n + 65536 ? 0 : 1;
}
#endif

int main(int argc, char **argv)
{
#ifndef PYSCAN_BENCH_OLD_ENGINE
	if (argc == 3 && !strcmp(argv[1], "cpu"))
		return cpu_mode(strtoull(argv[2], NULL, 10));
#endif
	const int lab = argc == 2 && !strcmp(argv[1], "lab");
	if (!lab && !(argc == 3 && !strcmp(argv[1], "sparse"))) {
		fprintf(stderr, "usage: dedup_inject sparse N | dedup_inject lab | "
				"dedup_inject cpu N\n");
		return 2;
	}
	const uint64_t n = lab ? (uint64_t)LAB_PORTS << 16 : strtoull(argv[2], NULL, 10);
	if (!lab && (n == 0 || n > (1ull << SPARSE_BITS))) {
		fprintf(stderr, "N must be 1..2^33\n");
		return 2;
	}

	const uint32_t ranges[2] = {0xC6120000u, 0xC613FFFFu};
	/* the target set every reply belongs to: 198.18.0.0/15 x every port */
	static uint16_t ports[65536];
	for (uint32_t p = 0; p < 65536; p++)
		ports[p] = (uint16_t)p;
	struct pyscan_engine_config cfg = {0};
	for (int i = 0; i < 16; i++)
		cfg.cookie_key[i] = (uint8_t)(i * 7 + 1);
	cfg.ranges = ranges;
	cfg.n_ranges = 1;
	cfg.ports = ports;
	cfg.n_ports = 65536;
	cfg.source_ip_be = __builtin_bswap32(OUR_IP);
	cfg.shard_count = 1;
	cfg.tx_threads = 1;
	cfg.source_port_first = OUR_PORT;
	cfg.source_port_count = 1;
	cfg.ttl = 64;
	char err[256];
	pyscan_engine *engine = pyscan_engine__create(&cfg, err, sizeof(err));
	pyscan_ring *rx = pyscan_null__open_rx(RX_SLOTS);
	struct pyscan_result *out = calloc(DRAIN_MAX, sizeof(*out));
	if (!engine || !rx || !out) {
		fprintf(stderr, "setup failed: %s\n", engine ? "ring" : err);
		return 1;
	}
	const struct pyscan_cookie_key key = pyscan_cookie_key__from_bytes(cfg.cookie_key);
	pthread_t thread;
	void *args[2] = {engine, rx};
	pthread_create(&thread, NULL, rx_main, args);
	const long rss_before = rss_kib();

	uint64_t drained = 0, full_max_ns = 0, full_over_1ms = 0, full_over_10ms = 0;
	const uint64_t started = now_ns();
	uint8_t frame[FRAME_LEN];
	for (uint64_t i = 0; i < n; i++) {
		uint32_t ip;
		uint16_t port;
		if (lab) {
			/* i * odd mod 2^16 * 200 (odd and not a multiple of 5: coprime) */
			const uint64_t x = (i * 2654435761ull) % n;
			ip = 0xC6120000u | (uint32_t)(x & 0xffff);
			port = (uint16_t)(1 + (x >> 16));
		} else {
			const uint64_t x = scatter(i);
			ip = 0xC6120000u | (uint32_t)(x & 0x1ffff);
			port = (uint16_t)(x >> 17);
		}
		build_reply(frame, &key, ip, port, lab);
		uint64_t full_since = 0;
		while (pyscan_null__inject(rx, frame, FRAME_LEN) == -ENOBUFS) {
			if (!full_since)
				full_since = now_ns();
			drained += pyscan_engine__drain(engine, out, DRAIN_MAX);
			sched_yield();
		}
		if (full_since) {
			const uint64_t full = now_ns() - full_since;
			full_max_ns = full > full_max_ns ? full : full_max_ns;
			full_over_1ms += full > 1000000;
			full_over_10ms += full > 10000000;
		}
		if ((i & 255) == 255)
			drained += pyscan_engine__drain(engine, out, DRAIN_MAX);
	}
	struct pyscan_engine_stats st;
	do {
		drained += pyscan_engine__drain(engine, out, DRAIN_MAX);
		pyscan_engine__stats(engine, &st);
	} while (st.rx_frames < n);
	const uint64_t wall = now_ns() - started;
	pyscan_engine__stop_rx(engine);
	pthread_join(thread, NULL);
	drained += pyscan_engine__drain(engine, out, DRAIN_MAX);
	pyscan_engine__stats(engine, &st);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);

	printf("{\"mode\": \"%s\", \"replies\": %llu, \"reported\": %llu, \"duplicates\": %llu, "
	       "\"wall_s\": %.3f, \"rss_before_kib\": %ld, \"max_rss_kib\": %ld, "
	       "\"ring_full_max_ns\": %llu, \"ring_full_over_1ms\": %llu, "
	       "\"ring_full_over_10ms\": %llu",
	       lab ? "lab" : "sparse", (unsigned long long)n, (unsigned long long)drained,
	       (unsigned long long)st.rx_duplicates, wall / 1e9, rss_before, ru.ru_maxrss,
	       (unsigned long long)full_max_ns, (unsigned long long)full_over_1ms,
	       (unsigned long long)full_over_10ms);
#ifndef PYSCAN_BENCH_OLD_ENGINE
	printf(", \"dedup_bytes\": %llu, \"dedup_max_insert_ns\": %llu",
	       (unsigned long long)st.dedup_bytes, (unsigned long long)st.dedup_max_insert_ns);
#endif
	printf("}\n");
	pyscan_engine__destroy(engine);
	pyscan_ring__destroy(rx);
	free(out);
	return drained == n ? 0 : 1;
}
