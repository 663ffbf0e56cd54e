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

/* Point to point on the world communicator, for `sample` and `sample-peaks`
 * gathering compressed blocks on rank 0 (DESIGN §10 "As built"): a blocking send
 * of bytes[0, n) to rank `to`, and the next message from rank `from` into *buf
 * (malloc'd; the caller frees), its size probed first. Under 2 GiB a message. */
bf_status bf_dist_send(const void *bytes, size_t n, int to, bf_error *err);
bf_status bf_dist_recv(int from, void **buf, size_t *n, bf_error *err);

/* MPI_Finalize when bf_dist_init initialised MPI. */
void bf_dist_finalize(void);

#ifdef __cplusplus
}
#endif
#endif
