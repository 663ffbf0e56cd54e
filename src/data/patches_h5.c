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

/* Streams the patches and their columns block by block. A block travels (to rank 0
 * under several ranks, bf_rank_blocks) as one buffer: uint64 bytes of the packed
 * patches (bf_h5_rows_pack), those bytes, then each present column's raw rows in
 * columns_of order; rank 0 stores the patch chunks and writes the columns. */
typedef struct {
    const bf_patches *hdr;
    const char *path;
    column cols[N_COLUMNS];
    hid_t ds[N_COLUMNS];
    bf_h5_rows w;
    size_t block;
    int threads;
    patch_rows_fn fill;
    void *user;
    long neighbours;
} patch_writer;

static size_t column_bytes(const column *c, size_t n)
{
    return n * (size_t)(c->cols ? c->cols : 1) * c->elem;
}

static size_t rows_of(const patch_writer *pw, long k)
{
    size_t r0 = (size_t)k * pw->block, N = (size_t)pw->hdr->n;
    return N - r0 < pw->block ? N - r0 : pw->block;
}

static bf_status make_patch_block(void *user, long k, bf_h5_block *out, bf_error *err)
{
    patch_writer *pw = user;
    const size_t r0 = (size_t)k * pw->block, n = rows_of(pw, k);
    bf_patches view;
    bf_h5_block pb = {0};
    bf_status st = pw->fill(pw->user, (long)r0, (long)n, &view, err);
    if (st == BF_OK)
        st = bf_h5_rows_pack(&pw->w, r0, n, view.patches, pw->threads, &pb, err);
    if (st != BF_OK)
        return st;
    column vc[N_COLUMNS];
    columns_of(&view, vc);
    size_t total = sizeof(uint64_t) + pb.n_bytes;
    for (int c = 0; c < N_COLUMNS; c++)
        if (pw->cols[c].data) {
            if (!vc[c].data) {
                free(pb.bytes);
                return bf_error_set(err, BF_ERR_INVALID, "%s: dataset '%s': rows %zu+%zu missing",
                                    pw->path, pw->cols[c].name, r0, n);
            }
            total += column_bytes(&pw->cols[c], n);
        }
    out->bytes = malloc(total);
    if (!out->bytes) {
        free(pb.bytes);
        return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory for a block of %zu patches",
                            pw->path, n);
    }
    uint64_t v = pb.n_bytes;
    memcpy(out->bytes, &v, sizeof v);
    memcpy(out->bytes + sizeof v, pb.bytes, pb.n_bytes);
    size_t at = sizeof v + pb.n_bytes;
    for (int c = 0; c < N_COLUMNS; c++)
        if (pw->cols[c].data) {
            memcpy(out->bytes + at, vc[c].data, column_bytes(&pw->cols[c], n));
            at += column_bytes(&pw->cols[c], n);
        }
    out->n_bytes = at;
    free(pb.bytes);
    return BF_OK;
}

static bf_status store_patch_block(void *user, long k, const bf_h5_block *b, bf_error *err)
{
    patch_writer *pw = user;
    const size_t r0 = (size_t)k * pw->block, n = rows_of(pw, k);
    uint64_t pn = 0;
    size_t want = sizeof pn;
    if (b->n_bytes >= sizeof pn)
        memcpy(&pn, b->bytes, sizeof pn);
    want += (size_t)pn;
    for (int c = 0; c < N_COLUMNS; c++)
        if (pw->ds[c] >= 0)
            want += column_bytes(&pw->cols[c], n);
    if (b->n_bytes < sizeof pn || pn > b->n_bytes || b->n_bytes != want)
        return bf_error_set(err, BF_ERR_PARSE, "%s: a block of patches %zu+%zu has %zu bytes, "
                            "not %zu", pw->path, r0, n, b->n_bytes, want);
    bf_h5_block pb = {.bytes = b->bytes + sizeof pn, .n_bytes = (size_t)pn};
    bf_status st = bf_h5_rows_store(&pw->w, r0, n, &pb, err);
    size_t at = sizeof pn + (size_t)pn;
    for (int c = 0; st == BF_OK && c < N_COLUMNS; c++) {
        if (pw->ds[c] < 0)
            continue;
        const unsigned char *data = b->bytes + at;
        at += column_bytes(&pw->cols[c], n);
        int rank = pw->cols[c].cols ? 2 : 1;
        hsize_t start[2] = {r0, 0}, count[2] = {n, (hsize_t)pw->cols[c].cols};
        hid_t fspace = H5Dget_space(pw->ds[c]), mspace = H5Screate_simple(rank, count, NULL);
        if (fspace < 0 || mspace < 0 ||
            H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dwrite(pw->ds[c], pw->cols[c].mtype, mspace, fspace, H5P_DEFAULT, data) < 0)
            st = bf_h5_fail(err, BF_ERR_IO, pw->path, "dataset", pw->cols[c].name,
                            "cannot write");
        bf_h5_close(&mspace, H5Sclose);
        bf_h5_close(&fspace, H5Sclose);
        if (st == BF_OK && strcmp(pw->cols[c].name, "neighbour") == 0)
            for (size_t i = 0; i < n; i++)
                pw->neighbours += data[i] != 0;
    }
    return st;
}

static void writer_init(patch_writer *pw, const bf_patches *hdr, const char *path,
                        patch_rows_fn fill, void *user, int threads)
{
    memset(pw, 0, sizeof *pw);
    pw->hdr = hdr;
    pw->path = path;
    pw->fill = fill;
    pw->user = user;
    pw->threads = threads;
    columns_of(hdr, pw->cols);
    for (int k = 0; k < N_COLUMNS; k++)
        pw->ds[k] = H5I_INVALID_HID;
    hsize_t pdims[3] = {(hsize_t)hdr->n, (hsize_t)hdr->size, (hsize_t)hdr->size};
    bf_h5_rows_plan(path, "patches", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, pdims, NULL, &pw->w);
    pw->block = (size_t)pw->w.chunk_rows * PATCH_BLOCK_CHUNKS;
}

static long n_blocks(const patch_writer *pw)
{
    return pw->block ? (long)(((size_t)pw->hdr->n + pw->block - 1) / pw->block) : 0;
}

/* hdr: n, size and which arrays exist (non-NULL pointers); the rows come from
 * fill block by block, each written before the next is made (rank 0's side under
 * several ranks). *neighbours: stored patches with a neighbour. */
static bf_status write_columns(hid_t file, const bf_patches *hdr, const char *path,
                               patch_rows_fn fill, void *user, int threads,
                               const bf_rank_link *link, long *neighbours, bf_error *err)
{
    const hsize_t N = (hsize_t)hdr->n, S = (hsize_t)hdr->size;
    patch_writer pw;
    writer_init(&pw, hdr, path, fill, user, threads);
    hsize_t pdims[3] = {N, S, S};
    bf_status st = bf_h5_rows_create(file, path, "patches", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3,
                                     pdims, NULL, &pw.w, err);
    for (int k = 0; st == BF_OK && k < N_COLUMNS; k++) {
        if (!pw.cols[k].data)
            continue;
        hsize_t dims[2] = {N, (hsize_t)pw.cols[k].cols};
        st = bf_h5_create_dataset(file, path, pw.cols[k].name, pw.cols[k].ftype,
                                  pw.cols[k].cols ? 2 : 1, dims, 0, &pw.ds[k], err);
    }
    st = bf_rank_blocks(link, n_blocks(&pw), make_patch_block, store_patch_block, &pw, st, err);
    bf_h5_rows_close(&pw.w);
    for (int k = 0; k < N_COLUMNS; k++)
        bf_h5_close(&pw.ds[k], H5Dclose);
    if (neighbours)
        *neighbours = pw.neighbours;
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

static bf_status check_patches(const bf_patches *hdr, const char *path, bf_error *err)
{
    if (hdr->n < 1 || !hdr->patches)
        return bf_error_set(err, BF_ERR_INVALID, "%s: nothing to write (no patches)", path);
    if (hdr->size < 1 || hdr->size > MAX_PATCH_SIZE)
        return bf_error_set(err, BF_ERR_INVALID, "%s: patch size %d is not in 1..%d", path,
                            hdr->size, MAX_PATCH_SIZE);
    return BF_OK;
}

/* Rank 0 (or the one process): agreed with the other ranks before the rename. */
static bf_status write_patches_file(const bf_patches *hdr, const char *path, patch_rows_fn fill,
                                    void *user, int threads, const bf_rank_link *link,
                                    long *neighbours, bf_error *err)
{
    bf_h5_quiet quiet;
    bf_h5_quiet_begin(&quiet);
    bf_atomic_file af;
    hid_t file = H5I_INVALID_HID;
    bf_status st = bf_h5_create_atomic(&af, path, &file, err);
    int made = st == BF_OK;
    if (made)
        st = write_columns(file, hdr, path, fill, user, threads, link, neighbours, err);
    else
        st = bf_rank_blocks(link, 0, NULL, NULL, NULL, st, err); /* agrees the failure */
    if (st == BF_OK)
        st = write_attrs(file, hdr, path, err);
    st = bf_rank_agree(link, st, err);
    if (st == BF_OK) {
        st = bf_h5_commit_atomic(&af, &file, err);
    } else if (made) {
        bf_h5_close(&file, H5Fclose);
        bf_atomic_abort(&af);
    }
    bf_h5_quiet_end(&quiet);
    return st;
}

bf_status bf_patches_write_h5(const bf_patches *p, const char *path, bf_error *err)
{
    bf_status st = check_patches(p, path, err);
    return st != BF_OK ? st
                       : write_patches_file(p, path, view_of_memory, (void *)p, 0, NULL, NULL,
                                            err);
}

typedef struct {
    const bf_peaks_config *cfg;
    int threads;
    bf_patches block;                 /* block-sized arrays */
    bf_progress prog;
} patch_sim_source;

static bf_status view_of_simulation(void *user, long row0, long n, bf_patches *view,
                                    bf_error *err)
{
    patch_sim_source *src = user;
    bf_status st = bf_patches_simulate_rows(src->cfg, row0, n, src->threads, &src->block,
                                            &src->prog, err);
    *view = src->block;
    return st;
}

bf_status bf_patches_sample_h5_ranks(const bf_peaks_config *cfg, int threads, const char *path,
                                     const bf_rank_link *link, long *neighbours, bf_error *err)
{
    if (threads < 0)
        return bf_error_set(err, BF_ERR_INVALID, "threads: %d is negative", threads);
    if (threads == 0)
        threads = bf_default_threads();
    const int rank = link && link->size > 1 ? link->rank : 0;
    patch_sim_source src = {.cfg = cfg, .threads = threads};
    long nb = 0;
    /* one block of every array; hdr is the block with the whole count */
    const size_t S2 = (size_t)cfg->size * (size_t)cfg->size;
    size_t rows = (BF_H5_CHUNK_BYTES / (S2 * sizeof(float)));
    rows = (rows < 1 ? 1 : rows) * PATCH_BLOCK_CHUNKS;
    if (cfg->count > 0 && rows > (size_t)cfg->count)
        rows = (size_t)cfg->count;
    bf_status st = bf_patches_alloc_rows(cfg, (long)rows, &src.block, err);
    bf_patches hdr = src.block;
    hdr.n = cfg->count;
    if (st == BF_OK)
        st = check_patches(&hdr, path, err);
    /* every rank simulates its blocks from the same config: a rank that cannot
     * stops them all before rank 0 creates the file */
    st = bf_rank_agree(link, st, err);
    if (st == BF_OK) {
        bf_progress_begin(&src.prog, "sample-peaks", (uint64_t)cfg->count);
        if (rank == 0) {
            st = write_patches_file(&hdr, path, view_of_simulation, &src, threads, link, &nb,
                                    err);
        } else {
            patch_writer pw;
            writer_init(&pw, &hdr, path, view_of_simulation, &src, threads);
            st = bf_rank_blocks(link, n_blocks(&pw), make_patch_block, NULL, &pw, st, err);
            st = bf_rank_agree(link, st, err); /* write_patches_file's, before the rename */
        }
        bf_progress_end(&src.prog);
        st = bf_rank_agree(link, st, err); /* a rename that failed on rank 0 fails all */
    }
    bf_patches_free(&src.block);
    if (neighbours)
        *neighbours = nb;
    return st;
}

bf_status bf_patches_sample_h5(const bf_peaks_config *cfg, int threads, const char *path,
                               long *neighbours, bf_error *err)
{
    return bf_patches_sample_h5_ranks(cfg, threads, path, NULL, neighbours, err);
}

/* ---- reading -------------------------------------------------------------------- */

static const char *nonfinite_name(double x) { return isnan(x) ? "NaN" : "infinite"; }

/* Rows [first, first + n) of an optional per-patch array of n_file rows into *out
 * (left NULL when absent). */
static bf_status read_column(hid_t file, const char *path, const char *name, int cols,
                             H5T_class_t tclass, hid_t mtype, size_t elem, long n_file,
                             long first, long n, void **out, bf_error *err)
{
    *out = NULL;
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
        return BF_OK;
    size_t count = (size_t)(n ? n : 1) * (size_t)(cols ? cols : 1);
    *out = malloc(count * elem);
    if (!*out)
        return bf_error_set(err, BF_ERR_NOMEM, "%s: dataset '%s': out of memory", path, name);
    hsize_t want[2] = {(hsize_t)n_file, (hsize_t)cols};
    return bf_h5_read_rows(file, path, name, cols ? 2 : 1, tclass, want, (hsize_t)first,
                           (hsize_t)n, mtype, *out, err);
}

/* Every value of the `cols`-wide double array must be finite; v[0] is the file's row
 * `first`. */
static bf_status check_finite(const char *path, const char *name, const double *v, long first,
                              long n, int cols, bf_error *err)
{
    if (!v)
        return BF_OK;
    for (long i = 0; i < n; i++)
        for (int k = 0; k < cols; k++)
            if (!isfinite(v[i * cols + k]))
                return bf_error_set(err, BF_ERR_INVALID, "%s: %s: patch %ld value %d is %s", path,
                                    name, first + i, k, nonfinite_name(v[i * cols + k]));
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

/* The patches dataset open in *ds and shape-checked: d = (N, S, S), N >= 1. */
static bf_status open_patches(hid_t file, const char *path, hsize_t d[3], hid_t *ds,
                              bf_error *err)
{
    if (H5Lexists(file, "patches", H5P_DEFAULT) <= 0)
        return bf_error_set(err, BF_ERR_PARSE, "%s: no dataset 'patches' (not a patch file)",
                            path);
    bf_status st = bf_h5_open_checked(file, path, "patches", 3, H5T_FLOAT, d, ds, err);
    if (st != BF_OK)
        return st;
    if (d[0] == 0) {
        st = bf_error_set(err, BF_ERR_INVALID, "%s: patches: empty (no patches)", path);
    } else if (d[1] != d[2] || d[1] < 1 || d[1] > MAX_PATCH_SIZE || d[0] > INT32_MAX ||
               !bf_h5_fits(d[0], d[1] * d[2], sizeof(float))) {
        char want[64];
        snprintf(want, sizeof want, "(N, S, S) with 1 <= S <= %d", MAX_PATCH_SIZE);
        st = bf_h5_shape_error(err, path, "patches", want, d, 3);
    }
    if (st != BF_OK)
        bf_h5_close(ds, H5Dclose);
    return st;
}

static bf_status read_file(hid_t file, hid_t ds, const hsize_t *d, const char *path,
                           long first, long n, bf_patches *out, bf_error *err)
{
    const long n_file = (long)d[0];
    const int S = (int)d[1];
    out->n = n;
    out->size = S;
    out->patches = malloc((size_t)(n ? n : 1) * (size_t)S * (size_t)S * sizeof(float));
    if (!out->patches)
        return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory for %ld patches of %d x %d",
                            path, n, S, S);
    bf_status st = bf_h5_read_slab(ds, 3, d, (hsize_t)first, (hsize_t)n, H5T_NATIVE_FLOAT,
                                   out->patches, path, "patches", err);
    if (st != BF_OK)
        return st;
    for (long i = 0; i < n; i++)
        for (int r = 0; r < S; r++)
            for (int c = 0; c < S; c++) {
                float v = out->patches[((size_t)i * S + r) * S + c];
                if (!isfinite(v))
                    return bf_error_set(err, BF_ERR_INVALID,
                                        "%s: patches: patch %ld pixel (%d, %d) is %s", path,
                                        first + i, r, c, nonfinite_name(v));
            }
    /* each buffer goes to out even when its read fails, so bf_patches_free frees it */
    void *col = NULL;
#define COLUMN(field, name, cols, tclass, mtype, elem)                                         \
    st = read_column(file, path, name, cols, tclass, mtype, elem, n_file, first, n, &col,    \
                     err);                                                                   \
    out->field = col;                                                                        \
    if (st != BF_OK)                                                                         \
        return st;
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

    if ((st = check_finite(path, "centre", out->centre, first, n, 2, err)) == BF_OK &&
        (st = check_finite(path, "peak", (const double *)out->peak, first, n, BF_PEAK2D_NPARAM,
                           err)) == BF_OK &&
        (st = check_finite(path, "background", (const double *)out->background, first, n,
                           BF_BG2D_NPARAM, err)) == BF_OK)
        st = check_finite(path, "read_sigma", out->read_sigma, first, n, 1, err);
    if (st == BF_OK)
        st = read_attrs(file, path, out, err);
    return st;
}

/* count < 0: every patch from first (the whole read); out NULL: only *n_file. */
static bf_status read_patches(const char *path, long first, long count, bf_patches *out,
                              long *n_file, bf_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    bf_h5_quiet quiet;
    bf_h5_quiet_begin(&quiet);
    hid_t file = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    hsize_t d[3];
    bf_status st = bf_h5_open_read(path, &file, err);
    if (st == BF_OK)
        st = open_patches(file, path, d, &ds, err);
    const long n = st == BF_OK ? (long)d[0] : 0;
    if (st == BF_OK && n_file)
        *n_file = n;
    if (count < 0)
        count = n - first;
    if (st == BF_OK && out && (first < 0 || count < 0 || first > n - count))
        st = bf_error_set(err, BF_ERR_RANGE,
                          "%s: patches [%ld, %ld) requested, the file holds %ld", path, first,
                          first + count, n);
    if (st == BF_OK && out)
        st = read_file(file, ds, d, path, first, count, out, err);
    bf_h5_close(&ds, H5Dclose);
    bf_h5_close(&file, H5Fclose);
    bf_h5_quiet_end(&quiet);
    if (st != BF_OK && out)
        bf_patches_free(out);
    return st;
}

bf_status bf_patches_h5_count(const char *path, long *n, bf_error *err)
{
    *n = 0;
    return read_patches(path, 0, 0, NULL, n, err);
}

bf_status bf_patches_read_h5_rows(const char *path, long first, long count, bf_patches *out,
                                  bf_error *err)
{
    if (count < 0) { /* read_patches' "all" must not be reachable from here */
        memset(out, 0, sizeof *out);
        return bf_error_set(err, BF_ERR_RANGE, "%s: %ld patches requested", path, count);
    }
    return read_patches(path, first, count, out, NULL, err);
}

bf_status bf_patches_read_h5(const char *path, bf_patches *out, bf_error *err)
{
    return read_patches(path, 0, -1, out, NULL, err);
}
