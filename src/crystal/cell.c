/* crystal/cell.c — unit-cell metrics: validation, volume, reciprocal metric
 * tensor, d-spacings and the hkl box that holds every reflection with d >= dmin.
 * Units: Angstrom and degrees in, 1/Angstrom^2 for G*. */
#include "braggflow/crystal.h"

#include <math.h>

#define DEG_TO_RAD (M_PI / 180.0)

/* 1 - cos^2 a - cos^2 b - cos^2 g + 2 cos a cos b cos g = (V / abc)^2. */
static double volume_factor_squared(const bf_cell *cell)
{
    double ca = cos(cell->alpha * DEG_TO_RAD);
    double cb = cos(cell->beta * DEG_TO_RAD);
    double cg = cos(cell->gamma * DEG_TO_RAD);
    return 1.0 - ca * ca - cb * cb - cg * cg + 2.0 * ca * cb * cg;
}

bf_status bf_cell_validate(const bf_cell *cell, const char *what, bf_error *err)
{
    const char *name = what ? what : "cell";
    const double lengths[3] = {cell->a, cell->b, cell->c};
    const double angles[3] = {cell->alpha, cell->beta, cell->gamma};
    static const char *const length_names[3] = {"a", "b", "c"};
    static const char *const angle_names[3] = {"alpha", "beta", "gamma"};
    for (int i = 0; i < 3; i++) {
        if (!isfinite(lengths[i]) || lengths[i] <= 0.0)
            return bf_error_set(err, BF_ERR_INVALID, "%s: %s = %g Angstrom: lengths must be > 0",
                                name, length_names[i], lengths[i]);
    }
    for (int i = 0; i < 3; i++) {
        if (!isfinite(angles[i]) || angles[i] <= 0.0 || angles[i] >= 180.0)
            return bf_error_set(err, BF_ERR_INVALID,
                                "%s: %s = %g degrees: angles must lie in (0, 180)", name,
                                angle_names[i], angles[i]);
    }
    /* Angles that each lie in (0, 180) can still fail to close a parallelepiped
     * (e.g. alpha = beta = 10, gamma = 170): then (V/abc)^2 <= 0. */
    if (!(volume_factor_squared(cell) > 1e-12))
        return bf_error_set(err, BF_ERR_INVALID,
                            "%s: angles %g, %g, %g degrees do not form a real cell (zero or "
                            "imaginary volume)",
                            name, cell->alpha, cell->beta, cell->gamma);
    return BF_OK;
}

double bf_cell_volume(const bf_cell *cell)
{
    double f2 = volume_factor_squared(cell);
    return cell->a * cell->b * cell->c * sqrt(f2 > 0.0 ? f2 : 0.0);
}

void bf_cell_reciprocal_metric(const bf_cell *cell, double gstar[3][3])
{
    /* G* is the inverse of the direct metric tensor G (Giacovazzo, Fundamentals
     * of Crystallography, ch. 2); invert G through its cofactors. */
    double ca = cos(cell->alpha * DEG_TO_RAD);
    double cb = cos(cell->beta * DEG_TO_RAD);
    double cg = cos(cell->gamma * DEG_TO_RAD);
    double g[3][3] = {
        {cell->a * cell->a, cell->a * cell->b * cg, cell->a * cell->c * cb},
        {cell->a * cell->b * cg, cell->b * cell->b, cell->b * cell->c * ca},
        {cell->a * cell->c * cb, cell->b * cell->c * ca, cell->c * cell->c},
    };
    double cof[3][3];
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            int i1 = (i + 1) % 3, i2 = (i + 2) % 3;
            int j1 = (j + 1) % 3, j2 = (j + 2) % 3;
            cof[i][j] = g[i1][j1] * g[i2][j2] - g[i1][j2] * g[i2][j1];
        }
    }
    double det = g[0][0] * cof[0][0] + g[0][1] * cof[0][1] + g[0][2] * cof[0][2];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            gstar[i][j] = cof[j][i] / det; /* G symmetric, so cof^T = cof */
}

void bf_cell_reciprocal_lengths(const bf_cell *cell, double astar_invA[3])
{
    double gs[3][3];
    bf_cell_reciprocal_metric(cell, gs);
    for (int i = 0; i < 3; i++)
        astar_invA[i] = sqrt(gs[i][i]);
}

double bf_cell_d_spacing(const bf_cell *cell, int h, int k, int l)
{
    double gs[3][3];
    bf_cell_reciprocal_metric(cell, gs);
    double hv[3] = {h, k, l};
    double inv_d2 = 0.0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            inv_d2 += hv[i] * gs[i][j] * hv[j];
    return inv_d2 > 0.0 ? 1.0 / sqrt(inv_d2) : INFINITY;
}

void bf_cell_index_bounds(const bf_cell *cell, double dmin_A, int *hmax, int *kmax, int *lmax)
{
    /* h = a . r* with |r*| = 1/d, so |h| <= |a| |r*| = a/d <= a/dmin: the box is exact.
     * The small relative slack keeps a reflection sitting exactly on dmin. */
    const double slack = 1.0 + 1e-9;
    *hmax = (int)floor(cell->a / dmin_A * slack);
    *kmax = (int)floor(cell->b / dmin_A * slack);
    *lmax = (int)floor(cell->c / dmin_A * slack);
}
