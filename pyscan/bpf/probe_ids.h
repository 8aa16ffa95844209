/* SPDX-License-Identifier: GPL-2.0-only
 *
 * probe_ids.h - the probe module ids, shared by the C data plane (pyscan/native/probe.c), the
 * XDP reply filter (reply_filter.bpf.c) and, through pyscan_probe__name(), Python's registry
 * (pyscan/probes).
 *
 * Invariant: an id is a row index of the C table and a case of the XDP filter's match switch;
 * ids are dense from 0 and never reused, and PYSCAN_PROBE_COUNT is one past the last. A scan
 * enables a set of them: bit id of a probe mask (PYSCAN_PROBE_BIT).
 */
#ifndef PYSCAN_PROBE_IDS_H
#define PYSCAN_PROBE_IDS_H

#define PYSCAN_PROBE_TCP_SYN4 0   /* TCP SYN over IPv4: open = SYN-ACK, closed = RST+ACK */
#define PYSCAN_PROBE_ICMP_ECHO4 1 /* ICMP echo over IPv4: up = echo reply */
#define PYSCAN_PROBE_UDP4 2       /* UDP over IPv4: open = UDP reply, closed = port unreachable */
#define PYSCAN_PROBE_TCP_SYN6 3   /* TCP SYN over IPv6: open = SYN-ACK, closed = RST+ACK */
#define PYSCAN_PROBE_ICMP_ECHO6 4 /* ICMPv6 echo: up = echo reply, unreachable = dest. unreach. */
#define PYSCAN_PROBE_UDP6 5       /* UDP over IPv6: open = UDP reply, closed = port unreachable */
#define PYSCAN_PROBE_COUNT 6

#define PYSCAN_PROBE_BIT(id) (1u << (id))

#endif /* PYSCAN_PROBE_IDS_H */
