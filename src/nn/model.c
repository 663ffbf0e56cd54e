/* nn/model.c — the model registry and the parts every model shares: creation
 * (parameters registered by the kind, initialised on the host as PyTorch does and
 * uploaded to the backend), activation reservation, host <-> backend parameter
 * syncs, batched prediction, destruction. */
#include "nn/nn_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const bf_model_kind bf_structure_net_kind;
extern const bf_model_kind bf_braggnn_kind;

static const bf_model_kind *const kinds[] = {&bf_structure_net_kind, &bf_braggnn_kind};

int bf_model_kind_count(void) { return (int)(sizeof kinds / sizeof kinds[0]); }

const bf_model_kind *bf_model_kind_at(int i)
{
    return i >= 0 && i < bf_model_kind_count() ? kinds[i] : NULL;
}

const bf_model_kind *bf_model_kind_find(const char *name)
{
    for (int i = 0; name && i < bf_model_kind_count(); i++)
        if (!strcmp(kinds[i]->name, name))
            return kinds[i];
    return NULL;
}

const char *bf_model_kind_list(void)
{
    static char list[256];
    if (!list[0])
        for (int i = 0; i < bf_model_kind_count(); i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     kinds[i]->name);
    return list;
}

int bf_model_dim(const bf_model_kind *kind, const bf_model_shape *shape, const char *name)
{
    for (int d = 0; d < kind->n_dims; d++)
        if (!strcmp(kind->dim_names[d], name))
            return shape->dim[d];
    return -1;
}

bf_status bf_model_dim_set(const bf_model_kind *kind, bf_model_shape *shape, const char *name,
                           int value, bf_error *err)
{
    for (int d = 0; d < kind->n_dims; d++)
        if (!strcmp(kind->dim_names[d], name)) {
            shape->dim[d] = value;
            return BF_OK;
        }
    return bf_error_set(err, BF_ERR_INVALID, "model '%s' has no size '%s'", kind->name, name);
}

void bf_model_shape_format(const bf_model_kind *kind, const bf_model_shape *shape, char *out,
                           size_t outsz)
{
    out[0] = 0;
    for (int d = 0; d < kind->n_dims; d++)
        snprintf(out + strlen(out), outsz - strlen(out), "%s%s=%d", d ? " " : "",
                 kind->dim_names[d], shape->dim[d]);
}

bf_status bf_model_create(const char *kind_name, const bf_model_shape *shape,
                          const bf_backend *be, uint64_t seed, bf_model **out, bf_error *err)
{
    *out = NULL;
    const bf_model_kind *kind = bf_model_kind_find(kind_name);
    if (!kind)
        return bf_error_set(err, BF_ERR_INVALID, "model '%s': unknown (known: %s)", kind_name,
                            bf_model_kind_list());
    bf_model *m = calloc(1, sizeof *m);
    if (!m)
        return bf_error_set(err, BF_ERR_NOMEM, "model '%s': out of memory", kind_name);
    m->kind = kind;
    m->be = be ? be : bf_backend_cpu();
    m->shape = shape ? *shape : kind->default_shape;
    bf_status st = kind->create(m, err);
    if (st == BF_OK)
        st = bf_params_alloc(&m->params, err);
    size_t nbytes = sizeof(float) * m->params.total;
    if (st == BF_OK)
        st = m->be->alloc(nbytes, (void **)&m->w, err);
    if (st == BF_OK)
        st = m->be->alloc(nbytes, (void **)&m->g, err);
    if (st == BF_OK) {
        bf_params_init(&m->params, seed);
        st = bf_model_params_upload(m, err);
    }
    if (st != BF_OK) {
        bf_error_prefix(err, "model '%s'", kind_name);
        bf_model_destroy(m);
        return st;
    }
    *out = m;
    return BF_OK;
}

void bf_model_grads_final(bf_model *m, int param_index)
{
    if (m->grads_final)
        m->grads_final(m, param_index < m->params.n ? m->params.info[param_index].offset
                                                         : m->params.total, m->grads_user);
}

bf_status bf_model_reserve(bf_model *m, int B, bf_error *err)
{
    if (B <= m->batch_capacity)
        return BF_OK;
    if (B <= 0)
        return bf_error_set(err, BF_ERR_INVALID, "batch size %d: must be positive", B);
    m->be->free(m->out);
    m->out = NULL;
    m->batch_capacity = 0;
    bf_status st = m->be->alloc(sizeof(float) * (size_t)B * m->n_out, (void **)&m->out, err);
    if (st == BF_OK)
        st = m->kind->reserve(m, B, err);
    if (st != BF_OK) {
        bf_error_prefix(err, "%s: activations for batch %d", m->kind->name, B);
        return st;
    }
    m->batch_capacity = B;
    return BF_OK;
}

bf_status bf_model_params_download(bf_model *m, int grads, bf_error *err)
{
    size_t nbytes = sizeof(float) * m->params.total;
    bf_status st = m->be->download(m->params.value, m->w, nbytes, err);
    if (st == BF_OK && grads)
        st = m->be->download(m->params.grad, m->g, nbytes, err);
    return st;
}

bf_status bf_model_params_upload(bf_model *m, bf_error *err)
{
    return m->be->upload(m->w, m->params.value, sizeof(float) * m->params.total, err);
}

bf_status bf_model_zero_grad(bf_model *m, bf_error *err)
{
    return m->be->zero(m->g, sizeof(float) * m->params.total, err);
}

/* A model of m's kind and shape computing with m's weights (borrowed) and its own
 * activations for cap samples: one worker of parallel inference. */
static bf_status worker_create(const bf_model *m, int cap, bf_model **out, bf_error *err)
{
    bf_model *r = calloc(1, sizeof *r);
    if (!r)
        return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory for a worker", m->kind->name);
    r->kind = m->kind, r->be = m->be, r->shape = m->shape, r->inference = 1;
    bf_status st = r->kind->create(r, err); /* the layout only: no host values */
    r->w = m->w;
    if (st == BF_OK)
        st = bf_model_reserve(r, cap, err);
    if (st != BF_OK) {
        r->w = NULL;
        bf_model_destroy(r);
        return st;
    }
    *out = r;
    return BF_OK;
}

static void workers_destroy(bf_model *m)
{
    for (int i = 0; i < m->n_workers; i++)
        if (m->workers[i]) {
            m->workers[i]->w = NULL; /* m's */
            bf_model_destroy(m->workers[i]);
        }
    free(m->workers);
    m->workers = NULL;
    m->n_workers = 0;
}

/* m->workers: n models with activations for chunk samples each (kept between calls). */
static bf_status workers_reserve(bf_model *m, int n, int chunk, bf_error *err)
{
    if (m->n_workers < n) {
        workers_destroy(m);
        m->workers = calloc((size_t)n, sizeof *m->workers);
        if (!m->workers)
            return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory for workers",
                                m->kind->name);
        m->n_workers = n;
    }
    for (int i = 0; i < n; i++) {
        bf_status st = m->workers[i] ? bf_model_reserve(m->workers[i], chunk, err)
                                     : worker_create(m, chunk, &m->workers[i], err);
        if (st != BF_OK)
            return st;
    }
    return BF_OK;
}

typedef struct {
    bf_model *m;
    const float *x; /* backend: the uploaded batch */
    float *out;     /* host: its outputs */
    int B, chunk;
} predict_tasks;

/* Chunk i of the uploaded batch through worker `worker`'s model, outputs to the host. */
static bf_status predict_chunk(void *ctx, int i, int worker, bf_error *err)
{
    predict_tasks *t = ctx;
    bf_model *r = t->m->workers[worker];
    int j = i * t->chunk, b = t->B - j < t->chunk ? t->B - j : t->chunk;
    bf_status st = r->kind->forward(r, t->x + (size_t)j * r->input_len, b, err);
    if (st == BF_OK)
        st = r->be->download(t->out + (size_t)j * r->n_out, r->out,
                             sizeof(float) * (size_t)b * r->n_out, err);
    return st;
}

bf_status bf_model_predict(bf_model *m, const float *x, long n, int batch, float *out,
                           bf_error *err)
{
    if (batch < 1)
        return bf_error_set(err, BF_ERR_INVALID, "batch size %d: must be positive", batch);
    int cap = (int)(n < batch ? (n > 0 ? n : 1) : batch);
    const bf_backend *be = m->be;
    /* forward's batch: the backend's chunk where the model allows it; with workers,
     * at most an even share of the batch, so that every worker has one */
    int chunk = cap, workers = 1;
    if (m->kind->chunked_inference && be->infer_chunk > 0) {
        workers = be->workers && be->run_tasks ? be->workers() : 1;
        int share = workers > 1 ? (cap + workers - 1) / workers : cap;
        chunk = be->infer_chunk < share ? be->infer_chunk : share;
    }
    int parallel = workers > 1 && chunk < cap;
    bf_status st = parallel ? workers_reserve(m, workers, chunk, err)
                            : bf_model_reserve(m, cap, err);
    float *bx = NULL;
    size_t row = sizeof(float) * (size_t)m->input_len;
    if (st == BF_OK)
        st = be->alloc(row * (size_t)cap, (void **)&bx, err);
    int was = m->inference;
    m->inference = 1;
    for (long i = 0; st == BF_OK && i < n; i += cap) {
        int B = (int)(n - i < cap ? n - i : cap);
        st = be->upload(bx, x + (size_t)i * m->input_len, row * (size_t)B, err);
        if (st == BF_OK && parallel) {
            predict_tasks t = {m, bx, out + (size_t)i * m->n_out, B, chunk};
            st = be->run_tasks((B + chunk - 1) / chunk, predict_chunk, &t, err);
            continue;
        }
        for (int j = 0; st == BF_OK && j < B; j += chunk) {
            int b = B - j < chunk ? B - j : chunk;
            st = m->kind->forward(m, bx + (size_t)j * m->input_len, b, err);
            if (st == BF_OK)
                st = be->download(out + (size_t)(i + j) * m->n_out, m->out,
                                  sizeof(float) * (size_t)b * m->n_out, err);
        }
    }
    m->inference = was;
    be->free(bx);
    return st;
}

void bf_model_destroy(bf_model *m)
{
    if (!m)
        return;
    workers_destroy(m);
    if (m->kind && m->kind->destroy)
        m->kind->destroy(m);
    if (m->be) {
        m->be->free(m->w);
        m->be->free(m->g);
        m->be->free(m->out);
    }
    bf_params_free(&m->params);
    free(m);
}

void bf_model_free_buffers(bf_model *m, void **const *bufs, int n)
{
    for (int i = 0; i < n; i++) {
        m->be->free(*bufs[i]);
        *bufs[i] = NULL;
    }
}

bf_status bf_model_alloc_buffers(bf_model *m, void **const *bufs, const size_t *sizes, int n,
                                 bf_error *err)
{
    for (int i = 0; i < n; i++) {
        bf_status st = m->be->alloc(sizes[i], bufs[i], err);
        if (st != BF_OK) {
            bf_model_free_buffers(m, bufs, i);
            return st;
        }
    }
    return BF_OK;
}

bf_status bf_model_check_batch(const bf_model *m, int B, bf_error *err)
{
    if (B < 1 || B > m->batch_capacity)
        return bf_error_set(err, BF_ERR_RANGE, "%s: batch of %d but activations reserved for %d",
                            m->kind->name, B, m->batch_capacity);
    return BF_OK;
}
