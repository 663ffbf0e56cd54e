/* nn/layers.c — reference 1-D layers (Conv1d, MaxPool1d, LeakyReLU, Linear).
 *
 * These are the specification the CPU and CUDA backends are tested against, so
 * they are obviously-correct plain loops (no BLAS), sums in double.
 * Semantics follow PyTorch (torch.nn.Conv1d without padding, MaxPool1d,
 * LeakyReLU, Linear). Backward passes ACCUMULATE into dinp, dw, db (any may be
 * NULL), so a layer whose input feeds several consumers needs no extra buffer. */
#include "braggflow/nn.h"

#include <math.h>
#include <string.h>

/* ---- Conv1d ------------------------------------------------------------------------ */

void bf_conv1d_forward(float *out, const float *inp, const float *w, const float *b, int B,
                       int C_in, int L_in, int C_out, int K, int stride)
{
    if (L_in < K)
        return; /* no output positions */
    int L_out = (L_in - K) / stride + 1;
    for (int n = 0; n < B; n++) {
        for (int co = 0; co < C_out; co++) {
            float *o = out + ((size_t)n * C_out + co) * L_out;
            float bias = b ? b[co] : 0.0f;
            for (int l = 0; l < L_out; l++)
                o[l] = bias;
            for (int ci = 0; ci < C_in; ci++) {
                const float *x = inp + ((size_t)n * C_in + ci) * L_in;
                const float *wk = w + ((size_t)co * C_in + ci) * K;
                for (int k = 0; k < K; k++) {
                    float wv = wk[k];
                    for (int l = 0; l < L_out; l++)
                        o[l] += wv * x[(size_t)l * stride + k];
                }
            }
        }
    }
}

void bf_conv1d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int B, int C_in, int L_in, int C_out, int K, int stride)
{
    if (L_in < K)
        return;
    int L_out = (L_in - K) / stride + 1;
    for (int n = 0; n < B; n++) {
        for (int co = 0; co < C_out; co++) {
            const float *g = dout + ((size_t)n * C_out + co) * L_out;
            if (db) {
                double s = 0.0;
                for (int l = 0; l < L_out; l++)
                    s += g[l];
                db[co] += (float)s;
            }
            for (int ci = 0; ci < C_in; ci++) {
                const float *x = inp + ((size_t)n * C_in + ci) * L_in;
                const float *wk = w + ((size_t)co * C_in + ci) * K;
                float *dx = dinp ? dinp + ((size_t)n * C_in + ci) * L_in : NULL;
                float *dwk = dw ? dw + ((size_t)co * C_in + ci) * K : NULL;
                for (int k = 0; k < K; k++) {
                    if (dwk) {
                        double s = 0.0;
                        for (int l = 0; l < L_out; l++)
                            s += (double)g[l] * x[(size_t)l * stride + k];
                        dwk[k] += (float)s;
                    }
                    if (dx) {
                        float wv = wk[k];
                        for (int l = 0; l < L_out; l++)
                            dx[(size_t)l * stride + k] += wv * g[l];
                    }
                }
            }
        }
    }
}

/* ---- MaxPool1d --------------------------------------------------------------------- */

/* Index of the window's maximum: the first one on ties and the first NaN if any,
 * as PyTorch's CPU kernel (`val > max || isnan(val)`, stopping at a NaN). */
static int argmax_window(const float *x, int K)
{
    int best = 0;
    float m = x[0];
    if (isnan(m))
        return 0;
    for (int k = 1; k < K; k++) {
        if (x[k] > m || isnan(x[k])) {
            best = k;
            m = x[k];
            if (isnan(m))
                break;
        }
    }
    return best;
}

void bf_maxpool1d_forward(float *out, const float *inp, int N, int L, int K, int stride)
{
    if (L < K)
        return;
    int L_out = (L - K) / stride + 1;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * L;
        float *o = out + (size_t)n * L_out;
        for (int l = 0; l < L_out; l++) {
            const float *win = x + (size_t)l * stride;
            o[l] = win[argmax_window(win, K)];
        }
    }
}

void bf_maxpool1d_backward(float *dinp, const float *dout, const float *inp, int N, int L, int K,
                           int stride)
{
    if (dinp == NULL || L < K)
        return;
    int L_out = (L - K) / stride + 1;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * L;
        const float *g = dout + (size_t)n * L_out;
        float *dx = dinp + (size_t)n * L;
        for (int l = 0; l < L_out; l++) {
            size_t start = (size_t)l * stride;
            dx[start + argmax_window(x + start, K)] += g[l];
        }
    }
}

/* ---- LeakyReLU --------------------------------------------------------------------- */

void bf_leaky_relu_forward(float *out, const float *inp, size_t n, float slope)
{
    for (size_t i = 0; i < n; i++)
        out[i] = inp[i] > 0.0f ? inp[i] : slope * inp[i];
}

/* Gradient at 0 is slope, as PyTorch's leaky_relu_backward (`x > 0 ? g : g * slope`). */
void bf_leaky_relu_backward(float *dinp, const float *dout, const float *inp, size_t n,
                            float slope)
{
    if (dinp == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        dinp[i] += inp[i] > 0.0f ? dout[i] : slope * dout[i];
}

/* ---- Linear ------------------------------------------------------------------------ */

/* out[n][o] = b[o] + sum_k inp[n][k] w[o][k], summed in double. */
void bf_linear_forward(float *out, const float *inp, const float *w, const float *b, int B,
                       int n_in, int n_out)
{
    for (int n = 0; n < B; n++)
        for (int o = 0; o < n_out; o++) {
            const float *x = inp + (size_t)n * n_in, *wo = w + (size_t)o * n_in;
            double s = b ? b[o] : 0.0;
            for (int k = 0; k < n_in; k++)
                s += (double)x[k] * wo[k];
            out[(size_t)n * n_out + o] = (float)s;
        }
}

void bf_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int B, int n_in, int n_out)
{
    for (int o = 0; o < n_out; o++) {
        if (db) {
            double s = 0.0;
            for (int n = 0; n < B; n++)
                s += dout[(size_t)n * n_out + o];
            db[o] += (float)s;
        }
        if (dw) /* dw (n_out, n_in) += dout^T (n_out, B) inp (B, n_in) */
            for (int k = 0; k < n_in; k++) {
                double s = 0.0;
                for (int n = 0; n < B; n++)
                    s += (double)dout[(size_t)n * n_out + o] * inp[(size_t)n * n_in + k];
                dw[(size_t)o * n_in + k] += (float)s;
            }
    }
    if (dinp) /* dinp (B, n_in) += dout (B, n_out) w (n_out, n_in) */
        for (int n = 0; n < B; n++)
            for (int k = 0; k < n_in; k++) {
                double s = 0.0;
                for (int o = 0; o < n_out; o++)
                    s += (double)dout[(size_t)n * n_out + o] * w[(size_t)o * n_in + k];
                dinp[(size_t)n * n_in + k] += (float)s;
            }
}
