/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe_icmp_echo4.c - probe module "icmp-echo": an ICMP echo request over IPv4 per address
 * (host discovery, masscan's --ping, zmap's icmp_echoscan). An echo reply is `up`; a
 * destination unreachable quoting our request is `unreachable` with its type and code. Its
 * XDP twin is ../bpf/probe_icmp_echo4.h.
 *
 * Cookie: SipHash(key, saddr | daddr | 0 | 0) of the probe, high half in the identifier and
 * low half in the sequence number, which every echo reply carries back unchanged (RFC 792)
 * and every ICMP error quotes (the first 8 bytes after the IP header). A reply is ours only
 * if all 32 bits match, recomputed from its tuple reversed (or from the quoted header). The
 * request carries no data: the cookie needs none, and 42 bytes keep the rate high.
 *
 * Invariant: the probe contract of probe.h; frames are ICMP4_FRAME_LEN bytes; the port entry
 * of an icmp-echo probe is port 0 and results say port 0.
 */
#include <string.h>

#include "probe.h"
#include "reply_parse.h"

#define ICMP4_FRAME_LEN 42
#define ICMP4_IP 14
#define ICMP4_L4 34
#define ICMP_ECHO_REPLY 0
#define ICMP_UNREACHABLE 3
#define ICMP_ECHO_REQUEST 8

struct icmp4_state {
	uint8_t frame[48];  /* ICMP4_FRAME_LEN used; per-probe fields zero */
	uint32_t ip_sum;    /* constant IPv4 header words */
	uint32_t icmp_sum;  /* constant ICMP words (type, code) */
};

_Static_assert(sizeof(struct icmp4_state) <= PYSCAN_PROBE_STATE_MAX,
	       "the echo template fits the engine's probe state");

static int icmp4_init(void *state, const struct pyscan_engine_config *cfg, char *err,
		      size_t errlen)
{
	struct icmp4_state *s = state;
	uint8_t *f = s->frame, *ip = f + ICMP4_IP, *icmp = f + ICMP4_L4;
	(void)err;
	(void)errlen;

	pyscan_probe__write_ethernet(f, cfg, PYSCAN_PROBE_ETHERTYPE_IPV4);
	ip[0] = 0x45;
	ip[2] = 0;
	ip[3] = ICMP4_FRAME_LEN - ICMP4_IP;
	ip[8] = pyscan_probe__ttl(cfg);
	ip[9] = PYSCAN_IPPROTO_ICMP;
	memcpy(ip + 12, &cfg->source_ip_be, 4);
	icmp[0] = ICMP_ECHO_REQUEST;
	s->ip_sum = (uint32_t)pyscan_probe__sum(ip, 20);
	s->icmp_sum = (uint32_t)pyscan_probe__sum(icmp, 8);
	return 0;
}

static inline uint32_t echo_cookie(const struct pyscan_probe_env *env, uint32_t saddr_be,
				   uint32_t daddr_be)
{
	return pyscan_cookie(&env->key, saddr_be, daddr_be, 0, 0);
}

static void icmp4_fill_batch(const void *state, const struct pyscan_probe_env *shared_env,
			     struct pyscan_tx_slot *slots, uint32_t n, uint64_t index,
			     uint64_t stride)
{
	PYSCAN_PROBE_FILL_PROLOGUE(struct icmp4_state, s, state, shared_env, n, index, stride);
	for (uint32_t j = 0; j < n; j++) {
		uint32_t ip_host;
		uint16_t port_host, ip_id;
		const uint64_t target = batch_targets[j];
		pyscan_targetset__at(&targets, target, &ip_host, &port_host);
		(void)pyscan_probe__source_port(env, target, &ip_id); /* for its keyed IP ID */
		const uint32_t daddr_be = __builtin_bswap32(ip_host);
		const uint32_t cookie = echo_cookie(env, env->source_ip_be, daddr_be);
		const uint16_t id_be = __builtin_bswap16((uint16_t)(cookie >> 16));
		const uint16_t seq_be = __builtin_bswap16((uint16_t)cookie);
		const uint16_t ip_id_be = __builtin_bswap16(ip_id);
		uint8_t *out = slots[j].data, *ip = out + ICMP4_IP, *icmp = out + ICMP4_L4;

		memcpy(out, s.frame, ICMP4_FRAME_LEN);
		const uint16_t ip_check = pyscan_probe__fold(s.ip_sum + (daddr_be & 0xffff) +
							     (daddr_be >> 16) + ip_id_be);
		const uint16_t icmp_check = pyscan_probe__fold(s.icmp_sum + id_be + seq_be);
		memcpy(ip + 4, &ip_id_be, 2);
		memcpy(ip + 10, &ip_check, 2);
		memcpy(ip + 16, &daddr_be, 4);
		memcpy(icmp + 2, &icmp_check, 2);
		memcpy(icmp + 4, &id_be, 2);
		memcpy(icmp + 6, &seq_be, 2);
		slots[j].len = ICMP4_FRAME_LEN;
	}
}

static inline uint32_t rd32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int icmp4_classify(const void *state, const struct pyscan_probe_env *env,
			  const struct pyscan_reply_view *r, struct pyscan_result *out)
{
	(void)state;
	if (r->family != 4 || r->l4_proto != PYSCAN_IPPROTO_ICMP ||
	    r->daddr4_be != env->source_ip_be)
		return PYSCAN_INGEST_NOT_OURS;
	if (!r->l4_complete)
		return PYSCAN_INGEST_MALFORMED;

	uint32_t target_be;
	uint8_t status;
	if (r->icmp_type == ICMP_ECHO_REPLY) {
		if (r->icmp_code != 0)
			return PYSCAN_INGEST_MALFORMED;
		/* The reply's tuple reversed is the probe's. */
		if (rd32(r->l4 + 4) != echo_cookie(env, r->daddr4_be, r->saddr4_be))
			return PYSCAN_INGEST_INVALID_COOKIE;
		target_be = r->saddr4_be;
		status = PYSCAN_RESULT_UP;
	} else if (r->icmp_type == ICMP_UNREACHABLE) {
		struct pyscan_reply_quote4 q;
		if (pyscan_reply__unreachable_quote4(r, &q) < 0)
			return PYSCAN_INGEST_NOT_OURS; /* cannot tell whose probe it quotes */
		if (q.protocol != PYSCAN_IPPROTO_ICMP || q.saddr_be != env->source_ip_be ||
		    q.l4[0] != ICMP_ECHO_REQUEST)
			return PYSCAN_INGEST_NOT_OURS; /* another module's probe, or not ours */
		if (rd32(q.l4 + 4) != echo_cookie(env, q.saddr_be, q.daddr_be))
			return PYSCAN_INGEST_INVALID_COOKIE;
		target_be = q.daddr_be;
		status = PYSCAN_RESULT_UNREACHABLE;
	} else {
		return PYSCAN_INGEST_NOT_OURS;
	}

	memset(out->addr, 0, sizeof(out->addr));
	memcpy(out->addr, &target_be, 4);
	out->port = 0;
	out->status = status;
	out->ttl = r->ttl;
	out->family = 4;
	out->l4_proto = PYSCAN_IPPROTO_ICMP;
	out->icmp_type = r->icmp_type;
	out->icmp_code = r->icmp_code;
	/* the probe carries no send time to echo back: unknown, not 0 s */
	out->rtt_us = PYSCAN_RESULT_RTT_UNKNOWN;
	return status == PYSCAN_RESULT_UP ? PYSCAN_INGEST_OPEN : PYSCAN_INGEST_CLOSED;
}

const struct pyscan_probe_ops pyscan_probe_icmp_echo4 = {
	.name = "icmp-echo",
	.max_frame_len = ICMP4_FRAME_LEN,
	.init = icmp4_init,
	.fill_batch = icmp4_fill_batch,
	.classify = icmp4_classify,
};
