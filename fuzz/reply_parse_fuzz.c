/* SPDX-License-Identifier: GPL-2.0-only
 *
 * reply_parse_fuzz.c - libFuzzer target for the one reply parser (reply_parse.h) and its
 * checksum check, under ASan + UBSan (make fuzz).
 *
 * Invariant checked on every input: the frame is copied into a buffer of exactly its length
 * (so one byte past it is an ASan report); on PYSCAN_REPLY_OK every pointer + length of the
 * view lies inside it, l3_len covers the IP header (IPv4: at least 20 bytes; IPv6: exactly the
 * 40-byte fixed header), and l4_complete matches the fixed header size of the protocol (ICMP
 * only in IPv4, ICMPv6 only in IPv6); parsing is a pure function (the same bytes parse the same twice).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reply_parse.h"

static uint32_t fixed_header(uint8_t proto, uint8_t family)
{
	switch (proto) {
	case PYSCAN_IPPROTO_TCP:
		return 20;
	case PYSCAN_IPPROTO_UDP:
		return 8;
	case PYSCAN_IPPROTO_ICMP:
		return family == 4 ? 8 : UINT32_MAX;
	case PYSCAN_IPPROTO_ICMPV6:
		return family == 6 ? 8 : UINT32_MAX;
	default:
		return UINT32_MAX;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	uint8_t *frame = malloc(size ? size : 1);
	if (!frame)
		return 0;
	memcpy(frame, data, size);
	const uint32_t len = (uint32_t)size;

	struct pyscan_reply_view v, again;
	const int rc = pyscan_reply__parse(size ? frame : NULL, len, &v);
	if (rc != PYSCAN_REPLY_OK && rc != PYSCAN_REPLY_MALFORMED && rc != PYSCAN_REPLY_NOT_IP)
		abort();
	if (rc == PYSCAN_REPLY_OK) {
		const uint8_t *end = frame + len;
		if ((v.family != 4 && v.family != 6) || v.l3 < frame || v.l3 + v.l3_len > end ||
		    v.l4 < v.l3 || v.l4 + v.l4_len > end || v.l4 + v.l4_len != v.l3 + v.l3_len ||
		    (v.family == 4 ? v.l4 - v.l3 < 20 : v.l4 - v.l3 != 40) || v.vlan_tags > 2)
			abort();
		const uint32_t need = fixed_header(v.l4_proto, v.family);
		if (v.l4_complete != (need != UINT32_MAX && v.l4_len >= need))
			abort();
		const int ok = pyscan_reply__checksums_ok(&v, 0);
		const int trusted = pyscan_reply__checksums_ok(&v, 1);
		if ((ok != 0 && ok != 1) || (ok && !trusted))
			abort(); /* trusting the L4 sum can only accept more */
	}
	if (pyscan_reply__parse(size ? frame : NULL, len, &again) != rc ||
	    memcmp(&v, &again, sizeof(v)) != 0)
		abort();
	free(frame);
	return 0;
}
