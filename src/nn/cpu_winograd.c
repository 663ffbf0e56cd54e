/* nn/cpu_winograd.c — the CPU backend's 3x3 convolution by Winograd's minimal filtering
 * F(2x2, 3x3) (Lavin & Gray, "Fast algorithms for convolutional neural networks", 2016;
 * docs/winograd.md): each 2x2 block of outputs from a 4x4 block of inputs with 16
 * products per channel pair instead of 36, so BraggNN's second convolution (64 -> 32
 * channels, 9x9 -> 7x7) does 1.0 M multiply-adds a sample instead of the direct
 * product's 2.4 M (its wide grid computes 64 columns for 49 outputs).
 *
 *   Y = A^T [ (G g G^T) . (B^T d B) ] A,  summed over input channels, with
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1].
 *
 * Layout: a sample is transposed to pixels x channels (HWC) so that the input and
 * output transforms run on vectors of 16 channels; per frequency xi (16 of them) the
 * channel sum is one product Mt[xi] (tiles, C_out) = V[xi] (tiles, C_in) U[xi] (C_in,
 * C_out), U = G g G^T packed once per call as the product's panel; G samples' tiles are
 * stacked in V's rows. Outputs are rounded differently from the direct sum (the
 * transforms add and halve): within 1e-6 relative on BraggNN's activations, tested
 * against the reference backend (tests/nn/test_backends.c). */
#include "nn/cpu_simd.h"
#include "nn/nn_internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define GROUP 2 /* samples whose tiles share one product: 2 x 16 rows for BraggNN */

int cpu_winograd_applies(int C_in, int H, int W, int C_out, int K)
{
    return K == 3 && H >= 3 && W >= 3 && C_in % VW == 0 && C_out % VW == 0;
}

/* U[xi] (C_in rows of ldu floats, C_out used) = G g G^T for every (o, c), from wt
 * (C_in 9, C_out): the filters w (C_out, C_in, 3, 3) transposed, so that 16 output
 * channels transform as one vector. (Filter by filter it took ~60 us a call, which
 * batch-1 inference would pay every time.) */
BF_CLONES static void transform_filters(float *restrict U, int ldu, const float *restrict wt,
                                        int C_in, int C_out)
{
    for (int c = 0; c < C_in; c++)
        for (int o = 0; o < C_out; o += VW) {
            vfw g[9], t[4][3];
            for (int k = 0; k < 9; k++)
                g[k] = vwload(wt + ((size_t)c * 9 + k) * C_out + o);
            for (int k = 0; k < 3; k++) { /* G g */
                t[0][k] = g[k];
                t[1][k] = 0.5f * (g[k] + g[3 + k] + g[6 + k]);
                t[2][k] = 0.5f * (g[k] - g[3 + k] + g[6 + k]);
                t[3][k] = g[6 + k];
            }
            for (int i = 0; i < 4; i++) { /* (G g) G^T */
                vfw u[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]),
                            0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
                for (int k = 0; k < 4; k++)
                    vwstore(U + ((size_t)(i * 4 + k) * C_in + c) * ldu + o, u[k]);
            }
        }
}

/* dst (cols, rows) = src (rows, cols) transposed, both dimensions multiples of 8. */
BF_CLONES static void transpose8(float *restrict dst, const float *restrict src, int rows,
                                 int cols)
{
    for (int r = 0; r < rows; r += 8)
        for (int c = 0; c < cols; c += 8)
            TRANSPOSE_8X8(dst + (size_t)c * rows + r, rows, src + (size_t)r * cols + c, cols);
}

/* hwc (H W, C) = x (C, H W) transposed, in 8 x 8 blocks where they fit. */
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

/* The 16 transformed inputs of every tile of one sample: V[xi] row (row0 + tile), C
 * floats each; inputs past the image are zeros. */
BF_CLONES static void input_transform(float *restrict V, size_t v_stride, int row0,
                                      const float *restrict hwc, int C, int H, int W, int ty_n,
                                      int tx_n)
{
    for (int ty = 0; ty < ty_n; ty++)
        for (int tx = 0; tx < tx_n; tx++) {
            float *v = V + (size_t)(row0 + ty * tx_n + tx) * C;
            for (int c = 0; c < C; c += VW) {
                vfw d[4][4], e[4][4];
                for (int i = 0; i < 4; i++)
                    for (int k = 0; k < 4; k++) {
                        int y = 2 * ty + i, x = 2 * tx + k;
                        d[i][k] = y < H && x < W ? vwload(hwc + ((size_t)y * W + x) * C + c)
                                                 : (vfw){};
                    }
                for (int i = 0; i < 4; i++) { /* d B, row by row */
                    e[i][0] = d[i][0] - d[i][2];
                    e[i][1] = d[i][1] + d[i][2];
                    e[i][2] = d[i][2] - d[i][1];
                    e[i][3] = d[i][1] - d[i][3];
                }
                for (int k = 0; k < 4; k++) { /* B^T (d B), column by column */
                    vwstore(v + (size_t)k * v_stride + c, e[0][k] - e[2][k]);
                    vwstore(v + (size_t)(4 + k) * v_stride + c, e[1][k] + e[2][k]);
                    vwstore(v + (size_t)(8 + k) * v_stride + c, e[2][k] - e[1][k]);
                    vwstore(v + (size_t)(12 + k) * v_stride + c, e[1][k] - e[3][k]);
                }
            }
        }
}

/* out (C_out, Ho, Wo) of one sample from its tiles' rows (row0 + tile) of Mt[xi]
 * (ldm floats a row), through hwo (Ho Wo, C_out) transposed at the end; bias and the
 * activation on the way. */
BF_CLONES static void output_transform(float *restrict out, float *restrict hwo,
                                       const float *restrict Mt, size_t m_stride, int ldm,
                                       int row0, const float *restrict b, int C_out, int Ho,
                                       int Wo, int ty_n, int tx_n, float slope)
{
    vfw zero = {}, vs = zero + (slope >= 0 ? slope : 1.0f);
    for (int ty = 0; ty < ty_n; ty++)
        for (int tx = 0; tx < tx_n; tx++) {
            const float *m0 = Mt + (size_t)(row0 + ty * tx_n + tx) * ldm;
            for (int o = 0; o < C_out; o += VW) {
                vfw m[4][4], f[4][2];
                for (int xi = 0; xi < 16; xi++)
                    m[xi / 4][xi % 4] = vwload(m0 + (size_t)xi * m_stride + o);
                for (int i = 0; i < 4; i++) { /* m A, row by row */
                    f[i][0] = m[i][0] + m[i][1] + m[i][2];
                    f[i][1] = m[i][1] - m[i][2] - m[i][3];
                }
                vfw bias = b ? vwload(b + o) : zero;
                for (int dx = 0; dx < 2; dx++) { /* A^T (m A) */
                    vfw y[2] = {f[0][dx] + f[1][dx] + f[2][dx] + bias,
                                f[1][dx] - f[2][dx] - f[3][dx] + bias};
                    for (int dy = 0; dy < 2; dy++) {
                        int oy = 2 * ty + dy, ox = 2 * tx + dx;
                        if (oy >= Ho || ox >= Wo)
                            continue;
                        vfw v = y[dy];
                        if (slope >= 0)
                            v = vwselect(v > zero, v, v * vs);
                        vwstore(hwo + ((size_t)oy * Wo + ox) * C_out + o, v);
                    }
                }
            }
        }
    int P = Ho * Wo, p8 = P / 8 * 8;
    for (int o = 0; o < C_out; o += 8)
        for (int p = 0; p < p8; p += 8)
            TRANSPOSE_8X8(out + (size_t)o * P + p, P, hwo + (size_t)p * C_out + o, C_out);
    for (int o = 0; o < C_out; o++)
        for (int p = p8; p < P; p++)
            out[(size_t)o * P + p] = hwo[(size_t)p * C_out + o];
}

bf_status cpu_conv2d_forward_winograd(float *out, const float *inp, const float *w,
                                      const float *b, int B, int C_in, int H, int W, int C_out,
                                      float slope, bf_error *err)
{
    int Ho = H - 2, Wo = W - 2, ty_n = (Ho + 1) / 2, tx_n = (Wo + 1) / 2, T = ty_n * tx_n;
    int ldu = cpu_gemm_panel_cols(C_out), rows = GROUP * T;
    size_t HW = (size_t)H * W, P = (size_t)Ho * Wo;
    size_t n_u = 16 * (size_t)C_in * ldu, n_wt = (size_t)C_in * 9 * C_out;
    float *U = calloc(n_u + n_wt, sizeof(float)); /* the panel's padding stays zero */
    if (!U)
        return bf_error_set(err, BF_ERR_NOMEM, "conv2d (Winograd): out of memory for the "
                            "transformed filters");
    transpose8(U + n_u, w, C_out, C_in * 9);
    transform_filters(U, ldu, U + n_u, C_in, C_out);
    /* per thread: hwc (HW, C_in), V (16 x rows x C_in), Mt (16 x rows x ldu), hwo (P,
     * C_out) */
    /* a vector's padding between frequencies: 16 streams 8 KB apart shared cache sets */
    size_t v_stride = (size_t)rows * C_in + VW, m_stride = (size_t)rows * ldu + VW;
    size_t n_hwc = HW * C_in, n_v = 16 * v_stride, n_m = 16 * m_stride;
    size_t n_scratch = n_hwc + n_v + n_m + P * C_out;
    int groups = (B + GROUP - 1) / GROUP, failed = 0;
#pragma omp parallel
    {
        float *hwc = calloc(n_scratch, sizeof(float));
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
                input_transform(V, v_stride, s * T, hwc, C_in, H, W, ty_n, tx_n);
            }
            for (int xi = 0; xi < 16; xi++)
                cpu_gemm_panel(0, ng * T, C_out, C_in, V + xi * v_stride, C_in,
                               U + (size_t)xi * C_in * ldu, Mt + xi * m_stride, ldu, NULL, NULL);
            for (int s = 0; s < ng; s++)
                output_transform(out + (size_t)(n0 + s) * C_out * P, hwo, Mt, m_stride, ldu,
                                 s * T, b, C_out, Ho, Wo, ty_n, tx_n, slope);
        }
        free(hwc);
    }
    free(U);
    if (failed)
        return bf_error_set(err, BF_ERR_NOMEM, "conv2d (Winograd): %zu bytes of scratch per "
                            "thread", sizeof(float) * n_scratch);
    return BF_OK;
}
