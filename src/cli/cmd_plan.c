/* cli/cmd_plan.c — `braggflow plan`: seed 002's cost model (Eqs. 4-5; serve.h,
 * docs/serve.md §Cost model): the conventional analysis in a data centre against a
 * surrogate trained there on a labelled fraction and run at the edge, and the number
 * of items beyond which the surrogate pays off. Inputs are the paper's example unless
 * measured on this machine (--measure DIR: DIR/timings.ini) or given as options. */
#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "braggflow/serve.h"
#include "cli/cli.h"

enum { OPT_PL_ITEMS = 4200, OPT_PL_FRACTION, OPT_PL_ITEM_BYTES, OPT_PL_LABEL_BYTES,
       OPT_PL_MODEL_BYTES, OPT_PL_BANDWIDTH, OPT_PL_ANALYSIS, OPT_PL_INFERENCE, OPT_PL_TRAIN,
       OPT_PL_MEASURE, OPT_PL_JSON, OPT_PL_HELP };

static const char *usage =
    "usage: braggflow plan [--items N] [--labelled-fraction P] [--item-bytes B]\n"
    "                      [--label-bytes B] [--model-bytes B] [--bandwidth BYTES_PER_S]\n"
    "                      [--analysis-us A] [--inference-us E] [--train-s T]\n"
    "                      [--measure DIR] [--json]\n\n"
    "Seed 002's cost model (Eqs. 1-5): processing N items with the conventional\n"
    "analysis in a data centre costs\n"
    "  f_c  = N (t_item + A + t_label)\n"
    "and with a surrogate trained there on a fraction p, shipped back and run at the\n"
    "edge on the rest\n"
    "  f_ml = p N (t_item + A + t_label) + T + t_model + (1 - p) N E\n"
    "where t_x = size_x / bandwidth. Prints every input with its unit and source, the\n"
    "transfer costs, f_c and f_ml at N and per item, the break-even N and a verdict.\n"
    "Every input defaults to the paper's example (BraggNN, seed 002 Sec. 4.2).\n"
    "--measure DIR takes A, E, T and the item and model sizes from DIR/timings.ini\n"
    "(written by scripts/edge-demo.sh; docs/serve.md); options override both.\n\n"
    "options:\n"
    "  --items N                 items to process (default 1e7)\n"
    "  --labelled-fraction P     share labelled by the conventional analysis (0.1)\n"
    "  --item-bytes B            one item on the wire (242: 11 x 11 x 16 bit)\n"
    "  --label-bytes B           one label on the wire (8)\n"
    "  --model-bytes B           the trained model (3e6)\n"
    "  --bandwidth BYTES_PER_S   edge <-> data centre (1e9)\n"
    "  --analysis-us A           conventional analysis, wall us per item (2.44)\n"
    "  --inference-us E          surrogate inference, wall us per item (0.35)\n"
    "  --train-s T               (re)training, s (19)\n"
    "  --measure DIR             measured inputs from DIR/timings.ini\n"
    "  --json                    one JSON object instead of the table\n\n"
    "example:\n"
    "  braggflow plan\n"
    "  braggflow plan --items 2e6 --train-s 1102      # BraggNN trained on one V100\n"
    "  braggflow plan --measure edge-run --json\n";

/* One row per input, in bf_cost_inputs' order. */
static const struct {
    unsigned bit;
    const char *field, *option, *symbol, *what, *unit;
    size_t offset;
    const char *measured_as;         /* the timings.ini keys it is measured from */
    int timed;                       /* a wall time: it depends on the threads used */
} rows[] = {
#define OFF(f) offsetof(bf_cost_inputs, f)
    {BF_COST_N_ITEMS, "n_items", "--items", "N", "items to process", "items", OFF(n_items),
     NULL, 0},
    {BF_COST_LABELLED_FRACTION, "labelled_fraction", "--labelled-fraction", "p",
     "labelled fraction", "", OFF(labelled_fraction), NULL, 0},
    {BF_COST_ITEM_BYTES, "item_bytes", "--item-bytes", "", "item on the wire", "bytes",
     OFF(item_bytes), "item_bytes", 0},
    {BF_COST_LABEL_BYTES, "label_bytes", "--label-bytes", "", "label on the wire", "bytes",
     OFF(label_bytes), NULL, 0},
    {BF_COST_MODEL_BYTES, "model_bytes", "--model-bytes", "", "model on the wire", "bytes",
     OFF(model_bytes), "model_bytes", 0},
    {BF_COST_BANDWIDTH, "bandwidth_bytes_per_s", "--bandwidth", "", "bandwidth", "bytes/s",
     OFF(bandwidth_bytes_per_s), NULL, 0},
    {BF_COST_ANALYSIS, "analysis_us_per_item", "--analysis-us", "A", "conventional analysis",
     "us/item", OFF(analysis_us_per_item), "label_s / label_items", 1},
    {BF_COST_INFERENCE, "inference_us_per_item", "--inference-us", "E", "surrogate inference",
     "us/item", OFF(inference_us_per_item), "inference_s / inference_items", 1},
    {BF_COST_TRAIN, "train_s", "--train-s", "T", "training", "s", OFF(train_s), "train_s", 1},
#undef OFF
};
#define N_ROWS (sizeof rows / sizeof rows[0])
_Static_assert(OPT_PL_TRAIN - OPT_PL_ITEMS + 1 == N_ROWS, "one option per row, in order");

static double *field_of(bf_cost_inputs *in, size_t row)
{
    return (double *)(void *)((char *)in + rows[row].offset);
}

/* %.6g without the exponent's '+' and leading zeros: 1e7, 9.02327e6, 2.5e-5. */
static const char *num(double x, char buf[32])
{
    char raw[32];
    snprintf(raw, sizeof raw, "%.6g", x);
    char *e = strchr(raw, 'e');
    if (!e) {
        snprintf(buf, 32, "%s", raw);
        return buf;
    }
    *e = 0;
    const char *exp = e + 1;
    int neg = *exp == '-';
    if (*exp == '+' || *exp == '-')
        exp++;
    while (exp[0] == '0' && exp[1])
        exp++;
    snprintf(buf, 32, "%se%s%s", raw, neg ? "-" : "", exp);
    return buf;
}

/* A count in words: "9.02 million". */
static const char *count_words(double n, char buf[48])
{
    char b[32];
    if (n >= 1e12 || n < 1e3)
        snprintf(buf, 48, "%s", num(n, b));
    else if (n >= 1e9)
        snprintf(buf, 48, "%.3g billion", n / 1e9);
    else if (n >= 1e6)
        snprintf(buf, 48, "%.3g million", n / 1e6);
    else
        snprintf(buf, 48, "%.3g thousand", n / 1e3);
    return buf;
}

typedef struct {
    bf_cost_inputs in;
    unsigned measured, option;       /* BF_COST_* bits */
    const char *measure_dir;
    bf_edge_timings timings;
    bf_cost_result r;
    int rounded;                     /* the paper's own 0.24 us per patch applies */
    bf_cost_result paper;            /* evaluated with it */
} plan;

/* DIR/timings.ini as bf_edge_timings_read names it */
static const char *timings_path(const plan *pl, char *out, size_t outsz)
{
    size_t n = strlen(pl->measure_dir);
    snprintf(out, outsz, "%s%stimings.ini", pl->measure_dir,
             n && pl->measure_dir[n - 1] == '/' ? "" : "/");
    return out;
}

static void source_of(const plan *pl, size_t row, char *out, size_t outsz)
{
    if (pl->option & rows[row].bit)
        snprintf(out, outsz, "option %s", rows[row].option);
    else if (pl->measured & rows[row].bit) {
        char threads[48] = "";
        if (rows[row].timed && (pl->timings.present & BF_TIMING_THREADS))
            snprintf(threads, sizeof threads, ", %.0f threads", pl->timings.threads);
        char path[4300];
        snprintf(out, outsz, "measured: %s (%s%s)", timings_path(pl, path, sizeof path),
                 rows[row].measured_as, threads);
    } else
        snprintf(out, outsz, "paper default");
}

static const char *source_word(const plan *pl, size_t row)
{
    return (pl->option & rows[row].bit) ? "option"
           : (pl->measured & rows[row].bit) ? "measured"
                                             : "paper";
}

static void verdict(const plan *pl, char *out, size_t outsz)
{
    const bf_cost_result *r = &pl->r;
    char a[32], b[32], n[32], w[48];
    if (isinf(r->break_even_items)) {
        snprintf(out, outsz, "the surrogate never pays off: per item it costs %s us against "
                 "the conventional %s us, and training and the model transfer come on top",
                 num(r->fml_per_item_us, a), num(r->fc_per_item_us, b));
        return;
    }
    double saved_s = (r->fc_us - r->fml_us) / 1e6;
    int len;
    if (r->break_even_items == 0)
        len = snprintf(out, outsz, "the surrogate pays off from the first item (no fixed cost)");
    else
        len = snprintf(out, outsz, "the surrogate pays off beyond %s items",
                       count_words(r->break_even_items, w));
    if (len < 0 || (size_t)len >= outsz)
        return;
    num(pl->in.n_items, n);
    if (saved_s > 0)
        snprintf(out + len, outsz - (size_t)len, "; at N = %s it saves %s s (%.3g %% of f_c)", n,
                 num(saved_s, a), 100 * (r->fc_us - r->fml_us) / r->fc_us);
    else if (saved_s < 0)
        snprintf(out + len, outsz - (size_t)len, "; at N = %s it costs %s s more than the "
                 "conventional analysis", n, num(-saved_s, a));
    else
        snprintf(out + len, outsz - (size_t)len, "; at N = %s both cost the same", n);
}

static void print_text(const plan *pl)
{
    const bf_cost_result *r = &pl->r;
    char a[32], b[32], c[32], d[32], w[48], src[4600];
    printf("seed 002's cost model (Eqs. 4-5): conventional analysis in a data centre (f_c) "
           "against a surrogate (f_ml)\n\n");
    printf("  %-2s %-24s %12s  %-8s %s\n", "", "input", "value", "unit", "source");
    for (size_t i = 0; i < N_ROWS; i++) {
        source_of(pl, i, src, sizeof src);
        printf("  %-2s %-24s %12s  %-8s %s\n", rows[i].symbol, rows[i].what,
               num(*field_of((bf_cost_inputs *)&pl->in, i), a), rows[i].unit, src);
    }
    printf("\ntransfer (size / bandwidth): item %s us, label %s us, model %s us\n",
           num(r->transfer_item_us, a), num(r->transfer_label_us, b),
           num(r->transfer_model_us, c));
    printf("f_c  = N (t_item + A + t_label)                  = %s N us\n",
           num(r->fc_per_item_us, a));
    printf("f_ml = p N (t_item + A + t_label) + (1 - p) N E\n"
           "       + T + t_model                             = %s N + %s us\n",
           num(r->fml_per_item_us, a), num(r->fml_fixed_us, b));
    printf("at N = %s: f_c = %s s, f_ml = %s s\n", num(pl->in.n_items, a), num(r->fc_us / 1e6, b),
           num(r->fml_us / 1e6, c));
    if (isinf(r->break_even_items))
        printf("break-even: none (f_ml per item %s us >= f_c per item %s us)\n",
               num(r->fml_per_item_us, a), num(r->fc_per_item_us, b));
    else
        printf("break-even: N = %s / (%s - %s) = %s items (%s)\n", num(r->fml_fixed_us, a),
               num(r->fc_per_item_us, b), num(r->fml_per_item_us, c),
               num(r->break_even_items, d), count_words(r->break_even_items, w));
    if (pl->rounded) {
        printf("(the paper rounds 242 bytes / 1 GB/s = 0.242 us to 0.24 us: f_c = %s N, "
               "f_ml = %s N + %s us, break-even %s)\n",
               num(pl->paper.fc_per_item_us, a), num(pl->paper.fml_per_item_us, b),
               num(pl->paper.fml_fixed_us, c),
               isinf(pl->paper.break_even_items) ? "none"
                                                 : count_words(pl->paper.break_even_items, w));
    }
    char v[512];
    verdict(pl, v, sizeof v);
    printf("\n%s\n", v);
}

static void print_json(const plan *pl)
{
    const bf_cost_result *r = &pl->r;
    char q[8800], path[4300];
    printf("{\"model\":\"seed 002 Eqs. 4-5\",\"inputs\":{");
    for (size_t i = 0; i < N_ROWS; i++)
        printf("%s\"%s\":{\"value\":%.12g,\"unit\":\"%s\",\"source\":\"%s\"}", i ? "," : "",
               rows[i].field, *field_of((bf_cost_inputs *)&pl->in, i), rows[i].unit,
               source_word(pl, i));
    printf("},\"measured_from\":");
    if (pl->measure_dir)
        printf("%s", bf_json_quote(timings_path(pl, path, sizeof path), q, sizeof q));
    else
        printf("null");
    printf(",\"measured_threads\":");
    if (pl->measure_dir && (pl->timings.present & BF_TIMING_THREADS))
        printf("%.0f", pl->timings.threads);
    else
        printf("null");
    printf(",\"transfer_item_us\":%.12g,\"transfer_label_us\":%.12g,\"transfer_model_us\":%.12g"
           ",\"fc_per_item_us\":%.12g,\"fml_per_item_us\":%.12g,\"fml_fixed_us\":%.12g"
           ",\"fc_us\":%.12g,\"fml_us\":%.12g,\"saved_us\":%.12g,\"break_even_items\":",
           r->transfer_item_us, r->transfer_label_us, r->transfer_model_us, r->fc_per_item_us,
           r->fml_per_item_us, r->fml_fixed_us, r->fc_us, r->fml_us, r->fc_us - r->fml_us);
    if (isinf(r->break_even_items))
        printf("null"); /* never: JSON has no infinity */
    else
        printf("%.12g", r->break_even_items);
    printf(",\"pays_off\":%s", !isinf(r->break_even_items) && r->fml_us < r->fc_us ? "true"
                                                                                  : "false");
    printf(",\"paper_rounded\":");
    if (pl->rounded) {
        printf("{\"transfer_item_us\":%.12g,\"fc_per_item_us\":%.12g,\"fml_per_item_us\":%.12g"
               ",\"fml_fixed_us\":%.12g,\"break_even_items\":",
               pl->paper.transfer_item_us, pl->paper.fc_per_item_us,
               pl->paper.fml_per_item_us, pl->paper.fml_fixed_us);
        if (isinf(pl->paper.break_even_items))
            printf("null}");
        else
            printf("%.12g}", pl->paper.break_even_items);
    } else
        printf("null");
    char v[512];
    verdict(pl, v, sizeof v);
    printf(",\"verdict\":%s}\n", bf_json_quote(v, q, sizeof q));
}

int cmd_plan(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"items", required_argument, 0, OPT_PL_ITEMS},
        {"labelled-fraction", required_argument, 0, OPT_PL_FRACTION},
        {"item-bytes", required_argument, 0, OPT_PL_ITEM_BYTES},
        {"label-bytes", required_argument, 0, OPT_PL_LABEL_BYTES},
        {"model-bytes", required_argument, 0, OPT_PL_MODEL_BYTES},
        {"bandwidth", required_argument, 0, OPT_PL_BANDWIDTH},
        {"analysis-us", required_argument, 0, OPT_PL_ANALYSIS},
        {"inference-us", required_argument, 0, OPT_PL_INFERENCE},
        {"train-s", required_argument, 0, OPT_PL_TRAIN},
        {"measure", required_argument, 0, OPT_PL_MEASURE},
        {"json", no_argument, 0, OPT_PL_JSON},
        {"help", no_argument, 0, OPT_PL_HELP},
        {0, 0, 0, 0}};
    plan pl;
    memset(&pl, 0, sizeof pl);
    bf_cost_defaults(&pl.in);
    double given[N_ROWS] = {0};
    int json = 0, opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, BF_CLI_OPTSTRING, longopts, NULL)) != -1) {
        if (opt >= OPT_PL_ITEMS && opt <= OPT_PL_TRAIN) {
            size_t row = (size_t)(opt - OPT_PL_ITEMS); /* options in the rows' order */
            if (bf_parse_double(optarg, &given[row]) != 0)
                return bf_cli_usage_error("plan", "%s: '%s' is not a number", rows[row].option,
                                          optarg);
            pl.option |= rows[row].bit;
            continue;
        }
        switch (opt) {
        case 'h':
        case OPT_PL_HELP: fputs(usage, stdout); return BF_EXIT_OK;
        case OPT_PL_MEASURE: pl.measure_dir = optarg; break;
        case OPT_PL_JSON: json = 1; break;
        default: return bf_cli_bad_option("plan", opt == ':' ? ':' : '?', argv);
        }
    }
    if (optind < argc)
        return bf_cli_usage_error("plan", "unexpected argument '%s'", argv[optind]);

    bf_error err = {0};
    if (pl.measure_dir) {
        if (bf_edge_timings_read(pl.measure_dir, &pl.timings, &err) != BF_OK)
            return bf_cli_fail(&err);
        bf_cost_from_timings(&pl.timings, &pl.in, &pl.measured);
    }
    for (size_t i = 0; i < N_ROWS; i++) /* options override measured values */
        if (pl.option & rows[i].bit)
            *field_of(&pl.in, i) = given[i];
    pl.measured &= ~pl.option;

    if (bf_cost_evaluate(&pl.in, &pl.r, &err) != BF_OK) {
        /* a bad option value is named by its option */
        for (size_t i = 0; i < N_ROWS; i++) {
            size_t n = strlen(rows[i].field);
            if ((pl.option & rows[i].bit) && strncmp(err.msg, rows[i].field, n) == 0 &&
                err.msg[n] == ':')
                return bf_cli_usage_error("plan", "%s%s", rows[i].option, err.msg + n);
        }
        return bf_cli_fail(&err);
    }
    /* Eqs. 4-5 as printed write the paper's 0.242 us patch transfer as 0.24 us: when the
     * patch and the link are the paper's, show what that rounding gives too. */
    if (pl.in.item_bytes == 242 && pl.in.bandwidth_bytes_per_s == 1e9) {
        bf_cost_inputs rounded = pl.in;
        rounded.item_bytes = 240; /* 0.24 us at 1 GB/s */
        pl.rounded = bf_cost_evaluate(&rounded, &pl.paper, &err) == BF_OK;
    }
    if (json)
        print_json(&pl);
    else
        print_text(&pl);
    return fflush(stdout) == 0 ? BF_EXIT_OK
                               : bf_cli_fail(&(bf_error){BF_ERR_IO, "stdout: write failed"});
}
