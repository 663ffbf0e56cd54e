/* nn/models/structure_net.c — the multitask structure-finding network of
 * seed 001 (DESIGN §4), parameter names as the seed's PyTorch FullModel:
 *
 *   x (B, L) -> conv1 Conv1d(1->16, k3, s1) -> LeakyReLU(0.1) -> MaxPool(2,2)
 *            -> conv2 Conv1d(16->32, k4, s2) -> LeakyReLU(0.1) -> MaxPool(2,2)
 *            -> flatten (32 P2) -> fc1 Linear(32 P2 -> H) -> LeakyReLU(0.1)
 *            -> fc2 Linear(H -> 3) class logits
 *            -> regression_layer Linear(H -> 4): 3 scaled lattice values, log sigma^2
 *
 * out (B, C + 4) = [logits (C), regression (4)], the two heads written side by side
 * into the model's output buffer. shape.dim = {input_len, hidden, n_classes}. Pool-then-activate is used in the
 * fused kernels (equal to activate-then-pool: LeakyReLU is monotonic). */
#include "nn/nn_internal.h"

#include <stdlib.h>

#define SLOPE 0.1f
#define C1 16
#define K1 3
#define S1 1
#define C2 32
#define K2 4
#define S2 2
#define N_REG 4 /* a, c, alpha (scaled) + log sigma^2 */

typedef struct {
    int L, P1, P2, flat, H, C;        /* lengths after each stage; hidden; classes */
    /* activations for batch_capacity samples (backend memory) */
    float *a1;                        /* (B, C1, P1) pooled, activated conv1 */
    uint8_t *arg1;                    /* (B, C1, P1) */
    float *a2;                        /* (B, C2 P2) = flattened conv2 output */
    uint8_t *arg2;
    float *h;                         /* (B, H) activated fc1 */
    float *dh, *da2, *da1;            /* gradients of h, a2, a1 */
    int backward_ready;               /* the last forward kept what backward needs */
} net_state;

enum { DIM_L, DIM_HIDDEN, DIM_CLASSES };
enum { CONV1_W, CONV1_B, CONV2_W, CONV2_B, FC1_W, FC1_B, FC2_W, FC2_B, REG_W, REG_B };

static float *W(const bf_model *m, int i) { return m->w + m->params.info[i].offset; }
static float *G(const bf_model *m, int i) { return m->g + m->params.info[i].offset; }

#define N_BUFS 8
static void buffers(net_state *s, void **bufs[N_BUFS])
{
    void **b[N_BUFS] = {(void **)&s->a1, (void **)&s->arg1, (void **)&s->a2, (void **)&s->arg2,
                        (void **)&s->h,  (void **)&s->dh,   (void **)&s->da2, (void **)&s->da1};
    for (int i = 0; i < N_BUFS; i++)
        bufs[i] = b[i];
}

static void destroy(bf_model *m)
{
    net_state *s = m->state;
    if (!s)
        return;
    void **bufs[N_BUFS];
    buffers(s, bufs);
    bf_model_free_buffers(m, bufs, N_BUFS);
    free(s);
    m->state = NULL;
}

static bf_status create(bf_model *m, bf_error *err)
{
    const int *sh = m->shape.dim;
    int L = sh[DIM_L];
    int P1 = (L - K1) / S1 + 1 >= 2 ? ((L - K1) / S1 + 1) / 2 : 0;
    int P2 = P1 >= K2 && ((P1 - K2) / S2 + 1) >= 2 ? ((P1 - K2) / S2 + 1) / 2 : 0;
    if (L < 1 || P2 < 1)
        return bf_error_set(err, BF_ERR_INVALID,
                            "structure_net: input length %d is too short for two conv+pool "
                            "stages (need at least 14 points)", L);
    if (sh[DIM_HIDDEN] < 1 || sh[DIM_CLASSES] < 2)
        return bf_error_set(err, BF_ERR_INVALID,
                            "structure_net: hidden width %d and %d classes (need >= 1 and >= 2)",
                            sh[DIM_HIDDEN], sh[DIM_CLASSES]);
    net_state *s = calloc(1, sizeof *s);
    if (!s)
        return bf_error_set(err, BF_ERR_NOMEM, "structure_net: out of memory");
    m->state = s;
    *s = (net_state){.L = L, .P1 = P1, .P2 = P2, .flat = C2 * P2, .H = sh[DIM_HIDDEN],
                     .C = sh[DIM_CLASSES]};
    m->input_len = L;
    m->n_out = s->C + N_REG;
    const struct {
        const char *name;
        int ndim, shape[3], fan_in;
    } t[] = {
        {"conv1.weight", 3, {C1, 1, K1}, 1 * K1},
        {"conv1.bias", 1, {C1}, 1 * K1},
        {"conv2.weight", 3, {C2, C1, K2}, C1 * K2},
        {"conv2.bias", 1, {C2}, C1 * K2},
        {"fc1.weight", 2, {s->H, s->flat}, s->flat},
        {"fc1.bias", 1, {s->H}, s->flat},
        {"fc2.weight", 2, {s->C, s->H}, s->H},
        {"fc2.bias", 1, {s->C}, s->H},
        {"regression_layer.weight", 2, {N_REG, s->H}, s->H},
        {"regression_layer.bias", 1, {N_REG}, s->H},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        bf_status st = bf_params_add(&m->params, t[i].name, t[i].ndim, t[i].shape, t[i].fan_in,
                                     err);
        if (st != BF_OK)
            return st;
    }
    return BF_OK;
}

static bf_status reserve(bf_model *m, int B, bf_error *err)
{
    net_state *s = m->state;
    void **bufs[N_BUFS];
    buffers(s, bufs);
    bf_model_free_buffers(m, bufs, N_BUFS);
    s->backward_ready = 0;
    size_t f = sizeof(float), n1 = (size_t)B * C1 * s->P1, n2 = (size_t)B * s->flat;
    size_t nh = (size_t)B * s->H * f;
    const size_t sizes[N_BUFS] = {n1 * f, n1, n2 * f, n2, nh, nh, n2 * f, n1 * f};
    return bf_model_alloc_buffers(m, bufs, sizes, N_BUFS, err);
}

/* x (B, L) -> m->out (B, C + 4). */
static bf_status forward(bf_model *m, const float *x, int B, bf_error *err)
{
    if (bf_model_check_batch(m, B, err) != BF_OK)
        return err->code;
    net_state *s = m->state;
    const bf_backend *be = m->be;
    int train = !m->inference;
    s->backward_ready = 0;
    bf_status st = be->conv1d_pool_lrelu_forward(s->a1, train ? s->arg1 : NULL, x, W(m, CONV1_W),
                                                 W(m, CONV1_B), B, 1, s->L, C1, K1, S1, SLOPE,
                                                 err);
    if (st == BF_OK)
        st = be->conv1d_pool_lrelu_forward(s->a2, train ? s->arg2 : NULL, s->a1, W(m, CONV2_W),
                                           W(m, CONV2_B), B, C1, s->P1, C2, K2, S2, SLOPE, err);
    if (st == BF_OK)
        st = be->linear_forward(s->h, s->H, s->a2, W(m, FC1_W), W(m, FC1_B), B, s->flat, s->H,
                                SLOPE, err);
    if (st == BF_OK)
        st = be->linear_forward(m->out, m->n_out, s->h, W(m, FC2_W), W(m, FC2_B), B, s->H, s->C,
                                -1, err);
    if (st == BF_OK)
        st = be->linear_forward(m->out + s->C, m->n_out, s->h, W(m, REG_W), W(m, REG_B), B, s->H,
                                N_REG, -1, err);
    s->backward_ready = st == BF_OK && train;
    return st;
}

/* dout (B, C + 4) -> parameter gradients (accumulated), from the last forward(x). */
static bf_status backward(bf_model *m, const float *x, int B, float *dout, bf_error *err)
{
    if (bf_model_check_batch(m, B, err) != BF_OK)
        return err->code;
    net_state *s = m->state;
    const bf_backend *be = m->be;
    if (!s->backward_ready)
        return bf_error_set(err, BF_ERR_INVALID,
                            "structure_net: backward without a training forward pass");
    size_t f = sizeof(float);
    bf_status st = be->zero(s->dh, (size_t)B * s->H * f, err);
    if (st == BF_OK)
        st = be->zero(s->da2, (size_t)B * s->flat * f, err);
    if (st == BF_OK)
        st = be->zero(s->da1, (size_t)B * C1 * s->P1 * f, err);
    if (st == BF_OK)
        st = be->linear_backward(s->dh, G(m, FC2_W), G(m, FC2_B), dout, m->n_out, m->out, s->h,
                                 W(m, FC2_W), B, s->H, s->C, -1, err);
    if (st == BF_OK)
        st = be->linear_backward(s->dh, G(m, REG_W), G(m, REG_B), dout + s->C, m->n_out,
                                 m->out + s->C, s->h, W(m, REG_W), B, s->H, N_REG, -1, err);
    /* each layer's gradients are final once it is done: the reductions of the later
     * layers overlap the earlier layers' backward (DESIGN §10) */
    if (st == BF_OK)
        bf_model_grads_final(m, FC2_W);
    if (st == BF_OK)
        st = be->linear_backward(s->da2, G(m, FC1_W), G(m, FC1_B), s->dh, s->H, s->h, s->a2,
                                 W(m, FC1_W), B, s->flat, s->H, SLOPE, err);
    if (st == BF_OK)
        bf_model_grads_final(m, FC1_W);
    if (st == BF_OK)
        st = be->conv1d_pool_lrelu_backward(s->da1, G(m, CONV2_W), G(m, CONV2_B), s->da2, s->a2,
                                            s->arg2, s->a1, W(m, CONV2_W), B, C1, s->P1, C2, K2,
                                            S2, SLOPE, err);
    if (st == BF_OK)
        bf_model_grads_final(m, CONV2_W);
    if (st == BF_OK)
        st = be->conv1d_pool_lrelu_backward(NULL, G(m, CONV1_W), G(m, CONV1_B), s->da1, s->a1,
                                            s->arg1, x, W(m, CONV1_W), B, 1, s->L, C1, K1, S1,
                                            SLOPE, err);
    if (st == BF_OK)
        bf_model_grads_final(m, CONV1_W);
    return st;
}

const bf_model_kind bf_structure_net_kind = {
    .name = "structure_net",
    .description = "seed 001 multitask CNN: crystal class + lattice parameters with "
                   "heteroscedastic uncertainty (DESIGN §4)",
    .n_dims = 3,
    .dim_names = {"input_len", "hidden", "n_classes"},
    .default_shape = {{2806, 256, 3}},
    .create = create,
    .destroy = destroy,
    .reserve = reserve,
    .forward = forward,
    .backward = backward,
};
