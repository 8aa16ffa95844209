/* SPDX-License-Identifier: GPL-2.0-only
 *
 * bare_common.h - what the bare TX ceiling loops (bare_tpacket.c, bare_afxdp.c) share outside
 * their per-frame paths: the command line "IFNAME SECONDS FRAME_LEN THREADS [PROTOCOL]" and
 * the one-line JSON report that bench/contenders.py reads (parse_bare_output). Each loop keeps
 * its own sender struct and send loop; BARE_MAIN writes its main() around them.
 *
 * Invariant: the report is exactly {"loop", "threads": [{"sent", <missed_key>, "wall_ns",
 * "cpu_ns"}...], "sent", "errors", "wall_ns", "cpu_ns", "frame_len", "error"} on one line,
 * and the exit status is 0, 1 (a sender failed: "error" says why) or 2 (bad arguments).
 */
#ifndef BARE_COMMON_H
#define BARE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bare_frame.h"

struct bare_args {
	const char *ifname;
	double seconds;
	unsigned frame_len;
	int threads;
	int frame_proto;
};

/* What one sender counted once joined. */
struct bare_tally {
	uint64_t sent;
	uint64_t missed; /* frames not sent: errors (tpacket) or lost (af_xdp) */
	uint64_t wall_ns;
	uint64_t cpu_ns;
	const char *error; /* "" when none */
};

/* 0 with args filled, or 2 after one usage or "bad arguments" line on stderr. */
static int bare_parse_args(int argc, char **argv, unsigned max_frame_len, int max_threads,
			   struct bare_args *args)
{
	args->frame_proto = BARE_PROTO_TCP;
	if ((argc != 5 && argc != 6) ||
	    (argc == 6 && (args->frame_proto = bare_frame_proto(argv[5])) < 0)) {
		fprintf(stderr, "usage: %s IFNAME SECONDS FRAME_LEN THREADS [tcp|icmp|udp|tcp6|icmp6]\n",
			argv[0]);
		return 2;
	}
	args->ifname = argv[1];
	args->seconds = atof(argv[2]);
	args->frame_len = (unsigned)atoi(argv[3]);
	args->threads = atoi(argv[4]);
	if (args->seconds <= 0 || args->frame_len < bare_frame_min(args->frame_proto) ||
	    args->frame_len > max_frame_len || args->threads < 1 || args->threads > max_threads) {
		fprintf(stderr, "bad arguments: SECONDS > 0, FRAME_LEN %u..%u, THREADS 1..%d\n",
			bare_frame_min(args->frame_proto), max_frame_len, max_threads);
		return 2;
	}
	return 0;
}

/* Starts sender i (of senders, each sender_size bytes) with start(sender, i), then joins them
 * in order with join() and prints the report; returns the exit status. */
static int bare_run_and_report(const char *loop, const char *missed_key,
			       const struct bare_args *args, void *senders, size_t sender_size,
			       void (*start)(void *sender, int index),
			       struct bare_tally (*join)(void *sender))
{
	uint64_t sent = 0, missed = 0, wall = 0, cpu = 0;
	const char *error = "";

	for (int i = 0; i < args->threads; i++)
		start((char *)senders + (size_t)i * sender_size, i);
	printf("{\"loop\": \"%s\", \"threads\": [", loop);
	for (int i = 0; i < args->threads; i++) {
		const struct bare_tally t = join((char *)senders + (size_t)i * sender_size);

		printf("%s{\"sent\": %llu, \"%s\": %llu, \"wall_ns\": %llu, \"cpu_ns\": %llu}",
		       i ? ", " : "", (unsigned long long)t.sent, missed_key,
		       (unsigned long long)t.missed, (unsigned long long)t.wall_ns,
		       (unsigned long long)t.cpu_ns);
		sent += t.sent;
		missed += t.missed;
		cpu += t.cpu_ns;
		wall = t.wall_ns > wall ? t.wall_ns : wall;
		if (t.error[0])
			error = t.error;
	}
	printf("], \"sent\": %llu, \"errors\": %llu, \"wall_ns\": %llu, \"cpu_ns\": %llu, "
	       "\"frame_len\": %u, \"error\": \"%s\"}\n",
	       (unsigned long long)sent, (unsigned long long)missed, (unsigned long long)wall,
	       (unsigned long long)cpu, args->frame_len, error);
	return error[0] ? 1 : 0;
}

/* The loop's main(): parses the arguments into its globals ifname, seconds, frame_len and
 * frame_proto, runs MAX_THREADS-bounded senders with run() and prints the report. For a loop
 * whose struct sender has thread, index, sent, wall_ns, cpu_ns, error[] and the field that
 * counts frames not sent (missed_field, also the per-thread key of the report). */
#define BARE_MAIN(loop, missed_field, max_frame_len)                                        \
	static void start_sender(void *sender, int index)                                   \
	{                                                                                   \
		struct sender *s = sender;                                                  \
		s->index = index;                                                           \
		pthread_create(&s->thread, NULL, run, s);                                   \
	}                                                                                   \
	static struct bare_tally join_sender(void *sender)                                  \
	{                                                                                   \
		struct sender *s = sender;                                                  \
		pthread_join(s->thread, NULL);                                              \
		return (struct bare_tally){s->sent, s->missed_field, s->wall_ns, s->cpu_ns,  \
					   s->error};                                       \
	}                                                                                   \
	int main(int argc, char **argv)                                                     \
	{                                                                                   \
		static struct sender senders[MAX_THREADS];                                  \
		struct bare_args args;                                                      \
		const int bad = bare_parse_args(argc, argv, max_frame_len, MAX_THREADS,     \
						&args);                                     \
		if (bad)                                                                    \
			return bad;                                                         \
		ifname = args.ifname;                                                       \
		seconds = args.seconds;                                                     \
		frame_len = args.frame_len;                                                 \
		frame_proto = args.frame_proto;                                             \
		return bare_run_and_report(#loop, #missed_field, &args, senders,            \
					   sizeof(senders[0]), start_sender, join_sender);  \
	}

#endif /* BARE_COMMON_H */
