/* flow/sweep_config.c — the sweep INI (braggflow/flow.h, README "braggflow sweep"):
 * parsing with FILE:LINE errors, grid expansion and reproducible random draws.
 *
 *   [sweep]   model, train, val, out, mode (grid|random), count, seed, metric, threads
 *   [grid]    KEY = a, b, c                  (first key slowest)
 *   [random]  KEY = a, b, c | lo..hi | log lo..hi
 * KEY: lr, batch, hidden, epochs, seed, patience, min_delta, clip. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/flow.h"

/* A sweepable train option: integer or not, and its bounds (as cmd_train's). */
typedef struct {
    const char *key;
    int integer;
    double lo, hi;
    int lo_open; /* lo < value (lr, clip) rather than lo <= value */
} param_spec;

static const param_spec params[] = {
    {"lr", 0, 0, 10, 1},          {"batch", 1, 1, 65536, 0},    {"hidden", 1, 1, 65536, 0},
    {"epochs", 1, 1, 10000, 0},   {"seed", 1, 0, 9.007199254740992e15, 0},
    {"patience", 1, 0, 1000000, 0}, {"min_delta", 0, 0, 1e30, 0}, {"clip", 0, 0, 1e30, 0},
};
#define N_PARAMS (int)(sizeof params / sizeof params[0])

static const param_spec *find_param(const char *key)
{
    for (int i = 0; i < N_PARAMS; i++)
        if (!strcmp(params[i].key, key))
            return &params[i];
    return NULL;
}

typedef struct {
    bf_sweep_config *cfg;
    const char *name;
    char section[32];
    int in_params;          /* inside [grid] / [random] */
    int seen_sweep, seen_params, params_line;
    int mode_given, mode_line, count_line, seed_line;
    char seen_keys[16][16];
    int n_seen;
} ctx;

__attribute__((format(printf, 5, 6))) static bf_status fail(const ctx *c, bf_error *err,
                                                            int line, const char *key,
                                                            const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (key)
        return bf_error_set(err, BF_ERR_PARSE, "%s:%d: [%s] %s: %s", c->name, line, c->section,
                            key, msg);
    return bf_error_set(err, BF_ERR_PARSE, "%s:%d: [%s]: %s", c->name, line, c->section, msg);
}

static int number_ok(const param_spec *p, double v)
{
    if (!isfinite(v) || v > p->hi || v < p->lo || (p->lo_open && v <= p->lo))
        return 0;
    return !p->integer || v == floor(v);
}

static bf_status bounds_error(const ctx *c, bf_error *err, int line, const param_spec *p,
                              const char *item)
{
    return fail(c, err, line, p->key, "'%s' is not %s in %s%g, %g]", item,
                p->integer ? "an integer" : "a number", p->lo_open ? "(" : "[", p->lo, p->hi);
}

/* "a, b, c", "lo..hi" or "log lo..hi" into sp. */
static bf_status parse_values(const ctx *c, const param_spec *p, const char *value, int line,
                              bf_sweep_param *sp, bf_error *err)
{
    if (!*value)
        return fail(c, err, line, p->key, "empty list");
    const char *dots = strstr(value, "..");
    if (dots) {
        if (c->cfg->mode != BF_SWEEP_RANDOM)
            return fail(c, err, line, p->key, "a range lo..hi is for [random]; [grid] takes a "
                        "list a, b, c");
        char lo_text[128], hi_text[128];
        const char *s = value;
        int log_scale = 0;
        if (!strncmp(s, "log", 3) && (s[3] == ' ' || s[3] == '\t')) {
            log_scale = 1;
            s += 4;
            while (*s == ' ' || *s == '\t')
                s++;
        }
        size_t nlo = (size_t)(strstr(s, "..") - s);
        if (nlo >= sizeof lo_text || strlen(dots + 2) >= sizeof hi_text)
            return fail(c, err, line, p->key, "value too long");
        memcpy(lo_text, s, nlo);
        lo_text[nlo] = 0;
        while (nlo > 0 && (lo_text[nlo - 1] == ' ' || lo_text[nlo - 1] == '\t'))
            lo_text[--nlo] = 0;
        const char *h = dots + 2;
        while (*h == ' ' || *h == '\t')
            h++;
        snprintf(hi_text, sizeof hi_text, "%s", h);
        if (!lo_text[0] || !hi_text[0])
            return fail(c, err, line, p->key, "'%s' is not lo..hi or log lo..hi", value);
        if (bf_parse_double(lo_text, &sp->lo) != 0 || !number_ok(p, sp->lo))
            return bounds_error(c, err, line, p, lo_text);
        if (bf_parse_double(hi_text, &sp->hi) != 0 || !number_ok(p, sp->hi))
            return bounds_error(c, err, line, p, hi_text);
        if (sp->lo > sp->hi)
            return fail(c, err, line, p->key, "empty range %s..%s (lo > hi)", lo_text, hi_text);
        if (log_scale && !(sp->lo > 0))
            return fail(c, err, line, p->key, "a log range needs lo > 0");
        sp->log = log_scale;
        sp->n = 0;
        return BF_OK;
    }
    char buf[4096];
    if (strlen(value) >= sizeof buf)
        return fail(c, err, line, p->key, "value too long");
    snprintf(buf, sizeof buf, "%s", value);
    char *s = buf;
    for (;;) {
        char *comma = strchr(s, ',');
        if (comma)
            *comma = 0;
        while (*s == ' ' || *s == '\t')
            s++;
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            s[--n] = 0;
        if (!*s)
            return fail(c, err, line, p->key, "empty item in the list '%s'", value);
        if (sp->n == BF_SWEEP_MAX_VALUES)
            return fail(c, err, line, p->key, "more than %d values", BF_SWEEP_MAX_VALUES);
        double v;
        if (bf_parse_double(s, &v) != 0 || !number_ok(p, v))
            return bounds_error(c, err, line, p, s);
        sp->value[sp->n++] = v;
        if (!comma)
            break;
        s = comma + 1;
    }
    return BF_OK;
}

static bf_status path_value(const ctx *c, const char *key, const char *value, int line,
                            char *out, size_t n, bf_error *err)
{
    if (!*value)
        return fail(c, err, line, key, "empty path");
    return bf_path_resolve(c->name, value, out, n, err) == BF_OK
               ? BF_OK
               : fail(c, err, line, key, "'%s': path too long", value);
}

static bf_status on_sweep_key(ctx *c, const char *key, const char *value, int line, bf_error *err)
{
    bf_sweep_config *cfg = c->cfg;
    if (!strcmp(key, "model")) {
        if (strcmp(value, "structure_net") && strcmp(value, "braggnn"))
            return fail(c, err, line, key, "'%s' is not structure_net or braggnn", value);
        snprintf(cfg->model, sizeof cfg->model, "%s", value);
    } else if (!strcmp(key, "train")) {
        return path_value(c, key, value, line, cfg->train, sizeof cfg->train, err);
    } else if (!strcmp(key, "val")) {
        return path_value(c, key, value, line, cfg->val, sizeof cfg->val, err);
    } else if (!strcmp(key, "out")) {
        return path_value(c, key, value, line, cfg->out, sizeof cfg->out, err);
    } else if (!strcmp(key, "mode")) {
        if (!strcmp(value, "grid"))
            cfg->mode = BF_SWEEP_GRID;
        else if (!strcmp(value, "random"))
            cfg->mode = BF_SWEEP_RANDOM;
        else
            return fail(c, err, line, key, "'%s' is not grid or random", value);
        c->mode_given = 1;
        c->mode_line = line;
    } else if (!strcmp(key, "count")) {
        long v;
        if (bf_parse_long(value, &v) != 0 || v < 1 || v > BF_SWEEP_MAX_TRIALS)
            return fail(c, err, line, key, "'%s' is not a count in [1, %d]", value,
                        BF_SWEEP_MAX_TRIALS);
        cfg->count = v;
        c->count_line = line;
    } else if (!strcmp(key, "seed")) {
        long v;
        if (bf_parse_long(value, &v) != 0 || v < 0)
            return fail(c, err, line, key, "'%s' is not an integer >= 0", value);
        cfg->seed = (uint64_t)v;
        c->seed_line = line;
    } else if (!strcmp(key, "metric")) {
        if (strcmp(value, "val_score"))
            return fail(c, err, line, key, "'%s' is not val_score (the only metric)", value);
    } else if (!strcmp(key, "threads")) {
        long v;
        if (bf_parse_long(value, &v) != 0 || v < 0 || v > 4096)
            return fail(c, err, line, key, "'%s' is not a thread count in [0, 4096]", value);
        cfg->threads = (int)v;
    } else {
        return fail(c, err, line, key, "unknown key (model, train, val, out, mode, count, seed, "
                    "metric, threads)");
    }
    return BF_OK;
}

static bf_status on_key(void *user, const char *section, const char *key, const char *value,
                        int line, bf_error *err)
{
    ctx *c = user;
    bf_sweep_config *cfg = c->cfg;
    if (!key) {
        snprintf(c->section, sizeof c->section, "%s", section);
        c->n_seen = 0;
        if (!strcmp(section, "sweep")) {
            if (c->seen_sweep)
                return fail(c, err, line, NULL, "repeated section");
            c->seen_sweep = 1;
            c->in_params = 0;
            return BF_OK;
        }
        if (!strcmp(section, "grid") || !strcmp(section, "random")) {
            if (c->seen_params)
                return fail(c, err, line, NULL, "a second parameter section ([grid] or "
                            "[random], one of them)");
            bf_sweep_mode m = section[0] == 'g' ? BF_SWEEP_GRID : BF_SWEEP_RANDOM;
            if (c->mode_given && m != cfg->mode)
                return fail(c, err, line, NULL, "mode is %s (line %d)",
                            cfg->mode == BF_SWEEP_GRID ? "grid" : "random", c->mode_line);
            cfg->mode = m;
            c->seen_params = 1;
            c->params_line = line;
            c->in_params = 1;
            return BF_OK;
        }
        return fail(c, err, line, NULL, "unknown section (sweep, grid, random)");
    }
    for (int i = 0; i < c->n_seen; i++)
        if (!strcmp(c->seen_keys[i], key))
            return fail(c, err, line, key, "given twice");
    if (c->n_seen < 16)
        snprintf(c->seen_keys[c->n_seen++], sizeof c->seen_keys[0], "%s", key);
    if (!c->in_params)
        return on_sweep_key(c, key, value, line, err);
    const param_spec *p = find_param(key);
    if (!p)
        return fail(c, err, line, key, "unknown key (lr, batch, hidden, epochs, seed, patience, "
                    "min_delta, clip)");
    if (cfg->n_params == BF_SWEEP_MAX_PARAMS)
        return fail(c, err, line, key, "more than %d parameters", BF_SWEEP_MAX_PARAMS);
    bf_sweep_param *sp = &cfg->param[cfg->n_params];
    memset(sp, 0, sizeof *sp);
    snprintf(sp->key, sizeof sp->key, "%s", key);
    sp->line = line;
    bf_status st = parse_values(c, p, value, line, sp, err);
    if (st == BF_OK)
        cfg->n_params++;
    return st;
}

bf_status bf_sweep_config_parse(const char *text, const char *path, bf_sweep_config *out,
                                bf_error *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path ? path : "(sweep)");
    snprintf(out->model, sizeof out->model, "structure_net");
    out->mode = BF_SWEEP_GRID;
    out->seed = 1;
    if (strlen(text) >= sizeof out->text)
        return bf_error_set(err, BF_ERR_PARSE, "%s: longer than %zu bytes", out->path,
                            sizeof out->text - 1);
    snprintf(out->text, sizeof out->text, "%s", text);
    ctx c = {.cfg = out, .name = out->path};
    bf_status st = bf_ini_parse(text, out->path, on_key, &c, err);
    if (st != BF_OK)
        return st;
    snprintf(c.section, sizeof c.section, "sweep");
    if (!c.seen_sweep)
        return bf_error_set(err, BF_ERR_PARSE, "%s:1: [sweep]: section missing", out->path);
    if (!out->train[0] || !out->val[0] || !out->out[0])
        return bf_error_set(err, BF_ERR_PARSE, "%s: [sweep] %s: missing", out->path,
                            !out->train[0] ? "train" : !out->val[0] ? "val" : "out");
    if (!c.seen_params || out->n_params == 0)
        return bf_error_set(err, BF_ERR_PARSE, "%s:%d: [%s]: no parameter to sweep", out->path,
                            c.seen_params ? c.params_line : 1,
                            out->mode == BF_SWEEP_GRID ? "grid" : "random");
    for (int i = 0; i < out->n_params; i++)
        if (!strcmp(out->param[i].key, "hidden") && !strcmp(out->model, "braggnn")) {
            snprintf(c.section, sizeof c.section, "%s",
                     out->mode == BF_SWEEP_GRID ? "grid" : "random");
            return fail(&c, err, out->param[i].line, "hidden", "structure_net's (fc1 width); "
                        "model is braggnn");
        }
    if (out->mode == BF_SWEEP_GRID) {
        if (out->count)
            return fail(&c, err, c.count_line, "count", "for mode = random (a grid has one "
                        "trial per combination)");
        double n = 1;
        for (int i = 0; i < out->n_params; i++)
            n *= out->param[i].n;
        if (n > BF_SWEEP_MAX_TRIALS)
            return bf_error_set(err, BF_ERR_PARSE, "%s:%d: [grid]: %.0f trials (at most %d)",
                                out->path, c.params_line, n, BF_SWEEP_MAX_TRIALS);
        out->n_trials = (long)n;
    } else {
        if (!out->count)
            return bf_error_set(err, BF_ERR_PARSE, "%s:%d: [sweep] count: missing (mode = "
                                "random needs the number of trials)", out->path,
                                c.mode_line ? c.mode_line : c.params_line);
        out->n_trials = out->count;
    }
    return BF_OK;
}

bf_status bf_sweep_config_read(const char *path, bf_sweep_config *out, bf_error *err)
{
    char *text = NULL;
    bf_status st = bf_read_file(path, &text, NULL, err);
    if (st == BF_OK)
        st = bf_sweep_config_parse(text, path, out, err);
    free(text);
    return st;
}

static void set_value(bf_sweep_trial *t, const char *key, double v)
{
    if (!strcmp(key, "lr")) t->lr = v;
    else if (!strcmp(key, "batch")) t->batch = (int)v;
    else if (!strcmp(key, "hidden")) t->hidden = (int)v;
    else if (!strcmp(key, "epochs")) t->epochs = (int)v;
    else if (!strcmp(key, "seed")) t->seed = (uint64_t)v;
    else if (!strcmp(key, "patience")) t->patience = (int)v;
    else if (!strcmp(key, "min_delta")) t->min_delta = v;
    else if (!strcmp(key, "clip")) t->clip = v;
}

double bf_sweep_trial_value(const bf_sweep_trial *t, const char *key)
{
    if (!strcmp(key, "lr")) return t->lr;
    if (!strcmp(key, "batch")) return t->batch;
    if (!strcmp(key, "hidden")) return t->hidden;
    if (!strcmp(key, "epochs")) return t->epochs;
    if (!strcmp(key, "seed")) return (double)t->seed;
    if (!strcmp(key, "patience")) return t->patience;
    if (!strcmp(key, "min_delta")) return t->min_delta;
    if (!strcmp(key, "clip")) return t->clip;
    return NAN;
}

void bf_sweep_trial_at(const bf_sweep_config *cfg, long i, bf_sweep_trial *t)
{
    bf_train_config d;
    bf_train_config_defaults(&d);
    int peaks = !strcmp(cfg->model, "braggnn");
    *t = (bf_sweep_trial){.id = i, .epochs = d.epochs, .batch = d.batch, .patience = d.patience,
                          .lr = peaks ? 3e-4 : d.lr, .min_delta = d.min_delta,
                          .clip = peaks ? 0 : d.clip_norm, .seed = d.seed};
    if (cfg->mode == BF_SWEEP_GRID) {
        long rest = i;
        for (int p = cfg->n_params - 1; p >= 0; p--) { /* last key fastest */
            const bf_sweep_param *sp = &cfg->param[p];
            set_value(t, sp->key, sp->value[rest % sp->n]);
            rest /= sp->n;
        }
        return;
    }
    bf_rng rng;
    bf_rng_init(&rng, cfg->seed, (uint64_t)i);
    for (int p = 0; p < cfg->n_params; p++) {
        const bf_sweep_param *sp = &cfg->param[p];
        const param_spec *ps = find_param(sp->key);
        double u = bf_rng_uniform(&rng), v;
        if (sp->n > 0) {
            v = sp->value[(int)(u * sp->n)];
        } else {
            if (ps->integer && sp->log) /* lo..hi inclusive */
                v = round(exp(log(sp->lo) + u * (log(sp->hi) - log(sp->lo))));
            else if (ps->integer)
                v = floor(sp->lo + u * (sp->hi - sp->lo + 1));
            else
                v = sp->log ? exp(log(sp->lo) + u * (log(sp->hi) - log(sp->lo)))
                            : sp->lo + u * (sp->hi - sp->lo);
            /* exp(log(x)) may round past x ("log 10..10" gave 10.000000000000002) */
            v = v < sp->lo ? sp->lo : v > sp->hi ? sp->hi : v;
        }
        set_value(t, sp->key, v);
    }
}

void bf_sweep_trial_json(const bf_sweep_config *cfg, const bf_sweep_trial *t, char *out,
                         size_t n)
{
    snprintf(out, n, "{\"model\":\"%s\",\"epochs\":%d,\"batch\":%d,\"lr\":%.17g,\"seed\":%llu,"
             "\"hidden\":%d,\"patience\":%d,\"min_delta\":%.17g,\"clip\":%.17g,\"threads\":%d}",
             cfg->model, t->epochs, t->batch, t->lr, (unsigned long long)t->seed, t->hidden,
             t->patience, t->min_delta, t->clip, cfg->threads);
}
