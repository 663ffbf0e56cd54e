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

/* Metadata keys the engine owns; every other key belongs to the task (info->extra). */
static const char *const engine_keys[] = {"format",          "braggflow_version", "model",
                                          "shape",           "epoch",             "val_loss",
                                          "training_config", "train_sha256",      "val_sha256"};

static int is_engine_key(const char *key)
{
    for (size_t i = 0; i < sizeof engine_keys / sizeof engine_keys[0]; i++)
        if (!strcmp(key, engine_keys[i]))
            return 1;
    return 0;
}

bf_status bf_checkpoint_info_set(bf_checkpoint_info *info, const char *key, const char *value,
                                 bf_error *err)
{
    if (strlen(key) >= sizeof info->extra[0].key || strlen(value) >= sizeof info->extra[0].value)
        return bf_error_set(err, BF_ERR_RANGE, "checkpoint metadata '%s': too long", key);
    int k = 0;
    while (k < info->n_extra && strcmp(info->extra[k].key, key))
        k++;
    if (k == BF_CKPT_MAX_EXTRA)
        return bf_error_set(err, BF_ERR_RANGE, "checkpoint metadata '%s': more than %d task keys",
                            key, BF_CKPT_MAX_EXTRA);
    snprintf(info->extra[k].key, sizeof info->extra[k].key, "%s", key);
    snprintf(info->extra[k].value, sizeof info->extra[k].value, "%s", value);
    if (k == info->n_extra)
        info->n_extra++;
    return BF_OK;
}

const char *bf_checkpoint_info_get(const bf_checkpoint_info *info, const char *key)
{
    for (int k = 0; k < info->n_extra; k++)
        if (!strcmp(info->extra[k].key, key))
            return info->extra[k].value;
    return NULL;
}

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
    char shape[128] = "", epoch[32], val_loss[32];
    for (int d = 0; d < m->kind->n_dims; d++)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%d", d ? " " : "",
                 m->shape.dim[d]);
    snprintf(epoch, sizeof epoch, "%d", info->epoch);
    snprintf(val_loss, sizeof val_loss, "%.9g", info->val_loss);
    bf_st_meta meta[9 + BF_CKPT_MAX_EXTRA] = {
        {"format", FORMAT},
        {"braggflow_version", BF_VERSION},
        {"model", (char *)m->kind->name},
        {"shape", shape}, /* the kind's dim_names, in order */
        {"epoch", epoch},
        {"val_loss", val_loss},
        {"training_config", (char *)info->training_config},
        {"train_sha256", (char *)info->train_sha256},
        {"val_sha256", (char *)info->val_sha256},
    };
    int n = 9;
    for (int k = 0; k < info->n_extra; k++) {
        if (is_engine_key(info->extra[k].key))
            return bf_error_set(err, BF_ERR_INVALID, "%s: task metadata key '%s' is the engine's",
                                path, info->extra[k].key);
        snprintf(meta[n].key, sizeof meta[n].key, "%s", info->extra[k].key);
        meta[n++].value = (char *)info->extra[k].value;
    }
    return bf_safetensors_write(path, t, m->params.n, meta, n, err);
}

/* moments (host copies of opt->m, opt->v) */
static bf_status save_optim(const char *path, const bf_model *m, const bf_adam *opt,
                            const float *mom1, const float *mom2, bf_error *err)
{
    bf_st_tensor t[2 * BF_MAX_PARAMS];
    for (int i = 0; i < m->params.n; i++) {
        t[2 * i] = param_tensor(&m->params.info[i], mom1, "exp_avg.");
        t[2 * i + 1] = param_tensor(&m->params.info[i], mom2, "exp_avg_sq.");
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

/* Host copies of the moments (the backend's, downloaded; host ones as they are). */
static bf_status moments_to_host(const bf_adam *opt, float **mom1, float **mom2, bf_error *err)
{
    *mom1 = opt->m, *mom2 = opt->v;
    if (!opt->be)
        return BF_OK;
    size_t nbytes = sizeof(float) * (opt->n ? opt->n : 1);
    *mom1 = malloc(nbytes), *mom2 = malloc(nbytes);
    bf_status st = *mom1 && *mom2 ? BF_OK
                                  : bf_error_set(err, BF_ERR_NOMEM, "optimiser state: out of memory");
    if (st == BF_OK)
        st = opt->be->download(*mom1, opt->m, sizeof(float) * opt->n, err);
    if (st == BF_OK)
        st = opt->be->download(*mom2, opt->v, sizeof(float) * opt->n, err);
    return st;
}

bf_status bf_checkpoint_save(const char *path, bf_model *m, const bf_checkpoint_info *info,
                             const bf_adam *opt, bf_error *err)
{
    bf_status st = bf_model_params_download(m, 0, err);
    /* sidecar first: a crash in between leaves a model with a newer optimiser
     * state at worst, never a model without one */
    if (st == BF_OK && opt) {
        char optim[4200];
        bf_checkpoint_optim_path(path, optim, sizeof optim);
        float *mom1 = NULL, *mom2 = NULL;
        st = moments_to_host(opt, &mom1, &mom2, err);
        if (st == BF_OK)
            st = save_optim(optim, m, opt, mom1, mom2, err);
        if (opt->be) {
            free(mom1);
            free(mom2);
        }
    }
    return st == BF_OK ? save_model(path, m, info, err) : st;
}

/* ---- load ---------------------------------------------------------------------- */

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
                           const bf_model_kind **kind, bf_error *err)
{
    memset(info, 0, sizeof *info);
    const char *need[] = {"model", "shape"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (!bf_safetensors_meta(st, need[i]))
            return bf_error_set(err, BF_ERR_INVALID, "%s: __metadata__ lacks '%s'", path,
                                need[i]);
    snprintf(info->model, sizeof info->model, "%s", bf_safetensors_meta(st, "model"));
    *kind = bf_model_kind_find(info->model);
    if (!*kind)
        return bf_error_set(err, BF_ERR_INVALID, "%s: model '%s': unknown (known: %s)", path,
                            info->model, bf_model_kind_list());
    double shape[BF_MODEL_DIMS];
    int nd = (*kind)->n_dims;
    if (bf_parse_doubles(bf_safetensors_meta(st, "shape"), shape, nd))
        return bf_error_set(err, BF_ERR_INVALID, "%s: __metadata__ shape '%s': expected %d "
                            "numbers for %s", path, bf_safetensors_meta(st, "shape"), nd,
                            info->model);
    for (int d = 0; d < nd; d++) {
        if (shape[d] < 1 || shape[d] > 1e7 || shape[d] != (int)shape[d])
            return bf_error_set(err, BF_ERR_INVALID, "%s: __metadata__ shape: %s = %g is not a "
                                "size", path, (*kind)->dim_names[d], shape[d]);
        info->shape.dim[d] = (int)shape[d];
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
    for (int k = 0; k < st->n_meta; k++) {
        if (is_engine_key(st->meta[k].key))
            continue;
        bf_status rc = bf_checkpoint_info_set(info, st->meta[k].key, st->meta[k].value, err);
        if (rc != BF_OK) {
            bf_error_prefix(err, "%s", path);
            return rc;
        }
    }
    return BF_OK;
}

/* A file without braggflow metadata: the one model kind whose state_dict it is. */
static bf_status identify_bare(const bf_safetensors *st, const char *path,
                               bf_checkpoint_info *info, const bf_model_kind **kind,
                               bf_error *err)
{
    memset(info, 0, sizeof *info);
    for (int i = 0; i < bf_model_kind_count(); i++) {
        const bf_model_kind *k = bf_model_kind_at(i);
        bf_error why = {0};
        if (k->shape_from_tensors && k->shape_from_tensors(st, &info->shape, &why) == BF_OK) {
            *kind = k;
            snprintf(info->model, sizeof info->model, "%s", k->name);
            info->bare = 1;
            info->val_loss = NAN;
            return BF_OK;
        }
    }
    return bf_error_set(err, BF_ERR_INVALID,
                        "%s: no braggflow __metadata__ (format) and the tensors are not a "
                        "state_dict of a known model (%s)", path, bf_model_kind_list());
}

/* Reads the sidecar's moments into host buffers mom1, mom2 (params.total floats). */
static bf_status load_optim(const char *optim, const bf_model *m, bf_adam *opt, float *mom1,
                            float *mom2, int *have, bf_error *err)
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
        rc = load_tensor(&st, optim, name, p, mom1 + p->offset, err);
        snprintf(name, sizeof name, "exp_avg_sq.%s", p->name);
        if (rc == BF_OK)
            rc = load_tensor(&st, optim, name, p, mom2 + p->offset, err);
    }
    if (rc == BF_OK) {
        opt->step = atol(step);
        *have = 1;
    }
    bf_safetensors_free(&st);
    return rc;
}

/* Initialises opt on the model's backend and restores the sidecar's state if any. */
static bf_status restore_optim(const char *path, const bf_model *m, bf_adam *opt, int *have,
                               bf_error *err)
{
    bf_status rc = bf_adam_init(opt, m->be, m->params.total, 5e-4f, err);
    size_t nbytes = sizeof(float) * (m->params.total ? m->params.total : 1);
    float *mom1 = rc == BF_OK ? calloc(1, nbytes) : NULL, *mom2 = mom1 ? calloc(1, nbytes) : NULL;
    if (rc == BF_OK && !mom2)
        rc = bf_error_set(err, BF_ERR_NOMEM, "%s: optimiser state: out of memory", path);
    char optim[4200];
    bf_checkpoint_optim_path(path, optim, sizeof optim);
    if (rc == BF_OK)
        rc = load_optim(optim, m, opt, mom1, mom2, have, err);
    if (rc == BF_OK && *have)
        rc = m->be->upload(opt->m, mom1, sizeof(float) * m->params.total, err);
    if (rc == BF_OK && *have)
        rc = m->be->upload(opt->v, mom2, sizeof(float) * m->params.total, err);
    free(mom1);
    free(mom2);
    if (rc != BF_OK)
        bf_adam_free(opt);
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
    bf_checkpoint_info *info = calloc(1, sizeof *info);
    const bf_model_kind *kind = NULL;
    bf_model *m = NULL;
    bf_status rc = info ? bf_safetensors_read(path, &st, err)
                        : bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", path);
    if (rc == BF_OK) {
        const char *fmt = bf_safetensors_meta(&st, "format");
        if (!fmt)
            rc = identify_bare(&st, path, info, &kind, err);
        else if (strcmp(fmt, FORMAT))
            rc = bf_error_set(err, BF_ERR_INVALID,
                              "%s: __metadata__ format is '%s', expected '%s' (not a braggflow "
                              "checkpoint?)", path, fmt, FORMAT);
        else
            rc = read_info(&st, path, info, &kind, err);
    }
    if (rc == BF_OK) {
        rc = bf_model_create(kind->name, &info->shape, be, 0, &m, err);
        if (rc != BF_OK)
            bf_error_prefix(err, "%s", path);
    }
    for (int i = 0; rc == BF_OK && i < m->params.n; i++) {
        const bf_param_info *p = &m->params.info[i];
        rc = load_tensor(&st, path, p->name, p, m->params.value + p->offset, err);
    }
    if (rc == BF_OK && st.n_tensors != m->params.n)
        rc = bf_error_set(err, BF_ERR_INVALID, "%s: %d tensors, model '%s' has %d", path,
                          st.n_tensors, info->model, m->params.n);
    if (rc == BF_OK)
        rc = bf_model_params_upload(m, err);
    if (rc == BF_OK && opt) {
        int have = 0;
        rc = restore_optim(path, m, opt, &have, err);
        if (have_opt)
            *have_opt = have;
    }
    bf_safetensors_free(&st);
    if (rc == BF_OK && info_out)
        *info_out = *info;
    free(info);
    if (rc != BF_OK) {
        bf_model_destroy(m);
        return rc;
    }
    *out = m;
    return BF_OK;
}
