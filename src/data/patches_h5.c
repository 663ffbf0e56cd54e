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

#define N_COLUMNS 10

/* p's per-patch arrays other than the patches, rows from p->... onwards. */
static void columns_of(const bf_patches *p, column cols[N_COLUMNS])
{
    const column c[N_COLUMNS] = {
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
    memcpy(cols, c, sizeof c);
}

/* A block of rows [row0, row0 + n) as a bf_patches whose arrays start at row0. */
typedef bf_status (*patch_rows_fn)(void *user, long row0, long n, bf_patches *view,
                                   bf_error *err);

static bf_status view_of_memory(void *user, long row0, long n, bf_patches *view, bf_error *err)
{
    const bf_patches *p = user;
    const size_t r = (size_t)row0, S2 = (size_t)p->size * (size_t)p->size;
    (void)n;
    (void)err;
    *view = *p;
    view->patches = p->patches + r * S2;
#define AT(field, k) view->field = p->field ? p->field + r * (k) : NULL
    AT(centre, 2);
    AT(peak, 1);
    AT(background, 1);
    AT(read_sigma, 1);
    AT(neighbour, 1);
    AT(neighbour_peak, 1);
    AT(frame_index, 1);
    AT(origin, 2);
    AT(npeaks, 1);
    AT(deviation, 1);
#undef AT
    return BF_OK;
}

/* Chunks of patches per block (the datasets' BLOCK_CHUNKS). */
#define PATCH_BLOCK_CHUNKS 8

/* hdr: n, size and which arrays exist (non-NULL pointers); the rows come from
 * fill block by block, each written before the next is made. */
static bf_status write_columns(hid_t file, const bf_patches *hdr, const char *path,
                               patch_rows_fn fill, void *user, int threads, bf_error *err)
{
    const hsize_t N = (hsize_t)hdr->n, S = (hsize_t)hdr->size;
    column cols[N_COLUMNS];
    columns_of(hdr, cols);
    hid_t ds[N_COLUMNS];
    for (int k = 0; k < N_COLUMNS; k++)
        ds[k] = H5I_INVALID_HID;
    hsize_t pdims[3] = {N, S, S};
    bf_h5_rows w;
    bf_status st = bf_h5_rows_create(file, path, "patches", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3,
                                     pdims, NULL, &w, err);
    for (int k = 0; st == BF_OK && k < N_COLUMNS; k++) {
        if (!cols[k].data)
            continue;
        hsize_t dims[2] = {N, (hsize_t)cols[k].cols};
        st = bf_h5_create_dataset(file, path, cols[k].name, cols[k].ftype, cols[k].cols ? 2 : 1,
                                  dims, 0, &ds[k], err);
    }
    const size_t block = (size_t)w.chunk_rows * PATCH_BLOCK_CHUNKS;
    for (size_t r0 = 0; st == BF_OK && r0 < (size_t)N; r0 += block) {
        size_t n = (size_t)N - r0 < block ? (size_t)N - r0 : block;
        bf_patches view;
        st = fill(user, (long)r0, (long)n, &view, err);
        if (st == BF_OK)
            st = bf_h5_rows_write(&w, r0, n, view.patches, threads, err);
        column vc[N_COLUMNS];
        columns_of(&view, vc);
        for (int k = 0; st == BF_OK && k < N_COLUMNS; k++) {
            if (ds[k] < 0)
                continue;
            int rank = cols[k].cols ? 2 : 1;
            hsize_t start[2] = {r0, 0}, count[2] = {n, (hsize_t)cols[k].cols};
            hid_t fspace = H5Dget_space(ds[k]), mspace = H5Screate_simple(rank, count, NULL);
            if (!vc[k].data || fspace < 0 || mspace < 0 ||
                H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
                H5Dwrite(ds[k], cols[k].mtype, mspace, fspace, H5P_DEFAULT, vc[k].data) < 0)
                st = bf_h5_fail(err, BF_ERR_IO, path, "dataset", cols[k].name, "cannot write");
            bf_h5_close(&mspace, H5Sclose);
            bf_h5_close(&fspace, H5Sclose);
        }
    }
    bf_h5_rows_close(&w);
    for (int k = 0; k < N_COLUMNS; k++)
        bf_h5_close(&ds[k], H5Dclose);
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

static bf_status write_patches_file(const bf_patches *hdr, const char *path, patch_rows_fn fill,
                                    void *user, int threads, bf_error *err)
{
    if (hdr->n < 1 || !hdr->patches)
        return bf_error_set(err, BF_ERR_INVALID, "%s: nothing to write (no patches)", path);
    if (hdr->size < 1 || hdr->size > MAX_PATCH_SIZE)
        return bf_error_set(err, BF_ERR_INVALID, "%s: patch size %d is not in 1..%d", path,
                            hdr->size, MAX_PATCH_SIZE);
    bf_h5_quiet quiet;
    bf_h5_quiet_begin(&quiet);
    bf_atomic_file af;
    hid_t file = H5I_INVALID_HID;
    bf_status st = bf_h5_create_atomic(&af, path, &file, err);
    if (st != BF_OK)
        goto done;
    st = write_columns(file, hdr, path, fill, user, threads, err);
    if (st == BF_OK)
        st = write_attrs(file, hdr, path, err);
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

bf_status bf_patches_write_h5(const bf_patches *p, const char *path, bf_error *err)
{
    return write_patches_file(p, path, view_of_memory, (void *)p, 0, err);
}

typedef struct {
    const bf_peaks_config *cfg;
    int threads;
    bf_patches block;                 /* block-sized arrays */
    long neighbours;
    bf_progress prog;
} patch_sim_source;

static bf_status view_of_simulation(void *user, long row0, long n, bf_patches *view,
                                    bf_error *err)
{
    patch_sim_source *src = user;
    bf_status st = bf_patches_simulate_rows(src->cfg, row0, n, src->threads, &src->block,
                                            &src->prog, err);
    *view = src->block;
    for (long i = 0; st == BF_OK && i < n; i++)
        src->neighbours += src->block.neighbour[i];
    return st;
}

bf_status bf_patches_sample_h5(const bf_peaks_config *cfg, int threads, const char *path,
                               long *neighbours, bf_error *err)
{
    if (threads < 0)
        return bf_error_set(err, BF_ERR_INVALID, "threads: %d is negative", threads);
    if (threads == 0)
        threads = bf_default_threads();
    patch_sim_source src = {.cfg = cfg, .threads = threads};
    /* one block of every array; hdr is the block with the whole count */
    const size_t S2 = (size_t)cfg->size * (size_t)cfg->size;
    size_t rows = (BF_H5_CHUNK_BYTES / (S2 * sizeof(float)));
    rows = (rows < 1 ? 1 : rows) * PATCH_BLOCK_CHUNKS;
    if (cfg->count > 0 && rows > (size_t)cfg->count)
        rows = (size_t)cfg->count;
    bf_status st = bf_patches_alloc_rows(cfg, (long)rows, &src.block, err);
    if (st == BF_OK) {
        bf_patches hdr = src.block;
        hdr.n = cfg->count;
        bf_progress_begin(&src.prog, "sample-peaks", (uint64_t)cfg->count);
        st = write_patches_file(&hdr, path, view_of_simulation, &src, threads, err);
        bf_progress_end(&src.prog);
    }
    bf_patches_free(&src.block);
    if (neighbours)
        *neighbours = src.neighbours;
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
