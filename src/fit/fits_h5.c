/* fit/fits_h5.c — fits.h5, the conventional fit's results (fit.h):
 *   centre (N, 2) float64 (row, col), peak (N, 9) and background (N, 3) float64
 *   (bf_peak2d, bf_background2d fields in order), chi2 (N), chi2_per_dof (N) float64,
 *   iterations (N) int32, converged (N) uint8, status (N) int32 (GSL's), masked (N)
 *   int32 (pixels masked as a neighbour's); root attributes version, kind ("fits"),
 *   patch_size (int32), source (the patches file and its SHA-256).
 * Written through a temporary file renamed into place, with the data layer's HDF5
 * helpers (data/data_internal.h: quiet errors, chunked + compressed datasets). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/fit.h"
#include "data/data_internal.h"

_Static_assert(sizeof(bf_peak2d) == BF_PEAK2D_NPARAM * sizeof(double),
               "bf_peak2d is stored as (N, 9) float64");
_Static_assert(sizeof(bf_background2d) == BF_BG2D_NPARAM * sizeof(double),
               "bf_background2d is stored as (N, 3) float64");

typedef struct {
    double *centre, *chi2, *chi2_dof;
    bf_peak2d *peak;
    bf_background2d *bg;
    int32_t *iters, *status, *masked;
    uint8_t *conv;
} columns;

static void columns_free(columns *c)
{
    free(c->centre);
    free(c->chi2);
    free(c->chi2_dof);
    free(c->peak);
    free(c->bg);
    free(c->iters);
    free(c->status);
    free(c->masked);
    free(c->conv);
    memset(c, 0, sizeof *c);
}

static int columns_alloc(columns *c, long n)
{
    const size_t N = (size_t)(n > 0 ? n : 1);
    memset(c, 0, sizeof *c);
    c->centre = malloc(N * 2 * sizeof *c->centre);
    c->chi2 = malloc(N * sizeof *c->chi2);
    c->chi2_dof = malloc(N * sizeof *c->chi2_dof);
    c->peak = malloc(N * sizeof *c->peak);
    c->bg = malloc(N * sizeof *c->bg);
    c->iters = malloc(N * sizeof *c->iters);
    c->status = malloc(N * sizeof *c->status);
    c->masked = malloc(N * sizeof *c->masked);
    c->conv = malloc(N * sizeof *c->conv);
    if (c->centre && c->chi2 && c->chi2_dof && c->peak && c->bg && c->iters && c->status &&
        c->masked && c->conv)
        return 1;
    columns_free(c);
    return 0;
}

bf_status bf_fits_write_h5(const bf_peak_fit *fits, long n, int S, const char *source,
                           const char *path, bf_error *err)
{
    if (n < 1)
        return bf_error_set(err, BF_ERR_INVALID, "%s: nothing to write (no fits)", path);
    columns c;
    if (!columns_alloc(&c, n))
        return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory for %ld fits", path, n);
    for (long i = 0; i < n; i++) {
        c.centre[2 * i] = fits[i].peak.row;
        c.centre[2 * i + 1] = fits[i].peak.col;
        c.peak[i] = fits[i].peak;
        c.bg[i] = fits[i].background;
        c.chi2[i] = fits[i].chi2;
        c.chi2_dof[i] = fits[i].chi2_per_dof;
        c.iters[i] = fits[i].iterations;
        c.status[i] = fits[i].status;
        c.masked[i] = fits[i].masked;
        c.conv[i] = (uint8_t)(fits[i].converged != 0);
    }
    bf_h5_quiet quiet;
    bf_h5_quiet_begin(&quiet);
    bf_atomic_file af;
    hid_t file = H5I_INVALID_HID, str = H5I_INVALID_HID;
    bf_status st = bf_h5_create_atomic(&af, path, &file, err);
    if (st != BF_OK)
        goto done;
    const hsize_t N = (hsize_t)n;
    const struct {
        const char *name;
        const void *data;
        hid_t ftype, mtype;
        int cols;
        size_t elem;
    } cols[] = {
        {"centre", c.centre, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, sizeof(double)},
        {"peak", c.peak, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, BF_PEAK2D_NPARAM, sizeof(double)},
        {"background", c.bg, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, BF_BG2D_NPARAM, sizeof(double)},
        {"chi2", c.chi2, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, sizeof(double)},
        {"chi2_per_dof", c.chi2_dof, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, sizeof(double)},
        {"iterations", c.iters, H5T_STD_I32LE, H5T_NATIVE_INT32, 0, sizeof(int32_t)},
        {"converged", c.conv, H5T_STD_U8LE, H5T_NATIVE_UINT8, 0, 1},
        {"status", c.status, H5T_STD_I32LE, H5T_NATIVE_INT32, 0, sizeof(int32_t)},
        {"masked", c.masked, H5T_STD_I32LE, H5T_NATIVE_INT32, 0, sizeof(int32_t)},
    };
    for (size_t k = 0; k < sizeof cols / sizeof cols[0] && st == BF_OK; k++) {
        hsize_t dims[2] = {N, (hsize_t)cols[k].cols};
        const int rank = cols[k].cols ? 2 : 1;
        const size_t row = cols[k].elem * (size_t)(cols[k].cols ? cols[k].cols : 1);
        st = bf_h5_write_whole(file, path, cols[k].name, cols[k].ftype, cols[k].mtype, rank, dims,
                               row, cols[k].data, err);
    }
    if (st == BF_OK) {
        str = bf_h5_vlen_string_type();
        if (str < 0)
            st = bf_h5_fail(err, BF_ERR_IO, path, "attribute", "version",
                            "cannot make string type");
    }
    const char *version = BF_VERSION, *kind = "fits", *src = source ? source : "";
    const int32_t size = S;
    if (st == BF_OK)
        st = bf_h5_write_attr(file, path, "version", str, str, -1, &version, err);
    if (st == BF_OK)
        st = bf_h5_write_attr(file, path, "kind", str, str, -1, &kind, err);
    if (st == BF_OK)
        st = bf_h5_write_attr(file, path, "patch_size", H5T_STD_I32LE, H5T_NATIVE_INT32, -1,
                              &size, err);
    if (st == BF_OK)
        st = bf_h5_write_attr(file, path, "source", str, str, -1, &src, err);
    bf_h5_close(&str, H5Tclose);
    if (st == BF_OK) {
        st = bf_h5_commit_atomic(&af, &file, err);
    } else {
        bf_h5_close(&file, H5Fclose);
        bf_atomic_abort(&af);
    }
done:
    bf_h5_quiet_end(&quiet);
    columns_free(&c);
    return st;
}

bf_status bf_fits_read_h5(const char *path, bf_peak_fit **out, long *n, int *S, bf_error *err)
{
    *out = NULL;
    *n = 0;
    *S = 0;
    columns c = {0};
    bf_peak_fit *fits = NULL;
    bf_h5_quiet quiet;
    bf_h5_quiet_begin(&quiet);
    hid_t file = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    bf_status st = bf_h5_open_read(path, &file, err);
    if (st != BF_OK)
        goto done;
    if (H5Lexists(file, "peak", H5P_DEFAULT) <= 0 || H5Lexists(file, "chi2", H5P_DEFAULT) <= 0 ||
        H5Lexists(file, "converged", H5P_DEFAULT) <= 0) {
        st = bf_error_set(err, BF_ERR_PARSE,
                          "%s: no datasets 'peak', 'chi2' and 'converged' (not a fits file)", path);
        goto done;
    }
    hsize_t d[2];
    st = bf_h5_open_checked(file, path, "peak", 2, H5T_FLOAT, d, &ds, err);
    bf_h5_close(&ds, H5Dclose);
    if (st != BF_OK)
        goto done;
    if (d[0] < 1 || d[0] > INT32_MAX || d[1] != BF_PEAK2D_NPARAM) {
        st = bf_h5_shape_error(err, path, "peak", "(N, 9) with N >= 1", d, 2);
        goto done;
    }
    const long N = (long)d[0];
    if (!columns_alloc(&c, N) || !(fits = calloc((size_t)N, sizeof *fits))) {
        st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory for %ld fits", path, N);
        goto done;
    }
    const hsize_t w1[1] = {(hsize_t)N}, w9[2] = {(hsize_t)N, BF_PEAK2D_NPARAM},
                  w3[2] = {(hsize_t)N, BF_BG2D_NPARAM};
    if ((st = bf_h5_read_exact(file, path, "peak", 2, H5T_FLOAT, w9, H5T_NATIVE_DOUBLE, c.peak,
                               err)) != BF_OK ||
        (st = bf_h5_read_exact(file, path, "background", 2, H5T_FLOAT, w3, H5T_NATIVE_DOUBLE,
                               c.bg, err)) != BF_OK ||
        (st = bf_h5_read_exact(file, path, "chi2", 1, H5T_FLOAT, w1, H5T_NATIVE_DOUBLE, c.chi2,
                               err)) != BF_OK ||
        (st = bf_h5_read_exact(file, path, "iterations", 1, H5T_INTEGER, w1, H5T_NATIVE_INT32,
                               c.iters, err)) != BF_OK ||
        (st = bf_h5_read_exact(file, path, "converged", 1, H5T_INTEGER, w1, H5T_NATIVE_UINT8,
                               c.conv, err)) != BF_OK)
        goto done;
    /* written by every braggflow version, but not needed to use the fits */
    int have_dof = H5Lexists(file, "chi2_per_dof", H5P_DEFAULT) > 0;
    int have_status = H5Lexists(file, "status", H5P_DEFAULT) > 0;
    int have_masked = H5Lexists(file, "masked", H5P_DEFAULT) > 0;
    if ((have_dof && (st = bf_h5_read_exact(file, path, "chi2_per_dof", 1, H5T_FLOAT, w1,
                                            H5T_NATIVE_DOUBLE, c.chi2_dof, err)) != BF_OK) ||
        (have_status && (st = bf_h5_read_exact(file, path, "status", 1, H5T_INTEGER, w1,
                                               H5T_NATIVE_INT32, c.status, err)) != BF_OK) ||
        (have_masked && (st = bf_h5_read_exact(file, path, "masked", 1, H5T_INTEGER, w1,
                                               H5T_NATIVE_INT32, c.masked, err)) != BF_OK))
        goto done;
    int32_t size = 0;
    int na = 0;
    st = bf_h5_read_attr_numbers(file, path, "patch_size", H5T_NATIVE_INT32, &size, 1, &na, err);
    if (st != BF_OK)
        goto done;
    if (na != 1 || size < 1) {
        st = bf_error_set(err, BF_ERR_PARSE, "%s: attribute 'patch_size': missing or not positive",
                          path);
        goto done;
    }
    for (long i = 0; i < N; i++) {
        fits[i].peak = c.peak[i];
        fits[i].background = c.bg[i];
        fits[i].chi2 = c.chi2[i];
        fits[i].chi2_per_dof = have_dof ? c.chi2_dof[i] : NAN;
        fits[i].iterations = c.iters[i];
        fits[i].converged = c.conv[i] != 0;
        fits[i].status = have_status ? c.status[i] : 0;
        fits[i].masked = have_masked ? c.masked[i] : 0;
    }
    *out = fits;
    fits = NULL;
    *n = N;
    *S = size;
done:
    bf_h5_close(&file, H5Fclose);
    bf_h5_quiet_end(&quiet);
    columns_free(&c);
    free(fits);
    return st;
}
