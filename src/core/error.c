/* core/error.c — the one error struct every layer fills, warnings for what was
 * tolerated; JSON string quoting for the machine-readable records (checkpoint metadata,
 * provenance, --json). */
#include "braggflow/core.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Warnings: the last WARN_SEEN distinct messages are remembered, so a file read once per
 * class, set or rank warns once, not once per read. */
#define WARN_SEEN 64
static pthread_mutex_t warn_lock = PTHREAD_MUTEX_INITIALIZER;
static char warn_seen[WARN_SEEN][256];
static int warn_next;
static void (*warn_handler)(const char *msg, void *user);
static void *warn_user;

void bf_set_warning_handler(void (*handler)(const char *msg, void *user), void *user)
{
    pthread_mutex_lock(&warn_lock);
    warn_handler = handler;
    warn_user = user;
    pthread_mutex_unlock(&warn_lock);
}

void bf_warn(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&warn_lock);
    int seen = 0;
    for (int i = 0; i < WARN_SEEN && !seen; i++)
        seen = !strncmp(warn_seen[i], msg, sizeof warn_seen[i] - 1) && warn_seen[i][0];
    if (!seen) {
        snprintf(warn_seen[warn_next], sizeof warn_seen[0], "%s", msg);
        warn_next = (warn_next + 1) % WARN_SEEN;
        if (warn_handler)
            warn_handler(msg, warn_user);
        else
            fprintf(stderr, "braggflow: warning: %s\n", msg);
    }
    pthread_mutex_unlock(&warn_lock);
}

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
