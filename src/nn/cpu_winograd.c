/* nn/cpu_winograd.c — the CPU backend's 3x3 convolution by Winograd's minimal filtering
 * F(4x4, 3x3) (Lavin & Gray, "Fast algorithms for convolutional neural networks", 2016;
 * docs/winograd.md): each 4x4 block of outputs from a 6x6 block of inputs with 36
 * products per channel pair instead of 144, so BraggNN's second convolution (64 -> 32
 * channels, 9x9 -> 7x7, four tiles) does 0.59 M multiply-adds a sample instead of the
 * direct product's 2.4 M (its wide grid computes 64 columns for 49 outputs).
 *
 *   Y = A^T [ (G g G^T) . (B^T d B) ] A,  summed over input channels, with the 6x6 B^T,
 *   6x3 G and 4x6 A^T of the points 0, +-1, +-2 and infinity (docs/winograd.md).
 *
 * Layout: a sample is transposed to pixels x channels (HWC) so that the input and
 * output transforms run on vectors of 16 channels; per frequency xi (36 of them) the
 * channel sum is one product Mt[xi] (tiles, C_out) = V[xi] (tiles, C_in) U[xi] (C_in,
 * C_out), U = G g G^T packed once per call as the product's panel; GROUP samples' tiles
 * are stacked in V's rows. Outputs are rounded differently from the direct sum (the
 * transforms scale by up to 8 and 1/24): ~2e-6 of the largest output, inside the 2e-5
 * the tests against the reference backend allow (tests/nn/test_backends.c). */
#include "nn/cpu_simd.h"
#include "nn/nn_internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define GROUP 8 /* samples whose tiles share one product: 8 x 4 rows for BraggNN */
#define NXI 36   /* 6 x 6 transformed positions */

int cpu_winograd_applies(int C_in, int H, int W, int C_out, int K)
{
    return K == 3 && H >= 3 && W >= 3 && C_in % VW == 0 && C_out % VW == 0;
}

/* G applied to a column of 3 filter taps: the filter at the six points. */
#define G_OF(u, g0, g1, g2)                                                               \
    do {                                                                                  \
        (u)[0] = (g0) * 0.25f;                                                            \
        (u)[1] = ((g0) + (g1) + (g2)) * (-1.0f / 6);                                      \
        (u)[2] = ((g0) - (g1) + (g2)) * (-1.0f / 6);                                      \
        (u)[3] = (g0) * (1.0f / 24) + (g1) * (1.0f / 12) + (g2) * (1.0f / 6);             \
        (u)[4] = (g0) * (1.0f / 24) - (g1) * (1.0f / 12) + (g2) * (1.0f / 6);             \
        (u)[5] = (g2);                                                                    \
    } while (0)

/* U[xi] (C_in rows of ldu floats, C_out used) = G g G^T for every (o, c), from wt
 * (C_in 9, C_out): the filters w (C_out, C_in, 3, 3) transposed, so that 16 output
 * channels transform as one vector. (Filter by filter it took ~60 us a call, which
 * batch-1 inference would pay every time.) */
BF_CLONES static void transform_filters(float *restrict U, int ldu, const float *restrict wt,
                                        int C_in, int C_out)
{
    for (int c = 0; c < C_in; c++)
        for (int o = 0; o < C_out; o += VW) {
            vfw g[9], t[6][3], u[6];
            for (int k = 0; k < 9; k++)
                g[k] = vwload(wt + ((size_t)c * 9 + k) * C_out + o);
            for (int k = 0; k < 3; k++) { /* G g, column k */
                vfw col[6];
                G_OF(col, g[k], g[3 + k], g[6 + k]);
                for (int i = 0; i < 6; i++)
                    t[i][k] = col[i];
            }
            for (int i = 0; i < 6; i++) { /* (G g) G^T, row i */
                G_OF(u, t[i][0], t[i][1], t[i][2]);
                for (int k = 0; k < 6; k++)
                    vwstore(U + ((size_t)(i * 6 + k) * C_in + c) * ldu + o, u[k]);
            }
        }
}

/* hwc (H W, C) = x (C, H W) transposed (C a multiple of 8), in 8 x 8 blocks where they
 * fit: a sample to pixels x channels, or the filters (C_out, C_in 9) to (C_in 9, C_out). */
BF_CLONES static void to_hwc(float *restrict hwc, const float *restrict x, int C, int HW)
{
    int p8 = HW / 8 * 8;
    for (int c = 0; c < C; c += 8)
        for (int p = 0; p < p8; p += 8)
            TRANSPOSE_8X8(hwc + (size_t)p * C + c, C, x + (size_t)c * HW + p, HW);
    for (int p = p8; p < HW; p++)
        for (int c = 0; c < C; c++)
            hwc[(size_t)p * C + c] = x[(size_t)c * HW + p];
}

/* B^T applied to six values: the input at the six points. */
#define BT_OF(r, d)                                                                       \
    do {                                                                                  \
        vfw t1_ = (d)[4] - 4.0f * (d)[2], t2_ = (d)[3] - 4.0f * (d)[1];                   \
        vfw t3_ = (d)[4] - (d)[2], t4_ = 2.0f * ((d)[3] - (d)[1]);                        \
        (r)[0] = 4.0f * (d)[0] - 5.0f * (d)[2] + (d)[4];                                  \
        (r)[1] = t1_ + t2_;                                                               \
        (r)[2] = t1_ - t2_;                                                               \
        (r)[3] = t3_ + t4_;                                                               \
        (r)[4] = t3_ - t4_;                                                               \
        (r)[5] = 4.0f * (d)[1] - 5.0f * (d)[3] + (d)[5];                                  \
    } while (0)

/* The 36 transformed inputs of every tile of one sample: V[xi] row (row0 + tile), C
 * floats each. Tile (ty, tx) starts at image pixel (4 ty - pad, 4 tx - pad); inputs
 * outside the image are zeros. */
BF_CLONES static void input_transform(float *restrict V, size_t v_stride, int row0,
                                      const float *restrict hwc, int C, int H, int W, int pad,
                                      int ty_n, int tx_n)
{
    for (int ty = 0; ty < ty_n; ty++)
        for (int tx = 0; tx < tx_n; tx++) {
            float *v = V + (size_t)(row0 + ty * tx_n + tx) * C;
            for (int c = 0; c < C; c += VW) {
                vfw e[6][6]; /* d B: row i of the tile, transformed */
                for (int i = 0; i < 6; i++) {
                    vfw d[6];
                    int y = 4 * ty + i - pad;
                    for (int k = 0; k < 6; k++) {
                        int x = 4 * tx + k - pad;
                        d[k] = y >= 0 && y < H && x >= 0 && x < W
                                   ? vwload(hwc + ((size_t)y * W + x) * C + c)
                                   : (vfw){};
                    }
                    BT_OF(e[i], d);
                }
                for (int k = 0; k < 6; k++) { /* B^T (d B), column k */
                    vfw col[6] = {e[0][k], e[1][k], e[2][k], e[3][k], e[4][k], e[5][k]}, r[6];
                    BT_OF(r, col);
                    for (int i = 0; i < 6; i++)
                        vwstore(v + (size_t)(i * 6 + k) * v_stride + c, r[i]);
                }
            }
        }
}

/* A^T applied to six values: four outputs. */
#define AT_OF(o_, m)                                                                      \
    do {                                                                                  \
        vfw s12_ = (m)[1] + (m)[2], d12_ = (m)[1] - (m)[2];                               \
        vfw s34_ = (m)[3] + (m)[4], d34_ = (m)[3] - (m)[4];                               \
        (o_)[0] = (m)[0] + s12_ + s34_;                                                   \
        (o_)[1] = d12_ + 2.0f * d34_;                                                     \
        (o_)[2] = s12_ + 4.0f * s34_;                                                     \
        (o_)[3] = d12_ + 8.0f * d34_ + (m)[5];                                            \
    } while (0)

/* out (C_out, Ho, Wo) of one sample (= or, accumulating, +=) from its tiles' rows (row0
 * + tile) of Mt[xi] (ldm floats a row), through hwo (Ho Wo, C_out) transposed at the
 * end; bias and the activation on the way. */
BF_CLONES static void output_transform(float *restrict out, int accumulate,
                                       float *restrict hwo, const float *restrict Mt,
                                       size_t m_stride, int ldm, int row0,
                                       const float *restrict b, int C_out, int Ho, int Wo,
                                       int ty_n, int tx_n, float slope)
{
    vfw zero = {}, vs = zero + (slope >= 0 ? slope : 1.0f);
    for (int ty = 0; ty < ty_n; ty++)
        for (int tx = 0; tx < tx_n; tx++) {
            const float *m0 = Mt + (size_t)(row0 + ty * tx_n + tx) * ldm;
            for (int o = 0; o < C_out; o += VW) {
                vfw f[6][4]; /* m A: row i, transformed */
                for (int i = 0; i < 6; i++) {
                    vfw m[6];
                    for (int k = 0; k < 6; k++)
                        m[k] = vwload(m0 + (size_t)(i * 6 + k) * m_stride + o);
                    AT_OF(f[i], m);
                }
                vfw bias = b ? vwload(b + o) : zero;
                for (int dx = 0; dx < 4; dx++) { /* A^T (m A), column dx */
                    vfw col[6] = {f[0][dx], f[1][dx], f[2][dx], f[3][dx], f[4][dx], f[5][dx]};
                    vfw y[4];
                    AT_OF(y, col);
                    int ox = 4 * tx + dx;
                    for (int dy = 0; dy < 4; dy++) {
                        int oy = 4 * ty + dy;
                        if (oy >= Ho || ox >= Wo)
                            continue;
                        vfw v = y[dy] + bias;
                        if (slope >= 0)
                            v = vwselect(v > zero, v, v * vs);
                        vwstore(hwo + ((size_t)oy * Wo + ox) * C_out + o, v);
                    }
                }
            }
        }
    int P = Ho * Wo, p8 = P / 8 * 8;
    for (int o = 0; o < C_out; o += 8)
        for (int p = 0; p < p8; p += 8) {
            float *dst = out + (size_t)o * P + p;
            if (!accumulate) {
                TRANSPOSE_8X8(dst, P, hwo + (size_t)p * C_out + o, C_out);
                continue;
            }
            float blk[64];
            TRANSPOSE_8X8(blk, 8, hwo + (size_t)p * C_out + o, C_out);
            for (int i = 0; i < 8; i++)
                vstore(dst + (size_t)i * P, vload(dst + (size_t)i * P) + vload(blk + 8 * i));
        }
    for (int o = 0; o < C_out; o++)
        for (int p = p8; p < P; p++)
            out[(size_t)o * P + p] =
                (accumulate ? out[(size_t)o * P + p] : 0.0f) + hwo[(size_t)p * C_out + o];
}

/* The filters w (C_out, C_in, 3, 3) transformed, U[xi] (C_in' rows of ldu floats) for
 * the forward convolution (flipped 0: C_in' = C_in, C_out' = C_out) or for its input
 * gradient (flipped 1: the filters flipped and their channels swapped, w'[c][o][k] =
 * w[o][c][8 - k], C_in' = C_out, C_out' = C_in). Kept between calls (cpu_scratch_kept):
 * the transform took ~30 us a call, a fifth of a batch-1 prediction; when training
 * changes the weights it runs again. NULL when out of memory. */
static const float *transformed_filters(const float *w, int flipped, int C_in, int C_out,
                                        int ldu)
{
    int ci = flipped ? C_out : C_in, co = flipped ? C_in : C_out; /* the convolution's */
    size_t n_w = (size_t)C_out * C_in * 9, n_u = NXI * (size_t)ci * ldu;
    const int key[CPU_SCRATCH_KEY] = {C_in, C_out, flipped};
    int valid;
    float *U = cpu_scratch_kept(CPU_SCRATCH_WINOGRAD, w, n_w, n_u, key, &valid);
    if (!U || valid)
        return U;
    float *wt = cpu_scratch(CPU_SCRATCH_CALL_A, n_w); /* (ci 9, co) */
    if (!wt)
        return NULL;
    if (!flipped)
        to_hwc(wt, w, C_out, C_in * 9);
    else /* wt'[(o 9 + k) C_in + c] = w[o][c][8 - k] */
        for (int o = 0; o < C_out; o++)
            for (int c = 0; c < C_in; c++)
                for (int k = 0; k < 9; k++)
                    wt[((size_t)o * 9 + k) * C_in + c] = w[((size_t)o * C_in + c) * 9 + 8 - k];
    if (ldu > co) /* the panel's padding columns */
        for (size_t r = 0; r < NXI * (size_t)ci; r++)
            memset(U + r * ldu + co, 0, sizeof(float) * (size_t)(ldu - co));
    transform_filters(U, ldu, wt, ci, co);
    cpu_scratch_keep(CPU_SCRATCH_WINOGRAD, w, n_w, key);
    return U;
}

/* The convolution of inp (B, C_in, H, W), zero-padded by pad on every side, with the
 * transformed filters U (transformed_filters): out (B, C_out, H + 2 pad - 2, W + 2 pad -
 * 2), written (act(. + b)) or, accumulating, added to. */
static bf_status winograd_conv(float *out, int accumulate, const float *inp, int B, int C_in,
                               int H, int W, int pad, const float *U, const float *b,
                               int C_out, float slope, bf_error *err)
{
    int Ho = H + 2 * pad - 2, Wo = W + 2 * pad - 2, ty_n = (Ho + 3) / 4, tx_n = (Wo + 3) / 4;
    int T = ty_n * tx_n, ldu = cpu_gemm_panel_cols(C_out), rows = GROUP * T;
    size_t HW = (size_t)H * W, P = (size_t)Ho * Wo;
    /* per thread: hwc (HW, C_in), V (36 x rows x C_in), Mt (36 x rows x ldu), hwo (P,
     * C_out); a vector's padding between frequencies: streams 8 KB apart shared cache
     * sets */
    size_t v_stride = (size_t)rows * C_in + VW, m_stride = (size_t)rows * ldu + VW;
    size_t n_hwc = HW * C_in, n_v = NXI * v_stride, n_m = NXI * m_stride;
    size_t n_scratch = n_hwc + n_v + n_m + P * C_out;
    int groups = (B + GROUP - 1) / GROUP, failed = 0;
#pragma omp parallel
    {
        float *hwc = cpu_scratch(CPU_SCRATCH_THREAD, n_scratch); /* all written before read */
        float *V = hwc ? hwc + n_hwc : NULL, *Mt = hwc ? V + n_v : NULL;
        float *hwo = hwc ? Mt + n_m : NULL;
        if (!hwc) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (int gi = 0; gi < groups; gi++) {
            if (!hwc)
                continue; /* reported below: the whole call fails */
            int n0 = gi * GROUP, ng = B - n0 < GROUP ? B - n0 : GROUP;
            for (int s = 0; s < ng; s++) {
                to_hwc(hwc, inp + (size_t)(n0 + s) * C_in * HW, C_in, (int)HW);
                input_transform(V, v_stride, s * T, hwc, C_in, H, W, pad, ty_n, tx_n);
            }
            for (int xi = 0; xi < NXI; xi++)
                cpu_gemm_panel(0, ng * T, C_out, C_in, V + xi * v_stride, C_in,
                               U + (size_t)xi * C_in * ldu, Mt + xi * m_stride, ldu, NULL, NULL);
            for (int s = 0; s < ng; s++)
                output_transform(out + (size_t)(n0 + s) * C_out * P, accumulate, hwo, Mt,
                                 m_stride, ldu, s * T, b, C_out, Ho, Wo, ty_n, tx_n, slope);
        }
    }
    if (failed)
        return bf_error_set(err, BF_ERR_NOMEM, "conv2d (Winograd): %zu bytes of scratch per "
                            "thread", sizeof(float) * n_scratch);
    return BF_OK;
}

bf_status cpu_conv2d_forward_winograd(float *out, const float *inp, const float *w,
                                      const float *b, int B, int C_in, int H, int W, int C_out,
                                      float slope, bf_error *err)
{
    const float *U = transformed_filters(w, 0, C_in, C_out, cpu_gemm_panel_cols(C_out));
    if (!U)
        return bf_error_set(err, BF_ERR_NOMEM, "conv2d (Winograd): out of memory for the "
                            "transformed filters");
    return winograd_conv(out, 0, inp, B, C_in, H, W, 0, U, b, C_out, slope, err);
}

/* dinp += the input gradient of the 3x3 convolution w (C_out, C_in, 3, 3), from dout (B,
 * C_out, Ho, Wo) (already masked by the activation): the convolution of dout padded by
 * 2 with the filters flipped and their channels swapped. */
bf_status cpu_conv2d_backward_input_winograd(float *dinp, const float *dout, const float *w,
                                             int B, int C_in, int Ho, int Wo, int C_out,
                                             bf_error *err)
{
    const float *U = transformed_filters(w, 1, C_in, C_out, cpu_gemm_panel_cols(C_in));
    if (!U)
        return bf_error_set(err, BF_ERR_NOMEM, "conv2d backward (Winograd): out of memory "
                            "for the transformed filters");
    return winograd_conv(dinp, 1, dout, B, C_out, Ho, Wo, 2, U, NULL, C_in, -1.0f, err);
}
