/* SPDX-License-Identifier: GPL-2.0-only
 *
 * ring.c - the driver-independent entry points Python uses on any ring.
 *
 * Invariant: these only dispatch through ring->ops; no driver logic lives here.
 */
#include <string.h>

#include "ring.h"

void pyscan_ring__stats(struct pyscan_ring *ring, struct pyscan_ring_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (ring && ring->ops->get_stats)
		ring->ops->get_stats(ring, out);
}

const char *pyscan_ring__error(struct pyscan_ring *ring)
{
	return ring ? ring->error : "";
}

void pyscan_ring__destroy(struct pyscan_ring *ring)
{
	if (ring)
		ring->ops->destroy(ring);
}
