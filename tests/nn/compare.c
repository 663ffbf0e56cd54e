/* tests/nn/compare.c — see compare.h. */
#include "compare.h"

#include <math.h>
#include <stdlib.h>

#include "braggflow/nn.h"

float *random_floats(size_t n, uint64_t seed, float lo, float hi)
{
    float *v = malloc(sizeof(float) * (n ? n : 1));
    bf_rng r;
    bf_rng_init(&r, seed, 0);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)bf_rng_uniform_range(&r, lo, hi);
    return v;
}

float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

double max_rel_diff(const float *a, const float *b, size_t n)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return isnan(d) ? INFINITY : d / (1 + m);
}
