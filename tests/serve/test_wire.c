/* tests/serve/test_wire.c — the request and reply frames: a round trip, and every
 * fault the decoder names. */
#include <stdint.h>

#include "braggflow/serve.h"
#include "test.h"

/* A valid 2-item 3x3 float32 request in buf; returns its length. */
static size_t make_request(uint8_t *buf, uint64_t id)
{
    bf_wire_request rq = {.op = BF_OP_INFER, .model = BF_WIRE_MODEL_BRAGGNN, .id = id,
                          .count = 2, .dtype = BF_DTYPE_F32, .ndims = 2, .dims = {3, 3, 0}};
    bf_wire_encode_request_header(&rq, buf);
    for (int i = 0; i < 18; i++) {
        float v = (float)i;
        memcpy(buf + BF_WIRE_REQUEST_HEADER + 4 * i, &v, 4);
    }
    return BF_WIRE_REQUEST_HEADER + 72;
}

BF_TEST(a_request_round_trips_with_its_fields_little_endian)
{
    uint8_t buf[256];
    size_t n = make_request(buf, 0x0102030405060708ull);
    CHECK(n == 108);
    /* the layout is the documented one, byte for byte */
    CHECK(!memcmp(buf, "BFRQ", 4) && buf[4] == 1 && buf[5] == 0 && buf[6] == 1 && buf[7] == 1);
    CHECK(buf[8] == 0x08 && buf[15] == 0x01 && buf[16] == 2 && buf[20] == 1 && buf[21] == 2);
    CHECK(buf[24] == 3 && buf[28] == 3 && buf[32] == 0);
    bf_wire_request rq;
    char why[256];
    CHECK(bf_wire_decode_request(buf, n, 100, &rq, why, sizeof why) == BF_WIRE_OK);
    CHECK(rq.id == 0x0102030405060708ull && rq.count == 2 && rq.item_values == 9);
    CHECK(rq.payload == buf + BF_WIRE_REQUEST_HEADER);
    /* uint16 payloads are half the size */
    buf[20] = BF_DTYPE_U16;
    CHECK(bf_wire_decode_request(buf, BF_WIRE_REQUEST_HEADER + 36, 100, &rq, why, sizeof why) ==
          BF_WIRE_OK);
    /* a stats request is a bare header */
    bf_wire_request st = {.op = BF_OP_STATS, .id = 7};
    bf_wire_encode_request_header(&st, buf);
    CHECK(bf_wire_decode_request(buf, BF_WIRE_REQUEST_HEADER, 100, &rq, why, sizeof why) ==
              BF_WIRE_OK &&
          rq.op == BF_OP_STATS && rq.id == 7);
}

typedef struct {
    int offset;           /* byte to change (-1: truncate to `value` bytes) */
    int value;
    int status;
    const char *message;  /* a part of the message */
} fault_case;

BF_TEST(every_malformed_request_is_refused_with_the_fault_named)
{
    const fault_case cases[] = {
        {-1, 10, BF_WIRE_BAD_REQUEST, "request is 10 bytes, shorter than the 36-byte header"},
        {-1, 107, BF_WIRE_BAD_REQUEST, "payload is 71 bytes; 2 items of 9 float32 values need 72"},
        {0, 'X', BF_WIRE_BAD_REQUEST, "bad magic"},
        {4, 9, BF_WIRE_BAD_REQUEST, "version 9"},
        {6, 5, BF_WIRE_BAD_REQUEST, "unknown op 5"},
        {7, 9, BF_WIRE_BAD_REQUEST, "unknown model code 9"},
        {20, 3, BF_WIRE_BAD_REQUEST, "unknown dtype 3"},
        {21, 0, BF_WIRE_BAD_REQUEST, "ndims 0"},
        {21, 1, BF_WIRE_BAD_REQUEST, "dims[1] = 3 beyond ndims 1"},
        {22, 1, BF_WIRE_BAD_REQUEST, "reserved field is 1"},
        {24, 0, BF_WIRE_BAD_REQUEST, "dims[0] = 0"},
        {16, 0, BF_WIRE_BAD_REQUEST, "count is 0"},
        {16, 3, BF_WIRE_BAD_REQUEST, "payload is 72 bytes; 3 items of 9 float32 values need 108"},
        {16, 200, BF_WIRE_TOO_LARGE, "count 200 is more than the 100 items"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t buf[256];
        size_t n = make_request(buf, 42);
        if (cases[c].offset < 0)
            n = (size_t)cases[c].value;
        else
            buf[cases[c].offset] = (uint8_t)cases[c].value;
        bf_wire_request rq;
        char why[256] = "";
        int status = bf_wire_decode_request(buf, n, 100, &rq, why, sizeof why);
        CHECK_MSG(status == cases[c].status && strstr(why, cases[c].message),
                  "case %zu: status %d, '%s'", c, status, why);
        CHECK(rq.id == (n >= 16 ? 42u : 0u));   /* the reply can name the request */
    }
}

BF_TEST(a_nan_or_infinite_value_is_refused_naming_item_and_value)
{
    uint8_t buf[256];
    size_t n = make_request(buf, 1);
    float bad[2] = {NAN, INFINITY};
    const char *want[2] = {"item 1 value 4 is NaN", "item 1 value 4 is infinite"};
    for (int k = 0; k < 2; k++) {
        memcpy(buf + BF_WIRE_REQUEST_HEADER + 4 * 13, &bad[k], 4);
        bf_wire_request rq;
        char why[256];
        CHECK(bf_wire_decode_request(buf, n, 100, &rq, why, sizeof why) == BF_WIRE_BAD_VALUE);
        CHECK_MSG(strstr(why, want[k]), "%s", why);
    }
}

BF_TEST(a_reply_round_trips_and_a_short_or_inconsistent_one_is_refused)
{
    uint8_t buf[BF_WIRE_REPLY_HEADER + 16];
    bf_wire_reply rp = {.status = BF_WIRE_OK, .id = 99, .count = 2, .values = 2};
    for (int i = 0; i < 32; i++)
        rp.model_hash[i] = (uint8_t)i;
    bf_wire_encode_reply_header(&rp, buf);
    memset(buf + BF_WIRE_REPLY_HEADER, 0, 16);
    bf_wire_reply got;
    char why[256];
    CHECK(bf_wire_decode_reply(buf, sizeof buf, &got, why, sizeof why) == BF_WIRE_OK);
    CHECK(got.id == 99 && got.count == 2 && got.values == 2 && got.model_hash[31] == 31);
    CHECK(got.body_bytes == 16);
    CHECK(bf_wire_decode_reply(buf, sizeof buf - 4, &got, why, sizeof why) == BF_WIRE_BAD_REQUEST);
    CHECK_MSG(strstr(why, "reply body is 12 bytes; 2 x 2 float32 need 16"), "%s", why);
    CHECK(bf_wire_decode_reply(buf, 20, &got, why, sizeof why) == BF_WIRE_BAD_REQUEST);
    CHECK(!strcmp(bf_wire_status_name(BF_WIRE_WRONG_MODEL), "wrong_model"));
    CHECK(bf_wire_model_code("braggnn") == 1 && bf_wire_model_code("structure_net") == 2);
    CHECK(bf_wire_model_code("nope") == 0 && bf_wire_model_name(3) == NULL);
}
