/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe.c - the probe-module table: one row per probe id (probe_ids.h), each row a module's
 * struct pyscan_probe_ops (contract in probe.h). Adding a probe type adds one row here.
 *
 * Invariant: row i is the module whose id is i; a designated initializer keeps that true
 * whatever order rows are written in, and the assert keeps the table as long as the id list.
 */
#include <string.h>

#include "probe.h"

extern const struct pyscan_probe_ops pyscan_probe_tcp_syn4;
extern const struct pyscan_probe_ops pyscan_probe_icmp_echo4;
extern const struct pyscan_probe_ops pyscan_probe_udp4;
extern const struct pyscan_probe_ops pyscan_probe_tcp_syn6;
extern const struct pyscan_probe_ops pyscan_probe_icmp_echo6;
extern const struct pyscan_probe_ops pyscan_probe_udp6;

static const struct pyscan_probe_ops *const probe_table[] = {
	[PYSCAN_PROBE_TCP_SYN4] = &pyscan_probe_tcp_syn4,
	[PYSCAN_PROBE_ICMP_ECHO4] = &pyscan_probe_icmp_echo4,
	[PYSCAN_PROBE_UDP4] = &pyscan_probe_udp4,
	[PYSCAN_PROBE_TCP_SYN6] = &pyscan_probe_tcp_syn6,
	[PYSCAN_PROBE_ICMP_ECHO6] = &pyscan_probe_icmp_echo6,
	[PYSCAN_PROBE_UDP6] = &pyscan_probe_udp6,
};

_Static_assert(sizeof(probe_table) / sizeof(probe_table[0]) == PYSCAN_PROBE_COUNT,
	       "one probe table row per id in probe_ids.h");

const struct pyscan_probe_ops *pyscan_probe__ops(uint32_t id)
{
	return id < PYSCAN_PROBE_COUNT ? probe_table[id] : NULL;
}

const char *pyscan_probe__name(uint32_t id)
{
	const struct pyscan_probe_ops *ops = pyscan_probe__ops(id);
	return ops ? ops->name : NULL;
}

int pyscan_probe__by_name(const char *name)
{
	for (uint32_t id = 0; name && id < PYSCAN_PROBE_COUNT; id++)
		if (probe_table[id] && !strcmp(probe_table[id]->name, name))
			return (int)id;
	return -1;
}

uint32_t pyscan_probe__count(void)
{
	return PYSCAN_PROBE_COUNT;
}

uint32_t pyscan_probe__family(uint32_t id)
{
	const struct pyscan_probe_ops *ops = pyscan_probe__ops(id);
	return !ops ? 0 : ops->family == 6 ? 6 : 4;
}
