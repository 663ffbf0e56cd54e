/* data/patches_select.c — a patch file's chosen rows as a new bf_patches (data.h):
 * every per-patch array present is copied row by row, provenance (kind, seed,
 * source) carried unchanged. Labelling a share of a stream and BraggNN's
 * train/validation split (DESIGN §7: the first 80 % in file order) both take rows. */
#include <stdlib.h>
#include <string.h>

#include "braggflow/data.h"

/* A copy of rows[0..n) of an array with `elem` bytes per patch; NULL for an absent
 * array, and NULL with *ok = 0 when memory runs out. */
static void *gather(const void *src, size_t elem, const long *rows, long n, int *ok)
{
    if (!src)
        return NULL;
    char *d = malloc((size_t)n * elem);
    if (!d) {
        *ok = 0;
        return NULL;
    }
    for (long k = 0; k < n; k++)
        memcpy(d + (size_t)k * elem, (const char *)src + (size_t)rows[k] * elem, elem);
    return d;
}

bf_status bf_patches_select(const bf_patches *p, const long *rows, long n, bf_patches *out,
                            bf_error *err)
{
    memset(out, 0, sizeof *out);
    if (n < 1)
        return bf_error_set(err, BF_ERR_INVALID, "patch selection: no rows chosen");
    for (long k = 0; k < n; k++)
        if (rows[k] < 0 || rows[k] >= p->n)
            return bf_error_set(err, BF_ERR_RANGE,
                                "patch selection: row %ld is %ld, the patches have %ld", k,
                                rows[k], p->n);
    out->n = n;
    out->size = p->size;
    out->seed = p->seed;
    memcpy(out->kind, p->kind, sizeof out->kind);
    memcpy(out->source, p->source, sizeof out->source);
    const size_t S2 = (size_t)p->size * (size_t)p->size;
    int ok = 1;
#define GATHER(field, elem) out->field = gather(p->field, elem, rows, n, &ok)
    GATHER(patches, S2 * sizeof(float));
    GATHER(centre, 2 * sizeof(double));
    GATHER(peak, sizeof(bf_peak2d));
    GATHER(background, sizeof(bf_background2d));
    GATHER(read_sigma, sizeof(double));
    GATHER(neighbour, sizeof(uint8_t));
    GATHER(neighbour_peak, sizeof(bf_peak2d));
    GATHER(frame_index, sizeof(uint32_t));
    GATHER(origin, 2 * sizeof(int32_t));
    GATHER(npeaks, sizeof(uint16_t));
    GATHER(deviation, sizeof(float));
#undef GATHER
    if (!ok) {
        bf_patches_free(out);
        return bf_error_set(err, BF_ERR_NOMEM, "patch selection: out of memory for %ld patches",
                            n);
    }
    return BF_OK;
}
