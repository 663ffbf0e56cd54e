/* data/patches_sim.c — simulated Bragg-peak patches for BraggNN (DESIGN §7,
 * docs/peaks.md): a 2-D pseudo-Voigt peak (sim.h, bf_peak2d_add) with random
 * sub-pixel centre, widths, mixing, rotation and height on a sloped background,
 * sometimes a neighbouring peak reaching into the patch, then Poisson counting
 * noise and Gaussian read noise. Patch i draws everything from RNG stream
 * (seed, i) in a fixed order, so the file does not depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

#define MAX_S 63

/* ---- Poisson counts ---------------------------------------------------------------- */

/* Knuth: the number of uniforms whose running product stays above e^-lambda. */
static double poisson_knuth(bf_rng *rng, double lambda)
{
    const double limit = exp(-lambda);
    double p = bf_rng_uniform(rng);
    double k = 0;
    while (p > limit) {
        k += 1;
        p *= bf_rng_uniform(rng);
    }
    return k;
}

/* W. Hormann, "The transformed rejection method for generating Poisson random
 * variables", Insurance: Mathematics and Economics 12 (1993) 39-45, algorithm
 * PTRS (lambda >= 10): a transformed-rejection hat with a squeeze that accepts
 * ~89 % of draws without evaluating the density. */
static double poisson_ptrs(bf_rng *rng, double lambda)
{
    const double slam = sqrt(lambda), loglam = log(lambda);
    const double b = 0.931 + 2.53 * slam;
    const double a = -0.059 + 0.02483 * b;
    const double inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
    const double vr = 0.9277 - 3.6224 / (b - 2);
    for (;;) {
        const double U = bf_rng_uniform(rng) - 0.5;
        const double V = bf_rng_uniform(rng);
        const double us = 0.5 - fabs(U);
        const double k = floor((2 * a / us + b) * U + lambda + 0.43);
        if (us >= 0.07 && V <= vr)
            return k;
        if (k < 0 || (us < 0.013 && V > us))
            continue;
        /* accept when V lies under the density: log form of
         * V * alpha' / (a / us^2 + b) <= lambda^k e^-lambda / k! */
        if (log(V) + log(inv_alpha) - log(a / (us * us) + b) <=
            -lambda + k * loglam - lgamma(k + 1))
            return k;
    }
}

double bf_poisson_draw(bf_rng *rng, double lambda)
{
    if (!(lambda > 0))
        return 0;
    return lambda < 10 ? poisson_knuth(rng, lambda) : poisson_ptrs(rng, lambda);
}

/* ---- one patch ----------------------------------------------------------------- */

/* One uniform draw per call, even for a fixed range, so changing one range
 * never shifts the draws of the others. */
static double draw(bf_rng *rng, const bf_range *r)
{
    double u = bf_rng_uniform(rng);
    if (r->log)
        return exp(log(r->lo) + u * (log(r->hi) - log(r->lo)));
    return r->lo + u * (r->hi - r->lo);
}

static void draw_shape(bf_rng *rng, const bf_peaks_config *cfg, bf_peak2d *p)
{
    p->sigma_u = draw(rng, &cfg->sigma);
    p->sigma_v = draw(rng, &cfg->sigma);
    p->gamma_u = draw(rng, &cfg->gamma);
    p->gamma_v = draw(rng, &cfg->gamma);
    p->theta = draw(rng, &cfg->theta_deg) * (M_PI / 180.0);
    p->eta = draw(rng, &cfg->eta);
}

/* Draws patch i's parameters and renders its noisy counts into img (S x S). */
static void simulate_one(const bf_peaks_config *cfg, long i, float *img, bf_peak2d *peak,
                         bf_background2d *bg, double *read_sigma, uint8_t *has_nb,
                         bf_peak2d *nb, double *centre)
{
    const int S = cfg->size;
    bf_rng rng;
    bf_rng_init(&rng, cfg->seed, (uint64_t)i);

    /* the central pixel S//2 has its centre at S/2 (pixel k spans [k, k+1)) */
    memset(peak, 0, sizeof *peak);
    peak->row = S / 2.0 + draw(&rng, &cfg->centre_offset);
    peak->col = S / 2.0 + draw(&rng, &cfg->centre_offset);
    draw_shape(&rng, cfg, peak);
    peak->amplitude = draw(&rng, &cfg->height);

    bg->level = draw(&rng, &cfg->bg_level);
    bg->slope_row = draw(&rng, &cfg->bg_slope);
    bg->slope_col = draw(&rng, &cfg->bg_slope);
    /* keep the plane >= 0 at every pixel centre (|r - S/2| <= (S - 1) / 2) */
    const double drop = (fabs(bg->slope_row) + fabs(bg->slope_col)) * (S - 1) / 2.0;
    if (drop > bg->level) {
        bg->slope_row *= bg->level / drop;
        bg->slope_col *= bg->level / drop;
    }
    *read_sigma = draw(&rng, &cfg->read_sigma);

    memset(nb, 0, sizeof *nb);
    *has_nb = bf_rng_uniform(&rng) < cfg->neighbour_fraction;
    if (*has_nb) {
        const double d = draw(&rng, &cfg->neighbour_distance);
        const double phi = 2 * M_PI * bf_rng_uniform(&rng);
        nb->row = peak->row + d * sin(phi);
        nb->col = peak->col + d * cos(phi);
        draw_shape(&rng, cfg, nb);
        nb->amplitude = peak->amplitude * draw(&rng, &cfg->neighbour_height_ratio);
    }
    centre[0] = peak->row;
    centre[1] = peak->col;

    double mean[MAX_S * MAX_S] = {0};
    bf_peak2d_add(peak, S, mean);
    if (*has_nb)
        bf_peak2d_add(nb, S, mean);
    bf_background2d_add(bg, S, mean);
    for (int k = 0; k < S * S; k++) {
        double counts = cfg->poisson ? bf_poisson_draw(&rng, mean[k]) : mean[k];
        img[k] = (float)(counts + *read_sigma * bf_rng_normal(&rng));
    }
}

static bf_status check_config(const bf_peaks_config *cfg, bf_error *err)
{
    if (cfg->size < 5 || cfg->size > MAX_S || cfg->size % 2 == 0)
        return bf_error_set(err, BF_ERR_INVALID, "%s: [run] patch_size: %d must be odd, 5..%d",
                            cfg->path, cfg->size, MAX_S);
    if (cfg->count < 1)
        return bf_error_set(err, BF_ERR_INVALID, "%s: [run] count: %ld must be >= 1", cfg->path,
                            cfg->count);
    const bf_range *pos[] = {&cfg->height, &cfg->sigma, &cfg->gamma, &cfg->neighbour_distance,
                             &cfg->neighbour_height_ratio};
    for (size_t k = 0; k < sizeof pos / sizeof pos[0]; k++)
        if (!(pos[k]->lo > 0 && pos[k]->lo <= pos[k]->hi && isfinite(pos[k]->hi)))
            return bf_error_set(err, BF_ERR_INVALID, "%s: a height, width or neighbour range is "
                                "not 0 < lo <= hi", cfg->path);
    if (!(cfg->eta.lo >= 0 && cfg->eta.hi <= 1 && cfg->bg_level.lo >= 0 &&
          cfg->read_sigma.lo >= 0 && cfg->neighbour_fraction >= 0 &&
          cfg->neighbour_fraction <= 1))
        return bf_error_set(err, BF_ERR_INVALID,
                            "%s: eta, background level, read_sigma or neighbour fraction out of "
                            "range", cfg->path);
    return BF_OK;
}

bf_status bf_patches_alloc_rows(const bf_peaks_config *cfg, long n, bf_patches *out,
                                bf_error *err)
{
    memset(out, 0, sizeof *out);
    bf_status st = check_config(cfg, err);
    if (st != BF_OK)
        return st;
    const int S = cfg->size;
    out->n = n;
    out->size = S;
    out->patches = malloc((size_t)n * (size_t)(S * S) * sizeof *out->patches);
    out->centre = malloc((size_t)n * 2 * sizeof *out->centre);
    out->peak = malloc((size_t)n * sizeof *out->peak);
    out->background = malloc((size_t)n * sizeof *out->background);
    out->read_sigma = malloc((size_t)n * sizeof *out->read_sigma);
    out->neighbour = malloc((size_t)n * sizeof *out->neighbour);
    out->neighbour_peak = malloc((size_t)n * sizeof *out->neighbour_peak);
    if (!out->patches || !out->centre || !out->peak || !out->background || !out->read_sigma ||
        !out->neighbour || !out->neighbour_peak) {
        bf_patches_free(out);
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory for %ld patches of %d x %d", n, S,
                            S);
    }
    snprintf(out->kind, sizeof out->kind, "simulated");
    out->seed = cfg->seed;
    bf_peaks_config_format(cfg, out->source, sizeof out->source);
    return BF_OK;
}

bf_status bf_patches_simulate_rows(const bf_peaks_config *cfg, long row0, long n, int threads,
                                   bf_patches *out, bf_progress *prog, bf_error *err)
{
    if (n > out->n || row0 < 0 || row0 + n > cfg->count)
        return bf_error_set(err, BF_ERR_RANGE, "%s: patches %ld..%ld do not fit", cfg->path,
                            row0, row0 + n);
    const int S = cfg->size;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 64)
    for (long k = 0; k < n; k++) {
        /* patch row0 + k draws from stream row0 + k: any block gives the same patch */
        simulate_one(cfg, row0 + k, out->patches + (size_t)k * (size_t)(S * S), &out->peak[k],
                     &out->background[k], &out->read_sigma[k], &out->neighbour[k],
                     &out->neighbour_peak[k], out->centre + 2 * k);
        if (prog)
            bf_progress_add(prog, 1);
    }
    return BF_OK;
}

bf_status bf_patches_simulate(const bf_peaks_config *cfg, int threads, bf_patches *out,
                              bf_error *err)
{
    memset(out, 0, sizeof *out);
    if (threads < 0)
        return bf_error_set(err, BF_ERR_INVALID, "threads: %d is negative", threads);
    if (threads == 0)
        threads = bf_default_threads();
    bf_status st = bf_patches_alloc_rows(cfg, cfg->count, out, err);
    if (st == BF_OK) {
        bf_progress prog;
        bf_progress_begin(&prog, "sample-peaks", (uint64_t)cfg->count);
        st = bf_patches_simulate_rows(cfg, 0, cfg->count, threads, out, &prog, err);
        bf_progress_end(&prog);
    }
    if (st != BF_OK)
        bf_patches_free(out);
    return st;
}
