/* SPDX-License-Identifier: GPL-2.0-only
 *
 * engine.h - the scan's per-packet work, written once against ring.h: TX threads walk their
 * share of a keyed permutation of targets x ports and have the scan's probe module (probe.h)
 * fill frames into ring slots; one RX thread parses replies (reply_parse.h), lets the module
 * validate cookies and classify, suppresses duplicates and queues results (results.h).
 * Code: engine.c (create, stats, targets), engine_tx.c, engine_rx.c.
 *
 * Invariants:
 *  - Exactly-once TX: permutation input index i belongs to shard s = i mod S, and within the
 *    shard to thread t = (i / S) mod T; thread t walks i = s + S*(t + T*k) for k = 0, 1, ...
 *    so threads and shards are disjoint and their union is [0, total), or [0, max_probes)
 *    when that is smaller: the first max_probes inputs of the permutation are a keyed random
 *    sample, the same one however the scan is sharded or threaded. Each thread sends each of
 *    its pairs exactly retries + 1 times, in the order of its retry schedule (schedule.h),
 *    two probes of one pair at least retry_delay_ns apart. A probe is generated only into a
 *    reserved slot and every reserved slot is submitted, so nothing is sent more often than
 *    that and nothing is skipped unless stop_tx was set.
 *  - Exactly-once RX: a (target ip, target port) pair is reported at most once per engine,
 *    decided by a compressed bitmap set that never forgets (dedup.h); results are never dropped (a full results
 *    ring makes the RX thread wait, and what is still pending at stop stays for drain()),
 *    except for want of memory, and then each one is counted in results_lost.
 *  - Lifetime: destroy stops the loops and waits until no thread is inside the engine
 *    (engine_internal.h); the loops also leave a ring that is being destroyed (ring.h).
 *  - Counters are written by one thread each and read racily (relaxed atomics) by Python.
 */
#ifndef PYSCAN_ENGINE_H
#define PYSCAN_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "arp_responder.h"
#include "capture.h"
#include "ring.h"

#define PYSCAN_ENGINE_MAX_TX_THREADS 64
#define PYSCAN_ENGINE_MAX_BATCH 1024
#define PYSCAN_ENGINE_DEFAULT_BATCH 64
#define PYSCAN_ENGINE_DEFAULT_MAX_RESULTS 1048576
#define PYSCAN_ENGINE_MAX_RETRIES 15

#define PYSCAN_RESULT_OPEN 1
#define PYSCAN_RESULT_CLOSED 2
#define PYSCAN_RESULT_UP 3          /* icmp-echo: an echo reply */
#define PYSCAN_RESULT_UNREACHABLE 4 /* an ICMP destination unreachable quoting the probe */
#define PYSCAN_RESULT_RTT_UNKNOWN 0xffffffffu

/* TCP options seen in a reply (struct pyscan_result.tcp_options). */
#define PYSCAN_TCPOPT_MSS 1
#define PYSCAN_TCPOPT_WSCALE 2
#define PYSCAN_TCPOPT_SACK_OK 4
#define PYSCAN_TCPOPT_TIMESTAMP 8

/* What pyscan_engine__ingest says about one frame (negative: not reported, and why). */
#define PYSCAN_INGEST_OPEN 1
#define PYSCAN_INGEST_CLOSED 2
#define PYSCAN_INGEST_MALFORMED -1
#define PYSCAN_INGEST_NOT_OURS -2
#define PYSCAN_INGEST_INVALID_COOKIE -3
#define PYSCAN_INGEST_DUPLICATE -4
#define PYSCAN_INGEST_IGNORED_FLAGS -5
#define PYSCAN_INGEST_BAD_CHECKSUM -6

struct pyscan_engine_config {
	uint8_t cookie_key[16];                /* SipHash key, k0 || k1 little-endian */
	uint64_t seed;                         /* permutation seed */
	double rate_pps;                       /* total for all TX threads; 0 = unlimited */
	const uint32_t *ranges;                /* n_ranges (first, last) pairs, host order,
	                                          inclusive, sorted, disjoint; copied */
	const uint16_t *ports;                 /* host order; copied */
	uint32_t n_ranges;
	uint32_t n_ports;
	uint32_t source_ip_be;
	uint32_t shard_index;                  /* 0-based, < shard_count */
	uint32_t shard_count;
	uint32_t tx_threads;                   /* 1..PYSCAN_ENGINE_MAX_TX_THREADS */
	uint32_t batch_size;                   /* 0 = PYSCAN_ENGINE_DEFAULT_BATCH */
	uint32_t max_results;                  /* results ring bound; 0 = default */
	uint8_t source_mac[6];
	uint8_t gateway_mac[6];
	uint16_t source_port_first;            /* host order */
	uint16_t mss;
	uint32_t source_port_count;            /* 1..65536 - first */
	uint16_t window;
	uint8_t ttl;
	uint8_t probe_id;                      /* probe module (probe_ids.h) of every port entry
	                                          when port_probes is NULL; 0 = tcp-syn */
	uint64_t max_probes;                   /* whole scan, all shards; 0 = every probe */
	uint64_t retry_delay_ns;               /* at least this between two probes of a pair */
	uint32_t retries;                      /* each pair gets retries + 1 probes;
	                                          0..PYSCAN_ENGINE_MAX_RETRIES */
	uint8_t tcp_options;                   /* PYSCAN_TCP_OPTIONS_* (template.h) */
	uint8_t reserved[3];                   /* zero */
	const uint8_t *port_probes;            /* n_ports probe ids, one per port entry, or NULL;
	                                          copied. TCP 53 and UDP 53 are two entries */
	const uint8_t *probe_args;             /* module arguments (UDP payload records, probe.h);
	                                          read by the modules' init only */
	uint32_t probe_args_len;
	uint32_t probe_reserved;               /* zero */
	uint8_t family;                        /* 0 or 4: IPv4 targets from ranges; 6: IPv6
	                                          targets from ranges6 (one family per scan) */
	uint8_t family_reserved[7];            /* zero */
	const uint8_t *ranges6;                /* family 6: n_ranges (first, last) pairs of
	                                          16-byte addresses, network order, inclusive,
	                                          sorted, disjoint, <= 2^32 addresses; copied */
	uint8_t source_ip6[16];                /* family 6: the scanner's address, network order */
};

/* One validated, first-seen reply. Fixed size for every probe type: an IPv6 address fits,
 * and ICMP replies carry their type and code. */
struct pyscan_result {
	uint8_t addr[16];       /* the target: IPv4 in bytes 0..3 (network order), rest zero */
	uint64_t timestamp_ns;  /* CLOCK_REALTIME when the reply was parsed */
	uint16_t port;          /* the target's port, host order; 0 for ICMP echo */
	uint8_t status;         /* PYSCAN_RESULT_* */
	uint8_t ttl;            /* TTL / hop limit of the reply */
	uint8_t family;         /* 4 or 6 */
	uint8_t l4_proto;       /* IP protocol of the probe (6 TCP, 17 UDP, 1 ICMP echo): part
	                           of the dedup key, so UDP 53 and TCP 53 are two results */
	uint8_t icmp_type;      /* when the reply was ICMP (echo reply, unreachable) */
	uint8_t icmp_code;
	/* TCP replies: what the answering stack said about itself (zmap's reply fields). */
	uint16_t window;        /* TCP window, host order */
	uint16_t mss;           /* MSS option value (when tcp_options has PYSCAN_TCPOPT_MSS) */
	uint8_t wscale;         /* window scale shift (PYSCAN_TCPOPT_WSCALE) */
	uint8_t tcp_options;    /* PYSCAN_TCPOPT_* present in the reply */
	uint8_t reserved[2];
	uint32_t ts_val;        /* timestamp option value and echo (PYSCAN_TCPOPT_TIMESTAMP) */
	uint32_t ts_ecr;
	uint32_t rtt_us;        /* send to receive, from the echoed timestamp; UINT32_MAX = unknown */
	uint32_t reserved2;
};

struct pyscan_engine_stats {
	uint64_t total_targets;      /* probes this shard owes (all its threads) */
	uint64_t generated;          /* frames (every pass counts) */
	uint64_t sent;               /* frames the rings accepted */
	uint64_t tx_errors;
	uint64_t tx_retries;
	uint64_t tx_threads;
	uint64_t tx_threads_done;
	uint64_t tx_stopped;         /* 1 once stop_tx was requested */
	uint64_t rx_frames;
	uint64_t rx_malformed;       /* truncated, bad IPv4, fragments */
	uint64_t rx_not_ours;        /* well-formed but not TCP to our ip and port range */
	uint64_t rx_ours;
	uint64_t rx_ignored_flags;   /* ours but neither SYN-ACK nor RST+ACK */
	uint64_t rx_invalid_cookie;
	uint64_t rx_open;
	uint64_t rx_closed;
	uint64_t rx_duplicates;
	uint64_t results_pending;    /* queued, not drained yet */
	uint64_t results_full_waits; /* times the RX thread waited on a full results ring */
	uint64_t rx_bad_checksum;    /* IPv4 header or L4 checksum wrong: dropped before classify */
	uint64_t dedup_bytes;        /* memory of the reported-set (dedup.h) */
	uint64_t dedup_max_insert_ns; /* worst single reported-set lookup/insert */
	uint64_t thread_sent[PYSCAN_ENGINE_MAX_TX_THREADS];
	uint64_t thread_generated[PYSCAN_ENGINE_MAX_TX_THREADS]; /* frames: each lane's position */
	uint64_t total_frames;       /* frames this shard owes: total_targets x passes */
	uint64_t passes;             /* probes per pair: retries + 1 */
	uint64_t results_lost;       /* results dropped: no memory to queue them (never silent) */
	uint64_t rx_unreachable;     /* reported ICMP destination unreachables (not in rx_closed) */
};

struct pyscan_engine;
typedef struct pyscan_engine pyscan_engine;

pyscan_engine *pyscan_engine__create(const struct pyscan_engine_config *cfg, char *err,
				     size_t errlen);
void pyscan_engine__destroy(pyscan_engine *engine);
int pyscan_engine__run_tx(pyscan_engine *engine, uint32_t thread_index, pyscan_ring *ring);
int pyscan_engine__run_rx(pyscan_engine *engine, pyscan_ring *ring);
int pyscan_engine__ingest(pyscan_engine *engine, const uint8_t *frame, uint32_t len);
/* Remembers n (IPv4 address in host order, port, probe protocol 6/17/1) pairs as already
 * reported (resume), before run_rx. Returns how many were new, -EBUSY while RX runs,
 * -ENOMEM. */
int pyscan_engine__mark_reported(pyscan_engine *engine, const uint32_t *ips_host,
				 const uint16_t *ports, const uint8_t *l4_protos, uint32_t n);
/* The same for an IPv6 scan: 16 bytes (network order) per address in addrs16; an address
 * outside the target set is skipped (the RX path does not remember those either). */
int pyscan_engine__mark_reported6(pyscan_engine *engine, const uint8_t *addrs16,
				  const uint16_t *ports, const uint8_t *l4_protos, uint32_t n);
uint32_t pyscan_engine__drain(pyscan_engine *engine, struct pyscan_result *out, uint32_t max);
void pyscan_engine__stats(pyscan_engine *engine, struct pyscan_engine_stats *out);
void pyscan_engine__stop_tx(pyscan_engine *engine);
void pyscan_engine__stop_rx(pyscan_engine *engine);
/* Copy every reply with a valid cookie (duplicates too) into capture, for --pcap. Set before
 * run_rx starts, NULL to stop; the engine does not own it: destroy it after the engine. */
void pyscan_engine__set_capture(pyscan_engine *engine, pyscan_capture *capture);
/* Copy the first bytes of every reported UDP reply's payload into snippets (not owned, like
 * capture): each record's data is the target's address (4 bytes, or 16 in an IPv6 scan, network
 * order), its port (2 bytes, network order), then the payload; len is the whole payload's length. The
 * record's timestamp equals the result's. Set before run_rx; lossy like capture. */
void pyscan_engine__set_snippets(pyscan_engine *engine, pyscan_capture *snippets);
/* Answer ARP requests for the scan's unowned source address from the RX thread
 * (arp_responder.h): frames that are not IP go to arp before they are counted not_ours. Not
 * owned, like capture: set before run_rx, close it after the engine. NULL: the host's kernel
 * (or the XDP filter) answers ARP. */
void pyscan_engine__set_arp_responder(pyscan_engine *engine, pyscan_arp_responder *arp);
/* Pairs thread thread_index owes in this shard (tests, progress, resume); it sends each of
 * them retries + 1 times. */
uint64_t pyscan_engine__thread_total(const pyscan_engine *engine, uint32_t thread_index);
/* The targets of TX thread thread_index's probes k_first .. k_first + n - 1, in the order it
 * sends them: host-order addresses and ports. Returns how many exist (fewer at the end). With
 * one TX thread this is the shard's whole order, which is what -sL prints. */
uint32_t pyscan_engine__targets(const pyscan_engine *engine, uint32_t thread_index,
				uint64_t k_first, uint32_t n, uint32_t *ip_out, uint16_t *port_out);
/* The same for an IPv6 scan: addr_out receives 16 bytes (network order) per target. */
uint32_t pyscan_engine__targets6(const pyscan_engine *engine, uint32_t thread_index,
				 uint64_t k_first, uint32_t n, uint8_t *addr_out, uint16_t *port_out);
/* Sets TX thread thread_index's position (frames already sent: the one counter a resume
 * saves, thread_generated in the stats) before its run_tx. 0, -EBUSY while it runs, -ERANGE
 * past its last frame, -EINVAL for a bad thread. */
int pyscan_engine__seek(pyscan_engine *engine, uint32_t thread_index, uint64_t position);
/* The retry schedule of TX thread thread_index (schedule.h): for its frames at positions
 * position .. position + n - 1, the pair index k (as in pyscan_engine__targets) and the pass
 * (0 = first probe). Returns how many exist (fewer at the end). */
uint32_t pyscan_engine__schedule(const pyscan_engine *engine, uint32_t thread_index,
				 uint64_t position, uint32_t n, uint64_t *k_out, uint32_t *pass_out);

_Static_assert(sizeof(struct pyscan_engine_config) == 184, "pyscan_engine_config layout");
_Static_assert(sizeof(struct pyscan_result) == 56, "pyscan_result layout");
_Static_assert(sizeof(struct pyscan_engine_stats) == 8 * (26 + 2 * PYSCAN_ENGINE_MAX_TX_THREADS),
	       "pyscan_engine_stats layout");

#endif /* PYSCAN_ENGINE_H */
