/* SPDX-License-Identifier: GPL-2.0-only
 *
 * bpf_object.c - the one place pyscan talks to libbpf: open, initial values, load, attach
 * (bpf_link that dies with the process, or netlink attach that persists), maps, per-CPU sums,
 * BPF_PROG_TEST_RUN, finding the program and maps already attached to an interface, and the
 * af-xdp driver's reply filter (pyscan/bpf/reply_filter.bpf.c) loaded with a scan's key.
 *
 * Invariant: every failure returns -errno (NULL + errno for constructors) and leaves a
 * one-line reason in the calling thread's error buffer; libbpf's own messages go to the
 * thread's log buffer through the one print hook below, never to stderr (unless
 * PYSCAN_DEBUG_BPF is set), because the CLI owns the terminal and a verifier log is only
 * useful on failure.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_object.h"
#include "reply_filter.h"

_Static_assert(PYSCAN_XDP_MODE_GENERIC == XDP_FLAGS_SKB_MODE, "mode passes straight through");
_Static_assert(PYSCAN_XDP_MODE_NATIVE == XDP_FLAGS_DRV_MODE, "mode passes straight through");

#define ERROR_CAPACITY 512
#define LOG_CAPACITY 16384

struct pyscan_bpf_object {
	struct bpf_object *obj;
	char path[256];
	int loaded;
	/* The one XDP attachment this object made (ifindex 0 = none). */
	int attach_ifindex;
	uint32_t attach_mode;
	int attach_link_fd;     /* >= 0 for a bpf_link attachment */
	int attach_prog_fd;     /* owned by obj, used as the expected program on netlink detach */
	int attach_persist;
};

static __thread char error_text[ERROR_CAPACITY];
static __thread char log_text[LOG_CAPACITY];
static __thread size_t log_used;
static int verbose_output;
static pthread_once_t print_once = PTHREAD_ONCE_INIT;

static int capture_libbpf_print(enum libbpf_print_level level, const char *format, va_list args)
{
	if (verbose_output) {
		va_list copy;

		va_copy(copy, args);
		vfprintf(stderr, format, copy);
		va_end(copy);
	}
	if (level == LIBBPF_DEBUG)
		return 0;
	/* Keep the newest text: when full, drop the older half (the verifier's tail says why). */
	if (log_used > LOG_CAPACITY / 2) {
		size_t keep = LOG_CAPACITY / 4;

		memmove(log_text, log_text + log_used - keep, keep);
		log_used = keep;
		log_text[log_used] = '\0';
	}
	int written = vsnprintf(log_text + log_used, LOG_CAPACITY - log_used, format, args);
	if (written > 0)
		log_used += (size_t)written < LOG_CAPACITY - log_used ? (size_t)written
								 : LOG_CAPACITY - log_used - 1;
	return 0;
}

static void install_print(void)
{
	verbose_output = getenv("PYSCAN_DEBUG_BPF") != NULL;
	libbpf_set_print(capture_libbpf_print);
}

/* At load time, so libbpf stays quiet even for users of libbpf that never call us (libxdp in
 * the AF_XDP driver); their messages land in the calling thread's log like ours. */
__attribute__((constructor)) static void silence_libbpf_at_load(void)
{
	pthread_once(&print_once, install_print);
}

/* Start of every exported call: a fresh log, so an error describes this call only. */
static void begin_call(void)
{
	pthread_once(&print_once, install_print);
	log_used = 0;
	log_text[0] = '\0';
	error_text[0] = '\0';
}

/* The last non-empty line libbpf printed, to append to a one-line error. */
static void last_log_line(char *out, size_t capacity)
{
	size_t end = log_used;

	out[0] = '\0';
	while (end > 0 && (log_text[end - 1] == '\n' || log_text[end - 1] == ' '))
		end--;
	size_t start = end;
	while (start > 0 && log_text[start - 1] != '\n')
		start--;
	size_t len = end - start < capacity - 1 ? end - start : capacity - 1;
	memcpy(out, log_text + start, len);
	out[len] = '\0';
}

__attribute__((format(printf, 2, 3)))
static int fail(int err, const char *format, ...)
{
	char detail[200];
	va_list args;

	if (err > 0)
		err = -err;
	if (err == 0)
		err = -EINVAL;
	va_start(args, format);
	int used = vsnprintf(error_text, ERROR_CAPACITY, format, args);
	va_end(args);
	if (used < 0 || used >= ERROR_CAPACITY)
		return err;
	last_log_line(detail, sizeof(detail));
	if (detail[0] && !strstr(error_text, detail))
		snprintf(error_text + used, ERROR_CAPACITY - used, ": %s (libbpf: %s)",
			 strerror(-err), detail);
	else
		snprintf(error_text + used, ERROR_CAPACITY - used, ": %s", strerror(-err));
	return err;
}

const char *pyscan_bpf__error(void)
{
	return error_text;
}

const char *pyscan_bpf__log(void)
{
	return log_text;
}

int pyscan_bpf__possible_cpus(void)
{
	begin_call();
	int cpus = libbpf_num_possible_cpus();

	return cpus > 0 ? cpus : fail(cpus, "cannot count possible CPUs");
}

pyscan_bpf_object *pyscan_bpf_object__open(const char *path)
{
	begin_call();
	struct pyscan_bpf_object *self = calloc(1, sizeof(*self));

	if (!self) {
		errno = ENOMEM;
		fail(ENOMEM, "cannot open BPF object %s", path);
		return NULL;
	}
	self->attach_link_fd = -1;
	self->attach_prog_fd = -1;
	snprintf(self->path, sizeof(self->path), "%s", path);
	self->obj = bpf_object__open_file(path, NULL);
	if (!self->obj) {
		int err = errno;

		fail(err, "cannot open BPF object %s", path);
		free(self);
		errno = err;
		return NULL;
	}
	return self;
}

int pyscan_bpf_object__set_initial_value(pyscan_bpf_object *self, const char *map_name,
					 const void *data, size_t size)
{
	begin_call();
	if (self->loaded)
		return fail(EBUSY, "%s: initial value of %s must be set before load", self->path,
			    map_name);
	struct bpf_map *map = bpf_object__find_map_by_name(self->obj, map_name);
	if (!map)
		return fail(ENOENT, "%s has no map named %s", self->path, map_name);
	size_t expected = bpf_map__value_size(map);
	if (size != expected)
		return fail(EINVAL, "%s: %s holds %zu bytes, got %zu", self->path, map_name,
			    expected, size);
	int err = bpf_map__set_initial_value(map, data, size);
	return err ? fail(err, "%s: cannot set initial value of %s", self->path, map_name) : 0;
}

int pyscan_bpf_object__load(pyscan_bpf_object *self)
{
	begin_call();
	if (self->loaded)
		return 0;
	int err = bpf_object__load(self->obj);
	if (err)
		return fail(err, "cannot load BPF object %s", self->path);
	self->loaded = 1;
	return 0;
}

static struct bpf_program *find_program(pyscan_bpf_object *self, const char *prog_name)
{
	if (prog_name && prog_name[0])
		return bpf_object__find_program_by_name(self->obj, prog_name);
	/* No name: the object's only program (the sink and the filter each have one). */
	return bpf_object__next_program(self->obj, NULL);
}

int pyscan_bpf_object__prog_fd(pyscan_bpf_object *self, const char *prog_name)
{
	begin_call();
	if (!self->loaded)
		return fail(EINVAL, "%s: load() before asking for program fds", self->path);
	struct bpf_program *prog = find_program(self, prog_name);
	if (!prog)
		return fail(ENOENT, "%s has no program named %s", self->path, prog_name);
	int fd = bpf_program__fd(prog);
	return fd >= 0 ? fd : fail(fd, "%s: program %s has no fd", self->path, prog_name);
}

int pyscan_bpf_object__map_fd(pyscan_bpf_object *self, const char *map_name)
{
	begin_call();
	if (!self->loaded)
		return fail(EINVAL, "%s: load() before asking for map fds", self->path);
	struct bpf_map *map = bpf_object__find_map_by_name(self->obj, map_name);
	if (!map)
		return fail(ENOENT, "%s has no map named %s", self->path, map_name);
	int fd = bpf_map__fd(map);
	return fd >= 0 ? fd : fail(fd, "%s: map %s has no fd", self->path, map_name);
}

static const char *mode_name(uint32_t mode)
{
	return mode == PYSCAN_XDP_MODE_NATIVE ? "native" : "generic";
}

int pyscan_bpf_object__attach_xdp(pyscan_bpf_object *self, const char *prog_name, int ifindex,
				  uint32_t mode, int persist)
{
	begin_call();
	if (mode != PYSCAN_XDP_MODE_NATIVE && mode != PYSCAN_XDP_MODE_GENERIC)
		return fail(EINVAL, "XDP mode %u is neither native (%d) nor generic (%d)", mode,
			    PYSCAN_XDP_MODE_NATIVE, PYSCAN_XDP_MODE_GENERIC);
	if (self->attach_ifindex)
		return fail(EBUSY, "%s is already attached to ifindex %d", self->path,
			    self->attach_ifindex);
	if (!self->loaded)
		return fail(EINVAL, "%s: load() before attach", self->path);
	struct bpf_program *prog = find_program(self, prog_name);
	if (!prog)
		return fail(ENOENT, "%s has no program named %s", self->path,
			    prog_name ? prog_name : "(any)");
	int prog_fd = bpf_program__fd(prog);

	if (persist) {
		/* UPDATE_IF_NOEXIST: never silently replace a program someone else attached. */
		int err = bpf_xdp_attach(ifindex, prog_fd, mode | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
		if (err)
			return fail(err, "cannot attach %s in %s mode to ifindex %d", self->path,
				    mode_name(mode), ifindex);
	} else {
		LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = mode);
		int link_fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
		if (link_fd < 0)
			return fail(link_fd, "cannot link %s in %s mode to ifindex %d", self->path,
				    mode_name(mode), ifindex);
		self->attach_link_fd = link_fd;
	}
	self->attach_ifindex = ifindex;
	self->attach_mode = mode;
	self->attach_prog_fd = prog_fd;
	self->attach_persist = persist;
	return 0;
}

int pyscan_bpf_object__detach(pyscan_bpf_object *self)
{
	begin_call();
	int err = 0;

	if (!self->attach_ifindex)
		return 0;
	if (self->attach_link_fd >= 0) {
		/* LINK_DETACH ends the attachment even if a forked child still holds the fd. */
		err = bpf_link_detach(self->attach_link_fd);
		if (err == -ENOENT || err == -ENODEV)
			err = 0;   /* interface already gone: so is the attachment */
		close(self->attach_link_fd);
		self->attach_link_fd = -1;
		if (err)
			err = fail(err, "cannot detach %s from ifindex %d", self->path,
				   self->attach_ifindex);
	} else {
		LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = self->attach_prog_fd);
		err = bpf_xdp_detach(self->attach_ifindex, self->attach_mode, &opts);
		if (err == -ENODEV)
			err = 0;
		if (err)
			err = fail(err, "cannot detach %s from ifindex %d", self->path,
				   self->attach_ifindex);
	}
	self->attach_ifindex = 0;
	return err;
}

/* close() without begin_call(): failure paths free an object and keep their error text. */
static void destroy_object(pyscan_bpf_object *self)
{
	if (!self)
		return;
	if (self->attach_link_fd >= 0)
		close(self->attach_link_fd);   /* the link's last reference: the attachment ends */
	bpf_object__close(self->obj);       /* a persistent attachment keeps its own reference */
	free(self);
}

void pyscan_bpf_object__close(pyscan_bpf_object *self)
{
	begin_call();
	destroy_object(self);
}

int pyscan_bpf_map__sizes(int map_fd, uint32_t *key_size, uint32_t *value_size,
			  uint32_t *max_entries, uint32_t *map_type)
{
	begin_call();
	struct bpf_map_info info;
	uint32_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	int err = bpf_obj_get_info_by_fd(map_fd, &info, &len);
	if (err)
		return fail(err, "cannot describe map fd %d", map_fd);
	*key_size = info.key_size;
	*value_size = info.value_size;
	*max_entries = info.max_entries;
	*map_type = info.type;
	return 0;
}

int pyscan_bpf_map__update(int map_fd, const void *key, const void *value, uint64_t flags)
{
	begin_call();
	int err = bpf_map_update_elem(map_fd, key, value, flags);
	return err ? fail(err, "cannot update map fd %d", map_fd) : 0;
}

int pyscan_bpf_map__lookup(int map_fd, const void *key, void *value)
{
	begin_call();
	int err = bpf_map_lookup_elem(map_fd, key, value);
	return err ? fail(err, "cannot look up map fd %d", map_fd) : 0;
}

int pyscan_bpf_map__percpu_sum(int map_fd, uint32_t key, uint64_t *sums, uint32_t max_words)
{
	uint32_t key_size, value_size, max_entries, map_type;
	int err = pyscan_bpf_map__sizes(map_fd, &key_size, &value_size, &max_entries, &map_type);

	if (err)
		return err;
	if (map_type != BPF_MAP_TYPE_PERCPU_ARRAY && map_type != BPF_MAP_TYPE_PERCPU_HASH)
		return fail(EINVAL, "map fd %d is type %u, not a per-CPU map", map_fd, map_type);
	if (key_size != sizeof(uint32_t) || value_size % sizeof(uint64_t))
		return fail(EINVAL, "map fd %d has %u-byte keys and %u-byte values; need 4 and u64s",
			    map_fd, key_size, value_size);
	int cpus = libbpf_num_possible_cpus();
	if (cpus <= 0)
		return fail(cpus, "cannot count possible CPUs");
	/* The kernel copies one value per possible CPU, each rounded up to 8 bytes. */
	uint64_t *values = calloc((size_t)cpus, value_size);
	if (!values)
		return fail(ENOMEM, "cannot read map fd %d", map_fd);
	err = bpf_map_lookup_elem(map_fd, &key, values);
	if (err) {
		free(values);
		return fail(err, "cannot look up key %u of map fd %d", key, map_fd);
	}
	uint32_t words = value_size / sizeof(uint64_t);
	uint32_t out_words = words < max_words ? words : max_words;
	for (uint32_t w = 0; w < out_words; w++) {
		uint64_t sum = 0;

		for (int cpu = 0; cpu < cpus; cpu++)
			sum += values[(size_t)cpu * words + w];
		sums[w] = sum;
	}
	free(values);
	return (int)out_words;
}

int pyscan_bpf_prog__test_run(int prog_fd, const void *data, uint32_t size, uint32_t repeat,
			      void *data_out, uint32_t data_out_capacity,
			      struct pyscan_bpf_test_result *result)
{
	begin_call();
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		    .data_in = data,
		    .data_size_in = size,
		    .data_out = data_out,
		    .data_size_out = data_out_capacity,
		    .repeat = repeat);
	int err = bpf_prog_test_run_opts(prog_fd, &opts);

	if (err)
		return fail(err, "BPF_PROG_TEST_RUN of prog fd %d on %u bytes failed", prog_fd,
			    size);
	result->retval = opts.retval;
	result->duration_ns = opts.duration;
	result->data_out_len = opts.data_size_out;
	result->reserved = 0;
	return 0;
}

int pyscan_xdp__query(int ifindex, struct pyscan_xdp_attachment *out)
{
	begin_call();
	LIBBPF_OPTS(bpf_xdp_query_opts, opts);
	int err = bpf_xdp_query(ifindex, 0, &opts);

	memset(out, 0, sizeof(*out));
	if (err)
		return fail(err, "cannot query XDP programs on ifindex %d", ifindex);
	out->prog_id = opts.prog_id;
	out->native_id = opts.drv_prog_id;
	out->generic_id = opts.skb_prog_id;
	out->mode = opts.attach_mode;
	return 0;
}

static int detach_one(int ifindex, uint32_t mode, uint32_t expected_prog_id)
{
	int prog_fd = bpf_prog_get_fd_by_id(expected_prog_id);

	if (prog_fd < 0)
		return prog_fd == -ENOENT ? 0 : fail(prog_fd, "cannot open program id %u",
						     expected_prog_id);
	LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = prog_fd);
	int err = bpf_xdp_detach(ifindex, mode, &opts);
	close(prog_fd);
	if (err == -EEXIST)   /* someone replaced it meanwhile: theirs now, not ours to remove */
		return 0;
	return err ? fail(err, "cannot detach program %u (%s) from ifindex %d", expected_prog_id,
			  mode_name(mode), ifindex) : 0;
}

int pyscan_xdp__detach(int ifindex, uint32_t mode, uint32_t expected_prog_id)
{
	struct pyscan_xdp_attachment now;
	int err = pyscan_xdp__query(ifindex, &now);

	if (err)
		return err == -ENODEV ? 0 : err;
	int result = 0;
	const struct { uint32_t mode; uint32_t id; } slots[] = {
		{ PYSCAN_XDP_MODE_NATIVE, now.native_id },
		{ PYSCAN_XDP_MODE_GENERIC, now.generic_id },
	};
	for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		if (!slots[i].id || (mode && mode != slots[i].mode))
			continue;
		if (expected_prog_id && expected_prog_id != slots[i].id)
			continue;
		err = detach_one(ifindex, slots[i].mode, slots[i].id);
		if (err && !result)
			result = err;
	}
	return result;
}

int pyscan_xdp__attached_map_fd(int ifindex, uint32_t prog_id, const char *map_name)
{
	if (!prog_id) {
		struct pyscan_xdp_attachment now;
		int err = pyscan_xdp__query(ifindex, &now);

		if (err)
			return err;
		prog_id = now.prog_id ? now.prog_id : (now.native_id ? now.native_id
								      : now.generic_id);
		if (!prog_id)
			return fail(ENOENT, "no XDP program attached to ifindex %d", ifindex);
	} else {
		begin_call();
	}
	int prog_fd = bpf_prog_get_fd_by_id(prog_id);
	if (prog_fd < 0)
		return fail(prog_fd, "cannot open program id %u", prog_id);

	uint32_t map_ids[64];
	struct bpf_prog_info info;
	uint32_t len = sizeof(info);
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = sizeof(map_ids) / sizeof(map_ids[0]);
	info.map_ids = (uint64_t)(uintptr_t)map_ids;
	int err = bpf_obj_get_info_by_fd(prog_fd, &info, &len);
	close(prog_fd);
	if (err)
		return fail(err, "cannot describe program id %u", prog_id);

	uint32_t count = info.nr_map_ids < 64 ? info.nr_map_ids : 64;
	for (uint32_t i = 0; i < count; i++) {
		int map_fd = bpf_map_get_fd_by_id(map_ids[i]);
		if (map_fd < 0)
			continue;
		struct bpf_map_info map_info;
		uint32_t map_len = sizeof(map_info);
		memset(&map_info, 0, sizeof(map_info));
		/* The kernel keeps BPF_OBJ_NAME_LEN - 1 characters of a map's name. */
		if (!bpf_obj_get_info_by_fd(map_fd, &map_info, &map_len) &&
		    !strncmp(map_info.name, map_name, BPF_OBJ_NAME_LEN - 1))
			return map_fd;
		close(map_fd);
	}
	return fail(ENOENT, "program id %u on ifindex %d has no map named %s", prog_id, ifindex,
		    map_name);
}

/* ---- the af-xdp reply filter ---------------------------------------------------------------- */

struct pyscan_replyfilter {
	pyscan_bpf_object *object;
	int prog_fd;      /* owned by object */
	int xsks_map_fd;  /* owned by object */
	int counters_fd;  /* owned by object */
	uint32_t prog_id;
};

/* The scan's configuration becomes the filter's whole .rodata (reply_filter.h invariant). */
static int set_filter_config(struct pyscan_replyfilter *filter, const char *object_path,
			     const uint8_t *key, uint32_t scanner_ip_be, uint16_t port_lo,
			     uint16_t port_hi, uint32_t probe_mask, uint32_t arp_ip_be,
			     const uint8_t *arp_mac, uint32_t arp_redirect, const uint8_t *ndp_ip)
{
	struct pyscan_reply_filter_config config = {0};
	struct bpf_map *rodata = bpf_object__find_map_by_name(filter->object->obj, ".rodata");
	size_t rodata_size = 0;

	if (!rodata || !bpf_map__initial_value(rodata, &rodata_size) ||
	    rodata_size != sizeof(config))
		return fail(EINVAL, "reply filter: %s has a .rodata of %zu bytes, expected exactly "
			    "struct pyscan_reply_filter_config (%zu)", object_path, rodata_size,
			    sizeof(config));
	memcpy(&config.key.k0, key, 8);
	memcpy(&config.key.k1, key + 8, 8);
	config.scanner_ip_be = scanner_ip_be;
	config.port_lo = port_lo;
	config.port_hi = port_hi;
	config.probe_mask = probe_mask;
	config.arp_ip_be = arp_ip_be;
	if (arp_ip_be) {
		memcpy(config.arp_mac, arp_mac, sizeof(config.arp_mac));
		config.arp_redirect = arp_redirect ? 1 : 0;
	} else if (ndp_ip) {
		/* the IPv6 twin: the same MAC and way out, answers from ndp_reply.h */
		config.ndp_answer = 1;
		memcpy(config.ndp_ip, ndp_ip, sizeof(config.ndp_ip));
		memcpy(config.arp_mac, arp_mac, sizeof(config.arp_mac));
		config.arp_redirect = arp_redirect ? 1 : 0;
	}
	return pyscan_bpf_object__set_initial_value(filter->object, ".rodata", &config,
						    sizeof(config));
}

struct pyscan_replyfilter *pyscan_replyfilter__load(const char *object_path, const uint8_t *key,
						    uint32_t scanner_ip_be, uint16_t port_lo,
						    uint16_t port_hi, uint32_t queue_slots,
						    uint32_t probe_mask, uint32_t arp_ip_be,
						    const uint8_t *arp_mac, uint32_t arp_redirect,
						    const uint8_t *ndp_ip)
{
	struct bpf_prog_info prog_info = {0};
	uint32_t prog_info_len = sizeof(prog_info);
	struct pyscan_replyfilter *filter;
	struct bpf_map *xsks_map;
	int rc;

	begin_call();
	if (port_lo > port_hi) {
		errno = EINVAL;
		fail(EINVAL, "reply filter: port range %u-%u is empty", port_lo, port_hi);
		return NULL;
	}
	if (!probe_mask || probe_mask >> PYSCAN_PROBE_COUNT) {
		/* The filter would pass every frame of such a module: the scan would see no
		 * reply at all. */
		errno = EINVAL;
		fail(EINVAL, "reply filter: probe id %d has no XDP match (known: 0..%d, probe_ids.h)",
		     probe_mask ? 31 - __builtin_clz(probe_mask) : -1, PYSCAN_PROBE_COUNT - 1);
		return NULL;
	}
	if ((arp_ip_be || ndp_ip) && !arp_mac) {
		errno = EINVAL;
		fail(EINVAL, "reply filter: an address to answer ARP for needs the MAC to answer with");
		return NULL;
	}
	filter = calloc(1, sizeof(*filter));
	if (!filter) {
		errno = ENOMEM;
		fail(ENOMEM, "reply filter: out of memory");
		return NULL;
	}
	filter->object = pyscan_bpf_object__open(object_path);
	if (!filter->object) {
		rc = fail(errno, "reply filter: cannot open %s (rebuild with setup.py build_ext)",
			  object_path);
		goto fail;
	}
	rc = set_filter_config(filter, object_path, key, scanner_ip_be, port_lo, port_hi,
			       probe_mask, arp_ip_be, arp_mac, arp_redirect, ndp_ip);
	if (rc)
		goto fail;
	xsks_map = bpf_object__find_map_by_name(filter->object->obj, "xsks_map");
	if (!xsks_map) {
		rc = fail(ENOENT, "reply filter: %s has no xsks_map", object_path);
		goto fail;
	}
	rc = bpf_map__set_max_entries(xsks_map, queue_slots ? queue_slots : 1);
	if (rc) {
		rc = fail(rc, "reply filter: cannot size the xsks_map of %s", object_path);
		goto fail;
	}
	rc = pyscan_bpf_object__load(filter->object);
	if (rc == -EPERM || rc == -EACCES) {
		/* the whole fix in one line: no libbpf detail, it only repeats the refusal */
		snprintf(error_text, ERROR_CAPACITY, "loading the XDP reply filter was refused (%s): "
			 "it needs CAP_BPF and CAP_NET_ADMIN (run as root)", strerror(-rc));
		goto fail;
	}
	if (rc)
		goto fail;
	filter->prog_fd = rc = pyscan_bpf_object__prog_fd(filter->object, "pyscan_reply_filter");
	if (rc < 0)
		goto fail;
	filter->xsks_map_fd = rc = pyscan_bpf_object__map_fd(filter->object, "xsks_map");
	if (rc < 0)
		goto fail;
	filter->counters_fd = rc = pyscan_bpf_object__map_fd(filter->object,
							      "reply_filter_counters");
	if (rc < 0)
		goto fail;
	if (bpf_obj_get_info_by_fd(filter->prog_fd, &prog_info, &prog_info_len) == 0)
		filter->prog_id = prog_info.id;
	return filter;

fail:
	destroy_object(filter->object);
	free(filter);
	errno = rc < 0 ? -rc : EINVAL;
	return NULL;
}

int pyscan_replyfilter__test_run(struct pyscan_replyfilter *filter, const uint8_t *frame,
				 uint32_t len, uint32_t *action)
{
	struct pyscan_bpf_test_result result;
	int rc = pyscan_bpf_prog__test_run(filter->prog_fd, frame, len, 1, NULL, 0, &result);

	if (rc)
		return rc;
	*action = result.retval;
	return 0;
}

int pyscan_replyfilter__test_run_out(struct pyscan_replyfilter *filter, const uint8_t *frame,
				     uint32_t len, uint8_t *out, uint32_t out_capacity,
				     uint32_t *out_len, uint32_t *action)
{
	struct pyscan_bpf_test_result result;
	int rc = pyscan_bpf_prog__test_run(filter->prog_fd, frame, len, 1, out, out_capacity,
					   &result);

	if (rc)
		return rc;
	*action = result.retval;
	*out_len = result.data_out_len;
	return 0;
}

int pyscan_replyfilter__counters(struct pyscan_replyfilter *filter, uint64_t *out, uint32_t n)
{
	for (uint32_t index = 0; index < n && index < PYSCAN_RF_NCOUNTERS; index++)
		if (pyscan_bpf_map__percpu_sum(filter->counters_fd, index, &out[index], 1) != 1)
			out[index] = 0;
	return 0;
}

uint32_t pyscan_replyfilter__prog_id(struct pyscan_replyfilter *filter)
{
	return filter->prog_id;
}

int pyscan_replyfilter__prog_fd(struct pyscan_replyfilter *filter)
{
	return filter->prog_fd;
}

int pyscan_replyfilter__xsks_map_fd(struct pyscan_replyfilter *filter)
{
	return filter->xsks_map_fd;
}

void pyscan_replyfilter__close(struct pyscan_replyfilter *filter)
{
	if (!filter)
		return;
	pyscan_bpf_object__close(filter->object);
	free(filter);
}
