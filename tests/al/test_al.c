/* tests/al/test_al.c — active learning (DESIGN §5; seed 001 Sec. II, Eq. 4): the
 * study set, acquisition weights, the multinomial, the three proposal policies and
 * the 1-D Eq. 4 density. Statistical checks use fixed seeds and margins of several
 * standard deviations, so they are deterministic and not flaky. */
#include "braggflow/al.h"
#include "test.h"

static bf_class_spec builtin(const char *name)
{
    bf_class_spec c;
    bf_error err = {0};
    if (bf_class_builtin(name, &c, &err) != BF_OK) {
        fprintf(stderr, "bf_class_builtin(%s): %s\n", name, err.msg);
        abort();
    }
    return c;
}

/* trigonal, tetragonal, cubic: labels 0, 1, 2 as in the seed. */
static void three_classes(bf_class_spec cls[3])
{
    cls[0] = builtin("trigonal");
    cls[1] = builtin("tetragonal");
    cls[2] = builtin("cubic");
}

static double param(const bf_cell *c, int p)
{
    const double v[BF_N_CELL_PARAMS] = {c->a, c->b, c->c, c->alpha, c->beta, c->gamma};
    return v[p];
}

static int cells_equal(const bf_cell *x, const bf_cell *y)
{
    return memcmp(x, y, sizeof *x) == 0;
}

/* Model outputs (n, C + 4) with N(0, scale^2) entries. */
static float *random_outputs(long n, int C, uint64_t seed, double scale)
{
    float *out = malloc((size_t)n * (size_t)(C + 4) * sizeof *out);
    bf_rng rng;
    bf_rng_init(&rng, seed, 0);
    for (long i = 0; i < n * (C + 4); i++)
        out[i] = (float)(scale * bf_rng_normal(&rng));
    return out;
}

/* A study set built by hand (cells placed where a test needs them). */
static void hand_study(bf_study_set *s, const bf_class_spec *classes, const bf_cell *cells,
                       const int32_t *class_index, long n)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->cells = malloc((size_t)n * sizeof *s->cells);
    s->labels = malloc((size_t)n * sizeof *s->labels);
    s->class_index = malloc((size_t)n * sizeof *s->class_index);
    for (long i = 0; i < n; i++) {
        s->cells[i] = cells[i];
        s->class_index[i] = class_index[i];
        s->labels[i] = classes[class_index[i]].label;
    }
}

static double sum(const double *w, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++)
        s += w[i];
    return s;
}

/* Every cell is accepted by the class its label names. */
static int all_accepted(const bf_class_spec *classes, int n_classes, const bf_cell *cells,
                        const int32_t *labels, long n)
{
    for (long j = 0; j < n; j++) {
        int ok = 0;
        for (int c = 0; c < n_classes; c++)
            if (classes[c].label == labels[j])
                ok = bf_class_accepts(&classes[c], &cells[j]);
        if (!ok) {
            fprintf(stderr, "  cell %ld (label %d) %g %g %g %g %g %g rejected\n", j,
                    (int)labels[j], cells[j].a, cells[j].b, cells[j].c, cells[j].alpha,
                    cells[j].beta, cells[j].gamma);
            return 0;
        }
    }
    return 1;
}

/* ---- policy names and defaults --------------------------------------------------------------- */

BF_TEST(test_kind_parse_knows_the_three_policies_and_rejects_foo_naming_it)
{
    const bf_al_kind kinds[] = {BF_AL_UNIFORM, BF_AL_SEED_MIX, BF_AL_GAUSSIAN_MIXTURE};
    for (int k = 0; k < 3; k++) {
        bf_al_kind got;
        bf_error err = {0};
        CHECK(bf_al_kind_parse(bf_al_kind_name(kinds[k]), &got, &err) == BF_OK);
        CHECK(got == kinds[k]);
    }
    CHECK(strcmp(bf_al_kind_name(BF_AL_SEED_MIX), "seed-mix") == 0);
    CHECK(strcmp(bf_al_kind_name(BF_AL_GAUSSIAN_MIXTURE), "gaussian-mixture") == 0);
    CHECK(strcmp(bf_al_kind_name(BF_AL_UNIFORM), "uniform") == 0);
    bf_al_kind got;
    bf_error err = {0};
    CHECK(bf_al_kind_parse("foo", &got, &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "'foo'") != NULL, "%s", err.msg);
}

BF_TEST(test_defaults_use_the_seed_stds_and_a_thousandth_of_the_box_for_other_classes)
{
    bf_class_spec cls[4];
    three_classes(cls);
    cls[3] = builtin("tetragonal");
    snprintf(cls[3].name, sizeof cls[3].name, "squat");
    cls[3].rule[BF_P_C].lo = 2.0;
    cls[3].rule[BF_P_C].hi = 6.0;
    bf_al_policy p;
    bf_al_policy_defaults(&p, BF_AL_SEED_MIX, cls, 4);
    CHECK(p.kind == BF_AL_SEED_MIX && p.mix_reg == 0.5 && p.mix_cls == 0.5 && p.tau == 1.0);
    for (int c = 0; c < BF_MAX_CLASSES; c++)
        CHECK(p.prior[c] == 1.0);
    CHECK(p.std[0][BF_P_A] == 2e-3 && p.std[0][BF_P_ALPHA] == 0.3);
    CHECK(p.std[1][BF_P_A] == 2e-3 && p.std[1][BF_P_C] == 2e-3);
    CHECK(p.std[2][BF_P_A] == 1e-4);
    CHECK_NEAR(p.std[3][BF_P_A], 1e-3, 1e-15);  /* box 3.5..4.5 */
    CHECK_NEAR(p.std[3][BF_P_C], 4e-3, 1e-15);  /* box 2..6 */
    /* fixed and tied parameters follow the free ones: no spread of their own */
    const int not_free[][2] = {{0, BF_P_B}, {0, BF_P_GAMMA}, {1, BF_P_B}, {1, BF_P_ALPHA},
                               {2, BF_P_C}, {2, BF_P_BETA}, {3, BF_P_GAMMA}};
    for (size_t k = 0; k < sizeof not_free / sizeof not_free[0]; k++)
        CHECK(p.std[not_free[k][0]][not_free[k][1]] == 0);
}

/* ---- study set ------------------------------------------------------------------------------- */

BF_TEST(test_study_set_is_an_equally_spaced_sweep_of_cell_centres_with_per_class_points)
{
    bf_class_spec cls[3];
    three_classes(cls);
    const long per_class = 390; /* 2 free parameters: k = 20 (19^2 = 361 < 390 <= 400) */
    bf_study_set s;
    bf_error err = {0};
    CHECK_MSG(bf_study_set_make(cls, 3, per_class, &s, &err) == BF_OK, "%s", err.msg);
    long n_of[3] = {0};
    for (long i = 0; i < s.n; i++)
        n_of[s.class_index[i]]++;
    for (int c = 0; c < 3; c++) {
        int f = bf_class_n_free(&cls[c]);
        for (int p = 0; p < BF_N_CELL_PARAMS; p++) {
            const bf_param_rule *r = &cls[c].rule[p];
            if (r->kind != BF_PARAM_FREE) {
                CHECK(s.step[c][p] == 0);
                continue;
            }
            long k = lround((r->hi - r->lo) / s.step[c][p]);
            long kf = 1, km1f = 1;
            for (int j = 0; j < f; j++) {
                kf *= k;
                km1f *= k - 1;
            }
            CHECK_MSG(kf >= per_class && km1f < per_class, "class %s: k = %ld", cls[c].name, k);
            CHECK(n_of[c] <= kf);
            /* the distinct values are lo + step/2, lo + 3 step/2, ..., hi - step/2 */
            double *v = malloc((size_t)k * sizeof *v);
            long nv = 0;
            for (long i = 0; i < s.n; i++) {
                if (s.class_index[i] != c)
                    continue;
                double x = param(&s.cells[i], p);
                long t = lround((x - r->lo) / s.step[c][p] - 0.5);
                CHECK(t >= 0 && t < k);
                CHECK_NEAR(x, r->lo + (t + 0.5) * s.step[c][p], 1e-9);
                int seen = 0;
                for (long j = 0; j < nv; j++)
                    seen |= v[j] == x;
                if (!seen)
                    v[nv++] = x;
            }
            CHECK_MSG(nv == k, "class %s %s: %ld distinct values, k = %ld", cls[c].name,
                      bf_cell_param_names[p], nv, k);
            free(v);
        }
    }
    /* cubic keeps every point of its 1-D sweep; tetragonal loses the a = c diagonal */
    CHECK(n_of[2] == per_class);
    CHECK(n_of[1] == 400 - 20);
    for (long i = 0; i < s.n; i++)
        CHECK(s.labels[i] == cls[s.class_index[i]].label);
    /* classes in the order given */
    for (long i = 1; i < s.n; i++)
        CHECK(s.class_index[i] >= s.class_index[i - 1]);
    bf_study_set_free(&s);
    CHECK(s.cells == NULL && s.n == 0);
}

BF_TEST(test_study_points_lie_inside_their_boxes_and_satisfy_the_class_constraints)
{
    bf_class_spec cls[3];
    three_classes(cls);
    /* from 2: a 1-point tetragonal sweep is its box centre, a = c (see the next test) */
    for (long per_class = 2; per_class <= 2000; per_class = per_class * 3 + 1) {
        bf_study_set s;
        bf_error err = {0};
        CHECK_MSG(bf_study_set_make(cls, 3, per_class, &s, &err) == BF_OK, "%s", err.msg);
        for (long i = 0; i < s.n; i++) {
            CHECK(bf_class_accepts(&cls[s.class_index[i]], &s.cells[i]));
            for (int p = 0; p < BF_N_CELL_PARAMS; p++) {
                const bf_param_rule *r = &cls[s.class_index[i]].rule[p];
                if (r->kind == BF_PARAM_FREE) /* cell centres: never on an edge */
                    CHECK(param(&s.cells[i], p) > r->lo && param(&s.cells[i], p) < r->hi);
            }
        }
        bf_study_set_free(&s);
    }
}

BF_TEST(test_study_set_rejects_bad_sizes_and_a_class_whose_sweep_keeps_no_point)
{
    bf_class_spec cls[3];
    three_classes(cls);
    bf_study_set s;
    bf_error e1 = {0}, e2 = {0}, e3 = {0}, e4 = {0};
    CHECK(bf_study_set_make(cls, 3, 0, &s, &e1) == BF_ERR_INVALID);
    CHECK_MSG(strstr(e1.msg, "per_class") != NULL, "%s", e1.msg);
    CHECK(bf_study_set_make(cls, 0, 10, &s, &e2) == BF_ERR_INVALID);
    CHECK_MSG(strstr(e2.msg, "n_classes") != NULL, "%s", e2.msg);
    CHECK(bf_study_set_make(cls, BF_MAX_CLASSES + 1, 10, &s, &e3) == BF_ERR_INVALID);
    /* per_class 1: tetragonal's single point is its box centre a = c = 4, which is cubic */
    bf_error e5 = {0};
    CHECK(bf_study_set_make(cls, 3, 1, &s, &e5) == BF_ERR_INVALID);
    CHECK_MSG(strstr(e5.msg, "study set: class tetragonal") != NULL, "%s", e5.msg);
    /* alpha in [89.9, 90.1]: every point breaks |alpha - 90| > 0.2 */
    cls[0].rule[BF_P_ALPHA].lo = 89.9;
    cls[0].rule[BF_P_ALPHA].hi = 90.1;
    CHECK(bf_study_set_make(cls, 3, 100, &s, &e4) == BF_ERR_INVALID);
    CHECK_MSG(strstr(e4.msg, "study set: class trigonal") != NULL, "%s", e4.msg);
    CHECK(s.cells == NULL && s.n == 0);
}

/* ---- weights --------------------------------------------------------------------------------- */

BF_TEST(test_weights_sum_to_one_for_every_policy)
{
    const bf_al_kind kinds[] = {BF_AL_UNIFORM, BF_AL_SEED_MIX, BF_AL_GAUSSIAN_MIXTURE};
    const long n = 1000;
    for (int k = 0; k < 3; k++) {
        for (uint64_t seed = 1; seed <= 5; seed++) {
            /* scale 30: log sigma^2 spans ~200 nats; exp must not overflow */
            float *out = random_outputs(n, 3, seed, seed == 5 ? 30.0 : 1.0);
            double w[1000];
            bf_al_policy p;
            bf_al_policy_defaults(&p, kinds[k], NULL, 0);
            bf_error err = {0};
            CHECK_MSG(bf_al_weights(&p, out, n, 3, w, &err) == BF_OK, "%s", err.msg);
            free(out);
            CHECK_NEAR(sum(w, n), 1.0, 1e-12);
            for (long i = 0; i < n; i++)
                CHECK(w[i] >= 0 && isfinite(w[i]));
        }
    }
}

BF_TEST(test_weights_of_identical_outputs_are_uniform_for_every_policy)
{
    const bf_al_kind kinds[] = {BF_AL_UNIFORM, BF_AL_SEED_MIX, BF_AL_GAUSSIAN_MIXTURE};
    const long n = 7;
    float out[7 * 7];
    for (long i = 0; i < n; i++) {
        const float row[7] = {0.3f, -1.0f, 2.0f, 0.1f, 0.2f, 0.3f, -4.0f};
        memcpy(out + i * 7, row, sizeof row);
    }
    for (int k = 0; k < 3; k++) {
        bf_al_policy p;
        bf_al_policy_defaults(&p, kinds[k], NULL, 0);
        double w[7];
        bf_error err = {0};
        CHECK(bf_al_weights(&p, out, n, 3, w, &err) == BF_OK);
        for (long i = 0; i < n; i++)
            CHECK_NEAR(w[i], 1.0 / 7, 1e-15);
    }
}

BF_TEST(test_seed_mix_weights_average_normalised_variance_and_normalised_entropy)
{
    /* s = log sigma^2 = log 1, log 2, log 3 -> w_reg = 1/6, 2/6, 3/6;
     * entropies log 3 (flat over 3), 0 (one-hot), log 2 (flat over 2) -> w_cls = H / log 6 */
    const float out[3 * 7] = {
        0, 0, 0, 9, 9, 9, 0.0f,
        1000, 0, 0, 9, 9, 9, (float)log(2.0),
        0, 0, -1e4f, 9, 9, 9, (float)log(3.0),
    };
    bf_al_policy p;
    bf_al_policy_defaults(&p, BF_AL_SEED_MIX, NULL, 0);
    double w[3];
    bf_error err = {0};
    CHECK(bf_al_weights(&p, out, 3, 3, w, &err) == BF_OK);
    const double l6 = log(6.0);
    CHECK_NEAR(w[0], 0.5 / 6 + 0.5 * log(3.0) / l6, 1e-7);
    CHECK_NEAR(w[1], 0.5 * 2 / 6 + 0.0, 1e-7);
    CHECK_NEAR(w[2], 0.5 * 3 / 6 + 0.5 * log(2.0) / l6, 1e-7);

    /* mixes are proportions: 0.3 / 0.3 is 0.5 / 0.5 */
    double w2[3];
    p.mix_reg = p.mix_cls = 0.3;
    CHECK(bf_al_weights(&p, out, 3, 3, w2, &err) == BF_OK);
    for (int i = 0; i < 3; i++)
        CHECK_NEAR(w2[i], w[i], 1e-15);

    /* all one-hot: sum H = 0, so the entropy term contributes uniformly */
    float confident[3 * 7];
    memcpy(confident, out, sizeof out);
    for (int i = 0; i < 3; i++) {
        confident[i * 7 + 0] = 1000;
        confident[i * 7 + 1] = confident[i * 7 + 2] = 0;
    }
    p.mix_reg = p.mix_cls = 0.5;
    CHECK(bf_al_weights(&p, confident, 3, 3, w, &err) == BF_OK);
    for (int i = 0; i < 3; i++)
        CHECK_NEAR(w[i], 0.5 * (i + 1) / 6.0 + 0.5 / 3, 1e-7);
}

BF_TEST(test_gaussian_mixture_weights_are_normalised_variances)
{
    /* Eq. 4: w_n = sigma^2_n / sum sigma^2_m; the logits do not matter */
    const float out[3 * 6] = {
        5, -1, 0, 0, 0, (float)log(4.0),
        0, 0, 0, 0, 0, (float)log(1.0),
        -3, 3, 0, 0, 0, (float)log(5.0),
    };
    bf_al_policy p;
    bf_al_policy_defaults(&p, BF_AL_GAUSSIAN_MIXTURE, NULL, 0);
    double w[3];
    bf_error err = {0};
    CHECK(bf_al_weights(&p, out, 3, 2, w, &err) == BF_OK);
    CHECK_NEAR(w[0], 0.4, 1e-7);
    CHECK_NEAR(w[1], 0.1, 1e-7);
    CHECK_NEAR(w[2], 0.5, 1e-7);
}

BF_TEST(test_weights_reject_non_finite_outputs_naming_the_study_point)
{
    float *out = random_outputs(10, 3, 1, 1.0);
    out[4 * 7 + 6] = NAN;
    bf_al_policy p;
    bf_al_policy_defaults(&p, BF_AL_SEED_MIX, NULL, 0);
    double w[10];
    bf_error err = {0};
    CHECK(bf_al_weights(&p, out, 10, 3, w, &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "study point 4") != NULL, "%s", err.msg);
    out[4 * 7 + 6] = 0;
    out[8 * 7 + 1] = INFINITY;
    bf_error err2 = {0};
    p.kind = BF_AL_GAUSSIAN_MIXTURE;
    CHECK(bf_al_weights(&p, out, 10, 3, w, &err2) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err2.msg, "study point 8") != NULL, "%s", err2.msg);
    free(out);
}

/* ---- multinomial ----------------------------------------------------------------------------- */

BF_TEST(test_multinomial_counts_sum_to_n_and_zero_weights_get_nothing)
{
    bf_rng wrng, rng;
    bf_rng_init(&wrng, 11, 0);
    bf_rng_init(&rng, 12, 0);
    const long Ns[] = {0, 1, 2, 7, 100, 12345, 300000};
    double w[200];
    long counts[200];
    for (int trial = 0; trial < 300; trial++) {
        long n = 1 + (long)(bf_rng_uniform(&wrng) * 200);
        for (long i = 0; i < n; i++) {
            double u = bf_rng_uniform(&wrng);
            /* a third zeros; the rest spread over 12 orders of magnitude */
            w[i] = u < 1.0 / 3 ? 0.0 : pow(10.0, -12 * bf_rng_uniform(&wrng));
        }
        if (trial % 10 == 0)
            w[n - 1] = 0; /* the last index with positive weight is not the last index */
        for (size_t k = 0; k < sizeof Ns / sizeof Ns[0]; k++) {
            long N = Ns[k];
            bf_multinomial(w, n, N, &rng, counts);
            long total = 0;
            int any_positive = 0;
            for (long i = 0; i < n; i++)
                any_positive |= w[i] > 0;
            for (long i = 0; i < n; i++) {
                CHECK(counts[i] >= 0);
                if (any_positive)
                    CHECK_MSG(w[i] > 0 || counts[i] == 0, "trial %d: w[%ld] = 0 got %ld", trial,
                              i, counts[i]);
                total += counts[i];
            }
            CHECK_MSG(total == N, "trial %d: sum %ld != N %ld", trial, total, N);
        }
    }
    /* a single positive weight takes everything */
    double one[5] = {0, 0, 3, 0, 0};
    bf_multinomial(one, 5, 1000, &rng, counts);
    CHECK(counts[2] == 1000);
}

BF_TEST(test_multinomial_counts_have_the_binomial_means_and_variances)
{
    bf_rng rng;
    bf_rng_init(&rng, 99, 0);
    /* small N: the inversion sampler; X_0 ~ Binomial(20, 0.3): mean 6, variance 4.2 */
    const double w[2] = {0.3, 0.7};
    long counts[3];
    const int reps = 20000;
    double m = 0, m2 = 0;
    for (int r = 0; r < reps; r++) {
        bf_multinomial(w, 2, 20, &rng, counts);
        m += counts[0];
        m2 += (double)counts[0] * counts[0];
    }
    m /= reps;
    double var = m2 / reps - m * m;
    CHECK_NEAR(m, 6.0, 0.08);   /* 5.5 standard errors */
    CHECK_NEAR(var, 4.2, 0.25); /* 6 standard errors */

    /* large N: the normal approximation; X_0 ~ Bin(4e5, 1/4), X_1 | X_0 ~ Bin(rest, 1/3) */
    const double w3[3] = {1, 1, 2};
    const int reps3 = 2000;
    double a = 0, a2 = 0, b = 0;
    for (int r = 0; r < reps3; r++) {
        bf_multinomial(w3, 3, 400000, &rng, counts);
        a += counts[0];
        a2 += (double)counts[0] * counts[0];
        b += counts[1];
    }
    a /= reps3;
    b /= reps3;
    CHECK_NEAR(a, 100000, 40);
    CHECK_NEAR(b, 100000, 40);
    CHECK_NEAR(a2 / reps3 - a * a, 75000, 12000);
}

/* ---- proposals ------------------------------------------------------------------------------- */

BF_TEST(test_seed_mix_and_gaussian_mixture_draws_satisfy_box_and_class_constraints)
{
    bf_class_spec cls[3];
    three_classes(cls);
    bf_study_set s;
    bf_error err = {0};
    CHECK(bf_study_set_make(cls, 3, 400, &s, &err) == BF_OK);
    const bf_al_kind kinds[] = {BF_AL_SEED_MIX, BF_AL_GAUSSIAN_MIXTURE};
    const double taus[] = {1.0, 30.0}; /* 30 steps: the Gaussians are wider than the boxes */
    const long N = 20000;
    bf_cell *cells = malloc(N * sizeof *cells);
    int32_t *labels = malloc(N * sizeof *labels);
    for (int k = 0; k < 2; k++) {
        for (int t = 0; t < 2; t++) {
            float *out = random_outputs(s.n, 3, 3 + t, 2.0);
            double *w = malloc((size_t)s.n * sizeof *w);
            bf_al_policy p;
            bf_al_policy_defaults(&p, kinds[k], cls, 3);
            p.tau = taus[t];
            if (t == 1) /* and seed-mix with stds of a few study steps */
                for (int c = 0; c < 3; c++)
                    for (int q = 0; q < BF_N_CELL_PARAMS; q++)
                        p.std[c][q] = 3 * s.step[c][q];
            CHECK(bf_al_weights(&p, out, s.n, 3, w, &err) == BF_OK);
            CHECK_MSG(bf_al_propose(&p, cls, 3, &s, w, N, 5, 1, cells, labels, &err) == BF_OK,
                      "%s", err.msg);
            CHECK(all_accepted(cls, 3, cells, labels, N));
            long per_label[3] = {0};
            for (long j = 0; j < N; j++) {
                CHECK(labels[j] >= 0 && labels[j] < 3);
                per_label[labels[j]]++;
            }
            CHECK(per_label[0] > 0 && per_label[1] > 0 && per_label[2] > 0);
            free(out);
            free(w);
        }
    }
    free(cells);
    free(labels);
    bf_study_set_free(&s);
}

/* Study points placed where the constraints bite: trigonal alpha 0.3 deg from 90 (the
 * gap is |alpha - 90| <= 0.2), tetragonal with c 0.0015 A above a (the gap |a - c| <=
 * 0.001), cubic 1e-4 A inside its box edge. */
static void near_constraints(bf_study_set *s, const bf_class_spec cls[3])
{
    bf_cell pts[3];
    bf_class_make_cell(&cls[0], (double[]){4.0, 90.3}, &pts[0]);
    bf_class_make_cell(&cls[1], (double[]){4.0, 4.0015}, &pts[1]);
    bf_class_make_cell(&cls[2], (double[]){2.5001}, &pts[2]);
    hand_study(s, cls, pts, (const int32_t[]){0, 1, 2}, 3);
    s->step[0][BF_P_A] = 0.05;
    s->step[0][BF_P_ALPHA] = 0.5;
    s->step[1][BF_P_A] = s->step[1][BF_P_C] = 0.002;
    s->step[2][BF_P_A] = 0.001;
}

BF_TEST(test_draws_near_the_constraint_gaps_are_rejected_on_both_policies)
{
    bf_class_spec cls[3];
    three_classes(cls);
    bf_study_set s;
    near_constraints(&s, cls);
    for (long i = 0; i < s.n; i++)
        CHECK(bf_class_accepts(&cls[i], &s.cells[i]));
    const double w[3] = {1, 1, 1};
    const long N = 30000;
    bf_cell *cells = malloc(N * sizeof *cells);
    int32_t *labels = malloc(N * sizeof *labels);
    const bf_al_kind kinds[] = {BF_AL_SEED_MIX, BF_AL_GAUSSIAN_MIXTURE};
    for (int k = 0; k < 2; k++) {
        bf_al_policy p;
        bf_al_policy_defaults(&p, kinds[k], cls, 3); /* seed stds: alpha 0.3, a, c 2e-3 */
        bf_error err = {0};
        CHECK_MSG(bf_al_propose(&p, cls, 3, &s, w, N, 17, 2, cells, labels, &err) == BF_OK, "%s",
                  err.msg);
        CHECK(all_accepted(cls, 3, cells, labels, N));
        /* the draws straddle the gaps: both sides occur, nothing inside */
        long above = 0, below = 0, a_gt_c = 0, a_lt_c = 0, cub = 0;
        for (long j = 0; j < N; j++) {
            if (labels[j] == BF_CLASS_TRIGONAL) {
                CHECK(fabs(cells[j].alpha - 90) > 0.2);
                above += cells[j].alpha > 90.2;
                below += cells[j].alpha < 89.8;
            } else if (labels[j] == BF_CLASS_TETRAGONAL) {
                CHECK(fabs(cells[j].a - cells[j].c) > 0.001);
                a_gt_c += cells[j].a > cells[j].c;
                a_lt_c += cells[j].a < cells[j].c;
            } else {
                CHECK(cells[j].a >= 2.5);
                cub++;
            }
        }
        CHECK_MSG(above > 100 && below > 100, "%s: alpha above %ld below %ld",
                  bf_al_kind_name(kinds[k]), above, below);
        CHECK_MSG(a_gt_c > 100 && a_lt_c > 100, "%s: a > c %ld, a < c %ld",
                  bf_al_kind_name(kinds[k]), a_gt_c, a_lt_c);
        CHECK(cub > 0);
    }
    free(cells);
    free(labels);
    bf_study_set_free(&s);
}

/* Seed 001 Eq. 4 on the cubic class (one free parameter): the histogram of sampled a
 * matches the normalised density, including the edges, where the box cuts the Gaussians. */
BF_TEST(test_gaussian_mixture_samples_follow_eq4_in_one_dimension)
{
    bf_class_spec cub = builtin("cubic");
    bf_study_set s;
    bf_error err = {0};
    CHECK(bf_study_set_make(&cub, 1, 12, &s, &err) == BF_OK);
    CHECK(s.n == 12);
    double w[12], centres[12];
    for (int i = 0; i < 12; i++) {
        w[i] = 1.0 + i;
        centres[i] = s.cells[i].a;
    }
    w[0] = 10; /* heavy weight on the edge point */
    bf_al_policy p;
    bf_al_policy_defaults(&p, BF_AL_GAUSSIAN_MIXTURE, &cub, 1);
    p.tau = 2.0;
    const double sd = p.tau * s.step[0][BF_P_A];
    const long N = 200000;
    bf_cell *cells = malloc(N * sizeof *cells);
    int32_t *labels = malloc(N * sizeof *labels);
    CHECK(bf_al_propose(&p, &cub, 1, &s, w, N, 2024, 0, cells, labels, &err) == BF_OK);
    enum { BINS = 30 };
    long hist[BINS] = {0};
    const double lo = 2.5, hi = 5.5, width = (hi - lo) / BINS;
    for (long j = 0; j < N; j++) {
        long b = (long)((cells[j].a - lo) / width);
        hist[b < BINS ? b : BINS - 1]++;
    }
    for (int b = 0; b < BINS; b++) {
        /* Simpson over the bin */
        const int m = 200;
        double h = width / m, acc = 0;
        for (int t = 0; t <= m; t++) {
            double x = lo + b * width + t * h;
            double f = bf_al_mixture_density_1d(centres, w, 12, sd, lo, hi, x);
            acc += f * (t == 0 || t == m ? 1 : (t % 2 ? 4 : 2));
        }
        double prob = acc * h / 3, expect = N * prob;
        double tol = 5 * sqrt(N * prob * (1 - prob)) + 1;
        CHECK_MSG(fabs(hist[b] - expect) <= tol, "bin %d: %ld drawn, %.1f expected (tol %.1f)", b,
                  hist[b], expect, tol);
    }
    free(cells);
    free(labels);
    bf_study_set_free(&s);
}

BF_TEST(test_gaussian_mixture_prior_weights_the_classes)
{
    /* two classes with identical boxes, so only the prior tells them apart */
    bf_class_spec cls[2] = {builtin("cubic"), builtin("cubic")};
    snprintf(cls[1].name, sizeof cls[1].name, "cubic2");
    cls[1].label = 3;
    bf_study_set s;
    bf_error err = {0};
    CHECK(bf_study_set_make(cls, 2, 50, &s, &err) == BF_OK);
    double *w = malloc((size_t)s.n * sizeof *w);
    for (long i = 0; i < s.n; i++)
        w[i] = 1;
    bf_al_policy p;
    bf_al_policy_defaults(&p, BF_AL_GAUSSIAN_MIXTURE, cls, 2);
    const long N = 40000;
    bf_cell *cells = malloc(N * sizeof *cells);
    int32_t *labels = malloc(N * sizeof *labels);
    p.prior[0] = 3;
    p.prior[1] = 1;
    CHECK(bf_al_propose(&p, cls, 2, &s, w, N, 1, 0, cells, labels, &err) == BF_OK);
    long n0 = 0;
    for (long j = 0; j < N; j++)
        n0 += labels[j] == cls[0].label;
    CHECK_NEAR((double)n0 / N, 0.75, 0.02); /* sd 0.002 */
    p.prior[1] = 0;
    CHECK(bf_al_propose(&p, cls, 2, &s, w, N, 1, 0, cells, labels, &err) == BF_OK);
    for (long j = 0; j < N; j++)
        CHECK(labels[j] == cls[0].label);
    p.prior[0] = 0;
    bf_error err2 = {0};
    CHECK(bf_al_propose(&p, cls, 2, &s, w, N, 1, 0, cells, labels, &err2) == BF_ERR_INVALID);
    free(w);
    free(cells);
    free(labels);
    bf_study_set_free(&s);
}

BF_TEST(test_eq4_density_integrates_to_one_for_narrow_and_very_wide_tau)
{
    const double lo = 3.5, hi = 4.5;
    const double centres[5] = {3.5, 3.52, 3.9, 4.1, 4.49}; /* some on or near the edges */
    const double w[5] = {5, 0.1, 1, 2, 7};                  /* not normalised */
    const double taus[] = {0.002, 0.01, 0.05, 0.3, 1.0, 50.0, 1e4};
    for (size_t t = 0; t < sizeof taus / sizeof taus[0]; t++) {
        const int m = 20000;
        const double h = (hi - lo) / m;
        double acc = 0;
        for (int k = 0; k <= m; k++) {
            double f = bf_al_mixture_density_1d(centres, w, 5, taus[t], lo, hi, lo + k * h);
            CHECK(f >= 0 && isfinite(f));
            acc += f * (k == 0 || k == m ? 1 : (k % 2 ? 4 : 2));
        }
        CHECK_MSG(fabs(acc * h / 3 - 1) <= 1e-6, "tau %g: integral %.12g", taus[t], acc * h / 3);
    }
    /* tau much larger than the box: the density tends to uniform */
    CHECK_NEAR(bf_al_mixture_density_1d(centres, w, 5, 1e4, lo, hi, 4.0), 1.0, 1e-6);
    CHECK(bf_al_mixture_density_1d(centres, w, 5, 0.1, lo, hi, 4.6) == 0);
}

static int run_policy(bf_al_kind kind, uint64_t seed, const bf_class_spec *cls,
                      const bf_study_set *s, const double *w, long N, bf_cell *cells,
                      int32_t *labels)
{
    bf_al_policy p;
    bf_al_policy_defaults(&p, kind, cls, 3);
    bf_error err = {0};
    bf_status st = bf_al_propose(&p, cls, 3, s, w, N, seed, 4, cells, labels, &err);
    if (st != BF_OK)
        fprintf(stderr, "  %s\n", err.msg);
    return st == BF_OK;
}

BF_TEST(test_policies_are_deterministic_for_a_seed_and_differ_for_another)
{
    bf_class_spec cls[3];
    three_classes(cls);
    bf_study_set s;
    bf_error err = {0};
    CHECK(bf_study_set_make(cls, 3, 100, &s, &err) == BF_OK);
    float *out = random_outputs(s.n, 3, 8, 1.0);
    double *w = malloc((size_t)s.n * sizeof *w);
    bf_al_policy p;
    bf_al_policy_defaults(&p, BF_AL_SEED_MIX, cls, 3);
    CHECK(bf_al_weights(&p, out, s.n, 3, w, &err) == BF_OK);
    const long N = 3000;
    bf_cell *c1 = malloc(N * sizeof *c1), *c2 = malloc(N * sizeof *c2),
            *c3 = malloc(N * sizeof *c3);
    int32_t *l1 = malloc(N * sizeof *l1), *l2 = malloc(N * sizeof *l2),
            *l3 = malloc(N * sizeof *l3);
    const bf_al_kind kinds[] = {BF_AL_UNIFORM, BF_AL_SEED_MIX, BF_AL_GAUSSIAN_MIXTURE};
    for (int k = 0; k < 3; k++) {
        CHECK(run_policy(kinds[k], 7, cls, &s, w, N, c1, l1));
        CHECK(run_policy(kinds[k], 7, cls, &s, w, N, c2, l2));
        CHECK(run_policy(kinds[k], 8, cls, &s, w, N, c3, l3));
        long differ = 0;
        for (long j = 0; j < N; j++) {
            CHECK(cells_equal(&c1[j], &c2[j]) && l1[j] == l2[j]);
            differ += !cells_equal(&c1[j], &c3[j]);
        }
        CHECK_MSG(differ > N / 2, "%s: only %ld of %ld cells differ for another seed",
                  bf_al_kind_name(kinds[k]), differ, N);
    }
    free(out);
    free(w);
    free(c1);
    free(c2);
    free(c3);
    free(l1);
    free(l2);
    free(l3);
    bf_study_set_free(&s);
}

BF_TEST(test_seed_mix_concentrates_samples_near_high_weight_points_in_study_order)
{
    bf_class_spec cub = builtin("cubic");
    bf_study_set s;
    bf_error err = {0};
    CHECK(bf_study_set_make(&cub, 1, 100, &s, &err) == BF_OK); /* step 0.03 A */
    double w[100];
    for (int i = 0; i < 100; i++)
        w[i] = 0.1 / 99;
    w[50] = 0.9;
    bf_al_policy p;
    bf_al_policy_defaults(&p, BF_AL_SEED_MIX, &cub, 1); /* std a 1e-4 A */
    const long N = 20000;
    bf_cell *cells = malloc(N * sizeof *cells);
    int32_t *labels = malloc(N * sizeof *labels);
    CHECK(bf_al_propose(&p, &cub, 1, &s, w, N, 31, 0, cells, labels, &err) == BF_OK);
    long near = 0, prev = -1;
    for (long j = 0; j < N; j++) {
        near += fabs(cells[j].a - s.cells[50].a) < 1e-3;
        /* output ordered by study point: the nearest point never goes back */
        long nearest = lround((cells[j].a - 2.5) / s.step[0][BF_P_A] - 0.5);
        CHECK(nearest >= prev);
        prev = nearest;
    }
    CHECK_MSG(fabs((double)near / N - 0.9) < 0.02, "%ld of %ld near the heavy point", near, N);
    free(cells);
    free(labels);
    bf_study_set_free(&s);
}

BF_TEST(test_uniform_splits_the_batch_evenly_over_classes_remainder_to_the_first)
{
    bf_class_spec cls[3];
    three_classes(cls);
    bf_al_policy p;
    bf_al_policy_defaults(&p, BF_AL_UNIFORM, cls, 3);
    bf_cell cells[3000];
    int32_t labels[3000];
    const long Ns[] = {10, 11, 2, 1, 3000};
    const long expect[][3] = {{4, 3, 3}, {4, 4, 3}, {1, 1, 0}, {1, 0, 0}, {1000, 1000, 1000}};
    for (int k = 0; k < 5; k++) {
        bf_error err = {0};
        /* the study set and weights are not needed */
        CHECK(bf_al_propose(&p, cls, 3, NULL, NULL, Ns[k], 3, 9, cells, labels, &err) == BF_OK);
        long off = 0;
        for (int c = 0; c < 3; c++)
            for (long j = 0; j < expect[k][c]; j++, off++)
                CHECK(labels[off] == cls[c].label);
        CHECK(off == Ns[k]);
        CHECK(all_accepted(cls, 3, cells, labels, Ns[k]));
    }
    /* uniform over the box: the cubic a averages to the box centre 4.0 (sd 0.016) */
    double mean = 0;
    for (long j = 2000; j < 3000; j++)
        mean += cells[j].a / 1000;
    CHECK_NEAR(mean, 4.0, 0.1);
    bf_error err = {0};
    CHECK(bf_al_propose(&p, cls, 3, NULL, NULL, 0, 3, 9, cells, labels, &err) == BF_OK);
}

BF_TEST(test_propose_gives_up_naming_the_class_and_point_when_every_draw_is_rejected)
{
    bf_class_spec cls[3];
    three_classes(cls);
    bf_cell pt;
    bf_class_make_cell(&cls[0], (double[]){4.0, 90.0}, &pt); /* in the alpha gap */
    bf_study_set s;
    hand_study(&s, cls, &pt, (const int32_t[]){0}, 1);
    s.step[0][BF_P_A] = 1e-6;
    s.step[0][BF_P_ALPHA] = 1e-6;
    const double w[1] = {1};
    bf_cell cells[4];
    int32_t labels[4];
    bf_al_policy p;
    bf_al_policy_defaults(&p, BF_AL_SEED_MIX, cls, 3);
    p.std[0][BF_P_ALPHA] = 1e-6;
    bf_error err = {0};
    CHECK(bf_al_propose(&p, cls, 3, &s, w, 4, 1, 0, cells, labels, &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "trigonal") && strstr(err.msg, "study point 0"), "%s", err.msg);
    p.kind = BF_AL_GAUSSIAN_MIXTURE;
    bf_error err2 = {0};
    CHECK(bf_al_propose(&p, cls, 3, &s, w, 4, 1, 0, cells, labels, &err2) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err2.msg, "trigonal") && strstr(err2.msg, "study point 0"), "%s", err2.msg);
    bf_study_set_free(&s);
}

BF_TEST(test_propose_rejects_bad_weights_naming_the_study_point)
{
    bf_class_spec cls[3];
    three_classes(cls);
    bf_study_set s;
    near_constraints(&s, cls);
    bf_cell cells[4];
    int32_t labels[4];
    const bf_al_kind kinds[] = {BF_AL_SEED_MIX, BF_AL_GAUSSIAN_MIXTURE};
    for (int k = 0; k < 2; k++) {
        bf_al_policy p;
        bf_al_policy_defaults(&p, kinds[k], cls, 3);
        bf_error e1 = {0}, e2 = {0}, e3 = {0};
        CHECK(bf_al_propose(&p, cls, 3, &s, (const double[]){1, NAN, 1}, 4, 1, 0, cells, labels,
                            &e1) == BF_ERR_INVALID);
        CHECK_MSG(strstr(e1.msg, "study point 1") != NULL, "%s", e1.msg);
        CHECK(bf_al_propose(&p, cls, 3, &s, (const double[]){1, 1, -1}, 4, 1, 0, cells, labels,
                            &e2) == BF_ERR_INVALID);
        CHECK_MSG(strstr(e2.msg, "study point 2") != NULL, "%s", e2.msg);
        CHECK(bf_al_propose(&p, cls, 3, &s, (const double[]){0, 0, 0}, 4, 1, 0, cells, labels,
                            &e3) == BF_ERR_INVALID);
    }
    bf_study_set_free(&s);
}
