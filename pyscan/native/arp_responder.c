/* SPDX-License-Identifier: GPL-2.0-only
 *
 * arp_responder.c - the RX-thread ARP responder (contract and why: arp_responder.h); the
 * request-to-reply rewrite itself is pyscan/bpf/arp_reply.h, shared with the XDP filter.
 *
 * Invariant: the responder's counters are written only by the one handle() caller.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "arp_reply.h"
#include "arp_responder.h"
#include "counter.h"
#include "ndp_reply.h"

struct pyscan_arp_responder {
	int fd;
	int ifindex;
	uint32_t ip_be;     /* 0 in an IPv6 responder */
	uint8_t ip6[16];    /* the IPv6 address answered for (ip_be 0) */
	uint8_t mac[6];
	struct pyscan_arp_responder_stats stats;
};

uint32_t pyscan_arp__build_reply(const uint8_t *request, uint32_t len, uint32_t ip_be,
				 const uint8_t *mac, uint8_t *out, uint32_t capacity)
{
	uint8_t frame[PYSCAN_ARP_REPLY_LEN] = {0};

	if (!request || !mac || !out || len < PYSCAN_ARP_FRAME_LEN ||
	    capacity < PYSCAN_ARP_REPLY_LEN)
		return 0;
	memcpy(frame, request, PYSCAN_ARP_FRAME_LEN); /* the padding stays zero, never echoed */
	if (!pyscan_arp__answer_in_place(frame, ip_be, mac))
		return 0;
	memcpy(out, frame, sizeof(frame));
	return PYSCAN_ARP_REPLY_LEN;
}

uint32_t pyscan_arp__build_request(uint32_t ip_be, const uint8_t *mac, uint32_t target_ip_be,
				   uint8_t *out, uint32_t capacity)
{
	static const uint8_t fixed[10] = {0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, PYSCAN_ARP_OP_REQUEST};

	if (!mac || !out || capacity < PYSCAN_ARP_REPLY_LEN)
		return 0;
	memset(out, 0, PYSCAN_ARP_REPLY_LEN);
	memset(out, 0xff, 6);
	memcpy(out + 6, mac, 6);
	memcpy(out + 12, fixed, sizeof(fixed));
	memcpy(out + PYSCAN_ARP_OFF_SHA, mac, 6);
	memcpy(out + PYSCAN_ARP_OFF_SPA, &ip_be, 4);
	memcpy(out + PYSCAN_ARP_OFF_TPA, &target_ip_be, 4);
	return PYSCAN_ARP_REPLY_LEN;
}

uint32_t pyscan_ndp__build_reply(const uint8_t *request, uint32_t len, const uint8_t *ip,
				 const uint8_t *mac, uint8_t *out, uint32_t capacity)
{
	uint8_t frame[PYSCAN_NDP_REPLY_LEN];

	if (!request || !ip || !mac || !out || len < PYSCAN_NDP_FRAME_LEN ||
	    capacity < PYSCAN_NDP_REPLY_LEN)
		return 0;
	memcpy(frame, request, PYSCAN_NDP_FRAME_LEN); /* further options are never echoed */
	if (!pyscan_ndp__answer_in_place(frame, ip, mac))
		return 0;
	memcpy(out, frame, sizeof(frame));
	return PYSCAN_NDP_REPLY_LEN;
}

uint32_t pyscan_ndp__build_solicit(const uint8_t *ip, const uint8_t *mac, const uint8_t *target,
				   uint8_t *out, uint32_t capacity)
{
	/* ff02::1:ffXX:XXXX, the target's solicited-node group (RFC 4291 2.7.1) */
	static const uint8_t group[13] = {0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff};
	uint16_t csum;

	if (!ip || !mac || !target || !out || capacity < PYSCAN_NDP_REPLY_LEN)
		return 0;
	memset(out, 0, PYSCAN_NDP_REPLY_LEN);
	out[0] = 0x33; /* its Ethernet multicast address, 33:33 + the group's last 32 bits */
	out[1] = 0x33;
	out[2] = 0xff;
	memcpy(out + 3, target + 13, 3);
	memcpy(out + 6, mac, 6);
	out[12] = 0x86;
	out[13] = 0xdd;
	out[14] = 0x60;
	out[PYSCAN_NDP_OFF_PLEN + 1] = PYSCAN_NDP_ICMP_LEN;
	out[PYSCAN_NDP_OFF_NEXT] = 58;
	out[PYSCAN_NDP_OFF_HOPS] = 255;
	memcpy(out + PYSCAN_NDP_OFF_SRC, ip, 16);
	memcpy(out + PYSCAN_NDP_OFF_DST, group, sizeof(group));
	memcpy(out + PYSCAN_NDP_OFF_DST + 13, target + 13, 3);
	out[PYSCAN_NDP_OFF_ICMP] = PYSCAN_NDP_NS;
	memcpy(out + PYSCAN_NDP_OFF_TARGET, target, 16);
	out[PYSCAN_NDP_OFF_OPT] = PYSCAN_NDP_OPT_SOURCE_LL;
	out[PYSCAN_NDP_OFF_OPT + 1] = 1;
	memcpy(out + PYSCAN_NDP_OFF_OPT_MAC, mac, 6);
	csum = pyscan_ndp__checksum(out);
	out[PYSCAN_NDP_OFF_CSUM] = (uint8_t)(csum >> 8);
	out[PYSCAN_NDP_OFF_CSUM + 1] = (uint8_t)csum;
	return PYSCAN_NDP_REPLY_LEN;
}

static int send_frame(int fd, int ifindex, const uint8_t *frame, uint32_t len)
{
	struct sockaddr_ll to = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(frame[12] == 0x86 ? ETH_P_IPV6 : ETH_P_ARP),
		.sll_ifindex = ifindex,
		.sll_halen = 6,
	};
	memcpy(to.sll_addr, frame, 6);
	return sendto(fd, frame, len, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to)) ==
	       (ssize_t)len ? 0 : -1;
}

/* One frame through a send-only packet socket of its own: 0, or -errno. */
static int send_once(int ifindex, const uint8_t *frame, uint32_t len)
{
	const int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	const int rc = send_frame(fd, ifindex, frame, len) ? -errno : 0;
	close(fd);
	return rc;
}

int pyscan_arp__announce(int ifindex, uint32_t ip_be, const uint8_t *mac, uint32_t target_ip_be)
{
	uint8_t request[PYSCAN_ARP_REPLY_LEN];

	if (ifindex <= 0 || !ip_be || !target_ip_be ||
	    !pyscan_arp__build_request(ip_be, mac, target_ip_be, request, sizeof(request)))
		return -EINVAL;
	return send_once(ifindex, request, sizeof(request));
}

int pyscan_ndp__announce(int ifindex, const uint8_t *ip, const uint8_t *mac,
			 const uint8_t *target)
{
	uint8_t solicit[PYSCAN_NDP_REPLY_LEN];

	if (ifindex <= 0 || !ip || !target || pyscan_ndp__unspecified(ip) ||
	    !pyscan_ndp__build_solicit(ip, mac, target, solicit, sizeof(solicit)))
		return -EINVAL;
	return send_once(ifindex, solicit, sizeof(solicit));
}

/* Another host claiming the address (arp_reply.h / ndp_reply.h: the XDP filter's rule too). */
static int claims_address(const pyscan_arp_responder *r, const uint8_t *frame, uint32_t len)
{
	if (!r->ip_be)
		return len >= PYSCAN_NDP_CLAIM_LEN && pyscan_ndp__claims(frame, r->ip6, r->mac);
	return len >= PYSCAN_ARP_FRAME_LEN && pyscan_arp__claims(frame, r->ip_be, r->mac);
}

static pyscan_arp_responder *open_responder(int ifindex, uint32_t ip_be, const uint8_t *ip6,
					   const uint8_t *mac, char *err, size_t errlen)
{
	pyscan_arp_responder *r;

	if (ifindex <= 0 || (!ip_be && !ip6) || !mac) {
		snprintf(err, errlen, "ARP responder: needs an interface index > 0, an address and "
			 "a MAC (got ifindex %d)", ifindex);
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "ARP responder: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	/* Protocol 0: a send-only socket, the kernel queues nothing to it. */
	r->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (r->fd < 0) {
		const int code = errno;
		snprintf(err, errlen, "ARP responder: AF_PACKET socket: %s%s", strerror(code),
			 code == EPERM || code == EACCES ? " (needs CAP_NET_RAW: run as root)" : "");
		free(r);
		errno = code;
		return NULL;
	}
	r->ifindex = ifindex;
	r->ip_be = ip_be;
	if (!ip_be)
		memcpy(r->ip6, ip6, 16);
	memcpy(r->mac, mac, 6);
	if (err && errlen)
		err[0] = '\0';
	return r;
}

pyscan_arp_responder *pyscan_arp_responder__open(int ifindex, uint32_t ip_be, const uint8_t *mac,
						 char *err, size_t errlen)
{
	return open_responder(ifindex, ip_be, NULL, mac, err, errlen);
}

pyscan_arp_responder *pyscan_ndp_responder__open(int ifindex, const uint8_t *ip,
						 const uint8_t *mac, char *err, size_t errlen)
{
	if (ip && pyscan_ndp__unspecified(ip))
		ip = NULL; /* refused below like a missing address */
	return open_responder(ifindex, 0, ip, mac, err, errlen);
}

int pyscan_arp_responder__handle(pyscan_arp_responder *r, const uint8_t *frame, uint32_t len)
{
	uint8_t reply[PYSCAN_NDP_REPLY_LEN];
	uint32_t reply_len;

	if (!r || !frame)
		return 0;
	reply_len = r->ip_be ? pyscan_arp__build_reply(frame, len, r->ip_be, r->mac, reply,
							sizeof(reply))
			     : pyscan_ndp__build_reply(frame, len, r->ip6, r->mac, reply,
							sizeof(reply));
	if (!reply_len) {
		if (claims_address(r, frame, len))
			pyscan_counter__bump(&r->stats.conflicts, 1);
		return 0;
	}
	if (send_frame(r->fd, r->ifindex, reply, reply_len) == 0)
		pyscan_counter__bump(&r->stats.answered, 1);
	else
		pyscan_counter__bump(&r->stats.send_errors, 1);
	return 1;
}

void pyscan_arp_responder__stats(const pyscan_arp_responder *r,
				 struct pyscan_arp_responder_stats *out)
{
	if (!r || !out)
		return;
	out->answered = pyscan_counter__load(&r->stats.answered);
	out->send_errors = pyscan_counter__load(&r->stats.send_errors);
	out->conflicts = pyscan_counter__load(&r->stats.conflicts);
}

void pyscan_arp_responder__close(pyscan_arp_responder *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	free(r);
}
