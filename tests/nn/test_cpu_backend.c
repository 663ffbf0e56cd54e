/* tests/nn/test_cpu_backend.c — the CPU backend's fused and blocked kernels
 * against the reference layers (the specification), on shapes that exercise
 * every edge: channel counts not a multiple of 4, odd convolution lengths (a
 * dropped last position before pooling), strides 1-3, several threads. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/nn.h"
#include "test.h"

static float *random_floats(size_t n, uint64_t seed, float lo, float hi)
{
    float *v = malloc(sizeof(float) * (n ? n : 1));
    bf_rng r;
    bf_rng_init(&r, seed, 0);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)bf_rng_uniform_range(&r, lo, hi);
    return v;
}

/* max |a - b| / (1 + max |b|) */
static double max_rel_diff(const float *a, const float *b, size_t n)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return d / (1 + m);
}

/* Reference chain conv1d -> maxpool(2,2) -> LeakyReLU and its backward; returns the
 * worst relative difference of out, dinp, dw, db against the backend. */
static double compare_conv_pool_lrelu(int B, int C_in, int L_in, int C_out, int K, int stride,
                                      int threads)
{
    const bf_backend *be = bf_backend_cpu();
    const float slope = 0.1f;
    int Lc = (L_in - K) / stride + 1, P = Lc / 2;
    size_t n_in = (size_t)B * C_in * L_in, n_w = (size_t)C_out * C_in * K;
    size_t n_c = (size_t)B * C_out * Lc, n_p = (size_t)B * C_out * P;
    float *x = random_floats(n_in, 1, -1, 1), *w = random_floats(n_w, 2, -0.5f, 0.5f);
    float *b = random_floats((size_t)C_out, 3, -0.5f, 0.5f);
    float *dout = random_floats(n_p, 4, -1, 1);
    float *conv = calloc(n_c, sizeof(float)), *pool = calloc(n_p, sizeof(float));
    float *ref = calloc(n_p, sizeof(float)), *dpool = calloc(n_p, sizeof(float));
    float *dconv = calloc(n_c, sizeof(float));
    float *rdx = calloc(n_in, sizeof(float)), *rdw = calloc(n_w, sizeof(float));
    float *rdb = calloc((size_t)C_out, sizeof(float));
    float *out = calloc(n_p, sizeof(float)), *dx = calloc(n_in, sizeof(float));
    float *dw = calloc(n_w, sizeof(float)), *db = calloc((size_t)C_out, sizeof(float));
    uint8_t *arg = calloc(n_p, 1);

    bf_conv1d_forward(conv, x, w, b, B, C_in, L_in, C_out, K, stride);
    bf_maxpool1d_forward(pool, conv, B * C_out, Lc, 2, 2);
    bf_leaky_relu_forward(ref, pool, n_p, slope);
    bf_leaky_relu_backward(dpool, dout, pool, n_p, slope);
    bf_maxpool1d_backward(dconv, dpool, conv, B * C_out, Lc, 2, 2);
    bf_conv1d_backward(rdx, rdw, rdb, dconv, x, w, B, C_in, L_in, C_out, K, stride);

    omp_set_num_threads(threads);
    be->conv1d_pool_lrelu_forward(out, arg, x, w, b, B, C_in, L_in, C_out, K, stride, slope);
    be->conv1d_pool_lrelu_backward(dx, dw, db, dout, out, arg, x, w, B, C_in, L_in, C_out, K,
                                   stride, slope);
    double d = max_rel_diff(out, ref, n_p);
    d = fmax(d, max_rel_diff(dx, rdx, n_in));
    d = fmax(d, max_rel_diff(dw, rdw, n_w));
    d = fmax(d, max_rel_diff(db, rdb, (size_t)C_out));
    free(x), free(w), free(b), free(dout), free(conv), free(pool), free(ref), free(dpool);
    free(dconv), free(rdx), free(rdw), free(rdb), free(out), free(dx), free(dw), free(db);
    free(arg);
    return d;
}

BF_TEST(fused_conv_pool_lrelu_matches_reference_chain_on_edge_shapes)
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

BF_TEST(fused_linear_leaky_relu_matches_reference_layers)
{
    const bf_backend *be = bf_backend_cpu();
    int B = 7, I = 13, O = 5;
    float slope = 0.1f;
    float *x = random_floats((size_t)B * I, 5, -1, 1), *w = random_floats((size_t)O * I, 6, -1, 1);
    float *b = random_floats((size_t)O, 7, -1, 1), *g = random_floats((size_t)B * O, 8, -1, 1);
    float lin[35], ref[35], out[35], dl[35], dg[35];
    float rdx[91] = {0}, rdw[65] = {0}, rdb[5] = {0}, dx[91] = {0}, dw[65] = {0}, db[5] = {0};
    bf_linear_forward(lin, x, w, b, B, I, O);
    bf_leaky_relu_forward(ref, lin, 35, slope);
    memset(dl, 0, sizeof dl);
    bf_leaky_relu_backward(dl, g, lin, 35, slope);
    bf_linear_backward(rdx, rdw, rdb, dl, x, w, B, I, O);
    be->linear_forward(out, x, w, b, B, I, O, slope);
    memcpy(dg, g, sizeof dg);
    be->linear_backward(dx, dw, db, dg, out, x, w, B, I, O, slope);
    CHECK(max_rel_diff(out, ref, 35) < 1e-6);
    CHECK(max_rel_diff(dx, rdx, 91) < 1e-6);
    CHECK(max_rel_diff(dw, rdw, 65) < 1e-6);
    CHECK(max_rel_diff(db, rdb, 5) < 1e-6);
    free(x), free(w), free(b), free(g);
}

BF_TEST(minmax_scaling_maps_each_pattern_to_unit_range_and_flat_ones_to_zero)
{
    float x[3][4] = {{2, 4, 3, 6}, {-1, -1, -1, -1}, {5, -5, 0, 5}};
    bf_backend_cpu()->minmax_scale(&x[0][0], 3, 4);
    CHECK_NEAR(x[0][0], 0, 0);
    CHECK_NEAR(x[0][1], 0.5, 1e-7);
    CHECK_NEAR(x[0][3], 1, 0);
    for (int i = 0; i < 4; i++)
        CHECK_NEAR(x[1][i], 0, 0);
    CHECK_NEAR(x[2][1], 0, 0);
    CHECK_NEAR(x[2][2], 0.5, 1e-7);
}

BF_TEST(unknown_or_unavailable_backend_is_an_error_naming_it)
{
    const bf_backend *be = NULL;
    bf_error err = {0};
    CHECK(bf_backend_get("cpu", &be, &err) == BF_OK && be == bf_backend_cpu());
    CHECK(bf_backend_get("tpu", &be, &err) != BF_OK);
    CHECK(strstr(err.msg, "tpu") != NULL);
}
