/* braggflow/core.h — errors, reproducible RNG, timing, progress, hashing, a growable
 * byte buffer, half-precision floats and crash-safe file writes shared by every layer.
 *
 * Conventions (docs/CONTRIBUTING.md): library functions return bf_status and
 * fill a bf_error with a one-line message naming the file, line or field; they
 * never print and never exit. The caller owns what it allocates. */
#ifndef BRAGGFLOW_CORE_H
#define BRAGGFLOW_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BF_VERSION "0.1.0"

typedef enum {
    BF_OK = 0,
    BF_ERR_IO,          /* cannot open/read/write a file */
    BF_ERR_PARSE,       /* malformed input text (CIF, instprm, INI, number) */
    BF_ERR_INVALID,     /* well-formed but physically or logically invalid */
    BF_ERR_NOMEM,
    BF_ERR_RANGE,       /* value outside what the caller prepared for */
    BF_ERR_UNSUPPORTED,
} bf_status;

typedef struct {
    bf_status code;
    char msg[1024];     /* "FILE:LINE: FIELD: what is wrong" */
} bf_error;

/* Records the first error only (later calls keep the original, more specific
 * message). err may be NULL. Returns code so callers can `return bf_error_set(...)`. */
bf_status bf_error_set(bf_error *err, bf_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes the existing message: "prefix: old message". */
void bf_error_prefix(bf_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Warnings: what an input had that braggflow tolerated (a CIF 1.1 quirk, ...). Each
 * distinct message goes to the handler once per process (thread-safe); the default
 * handler prints "braggflow: warning: MSG" on stderr. handler NULL restores it. */
void bf_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bf_set_warning_handler(void (*handler)(const char *msg, void *user), void *user);
const char *bf_status_name(bf_status st);

/* ---- Reproducible random numbers -------------------------------------
 * A stream is fully determined by (seed, stream_id): sample i of a dataset uses
 * stream i, so results do not depend on thread count or scheduling.
 * Generator: SplitMix64 state seeding a xoshiro256** core. */
typedef struct {
    uint64_t s[4];
} bf_rng;

void bf_rng_init(bf_rng *rng, uint64_t seed, uint64_t stream_id);
uint64_t bf_rng_u64(bf_rng *rng);
double bf_rng_uniform(bf_rng *rng);                 /* [0, 1) with 53 random bits */
double bf_rng_uniform_range(bf_rng *rng, double lo, double hi);
double bf_rng_normal(bf_rng *rng);                  /* standard normal (Box-Muller, no caching) */

/* ---- Order statistics ---------------------------------------------------- */
void bf_sort_doubles(double *x, long n);            /* ascending */
/* numpy's default percentile of sorted x (n >= 1): linear between the order statistics
 * around q (n - 1), q in [0, 1]. */
double bf_percentile_sorted(const double *sorted, long n, double q);

/* ---- Time and progress ------------------------------------------------ */
double bf_now_seconds(void);                        /* monotonic clock */

typedef struct {
    const char *label;
    uint64_t total;
    uint64_t done;        /* updated atomically */
    double start_s;
    uint64_t last_print_us;
    int enabled;          /* draws only when stderr is a terminal or BF_PROGRESS=1 */
} bf_progress;

void bf_progress_begin(bf_progress *p, const char *label, uint64_t total);
void bf_progress_add(bf_progress *p, uint64_t n);   /* thread-safe */
void bf_progress_end(bf_progress *p);

/* ---- Hashing (SHA-256, FIPS 180-4) -------------------------------------- */
typedef struct {
    uint32_t h[8];
    uint64_t nbytes;
    uint8_t buf[64];
    size_t nbuf;
} bf_sha256;

void bf_sha256_init(bf_sha256 *ctx);
void bf_sha256_update(bf_sha256 *ctx, const void *data, size_t n);
void bf_sha256_final(bf_sha256 *ctx, uint8_t digest[32]);
void bf_sha256_hex(const void *data, size_t n, char hex[65]);
bf_status bf_sha256_file_hex(const char *path, char hex[65], bf_error *err);
/* The digest of a file's bytes. */
bf_status bf_sha256_file(const char *path, uint8_t digest[32], bf_error *err);
/* A digest as 64 lowercase hex digits. */
void bf_sha256_digest_hex(const uint8_t digest[32], char hex[65]);

/* ---- JSON ------------------------------------------------------------- */
/* s as a JSON string literal in out (quotes, backslash and control characters
 * escaped, RFC 8259); returns out. When it does not fit, it is cut before a
 * character and stays a valid literal. outsz >= 3. */
const char *bf_json_quote(const char *s, char *out, size_t outsz);

/* ---- Growable byte buffer ---------------------------------------------------
 * One buffer for text (report.html) and binary output (the ONNX protobuf). Appends
 * never fail on the spot: an allocation failure (or a size that would overflow) sets
 * failed, later appends are dropped, and the writer checks once at the end
 * (bf_buf_check). data stays NUL-terminated after every append (the NUL is not in len),
 * so text can be used as a C string. A zeroed bf_buf is an empty one. */
typedef struct {
    char *data;          /* heap; NULL until the first append */
    size_t len, cap;     /* bytes used, bytes allocated */
    int failed;          /* 1: an append was dropped, the contents are incomplete */
} bf_buf;

/* Room for extra more bytes (and the NUL): 1, or 0 with failed set. */
int bf_buf_reserve(bf_buf *b, size_t extra);
void bf_buf_append(bf_buf *b, const void *bytes, size_t n);
void bf_buf_puts(bf_buf *b, const char *s);
void bf_buf_putc(bf_buf *b, char c);
void bf_buf_printf(bf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Inserts n bytes at offset pos <= len, moving what follows (a length prefix written
 * after its message: the protobuf encoder). */
void bf_buf_insert(bf_buf *b, size_t pos, const void *bytes, size_t n);
/* BF_OK, or BF_ERR_NOMEM "what: out of memory ..." when an append was dropped. */
bf_status bf_buf_check(const bf_buf *b, const char *what, bf_error *err);
/* Frees the bytes; b is an empty buffer again. */
void bf_buf_free(bf_buf *b);

/* ---- IEEE 754 half precision (binary16) --------------------------------------
 * float32 -> float16 rounds to nearest, ties to even; what does not fit (|x| >= 65520)
 * becomes +-inf, what is below half of the smallest subnormal (2^-25) becomes +-0, NaN
 * stays NaN. float16 -> float32 is exact. */
uint16_t bf_half_from_float(float x);
float bf_half_to_float(uint16_t h);

/* ---- Files ------------------------------------------------------------ */
/* Reads a whole file into a NUL-terminated heap buffer (caller frees). */
bf_status bf_read_file(const char *path, char **text, size_t *len, bf_error *err);

/* Crash-safe output: write to "<path>.tmp.<pid>", then fsync + rename over
 * path on commit; abort (or a crash) leaves any previous file untouched. */
typedef struct {
    char path[4096];
    char tmp_path[4200];
    FILE *fp;            /* NULL for writers that open tmp_path themselves (HDF5) */
} bf_atomic_file;

/* Opens tmp_path for writing with stdio (open_stdio=1) or only prepares the names. */
bf_status bf_atomic_begin(bf_atomic_file *af, const char *path, int open_stdio, bf_error *err);
/* Closes (if open), fsyncs the file and its folder and renames it into place. */
bf_status bf_atomic_commit(bf_atomic_file *af, bf_error *err);
/* Closes and removes the temporary file. Safe to call twice or after commit. */
void bf_atomic_abort(bf_atomic_file *af);

/* Path helpers. */
/* out = dirname(base_file)/rel unless rel is absolute. */
bf_status bf_path_resolve(const char *base_file, const char *rel, char *out, size_t outsz, bf_error *err);
int bf_path_has_suffix(const char *path, const char *suffix);

/* Number parsing with full-string validation; returns 0 on success. */
int bf_parse_double(const char *s, double *out);
int bf_parse_long(const char *s, long *out);
/* Exactly n finite numbers separated by blanks ("3.5 3.5 30"); 0 on success. */
int bf_parse_doubles(const char *s, double *v, int n);

/* Binds the calling thread (and OpenMP teams it starts later) to cores
 * first..first+count-1 (hwloc). Returns 0, or -1 with the reason in why. */
int bf_pin_thread_to_cores(int first, int count, char *why, size_t whysz);
/* The OS numbers of core `core`'s logical CPUs (at most max, into cpus): their count,
 * or -1 with the reason in why. */
int bf_core_os_cpus(int core, int *cpus, int max, char *why, size_t whysz);

/* Number of worker threads to use when the user says 0 ("all cores"). */
int bf_default_threads(void);

#ifdef __cplusplus
}
#endif
#endif
