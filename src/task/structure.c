/* task/structure.c — the structure-finding task (seed 001, DESIGN §4): per-pattern
 * min-max scaling, scaled lattice labels, the loss CrossEntropy + Eq. 6, metrics in
 * scaled and physical units, and the checkpoint metadata that turns predictions back
 * into Angstrom and degrees (label scaling, class names by label). */
#include "braggflow/task.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_REG (BF_N_TARGETS + 1)     /* a, c, alpha (scaled) + log sigma^2 */
#define TARGET_LEN (1 + BF_N_TARGETS) /* per sample: label (as a float), 3 scaled values */

const bf_label_scaling bf_label_scaling_seed = {{3.5, 3.5, 30.0}, {1.0, 1.0, 90.0}};
const char *const bf_target_names[BF_N_TARGETS] = {"a", "c", "alpha"};
const char *const bf_target_units[BF_N_TARGETS] = {"A", "A", "deg"};

/* ---- checkpoint metadata --------------------------------------------------------- */

bf_status bf_structure_meta_write(const bf_structure_meta *sm, bf_checkpoint_info *info,
                                  bf_error *err)
{
    char offset[96], scale[96], classes[BF_MAX_MODEL_CLASSES * 33] = "";
    const bf_label_scaling *sc = &sm->scaling;
    snprintf(offset, sizeof offset, "%.17g %.17g %.17g", sc->offset[0], sc->offset[1],
             sc->offset[2]);
    snprintf(scale, sizeof scale, "%.17g %.17g %.17g", sc->scale[0], sc->scale[1], sc->scale[2]);
    for (int c = 0; c < sm->n_classes && c < BF_MAX_MODEL_CLASSES; c++) {
        if (strchr(sm->class_names[c], ','))
            return bf_error_set(err, BF_ERR_INVALID, "class name '%s' contains a comma",
                                sm->class_names[c]);
        strcat(classes, c ? "," : "");
        strcat(classes, sm->class_names[c]);
    }
    const char *kv[][2] = {{"task", "structure"},      {"input_scaling", "minmax_per_pattern"},
                           {"targets", "a c alpha"},   {"target_units", "A A deg"},
                           {"label_offset", offset},   {"label_scale", scale},
                           {"class_names", classes}};
    bf_status st = BF_OK;
    for (size_t i = 0; st == BF_OK && i < sizeof kv / sizeof kv[0]; i++)
        st = bf_checkpoint_info_set(info, kv[i][0], kv[i][1], err);
    if (st != BF_OK || !sm->has_grid)
        return st;
    const bf_x_grid *g = &sm->grid;
    static const char *const spacing[] = {"geometric", "linear", "array"};
    char count[32], first[40], last[40];
    snprintf(count, sizeof count, "%d", g->n);
    snprintf(first, sizeof first, "%.17g", g->first);
    snprintf(last, sizeof last, "%.17g", g->last);
    const char *gkv[][2] = {{"x_unit", bf_x_unit_name(g->unit)}, {"x_count", count},
                            {"x_first", first},   {"x_last", last},
                            {"x_spacing", spacing[g->spacing]},
                            {"x_sha256", g->spacing == BF_GRID_ARRAY ? g->sha256 : ""}};
    for (size_t i = 0; st == BF_OK && i < sizeof gkv / sizeof gkv[0]; i++)
        st = bf_checkpoint_info_set(info, gkv[i][0], gkv[i][1], err);
    return st;
}

/* The grid keys (bf_structure_meta_write), when the checkpoint has them. */
static bf_status grid_meta_read(const bf_checkpoint_info *info, const char *path,
                                bf_structure_meta *out, bf_error *err)
{
    const char *unit = bf_checkpoint_info_get(info, "x_unit");
    if (!unit)
        return BF_OK;
    bf_x_grid *g = &out->grid;
    const char *count = bf_checkpoint_info_get(info, "x_count"),
               *first = bf_checkpoint_info_get(info, "x_first"),
               *last = bf_checkpoint_info_get(info, "x_last"),
               *spacing = bf_checkpoint_info_get(info, "x_spacing"),
               *sha = bf_checkpoint_info_get(info, "x_sha256");
    double v[3];
    if (bf_x_unit_parse(unit, &g->unit))
        return bf_error_set(err, BF_ERR_INVALID, "%s: __metadata__ x_unit '%s' is not tof_us or "
                            "two_theta_deg", path, unit);
    if (!count || !first || !last || !spacing || bf_parse_doubles(count, v, 1) ||
        bf_parse_doubles(first, v + 1, 1) || bf_parse_doubles(last, v + 2, 1) || v[0] < 2 ||
        v[0] > (1 << 24) || v[0] != (int)v[0] || !(v[2] > v[1]))
        return bf_error_set(err, BF_ERR_INVALID, "%s: __metadata__ x_count, x_first, x_last: "
                            "expected a count >= 2 and first < last", path);
    g->n = (int)v[0];
    g->first = v[1];
    g->last = v[2];
    if (!strcmp(spacing, "geometric") && g->first > 0)
        g->spacing = BF_GRID_GEOMETRIC;
    else if (!strcmp(spacing, "linear"))
        g->spacing = BF_GRID_LINEAR;
    else if (!strcmp(spacing, "array"))
        g->spacing = BF_GRID_ARRAY;
    else
        return bf_error_set(err, BF_ERR_INVALID, "%s: __metadata__ x_spacing '%s' is not "
                            "geometric (first > 0), linear or array", path, spacing);
    snprintf(g->sha256, sizeof g->sha256, "%s", sha ? sha : "");
    out->has_grid = 1;
    return BF_OK;
}

bf_status bf_structure_meta_read(const bf_checkpoint_info *info, const bf_model *m,
                                 const char *path, bf_structure_meta *out, bf_error *err)
{
    memset(out, 0, sizeof *out);
    const char *need[] = {"label_offset", "label_scale", "class_names"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (!bf_checkpoint_info_get(info, need[i]))
            return bf_error_set(err, BF_ERR_INVALID, "%s: __metadata__ lacks '%s'", path,
                                need[i]);
    if (bf_parse_doubles(bf_checkpoint_info_get(info, "label_offset"), out->scaling.offset, 3) ||
        bf_parse_doubles(bf_checkpoint_info_get(info, "label_scale"), out->scaling.scale, 3))
        return bf_error_set(err, BF_ERR_INVALID, "%s: __metadata__ label_offset/label_scale: "
                            "expected three numbers each", path);
    for (int i = 0; i < 3; i++)
        if (out->scaling.scale[i] == 0)
            return bf_error_set(err, BF_ERR_INVALID, "%s: __metadata__ label_scale has a zero",
                                path);
    out->n_classes = m->n_out - N_REG;
    if (out->n_classes < 2 || out->n_classes > BF_MAX_MODEL_CLASSES)
        return bf_error_set(err, BF_ERR_INVALID, "%s: %d classes (need 2..%d)", path,
                            out->n_classes, BF_MAX_MODEL_CLASSES);
    const char *names = bf_checkpoint_info_get(info, "class_names");
    for (int c = 0; c < out->n_classes; c++) {
        size_t len = strcspn(names, ",");
        if (len == 0 || len >= sizeof out->class_names[c])
            return bf_error_set(err, BF_ERR_INVALID,
                                "%s: __metadata__ class_names: expected %d comma-separated names",
                                path, out->n_classes);
        memcpy(out->class_names[c], names, len);
        names += len + (names[len] == ',');
    }
    return grid_meta_read(info, path, out, err);
}

bf_status bf_structure_load(const char *path, const bf_backend *be, bf_model **m,
                            bf_checkpoint_info *info, bf_structure_meta *meta, bf_error *err)
{
    bf_status st = bf_task_load("structure", path, be, m, info, err);
    if (st == BF_OK && (st = bf_structure_meta_read(info, *m, path, meta, err)) != BF_OK) {
        bf_model_destroy(*m);
        *m = NULL;
    }
    return st;
}

/* ---- inputs -------------------------------------------------------------------- */

bf_status bf_structure_inputs(const bf_model *m, const bf_dataset *d, const char *name,
                              const bf_label_scaling *sc, float **x_out, int32_t **labels_out,
                              float **targets_out, bf_error *err)
{
    int L = m->input_len, C = m->n_out - N_REG;
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
    bf_minmax_scale_rows(x, d->n, L);
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

bf_status bf_structure_evaluate(const char *path, const bf_dataset *d, const char *name,
                                int batch, bf_metrics *mt, bf_error *err)
{
    bf_model *m = NULL;
    bf_checkpoint_info info;
    bf_structure_meta meta;
    float *x = NULL, *targets = NULL, *out = NULL;
    int32_t *labels = NULL;
    bf_status st = bf_structure_load(path, bf_backend_cpu(), &m, &info, &meta, err);
    if (st == BF_OK)
        st = bf_structure_inputs(m, d, name, &meta.scaling, &x, &labels, &targets, err);
    if (st == BF_OK && !(out = malloc(sizeof(float) * (size_t)d->n * m->n_out)))
        st = bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    if (st == BF_OK)
        st = bf_model_predict(m, x, d->n, batch, out, err);
    if (st == BF_OK)
        bf_structure_metrics(out, labels, targets, d->n, meta.n_classes, &meta.scaling, mt);
    free(x);
    free(labels);
    free(targets);
    free(out);
    bf_model_destroy(m);
    return st;
}

/* ---- training ------------------------------------------------------------------- */

typedef struct {
    int C;
    const bf_label_scaling *sc;
    int32_t *labels;              /* a batch's labels (batch capacity) */
    float *dl, *dr;               /* heads' outputs, then their gradients: (B, C), (B, 4) */
    float *bt;                    /* a batch's scaled targets (B, 3) */
    const int32_t *val_labels;    /* the validation set's, for the metrics */
    const float *val_targets;     /* (n_val, 3) */
    bf_metrics val;               /* the last validation's */
} structure_objective;

/* CrossEntropy(logits) + Eq. 6(regression), both means over the batch. */
static double structure_loss(void *user, const float *out, const float *target, int B, int n_out,
                             float *dout)
{
    structure_objective *o = user;
    int C = o->C;
    for (int i = 0; i < B; i++) { /* the heads apart, the targets unpacked */
        const float *row = out + (size_t)i * n_out, *t = target + (size_t)i * TARGET_LEN;
        o->labels[i] = (int32_t)t[0];
        memcpy(o->dl + (size_t)i * C, row, sizeof(float) * C);
        memcpy(o->dr + (size_t)i * N_REG, row + C, sizeof(float) * N_REG);
        memcpy(o->bt + (size_t)i * BF_N_TARGETS, t + 1, sizeof(float) * BF_N_TARGETS);
    }
    double class_loss = bf_cross_entropy_loss(dout ? o->dl : NULL, o->dl, o->labels, B, C, 1);
    double reg_loss = bf_hetero_loss(dout ? o->dr : NULL, o->dr, o->bt, B, BF_N_TARGETS, 1);
    if (dout)
        for (int i = 0; i < B; i++) {
            float *d = dout + (size_t)i * n_out;
            memcpy(d, o->dl + (size_t)i * C, sizeof(float) * C);
            memcpy(d + C, o->dr + (size_t)i * N_REG, sizeof(float) * N_REG);
        }
    return class_loss + reg_loss;
}

static double structure_score(void *user, const float *out, const float *target, long n,
                              int n_out)
{
    structure_objective *o = user;
    bf_structure_metrics(out, o->val_labels, o->val_targets, n, o->C, o->sc, &o->val);
    return o->val.loss;
}

/* Class names by label, from the training set (its config order + labels). */
static void class_names_by_label(const bf_dataset *d, int C, bf_structure_meta *meta)
{
    meta->n_classes = C;
    for (int c = 0; c < C && c < BF_MAX_MODEL_CLASSES; c++) {
        const char *builtin = bf_class_builtin_name(c);
        snprintf(meta->class_names[c], sizeof meta->class_names[c], "%s",
                 builtin ? builtin : "class");
    }
    for (int k = 0; k < d->n_classes; k++) {
        int lab = d->class_labels[k];
        if (lab >= 0 && lab < C && d->class_names[k][0])
            snprintf(meta->class_names[lab], sizeof meta->class_names[lab], "%s",
                     d->class_names[k]);
    }
}

/* A warm start from cfg->init_path (weights, optimiser state, scaling and class
 * names from the checkpoint) or a fresh model shaped by the training set. */
static bf_status open_model(const bf_train_config *cfg, int hidden, const bf_dataset *train,
                            const bf_backend *be, bf_model **m, bf_adam *opt,
                            bf_checkpoint_info *info, bf_structure_meta *meta, bf_error *err)
{
    if (cfg->init_path) {
        bf_status st = bf_task_warm_start("structure", cfg->init_path, be, cfg->lr, m, opt,
                                          info, err);
        return st == BF_OK ? bf_structure_meta_read(info, *m, cfg->init_path, meta, err) : st;
    }
    const char *name = cfg->model ? cfg->model : "structure_net";
    const bf_model_kind *kind;
    bf_status st = bf_task_model_kind("structure", name, &kind, err);
    if (st != BF_OK)
        return st;
    bf_model_shape shape = kind->default_shape;
    int C = 3; /* the seed's classes, or as many as the set's labels need */
    for (int k = 0; k < train->n_classes; k++)
        if (train->class_labels[k] + 1 > C)
            C = train->class_labels[k] + 1;
    st = bf_model_dim_set(kind, &shape, "input_len", train->length, err);
    if (st == BF_OK)
        st = bf_model_dim_set(kind, &shape, "n_classes", C, err);
    if (st == BF_OK && hidden > 0)
        st = bf_model_dim_set(kind, &shape, "hidden", hidden, err);
    if (st == BF_OK)
        st = bf_model_create(name, &shape, be, cfg->seed, m, err);
    if (st == BF_OK)
        st = bf_adam_init(opt, be, (*m)->params.total, (float)cfg->lr, err);
    memset(info, 0, sizeof *info);
    meta->scaling = bf_label_scaling_seed;
    class_names_by_label(train, C, meta);
    return st;
}

/* (n, 4) rows [label, 3 scaled targets] for the engine. */
static float *pack_targets(const int32_t *labels, const float *targets, long n)
{
    float *t = malloc(sizeof(float) * (size_t)n * TARGET_LEN);
    for (long i = 0; t && i < n; i++) {
        t[i * TARGET_LEN] = (float)labels[i];
        memcpy(t + i * TARGET_LEN + 1, targets + i * BF_N_TARGETS, sizeof(float) * BF_N_TARGETS);
    }
    return t;
}

bf_status bf_structure_train(const bf_train_config *cfg, int hidden, const bf_dataset *train,
                             const bf_dataset *val, bf_structure_result *res, bf_error *err)
{
    memset(res, 0, sizeof *res);
    bf_status st = bf_train_config_check(cfg, err);
    if (st != BF_OK)
        return st; /* the same on every rank: cfg is */
    const bf_backend *be = cfg->backend ? cfg->backend : bf_backend_cpu();
    be->set_threads(cfg->threads);
    bf_model *m = NULL;
    bf_adam opt = {0};
    bf_checkpoint_info *info = calloc(1, sizeof *info);
    bf_structure_meta meta = {0};
    float *tx = NULL, *tt = NULL, *vx = NULL, *vt = NULL, *tpack = NULL, *vpack = NULL;
    int32_t *tl = NULL, *vl = NULL;
    structure_objective o = {0};
    char tname[512];
    bf_task_train_name(cfg, train->n, tname, sizeof tname);
    st = info ? open_model(cfg, hidden, train, be, &m, &opt, info, &meta, err)
              : bf_error_set(err, BF_ERR_NOMEM, "training: out of memory");
    if (st == BF_OK && train->x) { /* the model knows its grid: predict --pattern */
        st = bf_x_grid_describe(train->x, train->length, train->x_unit, &meta.grid, err);
        meta.has_grid = st == BF_OK;
        if (st != BF_OK)
            bf_error_prefix(err, "%s", tname);
    }
    if (st == BF_OK)
        st = bf_structure_meta_write(&meta, info, err);
    if (st == BF_OK)
        st = bf_structure_inputs(m, train, tname, &meta.scaling, &tx, &tl, &tt, err);
    if (st == BF_OK)
        st = bf_structure_inputs(m, val, cfg->val_name ? cfg->val_name : "validation set",
                                 &meta.scaling, &vx, &vl, &vt, err);
    if (st == BF_OK) {
        tpack = pack_targets(tl, tt, train->n);
        vpack = pack_targets(vl, vt, val->n);
        size_t B = (size_t)cfg->batch;
        o.labels = malloc(sizeof(int32_t) * B);
        o.dl = malloc(sizeof(float) * B * (size_t)meta.n_classes);
        o.dr = malloc(sizeof(float) * B * N_REG);
        o.bt = malloc(sizeof(float) * B * BF_N_TARGETS);
        if (!tpack || !vpack || !o.labels || !o.dl || !o.dr || !o.bt)
            st = bf_error_set(err, BF_ERR_NOMEM, "training: out of memory");
    }
    /* a rank whose shard failed (a NaN pattern, a bad label) stops every rank here,
     * before the others wait for it inside bf_train's collectives */
    st = bf_comm_agree(cfg->comm, st, err);
    if (st == BF_OK) {
        o.C = meta.n_classes;
        o.sc = &meta.scaling;
        o.val_labels = vl;
        o.val_targets = vt;
        bf_objective obj = {.name = "cross_entropy+hetero_eq6", .target_len = TARGET_LEN,
                            .loss = structure_loss, .score = structure_score, .user = &o,
                            .metrics = &o.val, .best_metrics = &res->best_val,
                            .metrics_size = sizeof o.val};
        snprintf(info->train_sha256, sizeof info->train_sha256, "%s", cfg->train_sha256);
        snprintf(info->val_sha256, sizeof info->val_sha256, "%s", cfg->val_sha256);
        bf_arrays tr = {tx, tpack, train->n, cfg->train_first, cfg->train_total},
                  va = {vx, vpack, val->n, 0, 0};
        st = bf_train(cfg, m, &opt, &obj, &tr, &va, info, &res->train, err);
    }
    free(tx), free(tt), free(tl), free(vx), free(vt), free(vl), free(tpack), free(vpack);
    free(o.labels), free(o.dl), free(o.dr), free(o.bt);
    free(info);
    bf_adam_free(&opt);
    bf_model_destroy(m);
    return st;
}

int bf_structure_decode(const bf_structure_meta *meta, const float *out, double *prob,
                        double value[BF_N_TARGETS], double sigma[BF_N_TARGETS])
{
    int C = meta->n_classes, best = 0;
    const float *reg = out + C;
    for (int c = 1; c < C; c++)
        if (out[c] > out[best])
            best = c;
    double sum = 0;
    for (int c = 0; c < C; c++)
        sum += prob[c] = exp((double)out[c] - out[best]);
    for (int c = 0; c < C; c++)
        prob[c] /= sum;
    /* sigma in scaled units is exp(s / 2); scaled = (physical - offset) / scale */
    double s = exp(0.5 * reg[BF_N_TARGETS]);
    for (int k = 0; k < BF_N_TARGETS; k++) {
        value[k] = reg[k] * meta->scaling.scale[k] + meta->scaling.offset[k];
        sigma[k] = s * fabs(meta->scaling.scale[k]);
    }
    return best;
}
