/* sim/instrument.c — GSAS-II instrument parameter files (.instprm) for a
 * pulsed-neutron TOF bank (PNT) or a constant-wavelength X-ray (PXC) or neutron
 * (PNC) diffractometer, the sample defaults GSAS-II applies to a new histogram,
 * and the TOF per-reflection peak parameters (docs/gsas2.md §4 "Peak position"
 * and §5 "Widths per reflection"; the CW ones are in profile_cw.c). */
#include "braggflow/sim.h"

#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *key;     /* as GSAS-II writes it (case-sensitive) */
    size_t offset;       /* into bf_instrument */
    int required;        /* REQ_TOF, REQ_CW: which types must give it */
} instprm_key;

enum { REQ_TOF = 1, REQ_CW = 2 };
#define FIELD(k, f, req) {k, offsetof(bf_instrument, f), req}
static const instprm_key numeric_keys[] = {
    FIELD("difC", difc, REQ_TOF),     FIELD("difA", difa, 0),       FIELD("difB", difb, 0),
    FIELD("Zero", zero, 0),           FIELD("alpha", alpha, REQ_TOF),
    FIELD("beta-0", beta0, REQ_TOF),  FIELD("beta-1", beta1, REQ_TOF), FIELD("beta-q", betaq, 0),
    FIELD("sig-0", sig0, REQ_TOF),    FIELD("sig-1", sig1, REQ_TOF), FIELD("sig-2", sig2, REQ_TOF),
    FIELD("sig-q", sigq, 0),          FIELD("X", x, 0),             FIELD("Y", y, 0),
    FIELD("Z", z, 0),                 FIELD("2-theta", two_theta_deg, REQ_TOF),
    FIELD("fltPath", flt_path_m, 0),
    /* constant wavelength: Lam (one line) or Lam1 + Lam2 + I(L2)/I(L1) (Ka1/Ka2) */
    FIELD("Lam", lam1_A, 0),          FIELD("Lam1", lam1_A, 0),     FIELD("Lam2", lam2_A, 0),
    FIELD("I(L2)/I(L1)", i_ratio, 0), FIELD("Polariz.", polariz, 0),
    FIELD("Azimuth", azimuth_deg, 0), FIELD("U", u, REQ_CW),        FIELD("V", v, REQ_CW),
    FIELD("W", w, REQ_CW),            FIELD("SH/L", shl, 0),
};
#define N_NUMERIC_KEYS (sizeof numeric_keys / sizeof numeric_keys[0])

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    size_t lead = strspn(s, " \t");
    memmove(s, s + lead, n - lead + 1);
}

/* The three histogram types braggflow simulates. */
static bf_status parse_type(const char *value, bf_instrument *out, const char *name,
                            int line_no, bf_error *err)
{
    static const struct {
        const char *name;
        bf_instrument_kind kind;
    } types[] = {{"PNT", BF_INST_PNT}, {"PXC", BF_INST_PXC}, {"PNC", BF_INST_PNC}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(value, types[i].name) == 0) {
            snprintf(out->type, sizeof out->type, "%s", value);
            out->kind = types[i].kind;
            return BF_OK;
        }
    return bf_error_set(err, BF_ERR_UNSUPPORTED,
                        "%s:%d: Type: '%s' is not supported (PNT: pulsed-neutron TOF, PXC: "
                        "constant-wavelength X-ray, PNC: constant-wavelength neutron)",
                        name, line_no, value);
}

static bf_status check_cw(const bf_instrument *in, const char *name, bf_error *err)
{
    if (!(in->lam1_A > 0.0 && in->lam1_A < 100.0))
        return bf_error_set(err, BF_ERR_INVALID, "%s: Lam: wavelength must lie in (0, 100) A "
                            "(got %g)", name, in->lam1_A);
    if (in->lam2_A != 0.0 && !(in->lam2_A > 0.0 && in->lam2_A < 100.0))
        return bf_error_set(err, BF_ERR_INVALID, "%s: Lam2: must lie in (0, 100) A (got %g)",
                            name, in->lam2_A);
    if (!(in->i_ratio >= 0.0))
        return bf_error_set(err, BF_ERR_INVALID, "%s: I(L2)/I(L1): must be >= 0 (got %g)", name,
                            in->i_ratio);
    if (!(in->polariz >= 0.0 && in->polariz <= 1.0))
        return bf_error_set(err, BF_ERR_INVALID, "%s: Polariz.: must lie in [0, 1] (got %g)",
                            name, in->polariz);
    if (!(in->shl >= 0.0))
        return bf_error_set(err, BF_ERR_INVALID, "%s: SH/L: must be >= 0 (got %g)", name,
                            in->shl);
    return BF_OK;
}

/* Checks what the profile needs: positive difC and widths, a bank angle. */
static bf_status check_instrument(const bf_instrument *in, const char *name, bf_error *err)
{
    if (bf_instrument_is_cw(in))
        return check_cw(in, name, err);
    if (!(in->difc > 0.0))
        return bf_error_set(err, BF_ERR_INVALID, "%s: difC: must be > 0 (got %g)", name,
                            in->difc);
    if (!(in->alpha > 0.0))
        return bf_error_set(err, BF_ERR_INVALID, "%s: alpha: must be > 0 (got %g)", name,
                            in->alpha);
    if (!(in->two_theta_deg > 0.0 && in->two_theta_deg < 180.0))
        return bf_error_set(err, BF_ERR_INVALID, "%s: 2-theta: must lie in (0, 180) (got %g)",
                            name, in->two_theta_deg);
    return BF_OK;
}

/* One "key:value" item of line line_no. */
static bf_status parse_item(char *item, bf_instrument *out, const char *name, int line_no,
                            int seen[], int *seen_type, int *seen_lam, bf_error *err)
{
    char *colon = strchr(item, ':');
    if (colon == NULL)
        return bf_error_set(err, BF_ERR_PARSE, "%s:%d: expected 'key:value', got '%s'", name,
                            line_no, item);
    *colon = 0;
    char *key = item, *value = colon + 1;
    trim(key);
    trim(value);
    if (strcmp(key, "Type") == 0) {
        if ((*seen_type)++)
            return bf_error_set(err, BF_ERR_PARSE, "%s:%d: Type: given twice", name, line_no);
        return parse_type(value, out, name, line_no, err);
    }
    size_t k = 0;
    while (k < N_NUMERIC_KEYS && strcmp(numeric_keys[k].key, key) != 0)
        k++;
    if (k == N_NUMERIC_KEYS)
        return BF_OK; /* Bank, ...: not used by the profiles */
    if (seen[k]++)
        return bf_error_set(err, BF_ERR_PARSE, "%s:%d: %s: given twice (one bank per file)",
                            name, line_no, key);
    if (strcmp(key, "Lam") == 0 || strcmp(key, "Lam1") == 0) {
        if ((*seen_lam)++)
            return bf_error_set(err, BF_ERR_PARSE, "%s:%d: %s: Lam and Lam1 both given", name,
                                line_no, key);
    }
    double v;
    if (bf_parse_double(value, &v) != 0 || !isfinite(v))
        return bf_error_set(err, BF_ERR_PARSE, "%s:%d: %s: '%s' is not a number", name, line_no,
                            key, value);
    *(double *)((char *)out + numeric_keys[k].offset) = v;
    return BF_OK;
}

bf_status bf_instrument_parse(const char *text, size_t len, const char *name,
                              bf_instrument *out, bf_error *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->source, sizeof out->source, "%s", name);
    out->polariz = 0.5; /* unpolarised when a PXC file does not say */
    int seen[N_NUMERIC_KEYS] = {0};
    int seen_type = 0, seen_lam = 0;
    size_t pos = 0;
    for (int line_no = 1; pos < len; line_no++) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        char line[512];
        size_t n = end - pos;
        if (n >= sizeof line)
            return bf_error_set(err, BF_ERR_PARSE, "%s:%d: line too long", name, line_no);
        memcpy(line, text + pos, n);
        line[n] = 0;
        pos = end + 1;
        if (memchr(line, 0, n) != NULL)
            return bf_error_set(err, BF_ERR_PARSE, "%s:%d: NUL byte in text", name, line_no);
        trim(line);
        if (line[0] == 0 || line[0] == '#')
            continue;
        /* GSAS-II also writes several key:value pairs on one line, separated by ';' */
        for (char *item = line, *next; item != NULL; item = next) {
            next = strchr(item, ';');
            if (next != NULL)
                *next++ = 0;
            trim(item);
            if (item[0] == 0)
                continue;
            bf_status st = parse_item(item, out, name, line_no, seen, &seen_type, &seen_lam, err);
            if (st != BF_OK)
                return st;
        }
    }
    if (!seen_type)
        return bf_error_set(err, BF_ERR_INVALID, "%s: Type: missing", name);
    const int need = bf_instrument_is_cw(out) ? REQ_CW : REQ_TOF;
    if (need == REQ_CW && !seen_lam)
        return bf_error_set(err, BF_ERR_INVALID, "%s: Lam: missing (give Lam, or Lam1 and Lam2)",
                            name);
    for (size_t k = 0; k < N_NUMERIC_KEYS; k++)
        if ((numeric_keys[k].required & need) && !seen[k])
            return bf_error_set(err, BF_ERR_INVALID, "%s: %s: missing", name, numeric_keys[k].key);
    return check_instrument(out, name, err);
}

bf_status bf_instrument_read(const char *path, bf_instrument *out, bf_error *err)
{
    char *text = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    bf_status st = bf_read_file(path, &text, &len, err);
    if (st == BF_OK)
        st = bf_instrument_parse(text, len, path, out, err);
    free(text);
    return st;
}

void bf_sample_defaults(bf_sample *s)
{
    s->scale = 1.0;
    s->phase_fraction = 1.0;
    s->size_um = 1.0;
    s->size_mix = 1.0;
    s->mustrain = 1000.0;
    s->strain_mix = 1.0;
    s->b_table = BF_B_TABLE_GSAS2;
    s->n_fprime = 0;
}

bf_radiation bf_instrument_radiation(const bf_instrument *inst, const bf_sample *s)
{
    bf_radiation r = bf_radiation_neutron(s->b_table);
    if (inst->kind == BF_INST_PXC) {
        r.kind = BF_RADIATION_XRAY;
        r.wavelength_A = inst->lam1_A;
        r.n_fprime = s->n_fprime;
        memcpy(r.fprime, s->fprime, sizeof r.fprime);
    }
    return r;
}

double bf_tof_position_us(const bf_instrument *inst, double d_A)
{
    return inst->difc * d_A + inst->difa * d_A * d_A + inst->difb / d_A + inst->zero;
}

void bf_tof_peak_at(const bf_instrument *inst, const bf_sample *s, double d_A, bf_tof_peak *out)
{
    const double d2 = d_A * d_A;
    /* GSAS-II's isotropic size and microstrain broadening in TOF (docs/gsas2.md
     * §6 "Sample broadening"): Lorentzian share adds to gamma, Gaussian share to sigma^2. */
    const double size_us = 1.0e-4 * inst->difc * d2 / s->size_um;
    const double strain_us = 1.0e-6 * inst->difc * d_A * s->mustrain;
    const double g_size = size_us * (1.0 - s->size_mix), g_strain = strain_us * (1.0 - s->strain_mix);
    out->tof_us = bf_tof_position_us(inst, d_A);
    out->sigma2_us2 = inst->sig0 + inst->sig1 * d2 + inst->sig2 * d2 * d2 + inst->sigq * d_A +
                      (g_size * g_size + g_strain * g_strain) / (8.0 * M_LN2);
    out->gamma_us = inst->x * d_A + inst->y * d2 + inst->z + size_us * s->size_mix +
                    strain_us * s->strain_mix;
    out->alpha_per_us = inst->alpha / d_A;
    out->beta_per_us = inst->beta0 + inst->beta1 / (d2 * d2) + inst->betaq / d2;
}
