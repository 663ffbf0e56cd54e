/* tests/nn/test_backend_cuda.c — the CUDA backend against the CPU backend: every op
 * forward and backward on the shapes of test_backends.c (edges included), then both
 * models' whole training step (forward, loss gradient, backward, clipping, Adam) from
 * the same parameters, within 1e-4 relative (max |a - b| / (1 + max |b|)).
 *
 * Compiled in every build. Without CUDA in the build, or without a device, each test
 * prints "  skipped: <reason>" and passes; the one test that always runs checks that the
 * reason is a BF_ERR_UNSUPPORTED naming the backend. NOT YET RUN ON A GPU (issue 13). */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/nn.h"
#include "compare.h"
#include "test.h"

#define TOL 1e-4

static const bf_backend *cuda_be;
static char cuda_reason[1100];
static int cuda_probed;

/* The CUDA backend, or NULL with cuda_reason; *hard = 1 when the failure is not "no
 * CUDA here" (a build with CUDA on a machine with a device must not fail to start). */
static const bf_backend *cuda(int *hard)
{
    static int hard_fail;
    if (!cuda_probed) {
        bf_error err = {0};
        cuda_probed = 1;
        if (bf_backend_get("cuda", &cuda_be, &err) != BF_OK) {
            cuda_be = NULL;
            hard_fail = err.code != BF_ERR_UNSUPPORTED;
            snprintf(cuda_reason, sizeof cuda_reason, "%s", err.msg);
        }
    }
    if (hard)
        *hard = hard_fail;
    return cuda_be;
}

/* At the top of each GPU test: skip (pass) without CUDA, fail on any other error. */
#define NEED_CUDA()                                                                      \
    do {                                                                                 \
        int hard_;                                                                       \
        if (!cuda(&hard_)) {                                                             \
            CHECK_MSG(!hard_, "cuda backend: %s", cuda_reason);                          \
            printf("  skipped: %s\n", cuda_reason);                                      \
            return;                                                                      \
        }                                                                                \
    } while (0)

static const bf_backend *cpu(void) { return bf_backend_cpu(); }

/* ---- device copies ---------------------------------------------------------------------- */

/* Up to 16 device buffers per comparison, freed together. */
typedef struct {
    void *p[16];
    int n, failed;
    bf_error err;
} dev_set;

static void *dev_bytes(dev_set *s, const void *host, size_t nbytes)
{
    void *d = NULL;
    if (s->failed || s->n == 16 || cuda_be->alloc(nbytes ? nbytes : 1, &d, &s->err) != BF_OK ||
        (host && cuda_be->upload(d, host, nbytes, &s->err) != BF_OK)) {
        if (d)
            cuda_be->free(d);
        if (!s->failed)
            fprintf(stderr, "  device copy: %s\n", s->err.msg);
        s->failed = 1;
        return NULL;
    }
    s->p[s->n++] = d;
    return d;
}

/* A device copy of n host floats (zeros when host is NULL). */
static float *dev(dev_set *s, const float *host, size_t n)
{
    return dev_bytes(s, host, sizeof(float) * n);
}

/* Downloads nbytes of d into host; 0 after any failure. */
static int back(dev_set *s, void *host, const void *d, size_t nbytes)
{
    if (s->failed || !d)
        return 0;
    if (cuda_be->download(host, d, nbytes, &s->err) != BF_OK) {
        fprintf(stderr, "  download: %s\n", s->err.msg);
        s->failed = 1;
        return 0;
    }
    return 1;
}

/* After the device forward: its output d (n floats) comes back into host_out, and the CPU
 * forward's output takes its place for the device backward. Both backwards then mask by
 * the same activations: a pre-activation within rounding of 0 could otherwise take the
 * other LeakyReLU branch on one backend and move a gradient by (1 - slope) |dout|. */
static int swap_out(dev_set *s, float *host_out, float *d, const float *cpu_out, size_t n)
{
    if (!back(s, host_out, d, sizeof(float) * n))
        return 0;
    if (cuda_be->upload(d, cpu_out, sizeof(float) * n, &s->err) != BF_OK) {
        fprintf(stderr, "  upload: %s\n", s->err.msg);
        s->failed = 1;
        return 0;
    }
    return 1;
}

static void dev_free(dev_set *s)
{
    for (int i = 0; i < s->n; i++)
        cuda_be->free(s->p[i]);
    s->n = 0;
}

/* ---- the availability contract ---------------------------------------------------------- */

BF_TEST(cuda_backend_is_available_or_unsupported_with_a_reason)
{
    int hard;
    const bf_backend *be = cuda(&hard);
    bf_error err = {0};
    const bf_backend *other = NULL;
    CHECK(bf_backend_get("cuda:x", &other, &err) == BF_ERR_INVALID);
    CHECK(strstr(err.msg, "cuda:x") != NULL);
    if (!be) {
        CHECK_MSG(!hard, "%s", cuda_reason);
        CHECK(strncmp(cuda_reason, "backend 'cuda': ", 16) == 0);
        CHECK(strstr(cuda_reason, "CUDA") != NULL);
        printf("  skipped: %s\n", cuda_reason);
        return;
    }
    CHECK(!strcmp(be->name, "cuda"));
    memset(&err, 0, sizeof err);
    CHECK(bf_backend_get("cuda:999", &other, &err) != BF_OK);
    CHECK(strstr(err.msg, "cuda:999") != NULL);
}

/* ---- conv1d -> pool -> LeakyReLU ------------------------------------------------------- */

static double compare_conv_pool_lrelu(int B, int C_in, int L_in, int C_out, int K, int stride)
{
    const float slope = 0.1f;
    int P = ((L_in - K) / stride + 1) / 2;
    size_t n_in = (size_t)B * C_in * L_in, n_w = (size_t)C_out * C_in * K;
    size_t n_p = (size_t)B * C_out * P;
    float *x = random_floats(n_in, 1, -1, 1), *w = random_floats(n_w, 2, -0.5f, 0.5f);
    float *b = random_floats((size_t)C_out, 3, -0.5f, 0.5f);
    float *dout = random_floats(n_p, 4, -1, 1);
    float *c_out = zeros(n_p), *c_dx = zeros(n_in), *c_dw = zeros(n_w), *c_db = zeros(C_out);
    float *g_out = zeros(n_p), *g_dx = zeros(n_in), *g_dw = zeros(n_w), *g_db = zeros(C_out);
    uint8_t *c_arg = calloc(n_p + 1, 1), *g_arg = calloc(n_p + 1, 1);
    bf_error err = {0};
    dev_set s = {0};
    float *dx_ = dev(&s, x, n_in), *dw_ = dev(&s, w, n_w), *db_ = dev(&s, b, C_out);
    float *ddout = dev(&s, dout, n_p), *dout_ = dev(&s, NULL, n_p);
    uint8_t *darg = dev_bytes(&s, NULL, n_p + 1);
    float *ddx = dev(&s, NULL, n_in), *ddw = dev(&s, NULL, n_w), *ddb = dev(&s, NULL, C_out);
    int ok = !s.failed &&
             cpu()->conv1d_pool_lrelu_forward(c_out, c_arg, x, w, b, B, C_in, L_in, C_out, K,
                                              stride, slope, &err) == BF_OK &&
             cpu()->conv1d_pool_lrelu_backward(c_dx, c_dw, c_db, dout, c_out, c_arg, x, w, B,
                                               C_in, L_in, C_out, K, stride, slope,
                                               &err) == BF_OK &&
             cuda_be->conv1d_pool_lrelu_forward(dout_, darg, dx_, dw_, db_, B, C_in, L_in, C_out,
                                                K, stride, slope, &err) == BF_OK &&
             swap_out(&s, g_out, dout_, c_out, n_p) &&
             cuda_be->conv1d_pool_lrelu_backward(ddx, ddw, ddb, ddout, dout_, darg, dx_, dw_, B,
                                                 C_in, L_in, C_out, K, stride, slope,
                                                 &err) == BF_OK;
    if (!ok && err.msg[0])
        fprintf(stderr, "  conv1d: %s\n", err.msg);
    ok = ok && back(&s, g_arg, darg, n_p) &&
         back(&s, g_dx, ddx, sizeof(float) * n_in) && back(&s, g_dw, ddw, sizeof(float) * n_w) &&
         back(&s, g_db, ddb, sizeof(float) * C_out);
    double d = ok ? 0 : INFINITY;
    d = fmax(d, max_rel_diff(g_out, c_out, n_p));
    d = fmax(d, max_rel_diff(g_dx, c_dx, n_in));
    d = fmax(d, max_rel_diff(g_dw, c_dw, n_w));
    d = fmax(d, max_rel_diff(g_db, c_db, (size_t)C_out));
    if (memcmp(g_arg, c_arg, n_p)) /* the same float sums as the reference: same winners */
        d = INFINITY;
    dev_free(&s);
    free(x), free(w), free(b), free(dout), free(c_out), free(c_dx), free(c_dw), free(c_db);
    free(g_out), free(g_dx), free(g_dw), free(g_db), free(c_arg), free(g_arg);
    return d;
}

BF_TEST(cuda_conv_pool_lrelu_matches_cpu_on_edge_shapes)
{
    NEED_CUDA();
    omp_set_num_threads(2);
    /* B, C_in, L_in, C_out, K, stride (test_backends.c's, and a batch of 64) */
    const int cases[][6] = {{3, 1, 64, 16, 3, 1},  {3, 16, 31, 32, 4, 2}, {2, 3, 50, 5, 3, 1},
                            {5, 2, 47, 6, 5, 3},   {1, 1, 9, 1, 2, 2},    {4, 16, 1402, 32, 4, 2},
                            {64, 1, 2810, 16, 3, 1},
                            {2100, 1, 12, 32, 3, 1}}; /* B C_out > 65535 (the grid's y limit) */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int *c = cases[i];
        double d = compare_conv_pool_lrelu(c[0], c[1], c[2], c[3], c[4], c[5]);
        CHECK_MSG(d < TOL, "case %zu (B %d C_in %d L %d C_out %d K %d s %d): rel diff %g", i,
                  c[0], c[1], c[2], c[3], c[4], c[5], d);
    }
}

/* ---- linear ---------------------------------------------------------------------------- */

static double compare_linear(int B, int I, int O, int ldo, float slope)
{
    size_t nx = (size_t)B * I, nw = (size_t)O * I, no = (size_t)B * ldo;
    float *x = random_floats(nx, 5, -1, 1), *w = random_floats(nw, 6, -1, 1);
    float *b = random_floats((size_t)O, 7, -1, 1), *g = random_floats(no, 8, -1, 1);
    float *c_out = zeros(no), *c_g = malloc(sizeof(float) * no), *c_dx = zeros(nx);
    float *c_dw = zeros(nw), *c_db = zeros(O);
    float *g_out = zeros(no), *g_g = zeros(no), *g_dx = zeros(nx), *g_dw = zeros(nw);
    float *g_db = zeros(O);
    memcpy(c_g, g, sizeof(float) * no);
    bf_error err = {0};
    dev_set s = {0};
    float *dx_ = dev(&s, x, nx), *dw_ = dev(&s, w, nw), *db_ = dev(&s, b, O);
    float *dg = dev(&s, g, no), *dout_ = dev(&s, NULL, no), *ddx = dev(&s, NULL, nx);
    float *ddw = dev(&s, NULL, nw), *ddb = dev(&s, NULL, O);
    int ok = !s.failed &&
             cpu()->linear_forward(c_out, ldo, x, w, b, B, I, O, slope, &err) == BF_OK &&
             cpu()->linear_backward(c_dx, c_dw, c_db, c_g, ldo, c_out, x, w, B, I, O, slope,
                                    &err) == BF_OK &&
             cuda_be->linear_forward(dout_, ldo, dx_, dw_, db_, B, I, O, slope, &err) == BF_OK &&
             swap_out(&s, g_out, dout_, c_out, no) &&
             cuda_be->linear_backward(ddx, ddw, ddb, dg, ldo, dout_, dx_, dw_, B, I, O, slope,
                                      &err) == BF_OK;
    if (!ok && err.msg[0])
        fprintf(stderr, "  linear: %s\n", err.msg);
    ok = ok && back(&s, g_g, dg, sizeof(float) * no) &&
         back(&s, g_dx, ddx, sizeof(float) * nx) && back(&s, g_dw, ddw, sizeof(float) * nw) &&
         back(&s, g_db, ddb, sizeof(float) * O);
    double d = ok ? 0 : INFINITY;
    for (int n = 0; n < B; n++) /* columns beyond n_out are not written */
        for (int k = O; k < ldo; k++)
            if (g_out[(size_t)n * ldo + k] != 0)
                d = INFINITY;
    d = fmax(d, max_rel_diff(g_out, c_out, no));
    d = fmax(d, max_rel_diff(g_g, c_g, no)); /* the masked dout, in place */
    d = fmax(d, max_rel_diff(g_dx, c_dx, nx));
    d = fmax(d, max_rel_diff(g_dw, c_dw, nw));
    d = fmax(d, max_rel_diff(g_db, c_db, O));
    dev_free(&s);
    free(x), free(w), free(b), free(g), free(c_out), free(c_g), free(c_dx), free(c_dw);
    free(c_db), free(g_out), free(g_g), free(g_dx), free(g_dw), free(g_db);
    return d;
}

BF_TEST(cuda_linear_with_row_stride_and_activation_matches_cpu)
{
    NEED_CUDA();
    /* B, n_in, n_out, ldo, slope x 100 (-100: none) */
    const int cases[][5] = {{7, 13, 5, 9, -100}, {7, 13, 5, 9, 10},   {512, 2816, 256, 256, 1},
                            {3, 256, 3, 7, -100}, {33, 16, 8, 8, 1}, {1, 1, 1, 1, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int *c = cases[i];
        double d = compare_linear(c[0], c[1], c[2], c[3], c[4] / 100.0f);
        CHECK_MSG(d < TOL, "case %zu: rel diff %g", i, d);
    }
}

/* ---- conv2d ---------------------------------------------------------------------------- */

static double compare_conv2d(int B, int C_in, int H, int W, int C_out, int K, float slope)
{
    int Ho = H - K + 1, Wo = W - K + 1;
    size_t n_in = (size_t)B * C_in * H * W, n_w = (size_t)C_out * C_in * K * K;
    size_t n_out = (size_t)B * C_out * Ho * Wo;
    float *x = random_floats(n_in, 11, -1, 1), *w = random_floats(n_w, 12, -0.5f, 0.5f);
    float *b = random_floats((size_t)C_out, 13, -0.5f, 0.5f);
    float *c_d = random_floats(n_out, 14, -1, 1);
    float *c_out = zeros(n_out), *c_dx = zeros(n_in), *c_dw = zeros(n_w), *c_db = zeros(C_out);
    float *g_out = zeros(n_out), *g_dx = zeros(n_in), *g_dw = zeros(n_w), *g_db = zeros(C_out);
    bf_error err = {0};
    dev_set s = {0};
    float *dx_ = dev(&s, x, n_in), *dw_ = dev(&s, w, n_w), *db_ = dev(&s, b, C_out);
    float *dd = dev(&s, c_d, n_out), *dout_ = dev(&s, NULL, n_out), *ddx = dev(&s, NULL, n_in);
    float *ddw = dev(&s, NULL, n_w), *ddb = dev(&s, NULL, C_out);
    int ok = !s.failed &&
             cpu()->conv2d_forward(c_out, x, w, b, B, C_in, H, W, C_out, K, slope, &err) == 0 &&
             cpu()->conv2d_backward(c_dx, c_dw, c_db, c_d, c_out, x, w, B, C_in, H, W, C_out, K,
                                    slope, &err) == 0 &&
             cuda_be->conv2d_forward(dout_, dx_, dw_, db_, B, C_in, H, W, C_out, K, slope,
                                     &err) == 0 &&
             swap_out(&s, g_out, dout_, c_out, n_out) &&
             cuda_be->conv2d_backward(ddx, ddw, ddb, dd, dout_, dx_, dw_, B, C_in, H, W, C_out, K,
                                      slope, &err) == 0;
    if (!ok && err.msg[0])
        fprintf(stderr, "  conv2d: %s\n", err.msg);
    ok = ok && back(&s, g_dx, ddx, sizeof(float) * n_in) && back(&s, g_dw, ddw, sizeof(float) * n_w) &&
         back(&s, g_db, ddb, sizeof(float) * C_out);
    double d = ok ? 0 : INFINITY;
    d = fmax(d, max_rel_diff(g_out, c_out, n_out));
    d = fmax(d, max_rel_diff(g_dx, c_dx, n_in));
    d = fmax(d, max_rel_diff(g_dw, c_dw, n_w));
    d = fmax(d, max_rel_diff(g_db, c_db, (size_t)C_out));
    dev_free(&s);
    free(x), free(w), free(b), free(c_d), free(c_out), free(c_dx), free(c_dw), free(c_db);
    free(g_out), free(g_dx), free(g_dw), free(g_db);
    return d;
}

BF_TEST(cuda_conv2d_matches_cpu_on_braggnn_and_edge_shapes)
{
    NEED_CUDA();
    omp_set_num_threads(2);
    /* B, C_in, H, W, C_out, K, slope x 100 (-100: none) */
    const int cases[][7] = {{3, 1, 11, 11, 64, 3, -100}, {3, 64, 9, 9, 32, 3, 1},
                            {2, 32, 7, 7, 8, 3, 1},       {2, 3, 6, 9, 5, 2, 10},
                            {1, 2, 3, 3, 1, 3, 0},        {1, 64, 9, 9, 32, 3, 1},
                            {5, 7, 9, 9, 11, 3, 1},       {3, 4, 12, 12, 6, 3, -100},
                            {2, 3, 5, 3, 9, 3, 10},       {256, 64, 9, 9, 32, 3, 1},
                            {1100, 1, 5, 5, 64, 3, -100}}; /* B C_out > 65535 */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int *c = cases[i];
        double d = compare_conv2d(c[0], c[1], c[2], c[3], c[4], c[5], c[6] / 100.0f);
        CHECK_MSG(d < TOL, "case %zu: rel diff %g", i, d);
    }
}

/* ---- non-local block ------------------------------------------------------------------- */

static size_t nonlocal_weights(int C, int Ci) { return 3 * ((size_t)Ci * C + Ci) + (size_t)C * Ci + C; }

/* The outputs and gradients against the CPU backend; the workspace (theta, phi, g, A, y
 * as the reference lays them out; the CPU backend's own is per sample, A transposed)
 * against the reference backend's. *what names the worst part. */
static double compare_nonlocal(int B, int C, int Ci, int N, float slope, const char **what)
{
    size_t nx = (size_t)B * C * N, nw = nonlocal_weights(C, Ci), nws = bf_nonlocal_workspace(B, Ci, N);
    float *x = random_floats(nx, 21, -1, 1), *w = random_floats(nw, 22, -0.4f, 0.4f);
    float *c_d = random_floats(nx, 23, -1, 1), *r_out = zeros(nx), *r_ws = zeros(nws);
    float *c_out = zeros(nx), *c_ws = zeros(nws), *c_dx = zeros(nx), *c_dw = zeros(nw);
    float *g_out = zeros(nx), *g_ws = zeros(nws), *g_dx = zeros(nx), *g_dw = zeros(nw);
    bf_error err = {0};
    dev_set s = {0};
    float *dx_ = dev(&s, x, nx), *dw_ = dev(&s, w, nw), *dd = dev(&s, c_d, nx);
    float *dout_ = dev(&s, NULL, nx), *dws = dev(&s, NULL, nws), *ddx = dev(&s, NULL, nx);
    float *ddw = dev(&s, NULL, nw);
    int ok = !s.failed &&
             cpu()->nonlocal_forward(c_out, c_ws, x, w, B, C, Ci, N, slope, &err) == BF_OK &&
             cpu()->nonlocal_backward(c_dx, c_dw, c_d, c_out, c_ws, x, w, B, C, Ci, N, slope,
                                      &err) == BF_OK &&
             bf_backend_reference()->nonlocal_forward(r_out, r_ws, x, w, B, C, Ci, N, slope,
                                                      &err) == BF_OK &&
             cuda_be->nonlocal_forward(dout_, dws, dx_, dw_, B, C, Ci, N, slope, &err) == BF_OK &&
             swap_out(&s, g_out, dout_, c_out, nx) &&
             cuda_be->nonlocal_backward(ddx, ddw, dd, dout_, dws, dx_, dw_, B, C, Ci, N, slope,
                                        &err) == BF_OK;
    if (!ok && err.msg[0])
        fprintf(stderr, "  nonlocal: %s\n", err.msg);
    ok = ok && back(&s, g_ws, dws, sizeof(float) * nws) && back(&s, g_dx, ddx, sizeof(float) * nx) &&
         back(&s, g_dw, ddw, sizeof(float) * nw);
    /* inference: no workspace passed, the same output */
    float *g_inf = zeros(nx);
    ok = ok && cuda_be->nonlocal_forward(dout_, NULL, dx_, dw_, B, C, Ci, N, slope, &err) == BF_OK &&
         back(&s, g_inf, dout_, sizeof(float) * nx);
    double d = ok ? 0 : INFINITY;
    const char *names[] = {"out", "theta", "phi", "g", "A", "y", "dx", "dw", "out without ws"};
    size_t nc = (size_t)B * Ci * N, nn = (size_t)B * N * N;
    double part[9] = {max_rel_diff(g_out, c_out, nx),
                      max_rel_diff(g_ws, r_ws, nc),
                      max_rel_diff(g_ws + nc, r_ws + nc, nc),
                      max_rel_diff(g_ws + 2 * nc, r_ws + 2 * nc, nc),
                      max_rel_diff(g_ws + 3 * nc, r_ws + 3 * nc, nn),
                      max_rel_diff(g_ws + 3 * nc + nn, r_ws + 3 * nc + nn, nc),
                      max_rel_diff(g_dx, c_dx, nx),
                      max_rel_diff(g_dw, c_dw, nw),
                      max_rel_diff(g_inf, g_out, nx)};
    *what = ok ? "all" : "a call failed";
    for (int i = 0; i < 9; i++)
        if (!(part[i] <= d)) {
            d = part[i];
            *what = names[i];
        }
    dev_free(&s);
    free(x), free(w), free(c_d), free(c_out), free(c_ws), free(c_dx), free(c_dw), free(r_out);
    free(r_ws);
    free(g_out), free(g_ws), free(g_dx), free(g_dw), free(g_inf);
    return d;
}

BF_TEST(cuda_nonlocal_block_matches_cpu)
{
    NEED_CUDA();
    omp_set_num_threads(2);
    /* B, C, Ci, N, slope x 100; the last: a training batch of BraggNN's block */
    const int cases[][5] = {{3, 64, 32, 81, 1}, {2, 8, 4, 25, -100}, {1, 5, 3, 7, 10},
                            {1, 6, 3, 32, 1},   {5, 9, 5, 17, 1},    {128, 64, 32, 81, 1},
                            {2, 4, 2, 300, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int *c = cases[i];
        const char *what = "";
        double d = compare_nonlocal(c[0], c[1], c[2], c[3], c[4] / 100.0f, &what);
        CHECK_MSG(d < TOL, "case %zu: rel diff %g (worst: %s)", i, d, what);
    }
}

/* ---- optimiser --------------------------------------------------------------------------- */

BF_TEST(cuda_grad_norm_clip_and_adam_match_the_host_functions)
{
    NEED_CUDA();
    const size_t n = 300001; /* not a multiple of any block */
    float *g = random_floats(n, 51, -1, 1), *w = random_floats(n, 52, -1, 1);
    float *hg = malloc(sizeof(float) * n), *hw = malloc(sizeof(float) * n);
    float *gg = zeros(n), *gw = zeros(n);
    memcpy(hg, g, sizeof(float) * n);
    memcpy(hw, w, sizeof(float) * n);
    bf_error err = {0};
    dev_set s = {0};
    float *dg = dev(&s, g, n), *dw = dev(&s, w, n);
    bf_adam ho, go;
    CHECK(!s.failed);
    CHECK(bf_adam_init(&ho, NULL, n, 1e-3f, &err) == BF_OK);
    CHECK(bf_adam_init(&go, cuda_be, n, 1e-3f, &err) == BF_OK);
    double hnorm = 0, gnorm = 0;
    int ok = 1;
    for (int step = 0; ok && step < 3; step++) {
        /* clipping at half the norm scales; at 10x it does not */
        double max_norm = step == 1 ? 1e4 : 100;
        hnorm = bf_clip_grad_norm(hg, n, max_norm);
        ok = cuda_be->grad_norm_clip(dg, n, max_norm, &gnorm, &err) == BF_OK &&
             cuda_be->adam_step(&go, dw, dg, &err) == BF_OK;
        bf_adam_step(&ho, hw, hg);
        ok = ok && fabs(gnorm - hnorm) <= 1e-9 * hnorm;
    }
    CHECK_MSG(ok, "norm %.17g vs host %.17g: %s", gnorm, hnorm, err.msg);
    CHECK(go.step == ho.step);
    CHECK(back(&s, gg, dg, sizeof(float) * n) && back(&s, gw, dw, sizeof(float) * n));
    CHECK_MSG(max_rel_diff(gg, hg, n) < 1e-6, "clipped gradients differ by %g",
              max_rel_diff(gg, hg, n));
    CHECK_MSG(max_rel_diff(gw, hw, n) < 1e-6, "Adam values differ by %g", max_rel_diff(gw, hw, n));
    bf_adam_free(&ho);
    bf_adam_free(&go);
    dev_free(&s);
    free(g), free(w), free(hg), free(hw), free(gg), free(gw);
}

/* ---- whole models: a training step ------------------------------------------------------ */

typedef struct {
    size_t n;             /* parameters */
    float *out;           /* outputs of the last forward (B, n_out) */
    float *grad[2];       /* the gradients each step's Adam used (after clipping) */
    float *value;         /* the values after both steps */
} train_result;

static void train_result_free(train_result *r)
{
    free(r->out), free(r->grad[0]), free(r->grad[1]), free(r->value);
    memset(r, 0, sizeof *r);
}

/* Two steps on backend be from seed 5: forward (training mode), MSE loss gradient on the
 * host against fixed targets, backward, clipping at clip (0: none), Adam. */
static int train_steps(const char *kind, const bf_model_shape *shape, const bf_backend *be, int B,
                       double clip, train_result *r)
{
    bf_model *m = NULL;
    bf_adam opt = {0};
    bf_error err = {0};
    float *x_be = NULL, *d_be = NULL;
    memset(r, 0, sizeof *r);
    int ok = bf_model_create(kind, shape, be, 5, &m, &err) == BF_OK &&
             bf_model_reserve(m, B, &err) == BF_OK &&
             bf_adam_init(&opt, be, m->params.total, 1e-3f, &err) == BF_OK;
    size_t nx = ok ? (size_t)B * m->input_len : 0, no = ok ? (size_t)B * m->n_out : 0;
    float *x = random_floats(nx, 41, 0, 1), *t = random_floats(no, 42, -1, 1);
    float *d = zeros(no);
    r->n = ok ? m->params.total : 0;
    r->out = zeros(no);
    r->value = zeros(r->n);
    r->grad[0] = zeros(r->n);
    r->grad[1] = zeros(r->n);
    ok = ok && be->alloc(sizeof(float) * nx, (void **)&x_be, &err) == BF_OK &&
         be->alloc(sizeof(float) * no, (void **)&d_be, &err) == BF_OK &&
         be->upload(x_be, x, sizeof(float) * nx, &err) == BF_OK;
    for (int step = 0; ok && step < 2; step++) {
        ok = m->kind->forward(m, x_be, B, &err) == BF_OK &&
             be->download(r->out, m->out, sizeof(float) * no, &err) == BF_OK;
        if (ok)
            bf_mse_loss(d, r->out, t, B, m->n_out, 1.0f);
        ok = ok && be->upload(d_be, d, sizeof(float) * no, &err) == BF_OK &&
             bf_model_zero_grad(m, &err) == BF_OK &&
             m->kind->backward(m, x_be, B, d_be, &err) == BF_OK &&
             (clip <= 0 || be->grad_norm_clip(m->g, r->n, clip, NULL, &err) == BF_OK) &&
             bf_model_params_download(m, 1, &err) == BF_OK;
        if (ok)
            memcpy(r->grad[step], m->params.grad, sizeof(float) * r->n);
        ok = ok && be->adam_step(&opt, m->w, m->g, &err) == BF_OK;
    }
    ok = ok && bf_model_params_download(m, 0, &err) == BF_OK;
    if (ok)
        memcpy(r->value, m->params.value, sizeof(float) * r->n);
    else
        fprintf(stderr, "  %s on %s: %s\n", kind, be->name, err.msg);
    if (m) {
        be->free(x_be);
        be->free(d_be);
    }
    bf_adam_free(&opt);
    free(x), free(t), free(d);
    bf_model_destroy(m);
    return ok;
}

static double max_abs(const float *v, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)v[i]));
    return m;
}

static void compare_training(int *bf_failed_, const char *kind, const bf_model_shape *shape,
                             int B, int n_out, double clip)
{
    train_result c, g;
    omp_set_num_threads(2);
    int ok_c = train_steps(kind, shape, cpu(), B, clip, &c);
    int ok_g = train_steps(kind, shape, cuda_be, B, clip, &g);
    if (!ok_c || !ok_g || c.n != g.n || c.n == 0) {
        train_result_free(&c);
        train_result_free(&g);
        CHECK(0 && "training steps failed");
    }
    double d_out = max_rel_diff(g.out, c.out, (size_t)B * n_out);
    double d_g0 = max_rel_diff(g.grad[0], c.grad[0], c.n);
    double d_g1 = max_rel_diff(g.grad[1], c.grad[1], c.n);
    /* Adam moves each value by about lr sign(gradient) at first, so a gradient within
     * rounding of zero may move the two backends' values apart by up to 2 lr: such
     * values (|g| < 1e-4 max |g| at either step, on the CPU) are counted, not compared. */
    double lim = TOL * (1 + max_abs(c.value, c.n));
    double g0 = 1e-4 * max_abs(c.grad[0], c.n), g1 = 1e-4 * max_abs(c.grad[1], c.n);
    size_t tiny = 0, bad = 0, first_bad = 0;
    for (size_t i = 0; i < c.n; i++) {
        if (!(fabs((double)g.value[i] - c.value[i]) <= lim)) {
            if (fabs(c.grad[0][i]) < g0 || fabs(c.grad[1][i]) < g1)
                tiny++;
            else if (!bad++)
                first_bad = i;
        }
    }
    printf("  %s B %d: outputs %.2g, gradients %.2g %.2g (rel); %zu of %zu values apart by a "
           "near-zero gradient\n", kind, B, d_out, d_g0, d_g1, tiny, c.n);
    int ok = d_out < TOL && d_g0 < TOL && d_g1 < TOL && bad == 0 && tiny <= c.n / 10000 + 2;
    if (!ok)
        fprintf(stderr, "  %s: outputs differ by %g, gradients by %g and %g; %zu values after "
                "Adam differ by more than %g (first: %zu, %.9g vs %.9g)\n", kind, d_out, d_g0,
                d_g1, bad, lim, first_bad, g.value[first_bad], c.value[first_bad]);
    train_result_free(&c);
    train_result_free(&g);
    CHECK(ok);
}

BF_TEST(cuda_structure_net_training_step_matches_cpu)
{
    NEED_CUDA();
    bf_model_shape small = {{64, 16, 3}};
    compare_training(bf_failed_, "structure_net", &small, 3, 7, 50);
    bf_model_shape full = {{2806, 256, 3}}; /* the default shape, clipping active */
    compare_training(bf_failed_, "structure_net", &full, 64, 7, 1.0);
}

BF_TEST(cuda_braggnn_training_step_matches_cpu)
{
    NEED_CUDA();
    bf_model_shape small = {{11, 16, 8, 4, 2}};
    compare_training(bf_failed_, "braggnn", &small, 3, 2, 0);
    compare_training(bf_failed_, "braggnn", &small, 256, 2, 0);
}
