/* serve/cost_model.c — seed 002's cost model (its Eqs. 1-5, DESIGN §9; braggflow/serve.h,
 * docs/serve.md §Cost model): when does moving a labelled fraction to a data centre,
 * training a surrogate there and running it at the edge beat sending every item to the
 * conventional analysis? And DIR/timings.ini, the same inputs measured on this machine. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/data.h"
#include "braggflow/serve.h"

void bf_cost_defaults(bf_cost_inputs *in)
{
    /* Seed 002 §4.2: BraggNN on 11 x 11 patches of 16-bit pixels (242 bytes) over
     * 1 GB/s; A = 2000 core-s per 800,000 peaks on 1024 cores (2.441 us, which the
     * paper writes 2.44 and so do we); E = 280 ms per 800,000 peaks; T = 19 s (Cerebras,
     * its Table 1); a 3 MB model; 8 bytes per label; p = 10 %. N is an example size. */
    *in = (bf_cost_inputs){
        .n_items = 1e7,
        .labelled_fraction = 0.1,
        .item_bytes = 242,
        .label_bytes = 8,
        .model_bytes = 3e6,
        .bandwidth_bytes_per_s = 1e9,
        .analysis_us_per_item = 2.44,
        .inference_us_per_item = 0.35,
        .train_s = 19,
    };
}

/* finite and >= lo (or > lo when strict) */
static bf_status check(bf_error *err, const char *field, double v, double lo, int strict,
                       const char *unit)
{
    if (!isfinite(v))
        return bf_error_set(err, BF_ERR_INVALID, "%s: %g is not a finite number", field, v);
    if (strict ? !(v > lo) : !(v >= lo))
        return bf_error_set(err, BF_ERR_INVALID, "%s: %g %s must be %s %g", field, v, unit,
                            strict ? ">" : ">=", lo);
    return BF_OK;
}

bf_status bf_cost_evaluate(const bf_cost_inputs *in, bf_cost_result *out, bf_error *err)
{
    memset(out, 0, sizeof *out);
    bf_status st = BF_OK;
    if (st == BF_OK)
        st = check(err, "n_items", in->n_items, 0, 0, "items");
    if (st == BF_OK && !(in->labelled_fraction >= 0 && in->labelled_fraction <= 1))
        st = bf_error_set(err, BF_ERR_INVALID, "labelled_fraction: %g must lie in [0, 1]",
                          in->labelled_fraction);
    if (st == BF_OK)
        st = check(err, "item_bytes", in->item_bytes, 0, 0, "bytes");
    if (st == BF_OK)
        st = check(err, "label_bytes", in->label_bytes, 0, 0, "bytes");
    if (st == BF_OK)
        st = check(err, "model_bytes", in->model_bytes, 0, 0, "bytes");
    if (st == BF_OK)
        st = check(err, "bandwidth_bytes_per_s", in->bandwidth_bytes_per_s, 0, 1, "bytes/s");
    if (st == BF_OK)
        st = check(err, "analysis_us_per_item", in->analysis_us_per_item, 0, 0, "us");
    if (st == BF_OK)
        st = check(err, "inference_us_per_item", in->inference_us_per_item, 0, 0, "us");
    if (st == BF_OK)
        st = check(err, "train_s", in->train_s, 0, 0, "s");
    if (st != BF_OK)
        return st;

    const double n = in->n_items, p = in->labelled_fraction, bw = in->bandwidth_bytes_per_s;
    out->transfer_item_us = in->item_bytes / bw * 1e6;
    out->transfer_label_us = in->label_bytes / bw * 1e6;
    out->transfer_model_us = in->model_bytes / bw * 1e6;
    /* Eq. 1 / 4: every item goes to the data centre, is analysed, its result comes back */
    const double conventional_us =
        out->transfer_item_us + in->analysis_us_per_item + out->transfer_label_us;
    out->fc_per_item_us = conventional_us;
    /* Eq. 3 / 5: the labelled share p takes that path too (its labels come back with the
     * model); the surrogate estimates the other (1 - p) at the edge; training and moving
     * the model are paid once. */
    out->fml_per_item_us = p * conventional_us + (1 - p) * in->inference_us_per_item;
    out->fml_fixed_us = in->train_s * 1e6 + out->transfer_model_us;
    out->fc_us = out->fc_per_item_us * n;
    out->fml_us = out->fml_per_item_us * n + out->fml_fixed_us;
    /* f_c - f_ml = (1 - p)(conventional - E) N - fixed: written this way, p = 1 or
     * E = conventional give exactly 0 per item and so "never", not a rounding residue. */
    const double saved_per_item_us = (1 - p) * (conventional_us - in->inference_us_per_item);
    out->break_even_items = saved_per_item_us > 0 ? out->fml_fixed_us / saved_per_item_us
                                                  : INFINITY;
    const double *all[] = {&out->transfer_item_us, &out->transfer_label_us,
                           &out->transfer_model_us, &out->fc_per_item_us,
                           &out->fml_per_item_us,  &out->fml_fixed_us,
                           &out->fc_us,            &out->fml_us};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!isfinite(*all[i]))
            return bf_error_set(err, BF_ERR_RANGE,
                                "cost overflows a double (n_items %g, item_bytes %g, "
                                "bandwidth_bytes_per_s %g, analysis_us_per_item %g)",
                                n, in->item_bytes, bw, in->analysis_us_per_item);
    return BF_OK;
}

/* ---- DIR/timings.ini ------------------------------------------------------------------ */

typedef enum { K_COUNT, K_SECONDS, K_BYTES } key_kind;

static const struct {
    const char *key;
    unsigned bit;
    key_kind kind;
    size_t offset;
} keys[] = {
#define OFF(f) offsetof(bf_edge_timings, f)
    {"threads", BF_TIMING_THREADS, K_COUNT, OFF(threads)},
    {"label_items", BF_TIMING_LABEL_ITEMS, K_COUNT, OFF(label_items)},
    {"label_s", BF_TIMING_LABEL_S, K_SECONDS, OFF(label_s)},
    {"train_items", BF_TIMING_TRAIN_ITEMS, K_COUNT, OFF(train_items)},
    {"train_s", BF_TIMING_TRAIN_S, K_SECONDS, OFF(train_s)},
    {"deploy_s", BF_TIMING_DEPLOY_S, K_SECONDS, OFF(deploy_s)},
    {"inference_items", BF_TIMING_INFERENCE_ITEMS, K_COUNT, OFF(inference_items)},
    {"inference_s", BF_TIMING_INFERENCE_S, K_SECONDS, OFF(inference_s)},
    {"item_bytes", BF_TIMING_ITEM_BYTES, K_BYTES, OFF(item_bytes)},
    {"model_bytes", BF_TIMING_MODEL_BYTES, K_BYTES, OFF(model_bytes)},
    {"end_to_end_s", BF_TIMING_END_TO_END_S, K_SECONDS, OFF(end_to_end_s)},
#undef OFF
};
#define N_KEYS (sizeof keys / sizeof keys[0])

/* Bounds that keep every derived cost finite and catch a unit slip: counts up to 2^53
 * (exact in a double), a time over 1e9 s (32 years) or a size over 1e18 bytes is a typo. */
#define MAX_COUNT 9007199254740992.0
#define MAX_SECONDS 1e9
#define MAX_BYTES 1e18

typedef struct {
    bf_edge_timings *t;
    const char *name;
    int line[N_KEYS];                 /* where each key was given (0: absent) */
} timings_ctx;

static bf_status on_line(void *user, const char *section, const char *key, const char *value,
                         int line, bf_error *err)
{
    timings_ctx *c = user;
    if (!key) {
        if (strcmp(section, "edge") != 0)
            return bf_error_set(err, BF_ERR_PARSE, "%s:%d: unknown section [%s] (timings.ini "
                                "has one, [edge])", c->name, line, section);
        return BF_OK;
    }
    size_t id = 0;
    while (id < N_KEYS && strcmp(keys[id].key, key) != 0)
        id++;
    if (id == N_KEYS)
        return bf_error_set(err, BF_ERR_PARSE, "%s:%d: [edge] %s: unknown key", c->name, line,
                            key);
    if (c->line[id])
        return bf_error_set(err, BF_ERR_PARSE, "%s:%d: [edge] %s: given twice (first on "
                            "line %d)", c->name, line, key, c->line[id]);
    double v;
    if (bf_parse_double(value, &v) != 0)
        return bf_error_set(err, BF_ERR_PARSE, "%s:%d: [edge] %s: '%s' is not a number",
                            c->name, line, key, value);
    switch (keys[id].kind) {
    case K_COUNT:
        if (!(v >= 1 && v <= MAX_COUNT) || v != floor(v))
            return bf_error_set(err, BF_ERR_INVALID, "%s:%d: [edge] %s: %g is not a whole "
                                "number >= 1", c->name, line, key, v);
        break;
    case K_SECONDS:
        if (!(v >= 0 && v <= MAX_SECONDS))
            return bf_error_set(err, BF_ERR_INVALID, "%s:%d: [edge] %s: %g s must lie in "
                                "[0, %g]", c->name, line, key, v, MAX_SECONDS);
        break;
    case K_BYTES:
        if (!(v >= 0 && v <= MAX_BYTES))
            return bf_error_set(err, BF_ERR_INVALID, "%s:%d: [edge] %s: %g bytes must lie in "
                                "[0, %g]", c->name, line, key, v, MAX_BYTES);
        break;
    }
    *(double *)(void *)((char *)c->t + keys[id].offset) = v;
    c->t->present |= keys[id].bit;
    c->line[id] = line;
    return BF_OK;
}

/* A time per item needs both halves of its pair. */
static bf_status check_pair(const timings_ctx *c, unsigned time_bit, unsigned items_bit,
                            bf_error *err)
{
    unsigned have = c->t->present & (time_bit | items_bit);
    if (have == 0 || have == (time_bit | items_bit))
        return BF_OK;
    size_t given = 0, missing = 0;
    for (size_t i = 0; i < N_KEYS; i++) {
        if (keys[i].bit & have)
            given = i;
        else if (keys[i].bit & (time_bit | items_bit))
            missing = i;
    }
    return bf_error_set(err, BF_ERR_INVALID, "%s:%d: [edge] %s: given without %s (a time per "
                        "item needs both)", c->name, c->line[given], keys[given].key,
                        keys[missing].key);
}

bf_status bf_edge_timings_parse(const char *text, const char *name, bf_edge_timings *t,
                                bf_error *err)
{
    memset(t, 0, sizeof *t);
    if (!name)
        name = "(timings)";
    timings_ctx c = {.t = t, .name = name};
    bf_status st = bf_ini_parse(text, name, on_line, &c, err);
    if (st == BF_OK)
        st = check_pair(&c, BF_TIMING_LABEL_S, BF_TIMING_LABEL_ITEMS, err);
    if (st == BF_OK)
        st = check_pair(&c, BF_TIMING_INFERENCE_S, BF_TIMING_INFERENCE_ITEMS, err);
    if (st != BF_OK)
        memset(t, 0, sizeof *t);
    return st;
}

bf_status bf_edge_timings_read(const char *dir, bf_edge_timings *t, bf_error *err)
{
    memset(t, 0, sizeof *t);
    char path[4200];
    size_t n = strlen(dir);
    if (n + sizeof "/timings.ini" > sizeof path)
        return bf_error_set(err, BF_ERR_INVALID, "%.200s...: folder name too long", dir);
    snprintf(path, sizeof path, "%s%stimings.ini", dir, n && dir[n - 1] == '/' ? "" : "/");
    char *text = NULL;
    bf_status st = bf_read_file(path, &text, NULL, err);
    if (st == BF_OK)
        st = bf_edge_timings_parse(text, path, t, err);
    free(text);
    return st;
}

void bf_cost_from_timings(const bf_edge_timings *t, bf_cost_inputs *in, unsigned *measured)
{
    unsigned m = 0;
    if (t->present & BF_TIMING_LABEL_S) { /* the parser makes label_items come with it */
        in->analysis_us_per_item = t->label_s / t->label_items * 1e6;
        m |= BF_COST_ANALYSIS;
    }
    if (t->present & BF_TIMING_INFERENCE_S) {
        in->inference_us_per_item = t->inference_s / t->inference_items * 1e6;
        m |= BF_COST_INFERENCE;
    }
    if (t->present & BF_TIMING_TRAIN_S) {
        in->train_s = t->train_s;
        m |= BF_COST_TRAIN;
    }
    if (t->present & BF_TIMING_ITEM_BYTES) {
        in->item_bytes = t->item_bytes;
        m |= BF_COST_ITEM_BYTES;
    }
    if (t->present & BF_TIMING_MODEL_BYTES) {
        in->model_bytes = t->model_bytes;
        m |= BF_COST_MODEL_BYTES;
    }
    if (measured)
        *measured = m;
}

bf_status bf_cost_measure(const char *dir, bf_cost_inputs *in, unsigned *measured,
                          bf_error *err)
{
    bf_edge_timings t;
    if (measured)
        *measured = 0;
    bf_status st = bf_edge_timings_read(dir, &t, err);
    if (st == BF_OK)
        bf_cost_from_timings(&t, in, measured);
    return st;
}
