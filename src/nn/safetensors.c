/* nn/safetensors.c — safetensors checkpoints (https://huggingface.co/docs/safetensors):
 * u64 little-endian header length N, N bytes of UTF-8 JSON, then the tensor bytes.
 *
 * The header is untrusted input, so the reader has its own small strict JSON parser
 * (RFC 8259: no comments, no trailing commas, valid UTF-8, paired surrogates) that
 * bounds every length, count, offset and nesting level before using it. Parsed
 * tensors point into the owned file buffer; nothing is copied. */
#include "braggflow/nn.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Tensor bytes go between memory and file as they are, and the format is little-endian.
 * A big-endian port would have to swap every element on read and write. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "safetensors data is little-endian; this code does not byte-swap");

/* The reference reader's limit too: a larger header is corrupt, not a model. */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
/* Values we skip (unknown tensor fields) may nest; bound the recursion. */
#define ST_MAX_DEPTH 32
#define ST_MAX_DIMS ((int)(sizeof((bf_st_tensor *)0)->shape / sizeof(int64_t)))
#define ST_NAME_MAX (sizeof((bf_st_tensor *)0)->name - 1)
#define ST_KEY_MAX (sizeof((bf_st_meta *)0)->key - 1)
#define ST_META_KEY "__metadata__"

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    {"F64", 8}, {"F32", 4},  {"F16", 2}, {"BF16", 2}, {"I64", 8},  {"I32", 4},
    {"I16", 2}, {"I8", 1},   {"U64", 8}, {"U32", 4},  {"U16", 2},  {"U8", 1},
    {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

/* Bytes per element, 0 for an unknown dtype. */
static size_t dtype_size(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strlen(dtypes[i].name) == len && memcmp(dtypes[i].name, name, len) == 0)
            return dtypes[i].size;
    return 0;
}

/* A name fit for a one-line message: control bytes shown as '?', long names cut. */
static const char *show(const char *s, size_t len, char out[72])
{
    size_t n = 0;
    for (; n < len && n < 64; n++)
        out[n] = ((unsigned char)s[n] < 0x20 || s[n] == 0x7f) ? '?' : s[n];
    if (n < len) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = 0;
    return out;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), 0 if invalid. s[0] >= 0x80. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (avail < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return need;
}

static int utf8_valid(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq_len(s + i, n - i);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

/* ---- Duplicate detection (sorting pointers keeps the caller's order intact) -------- */

/* qsort hands these pointers to the `const void *` slots of a sorted_ptrs() array. */
static int cmp_tensor_name(const void *a, const void *b)
{
    const bf_st_tensor *x = *(const void *const *)a, *y = *(const void *const *)b;
    return strcmp(x->name, y->name);
}

static int cmp_meta_key(const void *a, const void *b)
{
    const bf_st_meta *x = *(const void *const *)a, *y = *(const void *const *)b;
    return strcmp(x->key, y->key);
}

/* By start, then size, so a zero-size tensor sorts before one starting at the same byte. */
static int cmp_tensor_range(const void *a, const void *b)
{
    const bf_st_tensor *x = *(const void *const *)a, *y = *(const void *const *)b;
    const char *px = x->data, *py = y->data;
    if (px != py)
        return px < py ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

/* Sorted array of pointers to the n items of base (each `size` bytes); NULL when out
 * of memory. n > 0. */
static const void **sorted_ptrs(const void *base, size_t size, int n,
                                int (*cmp)(const void *, const void *))
{
    const void **p = malloc((size_t)n * sizeof *p);
    if (!p)
        return NULL;
    for (int i = 0; i < n; i++)
        p[i] = (const char *)base + (size_t)i * size;
    qsort(p, (size_t)n, sizeof *p, cmp);
    return p;
}

/* Returns BF_OK and *dup = NULL, or the first of two equal names (keys) in *dup. */
static bf_status find_duplicate(const void *base, size_t size, int n,
                                int (*cmp)(const void *, const void *), const void **dup)
{
    *dup = NULL;
    if (n < 2)
        return BF_OK;
    const void **p = sorted_ptrs(base, size, n, cmp);
    if (!p)
        return BF_ERR_NOMEM;
    for (int i = 1; i < n && !*dup; i++)
        if (cmp(&p[i - 1], &p[i]) == 0)
            *dup = p[i];
    free(p);
    return BF_OK;
}

/* Bytes a shape of elem_size-byte elements holds, in *nbytes; -1 when that overflows. */
static int shape_nbytes(const int64_t *shape, int ndim, size_t elem_size, size_t *nbytes)
{
    uint64_t count = 1;
    int zero = 0, overflow = 0;
    for (int i = 0; i < ndim; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (d == 0)
            zero = 1;
        else if (count > UINT64_MAX / d)
            overflow = 1;
        else
            count *= d;
    }
    if (zero) {
        *nbytes = 0; /* [huge, huge, 0] holds nothing: not an overflow */
        return 0;
    }
    if (overflow || count > SIZE_MAX / elem_size)
        return -1;
    *nbytes = (size_t)(count * elem_size);
    return 0;
}

/* ---- Writer ------------------------------------------------------------------------ */

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} strbuf;

static void sb_put(strbuf *sb, const char *s, size_t k)
{
    if (sb->oom)
        return;
    if (sb->len + k + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 256;
        while (sb->len + k + 1 > cap)
            cap *= 2;
        char *bigger = realloc(sb->buf, cap);
        if (!bigger) {
            sb->oom = 1;
            return;
        }
        sb->buf = bigger;
        sb->cap = cap;
    }
    memcpy(sb->buf + sb->len, s, k);
    sb->len += k;
    sb->buf[sb->len] = 0;
}

static void sb_puts(strbuf *sb, const char *s) { sb_put(sb, s, strlen(s)); }

static void sb_u64(strbuf *sb, uint64_t v)
{
    char num[24];
    int k = snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    sb_put(sb, num, (size_t)k);
}

/* JSON string: quotes and backslashes escaped, control bytes as \u00XX; UTF-8 as is. */
static void sb_json_string(strbuf *sb, const char *s)
{
    sb_put(sb, "\"", 1);
    for (const char *run = s;; s++) {
        unsigned char c = (unsigned char)*s;
        if (c != 0 && c != '"' && c != '\\' && c >= 0x20)
            continue;
        sb_put(sb, run, (size_t)(s - run));
        if (c == 0)
            break;
        char esc[8];
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof esc, "\\%c", c);
        else
            snprintf(esc, sizeof esc, "\\u%04x", c);
        sb_puts(sb, esc);
        run = s + 1;
    }
    sb_put(sb, "\"", 1);
}

/* Everything a reader would reject is refused here, before a file is touched. */
static bf_status check_write_args(const char *path, const bf_st_tensor *tensors, int n_tensors,
                                  const bf_st_meta *meta, int n_meta, bf_error *err)
{
    char shown[72];
    if (n_tensors < 0 || n_meta < 0 || (n_tensors > 0 && !tensors) || (n_meta > 0 && !meta))
        return bf_error_set(err, BF_ERR_INVALID, "%s: bad tensor or metadata list", path);
    uint64_t total = 0;
    for (int i = 0; i < n_tensors; i++) {
        const bf_st_tensor *t = &tensors[i];
        size_t name_len = strnlen(t->name, sizeof t->name);
        if (name_len == sizeof t->name)
            return bf_error_set(err, BF_ERR_INVALID, "%s: tensor %d: name not NUL-terminated",
                                path, i);
        const char *nm = show(t->name, name_len, shown);
        if (!utf8_valid(t->name) || strcmp(t->name, ST_META_KEY) == 0)
            return bf_error_set(err, BF_ERR_INVALID,
                                "%s: tensor '%s': name is not valid UTF-8 or is reserved", path,
                                nm);
        size_t dlen = strnlen(t->dtype, sizeof t->dtype);
        size_t esize = dtype_size(t->dtype, dlen);
        if (esize == 0)
            return bf_error_set(err, BF_ERR_INVALID, "%s: tensor '%s': unknown dtype '%.8s'",
                                path, nm, t->dtype);
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS)
            return bf_error_set(err, BF_ERR_INVALID, "%s: tensor '%s': ndim %d not in 0..%d",
                                path, nm, t->ndim, ST_MAX_DIMS);
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0)
                return bf_error_set(err, BF_ERR_INVALID,
                                    "%s: tensor '%s': shape[%d] = %lld is negative", path, nm,
                                    d, (long long)t->shape[d]);
        size_t nbytes;
        if (shape_nbytes(t->shape, t->ndim, esize, &nbytes) != 0 || nbytes != t->nbytes)
            return bf_error_set(err, BF_ERR_INVALID,
                                "%s: tensor '%s': nbytes %zu does not match its shape and "
                                "dtype %s",
                                path, nm, t->nbytes, t->dtype);
        if (nbytes > 0 && !t->data)
            return bf_error_set(err, BF_ERR_INVALID, "%s: tensor '%s': no data", path, nm);
        if (nbytes > UINT64_MAX - total)
            return bf_error_set(err, BF_ERR_INVALID, "%s: tensors too large in total", path);
        total += nbytes;
    }
    for (int i = 0; i < n_meta; i++) {
        size_t key_len = strnlen(meta[i].key, sizeof meta[i].key);
        if (key_len == sizeof meta[i].key)
            return bf_error_set(err, BF_ERR_INVALID, "%s: metadata %d: key not NUL-terminated",
                                path, i);
        const char *k = show(meta[i].key, key_len, shown);
        if (!utf8_valid(meta[i].key) || !meta[i].value || !utf8_valid(meta[i].value))
            return bf_error_set(err, BF_ERR_INVALID,
                                "%s: metadata '%s': key or value missing or not valid UTF-8",
                                path, k);
    }
    const void *dup; /* both structs start with their name */
    if (find_duplicate(tensors, sizeof *tensors, n_tensors, cmp_tensor_name, &dup) != BF_OK)
        return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", path);
    if (dup)
        return bf_error_set(err, BF_ERR_INVALID, "%s: duplicate tensor name '%s'", path,
                            show(dup, strlen(dup), shown));
    if (find_duplicate(meta, sizeof *meta, n_meta, cmp_meta_key, &dup) != BF_OK)
        return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", path);
    if (dup)
        return bf_error_set(err, BF_ERR_INVALID, "%s: duplicate metadata key '%s'", path,
                            show(dup, strlen(dup), shown));
    return BF_OK;
}

bf_status bf_safetensors_write(const char *path, const bf_st_tensor *tensors, int n_tensors,
                               const bf_st_meta *meta, int n_meta, bf_error *err)
{
    bf_status st = check_write_args(path, tensors, n_tensors, meta, n_meta, err);
    if (st != BF_OK)
        return st;
    strbuf h = {0};
    bf_atomic_file af;
    int begun = 0;

    /* Metadata first, as the Python writer does; then tensors, contiguous, in order. */
    sb_puts(&h, "{");
    if (n_meta > 0) {
        sb_puts(&h, "\"" ST_META_KEY "\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i)
                sb_puts(&h, ",");
            sb_json_string(&h, meta[i].key);
            sb_puts(&h, ":");
            sb_json_string(&h, meta[i].value);
        }
        sb_puts(&h, "}");
    }
    uint64_t offset = 0;
    for (int i = 0; i < n_tensors; i++) {
        const bf_st_tensor *t = &tensors[i];
        if (i || n_meta > 0)
            sb_puts(&h, ",");
        sb_json_string(&h, t->name);
        sb_puts(&h, ":{\"dtype\":");
        sb_json_string(&h, t->dtype);
        sb_puts(&h, ",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d)
                sb_puts(&h, ",");
            sb_u64(&h, (uint64_t)t->shape[d]);
        }
        sb_puts(&h, "],\"data_offsets\":[");
        sb_u64(&h, offset);
        sb_puts(&h, ",");
        offset += t->nbytes;
        sb_u64(&h, offset);
        sb_puts(&h, "]}");
    }
    sb_puts(&h, "}");
    /* Spaces up to a multiple of 8 so the data region starts 8-byte aligned. */
    while (!h.oom && h.len % 8)
        sb_puts(&h, " ");
    if (h.oom) {
        st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (h.len > ST_MAX_HEADER) {
        st = bf_error_set(err, BF_ERR_INVALID, "%s: header of %zu bytes exceeds %llu", path,
                          h.len, (unsigned long long)ST_MAX_HEADER);
        goto done;
    }

    begun = 1;
    st = bf_atomic_begin(&af, path, 1, err);
    if (st != BF_OK)
        goto done;
    errno = 0; /* so a short write reports its own cause */
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    int ok = fwrite(len8, 1, 8, af.fp) == 8 && fwrite(h.buf, 1, h.len, af.fp) == h.len;
    for (int i = 0; ok && i < n_tensors; i++)
        if (tensors[i].nbytes > 0)
            ok = fwrite(tensors[i].data, 1, tensors[i].nbytes, af.fp) == tensors[i].nbytes;
    if (!ok) {
        st = bf_error_set(err, BF_ERR_IO, "%s: write failed: %s", path,
                          strerror(errno ? errno : EIO));
        goto done;
    }
    st = bf_atomic_commit(&af, err);
done:
    if (st != BF_OK && begun)
        bf_atomic_abort(&af);
    free(h.buf);
    return st;
}

/* ---- JSON header parser -------------------------------------------------------------- */

typedef struct {
    const unsigned char *s;  /* the header bytes */
    size_t n, pos;
    const char *name;        /* the file, for messages */
    bf_error *err;
    char *str;               /* the last decoded string, NUL-terminated (may hold NULs) */
    size_t str_len, str_cap;
} jparser;

typedef struct {
    int neg, is_int, overflow;
    uint64_t mag;
} jnum;

/* Syntax errors: the byte offset into the header says where. */
__attribute__((format(printf, 2, 3))) static bf_status jfail(jparser *p, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bf_error_set(p->err, BF_ERR_PARSE, "%s: header byte %zu: invalid JSON: %s", p->name,
                        p->pos, msg);
}

static void skip_ws(jparser *p)
{
    while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                             p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

/* The next non-blank byte, or -1 at the end of the header. */
static int peek(jparser *p)
{
    skip_ws(p);
    return p->pos < p->n ? p->s[p->pos] : -1;
}

/* After an element or member: ',' (returns 1: more follow) or the closing
 * character (returns 0), both consumed; anything else is a JSON error (-1, *st). */
static int next_or_close(jparser *p, char close, bf_status *st)
{
    int c = peek(p);
    if (c != ',' && c != close) {
        *st = jfail(p, "expected ',' or '%c'", close);
        return -1;
    }
    p->pos++;
    return c == ',';
}

static bf_status expect(jparser *p, char c, const char *after)
{
    if (peek(p) != c)
        return p->pos < p->n ? jfail(p, "expected '%c' %s", c, after)
                             : jfail(p, "header ends where '%c' was expected %s", c, after);
    p->pos++;
    return BF_OK;
}

static bf_status str_append(jparser *p, const void *bytes, size_t k)
{
    if (p->str_len + k + 1 > p->str_cap) {
        size_t cap = p->str_cap ? p->str_cap : 64;
        while (p->str_len + k + 1 > cap)
            cap *= 2;
        char *bigger = realloc(p->str, cap);
        if (!bigger)
            return bf_error_set(p->err, BF_ERR_NOMEM, "%s: out of memory", p->name);
        p->str = bigger;
        p->str_cap = cap;
    }
    memcpy(p->str + p->str_len, bytes, k);
    p->str_len += k;
    p->str[p->str_len] = 0;
    return BF_OK;
}

static int hex4(const unsigned char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

/* Decodes a \uXXXX escape (a surrogate pair takes two) at p->pos into UTF-8. */
static bf_status parse_u_escape(jparser *p)
{
    const unsigned char *s = p->s + p->pos;
    size_t avail = p->n - p->pos;
    unsigned cp, lo;
    size_t used = 6;
    if (avail < 6 || hex4(s + 2, &cp) != 0)
        return jfail(p, "\\u must be followed by 4 hex digits");
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return jfail(p, "unpaired low surrogate \\u%04X", cp);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (avail < 12 || s[6] != '\\' || s[7] != 'u' || hex4(s + 8, &lo) != 0 || lo < 0xDC00 ||
            lo > 0xDFFF)
            return jfail(p, "high surrogate \\u%04X not followed by a low surrogate", cp);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        used = 12;
    }
    unsigned char u[4];
    size_t k;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | cp >> 6);
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        u[0] = (unsigned char)(0xF0 | cp >> 18);
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (unsigned char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    p->pos += used;
    return str_append(p, u, k);
}

/* Parses the string at p->pos (the opening quote) into p->str / p->str_len. */
static bf_status parse_string(jparser *p)
{
    bf_status st;
    p->str_len = 0;
    if ((st = str_append(p, "", 0)) != BF_OK)
        return st;
    p->pos++;
    for (;;) {
        size_t run = p->pos;
        while (p->pos < p->n && p->s[p->pos] >= 0x20 && p->s[p->pos] < 0x80 &&
               p->s[p->pos] != '"' && p->s[p->pos] != '\\')
            p->pos++;
        if ((st = str_append(p, p->s + run, p->pos - run)) != BF_OK)
            return st;
        if (p->pos >= p->n)
            return jfail(p, "unterminated string");
        unsigned char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            return BF_OK;
        }
        if (c < 0x20)
            return jfail(p, "control byte 0x%02x in a string must be escaped", c);
        if (c >= 0x80) {
            size_t k = utf8_seq_len(p->s + p->pos, p->n - p->pos);
            if (k == 0)
                return jfail(p, "invalid UTF-8 in a string");
            if ((st = str_append(p, p->s + p->pos, k)) != BF_OK)
                return st;
            p->pos += k;
            continue;
        }
        /* A backslash escape. */
        if (p->pos + 1 >= p->n)
            return jfail(p, "unterminated string");
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        unsigned char e = p->s[p->pos + 1];
        const char *hit = e ? strchr(from, e) : NULL;
        if (hit) {
            if ((st = str_append(p, &to[hit - from], 1)) != BF_OK)
                return st;
            p->pos += 2;
        } else if (e == 'u') {
            if ((st = parse_u_escape(p)) != BF_OK)
                return st;
        } else {
            return jfail(p, "unknown escape '\\%c'", e >= 0x20 && e < 0x7f ? e : '?');
        }
    }
}

static int is_digit(const jparser *p)
{
    return p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9';
}

/* RFC 8259 number grammar; integers keep their magnitude (saturating into overflow). */
static bf_status parse_number(jparser *p, jnum *num)
{
    memset(num, 0, sizeof *num);
    num->is_int = 1;
    if (p->s[p->pos] == '-') {
        num->neg = 1;
        p->pos++;
    }
    if (!is_digit(p))
        return jfail(p, "a number needs digits");
    if (p->s[p->pos] == '0') {
        p->pos++;
        if (is_digit(p))
            return jfail(p, "leading zero in a number");
    } else {
        for (; is_digit(p); p->pos++) {
            unsigned d = p->s[p->pos] - '0';
            if (num->mag > (UINT64_MAX - d) / 10)
                num->overflow = 1;
            else
                num->mag = num->mag * 10 + d;
        }
    }
    if (p->pos < p->n && p->s[p->pos] == '.') {
        num->is_int = 0;
        p->pos++;
        if (!is_digit(p))
            return jfail(p, "a fraction needs digits");
        while (is_digit(p))
            p->pos++;
    }
    if (p->pos < p->n && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        num->is_int = 0;
        p->pos++;
        if (p->pos < p->n && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (!is_digit(p))
            return jfail(p, "an exponent needs digits");
        while (is_digit(p))
            p->pos++;
    }
    return BF_OK;
}

/* Validates and skips any value (fields we do not use), at most ST_MAX_DEPTH deep. */
static bf_status skip_value(jparser *p, int depth)
{
    bf_status st;
    if (depth > ST_MAX_DEPTH)
        return jfail(p, "nesting deeper than %d levels", ST_MAX_DEPTH);
    int c = peek(p);
    if (c == '"')
        return parse_string(p);
    if (c == '-' || (c >= '0' && c <= '9')) {
        jnum num;
        return parse_number(p, &num);
    }
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(words[i]);
        if (p->n - p->pos >= k && memcmp(p->s + p->pos, words[i], k) == 0) {
            p->pos += k;
            return BF_OK;
        }
    }
    if (c != '[' && c != '{')
        return c < 0 ? jfail(p, "header ends where a value was expected")
                     : jfail(p, "unexpected byte 0x%02x where a value was expected", c);
    char close = c == '[' ? ']' : '}';
    p->pos++;
    if (peek(p) == close) {
        p->pos++;
        return BF_OK;
    }
    for (;;) {
        if (close == '}') {
            if (peek(p) != '"')
                return jfail(p, "expected a string key");
            if ((st = parse_string(p)) != BF_OK || (st = expect(p, ':', "after a key")) != BF_OK)
                return st;
        }
        if ((st = skip_value(p, depth + 1)) != BF_OK)
            return st;
        int more = next_or_close(p, close, &st);
        if (more < 0)
            return st;
        if (!more)
            return BF_OK;
    }
}

/* ---- Header schema --------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static bf_status sfail(jparser *p, bf_status code,
                                                             const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return bf_error_set(p->err, code, "%s: %s", p->name, msg);
}

static int str_is(const jparser *p, const char *lit)
{
    return p->str_len == strlen(lit) && memcmp(p->str, lit, p->str_len) == 0;
}

/* [n, ...] of at most max non-negative integers <= limit. */
static bf_status parse_uint_array(jparser *p, const char *tname, const char *field,
                                  uint64_t *vals, int max, uint64_t limit, int *count)
{
    bf_status st;
    *count = 0;
    if (peek(p) != '[')
        return sfail(p, BF_ERR_PARSE, "tensor '%s': %s: expected an array of integers", tname,
                     field);
    p->pos++;
    if (peek(p) == ']') {
        p->pos++;
        return BF_OK;
    }
    for (;;) {
        int c = peek(p);
        if (c != '-' && !(c >= '0' && c <= '9'))
            return sfail(p, BF_ERR_PARSE, "tensor '%s': %s: entries must be integers", tname,
                         field);
        jnum num;
        if ((st = parse_number(p, &num)) != BF_OK)
            return st;
        if (!num.is_int)
            return sfail(p, BF_ERR_PARSE, "tensor '%s': %s: entry %d is not an integer", tname,
                         field, *count);
        if (num.neg && num.mag != 0)
            return sfail(p, BF_ERR_INVALID, "tensor '%s': %s: entry %d is negative (-%llu)",
                         tname, field, *count, (unsigned long long)num.mag);
        if (num.overflow || num.mag > limit)
            return sfail(p, BF_ERR_INVALID, "tensor '%s': %s: entry %d is too large", tname,
                         field, *count);
        if (*count == max)
            return sfail(p, BF_ERR_INVALID, "tensor '%s': %s: more than %d entries", tname,
                         field, max);
        vals[(*count)++] = num.neg ? 0 : num.mag;
        int more = next_or_close(p, ']', &st);
        if (more < 0)
            return st;
        if (!more)
            return BF_OK;
    }
}

/* One tensor entry; its name is in p->str. data_len: bytes after the header. */
static bf_status parse_tensor(jparser *p, bf_st_tensor *t, const unsigned char *data,
                              size_t data_len)
{
    bf_status st;
    char shown[72];
    memset(t, 0, sizeof *t);
    const char *tname = show(p->str, p->str_len, shown);
    if (p->str_len > ST_NAME_MAX)
        return sfail(p, BF_ERR_INVALID, "tensor '%s': name longer than %zu bytes", tname,
                     ST_NAME_MAX);
    if (memchr(p->str, 0, p->str_len))
        return sfail(p, BF_ERR_INVALID, "tensor '%s': NUL in the name", tname);
    memcpy(t->name, p->str, p->str_len);
    if (peek(p) != '{')
        return sfail(p, BF_ERR_PARSE, "tensor '%s': expected an object", tname);
    p->pos++;
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    uint64_t shape[ST_MAX_DIMS], offs[2] = {0, 0};
    size_t esize = 0;
    int n_offs = 0;
    if (peek(p) == '}') {
        p->pos++;
        goto fields_done;
    }
    for (;;) {
        if (peek(p) != '"')
            return jfail(p, "expected a string key");
        if ((st = parse_string(p)) != BF_OK)
            return st;
        int *seen = str_is(p, "dtype")          ? &have_dtype
                    : str_is(p, "shape")        ? &have_shape
                    : str_is(p, "data_offsets") ? &have_offsets
                                                : NULL;
        if (seen && *seen)
            return sfail(p, BF_ERR_PARSE, "tensor '%s': duplicate field \"%s\"", tname, p->str);
        if (seen)
            *seen = 1;
        if ((st = expect(p, ':', "after a key")) != BF_OK)
            return st;
        if (seen == &have_dtype) {
            if (peek(p) != '"')
                return sfail(p, BF_ERR_PARSE, "tensor '%s': dtype: expected a string", tname);
            if ((st = parse_string(p)) != BF_OK)
                return st;
            esize = p->str_len < sizeof t->dtype ? dtype_size(p->str, p->str_len) : 0;
            if (esize == 0) {
                char sd[72];
                return sfail(p, BF_ERR_INVALID, "tensor '%s': unknown dtype '%s'", tname,
                             show(p->str, p->str_len, sd));
            }
            memcpy(t->dtype, p->str, p->str_len);
        } else if (seen == &have_shape) {
            if ((st = parse_uint_array(p, tname, "shape", shape, ST_MAX_DIMS, INT64_MAX,
                                       &t->ndim)) != BF_OK)
                return st;
            for (int d = 0; d < t->ndim; d++)
                t->shape[d] = (int64_t)shape[d];
        } else if (seen == &have_offsets) {
            if ((st = parse_uint_array(p, tname, "data_offsets", offs, 2, UINT64_MAX,
                                       &n_offs)) != BF_OK)
                return st;
            if (n_offs != 2)
                return sfail(p, BF_ERR_INVALID, "tensor '%s': data_offsets: expected [begin, end]",
                             tname);
        } else if ((st = skip_value(p, 3)) != BF_OK) {
            return st; /* unknown field: ignored, as the reference reader does */
        }
        int more = next_or_close(p, '}', &st);
        if (more < 0)
            return st;
        if (!more)
            break;
    }
fields_done:
    if (!have_dtype || !have_shape || !have_offsets)
        return sfail(p, BF_ERR_INVALID, "tensor '%s': missing \"%s\"", tname,
                     !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    if (offs[1] < offs[0])
        return sfail(p, BF_ERR_INVALID, "tensor '%s': data_offsets [%llu, %llu]: end < begin",
                     tname, (unsigned long long)offs[0], (unsigned long long)offs[1]);
    if (offs[1] > data_len)
        return sfail(p, BF_ERR_INVALID,
                     "tensor '%s': data_offsets end %llu is beyond the %zu-byte data region",
                     tname, (unsigned long long)offs[1], data_len);
    if (shape_nbytes(t->shape, t->ndim, esize, &t->nbytes) != 0)
        return sfail(p, BF_ERR_INVALID, "tensor '%s': shape element count overflows", tname);
    if (offs[1] - offs[0] != t->nbytes)
        return sfail(p, BF_ERR_INVALID,
                     "tensor '%s': data_offsets hold %llu bytes, shape and %s need %zu", tname,
                     (unsigned long long)(offs[1] - offs[0]), t->dtype, t->nbytes);
    t->data = data + offs[0];
    return BF_OK;
}

/* "__metadata__": {"key": "value", ...}. */
static bf_status parse_metadata(jparser *p, bf_safetensors *out)
{
    bf_status st;
    char shown[72];
    if (peek(p) != '{')
        return sfail(p, BF_ERR_PARSE, ST_META_KEY ": expected an object of strings");
    p->pos++;
    if (peek(p) == '}') {
        p->pos++;
        return BF_OK;
    }
    int cap = 0;
    for (;;) {
        if (peek(p) != '"')
            return jfail(p, "expected a string key");
        if ((st = parse_string(p)) != BF_OK)
            return st;
        const char *k = show(p->str, p->str_len, shown);
        if (p->str_len > ST_KEY_MAX || memchr(p->str, 0, p->str_len))
            return sfail(p, BF_ERR_INVALID, ST_META_KEY ": key '%s' longer than %zu bytes or "
                         "holds a NUL", k, ST_KEY_MAX);
        if (out->n_meta == cap) {
            if (cap > INT_MAX / 4)
                return sfail(p, BF_ERR_INVALID, ST_META_KEY ": too many entries");
            int ncap = cap ? 2 * cap : 8;
            bf_st_meta *bigger = realloc(out->meta, (size_t)ncap * sizeof *bigger);
            if (!bigger)
                return sfail(p, BF_ERR_NOMEM, "out of memory");
            out->meta = bigger;
            cap = ncap;
        }
        bf_st_meta *m = &out->meta[out->n_meta];
        memset(m, 0, sizeof *m);
        memcpy(m->key, p->str, p->str_len);
        if ((st = expect(p, ':', "after a key")) != BF_OK)
            return st;
        if (peek(p) != '"')
            return sfail(p, BF_ERR_INVALID, ST_META_KEY ": value of '%s' is not a string",
                         show(m->key, strlen(m->key), shown));
        if ((st = parse_string(p)) != BF_OK)
            return st;
        if (memchr(p->str, 0, p->str_len))
            return sfail(p, BF_ERR_INVALID, ST_META_KEY ": value of '%s' holds a NUL",
                         show(m->key, strlen(m->key), shown));
        m->value = malloc(p->str_len + 1);
        if (!m->value)
            return sfail(p, BF_ERR_NOMEM, "out of memory");
        memcpy(m->value, p->str, p->str_len + 1);
        out->n_meta++; /* counted only once complete, so free() sees no half entry */
        int more = next_or_close(p, '}', &st);
        if (more < 0)
            return st;
        if (!more)
            return BF_OK;
    }
}

/* The whole header: {"name": {...}, "__metadata__": {...}, ...}, then only blanks. */
static bf_status parse_header(jparser *p, bf_safetensors *out, const unsigned char *data,
                              size_t data_len)
{
    bf_status st;
    if (peek(p) != '{')
        return p->pos < p->n ? bf_error_set(p->err, BF_ERR_PARSE,
                                            "%s: header byte %zu: the header is not a JSON object",
                                            p->name, p->pos)
                             : jfail(p, "the header is empty");
    p->pos++;
    int cap = 0, have_meta = 0;
    if (peek(p) == '}') {
        p->pos++;
        goto entries_done;
    }
    for (;;) {
        if (peek(p) != '"')
            return jfail(p, "expected a string key");
        if ((st = parse_string(p)) != BF_OK)
            return st;
        if (str_is(p, ST_META_KEY)) {
            if (have_meta)
                return sfail(p, BF_ERR_INVALID, "duplicate " ST_META_KEY);
            have_meta = 1;
            if ((st = expect(p, ':', "after a key")) != BF_OK ||
                (st = parse_metadata(p, out)) != BF_OK)
                return st;
        } else {
            if (out->n_tensors == cap) {
                if (cap > INT_MAX / 4)
                    return sfail(p, BF_ERR_INVALID, "too many tensors");
                int ncap = cap ? 2 * cap : 16;
                bf_st_tensor *bigger = realloc(out->tensors, (size_t)ncap * sizeof *bigger);
                if (!bigger)
                    return sfail(p, BF_ERR_NOMEM, "out of memory");
                out->tensors = bigger;
                cap = ncap;
            }
            /* The name stays in p->str: expect() only moves past blanks and ':'. */
            bf_st_tensor *t = &out->tensors[out->n_tensors];
            if ((st = expect(p, ':', "after a key")) != BF_OK)
                return st;
            if ((st = parse_tensor(p, t, data, data_len)) != BF_OK)
                return st;
            out->n_tensors++;
        }
        int more = next_or_close(p, '}', &st);
        if (more < 0)
            return st;
        if (!more)
            break;
    }
entries_done:
    skip_ws(p);
    if (p->pos != p->n)
        return jfail(p, "unexpected bytes after the header object");
    return BF_OK;
}

/* Names unique; byte ranges ordered without overlap (gaps are tolerated). */
static bf_status check_tensors(jparser *p, const bf_safetensors *out)
{
    char s1[72], s2[72];
    const void *dup;
    if (find_duplicate(out->tensors, sizeof *out->tensors, out->n_tensors, cmp_tensor_name,
                       &dup) != BF_OK)
        return sfail(p, BF_ERR_NOMEM, "out of memory");
    if (dup) {
        const char *nm = (const char *)dup; /* both structs start with their name */
        return sfail(p, BF_ERR_INVALID, "duplicate tensor name '%s'", show(nm, strlen(nm), s1));
    }
    if (find_duplicate(out->meta, sizeof *out->meta, out->n_meta, cmp_meta_key, &dup) != BF_OK)
        return sfail(p, BF_ERR_NOMEM, "out of memory");
    if (dup) {
        const char *nm = (const char *)dup;
        return sfail(p, BF_ERR_INVALID, "duplicate " ST_META_KEY " key '%s'",
                     show(nm, strlen(nm), s1));
    }
    if (out->n_tensors < 2)
        return BF_OK;
    const void **by_start = sorted_ptrs(out->tensors, sizeof *out->tensors, out->n_tensors,
                                        cmp_tensor_range);
    if (!by_start)
        return sfail(p, BF_ERR_NOMEM, "out of memory");
    bf_status st = BF_OK;
    for (int i = 1; i < out->n_tensors; i++) {
        const bf_st_tensor *a = by_start[i - 1], *b = by_start[i];
        if ((const char *)b->data < (const char *)a->data + a->nbytes) {
            st = sfail(p, BF_ERR_INVALID, "tensors '%s' and '%s' overlap in the data region",
                       show(a->name, strlen(a->name), s1), show(b->name, strlen(b->name), s2));
            break;
        }
    }
    free(by_start);
    return st;
}

bf_status bf_safetensors_parse(void *buf, size_t len, const char *name, bf_safetensors *out,
                               bf_error *err)
{
    if (!name)
        name = "safetensors";
    if (!out) {
        free(buf);
        return bf_error_set(err, BF_ERR_INVALID, "%s: no output", name);
    }
    memset(out, 0, sizeof *out);
    /* Owned from here on: every failure below releases it through bf_safetensors_free. */
    out->buffer = buf;
    out->buffer_len = len;
    const unsigned char *b = buf;
    jparser p = {.name = name, .err = err};
    bf_status st = BF_OK;
    if (len < 8 || !b) {
        st = bf_error_set(err, BF_ERR_PARSE, "%s: %zu bytes: shorter than the 8-byte header "
                          "length", name, len);
        goto done;
    }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)b[i] << (8 * i);
    if (hlen > ST_MAX_HEADER) {
        st = bf_error_set(err, BF_ERR_PARSE, "%s: header length %llu is absurd (limit %llu)",
                          name, (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
        goto done;
    }
    if (hlen > len - 8) {
        st = bf_error_set(err, BF_ERR_PARSE,
                          "%s: header length %llu exceeds the %zu bytes after it (truncated?)",
                          name, (unsigned long long)hlen, len - 8);
        goto done;
    }
    p.s = b + 8;
    p.n = (size_t)hlen;
    st = parse_header(&p, out, b + 8 + hlen, len - 8 - (size_t)hlen);
    if (st == BF_OK)
        st = check_tensors(&p, out);
done:
    free(p.str);
    if (st != BF_OK)
        bf_safetensors_free(out);
    return st;
}

bf_status bf_safetensors_read(const char *path, bf_safetensors *out, bf_error *err)
{
    memset(out, 0, sizeof *out);
    char *buf;
    size_t len;
    bf_status st = bf_read_file(path, &buf, &len, err);
    if (st != BF_OK)
        return st;
    return bf_safetensors_parse(buf, len, path, out, err);
}

void bf_safetensors_free(bf_safetensors *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->n_meta; i++)
        free(st->meta[i].value);
    free(st->meta);
    free(st->tensors);
    free(st->buffer);
    memset(st, 0, sizeof *st);
}

const bf_st_tensor *bf_safetensors_find(const bf_safetensors *st, const char *name)
{
    if (!st || !name)
        return NULL;
    for (int i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0)
            return &st->tensors[i];
    return NULL;
}

const char *bf_safetensors_meta(const bf_safetensors *st, const char *key)
{
    if (!st || !key)
        return NULL;
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[i].key, key) == 0)
            return st->meta[i].value;
    return NULL;
}
