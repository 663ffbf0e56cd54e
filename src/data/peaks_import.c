/* data/peaks_import.c — BraggNN's own data files as patches (DESIGN §7,
 * docs/peaks.md "Importing BraggNN files").
 *
 * frames.h5: `frames` (n_frames, H, W); peaks.h5: `peak_fidx`, `peak_row`,
 * `peak_col`, `npeaks`, `deviations`, one row per peak (any integer or float
 * type: read as double, indices checked to be whole numbers in range).
 * Kept rows: npeaks == 1 and 0 <= deviations < 1 (BraggNN's training filter),
 * in file order.
 *
 * Crop (BraggNN dataset.py): rows int(r) - S//2 .. int(r) + S//2 with int()
 * truncating toward zero, likewise columns. Where that window leaves the frame
 * only the h rows inside are taken and the S - h missing rows become zeros,
 * (S - h) // 2 before and the rest after, whichever side was cut; so an edge
 * patch is shifted against the nominal window. origin is the frame (row, col)
 * of patch pixel (0, 0) *as stored* (first row inside the frame minus the zero
 * rows before it), and centre = (peak_row, peak_col) - origin is where the
 * peak really lies in the stored patch. Away from the edges origin is the
 * nominal start int(r) - S//2 and the centre lies in [S//2, S//2 + 1). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

typedef struct {
    const char *name;
    double *v;
    hsize_t n;
} column;

/* Reads 1-D dataset `name` (integer or float) as doubles. */
static bf_status read_column(hid_t file, const char *path, column *c, bf_error *err)
{
    bf_status st = BF_OK;
    hid_t ds = H5I_INVALID_HID, space = H5I_INVALID_HID, type = H5I_INVALID_HID;
    c->v = NULL;
    c->n = 0;
    if (H5Lexists(file, c->name, H5P_DEFAULT) <= 0)
        return bf_error_set(err, BF_ERR_PARSE, "%s: no dataset '%s'", path, c->name);
    ds = H5Dopen2(file, c->name, H5P_DEFAULT);
    space = ds >= 0 ? H5Dget_space(ds) : H5I_INVALID_HID;
    type = ds >= 0 ? H5Dget_type(ds) : H5I_INVALID_HID;
    if (space < 0 || type < 0) {
        st = bf_h5_fail(err, BF_ERR_PARSE, path, "dataset", c->name, "cannot open");
        goto done;
    }
    int rank = H5Sget_simple_extent_ndims(space);
    H5T_class_t cls = H5Tget_class(type);
    if (rank != 1) {
        st = bf_error_set(err, BF_ERR_PARSE, "%s: %s: rank %d, expected 1 (one value per peak)",
                          path, c->name, rank);
        goto done;
    }
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
        st = bf_error_set(err, BF_ERR_PARSE, "%s: %s: not numbers", path, c->name);
        goto done;
    }
    H5Sget_simple_extent_dims(space, &c->n, NULL);
    if (c->n == 0) {
        st = bf_error_set(err, BF_ERR_INVALID, "%s: %s: empty (no peaks)", path, c->name);
        goto done;
    }
    if (!bf_h5_fits(c->n, 1, sizeof(double)) || c->n > INT32_MAX) {
        st = bf_error_set(err, BF_ERR_RANGE, "%s: %s: too many rows", path, c->name);
        goto done;
    }
    c->v = malloc((size_t)c->n * sizeof(double));
    if (!c->v) {
        st = bf_error_set(err, BF_ERR_NOMEM, "%s: %s: out of memory", path, c->name);
        goto done;
    }
    st = bf_h5_read_all(ds, H5T_NATIVE_DOUBLE, c->v, path, c->name, err);
done:
    bf_h5_close(&type, H5Tclose);
    bf_h5_close(&space, H5Sclose);
    bf_h5_close(&ds, H5Dclose);
    return st;
}

typedef struct {
    long row;                         /* index into the peaks file */
    uint32_t frame;
} kept_row;

static int by_frame(const void *a, const void *b)
{
    const kept_row *x = a, *y = b;
    if (x->frame != y->frame)
        return x->frame < y->frame ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row);
}

/* The window start0 .. start0 + S - 1 along an axis of length len: first index
 * inside the frame, how many are inside, zeros before them (BraggNN's split). */
static void window(long start0, int S, long len, long *first, long *inside, long *pad_before)
{
    long lo = start0 < 0 ? 0 : start0;
    long hi = start0 + S > len ? len : start0 + S;
    *first = lo;
    *inside = hi - lo;
    *pad_before = (S - *inside) / 2;
}

/* Reads frame f (H x W) into buf as float. */
static bf_status read_frame(hid_t ds, hid_t fspace, hid_t mspace, const char *path, long f,
                            long H, long W, float *buf, bf_error *err)
{
    hsize_t start[3] = {(hsize_t)f, 0, 0}, count[3] = {1, (hsize_t)H, (hsize_t)W};
    if (H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dread(ds, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, buf) < 0)
        return bf_h5_fail(err, BF_ERR_IO, path, "dataset", "frames", "cannot read");
    return BF_OK;
}

static bf_status provenance(const char *frames_path, const char *peaks_path, int size,
                            bf_patches *out, bf_error *err)
{
    char hf[65], hp[65];
    bf_status st = bf_sha256_file_hex(frames_path, hf, err);
    if (st == BF_OK)
        st = bf_sha256_file_hex(peaks_path, hp, err);
    if (st == BF_OK)
        snprintf(out->source, sizeof out->source,
                 "frames=%s sha256=%s\npeaks=%s sha256=%s\nsize=%d\n", frames_path, hf,
                 peaks_path, hp, size);
    return st;
}

bf_status bf_patches_import_braggnn(const char *frames_path, const char *peaks_path, int size,
                                    bf_patches *out, bf_error *err)
{
    memset(out, 0, sizeof *out);
    if (size < 5 || size > 63 || size % 2 == 0)
        return bf_error_set(err, BF_ERR_INVALID, "patch size %d must be odd, 5..63", size);
    const int S = size;
    bf_h5_quiet quiet;
    bf_h5_quiet_begin(&quiet);
    hid_t pfile = H5I_INVALID_HID, ffile = H5I_INVALID_HID, ds = H5I_INVALID_HID,
          fspace = H5I_INVALID_HID, mspace = H5I_INVALID_HID;
    column col[5] = {{"peak_fidx", NULL, 0}, {"peak_row", NULL, 0}, {"peak_col", NULL, 0},
                     {"npeaks", NULL, 0}, {"deviations", NULL, 0}};
    const column *fidx = &col[0], *prow = &col[1], *pcol = &col[2], *npk = &col[3],
                 *dev = &col[4];
    kept_row *kept = NULL;
    float *frame = NULL;
    long n_kept = 0;

    /* ---- the peaks file ---- */
    bf_status st = bf_h5_open_read(peaks_path, &pfile, err);
    for (int k = 0; k < 5 && st == BF_OK; k++)
        st = read_column(pfile, peaks_path, &col[k], err);
    for (int k = 1; k < 5 && st == BF_OK; k++)
        if (col[k].n != col[0].n)
            st = bf_error_set(err, BF_ERR_INVALID, "%s: %s has %llu rows but %s has %llu",
                              peaks_path, col[k].name, (unsigned long long)col[k].n, col[0].name,
                              (unsigned long long)col[0].n);
    if (st != BF_OK)
        goto done;
    const long n = (long)fidx->n;

    /* ---- the frames file ---- */
    hsize_t fd[3] = {0, 0, 0};
    if ((st = bf_h5_open_read(frames_path, &ffile, err)) != BF_OK)
        goto done;
    if (H5Lexists(ffile, "frames", H5P_DEFAULT) <= 0) {
        st = bf_error_set(err, BF_ERR_PARSE, "%s: no dataset 'frames'", frames_path);
        goto done;
    }
    ds = H5Dopen2(ffile, "frames", H5P_DEFAULT);
    fspace = ds >= 0 ? H5Dget_space(ds) : H5I_INVALID_HID;
    if (fspace < 0) {
        st = bf_h5_fail(err, BF_ERR_PARSE, frames_path, "dataset", "frames", "cannot open");
        goto done;
    }
    {
        hid_t type = H5Dget_type(ds);
        H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
        bf_h5_close(&type, H5Tclose);
        int rank = H5Sget_simple_extent_ndims(fspace);
        if (rank != 3) {
            st = bf_error_set(err, BF_ERR_PARSE,
                              "%s: frames: rank %d, expected 3 (n_frames, H, W)", frames_path,
                              rank);
            goto done;
        }
        if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
            st = bf_error_set(err, BF_ERR_PARSE, "%s: frames: not numbers", frames_path);
            goto done;
        }
    }
    H5Sget_simple_extent_dims(fspace, fd, NULL);
    if (fd[0] == 0 || fd[1] == 0 || fd[2] == 0 || fd[1] > INT32_MAX || fd[2] > INT32_MAX ||
        !bf_h5_fits(fd[1], fd[2], sizeof(float))) {
        char got[96];
        bf_h5_format_dims(fd, 3, got, sizeof got);
        st = bf_error_set(err, BF_ERR_INVALID, "%s: frames: shape %s, expected (n_frames, H, W) "
                          "with every size >= 1", frames_path, got);
        goto done;
    }
    const long n_frames = fd[0] > INT32_MAX ? INT32_MAX : (long)fd[0];
    const long H = (long)fd[1], W = (long)fd[2];

    /* ---- which rows ---- */
    kept = malloc((size_t)n * sizeof *kept);
    if (!kept) {
        st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", peaks_path);
        goto done;
    }
    for (long i = 0; i < n; i++) {
        double f = fidx->v[i];
        if (!(f >= 0 && f < (double)n_frames && f == floor(f))) {
            st = bf_error_set(err, BF_ERR_INVALID, "%s: peak_fidx: row %ld is %g, %s has %ld frames",
                              peaks_path, i, f, frames_path, n_frames);
            goto done;
        }
        if (!(npk->v[i] == 1 && dev->v[i] >= 0 && dev->v[i] < 1))
            continue;
        const double r = prow->v[i], c = pcol->v[i];
        if (!isfinite(r) || !isfinite(c)) {
            st = bf_error_set(err, BF_ERR_INVALID, "%s: %s: row %ld is %s", peaks_path,
                              isfinite(r) ? "peak_col" : "peak_row", i,
                              isnan(isfinite(r) ? c : r) ? "NaN" : "infinite");
            goto done;
        }
        if (r < 0 || r >= (double)H || c < 0 || c >= (double)W) {
            st = bf_error_set(err, BF_ERR_INVALID,
                              "%s: row %ld: peak (%g, %g) lies outside the %ld x %ld frames of %s",
                              peaks_path, i, r, c, H, W, frames_path);
            goto done;
        }
        kept[n_kept].row = i;
        kept[n_kept].frame = (uint32_t)f;
        n_kept++;
    }
    if (n_kept == 0) {
        st = bf_error_set(err, BF_ERR_INVALID,
                          "%s: none of the %ld peaks has npeaks == 1 and 0 <= deviations < 1",
                          peaks_path, n);
        goto done;
    }

    /* ---- outputs, in file order ---- */
    out->n = n_kept;
    out->size = S;
    out->patches = calloc((size_t)n_kept * (size_t)(S * S), sizeof(float));
    out->centre = malloc((size_t)n_kept * 2 * sizeof(double));
    out->frame_index = malloc((size_t)n_kept * sizeof(uint32_t));
    out->origin = malloc((size_t)n_kept * 2 * sizeof(int32_t));
    out->npeaks = malloc((size_t)n_kept * sizeof(uint16_t));
    out->deviation = malloc((size_t)n_kept * sizeof(float));
    frame = malloc((size_t)H * (size_t)W * sizeof(float));
    hsize_t mdims[3] = {1, (hsize_t)H, (hsize_t)W};
    mspace = H5Screate_simple(3, mdims, NULL);
    if (!out->patches || !out->centre || !out->frame_index || !out->origin || !out->npeaks ||
        !out->deviation || !frame || mspace < 0) {
        st = bf_error_set(err, BF_ERR_NOMEM, "out of memory for %ld patches of %d x %d", n_kept, S,
                          S);
        goto done;
    }
    snprintf(out->kind, sizeof out->kind, "imported");
    /* slot of each kept row in file order, before the rows are grouped by frame */
    long *slot = malloc((size_t)n * sizeof *slot);
    if (!slot) {
        st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", peaks_path);
        goto done;
    }
    for (long j = 0; j < n_kept; j++)
        slot[kept[j].row] = j;
    qsort(kept, (size_t)n_kept, sizeof *kept, by_frame);

    long loaded = -1;
    for (long j = 0; j < n_kept && st == BF_OK; j++) {
        const long i = kept[j].row, f = kept[j].frame, o = slot[i];
        if (f != loaded) {
            st = read_frame(ds, fspace, mspace, frames_path, f, H, W, frame, err);
            if (st != BF_OK)
                break;
            loaded = f;
        }
        const double r = prow->v[i], c = pcol->v[i];
        long r0, rn, rpad, c0, cn, cpad;
        window((long)r - S / 2, S, H, &r0, &rn, &rpad); /* (long) truncates, as Python's int() */
        window((long)c - S / 2, S, W, &c0, &cn, &cpad);
        float *patch = out->patches + (size_t)o * (size_t)(S * S);
        for (long a = 0; a < rn && st == BF_OK; a++)
            for (long b = 0; b < cn; b++) {
                float v = frame[(size_t)(r0 + a) * (size_t)W + (size_t)(c0 + b)];
                if (!isfinite(v)) {
                    st = bf_error_set(err, BF_ERR_INVALID,
                                      "%s: frames: frame %ld pixel (%ld, %ld) is %s", frames_path,
                                      f, r0 + a, c0 + b, isnan(v) ? "NaN" : "infinite");
                    break;
                }
                patch[(rpad + a) * S + (cpad + b)] = v;
            }
        out->origin[2 * o] = (int32_t)(r0 - rpad);
        out->origin[2 * o + 1] = (int32_t)(c0 - cpad);
        out->centre[2 * o] = r - (double)(r0 - rpad);
        out->centre[2 * o + 1] = c - (double)(c0 - cpad);
        out->frame_index[o] = (uint32_t)f;
        out->npeaks[o] = 1;
        out->deviation[o] = (float)dev->v[i];
    }
    free(slot);
    if (st == BF_OK)
        st = provenance(frames_path, peaks_path, S, out, err);

done:
    free(frame);
    free(kept);
    for (int k = 0; k < 5; k++)
        free(col[k].v);
    bf_h5_close(&mspace, H5Sclose);
    bf_h5_close(&fspace, H5Sclose);
    bf_h5_close(&ds, H5Dclose);
    bf_h5_close(&ffile, H5Fclose);
    bf_h5_close(&pfile, H5Fclose);
    bf_h5_quiet_end(&quiet);
    if (st != BF_OK)
        bf_patches_free(out);
    return st;
}
