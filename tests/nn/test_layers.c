/* tests/nn/test_layers.c — the reference layers against finite differences and
 * hand-computed facts.
 *
 * Gradient checks: loss = sum(dout * out) with a random dout, analytic gradients
 * from backward, central differences in double on a float forward. The step is the
 * float difference actually taken ((x+e) - (x-e) after rounding), and the tolerance
 * is relative (1e-2) plus a small floor scaled by the tensor's largest gradient,
 * because float rounding of the forward pass gives an absolute error of order
 * 1e-7 |loss| / e. */
#include "braggflow/nn.h"
#include "test.h"
#include "gradcheck.h"

#include <stdint.h>

/* ---- helpers ------------------------------------------------------------------------ */

static void fill_uniform(bf_rng *r, float *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)bf_rng_uniform_range(r, lo, hi);
}

/* Values at least 0.1 from 0 (LeakyReLU's kink). */
static void fill_away_from_zero(bf_rng *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double v = bf_rng_uniform_range(r, 0.1, 1.0);
        x[i] = (float)(bf_rng_uniform(r) < 0.5 ? -v : v);
    }
}

/* A random permutation of n values spaced 0.05 apart: no ties, and no step of 0.01
 * can change which value is a window's maximum. */
static void fill_distinct(bf_rng *r, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(((double)i - 0.5 * (double)n) * 0.05);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(bf_rng_uniform(r) * (double)i);
        float t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
}

static float *zalloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static float *copy_of(const float *x, size_t n)
{
    float *y = zalloc(n);
    memcpy(y, x, n * sizeof *y);
    return y;
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* Conv, Linear and bmm are linear in each variable, so their central differences are exact
 * but for float rounding of the forward pass: they get a tighter tolerance than the
 * nonlinear layers' 1e-2 (which also absorbs the O(eps^2) truncation error). */
#define LINEAR_REL 2e-3

/* b == 2 a to float rounding: backward called twice accumulates. The second call adds
 * its terms one by one onto the first's sum, so the rounding is relative to the
 * tensor's scale, not to each (possibly cancelling) element. */
static int doubled(const float *a, const float *b, size_t n)
{
    double amax = 0.0;
    for (size_t i = 0; i < n; i++)
        amax = fmax(amax, fabs(a[i]));
    for (size_t i = 0; i < n; i++)
        if (!(fabs(b[i] - 2.0 * a[i]) <= 1e-6 * (fabs(2.0 * a[i]) + amax)))
            return 0;
    return 1;
}

static int same(const float *a, const float *b, size_t n, double rel)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs(a[i] - b[i]) <= rel * fmax(fabs(a[i]), fabs(b[i])) + 1e-30))
            return 0;
    return 1;
}

/* ---- Conv1d ------------------------------------------------------------------------- */

typedef struct {
    int B, C_in, L_in, C_out, K, stride;
    float *inp, *w, *b, *out, *dout;
    size_t n_out;
} conv1d_ctx;

static double conv1d_loss(void *p)
{
    conv1d_ctx *c = p;
    bf_conv1d_forward(c->out, c->inp, c->w, c->b, c->B, c->C_in, c->L_in, c->C_out, c->K,
                      c->stride);
    return dot(c->out, c->dout, c->n_out);
}

/* Finite differences, accumulation and NULL gradients for one Conv1d shape. */
static int conv1d_check(int B, int C_in, int L_in, int C_out, int K, int stride, uint64_t seed)
{
    bf_rng r;
    bf_rng_init(&r, seed, 0);
    int L_out = (L_in - K) / stride + 1;
    size_t n_in = (size_t)B * C_in * L_in, n_w = (size_t)C_out * C_in * K;
    conv1d_ctx c = {B, C_in, L_in, C_out, K, stride, zalloc(n_in), zalloc(n_w), zalloc(C_out),
                    NULL, NULL, (size_t)B * C_out * L_out};
    c.out = zalloc(c.n_out);
    c.dout = zalloc(c.n_out);
    fill_uniform(&r, c.inp, n_in, -1, 1);
    fill_uniform(&r, c.w, n_w, -1, 1);
    fill_uniform(&r, c.b, C_out, -1, 1);
    fill_uniform(&r, c.dout, c.n_out, -1, 1);
    float *dinp = zalloc(n_in), *dw = zalloc(n_w), *db = zalloc(C_out);
    bf_conv1d_backward(dinp, dw, db, c.dout, c.inp, c.w, B, C_in, L_in, C_out, K, stride);
    fd_var vars[] = {{"inp", c.inp, n_in, dinp}, {"w", c.w, n_w, dw}, {"b", c.b, C_out, db}};
    char what[96];
    snprintf(what, sizeof what, "conv1d B%d Cin%d L%d Cout%d K%d s%d", B, C_in, L_in, C_out, K,
             stride);
    int bad = fd_check(what, conv1d_loss, &c, vars, 3, 1e-2f, LINEAR_REL);

    /* Twice accumulates; each gradient alone (others NULL) equals the full call's. */
    float *d2i = copy_of(dinp, n_in), *d2w = copy_of(dw, n_w), *d2b = copy_of(db, C_out);
    bf_conv1d_backward(d2i, d2w, d2b, c.dout, c.inp, c.w, B, C_in, L_in, C_out, K, stride);
    if (!doubled(dinp, d2i, n_in) || !doubled(dw, d2w, n_w) || !doubled(db, d2b, C_out)) {
        fprintf(stderr, "  %s: backward does not accumulate\n", what);
        bad++;
    }
    float *oi = zalloc(n_in), *ow = zalloc(n_w), *ob = zalloc(C_out);
    bf_conv1d_backward(oi, NULL, NULL, c.dout, c.inp, c.w, B, C_in, L_in, C_out, K, stride);
    bf_conv1d_backward(NULL, ow, NULL, c.dout, c.inp, c.w, B, C_in, L_in, C_out, K, stride);
    bf_conv1d_backward(NULL, NULL, ob, c.dout, c.inp, c.w, B, C_in, L_in, C_out, K, stride);
    if (!same(oi, dinp, n_in, 0) || !same(ow, dw, n_w, 0) || !same(ob, db, C_out, 0)) {
        fprintf(stderr, "  %s: NULL gradients change the others\n", what);
        bad++;
    }
    free(oi), free(ow), free(ob), free(d2i), free(d2w), free(d2b);
    free(dinp), free(dw), free(db);
    free(c.inp), free(c.w), free(c.b), free(c.out), free(c.dout);
    return bad;
}

BF_TEST(test_conv1d_k3_stride1_gradients_match_finite_differences)
{
    CHECK(conv1d_check(2, 3, 11, 4, 3, 1, 1) == 0);
}

BF_TEST(test_conv1d_k4_stride2_gradients_match_finite_differences)
{
    CHECK(conv1d_check(2, 3, 12, 4, 4, 2, 2) == 0);
    /* (L_in - K) odd: the last input sample is never read and gets no gradient */
    CHECK(conv1d_check(3, 2, 13, 3, 4, 2, 3) == 0);
}

BF_TEST(test_conv1d_random_shapes_gradients_match_finite_differences)
{
    bf_rng r;
    bf_rng_init(&r, 77, 0);
    for (int trial = 0; trial < 8; trial++) {
        int K = 1 + (int)(bf_rng_uniform(&r) * 5);
        int stride = 1 + (int)(bf_rng_uniform(&r) * 3);
        int L_in = K + (int)(bf_rng_uniform(&r) * 12);
        int B = 1 + (int)(bf_rng_uniform(&r) * 3);
        int C_in = 1 + (int)(bf_rng_uniform(&r) * 3);
        int C_out = 1 + (int)(bf_rng_uniform(&r) * 4);
        CHECK_MSG(conv1d_check(B, C_in, L_in, C_out, K, stride, 100 + trial) == 0, "trial %d",
                  trial);
    }
}

BF_TEST(test_conv1d_matches_hand_computed_example)
{
    /* One channel: out[l] = x[l] + 2 x[l+1] + 3 x[l+2] + 0.5 */
    const float x[5] = {1, 2, 3, 4, 5}, w[3] = {1, 2, 3}, b[1] = {0.5f};
    float out[3];
    bf_conv1d_forward(out, x, w, b, 1, 1, 5, 1, 3, 1);
    CHECK(out[0] == 14.5f && out[1] == 20.5f && out[2] == 26.5f);
    bf_conv1d_forward(out, x, w, b, 1, 1, 5, 1, 3, 2); /* stride 2: positions 0 and 2 */
    CHECK(out[0] == 14.5f && out[1] == 26.5f);

    /* Two input channels summed, K 2, stride 2, no bias:
     * out[0] = (1 - 2) + (2*0 + 0.5*1) = -0.5, out[1] = (3 - 4) + (0 + 0.5*-1) = -1.5 */
    const float x2[8] = {1, 2, 3, 4, 0, 1, 0, -1}, w2[4] = {1, -1, 2, 0.5f};
    bf_conv1d_forward(out, x2, w2, NULL, 1, 2, 4, 1, 2, 2);
    CHECK(out[0] == -0.5f && out[1] == -1.5f);
    /* dout = [1, 1]: dw[ci][k] = sum_l x[ci][2l + k], db = 2, dinp = w tiled */
    const float g[2] = {1, 1};
    float dinp[8] = {0}, dw[4] = {0}, db[1] = {0};
    bf_conv1d_backward(dinp, dw, db, g, x2, w2, 1, 2, 4, 1, 2, 2);
    CHECK(dw[0] == 4 && dw[1] == 6 && dw[2] == 0 && dw[3] == 0 && db[0] == 2);
    const float want[8] = {1, -1, 1, -1, 2, 0.5f, 2, 0.5f};
    for (int i = 0; i < 8; i++)
        CHECK(dinp[i] == want[i]);
}

/* ---- MaxPool1d ---------------------------------------------------------------------- */

typedef struct {
    int N, L, K, stride;
    float *inp, *out, *dout;
    size_t n_out;
} pool1d_ctx;

static double pool1d_loss(void *p)
{
    pool1d_ctx *c = p;
    bf_maxpool1d_forward(c->out, c->inp, c->N, c->L, c->K, c->stride);
    return dot(c->out, c->dout, c->n_out);
}

static int maxpool1d_check(int N, int L, int K, int stride, uint64_t seed)
{
    bf_rng r;
    bf_rng_init(&r, seed, 0);
    int L_out = (L - K) / stride + 1;
    size_t n_in = (size_t)N * L;
    pool1d_ctx c = {N, L, K, stride, zalloc(n_in), NULL, NULL, (size_t)N * L_out};
    c.out = zalloc(c.n_out);
    c.dout = zalloc(c.n_out);
    fill_distinct(&r, c.inp, n_in);
    fill_uniform(&r, c.dout, c.n_out, -1, 1);
    float *dinp = zalloc(n_in);
    bf_maxpool1d_backward(dinp, c.dout, c.inp, N, L, K, stride);
    fd_var vars[] = {{"inp", c.inp, n_in, dinp}};
    int bad = fd_check("maxpool1d", pool1d_loss, &c, vars, 1, 1e-2f, 1e-2);
    float *d2 = copy_of(dinp, n_in);
    bf_maxpool1d_backward(d2, c.dout, c.inp, N, L, K, stride);
    bf_maxpool1d_backward(NULL, c.dout, c.inp, N, L, K, stride);
    bad += !doubled(dinp, d2, n_in);
    free(d2), free(dinp), free(c.inp), free(c.out), free(c.dout);
    return bad;
}

BF_TEST(test_maxpool1d_gradients_match_finite_differences)
{
    CHECK(maxpool1d_check(3, 10, 2, 2, 1) == 0);   /* the structure model's MaxPool1d(2, 2) */
    CHECK(maxpool1d_check(2, 11, 3, 1, 2) == 0);   /* overlapping windows */
    CHECK(maxpool1d_check(4, 9, 2, 2, 3) == 0);    /* odd length: the last sample is dropped */
    CHECK(maxpool1d_check(2, 12, 4, 3, 4) == 0);
}

BF_TEST(test_maxpool1d_ties_pick_the_first_index)
{
    const float x[8] = {5, 5, 1, 1, -2, 7, 7, 7};
    float out[4];
    bf_maxpool1d_forward(out, x, 2, 4, 2, 2);
    CHECK(out[0] == 5 && out[1] == 1 && out[2] == 7 && out[3] == 7);
    const float g[4] = {1, 2, 3, 4};
    float dinp[8] = {0};
    bf_maxpool1d_backward(dinp, g, x, 2, 4, 2, 2);
    const float want[8] = {1, 0, 2, 0, 0, 3, 4, 0};
    for (int i = 0; i < 8; i++)
        CHECK_MSG(dinp[i] == want[i], "i %d", i);
    /* overlapping windows [7 7 7]: both outputs route to the first 7 */
    float o2[2], d2[4] = {0};
    bf_maxpool1d_forward(o2, x + 4, 1, 4, 3, 1);
    CHECK(o2[0] == 7 && o2[1] == 7);
    bf_maxpool1d_backward(d2, g, x + 4, 1, 4, 3, 1);
    CHECK(d2[0] == 0 && d2[1] == 3 && d2[2] == 0 && d2[3] == 0);
}

BF_TEST(test_maxpool1d_propagates_nan_like_pytorch)
{
    const float x[4] = {1, NAN, 3, 2};
    float out[2];
    bf_maxpool1d_forward(out, x, 1, 4, 2, 2);
    CHECK(isnan(out[0]) && out[1] == 3);
}

/* ---- LeakyReLU ---------------------------------------------------------------------- */

typedef struct {
    size_t n;
    float slope;
    float *inp, *out, *dout;
} lrelu_ctx;

static double lrelu_loss(void *p)
{
    lrelu_ctx *c = p;
    bf_leaky_relu_forward(c->out, c->inp, c->n, c->slope);
    return dot(c->out, c->dout, c->n);
}

BF_TEST(test_leaky_relu_gradients_match_finite_differences)
{
    bf_rng r;
    bf_rng_init(&r, 5, 0);
    const size_t n = 57;
    lrelu_ctx c = {n, 0.01f, zalloc(n), zalloc(n), zalloc(n)};
    fill_away_from_zero(&r, c.inp, n);
    fill_uniform(&r, c.dout, n, -1, 1);
    float *dinp = zalloc(n);
    bf_leaky_relu_backward(dinp, c.dout, c.inp, n, c.slope);
    fd_var vars[] = {{"inp", c.inp, n, dinp}};
    int bad = fd_check("leaky_relu", lrelu_loss, &c, vars, 1, 1e-3f, 1e-2);
    float *d2 = copy_of(dinp, n);
    bf_leaky_relu_backward(d2, c.dout, c.inp, n, c.slope);
    bf_leaky_relu_backward(NULL, c.dout, c.inp, n, c.slope);
    int acc = doubled(dinp, d2, n);
    free(d2), free(dinp), free(c.inp), free(c.out), free(c.dout);
    CHECK(bad == 0);
    CHECK(acc);
}

BF_TEST(test_leaky_relu_values_and_slope_at_zero)
{
    const float x[4] = {-2, 0, 3, -0.5f};
    float out[4], d[4] = {0};
    const float g[4] = {1, 1, 1, 1};
    bf_leaky_relu_forward(out, x, 4, 0.1f);
    CHECK(out[0] == -0.2f && out[1] == 0 && out[2] == 3 && out[3] == -0.05f);
    bf_leaky_relu_backward(d, g, x, 4, 0.1f);
    CHECK(d[0] == 0.1f && d[1] == 0.1f && d[2] == 1 && d[3] == 0.1f); /* PyTorch: x > 0 */
}

/* ---- Linear ------------------------------------------------------------------------- */

typedef struct {
    int B, I, O;
    float *inp, *w, *b, *out, *dout;
} linear_ctx;

static double linear_loss(void *p)
{
    linear_ctx *c = p;
    bf_linear_forward(c->out, c->inp, c->w, c->b, c->B, c->I, c->O);
    return dot(c->out, c->dout, (size_t)c->B * c->O);
}

static int linear_check(int B, int I, int O, uint64_t seed)
{
    bf_rng r;
    bf_rng_init(&r, seed, 0);
    size_t n_in = (size_t)B * I, n_w = (size_t)O * I, n_out = (size_t)B * O;
    linear_ctx c = {B, I, O, zalloc(n_in), zalloc(n_w), zalloc(O), zalloc(n_out), zalloc(n_out)};
    fill_uniform(&r, c.inp, n_in, -1, 1);
    fill_uniform(&r, c.w, n_w, -1, 1);
    fill_uniform(&r, c.b, O, -1, 1);
    fill_uniform(&r, c.dout, n_out, -1, 1);
    float *dinp = zalloc(n_in), *dw = zalloc(n_w), *db = zalloc(O);
    bf_linear_backward(dinp, dw, db, c.dout, c.inp, c.w, B, I, O);
    fd_var vars[] = {{"inp", c.inp, n_in, dinp}, {"w", c.w, n_w, dw}, {"b", c.b, O, db}};
    int bad = fd_check("linear", linear_loss, &c, vars, 3, 1e-2f, LINEAR_REL);
    float *d2i = copy_of(dinp, n_in), *d2w = copy_of(dw, n_w), *d2b = copy_of(db, O);
    bf_linear_backward(d2i, d2w, d2b, c.dout, c.inp, c.w, B, I, O);
    bad += !doubled(dinp, d2i, n_in) + !doubled(dw, d2w, n_w) + !doubled(db, d2b, O);
    float *oi = zalloc(n_in), *ow = zalloc(n_w), *ob = zalloc(O);
    bf_linear_backward(oi, NULL, NULL, c.dout, c.inp, c.w, B, I, O);
    bf_linear_backward(NULL, ow, NULL, c.dout, c.inp, c.w, B, I, O);
    bf_linear_backward(NULL, NULL, ob, c.dout, c.inp, c.w, B, I, O);
    bad += !same(oi, dinp, n_in, 1e-6) + !same(ow, dw, n_w, 1e-6) + !same(ob, db, O, 0);
    free(oi), free(ow), free(ob), free(d2i), free(d2w), free(d2b);
    free(dinp), free(dw), free(db);
    free(c.inp), free(c.w), free(c.b), free(c.out), free(c.dout);
    return bad;
}

BF_TEST(test_linear_gradients_match_finite_differences)
{
    CHECK(linear_check(3, 7, 5, 1) == 0);
    CHECK(linear_check(1, 1, 1, 2) == 0);
    CHECK(linear_check(5, 16, 3, 3) == 0);
}

BF_TEST(test_linear_matches_naive_triple_loop)
{
    bf_rng r;
    bf_rng_init(&r, 9, 0);
    const int shapes[][3] = {{5, 7, 3}, {17, 129, 33}, {1, 300, 1}};
    for (int s = 0; s < 3; s++) {
        int B = shapes[s][0], I = shapes[s][1], O = shapes[s][2];
        float *x = zalloc((size_t)B * I), *w = zalloc((size_t)O * I), *b = zalloc(O);
        float *out = zalloc((size_t)B * O), *out_nb = zalloc((size_t)B * O);
        fill_uniform(&r, x, (size_t)B * I, -1, 1);
        fill_uniform(&r, w, (size_t)O * I, -1, 1);
        fill_uniform(&r, b, O, -1, 1);
        bf_linear_forward(out, x, w, b, B, I, O);
        bf_linear_forward(out_nb, x, w, NULL, B, I, O);
        int ok = 1;
        for (int n = 0; n < B && ok; n++)
            for (int o = 0; o < O && ok; o++) {
                double acc = 0.0;
                for (int i = 0; i < I; i++)
                    acc += (double)x[(size_t)n * I + i] * w[(size_t)o * I + i];
                /* float sums of I terms of size ~1: error ~ 1e-7 sqrt(I) */
                ok = fabs(out[(size_t)n * O + o] - (acc + b[o])) <= 1e-5 * sqrt(I) + 1e-6 &&
                     fabs(out_nb[(size_t)n * O + o] - acc) <= 1e-5 * sqrt(I) + 1e-6;
            }
        free(x), free(w), free(b), free(out), free(out_nb);
        CHECK_MSG(ok, "shape %d x %d -> %d", B, I, O);
    }
}

/* ---- Conv2d ------------------------------------------------------------------------- */

typedef struct {
    int B, C_in, H, W, C_out, K, stride, pad;
    float *inp, *w, *b, *out, *dout;
    size_t n_out;
} conv2d_ctx;

static double conv2d_loss(void *p)
{
    conv2d_ctx *c = p;
    bf_conv2d_forward(c->out, c->inp, c->w, c->b, c->B, c->C_in, c->H, c->W, c->C_out, c->K,
                      c->stride, c->pad);
    return dot(c->out, c->dout, c->n_out);
}

static int conv2d_check(int B, int C_in, int H, int W, int C_out, int K, int stride, int pad,
                        uint64_t seed)
{
    bf_rng r;
    bf_rng_init(&r, seed, 0);
    int H_out = (H + 2 * pad - K) / stride + 1, W_out = (W + 2 * pad - K) / stride + 1;
    size_t n_in = (size_t)B * C_in * H * W, n_w = (size_t)C_out * C_in * K * K;
    conv2d_ctx c = {B, C_in, H, W, C_out, K, stride, pad, zalloc(n_in), zalloc(n_w),
                    zalloc(C_out), NULL, NULL, (size_t)B * C_out * H_out * W_out};
    c.out = zalloc(c.n_out);
    c.dout = zalloc(c.n_out);
    fill_uniform(&r, c.inp, n_in, -1, 1);
    fill_uniform(&r, c.w, n_w, -1, 1);
    fill_uniform(&r, c.b, C_out, -1, 1);
    fill_uniform(&r, c.dout, c.n_out, -1, 1);
    float *dinp = zalloc(n_in), *dw = zalloc(n_w), *db = zalloc(C_out);
    bf_conv2d_backward(dinp, dw, db, c.dout, c.inp, c.w, B, C_in, H, W, C_out, K, stride, pad);
    fd_var vars[] = {{"inp", c.inp, n_in, dinp}, {"w", c.w, n_w, dw}, {"b", c.b, C_out, db}};
    char what[96];
    snprintf(what, sizeof what, "conv2d B%d Cin%d %dx%d Cout%d K%d s%d p%d", B, C_in, H, W,
             C_out, K, stride, pad);
    int bad = fd_check(what, conv2d_loss, &c, vars, 3, 1e-2f, LINEAR_REL);
    float *d2i = copy_of(dinp, n_in), *d2w = copy_of(dw, n_w), *d2b = copy_of(db, C_out);
    bf_conv2d_backward(d2i, d2w, d2b, c.dout, c.inp, c.w, B, C_in, H, W, C_out, K, stride, pad);
    if (!doubled(dinp, d2i, n_in) || !doubled(dw, d2w, n_w) || !doubled(db, d2b, C_out)) {
        fprintf(stderr, "  %s: backward does not accumulate\n", what);
        bad++;
    }
    float *oi = zalloc(n_in), *ow = zalloc(n_w), *ob = zalloc(C_out);
    bf_conv2d_backward(oi, NULL, NULL, c.dout, c.inp, c.w, B, C_in, H, W, C_out, K, stride, pad);
    bf_conv2d_backward(NULL, ow, NULL, c.dout, c.inp, c.w, B, C_in, H, W, C_out, K, stride, pad);
    bf_conv2d_backward(NULL, NULL, ob, c.dout, c.inp, c.w, B, C_in, H, W, C_out, K, stride, pad);
    if (!same(oi, dinp, n_in, 0) || !same(ow, dw, n_w, 0) || !same(ob, db, C_out, 0)) {
        fprintf(stderr, "  %s: NULL gradients change the others\n", what);
        bad++;
    }
    free(oi), free(ow), free(ob), free(d2i), free(d2w), free(d2b);
    free(dinp), free(dw), free(db);
    free(c.inp), free(c.w), free(c.b), free(c.out), free(c.dout);
    return bad;
}

BF_TEST(test_conv2d_pad0_gradients_match_finite_differences)
{
    CHECK(conv2d_check(2, 2, 6, 5, 3, 3, 1, 0, 1) == 0);
    CHECK(conv2d_check(1, 3, 7, 7, 2, 3, 2, 0, 2) == 0);
    CHECK(conv2d_check(2, 1, 5, 6, 2, 1, 1, 0, 3) == 0); /* 1x1 */
}

BF_TEST(test_conv2d_pad1_gradients_match_finite_differences)
{
    CHECK(conv2d_check(2, 2, 5, 6, 3, 3, 1, 1, 4) == 0);
    CHECK(conv2d_check(1, 2, 7, 6, 2, 3, 2, 1, 5) == 0); /* stride 2 with padding */
    CHECK(conv2d_check(1, 1, 4, 4, 2, 4, 2, 1, 6) == 0); /* even kernel */
}

BF_TEST(test_conv2d_random_shapes_gradients_match_finite_differences)
{
    bf_rng r;
    bf_rng_init(&r, 78, 0);
    for (int trial = 0; trial < 6; trial++) {
        int K = 1 + (int)(bf_rng_uniform(&r) * 3);
        int stride = 1 + (int)(bf_rng_uniform(&r) * 2);
        int pad = (int)(bf_rng_uniform(&r) * 2);
        int H = K + (int)(bf_rng_uniform(&r) * 5), W = K + (int)(bf_rng_uniform(&r) * 5);
        int B = 1 + (int)(bf_rng_uniform(&r) * 2);
        int C_in = 1 + (int)(bf_rng_uniform(&r) * 2), C_out = 1 + (int)(bf_rng_uniform(&r) * 3);
        CHECK_MSG(conv2d_check(B, C_in, H, W, C_out, K, stride, pad, 200 + trial) == 0,
                  "trial %d", trial);
    }
}

BF_TEST(test_conv2d_padding_is_zero_and_matches_hand_computed_example)
{
    /* 2x2 input, 3x3 all-ones kernel, pad 1: each output is the sum of the input values
     * its window covers, i.e. all four (the padding adds zeros), plus the bias. */
    const float x[4] = {1, 2, 3, 4}, b[1] = {0.25f};
    float w[9], out[4];
    for (int i = 0; i < 9; i++)
        w[i] = 1;
    bf_conv2d_forward(out, x, w, b, 1, 1, 2, 2, 1, 3, 1, 1);
    for (int i = 0; i < 4; i++)
        CHECK(out[i] == 10.25f);
    /* A centre-only kernel with pad 1 is the identity. */
    for (int i = 0; i < 9; i++)
        w[i] = i == 4;
    bf_conv2d_forward(out, x, w, NULL, 1, 1, 2, 2, 1, 3, 1, 1);
    for (int i = 0; i < 4; i++)
        CHECK(out[i] == x[i]);
}

/* ---- MaxPool2d ---------------------------------------------------------------------- */

typedef struct {
    int N, H, W, K, stride;
    float *inp, *out, *dout;
    size_t n_out;
} pool2d_ctx;

static double pool2d_loss(void *p)
{
    pool2d_ctx *c = p;
    bf_maxpool2d_forward(c->out, c->inp, c->N, c->H, c->W, c->K, c->stride);
    return dot(c->out, c->dout, c->n_out);
}

static int maxpool2d_check(int N, int H, int W, int K, int stride, uint64_t seed)
{
    bf_rng r;
    bf_rng_init(&r, seed, 0);
    int H_out = (H - K) / stride + 1, W_out = (W - K) / stride + 1;
    size_t n_in = (size_t)N * H * W;
    pool2d_ctx c = {N, H, W, K, stride, zalloc(n_in), NULL, NULL, (size_t)N * H_out * W_out};
    c.out = zalloc(c.n_out);
    c.dout = zalloc(c.n_out);
    fill_distinct(&r, c.inp, n_in);
    fill_uniform(&r, c.dout, c.n_out, -1, 1);
    float *dinp = zalloc(n_in);
    bf_maxpool2d_backward(dinp, c.dout, c.inp, N, H, W, K, stride);
    fd_var vars[] = {{"inp", c.inp, n_in, dinp}};
    int bad = fd_check("maxpool2d", pool2d_loss, &c, vars, 1, 1e-2f, 1e-2);
    float *d2 = copy_of(dinp, n_in);
    bf_maxpool2d_backward(d2, c.dout, c.inp, N, H, W, K, stride);
    bf_maxpool2d_backward(NULL, c.dout, c.inp, N, H, W, K, stride);
    bad += !doubled(dinp, d2, n_in);
    free(d2), free(dinp), free(c.inp), free(c.out), free(c.dout);
    return bad;
}

BF_TEST(test_maxpool2d_gradients_match_finite_differences)
{
    CHECK(maxpool2d_check(3, 6, 6, 2, 2, 1) == 0);
    CHECK(maxpool2d_check(2, 7, 5, 3, 1, 2) == 0); /* overlapping windows */
    CHECK(maxpool2d_check(2, 7, 9, 2, 2, 3) == 0); /* odd sizes: last row/column dropped */
}

BF_TEST(test_maxpool2d_ties_pick_the_first_index_in_row_major_order)
{
    /* 2x4 -> two 2x2 windows: all equal (first = top-left), and a tie between
     * (0, 3) and (1, 2) that (0, 3) wins because it comes first row-major. */
    const float x[8] = {2, 2, 1, 9, 2, 2, 9, 0};
    float out[2], dinp[8] = {0};
    const float g[2] = {1, 5};
    bf_maxpool2d_forward(out, x, 1, 2, 4, 2, 2);
    CHECK(out[0] == 2 && out[1] == 9);
    bf_maxpool2d_backward(dinp, g, x, 1, 2, 4, 2, 2);
    const float want[8] = {1, 0, 0, 5, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++)
        CHECK_MSG(dinp[i] == want[i], "i %d", i);
}

/* ---- Batched matmul ------------------------------------------------------------------ */

typedef struct {
    int N, M, K, P, ta, tb;
    float *a, *b, *c, *dc;
    size_t n_c;
} bmm_ctx;

static double bmm_loss(void *p)
{
    bmm_ctx *x = p;
    bf_bmm_forward(x->c, x->a, x->b, x->N, x->M, x->K, x->P, x->ta, x->tb);
    return dot(x->c, x->dc, x->n_c);
}

static int bmm_check(int N, int M, int K, int P, int ta, int tb, uint64_t seed)
{
    bf_rng r;
    bf_rng_init(&r, seed, 0);
    size_t na = (size_t)N * M * K, nb = (size_t)N * K * P;
    bmm_ctx x = {N, M, K, P, ta, tb, zalloc(na), zalloc(nb), NULL, NULL, (size_t)N * M * P};
    x.c = zalloc(x.n_c);
    x.dc = zalloc(x.n_c);
    fill_uniform(&r, x.a, na, -1, 1);
    fill_uniform(&r, x.b, nb, -1, 1);
    fill_uniform(&r, x.dc, x.n_c, -1, 1);
    int bad = 0;
    /* forward against a naive loop over the stored layouts */
    bf_bmm_forward(x.c, x.a, x.b, N, M, K, P, ta, tb);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < P; j++) {
                double s = 0.0;
                for (int k = 0; k < K; k++) {
                    float av = ta ? x.a[(size_t)n * M * K + (size_t)k * M + i]
                                  : x.a[(size_t)n * M * K + (size_t)i * K + k];
                    float bv = tb ? x.b[(size_t)n * K * P + (size_t)j * K + k]
                                  : x.b[(size_t)n * K * P + (size_t)k * P + j];
                    s += (double)av * bv;
                }
                bad += !(fabs(x.c[((size_t)n * M + i) * P + j] - s) <= 1e-5);
            }
    if (bad)
        fprintf(stderr, "  bmm ta%d tb%d: forward differs from the naive loop\n", ta, tb);
    float *da = zalloc(na), *db = zalloc(nb);
    bf_bmm_backward(da, db, x.dc, x.a, x.b, N, M, K, P, ta, tb);
    fd_var vars[] = {{"a", x.a, na, da}, {"b", x.b, nb, db}};
    char what[64];
    snprintf(what, sizeof what, "bmm N%d M%d K%d P%d ta%d tb%d", N, M, K, P, ta, tb);
    bad += fd_check(what, bmm_loss, &x, vars, 2, 1e-2f, LINEAR_REL);
    float *d2a = copy_of(da, na), *d2b = copy_of(db, nb);
    bf_bmm_backward(d2a, d2b, x.dc, x.a, x.b, N, M, K, P, ta, tb);
    bad += !doubled(da, d2a, na) + !doubled(db, d2b, nb);
    float *oa = zalloc(na), *ob = zalloc(nb);
    bf_bmm_backward(oa, NULL, x.dc, x.a, x.b, N, M, K, P, ta, tb);
    bf_bmm_backward(NULL, ob, x.dc, x.a, x.b, N, M, K, P, ta, tb);
    bad += !same(oa, da, na, 1e-6) + !same(ob, db, nb, 1e-6);
    free(oa), free(ob), free(d2a), free(d2b), free(da), free(db);
    free(x.a), free(x.b), free(x.c), free(x.dc);
    return bad;
}

BF_TEST(test_bmm_all_four_transpose_combinations_match_finite_differences)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            CHECK_MSG(bmm_check(3, 4, 5, 2, ta, tb, 10 + 2 * ta + tb) == 0, "ta %d tb %d", ta,
                      tb);
            CHECK_MSG(bmm_check(2, 1, 3, 6, ta, tb, 20 + 2 * ta + tb) == 0, "ta %d tb %d", ta,
                      tb);
        }
}

/* ---- Softmax ------------------------------------------------------------------------ */

typedef struct {
    int rows, cols;
    float *inp, *out, *dout;
} softmax_ctx;

static double softmax_loss(void *p)
{
    softmax_ctx *c = p;
    bf_softmax_forward(c->out, c->inp, c->rows, c->cols);
    return dot(c->out, c->dout, (size_t)c->rows * c->cols);
}

BF_TEST(test_softmax_gradients_match_finite_differences)
{
    bf_rng r;
    bf_rng_init(&r, 6, 0);
    enum { ROWS = 4, COLS = 7 };
    const size_t n = ROWS * COLS;
    softmax_ctx c = {ROWS, COLS, zalloc(n), zalloc(n), zalloc(n)};
    fill_uniform(&r, c.inp, n, -3, 3);
    fill_uniform(&r, c.dout, n, -1, 1);
    bf_softmax_forward(c.out, c.inp, ROWS, COLS);
    float *dinp = zalloc(n);
    bf_softmax_backward(dinp, c.dout, c.out, ROWS, COLS);
    fd_var vars[] = {{"inp", c.inp, n, dinp}};
    int bad = fd_check("softmax", softmax_loss, &c, vars, 1, 1e-3f, 1e-2);
    bf_softmax_forward(c.out, c.inp, ROWS, COLS);
    float *d2 = copy_of(dinp, n);
    bf_softmax_backward(d2, c.dout, c.out, ROWS, COLS);
    bf_softmax_backward(NULL, c.dout, c.out, ROWS, COLS);
    int acc = doubled(dinp, d2, n);
    free(d2), free(dinp), free(c.inp), free(c.out), free(c.dout);
    CHECK(bad == 0);
    CHECK(acc);
}

BF_TEST(test_softmax_rows_sum_to_one_and_ignore_a_constant_shift)
{
    bf_rng r;
    bf_rng_init(&r, 7, 0);
    enum { ROWS = 3, COLS = 9 };
    float x[ROWS * COLS], xs[ROWS * COLS], y[ROWS * COLS], ys[ROWS * COLS];
    fill_uniform(&r, x, ROWS * COLS, -5, 5);
    for (int i = 0; i < ROWS * COLS; i++)
        xs[i] = x[i] + 50.0f; /* exact in float only to ~4e-6: compare to 1e-5 */
    bf_softmax_forward(y, x, ROWS, COLS);
    bf_softmax_forward(ys, xs, ROWS, COLS);
    for (int row = 0; row < ROWS; row++) {
        double s = 0.0;
        for (int k = 0; k < COLS; k++) {
            s += y[row * COLS + k];
            CHECK(y[row * COLS + k] > 0);
            CHECK_NEAR(ys[row * COLS + k], y[row * COLS + k], 1e-5);
        }
        CHECK_NEAR(s, 1.0, 1e-6);
    }
    /* huge logits do not overflow */
    const float big[3] = {1000, 999, -1000};
    float yb[3];
    bf_softmax_forward(yb, big, 1, 3);
    CHECK_REL(yb[0], 1 / (1 + exp(-1.0)), 1e-6);
    CHECK_REL(yb[1], exp(-1.0) / (1 + exp(-1.0)), 1e-6);
    CHECK(yb[2] == 0);
}
