/* SPDX-License-Identifier: GPL-2.0-only
 *
 * targetset.h - the scan's targets as one index space: index -> (IPv4 address, port).
 *
 * The set is sorted, disjoint, inclusive IPv4 ranges times a port list. Index i means address
 * number i % n_ips and port number i / n_ips (masscan's order), so that consecutive indices -
 * and therefore consecutive permuted indices as well - land on different hosts before a host
 * sees its next port. Address number j is found by binary search over the count of addresses
 * before each range; above PYSCAN_TARGETSET_DIRECT_SEARCH ranges (long include lists) a bucket
 * table first narrows the search to the ranges that overlap the address's bucket, so a lookup
 * touches a couple of cache lines instead of walking a tree of megabytes. The split of i into
 * (i % n_ips, i / n_ips) multiplies by a reciprocal computed once (see
 * pyscan_targetset__divide) instead of dividing: a 64-bit divide costs 40-90 cycles per probe.
 *
 * A port entry may carry a probe id (port_probes, probe_ids.h), so one scan can hold TCP 53
 * and UDP 53 as two entries (masscan's U:53): entries are then distinct as (probe, port).
 *
 * IPv6 (init6): the same index space over sorted disjoint ranges of 128-bit addresses, at most
 * 2^32 addresses in all (what one permutation of n_ips * n_ports <= 2^48 can walk). The
 * ranges are laid end to end as 32-bit "address numbers" (ranges[r] = the numbers of range
 * r's addresses, so at() yields the address number) and first6[r] is range r's first IPv6
 * address: at6() adds the offset inside the range to it, ip_number6() inverts it. Everything
 * else (divide, buckets, ports, probe ids) is shared, so the order is masscan's for both.
 *
 * Invariant: after a successful init, at() maps [0, total) onto the set one-to-one, with
 * total = n_ips * n_ports; the struct owns copies of its inputs until free(). An IPv4 set has
 * first6 == NULL; an IPv6 set has first6 != NULL and at()'s address is its address number.
 */
#ifndef PYSCAN_TARGETSET_H
#define PYSCAN_TARGETSET_H

#include <stdint.h>

struct pyscan_ip_range {
	uint32_t first; /* host byte order, inclusive */
	uint32_t last;  /* host byte order, inclusive */
};

/* Up to this many ranges a plain binary search is as fast as the bucket table. */
#define PYSCAN_TARGETSET_DIRECT_SEARCH 64

struct pyscan_targetset {
	uint64_t n_ips;      /* addresses over all ranges */
	uint32_t n_ports;
	uint32_t n_ranges;
	uint64_t total;      /* n_ips * n_ports: the permutation's range */
	struct pyscan_ip_range *ranges; /* n_ranges, sorted, disjoint */
	uint64_t *ips_before;           /* ips_before[r] = addresses in ranges[0..r) */
	uint16_t *ports;                /* n_ports, host byte order, distinct */
	/* bucket_first[b] = the range holding address number b << bucket_shift, for
	 * b <= n_buckets (the last entry is n_ranges - 1); NULL with few ranges. */
	uint32_t *bucket_first;
	uint32_t bucket_shift;
	uint32_t n_buckets;
	/* i / n_ips == (i * ip_magic) >> ip_shift for every i < total (see divide()) */
	uint64_t ip_magic;
	uint32_t ip_shift;
	/* ports[i] == ports_run_first + i for all i (the usual -p A-B): at() then computes the
	 * port instead of loading it from a table that is 128 KiB for 1-65535 */
	uint16_t ports_are_run;
	uint16_t ports_run_first;
	uint8_t *port_probes;           /* n_ports probe ids, or NULL: every entry is one probe's */
	void *first6;                   /* IPv6 sets: n_ranges first addresses as unsigned
					   __int128 (host order integers), through
					   pyscan_targetset__first6(); NULL for IPv4. void for
					   cffi, which has no 128-bit integers */
};

/* An IPv6 range as Python hands it over: inclusive, both addresses network order. */
struct pyscan_ip6_range {
	uint8_t first[16];
	uint8_t last[16];
};
_Static_assert(sizeof(struct pyscan_ip6_range) == 32, "pyscan_ip6_range layout");

_Static_assert(sizeof(struct pyscan_ip_range) == 8, "pyscan_ip_range layout");
_Static_assert(sizeof(struct pyscan_targetset) == 96, "pyscan_targetset layout");

/* Copies ranges and ports. 0, -EINVAL (no ranges or ports, first > last, ranges unsorted or
 * overlapping, a port listed twice) or -ENOMEM. On failure t holds nothing to free, but
 * free() is safe on it anyway. */
int pyscan_targetset__init(struct pyscan_targetset *t, const struct pyscan_ip_range *ranges,
			   uint32_t n_ranges, const uint16_t *ports, uint32_t n_ports);
/* The same with a probe id per port entry (NULL = init()): entries must be distinct as
 * (probe id, port), so TCP 53 and UDP 53 may both be listed. */
int pyscan_targetset__init_probes(struct pyscan_targetset *t,
				  const struct pyscan_ip_range *ranges, uint32_t n_ranges,
				  const uint16_t *ports, const uint8_t *port_probes, uint32_t n_ports);
/* An IPv6 set: sorted, disjoint, inclusive ranges of at most 2^32 addresses in all.
 * 0, -EINVAL (as init), -E2BIG (more than 2^32 addresses) or -ENOMEM. */
int pyscan_targetset__init6(struct pyscan_targetset *t, const struct pyscan_ip6_range *ranges,
			    uint32_t n_ranges, const uint16_t *ports, const uint8_t *port_probes,
			    uint32_t n_ports);
/* Releases the copies; idempotent, and safe on a zeroed struct. */
void pyscan_targetset__free(struct pyscan_targetset *t);
/* Out-of-line copy of pyscan_targetset__divide for tests. */
uint64_t pyscan_targetset__divide_export(const struct pyscan_targetset *t, uint64_t index);
/* Out-of-line copy of pyscan_targetset__at for Python. */
void pyscan_targetset__at_export(const struct pyscan_targetset *t, uint64_t index,
				 uint32_t *ip_host, uint16_t *port_host);
/* Out-of-line copies of at6 and ip_number6 for Python (addresses network order). */
void pyscan_targetset__at6_export(const struct pyscan_targetset *t, uint64_t index,
				  uint8_t addr_be[16], uint16_t *port_host);
int64_t pyscan_targetset__ip_number6_export(const struct pyscan_targetset *t,
					    const uint8_t addr_be[16]);

/* index / n_ips for index < 2^48, by multiply and shift. With d = n_ips <= 2^32,
 * L = ceil(log2 d), s = 48 + L and m = ceil(2^s / d) (so m < 2^49), the error e = m*d - 2^s
 * is below d, and index * m / 2^s = index / d + index * e / (d * 2^s), where
 * index * e < 2^48 * 2^L = 2^s: the excess stays under 1/d and never reaches the next
 * integer. targetset.c computes m and s; test_targetset.py checks the edges. */
static inline uint64_t pyscan_targetset__divide(const struct pyscan_targetset *t, uint64_t index)
{
	return (uint64_t)(((unsigned __int128)index * t->ip_magic) >> t->ip_shift);
}

static inline const unsigned __int128 *pyscan_targetset__first6(const struct pyscan_targetset *t)
{
	return (const unsigned __int128 *)t->first6;
}

/* The range holding address number ip_index (< n_ips). Largest r with ips_before[r] <=
 * ip_index, branch-free: the comparisons depend on random indices, so branches would
 * mispredict half the time. */
static inline uint32_t pyscan_targetset__range_of(const struct pyscan_targetset *t,
						  uint64_t ip_index)
{
	const uint64_t *base = t->ips_before;
	uint32_t n = t->n_ranges;
	if (t->bucket_first) {
		const uint64_t bucket = ip_index >> t->bucket_shift;
		const uint32_t lo = t->bucket_first[bucket];
		base += lo;
		n = t->bucket_first[bucket + 1] - lo + 1;
	}
	while (n > 1) {
		const uint32_t half = n / 2;
		base = (base[half] <= ip_index) ? base + half : base;
		n -= half;
	}
	return (uint32_t)(base - t->ips_before);
}

/* index < total -> the index-th (address, port), both host byte order. */
static inline void pyscan_targetset__at(const struct pyscan_targetset *t, uint64_t index,
					uint32_t *ip_host, uint16_t *port_host)
{
	const uint64_t port_index = pyscan_targetset__divide(t, index);
	const uint64_t ip_index = index - port_index * t->n_ips;
	const uint32_t r = pyscan_targetset__range_of(t, ip_index);

	*ip_host = t->ranges[r].first + (uint32_t)(ip_index - t->ips_before[r]);
	*port_host = t->ports_are_run ? (uint16_t)(t->ports_run_first + port_index)
				      : t->ports[port_index];
}

/* IPv6 sets: index < total -> the index-th (address, network order, port host order). */
static inline void pyscan_targetset__at6(const struct pyscan_targetset *t, uint64_t index,
					 uint8_t addr_be[16], uint16_t *port_host)
{
	const uint64_t port_index = pyscan_targetset__divide(t, index);
	const uint64_t ip_index = index - port_index * t->n_ips;
	const uint32_t r = pyscan_targetset__range_of(t, ip_index);
	const unsigned __int128 addr = pyscan_targetset__first6(t)[r] +
				       (ip_index - t->ips_before[r]);
	const uint64_t hi_be = __builtin_bswap64((uint64_t)(addr >> 64));
	const uint64_t lo_be = __builtin_bswap64((uint64_t)addr);

	__builtin_memcpy(addr_be, &hi_be, 8);
	__builtin_memcpy(addr_be + 8, &lo_be, 8);
	*port_host = t->ports_are_run ? (uint16_t)(t->ports_run_first + port_index)
				      : t->ports[port_index];
}

static inline unsigned __int128 pyscan_targetset__addr6_number(const uint8_t addr_be[16])
{
	uint64_t hi, lo;
	__builtin_memcpy(&hi, addr_be, 8);
	__builtin_memcpy(&lo, addr_be + 8, 8);
	return ((unsigned __int128)__builtin_bswap64(hi) << 64) | __builtin_bswap64(lo);
}

/* IPv6 sets: the address number of addr_be (network order), or -1 when no range holds it. */
static inline int64_t pyscan_targetset__ip_number6(const struct pyscan_targetset *t,
						   const uint8_t addr_be[16])
{
	if (!t->first6 || !t->n_ranges)
		return -1;
	const unsigned __int128 addr = pyscan_targetset__addr6_number(addr_be);
	const unsigned __int128 *first6 = pyscan_targetset__first6(t);
	if (addr < first6[0])
		return -1;
	const unsigned __int128 *base = first6;
	uint32_t n = t->n_ranges;
	while (n > 1) {
		const uint32_t half = n / 2;
		base = (base[half] <= addr) ? base + half : base;
		n -= half;
	}
	const uint32_t r = (uint32_t)(base - first6);
	const uint64_t count = (r + 1 < t->n_ranges ? t->ips_before[r + 1] : t->n_ips) -
			       t->ips_before[r];
	if (addr - *base >= count)
		return -1;
	return (int64_t)(t->ips_before[r] + (uint64_t)(addr - *base));
}

/* The inverse direction, for replies: ip_host's address number in the set (its position
 * among all the set's addresses, ranges in order, so at() of an index with this address
 * number has this address), or -1 when no range holds it. Binary search over the ranges. */
static inline int64_t pyscan_targetset__ip_number(const struct pyscan_targetset *t,
						  uint32_t ip_host)
{
	if (!t->n_ranges || ip_host < t->ranges[0].first)
		return -1;
	const struct pyscan_ip_range *base = t->ranges;
	uint32_t n = t->n_ranges;
	while (n > 1) {
		const uint32_t half = n / 2;
		base = (base[half].first <= ip_host) ? base + half : base;
		n -= half;
	}
	if (ip_host > base->last)
		return -1;
	return (int64_t)(t->ips_before[base - t->ranges] + (ip_host - base->first));
}

/* The probe id of target index's port entry (0 when the set carries none). */
static inline uint8_t pyscan_targetset__probe_at(const struct pyscan_targetset *t,
						 uint64_t index)
{
	return t->port_probes ? t->port_probes[pyscan_targetset__divide(t, index)] : 0;
}

#endif /* PYSCAN_TARGETSET_H */
