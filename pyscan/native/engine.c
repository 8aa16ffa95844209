/* SPDX-License-Identifier: GPL-2.0-only
 *
 * engine.c - TX and RX loops of a scan, driver-agnostic (see engine.h for the contract).
 *
 * TX: thread t of T in shard s of S owns permutation inputs i = s + S*(t + T*k). Each batch
 * is rate-limited first (so a stop request never leaves reserved slots unsent), then slots
 * are reserved until the batch is complete, filled from the SYN template and submitted.
 * RX: frames are parsed without trusting any length field, replies to our address and port
 * range must acknowledge cookie + 1, and an exact hash set of (ip, port) keeps duplicates
 * out. Results go through a single-producer single-consumer ring; when it is full the RX
 * thread waits (counted), and once stopping it parks results in a stash that drain() reads
 * after the RX thread has returned, so no valid reply is ever lost on our side.
 *
 * Invariant: every counter has exactly one writer; readers use relaxed atomic loads.
 */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cookie.h"
#include "engine.h"
#include "permute.h"
#include "ratelimit.h"
#include "targetset.h"
#include "template.h"

#define CACHELINE 64
#define RX_BURST 64
#define RX_WAIT_MS 20
/* After stop_rx, frames already queued are still parsed until the ring is empty, for at most
 * this long: a full 32768-frame ring takes a few ms, while a flood that never lets the ring
 * empty must not keep the RX thread alive. */
#define RX_STOP_BUDGET_NS (500ull * 1000 * 1000)
#define TX_FLUSH_TIMEOUT_MS 5000
/* A batch should take at most this long at the configured rate, so that stop_tx and the
 * rate limiter's pacing stay fine-grained at low rates. */
#define TX_BATCH_PERIOD_NS 10000000ULL
#define TX_SLEEP_SLICE_NS 20000000ULL
#define TX_CATCH_UP_NS 5000000ULL
#define MIN_SLOT_CAPACITY 128

#define ETH_HLEN_ 14
#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88a8
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

static inline uint64_t load_relaxed(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Single-writer counter: a plain add published with a relaxed store (no locked RMW). */
static inline void bump(uint64_t *p, uint64_t n)
{
	__atomic_store_n(p, *p + n, __ATOMIC_RELAXED);
}

struct tx_thread_state {
	uint64_t total;     /* probes this thread owes */
	uint64_t generated; /* also the resume point: the next k */
	uint64_t sent;
	uint64_t errors;
	uint64_t retries;
	int running;        /* one run_tx per thread index at a time, or probes go out twice */
} __attribute__((aligned(CACHELINE)));

struct rx_counters {
	uint64_t frames, malformed, not_ours, ours, ignored_flags, invalid_cookie;
	uint64_t open, closed, duplicates, full_waits;
};

/* Exact set of (ip, port) already reported: open addressing, linear probing, grows at 1/2
 * load, so memory follows the number of distinct replies, never the number of targets. */
struct seen_set {
	uint64_t *slots; /* 0 = empty, else ((ip << 16) | port) + 1 */
	uint64_t mask;
	uint64_t used;
};

struct results_ring {
	struct pyscan_result *buf;
	uint64_t mask;
	uint64_t head __attribute__((aligned(CACHELINE))); /* written by the producer */
	uint64_t tail __attribute__((aligned(CACHELINE))); /* written by the consumer */
};

struct pyscan_engine {
	struct pyscan_engine_config cfg; /* pointers in it cleared: the engine owns copies */
	struct pyscan_cookie_key key;
	struct pyscan_permute permute;
	struct pyscan_targetset targets;
	struct pyscan_syn_template syn;
	uint64_t sport_key;
	uint64_t stride; /* S * T */
	uint32_t batch;

	int stop_tx;
	int stop_rx;
	int rx_running;
	uint64_t threads_done;

	struct tx_thread_state tx[PYSCAN_ENGINE_MAX_TX_THREADS];

	struct rx_counters rx __attribute__((aligned(CACHELINE)));
	struct seen_set seen;
	struct results_ring results;
	/* Results that met a full ring while stopping or outside run_rx; only the producer
	 * appends, and drain() reads it only when no RX thread runs. */
	struct pyscan_result *stash;
	uint64_t stash_len, stash_cap, stash_read;
	uint64_t stash_count; /* stash_len - stash_read, published for stats */
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t round_up_pow2(uint64_t x)
{
	uint64_t p = 1;
	while (p < x)
		p <<= 1;
	return p;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- seen set ------------------------------------------------------------------------ */

static int seen_init(struct seen_set *s, uint64_t capacity)
{
	s->slots = calloc(capacity, sizeof(*s->slots));
	s->mask = capacity - 1;
	s->used = 0;
	return s->slots ? 0 : -ENOMEM;
}

static void seen_place(uint64_t *slots, uint64_t mask, uint64_t key)
{
	uint64_t i = mix64(key) & mask;
	while (slots[i])
		i = (i + 1) & mask;
	slots[i] = key;
}

/* 1 when key was new (and is now in the set), 0 when already there, -ENOMEM. */
static int seen_insert(struct seen_set *s, uint64_t key)
{
	uint64_t i = mix64(key) & s->mask;
	while (s->slots[i]) {
		if (s->slots[i] == key)
			return 0;
		i = (i + 1) & s->mask;
	}
	if ((s->used + 1) * 2 > s->mask + 1) {
		const uint64_t new_mask = s->mask * 2 + 1;
		uint64_t *bigger = calloc(new_mask + 1, sizeof(*bigger));
		if (!bigger)
			return -ENOMEM;
		for (uint64_t j = 0; j <= s->mask; j++)
			if (s->slots[j])
				seen_place(bigger, new_mask, s->slots[j]);
		free(s->slots);
		s->slots = bigger;
		s->mask = new_mask;
		seen_place(s->slots, s->mask, key);
	} else {
		s->slots[i] = key;
	}
	s->used++;
	return 1;
}

/* ---- results ------------------------------------------------------------------------- */

static int results_try_push(struct results_ring *r, const struct pyscan_result *res)
{
	const uint64_t head = r->head;
	const uint64_t tail = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	if (head - tail > r->mask)
		return 0;
	r->buf[head & r->mask] = *res;
	__atomic_store_n(&r->head, head + 1, __ATOMIC_RELEASE);
	return 1;
}

static int stash_push(struct pyscan_engine *e, const struct pyscan_result *res)
{
	if (e->stash_len == e->stash_cap) {
		const uint64_t cap = e->stash_cap ? e->stash_cap * 2 : 1024;
		struct pyscan_result *bigger = realloc(e->stash, cap * sizeof(*bigger));
		if (!bigger)
			return -ENOMEM;
		e->stash = bigger;
		e->stash_cap = cap;
	}
	e->stash[e->stash_len++] = *res;
	bump(&e->stash_count, 1);
	return 0;
}

/* Never drops: waits for the consumer while the scan runs (in_rx_loop), stashes otherwise. */
static void results_push(struct pyscan_engine *e, const struct pyscan_result *res, int in_rx_loop)
{
	/* Once something is stashed, later results go behind it to keep arrival order. */
	if (e->stash_len == e->stash_read || !in_rx_loop) {
		while (!results_try_push(&e->results, res)) {
			if (!in_rx_loop || __atomic_load_n(&e->stop_rx, __ATOMIC_RELAXED))
				goto stash;
			bump(&e->rx.full_waits, 1);
			const struct timespec pause = {0, 1000000};
			nanosleep(&pause, NULL);
		}
		return;
	}
stash:
	if (stash_push(e, res) < 0)
		/* Out of memory with a full ring: the one place a result can be lost, and then
		 * it is at least not silent. */
		bump(&e->rx.full_waits, 1);
}

/* ---- create / destroy ---------------------------------------------------------------- */

#define FAIL(...)                                                 \
	do {                                                      \
		if (err && errlen)                                \
			snprintf(err, errlen, __VA_ARGS__);       \
		pyscan_engine__destroy(e);                        \
		return NULL;                                      \
	} while (0)

pyscan_engine *pyscan_engine__create(const struct pyscan_engine_config *cfg, char *err,
				     size_t errlen)
{
	struct pyscan_engine *e = NULL;

	if (!cfg)
		FAIL("engine config is NULL");
	if (cfg->tx_threads < 1 || cfg->tx_threads > PYSCAN_ENGINE_MAX_TX_THREADS)
		FAIL("tx_threads %u is out of range (1..%d)", cfg->tx_threads,
		     PYSCAN_ENGINE_MAX_TX_THREADS);
	if (cfg->shard_count < 1 || cfg->shard_index >= cfg->shard_count)
		FAIL("shard %u/%u is invalid (need 0 <= index < count)", cfg->shard_index,
		     cfg->shard_count);
	if (cfg->batch_size > PYSCAN_ENGINE_MAX_BATCH)
		FAIL("batch_size %u is out of range (1..%d, 0 = %d)", cfg->batch_size,
		     PYSCAN_ENGINE_MAX_BATCH, PYSCAN_ENGINE_DEFAULT_BATCH);
	if (cfg->source_port_count < 1 ||
	    (uint32_t)cfg->source_port_first + cfg->source_port_count > 65536)
		FAIL("source ports %u+%u are out of range (need count >= 1, first + count <= 65536)",
		     cfg->source_port_first, cfg->source_port_count);
	if (!(cfg->rate_pps >= 0) || isinf(cfg->rate_pps))
		FAIL("rate %g pps is invalid (need a finite number >= 0, 0 = unlimited)",
		     cfg->rate_pps);
	if (!cfg->ranges || !cfg->n_ranges)
		FAIL("no target ranges given (need at least one)");
	if (!cfg->ports || !cfg->n_ports)
		FAIL("no target ports given (need at least one)");

	e = aligned_alloc(CACHELINE, (sizeof(*e) + CACHELINE - 1) / CACHELINE * CACHELINE);
	if (!e)
		FAIL("out of memory");
	memset(e, 0, sizeof(*e));
	e->cfg = *cfg;
	e->cfg.ranges = NULL;
	e->cfg.ports = NULL;
	if (!e->cfg.batch_size)
		e->cfg.batch_size = PYSCAN_ENGINE_DEFAULT_BATCH;
	if (!e->cfg.max_results)
		e->cfg.max_results = PYSCAN_ENGINE_DEFAULT_MAX_RESULTS;

	/* struct pyscan_ip_range is two host-order u32s: the config's pairs are that array. */
	int rc = pyscan_targetset__init(&e->targets, (const struct pyscan_ip_range *)cfg->ranges,
					cfg->n_ranges, cfg->ports, cfg->n_ports);
	if (rc == -ENOMEM)
		FAIL("out of memory for the target set");
	if (rc < 0)
		FAIL("target set is invalid (need sorted disjoint ranges with first <= last and "
		     "distinct ports)");
	if (pyscan_permute__init(&e->permute, e->targets.total, cfg->seed) < 0)
		FAIL("target space of %llu probes is too large (max %llu)",
		     (unsigned long long)e->targets.total,
		     (unsigned long long)PYSCAN_PERMUTE_MAX_RANGE);

	e->key = pyscan_cookie_key__from_bytes(cfg->cookie_key);
	e->sport_key = mix64(e->key.k0 ^ mix64(e->key.k1 ^ cfg->seed));
	pyscan_template__init(&e->syn, cfg->source_mac, cfg->gateway_mac, cfg->source_ip_be,
			      cfg->ttl, cfg->mss, cfg->window);

	const uint64_t S = cfg->shard_count, T = cfg->tx_threads, total = e->targets.total;
	e->stride = S * T;
	for (uint64_t t = 0; t < T; t++) {
		const uint64_t start = cfg->shard_index + S * t;
		e->tx[t].total = start < total ? (total - start + e->stride - 1) / e->stride : 0;
	}

	/* Small batches at low rates: a batch then spans at most TX_BATCH_PERIOD_NS. */
	e->batch = e->cfg.batch_size;
	if (cfg->rate_pps > 0) {
		const double per_thread = cfg->rate_pps / (double)T;
		const double fitting = per_thread * (double)TX_BATCH_PERIOD_NS / 1e9;
		if (fitting < e->batch)
			e->batch = fitting < 1 ? 1 : (uint32_t)fitting;
	}

	if (seen_init(&e->seen, 4096) < 0)
		FAIL("out of memory");
	const uint64_t ring_size = round_up_pow2(e->cfg.max_results < 2 ? 2 : e->cfg.max_results);
	e->results.buf = calloc(ring_size, sizeof(struct pyscan_result));
	if (!e->results.buf)
		FAIL("out of memory for a results ring of %llu entries",
		     (unsigned long long)ring_size);
	e->results.mask = ring_size - 1;
	if (err && errlen)
		err[0] = '\0';
	return e;
}

void pyscan_engine__destroy(pyscan_engine *e)
{
	if (!e)
		return;
	pyscan_targetset__free(&e->targets);
	free(e->seen.slots);
	free(e->results.buf);
	free(e->stash);
	free(e);
}

uint64_t pyscan_engine__thread_total(const pyscan_engine *e, uint32_t thread_index)
{
	if (!e || thread_index >= e->cfg.tx_threads)
		return 0;
	return e->tx[thread_index].total;
}

/* ---- TX ------------------------------------------------------------------------------ */

static inline int tx_stopping(struct pyscan_engine *e)
{
	return __atomic_load_n(&e->stop_tx, __ATOMIC_RELAXED);
}

/* Sleeps until deadline in slices, so a stop request is seen within TX_SLEEP_SLICE_NS.
 * 0 when the deadline passed, 1 when stopped. */
static int tx_wait_until(struct pyscan_engine *e, uint64_t deadline)
{
	for (;;) {
		if (tx_stopping(e))
			return 1;
		const uint64_t now = pyscan_clock__now_ns();
		if (now >= deadline)
			return 0;
		const uint64_t slice_end = now + TX_SLEEP_SLICE_NS;
		pyscan_clock__sleep_until_ns(deadline < slice_end ? deadline : slice_end);
	}
}

static inline uint32_t tx_fill_probe(const struct pyscan_engine *e, uint64_t input_index,
				     uint8_t *out)
{
	const uint64_t target = pyscan_permute__at(&e->permute, input_index);
	uint32_t ip_host;
	uint16_t port_host;
	pyscan_targetset__at(&e->targets, target, &ip_host, &port_host);

	/* Source port and IP ID from a keyed mix of the target index: cheap, spread over the
	 * range, and the same for a target however the scan is sharded. */
	const uint64_t h = mix64(target ^ e->sport_key);
	const uint16_t sport = (uint16_t)(e->cfg.source_port_first +
					  (((h >> 32) * e->cfg.source_port_count) >> 32));
	const uint32_t daddr_be = __builtin_bswap32(ip_host);
	const uint16_t sport_be = __builtin_bswap16(sport);
	const uint16_t dport_be = __builtin_bswap16(port_host);
	const uint32_t seq = pyscan_cookie(&e->key, e->cfg.source_ip_be, daddr_be, sport_be,
					   dport_be);
	return pyscan_template__fill(&e->syn, out, daddr_be, sport_be, dport_be, seq,
				     (uint16_t)(h >> 8));
}

int pyscan_engine__run_tx(pyscan_engine *e, uint32_t thread_index, pyscan_ring *ring)
{
	if (!e || !ring || thread_index >= e->cfg.tx_threads)
		return -EINVAL;
	const struct pyscan_ring_ops *ops = ring->ops;
	if (!ops->tx_reserve || !ops->tx_submit)
		return -EOPNOTSUPP;

	struct tx_thread_state *st = &e->tx[thread_index];
	if (__atomic_exchange_n(&st->running, 1, __ATOMIC_ACQ_REL))
		return -EBUSY;
	const uint64_t my_total = st->total;
	const uint64_t stride = e->stride;
	const uint64_t first_index = e->cfg.shard_index + (uint64_t)e->cfg.shard_count * thread_index;
	const int limited = e->cfg.rate_pps > 0;
	struct pyscan_tx_slot slots[PYSCAN_ENGINE_MAX_BATCH];
	struct pyscan_ratelimit limiter;
	uint64_t k = st->generated; /* 0 unless run_tx is resumed on the same engine */
	int rc = 0;

	if (limited) {
		/* Burst allowance: what TX_CATCH_UP_NS at the rate is worth, at least two batches.
		 * A thread that is descheduled or wakes late makes up that much lag at once, so
		 * the average holds on a busy machine; a longer stall is not made up (no flood). */
		const double per_thread = e->cfg.rate_pps / e->cfg.tx_threads;
		double burst = per_thread * (double)TX_CATCH_UP_NS / 1e9;
		if (burst < 2.0 * e->batch)
			burst = 2.0 * e->batch;
		if (burst > (double)(1u << 20))
			burst = (double)(1u << 20);
		pyscan_ratelimit__init(&limiter, per_thread, (uint32_t)burst, pyscan_clock__now_ns());
	}

	while (k < my_total && !tx_stopping(e)) {
		const uint32_t want = (uint32_t)((my_total - k) < e->batch ? (my_total - k) : e->batch);

		if (limited) {
			const uint64_t now = pyscan_clock__now_ns();
			const uint64_t wait = pyscan_ratelimit__reserve(&limiter, want, now);
			if (wait && tx_wait_until(e, now + wait))
				break;
		}

		uint32_t got = 0;
		while (got < want) {
			got += ops->tx_reserve(ring, slots + got, want - got);
			if (got == want)
				break;
			bump(&st->retries, 1);
			if (ops->tx_reclaim)
				ops->tx_reclaim(ring);
			if (ops->tx_kick && (rc = ops->tx_kick(ring)) < 0)
				break; /* the device is gone or down: waiting would never end */
			if (tx_stopping(e))
				break;
			sched_yield();
		}
		if (!got)
			break;
		if (slots[0].capacity < MIN_SLOT_CAPACITY) {
			snprintf(ring->error, sizeof(ring->error),
				 "ring slots of %u bytes are too small for a probe (need %d)",
				 slots[0].capacity, MIN_SLOT_CAPACITY);
			rc = -EMSGSIZE;
			break;
		}

		uint64_t index = first_index + k * stride;
		for (uint32_t j = 0; j < got; j++, index += stride)
			slots[j].len = tx_fill_probe(e, index, slots[j].data);
		k += got;
		__atomic_store_n(&st->generated, k, __ATOMIC_RELAXED);

		if (ops->tx_submit(ring, slots, got) < 0)
			bump(&st->errors, got);
		else
			bump(&st->sent, got);
		if (rc < 0)
			break; /* after submitting what was reserved, as ring.h demands */
		if (ops->tx_kick && (rc = ops->tx_kick(ring)) < 0)
			break;
		if (ops->tx_reclaim)
			ops->tx_reclaim(ring);
	}

	/* After a fatal error queued frames cannot leave: waiting for them would only bury
	 * the ring's error message under a timeout. */
	if (!rc && ops->tx_flush && ops->tx_flush(ring, TX_FLUSH_TIMEOUT_MS) < 0)
		rc = -ETIMEDOUT;
	__atomic_fetch_add(&e->threads_done, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&st->running, 0, __ATOMIC_RELEASE);
	return rc;
}

/* ---- RX ------------------------------------------------------------------------------ */

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int ingest(struct pyscan_engine *e, const uint8_t *frame, uint32_t len, int in_rx_loop)
{
	struct rx_counters *c = &e->rx;
	bump(&c->frames, 1);

	if (!frame || len < ETH_HLEN_)
		goto malformed;
	uint32_t l3 = ETH_HLEN_;
	uint16_t ethertype = rd16(frame + 12);
	for (int tags = 0; tags < 2 && (ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ);
	     tags++) {
		if (len < l3 + 4)
			goto malformed;
		ethertype = rd16(frame + l3 + 2);
		l3 += 4;
	}
	if (ethertype != ETHERTYPE_IPV4)
		goto not_ours;

	const uint8_t *ip = frame + l3;
	if (len < l3 + 20 || (ip[0] >> 4) != 4)
		goto malformed;
	const uint32_t ihl = (uint32_t)(ip[0] & 0x0f) * 4;
	const uint32_t ip_total = rd16(ip + 2);
	/* Ethernet pads short frames, so the IPv4 total length bounds the packet, and it
	 * must fit what was captured. */
	if (ihl < 20 || ip_total < ihl || ip_total > len - l3)
		goto malformed;
	if (rd16(ip + 6) & 0x3fff) /* MF or a fragment offset: never a whole reply */
		goto malformed;
	if (ip[9] != 6)
		goto not_ours;
	uint32_t daddr_be, saddr_be;
	memcpy(&saddr_be, ip + 12, 4);
	memcpy(&daddr_be, ip + 16, 4);
	if (daddr_be != e->cfg.source_ip_be)
		goto not_ours;
	if (ip_total < ihl + 20)
		goto malformed;

	const uint8_t *tcp = ip + ihl;
	const uint16_t dport = rd16(tcp + 2);
	if (dport < e->cfg.source_port_first ||
	    (uint32_t)(dport - e->cfg.source_port_first) >= e->cfg.source_port_count)
		goto not_ours;
	if ((tcp[12] >> 4) < 5)
		goto malformed;
	bump(&c->ours, 1);

	const uint8_t flags = tcp[13];
	uint8_t status;
	if ((flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) == (TCP_SYN | TCP_ACK))
		status = PYSCAN_RESULT_OPEN;
	else if ((flags & (TCP_RST | TCP_ACK | TCP_SYN)) == (TCP_RST | TCP_ACK))
		status = PYSCAN_RESULT_CLOSED;
	else {
		bump(&c->ignored_flags, 1);
		return PYSCAN_INGEST_IGNORED_FLAGS;
	}

	uint16_t sport_be, dport_be;
	memcpy(&sport_be, tcp + 0, 2);
	memcpy(&dport_be, tcp + 2, 2);
	const uint32_t cookie = pyscan_cookie(&e->key, daddr_be, saddr_be, dport_be, sport_be);
	if (rd32(tcp + 8) - 1 != cookie) {
		bump(&c->invalid_cookie, 1);
		return PYSCAN_INGEST_INVALID_COOKIE;
	}

	const uint16_t sport = rd16(tcp);
	const uint64_t key = (((uint64_t)saddr_be << 16) | sport) + 1;
	const int fresh = seen_insert(&e->seen, key);
	if (fresh == 0) {
		bump(&c->duplicates, 1);
		return PYSCAN_INGEST_DUPLICATE;
	}
	/* fresh < 0 (no memory to grow the set): report anyway; a possible later duplicate
	 * beats a lost result. */

	const struct pyscan_result res = {
		.ip_be = saddr_be,
		.port = sport,
		.status = status,
		.ttl = ip[8],
		.timestamp_ns = realtime_ns(),
	};
	if (status == PYSCAN_RESULT_OPEN)
		bump(&c->open, 1);
	else
		bump(&c->closed, 1);
	results_push(e, &res, in_rx_loop);
	return status == PYSCAN_RESULT_OPEN ? PYSCAN_INGEST_OPEN : PYSCAN_INGEST_CLOSED;

malformed:
	bump(&c->malformed, 1);
	return PYSCAN_INGEST_MALFORMED;
not_ours:
	bump(&c->not_ours, 1);
	return PYSCAN_INGEST_NOT_OURS;
}

int pyscan_engine__ingest(pyscan_engine *e, const uint8_t *frame, uint32_t len)
{
	if (!e)
		return -EINVAL;
	return ingest(e, frame, len, 0);
}

int pyscan_engine__run_rx(pyscan_engine *e, pyscan_ring *ring)
{
	if (!e || !ring)
		return -EINVAL;
	const struct pyscan_ring_ops *ops = ring->ops;
	if (!ops->rx_peek || !ops->rx_release)
		return -EOPNOTSUPP;
	if (__atomic_exchange_n(&e->rx_running, 1, __ATOMIC_ACQ_REL))
		return -EBUSY;

	struct pyscan_rx_frame frames[RX_BURST];
	uint64_t stop_deadline = 0;
	int rc = 0;

	for (;;) {
		const int stopping = __atomic_load_n(&e->stop_rx, __ATOMIC_RELAXED);
		if (stopping) {
			const uint64_t now = pyscan_clock__now_ns();
			if (!stop_deadline)
				stop_deadline = now + RX_STOP_BUDGET_NS;
			else if (now >= stop_deadline)
				break;
		}
		const uint32_t n = ops->rx_peek(ring, frames, RX_BURST);
		if (!n) {
			if (stopping)
				break;
			if (ops->rx_wait) {
				const int w = ops->rx_wait(ring, RX_WAIT_MS);
				if (w < 0 && w != -EINTR) {
					rc = w;
					break;
				}
			} else {
				const struct timespec pause = {0, 1000000};
				nanosleep(&pause, NULL);
			}
			continue;
		}
		for (uint32_t j = 0; j < n; j++)
			ingest(e, frames[j].data, frames[j].len, 1);
		ops->rx_release(ring, n);
	}

	__atomic_store_n(&e->rx_running, 0, __ATOMIC_RELEASE);
	return rc;
}

uint32_t pyscan_engine__drain(pyscan_engine *e, struct pyscan_result *out, uint32_t max)
{
	if (!e || !out)
		return 0;
	struct results_ring *r = &e->results;
	const uint64_t tail = r->tail;
	const uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	uint32_t n = 0;
	for (uint64_t i = tail; i != head && n < max; i++)
		out[n++] = r->buf[i & r->mask];
	__atomic_store_n(&r->tail, tail + n, __ATOMIC_RELEASE);

	if (n < max && !__atomic_load_n(&e->rx_running, __ATOMIC_ACQUIRE)) {
		while (n < max && e->stash_read < e->stash_len)
			out[n++] = e->stash[e->stash_read++];
		__atomic_store_n(&e->stash_count, e->stash_len - e->stash_read, __ATOMIC_RELAXED);
	}
	return n;
}

void pyscan_engine__stats(pyscan_engine *e, struct pyscan_engine_stats *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (!e)
		return;
	out->tx_threads = e->cfg.tx_threads;
	for (uint32_t t = 0; t < e->cfg.tx_threads; t++) {
		const struct tx_thread_state *st = &e->tx[t];
		out->total_targets += st->total;
		out->thread_generated[t] = load_relaxed(&st->generated);
		out->thread_sent[t] = load_relaxed(&st->sent);
		out->generated += out->thread_generated[t];
		out->sent += out->thread_sent[t];
		out->tx_errors += load_relaxed(&st->errors);
		out->tx_retries += load_relaxed(&st->retries);
	}
	out->tx_threads_done = load_relaxed(&e->threads_done);
	out->tx_stopped = (uint64_t)__atomic_load_n(&e->stop_tx, __ATOMIC_RELAXED);
	const struct rx_counters *c = &e->rx;
	out->rx_frames = load_relaxed(&c->frames);
	out->rx_malformed = load_relaxed(&c->malformed);
	out->rx_not_ours = load_relaxed(&c->not_ours);
	out->rx_ours = load_relaxed(&c->ours);
	out->rx_ignored_flags = load_relaxed(&c->ignored_flags);
	out->rx_invalid_cookie = load_relaxed(&c->invalid_cookie);
	out->rx_open = load_relaxed(&c->open);
	out->rx_closed = load_relaxed(&c->closed);
	out->rx_duplicates = load_relaxed(&c->duplicates);
	out->results_full_waits = load_relaxed(&c->full_waits);
	const uint64_t head = __atomic_load_n(&e->results.head, __ATOMIC_ACQUIRE);
	const uint64_t tail = __atomic_load_n(&e->results.tail, __ATOMIC_ACQUIRE);
	out->results_pending = head - tail + load_relaxed(&e->stash_count);
}

void pyscan_engine__stop_tx(pyscan_engine *e)
{
	if (e)
		__atomic_store_n(&e->stop_tx, 1, __ATOMIC_RELAXED);
}

void pyscan_engine__stop_rx(pyscan_engine *e)
{
	if (e)
		__atomic_store_n(&e->stop_rx, 1, __ATOMIC_RELAXED);
}
