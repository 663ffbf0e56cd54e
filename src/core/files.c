/* core/files.c — whole-file reads, crash-safe writes (temp + fsync + rename),
 * path and number helpers. */
#define _GNU_SOURCE
#include "braggflow/core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bf_status bf_read_file(const char *path, char **text, size_t *len, bf_error *err)
{
    *text = NULL;
    if (len)
        *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return bf_error_set(err, BF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    bf_status st = BF_OK;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    for (;;) {
        if (n + 1 >= cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", path);
                goto cleanup;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, fp);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(fp)) {
        st = bf_error_set(err, BF_ERR_IO, "%s: read error", path);
        goto cleanup;
    }
    buf[n] = 0;
    *text = buf;
    buf = NULL;
    if (len)
        *len = n;
cleanup:
    free(buf);
    fclose(fp);
    return st;
}

bf_status bf_atomic_begin(bf_atomic_file *af, const char *path, int open_stdio, bf_error *err)
{
    memset(af, 0, sizeof *af);
    if (strlen(path) >= sizeof af->path)
        return bf_error_set(err, BF_ERR_INVALID, "%s: path too long", path);
    snprintf(af->path, sizeof af->path, "%s", path);
    snprintf(af->tmp_path, sizeof af->tmp_path, "%s.tmp.%ld", path, (long)getpid());
    if (open_stdio) {
        af->fp = fopen(af->tmp_path, "wb");
        if (!af->fp)
            return bf_error_set(err, BF_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    return BF_OK;
}

static int fsync_path(const char *path, int directory)
{
    int fd = open(path, directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

bf_status bf_atomic_commit(bf_atomic_file *af, bf_error *err)
{
    if (af->fp) {
        int bad = fflush(af->fp) != 0 || ferror(af->fp) || fsync(fileno(af->fp)) != 0;
        int saved = errno;
        bad |= fclose(af->fp) != 0;
        af->fp = NULL;
        if (bad) {
            unlink(af->tmp_path);
            return bf_error_set(err, BF_ERR_IO, "%s: write failed: %s", af->path,
                                strerror(saved ? saved : EIO));
        }
    } else if (fsync_path(af->tmp_path, 0) != 0) {
        int saved = errno;
        unlink(af->tmp_path);
        return bf_error_set(err, BF_ERR_IO, "%s: fsync failed: %s", af->path, strerror(saved));
    }
    if (rename(af->tmp_path, af->path) != 0) {
        int saved = errno;
        unlink(af->tmp_path);
        return bf_error_set(err, BF_ERR_IO, "%s: cannot rename into place: %s", af->path,
                            strerror(saved));
    }
    /* Make the rename itself durable. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", af->path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = 0;
    else if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    fsync_path(dir, 1);
    af->tmp_path[0] = 0;
    return BF_OK;
}

void bf_atomic_abort(bf_atomic_file *af)
{
    if (af->fp) {
        fclose(af->fp);
        af->fp = NULL;
    }
    if (af->tmp_path[0]) {
        unlink(af->tmp_path);
        af->tmp_path[0] = 0;
    }
}

bf_status bf_path_resolve(const char *base_file, const char *rel, char *out, size_t outsz,
                          bf_error *err)
{
    int n;
    const char *slash = base_file ? strrchr(base_file, '/') : NULL;
    if (rel[0] == '/' || slash == NULL)
        n = snprintf(out, outsz, "%s", rel);
    else
        n = snprintf(out, outsz, "%.*s/%s", (int)(slash - base_file), base_file, rel);
    if (n < 0 || (size_t)n >= outsz)
        return bf_error_set(err, BF_ERR_INVALID, "%s: path too long", rel);
    return BF_OK;
}

int bf_path_has_suffix(const char *path, const char *suffix)
{
    size_t n = strlen(path), m = strlen(suffix);
    return n >= m && strcasecmp(path + n - m, suffix) == 0;
}

int bf_parse_double(const char *s, double *out)
{
    if (s == NULL)
        return -1;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == 0)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
        end++;
    if (*end != 0 || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int bf_parse_doubles(const char *s, double *v, int n)
{
    char *end;
    for (int i = 0; i < n; i++) {
        v[i] = strtod(s, &end);
        if (end == s || !isfinite(v[i]))
            return -1;
        s = end;
    }
    while (*s == ' ')
        s++;
    return *s ? -1 : 0;
}

int bf_parse_long(const char *s, long *out)
{
    if (s == NULL)
        return -1;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == 0)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
        end++;
    if (*end != 0 || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

int bf_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
