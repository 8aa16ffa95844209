/* SPDX-License-Identifier: GPL-2.0-only
 *
 * targetset.c - validation and set-up of the target index space (see targetset.h).
 *
 * Invariant: init either builds a set on which at() is a bijection from [0, total) or leaves
 * the struct zeroed and returns -errno; it never accepts input that would make a probe go out
 * twice (overlapping ranges, a repeated port).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "targetset.h"

static int ranges_are_sorted_and_disjoint(const struct pyscan_ip_range *ranges, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (ranges[i].first > ranges[i].last)
			return 0;
		if (i > 0 && ranges[i].first <= ranges[i - 1].last)
			return 0;
	}
	return 1;
}

/* Distinct as (probe, port) when entries carry probe ids: one bitmap pass per probe id. */
static int ports_are_distinct(const uint16_t *ports, const uint8_t *probes, uint32_t n)
{
	uint64_t seen[65536 / 64];
	uint32_t last_probe = 0;
	for (uint32_t i = 0; probes && i < n; i++)
		last_probe = probes[i] > last_probe ? probes[i] : last_probe;

	for (uint32_t probe = 0; probe <= last_probe; probe++) {
		memset(seen, 0, sizeof(seen));
		for (uint32_t i = 0; i < n; i++) {
			if ((probes ? probes[i] : 0) != probe)
				continue;
			const uint64_t bit = 1ULL << (ports[i] % 64);
			if (seen[ports[i] / 64] & bit)
				return 0;
			seen[ports[i] / 64] |= bit;
		}
	}
	return 1;
}

/* The reciprocal of divide() in targetset.h. */
static void set_reciprocal(struct pyscan_targetset *t)
{
	uint32_t log2_ceil = 0;
	while ((1ULL << log2_ceil) < t->n_ips)
		log2_ceil++;
	t->ip_shift = 48 + log2_ceil;
	const unsigned __int128 two_s = (unsigned __int128)1 << t->ip_shift;
	t->ip_magic = (uint64_t)((two_s + t->n_ips - 1) / t->n_ips);
}

/* About one bucket per range: buckets are 2^shift addresses, the smallest power of two that
 * keeps their count at most n_ranges, so the table costs at most 4 bytes per range. */
static int build_buckets(struct pyscan_targetset *t)
{
	uint32_t shift = 0;
	while (((t->n_ips - 1) >> shift) >= t->n_ranges)
		shift++;
	const uint32_t n_buckets = (uint32_t)((t->n_ips - 1) >> shift) + 1;

	t->bucket_first = malloc(sizeof(*t->bucket_first) * ((size_t)n_buckets + 1));
	if (!t->bucket_first) {
		pyscan_targetset__free(t);
		return -ENOMEM;
	}
	uint32_t r = 0;
	for (uint32_t b = 0; b < n_buckets; b++) {
		const uint64_t first_address = (uint64_t)b << shift;
		while (r + 1 < t->n_ranges && t->ips_before[r + 1] <= first_address)
			r++;
		t->bucket_first[b] = r;
	}
	t->bucket_first[n_buckets] = t->n_ranges - 1;
	t->bucket_shift = shift;
	t->n_buckets = n_buckets;
	return 0;
}

int pyscan_targetset__init(struct pyscan_targetset *t, const struct pyscan_ip_range *ranges,
			   uint32_t n_ranges, const uint16_t *ports, uint32_t n_ports)
{
	return pyscan_targetset__init_probes(t, ranges, n_ranges, ports, NULL, n_ports);
}

int pyscan_targetset__init_probes(struct pyscan_targetset *t,
				  const struct pyscan_ip_range *ranges, uint32_t n_ranges,
				  const uint16_t *ports, const uint8_t *port_probes, uint32_t n_ports)
{
	memset(t, 0, sizeof(*t));
	/* 65536 distinct ports per probe id at most, so a longer list repeats an entry. */
	if (n_ranges == 0 || n_ports == 0 || n_ports > 65536 * (port_probes ? 256u : 1u))
		return -EINVAL;
	if (!ranges_are_sorted_and_disjoint(ranges, n_ranges) ||
	    !ports_are_distinct(ports, port_probes, n_ports))
		return -EINVAL;

	t->ranges = malloc(sizeof(*t->ranges) * n_ranges);
	t->ips_before = malloc(sizeof(*t->ips_before) * n_ranges);
	t->ports = malloc(sizeof(*t->ports) * n_ports);
	if (port_probes)
		t->port_probes = malloc(n_ports);
	if (!t->ranges || !t->ips_before || !t->ports || (port_probes && !t->port_probes)) {
		pyscan_targetset__free(t);
		return -ENOMEM;
	}
	memcpy(t->ranges, ranges, sizeof(*t->ranges) * n_ranges);
	memcpy(t->ports, ports, sizeof(*t->ports) * n_ports);
	if (port_probes)
		memcpy(t->port_probes, port_probes, n_ports);

	uint64_t ips = 0;
	for (uint32_t r = 0; r < n_ranges; r++) {
		t->ips_before[r] = ips;
		ips += (uint64_t)ranges[r].last - ranges[r].first + 1;
	}
	t->n_ips = ips;         /* <= 2^32: the ranges are disjoint */
	t->n_ranges = n_ranges;
	t->n_ports = n_ports;
	t->total = ips * n_ports; /* <= 2^48 */
	set_reciprocal(t);
	t->ports_are_run = 1;
	t->ports_run_first = ports[0];
	for (uint32_t i = 1; i < n_ports; i++)
		t->ports_are_run &= ports[i] == (uint16_t)(ports[0] + i);
	return n_ranges > PYSCAN_TARGETSET_DIRECT_SEARCH ? build_buckets(t) : 0;
}

int pyscan_targetset__init6(struct pyscan_targetset *t, const struct pyscan_ip6_range *ranges,
			    uint32_t n_ranges, const uint16_t *ports, const uint8_t *port_probes,
			    uint32_t n_ports)
{
	memset(t, 0, sizeof(*t));
	if (n_ranges == 0)
		return -EINVAL;
	unsigned __int128 *first6 = malloc(sizeof(*first6) * n_ranges);
	struct pyscan_ip_range *numbers = malloc(sizeof(*numbers) * n_ranges);
	if (!first6 || !numbers) {
		free(first6);
		free(numbers);
		return -ENOMEM;
	}
	/* Validate as 128-bit integers, then lay the ranges end to end as address numbers. */
	int rc = 0;
	unsigned __int128 ips = 0;
	for (uint32_t r = 0; r < n_ranges && !rc; r++) {
		const unsigned __int128 first = pyscan_targetset__addr6_number(ranges[r].first);
		const unsigned __int128 last = pyscan_targetset__addr6_number(ranges[r].last);
		if (first > last || (r > 0 && first <= pyscan_targetset__addr6_number(
							 ranges[r - 1].last))) {
			rc = -EINVAL;
			break;
		}
		const unsigned __int128 count = last - first + 1; /* 0 only for all of ::/0 */
		if (count == 0 || count > ((unsigned __int128)1 << 32) - ips) {
			rc = -E2BIG;
			break;
		}
		first6[r] = first;
		numbers[r].first = (uint32_t)ips;
		numbers[r].last = (uint32_t)(ips + count - 1);
		ips += count;
	}
	if (!rc)
		rc = pyscan_targetset__init_probes(t, numbers, n_ranges, ports, port_probes,
						   n_ports);
	free(numbers);
	if (rc) {
		free(first6);
		return rc;
	}
	t->first6 = first6;
	return 0;
}

void pyscan_targetset__free(struct pyscan_targetset *t)
{
	free(t->first6);
	free(t->bucket_first);
	free(t->ranges);
	free(t->ips_before);
	free(t->ports);
	free(t->port_probes);
	memset(t, 0, sizeof(*t));
}

uint64_t pyscan_targetset__divide_export(const struct pyscan_targetset *t, uint64_t index)
{
	return pyscan_targetset__divide(t, index);
}

void pyscan_targetset__at_export(const struct pyscan_targetset *t, uint64_t index,
				 uint32_t *ip_host, uint16_t *port_host)
{
	pyscan_targetset__at(t, index, ip_host, port_host);
}

void pyscan_targetset__at6_export(const struct pyscan_targetset *t, uint64_t index,
				  uint8_t addr_be[16], uint16_t *port_host)
{
	pyscan_targetset__at6(t, index, addr_be, port_host);
}

int64_t pyscan_targetset__ip_number6_export(const struct pyscan_targetset *t,
					    const uint8_t addr_be[16])
{
	return pyscan_targetset__ip_number6(t, addr_be);
}
