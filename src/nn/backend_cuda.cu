/* nn/backend_cuda.cu — the CUDA backend ("cuda", "cuda:N"): the bf_backend table on
 * device memory, cuBLAS SGEMM for the dense products, own kernels for the rest.
 *
 * NOT YET RUN ON A GPU: it compiles warning-free (nvcc, sm_90 + compute_90 PTX) and
 * tests/nn/test_backend_cuda.c compares every op and both models' training step with
 * the CPU backend, but no machine this was written on had a CUDA device (issue 13).
 *
 * State: the backend is process-global (the op table takes no context): one device per
 * process, chosen by the first bf_backend_get("cuda[:N]"), one non-blocking stream, one
 * cuBLAS handle on it, and a grow-only scratch buffer for the non-local backward. Not
 * thread-safe: like the CPU backend, one model computes at a time.
 *
 * Ordering: every kernel and cuBLAS call goes on the stream; upload and download
 * synchronise the stream (download must, to hand back the bytes; upload does so the
 * caller may reuse its host buffer at once). Inside an op nothing comes back to the
 * host except the norm of grad_norm_clip. A kernel that fails while running is reported
 * by the next call that synchronises (download, grad_norm_clip), naming that op.
 *
 * Determinism: no atomics. Every reduction (biases, weight gradients, the norm) is one
 * block per output summing a fixed partition in a fixed tree order, so results repeat
 * bit for bit on the same GPU and cuBLAS version (cuBLAS picks its kernels by shape).
 * Adam uses round-to-nearest intrinsics without FMA contraction, the same float
 * operations as bf_adam_step on the host.
 *
 * Row-major (C) arrays through column-major cuBLAS: a row-major (r, c) matrix is a
 * column-major (c, r) one, so C = A B (row-major) is C^T = B^T A^T (column-major);
 * each call below says which product it is. */
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "nn/nn_internal.h"
}

/* ---- the backend's state, errors ---------------------------------------------------- */

static struct {
    int ready, device;
    cudaStream_t stream;
    cublasHandle_t blas;
    float *scratch; /* non-local backward temporaries (grow-only) */
    size_t scratch_floats;
} g_cuda;

static bf_status cuda_status(cudaError_t e)
{
    if (e == cudaErrorMemoryAllocation)
        return BF_ERR_NOMEM;
    if (e == cudaErrorInvalidValue)
        return BF_ERR_INVALID;
    if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || e == cudaErrorInvalidDevice)
        return BF_ERR_UNSUPPORTED;
    return BF_ERR_IO; /* the device failed the operation */
}

static bf_status cuda_fail(bf_error *err, const char *op, const char *call, cudaError_t e)
{
    return bf_error_set(err, cuda_status(e), "cuda backend: %s: %s: %s (%s)", op, call,
                        cudaGetErrorString(e), cudaGetErrorName(e));
}

static const char *cublas_string(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "cuBLAS not initialised";
    case CUBLAS_STATUS_ALLOC_FAILED: return "cuBLAS allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUBLAS_STATUS_MAPPING_ERROR: return "mapping error";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    default: return "cuBLAS error";
    }
}

static bf_status blas_fail(bf_error *err, const char *op, const char *call, cublasStatus_t s)
{
    return bf_error_set(err, s == CUBLAS_STATUS_ALLOC_FAILED ? BF_ERR_NOMEM : BF_ERR_IO,
                        "cuda backend: %s: %s: %s (cuBLAS status %d)", op, call,
                        cublas_string(s), (int)s);
}

/* Statements inside ops: `op` is the op's name for messages. */
#define CUDA_TRY(op, call)                                                                   \
    do {                                                                                     \
        cudaError_t e_ = (call);                                                             \
        if (e_ != cudaSuccess)                                                               \
            return cuda_fail(err, op, #call, e_);                                            \
    } while (0)
#define BLAS_TRY(op, call)                                                                   \
    do {                                                                                     \
        cublasStatus_t s_ = (call);                                                          \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                     \
            return blas_fail(err, op, #call, s_);                                            \
    } while (0)
/* After kernel launches: a bad launch configuration is reported here. */
static bf_status launched(const char *op, const char *kernel, bf_error *err)
{
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? BF_OK : cuda_fail(err, op, kernel, e);
}

static const int THREADS = 256;

static unsigned blocks_for(size_t n)
{
    size_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b < 1 ? 1 : b > 1048576 ? 1048576 : b); /* kernels stride beyond */
}

/* ---- device helpers ----------------------------------------------------------------- */

__device__ __forceinline__ float lrelu(float x, float slope) { return x > 0.0f ? x : slope * x; }

/* dout masked by the derivative read from the activated output (see backend_ref.c). */
__device__ __forceinline__ float dmask(float d, float out, float slope)
{
    return slope >= 0.0f && !(out > 0.0f) ? slope * d : d;
}

/* Sum over the block of each thread's v (blockDim.x a multiple of 32, <= 1024): the
 * same tree for the same launch, so the same bits. Result valid in thread 0. */
template <typename T> __device__ T block_sum(T v)
{
    __shared__ T warp_sums[32];
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads(); /* warp_sums may still be read by a previous call */
    if (lane == 0)
        warp_sums[warp] = v;
    __syncthreads();
    int nw = (blockDim.x + 31) >> 5;
    v = (int)threadIdx.x < nw ? warp_sums[threadIdx.x] : T(0);
    if (warp == 0)
        for (int o = 16; o > 0; o >>= 1)
            v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

/* ---- memory ------------------------------------------------------------------------- */

static bf_status cuda_alloc(size_t nbytes, void **out, bf_error *err)
{
    *out = NULL;
    void *p = NULL;
    size_t n = nbytes ? nbytes : 1;
    cudaError_t e = cudaMalloc(&p, n);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* not sticky: clear it */
        return bf_error_set(err, cuda_status(e), "cuda backend: cannot allocate %zu bytes: %s",
                            nbytes, cudaGetErrorString(e));
    }
    e = cudaMemsetAsync(p, 0, n, g_cuda.stream);
    if (e != cudaSuccess) {
        cudaFree(p);
        return cuda_fail(err, "alloc", "cudaMemsetAsync", e);
    }
    *out = p;
    return BF_OK;
}

static void cuda_free(void *p)
{
    if (p)
        cudaFree(p); /* waits for the device: no kernel still uses p */
}

static bf_status cuda_upload(void *dst, const void *host_src, size_t nbytes, bf_error *err)
{
    if (!nbytes)
        return BF_OK;
    CUDA_TRY("upload", cudaMemcpyAsync(dst, host_src, nbytes, cudaMemcpyHostToDevice,
                                       g_cuda.stream));
    CUDA_TRY("upload", cudaStreamSynchronize(g_cuda.stream));
    return BF_OK;
}

static bf_status cuda_download(void *host_dst, const void *src, size_t nbytes, bf_error *err)
{
    if (!nbytes)
        return BF_OK;
    CUDA_TRY("download", cudaMemcpyAsync(host_dst, src, nbytes, cudaMemcpyDeviceToHost,
                                         g_cuda.stream));
    CUDA_TRY("download", cudaStreamSynchronize(g_cuda.stream));
    return BF_OK;
}

static bf_status cuda_zero(void *p, size_t nbytes, bf_error *err)
{
    if (nbytes)
        CUDA_TRY("zero", cudaMemsetAsync(p, 0, nbytes, g_cuda.stream));
    return BF_OK;
}

static void cuda_set_threads(int threads) { (void)threads; }

/* Grow-only scratch of n floats (contents undefined). */
static bf_status scratch(size_t n, const char *op, float **out, bf_error *err)
{
    if (n > g_cuda.scratch_floats) {
        cuda_free(g_cuda.scratch);
        g_cuda.scratch = NULL;
        g_cuda.scratch_floats = 0;
        void *p = NULL;
        cudaError_t e = cudaMalloc(&p, n * sizeof(float));
        if (e != cudaSuccess) {
            cudaGetLastError();
            return bf_error_set(err, cuda_status(e),
                                "cuda backend: %s: cannot allocate %zu floats of scratch: %s", op,
                                n, cudaGetErrorString(e));
        }
        g_cuda.scratch = (float *)p;
        g_cuda.scratch_floats = n;
    }
    *out = g_cuda.scratch;
    return BF_OK;
}

/* ---- elementwise kernels ------------------------------------------------------------ */

/* rows x cols values, rows ld apart: x = act(x + bias[col]) (bias may be NULL). */
__global__ void k_bias_act_rows(float *x, int ld, const float *bias, int rows, int cols,
                                float slope)
{
    size_t n = (size_t)rows * cols;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / cols;
        int c = (int)(i % cols);
        float *p = x + r * ld + c;
        float v = *p + (bias ? bias[c] : 0.0f);
        *p = slope >= 0.0f ? lrelu(v, slope) : v;
    }
}

/* dout masked in place by the activation's derivative, rows ld apart. */
__global__ void k_mask_rows(float *dout, int ld, const float *out, int rows, int cols,
                            float slope)
{
    size_t n = (size_t)rows * cols;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t at = i / cols * ld + i % cols;
        dout[at] = dmask(dout[at], out[at], slope);
    }
}

/* x (B, C, N) = act(x + bias[c] (+ res)), res may be NULL. */
__global__ void k_bias_res_act(float *x, const float *bias, const float *res, int B, int C, int N,
                               float slope)
{
    size_t n = (size_t)B * C * N;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(i / N % C);
        float v = x[i] + bias[c];
        if (res)
            v += res[i];
        x[i] = slope >= 0.0f ? lrelu(v, slope) : v;
    }
}

__global__ void k_add(float *y, const float *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

/* db[o] += sum_r d[r ld + o]: one block per o. */
__global__ void k_col_sum(float *db, const float *d, int ld, int rows)
{
    int o = blockIdx.x;
    float s = 0.0f;
    for (int r = threadIdx.x; r < rows; r += blockDim.x)
        s += d[(size_t)r * ld + o];
    s = block_sum(s);
    if (threadIdx.x == 0)
        db[o] += s;
}

/* Channel sums over a batch: with P (B, I, N) and Q (B, J, N),
 *   dw[i][j] += sum_b sum_n P[b][i][n] Q[b][j][n]   (blockIdx.x < I J), and
 *   db[i]    += sum_b sum_n P[b][i][n]              (blockIdx.x = I J + i, when db).
 * One block per output: the 1x1 convolutions' weight and bias gradients. */
__global__ void k_channel_sums(float *dw, float *db, const float *P, const float *Q, int B,
                               int I, int J, int N)
{
    int o = blockIdx.x, i, j = -1;
    if (o < I * J) {
        i = o / J;
        j = o % J;
    } else {
        i = o - I * J;
    }
    size_t total = (size_t)B * N;
    float s = 0.0f;
    for (size_t t = threadIdx.x; t < total; t += blockDim.x) {
        size_t b = t / N, n = t % N;
        float p = P[(b * I + i) * N + n];
        s += j >= 0 ? p * Q[(b * J + j) * N + n] : p;
    }
    s = block_sum(s);
    if (threadIdx.x == 0) {
        if (j >= 0)
            dw[(size_t)i * J + j] += s;
        else
            db[i] += s;
    }
}

/* ---- linear -------------------------------------------------------------------------- */

static bf_status cuda_linear_forward(float *out, int ldo, const float *inp, const float *w,
                                     const float *b, int B, int n_in, int n_out, float slope,
                                     bf_error *err)
{
    const char *op = "linear_forward";
    if (B <= 0 || n_out <= 0)
        return BF_OK;
    const float one = 1.0f, zero = 0.0f;
    if (n_in > 0) /* out^T (n_out, B; ld ldo) = w^T... column-major: (w as (n_in, n_out))^T inp^T */
        BLAS_TRY(op, cublasSgemm(g_cuda.blas, CUBLAS_OP_T, CUBLAS_OP_N, n_out, B, n_in, &one, w,
                                 n_in, inp, n_in, &zero, out, ldo));
    else
        CUDA_TRY(op, cudaMemset2DAsync(out, sizeof(float) * (size_t)ldo, 0,
                                       sizeof(float) * (size_t)n_out, (size_t)B, g_cuda.stream));
    size_t n = (size_t)B * n_out;
    k_bias_act_rows<<<blocks_for(n), THREADS, 0, g_cuda.stream>>>(out, ldo, b, B, n_out, slope);
    return launched(op, "k_bias_act_rows", err);
}

static bf_status cuda_linear_backward(float *dinp, float *dw, float *db, float *dout, int ldo,
                                      const float *out, const float *inp, const float *w, int B,
                                      int n_in, int n_out, float slope, bf_error *err)
{
    const char *op = "linear_backward";
    if (B <= 0 || n_out <= 0)
        return BF_OK;
    const float one = 1.0f;
    size_t n = (size_t)B * n_out;
    if (slope >= 0) {
        k_mask_rows<<<blocks_for(n), THREADS, 0, g_cuda.stream>>>(dout, ldo, out, B, n_out,
                                                                    slope);
        bf_status st = launched(op, "k_mask_rows", err);
        if (st != BF_OK)
            return st;
    }
    if (dinp && n_in > 0) /* dinp (B, n_in) += dout w: column-major dinp^T = w^T dout^T */
        BLAS_TRY(op, cublasSgemm(g_cuda.blas, CUBLAS_OP_N, CUBLAS_OP_N, n_in, B, n_out, &one, w,
                                 n_in, dout, ldo, &one, dinp, n_in));
    if (dw && n_in > 0) /* dw (n_out, n_in) += dout^T inp: column-major dw^T = inp^T dout */
        BLAS_TRY(op, cublasSgemm(g_cuda.blas, CUBLAS_OP_N, CUBLAS_OP_T, n_in, n_out, B, &one, inp,
                                 n_in, dout, ldo, &one, dw, n_in));
    if (db) {
        k_col_sum<<<(unsigned)n_out, THREADS, 0, g_cuda.stream>>>(db, dout, ldo, B);
        return launched(op, "k_col_sum", err);
    }
    return BF_OK;
}

/* ---- conv1d -> maxpool(2, 2) -> LeakyReLU -------------------------------------------- */

/* grid (B C_out, ceil(P / blockDim)) (rows in x: gridDim.y stops at 65535, and B C_out
 * reaches 131072 at batch 4096): thread p of row (n, co) convolves the two pooled
 * positions 2p, 2p + 1 (summing bias first, then ci, k in the reference's order), pools
 * with the reference's NaN and tie rules and activates. w[co] sits in shared memory. */
__global__ void k_conv1d_pool_fwd(float *out, uint8_t *argmax, const float *inp, const float *w,
                                  const float *b, int C_out, int C_in, int L_in, int K, int stride,
                                  int P, float slope)
{
    extern __shared__ float sw[];
    int row = blockIdx.x, n = row / C_out, co = row % C_out;
    int nw = C_in * K;
    for (int i = threadIdx.x; i < nw; i += blockDim.x)
        sw[i] = w[(size_t)co * nw + i];
    __syncthreads();
    int p = blockIdx.y * blockDim.x + threadIdx.x;
    if (p >= P)
        return;
    float bias = b ? b[co] : 0.0f;
    float c0 = bias, c1 = bias;
    const float *x = inp + (size_t)n * C_in * L_in;
    size_t l0 = (size_t)(2 * p) * stride, l1 = l0 + stride;
    for (int ci = 0; ci < C_in; ci++) {
        const float *xc = x + (size_t)ci * L_in;
        const float *wk = sw + ci * K;
        for (int k = 0; k < K; k++) { /* no FMA: the reference's roundings, same winners */
            c0 = __fadd_rn(c0, __fmul_rn(wk[k], xc[l0 + k]));
            c1 = __fadd_rn(c1, __fmul_rn(wk[k], xc[l1 + k]));
        }
    }
    /* bf_maxpool1d_forward: the first NaN wins, else the larger, ties to the first */
    float m = isnan(c0) ? c0 : (c1 > c0 || isnan(c1)) ? c1 : c0;
    size_t at = (size_t)row * P + p;
    if (argmax)
        argmax[at] = c1 > c0;
    out[at] = slope >= 0.0f ? lrelu(m, slope) : m;
}

static bf_status cuda_conv1d_pool_lrelu_forward(float *out, uint8_t *argmax, const float *inp,
                                                const float *w, const float *b, int B, int C_in,
                                                int L_in, int C_out, int K, int stride,
                                                float slope, bf_error *err)
{
    const char *op = "conv1d_pool_lrelu_forward";
    if (L_in < K || B <= 0 || C_out <= 0)
        return BF_OK;
    int P = ((L_in - K) / stride + 1) / 2;
    if (P <= 0)
        return BF_OK;
    size_t shmem = sizeof(float) * (size_t)C_in * K;
    if (shmem > 48 * 1024)
        return bf_error_set(err, BF_ERR_UNSUPPORTED,
                            "cuda backend: %s: C_in %d x K %d weights exceed 48 KiB of shared "
                            "memory", op, C_in, K);
    int threads = P < 128 ? 32 * ((P + 31) / 32) : 128;
    dim3 grid((unsigned)(B * C_out), (unsigned)((P + threads - 1) / threads));
    k_conv1d_pool_fwd<<<grid, threads, shmem, g_cuda.stream>>>(out, argmax, inp, w, b, C_out,
                                                               C_in, L_in, K, stride, P, slope);
    return launched(op, "k_conv1d_pool_fwd", err);
}

/* dw[co][ci][k] += sum_n sum_p d[n][co][p] x[n][ci][(2p + a) stride + k], with d the
 * masked dout and a the argmax byte; blockIdx.x = C_in K is db[co] += sum d.
 * grid (C_in K + 1, C_out). */
__global__ void k_conv1d_pool_dw(float *dw, float *db, const float *dout, const float *out,
                                 const uint8_t *argmax, const float *inp, int B, int C_in,
                                 int L_in, int C_out, int K, int stride, int P, float slope)
{
    int co = blockIdx.y, wi = blockIdx.x, ci = wi / K, k = wi % K;
    int bias = wi == C_in * K;
    if ((bias && !db) || (!bias && !dw))
        return;
    size_t total = (size_t)B * P;
    float s = 0.0f;
    for (size_t t = threadIdx.x; t < total; t += blockDim.x) {
        size_t n = t / P;
        int p = (int)(t % P);
        size_t at = (n * C_out + co) * P + p;
        float d = dmask(dout[at], out[at], slope);
        if (bias)
            s += d;
        else {
            size_t l = (size_t)(2 * p + argmax[at]) * stride + k;
            s += d * inp[(n * C_in + ci) * L_in + l];
        }
    }
    s = block_sum(s);
    if (threadIdx.x == 0) {
        if (bias)
            db[co] += s;
        else
            dw[((size_t)co * C_in + ci) * K + k] += s;
    }
}

/* dinp[n][ci][j] += sum_co sum_k w[co][ci][k] dconv[n][co][l], l stride + k = j, where
 * dconv is the masked dout at l = 2p + argmax and zero at the other pooled position. */
__global__ void k_conv1d_pool_dx(float *dinp, const float *dout, const float *out,
                                 const uint8_t *argmax, const float *w, int B, int C_in, int L_in,
                                 int C_out, int K, int stride, int P, float slope)
{
    size_t total = (size_t)B * C_in * L_in;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        int j = (int)(i % L_in);
        size_t nc = i / L_in;
        int ci = (int)(nc % C_in);
        size_t n = nc / C_in;
        float s = 0.0f;
        for (int co = 0; co < C_out; co++) {
            const float *wk = w + ((size_t)co * C_in + ci) * K;
            size_t rowp = (n * C_out + co) * P;
            for (int k = 0; k < K && k <= j; k++) {
                int t = j - k;
                if (t % stride)
                    continue;
                int l = t / stride, p = l >> 1;
                if (p >= P || (l & 1) != argmax[rowp + p])
                    continue;
                s += wk[k] * dmask(dout[rowp + p], out[rowp + p], slope);
            }
        }
        dinp[i] += s;
    }
}

static bf_status cuda_conv1d_pool_lrelu_backward(float *dinp, float *dw, float *db,
                                                 const float *dout, const float *out,
                                                 const uint8_t *argmax, const float *inp,
                                                 const float *w, int B, int C_in, int L_in,
                                                 int C_out, int K, int stride, float slope,
                                                 bf_error *err)
{
    const char *op = "conv1d_pool_lrelu_backward";
    if (L_in < K || B <= 0 || C_out <= 0)
        return BF_OK;
    int P = ((L_in - K) / stride + 1) / 2;
    if (P <= 0)
        return BF_OK;
    if (!argmax)
        return bf_error_set(err, BF_ERR_INVALID, "cuda backend: %s: no argmax (inference forward?)",
                            op);
    if (dw || db) {
        dim3 grid((unsigned)(C_in * K + 1), (unsigned)C_out);
        k_conv1d_pool_dw<<<grid, THREADS, 0, g_cuda.stream>>>(dw, db, dout, out, argmax, inp, B,
                                                              C_in, L_in, C_out, K, stride, P,
                                                              slope);
        bf_status st = launched(op, "k_conv1d_pool_dw", err);
        if (st != BF_OK)
            return st;
    }
    if (dinp) {
        size_t n = (size_t)B * C_in * L_in;
        k_conv1d_pool_dx<<<blocks_for(n), THREADS, 0, g_cuda.stream>>>(
            dinp, dout, out, argmax, w, B, C_in, L_in, C_out, K, stride, P, slope);
        return launched(op, "k_conv1d_pool_dx", err);
    }
    return BF_OK;
}

/* ---- conv2d (stride 1, no padding) ---------------------------------------------------- */

/* grid (B C_out, ceil(Ho Wo / blockDim)): one thread per output position, w[co] in shared
 * memory; bias first, then ci, ky, kx as the reference sums. */
__global__ void k_conv2d_fwd(float *out, const float *inp, const float *w, const float *b,
                             int C_in, int H, int W, int C_out, int K, float slope)
{
    extern __shared__ float sw[];
    int row = blockIdx.x, n = row / C_out, co = row % C_out;
    int nw = C_in * K * K, Ho = H - K + 1, Wo = W - K + 1;
    for (int i = threadIdx.x; i < nw; i += blockDim.x)
        sw[i] = w[(size_t)co * nw + i];
    __syncthreads();
    int pos = blockIdx.y * blockDim.x + threadIdx.x;
    if (pos >= Ho * Wo)
        return;
    int oy = pos / Wo, ox = pos % Wo;
    float acc = b ? b[co] : 0.0f;
    const float *x = inp + (size_t)n * C_in * H * W;
    for (int ci = 0; ci < C_in; ci++) {
        const float *xc = x + (size_t)ci * H * W + (size_t)oy * W + ox;
        const float *wk = sw + ci * K * K;
        for (int ky = 0; ky < K; ky++)
            for (int kx = 0; kx < K; kx++)
                acc += wk[ky * K + kx] * xc[(size_t)ky * W + kx];
    }
    out[(size_t)row * Ho * Wo + pos] = slope >= 0.0f ? lrelu(acc, slope) : acc;
}

/* grid (C_in K K + 1, C_out): dw[co][ci][ky][kx] += sum_n sum_(oy,ox) d[n][co][oy][ox]
 * x[n][ci][oy + ky][ox + kx]; the last block of each co is db[co] += sum d. d is dout,
 * already masked. */
__global__ void k_conv2d_dw(float *dw, float *db, const float *d, const float *inp, int B,
                            int C_in, int H, int W, int C_out, int K)
{
    int co = blockIdx.y, wi = blockIdx.x, KK = K * K;
    int bias = wi == C_in * KK;
    if ((bias && !db) || (!bias && !dw))
        return;
    int ci = wi / KK, ky = wi % KK / K, kx = wi % K;
    int Ho = H - K + 1, Wo = W - K + 1, HWo = Ho * Wo;
    size_t total = (size_t)B * HWo;
    float s = 0.0f;
    for (size_t t = threadIdx.x; t < total; t += blockDim.x) {
        size_t n = t / HWo;
        int pos = (int)(t % HWo), oy = pos / Wo, ox = pos % Wo;
        float g = d[(n * C_out + co) * HWo + pos];
        s += bias ? g : g * inp[(n * C_in + ci) * H * W + (size_t)(oy + ky) * W + ox + kx];
    }
    s = block_sum(s);
    if (threadIdx.x == 0) {
        if (bias)
            db[co] += s;
        else
            dw[((size_t)co * C_in + ci) * KK + ky * K + kx] += s;
    }
}

/* dinp[n][ci][iy][ix] += sum_co sum_(ky,kx) w[co][ci][ky][kx] d[n][co][iy - ky][ix - kx]. */
__global__ void k_conv2d_dx(float *dinp, const float *d, const float *w, int B, int C_in, int H,
                            int W, int C_out, int K)
{
    int Ho = H - K + 1, Wo = W - K + 1, KK = K * K;
    size_t total = (size_t)B * C_in * H * W;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        int ix = (int)(i % W), iy = (int)(i / W % H);
        size_t nc = i / ((size_t)H * W);
        int ci = (int)(nc % C_in);
        size_t n = nc / C_in;
        float s = 0.0f;
        for (int co = 0; co < C_out; co++) {
            const float *wk = w + ((size_t)co * C_in + ci) * KK;
            const float *g = d + (n * C_out + co) * Ho * Wo;
            for (int ky = 0; ky < K; ky++) {
                int oy = iy - ky;
                if (oy < 0 || oy >= Ho)
                    continue;
                for (int kx = 0; kx < K; kx++) {
                    int ox = ix - kx;
                    if (ox >= 0 && ox < Wo)
                        s += wk[ky * K + kx] * g[oy * Wo + ox];
                }
            }
        }
        dinp[i] += s;
    }
}

static bf_status cuda_conv2d_forward(float *out, const float *inp, const float *w, const float *b,
                                     int B, int C_in, int H, int W, int C_out, int K, float slope,
                                     bf_error *err)
{
    const char *op = "conv2d_forward";
    if (H < K || W < K || B <= 0 || C_out <= 0)
        return BF_OK;
    size_t shmem = sizeof(float) * (size_t)C_in * K * K;
    if (shmem > 48 * 1024)
        return bf_error_set(err, BF_ERR_UNSUPPORTED,
                            "cuda backend: %s: C_in %d x K %d^2 weights exceed 48 KiB of shared "
                            "memory", op, C_in, K);
    int HWo = (H - K + 1) * (W - K + 1);
    int threads = HWo < 128 ? 32 * ((HWo + 31) / 32) : 128;
    dim3 grid((unsigned)(B * C_out), (unsigned)((HWo + threads - 1) / threads));
    k_conv2d_fwd<<<grid, threads, shmem, g_cuda.stream>>>(out, inp, w, b, C_in, H, W, C_out, K,
                                                          slope);
    return launched(op, "k_conv2d_fwd", err);
}

static bf_status cuda_conv2d_backward(float *dinp, float *dw, float *db, float *dout,
                                      const float *out, const float *inp, const float *w, int B,
                                      int C_in, int H, int W, int C_out, int K, float slope,
                                      bf_error *err)
{
    const char *op = "conv2d_backward";
    if (H < K || W < K || B <= 0 || C_out <= 0)
        return BF_OK;
    int HWo = (H - K + 1) * (W - K + 1);
    size_t n_out = (size_t)B * C_out * HWo;
    bf_status st;
    if (slope >= 0) {
        k_mask_rows<<<blocks_for(n_out), THREADS, 0, g_cuda.stream>>>(dout, 1, out, (int)n_out, 1,
                                                                        slope);
        if ((st = launched(op, "k_mask_rows", err)) != BF_OK)
            return st;
    }
    if (dw || db) {
        dim3 grid((unsigned)(C_in * K * K + 1), (unsigned)C_out);
        k_conv2d_dw<<<grid, THREADS, 0, g_cuda.stream>>>(dw, db, dout, inp, B, C_in, H, W, C_out,
                                                         K);
        if ((st = launched(op, "k_conv2d_dw", err)) != BF_OK)
            return st;
    }
    if (dinp) {
        size_t n_in = (size_t)B * C_in * H * W;
        k_conv2d_dx<<<blocks_for(n_in), THREADS, 0, g_cuda.stream>>>(dinp, dout, w, B, C_in, H,
                                                                       W, C_out, K);
        return launched(op, "k_conv2d_dx", err);
    }
    return BF_OK;
}

/* ---- non-local block -------------------------------------------------------------------- */

/* Softmax of each row of (rows, N) in place, one block per row: max, sum of exp, scale. */
__global__ void k_softmax_rows(float *a, int N)
{
    __shared__ float bcast;
    float *r = a + (size_t)blockIdx.x * N;
    float m = -INFINITY;
    for (int c = threadIdx.x; c < N; c += blockDim.x)
        m = fmaxf(m, r[c]);
    for (int o = 16; o > 0; o >>= 1)
        m = fmaxf(m, __shfl_down_sync(0xffffffffu, m, o));
    __shared__ float wm[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    if (lane == 0)
        wm[warp] = m;
    __syncthreads();
    if (threadIdx.x == 0) {
        float mm = wm[0];
        for (int i = 1; i < nw; i++)
            mm = fmaxf(mm, wm[i]);
        bcast = mm;
    }
    __syncthreads();
    m = bcast;
    double s = 0.0; /* the reference sums in double */
    for (int c = threadIdx.x; c < N; c += blockDim.x)
        s += exp((double)r[c] - m);
    s = block_sum(s);
    __shared__ double total;
    if (threadIdx.x == 0)
        total = s;
    __syncthreads();
    for (int c = threadIdx.x; c < N; c += blockDim.x)
        r[c] = (float)(exp((double)r[c] - m) / total);
}

/* dS = A (dA - sum_c dA_c A_c) per row, in place over dA; one block per row. */
__global__ void k_softmax_back_rows(float *dA, const float *A, int N)
{
    float *g = dA + (size_t)blockIdx.x * N;
    const float *y = A + (size_t)blockIdx.x * N;
    double s = 0.0;
    for (int c = threadIdx.x; c < N; c += blockDim.x)
        s += (double)g[c] * y[c];
    s = block_sum(s);
    __shared__ double total;
    if (threadIdx.x == 0)
        total = s;
    __syncthreads(); /* every read of g is done */
    for (int c = threadIdx.x; c < N; c += blockDim.x)
        g[c] = (float)(y[c] * (g[c] - total));
}

typedef struct {
    const float *theta_w, *theta_b, *phi_w, *phi_b, *g_w, *g_b, *out_w, *out_b;
} nl_weights;

static nl_weights nl_split(const float *w, int C, int Ci)
{
    size_t in = (size_t)Ci * C + Ci;
    nl_weights r = {w,          w + (size_t)Ci * C,      w + in,     w + in + (size_t)Ci * C,
                    w + 2 * in, w + 2 * in + (size_t)Ci * C, w + 3 * in, w + 3 * in + (size_t)C * Ci};
    return r;
}

/* y (B, Co, N) = W (Co, Ci) x (B, Ci, N) [+ y when beta 1]: a 1x1 convolution without
 * bias. Column-major per sample: y^T (N, Co) = x^T (N, Ci) W^T, W^T being W row-major
 * read as column-major (Ci, Co). */
static bf_status conv1x1(const char *op, float *y, const float *x, const float *W, int B, int Ci,
                         int N, int Co, float beta, bf_error *err)
{
    const float one = 1.0f;
    BLAS_TRY(op, cublasSgemmStridedBatched(g_cuda.blas, CUBLAS_OP_N, CUBLAS_OP_N, N, Co, Ci, &one,
                                           x, N, (long long)Ci * N, W, Ci, 0, &beta, y, N,
                                           (long long)Co * N, B));
    return BF_OK;
}

/* dx (B, Ci, N) [+]= W^T (Ci, Co) d (B, Co, N): column-major dx^T = d^T W. */
static bf_status conv1x1_dx(const char *op, float *dx, const float *d, const float *W, int B,
                            int Ci, int N, int Co, float beta, bf_error *err)
{
    const float one = 1.0f;
    BLAS_TRY(op, cublasSgemmStridedBatched(g_cuda.blas, CUBLAS_OP_N, CUBLAS_OP_T, N, Ci, Co, &one,
                                           d, N, (long long)Co * N, W, Ci, 0, &beta, dx, N,
                                           (long long)Ci * N, B));
    return BF_OK;
}

static bf_status nonlocal_forward_ws(float *out, float *ws, const float *x, const float *w,
                                     int B, int C, int Ci, int N, float slope, bf_error *err)
{
    const char *op = "nonlocal_forward";
    if (B <= 0 || N <= 0)
        return BF_OK;
    nl_weights nw = nl_split(w, C, Ci);
    size_t nc = (size_t)B * Ci * N;
    float *theta = ws, *phi = theta + nc, *g = phi + nc, *A = g + nc, *y = A + (size_t)B * N * N;
    const float one = 1.0f, zero = 0.0f;
    bf_status st;
    if ((st = conv1x1(op, theta, x, nw.theta_w, B, C, N, Ci, 0.0f, err)) != BF_OK ||
        (st = conv1x1(op, phi, x, nw.phi_w, B, C, N, Ci, 0.0f, err)) != BF_OK ||
        (st = conv1x1(op, g, x, nw.g_w, B, C, N, Ci, 0.0f, err)) != BF_OK)
        return st;
    /* biases: theta, phi, g are three (B, Ci, N) blocks with their own bias vectors */
    k_bias_res_act<<<blocks_for(nc), THREADS, 0, g_cuda.stream>>>(theta, nw.theta_b, NULL, B, Ci,
                                                                  N, -1.0f);
    k_bias_res_act<<<blocks_for(nc), THREADS, 0, g_cuda.stream>>>(phi, nw.phi_b, NULL, B, Ci, N,
                                                                  -1.0f);
    k_bias_res_act<<<blocks_for(nc), THREADS, 0, g_cuda.stream>>>(g, nw.g_b, NULL, B, Ci, N,
                                                                  -1.0f);
    if ((st = launched(op, "k_bias_res_act", err)) != BF_OK)
        return st;
    /* S[n][m] = sum_c theta[c][n] phi[c][m]; column-major S^T (N, N) = phi^T theta, where
     * phi^T is phi (Ci, N) row-major read as column-major (N, Ci) */
    BLAS_TRY(op, cublasSgemmStridedBatched(g_cuda.blas, CUBLAS_OP_N, CUBLAS_OP_T, N, N, Ci, &one,
                                           phi, N, (long long)Ci * N, theta, N, (long long)Ci * N,
                                           &zero, A, N, (long long)N * N, B));
    k_softmax_rows<<<(unsigned)(B * N), N < 256 ? 32 * ((N + 31) / 32) : 256, 0, g_cuda.stream>>>(
        A, N);
    if ((st = launched(op, "k_softmax_rows", err)) != BF_OK)
        return st;
    /* y[c][n] = sum_m A[n][m] g[c][m]; column-major y^T (N, Ci) = A g^T: A row-major is
     * column-major A^T, so op T on it */
    BLAS_TRY(op, cublasSgemmStridedBatched(g_cuda.blas, CUBLAS_OP_T, CUBLAS_OP_N, N, Ci, N, &one,
                                           A, N, (long long)N * N, g, N, (long long)Ci * N, &zero,
                                           y, N, (long long)Ci * N, B));
    if ((st = conv1x1(op, out, y, nw.out_w, B, Ci, N, C, 0.0f, err)) != BF_OK)
        return st;
    size_t n_out = (size_t)B * C * N;
    k_bias_res_act<<<blocks_for(n_out), THREADS, 0, g_cuda.stream>>>(out, nw.out_b, x, B, C, N,
                                                                     slope);
    return launched(op, "k_bias_res_act", err);
}

/* ws NULL (inference, nothing kept for backward): a workspace for this call only. */
static bf_status cuda_nonlocal_forward(float *out, float *ws, const float *x, const float *w,
                                       int B, int C, int Ci, int N, float slope, bf_error *err)
{
    if (ws)
        return nonlocal_forward_ws(out, ws, x, w, B, C, Ci, N, slope, err);
    float *own = NULL;
    bf_status st = cuda_alloc(sizeof(float) * bf_nonlocal_workspace(B, Ci, N), (void **)&own,
                              err);
    if (st == BF_OK)
        st = nonlocal_forward_ws(out, own, x, w, B, C, Ci, N, slope, err);
    cuda_free(own);
    return st;
}

static bf_status cuda_nonlocal_backward(float *dx, float *dw, float *dout, const float *out,
                                        const float *ws, const float *x, const float *w, int B,
                                        int C, int Ci, int N, float slope, bf_error *err)
{
    const char *op = "nonlocal_backward";
    if (B <= 0 || N <= 0)
        return BF_OK;
    nl_weights nw = nl_split(w, C, Ci);
    size_t nc = (size_t)B * Ci * N, nn = (size_t)B * N * N, n_out = (size_t)B * C * N;
    const float *theta = ws, *phi = theta + nc, *g = phi + nc, *A = g + nc, *y = A + nn;
    float *tmp = NULL;
    bf_status st = scratch(4 * nc + nn, op, &tmp, err);
    if (st != BF_OK)
        return st;
    float *dtheta = tmp, *dphi = dtheta + nc, *dg = dphi + nc, *dy = dg + nc, *dA = dy + nc;
    float *dw_theta = dw, *dw_phi = dw ? dw + (size_t)Ci * C + Ci : NULL;
    float *dw_g = dw ? dw_phi + (size_t)Ci * C + Ci : NULL;
    float *dw_out = dw ? dw_g + (size_t)Ci * C + Ci : NULL;
    const float one = 1.0f, zero = 0.0f;

    if (slope >= 0) {
        k_mask_rows<<<blocks_for(n_out), THREADS, 0, g_cuda.stream>>>(dout, 1, out, (int)n_out, 1,
                                                                        slope);
        if ((st = launched(op, "k_mask_rows", err)) != BF_OK)
            return st;
    }
    if (dx) { /* the residual */
        k_add<<<blocks_for(n_out), THREADS, 0, g_cuda.stream>>>(dx, dout, n_out);
        if ((st = launched(op, "k_add", err)) != BF_OK)
            return st;
    }
    /* out = W_out y + b: dW_out[c][c'] += sum dout[c][n] y[c'][n], db_out[c] += sum dout */
    if (dw) {
        k_channel_sums<<<(unsigned)(C * Ci + C), THREADS, 0, g_cuda.stream>>>(
            dw_out, dw_out + (size_t)C * Ci, dout, y, B, C, Ci, N);
        if ((st = launched(op, "k_channel_sums", err)) != BF_OK)
            return st;
    }
    if ((st = conv1x1_dx(op, dy, dout, nw.out_w, B, Ci, N, C, 0.0f, err)) != BF_OK)
        return st;
    /* y = g A^T: dg[c][m] = sum_n dy[c][n] A[n][m] (column-major dg^T = A^T dy^T, A row-major
     * being column-major A^T: op N), dA[n][m] = sum_c dy[c][n] g[c][m] (column-major
     * dA^T (N, N) = g^T dy) */
    BLAS_TRY(op, cublasSgemmStridedBatched(g_cuda.blas, CUBLAS_OP_N, CUBLAS_OP_N, N, Ci, N, &one,
                                           A, N, (long long)N * N, dy, N, (long long)Ci * N, &zero,
                                           dg, N, (long long)Ci * N, B));
    BLAS_TRY(op, cublasSgemmStridedBatched(g_cuda.blas, CUBLAS_OP_N, CUBLAS_OP_T, N, N, Ci, &one,
                                           g, N, (long long)Ci * N, dy, N, (long long)Ci * N,
                                           &zero, dA, N, (long long)N * N, B));
    k_softmax_back_rows<<<(unsigned)(B * N), N < 256 ? 32 * ((N + 31) / 32) : 256, 0,
                          g_cuda.stream>>>(dA, A, N); /* dA is now dS */
    if ((st = launched(op, "k_softmax_back_rows", err)) != BF_OK)
        return st;
    /* S = theta^T phi: dtheta[c][n] = sum_m dS[n][m] phi[c][m] (column-major
     * dtheta^T = dS phi^T, dS row-major being column-major dS^T: op T) and
     * dphi[c][m] = sum_n theta[c][n] dS[n][m] (column-major dphi^T = dS^T theta^T: op N) */
    BLAS_TRY(op, cublasSgemmStridedBatched(g_cuda.blas, CUBLAS_OP_T, CUBLAS_OP_N, N, Ci, N, &one,
                                           dA, N, (long long)N * N, phi, N, (long long)Ci * N,
                                           &zero, dtheta, N, (long long)Ci * N, B));
    BLAS_TRY(op, cublasSgemmStridedBatched(g_cuda.blas, CUBLAS_OP_N, CUBLAS_OP_N, N, Ci, N, &one,
                                           dA, N, (long long)N * N, theta, N, (long long)Ci * N,
                                           &zero, dphi, N, (long long)Ci * N, B));
    /* the three input convolutions: dx += W^T d, dW[c'][c] += sum d[c'][n] x[c][n] */
    const float *dts[3] = {dtheta, dphi, dg};
    const float *wts[3] = {nw.theta_w, nw.phi_w, nw.g_w};
    float *dws[3] = {dw_theta, dw_phi, dw_g};
    for (int i = 0; i < 3; i++) {
        if (dx && (st = conv1x1_dx(op, dx, dts[i], wts[i], B, C, N, Ci, 1.0f, err)) != BF_OK)
            return st;
        if (dw) {
            k_channel_sums<<<(unsigned)(Ci * C + Ci), THREADS, 0, g_cuda.stream>>>(
                dws[i], dws[i] + (size_t)Ci * C, dts[i], x, B, Ci, C, N);
            if ((st = launched(op, "k_channel_sums", err)) != BF_OK)
                return st;
        }
    }
    return BF_OK;
}

/* ---- optimiser -------------------------------------------------------------------------- */

enum { NORM_BLOCKS = 256 };

/* partial[blockIdx.x] = sum of squares (double) of a fixed grid-stride share. */
__global__ void k_sumsq(double *partial, const float *g, size_t n)
{
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        s += (double)g[i] * g[i];
    s = block_sum(s);
    if (threadIdx.x == 0)
        partial[blockIdx.x] = s;
}

/* One block: partial[0] = the sum of the NORM_BLOCKS partial sums. */
__global__ void k_sum_partials(double *partial)
{
    double s = threadIdx.x < NORM_BLOCKS ? partial[threadIdx.x] : 0.0;
    s = block_sum(s);
    if (threadIdx.x == 0)
        partial[0] = s;
}

__global__ void k_scale(float *g, size_t n, float f)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        g[i] = __fmul_rn(g[i], f);
}

static bf_status cuda_grad_norm_clip(float *grad, size_t n, double max_norm, double *norm,
                                     bf_error *err)
{
    const char *op = "grad_norm_clip";
    double *partial = NULL, sum = 0.0;
    bf_status st = scratch(2 * NORM_BLOCKS, op, (float **)&partial, err); /* 256 doubles */
    if (st != BF_OK)
        return st;
    if (n) {
        k_sumsq<<<NORM_BLOCKS, THREADS, 0, g_cuda.stream>>>(partial, grad, n);
        k_sum_partials<<<1, NORM_BLOCKS, 0, g_cuda.stream>>>(partial);
        if ((st = launched(op, "k_sumsq", err)) != BF_OK)
            return st;
        CUDA_TRY(op, cudaMemcpyAsync(&sum, partial, sizeof sum, cudaMemcpyDeviceToHost,
                                     g_cuda.stream));
        CUDA_TRY(op, cudaStreamSynchronize(g_cuda.stream));
    }
    double v = sqrt(sum);
    if (norm)
        *norm = v;
    double coef = max_norm / (v + 1e-6); /* clip_grad_norm_, as bf_clip_grad_norm */
    if (coef < 1.0 && n) {
        k_scale<<<blocks_for(n), THREADS, 0, g_cuda.stream>>>(grad, n, (float)coef);
        return launched(op, "k_scale", err);
    }
    return BF_OK;
}

/* bf_adam_step's float operations, none fused into an FMA. */
__global__ void k_adam(float *value, float *m, float *v, const float *grad, size_t n, float beta1,
                       float beta2, float one_m_b1, float one_m_b2, float step_size,
                       float bc2_sqrt, float eps)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float g = grad[i];
        float mi = __fadd_rn(__fmul_rn(m[i], beta1), __fmul_rn(one_m_b1, g));
        float vi = __fadd_rn(__fmul_rn(v[i], beta2), __fmul_rn(__fmul_rn(one_m_b2, g), g));
        m[i] = mi;
        v[i] = vi;
        float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps);
        value[i] = __fsub_rn(value[i], __fmul_rn(step_size, __fdiv_rn(mi, denom)));
    }
}

static bf_status cuda_adam_step(bf_adam *opt, float *value, const float *grad, bf_error *err)
{
    opt->step++; /* as bf_adam_step: the scalars in double, applied in float */
    double t = (double)opt->step, b1 = opt->beta1, b2 = opt->beta2;
    double bc1 = 1.0 - pow(b1, t), bc2 = 1.0 - pow(b2, t);
    if (!opt->n)
        return BF_OK;
    k_adam<<<blocks_for(opt->n), THREADS, 0, g_cuda.stream>>>(
        value, opt->m, opt->v, grad, opt->n, opt->beta1, opt->beta2, (float)(1.0 - b1),
        (float)(1.0 - b2), (float)(opt->lr / bc1), (float)sqrt(bc2), opt->eps);
    return launched("adam_step", "k_adam", err);
}

/* ---- the table, selection ------------------------------------------------------------------ */

static bf_backend cuda_backend;

static void fill_table(bf_backend *t)
{
    memset(t, 0, sizeof *t);
    t->name = "cuda";
    t->alloc = cuda_alloc;
    t->free = cuda_free;
    t->upload = cuda_upload;
    t->download = cuda_download;
    t->zero = cuda_zero;
    t->set_threads = cuda_set_threads;
    t->linear_forward = cuda_linear_forward;
    t->linear_backward = cuda_linear_backward;
    t->conv1d_pool_lrelu_forward = cuda_conv1d_pool_lrelu_forward;
    t->conv1d_pool_lrelu_backward = cuda_conv1d_pool_lrelu_backward;
    t->conv2d_forward = cuda_conv2d_forward;
    t->conv2d_backward = cuda_conv2d_backward;
    t->nonlocal_forward = cuda_nonlocal_forward;
    t->nonlocal_backward = cuda_nonlocal_backward;
    t->grad_norm_clip = cuda_grad_norm_clip;
    t->adam_step = cuda_adam_step;
}

extern "C" bf_status bf_backend_cuda_get(const char *name, int device, const bf_backend **out,
                                        bf_error *err)
{
    *out = NULL;
    if (g_cuda.ready) {
        if (device != g_cuda.device)
            return bf_error_set(err, BF_ERR_UNSUPPORTED,
                                "backend '%s': this process already uses cuda:%d (one CUDA "
                                "device per process)", name, g_cuda.device);
        *out = &cuda_backend;
        return BF_OK;
    }
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        return bf_error_set(err, BF_ERR_UNSUPPORTED,
                            "backend '%s': no CUDA device (cudaGetDeviceCount: %s)", name,
                            e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    }
    if (device < 0 || device >= count)
        return bf_error_set(err, BF_ERR_INVALID,
                            "backend '%s': no such device (this machine has %d: cuda:0.."
                            "cuda:%d)", name, count, count - 1);
    if ((e = cudaSetDevice(device)) != cudaSuccess)
        return cuda_fail(err, "select device", "cudaSetDevice", e);
    if ((e = cudaStreamCreateWithFlags(&g_cuda.stream, cudaStreamNonBlocking)) != cudaSuccess)
        return cuda_fail(err, "select device", "cudaStreamCreateWithFlags", e);
    cublasStatus_t s = cublasCreate(&g_cuda.blas);
    if (s == CUBLAS_STATUS_SUCCESS)
        s = cublasSetStream(g_cuda.blas, g_cuda.stream);
    if (s != CUBLAS_STATUS_SUCCESS) {
        cudaStreamDestroy(g_cuda.stream);
        return blas_fail(err, "select device", "cublasCreate", s);
    }
    /* the products stay in FP32: cuBLAS's default math mode does not round SGEMM inputs
     * to TF32 (that takes CUBLAS_TF32_TENSOR_OP_MATH; NVIDIA_TF32_OVERRIDE=0 only
     * forbids it). A handle starts in that mode: this only says so. */
    cublasSetMathMode(g_cuda.blas, CUBLAS_DEFAULT_MATH);
    fill_table(&cuda_backend);
    g_cuda.device = device;
    g_cuda.ready = 1;
    *out = &cuda_backend;
    return BF_OK;
}
