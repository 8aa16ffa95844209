/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe_tcp_syn4.c - probe module "tcp-syn": a TCP SYN over IPv4 shaped by the scan's TCP
 * option profile (template.h), classified open on SYN-ACK and closed on RST+ACK whatever
 * options the reply carries. Its XDP twin is ../bpf/probe_tcp_syn4.h.
 *
 * Cookie: the SYN's sequence number is SipHash(key, saddr | daddr | sport | dport of the
 * probe); a reply is ours only if it acknowledges that + 1, recomputed from the reply's tuple
 * reversed. Source port and IP ID come from pyscan_probe__source_port(). An ICMP destination
 * unreachable quoting a SYN is `unreachable` (type and code kept) when the quoted sequence
 * number is the cookie of the quoted tuple (docs/probes.md says what that check is worth).
 *
 * Timestamps and RTT: in profiles with a timestamp option its value is the send time in
 * microseconds (CLOCK_MONOTONIC, read once per batch) plus a per-connection offset, a keyed
 * mix of the cookie (so values look random per connection, as Linux's do since 4.10, and
 * microsecond ticks as with Linux's tcp_usec_ts). A reply echoes it; classify() subtracts the
 * offset, recomputed from the reply's tuple, and the receive time: the RTT of the very probe
 * that was answered, retries included. The echo is never part of validation, so the cookie
 * keeps its 32 bits; a forged echo can only make a reported RTT wrong. Apart from that value
 * a probe is a pure function of its index (the same frame for every retry of a pair).
 *
 * Invariant: the probe contract of probe.h; frames are the template's frame_len bytes, and
 * fill writes PYSCAN_SYN_COPY_LEN bytes (max_frame_len).
 */
#include <string.h>

#include "probe.h"
#include "reply_parse.h"
#include "tcp_reply.h"
#include "template.h"

_Static_assert(sizeof(struct pyscan_syn_template) <= PYSCAN_PROBE_STATE_MAX,
	       "the SYN template fits the engine's probe state");

static int syn4_init(void *state, const struct pyscan_engine_config *cfg, char *err,
		     size_t errlen)
{
	if (pyscan_template__init(state, cfg->source_mac, cfg->gateway_mac, cfg->source_ip_be,
				  cfg->tcp_options, cfg->ttl, cfg->mss, cfg->window) < 0) {
		pyscan_template__unknown_profile(err, errlen, cfg->tcp_options);
		return -1;
	}
	return 0;
}

/* The frame loop, specialised by the caller on whether the profile carries a timestamp
 * (with_timestamp constant): the profiles without one (the benchmark's mss, windows, none)
 * then run a loop with no timestamp branch or clock-derived value at all. */
static inline __attribute__((always_inline)) void syn4_fill_frames(
	const struct pyscan_syn_template *syn, const struct pyscan_probe_env *env,
	const struct pyscan_targetset *targets, const uint64_t *batch_targets,
	struct pyscan_tx_slot *slots, uint32_t n, uint32_t now_us, const int with_timestamp)
{
	for (uint32_t j = 0; j < n; j++) {
		uint32_t ip_host;
		uint16_t port_host, ip_id;
		const uint64_t target = batch_targets[j];
		pyscan_targetset__at(targets, target, &ip_host, &port_host);
		const uint16_t sport = pyscan_probe__source_port(env, target, &ip_id);
		const uint32_t daddr_be = __builtin_bswap32(ip_host);
		const uint16_t sport_be = __builtin_bswap16(sport);
		const uint16_t dport_be = __builtin_bswap16(port_host);
		const uint32_t seq = pyscan_cookie(&env->key, env->source_ip_be, daddr_be, sport_be,
						   dport_be);
		const uint32_t tsval = with_timestamp ? now_us + pyscan_tcp_reply__ts_offset(env, seq) : 0;
		slots[j].len = pyscan_template__fill_as(syn, slots[j].data, daddr_be, sport_be,
							dport_be, seq, ip_id, tsval, with_timestamp);
	}
}

static void syn4_fill_batch(const void *state, const struct pyscan_probe_env *shared_env,
			    struct pyscan_tx_slot *slots, uint32_t n, uint64_t index,
			    uint64_t stride)
{
	PYSCAN_PROBE_FILL_PROLOGUE(struct pyscan_syn_template, syn, state, shared_env, n, index,
				   stride);
	if (syn.tsval_offset)
		syn4_fill_frames(&syn, env, &targets, batch_targets, slots, n,
				 pyscan_tcp_reply__clock_us(), 1);
	else
		syn4_fill_frames(&syn, env, &targets, batch_targets, slots, n, 0, 0);
}

/* An ICMP destination unreachable quoting one of our SYNs: the quote's first 8 TCP bytes
 * hold both ports and the sequence number, which is the cookie of the quoted tuple, so the
 * same 32 bits validate it as a SYN-ACK's acknowledgment does. Anything that is not a quote
 * of a TCP segment from us to a target in the set, from one of our source ports, is another
 * module's or nobody's (NOT_OURS, probe.h). */
static int classify_unreachable(const struct pyscan_probe_env *env,
				const struct pyscan_reply_view *r, struct pyscan_result *out)
{
	struct pyscan_reply_quote4 q;
	if (pyscan_reply__unreachable_quote4(r, &q) < 0)
		return PYSCAN_INGEST_NOT_OURS; /* cannot tell whose probe it quotes */
	if (q.protocol != PYSCAN_IPPROTO_TCP || q.saddr_be != env->source_ip_be ||
	    !pyscan_probe__in_source_range(env, q.sport) ||
	    pyscan_targetset__ip_number(env->targets, __builtin_bswap32(q.daddr_be)) < 0)
		return PYSCAN_INGEST_NOT_OURS;
	const uint32_t cookie = pyscan_cookie(&env->key, q.saddr_be, q.daddr_be,
					      __builtin_bswap16(q.sport),
					      __builtin_bswap16(q.dport));
	if (pyscan_tcp_reply__quoted_seq(q.l4) != cookie)
		return PYSCAN_INGEST_INVALID_COOKIE;
	return pyscan_tcp_reply__unreachable(r, &q.daddr_be, 4, q.dport, out);
}

static int syn4_classify(const void *state, const struct pyscan_probe_env *env,
			 const struct pyscan_reply_view *r, struct pyscan_result *out)
{
	if (r->family != 4 || r->daddr4_be != env->source_ip_be)
		return PYSCAN_INGEST_NOT_OURS;
	if (r->l4_proto == PYSCAN_IPPROTO_ICMP)
		return classify_unreachable(env, r, out);
	if (r->l4_proto != PYSCAN_IPPROTO_TCP)
		return PYSCAN_INGEST_NOT_OURS;
	uint8_t status;
	const int verdict = pyscan_tcp_reply__status(env, r, &status);
	if (verdict)
		return verdict;

	/* The reply's tuple reversed is the probe's. */
	const uint32_t cookie = pyscan_cookie(&env->key, r->daddr4_be, r->saddr4_be,
					      __builtin_bswap16(r->dport),
					      __builtin_bswap16(r->sport));
	const struct pyscan_syn_template *syn = state;
	return pyscan_tcp_reply__result(env, r, cookie, status, syn->tsval_offset != 0, out);
}

const struct pyscan_probe_ops pyscan_probe_tcp_syn4 = {
	.name = "tcp-syn",
	.max_frame_len = PYSCAN_SYN_COPY_LEN,
	.init = syn4_init,
	.fill_batch = syn4_fill_batch,
	.classify = syn4_classify,
};
