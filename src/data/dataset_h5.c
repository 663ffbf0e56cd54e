/* data/dataset_h5.c — HDF5 datasets in braggflow's layout and the seed
 * workflow's layout (see braggflow/data.h for both). Written through a
 * temporary file renamed into place, so a failed or interrupted write leaves
 * no partial file. HDF5's own error printing is off; messages name the file
 * and the dataset or attribute. */
#include "braggflow/data.h"

#include <errno.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (1u << 20) /* ~1 MiB chunks: good compression, cheap row reads */

/* ---- errors -------------------------------------------------------------------- */

static herr_t innermost_desc(unsigned n, const H5E_error2_t *e, void *data)
{
    if (n == 0 && e->desc)
        snprintf(data, 256, "%s", e->desc);
    return 0;
}

/* HDF5's most specific message for the last failure (then cleared). */
static void h5_detail(char buf[256])
{
    buf[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_desc, buf);
    H5Eclear2(H5E_DEFAULT);
    if (!buf[0])
        snprintf(buf, 256, "HDF5 error");
}

static bf_status h5_fail(bf_error *err, bf_status code, const char *path, const char *what,
                         const char *name, const char *action)
{
    char detail[256];
    h5_detail(detail);
    if (name)
        return bf_error_set(err, code, "%s: %s '%s': %s: %s", path, what, name, action, detail);
    return bf_error_set(err, code, "%s: %s: %s", path, action, detail);
}

typedef struct {
    H5E_auto2_t fn;
    void *data;
} h5_quiet;

static void quiet_begin(h5_quiet *q)
{
    H5Eget_auto2(H5E_DEFAULT, &q->fn, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void quiet_end(const h5_quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->fn, q->data); }

static void close_id(hid_t *id, herr_t (*closer)(hid_t))
{
    if (*id >= 0)
        closer(*id);
    *id = H5I_INVALID_HID;
}

/* ---- writing -------------------------------------------------------------------- */

static int filter_encodes(H5Z_filter_t f)
{
    unsigned int config = 0;
    return H5Zfilter_avail(f) > 0 && H5Zget_filter_info(f, &config) >= 0 &&
           (config & H5Z_FILTER_CONFIG_ENCODE_ENABLED);
}

/* Creates dataset `name` with dims; chunked by rows of `row_bytes` with
 * shuffle + deflate(1) when rows > 0 (and dims[0] > 0). */
static bf_status create_dataset(hid_t file, const char *path, const char *name, hid_t ftype,
                                int rank, const hsize_t *dims, size_t row_bytes, hid_t *out,
                                bf_error *err)
{
    bf_status st = BF_OK;
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    *out = H5I_INVALID_HID;
    if (space < 0 || dcpl < 0) {
        st = h5_fail(err, BF_ERR_IO, path, "dataset", name, "cannot describe");
        goto done;
    }
    /* No modification times in the object headers: the same data gives the
     * same bytes (`sample`: "the file is identical for any N"). */
    if (H5Pset_obj_track_times(dcpl, 0) < 0) {
        st = h5_fail(err, BF_ERR_IO, path, "dataset", name, "cannot describe");
        goto done;
    }
    if (row_bytes > 0 && dims[0] > 0) {
        hsize_t chunk[4];
        hsize_t rows = CHUNK_BYTES / row_bytes;
        if (rows < 1)
            rows = 1;
        if (rows > dims[0])
            rows = dims[0];
        chunk[0] = rows;
        for (int r = 1; r < rank; r++)
            chunk[r] = dims[r];
        if (H5Pset_chunk(dcpl, rank, chunk) < 0 ||
            (filter_encodes(H5Z_FILTER_SHUFFLE) && H5Pset_shuffle(dcpl) < 0) ||
            (filter_encodes(H5Z_FILTER_DEFLATE) && H5Pset_deflate(dcpl, 1) < 0)) {
            st = h5_fail(err, BF_ERR_IO, path, "dataset", name, "cannot set chunking");
            goto done;
        }
    }
    *out = H5Dcreate2(file, name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (*out < 0)
        st = h5_fail(err, BF_ERR_IO, path, "dataset", name, "cannot create");
done:
    close_id(&dcpl, H5Pclose);
    close_id(&space, H5Sclose);
    return st;
}

static bf_status write_whole(hid_t file, const char *path, const char *name, hid_t ftype,
                             hid_t mtype, int rank, const hsize_t *dims, size_t row_bytes,
                             const void *data, bf_error *err)
{
    hid_t ds;
    bf_status st = create_dataset(file, path, name, ftype, rank, dims, row_bytes, &ds, err);
    if (st == BF_OK && dims[0] > 0 && H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        st = h5_fail(err, BF_ERR_IO, path, "dataset", name, "cannot write");
    close_id(&ds, H5Dclose);
    return st;
}

/* Variable-length UTF-8 string type (caller closes). */
static hid_t vlen_string_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
        H5Tclose(t);
        t = H5I_INVALID_HID;
    }
    return t;
}

/* Root attribute: n values of `mtype` (n < 0: a scalar). */
static bf_status write_attr(hid_t obj, const char *path, const char *name, hid_t ftype,
                            hid_t mtype, long n, const void *data, bf_error *err)
{
    bf_status st = BF_OK;
    hsize_t dims[1] = {n < 0 ? 1 : (hsize_t)n};
    hid_t space = n < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, NULL);
    hid_t attr = space < 0 ? H5I_INVALID_HID
                           : H5Acreate2(obj, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr < 0 || H5Awrite(attr, mtype, data) < 0)
        st = h5_fail(err, BF_ERR_IO, path, "attribute", name, "cannot write");
    close_id(&attr, H5Aclose);
    close_id(&space, H5Sclose);
    return st;
}

static bf_status write_attrs(hid_t file, const bf_dataset *d, const char *path, bf_error *err)
{
    bf_status st = BF_OK;
    hid_t str = vlen_string_type();
    if (str < 0)
        return h5_fail(err, BF_ERR_IO, path, "attribute", "version", "cannot make string type");
    const char *version = BF_VERSION, *sampler = d->sampler, *instprm = d->instprm_sha256,
               *config = d->config_text;
    const char *names[BF_MAX_CLASSES], *cifs[BF_MAX_CLASSES];
    int nc = d->n_classes < 0 ? 0 : d->n_classes > BF_MAX_CLASSES ? BF_MAX_CLASSES : d->n_classes;
    for (int k = 0; k < nc; k++) {
        names[k] = d->class_names[k];
        cifs[k] = d->cif_sha256[k];
    }
    st = write_attr(file, path, "version", str, str, -1, &version, err);
    if (st == BF_OK)
        st = write_attr(file, path, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, -1, &d->seed, err);
    if (st == BF_OK)
        st = write_attr(file, path, "sampler", str, str, -1, &sampler, err);
    if (st == BF_OK && nc > 0)
        st = write_attr(file, path, "class_names", str, str, nc, names, err);
    if (st == BF_OK && nc > 0)
        st = write_attr(file, path, "class_labels", H5T_STD_I32LE, H5T_NATIVE_INT32, nc,
                        d->class_labels, err);
    if (st == BF_OK)
        st = write_attr(file, path, "instprm_sha256", str, str, -1, &instprm, err);
    if (st == BF_OK && nc > 0)
        st = write_attr(file, path, "cif_sha256", str, str, nc, cifs, err);
    if (st == BF_OK)
        st = write_attr(file, path, "config", str, str, -1, &config, err);
    H5Tclose(str);
    return st;
}

/* histograms (N, 2, L) float64: rows TOF and intensity, written in blocks so
 * the float64 copy never holds more than a chunk's worth of samples. */
static bf_status write_seed_histograms(hid_t file, const bf_dataset *d, const char *path,
                                       bf_error *err)
{
    const char *name = "histograms";
    const size_t L = (size_t)d->length;
    hsize_t dims[3] = {(hsize_t)d->n, 2, L};
    hid_t ds = H5I_INVALID_HID, fspace = H5I_INVALID_HID, mspace = H5I_INVALID_HID;
    double *buf = NULL;
    bf_status st = create_dataset(file, path, name, H5T_IEEE_F64LE, 3, dims,
                                  2 * L * sizeof(double), &ds, err);
    if (st != BF_OK || d->n == 0)
        goto done;
    size_t block = CHUNK_BYTES / (2 * L * sizeof(double));
    if (block < 1)
        block = 1;
    if (block > (size_t)d->n)
        block = (size_t)d->n;
    buf = malloc(block * 2 * L * sizeof *buf);
    fspace = H5Dget_space(ds);
    if (!buf) {
        st = bf_error_set(err, BF_ERR_NOMEM, "%s: dataset '%s': out of memory", path, name);
        goto done;
    }
    for (size_t i0 = 0; i0 < (size_t)d->n; i0 += block) {
        size_t rows = (size_t)d->n - i0 < block ? (size_t)d->n - i0 : block;
        for (size_t r = 0; r < rows; r++) {
            double *dst = buf + r * 2 * L;
            const float *src = d->patterns + (i0 + r) * L;
            memcpy(dst, d->tof_us, L * sizeof *dst);
            for (size_t j = 0; j < L; j++)
                dst[L + j] = src[j];
        }
        hsize_t start[3] = {i0, 0, 0}, count[3] = {rows, 2, L};
        close_id(&mspace, H5Sclose);
        mspace = H5Screate_simple(3, count, NULL);
        if (fspace < 0 || mspace < 0 ||
            H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dwrite(ds, H5T_NATIVE_DOUBLE, mspace, fspace, H5P_DEFAULT, buf) < 0) {
            st = h5_fail(err, BF_ERR_IO, path, "dataset", name, "cannot write");
            goto done;
        }
    }
done:
    free(buf);
    close_id(&mspace, H5Sclose);
    close_id(&fspace, H5Sclose);
    close_id(&ds, H5Dclose);
    return st;
}

static bf_status write_layout(hid_t file, const bf_dataset *d, const char *path, bf_layout layout,
                              bf_error *err)
{
    const hsize_t N = (hsize_t)d->n, L = (hsize_t)d->length;
    bf_status st = BF_OK;
    if (layout == BF_LAYOUT_BRAGGFLOW) {
        hsize_t pdims[2] = {N, L}, tdims[1] = {L}, cdims[2] = {N, 6}, ldims[1] = {N};
        st = write_whole(file, path, "patterns", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, pdims,
                         (size_t)L * sizeof(float), d->patterns, err);
        if (st == BF_OK)
            st = write_whole(file, path, "tof_us", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, tdims, 0,
                             d->tof_us, err);
        if (st == BF_OK)
            st = write_whole(file, path, "cell", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, cdims, 0,
                             d->cells, err);
        if (st == BF_OK)
            st = write_whole(file, path, "label", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, ldims, 0,
                             d->labels, err);
        return st;
    }
    /* seed layout: parameters (a, c, alpha); for the built-in classes c = a
     * in cubic and trigonal cells and alpha = 90 in right-angled ones already. */
    double *params = malloc((size_t)(N ? N : 1) * 3 * sizeof *params);
    if (!params)
        return bf_error_set(err, BF_ERR_NOMEM, "%s: dataset 'parameters': out of memory", path);
    for (size_t i = 0; i < (size_t)N; i++) {
        params[3 * i + 0] = d->cells[6 * i + BF_P_A];
        params[3 * i + 1] = d->cells[6 * i + BF_P_C];
        params[3 * i + 2] = d->cells[6 * i + BF_P_ALPHA];
    }
    hsize_t pdims[2] = {N, 3}, ldims[1] = {N};
    st = write_seed_histograms(file, d, path, err);
    if (st == BF_OK)
        st = write_whole(file, path, "parameters", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, pdims, 0,
                         params, err);
    if (st == BF_OK)
        st = write_whole(file, path, "label", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, ldims, 0,
                         d->labels, err);
    free(params);
    return st;
}

bf_status bf_dataset_write_h5(const bf_dataset *d, const char *path, bf_layout layout,
                              bf_error *err)
{
    if (d->n < 0 || d->length < 1 || (d->n > 0 && (!d->patterns || !d->cells || !d->labels)) ||
        !d->tof_us)
        return bf_error_set(err, BF_ERR_INVALID, "%s: nothing to write (empty dataset)", path);
    if (layout != BF_LAYOUT_BRAGGFLOW && layout != BF_LAYOUT_SEED)
        return bf_error_set(err, BF_ERR_INVALID, "%s: unknown layout %d", path, (int)layout);

    h5_quiet quiet;
    quiet_begin(&quiet);
    bf_atomic_file af;
    int begun = 0;
    hid_t file = H5I_INVALID_HID;
    bf_status st = bf_atomic_begin(&af, path, 0, err);
    if (st != BF_OK)
        goto done;
    begun = 1;
    errno = 0;
    file = H5Fcreate(af.tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) {
        int saved = errno;
        char detail[256];
        h5_detail(detail);
        st = bf_error_set(err, BF_ERR_IO, "%s: cannot create: %s", path,
                          saved ? strerror(saved) : detail);
        goto done;
    }
    st = write_layout(file, d, path, layout, err);
    if (st == BF_OK)
        st = write_attrs(file, d, path, err);
    if (st != BF_OK)
        goto done;
    herr_t rc = H5Fclose(file);
    file = H5I_INVALID_HID;
    if (rc < 0) {
        st = h5_fail(err, BF_ERR_IO, path, NULL, NULL, "cannot finish writing");
        goto done;
    }
    st = bf_atomic_commit(&af, err);
    begun = 0; /* commit removes the temporary file itself on failure */

done:
    close_id(&file, H5Fclose);
    if (begun && st != BF_OK)
        bf_atomic_abort(&af);
    quiet_end(&quiet);
    return st;
}

/* ---- reading -------------------------------------------------------------------- */

/* Opens dataset `name`, checks its rank and type class, and fills dims. */
static bf_status open_checked(hid_t file, const char *path, const char *name, int rank,
                              H5T_class_t tclass, hsize_t *dims, hid_t *out, bf_error *err)
{
    bf_status st = BF_OK;
    hid_t space = H5I_INVALID_HID, type = H5I_INVALID_HID;
    *out = H5Dopen2(file, name, H5P_DEFAULT);
    if (*out < 0)
        return h5_fail(err, BF_ERR_PARSE, path, "dataset", name, "cannot open");
    space = H5Dget_space(*out);
    type = H5Dget_type(*out);
    if (space < 0 || type < 0) {
        st = h5_fail(err, BF_ERR_PARSE, path, "dataset", name, "cannot inspect");
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
    close_id(&type, H5Tclose);
    close_id(&space, H5Sclose);
    if (st != BF_OK)
        close_id(out, H5Dclose);
    return st;
}

static bf_status read_all(hid_t ds, hid_t mtype, void *buf, const char *path, const char *name,
                          bf_error *err)
{
    if (H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        return h5_fail(err, BF_ERR_IO, path, "dataset", name, "cannot read");
    return BF_OK;
}

/* "(3, 2806)" */
static void format_dims(const hsize_t *dims, int rank, char *out, size_t outsz)
{
    size_t n = (size_t)snprintf(out, outsz, "(");
    for (int r = 0; r < rank && n < outsz; r++)
        n += (size_t)snprintf(out + n, outsz - n, "%s%llu", r ? ", " : "",
                              (unsigned long long)dims[r]);
    if (n < outsz - 1)
        snprintf(out + n, outsz - n, ")");
}

static bf_status shape_error(bf_error *err, const char *path, const char *name, const char *want,
                             const hsize_t *dims, int rank)
{
    char got[96];
    format_dims(dims, rank, got, sizeof got);
    return bf_error_set(err, BF_ERR_PARSE, "%s: dataset '%s': shape %s, expected %s", path, name,
                        got, want);
}

/* Reads dataset `name`, which must have exactly the shape want[0..rank-1],
 * into buf as mtype (nothing to read when want[0] is 0). */
static bf_status read_exact(hid_t file, const char *path, const char *name, int rank,
                           H5T_class_t tclass, const hsize_t *want, hid_t mtype, void *buf,
                           bf_error *err)
{
    hsize_t dims[3];
    hid_t ds = H5I_INVALID_HID;
    bf_status st = open_checked(file, path, name, rank, tclass, dims, &ds, err);
    if (st != BF_OK)
        return st;
    if (memcmp(dims, want, (size_t)rank * sizeof *dims) != 0) {
        char text[96];
        format_dims(want, rank, text, sizeof text);
        st = shape_error(err, path, name, text, dims, rank);
    } else if (want[0] > 0) {
        st = read_all(ds, mtype, buf, path, name, err);
    }
    close_id(&ds, H5Dclose);
    return st;
}

/* Reads string attribute `name` (scalar or 1-D, variable or fixed length) into
 * out[k * stride], at most max strings of stride-1 characters. Absent: *n = 0. */
static bf_status read_attr_strings(hid_t obj, const char *path, const char *name, char *out,
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
        st = h5_fail(err, BF_ERR_PARSE, path, "attribute", name, "cannot open");
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
        st = h5_fail(err, BF_ERR_IO, path, "attribute", name, "cannot read");
        goto done;
    }
    H5Tset_cset(mtype, H5Tget_cset(type));
    if (H5Tis_variable_str(type) > 0) {
        vbuf = calloc((size_t)(count ? count : 1), sizeof *vbuf);
        if (!vbuf || H5Tset_size(mtype, H5T_VARIABLE) < 0 || H5Aread(attr, mtype, vbuf) < 0) {
            st = h5_fail(err, BF_ERR_IO, path, "attribute", name, "cannot read");
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
            st = h5_fail(err, BF_ERR_IO, path, "attribute", name, "cannot read");
            goto done;
        }
        for (hssize_t k = 0; k < count; k++)
            snprintf(out + (size_t)k * stride, stride, "%s", fbuf + (size_t)k * size);
    }
    *n = (int)count;
done:
    free(vbuf);
    free(fbuf);
    close_id(&mtype, H5Tclose);
    close_id(&space, H5Sclose);
    close_id(&type, H5Tclose);
    close_id(&attr, H5Aclose);
    return st;
}

/* Numeric attribute (scalar or 1-D, at most max values) converted to mtype. */
static bf_status read_attr_numbers(hid_t obj, const char *path, const char *name, hid_t mtype,
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
        st = h5_fail(err, BF_ERR_PARSE, path, "attribute", name, "cannot open");
        goto done;
    }
    hssize_t count = H5Sget_simple_extent_npoints(space);
    if (H5Tget_class(type) != H5T_INTEGER || count < 0 || count > max) {
        st = bf_error_set(err, BF_ERR_PARSE, "%s: attribute '%s': expected at most %d integers",
                          path, name, max);
        goto done;
    }
    if (count > 0 && H5Aread(attr, mtype, out) < 0) {
        st = h5_fail(err, BF_ERR_IO, path, "attribute", name, "cannot read");
        goto done;
    }
    *n = (int)count;
done:
    close_id(&space, H5Sclose);
    close_id(&type, H5Tclose);
    close_id(&attr, H5Aclose);
    return st;
}

static bf_status read_attrs(hid_t file, const char *path, bf_dataset *out, bf_error *err)
{
    int n = 0, n_names = 0, n_labels = 0, n_cifs = 0;
    char one[sizeof out->config_text];
    uint64_t seed = 0;
    bf_status st = read_attr_numbers(file, path, "seed", H5T_NATIVE_UINT64, &seed, 1, &n, err);
    if (st != BF_OK)
        return st;
    out->seed = n ? seed : 0;
    st = read_attr_strings(file, path, "sampler", one, sizeof out->sampler, 1, &n, err);
    if (st != BF_OK)
        return st;
    if (n)
        snprintf(out->sampler, sizeof out->sampler, "%s", one);
    st = read_attr_strings(file, path, "instprm_sha256", one, sizeof out->instprm_sha256, 1, &n,
                           err);
    if (st != BF_OK)
        return st;
    if (n)
        snprintf(out->instprm_sha256, sizeof out->instprm_sha256, "%s", one);
    st = read_attr_strings(file, path, "config", out->config_text, sizeof out->config_text, 1, &n,
                           err);
    if (st == BF_OK)
        st = read_attr_strings(file, path, "class_names", &out->class_names[0][0],
                               sizeof out->class_names[0], BF_MAX_CLASSES, &n_names, err);
    if (st == BF_OK)
        st = read_attr_numbers(file, path, "class_labels", H5T_NATIVE_INT32, out->class_labels,
                               BF_MAX_CLASSES, &n_labels, err);
    if (st == BF_OK)
        st = read_attr_strings(file, path, "cif_sha256", &out->cif_sha256[0][0],
                               sizeof out->cif_sha256[0], BF_MAX_CLASSES, &n_cifs, err);
    if (st != BF_OK)
        return st;

    if (n_names > 0) {
        out->n_classes = n_names;
        if (n_labels != n_names) /* no labels stored: the built-ins' by name, else the index */
            for (int k = 0; k < n_names; k++) {
                bf_class_spec tmp;
                out->class_labels[k] = bf_class_builtin(out->class_names[k], &tmp, NULL) == BF_OK
                                           ? tmp.label
                                           : k;
            }
        return BF_OK;
    }
    /* No names: the distinct labels present, named after the built-ins. */
    int labels[BF_MAX_CLASSES], nl = 0;
    for (long i = 0; i < out->n; i++) {
        int l = out->labels[i], seen = 0;
        for (int k = 0; k < nl; k++)
            seen |= labels[k] == l;
        if (seen)
            continue;
        if (nl == BF_MAX_CLASSES)
            return bf_error_set(err, BF_ERR_PARSE, "%s: dataset 'label': more than %d classes",
                                path, BF_MAX_CLASSES);
        labels[nl++] = l;
    }
    for (int a = 1; a < nl; a++) /* ascending: a stable order for any file */
        for (int b = a; b > 0 && labels[b - 1] > labels[b]; b--) {
            int t = labels[b];
            labels[b] = labels[b - 1];
            labels[b - 1] = t;
        }
    out->n_classes = nl;
    for (int k = 0; k < nl; k++) {
        const char *bn = bf_class_builtin_name(labels[k]);
        if (bn)
            snprintf(out->class_names[k], sizeof out->class_names[k], "%s", bn);
        else
            snprintf(out->class_names[k], sizeof out->class_names[k], "class%d", labels[k]);
        out->class_labels[k] = labels[k];
    }
    for (int k = 0; k < nl; k++)
        out->cif_sha256[k][0] = 0; /* they cannot be matched to classes without names */
    return BF_OK;
}

static int fits(hsize_t a, hsize_t b, size_t elem)
{
    return b == 0 || a <= (hsize_t)(SIZE_MAX / elem) / b;
}

static bf_status read_braggflow(hid_t file, const char *path, bf_dataset *out, bf_error *err)
{
    hid_t ds = H5I_INVALID_HID;
    hsize_t pd[2];
    bf_status st = open_checked(file, path, "patterns", 2, H5T_FLOAT, pd, &ds, err);
    if (st != BF_OK)
        goto done;
    if (pd[1] < 1 || pd[1] > INT32_MAX || pd[0] > INT32_MAX || !fits(pd[0], pd[1], sizeof(float))) {
        st = shape_error(err, path, "patterns", "(N, L) with 1 <= L < 2^31", pd, 2);
        goto done;
    }
    out->n = (long)pd[0];
    out->length = (int)pd[1];
    out->patterns = malloc((size_t)(pd[0] ? pd[0] : 1) * (size_t)pd[1] * sizeof(float));
    out->tof_us = malloc((size_t)pd[1] * sizeof(double));
    out->cells = malloc((size_t)(pd[0] ? pd[0] : 1) * 6 * sizeof(double));
    out->labels = malloc((size_t)(pd[0] ? pd[0] : 1) * sizeof(int32_t));
    if (!out->patterns || !out->tof_us || !out->cells || !out->labels) {
        st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory for %ld x %d patterns", path,
                          out->n, out->length);
        goto done;
    }
    if (pd[0] > 0 && (st = read_all(ds, H5T_NATIVE_FLOAT, out->patterns, path, "patterns", err)))
        goto done;
    close_id(&ds, H5Dclose);
    const hsize_t tof_shape[1] = {pd[1]}, cell_shape[2] = {pd[0], 6}, label_shape[1] = {pd[0]};
    if ((st = read_exact(file, path, "tof_us", 1, H5T_FLOAT, tof_shape, H5T_NATIVE_DOUBLE,
                         out->tof_us, err)) ||
        (st = read_exact(file, path, "cell", 2, H5T_FLOAT, cell_shape, H5T_NATIVE_DOUBLE,
                         out->cells, err)))
        goto done;
    st = read_exact(file, path, "label", 1, H5T_INTEGER, label_shape, H5T_NATIVE_INT32,
                    out->labels, err);
done:
    close_id(&ds, H5Dclose);
    return st;
}

static bf_status read_seed(hid_t file, const char *path, bf_dataset *out, bf_error *err)
{
    const char *name = "histograms";
    hid_t ds = H5I_INVALID_HID, fspace = H5I_INVALID_HID, mspace = H5I_INVALID_HID;
    hsize_t hd[3];
    double *buf = NULL, *params = NULL;
    bf_status st = open_checked(file, path, name, 3, H5T_FLOAT, hd, &ds, err);
    if (st != BF_OK)
        goto done;
    if (hd[1] != 2 || hd[2] < 1 || hd[2] > INT32_MAX || hd[0] > INT32_MAX ||
        !fits(hd[0], hd[2], sizeof(float))) {
        st = shape_error(err, path, name, "(N, 2, L)", hd, 3);
        goto done;
    }
    const size_t N = (size_t)hd[0], L = (size_t)hd[2];
    out->n = (long)N;
    out->length = (int)L;
    out->patterns = malloc((N ? N : 1) * L * sizeof(float));
    out->tof_us = calloc(L, sizeof(double));
    out->cells = malloc((N ? N : 1) * 6 * sizeof(double));
    out->labels = malloc((N ? N : 1) * sizeof(int32_t));
    params = malloc((N ? N : 1) * 3 * sizeof *params);
    size_t block = CHUNK_BYTES / (2 * L * sizeof(double));
    if (block < 1)
        block = 1;
    if (block > N && N > 0)
        block = N;
    buf = malloc(block * 2 * L * sizeof *buf);
    if (!out->patterns || !out->tof_us || !out->cells || !out->labels || !params || !buf) {
        st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory for %zu x %zu patterns", path, N,
                          L);
        goto done;
    }
    fspace = H5Dget_space(ds);
    for (size_t i0 = 0; i0 < N; i0 += block) {
        size_t rows = N - i0 < block ? N - i0 : block;
        hsize_t start[3] = {i0, 0, 0}, count[3] = {rows, 2, L};
        close_id(&mspace, H5Sclose);
        mspace = H5Screate_simple(3, count, NULL);
        if (fspace < 0 || mspace < 0 ||
            H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dread(ds, H5T_NATIVE_DOUBLE, mspace, fspace, H5P_DEFAULT, buf) < 0) {
            st = h5_fail(err, BF_ERR_IO, path, "dataset", name, "cannot read");
            goto done;
        }
        if (i0 == 0) /* every row carries the same TOF axis; keep the first */
            memcpy(out->tof_us, buf, L * sizeof(double));
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < L; j++)
                out->patterns[(i0 + r) * L + j] = (float)buf[r * 2 * L + L + j];
    }
    close_id(&mspace, H5Sclose);
    close_id(&fspace, H5Sclose);
    close_id(&ds, H5Dclose);

    const hsize_t param_shape[2] = {N, 3}, label_shape[1] = {N};
    if ((st = read_exact(file, path, "parameters", 2, H5T_FLOAT, param_shape, H5T_NATIVE_DOUBLE,
                         params, err)))
        goto done;
    for (size_t i = 0; i < N; i++) {
        double a = params[3 * i], c = params[3 * i + 1], alpha = params[3 * i + 2];
        double *cell = out->cells + 6 * i;
        cell[0] = a;
        cell[1] = a;
        cell[2] = c;
        cell[3] = cell[4] = cell[5] = alpha;
    }

    st = read_exact(file, path, "label", 1, H5T_INTEGER, label_shape, H5T_NATIVE_INT32,
                    out->labels, err);
done:
    free(buf);
    free(params);
    close_id(&mspace, H5Sclose);
    close_id(&fspace, H5Sclose);
    close_id(&ds, H5Dclose);
    return st;
}

bf_status bf_dataset_read_h5(const char *path, bf_dataset *out, bf_error *err)
{
    memset(out, 0, sizeof *out);
    h5_quiet quiet;
    quiet_begin(&quiet);
    bf_status st = BF_OK;
    hid_t file = H5I_INVALID_HID;
    errno = 0;
    if (H5Fis_hdf5(path) <= 0) {
        int saved = errno;
        FILE *fp = fopen(path, "rb");
        if (!fp)
            saved = errno;
        else
            fclose(fp);
        st = bf_error_set(err, fp ? BF_ERR_PARSE : BF_ERR_IO, "%s: %s", path,
                          fp ? "not an HDF5 file" : strerror(saved ? saved : ENOENT));
        H5Eclear2(H5E_DEFAULT);
        goto done;
    }
    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        st = h5_fail(err, BF_ERR_IO, path, NULL, NULL, "cannot open");
        goto done;
    }
    if (H5Lexists(file, "patterns", H5P_DEFAULT) > 0)
        st = read_braggflow(file, path, out, err);
    else if (H5Lexists(file, "histograms", H5P_DEFAULT) > 0)
        st = read_seed(file, path, out, err);
    else
        st = bf_error_set(err, BF_ERR_PARSE,
                          "%s: neither dataset 'patterns' (braggflow layout) nor 'histograms' "
                          "(seed layout) found",
                          path);
    if (st == BF_OK)
        st = read_attrs(file, path, out, err);

done:
    close_id(&file, H5Fclose);
    quiet_end(&quiet);
    if (st != BF_OK)
        bf_dataset_free(out);
    return st;
}
