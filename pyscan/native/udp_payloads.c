/* SPDX-License-Identifier: GPL-2.0-only
 *
 * udp_payloads.c - the UDP payload table shared by probe_udp4.c and probe_udp6.c (see
 * udp_payloads.h): one entry per port entry of the module, the payload bytes copied out of
 * the engine config's probe_args (valid during init only) with DNS ids zeroed, since each
 * probe writes its own.
 *
 * Invariant: init either builds the whole table or leaves nothing allocated.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "udp_payloads.h"

/* The payload record for port, or NULL; *bad set when the records are malformed. */
static const struct pyscan_udp_payload_record *
find_record(const struct pyscan_engine_config *cfg, uint16_t port, int *bad)
{
	uint32_t at = 0;
	while (at < cfg->probe_args_len) {
		struct pyscan_udp_payload_record rec;
		if (cfg->probe_args_len - at < sizeof(rec)) {
			*bad = 1;
			return NULL;
		}
		memcpy(&rec, cfg->probe_args + at, sizeof(rec));
		if (rec.len > PYSCAN_UDP_PAYLOAD_MAX ||
		    cfg->probe_args_len - at - sizeof(rec) < rec.len ||
		    ((rec.flags & PYSCAN_UDP_PAYLOAD_DNS) && rec.len < 12)) {
			*bad = 1;
			return NULL;
		}
		if (rec.port == port)
			return (const struct pyscan_udp_payload_record *)(cfg->probe_args + at);
		at += sizeof(rec) + rec.len;
	}
	return NULL;
}

void pyscan_udp_payloads__fini(struct pyscan_udp_payloads *t)
{
	free(t->entries);
	free(t->entry_of_port);
	free(t->payloads);
	t->entries = NULL;
	t->entry_of_port = NULL;
	t->payloads = NULL;
}

int pyscan_udp_payloads__init(struct pyscan_udp_payloads *t,
			      const struct pyscan_engine_config *cfg, uint32_t probe_id,
			      char *err, size_t errlen)
{
	const uint32_t n = cfg->n_ports;

	t->entries = calloc(n ? n : 1, sizeof(*t->entries));
	t->entry_of_port = calloc(65536, sizeof(*t->entry_of_port));
	t->payloads = malloc(cfg->probe_args_len ? cfg->probe_args_len : 1);
	t->longest = 0;
	if (!t->entries || !t->entry_of_port || !t->payloads) {
		pyscan_udp_payloads__fini(t);
		snprintf(err, errlen, "out of memory for the UDP payload table");
		return -ENOMEM;
	}
	uint32_t used = 0;
	for (uint32_t i = 0; i < n; i++) {
		const uint32_t id = cfg->port_probes ? cfg->port_probes[i] : cfg->probe_id;
		if (id != probe_id)
			continue;
		int bad = 0;
		const struct pyscan_udp_payload_record *rec = find_record(cfg, cfg->ports[i], &bad);
		if (bad) {
			pyscan_udp_payloads__fini(t);
			snprintf(err, errlen, "UDP payload records are malformed (need port, length "
				 "<= %d, flags, then the bytes; DNS payloads >= 12 bytes)",
				 PYSCAN_UDP_PAYLOAD_MAX);
			return -EINVAL;
		}
		struct pyscan_udp_entry *e = &t->entries[i];
		if (rec) {
			struct pyscan_udp_payload_record head;
			memcpy(&head, rec, sizeof(head));
			e->offset = used;
			e->len = head.len;
			e->flags = head.flags;
			memcpy(t->payloads + used, (const uint8_t *)rec + sizeof(head), head.len);
			if (head.flags & PYSCAN_UDP_PAYLOAD_DNS)
				memset(t->payloads + used, 0, 2); /* the id is the cookie's */
			e->payload_sum = (uint32_t)pyscan_probe__sum(t->payloads + used, head.len);
			used += head.len;
		}
		t->entry_of_port[cfg->ports[i]] = i + 1;
		if (e->len > t->longest)
			t->longest = e->len;
	}
	return 0;
}
