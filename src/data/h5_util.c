/* data/h5_util.c — HDF5 helpers shared by the dataset (data/dataset_h5.c) and
 * patch (data/patches_h5.c) files: quiet error handling with messages naming
 * the file and object, chunked + compressed datasets, attributes, atomic
 * creation and checked reads. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/data_internal.h"

#define CHUNK_BYTES BF_H5_CHUNK_BYTES

/* ---- errors -------------------------------------------------------------------- */

static herr_t innermost_desc(unsigned n, const H5E_error2_t *e, void *data)
{
    if (n == 0 && e->desc)
        snprintf(data, 256, "%s", e->desc);
    return 0;
}

/* HDF5's most specific message for the last failure (then cleared). */
void bf_h5_detail(char buf[256])
{
    buf[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_desc, buf);
    H5Eclear2(H5E_DEFAULT);
    if (!buf[0])
        snprintf(buf, 256, "HDF5 error");
}

bf_status bf_h5_fail(bf_error *err, bf_status code, const char *path, const char *what,
                         const char *name, const char *action)
{
    char detail[256];
    bf_h5_detail(detail);
    if (name)
        return bf_error_set(err, code, "%s: %s '%s': %s: %s", path, what, name, action, detail);
    return bf_error_set(err, code, "%s: %s: %s", path, action, detail);
}

void bf_h5_quiet_begin(bf_h5_quiet *q)
{
    H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void bf_h5_quiet_end(const bf_h5_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->fn, q->data); }

void bf_h5_close(hid_t *id, herr_t (*closer)(hid_t))
{
    if (*id >= 0)
        closer(*id);
    *id = H5I_INVALID_HID;
}

static int filter_encodes(H5Z_filter_t f)
{
    unsigned int config = 0;
    return H5Zfilter_avail(f) > 0 && H5Zget_filter_info(f, &config) >= 0 &&
           (config & H5Z_FILTER_CONFIG_ENCODE_ENABLED);
}

bf_dataset_compression bf_dataset_compression_default(void)
{
    /* bench/sample_write.c, 4,000 tetragonal patterns on one core (README "HDF5
     * layouts"): shuffle + run-length deflate on the simulation threads writes in
     * 0.23 s what the pipeline's shuffle + deflate(1) writes in 0.44 s, and 2 %
     * smaller; the pipeline's cost would not shrink as threads are added. */
    bf_dataset_compression c = {.deflate_level = 1, .shuffle = 1, .threaded = 1, .rle = 1};
    return c;
}

static hsize_t chunk_rows_for(hsize_t n_rows, size_t row_bytes)
{
    hsize_t rows = CHUNK_BYTES / row_bytes;
    if (rows < 1)
        rows = 1;
    if (rows > n_rows)
        rows = n_rows;
    return rows;
}

/* Creates dataset `name` with dims; chunked by rows of `row_bytes` with the
 * given shuffle + deflate when rows > 0 (and dims[0] > 0). */
bf_status bf_h5_create_dataset_c(hid_t file, const char *path, const char *name, hid_t ftype,
                                 int rank, const hsize_t *dims, size_t row_bytes,
                                 const bf_dataset_compression *comp, hid_t *out, bf_error *err)
{
    bf_status st = BF_OK;
    bf_dataset_compression dflt = bf_dataset_compression_default();
    if (!comp)
        comp = &dflt;
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    *out = H5I_INVALID_HID;
    if (space < 0 || dcpl < 0) {
        st = bf_h5_fail(err, BF_ERR_IO, path, "dataset", name, "cannot describe");
        goto done;
    }
    /* No modification times in the object headers: the same data gives the
     * same bytes (`sample`: "the file is identical for any N"). */
    if (H5Pset_obj_track_times(dcpl, 0) < 0) {
        st = bf_h5_fail(err, BF_ERR_IO, path, "dataset", name, "cannot describe");
        goto done;
    }
    if (row_bytes > 0 && dims[0] > 0) {
        hsize_t chunk[4];
        chunk[0] = chunk_rows_for(dims[0], row_bytes);
        for (int r = 1; r < rank; r++)
            chunk[r] = dims[r];
        if (H5Pset_chunk(dcpl, rank, chunk) < 0 ||
            (comp->shuffle && filter_encodes(H5Z_FILTER_SHUFFLE) && H5Pset_shuffle(dcpl) < 0) ||
            (comp->deflate_level > 0 && filter_encodes(H5Z_FILTER_DEFLATE) &&
             H5Pset_deflate(dcpl, (unsigned)comp->deflate_level) < 0)) {
            st = bf_h5_fail(err, BF_ERR_IO, path, "dataset", name, "cannot set chunking");
            goto done;
        }
    }
    *out = H5Dcreate2(file, name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (*out < 0)
        st = bf_h5_fail(err, BF_ERR_IO, path, "dataset", name, "cannot create");
done:
    bf_h5_close(&dcpl, H5Pclose);
    bf_h5_close(&space, H5Sclose);
    return st;
}

bf_status bf_h5_create_dataset(hid_t file, const char *path, const char *name, hid_t ftype,
                               int rank, const hsize_t *dims, size_t row_bytes, hid_t *out,
                               bf_error *err)
{
    /* patch files and the small datasets keep shuffle + deflate(1) */
    bf_dataset_compression c = {.deflate_level = 1, .shuffle = 1, .threaded = 0, .rle = 0};
    return bf_h5_create_dataset_c(file, path, name, ftype, rank, dims, row_bytes, &c, out, err);
}

/* ---- streamed rows ------------------------------------------------------------- */

void bf_h5_rows_plan(const char *path, const char *name, hid_t ftype, hid_t mtype, int rank,
                     const hsize_t *dims, const bf_dataset_compression *comp, bf_h5_rows *w)
{
    memset(w, 0, sizeof *w);
    w->ds = H5I_INVALID_HID;
    w->path = path;
    w->name = name;
    w->mtype = mtype;
    w->rank = rank;
    w->comp = comp ? *comp : bf_dataset_compression_default();
    size_t esize = H5Tget_size(ftype);
    w->row_bytes = esize;
    for (int r = 0; r < rank; r++) {
        w->dims[r] = dims[r];
        if (r > 0)
            w->row_bytes *= (size_t)dims[r];
    }
    w->chunk_rows = dims[0] > 0 ? chunk_rows_for(dims[0], w->row_bytes) : 0;
    /* Our own chunks are HDF5's only when memory and file types are the same
     * bytes (little-endian IEEE here) and the filters we mimic are the ones set. */
    int shuffle_on = w->comp.shuffle && filter_encodes(H5Z_FILTER_SHUFFLE);
    int deflate_on = w->comp.deflate_level > 0 && filter_encodes(H5Z_FILTER_DEFLATE);
    w->comp.shuffle = shuffle_on;
    w->comp.deflate_level = deflate_on ? w->comp.deflate_level : 0;
    w->direct = w->comp.threaded && H5Tequal(ftype, mtype) > 0 && dims[0] > 0;
    w->comp.rle = w->direct && w->comp.rle;
}

bf_status bf_h5_rows_create(hid_t file, const char *path, const char *name, hid_t ftype,
                            hid_t mtype, int rank, const hsize_t *dims,
                            const bf_dataset_compression *comp, bf_h5_rows *w, bf_error *err)
{
    bf_h5_rows_plan(path, name, ftype, mtype, rank, dims, comp, w);
    return bf_h5_create_dataset_c(file, path, name, ftype, rank, dims, w->row_bytes, &w->comp,
                                  &w->ds, err);
}

/* HDF5's shuffle filter (H5Zshuffle.c's definition): byte b of element i goes
 * to b * n + i. */
static void shuffle_bytes(const unsigned char *in, unsigned char *out, size_t n_elems,
                          size_t esize)
{
    for (size_t b = 0; b < esize; b++)
        for (size_t i = 0; i < n_elems; i++)
            out[b * n_elems + i] = in[i * esize + b];
}

/* One chunk deflated as HDF5's deflate filter does it (compress2: a zlib
 * stream, default window and memory), or with the Z_RLE strategy, which any
 * inflate reads back. 0 on success. */
static int deflate_chunk(const unsigned char *src, size_t n, unsigned char *dst, size_t cap,
                         int level, int rle, size_t *out_n)
{
    if (!rle) {
        uLongf got = (uLongf)cap;
        if (compress2(dst, &got, src, (uLong)n, level) != Z_OK)
            return -1;
        *out_n = got;
        return 0;
    }
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, level, Z_DEFLATED, 15, 8, Z_RLE) != Z_OK)
        return -1;
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)n;
    z.next_out = dst;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_n = z.total_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? 0 : -1;
}

static bf_status check_rows(const bf_h5_rows *w, hsize_t row0, hsize_t nrows, bf_error *err)
{
    if (row0 + nrows > w->dims[0])
        return bf_error_set(err, BF_ERR_RANGE, "%s: dataset '%s': rows %llu..%llu past %llu",
                            w->path, w->name, (unsigned long long)row0,
                            (unsigned long long)(row0 + nrows), (unsigned long long)w->dims[0]);
    if (w->direct &&
        (row0 % w->chunk_rows != 0 || (nrows % w->chunk_rows != 0 && row0 + nrows != w->dims[0])))
        return bf_error_set(err, BF_ERR_INVALID, "%s: dataset '%s': rows %llu+%llu are not "
                            "whole chunks of %llu", w->path, w->name, (unsigned long long)row0,
                            (unsigned long long)nrows, (unsigned long long)w->chunk_rows);
    return BF_OK;
}

/* A packed block: uint64 n_chunks, uint64 bytes of each, then the chunks back to
 * back; n_chunks 0: the raw rows follow (HDF5's pipeline compresses them). */
#define PACK_HEAD(n) ((size_t)(1 + (n)) * sizeof(uint64_t))

bf_status bf_h5_rows_pack(const bf_h5_rows *w, hsize_t row0, hsize_t nrows, const void *buf,
                          int threads, bf_h5_block *out, bf_error *err)
{
    out->bytes = NULL;
    out->n_bytes = 0;
    bf_status st = check_rows(w, row0, nrows, err);
    if (st != BF_OK)
        return st;
    if (!w->direct) {
        size_t raw = (size_t)nrows * w->row_bytes;
        out->bytes = malloc(PACK_HEAD(0) + (raw ? raw : 1));
        if (!out->bytes)
            return bf_error_set(err, BF_ERR_NOMEM, "%s: dataset '%s': out of memory for a block",
                                w->path, w->name);
        memset(out->bytes, 0, PACK_HEAD(0));
        if (raw)
            memcpy(out->bytes + PACK_HEAD(0), buf, raw);
        out->n_bytes = PACK_HEAD(0) + raw;
        return BF_OK;
    }
    const size_t chunk_bytes = (size_t)w->chunk_rows * w->row_bytes;
    const size_t esize = H5Tget_size(w->mtype);
    const long n_chunks = (long)((nrows + w->chunk_rows - 1) / w->chunk_rows);
    const int deflate = w->comp.deflate_level > 0, shuffle = w->comp.shuffle && esize > 1;
    const size_t slot = deflate ? compressBound((uLong)chunk_bytes) : chunk_bytes;
    const size_t head = PACK_HEAD(n_chunks);
    unsigned char *pack = malloc(head + (size_t)n_chunks * slot);
    size_t *out_bytes = calloc((size_t)n_chunks + 1, sizeof *out_bytes);
    int bad = !pack || !out_bytes;
    if (threads < 1)
        threads = bf_default_threads();
    if (!bad) {
#pragma omp parallel num_threads(threads)
        {
            unsigned char *whole = malloc(chunk_bytes), *mixed = malloc(chunk_bytes);
#pragma omp for schedule(dynamic)
            for (long c = 0; c < n_chunks; c++) {
                if (!whole || !mixed) {
#pragma omp atomic write
                    bad = 1;
                    continue;
                }
                /* An edge chunk is stored whole, its missing rows the fill value (0),
                 * as HDF5 itself stores it. */
                hsize_t r0 = (hsize_t)c * w->chunk_rows;
                size_t have = (size_t)(nrows - r0 < w->chunk_rows ? nrows - r0 : w->chunk_rows);
                memcpy(whole, (const unsigned char *)buf + r0 * w->row_bytes, have * w->row_bytes);
                memset(whole + have * w->row_bytes, 0, chunk_bytes - have * w->row_bytes);
                const unsigned char *src = whole;
                if (shuffle) {
                    shuffle_bytes(whole, mixed, chunk_bytes / esize, esize);
                    src = mixed;
                }
                unsigned char *dst = pack + head + (size_t)c * slot;
                if (deflate) {
                    size_t n = 0;
                    if (deflate_chunk(src, chunk_bytes, dst, slot, w->comp.deflate_level,
                                      w->comp.rle, &n) != 0) {
#pragma omp atomic write
                        bad = 1;
                        continue;
                    }
                    out_bytes[c] = n;
                } else {
                    memcpy(dst, src, chunk_bytes);
                    out_bytes[c] = chunk_bytes;
                }
            }
            free(whole);
            free(mixed);
        }
    }
    if (bad) {
        free(pack);
        free(out_bytes);
        return bf_error_set(err, BF_ERR_NOMEM, "%s: dataset '%s': cannot compress a block",
                            w->path, w->name);
    }
    /* chunks moved back to back (each lands at or before its slot) */
    size_t at = head;
    for (long c = 0; c < n_chunks; c++) {
        memmove(pack + at, pack + head + (size_t)c * slot, out_bytes[c]);
        at += out_bytes[c];
    }
    uint64_t v = (uint64_t)n_chunks;
    memcpy(pack, &v, sizeof v);
    for (long c = 0; c < n_chunks; c++) {
        v = out_bytes[c];
        memcpy(pack + (size_t)(1 + c) * sizeof v, &v, sizeof v);
    }
    free(out_bytes);
    out->bytes = pack;
    out->n_bytes = at;
    return BF_OK;
}

bf_status bf_h5_rows_store(bf_h5_rows *w, hsize_t row0, hsize_t nrows, const bf_h5_block *b,
                           bf_error *err)
{
    bf_status st = check_rows(w, row0, nrows, err);
    if (st != BF_OK)
        return st;
    uint64_t n_chunks = 0;
    const long want = w->direct ? (long)((nrows + w->chunk_rows - 1) / w->chunk_rows) : 0;
    if (b->n_bytes >= sizeof n_chunks)
        memcpy(&n_chunks, b->bytes, sizeof n_chunks);
    if (b->n_bytes < sizeof n_chunks || n_chunks != (uint64_t)want ||
        b->n_bytes < PACK_HEAD(want))
        return bf_error_set(err, BF_ERR_PARSE, "%s: dataset '%s': a block of rows %llu+%llu "
                            "is not %ld packed chunks", w->path, w->name,
                            (unsigned long long)row0, (unsigned long long)nrows, want);
    const unsigned char *data = b->bytes + PACK_HEAD(want);
    const size_t data_bytes = b->n_bytes - PACK_HEAD(want);
    if (!w->direct) {
        if (data_bytes != (size_t)nrows * w->row_bytes)
            return bf_error_set(err, BF_ERR_PARSE, "%s: dataset '%s': a block of %llu rows has "
                                "%zu bytes", w->path, w->name, (unsigned long long)nrows,
                                data_bytes);
        if (nrows == 0)
            return BF_OK;
        hsize_t start[3] = {row0, 0, 0}, count[3];
        for (int r = 0; r < w->rank; r++)
            count[r] = r == 0 ? nrows : w->dims[r];
        hid_t fspace = H5Dget_space(w->ds), mspace = H5Screate_simple(w->rank, count, NULL);
        herr_t rc = fspace < 0 || mspace < 0 ? -1
                    : H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL);
        if (rc >= 0)
            rc = H5Dwrite(w->ds, w->mtype, mspace, fspace, H5P_DEFAULT, data);
        bf_h5_close(&mspace, H5Sclose);
        bf_h5_close(&fspace, H5Sclose);
        return rc < 0 ? bf_h5_fail(err, BF_ERR_IO, w->path, "dataset", w->name, "cannot write")
                      : BF_OK;
    }
    /* Stored in row order on this thread: the same file whatever the thread count. */
    size_t at = 0;
    for (long c = 0; c < want; c++) {
        uint64_t n = 0;
        memcpy(&n, b->bytes + (size_t)(1 + c) * sizeof n, sizeof n);
        if (n > data_bytes - at)
            return bf_error_set(err, BF_ERR_PARSE, "%s: dataset '%s': chunk %ld of a block "
                                "runs past it", w->path, w->name, c);
        hsize_t offset[3] = {row0 + (hsize_t)c * w->chunk_rows, 0, 0};
        if (H5Dwrite_chunk(w->ds, H5P_DEFAULT, 0, offset, (size_t)n, data + at) < 0)
            return bf_h5_fail(err, BF_ERR_IO, w->path, "dataset", w->name,
                              "cannot write a chunk");
        at += (size_t)n;
    }
    return BF_OK;
}

bf_status bf_h5_rows_write(bf_h5_rows *w, hsize_t row0, hsize_t nrows, const void *buf,
                           int threads, bf_error *err)
{
    if (nrows == 0)
        return BF_OK;
    bf_h5_block b;
    bf_status st = bf_h5_rows_pack(w, row0, nrows, buf, threads, &b, err);
    if (st == BF_OK)
        st = bf_h5_rows_store(w, row0, nrows, &b, err);
    free(b.bytes);
    return st;
}

void bf_h5_rows_close(bf_h5_rows *w) { bf_h5_close(&w->ds, H5Dclose); }

bf_status bf_h5_write_whole(hid_t file, const char *path, const char *name, hid_t ftype,
                             hid_t mtype, int rank, const hsize_t *dims, size_t row_bytes,
                             const void *data, bf_error *err)
{
    hid_t ds;
    bf_status st = bf_h5_create_dataset(file, path, name, ftype, rank, dims, row_bytes, &ds, err);
    if (st == BF_OK && dims[0] > 0 && H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        st = bf_h5_fail(err, BF_ERR_IO, path, "dataset", name, "cannot write");
    bf_h5_close(&ds, H5Dclose);
    return st;
}

/* Variable-length UTF-8 string type (caller closes). */
hid_t bf_h5_vlen_string_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
        H5Tclose(t);
        t = H5I_INVALID_HID;
    }
    return t;
}

/* Root attribute: n values of `mtype` (n < 0: a scalar). */
bf_status bf_h5_write_attr(hid_t obj, const char *path, const char *name, hid_t ftype,
                            hid_t mtype, long n, const void *data, bf_error *err)
{
    bf_status st = BF_OK;
    hsize_t dims[1] = {n < 0 ? 1 : (hsize_t)n};
    hid_t space = n < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, NULL);
    hid_t attr = space < 0 ? H5I_INVALID_HID
                           : H5Acreate2(obj, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr < 0 || H5Awrite(attr, mtype, data) < 0)
        st = bf_h5_fail(err, BF_ERR_IO, path, "attribute", name, "cannot write");
    bf_h5_close(&attr, H5Aclose);
    bf_h5_close(&space, H5Sclose);
    return st;
}

/* ---- reading -------------------------------------------------------------------- */

/* Opens dataset `name`, checks its rank and type class, and fills dims. */
bf_status bf_h5_open_checked(hid_t file, const char *path, const char *name, int rank,
                              H5T_class_t tclass, hsize_t *dims, hid_t *out, bf_error *err)
{
    bf_status st = BF_OK;
    hid_t space = H5I_INVALID_HID, type = H5I_INVALID_HID;
    *out = H5Dopen2(file, name, H5P_DEFAULT);
    if (*out < 0)
        return bf_h5_fail(err, BF_ERR_PARSE, path, "dataset", name, "cannot open");
    space = H5Dget_space(*out);
    type = H5Dget_type(*out);
    if (space < 0 || type < 0) {
        st = bf_h5_fail(err, BF_ERR_PARSE, path, "dataset", name, "cannot inspect");
        goto done;
    }
    int r = H5Sget_simple_extent_ndims(space);
    if (r != rank) {
        st = bf_error_set(err, BF_ERR_PARSE, "%s: dataset '%s': rank %d, expected %d", path, name,
                          r, rank);
        goto done;
    }
    H5Sget_simple_extent_dims(space, dims, NULL);
    if (H5Tget_class(type) != tclass) {
        st = bf_error_set(err, BF_ERR_PARSE, "%s: dataset '%s': expected %s values", path, name,
                          tclass == H5T_FLOAT ? "floating-point" : "integer");
        goto done;
    }
done:
    bf_h5_close(&type, H5Tclose);
    bf_h5_close(&space, H5Sclose);
    if (st != BF_OK)
        bf_h5_close(out, H5Dclose);
    return st;
}

bf_status bf_h5_read_all(hid_t ds, hid_t mtype, void *buf, const char *path, const char *name,
                          bf_error *err)
{
    if (H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        return bf_h5_fail(err, BF_ERR_IO, path, "dataset", name, "cannot read");
    return BF_OK;
}

/* "(3, 2806)" */
void bf_h5_format_dims(const hsize_t *dims, int rank, char *out, size_t outsz)
{
    size_t n = (size_t)snprintf(out, outsz, "(");
    for (int r = 0; r < rank && n < outsz; r++)
        n += (size_t)snprintf(out + n, outsz - n, "%s%llu", r ? ", " : "",
                              (unsigned long long)dims[r]);
    if (n < outsz - 1)
        snprintf(out + n, outsz - n, ")");
}

bf_status bf_h5_shape_error(bf_error *err, const char *path, const char *name, const char *want,
                             const hsize_t *dims, int rank)
{
    char got[96];
    bf_h5_format_dims(dims, rank, got, sizeof got);
    return bf_error_set(err, BF_ERR_PARSE, "%s: dataset '%s': shape %s, expected %s", path, name,
                        got, want);
}

/* Rows [first, first + count) of the open dataset ds, whose shape is dims[0..rank-1]
 * (rank <= 3), into buf as mtype: a hyperslab of the first dimension, so a shard
 * reads only its own chunks. */
bf_status bf_h5_read_slab(hid_t ds, int rank, const hsize_t *dims, hsize_t first,
                          hsize_t count, hid_t mtype, void *buf, const char *path,
                          const char *name, bf_error *err)
{
    if (count == 0)
        return BF_OK;
    if (first == 0 && count == dims[0])
        return bf_h5_read_all(ds, mtype, buf, path, name, err);
    hsize_t start[3] = {first, 0, 0}, n[3] = {count, 0, 0};
    for (int r = 1; r < rank; r++)
        n[r] = dims[r];
    hid_t fspace = H5Dget_space(ds), mspace = H5Screate_simple(rank, n, NULL);
    bf_status st = BF_OK;
    if (fspace < 0 || mspace < 0 ||
        H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, n, NULL) < 0 ||
        H5Dread(ds, mtype, mspace, fspace, H5P_DEFAULT, buf) < 0)
        st = bf_h5_fail(err, BF_ERR_IO, path, "dataset", name, "cannot read");
    bf_h5_close(&mspace, H5Sclose);
    bf_h5_close(&fspace, H5Sclose);
    return st;
}

bf_status bf_h5_read_rows(hid_t file, const char *path, const char *name, int rank,
                          H5T_class_t tclass, const hsize_t *want, hsize_t first,
                          hsize_t count, hid_t mtype, void *buf, bf_error *err)
{
    hsize_t dims[3];
    hid_t ds = H5I_INVALID_HID;
    bf_status st = bf_h5_open_checked(file, path, name, rank, tclass, dims, &ds, err);
    if (st != BF_OK)
        return st;
    if (memcmp(dims, want, (size_t)rank * sizeof *dims) != 0) {
        char text[96];
        bf_h5_format_dims(want, rank, text, sizeof text);
        st = bf_h5_shape_error(err, path, name, text, dims, rank);
    } else if (first + count > dims[0]) {
        st = bf_error_set(err, BF_ERR_RANGE, "%s: dataset '%s': rows [%llu, %llu) requested, "
                          "it has %llu", path, name, (unsigned long long)first,
                          (unsigned long long)(first + count), (unsigned long long)dims[0]);
    } else {
        st = bf_h5_read_slab(ds, rank, dims, first, count, mtype, buf, path, name, err);
    }
    bf_h5_close(&ds, H5Dclose);
    return st;
}

bf_status bf_h5_read_exact(hid_t file, const char *path, const char *name, int rank,
                           H5T_class_t tclass, const hsize_t *want, hid_t mtype, void *buf,
                           bf_error *err)
{
    return bf_h5_read_rows(file, path, name, rank, tclass, want, 0, want[0], mtype, buf, err);
}

/* Reads string attribute `name` (scalar or 1-D, variable or fixed length) into
 * out[k * stride], at most max strings of stride-1 characters. Absent: *n = 0. */
bf_status bf_h5_read_attr_strings(hid_t obj, const char *path, const char *name, char *out,
                                   size_t stride, int max, int *n, bf_error *err)
{
    bf_status st = BF_OK;
    hid_t attr = H5I_INVALID_HID, type = H5I_INVALID_HID, space = H5I_INVALID_HID,
          mtype = H5I_INVALID_HID;
    char **vbuf = NULL, *fbuf = NULL;
    *n = 0;
    if (H5Aexists(obj, name) <= 0)
        return BF_OK;
    attr = H5Aopen(obj, name, H5P_DEFAULT);
    type = attr >= 0 ? H5Aget_type(attr) : H5I_INVALID_HID;
    space = attr >= 0 ? H5Aget_space(attr) : H5I_INVALID_HID;
    if (type < 0 || space < 0) {
        st = bf_h5_fail(err, BF_ERR_PARSE, path, "attribute", name, "cannot open");
        goto done;
    }
    if (H5Tget_class(type) != H5T_STRING) {
        st = bf_error_set(err, BF_ERR_PARSE, "%s: attribute '%s': not a string", path, name);
        goto done;
    }
    hssize_t count = H5Sget_simple_extent_npoints(space);
    if (count < 0 || count > max) {
        st = bf_error_set(err, BF_ERR_PARSE, "%s: attribute '%s': %lld strings, at most %d", path,
                          name, (long long)count, max);
        goto done;
    }
    mtype = H5Tcopy(H5T_C_S1);
    if (mtype < 0) {
        st = bf_h5_fail(err, BF_ERR_IO, path, "attribute", name, "cannot read");
        goto done;
    }
    H5Tset_cset(mtype, H5Tget_cset(type));
    if (H5Tis_variable_str(type) > 0) {
        vbuf = calloc((size_t)(count ? count : 1), sizeof *vbuf);
        if (!vbuf || H5Tset_size(mtype, H5T_VARIABLE) < 0 || H5Aread(attr, mtype, vbuf) < 0) {
            st = bf_h5_fail(err, BF_ERR_IO, path, "attribute", name, "cannot read");
            free(vbuf); /* nothing was allocated by HDF5 if the read failed */
            vbuf = NULL;
            goto done;
        }
        for (hssize_t k = 0; k < count; k++)
            snprintf(out + (size_t)k * stride, stride, "%s", vbuf[k] ? vbuf[k] : "");
        H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, vbuf);
    } else {
        size_t size = H5Tget_size(type) + 1; /* room for a terminator */
        fbuf = calloc((size_t)(count ? count : 1), size);
        if (!fbuf || H5Tset_size(mtype, size) < 0 || H5Tset_strpad(mtype, H5T_STR_NULLTERM) < 0 ||
            H5Aread(attr, mtype, fbuf) < 0) {
            st = bf_h5_fail(err, BF_ERR_IO, path, "attribute", name, "cannot read");
            goto done;
        }
        for (hssize_t k = 0; k < count; k++)
            snprintf(out + (size_t)k * stride, stride, "%s", fbuf + (size_t)k * size);
    }
    *n = (int)count;
done:
    free(vbuf);
    free(fbuf);
    bf_h5_close(&mtype, H5Tclose);
    bf_h5_close(&space, H5Sclose);
    bf_h5_close(&type, H5Tclose);
    bf_h5_close(&attr, H5Aclose);
    return st;
}

/* Numeric attribute (scalar or 1-D, at most max values) converted to mtype. */
bf_status bf_h5_read_attr_numbers(hid_t obj, const char *path, const char *name, hid_t mtype,
                                   void *out, int max, int *n, bf_error *err)
{
    bf_status st = BF_OK;
    hid_t attr = H5I_INVALID_HID, type = H5I_INVALID_HID, space = H5I_INVALID_HID;
    *n = 0;
    if (H5Aexists(obj, name) <= 0)
        return BF_OK;
    attr = H5Aopen(obj, name, H5P_DEFAULT);
    type = attr >= 0 ? H5Aget_type(attr) : H5I_INVALID_HID;
    space = attr >= 0 ? H5Aget_space(attr) : H5I_INVALID_HID;
    if (type < 0 || space < 0) {
        st = bf_h5_fail(err, BF_ERR_PARSE, path, "attribute", name, "cannot open");
        goto done;
    }
    hssize_t count = H5Sget_simple_extent_npoints(space);
    if (H5Tget_class(type) != H5T_INTEGER || count < 0 || count > max) {
        st = bf_error_set(err, BF_ERR_PARSE, "%s: attribute '%s': expected at most %d integers",
                          path, name, max);
        goto done;
    }
    if (count > 0 && H5Aread(attr, mtype, out) < 0) {
        st = bf_h5_fail(err, BF_ERR_IO, path, "attribute", name, "cannot read");
        goto done;
    }
    *n = (int)count;
done:
    bf_h5_close(&space, H5Sclose);
    bf_h5_close(&type, H5Tclose);
    bf_h5_close(&attr, H5Aclose);
    return st;
}

int bf_h5_fits(hsize_t a, hsize_t b, size_t elem)
{
    return b == 0 || a <= (hsize_t)(SIZE_MAX / elem) / b;
}
/* ---- files ------------------------------------------------------------------------ */

bf_status bf_h5_create_atomic(bf_atomic_file *af, const char *path, hid_t *file, bf_error *err)
{
    *file = H5I_INVALID_HID;
    bf_status st = bf_atomic_begin(af, path, 0, err);
    if (st != BF_OK)
        return st;
    errno = 0;
    *file = H5Fcreate(af->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (*file < 0) {
        int saved = errno;
        char detail[256];
        bf_h5_detail(detail);
        bf_atomic_abort(af);
        return bf_error_set(err, BF_ERR_IO, "%s: cannot create: %s", path,
                            saved ? strerror(saved) : detail);
    }
    return BF_OK;
}

bf_status bf_h5_commit_atomic(bf_atomic_file *af, hid_t *file, bf_error *err)
{
    herr_t rc = H5Fclose(*file);
    *file = H5I_INVALID_HID;
    if (rc < 0) {
        bf_status st = bf_h5_fail(err, BF_ERR_IO, af->path, NULL, NULL, "cannot finish writing");
        bf_atomic_abort(af);
        return st;
    }
    return bf_atomic_commit(af, err); /* removes the temporary file itself on failure */
}

bf_status bf_h5_open_read(const char *path, hid_t *file, bf_error *err)
{
    *file = H5I_INVALID_HID;
    errno = 0;
    if (H5Fis_hdf5(path) <= 0) {
        int saved = errno;
        FILE *fp = fopen(path, "rb");
        if (!fp)
            saved = errno;
        else
            fclose(fp);
        H5Eclear2(H5E_DEFAULT);
        return bf_error_set(err, fp ? BF_ERR_PARSE : BF_ERR_IO, "%s: %s", path,
                            fp ? "not an HDF5 file" : strerror(saved ? saved : ENOENT));
    }
    *file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*file < 0)
        return bf_h5_fail(err, BF_ERR_IO, path, NULL, NULL, "cannot open");
    return BF_OK;
}
