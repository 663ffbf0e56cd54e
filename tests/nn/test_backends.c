/* tests/nn/test_backends.c — the CPU backend against the reference backend (the
 * specification): every op on shapes that exercise edges (channel counts not a
 * multiple of 4, odd lengths, strides 1-3, several threads), then whole models,
 * forward and backward, on both backends from the same parameters. The reference
 * backend's composite ops (the non-local block, conv2d + activation) are checked by
 * finite differences here too. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/nn.h"
#include "compare.h"
#include "gradcheck.h"
#include "test.h"

static const bf_backend *ref(void) { return bf_backend_reference(); }
static const bf_backend *cpu(void) { return bf_backend_cpu(); }

/* ---- conv1d -> pool -> LeakyReLU ---------------------------------------------------- */

static double compare_conv_pool_lrelu(int B, int C_in, int L_in, int C_out, int K, int stride,
                                      int threads)
{
    const float slope = 0.1f;
    int P = ((L_in - K) / stride + 1) / 2;
    size_t n_in = (size_t)B * C_in * L_in, n_w = (size_t)C_out * C_in * K;
    size_t n_p = (size_t)B * C_out * P;
    float *x = random_floats(n_in, 1, -1, 1), *w = random_floats(n_w, 2, -0.5f, 0.5f);
    float *b = random_floats((size_t)C_out, 3, -0.5f, 0.5f);
    float *dout = random_floats(n_p, 4, -1, 1);
    float *r_out = zeros(n_p), *r_dx = zeros(n_in), *r_dw = zeros(n_w), *r_db = zeros(C_out);
    float *c_out = zeros(n_p), *c_dx = zeros(n_in), *c_dw = zeros(n_w), *c_db = zeros(C_out);
    uint8_t *r_arg = calloc(n_p + 1, 1), *c_arg = calloc(n_p + 1, 1);
    bf_error err = {0};
    omp_set_num_threads(threads);
    int ok = ref()->conv1d_pool_lrelu_forward(r_out, r_arg, x, w, b, B, C_in, L_in, C_out, K,
                                              stride, slope, &err) == BF_OK &&
             ref()->conv1d_pool_lrelu_backward(r_dx, r_dw, r_db, dout, r_out, r_arg, x, w, B,
                                               C_in, L_in, C_out, K, stride, slope,
                                               &err) == BF_OK &&
             cpu()->conv1d_pool_lrelu_forward(c_out, c_arg, x, w, b, B, C_in, L_in, C_out, K,
                                              stride, slope, &err) == BF_OK &&
             cpu()->conv1d_pool_lrelu_backward(c_dx, c_dw, c_db, dout, c_out, c_arg, x, w, B,
                                               C_in, L_in, C_out, K, stride, slope,
                                               &err) == BF_OK;
    double d = ok ? 0 : INFINITY;
    d = fmax(d, max_rel_diff(c_out, r_out, n_p));
    d = fmax(d, max_rel_diff(c_dx, r_dx, n_in));
    d = fmax(d, max_rel_diff(c_dw, r_dw, n_w));
    d = fmax(d, max_rel_diff(c_db, r_db, (size_t)C_out));
    if (memcmp(r_arg, c_arg, n_p))
        d = INFINITY;
    free(x), free(w), free(b), free(dout), free(r_out), free(r_dx), free(r_dw), free(r_db);
    free(c_out), free(c_dx), free(c_dw), free(c_db), free(r_arg), free(c_arg);
    return d;
}

BF_TEST(fused_conv_pool_lrelu_matches_reference_backend_on_edge_shapes)
{
    /* B, C_in, L_in, C_out, K, stride, threads */
    const int cases[][7] = {
        {3, 1, 64, 16, 3, 1, 2},   /* structure_net conv1, small */
        {3, 16, 31, 32, 4, 2, 2},  /* structure_net conv2 on 31 points: odd conv length */
        {2, 3, 50, 5, 3, 1, 1},    /* 5 channels: not a multiple of 4 */
        {5, 2, 47, 6, 5, 3, 2},    /* stride 3 */
        {1, 1, 9, 1, 2, 2, 1},     /* tiny: one pooled output */
        {4, 16, 1402, 32, 4, 2, 2} /* conv2 at full length */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int *c = cases[i];
        double d = compare_conv_pool_lrelu(c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
        CHECK_MSG(d < 2e-5, "case %zu (B %d C_in %d L %d C_out %d K %d s %d): rel diff %g", i,
                  c[0], c[1], c[2], c[3], c[4], c[5], d);
    }
}

/* ---- linear with an output stride ------------------------------------------------------ */

BF_TEST(linear_with_row_stride_and_activation_matches_reference_backend)
{
    int B = 7, I = 13, O = 5, ldo = 9; /* heads side by side: columns 0..4 of 9 */
    float *x = random_floats((size_t)B * I, 5, -1, 1), *w = random_floats((size_t)O * I, 6, -1, 1);
    float *b = random_floats((size_t)O, 7, -1, 1), *g = random_floats((size_t)B * ldo, 8, -1, 1);
    for (float slope = -1; slope < 0.2f; slope += 1.1f) { /* none, then LeakyReLU(0.1) */
        float r_out[63] = {0}, c_out[63] = {0}, r_g[63], c_g[63];
        float r_dx[91] = {0}, r_dw[65] = {0}, r_db[5] = {0};
        float c_dx[91] = {0}, c_dw[65] = {0}, c_db[5] = {0};
        memcpy(r_g, g, sizeof r_g);
        memcpy(c_g, g, sizeof c_g);
        bf_error err = {0};
        CHECK(ref()->linear_forward(r_out, ldo, x, w, b, B, I, O, slope, &err) == BF_OK);
        CHECK(cpu()->linear_forward(c_out, ldo, x, w, b, B, I, O, slope, &err) == BF_OK);
        CHECK(ref()->linear_backward(r_dx, r_dw, r_db, r_g, ldo, r_out, x, w, B, I, O, slope,
                                     &err) == BF_OK);
        CHECK(cpu()->linear_backward(c_dx, c_dw, c_db, c_g, ldo, c_out, x, w, B, I, O, slope,
                                     &err) == BF_OK);
        CHECK(max_rel_diff(c_out, r_out, 63) < 1e-6);
        for (int n = 0; n < B; n++) /* columns beyond n_out are not written */
            for (int k = O; k < ldo; k++)
                CHECK(c_out[n * ldo + k] == 0 && r_out[n * ldo + k] == 0);
        CHECK(max_rel_diff(c_dx, r_dx, 91) < 1e-6);
        CHECK(max_rel_diff(c_dw, r_dw, 65) < 1e-6);
        CHECK(max_rel_diff(c_db, r_db, 5) < 1e-6);
    }
    free(x), free(w), free(b), free(g);
}

/* ---- conv2d ------------------------------------------------------------------------ */

static double compare_conv2d(int B, int C_in, int H, int W, int C_out, int K, float slope,
                             int threads, uint64_t w_seed, int backward)
{
    int Ho = H - K + 1, Wo = W - K + 1;
    size_t n_in = (size_t)B * C_in * H * W, n_w = (size_t)C_out * C_in * K * K;
    size_t n_out = (size_t)B * C_out * Ho * Wo;
    float *x = random_floats(n_in, 11, -1, 1), *w = random_floats(n_w, w_seed, -0.5f, 0.5f);
    float *b = random_floats((size_t)C_out, 13, -0.5f, 0.5f);
    float *r_d = random_floats(n_out, 14, -1, 1), *c_d = random_floats(n_out, 14, -1, 1);
    float *r_out = zeros(n_out), *r_dx = zeros(n_in), *r_dw = zeros(n_w), *r_db = zeros(C_out);
    float *c_out = zeros(n_out), *c_dx = zeros(n_in), *c_dw = zeros(n_w), *c_db = zeros(C_out);
    bf_error err = {0};
    omp_set_num_threads(threads);
    int ok = ref()->conv2d_forward(r_out, x, w, b, B, C_in, H, W, C_out, K, slope, &err) == 0 &&
             cpu()->conv2d_forward(c_out, x, w, b, B, C_in, H, W, C_out, K, slope, &err) == 0 &&
             (!backward ||
              (ref()->conv2d_backward(r_dx, r_dw, r_db, r_d, r_out, x, w, B, C_in, H, W, C_out, K,
                                    slope, &err) == 0 &&
              cpu()->conv2d_backward(c_dx, c_dw, c_db, c_d, c_out, x, w, B, C_in, H, W, C_out, K,
                                     slope, &err) == 0));
    double d = ok ? 0 : INFINITY;
    d = fmax(d, max_rel_diff(c_out, r_out, n_out));
    d = fmax(d, max_rel_diff(c_dx, r_dx, n_in));
    d = fmax(d, max_rel_diff(c_dw, r_dw, n_w));
    d = fmax(d, max_rel_diff(c_db, r_db, (size_t)C_out));
    free(x), free(w), free(b), free(r_d), free(c_d), free(r_out), free(r_dx), free(r_dw);
    free(r_db), free(c_out), free(c_dx), free(c_dw), free(c_db);
    return d;
}

BF_TEST(conv2d_matches_reference_backend_on_braggnn_and_edge_shapes)
{
    /* B, C_in, H, W, C_out, K, slope x 100 (-100: none), threads */
    const int cases[][8] = {
        {3, 1, 11, 11, 64, 3, -100, 2}, /* BraggNN conv1 */
        {3, 64, 9, 9, 32, 3, 1, 2},     /* conv2 + LeakyReLU(0.01) */
        {2, 32, 7, 7, 8, 3, 1, 1},      /* conv3 (few outputs: direct on the wide grid) */
        {2, 3, 6, 9, 5, 2, 10, 2},      /* not square, even kernel, 5 channels */
        {1, 2, 3, 3, 1, 3, 0, 1},       /* one output position, ReLU */
        /* the wide grid (conv2's shape with channels not in vectors of 16): batch 1 (its
         * only sample read through the copy), 11 output channels (not a multiple of 8
         * rows; these last three by direct multiply-adds, <= 16 channels), odd batch on
         * 2 threads, rows longer than a vector (Wo 10), a 1-wide output */
        {1, 24, 9, 9, 32, 3, 1, 2},
        {5, 7, 9, 9, 11, 3, 1, 2},
        {3, 4, 12, 12, 6, 3, -100, 2},
        {2, 3, 5, 3, 9, 3, 10, 2},
        /* few taps (conv1's direct path): outputs a multiple of a vector (16), 13
         * channels (a partial block of 8), 63 outputs, even kernel */
        {4, 1, 6, 6, 11, 3, 10, 2},
        {3, 1, 8, 10, 13, 2, 1, 2},
        /* Winograd F(4x4, 3x3) (channels in vectors of 16; conv2 above too): batch 1, an
         * odd batch (the last group of one sample), odd and even output sizes, none */
        {1, 64, 9, 9, 32, 3, 1, 1},
        {9, 64, 9, 9, 32, 3, 1, 2},
        {8, 16, 6, 7, 16, 3, -100, 1},
        {10, 32, 10, 5, 48, 3, 10, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int *c = cases[i];
        double d = compare_conv2d(c[0], c[1], c[2], c[3], c[4], c[5], c[6] / 100.0f, c[7], 12, 1);
        CHECK_MSG(d < 2e-5, "case %zu: rel diff %g", i, d);
    }
}

/* The CPU backend keeps Winograd's transformed filters between calls (cpu_winograd.c),
 * and the wide grid's reordered ones (cpu_kernels2d.c): new weights of the same shape,
 * and back, must be transformed again, forward after forward and with backward (its own,
 * flipped filters) between. */
BF_TEST(conv_filters_kept_between_calls_follow_the_weights)
{
    const uint64_t seeds[] = {12, 21, 21, 12, 12, 21};
    for (int i = 0; i < 6; i++) {
        double d = compare_conv2d(2, 64, 9, 9, 32, 3, 0.01f, 1, seeds[i], i >= 4);
        CHECK_MSG(d < 2e-5, "Winograd, call %d (weights seed %llu): rel diff %g", i,
                  (unsigned long long)seeds[i], d);
        d = compare_conv2d(2, 32, 7, 7, 8, 3, 0.01f, 1, seeds[i], i >= 4);
        CHECK_MSG(d < 2e-5, "wide grid, call %d (weights seed %llu): rel diff %g", i,
                  (unsigned long long)seeds[i], d);
    }
}

/* ---- non-local block ------------------------------------------------------------------- */

static size_t nonlocal_weights(int C, int Ci) { return 3 * ((size_t)Ci * C + Ci) + (size_t)C * Ci + C; }

static double compare_nonlocal(int B, int C, int Ci, int N, float slope, int threads,
                               uint64_t w_seed)
{
    size_t nx = (size_t)B * C * N, nw = nonlocal_weights(C, Ci), nws = bf_nonlocal_workspace(B, Ci, N);
    float *x = random_floats(nx, 21, -1, 1), *w = random_floats(nw, w_seed, -0.4f, 0.4f);
    float *r_d = random_floats(nx, 23, -1, 1), *c_d = random_floats(nx, 23, -1, 1);
    float *r_out = zeros(nx), *c_out = zeros(nx), *r_ws = zeros(nws), *c_ws = zeros(nws);
    float *r_dx = zeros(nx), *c_dx = zeros(nx), *r_dw = zeros(nw), *c_dw = zeros(nw);
    bf_error err = {0};
    omp_set_num_threads(threads);
    int ok = ref()->nonlocal_forward(r_out, r_ws, x, w, B, C, Ci, N, slope, &err) == BF_OK &&
             cpu()->nonlocal_forward(c_out, c_ws, x, w, B, C, Ci, N, slope, &err) == BF_OK &&
             ref()->nonlocal_backward(r_dx, r_dw, r_d, r_out, r_ws, x, w, B, C, Ci, N, slope,
                                      &err) == BF_OK &&
             cpu()->nonlocal_backward(c_dx, c_dw, c_d, c_out, c_ws, x, w, B, C, Ci, N, slope,
                                      &err) == BF_OK;
    /* inference: no workspace, the same outputs on both backends */
    float *r_inf = zeros(nx), *c_inf = zeros(nx);
    ok = ok && ref()->nonlocal_forward(r_inf, NULL, x, w, B, C, Ci, N, slope, &err) == BF_OK &&
         cpu()->nonlocal_forward(c_inf, NULL, x, w, B, C, Ci, N, slope, &err) == BF_OK &&
         !memcmp(r_inf, r_out, sizeof(float) * nx) && !memcmp(c_inf, c_out, sizeof(float) * nx);
    double d = ok ? 0 : INFINITY;
    d = fmax(d, max_rel_diff(c_out, r_out, nx));
    d = fmax(d, max_rel_diff(c_dx, r_dx, nx));
    d = fmax(d, max_rel_diff(c_dw, r_dw, nw));
    free(r_inf), free(c_inf);
    free(x), free(w), free(r_d), free(c_d), free(r_out), free(c_out), free(r_ws), free(c_ws);
    free(r_dx), free(c_dx), free(r_dw), free(c_dw);
    return d;
}

BF_TEST(nonlocal_block_matches_reference_backend)
{
    /* B, C, Ci, N, slope x 100, threads */
    /* N = 81: five 16-column blocks of the softmax and one column; 32: blocks only;
     * 17 and 7: one block and one column, and columns only */
    const int cases[][6] = {{3, 64, 32, 81, 1, 2}, {2, 8, 4, 25, -100, 1}, {1, 5, 3, 7, 10, 2},
                            {1, 6, 3, 32, 1, 2},   {5, 9, 5, 17, 1, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int *c = cases[i];
        double d = compare_nonlocal(c[0], c[1], c[2], c[3], c[4] / 100.0f, c[5], 22);
        CHECK_MSG(d < 2e-5, "case %zu: rel diff %g", i, d);
    }
}

/* The forward keeps its stacked weights between calls (cpu_kernels2d.c): new weights of
 * the same shape, and back, must be stacked again. */
BF_TEST(nonlocal_weights_kept_between_calls_follow_the_weights)
{
    const uint64_t seeds[] = {22, 31, 31, 22};
    for (int i = 0; i < 4; i++) {
        double d = compare_nonlocal(2, 64, 32, 81, 0.01f, 1, seeds[i]);
        CHECK_MSG(d < 2e-5, "call %d (weights seed %llu): rel diff %g", i,
                  (unsigned long long)seeds[i], d);
    }
}

/* loss = sum(out * gout) of the reference op, for finite differences */
typedef struct {
    int B, C, Ci, N;
    float slope;
    float *x, *w, *gout, *out, *ws;
} nonlocal_fd;

static double nonlocal_loss(void *ctx)
{
    nonlocal_fd *f = ctx;
    bf_error err = {0};
    ref()->nonlocal_forward(f->out, f->ws, f->x, f->w, f->B, f->C, f->Ci, f->N, f->slope, &err);
    double s = 0;
    for (size_t i = 0; i < (size_t)f->B * f->C * f->N; i++)
        s += (double)f->out[i] * f->gout[i];
    return s;
}

BF_TEST(nonlocal_block_gradients_match_finite_differences)
{
    nonlocal_fd f = {.B = 2, .C = 4, .Ci = 2, .N = 6, .slope = 0.1f};
    size_t nx = (size_t)f.B * f.C * f.N, nw = nonlocal_weights(f.C, f.Ci);
    f.x = random_floats(nx, 31, -1, 1);
    f.w = random_floats(nw, 32, -0.8f, 0.8f);
    f.gout = random_floats(nx, 33, -1, 1);
    f.out = zeros(nx);
    f.ws = zeros(bf_nonlocal_workspace(f.B, f.Ci, f.N));
    float *d = zeros(nx), *dx = zeros(nx), *dw = zeros(nw);
    bf_error err = {0};
    nonlocal_loss(&f);
    memcpy(d, f.gout, sizeof(float) * nx);
    CHECK(ref()->nonlocal_backward(dx, dw, d, f.out, f.ws, f.x, f.w, f.B, f.C, f.Ci, f.N,
                                   f.slope, &err) == BF_OK);
    fd_var vars[] = {{"x", f.x, nx, dx}, {"w", f.w, nw, dw}};
    CHECK(fd_check("nonlocal", nonlocal_loss, &f, vars, 2, 1e-3f, 2e-2) == 0);
    free(f.x), free(f.w), free(f.gout), free(f.out), free(f.ws), free(d), free(dx), free(dw);
}

/* ---- whole models on both backends ------------------------------------------------------ */

/* Forward (training mode) and backward of one batch on backend be; host out and grads. */
static int run_model(const char *kind, const bf_model_shape *shape, const bf_backend *be, int B,
                     float *out, float **grads, size_t *n_params)
{
    bf_model *m = NULL;
    bf_error err = {0};
    float *x_be = NULL, *d_be = NULL;
    int ok = bf_model_create(kind, shape, be, 5, &m, &err) == BF_OK &&
             bf_model_reserve(m, B, &err) == BF_OK;
    size_t nx = ok ? (size_t)B * m->input_len : 0, no = ok ? (size_t)B * m->n_out : 0;
    float *x = random_floats(nx, 41, 0, 1), *d = random_floats(no, 42, -1, 1);
    ok = ok && be->alloc(sizeof(float) * nx, (void **)&x_be, &err) == BF_OK &&
         be->alloc(sizeof(float) * no, (void **)&d_be, &err) == BF_OK &&
         be->upload(x_be, x, sizeof(float) * nx, &err) == BF_OK &&
         be->upload(d_be, d, sizeof(float) * no, &err) == BF_OK &&
         m->kind->forward(m, x_be, B, &err) == BF_OK &&
         be->download(out, m->out, sizeof(float) * no, &err) == BF_OK &&
         bf_model_zero_grad(m, &err) == BF_OK &&
         m->kind->backward(m, x_be, B, d_be, &err) == BF_OK &&
         bf_model_params_download(m, 1, &err) == BF_OK;
    if (!ok)
        fprintf(stderr, "  %s on %s: %s\n", kind, be->name, err.msg);
    if (ok) {
        *n_params = m->params.total;
        *grads = malloc(sizeof(float) * m->params.total);
        memcpy(*grads, m->params.grad, sizeof(float) * m->params.total);
    }
    if (m) {
        be->free(x_be);
        be->free(d_be);
    }
    free(x), free(d);
    bf_model_destroy(m);
    return ok;
}

static void compare_models(int *bf_failed_, const char *kind, const bf_model_shape *shape, int B,
                           int n_out, double tol)
{
    float *r_out = zeros((size_t)B * n_out), *c_out = zeros((size_t)B * n_out);
    float *r_g = NULL, *c_g = NULL;
    size_t nr = 0, nc = 0;
    omp_set_num_threads(2);
    CHECK(run_model(kind, shape, ref(), B, r_out, &r_g, &nr));
    CHECK(run_model(kind, shape, cpu(), B, c_out, &c_g, &nc));
    CHECK(nr == nc && nr > 0);
    double d_out = max_rel_diff(c_out, r_out, (size_t)B * n_out), d_g = max_rel_diff(c_g, r_g, nr);
    CHECK_MSG(d_out < tol && d_g < tol, "%s: outputs differ by %g, gradients by %g", kind, d_out,
              d_g);
    free(r_out), free(c_out), free(r_g), free(c_g);
}

BF_TEST(structure_net_forward_and_backward_agree_on_cpu_and_reference_backends)
{
    bf_model_shape shape = {{64, 16, 3}};
    compare_models(bf_failed_, "structure_net", &shape, 3, 7, 2e-5);
}

BF_TEST(braggnn_forward_and_backward_agree_on_cpu_and_reference_backends)
{
    bf_model_shape shape = {{11, 16, 8, 4, 2}};
    compare_models(bf_failed_, "braggnn", &shape, 3, 2, 2e-5);
}

/* bf_model_predict on the CPU backend with two threads runs 16-sample chunks as tasks
 * taken one at a time by whichever thread is free (cpu_run_tasks); with one thread it
 * runs them in order on the model itself. A chunk's result must not depend on which
 * worker model computed it: the same bits either way, whatever the assignment. */
BF_TEST(predicting_in_parallel_chunks_gives_the_bits_of_one_chunk_at_a_time)
{
    bf_model_shape shape = {{11, 16, 8, 4, 2}};
    bf_model *m = NULL;
    bf_error err = {0};
    CHECK(bf_model_create("braggnn", &shape, cpu(), 5, &m, &err) == BF_OK);
    const long n = 301;   /* 18 chunks of 16 and one of 13, over two batches */
    float *x = random_floats((size_t)n * m->input_len, 8, 0, 1);
    float *one = zeros((size_t)n * m->n_out), *two = zeros((size_t)n * m->n_out);
    cpu()->set_threads(1);
    CHECK(bf_model_predict(m, x, n, 256, one, &err) == BF_OK);
    CHECK(m->n_workers == 0);
    cpu()->set_threads(2);
    for (int rep = 0; rep < 3; rep++) {   /* the assignment varies from run to run */
        CHECK(bf_model_predict(m, x, n, 256, two, &err) == BF_OK);
        CHECK_MSG(m->n_workers == 2, "%d worker models: not the parallel path", m->n_workers);
        CHECK(memcmp(one, two, sizeof(float) * (size_t)n * m->n_out) == 0);
    }
    free(x), free(one), free(two);
    bf_model_destroy(m);
}

BF_TEST(unknown_or_unavailable_backend_is_an_error_naming_it)
{
    const bf_backend *be = NULL;
    bf_error err = {0};
    CHECK(bf_backend_get("cpu", &be, &err) == BF_OK && be == bf_backend_cpu());
    CHECK(bf_backend_get("reference", &be, &err) == BF_OK && be == bf_backend_reference());
    CHECK(bf_backend_get("tpu", &be, &err) != BF_OK);
    CHECK(strstr(err.msg, "tpu") != NULL);
}
