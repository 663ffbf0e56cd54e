/* data/pattern_csv.c — one pattern from a CSV file: a column of intensities,
 * or tof,intensity columns as `braggflow simulate --out x.csv` writes. Header
 * lines before the data and '#' comments are skipped; errors name file:line. */
#include "braggflow/data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Up to two numbers separated by blanks or commas; returns how many, -1 if
 * anything else is on the line. */
static int parse_numbers(const char *ln, double x[2])
{
    int k = 0;
    const char *p = ln + strspn(ln, " \t,");
    while (*p && k < 2) {
        char *end;
        x[k] = strtod(p, &end);
        if (end == p)
            return k == 0 ? 0 : -1;
        k++;
        p = end + strspn(end, " \t,");
    }
    return *p ? -1 : k;
}

bf_status bf_pattern_csv_parse(const char *text, const char *name, bf_dataset *out,
                               bf_error *err)
{
    memset(out, 0, sizeof *out);
    size_t cap = 4096;
    float *v = malloc(sizeof(float) * cap);
    char ln[512];
    int n = 0, line = 0, columns = 0;
    bf_status st = v ? BF_OK : bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", name);
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
        ln[strcspn(ln, "\r#")] = 0;
        if (!ln[strspn(ln, " \t,")])
            continue;
        double x[2];
        int k = parse_numbers(ln, x);
        if (k == 0 && n == 0)
            continue; /* header lines before the data */
        if (k <= 0)
            st = bf_error_set(err, BF_ERR_PARSE, "%s:%d: expected 1 or 2 numbers per line",
                              name, line);
        else if (columns && k != columns)
            st = bf_error_set(err, BF_ERR_PARSE, "%s:%d: %d columns, earlier lines have %d",
                              name, line, k, columns);
        else if (!isfinite(x[k - 1]))
            st = bf_error_set(err, BF_ERR_INVALID, "%s:%d: intensity is not finite", name, line);
        else if (n == (1 << 24))
            st = bf_error_set(err, BF_ERR_RANGE, "%s:%d: more than %d points", name, line, n);
        else {
            columns = k;
            if ((size_t)n == cap) {
                float *nv = realloc(v, sizeof(float) * (cap *= 2));
                if (!nv) {
                    st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", name);
                    break;
                }
                v = nv;
            }
            v[n++] = (float)x[k - 1];
        }
    }
    if (st == BF_OK && n == 0)
        st = bf_error_set(err, BF_ERR_PARSE, "%s: no data lines", name);
    if (st != BF_OK) {
        free(v);
        return st;
    }
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
