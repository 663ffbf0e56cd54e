/* tests/data/test_dataset_h5.c — HDF5 datasets: round trips in both layouts,
 * compression, crash-safe writes and read errors. */
#include "braggflow/data.h"
#include "test.h"

#include <dirent.h>
#include <hdf5.h>
#include <sys/stat.h>

enum { N = 5, L = 7 };

/* A small dataset: cells from the three built-in classes, distinct values everywhere. */
static void make_dataset(bf_dataset *d)
{
    memset(d, 0, sizeof *d);
    d->n = N;
    d->length = L;
    d->patterns = malloc(N * L * sizeof *d->patterns);
    d->x = malloc(L * sizeof *d->x);
    d->cells = malloc(N * 6 * sizeof *d->cells);
    d->labels = malloc(N * sizeof *d->labels);
    for (int j = 0; j < L; j++)
        d->x[j] = 1000.0 + 1.5 * j + 1e-7 * j * j;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < L; j++)
            d->patterns[i * L + j] = (float)(i * 10.0 + j * 0.1 + 1e-3);
    const double cells[N][6] = {{4.0, 4.0, 4.0, 90, 90, 90},
                                {3.7, 3.7, 3.7, 60.5, 60.5, 60.5},
                                {3.8, 3.8, 4.1, 90, 90, 90},
                                {4.2, 4.2, 4.2, 90, 90, 90},
                                {3.6, 3.6, 3.9, 90, 90, 90}};
    const int32_t labels[N] = {BF_CLASS_CUBIC, BF_CLASS_TRIGONAL, BF_CLASS_TETRAGONAL,
                               BF_CLASS_CUBIC, BF_CLASS_TETRAGONAL};
    memcpy(d->cells, cells, sizeof cells);
    memcpy(d->labels, labels, sizeof labels);
    d->n_classes = 3;
    const char *names[3] = {"cubic", "trigonal", "tetragonal"};
    const int32_t class_labels[3] = {BF_CLASS_CUBIC, BF_CLASS_TRIGONAL, BF_CLASS_TETRAGONAL};
    for (int k = 0; k < 3; k++) {
        snprintf(d->class_names[k], sizeof d->class_names[k], "%s", names[k]);
        d->class_labels[k] = class_labels[k];
        bf_sha256_hex(names[k], strlen(names[k]), d->cif_sha256[k]);
    }
    d->seed = 0xfedcba9876543210ull;
    snprintf(d->sampler, sizeof d->sampler, "random");
    bf_sha256_hex("instprm", 7, d->instprm_sha256);
    snprintf(d->config_text, sizeof d->config_text, "[run]\nseed = 1 ; \xc3\xa5ngstr\xc3\xb6m\n");
}

static int same_provenance(const bf_dataset *a, const bf_dataset *b)
{
    if (a->n_classes != b->n_classes || a->seed != b->seed || strcmp(a->sampler, b->sampler) ||
        strcmp(a->instprm_sha256, b->instprm_sha256) || strcmp(a->config_text, b->config_text))
        return 0;
    for (int k = 0; k < a->n_classes; k++)
        if (strcmp(a->class_names[k], b->class_names[k]) ||
            a->class_labels[k] != b->class_labels[k] || strcmp(a->cif_sha256[k], b->cif_sha256[k]))
            return 0;
    return 1;
}

static void tmp_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", bf_test_tmp_dir(), name);
}

BF_TEST(test_h5_braggflow_layout_round_trips_exactly)
{
    bf_dataset d, r;
    make_dataset(&d);
    char path[4200];
    tmp_path(path, sizeof path, "bf.h5");
    bf_error err = {0};
    CHECK_MSG(bf_dataset_write_h5(&d, path, BF_LAYOUT_BRAGGFLOW, &err) == BF_OK, "%s", err.msg);
    CHECK_MSG(bf_dataset_read_h5(path, &r, &err) == BF_OK, "%s", err.msg);
    CHECK(r.n == N && r.length == L);
    CHECK(memcmp(r.patterns, d.patterns, sizeof(float) * N * L) == 0);
    CHECK(memcmp(r.x, d.x, sizeof(double) * L) == 0);
    CHECK(memcmp(r.cells, d.cells, sizeof(double) * N * 6) == 0);
    CHECK(memcmp(r.labels, d.labels, sizeof(int32_t) * N) == 0);
    CHECK(same_provenance(&d, &r));
    bf_dataset_free(&d);
    bf_dataset_free(&r);
    CHECK(r.patterns == NULL && r.n == 0);
}

BF_TEST(test_h5_seed_layout_round_trips_patterns_and_cells_of_builtin_classes)
{
    bf_dataset d, r;
    make_dataset(&d);
    char path[4200];
    tmp_path(path, sizeof path, "seed.h5");
    bf_error err = {0};
    CHECK_MSG(bf_dataset_write_h5(&d, path, BF_LAYOUT_SEED, &err) == BF_OK, "%s", err.msg);
    CHECK_MSG(bf_dataset_read_h5(path, &r, &err) == BF_OK, "%s", err.msg);
    CHECK(r.n == N && r.length == L);
    CHECK(memcmp(r.patterns, d.patterns, sizeof(float) * N * L) == 0);
    CHECK(memcmp(r.x, d.x, sizeof(double) * L) == 0);
    CHECK(memcmp(r.cells, d.cells, sizeof(double) * N * 6) == 0);
    CHECK(memcmp(r.labels, d.labels, sizeof(int32_t) * N) == 0);
    CHECK(same_provenance(&d, &r));

    /* The seed workflow's shapes: histograms (N, 2, L) with TOF then intensity. */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(f >= 0);
    static double h[N][2][L], p[N][3];
    hid_t ds = H5Dopen2(f, "histograms", H5P_DEFAULT);
    CHECK(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, h) >= 0);
    H5Dclose(ds);
    ds = H5Dopen2(f, "parameters", H5P_DEFAULT);
    CHECK(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, p) >= 0);
    H5Dclose(ds);
    H5Fclose(f);
    CHECK(h[3][0][4] == d.x[4] && h[3][1][4] == (double)d.patterns[3 * L + 4]);
    CHECK(p[2][0] == 3.8 && p[2][1] == 4.1 && p[2][2] == 90); /* tetragonal: a, c, 90 */
    CHECK(p[1][0] == 3.7 && p[1][1] == 3.7 && p[1][2] == 60.5); /* trigonal: a, a, alpha */
    bf_dataset_free(&d);
    bf_dataset_free(&r);
}

BF_TEST(test_h5_patterns_are_chunked_by_rows_with_shuffle_and_deflate)
{
    bf_dataset d;
    make_dataset(&d);
    char path[4200];
    tmp_path(path, sizeof path, "chunks.h5");
    bf_error err = {0};
    CHECK(bf_dataset_write_h5(&d, path, BF_LAYOUT_BRAGGFLOW, &err) == BF_OK);
    bf_dataset_free(&d);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "patterns", H5P_DEFAULT);
    hid_t dcpl = H5Dget_create_plist(ds);
    hsize_t chunk[2] = {0, 0};
    CHECK(H5Pget_layout(dcpl) == H5D_CHUNKED);
    CHECK(H5Pget_chunk(dcpl, 2, chunk) == 2 && chunk[1] == L && chunk[0] >= 1);
    int nf = H5Pget_nfilters(dcpl);
    int shuffle = 0, deflate = 0;
    for (int i = 0; i < nf; i++) {
        unsigned flags, cd[4];
        size_t ncd = 4;
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, 0, NULL, NULL);
        shuffle |= id == H5Z_FILTER_SHUFFLE;
        deflate |= id == H5Z_FILTER_DEFLATE;
    }
    H5Pclose(dcpl);
    H5Dclose(ds);
    H5Fclose(f);
    CHECK(shuffle);
    CHECK(deflate || H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0);
}

static int dir_has_temp_files(const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return 0;
    int found = 0;
    for (struct dirent *e; (e = readdir(dp));)
        found |= strstr(e->d_name, ".tmp.") != NULL;
    closedir(dp);
    return found;
}

BF_TEST(test_h5_write_to_an_unwritable_path_fails_and_leaves_no_file)
{
    bf_dataset d;
    make_dataset(&d);
    bf_error err = {0};
    CHECK(bf_dataset_write_h5(&d, "/nonexistent-dir/x.h5", BF_LAYOUT_BRAGGFLOW, &err) == BF_ERR_IO);
    CHECK_MSG(strstr(err.msg, "/nonexistent-dir/x.h5") != NULL, "%s", err.msg);
    struct stat sb;
    CHECK(stat("/nonexistent-dir/x.h5", &sb) != 0);

    /* The rename fails (the target is a folder): the temporary file goes too. */
    char dir[4200], target[4300];
    tmp_path(dir, sizeof dir, "unwritable");
    mkdir(dir, 0755);
    snprintf(target, sizeof target, "%s/out.h5", dir);
    mkdir(target, 0755);
    bf_error err2 = {0};
    CHECK(bf_dataset_write_h5(&d, target, BF_LAYOUT_SEED, &err2) == BF_ERR_IO);
    CHECK_MSG(strstr(err2.msg, target) != NULL, "%s", err2.msg);
    CHECK(!dir_has_temp_files(dir));
    CHECK(stat(target, &sb) == 0 && S_ISDIR(sb.st_mode));
    bf_dataset_free(&d);
}

BF_TEST(test_h5_overwrite_replaces_the_previous_file)
{
    bf_dataset d, r;
    make_dataset(&d);
    char path[4200];
    tmp_path(path, sizeof path, "over.h5");
    bf_error err = {0};
    CHECK(bf_dataset_write_h5(&d, path, BF_LAYOUT_SEED, &err) == BF_OK);
    d.seed = 5;
    CHECK(bf_dataset_write_h5(&d, path, BF_LAYOUT_BRAGGFLOW, &err) == BF_OK);
    CHECK(bf_dataset_read_h5(path, &r, &err) == BF_OK);
    CHECK(r.seed == 5);
    bf_dataset_free(&r);
    bf_dataset_free(&d);
}

/* A file as the seed workflow wrote it: three datasets, no attributes. */
static void write_bare_seed_file(const char *path)
{
    const int32_t labels[3] = {2, 0, 2};
    double hist[3][2][4] = {{{1, 2, 3, 4}, {5, 6, 7, 8}},
                            {{1, 2, 3, 4}, {0, 1, 0, 1}},
                            {{1, 2, 3, 4}, {9, 9, 9, 9}}};
    double params[3][3] = {{4, 4, 90}, {3.6, 3.6, 70}, {4.4, 4.4, 90}};
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t hd[3] = {3, 2, 4}, pd[2] = {3, 3}, ld[1] = {3};
    hid_t s = H5Screate_simple(3, hd, NULL);
    hid_t ds = H5Dcreate2(f, "histograms", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, hist);
    H5Dclose(ds);
    H5Sclose(s);
    s = H5Screate_simple(2, pd, NULL);
    ds = H5Dcreate2(f, "parameters", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, params);
    H5Dclose(ds);
    H5Sclose(s);
    s = H5Screate_simple(1, ld, NULL);
    ds = H5Dcreate2(f, "label", H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels);
    H5Dclose(ds);
    H5Sclose(s);
    H5Fclose(f);
}

BF_TEST(test_h5_reads_a_bare_seed_file_and_names_classes_by_label)
{
    char path[4200];
    tmp_path(path, sizeof path, "bare.h5");
    write_bare_seed_file(path);
    bf_dataset r;
    bf_error err = {0};
    CHECK_MSG(bf_dataset_read_h5(path, &r, &err) == BF_OK, "%s", err.msg);
    CHECK(r.n == 3 && r.length == 4);
    CHECK(r.x[3] == 4 && r.patterns[0 * 4 + 1] == 6 && r.patterns[2 * 4 + 3] == 9);
    CHECK(r.cells[1 * 6 + 0] == 3.6 && r.cells[1 * 6 + 2] == 3.6 && r.cells[1 * 6 + 5] == 70);
    CHECK(r.labels[0] == 2 && r.labels[1] == 0);
    CHECK(r.n_classes == 2);
    CHECK(strcmp(r.class_names[0], "trigonal") == 0 && r.class_labels[0] == 0);
    CHECK(strcmp(r.class_names[1], "cubic") == 0 && r.class_labels[1] == 2);
    CHECK(r.seed == 0 && r.sampler[0] == 0 && r.config_text[0] == 0);
    bf_dataset_free(&r);
}

BF_TEST(test_h5_read_errors_name_the_file_and_dataset)
{
    bf_dataset r;
    bf_error err = {0};
    char path[4200];
    tmp_path(path, sizeof path, "missing.h5");
    CHECK(bf_dataset_read_h5(path, &r, &err) == BF_ERR_IO);
    CHECK_MSG(strstr(err.msg, "missing.h5") != NULL, "%s", err.msg);

    bf_error err2 = {0};
    tmp_path(path, sizeof path, "text.h5");
    FILE *fp = fopen(path, "w");
    fputs("not hdf5\n", fp);
    fclose(fp);
    CHECK(bf_dataset_read_h5(path, &r, &err2) == BF_ERR_PARSE);
    CHECK_MSG(strstr(err2.msg, "text.h5") && strstr(err2.msg, "HDF5"), "%s", err2.msg);

    /* A braggflow file whose tof_us does not match the patterns. */
    bf_error err3 = {0};
    tmp_path(path, sizeof path, "shape.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t pd[2] = {2, 3}, td[1] = {4};
    float pat[6] = {0};
    double tof[4] = {0};
    hid_t s = H5Screate_simple(2, pd, NULL);
    hid_t ds = H5Dcreate2(f, "patterns", H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, pat);
    H5Dclose(ds);
    H5Sclose(s);
    s = H5Screate_simple(1, td, NULL);
    ds = H5Dcreate2(f, "tof_us", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, tof);
    H5Dclose(ds);
    H5Sclose(s);
    H5Fclose(f);
    CHECK(bf_dataset_read_h5(path, &r, &err3) == BF_ERR_PARSE);
    CHECK_MSG(strstr(err3.msg, "shape.h5: dataset 'tof_us'") != NULL, "%s", err3.msg);
    CHECK(r.patterns == NULL); /* nothing half-filled is handed back */

    bf_error err4 = {0};
    tmp_path(path, sizeof path, "empty.h5");
    f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
    CHECK(bf_dataset_read_h5(path, &r, &err4) == BF_ERR_PARSE);
    CHECK_MSG(strstr(err4.msg, "patterns") && strstr(err4.msg, "histograms"), "%s", err4.msg);
}

/* Rows [first, first + count) of the whole read, byte for byte, with its tof_us and
 * attributes. */
static int is_slice(const bf_dataset *part, const bf_dataset *whole, long first, long count)
{
    size_t Lz = (size_t)whole->length, f = (size_t)first, c = (size_t)count;
    return part->n == count && part->length == whole->length &&
           !memcmp(part->patterns, whole->patterns + f * Lz, c * Lz * sizeof(float)) &&
           !memcmp(part->cells, whole->cells + f * 6, c * 6 * sizeof(double)) &&
           !memcmp(part->labels, whole->labels + f, c * sizeof(int32_t)) &&
           !memcmp(part->x, whole->x, Lz * sizeof(double)) &&
           same_provenance(part, whole);
}

BF_TEST(test_h5_row_ranges_are_the_slices_of_the_whole_read_in_both_layouts)
{
    bf_dataset d;
    make_dataset(&d);
    bf_error err = {0};
    const bf_layout layouts[2] = {BF_LAYOUT_BRAGGFLOW, BF_LAYOUT_SEED};
    for (int k = 0; k < 2; k++) {
        char path[4200];
        tmp_path(path, sizeof path, k ? "rows_seed.h5" : "rows_bf.h5");
        CHECK_MSG(bf_dataset_write_h5(&d, path, layouts[k], &err) == BF_OK, "%s", err.msg);
        bf_dataset whole;
        long n = -1;
        CHECK_MSG(bf_dataset_h5_count(path, &n, &err) == BF_OK && n == N, "%s", err.msg);
        CHECK_MSG(bf_dataset_read_h5(path, &whole, &err) == BF_OK, "%s", err.msg);
        const long ranges[][2] = {{0, N}, {0, 2}, {2, 3}, {4, 1}, {5, 0}};
        for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
            bf_dataset part;
            CHECK_MSG(bf_dataset_read_h5_rows(path, ranges[r][0], ranges[r][1], &part, &err) ==
                          BF_OK, "%s", err.msg);
            CHECK_MSG(is_slice(&part, &whole, ranges[r][0], ranges[r][1]), "layout %d rows "
                      "%ld+%ld", k, ranges[r][0], ranges[r][1]);
            bf_dataset_free(&part);
        }
        bf_dataset_free(&whole);
    }
    bf_dataset_free(&d);
}

BF_TEST(test_h5_a_shard_of_a_bare_seed_file_names_the_whole_files_classes)
{
    char path[4200];
    tmp_path(path, sizeof path, "bare_rows.h5");
    write_bare_seed_file(path);
    bf_dataset part; /* row 1 alone holds label 0: the classes come from every row */
    bf_error err = {0};
    CHECK_MSG(bf_dataset_read_h5_rows(path, 2, 1, &part, &err) == BF_OK, "%s", err.msg);
    CHECK(part.n == 1 && part.labels[0] == 2 && part.x[3] == 4 && part.patterns[0] == 9);
    CHECK(part.n_classes == 2 && part.class_labels[0] == 0 && part.class_labels[1] == 2);
    bf_dataset_free(&part);
}

BF_TEST(test_h5_rows_beyond_the_file_are_a_range_error_naming_it)
{
    bf_dataset d, r;
    make_dataset(&d);
    char path[4200];
    tmp_path(path, sizeof path, "rows_range.h5");
    bf_error err = {0};
    CHECK_MSG(bf_dataset_write_h5(&d, path, BF_LAYOUT_BRAGGFLOW, &err) == BF_OK, "%s", err.msg);
    const long bad[][2] = {{3, 3}, {N + 1, 0}, {-1, 2}, {0, -1}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        bf_error e = {0};
        CHECK(bf_dataset_read_h5_rows(path, bad[k][0], bad[k][1], &r, &e) == BF_ERR_RANGE);
        CHECK_MSG(strstr(e.msg, "rows_range.h5") != NULL, "%s", e.msg);
        CHECK(r.patterns == NULL && r.n == 0);
    }
    bf_error e = {0};
    long n = 7;
    tmp_path(path, sizeof path, "rows_missing.h5");
    CHECK(bf_dataset_h5_count(path, &n, &e) == BF_ERR_IO && n == 0);
    CHECK_MSG(strstr(e.msg, "rows_missing.h5") != NULL, "%s", e.msg);
    bf_dataset_free(&d);
}
