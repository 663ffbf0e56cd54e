/* sim/grid.c — GSAS-II's log-spaced TOF grid for a simulated histogram
 * (docs/gsas2.md §1 "TOF grid" and §2 "Active range"):
 * edges t_i = 1000 Tmin exp(i Tstep), i < ceil(ln(Tmax/Tmin)/Tstep), then bin
 * centres; intensity only from the TOF of d = 0.4 A up to the last centre. */
#include "braggflow/sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GSAS_DMIN_TOF_A 0.4   /* GSAS-II raises the lower limit to this d */
#define MAX_GRID_POINTS 10000000

void bf_tof_grid_spec_defaults(bf_tof_grid_spec *g)
{
    g->tmin_ms = 1.36;
    g->tmax_ms = 18.919;
    g->tstep_rel = 0.0009381;
}

bf_status bf_tof_grid_build(const bf_tof_grid_spec *spec, const bf_instrument *inst,
                            bf_tof_grid *out, bf_error *err)
{
    memset(out, 0, sizeof *out);
    if (!(spec->tmin_ms > 0.0) || !isfinite(spec->tmin_ms))
        return bf_error_set(err, BF_ERR_INVALID, "tof_min_ms: must be > 0 (got %g)", spec->tmin_ms);
    if (!(spec->tmax_ms > spec->tmin_ms) || !isfinite(spec->tmax_ms))
        return bf_error_set(err, BF_ERR_INVALID, "tof_max_ms: must exceed tof_min_ms (got %g <= %g)",
                            spec->tmax_ms, spec->tmin_ms);
    if (!(spec->tstep_rel > 0.0 && spec->tstep_rel < 1.0))
        return bf_error_set(err, BF_ERR_INVALID, "tof_step: relative step must lie in (0, 1) (got %g)",
                            spec->tstep_rel);
    double n_edges_real = ceil(log(spec->tmax_ms / spec->tmin_ms) / spec->tstep_rel);
    if (n_edges_real < 2 || n_edges_real > MAX_GRID_POINTS)
        return bf_error_set(err, BF_ERR_INVALID,
                            "tof grid: %g..%g ms with step %g gives %.0f points (need 2..%d)",
                            spec->tmin_ms, spec->tmax_ms, spec->tstep_rel, n_edges_real,
                            MAX_GRID_POINTS);
    int n_edges = (int)n_edges_real;
    out->n = n_edges - 1;
    out->tof_us = malloc((size_t)out->n * sizeof *out->tof_us);
    if (out->tof_us == NULL)
        return bf_error_set(err, BF_ERR_NOMEM, "tof grid: out of memory");
    const double log_tmin = log(spec->tmin_ms);
    double left = 1000.0 * exp(log_tmin);
    for (int i = 0; i < out->n; i++) {
        double right = 1000.0 * exp(log_tmin + (i + 1) * spec->tstep_rel);
        out->tof_us[i] = left + 0.5 * (right - left);
        left = right;
    }
    out->log_step = spec->tstep_rel;
    out->lower_us = fmax(bf_tof_position_us(inst, GSAS_DMIN_TOF_A), out->tof_us[0]);
    out->upper_us = out->tof_us[out->n - 1];
    out->dmin_A = out->lower_us / inst->difc;
    int first = 0;
    while (first < out->n && out->tof_us[first] < out->lower_us)
        first++;
    out->first_active = first;
    out->end_active = out->n;
    if (first >= out->n) {
        bf_tof_grid_free(out);
        return bf_error_set(err, BF_ERR_INVALID,
                            "tof grid: ends at %g us, below the TOF of d = 0.4 A", spec->tmax_ms * 1e3);
    }
    return BF_OK;
}

void bf_tof_grid_free(bf_tof_grid *g)
{
    if (g == NULL)
        return;
    free(g->tof_us);
    memset(g, 0, sizeof *g);
}
