/* SPDX-License-Identifier: GPL-2.0-only
 *
 * dedup.h - the RX thread's exact "already reported" set: one compressed bitmap (CRoaring,
 * Debian's libroaring) per target port, holding the address numbers (targetset.h
 * ip_number: the address's position among the scan's addresses) reported on that port.
 *
 * Why roaring, keyed by address number: a reply costs 2 bytes while its block of 65536
 * consecutive address numbers is sparse (sorted 16-bit array), and the block becomes a fixed
 * 8 KiB bitmap (1 bit per address number) once it holds 4096 replies. Address numbers are
 * dense over the target set, so a port's bitmap never holds more bits than the port has
 * targets (rounded up to one 64 Ki block), however the ranges are scattered over IPv4: memory
 * is at most min(~2 B x replies, 1 bit x targets) per block plus fixed overheads. No rehash:
 * an insert touches one block (moves at most 8 KiB) and at worst the sorted block index of
 * its bitmap (at most 65536 entries). docs/_drafts/dedup.md has the numbers.
 *
 * A reply from outside the target set (an address no range holds or a port not scanned; it
 * can only pass the cookie check by a 2^-32 chance or a forged cookie) goes to a second set
 * of bitmaps keyed by the raw IPv4 address, so it is still reported exactly once.
 *
 * Invariants:
 *  - Exact: first_time() returns 1 exactly once per (probe protocol, IPv4 address, port),
 *    whatever the statuses of its replies: the first status wins (a RST after a SYN-ACK is a duplicate,
 *    as before). IPv6 results are keyed by their address number in an IPv6 target set
 *    (targetset.h ip_number6; at most 2^32 addresses, so the same 32-bit bitmaps and the
 *    same memory bound); an IPv6 reply from outside the set (a forged or 2^-32 cookie) is
 *    not remembered (-EAFNOSUPPORT: the caller reports it; a possible duplicate beats a
 *    lost result), nor is any other family.
 *  - targets outlives the set; one writer (the RX or ingest caller); bytes and
 *    max_insert_ns are read racily.
 */
#ifndef PYSCAN_DEDUP_H
#define PYSCAN_DEDUP_H

#include <stdint.h>

#include "engine.h"
#include "targetset.h"

#define PYSCAN_DEDUP_PORTS 65536

struct roaring_bitmap_s;

struct pyscan_dedup {
	const struct pyscan_targetset *targets; /* NULL: every reply is keyed by its address */
	/* [port] for targets by address number, [PORTS + port] for replies outside the set;
	 * NULL until that slot's first reply. calloc'd, so only the pages of pointers actually
	 * written become resident. */
	struct roaring_bitmap_s **bitmaps;
	uint64_t *table_pages_touched; /* one bit per 4 KiB page of `bitmaps` */
	uint64_t scanned_ports[PYSCAN_DEDUP_PORTS / 64];
	uint64_t bytes;                /* allocated by the set, see dedup.c */
	uint64_t max_insert_ns;        /* worst single first_time() call */
};

/* 0 or -ENOMEM. */
int pyscan_dedup__init(struct pyscan_dedup *d, const struct pyscan_targetset *targets);
/* Idempotent; safe on a zeroed struct. */
void pyscan_dedup__free(struct pyscan_dedup *d);
/* 1: first time (now remembered); 0: reported before; < 0: not remembered (see above). */
int pyscan_dedup__first_time(struct pyscan_dedup *d, const struct pyscan_result *res);

#endif /* PYSCAN_DEDUP_H */
