/* data/measured_like.c — measured-like training patterns (`sample` [measured]): a
 * zero shift by interpolation, a Chebyshev background relative to the pattern's
 * maximum and Poisson counting noise at a chosen total count (data.h has the
 * formulas and the order). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

int bf_measured_like_on(const bf_measured_like *ml)
{
    return ml->background_terms > 0 || ml->poisson_counts > 0 || ml->zero_shift > 0;
}

void bf_measured_like_format(const bf_measured_like *ml, char *out, size_t outsz)
{
    size_t k = 0;
    out[0] = 0;
#define ADD(...)                                                                          \
    do {                                                                                  \
        int n_ = snprintf(out + k, outsz - k, __VA_ARGS__);                               \
        k = n_ < 0 ? k : k + (size_t)n_ >= outsz ? outsz - 1 : k + (size_t)n_;            \
    } while (0)
    if (ml->background_terms > 0)
        ADD("background_terms=%d background_coeff=%.17g %.17g", ml->background_terms,
            ml->background_lo, ml->background_hi);
    if (ml->poisson_counts > 0)
        ADD("%spoisson_counts=%.17g", k ? " " : "", ml->poisson_counts);
    if (ml->zero_shift > 0)
        ADD("%szero_shift=%.17g", k ? " " : "", ml->zero_shift);
#undef ADD
}

bf_status bf_measured_like_apply(const bf_measured_like *ml, const double *x, int n,
                                 uint64_t seed, uint64_t row, double *y, bf_measured_draw *draw,
                                 bf_error *err)
{
    bf_measured_draw d;
    memset(&d, 0, sizeof d);
    if (!bf_measured_like_on(ml) || n < 2) {
        if (draw)
            *draw = d;
        return BF_OK;
    }
    bf_rng rng;
    bf_rng_init(&rng, seed ^ BF_MEASURED_SEED_KEY, row);
    /* the draws in a fixed order, whichever parts are on */
    d.shift = ml->zero_shift > 0 ? bf_rng_uniform_range(&rng, -ml->zero_shift, ml->zero_shift)
                                 : 0;
    int terms = ml->background_terms > BF_MEASURED_MAX_TERMS ? BF_MEASURED_MAX_TERMS
                                                             : ml->background_terms;
    for (int k = 0; k < terms; k++)
        d.coeff[k] = bf_rng_uniform_range(&rng, ml->background_lo, ml->background_hi);

    if (d.shift != 0) { /* y'(x_i) = y(x_i - s), linear between the pattern's points */
        double *src = malloc(sizeof(double) * (size_t)n);
        if (!src)
            return bf_error_set(err, BF_ERR_NOMEM, "measured-like: out of memory");
        memcpy(src, y, sizeof(double) * (size_t)n);
        int j = 0;
        for (int i = 0; i < n; i++) {
            double t = x[i] - d.shift;
            if (t < x[0] || t > x[n - 1]) {
                y[i] = 0;
                continue;
            }
            while (j > 0 && x[j] > t)
                j--;
            while (j + 2 < n && x[j + 1] < t)
                j++;
            double w = (t - x[j]) / (x[j + 1] - x[j]);
            y[i] = (1 - w) * src[j] + w * src[j + 1];
        }
        free(src);
    }
    if (terms > 0) {
        double ymax = 0;
        for (int i = 0; i < n; i++)
            ymax = fmax(ymax, y[i]);
        double span = x[n - 1] - x[0];
        for (int i = 0; i < n; i++) {
            double u = 2 * (x[i] - x[0]) / span - 1, t0 = 1, t1 = u, b = d.coeff[0];
            for (int k = 1; k < terms; k++) { /* T_{k+1} = 2u T_k - T_{k-1} */
                b += d.coeff[k] * t1;
                double t2 = 2 * u * t1 - t0;
                t0 = t1;
                t1 = t2;
            }
            y[i] += ymax * b;
        }
    }
    if (ml->poisson_counts > 0) {
        double sum = 0;
        for (int i = 0; i < n; i++)
            sum += y[i] > 0 ? y[i] : 0;
        if (sum > 0) {
            double to_counts = ml->poisson_counts / sum;
            for (int i = 0; i < n; i++)
                y[i] = bf_poisson_draw(&rng, y[i] > 0 ? y[i] * to_counts : 0) / to_counts;
        }
    }
    if (draw)
        *draw = d;
    return BF_OK;
}
