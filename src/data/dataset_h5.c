/* data/dataset_h5.c — HDF5 datasets in braggflow's layout and the seed
 * workflow's layout (see braggflow/data.h for both). Written through a
 * temporary file renamed into place, so a failed or interrupted write leaves
 * no partial file. HDF5's own error printing is off; messages name the file
 * and the dataset or attribute. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    const char *measured = d->measured;
    if (st == BF_OK && measured[0]) /* absent when off: files as before */
        st = bf_h5_write_attr(file, path, "measured", str, str, -1, &measured, err);
    H5Tclose(str);
    return st;
}

/* Patterns come block by block from a source: the in-memory dataset
 * (bf_dataset_write_h5) or the simulator (bf_dataset_sample_h5). */
typedef bf_status (*rows_fn)(void *user, long row0, long nrows, float *out, bf_error *err);

static bf_status rows_from_memory(void *user, long row0, long nrows, float *out, bf_error *err)
{
    const bf_dataset *d = user;
    memcpy(out, d->patterns + (size_t)row0 * (size_t)d->length,
           (size_t)nrows * (size_t)d->length * sizeof *out);
    return BF_OK;
}

/* Chunks per block: a block of ~8 MiB keeps every thread busy and memory small. */
#define BLOCK_CHUNKS 8

/* Makes packed blocks: fill (simulate), widen to the seed layout's (TOF,
 * intensity) rows, shuffle + deflate (bf_h5_rows_pack). The rank that writes and
 * the ranks that only send run the same code, so their chunks are the same bytes. */
typedef struct {
    const bf_dataset *hdr;
    bf_h5_rows *w;
    int seed, threads;
    size_t n, block_rows;
    float *block;
    double *wide;
    rows_fn fill;
    void *user;
    double t_sim, t_pack, t_store;
} block_maker;

static bf_status make_block(block_maker *m, size_t i0, size_t rows, bf_h5_block *out,
                            bf_error *err)
{
    const size_t L = (size_t)m->hdr->length;
    double t1 = bf_now_seconds();
    bf_status st = m->fill(m->user, (long)i0, (long)rows, m->block, err);
    double t2 = bf_now_seconds();
    m->t_sim += t2 - t1;
    if (st != BF_OK)
        return st;
    const void *src = m->block;
    if (m->seed) {
        for (size_t r = 0; r < rows; r++) {
            double *dst = m->wide + r * 2 * L;
            const float *p = m->block + r * L;
            memcpy(dst, m->hdr->x, L * sizeof *dst);
            for (size_t j = 0; j < L; j++)
                dst[L + j] = p[j];
        }
        src = m->wide;
    }
    st = bf_h5_rows_pack(m->w, i0, rows, src, m->threads, out, err);
    m->t_pack += bf_now_seconds() - t2;
    return st;
}

static bf_status maker_alloc(block_maker *m, bf_h5_rows *w, const char *path,
                             bf_error *err)
{
    const size_t N = m->n, L = (size_t)m->hdr->length;
    m->w = w;
    m->block_rows = N > 0 ? (size_t)w->chunk_rows * BLOCK_CHUNKS : 1;
    if (m->block_rows > N && N > 0)
        m->block_rows = N;
    m->block = malloc(m->block_rows * L * sizeof *m->block);
    if (m->seed)
        m->wide = malloc(m->block_rows * 2 * L * sizeof *m->wide);
    if (!m->block || (m->seed && !m->wide))
        return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory for %zu x %zu patterns", path,
                            m->block_rows, L);
    return BF_OK;
}

static bf_status maker_make(void *user, long k, bf_h5_block *out, bf_error *err)
{
    block_maker *m = user;
    size_t i0 = (size_t)k * m->block_rows;
    return make_block(m, i0, m->n - i0 < m->block_rows ? m->n - i0 : m->block_rows, out, err);
}

static bf_status maker_store(void *user, long k, const bf_h5_block *b, bf_error *err)
{
    block_maker *m = user;
    size_t i0 = (size_t)k * m->block_rows;
    double t0 = bf_now_seconds();
    bf_status st = bf_h5_rows_store(m->w, i0,
                                    m->n - i0 < m->block_rows ? m->n - i0 : m->block_rows, b,
                                    err);
    m->t_store += bf_now_seconds() - t0;
    return st;
}

/* Block k of the patterns is made by rank k mod size and stored by rank 0
 * (bf_rank_blocks); one process: every block made and stored here. */
static bf_status run_blocks(block_maker *m, const bf_rank_link *link, bf_status st,
                            bf_error *err)
{
    long nb = st == BF_OK && m->n > 0 ? (long)((m->n + m->block_rows - 1) / m->block_rows) : 0;
    return bf_rank_blocks(link, nb, maker_make, maker_store, m, st, err);
}

/* Writes the layout with the patterns streamed: the small datasets first, then
 * the patterns (or the seed layout's histograms) block by block, then the
 * attributes. hdr holds everything but the patterns. Under several ranks this
 * is rank 0's side of run_blocks. */
static bf_status write_streamed(hid_t file, const bf_dataset *hdr, const char *path,
                                bf_layout layout, const bf_dataset_compression *comp,
                                int threads, rows_fn fill, void *user, const bf_rank_link *link,
                                bf_sample_stats *stats, bf_error *err)
{
    const hsize_t N = (hsize_t)hdr->n, L = (hsize_t)hdr->length;
    const int seed = layout == BF_LAYOUT_SEED;
    bf_status st = BF_OK;
    bf_h5_rows w;
    double *params = NULL;
    double t_write = 0, t0 = bf_now_seconds();
    block_maker m = {.hdr = hdr, .seed = seed, .threads = threads, .n = (size_t)N,
                     .fill = fill, .user = user};

    if (!seed) {
        hsize_t pdims[2] = {N, L}, tdims[1] = {L}, cdims[2] = {N, 6}, ldims[1] = {N};
        st = bf_h5_rows_create(file, path, "patterns", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, pdims,
                               comp, &w, err);
        if (st == BF_OK)
            st = bf_h5_write_whole(file, path, bf_x_unit_name(hdr->x_unit), H5T_IEEE_F64LE,
                                   H5T_NATIVE_DOUBLE, 1, tdims, 0, hdr->x, err);
        if (st == BF_OK)
            st = bf_h5_write_whole(file, path, "cell", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, cdims,
                                   0, hdr->cells, err);
        if (st == BF_OK)
            st = bf_h5_write_whole(file, path, "label", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, ldims,
                                   0, hdr->labels, err);
    } else {
        /* parameters (a, c, alpha); for the built-in classes c = a in cubic and
         * trigonal cells and alpha = 90 in right-angled ones already. */
        hsize_t hdims[3] = {N, 2, L}, pdims[2] = {N, 3}, ldims[1] = {N};
        st = bf_h5_rows_create(file, path, "histograms", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3,
                               hdims, comp, &w, err);
        params = malloc((size_t)(N ? N : 1) * 3 * sizeof *params);
        if (st == BF_OK && !params)
            st = bf_error_set(err, BF_ERR_NOMEM, "%s: dataset 'parameters': out of memory", path);
        for (size_t i = 0; st == BF_OK && i < (size_t)N; i++) {
            params[3 * i + 0] = hdr->cells[6 * i + BF_P_A];
            params[3 * i + 1] = hdr->cells[6 * i + BF_P_C];
            params[3 * i + 2] = hdr->cells[6 * i + BF_P_ALPHA];
        }
        if (st == BF_OK)
            st = bf_h5_write_whole(file, path, "parameters", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2,
                                   pdims, 0, params, err);
        if (st == BF_OK)
            st = bf_h5_write_whole(file, path, "label", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, ldims,
                                   0, hdr->labels, err);
    }
    /* A fixed number of chunks per block, whatever the thread or rank count: the
     * file's bytes do not depend on them. */
    if (st == BF_OK)
        st = maker_alloc(&m, &w, path, err);
    if (stats)
        stats->block_rows = (long)m.block_rows;
    t_write += bf_now_seconds() - t0;
    st = run_blocks(&m, link, st, err);
    t0 = bf_now_seconds();
    bf_h5_rows_close(&w);
    if (st == BF_OK)
        st = write_attrs(file, hdr, path, err);
    t_write += bf_now_seconds() - t0 + m.t_pack + m.t_store;
    bf_h5_rows_close(&w);
    free(m.block);
    free(m.wide);
    free(params);
    if (stats) {
        stats->simulate_s = m.t_sim;
        stats->write_s = t_write;
    }
    return st;
}

/* The other ranks' side of write_streamed: the same shapes (bf_h5_rows_plan, no
 * file), the same blocks, sent to rank 0. */
static bf_status send_streamed(const bf_dataset *hdr, const char *path, bf_layout layout,
                               const bf_dataset_compression *comp, int threads, rows_fn fill,
                               void *user, const bf_rank_link *link, bf_error *err)
{
    const hsize_t N = (hsize_t)hdr->n, L = (hsize_t)hdr->length;
    const int seed = layout == BF_LAYOUT_SEED;
    bf_h5_rows w;
    if (!seed) {
        hsize_t pdims[2] = {N, L};
        bf_h5_rows_plan(path, "patterns", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, pdims, comp, &w);
    } else {
        hsize_t hdims[3] = {N, 2, L};
        bf_h5_rows_plan(path, "histograms", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3, hdims, comp,
                        &w);
    }
    block_maker m = {.hdr = hdr, .seed = seed, .threads = threads, .n = (size_t)N,
                     .fill = fill, .user = user};
    bf_status st = maker_alloc(&m, &w, path, err);
    st = run_blocks(&m, link, st, err);
    free(m.block);
    free(m.wide);
    return st;
}

static bf_status check_write(const char *path, bf_layout layout,
                             const bf_dataset_compression *comp, bf_error *err)
{
    if (layout != BF_LAYOUT_BRAGGFLOW && layout != BF_LAYOUT_SEED)
        return bf_error_set(err, BF_ERR_INVALID, "%s: unknown layout %d", path, (int)layout);
    if (comp && (comp->deflate_level < 0 || comp->deflate_level > 9))
        return bf_error_set(err, BF_ERR_INVALID, "%s: deflate level %d (expected 0..9)", path,
                            comp->deflate_level);
    return BF_OK;
}

/* Rank 0 (or the one process): the temporary file, the streamed datasets, then
 * (agreed with the other ranks first, so no file is renamed into place while a
 * rank failed) the rename. */
static bf_status write_file(const bf_dataset *hdr, const char *path, bf_layout layout,
                            const bf_dataset_compression *comp, int threads, rows_fn fill,
                            void *user, const bf_rank_link *link, bf_sample_stats *stats,
                            bf_error *err)
{
    bf_h5_quiet quiet;
    bf_h5_quiet_begin(&quiet);
    bf_atomic_file af;
    hid_t file = H5I_INVALID_HID;
    bf_status st = bf_h5_create_atomic(&af, path, &file, err);
    int made = st == BF_OK;
    if (made) {
        st = write_streamed(file, hdr, path, layout, comp, threads, fill, user, link, stats, err);
    } else {
        st = bf_rank_blocks(link, 0, NULL, NULL, NULL, st, err); /* agrees the failure */
    }
    st = bf_rank_agree(link, st, err);
    if (st == BF_OK) {
        double t0 = bf_now_seconds();
        st = bf_h5_commit_atomic(&af, &file, err);
        if (stats)
            stats->write_s += bf_now_seconds() - t0;
    } else if (made) {
        bf_h5_close(&file, H5Fclose);
        bf_atomic_abort(&af);
    }
    bf_h5_quiet_end(&quiet);
    return st;
}

bf_status bf_dataset_write_h5_c(const bf_dataset *d, const char *path, bf_layout layout,
                                const bf_dataset_compression *comp, int threads, bf_error *err)
{
    if (d->n < 0 || d->length < 1 || (d->n > 0 && (!d->patterns || !d->cells || !d->labels)) ||
        !d->x)
        return bf_error_set(err, BF_ERR_INVALID, "%s: nothing to write (empty dataset)", path);
    bf_status st = check_write(path, layout, comp, err);
    return st != BF_OK ? st
                       : write_file(d, path, layout, comp, threads, rows_from_memory, (void *)d,
                                    NULL, NULL, err);
}

bf_status bf_dataset_write_h5(const bf_dataset *d, const char *path, bf_layout layout,
                              bf_error *err)
{
    return bf_dataset_write_h5_c(d, path, layout, NULL, 0, err);
}

/* A killed `sample` leaves PATH.tmp.PID (bf_atomic_begin's name): the next run
 * for the same PATH removes those whose process is gone on this machine, so
 * repeated kills of a long run cannot fill the disk. A live PID's file is kept
 * (another run may be writing it). */
static void remove_stale_temps(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path == 0 ? 1 : slash - path), path);
    else
        snprintf(dir, sizeof dir, ".");
    size_t nb = strlen(base);
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        const char *name = e->d_name;
        if (strncmp(name, base, nb) != 0 || strncmp(name + nb, ".tmp.", 5) != 0)
            continue;
        char *end = NULL;
        long pid = strtol(name + nb + 5, &end, 10);
        if (pid <= 0 || *end != 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", dir, name);
        unlink(full);
    }
    closedir(d);
}

static bf_status rows_from_sim(void *user, long row0, long nrows, float *out, bf_error *err)
{
    return bf_sim_rows_run(user, row0, nrows, out, err);
}

bf_status bf_dataset_sample_h5_ranks(const bf_sample_config *cfg, int threads, const char *path,
                                     const bf_dataset_compression *comp,
                                     const bf_rank_link *link, bf_sample_stats *stats,
                                     bf_error *err)
{
    double t0 = bf_now_seconds();
    bf_sample_stats local = {0};
    bf_cell *cells = NULL;
    int32_t *class_index = NULL;
    long n = 0;
    bf_sim_rows *ctx = NULL;
    bf_dataset hdr = {0};
    const int rank = link && link->size > 1 ? link->rank : 0;
    if (threads < 0)
        return bf_error_set(err, BF_ERR_INVALID, "threads: %d is negative", threads);
    if (threads == 0)
        threads = bf_default_threads();
    if (rank == 0)
        remove_stale_temps(path);
    /* every rank draws every cell (cheap, the same stream): block k's rows are the
     * 1-process run's whichever rank simulates them */
    bf_status st = check_write(path, cfg->layout, comp, err);
    if (st == BF_OK)
        st = bf_dataset_draw_cells(cfg, &cells, &class_index, &n, err);
    if (st == BF_OK)
        st = bf_sim_rows_begin(cfg, cells, class_index, n, threads, &hdr, &ctx, err);
    st = bf_rank_agree(link, st, err);
    if (st == BF_OK) {
        snprintf(hdr.sampler, sizeof hdr.sampler, "%s", bf_sampler_name(cfg->sampler));
        local.n = hdr.n;
        local.length = hdr.length;
        if (rank == 0) {
            st = write_file(&hdr, path, cfg->layout, comp, threads, rows_from_sim, ctx, link,
                            &local, err);
        } else {
            st = send_streamed(&hdr, path, cfg->layout, comp, threads, rows_from_sim, ctx, link,
                               err);
            st = bf_rank_agree(link, st, err); /* write_file's agreement before the rename */
        }
        /* a rename that failed on rank 0 fails every rank */
        st = bf_rank_agree(link, st, err);
    }
    bf_sim_rows_end(ctx);
    bf_dataset_free(&hdr);
    free(cells);
    free(class_index);
    local.total_s = bf_now_seconds() - t0;
    if (stats)
        *stats = local;
    return st;
}

bf_status bf_dataset_sample_h5(const bf_sample_config *cfg, int threads, const char *path,
                               const bf_dataset_compression *comp, bf_sample_stats *stats,
                               bf_error *err)
{
    return bf_dataset_sample_h5_ranks(cfg, threads, path, comp, NULL, stats, err);
}

/* n_file: the file's rows (out may hold only some of them). */
static bf_status read_attrs(hid_t file, const char *path, long n_file, bf_dataset *out,
                            bf_error *err)
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
    st = bf_h5_read_attr_strings(file, path, "measured", one, sizeof out->measured, 1, &n, err);
    if (st != BF_OK)
        return st;
    if (n)
        snprintf(out->measured, sizeof out->measured, "%s", one);
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
    /* No names: the distinct labels present in the whole file (a shard gives the same
     * classes as the whole read), named after the built-ins. */
    int32_t *all = out->labels;
    if (out->n != n_file) {
        const hsize_t label_shape[1] = {(hsize_t)n_file};
        all = malloc((size_t)(n_file ? n_file : 1) * sizeof *all);
        if (!all)
            return bf_error_set(err, BF_ERR_NOMEM, "%s: dataset 'label': out of memory", path);
        st = bf_h5_read_exact(file, path, "label", 1, H5T_INTEGER, label_shape,
                              H5T_NATIVE_INT32, all, err);
    }
    int labels[BF_MAX_CLASSES], nl = 0;
    for (long i = 0; st == BF_OK && i < n_file; i++) {
        int l = all[i], seen = 0;
        for (int k = 0; k < nl; k++)
            seen |= labels[k] == l;
        if (seen)
            continue;
        if (nl == BF_MAX_CLASSES)
            st = bf_error_set(err, BF_ERR_PARSE, "%s: dataset 'label': more than %d classes",
                              path, BF_MAX_CLASSES);
        else
            labels[nl++] = l;
    }
    if (all != out->labels)
        free(all);
    if (st != BF_OK)
        return st;
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


/* The file's layout (*seed: the seed layout's histograms) with its patterns dataset
 * open in *ds and shape-checked: dims (N, L) or (N, 2, L). */
static bf_status open_patterns(hid_t file, const char *path, int *seed, hsize_t dims[3],
                               hid_t *ds, bf_error *err)
{
    bf_status st;
    *seed = 0;
    if (H5Lexists(file, "patterns", H5P_DEFAULT) > 0) {
        st = bf_h5_open_checked(file, path, "patterns", 2, H5T_FLOAT, dims, ds, err);
        if (st == BF_OK && (dims[1] < 1 || dims[1] > INT32_MAX || dims[0] > INT32_MAX ||
                            !bf_h5_fits(dims[0], dims[1], sizeof(float))))
            st = bf_h5_shape_error(err, path, "patterns", "(N, L) with 1 <= L < 2^31", dims, 2);
    } else if (H5Lexists(file, "histograms", H5P_DEFAULT) > 0) {
        *seed = 1;
        st = bf_h5_open_checked(file, path, "histograms", 3, H5T_FLOAT, dims, ds, err);
        if (st == BF_OK && (dims[1] != 2 || dims[2] < 1 || dims[2] > INT32_MAX ||
                            dims[0] > INT32_MAX || !bf_h5_fits(dims[0], dims[2], sizeof(float))))
            st = bf_h5_shape_error(err, path, "histograms", "(N, 2, L)", dims, 3);
    } else {
        return bf_error_set(err, BF_ERR_PARSE,
                            "%s: neither dataset 'patterns' (braggflow layout) nor 'histograms' "
                            "(seed layout) found", path);
    }
    if (st != BF_OK)
        bf_h5_close(ds, H5Dclose);
    return st;
}

/* Rows [first, first + count) of a file of N rows, pattern length L: out's arrays. */
static bf_status alloc_rows(const char *path, hsize_t count, size_t L, bf_dataset *out,
                            bf_error *err)
{
    const size_t n = count ? (size_t)count : 1;
    out->n = (long)count;
    out->length = (int)L;
    out->patterns = malloc(n * L * sizeof(float));
    out->x = calloc(L, sizeof(double));
    out->cells = malloc(n * 6 * sizeof(double));
    out->labels = malloc(n * sizeof(int32_t));
    if (!out->patterns || !out->x || !out->cells || !out->labels)
        return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory for %ld x %d patterns", path,
                            out->n, out->length);
    return BF_OK;
}

static bf_status read_braggflow(hid_t file, hid_t ds, const hsize_t *pd, const char *path,
                                hsize_t first, hsize_t count, bf_dataset *out, bf_error *err)
{
    bf_status st = alloc_rows(path, count, (size_t)pd[1], out, err);
    if (st == BF_OK)
        st = bf_h5_read_slab(ds, 2, pd, first, count, H5T_NATIVE_FLOAT, out->patterns, path,
                             "patterns", err);
    const hsize_t tof_shape[1] = {pd[1]}, cell_shape[2] = {pd[0], 6}, label_shape[1] = {pd[0]};
    /* the x axis: TOF (us) or, for constant-wavelength files, 2theta (deg) */
    out->x_unit = H5Lexists(file, "two_theta_deg", H5P_DEFAULT) > 0 ? BF_X_TTH_DEG : BF_X_TOF_US;
    if (st == BF_OK)
        st = bf_h5_read_exact(file, path, bf_x_unit_name(out->x_unit), 1, H5T_FLOAT, tof_shape,
                              H5T_NATIVE_DOUBLE, out->x, err);
    if (st == BF_OK)
        st = bf_h5_read_rows(file, path, "cell", 2, H5T_FLOAT, cell_shape, first, count,
                             H5T_NATIVE_DOUBLE, out->cells, err);
    if (st == BF_OK)
        st = bf_h5_read_rows(file, path, "label", 1, H5T_INTEGER, label_shape, first, count,
                             H5T_NATIVE_INT32, out->labels, err);
    return st;
}

static bf_status read_seed(hid_t file, hid_t ds, const hsize_t *hd, const char *path,
                           hsize_t first, hsize_t count, bf_dataset *out, bf_error *err)
{
    const char *name = "histograms";
    const size_t N = (size_t)count, L = (size_t)hd[2];
    double *buf = NULL, *params = NULL;
    bf_status st = alloc_rows(path, count, L, out, err);
    if (st != BF_OK)
        return st;
    params = malloc((N ? N : 1) * 3 * sizeof *params);
    size_t block = CHUNK_BYTES / (2 * L * sizeof(double));
    if (block < 1)
        block = 1;
    if (block > N && N > 0)
        block = N;
    buf = malloc(block * 2 * L * sizeof *buf);
    if (!params || !buf) {
        st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory for %zu x %zu patterns", path, N,
                          L);
        goto done;
    }
    /* every row carries the same TOF axis; the file's first row's, whatever the range */
    if (hd[0] > 0 && (st = bf_h5_read_slab(ds, 3, hd, 0, 1, H5T_NATIVE_DOUBLE, buf, path, name,
                                           err)) != BF_OK)
        goto done;
    if (hd[0] > 0)
        memcpy(out->x, buf, L * sizeof(double));
    for (size_t i0 = 0; i0 < N; i0 += block) {
        size_t rows = N - i0 < block ? N - i0 : block;
        if ((st = bf_h5_read_slab(ds, 3, hd, first + i0, rows, H5T_NATIVE_DOUBLE, buf, path,
                                  name, err)) != BF_OK)
            goto done;
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < L; j++)
                out->patterns[(i0 + r) * L + j] = (float)buf[r * 2 * L + L + j];
    }

    const hsize_t param_shape[2] = {hd[0], 3}, label_shape[1] = {hd[0]};
    if ((st = bf_h5_read_rows(file, path, "parameters", 2, H5T_FLOAT, param_shape, first, count,
                              H5T_NATIVE_DOUBLE, params, err)))
        goto done;
    for (size_t i = 0; i < N; i++) {
        double a = params[3 * i], c = params[3 * i + 1], alpha = params[3 * i + 2];
        double *cell = out->cells + 6 * i;
        cell[0] = a;
        cell[1] = a;
        cell[2] = c;
        cell[3] = cell[4] = cell[5] = alpha;
    }

    st = bf_h5_read_rows(file, path, "label", 1, H5T_INTEGER, label_shape, first, count,
                         H5T_NATIVE_INT32, out->labels, err);
done:
    free(buf);
    free(params);
    return st;
}

/* count < 0: every row from first (the whole read). */
static bf_status read_dataset(const char *path, long first, long count, bf_dataset *out,
                              long *n_file, bf_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    bf_h5_quiet quiet;
    bf_h5_quiet_begin(&quiet);
    hid_t file = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    hsize_t dims[3];
    int seed = 0;
    bf_status st = bf_h5_open_read(path, &file, err);
    if (st == BF_OK)
        st = open_patterns(file, path, &seed, dims, &ds, err);
    const long n = st == BF_OK ? (long)dims[0] : 0;
    if (st == BF_OK && n_file)
        *n_file = n;
    if (count < 0)
        count = n - first;
    if (st == BF_OK && out && (first < 0 || count < 0 || first > n - count))
        st = bf_error_set(err, BF_ERR_RANGE, "%s: rows [%ld, %ld) requested, the file holds %ld",
                          path, first, first + count, n);
    if (st == BF_OK && out)
        st = seed ? read_seed(file, ds, dims, path, (hsize_t)first, (hsize_t)count, out, err)
                  : read_braggflow(file, ds, dims, path, (hsize_t)first, (hsize_t)count, out,
                                   err);
    bf_h5_close(&ds, H5Dclose);
    if (st == BF_OK && out)
        st = read_attrs(file, path, n, out, err);
    bf_h5_close(&file, H5Fclose);
    bf_h5_quiet_end(&quiet);
    if (st != BF_OK && out)
        bf_dataset_free(out);
    return st;
}

bf_status bf_dataset_h5_count(const char *path, long *n, bf_error *err)
{
    *n = 0;
    return read_dataset(path, 0, 0, NULL, n, err);
}

bf_status bf_dataset_read_h5_rows(const char *path, long first, long count, bf_dataset *out,
                                  bf_error *err)
{
    if (count < 0) { /* read_dataset's "all" must not be reachable from here */
        memset(out, 0, sizeof *out);
        return bf_error_set(err, BF_ERR_RANGE, "%s: %ld rows requested", path, count);
    }
    return read_dataset(path, first, count, out, NULL, err);
}

bf_status bf_dataset_read_h5(const char *path, bf_dataset *out, bf_error *err)
{
    return read_dataset(path, 0, -1, out, NULL, err);
}
