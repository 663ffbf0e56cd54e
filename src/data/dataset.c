/* data/dataset.c — draws every class's cells (or takes given ones, as active
 * learning proposes them) and simulates their patterns on OpenMP threads. Sample i's cell comes from its own RNG stream and its
 * pattern from a thread-safe simulator, so the dataset is bitwise the same for
 * any thread count. bf_sim_rows simulates any block of rows on its own, so that
 * `sample` can write each block before simulating the next (dataset_h5.c). */
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

void bf_dataset_free(bf_dataset *d)
{
    if (!d)
        return;
    free(d->patterns);
    free(d->x);
    free(d->cells);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

/* Longest a, b or c the class can produce: the simulator's reflection box. */
static double class_max_length_A(const bf_class_spec *cls)
{
    double m = 0;
    for (int p = BF_P_A; p <= BF_P_C; p++) {
        const bf_param_rule *r = &cls->rule[p];
        if (r->kind == BF_PARAM_TIED && r->tied_to >= 0 && r->tied_to < BF_N_CELL_PARAMS)
            r = &cls->rule[r->tied_to];
        double v = r->kind == BF_PARAM_FREE ? r->hi : r->kind == BF_PARAM_FIXED ? r->value : 0;
        if (v > m)
            m = v;
    }
    return m;
}

static long class_count(const bf_sample_config *cfg, const bf_class_spec *cls, bf_error *err,
                        bf_status *st)
{
    if (cfg->sampler == BF_SAMPLER_RANDOM) {
        *st = BF_OK;
        return cls->count;
    }
    long n = 0;
    int phases = cfg->sampler == BF_SAMPLER_PHASED ? cfg->phases : 1;
    int phase = cfg->sampler == BF_SAMPLER_PHASED ? cfg->phase : 1;
    *st = bf_sample_grid(cls, phases, phase, NULL, &n, err);
    return n;
}

bf_status bf_sim_rows_begin(const bf_sample_config *cfg, const bf_cell *cells,
                            const int32_t *class_index, long n, int threads, bf_dataset *hdr,
                            bf_sim_rows **out, bf_error *err)
{
    memset(hdr, 0, sizeof *hdr);
    *out = NULL;
    bf_status st = BF_OK;
    bf_instrument inst;
    bf_sim_rows *ctx = NULL;

    if (threads < 0)
        return bf_error_set(err, BF_ERR_INVALID, "threads: %d is negative", threads);
    if (threads == 0)
        threads = bf_default_threads();
    if (cfg->n_classes < 1 || cfg->n_classes > BF_MAX_CLASSES)
        return bf_error_set(err, BF_ERR_INVALID, "%s: %d classes (expected 1..%d)", cfg->path,
                            cfg->n_classes, BF_MAX_CLASSES);
    if (n < 1 || n > (1L << 31))
        return bf_error_set(err, BF_ERR_INVALID, "%s: %ld samples (expected 1..2^31)", cfg->path,
                            n);
    for (long i = 0; i < n; i++)
        if (class_index[i] < 0 || class_index[i] >= cfg->n_classes)
            return bf_error_set(err, BF_ERR_INVALID, "sample %ld: class index %d (expected "
                                "0..%d)", i, (int)class_index[i], cfg->n_classes - 1);

    ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    ctx->cfg = cfg;
    ctx->cells = cells;
    ctx->class_index = class_index;
    ctx->n = n;
    ctx->threads = threads;
    hdr->n = n;
    hdr->n_classes = cfg->n_classes;
    hdr->seed = cfg->seed;
    snprintf(hdr->config_text, sizeof hdr->config_text, "%s", cfg->config_text);
    bf_measured_like_format(&cfg->measured, hdr->measured, sizeof hdr->measured);
    hdr->cells = malloc((size_t)n * 6 * sizeof *hdr->cells);
    hdr->labels = malloc((size_t)n * sizeof *hdr->labels);
    if (!hdr->cells || !hdr->labels) {
        st = bf_error_set(err, BF_ERR_NOMEM, "out of memory for %ld samples", n);
        goto done;
    }
    for (long i = 0; i < n; i++) {
        double *row = hdr->cells + (size_t)i * 6;
        row[0] = cells[i].a;
        row[1] = cells[i].b;
        row[2] = cells[i].c;
        row[3] = cells[i].alpha;
        row[4] = cells[i].beta;
        row[5] = cells[i].gamma;
        hdr->labels[i] = cfg->classes[class_index[i]].label;
    }

    st = bf_instrument_read(cfg->instprm_path, &inst, err);
    if (st == BF_OK)
        st = bf_sha256_file_hex(cfg->instprm_path, hdr->instprm_sha256, err);
    if (st != BF_OK)
        goto done;

    /* Every class's simulator at once: a block of rows may hold several classes. */
    for (int k = 0; k < cfg->n_classes; k++) {
        const bf_class_spec *cls = &cfg->classes[k];
        snprintf(hdr->class_names[k], sizeof hdr->class_names[k], "%s", cls->name);
        hdr->class_labels[k] = cls->label;
        st = bf_sha256_file_hex(cls->cif_path, hdr->cif_sha256[k], err);
        if (st == BF_OK)
            st = bf_crystal_read_cif_block(cls->cif_path, cls->cif_block[0] ? cls->cif_block : NULL,
                                           &ctx->crystal[k], err);
        if (st != BF_OK) {
            bf_error_prefix(err, "class %s", cls->name);
            goto done;
        }
        ctx->have_crystal[k] = 1;
        st = bf_powder_sim_create(&ctx->crystal[k], &inst, &cfg->sample, &cfg->grid,
                                  class_max_length_A(cls), &ctx->sim[k], err);
        if (st != BF_OK) {
            bf_error_prefix(err, "class %s", cls->name);
            goto done;
        }
        const bf_grid *grid = bf_powder_sim_grid(ctx->sim[k]);
        if (hdr->length == 0) {
            /* Same instrument and grid spec for every class: one TOF axis. */
            hdr->length = grid->n;
            hdr->x_unit = grid->unit;
            hdr->x = malloc((size_t)grid->n * sizeof *hdr->x);
            if (!hdr->x) {
                st = bf_error_set(err, BF_ERR_NOMEM, "out of memory for %d points", grid->n);
                goto done;
            }
            memcpy(hdr->x, grid->x, (size_t)grid->n * sizeof *hdr->x);
        } else if (grid->n != hdr->length) {
            st = bf_error_set(err, BF_ERR_INVALID, "class %s: grid has %d points, not %d",
                              cls->name, grid->n, hdr->length);
            goto done;
        }
    }
    ctx->length = hdr->length;
    bf_progress_begin(&ctx->prog, "simulate", (uint64_t)n);
    ctx->progress_on = 1;

done:
    if (st != BF_OK) {
        bf_sim_rows_end(ctx);
        bf_dataset_free(hdr);
        return st;
    }
    *out = ctx;
    return BF_OK;
}

void bf_sim_rows_end(bf_sim_rows *ctx)
{
    if (!ctx)
        return;
    if (ctx->progress_on)
        bf_progress_end(&ctx->prog);
    for (int k = 0; k < BF_MAX_CLASSES; k++) {
        if (ctx->sim[k])
            bf_powder_sim_destroy(ctx->sim[k]);
        if (ctx->have_crystal[k])
            bf_crystal_free(&ctx->crystal[k]);
    }
    free(ctx);
}

/* Samples [row0, row0 + nrows) into patterns[0 .. nrows * length) on the
 * context's threads. On failure err gets the lowest failing sample's message,
 * whatever the schedule. */
bf_status bf_sim_rows_run(bf_sim_rows *ctx, long row0, long nrows, float *patterns,
                          bf_error *err)
{
    long first_bad = -1;
    bf_error bad_err = {0};
    const int length = ctx->length;
    const bf_cell *cells = ctx->cells;
    const int measured = bf_measured_like_on(&ctx->cfg->measured);

#pragma omp parallel num_threads(ctx->threads)
    {
        double *y = malloc((size_t)length * sizeof *y);
#pragma omp for schedule(dynamic)
        for (long i = row0; i < row0 + nrows; i++) {
            long fb;
#pragma omp atomic read
            fb = first_bad;
            if (fb >= 0 && i > fb)
                continue; /* a lower sample already failed: this one cannot be reported */
            bf_error e = {0};
            bf_powder_sim *sim = ctx->sim[ctx->class_index[i]];
            bf_status st = y ? bf_powder_sim_pattern(sim, &cells[i], y, &e)
                             : bf_error_set(&e, BF_ERR_NOMEM, "out of memory");
            if (st == BF_OK && measured) /* [measured]: stream (seed ^ key, row i) */
                st = bf_measured_like_apply(&ctx->cfg->measured, bf_powder_sim_grid(sim)->x,
                                            length, ctx->cfg->seed, (uint64_t)i, y, NULL, &e);
            if (st != BF_OK) {
#pragma omp critical(bf_dataset_first_error)
                {
                    if (first_bad < 0 || i < first_bad) {
                        bad_err = e;
#pragma omp atomic write
                        first_bad = i;
                    }
                }
                continue;
            }
            float *row = patterns + (size_t)(i - row0) * (size_t)length;
            for (int j = 0; j < length; j++)
                row[j] = (float)y[j];
            bf_progress_add(&ctx->prog, 1);
        }
        free(y);
    }

    if (first_bad < 0)
        return BF_OK;
    if (bad_err.code == BF_OK)
        bad_err.code = BF_ERR_INVALID;
    const bf_cell *c = &cells[first_bad];
    return bf_error_set(err, bad_err.code,
                        "class %s, sample %ld, cell a=%.6g b=%.6g c=%.6g alpha=%.6g beta=%.6g "
                        "gamma=%.6g: %s",
                        ctx->cfg->classes[ctx->class_index[first_bad]].name, first_bad, c->a, c->b,
                        c->c, c->alpha, c->beta, c->gamma, bad_err.msg);
}

bf_status bf_dataset_simulate_cells(const bf_sample_config *cfg, const bf_cell *cells,
                                   const int32_t *class_index, long n, int threads,
                                   bf_dataset *out, bf_error *err)
{
    bf_sim_rows *ctx = NULL;
    bf_status st = bf_sim_rows_begin(cfg, cells, class_index, n, threads, out, &ctx, err);
    if (st != BF_OK)
        return st;
    out->patterns = malloc((size_t)n * (size_t)out->length * sizeof *out->patterns);
    if (!out->patterns)
        st = bf_error_set(err, BF_ERR_NOMEM, "out of memory for %ld x %d patterns", n,
                          out->length);
    if (st == BF_OK)
        st = bf_sim_rows_run(ctx, 0, n, out->patterns, err);
    bf_sim_rows_end(ctx);
    if (st != BF_OK)
        bf_dataset_free(out);
    return st;
}

bf_status bf_dataset_draw_cells(const bf_sample_config *cfg, bf_cell **cells_out,
                                int32_t **class_index_out, long *n_out, bf_error *err)
{
    bf_status st = BF_OK;
    bf_cell *cells = NULL;
    int32_t *class_index = NULL;
    long counts[BF_MAX_CLASSES] = {0};
    *cells_out = NULL;
    *class_index_out = NULL;
    *n_out = 0;

    if (cfg->n_classes < 1 || cfg->n_classes > BF_MAX_CLASSES)
        return bf_error_set(err, BF_ERR_INVALID, "%s: %d classes (expected 1..%d)", cfg->path,
                            cfg->n_classes, BF_MAX_CLASSES);
    /* Sizes first, so one allocation holds every cell. */
    long total = 0;
    for (int k = 0; k < cfg->n_classes; k++) {
        counts[k] = class_count(cfg, &cfg->classes[k], err, &st);
        if (st != BF_OK)
            return st;
        if (counts[k] < 0 || counts[k] > (1L << 31) - total)
            return bf_error_set(err, BF_ERR_RANGE, "class %s: %ld samples is too many",
                                cfg->classes[k].name, counts[k]);
        total += counts[k];
    }
    if (total == 0)
        return bf_error_set(err, BF_ERR_INVALID, "%s: the configuration yields no samples "
                            "(every grid point dropped or outside this phase)", cfg->path);
    cells = malloc((size_t)total * sizeof *cells);
    class_index = malloc((size_t)total * sizeof *class_index);
    if (!cells || !class_index) {
        st = bf_error_set(err, BF_ERR_NOMEM, "out of memory for %ld samples", total);
        goto done;
    }

    /* Cells of every class: random streams continue across classes (class k
     * starts at the number of samples before it), so no two samples share one. */
    long offset = 0;
    for (int k = 0; k < cfg->n_classes && st == BF_OK; k++) {
        const bf_class_spec *cls = &cfg->classes[k];
        if (cfg->sampler == BF_SAMPLER_RANDOM) {
            st = bf_sample_random(cls, counts[k], cfg->seed, (uint64_t)offset, cells + offset, err);
        } else {
            long n = counts[k];
            int phased = cfg->sampler == BF_SAMPLER_PHASED;
            st = bf_sample_grid(cls, phased ? cfg->phases : 1, phased ? cfg->phase : 1,
                                cells + offset, &n, err);
            if (st == BF_OK && n != counts[k])
                st = bf_error_set(err, BF_ERR_RANGE, "class %s: grid changed size", cls->name);
        }
        for (long i = offset; i < offset + counts[k]; i++)
            class_index[i] = k;
        offset += counts[k];
    }
done:
    if (st != BF_OK) {
        free(cells);
        free(class_index);
        return st;
    }
    *cells_out = cells;
    *class_index_out = class_index;
    *n_out = total;
    return BF_OK;
}

bf_status bf_dataset_simulate(const bf_sample_config *cfg, int threads, bf_dataset *out,
                              bf_error *err)
{
    memset(out, 0, sizeof *out);
    bf_cell *cells = NULL;
    int32_t *class_index = NULL;
    long total = 0;
    bf_status st = bf_dataset_draw_cells(cfg, &cells, &class_index, &total, err);
    if (st == BF_OK)
        st = bf_dataset_simulate_cells(cfg, cells, class_index, total, threads, out, err);
    if (st == BF_OK)
        snprintf(out->sampler, sizeof out->sampler, "%s", bf_sampler_name(cfg->sampler));
    free(cells);
    free(class_index);
    return st;
}

bf_status bf_dataset_append(bf_dataset *dst, const bf_dataset *src, bf_error *err)
{
    if (dst->length != src->length)
        return bf_error_set(err, BF_ERR_INVALID, "datasets of %d and %d points cannot be joined",
                            dst->length, src->length);
    long n = dst->n + src->n;
    float *patterns = realloc(dst->patterns, sizeof(float) * (size_t)n * (size_t)dst->length);
    if (patterns)
        dst->patterns = patterns;
    double *cells = realloc(dst->cells, sizeof(double) * (size_t)n * 6);
    if (cells)
        dst->cells = cells;
    int32_t *labels = realloc(dst->labels, sizeof(int32_t) * (size_t)n);
    if (labels)
        dst->labels = labels;
    if (!patterns || !cells || !labels)
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory for %ld patterns", n);
    memcpy(dst->patterns + (size_t)dst->n * dst->length, src->patterns,
           sizeof(float) * (size_t)src->n * (size_t)src->length);
    memcpy(dst->cells + (size_t)dst->n * 6, src->cells, sizeof(double) * (size_t)src->n * 6);
    memcpy(dst->labels + dst->n, src->labels, sizeof(int32_t) * (size_t)src->n);
    dst->n = n;
    return BF_OK;
}
