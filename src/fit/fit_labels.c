/* fit/fit_labels.c — the conventional fit's centres as training labels (fit.h): the
 * step of seed 002's loop (DESIGN §9) where a share of the data is labelled by the
 * conventional analysis and the surrogate is fine-tuned on those labels, not on a
 * truth that a real experiment never has. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/fit.h"

/* A label must be a fit GSL declared converged, and its centre must lie in the patch:
 * a centre outside it belongs to no peak of this patch (a neighbour, a diverged fit). */
static int usable(const bf_peak_fit *f, int S)
{
    const double r = f->peak.row, c = f->peak.col;
    return f->converged && isfinite(r) && isfinite(c) && r >= 0 && r < S && c >= 0 && c < S;
}

bf_status bf_patches_label_with_fits(const bf_patches *p, const bf_peak_fit *fits,
                                     const char *source, bf_patches *out, long *rows_out,
                                     long *not_converged, long *outside, bf_error *err)
{
    memset(out, 0, sizeof *out);
    long n_conv = 0, n_out = 0, kept = 0;
    long *rows = malloc((size_t)(p->n > 0 ? p->n : 1) * sizeof *rows);
    if (!rows)
        return bf_error_set(err, BF_ERR_NOMEM, "labels: out of memory for %ld rows", p->n);
    for (long i = 0; i < p->n; i++) {
        if (!fits[i].converged)
            n_conv++;
        else if (!usable(&fits[i], p->size))
            n_out++;
        else
            rows[kept++] = i;
    }
    if (not_converged)
        *not_converged = n_conv;
    if (outside)
        *outside = n_out;
    bf_status st = kept ? BF_OK
                        : bf_error_set(err, BF_ERR_INVALID,
                                       "labels: none of %ld fits is usable (%ld not converged, "
                                       "%ld with the centre outside the patch)",
                                       p->n, n_conv, n_out);
    if (st == BF_OK)
        st = bf_patches_select(p, rows, kept, out, err);
    if (st == BF_OK && !out->centre && !(out->centre = malloc((size_t)kept * 2 * sizeof(double))))
        st = bf_error_set(err, BF_ERR_NOMEM, "labels: out of memory for %ld centres", kept);
    if (st != BF_OK) {
        free(rows);
        bf_patches_free(out);
        return st;
    }
    for (long k = 0; k < kept; k++) {
        out->centre[2 * k] = fits[rows[k]].peak.row;
        out->centre[2 * k + 1] = fits[rows[k]].peak.col;
    }
    if (rows_out)
        memcpy(rows_out, rows, (size_t)kept * sizeof *rows);
    free(rows);
    free(out->peak);
    free(out->background);
    free(out->read_sigma);
    free(out->neighbour);
    free(out->neighbour_peak);
    out->peak = NULL;
    out->background = NULL;
    out->read_sigma = NULL;
    out->neighbour = NULL;
    out->neighbour_peak = NULL;
    snprintf(out->kind, sizeof out->kind, "fitted");
    snprintf(out->source, sizeof out->source, "%s", source ? source : "");
    return BF_OK;
}
