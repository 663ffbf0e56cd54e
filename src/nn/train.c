/* nn/train.c — the training loop every model and task shares: seeded shuffling,
 * batches gathered on the host and uploaded, forward on the backend, the task's
 * loss on the downloaded outputs, backward, optional gradient-norm clipping, Adam,
 * validation after every epoch, the best-validation checkpoint kept, early stopping.
 *
 * Reproducibility: same data, seed and thread count => the same bits. Other thread
 * counts change the summation order of weight gradients (per-thread partial sums,
 * OpenBLAS blocking), so results then agree only to rounding.
 *
 * Data parallelism (cfg->comm, DESIGN §10): each rank holds only its shard of the
 * training rows (bf_arrays first/total; a whole set on every rank stands for the shard
 * [total r/P, total (r+1)/P)). Every rank shuffles all `total` rows with the same
 * stream, walks the same global batches and takes the members whose rows it holds
 * (maybe none: it still joins every collective); its loss mean is weighted by its share
 * (n_rank / n_batch, folded into d loss / d out), so the summed gradients are the
 * single-rank gradients up to float summation order. The sums run in buckets started
 * from the model's backward as layers finish (bf_model_grads_final). */
#include "braggflow/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHUFFLE_STREAM 0x5348554646000000ull /* "SHUFF": keeps epochs' streams apart */
#define MAX_BUCKETS 64
#define DEFAULT_BUCKET_FLOATS 262144 /* 1 MiB: a few buckets per model, each worth a call */

void bf_train_config_defaults(bf_train_config *cfg)
{
    *cfg = (bf_train_config){.model = "structure_net", .epochs = 30, .batch = 512,
                             .patience = 10, .lr = 5e-4, .min_delta = 0, .clip_norm = 50,
                             .seed = 1, .threads = 0, .progress = 1, .warmup_epochs = 5};
}

int bf_lr_scaling_parse(const char *s, bf_lr_scaling *out)
{
    for (int i = BF_LR_SCALING_NONE; i <= BF_LR_SCALING_LINEAR; i++)
        if (!strcmp(s, bf_lr_scaling_name((bf_lr_scaling)i))) {
            *out = (bf_lr_scaling)i;
            return 0;
        }
    return -1;
}

const char *bf_lr_scaling_name(bf_lr_scaling s)
{
    return s == BF_LR_SCALING_SQRT ? "sqrt" : s == BF_LR_SCALING_LINEAR ? "linear" : "none";
}

bf_status bf_comm_agree(const bf_comm *c, bf_status st, bf_error *err)
{
    if (!c)
        return st;
    /* one flag per rank (summed 256 ranks at a time, the same calls on every rank):
     * every rank learns who failed, and the lowest failing rank tells why */
    bf_error sink = {0};
    bf_status cst = BF_OK;
    int root = -1;
    for (int base = 0; base < c->size && cst == BF_OK; base += 256) {
        double flags[256] = {0};
        int n = c->size - base < 256 ? c->size - base : 256;
        if (st != BF_OK && c->rank >= base && c->rank < base + n)
            flags[c->rank - base] = 1;
        cst = c->allreduce_sum_f64(c, flags, n, &sink);
        for (int r = 0; cst == BF_OK && r < n && root < 0; r++)
            if (flags[r] > 0)
                root = base + r;
    }
    if (cst != BF_OK) {
        if (err)
            *err = sink;
        return cst;
    }
    if (root < 0)
        return BF_OK;
    bf_error e = {0};
    if (c->rank == root && err)
        e = *err;
    if (c->rank == root && !err)
        e.code = st;
    cst = c->bcast(c, &e, sizeof e, root, &sink);
    if (cst != BF_OK)
        e = sink;
    if (err) {
        *err = e;
        if (c->size > 1 && cst == BF_OK)
            snprintf(err->msg, sizeof err->msg, "rank %d: %s", root, e.msg);
    }
    return e.code != BF_OK ? e.code : BF_ERR_INVALID;
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
             "\"backend\":\"%s\",\"ranks\":%d,\"lr_scaling\":\"%s\",\"init\":%s,"
             "\"train\":%s,\"val\":%s}",
             m->kind->name, bf_json_quote(shape, shape_q, sizeof shape_q), cfg->epochs,
             cfg->batch, cfg->lr, (unsigned long long)cfg->seed, cfg->threads, cfg->patience,
             cfg->min_delta, cfg->clip_norm, obj->name, m->be->name,
             cfg->comm ? cfg->comm->size : 1, bf_lr_scaling_name(cfg->lr_scaling),
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

/* d (mean over B samples) / d out from d (mean over the b of them in dout) / d out:
 * times b / B (a chunk of a step, a rank's shard of the global batch). */
static void scale_to_batch_mean(float *dout, int b, int B, int n_out)
{
    float share = (float)((double)b / B);
    for (size_t i = 0; share != 1.0f && i < (size_t)b * n_out; i++)
        dout[i] *= share;
}

/* Forward, loss and backward on samples [at, at + b) of a step's batch of B: the
 * gradients of the batch mean (the chunk's mean times b / B) added to m->g; *loss the
 * chunk's mean. */
static bf_status train_chunk(bf_model *m, const bf_objective *obj, bf_step_ws *ws,
                             const float *bt, int at, int b, int B, double *loss,
                             bf_error *err)
{
    const bf_backend *be = m->be;
    size_t o = (size_t)at * m->n_out, no = sizeof(float) * (size_t)b * m->n_out;
    const float *x = ws->x_be + (size_t)at * m->input_len;
    bf_status st = m->kind->forward(m, x, b, err);
    if (st == BF_OK)
        st = be->download(ws->out + o, m->out, no, err);
    if (st != BF_OK)
        return st;
    *loss = obj->loss(obj->user, ws->out + o, bt + (size_t)at * obj->target_len, b, m->n_out,
                      ws->dout + o);
    if (!isfinite(*loss))
        return BF_OK;
    scale_to_batch_mean(ws->dout + o, b, B, m->n_out);
    st = be->upload(ws->dout_be + o, ws->dout + o, no, err);
    if (st == BF_OK)
        st = m->kind->backward(m, x, b, ws->dout_be + o, err);
    return st;
}

bf_status bf_train_step(bf_model *m, bf_adam *opt, const bf_objective *obj, bf_step_ws *ws,
                        const float *bx, const float *bt, int B, double clip_norm,
                        double *loss, bf_error *err)
{
    const bf_backend *be = m->be;
    int chunk = m->kind->chunked_training && be->train_chunk > 0 && be->train_chunk < B
                    ? be->train_chunk
                    : B;
    bf_status st = bf_model_reserve(m, chunk, err);
    if (st == BF_OK)
        st = be->upload(ws->x_be, bx, sizeof(float) * (size_t)B * m->input_len, err);
    if (st == BF_OK)
        st = bf_model_zero_grad(m, err);
    double sum = 0, part = 0;
    for (int at = 0; st == BF_OK && at < B; at += chunk) {
        int b = B - at < chunk ? B - at : chunk;
        st = train_chunk(m, obj, ws, bt, at, b, B, &part, err);
        sum += part * b;
        if (st == BF_OK && !isfinite(part)) {
            *loss = part;
            return BF_OK;
        }
    }
    if (st != BF_OK)
        return st;
    *loss = chunk == B ? part : sum / B; /* one chunk: its mean as it is */
    if (clip_norm > 0)
        st = be->grad_norm_clip(m->g, m->params.total, clip_norm, NULL, err);
    if (st == BF_OK)
        st = be->adam_step(opt, m->w, m->g, err);
    return st;
}

/* Fills the host batch from the global rows idx[0..B), which set holds (the task's
 * make_batch, or plain copies). */
static bf_status gather(const bf_model *m, const bf_objective *obj, const bf_arrays *set,
                        const long *idx, int B, uint64_t seed, int epoch, float *bx, float *bt,
                        bf_error *err)
{
    if (obj->make_batch)
        return obj->make_batch(obj->user, set, idx, B, seed, epoch, bx, bt, err);
    size_t L = (size_t)m->input_len, T = (size_t)obj->target_len;
    for (int i = 0; i < B; i++) {
        size_t r = (size_t)(idx[i] - set->first);
        memcpy(bx + i * L, set->x + r * L, sizeof(float) * L);
        memcpy(bt + i * T, set->target + r * T, sizeof(float) * T);
    }
    return BF_OK;
}

/* Bucketed gradient sums over the ranks (DESIGN §10). Buckets are cut from the end
 * of the gradient buffer, where backward finishes first; a bucket's reduction starts
 * as soon as backward reports it final, so it overlaps the earlier layers' backward. */
typedef struct {
    const bf_comm *c;
    float *g;
    size_t bucket, next_end;   /* reductions are started for g[next_end, total) */
    int req[MAX_BUCKETS], n_req;
    bf_status st;
    bf_error *err;
} grad_sync;

static void grad_sync_begin(grad_sync *gs, const bf_comm *c, bf_model *m, size_t bucket,
                            bf_error *err)
{
    size_t total = m->params.total, min = (total + MAX_BUCKETS - 1) / MAX_BUCKETS;
    bucket = bucket ? bucket : DEFAULT_BUCKET_FLOATS;
    *gs = (grad_sync){.c = c, .g = m->g, .bucket = bucket > min ? bucket : min,
                      .next_end = total, .st = BF_OK, .err = err};
}

/* Starts every not yet started bucket that lies wholly in g[from, total). */
static void grad_sync_ready(grad_sync *gs, size_t from)
{
    while (gs->next_end > 0 && gs->st == BF_OK) {
        size_t start = gs->next_end > gs->bucket ? gs->next_end - gs->bucket : 0;
        if (start < from || gs->n_req >= MAX_BUCKETS)
            return;
        gs->st = gs->c->iallreduce_sum_f32(gs->c, gs->g + start, gs->next_end - start,
                                           &gs->req[gs->n_req++], gs->err);
        gs->next_end = start;
    }
}

static void on_grads_final(bf_model *m, size_t from_float, void *user)
{
    grad_sync_ready(user, from_float);
}

/* Starts what is left (all of it when backward failed or was skipped: every rank
 * must make the same calls) and waits for every bucket. */
static bf_status grad_sync_finish(grad_sync *gs, double *wait_s)
{
    grad_sync_ready(gs, 0);
    double t0 = bf_now_seconds();
    for (int i = 0; i < gs->n_req; i++) {
        bf_status st = gs->c->wait(gs->c, gs->req[i], gs->err);
        if (gs->st == BF_OK)
            gs->st = st;
    }
    *wait_s += bf_now_seconds() - t0;
    return gs->st;
}

/* One data-parallel step: the members of the global batch idx[0, nb) whose rows lie
 * in this rank's [lo, hi), in batch order (mine: room for nb). */
static bf_status dist_step(const bf_train_config *cfg, bf_model *m, bf_adam *opt,
                           const bf_objective *obj, bf_step_ws *ws, const bf_arrays *set,
                           long lo, long hi, const long *idx, int nb, long *mine, int epoch,
                           float *bx, float *bt, double *loss, double *wait_s, bf_error *err)
{
    const bf_comm *c = cfg->comm;
    const bf_backend *be = m->be;
    int n = 0;
    for (int i = 0; i < nb; i++)
        if (idx[i] >= lo && idx[i] < hi)
            mine[n++] = idx[i];
    size_t no = sizeof(float) * (size_t)n * m->n_out;
    double part = 0;
    bf_status st = BF_OK;
    if (n > 0) {
        st = gather(m, obj, set, mine, n, cfg->seed, epoch, bx, bt, err);
        if (st == BF_OK)
            st = be->upload(ws->x_be, bx, sizeof(float) * (size_t)n * m->input_len, err);
        if (st == BF_OK)
            st = m->kind->forward(m, ws->x_be, n, err);
        if (st == BF_OK)
            st = be->download(ws->out, m->out, no, err);
        if (st == BF_OK)
            part = obj->loss(obj->user, ws->out, bt, n, m->n_out, ws->dout) * n;
    }
    st = bf_comm_agree(c, st, err);
    if (st == BF_OK)
        st = c->allreduce_sum_f64(c, &part, 1, err);
    if (st != BF_OK)
        return st;
    *loss = part / nb; /* the global batch's mean, the same on every rank */
    if (!isfinite(*loss))
        return BF_OK;
    scale_to_batch_mean(ws->dout, n, nb, m->n_out);
    grad_sync gs;
    grad_sync_begin(&gs, c, m, cfg->bucket_floats, err);
    st = bf_model_zero_grad(m, err);
    if (st == BF_OK && n > 0)
        st = be->upload(ws->dout_be, ws->dout, no, err);
    if (st == BF_OK && n > 0) {
        m->grads_final = on_grads_final;
        m->grads_user = &gs;
        st = m->kind->backward(m, ws->x_be, n, ws->dout_be, err);
        m->grads_final = NULL;
        m->grads_user = NULL;
    }
    bf_error sync_err = {0};
    gs.err = &sync_err;
    bf_status sst = grad_sync_finish(&gs, wait_s);
    if (st == BF_OK && sst != BF_OK) {
        st = sst;
        *err = sync_err;
    }
    st = bf_comm_agree(c, st, err);
    if (st == BF_OK && cfg->clip_norm > 0)
        st = be->grad_norm_clip(m->g, m->params.total, cfg->clip_norm, NULL, err);
    if (st == BF_OK)
        st = be->adam_step(opt, m->w, m->g, err);
    return st;
}

/* Validation outputs: each rank predicts its contiguous share of val into a zeroed
 * vout, and the sum over ranks (adding zeros is exact) gives every rank all of them. */
static bf_status dist_predict(const bf_comm *c, bf_model *m, const bf_arrays *va, int B,
                              float *vout, bf_error *err)
{
    long lo = va->n * c->rank / c->size, hi = va->n * (c->rank + 1) / c->size;
    size_t nv = (size_t)va->n * m->n_out;
    memset(vout, 0, sizeof(float) * nv);
    bf_status st = hi > lo ? bf_model_predict(m, va->x + (size_t)lo * m->input_len, hi - lo, B,
                                              vout + (size_t)lo * m->n_out, err)
                           : BF_OK;
    st = bf_comm_agree(c, st, err);
    int req = 0;
    if (st == BF_OK)
        st = c->iallreduce_sum_f32(c, vout, nv, &req, err);
    if (st == BF_OK)
        st = c->wait(c, req, err);
    return st;
}

/* The learning rate of global step `step` (0-based, in this run) under lr scaling. */
static float scaled_lr(const bf_train_config *cfg, long step, long steps_per_epoch)
{
    int P = cfg->comm ? cfg->comm->size : 1;
    switch (cfg->lr_scaling) {
    case BF_LR_SCALING_SQRT: return (float)(cfg->lr * sqrt((double)P));
    case BF_LR_SCALING_LINEAR: {
        /* Goyal et al. 2017 §2.2: from lr to P lr over the warm-up, linearly per step */
        double T = (double)cfg->warmup_epochs * (double)steps_per_epoch;
        double f = T > 0 && step < T ? 1 + (P - 1) * (step / T) : P;
        return (float)(cfg->lr * f);
    }
    default: return (float)cfg->lr;
    }
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
    const bf_comm *comm = cfg->comm;
    /* the training rows: global [0, total), this rank's [lo, hi) of them */
    const int whole = tr->total == 0;
    const long total = whole ? tr->n : tr->total;
    long lo = whole ? 0 : tr->first, hi = lo + tr->n;
    if (whole && comm) {
        lo = total * comm->rank / comm->size;
        hi = total * (comm->rank + 1) / comm->size;
    }
    bf_status st = bf_train_config_check(cfg, err);
    if (st == BF_OK && (total < 1 || va->n < 1))
        st = bf_error_set(err, BF_ERR_INVALID, "training needs at least one training and one "
                          "validation sample (got %ld and %ld)", total, va->n);
    if (st == BF_OK && (tr->n < 0 || (whole && tr->first != 0) ||
                        (!whole && (tr->first < 0 || tr->first > total - tr->n))))
        st = bf_error_set(err, BF_ERR_INVALID, "training rows [%ld, %ld) do not lie in a set "
                          "of %ld", tr->first, tr->first + tr->n, total);
    if (st == BF_OK && !comm && tr->n != total)
        st = bf_error_set(err, BF_ERR_INVALID, "training rows [%ld, %ld) of %ld: a shard needs "
                          "several ranks (cfg->comm)", tr->first, tr->first + tr->n, total);
    st = bf_comm_agree(comm, st, err); /* entry is a meeting point of all ranks */
    if (st == BF_OK && comm) {
        /* the ranks' shards must make up one set, or they would walk different batches */
        double sums[3] = {(double)total, (double)tr->n, whole};
        st = comm->allreduce_sum_f64(comm, sums, 3, err);
        if (st == BF_OK && (sums[0] != (double)total * comm->size ||
                            (sums[2] != 0 && sums[2] != comm->size) ||
                            (!whole && sums[1] != (double)total)))
            st = bf_error_set(err, BF_ERR_INVALID, "the ranks' training shards do not make up "
                              "one set of %ld rows", total);
    }
    if (st != BF_OK)
        return st;
    config_json(cfg, m, obj, info->training_config, sizeof info->training_config);
    snprintf(info->model, sizeof info->model, "%s", m->kind->name);
    info->shape = m->shape;
    int first_epoch = info->epoch; /* continues the count on a warm restart */

    int B = cfg->batch;
    bf_step_ws *ws = NULL;
    long *idx = malloc(sizeof(long) * (size_t)total);
    long *mine = comm ? malloc(sizeof(long) * (size_t)B) : NULL;
    float *vout = malloc(sizeof(float) * (size_t)va->n * m->n_out);
    float *bx = malloc(sizeof(float) * (size_t)B * m->input_len);
    float *bt = malloc(sizeof(float) * ((size_t)B * obj->target_len + 1));
    if (!idx || !vout || !bx || !bt || (comm && !mine))
        st = bf_error_set(err, BF_ERR_NOMEM, "training: out of memory");
    if (st == BF_OK)
        st = bf_step_ws_create(m, B, &ws, err);
    if (st == BF_OK)
        st = bf_model_reserve(m, B, err);
    int rank0 = !comm || comm->rank == 0;
    if (comm)
        st = bf_comm_agree(comm, st, err);
    long steps_per_epoch = (total + B - 1) / B, step_no = 0;

    double best = INFINITY, best_for_patience = INFINITY, t_start = bf_now_seconds();
    int wait = 0;
    for (int e = 0; st == BF_OK && e < cfg->epochs; e++) {
        int epoch = first_epoch + e + 1;
        double t0 = bf_now_seconds(), sum = 0;
        shuffle(idx, total, cfg->seed, epoch);
        bf_progress prog;
        char label[64];
        snprintf(label, sizeof label, "epoch %d/%d", epoch, first_epoch + cfg->epochs);
        double wait_s = 0;
        long steps = 0;
        if (cfg->progress && rank0)
            bf_progress_begin(&prog, label, (uint64_t)total);
        for (long i = 0; i < total; i += B) {
            int nb = (int)(total - i < B ? total - i : B);
            double loss = 0;
            if (comm) {
                opt->lr = scaled_lr(cfg, step_no, steps_per_epoch);
                st = dist_step(cfg, m, opt, obj, ws, tr, lo, hi, idx + i, nb, mine, epoch, bx,
                               bt, &loss, &wait_s, err);
            } else {
                st = gather(m, obj, tr, idx + i, nb, cfg->seed, epoch, bx, bt, err);
                if (st == BF_OK)
                    st = bf_train_step(m, opt, obj, ws, bx, bt, nb, cfg->clip_norm, &loss,
                                       err);
            }
            step_no++;
            steps++;
            if (st == BF_OK && !isfinite(loss))
                st = diverged(cfg, res, loss, epoch, i / B + 1, err);
            if (st != BF_OK)
                break;
            sum += loss * nb;
            if (cfg->progress && rank0)
                bf_progress_add(&prog, (uint64_t)nb);
        }
        if (cfg->progress && rank0)
            bf_progress_end(&prog);
        if (st != BF_OK)
            break;
        double t_train = bf_now_seconds() - t0;

        bf_epoch_log log = {.epoch = epoch, .epochs = first_epoch + cfg->epochs,
                            .train_loss = sum / total, .samples_per_s = total / t_train,
                            .val_out = vout, .task_metrics = obj->metrics,
                            .allreduce_s = wait_s, .steps = steps};
        st = comm ? dist_predict(comm, m, va, B, vout, err)
                  : bf_model_predict(m, va->x, va->n, B, vout, err);
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
            /* rank 0 alone writes; the others learn whether it could */
            st = rank0 ? bf_checkpoint_save(cfg->out_path, m, info, opt, err) : BF_OK;
            st = bf_comm_agree(comm, st, err);
            if (st != BF_OK)
                break;
            log.improved = 1;
            if (obj->metrics && obj->best_metrics)
                memcpy(obj->best_metrics, obj->metrics, obj->metrics_size);
            res->best_epoch = epoch;
            res->best_val_score = best;
        }
        log.seconds = bf_now_seconds() - t0;
        if (cfg->on_epoch && rank0)
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
    free(mine);
    free(vout);
    free(bx);
    free(bt);
    bf_step_ws_destroy(ws);
    return st;
}
