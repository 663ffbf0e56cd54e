/* task/task.c — what every task shares: per-row min-max scaling, and loading a
 * checkpoint for a task (the model must be one the task serves). */
#include "braggflow/task.h"

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

bf_status bf_task_load(const char *task, const char *path, const bf_backend *be, bf_model **m,
                       bf_checkpoint_info *info, bf_error *err)
{
    bf_status st = bf_checkpoint_load(path, be, m, info, NULL, NULL, err);
    if (st != BF_OK)
        return st;
    const char *t = bf_task_of_model((*m)->kind->name);
    if (!t || strcmp(t, task)) {
        char models[128] = "";
        for (size_t i = 0; i < sizeof served / sizeof served[0]; i++)
            if (!strcmp(served[i].task, task))
                snprintf(models + strlen(models), sizeof models - strlen(models), "%s%s",
                         models[0] ? ", " : "", served[i].model);
        st = bf_error_set(err, BF_ERR_INVALID, "%s: model '%s' is not a %s model (%s)", path,
                          (*m)->kind->name, task, models);
        bf_model_destroy(*m);
        *m = NULL;
    }
    return st;
}
