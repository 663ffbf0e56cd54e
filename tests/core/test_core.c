/* tests/core/test_core.c — RNG reproducibility, SHA-256 vectors, atomic writes, parsing. */
#include "braggflow/core.h"
#include "test.h"

#include <sys/stat.h>
#include <unistd.h>

BF_TEST(test_rng_same_seed_and_stream_gives_same_sequence)
{
    bf_rng a, b, c;
    bf_rng_init(&a, 42, 7);
    bf_rng_init(&b, 42, 7);
    bf_rng_init(&c, 42, 8);
    int differs = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = bf_rng_u64(&a);
        CHECK(x == bf_rng_u64(&b));
        differs |= x != bf_rng_u64(&c);
    }
    CHECK(differs);
}

BF_TEST(test_rng_uniform_and_normal_moments)
{
    bf_rng r;
    bf_rng_init(&r, 1, 0);
    double s = 0, s2 = 0, n1 = 0, n2 = 0;
    const int N = 200000;
    for (int i = 0; i < N; i++) {
        double u = bf_rng_uniform(&r);
        CHECK(u >= 0 && u < 1);
        s += u;
        s2 += u * u;
        double z = bf_rng_normal(&r);
        n1 += z;
        n2 += z * z;
    }
    CHECK_NEAR(s / N, 0.5, 0.005);
    CHECK_NEAR(s2 / N - 0.25, 1.0 / 12.0, 0.002);
    CHECK_NEAR(n1 / N, 0.0, 0.01);
    CHECK_NEAR(n2 / N, 1.0, 0.01);
}

BF_TEST(test_sha256_known_vectors)
{
    char hex[65];
    bf_sha256_hex("", 0, hex);
    CHECK(strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    bf_sha256_hex("abc", 3, hex);
    CHECK(strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    bf_sha256_hex(two_blocks, strlen(two_blocks), hex);
    CHECK(strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
}

BF_TEST(test_atomic_abort_keeps_previous_file_and_commit_replaces_it)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/out.txt", bf_test_tmp_dir());
    bf_error err = {0};
    bf_atomic_file af;
    CHECK(bf_atomic_begin(&af, path, 1, &err) == BF_OK);
    fputs("first\n", af.fp);
    CHECK(bf_atomic_commit(&af, &err) == BF_OK);

    CHECK(bf_atomic_begin(&af, path, 1, &err) == BF_OK);
    fputs("half-written", af.fp);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s", af.tmp_path);
    bf_atomic_abort(&af);
    struct stat sb;
    CHECK(stat(tmp, &sb) != 0); /* temp file removed */

    char *text = NULL;
    CHECK(bf_read_file(path, &text, NULL, &err) == BF_OK);
    CHECK(strcmp(text, "first\n") == 0);
    free(text);
}

BF_TEST(test_atomic_begin_in_missing_folder_fails_with_path)
{
    bf_error err = {0};
    bf_atomic_file af;
    CHECK(bf_atomic_begin(&af, "/nonexistent-dir/x.csv", 1, &err) == BF_ERR_IO);
    CHECK(strstr(err.msg, "/nonexistent-dir/x.csv") != NULL);
}

BF_TEST(test_parse_numbers_reject_trailing_garbage)
{
    double d;
    long l;
    CHECK(bf_parse_double(" 3.5 ", &d) == 0 && d == 3.5);
    CHECK(bf_parse_double("3.5x", &d) != 0);
    CHECK(bf_parse_double("", &d) != 0);
    CHECK(bf_parse_double("nan", &d) != 0);
    CHECK(bf_parse_long("12", &l) == 0 && l == 12);
    CHECK(bf_parse_long("1.5", &l) != 0);
}

BF_TEST(test_path_resolve_is_relative_to_config_folder)
{
    char out[256];
    CHECK(bf_path_resolve("/a/b/run.ini", "x.cif", out, sizeof out, NULL) == BF_OK);
    CHECK(strcmp(out, "/a/b/x.cif") == 0);
    CHECK(bf_path_resolve("/a/b/run.ini", "/abs.cif", out, sizeof out, NULL) == BF_OK);
    CHECK(strcmp(out, "/abs.cif") == 0);
    CHECK(bf_path_resolve("run.ini", "x.cif", out, sizeof out, NULL) == BF_OK);
    CHECK(strcmp(out, "x.cif") == 0);
}

BF_TEST(test_error_keeps_first_message)
{
    bf_error err = {0};
    bf_error_set(&err, BF_ERR_PARSE, "f.cif:3: _cell_length_a: not a number");
    bf_error_set(&err, BF_ERR_IO, "generic");
    CHECK(err.code == BF_ERR_PARSE);
    CHECK(strstr(err.msg, "f.cif:3") != NULL);
}

BF_TEST(json_quote_escapes_quotes_backslashes_and_control_characters)
{
    char q[64];
    CHECK(strcmp(bf_json_quote("a\"b\\c\n\x01", q, sizeof q), "\"a\\\"b\\\\c\\u000a\\u0001\"") == 0);
    CHECK(strcmp(bf_json_quote("", q, sizeof q), "\"\"") == 0);
    /* too long: cut before a character, never inside an escape, still a literal */
    CHECK(strcmp(bf_json_quote("abc\"def", q, 7), "\"abc\"") == 0);
    CHECK(strcmp(bf_json_quote("abcdef", q, 3), "\"\"") == 0);
}

BF_TEST(a_core_names_its_os_cpus_and_a_missing_core_is_an_error)
{
    int cpus[64], all = (int)sysconf(_SC_NPROCESSORS_ONLN);
    char why[256] = "";
    int n = bf_core_os_cpus(0, cpus, 64, why, sizeof why);
    CHECK_MSG(n >= 1, "core 0: %s", why);
    for (int i = 0; i < n; i++)
        CHECK(cpus[i] >= 0 && cpus[i] < all + 64);
    /* every CPU belongs to exactly one core: the cores' CPUs together are all of them */
    int total = 0, k = 0, m;
    while ((m = bf_core_os_cpus(k, cpus, 64, why, sizeof why)) > 0)
        total += m, k++;
    CHECK_MSG(total == all, "%d CPUs over %d cores, %d online", total, k, all);
    CHECK(strstr(why, "requested, the machine has"));
    CHECK(bf_core_os_cpus(-1, cpus, 64, why, sizeof why) == -1);
    CHECK(bf_core_os_cpus(1 << 20, cpus, 64, why, sizeof why) == -1);
    CHECK_MSG(strstr(why, "core 1048576 requested"), "%s", why);
}
