/* tests/data/test_patches.c — Bragg-peak patches: the sample-peaks INI, the
 * Poisson sampler, simulated patches (thread-count independence, centres, noise),
 * the patch file round trip and its read errors, and the BraggNN import
 * (crop, zero padding, filters, bad files) on small hand-made HDF5 files. */
#include "braggflow/data.h"
#include "data/data_internal.h"
#include "test.h"

#include <hdf5.h>
#include <unistd.h>

static void tmp_path(char *out, size_t outsz, const char *name)
{
    snprintf(out, outsz, "%s/%s", bf_test_tmp_dir(), name);
}

static int same_range(bf_range a, bf_range b)
{
    return a.lo == b.lo && a.hi == b.hi && a.log == b.log;
}

static int same_config(const bf_peaks_config *a, const bf_peaks_config *b)
{
    return a->seed == b->seed && a->count == b->count && a->size == b->size &&
           same_range(a->height, b->height) && same_range(a->sigma, b->sigma) &&
           same_range(a->gamma, b->gamma) && same_range(a->eta, b->eta) &&
           same_range(a->theta_deg, b->theta_deg) &&
           same_range(a->centre_offset, b->centre_offset) &&
           same_range(a->bg_level, b->bg_level) && same_range(a->bg_slope, b->bg_slope) &&
           same_range(a->read_sigma, b->read_sigma) && a->poisson == b->poisson &&
           a->neighbour_fraction == b->neighbour_fraction &&
           same_range(a->neighbour_distance, b->neighbour_distance) &&
           same_range(a->neighbour_height_ratio, b->neighbour_height_ratio);
}

/* ---- configuration ------------------------------------------------------------- */

BF_TEST(test_empty_peaks_ini_gives_the_documented_defaults)
{
    bf_peaks_config cfg, def;
    bf_error err = {0};
    CHECK(bf_peaks_config_parse("; nothing\n\n", "e.ini", &cfg, &err) == BF_OK);
    bf_peaks_config_defaults(&def);
    CHECK(same_config(&cfg, &def));
    CHECK(cfg.size == 11 && cfg.count == 1000 && cfg.seed == 0 && cfg.poisson == 1);
    CHECK(cfg.height.lo == 50 && cfg.height.hi == 5000 && cfg.height.log == 1);
    CHECK(cfg.bg_level.lo == 1 && cfg.bg_level.hi == 50 && !cfg.bg_level.log);
    CHECK(cfg.read_sigma.lo == 1 && cfg.read_sigma.hi == 3);
    CHECK(cfg.sigma.lo == 0.5 && cfg.sigma.hi == 2);
    CHECK(cfg.eta.lo == 0 && cfg.eta.hi == 1 && cfg.theta_deg.lo == 0 && cfg.theta_deg.hi == 180);
    CHECK(cfg.centre_offset.lo == -1 && cfg.centre_offset.hi == 1);
    CHECK(cfg.neighbour_fraction == 0.1);
}

BF_TEST(test_peaks_ini_reads_ranges_fixed_values_and_log_ranges)
{
    const char *text = "# comment\n"
                       "[run]\n"
                       "  seed = 18446744073709551615 ; max uint64\n"
                       "count: 7\n"
                       "patch_size = 15\n"
                       "[peak]\n"
                       "height = 100\n"
                       "sigma = log 0.7 1.4\n"
                       "gamma = uniform 1 3\n"
                       "eta = 0.25,0.5\n"
                       "[noise]\n"
                       "poisson = no\n"
                       "read_sigma = 0\n"
                       "[neighbour]\n"
                       "fraction = 1\n";
    bf_peaks_config cfg;
    bf_error err = {0};
    CHECK_MSG(bf_peaks_config_parse(text, "r.ini", &cfg, &err) == BF_OK, "%s", err.msg);
    CHECK(cfg.seed == UINT64_MAX && cfg.count == 7 && cfg.size == 15);
    CHECK(cfg.height.lo == 100 && cfg.height.hi == 100 && !cfg.height.log);
    CHECK(cfg.sigma.lo == 0.7 && cfg.sigma.hi == 1.4 && cfg.sigma.log);
    CHECK(cfg.gamma.lo == 1 && cfg.gamma.hi == 3 && !cfg.gamma.log);
    CHECK(cfg.eta.lo == 0.25 && cfg.eta.hi == 0.5);
    CHECK(cfg.poisson == 0 && cfg.read_sigma.lo == 0 && cfg.read_sigma.hi == 0);
    CHECK(cfg.neighbour_fraction == 1);
    CHECK(strcmp(cfg.config_text, text) == 0);
}

BF_TEST(test_peaks_ini_errors_name_file_line_section_and_key)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"[run]\ncount = 0\n", "b.ini:2: [run] count: 0 must be in 1..100000000"},
        {"[run]\npatch_size = 10\n", "b.ini:2: [run] patch_size: 10 must be odd, 5..63"},
        {"[run]\npatch_size = 3\n", "b.ini:2: [run] patch_size: 3 must be odd, 5..63"},
        {"[run]\nseed = -1\n", "b.ini:2: [run] seed: '-1' is not a whole number >= 0"},
        {"[peak]\n\nsigma = 2 1\n", "b.ini:3: [peak] sigma: '2 1': lo > hi"},
        {"[peak]\nsigma = 0 1\n", "b.ini:2: [peak] sigma: '0 1': must be > 0"},
        {"[peak]\ngamma = -1\n", "b.ini:2: [peak] gamma: '-1': must be > 0"},
        {"[peak]\neta = 0 1.5\n", "b.ini:2: [peak] eta: '0 1.5': must lie in [0, 1]"},
        {"[peak]\nheight = log 0 10\n", "b.ini:2: [peak] height: 'log 0 10': a log range needs lo > 0"},
        {"[peak]\nheight = 1 2 3\n",
         "b.ini:2: [peak] height: '1 2 3': expected 'lo hi', 'log lo hi' or one number"},
        {"[peak]\nheight = abc\n", "b.ini:2: [peak] height: 'abc': not a number"},
        {"[peak]\ncentre_offset = -6 6\n",
         "b.ini:2: [peak] centre_offset: |offset| <= 5 keeps the centre at least 0.5 px inside "
         "the patch"},
        {"[neighbour]\nfraction = 1.5\n", "b.ini:2: [neighbour] fraction: 1.5 must lie in [0, 1]"},
        {"[noise]\npoisson = maybe\n", "b.ini:2: [noise] poisson: 'maybe' is not yes or no"},
        {"[noise]\nread_sigma = -1 2\n", "b.ini:2: [noise] read_sigma: '-1 2': must be >= 0"},
        {"[peak]\nwidth = 1\n", "b.ini:2: [peak] width: unknown key"},
        {"[peak]\nsigma = 1\nsigma = 2\n", "b.ini:3: [peak] sigma: given twice (first on line 2)"},
        {"[run]\n[run]\n", "b.ini:2: [run]: section given twice (first on line 1)"},
        {"[peaks]\n",
         "b.ini:1: [peaks]: unknown section (expected run, peak, background, noise or neighbour)"},
        {"seed = 1\n", "b.ini:1: 'seed = 1' comes before any [section]"},
        {"[run]\nseed 1\n", "b.ini:2: 'seed 1' is not 'key = value' or '[section]'"},
        {"[run\n", "b.ini:1: '[run' is not a '[section]' header"},
        {"[run]\n= 1\n", "b.ini:2: missing key before '='"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        bf_peaks_config cfg;
        bf_error err = {0};
        CHECK_MSG(bf_peaks_config_parse(cases[k].text, "b.ini", &cfg, &err) != BF_OK, "case %zu",
                  k);
        CHECK_MSG(strcmp(err.msg, cases[k].msg) == 0, "case %zu: got '%s'", k, err.msg);
    }
}

BF_TEST(test_formatted_peaks_config_parses_back_to_the_same_config)
{
    bf_peaks_config cfg, back;
    bf_error err = {0};
    CHECK(bf_peaks_config_parse("[run]\nseed = 42\n[peak]\nheight = log 0.1 1e7\nsigma = 0.3\n"
                                "theta_deg = -12.5 33.333333333333336\n[noise]\npoisson = no\n",
                                "f.ini", &cfg, &err) == BF_OK);
    char text[8192];
    bf_peaks_config_format(&cfg, text, sizeof text);
    CHECK_MSG(bf_peaks_config_parse(text, "g.ini", &back, &err) == BF_OK, "%s\n%s", err.msg, text);
    CHECK(same_config(&cfg, &back));
    CHECK(strstr(text, "[neighbour]\nfraction = 0.1\ndistance = 4 7\n") != NULL);
}

BF_TEST(test_peaks_config_read_names_a_missing_file)
{
    bf_peaks_config cfg;
    bf_error err = {0};
    CHECK(bf_peaks_config_read("/nonexistent/p.ini", &cfg, &err) == BF_ERR_IO);
    CHECK(strstr(err.msg, "/nonexistent/p.ini") != NULL);
}

/* ---- Poisson ------------------------------------------------------------------- */

/* n draws: sample mean and variance match lambda within 5 standard errors (the
 * variance of a Poisson sample variance is ~ (lambda + 2 lambda^2) / n), and
 * Pearson's chi-square of the histogram against the pmf (bins with >= 20
 * expected counts, tails pooled) stays below df + 6 sqrt(2 df). */
static int poisson_ok(double lambda, char *why, size_t whysz)
{
    enum { MAXK = 6000 };
    const long n = 1000000;
    static long hist[MAXK + 1];
    memset(hist, 0, sizeof hist);
    bf_rng rng;
    bf_rng_init(&rng, 7, (uint64_t)(lambda * 1000));
    double sum = 0, sum2 = 0;
    for (long i = 0; i < n; i++) {
        double k = bf_poisson_draw(&rng, lambda);
        if (k != floor(k) || k < 0) {
            snprintf(why, whysz, "draw %g is not a count", k);
            return 0;
        }
        sum += k;
        sum2 += k * k;
        hist[k > MAXK ? MAXK : (int)k]++;
    }
    double mean = sum / n, var = (sum2 - n * mean * mean) / (n - 1);
    double se_mean = sqrt(lambda / n), se_var = sqrt((lambda + 2 * lambda * lambda) / n);
    /* bins of consecutive k with >= 20 expected draws; the rest (upper tail) joins the last */
    double chi2 = 0, e = 0, last_e = 0, closed_e = 0;
    long o = 0, last_o = 0, closed_o = 0;
    int bins = 0;
    for (int k = 0; k < MAXK; k++) {
        e += n * exp(-lambda + k * log(lambda) - lgamma(k + 1.0));
        o += hist[k];
        if (e >= 20) {
            chi2 += (o - e) * (o - e) / e;
            bins++;
            closed_e += e;
            closed_o += o;
            last_e = e;
            last_o = o;
            e = 0;
            o = 0;
        }
    }
    double tail_e = n - closed_e;
    long tail_o = n - closed_o;
    if (tail_e >= 20) {
        chi2 += (tail_o - tail_e) * (tail_o - tail_e) / tail_e;
        bins++;
    } else { /* merge into the last bin */
        chi2 -= (last_o - last_e) * (last_o - last_e) / last_e;
        double me = last_e + tail_e;
        long mo = last_o + tail_o;
        chi2 += (mo - me) * (mo - me) / me;
    }
    int df = bins - 1;
    double limit = df + 6 * sqrt(2.0 * df);
    snprintf(why, whysz, "lambda %g: mean %.6g (se %.3g), var %.6g (se %.3g), chi2 %.1f (df %d)",
             lambda, mean, se_mean, var, se_var, chi2, df);
    if (getenv("BF_TEST_VERBOSE"))
        fprintf(stderr, "%s\n", why);
    return fabs(mean - lambda) < 5 * se_mean && fabs(var - lambda) < 5 * se_var && chi2 < limit;
}

BF_TEST(test_poisson_draws_have_the_mean_variance_and_probabilities_of_a_poisson)
{
    char why[256];
    const double lambdas[] = {0.5, 5, 9.9, 10, 50, 5000}; /* Knuth below 10, PTRS from 10 */
    for (size_t k = 0; k < sizeof lambdas / sizeof lambdas[0]; k++)
        CHECK_MSG(poisson_ok(lambdas[k], why, sizeof why), "%s", why);
    bf_rng rng;
    bf_rng_init(&rng, 1, 1);
    CHECK(bf_poisson_draw(&rng, 0) == 0 && bf_poisson_draw(&rng, -3) == 0 &&
          bf_poisson_draw(&rng, NAN) == 0);
}

/* ---- simulation ---------------------------------------------------------------- */

static int same_patches(const bf_patches *a, const bf_patches *b)
{
    size_t n = (size_t)a->n, px = n * (size_t)(a->size * a->size);
    return a->n == b->n && a->size == b->size &&
           !memcmp(a->patches, b->patches, px * sizeof(float)) &&
           !memcmp(a->centre, b->centre, n * 2 * sizeof(double)) &&
           !memcmp(a->peak, b->peak, n * sizeof(bf_peak2d)) &&
           !memcmp(a->background, b->background, n * sizeof(bf_background2d)) &&
           !memcmp(a->read_sigma, b->read_sigma, n * sizeof(double)) &&
           !memcmp(a->neighbour, b->neighbour, n) &&
           !memcmp(a->neighbour_peak, b->neighbour_peak, n * sizeof(bf_peak2d));
}

BF_TEST(test_simulated_patches_do_not_depend_on_the_thread_count)
{
    bf_peaks_config cfg;
    bf_peaks_config_defaults(&cfg);
    cfg.count = 600;
    cfg.seed = 99;
    bf_patches a, b, c;
    bf_error err = {0};
    CHECK(bf_patches_simulate(&cfg, 1, &a, &err) == BF_OK);
    CHECK(bf_patches_simulate(&cfg, 3, &b, &err) == BF_OK);
    cfg.seed = 100;
    CHECK(bf_patches_simulate(&cfg, 2, &c, &err) == BF_OK);
    int same = same_patches(&a, &b), differs = !same_patches(&a, &c);
    CHECK(strcmp(a.kind, "simulated") == 0 && a.seed == 99);
    bf_patches_free(&a);
    bf_patches_free(&b);
    bf_patches_free(&c);
    CHECK(same);
    CHECK(differs);
}

BF_TEST(test_true_centres_fill_the_central_pixel_plus_half_a_pixel_and_neighbours_are_recorded)
{
    bf_peaks_config cfg;
    bf_peaks_config_defaults(&cfg);
    cfg.count = 4000;
    bf_patches p;
    bf_error err = {0};
    CHECK(bf_patches_simulate(&cfg, 2, &p, &err) == BF_OK);
    /* central pixel 5 spans [5, 6); +-0.5 px: [4.5, 6.5] */
    double lo = 1e9, hi = -1e9;
    long with_nb = 0;
    int ok = 1;
    for (long i = 0; i < p.n && ok; i++) {
        for (int k = 0; k < 2; k++) {
            double x = p.centre[2 * i + k];
            lo = fmin(lo, x);
            hi = fmax(hi, x);
        }
        ok &= p.centre[2 * i] == p.peak[i].row && p.centre[2 * i + 1] == p.peak[i].col;
        ok &= p.peak[i].sigma_u >= 0.5 && p.peak[i].sigma_v <= 2 && p.peak[i].eta >= 0 &&
              p.peak[i].eta <= 1 && p.peak[i].amplitude >= 50 && p.peak[i].amplitude <= 5000;
        ok &= p.read_sigma[i] >= 1 && p.read_sigma[i] <= 3;
        if (p.neighbour[i]) {
            with_nb++;
            const bf_peak2d *nb = &p.neighbour_peak[i];
            double d = hypot(nb->row - p.peak[i].row, nb->col - p.peak[i].col);
            double ratio = nb->amplitude / p.peak[i].amplitude;
            ok &= d >= 4 - 1e-9 && d <= 7 + 1e-9 && ratio >= 0.2 - 1e-12 && ratio <= 1 + 1e-12;
        } else {
            ok &= p.neighbour_peak[i].amplitude == 0;
        }
    }
    bf_patches_free(&p);
    CHECK(ok);
    CHECK(lo >= 4.5 && hi <= 6.5);
    CHECK(lo < 4.52 && hi > 6.48); /* the whole range is used */
    /* neighbours in 10 % of patches: binomial(4000, 0.1) sd = 19 */
    CHECK_MSG(labs(with_nb - 400) < 95, "%ld neighbours", with_nb);
}

BF_TEST(test_noise_free_patch_is_the_model_and_poisson_counts_are_whole_numbers)
{
    bf_peaks_config cfg;
    bf_error err = {0};
    CHECK(bf_peaks_config_parse("[run]\ncount = 50\npatch_size = 9\n[noise]\npoisson = no\n"
                                "read_sigma = 0\n[neighbour]\nfraction = 0.5\n",
                                "n.ini", &cfg, &err) == BF_OK);
    bf_patches p;
    CHECK(bf_patches_simulate(&cfg, 2, &p, &err) == BF_OK);
    int ok = 1, any_nb = 0;
    for (long i = 0; i < p.n; i++) {
        double img[81] = {0};
        bf_peak2d_add(&p.peak[i], 9, img);
        if (p.neighbour[i])
            bf_peak2d_add(&p.neighbour_peak[i], 9, img);
        any_nb |= p.neighbour[i];
        bf_background2d_add(&p.background[i], 9, img);
        for (int k = 0; k < 81; k++) {
            ok &= p.patches[i * 81 + k] == (float)img[k];
            ok &= img[k] >= 0; /* the background plane never goes negative */
        }
    }
    bf_patches_free(&p);
    CHECK(ok && any_nb);

    CHECK(bf_peaks_config_parse("[run]\ncount = 20\n[noise]\nread_sigma = 0\n", "p.ini", &cfg,
                                &err) == BF_OK);
    CHECK(bf_patches_simulate(&cfg, 1, &p, &err) == BF_OK);
    double total = 0;
    for (long k = 0; k < p.n * 121; k++) {
        ok &= p.patches[k] == floorf(p.patches[k]) && p.patches[k] >= 0;
        total += p.patches[k];
    }
    bf_patches_free(&p);
    CHECK(ok && total > 0);
}

/* ---- files --------------------------------------------------------------------- */

BF_TEST(test_simulated_patch_file_round_trips_every_array_and_attribute)
{
    bf_peaks_config cfg;
    bf_peaks_config_defaults(&cfg);
    cfg.count = 40;
    cfg.seed = 12345678901234ull;
    cfg.neighbour_fraction = 0.5;
    bf_patches p, q;
    bf_error err = {0};
    CHECK(bf_patches_simulate(&cfg, 2, &p, &err) == BF_OK);
    char path[4200];
    tmp_path(path, sizeof path, "sim.h5");
    CHECK_MSG(bf_patches_write_h5(&p, path, &err) == BF_OK, "%s", err.msg);
    CHECK_MSG(bf_patches_read_h5(path, &q, &err) == BF_OK, "%s", err.msg);
    int same = same_patches(&p, &q);
    int attrs = !strcmp(q.kind, "simulated") && q.seed == cfg.seed && !strcmp(q.source, p.source);
    int absent = !q.frame_index && !q.origin && !q.npeaks && !q.deviation;
    bf_peaks_config back;
    bf_status st = bf_peaks_config_parse(q.source, "attr", &back, &err);
    bf_patches_free(&p);
    bf_patches_free(&q);
    CHECK(same && attrs && absent);
    CHECK(st == BF_OK && same_config(&back, &cfg)); /* the config attribute reproduces the run */
}

BF_TEST(test_patch_file_with_a_nan_pixel_is_rejected_naming_patch_and_pixel)
{
    enum { S = 5, N = 20 };
    bf_patches p = {0};
    p.n = N;
    p.size = S;
    p.patches = calloc(N * S * S, sizeof(float));
    snprintf(p.kind, sizeof p.kind, "imported");
    p.patches[(17 * S + 3) * S + 4] = NAN;
    char path[4200], msg[4400];
    tmp_path(path, sizeof path, "nan.h5");
    bf_error err = {0};
    CHECK(bf_patches_write_h5(&p, path, &err) == BF_OK);
    bf_patches q;
    CHECK(bf_patches_read_h5(path, &q, &err) == BF_ERR_INVALID);
    snprintf(msg, sizeof msg, "%s: patches: patch 17 pixel (3, 4) is NaN", path);
    CHECK_MSG(strcmp(err.msg, msg) == 0, "%s", err.msg);
    CHECK(q.patches == NULL && q.n == 0);

    p.patches[(17 * S + 3) * S + 4] = -INFINITY;
    p.centre = calloc(N * 2, sizeof(double));
    p.centre[2 * 3 + 1] = NAN;
    CHECK(bf_patches_write_h5(&p, path, &err) == BF_OK); /* err already set: fine */
    bf_error err2 = {0};
    CHECK(bf_patches_read_h5(path, &q, &err2) == BF_ERR_INVALID);
    snprintf(msg, sizeof msg, "%s: patches: patch 17 pixel (3, 4) is infinite", path);
    CHECK_MSG(strcmp(err2.msg, msg) == 0, "%s", err2.msg);
    p.patches[(17 * S + 3) * S + 4] = 0;
    bf_error err3 = {0};
    CHECK(bf_patches_write_h5(&p, path, &err3) == BF_OK);
    CHECK(bf_patches_read_h5(path, &q, &err3) == BF_ERR_INVALID);
    snprintf(msg, sizeof msg, "%s: centre: patch 3 value 1 is NaN", path);
    CHECK_MSG(strcmp(err3.msg, msg) == 0, "%s", err3.msg);
    bf_patches_free(&p);
}

BF_TEST(test_empty_patches_are_not_written_and_other_files_are_not_patch_files)
{
    bf_patches p = {0};
    p.size = 11;
    char path[4200], msg[4400];
    tmp_path(path, sizeof path, "empty.h5");
    bf_error err = {0};
    CHECK(bf_patches_write_h5(&p, path, &err) == BF_ERR_INVALID);
    CHECK(access(path, F_OK) != 0);

    /* an HDF5 file with an empty patches dataset, and one without it */
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[3] = {0, 11, 11};
    hid_t sp = H5Screate_simple(3, dims, NULL);
    hid_t ds = H5Dcreate2(f, "patches", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Fclose(f);
    bf_patches q;
    bf_error e1 = {0};
    CHECK(bf_patches_read_h5(path, &q, &e1) == BF_ERR_INVALID);
    snprintf(msg, sizeof msg, "%s: patches: empty (no patches)", path);
    CHECK_MSG(strcmp(e1.msg, msg) == 0, "%s", e1.msg);

    f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    bf_error e2 = {0};
    CHECK(bf_patches_read_h5(path, &q, &e2) == BF_ERR_PARSE);
    snprintf(msg, sizeof msg, "%s: no dataset 'patches' (not a patch file)", path);
    CHECK_MSG(strcmp(e2.msg, msg) == 0, "%s", e2.msg);

    bf_error e3 = {0};
    CHECK(bf_patches_read_h5("/nonexistent/x.h5", &q, &e3) == BF_ERR_IO);
    CHECK(strcmp(e3.msg, "/nonexistent/x.h5: No such file or directory") == 0);
}
