/* nn/train.c — the training loop every model and task shares: seeded shuffling,
 * batches gathered on the host and uploaded, forward on the backend, the task's
 * loss on the downloaded outputs, backward, optional gradient-norm clipping, Adam,
 * validation after every epoch, the best-validation checkpoint kept, early stopping.
 *
 * Reproducibility: same data, seed and thread count => the same bits. Other thread
 * counts change the summation order of weight gradients (per-thread partial sums,
 * OpenBLAS blocking), so results then agree only to rounding. */
#include "braggflow/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHUFFLE_STREAM 0x5348554646000000ull /* "SHUFF": keeps epochs' streams apart */

void bf_train_config_defaults(bf_train_config *cfg)
{
    *cfg = (bf_train_config){.model = "structure_net", .epochs = 30, .batch = 512,
                             .patience = 10, .lr = 5e-4, .min_delta = 0, .clip_norm = 50,
                             .seed = 1, .threads = 0, .progress = 1};
}

bf_status bf_train_config_check(const bf_train_config *cfg, bf_error *err)
{
    if (cfg->epochs < 1 || cfg->epochs > 1000000)
        return bf_error_set(err, BF_ERR_INVALID, "epochs %d: must be 1 or more", cfg->epochs);
    if (cfg->batch < 1 || cfg->batch > 65536)
        return bf_error_set(err, BF_ERR_INVALID, "batch %d: must be 1..65536", cfg->batch);
    if (!(cfg->lr > 0) || !isfinite(cfg->lr))
        return bf_error_set(err, BF_ERR_INVALID, "lr %g: must be a positive number", cfg->lr);
    if (cfg->patience < 0 || !(cfg->min_delta >= 0) || !(cfg->clip_norm >= 0))
        return bf_error_set(err, BF_ERR_INVALID,
                            "patience %d, min_delta %g, clip_norm %g: need >= 0 each",
                            cfg->patience, cfg->min_delta, cfg->clip_norm);
    if (!cfg->out_path || !cfg->out_path[0])
        return bf_error_set(err, BF_ERR_INVALID, "no output checkpoint path");
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

static void config_json(const bf_train_config *cfg, const bf_model *m, const bf_objective *obj,
                        char *out, size_t n)
{
    char init[600], train[600], val[600], shape[256];
    bf_model_shape_format(m->kind, &m->shape, shape, sizeof shape);
    char shape_q[300];
    snprintf(out, n,
             "{\"model\":\"%s\",\"shape\":%s,\"epochs\":%d,\"batch\":%d,"
             "\"lr\":%.9g,\"seed\":%llu,\"threads\":%d,\"patience\":%d,\"min_delta\":%.9g,"
             "\"clip_norm\":%.9g,\"optimizer\":\"adam\",\"loss\":\"%s\","
             "\"backend\":\"%s\",\"init\":%s,\"train\":%s,\"val\":%s}",
             m->kind->name, bf_json_quote(shape, shape_q, sizeof shape_q), cfg->epochs,
             cfg->batch, cfg->lr, (unsigned long long)cfg->seed, cfg->threads, cfg->patience,
             cfg->min_delta, cfg->clip_norm, obj->name, m->be->name,
             bf_json_quote(cfg->init_path ? cfg->init_path : "", init, sizeof init),
             bf_json_quote(cfg->train_name ? cfg->train_name : "", train, sizeof train),
             bf_json_quote(cfg->val_name ? cfg->val_name : "", val, sizeof val));
}

/* Host and backend buffers of one training batch. */
struct bf_step_ws {
    const bf_backend *be;
    float *out, *dout;                /* host: outputs, d loss / d out */
    float *x_be, *dout_be;            /* backend copies of the inputs and dout */
};

void bf_step_ws_destroy(bf_step_ws *ws)
{
    if (!ws)
        return;
    free(ws->out);
    free(ws->dout);
    ws->be->free(ws->x_be);
    ws->be->free(ws->dout_be);
    free(ws);
}

bf_status bf_step_ws_create(const bf_model *m, int B, bf_step_ws **out, bf_error *err)
{
    size_t nx = (size_t)B * m->input_len, no = (size_t)B * m->n_out;
    bf_step_ws *ws = calloc(1, sizeof *ws);
    if (ws) {
        ws->be = m->be;
        ws->out = malloc(sizeof(float) * no);
        ws->dout = malloc(sizeof(float) * no);
    }
    bf_status st = ws && ws->out && ws->dout
                       ? BF_OK
                       : bf_error_set(err, BF_ERR_NOMEM, "training: out of memory for a batch "
                                      "of %d", B);
    if (st == BF_OK)
        st = m->be->alloc(sizeof(float) * nx, (void **)&ws->x_be, err);
    if (st == BF_OK)
        st = m->be->alloc(sizeof(float) * no, (void **)&ws->dout_be, err);
    if (st != BF_OK) {
        bf_step_ws_destroy(ws);
        return st;
    }
    *out = ws;
    return BF_OK;
}

bf_status bf_train_step(bf_model *m, bf_adam *opt, const bf_objective *obj, bf_step_ws *ws,
                        const float *bx, const float *bt, int B, double clip_norm,
                        double *loss, bf_error *err)
{
    const bf_backend *be = m->be;
    size_t no = sizeof(float) * (size_t)B * m->n_out;
    bf_status st = bf_model_reserve(m, B, err);
    if (st == BF_OK)
        st = be->upload(ws->x_be, bx, sizeof(float) * (size_t)B * m->input_len, err);
    if (st == BF_OK)
        st = m->kind->forward(m, ws->x_be, B, err);
    if (st == BF_OK)
        st = be->download(ws->out, m->out, no, err);
    if (st != BF_OK)
        return st;
    *loss = obj->loss(obj->user, ws->out, bt, B, m->n_out, ws->dout);
    if (!isfinite(*loss))
        return BF_OK;
    st = be->upload(ws->dout_be, ws->dout, no, err);
    if (st == BF_OK)
        st = bf_model_zero_grad(m, err);
    if (st == BF_OK)
        st = m->kind->backward(m, ws->x_be, B, ws->dout_be, err);
    if (st == BF_OK && clip_norm > 0)
        st = be->grad_norm_clip(m->g, m->params.total, clip_norm, NULL, err);
    if (st == BF_OK)
        st = be->adam_step(opt, m->w, m->g, err);
    return st;
}

/* Fills the host batch rows idx[0..B) (the task's make_batch, or plain copies). */
static bf_status gather(const bf_model *m, const bf_objective *obj, const bf_arrays *set,
                        const long *idx, int B, uint64_t seed, int epoch, float *bx, float *bt,
                        bf_error *err)
{
    if (obj->make_batch)
        return obj->make_batch(obj->user, set, idx, B, seed, epoch, bx, bt, err);
    size_t L = (size_t)m->input_len, T = (size_t)obj->target_len;
    for (int i = 0; i < B; i++) {
        memcpy(bx + i * L, set->x + (size_t)idx[i] * L, sizeof(float) * L);
        memcpy(bt + i * T, set->target + (size_t)idx[i] * T, sizeof(float) * T);
    }
    return BF_OK;
}

static bf_status diverged(const bf_train_config *cfg, const bf_train_result *res, double loss,
                          int epoch, long batch, bf_error *err)
{
    if (res->best_epoch)
        return bf_error_set(err, BF_ERR_INVALID,
                            "training diverged: loss is %s at epoch %d, batch %ld; stopped. The "
                            "best checkpoint (epoch %d, validation score %.6g) is kept in %s "
                            "(try a lower --lr)", isnan(loss) ? "NaN" : "infinite", epoch, batch,
                            res->best_epoch, res->best_val_score, cfg->out_path);
    return bf_error_set(err, BF_ERR_INVALID,
                        "training diverged: loss is %s at epoch %d, batch %ld, before any "
                        "checkpoint was kept; %s not written (try a lower --lr)",
                        isnan(loss) ? "NaN" : "infinite", epoch, batch, cfg->out_path);
}

bf_status bf_train(const bf_train_config *cfg, bf_model *m, bf_adam *opt,
                   const bf_objective *obj, const bf_arrays *tr, const bf_arrays *va,
                   bf_checkpoint_info *info, bf_train_result *res, bf_error *err)
{
    memset(res, 0, sizeof *res);
    res->best_val_score = INFINITY;
    bf_status st = bf_train_config_check(cfg, err);
    if (st != BF_OK)
        return st;
    if (tr->n < 1 || va->n < 1)
        return bf_error_set(err, BF_ERR_INVALID, "training needs at least one training and one "
                            "validation sample (got %ld and %ld)", tr->n, va->n);
    config_json(cfg, m, obj, info->training_config, sizeof info->training_config);
    snprintf(info->model, sizeof info->model, "%s", m->kind->name);
    info->shape = m->shape;
    int first_epoch = info->epoch; /* continues the count on a warm restart */

    int B = cfg->batch;
    bf_step_ws *ws = NULL;
    long *idx = malloc(sizeof(long) * (size_t)tr->n);
    float *vout = malloc(sizeof(float) * (size_t)va->n * m->n_out);
    float *bx = malloc(sizeof(float) * (size_t)B * m->input_len);
    float *bt = malloc(sizeof(float) * ((size_t)B * obj->target_len + 1));
    if (!idx || !vout || !bx || !bt)
        st = bf_error_set(err, BF_ERR_NOMEM, "training: out of memory");
    if (st == BF_OK)
        st = bf_step_ws_create(m, B, &ws, err);
    if (st == BF_OK)
        st = bf_model_reserve(m, B, err);

    double best = INFINITY, best_for_patience = INFINITY, t_start = bf_now_seconds();
    int wait = 0;
    for (int e = 0; st == BF_OK && e < cfg->epochs; e++) {
        int epoch = first_epoch + e + 1;
        double t0 = bf_now_seconds(), sum = 0;
        shuffle(idx, tr->n, cfg->seed, epoch);
        bf_progress prog;
        char label[64];
        snprintf(label, sizeof label, "epoch %d/%d", epoch, first_epoch + cfg->epochs);
        if (cfg->progress)
            bf_progress_begin(&prog, label, (uint64_t)tr->n);
        for (long i = 0; i < tr->n; i += B) {
            int nb = (int)(tr->n - i < B ? tr->n - i : B);
            double loss = 0;
            st = gather(m, obj, tr, idx + i, nb, cfg->seed, epoch, bx, bt, err);
            if (st == BF_OK)
                st = bf_train_step(m, opt, obj, ws, bx, bt, nb, cfg->clip_norm, &loss, err);
            if (st == BF_OK && !isfinite(loss))
                st = diverged(cfg, res, loss, epoch, i / B + 1, err);
            if (st != BF_OK)
                break;
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
                            .train_loss = sum / tr->n, .samples_per_s = tr->n / t_train,
                            .val_out = vout, .task_metrics = obj->metrics};
        st = bf_model_predict(m, va->x, va->n, B, vout, err);
        if (st != BF_OK)
            break;
        log.val_score = obj->score(obj->user, vout, va->target, va->n, m->n_out);
        res->epochs_run = e + 1;
        if (!isfinite(log.val_score)) {
            st = bf_error_set(err, BF_ERR_INVALID,
                              "training diverged: validation score is not finite at epoch %d; "
                              "stopped%s%s", epoch, res->best_epoch ? ", best checkpoint kept in "
                              : "", res->best_epoch ? cfg->out_path : "");
            break;
        }
        if (log.val_score < best) {
            best = log.val_score;
            info->epoch = epoch;
            info->val_loss = best;
            st = bf_checkpoint_save(cfg->out_path, m, info, opt, err);
            if (st != BF_OK)
                break;
            log.improved = 1;
            if (obj->metrics && obj->best_metrics)
                memcpy(obj->best_metrics, obj->metrics, obj->metrics_size);
            res->best_epoch = epoch;
            res->best_val_score = best;
        }
        log.seconds = bf_now_seconds() - t0;
        if (cfg->on_epoch)
            cfg->on_epoch(&log, cfg->user);
        if (log.val_score < best_for_patience - cfg->min_delta) {
            best_for_patience = log.val_score;
            wait = 0;
        } else if (cfg->patience > 0 && ++wait >= cfg->patience) {
            res->stopped_early = 1;
            break;
        }
    }
    res->train_seconds = bf_now_seconds() - t_start;
    free(idx);
    free(vout);
    free(bx);
    free(bt);
    bf_step_ws_destroy(ws);
    return st;
}
