// SPDX-License-Identifier: GPL-2.0-only
/*
 * bare_gen.c - the generation ceiling: the least C that does a probe's per-packet work, to set
 * the null driver's frames/s against.
 *
 * Per frame, the engine's algorithms without the engine, each from the engine's own header
 * (so the ceiling and the engine cannot drift apart): a batch of 256 indices through pyscan's
 * keyed permutation in one pass (permute.h, permute.c) -> (address, port) in the same target
 * set pyscan bench scans, 198.19.0.0/16 x ports 1-65535 (targetset.h, targetset.c) -> the
 * keyed source port and IP ID (probe.h) -> SipHash-2-4 cookie (../bpf/cookie.h) -> the SYN
 * template (template.h, template.c): copy 58 bytes into a slot, patch the per-probe fields
 * and both checksums incrementally. The cookie key and source-port range are run-time values,
 * as in a scan. What it leaves out is exactly what the null driver adds:
 * the probe-module call, the ring interface (reserve/submit through function pointers), the
 * rate limiter, the per-thread counters. No I/O; one thread per core.
 *
 * Invariant: every index in [0, total) of a thread's share maps to a distinct target (the
 * permutation is a bijection), and the count reported is the number of frames written.
 *
 * Usage: bare_gen SECONDS THREADS   -> one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cookie.h"
#include "permute.h"
#include "probe.h"
#include "targetset.h"
#include "template.h"

/* A slot holds the template's whole copy (fill() copies PYSCAN_SYN_COPY_LEN bytes). */
enum { SLOTS = 1024, SLOT_SIZE = (PYSCAN_SYN_COPY_LEN + 63) / 64 * 64, MAX_THREADS = 16 };

struct worker {
	pthread_t thread;
	int index;
	int threads;
	uint64_t written;
	uint64_t wall_ns;
	uint64_t cpu_ns;
	uint32_t checksum_guard; /* folded into output so the compiler keeps every write */
};

static double seconds;
static volatile int stop;

static struct pyscan_targetset targets; /* built once in main, read-only after */
/* The scan's key and source ports, set in main at run time as a scan's are: a compile-time
 * key would let the compiler fold SipHash's key setup and the source-port multiply into
 * constants, a shortcut no scanner has (measured: 0.7 ns/frame, 3 %). Not static, so the
 * compiler cannot assume main's values either. */
struct pyscan_probe_env scan_env;

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	struct pyscan_permute perm;
	static const uint8_t src_mac[6] = { 2, 0, 0, 0, 0, 1 }, dst_mac[6] = { 2, 0, 0, 0, 0, 2 };
	struct pyscan_syn_template template;
	uint8_t *ring;
	uint64_t start, cpu0, i = (uint64_t)w->index;
	unsigned slot = 0;
	cpu_set_t cpus;

	CPU_ZERO(&cpus);
	CPU_SET(w->index % (int)sysconf(_SC_NPROCESSORS_ONLN), &cpus);
	pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	pyscan_permute__init(&perm, targets.total, 0x5eed);
	/* as the engine does it: the env points at local copies */
	const struct pyscan_targetset local_targets = targets;
	struct pyscan_probe_env env = scan_env;
	env.permute = &perm;
	env.targets = &local_targets;
	const uint32_t saddr_be = env.source_ip_be;
	ring = aligned_alloc(4096, SLOTS * SLOT_SIZE);
	memset(ring, 0, SLOTS * SLOT_SIZE);
	pyscan_template__init(&template, src_mac, dst_mac, saddr_be, PYSCAN_TCP_OPTIONS_MSS, 64,
			      1460, 1024);
	start = clock_ns(CLOCK_MONOTONIC);
	cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	while (!stop) {
		uint64_t batch[256];
		pyscan_permute__at_many(&perm, i, (uint64_t)w->threads, batch, 256);
		i += 256 * (uint64_t)w->threads;
		for (int b = 0; b < 256; b++) {
			const uint64_t target = batch[b];
			uint32_t ip_host;
			uint16_t port_host, ip_id;
			pyscan_targetset__at(&local_targets, target, &ip_host, &port_host);
			const uint16_t sport = pyscan_probe__source_port(&env, target, &ip_id);
			const uint32_t daddr_be = __builtin_bswap32(ip_host);
			const uint16_t sport_be = __builtin_bswap16(sport);
			const uint16_t dport_be = __builtin_bswap16(port_host);
			const uint32_t seq = pyscan_cookie(&env.key, saddr_be, daddr_be, sport_be,
							   dport_be);

			pyscan_template__fill(&template, ring + (size_t)slot * SLOT_SIZE, daddr_be,
					      sport_be, dport_be, seq, ip_id, 0);
			slot = (slot + 1) % SLOTS;
		}
		w->written += 256;
	}
	w->wall_ns = clock_ns(CLOCK_MONOTONIC) - start;
	w->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	for (unsigned k = 0; k < SLOTS; k++)
		w->checksum_guard ^= ring[k * SLOT_SIZE + PYSCAN_SYN_TCP_OFFSET + 16];
	free(ring);
	return NULL;
}

int main(int argc, char **argv)
{
	static struct worker workers[MAX_THREADS];
	uint64_t written = 0, cpu = 0, wall = 0;
	uint32_t guard = 0;
	int threads;

	if (argc != 3 || (seconds = atof(argv[1])) <= 0 || (threads = atoi(argv[2])) < 1 ||
	    threads > MAX_THREADS) {
		fprintf(stderr, "usage: %s SECONDS THREADS (SECONDS > 0, THREADS 1..%d)\n", argv[0],
			MAX_THREADS);
		return 2;
	}
	static uint16_t ports[65535];
	for (int p = 0; p < 65535; p++)
		ports[p] = (uint16_t)(p + 1);
	const struct pyscan_ip_range lab = { 0xc6130000u, 0xc613ffffu }; /* 198.19.0.0/16 */
	if (pyscan_targetset__init(&targets, &lab, 1, ports, 65535) < 0) {
		fprintf(stderr, "bare_gen: cannot build the target set\n");
		return 1;
	}
	if (getrandom(&scan_env.key, sizeof(scan_env.key), 0) != sizeof(scan_env.key) ||
	    getrandom(&scan_env.sport_key, sizeof(scan_env.sport_key), 0) !=
		    sizeof(scan_env.sport_key)) {
		fprintf(stderr, "bare_gen: getrandom failed\n");
		return 1;
	}
	scan_env.source_ip_be = __builtin_bswap32(0xc6120001u); /* 198.18.0.1 */
	scan_env.source_port_first = 61000; /* pyscan bench's source ports, 61000-61255 */
	scan_env.source_port_count = 256;
	for (int t = 0; t < threads; t++) {
		workers[t].index = t;
		workers[t].threads = threads;
		pthread_create(&workers[t].thread, NULL, run, &workers[t]);
	}
	usleep((useconds_t)(seconds * 1e6));
	stop = 1;
	for (int t = 0; t < threads; t++) {
		pthread_join(workers[t].thread, NULL);
		written += workers[t].written;
		cpu += workers[t].cpu_ns;
		guard ^= workers[t].checksum_guard;
		wall = workers[t].wall_ns > wall ? workers[t].wall_ns : wall;
	}
	printf("{\"loop\": \"bare_gen\", \"sent\": %llu, \"wall_ns\": %llu, \"cpu_ns\": %llu, "
	       "\"threads\": %d, \"guard\": %u}\n", (unsigned long long)written,
	       (unsigned long long)wall, (unsigned long long)cpu, threads, guard);
	return 0;
}
