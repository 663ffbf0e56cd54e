/* tests/data/test_pattern_csv.c — one pattern from CSV (`predict --csv`). */
#include <string.h>

#include "braggflow/data.h"
#include "test.h"

BF_TEST(csv_pattern_reads_the_last_column_after_headers_and_comments)
{
    bf_dataset d;
    bf_error err = {0};
    const char *text = "tof_us,intensity\n# a comment\n1000,1.5\n\n1001, 2.5 # trailing\r\n1002,0\n";
    CHECK_MSG(bf_pattern_csv_parse(text, "p.csv", &d, &err) == BF_OK, "%s", err.msg);
    CHECK(d.n == 1 && d.length == 3);
    CHECK_NEAR(d.patterns[0], 1.5, 0);
    CHECK_NEAR(d.patterns[1], 2.5, 0);
    bf_dataset_free(&d);
    CHECK(bf_pattern_csv_parse("3\n4\n5", "q.csv", &d, &err) == BF_OK && d.length == 3);
    bf_dataset_free(&d);
}

/* Each bad text fails with `want` in the message (line numbers count blank lines). */
static int rejects(const char *text, const char *want)
{
    bf_dataset d;
    bf_error err = {0};
    if (bf_pattern_csv_parse(text, "p.csv", &d, &err) == BF_OK) {
        bf_dataset_free(&d);
        return 0;
    }
    if (!strstr(err.msg, want))
        fprintf(stderr, "  '%s' lacks '%s'\n", err.msg, want);
    return strstr(err.msg, want) != NULL;
}

BF_TEST(csv_pattern_errors_name_the_line)
{
    CHECK(rejects("1,2\n\n\n3,nan\n", "p.csv:4: intensity is not finite"));
    CHECK(rejects("1,2\n3\n", "p.csv:2: 1 columns, earlier lines have 2"));
    CHECK(rejects("1,2\n3,4,5\n", "p.csv:2: expected 1 or 2 numbers"));
    CHECK(rejects("1\nabc\n", "p.csv:2: expected 1 or 2 numbers"));
    CHECK(rejects("header only\n", "p.csv: no data lines"));
    CHECK(rejects("", "no data lines"));
}
