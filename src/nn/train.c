/* nn/train.c — the training protocol of the structure task (DESIGN §4, seed 001):
 * per-pattern min-max scaling, scaled lattice labels, seeded shuffling, Adam
 * with gradient-norm clipping, validation every epoch, the best-validation
 * checkpoint kept, early stopping; metrics in scaled and physical units.
 *
 * Reproducibility: same data, seed and thread count => the same bits. Other
 * thread counts change the summation order of weight gradients (per-thread
 * partial sums, OpenBLAS blocking), so results then agree only to rounding. */
#include "braggflow/nn.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_REG (BF_N_TARGETS + 1)
#define SHUFFLE_STREAM 0x5348554646000000ull /* "SHUFF": keeps epochs' streams apart */

void bf_train_config_defaults(bf_train_config *cfg)
{
    *cfg = (bf_train_config){.model = "structure_net", .epochs = 30, .batch = 512,
                             .patience = 10, .lr = 5e-4, .min_delta = 0, .clip_norm = 50,
                             .seed = 1, .threads = 0, .progress = 1};
}

/* ---- inputs -------------------------------------------------------------------- */

bf_status bf_structure_inputs(const bf_model *m, const bf_dataset *d, const char *name,
                              const bf_label_scaling *sc, float **x_out, int32_t **labels_out,
                              float **targets_out, bf_error *err)
{
    int L = m->shape.input_len, C = m->shape.n_classes;
    if (d->length != L)
        return bf_error_set(err, BF_ERR_INVALID,
                            "%s: patterns have %d points but model '%s' takes %d (simulate on "
                            "the grid the model was trained for)", name, d->length,
                            m->kind->name, L);
    if (d->n < 1)
        return bf_error_set(err, BF_ERR_INVALID, "%s: holds no patterns", name);
    for (long i = 0; i < d->n; i++) {
        const float *r = d->patterns + (size_t)i * L;
        for (int j = 0; j < L; j++)
            if (!isfinite(r[j]))
                return bf_error_set(err, BF_ERR_INVALID, "%s: pattern %ld point %d is %s", name,
                                    i, j, isnan(r[j]) ? "NaN" : "infinite");
        if (labels_out && (d->labels[i] < 0 || d->labels[i] >= C))
            return bf_error_set(err, BF_ERR_INVALID,
                                "%s: pattern %ld has class label %d; model '%s' knows labels "
                                "0..%d", name, i, (int)d->labels[i], m->kind->name, C - 1);
        if (targets_out)
            for (int k = 0; k < 6; k++)
                if (!isfinite(d->cells[i * 6 + k]))
                    return bf_error_set(err, BF_ERR_INVALID, "%s: pattern %ld: cell value %d is "
                                        "not finite", name, i, k);
    }
    size_t nx = (size_t)d->n * L;
    float *x = malloc(sizeof(float) * nx);
    int32_t *labels = labels_out ? malloc(sizeof(int32_t) * (size_t)d->n) : NULL;
    float *targets = targets_out ? malloc(sizeof(float) * (size_t)d->n * BF_N_TARGETS) : NULL;
    if (!x || (labels_out && !labels) || (targets_out && !targets)) {
        free(x);
        free(labels);
        free(targets);
        return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory for %ld patterns", name, d->n);
    }
    memcpy(x, d->patterns, sizeof(float) * nx);
    m->be->minmax_scale(x, (int)d->n, L);
    for (long i = 0; i < d->n; i++) {
        if (labels)
            labels[i] = d->labels[i];
        if (targets) {
            /* a, c, alpha: DESIGN §4 (c = a and alpha = 90 where the class fixes them) */
            const double *cell = d->cells + i * 6;
            double phys[BF_N_TARGETS] = {cell[0], cell[2], cell[3]};
            for (int k = 0; k < BF_N_TARGETS; k++)
                targets[i * BF_N_TARGETS + k] = (float)((phys[k] - sc->offset[k]) / sc->scale[k]);
        }
    }
    *x_out = x;
    if (labels_out)
        *labels_out = labels;
    if (targets_out)
        *targets_out = targets;
    return BF_OK;
}

bf_status bf_model_predict(bf_model *m, const float *x, long n, int batch, float *out,
                           bf_error *err)
{
    bf_status st = bf_model_reserve(m, batch, err);
    int was = m->inference;
    m->inference = 1;
    for (long i = 0; st == BF_OK && i < n; i += batch) {
        int B = (int)(n - i < batch ? n - i : batch);
        st = m->kind->forward(m, x + (size_t)i * m->shape.input_len, B, out + (size_t)i * m->n_out,
                              err);
    }
    m->inference = was;
    return st;
}

/* ---- metrics ------------------------------------------------------------------- */

void bf_structure_metrics(const float *out, const int32_t *labels, const float *targets, long n,
                          int C, const bf_label_scaling *sc, bf_metrics *mt)
{
    memset(mt, 0, sizeof *mt);
    mt->n = n;
    mt->n_classes = C;
    int n_out = C + N_REG;
    double mean[BF_N_TARGETS] = {0};
    for (long i = 0; i < n; i++)
        for (int k = 0; k < BF_N_TARGETS; k++)
            mean[k] += targets[i * BF_N_TARGETS + k] / (double)n;
    long correct = 0;
    for (long i = 0; i < n; i++) {
        const float *o = out + (size_t)i * n_out, *y = targets + i * BF_N_TARGETS;
        mt->class_loss += bf_cross_entropy_loss(NULL, o, labels + i, 1, C, 1);
        int best = 0;
        for (int c = 1; c < C; c++)
            best = o[c] > o[best] ? c : best;
        correct += best == labels[i];
        if (labels[i] >= 0 && labels[i] < BF_MAX_MODEL_CLASSES && best < BF_MAX_MODEL_CLASSES)
            mt->confusion[labels[i]][best]++;
        const float *reg = o + C;
        /* Eq. 6 per sample, from the (1, P+1) prediction row */
        mt->reg_loss += bf_hetero_loss(NULL, reg, y, 1, BF_N_TARGETS, 1);
        mt->mean_sigma2 += exp(reg[BF_N_TARGETS]);
        for (int k = 0; k < BF_N_TARGETS; k++) {
            double e = (double)reg[k] - y[k];
            mt->mse += e * e;
            mt->mse_baseline += (y[k] - mean[k]) * (y[k] - mean[k]);
            mt->mae[k] += fabs(e) * sc->scale[k];
            mt->rmse[k] += e * e * sc->scale[k] * sc->scale[k];
        }
    }
    if (n == 0)
        return;
    mt->class_loss /= n;
    mt->reg_loss /= n;
    mt->loss = mt->class_loss + mt->reg_loss;
    mt->accuracy = (double)correct / n;
    mt->mse /= (double)n * BF_N_TARGETS;
    mt->mse_baseline /= (double)n * BF_N_TARGETS;
    mt->mean_sigma2 /= n;
    for (int k = 0; k < BF_N_TARGETS; k++) {
        mt->mae[k] /= n;
        mt->rmse[k] = sqrt(mt->rmse[k] / n);
    }
}

/* ---- training ------------------------------------------------------------------ */

typedef struct {
    float *x, *targets;           /* prepared sets */
    int32_t *labels;
    long n;
} prepared;

static void prepared_free(prepared *p)
{
    free(p->x);
    free(p->targets);
    free(p->labels);
}

/* One optimisation step on batch rows idx[0..B); *loss = the batch's loss. A
 * non-finite loss is returned before the parameters are touched. */
static bf_status train_step(bf_model *m, bf_adam *opt, const prepared *tr, const long *idx,
                            int B, double clip, float *bx, int32_t *by, float *bt, float *out,
                            float *dout, float *dl, float *dr, double *loss, bf_error *err)
{
    int L = m->shape.input_len, C = m->shape.n_classes, n_out = m->n_out;
    for (int i = 0; i < B; i++) {
        memcpy(bx + (size_t)i * L, tr->x + (size_t)idx[i] * L, sizeof(float) * L);
        by[i] = tr->labels[idx[i]];
        memcpy(bt + i * BF_N_TARGETS, tr->targets + idx[i] * BF_N_TARGETS,
               sizeof(float) * BF_N_TARGETS);
    }
    bf_status st = m->kind->forward(m, bx, B, out, err);
    if (st != BF_OK)
        return st;
    /* the heads' outputs as (B, C) and (B, 4) for the losses */
    for (int i = 0; i < B; i++) {
        memcpy(dl + i * C, out + (size_t)i * n_out, sizeof(float) * C);
        memcpy(dr + i * N_REG, out + (size_t)i * n_out + C, sizeof(float) * N_REG);
    }
    double class_loss = bf_cross_entropy_loss(dl, dl, by, B, C, 1);
    double reg_loss = bf_hetero_loss(dr, dr, bt, B, BF_N_TARGETS, 1);
    for (int i = 0; i < B; i++) {
        memcpy(dout + (size_t)i * n_out, dl + i * C, sizeof(float) * C);
        memcpy(dout + (size_t)i * n_out + C, dr + i * N_REG, sizeof(float) * N_REG);
    }
    *loss = class_loss + reg_loss;
    if (!isfinite(*loss))
        return BF_OK;
    bf_params_zero_grad(&m->params);
    st = m->kind->backward(m, bx, B, dout, err);
    if (st != BF_OK)
        return st;
    m->be->grad_norm_clip(m->params.grad, m->params.total, clip);
    m->be->adam_step(opt, m->params.value, m->params.grad);
    return BF_OK;
}

static void shuffle(long *idx, long n, uint64_t seed, int epoch)
{
    bf_rng rng;
    bf_rng_init(&rng, seed, SHUFFLE_STREAM + (uint64_t)epoch);
    for (long i = 0; i < n; i++)
        idx[i] = i;
    for (long i = n - 1; i > 0; i--) {
        long j = (long)(bf_rng_u64(&rng) % (uint64_t)(i + 1));
        long t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

static void config_json(const bf_train_config *cfg, const bf_model *m, char *out, size_t n)
{
    char init[600], train[600], val[600];
    snprintf(out, n,
             "{\"model\":\"%s\",\"input_len\":%d,\"hidden\":%d,\"epochs\":%d,\"batch\":%d,"
             "\"lr\":%.9g,\"seed\":%llu,\"threads\":%d,\"patience\":%d,\"min_delta\":%.9g,"
             "\"clip_norm\":%.9g,\"optimizer\":\"adam\",\"loss\":\"cross_entropy+hetero_eq6\","
             "\"init\":%s,\"train\":%s,\"val\":%s}",
             m->kind->name, m->shape.input_len, m->shape.hidden, cfg->epochs, cfg->batch,
             cfg->lr, (unsigned long long)cfg->seed, cfg->threads, cfg->patience,
             cfg->min_delta, cfg->clip_norm,
             bf_json_quote(cfg->init_path ? cfg->init_path : "", init, sizeof init),
             bf_json_quote(cfg->train_name ? cfg->train_name : "", train, sizeof train),
             bf_json_quote(cfg->val_name ? cfg->val_name : "", val, sizeof val));
}

/* Class names by label, from the training set (its config order + labels). */
static void class_names_by_label(const bf_dataset *d, int C, bf_checkpoint_info *info)
{
    for (int c = 0; c < C && c < BF_MAX_MODEL_CLASSES; c++) {
        const char *builtin = bf_class_builtin_name(c);
        snprintf(info->class_names[c], sizeof info->class_names[c], "%s",
                 builtin ? builtin : "class");
    }
    for (int k = 0; k < d->n_classes; k++) {
        int lab = d->class_labels[k];
        if (lab >= 0 && lab < C && d->class_names[k][0])
            snprintf(info->class_names[lab], sizeof info->class_names[lab], "%s",
                     d->class_names[k]);
    }
}

/* A warm start from cfg->init_path (weights, optimiser state, scaling and class
 * names from the checkpoint) or a fresh model shaped by the training set. */
static bf_status open_model(const bf_train_config *cfg, const bf_dataset *train,
                            const bf_backend *be, bf_model **m, bf_adam *opt,
                            bf_checkpoint_info *info, bf_error *err)
{
    if (cfg->init_path) {
        bf_status st = bf_checkpoint_load(cfg->init_path, be, m, info, opt, NULL, err);
        if (st == BF_OK)
            opt->lr = (float)cfg->lr; /* a warm restart may change the learning rate */
        return st;
    }
    const char *name = cfg->model ? cfg->model : "structure_net";
    const bf_model_kind *kind = bf_model_kind_find(name);
    bf_model_shape shape = kind ? kind->default_shape : (bf_model_shape){0};
    shape.input_len = train->length;
    shape.n_classes = 3; /* the seed's classes, or as many as the set's labels need */
    for (int k = 0; k < train->n_classes; k++)
        if (train->class_labels[k] + 1 > shape.n_classes)
            shape.n_classes = train->class_labels[k] + 1;
    if (cfg->hidden > 0)
        shape.hidden = cfg->hidden;
    bf_status st = bf_model_create(name, &shape, be, cfg->seed, m, err);
    if (st == BF_OK)
        st = bf_adam_init(opt, (*m)->params.total, (float)cfg->lr, err);
    info->scaling = bf_label_scaling_seed;
    class_names_by_label(train, shape.n_classes, info);
    return st;
}

static bf_status check_config(const bf_train_config *cfg, bf_error *err)
{
    if (cfg->epochs < 1 || cfg->epochs > 1000000)
        return bf_error_set(err, BF_ERR_INVALID, "epochs %d: must be 1 or more", cfg->epochs);
    if (cfg->batch < 1 || cfg->batch > 65536)
        return bf_error_set(err, BF_ERR_INVALID, "batch %d: must be 1..65536", cfg->batch);
    if (!(cfg->lr > 0) || !isfinite(cfg->lr))
        return bf_error_set(err, BF_ERR_INVALID, "lr %g: must be a positive number", cfg->lr);
    if (cfg->patience < 0 || !(cfg->min_delta >= 0) || !(cfg->clip_norm > 0))
        return bf_error_set(err, BF_ERR_INVALID,
                            "patience %d, min_delta %g, clip_norm %g: need >= 0, >= 0, > 0",
                            cfg->patience, cfg->min_delta, cfg->clip_norm);
    if (!cfg->out_path || !cfg->out_path[0])
        return bf_error_set(err, BF_ERR_INVALID, "no output checkpoint path");
    return BF_OK;
}

bf_status bf_train(const bf_train_config *cfg, const bf_dataset *train, const bf_dataset *val,
                   bf_train_result *res, bf_error *err)
{
    memset(res, 0, sizeof *res);
    res->best_val_loss = INFINITY;
    bf_status st = check_config(cfg, err);
    if (st != BF_OK)
        return st;
    const bf_backend *be = bf_backend_cpu();
    be->set_threads(cfg->threads);
    bf_model *m = NULL;
    bf_adam opt = {0};
    bf_checkpoint_info info = {0};
    prepared tr = {0}, va = {0};
    long *idx = NULL;
    float *buf = NULL, *vout = NULL;
    int32_t *by = NULL;

    st = open_model(cfg, train, be, &m, &opt, &info, err);
    const bf_label_scaling *sc = &info.scaling;
    if (st == BF_OK && m->kind->task != BF_TASK_STRUCTURE)
        st = bf_error_set(err, BF_ERR_INVALID, "model '%s' is not a structure model",
                          m->kind->name);
    if (st == BF_OK)
        st = bf_structure_inputs(m, train, cfg->train_name ? cfg->train_name : "training set",
                                 sc, &tr.x, &tr.labels, &tr.targets, err);
    if (st == BF_OK)
        st = bf_structure_inputs(m, val, cfg->val_name ? cfg->val_name : "validation set", sc,
                                 &va.x, &va.labels, &va.targets, err);
    if (st != BF_OK)
        goto done;
    tr.n = train->n;
    va.n = val->n;
    config_json(cfg, m, info.training_config, sizeof info.training_config);
    snprintf(info.train_sha256, sizeof info.train_sha256, "%s", cfg->train_sha256);
    snprintf(info.val_sha256, sizeof info.val_sha256, "%s", cfg->val_sha256);
    int first_epoch = info.epoch; /* continues the count on a warm restart */

    int B = cfg->batch, L = m->shape.input_len, C = m->shape.n_classes, n_out = m->n_out;
    idx = malloc(sizeof(long) * (size_t)tr.n);
    by = malloc(sizeof(int32_t) * (size_t)B);
    size_t nbuf = (size_t)B * L + (size_t)B * BF_N_TARGETS + 2 * (size_t)B * n_out +
                  (size_t)B * C + (size_t)B * N_REG;
    buf = malloc(sizeof(float) * nbuf);
    vout = malloc(sizeof(float) * (size_t)va.n * n_out);
    if (!idx || !by || !buf || !vout) {
        st = bf_error_set(err, BF_ERR_NOMEM, "training: out of memory");
        goto done;
    }
    float *bx = buf, *bt = bx + (size_t)B * L, *out = bt + (size_t)B * BF_N_TARGETS;
    float *dout = out + (size_t)B * n_out, *dl = dout + (size_t)B * n_out, *dr = dl + (size_t)B * C;
    st = bf_model_reserve(m, B, err);

    double best = INFINITY, best_for_patience = INFINITY, t_start = bf_now_seconds();
    int wait = 0;
    for (int e = 0; st == BF_OK && e < cfg->epochs; e++) {
        int epoch = first_epoch + e + 1;
        double t0 = bf_now_seconds(), sum = 0;
        shuffle(idx, tr.n, cfg->seed, epoch);
        bf_progress prog;
        char label[64];
        snprintf(label, sizeof label, "epoch %d/%d", epoch, first_epoch + cfg->epochs);
        if (cfg->progress)
            bf_progress_begin(&prog, label, (uint64_t)tr.n);
        for (long i = 0; i < tr.n; i += B) {
            int nb = (int)(tr.n - i < B ? tr.n - i : B);
            double loss = 0;
            st = train_step(m, &opt, &tr, idx + i, nb, cfg->clip_norm, bx, by, bt, out, dout, dl,
                            dr, &loss, err);
            if (st != BF_OK)
                break;
            if (!isfinite(loss)) {
                if (res->best_epoch)
                    st = bf_error_set(err, BF_ERR_INVALID,
                                      "training diverged: loss is %s at epoch %d, batch %ld; "
                                      "stopped. The best checkpoint (epoch %d, validation loss "
                                      "%.6g) is kept in %s (try a lower --lr)",
                                      isnan(loss) ? "NaN" : "infinite", epoch, i / B + 1,
                                      res->best_epoch, res->best_val_loss, cfg->out_path);
                else
                    st = bf_error_set(err, BF_ERR_INVALID,
                                      "training diverged: loss is %s at epoch %d, batch %ld, "
                                      "before any checkpoint was kept; %s not written (try a "
                                      "lower --lr)", isnan(loss) ? "NaN" : "infinite", epoch,
                                      i / B + 1, cfg->out_path);
                break;
            }
            sum += loss * nb;
            if (cfg->progress)
                bf_progress_add(&prog, (uint64_t)nb);
        }
        if (cfg->progress)
            bf_progress_end(&prog);
        if (st != BF_OK)
            break;
        double t_train = bf_now_seconds() - t0;

        bf_epoch_log log = {.epoch = epoch, .epochs = first_epoch + cfg->epochs,
                            .train_loss = sum / tr.n, .samples_per_s = tr.n / t_train};
        st = bf_model_predict(m, va.x, va.n, B, vout, err);
        if (st != BF_OK)
            break;
        bf_structure_metrics(vout, va.labels, va.targets, va.n, C, sc, &log.val);
        res->epochs_run = e + 1;
        if (!isfinite(log.val.loss)) {
            st = bf_error_set(err, BF_ERR_INVALID,
                              "training diverged: validation loss is not finite at epoch %d; "
                              "stopped%s%s", epoch, res->best_epoch ? ", best checkpoint kept in "
                              : "", res->best_epoch ? cfg->out_path : "");
            break;
        }
        if (log.val.loss < best) {
            best = log.val.loss;
            info.epoch = epoch;
            info.val_loss = best;
            st = bf_checkpoint_save(cfg->out_path, m, &info, &opt, err);
            if (st != BF_OK)
                break;
            log.improved = 1;
            res->best_epoch = epoch;
            res->best_val_loss = best;
            res->best_val = log.val;
        }
        log.seconds = bf_now_seconds() - t0;
        if (cfg->on_epoch)
            cfg->on_epoch(&log, cfg->user);
        if (log.val.loss < best_for_patience - cfg->min_delta) {
            best_for_patience = log.val.loss;
            wait = 0;
        } else if (cfg->patience > 0 && ++wait >= cfg->patience) {
            res->stopped_early = 1;
            break;
        }
    }
    res->train_seconds = bf_now_seconds() - t_start;

done:
    free(idx);
    free(by);
    free(buf);
    free(vout);
    prepared_free(&tr);
    prepared_free(&va);
    bf_adam_free(&opt);
    bf_model_destroy(m);
    return st;
}

bf_status bf_checkpoint_evaluate(const char *path, const bf_dataset *d, const char *name,
                                 int batch, bf_metrics *mt, bf_error *err)
{
    bf_model *m = NULL;
    bf_checkpoint_info info;
    float *x = NULL, *targets = NULL, *out = NULL;
    int32_t *labels = NULL;
    bf_status st = bf_checkpoint_load(path, bf_backend_cpu(), &m, &info, NULL, NULL, err);
    if (st == BF_OK)
        st = bf_structure_inputs(m, d, name, &info.scaling, &x, &labels, &targets, err);
    if (st == BF_OK && !(out = malloc(sizeof(float) * (size_t)d->n * m->n_out)))
        st = bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    if (st == BF_OK)
        st = bf_model_predict(m, x, d->n, batch, out, err);
    if (st == BF_OK)
        bf_structure_metrics(out, labels, targets, d->n, m->shape.n_classes, &info.scaling, mt);
    free(x);
    free(labels);
    free(targets);
    free(out);
    bf_model_destroy(m);
    return st;
}
