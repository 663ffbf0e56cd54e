/* nn/cpu_simd.h — SIMD without intrinsics for the CPU backend's kernels: GCC/clang
 * vector extensions of VL floats and, with GCC on x86-64, target_clones that compile
 * x86-64-v4 (AVX-512), v3 (AVX2 + FMA) and baseline versions of a kernel and pick one
 * at load time. */
#ifndef BF_NN_CPU_SIMD_H
#define BF_NN_CPU_SIMD_H

#include <stdint.h>
#include <string.h>

#include "core/clones.h" /* BF_CLONES */

#define VL 8 /* floats per vector */
typedef float vf __attribute__((vector_size(VL * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(VL * sizeof(int32_t))));

/* Macros, not functions: no vector-typed function arguments or results (whose ABI
 * differs between the clones, and which clang rejects for the baseline one).
 * Loads and stores go through memcpy: unaligned vector moves. */
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
#define vsplat(x)                                                                         \
    ({                                                                                    \
        float s_ = (x);                                                                   \
        (vf){s_, s_, s_, s_, s_, s_, s_, s_};                                             \
    })
/* mask ? a : b, lane by lane (mask lanes are all ones or zero) */
#define vselect(mask, a, b) ((vf)(((vi)(a) & (mask)) | ((vi)(b) & ~(mask))))

/* Sixteen floats: one zmm under AVX-512 (two ymm under AVX2), for kernels that run
 * down columns of a matrix 16 at a time. Scalar operands broadcast (x * 2.0f). */
#define VW 16
typedef float vfw __attribute__((vector_size(VW * sizeof(float))));
typedef int32_t viw __attribute__((vector_size(VW * sizeof(int32_t))));
#define vwload(p)                                                                         \
    ({                                                                                    \
        vfw v_;                                                                           \
        memcpy(&v_, (p), sizeof v_);                                                      \
        v_;                                                                               \
    })
#define vwstore(p, v)                                                                     \
    do {                                                                                  \
        vfw w_ = (v);                                                                     \
        memcpy((p), &w_, sizeof w_);                                                      \
    } while (0)
#define vwselect(mask, a, b) ((vfw)(((viw)(a) & (mask)) | ((viw)(b) & ~(mask))))

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

#endif
