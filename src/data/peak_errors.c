/* data/peak_errors.c — error statistics of peak centres in pixels (mean and
 * percentiles), shared by `fit-peaks`, `peaks`, training logs, tests and benchmarks. */
#include "braggflow/data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bf_status bf_peak_errors_of(const double *pred_rc, const double *true_rc, long n,
                            bf_peak_errors *out, bf_error *err)
{
    memset(out, 0, sizeof *out);
    if (n < 1)
        return BF_OK;
    double *d = malloc(sizeof(double) * (size_t)n);
    if (!d)
        return bf_error_set(err, BF_ERR_NOMEM, "peak errors: out of memory for %ld", n);
    double sum = 0;
    for (long i = 0; i < n; i++) {
        d[i] = hypot(pred_rc[2 * i] - true_rc[2 * i], pred_rc[2 * i + 1] - true_rc[2 * i + 1]);
        sum += d[i];
    }
    bf_sort_doubles(d, n);
    *out = (bf_peak_errors){.n = n,
                            .mean = sum / n,
                            .p50 = bf_percentile_sorted(d, n, 0.5),
                            .p75 = bf_percentile_sorted(d, n, 0.75),
                            .p95 = bf_percentile_sorted(d, n, 0.95),
                            .p995 = bf_percentile_sorted(d, n, 0.995),
                            .max = d[n - 1]};
    free(d);
    return BF_OK;
}

