/* tests/fit/test_fit.c — the conventional pseudo-Voigt fit (fit.h): parameters of
 * noiseless patches recovered, centre errors on simulated noisy patches, a
 * neighbouring peak masked, results independent of the thread count,
 * non-convergence flagged, bad patches named, and fits.h5 written and read back. */
#include <string.h>
#include <sys/stat.h>

#include "braggflow/fit.h"
#include "test.h"

/* renders peak + background at pixel centres into a float patch */
static void render(const bf_peak2d *p, const bf_background2d *bg, int S, float *out)
{
    double img[63 * 63] = {0};
    bf_peak2d_add(p, S, img);
    bf_background2d_add(bg, S, img);
    for (int k = 0; k < S * S; k++)
        out[k] = (float)img[k];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* simulated default patches (data.h bf_patches_simulate) */
static void simulate(long n, uint64_t seed, double neighbour_fraction, bf_patches *p)
{
    bf_peaks_config cfg;
    bf_peaks_config_defaults(&cfg);
    cfg.count = n;
    cfg.seed = seed;
    cfg.neighbour_fraction = neighbour_fraction;
    bf_error err = {0};
    if (bf_patches_simulate(&cfg, 0, p, &err) != BF_OK) {
        fprintf(stderr, "simulate: %s\n", err.msg);
        exit(2);
    }
}

BF_TEST(noiseless_patches_give_back_their_parameters)
{
    const bf_peak2d peaks[] = {
        {5.3, 5.8, 1.2, 0.8, 1.0, 1.5, 0.6, 0.4, 800},
        {4.6, 6.2, 0.7, 1.6, 1.3, 0.9, 2.2, 0.7, 150},
        {5.5, 5.5, 1.5, 1.0, 0.8, 1.8, 1.0, 0.25, 3000},
    };
    const bf_background2d bgs[] = {{10, 0.3, -0.2}, {3, 0, 0}, {40, -0.4, 0.1}};
    bf_fit_options o;
    bf_fit_options_defaults(&o);
    double worst_centre = 0;
    for (int t = 0; t < 3; t++) {
        float patch[121];
        render(&peaks[t], &bgs[t], 11, patch);
        bf_peak_fit f;
        bf_error err = {0};
        CHECK(bf_fit_patch(patch, 11, &o, &f, &err) == BF_OK);
        CHECK(f.converged);
        bf_peak2d want = peaks[t];
        bf_peak2d_canonical(&want);
        const bf_peak2d *p = &want;
        double dc = hypot(f.peak.row - p->row, f.peak.col - p->col);
        worst_centre = fmax(worst_centre, dc);
        /* measured: centre 2e-8 px (the pixels are float32) */
        CHECK_NEAR(f.peak.row, p->row, 1e-7);
        CHECK_NEAR(f.peak.col, p->col, 1e-7);
        CHECK_NEAR(f.peak.sigma_u, p->sigma_u, 1e-5);
        CHECK_NEAR(f.peak.sigma_v, p->sigma_v, 1e-5);
        CHECK_NEAR(f.peak.gamma_u, p->gamma_u, 1e-5);
        CHECK_NEAR(f.peak.gamma_v, p->gamma_v, 1e-5);
        CHECK_NEAR(f.peak.theta, p->theta, 1e-5);
        CHECK_NEAR(f.peak.eta, p->eta, 1e-5);
        CHECK_REL(f.peak.amplitude, p->amplitude, 1e-6);
        CHECK_NEAR(f.background.level, bgs[t].level, 1e-4);
        CHECK_NEAR(f.background.slope_row, bgs[t].slope_row, 1e-5);
        CHECK_NEAR(f.background.slope_col, bgs[t].slope_col, 1e-5);
        CHECK(f.chi2 < 1e-6);
        CHECK(f.masked == 0);
    }
    fprintf(stderr, "  worst noiseless centre error %.2e px\n", worst_centre);
}

/* Euclidean centre errors (px) of fits against the simulated truth, sorted */
static double *centre_errors(const bf_patches *p, const bf_peak_fit *f, double *mean)
{
    double *e = malloc((size_t)p->n * sizeof *e);
    *mean = 0;
    for (long i = 0; i < p->n; i++) {
        e[i] = hypot(f[i].peak.row - p->centre[2 * i], f[i].peak.col - p->centre[2 * i + 1]);
        *mean += e[i] / p->n;
    }
    qsort(e, (size_t)p->n, sizeof *e, cmp_double);
    return e;
}

BF_TEST(noisy_patches_centre_error_is_small)
{
    bf_patches p;
    simulate(1000, 11, 0.0, &p);
    bf_peak_fit *f = malloc((size_t)p.n * sizeof *f);
    bf_error err = {0};
    CHECK(bf_fit_patches(&p, NULL, 0, f, &err) == BF_OK);
    long conv = 0;
    for (long i = 0; i < p.n; i++)
        conv += f[i].converged;
    double mean;
    double *e = centre_errors(&p, f, &mean);
    const double p50 = e[p.n / 2], p95 = e[(long)(0.95 * p.n)];
    fprintf(stderr, "  no neighbours: mean %.4f p50 %.4f p95 %.4f px, %ld/%ld converged\n", mean,
            p50, p95, conv, p.n);
    /* measured: mean 0.058, p50 0.033, p95 0.19 px, 98.7 % converged */
    CHECK(mean < 0.06);
    CHECK(p50 < 0.04);
    CHECK(p95 < 0.2);
    CHECK(conv >= 0.98 * p.n);
    free(e);
    free(f);
    bf_patches_free(&p);
}

BF_TEST(a_neighbouring_peak_is_masked)
{
    /* a main peak at the centre and an equally bright one 4.5 px away along the row */
    const bf_peak2d main_peak = {5.4, 5.6, 1.1, 1.3, 1.2, 1.0, 0.3, 0.5, 1000};
    bf_peak2d nb = main_peak;
    nb.row += 4.5;
    const bf_background2d bg = {5, 0, 0};
    double img[121] = {0};
    bf_peak2d_add(&main_peak, 11, img);
    bf_peak2d_add(&nb, 11, img);
    bf_background2d_add(&bg, 11, img);
    float patch[121];
    for (int k = 0; k < 121; k++)
        patch[k] = (float)img[k];
    bf_fit_options o;
    bf_fit_options_defaults(&o);
    bf_peak_fit with, without;
    CHECK(bf_fit_patch(patch, 11, &o, &with, NULL) == BF_OK);
    o.mask_neighbour = 0;
    CHECK(bf_fit_patch(patch, 11, &o, &without, NULL) == BF_OK);
    const double e_with = hypot(with.peak.row - main_peak.row, with.peak.col - main_peak.col);
    const double e_without =
        hypot(without.peak.row - main_peak.row, without.peak.col - main_peak.col);
    fprintf(stderr, "  centre error with mask %.4f px (%d pixels masked), without %.4f px\n",
            e_with, with.masked, e_without);
    CHECK(with.masked > 0);
    CHECK(without.masked == 0);
    /* the masked pixels lie beyond the bisector towards the neighbour: row >= 7.65 */
    CHECK(with.masked == 3 * 11 + 5);
    CHECK(e_with < 0.16); /* measured 0.144: the neighbour's tail beyond the mask stays */
    CHECK(e_without > 4 * e_with);
}

BF_TEST(neighbours_in_ten_percent_of_patches_cost_little)
{
    bf_patches p;
    simulate(1000, 12, 0.1, &p);
    bf_peak_fit *f = malloc((size_t)p.n * sizeof *f);
    CHECK(bf_fit_patches(&p, NULL, 0, f, NULL) == BF_OK);
    double mean;
    double *e = centre_errors(&p, f, &mean);
    const double p95 = e[(long)(0.95 * p.n)], p995 = e[(long)(0.995 * p.n)];
    fprintf(stderr, "  10 %% neighbours: mean %.4f p95 %.4f p99.5 %.4f px\n", mean, p95, p995);
    /* measured: mean 0.062, p95 0.21, p99.5 0.64 px */
    CHECK(mean < 0.07);
    CHECK(p95 < 0.23);
    CHECK(p995 < 0.7);
    free(e);
    free(f);
    bf_patches_free(&p);
}

BF_TEST(results_do_not_depend_on_the_thread_count)
{
    bf_patches p;
    simulate(300, 5, 0.1, &p);
    bf_peak_fit *a = calloc((size_t)p.n, sizeof *a), *b = calloc((size_t)p.n, sizeof *b);
    CHECK(bf_fit_patches(&p, NULL, 1, a, NULL) == BF_OK);
    CHECK(bf_fit_patches(&p, NULL, 3, b, NULL) == BF_OK);
    for (long i = 0; i < p.n; i++)
        CHECK_MSG(memcmp(&a[i].peak, &b[i].peak, sizeof a[i].peak) == 0 &&
                      a[i].iterations == b[i].iterations && a[i].chi2 == b[i].chi2,
                  "patch %ld", i);
    /* and a patch fitted alone gives the same as in the batch */
    bf_peak_fit one;
    CHECK(bf_fit_patch(p.patches + 17 * 121, 11, NULL, &one, NULL) == BF_OK);
    CHECK(memcmp(&one.peak, &a[17].peak, sizeof one.peak) == 0);
    free(a);
    free(b);
    bf_patches_free(&p);
}

BF_TEST(a_fit_out_of_iterations_is_flagged_not_fatal)
{
    bf_patches p;
    simulate(50, 6, 0.0, &p);
    bf_peak_fit *f = malloc((size_t)p.n * sizeof *f);
    bf_fit_options o;
    bf_fit_options_defaults(&o);
    o.max_iter = 1;
    CHECK(bf_fit_patches(&p, &o, 2, f, NULL) == BF_OK);
    long conv = 0;
    for (long i = 0; i < p.n; i++) {
        conv += f[i].converged;
        CHECK(f[i].iterations >= 1 && f[i].iterations <= 2); /* pass 1 (+ a refit when masked) */
    }
    CHECK(conv == 0);
    free(f);
    bf_patches_free(&p);
}

BF_TEST(bad_patches_are_errors_naming_the_patch)
{
    bf_patches p;
    simulate(10, 7, 0.0, &p);
    bf_peak_fit f[10];
    bf_error err = {0};
    p.patches[3 * 121 + 2 * 11 + 4] = NAN;
    CHECK(bf_fit_patches(&p, NULL, 2, f, &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "patch 3") && strstr(err.msg, "pixel (2, 4) is NaN"), "%s",
              err.msg);
    p.patches[3 * 121 + 2 * 11 + 4] = INFINITY;
    memset(&err, 0, sizeof err);
    CHECK(bf_fit_patch(p.patches + 3 * 121, 11, NULL, f, &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "infinite"), "%s", err.msg);
    float flat[121];
    for (int k = 0; k < 121; k++)
        flat[k] = 4;
    memset(&err, 0, sizeof err);
    CHECK(bf_fit_patch(flat, 11, NULL, f, &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "flat"), "%s", err.msg);
    memset(&err, 0, sizeof err);
    CHECK(bf_fit_patch(flat, 2, NULL, f, &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "patch size 2"), "%s", err.msg);
    bf_fit_options o;
    bf_fit_options_defaults(&o);
    o.read_sigma = 0;
    memset(&err, 0, sizeof err);
    CHECK(bf_fit_patch(p.patches, 11, &o, f, &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "read_sigma"), "%s", err.msg);
    bf_patches_free(&p);
}

BF_TEST(fits_file_round_trips_and_is_written_atomically)
{
    bf_patches p;
    simulate(40, 8, 0.2, &p);
    bf_peak_fit *f = malloc((size_t)p.n * sizeof *f);
    CHECK(bf_fit_patches(&p, NULL, 2, f, NULL) == BF_OK);
    f[5].converged = 0; /* a flagged fit keeps its flag */
    char path[4200];
    snprintf(path, sizeof path, "%s/fits.h5", bf_test_tmp_dir());
    bf_error err = {0};
    CHECK_MSG(bf_fits_write_h5(f, p.n, 11, "patches.h5 sha256=abc", path, &err) == BF_OK, "%s",
              err.msg);
    bf_peak_fit *g = NULL;
    long n = 0;
    int S = 0;
    CHECK_MSG(bf_fits_read_h5(path, &g, &n, &S, &err) == BF_OK, "%s", err.msg);
    CHECK(n == p.n && S == 11);
    for (long i = 0; i < n; i++) {
        CHECK(memcmp(&g[i].peak, &f[i].peak, sizeof g[i].peak) == 0);
        CHECK(memcmp(&g[i].background, &f[i].background, sizeof g[i].background) == 0);
        CHECK(g[i].chi2 == f[i].chi2 && g[i].iterations == f[i].iterations);
        CHECK(g[i].converged == f[i].converged && g[i].masked == f[i].masked);
        CHECK(g[i].status == f[i].status);
    }
    free(g);
    /* a failed write leaves nothing behind */
    char bad[4200];
    snprintf(bad, sizeof bad, "%s/no-such-dir/fits.h5", bf_test_tmp_dir());
    memset(&err, 0, sizeof err);
    CHECK(bf_fits_write_h5(f, p.n, 11, "x", bad, &err) != BF_OK);
    CHECK_MSG(strstr(err.msg, "no-such-dir"), "%s", err.msg);
    /* a patch file is not a fits file */
    char pp[4200];
    snprintf(pp, sizeof pp, "%s/patches.h5", bf_test_tmp_dir());
    CHECK(bf_patches_write_h5(&p, pp, &err) == BF_OK);
    memset(&err, 0, sizeof err);
    CHECK(bf_fits_read_h5(pp, &g, &n, &S, &err) == BF_ERR_PARSE);
    CHECK_MSG(strstr(err.msg, "not a fits file"), "%s", err.msg);
    free(f);
    bf_patches_free(&p);
}

/* ---- fits as training labels (seed 002's loop, DESIGN §9) -------------------------- */

BF_TEST(labels_are_the_usable_fits_centres_without_the_simulated_truth)
{
    bf_patches p;
    simulate(12, 3, 0.3, &p);
    /* hand-made fits: every one converged, 0.25 px off the truth, then spoiled */
    bf_peak_fit f[12];
    memset(f, 0, sizeof f);
    for (int i = 0; i < 12; i++) {
        f[i].converged = 1;
        f[i].peak.row = p.centre[2 * i] + 0.25;
        f[i].peak.col = p.centre[2 * i + 1] - 0.25;
    }
    f[2].converged = 0;
    f[4].peak.row = -0.01;  /* outside the patch, above row 0 */
    f[7].peak.col = 11.0;   /* pixel 10 spans [10, 11): 11 is outside */
    f[9].peak.row = NAN;
    f[10].peak.col = 10.999; /* inside */
    bf_patches q;
    long rows[12], not_conv = -1, outside = -1;
    bf_error err = {0};
    CHECK_MSG(bf_patches_label_with_fits(&p, f, "fitted centres of x.h5", &q, rows, &not_conv,
                                         &outside, &err) == BF_OK,
              "%s", err.msg);
    CHECK(not_conv == 1 && outside == 3 && q.n == 8);
    const long want[] = {0, 1, 3, 5, 6, 8, 10, 11};
    for (int k = 0; k < 8; k++) {
        CHECK(rows[k] == want[k]);
        CHECK(q.centre[2 * k] == f[want[k]].peak.row);
        CHECK(q.centre[2 * k + 1] == f[want[k]].peak.col);
        CHECK(q.centre[2 * k] != p.centre[2 * want[k]]);
        CHECK(!memcmp(q.patches + (size_t)k * 121, p.patches + (size_t)want[k] * 121,
                      121 * sizeof(float)));
    }
    CHECK(!q.peak && !q.background && !q.read_sigma && !q.neighbour && !q.neighbour_peak);
    CHECK(!strcmp(q.kind, "fitted") && !strcmp(q.source, "fitted centres of x.h5"));

    /* what train reads back: the fitted centres, kind and source; no truth */
    char path[4200];
    snprintf(path, sizeof path, "%s/labels.h5", bf_test_tmp_dir());
    CHECK_MSG(bf_patches_write_h5(&q, path, &err) == BF_OK, "%s", err.msg);
    bf_patches r;
    CHECK_MSG(bf_patches_read_h5(path, &r, &err) == BF_OK, "%s", err.msg);
    CHECK(r.n == 8 && !strcmp(r.kind, "fitted") && !strcmp(r.source, q.source));
    CHECK(!memcmp(r.centre, q.centre, 16 * sizeof(double)) && !r.peak);
    bf_patches_free(&r);
    bf_patches_free(&q);

    /* no usable fit: an error that says why */
    for (int i = 0; i < 12; i++)
        f[i].converged = 0;
    CHECK(bf_patches_label_with_fits(&p, f, "x", &q, NULL, NULL, NULL, &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "none of 12 fits is usable (12 not converged"), "%s", err.msg);
    CHECK(q.n == 0 && !q.patches);
    bf_patches_free(&p);
}
