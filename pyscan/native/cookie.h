/* SPDX-License-Identifier: GPL-2.0-only
 *
 * cookie.h (native) - the probe cookie as the C data plane and Python tests call it.
 *
 * The algorithm lives in ../bpf/cookie.h, shared verbatim with the XDP program; this header
 * only adds entry points that take the key as the 16 raw bytes Python holds.
 *
 * Invariant: pyscan_cookie__compute(key, ...) == pyscan_cookie(&key_words, ...) where
 * key_words is the key read as two little-endian 64-bit words, i.e. exactly what the BPF
 * program is given, so C, BPF and Python agree on every cookie.
 */
#ifndef PYSCAN_NATIVE_COOKIE_H
#define PYSCAN_NATIVE_COOKIE_H

#include <stdint.h>
#include <string.h>

#include "../bpf/cookie.h"

_Static_assert(sizeof(struct pyscan_cookie_key) == 16, "pyscan_cookie_key layout");
_Static_assert(sizeof(struct pyscan_cookie_addr6) == 16, "pyscan_cookie_addr6 layout");

/* The 16 key bytes as the two little-endian words SipHash takes. */
static inline struct pyscan_cookie_key pyscan_cookie_key__from_bytes(const uint8_t key[16])
{
	struct pyscan_cookie_key words;
	uint64_t k0 = 0, k1 = 0;

	for (int i = 7; i >= 0; i--) {
		k0 = (k0 << 8) | key[i];
		k1 = (k1 << 8) | key[8 + i];
	}
	words.k0 = k0;
	words.k1 = k1;
	return words;
}

uint32_t pyscan_cookie__compute(const uint8_t key[16], uint32_t saddr_be, uint32_t daddr_be,
				uint16_t sport_be, uint16_t dport_be);
uint64_t pyscan_cookie__siphash(const uint8_t key[16], uint32_t saddr_be, uint32_t daddr_be,
				uint16_t sport_be, uint16_t dport_be);
/* IPv6: 16-byte addresses in network order (cookie.h's 36-byte tuple). */
uint64_t pyscan_cookie__siphash6(const uint8_t key[16], const uint8_t saddr[16],
				 const uint8_t daddr[16], uint16_t sport_be, uint16_t dport_be);

#endif /* PYSCAN_NATIVE_COOKIE_H */
