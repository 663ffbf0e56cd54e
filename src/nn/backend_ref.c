/* nn/backend_ref.c — the reference backend: every backend operation as a plain
 * composition of the reference layers (layers.c, layers2d.c) on host memory.
 *
 * It is the specification of the operation table: the CPU backend's fused and
 * blocked kernels are tested against it op by op and on whole models (forward,
 * backward, optimiser steps), and a CUDA backend is tested against it the same
 * way. It is slow on purpose (no BLAS, sums in double) and allocates its
 * temporaries per call; every allocation failure is returned as BF_ERR_NOMEM. */
#include "nn/nn_internal.h"

#include <stdlib.h>
#include <string.h>

static bf_status ref_alloc(size_t nbytes, void **out, bf_error *err)
{
    *out = calloc(1, nbytes ? nbytes : 1);
    if (!*out)
        return bf_error_set(err, BF_ERR_NOMEM, "reference backend: cannot allocate %zu bytes",
                            nbytes);
    return BF_OK;
}

static void ref_set_threads(int threads) { (void)threads; }

/* Temporaries of n floats, zeroed; NULL after a failure reported in err. */
static float *temp(size_t n, const char *what, bf_error *err)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    if (!p)
        bf_error_set(err, BF_ERR_NOMEM, "reference backend: %s: cannot allocate %zu floats",
                     what, n);
    return p;
}

/* The activation applied in place (slope >= 0) and its derivative read from the
 * activated output: lrelu(x) has the sign of x for slope > 0, and is 0 where x <= 0
 * for slope 0, where the derivative is 0 too. */
static void activate(float *x, size_t n, float slope)
{
    if (slope >= 0)
        bf_leaky_relu_forward(x, x, n, slope);
}

static void mask(float *dout, const float *out, size_t n, float slope)
{
    if (slope >= 0)
        for (size_t i = 0; i < n; i++)
            dout[i] = out[i] > 0 ? dout[i] : slope * dout[i];
}

/* ---- Linear with an output row stride ---------------------------------------------- */

static bf_status ref_linear_forward(float *out, int ldo, const float *inp, const float *w,
                                    const float *b, int B, int n_in, int n_out, float slope,
                                    bf_error *err)
{
    for (int n = 0; n < B; n++) {
        float *o = out + (size_t)n * ldo;
        bf_linear_forward(o, inp + (size_t)n * n_in, w, b, 1, n_in, n_out);
        activate(o, (size_t)n_out, slope);
    }
    return BF_OK;
}

static bf_status ref_linear_backward(float *dinp, float *dw, float *db, float *dout, int ldo,
                                     const float *out, const float *inp, const float *w, int B,
                                     int n_in, int n_out, float slope, bf_error *err)
{
    float *d = temp((size_t)B * n_out, "linear", err);
    if (!d)
        return BF_ERR_NOMEM;
    for (int n = 0; n < B; n++) {
        float *row = dout + (size_t)n * ldo;
        mask(row, out + (size_t)n * ldo, (size_t)n_out, slope);
        memcpy(d + (size_t)n * n_out, row, sizeof(float) * (size_t)n_out);
    }
    bf_linear_backward(dinp, dw, db, d, inp, w, B, n_in, n_out);
    free(d);
    return BF_OK;
}

/* ---- Conv1d -> MaxPool1d(2, 2) -> LeakyReLU ------------------------------------------ */

static bf_status ref_conv1d_pool_lrelu_forward(float *out, uint8_t *argmax, const float *inp,
                                               const float *w, const float *b, int B, int C_in,
                                               int L_in, int C_out, int K, int stride,
                                               float slope, bf_error *err)
{
    int Lc = (L_in - K) / stride + 1, P = Lc / 2;
    float *conv = temp((size_t)B * C_out * Lc, "conv1d", err);
    if (!conv)
        return BF_ERR_NOMEM;
    bf_conv1d_forward(conv, inp, w, b, B, C_in, L_in, C_out, K, stride);
    bf_maxpool1d_forward(out, conv, B * C_out, Lc, 2, 2);
    size_t n_out = (size_t)B * C_out * P;
    if (argmax)
        for (size_t r = 0; r < (size_t)B * C_out; r++)
            for (int p = 0; p < P; p++) /* ties go to the first position */
                argmax[r * P + p] = conv[r * Lc + 2 * p + 1] > conv[r * Lc + 2 * p];
    activate(out, n_out, slope);
    free(conv);
    return BF_OK;
}

/* Recomputes the convolution (the reference pool backward reads its argmax from it). */
static bf_status ref_conv1d_pool_lrelu_backward(float *dinp, float *dw, float *db,
                                                const float *dout, const float *out,
                                                const uint8_t *argmax, const float *inp,
                                                const float *w, int B, int C_in, int L_in,
                                                int C_out, int K, int stride, float slope,
                                                bf_error *err)
{
    int Lc = (L_in - K) / stride + 1, P = Lc / 2;
    size_t n_c = (size_t)B * C_out * Lc, n_p = (size_t)B * C_out * P;
    float *conv = temp(n_c, "conv1d", err), *dconv = conv ? temp(n_c, "conv1d", err) : NULL;
    float *dpool = dconv ? temp(n_p, "conv1d", err) : NULL;
    if (!dpool) {
        free(conv);
        free(dconv);
        return BF_ERR_NOMEM;
    }
    bf_conv1d_forward(conv, inp, w, NULL, B, C_in, L_in, C_out, K, stride);
    memcpy(dpool, dout, n_p * sizeof *dpool);
    mask(dpool, out, n_p, slope);
    bf_maxpool1d_backward(dconv, dpool, conv, B * C_out, Lc, 2, 2);
    bf_conv1d_backward(dinp, dw, db, dconv, inp, w, B, C_in, L_in, C_out, K, stride);
    free(conv);
    free(dconv);
    free(dpool);
    return BF_OK;
}

/* ---- Conv2d (stride 1, no padding) ----------------------------------------------------- */

static bf_status ref_conv2d_forward(float *out, const float *inp, const float *w, const float *b,
                                    int B, int C_in, int H, int W, int C_out, int K, float slope,
                                    bf_error *err)
{
    bf_conv2d_forward(out, inp, w, b, B, C_in, H, W, C_out, K, 1, 0);
    activate(out, (size_t)B * C_out * (H - K + 1) * (W - K + 1), slope);
    return BF_OK;
}

static bf_status ref_conv2d_backward(float *dinp, float *dw, float *db, float *dout,
                                     const float *out, const float *inp, const float *w, int B,
                                     int C_in, int H, int W, int C_out, int K, float slope,
                                     bf_error *err)
{
    mask(dout, out, (size_t)B * C_out * (H - K + 1) * (W - K + 1), slope);
    bf_conv2d_backward(dinp, dw, db, dout, inp, w, B, C_in, H, W, C_out, K, 1, 0);
    return BF_OK;
}

/* ---- Non-local block ------------------------------------------------------------------- */

/* The block's weights in state_dict order (see bf_backend.nonlocal_forward). */
typedef struct {
    const float *theta_w, *theta_b, *phi_w, *phi_b, *g_w, *g_b, *out_w, *out_b;
} nonlocal_weights;

static nonlocal_weights nonlocal_split(const float *w, int C, int Ci)
{
    size_t in = (size_t)Ci * C + Ci; /* one C -> Ci conv: weight + bias */
    return (nonlocal_weights){w,          w + (size_t)Ci * C,         w + in,
                              w + in + (size_t)Ci * C,  w + 2 * in, w + 2 * in + (size_t)Ci * C,
                              w + 3 * in, w + 3 * in + (size_t)C * Ci};
}

/* 1x1 conv as the reference Conv2d with K = 1 on (B, C, N, 1). */
static void conv1x1(float *out, const float *x, const float *w, const float *b, int B, int C_in,
                    int N, int C_out)
{
    bf_conv2d_forward(out, x, w, b, B, C_in, N, 1, C_out, 1, 1, 0);
}

static bf_status ref_nonlocal_forward(float *out, float *ws, const float *x, const float *w,
                                      int B, int C, int Ci, int N, float slope, bf_error *err)
{
    nonlocal_weights nw = nonlocal_split(w, C, Ci);
    size_t nc = (size_t)B * Ci * N;
    float *own = NULL; /* inference: a workspace of its own, dropped at the end */
    if (!ws && !(ws = own = temp(bf_nonlocal_workspace(B, Ci, N), "nonlocal", err)))
        return BF_ERR_NOMEM;
    float *theta = ws, *phi = theta + nc, *g = phi + nc, *A = g + nc, *y = A + (size_t)B * N * N;
    conv1x1(theta, x, nw.theta_w, nw.theta_b, B, C, N, Ci);
    conv1x1(phi, x, nw.phi_w, nw.phi_b, B, C, N, Ci);
    conv1x1(g, x, nw.g_w, nw.g_b, B, C, N, Ci);
    /* S (N, N) = theta^T phi: theta stored (Ci, N) is op(a) transposed */
    bf_bmm_forward(A, theta, phi, B, N, Ci, N, 1, 0);
    bf_softmax_forward(A, A, B * N, N);
    /* y (Ci, N) = g (Ci, N) A^T (N, N) */
    bf_bmm_forward(y, g, A, B, Ci, N, N, 0, 1);
    conv1x1(out, y, nw.out_w, nw.out_b, B, Ci, N, C);
    size_t n_out = (size_t)B * C * N;
    for (size_t i = 0; i < n_out; i++)
        out[i] += x[i];
    activate(out, n_out, slope);
    free(own);
    return BF_OK;
}

static bf_status ref_nonlocal_backward(float *dx, float *dw, float *dout, const float *out,
                                       const float *ws, const float *x, const float *w, int B,
                                       int C, int Ci, int N, float slope, bf_error *err)
{
    nonlocal_weights nw = nonlocal_split(w, C, Ci);
    size_t nc = (size_t)B * Ci * N, nn = (size_t)B * N * N, n_out = (size_t)B * C * N;
    const float *theta = ws, *phi = theta + nc, *g = phi + nc, *A = g + nc, *y = A + nn;
    float *scratch = temp(4 * nc + 2 * nn, "nonlocal", err);
    if (!scratch)
        return BF_ERR_NOMEM;
    float *dtheta = scratch, *dphi = dtheta + nc, *dg = dphi + nc, *dy = dg + nc;
    float *dA = dy + nc, *dS = dA + nn;
    float *dw_theta = dw, *dw_phi = dw + (size_t)Ci * C + Ci, *dw_g = dw_phi + (size_t)Ci * C + Ci;
    float *dw_out = dw_g + (size_t)Ci * C + Ci;

    mask(dout, out, n_out, slope);
    if (dx) /* the residual */
        for (size_t i = 0; i < n_out; i++)
            dx[i] += dout[i];
    bf_conv2d_backward(dy, dw_out, dw_out + (size_t)C * Ci, dout, y, nw.out_w, B, Ci, N, 1, C, 1,
                       1, 0);
    bf_bmm_backward(dg, dA, dy, g, A, B, Ci, N, N, 0, 1);
    bf_softmax_backward(dS, dA, A, B * N, N);
    bf_bmm_backward(dtheta, dphi, dS, theta, phi, B, N, Ci, N, 1, 0);
    bf_conv2d_backward(dx, dw_theta, dw_theta + (size_t)Ci * C, dtheta, x, nw.theta_w, B, C, N,
                       1, Ci, 1, 1, 0);
    bf_conv2d_backward(dx, dw_phi, dw_phi + (size_t)Ci * C, dphi, x, nw.phi_w, B, C, N, 1, Ci, 1,
                       1, 0);
    bf_conv2d_backward(dx, dw_g, dw_g + (size_t)Ci * C, dg, x, nw.g_w, B, C, N, 1, Ci, 1, 1, 0);
    free(scratch);
    return BF_OK;
}

static const bf_backend reference_backend = {
    .name = "reference",
    .alloc = ref_alloc,
    .free = host_free,
    .upload = host_transfer,
    .download = host_transfer,
    .zero = host_zero,
    .set_threads = ref_set_threads,
    .linear_forward = ref_linear_forward,
    .linear_backward = ref_linear_backward,
    .conv1d_pool_lrelu_forward = ref_conv1d_pool_lrelu_forward,
    .conv1d_pool_lrelu_backward = ref_conv1d_pool_lrelu_backward,
    .conv2d_forward = ref_conv2d_forward,
    .conv2d_backward = ref_conv2d_backward,
    .nonlocal_forward = ref_nonlocal_forward,
    .nonlocal_backward = ref_nonlocal_backward,
    /* the optimiser's reference functions (params.c) are already plain loops */
    .grad_norm_clip = host_grad_norm_clip,
    .adam_step = host_adam_step,
};

const bf_backend *bf_backend_reference(void) { return &reference_backend; }

size_t bf_nonlocal_workspace(int B, int Ci, int N)
{
    return (size_t)B * (4 * (size_t)Ci * N + (size_t)N * N);
}
