/* SPDX-License-Identifier: GPL-2.0-only
 *
 * tcp_reply.h - the part of a TCP SYN module's classify() that does not depend on the
 * address family (probe_tcp_syn4.c, probe_tcp_syn6.c): which SYN-ACK or RST is a candidate
 * and whether it says open or closed, the result of a reply whose cookie checked out (window,
 * the options MSS, window scale, SACK-permitted and timestamps: zmap's reply fields; the
 * RTT from the timestamp echo), the result of an ICMP unreachable quoting a SYN, and the
 * timestamp clock and per-connection offset that fill_batch and the RTT share. Each module
 * keeps what is its family's: the addresses, the cookie over them and the quote's parsing.
 *
 * Invariant: reads only within the TCP header as both its data offset and the capture allow;
 * a malformed option list ends the walk (what was read before it stays).
 */
#ifndef PYSCAN_TCP_REPLY_H
#define PYSCAN_TCP_REPLY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine.h"
#include "probe.h"
#include "ratelimit.h"
#include "reply_parse.h"

#define PYSCAN_TCP_FIN 0x01
#define PYSCAN_TCP_SYN 0x02
#define PYSCAN_TCP_RST 0x04
#define PYSCAN_TCP_ACK 0x10
#define PYSCAN_TCP_MIN_DOFF 5

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

/* The sequence number (host order) in the first 8 TCP bytes an ICMP error quotes: our SYN's
 * cookie when the quote is of one of our probes. */
static inline uint32_t pyscan_tcp_reply__quoted_seq(const uint8_t *quoted_tcp)
{
	return (uint32_t)quoted_tcp[4] << 24 | (uint32_t)quoted_tcp[5] << 16 |
	       (uint32_t)quoted_tcp[6] << 8 | quoted_tcp[7];
}

/* The checks of a TCP reply to the scanner's address that come before its cookie, in this
 * order: a cut-short header is MALFORMED, a destination port outside the source-port range
 * NOT_OURS, a data offset that does not fit the segment MALFORMED (as the kernel's TCP
 * demands), flags other than SYN-ACK or RST+ACK IGNORED_FLAGS. 0 and *status (OPEN or
 * CLOSED) when the reply is a candidate; else that PYSCAN_INGEST_* code. */
static inline int pyscan_tcp_reply__status(const struct pyscan_probe_env *env,
					   const struct pyscan_reply_view *r, uint8_t *status)
{
	if (!r->l4_complete)
		return PYSCAN_INGEST_MALFORMED;
	if (!pyscan_probe__in_source_range(env, r->dport))
		return PYSCAN_INGEST_NOT_OURS;
	if (r->tcp_doff < PYSCAN_TCP_MIN_DOFF || (uint32_t)r->tcp_doff * 4 > r->l4_len)
		return PYSCAN_INGEST_MALFORMED;
	const uint8_t flags = r->tcp_flags;
	if ((flags & (PYSCAN_TCP_SYN | PYSCAN_TCP_ACK | PYSCAN_TCP_RST | PYSCAN_TCP_FIN)) ==
	    (PYSCAN_TCP_SYN | PYSCAN_TCP_ACK))
		*status = PYSCAN_RESULT_OPEN;
	else if ((flags & (PYSCAN_TCP_RST | PYSCAN_TCP_ACK | PYSCAN_TCP_SYN)) ==
		 (PYSCAN_TCP_RST | PYSCAN_TCP_ACK))
		*status = PYSCAN_RESULT_CLOSED;
	else
		return PYSCAN_INGEST_IGNORED_FLAGS;
	return 0;
}

/* For a reply that pyscan_tcp_reply__status() passed with status, and cookie that of the
 * probe (recomputed from the reply's tuple reversed): INVALID_COOKIE unless the reply
 * acknowledges cookie + 1; else *out, with the RTT when the probe carried a timestamp
 * (has_timestamp: the template's tsval_offset != 0) and the reply echoes one, and
 * PYSCAN_INGEST_OPEN or _CLOSED. */
static inline int pyscan_tcp_reply__result(const struct pyscan_probe_env *env,
					   const struct pyscan_reply_view *r, uint32_t cookie,
					   uint8_t status, int has_timestamp,
					   struct pyscan_result *out)
{
	if (r->tcp_ack - 1 != cookie)
		return PYSCAN_INGEST_INVALID_COOKIE;
	memcpy(out->addr, r->saddr, sizeof(out->addr));
	out->port = r->sport;
	out->status = status;
	out->ttl = r->ttl;
	out->family = r->family;
	out->l4_proto = PYSCAN_IPPROTO_TCP;
	pyscan_tcp_reply__read_options(r, out);
	out->rtt_us = PYSCAN_RESULT_RTT_UNKNOWN;
	/* Only a SYN-ACK echoes our timestamp (a RST carries no options as a rule). */
	if (has_timestamp && (out->tcp_options & PYSCAN_TCPOPT_TIMESTAMP) && out->ts_ecr) {
		const uint32_t sent_us = out->ts_ecr - pyscan_tcp_reply__ts_offset(env, cookie);
		const uint32_t rtt = pyscan_tcp_reply__clock_us() - sent_us;
		if (rtt < (1u << 31)) /* else an echo we did not send: unknown, not negative */
			out->rtt_us = rtt;
	}
	return status == PYSCAN_RESULT_OPEN ? PYSCAN_INGEST_OPEN : PYSCAN_INGEST_CLOSED;
}

/* *out for an ICMP (or ICMPv6) destination unreachable r whose quote is one of our SYNs to
 * target (addr_len bytes, network order) port dport: `unreachable` with the error's type and
 * code. Returns PYSCAN_INGEST_CLOSED: a negative answer, the engine counts it by its status. */
static inline int pyscan_tcp_reply__unreachable(const struct pyscan_reply_view *r,
						const void *target, size_t addr_len,
						uint16_t dport, struct pyscan_result *out)
{
	memset(out->addr, 0, sizeof(out->addr));
	memcpy(out->addr, target, addr_len);
	out->port = dport;
	out->status = PYSCAN_RESULT_UNREACHABLE;
	out->ttl = r->ttl; /* of the ICMP error, from whichever router or host sent it */
	out->family = r->family;
	out->l4_proto = PYSCAN_IPPROTO_TCP;
	out->icmp_type = r->icmp_type;
	out->icmp_code = r->icmp_code;
	out->rtt_us = PYSCAN_RESULT_RTT_UNKNOWN;
	return PYSCAN_INGEST_CLOSED;
}

#endif /* PYSCAN_TCP_REPLY_H */
