/* SPDX-License-Identifier: GPL-2.0-only
 *
 * udp_payloads.h - what the two UDP probe modules (probe_udp4.c, probe_udp6.c) share: the
 * per-port payload table built from the engine config's probe_args (records of probe.h's
 * struct pyscan_udp_payload_record), the source port derived from the cookie, the DNS
 * transaction-id rule (a DNS payload's first two bytes are the cookie's low 16 bits, which
 * a DNS answer echoes), the datagram written from the table (payload, header, checksum) and
 * the checks a UDP reply passes before and after its cookie.
 *
 * Invariant: a table is either wholly built (init returned 0) or holds nothing allocated;
 * after init it is read-only, so fill_batch and classify may read it from any thread.
 */
#ifndef PYSCAN_UDP_PAYLOADS_H
#define PYSCAN_UDP_PAYLOADS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "probe.h"
#include "reply_parse.h"

/* One per target-set port entry; only the owning module's entries are used. */
struct pyscan_udp_entry {
	uint32_t offset;       /* into payloads */
	uint32_t payload_sum;  /* memory-order word sum of the payload (DNS id bytes zero) */
	uint16_t len;
	uint8_t flags;         /* PYSCAN_UDP_PAYLOAD_* */
	uint8_t reserved;
};

_Static_assert(sizeof(struct pyscan_udp_entry) == 12, "udp payload entry layout");

struct pyscan_udp_payloads {
	struct pyscan_udp_entry *entries; /* by port entry index; owned */
	uint32_t *entry_of_port;          /* 65536: entry index + 1 of each probed UDP port */
	uint8_t *payloads;                /* owned */
	uint32_t longest;                 /* the longest payload of this scan's entries */
};

_Static_assert(sizeof(struct pyscan_udp_payloads) == 32, "udp payload table layout");

/* Builds the table for the config's port entries whose module is probe_id: 0, or -ENOMEM /
 * -EINVAL with one line in err (then nothing is left allocated). */
int pyscan_udp_payloads__init(struct pyscan_udp_payloads *t,
			      const struct pyscan_engine_config *cfg, uint32_t probe_id,
			      char *err, size_t errlen);
/* Frees what init allocated; safe on a zeroed or already freed table. */
void pyscan_udp_payloads__fini(struct pyscan_udp_payloads *t);

/* The probe's source port (host order) from its cookie: the high bits of the cookie spread
 * over the scan's source-port range (a UDP reply echoes nothing of ours but the ports). */
static inline uint16_t pyscan_udp__source_port(const struct pyscan_probe_env *env,
					       uint32_t cookie)
{
	return (uint16_t)(env->source_port_first +
			  (((uint64_t)cookie * env->source_port_count) >> 32));
}

/* The DNS id a probe of entry e carries (network order, as written), 0 for other payloads. */
static inline uint16_t pyscan_udp__dns_id_be(const struct pyscan_udp_entry *e, uint32_t cookie)
{
	return (e->flags & PYSCAN_UDP_PAYLOAD_DNS) ? __builtin_bswap16((uint16_t)cookie) : 0;
}

/* Writes the payload of a probe of entry e at payload (after the UDP header), with its DNS
 * id (pyscan_udp__dns_id_be). */
static inline __attribute__((always_inline)) void pyscan_udp__write_payload(
	const struct pyscan_udp_payloads *t, const struct pyscan_udp_entry *e, uint8_t *payload,
	uint16_t dns_id_be)
{
	memcpy(payload, t->payloads + e->offset, e->len);
	if (dns_id_be)
		memcpy(payload, &dns_id_be, 2);
}

/* Writes the UDP header at udp for a probe of entry e: ports, length (udp_len_be, 8 + e->len)
 * and the checksum completed from pseudo_sum, the unfolded word sum of the pseudo-header's
 * addresses and protocol. The same for both families: only pseudo_sum differs. */
static inline __attribute__((always_inline)) void pyscan_udp__write_header(
	const struct pyscan_udp_entry *e, uint8_t *udp, uint64_t pseudo_sum, uint16_t sport_be,
	uint16_t dport_be, uint16_t udp_len_be, uint16_t dns_id_be)
{
	/* The UDP length counts twice: in the header and in the pseudo-header (whose IPv6
	 * upper-layer length has zero high 16 bits). */
	uint16_t check = pyscan_probe__fold(pseudo_sum + sport_be + dport_be + 2u * udp_len_be +
					    e->payload_sum + dns_id_be);
	if (!check)
		check = 0xffff; /* zero means "no checksum" (RFC 768), refused over IPv6 */
	memcpy(udp + 0, &sport_be, 2);
	memcpy(udp + 2, &dport_be, 2);
	memcpy(udp + 4, &udp_len_be, 2);
	memcpy(udp + 6, &check, 2);
}

/* The checks of a UDP reply to the scanner's address that come before its cookie: a
 * cut-short header is MALFORMED; a reply to a port outside the source-port range, or from a
 * port the scan did not probe over UDP, NOT_OURS. 0 and *entry (the probed port's) when it
 * is a candidate; else that PYSCAN_INGEST_* code. */
static inline int pyscan_udp__reply_entry(const struct pyscan_udp_payloads *t,
					  const struct pyscan_probe_env *env,
					  const struct pyscan_reply_view *r,
					  const struct pyscan_udp_entry **entry)
{
	if (!r->l4_complete)
		return PYSCAN_INGEST_MALFORMED;
	const uint32_t index = t->entry_of_port[r->sport];
	if (!pyscan_probe__in_source_range(env, r->dport) || !index)
		return PYSCAN_INGEST_NOT_OURS;
	*entry = &t->entries[index - 1];
	return 0;
}

/* 1 when a UDP reply of entry e (its payload after the 8-byte header in r->l4) passes the
 * payload's own echo check: a DNS answer must echo the query's id (16 more bits); others
 * have none. */
static inline int pyscan_udp__reply_echo_ok(const struct pyscan_udp_entry *e,
					    const struct pyscan_reply_view *r, uint32_t cookie)
{
	if (!(e->flags & PYSCAN_UDP_PAYLOAD_DNS))
		return 1;
	return r->l4_len >= 8 + 2 &&
	       (uint16_t)((r->l4[8] << 8) | r->l4[9]) == (uint16_t)cookie;
}

/* 1 when a candidate reply of entry e (pyscan_udp__reply_entry) answers the probe whose
 * cookie, recomputed from the reply's tuple reversed, is cookie: it went to the source port
 * that cookie picks, and passes the payload's echo check. */
static inline int pyscan_udp__reply_matches(const struct pyscan_probe_env *env,
					    const struct pyscan_udp_entry *e,
					    const struct pyscan_reply_view *r, uint32_t cookie)
{
	return pyscan_udp__source_port(env, cookie) == r->dport &&
	       pyscan_udp__reply_echo_ok(e, r, cookie);
}

#endif /* PYSCAN_UDP_PAYLOADS_H */
