/* SPDX-License-Identifier: GPL-2.0-only
 *
 * engine_rx.c - the RX loop and ingest(): each received frame goes through the one parser
 * (reply_parse.h) and its checksums are verified, then the scan's probe module classifies it
 * and checks its cookie (probe.h), then the seen set and the results ring (results.h).
 *
 * Frames are offered to the ARP responder when the scan's source address is not the host's
 * (arp_responder.h: ARP requests, or IPv6 neighbour solicitations); they are still counted as
 * the parser and modules see them (not_ours), a request is no reply.
 *
 * Invariant: every frame increments rx_frames and exactly one of malformed, not_ours,
 * bad_checksum or ours; every "ours" frame exactly one of ignored_flags, invalid_cookie,
 * duplicates, open, closed, unreachable (a reported result's status). Only the one RX (or ingest) caller writes these counters.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "counter.h"
#include "engine_internal.h"
#include "ratelimit.h"
#include "reply_parse.h"

#define RX_BURST 64
#define RX_WAIT_MS 20
/* After stop_rx, frames already queued are still parsed until the ring is empty, for at most
 * this long: a full 32768-frame ring takes a few ms, while a flood that never lets the ring
 * empty must not keep the RX thread alive. */
#define RX_STOP_BUDGET_NS (500ull * 1000 * 1000)

#define bump pyscan_counter__bump

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Result.payload: the UDP reply's first bytes behind the target's address (4 bytes, or 16
 * in an IPv6 scan) and port (the join key on the Python side), through a lossy capture ring
 * of its own (engine.h). */
static void push_snippet(pyscan_capture *snippets, const struct pyscan_result *res,
			 const struct pyscan_reply_view *view)
{
	uint8_t record[PYSCAN_CAPTURE_SNAPLEN];
	const uint32_t addr_len = res->family == 6 ? 16 : 4;
	const uint32_t payload_len = view->l4_len - 8; /* classify saw the whole UDP header */
	const uint32_t room = PYSCAN_CAPTURE_SNAPLEN - addr_len - 2;
	const uint32_t kept = payload_len < room ? payload_len : room;
	const uint16_t port_be = __builtin_bswap16(res->port);

	memcpy(record, res->addr, addr_len);
	memcpy(record + addr_len, &port_be, 2);
	memcpy(record + addr_len + 2, view->l4 + 8, kept);
	pyscan_capture__push(snippets, record, addr_len + 2 + kept, res->timestamp_ns);
}

static int ingest(struct pyscan_engine *e, const uint8_t *frame, uint32_t len, uint32_t flags,
		  int in_rx_loop)
{
	struct pyscan_engine_rx_counters *c = &e->rx;
	struct pyscan_reply_view view;
	struct pyscan_result res = {0};

	bump(&c->frames, 1);
	int rc = pyscan_reply__parse(frame, len, &view);
	/* every frame: an IPv6 responder's solicitations are IP (the responder's byte checks
	 * reject anything else first) */
	if (e->arp)
		pyscan_arp_responder__handle(e->arp, frame, len);
	if (rc != PYSCAN_REPLY_OK)
		rc = rc == PYSCAN_REPLY_NOT_IP ? PYSCAN_INGEST_NOT_OURS : PYSCAN_INGEST_MALFORMED;
	/* Before classify: a corrupted frame must not be believed on its cookie, nor reported. */
	else if (!pyscan_reply__checksums_ok(&view, flags & PYSCAN_RX_L4_CSUM_TRUSTED))
		rc = PYSCAN_INGEST_BAD_CHECKSUM;
	else {
		/* Each enabled module in id order until one claims the reply (probe.h). */
		rc = PYSCAN_INGEST_NOT_OURS;
		for (uint32_t m = 0; m < e->n_modules && rc == PYSCAN_INGEST_NOT_OURS; m++)
			rc = e->modules[m]->classify(e->probe_state[e->module_ids[m]], &e->env, &view,
						     &res);
	}

	switch (rc) {
	case PYSCAN_INGEST_BAD_CHECKSUM:
		bump(&c->bad_checksum, 1);
		return rc;
	case PYSCAN_INGEST_MALFORMED:
		bump(&c->malformed, 1);
		return rc;
	case PYSCAN_INGEST_NOT_OURS:
		bump(&c->not_ours, 1);
		return rc;
	case PYSCAN_INGEST_IGNORED_FLAGS:
		bump(&c->ours, 1);
		bump(&c->ignored_flags, 1);
		return rc;
	case PYSCAN_INGEST_INVALID_COOKIE:
		bump(&c->ours, 1);
		bump(&c->invalid_cookie, 1);
		return rc;
	case PYSCAN_INGEST_OPEN:
	case PYSCAN_INGEST_CLOSED:
		bump(&c->ours, 1);
		if (e->capture) /* a valid cookie: --pcap keeps it, duplicate or not */
			pyscan_capture__push(e->capture, frame, len, realtime_ns());
		break;
	default: /* a module outside its contract: count, never report */
		bump(&c->malformed, 1);
		return PYSCAN_INGEST_MALFORMED;
	}

	/* < 0 (no memory to grow the set): report anyway; a possible later duplicate beats a
	 * lost result. */
	if (pyscan_results__first_time(&e->results, &res) == 0) {
		bump(&c->duplicates, 1);
		return PYSCAN_INGEST_DUPLICATE;
	}
	res.timestamp_ns = realtime_ns();
	if (e->snippets && res.l4_proto == PYSCAN_IPPROTO_UDP && view.l4_proto == PYSCAN_IPPROTO_UDP)
		push_snippet(e->snippets, &res, &view);
	bump(rc == PYSCAN_INGEST_OPEN ? &c->open :
	     res.status == PYSCAN_RESULT_UNREACHABLE ? &c->unreachable : &c->closed, 1);
	pyscan_results__push(&e->results, &res, in_rx_loop, &e->stop_rx);
	return rc;
}

int pyscan_engine__ingest(pyscan_engine *e, const uint8_t *frame, uint32_t len)
{
	if (!e)
		return -EINVAL;
	if (pyscan_engine__enter(e) < 0)
		return -ESHUTDOWN;
	const int rc = ingest(e, frame, len, 0, 0);
	pyscan_engine__leave(e);
	return rc;
}

/* Resume: the pairs an earlier run already wrote to the output go into the seen set before
 * the RX thread starts, so a probe sent again (after a checkpoint) never reports them twice.
 * Each result is keyed exactly as ingest() keys a reply (family, addr, port, l4_proto), so
 * the dedup finds the same key (for IPv6, the address's number in the target set).
 * rx_running is taken for the duration: the set has one writer. Exactly one of ips_host
 * (IPv4, host order) and addrs16 (IPv6, 16 bytes each, network order) is given. */
static int mark_reported(pyscan_engine *e, const uint32_t *ips_host, const uint8_t *addrs16,
			 const uint16_t *ports, const uint8_t *l4_protos, uint32_t n)
{
	if (!e || (n && ((!ips_host && !addrs16) || !ports || !l4_protos)))
		return -EINVAL;
	if (pyscan_engine__enter(e) < 0)
		return -ESHUTDOWN;
	if (__atomic_exchange_n(&e->rx_running, 1, __ATOMIC_ACQ_REL)) {
		pyscan_engine__leave(e);
		return -EBUSY;
	}
	int added = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct pyscan_result res;
		memset(&res, 0, sizeof(res));
		if (addrs16) {
			memcpy(res.addr, addrs16 + (size_t)i * 16, 16);
			res.family = 6;
		} else {
			const uint32_t ip_be = __builtin_bswap32(ips_host[i]);
			memcpy(res.addr, &ip_be, sizeof(ip_be));
			res.family = 4;
		}
		res.port = ports[i];
		res.l4_proto = l4_protos[i];
		const int rc = pyscan_results__first_time(&e->results, &res);
		/* -EAFNOSUPPORT: an IPv6 address outside the target set (a forged-cookie reply
		 * that was written); the RX path does not remember those either. */
		if (rc == -EAFNOSUPPORT)
			continue;
		if (rc < 0) {
			added = rc;
			break;
		}
		added += rc;
	}
	__atomic_store_n(&e->rx_running, 0, __ATOMIC_RELEASE);
	pyscan_engine__leave(e);
	return added;
}

int pyscan_engine__mark_reported(pyscan_engine *e, const uint32_t *ips_host,
				 const uint16_t *ports, const uint8_t *l4_protos, uint32_t n)
{
	if (n && !ips_host)
		return -EINVAL;
	return mark_reported(e, ips_host, NULL, ports, l4_protos, n);
}

int pyscan_engine__mark_reported6(pyscan_engine *e, const uint8_t *addrs16,
				  const uint16_t *ports, const uint8_t *l4_protos, uint32_t n)
{
	if (n && !addrs16)
		return -EINVAL;
	return mark_reported(e, NULL, addrs16, ports, l4_protos, n);
}

int pyscan_engine__run_rx(pyscan_engine *e, pyscan_ring *ring)
{
	if (!e || !ring)
		return -EINVAL;
	const struct pyscan_ring_ops *ops = ring->ops;
	if (!ops->rx_peek || !ops->rx_release)
		return -EOPNOTSUPP;
	if (pyscan_engine__enter(e) < 0)
		return -ESHUTDOWN;
	if (pyscan_ring__enter(ring) < 0) {
		pyscan_engine__leave(e);
		return -ESHUTDOWN;
	}
	if (__atomic_exchange_n(&e->rx_running, 1, __ATOMIC_ACQ_REL)) {
		pyscan_ring__leave(ring);
		pyscan_engine__leave(e);
		return -EBUSY;
	}

	struct pyscan_rx_frame frames[RX_BURST];
	uint64_t stop_deadline = 0;
	int rc = 0;

	for (;;) {
		/* A closing ring ends the loop at once: its memory is about to go. */
		if (pyscan_ring__closing(ring))
			break;
		const int stopping = __atomic_load_n(&e->stop_rx, __ATOMIC_RELAXED);
		if (stopping) {
			const uint64_t now = pyscan_clock__now_ns();
			if (!stop_deadline)
				stop_deadline = now + RX_STOP_BUDGET_NS;
			else if (now >= stop_deadline)
				break;
		}
		const uint32_t n = ops->rx_peek(ring, frames, RX_BURST);
		if (!n) {
			if (stopping)
				break;
			if (ops->rx_wait) {
				const int w = ops->rx_wait(ring, RX_WAIT_MS);
				if (w < 0 && w != -EINTR) {
					rc = w;
					break;
				}
			} else {
				const struct timespec pause = {0, 1000000};
				nanosleep(&pause, NULL);
			}
			continue;
		}
		for (uint32_t j = 0; j < n; j++)
			ingest(e, frames[j].data, frames[j].len, frames[j].flags, 1);
		ops->rx_release(ring, n);
	}

	__atomic_store_n(&e->rx_running, 0, __ATOMIC_RELEASE);
	pyscan_ring__leave(ring);
	pyscan_engine__leave(e);
	return rc;
}

