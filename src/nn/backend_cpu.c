/* nn/backend_cpu.c — the CPU backend: OpenBLAS sgemm for the dense products,
 * OpenMP + the fused kernels of cpu_kernels.c / cpu_kernels2d.c for the rest.
 * Memory is host memory (64-byte aligned, zeroed), but models never touch it
 * directly: they go through this table like any other backend's. */
#include "nn/nn_internal.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static bf_status cpu_alloc(size_t nbytes, void **out, bf_error *err)
{
    size_t n = (nbytes + 63) / 64 * 64;
    *out = aligned_alloc(64, n ? n : 64);
    if (!*out)
        return bf_error_set(err, BF_ERR_NOMEM, "cpu backend: cannot allocate %zu bytes", nbytes);
    memset(*out, 0, n ? n : 64);
    return BF_OK;
}

/* ---- what both host-memory backends (cpu, reference) do alike --------------------- */

void host_free(void *p) { free(p); }

bf_status host_transfer(void *dst, const void *src, size_t nbytes, bf_error *err)
{
    memmove(dst, src, nbytes);
    return BF_OK;
}

bf_status host_zero(void *p, size_t nbytes, bf_error *err)
{
    memset(p, 0, nbytes);
    return BF_OK;
}

bf_status host_grad_norm_clip(float *grad, size_t n, double max_norm, double *norm,
                              bf_error *err)
{
    double v = bf_clip_grad_norm(grad, n, max_norm);
    if (norm)
        *norm = v;
    return BF_OK;
}

bf_status host_adam_step(bf_adam *opt, float *value, const float *grad, bf_error *err)
{
    bf_adam_step(opt, value, grad);
    return BF_OK;
}

/* ---- the CPU backend ------------------------------------------------------------- */

static void cpu_set_threads(int threads)
{
    int t = threads > 0 ? threads : bf_default_threads();
    omp_set_num_threads(t);
    openblas_set_num_threads(t); /* the OpenMP build follows omp anyway; the pthread one needs it */
}

static int cpu_workers(void) { return omp_get_max_threads(); }

/* One OpenMP team taking tasks one at a time (dynamic): a thread that loses its core
 * for a while (a service's I/O threads share the cores) leaves its tasks to the others
 * instead of keeping them waiting at the end of the region. A task's result does not
 * depend on the thread that runs it (each has its own activations, same weights), so
 * the bits do not either. Inside a task the ops' own parallel regions are nested, so one
 * thread each. A failed task does not stop the others; the lowest failing index is
 * reported. */
static bf_status cpu_run_tasks(int n, bf_status (*task)(void *ctx, int i, int worker,
                                                        bf_error *err),
                               void *ctx, bf_error *err)
{
    int first = n;
    bf_status first_st = BF_OK;
#pragma omp parallel
    {
        bf_error mine = {0};
        int worker = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < n; i++) {
            bf_status st = task(ctx, i, worker, &mine);
            if (st != BF_OK)
#pragma omp critical(bf_cpu_run_tasks)
                if (i < first) {
                    first = i, first_st = st;
                    *err = mine;
                }
        }
    }
    return first_st;
}

/* out rows (ldo apart) = inp (B, n_in) w^T + b, then LeakyReLU when slope >= 0. */
static bf_status cpu_linear_forward(float *out, int ldo, const float *inp, const float *w,
                                    const float *b, int B, int n_in, int n_out, float slope,
                                    bf_error *err)
{
    for (int n = 0; n < B; n++) {
        float *o = out + (size_t)n * ldo;
        if (b)
            memcpy(o, b, sizeof(float) * (size_t)n_out);
        else
            memset(o, 0, sizeof(float) * (size_t)n_out);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, n_out, n_in, 1.0f, inp, n_in, w, n_in,
                1.0f, out, ldo);
    if (slope >= 0) {
        if (ldo == n_out)
            cpu_leaky_relu_inplace(out, (size_t)B * n_out, slope);
        else
            for (int n = 0; n < B; n++)
                cpu_leaky_relu_inplace(out + (size_t)n * ldo, (size_t)n_out, slope);
    }
    return BF_OK;
}

/* With an activation, dout is first masked in place by the LeakyReLU derivative. */
static bf_status cpu_linear_backward(float *dinp, float *dw, float *db, float *dout, int ldo,
                                     const float *out, const float *inp, const float *w, int B,
                                     int n_in, int n_out, float slope, bf_error *err)
{
    if (slope >= 0) {
        if (ldo == n_out)
            cpu_leaky_relu_mask(dout, out, (size_t)B * n_out, slope);
        else
            for (int n = 0; n < B; n++)
                cpu_leaky_relu_mask(dout + (size_t)n * ldo, out + (size_t)n * ldo,
                                    (size_t)n_out, slope);
    }
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, n_in, n_out, 1.0f, dout, ldo, w,
                    n_in, 1.0f, dinp, n_in);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n_out, n_in, B, 1.0f, dout, ldo, inp,
                    n_in, 1.0f, dw, n_in);
    if (db)
        for (int n = 0; n < B; n++)
            for (int o = 0; o < n_out; o++)
                db[o] += dout[(size_t)n * ldo + o];
    return BF_OK;
}

static const bf_backend cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = host_free,
    .upload = host_transfer,
    .download = host_transfer,
    .zero = host_zero,
    .set_threads = cpu_set_threads,
    .infer_chunk = 16, /* BraggNN: 16 x 49 KB of activations stay in L2 (64 was 4 % slower, 512 10 %) */
    .train_chunk = 128, /* BraggNN: 128 trained 1.3x faster a sample than 512, 64 slower */
    .workers = cpu_workers,
    .run_tasks = cpu_run_tasks,
    .linear_forward = cpu_linear_forward,
    .linear_backward = cpu_linear_backward,
    .conv1d_pool_lrelu_forward = cpu_conv1d_pool_lrelu_forward,
    .conv1d_pool_lrelu_backward = cpu_conv1d_pool_lrelu_backward,
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_backward = cpu_conv2d_backward,
    .nonlocal_forward = cpu_nonlocal_forward,
    .nonlocal_backward = cpu_nonlocal_backward,
    .grad_norm_clip = host_grad_norm_clip,
    .adam_step = host_adam_step,
};

const bf_backend *bf_backend_cpu(void) { return &cpu_backend; }

bf_status bf_backend_get(const char *name, const bf_backend **out, bf_error *err)
{
    if (!name || !strcmp(name, "cpu")) {
        *out = &cpu_backend;
        return BF_OK;
    }
    if (!strcmp(name, "reference")) {
        *out = bf_backend_reference();
        return BF_OK;
    }
    /* "cuda" is device 0, "cuda:N" device N */
    if (!strncmp(name, "cuda", 4) && (name[4] == '\0' || name[4] == ':')) {
        int device = 0;
        if (name[4] == ':') {
            char *end = NULL;
            long v = strtol(name + 5, &end, 10);
            if (end == name + 5 || *end != '\0' || v < 0 || v > 1024 || name[5] == '-' ||
                name[5] == '+' || name[5] == ' ')
                return bf_error_set(err, BF_ERR_INVALID,
                                    "backend '%s': expected cuda or cuda:N with N a device "
                                    "number", name);
            device = (int)v;
        }
#ifdef BF_HAVE_CUDA
        return bf_backend_cuda_get(name, device, out, err);
#else
        (void)device;
        return bf_error_set(err, BF_ERR_UNSUPPORTED,
                            "backend '%s': this build has no CUDA backend (CPU only; rebuild "
                            "with the CUDA toolkit, cmake -DBF_CUDA=ON)", name);
#endif
    }
    return bf_error_set(err, BF_ERR_INVALID,
                        "backend '%s': unknown (known: cpu, reference, cuda, cuda:N)", name);
}
