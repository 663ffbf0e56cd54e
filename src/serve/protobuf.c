/* serve/protobuf.c — the few protocol-buffer encodings the ONNX export needs
 * (serve_internal.h). It writes and never parses, so it needs no fuzz target; the
 * unit test compares its bytes with hand-encoded examples and ONNX Runtime reads the
 * whole files it builds (tests/serve). */
#include "serve/serve_internal.h"

#include <string.h>

/* v in base-128 groups, low first, the high bit set on all but the last: 1..10 bytes. */
static size_t varint_bytes(uint64_t v, uint8_t out[10])
{
    size_t n = 0;
    do {
        out[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        out[n++] |= v ? 0x80 : 0;
    } while (v);
    return n;
}

void bf_pb_varint(bf_buf *b, uint64_t v)
{
    uint8_t out[10];
    bf_buf_append(b, out, varint_bytes(v, out));
}

void bf_pb_tag(bf_buf *b, int field, int wire_type)
{
    bf_pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire_type);
}

void bf_pb_int(bf_buf *b, int field, int64_t v)
{
    bf_pb_tag(b, field, BF_PB_VARINT);
    bf_pb_varint(b, (uint64_t)v); /* two's complement for negatives */
}

void bf_pb_float(bf_buf *b, int field, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    bf_pb_tag(b, field, BF_PB_I32);
    bf_buf_append(b, le, sizeof le);
}

void bf_pb_bytes(bf_buf *b, int field, const void *bytes, size_t n)
{
    bf_pb_tag(b, field, BF_PB_LEN);
    bf_pb_varint(b, n);
    bf_buf_append(b, bytes, n);
}

void bf_pb_string(bf_buf *b, int field, const char *s)
{
    bf_pb_bytes(b, field, s, strlen(s));
}

void bf_pb_packed_int64(bf_buf *b, int field, const int64_t *v, size_t n)
{
    size_t mark = bf_pb_begin(b, field);
    for (size_t i = 0; i < n; i++)
        bf_pb_varint(b, (uint64_t)v[i]);
    bf_pb_end(b, mark);
}

size_t bf_pb_begin(bf_buf *b, int field)
{
    bf_pb_tag(b, field, BF_PB_LEN);
    return b->len;
}

void bf_pb_end(bf_buf *b, size_t mark)
{
    if (b->failed)
        return;
    uint8_t v[10];
    bf_buf_insert(b, mark, v, varint_bytes(b->len - mark, v));
}
