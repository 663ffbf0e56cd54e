/* sim/profile.c — the TOF peak profile as GSAS-II evaluates it: back-to-back
 * exponentials convolved with a Thompson-Cox-Hastings pseudo-Voigt
 * (docs/gsas2.md §7 "Profile"). This is the reference path,
 * in double precision; the simulator uses the tabulated fast path
 * (profile_table.c), which tests check against this one. */
#include "sim_internal.h"

#include <math.h>

#define FWHM_PER_SIGMA 2.35482 /* GSAS-II's constant, 2 sqrt(2 ln 2) to 6 digits */

void bf_tch_fwhm_eta(double sigma2_us2, double gamma_us, double *fwhm_us, double *eta)
{
    /* P. Thompson, D. E. Cox & J. B. Hastings, J. Appl. Cryst. 20 (1987) 79. */
    const double fg = FWHM_PER_SIGMA * sqrt(sigma2_us2), fl = gamma_us;
    const double fg2 = fg * fg, fl2 = fl * fl;
    double f5 = fg2 * fg2 * fg + 2.69269 * fg2 * fg2 * fl + 2.42843 * fg2 * fg * fl2 +
                4.47163 * fg2 * fl2 * fl + 0.07842 * fg * fl2 * fl2 + fl2 * fl2 * fl;
    double f = pow(f5, 0.2);
    double q = fl / f;
    *fwhm_us = f;
    *eta = 1.36603 * q - 0.47719 * q * q + 0.11116 * q * q * q;
}

double bf_tof_profile_eval(const bf_tof_peak *p, double dt_us)
{
    double fwhm, eta;
    bf_tch_fwhm_eta(p->sigma2_us2, p->gamma_us, &fwhm, &eta);
    const double a = p->alpha_per_us, b = p->beta_per_us, d = dt_us;
    const double s2 = (fwhm / FWHM_PER_SIGMA) * (fwhm / FWHM_PER_SIGMA); /* both parts use F */
    const double norm = a * b / (2.0 * (a + b));

    /* Gaussian part: N [exp(u) erfc(y) + exp(v) erfc(z)], written as
     * exp(-D^2/2s^2) [erfcx(y) + erfcx(z)] when y or z is large. */
    const double root = sqrt(2.0 * s2);
    const double y = (a * s2 + d) / root, z = (b * s2 - d) / root;
    const double u = 0.5 * a * (a * s2 + 2.0 * d), v = 0.5 * b * (b * s2 - 2.0 * d);
    const double g0 = exp(-d * d / (2.0 * s2));
    double gauss = (y < 4.0 ? exp(u) * erfc(y) : g0 * bf_erfcx(y)) +
                   (z < 4.0 ? exp(v) * erfc(z) : g0 * bf_erfcx(z));
    gauss *= norm;

    /* Lorentzian part: -(2N/pi) Im[exp(p) E1(p) + exp(q) E1(q)],
     * p = -a D + i a F/2, q = -b D + i b F/2 (both with -D, as GSAS-II has it). */
    const double complex pa = CMPLX(-a * d, a * fwhm / 2.0);
    const double complex pb = CMPLX(-b * d, b * fwhm / 2.0);
    double lorentz = -(2.0 * norm / M_PI) *
                     (cimag(bf_expint_e1_scaled(pa)) + cimag(bf_expint_e1_scaled(pb)));
    return eta * lorentz + (1.0 - eta) * gauss;
}
