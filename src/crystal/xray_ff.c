/* crystal/xray_ff.c — X-ray atomic scattering factors: f0 (Cromer & Waber
 * coefficients) and anomalous dispersion f', f''. Placeholder until the tables land. */
#include "crystal_internal.h"

#include <math.h>

double bf_xray_energy_keV(double wavelength_A)
{
    return 12.397639 / wavelength_A;
}

double bf_xray_f0(const bf_xray_f0_coeffs *c, double s2_invA2)
{
    double f = c->c;
    for (int i = 0; i < 4; i++)
        f += c->a[i] * exp(-c->b[i] * s2_invA2);
    return f;
}

bf_status bf_xray_f0_lookup(const char *type_symbol, bf_xray_f0_coeffs *out, bf_error *err)
{
    (void)out;
    return bf_error_set(err, BF_ERR_UNSUPPORTED, "%s: X-ray form factors not implemented yet",
                        type_symbol);
}

bf_status bf_xray_anomalous(const char *element, double energy_keV, double *f_prime,
                            double *f_double_prime, bf_error *err)
{
    (void)energy_keV;
    *f_prime = *f_double_prime = 0.0;
    return bf_error_set(err, BF_ERR_UNSUPPORTED, "%s: X-ray f', f'' not implemented yet",
                        element);
}
