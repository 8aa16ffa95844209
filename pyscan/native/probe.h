/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe.h - the probe-module seam: what a probe type (TCP SYN over IPv4 today; ICMP echo, UDP,
 * IPv6 later) provides to the engine, as a table of functions chosen per scan by probe id.
 *
 * Contract of struct pyscan_probe_ops (every module obeys all of it):
 *  - init() runs once per engine, from the engine config, before any other call. It builds
 *    the module's template into `state` (PYSCAN_PROBE_STATE_MAX bytes, 64-byte aligned, zeroed)
 *    and may refuse the config with one line in err (then the engine is not created). After
 *    init, state is read-only: fill_batch() and classify() run concurrently from any thread.
 *  - fill_batch() writes n whole frames, the probes for permutation inputs first_index,
 *    first_index + stride, ... into slots[j].data (capacity >= max_frame_len, checked by the
 *    engine) and sets slots[j].len. It is called once per batch through the table, so the
 *    per-probe work is inlined inside the module; it maps input indices to targets as
 *    pyscan_probe__target() does (a batch: pyscan_permute__at_many, then
 *    pyscan_targetset__at) and picks the source port with pyscan_probe__source_port(), so
 *    every module visits targets in the same order and -sL (pyscan_engine__targets) agrees.
 *    It must be a pure function of (state, env, index): the same probe on every call,
 *    except for a value that carries the send time (a TCP timestamp option: RTT).
 *  - The probe carries a stateless cookie: a SipHash (../bpf/cookie.h) of the probe's tuple
 *    with the per-scan key env->key, placed where the reply must echo it (TCP: the sequence
 *    number, acknowledged + 1). IPv6 modules hash 16-byte addresses with the same key.
 *  - classify() looks at one parsed reply (reply_parse.h; every pointer and length in the
 *    view is already bounded by the captured frame) and returns one PYSCAN_INGEST_* code:
 *    NOT_OURS (another protocol, address or port range), MALFORMED (ours by address but its
 *    L4 header is cut short or impossible), IGNORED_FLAGS, INVALID_COOKIE, or OPEN/CLOSED
 *    after filling *out (everything but timestamp_ns, which the engine stamps). It never
 *    allocates, never keeps the view, and decides from the reply alone (no per-probe state).
 *  - max_frame_len bounds every frame fill_batch writes; name is the registry name that
 *    pyscan/probes uses for the same id.
 *
 * Invariant: pyscan_probe__ops(id) is non-NULL exactly for 0 <= id < PYSCAN_PROBE_COUNT, and
 * the table row at index id has that id (probe_ids.h is the only list of ids).
 */
#ifndef PYSCAN_PROBE_H
#define PYSCAN_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "../bpf/cookie.h"
#include "../bpf/probe_ids.h"
#include "engine.h"
#include "permute.h"
#include "ring.h"
#include "targetset.h"

#define PYSCAN_PROBE_STATE_MAX 256

struct pyscan_reply_view;

/* What every module reads from the engine while it fills or classifies (read-only). */
struct pyscan_probe_env {
	struct pyscan_cookie_key key;         /* per-scan SipHash key */
	const struct pyscan_permute *permute; /* input index -> target index */
	const struct pyscan_targetset *targets; /* target index -> (address, port) */
	uint64_t sport_key;                   /* keys the source-port choice */
	uint32_t source_ip_be;                /* the scanner's IPv4 address, network order */
	uint32_t source_port_count;           /* 1..65536 - first */
	uint16_t source_port_first;           /* host order */
};

struct pyscan_probe_ops {
	const char *name;
	uint32_t max_frame_len;
	int (*init)(void *state, const struct pyscan_engine_config *cfg, char *err, size_t errlen);
	void (*fill_batch)(const void *state, const struct pyscan_probe_env *env,
			   struct pyscan_tx_slot *slots, uint32_t n, uint64_t first_index,
			   uint64_t stride);
	int (*classify)(const void *state, const struct pyscan_probe_env *env,
			const struct pyscan_reply_view *reply, struct pyscan_result *out);
};

/* The module for id, or NULL when id is unknown. */
const struct pyscan_probe_ops *pyscan_probe__ops(uint32_t id);
/* For Python: the module's registry name, or NULL for an unknown id. */
const char *pyscan_probe__name(uint32_t id);
/* For Python: the id of the module called name, or -1. */
int pyscan_probe__by_name(const char *name);
uint32_t pyscan_probe__count(void);

static inline uint64_t pyscan_probe__mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* The target of permutation input index: its index in the target set (keys per-target
 * choices), address and port in host order. The one place the visiting order is defined. */
static inline uint64_t pyscan_probe__target(const struct pyscan_probe_env *env,
					    uint64_t input_index, uint32_t *ip_host,
					    uint16_t *port_host)
{
	const uint64_t target = pyscan_permute__at(env->permute, input_index);
	pyscan_targetset__at(env->targets, target, ip_host, port_host);
	return target;
}

/* Source port (host order) and 16 spare bits (IP ID) from a keyed mix of the target index:
 * cheap, spread over the range, and the same for a target however the scan is sharded. */
static inline uint16_t pyscan_probe__source_port(const struct pyscan_probe_env *env,
						 uint64_t target, uint16_t *spare)
{
	const uint64_t h = pyscan_probe__mix64(target ^ env->sport_key);
	*spare = (uint16_t)(h >> 8);
	return (uint16_t)(env->source_port_first + (((h >> 32) * env->source_port_count) >> 32));
}

#endif /* PYSCAN_PROBE_H */
