/* tests/nn/test_cpu_nomem.c — the CPU backend's 2-D kernels when their scratch cannot be
 * allocated: each op returns BF_ERR_NOMEM with a message (DESIGN §2: every failure is a
 * bf_status), never crashes or reports success, whichever of its allocations fails.
 * malloc and calloc are wrapped at link time (tests/CMakeLists.txt: --wrap), so the
 * library's calls come here; fail_at counts them down (the OpenMP runtime's own
 * allocations are not wrapped). */
#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/nn.h"
#include "nn/nn_internal.h"
#include "test.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);

/* allocations left before one fails; < 0: none fails */
static atomic_int fail_at = -1;

static int refuse(void)
{
    int left = atomic_load(&fail_at);
    while (left >= 0 && !atomic_compare_exchange_weak(&fail_at, &left, left - 1))
        ;
    return left == 0;
}

void *__wrap_malloc(size_t n) { return refuse() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return refuse() ? NULL : __real_calloc(n, size); }

static float *filled(size_t n, float v)
{
    float *p = __real_malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        p[i] = v * (float)((i * 7) % 13) - 0.3f;
    return p;
}

/* The kernels keep their scratch between calls (cpu_scratch.c): every thread of the
 * team drops it, so that each attempt below allocates afresh. */
static void release_scratch(void)
{
#pragma omp parallel
    cpu_scratch_release();
}

/* Runs op with the k-th allocation refused for k = 0, 1, ... until it succeeds: every
 * refusal must give BF_ERR_NOMEM (with a message), and some k must succeed. */
#define EACH_REFUSAL(call)                                                                \
    do {                                                                                  \
        int ok_ = 0;                                                                      \
        for (int k_ = 0; k_ < 64 && !ok_; k_++) {                                         \
            bf_error err = {0};                                                           \
            release_scratch();                                                            \
            atomic_store(&fail_at, k_);                                                   \
            bf_status st_ = (call);                                                       \
            int refused_ = atomic_load(&fail_at) < 0;                                     \
            atomic_store(&fail_at, -1);                                                   \
            if (!refused_) {                                                              \
                CHECK_MSG(st_ == BF_OK, "refusing allocation %d of %s: none refused, %s",    \
                          k_, #call, err.msg);                                            \
                ok_ = 1;                                                                  \
            } else                                                                        \
                CHECK_MSG(st_ == BF_ERR_NOMEM && err.msg[0],                              \
                          "refusing allocation %d of %s: status %d", k_, #call, (int)st_);  \
        }                                                                                 \
        CHECK(ok_);                                                                       \
    } while (0)

BF_TEST(conv2d_ops_return_nomem_when_scratch_is_refused)
{
    const bf_backend *be = bf_backend_cpu();
    omp_set_num_threads(2);
    /* B, C_in, H, W, C_out: the wide grid (its last sample copied), conv1 (few taps:
     * direct), conv2 (Winograd: the filters, then per thread) */
    const int shapes[][5] = {{3, 24, 9, 9, 32}, {3, 1, 11, 11, 64}, {3, 64, 9, 9, 32}};
    for (int s = 0; s < 3; s++) {
        int B = shapes[s][0], Ci = shapes[s][1], H = shapes[s][2], W = shapes[s][3];
        int Co = shapes[s][4], Ho = H - 2, Wo = W - 2;
        size_t nx = (size_t)B * Ci * H * W, nw = (size_t)Co * Ci * 9;
        size_t no = (size_t)B * Co * Ho * Wo;
        float *x = filled(nx, 0.1f), *w = filled(nw, 0.05f), *b = filled(Co, 0.1f);
        float *out = filled(no, 0), *d = filled(no, 0.2f), *dx = filled(nx, 0);
        float *dw = filled(nw, 0), *db = filled(Co, 0);
        EACH_REFUSAL(be->conv2d_forward(out, x, w, b, B, Ci, H, W, Co, 3, 0.01f, &err));
        EACH_REFUSAL(be->conv2d_backward(dx, dw, db, d, out, x, w, B, Ci, H, W, Co, 3, 0.01f,
                                         &err));
        free(x), free(w), free(b), free(out), free(d), free(dx), free(dw), free(db);
    }
}

BF_TEST(nonlocal_ops_return_nomem_when_scratch_is_refused)
{
    const bf_backend *be = bf_backend_cpu();
    omp_set_num_threads(2);
    int B = 3, C = 64, Ci = 32, N = 81;
    size_t nx = (size_t)B * C * N, nw = 3 * ((size_t)Ci * C + Ci) + (size_t)C * Ci + C;
    float *x = filled(nx, 0.1f), *w = filled(nw, 0.02f), *out = filled(nx, 0);
    float *ws = filled(bf_nonlocal_workspace(B, Ci, N), 0), *d = filled(nx, 0.2f);
    float *dx = filled(nx, 0), *dw = filled(nw, 0);
    EACH_REFUSAL(be->nonlocal_forward(out, ws, x, w, B, C, Ci, N, 0.01f, &err));
    EACH_REFUSAL(be->nonlocal_forward(out, NULL, x, w, B, C, Ci, N, 0.01f, &err)); /* inference */
    EACH_REFUSAL(be->nonlocal_backward(dx, dw, d, out, ws, x, w, B, C, Ci, N, 0.01f, &err));
    free(x), free(w), free(out), free(ws), free(d), free(dx), free(dw);
}
