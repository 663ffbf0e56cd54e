/* tests/data/test_measured_like.c — `sample` [measured]: Poisson noise has variance
 * = mean at the chosen total count, the background is the Chebyshev curve (checked
 * against cos(k acos u)), the zero shift moves a straight line by exactly s, the
 * same seed gives identical bytes, and the defaults leave the data as before. */
#include "braggflow/data.h"
#include "test.h"

static bf_status parse_example_config(const char *text, bf_sample_config *cfg, bf_error *err)
{
    char name[4200];
    snprintf(name, sizeof name, "%s/examples/test-inline.ini", bf_test_source_dir());
    return bf_sample_config_parse(text, name, cfg, err);
}

#define BASE_INI                                                                          \
    "[run]\nseed = 11\n[instrument]\ninstprm = instrument/nomad-like-bank4.instprm\n"     \
    "[class.cubic]\ncif = cif/NaCl.cif\ncount = 3\na = 5.5 5.7\n"

/* y = 1 at 20000 points, 2e6 counts: 100 counts a point, Poisson: mean 100 and
 * variance 100 (standard errors 0.07 and 1.0 for 20000 draws). */
BF_TEST(poisson_noise_has_variance_equal_to_the_mean_at_the_chosen_count)
{
    enum { N = 20000 };
    static double x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = 1000 + i, y[i] = 1;
    bf_measured_like ml = {.poisson_counts = 100.0 * N};
    bf_error err = {0};
    CHECK(bf_measured_like_apply(&ml, x, N, 7, 0, y, NULL, &err) == BF_OK);
    double s = 0, s2 = 0;
    for (int i = 0; i < N; i++) {
        double k = y[i] * 100; /* scaled back by sum / N = 1/100: counts again */
        CHECK_NEAR(k, floor(k + 0.5), 1e-9);
        s += k;
        s2 += k * k;
    }
    double mean = s / N, var = s2 / N - mean * mean;
    CHECK_NEAR(mean, 100, 0.35);  /* 5 standard errors */
    CHECK_NEAR(var, 100, 5.0);
}

BF_TEST(background_is_the_chebyshev_curve_times_the_pattern_maximum)
{
    enum { N = 501 };
    double x[N], y[N], y0[N];
    for (int i = 0; i < N; i++) {
        x[i] = 2000 * pow(1.001, i); /* a log grid, as TOF */
        y0[i] = y[i] = 50 * exp(-pow((i - 200) / 5.0, 2));
    }
    bf_measured_like ml = {.background_terms = 4, .background_lo = -0.1, .background_hi = 0.2};
    bf_measured_draw d;
    bf_error err = {0};
    CHECK(bf_measured_like_apply(&ml, x, N, 3, 5, y, &d, &err) == BF_OK);
    int distinct = 0;
    for (int k = 0; k < 4; k++) {
        CHECK(d.coeff[k] >= -0.1 && d.coeff[k] <= 0.2);
        distinct += k > 0 && d.coeff[k] != d.coeff[k - 1];
    }
    CHECK(distinct == 3 && d.coeff[4] == 0);
    for (int i = 0; i < N; i++) {
        double u = 2 * (x[i] - x[0]) / (x[N - 1] - x[0]) - 1, b = 0;
        u = fmin(1, fmax(-1, u));
        for (int k = 0; k < 4; k++)
            b += d.coeff[k] * cos(k * acos(u));
        CHECK_NEAR(y[i] - y0[i], 50 * b, 1e-9);
    }
}

BF_TEST(zero_shift_moves_the_pattern_by_the_drawn_shift)
{
    enum { N = 101 };
    double x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = 1000 + 2 * i, y[i] = 3 * x[i] + 1;
    bf_measured_like ml = {.zero_shift = 5};
    bf_measured_draw d;
    bf_error err = {0};
    CHECK(bf_measured_like_apply(&ml, x, N, 1, 2, y, &d, &err) == BF_OK);
    CHECK(d.shift != 0 && fabs(d.shift) <= 5);
    for (int i = 0; i < N; i++) {
        double t = x[i] - d.shift;
        double want = t < x[0] || t > x[N - 1] ? 0 : 3 * t + 1;
        CHECK_NEAR(y[i], want, 1e-9);
    }
}

BF_TEST(measured_like_sample_is_deterministic_and_off_by_default)
{
    static bf_sample_config plain, off, on;
    bf_error err = {0};
    CHECK_MSG(parse_example_config(BASE_INI, &plain, &err) == BF_OK, "%s", err.msg);
    CHECK(!bf_measured_like_on(&plain.measured));
    CHECK(plain.measured.background_hi == 0.05 && plain.measured.background_lo == 0);
    CHECK_MSG(parse_example_config(BASE_INI "[measured]\nbackground_terms = 0\npoisson_counts = 0\n",
                                   &off, &err) == BF_OK, "%s", err.msg);
    CHECK_MSG(parse_example_config(BASE_INI "[measured]\nbackground_terms = 3\n"
                                            "background_coeff = 0 0.1\npoisson_counts = 1e6\n"
                                            "zero_shift = 2\n",
                                   &on, &err) == BF_OK, "%s", err.msg);
    CHECK(on.measured.background_terms == 3 && on.measured.background_hi == 0.1 &&
          on.measured.poisson_counts == 1e6 && on.measured.zero_shift == 2);
    bf_dataset a = {0}, b = {0}, c = {0}, c2 = {0};
    CHECK_MSG(bf_dataset_simulate(&plain, 1, &a, &err) == BF_OK, "%s", err.msg);
    CHECK_MSG(bf_dataset_simulate(&off, 2, &b, &err) == BF_OK, "%s", err.msg);
    CHECK_MSG(bf_dataset_simulate(&on, 1, &c, &err) == BF_OK, "%s", err.msg);
    CHECK_MSG(bf_dataset_simulate(&on, 2, &c2, &err) == BF_OK, "%s", err.msg);
    size_t bytes = sizeof(float) * (size_t)a.n * (size_t)a.length;
    CHECK(memcmp(a.patterns, b.patterns, bytes) == 0); /* parts off: the noiseless data */
    CHECK(a.measured[0] == 0 && b.measured[0] == 0);
    CHECK(memcmp(c.patterns, c2.patterns, bytes) == 0); /* same seed, any threads */
    CHECK(memcmp(a.patterns, c.patterns, bytes) != 0);
    CHECK(memcmp(a.cells, c.cells, sizeof(double) * 6 * (size_t)a.n) == 0); /* cells kept */
    CHECK(strcmp(c.measured, "background_terms=3 background_coeff=0 0.10000000000000001 "
                             "poisson_counts=1000000 zero_shift=2") == 0);
    /* row 1 with the same draws by hand */
    double *y = malloc(sizeof(double) * (size_t)a.length);
    CHECK(y != NULL);
    for (int j = 0; j < a.length; j++)
        y[j] = a.patterns[a.length + j];
    CHECK(bf_measured_like_apply(&on.measured, a.x, a.length, 11, 1, y, NULL, &err) ==
          BF_OK);
    int same = 1;
    for (int j = 0; j < a.length; j++)
        same &= fabsf((float)y[j] - c.patterns[a.length + j]) <= 1e-3f * (1 + fabsf((float)y[j]));
    free(y);
    CHECK_MSG(same, "row 1 is not stream (seed ^ key, 1) applied to the noiseless row");

    /* the provenance attribute round-trips; absent when off */
    char path[4096];
    snprintf(path, sizeof path, "%s/m.h5", bf_test_tmp_dir());
    CHECK_MSG(bf_dataset_write_h5(&c, path, BF_LAYOUT_BRAGGFLOW, &err) == BF_OK, "%s", err.msg);
    bf_dataset r = {0};
    CHECK_MSG(bf_dataset_read_h5(path, &r, &err) == BF_OK, "%s", err.msg);
    CHECK(strcmp(r.measured, c.measured) == 0);
    bf_dataset_free(&r);
    CHECK_MSG(bf_dataset_write_h5(&a, path, BF_LAYOUT_BRAGGFLOW, &err) == BF_OK, "%s", err.msg);
    CHECK_MSG(bf_dataset_read_h5(path, &r, &err) == BF_OK, "%s", err.msg);
    CHECK(r.measured[0] == 0);
    bf_dataset_free(&r);
    bf_dataset_free(&a), bf_dataset_free(&b), bf_dataset_free(&c), bf_dataset_free(&c2);
}

static int config_rejects(const char *extra, const char *want)
{
    static bf_sample_config cfg;
    char text[2048];
    snprintf(text, sizeof text, "%s[measured]\n%s\n", BASE_INI, extra);
    bf_error err = {0};
    if (parse_example_config(text, &cfg, &err) == BF_OK) {
        fprintf(stderr, "  accepted '%s'\n", extra);
        return 0;
    }
    if (!strstr(err.msg, want)) {
        fprintf(stderr, "  '%s' lacks '%s'\n", err.msg, want);
        return 0;
    }
    return 1;
}

BF_TEST(measured_section_errors_name_the_line_and_key)
{
    CHECK(config_rejects("background_terms = 13", "test-inline.ini:10: [measured] "
                                                  "background_terms: 13 must be in 0..12"));
    CHECK(config_rejects("background_coeff = 0.2 0.1", "background_coeff: '0.2 0.1': need min"));
    CHECK(config_rejects("background_coeff = x", "background_coeff: 'x' is not 'min max'"));
    CHECK(config_rejects("poisson_counts = -1", "poisson_counts: -1 must be in [0, 1e15]"));
    CHECK(config_rejects("zero_shift = -1", "zero_shift: -1 must be >= 0"));
    CHECK(config_rejects("noise = 1", "[measured] noise: unknown key"));
}
