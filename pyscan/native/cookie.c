/* SPDX-License-Identifier: GPL-2.0-only
 *
 * cookie.c - byte-keyed wrappers around the shared SipHash cookie (../bpf/cookie.h).
 *
 * Invariant: no hashing logic here; both functions defer to the header the XDP program uses.
 */
#include "cookie.h"

uint32_t pyscan_cookie__compute(const uint8_t key[16], uint32_t saddr_be, uint32_t daddr_be,
				uint16_t sport_be, uint16_t dport_be)
{
	const struct pyscan_cookie_key words = pyscan_cookie_key__from_bytes(key);
	return pyscan_cookie(&words, saddr_be, daddr_be, sport_be, dport_be);
}

uint64_t pyscan_cookie__siphash(const uint8_t key[16], uint32_t saddr_be, uint32_t daddr_be,
				uint16_t sport_be, uint16_t dport_be)
{
	const struct pyscan_cookie_key words = pyscan_cookie_key__from_bytes(key);
	return pyscan_siphash_tuple(&words, saddr_be, daddr_be, sport_be, dport_be);
}

uint64_t pyscan_cookie__siphash6(const uint8_t key[16], const uint8_t saddr[16],
				 const uint8_t daddr[16], uint16_t sport_be, uint16_t dport_be)
{
	const struct pyscan_cookie_key words = pyscan_cookie_key__from_bytes(key);
	return pyscan_siphash_tuple6(&words, pyscan_cookie_addr6__load(saddr),
				     pyscan_cookie_addr6__load(daddr), sport_be, dport_be);
}
