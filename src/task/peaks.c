/* task/peaks.c — the peak-finding task (BraggNN, DESIGN §7): patches min-max scaled
 * per patch, the scaled centre (col, row) / S as target (column first, BraggNN's
 * labels), MSE, errors in pixels (mean and percentiles), the optional +-1 pixel
 * crop-shift augmentation, and centres read back as (row, col) patch pixels with
 * pixel k spanning [k, k+1) (docs/peaks.md). */
#include "braggflow/task.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUGMENT_STREAM 0x4155474d00000000ull /* "AUGM" */

/* ---- inputs ----------------------------------------------------------------------- */

static int model_patch(const bf_model *m) { return bf_model_dim(m->kind, &m->shape, "patch"); }

/* The S x S crop of patch i of p whose pixel (0, 0) is p's (r0, c0), into x (raw). */
static void crop(const bf_patches *p, long i, int S, int r0, int c0, float *x)
{
    int P = p->size;
    const float *src = p->patches + (size_t)i * P * P;
    for (int r = 0; r < S; r++)
        memcpy(x + (size_t)r * S, src + (size_t)(r0 + r) * P + c0, sizeof(float) * S);
}

/* Checks the patches against a model of patch size S; margin = (P - S) / 2 must be 0,
 * or 1 where allowed (training crops). */
static bf_status check_patches(const bf_patches *p, int S, int allow_margin, const char *name,
                               int need_centre, bf_error *err)
{
    if (p->n < 1)
        return bf_error_set(err, BF_ERR_INVALID, "%s: holds no patches", name);
    if (p->size != S && !(allow_margin && p->size == S + 2))
        return bf_error_set(err, BF_ERR_INVALID,
                            "%s: patches: %d x %d pixels, the model takes %d x %d%s", name,
                            p->size, p->size, S, S,
                            allow_margin ? " (or a 1-pixel margin around it for training)" : "");
    if (need_centre && !p->centre)
        return bf_error_set(err, BF_ERR_INVALID, "%s: centre: missing (training needs the true "
                            "centres)", name);
    size_t n = (size_t)p->n * p->size * p->size;
    for (size_t k = 0; k < n; k++)
        if (!isfinite(p->patches[k])) {
            size_t i = k / ((size_t)p->size * p->size), px = k % ((size_t)p->size * p->size);
            return bf_error_set(err, BF_ERR_INVALID, "%s: patches: patch %zu pixel (%zu, %zu) is "
                                "%s", name, i, px / p->size, px % p->size,
                                isnan(p->patches[k]) ? "NaN" : "infinite");
        }
    for (long i = 0; need_centre && i < p->n; i++)
        if (!isfinite(p->centre[2 * i]) || !isfinite(p->centre[2 * i + 1]))
            return bf_error_set(err, BF_ERR_INVALID, "%s: centre: patch %ld is not finite", name,
                                i);
    return BF_OK;
}

/* Centre-cropped (margin m), scaled inputs and, when targets != NULL, targets. */
static bf_status centre_inputs(const bf_patches *p, int S, const char *name, float **x_out,
                               float **targets_out, bf_error *err)
{
    int margin = (p->size - S) / 2;
    float *x = malloc(sizeof(float) * (size_t)p->n * S * S);
    float *t = targets_out ? malloc(sizeof(float) * (size_t)p->n * 2) : NULL;
    if (!x || (targets_out && !t)) {
        free(x);
        free(t);
        return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory for %ld patches", name, p->n);
    }
    for (long i = 0; i < p->n; i++) {
        crop(p, i, S, margin, margin, x + (size_t)i * S * S);
        if (t) { /* (x, y) = (col, row) / S, column first (BraggNN's dataset.py) */
            t[2 * i] = (float)((p->centre[2 * i + 1] - margin) / S);
            t[2 * i + 1] = (float)((p->centre[2 * i] - margin) / S);
        }
    }
    bf_minmax_scale_rows(x, p->n, S * S);
    *x_out = x;
    if (targets_out)
        *targets_out = t;
    return BF_OK;
}

bf_status bf_peaks_inputs(const bf_model *m, const bf_patches *p, const char *name, float **x,
                          float **targets, bf_error *err)
{
    int S = model_patch(m);
    if (S < 1)
        return bf_error_set(err, BF_ERR_INVALID, "model '%s' is not a peaks model",
                            m->kind->name);
    bf_status st = check_patches(p, S, 0, name, targets != NULL, err);
    return st == BF_OK ? centre_inputs(p, S, name, x, targets, err) : st;
}

void bf_peaks_centres(const float *out, long n, int S, double *centre_rc)
{
    for (long i = 0; i < n; i++) {
        centre_rc[2 * i] = (double)out[2 * i + 1] * S;     /* row = y S */
        centre_rc[2 * i + 1] = (double)out[2 * i] * S;     /* col = x S */
    }
}

bf_status bf_peaks_predict(bf_model *m, const bf_patches *p, const char *name, int batch,
                           double *centre_rc, bf_error *err)
{
    float *x = NULL, *out = NULL;
    bf_status st = bf_peaks_inputs(m, p, name, &x, NULL, err);
    if (st == BF_OK && !(out = malloc(sizeof(float) * (size_t)p->n * m->n_out)))
        st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", name);
    if (st == BF_OK)
        st = bf_model_predict(m, x, p->n, batch, out, err);
    if (st == BF_OK)
        bf_peaks_centres(out, p->n, model_patch(m), centre_rc);
    free(x);
    free(out);
    return st;
}

/* ---- training -------------------------------------------------------------------- */

typedef struct {
    int S;
    const bf_patches *train;          /* raw patches for the augmented crops */
    double *val_pred, *val_true;      /* (n_val, 2) centres in pixels */
    bf_peak_errors val;
} peaks_objective;

static double peaks_loss(void *user, const float *out, const float *target, int B, int n_out,
                         float *dout)
{
    return bf_mse_loss(dout, out, target, B, n_out, 1);
}

/* Validation MSE on the scaled centre (what BraggNN selects its checkpoint by); the
 * errors in pixels go to the epoch's metrics. */
static double peaks_score(void *user, const float *out, const float *target, long n, int n_out)
{
    peaks_objective *o = user;
    double mse = bf_mse_loss(NULL, out, target, (int)n, n_out, 1);
    bf_peaks_centres(out, n, o->S, o->val_pred);
    for (long i = 0; i < n; i++) {
        o->val_true[2 * i] = (double)target[2 * i + 1] * o->S;
        o->val_true[2 * i + 1] = (double)target[2 * i] * o->S;
    }
    if (bf_peak_errors_of(o->val_pred, o->val_true, n, &o->val, NULL) != BF_OK)
        return NAN; /* out of memory: stops training with a clear message */
    return mse;
}

/* BraggNN's augmentation: the crop window moves by a uniform integer in [-1, 1] per
 * axis (from the 1-pixel margin), the target moves with it; then per-crop scaling. */
static bf_status peaks_augment(void *user, const bf_arrays *set, const long *idx, int B,
                               uint64_t seed, int epoch, float *bx, float *bt, bf_error *err)
{
    peaks_objective *o = user;
    const bf_patches *p = o->train; /* set's rows: patch k is global row set->first + k */
    int S = o->S;
    for (int i = 0; i < B; i++) {
        bf_rng r; /* keyed by the global row: the same crops whichever rank holds it */
        bf_rng_init(&r, seed ^ AUGMENT_STREAM, ((uint64_t)epoch << 32) + (uint64_t)idx[i]);
        int dr = (int)(bf_rng_u64(&r) % 3) - 1, dc = (int)(bf_rng_u64(&r) % 3) - 1;
        long k = idx[i] - set->first;
        crop(p, k, S, 1 + dr, 1 + dc, bx + (size_t)i * S * S);
        bt[2 * i] = (float)((p->centre[2 * k + 1] - (1 + dc)) / S);
        bt[2 * i + 1] = (float)((p->centre[2 * k] - (1 + dr)) / S);
    }
    bf_minmax_scale_rows(bx, B, S * S);
    return BF_OK;
}

static bf_status peaks_meta_write(bf_checkpoint_info *info, bf_error *err)
{
    const char *kv[][2] = {{"task", "peaks"},
                           {"input_scaling", "minmax_per_patch"},
                           {"targets", "x y = (col, row) / patch"},
                           {"centre_convention", "pixel k spans [k, k+1)"}};
    bf_status st = BF_OK;
    for (size_t i = 0; st == BF_OK && i < sizeof kv / sizeof kv[0]; i++)
        st = bf_checkpoint_info_set(info, kv[i][0], kv[i][1], err);
    return st;
}

/* The output layer's bias set to the target of a peak at the central pixel's centre,
 * (S/2 + 0.5) / S for both coordinates, so that training starts from that guess.
 * Why (docs/peaks.md, "Training"): from BraggNN's all-zero biases the first updates
 * only push the outputs from 0 towards ~0.5, which drives one of the two units of the
 * 4 -> 2 layer negative; under LeakyReLU(0.01) it hardly recovers, the outputs collapse
 * onto a line and the error stalls near 0.5 px (3 of 3 seeds here). Starting at the
 * patch centre leaves only the offsets to learn. */
static bf_status start_at_the_central_pixel(bf_model *m, int S, bf_error *err)
{
    const bf_param_info *b = bf_params_find(&m->params, "dense_layers.8.bias");
    if (!b)
        return bf_error_set(err, BF_ERR_INVALID, "braggnn: no output bias");
    for (size_t i = 0; i < b->count; i++)
        m->params.value[b->offset + i] = (float)((S / 2 + 0.5) / S);
    return bf_model_params_upload(m, err);
}

/* A warm start from cfg->init_path or a fresh model of patch size S. */
static bf_status open_model(const bf_train_config *cfg, const bf_peaks_options *po, int S,
                            const bf_backend *be, bf_model **m, bf_adam *opt,
                            bf_checkpoint_info *info, bf_error *err)
{
    if (cfg->init_path)
        return bf_task_warm_start("peaks", cfg->init_path, be, cfg->lr, m, opt, info, err);
    const char *name = cfg->model ? cfg->model : "braggnn";
    const bf_model_kind *kind;
    bf_status st = bf_task_model_kind("peaks", name, &kind, err);
    if (st != BF_OK)
        return st;
    bf_model_shape shape = kind->default_shape;
    st = bf_model_dim_set(kind, &shape, "patch", S, err);
    for (int j = 0; st == BF_OK && po && j < 4; j++)
        if (po->fc[j] > 0) {
            char dim[8];
            snprintf(dim, sizeof dim, "fc%d", j + 1);
            st = bf_model_dim_set(kind, &shape, dim, po->fc[j], err);
        }
    if (st == BF_OK)
        st = bf_model_create(name, &shape, be, cfg->seed, m, err);
    if (st == BF_OK)
        st = start_at_the_central_pixel(*m, S, err);
    if (st == BF_OK)
        st = bf_adam_init(opt, be, (*m)->params.total, (float)cfg->lr, err);
    memset(info, 0, sizeof *info);
    return st;
}

bf_status bf_peaks_train(const bf_train_config *cfg, const bf_peaks_options *po,
                         const bf_patches *train, const bf_patches *val, bf_peaks_result *res,
                         bf_error *err)
{
    memset(res, 0, sizeof *res);
    bf_status st = bf_train_config_check(cfg, err);
    if (st != BF_OK)
        return st; /* the same on every rank: cfg is */
    int augment = po && po->augment;
    char tname[512];
    bf_task_train_name(cfg, train->n, tname, sizeof tname);
    const char *vname = cfg->val_name ? cfg->val_name : "validation set";
    if (augment && train->size < 9)
        return bf_error_set(err, BF_ERR_INVALID, "%s: --augment needs patches with a 1-pixel "
                            "margin (S + 2 pixels), these have %d", tname, train->size);
    const bf_backend *be = cfg->backend ? cfg->backend : bf_backend_cpu();
    be->set_threads(cfg->threads);
    bf_model *m = NULL;
    bf_adam opt = {0};
    bf_checkpoint_info *info = calloc(1, sizeof *info);
    float *tx = NULL, *tt = NULL, *vx = NULL, *vt = NULL;
    peaks_objective o = {.train = train};
    st = info ? open_model(cfg, po, augment ? train->size - 2 : train->size, be, &m, &opt, info,
                           err)
              : bf_error_set(err, BF_ERR_NOMEM, "training: out of memory");
    if (st == BF_OK) {
        o.S = model_patch(m);
        st = peaks_meta_write(info, err);
    }
    if (st == BF_OK)
        st = check_patches(train, o.S, 1, tname, 1, err);
    if (st == BF_OK && augment && train->size != o.S + 2)
        st = bf_error_set(err, BF_ERR_INVALID, "%s: --augment needs %d x %d patches (the model's "
                          "%d plus a 1-pixel margin), these are %d x %d", tname, o.S + 2, o.S + 2,
                          o.S, train->size, train->size);
    if (st == BF_OK)
        st = check_patches(val, o.S, 1, vname, 1, err);
    if (st == BF_OK)
        st = centre_inputs(train, o.S, tname, &tx, &tt, err);
    if (st == BF_OK)
        st = centre_inputs(val, o.S, vname, &vx, &vt, err);
    if (st == BF_OK) {
        o.val_pred = malloc(sizeof(double) * 2 * (size_t)val->n);
        o.val_true = malloc(sizeof(double) * 2 * (size_t)val->n);
        if (!o.val_pred || !o.val_true)
            st = bf_error_set(err, BF_ERR_NOMEM, "training: out of memory");
    }
    /* a rank whose shard failed (a NaN pixel, no centres) stops every rank here, before
     * the others wait for it inside bf_train's collectives */
    st = bf_comm_agree(cfg->comm, st, err);
    if (st == BF_OK) {
        bf_objective obj = {.name = "mse", .target_len = 2, .loss = peaks_loss,
                            .score = peaks_score, .make_batch = augment ? peaks_augment : NULL,
                            .user = &o, .metrics = &o.val, .best_metrics = &res->best_val,
                            .metrics_size = sizeof o.val};
        snprintf(info->train_sha256, sizeof info->train_sha256, "%s", cfg->train_sha256);
        snprintf(info->val_sha256, sizeof info->val_sha256, "%s", cfg->val_sha256);
        bf_arrays tr = {tx, tt, train->n, cfg->train_first, cfg->train_total},
                  va = {vx, vt, val->n, 0, 0};
        st = bf_train(cfg, m, &opt, &obj, &tr, &va, info, &res->train, err);
    }
    free(tx), free(tt), free(vx), free(vt), free(o.val_pred), free(o.val_true);
    free(info);
    bf_adam_free(&opt);
    bf_model_destroy(m);
    return st;
}
