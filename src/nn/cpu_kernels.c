/* nn/cpu_kernels.c — the CPU backend's fused kernels.
 *
 * Why fused: for the structure model the first convolution's output alone is
 * 16 x 2804 floats per pattern (92 MB per batch of 512); writing it out, then
 * re-reading it for the activation and again for the pooling is what makes a
 * layer-by-layer framework memory-bound here. These kernels run one pattern at
 * a time per thread, keep the convolution row in L1 and write only the pooled,
 * activated result (and one byte per output saying which pooled position won).
 *
 * The loops are plain C written for the vectoriser; target_clones compiles
 * AVX-512, AVX2 and baseline versions and picks one at load time. The
 * reference layers (layers.c) are the specification these are tested against. */
#include "nn/nn_internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* GCC only: clang 14 does not resolve clones of external functions at link time
 * (clang builds are for fuzzing and get the baseline code). */
#if defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(BF_NO_CLONES)
#define BF_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BF_CLONES
#endif

/* Eight floats as one value: GCC/clang vector extensions give SIMD code (AVX2 in
 * the avx2 clone) without intrinsics. Loads and stores go through memcpy, which
 * compiles to unaligned vector moves. */
#define VL 8
#define CHUNK (2 * VL) /* positions per register block */
typedef float vf __attribute__((vector_size(VL * sizeof(float))));

/* Macros, not functions: no vector-typed function arguments or results (whose ABI
 * differs between the clones, and which clang rejects for the baseline one). */
#define vload(p)                                                                          \
    ({                                                                                    \
        vf v_;                                                                            \
        memcpy(&v_, (p), sizeof v_);                                                      \
        v_;                                                                               \
    })
#define vstore(p, v)                                                                      \
    do {                                                                                  \
        vf w_ = (v);                                                                      \
        memcpy((p), &w_, sizeof w_);                                                      \
    } while (0)
#define vsplat(x) ((vf){0} + (float)(x))

static int round_up(int n, int m) { return (n + m - 1) / m * m; }

/* ---- geometry ------------------------------------------------------------------
 * A stride-s convolution reads inp[c][l s + k]. Each input row is split into s
 * phases, phase r holding inp[c][m s + r], so tap t = (c, k) reads phase row
 * c s + k % s at offset l + k / s: contiguous in l, as SIMD needs. Phase rows
 * are Ms apart and zero beyond the input, and the convolution is computed in
 * whole CHUNKs (Lv >= Lc positions): the extra outputs are never pooled, so no
 * scalar tail loop is needed. */
typedef struct {
    int C_in, L_in, C_out, C4, K, stride, T;  /* C4: C_out rounded up to 4; T = C_in K taps */
    int Lc, P, M, Ms, Lv, Mv;                 /* conv length, pooled, phase length/stride */
    int pad, ldd;                             /* backward: zero margin and row stride of drow */
    int off[];                                /* tap t -> offset of its phase row + k / s */
} conv_geom;

static conv_geom *conv_geom_new(int C_in, int L_in, int C_out, int K, int stride)
{
    conv_geom *g = malloc(sizeof *g + sizeof(int) * (size_t)C_in * K);
    if (!g)
        return NULL;
    g->C_in = C_in, g->L_in = L_in, g->C_out = C_out, g->C4 = round_up(C_out, 4);
    g->K = K, g->stride = stride, g->T = C_in * K;
    g->Lc = (L_in - K) / stride + 1, g->P = g->Lc / 2;
    g->M = (L_in + stride - 1) / stride;
    g->Lv = round_up(g->Lc, CHUNK), g->Mv = round_up(g->M, CHUNK);
    g->Ms = g->Mv + round_up(K / stride + 1, CHUNK);  /* room for the last chunk's taps */
    g->pad = K / stride + 1;
    g->ldd = g->pad + g->Mv + g->pad;
    for (int c = 0; c < C_in; c++)
        for (int k = 0; k < K; k++)
            g->off[c * K + k] = (c * stride + k % stride) * g->Ms + k / stride;
    return g;
}

static size_t phases_size(const conv_geom *g) { return (size_t)g->C_in * g->stride * g->Ms; }

static void to_phases(float *restrict ph, const float *restrict inp, const conv_geom *g)
{
    for (int c = 0; c < g->C_in; c++)
        for (int r = 0; r < g->stride; r++) {
            float *dst = ph + ((size_t)c * g->stride + r) * g->Ms;
            const float *src = inp + (size_t)c * g->L_in;
            int m = 0;
            for (; m * g->stride + r < g->L_in; m++)
                dst[m] = src[m * g->stride + r];
            for (; m < g->Ms; m++)
                dst[m] = 0;
        }
}

static void add_from_phases(float *restrict dinp, const float *restrict dph, const conv_geom *g)
{
    for (int c = 0; c < g->C_in; c++)
        for (int r = 0; r < g->stride; r++) {
            const float *src = dph + ((size_t)c * g->stride + r) * g->Ms;
            float *dst = dinp + (size_t)c * g->L_in;
            for (int m = 0; m * g->stride + r < g->L_in; m++)
                dst[m * g->stride + r] += src[m];
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

/* Convolution rows of 4 output channels: row[j][l] = b[j] + sum_t w[j][t] x_t[l],
 * l < Lv, register-blocked as 4 channels x CHUNK positions per pass over the taps. */
BF_CLONES static void conv_rows4(float *restrict row, const float *restrict ph,
                                 const float *restrict w, const float *restrict b,
                                 const conv_geom *g)
{
    int T = g->T;
    for (int l = 0; l < g->Lv; l += CHUNK) {
        vf acc[4][2];
        for (int j = 0; j < 4; j++)
            acc[j][0] = acc[j][1] = vsplat(b[j]);
        for (int t = 0; t < T; t++) {
            const float *x = ph + g->off[t] + l;
            vf x0 = vload(x), x1 = vload(x + VL);
            for (int j = 0; j < 4; j++) {
                vf wj = vsplat(w[j * T + t]);
                acc[j][0] += wj * x0;
                acc[j][1] += wj * x1;
            }
        }
        for (int j = 0; j < 4; j++) {
            vstore(row + (size_t)j * g->Lv + l, acc[j][0]);
            vstore(row + (size_t)j * g->Lv + l + VL, acc[j][1]);
        }
    }
}

/* out[p] = lrelu(max(row[2p], row[2p+1])); ties go to the first (PyTorch). */
BF_CLONES static void pool_lrelu_row(float *restrict out, uint8_t *restrict arg,
                                     const float *restrict row, int P, float slope)
{
    for (int p = 0; p < P; p++) {
        float x0 = row[2 * p], x1 = row[2 * p + 1];
        int second = x1 > x0;
        float m = second ? x1 : x0;
        arg[p] = (uint8_t)second;
        out[p] = m > 0 ? m : slope * m;
    }
}

/* Gradient at the convolution output: only the pooled winner gets it, times the
 * LeakyReLU derivative (read from the sign of the stored activated output).
 * Writes drow[0, 2P); returns its sum (the bias gradient). */
static float unpool_row(float *restrict drow, const float *restrict dout,
                        const float *restrict out, const uint8_t *restrict arg, int P,
                        float slope)
{
    float dbias = 0;
    for (int p = 0; p < P; p++) {
        float gr = out[p] > 0 ? dout[p] : slope * dout[p];
        drow[2 * p + arg[p]] = gr;
        drow[2 * p + 1 - arg[p]] = 0;
        dbias += gr;
    }
    return dbias;
}

/* dw[j][t] += sum_l drow[j][l] x_t[l] for 4 channels and every tap: 4 channels x
 * 2 taps of vector partial sums, summed across lanes at the end. drow is zero
 * from 2P up to Lv, so whole chunks can be read. */
BF_CLONES static void conv_dw4(float *restrict dw, const float *restrict drow,
                               const float *restrict ph, const conv_geom *g)
{
    int T = g->T;
    for (int t0 = 0; t0 < T; t0 += 2) {
        const float *x0 = ph + g->off[t0], *x1 = ph + g->off[t0 + 1 < T ? t0 + 1 : t0];
        vf acc[4][2];
        for (int j = 0; j < 4; j++)
            acc[j][0] = acc[j][1] = vsplat(0);
        for (int l = 0; l < g->Lv; l += VL) {
            vf a = vload(x0 + l), c = vload(x1 + l);
            for (int j = 0; j < 4; j++) {
                vf d = vload(drow + (size_t)j * g->ldd + l);
                acc[j][0] += d * a;
                acc[j][1] += d * c;
            }
        }
        for (int j = 0; j < 4; j++)
            for (int i = 0; i < 2 && t0 + i < T; i++) {
                float sum = 0;
                for (int e = 0; e < VL; e++)
                    sum += acc[j][i][e];
                dw[j * T + t0 + i] += sum;
            }
    }
}

/* dph[c][r][m] = sum over taps k with k % s = r and channels co of
 * w[co][c][k] drow[co][m - k / s], m < Mv. drow rows (ldd apart) start `pad`
 * zeros into their buffer, so m - k / s never reads outside it; every phase
 * element is written once (no accumulation, no aliasing). */
BF_CLONES static void conv_dx(float *restrict dph, const float *restrict drow_base,
                              const float *restrict w, const conv_geom *g)
{
    int T = g->T, s = g->stride;
    for (int c = 0; c < g->C_in; c++)
        for (int r = 0; r < s; r++) {
            float *dst = dph + ((size_t)c * s + r) * g->Ms;
            for (int m = 0; m < g->Mv; m += CHUNK) {
                vf a0 = vsplat(0), a1 = vsplat(0);
                for (int k = r; k < g->K; k += s)
                    for (int co = 0; co < g->C_out; co++) {
                        vf wk = vsplat(w[co * T + c * g->K + k]);
                        const float *d = drow_base + (size_t)co * g->ldd + g->pad + m - k / s;
                        a0 += wk * vload(d);
                        a1 += wk * vload(d + VL);
                    }
                vstore(dst + m, a0);
                vstore(dst + m + VL, a1);
            }
        }
}

void cpu_conv1d_pool_lrelu_forward(float *out, uint8_t *argmax, const float *inp, const float *w,
                                   const float *b, int B, int C_in, int L_in, int C_out, int K,
                                   int stride, float slope)
{
    conv_geom *g = conv_geom_new(C_in, L_in, C_out, K, stride);
    float *wp = g ? padded_weights(g, w, b) : NULL;
    if (!wp) {
        free(g);
        return; /* out of memory: callers size their buffers first; nothing else to do */
    }
    const float *bp = wp + (size_t)g->C4 * g->T;
#pragma omp parallel
    {
        float *ph = malloc(sizeof(float) * (phases_size(g) + 4 * (size_t)g->Lv));
        float *row = ph + phases_size(g);
#pragma omp for schedule(static)
        for (int n = 0; n < B; n++) {
            if (!ph)
                continue;
            to_phases(ph, inp + (size_t)n * C_in * L_in, g);
            for (int co = 0; co < C_out; co += 4) {
                conv_rows4(row, ph, wp + (size_t)co * g->T, bp + co, g);
                for (int j = 0; j < 4 && co + j < C_out; j++) {
                    size_t o = ((size_t)n * C_out + co + j) * g->P;
                    pool_lrelu_row(out + o, argmax + o, row + (size_t)j * g->Lv, g->P, slope);
                }
            }
        }
        free(ph);
    }
    free(wp);
    free(g);
}

void cpu_conv1d_pool_lrelu_backward(float *dinp, float *dw, float *db, const float *dout,
                                    const float *out, const uint8_t *argmax, const float *inp,
                                    const float *w, int B, int C_in, int L_in, int C_out, int K,
                                    int stride, float slope)
{
    conv_geom *g = conv_geom_new(C_in, L_in, C_out, K, stride);
    float *wp = g ? padded_weights(g, w, NULL) : NULL;
    int threads = omp_get_max_threads();
    size_t nw = g ? (size_t)g->C4 * g->T + (size_t)g->C4 : 0; /* dw then db, per thread */
    float *acc = wp ? calloc((size_t)threads * nw, sizeof(float)) : NULL;
    if (!acc) {
        free(wp);
        free(g);
        return;
    }
#pragma omp parallel num_threads(threads)
    {
        float *tdw = acc + (size_t)omp_get_thread_num() * nw, *tdb = tdw + (size_t)g->C4 * g->T;
        size_t nph = phases_size(g);
        /* drow: C4 rows of [pad zeros | conv gradient | zeros]; the margins stay zero */
        float *ph = calloc(2 * nph + (size_t)g->C4 * g->ldd, sizeof(float));
        float *dph = ph ? ph + nph : NULL, *drow = ph ? dph + nph : NULL;
#pragma omp for schedule(static)
        for (int n = 0; n < B; n++) {
            if (!ph)
                continue;
            to_phases(ph, inp + (size_t)n * C_in * L_in, g);
            for (int co = 0; co < C_out; co++) {
                size_t o = ((size_t)n * C_out + co) * g->P;
                tdb[co] += unpool_row(drow + (size_t)co * g->ldd + g->pad, dout + o, out + o,
                                      argmax + o, g->P, slope);
            }
            for (int co = 0; co < C_out; co += 4)
                conv_dw4(tdw + (size_t)co * g->T, drow + (size_t)co * g->ldd + g->pad, ph, g);
            if (dinp) {
                conv_dx(dph, drow, wp, g);
                add_from_phases(dinp + (size_t)n * C_in * L_in, dph, g);
            }
        }
        free(ph);
    }
    /* per-thread sums added in thread order: the same bits for the same thread count */
    for (int t = 0; t < threads; t++) {
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

BF_CLONES void cpu_minmax_scale(float *x, int B, int L)
{
#pragma omp parallel for schedule(static)
    for (int n = 0; n < B; n++) {
        float *r = x + (size_t)n * L;
        float lo = r[0], hi = r[0];
        for (int i = 1; i < L; i++) {
            lo = r[i] < lo ? r[i] : lo;
            hi = r[i] > hi ? r[i] : hi;
        }
        float span = hi - lo, inv = span > 0 ? 1.0f / span : 0.0f;
        for (int i = 0; i < L; i++)
            r[i] = (r[i] - lo) * inv;
    }
}
