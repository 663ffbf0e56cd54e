/* sim/powder.c — the powder pattern simulator: cell -> reflections in the
 * window -> intensities -> profiles on GSAS-II's grid, TOF or constant
 * wavelength (CW: docs/gsas2-cw.md §8; Icorr = scale * fraction * mult / V *
 * Lorentz-polarisation, Ka2 at I(L2)/I(L1) of its Ka1 line).
 *
 * Everything that does not depend on the cell is prepared once (grid,
 * Laue-unique reflections with structure factors split by Uiso group, the
 * profile table); a pattern then costs one metric-tensor product per
 * candidate reflection plus the profile interpolation of those in range.
 * Intensity (docs/gsas2.md §8 "Intensity"): ycalc = sum Icorr F^2 profile, with
 * Icorr = scale * fraction * mult / V * sin(2theta_bank / 2) * d^4. */
#include "sim_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct bf_powder_sim {
    bf_instrument inst;
    bf_sample sample;
    bf_grid grid;
    bf_reflection_table refl;
    bf_profile_table profile;         /* TOF */
    bf_cw_table cw_ka1, cw_ka2;       /* CW (ka2 only with Lam2 and I(L2)/I(L1) > 0) */
    int has_ka2;
    double cw_s_lo, cw_s_hi;          /* CW: lambda/2d range kept (GSAS-II's test, as a sine) */
    double max_length_A;
    double sin_theta_bank;
    char source[4096];
};

/* Largest d whose TOF is still inside the grid (TOF(d) increasing). */
static double d_at_tof(const bf_instrument *inst, double tof_us)
{
    double lo = 1e-3, hi = 4.0 * tof_us / inst->difc + 1.0;
    for (int it = 0; it < 200; it++) {
        double mid = 0.5 * (lo + hi);
        if (bf_tof_position_us(inst, mid) < tof_us)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

bf_status bf_powder_sim_create(const bf_crystal *crystal, const bf_instrument *inst,
                               const bf_sample *sample, const bf_grid_spec *grid,
                               double max_length_A, bf_powder_sim **out, bf_error *err)
{
    *out = NULL;
    bf_powder_sim *sim = calloc(1, sizeof *sim);
    if (sim == NULL)
        return bf_error_set(err, BF_ERR_NOMEM, "simulator: out of memory");
    sim->inst = *inst;
    sim->sample = *sample;
    snprintf(sim->source, sizeof sim->source, "%s", crystal->source);
    sim->sin_theta_bank = sin(0.5 * inst->two_theta_deg * M_PI / 180.0);
    if (max_length_A <= 0.0)
        max_length_A = fmax(crystal->cell.a, fmax(crystal->cell.b, crystal->cell.c));
    sim->max_length_A = max_length_A;
    bf_status st = bf_grid_build(grid, &sim->inst, &sim->grid, err);
    if (st != BF_OK)
        goto fail;
    int hmax = (int)floor(max_length_A / sim->grid.dmin_A * (1.0 + 1e-9));
    if (hmax > 200) {
        st = bf_error_set(err, BF_ERR_RANGE,
                          "%s: cell lengths up to %g A need indices up to %d (limit 200)",
                          crystal->source, max_length_A, hmax);
        goto fail;
    }
    const bf_radiation rad = bf_instrument_radiation(&sim->inst, &sim->sample);
    st = bf_reflection_table_build(crystal, &rad, hmax, hmax, hmax, &sim->refl, err);
    if (st != BF_OK)
        goto fail;
    if (bf_instrument_is_cw(&sim->inst)) {
        st = bf_cw_table_build(&sim->cw_ka1, &sim->inst, &sim->sample, sim->grid.lower,
                               sim->grid.upper, 0, err);
        sim->has_ka2 = sim->inst.lam2_A > 0.0 && sim->inst.i_ratio > 0.0;
        if (st == BF_OK && sim->has_ka2)
            st = bf_cw_table_build(&sim->cw_ka2, &sim->inst, &sim->sample, sim->grid.lower,
                                   sim->grid.upper, 1, err);
        if (st != BF_OK)
            goto fail;
        sim->cw_ka1.inst = sim->cw_ka2.inst = &sim->inst; /* the copy this simulator owns */
        /* lower < 2 asin(s) + Zero < upper with s = min(0.995, lambda/2d), as bounds on s */
        const double half_lo = 0.5 * (sim->grid.lower - sim->inst.zero);
        const double half_hi = 0.5 * (sim->grid.upper - sim->inst.zero);
        sim->cw_s_lo = half_lo <= 0.0 ? -1.0 : sin(half_lo * M_PI / 180.0);
        sim->cw_s_hi = half_hi >= 90.0 ? 2.0 : sin(half_hi * M_PI / 180.0);
    } else {
        double dmax = d_at_tof(&sim->inst, sim->grid.upper);
        st = bf_profile_table_build(&sim->profile, &sim->inst, &sim->sample, sim->grid.dmin_A,
                                    fmax(dmax, sim->grid.dmin_A), err);
        if (st != BF_OK)
            goto fail;
        sim->profile.inst = &sim->inst; /* the copy this simulator owns */
    }
    *out = sim;
    return BF_OK;
fail:
    bf_powder_sim_destroy(sim);
    return st;
}

void bf_powder_sim_destroy(bf_powder_sim *sim)
{
    if (sim == NULL)
        return;
    bf_grid_free(&sim->grid);
    bf_reflection_table_free(&sim->refl);
    bf_profile_table_free(&sim->profile);
    bf_cw_table_free(&sim->cw_ka1);
    bf_cw_table_free(&sim->cw_ka2);
    free(sim);
}

const bf_grid *bf_powder_sim_grid(const bf_powder_sim *sim)
{
    return &sim->grid;
}

static bf_status check_cell(const bf_powder_sim *sim, const bf_cell *cell, double gstar[3][3],
                            bf_error *err)
{
    bf_status st = bf_cell_validate(cell, "cell", err);
    if (st != BF_OK)
        return st;
    double longest = fmax(cell->a, fmax(cell->b, cell->c));
    if (longest > sim->max_length_A * (1.0 + 1e-9))
        return bf_error_set(err, BF_ERR_RANGE,
                            "cell: length %g A exceeds the %g A this simulator was prepared for",
                            longest, sim->max_length_A);
    bf_cell_reciprocal_metric(cell, gstar);
    return BF_OK;
}

/* d of table entry i, or 0 when its position lies outside the active range; *pos
 * = TOF (us) or the Ka1 2theta (deg, Zero included). CW keeps a reflection when
 * 2 asin(min(0.995, lambda / 2d)) + Zero lies inside the limits (GSAS-II's test). */
static inline double entry_d_in_range(const bf_powder_sim *sim, const double g[3][3], int i,
                                      double *pos)
{
    const bf_hkl *r = &sim->refl.hkl[i];
    const double h = r->h, k = r->k, l = r->l;
    const double inv_d2 = h * h * g[0][0] + k * k * g[1][1] + l * l * g[2][2] +
                          2.0 * (h * k * g[0][1] + h * l * g[0][2] + k * l * g[1][2]);
    const double d = 1.0 / sqrt(inv_d2);
    if (d < sim->grid.dmin_A)
        return 0.0;
    if (bf_instrument_is_cw(&sim->inst)) {
        const double s = fmin(0.995, sim->inst.lam1_A / (2.0 * d));
        if (!(s > sim->cw_s_lo && s < sim->cw_s_hi))
            return 0.0;
        *pos = bf_cw_position_deg(&sim->inst, d);
        return d;
    }
    const double tof = bf_tof_position_us(&sim->inst, d);
    if (!(tof > sim->grid.lower && tof < sim->grid.upper))
        return 0.0;
    *pos = tof;
    return d;
}

static bf_status no_reflection_error(const bf_powder_sim *sim, const bf_cell *cell, bf_error *err)
{
    const int cw = bf_instrument_is_cw(&sim->inst);
    return bf_error_set(err, BF_ERR_INVALID,
                        "cell %g %g %g %g %g %g: no reflection of %s falls in the %s range "
                        "%.*f..%.*f %s",
                        cell->a, cell->b, cell->c, cell->alpha, cell->beta, cell->gamma,
                        sim->source, cw ? "2theta" : "TOF", cw ? 3 : 1, sim->grid.lower,
                        cw ? 3 : 1, sim->grid.upper, cw ? "deg" : "us");
}

/* TOF: d^4 sin(theta_bank); CW: Lorentz-polarisation at the Ka1 position. */
static double intensity_factor(const bf_powder_sim *sim, int mult, double d, double pos,
                               double volume)
{
    const double d2 = d * d;
    const double geometry = bf_instrument_is_cw(&sim->inst)
                                ? bf_cw_lorentz_polarization(&sim->inst, pos)
                                : sim->sin_theta_bank * d2 * d2;
    return sim->sample.scale * sim->sample.phase_fraction * mult / volume * geometry;
}

static void add_cw_peak(const bf_powder_sim *sim, double pos, double scale, double *y)
{
    bf_cw_peak p;
    bf_cw_peak_at(&sim->inst, &sim->sample, pos, &p);
    bf_cw_table_add(&sim->cw_ka1, &p, pos, scale, &sim->grid, y);
    if (sim->has_ka2)
        bf_cw_table_add(&sim->cw_ka2, &p, bf_cw_ka2_position_deg(&sim->inst, pos),
                        scale * sim->inst.i_ratio, &sim->grid, y);
}

bf_status bf_powder_sim_pattern(const bf_powder_sim *sim, const bf_cell *cell, double *y,
                                bf_error *err)
{
    double g[3][3];
    bf_status st = check_cell(sim, cell, g, err);
    if (st != BF_OK)
        return st;
    const double volume = bf_cell_volume(cell);
    double astar[3];
    bf_cell_reciprocal_lengths(cell, astar);
    memset(y, 0, (size_t)sim->grid.n * sizeof *y);
    int n_in_range = 0;
    const int cw = bf_instrument_is_cw(&sim->inst);
    for (int i = 0; i < sim->refl.n; i++) {
        double pos;
        const double d = entry_d_in_range(sim, g, i, &pos);
        if (d == 0.0)
            continue;
        n_in_range++;
        const double f2 = bf_reflection_table_f2(&sim->refl, i, d, astar);
        const double scale = intensity_factor(sim, sim->refl.hkl[i].mult, d, pos, volume) * f2;
        if (scale == 0.0)
            continue;
        if (cw)
            add_cw_peak(sim, pos, scale, y);
        else
            bf_profile_table_add(&sim->profile, d, scale, &sim->grid, y);
    }
    if (n_in_range == 0)
        return no_reflection_error(sim, cell, err);
    return BF_OK;
}

static int by_decreasing_d(const void *pa, const void *pb)
{
    const bf_reflection *a = pa, *b = pb;
    if (a->d_A != b->d_A)
        return a->d_A < b->d_A ? 1 : -1;
    if (a->h != b->h)
        return b->h - a->h;
    if (a->k != b->k)
        return b->k - a->k;
    return b->l - a->l;
}

bf_status bf_powder_sim_reflections(const bf_powder_sim *sim, const bf_cell *cell,
                                    bf_reflection **out, int *n, bf_error *err)
{
    *out = NULL;
    *n = 0;
    double g[3][3];
    bf_status st = check_cell(sim, cell, g, err);
    if (st != BF_OK)
        return st;
    const double volume = bf_cell_volume(cell);
    double astar[3];
    bf_cell_reciprocal_lengths(cell, astar);
    bf_reflection *list = malloc((size_t)(sim->refl.n > 0 ? sim->refl.n : 1) * sizeof *list);
    if (list == NULL)
        return bf_error_set(err, BF_ERR_NOMEM, "reflections: out of memory");
    int count = 0;
    for (int i = 0; i < sim->refl.n; i++) {
        double pos;
        const double d = entry_d_in_range(sim, g, i, &pos);
        if (d == 0.0)
            continue;
        const bf_hkl *h = &sim->refl.hkl[i];
        bf_reflection r = {.h = h->h, .k = h->k, .l = h->l, .mult = h->mult, .d_A = d,
                           .f2 = bf_reflection_table_f2(&sim->refl, i, d, astar),
                           .icorr = intensity_factor(sim, h->mult, d, pos, volume)};
        if (bf_instrument_is_cw(&sim->inst)) {
            bf_cw_peak p;
            bf_cw_peak_at(&sim->inst, &sim->sample, pos, &p);
            r.tth_deg = pos;
            r.tth2_deg = sim->has_ka2 ? bf_cw_ka2_position_deg(&sim->inst, pos) : 0.0;
            r.sig_cdeg2 = p.sig_cdeg2;
            r.gam_cdeg = p.gam_cdeg;
        } else {
            bf_tof_peak p;
            bf_tof_peak_at(&sim->inst, &sim->sample, d, &p);
            r.tof_us = pos;
            r.sigma2_us2 = p.sigma2_us2;
            r.gamma_us = p.gamma_us;
            r.alpha_per_us = p.alpha_per_us;
            r.beta_per_us = p.beta_per_us;
        }
        list[count++] = r;
    }
    if (count == 0) {
        free(list);
        return no_reflection_error(sim, cell, err);
    }
    qsort(list, (size_t)count, sizeof *list, by_decreasing_d);
    *out = list;
    *n = count;
    return BF_OK;
}
