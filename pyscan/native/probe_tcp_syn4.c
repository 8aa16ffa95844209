/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe_tcp_syn4.c - probe module "tcp-syn": a TCP SYN with one MSS option over IPv4
 * (template.h), classified open on SYN-ACK and closed on RST+ACK. Its XDP twin is
 * ../bpf/probe_tcp_syn4.h.
 *
 * Cookie: the SYN's sequence number is SipHash(key, saddr | daddr | sport | dport of the
 * probe); a reply is ours only if it acknowledges that + 1, recomputed from the reply's tuple
 * reversed. Source port and IP ID come from pyscan_probe__source_port().
 *
 * Invariant: the probe contract of probe.h; frames are PYSCAN_SYN_FRAME_LEN bytes.
 */
#include <string.h>

#include "probe.h"
#include "reply_parse.h"
#include "template.h"

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10
#define TCP_MIN_DOFF 5

_Static_assert(sizeof(struct pyscan_syn_template) <= PYSCAN_PROBE_STATE_MAX,
	       "the SYN template fits the engine's probe state");

static int syn4_init(void *state, const struct pyscan_engine_config *cfg, char *err,
		     size_t errlen)
{
	pyscan_template__init(state, cfg->source_mac, cfg->gateway_mac, cfg->source_ip_be,
			      cfg->ttl, cfg->mss, cfg->window);
	return 0;
}

/* Out of line on purpose: the permutation pass and the frame loop then each get the
 * registers to themselves instead of spilling in one big function (measured: 0.93x bare_gen
 * against 0.91x inline, 6 interleaved runs each, noisy machine). */
static __attribute__((noinline)) void permute_chunk(const struct pyscan_permute *p,
						    uint64_t first, uint64_t stride,
						    uint64_t *out, uint32_t n)
{
	pyscan_permute__at_many(p, first, stride, out, n);
}

static void syn4_fill_batch(const void *state, const struct pyscan_probe_env *shared_env,
			    struct pyscan_tx_slot *slots, uint32_t n, uint64_t index,
			    uint64_t stride)
{
	/* Local copies: frame writes through uint8_t pointers may alias anything reachable
	 * through a pointer, which would make the compiler reload the template, key and
	 * permutation after every probe; locals whose address stays here cannot be aliased. */
	const struct pyscan_syn_template template = *(const struct pyscan_syn_template *)state;
	const struct pyscan_permute permute = *shared_env->permute;
	const struct pyscan_targetset targets = *shared_env->targets;
	struct pyscan_probe_env local_env = *shared_env;
	local_env.permute = &permute;
	local_env.targets = &targets;
	const struct pyscan_probe_env *env = &local_env;
	const struct pyscan_syn_template *syn = &template;

	/* Each chunk's permutation first, as one pass (permute.h): the rounds of different
	 * probes overlap instead of each frame waiting for its own chain of multiplies. The
	 * engine's batches fit one chunk. */
	uint64_t chunk_targets[PYSCAN_ENGINE_MAX_BATCH];
	for (uint32_t first = 0; first < n; first += PYSCAN_ENGINE_MAX_BATCH) {
		const uint32_t chunk = n - first < PYSCAN_ENGINE_MAX_BATCH ?
			n - first : PYSCAN_ENGINE_MAX_BATCH;
		permute_chunk(&permute, index + first * stride, stride, chunk_targets, chunk);
		for (uint32_t j = 0; j < chunk; j++) {
			uint32_t ip_host;
			uint16_t port_host, ip_id;
			const uint64_t target = chunk_targets[j];
			pyscan_targetset__at(&targets, target, &ip_host, &port_host);
			const uint16_t sport = pyscan_probe__source_port(env, target, &ip_id);
			const uint32_t daddr_be = __builtin_bswap32(ip_host);
			const uint16_t sport_be = __builtin_bswap16(sport);
			const uint16_t dport_be = __builtin_bswap16(port_host);
			const uint32_t seq = pyscan_cookie(&env->key, env->source_ip_be, daddr_be,
							   sport_be, dport_be);
			struct pyscan_tx_slot *slot = &slots[first + j];
			slot->len = pyscan_template__fill(syn, slot->data, daddr_be, sport_be,
							  dport_be, seq, ip_id);
		}
	}
}

static int syn4_classify(const void *state, const struct pyscan_probe_env *env,
			 const struct pyscan_reply_view *r, struct pyscan_result *out)
{
	if (r->family != 4 || r->l4_proto != PYSCAN_IPPROTO_TCP ||
	    r->daddr4_be != env->source_ip_be)
		return PYSCAN_INGEST_NOT_OURS;
	if (!r->l4_complete)
		return PYSCAN_INGEST_MALFORMED;
	if (r->dport < env->source_port_first ||
	    (uint32_t)(r->dport - env->source_port_first) >= env->source_port_count)
		return PYSCAN_INGEST_NOT_OURS;
	if (r->tcp_doff < TCP_MIN_DOFF)
		return PYSCAN_INGEST_MALFORMED;

	const uint8_t flags = r->tcp_flags;
	uint8_t status;
	if ((flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) == (TCP_SYN | TCP_ACK))
		status = PYSCAN_RESULT_OPEN;
	else if ((flags & (TCP_RST | TCP_ACK | TCP_SYN)) == (TCP_RST | TCP_ACK))
		status = PYSCAN_RESULT_CLOSED;
	else
		return PYSCAN_INGEST_IGNORED_FLAGS;

	/* The reply's tuple reversed is the probe's. */
	const uint32_t cookie = pyscan_cookie(&env->key, r->daddr4_be, r->saddr4_be,
					      __builtin_bswap16(r->dport),
					      __builtin_bswap16(r->sport));
	if (r->tcp_ack - 1 != cookie)
		return PYSCAN_INGEST_INVALID_COOKIE;

	memcpy(out->addr, r->saddr, sizeof(out->addr));
	out->port = r->sport;
	out->status = status;
	out->ttl = r->ttl;
	out->family = 4;
	out->l4_proto = PYSCAN_IPPROTO_TCP;
	return status == PYSCAN_RESULT_OPEN ? PYSCAN_INGEST_OPEN : PYSCAN_INGEST_CLOSED;
}

const struct pyscan_probe_ops pyscan_probe_tcp_syn4 = {
	.name = "tcp-syn",
	.max_frame_len = PYSCAN_SYN_FRAME_LEN,
	.init = syn4_init,
	.fill_batch = syn4_fill_batch,
	.classify = syn4_classify,
};
