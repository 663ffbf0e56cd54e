/* dist/mpi_comm.c — bf_comm over MPI_COMM_WORLD (and groups of it) (DESIGN §10): non-blocking float sums
 * for the gradient buckets and validation outputs, blocking double sums for losses and
 * status flags, a broadcast for the failing rank's error. MPI errors return (not abort)
 * so they reach the caller as a bf_error. */
#include "braggflow/dist.h"

#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define MAX_REQ 128 /* outstanding reductions: the trainer's buckets plus one */

typedef struct {
    MPI_Comm comm;                    /* MPI_COMM_WORLD, or a group of bf_dist_split */
    MPI_Request req[MAX_REQ];
    int used[MAX_REQ];
} mpi_impl;

static mpi_impl g_impl;
static bf_comm g_world;
static int g_inited;

static bf_status mpi_fail(int rc, const char *what, bf_error *err)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return bf_error_set(err, BF_ERR_IO, "MPI %s: %.*s", what, len, msg);
}

static bf_status iallreduce_sum_f32(const bf_comm *c, float *buf, size_t n, int *req,
                                    bf_error *err)
{
    mpi_impl *im = c->impl;
    int slot = 0;
    while (slot < MAX_REQ && im->used[slot])
        slot++;
    if (slot == MAX_REQ)
        return bf_error_set(err, BF_ERR_INVALID, "MPI: more than %d reductions in flight",
                            MAX_REQ);
    if (n > INT32_MAX)
        return bf_error_set(err, BF_ERR_INVALID, "MPI: a reduction of %zu floats is too large",
                            n);
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, im->comm,
                            &im->req[slot]);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "Iallreduce", err);
    im->used[slot] = 1;
    *req = slot;
    /* Open MPI progresses non-blocking collectives only inside MPI calls: nudge the
     * ones already in flight each time backward hands over a bucket. */
    for (int i = 0; i < MAX_REQ; i++)
        if (im->used[i] && i != slot) {
            int done = 0;
            MPI_Test(&im->req[i], &done, MPI_STATUS_IGNORE);
            if (done)
                im->used[i] = 2; /* finished; wait() only releases the slot */
        }
    return BF_OK;
}

static bf_status wait_req(const bf_comm *c, int req, bf_error *err)
{
    mpi_impl *im = c->impl;
    if (req < 0 || req >= MAX_REQ || !im->used[req])
        return bf_error_set(err, BF_ERR_INVALID, "MPI: no reduction %d in flight", req);
    int rc = im->used[req] == 2 ? MPI_SUCCESS : MPI_Wait(&im->req[req], MPI_STATUS_IGNORE);
    im->used[req] = 0;
    return rc == MPI_SUCCESS ? BF_OK : mpi_fail(rc, "Wait", err);
}

static bf_status allreduce_sum_f64(const bf_comm *c, double *buf, int n, bf_error *err)
{
    mpi_impl *im = c->impl;
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, MPI_SUM, im->comm);
    return rc == MPI_SUCCESS ? BF_OK : mpi_fail(rc, "Allreduce", err);
}

static bf_status bcast(const bf_comm *c, void *buf, size_t bytes, int root, bf_error *err)
{
    if (bytes > INT32_MAX)
        return bf_error_set(err, BF_ERR_INVALID, "MPI: a broadcast of %zu bytes is too large",
                            bytes);
    mpi_impl *im = c->impl;
    int rc = MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, im->comm);
    return rc == MPI_SUCCESS ? BF_OK : mpi_fail(rc, "Bcast", err);
}

/* c's functions over im's communicator. */
static void comm_over(bf_comm *c, mpi_impl *im)
{
    *c = (bf_comm){.impl = im, .iallreduce_sum_f32 = iallreduce_sum_f32, .wait = wait_req,
                   .allreduce_sum_f64 = allreduce_sum_f64, .bcast = bcast};
    MPI_Comm_rank(im->comm, &c->rank);
    MPI_Comm_size(im->comm, &c->size);
}

int bf_dist_launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE");
}

bf_status bf_dist_init(int *argc, char ***argv, bf_error *err)
{
    if (g_inited || !bf_dist_launched())
        return BF_OK;
    int provided = 0;
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS)
        return bf_error_set(err, BF_ERR_IO, "MPI_Init_thread failed (code %d)", rc);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    g_impl.comm = MPI_COMM_WORLD;
    comm_over(&g_world, &g_impl);
    g_inited = 1;
    return BF_OK;
}

bf_status bf_dist_split(int color, bf_comm **out, bf_error *err)
{
    *out = NULL;
    if (!g_inited)
        return bf_error_set(err, BF_ERR_INVALID, "MPI: split without MPI (not under mpirun)");
    bf_comm *c = calloc(1, sizeof *c);
    mpi_impl *im = calloc(1, sizeof *im);
    if (!c || !im) {
        free(c);
        free(im);
        return bf_error_set(err, BF_ERR_NOMEM, "MPI: out of memory for a communicator");
    }
    int rc = MPI_Comm_split(MPI_COMM_WORLD, color, g_world.rank, &im->comm);
    if (rc != MPI_SUCCESS) {
        free(c);
        free(im);
        return mpi_fail(rc, "Comm_split", err);
    }
    MPI_Comm_set_errhandler(im->comm, MPI_ERRORS_RETURN);
    comm_over(c, im);
    *out = c;
    return BF_OK;
}

void bf_dist_comm_free(bf_comm *c)
{
    if (!c)
        return;
    mpi_impl *im = c->impl;
    if (g_inited && im && im->comm != MPI_COMM_WORLD)
        MPI_Comm_free(&im->comm);
    free(im);
    free(c);
}

bf_status bf_dist_node_offset(int count, int *offset, bf_error *err)
{
    *offset = 0;
    if (!g_inited)
        return BF_OK;
    MPI_Comm node;
    int rc = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_world.rank,
                                 MPI_INFO_NULL, &node);
    if (rc != MPI_SUCCESS)
        return mpi_fail(rc, "Comm_split_type", err);
    int node_rank = 0;
    MPI_Comm_rank(node, &node_rank);
    rc = MPI_Exscan(&count, offset, 1, MPI_INT, MPI_SUM, node);
    if (node_rank == 0)
        *offset = 0; /* MPI_Exscan leaves the first rank's result undefined */
    MPI_Comm_free(&node);
    return rc == MPI_SUCCESS ? BF_OK : mpi_fail(rc, "Exscan", err);
}

const bf_comm *bf_dist_world(void)
{
    return g_inited ? &g_world : NULL;
}

bf_status bf_dist_send(int dest, int tag, const void *buf, size_t bytes, bf_error *err)
{
    if (!g_inited)
        return bf_error_set(err, BF_ERR_INVALID, "MPI: send without MPI (not under mpirun)");
    if (bytes > INT32_MAX)
        return bf_error_set(err, BF_ERR_INVALID, "MPI: a message of %zu bytes is too large",
                            bytes);
    int rc = MPI_Send(buf, (int)bytes, MPI_BYTE, dest, tag, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? BF_OK : mpi_fail(rc, "Send", err);
}

bf_status bf_dist_recv(int from, int want_tag, int *src, int *tag, void **buf, size_t *bytes,
                       bf_error *err)
{
    *buf = NULL;
    *bytes = 0;
    if (!g_inited)
        return bf_error_set(err, BF_ERR_INVALID, "MPI: receive without MPI (not under mpirun)");
    MPI_Status ms;
    /* MPI_Probe busy-waits (Open MPI): a farm's rank 0 would take a core from the
     * trials for the whole sweep. Poll every millisecond instead. */
    for (;;) {
        int flag = 0;
        int rc = MPI_Iprobe(from == BF_DIST_ANY ? MPI_ANY_SOURCE : from,
                            want_tag == BF_DIST_ANY ? MPI_ANY_TAG : want_tag, MPI_COMM_WORLD,
                            &flag, &ms);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "Iprobe", err);
        if (flag)
            break;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    int rc;
    int n = 0;
    MPI_Get_count(&ms, MPI_BYTE, &n);
    void *b = n > 0 ? malloc((size_t)n) : NULL;
    if (n > 0 && !b)
        return bf_error_set(err, BF_ERR_NOMEM, "MPI: %d bytes for a message", n);
    /* from the probed sender with the probed tag: the message just probed */
    rc = MPI_Recv(b, n, MPI_BYTE, ms.MPI_SOURCE, ms.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
        free(b);
        return mpi_fail(rc, "Recv", err);
    }
    if (src)
        *src = ms.MPI_SOURCE;
    if (tag)
        *tag = ms.MPI_TAG;
    *buf = b;
    *bytes = (size_t)n;
    return BF_OK;
}

void bf_dist_finalize(void)
{
    if (g_inited)
        MPI_Finalize();
    g_inited = 0;
}
