/* data/dataset_h5.c — HDF5 datasets in braggflow's layout and the seed
 * workflow's layout (see braggflow/data.h for both). Written through a
 * temporary file renamed into place, so a failed or interrupted write leaves
 * no partial file. HDF5's own error printing is off; messages name the file
 * and the dataset or attribute. */
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

#define CHUNK_BYTES BF_H5_CHUNK_BYTES

/* ---- writing -------------------------------------------------------------------- */

static bf_status write_attrs(hid_t file, const bf_dataset *d, const char *path, bf_error *err)
{
    bf_status st = BF_OK;
    hid_t str = bf_h5_vlen_string_type();
    if (str < 0)
        return bf_h5_fail(err, BF_ERR_IO, path, "attribute", "version", "cannot make string type");
    const char *version = BF_VERSION, *sampler = d->sampler, *instprm = d->instprm_sha256,
               *config = d->config_text;
    const char *names[BF_MAX_CLASSES], *cifs[BF_MAX_CLASSES];
    int nc = d->n_classes < 0 ? 0 : d->n_classes > BF_MAX_CLASSES ? BF_MAX_CLASSES : d->n_classes;
    for (int k = 0; k < nc; k++) {
        names[k] = d->class_names[k];
        cifs[k] = d->cif_sha256[k];
    }
    st = bf_h5_write_attr(file, path, "version", str, str, -1, &version, err);
    if (st == BF_OK)
        st = bf_h5_write_attr(file, path, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, -1, &d->seed, err);
    if (st == BF_OK)
        st = bf_h5_write_attr(file, path, "sampler", str, str, -1, &sampler, err);
    if (st == BF_OK && nc > 0)
        st = bf_h5_write_attr(file, path, "class_names", str, str, nc, names, err);
    if (st == BF_OK && nc > 0)
        st = bf_h5_write_attr(file, path, "class_labels", H5T_STD_I32LE, H5T_NATIVE_INT32, nc,
                        d->class_labels, err);
    if (st == BF_OK)
        st = bf_h5_write_attr(file, path, "instprm_sha256", str, str, -1, &instprm, err);
    if (st == BF_OK && nc > 0)
        st = bf_h5_write_attr(file, path, "cif_sha256", str, str, nc, cifs, err);
    if (st == BF_OK)
        st = bf_h5_write_attr(file, path, "config", str, str, -1, &config, err);
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
    bf_status st = bf_h5_create_dataset(file, path, name, H5T_IEEE_F64LE, 3, dims,
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
        bf_h5_close(&mspace, H5Sclose);
        mspace = H5Screate_simple(3, count, NULL);
        if (fspace < 0 || mspace < 0 ||
            H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dwrite(ds, H5T_NATIVE_DOUBLE, mspace, fspace, H5P_DEFAULT, buf) < 0) {
            st = bf_h5_fail(err, BF_ERR_IO, path, "dataset", name, "cannot write");
            goto done;
        }
    }
done:
    free(buf);
    bf_h5_close(&mspace, H5Sclose);
    bf_h5_close(&fspace, H5Sclose);
    bf_h5_close(&ds, H5Dclose);
    return st;
}

static bf_status write_layout(hid_t file, const bf_dataset *d, const char *path, bf_layout layout,
                              bf_error *err)
{
    const hsize_t N = (hsize_t)d->n, L = (hsize_t)d->length;
    bf_status st = BF_OK;
    if (layout == BF_LAYOUT_BRAGGFLOW) {
        hsize_t pdims[2] = {N, L}, tdims[1] = {L}, cdims[2] = {N, 6}, ldims[1] = {N};
        st = bf_h5_write_whole(file, path, "patterns", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, pdims,
                         (size_t)L * sizeof(float), d->patterns, err);
        if (st == BF_OK)
            st = bf_h5_write_whole(file, path, "tof_us", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, tdims, 0,
                             d->tof_us, err);
        if (st == BF_OK)
            st = bf_h5_write_whole(file, path, "cell", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, cdims, 0,
                             d->cells, err);
        if (st == BF_OK)
            st = bf_h5_write_whole(file, path, "label", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, ldims, 0,
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
        st = bf_h5_write_whole(file, path, "parameters", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, pdims, 0,
                         params, err);
    if (st == BF_OK)
        st = bf_h5_write_whole(file, path, "label", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, ldims, 0,
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

    bf_h5_quiet quiet;
    bf_h5_quiet_begin(&quiet);
    bf_atomic_file af;
    hid_t file = H5I_INVALID_HID;
    bf_status st = bf_h5_create_atomic(&af, path, &file, err);
    if (st != BF_OK)
        goto done;
    st = write_layout(file, d, path, layout, err);
    if (st == BF_OK)
        st = write_attrs(file, d, path, err);
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


static bf_status read_attrs(hid_t file, const char *path, bf_dataset *out, bf_error *err)
{
    int n = 0, n_names = 0, n_labels = 0, n_cifs = 0;
    char one[sizeof out->config_text];
    uint64_t seed = 0;
    bf_status st = bf_h5_read_attr_numbers(file, path, "seed", H5T_NATIVE_UINT64, &seed, 1, &n, err);
    if (st != BF_OK)
        return st;
    out->seed = n ? seed : 0;
    st = bf_h5_read_attr_strings(file, path, "sampler", one, sizeof out->sampler, 1, &n, err);
    if (st != BF_OK)
        return st;
    if (n)
        snprintf(out->sampler, sizeof out->sampler, "%s", one);
    st = bf_h5_read_attr_strings(file, path, "instprm_sha256", one, sizeof out->instprm_sha256, 1, &n,
                           err);
    if (st != BF_OK)
        return st;
    if (n)
        snprintf(out->instprm_sha256, sizeof out->instprm_sha256, "%s", one);
    st = bf_h5_read_attr_strings(file, path, "config", out->config_text, sizeof out->config_text, 1, &n,
                           err);
    if (st == BF_OK)
        st = bf_h5_read_attr_strings(file, path, "class_names", &out->class_names[0][0],
                               sizeof out->class_names[0], BF_MAX_CLASSES, &n_names, err);
    if (st == BF_OK)
        st = bf_h5_read_attr_numbers(file, path, "class_labels", H5T_NATIVE_INT32, out->class_labels,
                               BF_MAX_CLASSES, &n_labels, err);
    if (st == BF_OK)
        st = bf_h5_read_attr_strings(file, path, "cif_sha256", &out->cif_sha256[0][0],
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


static bf_status read_braggflow(hid_t file, const char *path, bf_dataset *out, bf_error *err)
{
    hid_t ds = H5I_INVALID_HID;
    hsize_t pd[2];
    bf_status st = bf_h5_open_checked(file, path, "patterns", 2, H5T_FLOAT, pd, &ds, err);
    if (st != BF_OK)
        goto done;
    if (pd[1] < 1 || pd[1] > INT32_MAX || pd[0] > INT32_MAX || !bf_h5_fits(pd[0], pd[1], sizeof(float))) {
        st = bf_h5_shape_error(err, path, "patterns", "(N, L) with 1 <= L < 2^31", pd, 2);
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
    if (pd[0] > 0 && (st = bf_h5_read_all(ds, H5T_NATIVE_FLOAT, out->patterns, path, "patterns", err)))
        goto done;
    bf_h5_close(&ds, H5Dclose);
    const hsize_t tof_shape[1] = {pd[1]}, cell_shape[2] = {pd[0], 6}, label_shape[1] = {pd[0]};
    if ((st = bf_h5_read_exact(file, path, "tof_us", 1, H5T_FLOAT, tof_shape, H5T_NATIVE_DOUBLE,
                         out->tof_us, err)) ||
        (st = bf_h5_read_exact(file, path, "cell", 2, H5T_FLOAT, cell_shape, H5T_NATIVE_DOUBLE,
                         out->cells, err)))
        goto done;
    st = bf_h5_read_exact(file, path, "label", 1, H5T_INTEGER, label_shape, H5T_NATIVE_INT32,
                    out->labels, err);
done:
    bf_h5_close(&ds, H5Dclose);
    return st;
}

static bf_status read_seed(hid_t file, const char *path, bf_dataset *out, bf_error *err)
{
    const char *name = "histograms";
    hid_t ds = H5I_INVALID_HID, fspace = H5I_INVALID_HID, mspace = H5I_INVALID_HID;
    hsize_t hd[3];
    double *buf = NULL, *params = NULL;
    bf_status st = bf_h5_open_checked(file, path, name, 3, H5T_FLOAT, hd, &ds, err);
    if (st != BF_OK)
        goto done;
    if (hd[1] != 2 || hd[2] < 1 || hd[2] > INT32_MAX || hd[0] > INT32_MAX ||
        !bf_h5_fits(hd[0], hd[2], sizeof(float))) {
        st = bf_h5_shape_error(err, path, name, "(N, 2, L)", hd, 3);
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
        bf_h5_close(&mspace, H5Sclose);
        mspace = H5Screate_simple(3, count, NULL);
        if (fspace < 0 || mspace < 0 ||
            H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Dread(ds, H5T_NATIVE_DOUBLE, mspace, fspace, H5P_DEFAULT, buf) < 0) {
            st = bf_h5_fail(err, BF_ERR_IO, path, "dataset", name, "cannot read");
            goto done;
        }
        if (i0 == 0) /* every row carries the same TOF axis; keep the first */
            memcpy(out->tof_us, buf, L * sizeof(double));
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < L; j++)
                out->patterns[(i0 + r) * L + j] = (float)buf[r * 2 * L + L + j];
    }
    bf_h5_close(&mspace, H5Sclose);
    bf_h5_close(&fspace, H5Sclose);
    bf_h5_close(&ds, H5Dclose);

    const hsize_t param_shape[2] = {N, 3}, label_shape[1] = {N};
    if ((st = bf_h5_read_exact(file, path, "parameters", 2, H5T_FLOAT, param_shape, H5T_NATIVE_DOUBLE,
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

    st = bf_h5_read_exact(file, path, "label", 1, H5T_INTEGER, label_shape, H5T_NATIVE_INT32,
                    out->labels, err);
done:
    free(buf);
    free(params);
    bf_h5_close(&mspace, H5Sclose);
    bf_h5_close(&fspace, H5Sclose);
    bf_h5_close(&ds, H5Dclose);
    return st;
}

bf_status bf_dataset_read_h5(const char *path, bf_dataset *out, bf_error *err)
{
    memset(out, 0, sizeof *out);
    bf_h5_quiet quiet;
    bf_h5_quiet_begin(&quiet);
    bf_status st = BF_OK;
    hid_t file = H5I_INVALID_HID;
    st = bf_h5_open_read(path, &file, err);
    if (st != BF_OK)
        goto done;
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
    bf_h5_close(&file, H5Fclose);
    bf_h5_quiet_end(&quiet);
    if (st != BF_OK)
        bf_dataset_free(out);
    return st;
}
