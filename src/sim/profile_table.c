/* sim/profile_table.c — the fast path of the TOF profile (see sim_internal.h).
 *
 * Why a table: with the instrument and sample fixed, sigma, gamma, alpha and
 * beta are functions of d alone, so every peak a simulator will ever draw is
 * one member of a one-parameter family of shapes. Sampling that family once
 * (a few hundred thousand exact evaluations, tens of ms) turns each
 * (reflection, grid point) of every later pattern into an interpolation of a
 * few ns instead of two complex exponential integrals and two erfc.
 *
 * Geometry: the core window of a peak at d is D in [-2W, 2W], W = 2.355 sigma
 * + 2 gamma (GSAS-II's width unit); there the Gaussian part and the
 * exponential rise/decay have died out (exp(-18) and smaller). Beyond it the
 * profile is eta times a Lorentzian of half-width F/2 convolved with the
 * two decay kernels of GSAS-II's Lorentzian part (docs/gsas2.md §7.3), which at
 * |D| >> 1/alpha is a Lorentzian shifted by the kernels' mean
 * mu = (a^2 + b^2) / (a b (a + b)); that is added analytically out to
 * tail_widths * W. */
#include "sim_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CORE_WIDTHS 2.0        /* core window half-width in units of W */
#define TAIL_WIDTHS 25.0       /* Lorentzian tails are added out to this many W */
#define LEVELS_PER_LN_D 64.0   /* table density in ln d: spacing 0.016 */
#define N_SAMPLES 160          /* samples across the core window */
#define PAD 1                  /* extra samples before 0 and after N_SAMPLES-1 for cubic stencils */

static double width_unit_us(const bf_tof_peak *p)
{
    return 2.355 * sqrt(p->sigma2_us2) + 2.0 * p->gamma_us;
}

static int row_length(const bf_profile_table *t)
{
    return t->n_samples + 2 * PAD + 1;
}

bf_status bf_profile_table_build(bf_profile_table *t, const bf_instrument *inst,
                                 const bf_sample *sample, double dmin_A, double dmax_A,
                                 bf_error *err)
{
    memset(t, 0, sizeof *t);
    if (!(dmin_A > 0.0) || !(dmax_A >= dmin_A))
        return bf_error_set(err, BF_ERR_INVALID, "profile table: bad d range %g..%g A", dmin_A,
                            dmax_A);
    t->inst = inst;
    t->sample = *sample;
    t->tail_widths = TAIL_WIDTHS;
    t->n_samples = N_SAMPLES;
    t->ln_dmin = log(dmin_A);
    t->n_levels = 2 + (int)ceil((log(dmax_A) - t->ln_dmin) * LEVELS_PER_LN_D);
    t->ln_step = (log(dmax_A) - t->ln_dmin) / (t->n_levels - 1);
    if (t->ln_step <= 0.0)
        t->ln_step = 1.0 / LEVELS_PER_LN_D;
    const int len = row_length(t);
    t->values = malloc((size_t)t->n_levels * (size_t)len * sizeof *t->values);
    if (t->values == NULL)
        return bf_error_set(err, BF_ERR_NOMEM, "profile table: out of memory");
    for (int j = 0; j < t->n_levels; j++) {
        bf_tof_peak p;
        bf_tof_peak_at(inst, sample, exp(t->ln_dmin + j * t->ln_step), &p);
        if (!(p.sigma2_us2 > 0.0) || !(p.beta_per_us > 0.0) || !(p.gamma_us >= 0.0)) {
            bf_profile_table_free(t);
            return bf_error_set(err, BF_ERR_INVALID,
                                "%s: peak widths are not positive at d = %.4g A (sigma^2 = %g, "
                                "gamma = %g, beta = %g): check sig-*, X/Y/Z and beta-*",
                                inst->source, exp(t->ln_dmin + j * t->ln_step), p.sigma2_us2,
                                p.gamma_us, p.beta_per_us);
        }
        const double w = width_unit_us(&p), span = 2.0 * CORE_WIDTHS * w;
        const double step = span / (t->n_samples - 1);
        double *row = t->values + (size_t)j * (size_t)len;
        for (int k = 0; k < len; k++)
            row[k] = span * bf_tof_profile_eval(&p, -CORE_WIDTHS * w + (k - PAD) * step);
    }
    return BF_OK;
}

void bf_profile_table_free(bf_profile_table *t)
{
    if (t == NULL)
        return;
    free(t->values);
    t->values = NULL;
}

/* First index i in [lo, hi) with tof[i] >= t (hi if none), walking from a
 * guess: peaks sit a few bins apart, so this is a handful of steps where a
 * binary search would cost a dozen mispredicted branches. */
static int grid_index_from(const double *tof, int lo, int hi, int guess, double t)
{
    int i = guess < lo ? lo : (guess > hi ? hi : guess);
    while (i < hi && tof[i] < t)
        i++;
    while (i > lo && tof[i - 1] >= t)
        i--;
    return i;
}

/* Catmull-Rom cubic through samples row[k-1..k+2] at fraction f in [0, 1). */
static inline double cubic(const double *r, double f)
{
    const double p0 = r[-1], p1 = r[0], p2 = r[1], p3 = r[2];
    return p1 + 0.5 * f * (p2 - p0 + f * (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3 +
                                          f * (3.0 * (p1 - p2) + p3 - p0)));
}

static void add_lorentz_tail(const double *tof, int lo, int hi, double centre, double half,
                             double amp, double *y)
{
    const double h2 = half * half, a = amp * half / M_PI;
    for (int i = lo; i < hi; i++) {
        const double dt = tof[i] - centre;
        y[i] += a / (dt * dt + h2);
    }
}

void bf_profile_table_add(const bf_profile_table *t, double d_A, double scale,
                          const bf_grid *g, double *y)
{
    bf_tof_peak p;
    bf_tof_peak_at(t->inst, &t->sample, d_A, &p);
    const double w = width_unit_us(&p), span = 2.0 * CORE_WIDTHS * w;
    const int lo = g->first_active, hi = g->end_active;
    /* the grid is geometric: index(t) = ln(t / t0) / ln(ratio); bins per us near the peak */
    const double bins_per_us = 1.0 / (p.tof_us * g->log_step);
    const int centre = (int)(log(p.tof_us / g->x[0]) / g->log_step);
    const double core_us = CORE_WIDTHS * w, tail_us = t->tail_widths * w;
    const int core_bins = (int)(core_us * bins_per_us), tail_bins = (int)(tail_us * bins_per_us);
    const double *tof = g->x;
    const int i0 = grid_index_from(tof, lo, hi, centre - tail_bins, p.tof_us - tail_us);
    const int i1 = grid_index_from(tof, i0, hi, centre - core_bins, p.tof_us - core_us);
    const int i2 = grid_index_from(tof, i1, hi, centre + core_bins, p.tof_us + core_us);
    const int i3 = grid_index_from(tof, i2, hi, centre + tail_bins, p.tof_us + tail_us);

    /* core: interpolate between the two table levels around ln d */
    double level = (log(d_A) - t->ln_dmin) / t->ln_step;
    int j = (int)floor(level);
    if (j < 0)
        j = 0;
    if (j > t->n_levels - 2)
        j = t->n_levels - 2;
    double wl = level - j;
    wl = wl < 0.0 ? 0.0 : (wl > 1.0 ? 1.0 : wl);
    const int len = row_length(t);
    const double *row0 = t->values + (size_t)j * (size_t)len + PAD;
    const double *row1 = row0 + len;
    const double to_sample = (t->n_samples - 1) / span, origin = p.tof_us - CORE_WIDTHS * w;
    const double c0 = scale * (1.0 - wl) / span, c1 = scale * wl / span;
    for (int i = i1; i < i2; i++) {
        double u = (g->x[i] - origin) * to_sample;
        int k = (int)u;
        if (k > t->n_samples - 2)
            k = t->n_samples - 2;
        const double f = u - k;
        y[i] += c0 * cubic(row0 + k, f) + c1 * cubic(row1 + k, f);
    }

    /* tails: eta * Lorentzian(F/2) shifted by the decay kernels' mean */
    double fwhm, eta;
    bf_tch_fwhm_eta(p.sigma2_us2, p.gamma_us, &fwhm, &eta);
    const double a = p.alpha_per_us, b = p.beta_per_us;
    const double mu = (a * a + b * b) / (a * b * (a + b));
    add_lorentz_tail(g->x, i0, i1, p.tof_us + mu, 0.5 * fwhm, scale * eta, y);
    add_lorentz_tail(g->x, i2, i3, p.tof_us + mu, 0.5 * fwhm, scale * eta, y);
}
