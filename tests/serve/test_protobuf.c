/* tests/serve/test_protobuf.c — the protobuf encoder byte for byte against hand-encoded
 * messages: the examples of https://protobuf.dev/programming-guides/encoding/ and pieces
 * of an ONNX model (field numbers from onnx/onnx.proto3, docs/serve.md). */
#include "serve/serve_internal.h"
#include "test.h"

/* b holds exactly the n bytes want; on a mismatch the test prints both. */
static int same_bytes(const bf_buf *b, const uint8_t *want, size_t n)
{
    if (!b->failed && b->len == n && memcmp(b->data, want, n) == 0)
        return 1;
    fprintf(stderr, "  got  %zu bytes:", b->len);
    for (size_t i = 0; i < b->len; i++)
        fprintf(stderr, " %02x", (uint8_t)b->data[i]);
    fprintf(stderr, "\n  want %zu bytes:", n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %02x", want[i]);
    fputc('\n', stderr);
    return 0;
}
#define CHECK_BYTES(b, ...)                                                              \
    do {                                                                                 \
        static const uint8_t want_[] = {__VA_ARGS__};                                    \
        CHECK(same_bytes(&(b), want_, sizeof want_));                                    \
    } while (0)

BF_TEST(varints_are_base_128_low_group_first)
{
    bf_buf b = {0};
    bf_pb_varint(&b, 0);
    bf_pb_varint(&b, 1);
    bf_pb_varint(&b, 127);
    bf_pb_varint(&b, 128);
    bf_pb_varint(&b, 300); /* the encoding guide's example: ac 02 */
    CHECK_BYTES(b, 0x00, 0x01, 0x7f, 0x80, 0x01, 0xac, 0x02);
    b.len = 0;
    bf_pb_varint(&b, UINT64_MAX);
    CHECK_BYTES(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
    bf_buf_free(&b);
}

BF_TEST(int_fields_are_tag_then_varint_and_negatives_take_ten_bytes)
{
    bf_buf b = {0};
    bf_pb_int(&b, 1, 150); /* guide: Test1 { a = 150 } = 08 96 01 */
    CHECK_BYTES(b, 0x08, 0x96, 0x01);
    b.len = 0;
    bf_pb_int(&b, 3, -1); /* AttributeProto.i = -1 (Softmax axis): two's complement */
    CHECK_BYTES(b, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
    b.len = 0;
    bf_pb_int(&b, 20, 2); /* AttributeProto.type = INT: field 20 needs a two-byte tag */
    CHECK_BYTES(b, 0xa0, 0x01, 0x02);
    bf_buf_free(&b);
}

BF_TEST(strings_floats_and_bytes_are_length_delimited_or_fixed)
{
    bf_buf b = {0};
    bf_pb_string(&b, 2, "testing"); /* guide: Test2 { b = "testing" } */
    CHECK_BYTES(b, 0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67);
    b.len = 0;
    bf_pb_float(&b, 2, 1.0f); /* AttributeProto.f = 1: wire type 5, little-endian */
    bf_pb_float(&b, 2, 0.01f); /* LeakyReLU's alpha: 0x3c23d70a */
    CHECK_BYTES(b, 0x15, 0x00, 0x00, 0x80, 0x3f, 0x15, 0x0a, 0xd7, 0x23, 0x3c);
    b.len = 0;
    bf_pb_bytes(&b, 9, "\x01\x00", 2); /* TensorProto.raw_data with a zero byte */
    bf_pb_string(&b, 1, "");
    CHECK_BYTES(b, 0x4a, 0x02, 0x01, 0x00, 0x0a, 0x00);
    bf_buf_free(&b);
}

BF_TEST(packed_repeated_int64_is_one_length_delimited_field)
{
    bf_buf b = {0};
    const int64_t v[] = {3, 270, 86942}; /* guide: packed 4 = 22 06 03 8e 02 9e a7 05 */
    bf_pb_packed_int64(&b, 4, v, 3);
    CHECK_BYTES(b, 0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05);
    b.len = 0;
    const int64_t dims[] = {0, 32, -1}; /* a Reshape target as TensorProto.dims would be */
    bf_pb_packed_int64(&b, 1, dims, 3);
    CHECK_BYTES(b, 0x0a, 0x0c, 0x00, 0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff, 0x01);
    b.len = 0;
    bf_pb_packed_int64(&b, 8, NULL, 0); /* empty: the field with length 0 */
    CHECK_BYTES(b, 0x42, 0x00);
    bf_buf_free(&b);
}

BF_TEST(nested_messages_get_their_length_inserted_before_them)
{
    bf_buf b = {0};
    size_t m = bf_pb_begin(&b, 3); /* guide: Test3 { c = Test1 { a = 150 } } = 1a 03 08 96 01 */
    bf_pb_int(&b, 1, 150);
    bf_pb_end(&b, m);
    CHECK_BYTES(b, 0x1a, 0x03, 0x08, 0x96, 0x01);

    /* ModelProto.opset_import (8) = OperatorSetIdProto { domain "" (1), version 17 (2) } */
    b.len = 0;
    m = bf_pb_begin(&b, 8);
    bf_pb_string(&b, 1, "");
    bf_pb_int(&b, 2, 17);
    bf_pb_end(&b, m);
    CHECK_BYTES(b, 0x42, 0x04, 0x0a, 0x00, 0x10, 0x11);
    bf_buf_free(&b);
}

BF_TEST(an_onnx_value_info_with_a_dynamic_batch_encodes_as_by_hand)
{
    /* GraphProto.output (12) = ValueInfoProto { name "ploc" (1), type (2) = TypeProto {
     * tensor_type (1) = { elem_type FLOAT (1) = 1, shape (2) = TensorShapeProto {
     * dim (1) { dim_param (2) "N" }, dim (1) { dim_value (1) 2 } } } } } */
    bf_buf b = {0};
    size_t vi = bf_pb_begin(&b, 12);
    bf_pb_string(&b, 1, "ploc");
    size_t type = bf_pb_begin(&b, 2), tensor = bf_pb_begin(&b, 1);
    bf_pb_int(&b, 1, 1);
    size_t shape = bf_pb_begin(&b, 2);
    size_t d = bf_pb_begin(&b, 1);
    bf_pb_string(&b, 2, "N");
    bf_pb_end(&b, d);
    d = bf_pb_begin(&b, 1);
    bf_pb_int(&b, 1, 2);
    bf_pb_end(&b, d);
    bf_pb_end(&b, shape);
    bf_pb_end(&b, tensor);
    bf_pb_end(&b, type);
    bf_pb_end(&b, vi);
    CHECK_BYTES(b, 0x62, 0x17,                                  /* output, 23 bytes */
                0x0a, 0x04, 'p', 'l', 'o', 'c',                 /* name */
                0x12, 0x0f,                                     /* type, 15 */
                0x0a, 0x0d,                                     /* tensor_type, 13 */
                0x08, 0x01,                                     /* elem_type FLOAT */
                0x12, 0x09,                                     /* shape, 9 */
                0x0a, 0x03, 0x12, 0x01, 'N',                    /* dim { dim_param "N" } */
                0x0a, 0x02, 0x08, 0x02);                        /* dim { dim_value 2 } */
    bf_buf_free(&b);
}

BF_TEST(a_message_longer_than_127_bytes_gets_a_two_byte_length)
{
    bf_buf b = {0};
    uint8_t body[200];
    for (int i = 0; i < 200; i++)
        body[i] = (uint8_t)i;
    size_t m = bf_pb_begin(&b, 5); /* GraphProto.initializer */
    bf_pb_bytes(&b, 9, body, sizeof body);  /* 4a c8 01 + 200 bytes = 203 */
    bf_pb_end(&b, m);
    CHECK(b.len == 3 + 203 && !b.failed);
    CHECK((uint8_t)b.data[0] == 0x2a && (uint8_t)b.data[1] == 0xcb && b.data[2] == 0x01);
    CHECK((uint8_t)b.data[3] == 0x4a && (uint8_t)b.data[4] == 0xc8 && b.data[5] == 0x01);
    CHECK(memcmp(b.data + 6, body, sizeof body) == 0);
    bf_buf_free(&b);
}

BF_TEST(an_allocation_failure_shows_at_the_check_and_end_leaves_the_buffer_alone)
{
    bf_buf b = {0};
    size_t m = bf_pb_begin(&b, 7);
    bf_pb_int(&b, 1, 8);
    bf_buf_reserve(&b, SIZE_MAX - 1); /* what an exhausted allocator does to the buffer */
    bf_pb_string(&b, 2, "dropped");
    bf_pb_end(&b, m);
    CHECK(b.failed && b.len == 3);
    bf_error err = {0};
    CHECK(bf_buf_check(&b, "m.onnx", &err) == BF_ERR_NOMEM);
    bf_buf_free(&b);
}
