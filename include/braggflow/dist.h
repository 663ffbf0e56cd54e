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

/* Point-to-point messages for task farms (the sweep's: rank 0 hands out trials, the
 * other ranks report results). Blocking; bytes of any length up to 2 GiB; tag >= 0 is
 * the caller's message kind. Errors (MPI not initialised, a failed transfer) return.
 * The receive polls every millisecond rather than spinning (Open MPI's MPI_Probe
 * does), so a waiting rank leaves its core to the ranks that train. */
bf_status bf_dist_send(int dest, int tag, const void *buf, size_t bytes, bf_error *err);
/* Waits for the next message from any rank: its sender, tag and bytes in *buf (heap,
 * the caller frees; NULL for an empty message). */
bf_status bf_dist_recv_any(int *src, int *tag, void **buf, size_t *bytes, bf_error *err);

/* MPI_Finalize when bf_dist_init initialised MPI. */
void bf_dist_finalize(void);

#ifdef __cplusplus
}
#endif
#endif
