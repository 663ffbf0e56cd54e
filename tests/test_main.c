/* tests/test_main.c — runner for tests/test.h. */
#include "test.h"

#include <sys/stat.h>
#include <unistd.h>

/* The table grows as constructors register tests (a fixed size used to drop the tests
 * past it without a word); one that cannot be registered fails the run. */
static struct bf_test_entry {
    const char *name;
    bf_test_fn fn;
} *tests;
static int n_tests, cap_tests, n_unregistered;

void bf_test_register(const char *name, bf_test_fn fn)
{
    if (n_tests == cap_tests) {
        int cap = cap_tests ? 2 * cap_tests : 256;
        struct bf_test_entry *t = realloc(tests, (size_t)cap * sizeof *t);
        if (t == NULL) {
            fprintf(stderr, "FAIL cannot register test %s: out of memory\n", name);
            n_unregistered++;
            return;
        }
        tests = t;
        cap_tests = cap;
    }
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    n_tests++;
}

const char *bf_test_shared_dir(void)
{
    static char path[4096];
    const char *env = getenv("BF_SHARED_DIR");
    if (env == NULL)
        return NULL;
    struct stat sb;
    snprintf(path, sizeof path, "%s/reference", env);
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return NULL;
    snprintf(path, sizeof path, "%s", env);
    return path;
}

const char *bf_test_source_dir(void)
{
    const char *env = getenv("BF_SOURCE_DIR");
    return env ? env : ".";
}

const char *bf_test_tmp_dir(void)
{
    static char path[4096];
    if (path[0] == 0) {
        const char *base = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/bftest.XXXXXX", base ? base : "/tmp");
        if (mkdtemp(path) == NULL) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return path;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (int i = 0; i < n_tests; i++) {
        if (argc > 1) {
            int wanted = 0;
            for (int a = 1; a < argc; a++)
                wanted |= strstr(tests[i].name, argv[a]) != NULL;
            if (!wanted)
                continue;
        }
        int bad = 0;
        tests[i].fn(&bad);
        printf("%s %s\n", bad ? "FAIL" : "ok  ", tests[i].name);
        fflush(stdout);
        if (bad)
            failed++;
        else
            passed++;
    }
    const char *tmp = bf_test_tmp_dir();
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmp);
    failed += n_unregistered;
    if (argc > 1 && passed + failed == 0) {
        fprintf(stderr, "no test name contains any of the %d given strings\n", argc - 1);
        failed = 1;
    }
    printf("%d passed, %d failed\n", passed, failed);
    free(tests);
    return failed ? 1 : 0;
}
