/* flow/campaign_config.c — the campaign INI: a `sample` INI plus [campaign],
 * [train] and [al].
 *
 * The text is split in two with its line count kept (lines of the other part
 * become blank): the sample part goes to the `sample` parser (its errors keep
 * their line numbers), the campaign part is read here, line by line:
 *   [campaign] workflow, phases, val, test, study_per_class, new_per_phase,
 *              stream_fraction, sim_threads, train_threads, sim_ranks
 *   [train]    epochs (one per phase, or one: phase 0's, later phases scaled by
 *              sqrt(N_0 / N_k)), batch, lr, patience, hidden, clip
 *   [al]       policy, mix_reg, mix_cls, tau, std.CLASS.PARAM, prior.CLASS
 * Comments start with ';' or '#' (also after blanks inside a line). */
#include "braggflow/flow.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const own_sections[] = {"campaign", "train", "al"};

typedef struct {
    const char *path;
    int line;
    const char *section;
    bf_campaign_config *cfg;
    bf_error *err;
    int seen[64];                     /* line of each key of keys[] once given */
} parse_ctx;

__attribute__((format(printf, 3, 4))) static bf_status fail(parse_ctx *c, const char *key,
                                                            const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bf_error_set(c->err, BF_ERR_INVALID, "%s:%d: [%s] %s: %s", c->path, c->line,
                        c->section, key, msg);
}

const char *bf_workflow_name(bf_workflow w)
{
    static const char *const names[] = {"baseline", "serial", "parallel", "streaming"};
    return (unsigned)w < 4 ? names[w] : "?";
}

bf_status bf_workflow_parse(const char *name, bf_workflow *out, bf_error *err)
{
    for (int w = 0; w < 4; w++)
        if (!strcmp(name, bf_workflow_name((bf_workflow)w))) {
            *out = (bf_workflow)w;
            return BF_OK;
        }
    return bf_error_set(err, BF_ERR_INVALID,
                        "workflow '%s': expected baseline, serial, parallel or streaming", name);
}

/* ---- values ---------------------------------------------------------------------- */

static bf_status get_long(parse_ctx *c, const char *key, const char *v, long lo, long hi,
                          long *out)
{
    if (bf_parse_long(v, out) != 0)
        return fail(c, key, "'%s' is not a whole number", v);
    if (*out < lo || *out > hi)
        return fail(c, key, "%ld must be in %ld..%ld", *out, lo, hi);
    return BF_OK;
}

static bf_status get_double(parse_ctx *c, const char *key, const char *v, double lo, double hi,
                            double *out)
{
    if (bf_parse_double(v, out) != 0)
        return fail(c, key, "'%s' is not a number", v);
    if (!(*out >= lo && *out <= hi))
        return fail(c, key, "%g must be in [%g, %g]", *out, lo, hi);
    return BF_OK;
}

static int class_by_name(const bf_campaign_config *cfg, const char *name, size_t len)
{
    for (int k = 0; k < cfg->sample.n_classes; k++)
        if (strlen(cfg->sample.classes[k].name) == len &&
            !strncmp(cfg->sample.classes[k].name, name, len))
            return k;
    return -1;
}

static int param_by_name(const char *name)
{
    for (int p = 0; p < BF_N_CELL_PARAMS; p++)
        if (!strcmp(bf_cell_param_names[p], name))
            return p;
    return -1;
}

/* std.CLASS.PARAM = value and prior.CLASS = value */
static bf_status al_class_key(parse_ctx *c, const char *key, const char *v)
{
    bf_campaign_config *cfg = c->cfg;
    int is_std = !strncmp(key, "std.", 4);
    const char *name = key + (is_std ? 4 : 6);
    const char *dot = is_std ? strchr(name, '.') : name + strlen(name);
    int k = dot ? class_by_name(cfg, name, (size_t)(dot - name)) : -1;
    if (k < 0)
        return fail(c, key, "no class '%.*s' in this config", dot ? (int)(dot - name) : 0, name);
    if (!is_std)
        return get_double(c, key, v, 0, 1e30, &cfg->policy.prior[k]);
    int p = param_by_name(dot + 1);
    if (p < 0 || cfg->sample.classes[k].rule[p].kind != BF_PARAM_FREE)
        return fail(c, key, "'%s' is not a free parameter of class %s", dot + 1,
                    cfg->sample.classes[k].name);
    return get_double(c, key, v, 0, 1e6, &cfg->policy.std[k][p]);
}

static const char *const keys[] = {
    "campaign.workflow", "campaign.phases", "campaign.val", "campaign.test",
    "campaign.study_per_class", "campaign.new_per_phase", "campaign.stream_fraction",
    "campaign.sim_threads", "campaign.train_threads", "train.epochs", "train.batch",
    "train.lr", "train.patience", "train.hidden", "train.clip", "al.policy", "al.mix_reg",
    "al.mix_cls", "al.tau", "campaign.sim_ranks"};
#define N_KEYS ((int)(sizeof keys / sizeof keys[0]))

static bf_status set_key(parse_ctx *c, const char *key, const char *v)
{
    bf_campaign_config *cfg = c->cfg;
    char full[96];
    snprintf(full, sizeof full, "%s.%s", c->section, key);
    int id = -1;
    for (int i = 0; i < N_KEYS; i++)
        if (!strcmp(keys[i], full))
            id = i;
    if (id < 0 && !strcmp(c->section, "al") &&
        (!strncmp(key, "std.", 4) || !strncmp(key, "prior.", 6)))
        return al_class_key(c, key, v);
    if (id < 0)
        return fail(c, key, "unknown key");
    if (c->seen[id])
        return fail(c, key, "given twice (first on line %d)", c->seen[id]);
    c->seen[id] = c->line;
    long n = 0;
    bf_status st = BF_OK;
    bf_error e = {0};
    switch (id) {
    case 0:
        st = bf_workflow_parse(v, &cfg->workflow, &e);
        if (st != BF_OK)
            return fail(c, key, "%s", e.msg);
        return BF_OK;
    case 1: st = get_long(c, key, v, 1, BF_MAX_PHASES, &n), cfg->phases = (int)n; break;
    case 2: return get_long(c, key, v, 1, 1L << 30, &cfg->val);
    case 3: return get_long(c, key, v, 1, 1L << 30, &cfg->test);
    case 4: return get_long(c, key, v, 1, 1L << 30, &cfg->study_per_class);
    case 5: return get_long(c, key, v, 1, 1L << 30, &cfg->new_per_phase);
    case 6: return get_double(c, key, v, 0, 1, &cfg->stream_fraction);
    case 7: st = get_long(c, key, v, 0, 4096, &n), cfg->sim_threads = (int)n; break;
    case 8: st = get_long(c, key, v, 0, 4096, &n), cfg->train_threads = (int)n; break;
    case 9: {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", v);
        cfg->n_epochs_given = 0;
        for (char *save = NULL, *t = strtok_r(buf, " \t,", &save); t;
             t = strtok_r(NULL, " \t,", &save)) {
            if (cfg->n_epochs_given == BF_MAX_PHASES)
                return fail(c, key, "more than %d values", BF_MAX_PHASES);
            st = get_long(c, key, t, 1, 1000000, &n);
            if (st != BF_OK)
                return st;
            cfg->epochs[cfg->n_epochs_given++] = (int)n;
        }
        if (!cfg->n_epochs_given)
            return fail(c, key, "empty");
        return BF_OK;
    }
    case 10: st = get_long(c, key, v, 1, 65536, &n), cfg->batch = (int)n; break;
    case 11: return get_double(c, key, v, 1e-12, 10, &cfg->lr);
    case 12: st = get_long(c, key, v, 0, 1000000, &n), cfg->patience = (int)n; break;
    case 13: st = get_long(c, key, v, 1, 65536, &n), cfg->hidden = (int)n; break;
    case 14: return get_double(c, key, v, 1e-12, 1e30, &cfg->clip);
    case 15: {
        bf_al_kind kind;
        if (bf_al_kind_parse(v, &kind, &e) != BF_OK)
            return fail(c, key, "%s", e.msg);
        cfg->policy.kind = kind;
        return BF_OK;
    }
    case 16: return get_double(c, key, v, 0, 1, &cfg->policy.mix_reg);
    case 17: return get_double(c, key, v, 0, 1, &cfg->policy.mix_cls);
    case 18: return get_double(c, key, v, 1e-6, 1e6, &cfg->policy.tau);
    case 19: st = get_long(c, key, v, 1, 1 << 20, &n), cfg->sim_ranks = (int)n; break;
    }
    return st;
}

/* ---- the two parts ------------------------------------------------------------------- */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

/* Cuts a comment: ';' or '#' at the line start or after a blank. */
static void cut_comment(char *s)
{
    for (char *p = s; *p; p++)
        if ((*p == ';' || *p == '#') && (p == s || isspace((unsigned char)p[-1]))) {
            *p = 0;
            return;
        }
}

static int own_section(const char *name)
{
    for (size_t i = 0; i < sizeof own_sections / sizeof own_sections[0]; i++)
        if (!strcmp(name, own_sections[i]))
            return 1;
    return 0;
}

/* Copies each line of text into sample_part or flow_part by its section; the
 * other part gets an empty line, so both keep every line's number. */
static void split_text(const char *text, char *sample_part, char *flow_part)
{
    int own = 0;
    for (const char *s = text; *s;) {
        size_t len = strcspn(s, "\n");
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(len < 511 ? len : 511), s);
        char *t = trim(line), *end = strchr(t, ']');
        if (*t == '[' && end) {
            *end = 0;
            own = own_section(trim(t + 1));
        }
        char **dst = own ? &flow_part : &sample_part;
        memcpy(*dst, s, len);
        *dst += len;
        s += len;
        if (*s == '\n') {
            *sample_part++ = '\n';
            *flow_part++ = '\n';
            s++;
        }
    }
    *sample_part = *flow_part = 0;
}

static bf_status parse_flow_part(parse_ctx *c, char *text)
{
    c->section = "";
    int line = 0;
    for (char *save = NULL, *ln = text; ln; ln = save) {
        save = strchr(ln, '\n');
        if (save)
            *save++ = 0;
        line++;
        cut_comment(ln);
        char *t = trim(ln);
        if (!*t)
            continue;
        c->line = line;
        if (*t == '[') {
            char *end = strchr(t, ']');
            if (!end)
                return bf_error_set(c->err, BF_ERR_PARSE, "%s:%d: unterminated section header",
                                    c->path, line);
            *end = 0;
            t = trim(t + 1);
            c->section = !strcmp(t, "campaign") ? "campaign" : !strcmp(t, "train") ? "train"
                                                                                    : "al";
            continue;
        }
        char *eq = strchr(t, '=');
        if (!eq)
            return bf_error_set(c->err, BF_ERR_PARSE, "%s:%d: [%s] expected 'key = value'",
                                c->path, line, c->section);
        *eq = 0;
        char *key = trim(t), *value = trim(eq + 1);
        bf_status st = set_key(c, key, value);
        if (st != BF_OK)
            return st;
    }
    return BF_OK;
}

static void defaults(bf_campaign_config *cfg)
{
    cfg->workflow = BF_FLOW_SERIAL;
    cfg->phases = 4;
    cfg->stream_fraction = 0.6; /* seed 001 Table II: 8100 of 13500 */
    cfg->sim_threads = 1;
    cfg->train_threads = 1;
    cfg->batch = 512;
    cfg->lr = 5e-4;
    cfg->clip = 50;
    cfg->patience = 0;
}

/* Everything the run needs exists and fits, checked before any work. */
static bf_status finish(parse_ctx *c)
{
    bf_campaign_config *cfg = c->cfg;
    c->line = 0;
    c->section = "campaign";
    /* seed 001's workflows draw random cells and use AL; seed 000's split a grid
     * into bias-free phases (bf_sample_grid) and train on each in turn */
    int grid = cfg->sample.sampler == BF_SAMPLER_GRID;
    if (cfg->sample.sampler == BF_SAMPLER_PHASED)
        return bf_error_set(c->err, BF_ERR_INVALID, "%s: [run] sampler: campaigns use random "
                            "(AL workflows) or grid (seed 000's phased workflows); the phases "
                            "come from [campaign] phases", c->path);
    if (cfg->workflow == BF_FLOW_PARALLEL && !grid)
        return bf_error_set(c->err, BF_ERR_INVALID, "%s: [run] sampler: the parallel workflow "
                            "partitions a grid (sampler = grid, with a_step ...)", c->path);
    if (cfg->workflow == BF_FLOW_STREAMING && grid)
        return bf_error_set(c->err, BF_ERR_INVALID, "%s: [run] sampler: the streaming workflow "
                            "draws random cells (sampler = random, with count)", c->path);
    const char *need[] = {"val", "test", "study_per_class", "new_per_phase"};
    long vals[] = {cfg->val, cfg->test, cfg->study_per_class, cfg->new_per_phase};
    for (int i = 0; i < 4; i++) {
        int only_al = i >= 2;
        int al = cfg->workflow != BF_FLOW_BASELINE && cfg->phases > 1 &&
                 cfg->sample.sampler == BF_SAMPLER_RANDOM;
        if (vals[i] == 0 && !(only_al && !al))
            return bf_error_set(c->err, BF_ERR_INVALID, "%s: [campaign] %s: missing", c->path,
                                need[i]);
    }
    if (access(cfg->sample.instprm_path, R_OK) != 0)
        return bf_error_set(c->err, BF_ERR_IO, "%s: [instrument] instprm: cannot read %s",
                            c->path, cfg->sample.instprm_path);
    for (int k = 0; k < cfg->sample.n_classes; k++)
        if (access(cfg->sample.classes[k].cif_path, R_OK) != 0)
            return bf_error_set(c->err, BF_ERR_IO, "%s: [class.%s] cif: cannot read %s", c->path,
                                cfg->sample.classes[k].name, cfg->sample.classes[k].cif_path);
    if (cfg->n_epochs_given > 1 && cfg->n_epochs_given != cfg->phases)
        return bf_error_set(c->err, BF_ERR_INVALID,
                            "%s:%d: [train] epochs: %d values for %d phases (give one per phase, "
                            "or one)", c->path, c->seen[9], cfg->n_epochs_given, cfg->phases);
    if (!cfg->n_epochs_given)
        cfg->epochs[cfg->n_epochs_given++] = 30;
    if (cfg->policy.mix_reg + cfg->policy.mix_cls <= 0)
        return bf_error_set(c->err, BF_ERR_INVALID, "%s: [al] mix_reg + mix_cls must be > 0",
                            c->path);
    return BF_OK;
}

bf_status bf_campaign_config_parse(const char *text, const char *path, bf_campaign_config *out,
                                   bf_error *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    defaults(out);
    size_t len = strlen(text);
    /* the text is the campaign's record (config.ini) and --resume compares it whole */
    if (len >= sizeof out->sample.config_text)
        return bf_error_set(err, BF_ERR_INVALID, "%s: %zu bytes; a campaign config may have at "
                            "most %zu", path, len, sizeof out->sample.config_text - 1);
    char *sample_part = calloc(1, len + 2), *flow_part = calloc(1, len + 2);
    bf_status st = sample_part && flow_part
                       ? BF_OK
                       : bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", path);
    if (st == BF_OK) {
        split_text(text, sample_part, flow_part);
        st = bf_sample_config_parse(sample_part, path, &out->sample, err);
    }
    if (st == BF_OK) {
        bf_al_policy_defaults(&out->policy, BF_AL_SEED_MIX, out->sample.classes,
                              out->sample.n_classes);
        parse_ctx c = {.path = path, .cfg = out, .err = err};
        st = parse_flow_part(&c, flow_part);
        if (st == BF_OK)
            st = finish(&c);
    }
    if (st == BF_OK)
        snprintf(out->sample.config_text, sizeof out->sample.config_text, "%s", text);
    free(sample_part);
    free(flow_part);
    return st;
}

bf_status bf_campaign_config_read(const char *path, bf_campaign_config *out, bf_error *err)
{
    char *text = NULL;
    bf_status st = bf_read_file(path, &text, NULL, err);
    if (st == BF_OK)
        st = bf_campaign_config_parse(text, path, out, err);
    free(text);
    return st;
}
