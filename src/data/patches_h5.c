/* data/patches_h5.c — peak patch files (BraggNN, DESIGN §7), one layout for
 * simulated, imported and fitted patches (braggflow/data.h, docs/peaks.md):
 *   patches (N, S, S) float32, centre (N, 2) float64; simulated: peak (N, 9),
 *   background (N, 3), read_sigma (N) float64, neighbour (N) uint8,
 *   neighbour_peak (N, 9) float64; imported: frame_index (N) uint32,
 *   origin (N, 2) int32, npeaks (N) uint16, deviation (N) float32;
 *   root attributes version, kind, patch_size (int32), seed (uint64) and
 *   config (simulated: the INI text) or source (otherwise: input files and SHA-256).
 * Written through a temporary file renamed into place. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

_Static_assert(sizeof(bf_peak2d) == BF_PEAK2D_NPARAM * sizeof(double),
               "bf_peak2d is stored as (N, 9) float64");
_Static_assert(sizeof(bf_background2d) == BF_BG2D_NPARAM * sizeof(double),
               "bf_background2d is stored as (N, 3) float64");

#define MAX_PATCH_SIZE 1024

void bf_patches_free(bf_patches *p)
{
    if (!p)
        return;
    free(p->patches);
    free(p->centre);
    free(p->peak);
    free(p->background);
    free(p->read_sigma);
    free(p->neighbour);
    free(p->neighbour_peak);
    free(p->frame_index);
    free(p->origin);
    free(p->npeaks);
    free(p->deviation);
    memset(p, 0, sizeof *p);
}

/* ---- writing ------------------------------------------------------------------- */

/* One optional per-patch array: `cols` values per patch (0: a 1-D array). */
typedef struct {
    const char *name;
    const void *data;
    hid_t ftype, mtype;
    int cols;
    size_t elem;
} column;

static bf_status write_columns(hid_t file, const bf_patches *p, const char *path, bf_error *err)
{
    const hsize_t N = (hsize_t)p->n, S = (hsize_t)p->size;
    const column cols[] = {
        {"centre", p->centre, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, sizeof(double)},
        {"peak", p->peak, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, BF_PEAK2D_NPARAM, sizeof(double)},
        {"background", p->background, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, BF_BG2D_NPARAM,
         sizeof(double)},
        {"read_sigma", p->read_sigma, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, sizeof(double)},
        {"neighbour", p->neighbour, H5T_STD_U8LE, H5T_NATIVE_UINT8, 0, 1},
        {"neighbour_peak", p->neighbour_peak, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
         BF_PEAK2D_NPARAM, sizeof(double)},
        {"frame_index", p->frame_index, H5T_STD_U32LE, H5T_NATIVE_UINT32, 0, sizeof(uint32_t)},
        {"origin", p->origin, H5T_STD_I32LE, H5T_NATIVE_INT32, 2, sizeof(int32_t)},
        {"npeaks", p->npeaks, H5T_STD_U16LE, H5T_NATIVE_UINT16, 0, sizeof(uint16_t)},
        {"deviation", p->deviation, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 0, sizeof(float)},
    };
    hsize_t pdims[3] = {N, S, S};
    bf_status st = bf_h5_write_whole(file, path, "patches", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3,
                                     pdims, (size_t)(S * S) * sizeof(float), p->patches, err);
    for (size_t k = 0; st == BF_OK && k < sizeof cols / sizeof cols[0]; k++) {
        if (!cols[k].data)
            continue;
        hsize_t dims[2] = {N, (hsize_t)cols[k].cols};
        st = bf_h5_write_whole(file, path, cols[k].name, cols[k].ftype, cols[k].mtype,
                               cols[k].cols ? 2 : 1, dims, 0, cols[k].data, err);
    }
    return st;
}

static bf_status write_attrs(hid_t file, const bf_patches *p, const char *path, bf_error *err)
{
    hid_t str = bf_h5_vlen_string_type();
    if (str < 0)
        return bf_h5_fail(err, BF_ERR_IO, path, "attribute", "version", "cannot make string type");
    const char *version = BF_VERSION, *kind = p->kind, *source = p->source;
    int32_t size = p->size;
    bf_status st = bf_h5_write_attr(file, path, "version", str, str, -1, &version, err);
    if (st == BF_OK)
        st = bf_h5_write_attr(file, path, "kind", str, str, -1, &kind, err);
    if (st == BF_OK)
        st = bf_h5_write_attr(file, path, "patch_size", H5T_STD_I32LE, H5T_NATIVE_INT32, -1,
                              &size, err);
    if (st == BF_OK)
        st = bf_h5_write_attr(file, path, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, -1, &p->seed,
                              err);
    if (st == BF_OK)
        st = bf_h5_write_attr(file, path, strcmp(p->kind, "simulated") ? "source" : "config", str,
                              str, -1, &source, err);
    H5Tclose(str);
    return st;
}

bf_status bf_patches_write_h5(const bf_patches *p, const char *path, bf_error *err)
{
    if (p->n < 1 || !p->patches)
        return bf_error_set(err, BF_ERR_INVALID, "%s: nothing to write (no patches)", path);
    if (p->size < 1 || p->size > MAX_PATCH_SIZE)
        return bf_error_set(err, BF_ERR_INVALID, "%s: patch size %d is not in 1..%d", path,
                            p->size, MAX_PATCH_SIZE);
    bf_h5_quiet quiet;
    bf_h5_quiet_begin(&quiet);
    bf_atomic_file af;
    hid_t file = H5I_INVALID_HID;
    bf_status st = bf_h5_create_atomic(&af, path, &file, err);
    if (st != BF_OK)
        goto done;
    st = write_columns(file, p, path, err);
    if (st == BF_OK)
        st = write_attrs(file, p, path, err);
    if (st == BF_OK) {
        st = bf_h5_commit_atomic(&af, &file, err);
    } else {
        bf_h5_close(&file, H5Fclose);
        bf_atomic_abort(&af);
    }
done:
    bf_h5_quiet_end(&quiet);
    return st;
}

/* ---- reading -------------------------------------------------------------------- */

static const char *nonfinite_name(double x) { return isnan(x) ? "NaN" : "infinite"; }

/* Reads an optional per-patch array into *out (left NULL when absent). */
static bf_status read_column(hid_t file, const char *path, const char *name, int cols,
                             H5T_class_t tclass, hid_t mtype, size_t elem, long n, void **out,
                             bf_error *err)
{
    *out = NULL;
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
        return BF_OK;
    size_t count = (size_t)n * (size_t)(cols ? cols : 1);
    *out = malloc(count * elem);
    if (!*out)
        return bf_error_set(err, BF_ERR_NOMEM, "%s: dataset '%s': out of memory", path, name);
    hsize_t want[2] = {(hsize_t)n, (hsize_t)cols};
    return bf_h5_read_exact(file, path, name, cols ? 2 : 1, tclass, want, mtype, *out, err);
}

/* Every value of the `cols`-wide double array must be finite. */
static bf_status check_finite(const char *path, const char *name, const double *v, long n,
                              int cols, bf_error *err)
{
    if (!v)
        return BF_OK;
    for (long i = 0; i < n; i++)
        for (int k = 0; k < cols; k++)
            if (!isfinite(v[i * cols + k]))
                return bf_error_set(err, BF_ERR_INVALID, "%s: %s: patch %ld value %d is %s", path,
                                    name, i, k, nonfinite_name(v[i * cols + k]));
    return BF_OK;
}

static bf_status read_attrs(hid_t file, const char *path, bf_patches *out, bf_error *err)
{
    int n = 0;
    char kind[sizeof out->kind];
    bf_status st = bf_h5_read_attr_strings(file, path, "kind", kind, sizeof kind, 1, &n, err);
    if (st != BF_OK)
        return st;
    if (n)
        snprintf(out->kind, sizeof out->kind, "%s", kind);
    int32_t size = 0;
    st = bf_h5_read_attr_numbers(file, path, "patch_size", H5T_NATIVE_INT32, &size, 1, &n, err);
    if (st != BF_OK)
        return st;
    if (n && size != out->size)
        return bf_error_set(err, BF_ERR_PARSE,
                            "%s: attribute 'patch_size' is %d but the patches are %d x %d", path,
                            (int)size, out->size, out->size);
    uint64_t seed = 0;
    st = bf_h5_read_attr_numbers(file, path, "seed", H5T_NATIVE_UINT64, &seed, 1, &n, err);
    if (st != BF_OK)
        return st;
    out->seed = n ? seed : 0;
    st = bf_h5_read_attr_strings(file, path, "config", out->source, sizeof out->source, 1, &n,
                                 err);
    if (st == BF_OK && n == 0)
        st = bf_h5_read_attr_strings(file, path, "source", out->source, sizeof out->source, 1, &n,
                                     err);
    return st;
}

static bf_status read_file(hid_t file, const char *path, bf_patches *out, bf_error *err)
{
    hid_t ds = H5I_INVALID_HID;
    hsize_t d[3];
    bf_status st = bf_h5_open_checked(file, path, "patches", 3, H5T_FLOAT, d, &ds, err);
    if (st != BF_OK)
        return st;
    if (d[0] == 0) {
        st = bf_error_set(err, BF_ERR_INVALID, "%s: patches: empty (no patches)", path);
        goto done;
    }
    if (d[1] != d[2] || d[1] < 1 || d[1] > MAX_PATCH_SIZE || d[0] > INT32_MAX ||
        !bf_h5_fits(d[0], d[1] * d[2], sizeof(float))) {
        char want[64];
        snprintf(want, sizeof want, "(N, S, S) with 1 <= S <= %d", MAX_PATCH_SIZE);
        st = bf_h5_shape_error(err, path, "patches", want, d, 3);
        goto done;
    }
    const long n = (long)d[0];
    const int S = (int)d[1];
    out->n = n;
    out->size = S;
    out->patches = malloc((size_t)n * (size_t)S * (size_t)S * sizeof(float));
    if (!out->patches) {
        st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory for %ld patches of %d x %d", path,
                          n, S, S);
        goto done;
    }
    st = bf_h5_read_all(ds, H5T_NATIVE_FLOAT, out->patches, path, "patches", err);
    if (st != BF_OK)
        goto done;
    for (long i = 0; i < n; i++)
        for (int r = 0; r < S; r++)
            for (int c = 0; c < S; c++) {
                float v = out->patches[((size_t)i * S + r) * S + c];
                if (!isfinite(v)) {
                    st = bf_error_set(err, BF_ERR_INVALID,
                                      "%s: patches: patch %ld pixel (%d, %d) is %s", path, i, r,
                                      c, nonfinite_name(v));
                    goto done;
                }
            }
    /* each buffer goes to out even when its read fails, so bf_patches_free frees it */
    void *col = NULL;
#define COLUMN(field, name, cols, tclass, mtype, elem)                                         \
    st = read_column(file, path, name, cols, tclass, mtype, elem, n, &col, err);             \
    out->field = col;                                                                        \
    if (st != BF_OK)                                                                         \
        goto done;
    COLUMN(centre, "centre", 2, H5T_FLOAT, H5T_NATIVE_DOUBLE, sizeof(double))
    COLUMN(peak, "peak", BF_PEAK2D_NPARAM, H5T_FLOAT, H5T_NATIVE_DOUBLE, sizeof(double))
    COLUMN(background, "background", BF_BG2D_NPARAM, H5T_FLOAT, H5T_NATIVE_DOUBLE,
           sizeof(double))
    COLUMN(read_sigma, "read_sigma", 0, H5T_FLOAT, H5T_NATIVE_DOUBLE, sizeof(double))
    COLUMN(neighbour, "neighbour", 0, H5T_INTEGER, H5T_NATIVE_UINT8, 1)
    COLUMN(neighbour_peak, "neighbour_peak", BF_PEAK2D_NPARAM, H5T_FLOAT, H5T_NATIVE_DOUBLE,
           sizeof(double))
    COLUMN(frame_index, "frame_index", 0, H5T_INTEGER, H5T_NATIVE_UINT32, sizeof(uint32_t))
    COLUMN(origin, "origin", 2, H5T_INTEGER, H5T_NATIVE_INT32, sizeof(int32_t))
    COLUMN(npeaks, "npeaks", 0, H5T_INTEGER, H5T_NATIVE_UINT16, sizeof(uint16_t))
    COLUMN(deviation, "deviation", 0, H5T_FLOAT, H5T_NATIVE_FLOAT, sizeof(float))
#undef COLUMN

    if ((st = check_finite(path, "centre", out->centre, n, 2, err)) == BF_OK &&
        (st = check_finite(path, "peak", (const double *)out->peak, n, BF_PEAK2D_NPARAM, err)) ==
            BF_OK &&
        (st = check_finite(path, "background", (const double *)out->background, n,
                           BF_BG2D_NPARAM, err)) == BF_OK)
        st = check_finite(path, "read_sigma", out->read_sigma, n, 1, err);
    if (st == BF_OK)
        st = read_attrs(file, path, out, err);

done:
    bf_h5_close(&ds, H5Dclose);
    return st;
}

bf_status bf_patches_read_h5(const char *path, bf_patches *out, bf_error *err)
{
    memset(out, 0, sizeof *out);
    bf_h5_quiet quiet;
    bf_h5_quiet_begin(&quiet);
    hid_t file = H5I_INVALID_HID;
    bf_status st = bf_h5_open_read(path, &file, err);
    if (st == BF_OK) {
        if (H5Lexists(file, "patches", H5P_DEFAULT) > 0)
            st = read_file(file, path, out, err);
        else
            st = bf_error_set(err, BF_ERR_PARSE, "%s: no dataset 'patches' (not a patch file)",
                              path);
    }
    bf_h5_close(&file, H5Fclose);
    bf_h5_quiet_end(&quiet);
    if (st != BF_OK)
        bf_patches_free(out);
    return st;
}
