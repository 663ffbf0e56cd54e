/* data/pattern_read.c — measured powder patterns: xy / xye columns, GSAS raw files
 * (.gsa / .fxye: a BANK line and its records) and braggflow's CSV, onto a model's
 * grid. Conventions (GSAS manual, "GSAS Standard Powder Data File"): lines are
 * 80-column records; the first is a title; '#' lines are comments; the BANK line is
 *   BANK IBANK NCHAN NREC BINTYP BCOEF1 BCOEF2 BCOEF3 BCOEF4 TYPE
 * CONST: x_i = BCOEF1 + i BCOEF2, in centidegrees of 2theta for constant wavelength
 * or microseconds for TOF (the line does not say which); SLOG (TOF): x_0 = BCOEF1
 * (start), BCOEF2 the end, x_i = x_0 (1 + BCOEF3)^i; RALF (TOF, x given in the data
 * records here). Records: STD ten values of (I2 counters, F6.0 intensity), ESD five
 * (F8.0 intensity, F8.0 esd) pairs, FXYE free-format x y esd, FXY x y.
 *
 * Regridding (bf_measured_to_grid): linear interpolation of the counts at each of
 * the model's x; model points outside the measured range are 0 (a point within a
 * thousandth of the end step takes the end value: x printed to a few decimals). The model takes
 * min-max scaled patterns, so an overall scale does not matter; interpolating point
 * values (rather than integrating over the model's bins) keeps a pattern measured
 * on the model's own grid exactly as it is. */
#include "braggflow/data.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_POINTS (1 << 24)

int bf_x_unit_parse(const char *name, bf_x_unit *u)
{
    if (!strcmp(name, "tof_us"))
        return *u = BF_X_TOF_US, 0;
    if (!strcmp(name, "two_theta_deg"))
        return *u = BF_X_TTH_DEG, 0;
    return -1;
}

static const char *unit_short(bf_x_unit u)
{
    return u == BF_X_TTH_DEG ? "deg" : "us";
}

static const char *const format_names[] = {"auto", "xy", "xye", "gsa", "fxye", "csv"};

int bf_measured_format_parse(const char *name, bf_measured_format *f)
{
    for (int i = 0; i < (int)(sizeof format_names / sizeof format_names[0]); i++)
        if (!strcmp(name, format_names[i]))
            return *f = (bf_measured_format)i, 0;
    return -1;
}

int bf_measured_format_of(const char *path, bf_measured_format *f)
{
    static const struct {
        const char *ext;
        bf_measured_format f;
    } t[] = {{".xy", BF_MEAS_XY},    {".dat", BF_MEAS_XY},    {".txt", BF_MEAS_XY},
             {".xye", BF_MEAS_XYE},  {".gsa", BF_MEAS_GSA},   {".gss", BF_MEAS_GSA},
             {".gsas", BF_MEAS_GSA}, {".raw", BF_MEAS_GSA},   {".fxye", BF_MEAS_FXYE},
             {".csv", BF_MEAS_CSV}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (bf_path_has_suffix(path, t[i].ext))
            return *f = t[i].f, 0;
    return -1;
}

void bf_measured_free(bf_measured *m)
{
    if (!m)
        return;
    free(m->x);
    free(m->y);
    free(m->sigma);
    memset(m, 0, sizeof *m);
}

/* n >= 2, x strictly increasing, everything finite; line[i] names point i. */
static bf_status check_points(const bf_measured *m, const char *name, const int *line,
                              bf_error *err)
{
    if (m->n < 2)
        return bf_error_set(err, BF_ERR_INVALID, "%s: %d point%s (a pattern needs at least 2)",
                            name, m->n, m->n == 1 ? "" : "s");
    for (int i = 0; i < m->n; i++) {
        if (!isfinite(m->x[i]) || !isfinite(m->y[i]) || (m->sigma && !isfinite(m->sigma[i])))
            return bf_error_set(err, BF_ERR_INVALID, "%s:%d: %s is not finite", name, line[i],
                                !isfinite(m->x[i]) ? "x" : !isfinite(m->y[i]) ? "intensity"
                                                                              : "esd");
        if (i > 0 && !(m->x[i] > m->x[i - 1]))
            return bf_error_set(err, BF_ERR_INVALID,
                                "%s:%d: x %.9g does not increase (the point before is %.9g)",
                                name, line[i], m->x[i], m->x[i - 1]);
    }
    return BF_OK;
}

/* ---- xy / xye / csv ----------------------------------------------------------- */

static bf_status parse_columns(const char *text, const char *name, bf_measured_format fmt,
                               const bf_x_unit *hint, bf_measured *out, int **lines,
                               bf_error *err)
{
    double *col[3];
    int n, k, known = 0;
    bf_x_unit unit = BF_X_TOF_US;
    int max = fmt == BF_MEAS_XYE ? 3 : fmt == BF_MEAS_CSV ? 2 : 3;
    bf_status st =
        bf_pattern_columns_parse(text, name, max, col, &n, &k, &unit, &known, lines, err);
    if (st != BF_OK)
        return st;
    int want_lo = fmt == BF_MEAS_XYE ? 3 : 2, want_hi = fmt == BF_MEAS_XY ? 2 : max;
    if (k < want_lo || k > want_hi) {
        st = bf_error_set(err, BF_ERR_PARSE, "%s:%d: %d column%s; %s needs %s", name, (*lines)[0],
                          k, k == 1 ? "" : "s", format_names[fmt],
                          fmt == BF_MEAS_XY    ? "x y (2 columns)"
                          : fmt == BF_MEAS_XYE ? "x y esd (3 columns)"
                          : fmt == BF_MEAS_CSV ? "x,intensity (2 columns)"
                                               : "x y or x y esd (2 or 3 columns)");
        for (int j = 0; j < 3; j++)
            free(col[j]);
        free(*lines), *lines = NULL;
        return st;
    }
    out->n = n;
    out->x = col[0];
    out->y = col[1];
    out->sigma = col[2];
    out->unit_known = known;
    out->unit = known ? unit : hint ? *hint : BF_X_TOF_US;
    if (!known && !hint) {
        free(*lines), *lines = NULL;
        bf_measured_free(out);
        return bf_error_set(err, BF_ERR_INVALID, "%s: the file does not say whether x is TOF "
                            "(us) or 2theta (deg), and no model grid was given", name);
    }
    return BF_OK;
}

/* ---- GSAS raw files ----------------------------------------------------------- */

typedef enum { T_STD, T_ESD, T_FXYE, T_FXY } gsas_type;

typedef struct {
    long nchan;
    char bintyp[16];
    double bcoef[4];
    int n_bcoef;
    gsas_type type;
    int line;
} gsas_bank;

/* A whole token as a number. */
static int token_number(const char *tok, double *v)
{
    char *end;
    *v = strtod(tok, &end);
    return end != tok && *end == 0;
}

static bf_status parse_bank(char *ln, const char *name, int line, gsas_bank *b, bf_error *err)
{
    char *tok[16];
    int nt = 0;
    for (char *t = strtok(ln, " \t\r"); t && nt < 16; t = strtok(NULL, " \t\r"))
        tok[nt++] = t;
    memset(b, 0, sizeof *b);
    b->line = line;
    double v;
    if (nt < 5)
        return bf_error_set(err, BF_ERR_PARSE, "%s:%d: BANK line: expected BANK IBANK NCHAN NREC "
                            "BINTYP BCOEF... [TYPE]", name, line);
    if (!token_number(tok[2], &v) || v != floor(v) || v < 1 || v > MAX_POINTS)
        return bf_error_set(err, BF_ERR_PARSE, "%s:%d: BANK line: NCHAN '%s' is not a count "
                            "1..%d", name, line, tok[2], MAX_POINTS);
    b->nchan = (long)v;
    if (!token_number(tok[3], &v) || v != floor(v) || v < 1)
        return bf_error_set(err, BF_ERR_PARSE, "%s:%d: BANK line: NREC '%s' is not a count",
                            name, line, tok[3]);
    snprintf(b->bintyp, sizeof b->bintyp, "%s", tok[4]);
    int i = 5;
    for (; i < nt && b->n_bcoef < 4 && token_number(tok[i], &v); i++)
        b->bcoef[b->n_bcoef++] = v;
    const char *type = i < nt ? tok[i] : "STD";
    if (i < nt && i + 1 < nt)
        return bf_error_set(err, BF_ERR_PARSE, "%s:%d: BANK line: '%s' after TYPE %s", name,
                            line, tok[i + 1], type);
    if (!strcmp(type, "STD"))
        b->type = T_STD;
    else if (!strcmp(type, "ESD"))
        b->type = T_ESD;
    else if (!strcmp(type, "FXYE"))
        b->type = T_FXYE;
    else if (!strcmp(type, "FXY"))
        b->type = T_FXY;
    else if (!strcmp(type, "ALT"))
        return bf_error_set(err, BF_ERR_UNSUPPORTED, "%s:%d: BANK line: TYPE ALT is not read "
                            "(export FXYE or ESD)", name, line);
    else
        return bf_error_set(err, BF_ERR_PARSE, "%s:%d: BANK line: '%s' is not a number, nor a "
                            "TYPE (STD, ESD, FXYE, FXY)", name, line, type);
    for (int k = 0; k < b->n_bcoef; k++)
        if (!isfinite(b->bcoef[k]))
            return bf_error_set(err, BF_ERR_PARSE, "%s:%d: BANK line: BCOEF%d is not finite",
                                name, line, k + 1);
    int x_given = b->type == T_FXYE || b->type == T_FXY;
    if (!strcmp(b->bintyp, "CONST") || !strcmp(b->bintyp, "CONS")) {
        if (b->n_bcoef < 2)
            return bf_error_set(err, BF_ERR_PARSE, "%s:%d: BANK line: CONST needs BCOEF1 (start) "
                                "and BCOEF2 (step)", name, line);
        if (!x_given && !(b->bcoef[1] > 0))
            return bf_error_set(err, BF_ERR_PARSE, "%s:%d: BANK line: CONST step %g is not > 0",
                                name, line, b->bcoef[1]);
    } else if (!strcmp(b->bintyp, "SLOG")) {
        if (b->n_bcoef < 3)
            return bf_error_set(err, BF_ERR_PARSE, "%s:%d: BANK line: SLOG needs BCOEF1 (start), "
                                "BCOEF2 (end) and BCOEF3 (dT/T)", name, line);
        if (!x_given && !(b->bcoef[0] > 0 && b->bcoef[2] > 0))
            return bf_error_set(err, BF_ERR_PARSE, "%s:%d: BANK line: SLOG start %g and dT/T %g "
                                "must be > 0", name, line, b->bcoef[0], b->bcoef[2]);
    } else if (!strcmp(b->bintyp, "RALF")) {
        if (!x_given)
            return bf_error_set(err, BF_ERR_UNSUPPORTED, "%s:%d: BANK line: RALF is read with "
                                "FXYE or FXY records only (x given)", name, line);
    } else {
        return bf_error_set(err, BF_ERR_UNSUPPORTED, "%s:%d: BANK line: BINTYP '%s' (expected "
                            "CONST, SLOG or RALF)", name, line, b->bintyp);
    }
    return BF_OK;
}

/* Fixed-width fields of 8 columns: up to max numbers; STD fields are (I2 counters,
 * F6.0 value) and keep the value. Returns how many, -1 if a field is not that. */
static int fixed_fields(const char *ln, int std, double *v, int max)
{
    size_t len = strlen(ln);
    while (len && (ln[len - 1] == ' ' || ln[len - 1] == '\t'))
        len--;
    int k = 0;
    for (size_t at = 0; at < len; at += 8) {
        char f[9] = {0};
        memcpy(f, ln + at, len - at < 8 ? len - at : 8);
        char *p = f;
        if (std) { /* the counter columns: blank or an integer */
            for (int c = 0; c < 2; c++)
                if (f[c] && f[c] != ' ' && !isdigit((unsigned char)f[c]))
                    return -1;
            p = f + 2;
        }
        p += strspn(p, " ");
        if (!*p) {
            if (!std)
                return -1;
            continue;
        }
        double x;
        char *end;
        x = strtod(p, &end);
        if (end == p || end[strspn(end, " ")] != 0 || k == max)
            return -1;
        v[k++] = x;
    }
    return k;
}

/* Blank-separated numbers (GSAS files as some programs write them): up to max. */
static int free_fields(const char *ln, double *v, int max)
{
    int k = 0;
    const char *p = ln + strspn(ln, " \t");
    while (*p) {
        char *end;
        double x = strtod(p, &end);
        if (end == p || (*end && *end != ' ' && *end != '\t') || k == max)
            return -1;
        v[k++] = x;
        p = end + strspn(end, " \t");
    }
    return k;
}

static bf_status grow(bf_measured *m, size_t *cap, int with_sigma, const char *name,
                      bf_error *err, int **lines)
{
    size_t c = *cap ? *cap * 2 : 4096;
    double *x = realloc(m->x, c * sizeof *x);
    if (x)
        m->x = x;
    double *y = x ? realloc(m->y, c * sizeof *y) : NULL;
    if (y)
        m->y = y;
    double *s = y && with_sigma ? realloc(m->sigma, c * sizeof *s) : NULL;
    if (s)
        m->sigma = s;
    int *l = y && (s || !with_sigma) ? realloc(*lines, c * sizeof *l) : NULL;
    if (l)
        *lines = l;
    if (!l)
        return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", name);
    *cap = c;
    return BF_OK;
}

static bf_status parse_gsas(const char *text, const char *name, const bf_x_unit *hint,
                            bf_measured *out, int **lines, bf_error *err)
{
    char ln[512];
    int line = 0, have_bank = 0;
    gsas_bank b = {0};
    size_t cap = 0;
    bf_status st = BF_OK;
    const char *s = text;
    for (; st == BF_OK && *s;) {
        size_t len = strcspn(s, "\n");
        line++;
        if (len >= sizeof ln)
            return bf_error_set(err, BF_ERR_PARSE, "%s:%d: line longer than %zu bytes", name,
                                line, sizeof ln - 1);
        memcpy(ln, s, len);
        ln[len] = 0;
        s += len + (s[len] == '\n');
        ln[strcspn(ln, "\r")] = 0;
        const char *t = ln + strspn(ln, " \t");
        if (!have_bank) {
            if (!strncmp(t, "TIME_MAP", 8))
                return bf_error_set(err, BF_ERR_UNSUPPORTED, "%s:%d: TIME_MAP binning is not "
                                    "read", name, line);
            if (strncmp(t, "BANK", 4) || (t[4] && t[4] != ' ' && t[4] != '\t'))
                continue; /* title, Instrument parameter line, comments */
            char copy[512];
            snprintf(copy, sizeof copy, "%s", t);
            if ((st = parse_bank(copy, name, line, &b, err)) != BF_OK)
                return st;
            have_bank = 1;
            continue;
        }
        if (*t == '#' || !*t)
            continue;
        if (!strncmp(t, "BANK", 4) || !strncmp(t, "TIME_MAP", 8))
            break; /* the next bank: the first one is read */
        if (out->n >= b.nchan)
            break; /* NCHAN points read; what follows is not this bank's */
        double v[20];
        int k, with_sigma = b.type == T_FXYE || b.type == T_ESD;
        if (b.type == T_FXYE || b.type == T_FXY) {
            int want = b.type == T_FXYE ? 3 : 2;
            k = free_fields(t, v, 3);
            if (k != want)
                return bf_error_set(err, BF_ERR_PARSE, "%s:%d: expected %d numbers (%s) for a "
                                    "%s record", name, line, want,
                                    want == 3 ? "x y esd" : "x y", want == 3 ? "FXYE" : "FXY");
        } else {
            int std = b.type == T_STD, max = 10;
            k = fixed_fields(ln, std, v, max);
            if (k < 0)
                k = free_fields(t, v, max);
            if (k <= 0 || (!std && k % 2))
                return bf_error_set(err, BF_ERR_PARSE, "%s:%d: expected %s per %s record", name,
                                    line, std ? "up to 10 intensities" : "up to 5 (y, esd) pairs",
                                    std ? "STD" : "ESD");
        }
        int per = (b.type == T_ESD) ? 2 : (b.type == T_STD) ? 1 : k;
        for (int j = 0; j + per <= k && out->n < b.nchan; j += per) {
            if ((size_t)out->n == cap && (st = grow(out, &cap, with_sigma, name, err, lines)))
                return st;
            int i = out->n++;
            (*lines)[i] = line;
            if (b.type == T_FXYE || b.type == T_FXY) {
                out->x[i] = v[0];
                out->y[i] = v[1];
                if (with_sigma)
                    out->sigma[i] = v[2];
            } else {
                out->x[i] = 0; /* from the BANK line below */
                out->y[i] = v[j];
                if (with_sigma)
                    out->sigma[i] = v[j + 1];
            }
        }
    }
    if (!have_bank)
        return bf_error_set(err, BF_ERR_PARSE, "%s: no BANK line", name);
    if (out->n != b.nchan)
        return bf_error_set(err, BF_ERR_PARSE, "%s:%d: BANK line says %ld points; %d follow it",
                            name, b.line, b.nchan, out->n);
    int tof = strcmp(b.bintyp, "SLOG") == 0 || strcmp(b.bintyp, "RALF") == 0;
    if (tof) {
        out->unit = BF_X_TOF_US;
        out->unit_known = 1;
    } else if (hint) {
        out->unit = *hint;
    } else {
        return bf_error_set(err, BF_ERR_INVALID, "%s:%d: BANK ... CONST does not say whether x "
                            "is TOF (us) or 2theta (centidegrees), and no model grid was given",
                            name, b.line);
    }
    int x_given = b.type == T_FXYE || b.type == T_FXY;
    for (int i = 0; i < out->n; i++) {
        if (!x_given)
            out->x[i] = !strcmp(b.bintyp, "SLOG") ? b.bcoef[0] * pow(1 + b.bcoef[2], i)
                                                   : b.bcoef[0] + i * b.bcoef[1];
        if (out->unit == BF_X_TTH_DEG)
            out->x[i] /= 100; /* centidegrees */
    }
    return BF_OK;
}

bf_status bf_measured_parse(const char *text, const char *name, bf_measured_format fmt,
                            const bf_x_unit *unit_hint, bf_measured *out, bf_error *err)
{
    memset(out, 0, sizeof *out);
    int *lines = NULL;
    bf_status st;
    switch (fmt) {
    case BF_MEAS_XY:
    case BF_MEAS_XYE:
    case BF_MEAS_CSV: st = parse_columns(text, name, fmt, unit_hint, out, &lines, err); break;
    case BF_MEAS_GSA:
    case BF_MEAS_FXYE: st = parse_gsas(text, name, unit_hint, out, &lines, err); break;
    default:
        st = bf_error_set(err, BF_ERR_INVALID, "%s: no format given (xy, xye, gsa, fxye, csv)",
                          name);
    }
    if (st == BF_OK)
        st = check_points(out, name, lines, err);
    free(lines);
    if (st != BF_OK)
        bf_measured_free(out);
    return st;
}

bf_status bf_measured_read(const char *path, bf_measured_format fmt, const bf_x_unit *unit_hint,
                           bf_measured *out, bf_error *err)
{
    memset(out, 0, sizeof *out);
    if (fmt == BF_MEAS_AUTO && bf_measured_format_of(path, &fmt))
        return bf_error_set(err, BF_ERR_INVALID, "%s: cannot tell the format from the extension "
                            "(.xy .xye .gsa .gss .fxye .csv); give --format", path);
    char *text = NULL;
    bf_status st = bf_read_file(path, &text, NULL, err);
    if (st == BF_OK)
        st = bf_measured_parse(text, path, fmt, unit_hint, out, err);
    free(text);
    return st;
}

/* ---- the model's grid ----------------------------------------------------------- */

bf_status bf_x_grid_values(const bf_x_grid *g, double *x, bf_error *err)
{
    if (g->n < 2 || !(g->first > 0 || g->spacing == BF_GRID_LINEAR) || !(g->last > g->first))
        return bf_error_set(err, BF_ERR_INVALID, "grid of %d points %g..%g is not a grid", g->n,
                            g->first, g->last);
    if (g->spacing == BF_GRID_ARRAY)
        return bf_error_set(err, BF_ERR_INVALID, "the grid is an array (sha256 %.16s...), "
                            "neither linear nor geometric", g->sha256);
    double span = g->spacing == BF_GRID_GEOMETRIC ? log(g->last / g->first) : g->last - g->first;
    for (int i = 0; i < g->n; i++) {
        double f = (double)i / (g->n - 1);
        x[i] = g->spacing == BF_GRID_GEOMETRIC ? g->first * exp(f * span) : g->first + f * span;
    }
    x[g->n - 1] = g->last;
    return BF_OK;
}

static int grid_matches(const bf_x_grid *g, const double *x)
{
    for (int i = 0; i < g->n; i++) {
        double f = (double)i / (g->n - 1), v;
        if (g->spacing == BF_GRID_GEOMETRIC)
            v = g->first * exp(f * log(g->last / g->first));
        else
            v = g->first + f * (g->last - g->first);
        if (fabs(v - x[i]) > 1e-9 * fmax(fabs(v), fabs(x[i])))
            return 0;
    }
    return 1;
}

bf_status bf_x_grid_describe(const double *x, int n, bf_x_unit unit, bf_x_grid *out,
                             bf_error *err)
{
    memset(out, 0, sizeof *out);
    if (n < 2)
        return bf_error_set(err, BF_ERR_INVALID, "grid: %d points (need 2)", n);
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i]) || (i && !(x[i] > x[i - 1])))
            return bf_error_set(err, BF_ERR_INVALID, "grid: point %d (%g) is not finite and "
                                "increasing", i, x[i]);
    out->unit = unit;
    out->n = n;
    out->first = x[0];
    out->last = x[n - 1];
    /* TOF grids are GSAS-II's log-spaced bins; 2theta grids are linear: try that first */
    bf_grid_spacing order[2] = {BF_GRID_GEOMETRIC, BF_GRID_LINEAR};
    if (unit == BF_X_TTH_DEG)
        order[0] = BF_GRID_LINEAR, order[1] = BF_GRID_GEOMETRIC;
    for (int k = 0; k < 2; k++) {
        out->spacing = order[k];
        if ((out->spacing == BF_GRID_LINEAR || x[0] > 0) && grid_matches(out, x))
            return BF_OK;
    }
    out->spacing = BF_GRID_ARRAY;
    /* the hash of the array's little-endian float64 bytes */
    bf_sha256 ctx;
    bf_sha256_init(&ctx);
    for (int i = 0; i < n; i++) {
        uint64_t u;
        uint8_t b[8];
        memcpy(&u, &x[i], 8);
        for (int j = 0; j < 8; j++)
            b[j] = (uint8_t)(u >> (8 * j));
        bf_sha256_update(&ctx, b, 8);
    }
    uint8_t d[32];
    bf_sha256_final(&ctx, d);
    bf_sha256_digest_hex(d, out->sha256);
    return BF_OK;
}

bf_status bf_measured_to_grid(const bf_measured *m, const char *name, const double *x, int n,
                              bf_x_unit unit, float *y, int *covered, bf_error *err)
{
    if (covered)
        *covered = 0;
    if (m->unit != unit)
        return bf_error_set(err, BF_ERR_INVALID, "%s: x is %s but the model's grid is %s", name,
                            bf_x_unit_name(m->unit), bf_x_unit_name(unit));
    if (m->n < 2 || n < 1)
        return bf_error_set(err, BF_ERR_INVALID, "%s: %d measured points, %d grid points", name,
                            m->n, n);
    double lo = m->x[0], hi = m->x[m->n - 1];
    /* a grid point a thousandth of the end step outside is the end point (x printed
     * with a few decimals: a pattern on the model's own grid keeps its ends) */
    double lo_tol = 1e-3 * (m->x[1] - lo), hi_tol = 1e-3 * (hi - m->x[m->n - 2]);
    int inside = 0, j = 0;
    for (int i = 0; i < n; i++) {
        double t = x[i];
        if (!(t >= lo - lo_tol && t <= hi + hi_tol)) {
            y[i] = 0;
            continue;
        }
        t = fmin(fmax(t, lo), hi);
        inside++;
        if (j > 0 && t < m->x[j]) /* x descending? restart the search */
            j = 0;
        while (j + 2 < m->n && m->x[j + 1] < t)
            j++;
        double x0 = m->x[j], x1 = m->x[j + 1];
        if (t > x1) { /* cannot happen when x is ascending (x1 = hi at the end) */
            y[i] = (float)m->y[j + 1];
            continue;
        }
        double w = (t - x0) / (x1 - x0);
        y[i] = (float)((1 - w) * m->y[j] + w * m->y[j + 1]);
    }
    if (!inside)
        return bf_error_set(err, BF_ERR_INVALID, "%s: x %.6g..%.6g %s does not overlap the "
                            "model's grid %.6g..%.6g %s", name, lo, hi, unit_short(unit), x[0],
                            x[n - 1], unit_short(unit));
    if (covered)
        *covered = inside;
    return BF_OK;
}
