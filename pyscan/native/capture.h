/* SPDX-License-Identifier: GPL-2.0-only
 *
 * capture.h - the reply frames kept for --pcap: a bounded single-producer single-consumer
 * ring of fixed-size slots between the RX thread and Python.
 *
 * Invariants:
 *  - Lossy on purpose, and counted: when Python falls behind, push() drops the frame and
 *    counts it in `dropped`; it never waits, so a capture can never slow the RX thread or
 *    cost a result (results have their own lossless ring, results.h).
 *  - Every pushed frame keeps its original length and the first PYSCAN_CAPTURE_SNAPLEN
 *    bytes (enough for Ethernet, VLAN, IPv4 and TCP headers with every option).
 *  - The producer is the one RX thread; the consumer is one thread calling drain().
 */
#ifndef PYSCAN_CAPTURE_H
#define PYSCAN_CAPTURE_H

#include <stdint.h>

#define PYSCAN_CAPTURE_SNAPLEN 240
#define PYSCAN_CAPTURE_MAX_SLOTS (1u << 20)

struct pyscan_capture_frame {
	uint64_t timestamp_ns; /* CLOCK_REALTIME when the RX thread parsed it */
	uint32_t len;          /* length on the wire */
	uint32_t caplen;       /* bytes kept in data: min(len, PYSCAN_CAPTURE_SNAPLEN) */
	uint8_t data[PYSCAN_CAPTURE_SNAPLEN];
};
_Static_assert(sizeof(struct pyscan_capture_frame) == 256, "pyscan_capture_frame layout");

typedef struct pyscan_capture pyscan_capture;

/* slots is rounded up to a power of two (at least 2, at most PYSCAN_CAPTURE_MAX_SLOTS);
 * NULL on bad size or no memory. */
pyscan_capture *pyscan_capture__create(uint32_t slots);
void pyscan_capture__destroy(pyscan_capture *c);
/* Producer only: keep frame, or count it dropped when the ring is full. */
void pyscan_capture__push(pyscan_capture *c, const uint8_t *frame, uint32_t len,
			  uint64_t timestamp_ns);
/* Consumer only: up to max frames, oldest first. */
uint32_t pyscan_capture__drain(pyscan_capture *c, struct pyscan_capture_frame *out,
			       uint32_t max);
uint64_t pyscan_capture__dropped(const pyscan_capture *c);

#endif /* PYSCAN_CAPTURE_H */
