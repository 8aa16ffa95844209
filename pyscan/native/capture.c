/* SPDX-License-Identifier: GPL-2.0-only
 *
 * capture.c - the --pcap frame ring (capture.h): head is written by the producer only,
 * tail by the consumer only; each publishes with release and reads the other with acquire,
 * so a slot is never read while written.
 */
#include "capture.h"

#include <stdlib.h>
#include <string.h>

#define CACHELINE 64

struct pyscan_capture {
	struct pyscan_capture_frame *slots;
	uint64_t mask;
	uint64_t head __attribute__((aligned(CACHELINE))); /* producer writes */
	uint64_t dropped;                                   /* producer writes */
	uint64_t tail __attribute__((aligned(CACHELINE))); /* consumer writes */
};

pyscan_capture *pyscan_capture__create(uint32_t slots)
{
	if (slots < 1 || slots > PYSCAN_CAPTURE_MAX_SLOTS)
		return NULL;
	uint64_t size = 2;
	while (size < slots)
		size <<= 1;
	pyscan_capture *c = aligned_alloc(CACHELINE, sizeof(*c));
	if (!c)
		return NULL;
	memset(c, 0, sizeof(*c));
	c->slots = calloc(size, sizeof(*c->slots));
	if (!c->slots) {
		free(c);
		return NULL;
	}
	c->mask = size - 1;
	return c;
}

void pyscan_capture__destroy(pyscan_capture *c)
{
	if (!c)
		return;
	free(c->slots);
	free(c);
}

void pyscan_capture__push(pyscan_capture *c, const uint8_t *frame, uint32_t len,
			  uint64_t timestamp_ns)
{
	const uint64_t head = c->head;
	const uint64_t tail = __atomic_load_n(&c->tail, __ATOMIC_ACQUIRE);
	if (head - tail > c->mask) {
		__atomic_store_n(&c->dropped, c->dropped + 1, __ATOMIC_RELAXED);
		return;
	}
	struct pyscan_capture_frame *slot = &c->slots[head & c->mask];
	slot->timestamp_ns = timestamp_ns;
	slot->len = len;
	slot->caplen = len < PYSCAN_CAPTURE_SNAPLEN ? len : PYSCAN_CAPTURE_SNAPLEN;
	memcpy(slot->data, frame, slot->caplen);
	__atomic_store_n(&c->head, head + 1, __ATOMIC_RELEASE);
}

uint32_t pyscan_capture__drain(pyscan_capture *c, struct pyscan_capture_frame *out,
			       uint32_t max)
{
	const uint64_t tail = c->tail;
	const uint64_t head = __atomic_load_n(&c->head, __ATOMIC_ACQUIRE);
	uint32_t n = 0;
	while (n < max && tail + n < head) {
		out[n] = c->slots[(tail + n) & c->mask];
		n++;
	}
	__atomic_store_n(&c->tail, tail + n, __ATOMIC_RELEASE);
	return n;
}

uint64_t pyscan_capture__dropped(const pyscan_capture *c)
{
	return __atomic_load_n(&c->dropped, __ATOMIC_RELAXED);
}
