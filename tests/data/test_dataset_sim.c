/* tests/data/test_dataset_sim.c — end-to-end dataset simulation from a
 * config: the same dataset for any thread count, labels and provenance. */
#include "braggflow/data.h"
#include "test.h"

/* The config names files relative to examples/, where it pretends to live. */
static bf_status parse_example_config(const char *text, bf_sample_config *cfg, bf_error *err)
{
    char name[4200];
    snprintf(name, sizeof name, "%s/examples/test-inline.ini", bf_test_source_dir());
    return bf_sample_config_parse(text, name, cfg, err);
}

static const char *small_ini = "[run]\n"
                               "seed = 11\n"
                               "[instrument]\n"
                               "instprm = instrument/nomad-like-bank4.instprm\n"
                               "[class.cubic]\n"
                               "cif = cif/NaCl.cif\n"
                               "count = 3\n"
                               "a = 5.5 5.7\n";

BF_TEST(test_simulate_is_identical_for_one_and_two_threads)
{
    static bf_sample_config cfg;
    bf_error err = {0};
    CHECK_MSG(parse_example_config(small_ini, &cfg, &err) == BF_OK, "%s", err.msg);
    bf_dataset one, two;
    CHECK_MSG(bf_dataset_simulate(&cfg, 1, &one, &err) == BF_OK, "%s", err.msg);
    CHECK_MSG(bf_dataset_simulate(&cfg, 2, &two, &err) == BF_OK, "%s", err.msg);
    CHECK(one.n == 3 && two.n == 3 && one.length > 100 && one.length == two.length);
    CHECK(memcmp(one.patterns, two.patterns, sizeof(float) * 3 * (size_t)one.length) == 0);
    CHECK(memcmp(one.cells, two.cells, sizeof(double) * 3 * 6) == 0);

    double peak = 0;
    for (long i = 0; i < one.n; i++) {
        const double *c = one.cells + 6 * i;
        CHECK(c[0] >= 5.5 && c[0] <= 5.7 && c[1] == c[0] && c[2] == c[0] && c[3] == 90);
        CHECK(one.labels[i] == BF_CLASS_CUBIC);
        for (int j = 0; j < one.length; j++)
            peak = fmax(peak, one.patterns[i * one.length + j]);
    }
    CHECK(peak > 0);
    CHECK(one.x[0] > 1000 && one.x[one.length - 1] < 19000);
    CHECK(one.x[1] > one.x[0]);

    CHECK(one.seed == 11 && strcmp(one.sampler, "random") == 0);
    CHECK(one.n_classes == 1 && strcmp(one.class_names[0], "cubic") == 0);
    CHECK(one.class_labels[0] == BF_CLASS_CUBIC);
    CHECK(strlen(one.instprm_sha256) == 64 && strlen(one.cif_sha256[0]) == 64);
    CHECK(strcmp(one.config_text, small_ini) == 0);

    /* The cells are the random sampler's (stream i for sample i). */
    bf_cell cells[3];
    CHECK(bf_sample_random(&cfg.classes[0], 3, 11, 0, cells, &err) == BF_OK);
    CHECK(one.cells[6 * 2] == cells[2].a);
    bf_dataset_free(&one);
    bf_dataset_free(&two);
}

BF_TEST(test_simulate_error_names_the_class)
{
    static bf_sample_config cfg;
    bf_error err = {0};
    const char *text = "[instrument]\ninstprm = instrument/nomad-like-bank4.instprm\n"
                       "[class.cubic]\ncif = cif/no-such.cif\ncount = 1\n";
    CHECK_MSG(parse_example_config(text, &cfg, &err) == BF_OK, "%s", err.msg);
    bf_dataset d;
    CHECK(bf_dataset_simulate(&cfg, 1, &d, &err) != BF_OK);
    CHECK_MSG(strstr(err.msg, "cubic") && strstr(err.msg, "no-such.cif"), "%s", err.msg);
    CHECK(d.patterns == NULL && d.n == 0);
}

BF_TEST(test_simulate_reports_the_lowest_failing_sample_whatever_the_threads)
{
    /* NaCl cells this small have no reflection in the TOF window: the cells
     * below ~0.7 A fail, the others simulate. */
    static bf_sample_config cfg;
    bf_error err = {0};
    const char *text = "[run]\nseed = 3\n"
                       "[instrument]\ninstprm = instrument/nomad-like-bank4.instprm\n"
                       "[class.cubic]\ncif = cif/NaCl.cif\ncount = 24\na = 0.3 1.5\n";
    CHECK_MSG(parse_example_config(text, &cfg, &err) == BF_OK, "%s", err.msg);
    bf_dataset d;
    bf_error e1 = {0}, e2 = {0};
    bf_status s1 = bf_dataset_simulate(&cfg, 1, &d, &e1);
    bf_status s2 = bf_dataset_simulate(&cfg, 2, &d, &e2);
    CHECK(s1 != BF_OK && s1 == s2);
    CHECK_MSG(strcmp(e1.msg, e2.msg) == 0, "%s\n  vs %s", e1.msg, e2.msg);
    CHECK_MSG(strstr(e1.msg, "class cubic, sample ") && strstr(e1.msg, "cell a="), "%s", e1.msg);
    /* It is the first sample whose cell is that small. */
    bf_cell cells[24];
    CHECK(bf_sample_random(&cfg.classes[0], 24, 3, 0, cells, &err) == BF_OK);
    long first = strtol(strstr(e1.msg, "sample ") + 7, NULL, 10);
    CHECK(first >= 0 && first < 24);
    CHECK(cells[first].a < 0.8);
    for (long i = 0; i < first; i++)
        CHECK(cells[i].a > 0.6);
    CHECK(d.patterns == NULL);
}
