/* al/study.c — the active-learning study set S (DESIGN §5.1; seed 001 Sec. II):
 * an equally spaced sweep of every class box. Equal spacing matters: Eq. 4 sums
 * one Gaussian per study point, so crowded points would pile up probability
 * mass where the uncertainty is no higher. Points sit at cell centres
 * lo + (i + 1/2) (hi - lo) / k, so none lies on a box edge. */
#include "braggflow/al.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* k^f, saturating at LONG_MAX (the caller turns that into an error). */
static long ipow_sat(long k, int f)
{
    long r = 1;
    for (int j = 0; j < f; j++) {
        if (r > LONG_MAX / k)
            return LONG_MAX;
        r *= k;
    }
    return r;
}

/* Smallest k >= 1 with k^f >= per_class (k = 1 when nothing is free). */
static long steps_per_param(long per_class, int f)
{
    if (f == 0)
        return 1;
    long k = (long)floor(pow((double)per_class, 1.0 / f));
    if (k < 1)
        k = 1;
    while (k > 1 && ipow_sat(k - 1, f) >= per_class) /* pow() may round up */
        k--;
    while (ipow_sat(k, f) < per_class)
        k++;
    return k;
}

void bf_study_set_free(bf_study_set *s)
{
    if (s == NULL)
        return;
    free(s->cells);
    free(s->labels);
    free(s->class_index);
    memset(s, 0, sizeof *s);
}

bf_status bf_study_set_make(const bf_class_spec *classes, int n_classes, long per_class,
                            bf_study_set *out, bf_error *err)
{
    memset(out, 0, sizeof *out);
    if (n_classes < 1 || n_classes > BF_MAX_CLASSES)
        return bf_error_set(err, BF_ERR_INVALID, "study set: n_classes: %d is outside 1..%d",
                            n_classes, BF_MAX_CLASSES);
    if (per_class < 1)
        return bf_error_set(err, BF_ERR_INVALID, "study set: per_class: %ld must be >= 1",
                            per_class);

    long k_of[BF_MAX_CLASSES], points_of[BF_MAX_CLASSES];
    long total = 0;
    for (int c = 0; c < n_classes; c++) {
        const bf_class_spec *cls = &classes[c];
        for (int p = 0; p < BF_N_CELL_PARAMS; p++) {
            const bf_param_rule *r = &cls->rule[p];
            if (r->kind == BF_PARAM_FREE && !(isfinite(r->lo) && isfinite(r->hi) && r->lo <= r->hi))
                return bf_error_set(err, BF_ERR_INVALID, "study set: class %s: %s: empty box "
                                    "[%g, %g]", cls->name, bf_cell_param_names[p], r->lo, r->hi);
        }
        int f = bf_class_n_free(cls);
        k_of[c] = steps_per_param(per_class, f);
        points_of[c] = ipow_sat(k_of[c], f);
        if (points_of[c] == LONG_MAX || total > LONG_MAX / 2 - points_of[c] ||
            (size_t)(total + points_of[c]) > SIZE_MAX / sizeof(bf_cell))
            return bf_error_set(err, BF_ERR_RANGE, "study set: class %s: per_class %ld gives "
                                "too many points", cls->name, per_class);
        total += points_of[c];
    }

    /* Room for every grid point; constraint drops only shrink it. */
    out->cells = malloc((size_t)total * sizeof *out->cells);
    out->labels = malloc((size_t)total * sizeof *out->labels);
    out->class_index = malloc((size_t)total * sizeof *out->class_index);
    if (!out->cells || !out->labels || !out->class_index) {
        bf_study_set_free(out);
        return bf_error_set(err, BF_ERR_NOMEM, "study set: no memory for %ld points", total);
    }

    long n = 0;
    for (int c = 0; c < n_classes; c++) {
        const bf_class_spec *cls = &classes[c];
        int idx[BF_N_CELL_PARAMS], f = 0;
        for (int p = 0; p < BF_N_CELL_PARAMS; p++)
            if (cls->rule[p].kind == BF_PARAM_FREE)
                idx[f++] = p;
        long k = k_of[c];
        for (int j = 0; j < f; j++) {
            const bf_param_rule *r = &cls->rule[idx[j]];
            out->step[c][idx[j]] = (r->hi - r->lo) / (double)k;
        }
        double x[BF_N_CELL_PARAMS];
        long kept = 0;
        /* Linear index over the k^f grid, first free parameter slowest (as bf_sample_grid). */
        for (long i = 0; i < points_of[c]; i++) {
            long rest = i;
            for (int j = f - 1; j >= 0; j--) {
                const bf_param_rule *r = &cls->rule[idx[j]];
                long t = rest % k;
                rest /= k;
                x[j] = r->lo + ((double)t + 0.5) * (r->hi - r->lo) / (double)k;
            }
            bf_cell cell;
            bf_class_make_cell(cls, x, &cell);
            if (!bf_class_accepts(cls, &cell))
                continue;
            out->cells[n] = cell;
            out->labels[n] = cls->label;
            out->class_index[n] = c;
            n++;
            kept++;
        }
        if (kept == 0) {
            bf_study_set_free(out);
            return bf_error_set(err, BF_ERR_INVALID,
                                "study set: class %s: no point of the %ld-point sweep satisfies "
                                "the class box and constraints",
                                cls->name, points_of[c]);
        }
    }
    out->n = n;
    return BF_OK;
}
