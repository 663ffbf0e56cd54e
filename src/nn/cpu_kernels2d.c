/* nn/cpu_kernels2d.c — the CPU backend's 2-D kernels (BraggNN, DESIGN §7): Conv2d
 * (stride 1, no padding) with a fused LeakyReLU, and the non-local block.
 *
 * One sample per thread at a time: a BraggNN sample's activations (64 x 9 x 9
 * floats, the 81 x 81 attention) fit in L1/L2, so each thread runs the whole op
 * on its sample with single-threaded sgemm calls (OpenBLAS's OpenMP build runs
 * serially inside a parallel region) and per-thread scratch. Weight gradients are
 * summed per thread and added in thread order: the same bits for the same thread
 * count. The reference backend (backend_ref.c) is the specification these are
 * tested against (tests/nn/test_backends.c). */
#include "nn/nn_internal.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* col (C K K, Ho Wo): row (c, ky, kx) holds x[c][oy + ky][ox + kx] for every output. */
static void im2col(float *restrict col, const float *restrict x, int C, int H, int W, int K)
{
    int Ho = H - K + 1, Wo = W - K + 1;
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                float *dst = col + ((size_t)(c * K + ky) * K + kx) * Ho * Wo;
                const float *src = x + (size_t)c * H * W + (size_t)ky * W + kx;
                for (int oy = 0; oy < Ho; oy++)
                    memcpy(dst + (size_t)oy * Wo, src + (size_t)oy * W, sizeof(float) * Wo);
            }
}

/* dx += the columns' contributions (the adjoint of im2col). */
static void col2im_add(float *restrict dx, const float *restrict col, int C, int H, int W, int K)
{
    int Ho = H - K + 1, Wo = W - K + 1;
    for (int c = 0; c < C; c++)
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++) {
                const float *src = col + ((size_t)(c * K + ky) * K + kx) * Ho * Wo;
                float *dst = dx + (size_t)c * H * W + (size_t)ky * W + kx;
                for (int oy = 0; oy < Ho; oy++)
                    for (int ox = 0; ox < Wo; ox++)
                        dst[(size_t)oy * W + ox] += src[(size_t)oy * Wo + ox];
            }
}

static void activate(float *x, size_t n, float slope)
{
    if (slope >= 0)
        for (size_t i = 0; i < n; i++)
            x[i] = x[i] > 0 ? x[i] : slope * x[i];
}

static void mask(float *dout, const float *out, size_t n, float slope)
{
    if (slope >= 0)
        for (size_t i = 0; i < n; i++)
            dout[i] = out[i] > 0 ? dout[i] : slope * dout[i];
}

/* db[o] += sum of row o of d (rows, cols). */
static void add_row_sums(float *db, const float *d, int rows, int cols)
{
    for (int o = 0; o < rows; o++) {
        float s = 0;
        for (int i = 0; i < cols; i++)
            s += d[(size_t)o * cols + i];
        db[o] += s;
    }
}

/* Per-thread gradient accumulators (stride floats per thread), summed into dst in
 * thread order: dst[i] += acc[t stride + offset + i] for i < count. */
static void reduce_threads(float *dst, const float *acc, int threads, size_t stride, size_t count,
                           size_t offset)
{
    for (int t = 0; t < threads; t++)
        for (size_t i = 0; i < count; i++)
            dst[i] += acc[(size_t)t * stride + offset + i];
}

/* ---- Conv2d ------------------------------------------------------------------------- */

bf_status cpu_conv2d_forward(float *out, const float *inp, const float *w, const float *b, int B,
                             int C_in, int H, int W, int C_out, int K, float slope, bf_error *err)
{
    int Ho = H - K + 1, Wo = W - K + 1, T = C_in * K * K, P = Ho * Wo;
    int failed = 0;
#pragma omp parallel
    {
        float *col = malloc(sizeof(float) * (size_t)T * P);
        if (!col) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int n = 0; n < B; n++) {
            if (!col)
                continue; /* reported below: the whole call fails */
            float *o = out + (size_t)n * C_out * P;
            im2col(col, inp + (size_t)n * C_in * H * W, C_in, H, W, K);
            for (int co = 0; co < C_out; co++)
                for (int p = 0; p < P; p++)
                    o[(size_t)co * P + p] = b ? b[co] : 0.0f;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, C_out, P, T, 1.0f, w, T, col,
                        P, 1.0f, o, P);
            activate(o, (size_t)C_out * P, slope);
        }
        free(col);
    }
    if (failed)
        return bf_error_set(err, BF_ERR_NOMEM, "conv2d: %zu bytes of scratch per thread",
                            sizeof(float) * (size_t)T * P);
    return BF_OK;
}

bf_status cpu_conv2d_backward(float *dinp, float *dw, float *db, float *dout, const float *out,
                              const float *inp, const float *w, int B, int C_in, int H, int W,
                              int C_out, int K, float slope, bf_error *err)
{
    int Ho = H - K + 1, Wo = W - K + 1, T = C_in * K * K, P = Ho * Wo;
    int threads = omp_get_max_threads();
    size_t nw = (size_t)C_out * T + (size_t)C_out; /* dw then db */
    float *acc = calloc((size_t)threads * nw, sizeof(float));
    if (!acc)
        return bf_error_set(err, BF_ERR_NOMEM, "conv2d backward: out of memory");
    int failed = 0;
#pragma omp parallel num_threads(threads)
    {
        float *tdw = acc + (size_t)omp_get_thread_num() * nw, *tdb = tdw + (size_t)C_out * T;
        float *col = malloc(sizeof(float) * 2 * (size_t)T * P), *dcol = col ? col + (size_t)T * P
                                                                            : NULL;
        if (!col) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int n = 0; n < B; n++) {
            if (!col)
                continue;
            float *d = dout + (size_t)n * C_out * P;
            mask(d, out + (size_t)n * C_out * P, (size_t)C_out * P, slope);
            add_row_sums(tdb, d, C_out, P);
            im2col(col, inp + (size_t)n * C_in * H * W, C_in, H, W, K);
            /* dw (C_out, T) += d (C_out, P) col^T (P, T) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, C_out, T, P, 1.0f, d, P, col, P,
                        1.0f, tdw, T);
            if (dinp) { /* dcol (T, P) = w^T (T, C_out) d (C_out, P) */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, P, C_out, 1.0f, w, T, d,
                            P, 0.0f, dcol, P);
                col2im_add(dinp + (size_t)n * C_in * H * W, dcol, C_in, H, W, K);
            }
        }
        free(col);
    }
    if (!failed) {
        if (dw)
            reduce_threads(dw, acc, threads, nw, (size_t)C_out * T, 0);
        if (db)
            reduce_threads(db, acc, threads, nw, (size_t)C_out, (size_t)C_out * T);
    }
    free(acc);
    if (failed)
        return bf_error_set(err, BF_ERR_NOMEM, "conv2d backward: %zu bytes of scratch per thread",
                            sizeof(float) * 2 * (size_t)T * P);
    return BF_OK;
}

/* ---- Non-local block ------------------------------------------------------------------ */

/* out (Co, N) = w (Co, Ci) x (Ci, N) + b, by sgemm on top of the bias. */
static void conv1x1(float *out, const float *x, const float *w, const float *b, int Ci, int N,
                    int Co)
{
    for (int o = 0; o < Co; o++)
        for (int p = 0; p < N; p++)
            out[(size_t)o * N + p] = b[o];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Co, N, Ci, 1.0f, w, Ci, x, N, 1.0f,
                out, N);
}

/* Softmax of each row of a (N, N) in place (float; the row maximum subtracted first). */
static void softmax_rows(float *a, int N)
{
    for (int r = 0; r < N; r++) {
        float *x = a + (size_t)r * N, m = x[0];
        for (int c = 1; c < N; c++)
            m = x[c] > m ? x[c] : m;
        float sum = 0;
        for (int c = 0; c < N; c++)
            sum += (x[c] = expf(x[c] - m));
        float inv = 1.0f / sum;
        for (int c = 0; c < N; c++)
            x[c] *= inv;
    }
}

bf_status cpu_nonlocal_forward(float *out, float *ws, const float *x, const float *w, int B,
                               int C, int Ci, int N, float slope, bf_error *err)
{
    size_t in = (size_t)Ci * C + Ci, nc = (size_t)B * Ci * N;
    const float *tw = w, *pw = w + in, *gw = w + 2 * in, *ow = w + 3 * in;
    float *theta = ws, *phi = theta + nc, *g = phi + nc, *A = g + nc, *y = A + (size_t)B * N * N;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < B; n++) {
        size_t oc = (size_t)n * Ci * N;
        const float *xn = x + (size_t)n * C * N;
        float *An = A + (size_t)n * N * N, *o = out + (size_t)n * C * N;
        conv1x1(theta + oc, xn, tw, tw + (size_t)Ci * C, C, N, Ci);
        conv1x1(phi + oc, xn, pw, pw + (size_t)Ci * C, C, N, Ci);
        conv1x1(g + oc, xn, gw, gw + (size_t)Ci * C, C, N, Ci);
        /* S (N, N) = theta^T phi */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, N, Ci, 1.0f, theta + oc, N,
                    phi + oc, N, 0.0f, An, N);
        softmax_rows(An, N);
        /* y (Ci, N) = g (Ci, N) A^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Ci, N, N, 1.0f, g + oc, N, An, N,
                    0.0f, y + oc, N);
        conv1x1(o, y + oc, ow, ow + (size_t)C * Ci, Ci, N, C);
        for (size_t i = 0; i < (size_t)C * N; i++)
            o[i] += xn[i];
        activate(o, (size_t)C * N, slope);
    }
    return BF_OK;
}

bf_status cpu_nonlocal_backward(float *dx, float *dw, float *dout, const float *out,
                                const float *ws, const float *x, const float *w, int B, int C,
                                int Ci, int N, float slope, bf_error *err)
{
    size_t in = (size_t)Ci * C + Ci, nc = (size_t)B * Ci * N;
    size_t nw = 3 * in + (size_t)C * Ci + C;
    const float *tw = w, *pw = w + in, *gw = w + 2 * in, *ow = w + 3 * in;
    const float *theta = ws, *phi = theta + nc, *g = phi + nc, *A = g + nc;
    const float *y = A + (size_t)B * N * N;
    int threads = omp_get_max_threads();
    float *acc = calloc((size_t)threads * nw, sizeof(float));
    if (!acc)
        return bf_error_set(err, BF_ERR_NOMEM, "nonlocal backward: out of memory");
    size_t scratch = 4 * (size_t)Ci * N + 2 * (size_t)N * N;
    int failed = 0;
#pragma omp parallel num_threads(threads)
    {
        float *tdw = acc + (size_t)omp_get_thread_num() * nw;
        float *s = malloc(sizeof(float) * scratch);
        if (!s) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int n = 0; n < B; n++) {
            if (!s)
                continue;
            float *dy = s, *dg = dy + (size_t)Ci * N, *dth = dg + (size_t)Ci * N;
            float *dph = dth + (size_t)Ci * N, *dA = dph + (size_t)Ci * N, *dS = dA + (size_t)N * N;
            size_t oc = (size_t)n * Ci * N;
            const float *xn = x + (size_t)n * C * N, *An = A + (size_t)n * N * N;
            float *d = dout + (size_t)n * C * N;
            mask(d, out + (size_t)n * C * N, (size_t)C * N, slope);
            float *dxn = dx ? dx + (size_t)n * C * N : NULL;
            if (dxn) /* the residual */
                for (size_t i = 0; i < (size_t)C * N; i++)
                    dxn[i] += d[i];
            /* out conv: dWo (C, Ci) += d y^T, dbo += row sums, dy (Ci, N) = Wo^T d */
            float *dwo = tdw + 3 * in;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, C, Ci, N, 1.0f, d, N, y + oc, N,
                        1.0f, dwo, Ci);
            add_row_sums(dwo + (size_t)C * Ci, d, C, N);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Ci, N, C, 1.0f, ow, Ci, d, N,
                        0.0f, dy, N);
            /* y = g A^T: dg = dy A, dA = dy^T g */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Ci, N, N, 1.0f, dy, N, An, N,
                        0.0f, dg, N);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, N, Ci, 1.0f, dy, N, g + oc, N,
                        0.0f, dA, N);
            /* softmax: dS = A (dA - sum_c dA_c A_c) per row */
            for (int r = 0; r < N; r++) {
                const float *a = An + (size_t)r * N, *da = dA + (size_t)r * N;
                float dot = 0;
                for (int c = 0; c < N; c++)
                    dot += da[c] * a[c];
                for (int c = 0; c < N; c++)
                    dS[(size_t)r * N + c] = a[c] * (da[c] - dot);
            }
            /* S = theta^T phi: dtheta = phi dS^T, dphi = theta dS */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Ci, N, N, 1.0f, phi + oc, N, dS,
                        N, 0.0f, dth, N);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Ci, N, N, 1.0f, theta + oc, N,
                        dS, N, 0.0f, dph, N);
            /* the three input convs: dW (Ci, C) += dz x^T, db += row sums, dx += W^T dz */
            const float *dz[3] = {dth, dph, dg}, *wz[3] = {tw, pw, gw};
            for (int k = 0; k < 3; k++) {
                float *dwk = tdw + k * in;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Ci, C, N, 1.0f, dz[k], N, xn,
                            N, 1.0f, dwk, C);
                add_row_sums(dwk + (size_t)Ci * C, dz[k], Ci, N);
                if (dxn)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, N, Ci, 1.0f, wz[k], C,
                                dz[k], N, 1.0f, dxn, N);
            }
        }
        free(s);
    }
    if (!failed && dw)
        reduce_threads(dw, acc, threads, nw, nw, 0);
    free(acc);
    if (failed)
        return bf_error_set(err, BF_ERR_NOMEM, "nonlocal backward: %zu bytes of scratch per "
                            "thread", sizeof(float) * scratch);
    return BF_OK;
}
