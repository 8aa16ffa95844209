/* SPDX-License-Identifier: GPL-2.0-only
 *
 * drv_pfring_zc.h - the PF_RING ZC driver: libpfring.so loaded with dlopen at run time (never
 * linked, no pfring headers needed), one ZC cluster per scan shared by every queue, one
 * tx_only device queue per TX ring and one RX ring reading every rx_only queue.
 *
 * Invariant: the cluster lives as long as its last user; every ring holds a reference and
 * Python holds one until pyscan_pfring_zc__release(), so rings and the cluster can be torn
 * down in any order and the library is unloaded only after the cluster is destroyed.
 */
#ifndef PYSCAN_DRV_PFRING_ZC_H
#define PYSCAN_DRV_PFRING_ZC_H

#include <stdint.h>

#include "ring.h"

/* Buffer handles a TX ring owns: at least the engine's largest batch, because the engine
 * reserves a whole batch before it submits. */
#define PYSCAN_PFRING_ZC_TX_HANDLES 1024
/* Buffer handles the RX ring owns (one receive burst). */
#define PYSCAN_PFRING_ZC_RX_HANDLES 64
/* Most RX queues one RX ring reads (one per RSS queue of the NIC). */
#define PYSCAN_PFRING_ZC_MAX_RX_QUEUES 64

typedef struct pyscan_pfring_zc_cluster pyscan_pfring_zc_cluster;

/* What loading a library found out, for `pyscan drivers` and for sizing hugepages. */
struct pyscan_pfring_zc_probe {
	char loaded_from[256]; /* the file the dynamic loader actually mapped */
	char version[64];      /* pfring_zc_version() */
	char missing[64];      /* first required symbol not exported, when the load failed */
	char error[256];       /* dlerror() text, when the load failed */
	uint64_t total_memory; /* pfring_zc_precompute_cluster_settings(); 0 when not exported */
	uint32_t real_buffer_len;
	uint32_t reserved;
};

/* pfring_zc_stats() summed over the queues of one ring. */
struct pyscan_pfring_zc_stats {
	uint64_t recv;
	uint64_t sent;
	uint64_t drop;
	uint32_t queues;
	uint32_t reserved;
};

_Static_assert(sizeof(struct pyscan_pfring_zc_probe) == 656, "pyscan_pfring_zc_probe layout");
_Static_assert(sizeof(struct pyscan_pfring_zc_stats) == 32, "pyscan_pfring_zc_stats layout");

/* 0 when library loads and exports every required pfring_zc_* symbol; -1 when dlopen fails
 * (out->error), -2 when a required symbol is missing (out->missing). Unloads it again. */
int pyscan_pfring_zc__probe(const char *library, uint32_t buffer_len, uint32_t num_buffers,
			    struct pyscan_pfring_zc_probe *out);

/* Load library and create a cluster (hugepage memory on real PF_RING) on numa_node, the
 * NIC's node. NULL + errno + a message in err on failure. */
pyscan_pfring_zc_cluster *pyscan_pfring_zc__create(const char *library, uint32_t cluster_id,
						  uint32_t buffer_len, uint32_t num_buffers,
						  int32_t numa_node, const char *hugepages_mount, char *err,
						  uint32_t err_len);

/* A TX ring on one tx_only device queue ("zc:eth1" or "zc:eth1@2"). */
pyscan_ring *pyscan_pfring_zc__open_tx(pyscan_pfring_zc_cluster *cluster, const char *device,
				       char *err, uint32_t err_len);

/* One RX ring reading the rx_only queues devices[0..n) in turn. */
pyscan_ring *pyscan_pfring_zc__open_rx(pyscan_pfring_zc_cluster *cluster,
				       const char *const *devices, uint32_t n, char *err,
				       uint32_t err_len);

/* 1 = licensed, 0 = demo mode (traffic stops after 5 minutes), -1 = cannot tell. Checks the
 * library-wide state and, when ring is one of ours, the licence of its first device. */
int pyscan_pfring_zc__licence(pyscan_pfring_zc_cluster *cluster, pyscan_ring *ring,
			      uint32_t *expiration_epoch);

/* pfring_zc_stats() of a ring of this driver (zeros for any other ring). */
void pyscan_pfring_zc__queue_stats(pyscan_ring *ring, struct pyscan_pfring_zc_stats *out);

/* The library version string of a loaded cluster. */
const char *pyscan_pfring_zc__version(pyscan_pfring_zc_cluster *cluster);

/* Drop the caller's reference; the last reference destroys the cluster and unloads. */
void pyscan_pfring_zc__release(pyscan_pfring_zc_cluster *cluster);

#endif /* PYSCAN_DRV_PFRING_ZC_H */
