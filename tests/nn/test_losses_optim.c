/* tests/nn/test_losses_optim.c — losses (finite differences and known values),
 * parameter registry, PyTorch-default initialisation, Adam and gradient clipping. */
#include "braggflow/nn.h"
#include "test.h"
#include "gradcheck.h"

#include <omp.h>
#include <stdint.h>

static void fill_uniform(bf_rng *r, float *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)bf_rng_uniform_range(r, lo, hi);
}

/* ---- Cross-entropy ------------------------------------------------------------------- */

typedef struct {
    int B, C;
    float *logits;
    int32_t *labels;
    float dloss;
} ce_ctx;

static double ce_loss(void *p)
{
    ce_ctx *c = p;
    return c->dloss * bf_cross_entropy_loss(NULL, c->logits, c->labels, c->B, c->C, 1.0f);
}

BF_TEST(test_cross_entropy_gradient_matches_finite_differences)
{
    bf_rng r;
    bf_rng_init(&r, 1, 0);
    enum { B = 5, C = 4 };
    float logits[B * C], grad[B * C];
    int32_t labels[B];
    fill_uniform(&r, logits, B * C, -3, 3);
    for (int n = 0; n < B; n++)
        labels[n] = (int32_t)(bf_rng_uniform(&r) * C);
    ce_ctx c = {B, C, logits, labels, 0.7f};
    for (int i = 0; i < B * C; i++)
        grad[i] = 123.0f; /* written, not accumulated */
    double loss = bf_cross_entropy_loss(grad, logits, labels, B, C, c.dloss);
    CHECK_REL(loss * c.dloss, ce_loss(&c), 1e-12);
    CHECK(fd_check1("cross_entropy", ce_loss, &c, logits, grad, B * C, 1e-3f, 1e-2) == 0);
    for (int n = 0; n < B; n++) { /* softmax - onehot sums to 0 in each row */
        double s = 0.0;
        for (int k = 0; k < C; k++)
            s += grad[n * C + k];
        CHECK_NEAR(s, 0.0, 1e-6);
    }
}

BF_TEST(test_cross_entropy_of_uniform_logits_is_log_c)
{
    for (int C = 2; C <= 7; C++) {
        float logits[3 * 7];
        int32_t labels[3] = {0, C - 1, C / 2};
        for (int i = 0; i < 3 * C; i++)
            logits[i] = 2.5f; /* any constant */
        CHECK_REL(bf_cross_entropy_loss(NULL, logits, labels, 3, C, 1.0f), log((double)C),
                  1e-12);
    }
}

BF_TEST(test_cross_entropy_is_stable_for_huge_logits)
{
    const float logits[6] = {1000, 0, -1000, 1000, 0, -1000};
    const int32_t labels[2] = {0, 1};
    float g[6];
    double loss = bf_cross_entropy_loss(g, logits, labels, 2, 3, 1.0f);
    CHECK(isfinite(loss));
    CHECK_REL(loss, (0.0 + 1000.0) / 2, 1e-9);
    CHECK_NEAR(g[0], 0.0, 1e-7);           /* p = 1, onehot = 1 */
    CHECK_NEAR(g[3], 0.5, 1e-7);           /* p = 1, onehot = 0, / B */
    CHECK_NEAR(g[4], -0.5, 1e-7);
}

BF_TEST(test_cross_entropy_label_out_of_range_gives_nan)
{
    const float logits[6] = {1, 2, 3, 4, 5, 6};
    const int32_t bad_hi[2] = {0, 3}, bad_lo[2] = {-1, 0};
    float g[6];
    CHECK(isnan(bf_cross_entropy_loss(g, logits, bad_hi, 2, 3, 1.0f)));
    CHECK(isnan(bf_cross_entropy_loss(NULL, logits, bad_lo, 2, 3, 1.0f)));
}

/* ---- Heteroscedastic loss ------------------------------------------------------------ */

typedef struct {
    int B, P;
    float *pred, *target;
    float dloss;
} reg_ctx;

static double hetero_loss(void *p)
{
    reg_ctx *c = p;
    return c->dloss * bf_hetero_loss(NULL, c->pred, c->target, c->B, c->P, 1.0f);
}

static double mse_loss(void *p)
{
    reg_ctx *c = p;
    return c->dloss * bf_mse_loss(NULL, c->pred, c->target, c->B, c->P, 1.0f);
}

BF_TEST(test_hetero_loss_gradient_matches_finite_differences)
{
    bf_rng r;
    bf_rng_init(&r, 2, 0);
    enum { B = 4, P = 3 };
    float pred[B * (P + 1)], target[B * P], grad[B * (P + 1)];
    fill_uniform(&r, pred, B * (P + 1), -1.5, 1.5); /* includes s in [-1.5, 1.5] */
    fill_uniform(&r, target, B * P, -1, 1);
    reg_ctx c = {B, P, pred, target, 1.3f};
    for (int i = 0; i < B * (P + 1); i++)
        grad[i] = -7.0f;
    bf_hetero_loss(grad, pred, target, B, P, c.dloss);
    CHECK(fd_check1("hetero", hetero_loss, &c, pred, grad, B * (P + 1), 1e-3f, 1e-2) == 0);
}

BF_TEST(test_hetero_loss_with_zero_log_variance_is_sum_of_squares)
{
    /* rows: (1, 2) vs (0, 0) -> 5; (0.5, -1) vs (0.5, 1) -> 4; mean 4.5 */
    const float pred[6] = {1, 2, 0, 0.5f, -1, 0}, target[4] = {0, 0, 0.5f, 1};
    CHECK_REL(bf_hetero_loss(NULL, pred, target, 2, 2, 1.0f), 4.5, 1e-12);
    /* s = log 4: sum of squares / 4 + log 4 */
    const float pred4[3] = {1, 2, (float)log(4.0)}, target4[2] = {0, 0};
    float g[3];
    CHECK_REL(bf_hetero_loss(g, pred4, target4, 1, 2, 1.0f), 5.0 / 4 + (float)log(4.0), 1e-7);
    CHECK_REL(g[0], 2 * 1 / 4.0, 1e-6);
    CHECK_REL(g[1], 2 * 2 / 4.0, 1e-6);
    CHECK_REL(g[2], 1 - 5.0 / 4, 1e-6);
}

BF_TEST(test_mse_loss_known_value_and_gradient)
{
    const float pred[4] = {1, 2, 3, 4}, target[4] = {0, 2, 5, 4};
    float g[4] = {9, 9, 9, 9};
    CHECK_REL(bf_mse_loss(g, pred, target, 2, 2, 1.0f), (1 + 0 + 4 + 0) / 4.0, 1e-12);
    CHECK(g[0] == 0.5f && g[1] == 0 && g[2] == -1.0f && g[3] == 0); /* 2 (p - t) / 4 */

    bf_rng r;
    bf_rng_init(&r, 3, 0);
    enum { B = 3, P = 5 };
    float p2[B * P], t2[B * P], g2[B * P];
    fill_uniform(&r, p2, B * P, -1, 1);
    fill_uniform(&r, t2, B * P, -1, 1);
    reg_ctx c = {B, P, p2, t2, 0.5f};
    bf_mse_loss(g2, p2, t2, B, P, c.dloss);
    CHECK(fd_check1("mse", mse_loss, &c, p2, g2, B * P, 1e-2f, 1e-2) == 0);
}

/* ---- Parameters --------------------------------------------------------------------- */

static bf_status add(bf_params *p, const char *name, int d0, int d1, int d2, int fan_in,
                     bf_error *err)
{
    int shape[3] = {d0, d1, d2};
    int ndim = d2 ? 3 : d1 ? 2 : 1;
    return bf_params_add(p, name, ndim, shape, fan_in, err);
}

BF_TEST(test_params_offsets_are_contiguous_in_add_order)
{
    bf_params p = {0};
    bf_error err = {0};
    CHECK(add(&p, "conv1.weight", 8, 1, 3, 3, &err) == BF_OK);
    CHECK(add(&p, "conv1.bias", 8, 0, 0, 3, &err) == BF_OK);
    CHECK(add(&p, "fc.weight", 4, 24, 0, 24, &err) == BF_OK);
    CHECK(add(&p, "fc.bias", 4, 0, 0, 24, &err) == BF_OK);
    CHECK(p.n == 4 && p.total == 24 + 8 + 96 + 4);
    CHECK(p.info[0].offset == 0 && p.info[1].offset == 24 && p.info[2].offset == 32 &&
          p.info[3].offset == 128);
    CHECK(p.info[2].ndim == 2 && p.info[2].shape[0] == 4 && p.info[2].shape[1] == 24);
    CHECK(p.info[2].count == 96 && p.info[2].fan_in == 24);
    const bf_param_info *fc = bf_params_find(&p, "fc.weight");
    CHECK(fc == &p.info[2]);
    CHECK(bf_params_find(&p, "fc") == NULL);
    CHECK(bf_params_find(&p, "nope.weight") == NULL);

    CHECK(bf_params_alloc(&p, &err) == BF_OK);
    for (size_t i = 0; i < p.total; i++)
        CHECK(p.value[i] == 0 && p.grad[i] == 0);
    for (size_t i = 0; i < p.total; i++)
        p.grad[i] = 1.0f;
    bf_params_zero_grad(&p);
    for (size_t i = 0; i < p.total; i++)
        CHECK(p.grad[i] == 0);
    bf_params_free(&p);
    CHECK(p.value == NULL && p.grad == NULL);
    bf_params_free(&p); /* twice is harmless */
}

BF_TEST(test_params_add_rejects_bad_tensors_naming_them)
{
    bf_params p = {0};
    bf_error err = {0};
    int shape[5] = {2, 2, 2, 2, 2};
    CHECK(bf_params_add(&p, "a.weight", 0, shape, 1, &err) == BF_ERR_INVALID);
    CHECK(strstr(err.msg, "a.weight") != NULL);
    err = (bf_error){0};
    CHECK(bf_params_add(&p, "b.weight", 5, shape, 1, &err) == BF_ERR_INVALID);
    CHECK(strstr(err.msg, "b.weight") != NULL);
    err = (bf_error){0};
    char longname[BF_PARAM_NAME + 1];
    memset(longname, 'x', BF_PARAM_NAME);
    longname[BF_PARAM_NAME] = '\0';
    CHECK(bf_params_add(&p, longname, 1, shape, 1, &err) == BF_ERR_INVALID);
    CHECK(strstr(err.msg, "xxxxxxxx") != NULL);
    err = (bf_error){0};
    int zero[1] = {0};
    CHECK(bf_params_add(&p, "c.bias", 1, zero, 1, &err) == BF_ERR_INVALID);
    CHECK(strstr(err.msg, "c.bias") != NULL);
    CHECK(p.n == 0 && p.total == 0);

    err = (bf_error){0};
    CHECK(add(&p, "d.weight", 3, 0, 0, 1, &err) == BF_OK);
    CHECK(add(&p, "d.weight", 3, 0, 0, 1, &err) == BF_ERR_INVALID);
    CHECK(strstr(err.msg, "d.weight") != NULL && strstr(err.msg, "duplicate") != NULL);
    CHECK(p.n == 1 && p.total == 3);

    /* a name of BF_PARAM_NAME - 1 bytes still fits */
    err = (bf_error){0};
    longname[BF_PARAM_NAME - 1] = '\0';
    CHECK(bf_params_add(&p, longname, 1, shape, 1, &err) == BF_OK);
    for (int i = p.n; i < BF_MAX_PARAMS; i++) {
        char name[32];
        snprintf(name, sizeof name, "layer%d.bias", i);
        CHECK(bf_params_add(&p, name, 1, shape, 1, &err) == BF_OK);
    }
    CHECK(p.n == BF_MAX_PARAMS);
    CHECK(bf_params_add(&p, "one.too.many", 1, shape, 1, &err) == BF_ERR_INVALID);
    CHECK(strstr(err.msg, "one.too.many") != NULL);
    CHECK(p.n == BF_MAX_PARAMS);
    bf_params_free(&p);
}

/* ---- Initialisation ----------------------------------------------------------------- */

static void make_net(bf_params *p)
{
    bf_error err = {0};
    *p = (bf_params){0};
    add(p, "conv1.weight", 4, 1, 3, 3, &err);
    add(p, "conv1.bias", 4, 0, 0, 3, &err);
    add(p, "fc.weight", 10, 300, 0, 300, &err);
    add(p, "fc.bias", 10, 0, 0, 300, &err);
    bf_params_alloc(p, &err);
}

BF_TEST(test_init_is_pytorch_default_uniform_within_one_over_sqrt_fan_in)
{
    bf_params p;
    make_net(&p);
    CHECK(p.value != NULL);
    bf_params_init(&p, 42);
    for (int t = 0; t < p.n; t++) {
        double bound = 1.0 / sqrt((double)p.info[t].fan_in);
        const float *v = p.value + p.info[t].offset;
        for (size_t i = 0; i < p.info[t].count; i++)
            CHECK(fabs(v[i]) <= bound);
    }
    /* fc.weight: 3000 draws of U(-a, a): mean 0 (sd a / sqrt(3 n)), variance a^2 / 3 */
    const bf_param_info *fc = bf_params_find(&p, "fc.weight");
    double a = 1.0 / sqrt(300.0), s = 0, s2 = 0;
    for (size_t i = 0; i < fc->count; i++) {
        double x = p.value[fc->offset + i];
        s += x;
        s2 += x * x;
    }
    double mean = s / fc->count;
    CHECK(fabs(mean) < 4 * a / sqrt(3.0 * fc->count));
    CHECK_REL(s2 / fc->count - mean * mean, a * a / 3, 0.1);
    bf_params_free(&p);
}

BF_TEST(test_init_draws_one_stream_in_state_dict_order)
{
    bf_params p;
    make_net(&p);
    bf_params_init(&p, 7);
    bf_rng r;
    bf_rng_init(&r, 7, 0);
    for (int t = 0; t < p.n; t++) {
        double bound = 1.0 / sqrt((double)p.info[t].fan_in);
        for (size_t i = 0; i < p.info[t].count; i++)
            CHECK(p.value[p.info[t].offset + i] ==
                  (float)bf_rng_uniform_range(&r, -bound, bound));
    }
    bf_params_free(&p);
}

BF_TEST(test_init_is_deterministic_for_a_seed_and_differs_for_another)
{
    bf_params a, b, c;
    make_net(&a);
    make_net(&b);
    make_net(&c);
    bf_params_init(&a, 1234);
    bf_params_init(&b, 1234);
    bf_params_init(&c, 1235);
    CHECK(memcmp(a.value, b.value, a.total * sizeof(float)) == 0);
    size_t differ = 0;
    for (size_t i = 0; i < a.total; i++)
        differ += a.value[i] != c.value[i];
    CHECK(differ > a.total * 9 / 10);
    bf_params_free(&a);
    bf_params_free(&b);
    bf_params_free(&c);
}

/* ---- Adam --------------------------------------------------------------------------- */

BF_TEST(test_adam_first_step_moves_each_value_by_lr_times_sign_of_gradient)
{
    bf_adam opt;
    bf_error err = {0};
    CHECK(bf_adam_init(&opt, NULL, 5, 1e-3f, &err) == BF_OK);
    CHECK(opt.beta1 == 0.9f && opt.beta2 == 0.999f && opt.eps == 1e-8f && opt.step == 0);
    float value[5] = {1, -2, 0.5f, 0, 3};
    const float grad[5] = {0.3f, -4, 1e-2f, 0, -7e-3f};
    const float before[5] = {1, -2, 0.5f, 0, 3};
    bf_adam_step(&opt, value, grad);
    CHECK(opt.step == 1);
    /* m_hat = g, sqrt(v_hat) = |g|: update = lr g / (|g| + eps) */
    for (int i = 0; i < 5; i++) {
        double g = grad[i];
        double want = before[i] - 1e-3 * g / (fabs(g) + 1e-8);
        CHECK_NEAR(value[i], want, 1e-7);
    }
    CHECK(value[3] == 0); /* zero gradient: no move */
    bf_adam_free(&opt);
    CHECK(opt.m == NULL && opt.v == NULL);
}

BF_TEST(test_adam_matches_torch_formula_over_several_steps)
{
    enum { N = 4, STEPS = 6 };
    bf_adam opt;
    bf_error err = {0};
    CHECK(bf_adam_init(&opt, NULL, N, 0.01f, &err) == BF_OK);
    float value[N] = {0.5f, -1, 2, 0.1f};
    double ref[N], m[N] = {0}, v[N] = {0};
    for (int i = 0; i < N; i++)
        ref[i] = value[i];
    bf_rng r;
    bf_rng_init(&r, 11, 0);
    for (int t = 1; t <= STEPS; t++) {
        float grad[N];
        fill_uniform(&r, grad, N, -2, 2);
        bf_adam_step(&opt, value, grad);
        /* torch.optim.Adam 1.13 in double */
        double bc1 = 1 - pow(0.9, t), bc2 = 1 - pow(0.999, t);
        for (int i = 0; i < N; i++) {
            m[i] = 0.9 * m[i] + 0.1 * grad[i];
            v[i] = 0.999 * v[i] + 0.001 * (double)grad[i] * grad[i];
            double denom = sqrt(v[i]) / sqrt(bc2) + 1e-8;
            ref[i] -= 0.01 / bc1 * m[i] / denom;
        }
    }
    CHECK(opt.step == STEPS);
    for (int i = 0; i < N; i++)
        CHECK_NEAR(value[i], ref[i], 1e-5);
    bf_adam_free(&opt);
}

BF_TEST(test_adam_is_independent_of_thread_count)
{
    const size_t n = 200003; /* large enough for the parallel loop */
    float *grad = malloc(n * sizeof *grad), *v1 = malloc(n * sizeof *v1);
    float *v2 = malloc(n * sizeof *v2);
    bf_rng r;
    bf_rng_init(&r, 12, 0);
    fill_uniform(&r, grad, n, -1, 1);
    fill_uniform(&r, v1, n, -1, 1);
    memcpy(v2, v1, n * sizeof *v2);
    bf_adam a, b;
    bf_error err = {0};
    CHECK(bf_adam_init(&a, NULL, n, 1e-3f, &err) == BF_OK);
    CHECK(bf_adam_init(&b, NULL, n, 1e-3f, &err) == BF_OK);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    bf_adam_step(&a, v1, grad);
    bf_adam_step(&a, v1, grad);
    omp_set_num_threads(3);
    bf_adam_step(&b, v2, grad);
    bf_adam_step(&b, v2, grad);
    omp_set_num_threads(saved);
    int equal = memcmp(v1, v2, n * sizeof *v1) == 0;
    bf_adam_free(&a);
    bf_adam_free(&b);
    free(grad), free(v1), free(v2);
    CHECK(equal);
}

BF_TEST(test_adam_init_rejects_bad_learning_rate)
{
    bf_adam opt;
    bf_error err = {0};
    CHECK(bf_adam_init(&opt, NULL, 3, -1.0f, &err) == BF_ERR_INVALID);
    CHECK(strstr(err.msg, "learning rate") != NULL);
    bf_adam_free(&opt);
    err = (bf_error){0};
    CHECK(bf_adam_init(&opt, NULL, 3, NAN, &err) == BF_ERR_INVALID);
    bf_adam_free(&opt);
}

/* ---- Gradient clipping --------------------------------------------------------------- */

BF_TEST(test_clip_scales_to_max_norm_when_above_and_returns_the_norm_before)
{
    float g[3] = {3, 0, -4};
    double norm = bf_clip_grad_norm(g, 3, 1.0);
    CHECK_REL(norm, 5.0, 1e-12);
    double after = sqrt((double)g[0] * g[0] + (double)g[2] * g[2]);
    CHECK_NEAR(after, 1.0, 1e-5);
    CHECK_REL(g[0] / g[2], -0.75, 1e-6); /* direction kept */
    CHECK(g[1] == 0);
}

BF_TEST(test_clip_leaves_gradient_untouched_when_below_max_norm)
{
    float g[3] = {3, 0, -4};
    CHECK_REL(bf_clip_grad_norm(g, 3, 10.0), 5.0, 1e-12);
    CHECK(g[0] == 3 && g[1] == 0 && g[2] == -4);
    CHECK_REL(bf_clip_grad_norm(g, 3, 5.0), 5.0, 1e-12); /* coef 5 / (5 + 1e-6) < 1 */
    CHECK_NEAR(g[2], -4.0, 1e-5);
    /* just above max_norm (coef 0.9) is clipped */
    CHECK_REL(bf_clip_grad_norm(g, 3, 4.5), 5.0, 1e-6);
    CHECK_NEAR(sqrt((double)g[0] * g[0] + (double)g[2] * g[2]), 4.5, 1e-5);
    CHECK(bf_clip_grad_norm(g, 0, 1.0) == 0.0);
}

BF_TEST(test_clip_norm_over_millions_is_exact_and_independent_of_thread_count)
{
    const size_t n = 1000003;
    float *g1 = malloc(n * sizeof *g1), *g2 = malloc(n * sizeof *g2);
    bf_rng r;
    bf_rng_init(&r, 13, 0);
    fill_uniform(&r, g1, n, -1, 1);
    memcpy(g2, g1, n * sizeof *g2);
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)g1[i] * g1[i];
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    double n1 = bf_clip_grad_norm(g1, n, 10.0);
    omp_set_num_threads(4);
    double n2 = bf_clip_grad_norm(g2, n, 10.0);
    omp_set_num_threads(saved);
    double after = 0.0;
    for (size_t i = 0; i < n; i++)
        after += (double)g1[i] * g1[i];
    int equal = n1 == n2 && memcmp(g1, g2, n * sizeof *g1) == 0;
    free(g1), free(g2);
    CHECK(equal);
    CHECK_REL(n1, sqrt(s), 1e-12);
    CHECK_NEAR(sqrt(after), 10.0, 1e-5 * 10.0);
}
