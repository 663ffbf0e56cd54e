/* tools/cuda_emu/cuda_emu.h — a serial host emulation of the small part of CUDA and
 * cuBLAS that src/nn/backend_cuda.cu uses, so that its kernels' index arithmetic and its
 * cuBLAS argument mapping can be executed (under AddressSanitizer) on a machine without
 * a GPU. NOT a GPU: blocks run one after another, the threads of a block run as
 * cooperative fibers switched only at __syncthreads and __shfl_down_sync, "device"
 * memory is host memory and the stream is synchronous. It cannot find races, memory-
 * model, occupancy, launch-limit or performance problems, nor check real cuBLAS. Used
 * by tools/cuda_emu/run.sh only; never part of the build. */
#ifndef BF_CUDA_EMU_H
#define BF_CUDA_EMU_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <functional>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

/* ---- qualifiers, index variables ------------------------------------------------------ */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

namespace emu {
inline uint3 thread_idx, block_idx;
inline dim3 block_dim, grid_dim;
inline unsigned char dyn_shared[64 * 1024];
}
#define threadIdx (emu::thread_idx)
#define blockIdx (emu::block_idx)
#define blockDim (emu::block_dim)
#define gridDim (emu::grid_dim)

/* ---- device math ----------------------------------------------------------------------- */
inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
inline float __fsub_rn(float a, float b) { volatile float r = a - b; return r; }
inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
inline float __fdiv_rn(float a, float b) { volatile float r = a / b; return r; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }

/* ---- fibers: the threads of one block ----------------------------------------------------- */
namespace emu {
enum { RUNNING, AT_BLOCK, AT_WARP, DONE };
struct fiber {
    ucontext_t ctx;
    int state;
    uint3 tid;
    std::vector<char> stack;
};
inline ucontext_t sched_ctx;
inline std::vector<fiber> fibers;
inline int cur = -1;
inline std::function<void()> *body;
inline unsigned char warp_slots[1024][8];
inline void *sched_stack_bottom;
inline size_t sched_stack_size;

inline void switch_to_sched(int new_state)
{
    fibers[cur].state = new_state;
#if EMU_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, sched_stack_bottom, sched_stack_size);
    swapcontext(&fibers[cur].ctx, &sched_ctx);
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
    swapcontext(&fibers[cur].ctx, &sched_ctx);
#endif
}

inline void fiber_main()
{
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, (const void **)&sched_stack_bottom,
                                    &sched_stack_size);
#endif
    (*body)();
    fibers[cur].state = DONE;
#if EMU_ASAN
    __sanitizer_start_switch_fiber(nullptr, sched_stack_bottom, sched_stack_size);
#endif
    setcontext(&sched_ctx);
}

inline void resume(int i)
{
    cur = i;
    thread_idx = fibers[i].tid;
    fibers[i].state = RUNNING;
#if EMU_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, fibers[i].stack.data(), fibers[i].stack.size());
    swapcontext(&sched_ctx, &fibers[i].ctx);
    __sanitizer_finish_switch_fiber(fake, (const void **)&sched_stack_bottom, &sched_stack_size);
#else
    swapcontext(&sched_ctx, &fibers[i].ctx);
#endif
}

inline int launch_error; /* cudaErrorInvalidConfiguration as int, or 0 */

/* Runs body over grid x block as CUDA would (up to the ordering of threads); a kernel
 * without barriers (sync 0) runs its threads as plain calls, one after another. */
inline void launch(dim3 grid, dim3 block, size_t shmem, void *stream, int sync,
                   std::function<void()> f)
{
    (void)stream;
    unsigned nt = block.x * block.y * block.z;
    if (nt == 0 || nt > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 ||
        grid.z > 65535 || shmem > sizeof dyn_shared) {
        launch_error = 9; /* cudaErrorInvalidConfiguration */
        return;
    }
    grid_dim = grid;
    block_dim = block;
    body = &f;
    if (!sync) {
        cur = -1; /* a barrier here aborts */
        for (unsigned bz = 0; bz < grid.z; bz++)
            for (unsigned by = 0; by < grid.y; by++)
                for (unsigned bx = 0; bx < grid.x; bx++) {
                    block_idx = {bx, by, bz};
                    memset(dyn_shared, 0xff, shmem);
                    for (unsigned t = 0; t < nt; t++) {
                        thread_idx = {t % block.x, t / block.x % block.y, t / (block.x * block.y)};
                        f();
                    }
                }
        return;
    }
    fibers.resize(nt);
    for (auto &fb : fibers)
        if (fb.stack.empty())
            fb.stack.resize(256 * 1024);
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                block_idx = {bx, by, bz};
                memset(dyn_shared, 0xff, shmem); /* uninitialised shared memory: NaNs */
                for (unsigned t = 0; t < nt; t++) {
                    fiber &fb = fibers[t];
                    fb.tid = {t % block.x, t / block.x % block.y, t / (block.x * block.y)};
                    fb.state = RUNNING;
                    getcontext(&fb.ctx);
                    fb.ctx.uc_stack.ss_sp = fb.stack.data();
                    fb.ctx.uc_stack.ss_size = fb.stack.size();
                    fb.ctx.uc_link = nullptr;
                    makecontext(&fb.ctx, fiber_main, 0);
                }
                for (;;) { /* run every fiber to its next barrier, then release it */
                    int live = 0, at_block = 0;
                    for (unsigned t = 0; t < nt; t++)
                        if (fibers[t].state == RUNNING)
                            resume((int)t);
                    for (unsigned t = 0; t < nt; t++) {
                        live += fibers[t].state != DONE;
                        at_block += fibers[t].state == AT_BLOCK;
                    }
                    if (!live)
                        break;
                    /* a warp whose live lanes all wait at the warp barrier goes on */
                    int released = 0;
                    for (unsigned w = 0; w * 32 < nt; w++) {
                        int wl = 0, ww = 0;
                        for (unsigned t = w * 32; t < nt && t < w * 32 + 32; t++) {
                            wl += fibers[t].state != DONE;
                            ww += fibers[t].state == AT_WARP;
                        }
                        if (ww && ww == wl) {
                            for (unsigned t = w * 32; t < nt && t < w * 32 + 32; t++)
                                if (fibers[t].state == AT_WARP)
                                    fibers[t].state = RUNNING;
                            released = 1;
                        }
                    }
                    if (released)
                        continue;
                    if (at_block == live) {
                        for (unsigned t = 0; t < nt; t++)
                            if (fibers[t].state == AT_BLOCK)
                                fibers[t].state = RUNNING;
                        continue;
                    }
                    fprintf(stderr, "cuda_emu: deadlock in block (%u, %u): %d live, %d at "
                                    "__syncthreads, the rest at a warp shuffle\n",
                            bx, by, live, at_block);
                    abort();
                }
            }
    cur = -1;
}
} // namespace emu

inline void __syncthreads()
{
    if (emu::cur < 0 || (size_t)emu::cur >= emu::fibers.size()) {
        fprintf(stderr, "cuda_emu: __syncthreads outside a fiber (translate.py missed it)\n");
        abort();
    }
    emu::switch_to_sched(emu::AT_BLOCK);
}

template <typename T> T __shfl_down_sync(unsigned mask, T v, int o)
{
    (void)mask;
    static_assert(sizeof(T) <= 8, "shuffle of a wide type");
    if (emu::cur < 0) {
        fprintf(stderr, "cuda_emu: __shfl_down_sync outside a fiber (translate.py missed it)\n");
        abort();
    }
    unsigned t = emu::thread_idx.x + emu::block_dim.x * emu::thread_idx.y;
    memcpy(emu::warp_slots[t], &v, sizeof v);
    emu::switch_to_sched(emu::AT_WARP);
    T r = v;
    unsigned lane = t & 31;
    if (lane + o < 32 && t + o < (unsigned)emu::fibers.size())
        memcpy(&r, emu::warp_slots[t + o], sizeof r);
    emu::switch_to_sched(emu::AT_WARP);
    return r;
}

/* ---- runtime ------------------------------------------------------------------------------ */
typedef enum {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
} cudaError_t;
typedef void *cudaStream_t;
enum { cudaStreamNonBlocking = 1 };
typedef enum { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2 } cudaMemcpyKind;

inline const char *cudaGetErrorString(cudaError_t e)
{
    return e == cudaSuccess ? "no error" : e == cudaErrorMemoryAllocation ? "out of memory"
           : e == cudaErrorInvalidConfiguration ? "invalid configuration argument"
                                                : "emulated error";
}
inline const char *cudaGetErrorName(cudaError_t e)
{
    return e == cudaSuccess ? "cudaSuccess" : e == cudaErrorInvalidConfiguration
                                                  ? "cudaErrorInvalidConfiguration"
                                                  : "cudaError";
}
inline cudaError_t cudaGetLastError()
{
    cudaError_t e = (cudaError_t)emu::launch_error;
    emu::launch_error = 0;
    return e;
}
inline cudaError_t cudaMalloc(void **p, size_t n)
{
    *p = malloc(n);
    if (*p)
        memset(*p, 0xff, n); /* fresh device memory is not zero: alloc must zero it */
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
inline cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
inline cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t)
{
    memset(p, v, n);
    return cudaSuccess;
}
inline cudaError_t cudaMemset2DAsync(void *p, size_t pitch, int v, size_t w, size_t h,
                                     cudaStream_t)
{
    for (size_t r = 0; r < h; r++)
        memset((char *)p + r * pitch, v, w);
    return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t)
{
    memcpy(d, s, n);
    return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { *s = (void *)1; return cudaSuccess; }
inline cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }

/* ---- cuBLAS (column-major, as documented) --------------------------------------------------- */
typedef enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_ARCH_MISMATCH = 8,
    CUBLAS_STATUS_MAPPING_ERROR = 11,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
} cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUBLAS_DEFAULT_MATH = 0 } cublasMath_t;
typedef void *cublasHandle_t;
inline cublasStatus_t cublasCreate(cublasHandle_t *h) { *h = (void *)1; return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }

inline cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t, cublasOperation_t ta,
                                                cublasOperation_t tb, int m, int n, int k,
                                                const float *alpha, const float *A, int lda,
                                                long long sa, const float *B, int ldb,
                                                long long sb, const float *beta, float *C, int ldc,
                                                long long sc, int batch)
{
    /* cuBLAS's documented argument checks */
    if (m < 0 || n < 0 || k < 0 || batch < 0 || lda < (ta == CUBLAS_OP_N ? (m > 1 ? m : 1) : (k > 1 ? k : 1)) ||
        ldb < (tb == CUBLAS_OP_N ? (k > 1 ? k : 1) : (n > 1 ? n : 1)) || ldc < (m > 1 ? m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    for (int q = 0; q < batch; q++) {
        const float *a = A + q * sa, *b = B + q * sb;
        float *c = C + q * sc;
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double s = 0;
                for (int l = 0; l < k; l++) {
                    float av = ta == CUBLAS_OP_N ? a[i + (size_t)l * lda] : a[l + (size_t)i * lda];
                    float bv = tb == CUBLAS_OP_N ? b[l + (size_t)j * ldb] : b[j + (size_t)l * ldb];
                    s += (double)av * bv;
                }
                float *cv = &c[i + (size_t)j * ldc];
                *cv = (float)(*alpha * s + (*beta != 0 ? (double)*beta * *cv : 0.0));
            }
    }
    return CUBLAS_STATUS_SUCCESS;
}

inline cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                                  int m, int n, int k, const float *alpha, const float *A, int lda,
                                  const float *B, int ldb, const float *beta, float *C, int ldc)
{
    return cublasSgemmStridedBatched(h, ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C,
                                     ldc, 0, 1);
}

#endif
