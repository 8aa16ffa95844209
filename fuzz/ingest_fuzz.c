/* SPDX-License-Identifier: GPL-2.0-only
 *
 * ingest_fuzz.c - libFuzzer target for the engine's ingest path (engine_rx.c): parser,
 * checksums, every probe module's classify with a real cookie key, the seen set and the
 * results ring, under ASan + UBSan (make fuzz).
 *
 * Input: byte 0 picks the scan (its value modulo 8 indexes SCANS below: each of the six
 * probe modules alone, then the three IPv4 and the three IPv6 modules together, where each
 * reply goes through the modules in id order until one claims it). Byte 0 < 128 also has the
 * harness recompute the frame's IPv4 header and L4 checksums first, so that a mutated frame
 * (a cut quote, a changed length or field) gets past the checksum check into the modules'
 * classify, which a random mutation almost never does; >= 128 leaves the frame's checksums
 * as they are (the seeds with bad checksums). Bit 6 has the harness first set the IPv4 total
 * length or IPv6 payload length to what the frame holds, so that one cut (a quote shortened
 * into its header) is a frame the parser takes, not two coordinated mutations. Bits 3-5 are
 * free. The rest is the frame. The scans are the ones of the
 * shared reply corpora (tests/corpus/replies/frames.py, frames6.py, modules4.py: key,
 * scanner 198.18.0.1 / 2001:2::1, source ports 40000-40063, UDP ports 53 with a DNS payload
 * and 7), so seeds with valid cookies (fuzz/corpus/ingest, written by fuzz/seeds.py) reach
 * the result path and their mutations the checks around it.
 *
 * Invariant checked on every input: ingest returns a PYSCAN_INGEST_* code; the counters keep
 * engine_rx.c's partition (every frame counted once as malformed, not-ours, bad-checksum or
 * ours; every ours once by outcome); a reported result has the scan's family, a status and
 * protocol of an enabled module, an address that is the frame's source
 * (a reply) or lies in the quote inside its L4 payload (an ICMP error), and the same frame
 * ingested again is a duplicate (or, IPv6 on a port the scan does not probe, reported again). After a report the scan's engine is made anew, so the next
 * input is judged by an engine that saw no report (a crash reproduces from its input alone).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../bpf/probe_ids.h"
#include "engine.h"
#include "probe.h"
#include "reply_parse.h"

static const uint8_t KEY[16] = {0x8f, 0x0c, 0x2a, 0x11, 0xd3, 0x5e, 0x49, 0xb0,
				0x7c, 0x66, 0xf1, 0xa2, 0xb9, 0xe0, 0x4d, 0x13};
static const uint8_t SCANNER6[16] = {0x20, 0x01, 0x00, 0x02, [15] = 0x01};
/* 2001:2:0:7::/112 (frames6.TARGET_RANGE) */
static const uint8_t TARGETS6[32] = {0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x07,
				     [16] = 0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x07,
				     [30] = 0xff, 0xff};
/* UDP payloads: port 53 carries a DNS query (its id is the cookie's low 16 bits); port 7 has
 * none. Record layout: struct pyscan_udp_payload_record (probe.h). */
static const uint8_t UDP_ARGS[] = {53, 0, 12, 0, PYSCAN_UDP_PAYLOAD_DNS, 0, 0, 0,
				   0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};

struct scan {
	uint8_t family;
	uint8_t n_ports;
	uint16_t ports[4];
	uint8_t probes[4];
};

/* Port entries as frames6.ENGINE_PORTS / ENGINE_PROBES: TCP 1, ICMP echo 0, UDP 53 and 7. */
static const struct scan SCANS[] = {
	{4, 1, {1}, {PYSCAN_PROBE_TCP_SYN4}},
	{4, 1, {0}, {PYSCAN_PROBE_ICMP_ECHO4}},
	{4, 2, {53, 7}, {PYSCAN_PROBE_UDP4, PYSCAN_PROBE_UDP4}},
	{6, 1, {1}, {PYSCAN_PROBE_TCP_SYN6}},
	{6, 1, {0}, {PYSCAN_PROBE_ICMP_ECHO6}},
	{6, 2, {53, 7}, {PYSCAN_PROBE_UDP6, PYSCAN_PROBE_UDP6}},
	{4, 4, {1, 0, 53, 7},
	 {PYSCAN_PROBE_TCP_SYN4, PYSCAN_PROBE_ICMP_ECHO4, PYSCAN_PROBE_UDP4, PYSCAN_PROBE_UDP4}},
	{6, 4, {1, 0, 53, 7},
	 {PYSCAN_PROBE_TCP_SYN6, PYSCAN_PROBE_ICMP_ECHO6, PYSCAN_PROBE_UDP6, PYSCAN_PROBE_UDP6}},
};
#define N_SCANS (sizeof(SCANS) / sizeof(SCANS[0]))

static pyscan_engine *engines[N_SCANS];

static pyscan_engine *make_engine(const struct scan *scan)
{
	static const uint32_t ranges[2] = {0, UINT32_MAX};
	struct pyscan_engine_config cfg = {0};
	memcpy(cfg.cookie_key, KEY, sizeof(KEY));
	cfg.seed = 1;
	cfg.n_ranges = 1;
	if (scan->family == 6) {
		cfg.family = 6;
		cfg.ranges6 = TARGETS6;
		memcpy(cfg.source_ip6, SCANNER6, 16);
	} else {
		cfg.ranges = ranges;
		cfg.source_ip_be = __builtin_bswap32(0xc6120001); /* 198.18.0.1 */
	}
	cfg.ports = scan->ports;
	cfg.n_ports = scan->n_ports;
	cfg.port_probes = scan->probes;
	cfg.probe_args = UDP_ARGS;
	cfg.probe_args_len = sizeof(UDP_ARGS);
	cfg.shard_count = 1;
	cfg.tx_threads = 1;
	cfg.max_results = 1024;
	cfg.source_port_first = 40000;
	cfg.source_port_count = 64;
	cfg.mss = 1460;
	cfg.window = 1024;
	cfg.ttl = 64;
	char err[256];
	pyscan_engine *e = pyscan_engine__create(&cfg, err, sizeof(err));
	if (!e)
		abort();
	return e;
}

static int valid_code(int rc)
{
	return rc == PYSCAN_INGEST_OPEN || rc == PYSCAN_INGEST_CLOSED ||
	       rc == PYSCAN_INGEST_MALFORMED || rc == PYSCAN_INGEST_NOT_OURS ||
	       rc == PYSCAN_INGEST_INVALID_COOKIE || rc == PYSCAN_INGEST_DUPLICATE ||
	       rc == PYSCAN_INGEST_IGNORED_FLAGS || rc == PYSCAN_INGEST_BAD_CHECKSUM;
}

static uint8_t module_protocol(uint8_t probe_id)
{
	switch (probe_id) {
	case PYSCAN_PROBE_TCP_SYN4:
	case PYSCAN_PROBE_TCP_SYN6:
		return PYSCAN_IPPROTO_TCP;
	case PYSCAN_PROBE_ICMP_ECHO4:
		return PYSCAN_IPPROTO_ICMP;
	case PYSCAN_PROBE_ICMP_ECHO6:
		return PYSCAN_IPPROTO_ICMPV6;
	default:
		return PYSCAN_IPPROTO_UDP;
	}
}

static int in_target_set(const struct scan *scan, const uint8_t addr[16])
{
	return scan->family == 4 || memcmp(addr, TARGETS6, 14) == 0; /* IPv4: 0.0.0.0/0 */
}

/* The result is what the frame says: its family, a protocol of the scan's modules, its
 * status in the class of rc; the address (and port) of the reply's source, or - for an ICMP
 * error - found in the quoted datagram inside the reply's L4 payload. */
static void check_result(const struct scan *scan, const struct pyscan_result *res, int rc,
			 const uint8_t *frame, uint32_t len)
{
	struct pyscan_reply_view v;
	if (pyscan_reply__parse(frame, len, &v) != PYSCAN_REPLY_OK || v.family != scan->family ||
	    res->family != scan->family)
		abort();
	if (rc == PYSCAN_INGEST_OPEN ? res->status != PYSCAN_RESULT_OPEN &&
					       res->status != PYSCAN_RESULT_UP
				     : res->status != PYSCAN_RESULT_CLOSED &&
					       res->status != PYSCAN_RESULT_UNREACHABLE)
		abort();
	int protocol_enabled = 0;
	for (uint32_t i = 0; i < scan->n_ports; i++)
		protocol_enabled |= module_protocol(scan->probes[i]) == res->l4_proto;
	if (!protocol_enabled)
		abort();
	static const uint8_t zero[12];
	const uint32_t addr_len = scan->family == 4 ? 4 : 16;
	if (scan->family == 4 && memcmp(res->addr + 4, zero, 12) != 0)
		abort();
	const int icmp = v.l4_proto == PYSCAN_IPPROTO_ICMP || v.l4_proto == PYSCAN_IPPROTO_ICMPV6;
	const int quoted = icmp && (res->l4_proto != v.l4_proto ||
				    res->status == PYSCAN_RESULT_UNREACHABLE);
	if (!quoted) {
		if (memcmp(res->addr, v.saddr, 16) != 0 || res->port != (icmp ? 0 : v.sport))
			abort();
	} else if (v.l4_len < 8 || !memmem(v.l4 + 8, v.l4_len - 8, res->addr, addr_len)) {
		abort();
	}
}

static void put_sum(uint8_t *at, uint64_t sum, int zero_is_none)
{
	uint16_t folded = pyscan_probe__fold(sum);
	if (!folded && zero_is_none)
		folded = 0xffff;
	memcpy(at, &folded, 2);
}

/* The IP length field set to the bytes after the IP header's start (up to two VLAN tags
 * skipped, as the parser does). */
static void fix_length(uint8_t *frame, uint32_t len)
{
	uint32_t at = 12;
	for (int tags = 0; tags < 2 && len >= at + 6; tags++) {
		const uint16_t tpid = (uint16_t)(frame[at] << 8 | frame[at + 1]);
		if (tpid != 0x8100 && tpid != 0x88a8)
			break;
		at += 4;
	}
	if (len < at + 2)
		return;
	const uint16_t ethertype = (uint16_t)(frame[at] << 8 | frame[at + 1]);
	const uint32_t l3 = at + 2;
	if (ethertype == 0x0800 && len >= l3 + 20 && len - l3 <= 0xffff) {
		frame[l3 + 2] = (uint8_t)((len - l3) >> 8);
		frame[l3 + 3] = (uint8_t)(len - l3);
	} else if (ethertype == 0x86dd && len >= l3 + 40 && len - l3 - 40 <= 0xffff) {
		frame[l3 + 4] = (uint8_t)((len - l3 - 40) >> 8);
		frame[l3 + 5] = (uint8_t)(len - l3 - 40);
	}
}

/* The checksums a sender would have written, where the parser finds the headers they cover
 * (the same ranges pyscan_reply__checksums_ok sums); the frame is left alone otherwise. */
static void fix_checksums(uint8_t *frame, uint32_t len)
{
	struct pyscan_reply_view v;
	if (!len || pyscan_reply__parse(frame, len, &v) != PYSCAN_REPLY_OK || !v.l4_complete)
		return;
	uint8_t *l3 = frame + (v.l3 - frame), *l4 = frame + (v.l4 - frame);
	uint8_t pseudo[40];
	uint32_t pseudo_len;
	if (v.family == 4) {
		const uint32_t ihl = (uint32_t)(l4 - l3);
		memset(l3 + 10, 0, 2);
		put_sum(l3 + 10, pyscan_probe__sum(l3, ihl), 0);
		memcpy(pseudo, l3 + 12, 8);
		pseudo[8] = 0;
		pseudo[9] = v.l4_proto;
		pseudo[10] = (uint8_t)(v.l4_len >> 8);
		pseudo[11] = (uint8_t)v.l4_len;
		pseudo_len = v.l4_proto == PYSCAN_IPPROTO_ICMP ? 0 : 12;
	} else {
		memcpy(pseudo, l3 + 8, 32);
		const uint32_t l4_len_be = __builtin_bswap32(v.l4_len);
		memcpy(pseudo + 32, &l4_len_be, 4);
		memset(pseudo + 36, 0, 3);
		pseudo[39] = v.l4_proto;
		pseudo_len = 40;
	}
	uint32_t at;
	switch (v.l4_proto) {
	case PYSCAN_IPPROTO_TCP:
		at = 16;
		break;
	case PYSCAN_IPPROTO_UDP:
		at = 6;
		break;
	case PYSCAN_IPPROTO_ICMP:
	case PYSCAN_IPPROTO_ICMPV6:
		at = 2;
		break;
	default:
		return;
	}
	memset(l4 + at, 0, 2);
	put_sum(l4 + at, pyscan_probe__sum(pseudo, pseudo_len) + pyscan_probe__sum(l4, v.l4_len),
		v.l4_proto == PYSCAN_IPPROTO_UDP);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	const uint32_t which = (data[0] & 7) % N_SCANS;
	const struct scan *scan = &SCANS[which];
	if (!engines[which])
		engines[which] = make_engine(scan);
	pyscan_engine *engine = engines[which];
	const uint32_t len = (uint32_t)(size - 1);
	/* A buffer of exactly the frame's length: one byte read past it is an ASan report. */
	uint8_t *frame = malloc(len ? len : 1);
	if (!frame)
		return 0;
	memcpy(frame, data + 1, len);
	if (data[0] & 0x40)
		fix_length(frame, len);
	if (!(data[0] & 0x80))
		fix_checksums(frame, len);

	struct pyscan_engine_stats before, after;
	pyscan_engine__stats(engine, &before);
	const int rc = pyscan_engine__ingest(engine, len ? frame : NULL, len);
	pyscan_engine__stats(engine, &after);

	if (!valid_code(rc) || (!len && rc != PYSCAN_INGEST_MALFORMED))
		abort();
	const uint64_t kinds = (after.rx_malformed - before.rx_malformed) +
			       (after.rx_not_ours - before.rx_not_ours) +
			       (after.rx_bad_checksum - before.rx_bad_checksum) +
			       (after.rx_ours - before.rx_ours);
	const uint64_t ours = (after.rx_ignored_flags - before.rx_ignored_flags) +
			      (after.rx_invalid_cookie - before.rx_invalid_cookie) +
			      (after.rx_duplicates - before.rx_duplicates) +
			      (after.rx_open - before.rx_open) + (after.rx_closed - before.rx_closed) +
			      (after.rx_unreachable - before.rx_unreachable);
	if (after.rx_frames != before.rx_frames + 1 || kinds != 1 ||
	    ours != after.rx_ours - before.rx_ours)
		abort();

	if (rc == PYSCAN_INGEST_OPEN || rc == PYSCAN_INGEST_CLOSED) {
		struct pyscan_result res;
		if (pyscan_engine__drain(engine, &res, 1) != 1)
			abort();
		check_result(scan, &res, rc, frame, len);
		/* Every report is of an address in the target set: udp's cookie in a reply
		 * without a payload check is only its choice of source port (6 bits here), so
		 * the udp modules ask the set (the IPv4 scans here span the whole space). The
		 * seen set remembers every IPv4 result, an IPv6 one on a scanned port (dedup.c:
		 * others are reported again, never lost). */
		if (scan->family == 6 && !in_target_set(scan, res.addr))
			abort();
		int scanned_port = 0;
		for (uint32_t i = 0; i < scan->n_ports; i++)
			scanned_port |= scan->ports[i] == res.port;
		const int remembered = scan->family == 4 ||
				       (scanned_port && in_target_set(scan, res.addr));
		const int again = pyscan_engine__ingest(engine, frame, len);
		if (remembered ? again != PYSCAN_INGEST_DUPLICATE
			       : again != rc || pyscan_engine__drain(engine, &res, 1) != 1)
			abort();
	}
	free(frame);
	return 0;
}
