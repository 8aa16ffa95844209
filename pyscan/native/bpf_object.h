/* SPDX-License-Identifier: GPL-2.0-only
 *
 * bpf_object.h - the libbpf loader for pyscan's XDP programs (lab sink, reply filter).
 *
 * One pyscan_bpf_object wraps one libbpf object file: open -> (initial values) -> load ->
 * attach one XDP program to one interface -> maps -> close. Module functions work on plain
 * fds and ifindexes so a new process can find and read a program another process attached.
 *
 * Invariants:
 *  - Every function returns 0 / a non-negative fd or id on success and -errno on failure, and
 *    on failure leaves a one-line reason in pyscan_bpf__error() (thread-local), followed by
 *    whatever libbpf printed (verifier log) in pyscan_bpf__log().
 *  - libbpf prints nothing to stderr unless the environment has PYSCAN_DEBUG_BPF set.
 *  - An attachment made with persist=0 is a bpf_link: it ends with close() or the process.
 *    One made with persist=1 is a netlink attach that outlives the process; close() leaves it
 *    in place and only detach() (or pyscan_xdp__detach from anywhere) removes it.
 */
#ifndef PYSCAN_BPF_OBJECT_H
#define PYSCAN_BPF_OBJECT_H

#include <stddef.h>
#include <stdint.h>

/* Attach modes, values of the kernel's XDP_FLAGS_*_MODE so they pass straight through. */
#define PYSCAN_XDP_MODE_GENERIC 2
#define PYSCAN_XDP_MODE_NATIVE 4

typedef struct pyscan_bpf_object pyscan_bpf_object;

/* What BPF_PROG_TEST_RUN reports for one program run. */
struct pyscan_bpf_test_result {
	uint32_t retval;      /* the program's return value (XDP_DROP = 1, XDP_PASS = 2, ...) */
	uint32_t duration_ns; /* kernel-measured mean time per run */
	uint32_t data_out_len;
	uint32_t reserved;
};

_Static_assert(sizeof(struct pyscan_bpf_test_result) == 16, "test result crosses to Python");

/* What the kernel reports for the XDP programs attached to one interface. */
struct pyscan_xdp_attachment {
	uint32_t prog_id;     /* the single attached program, any mode (0 = none) */
	uint32_t native_id;   /* attached in native (driver) mode */
	uint32_t generic_id;  /* attached in generic (skb) mode */
	uint32_t mode;        /* kernel XDP_ATTACHED_*: 0 none, 1 drv, 2 skb, 3 hw, 4 multi */
};

_Static_assert(sizeof(struct pyscan_xdp_attachment) == 16, "attachment crosses to Python");

const char *pyscan_bpf__error(void);
const char *pyscan_bpf__log(void);
int pyscan_bpf__possible_cpus(void);

pyscan_bpf_object *pyscan_bpf_object__open(const char *path);
int pyscan_bpf_object__set_initial_value(pyscan_bpf_object *obj, const char *map_name,
					 const void *data, size_t size);
int pyscan_bpf_object__load(pyscan_bpf_object *obj);
int pyscan_bpf_object__prog_fd(pyscan_bpf_object *obj, const char *prog_name);
int pyscan_bpf_object__map_fd(pyscan_bpf_object *obj, const char *map_name);
int pyscan_bpf_object__attach_xdp(pyscan_bpf_object *obj, const char *prog_name, int ifindex,
				  uint32_t mode, int persist);
int pyscan_bpf_object__detach(pyscan_bpf_object *obj);
void pyscan_bpf_object__close(pyscan_bpf_object *obj);

int pyscan_bpf_map__sizes(int map_fd, uint32_t *key_size, uint32_t *value_size,
			  uint32_t *max_entries, uint32_t *map_type);
int pyscan_bpf_map__update(int map_fd, const void *key, const void *value, uint64_t flags);
int pyscan_bpf_map__lookup(int map_fd, const void *key, void *value);
int pyscan_bpf_map__percpu_sum(int map_fd, uint32_t key, uint64_t *sums, uint32_t max_words);

int pyscan_bpf_prog__test_run(int prog_fd, const void *data, uint32_t size, uint32_t repeat,
			      void *data_out, uint32_t data_out_capacity,
			      struct pyscan_bpf_test_result *result);

int pyscan_xdp__query(int ifindex, struct pyscan_xdp_attachment *out);
int pyscan_xdp__detach(int ifindex, uint32_t mode, uint32_t expected_prog_id);
int pyscan_xdp__attached_map_fd(int ifindex, uint32_t prog_id, const char *map_name);

/* The af-xdp reply filter (pyscan/bpf/reply_filter.bpf.c), loaded and verified with a scan's
 * key, source ports and scanner address, not attached anywhere (the driver attaches it; tests
 * run it with BPF_PROG_TEST_RUN). arp_ip_be (network order, 0 = none): an address the host
 * does not own whose ARP requests the filter answers with arp_mac (6 bytes) by XDP_TX, or by
 * a redirect to the receiving device when arp_redirect (veth: reply_filter.bpf.c says why).
 * ndp_ip (16 bytes, NULL = none; only with arp_ip_be 0): the IPv6 twin, neighbour
 * solicitations for it answered the same way (ndp_reply.h).
 * NULL + errno on failure, reason in pyscan_bpf__error(). */
struct pyscan_replyfilter;
struct pyscan_replyfilter *pyscan_replyfilter__load(const char *object_path, const uint8_t *key,
						    uint32_t scanner_ip_be, uint16_t port_lo,
						    uint16_t port_hi, uint32_t queue_slots,
						    uint32_t probe_mask, uint32_t arp_ip_be,
						    const uint8_t *arp_mac, uint32_t arp_redirect,
						    const uint8_t *ndp_ip);
int pyscan_replyfilter__test_run(struct pyscan_replyfilter *filter, const uint8_t *frame,
				 uint32_t len, uint32_t *action);
/* test_run, also copying the frame as the program left it (an XDP_TX answer) into out. */
int pyscan_replyfilter__test_run_out(struct pyscan_replyfilter *filter, const uint8_t *frame,
				     uint32_t len, uint8_t *out, uint32_t out_capacity,
				     uint32_t *out_len, uint32_t *action);
/* Sums each counter (reply_filter.h) over all possible CPUs into out[0 .. n-1]. */
int pyscan_replyfilter__counters(struct pyscan_replyfilter *filter, uint64_t *out, uint32_t n);
uint32_t pyscan_replyfilter__prog_id(struct pyscan_replyfilter *filter);
/* For the af-xdp driver only (not in the .cdef): fds owned by the filter. */
int pyscan_replyfilter__prog_fd(struct pyscan_replyfilter *filter);
int pyscan_replyfilter__xsks_map_fd(struct pyscan_replyfilter *filter);
void pyscan_replyfilter__close(struct pyscan_replyfilter *filter);

#endif
