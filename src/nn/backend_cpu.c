/* nn/backend_cpu.c — the CPU backend: OpenBLAS sgemm for the dense products,
 * OpenMP + the fused kernels of cpu_kernels.c for the rest. Memory is host
 * memory (64-byte aligned, zeroed). */
#include "nn/nn_internal.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static void *cpu_alloc(size_t nbytes)
{
    size_t n = (nbytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, n ? n : 64);
    if (p)
        memset(p, 0, n ? n : 64);
    return p;
}

static void cpu_free(void *p) { free(p); }

static void cpu_copy(void *dst, const void *src, size_t nbytes) { memcpy(dst, src, nbytes); }

static void cpu_zero(void *p, size_t nbytes) { memset(p, 0, nbytes); }

static void cpu_set_threads(int threads)
{
    int t = threads > 0 ? threads : bf_default_threads();
    omp_set_num_threads(t);
    openblas_set_num_threads(t); /* the OpenMP build follows omp anyway; the pthread one needs it */
}

/* out (B, n_out) = inp (B, n_in) w^T + b, then LeakyReLU when slope >= 0. */
static void cpu_linear_forward(float *out, const float *inp, const float *w, const float *b,
                               int B, int n_in, int n_out, float slope)
{
    float beta = 0;
    if (b) {
        for (int n = 0; n < B; n++)
            memcpy(out + (size_t)n * n_out, b, sizeof(float) * (size_t)n_out);
        beta = 1;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, n_out, n_in, 1.0f, inp, n_in, w, n_in,
                beta, out, n_out);
    if (slope >= 0)
        cpu_leaky_relu_inplace(out, (size_t)B * n_out, slope);
}

/* With an activation, dout is first masked in place by the LeakyReLU derivative. */
static void cpu_linear_backward(float *dinp, float *dw, float *db, float *dout, const float *out,
                                const float *inp, const float *w, int B, int n_in, int n_out,
                                float slope)
{
    if (slope >= 0)
        cpu_leaky_relu_mask(dout, out, (size_t)B * n_out, slope);
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, n_in, n_out, 1.0f, dout, n_out, w,
                    n_in, 1.0f, dinp, n_in);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_out, n_in, B, 1.0f, dout, n_out, inp,
                    n_in, 1.0f, dw, n_in);
    if (db)
        for (int n = 0; n < B; n++)
            for (int o = 0; o < n_out; o++)
                db[o] += dout[(size_t)n * n_out + o];
}

static const bf_backend cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .zero = cpu_zero,
    .set_threads = cpu_set_threads,
    .linear_forward = cpu_linear_forward,
    .linear_backward = cpu_linear_backward,
    .conv1d_pool_lrelu_forward = cpu_conv1d_pool_lrelu_forward,
    .conv1d_pool_lrelu_backward = cpu_conv1d_pool_lrelu_backward,
    .minmax_scale = cpu_minmax_scale,
    .grad_norm_clip = bf_clip_grad_norm,
    .adam_step = bf_adam_step,
};

const bf_backend *bf_backend_cpu(void) { return &cpu_backend; }

bf_status bf_backend_get(const char *name, const bf_backend **out, bf_error *err)
{
    if (!name || !strcmp(name, "cpu")) {
        *out = &cpu_backend;
        return BF_OK;
    }
    if (!strcmp(name, "cuda"))
        return bf_error_set(err, BF_ERR_UNSUPPORTED,
                            "backend 'cuda': this build has no CUDA backend (CPU only)");
    return bf_error_set(err, BF_ERR_INVALID, "backend '%s': unknown (known: cpu)", name);
}
