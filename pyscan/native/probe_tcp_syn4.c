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
#include <stdio.h>
#include <string.h>

#include "probe.h"
#include "ratelimit.h"
#include "reply_parse.h"
#include "template.h"

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10
#define TCP_MIN_DOFF 5

_Static_assert(sizeof(struct pyscan_syn_template) <= PYSCAN_PROBE_STATE_MAX,
	       "the SYN template fits the engine's probe state");

/* The timestamp clock: CLOCK_MONOTONIC microseconds, modulo 2^32 (wraps every 71 minutes;
 * differences stay right for any RTT below that). */
static inline uint32_t clock_us(void)
{
	return (uint32_t)(pyscan_clock__now_ns() / 1000);
}

/* Per-connection offset of the timestamp value, from the probe's cookie. */
static inline uint32_t timestamp_offset(const struct pyscan_probe_env *env, uint32_t cookie)
{
	return (uint32_t)pyscan_probe__mix64(cookie ^ env->sport_key);
}

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOPT_WSCALE 3
#define TCPOPT_SACK_OK 4
#define TCPOPT_TIMESTAMP 8
#define TCP_HEADER_LEN 20

static inline uint16_t get_be16(const uint8_t *at)
{
	return (uint16_t)(at[0] << 8 | at[1]);
}

static inline uint32_t get_be32(const uint8_t *at)
{
	return (uint32_t)at[0] << 24 | (uint32_t)at[1] << 16 | (uint32_t)at[2] << 8 | at[3];
}

/* The reply's window and the options MSS, window scale, SACK-permitted and timestamps into
 * out. Reads only within the TCP header as both its data offset and the capture allow; a
 * malformed option list ends the walk (what was read before it stays). */
static void read_tcp_options(const struct pyscan_reply_view *r, struct pyscan_result *out)
{
	const uint8_t *tcp = r->l4;
	uint32_t end = (uint32_t)r->tcp_doff * 4;
	if (end > r->l4_len)
		end = r->l4_len;
	out->window = get_be16(tcp + 14);
	for (uint32_t at = TCP_HEADER_LEN; at < end;) {
		const uint8_t kind = tcp[at];
		if (kind == TCPOPT_EOL)
			break;
		if (kind == TCPOPT_NOP) {
			at++;
			continue;
		}
		if (at + 2 > end)
			break;
		const uint8_t len = tcp[at + 1];
		if (len < 2 || at + len > end)
			break;
		const uint8_t *value = tcp + at + 2;
		if (kind == TCPOPT_MSS && len == 4) {
			out->mss = get_be16(value);
			out->tcp_options |= PYSCAN_TCPOPT_MSS;
		} else if (kind == TCPOPT_WSCALE && len == 3) {
			out->wscale = value[0];
			out->tcp_options |= PYSCAN_TCPOPT_WSCALE;
		} else if (kind == TCPOPT_SACK_OK && len == 2) {
			out->tcp_options |= PYSCAN_TCPOPT_SACK_OK;
		} else if (kind == TCPOPT_TIMESTAMP && len == 10) {
			out->ts_val = get_be32(value);
			out->ts_ecr = get_be32(value + 4);
			out->tcp_options |= PYSCAN_TCPOPT_TIMESTAMP;
		}
		at += len;
	}
}

static int syn4_init(void *state, const struct pyscan_engine_config *cfg, char *err,
		     size_t errlen)
{
	if (pyscan_template__init(state, cfg->source_mac, cfg->gateway_mac, cfg->source_ip_be,
				  cfg->tcp_options, cfg->ttl, cfg->mss, cfg->window) < 0) {
		if (err && errlen)
			snprintf(err, errlen, "TCP options profile %u is unknown (known: 0..%d, "
				 "see template.h)", cfg->tcp_options, PYSCAN_TCP_OPTIONS_COUNT - 1);
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
		const uint32_t tsval = with_timestamp ? now_us + timestamp_offset(env, seq) : 0;
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
		syn4_fill_frames(&syn, env, &targets, batch_targets, slots, n, clock_us(), 1);
	else
		syn4_fill_frames(&syn, env, &targets, batch_targets, slots, n, 0, 0);
}

static inline int in_source_range(const struct pyscan_probe_env *env, uint16_t port)
{
	return port >= env->source_port_first &&
	       (uint32_t)(port - env->source_port_first) < env->source_port_count;
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
	    !in_source_range(env, q.sport) ||
	    pyscan_targetset__ip_number(env->targets, __builtin_bswap32(q.daddr_be)) < 0)
		return PYSCAN_INGEST_NOT_OURS;
	const uint32_t cookie = pyscan_cookie(&env->key, q.saddr_be, q.daddr_be,
					      __builtin_bswap16(q.sport),
					      __builtin_bswap16(q.dport));
	if (get_be32(q.l4 + 4) != cookie)
		return PYSCAN_INGEST_INVALID_COOKIE;

	memset(out->addr, 0, sizeof(out->addr));
	memcpy(out->addr, &q.daddr_be, 4);
	out->port = q.dport;
	out->status = PYSCAN_RESULT_UNREACHABLE;
	out->ttl = r->ttl; /* of the ICMP error, from whichever router or host sent it */
	out->family = 4;
	out->l4_proto = PYSCAN_IPPROTO_TCP;
	out->icmp_type = r->icmp_type;
	out->icmp_code = r->icmp_code;
	out->rtt_us = PYSCAN_RESULT_RTT_UNKNOWN;
	return PYSCAN_INGEST_CLOSED; /* a negative answer; the engine counts it by its status */
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
	if (!r->l4_complete)
		return PYSCAN_INGEST_MALFORMED;
	if (!in_source_range(env, r->dport))
		return PYSCAN_INGEST_NOT_OURS;
	/* The header length it claims must fit its segment, as the kernel's TCP demands. */
	if (r->tcp_doff < TCP_MIN_DOFF || (uint32_t)r->tcp_doff * 4 > r->l4_len)
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
	read_tcp_options(r, out);
	out->rtt_us = PYSCAN_RESULT_RTT_UNKNOWN;
	/* Only a SYN-ACK echoes our timestamp (a RST carries no options as a rule). */
	const struct pyscan_syn_template *syn = state;
	if (syn->tsval_offset && (out->tcp_options & PYSCAN_TCPOPT_TIMESTAMP) && out->ts_ecr) {
		const uint32_t sent_us = out->ts_ecr - timestamp_offset(env, cookie);
		const uint32_t rtt = clock_us() - sent_us;
		if (rtt < (1u << 31)) /* else an echo we did not send: unknown, not negative */
			out->rtt_us = rtt;
	}
	return status == PYSCAN_RESULT_OPEN ? PYSCAN_INGEST_OPEN : PYSCAN_INGEST_CLOSED;
}

const struct pyscan_probe_ops pyscan_probe_tcp_syn4 = {
	.name = "tcp-syn",
	.max_frame_len = PYSCAN_SYN_COPY_LEN,
	.init = syn4_init,
	.fill_batch = syn4_fill_batch,
	.classify = syn4_classify,
};
