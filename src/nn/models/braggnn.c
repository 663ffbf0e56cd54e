/* nn/models/braggnn.c — BraggNN (Liu et al., IUCrJ 9 (2022) 104; DESIGN §7), layer for
 * layer as the published model.py, parameter names as its state_dict:
 *
 *   x (B, S, S) -> cnn_layers.0 Conv2d(1 -> 64, 3x3)                   (B, 64, S-2, S-2)
 *               -> nlb: non-local block (theta/phi/g 1x1 64 -> 32, softmax over
 *                  positions, out_cnn 1x1 32 -> 64, + residual)
 *               -> LeakyReLU(0.01)
 *               -> cnn_layers.2 Conv2d(64 -> 32, 3x3) -> LeakyReLU       (B, 32, S-4, S-4)
 *               -> cnn_layers.4 Conv2d(32 -> 8, 3x3) -> LeakyReLU        (B, 8, S-6, S-6)
 *               -> flatten (C order) -> dense_layers.0 Linear(8 (S-6)^2 -> fc1) -> LReLU
 *               -> .2 Linear(fc1 -> fc2) -> LReLU -> .4 (fc2 -> fc3) -> LReLU
 *               -> .6 (fc3 -> fc4) -> LReLU -> .8 Linear(fc4 -> 2)          out (B, 2)
 *
 * shape.dim = {patch S, fc1, fc2, fc3, fc4}; the published configuration is
 * {11, 16, 8, 4, 2} (33,172 parameters). The output is the scaled centre
 * (x, y) = (col, row) / S, column first, as BraggNN's dataset.py labels it; what it
 * means is the peaks task's business. Init: Xavier-uniform weights, zero biases
 * (model_init in BraggNN's main.py). The state_dict lists nlb first: the module is
 * assigned before cnn_layers and dense_layers in BraggNN.__init__. */
#include "nn/nn_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOPE 0.01f
#define C1 64     /* conv1 channels = the non-local block's */
#define CI 32     /* non-local inner channels (C1 / 2) */
#define C2 32
#define C3 8
#define K 3
#define N_FC 4    /* hidden dense layers; a fifth maps fc4 -> 2 */
#define N_OUT 2

enum { DIM_PATCH, DIM_FC1 };
/* tensor indices in state_dict order */
enum { NLB_FIRST = 0, NLB_COUNT = 8, CONV1_W = 8, CONV1_B, CONV2_W, CONV2_B, CONV3_W, CONV3_B,
       DENSE_W = 14 /* dense layer j: weight 14 + 2j, bias 15 + 2j */ };

typedef struct {
    int S, H1, H2, H3, flat;          /* patch, conv output sizes, flattened conv3 */
    int fc[N_FC + 1];                 /* dense widths: fc1..fc4, then 2 */
    /* activations for batch_capacity samples (backend memory) */
    float *c1, *ws, *a1, *a2, *a3;    /* conv1, non-local workspace, nlb+act, conv2, conv3 */
    float *h[N_FC];                   /* dense activations */
    float *dc1, *da1, *da2, *da3, *dh[N_FC];
    int backward_ready;
} net_state;

static float *W(const bf_model *m, int i) { return m->w + m->params.info[i].offset; }
static float *G(const bf_model *m, int i) { return m->g + m->params.info[i].offset; }

#define N_BUFS (5 + N_FC + 4 + N_FC)
static void buffers(net_state *s, void **bufs[N_BUFS])
{
    int k = 0;
    bufs[k++] = (void **)&s->c1, bufs[k++] = (void **)&s->ws, bufs[k++] = (void **)&s->a1;
    bufs[k++] = (void **)&s->a2, bufs[k++] = (void **)&s->a3;
    for (int j = 0; j < N_FC; j++)
        bufs[k++] = (void **)&s->h[j];
    bufs[k++] = (void **)&s->dc1, bufs[k++] = (void **)&s->da1, bufs[k++] = (void **)&s->da2;
    bufs[k++] = (void **)&s->da3;
    for (int j = 0; j < N_FC; j++)
        bufs[k++] = (void **)&s->dh[j];
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

static bf_status add_conv(bf_model *m, const char *name, int c_out, int c_in, int k,
                          bf_error *err)
{
    char n[BF_PARAM_NAME];
    int wshape[4] = {c_out, c_in, k, k}, bshape[1] = {c_out};
    snprintf(n, sizeof n, "%s.weight", name);
    bf_status st = bf_params_add_init(&m->params, n, 4, wshape, c_in * k * k, c_out * k * k,
                                      BF_INIT_XAVIER_UNIFORM, err);
    snprintf(n, sizeof n, "%s.bias", name);
    return st == BF_OK ? bf_params_add_init(&m->params, n, 1, bshape, 0, 0, BF_INIT_ZERO, err)
                       : st;
}

static bf_status add_linear(bf_model *m, int index, int n_out, int n_in, bf_error *err)
{
    char n[BF_PARAM_NAME];
    int wshape[2] = {n_out, n_in}, bshape[1] = {n_out};
    snprintf(n, sizeof n, "dense_layers.%d.weight", index);
    bf_status st = bf_params_add_init(&m->params, n, 2, wshape, n_in, n_out,
                                      BF_INIT_XAVIER_UNIFORM, err);
    snprintf(n, sizeof n, "dense_layers.%d.bias", index);
    return st == BF_OK ? bf_params_add_init(&m->params, n, 1, bshape, 0, 0, BF_INIT_ZERO, err)
                       : st;
}

static bf_status create(bf_model *m, bf_error *err)
{
    const int *d = m->shape.dim;
    int S = d[DIM_PATCH];
    if (S < 7 || S > 255)
        return bf_error_set(err, BF_ERR_INVALID,
                            "braggnn: patch size %d: need 7..255 (three 3x3 convolutions)", S);
    for (int j = 0; j < N_FC; j++)
        if (d[DIM_FC1 + j] < 1 || d[DIM_FC1 + j] > 65536)
            return bf_error_set(err, BF_ERR_INVALID, "braggnn: dense width fc%d = %d", j + 1,
                                d[DIM_FC1 + j]);
    net_state *s = calloc(1, sizeof *s);
    if (!s)
        return bf_error_set(err, BF_ERR_NOMEM, "braggnn: out of memory");
    m->state = s;
    s->S = S, s->H1 = S - 2, s->H2 = S - 4, s->H3 = S - 6, s->flat = C3 * s->H3 * s->H3;
    for (int j = 0; j < N_FC; j++)
        s->fc[j] = d[DIM_FC1 + j];
    s->fc[N_FC] = N_OUT;
    m->input_len = S * S;
    m->n_out = N_OUT;

    bf_status st = add_conv(m, "nlb.theta_layer", CI, C1, 1, err);
    if (st == BF_OK)
        st = add_conv(m, "nlb.phi_layer", CI, C1, 1, err);
    if (st == BF_OK)
        st = add_conv(m, "nlb.g_layer", CI, C1, 1, err);
    if (st == BF_OK)
        st = add_conv(m, "nlb.out_cnn", C1, CI, 1, err);
    if (st == BF_OK)
        st = add_conv(m, "cnn_layers.0", C1, 1, K, err);
    if (st == BF_OK)
        st = add_conv(m, "cnn_layers.2", C2, C1, K, err);
    if (st == BF_OK)
        st = add_conv(m, "cnn_layers.4", C3, C2, K, err);
    for (int j = 0, n_in = s->flat; st == BF_OK && j <= N_FC; n_in = s->fc[j], j++)
        st = add_linear(m, 2 * j, s->fc[j], n_in, err);
    return st;
}

static bf_status reserve(bf_model *m, int B, bf_error *err)
{
    net_state *s = m->state;
    void **bufs[N_BUFS];
    buffers(s, bufs);
    bf_model_free_buffers(m, bufs, N_BUFS);
    s->backward_ready = 0;
    size_t f = sizeof(float), b = (size_t)B;
    size_t n1 = b * C1 * s->H1 * s->H1, n2 = b * C2 * s->H2 * s->H2, n3 = b * s->flat;
    size_t sizes[N_BUFS];
    int k = 0;
    sizes[k++] = n1 * f;
    sizes[k++] = bf_nonlocal_workspace(B, CI, s->H1 * s->H1) * f;
    sizes[k++] = n1 * f, sizes[k++] = n2 * f, sizes[k++] = n3 * f;
    for (int j = 0; j < N_FC; j++)
        sizes[k++] = b * s->fc[j] * f;
    sizes[k++] = n1 * f, sizes[k++] = n1 * f, sizes[k++] = n2 * f, sizes[k++] = n3 * f;
    for (int j = 0; j < N_FC; j++)
        sizes[k++] = b * s->fc[j] * f;
    return bf_model_alloc_buffers(m, bufs, sizes, N_BUFS, err);
}

/* x (B, S, S) -> m->out (B, 2). */
static bf_status forward(bf_model *m, const float *x, int B, bf_error *err)
{
    if (bf_model_check_batch(m, B, err) != BF_OK)
        return err->code;
    net_state *s = m->state;
    const bf_backend *be = m->be;
    s->backward_ready = 0;
    bf_status st = be->conv2d_forward(s->c1, x, W(m, CONV1_W), W(m, CONV1_B), B, 1, s->S, s->S,
                                      C1, K, -1, err);
    if (st == BF_OK) /* in inference the block keeps nothing for backward */
        st = be->nonlocal_forward(s->a1, m->inference ? NULL : s->ws, s->c1, W(m, NLB_FIRST), B,
                                  C1, CI, s->H1 * s->H1, SLOPE, err);
    if (st == BF_OK)
        st = be->conv2d_forward(s->a2, s->a1, W(m, CONV2_W), W(m, CONV2_B), B, C1, s->H1, s->H1,
                                C2, K, SLOPE, err);
    if (st == BF_OK)
        st = be->conv2d_forward(s->a3, s->a2, W(m, CONV3_W), W(m, CONV3_B), B, C2, s->H2, s->H2,
                                C3, K, SLOPE, err);
    for (int j = 0; st == BF_OK && j <= N_FC; j++) { /* layer j reads h[j-1] (a3 for j = 0) */
        int last = j == N_FC;
        st = be->linear_forward(last ? m->out : s->h[j], s->fc[j], j ? s->h[j - 1] : s->a3,
                                W(m, DENSE_W + 2 * j), W(m, DENSE_W + 2 * j + 1), B,
                                j ? s->fc[j - 1] : s->flat, s->fc[j], last ? -1 : SLOPE, err);
    }
    s->backward_ready = st == BF_OK && !m->inference;
    return st;
}

/* dout (B, 2) -> parameter gradients (accumulated), from the last forward(x). */
static bf_status backward(bf_model *m, const float *x, int B, float *dout, bf_error *err)
{
    if (bf_model_check_batch(m, B, err) != BF_OK)
        return err->code;
    net_state *s = m->state;
    const bf_backend *be = m->be;
    if (!s->backward_ready)
        return bf_error_set(err, BF_ERR_INVALID,
                            "braggnn: backward without a training forward pass");
    size_t f = sizeof(float), b = (size_t)B;
    size_t n1 = b * C1 * s->H1 * s->H1, n2 = b * C2 * s->H2 * s->H2, n3 = b * s->flat;
    bf_status st = BF_OK;
    float *zero[] = {s->dc1, s->da1, s->da2, s->da3};
    size_t nz[] = {n1, n1, n2, n3};
    for (int i = 0; st == BF_OK && i < 4; i++)
        st = be->zero(zero[i], nz[i] * f, err);
    for (int j = 0; st == BF_OK && j < N_FC; j++)
        st = be->zero(s->dh[j], b * s->fc[j] * f, err);
    /* dense layers, last first: layer j reads h[j-1] (a3 for j = 0) */
    float *d = dout;
    const float *out = m->out;
    for (int j = N_FC; st == BF_OK && j >= 0; j--) {
        const float *in = j ? s->h[j - 1] : s->a3;
        float *din = j ? s->dh[j - 1] : s->da3;
        int n_in = j ? s->fc[j - 1] : s->flat;
        st = be->linear_backward(din, G(m, DENSE_W + 2 * j), G(m, DENSE_W + 2 * j + 1), d,
                                 s->fc[j], out, in, W(m, DENSE_W + 2 * j), B, n_in, s->fc[j],
                                 j == N_FC ? -1 : SLOPE, err);
        d = din;
        out = in;
        /* the dense layers come last in the buffer: once layer j is done, everything
         * from its weight on is final (DESIGN §10: reductions overlap backward) */
        if (st == BF_OK)
            bf_model_grads_final(m, DENSE_W + 2 * j);
    }
    if (st == BF_OK)
        st = be->conv2d_backward(s->da2, G(m, CONV3_W), G(m, CONV3_B), s->da3, s->a3, s->a2,
                                 W(m, CONV3_W), B, C2, s->H2, s->H2, C3, K, SLOPE, err);
    if (st == BF_OK)
        bf_model_grads_final(m, CONV3_W);
    if (st == BF_OK)
        st = be->conv2d_backward(s->da1, G(m, CONV2_W), G(m, CONV2_B), s->da2, s->a2, s->a1,
                                 W(m, CONV2_W), B, C1, s->H1, s->H1, C2, K, SLOPE, err);
    if (st == BF_OK)
        bf_model_grads_final(m, CONV2_W);
    if (st == BF_OK)
        st = be->nonlocal_backward(s->dc1, G(m, NLB_FIRST), s->da1, s->a1, s->ws, s->c1,
                                   W(m, NLB_FIRST), B, C1, CI, s->H1 * s->H1, SLOPE, err);
    if (st == BF_OK)
        st = be->conv2d_backward(NULL, G(m, CONV1_W), G(m, CONV1_B), s->dc1, s->c1, x,
                                 W(m, CONV1_W), B, 1, s->S, s->S, C1, K, -1, err);
    /* the non-local block (params 0..7) sits before conv1 in the buffer: final only now */
    if (st == BF_OK)
        bf_model_grads_final(m, NLB_FIRST);
    return st;
}

/* A bare state_dict's shape: S from dense_layers.0's input width 8 (S - 6)^2, the
 * dense widths from the dense weights' rows. */
static bf_status shape_from_tensors(const bf_safetensors *st, bf_model_shape *out, bf_error *err)
{
    static const char *const needed[] = {"cnn_layers.0.weight", "nlb.theta_layer.weight",
                                         "nlb.out_cnn.weight", "dense_layers.8.weight"};
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
        if (!bf_safetensors_find(st, needed[i]))
            return bf_error_set(err, BF_ERR_INVALID, "no tensor '%s' (not a BraggNN state_dict)",
                                needed[i]);
    memset(out, 0, sizeof *out);
    for (int j = 0; j < N_FC; j++) {
        char name[64];
        snprintf(name, sizeof name, "dense_layers.%d.weight", 2 * j);
        const bf_st_tensor *t = bf_safetensors_find(st, name);
        if (!t || t->ndim != 2 || t->shape[0] < 1 || t->shape[0] > 65536)
            return bf_error_set(err, BF_ERR_INVALID, "tensor '%s': missing or not a 2-D weight",
                                name);
        out->dim[DIM_FC1 + j] = (int)t->shape[0];
        if (j == 0) {
            double side = sqrt((double)t->shape[1] / C3);
            int h3 = (int)lround(side);
            if (h3 < 1 || (int64_t)C3 * h3 * h3 != t->shape[1])
                return bf_error_set(err, BF_ERR_INVALID,
                                    "tensor '%s': %lld inputs is not 8 (S - 6)^2 for a patch "
                                    "size S", name, (long long)t->shape[1]);
            out->dim[DIM_PATCH] = h3 + 6;
        }
    }
    return BF_OK;
}

const bf_model_kind bf_braggnn_kind = {
    .name = "braggnn",
    .description = "BraggNN: Bragg-peak centre in a detector patch, non-local block CNN "
                   "(DESIGN §7)",
    .n_dims = 5,
    .dim_names = {"patch", "fc1", "fc2", "fc3", "fc4"},
    .default_shape = {{11, 16, 8, 4, 2}},
    .chunked_inference = 1, /* 41 KB of activations a sample, 33 k parameters */
    .chunked_training = 1,
    .create = create,
    .destroy = destroy,
    .reserve = reserve,
    .forward = forward,
    .backward = backward,
    .shape_from_tensors = shape_from_tensors,
};
