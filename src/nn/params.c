/* nn/params.c — a model's parameters in one buffer, PyTorch-default initialisation,
 * Adam (torch.optim.Adam 1.13) and global gradient-norm clipping
 * (torch.nn.utils.clip_grad_norm_). Results do not depend on the thread count. */
#include "braggflow/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Far beyond any model here; keeps count * sizeof(float) from overflowing. */
#define MAX_PARAM_FLOATS ((size_t)1 << 40)
/* Below this many values a parallel region costs more than it saves. */
#define PAR_MIN 65536

bf_status bf_params_add(bf_params *p, const char *name, int ndim, const int *shape, int fan_in,
                        bf_error *err)
{
    return bf_params_add_init(p, name, ndim, shape, fan_in, 0, BF_INIT_TORCH_DEFAULT, err);
}

bf_status bf_params_add_init(bf_params *p, const char *name, int ndim, const int *shape,
                             int fan_in, int fan_out, bf_init init, bf_error *err)
{
    if (name == NULL || name[0] == '\0')
        return bf_error_set(err, BF_ERR_INVALID, "parameter: empty name");
    if (strlen(name) >= BF_PARAM_NAME)
        return bf_error_set(err, BF_ERR_INVALID, "parameter %.*s...: name longer than %d bytes",
                            32, name, BF_PARAM_NAME - 1);
    if (p->value != NULL || p->grad != NULL)
        return bf_error_set(err, BF_ERR_INVALID,
                            "parameter %s: added after the buffers were allocated", name);
    if (p->n >= BF_MAX_PARAMS)
        return bf_error_set(err, BF_ERR_INVALID, "parameter %s: more than %d parameter tensors",
                            name, BF_MAX_PARAMS);
    if (ndim < 1 || ndim > 4 || shape == NULL)
        return bf_error_set(err, BF_ERR_INVALID, "parameter %s: ndim %d is not in 1..4", name,
                            ndim);
    if (fan_in < 0 || fan_out < 0)
        return bf_error_set(err, BF_ERR_INVALID, "parameter %s: fan_in %d / fan_out %d negative",
                            name, fan_in, fan_out);
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->info[i].name, name) == 0)
            return bf_error_set(err, BF_ERR_INVALID, "parameter %s: duplicate name", name);
    size_t count = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] <= 0)
            return bf_error_set(err, BF_ERR_INVALID, "parameter %s: dimension %d is %d", name, d,
                                shape[d]);
        count *= (size_t)shape[d];
        if (count > MAX_PARAM_FLOATS)
            return bf_error_set(err, BF_ERR_INVALID, "parameter %s: too many values", name);
    }
    if (p->total + count > MAX_PARAM_FLOATS)
        return bf_error_set(err, BF_ERR_INVALID, "parameter %s: too many values in all", name);

    bf_param_info *info = &p->info[p->n];
    memset(info, 0, sizeof *info);
    memcpy(info->name, name, strlen(name) + 1);
    info->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        info->shape[d] = shape[d];
    info->offset = p->total; /* contiguous, in add (state_dict) order */
    info->count = count;
    info->fan_in = fan_in;
    info->fan_out = fan_out;
    info->init = init;
    p->total += count;
    p->n++;
    return BF_OK;
}

static float *alloc_floats(size_t n)
{
    void *ptr = NULL;
    size_t nbytes = (n ? n : 1) * sizeof(float);
    if (posix_memalign(&ptr, 64, nbytes) != 0) /* cache-line aligned for the SIMD kernels */
        return NULL;
    memset(ptr, 0, nbytes);
    return ptr;
}

bf_status bf_params_alloc(bf_params *p, bf_error *err)
{
    if (p->value != NULL || p->grad != NULL)
        return bf_error_set(err, BF_ERR_INVALID, "parameters: already allocated");
    p->value = alloc_floats(p->total);
    p->grad = alloc_floats(p->total);
    if (p->value == NULL || p->grad == NULL) {
        free(p->value);
        free(p->grad);
        p->value = p->grad = NULL;
        return bf_error_set(err, BF_ERR_NOMEM, "parameters: cannot allocate %zu floats",
                            p->total);
    }
    return BF_OK;
}

void bf_params_free(bf_params *p)
{
    if (p == NULL)
        return;
    free(p->value);
    free(p->grad);
    memset(p, 0, sizeof *p);
}

const bf_param_info *bf_params_find(const bf_params *p, const char *name)
{
    if (p == NULL || name == NULL)
        return NULL;
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->info[i].name, name) == 0)
            return &p->info[i];
    return NULL;
}

/* PyTorch's Linear/Conv reset_parameters: kaiming_uniform_(a = sqrt(5)) gives
 * bound = gain sqrt(3 / fan_in) with gain = sqrt(2 / (1 + 5)), i.e. 1 / sqrt(fan_in),
 * and the bias uses the same bound (0 when fan_in is 0). xavier_uniform_: bound =
 * sqrt(6 / (fan_in + fan_out)). One stream, state_dict order; zero-initialised tensors
 * draw nothing. */
void bf_params_init(bf_params *p, uint64_t seed)
{
    if (p->value == NULL)
        return;
    bf_rng r;
    bf_rng_init(&r, seed, 0);
    for (int i = 0; i < p->n; i++) {
        const bf_param_info *info = &p->info[i];
        double bound = info->fan_in > 0 ? 1.0 / sqrt((double)info->fan_in) : 0.0;
        if (info->init == BF_INIT_XAVIER_UNIFORM)
            bound = sqrt(6.0 / (info->fan_in + info->fan_out > 0 ? info->fan_in + info->fan_out
                                                                 : 1));
        float *v = p->value + info->offset;
        if (info->init == BF_INIT_ZERO) {
            memset(v, 0, info->count * sizeof *v);
            continue;
        }
        for (size_t j = 0; j < info->count; j++)
            v[j] = (float)bf_rng_uniform_range(&r, -bound, bound);
    }
}

void bf_params_zero_grad(bf_params *p)
{
    if (p->grad)
        memset(p->grad, 0, p->total * sizeof *p->grad);
}

/* ---- Adam -------------------------------------------------------------------------- */

bf_status bf_adam_init(bf_adam *opt, const bf_backend *be, size_t n, float lr, bf_error *err)
{
    memset(opt, 0, sizeof *opt);
    if (!(lr >= 0.0f) || !isfinite(lr))
        return bf_error_set(err, BF_ERR_INVALID, "adam: learning rate %g is not >= 0", lr);
    opt->lr = lr;
    opt->beta1 = 0.9f;
    opt->beta2 = 0.999f;
    opt->eps = 1e-8f;
    opt->n = n;
    opt->be = be;
    size_t nbytes = (n ? n : 1) * sizeof(float);
    if (be) {
        bf_status st = be->alloc(nbytes, (void **)&opt->m, err);
        if (st == BF_OK)
            st = be->alloc(nbytes, (void **)&opt->v, err);
        if (st != BF_OK) {
            bf_adam_free(opt);
            bf_error_prefix(err, "adam moments for %zu values", n);
        }
        return st;
    }
    opt->m = alloc_floats(n);
    opt->v = alloc_floats(n);
    if (opt->m == NULL || opt->v == NULL) {
        bf_adam_free(opt);
        return bf_error_set(err, BF_ERR_NOMEM, "adam: cannot allocate moments for %zu values",
                            n);
    }
    return BF_OK;
}

void bf_adam_free(bf_adam *opt)
{
    if (opt == NULL)
        return;
    if (opt->be) {
        opt->be->free(opt->m);
        opt->be->free(opt->v);
    } else {
        free(opt->m);
        free(opt->v);
    }
    opt->m = opt->v = NULL;
    opt->n = 0;
}

/* torch.optim.Adam 1.13, _single_tensor_adam: the scalars are computed in double (Python
 * floats) and applied in float, as PyTorch casts them to the tensor's dtype. */
void bf_adam_step(bf_adam *opt, float *value, const float *grad)
{
    opt->step++; /* PyTorch increments state['step'] before using it */
    double t = (double)opt->step;
    double b1 = opt->beta1, b2 = opt->beta2;
    double bc1 = 1.0 - pow(b1, t);
    double bc2 = 1.0 - pow(b2, t);
    const float beta1 = opt->beta1, beta2 = opt->beta2;
    const float one_m_b1 = (float)(1.0 - b1), one_m_b2 = (float)(1.0 - b2);
    const float step_size = (float)(opt->lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float eps = opt->eps;
    float *m = opt->m, *v = opt->v;
    ptrdiff_t n = (ptrdiff_t)opt->n;
    /* Elementwise, so the result is the same for any thread count. */
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (ptrdiff_t i = 0; i < n; i++) {
        float g = grad[i];
        m[i] = m[i] * beta1 + one_m_b1 * g;
        v[i] = v[i] * beta2 + one_m_b2 * g * g;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        value[i] -= step_size * (m[i] / denom);
    }
}

/* ---- Gradient clipping --------------------------------------------------------------- */

/* The sum of squares is split into a fixed number of contiguous chunks whatever the
 * thread count, and the chunk sums are added in order: a deterministic reduction. */
#define CLIP_CHUNKS 256

/* floor(n c / CLIP_CHUNKS) without overflowing n c. */
static size_t chunk_start(size_t n, int c)
{
    return n / CLIP_CHUNKS * (size_t)c + n % CLIP_CHUNKS * (size_t)c / CLIP_CHUNKS;
}

double bf_clip_grad_norm(float *grad, size_t n, double max_norm)
{
    double partial[CLIP_CHUNKS];
    int par = n >= PAR_MIN;
#pragma omp parallel for schedule(static) if (par)
    for (int c = 0; c < CLIP_CHUNKS; c++) {
        size_t lo = chunk_start(n, c), hi = chunk_start(n, c + 1);
        double s = 0.0;
        for (size_t i = lo; i < hi; i++)
            s += (double)grad[i] * grad[i];
        partial[c] = s;
    }
    double sum = 0.0;
    for (int c = 0; c < CLIP_CHUNKS; c++)
        sum += partial[c];
    double norm = sqrt(sum);
    /* clip_grad_norm_: coef = max_norm / (norm + 1e-6), applied only when below 1. */
    double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) {
        float f = (float)coef;
        ptrdiff_t m = (ptrdiff_t)n;
#pragma omp parallel for schedule(static) if (par)
        for (ptrdiff_t i = 0; i < m; i++)
            grad[i] *= f;
    }
    return norm;
}
