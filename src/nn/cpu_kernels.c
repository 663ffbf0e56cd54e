/* nn/cpu_kernels.c — the CPU backend's fused kernels.
 *
 * Why fused: for the structure model the first convolution's output alone is
 * 16 x 2804 floats per pattern (92 MB per batch of 512); writing it out, then
 * re-reading it for the activation and again for the pooling is what makes a
 * layer-by-layer framework memory-bound here. These kernels run one pattern at
 * a time per thread and compute conv -> MaxPool(2, 2) -> LeakyReLU in registers:
 * only the pooled, activated result is written (and, for training, one byte
 * per output saying which of the two pooled positions won).
 *
 * The trick that makes pooling free: the two positions a pooled output p
 * compares, 2p and 2p+1, are both contiguous streams in p once the input is
 * split into 2s phases (s = stride). Phase q holds x[m 2s + q]; conv position
 * 2p reads x[2p s + k] = phase (k mod 2s) at p + k div 2s, and position 2p+1
 * reads phase ((s + k) mod 2s) at p + (s + k) div 2s. So each tap is two
 * contiguous vector loads and the pool is an elementwise max of two
 * accumulators.
 *
 * SIMD without intrinsics: GCC/clang vector extensions; with GCC, target_clones
 * compiles x86-64-v4 (AVX-512), v3 (AVX2 + FMA) and baseline versions and picks
 * one at load time.
 * The reference layers (layers.c) are the specification these are tested
 * against (tests/nn/test_cpu_backend.c). */
#include "nn/nn_internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/cpu_simd.h"

static int round_up(int n, int m) { return (n + m - 1) / m * m; }

/* ---- geometry ------------------------------------------------------------------ */
typedef struct {
    int C_in, L_in, C_out, C4, K, stride, T;  /* C4: C_out rounded up to 4; T = C_in K taps */
    int S2;                                   /* phases: 2 x stride */
    int Lc, P, Pv;                            /* conv length, pooled length, P rounded to VL */
    int M, Mv, Ms;                            /* phase length, rounded to 4 VL, row stride */
    int pad, ldd;                             /* backward: zero margin and row stride of dE/dO */
    int *even, *odd;                          /* tap t -> phase row offset + shift, for 2p / 2p+1 */
} conv_geom;

static conv_geom *conv_geom_new(int C_in, int L_in, int C_out, int K, int stride)
{
    conv_geom *g = malloc(sizeof *g + 2 * sizeof(int) * (size_t)C_in * K);
    if (!g)
        return NULL;
    g->even = (int *)(g + 1);
    g->odd = g->even + C_in * K;
    g->C_in = C_in, g->L_in = L_in, g->C_out = C_out, g->C4 = round_up(C_out, 4);
    g->K = K, g->stride = stride, g->T = C_in * K, g->S2 = 2 * stride;
    g->Lc = (L_in - K) / stride + 1, g->P = g->Lc / 2, g->Pv = round_up(g->P, VL);
    g->M = (L_in + g->S2 - 1) / g->S2, g->Mv = round_up(g->M, 4 * VL); /* conv_dx's block */
    int shift = (stride + K - 1) / g->S2; /* largest tap shift */
    g->pad = shift + 1;
    /* whole vectors are read past P (up to Pv) and past M: room and zeros for them */
    g->Ms = round_up((g->Mv > g->Pv ? g->Mv : g->Pv) + shift + 1, VL);
    g->ldd = g->pad + g->Ms + g->pad;
    for (int c = 0; c < C_in; c++)
        for (int k = 0; k < K; k++) {
            int q0 = k % g->S2, q1 = (stride + k) % g->S2;
            g->even[c * K + k] = (c * g->S2 + q0) * g->Ms + k / g->S2;
            g->odd[c * K + k] = (c * g->S2 + q1) * g->Ms + (stride + k) / g->S2;
        }
    return g;
}

static size_t phases_size(const conv_geom *g) { return (size_t)g->C_in * g->S2 * g->Ms; }

/* The common strides get constant-stride loops, which the vectoriser turns into
 * vector loads and shuffles; other strides take the plain gather. */
BF_CLONES static void to_phases(float *restrict ph, const float *restrict inp,
                                const conv_geom *g)
{
    size_t Ms = (size_t)g->Ms;
    for (int c = 0; c < g->C_in; c++) {
        float *dst = ph + (size_t)c * g->S2 * Ms;
        const float *src = inp + (size_t)c * g->L_in;
        int whole = g->L_in / g->S2; /* complete groups of S2 */
        if (g->S2 == 2)
            for (int m = 0; m < whole; m++) {
                dst[m] = src[2 * m];
                dst[Ms + m] = src[2 * m + 1];
            }
        else if (g->S2 == 4)
            for (int m = 0; m < whole; m++) {
                dst[m] = src[4 * m];
                dst[Ms + m] = src[4 * m + 1];
                dst[2 * Ms + m] = src[4 * m + 2];
                dst[3 * Ms + m] = src[4 * m + 3];
            }
        else
            for (int m = 0; m < whole; m++)
                for (int q = 0; q < g->S2; q++)
                    dst[q * Ms + m] = src[(size_t)m * g->S2 + q];
        for (int q = 0; q < g->S2; q++) { /* the incomplete last group, then zeros */
            int m = whole;
            if ((size_t)m * g->S2 + q < (size_t)g->L_in)
                dst[q * Ms + m++] = src[(size_t)whole * g->S2 + q];
            for (; m < g->Ms; m++)
                dst[q * Ms + m] = 0;
        }
    }
}

static void add_from_phases(float *restrict dinp, const float *restrict dph, const conv_geom *g)
{
    for (int c = 0; c < g->C_in; c++)
        for (int q = 0; q < g->S2; q++) {
            const float *src = dph + ((size_t)c * g->S2 + q) * g->Ms;
            float *dst = dinp + (size_t)c * g->L_in + q;
            int n = (g->L_in - q + g->S2 - 1) / g->S2;
            for (int m = 0; m < n; m++)
                dst[(size_t)m * g->S2] += src[m];
        }
}

/* Weights (and bias) padded with zero channels to a multiple of 4. */
static float *padded_weights(const conv_geom *g, const float *w, const float *b)
{
    float *wp = calloc((size_t)g->C4 * g->T + (size_t)g->C4, sizeof(float));
    if (wp) {
        memcpy(wp, w, sizeof(float) * (size_t)g->C_out * g->T);
        if (b)
            memcpy(wp + (size_t)g->C4 * g->T, b, sizeof(float) * (size_t)g->C_out);
    }
    return wp;
}

/* ---- kernels ------------------------------------------------------------------- */

/* Pooled, activated outputs of 4 channels for one pattern: out[j][p] for p < P
 * (rows P apart), argmax bytes likewise when arg != NULL. */
BF_CLONES static void conv_pool4(float *restrict out, uint8_t *restrict arg, int n_ch,
                                 const float *restrict ph, const float *restrict w,
                                 const float *restrict b, float slope, const conv_geom *g)
{
    int T = g->T;
    vf bias[4];
    for (int j = 0; j < 4; j++)
        bias[j] = vsplat(b[j]);
    for (int p = 0; p < g->Pv; p += VL) {
        vf e[4], o[4];
        for (int j = 0; j < 4; j++)
            e[j] = o[j] = bias[j];
        for (int t = 0; t < T; t++) {
            vf xe = vload(ph + g->even[t] + p), xo = vload(ph + g->odd[t] + p);
            for (int j = 0; j < 4; j++) {
                vf wj = vsplat(w[j * T + t]);
                e[j] += wj * xe;
                o[j] += wj * xo;
            }
        }
        int n = g->P - p < VL ? g->P - p : VL;
        for (int j = 0; j < n_ch; j++) {
            vi second = o[j] > e[j]; /* ties go to the first position, as PyTorch */
            vf m = vselect(second, o[j], e[j]);
            vf y = vselect(m > 0, m, m * slope);
            float *dst = out + (size_t)j * g->P + p;
            if (n == VL)
                vstore(dst, y);
            else
                for (int i = 0; i < n; i++)
                    dst[i] = y[i];
            if (arg)
                for (int i = 0; i < n; i++)
                    arg[(size_t)j * g->P + p + i] = (uint8_t)(second[i] & 1);
        }
    }
}

/* Gradient at the two pooled positions: only the winner gets dout, times the
 * LeakyReLU derivative read from the sign of the stored activated output.
 * Writes de, dodd for p < P (zeros stay beyond); returns the bias gradient. */
BF_CLONES static float unpool(float *restrict de, float *restrict dodd,
                              const float *restrict dout, const float *restrict out,
                              const uint8_t *restrict arg, int P, float slope)
{
    vf sum = vsplat(0);
    int p = 0;
    for (; p + VL <= P; p += VL) { /* branch-free: arg is as random as the data */
        vf d = vload(dout + p), o = vload(out + p);
        vf gr = vselect(o > 0, d, d * slope);
        vi second;
        for (int i = 0; i < VL; i++)
            second[i] = -(int32_t)arg[p + i];
        vstore(de + p, (vf)((vi)gr & ~second));
        vstore(dodd + p, (vf)((vi)gr & second));
        sum += gr;
    }
    float total = 0;
    for (int i = 0; i < VL; i++)
        total += sum[i];
    for (; p < P; p++) {
        float gr = out[p] > 0 ? dout[p] : slope * dout[p];
        de[p] = arg[p] ? 0 : gr;
        dodd[p] = arg[p] ? gr : 0;
        total += gr;
    }
    return total;
}

/* dw[j][t] += sum_p de[j][p] xe_t[p] + do[j][p] xo_t[p] for 4 channels, all taps.
 * de/do rows are ldd apart, odd rows follow the even ones at 4 ldd, zero past P. */
BF_CLONES static void conv_dw4(float *restrict dw, const float *restrict de,
                               const float *restrict ph, const conv_geom *g)
{
    int T = g->T;
    const float *dodd = de + 4 * (size_t)g->ldd;
    for (int t = 0; t < T; t++) {
        const float *xe = ph + g->even[t], *xo = ph + g->odd[t];
        vf acc[4], acc_odd[4]; /* separate chains: the FMA latency is not the limit */
        for (int j = 0; j < 4; j++)
            acc[j] = acc_odd[j] = vsplat(0);
        for (int p = 0; p < g->Pv; p += VL) {
            vf a = vload(xe + p), c = vload(xo + p);
            for (int j = 0; j < 4; j++) {
                acc[j] += vload(de + (size_t)j * g->ldd + p) * a;
                acc_odd[j] += vload(dodd + (size_t)j * g->ldd + p) * c;
            }
        }
        for (int j = 0; j < 4; j++) {
            vf v = acc[j] + acc_odd[j];
            float sum = 0;
            for (int i = 0; i < VL; i++)
                sum += v[i];
            dw[j * T + t] += sum;
        }
    }
}

/* dph[c][q][m] = sum over channels co and taps k of w[co][c][k] times de[co][m - shift]
 * (taps whose even position reads phase q) or do[co][m - shift] (odd position).
 * Rows start `pad` zeros into their buffers, so m - shift never leaves them; each
 * phase element is written once (no accumulation, no aliasing). */
BF_CLONES static void conv_dx(float *restrict dph, const float *restrict drows,
                              const float *restrict w, const conv_geom *g)
{
    int T = g->T, s = g->stride, S2 = g->S2, blk = 8 * g->ldd; /* 4 even + 4 odd rows */
    for (int c = 0; c < g->C_in; c++)
        for (int q = 0; q < S2; q++) {
            float *dst = dph + ((size_t)c * S2 + q) * g->Ms;
            for (int m = 0; m < g->Mv; m += 4 * VL) {
                vf acc[4]; /* four positions' vectors: independent FMA chains */
                for (int i = 0; i < 4; i++)
                    acc[i] = vsplat(0);
                for (int k = 0; k < g->K; k++) {
                    /* which position of the pair reads phase q with this tap (never both:
                     * k and s + k differ by s, not a multiple of 2s) */
                    int odd_pos = (k % S2 != q);
                    if (odd_pos && (s + k) % S2 != q)
                        continue;
                    int shift = odd_pos ? (s + k) / S2 : k / S2;
                    for (int co = 0; co < g->C_out; co++) {
                        const float *d = drows + (size_t)(co / 4) * blk +
                                         (size_t)(odd_pos * 4 + co % 4) * g->ldd + g->pad + m -
                                         shift;
                        vf wk = vsplat(w[co * T + c * g->K + k]);
                        for (int i = 0; i < 4; i++)
                            acc[i] += wk * vload(d + i * VL);
                    }
                }
                for (int i = 0; i < 4; i++)
                    vstore(dst + m + i * VL, acc[i]);
            }
        }
}

bf_status cpu_conv1d_pool_lrelu_forward(float *out, uint8_t *argmax, const float *inp,
                                        const float *w, const float *b, int B, int C_in,
                                        int L_in, int C_out, int K, int stride, float slope,
                                        bf_error *err)
{
    conv_geom *g = conv_geom_new(C_in, L_in, C_out, K, stride);
    float *wp = g ? padded_weights(g, w, b) : NULL;
    if (!wp) {
        free(g);
        return bf_error_set(err, BF_ERR_NOMEM, "conv1d_pool: out of memory for the weights");
    }
    const float *bp = wp + (size_t)g->C4 * g->T;
    int failed = 0;
#pragma omp parallel
    {
        float *ph = malloc(sizeof(float) * phases_size(g));
        if (!ph) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int n = 0; n < B; n++) {
            if (!ph)
                continue; /* reported below: the whole call fails */
            to_phases(ph, inp + (size_t)n * C_in * L_in, g);
            for (int co = 0; co < C_out; co += 4) {
                size_t o = ((size_t)n * C_out + co) * g->P;
                conv_pool4(out + o, argmax ? argmax + o : NULL,
                           C_out - co < 4 ? C_out - co : 4, ph, wp + (size_t)co * g->T, bp + co,
                           slope, g);
            }
        }
        free(ph);
    }
    size_t scratch = sizeof(float) * phases_size(g);
    free(wp);
    free(g);
    if (failed)
        return bf_error_set(err, BF_ERR_NOMEM, "conv1d_pool: %zu bytes of scratch per thread",
                            scratch);
    return BF_OK;
}

bf_status cpu_conv1d_pool_lrelu_backward(float *dinp, float *dw, float *db, const float *dout,
                                         const float *out, const uint8_t *argmax,
                                         const float *inp, const float *w, int B, int C_in,
                                         int L_in, int C_out, int K, int stride, float slope,
                                         bf_error *err)
{
    conv_geom *g = conv_geom_new(C_in, L_in, C_out, K, stride);
    float *wp = g ? padded_weights(g, w, NULL) : NULL;
    int threads = omp_get_max_threads();
    size_t nw = g ? (size_t)g->C4 * g->T + (size_t)g->C4 : 0; /* dw then db, per thread */
    float *acc = wp ? calloc((size_t)threads * nw, sizeof(float)) : NULL;
    if (!acc) {
        free(wp);
        free(g);
        return bf_error_set(err, BF_ERR_NOMEM, "conv1d_pool backward: out of memory");
    }
    int failed = 0;
#pragma omp parallel num_threads(threads)
    {
        float *tdw = acc + (size_t)omp_get_thread_num() * nw, *tdb = tdw + (size_t)g->C4 * g->T;
        size_t nph = phases_size(g), blk = 8 * (size_t)g->ldd;
        /* per 4 channels: 4 even rows then 4 odd rows of [pad zeros | gradient | zeros] */
        float *ph = calloc(2 * nph + (size_t)(g->C4 / 4) * blk, sizeof(float));
        float *dph = ph ? ph + nph : NULL, *drows = ph ? dph + nph : NULL;
        if (!ph) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int n = 0; n < B; n++) {
            if (!ph)
                continue; /* reported below: the whole call fails */
            to_phases(ph, inp + (size_t)n * C_in * L_in, g);
            for (int co = 0; co < C_out; co++) {
                size_t o = ((size_t)n * C_out + co) * g->P;
                float *de = drows + (size_t)(co / 4) * blk + (size_t)(co % 4) * g->ldd + g->pad;
                tdb[co] += unpool(de, de + 4 * (size_t)g->ldd, dout + o, out + o, argmax + o, g->P,
                                  slope);
            }
            for (int co = 0; co < C_out; co += 4)
                conv_dw4(tdw + (size_t)co * g->T, drows + (size_t)(co / 4) * blk + g->pad, ph, g);
            if (dinp) {
                conv_dx(dph, drows, wp, g);
                add_from_phases(dinp + (size_t)n * C_in * L_in, dph, g);
            }
        }
        free(ph);
    }
    /* per-thread sums added in thread order: the same bits for the same thread count */
    for (int t = 0; t < threads && !failed; t++) {
        const float *tdw = acc + (size_t)t * nw;
        if (dw)
            for (size_t i = 0; i < (size_t)C_out * g->T; i++)
                dw[i] += tdw[i];
        if (db)
            for (int co = 0; co < C_out; co++)
                db[co] += tdw[(size_t)g->C4 * g->T + co];
    }
    free(acc);
    free(wp);
    free(g);
    if (failed)
        return bf_error_set(err, BF_ERR_NOMEM, "conv1d_pool backward: scratch per thread");
    return BF_OK;
}

BF_CLONES void cpu_leaky_relu_inplace(float *x, size_t n, float slope)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] > 0 ? x[i] : slope * x[i];
}

/* dout *= lrelu'(x), read from the activated output's sign. */
BF_CLONES void cpu_leaky_relu_mask(float *dout, const float *out, size_t n, float slope)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        dout[i] = out[i] > 0 ? dout[i] : slope * dout[i];
}
