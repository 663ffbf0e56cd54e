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

#endif
