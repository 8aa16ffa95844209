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
 *    engine) and sets slots[j].len. It is called once per batch (n <= PYSCAN_ENGINE_MAX_BATCH)
 *    through the table, so the per-probe work is inlined inside the module; it starts with
 *    PYSCAN_PROBE_FILL_PROLOGUE (below), which maps input indices to targets as
 *    pyscan_probe__target() does (the batch through pyscan_permute__at_many, then
 *    pyscan_targetset__at per probe), and picks the source port with
 *    pyscan_probe__source_port(), so every module visits targets in the same order and -sL
 *    (pyscan_engine__targets) agrees.
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
 *  - frame_len (optional) is the longest frame this scan's fill_batch writes, known after
 *    init; without it the engine assumes max_frame_len.
 *  - fini (optional) frees what init allocated outside state (the UDP payload table); it
 *    runs once at engine destroy, after every fill_batch and classify returned.
 *
 * A scan enables a set of modules: each target-set port entry names its module
 * (pyscan_targetset__probe_at). init() sees the caller's config (its ports and port_probes
 * are valid during init only) and fill_batch is only called for inputs whose entry is the
 * module's own. classify() is asked for every reply by each enabled module in id order until
 * one returns something other than NOT_OURS, so a module must say NOT_OURS to anything it
 * did not send - an ICMP error quoting another module's probe included. out->l4_proto is
 * the protocol of the probe the result is about (TCP 6, UDP 17, ICMP 1), not of the reply.
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
	uint8_t family;                       /* 4 or 6: the target set's family */
	uint8_t reserved[5];
	uint8_t source_ip6[16];               /* IPv6 scans: the scanner's address, network order */
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
	void (*fini)(void *state);
	/* optional: this scan's longest frame after init (<= max_frame_len), so a driver with
	 * small slots (xdp-live) can run a UDP scan whose payloads are short */
	uint32_t (*frame_len)(const void *state);
	/* the address family of the targets it probes: 6 for IPv6 modules, 0 (= 4) otherwise;
	 * a scan is one family, so the engine refuses a module of the other one */
	uint32_t family;
};

/* UDP payloads reach the udp module as engine config probe_args: records of this header
 * followed by len bytes, one record per UDP port that has a payload (built by Python from
 * pyscan/probes/udp_payloads.py and --udp-payload-file). */
#define PYSCAN_UDP_PAYLOAD_DNS 1   /* bytes 0..1 are a DNS transaction id: the module sets it */
#define PYSCAN_UDP_PAYLOAD_MAX 512
struct pyscan_udp_payload_record {
	uint16_t port;  /* host order */
	uint16_t len;   /* <= PYSCAN_UDP_PAYLOAD_MAX */
	uint8_t flags;  /* PYSCAN_UDP_PAYLOAD_* */
	uint8_t reserved[3];
};
_Static_assert(sizeof(struct pyscan_udp_payload_record) == 8, "udp payload record layout");

/* One's complement sum of len bytes as 16-bit words in memory order (RFC 1071 2(B)): the
 * checksum helpers of the ICMP and UDP modules; an odd last byte is padded with zero. */
static inline uint64_t pyscan_probe__sum(const uint8_t *p, uint32_t len)
{
	uint64_t sum = 0;
	uint32_t i = 0;
	for (; i + 1 < len; i += 2) {
		uint16_t w;
		__builtin_memcpy(&w, p + i, 2);
		sum += w;
	}
	if (i < len) {
		uint8_t last[2] = {p[i], 0};
		uint16_t w;
		__builtin_memcpy(&w, last, 2);
		sum += w;
	}
	return sum;
}

static inline uint16_t pyscan_probe__fold(uint64_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* init() helpers of the modules that build their own frame (ICMP echo, UDP): the Ethernet
 * header from the config's MACs, and the TTL or hop limit (--ttl, else 64). */
#define PYSCAN_PROBE_ETHERTYPE_IPV4 0x0800
#define PYSCAN_PROBE_ETHERTYPE_IPV6 0x86dd
#define PYSCAN_PROBE_DEFAULT_TTL 64
static inline void pyscan_probe__write_ethernet(uint8_t *frame,
						const struct pyscan_engine_config *cfg,
						uint16_t ethertype)
{
	__builtin_memcpy(frame, cfg->gateway_mac, 6);
	__builtin_memcpy(frame + 6, cfg->source_mac, 6);
	frame[12] = (uint8_t)(ethertype >> 8);
	frame[13] = (uint8_t)ethertype;
}

static inline uint8_t pyscan_probe__ttl(const struct pyscan_engine_config *cfg)
{
	return cfg->ttl ? cfg->ttl : PYSCAN_PROBE_DEFAULT_TTL;
}

/* The module for id, or NULL when id is unknown. */
const struct pyscan_probe_ops *pyscan_probe__ops(uint32_t id);
/* For Python: the module's registry name, or NULL for an unknown id. */
const char *pyscan_probe__name(uint32_t id);
/* For Python: the id of the module called name, or -1. */
int pyscan_probe__by_name(const char *name);
uint32_t pyscan_probe__count(void);
/* For Python and the engine: 4 or 6, the family of the module's targets (0 for an unknown id). */
uint32_t pyscan_probe__family(uint32_t id);

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

/* pyscan_probe__target for IPv6 sets (addr_be: 16 bytes, network order). */
static inline uint64_t pyscan_probe__target6(const struct pyscan_probe_env *env,
					     uint64_t input_index, uint8_t addr_be[16],
					     uint16_t *port_host)
{
	const uint64_t target = pyscan_permute__at(env->permute, input_index);
	pyscan_targetset__at6(env->targets, target, addr_be, port_host);
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

/* 1 when port (host order) is one of the scan's source ports: a reply to any other port,
 * or a quote of a probe from one, is not ours. */
static inline int pyscan_probe__in_source_range(const struct pyscan_probe_env *env,
						uint16_t port)
{
	return port >= env->source_port_first &&
	       (uint32_t)(port - env->source_port_first) < env->source_port_count;
}

/* Permutes a batch in one pass (permute.h: the rounds of different probes overlap instead
 * of each frame waiting for its own chain of multiplies). Out of line on purpose: the
 * permutation pass and the module's frame loop then each get the registers to themselves
 * instead of spilling in one big function (measured with tcp-syn: 0.93x bare_gen against
 * 0.91x inline). */
static __attribute__((noinline, unused)) void pyscan_probe__permute_batch(
	const struct pyscan_permute *p, uint64_t first, uint64_t stride, uint64_t *out,
	uint32_t n)
{
	pyscan_permute__at_many(p, first, stride, out, n);
}

/* PYSCAN_PROBE_FILL_PROLOGUE - the start every module's fill_batch shares (IPv4 and IPv6
 * modules alike: a new probe_*.c begins its fill_batch with it).
 *
 *   static void my_fill_batch(const void *state, const struct pyscan_probe_env *shared_env,
 *                             struct pyscan_tx_slot *slots, uint32_t n, uint64_t index,
 *                             uint64_t stride)
 *   {
 *       PYSCAN_PROBE_FILL_PROLOGUE(struct my_state, s, state, shared_env, n, index, stride);
 *       for (uint32_t j = 0; j < n; j++) {
 *           uint32_t ip_host;
 *           uint16_t port_host;
 *           const uint64_t target = batch_targets[j];
 *           pyscan_targetset__at(&targets, target, &ip_host, &port_host);
 *           ... build slots[j] from s, env, target ...
 *       }
 *   }
 *
 * It declares, in the caller's frame (a macro, not a function, because that is the point):
 *   local_state    a copy of the module's state, of state_type;
 *   targets        a copy of the target set (const struct pyscan_targetset);
 *   env            const struct pyscan_probe_env *, a copy of shared_env whose permute and
 *                  targets point at local copies;
 *   batch_targets  uint64_t[n]: the target index of probe j (inputs index + j * stride),
 *                  the order pyscan_probe__target() defines.
 * Why copies: frame writes through uint8_t pointers may alias anything reachable through a
 * pointer, so the compiler would reload the template, key, permutation and target set after
 * every probe; locals whose address never leaves the function cannot be aliased. The copies
 * cost a few hundred bytes per batch, not per probe.
 * n must not exceed PYSCAN_ENGINE_MAX_BATCH (the engine's batch cap, engine.c); more traps
 * rather than overrun the local array. */
#define PYSCAN_PROBE_FILL_PROLOGUE(state_type, local_state, state, shared_env, n, index,      \
				   stride)                                                    \
	const state_type local_state = *(const state_type *)(state);                          \
	const struct pyscan_permute pyscan_fill_permute_ = *(shared_env)->permute;            \
	const struct pyscan_targetset targets = *(shared_env)->targets;                       \
	struct pyscan_probe_env pyscan_fill_env_ = *(shared_env);                             \
	pyscan_fill_env_.permute = &pyscan_fill_permute_;                                     \
	pyscan_fill_env_.targets = &targets;                                                  \
	const struct pyscan_probe_env *const env = &pyscan_fill_env_;                         \
	uint64_t batch_targets[PYSCAN_ENGINE_MAX_BATCH];                                      \
	if ((n) > PYSCAN_ENGINE_MAX_BATCH)                                                    \
		__builtin_trap();                                                             \
	pyscan_probe__permute_batch(&pyscan_fill_permute_, (index), (stride), batch_targets,  \
				    (n))

#endif /* PYSCAN_PROBE_H */
