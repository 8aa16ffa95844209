/* SPDX-License-Identifier: GPL-2.0-only
 *
 * dedup.c - the exact reported-set of dedup.h over CRoaring bitmaps.
 *
 * A block never costs more than its 8 KiB bitset: CRoaring 0.2 caps an array block's
 * capacity at DEFAULT_MAX_SIZE (4096 entries, 8 KiB) and turns it into a bitset at 4097.
 *
 * Memory accounting: CRoaring 0.2 (Debian bookworm) has no allocator hooks, so after each
 * new insert the set re-reads the one block it touched and its bitmap's block index, through
 * the library's public struct layout (roaring_array_t, *_container_t), and adjusts `bytes`
 * by the difference: O(log blocks) per insert, never a walk over the whole set. Counted: the
 * payload of every allocation plus MALLOC_HEADER for each, and every 4 KiB page of the
 * pointer table that holds a bitmap.
 *
 * Invariant: bytes == the sum above after every first_time() (single writer).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <roaring/containers/containers.h>
#include <roaring/roaring.h>

#include "counter.h"
#include "dedup.h"
#include "ratelimit.h"

#define MALLOC_HEADER 16
/* One bitmap slot per (protocol of the probe, inside/outside the set, port): TCP 53, UDP 53
 * and the ICMP echo (port 0) are three results (probes branch). calloc'd: untouched pages of
 * the table cost nothing. */
#define DEDUP_PROTOCOLS 3
#define TABLE_SLOTS ((size_t)2 * PYSCAN_DEDUP_PORTS * DEDUP_PROTOCOLS)
#define TABLE_PAGE 4096
#define SLOTS_PER_PAGE (TABLE_PAGE / sizeof(roaring_bitmap_t *))
#define TABLE_PAGES (TABLE_SLOTS / SLOTS_PER_PAGE)

static uint64_t block_bytes(const void *block, uint8_t type)
{
	switch (type) {
	case ARRAY_CONTAINER_TYPE_CODE:
		return sizeof(array_container_t) + MALLOC_HEADER +
		       (uint64_t)((const array_container_t *)block)->capacity * sizeof(uint16_t) +
		       MALLOC_HEADER;
	case BITSET_CONTAINER_TYPE_CODE:
		return sizeof(bitset_container_t) + MALLOC_HEADER +
		       BITSET_CONTAINER_SIZE_IN_WORDS * sizeof(uint64_t) + MALLOC_HEADER;
	case RUN_CONTAINER_TYPE_CODE:
		return sizeof(run_container_t) + MALLOC_HEADER +
		       (uint64_t)((const run_container_t *)block)->capacity * sizeof(rle16_t) +
		       MALLOC_HEADER;
	default: /* shared blocks come only from copies, which this set never makes */
		return 0;
	}
}

/* Block index arrays: keys, block pointers and type codes, one allocation in CRoaring 0.2. */
static uint64_t index_bytes(const roaring_bitmap_t *b)
{
	const roaring_array_t *ra = &b->high_low_container;
	const uint64_t per_entry = sizeof(void *) + sizeof(uint16_t) + sizeof(uint8_t);
	return sizeof(*b) + MALLOC_HEADER +
	       (ra->allocation_size ? (uint64_t)ra->allocation_size * per_entry + MALLOC_HEADER : 0);
}

/* Position of the block holding `high` in b's index, or -1. */
static int32_t block_at(const roaring_bitmap_t *b, uint16_t high)
{
	const roaring_array_t *ra = &b->high_low_container;
	int32_t lo = 0, hi = ra->size - 1;
	while (lo <= hi) {
		const int32_t mid = (lo + hi) >> 1;
		if (ra->keys[mid] < high)
			lo = mid + 1;
		else if (ra->keys[mid] > high)
			hi = mid - 1;
		else
			return mid;
	}
	return -1;
}

static uint64_t bytes_around(const roaring_bitmap_t *b, int32_t at)
{
	const roaring_array_t *ra = &b->high_low_container;
	return at < 0 ? 0 : block_bytes(ra->containers[at], ra->typecodes[at]);
}

int pyscan_dedup__init(struct pyscan_dedup *d, const struct pyscan_targetset *targets)
{
	memset(d, 0, sizeof(*d));
	d->targets = targets;
	for (uint32_t i = 0; targets && i < targets->n_ports; i++)
		d->scanned_ports[targets->ports[i] / 64] |= 1ULL << (targets->ports[i] % 64);
	d->bitmaps = calloc(TABLE_SLOTS, sizeof(*d->bitmaps));
	d->table_pages_touched = calloc(TABLE_PAGES / 64, sizeof(uint64_t));
	if (!d->bitmaps || !d->table_pages_touched) {
		pyscan_dedup__free(d);
		return -ENOMEM;
	}
	return 0;
}

void pyscan_dedup__free(struct pyscan_dedup *d)
{
	if (d->bitmaps)
		for (size_t i = 0; i < TABLE_SLOTS; i++)
			if (d->bitmaps[i])
				roaring_bitmap_free(d->bitmaps[i]);
	free(d->bitmaps);
	free(d->table_pages_touched);
	memset(d, 0, sizeof(*d));
}

static roaring_bitmap_t *bitmap_for(struct pyscan_dedup *d, size_t slot)
{
	roaring_bitmap_t *b = d->bitmaps[slot];
	if (b)
		return b;
	b = roaring_bitmap_create();
	if (!b)
		return NULL;
	d->bitmaps[slot] = b;
	uint64_t grown = index_bytes(b);
	const size_t page = slot / SLOTS_PER_PAGE;
	if (!(d->table_pages_touched[page / 64] & (1ULL << (page % 64)))) {
		d->table_pages_touched[page / 64] |= 1ULL << (page % 64);
		grown += TABLE_PAGE;
	}
	pyscan_counter__bump(&d->bytes, grown);
	return b;
}

/* The key of an IPv6 result: its address number when the target set holds it on a scanned
 * port, else -1 (not remembered: reported again if repeated, never lost). IPv6 sets hold at
 * most 2^32 addresses (targetset.h), so the number fits the same 32-bit bitmaps. */
static int64_t number6(const struct pyscan_dedup *d, const struct pyscan_result *res)
{
	if (!d->targets || !(d->scanned_ports[res->port / 64] & (1ULL << (res->port % 64))))
		return -1;
	return pyscan_targetset__ip_number6(d->targets, res->addr);
}

static int remember(struct pyscan_dedup *d, const struct pyscan_result *res)
{
	int64_t number;
	uint32_t ip_host = 0;
	if (res->family == 6) {
		number = number6(d, res);
		if (number < 0)
			return -EAFNOSUPPORT;
	} else if (res->family == 4) {
		uint32_t ip_be;
		memcpy(&ip_be, res->addr, sizeof(ip_be));
		ip_host = __builtin_bswap32(ip_be); /* raw keys: /16 blocks */
		number = d->targets && !d->targets->first6 &&
			(d->scanned_ports[res->port / 64] & (1ULL << (res->port % 64))) ?
			pyscan_targetset__ip_number(d->targets, ip_host) : -1;
	} else {
		return -EAFNOSUPPORT;
	}
	/* address numbers are < n_ips <= 2^32: they fit the bitmap's 32-bit values */
	const uint32_t key = number >= 0 ? (uint32_t)number : ip_host;
	/* the probe's protocol picks the slot group (probes branch): 0 TCP, 1 UDP, 2 ICMP
	 * (ICMPv6 echo too: a scan is one family, so the two never share a table) */
	const size_t protocol = res->l4_proto == 17 ? 1 :
				(res->l4_proto == 1 || res->l4_proto == 58) ? 2 : 0;
	roaring_bitmap_t *b = bitmap_for(d, 2 * PYSCAN_DEDUP_PORTS * protocol +
					     (number >= 0 ? 0 : PYSCAN_DEDUP_PORTS) + res->port);
	if (!b)
		return -ENOMEM;
	const uint16_t high = (uint16_t)(key >> 16);
	const uint64_t before = bytes_around(b, block_at(b, high)) + index_bytes(b);
	if (!roaring_bitmap_add_checked(b, key))
		return 0;
	const int32_t at = block_at(b, high);
	const uint64_t after = bytes_around(b, at) + index_bytes(b);
	pyscan_counter__bump(&d->bytes, after - before); /* unsigned wrap handles shrinking */
	return 1;
}

int pyscan_dedup__first_time(struct pyscan_dedup *d, const struct pyscan_result *res)
{
	const uint64_t start = pyscan_clock__now_ns();
	const int rc = remember(d, res);
	const uint64_t took = pyscan_clock__now_ns() - start;
	if (took > d->max_insert_ns)
		__atomic_store_n(&d->max_insert_ns, took, __ATOMIC_RELAXED);
	return rc;
}
