/* braggflow/dist.h — beyond one machine: the MPI implementation of the engine's
 * communicator (bf_comm, nn.h) for data-parallel training (DESIGN §10). The nn engine
 * never includes MPI; only this layer and the CLI's start-up do. */
#ifndef BRAGGFLOW_DIST_H
#define BRAGGFLOW_DIST_H

#include "braggflow/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when an MPI launcher started this process (OMPI_COMM_WORLD_SIZE, PMIX_RANK or
 * PMI_SIZE in the environment). A plain run never initialises MPI: singleton
 * initialisation is slow and may want a daemon. */
int bf_dist_launched(void);

/* MPI_Init_thread (funneled: OpenMP threads never call MPI) when launched, else
 * nothing. Idempotent. */
bf_status bf_dist_init(int *argc, char ***argv, bf_error *err);

/* The world communicator, or NULL when MPI was not initialised (one process). */
const bf_comm *bf_dist_world(void);

/* Collective over the world: this rank's group of the ranks passing the same color,
 * ranked in world order, as a communicator of its own (a campaign's training ranks,
 * DESIGN §10). Free it with bf_dist_comm_free (before bf_dist_finalize). */
bf_status bf_dist_split(int color, bf_comm **out, bf_error *err);
void bf_dist_comm_free(bf_comm *c);

/* Collective over the world: the sum of `count` over the lower world ranks on this
 * rank's node (0 for the node's first rank; 0 without MPI): where this rank's cores
 * start when each rank takes `count` of them, so roles bind to cores of their own. */
bf_status bf_dist_node_offset(int count, int *offset, bf_error *err);

/* Point-to-point messages on the world communicator: the sweep's task farm (rank 0
 * hands out trials, the other ranks report results) and `sample` / `sample-peaks`
 * gathering compressed blocks on rank 0 (DESIGN §10 "As built"). Blocking; bytes of
 * any length under 2 GiB; tag >= 0 is the caller's message kind. Errors (MPI not
 * initialised, a failed transfer) return. */
#define BF_DIST_ANY (-1)
bf_status bf_dist_send(int dest, int tag, const void *buf, size_t bytes, bf_error *err);
/* Waits for the next message from rank `from` with tag `tag` (either BF_DIST_ANY): its
 * sender and tag (each may be NULL) and bytes in *buf (heap, the caller frees; NULL for
 * an empty message). Polls every millisecond rather than spinning (Open MPI's
 * MPI_Probe does), so a waiting rank leaves its core to the ranks that compute. */
bf_status bf_dist_recv(int from, int tag, int *src, int *tag_out, void **buf, size_t *bytes,
                       bf_error *err);

/* MPI_Finalize when bf_dist_init initialised MPI. */
void bf_dist_finalize(void);

#ifdef __cplusplus
}
#endif
#endif
