/* data/pattern_csv.c — the one column reader for pattern text files: a column of
 * intensities, or x,intensity (and esd) columns as `braggflow simulate --out x.csv`
 * writes and xy/xye exports do. Header lines before the data and '#' / '!' comments
 * are skipped; errors name file:line. bf_pattern_csv_parse (`predict --csv`) and the
 * measured-pattern reader (pattern_read.c) both sit on bf_pattern_columns_parse. */
#include "braggflow/data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_POINTS (1 << 24)

/* Up to max numbers separated by blanks or commas; returns how many, -1 if
 * anything else (or a further number) is on the line. */
static int parse_numbers(const char *ln, double *x, int max)
{
    int k = 0;
    const char *p = ln + strspn(ln, " \t,");
    while (*p && k < max) {
        char *end;
        x[k] = strtod(p, &end);
        if (end == p)
            return k == 0 ? 0 : -1;
        k++;
        p = end + strspn(end, " \t,");
    }
    return *p ? -1 : k;
}

static const char *column_name(int k, int n_cols)
{
    if (n_cols == 1)
        return "intensity";
    return k == 0 ? "x" : k == 1 ? "intensity" : "esd";
}

bf_status bf_pattern_columns_parse(const char *text, const char *name, int max_cols,
                                   double *col[3], int *n_out, int *n_cols, bf_x_unit *unit,
                                   int *unit_known, int **lines, bf_error *err)
{
    col[0] = col[1] = col[2] = NULL;
    int *ln_of = NULL;
    if (lines)
        *lines = NULL;
    *n_out = *n_cols = *unit_known = 0;
    if (max_cols < 1 || max_cols > 3)
        return bf_error_set(err, BF_ERR_INVALID, "%s: %d columns asked for (1..3)", name,
                            max_cols);
    size_t cap = 0;
    char ln[512];
    int n = 0, line = 0, columns = 0;
    bf_status st = BF_OK;
    for (const char *s = text; st == BF_OK && *s;) {
        size_t len = strcspn(s, "\n");
        line++;
        if (len >= sizeof ln) {
            st = bf_error_set(err, BF_ERR_PARSE, "%s:%d: line longer than %zu bytes", name,
                              line, sizeof ln - 1);
            break;
        }
        memcpy(ln, s, len);
        ln[len] = 0;
        s += len + (s[len] == '\n');
        if (n == 0 && !*unit_known) { /* a header (or comment) before the data names x */
            if (strstr(ln, "two_theta_deg"))
                *unit = BF_X_TTH_DEG, *unit_known = 1;
            else if (strstr(ln, "tof_us"))
                *unit = BF_X_TOF_US, *unit_known = 1;
        }
        ln[strcspn(ln, "\r#!")] = 0;
        if (!ln[strspn(ln, " \t,")])
            continue;
        double x[3];
        int k = parse_numbers(ln, x, max_cols);
        if (k == 0 && n == 0)
            continue; /* header lines before the data */
        if (k <= 0) {
            if (max_cols == 1)
                st = bf_error_set(err, BF_ERR_PARSE, "%s:%d: expected 1 number per line", name,
                                  line);
            else
                st = bf_error_set(err, BF_ERR_PARSE, "%s:%d: expected 1 %s %d numbers per line",
                                  name, line, max_cols == 2 ? "or" : "to", max_cols);
            break;
        }
        if (columns && k != columns) {
            st = bf_error_set(err, BF_ERR_PARSE, "%s:%d: %d columns, earlier lines have %d",
                              name, line, k, columns);
            break;
        }
        for (int j = k - 1; j >= 0 && st == BF_OK; j--)
            if (!isfinite(x[j]))
                st = bf_error_set(err, BF_ERR_INVALID, "%s:%d: %s is not finite", name, line,
                                  column_name(j, k));
        if (st != BF_OK)
            break;
        if (n == MAX_POINTS) {
            st = bf_error_set(err, BF_ERR_RANGE, "%s:%d: more than %d points", name, line, n);
            break;
        }
        columns = k;
        if ((size_t)n == cap) {
            cap = cap ? cap * 2 : 4096;
            for (int j = 0; j < k && st == BF_OK; j++) {
                double *nv = realloc(col[j], sizeof(double) * cap);
                if (!nv)
                    st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", name);
                else
                    col[j] = nv;
            }
            if (st == BF_OK && lines) {
                int *nl = realloc(ln_of, sizeof(int) * cap);
                if (!nl)
                    st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", name);
                else
                    ln_of = nl;
            }
            if (st != BF_OK)
                break;
        }
        if (lines)
            ln_of[n] = line;
        for (int j = 0; j < k; j++)
            col[j][n] = x[j];
        n++;
    }
    if (st == BF_OK && n == 0)
        st = bf_error_set(err, BF_ERR_PARSE, "%s: no data lines", name);
    if (st != BF_OK) {
        for (int j = 0; j < 3; j++)
            free(col[j]), col[j] = NULL;
        free(ln_of);
        *unit_known = 0;
        return st;
    }
    if (lines)
        *lines = ln_of;
    *n_out = n;
    *n_cols = columns;
    return BF_OK;
}

bf_status bf_pattern_csv_parse(const char *text, const char *name, bf_dataset *out,
                               bf_error *err)
{
    memset(out, 0, sizeof *out);
    double *col[3];
    int n, k, known;
    bf_x_unit unit;
    bf_status st = bf_pattern_columns_parse(text, name, 2, col, &n, &k, &unit, &known, NULL,
                                              err);
    if (st != BF_OK)
        return st;
    float *v = malloc(sizeof(float) * (size_t)n);
    if (v)
        for (int i = 0; i < n; i++)
            v[i] = (float)col[k - 1][i];
    for (int j = 0; j < 3; j++)
        free(col[j]);
    if (!v)
        return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", name);
    out->n = 1;
    out->length = n;
    out->patterns = v;
    return BF_OK;
}

bf_status bf_pattern_csv_read(const char *path, bf_dataset *out, bf_error *err)
{
    char *text = NULL;
    bf_status st = bf_read_file(path, &text, NULL, err);
    if (st == BF_OK)
        st = bf_pattern_csv_parse(text, path, out, err);
    free(text);
    return st;
}
