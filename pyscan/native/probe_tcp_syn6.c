/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe_tcp_syn6.c - probe module "tcp-syn6": a TCP SYN over IPv6 shaped by the scan's TCP
 * option profile (template6.h), classified open on SYN-ACK and closed on RST+ACK, exactly as
 * "tcp-syn" does over IPv4 (probe_tcp_syn4.c). Users say --probe tcp-syn: pyscan/probes
 * picks this module when the targets are IPv6. Its XDP twin is ../bpf/probe_tcp_syn6.h.
 *
 * Cookie: the SYN's sequence number is the low 32 bits of SipHash(key, saddr | daddr | sport
 * | dport) over the 16-byte addresses (cookie.h, pyscan_cookie6); a reply is ours only if it
 * acknowledges that + 1, recomputed from its tuple reversed. The source port comes from
 * pyscan_probe__source_port() (its spare bits are unused: IPv6 has no IP ID). Timestamp
 * values and RTT as in probe_tcp_syn4.c (tcp_reply.h). An ICMPv6 destination unreachable
 * (type 1) quoting one of our SYNs is `unreachable` with its code, when the quoted sequence
 * number is the cookie of the quoted tuple and the quoted destination is a target (the IPv4
 * module's rule, branch unreach).
 *
 * Invariant: the probe contract of probe.h; frames are the template's frame_len bytes, fill
 * writes PYSCAN_SYN6_COPY_LEN bytes (max_frame_len); only IPv6 target sets.
 */
#include <string.h>

#include "probe.h"
#include "reply_parse.h"
#include "reply_quote6.h"
#include "tcp_reply.h"
#include "template6.h"


_Static_assert(sizeof(struct pyscan_syn6_template) <= PYSCAN_PROBE_STATE_MAX,
	       "the IPv6 SYN template fits the engine's probe state");

static int syn6_init(void *state, const struct pyscan_engine_config *cfg, char *err,
		     size_t errlen)
{
	if (pyscan_template6__init(state, cfg->source_mac, cfg->gateway_mac, cfg->source_ip6,
				   cfg->tcp_options, cfg->ttl, cfg->mss, cfg->window) < 0) {
		pyscan_template__unknown_profile(err, errlen, cfg->tcp_options);
		return -1;
	}
	return 0;
}

static void syn6_fill_batch(const void *state, const struct pyscan_probe_env *shared_env,
			    struct pyscan_tx_slot *slots, uint32_t n, uint64_t index,
			    uint64_t stride)
{
	PYSCAN_PROBE_FILL_PROLOGUE(struct pyscan_syn6_template, syn, state, shared_env, n, index,
				   stride);
	const struct pyscan_cookie_addr6 src = pyscan_cookie_addr6__load(env->source_ip6);
	const uint32_t now_us = syn.tsval_offset ? pyscan_tcp_reply__clock_us() : 0;
	for (uint32_t j = 0; j < n; j++) {
		uint8_t daddr[16];
		uint16_t port_host, spare;
		const uint64_t target = batch_targets[j];
		pyscan_targetset__at6(&targets, target, daddr, &port_host);
		const uint16_t sport = pyscan_probe__source_port(env, target, &spare);
		const uint16_t sport_be = __builtin_bswap16(sport);
		const uint16_t dport_be = __builtin_bswap16(port_host);
		const uint32_t seq = pyscan_cookie6(&env->key, src,
						    pyscan_cookie_addr6__load(daddr), sport_be,
						    dport_be);
		const uint32_t tsval = syn.tsval_offset ?
			now_us + pyscan_tcp_reply__ts_offset(env, seq) : 0;
		slots[j].len = pyscan_template6__fill(&syn, slots[j].data, daddr, sport_be,
						      dport_be, seq, tsval);
	}
}

/* An ICMPv6 destination unreachable quoting one of our SYNs (RFC 4443 3.1: as much of the
 * invoking packet as fits, so at least its IPv6 header and 8 TCP bytes: ports and sequence
 * number). Anything that does not quote a TCP segment from us, from one of our source
 * ports, to a target of the set, is another module's or nobody's (NOT_OURS, probe.h). */
static int classify_unreachable6(const struct pyscan_probe_env *env,
				 const struct pyscan_reply_view *r, struct pyscan_result *out)
{
	struct pyscan_reply_quote6 q;
	if (pyscan_reply__unreachable_quote6(r, &q) < 0)
		return PYSCAN_INGEST_NOT_OURS; /* cannot tell whose probe it quotes */
	if (q.next_header != PYSCAN_IPPROTO_TCP || memcmp(q.saddr, env->source_ip6, 16) != 0 ||
	    !pyscan_probe__in_source_range(env, q.sport) ||
	    pyscan_targetset__ip_number6(env->targets, q.daddr) < 0)
		return PYSCAN_INGEST_NOT_OURS;
	const uint32_t cookie = pyscan_cookie6(&env->key, pyscan_cookie_addr6__load(q.saddr),
					       pyscan_cookie_addr6__load(q.daddr),
					       __builtin_bswap16(q.sport),
					       __builtin_bswap16(q.dport));
	if (pyscan_tcp_reply__quoted_seq(q.l4) != cookie)
		return PYSCAN_INGEST_INVALID_COOKIE;
	return pyscan_tcp_reply__unreachable(r, q.daddr, 16, q.dport, out);
}

static int syn6_classify(const void *state, const struct pyscan_probe_env *env,
			 const struct pyscan_reply_view *r, struct pyscan_result *out)
{
	if (r->family != 6 || memcmp(r->daddr, env->source_ip6, 16) != 0)
		return PYSCAN_INGEST_NOT_OURS;
	if (r->l4_proto == PYSCAN_IPPROTO_ICMPV6)
		return classify_unreachable6(env, r, out);
	if (r->l4_proto != PYSCAN_IPPROTO_TCP)
		return PYSCAN_INGEST_NOT_OURS;
	uint8_t status;
	const int verdict = pyscan_tcp_reply__status(env, r, &status);
	if (verdict)
		return verdict;

	/* The reply's tuple reversed is the probe's. */
	const uint32_t cookie = pyscan_cookie6(&env->key, pyscan_cookie_addr6__load(r->daddr),
					       pyscan_cookie_addr6__load(r->saddr),
					       __builtin_bswap16(r->dport),
					       __builtin_bswap16(r->sport));
	const struct pyscan_syn6_template *syn = state;
	return pyscan_tcp_reply__result(env, r, cookie, status, syn->tsval_offset != 0, out);
}

const struct pyscan_probe_ops pyscan_probe_tcp_syn6 = {
	.name = "tcp-syn6",
	.max_frame_len = PYSCAN_SYN6_COPY_LEN,
	.init = syn6_init,
	.fill_batch = syn6_fill_batch,
	.classify = syn6_classify,
	.family = 6,
};
