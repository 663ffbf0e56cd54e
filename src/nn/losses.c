/* nn/losses.c — cross-entropy, heteroscedastic regression (seed 001 Eq. 6) and MSE.
 *
 * Each returns the mean loss, accumulated in double, and WRITES (not adds) its
 * gradient to dpred when dpred != NULL, scaled by dloss. An empty batch gives NaN,
 * as PyTorch's mean over zero elements does. */
#include "braggflow/nn.h"

#include <math.h>

static void fill_nan(float *x, size_t n)
{
    if (x)
        for (size_t i = 0; i < n; i++)
            x[i] = NAN;
}

/* torch.nn.CrossEntropyLoss (reduction 'mean'): loss_n = logsumexp(x_n) - x_n[y_n],
 * with the row maximum subtracted first so exp never overflows;
 * d loss / d x_nc = (softmax(x_n)_c - [c == y_n]) / B. */
double bf_cross_entropy_loss(float *dlogits, const float *logits, const int32_t *labels, int B,
                             int C, float dloss)
{
    if (B <= 0 || C <= 0)
        return NAN;
    size_t total = (size_t)B * C;
    /* Labels are validated by the caller; still never index out of bounds: a bad label
     * gives a NaN loss and a NaN gradient, so the step cannot silently use stale values. */
    for (int n = 0; n < B; n++) {
        if (labels[n] < 0 || labels[n] >= C) {
            fill_nan(dlogits, total);
            return NAN;
        }
    }
    double loss = 0.0;
    double scale = (double)dloss / B;
    for (int n = 0; n < B; n++) {
        const float *x = logits + (size_t)n * C;
        double m = x[0];
        for (int c = 1; c < C; c++)
            if (x[c] > m)
                m = x[c];
        double sum = 0.0;
        for (int c = 0; c < C; c++)
            sum += exp((double)x[c] - m);
        double lse = m + log(sum);
        loss += lse - x[labels[n]];
        if (dlogits) {
            float *g = dlogits + (size_t)n * C;
            for (int c = 0; c < C; c++) {
                double p = exp((double)x[c] - lse);
                g[c] = (float)((p - (c == labels[n])) * scale);
            }
        }
    }
    return loss / B;
}

/* loss = mean_n( sum_j (y_nj - yhat_nj)^2 e^{-s_n} + s_n ), s_n = pred[n][P]:
 * d/dyhat_nj = 2 (yhat_nj - y_nj) e^{-s_n} / B, d/ds_n = (1 - sum_j (.)^2 e^{-s_n}) / B. */
double bf_hetero_loss(float *dpred, const float *pred, const float *target, int B, int P,
                      float dloss)
{
    if (B <= 0 || P < 0)
        return NAN;
    double loss = 0.0;
    double scale = (double)dloss / B;
    for (int n = 0; n < B; n++) {
        const float *yhat = pred + (size_t)n * (P + 1);
        const float *y = target + (size_t)n * P;
        double s = yhat[P];
        double inv_var = exp(-s);
        double sq = 0.0;
        for (int j = 0; j < P; j++) {
            double r = (double)y[j] - yhat[j];
            sq += r * r;
        }
        loss += sq * inv_var + s;
        if (dpred) {
            float *g = dpred + (size_t)n * (P + 1);
            for (int j = 0; j < P; j++)
                g[j] = (float)(2.0 * ((double)yhat[j] - y[j]) * inv_var * scale);
            g[P] = (float)((1.0 - sq * inv_var) * scale);
        }
    }
    return loss / B;
}

/* torch.nn.MSELoss (reduction 'mean'): d/dpred = 2 (pred - target) / (B P). */
double bf_mse_loss(float *dpred, const float *pred, const float *target, int B, int P,
                   float dloss)
{
    if (B <= 0 || P <= 0)
        return NAN;
    size_t total = (size_t)B * P;
    double loss = 0.0;
    double scale = 2.0 * (double)dloss / (double)total;
    for (size_t i = 0; i < total; i++) {
        double r = (double)pred[i] - target[i];
        loss += r * r;
        if (dpred)
            dpred[i] = (float)(r * scale);
    }
    return loss / (double)total;
}
