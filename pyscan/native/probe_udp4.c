/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe_udp4.c - probe module "udp": a UDP datagram over IPv4 carrying the port's protocol
 * payload (pyscan/probes/udp_payloads.py, --udp-payload-file; records of probe.h in the
 * engine config's probe_args), or none. Any UDP reply from the probed (address, port) to the
 * probe's source port is `open`; an ICMP port unreachable quoting the probe is `closed`, any
 * other destination unreachable quoting it `unreachable` (type and code kept). Its XDP twin
 * is ../bpf/probe_udp4.h.
 *
 * Cookie: c = SipHash(key, saddr | daddr | 0 | dport). A UDP reply echoes no field of ours
 * but the ports, so the source port is derived from c: first + ((c * count) >> 32) (the
 * high bits of c, spread over the scan's source-port range). The low 16 bits of c are the
 * IP ID (ICMP errors quote it) and, for DNS payloads, the transaction id (a DNS answer
 * echoes it). What each check is worth: docs/probes.md.
 *
 * Invariant: the probe contract of probe.h, except that the source port comes from the
 * cookie instead of pyscan_probe__source_port(); frames are 42 + the port's payload bytes,
 * at most UDP4_MAX_FRAME; init either builds the whole payload table (udp_payloads.h, shared
 * with probe_udp6.c) or leaves nothing allocated.
 */
#include <string.h>

#include "probe.h"
#include "reply_parse.h"
#include "udp_payloads.h"

#define UDP4_HEADERS 42
#define UDP4_IP 14
#define UDP4_L4 34
#define UDP4_MAX_FRAME (UDP4_HEADERS + PYSCAN_UDP_PAYLOAD_MAX)
#define ICMP_PORT_UNREACHABLE 3

struct udp4_state {
	uint8_t frame[48];          /* UDP4_HEADERS used; per-probe fields zero */
	uint32_t ip_sum;            /* constant IPv4 header words */
	uint32_t pseudo_sum;        /* source address and protocol words of the pseudo-header */
	struct pyscan_udp_payloads table; /* udp_payloads.h, owned */
};

_Static_assert(sizeof(struct udp4_state) <= PYSCAN_PROBE_STATE_MAX,
	       "the UDP template fits the engine's probe state");

static void udp4_fini(void *state)
{
	pyscan_udp_payloads__fini(&((struct udp4_state *)state)->table);
}

static int udp4_init(void *state, const struct pyscan_engine_config *cfg, char *err,
		     size_t errlen)
{
	struct udp4_state *s = state;
	uint8_t *f = s->frame, *ip = f + UDP4_IP;

	pyscan_probe__write_ethernet(f, cfg, PYSCAN_PROBE_ETHERTYPE_IPV4);
	ip[0] = 0x45;
	ip[8] = pyscan_probe__ttl(cfg);
	ip[9] = PYSCAN_IPPROTO_UDP;
	memcpy(ip + 12, &cfg->source_ip_be, 4);
	s->ip_sum = (uint32_t)pyscan_probe__sum(ip, 20);
	const uint8_t pseudo[6] = {ip[12], ip[13], ip[14], ip[15], 0, PYSCAN_IPPROTO_UDP};
	s->pseudo_sum = (uint32_t)pyscan_probe__sum(pseudo, sizeof(pseudo));
	return pyscan_udp_payloads__init(&s->table, cfg, PYSCAN_PROBE_UDP4, err, errlen);
}

static uint32_t udp4_frame_len(const void *state)
{
	return UDP4_HEADERS + ((const struct udp4_state *)state)->table.longest;
}

static inline uint32_t udp_cookie(const struct pyscan_probe_env *env, uint32_t saddr_be,
				  uint32_t daddr_be, uint16_t dport_be)
{
	return pyscan_cookie(&env->key, saddr_be, daddr_be, 0, dport_be);
}

static void udp4_fill_batch(const void *state, const struct pyscan_probe_env *shared_env,
			    struct pyscan_tx_slot *slots, uint32_t n, uint64_t index,
			    uint64_t stride)
{
	PYSCAN_PROBE_FILL_PROLOGUE(struct udp4_state, s, state, shared_env, n, index, stride);
	for (uint32_t j = 0; j < n; j++) {
		uint32_t ip_host;
		uint16_t port_host;
		const uint64_t target = batch_targets[j];
		pyscan_targetset__at(&targets, target, &ip_host, &port_host);
		const struct pyscan_udp_entry *e =
			&s.table.entries[pyscan_targetset__divide(&targets, target)];
		const uint32_t daddr_be = __builtin_bswap32(ip_host);
		const uint16_t dport_be = __builtin_bswap16(port_host);
		const uint32_t cookie = udp_cookie(env, env->source_ip_be, daddr_be, dport_be);
		const uint16_t sport_be = __builtin_bswap16(pyscan_udp__source_port(env, cookie));
		const uint16_t low_be = __builtin_bswap16((uint16_t)cookie);
		const uint16_t ip_len_be = __builtin_bswap16((uint16_t)(28 + e->len));
		const uint16_t udp_len_be = __builtin_bswap16((uint16_t)(8 + e->len));
		const uint16_t dns_id_be = pyscan_udp__dns_id_be(e, cookie);
		uint8_t *out = slots[j].data, *ip = out + UDP4_IP;

		memcpy(out, s.frame, UDP4_HEADERS);
		pyscan_udp__write_payload(&s.table, e, out + UDP4_HEADERS, dns_id_be);
		const uint64_t daddr_words = (daddr_be & 0xffff) + (daddr_be >> 16);
		const uint16_t ip_check = pyscan_probe__fold(s.ip_sum + daddr_words + low_be +
							     ip_len_be);
		memcpy(ip + 2, &ip_len_be, 2);
		memcpy(ip + 4, &low_be, 2);
		memcpy(ip + 10, &ip_check, 2);
		memcpy(ip + 16, &daddr_be, 4);
		pyscan_udp__write_header(e, out + UDP4_L4, s.pseudo_sum + daddr_words, sport_be,
					 dport_be, udp_len_be, dns_id_be);
		slots[j].len = UDP4_HEADERS + e->len;
	}
}

static int fill_result(const struct pyscan_reply_view *r, uint32_t target_be, uint16_t port,
		       uint8_t status, struct pyscan_result *out)
{
	memset(out->addr, 0, sizeof(out->addr));
	memcpy(out->addr, &target_be, 4);
	out->port = port;
	out->status = status;
	out->ttl = r->ttl;
	out->family = 4;
	out->l4_proto = PYSCAN_IPPROTO_UDP;
	out->icmp_type = r->l4_proto == PYSCAN_IPPROTO_ICMP ? r->icmp_type : 0;
	out->icmp_code = r->l4_proto == PYSCAN_IPPROTO_ICMP ? r->icmp_code : 0;
	/* the probe carries no send time to echo back: unknown, not 0 s */
	out->rtt_us = PYSCAN_RESULT_RTT_UNKNOWN;
	return status == PYSCAN_RESULT_OPEN ? PYSCAN_INGEST_OPEN : PYSCAN_INGEST_CLOSED;
}

static int classify_udp(const struct udp4_state *s, const struct pyscan_probe_env *env,
			const struct pyscan_reply_view *r, struct pyscan_result *out)
{
	const struct pyscan_udp_entry *e;
	const int verdict = pyscan_udp__reply_entry(&s->table, env, r, &e);
	if (verdict)
		return verdict;
	/* The reply's tuple reversed is the probe's. */
	const uint32_t cookie = udp_cookie(env, r->daddr4_be, r->saddr4_be,
					   __builtin_bswap16(r->sport));
	if (!pyscan_udp__reply_matches(env, e, r, cookie))
		return PYSCAN_INGEST_INVALID_COOKIE;
	/* Without a payload to echo, the cookie is only the choice among the source ports, so a
	 * stray datagram from an address never probed matches one time in that many: the set
	 * decides (the ingest fuzzer found such a report). */
	if (pyscan_targetset__ip_number(env->targets, __builtin_bswap32(r->saddr4_be)) < 0)
		return PYSCAN_INGEST_NOT_OURS;
	return fill_result(r, r->saddr4_be, r->sport, PYSCAN_RESULT_OPEN, out);
}

static int classify_unreachable(const struct udp4_state *s, const struct pyscan_probe_env *env,
				const struct pyscan_reply_view *r, struct pyscan_result *out)
{
	struct pyscan_reply_quote4 q;
	if (pyscan_reply__unreachable_quote4(r, &q) < 0)
		return PYSCAN_INGEST_NOT_OURS;
	if (q.protocol != PYSCAN_IPPROTO_UDP || q.saddr_be != env->source_ip_be ||
	    !pyscan_probe__in_source_range(env, q.sport) || !s->table.entry_of_port[q.dport] ||
	    pyscan_targetset__ip_number(env->targets, __builtin_bswap32(q.daddr_be)) < 0)
		return PYSCAN_INGEST_NOT_OURS;
	const uint32_t cookie = udp_cookie(env, q.saddr_be, q.daddr_be, __builtin_bswap16(q.dport));
	if (pyscan_udp__source_port(env, cookie) != q.sport || q.ip_id != (uint16_t)cookie)
		return PYSCAN_INGEST_INVALID_COOKIE;
	return fill_result(r, q.daddr_be, q.dport,
			   r->icmp_code == ICMP_PORT_UNREACHABLE ? PYSCAN_RESULT_CLOSED :
								   PYSCAN_RESULT_UNREACHABLE,
			   out);
}

static int udp4_classify(const void *state, const struct pyscan_probe_env *env,
			 const struct pyscan_reply_view *r, struct pyscan_result *out)
{
	const struct udp4_state *s = state;
	if (r->family != 4 || r->daddr4_be != env->source_ip_be)
		return PYSCAN_INGEST_NOT_OURS;
	if (r->l4_proto == PYSCAN_IPPROTO_UDP)
		return classify_udp(s, env, r, out);
	if (r->l4_proto == PYSCAN_IPPROTO_ICMP && r->l4_complete)
		return classify_unreachable(s, env, r, out);
	return PYSCAN_INGEST_NOT_OURS;
}

const struct pyscan_probe_ops pyscan_probe_udp4 = {
	.name = "udp",
	.max_frame_len = UDP4_MAX_FRAME,
	.init = udp4_init,
	.fill_batch = udp4_fill_batch,
	.classify = udp4_classify,
	.fini = udp4_fini,
	.frame_len = udp4_frame_len,
};
