/* SPDX-License-Identifier: GPL-2.0-only
 *
 * cookie.h - the probe cookie: SipHash-2-4 over the probe's 12-byte tuple.
 *
 * Shared verbatim by the C data plane (pyscan/native) and the XDP reply filter (pyscan/bpf),
 * so that a cookie computed when a SYN is built is bit-for-bit the cookie the kernel and the
 * RX thread recompute from the reply.
 *
 * Invariant: the message is saddr | daddr | sport | dport of the *probe*, each field in network
 * byte order, 12 bytes, hashed exactly as the SipHash reference hashes those 12 bytes with the
 * 16-byte key k0 || k1 (both little-endian words). The probe's TCP sequence number is the low
 * 32 bits of the hash; a valid reply acknowledges cookie + 1. Written without loops or helpers
 * so the BPF verifier accepts it as straight-line code.
 *
 * IPv6 probes hash the 36-byte tuple saddr(16) | daddr(16) | sport | dport (network order)
 * with the same per-scan key (pyscan_siphash_tuple6): one key, one hash, two message sizes.
 */
#ifndef PYSCAN_COOKIE_H
#define PYSCAN_COOKIE_H

#include <linux/types.h>

#ifndef PYSCAN_ALWAYS_INLINE
#define PYSCAN_ALWAYS_INLINE static inline __attribute__((always_inline))
#endif

struct pyscan_cookie_key {
	__u64 k0; /* key bytes 0..7, read little-endian */
	__u64 k1; /* key bytes 8..15, read little-endian */
};

#define PYSCAN_ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

#define PYSCAN_SIPROUND(v0, v1, v2, v3)                                        \
	do {                                                                   \
		v0 += v1; v1 = PYSCAN_ROTL64(v1, 13); v1 ^= v0;                \
		v0 = PYSCAN_ROTL64(v0, 32);                                    \
		v2 += v3; v3 = PYSCAN_ROTL64(v3, 16); v3 ^= v2;                \
		v0 += v3; v3 = PYSCAN_ROTL64(v3, 21); v3 ^= v0;                \
		v2 += v1; v1 = PYSCAN_ROTL64(v1, 17); v1 ^= v2;                \
		v2 = PYSCAN_ROTL64(v2, 32);                                    \
	} while (0)

/* One 8-byte message word (little-endian) with SipHash-2-4's two compression rounds. */
#define PYSCAN_SIPHASH_WORD(v0, v1, v2, v3, m)                                 \
	do {                                                                   \
		v3 ^= (m);                                                     \
		PYSCAN_SIPROUND(v0, v1, v2, v3);                               \
		PYSCAN_SIPROUND(v0, v1, v2, v3);                               \
		v0 ^= (m);                                                     \
	} while (0)

/* The four finalization rounds; the 64-bit hash is then v0 ^ v1 ^ v2 ^ v3. */
#define PYSCAN_SIPHASH_FINISH(v0, v1, v2, v3)                                  \
	do {                                                                   \
		v2 ^= 0xff;                                                    \
		PYSCAN_SIPROUND(v0, v1, v2, v3);                               \
		PYSCAN_SIPROUND(v0, v1, v2, v3);                               \
		PYSCAN_SIPROUND(v0, v1, v2, v3);                               \
		PYSCAN_SIPROUND(v0, v1, v2, v3);                               \
	} while (0)

/* SipHash-2-4 of the 12 bytes  saddr(4) daddr(4) sport(2) dport(2), all network byte order
 * as they sit in the packet. The *_be arguments are the raw header fields. Little-endian
 * hosts only (x86_64, aarch64 as configured by every distribution we build on). */
PYSCAN_ALWAYS_INLINE __u64 pyscan_siphash_tuple(const struct pyscan_cookie_key *key,
						__u32 saddr_be, __u32 daddr_be,
						__u16 sport_be, __u16 dport_be)
{
	__u64 v0 = 0x736f6d6570736575ULL ^ key->k0;
	__u64 v1 = 0x646f72616e646f6dULL ^ key->k1;
	__u64 v2 = 0x6c7967656e657261ULL ^ key->k0;
	__u64 v3 = 0x7465646279746573ULL ^ key->k1;
	__u64 m0 = (__u64)saddr_be | ((__u64)daddr_be << 32);
	__u64 m1 = ((__u64)12 << 56) | (__u64)sport_be | ((__u64)dport_be << 16);

	PYSCAN_SIPHASH_WORD(v0, v1, v2, v3, m0);
	PYSCAN_SIPHASH_WORD(v0, v1, v2, v3, m1);
	PYSCAN_SIPHASH_FINISH(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The probe's sequence number for (saddr, daddr, sport, dport) of the probe. */
PYSCAN_ALWAYS_INLINE __u32 pyscan_cookie(const struct pyscan_cookie_key *key, __u32 saddr_be,
					 __u32 daddr_be, __u16 sport_be, __u16 dport_be)
{
	return (__u32)pyscan_siphash_tuple(key, saddr_be, daddr_be, sport_be, dport_be);
}

/* A 16-byte address as the two little-endian words SipHash reads from those bytes. memcpy, not a
 * cast: packet addresses sit at offsets that are not 8-byte aligned. */
struct pyscan_cookie_addr6 {
	__u64 lo; /* address bytes 0..7 */
	__u64 hi; /* address bytes 8..15 */
};

PYSCAN_ALWAYS_INLINE struct pyscan_cookie_addr6 pyscan_cookie_addr6__load(const void *addr)
{
	struct pyscan_cookie_addr6 a;

	__builtin_memcpy(&a.lo, addr, 8);
	__builtin_memcpy(&a.hi, (const __u8 *)addr + 8, 8);
	return a;
}

/* SipHash-2-4 of the 36 bytes  saddr(16) daddr(16) sport(2) dport(2), network byte order as
 * they sit in the packet: four whole words and a tail word holding the ports and the length. */
PYSCAN_ALWAYS_INLINE __u64 pyscan_siphash_tuple6(const struct pyscan_cookie_key *key,
						 struct pyscan_cookie_addr6 saddr,
						 struct pyscan_cookie_addr6 daddr,
						 __u16 sport_be, __u16 dport_be)
{
	__u64 v0 = 0x736f6d6570736575ULL ^ key->k0;
	__u64 v1 = 0x646f72616e646f6dULL ^ key->k1;
	__u64 v2 = 0x6c7967656e657261ULL ^ key->k0;
	__u64 v3 = 0x7465646279746573ULL ^ key->k1;
	__u64 tail = ((__u64)36 << 56) | (__u64)sport_be | ((__u64)dport_be << 16);

	PYSCAN_SIPHASH_WORD(v0, v1, v2, v3, saddr.lo);
	PYSCAN_SIPHASH_WORD(v0, v1, v2, v3, saddr.hi);
	PYSCAN_SIPHASH_WORD(v0, v1, v2, v3, daddr.lo);
	PYSCAN_SIPHASH_WORD(v0, v1, v2, v3, daddr.hi);
	PYSCAN_SIPHASH_WORD(v0, v1, v2, v3, tail);
	PYSCAN_SIPHASH_FINISH(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The IPv6 probe's cookie: the low 32 bits, as for IPv4. */
PYSCAN_ALWAYS_INLINE __u32 pyscan_cookie6(const struct pyscan_cookie_key *key,
					  struct pyscan_cookie_addr6 saddr,
					  struct pyscan_cookie_addr6 daddr,
					  __u16 sport_be, __u16 dport_be)
{
	return (__u32)pyscan_siphash_tuple6(key, saddr, daddr, sport_be, dport_be);
}

#endif /* PYSCAN_COOKIE_H */
