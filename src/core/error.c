/* core/error.c — the one error struct every layer fills. */
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
