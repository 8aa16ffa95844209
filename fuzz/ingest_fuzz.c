/* SPDX-License-Identifier: GPL-2.0-only
 *
 * ingest_fuzz.c - libFuzzer target for the engine's ingest path (engine_rx.c): parser,
 * checksums, the tcp-syn classifier with a real cookie key, the seen set and the results
 * ring, under ASan + UBSan (make fuzz). The scan is the one of the shared reply corpus
 * (tests/corpus/replies/frames.py: key, scanner 198.18.0.1, source ports 40000-40063), so
 * seeds with valid cookies reach the result path and their mutations the checks around it.
 *
 * Invariant checked on every input: ingest returns a PYSCAN_INGEST_* code, the counters keep
 * engine_rx.c's partition (every frame counted once as malformed, not-ours, bad-checksum or
 * ours; every ours once by outcome), and a reported result is the frame's source.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "reply_parse.h"

static const uint8_t KEY[16] = {0x8f, 0x0c, 0x2a, 0x11, 0xd3, 0x5e, 0x49, 0xb0,
				0x7c, 0x66, 0xf1, 0xa2, 0xb9, 0xe0, 0x4d, 0x13};

static pyscan_engine *engine;

static pyscan_engine *make_engine(void)
{
	static const uint32_t ranges[2] = {0, UINT32_MAX};
	static const uint16_t ports[1] = {1};
	struct pyscan_engine_config cfg = {0};
	memcpy(cfg.cookie_key, KEY, sizeof(KEY));
	cfg.seed = 1;
	cfg.ranges = ranges;
	cfg.n_ranges = 1;
	cfg.ports = ports;
	cfg.n_ports = 1;
	cfg.source_ip_be = __builtin_bswap32(0xc6120001); /* 198.18.0.1 */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	if (!engine)
		engine = make_engine();
	uint8_t *frame = malloc(size ? size : 1);
	if (!frame)
		return 0;
	memcpy(frame, data, size);

	struct pyscan_engine_stats before, after;
	pyscan_engine__stats(engine, &before);
	const int rc = pyscan_engine__ingest(engine, size ? frame : NULL, (uint32_t)size);
	pyscan_engine__stats(engine, &after);

	if (rc != PYSCAN_INGEST_OPEN && rc != PYSCAN_INGEST_CLOSED && rc != PYSCAN_INGEST_MALFORMED &&
	    rc != PYSCAN_INGEST_NOT_OURS && rc != PYSCAN_INGEST_INVALID_COOKIE &&
	    rc != PYSCAN_INGEST_DUPLICATE && rc != PYSCAN_INGEST_IGNORED_FLAGS &&
	    rc != PYSCAN_INGEST_BAD_CHECKSUM)
		abort();
	if (!size && rc != PYSCAN_INGEST_MALFORMED)
		abort();
	const uint64_t kinds = (after.rx_malformed - before.rx_malformed) +
			       (after.rx_not_ours - before.rx_not_ours) +
			       (after.rx_bad_checksum - before.rx_bad_checksum) +
			       (after.rx_ours - before.rx_ours);
	const uint64_t ours = (after.rx_ignored_flags - before.rx_ignored_flags) +
			      (after.rx_invalid_cookie - before.rx_invalid_cookie) +
			      (after.rx_duplicates - before.rx_duplicates) +
			      (after.rx_open - before.rx_open) + (after.rx_closed - before.rx_closed);
	if (after.rx_frames != before.rx_frames + 1 || kinds != 1 ||
	    ours != after.rx_ours - before.rx_ours)
		abort();

	if (rc == PYSCAN_INGEST_OPEN || rc == PYSCAN_INGEST_CLOSED) {
		struct pyscan_result res;
		struct pyscan_reply_view v;
		if (pyscan_engine__drain(engine, &res, 1) != 1 || res.family != 4 ||
		    res.status != (rc == PYSCAN_INGEST_OPEN ? PYSCAN_RESULT_OPEN
							    : PYSCAN_RESULT_CLOSED))
			abort();
		if (pyscan_reply__parse(frame, (uint32_t)size, &v) != PYSCAN_REPLY_OK ||
		    memcmp(res.addr, v.saddr, sizeof(res.addr)) != 0 || res.port != v.sport)
			abort();
	}
	free(frame);
	return 0;
}
