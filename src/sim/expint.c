/* sim/expint.c — the special functions of the TOF profile: the complex
 * exponential integral E1(z) (Abramowitz & Stegun 5.1.11 and 5.1.22) and the
 * scaled complementary error function erfcx(x) = exp(x^2) erfc(x).
 *
 * The profile needs w(z) = exp(z) E1(z) for z in the upper half plane, often
 * far into the left half (z = -alpha D + i alpha F/2 for large D), where E1
 * itself overflows. Three regimes keep w accurate to ~1e-10 or better:
 *  - |z| small, or Re z < 0 with Im z small against |Re z| (y^2 < 20|x|):
 *    the power series, whose terms then exceed the result by at most ~e^10;
 *  - everywhere else: the continued fraction, which converges quickly away
 *    from the negative real axis;
 *  - |z| beyond 700 on the left: the asymptotic series (exp(z) underflows). */
#include "sim_internal.h"

#include <math.h>

#define EULER_GAMMA 0.57721566490153286061

/* E1(z) by its power series; good for |z| up to ~40 near the negative axis. */
static double complex e1_series(double complex z)
{
    double complex sum = 0.0, term = 1.0;
    for (int k = 1; k < 1000; k++) {
        term *= -z / k;                      /* (-z)^k / k! */
        double complex add = term / k;
        sum += add;
        if (cabs(add) <= 1e-17 * cabs(sum))
            break;
    }
    return -EULER_GAMMA - clog(z) - sum;
}

/* exp(z) E1(z) by the even continued fraction
 *   1/(z+1 - 1/(z+3 - 4/(z+5 - 9/(z+7 - ...)))) (modified Lentz). */
static double complex scaled_e1_fraction(double complex z)
{
    const double tiny = 1e-300;
    double complex f = z + 1.0, c = f, d = 0.0;
    if (f == 0.0)
        f = c = tiny;
    for (int n = 1; n < 100000; n++) {
        double complex a = -(double)n * n, b = z + 2.0 * n + 1.0;
        d = b + a * d;
        if (d == 0.0)
            d = tiny;
        c = b + a / c;
        if (c == 0.0)
            c = tiny;
        d = 1.0 / d;
        double complex delta = c * d;
        f *= delta;
        if (cabs(delta - 1.0) < 1e-16)
            break;
    }
    return 1.0 / f;
}

/* exp(z) E1(z) ~ sum_k (-1)^k k! / z^(k+1), for |z| large. */
static double complex scaled_e1_asymptotic(double complex z)
{
    double complex sum = 0.0, term = 1.0 / z;
    for (int k = 1; k < 60; k++) {
        double complex next = term * (-(double)k / z);
        if (cabs(next) >= cabs(term))
            break;
        sum += term;
        term = next;
        if (cabs(term) < 1e-17 * cabs(sum))
            break;
    }
    return sum + term;
}

static int use_series(double complex z)
{
    double x = creal(z), y = fabs(cimag(z)), r = cabs(z);
    if (r <= 2.0)
        return 1;
    return x < 0.0 && r < 700.0 && y * y < 20.0 * -x;
}

double complex bf_expint_e1_scaled(double complex z)
{
    if (use_series(z))
        return cexp(z) * e1_series(z);
    if (creal(z) < -700.0)
        return scaled_e1_asymptotic(z);
    return scaled_e1_fraction(z);
}

double complex bf_expint_e1(double complex z)
{
    if (use_series(z))
        return e1_series(z);
    return cexp(-z) * bf_expint_e1_scaled(z);
}

/* erfcx(x) = exp(x^2) erfc(x). For x < 4 the direct product is exact enough;
 * beyond, the Laplace continued fraction erfc(x) = exp(-x^2)/sqrt(pi) *
 * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))) evaluated bottom-up. */
double bf_erfcx(double x)
{
    if (x < 4.0)
        return exp(x * x) * erfc(x);
    double t = x;
    for (int k = 40; k >= 1; k--)
        t = x + 0.5 * k / t;
    return 1.0 / (sqrt(M_PI) * t);
}
