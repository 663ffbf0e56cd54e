/* data/sampler.c — parameter-space samplers: uniform random with rejection,
 * grid sweeps, and seed 000's bias-free phased partition of a sweep. */
#include "braggflow/data.h"

#include <limits.h>
#include <math.h>
#include <string.h>

/* Rejection sampling gives up after this many draws for one sample: the
 * constraints then leave (almost) nothing of the box. */
#define MAX_DRAWS_PER_SAMPLE 1000000L

/* Largest grid we are willing to enumerate (also guards the product overflow). */
#define MAX_GRID_POINTS (1L << 31)

const char *bf_sampler_name(bf_sampler_kind k)
{
    switch (k) {
    case BF_SAMPLER_RANDOM: return "random";
    case BF_SAMPLER_GRID: return "grid";
    case BF_SAMPLER_PHASED: return "phased";
    }
    return "unknown";
}

static int free_params(const bf_class_spec *cls, int idx[BF_N_CELL_PARAMS])
{
    int n = 0;
    for (int p = 0; p < BF_N_CELL_PARAMS; p++)
        if (cls->rule[p].kind == BF_PARAM_FREE)
            idx[n++] = p;
    return n;
}

static bf_status check_boxes(const bf_class_spec *cls, bf_error *err)
{
    for (int p = 0; p < BF_N_CELL_PARAMS; p++) {
        const bf_param_rule *r = &cls->rule[p];
        if (r->kind == BF_PARAM_FREE && !(isfinite(r->lo) && isfinite(r->hi) && r->lo <= r->hi))
            return bf_error_set(err, BF_ERR_INVALID, "class %s: %s: empty box [%g, %g]", cls->name,
                                bf_cell_param_names[p], r->lo, r->hi);
    }
    return BF_OK;
}

bf_status bf_sample_random(const bf_class_spec *cls, long count, uint64_t seed,
                           uint64_t stream_base, bf_cell *cells, bf_error *err)
{
    if (count < 0)
        return bf_error_set(err, BF_ERR_INVALID, "class %s: count: %ld is negative", cls->name,
                            count);
    bf_status st = check_boxes(cls, err);
    if (st != BF_OK)
        return st;
    int idx[BF_N_CELL_PARAMS];
    int n_free = free_params(cls, idx);
    double x[BF_N_CELL_PARAMS];
    for (long i = 0; i < count; i++) {
        /* One stream per sample: sample i is the same whatever else is drawn. */
        bf_rng rng;
        bf_rng_init(&rng, seed, stream_base + (uint64_t)i);
        long draws = 0;
        for (;;) {
            if (draws++ >= MAX_DRAWS_PER_SAMPLE)
                return bf_error_set(err, BF_ERR_INVALID,
                                    "class %s: no cell satisfying the constraints in %ld draws "
                                    "(sample %ld); widen the box or relax the constraints",
                                    cls->name, MAX_DRAWS_PER_SAMPLE, i);
            for (int j = 0; j < n_free; j++) {
                const bf_param_rule *r = &cls->rule[idx[j]];
                x[j] = bf_rng_uniform_range(&rng, r->lo, r->hi);
            }
            bf_class_make_cell(cls, x, &cells[i]);
            if (bf_class_accepts(cls, &cells[i]))
                break;
        }
    }
    return BF_OK;
}

bf_status bf_sample_grid(const bf_class_spec *cls, int phases, int phase, bf_cell *cells,
                         long *count, bf_error *err)
{
    long capacity = cells ? *count : 0;
    *count = 0;
    if (phases < 1)
        return bf_error_set(err, BF_ERR_INVALID, "class %s: phases: %d must be >= 1", cls->name,
                            phases);
    if (phase < 1 || phase > phases)
        return bf_error_set(err, BF_ERR_INVALID, "class %s: phase: %d is outside 1..%d", cls->name,
                            phase, phases);
    bf_status st = check_boxes(cls, err);
    if (st != BF_OK)
        return st;

    int idx[BF_N_CELL_PARAMS];
    int n_free = free_params(cls, idx);
    long n_points[BF_N_CELL_PARAMS];
    long total = 1;
    for (int j = 0; j < n_free; j++) {
        const bf_param_rule *r = &cls->rule[idx[j]];
        const char *key = bf_cell_param_names[idx[j]];
        if (!(r->step > 0) || !isfinite(r->step))
            return bf_error_set(err, BF_ERR_INVALID,
                                "class %s: %s_step: must be > 0 for the grid and phased samplers",
                                cls->name, key);
        /* lo + j*step <= hi, forgiving 1e-9 of a step of rounding ((4.5-3.5)/0.1 = 9.999..). */
        double span = (r->hi - r->lo) / r->step;
        if (span + 1 > (double)MAX_GRID_POINTS)
            return bf_error_set(err, BF_ERR_RANGE, "class %s: %s_step: %g gives too many points",
                                cls->name, key, r->step);
        n_points[j] = (long)floor(span + 1e-9) + 1;
        if (total > MAX_GRID_POINTS / n_points[j])
            return bf_error_set(err, BF_ERR_RANGE, "class %s: grid has more than %ld points",
                                cls->name, MAX_GRID_POINTS);
        total *= n_points[j];
    }

    double x[BF_N_CELL_PARAMS];
    bf_cell cell;
    long written = 0;
    /* Linear index i over the full grid, first free parameter slowest; phase k
     * keeps i = k-1, k-1+n, k-1+2n, ... before constraint violators are dropped. */
    for (long i = phase - 1; i < total; i += phases) {
        long rest = i;
        for (int j = n_free - 1; j >= 0; j--) {
            const bf_param_rule *r = &cls->rule[idx[j]];
            long t = rest % n_points[j];
            rest /= n_points[j];
            x[j] = r->lo + (double)t * r->step;
            if (x[j] > r->hi) /* the forgiven rounding: stay inside the box */
                x[j] = r->hi;
        }
        bf_class_make_cell(cls, x, &cell);
        if (!bf_class_accepts(cls, &cell))
            continue;
        if (cells) {
            if (written >= capacity) {
                *count = written;
                return bf_error_set(err, BF_ERR_RANGE,
                                    "class %s: grid has more points than the %ld prepared",
                                    cls->name, capacity);
            }
            cells[written] = cell;
        }
        written++;
    }
    *count = written;
    return BF_OK;
}
