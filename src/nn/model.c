/* nn/model.c — the model registry and the parts every model shares:
 * creation (parameters registered by the kind, allocated on the backend and
 * initialised as PyTorch does), activation reservation, destruction. */
#include "braggflow/nn.h"

#include <stdlib.h>
#include <string.h>

extern const bf_model_kind bf_structure_net_kind;

static const bf_model_kind *const kinds[] = {&bf_structure_net_kind};

int bf_model_kind_count(void) { return (int)(sizeof kinds / sizeof kinds[0]); }

const bf_model_kind *bf_model_kind_at(int i)
{
    return i >= 0 && i < bf_model_kind_count() ? kinds[i] : NULL;
}

const bf_model_kind *bf_model_kind_find(const char *name)
{
    for (int i = 0; i < bf_model_kind_count(); i++)
        if (!strcmp(kinds[i]->name, name))
            return kinds[i];
    return NULL;
}

bf_status bf_model_create(const char *kind_name, const bf_model_shape *shape,
                          const bf_backend *be, uint64_t seed, bf_model **out, bf_error *err)
{
    *out = NULL;
    const bf_model_kind *kind = bf_model_kind_find(kind_name);
    if (!kind)
        return bf_error_set(err, BF_ERR_INVALID, "model '%s': unknown (known: %s)", kind_name,
                            kinds[0]->name);
    bf_model *m = calloc(1, sizeof *m);
    if (!m)
        return bf_error_set(err, BF_ERR_NOMEM, "model '%s': out of memory", kind_name);
    m->kind = kind;
    m->be = be ? be : bf_backend_cpu();
    m->shape = shape ? *shape : kind->default_shape;
    bf_status st = kind->create(m, err);
    if (st == BF_OK)
        st = bf_params_alloc(&m->params, err);
    if (st != BF_OK) {
        bf_model_destroy(m);
        return st;
    }
    /* Parameters live in host memory (the master copy, what checkpoints hold); a
     * device backend mirrors them in its model state. */
    bf_params_init(&m->params, seed);
    *out = m;
    return BF_OK;
}

bf_status bf_model_reserve(bf_model *m, int B, bf_error *err)
{
    if (B <= m->batch_capacity)
        return BF_OK;
    if (B <= 0)
        return bf_error_set(err, BF_ERR_INVALID, "batch size %d: must be positive", B);
    bf_status st = m->kind->reserve(m, B, err);
    if (st == BF_OK)
        m->batch_capacity = B;
    return st;
}

void bf_model_destroy(bf_model *m)
{
    if (!m)
        return;
    if (m->kind && m->kind->destroy)
        m->kind->destroy(m);
    bf_params_free(&m->params);
    free(m);
}
