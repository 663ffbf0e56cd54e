/* braggflow/data.h — symmetry classes and their parameter boxes, parameter
 * samplers (uniform random, grid sweep, seed 000's bias-free phased
 * partition), the INI tokenizer, `sample` configurations (INI), threaded
 * dataset simulation and HDF5 datasets in braggflow's and the seed workflow's layouts. */
#ifndef BRAGGFLOW_DATA_H
#define BRAGGFLOW_DATA_H

#include "braggflow/core.h"
#include "braggflow/crystal.h"
#include "braggflow/sim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Cell parameter indices: a, b, c (Angstrom), alpha, beta, gamma (degrees). */
enum { BF_P_A, BF_P_B, BF_P_C, BF_P_ALPHA, BF_P_BETA, BF_P_GAMMA, BF_N_CELL_PARAMS };
extern const char *const bf_cell_param_names[BF_N_CELL_PARAMS];

/* Seed model's class labels (DESIGN §4). Custom classes take the next labels. */
enum { BF_CLASS_TRIGONAL = 0, BF_CLASS_TETRAGONAL = 1, BF_CLASS_CUBIC = 2 };

#define BF_MAX_CLASSES 16
#define BF_MAX_CONSTRAINTS 8

/* How each cell parameter is set: free (sampled in [lo, hi]), fixed to a value,
 * or tied to another parameter (b = a; beta = alpha). */
typedef enum { BF_PARAM_FREE, BF_PARAM_FIXED, BF_PARAM_TIED } bf_param_kind;
typedef struct {
    bf_param_kind kind;
    double lo, hi;       /* FREE: the box */
    double step;         /* FREE: grid step (0 = not set) */
    double value;        /* FIXED */
    int tied_to;         /* TIED: index of a FREE parameter */
} bf_param_rule;

/* |p - q| > tol, with q another parameter (q_param >= 0) or a constant. */
typedef struct {
    int p_param, q_param;
    double q_value, tol;
} bf_constraint;

typedef struct {
    char name[32];                    /* cubic | trigonal | tetragonal | any name */
    int label;
    bf_param_rule rule[BF_N_CELL_PARAMS];
    bf_constraint constraint[BF_MAX_CONSTRAINTS];
    int n_constraints;
    char cif_path[4096];
    char cif_block[76];               /* the CIF's data block to read ("": the first with atoms) */
    long count;                       /* random sampler: samples for this class */
} bf_class_spec;

/* Built-in rules for "cubic" (a; angles 90), "trigonal" (a, alpha;
 * |alpha-90| > 0.2), "tetragonal" (a, c; |a-c| > 0.001). Boxes default to the
 * seed's published ranges. BF_ERR_INVALID for another name. */
bf_status bf_class_builtin(const char *name, bf_class_spec *out, bf_error *err);
int bf_class_n_free(const bf_class_spec *cls);
/* "trigonal", "tetragonal" or "cubic" for the seed's labels 0, 1, 2; NULL otherwise. */
const char *bf_class_builtin_name(int label);
/* free values in parameter order (a before c before alpha ...) -> full cell. */
void bf_class_make_cell(const bf_class_spec *cls, const double *free_values, bf_cell *cell);
/* 1 if cell lies in the box (free parameters), matches the fixed and tied
 * values (to 1e-9), satisfies the constraints and is a real cell (positive
 * volume: a rhombohedral alpha = 120 is flat and rejected). */
int bf_class_accepts(const bf_class_spec *cls, const bf_cell *cell);
/* Checks the box is non-empty and that at least one point satisfies the
 * constraints; message names the class and key. */
bf_status bf_class_validate(const bf_class_spec *cls, bf_error *err);

/* ---- INI tokenizer (data/ini.c) ------------------------------------------------
 * The one INI reader for the layers above too (the sample-peaks config here, the
 * serve layer's timings.ini). braggflow's INI dialect: "[section]" headers and "key = value" (or
 * "key: value") lines; comments are ';' or '#' at the start of a line or after
 * a blank; indentation and trailing blanks are ignored; no multi-line values;
 * a UTF-8 byte order mark is skipped. The callback sees each header
 * (key == NULL, value == NULL) and each key line, with its 1-based line
 * number; key and value are trimmed. A non-BF_OK return stops the parse and is
 * returned. Syntax errors ("FILE:LINE: ...") are reported for a line that is
 * neither, a key before any section, an empty key, or an unterminated or
 * empty header. The separator is the first '=' or ':' of the line. */
typedef bf_status (*bf_ini_fn)(void *user, const char *section, const char *key,
                               const char *value, int line, bf_error *err);
bf_status bf_ini_parse(const char *text, const char *name, bf_ini_fn fn, void *user,
                       bf_error *err);

/* ---- Samplers ----------------------------------------------------------- */
typedef enum { BF_SAMPLER_RANDOM, BF_SAMPLER_GRID, BF_SAMPLER_PHASED } bf_sampler_kind;
const char *bf_sampler_name(bf_sampler_kind k);

/* Uniform random cells inside the box, constraint violations rejected and
 * redrawn. Sample i uses RNG stream (seed, stream_base + i). */
bf_status bf_sample_random(const bf_class_spec *cls, long count, uint64_t seed,
                           uint64_t stream_base, bf_cell *cells, bf_error *err);
/* Grid sweep: each free parameter p takes lo + j*step_p for j = 0.. while
 * <= hi (+1e-9 of a step, then clamped to hi). Points are ordered with the
 * first free parameter slowest; constraint violations are dropped. phases = 1, phase = 1 for the
 * whole grid; otherwise seed 000's bias-free partition: phase k in 1..n keeps
 * the grid points whose linear index i (before dropping) has i mod n == k-1,
 * i.e. along a 1-D sweep lo+(k-1)d, lo+(k-1+n)d, ... (stride n*d).
 * Pass cells = NULL to count; otherwise *count is the capacity of cells on
 * entry (BF_ERR_RANGE if too small) and the number written on return. */
bf_status bf_sample_grid(const bf_class_spec *cls, int phases, int phase, bf_cell *cells,
                         long *count, bf_error *err);

/* ---- `sample` configuration ------------------------------------------------ */
typedef enum { BF_LAYOUT_BRAGGFLOW, BF_LAYOUT_SEED } bf_layout;

/* Measured-like training data (`sample` INI [measured]; every part off by default).
 * Applied to each finished simulated pattern y(x), in this order:
 *   1. zero shift: s uniform in [-zero_shift, zero_shift] (x units: us for TOF);
 *      y'(x) = y(x - s) by linear interpolation of the pattern, 0 beyond its ends;
 *   2. background: + max(y) * sum_{k < background_terms} c_k T_k(u), Chebyshev
 *      polynomials of u = 2 (x - x_0) / (x_{L-1} - x_0) - 1, each c_k uniform in
 *      [background_lo, background_hi] (relative to the pattern's maximum);
 *   3. Poisson counting noise at poisson_counts total counts N: y scaled by
 *      N / S, S the sum of its positive points, each point drawn from
 *      Poisson(scaled value) (a negative value counts 0), scaled back by S / N
 *      (the intensity scale is kept).
 * Pattern `row` draws from RNG stream (seed ^ BF_MEASURED_SEED_KEY, row), apart from
 * the cells' streams: the same seed gives the same data whatever the threads. */
#define BF_MEASURED_MAX_TERMS 12
#define BF_MEASURED_SEED_KEY 0x6d65617375726564ULL  /* "measured" */
typedef struct {
    int background_terms;             /* 0 (off) .. BF_MEASURED_MAX_TERMS */
    double background_lo, background_hi;  /* default 0 0.05 */
    double poisson_counts;            /* 0: off */
    double zero_shift;                /* 0: off; x units */
} bf_measured_like;

/* What one pattern drew. */
typedef struct {
    double coeff[BF_MEASURED_MAX_TERMS];
    double shift;
} bf_measured_draw;

/* 1 when any part is on. */
int bf_measured_like_on(const bf_measured_like *ml);
/* "background_terms=3 background_coeff=0 0.05 poisson_counts=1e+06 zero_shift=0.5" (the
 * parts on; "" when off): the HDF5 provenance attribute `measured`. */
void bf_measured_like_format(const bf_measured_like *ml, char *out, size_t outsz);
/* Applies ml to y (n points on x, ascending) in place; draw (may be NULL) gets the
 * drawn values. BF_ERR_NOMEM only. */
bf_status bf_measured_like_apply(const bf_measured_like *ml, const double *x, int n,
                                 uint64_t seed, uint64_t row, double *y, bf_measured_draw *draw,
                                 bf_error *err);

typedef struct {
    char path[4096];                  /* the INI file */
    uint64_t seed;
    bf_sampler_kind sampler;
    int phases, phase;                /* phased sampler */
    bf_layout layout;
    char instprm_path[4096];
    bf_grid_spec grid;
    bf_sample sample;                 /* scale etc. */
    bf_measured_like measured;        /* [measured]: background, noise, zero shift */
    int n_classes;
    bf_class_spec classes[BF_MAX_CLASSES];
    char config_text[8192];           /* the INI text (truncated), kept as provenance */
} bf_sample_config;

/* Parses and validates; relative paths resolve against the INI's folder.
 * Errors name the file, line or section and key. */
bf_status bf_sample_config_read(const char *ini_path, bf_sample_config *out, bf_error *err);
bf_status bf_sample_config_parse(const char *text, const char *name, bf_sample_config *out,
                                 bf_error *err);

/* ---- Datasets ------------------------------------------------------------- */
typedef struct {
    long n;                           /* patterns */
    int length;                       /* points per pattern (L) */
    float *patterns;                  /* [n * length], GSAS-II intensity units */
    double *x;                        /* [length] TOF bin centres (us) or 2theta (deg) */
    bf_x_unit x_unit;                 /* which: the instrument's type */
    double *cells;                    /* [n * 6] a b c alpha beta gamma */
    int32_t *labels;                  /* [n] */
    int n_classes;
    char class_names[BF_MAX_CLASSES][32];  /* in config order */
    int32_t class_labels[BF_MAX_CLASSES];  /* label of class_names[k] */
    /* provenance */
    uint64_t seed;
    char sampler[32];
    char instprm_sha256[65];
    char cif_sha256[BF_MAX_CLASSES][65];
    char config_text[8192];
    char measured[256];               /* bf_measured_like_format; "" when off */
} bf_dataset;

/* Draws every class's cells, simulates them on `threads` threads (0 = all
 * cores) and fills out. Same config and seed => identical dataset, whatever
 * the thread count. Shows a progress bar on stderr when it is a terminal. */
bf_status bf_dataset_simulate(const bf_sample_config *cfg, int threads, bf_dataset *out,
                              bf_error *err);
/* The cells bf_dataset_simulate draws (every class, in config order; heap) and each
 * one's class index into cfg->classes. */
bf_status bf_dataset_draw_cells(const bf_sample_config *cfg, bf_cell **cells,
                                int32_t **class_index, long *n, bf_error *err);
/* Simulates the given cells: cell i of class cfg->classes[class_index[i]] (labels
 * from those classes; the sampler field is left empty for the caller). Same
 * cells => identical dataset, whatever the thread count. */
bf_status bf_dataset_simulate_cells(const bf_sample_config *cfg, const bf_cell *cells,
                                   const int32_t *class_index, long n, int threads,
                                   bf_dataset *out, bf_error *err);
void bf_dataset_free(bf_dataset *d);
/* Appends src's patterns, cells and labels to dst (same pattern length); dst keeps
 * its own provenance fields. */
bf_status bf_dataset_append(bf_dataset *dst, const bf_dataset *src, bf_error *err);

/* How `patterns` (and the seed layout's `histograms`) are compressed: HDF5
 * chunks of about 1 MiB of whole rows, byte shuffle (optional) then deflate at
 * deflate_level (0: stored uncompressed). threaded = 1 deflates the chunks on the
 * simulation threads (zlib) and stores them with H5Dwrite_chunk: the same bytes
 * as HDF5's filter pipeline, which deflates on the writing thread alone. rle = 1
 * (threaded only) uses zlib's run-length strategy: still a deflate stream that
 * every HDF5 reader inflates, half the time of level 1 here, not the pipeline's
 * bytes. README "HDF5 layouts" has the measured cost of each choice. */
typedef struct {
    int deflate_level;                /* 0..9 */
    int shuffle;                      /* 0 or 1 */
    int threaded;                     /* 0 or 1 */
    int rle;                          /* 0 or 1, with threaded */
} bf_dataset_compression;
/* The default, chosen by bench/sample_write.c's numbers (README). */
bf_dataset_compression bf_dataset_compression_default(void);

/* What bf_dataset_sample_h5 did: the wall time spent simulating and writing. */
typedef struct {
    long n;
    int length;
    long block_rows;                  /* patterns simulated and written per block */
    double simulate_s, write_s, total_s;
} bf_sample_stats;

/* `sample` streamed: draws every class's cells as bf_dataset_simulate does, then
 * simulates blocks of block_rows patterns (a fixed number of HDF5 chunks) and
 * writes each into the open temporary file before the next is simulated, so the
 * patterns held in memory are one block, not the dataset (cells and labels,
 * 52 bytes a pattern, are held whole). Renamed into place only when complete;
 * a failure or a kill leaves no file at `path` (a killed run leaves
 * PATH.tmp.PID). The file is byte-identical to bf_dataset_simulate followed by
 * bf_dataset_write_h5 with the same compression, whatever `threads`.
 * comp NULL: the default. stats may be NULL. */
bf_status bf_dataset_sample_h5(const bf_sample_config *cfg, int threads, const char *path,
                               const bf_dataset_compression *comp, bf_sample_stats *stats,
                               bf_error *err);

/* The ranks of one job writing one file (`mpirun -np N braggflow sample`, DESIGN
 * §10 "As built"): block k of rows is simulated and compressed by rank k mod size
 * and sent to rank 0, which alone writes the file, storing the chunks in row order;
 * the file is the 1-process one, byte for byte. The data layer knows no MPI: the
 * CLI fills this from braggflow/dist.h. */
typedef struct {
    int rank, size;
    void *user;
    /* Collective: every rank passes its status; BF_OK on all unless one failed, else
     * the lowest failing rank's error on all (bf_comm_agree). */
    bf_status (*agree)(void *user, bf_status st, bf_error *err);
    /* rank > 0: bytes to rank 0 (blocking) */
    bf_status (*send_to_0)(void *user, const void *buf, size_t bytes, bf_error *err);
    /* rank 0: the next message from `from` into *buf (malloc'd, caller frees) */
    bf_status (*recv_from)(void *user, int from, void **buf, size_t *bytes, bf_error *err);
} bf_rank_link;

/* bf_dataset_sample_h5 over link's ranks (link NULL or one rank: the same). Every
 * rank reads the same cfg and draws every cell; only rank 0 touches `path`; a
 * failure on any rank fails all, and no file is left. stats: rank 0's. */
bf_status bf_dataset_sample_h5_ranks(const bf_sample_config *cfg, int threads, const char *path,
                                     const bf_dataset_compression *comp,
                                     const bf_rank_link *link, bf_sample_stats *stats,
                                     bf_error *err);

/* Writes atomically (temp file + fsync + rename). braggflow layout:
 *   patterns (N, L) float32, tof_us or two_theta_deg (L) float64 (the x axis), cell (N, 6) float64,
 *   label (N) int32; root attributes version, seed (uint64), sampler,
 *   class_names (1-D array of variable-length strings, config order),
 *   class_labels (int32, same order), instprm_sha256, cif_sha256 (1-D array of
 *   strings, one per class), config (the INI text). Patterns are chunked by
 *   rows (~1 MiB a chunk) with shuffle + deflate (bf_dataset_compression_default).
 * seed layout (the seed workflow): histograms (N, 2, L) float64 with rows
 *   TOF and intensity, parameters (N, 3) = a, c, alpha (c = a for cubic and
 *   trigonal, alpha = 90 for right-angled cells), label (N) int32. */
bf_status bf_dataset_write_h5(const bf_dataset *d, const char *path, bf_layout layout,
                              bf_error *err);
/* Same with the given compression (NULL: the default); threads compress when
 * comp->threaded (0 = all cores). */
bf_status bf_dataset_write_h5_c(const bf_dataset *d, const char *path, bf_layout layout,
                                const bf_dataset_compression *comp, int threads, bf_error *err);
/* Reads either layout (detected from the datasets present). The seed layout's
 * cells are rebuilt as (a, a, c, alpha, alpha, alpha), exact for the three
 * built-in classes; attributes absent from a file are left empty (class names
 * then default to the built-ins' names by label). */
bf_status bf_dataset_read_h5(const char *path, bf_dataset *out, bf_error *err);
/* The rows of either layout in *n, from the patterns' shape (nothing else is read). */
bf_status bf_dataset_h5_count(const char *path, long *n, bf_error *err);
/* Rows [first, first + count) only (hyperslabs of the patterns, cells and labels: a
 * rank reads its shard, DESIGN §10); the x axis and the attributes as the whole read gives
 * them. first + count beyond the file's rows (or either negative): BF_ERR_RANGE naming
 * the file. bf_dataset_read_h5 is rows [0, all) of the same code. */
bf_status bf_dataset_read_h5_rows(const char *path, long first, long count, bf_dataset *out,
                                  bf_error *err);

/* One pattern (n = 1, patterns only) from CSV text: a column of intensities, or
 * tof,intensity as `simulate --out x.csv` writes (the last column is read;
 * bf_pattern_columns_parse below). Header lines before the data, blank lines and
 * '#' / '!' comments are skipped; errors name
 * name:line (non-numeric line, changing column count, NaN/inf intensity). */
bf_status bf_pattern_csv_parse(const char *text, const char *name, bf_dataset *out,
                               bf_error *err);
bf_status bf_pattern_csv_read(const char *path, bf_dataset *out, bf_error *err);

/* ---- Measured patterns (data/pattern_read.c) -----------------------------------
 * The x axis of a pattern is a bf_x_unit (sim.h): TOF in microseconds (GSAS-II's
 * log-spaced grid) or 2theta in degrees (constant wavelength, linear grids); its
 * names (bf_x_unit_name) are those of the HDF5 x datasets and CSV headers.
 * bf_x_unit_parse: 0 and *u set for those two names; -1 otherwise. */
int bf_x_unit_parse(const char *name, bf_x_unit *u);

/* The columns of a pattern file with the column parser every pattern reader shares
 * (the one CSV reader: blanks or commas between numbers; '#' and '!' start a
 * comment; blank lines, and non-numeric header lines before the data, skipped).
 * Lines hold 1..max_cols numbers, all the same count; col[k] (heap, n values) for
 * k < *n_cols, the others NULL. A header line naming tof_us or two_theta_deg sets
 * *unit and *unit_known = 1. lines (may be NULL): heap, the 1-based line of each
 * point. Errors name name:line (a line with other text, more than max_cols numbers
 * or a changing count, a non-finite value). */
bf_status bf_pattern_columns_parse(const char *text, const char *name, int max_cols,
                                   double *col[3], int *n, int *n_cols, bf_x_unit *unit,
                                   int *unit_known, int **lines, bf_error *err);

/* A measured (or exported) pattern: x ascending, y counts, sigma the esd when the
 * file has one (else NULL). */
typedef struct {
    int n;
    double *x, *y, *sigma;
    bf_x_unit unit;
    int unit_known;               /* 0: the file does not say; unit is a guess */
} bf_measured;

typedef enum {
    BF_MEAS_AUTO, BF_MEAS_XY, BF_MEAS_XYE, BF_MEAS_GSA, BF_MEAS_FXYE, BF_MEAS_CSV
} bf_measured_format;
/* "auto", "xy", "xye", "gsa", "fxye", "csv" -> 0; -1 otherwise. */
int bf_measured_format_parse(const char *name, bf_measured_format *f);
/* From the file name's extension: .xy .dat .txt -> XY, .xye -> XYE, .gsa .gss .gsas
 * .raw -> GSA, .fxye -> FXYE, .csv -> CSV; -1 for another. */
int bf_measured_format_of(const char *path, bf_measured_format *f);

/* Reads path in fmt (BF_MEAS_AUTO: from the extension). unit_hint (may be NULL) is
 * the unit to assume where the file does not say (the model's grid): xy/xye files,
 * CSV without a tof_us / two_theta_deg header and GSAS CONST banks (whose x is TOF
 * in microseconds or 2theta in centidegrees, converted to degrees here). GSAS files:
 * the first BANK line (BANK n nchan nrec BINTYP bcoef1..4 TYPE) with BINTYP CONST
 * (start, step), SLOG (start, stop, dT/T: TOF) or RALF (TOF; with FXYE/FXY only),
 * TYPE FXYE (x y esd per line), FXY (x y), ESD (five y, esd pairs per 80-column
 * record, fields of 8 columns), STD (ten y per record; fields of 8 columns, an
 * optional 2-column counter count before each value) or empty (STD). Errors name
 * FILE:LINE: fewer than 2 points, x not strictly increasing, NaN/inf, the wrong
 * number of columns, a bad BANK line, no unit known. */
bf_status bf_measured_read(const char *path, bf_measured_format fmt, const bf_x_unit *unit_hint,
                           bf_measured *out, bf_error *err);
bf_status bf_measured_parse(const char *text, const char *name, bf_measured_format fmt,
                            const bf_x_unit *unit_hint, bf_measured *out, bf_error *err);
void bf_measured_free(bf_measured *m);

/* A grid a model was trained on, as the checkpoint records it: unit, count, first
 * and last point, and how the points are spaced (geometric: x_i = first *
 * (last/first)^(i/(n-1)), GSAS-II's TOF bins; linear) when every point is that
 * within 1e-9 relative; otherwise BF_GRID_ARRAY with the SHA-256 of the float64
 * array (little-endian bytes), which a measured pattern cannot be regridded onto. */
typedef enum { BF_GRID_GEOMETRIC, BF_GRID_LINEAR, BF_GRID_ARRAY } bf_grid_spacing;
typedef struct {
    bf_x_unit unit;
    int n;
    double first, last;
    bf_grid_spacing spacing;
    char sha256[65];              /* BF_GRID_ARRAY: the array's hash */
} bf_x_grid;
/* Describes x (n >= 2, strictly increasing). */
bf_status bf_x_grid_describe(const double *x, int n, bf_x_unit unit, bf_x_grid *out,
                             bf_error *err);
/* x[0..g->n) of a geometric or linear grid (BF_ERR_INVALID for BF_GRID_ARRAY). */
bf_status bf_x_grid_values(const bf_x_grid *g, double *x, bf_error *err);

/* Regrids m onto the n points x (unit: the grid's) by linear interpolation of the
 * counts between the two measured points around each x; points of x outside
 * [m->x[0], m->x[n-1]] get 0 (within 1/1000 of the end step outside: the end value,
 * so that x printed with a few decimals keeps a pattern on the model's own grid). y (n) is filled; *covered (may be NULL) is the
 * number of points inside. Errors: a unit other than the grid's, no point of x
 * inside the measured range ("name: x 1200..1500 us does not overlap the model's
 * grid 1360..18919 us"). */
bf_status bf_measured_to_grid(const bf_measured *m, const char *name, const double *x, int n,
                              bf_x_unit unit, float *y, int *covered, bf_error *err);


/* ---- Peak patches (BraggNN, DESIGN §7; sim.h has the coordinate convention) ----
 * One file layout for simulated, imported and fitted patches (docs/peaks.md):
 *   patches (N, S, S) float32          raw counts, not scaled
 *   centre  (N, 2) float64             true (row, col), patch pixel coordinates;
 *                                      absent when unknown
 *   simulated files: peak (N, 9) float64 and background (N, 3) float64 (bf_peak2d
 *     and bf_background2d fields in order), read_sigma (N) float64, neighbour (N)
 *     uint8 (1: a second peak reaches into the patch), neighbour_peak (N, 9)
 *     float64 (zeros where neighbour = 0)
 *   imported files: frame_index (N) uint32, origin (N, 2) int32 (frame row and
 *     column of patch pixel (0, 0)), npeaks (N) uint16, deviation (N) float32
 *   root attributes: version, kind ("simulated" | "imported" | "fitted"), patch_size,
 *     seed, and `config` when kind is "simulated" (the effective configuration as INI
 *     text with every key, bf_patches.source; parsing it reproduces the run) or
 *     `source` otherwise (the input files' names and SHA-256).
 *   fitted files (fit.h bf_patches_label_with_fits, `fit-peaks --labelled`): centre
 *     holds the conventional fit's centres, not a truth, and no simulated truth. */
typedef struct {
    long n;
    int size;                         /* S */
    float *patches;                   /* [n * S * S] */
    double *centre;                   /* [n * 2] (row, col), or NULL when unknown */
    /* simulated only (NULL otherwise) */
    bf_peak2d *peak;                  /* [n] */
    bf_background2d *background;      /* [n] */
    double *read_sigma;               /* [n] Gaussian read noise (counts) */
    uint8_t *neighbour;               /* [n] */
    bf_peak2d *neighbour_peak;        /* [n] */
    /* imported only (NULL otherwise) */
    uint32_t *frame_index;            /* [n] */
    int32_t *origin;                  /* [n * 2] frame (row, col) of pixel (0, 0) */
    uint16_t *npeaks;                 /* [n] */
    float *deviation;                 /* [n] */
    /* provenance */
    char kind[16];                    /* "simulated" | "imported" | "fitted" */
    uint64_t seed;
    char source[8192];                /* INI text, or "frames=... sha256=..." */
} bf_patches;

void bf_patches_free(bf_patches *p);
/* Writes atomically (temp file + fsync + rename); only the arrays present are written. */
bf_status bf_patches_write_h5(const bf_patches *p, const char *path, bf_error *err);
/* Reads the layout above; checks shapes, finiteness of every patch value
 * ("FILE: patches: patch 17 pixel (3, 4) is NaN") and of the centres. */
bf_status bf_patches_read_h5(const char *path, bf_patches *out, bf_error *err);
/* The patches in *n, from the patches' shape (checked as the read checks it). */
bf_status bf_patches_h5_count(const char *path, long *n, bf_error *err);
/* Patches [first, first + count) only, with their centres and per-patch arrays
 * (hyperslabs) and the attributes; checks as bf_patches_read_h5 (a non-finite value
 * is named by its row in the file). first + count beyond the file's patches (or
 * either negative): BF_ERR_RANGE. bf_patches_read_h5 is [0, all) of the same code. */
bf_status bf_patches_read_h5_rows(const char *path, long first, long count, bf_patches *out,
                                  bf_error *err);
/* out = rows[0..n) of p (in that order; a row may repeat): every array p has, and
 * its kind, seed and source. Each row must lie in [0, p->n) and n >= 1. */
bf_status bf_patches_select(const bf_patches *p, const long *rows, long n, bf_patches *out,
                            bf_error *err);

/* Error statistics of centres against reference ones (true centres, or a fit's): the
 * Euclidean distance in pixels; percentiles as numpy's default, linear between order
 * statistics at q (n - 1). One definition for every command, test and benchmark. */
typedef struct {
    long n;
    double mean, p50, p75, p95, p995, max;
} bf_peak_errors;

/* dist[i] = |pred_i - true_i| (px) for (row, col) pairs; stats of those n values. */
bf_status bf_peak_errors_of(const double *pred_rc, const double *true_rc, long n,
                            bf_peak_errors *out, bf_error *err);

/* `sample-peaks` configuration: [run] seed, count, patch_size; [peak], [noise],
 * [neighbour] ranges (every key and default in README.md, docs/peaks.md). */
typedef struct {
    double lo, hi;
    int log;                          /* 1: log-uniform between lo and hi */
} bf_range;

typedef struct {
    char path[4096];
    uint64_t seed;
    long count;
    int size;                         /* S, odd, 5..63; default 11 */
    bf_range height;                  /* amplitude, counts (log-uniform 50..5000) */
    bf_range sigma;                   /* Gaussian sigma per axis, px (0.5..2) */
    bf_range gamma;                   /* Lorentzian HWHM per axis, px */
    bf_range eta;                     /* [0, 1] */
    bf_range theta_deg;               /* rotation (0..180) */
    bf_range centre_offset;           /* px from the central pixel's centre, per axis (-1..1) */
    bf_range bg_level;                /* counts (1..50) */
    bf_range bg_slope;                /* counts per px */
    bf_range read_sigma;              /* Gaussian read noise sigma, counts (1..3) */
    int poisson;                      /* 1: Poisson counting noise */
    double neighbour_fraction;        /* share of patches with a neighbour (0.1) */
    bf_range neighbour_distance;      /* centre distance from the main peak, px */
    bf_range neighbour_height_ratio;  /* neighbour height / main height */
    char config_text[8192];
} bf_peaks_config;

void bf_peaks_config_defaults(bf_peaks_config *cfg);
bf_status bf_peaks_config_read(const char *path, bf_peaks_config *out, bf_error *err);
bf_status bf_peaks_config_parse(const char *text, const char *name, bf_peaks_config *out,
                                bf_error *err);
/* Simulates cfg->count patches on `threads` threads (0 = all cores); patch i uses RNG
 * stream (seed, i), so the result does not depend on the thread count. */
bf_status bf_patches_simulate(const bf_peaks_config *cfg, int threads, bf_patches *out,
                              bf_error *err);
/* `sample-peaks` streamed: simulates blocks of 8 HDF5 chunks of patches and
 * writes each into the open temporary file before the next, so memory holds one
 * block; renamed into place when complete. Byte-identical to bf_patches_simulate
 * then bf_patches_write_h5, whatever the thread count. *neighbours (may be NULL):
 * patches with a neighbour. */
bf_status bf_patches_sample_h5(const bf_peaks_config *cfg, int threads, const char *path,
                               long *neighbours, bf_error *err);

/* bf_patches_sample_h5 over link's ranks (bf_rank_link above; NULL or one rank: the
 * same): block k by rank k mod size, rank 0 writes the 1-process file, byte for
 * byte; a failure on any rank fails all and leaves no file. *neighbours: rank 0's
 * count (the whole file's). */
bf_status bf_patches_sample_h5_ranks(const bf_peaks_config *cfg, int threads, const char *path,
                                     const bf_rank_link *link, long *neighbours, bf_error *err);

/* BraggNN's own files (DESIGN §7): frames (n_frames, H, W) float32 and peak_fidx,
 * peak_row, peak_col, npeaks, deviations. Keeps the rows BraggNN trains on
 * (npeaks == 1 and 0 <= deviations < 1), crops S x S around (int(row), int(col))
 * as its dataset.py (zeros where the crop leaves the frame, (S - h) // 2 of the
 * S - h missing rows before the h copied ones and the rest after, likewise
 * columns, so an edge patch is shifted) and records the frame index and the
 * origin of the patch as stored; centre = (peak_row, peak_col) - origin.
 * Errors name the file and dataset ("peaks.h5: peak_fidx: row 12 is 40, frames.h5
 * has 10 frames"); size must be odd, 5..63. docs/peaks.md has the details. */
bf_status bf_patches_import_braggnn(const char *frames_path, const char *peaks_path, int size,
                                    bf_patches *out, bf_error *err);

#ifdef __cplusplus
}
#endif
#endif
