/* data/peaks_config.c — the `sample-peaks` INI (braggflow/data.h, docs/peaks.md).
 *
 * Sections and keys (unknown ones are errors; every key is optional):
 *   [run]        seed (uint64, 0), count (>= 1, 1000), patch_size (odd, 5..63, 11)
 *   [peak]       height (log 50 5000 counts), sigma (0.5 2 px), gamma (0.5 2 px),
 *                eta (0 1), theta_deg (0 180), centre_offset (-1 1 px)
 *   [background] level (1 50 counts), slope (-0.5 0.5 counts/px)
 *   [noise]      poisson (yes), read_sigma (1 3 counts)
 *   [neighbour]  fraction (0.1), distance (4 7 px), height_ratio (0.2 1)
 * A range is "lo hi" (uniform), "log lo hi" (log-uniform, lo > 0), "uniform lo
 * hi", or one number (fixed). sigma and gamma are drawn independently for the
 * u and v axes, centre_offset independently for rows and columns. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

typedef enum { V_U64, V_COUNT, V_SIZE, V_RANGE, V_BOOL, V_FRACTION } value_kind;

/* What a range must satisfy. */
typedef enum { R_ANY, R_POSITIVE, R_NONNEG, R_UNIT } range_rule;

typedef struct {
    const char *section, *key;
    value_kind kind;
    size_t offset;                    /* into bf_peaks_config */
    range_rule rule;
} key_spec;

#define OFF(field) offsetof(bf_peaks_config, field)
static const key_spec keys[] = {
    {"run", "seed", V_U64, OFF(seed), R_ANY},
    {"run", "count", V_COUNT, OFF(count), R_ANY},
    {"run", "patch_size", V_SIZE, OFF(size), R_ANY},
    {"peak", "height", V_RANGE, OFF(height), R_POSITIVE},
    {"peak", "sigma", V_RANGE, OFF(sigma), R_POSITIVE},
    {"peak", "gamma", V_RANGE, OFF(gamma), R_POSITIVE},
    {"peak", "eta", V_RANGE, OFF(eta), R_UNIT},
    {"peak", "theta_deg", V_RANGE, OFF(theta_deg), R_ANY},
    {"peak", "centre_offset", V_RANGE, OFF(centre_offset), R_ANY},
    {"background", "level", V_RANGE, OFF(bg_level), R_NONNEG},
    {"background", "slope", V_RANGE, OFF(bg_slope), R_ANY},
    {"noise", "poisson", V_BOOL, OFF(poisson), R_ANY},
    {"noise", "read_sigma", V_RANGE, OFF(read_sigma), R_NONNEG},
    {"neighbour", "fraction", V_FRACTION, OFF(neighbour_fraction), R_ANY},
    {"neighbour", "distance", V_RANGE, OFF(neighbour_distance), R_POSITIVE},
    {"neighbour", "height_ratio", V_RANGE, OFF(neighbour_height_ratio), R_POSITIVE},
};
#define N_KEYS (sizeof keys / sizeof keys[0])
static const char *const sections[] = {"run", "peak", "background", "noise", "neighbour"};
#define N_SECTIONS (sizeof sections / sizeof sections[0])

#define MAX_COUNT 100000000L
/* centre_offset keeps the centre this far inside the patch edge (px) */
#define EDGE_MARGIN 0.5

void bf_peaks_config_defaults(bf_peaks_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->path, sizeof cfg->path, "(defaults)");
    cfg->seed = 0;
    cfg->count = 1000;
    cfg->size = 11;
    cfg->height = (bf_range){50, 5000, 1};
    cfg->sigma = (bf_range){0.5, 2, 0};
    cfg->gamma = (bf_range){0.5, 2, 0};
    cfg->eta = (bf_range){0, 1, 0};
    cfg->theta_deg = (bf_range){0, 180, 0};
    cfg->centre_offset = (bf_range){-1, 1, 0};
    cfg->bg_level = (bf_range){1, 50, 0};
    cfg->bg_slope = (bf_range){-0.5, 0.5, 0};
    cfg->read_sigma = (bf_range){1, 3, 0};
    cfg->poisson = 1;
    cfg->neighbour_fraction = 0.1;
    cfg->neighbour_distance = (bf_range){4, 7, 0};
    cfg->neighbour_height_ratio = (bf_range){0.2, 1, 0};
}

/* ---- parsing -------------------------------------------------------------------- */

typedef struct {
    bf_peaks_config *cfg;
    const char *name;
    int section_line[N_SECTIONS];
    int key_line[N_KEYS];
    int section;                      /* index into sections[] */
} parse_ctx;

__attribute__((format(printf, 6, 7))) static bf_status fail(parse_ctx *c, bf_error *err,
                                                            bf_status code, int line,
                                                            const char *key, const char *fmt,
                                                            ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bf_error_set(err, code, "%s:%d: [%s] %s: %s", c->name, line, sections[c->section],
                        key, msg);
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return -1; /* strtoull would accept "-1" */
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != 0 || errno == ERANGE)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

/* "lo hi", "log lo hi", "uniform lo hi" or "x"; returns NULL or why not. */
static const char *parse_range(const char *value, bf_range *r)
{
    char buf[256], *tok[4], *save = NULL;
    int n = 0;
    if (strlen(value) >= sizeof buf)
        return "value too long";
    snprintf(buf, sizeof buf, "%s", value);
    for (char *t = strtok_r(buf, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
        if (n == 4)
            return "expected 'lo hi', 'log lo hi' or one number";
        tok[n++] = t;
    }
    int log_scale = 0, first = 0;
    if (n > 0 && (!strcmp(tok[0], "log") || !strcmp(tok[0], "uniform"))) {
        log_scale = tok[0][0] == 'l';
        first = 1;
    }
    int nums = n - first;
    if (nums < 1 || nums > 2 || (first && nums != 2))
        return "expected 'lo hi', 'log lo hi' or one number";
    double v[2];
    for (int k = 0; k < nums; k++)
        if (bf_parse_double(tok[first + k], &v[k]) != 0 || !isfinite(v[k]))
            return "not a number";
    r->lo = v[0];
    r->hi = nums == 2 ? v[1] : v[0];
    r->log = log_scale;
    if (r->lo > r->hi)
        return "lo > hi";
    if (r->log && r->lo <= 0)
        return "a log range needs lo > 0";
    return NULL;
}

static const char *check_rule(const bf_range *r, range_rule rule)
{
    switch (rule) {
    case R_POSITIVE: return r->lo > 0 ? NULL : "must be > 0";
    case R_NONNEG: return r->lo >= 0 ? NULL : "must be >= 0";
    case R_UNIT: return r->lo >= 0 && r->hi <= 1 ? NULL : "must lie in [0, 1]";
    case R_ANY: break;
    }
    return NULL;
}

static bf_status on_line(void *user, const char *section, const char *key, const char *value,
                         int line, bf_error *err)
{
    parse_ctx *c = user;
    if (!key) {
        int s = -1;
        for (size_t k = 0; k < N_SECTIONS; k++)
            if (!strcmp(section, sections[k]))
                s = (int)k;
        if (s < 0)
            return bf_error_set(err, BF_ERR_PARSE,
                                "%s:%d: [%s]: unknown section (expected run, peak, background, "
                                "noise or neighbour)",
                                c->name, line, section);
        if (c->section_line[s])
            return bf_error_set(err, BF_ERR_PARSE,
                                "%s:%d: [%s]: section given twice (first on line %d)", c->name,
                                line, section, c->section_line[s]);
        c->section_line[s] = line;
        c->section = s;
        return BF_OK;
    }
    int id = -1;
    for (size_t k = 0; k < N_KEYS; k++)
        if (!strcmp(keys[k].section, section) && !strcmp(keys[k].key, key))
            id = (int)k;
    if (id < 0)
        return fail(c, err, BF_ERR_PARSE, line, key, "unknown key");
    if (c->key_line[id])
        return fail(c, err, BF_ERR_PARSE, line, key, "given twice (first on line %d)",
                    c->key_line[id]);
    c->key_line[id] = line;

    char *field = (char *)c->cfg + keys[id].offset;
    long n = 0;
    double x = 0;
    const char *why = NULL;
    switch (keys[id].kind) {
    case V_U64:
        if (parse_u64(value, (uint64_t *)(void *)field) != 0)
            return fail(c, err, BF_ERR_PARSE, line, key, "'%s' is not a whole number >= 0",
                        value);
        return BF_OK;
    case V_COUNT:
        if (bf_parse_long(value, &n) != 0)
            return fail(c, err, BF_ERR_PARSE, line, key, "'%s' is not a whole number", value);
        if (n < 1 || n > MAX_COUNT)
            return fail(c, err, BF_ERR_INVALID, line, key, "%ld must be in 1..%ld", n,
                        MAX_COUNT);
        *(long *)(void *)field = n;
        return BF_OK;
    case V_SIZE:
        if (bf_parse_long(value, &n) != 0)
            return fail(c, err, BF_ERR_PARSE, line, key, "'%s' is not a whole number", value);
        if (n < 5 || n > 63 || n % 2 == 0)
            return fail(c, err, BF_ERR_INVALID, line, key, "%ld must be odd, 5..63", n);
        *(int *)(void *)field = (int)n;
        return BF_OK;
    case V_BOOL:
        if (!strcmp(value, "yes") || !strcmp(value, "true") || !strcmp(value, "1"))
            *(int *)(void *)field = 1;
        else if (!strcmp(value, "no") || !strcmp(value, "false") || !strcmp(value, "0"))
            *(int *)(void *)field = 0;
        else
            return fail(c, err, BF_ERR_PARSE, line, key, "'%s' is not yes or no", value);
        return BF_OK;
    case V_FRACTION:
        if (bf_parse_double(value, &x) != 0 || !isfinite(x))
            return fail(c, err, BF_ERR_PARSE, line, key, "'%s' is not a number", value);
        if (x < 0 || x > 1)
            return fail(c, err, BF_ERR_INVALID, line, key, "%g must lie in [0, 1]", x);
        *(double *)(void *)field = x;
        return BF_OK;
    case V_RANGE: {
        bf_range r;
        why = parse_range(value, &r);
        if (why)
            return fail(c, err, BF_ERR_PARSE, line, key, "'%s': %s", value, why);
        why = check_rule(&r, keys[id].rule);
        if (why)
            return fail(c, err, BF_ERR_INVALID, line, key, "'%s': %s", value, why);
        *(bf_range *)(void *)field = r;
        return BF_OK;
    }
    }
    return BF_OK;
}

/* Checks that need more than one key: the centre stays inside the patch. */
static bf_status finish(parse_ctx *c, bf_error *err)
{
    const bf_peaks_config *cfg = c->cfg;
    double room = cfg->size / 2.0 - EDGE_MARGIN;
    if (fabs(cfg->centre_offset.lo) > room || fabs(cfg->centre_offset.hi) > room) {
        size_t id = 0;
        while (strcmp(keys[id].key, "centre_offset"))
            id++;
        int line = c->key_line[id];
        const char *why = "keeps the centre at least 0.5 px inside the patch";
        if (line) {
            c->section = 1;
            return fail(c, err, BF_ERR_INVALID, line, "centre_offset", "|offset| <= %g %s", room,
                        why);
        }
        return bf_error_set(err, BF_ERR_INVALID,
                            "%s: [peak] centre_offset: the default -1..1 needs patch_size >= 5",
                            c->name);
    }
    return BF_OK;
}

bf_status bf_peaks_config_parse(const char *text, const char *name, bf_peaks_config *out,
                                bf_error *err)
{
    bf_peaks_config_defaults(out);
    if (!name)
        name = "(config)";
    snprintf(out->path, sizeof out->path, "%s", name);
    parse_ctx c = {.cfg = out, .name = name};
    bf_status st = bf_ini_parse(text, name, on_line, &c, err);
    if (st == BF_OK)
        st = finish(&c, err);
    if (st != BF_OK)
        return st;
    size_t len = strlen(text);
    if (len < sizeof out->config_text) {
        memcpy(out->config_text, text, len + 1);
    } else { /* cut at a line end; the effective values are kept in full by the writer */
        size_t keep = sizeof out->config_text - 1;
        while (keep > 0 && text[keep - 1] != '\n')
            keep--;
        memcpy(out->config_text, text, keep);
        out->config_text[keep] = 0;
    }
    return BF_OK;
}

bf_status bf_peaks_config_read(const char *path, bf_peaks_config *out, bf_error *err)
{
    char *text = NULL;
    bf_status st = bf_read_file(path, &text, NULL, err);
    if (st == BF_OK)
        st = bf_peaks_config_parse(text, path, out, err);
    else
        bf_peaks_config_defaults(out);
    free(text);
    return st;
}

/* ---- the effective configuration as INI text ---------------------------------------- */

/* The shortest of %.15g and %.17g that reads back as x. */
static const char *num(double x, char buf[32])
{
    snprintf(buf, 32, "%.15g", x);
    if (strtod(buf, NULL) != x)
        snprintf(buf, 32, "%.17g", x);
    return buf;
}

static size_t put_range(char *out, size_t cap, const char *key, const bf_range *r)
{
    char a[32], b[32];
    if (r->lo == r->hi && !r->log)
        return (size_t)snprintf(out, cap, "%s = %s\n", key, num(r->lo, a));
    return (size_t)snprintf(out, cap, "%s = %s%s %s\n", key, r->log ? "log " : "", num(r->lo, a),
                            num(r->hi, b));
}

void bf_peaks_config_format(const bf_peaks_config *cfg, char *out, size_t outsz)
{
    size_t n = 0;
    int section = -1;
    out[0] = 0;
    for (size_t k = 0; k < N_KEYS && n < outsz; k++) {
        int s = 0;
        while (strcmp(sections[s], keys[k].section))
            s++;
        if (s != section) {
            n += (size_t)snprintf(out + n, outsz - n, "%s[%s]\n", section < 0 ? "" : "\n",
                                  sections[s]);
            section = s;
            if (n >= outsz)
                break;
        }
        const char *field = (const char *)cfg + keys[k].offset;
        switch (keys[k].kind) {
        case V_U64:
            n += (size_t)snprintf(out + n, outsz - n, "%s = %llu\n", keys[k].key,
                                  (unsigned long long)*(const uint64_t *)(const void *)field);
            break;
        case V_COUNT:
            n += (size_t)snprintf(out + n, outsz - n, "%s = %ld\n", keys[k].key,
                                  *(const long *)(const void *)field);
            break;
        case V_SIZE:
            n += (size_t)snprintf(out + n, outsz - n, "%s = %d\n", keys[k].key,
                                  *(const int *)(const void *)field);
            break;
        case V_BOOL:
            n += (size_t)snprintf(out + n, outsz - n, "%s = %s\n", keys[k].key,
                                  *(const int *)(const void *)field ? "yes" : "no");
            break;
        case V_FRACTION: {
            char a[32];
            n += (size_t)snprintf(out + n, outsz - n, "%s = %s\n", keys[k].key,
                                  num(*(const double *)(const void *)field, a));
            break;
        }
        case V_RANGE:
            n += put_range(out + n, outsz - n, keys[k].key,
                           (const bf_range *)(const void *)field);
            break;
        }
    }
}
