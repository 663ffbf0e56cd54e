/* sim/grid.c — the x axis of a simulated histogram, as GSAS-II makes it.
 * TOF (docs/gsas2.md §1 "TOF grid" and §2 "Active range"): edges
 * t_i = 1000 Tmin exp(i Tstep), i < ceil(ln(Tmax/Tmin)/Tstep), then bin centres;
 * intensity only from the TOF of d = 0.4 A up to the last centre.
 * CW (docs/gsas2-cw.md "How the grids are made"): N = int((max - min) / step) + 1
 * points of numpy.linspace(min, max, N), no bin-centre shift; every point active;
 * reflections down to d = lambda / (2 sin(max / 2)). */
#include "braggflow/sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GSAS_DMIN_TOF_A 0.4   /* GSAS-II raises the lower limit to this d */
#define MAX_GRID_POINTS 10000000

void bf_grid_spec_defaults(bf_grid_spec *g)
{
    g->tmin_ms = 1.36;
    g->tmax_ms = 18.919;
    g->tstep_rel = 0.0009381;
    g->tth_min_deg = g->tth_max_deg = g->tth_step_deg = 0.0; /* the CW defaults below */
}

const char *bf_x_unit_name(bf_x_unit u)
{
    return u == BF_X_TTH_DEG ? "two_theta_deg" : "tof_us";
}

/* braggflow's CW defaults where the spec leaves them 0 (the lab reference grid). */
#define CW_DEFAULT_MIN_DEG 10.0
#define CW_DEFAULT_MAX_DEG 120.0
#define CW_DEFAULT_STEP_DEG 0.01

static bf_status cw_grid_build(const bf_grid_spec *spec, const bf_instrument *inst,
                               bf_grid *out, bf_error *err)
{
    const double lo = spec->tth_min_deg != 0.0 ? spec->tth_min_deg : CW_DEFAULT_MIN_DEG;
    const double hi = spec->tth_max_deg != 0.0 ? spec->tth_max_deg : CW_DEFAULT_MAX_DEG;
    const double step = spec->tth_step_deg != 0.0 ? spec->tth_step_deg : CW_DEFAULT_STEP_DEG;
    if (!(lo > 0.0 && lo < 180.0))
        return bf_error_set(err, BF_ERR_INVALID, "tth_min: must lie in (0, 180) deg (got %g)", lo);
    if (!(hi > lo && hi < 180.0))
        return bf_error_set(err, BF_ERR_INVALID,
                            "tth_max: must lie in (tth_min, 180) deg (got %g, tth_min %g)", hi, lo);
    if (!(step > 0.0 && step <= hi - lo))
        return bf_error_set(err, BF_ERR_INVALID,
                            "tth_step: must lie in (0, tth_max - tth_min] deg (got %g)", step);
    const double n_real = floor((hi - lo) / step) + 1.0;
    if (n_real > MAX_GRID_POINTS)
        return bf_error_set(err, BF_ERR_INVALID, "2theta grid: %g..%g deg by %g gives %.0f "
                            "points (limit %d)", lo, hi, step, n_real, MAX_GRID_POINTS);
    out->unit = BF_X_TTH_DEG;
    out->n = (int)n_real;
    out->x = malloc((size_t)out->n * sizeof *out->x);
    if (out->x == NULL)
        return bf_error_set(err, BF_ERR_NOMEM, "2theta grid: out of memory");
    const double delta = (hi - lo) / (out->n - 1);
    for (int i = 0; i < out->n; i++)
        out->x[i] = lo + i * delta;
    out->x[out->n - 1] = hi;
    out->step = delta;
    out->lower = out->x[0];
    out->upper = out->x[out->n - 1];
    out->first_active = 0;
    out->end_active = out->n;
    /* GSAS-II's dmin: lambda / (2 sin(upper / 2)), Zero not included */
    out->dmin_A = inst->lam1_A / (2.0 * sin(0.5 * out->upper * M_PI / 180.0));
    return BF_OK;
}

bf_status bf_grid_build(const bf_grid_spec *spec, const bf_instrument *inst,
                            bf_grid *out, bf_error *err)
{
    memset(out, 0, sizeof *out);
    if (bf_instrument_is_cw(inst))
        return cw_grid_build(spec, inst, out, err);
    out->unit = BF_X_TOF_US;
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
    out->x = malloc((size_t)out->n * sizeof *out->x);
    if (out->x == NULL)
        return bf_error_set(err, BF_ERR_NOMEM, "tof grid: out of memory");
    const double log_tmin = log(spec->tmin_ms);
    double left = 1000.0 * exp(log_tmin);
    for (int i = 0; i < out->n; i++) {
        double right = 1000.0 * exp(log_tmin + (i + 1) * spec->tstep_rel);
        out->x[i] = left + 0.5 * (right - left);
        left = right;
    }
    out->log_step = spec->tstep_rel;
    out->lower = fmax(bf_tof_position_us(inst, GSAS_DMIN_TOF_A), out->x[0]);
    out->upper = out->x[out->n - 1];
    out->dmin_A = out->lower / inst->difc;
    int first = 0;
    while (first < out->n && out->x[first] < out->lower)
        first++;
    out->first_active = first;
    out->end_active = out->n;
    if (first >= out->n) {
        bf_grid_free(out);
        return bf_error_set(err, BF_ERR_INVALID,
                            "tof grid: ends at %g us, below the TOF of d = 0.4 A", spec->tmax_ms * 1e3);
    }
    return BF_OK;
}

void bf_grid_free(bf_grid *g)
{
    if (g == NULL)
        return;
    free(g->x);
    memset(g, 0, sizeof *g);
}
