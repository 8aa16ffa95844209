/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe_udp6.c - probe module "udp6": a UDP datagram over IPv6 carrying the port's protocol
 * payload (the same table as "udp", udp_payloads.h), or none. Users say -p U:53 or --probe
 * udp: pyscan/probes picks this module when the targets are IPv6. Any UDP reply from the
 * probed (address, port) to the probe's source port is `open`; an ICMPv6 port unreachable
 * (type 1 code 4) quoting the probe is `closed`, any other destination unreachable quoting
 * it `unreachable` (type and code kept). Its XDP twin is ../bpf/probe_udp6.h.
 *
 * Cookie: c = SipHash(key, saddr | daddr | 0 | dport) over the 16-byte addresses
 * (pyscan_cookie6). As over IPv4 (probe_udp4.c), the source port is derived from c
 * (pyscan_udp__source_port) and a DNS payload's transaction id is c's low 16 bits. IPv6 has
 * no IP ID for an ICMPv6 error to quote, so the flow label carries c's low 20 bits instead:
 * RFC 6437 keeps a non-zero label unchanged end to end, and an error quotes our IPv6 header
 * (RFC 4443 3.1), so a quote is checked on source port + 20 bits. What each check is worth:
 * docs/probes.md.
 *
 * Invariant: the probe contract of probe.h, except that the source port comes from the
 * cookie instead of pyscan_probe__source_port(); frames are 62 + the port's payload bytes,
 * at most UDP6_MAX_FRAME; the UDP checksum is never 0 (mandatory in IPv6, RFC 8200 8.1);
 * only IPv6 target sets.
 */
#include <string.h>

#include "probe.h"
#include "reply_parse.h"
#include "reply_quote6.h"
#include "udp_payloads.h"

#define UDP6_HEADERS 62
#define UDP6_IP 14
#define UDP6_L4 54
#define UDP6_MAX_FRAME (UDP6_HEADERS + PYSCAN_UDP_PAYLOAD_MAX)
#define UDP6_FLOW_LABEL_MASK 0xfffffu
#define ICMP6_PORT_UNREACHABLE 4

struct udp6_state {
	uint8_t frame[64];          /* UDP6_HEADERS used; per-probe fields zero */
	uint32_t pseudo_sum;        /* source address and next-header word of the pseudo-header */
	uint32_t reserved;
	struct pyscan_udp_payloads table; /* udp_payloads.h, owned */
};

_Static_assert(sizeof(struct udp6_state) <= PYSCAN_PROBE_STATE_MAX,
	       "the UDP6 template fits the engine's probe state");

static void udp6_fini(void *state)
{
	pyscan_udp_payloads__fini(&((struct udp6_state *)state)->table);
}

static int udp6_init(void *state, const struct pyscan_engine_config *cfg, char *err,
		     size_t errlen)
{
	struct udp6_state *s = state;
	uint8_t *f = s->frame, *ip = f + UDP6_IP;

	pyscan_probe__write_ethernet(f, cfg, PYSCAN_PROBE_ETHERTYPE_IPV6);
	ip[0] = 0x60;
	ip[6] = PYSCAN_IPPROTO_UDP;
	ip[7] = pyscan_probe__ttl(cfg);
	memcpy(ip + 8, cfg->source_ip6, 16);
	const uint8_t next_header[2] = {0, PYSCAN_IPPROTO_UDP};
	s->pseudo_sum = (uint32_t)(pyscan_probe__sum(ip + 8, 16) +
				   pyscan_probe__sum(next_header, 2));
	return pyscan_udp_payloads__init(&s->table, cfg, PYSCAN_PROBE_UDP6, err, errlen);
}

static uint32_t udp6_frame_len(const void *state)
{
	return UDP6_HEADERS + ((const struct udp6_state *)state)->table.longest;
}

static inline uint32_t udp6_cookie(const struct pyscan_probe_env *env, const uint8_t *saddr,
				   const uint8_t *daddr, uint16_t dport_be)
{
	return pyscan_cookie6(&env->key, pyscan_cookie_addr6__load(saddr),
			      pyscan_cookie_addr6__load(daddr), 0, dport_be);
}

static void udp6_fill_batch(const void *state, const struct pyscan_probe_env *shared_env,
			    struct pyscan_tx_slot *slots, uint32_t n, uint64_t index,
			    uint64_t stride)
{
	PYSCAN_PROBE_FILL_PROLOGUE(struct udp6_state, s, state, shared_env, n, index, stride);
	const struct pyscan_cookie_addr6 src = pyscan_cookie_addr6__load(env->source_ip6);
	for (uint32_t j = 0; j < n; j++) {
		uint8_t daddr[16];
		uint16_t port_host;
		const uint64_t target = batch_targets[j];
		pyscan_targetset__at6(&targets, target, daddr, &port_host);
		const struct pyscan_udp_entry *e =
			&s.table.entries[pyscan_targetset__divide(&targets, target)];
		const uint16_t dport_be = __builtin_bswap16(port_host);
		const uint32_t cookie = pyscan_cookie6(&env->key, src,
						       pyscan_cookie_addr6__load(daddr), 0,
						       dport_be);
		const uint16_t sport_be = __builtin_bswap16(pyscan_udp__source_port(env, cookie));
		const uint16_t udp_len_be = __builtin_bswap16((uint16_t)(8 + e->len));
		const uint16_t dns_id_be = pyscan_udp__dns_id_be(e, cookie);
		const uint32_t label = cookie & UDP6_FLOW_LABEL_MASK;
		/* version 6, traffic class 0, then the 20-bit flow label */
		const uint8_t version_label[4] = {0x60, (uint8_t)(label >> 16), (uint8_t)(label >> 8),
						  (uint8_t)label};
		uint8_t *out = slots[j].data, *ip = out + UDP6_IP;

		memcpy(out, s.frame, UDP6_HEADERS);
		pyscan_udp__write_payload(&s.table, e, out + UDP6_HEADERS, dns_id_be);
		memcpy(ip, version_label, 4);
		memcpy(ip + 4, &udp_len_be, 2); /* payload length = the UDP length */
		memcpy(ip + 24, daddr, 16);
		pyscan_udp__write_header(e, out + UDP6_L4, s.pseudo_sum + pyscan_probe__sum(daddr, 16),
					 sport_be, dport_be, udp_len_be, dns_id_be);
		slots[j].len = UDP6_HEADERS + e->len;
	}
}

static int fill_result(const struct pyscan_reply_view *r, const uint8_t *target, uint16_t port,
		       uint8_t status, struct pyscan_result *out)
{
	memcpy(out->addr, target, 16);
	out->port = port;
	out->status = status;
	out->ttl = r->ttl;
	out->family = 6;
	out->l4_proto = PYSCAN_IPPROTO_UDP;
	out->icmp_type = r->l4_proto == PYSCAN_IPPROTO_ICMPV6 ? r->icmp_type : 0;
	out->icmp_code = r->l4_proto == PYSCAN_IPPROTO_ICMPV6 ? r->icmp_code : 0;
	out->rtt_us = PYSCAN_RESULT_RTT_UNKNOWN;
	return status == PYSCAN_RESULT_OPEN ? PYSCAN_INGEST_OPEN : PYSCAN_INGEST_CLOSED;
}

static int classify_udp(const struct udp6_state *s, const struct pyscan_probe_env *env,
			const struct pyscan_reply_view *r, struct pyscan_result *out)
{
	const struct pyscan_udp_entry *e;
	const int verdict = pyscan_udp__reply_entry(&s->table, env, r, &e);
	if (verdict)
		return verdict;
	/* The reply's tuple reversed is the probe's. */
	const uint32_t cookie = udp6_cookie(env, r->daddr, r->saddr, __builtin_bswap16(r->sport));
	if (!pyscan_udp__reply_matches(env, e, r, cookie))
		return PYSCAN_INGEST_INVALID_COOKIE;
	/* The cookie of a reply without a payload to echo is only its source port: the target
	 * set decides whether the address was probed at all (as in probe_udp4.c). */
	if (pyscan_targetset__ip_number6(env->targets, r->saddr) < 0)
		return PYSCAN_INGEST_NOT_OURS;
	return fill_result(r, r->saddr, r->sport, PYSCAN_RESULT_OPEN, out);
}

/* An ICMPv6 destination unreachable quoting one of our datagrams: its IPv6 header (the flow
 * label) and UDP header (the ports). Anything quoting another protocol, another source, a
 * source port outside the range, a port the scan did not probe over UDP or a destination
 * outside the target set is another module's or nobody's (NOT_OURS, probe.h). */
static int classify_unreachable(const struct udp6_state *s, const struct pyscan_probe_env *env,
				const struct pyscan_reply_view *r, struct pyscan_result *out)
{
	struct pyscan_reply_quote6 q;
	if (pyscan_reply__unreachable_quote6(r, &q) < 0)
		return PYSCAN_INGEST_NOT_OURS;
	if (q.next_header != PYSCAN_IPPROTO_UDP || memcmp(q.saddr, env->source_ip6, 16) != 0 ||
	    !pyscan_probe__in_source_range(env, q.sport) || !s->table.entry_of_port[q.dport] ||
	    pyscan_targetset__ip_number6(env->targets, q.daddr) < 0)
		return PYSCAN_INGEST_NOT_OURS;
	const uint32_t cookie = udp6_cookie(env, q.saddr, q.daddr, __builtin_bswap16(q.dport));
	const uint32_t label = ((uint32_t)(q.ip[1] & 0x0f) << 16) | ((uint32_t)q.ip[2] << 8) |
			       q.ip[3];
	if (pyscan_udp__source_port(env, cookie) != q.sport ||
	    label != (cookie & UDP6_FLOW_LABEL_MASK))
		return PYSCAN_INGEST_INVALID_COOKIE;
	return fill_result(r, q.daddr, q.dport,
			   r->icmp_code == ICMP6_PORT_UNREACHABLE ? PYSCAN_RESULT_CLOSED :
								    PYSCAN_RESULT_UNREACHABLE,
			   out);
}

static int udp6_classify(const void *state, const struct pyscan_probe_env *env,
			 const struct pyscan_reply_view *r, struct pyscan_result *out)
{
	const struct udp6_state *s = state;
	if (r->family != 6 || memcmp(r->daddr, env->source_ip6, 16) != 0)
		return PYSCAN_INGEST_NOT_OURS;
	if (r->l4_proto == PYSCAN_IPPROTO_UDP)
		return classify_udp(s, env, r, out);
	if (r->l4_proto == PYSCAN_IPPROTO_ICMPV6)
		return classify_unreachable(s, env, r, out);
	return PYSCAN_INGEST_NOT_OURS;
}

const struct pyscan_probe_ops pyscan_probe_udp6 = {
	.name = "udp6",
	.max_frame_len = UDP6_MAX_FRAME,
	.init = udp6_init,
	.fill_batch = udp6_fill_batch,
	.classify = udp6_classify,
	.fini = udp6_fini,
	.frame_len = udp6_frame_len,
	.family = 6,
};
