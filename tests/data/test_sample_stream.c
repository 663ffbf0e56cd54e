/* tests/data/test_sample_stream.c — `sample` streamed to HDF5 block by block
 * (bf_dataset_sample_h5): the file's bytes are the in-memory writer's, whatever
 * the thread count and layout; chunks deflated on threads are HDF5's own bytes;
 * memory stays at a block as the count grows. */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "braggflow/data.h"
#include "test.h"

/* A narrow TOF window (~190 points) keeps many blocks cheap to simulate. */
static void make_config(bf_sample_config *cfg, long count, const char *layout)
{
    char text[1024], name[4200];
    snprintf(text, sizeof text,
             "[run]\nseed = 5\nlayout = %s\n"
             "[instrument]\ninstprm = instrument/nomad-like-bank4.instprm\n"
             "tof_min_ms = 5\ntof_max_ms = 6\ntof_step = 0.0009381\n"
             "[class.cubic]\ncif = cif/NaCl.cif\ncount = %ld\na = 5.5 5.7\n"
             "[class.tetragonal]\ncif = cif/BaTiO3-P4mm.cif\ncount = %ld\na = 3.9 4.1\n"
             "c = 3.9005 4.0995\n",
             layout, count / 2, count - count / 2);
    snprintf(name, sizeof name, "%s/examples/test-inline.ini", bf_test_source_dir());
    bf_error err = {0};
    if (bf_sample_config_parse(text, name, cfg, &err) != BF_OK) {
        fprintf(stderr, "config: %s\n", err.msg);
        exit(1);
    }
}

static int same_bytes(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    for (int ca = 0, cb = 0; same && ca != EOF;) {
        ca = fgetc(fa);
        cb = fgetc(fb);
        same = ca == cb;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

static void tmp_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", bf_test_tmp_dir(), name);
}

/* Streams with 1 and 2 threads, writes the in-memory dataset, compares bytes and
 * reads the file back. count spans several blocks and ends in a partial chunk. */
static void check_layout(int *bf_failed_, const char *layout, long count, long min_blocks)
{
    static bf_sample_config cfg;
    make_config(&cfg, count, layout);
    bf_error err = {0};
    char p1[4200], p2[4200], pm[4200];
    tmp_path(p1, sizeof p1, "stream-t1.h5");
    tmp_path(p2, sizeof p2, "stream-t2.h5");
    tmp_path(pm, sizeof pm, "stream-mem.h5");
    bf_sample_stats s1 = {0}, s2 = {0};
    CHECK_MSG(bf_dataset_sample_h5(&cfg, 1, p1, NULL, &s1, &err) == BF_OK, "%s", err.msg);
    CHECK_MSG(bf_dataset_sample_h5(&cfg, 2, p2, NULL, &s2, &err) == BF_OK, "%s", err.msg);
    CHECK(s1.n == count && s1.length > 100 && s1.block_rows == s2.block_rows);
    CHECK_MSG(s1.n >= min_blocks * s1.block_rows, "%ld patterns, block %ld", s1.n,
              s1.block_rows);
    CHECK(s1.simulate_s > 0 && s1.write_s > 0 && s1.total_s >= s1.simulate_s);
    CHECK_MSG(same_bytes(p1, p2), "%s: --threads 1 and 2 files differ", layout);

    bf_dataset d, back;
    CHECK_MSG(bf_dataset_simulate(&cfg, 2, &d, &err) == BF_OK, "%s", err.msg);
    CHECK_MSG(bf_dataset_write_h5(&d, pm, cfg.layout, &err) == BF_OK, "%s", err.msg);
    CHECK_MSG(same_bytes(p1, pm), "%s: streamed and in-memory files differ", layout);

    CHECK_MSG(bf_dataset_read_h5(p1, &back, &err) == BF_OK, "%s", err.msg);
    CHECK(back.n == d.n && back.length == d.length && back.n_classes == 2);
    CHECK(memcmp(back.patterns, d.patterns, sizeof(float) * (size_t)d.n * (size_t)d.length) == 0);
    CHECK(memcmp(back.labels, d.labels, sizeof(int32_t) * (size_t)d.n) == 0);
    CHECK(back.seed == 5 && strcmp(back.sampler, "random") == 0);
    CHECK(strcmp(back.cif_sha256[1], d.cif_sha256[1]) == 0);
    bf_dataset_free(&d);
    bf_dataset_free(&back);
    remove(p1);
    remove(p2);
    remove(pm);
}

BF_TEST(test_streamed_braggflow_file_is_the_in_memory_one_for_any_threads)
{
    /* ~190 points: 1,351-row chunks, 10,808-row blocks */
    check_layout(bf_failed_, "braggflow", 23000, 2);
}

BF_TEST(test_streamed_seed_file_is_the_in_memory_one_for_any_threads)
{
    /* float64 (2, L) rows: 338-row chunks, 2,704-row blocks */
    check_layout(bf_failed_, "seed", 6000, 2);
}

BF_TEST(test_threaded_deflate_writes_hdf5s_own_bytes)
{
    static bf_sample_config cfg;
    make_config(&cfg, 3000, "braggflow");
    bf_error err = {0};
    bf_dataset d, back;
    CHECK_MSG(bf_dataset_simulate(&cfg, 2, &d, &err) == BF_OK, "%s", err.msg);
    char pa[4200], pb[4200];
    tmp_path(pa, sizeof pa, "pipeline.h5");
    tmp_path(pb, sizeof pb, "threaded.h5");
    const bf_dataset_compression levels[] = {{0, 0, 0, 0}, {1, 1, 0, 0}, {4, 0, 0, 0}};
    for (int k = 0; k < 3; k++) {
        bf_dataset_compression threaded = levels[k];
        threaded.threaded = 1;
        CHECK_MSG(bf_dataset_write_h5_c(&d, pa, BF_LAYOUT_BRAGGFLOW, &levels[k], 1, &err) == BF_OK,
                  "%s", err.msg);
        CHECK_MSG(bf_dataset_write_h5_c(&d, pb, BF_LAYOUT_BRAGGFLOW, &threaded, 2, &err) == BF_OK,
                  "%s", err.msg);
        CHECK_MSG(same_bytes(pa, pb), "level %d shuffle %d: the files differ",
                  levels[k].deflate_level, levels[k].shuffle);
    }
    /* run-length deflate (the default) is read back exactly, and is smaller than raw */
    bf_dataset_compression rle = {1, 1, 1, 1}, raw = {0, 0, 0, 0};
    CHECK_MSG(bf_dataset_write_h5_c(&d, pa, BF_LAYOUT_BRAGGFLOW, &raw, 2, &err) == BF_OK, "%s",
              err.msg);
    CHECK_MSG(bf_dataset_write_h5_c(&d, pb, BF_LAYOUT_BRAGGFLOW, &rle, 2, &err) == BF_OK, "%s",
              err.msg);
    CHECK_MSG(bf_dataset_read_h5(pb, &back, &err) == BF_OK, "%s", err.msg);
    CHECK(memcmp(back.patterns, d.patterns, sizeof(float) * (size_t)d.n * (size_t)d.length) == 0);
    struct stat sa, sb;
    CHECK(stat(pa, &sa) == 0 && stat(pb, &sb) == 0);
    CHECK_MSG(sb.st_size < sa.st_size * 19 / 20, "%ld bytes, %ld uncompressed", (long)sb.st_size,
              (long)sa.st_size);
    bf_dataset_compression bad = {10, 0, 0, 0};
    CHECK(bf_dataset_write_h5_c(&d, pb, BF_LAYOUT_BRAGGFLOW, &bad, 1, &err) == BF_ERR_INVALID);
    CHECK(strstr(err.msg, "deflate level 10"));
    bf_dataset_free(&d);
    bf_dataset_free(&back);
    remove(pa);
    remove(pb);
}

/* The child of child_peak_rss_kib: a fresh process (libgomp does not survive a
 * fork after its threads started), entered before main when the variable is set. */
__attribute__((constructor)) static void rss_child(void)
{
    const char *count = getenv("BF_TEST_STREAM_COUNT"), *path = getenv("BF_TEST_STREAM_PATH");
    if (!count || !path)
        return;
    static bf_sample_config cfg;
    make_config(&cfg, atol(count), "seed");
    bf_error err = {0};
    _exit(bf_dataset_sample_h5(&cfg, 2, path, NULL, NULL, &err) == BF_OK ? 0 : 1);
}

/* Peak RSS (KiB) of a fresh process that streams `count` patterns. */
static long child_peak_rss_kib(long count, const char *path)
{
    char text[32];
    snprintf(text, sizeof text, "%ld", count);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("BF_TEST_STREAM_COUNT", text, 1);
        setenv("BF_TEST_STREAM_PATH", path, 1);
        execl("/proc/self/exe", "test_sample_stream", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return -1;
    return ru.ru_maxrss;
}

BF_TEST(test_streaming_memory_stays_at_a_block_as_the_count_grows)
{
    /* The seed layout (2,704-row blocks) with ~190 points: 2,704 patterns are one
     * block; 27,040 are ten, 38 MiB more as float32 + float64 rows in memory. */
    char p[4200];
    tmp_path(p, sizeof p, "rss.h5");
    long small = child_peak_rss_kib(2704, p), big = child_peak_rss_kib(27040, p);
    remove(p);
    CHECK(small > 0 && big > 0);
    long in_memory_growth_kib = (27040L - 2704) * 190 * (4 + 16) / 1024;
    fprintf(stderr, "  peak RSS: %ld KiB for one block, %ld KiB for ten (held whole: +%ld KiB)\n",
            small, big, in_memory_growth_kib);
    /* cells and labels (52 bytes a pattern, 1.2 MiB) are held whole */
    CHECK_MSG(big - small < in_memory_growth_kib / 4, "grew %ld KiB", big - small);
}

BF_TEST(test_streamed_patch_file_is_the_in_memory_one_for_any_threads)
{
    /* 11 x 11 patches: 2,166-patch chunks, 17,328-patch blocks; 20,000 is two blocks */
    static bf_peaks_config cfg;
    bf_peaks_config_defaults(&cfg);
    cfg.count = 20000;
    cfg.seed = 3;
    bf_error err = {0};
    char p1[4200], p2[4200], pm[4200];
    tmp_path(p1, sizeof p1, "peaks-t1.h5");
    tmp_path(p2, sizeof p2, "peaks-t2.h5");
    tmp_path(pm, sizeof pm, "peaks-mem.h5");
    long nb1 = -1, nb2 = -1;
    CHECK_MSG(bf_patches_sample_h5(&cfg, 1, p1, &nb1, &err) == BF_OK, "%s", err.msg);
    CHECK_MSG(bf_patches_sample_h5(&cfg, 2, p2, &nb2, &err) == BF_OK, "%s", err.msg);
    CHECK_MSG(same_bytes(p1, p2), "sample-peaks: --threads 1 and 2 files differ");
    bf_patches p, back;
    CHECK_MSG(bf_patches_simulate(&cfg, 2, &p, &err) == BF_OK, "%s", err.msg);
    CHECK_MSG(bf_patches_write_h5(&p, pm, &err) == BF_OK, "%s", err.msg);
    CHECK_MSG(same_bytes(p1, pm), "sample-peaks: streamed and in-memory files differ");
    long nb = 0;
    for (long i = 0; i < p.n; i++)
        nb += p.neighbour[i];
    CHECK(nb1 == nb && nb2 == nb && nb > 0);
    CHECK_MSG(bf_patches_read_h5(p1, &back, &err) == BF_OK, "%s", err.msg);
    CHECK(back.n == 20000 && back.size == 11 && back.neighbour_peak);
    CHECK(memcmp(back.patches, p.patches, sizeof(float) * 121 * 20000) == 0);
    CHECK(memcmp(back.peak, p.peak, sizeof(bf_peak2d) * 20000) == 0);
    bf_patches_free(&p);
    bf_patches_free(&back);
    remove(p1);
    remove(p2);
    remove(pm);
}
