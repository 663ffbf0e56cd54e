/* braggflow/sim.h — GSAS-II-compatible powder simulation: instrument parameter
 * files (.instprm) for TOF neutrons (PNT) and constant-wavelength X-rays (PXC) and
 * neutrons (PNC), GSAS-II's grids, the back-to-back-exponential (x) TCH
 * pseudo-Voigt TOF profile and the FCJ-asymmetric TCH pseudo-Voigt CW profile, and
 * the powder pattern simulator (cell -> pattern).
 * Units: TOF and its widths in microseconds; 2theta in degrees, CW widths in
 * centidegrees (as GSAS-II); d in Angstrom. Reference: DESIGN §3, docs/gsas2.md
 * (TOF) and docs/gsas2-cw.md (CW): the formulas as GSAS-II evaluates them. */
#ifndef BRAGGFLOW_SIM_H
#define BRAGGFLOW_SIM_H

#include "braggflow/core.h"
#include "braggflow/crystal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Instrument --------------------------------------------------------- */
/* GSAS-II's histogram types: pulsed-neutron TOF, constant-wavelength X-ray, CW neutron. */
typedef enum { BF_INST_PNT, BF_INST_PXC, BF_INST_PNC } bf_instrument_kind;

typedef struct {
    char type[8];                     /* "PNT", "PXC" or "PNC" as written in the file */
    bf_instrument_kind kind;
    /* TOF (PNT) */
    double difc, difa, difb;          /* TOF_us = difc d + difa d^2 + difb / d + zero */
    double alpha;                     /* alpha(d) = alpha / d            (1/us) */
    double beta0, beta1, betaq;       /* beta(d) = beta0 + beta1/d^4 + betaq/d^2 */
    double sig0, sig1, sig2, sigq;    /* sigma^2 = sig0 + sig1 d^2 + sig2 d^4 + sigq d (us^2) */
    double two_theta_deg;             /* bank angle */
    double flt_path_m;
    /* both: TOF: zero in us, gamma = x d + y d^2 + z (us); CW: Zero in degrees 2theta,
     * gamma = X / cos(theta) + Y tan(theta) + Z (centidegrees) */
    double zero, x, y, z;
    /* constant wavelength (PXC, PNC; docs/gsas2-cw.md) */
    double lam1_A, lam2_A;            /* Lam (or Lam1), and Lam2 for Ka1/Ka2 (0: one line) */
    double i_ratio;                   /* I(L2)/I(L1) (0 without Lam2) */
    double polariz, azimuth_deg;      /* Polariz., Azimuth (X-rays only) */
    double u, v, w;                   /* sigma^2 = U tan^2 + V tan + W (centidegrees^2) */
    double shl;                       /* SH/L as given; GSAS-II uses max(SH/L, 0.002) */
    char source[4096];                /* file it came from */
} bf_instrument;

static inline int bf_instrument_is_cw(const bf_instrument *inst)
{
    return inst->kind != BF_INST_PNT;
}

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
    int n_fprime;                     /* X-rays: f', f'' given by the user for these elements */
    bf_fprime_override fprime[BF_MAX_FPRIME_OVERRIDES];
} bf_sample;
/* What scatters for this instrument and sample: neutrons (b table) for PNT/PNC, X-rays at
 * Lam1 with the sample's f', f'' overrides for PXC. */
bf_radiation bf_instrument_radiation(const bf_instrument *inst, const bf_sample *s);
void bf_sample_defaults(bf_sample *s);

/* ---- Grids: GSAS-II's log-spaced TOF grid, or a linear 2theta grid ---------- */
typedef enum { BF_X_TOF_US, BF_X_TTH_DEG } bf_x_unit;
const char *bf_x_unit_name(bf_x_unit u);      /* "tof_us", "two_theta_deg" */

typedef struct {
    double tmin_ms, tmax_ms;          /* TOF: 1.36, 18.919 */
    double tstep_rel;                 /* TOF: dT/T, 0.0009381 */
    /* CW, degrees 2theta; 0 = the default for the instrument (bf_grid_build) */
    double tth_min_deg, tth_max_deg, tth_step_deg;
} bf_grid_spec;
void bf_grid_spec_defaults(bf_grid_spec *g);

typedef struct {
    bf_x_unit unit;                   /* from the instrument's type */
    int n;                            /* number of points (2806 for the seed TOF settings) */
    double *x;                        /* [n] TOF bin centres (us) or 2theta (deg) */
    double log_step;                  /* TOF: ln(x[i+1] / x[i]) = tstep_rel (geometric grid) */
    double step;                      /* CW: x[i+1] - x[i] (deg) */
    int first_active, end_active;     /* intensity is computed for i in [first_active, end_active) */
    double lower, upper;              /* peaks are kept when lower < position < upper (x units;
                                       * TOF: lower from d = 0.4 A) */
    double dmin_A;                    /* reflections are generated for d >= dmin_A (GSAS-II) */
} bf_grid;

/* TOF: GSAS-II's grid from tmin/tmax/tstep. CW: N = int((max - min) / step) + 1 points
 * min + i (max - min) / (N - 1) (numpy.linspace, as GSAS-II), defaults 5..120 deg by
 * 0.01 where the spec has 0; errors for a range outside (0, 180) or a wavelength for
 * which no d fits. */
bf_status bf_grid_build(const bf_grid_spec *spec, const bf_instrument *inst, bf_grid *out,
                        bf_error *err);
void bf_grid_free(bf_grid *g);

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

/* ---- Constant-wavelength peaks (docs/gsas2-cw.md §8.2-8.5) ------------------ */
typedef struct {
    double tth_deg;                   /* peak position incl. Zero (Ka1 line) */
    double sig_cdeg2, gam_cdeg;       /* Gaussian variance, Lorentzian FWHM (centideg) */
    double shl;                       /* max(SH/L, 0.002) */
} bf_cw_peak;

/* Position of a reflection: 2 asin(lambda / 2d) + Zero (degrees), lambda = Lam1;
 * NAN when lambda / 2d > 1 (GSAS-II clamps at 0.995 for its range test). */
double bf_cw_position_deg(const bf_instrument *inst, double d_A);
/* Widths at a peak position (Zero included) with the sample's size/strain broadening. */
void bf_cw_peak_at(const bf_instrument *inst, const bf_sample *s, double tth_deg,
                   bf_cw_peak *out);
/* Ka2 position of a Ka1 peak at tth_deg (GSAS-II's first-order formula), degrees. */
double bf_cw_ka2_position_deg(const bf_instrument *inst, double tth_deg);
/* Lorentz-polarisation factor at 2theta: pol / (2 sin^2 theta cos theta), pol = 1 for
 * neutrons. */
double bf_cw_lorentz_polarization(const bf_instrument *inst, double tth_deg);
/* GSAS-II's profile window around a peak at tth_deg (degrees below and above). */
void bf_cw_window(const bf_cw_peak *p, double *below_deg, double *above_deg);
/* The FCJ-asymmetric TCH pseudo-Voigt (per centidegree) at dx = x - tth (degrees),
 * evaluated as GSAS-II's PSVFCJO does (quirks included; double precision). The
 * reference path; the simulator tabulates it (sim/profile_cw.c). */
double bf_cw_profile_eval(const bf_cw_peak *p, double dx_deg);

/* ---- Powder pattern simulator --------------------------------------------- */
typedef struct {
    int h, k, l, mult;
    double d_A, tof_us;
    double f2;                        /* |F|^2, (1e-12 cm)^2 (neutrons) or electrons^2 */
    double sigma2_us2, gamma_us, alpha_per_us, beta_per_us;
    /* TOF: scale * fraction * mult / V * sin(theta_bank) * d^4;
     * CW: scale * fraction * mult / V * Lorentz-polarisation (docs/gsas2-cw.md §8.6) */
    double icorr;
    /* CW only (tof_us, sigma2_us2, gamma_us, alpha, beta are then 0) */
    double tth_deg, tth2_deg;         /* Ka1 position (incl. Zero), Ka2 position (0: none) */
    double sig_cdeg2, gam_cdeg;       /* Gaussian variance, Lorentzian FWHM (centideg) */
} bf_reflection;

typedef struct bf_powder_sim bf_powder_sim;

/* Prepares everything that does not depend on the cell (grid, reflection table
 * with structure factors). The instrument's type chooses TOF or CW, and for CW
 * X-ray or neutron scattering. Any cell with a, b, c <= max_length_A can be
 * simulated afterwards; pass 0 to use the crystal's own cell. */
bf_status bf_powder_sim_create(const bf_crystal *crystal, const bf_instrument *inst,
                               const bf_sample *sample, const bf_grid_spec *grid,
                               double max_length_A, bf_powder_sim **out, bf_error *err);
void bf_powder_sim_destroy(bf_powder_sim *sim);
const bf_grid *bf_powder_sim_grid(const bf_powder_sim *sim);

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
