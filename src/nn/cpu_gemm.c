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
        const float *a = add ? add + (size_t)(i0 + r) * ldc + j0 : NULL;                  \
        for (int h = 0; h < 2; h++) {                                                     \
            vf16 v = acc[r][h];                                                           \
            if ((h + 1) * NV <= nr) {                                                     \
                if (a)                                                                    \
                    v += v16load(a + h * NV);                                             \
                memcpy(c + h * NV, &v, sizeof v);                                         \
            } else                                                                        \
                for (int l = 0; h * NV + l < nr; l++)                                     \
                    c[h * NV + l] = (a ? a[h * NV + l] : 0.0f) + v[l];                    \
        }                                                                                 \
    }

/* A whole tile (MR rows, NR columns): stored straight from the registers. (Through
 * STORE_TILE's lane-by-lane branch the compiler spilled every accumulator to the stack
 * first: a fifth of a K = 64 product's time.) */
#define STORE_FULL_TILE                                                                   \
    for (int r = 0; r < MR; r++) {                                                        \
        float *c = C + (size_t)(i0 + r) * ldc + j0;                                       \
        vf16 v0 = acc[r][0], v1 = acc[r][1];                                              \
        if (add) {                                                                        \
            const float *a = add + (size_t)(i0 + r) * ldc + j0;                           \
            v0 += v16load(a), v1 += v16load(a + NV);                                      \
        }                                                                                 \
        memcpy(c, &v0, sizeof v0), memcpy(c + NV, &v1, sizeof v1);                        \
    }

/* One row block: rows [i0, i0 + mr) of C, columns [j0, j0 + nr), from a block of B
 * holding NR readable columns per row. B's row k = s Kc + c (tap s of ntaps, c < Kc)
 * starts at bblk + tap[s] + c ldb: a plain matrix is one tap at 0 (Kc = K); the
 * wide-grid convolution's B is its input image itself, one tap per kernel offset.
 * AT(i, k) reads A. */
#define ROW_BLOCK(mr_, AT)                                                                \
    do {                                                                                  \
        vf16 acc[MR][2];                                                                  \
        for (int r = 0; r < MR; r++) {                                                    \
            vf16 b_ = v16splat(bias && r < (mr_) ? bias[i0 + r] : 0.0f);                  \
            acc[r][0] = b_ + cb0, acc[r][1] = b_ + cb1;                                   \
        }                                                                                 \
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
        if ((mr_) == MR && (nr == NR || (spill && i0 + MR < M)))                          \
            STORE_FULL_TILE                                                               \
        else                                                                              \
            STORE_TILE(mr_)                                                               \
    } while (0)

/* A(i, k) from A stored (M, K) with row stride lda, or (K, M) when transposed. */
#define A_N(i, k) A[(size_t)(i) * lda + (k)]
#define A_T(i, k) A[(size_t)(k) * lda + (i)]

/* The product for columns [j0, j0 + nr) of C (K = ntaps Kc): full tiles of MR rows
 * (unrolled, in registers), then the last rows. One function per layout of A, so the
 * inner loop has no branch. bias: per row of C; cbias: per column (its [j0, j0 + nr)
 * read). spill: a partial block (nr < NR) may be stored whole, its
 * rows running on into the next row's first columns, which a later block overwrites
 * (see spill_ok); the last row of C is stored lane by lane. */
#define GEMM_BLOCK(name, AT)                                                              \
    BF_CLONES static void name(int M, int Kc, int ntaps, const int *restrict tap,          \
                               const float *restrict A, int lda, const float *restrict bblk,\
                               int ldb, float *C, int ldc, int j0, int nr,                 \
                               const float *restrict bias, const float *restrict cbias,   \
                               const float *add, int spill)                               \
    {                                                                                     \
        vf16 cb0 = {}, cb1 = {};                                                          \
        for (int l = 0; cbias && l < nr; l++) {                                           \
            if (l < NV)                                                                   \
                cb0[l] = cbias[j0 + l];                                                   \
            else                                                                          \
                cb1[l - NV] = cbias[j0 + l];                                              \
        }                                                                                 \
        int i0 = 0;                                                                       \
        for (; i0 + MR <= M; i0 += MR)                                                    \
            ROW_BLOCK(MR, AT);                                                            \
        switch (M - i0) { /* the last rows, their count a constant: the accumulators  \
                           * then stay in registers (81 rows' last one, through a        \
                           * variable count, took a tenth of the product) */             \
        case 1: ROW_BLOCK(1, AT); break;                                                  \
        case 2: ROW_BLOCK(2, AT); break;                                                  \
        case 3: ROW_BLOCK(3, AT); break;                                                  \
        case 4: ROW_BLOCK(4, AT); break;                                                  \
        case 5: ROW_BLOCK(5, AT); break;                                                  \
        case 6: ROW_BLOCK(6, AT); break;                                                  \
        case 7: ROW_BLOCK(7, AT); break;                                                  \
        default: break;                                                                   \
        }                                                                                 \
    }
GEMM_BLOCK(gemm_block_n, A_N)
GEMM_BLOCK(gemm_block_t, A_T)

static const int no_taps[1] = {0}; /* a plain matrix: one tap at offset 0 */

static void gemm_block(int trans_a, int M, int K, const float *A, int lda, const float *bblk,
                       int ldb, float *C, int ldc, int j0, int nr, const float *bias,
                       const float *cbias, const float *add, int spill)
{
    (trans_a ? gemm_block_t : gemm_block_n)(M, K, 1, no_taps, A, lda, bblk, ldb, C, ldc, j0,
                                            nr, bias, cbias, add, spill);
}

/* Whether the last, partial column block may spill (gemm_block): C dense (ldc = N, no
 * padding columns to keep), at least one whole block wide (a spill stays within the
 * next row) and not accumulated in place (the next row's first columns must still hold
 * their addend when their own block reads it). The blocks then run from the last to
 * the first. (Stored lane by lane, BraggNN's 81-column blocks of 17 cost more than
 * whole ones.) */
static int spill_ok(int N, int ldc, const float *C, const float *add)
{
    return ldc == N && N >= NR && add != C;
}

/* Column blocks from the last: a partial one first, so that its spill is overwritten. */
#define FOR_COLUMN_BLOCKS(j0, N) for (int j0 = ((N) - 1) / NR * NR; j0 >= 0; j0 -= NR)

void cpu_gemm_panel(int trans_a, int M, int N, int K, const float *A, int lda,
                    const float *panel, float *C, int ldc, const float *bias, const float *add)
{
    int Np = cpu_gemm_panel_cols(N), spill = spill_ok(N, ldc, C, add);
    FOR_COLUMN_BLOCKS(j0, N)
        gemm_block(trans_a, M, K, A, lda, panel + j0, Np, C, ldc, j0,
                   N - j0 < NR ? N - j0 : NR, bias, NULL, add, spill);
}

void cpu_gemm_taps(int M, int N, int Kc, int ntaps, const int *tap, const float *A,
                   const float *B, int ldb, float *C, int ldc)
{
    for (int j0 = 0; j0 < N; j0 += NR)
        gemm_block_n(M, Kc, ntaps, tap, A, Kc * ntaps, B + j0, ldb, C, ldc, j0,
                     N - j0 < NR ? N - j0 : NR, NULL, NULL, NULL, 0);
}

/* Copies columns [j0, j0 + nr) of op(B) (K rows) into blk (K x NR), zero beyond nr.
 * Transposed, in 8 x 8 blocks where whole ones fit: lane-by-lane gathers down B's
 * rows took an eighth of BraggNN's training step. */
BF_CLONES static void pack_block(int trans_b, int K, int j0, int nr, const float *restrict B,
                                 int ldb, float *restrict blk)
{
    if (!trans_b) {
        /* whole vectors with the lanes past nr cleared, where reading NR floats from
         * the row's j0 (running on into the next rows) stays inside B's K ldb floats;
         * the last rows lane by lane (a memcpy and memset per row took 5 % of an
         * 81-column product) */
        viw lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
        viw keep0 = lane < nr, keep1 = lane + NV < nr;
        vfw zero = {};
        long reach = (long)K * ldb - j0 - NR; /* row k is whole if k ldb <= reach */
        int k = 0;
        for (; k < K && (long)k * ldb <= reach; k++) {
            const float *src = B + (size_t)k * ldb + j0;
            float *row = blk + (size_t)k * NR;
            vwstore(row, vwselect(keep0, vwload(src), zero));
            vwstore(row + NV, vwselect(keep1, vwload(src + NV), zero));
        }
        for (; k < K; k++) {
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
static void gemm(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda,
                 const float *B, int ldb, float *C, int ldc, const float *bias,
                 const float *cbias, const float *add, float *panel)
{
    int spill = spill_ok(N, ldc, C, add);
    FOR_COLUMN_BLOCKS(j0, N) {
        int nr = N - j0 < NR ? N - j0 : NR;
        if (!trans_b && nr == NR) {
            gemm_block(trans_a, M, K, A, lda, B + j0, ldb, C, ldc, j0, nr, bias, cbias, add,
                       spill);
            continue;
        }
        pack_block(trans_b, K, j0, nr, B, ldb, panel);
        gemm_block(trans_a, M, K, A, lda, panel, NR, C, ldc, j0, nr, bias, cbias, add, spill);
    }
}

void cpu_gemm(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda,
              const float *B, int ldb, float *C, int ldc, const float *bias, const float *add,
              float *panel)
{
    gemm(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, bias, NULL, add, panel);
}

void cpu_gemm_bias_cols(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda,
                        const float *B, int ldb, float *C, int ldc, const float *bias,
                        float *panel)
{
    gemm(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc, NULL, bias, NULL, panel);
}
