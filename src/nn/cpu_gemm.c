/* nn/cpu_gemm.c — the small matrix products of the CPU backend's 2-D kernels
 * (BraggNN: a few dozen rows, 25-81 columns, K up to 576 per sample).
 *
 * Why not sgemm: these products are too small for OpenBLAS's blocking to pay off, and
 * on this project's machines OpenBLAS is pinned to its AVX2 (Haswell) kernels
 * (OPENBLAS_CORETYPE), while these compile to AVX-512 where the CPU has it
 * (target_clones, cpu_simd.h). One register-blocked kernel: a tile of MR rows x NR
 * columns of C in registers, B read from a packed panel whose rows are padded with
 * zeros to a multiple of NR columns (cpu_pack_b, or written that way by the caller,
 * as im2col does, or the input image itself by taps, cpu_gemm_taps), A read in place
 * (either layout), the bias (per row of C) loaded into the accumulators. Sums run over
 * k in order, the same bits for any thread count. Tested against the reference backend through the
 * ops that use it (tests/nn/test_backends.c). */
#include "nn/cpu_simd.h"
#include "nn/nn_internal.h"

#define NV 16 /* floats per vector here: one zmm under AVX-512, two ymm under AVX2 */
typedef float vf16 __attribute__((vector_size(NV * sizeof(float))));
#define MR 8 /* 16 accumulators, half the zmm registers of AVX-512; divides 32, 64, 96 */
#define NR (2 * NV)

#define v16load(p)                                                                        \
    ({                                                                                    \
        vf16 v_;                                                                          \
        memcpy(&v_, (p), sizeof v_);                                                      \
        v_;                                                                               \
    })
#define v16splat(x)                                                                       \
    ({                                                                                    \
        float s_ = (x);                                                                   \
        (vf16){s_, s_, s_, s_, s_, s_, s_, s_, s_, s_, s_, s_, s_, s_, s_, s_};           \
    })

int cpu_gemm_panel_cols(int N) { return (N + NR - 1) / NR * NR; }

/* Stores (or adds) the tile rows [0, mr) and columns [0, nr) of acc: whole vectors where
 * the block is full, lane by lane only in the last, partial one. (An all-scalar store
 * cost more than the products when K is short: the non-local block's K = 32 products
 * spent more time storing than multiplying.) */
#define STORE_TILE(mr_)                                                                   \
    for (int r = 0; r < (mr_); r++) {                                                     \
        float *c = C + (size_t)(i0 + r) * ldc + j0;                                       \
        for (int h = 0; h < 2; h++) {                                                     \
            vf16 v = acc[r][h];                                                           \
            if ((h + 1) * NV <= nr) {                                                     \
                if (accumulate)                                                           \
                    v += v16load(c + h * NV);                                             \
                memcpy(c + h * NV, &v, sizeof v);                                         \
            } else                                                                        \
                for (int l = 0; h * NV + l < nr; l++)                                     \
                    c[h * NV + l] = (accumulate ? c[h * NV + l] : 0.0f) + v[l];           \
        }                                                                                 \
    }

/* One row block: rows [i0, i0 + mr) of C, columns [j0, j0 + nr), from a block of B
 * holding NR readable columns per row. B's row k = s Kc + c (tap s of ntaps, c < Kc)
 * starts at bblk + tap[s] + c ldb: a plain matrix is one tap at 0 (Kc = K); the
 * wide-grid convolution's B is its input image itself, one tap per kernel offset.
 * AT(i, k) reads A. */
#define ROW_BLOCK(mr_, AT)                                                                \
    do {                                                                                  \
        vf16 acc[MR][2];                                                                  \
        for (int r = 0; r < MR; r++)                                                      \
            acc[r][0] = acc[r][1] = v16splat(bias && r < (mr_) ? bias[i0 + r] : 0.0f);    \
        for (int s = 0, k = 0; s < ntaps; s++) {                                          \
            const float *b = bblk + tap[s];                                               \
            for (int c = 0; c < Kc; c++, k++, b += ldb) {                                 \
                vf16 b0 = v16load(b), b1 = v16load(b + NV);                               \
                for (int r = 0; r < (mr_); r++) {                                         \
                    vf16 a = v16splat(AT(i0 + r, k));                                     \
                    acc[r][0] += a * b0;                                                  \
                    acc[r][1] += a * b1;                                                  \
                }                                                                         \
            }                                                                             \
        }                                                                                 \
        STORE_TILE(mr_)                                                                   \
    } while (0)

/* A(i, k) from A stored (M, K) with row stride lda, or (K, M) when transposed. */
#define A_N(i, k) A[(size_t)(i) * lda + (k)]
#define A_T(i, k) A[(size_t)(k) * lda + (i)]

/* The product for columns [j0, j0 + nr) of C (K = ntaps Kc): full tiles of MR rows
 * (unrolled, in registers), then the last rows. One function per layout of A, so the
 * inner loop has no branch. */
#define GEMM_BLOCK(name, AT)                                                              \
    BF_CLONES static void name(int M, int Kc, int ntaps, const int *restrict tap,          \
                               const float *restrict A, int lda, const float *restrict bblk,\
                               int ldb, float *restrict C, int ldc, int j0, int nr,        \
                               const float *restrict bias, int accumulate)                \
    {                                                                                     \
        int i0 = 0;                                                                       \
        for (; i0 + MR <= M; i0 += MR)                                                    \
            ROW_BLOCK(MR, AT);                                                            \
        if (i0 < M) {                                                                     \
            int mr = M - i0;                                                              \
            ROW_BLOCK(mr, AT);                                                            \
        }                                                                                 \
    }
GEMM_BLOCK(gemm_block_n, A_N)
GEMM_BLOCK(gemm_block_t, A_T)

static const int no_taps[1] = {0}; /* a plain matrix: one tap at offset 0 */

static void gemm_block(int trans_a, int M, int K, const float *A, int lda, const float *bblk,
                       int ldb, float *C, int ldc, int j0, int nr, const float *bias,
                       int accumulate)
{
    (trans_a ? gemm_block_t : gemm_block_n)(M, K, 1, no_taps, A, lda, bblk, ldb, C, ldc, j0,
                                            nr, bias, accumulate);
}

void cpu_gemm_panel(int trans_a, int M, int N, int K, const float *A, int lda,
                    const float *panel, float *C, int ldc, const float *bias, int accumulate)
{
    int Np = cpu_gemm_panel_cols(N);
    for (int j0 = 0; j0 < N; j0 += NR)
        gemm_block(trans_a, M, K, A, lda, panel + j0, Np, C, ldc, j0,
                   N - j0 < NR ? N - j0 : NR, bias, accumulate);
}

void cpu_gemm_taps(int M, int N, int Kc, int ntaps, const int *tap, const float *A,
                   const float *B, int ldb, float *C, int ldc)
{
    for (int j0 = 0; j0 < N; j0 += NR)
        gemm_block_n(M, Kc, ntaps, tap, A, Kc * ntaps, B + j0, ldb, C, ldc, j0,
                     N - j0 < NR ? N - j0 : NR, NULL, 0);
}

/* The 8 x 8 block at src (rows ld_src apart) transposed into dst (rows ld_dst apart):
 * three rounds of two-input shuffles (pairs, quads, halves). */
#define TRANSPOSE_8X8(dst, ld_dst, src, ld_src)                                           \
    do {                                                                                  \
        vf r_[8], t_[8], u_[8];                                                           \
        for (int i_ = 0; i_ < 8; i_++)                                                    \
            r_[i_] = vload((src) + (size_t)i_ * (ld_src));                                \
        for (int i_ = 0; i_ < 8; i_ += 2) {                                               \
            t_[i_] = __builtin_shufflevector(r_[i_], r_[i_ + 1], 0, 8, 1, 9, 4, 12, 5, 13); \
            t_[i_ + 1] =                                                                  \
                __builtin_shufflevector(r_[i_], r_[i_ + 1], 2, 10, 3, 11, 6, 14, 7, 15);  \
        }                                                                                 \
        for (int i_ = 0; i_ < 8; i_ += 4)                                                 \
            for (int h_ = 0; h_ < 2; h_++) {                                              \
                u_[i_ + 2 * h_] = __builtin_shufflevector(t_[i_ + h_], t_[i_ + h_ + 2], 0, \
                                                          1, 8, 9, 4, 5, 12, 13);         \
                u_[i_ + 2 * h_ + 1] = __builtin_shufflevector(                            \
                    t_[i_ + h_], t_[i_ + h_ + 2], 2, 3, 10, 11, 6, 7, 14, 15);            \
            }                                                                             \
        for (int i_ = 0; i_ < 4; i_++) {                                                  \
            vstore((dst) + (size_t)i_ * (ld_dst),                                         \
                   __builtin_shufflevector(u_[i_], u_[i_ + 4], 0, 1, 2, 3, 8, 9, 10, 11)); \
            vstore((dst) + (size_t)(i_ + 4) * (ld_dst),                                   \
                   __builtin_shufflevector(u_[i_], u_[i_ + 4], 4, 5, 6, 7, 12, 13, 14, 15)); \
        }                                                                                 \
    } while (0)

/* Copies columns [j0, j0 + nr) of op(B) (K rows) into blk (K x NR), zero beyond nr.
 * Transposed, in 8 x 8 blocks where whole ones fit: lane-by-lane gathers down B's
 * rows took an eighth of BraggNN's training step. */
BF_CLONES static void pack_block(int trans_b, int K, int j0, int nr, const float *restrict B,
                                 int ldb, float *restrict blk)
{
    if (!trans_b) {
        for (int k = 0; k < K; k++) {
            float *row = blk + (size_t)k * NR;
            memcpy(row, B + (size_t)k * ldb + j0, sizeof(float) * nr);
            memset(row + nr, 0, sizeof(float) * (NR - nr));
        }
        return;
    }
    int k8 = K / 8 * 8, j8 = nr / 8 * 8;
    for (int k = 0; k < k8; k += 8)
        for (int j = 0; j < j8; j += 8)
            TRANSPOSE_8X8(blk + (size_t)k * NR + j, NR, B + (size_t)(j0 + j) * ldb + k, ldb);
    for (int k = 0; k < K; k++) {
        float *row = blk + (size_t)k * NR;
        for (int j = k < k8 ? j8 : 0; j < nr; j++)
            row[j] = B[(size_t)(j0 + j) * ldb + k];
        memset(row + nr, 0, sizeof(float) * (NR - nr));
    }
}

/* Whole column blocks of an untransposed B are read in place; the last, partial one
 * and every block of a transposed B go through a packed copy (K x NR of panel). */
void cpu_gemm(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda,
              const float *B, int ldb, float *C, int ldc, const float *bias, int accumulate,
              float *panel)
{
    for (int j0 = 0; j0 < N; j0 += NR) {
        int nr = N - j0 < NR ? N - j0 : NR;
        if (!trans_b && nr == NR) {
            gemm_block(trans_a, M, K, A, lda, B + j0, ldb, C, ldc, j0, nr, bias, accumulate);
            continue;
        }
        pack_block(trans_b, K, j0, nr, B, ldb, panel);
        gemm_block(trans_a, M, K, A, lda, panel, NR, C, ldc, j0, nr, bias, accumulate);
    }
}
