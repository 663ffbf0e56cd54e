/* nn/layers2d.c — reference 2-D layers (Conv2d, MaxPool2d), batched matmul and softmax,
 * for BraggNN-style models. Plain loops, no BLAS, PyTorch semantics
 * (torch.nn.Conv2d with zero padding, MaxPool2d without padding, torch.bmm,
 * torch.softmax(dim=-1)). Backward passes ACCUMULATE into their outputs; any may be NULL. */
#include "braggflow/nn.h"

#include <math.h>

/* ---- Conv2d ------------------------------------------------------------------------ */

void bf_conv2d_forward(float *out, const float *inp, const float *w, const float *b, int B,
                       int C_in, int H, int W, int C_out, int K, int stride, int pad)
{
    int H_out = (H + 2 * pad - K) / stride + 1, W_out = (W + 2 * pad - K) / stride + 1;
    if (H + 2 * pad < K || W + 2 * pad < K)
        return;
    for (int n = 0; n < B; n++) {
        for (int co = 0; co < C_out; co++) {
            float *o = out + ((size_t)n * C_out + co) * H_out * W_out;
            for (int oy = 0; oy < H_out; oy++) {
                for (int ox = 0; ox < W_out; ox++) {
                    float acc = b ? b[co] : 0.0f;
                    for (int ci = 0; ci < C_in; ci++) {
                        const float *x = inp + ((size_t)n * C_in + ci) * H * W;
                        const float *wk = w + ((size_t)co * C_in + ci) * K * K;
                        for (int ky = 0; ky < K; ky++) {
                            int iy = oy * stride - pad + ky;
                            if (iy < 0 || iy >= H)
                                continue; /* zero padding */
                            for (int kx = 0; kx < K; kx++) {
                                int ix = ox * stride - pad + kx;
                                if (ix >= 0 && ix < W)
                                    acc += wk[ky * K + kx] * x[(size_t)iy * W + ix];
                            }
                        }
                    }
                    o[(size_t)oy * W_out + ox] = acc;
                }
            }
        }
    }
}

void bf_conv2d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int B, int C_in, int H, int W, int C_out, int K,
                        int stride, int pad)
{
    int H_out = (H + 2 * pad - K) / stride + 1, W_out = (W + 2 * pad - K) / stride + 1;
    if (H + 2 * pad < K || W + 2 * pad < K)
        return;
    for (int n = 0; n < B; n++) {
        for (int co = 0; co < C_out; co++) {
            const float *g = dout + ((size_t)n * C_out + co) * H_out * W_out;
            if (db) {
                double s = 0.0;
                for (size_t i = 0; i < (size_t)H_out * W_out; i++)
                    s += g[i];
                db[co] += (float)s;
            }
            for (int ci = 0; ci < C_in; ci++) {
                const float *x = inp + ((size_t)n * C_in + ci) * H * W;
                const float *wk = w + ((size_t)co * C_in + ci) * K * K;
                float *dx = dinp ? dinp + ((size_t)n * C_in + ci) * H * W : NULL;
                float *dwk = dw ? dw + ((size_t)co * C_in + ci) * K * K : NULL;
                for (int ky = 0; ky < K; ky++) {
                    for (int kx = 0; kx < K; kx++) {
                        double s = 0.0;
                        float wv = wk[ky * K + kx];
                        for (int oy = 0; oy < H_out; oy++) {
                            int iy = oy * stride - pad + ky;
                            if (iy < 0 || iy >= H)
                                continue;
                            for (int ox = 0; ox < W_out; ox++) {
                                int ix = ox * stride - pad + kx;
                                if (ix < 0 || ix >= W)
                                    continue;
                                float gv = g[(size_t)oy * W_out + ox];
                                s += (double)gv * x[(size_t)iy * W + ix];
                                if (dx)
                                    dx[(size_t)iy * W + ix] += wv * gv;
                            }
                        }
                        if (dwk)
                            dwk[ky * K + kx] += (float)s;
                    }
                }
            }
        }
    }
}

/* ---- MaxPool2d --------------------------------------------------------------------- */

/* Offset (iy * W + ix) of the window's maximum: the first in row-major order on ties,
 * the first NaN if any, as PyTorch's CPU kernel (`val > max || isnan(val)`). */
static size_t argmax_window2d(const float *x, int W, int y0, int x0, int K)
{
    size_t best = (size_t)y0 * W + x0;
    float m = x[best];
    if (isnan(m))
        return best;
    for (int ky = 0; ky < K; ky++) {
        for (int kx = 0; kx < K; kx++) {
            size_t at = (size_t)(y0 + ky) * W + (x0 + kx);
            if (x[at] > m || isnan(x[at])) {
                best = at;
                m = x[at];
                if (isnan(m))
                    return best;
            }
        }
    }
    return best;
}

void bf_maxpool2d_forward(float *out, const float *inp, int N, int H, int W, int K, int stride)
{
    if (H < K || W < K)
        return;
    int H_out = (H - K) / stride + 1, W_out = (W - K) / stride + 1;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * H * W;
        float *o = out + (size_t)n * H_out * W_out;
        for (int oy = 0; oy < H_out; oy++)
            for (int ox = 0; ox < W_out; ox++)
                o[(size_t)oy * W_out + ox] =
                    x[argmax_window2d(x, W, oy * stride, ox * stride, K)];
    }
}

void bf_maxpool2d_backward(float *dinp, const float *dout, const float *inp, int N, int H, int W,
                           int K, int stride)
{
    if (dinp == NULL || H < K || W < K)
        return;
    int H_out = (H - K) / stride + 1, W_out = (W - K) / stride + 1;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * H * W;
        const float *g = dout + (size_t)n * H_out * W_out;
        float *dx = dinp + (size_t)n * H * W;
        for (int oy = 0; oy < H_out; oy++)
            for (int ox = 0; ox < W_out; ox++)
                dx[argmax_window2d(x, W, oy * stride, ox * stride, K)] +=
                    g[(size_t)oy * W_out + ox];
    }
}

/* ---- Batched matmul ------------------------------------------------------------------ */

/* Element (i, k) of op(a) for a stored (M, K), or (K, M) when transposed. */
static float op_at(const float *a, int trans, int rows, int cols, int i, int k)
{
    return trans ? a[(size_t)k * rows + i] : a[(size_t)i * cols + k];
}

/* c (M, P) = op(a) op(b) per batch; a (M, K) or (K, M) when trans_a, b (K, P) or (P, K). */
void bf_bmm_forward(float *c, const float *a, const float *b, int N, int M, int K, int P,
                    int trans_a, int trans_b)
{
    size_t sa = (size_t)M * K, sb = (size_t)K * P, sc = (size_t)M * P;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < P; j++) {
                double s = 0.0;
                for (int k = 0; k < K; k++)
                    s += (double)op_at(a + n * sa, trans_a, M, K, i, k) *
                         op_at(b + n * sb, trans_b, K, P, k, j);
                c[n * sc + (size_t)i * P + j] = (float)s;
            }
}

/* With C = op(A) op(B): d op(A)[i][k] = sum_j dC[i][j] op(B)[k][j] and
 * d op(B)[k][j] = sum_i op(A)[i][k] dC[i][j]; a transposed operand's gradient is
 * stored transposed, like the operand. */
void bf_bmm_backward(float *da, float *db, const float *dc, const float *a, const float *b, int N,
                     int M, int K, int P, int trans_a, int trans_b)
{
    size_t sa = (size_t)M * K, sb = (size_t)K * P, sc = (size_t)M * P;
    for (int n = 0; n < N; n++) {
        const float *an = a + n * sa, *bn = b + n * sb, *gn = dc + n * sc;
        if (da)
            for (int i = 0; i < M; i++)
                for (int k = 0; k < K; k++) {
                    double s = 0.0;
                    for (int j = 0; j < P; j++)
                        s += (double)gn[(size_t)i * P + j] * op_at(bn, trans_b, K, P, k, j);
                    da[n * sa + (trans_a ? (size_t)k * M + i : (size_t)i * K + k)] += (float)s;
                }
        if (db)
            for (int k = 0; k < K; k++)
                for (int j = 0; j < P; j++) {
                    double s = 0.0;
                    for (int i = 0; i < M; i++)
                        s += (double)op_at(an, trans_a, M, K, i, k) * gn[(size_t)i * P + j];
                    db[n * sb + (trans_b ? (size_t)j * K + k : (size_t)k * P + j)] += (float)s;
                }
    }
}

/* ---- Softmax ------------------------------------------------------------------------- */

/* Row maximum subtracted before exp (no overflow), sum in double. */
void bf_softmax_forward(float *out, const float *inp, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        const float *x = inp + (size_t)r * cols;
        float *o = out + (size_t)r * cols;
        float m = -INFINITY;
        for (int c = 0; c < cols; c++)
            m = x[c] > m ? x[c] : m;
        double sum = 0.0;
        for (int c = 0; c < cols; c++)
            sum += exp((double)x[c] - m);
        for (int c = 0; c < cols; c++)
            o[c] = (float)(exp((double)x[c] - m) / sum);
    }
}

/* dinp += y * (dout - sum_c dout_c y_c), the softmax Jacobian-vector product. */
void bf_softmax_backward(float *dinp, const float *dout, const float *out, int rows, int cols)
{
    if (dinp == NULL)
        return;
    for (int r = 0; r < rows; r++) {
        const float *y = out + (size_t)r * cols;
        const float *g = dout + (size_t)r * cols;
        float *dx = dinp + (size_t)r * cols;
        double s = 0.0;
        for (int c = 0; c < cols; c++)
            s += (double)g[c] * y[c];
        for (int c = 0; c < cols; c++)
            dx[c] += (float)(y[c] * (g[c] - s));
    }
}
