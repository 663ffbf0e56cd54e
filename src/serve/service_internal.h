/* serve/service_internal.h — what the service's files share, exported to tests. */
#ifndef BF_SERVICE_INTERNAL_H
#define BF_SERVICE_INTERNAL_H

#include "braggflow/serve.h"

/* A loaded, validated model as the service runs it: one copy per worker (a model's
 * activations are its own), the task's way to read outputs, and its identity. Shared
 * by reference count: a batch holds a reference for as long as it runs, so a swap
 * never pulls a model from under a running batch. */
typedef struct {
    const char *task;            /* "peaks" or "structure" */
    int wire_model;              /* BF_WIRE_MODEL_* */
    int ndims;
    uint32_t dims[3];            /* one item: (S, S) or (L) */
    size_t item_values;
    uint32_t values;             /* float32 results per item */
    uint8_t hash[32];            /* SHA-256 of the file's bytes */
    char hash_hex[65];
    char path[1024];
    char loaded_at[32];          /* UTC, ISO 8601 */
    double load_ms;
    bf_structure_meta meta;      /* structure: label scaling and classes */
    int n_copies;
    bf_model **copies;
    float **scratch;             /* per copy: raw model outputs of one batch */
    int scratch_items;
    int refs;                    /* guarded by the server's model lock */
} bf_served;

/* Loads path (a checkpoint of a served task), makes `copies` worker copies with
 * activations for max_batch items and validates it: a probe batch must give finite
 * outputs. The file is hashed before and after loading; a change in between is an
 * error ("changed while loading"). */
bf_status bf_served_load(const char *path, int copies, int max_batch, bf_served **out,
                         bf_error *err);
/* Raw inputs x (n, item_values; scaled in place per item) -> results (n, values) with
 * copy `copy`; n <= max_batch. */
bf_status bf_served_predict(bf_served *sv, int copy, float *x, long n, float *results,
                            bf_error *err);
void bf_served_free(bf_served *sv);
/* "braggnn 11x11" for messages. */
void bf_served_describe(const bf_served *sv, char *out, size_t outsz);

/* Before zctx's first socket: its I/O thread will run on core `core`'s CPUs (hwloc
 * index). who names the command in messages ("serve"). */
bf_status bf_zmq_io_on_core(void *zctx, int core, const char *who, bf_error *err);

#endif
