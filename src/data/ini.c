/* data/ini.c — a tokenizer for braggflow's INI dialect (braggflow/data.h):
 * "[section]" and "key = value" / "key: value" lines, ';' and '#' comments at
 * a line start or after a blank, indentation ignored, no multi-line values.
 * It reads line by line itself (no inih), so every callback gets the line
 * number the user sees in the file. */
#include <stdlib.h>
#include <string.h>

#include "braggflow/data.h"

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

static bf_status syntax(bf_error *err, const char *name, int line, const char *what, const char *b,
                        size_t n)
{
    return bf_error_set(err, BF_ERR_PARSE, "%s:%d: '%.*s' %s", name, line,
                        (int)(n > 80 ? 80 : n), b, what);
}

bf_status bf_ini_parse(const char *text, const char *name, bf_ini_fn fn, void *user,
                       bf_error *err)
{
    if (!name)
        name = "(config)";
    size_t len = strlen(text);
    char *buf = malloc(len + 1);
    if (!buf)
        return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", name);
    memcpy(buf, text, len + 1);

    bf_status st = BF_OK;
    char *s = buf, *section = NULL;
    int line = 0;
    if ((unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
        s += 3; /* UTF-8 byte order mark */
    while (*s && st == BF_OK) {
        line++;
        char *eol = strchr(s, '\n');
        char *b = s, *e = eol ? eol : s + strlen(s);
        s = eol ? eol + 1 : e;
        while (b < e && is_blank(*b))
            b++;
        for (char *q = b; q < e; q++)
            if ((*q == ';' || *q == '#') && (q == b || is_blank(q[-1]))) {
                e = q; /* comment to the end of the line */
                break;
            }
        while (e > b && is_blank(e[-1]))
            e--;
        size_t n = (size_t)(e - b);
        if (n == 0)
            continue;
        *e = 0;
        if (*b == '[') {
            if (e[-1] != ']' || n < 3) {
                st = syntax(err, name, line, "is not a '[section]' header", b, n);
                break;
            }
            char *sb = b + 1, *se = e - 1;
            while (sb < se && is_blank(*sb))
                sb++;
            while (se > sb && is_blank(se[-1]))
                se--;
            *se = 0;
            if (sb == se || strpbrk(sb, "[]")) {
                st = syntax(err, name, line, "is not a '[section]' header", b, n);
                break;
            }
            section = sb;
            st = fn(user, section, NULL, NULL, line, err);
            continue;
        }
        char *sep = b;
        while (sep < e && *sep != '=' && *sep != ':')
            sep++;
        if (sep == e) {
            st = syntax(err, name, line, "is not 'key = value' or '[section]'", b, n);
            break;
        }
        if (sep == b) {
            st = bf_error_set(err, BF_ERR_PARSE, "%s:%d: missing key before '%c'", name, line,
                              *sep);
            break;
        }
        if (!section) {
            st = syntax(err, name, line, "comes before any [section]", b, n);
            break;
        }
        char *ke = sep, *v = sep + 1;
        while (ke > b && is_blank(ke[-1]))
            ke--;
        *ke = 0;
        while (*v && is_blank(*v))
            v++;
        st = fn(user, section, b, v, line, err);
    }
    /* a callback that failed without a message still names the file and line */
    if (st != BF_OK && err && err->code == BF_OK)
        bf_error_set(err, st, "%s:%d: %s", name, line, bf_status_name(st));
    free(buf);
    return st;
}
