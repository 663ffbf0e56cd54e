/* core/order_stats.c — sorting and percentiles, one definition for every report of
 * errors and latencies. */
#include <math.h>
#include <stdlib.h>

#include "braggflow/core.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bf_sort_doubles(double *x, long n)
{
    if (n > 1)
        qsort(x, (size_t)n, sizeof(double), cmp_double);
}

double bf_percentile_sorted(const double *sorted, long n, double q)
{
    double at = q * (double)(n - 1);
    long lo = (long)floor(at);
    long hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (at - (double)lo) * (sorted[hi] - sorted[lo]);
}
