/* flow/report.c — DIR/report.html: one self-contained page (inline CSS and SVG, no
 * scripts, no external URLs, so it opens offline and can be archived with the
 * campaign) showing the summary, the task Gantt chart (seed 001 Figs. 2-3), test
 * metrics per phase (Figs. 9-10), where each AL batch sampled against the study set,
 * and example test patterns. Parts a campaign lacks (a baseline has no study set and
 * no AL batches) are replaced by a note.
 *
 * The page is built in a growable string buffer, one function per chart, and written
 * atomically at the end. It holds no timestamp: the same folder gives the same page. */
#include "braggflow/flow.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "flow/flow_internal.h"

#define MAX_CSV_COLS 32
#define MAX_SCATTER_POINTS 2000   /* per series and class: keeps the page small for big sets */
#define MAX_PATTERN_POINTS 1000   /* per polyline (min-max decimated, so peaks survive) */
#define N_EXAMPLE_PATTERNS 3
#define MAX_METRIC_ROWS 256       /* phases drawn; BF_MAX_PHASES is 32 */

/* AL batch k gets phase_colors[(k - 1) % N]; study points are grey. */
static const char *const phase_colors[] = {"#d62728", "#1f77b4", "#2ca02c", "#9467bd",
                                           "#ff7f0e", "#17becf", "#e377c2", "#8c564b"};
#define N_PHASE_COLORS (int)(sizeof phase_colors / sizeof phase_colors[0])
static const char *const study_color = "#555555";

static const char *const param_axis_label[BF_N_CELL_PARAMS] = {"a (Å)", "b (Å)", "c (Å)",
                                                               "α (°)", "β (°)", "γ (°)"};
static const char *const param_symbol[BF_N_CELL_PARAMS] = {"a", "b", "c", "α", "β", "γ"};

/* ---- the page's text: a bf_buf (core.h), checked once at the end ------------------ */

/* Text from files (names, summary, provenance) goes through here: &, <, > and " are
 * escaped, so it can neither open a tag nor end an attribute. */
static void html_esc(bf_buf *b, const char *s)
{
    while (*s) {
        size_t run = strcspn(s, "&<>\"");
        bf_buf_append(b, s, run);
        s += run;
        switch (*s) {
        case '&': bf_buf_puts(b, "&amp;"); break;
        case '<': bf_buf_puts(b, "&lt;"); break;
        case '>': bf_buf_puts(b, "&gt;"); break;
        case '"': bf_buf_puts(b, "&quot;"); break;
        default: return; /* the terminating NUL */
        }
        s++;
    }
}

static void note(bf_buf *b, const char *text)
{
    bf_buf_puts(b, "<p class=\"note\">");
    html_esc(b, text);
    bf_buf_puts(b, "</p>\n");
}

/* ---- CSV ------------------------------------------------------------------------------
 * Plain comma-separated files as braggflow writes them: a header line, then rows with
 * as many fields; no quoting. Columns are found by name, so added columns do no harm. */

typedef struct {
    char path[4200];
    char *text;                 /* the file, split in place */
    int n_cols, n_rows, header_line;
    char *head[MAX_CSV_COLS];
    char **cell;                /* [n_rows * n_cols], pointers into text */
    int *line;                  /* [n_rows]: line numbers, for messages */
} csv_table;

static void csv_free(csv_table *t)
{
    free(t->text);
    free(t->cell);
    free(t->line);
    memset(t, 0, sizeof *t);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = 0;
    return s;
}

/* Splits line in place at commas; stores at most max fields, returns how many there are. */
static int split_fields(char *line, char **f, int max)
{
    int n = 0;
    for (char *p = line;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = 0;
        if (n < max)
            f[n] = trim(p);
        n++;
        if (!comma)
            return n;
        p = comma + 1;
    }
}

static bf_status csv_read(const char *path, csv_table *t, bf_error *err)
{
    memset(t, 0, sizeof *t);
    snprintf(t->path, sizeof t->path, "%s", path);
    bf_status st = bf_read_file(path, &t->text, NULL, err);
    if (st != BF_OK)
        return st;
    size_t lines = 1;
    for (const char *p = t->text; *p; p++)
        lines += *p == '\n';
    char *f[MAX_CSV_COLS + 1];
    int lineno = 0;
    for (char *p = t->text; *p && st == BF_OK;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        char *line = trim(p);
        p = nl ? nl + 1 : p + strlen(p);
        lineno++;
        if (!*line)
            continue;
        int n = split_fields(line, f, MAX_CSV_COLS + 1);
        if (t->n_cols == 0) {
            if (n > MAX_CSV_COLS)
                return bf_error_set(err, BF_ERR_PARSE, "%s:%d: more than %d columns", path,
                                    lineno, MAX_CSV_COLS);
            memcpy(t->head, f, (size_t)n * sizeof *f);
            t->n_cols = n;
            t->header_line = lineno;
            t->cell = malloc(lines * (size_t)n * sizeof *t->cell);
            t->line = malloc(lines * sizeof *t->line);
            if (!t->cell || !t->line)
                st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", path);
            continue;
        }
        if (n != t->n_cols)
            return bf_error_set(err, BF_ERR_PARSE, "%s:%d: %d field(s), the header has %d", path,
                                lineno, n, t->n_cols);
        memcpy(t->cell + (size_t)t->n_rows * (size_t)n, f, (size_t)n * sizeof *f);
        t->line[t->n_rows++] = lineno;
    }
    if (st == BF_OK && t->n_cols == 0)
        st = bf_error_set(err, BF_ERR_PARSE, "%s:1: empty file, expected a header line", path);
    return st;
}

static int csv_col(const csv_table *t, const char *name)
{
    for (int c = 0; c < t->n_cols; c++)
        if (strcmp(t->head[c], name) == 0)
            return c;
    return -1;
}

/* Finds the columns in names[0..n) (NULL-terminated); all are required. */
static bf_status csv_need(const csv_table *t, const char *const *names, int *cols, bf_error *err)
{
    for (int i = 0; names[i]; i++) {
        cols[i] = csv_col(t, names[i]);
        if (cols[i] < 0)
            return bf_error_set(err, BF_ERR_PARSE, "%s:%d: no '%s' column", t->path,
                                t->header_line, names[i]);
    }
    return BF_OK;
}

static const char *csv_cell(const csv_table *t, int row, int col)
{
    return t->cell[(size_t)row * (size_t)t->n_cols + (size_t)col];
}

/* The number in (row, col); col < 0 (an optional column that is absent) gives NaN. */
static bf_status csv_number(const csv_table *t, int row, int col, double *out, bf_error *err)
{
    *out = NAN;
    if (col < 0)
        return BF_OK;
    const char *s = csv_cell(t, row, col);
    if (bf_parse_double(s, out) != 0)
        return bf_error_set(err, BF_ERR_PARSE, "%s:%d: %s: '%s' is not a number", t->path,
                            t->line[row], t->head[col], s);
    return BF_OK;
}

static bf_status csv_integer(const csv_table *t, int row, int col, long *out, bf_error *err)
{
    *out = -1;
    if (col < 0)
        return BF_OK;
    const char *s = csv_cell(t, row, col);
    if (bf_parse_long(s, out) != 0)
        return bf_error_set(err, BF_ERR_PARSE, "%s:%d: %s: '%s' is not an integer", t->path,
                            t->line[row], t->head[col], s);
    return BF_OK;
}

/* ---- the campaign's files ---------------------------------------------------------- */

typedef struct {
    char name[64];
    int phase;
    double start_s, end_s;
    long samples;               /* -1 when the column is absent */
} task_row;

typedef struct {
    int phase;
    long n_train, test_n;
    double class_loss, accuracy, mse, mse_baseline;   /* NaN when a column is absent */
} metric_row;

typedef struct {
    int phase;
    long n;
    double *cells;              /* [n * 6] */
    int32_t *labels;
} al_batch;

typedef struct {
    const char *dir;
    task_row *tasks;
    int n_tasks;
    metric_row *metrics;
    int n_metrics;
    al_batch al[BF_MAX_PHASES];
    int n_al;
    bf_dataset study, test;
    int have_study, have_test;
    char *summary, *provenance, *config;   /* NULL when absent */
} report;

static void report_free(report *r)
{
    free(r->tasks);
    free(r->metrics);
    for (int k = 0; k < r->n_al; k++) {
        free(r->al[k].cells);
        free(r->al[k].labels);
    }
    bf_dataset_free(&r->study);
    bf_dataset_free(&r->test);
    free(r->summary);
    free(r->provenance);
    free(r->config);
}

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bf_status read_timeline(report *r, bf_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/timeline.csv", r->dir);
    static const char *const need[] = {"task", "phase", "start_s", "end_s", NULL};
    int col[4];
    csv_table t;
    bf_status st = csv_read(path, &t, err);
    if (st == BF_OK)
        st = csv_need(&t, need, col, err);
    int samples = csv_col(&t, "samples");
    if (st == BF_OK && t.n_rows > 0 && !(r->tasks = calloc((size_t)t.n_rows, sizeof *r->tasks)))
        st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; st == BF_OK && i < t.n_rows; i++) {
        task_row *k = &r->tasks[i];
        const char *name = csv_cell(&t, i, col[0]);
        long phase = 0; /* stays 0 when the row fails before its phase is read */
        if (!*name || strlen(name) >= sizeof k->name)
            st = bf_error_set(err, BF_ERR_PARSE, "%s:%d: task: '%s' is not a task name", path,
                              t.line[i], name);
        snprintf(k->name, sizeof k->name, "%s", name);
        if (st == BF_OK)
            st = csv_integer(&t, i, col[1], &phase, err);
        if (st == BF_OK && (phase < 0 || phase >= BF_MAX_PHASES))
            st = bf_error_set(err, BF_ERR_PARSE, "%s:%d: phase: %ld is out of range", path,
                              t.line[i], phase);
        k->phase = (int)phase;
        if (st == BF_OK)
            st = csv_number(&t, i, col[2], &k->start_s, err);
        if (st == BF_OK)
            st = csv_number(&t, i, col[3], &k->end_s, err);
        if (st == BF_OK && !(isfinite(k->start_s) && isfinite(k->end_s) && k->end_s >= k->start_s))
            st = bf_error_set(err, BF_ERR_PARSE, "%s:%d: end_s %g is not at or after start_s %g",
                              path, t.line[i], k->end_s, k->start_s);
        if (st == BF_OK)
            st = csv_integer(&t, i, samples, &k->samples, err);
        r->n_tasks = i + 1;
    }
    csv_free(&t);
    return st;
}

static bf_status read_metrics(report *r, bf_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.csv", r->dir);
    static const char *const need[] = {"phase", "n_train", "test_class_loss", "test_mse", NULL};
    int col[4];
    csv_table t;
    bf_status st = csv_read(path, &t, err);
    if (st == BF_OK)
        st = csv_need(&t, need, col, err);
    int acc = csv_col(&t, "test_accuracy"), base = csv_col(&t, "test_mse_baseline");
    int test_n = csv_col(&t, "test_n");
    if (st == BF_OK && t.n_rows > 0 &&
        !(r->metrics = calloc((size_t)t.n_rows, sizeof *r->metrics)))
        st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; st == BF_OK && i < t.n_rows; i++) {
        metric_row *m = &r->metrics[i];
        long phase = 0;
        st = csv_integer(&t, i, col[0], &phase, err);
        m->phase = (int)phase;
        if (st == BF_OK)
            st = csv_integer(&t, i, col[1], &m->n_train, err);
        if (st == BF_OK)
            st = csv_number(&t, i, col[2], &m->class_loss, err);
        if (st == BF_OK)
            st = csv_number(&t, i, col[3], &m->mse, err);
        if (st == BF_OK)
            st = csv_number(&t, i, acc, &m->accuracy, err);
        if (st == BF_OK)
            st = csv_number(&t, i, base, &m->mse_baseline, err);
        if (st == BF_OK)
            st = csv_integer(&t, i, test_n, &m->test_n, err);
        r->n_metrics = i + 1;
    }
    csv_free(&t);
    return st;
}

/* data/al-K.csv for every phase K that has one (label,a,b,c,alpha,beta,gamma). */
static bf_status read_al_batches(report *r, bf_error *err)
{
    static const char *const need[] = {"label", "a", "b", "c", "alpha", "beta", "gamma", NULL};
    bf_status st = BF_OK;
    for (int k = 0; st == BF_OK && k < BF_MAX_PHASES; k++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/data/al-%d.csv", r->dir, k);
        if (!is_file(path))
            continue;
        int col[7];
        csv_table t;
        al_batch *a = &r->al[r->n_al++];
        a->phase = k;
        st = csv_read(path, &t, err);
        if (st == BF_OK)
            st = csv_need(&t, need, col, err);
        if (st == BF_OK && t.n_rows > 0) {
            a->cells = malloc((size_t)t.n_rows * BF_N_CELL_PARAMS * sizeof *a->cells);
            a->labels = malloc((size_t)t.n_rows * sizeof *a->labels);
            if (!a->cells || !a->labels)
                st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", path);
        }
        for (int i = 0; st == BF_OK && i < t.n_rows; i++) {
            long label;
            st = csv_integer(&t, i, col[0], &label, err);
            if (st == BF_OK && (label < 0 || label > INT32_MAX))
                st = bf_error_set(err, BF_ERR_PARSE, "%s:%d: label: %ld is not a class label",
                                  path, t.line[i], label);
            a->labels[i] = (int32_t)label;
            for (int p = 0; st == BF_OK && p < BF_N_CELL_PARAMS; p++)
                st = csv_number(&t, i, col[1 + p], &a->cells[i * BF_N_CELL_PARAMS + p], err);
            a->n = i + 1;
        }
        csv_free(&t);
    }
    return st;
}

/* DIR/NAME into *text, or NULL when the file is absent. */
static bf_status read_optional_text(const report *r, const char *name, char **text, bf_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    *text = NULL;
    return is_file(path) ? bf_read_file(path, text, NULL, err) : BF_OK;
}

static bf_status read_optional_h5(const report *r, const char *name, bf_dataset *d, int *have,
                                  bf_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/data/%s", r->dir, name);
    *have = 0;
    if (!is_file(path))
        return BF_OK;
    bf_status st = bf_dataset_read_h5(path, d, err);
    *have = st == BF_OK;
    return st;
}

/* A label's class name: from the dataset's class_names/class_labels, else the built-in
 * classes' labels (DESIGN §4), else "class N". */
static void class_name(const bf_dataset *d, int label, char *out, size_t n)
{
    for (int k = 0; d && k < d->n_classes; k++)
        if (d->class_labels[k] == label && d->class_names[k][0]) {
            snprintf(out, n, "%s", d->class_names[k]);
            return;
        }
    const char *builtin = bf_class_builtin_name(label);
    if (builtin)
        snprintf(out, n, "%s", builtin);
    else
        snprintf(out, n, "class %d", label);
}

/* ---- axes ----------------------------------------------------------------------------- */

typedef struct {
    double lo, hi;     /* domain */
    double p0, p1;     /* pixel positions of lo and hi */
    double step;       /* linear: tick step, 1, 2 or 5 x 10^k */
    int log;           /* log10: ticks at 1, 2, 5 x 10^k (10^k only beyond two decades) */
} axis;

/* A "nice" step (1, 2 or 5 x 10^k) giving about target intervals over span. */
static double nice_step(double span, int target)
{
    double raw = span / target;
    double p = pow(10, floor(log10(raw)));
    double f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

/* [lo, hi] (widened to whole steps when widen) onto pixels p0..p1. */
static axis axis_linear(double lo, double hi, int target, double p0, double p1, int widen)
{
    if (!isfinite(lo) || !isfinite(hi)) {
        lo = 0;
        hi = 1;
    }
    if (!(hi > lo)) { /* one value: a small window around it */
        double d = fabs(lo) > 0 ? fabs(lo) * 1e-3 : 0.5;
        lo -= d;
        hi += d;
    }
    axis a = {.lo = lo, .hi = hi, .p0 = p0, .p1 = p1};
    a.step = nice_step(hi - lo, target);
    if (widen) {
        a.lo = floor(lo / a.step + 1e-9) * a.step;
        a.hi = ceil(hi / a.step - 1e-9) * a.step;
    }
    return a;
}

/* Whole decades around [lo, hi] (both > 0). */
static axis axis_log(double lo, double hi, double p0, double p1)
{
    if (!(lo > 0) || !isfinite(lo))
        lo = hi > 0 && isfinite(hi) ? hi / 10 : 1e-3;
    if (!(hi > lo) || !isfinite(hi))
        hi = lo * 10;
    axis a = {.p0 = p0, .p1 = p1, .log = 1};
    a.lo = pow(10, floor(log10(lo) + 1e-9));
    a.hi = pow(10, ceil(log10(hi) - 1e-9));
    if (!(a.hi > a.lo))
        a.hi = a.lo * 10;
    return a;
}

static double ax_map(const axis *a, double v)
{
    double t = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo))
                      : (v - a->lo) / (a->hi - a->lo);
    return a->p0 + t * (a->p1 - a->p0);
}

static int ax_ticks(const axis *a, double *out, int max)
{
    int n = 0;
    if (a->log) {
        int e0 = (int)lround(log10(a->lo)), e1 = (int)lround(log10(a->hi));
        static const double mult[] = {1, 2, 5};
        int n_mult = e1 - e0 <= 2 ? 3 : 1;
        for (int e = e0; e <= e1; e++)
            for (int m = 0; m < n_mult && n < max; m++) {
                double v = mult[m] * pow(10, e);
                if (v <= a->hi * (1 + 1e-9))
                    out[n++] = v;
            }
        return n;
    }
    double k0 = ceil(a->lo / a->step - 1e-9);
    for (int i = 0; n < max; i++) {
        double v = (k0 + i) * a->step;
        if (v > a->hi + a->step * 1e-9)
            break;
        out[n++] = fabs(v) < a->step * 1e-9 ? 0 : v; /* no "-0" */
    }
    return n;
}

static void fmt_tick(const axis *a, double v, char *out, size_t n)
{
    if (a->log) {
        snprintf(out, n, "%g", v);
        return;
    }
    int decimals = a->step >= 1 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
    snprintf(out, n, "%.*f", decimals, v);
}

/* Horizontal axis at pixel row y, with grid lines up to y_top and the label below. */
static void x_axis(bf_buf *b, const axis *a, double y, double y_top, const char *label)
{
    double t[64];
    char text[64];
    int n = ax_ticks(a, t, 64);
    bf_buf_puts(b, "<g class=\"axis\">\n");
    for (int i = 0; i < n; i++) {
        double x = ax_map(a, t[i]);
        fmt_tick(a, t[i], text, sizeof text);
        bf_buf_printf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                         "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                         "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                      x, y_top, x, y, x, y, x, y + 5, x, y + 18, text);
    }
    bf_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", a->p0, y,
                  a->p1, y);
    bf_buf_printf(b, "<text class=\"label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                  (a->p0 + a->p1) / 2, y + 36);
    html_esc(b, label);
    bf_buf_puts(b, "</text>\n</g>\n");
}

/* Vertical axis at pixel column x, with grid lines to x_right and the label rotated at
 * its left. */
static void y_axis(bf_buf *b, const axis *a, double x, double x_right, const char *label)
{
    double t[64];
    char text[64];
    int n = ax_ticks(a, t, 64);
    bf_buf_puts(b, "<g class=\"axis\">\n");
    for (int i = 0; i < n; i++) {
        double y = ax_map(a, t[i]);
        fmt_tick(a, t[i], text, sizeof text);
        bf_buf_printf(b, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                         "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                         "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                      x, y, x_right, y, x - 5, y, x, y, x - 8, y + 4, text);
    }
    bf_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", x, a->p0,
                  x, a->p1);
    double ym = (a->p0 + a->p1) / 2, xl = x - 50;
    bf_buf_printf(b, "<text class=\"label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                     "transform=\"rotate(-90 %.1f %.1f)\">",
                  xl, ym, xl, ym);
    html_esc(b, label);
    bf_buf_puts(b, "</text>\n</g>\n");
}

/* ---- legends and SVG frames --------------------------------------------------------- */

typedef enum { MARK_BOX, MARK_DOT, MARK_RING, MARK_LINE, MARK_DASH, MARK_BRACKET } mark_kind;

typedef struct {
    char label[64];
    const char *color;
    mark_kind mark;
} legend_entry;

/* Entries left to right from (x, y), wrapping at x + width; returns the height used.
 * With b == NULL it only measures, so a chart can size itself before drawing. */
static double legend(bf_buf *b, double x, double y, double width, const legend_entry *e, int n)
{
    double cx = x, cy = y;
    for (int i = 0; i < n; i++) {
        double w = 26 + 6.2 * (double)strlen(e[i].label) + 14;
        if (cx > x && cx + w > x + width) {
            cx = x;
            cy += 17;
        }
        if (b) {
            const char *c = e[i].color;
            switch (e[i].mark) {
            case MARK_BOX:
                bf_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"18\" height=\"10\" rx=\"2\" "
                                 "fill=\"%s\"/>", cx, cy - 5, c);
                break;
            case MARK_DOT:
                bf_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>",
                              cx + 9, cy, c);
                break;
            case MARK_RING:
                bf_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"none\" "
                                 "stroke=\"%s\" stroke-width=\"1.2\"/>", cx + 9, cy, c);
                break;
            case MARK_LINE:
            case MARK_DASH:
                bf_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                                 "stroke=\"%s\" stroke-width=\"2\"%s/>", cx, cy, cx + 18, cy, c,
                              e[i].mark == MARK_DASH ? " stroke-dasharray=\"5 3\"" : "");
                break;
            case MARK_BRACKET:
                bf_buf_printf(b, "<path d=\"M%.1f %.1fV%.1fH%.1fV%.1f\" fill=\"none\" "
                                 "stroke=\"%s\" stroke-width=\"1.5\"/>", cx, cy - 5, cy + 2,
                              cx + 18, cy - 5, c);
                break;
            }
            bf_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\">", cx + 24, cy + 4);
            html_esc(b, e[i].label);
            bf_buf_puts(b, "</text>\n");
        }
        cx += w;
    }
    return n > 0 ? cy - y + 17 : 0;
}

/* <svg> with its accessible <title> (shown as a tooltip too). */
static void svg_open(bf_buf *b, const char *id, double w, double h, const char *title)
{
    bf_buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"%s\" width=\"%.0f\" "
                     "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
                     "aria-labelledby=\"%s-title\">\n<title id=\"%s-title\">",
                  id, w, h, w, h, id, id);
    html_esc(b, title);
    bf_buf_puts(b, "</title>\n");
}

/* Chart heading drawn inside the SVG, so a saved image keeps it. */
static void svg_heading(bf_buf *b, double x, double y, const char *text)
{
    bf_buf_printf(b, "<text class=\"heading\" x=\"%.1f\" y=\"%.1f\">", x, y);
    html_esc(b, text);
    bf_buf_puts(b, "</text>\n");
}

static void fmt_seconds(double s, char *out, size_t n)
{
    snprintf(out, n, s < 10 ? "%.2f s" : s < 100 ? "%.1f s" : "%.0f s", s);
}

/* ---- 1. task timeline ----------------------------------------------------------------
 * One row per task in timeline.csv order; a parallel group PG_k is a bracket under
 * the tasks it joins (T_k || S'_k). */

typedef enum { TASK_SIM, TASK_SIM_BG, TASK_TRAIN, TASK_AL, TASK_GROUP, TASK_OTHER } task_kind;

static task_kind kind_of(const char *name)
{
    if (strncmp(name, "PG", 2) == 0)
        return TASK_GROUP;
    if (strncmp(name, "S'", 2) == 0)
        return TASK_SIM_BG;
    if (strncmp(name, "AL", 2) == 0)
        return TASK_AL;
    return name[0] == 'S' ? TASK_SIM : name[0] == 'T' ? TASK_TRAIN : TASK_OTHER;
}

static const struct {
    const char *legend, *color;
    mark_kind mark;
} task_style[] = {
    [TASK_SIM] = {"S: simulate", "#2b6cb0", MARK_BOX},
    [TASK_SIM_BG] = {"S': simulate during training", "#7fb3e0", MARK_BOX},
    [TASK_TRAIN] = {"T: train", "#f28e2b", MARK_BOX},
    [TASK_AL] = {"AL: acquire a batch", "#3a9e4f", MARK_BOX},
    [TASK_GROUP] = {"PG: parallel group (T || S')", "#555555", MARK_BRACKET},
    [TASK_OTHER] = {"other", "#999999", MARK_BOX},
};

static void chart_timeline(bf_buf *b, const report *r)
{
    const double width = 1120, left = 92, right = 70, row_h = 22;
    int present[TASK_OTHER + 1] = {0};
    double total = 0;
    for (int i = 0; i < r->n_tasks; i++) {
        present[kind_of(r->tasks[i].name)] = 1;
        total = fmax(total, r->tasks[i].end_s);
    }
    legend_entry e[TASK_OTHER + 1];
    int ne = 0;
    for (int k = 0; k <= TASK_OTHER; k++)
        if (present[k]) {
            snprintf(e[ne].label, sizeof e[ne].label, "%s", task_style[k].legend);
            e[ne].color = task_style[k].color;
            e[ne++].mark = task_style[k].mark;
        }
    double top = 36 + legend(NULL, left, 40, width - left - right, e, ne) + 6;
    double plot_h = r->n_tasks * row_h, height = top + plot_h + 50;
    char title[160], dur[32];
    fmt_seconds(total, dur, sizeof dur);
    snprintf(title, sizeof title, "Task timeline: %d task(s), %s of wall time", r->n_tasks, dur);
    svg_open(b, "timeline-chart", width, height, title);
    svg_heading(b, left, 20, title);
    legend(b, left, 40, width - left - right, e, ne);
    axis ax = axis_linear(0, total > 0 ? total : 1, 10, left, width - right, 1);
    x_axis(b, &ax, top + plot_h, top, "time since the campaign started (s)");
    bf_buf_printf(b, "<text class=\"label\" x=\"14\" y=\"%.1f\" text-anchor=\"middle\" "
                     "transform=\"rotate(-90 14 %.1f)\">task</text>\n",
                  top + plot_h / 2, top + plot_h / 2);
    for (int i = 0; i < r->n_tasks; i++) {
        const task_row *t = &r->tasks[i];
        task_kind k = kind_of(t->name);
        double y = top + i * row_h, x0 = ax_map(&ax, t->start_s);
        double w = fmax(ax_map(&ax, t->end_s) - x0, 1.5); /* a 0.1 s task stays visible */
        fmt_seconds(t->end_s - t->start_s, dur, sizeof dur);
        bf_buf_puts(b, "<g class=\"task\" data-task=\"");
        html_esc(b, t->name);
        bf_buf_puts(b, "\"><title>");
        html_esc(b, t->name);
        bf_buf_printf(b, " (phase %d): %.2f to %.2f s, %s", t->phase, t->start_s, t->end_s, dur);
        if (t->samples > 0)
            bf_buf_printf(b, ", %ld patterns", t->samples);
        bf_buf_printf(b, "</title>\n<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", left - 8,
                      y + row_h / 2 + 4);
        html_esc(b, t->name);
        bf_buf_puts(b, "</text>");
        if (k == TASK_GROUP)
            bf_buf_printf(b, "<path d=\"M%.1f %.1fV%.1fH%.1fV%.1f\" fill=\"none\" stroke=\"%s\" "
                             "stroke-width=\"1.5\"/>",
                          x0, y + 3, y + row_h / 2, x0 + w, y + 3, task_style[k].color);
        else
            bf_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" rx=\"2\" "
                             "fill=\"%s\"/>",
                          x0, y + 4, w, row_h - 8, task_style[k].color);
        bf_buf_printf(b, "<text class=\"small\" x=\"%.1f\" y=\"%.1f\">%s</text></g>\n", x0 + w + 4,
                      y + row_h / 2 + 4, dur);
    }
    bf_buf_puts(b, "</svg>\n");
}

static void section_timeline(bf_buf *b, const report *r)
{
    bf_buf_puts(b, "<section id=\"timeline\">\n<h2>Task timeline</h2>\n");
    if (r->n_tasks == 0) {
        note(b, "timeline.csv has no tasks yet.");
        bf_buf_puts(b, "</section>\n");
        return;
    }
    bf_buf_puts(b, "<p class=\"caption\">Each bar is one task from its start to its end, in "
                   "seconds since the campaign started (seed 001 Figs. 2-3); hover a bar for its "
                   "times and "
                   "pattern count. Brackets mark parallel groups: training beside the simulation "
                   "that streams the next data.</p>\n");
    chart_timeline(b, r);
    bf_buf_puts(b, "</section>\n");
}

/* ---- 2. test metrics per phase ------------------------------------------------------- */

typedef struct {
    const char *name, *color;
    const double *v;          /* one value per metrics row; NaN (or <= 0 on a log axis) skipped */
    int dashed;               /* a reference line: dashed, no markers */
} series;

static int usable(double v, int log_y)
{
    return isfinite(v) && (!log_y || v > 0);
}

/* x = phase (evenly spaced, annotated with the training-set size), y = the series. */
static void chart_metric(bf_buf *b, const report *r, const char *id, const char *title,
                         const char *ylabel, const series *s, int ns, int log_y)
{
    const double width = 550, left = 76, right = 20, bottom = 62;
    legend_entry e[4];
    int ne = 0;
    double lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < ns; j++) {
        int any = 0;
        for (int i = 0; i < r->n_metrics; i++)
            if (usable(s[j].v[i], log_y)) {
                lo = fmin(lo, s[j].v[i]);
                hi = fmax(hi, s[j].v[i]);
                any = 1;
            }
        if (any && ne < 4) {
            snprintf(e[ne].label, sizeof e[ne].label, "%s", s[j].name);
            e[ne].color = s[j].color;
            e[ne++].mark = s[j].dashed ? MARK_DASH : MARK_LINE;
        }
    }
    double top = 36 + legend(NULL, left, 40, width - left - right, e, ne) + 10;
    double height = top + 220 + bottom, y_base = height - bottom;
    svg_open(b, id, width, height, title);
    svg_heading(b, left, 20, title);
    legend(b, left, 40, width - left - right, e, ne);
    axis ay = log_y ? axis_log(lo, hi, y_base, top)
                    : axis_linear(fmin(0, lo), hi, 5, y_base, top, 1);
    y_axis(b, &ay, left, width - right, ylabel);

    /* categorical x: phases spread evenly, inset from both ends */
    double xs[MAX_METRIC_ROWS];
    int n = r->n_metrics < MAX_METRIC_ROWS ? r->n_metrics : MAX_METRIC_ROWS;
    double x0 = left + 30, x1 = width - right - 30;
    bf_buf_puts(b, "<g class=\"axis\">\n");
    bf_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", left, y_base,
                  width - right, y_base);
    for (int i = 0; i < n; i++) {
        xs[i] = n == 1 ? (x0 + x1) / 2 : x0 + i * (x1 - x0) / (n - 1);
        bf_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                         "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>"
                         "<text class=\"small\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">"
                         "n=%ld</text>\n",
                      xs[i], y_base, xs[i], y_base + 5, xs[i], y_base + 18, r->metrics[i].phase,
                      xs[i], y_base + 31, r->metrics[i].n_train);
    }
    bf_buf_printf(b, "<text class=\"label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">phase "
                     "(n = training-set size)</text>\n</g>\n",
                  (left + width - right) / 2, y_base + 50);

    for (int j = 0; j < ns; j++) {
        bf_buf_printf(b, "<g class=\"series\"><polyline fill=\"none\" stroke=\"%s\" "
                         "stroke-width=\"2\"%s points=\"",
                      s[j].color, s[j].dashed ? " stroke-dasharray=\"6 4\"" : "");
        for (int i = 0; i < n; i++)
            if (usable(s[j].v[i], log_y))
                bf_buf_printf(b, "%.1f,%.1f ", xs[i], ax_map(&ay, s[j].v[i]));
        bf_buf_puts(b, "\"/>\n");
        for (int i = 0; i < n && !s[j].dashed; i++) {
            if (!usable(s[j].v[i], log_y))
                continue;
            bf_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>", xs[i],
                          ax_map(&ay, s[j].v[i]), s[j].color);
            html_esc(b, s[j].name);
            bf_buf_printf(b, ", phase %d (n=%ld): %.4g</title></circle>\n", r->metrics[i].phase,
                          r->metrics[i].n_train, s[j].v[i]);
        }
        bf_buf_puts(b, "</g>\n");
    }
    bf_buf_puts(b, "</svg>\n");
}

static void section_metrics(bf_buf *b, const report *r)
{
    bf_buf_puts(b, "<section id=\"metrics\">\n<h2>Test metrics per phase</h2>\n");
    int n = r->n_metrics;
    if (n == 0) {
        note(b, "metrics.csv has no phases yet.");
        bf_buf_puts(b, "</section>\n");
        return;
    }
    double *v = malloc((size_t)n * 3 * sizeof *v);
    if (!v) {
        b->failed = 1;
        return;
    }
    double *loss = v, *mse = v + n, *base = v + 2 * n;
    for (int i = 0; i < n; i++) {
        loss[i] = r->metrics[i].class_loss;
        mse[i] = r->metrics[i].mse;
        base[i] = r->metrics[i].mse_baseline;
    }
    bf_buf_puts(b, "<p class=\"caption\">Each phase's best model on the test set (seed 001 Figs. "
                   "9-10)");
    if (r->metrics[0].test_n > 0)
        bf_buf_printf(b, ", %ld patterns", r->metrics[0].test_n);
    int have_base = 0;
    for (int i = 0; i < n; i++)
        have_base |= usable(base[i], 1);
    bf_buf_puts(b, have_base ? ". The dashed line is the MSE of always predicting the test set's "
                               "mean: a model below it has learned the lattice parameters.</p>\n"
                             : ".</p>\n");
    bf_buf_puts(b, "<div class=\"charts\">\n");
    const series s_loss[] = {{"test class loss", "#1f77b4", loss, 0}};
    const series s_mse[] = {{"test MSE", "#d62728", mse, 0},
                            {"mean predictor (test_mse_baseline)", "#777777", base, 1}};
    chart_metric(b, r, "class-loss-chart", "Test class loss per phase",
                 "class loss (cross-entropy)", s_loss, 1, 0);
    chart_metric(b, r, "mse-chart", "Test MSE per phase (log scale)",
                 "MSE of scaled a, c, α (log)", s_mse, 2, 1);
    bf_buf_puts(b, "</div>\n</section>\n");
    free(v);
}

/* ---- 3. where active learning sampled ----------------------------------------------- */

/* The rows of one class in one set of cells (the study set or an AL batch). */
typedef struct {
    char label[64];
    const char *color;
    const double *cells;      /* [.. * 6] */
    long *rows, n;
    int ring;                 /* the study set: open circles drawn last, so AL points that
                               * land on a study point leave it visible */
} point_set;

static int all_equal(const point_set *s, int ns, int p, int q)
{
    for (int j = 0; j < ns; j++)
        for (long i = 0; i < s[j].n; i++) {
            const double *c = s[j].cells + s[j].rows[i] * BF_N_CELL_PARAMS;
            if (fabs(c[p] - c[q]) > 1e-9 * fmax(1, fabs(c[q])))
                return 0;
        }
    return 1;
}

/* The class's free parameters, decided from the data: those that vary across its points,
 * less those equal to an earlier free one everywhere (tied: b = a, beta = alpha). */
static int free_params(const point_set *s, int ns, int *free_p)
{
    int nf = 0;
    for (int p = 0; p < BF_N_CELL_PARAMS; p++) {
        double lo = INFINITY, hi = -INFINITY;
        for (int j = 0; j < ns; j++)
            for (long i = 0; i < s[j].n; i++) {
                double v = s[j].cells[s[j].rows[i] * BF_N_CELL_PARAMS + p];
                lo = fmin(lo, v);
                hi = fmax(hi, v);
            }
        if (!(hi - lo > 1e-9 * fmax(1, fabs(hi))))
            continue;
        int tied = 0;
        for (int q = 0; q < nf && !tied; q++)
            tied = all_equal(s, ns, p, free_p[q]);
        if (!tied)
            free_p[nf++] = p;
    }
    return nf;
}

/* Padded data range of parameter p over every set. */
static axis param_axis(const point_set *s, int ns, int p, double p0, double p1)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int j = 0; j < ns; j++)
        for (long i = 0; i < s[j].n; i++) {
            double v = s[j].cells[s[j].rows[i] * BF_N_CELL_PARAMS + p];
            lo = fmin(lo, v);
            hi = fmax(hi, v);
        }
    double pad = 0.04 * (hi - lo);
    return axis_linear(lo - pad, hi + pad, 5, p0, p1, 0);
}

/* A deterministic jitter in [-0.5, 0.5) (golden-ratio sequence) to spread a strip. */
static double jitter(long i)
{
    double x = (double)i * 0.6180339887498949;
    return x - floor(x) - 0.5;
}

static void points_open(bf_buf *b, const point_set *s, long shown)
{
    if (s->ring)
        bf_buf_printf(b, "<g class=\"points\" fill=\"none\" stroke=\"%s\" stroke-width=\"1\">"
                         "<title>", s->color);
    else
        bf_buf_printf(b, "<g class=\"points\" fill=\"%s\" fill-opacity=\"0.55\"><title>",
                      s->color);
    html_esc(b, s->label);
    bf_buf_printf(b, ": %ld point(s)", s->n);
    if (shown < s->n)
        bf_buf_printf(b, ", %ld shown", shown);
    bf_buf_puts(b, "</title>\n");
}

/* One class's chart: a strip per set along the free parameter (one free parameter) or a
 * scatter of the first two free parameters. */
static void chart_al_class(bf_buf *b, const char *cls, int chart_no, const point_set *s, int ns)
{
    int free_p[BF_N_CELL_PARAMS];
    int nf = free_params(s, ns, free_p);
    const double width = 370, left = 66, right = 16, bottom = 50;
    legend_entry e[BF_MAX_PHASES + 1];
    int ne = 0;
    for (int j = 0; j < ns; j++)
        if (s[j].n > 0) {
            snprintf(e[ne].label, sizeof e[ne].label, "%s", s[j].label);
            e[ne].color = s[j].color;
            e[ne++].mark = j == 0 && s[0].ring ? MARK_RING : MARK_DOT;
        }
    double top = 36 + legend(NULL, left - 40, 40, width - left + 40 - right, e, ne) + 8;
    int strip = nf == 1;
    double plot_h = strip ? 34.0 * ne : 230, height = top + plot_h + bottom;
    char id[32], title[192];
    snprintf(id, sizeof id, "al-chart-%d", chart_no);
    if (nf == 0)
        snprintf(title, sizeof title, "%s: no parameter varies", cls);
    else if (strip)
        snprintf(title, sizeof title, "%s: %s", cls, param_symbol[free_p[0]]);
    else
        snprintf(title, sizeof title, "%s: %s vs %s%s", cls, param_symbol[free_p[0]],
                 param_symbol[free_p[1]], nf > 2 ? " (first 2 free parameters)" : "");
    svg_open(b, id, width, height, title);
    svg_heading(b, left - 40, 20, title);
    legend(b, left - 40, 40, width - left + 40 - right, e, ne);
    if (nf == 0) {
        bf_buf_puts(b, "</svg>\n");
        return;
    }
    axis ax = param_axis(s, ns, free_p[0], left, width - right);
    x_axis(b, &ax, top + plot_h, top, param_axis_label[free_p[0]]);
    axis ay = {0};
    if (strip) {
        bf_buf_printf(b, "<text class=\"label\" x=\"14\" y=\"%.1f\" text-anchor=\"middle\" "
                         "transform=\"rotate(-90 14 %.1f)\">set</text>\n",
                      top + plot_h / 2, top + plot_h / 2);
    } else {
        ay = param_axis(s, ns, free_p[1], top + plot_h, top);
        y_axis(b, &ay, left, width - right, param_axis_label[free_p[1]]);
    }
    /* rows (strips) in legend order; drawing order puts the study rings on top */
    for (int step = 0; step < ns; step++) {
        int j = (step + 1) % ns, row = 0;
        for (int q = 0; q < j; q++)
            row += s[q].n > 0;
        if (s[j].n == 0)
            continue;
        long stride = (s[j].n + MAX_SCATTER_POINTS - 1) / MAX_SCATTER_POINTS;
        double yc = top + (row + 0.5) * 34.0;
        if (strip) {
            bf_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", left - 6, yc + 4);
            html_esc(b, s[j].label);
            bf_buf_puts(b, "</text>\n");
        }
        points_open(b, &s[j], (s[j].n + stride - 1) / stride);
        for (long i = 0; i < s[j].n; i += stride) {
            const double *c = s[j].cells + s[j].rows[i] * BF_N_CELL_PARAMS;
            double x = ax_map(&ax, c[free_p[0]]);
            double y = strip ? yc + 22 * jitter(i) : ax_map(&ay, c[free_p[1]]);
            bf_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\"/>", x, y,
                          s[j].ring ? "3.2" : "2.6");
            if (i % (16 * stride) == 15 * stride)
                bf_buf_puts(b, "\n");
        }
        bf_buf_puts(b, "\n</g>\n");
    }
    bf_buf_puts(b, "</svg>\n");
}

static void section_al(bf_buf *b, const report *r)
{
    bf_buf_puts(b, "<section id=\"al\">\n<h2>Where active learning sampled</h2>\n");
    if (!r->have_study && r->n_al == 0) {
        note(b, "No study set (data/study.h5) and no AL batches (data/al-K.csv): a baseline "
                "campaign, or one that has not reached its first AL phase.");
        bf_buf_puts(b, "</section>\n");
        return;
    }
    bf_buf_puts(b, "<p class=\"caption\">Per class, in the parameters that vary within it: the "
                   "study set (grey rings), where the model's uncertainty is measured, against "
                   "the batch each AL phase drew (one colour per phase). A class with one free "
                   "parameter is a strip per set along it.</p>\n");
    if (!r->have_study)
        note(b, "No study set (data/study.h5): only the AL batches are shown.");
    if (r->n_al == 0)
        note(b, "No AL batches (data/al-K.csv) yet: only the study set is shown.");

    /* classes: the study set's, in config order; then labels only the batches have */
    int labels[BF_MAX_CLASSES * 2], n_labels = 0;
    if (r->have_study)
        for (int k = 0; k < r->study.n_classes && n_labels < BF_MAX_CLASSES; k++)
            labels[n_labels++] = r->study.class_labels[k];
    for (int j = 0; j < r->n_al; j++)
        for (long i = 0; i < r->al[j].n; i++) {
            int known = 0;
            for (int k = 0; k < n_labels && !known; k++)
                known = labels[k] == r->al[j].labels[i];
            if (!known && n_labels < BF_MAX_CLASSES * 2)
                labels[n_labels++] = r->al[j].labels[i];
        }

    long cap = r->have_study ? r->study.n : 0;
    for (int j = 0; j < r->n_al; j++)
        cap += r->al[j].n;
    long *rows = malloc((size_t)(cap > 0 ? cap : 1) * sizeof *rows);
    if (!rows) {
        b->failed = 1;
        return;
    }
    bf_buf_puts(b, "<div class=\"charts\">\n");
    for (int k = 0; k < n_labels; k++) {
        point_set s[BF_MAX_PHASES + 1];
        int ns = 0;
        long used = 0;
        if (r->have_study) {
            point_set *p = &s[ns++];
            snprintf(p->label, sizeof p->label, "study");
            p->color = study_color;
            p->ring = 1;
            p->cells = r->study.cells;
            p->rows = rows + used;
            p->n = 0;
            for (long i = 0; i < r->study.n; i++)
                if (r->study.labels[i] == labels[k])
                    p->rows[p->n++] = i;
            used += p->n;
        }
        for (int j = 0; j < r->n_al; j++) {
            point_set *p = &s[ns++];
            snprintf(p->label, sizeof p->label, "AL %d", r->al[j].phase);
            p->color = phase_colors[(r->al[j].phase + N_PHASE_COLORS - 1) % N_PHASE_COLORS];
            p->cells = r->al[j].cells;
            p->rows = rows + used;
            p->n = 0;
            p->ring = 0;
            for (long i = 0; i < r->al[j].n; i++)
                if (r->al[j].labels[i] == labels[k])
                    p->rows[p->n++] = i;
            used += p->n;
        }
        char name[40];
        class_name(r->have_study ? &r->study : NULL, labels[k], name, sizeof name);
        chart_al_class(b, name, k, s, ns);
    }
    bf_buf_puts(b, "</div>\n</section>\n");
    free(rows);
}

/* ---- 4. example patterns ------------------------------------------------------------ */

/* First pattern of each class (in the file's class order, then other labels), topped up
 * with the first remaining patterns to N_EXAMPLE_PATTERNS. */
static int pick_examples(const bf_dataset *d, long *pick)
{
    int n = 0;
    for (long i = 0; i < d->n && n < N_EXAMPLE_PATTERNS; i++) {
        int seen = 0;
        for (int k = 0; k < n && !seen; k++)
            seen = d->labels[pick[k]] == d->labels[i];
        if (!seen)
            pick[n++] = i;
    }
    for (long i = 0; i < d->n && n < N_EXAMPLE_PATTERNS; i++) {
        int seen = 0;
        for (int k = 0; k < n && !seen; k++)
            seen = pick[k] == i;
        if (!seen)
            pick[n++] = i;
    }
    return n;
}

/* Points of pattern y (min-max scaled to [0, 1]); above MAX_PATTERN_POINTS each bucket
 * gives its minimum and maximum in order, so no peak is lost. */
static void pattern_polyline(bf_buf *b, const float *y, const double *tof, int len,
                             const axis *ax, const axis *ay, const char *color)
{
    float lo = y[0], hi = y[0];
    for (int i = 1; i < len; i++) {
        lo = fminf(lo, y[i]);
        hi = fmaxf(hi, y[i]);
    }
    double scale = hi > lo ? 1.0 / ((double)hi - lo) : 0;
    bf_buf_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.2\" points=\"", color);
    int buckets = len <= MAX_PATTERN_POINTS ? len : MAX_PATTERN_POINTS / 2;
    for (int k = 0; k < buckets; k++) {
        int i0 = (int)((long)k * len / buckets), i1 = (int)((long)(k + 1) * len / buckets);
        int imin = i0, imax = i0;
        for (int i = i0; i < i1; i++) {
            if (y[i] < y[imin])
                imin = i;
            if (y[i] > y[imax])
                imax = i;
        }
        int first = imin < imax ? imin : imax, second = imin < imax ? imax : imin;
        bf_buf_printf(b, "%.1f,%.1f ", ax_map(ax, tof[first]), ax_map(ay, (y[first] - lo) * scale));
        if (second != first)
            bf_buf_printf(b, "%.1f,%.1f ", ax_map(ax, tof[second]),
                          ax_map(ay, (y[second] - lo) * scale));
        if (k % 8 == 7)
            bf_buf_puts(b, "\n");
    }
    bf_buf_puts(b, "\"/>\n");
}

static void chart_patterns(bf_buf *b, const bf_dataset *d, const long *pick, int n)
{
    const double width = 1120, left = 76, right = 20, panel_h = 140, gap = 30, top = 48;
    double height = top + n * (panel_h + gap) - gap + 50;
    const int cw = d->x_unit == BF_X_TTH_DEG;
    const char *title = cw ? "Example test patterns: scaled intensity vs 2θ"
                           : "Example test patterns: scaled intensity vs TOF";
    svg_open(b, "patterns-chart", width, height, title);
    svg_heading(b, left, 20, title);
    axis ax = axis_linear(d->x[0], d->x[d->length - 1], 10, left, width - right, 0);
    double y_end = top + n * (panel_h + gap) - gap;
    x_axis(b, &ax, y_end, top, cw ? "2θ (degrees)" : "time of flight (µs)");
    for (int p = 0; p < n; p++) {
        long i = pick[p];
        double y0 = top + p * (panel_h + gap);
        axis ay = axis_linear(0, 1, 2, y0 + panel_h, y0 + 6, 0);
        y_axis(b, &ay, left, width - right, "scaled intensity");
        char name[40], text[256];
        class_name(d, d->labels[i], name, sizeof name);
        const double *c = d->cells + i * BF_N_CELL_PARAMS;
        snprintf(text, sizeof text, "%s: test pattern %ld, a = %.4f Å, c = %.4f Å, α = %.3f°",
                 name, i, c[BF_P_A], c[BF_P_C], c[BF_P_ALPHA]);
        bf_buf_puts(b, "<g class=\"pattern\"><title>");
        html_esc(b, text);
        /* the caption sits above the panel, clear of the peaks */
        bf_buf_printf(b, "</title>\n<text class=\"small\" x=\"%.1f\" y=\"%.1f\">", left + 4,
                      y0 - 4);
        html_esc(b, text);
        bf_buf_puts(b, "</text>\n");
        pattern_polyline(b, d->patterns + (size_t)i * (size_t)d->length, d->x, d->length,
                         &ax, &ay, phase_colors[(p + 1) % N_PHASE_COLORS]);
        bf_buf_puts(b, "</g>\n");
    }
    bf_buf_puts(b, "</svg>\n");
}

static void section_patterns(bf_buf *b, const report *r)
{
    bf_buf_puts(b, "<section id=\"patterns\">\n<h2>Example patterns</h2>\n");
    const bf_dataset *d = &r->test;
    if (!r->have_test || d->n == 0 || d->length < 2) {
        note(b, "No test set (data/test.h5) with patterns yet.");
        bf_buf_puts(b, "</section>\n");
        return;
    }
    long pick[N_EXAMPLE_PATTERNS];
    int n = pick_examples(d, pick);
    bf_buf_printf(b, "<p class=\"caption\">The first test pattern of each class, intensity "
                     "min-max scaled to [0, 1]%s.</p>\n",
                  d->length > MAX_PATTERN_POINTS ? " (each line keeps the minimum and maximum of "
                                                   "every bucket of points, so no peak is lost)"
                                                 : "");
    chart_patterns(b, d, pick, n);
    bf_buf_puts(b, "</section>\n");
}

/* ---- 5. the page ---------------------------------------------------------------------- */

static const char *const page_css =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;"
    "color:#222;background:#fff;max-width:1160px;margin:24px auto;padding:0 16px}\n"
    "h1{font-size:22px;margin:0 0 4px}\n"
    "h2{font-size:18px;margin:30px 0 6px;padding-bottom:4px;border-bottom:1px solid #ddd}\n"
    "nav a{margin-right:14px;color:#2b6cb0;text-decoration:none}\n"
    ".meta{color:#555;margin:0 0 8px}\n"
    ".caption{color:#555;margin:4px 0 10px;max-width:900px}\n"
    ".note{background:#fff8e1;border-left:4px solid #f0b400;padding:6px 10px;margin:8px 0}\n"
    "pre{background:#f6f6f4;border:1px solid #e2e2de;padding:10px;overflow-x:auto;"
    "font:12px/1.35 ui-monospace,Menlo,Consolas,monospace}\n"
    "details{margin:6px 0}summary{cursor:pointer;color:#2b6cb0}\n"
    ".charts{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}\n"
    "svg{max-width:100%;height:auto;background:#fff}\n"
    "svg text{font-family:system-ui,Helvetica,Arial,sans-serif;font-size:11px;fill:#333}\n"
    "svg text.label{font-size:12px;fill:#222}\n"
    "svg text.small{font-size:10px;fill:#555}\n"
    "svg text.heading{font-size:14px;font-weight:600;fill:#111}\n"
    "svg .axis line{stroke:#777;stroke-width:1}\n"
    "svg .axis line.grid{stroke:#ececec}\n"
    "footer{color:#777;font-size:12px;margin-top:30px}\n";

static void pre_block(bf_buf *b, const char *text)
{
    bf_buf_puts(b, "<pre>");
    html_esc(b, text);
    bf_buf_puts(b, "</pre>\n");
}

/* A file's text, folded away: provenance and config are for when something looks odd. */
static void details_block(bf_buf *b, const char *name, const char *text)
{
    bf_buf_puts(b, "<details><summary>");
    html_esc(b, name);
    bf_buf_puts(b, "</summary>");
    pre_block(b, text);
    bf_buf_puts(b, "</details>\n");
}

static void page(bf_buf *b, const report *r)
{
    /* the folder's own name, for the title */
    char name[4096];
    snprintf(name, sizeof name, "%s", r->dir);
    size_t len = strlen(name);
    while (len > 1 && name[len - 1] == '/')
        name[--len] = 0;
    const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;

    bf_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                   "<title>braggflow campaign report: ");
    html_esc(b, base);
    bf_buf_printf(b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header>\n<h1>Campaign ",
                  page_css);
    html_esc(b, base);
    bf_buf_puts(b, "</h1>\n<p class=\"meta\">");
    html_esc(b, r->dir);
    bf_buf_printf(b, " · %d task(s), %d phase(s) with test metrics</p>\n", r->n_tasks,
                  r->n_metrics);
    bf_buf_puts(b, "<nav><a href=\"#summary\">Summary</a><a href=\"#timeline\">Task timeline</a>"
                   "<a href=\"#metrics\">Test metrics</a><a href=\"#al\">Active learning</a>"
                   "<a href=\"#patterns\">Example patterns</a></nav>\n</header>\n");

    bf_buf_puts(b, "<section id=\"summary\">\n<h2>Summary</h2>\n");
    if (r->summary)
        pre_block(b, r->summary);
    else
        note(b, "No summary.txt: the campaign has not finished.");
    if (r->provenance)
        details_block(b, "provenance.json", r->provenance);
    else
        note(b, "No provenance.json.");
    if (r->config)
        details_block(b, "config.ini", r->config);
    bf_buf_puts(b, "</section>\n");

    section_timeline(b, r);
    section_metrics(b, r);
    section_al(b, r);
    section_patterns(b, r);
    bf_buf_printf(b, "<footer><p>Written by braggflow %s from the files in this folder "
                     "(braggflow report). Self-contained: no scripts, no network.</p></footer>\n"
                     "</body>\n</html>\n",
                  BF_VERSION);
}

bf_status bf_campaign_report(const char *dir, bf_error *err)
{
    report r = {.dir = dir};
    bf_buf b = {0};
    bf_atomic_file af = {0};
    struct stat sb;
    bf_status st = BF_OK;
    /* name timeline.csv: it is what makes a folder a campaign's */
    if (stat(dir, &sb) != 0)
        st = bf_error_set(err, BF_ERR_IO, "%s/timeline.csv: cannot open: %s", dir,
                          strerror(errno));
    else if (!S_ISDIR(sb.st_mode))
        st = bf_error_set(err, BF_ERR_IO, "%s/timeline.csv: cannot open: %s is not a folder",
                          dir, dir);
    if (st == BF_OK)
        st = read_timeline(&r, err);
    if (st == BF_OK)
        st = read_metrics(&r, err);
    if (st == BF_OK)
        st = read_al_batches(&r, err);
    if (st == BF_OK)
        st = read_optional_h5(&r, "study.h5", &r.study, &r.have_study, err);
    if (st == BF_OK)
        st = read_optional_h5(&r, "test.h5", &r.test, &r.have_test, err);
    if (st == BF_OK)
        st = read_optional_text(&r, "summary.txt", &r.summary, err);
    if (st == BF_OK)
        st = read_optional_text(&r, "provenance.json", &r.provenance, err);
    if (st == BF_OK)
        st = read_optional_text(&r, "config.ini", &r.config, err);
    if (st == BF_OK) {
        page(&b, &r);
        if (b.failed)
            st = bf_error_set(err, BF_ERR_NOMEM, "%s/report.html: out of memory", dir);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/report.html", dir);
    if (st == BF_OK)
        st = bf_atomic_begin(&af, path, 1, err);
    if (st == BF_OK && fwrite(b.data, 1, b.len, af.fp) != b.len)
        st = bf_error_set(err, BF_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    if (st == BF_OK)
        st = bf_atomic_commit(&af, err);
    if (st != BF_OK)
        bf_atomic_abort(&af);
    bf_buf_free(&b);
    report_free(&r);
    return st;
}

/* ---- pieces for the other flow reports (flow_internal.h) ---------------------------- */

void bf_report_html_esc(bf_buf *b, const char *s)
{
    html_esc(b, s);
}

const char *bf_report_css(void)
{
    return page_css;
}

void bf_report_scatter(bf_buf *b, const char *id, const char *title, const char *x_label,
                       const char *y_label, const double *x, const double *y, int n, int log_x,
                       int best)
{
    const double w = 520, h = 320, left = 80, right = 20, top = 36, bottom = 56;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i]))
            continue;
        xlo = fmin(xlo, x[i]);
        xhi = fmax(xhi, x[i]);
        ylo = fmin(ylo, y[i]);
        yhi = fmax(yhi, y[i]);
        if (!(x[i] > 0))
            log_x = 0;
    }
    axis ax = log_x ? axis_log(xlo, xhi, left, w - right)
                    : axis_linear(xlo, xhi, 5, left, w - right, 1);
    axis ay = axis_linear(ylo, yhi, 5, h - bottom, top, 1);
    svg_open(b, id, w, h, title);
    svg_heading(b, left, 20, title);
    x_axis(b, &ax, h - bottom, top, x_label);
    y_axis(b, &ay, left, w - right, y_label);
    for (int i = 0; i < n; i++)
        if (isfinite(x[i]) && isfinite(y[i]))
            bf_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\"/>\n",
                          ax_map(&ax, x[i]), ax_map(&ay, y[i]), i == best ? 6 : 4,
                          i == best ? phase_colors[0] : phase_colors[1]);
    bf_buf_puts(b, "</svg>\n");
}
