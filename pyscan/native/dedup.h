/* SPDX-License-Identifier: GPL-2.0-only
 *
 * dedup.h - the RX thread's exact "already reported" set: one compressed bitmap (CRoaring,
 * Debian's libroaring) per target port, holding the IPv4 addresses reported on that port.
 *
 * Why roaring: a reply costs 2 bytes while its 64 Ki-address block is sparse (sorted 16-bit
 * array) and the block flips to a fixed 8 KiB bitmap (1 bit per address) once it holds 4096
 * replies, so memory follows min(2 B x replies, 1 bit x addresses) per block, with no
 * rehash: an insert touches one block (memmove of at most 8 KiB) and at worst the sorted
 * block index of its bitmap (at most 65536 entries). docs/_drafts/dedup.md has the numbers.
 *
 * Invariants:
 *  - Exact: first_time() returns 1 exactly once per (IPv4 address, port), whatever the
 *    statuses of its replies: the first status wins (a RST after a SYN-ACK is a duplicate,
 *    as before). Another family is never remembered (-EAFNOSUPPORT: the caller reports it;
 *    a possible duplicate beats a lost result).
 *  - One writer (the RX or ingest caller); bytes and max_insert_ns are read racily.
 */
#ifndef PYSCAN_DEDUP_H
#define PYSCAN_DEDUP_H

#include <stdint.h>

#include "engine.h"

#define PYSCAN_DEDUP_PORTS 65536

struct roaring_bitmap_s;

struct pyscan_dedup {
	/* [port]; NULL until that port's first reply. calloc'd, so only the pages of pointers
	 * actually written become resident. */
	struct roaring_bitmap_s **bitmaps;
	uint64_t *table_pages_touched; /* one bit per 4 KiB page of `bitmaps` */
	uint64_t bytes;                /* allocated by the set, see dedup.c */
	uint64_t max_insert_ns;        /* worst single first_time() call */
};

/* 0 or -ENOMEM. */
int pyscan_dedup__init(struct pyscan_dedup *d);
/* Idempotent; safe on a zeroed struct. */
void pyscan_dedup__free(struct pyscan_dedup *d);
/* 1: first time (now remembered); 0: reported before; < 0: not remembered (see above). */
int pyscan_dedup__first_time(struct pyscan_dedup *d, const struct pyscan_result *res);

#endif /* PYSCAN_DEDUP_H */
