/* data/config.c — the `sample` command's INI configuration (inih).
 *
 * Sections and keys (unknown sections and keys are errors):
 *   [run]        seed (uint64, default 0), sampler = random | grid | phased
 *                (default random), phases (>= 1) and phase (1..phases), both
 *                required by and only allowed with the phased sampler,
 *                layout = braggflow | seed (default braggflow)
 *   [instrument] instprm (path, required), tof_min_ms (1.36), tof_max_ms
 *                (18.919), tof_step (dT/T, 0.0009381), scale (1000); CW instruments:
 *                tth_min (10), tth_max (120), tth_step (0.01 deg)
 *   [sample]     scale (the same setting as [instrument] scale; give one),
 *                phase_fraction, size_um, size_mix, mustrain, strain_mix, b_table
 *                (GSAS-II's defaults, bf_sample_defaults), fprime ("Ba:-1.05:8.46
 *                ..."; X-rays: f', f'' replacing the table's)
 *   [measured]   measured-like patterns, every part off by default (bf_measured_like):
 *                background_terms (0..12 Chebyshev terms, 0), background_coeff
 *                ("lo hi", each coefficient uniform, times the pattern maximum;
 *                0 0.05), poisson_counts (total counts, >= 0; 0 = off),
 *                zero_shift (+- x units, >= 0; 0 = off)
 *   [class.NAME] one per class, at most BF_MAX_CLASSES:
 *                cif (path, required), cif_block (its data block; default the first
 *                with atom sites), count (>= 1; required by and only
 *                allowed with the random sampler), a b c alpha beta gamma,
 *                a_step ... gamma_step (> 0; the grid and phased samplers need
 *                one per free parameter, the random sampler ignores them),
 *                label (>= 0), constraint (repeatable).
 *
 * NAME cubic, trigonal or tetragonal takes the built-in rules
 * (bf_class_builtin); a parameter key then overrides a free parameter's box as
 * "min max", and giving a fixed or tied parameter is an error. Any other NAME
 * is a custom class that must give all six parameters, each as "min max"
 * (free), a single number (fixed) or "= p" (tied to free parameter p, e.g.
 * "b = = a"); it takes label max(2, labels in use) + 1 unless it says.
 * constraint = "p q tol" adds |p - q| > tol, q a parameter or a number:
 * "alpha 90 0.2", "a c 0.001"; a built-in class keeps its own constraints.
 *
 * Comments: lines starting with ';' or '#', and ';' or '#' after whitespace
 * anywhere in a line. Indentation is ignored (no multi-line values). Relative
 * paths resolve against the INI file's folder.
 *
 * inih builds differ (inline comments, multi-line values, line length), so
 * the text is normalised first (indentation, comments and trailing blanks
 * removed, line count kept) and checked for the line shapes inih accepts;
 * inih then only splits "key = value" lines, and our line numbers match. */
#include "braggflow/data.h"

#include <errno.h>
#include <math.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum {
    K_SEED,
    K_SAMPLER,
    K_PHASES,
    K_PHASE,
    K_LAYOUT,
    K_INSTPRM,
    K_TOF_MIN,
    K_TOF_MAX,
    K_TOF_STEP,
    K_TTH_MIN,
    K_TTH_MAX,
    K_TTH_STEP,
    K_FPRIME,
    K_SCALE,
    K_FRACTION,
    K_SIZE,
    K_SIZE_MIX,
    K_MUSTRAIN,
    K_STRAIN_MIX,
    K_B_TABLE,
    K_BG_TERMS,
    K_BG_COEFF,
    K_POISSON,
    K_ZERO_SHIFT,
    K_N
};

static const struct {
    const char *section, *key;
    int id;
} known_keys[] = {
    {"run", "seed", K_SEED},
    {"run", "sampler", K_SAMPLER},
    {"run", "phases", K_PHASES},
    {"run", "phase", K_PHASE},
    {"run", "layout", K_LAYOUT},
    {"instrument", "instprm", K_INSTPRM},
    {"instrument", "tof_min_ms", K_TOF_MIN},
    {"instrument", "tof_max_ms", K_TOF_MAX},
    {"instrument", "tof_step", K_TOF_STEP},
    {"instrument", "tth_min", K_TTH_MIN},
    {"instrument", "tth_max", K_TTH_MAX},
    {"instrument", "tth_step", K_TTH_STEP},
    {"instrument", "scale", K_SCALE},
    {"sample", "scale", K_SCALE},
    {"sample", "phase_fraction", K_FRACTION},
    {"sample", "size_um", K_SIZE},
    {"sample", "size_mix", K_SIZE_MIX},
    {"sample", "mustrain", K_MUSTRAIN},
    {"sample", "strain_mix", K_STRAIN_MIX},
    {"sample", "b_table", K_B_TABLE},
    {"sample", "fprime", K_FPRIME},
    {"measured", "background_terms", K_BG_TERMS},
    {"measured", "background_coeff", K_BG_COEFF},
    {"measured", "poisson_counts", K_POISSON},
    {"measured", "zero_shift", K_ZERO_SHIFT},
};

typedef struct {
    int line;                          /* its section header */
    int builtin;
    int param_line[BF_N_CELL_PARAMS];  /* 0 = not given */
    int step_line[BF_N_CELL_PARAMS];
    int cif_line, count_line, label_line;
} class_info;

typedef struct {
    bf_sample_config *cfg;
    const char *name;                  /* file name: messages and relative paths */
    bf_error *err;
    int *key_lines;                    /* line of the k-th "key = value" line */
    int n_key_lines, next_key;
    int line;                          /* line of the key being handled */
    int failed;
    int key_line[K_N];                 /* 0 = not given */
    int section_line[4];               /* run, instrument, sample, measured */
    class_info cls[BF_MAX_CLASSES];
} parse_ctx;

static bf_status failf(parse_ctx *c, bf_status code, const char *section, const char *key,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* "FILE:LINE: [section] key: message" (line, section and key where known). */
static bf_status failf(parse_ctx *c, bf_status code, const char *section, const char *key,
                       const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char where[320];
    int n = c->line > 0 ? snprintf(where, sizeof where, "%s:%d:", c->name, c->line)
                        : snprintf(where, sizeof where, "%s:", c->name);
    if (section && n > 0 && (size_t)n < sizeof where)
        n += snprintf(where + n, sizeof where - n, " [%s]", section);
    if (key && n > 0 && (size_t)n < sizeof where)
        snprintf(where + n, sizeof where - n, " %s:", key);
    c->failed = 1;
    return bf_error_set(c->err, code, "%s %s", where, msg);
}

/* ---- value parsers ---------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t *out)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s < '0' || *s > '9')
        return -1; /* strtoull would accept "-1" */
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end != 0 || errno == ERANGE)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* Splits s into at most max whitespace-separated tokens (copies into buf). */
static int split_tokens(const char *s, char *buf, size_t bufsz, char **tok, int max)
{
    snprintf(buf, bufsz, "%s", s);
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (n == max)
            return max + 1;
        tok[n++] = t;
    }
    return n;
}

static int param_index(const char *s)
{
    for (int p = 0; p < BF_N_CELL_PARAMS; p++)
        if (strcmp(s, bf_cell_param_names[p]) == 0)
            return p;
    return -1;
}

static int class_index(const bf_sample_config *cfg, const char *name)
{
    for (int k = 0; k < cfg->n_classes; k++)
        if (strcmp(cfg->classes[k].name, name) == 0)
            return k;
    return -1;
}

/* ---- [run], [instrument], [sample] --------------------------------------------- */

static int handle_plain(parse_ctx *c, const char *section, const char *key, const char *value)
{
    bf_sample_config *cfg = c->cfg;
    int id = -1;
    for (size_t i = 0; i < sizeof known_keys / sizeof known_keys[0]; i++)
        if (strcmp(known_keys[i].section, section) == 0 && strcmp(known_keys[i].key, key) == 0)
            id = known_keys[i].id;
    if (id < 0) {
        failf(c, BF_ERR_PARSE, section, key, "unknown key");
        return 0;
    }
    if (c->key_line[id]) {
        failf(c, BF_ERR_PARSE, section, key, "given twice (first on line %d)", c->key_line[id]);
        return 0;
    }
    c->key_line[id] = c->line;

    double x = 0;
    long n = 0;
    switch (id) {
    case K_SEED:
        if (parse_u64(value, &cfg->seed) != 0)
            goto not_integer;
        return 1;
    case K_SAMPLER:
        if (strcmp(value, "random") == 0)
            cfg->sampler = BF_SAMPLER_RANDOM;
        else if (strcmp(value, "grid") == 0)
            cfg->sampler = BF_SAMPLER_GRID;
        else if (strcmp(value, "phased") == 0)
            cfg->sampler = BF_SAMPLER_PHASED;
        else {
            failf(c, BF_ERR_PARSE, section, key, "'%s' is not random, grid or phased", value);
            return 0;
        }
        return 1;
    case K_PHASES:
    case K_PHASE:
        if (bf_parse_long(value, &n) != 0)
            goto not_integer;
        if (n < 1 || n > 1000000) {
            failf(c, BF_ERR_INVALID, section, key, "%ld must be in 1..1000000", n);
            return 0;
        }
        *(id == K_PHASES ? &cfg->phases : &cfg->phase) = (int)n;
        return 1;
    case K_LAYOUT:
        if (strcmp(value, "braggflow") == 0)
            cfg->layout = BF_LAYOUT_BRAGGFLOW;
        else if (strcmp(value, "seed") == 0)
            cfg->layout = BF_LAYOUT_SEED;
        else {
            failf(c, BF_ERR_PARSE, section, key, "'%s' is not braggflow or seed", value);
            return 0;
        }
        return 1;
    case K_INSTPRM:
        if (value[0] == 0) {
            failf(c, BF_ERR_INVALID, section, key, "empty path");
            return 0;
        }
        if (bf_path_resolve(c->name, value, cfg->instprm_path, sizeof cfg->instprm_path, NULL) !=
            BF_OK) {
            failf(c, BF_ERR_INVALID, section, key, "path too long");
            return 0;
        }
        return 1;
    case K_B_TABLE:
        if (bf_b_table_parse(value, &cfg->sample.b_table) != 0) {
            failf(c, BF_ERR_PARSE, section, key, "'%s' is not gsas2 or sears", value);
            return 0;
        }
        return 1;
    case K_FPRIME: {
        bf_error sub = {0};
        if (bf_fprime_overrides_parse(value, "fprime", cfg->sample.fprime, &cfg->sample.n_fprime,
                                      &sub) != BF_OK) {
            failf(c, sub.code, section, key, "%s", sub.msg);
            return 0;
        }
        return 1;
    }
    case K_BG_TERMS:
        if (bf_parse_long(value, &n) != 0)
            goto not_integer;
        if (n < 0 || n > BF_MEASURED_MAX_TERMS) {
            failf(c, BF_ERR_INVALID, section, key, "%ld must be in 0..%d", n,
                  BF_MEASURED_MAX_TERMS);
            return 0;
        }
        cfg->measured.background_terms = (int)n;
        return 1;
    case K_BG_COEFF: {
        double v[2];
        if (bf_parse_doubles(value, v, 2) != 0 || !isfinite(v[0]) || !isfinite(v[1])) {
            failf(c, BF_ERR_PARSE, section, key, "'%s' is not 'min max'", value);
            return 0;
        }
        if (v[0] > v[1] || fabs(v[0]) > 10 || fabs(v[1]) > 10) {
            failf(c, BF_ERR_INVALID, section, key, "'%s': need min <= max, both in [-10, 10] "
                  "(times the pattern maximum)", value);
            return 0;
        }
        cfg->measured.background_lo = v[0];
        cfg->measured.background_hi = v[1];
        return 1;
    }
    default: break;
    }

    /* The rest are real numbers. */
    if (bf_parse_double(value, &x) != 0) {
        failf(c, BF_ERR_PARSE, section, key, "'%s' is not a number", value);
        return 0;
    }
    const char *bad = NULL;
    switch (id) {
    case K_TOF_MIN:
        cfg->grid.tmin_ms = x;
        bad = x > 0 ? NULL : "must be > 0";
        break;
    case K_TOF_MAX:
        cfg->grid.tmax_ms = x;
        bad = x > 0 ? NULL : "must be > 0";
        break;
    case K_TOF_STEP:
        cfg->grid.tstep_rel = x;
        bad = x > 0 && x < 1 ? NULL : "must be in (0, 1) (a relative step dT/T)";
        break;
    case K_TTH_MIN:
        cfg->grid.tth_min_deg = x;
        bad = x > 0 && x < 180 ? NULL : "must lie in (0, 180) degrees";
        break;
    case K_TTH_MAX:
        cfg->grid.tth_max_deg = x;
        bad = x > 0 && x < 180 ? NULL : "must lie in (0, 180) degrees";
        break;
    case K_TTH_STEP:
        cfg->grid.tth_step_deg = x;
        bad = x > 0 ? NULL : "must be > 0 degrees";
        break;
    case K_SCALE:
        cfg->sample.scale = x;
        bad = x > 0 ? NULL : "must be > 0";
        break;
    case K_FRACTION:
        cfg->sample.phase_fraction = x;
        bad = x > 0 ? NULL : "must be > 0";
        break;
    case K_SIZE:
        cfg->sample.size_um = x;
        bad = x > 0 ? NULL : "must be > 0";
        break;
    case K_MUSTRAIN:
        cfg->sample.mustrain = x;
        bad = x >= 0 ? NULL : "must be >= 0";
        break;
    case K_POISSON:
        cfg->measured.poisson_counts = x;
        bad = x >= 0 && x <= 1e15 ? NULL : "must be in [0, 1e15] (0: off)";
        break;
    case K_ZERO_SHIFT:
        cfg->measured.zero_shift = x;
        bad = x >= 0 && isfinite(x) ? NULL : "must be >= 0 (0: off)";
        break;
    case K_SIZE_MIX:
    case K_STRAIN_MIX:
        *(id == K_SIZE_MIX ? &cfg->sample.size_mix : &cfg->sample.strain_mix) = x;
        bad = x >= 0 && x <= 1 ? NULL : "must be in [0, 1]";
        break;
    default: break;
    }
    if (bad) {
        failf(c, BF_ERR_INVALID, section, key, "%s %s", value, bad);
        return 0;
    }
    return 1;

not_integer:
    failf(c, BF_ERR_PARSE, section, key, "'%s' is not a%s integer", value,
          id == K_SEED ? " non-negative 64-bit" : "n");
    return 0;
}

/* ---- [class.NAME] --------------------------------------------------------------- */

static int handle_param(parse_ctx *c, const char *section, const char *key, int p,
                        const char *value, bf_class_spec *cls, class_info *info)
{
    bf_param_rule *r = &cls->rule[p];
    char buf[256], *tok[3];
    int nt = split_tokens(value, buf, sizeof buf, tok, 2);
    if (info->builtin) {
        if (r->kind == BF_PARAM_FIXED) {
            failf(c, BF_ERR_INVALID, section, key, "fixed at %g in a %s cell; only free parameters "
                  "take a box", r->value, cls->name);
            return 0;
        }
        if (r->kind == BF_PARAM_TIED) {
            failf(c, BF_ERR_INVALID, section, key, "equals %s in a %s cell; give %s's box instead",
                  bf_cell_param_names[r->tied_to], cls->name, bf_cell_param_names[r->tied_to]);
            return 0;
        }
        if (nt != 2 || strcmp(tok[0], "=") == 0) {
            failf(c, BF_ERR_PARSE, section, key, "'%s' is not 'min max'", value);
            return 0;
        }
    }
    if (nt == 2 && strcmp(tok[0], "=") != 0) {
        double lo, hi;
        if (bf_parse_double(tok[0], &lo) != 0 || bf_parse_double(tok[1], &hi) != 0) {
            failf(c, BF_ERR_PARSE, section, key, "'%s' is not 'min max'", value);
            return 0;
        }
        if (lo > hi) {
            failf(c, BF_ERR_INVALID, section, key, "empty range: min %g > max %g", lo, hi);
            return 0;
        }
        double step = r->kind == BF_PARAM_FREE ? r->step : 0; /* a step may come first */
        r->kind = BF_PARAM_FREE;
        r->lo = lo;
        r->hi = hi;
        r->step = step;
        return 1;
    }
    if (value[0] == '=') {
        const char *to = value + 1;
        while (*to == ' ' || *to == '\t')
            to++;
        int q = param_index(to);
        if (q < 0 || q == p) {
            failf(c, BF_ERR_PARSE, section, key, "'%s' is not '= PARAM' with another of a, b, c, "
                  "alpha, beta, gamma", value);
            return 0;
        }
        r->kind = BF_PARAM_TIED;
        r->tied_to = q;
        return 1;
    }
    double v;
    if (nt != 1 || bf_parse_double(tok[0], &v) != 0) {
        failf(c, BF_ERR_PARSE, section, key, "'%s' is not 'min max', a number or '= PARAM'",
              value);
        return 0;
    }
    r->kind = BF_PARAM_FIXED;
    r->value = v;
    return 1;
}

static int handle_constraint(parse_ctx *c, const char *section, const char *key,
                             const char *value, bf_class_spec *cls)
{
    char buf[256], *tok[4];
    int nt = split_tokens(value, buf, sizeof buf, tok, 3);
    int p = nt == 3 ? param_index(tok[0]) : -1;
    double q_value = 0, tol;
    int q = nt == 3 ? param_index(tok[1]) : -1;
    if (p < 0 || (q < 0 && bf_parse_double(tok[1], &q_value) != 0) || q == p ||
        bf_parse_double(tok[2], &tol) != 0) {
        failf(c, BF_ERR_PARSE, section, key,
              "'%s' is not 'PARAM OTHER TOL' (|PARAM - OTHER| > TOL; OTHER a parameter or a "
              "number), e.g. 'alpha 90 0.2' or 'a c 0.001'",
              value);
        return 0;
    }
    if (!(tol >= 0)) {
        failf(c, BF_ERR_INVALID, section, key, "tolerance %g must be >= 0", tol);
        return 0;
    }
    if (cls->n_constraints >= BF_MAX_CONSTRAINTS) {
        failf(c, BF_ERR_INVALID, section, key, "at most %d constraints per class",
              BF_MAX_CONSTRAINTS);
        return 0;
    }
    bf_constraint *k = &cls->constraint[cls->n_constraints++];
    k->p_param = p;
    k->q_param = q;
    k->q_value = q < 0 ? q_value : 0;
    k->tol = tol;
    return 1;
}

static int handle_class(parse_ctx *c, const char *section, const char *key, const char *value)
{
    int k = class_index(c->cfg, section + strlen("class."));
    if (k < 0) { /* cannot happen: the pre-scan created every class section */
        failf(c, BF_ERR_PARSE, section, NULL, "unknown section");
        return 0;
    }
    bf_class_spec *cls = &c->cfg->classes[k];
    class_info *info = &c->cls[k];

    int p = param_index(key);
    if (p >= 0) {
        if (info->param_line[p]) {
            failf(c, BF_ERR_PARSE, section, key, "given twice (first on line %d)",
                  info->param_line[p]);
            return 0;
        }
        info->param_line[p] = c->line;
        return handle_param(c, section, key, p, value, cls, info);
    }
    size_t kl = strlen(key);
    if (kl > 5 && strcmp(key + kl - 5, "_step") == 0) {
        char pname[16];
        snprintf(pname, sizeof pname, "%.*s", (int)(kl - 5), key);
        p = param_index(pname);
        if (p >= 0) {
            if (info->step_line[p]) {
                failf(c, BF_ERR_PARSE, section, key, "given twice (first on line %d)",
                      info->step_line[p]);
                return 0;
            }
            info->step_line[p] = c->line;
            double step;
            if (bf_parse_double(value, &step) != 0) {
                failf(c, BF_ERR_PARSE, section, key, "'%s' is not a number", value);
                return 0;
            }
            if (!(step > 0)) {
                failf(c, BF_ERR_INVALID, section, key, "%g must be > 0", step);
                return 0;
            }
            if (info->builtin && cls->rule[p].kind != BF_PARAM_FREE) {
                failf(c, BF_ERR_INVALID, section, key, "%s is not a free parameter of a %s cell",
                      pname, cls->name);
                return 0;
            }
            cls->rule[p].step = step; /* custom classes: checked once all keys are in */
            return 1;
        }
    }
    if (strcmp(key, "cif") == 0) {
        if (info->cif_line) {
            failf(c, BF_ERR_PARSE, section, key, "given twice (first on line %d)", info->cif_line);
            return 0;
        }
        info->cif_line = c->line;
        if (value[0] == 0 ||
            bf_path_resolve(c->name, value, cls->cif_path, sizeof cls->cif_path, NULL) != BF_OK) {
            failf(c, BF_ERR_INVALID, section, key, value[0] ? "path too long" : "empty path");
            return 0;
        }
        return 1;
    }
    if (strcmp(key, "cif_block") == 0) {
        if (cls->cif_block[0]) {
            failf(c, BF_ERR_PARSE, section, key, "given twice");
            return 0;
        }
        if (value[0] == 0 || strlen(value) >= sizeof cls->cif_block) {
            failf(c, BF_ERR_INVALID, section, key, value[0] ? "name too long" : "empty name");
            return 0;
        }
        snprintf(cls->cif_block, sizeof cls->cif_block, "%s", value);
        return 1;
    }
    if (strcmp(key, "count") == 0 || strcmp(key, "label") == 0) {
        int is_count = strcmp(key, "count") == 0;
        int *line = is_count ? &info->count_line : &info->label_line;
        if (*line) {
            failf(c, BF_ERR_PARSE, section, key, "given twice (first on line %d)", *line);
            return 0;
        }
        *line = c->line;
        long n;
        if (bf_parse_long(value, &n) != 0) {
            failf(c, BF_ERR_PARSE, section, key, "'%s' is not an integer", value);
            return 0;
        }
        if (is_count ? n < 1 : (n < 0 || n > INT32_MAX)) {
            failf(c, BF_ERR_INVALID, section, key, "%ld must be %s", n,
                  is_count ? ">= 1" : "a non-negative 32-bit integer");
            return 0;
        }
        if (is_count)
            cls->count = n;
        else
            cls->label = (int)n;
        return 1;
    }
    if (strcmp(key, "constraint") == 0)
        return handle_constraint(c, section, key, value, cls);
    failf(c, BF_ERR_PARSE, section, key, "unknown key");
    return 0;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
    parse_ctx *c = user;
    if (c->next_key < c->n_key_lines)
        c->line = c->key_lines[c->next_key++];
    if (c->failed)
        return 1; /* keep the first error; inih reads on regardless */
    if (strncmp(section, "class.", 6) == 0)
        return handle_class(c, section, key, value);
    return handle_plain(c, section, key, value);
}

/* ---- pre-scan ------------------------------------------------------------------- */

static int valid_class_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static bf_status open_section(parse_ctx *c, const char *sec)
{
    static const char *const plain[4] = {"run", "instrument", "sample", "measured"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(sec, plain[i]) == 0) {
            if (c->section_line[i])
                return failf(c, BF_ERR_PARSE, sec, NULL, "section given twice (first on line %d)",
                             c->section_line[i]);
            c->section_line[i] = c->line;
            return BF_OK;
        }
    }
    if (strncmp(sec, "class.", 6) != 0)
        return failf(c, BF_ERR_PARSE, sec, NULL,
                     "unknown section (expected run, instrument, sample, measured or "
                     "class.NAME)");
    const char *name = sec + 6;
    bf_sample_config *cfg = c->cfg;
    if (!valid_class_name(name) || strlen(name) >= sizeof cfg->classes[0].name)
        return failf(c, BF_ERR_PARSE, sec, NULL,
                     "class name must be 1-31 letters, digits, '_' or '-'");
    int k = class_index(cfg, name);
    if (k >= 0)
        return failf(c, BF_ERR_PARSE, sec, NULL, "section given twice (first on line %d)",
                     c->cls[k].line);
    if (cfg->n_classes >= BF_MAX_CLASSES)
        return failf(c, BF_ERR_INVALID, sec, NULL, "at most %d classes", BF_MAX_CLASSES);
    k = cfg->n_classes++;
    bf_class_spec *cls = &cfg->classes[k];
    class_info *info = &c->cls[k];
    info->line = c->line;
    if (bf_class_builtin(name, cls, NULL) == BF_OK) {
        info->builtin = 1;
    } else {
        /* Custom: every parameter must be given; label assigned at the end. */
        memset(cls, 0, sizeof *cls);
        snprintf(cls->name, sizeof cls->name, "%s", name);
        cls->label = -1;
    }
    return BF_OK;
}

static int is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f'; }

/* Normalises text into norm (same number of lines), records the line of every
 * "key = value" line, opens every section and reports syntax errors. */
static bf_status prescan(parse_ctx *c, const char *text, char *norm)
{
    const char *s = text;
    char *o = norm;
    int line = 0;
    if ((unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
        s += 3; /* UTF-8 byte order mark */
    while (*s) {
        line++;
        c->line = line;
        const char *eol = strchr(s, '\n');
        size_t len = eol ? (size_t)(eol - s) : strlen(s);
        const char *b = s, *e = s + len;
        s = eol ? eol + 1 : s + len;
        while (b < e && is_blank(*b))
            b++;
        if (b < e && (*b == ';' || *b == '#'))
            e = b; /* whole-line comment */
        for (const char *q = b; q < e; q++)
            if ((*q == ';' || *q == '#') && q > b && is_blank(q[-1])) {
                e = q;
                break;
            }
        while (e > b && is_blank(e[-1]))
            e--;
        size_t n = (size_t)(e - b);
        if (n == 0) {
            *o++ = '\n';
            continue;
        }
        if (n + 3 > (size_t)INI_MAX_LINE)
            return failf(c, BF_ERR_PARSE, NULL, NULL,
                         "line too long (at most %d characters without comments)",
                         INI_MAX_LINE - 3);
        if (memchr(b, 0, n) != NULL)
            return failf(c, BF_ERR_PARSE, NULL, NULL, "NUL byte in line");
        if (*b == '[') {
            if (e[-1] != ']' || n < 3)
                return failf(c, BF_ERR_PARSE, NULL, NULL, "'%.*s' is not a '[section]' header",
                             (int)n, b);
            const char *sb = b + 1, *se = e - 1;
            while (sb < se && is_blank(*sb))
                sb++;
            while (se > sb && is_blank(se[-1]))
                se--;
            char sec[200];
            snprintf(sec, sizeof sec, "%.*s", (int)(se - sb), sb);
            if (strchr(sec, '[') || strchr(sec, ']'))
                return failf(c, BF_ERR_PARSE, NULL, NULL, "'%.*s' is not a '[section]' header",
                             (int)n, b);
            bf_status st = open_section(c, sec);
            if (st != BF_OK)
                return st;
            o += sprintf(o, "[%s]\n", sec);
            continue;
        }
        const char *sep = b;
        while (sep < e && *sep != '=' && *sep != ':')
            sep++;
        if (sep == e)
            return failf(c, BF_ERR_PARSE, NULL, NULL, "'%.*s' is not 'key = value' or '[section]'",
                         (int)n, b);
        if (sep == b)
            return failf(c, BF_ERR_PARSE, NULL, NULL, "missing key before '%c'", *sep);
        int any_section = c->section_line[0] || c->section_line[1] || c->section_line[2] ||
                          c->section_line[3] ||
                          c->cfg->n_classes > 0;
        if (!any_section)
            return failf(c, BF_ERR_PARSE, NULL, NULL, "'%.*s' comes before any [section]",
                         (int)n, b);
        c->key_lines[c->n_key_lines++] = line;
        memcpy(o, b, n);
        o += n;
        *o++ = '\n';
    }
    *o = 0;
    c->line = 0;
    return BF_OK;
}

/* ---- checks once every key is in ----------------------------------------------- */

/* bf_class_validate's messages read "class NAME: KEY: ..."; point at KEY's line. */
static int key_line_of_message(const class_info *info, const bf_class_spec *cls, const char *msg)
{
    char head[64];
    snprintf(head, sizeof head, "class %s: ", cls->name);
    if (strncmp(msg, head, strlen(head)) != 0)
        return 0;
    const char *key = msg + strlen(head), *colon = strchr(key, ':');
    if (!colon)
        return 0;
    size_t n = (size_t)(colon - key);
    for (int p = 0; p < BF_N_CELL_PARAMS; p++) {
        const char *name = bf_cell_param_names[p];
        size_t m = strlen(name);
        if (n == m && strncmp(key, name, m) == 0)
            return info->param_line[p];
        if (n == m + 5 && strncmp(key, name, m) == 0 && strncmp(key + m, "_step", 5) == 0)
            return info->step_line[p];
    }
    return 0;
}

static bf_status finish(parse_ctx *c)
{
    bf_sample_config *cfg = c->cfg;
    const int phased = cfg->sampler == BF_SAMPLER_PHASED;
    c->line = 0;

    if (!cfg->instprm_path[0])
        return failf(c, BF_ERR_INVALID, "instrument", "instprm", "missing");
    if (cfg->n_classes == 0)
        return failf(c, BF_ERR_INVALID, NULL, NULL, "no [class.NAME] section");
    if (!(cfg->grid.tmax_ms > cfg->grid.tmin_ms)) {
        if (c->key_line[K_TOF_MAX]) {
            c->line = c->key_line[K_TOF_MAX];
            return failf(c, BF_ERR_INVALID, "instrument", "tof_max_ms",
                         "%g must be greater than tof_min_ms %g", cfg->grid.tmax_ms,
                         cfg->grid.tmin_ms);
        }
        c->line = c->key_line[K_TOF_MIN];
        return failf(c, BF_ERR_INVALID, "instrument", "tof_min_ms",
                     "%g must be less than tof_max_ms %g", cfg->grid.tmin_ms, cfg->grid.tmax_ms);
    }
    if (phased) {
        if (!c->key_line[K_PHASES] || !c->key_line[K_PHASE])
            return failf(c, BF_ERR_INVALID, "run", c->key_line[K_PHASES] ? "phase" : "phases",
                         "missing (the phased sampler needs phases and phase)");
        if (cfg->phase > cfg->phases) {
            c->line = c->key_line[K_PHASE];
            return failf(c, BF_ERR_INVALID, "run", "phase", "%d is outside 1..%d (phases)",
                         cfg->phase, cfg->phases);
        }
    } else {
        for (int id = K_PHASES; id <= K_PHASE; id++)
            if (c->key_line[id]) {
                c->line = c->key_line[id];
                return failf(c, BF_ERR_INVALID, "run", id == K_PHASES ? "phases" : "phase",
                             "only used by the phased sampler (sampler = %s)",
                             bf_sampler_name(cfg->sampler));
            }
    }

    int max_label = BF_CLASS_CUBIC;
    for (int k = 0; k < cfg->n_classes; k++)
        if (cfg->classes[k].label > max_label)
            max_label = cfg->classes[k].label;
    for (int k = 0; k < cfg->n_classes; k++) {
        bf_class_spec *cls = &cfg->classes[k];
        class_info *info = &c->cls[k];
        char section[64];
        snprintf(section, sizeof section, "class.%s", cls->name);
        c->line = info->line;
        if (!info->cif_line)
            return failf(c, BF_ERR_INVALID, section, "cif", "missing");
        for (int p = 0; p < BF_N_CELL_PARAMS && !info->builtin; p++) {
            const char *key = bf_cell_param_names[p];
            if (!info->param_line[p])
                return failf(c, BF_ERR_INVALID, section, key,
                             "missing (a custom class gives all six parameters: 'min max', a "
                             "number, or '= PARAM')");
            const bf_param_rule *r = &cls->rule[p];
            c->line = info->param_line[p];
            if (r->kind == BF_PARAM_TIED && cls->rule[r->tied_to].kind != BF_PARAM_FREE)
                return failf(c, BF_ERR_INVALID, section, key,
                             "tied to %s, which is not a free parameter",
                             bf_cell_param_names[r->tied_to]);
            if (info->step_line[p] && r->kind != BF_PARAM_FREE) {
                char step_key[32];
                snprintf(step_key, sizeof step_key, "%s_step", key);
                c->line = info->step_line[p];
                return failf(c, BF_ERR_INVALID, section, step_key, "%s is not a free parameter",
                             key);
            }
            c->line = info->line;
        }
        if (cfg->sampler == BF_SAMPLER_RANDOM && !info->count_line)
            return failf(c, BF_ERR_INVALID, section, "count",
                         "missing (the random sampler needs count >= 1)");
        if (cfg->sampler != BF_SAMPLER_RANDOM) {
            if (info->count_line) {
                c->line = info->count_line;
                return failf(c, BF_ERR_INVALID, section, "count",
                             "only used by the random sampler (the %s sampler's steps set the "
                             "number of samples)",
                             bf_sampler_name(cfg->sampler));
            }
            for (int p = 0; p < BF_N_CELL_PARAMS; p++) {
                if (cls->rule[p].kind != BF_PARAM_FREE || cls->rule[p].step > 0)
                    continue;
                char step_key[32];
                snprintf(step_key, sizeof step_key, "%s_step", bf_cell_param_names[p]);
                return failf(c, BF_ERR_INVALID, section, step_key,
                             "missing (the %s sampler needs a step > 0 for every free parameter)",
                             bf_sampler_name(cfg->sampler));
            }
        }
        if (cls->label < 0)
            cls->label = ++max_label;
        for (int j = 0; j < k; j++)
            if (cfg->classes[j].label == cls->label) {
                if (info->label_line)
                    c->line = info->label_line;
                return failf(c, BF_ERR_INVALID, section, "label", "%d is also class %s's label",
                             cls->label, cfg->classes[j].name);
            }
        bf_status st = bf_class_validate(cls, c->err);
        if (st != BF_OK) {
            c->failed = 1;
            int line = c->err ? key_line_of_message(info, cls, c->err->msg) : 0;
            bf_error_prefix(c->err, "%s:%d", c->name, line ? line : info->line);
            return st;
        }
    }
    c->line = 0;
    return BF_OK;
}

/* Keeps the text as provenance; a longer one is cut at a line end and marked. */
static void keep_text(bf_sample_config *cfg, const char *text)
{
    static const char mark[] = "; [config truncated]\n";
    size_t cap = sizeof cfg->config_text;
    size_t len = strlen(text);
    if (len < cap) {
        memcpy(cfg->config_text, text, len + 1);
        return;
    }
    size_t keep = cap - sizeof mark; /* room for the mark and its NUL */
    while (keep > 0 && text[keep - 1] != '\n')
        keep--;
    memcpy(cfg->config_text, text, keep);
    memcpy(cfg->config_text + keep, mark, sizeof mark);
}

bf_status bf_sample_config_parse(const char *text, const char *name, bf_sample_config *out,
                                 bf_error *err)
{
    memset(out, 0, sizeof *out);
    if (!name)
        name = "(config)";
    snprintf(out->path, sizeof out->path, "%s", name);
    out->sampler = BF_SAMPLER_RANDOM;
    out->layout = BF_LAYOUT_BRAGGFLOW;
    out->phases = 1;
    out->phase = 1;
    bf_grid_spec_defaults(&out->grid);
    bf_sample_defaults(&out->sample);
    out->measured.background_hi = 0.05;
    out->sample.scale = 1000.0; /* the seed workflow's histogram scale */

    bf_status st = BF_OK;
    parse_ctx *c = calloc(1, sizeof *c);
    size_t len = strlen(text);
    char *norm = malloc(len + 2);
    int n_lines = 1;
    for (const char *s = text; *s; s++)
        n_lines += *s == '\n';
    int *key_lines = malloc((size_t)n_lines * sizeof *key_lines);
    if (!c || !norm || !key_lines) {
        st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", name);
        goto done;
    }
    c->cfg = out;
    c->name = name;
    c->err = err;
    c->key_lines = key_lines;

    st = prescan(c, text, norm);
    if (st != BF_OK)
        goto done;
    int rc = ini_parse_string(norm, on_key, c);
    if (c->failed) {
        st = err ? err->code : BF_ERR_PARSE;
        if (st == BF_OK)
            st = BF_ERR_PARSE;
        goto done;
    }
    if (rc != 0) { /* the pre-scan should have caught every line inih rejects */
        c->line = rc > 0 ? rc : 0;
        st = failf(c, BF_ERR_PARSE, NULL, NULL, "cannot parse this line");
        goto done;
    }
    st = finish(c);
    if (st != BF_OK)
        goto done;
    keep_text(out, text);

done:
    free(key_lines);
    free(norm);
    free(c);
    return st;
}

bf_status bf_sample_config_read(const char *ini_path, bf_sample_config *out, bf_error *err)
{
    char *text = NULL;
    bf_status st = bf_read_file(ini_path, &text, NULL, err);
    if (st == BF_OK)
        st = bf_sample_config_parse(text, ini_path, out, err);
    free(text);
    return st;
}
