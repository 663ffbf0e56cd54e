/* braggflow/sim.h — GSAS-II-compatible TOF neutron powder simulation:
 * instrument parameter files (.instprm), GSAS-II's log-spaced TOF grid,
 * the back-to-back-exponential (x) TCH pseudo-Voigt profile, and the powder
 * pattern simulator (cell -> pattern).
 * Units: TOF and widths in microseconds, d in Angstrom. Reference: DESIGN §3
 * and docs/gsas2.md (the formulas as GSAS-II evaluates them). */
#ifndef BRAGGFLOW_SIM_H
#define BRAGGFLOW_SIM_H

#include "braggflow/core.h"
#include "braggflow/crystal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Instrument --------------------------------------------------------- */
typedef struct {
    char type[8];                     /* "PNT": pulsed neutron TOF (the only type supported) */
    double difc, difa, difb, zero;    /* TOF_us = difc d + difa d^2 + difb / d + zero */
    double alpha;                     /* alpha(d) = alpha / d            (1/us) */
    double beta0, beta1, betaq;       /* beta(d) = beta0 + beta1/d^4 + betaq/d^2 */
    double sig0, sig1, sig2, sigq;    /* sigma^2 = sig0 + sig1 d^2 + sig2 d^4 + sigq d (us^2) */
    double x, y, z;                   /* gamma = x d + y d^2 + z (us, Lorentzian FWHM) */
    double two_theta_deg;             /* bank angle */
    double flt_path_m;
    char source[4096];                /* file it came from */
} bf_instrument;

/* Reads a GSAS-II .instprm ("key:value" lines, '#' comments). Errors name the
 * file and line, or the missing key ("x.instprm: difC: missing"). */
bf_status bf_instrument_read(const char *path, bf_instrument *out, bf_error *err);
bf_status bf_instrument_parse(const char *text, size_t len, const char *name,
                              bf_instrument *out, bf_error *err);

/* ---- Sample (GSAS-II histogram/phase defaults) ----------------------------- */
typedef struct {
    double scale;                     /* histogram scale; the seed workflow used 1000 */
    double phase_fraction;            /* 1 */
    double size_um, size_mix;         /* crystallite size 1 um, fully Lorentzian (mix 1) */
    double mustrain, strain_mix;      /* microstrain 1000, fully Lorentzian (mix 1) */
    bf_b_table b_table;               /* neutron scattering lengths: GSAS-II's (default) */
} bf_sample;
void bf_sample_defaults(bf_sample *s);

/* ---- TOF grid ---------------------------------------------------------- */
typedef struct {
    double tmin_ms, tmax_ms;          /* 1.36, 18.919 */
    double tstep_rel;                 /* dT/T: 0.0009381 */
} bf_tof_grid_spec;
void bf_tof_grid_spec_defaults(bf_tof_grid_spec *g);

typedef struct {
    int n;                            /* number of bin centres (2806 for the seed settings) */
    double *tof_us;                   /* [n] bin centres */
    double log_step;                  /* ln(tof[i+1] / tof[i]) = tstep_rel: the grid is geometric */
    int first_active, end_active;     /* intensity is computed for i in [first_active, end_active) */
    double lower_us, upper_us;        /* active TOF limits (lower from d = 0.4 A) */
    double dmin_A;                    /* reflections are generated for d >= lower_us / difc (GSAS-II) */
} bf_tof_grid;

bf_status bf_tof_grid_build(const bf_tof_grid_spec *spec, const bf_instrument *inst,
                            bf_tof_grid *out, bf_error *err);
void bf_tof_grid_free(bf_tof_grid *g);

/* ---- Peak profile ------------------------------------------------------ */
typedef struct {
    double tof_us;
    double sigma2_us2;                /* Gaussian variance incl. sample broadening */
    double gamma_us;                  /* Lorentzian FWHM incl. sample broadening */
    double alpha_per_us, beta_per_us; /* rise and decay of the back-to-back exponentials */
} bf_tof_peak;

double bf_tof_position_us(const bf_instrument *inst, double d_A);
void bf_tof_peak_at(const bf_instrument *inst, const bf_sample *s, double d_A, bf_tof_peak *out);

/* Unit-area profile at dt = t - tof (us), evaluated in full double precision
 * (reference path, used by tests and to check the simulator's tabulated fast
 * path, sim/profile_table.c). */
double bf_tof_profile_eval(const bf_tof_peak *p, double dt_us);

/* ---- Powder pattern simulator --------------------------------------------- */
typedef struct {
    int h, k, l, mult;
    double d_A, tof_us;
    double f2;                        /* |F|^2, (1e-12 cm)^2 */
    double sigma2_us2, gamma_us, alpha_per_us, beta_per_us;
    double icorr;                     /* scale * fraction * mult / V * sin(theta_bank) * d^4 */
} bf_reflection;

typedef struct bf_powder_sim bf_powder_sim;

/* Prepares everything that does not depend on the cell (grid, reflection table
 * with structure factors). Any cell with a, b, c <= max_length_A can be
 * simulated afterwards; pass 0 to use the crystal's own cell. */
bf_status bf_powder_sim_create(const bf_crystal *crystal, const bf_instrument *inst,
                               const bf_sample *sample, const bf_tof_grid_spec *grid,
                               double max_length_A, bf_powder_sim **out, bf_error *err);
void bf_powder_sim_destroy(bf_powder_sim *sim);
const bf_tof_grid *bf_powder_sim_grid(const bf_powder_sim *sim);

/* Thread-safe. Fills y[grid->n] (exact zeros outside the active range).
 * BF_ERR_INVALID for an impossible cell or one with no reflection in range;
 * BF_ERR_RANGE for a cell longer than max_length_A. */
bf_status bf_powder_sim_pattern(const bf_powder_sim *sim, const bf_cell *cell, double *y,
                                bf_error *err);
/* The reflections that contribute for `cell`, sorted by decreasing d (caller frees *out). */
bf_status bf_powder_sim_reflections(const bf_powder_sim *sim, const bf_cell *cell,
                                    bf_reflection **out, int *n, bf_error *err);


/* ---- Bragg-peak detector patches (BraggNN, DESIGN §7) ----------------------
 * A patch is S x S pixels, row-major. Coordinates are BraggNN's: pixel (i, j)
 * spans rows [i, i+1) and columns [j, j+1), so its centre is (i + 0.5, j + 0.5)
 * and a peak centred on pixel k sits at k + 0.5. The model is evaluated at
 * pixel centres (no integration over the pixel; the fit uses the same form).
 *
 * 2-D pseudo-Voigt (DESIGN §7, docs/peaks.md): with dr = r - row, dc = c - col,
 *   u =  dc cos(theta) + dr sin(theta),   v = -dc sin(theta) + dr cos(theta)
 *   G = exp(-(u^2 / sigma_u^2 + v^2 / sigma_v^2) / 2)
 *   L = 1 / (1 + u^2 / gamma_u^2 + v^2 / gamma_v^2)
 *   I = bg + amplitude (eta L + (1 - eta) G),
 *   bg = level + slope_row (r - S/2) + slope_col (c - S/2)
 * so amplitude is the peak height above background (counts) and sigma, gamma
 * are the Gaussian standard deviation and Lorentzian half width at half
 * maximum along the rotated axes u, v (pixels). */
typedef struct {
    double row, col;                  /* centre (patch pixel coordinates, see above) */
    double sigma_u, sigma_v;          /* Gaussian standard deviations (px), > 0 */
    double gamma_u, gamma_v;          /* Lorentzian HWHM (px), > 0 */
    double theta;                     /* rotation of u from the column axis towards rows (rad) */
    double eta;                       /* Lorentzian fraction, [0, 1] */
    double amplitude;                 /* height above background (counts) */
} bf_peak2d;

typedef struct {
    double level;                     /* counts at the patch centre (S/2, S/2) */
    double slope_row, slope_col;      /* counts per pixel along rows, columns */
} bf_background2d;

/* Number of parameters of bf_peak2d (row, col, sigma_u, sigma_v, gamma_u, gamma_v,
 * theta, eta, amplitude: that order) and of bf_background2d (level, slope_row, slope_col). */
enum { BF_PEAK2D_NPARAM = 9, BF_BG2D_NPARAM = 3 };

/* Adds the peak (no background) to img (S x S) at pixel centres. */
void bf_peak2d_add(const bf_peak2d *p, int S, double *img);
/* Adds the background plane to img (S x S). */
void bf_background2d_add(const bf_background2d *bg, int S, double *img);
/* Value of peak + background at one point (r, c) and, when grad != NULL, its
 * derivatives with respect to the 9 peak parameters then the 3 background
 * parameters (12 values, order above): the fit's analytic Jacobian. */
double bf_peak2d_eval(const bf_peak2d *p, const bf_background2d *bg, int S, double r, double c,
                      double *grad);
/* The same at every pixel centre of an S x S patch, the rotation and widths set
 * up once: img[S * S] = peak + background (bg may be NULL: none), and when
 * jac != NULL, jac[(S * S) x 12] row-major, row i*S+j = grad at pixel (i, j). */
void bf_peak2d_eval_patch(const bf_peak2d *p, const bf_background2d *bg, int S, double *img,
                          double *jac);

#ifdef __cplusplus
}
#endif
#endif
