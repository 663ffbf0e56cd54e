/* sim/instrument.c — GSAS-II instrument parameter files (.instprm) for a
 * pulsed-neutron TOF bank, the sample defaults GSAS-II applies to a new
 * histogram, and the per-reflection peak parameters
 * (docs/gsas2.md §4 "Peak position" and §5 "Widths per reflection"). */
#include "braggflow/sim.h"

#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *key;     /* as GSAS-II writes it (case-sensitive) */
    size_t offset;       /* into bf_instrument */
    int required;
} instprm_key;

#define FIELD(k, f, req) {k, offsetof(bf_instrument, f), req}
static const instprm_key numeric_keys[] = {
    FIELD("difC", difc, 1),     FIELD("difA", difa, 0),      FIELD("difB", difb, 0),
    FIELD("Zero", zero, 0),     FIELD("alpha", alpha, 1),    FIELD("beta-0", beta0, 1),
    FIELD("beta-1", beta1, 1),  FIELD("beta-q", betaq, 0),   FIELD("sig-0", sig0, 1),
    FIELD("sig-1", sig1, 1),    FIELD("sig-2", sig2, 1),     FIELD("sig-q", sigq, 0),
    FIELD("X", x, 0),           FIELD("Y", y, 0),            FIELD("Z", z, 0),
    FIELD("2-theta", two_theta_deg, 1), FIELD("fltPath", flt_path_m, 0),
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

/* Checks what the profile needs: positive difC and widths, a bank angle. */
static bf_status check_instrument(const bf_instrument *in, const char *name, bf_error *err)
{
    if (strcmp(in->type, "PNT") != 0)
        return bf_error_set(err, BF_ERR_UNSUPPORTED,
                            "%s: Type: '%s' is not supported (only PNT, pulsed-neutron TOF)",
                            name, in->type);
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

bf_status bf_instrument_parse(const char *text, size_t len, const char *name,
                              bf_instrument *out, bf_error *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->source, sizeof out->source, "%s", name);
    int seen[N_NUMERIC_KEYS] = {0};
    int seen_type = 0;
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
        char *colon = strchr(line, ':');
        if (colon == NULL)
            return bf_error_set(err, BF_ERR_PARSE, "%s:%d: expected 'key:value', got '%s'",
                                name, line_no, line);
        *colon = 0;
        char *key = line, *value = colon + 1;
        trim(key);
        trim(value);
        if (strcmp(key, "Type") == 0) {
            if (seen_type++)
                return bf_error_set(err, BF_ERR_PARSE, "%s:%d: Type: given twice", name, line_no);
            snprintf(out->type, sizeof out->type, "%s", value);
            continue;
        }
        size_t k = 0;
        while (k < N_NUMERIC_KEYS && strcmp(numeric_keys[k].key, key) != 0)
            k++;
        if (k == N_NUMERIC_KEYS)
            continue; /* Bank, Azimuth, ...: not used by the TOF profile */
        if (seen[k]++)
            return bf_error_set(err, BF_ERR_PARSE,
                                "%s:%d: %s: given twice (one bank per file)", name, line_no, key);
        double v;
        if (bf_parse_double(value, &v) != 0 || !isfinite(v))
            return bf_error_set(err, BF_ERR_PARSE, "%s:%d: %s: '%s' is not a number", name,
                                line_no, key, value);
        *(double *)((char *)out + numeric_keys[k].offset) = v;
    }
    if (!seen_type)
        return bf_error_set(err, BF_ERR_INVALID, "%s: Type: missing", name);
    for (size_t k = 0; k < N_NUMERIC_KEYS; k++)
        if (numeric_keys[k].required && !seen[k])
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
