/* tests/nn/test_cpu_gemm.c — the CPU backend's register-blocked products (cpu_gemm.c)
 * against a plain triple loop in double: both layouts of A and B, shapes that leave
 * partial row tiles (1 to 7 rows), partial column blocks and K not a multiple of the 8 x 8 transposed
 * packing, with bias (per row, or per column: cpu_gemm_bias_cols), accumulation and a
 * separate addend. The ops that use them are
 * tested against the reference backend in test_backends.c; this pins the kernel. */
#include <stdlib.h>

#include "braggflow/nn.h"
#include "nn/nn_internal.h"
#include "test.h"

static void fill(float *v, size_t n, uint64_t seed)
{
    bf_rng r;
    bf_rng_init(&r, seed, 0);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)bf_rng_uniform_range(&r, -1, 1);
}

/* max |C - add - bias - op(A) op(B)| over C, with op as cpu_gemm's; use_bias: 0 none, 1
 * per row, 2 per column (cpu_gemm_bias_cols, add 0); add: 0 none, 1 C
 * itself (holding C0: C +=), 2 C0 apart (C holding something else). dense: strides
 * equal to the widths (a partial column block may then spill into the next row, and
 * packing reads run up to the matrices' ends, which the sanitizers check: the buffers
 * are allocated to size); else strides past them (columns past N must stay as they
 * were). */
static double gemm_error(int ta, int tb, int M, int N, int K, int use_bias, int add, int dense)
{
    int pad = !dense;
    int lda = (ta ? M : K) + 3 * pad, ldb = (tb ? K : N) + 5 * pad, ldc = N + 2 * pad;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb;
    float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
    float *C = malloc(sizeof(float) * (size_t)M * ldc), *C0 = malloc(sizeof(float) * (size_t)M * ldc);
    int n_bias = use_bias == 2 ? N : M;
    float *bias = malloc(sizeof(float) * n_bias);
    float *panel = malloc(sizeof(float) * (size_t)K * cpu_gemm_panel_cols(1));
    fill(A, na, 1), fill(B, nb, 2), fill(C0, (size_t)M * ldc, 3), fill(bias, n_bias, 4);
    memcpy(C, C0, sizeof(float) * (size_t)M * ldc);
    if (add == 2)
        for (size_t i = 0; i < (size_t)M * ldc; i++)
            C[i] += 7;
    float *Cpast = malloc(sizeof(float) * (size_t)M * ldc); /* what is past column N */
    memcpy(Cpast, C, sizeof(float) * (size_t)M * ldc);
    if (use_bias == 2)
        cpu_gemm_bias_cols(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, bias, panel);
    else
        cpu_gemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, use_bias ? bias : NULL,
                 add == 1 ? C : add == 2 ? C0 : NULL, panel);
    double worst = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = (add ? C0[(size_t)i * ldc + j] : 0) +
                       (use_bias == 1 ? bias[i] : use_bias == 2 ? bias[j] : 0);
            for (int k = 0; k < K; k++)
                s += (double)(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                     (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
            worst = fmax(worst, fabs(C[(size_t)i * ldc + j] - s));
        }
    /* the columns past N are the caller's: untouched */
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++)
            if (C[(size_t)i * ldc + j] != Cpast[(size_t)i * ldc + j])
                worst = INFINITY;
    free(A), free(B), free(C), free(C0), free(Cpast), free(bias), free(panel);
    return worst;
}

BF_TEST(test_gemm_matches_a_plain_loop_for_every_layout_and_edge)
{
    static const int shapes[][3] = {{1, 1, 1},  {8, 32, 8},   {81, 81, 32}, {32, 81, 81},
                                    {9, 17, 3}, {96, 81, 64}, {576, 56, 32}, {7, 33, 81},
                                    {64, 64, 1}, {13, 95, 23}, {5, 8, 3},    {3, 40, 2},
                                    {17, 48, 5},  {10, 33, 7},  {12, 20, 9},  {14, 50, 33}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int mode = 0; mode < 10; mode++) { /* plain, bias, C += with bias,
                                                           * add apart, column bias; each
                                                           * sparse, dense */
                    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], dense = mode / 5;
                    int m = mode % 5, use_bias = m == 1 || m == 2 ? 1 : m == 4 ? 2 : 0;
                    double e = gemm_error(ta, tb, M, N, K, use_bias, m == 2 || m == 3 ? m - 1 : 0,
                                          dense);
                    /* float sums of K terms of size <= 1, the addend and the bias:
                     * measured <= 8.7e-8 (K + 3) (a column bias, K = 32), and 2.53e-7
                     * at K = 1 with both (baseline code, no fused multiply-add) */
                    CHECK_MSG(e <= 9e-8 * (K + 3), "M %d N %d K %d trans %d%d mode %d: %g", M,
                              N, K, ta, tb, mode, e);
                }
}
