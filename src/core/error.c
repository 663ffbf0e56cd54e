/* core/error.c — the one error struct every layer fills; JSON string quoting for
 * the machine-readable records (checkpoint metadata, provenance, --json). */
#include "braggflow/core.h"

#include <stdio.h>
#include <string.h>

bf_status bf_error_set(bf_error *err, bf_status code, const char *fmt, ...)
{
    if (err == NULL || err->code != BF_OK)
        return code; /* keep the first, most specific message */
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void bf_error_prefix(bf_error *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
}

const char *bf_json_quote(const char *s, char *out, size_t outsz)
{
    size_t n = 0;
    out[n++] = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        int k = c == '"' || c == '\\' ? snprintf(esc, sizeof esc, "\\%c", c)
                : c < 0x20           ? snprintf(esc, sizeof esc, "\\u%04x", c)
                                     : snprintf(esc, sizeof esc, "%c", c);
        if (n + (size_t)k + 2 > outsz)
            break; /* room for the closing quote and the NUL */
        memcpy(out + n, esc, (size_t)k);
        n += (size_t)k;
    }
    out[n++] = '"';
    out[n] = 0;
    return out;
}

const char *bf_status_name(bf_status st)
{
    switch (st) {
    case BF_OK: return "ok";
    case BF_ERR_IO: return "i/o error";
    case BF_ERR_PARSE: return "parse error";
    case BF_ERR_INVALID: return "invalid input";
    case BF_ERR_NOMEM: return "out of memory";
    case BF_ERR_RANGE: return "out of range";
    case BF_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown error";
}
