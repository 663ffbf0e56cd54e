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

/* ---- BraggNN import ------------------------------------------------------------ */

static void put(hid_t f, const char *name, hid_t type, int rank, const hsize_t *dims,
                const void *data)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (dims[0] > 0)
        H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(ds);
    H5Sclose(sp);
}

enum { NF = 2, FH = 20, FW = 20, NP = 5 };

/* frames (2, 20, 20): pixel value f * 1000 + r * 20 + c + 1 (never 0, so padding shows) */
static void write_frames(const char *path, int nan_frame)
{
    static float px[NF * FH * FW];
    for (int f = 0; f < NF; f++)
        for (int r = 0; r < FH; r++)
            for (int c = 0; c < FW; c++)
                px[(f * FH + r) * FW + c] = (float)(f * 1000 + r * 20 + c + 1);
    if (nan_frame >= 0)
        px[(nan_frame * FH + 8) * FW + 11] = NAN;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[3] = {NF, FH, FW};
    put(f, "frames", H5T_NATIVE_FLOAT, 3, dims, px);
    H5Fclose(f);
}

/* Five peaks: 0 kept (frame 1, inside), 1 npeaks = 2, 2 deviation 1, 3 deviation < 0,
 * 4 kept (frame 0, at the top-right corner). fidx_type: the type peak_fidx is stored as. */
static void write_peaks(const char *path, hid_t fidx_type, const uint32_t *fidx_override, long n)
{
    uint32_t fidx[NP] = {1, 1, 0, 0, 0};
    int64_t fidx64[NP];
    float row[NP] = {7.3f, 5, 5, 5, 0.2f}, col[NP] = {12.8f, 5, 5, 5, 19.6f};
    uint16_t npeaks[NP] = {1, 2, 1, 1, 1};
    float dev[NP] = {0.1f, 0.2f, 1.0f, -0.1f, 0.5f};
    if (fidx_override)
        memcpy(fidx, fidx_override, sizeof fidx);
    for (int i = 0; i < NP; i++)
        fidx64[i] = fidx[i];
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[1] = {(hsize_t)n};
    put(f, "peak_fidx", fidx_type, 1, dims, fidx_type == H5T_NATIVE_INT64 ? (void *)fidx64 : fidx);
    put(f, "peak_row", H5T_NATIVE_FLOAT, 1, dims, row);
    put(f, "peak_col", H5T_NATIVE_FLOAT, 1, dims, col);
    put(f, "npeaks", H5T_NATIVE_UINT16, 1, dims, npeaks);
    put(f, "deviations", H5T_NATIVE_FLOAT, 1, dims, dev);
    H5Fclose(f);
}

static float frame_px(int f, long r, long c) { return (float)(f * 1000 + r * 20 + c + 1); }

BF_TEST(test_import_keeps_braggnn_rows_and_crops_with_its_zero_padding)
{
    char fr[4200], pk[4200], out[4200];
    tmp_path(fr, sizeof fr, "frames.h5");
    tmp_path(pk, sizeof pk, "peaks.h5");
    tmp_path(out, sizeof out, "imported.h5");
    write_frames(fr, -1);
    for (int variant = 0; variant < 2; variant++) {
        /* peak_fidx as uint32 (BraggNN) and as int64: the same patches */
        write_peaks(pk, variant ? H5T_NATIVE_INT64 : H5T_NATIVE_UINT32, NULL, NP);
        bf_patches p;
        bf_error err = {0};
        CHECK_MSG(bf_patches_import_braggnn(fr, pk, 7, &p, &err) == BF_OK, "%s", err.msg);
        CHECK(p.n == 2 && p.size == 7 && !strcmp(p.kind, "imported"));
        CHECK(p.frame_index[0] == 1 && p.frame_index[1] == 0); /* file order */
        CHECK(p.npeaks[0] == 1 && p.deviation[0] == 0.1f && p.deviation[1] == 0.5f);
        /* peak 0 at (7.3, 12.8): rows 7-3 .. 7+3, columns 12-3 .. 12+3 */
        CHECK(p.origin[0] == 4 && p.origin[1] == 9);
        CHECK_NEAR(p.centre[0], (double)7.3f - 4, 1e-12);
        CHECK_NEAR(p.centre[1], (double)12.8f - 9, 1e-12);
        for (int a = 0; a < 7; a++)
            for (int b = 0; b < 7; b++)
                CHECK(p.patches[a * 7 + b] == frame_px(1, 4 + a, 9 + b));
        /* peak 4 at (0.2, 19.6): nominal rows -3..3 keep frame rows 0..3, the 3 missing
         * rows split 1 before / 2 after; columns 16..22 keep 16..19, 1 before / 2 after */
        CHECK(p.origin[2] == -1 && p.origin[3] == 15);
        CHECK_NEAR(p.centre[2], (double)0.2f + 1, 1e-12);
        CHECK_NEAR(p.centre[3], (double)19.6f - 15, 1e-12);
        const float *q = p.patches + 49;
        for (int a = 0; a < 7; a++)
            for (int b = 0; b < 7; b++) {
                int inside = a >= 1 && a <= 4 && b >= 1 && b <= 4;
                CHECK_MSG(q[a * 7 + b] == (inside ? frame_px(0, a - 1, 15 + b) : 0.0f),
                          "pixel (%d, %d) = %g", a, b, q[a * 7 + b]);
            }
        CHECK(strstr(p.source, "frames=") && strstr(p.source, "sha256=") &&
              strstr(p.source, "size=7"));
        if (variant == 0) { /* the imported layout round-trips */
            bf_patches back;
            CHECK(bf_patches_write_h5(&p, out, &err) == BF_OK);
            CHECK_MSG(bf_patches_read_h5(out, &back, &err) == BF_OK, "%s", err.msg);
            int same = back.n == 2 && !memcmp(back.patches, p.patches, 98 * sizeof(float)) &&
                       !memcmp(back.origin, p.origin, 4 * sizeof(int32_t)) &&
                       !memcmp(back.centre, p.centre, 4 * sizeof(double)) &&
                       !memcmp(back.frame_index, p.frame_index, 2 * sizeof(uint32_t)) &&
                       back.npeaks[1] == 1 && back.deviation[1] == 0.5f && !back.peak &&
                       !strcmp(back.source, p.source) && !strcmp(back.kind, "imported");
            bf_patches_free(&back);
            CHECK(same);
        }
        bf_patches_free(&p);
    }
}

BF_TEST(test_import_rejects_bad_frame_indices_lengths_ranks_and_empty_files)
{
    char fr[4200], pk[4200], want[9000];
    tmp_path(fr, sizeof fr, "frames2.h5");
    tmp_path(pk, sizeof pk, "peaks2.h5");
    write_frames(fr, -1);
    bf_patches p;

    const uint32_t bad[NP] = {1, 1, 40, 0, 0}; /* a dropped row still needs a real frame */
    write_peaks(pk, H5T_NATIVE_UINT32, bad, NP);
    bf_error e1 = {0};
    CHECK(bf_patches_import_braggnn(fr, pk, 11, &p, &e1) == BF_ERR_INVALID);
    snprintf(want, sizeof want, "%s: peak_fidx: row 2 is 40, %s has 2 frames", pk, fr);
    CHECK_MSG(!strcmp(e1.msg, want), "%s", e1.msg);
    CHECK(p.n == 0 && p.patches == NULL);

    write_peaks(pk, H5T_NATIVE_UINT32, NULL, 0);
    bf_error e2 = {0};
    CHECK(bf_patches_import_braggnn(fr, pk, 11, &p, &e2) == BF_ERR_INVALID);
    snprintf(want, sizeof want, "%s: peak_fidx: empty (no peaks)", pk);
    CHECK_MSG(!strcmp(e2.msg, want), "%s", e2.msg);

    /* peak_row one shorter than the others */
    write_peaks(pk, H5T_NATIVE_UINT32, NULL, NP);
    hid_t f = H5Fopen(pk, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "peak_row", H5P_DEFAULT);
    float rows[4] = {1, 2, 3, 4};
    hsize_t d4[1] = {4};
    put(f, "peak_row", H5T_NATIVE_FLOAT, 1, d4, rows);
    H5Fclose(f);
    bf_error e3 = {0};
    CHECK(bf_patches_import_braggnn(fr, pk, 11, &p, &e3) == BF_ERR_INVALID);
    snprintf(want, sizeof want, "%s: peak_row has 4 rows but peak_fidx has 5", pk);
    CHECK_MSG(!strcmp(e3.msg, want), "%s", e3.msg);

    /* npeaks as (5, 1): wrong rank */
    write_peaks(pk, H5T_NATIVE_UINT32, NULL, NP);
    f = H5Fopen(pk, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "npeaks", H5P_DEFAULT);
    uint16_t np2[NP] = {1, 1, 1, 1, 1};
    hsize_t d51[2] = {NP, 1};
    put(f, "npeaks", H5T_NATIVE_UINT16, 2, d51, np2);
    H5Fclose(f);
    bf_error e4 = {0};
    CHECK(bf_patches_import_braggnn(fr, pk, 11, &p, &e4) == BF_ERR_PARSE);
    snprintf(want, sizeof want, "%s: npeaks: rank 2, expected 1 (one value per peak)", pk);
    CHECK_MSG(!strcmp(e4.msg, want), "%s", e4.msg);

    /* a NaN pixel inside a kept crop (frame 1, pixel (8, 11) is in peak 0's window) */
    write_peaks(pk, H5T_NATIVE_UINT32, NULL, NP);
    write_frames(fr, 1);
    bf_error e5 = {0};
    CHECK(bf_patches_import_braggnn(fr, pk, 7, &p, &e5) == BF_ERR_INVALID);
    snprintf(want, sizeof want, "%s: frames: frame 1 pixel (8, 11) is NaN", fr);
    CHECK_MSG(!strcmp(e5.msg, want), "%s", e5.msg);

    bf_error e6 = {0};
    CHECK(bf_patches_import_braggnn(fr, pk, 8, &p, &e6) == BF_ERR_INVALID);
    CHECK(!strcmp(e6.msg, "patch size 8 must be odd, 5..63"));
}

/* ---- choosing rows ----------------------------------------------------------------- */

BF_TEST(test_selected_rows_carry_every_array_in_the_order_asked_and_bad_rows_are_named)
{
    bf_peaks_config cfg;
    bf_peaks_config_defaults(&cfg);
    cfg.count = 6;
    cfg.seed = 4;
    cfg.neighbour_fraction = 0.5;
    bf_patches p, q;
    bf_error err = {0};
    CHECK(bf_patches_simulate(&cfg, 1, &p, &err) == BF_OK);
    const long rows[] = {5, 1, 1, 0};
    CHECK_MSG(bf_patches_select(&p, rows, 4, &q, &err) == BF_OK, "%s", err.msg);
    CHECK(q.n == 4 && q.size == 11 && q.seed == 4);
    CHECK(!strcmp(q.kind, "simulated") && !strcmp(q.source, p.source));
    for (int k = 0; k < 4; k++) {
        const long i = rows[k];
        CHECK(!memcmp(q.patches + (size_t)k * 121, p.patches + (size_t)i * 121,
                      121 * sizeof(float)));
        CHECK(q.centre[2 * k] == p.centre[2 * i] && q.centre[2 * k + 1] == p.centre[2 * i + 1]);
        CHECK(!memcmp(&q.peak[k], &p.peak[i], sizeof q.peak[k]));
        CHECK(!memcmp(&q.background[k], &p.background[i], sizeof q.background[k]));
        CHECK(q.read_sigma[k] == p.read_sigma[i] && q.neighbour[k] == p.neighbour[i]);
        CHECK(!memcmp(&q.neighbour_peak[k], &p.neighbour_peak[i], sizeof q.neighbour_peak[k]));
    }
    /* rows 5 and 0 are different patches: the copy is not of one row four times */
    CHECK(memcmp(q.patches, q.patches + 3 * 121, 121 * sizeof(float)));
    /* arrays the source lacks stay absent */
    CHECK(!q.frame_index && !q.origin && !q.npeaks && !q.deviation);
    bf_patches_free(&q);

    const long bad[] = {2, 6};
    CHECK(bf_patches_select(&p, bad, 2, &q, &err) == BF_ERR_RANGE);
    CHECK_MSG(strstr(err.msg, "row 1 is 6, the patches have 6"), "%s", err.msg);
    CHECK(q.n == 0 && !q.patches);
    const long neg[] = {-1};
    CHECK(bf_patches_select(&p, neg, 1, &q, &err) == BF_ERR_RANGE);
    CHECK(bf_patches_select(&p, rows, 0, &q, &err) == BF_ERR_INVALID);
    bf_patches_free(&p);
}

BF_TEST(test_patch_row_ranges_are_the_slices_of_the_whole_read)
{
    bf_peaks_config cfg;
    bf_peaks_config_defaults(&cfg);
    cfg.count = 30;
    cfg.seed = 4242;
    cfg.neighbour_fraction = 0.5;
    bf_patches p, whole;
    bf_error err = {0};
    CHECK(bf_patches_simulate(&cfg, 2, &p, &err) == BF_OK);
    char path[4200];
    tmp_path(path, sizeof path, "rows.h5");
    CHECK_MSG(bf_patches_write_h5(&p, path, &err) == BF_OK, "%s", err.msg);
    long n = 0;
    CHECK_MSG(bf_patches_h5_count(path, &n, &err) == BF_OK && n == 30, "%s", err.msg);
    CHECK_MSG(bf_patches_read_h5(path, &whole, &err) == BF_OK, "%s", err.msg);
    const long ranges[][2] = {{0, 30}, {0, 1}, {7, 13}, {29, 1}};
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        long f = ranges[r][0], c = ranges[r][1];
        bf_patches part, slice;
        CHECK_MSG(bf_patches_read_h5_rows(path, f, c, &part, &err) == BF_OK, "%s", err.msg);
        long rows[30];
        for (long i = 0; i < c; i++)
            rows[i] = f + i;
        CHECK(bf_patches_select(&whole, rows, c, &slice, &err) == BF_OK);
        CHECK_MSG(same_patches(&part, &slice), "rows %ld+%ld", f, c);
        CHECK(!strcmp(part.kind, whole.kind) && part.seed == whole.seed &&
              !strcmp(part.source, whole.source));
        bf_patches_free(&part);
        bf_patches_free(&slice);
    }
    bf_patches q;
    bf_error e = {0};
    CHECK(bf_patches_read_h5_rows(path, 20, 11, &q, &e) == BF_ERR_RANGE);
    CHECK_MSG(strstr(e.msg, "rows.h5") != NULL, "%s", e.msg);
    CHECK(q.patches == NULL);
    bf_patches_free(&whole);
    bf_patches_free(&p);
}

BF_TEST(test_a_nan_pixel_in_a_patch_range_is_named_by_its_row_in_the_file)
{
    enum { S = 5, N = 20 };
    bf_patches p = {0};
    p.n = N;
    p.size = S;
    p.patches = calloc(N * S * S, sizeof(float));
    snprintf(p.kind, sizeof p.kind, "imported");
    p.patches[(17 * S + 3) * S + 4] = NAN;
    char path[4200], msg[4400];
    tmp_path(path, sizeof path, "nan_rows.h5");
    bf_error err = {0};
    CHECK(bf_patches_write_h5(&p, path, &err) == BF_OK);
    bf_patches q;
    CHECK_MSG(bf_patches_read_h5_rows(path, 0, 10, &q, &err) == BF_OK, "%s", err.msg);
    bf_patches_free(&q);
    CHECK(bf_patches_read_h5_rows(path, 10, 10, &q, &err) == BF_ERR_INVALID);
    snprintf(msg, sizeof msg, "%s: patches: patch 17 pixel (3, 4) is NaN", path);
    CHECK_MSG(strcmp(err.msg, msg) == 0, "%s", err.msg);
    bf_patches_free(&p);
}
