/* sim/sim_internal.h — helpers shared by the files of the sim layer. */
#ifndef BRAGGFLOW_SIM_INTERNAL_H
#define BRAGGFLOW_SIM_INTERNAL_H

#include "braggflow/sim.h"

/* <complex.h> stays out of the public headers: its `I` macro would break any
 * user code with a variable called I. */
#include <complex.h>

#ifndef CMPLX /* clang with glibc lacks C11's CMPLX (it needs __builtin_complex) */
#define CMPLX(x, y) ((double complex)((double)(x) + _Complex_I * (double)(y)))
#endif

/* Complex exponential integral E1(z), z not on the non-positive real axis
 * (principal branch). */
double complex bf_expint_e1(double complex z);
/* exp(z) E1(z): finite where E1 itself overflows (Re z << 0). */
double complex bf_expint_e1_scaled(double complex z);

/* exp(x^2) erfc(x), finite for large x. */
double bf_erfcx(double x);

/* Thompson-Cox-Hastings total FWHM and Lorentzian fraction (docs/gsas2.md §7.1). */
void bf_tch_fwhm_eta(double sigma2_us2, double gamma_us, double *fwhm_us, double *eta);

/* ---- Tabulated profile shapes (the fast path) ---------------------------------
 * For a fixed instrument and sample, a peak's shape depends only on d. The
 * table holds unit-area profiles at n_levels d values (log-spaced over the
 * simulated d range), each sampled at n_samples points across its core
 * window; a peak at any d is interpolated (cubic in D, linear in ln d).
 * Outside the core window only the Lorentzian part is left: it is added
 * analytically as a shifted Lorentzian out to tail_widths window widths. */
typedef struct {
    int n_levels, n_samples;
    double ln_dmin, ln_step;          /* level j sits at d = exp(ln_dmin + j ln_step) */
    double *values;                   /* [n_levels][n_samples], profile * window width */
    const bf_instrument *inst;
    bf_sample sample;
    double tail_widths;
} bf_profile_table;

bf_status bf_profile_table_build(bf_profile_table *t, const bf_instrument *inst,
                                 const bf_sample *sample, double dmin_A, double dmax_A,
                                 bf_error *err);
void bf_profile_table_free(bf_profile_table *t);
/* Adds scale * profile(t_i - tof(d)) for the active grid points (core from the
 * table, Lorentzian tails analytically). d must lie within the table's range. */
void bf_profile_table_add(const bf_profile_table *t, double d_A, double scale,
                          const bf_grid *g, double *y);

/* ---- Tabulated CW profiles (profile_cw.c) ------------------------------------ */
typedef struct {
    int n;                            /* samples in [u_lo, u_hi] (plus padding) */
    double u_lo, u_hi, du;            /* u = D / F, D in centidegrees from the line's centre */
    double *values;                   /* F P(u F) */
    double mean_shift_cdeg, var_shift_cdeg2; /* the FCJ kernel's mean and variance */
} bf_cw_level;

/* A stretch of positions over which GSAS-II's quadrature size stays the same: the
 * shape is smooth inside it and jumps at its ends, so levels never blend across. */
typedef struct {
    double lo_deg, step_deg;          /* its levels sit at lo + i step, i < n_levels */
    int first_level, n_levels;        /* into bf_cw_table.levels (n_levels >= 2) */
    int quadrature;                   /* the FCJ rule size N of every level in it */
} bf_cw_segment;

typedef struct {
    int ka2;                          /* shapes of the Ka2 partner of a Ka1 peak */
    int n_segments, n_levels;
    bf_cw_segment *segments;          /* by increasing position, contiguous */
    bf_cw_level *levels;
    const bf_instrument *inst;
    bf_sample sample;
} bf_cw_table;

/* Levels for Ka1 positions in [pos_min, pos_max] (ka2: of their Ka2 partners). */
bf_status bf_cw_table_build(bf_cw_table *t, const bf_instrument *inst, const bf_sample *sample,
                            double pos_min_deg, double pos_max_deg, int ka2, bf_error *err);
void bf_cw_table_free(bf_cw_table *t);
/* Adds scale * P(x - centre) over GSAS-II's window of the line at centre_deg: p is the
 * Ka1 peak (its position picks the level; widths from it), centre_deg = p->tth_deg for
 * the Ka1 table, the Ka2 position for the Ka2 table. */
void bf_cw_table_add(const bf_cw_table *t, const bf_cw_peak *p, double centre_deg, double scale,
                     const bf_grid *g, double *y);

#endif
