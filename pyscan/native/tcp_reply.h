/* SPDX-License-Identifier: GPL-2.0-only
 *
 * tcp_reply.h - what a TCP SYN module reads from a SYN-ACK or RST besides the cookie: the
 * window and the options MSS, window scale, SACK-permitted and timestamps (zmap's reply
 * fields), and the timestamp clock and per-connection offset that give the RTT.
 *
 * Used by probe_tcp_syn6.c; probe_tcp_syn4.c holds the same code as static functions (its
 * copy moves here once the branches editing that file this session are merged).
 *
 * Invariant: reads only within the TCP header as both its data offset and the capture allow;
 * a malformed option list ends the walk (what was read before it stays).
 */
#ifndef PYSCAN_TCP_REPLY_H
#define PYSCAN_TCP_REPLY_H

#include <stdint.h>

#include "engine.h"
#include "probe.h"
#include "ratelimit.h"
#include "reply_parse.h"

/* CLOCK_MONOTONIC microseconds modulo 2^32 (differences stay right below 71 minutes). */
static inline uint32_t pyscan_tcp_reply__clock_us(void)
{
	return (uint32_t)(pyscan_clock__now_ns() / 1000);
}

/* Per-connection offset of the timestamp value, from the probe's cookie. */
static inline uint32_t pyscan_tcp_reply__ts_offset(const struct pyscan_probe_env *env,
						   uint32_t cookie)
{
	return (uint32_t)pyscan_probe__mix64(cookie ^ env->sport_key);
}

static inline void pyscan_tcp_reply__read_options(const struct pyscan_reply_view *r,
						  struct pyscan_result *out)
{
	const uint8_t *tcp = r->l4;
	uint32_t end = (uint32_t)r->tcp_doff * 4;
	if (end > r->l4_len)
		end = r->l4_len;
	out->window = (uint16_t)(tcp[14] << 8 | tcp[15]);
	for (uint32_t at = 20; at < end;) {
		const uint8_t kind = tcp[at];
		if (kind == 0) /* end of options */
			break;
		if (kind == 1) { /* no-op */
			at++;
			continue;
		}
		if (at + 2 > end)
			break;
		const uint8_t len = tcp[at + 1];
		if (len < 2 || at + len > end)
			break;
		const uint8_t *v = tcp + at + 2;
		if (kind == 2 && len == 4) {
			out->mss = (uint16_t)(v[0] << 8 | v[1]);
			out->tcp_options |= PYSCAN_TCPOPT_MSS;
		} else if (kind == 3 && len == 3) {
			out->wscale = v[0];
			out->tcp_options |= PYSCAN_TCPOPT_WSCALE;
		} else if (kind == 4 && len == 2) {
			out->tcp_options |= PYSCAN_TCPOPT_SACK_OK;
		} else if (kind == 8 && len == 10) {
			out->ts_val = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 |
				      (uint32_t)v[2] << 8 | v[3];
			out->ts_ecr = (uint32_t)v[4] << 24 | (uint32_t)v[5] << 16 |
				      (uint32_t)v[6] << 8 | v[7];
			out->tcp_options |= PYSCAN_TCPOPT_TIMESTAMP;
		}
		at += len;
	}
}

#endif /* PYSCAN_TCP_REPLY_H */
