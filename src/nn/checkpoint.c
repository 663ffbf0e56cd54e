/* nn/checkpoint.c — models to and from safetensors files.
 *
 * The tensors are the model's state_dict under PyTorch's names (F32, C order),
 * so `model.load_state_dict(load_file(path))` works in the seed's code; the
 * metadata strings say what the network is (kind, shape), how its inputs and
 * labels were scaled, the class names by label, and where it came from. */
#include "braggflow/nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT "braggflow.checkpoint.v1"

const bf_label_scaling bf_label_scaling_seed = {{3.5, 3.5, 30.0}, {1.0, 1.0, 90.0}};
const char *const bf_target_names[BF_N_TARGETS] = {"a", "c", "alpha"};
const char *const bf_target_units[BF_N_TARGETS] = {"A", "A", "deg"};

void bf_checkpoint_optim_path(const char *path, char *out, size_t outsz)
{
    size_t n = strlen(path), k = strlen(".safetensors");
    if (n > k && !strcmp(path + n - k, ".safetensors"))
        snprintf(out, outsz, "%.*s.optim.safetensors", (int)(n - k), path);
    else
        snprintf(out, outsz, "%s.optim", path);
}

static bf_st_tensor param_tensor(const bf_param_info *p, const float *base, const char *prefix)
{
    bf_st_tensor t = {.ndim = p->ndim, .data = base + p->offset,
                      .nbytes = p->count * sizeof(float)};
    snprintf(t.name, sizeof t.name, "%s%s", prefix, p->name);
    strcpy(t.dtype, "F32");
    for (int d = 0; d < p->ndim; d++)
        t.shape[d] = p->shape[d];
    return t;
}

/* ---- save ---------------------------------------------------------------------- */

static bf_status save_model(const char *path, const bf_model *m, const bf_checkpoint_info *info,
                            bf_error *err)
{
    bf_st_tensor t[BF_MAX_PARAMS];
    for (int i = 0; i < m->params.n; i++)
        t[i] = param_tensor(&m->params.info[i], m->params.value, "");

    char shape[64], offset[96], scale[96], classes[BF_MAX_MODEL_CLASSES * 33] = "";
    char epoch[32], val_loss[32];
    snprintf(shape, sizeof shape, "%d %d %d", m->shape.input_len, m->shape.hidden,
             m->shape.n_classes);
    snprintf(offset, sizeof offset, "%.17g %.17g %.17g", info->scaling.offset[0],
             info->scaling.offset[1], info->scaling.offset[2]);
    snprintf(scale, sizeof scale, "%.17g %.17g %.17g", info->scaling.scale[0],
             info->scaling.scale[1], info->scaling.scale[2]);
    for (int c = 0; c < m->shape.n_classes && c < BF_MAX_MODEL_CLASSES; c++) {
        if (strchr(info->class_names[c], ','))
            return bf_error_set(err, BF_ERR_INVALID, "%s: class name '%s' contains a comma",
                                path, info->class_names[c]);
        strcat(classes, c ? "," : "");
        strcat(classes, info->class_names[c]);
    }
    snprintf(epoch, sizeof epoch, "%d", info->epoch);
    snprintf(val_loss, sizeof val_loss, "%.9g", info->val_loss);
    bf_st_meta meta[] = {
        {"format", FORMAT},
        {"braggflow_version", BF_VERSION},
        {"model", (char *)m->kind->name},
        {"shape", shape},   /* input_len hidden n_classes */
        {"input_scaling", "minmax_per_pattern"},
        {"targets", "a c alpha"},
        {"target_units", "A A deg"},
        {"label_offset", offset},
        {"label_scale", scale},
        {"class_names", classes},
        {"epoch", epoch},
        {"val_loss", val_loss},
        {"training_config", (char *)info->training_config},
        {"train_sha256", (char *)info->train_sha256},
        {"val_sha256", (char *)info->val_sha256},
    };
    return bf_safetensors_write(path, t, m->params.n, meta, (int)(sizeof meta / sizeof meta[0]),
                                err);
}

static bf_status save_optim(const char *path, const bf_model *m, const bf_adam *opt,
                            bf_error *err)
{
    bf_st_tensor t[2 * BF_MAX_PARAMS];
    for (int i = 0; i < m->params.n; i++) {
        t[2 * i] = param_tensor(&m->params.info[i], opt->m, "exp_avg.");
        t[2 * i + 1] = param_tensor(&m->params.info[i], opt->v, "exp_avg_sq.");
    }
    char step[32], lr[32], b1[32], b2[32], eps[32];
    snprintf(step, sizeof step, "%ld", opt->step);
    snprintf(lr, sizeof lr, "%.9g", opt->lr);
    snprintf(b1, sizeof b1, "%.9g", opt->beta1);
    snprintf(b2, sizeof b2, "%.9g", opt->beta2);
    snprintf(eps, sizeof eps, "%.9g", opt->eps);
    bf_st_meta meta[] = {{"format", FORMAT ".adam"}, {"step", step}, {"lr", lr},
                         {"beta1", b1},  {"beta2", b2}, {"eps", eps}};
    return bf_safetensors_write(path, t, 2 * m->params.n, meta, 6, err);
}

bf_status bf_checkpoint_save(const char *path, const bf_model *m, const bf_checkpoint_info *info,
                             const bf_adam *opt, bf_error *err)
{
    /* sidecar first: a crash in between leaves a model with a newer optimiser
     * state at worst, never a model without one */
    if (opt) {
        char optim[4200];
        bf_checkpoint_optim_path(path, optim, sizeof optim);
        bf_status st = save_optim(optim, m, opt, err);
        if (st != BF_OK)
            return st;
    }
    return save_model(path, m, info, err);
}

/* ---- load ---------------------------------------------------------------------- */

static int parse_numbers(const char *s, double *v, int n)
{
    char *end;
    for (int i = 0; i < n; i++) {
        v[i] = strtod(s, &end);
        if (end == s || !isfinite(v[i]))
            return -1;
        s = end;
    }
    while (*s == ' ')
        s++;
    return *s ? -1 : 0;
}

/* Copies tensor `name` (F32, expected shape) into dst. */
static bf_status load_tensor(const bf_safetensors *st, const char *path, const char *name,
                             const bf_param_info *p, float *dst, bf_error *err)
{
    const bf_st_tensor *t = bf_safetensors_find(st, name);
    if (!t)
        return bf_error_set(err, BF_ERR_INVALID, "%s: tensor '%s' is missing", path, name);
    if (strcmp(t->dtype, "F32"))
        return bf_error_set(err, BF_ERR_INVALID, "%s: tensor '%s' is %s, expected F32", path,
                            name, t->dtype);
    int same = t->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++)
        same = t->shape[d] == p->shape[d];
    if (!same) {
        char want[64] = "", got[64] = "";
        for (int d = 0; d < p->ndim; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", d ? "," : "",
                     p->shape[d]);
        for (int d = 0; d < t->ndim; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "",
                     (long long)t->shape[d]);
        return bf_error_set(err, BF_ERR_INVALID, "%s: tensor '%s' has shape [%s], model needs [%s]",
                            path, name, got, want);
    }
    memcpy(dst, t->data, p->count * sizeof(float));
    for (size_t i = 0; i < p->count; i++)
        if (!isfinite(dst[i]))
            return bf_error_set(err, BF_ERR_INVALID, "%s: tensor '%s' element %zu is not finite",
                                path, name, i);
    return BF_OK;
}

static bf_status read_info(const bf_safetensors *st, const char *path, bf_checkpoint_info *info,
                           bf_error *err)
{
    const char *fmt = bf_safetensors_meta(st, "format");
    if (!fmt || strcmp(fmt, FORMAT))
        return bf_error_set(err, BF_ERR_INVALID,
                            "%s: __metadata__ format is '%s', expected '%s' (not a braggflow "
                            "checkpoint?)", path, fmt ? fmt : "(missing)", FORMAT);
    const char *need[] = {"model", "shape", "label_offset", "label_scale", "class_names"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (!bf_safetensors_meta(st, need[i]))
            return bf_error_set(err, BF_ERR_INVALID, "%s: __metadata__ lacks '%s'", path,
                                need[i]);
    memset(info, 0, sizeof *info);
    snprintf(info->model, sizeof info->model, "%s", bf_safetensors_meta(st, "model"));
    double shape[3];
    if (parse_numbers(bf_safetensors_meta(st, "shape"), shape, 3) || shape[0] < 1 ||
        shape[0] > 1e7 || shape[1] < 1 || shape[1] > 1e5 || shape[2] < 2 ||
        shape[2] > BF_MAX_MODEL_CLASSES)
        return bf_error_set(err, BF_ERR_INVALID,
                            "%s: __metadata__ shape '%s': expected 'input_len hidden n_classes'",
                            path, bf_safetensors_meta(st, "shape"));
    info->shape = (bf_model_shape){(int)shape[0], (int)shape[1], (int)shape[2]};
    if (parse_numbers(bf_safetensors_meta(st, "label_offset"), info->scaling.offset, 3) ||
        parse_numbers(bf_safetensors_meta(st, "label_scale"), info->scaling.scale, 3))
        return bf_error_set(err, BF_ERR_INVALID, "%s: __metadata__ label_offset/label_scale: "
                            "expected three numbers each", path);
    for (int i = 0; i < 3; i++)
        if (info->scaling.scale[i] == 0)
            return bf_error_set(err, BF_ERR_INVALID, "%s: __metadata__ label_scale has a zero",
                                path);
    const char *names = bf_safetensors_meta(st, "class_names");
    for (int c = 0; c < info->shape.n_classes; c++) {
        size_t len = strcspn(names, ",");
        if (len == 0 || len >= sizeof info->class_names[c])
            return bf_error_set(err, BF_ERR_INVALID,
                                "%s: __metadata__ class_names: expected %d comma-separated names",
                                path, info->shape.n_classes);
        memcpy(info->class_names[c], names, len);
        names += len + (names[len] == ',');
    }
    const char *s;
    if ((s = bf_safetensors_meta(st, "epoch")))
        info->epoch = atoi(s);
    info->val_loss = (s = bf_safetensors_meta(st, "val_loss")) ? atof(s) : NAN;
    if ((s = bf_safetensors_meta(st, "training_config")))
        snprintf(info->training_config, sizeof info->training_config, "%s", s);
    if ((s = bf_safetensors_meta(st, "train_sha256")))
        snprintf(info->train_sha256, sizeof info->train_sha256, "%s", s);
    if ((s = bf_safetensors_meta(st, "val_sha256")))
        snprintf(info->val_sha256, sizeof info->val_sha256, "%s", s);
    if ((s = bf_safetensors_meta(st, "braggflow_version")))
        snprintf(info->version, sizeof info->version, "%s", s);
    return BF_OK;
}

static bf_status load_optim(const char *optim, const bf_model *m, bf_adam *opt, int *have,
                            bf_error *err)
{
    FILE *f = fopen(optim, "rb");
    if (!f)
        return BF_OK; /* no sidecar: a fresh optimiser */
    fclose(f);
    bf_safetensors st = {0};
    bf_status rc = bf_safetensors_read(optim, &st, err);
    const char *fmt = rc == BF_OK ? bf_safetensors_meta(&st, "format") : NULL;
    const char *step = rc == BF_OK ? bf_safetensors_meta(&st, "step") : NULL;
    if (rc == BF_OK && (!fmt || strcmp(fmt, FORMAT ".adam") || !step || atol(step) < 0))
        rc = bf_error_set(err, BF_ERR_INVALID, "%s: not a braggflow Adam state (format/step)",
                          optim);
    for (int i = 0; rc == BF_OK && i < m->params.n; i++) {
        const bf_param_info *p = &m->params.info[i];
        char name[160];
        snprintf(name, sizeof name, "exp_avg.%s", p->name);
        rc = load_tensor(&st, optim, name, p, opt->m + p->offset, err);
        snprintf(name, sizeof name, "exp_avg_sq.%s", p->name);
        if (rc == BF_OK)
            rc = load_tensor(&st, optim, name, p, opt->v + p->offset, err);
    }
    if (rc == BF_OK) {
        opt->step = atol(step);
        *have = 1;
    }
    bf_safetensors_free(&st);
    return rc;
}

bf_status bf_checkpoint_load(const char *path, const bf_backend *be, bf_model **out,
                             bf_checkpoint_info *info_out, bf_adam *opt, int *have_opt,
                             bf_error *err)
{
    *out = NULL;
    if (have_opt)
        *have_opt = 0;
    bf_safetensors st = {0};
    bf_checkpoint_info info;
    bf_model *m = NULL;
    bf_status rc = bf_safetensors_read(path, &st, err);
    if (rc == BF_OK)
        rc = read_info(&st, path, &info, err);
    if (rc == BF_OK) {
        rc = bf_model_create(info.model, &info.shape, be, 0, &m, err);
        if (rc != BF_OK)
            bf_error_prefix(err, "%s", path);
    }
    for (int i = 0; rc == BF_OK && i < m->params.n; i++) {
        const bf_param_info *p = &m->params.info[i];
        rc = load_tensor(&st, path, p->name, p, m->params.value + p->offset, err);
    }
    if (rc == BF_OK && st.n_tensors != m->params.n)
        rc = bf_error_set(err, BF_ERR_INVALID, "%s: %d tensors, model '%s' has %d", path,
                          st.n_tensors, info.model, m->params.n);
    if (rc == BF_OK && opt) {
        rc = bf_adam_init(opt, m->params.total, 5e-4f, err);
        char optim[4200];
        bf_checkpoint_optim_path(path, optim, sizeof optim);
        int have = 0;
        if (rc == BF_OK)
            rc = load_optim(optim, m, opt, &have, err);
        if (have_opt)
            *have_opt = have;
        if (rc != BF_OK)
            bf_adam_free(opt);
    }
    bf_safetensors_free(&st);
    if (rc != BF_OK) {
        bf_model_destroy(m);
        return rc;
    }
    if (info_out)
        *info_out = info;
    *out = m;
    return BF_OK;
}
