/* task/task.c — what every task shares: per-row min-max scaling, and loading a
 * checkpoint for a task (the model must be one the task serves). */
#include "braggflow/task.h"

#include <stdio.h>
#include <string.h>

void bf_minmax_scale_rows(float *x, long n, int L)
{
#pragma omp parallel for schedule(static) if (n > 64)
    for (long i = 0; i < n; i++) {
        float *r = x + (size_t)i * L;
        float lo = r[0], hi = r[0];
        for (int j = 1; j < L; j++) {
            lo = r[j] < lo ? r[j] : lo;
            hi = r[j] > hi ? r[j] : hi;
        }
        float span = hi - lo, inv = span > 0 ? 1.0f / span : 0.0f;
        for (int j = 0; j < L; j++)
            r[j] = (r[j] - lo) * inv;
    }
}

/* Which task each registered model serves (the engine itself knows no tasks). */
static const struct {
    const char *model, *task;
} served[] = {{"structure_net", "structure"}, {"braggnn", "peaks"}};

const char *bf_task_of_model(const char *model)
{
    for (size_t i = 0; i < sizeof served / sizeof served[0]; i++)
        if (!strcmp(served[i].model, model))
            return served[i].task;
    return NULL;
}

/* BF_OK when model serves task; else an error "[path: ]model 'x' is not a T model (...)". */
static bf_status check_served(const char *task, const char *model, const char *path,
                              bf_error *err)
{
    const char *t = bf_task_of_model(model);
    if (t && !strcmp(t, task))
        return BF_OK;
    char models[128] = "";
    for (size_t i = 0; i < sizeof served / sizeof served[0]; i++)
        if (!strcmp(served[i].task, task))
            snprintf(models + strlen(models), sizeof models - strlen(models), "%s%s",
                     models[0] ? ", " : "", served[i].model);
    return bf_error_set(err, BF_ERR_INVALID, "%s%smodel '%s' is not a %s model (%s)",
                        path ? path : "", path ? ": " : "", model, task, models);
}

bf_status bf_task_model_kind(const char *task, const char *model, const bf_model_kind **kind,
                             bf_error *err)
{
    *kind = bf_model_kind_find(model);
    if (!*kind)
        return bf_error_set(err, BF_ERR_INVALID, "model '%s': unknown (known: %s)", model,
                            bf_model_kind_list());
    return check_served(task, model, NULL, err);
}

/* Loads path (and, when opt != NULL, its optimiser sidecar) checking the model serves
 * task. */
static bf_status load_for(const char *task, const char *path, const bf_backend *be,
                          bf_model **m, bf_checkpoint_info *info, bf_adam *opt, bf_error *err)
{
    bf_status st = bf_checkpoint_load(path, be, m, info, opt, NULL, err);
    if (st != BF_OK)
        return st;
    st = check_served(task, (*m)->kind->name, path, err);
    if (st != BF_OK) {
        bf_model_destroy(*m);
        *m = NULL;
        if (opt)
            bf_adam_free(opt);
    }
    return st;
}

bf_status bf_task_load(const char *task, const char *path, const bf_backend *be, bf_model **m,
                       bf_checkpoint_info *info, bf_error *err)
{
    return load_for(task, path, be, m, info, NULL, err);
}

void bf_task_train_name(const bf_train_config *cfg, long n, char *out, size_t outsz)
{
    const char *base = cfg->train_name ? cfg->train_name : "training set";
    if (cfg->train_total > 0) /* a shard's messages say which rows of the file it holds */
        snprintf(out, outsz, "%s rows [%ld, %ld) of %ld", base, cfg->train_first,
                 cfg->train_first + n, cfg->train_total);
    else
        snprintf(out, outsz, "%s", base);
}

bf_status bf_task_warm_start(const char *task, const char *path, const bf_backend *be,
                             double lr, bf_model **m, bf_adam *opt, bf_checkpoint_info *info,
                             bf_error *err)
{
    bf_status st = load_for(task, path, be, m, info, opt, err);
    if (st == BF_OK)
        opt->lr = (float)lr; /* a warm restart may change the learning rate */
    return st;
}
