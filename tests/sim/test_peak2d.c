/* tests/sim/test_peak2d.c — the 2-D pseudo-Voigt of sim.h: known values (height,
 * Gaussian FWHM, Lorentzian half width, 90° rotation, pixel-centre convention,
 * background plane), the analytic gradient against central finite differences
 * (including theta and eta extremes) and add / eval_patch against eval. */
#include <string.h>

#include "braggflow/sim.h"
#include "test.h"

enum { NP = BF_PEAK2D_NPARAM + BF_BG2D_NPARAM };

static bf_peak2d peak_default(void)
{
    bf_peak2d p = {.row = 5.3, .col = 5.7, .sigma_u = 1.2, .sigma_v = 0.8, .gamma_u = 1.0,
                   .gamma_v = 1.5, .theta = 0.4, .eta = 0.3, .amplitude = 100.0};
    return p;
}

/* parameter k of the 12 (bf_peak2d then bf_background2d order) */
static double *param(bf_peak2d *p, bf_background2d *bg, int k)
{
    double *f[NP] = {&p->row,     &p->col,     &p->sigma_u,   &p->sigma_v,
                     &p->gamma_u, &p->gamma_v, &p->theta,     &p->eta,
                     &p->amplitude, &bg->level, &bg->slope_row, &bg->slope_col};
    return f[k];
}

BF_TEST(peak_height_at_its_centre_is_the_amplitude)
{
    bf_peak2d p = peak_default();
    bf_background2d bg = {0};
    for (int e = 0; e <= 2; e++) {
        p.eta = 0.5 * e;
        CHECK_NEAR(bf_peak2d_eval(&p, &bg, 11, p.row, p.col, NULL), 100.0, 1e-12);
    }
    bg.level = 7.0;
    bg.slope_row = 0.5;
    bg.slope_col = -0.25;
    /* bg is relative to (S/2, S/2) = (5.5, 5.5): 7 + 0.5 (5.3 - 5.5) - 0.25 (5.7 - 5.5) */
    CHECK_NEAR(bf_peak2d_eval(&p, &bg, 11, p.row, p.col, NULL), 100.0 + 7.0 - 0.1 - 0.05, 1e-12);
}

BF_TEST(gaussian_full_width_at_half_maximum_is_2_3548_sigma_along_u)
{
    bf_peak2d p = peak_default();
    p.eta = 0.0;
    p.theta = 0.0; /* u along columns */
    const double half = 0.5 * 2.0 * sqrt(2.0 * log(2.0)) * p.sigma_u;
    CHECK_NEAR(2.0 * half, 2.3548 * p.sigma_u, 1e-4 * p.sigma_u);
    CHECK_NEAR(bf_peak2d_eval(&p, NULL, 11, p.row, p.col + half, NULL), 50.0, 1e-10);
    CHECK_NEAR(bf_peak2d_eval(&p, NULL, 11, p.row, p.col - half, NULL), 50.0, 1e-10);
    /* and along v (rows) with sigma_v */
    const double half_v = sqrt(2.0 * log(2.0)) * p.sigma_v;
    CHECK_NEAR(bf_peak2d_eval(&p, NULL, 11, p.row + half_v, p.col, NULL), 50.0, 1e-10);
}

BF_TEST(lorentzian_falls_to_half_at_gamma)
{
    bf_peak2d p = peak_default();
    p.eta = 1.0;
    p.theta = 0.0;
    CHECK_NEAR(bf_peak2d_eval(&p, NULL, 11, p.row, p.col + p.gamma_u, NULL), 50.0, 1e-10);
    CHECK_NEAR(bf_peak2d_eval(&p, NULL, 11, p.row - p.gamma_v, p.col, NULL), 50.0, 1e-10);
    /* 1 / (1 + 4) two half widths out */
    CHECK_NEAR(bf_peak2d_eval(&p, NULL, 11, p.row, p.col + 2 * p.gamma_u, NULL), 20.0, 1e-10);
}

BF_TEST(rotation_by_90_degrees_swaps_the_axes)
{
    bf_peak2d a = peak_default(), b = peak_default();
    a.theta = 0.0;
    b.theta = M_PI / 2;
    b.sigma_u = a.sigma_v;
    b.sigma_v = a.sigma_u;
    b.gamma_u = a.gamma_v;
    b.gamma_v = a.gamma_u;
    for (double dr = -3; dr <= 3; dr += 0.7)
        for (double dc = -3; dc <= 3; dc += 0.9) {
            double va = bf_peak2d_eval(&a, NULL, 11, a.row + dr, a.col + dc, NULL);
            double vb = bf_peak2d_eval(&b, NULL, 11, b.row + dr, b.col + dc, NULL);
            CHECK_NEAR(va, vb, 1e-10);
        }
    /* theta = 90°: u runs along rows, so the point sigma_u down the rows sits at exp(-1/2) */
    b.eta = 0.0;
    CHECK_NEAR(bf_peak2d_eval(&b, NULL, 11, b.row + b.sigma_u, b.col, NULL), 100.0 * exp(-0.5),
               1e-10);
    /* and theta + pi is the same peak */
    bf_peak2d c = a;
    c.theta = a.theta + M_PI;
    CHECK_NEAR(bf_peak2d_eval(&a, NULL, 11, 4.1, 6.9, NULL),
               bf_peak2d_eval(&c, NULL, 11, 4.1, 6.9, NULL), 1e-10);
}

BF_TEST(add_renders_at_pixel_centres)
{
    /* a peak centred on pixel (5, 5) sits at (5.5, 5.5): that pixel holds the full height */
    bf_peak2d p = peak_default();
    p.row = 5.5;
    p.col = 5.5;
    double img[121] = {0};
    bf_peak2d_add(&p, 11, img);
    CHECK_NEAR(img[5 * 11 + 5], 100.0, 1e-12);
    for (int k = 0; k < 121; k++)
        CHECK(img[k] <= img[5 * 11 + 5]);
    /* background plane: pixel (0, 10) centre (0.5, 10.5) is (-5, +5) from (5.5, 5.5) */
    double bgi[121] = {0};
    bf_background2d bg = {.level = 10, .slope_row = 1, .slope_col = 0.5};
    bf_background2d_add(&bg, 11, bgi);
    CHECK_NEAR(bgi[0 * 11 + 10], 10 - 5 + 2.5, 1e-12);
    CHECK_NEAR(bgi[5 * 11 + 5], 10, 1e-12);
}

BF_TEST(add_equals_the_sum_of_eval_and_eval_patch_matches_eval)
{
    bf_rng rng;
    bf_rng_init(&rng, 3, 0);
    for (int t = 0; t < 20; t++) {
        const int S = 5 + 2 * (t % 8);
        bf_peak2d p = {.row = bf_rng_uniform_range(&rng, 0, S),
                       .col = bf_rng_uniform_range(&rng, 0, S),
                       .sigma_u = bf_rng_uniform_range(&rng, 0.4, 3),
                       .sigma_v = bf_rng_uniform_range(&rng, 0.4, 3),
                       .gamma_u = bf_rng_uniform_range(&rng, 0.4, 3),
                       .gamma_v = bf_rng_uniform_range(&rng, 0.4, 3),
                       .theta = bf_rng_uniform_range(&rng, -4, 4),
                       .eta = bf_rng_uniform(&rng),
                       .amplitude = bf_rng_uniform_range(&rng, 1, 1000)};
        bf_background2d bg = {bf_rng_uniform_range(&rng, 0, 50), bf_rng_uniform_range(&rng, -2, 2),
                              bf_rng_uniform_range(&rng, -2, 2)};
        double img[63 * 63], model[63 * 63], jac[63 * 63 * NP];
        memset(img, 0, sizeof img);
        bf_peak2d_add(&p, S, img);
        bf_background2d_add(&bg, S, img);
        bf_peak2d_eval_patch(&p, &bg, S, model, jac);
        for (int i = 0; i < S; i++)
            for (int j = 0; j < S; j++) {
                double g[NP];
                double v = bf_peak2d_eval(&p, &bg, S, i + 0.5, j + 0.5, g);
                CHECK_NEAR(img[i * S + j], v, 1e-11 * (1 + fabs(v)));
                CHECK_NEAR(model[i * S + j], v, 1e-11 * (1 + fabs(v)));
                for (int k = 0; k < NP; k++)
                    CHECK_NEAR(jac[(size_t)(i * S + j) * NP + k], g[k], 1e-12 * (1 + fabs(g[k])));
            }
        /* eval_patch without background is the peak alone */
        bf_peak2d_eval_patch(&p, NULL, S, model, NULL);
        memset(img, 0, sizeof img);
        bf_peak2d_add(&p, S, img);
        for (int k = 0; k < S * S; k++)
            CHECK_NEAR(model[k], img[k], 1e-11 * (1 + fabs(img[k])));
    }
}

BF_TEST(gradient_matches_central_finite_differences)
{
    bf_rng rng;
    bf_rng_init(&rng, 7, 0);
    const double thetas[] = {0.0, M_PI / 2, M_PI, -M_PI / 4, 3.0};
    const double etas[] = {0.0, 1.0, 0.5, 1e-9, 1.0 - 1e-9};
    double worst = 0;
    for (int t = 0; t < 200; t++) {
        bf_peak2d p = {.row = bf_rng_uniform_range(&rng, 3, 8),
                       .col = bf_rng_uniform_range(&rng, 3, 8),
                       .sigma_u = bf_rng_uniform_range(&rng, 0.3, 3),
                       .sigma_v = bf_rng_uniform_range(&rng, 0.3, 3),
                       .gamma_u = bf_rng_uniform_range(&rng, 0.3, 3),
                       .gamma_v = bf_rng_uniform_range(&rng, 0.3, 3),
                       .theta = t < 25 ? thetas[t % 5] : bf_rng_uniform_range(&rng, -4, 4),
                       .eta = t < 25 ? etas[t / 5] : bf_rng_uniform(&rng),
                       .amplitude = bf_rng_uniform_range(&rng, 1, 1000)};
        bf_background2d bg = {bf_rng_uniform_range(&rng, 0, 50), bf_rng_uniform_range(&rng, -2, 2),
                              bf_rng_uniform_range(&rng, -2, 2)};
        const double r = bf_rng_uniform_range(&rng, 0, 11), c = bf_rng_uniform_range(&rng, 0, 11);
        double g[NP];
        bf_peak2d_eval(&p, &bg, 11, r, c, g);
        for (int k = 0; k < NP; k++) {
            bf_peak2d pp = p, pm = p;
            bf_background2d bp = bg, bm = bg;
            double *xp = param(&pp, &bp, k), *xm = param(&pm, &bm, k);
            const double h = 1e-5 * (1 + fabs(*xp));
            *xp += h;
            *xm -= h;
            double fd = (bf_peak2d_eval(&pp, &bp, 11, r, c, NULL) -
                         bf_peak2d_eval(&pm, &bm, 11, r, c, NULL)) / (2 * h);
            /* central differences: error ~ h^2 f''' + eps f / h; scale by the amplitude */
            double e = fabs(fd - g[k]) / (1 + p.amplitude);
            if (e > worst)
                worst = e;
            CHECK_MSG(e < 5e-8, "trial %d param %d: analytic %.10g fd %.10g", t, k, g[k], fd);
        }
    }
    fprintf(stderr, "  worst scaled gradient difference %.2e\n", worst);
}
