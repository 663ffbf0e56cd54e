/* core/clones.h — per-CPU versions of hot loops: with GCC on x86-64, a function
 * marked BF_CLONES is compiled for x86-64-v4 (AVX-512), v3 (AVX2 + FMA) and the
 * baseline, and the loader picks one by the CPU's features. Written as plain loops
 * for the vectoriser (the file needs -O3, CMakeLists.txt). */
#ifndef BF_CORE_CLONES_H
#define BF_CORE_CLONES_H

/* GCC only: clang 14 does not resolve clones of external functions at link time
 * (clang builds are for fuzzing and get the baseline code). */
#if defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(BF_NO_CLONES)
#define BF_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BF_CLONES
#endif

/* Asks GCC to vectorise the loop that follows (OpenMP simd; the project builds with
 * -fopenmp). Not for clang: its fuzzing builds would warn where it cannot comply. */
#if defined(__GNUC__) && !defined(__clang__)
#define BF_SIMD_LOOP _Pragma("omp simd")
#else
#define BF_SIMD_LOOP
#endif

#endif
