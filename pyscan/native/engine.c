/* SPDX-License-Identifier: GPL-2.0-only
 *
 * engine.c - an engine's life: create (checks the config, builds the target set, the
 * permutation and the probe module's template, splits the shard among TX threads), destroy,
 * stats, stop flags, drain, and the target listing -sL uses. The loops are engine_tx.c and
 * engine_rx.c; the contract is engine.h.
 *
 * Invariant: create() either returns an engine whose every part is initialised or frees all
 * it made and writes one line into err naming the bad value and what is accepted.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cookie.h"
#include "counter.h"
#include "engine_internal.h"

#define CACHELINE PYSCAN_ENGINE_CACHELINE
/* A batch should take at most this long at the configured rate, so that stop_tx and the
 * rate limiter's pacing stay fine-grained at low rates. */
#define TX_BATCH_PERIOD_NS 10000000ULL
/* Retry schedule block without a rate limit: the rate is unknown, so blocks are large (a
 * phase of a few such blocks outlasts a 1 s delay at several Mpps) and the per-chunk clock
 * check enforces the delay; a slower lane merely waits at the chunk boundaries. */
#define RETRY_BLOCK_UNLIMITED (1ULL << 22)
/* Blocks sized from the rate get this much slack, so that the rate limiter's burst
 * allowance never makes a phase end before the delay and the clock check rarely waits. */
#define RETRY_BLOCK_SLACK 1.05

#define load_relaxed pyscan_counter__load

/* ---- create / destroy ---------------------------------------------------------------- */

/* Pairs per retry-schedule block (schedule.h). A pair's next pass comes `passes` whole blocks
 * after the end of its previous one, so blocks of rate x delay / passes frames make the delay
 * hold by construction at the lane's rate; at least a batch, so chunks do not cut batches. */
static uint64_t retry_block(const struct pyscan_engine *e)
{
	uint64_t lane_max = 1;
	for (uint32_t t = 0; t < e->cfg.tx_threads; t++)
		if (e->tx[t].total > lane_max)
			lane_max = e->tx[t].total;
	if (e->passes == 1)
		return lane_max;
	uint64_t block = RETRY_BLOCK_UNLIMITED;
	if (e->cfg.rate_pps > 0) {
		const double per_lane = e->cfg.rate_pps / e->cfg.tx_threads;
		const double want = ceil(per_lane * ((double)e->cfg.retry_delay_ns / 1e9) *
					 RETRY_BLOCK_SLACK / e->passes);
		block = want < (double)RETRY_BLOCK_UNLIMITED ? (uint64_t)want : RETRY_BLOCK_UNLIMITED;
	}
	if (block < e->batch)
		block = e->batch;
	return block < lane_max ? block : lane_max;
}

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
	if (cfg->family != 0 && cfg->family != 4 && cfg->family != 6)
		FAIL("address family %u is unknown (accepted: 4 or 6)", cfg->family);
	if (!(cfg->family == 6 ? (const void *)cfg->ranges6 : (const void *)cfg->ranges) ||
	    !cfg->n_ranges)
		FAIL("no target ranges given (need at least one)");
	if (!cfg->ports || !cfg->n_ports)
		FAIL("no target ports given (need at least one)");
	if (cfg->retries > PYSCAN_ENGINE_MAX_RETRIES)
		FAIL("retries %u is out of range (0..%d)", cfg->retries, PYSCAN_ENGINE_MAX_RETRIES);
	if (cfg->retry_delay_ns > 3600ULL * 1000000000ULL)
		FAIL("retry delay %llu ns is out of range (0..3600 s)",
		     (unsigned long long)cfg->retry_delay_ns);
	/* The scan's modules: the port entries' probe ids, or probe_id for every entry. */
	uint32_t probe_mask = 0;
	for (uint32_t i = 0; i < (cfg->port_probes ? cfg->n_ports : 1); i++) {
		const uint32_t id = cfg->port_probes ? cfg->port_probes[i] : cfg->probe_id;
		if (!pyscan_probe__ops(id))
			FAIL("probe id %u is unknown (known: 0..%d, see probe_ids.h)", id,
			     PYSCAN_PROBE_COUNT - 1);
		probe_mask |= PYSCAN_PROBE_BIT(id);
	}

	e = aligned_alloc(CACHELINE, (sizeof(*e) + CACHELINE - 1) / CACHELINE * CACHELINE);
	if (!e)
		FAIL("out of memory");
	memset(e, 0, sizeof(*e));
	e->cfg = *cfg;
	e->cfg.ranges = NULL;
	e->cfg.ranges6 = NULL;
	e->cfg.ports = NULL;
	if (!e->cfg.batch_size)
		e->cfg.batch_size = PYSCAN_ENGINE_DEFAULT_BATCH;
	if (!e->cfg.max_results)
		e->cfg.max_results = PYSCAN_ENGINE_DEFAULT_MAX_RESULTS;

	/* struct pyscan_ip_range is two host-order u32s: the config's pairs are that array. */
	e->cfg.port_probes = NULL;
	e->cfg.probe_args = NULL;
	const int family = cfg->family == 6 ? 6 : 4;
	int rc = family == 6 ?
		pyscan_targetset__init6(&e->targets, (const struct pyscan_ip6_range *)cfg->ranges6,
					cfg->n_ranges, cfg->ports, cfg->port_probes, cfg->n_ports) :
		pyscan_targetset__init_probes(&e->targets,
					      (const struct pyscan_ip_range *)cfg->ranges,
					      cfg->n_ranges, cfg->ports, cfg->port_probes,
					      cfg->n_ports);
	if (rc == -ENOMEM)
		FAIL("out of memory for the target set");
	if (rc == -E2BIG)
		FAIL("IPv6 target set holds more than 2^32 addresses (accepted: at most 2^32)");
	if (rc < 0)
		FAIL("target set is invalid (need sorted disjoint ranges with first <= last and "
		     "distinct ports per protocol)");
	if (pyscan_permute__init(&e->permute, e->targets.total, cfg->seed) < 0)
		FAIL("target space of %llu probes is too large (max %llu)",
		     (unsigned long long)e->targets.total,
		     (unsigned long long)PYSCAN_PERMUTE_MAX_RANGE);

	const struct pyscan_cookie_key key = pyscan_cookie_key__from_bytes(cfg->cookie_key);
	e->env = (struct pyscan_probe_env){
		.key = key,
		.permute = &e->permute,
		.targets = &e->targets,
		.sport_key = pyscan_probe__mix64(key.k0 ^ pyscan_probe__mix64(key.k1 ^ cfg->seed)),
		.source_ip_be = cfg->source_ip_be,
		.source_port_count = cfg->source_port_count,
		.source_port_first = cfg->source_port_first,
		.family = (uint8_t)family,
	};
	memcpy(e->env.source_ip6, cfg->source_ip6, 16);
	for (uint32_t id = 0; id < PYSCAN_PROBE_COUNT; id++) {
		if (!(probe_mask & PYSCAN_PROBE_BIT(id)))
			continue;
		const struct pyscan_probe_ops *ops = pyscan_probe__ops(id);
		/* The caller's cfg: its ports, port_probes and probe_args are valid during init. */
		if (ops->init(e->probe_state[id], cfg, err, errlen) < 0) {
			pyscan_engine__destroy(e);
			return NULL;
		}
		e->initialised |= PYSCAN_PROBE_BIT(id);
		e->modules[e->n_modules] = ops;
		e->module_ids[e->n_modules++] = (uint8_t)id;
		const uint32_t frame_len = ops->frame_len ? ops->frame_len(e->probe_state[id]) :
							     ops->max_frame_len;
		if (frame_len > e->max_frame_len)
			e->max_frame_len = frame_len;
	}
	e->probe = e->modules[0];
	/* One family per scan: a module of the other family would fill from the wrong set. */
	for (uint32_t m = 0; m < e->n_modules; m++)
		if ((int)pyscan_probe__family(e->module_ids[m]) != family)
			FAIL("probe %s is not for IPv%d targets (one family per scan: pick the "
			     "module of the targets' family)", e->modules[m]->name, family);

	/* --max-targets: only permutation inputs below the cap are walked (engine.h). */
	const uint64_t total = cfg->max_probes && cfg->max_probes < e->targets.total
		? cfg->max_probes : e->targets.total;
	const uint64_t S = cfg->shard_count, T = cfg->tx_threads;
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

	e->passes = cfg->retries + 1;
	e->schedule_block = retry_block(e);

	if (pyscan_results__init(&e->results, e->cfg.max_results, &e->targets) < 0)
		FAIL("out of memory for a results ring of %u entries", e->cfg.max_results);
	if (err && errlen)
		err[0] = '\0';
	return e;
}

void pyscan_engine__destroy(pyscan_engine *e)
{
	if (!e)
		return;
	/* Threads still inside (a TX loop, the RX loop, a drain) are told to stop and leave
	 * within a batch, a wait slice or a flush; only then does the memory go. */
	__atomic_store_n(&e->closing, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&e->stop_tx, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&e->stop_rx, 1, __ATOMIC_RELAXED);
	while (__atomic_load_n(&e->users, __ATOMIC_SEQ_CST)) {
		const struct timespec pause = {0, 1000000};
		nanosleep(&pause, NULL);
	}
	for (uint32_t id = 0; id < PYSCAN_PROBE_COUNT; id++)
		if ((e->initialised & PYSCAN_PROBE_BIT(id)) && pyscan_probe__ops(id)->fini)
			pyscan_probe__ops(id)->fini(e->probe_state[id]);
	pyscan_targetset__free(&e->targets);
	pyscan_results__free(&e->results);
	free(e);
}

uint64_t pyscan_engine__thread_total(const pyscan_engine *e, uint32_t thread_index)
{
	if (!e || thread_index >= e->cfg.tx_threads)
		return 0;
	return e->tx[thread_index].total;
}

/* How many of thread_index's targets from its k_first-th on there are, at most n (0 past its
 * end), and in *first_index the target index of the first of them. */
static uint32_t thread_window(const pyscan_engine *e, uint32_t thread_index, uint64_t k_first,
			      uint32_t n, uint64_t *first_index)
{
	const uint64_t total = e->tx[thread_index].total;

	*first_index = pyscan_engine__first_index(e, thread_index) + k_first * e->stride;
	if (k_first >= total)
		return 0;
	return n > total - k_first ? (uint32_t)(total - k_first) : n;
}

uint32_t pyscan_engine__targets(const pyscan_engine *e, uint32_t thread_index, uint64_t k_first,
				uint32_t n, uint32_t *ip_out, uint16_t *port_out)
{
	if (!e || !ip_out || !port_out || thread_index >= e->cfg.tx_threads || e->targets.first6)
		return 0;
	uint64_t index;
	n = thread_window(e, thread_index, k_first, n, &index);
	for (uint32_t j = 0; j < n; j++, index += e->stride)
		pyscan_probe__target(&e->env, index, &ip_out[j], &port_out[j]);
	return n;
}

uint32_t pyscan_engine__targets6(const pyscan_engine *e, uint32_t thread_index,
				 uint64_t k_first, uint32_t n, uint8_t *addr_out, uint16_t *port_out)
{
	if (!e || !addr_out || !port_out || thread_index >= e->cfg.tx_threads ||
	    !e->targets.first6)
		return 0;
	uint64_t index;
	n = thread_window(e, thread_index, k_first, n, &index);
	for (uint32_t j = 0; j < n; j++, index += e->stride)
		pyscan_probe__target6(&e->env, index, addr_out + 16 * (size_t)j, &port_out[j]);
	return n;
}

int pyscan_engine__seek(pyscan_engine *e, uint32_t thread_index, uint64_t position)
{
	if (!e || thread_index >= e->cfg.tx_threads)
		return -EINVAL;
	struct pyscan_engine_tx_state *st = &e->tx[thread_index];
	if (position > st->total * e->passes)
		return -ERANGE;
	if (__atomic_exchange_n(&st->running, 1, __ATOMIC_ACQ_REL))
		return -EBUSY;
	__atomic_store_n(&st->generated, position, __ATOMIC_RELAXED);
	__atomic_store_n(&st->running, 0, __ATOMIC_RELEASE);
	return 0;
}

uint32_t pyscan_engine__schedule(const pyscan_engine *e, uint32_t thread_index,
				 uint64_t position, uint32_t n, uint64_t *k_out, uint32_t *pass_out)
{
	if (!e || !k_out || !pass_out || thread_index >= e->cfg.tx_threads)
		return 0;
	struct pyscan_schedule s;
	struct pyscan_schedule_chunk c;
	uint64_t offset;
	pyscan_engine__lane_schedule(e, thread_index, &s);
	if (!pyscan_schedule__seek(&s, position, &c, &offset))
		return 0;
	uint32_t j = 0;
	while (j < n) {
		k_out[j] = c.k_first + offset;
		pass_out[j] = c.pass;
		j++;
		if (++offset == c.len) {
			offset = 0;
			if (!pyscan_schedule__next(&s, &c))
				break;
		}
	}
	return j;
}

uint32_t pyscan_engine__drain(pyscan_engine *e, struct pyscan_result *out, uint32_t max)
{
	if (!e || !out || pyscan_engine__enter(e) < 0)
		return 0;
	const uint32_t n = pyscan_results__drain(&e->results, out, max,
						 __atomic_load_n(&e->rx_running, __ATOMIC_ACQUIRE));
	pyscan_engine__leave(e);
	return n;
}

void pyscan_engine__stats(pyscan_engine *e, struct pyscan_engine_stats *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (!e || pyscan_engine__enter(e) < 0)
		return;
	out->tx_threads = e->cfg.tx_threads;
	out->passes = e->passes;
	for (uint32_t t = 0; t < e->cfg.tx_threads; t++) {
		const struct pyscan_engine_tx_state *st = &e->tx[t];
		out->total_targets += st->total;
		out->total_frames += st->total * e->passes;
		out->thread_generated[t] = load_relaxed(&st->generated);
		out->thread_sent[t] = load_relaxed(&st->sent);
		out->generated += out->thread_generated[t];
		out->sent += out->thread_sent[t];
		out->tx_errors += load_relaxed(&st->errors);
		out->tx_retries += load_relaxed(&st->retries);
	}
	out->tx_threads_done = load_relaxed(&e->threads_done);
	out->tx_stopped = (uint64_t)__atomic_load_n(&e->stop_tx, __ATOMIC_RELAXED);
	const struct pyscan_engine_rx_counters *c = &e->rx;
	out->rx_frames = load_relaxed(&c->frames);
	out->rx_malformed = load_relaxed(&c->malformed);
	out->rx_not_ours = load_relaxed(&c->not_ours);
	out->rx_ours = load_relaxed(&c->ours);
	out->rx_ignored_flags = load_relaxed(&c->ignored_flags);
	out->rx_invalid_cookie = load_relaxed(&c->invalid_cookie);
	out->rx_open = load_relaxed(&c->open);
	out->rx_closed = load_relaxed(&c->closed);
	out->rx_unreachable = load_relaxed(&c->unreachable);
	out->rx_duplicates = load_relaxed(&c->duplicates);
	out->results_full_waits = load_relaxed(&e->results.full_waits);
	out->results_lost = load_relaxed(&e->results.lost);
	out->rx_bad_checksum = load_relaxed(&c->bad_checksum);
	out->results_pending = pyscan_results__pending(&e->results);
	out->dedup_bytes = load_relaxed(&e->results.seen.bytes);
	out->dedup_max_insert_ns = load_relaxed(&e->results.seen.max_insert_ns);
	pyscan_engine__leave(e);
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

void pyscan_engine__set_capture(pyscan_engine *e, pyscan_capture *capture)
{
	if (e)
		e->capture = capture;
}

void pyscan_engine__set_arp_responder(pyscan_engine *e, pyscan_arp_responder *arp)
{
	if (e)
		e->arp = arp;
}

void pyscan_engine__set_snippets(pyscan_engine *e, pyscan_capture *snippets)
{
	if (e)
		e->snippets = snippets;
}
