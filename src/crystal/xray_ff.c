/* crystal/xray_ff.c — X-ray atomic scattering factors: f0 (Cromer & Waber coefficients,
 * International Tables Vol. IV Table 2.2B; the table and its sources are in
 * crystal/xray_ff_data.c) and anomalous dispersion f', f'' (xraylib).
 *
 * Type symbols select table entries as GSAS-II does: the element (one or two letters, any
 * case: "BA2+" is Ba), then an optional charge written either way round ("Ca2+", "Ca+2";
 * "O2-" and "O-2" are both O-2, Tokonami's O2-; a sign without a number is 1: "Na+" is
 * Na+1). A charged symbol gets the ionic entry when the table has it, else the neutral
 * atom ("Fe4+" -> Fe). Anything after the element without a sign is a site label
 * ("O1", "Ba1a": the neutral atom). D and T scatter X-rays as H.
 *
 * f', f'': GSAS-II computes them with Cromer & Liberman's (1981) program from orbital cross
 * sections (its Xsect.dat). Those orbital tables are not published in a form braggflow
 * can take, so braggflow uses xraylib's Fi / Fii (T. Schoonjans et al., Spectrochim. Acta B
 * 66 (2011) 776; anomalous scattering factors from Kissel's RTAB S-matrix tables):
 * measured against GSAS-II's values for the reference patterns (README §8.8), f' is within
 * 0.11 e and f'' within 0.20 e at 8.048 keV (Bi worst) and 0.044 / 0.052 e at 27.075 keV.
 * xraylib returns f'' with a negative sign (F = f0 + f' - i f''); it is returned positive
 * here (F = f0 + f' + i f'', GSAS-II's convention). */
#include "crystal_internal.h"
#include "xray_ff_data.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xraylib.h>

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

static const bf_xray_ff_entry *find_entry(int z, int charge)
{
    for (size_t i = 0; i < bf_xray_ff_table_n; i++)
        if (bf_xray_ff_table[i].z == z && bf_xray_ff_table[i].charge == charge)
            return &bf_xray_ff_table[i];
    return NULL;
}

/* Z of a neutral-atom symbol in canonical case ("Ca"), 0 when the table has none. */
static int z_of_symbol(const char *el)
{
    if (!strcmp(el, "D") || !strcmp(el, "T"))
        return 1;
    for (size_t i = 0; i < bf_xray_ff_table_n; i++)
        if (bf_xray_ff_table[i].charge == 0 && !strcmp(bf_xray_ff_table[i].symbol, el))
            return bf_xray_ff_table[i].z;
    return 0;
}

/* Z and charge of a type symbol (bf_type_symbol_split, the one parser). A symbol whose
 * leading letters spell no element with a form factor: BF_ERR_INVALID "Xx: <what>". */
static bf_status parse_symbol(const char *symbol, const char *what, int *z, int *charge,
                              bf_error *err)
{
    const char *s = symbol ? symbol : "";
    char el[4];
    const int rc = bf_type_symbol_split(s, el, charge);
    if (rc == -2)
        return bf_error_set(err, BF_ERR_INVALID,
                            "%s: malformed charge (expected e.g. \"Ca2+\" or \"Ca+2\")", s);
    if (rc != 0 || (*z = z_of_symbol(el)) == 0)
        return bf_error_set(err, BF_ERR_INVALID, "%s: %s", s, what);
    return BF_OK;
}

bf_status bf_xray_f0_lookup(const char *type_symbol, bf_xray_f0_coeffs *out, bf_error *err)
{
    int z, charge;
    bf_status st = parse_symbol(type_symbol, "no X-ray form factor", &z, &charge, err);
    if (st != BF_OK)
        return st;
    const bf_xray_ff_entry *e = charge != 0 ? find_entry(z, charge) : NULL;
    if (e == NULL)
        e = find_entry(z, 0);
    if (e == NULL) /* every Z the parser accepts has its neutral entry */
        return bf_error_set(err, BF_ERR_INVALID, "%s: no X-ray form factor", type_symbol);
    memcpy(out->a, e->a, sizeof out->a);
    memcpy(out->b, e->b, sizeof out->b);
    out->c = e->c;
    snprintf(out->symbol, sizeof out->symbol, "%s", e->symbol);
    return BF_OK;
}

bf_status bf_xray_anomalous(const char *element, double energy_keV, double *f_prime,
                            double *f_double_prime, bf_error *err)
{
    *f_prime = *f_double_prime = 0.0;
    int z, charge;
    bf_status st = parse_symbol(element, "no X-ray anomalous-dispersion data (f', f'')", &z,
                                &charge, err);
    if (st != BF_OK)
        return st;
    if (!isfinite(energy_keV) || energy_keV <= 0)
        return bf_error_set(err, BF_ERR_INVALID,
                            "%s: X-ray energy %g keV: must be positive and finite", element,
                            energy_keV);
    xrl_error *xe = NULL;
    double fp = Fi(z, energy_keV, &xe);
    double fpp = xe == NULL ? -Fii(z, energy_keV, &xe) : 0.0;
    if (xe != NULL) {
        bf_error_set(err, BF_ERR_INVALID, "%s: no f', f'' at %g keV (xraylib: %s)", element,
                     energy_keV, xe->message ? xe->message : "error");
        xrl_error_free(xe);
        return BF_ERR_INVALID;
    }
    *f_prime = fp;
    *f_double_prime = fpp;
    return BF_OK;
}

bf_status bf_fprime_overrides_parse(const char *text, const char *what, bf_fprime_override *out,
                                    int *n, bf_error *err)
{
    *n = 0;
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        if (*p == 0)
            return BF_OK;
        char item[128];
        size_t len = strcspn(p, " ,\t");
        if (len >= sizeof item)
            return bf_error_set(err, BF_ERR_PARSE, "%s: item '%.40s...' too long", what, p);
        memcpy(item, p, len);
        item[len] = 0;
        p += len;
        if (*n == BF_MAX_FPRIME_OVERRIDES)
            return bf_error_set(err, BF_ERR_INVALID, "%s: more than %d elements", what,
                                BF_MAX_FPRIME_OVERRIDES);
        char *c1 = strchr(item, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c1 == NULL || c2 == NULL)
            return bf_error_set(err, BF_ERR_PARSE,
                                "%s: '%s': expected ELEMENT:f':f'' (e.g. Ba:-1.05:8.46)", what,
                                item);
        *c1 = *c2 = 0;
        bf_fprime_override *o = &out[*n];
        bf_error sub = {0};
        if (bf_element_from_type_symbol(item, o->element, &sub) != BF_OK)
            return bf_error_set(err, BF_ERR_INVALID, "%s: %s", what, sub.msg);
        if (bf_parse_double(c1 + 1, &o->f_prime) != 0 || !isfinite(o->f_prime) ||
            bf_parse_double(c2 + 1, &o->f_double_prime) != 0 || !isfinite(o->f_double_prime))
            return bf_error_set(err, BF_ERR_PARSE, "%s: %s: f' '%s', f'' '%s' are not numbers",
                                what, item, c1 + 1, c2 + 1);
        for (int k = 0; k < *n; k++)
            if (strcmp(out[k].element, o->element) == 0)
                return bf_error_set(err, BF_ERR_INVALID, "%s: %s given twice", what,
                                    o->element);
        (*n)++;
    }
}
