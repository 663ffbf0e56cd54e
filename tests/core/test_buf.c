/* tests/core/test_buf.c — the growable byte buffer: appends, printf, insertion, and an
 * allocation failure that drops later appends and is reported once by bf_buf_check. */
#include "braggflow/core.h"
#include "test.h"

#include <stdint.h>

BF_TEST(buf_appends_text_and_bytes_and_stays_nul_terminated)
{
    bf_buf b = {0};
    CHECK(b.len == 0 && b.data == NULL);
    bf_buf_puts(&b, "ab");
    bf_buf_putc(&b, 'c');
    bf_buf_append(&b, "\0d", 2); /* binary: an embedded NUL counts */
    bf_buf_printf(&b, "%d-%s", 42, "x");
    CHECK(b.len == 3 + 2 + 4);
    CHECK(memcmp(b.data, "abc\0d42-x", 9) == 0);
    CHECK(b.data[b.len] == 0);
    CHECK(bf_buf_check(&b, "t", NULL) == BF_OK);
    bf_buf_free(&b);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0 && !b.failed);
}

BF_TEST(buf_grows_past_its_first_allocation_keeping_every_byte)
{
    bf_buf b = {0};
    for (int i = 0; i < 100000; i++)
        bf_buf_putc(&b, (char)('a' + i % 26));
    bf_buf_printf(&b, "%s", "");          /* an empty format appends nothing */
    CHECK(b.len == 100000 && b.cap > b.len && b.data[b.len] == 0);
    long bad = 0;
    for (int i = 0; i < 100000; i++)
        bad += b.data[i] != (char)('a' + i % 26);
    CHECK(bad == 0);
    bf_buf_free(&b);
}

BF_TEST(buf_insert_moves_the_tail_and_keeps_the_nul)
{
    bf_buf b = {0};
    bf_buf_puts(&b, "hello world");
    bf_buf_insert(&b, 5, ",", 1);
    bf_buf_insert(&b, 0, ">", 1);
    bf_buf_insert(&b, b.len, "!", 1);
    CHECK(strcmp(b.data, ">hello, world!") == 0);
    CHECK(b.len == strlen(">hello, world!"));
    bf_buf_insert(&b, b.len + 1, "?", 1); /* past the end: a bug, flagged not ignored */
    CHECK(b.failed);
    bf_buf_free(&b);
}

BF_TEST(buf_failed_allocation_drops_later_appends_and_check_reports_it)
{
    bf_buf b = {0};
    bf_buf_puts(&b, "kept");
    CHECK(bf_buf_reserve(&b, SIZE_MAX - 2) == 0); /* cannot be had: overflow guard */
    CHECK(b.failed);
    bf_buf_puts(&b, "dropped");
    bf_buf_printf(&b, "%d", 7);
    CHECK(b.len == 4 && strcmp(b.data, "kept") == 0);
    bf_error err = {0};
    CHECK(bf_buf_check(&b, "out.onnx", &err) == BF_ERR_NOMEM);
    CHECK(strstr(err.msg, "out.onnx: out of memory") != NULL);
    bf_buf_free(&b);
    CHECK(!b.failed);
}
