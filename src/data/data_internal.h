/* data/data_internal.h — pieces shared inside the data layer: the peak-patch
 * helpers and the HDF5 helpers of the dataset and patch files (data/h5_util.c). HDF5's automatic error printing is turned off around every
 * call (bf_h5_quiet_*); messages name the file and the dataset or attribute. */
#ifndef BF_DATA_INTERNAL_H
#define BF_DATA_INTERNAL_H

#include <hdf5.h>

#include "braggflow/data.h"

/* ---- peak patches ----------------------------------------------------------------- */
/* cfg as INI text with every key (data/peaks_config.c): parsing it gives cfg back
 * (numbers written with up to 17 significant digits). Cut at outsz - 1 characters. */
void bf_peaks_config_format(const bf_peaks_config *cfg, char *out, size_t outsz);
/* A Poisson(lambda) count (data/patches_sim.c): Knuth's product of uniforms for
 * lambda < 10, Hormann's transformed rejection with squeeze (PTRS, 1993) above;
 * 0 for lambda <= 0 or NaN. */
double bf_poisson_draw(bf_rng *rng, double lambda);

/* sample-peaks by blocks (data/patches_sim.c): arrays for n simulated patches
 * with cfg's provenance; then patches row0.. row0+n-1 into them (patch i from
 * RNG stream i, whatever the block). */
bf_status bf_patches_alloc_rows(const bf_peaks_config *cfg, long n, bf_patches *out,
                                bf_error *err);
bf_status bf_patches_simulate_rows(const bf_peaks_config *cfg, long row0, long n, int threads,
                                   bf_patches *out, bf_progress *prog, bf_error *err);

/* ---- dataset simulation by blocks of rows (data/dataset.c) ------------------------ */
/* Every class's simulator, ready to simulate any rows of cells[0..n). */
typedef struct {
    const bf_sample_config *cfg;
    const bf_cell *cells;             /* borrowed, [n] */
    const int32_t *class_index;       /* borrowed, [n] */
    long n;
    int length, threads;
    bf_powder_sim *sim[BF_MAX_CLASSES];
    bf_crystal crystal[BF_MAX_CLASSES];
    int have_crystal[BF_MAX_CLASSES];
    bf_progress prog;
    int progress_on;
} bf_sim_rows;

/* Validates, fills hdr with everything but patterns (n, length, x axis, cells,
 * labels, provenance; the sampler is left empty) and prepares the simulators.
 * On failure hdr is freed and *out is NULL. */
bf_status bf_sim_rows_begin(const bf_sample_config *cfg, const bf_cell *cells,
                            const int32_t *class_index, long n, int threads, bf_dataset *hdr,
                            bf_sim_rows **out, bf_error *err);
/* Patterns of rows [row0, row0 + nrows) into patterns (nrows x length). */
bf_status bf_sim_rows_run(bf_sim_rows *ctx, long row0, long nrows, float *patterns,
                          bf_error *err);
void bf_sim_rows_end(bf_sim_rows *ctx);

/* ---- HDF5 (data/h5_util.c) ---------------------------------------------------- */
#define BF_H5_CHUNK_BYTES (1u << 20) /* ~1 MiB chunks: good compression, cheap row reads */

typedef struct {
    H5E_auto2_t fn;
    void *data;
} bf_h5_quiet;

void bf_h5_quiet_begin(bf_h5_quiet *q);
void bf_h5_quiet_end(const bf_h5_quiet *q);
/* HDF5's most specific message for the last failure (then cleared). */
void bf_h5_detail(char buf[256]);
/* "PATH: WHAT 'NAME': ACTION: detail" (or "PATH: ACTION: detail" without a name). */
bf_status bf_h5_fail(bf_error *err, bf_status code, const char *path, const char *what,
                     const char *name, const char *action);
/* Closes *id with closer when it is valid and invalidates it. */
void bf_h5_close(hid_t *id, herr_t (*closer)(hid_t));

/* Creates dataset `name` with dims; chunked by rows of `row_bytes` with
 * shuffle + deflate(1) when row_bytes > 0 (and dims[0] > 0). No modification
 * times are stored, so the same data gives the same bytes. */
bf_status bf_h5_create_dataset(hid_t file, const char *path, const char *name, hid_t ftype,
                               int rank, const hsize_t *dims, size_t row_bytes, hid_t *out,
                               bf_error *err);
/* Same, with the given compression for the chunked case (NULL: the default,
 * bf_dataset_compression_default()). */
bf_status bf_h5_create_dataset_c(hid_t file, const char *path, const char *name, hid_t ftype,
                                 int rank, const hsize_t *dims, size_t row_bytes,
                                 const bf_dataset_compression *comp, hid_t *out, bf_error *err);
/* Rows of a chunked dataset written block by block (dataset_h5.c streams `sample`
 * through it). Chunks are row_bytes-wide slabs of chunk_rows rows; with
 * comp->threaded the chunks of a block are shuffled and deflated on OpenMP threads
 * (zlib compress2, as HDF5's own deflate filter calls it) and stored in row order
 * with H5Dwrite_chunk, otherwise HDF5's filter pipeline compresses them on this
 * thread; comp->rle: zlib's Z_RLE strategy (direct writes only). Either way the
 * file's bytes depend only on the rows, the compression and the block size,
 * never on the thread count. */
typedef struct {
    hid_t ds;
    const char *path, *name;
    hid_t mtype;
    int rank;
    hsize_t dims[3];
    hsize_t chunk_rows;
    size_t row_bytes;                 /* bytes of one row in the file (== in memory) */
    bf_dataset_compression comp;
    int direct;                       /* 1: H5Dwrite_chunk of our own deflated chunks */
} bf_h5_rows;

/* w's shapes and compression without a file: a rank that only packs blocks for the
 * rank that writes (bf_dataset_sample_h5_ranks). */
void bf_h5_rows_plan(const char *path, const char *name, hid_t ftype, hid_t mtype, int rank,
                     const hsize_t *dims, const bf_dataset_compression *comp, bf_h5_rows *w);
bf_status bf_h5_rows_create(hid_t file, const char *path, const char *name, hid_t ftype,
                            hid_t mtype, int rank, const hsize_t *dims,
                            const bf_dataset_compression *comp, bf_h5_rows *w, bf_error *err);
/* Writes rows [row0, row0 + nrows) from buf (mtype, row-major). With direct
 * chunk writes row0 must be a multiple of chunk_rows and nrows too unless the
 * block ends the dataset. threads: compression threads (direct writes only). */
bf_status bf_h5_rows_write(bf_h5_rows *w, hsize_t row0, hsize_t nrows, const void *buf,
                           int threads, bf_error *err);
/* bf_h5_rows_write in two halves, so another rank can do the first: pack shuffles
 * and deflates rows [row0, row0 + nrows) into one self-describing byte buffer
 * (out->bytes malloc'd; raw rows when not direct), store writes it (H5Dwrite_chunk
 * in row order) and checks its framing. */
typedef struct {
    unsigned char *bytes;
    size_t n_bytes;
} bf_h5_block;
bf_status bf_h5_rows_pack(const bf_h5_rows *w, hsize_t row0, hsize_t nrows, const void *buf,
                          int threads, bf_h5_block *out, bf_error *err);
bf_status bf_h5_rows_store(bf_h5_rows *w, hsize_t row0, hsize_t nrows, const bf_h5_block *b,
                           bf_error *err);
void bf_h5_rows_close(bf_h5_rows *w);

/* data/rank_blocks.c: blocks shared out over link's ranks (bf_rank_link). make
 * packs block k on the rank that owns it (k mod size); store writes block k on
 * rank 0, in row order. link NULL or one rank: make and store each block here.
 * st: the caller's set-up status, agreed first. */
typedef bf_status (*bf_rank_make_fn)(void *user, long k, bf_h5_block *out, bf_error *err);
typedef bf_status (*bf_rank_store_fn)(void *user, long k, const bf_h5_block *b, bf_error *err);
bf_status bf_rank_blocks(const bf_rank_link *link, long n_blocks, bf_rank_make_fn make,
                         bf_rank_store_fn store, void *user, bf_status st, bf_error *err);
/* link->agree when several ranks, else st. */
bf_status bf_rank_agree(const bf_rank_link *link, bf_status st, bf_error *err);

/* Creates and writes a whole dataset (nothing written when dims[0] is 0). */
bf_status bf_h5_write_whole(hid_t file, const char *path, const char *name, hid_t ftype,
                            hid_t mtype, int rank, const hsize_t *dims, size_t row_bytes,
                            const void *data, bf_error *err);
/* Variable-length UTF-8 string type (caller closes). */
hid_t bf_h5_vlen_string_type(void);
/* Attribute of obj: n values of `mtype` (n < 0: a scalar). */
bf_status bf_h5_write_attr(hid_t obj, const char *path, const char *name, hid_t ftype,
                           hid_t mtype, long n, const void *data, bf_error *err);

/* Starts an atomic write (bf_atomic_begin, open_stdio = 0) and creates the
 * HDF5 file at af->tmp_path; on failure nothing is left behind. */
bf_status bf_h5_create_atomic(bf_atomic_file *af, const char *path, hid_t *file, bf_error *err);
/* Closes *file and renames it into place (bf_atomic_commit); on failure the
 * temporary file is removed. */
bf_status bf_h5_commit_atomic(bf_atomic_file *af, hid_t *file, bf_error *err);
/* Opens an existing HDF5 file read-only: "PATH: No such file or directory",
 * "PATH: not an HDF5 file". */
bf_status bf_h5_open_read(const char *path, hid_t *file, bf_error *err);

/* Opens dataset `name`, checks its rank (<= 4) and type class, and fills dims. */
bf_status bf_h5_open_checked(hid_t file, const char *path, const char *name, int rank,
                             H5T_class_t tclass, hsize_t *dims, hid_t *out, bf_error *err);
bf_status bf_h5_read_all(hid_t ds, hid_t mtype, void *buf, const char *path, const char *name,
                         bf_error *err);
/* "(3, 2806)" */
void bf_h5_format_dims(const hsize_t *dims, int rank, char *out, size_t outsz);
/* "PATH: dataset 'NAME': shape (got), expected WANT" */
bf_status bf_h5_shape_error(bf_error *err, const char *path, const char *name, const char *want,
                            const hsize_t *dims, int rank);
/* Reads dataset `name` (rank <= 3), which must have exactly the shape
 * want[0..rank-1], into buf as mtype (nothing to read when want[0] is 0). */
bf_status bf_h5_read_exact(hid_t file, const char *path, const char *name, int rank,
                           H5T_class_t tclass, const hsize_t *want, hid_t mtype, void *buf,
                           bf_error *err);
/* Rows [first, first + count) only of dataset `name`, whose shape must be exactly
 * want (want[0]: all its rows); a hyperslab, so a rank reads only its shard.
 * first + count > want[0]: BF_ERR_RANGE. bf_h5_read_exact is rows [0, want[0]). */
bf_status bf_h5_read_rows(hid_t file, const char *path, const char *name, int rank,
                          H5T_class_t tclass, const hsize_t *want, hsize_t first,
                          hsize_t count, hid_t mtype, void *buf, bf_error *err);
/* The same on a dataset already open (bf_h5_open_checked) with shape dims. */
bf_status bf_h5_read_slab(hid_t ds, int rank, const hsize_t *dims, hsize_t first,
                          hsize_t count, hid_t mtype, void *buf, const char *path,
                          const char *name, bf_error *err);
/* String attribute `name` (scalar or 1-D, variable or fixed length) into
 * out[k * stride], at most max strings of stride-1 characters. Absent: *n = 0. */
bf_status bf_h5_read_attr_strings(hid_t obj, const char *path, const char *name, char *out,
                                  size_t stride, int max, int *n, bf_error *err);
/* Integer attribute (scalar or 1-D, at most max values) converted to mtype. Absent: *n = 0. */
bf_status bf_h5_read_attr_numbers(hid_t obj, const char *path, const char *name, hid_t mtype,
                                  void *out, int max, int *n, bf_error *err);
/* 1 when a * b elements of elem bytes fit in size_t. */
int bf_h5_fits(hsize_t a, hsize_t b, size_t elem);

#endif
