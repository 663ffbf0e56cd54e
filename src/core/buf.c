/* core/buf.c — the growable byte buffer (core.h): appends that record an allocation
 * failure instead of returning it, so a writer builds a whole document and checks once. */
#include "braggflow/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_CAP 256

int bf_buf_reserve(bf_buf *b, size_t extra)
{
    if (b->failed)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len - 1) { /* the doubling below must not overflow */
        b->failed = 1;
        return 0;
    }
    size_t need = b->len + extra + 1; /* + the NUL */
    if (need <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : FIRST_CAP;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

void bf_buf_append(bf_buf *b, const void *bytes, size_t n)
{
    if (!bf_buf_reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = 0;
}

void bf_buf_puts(bf_buf *b, const char *s)
{
    bf_buf_append(b, s, strlen(s));
}

void bf_buf_putc(bf_buf *b, char c)
{
    bf_buf_append(b, &c, 1);
}

void bf_buf_printf(bf_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) { /* an encoding error: the text cannot be had, say so at the check */
        b->failed = 1;
        return;
    }
    if (!bf_buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void bf_buf_insert(bf_buf *b, size_t pos, const void *bytes, size_t n)
{
    if (pos > b->len) { /* a caller's bug; dropping the bytes silently would hide it */
        b->failed = 1;
        return;
    }
    if (!bf_buf_reserve(b, n))
        return;
    memmove(b->data + pos + n, b->data + pos, b->len - pos + 1); /* with the NUL */
    if (n)
        memcpy(b->data + pos, bytes, n);
    b->len += n;
}

bf_status bf_buf_check(const bf_buf *b, const char *what, bf_error *err)
{
    if (!b->failed)
        return BF_OK;
    return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory (%zu bytes held, more needed)",
                        what, b->len);
}

void bf_buf_free(bf_buf *b)
{
    free(b->data);
    *b = (bf_buf){0};
}
