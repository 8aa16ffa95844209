/* SPDX-License-Identifier: GPL-2.0-only
 *
 * drv_af_packet.c - the AF_PACKET driver (kernel Documentation/networking/packet_mmap.rst).
 *
 * TX: socket(AF_PACKET, SOCK_RAW, 0) bound with protocol 0 (no receive hook), TPACKET_V2
 * TX ring, PACKET_QDISC_BYPASS, PACKET_LOSS. Frames are handed out in ring order; the kernel
 * also walks the ring in order from its own head, so a slot is free again exactly when the
 * kernel set it back to AVAILABLE, and a gap (a reserved slot never submitted) would stall the
 * kernel - which is why ring.h makes submitting every reserved slot the caller's duty.
 * PACKET_LOSS makes the kernel skip a malformed frame instead of stopping the ring on it;
 * submit checks lengths itself so that such frames are counted as errors, not as sent.
 * A frame the device refuses (veth backlog full: NET_XMIT_DROP) is put back to SEND_REQUEST
 * by the kernel and retried on the next kick, so overload costs time, not probes.
 *
 * RX: TPACKET_V3 ring, blocks retired after PYSCAN_AFPACKET_RETIRE_MS, PACKET_IGNORE_OUTGOING
 * (our own probes are not replies), and a classic BPF filter so only unfragmented IPv4 TCP
 * with SYN+ACK or RST (to the scan's source ports, once filter_ports says which) and ICMP
 * destination unreachables quoting TCP, UDP and ICMP echo replies too once filter_replies asks
 * for them, and ARP requests for an unowned source address once pass_arp names it, is copied.
 * Bound with ETH_P_ALL only after ring and filter are
 * in place, so nothing unfiltered is ever queued.
 *
 * Invariant: each ring has one user thread per direction (ring.h); only get_stats may run on
 * another thread, and it touches nothing but atomics and getsockopt.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "drv_af_packet.h"

#ifndef PACKET_QDISC_BYPASS
#define PACKET_QDISC_BYPASS 20
#endif
#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define TX_BLOCK_SIZE (1u << 16)
#define TX_MAX_FRAMES (1u << 20)
#define RX_MAX_RING_BYTES (1ull << 31)

static inline void bump(uint64_t *p, uint64_t n)
{
	__atomic_store_n(p, *p + n, __ATOMIC_RELAXED);
}

static void set_error(char *buf, size_t len, const char *fmt, ...)
{
	if (!buf || !len)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static void copy_stats(const struct pyscan_ring_stats *src, struct pyscan_ring_stats *out)
{
	const uint64_t *s = (const uint64_t *)src;
	uint64_t *d = (uint64_t *)out;
	for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		d[i] = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
}

/* One-line reason for a failed packet-socket call, naming what the user can change. */
static void socket_error(char *err, size_t errlen, const char *what, int ifindex, int code)
{
	if (code == EPERM || code == EACCES)
		set_error(err, errlen, "%s: AF_PACKET sockets need CAP_NET_RAW (run as root)", what);
	else if (code == ENODEV || code == ENXIO)
		set_error(err, errlen, "%s: interface index %d does not exist in this network "
			  "namespace", what, ifindex);
	else if (code == ENETDOWN)
		set_error(err, errlen, "%s: interface index %d is down", what, ifindex);
	else
		set_error(err, errlen, "%s failed: %s", what, strerror(code));
}

static int bind_packet(int fd, int ifindex, uint16_t protocol_be)
{
	struct sockaddr_ll addr = {
		.sll_family = AF_PACKET,
		.sll_protocol = protocol_be,
		.sll_ifindex = ifindex,
	};
	return bind(fd, (struct sockaddr *)&addr, sizeof(addr));
}

/* ---- TX ------------------------------------------------------------------------------ */

struct afp_tx {
	struct pyscan_ring ring;
	struct pyscan_ring_stats stats;
	int fd;
	uint8_t *map;
	size_t map_len;
	uint32_t frames;      /* a power of two */
	uint32_t frame_mask;  /* frames - 1 */
	uint32_t data_offset; /* TPACKET2_HDRLEN - sizeof(struct sockaddr_ll) */
	uint32_t max_len;     /* MTU + Ethernet header */
	uint8_t *bad;         /* per frame: submitted with a length the kernel will discard */
	uint64_t reserved;    /* sequence numbers: frame = seq & frame_mask */
	uint64_t submitted;
	uint64_t completed;
	int broken;           /* a slot came back out of order: the kernel would stall on it */
	int ifindex;
	uint64_t link_checked_ms; /* when a busy send last made us look at the link */
};

static inline struct tpacket2_hdr *tx_frame(const struct afp_tx *t, uint64_t seq)
{
	return (struct tpacket2_hdr *)(t->map + (seq & t->frame_mask) * PYSCAN_AFPACKET_FRAME_SIZE);
}

static uint32_t afp_tx_reclaim(struct pyscan_ring *ring)
{
	struct afp_tx *t = (struct afp_tx *)ring;
	uint32_t n = 0;
	uint64_t frames = 0, bytes = 0, errors = 0;
	while (t->completed < t->submitted) {
		struct tpacket2_hdr *h = tx_frame(t, t->completed);
		const uint32_t status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
		if (status == TP_STATUS_WRONG_FORMAT) {
			/* Not expected with PACKET_LOSS; give the slot back and count it. */
			__atomic_store_n(&h->tp_status, TP_STATUS_AVAILABLE, __ATOMIC_RELEASE);
			errors++;
		} else if (status != TP_STATUS_AVAILABLE) {
			break;
		} else if (t->bad[t->completed & t->frame_mask]) {
			t->bad[t->completed & t->frame_mask] = 0;
		} else {
			frames++;
			bytes += h->tp_len;
		}
		t->completed++;
		n++;
	}
	if (n) {
		bump(&t->stats.tx_frames, frames);
		bump(&t->stats.tx_bytes, bytes);
		bump(&t->stats.tx_errors, errors);
	}
	return n;
}

static uint32_t afp_tx_reserve(struct pyscan_ring *ring, struct pyscan_tx_slot *slots,
			       uint32_t max)
{
	struct afp_tx *t = (struct afp_tx *)ring;
	if (t->reserved - t->completed + max > t->frames)
		afp_tx_reclaim(ring);
	uint64_t room = t->frames - (t->reserved - t->completed);
	const uint32_t n = room < max ? (uint32_t)room : max;
	for (uint32_t i = 0; i < n; i++, t->reserved++) {
		slots[i].data = (uint8_t *)tx_frame(t, t->reserved) + t->data_offset;
		slots[i].capacity = PYSCAN_AFPACKET_FRAME_SIZE - t->data_offset;
		slots[i].len = 0;
		slots[i].handle = t->reserved;
	}
	return n;
}

static int afp_tx_submit(struct pyscan_ring *ring, struct pyscan_tx_slot *slots, uint32_t n)
{
	struct afp_tx *t = (struct afp_tx *)ring;
	uint64_t bad = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (slots[i].handle != t->submitted) {
			set_error(ring->error, sizeof(ring->error),
				  "af-packet TX: slot %llu submitted out of order (expected %llu)",
				  (unsigned long long)slots[i].handle,
				  (unsigned long long)t->submitted);
			bump(&t->stats.tx_errors, n - i);
			t->broken = 1; /* the next kick ends the TX loop */
			return (int)(i - bad);
		}
		struct tpacket2_hdr *h = tx_frame(t, t->submitted);
		uint32_t len = slots[i].len;
		if (len < ETH_HLEN || len > t->max_len) {
			/* Still handed over (a gap would stall the kernel); PACKET_LOSS drops it. */
			t->bad[t->submitted & t->frame_mask] = 1;
			bad++;
		}
		h->tp_len = len;
		h->tp_snaplen = len;
		__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
		t->submitted++;
	}
	if (bad) {
		bump(&t->stats.tx_errors, bad);
		set_error(ring->error, sizeof(ring->error),
			  "af-packet TX: frame length outside %d..%u bytes", ETH_HLEN, t->max_len);
	}
	return (int)(n - bad); /* PACKET_LOSS discards the bad ones: lost, not sent */
}

static uint64_t monotonic_ms(void);

/* 1 when the interface is down, lost its carrier or is gone: a send that keeps failing as
 * "busy" then never succeeds (without a carrier the device drops every frame). */
static int link_down(struct afp_tx *t)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_ifindex = t->ifindex;
	if (ioctl(t->fd, SIOCGIFNAME, &ifr) < 0 || ioctl(t->fd, SIOCGIFFLAGS, &ifr) < 0)
		return errno == ENODEV;
	return !(ifr.ifr_flags & IFF_UP) || !(ifr.ifr_flags & IFF_RUNNING);
}

static int afp_tx_kick(struct pyscan_ring *ring)
{
	struct afp_tx *t = (struct afp_tx *)ring;
	if (t->broken)
		return -EINVAL;
	if (t->submitted == t->completed)
		return 0;
	if (send(t->fd, NULL, 0, MSG_DONTWAIT) >= 0)
		return 0;
	const int code = errno;
	if (code == EAGAIN || code == ENOBUFS || code == EINTR) {
		/* Device busy: the kernel keeps the frame as SEND_REQUEST; next kick retries.
		 * Every 10 ms of that, look whether the link is still there at all. */
		bump(&t->stats.tx_retries, 1);
		const uint64_t now = monotonic_ms();
		if (now - t->link_checked_ms < 10)
			return 0;
		t->link_checked_ms = now;
		if (!link_down(t))
			return 0;
		set_error(ring->error, sizeof(ring->error),
			  "af-packet TX: interface index %d went down (%s)", t->ifindex,
			  strerror(code));
		return -ENETDOWN;
	}
	if (code == ENETDOWN || code == ENXIO || code == ENODEV)
		set_error(ring->error, sizeof(ring->error),
			  "af-packet TX: interface index %d went down (%s)", t->ifindex,
			  strerror(code));
	else
		set_error(ring->error, sizeof(ring->error), "af-packet TX: send failed: %s",
			  strerror(code));
	return -code;
}

static uint64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int afp_tx_flush(struct pyscan_ring *ring, int timeout_ms)
{
	struct afp_tx *t = (struct afp_tx *)ring;
	const uint64_t deadline = monotonic_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	for (;;) {
		afp_tx_kick(ring);
		afp_tx_reclaim(ring);
		if (t->completed == t->submitted)
			return 0;
		if (monotonic_ms() >= deadline) {
			set_error(ring->error, sizeof(ring->error),
				  "af-packet TX: %llu frames still queued after %d ms",
				  (unsigned long long)(t->submitted - t->completed), timeout_ms);
			return -ETIMEDOUT;
		}
		const struct timespec pause = {0, 100000};
		nanosleep(&pause, NULL);
	}
}

static void afp_tx_stats(struct pyscan_ring *ring, struct pyscan_ring_stats *out)
{
	copy_stats(&((struct afp_tx *)ring)->stats, out);
}

static void afp_tx_destroy(struct pyscan_ring *ring)
{
	struct afp_tx *t = (struct afp_tx *)ring;
	if (t->map && t->map != MAP_FAILED)
		munmap(t->map, t->map_len);
	if (t->fd >= 0)
		close(t->fd);
	free(t->bad);
	free(t);
}

static const struct pyscan_ring_ops afp_tx_ops = {
	.name = "af-packet-tx",
	.tx_reserve = afp_tx_reserve,
	.tx_submit = afp_tx_submit,
	.tx_reclaim = afp_tx_reclaim,
	.tx_kick = afp_tx_kick,
	.tx_flush = afp_tx_flush,
	.get_stats = afp_tx_stats,
	.destroy = afp_tx_destroy,
};

static uint32_t interface_mtu(int fd, int ifindex)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_ifindex = ifindex;
	if (ioctl(fd, SIOCGIFNAME, &ifr) < 0 || ioctl(fd, SIOCGIFMTU, &ifr) < 0)
		return 1500;
	return (uint32_t)ifr.ifr_mtu;
}

pyscan_ring *pyscan_afpacket__open_tx(int ifindex, uint32_t frames, char *err, size_t errlen)
{
	const uint32_t per_block = TX_BLOCK_SIZE / PYSCAN_AFPACKET_FRAME_SIZE;
	if (!frames)
		frames = PYSCAN_AFPACKET_DEFAULT_TX_FRAMES;
	if (ifindex <= 0 || frames > TX_MAX_FRAMES) {
		set_error(err, errlen, "af-packet TX: %s %d is invalid (accepted: ifindex > 0, "
			  "frames 1..%u)", ifindex <= 0 ? "ifindex" : "frame count",
			  ifindex <= 0 ? ifindex : (int)frames, TX_MAX_FRAMES);
		errno = EINVAL;
		return NULL;
	}
	/* A power of two, so a sequence number finds its frame with a mask; per_block is one
	 * too, so this is also a whole number of blocks. */
	frames = frames < per_block ? per_block : frames;
	frames = 1u << (32 - __builtin_clz(frames - 1));

	struct afp_tx *t = calloc(1, sizeof(*t));
	if (!t) {
		set_error(err, errlen, "af-packet TX: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	t->ring.ops = &afp_tx_ops;
	t->frames = frames;
	t->frame_mask = frames - 1;
	t->data_offset = TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
	t->ring.tx_slot_capacity = PYSCAN_AFPACKET_FRAME_SIZE - t->data_offset;
	t->map = MAP_FAILED;
	t->bad = calloc(frames, 1);
	t->fd = socket(AF_PACKET, SOCK_RAW, 0);
	int code = 0;
	const char *step = "socket";
	if (!t->bad) {
		code = ENOMEM;
		goto fail;
	}
	if (t->fd < 0) {
		code = errno;
		goto fail;
	}

	const int version = TPACKET_V2, one = 1;
	struct tpacket_req req = {
		.tp_block_size = TX_BLOCK_SIZE,
		.tp_block_nr = frames / per_block,
		.tp_frame_size = PYSCAN_AFPACKET_FRAME_SIZE,
		.tp_frame_nr = frames,
	};
	step = "PACKET_VERSION";
	if (setsockopt(t->fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) < 0)
		goto fail_errno;
	step = "PACKET_LOSS";
	if (setsockopt(t->fd, SOL_PACKET, PACKET_LOSS, &one, sizeof(one)) < 0)
		goto fail_errno;
	step = "PACKET_QDISC_BYPASS";
	if (setsockopt(t->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0)
		goto fail_errno;
	step = "PACKET_TX_RING";
	if (setsockopt(t->fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0)
		goto fail_errno;
	t->map_len = (size_t)req.tp_block_size * req.tp_block_nr;
	step = "mmap of the TX ring";
	t->map = mmap(NULL, t->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd, 0);
	if (t->map == MAP_FAILED)
		goto fail_errno;
	step = "bind";
	if (bind_packet(t->fd, ifindex, 0) < 0)
		goto fail_errno;
	t->max_len = interface_mtu(t->fd, ifindex) + ETH_HLEN;
	t->ifindex = ifindex;
	if (err && errlen)
		err[0] = '\0';
	return &t->ring;

fail_errno:
	code = errno;
fail:;
	char what[64];
	snprintf(what, sizeof(what), "af-packet TX %s", step);
	socket_error(err, errlen, what, ifindex, code);
	afp_tx_destroy(&t->ring);
	errno = code;
	return NULL;
}

/* ---- RX ------------------------------------------------------------------------------ */

struct afp_rx {
	struct pyscan_ring ring;
	struct pyscan_ring_stats stats;
	int fd;
	uint8_t *map;
	size_t map_len;
	uint32_t block_size;
	uint32_t blocks;
	/* Peek cursor: block sequence number, packets taken from it, next header. */
	uint64_t peek_block;
	uint32_t peek_pkt;
	struct tpacket3_hdr *peek_hdr;
	/* Release cursor: block sequence number and packets released from it. */
	uint64_t release_block;
	uint32_t release_pkt;
	uint32_t arp_ip_be;   /* pass_arp: ARP requests for it pass the filter too; 0 = none */
};

static inline struct tpacket_block_desc *rx_block(const struct afp_rx *r, uint64_t seq)
{
	return (struct tpacket_block_desc *)(r->map + (seq % r->blocks) * (size_t)r->block_size);
}

static inline int rx_block_ready(const struct tpacket_block_desc *b)
{
	return __atomic_load_n(&b->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER;
}

static uint32_t afp_rx_peek(struct pyscan_ring *ring, struct pyscan_rx_frame *frames, uint32_t max)
{
	struct afp_rx *r = (struct afp_rx *)ring;
	uint32_t n = 0;
	uint64_t bytes = 0;
	while (n < max) {
		struct tpacket_block_desc *b = rx_block(r, r->peek_block);
		if (!rx_block_ready(b))
			break;
		const uint32_t num = b->hdr.bh1.num_pkts;
		if (r->peek_pkt == num) {
			/* Move on only while the next block is not the one still being released
			 * a full lap behind (it would look ready and be read twice). */
			if (r->peek_block + 1 - r->release_block >= r->blocks)
				break;
			r->peek_block++;
			r->peek_pkt = 0;
			r->peek_hdr = NULL;
			continue;
		}
		struct tpacket3_hdr *h = r->peek_hdr
			? r->peek_hdr
			: (struct tpacket3_hdr *)((uint8_t *)b + b->hdr.bh1.offset_to_first_pkt);
		frames[n].data = (const uint8_t *)h + h->tp_mac;
		frames[n].len = h->tp_snaplen;
		/* tp_status says whether the kernel checked the L4 checksum or there is none to
		 * check yet (sent from this host through veth or loopback). */
		frames[n].flags = h->tp_status & (TP_STATUS_CSUMNOTREADY | TP_STATUS_CSUM_VALID)
			? PYSCAN_RX_L4_CSUM_TRUSTED : 0;
		bytes += h->tp_snaplen;
		n++;
		r->peek_pkt++;
		r->peek_hdr = (struct tpacket3_hdr *)((uint8_t *)h + h->tp_next_offset);
	}
	if (n) {
		bump(&r->stats.rx_frames, n);
		bump(&r->stats.rx_bytes, bytes);
	}
	return n;
}

static void afp_rx_release(struct pyscan_ring *ring, uint32_t n)
{
	struct afp_rx *r = (struct afp_rx *)ring;
	while (r->release_block < r->peek_block ||
	       (r->release_block == r->peek_block && n)) {
		struct tpacket_block_desc *b = rx_block(r, r->release_block);
		const uint32_t num = b->hdr.bh1.num_pkts;
		/* Never release past what peek handed out. */
		const uint32_t limit = r->release_block == r->peek_block ? r->peek_pkt : num;
		const uint32_t take = limit - r->release_pkt < n ? limit - r->release_pkt : n;
		r->release_pkt += take;
		n -= take;
		if (r->release_pkt < num)
			break;
		__atomic_store_n(&b->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
		if (r->release_block == r->peek_block) {
			r->peek_block++;
			r->peek_pkt = 0;
			r->peek_hdr = NULL;
		}
		r->release_block++;
		r->release_pkt = 0;
	}
}

static int afp_rx_wait(struct pyscan_ring *ring, int timeout_ms)
{
	struct afp_rx *r = (struct afp_rx *)ring;
	if (rx_block_ready(rx_block(r, r->peek_block)))
		return 1;
	struct pollfd pfd = {.fd = r->fd, .events = POLLIN | POLLERR};
	const int rc = poll(&pfd, 1, timeout_ms);
	if (rc < 0)
		return errno == EINTR ? 0 : -errno;
	return rc > 0;
}

static void afp_rx_stats(struct pyscan_ring *ring, struct pyscan_ring_stats *out)
{
	struct afp_rx *r = (struct afp_rx *)ring;
	struct tpacket_stats_v3 kstats;
	socklen_t len = sizeof(kstats);
	/* The kernel zeroes its counters on every read: accumulate. */
	if (getsockopt(r->fd, SOL_PACKET, PACKET_STATISTICS, &kstats, &len) == 0)
		__atomic_fetch_add(&r->stats.rx_drops, kstats.tp_drops, __ATOMIC_RELAXED);
	copy_stats(&r->stats, out);
}

static void afp_rx_destroy(struct pyscan_ring *ring)
{
	struct afp_rx *r = (struct afp_rx *)ring;
	if (r->map && r->map != MAP_FAILED)
		munmap(r->map, r->map_len);
	if (r->fd >= 0)
		close(r->fd);
	free(r);
}

static const struct pyscan_ring_ops afp_rx_ops = {
	.name = "af-packet-rx",
	.rx_peek = afp_rx_peek,
	.rx_release = afp_rx_release,
	.rx_wait = afp_rx_wait,
	.get_stats = afp_rx_stats,
	.destroy = afp_rx_destroy,
};

/* Keeps unfragmented IPv4 frames that can be replies to the scan's probes: TCP to a
 * destination port in [first, last] whose flags are what the tcp-syn classifier reports:
 * SYN+ACK without RST or FIN (open), or RST+ACK without SYN (closed); UDP to a port in
 * [first, last] (udp); ICMP echo replies (icmp-echo); ICMP destination unreachables whose
 * quoted IPv4 header names a protocol the scan probes (tcp-syn, udp, icmp-echo). Each
 * protocol only when its bit of protocols (PYSCAN_AFPACKET_*) is set: a disabled protocol's
 * number is compared with 0x100, which no byte equals. tcpdump's "ip and ip[6:2] & 0x3fff = 0
 * and (tcp dst portrange first-last and (tcp[13] & 0x17 = 0x12 or tcp[13] & 0x16 = 0x14) or
 * udp dst portrange first-last or icmp[0] = 0 or icmp[0] = 3 and icmp[17] in (6, 17, 1))",
 * icmp[0] = 0 only with the ICMP bit. A quote cut before its protocol byte is refused (a load
 * past the packet ends a classic program with 0), as C cannot tell whose probe it quotes.
 * Cookie, destination address, quoted ports and checksums are left to the C side
 * (acceptance rules: docs/internals.md). Offsets assume an untagged Ethernet frame, which is
 * what a packet socket sees: the kernel moves the outer VLAN tag out of the data before any
 * tap. Jump offsets count instructions after the jump. */
#define REPLY_FILTER_LEN 29
#define NEVER_A_BYTE 0x100
#define ICMP_QUOTED_PROTOCOL (14 + 8 + 9) /* after X = the reply's IHL: icmp[8 + 9] */
static void reply_filter(struct sock_filter out[REPLY_FILTER_LEN], uint16_t first, uint16_t last,
			 uint32_t protocols)
{
	const uint32_t tcp = (protocols & PYSCAN_AFPACKET_TCP) ? 6 : NEVER_A_BYTE;
	const uint32_t udp = (protocols & PYSCAN_AFPACKET_UDP) ? 17 : NEVER_A_BYTE;
	const uint32_t icmp = (protocols & PYSCAN_AFPACKET_ICMP) ? 1 : NEVER_A_BYTE;
	const uint32_t echo_reply = (protocols & PYSCAN_AFPACKET_ICMP) ? 0 : NEVER_A_BYTE;
	const struct sock_filter prog[REPLY_FILTER_LEN] = {
		/* 0 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
		/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, 26),
		/* 2 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 20),
		/* 3 */ BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x3fff, 24, 0),
		/* 4 */ BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 14),
		/* 5 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 23),
		/* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, tcp, 2, 0),
		/* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, udp, 9, 0),
		/* 8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 11, 19), /* ICMP: every module's */
		/* TCP */
		/* 9 */ BPF_STMT(BPF_LD | BPF_H | BPF_IND, 14 + 2),
		/* 10 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, first, 0, 17),
		/* 11 */ BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, last, 16, 0),
		/* 12 */ BPF_STMT(BPF_LD | BPF_B | BPF_IND, 14 + 13),
		/* 13 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x17), /* FIN SYN RST ACK */
		/* 14 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x12, 12, 0),
		/* 15 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x16), /* SYN RST ACK */
		/* 16 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x14, 10, 11),
		/* UDP */
		/* 17 */ BPF_STMT(BPF_LD | BPF_H | BPF_IND, 14 + 2),
		/* 18 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, first, 0, 9),
		/* 19 */ BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, last, 8, 7),
		/* ICMP: echo reply (0) with the ICMP bit, or destination unreachable (3) quoting a
		 * protocol the scan probes */
		/* 20 */ BPF_STMT(BPF_LD | BPF_B | BPF_IND, 14),
		/* 21 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, echo_reply, 5, 0),
		/* 22 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 3, 0, 5),
		/* 23 */ BPF_STMT(BPF_LD | BPF_B | BPF_IND, ICMP_QUOTED_PROTOCOL),
		/* 24 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, tcp, 2, 0),
		/* 25 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, udp, 1, 0),
		/* 26 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, icmp, 0, 1),
		/* 27 */ BPF_STMT(BPF_RET | BPF_K, 0x40000),
		/* 28 */ BPF_STMT(BPF_RET | BPF_K, 0),
	};
	memcpy(out, prog, sizeof(prog));
}

_Static_assert(sizeof(struct sock_filter) == 8, "sock_filter is the 8-byte BPF instruction");

/* Put in front of the reply program when the scan's source address is not the host's: ARP
 * requests for it reach the RX thread, whose responder answers them (arp_responder.h);
 * every other frame falls through to the reply program, which loads its own words.
 * tcpdump's "arp[6:2] = 1 and arp[24:4] = ip". The finer checks (hardware and protocol
 * types, sender) are the responder's. */
#define ARP_PREFIX_LEN 8
static uint32_t arp_prefix(struct sock_filter out[ARP_PREFIX_LEN], uint32_t ip_be)
{
	const struct sock_filter prog[ARP_PREFIX_LEN] = {
		/* 0 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
		/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_ARP, 0, 6),
		/* 2 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 14 + 6),
		/* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 3), /* a request */
		/* 4 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 14 + 24),
		/* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ntohl(ip_be), 0, 1),
		/* 6 */ BPF_STMT(BPF_RET | BPF_K, 0x40000),
		/* 7 */ BPF_STMT(BPF_RET | BPF_K, 0), /* any other ARP: never a reply either */
	};
	memcpy(out, prog, sizeof(prog));
	return ARP_PREFIX_LEN;
}

/* The ARP prefix alone, for the filter tests (a frame that is not ARP goes on to instruction
 * ARP_PREFIX_LEN, so a test appends a program: "accept", or the reply filter). */
uint32_t pyscan_afpacket__arp_prefix(uint32_t ip_be, uint8_t *out, uint32_t max)
{
	struct sock_filter code[ARP_PREFIX_LEN];
	arp_prefix(code, ip_be);
	if (out && max >= ARP_PREFIX_LEN)
		memcpy(out, code, sizeof(code));
	return ARP_PREFIX_LEN;
}

/* The IPv6 scan's program: untagged IPv6 whose fixed header's next header is TCP to a port
 * in [first, last] with the tcp-syn6 flags (as above), or UDP to a port in [first, last]
 * with UDP6 (udp6's replies: the cookie chose the port inside the range), or ICMPv6
 * destination unreachable (1: quoting a SYN, an echo request or a datagram) with any bit,
 * or echo reply (129) with ICMP6. tcpdump's "ip6 and (ip6[6] = 6 and tcp dst portrange
 * first-last and (ip6[53] & 0x17 = 0x12 or ip6[53] & 0x16 = 0x14) or ip6[6] = 17 and udp dst
 * portrange first-last or ip6[6] = 58 and (ip6[40] = 129 or ip6[40] = 1))". Extension
 * headers are not walked, which is also the C parser's rule (reply_parse.h): a fragment or
 * any other extension header is rejected here and never reported there. Neighbour
 * discovery is not copied to the socket (the kernel, which answers it, gets every frame
 * anyway), except solicitations (135) with NDP6: an unowned source's RX-thread responder
 * answers them (the kernel does not own the address). */
#define REPLY_FILTER6_LEN 23
#define ETH_P_IPV6_TYPE 0x86dd
static void reply_filter6(struct sock_filter out[REPLY_FILTER6_LEN], uint16_t first,
			  uint16_t last, uint32_t protocols)
{
	const uint32_t tcp = (protocols & PYSCAN_AFPACKET_TCP6) ? 6 : NEVER_A_BYTE;
	const uint32_t udp = (protocols & PYSCAN_AFPACKET_UDP6) ? 17 : NEVER_A_BYTE;
	const uint32_t icmp6 = (protocols & PYSCAN_AFPACKET_ALL6) ? 58 : NEVER_A_BYTE;
	const uint32_t echo_reply = (protocols & PYSCAN_AFPACKET_ICMP6) ? 129 : NEVER_A_BYTE;
	/* an unowned IPv6 source: solicitations go to the RX thread's responder */
	const uint32_t solicitation = (protocols & PYSCAN_AFPACKET_NDP6) ? 135 : NEVER_A_BYTE;
	const struct sock_filter prog[REPLY_FILTER6_LEN] = {
		/* 0 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),
		/* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IPV6_TYPE, 0, 20),
		/* 2 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 14 + 6),
		/* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, tcp, 2, 0),
		/* 4 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, udp, 9, 0),
		/* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, icmp6, 11, 16),
		/* TCP */
		/* 6 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 54 + 2),
		/* 7 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, first, 0, 14),
		/* 8 */ BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, last, 13, 0),
		/* 9 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 54 + 13),
		/* 10 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x17), /* FIN SYN RST ACK */
		/* 11 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x12, 9, 0),
		/* 12 */ BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x16), /* SYN RST ACK */
		/* 13 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x14, 7, 8),
		/* UDP: to the source ports */
		/* 14 */ BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 54 + 2),
		/* 15 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, first, 0, 6),
		/* 16 */ BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, last, 5, 4),
		/* ICMPv6: echo reply (129), neighbour solicitation (135), destination unreachable
		 * (1) */
		/* 17 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 54),
		/* 18 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, echo_reply, 2, 0),
		/* 19 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, solicitation, 1, 0),
		/* 20 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 1),
		/* 21 */ BPF_STMT(BPF_RET | BPF_K, 0x40000),
		/* 22 */ BPF_STMT(BPF_RET | BPF_K, 0),
	};
	memcpy(out, prog, sizeof(prog));
}

uint32_t pyscan_afpacket__reply_filter6(uint16_t first, uint16_t last, uint32_t protocols,
					uint8_t *out, uint32_t max)
{
	struct sock_filter code[REPLY_FILTER6_LEN];
	reply_filter6(code, first, last, protocols);
	if (out && max >= REPLY_FILTER6_LEN)
		memcpy(out, code, sizeof(code));
	return REPLY_FILTER6_LEN;
}

/* The program of a TCP-only scan (what filter_ports attaches: SYN-ACK, RST and ICMP errors
 * quoting TCP), for the filter corpus tests. */
uint32_t pyscan_afpacket__reply_filter(uint16_t first, uint16_t last, uint8_t *out,
				       uint32_t max)
{
	struct sock_filter code[REPLY_FILTER_LEN];
	reply_filter(code, first, last, PYSCAN_AFPACKET_TCP);
	if (out && max >= REPLY_FILTER_LEN)
		memcpy(out, code, sizeof(code));
	return REPLY_FILTER_LEN;
}

static int attach_reply_filter(int fd, uint16_t first, uint16_t last, uint32_t protocols,
			       uint32_t arp_ip_be)
{
	struct sock_filter code[ARP_PREFIX_LEN + (REPLY_FILTER_LEN > REPLY_FILTER6_LEN ?
						  REPLY_FILTER_LEN : REPLY_FILTER6_LEN)];
	struct sock_fprog prog = {.filter = code};
	if (protocols & PYSCAN_AFPACKET_ALL6) {
		/* no ARP prefix: an unowned IPv6 source adds PYSCAN_AFPACKET_NDP6 instead */
		reply_filter6(code, first, last, protocols);
		prog.len = REPLY_FILTER6_LEN;
	} else {
		const uint32_t prefix = arp_ip_be ? arp_prefix(code, arp_ip_be) : 0;
		reply_filter(code + prefix, first, last, protocols);
		prog.len = (unsigned short)(prefix + REPLY_FILTER_LEN);
	}
	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

int pyscan_afpacket__filter_ports(pyscan_ring *ring, uint16_t first, uint32_t count)
{
	return pyscan_afpacket__filter_replies(ring, first, count, PYSCAN_AFPACKET_TCP);
}

int pyscan_afpacket__filter_replies(pyscan_ring *ring, uint16_t first, uint32_t count,
				    uint32_t protocols)
{
	if (!ring || ring->ops != &afp_rx_ops || count < 1 || (uint32_t)first + count > 65536 ||
	    !protocols ||
	    (protocols & ~(uint32_t)(PYSCAN_AFPACKET_ALL | PYSCAN_AFPACKET_ALL6 | PYSCAN_AFPACKET_NDP6)) ||
	    ((protocols & PYSCAN_AFPACKET_NDP6) && !(protocols & PYSCAN_AFPACKET_ALL6)) ||
	    ((protocols & PYSCAN_AFPACKET_ALL) && (protocols & PYSCAN_AFPACKET_ALL6)))
		return -EINVAL; /* one family per scan */
	struct afp_rx *r = (struct afp_rx *)ring;
	if (attach_reply_filter(r->fd, first, (uint16_t)(first + count - 1), protocols,
				r->arp_ip_be) < 0) {
		const int code = errno;
		set_error(ring->error, sizeof(ring->error), "af-packet RX: SO_ATTACH_FILTER: %s",
			  strerror(code));
		return -code;
	}
	return 0;
}

int pyscan_afpacket__pass_arp(pyscan_ring *ring, uint32_t ip_be)
{
	if (!ring || ring->ops != &afp_rx_ops)
		return -EINVAL;
	((struct afp_rx *)ring)->arp_ip_be = ip_be;
	return 0;
}

pyscan_ring *pyscan_afpacket__open_rx(int ifindex, uint32_t block_size, uint32_t blocks,
				      char *err, size_t errlen)
{
	const long page = sysconf(_SC_PAGESIZE);
	if (!block_size)
		block_size = PYSCAN_AFPACKET_DEFAULT_BLOCK_SIZE;
	if (!blocks)
		blocks = PYSCAN_AFPACKET_DEFAULT_BLOCKS;
	if (ifindex <= 0) {
		set_error(err, errlen, "af-packet RX: ifindex %d is invalid (accepted: > 0)", ifindex);
		errno = EINVAL;
		return NULL;
	}
	if (block_size < (uint32_t)page || (block_size & (block_size - 1)) ||
	    (uint64_t)block_size * blocks > RX_MAX_RING_BYTES) {
		set_error(err, errlen, "af-packet RX: block size %u x %u blocks is invalid "
			  "(accepted: a power of two >= %ld, at most %llu bytes in all)",
			  block_size, blocks, page, (unsigned long long)RX_MAX_RING_BYTES);
		errno = EINVAL;
		return NULL;
	}

	struct afp_rx *r = calloc(1, sizeof(*r));
	if (!r) {
		set_error(err, errlen, "af-packet RX: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	r->ring.ops = &afp_rx_ops;
	r->block_size = block_size;
	r->blocks = blocks;
	r->map = MAP_FAILED;
	/* Protocol 0: no frames are queued before the ring and the filter exist. */
	r->fd = socket(AF_PACKET, SOCK_RAW, 0);
	const char *step = "socket";
	int code;
	if (r->fd < 0)
		goto fail_errno;

	const int version = TPACKET_V3, one = 1;
	struct tpacket_req3 req = {
		.tp_block_size = block_size,
		.tp_block_nr = blocks,
		.tp_frame_size = PYSCAN_AFPACKET_FRAME_SIZE,
		.tp_frame_nr = block_size / PYSCAN_AFPACKET_FRAME_SIZE * blocks,
		.tp_retire_blk_tov = PYSCAN_AFPACKET_RETIRE_MS,
	};
	step = "PACKET_VERSION";
	if (setsockopt(r->fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) < 0)
		goto fail_errno;
	step = "PACKET_IGNORE_OUTGOING";
	if (setsockopt(r->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0)
		goto fail_errno;
	step = "SO_ATTACH_FILTER";
	if (attach_reply_filter(r->fd, 0, 65535, PYSCAN_AFPACKET_TCP, 0) < 0)
		goto fail_errno;
	step = "PACKET_RX_RING";
	if (setsockopt(r->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
		goto fail_errno;
	r->map_len = (size_t)block_size * blocks;
	step = "mmap of the RX ring";
	r->map = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	if (r->map == MAP_FAILED)
		goto fail_errno;
	step = "bind";
	if (bind_packet(r->fd, ifindex, htons(ETH_P_ALL)) < 0)
		goto fail_errno;
	if (err && errlen)
		err[0] = '\0';
	return &r->ring;

fail_errno:
	code = errno;
	char what[64];
	snprintf(what, sizeof(what), "af-packet RX %s", step);
	socket_error(err, errlen, what, ifindex, code);
	afp_rx_destroy(&r->ring);
	errno = code;
	return NULL;
}
