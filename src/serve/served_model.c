/* serve/served_model.c — a checkpoint as the service runs it: loaded once per worker,
 * validated before anyone can see it, and read out in the task's units. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/service_internal.h"

void bf_served_free(bf_served *sv)
{
    if (!sv)
        return;
    for (int i = 0; i < sv->n_copies; i++) {
        bf_model_destroy(sv->copies[i]);
        free(sv->scratch[i]);
    }
    free(sv->copies);
    free(sv->scratch);
    free(sv);
}

void bf_served_describe(const bf_served *sv, char *out, size_t outsz)
{
    if (sv->ndims == 2)
        snprintf(out, outsz, "%s %ux%u", bf_wire_model_name(sv->wire_model), sv->dims[0],
                 sv->dims[1]);
    else
        snprintf(out, outsz, "%s %u", bf_wire_model_name(sv->wire_model), sv->dims[0]);
}

/* The task's view of a freshly loaded model: item shape and result width. */
static bf_status describe_task(bf_served *sv, const bf_model *m, const bf_checkpoint_info *info,
                               bf_error *err)
{
    sv->task = bf_task_of_model(m->kind->name);
    sv->wire_model = bf_wire_model_code(m->kind->name);
    if (!sv->task || !sv->wire_model)
        return bf_error_set(err, BF_ERR_UNSUPPORTED, "%s: model '%s' cannot be served",
                            sv->path, m->kind->name);
    if (!strcmp(sv->task, "peaks")) {
        int S = bf_model_dim(m->kind, &m->shape, "patch");
        sv->ndims = 2;
        sv->dims[0] = sv->dims[1] = (uint32_t)S;
        sv->values = 2;   /* row_px, col_px */
        return BF_OK;
    }
    bf_status st = bf_structure_meta_read(info, m, sv->path, &sv->meta, err);
    if (st != BF_OK)
        return st;
    sv->ndims = 1;
    sv->dims[0] = (uint32_t)m->input_len;
    sv->values = (uint32_t)sv->meta.n_classes + 2 * BF_N_TARGETS;   /* p, value, sigma */
    return BF_OK;
}

static bf_status load_copies(bf_served *sv, int copies, int max_batch, bf_error *err)
{
    bf_checkpoint_info info;
    bf_model *m = NULL;
    bf_status st = bf_checkpoint_load(sv->path, bf_backend_cpu(), &m, &info, NULL, NULL, err);
    if (st != BF_OK)
        return st;
    sv->copies = calloc((size_t)copies, sizeof *sv->copies);
    sv->scratch = calloc((size_t)copies, sizeof *sv->scratch);
    if (!sv->copies || !sv->scratch) {
        bf_model_destroy(m);
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    }
    sv->copies[0] = m;
    sv->n_copies = 1;
    st = describe_task(sv, m, &info, err);
    /* The other copies share the loaded values, not the file: a copy is the same model. */
    for (int i = 1; st == BF_OK && i < copies; i++) {
        bf_model *c = NULL;
        st = bf_model_create(m->kind->name, &m->shape, bf_backend_cpu(), 0, &c, err);
        if (st == BF_OK) {
            sv->copies[sv->n_copies++] = c;
            memcpy(c->params.value, m->params.value, sizeof(float) * m->params.total);
            st = bf_model_params_upload(c, err);
        }
    }
    sv->item_values = 1;
    for (int k = 0; k < sv->ndims; k++)
        sv->item_values *= sv->dims[k];
    sv->scratch_items = max_batch;
    for (int i = 0; st == BF_OK && i < sv->n_copies; i++) {
        st = bf_model_reserve(sv->copies[i], max_batch, err);
        sv->copies[i]->inference = 1;
        sv->scratch[i] = malloc(sizeof(float) * (size_t)max_batch * (size_t)m->n_out);
        if (st == BF_OK && !sv->scratch[i])
            st = bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    }
    return st;
}

/* A probe batch through every copy: a model that loads but cannot compute (or computes
 * NaN) is refused here, before it is swapped in. On one thread: a compute team started
 * here (the main thread at start, the watcher at a swap) would outlive the probe, and
 * while libgomp manages more threads than there are cores it shortens every team's
 * spin-wait, the workers' too (docs/serve.md §Throughput). */
static bf_status validate(bf_served *sv, bf_error *err)
{
    const int n = sv->scratch_items < 4 ? sv->scratch_items : 4;
    float *x = malloc(sizeof(float) * (size_t)n * sv->item_values);
    float *r = malloc(sizeof(float) * (size_t)n * sv->values);
    bf_status st = x && r ? BF_OK : bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    const bf_backend *be = sv->copies[0]->be;
    int threads_before = be->workers ? be->workers() : 0;
    be->set_threads(1);
    for (int c = 0; st == BF_OK && c < sv->n_copies; c++) {
        for (size_t i = 0; i < (size_t)n * sv->item_values; i++)
            x[i] = (float)((i * 2654435761u) % 1000u);   /* fixed, varied counts */
        st = bf_served_predict(sv, c, x, n, r, err);
        for (long i = 0; st == BF_OK && i < (long)n * sv->values; i++)
            if (!isfinite(r[i]))
                st = bf_error_set(err, BF_ERR_INVALID,
                                  "%s: the model computes non-finite outputs on a probe batch",
                                  sv->path);
    }
    be->set_threads(threads_before);
    free(x);
    free(r);
    return st;
}

bf_status bf_served_load(const char *path, int copies, int max_batch, bf_served **out,
                         bf_error *err)
{
    *out = NULL;
    double t0 = bf_now_seconds();
    bf_served *sv = calloc(1, sizeof *sv);
    if (!sv)
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    snprintf(sv->path, sizeof sv->path, "%s", path);
    uint8_t after[32];
    bf_status st = bf_sha256_file(path, sv->hash, err);
    if (st == BF_OK)
        st = load_copies(sv, copies < 1 ? 1 : copies, max_batch, err);
    if (st == BF_OK)
        st = bf_sha256_file(path, after, err);
    if (st == BF_OK && memcmp(after, sv->hash, sizeof after))
        st = bf_error_set(err, BF_ERR_IO, "%s: the file changed while it was loading", path);
    if (st == BF_OK)
        st = validate(sv, err);
    if (st != BF_OK) {
        bf_served_free(sv);
        return st;
    }
    bf_sha256_digest_hex(sv->hash, sv->hash_hex);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(sv->loaded_at, sizeof sv->loaded_at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    sv->load_ms = 1e3 * (bf_now_seconds() - t0);
    *out = sv;
    return BF_OK;
}

bf_status bf_served_predict(bf_served *sv, int copy, float *x, long n, float *results,
                            bf_error *err)
{
    if (copy < 0 || copy >= sv->n_copies || n > sv->scratch_items)
        return bf_error_set(err, BF_ERR_RANGE, "batch of %ld items on copy %d (have %d, max %d)",
                            n, copy, sv->n_copies, sv->scratch_items);
    bf_model *m = sv->copies[copy];
    float *out = sv->scratch[copy];
    bf_minmax_scale_rows(x, n, (int)sv->item_values);
    bf_status st = bf_model_predict(m, x, n, (int)n, out, err);
    if (st != BF_OK)
        return st;
    if (!strcmp(sv->task, "peaks")) {
        int S = (int)sv->dims[0];
        for (long i = 0; i < n; i++) {
            double c[2];
            bf_peaks_centres(out + 2 * i, 1, S, c);
            results[2 * i] = (float)c[0];
            results[2 * i + 1] = (float)c[1];
        }
        return BF_OK;
    }
    int C = sv->meta.n_classes;
    for (long i = 0; i < n; i++) {
        double p[BF_MAX_MODEL_CLASSES], value[BF_N_TARGETS], sigma[BF_N_TARGETS];
        float *r = results + (size_t)i * sv->values;
        bf_structure_decode(&sv->meta, out + (size_t)i * m->n_out, p, value, sigma);
        for (int c = 0; c < C; c++)
            r[c] = (float)p[c];
        for (int k = 0; k < BF_N_TARGETS; k++) {
            r[C + k] = (float)value[k];
            r[C + BF_N_TARGETS + k] = (float)sigma[k];
        }
    }
    return BF_OK;
}
