/* serve/wire.c — the service's request and reply frames (docs/serve.md §Wire format).
 * Everything is read byte by byte from little-endian fields, so a frame at any
 * alignment and on any host decodes the same; nothing in a frame is trusted. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "braggflow/serve.h"

static const uint8_t REQUEST_MAGIC[4] = {'B', 'F', 'R', 'Q'};
static const uint8_t REPLY_MAGIC[4] = {'B', 'F', 'R', 'P'};

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> 8 * i);
}
static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static int fault(int status, char *why, size_t whysz, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fault(int status, char *why, size_t whysz, const char *fmt, ...)
{
    if (why && whysz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whysz, fmt, ap);
        va_end(ap);
    }
    return status;
}

const char *bf_wire_status_name(int status)
{
    static const char *const names[] = {"ok",        "bad_request", "wrong_model", "bad_value",
                                        "too_large", "unavailable", "internal"};
    return status >= 0 && status < (int)(sizeof names / sizeof names[0]) ? names[status]
                                                                         : "unknown";
}

static const char *const MODEL_NAMES[] = {NULL, "braggnn", "structure_net"};

int bf_wire_model_code(const char *model_kind)
{
    for (int i = 1; i < (int)(sizeof MODEL_NAMES / sizeof MODEL_NAMES[0]); i++)
        if (model_kind && !strcmp(model_kind, MODEL_NAMES[i]))
            return i;
    return 0;
}

const char *bf_wire_model_name(int code)
{
    return code > 0 && code < (int)(sizeof MODEL_NAMES / sizeof MODEL_NAMES[0])
               ? MODEL_NAMES[code]
               : NULL;
}

static size_t dtype_bytes(int dtype) { return dtype == BF_DTYPE_F32 ? 4 : dtype == BF_DTYPE_U16 ? 2 : 0; }

int bf_wire_decode_request(const void *frame, size_t len, uint32_t max_items,
                           bf_wire_request *rq, char *why, size_t whysz)
{
    const uint8_t *b = frame;
    memset(rq, 0, sizeof *rq);
    if (len >= 16)
        rq->id = get64(b + 8);
    if (len < BF_WIRE_REQUEST_HEADER)
        return fault(BF_WIRE_BAD_REQUEST, why, whysz,
                     "request is %zu bytes, shorter than the %d-byte header", len,
                     BF_WIRE_REQUEST_HEADER);
    if (memcmp(b, REQUEST_MAGIC, 4))
        return fault(BF_WIRE_BAD_REQUEST, why, whysz,
                     "bad magic %02x %02x %02x %02x (want \"BFRQ\")", b[0], b[1], b[2], b[3]);
    if (get16(b + 4) != BF_WIRE_VERSION)
        return fault(BF_WIRE_BAD_REQUEST, why, whysz, "version %u (this service speaks %d)",
                     get16(b + 4), BF_WIRE_VERSION);
    rq->op = b[6];
    rq->model = b[7];
    rq->count = get32(b + 16);
    rq->dtype = b[20];
    rq->ndims = b[21];
    for (int k = 0; k < 3; k++)
        rq->dims[k] = get32(b + 24 + 4 * k);
    if (get16(b + 22) != 0)
        return fault(BF_WIRE_BAD_REQUEST, why, whysz, "reserved field is %u, not 0",
                     get16(b + 22));
    if (rq->op == BF_OP_STATS)
        return len == BF_WIRE_REQUEST_HEADER
                   ? BF_WIRE_OK
                   : fault(BF_WIRE_BAD_REQUEST, why, whysz,
                           "stats request carries %zu payload bytes (want none)",
                           len - BF_WIRE_REQUEST_HEADER);
    if (rq->op != BF_OP_INFER)
        return fault(BF_WIRE_BAD_REQUEST, why, whysz, "unknown op %d (1 infer, 2 stats)",
                     rq->op);
    if (!bf_wire_model_name(rq->model))
        return fault(BF_WIRE_BAD_REQUEST, why, whysz,
                     "unknown model code %d (1 braggnn, 2 structure_net)", rq->model);
    size_t vb = dtype_bytes(rq->dtype);
    if (!vb)
        return fault(BF_WIRE_BAD_REQUEST, why, whysz, "unknown dtype %d (1 float32, 2 uint16)",
                     rq->dtype);
    if (rq->ndims < 1 || rq->ndims > 3)
        return fault(BF_WIRE_BAD_REQUEST, why, whysz, "ndims %d (want 1..3)", rq->ndims);
    size_t items = 1;
    for (int k = 0; k < 3; k++) {
        if (k >= rq->ndims) {
            if (rq->dims[k])
                return fault(BF_WIRE_BAD_REQUEST, why, whysz, "dims[%d] = %u beyond ndims %d",
                             k, rq->dims[k], rq->ndims);
            continue;
        }
        if (rq->dims[k] == 0 || rq->dims[k] > 1u << 20)
            return fault(BF_WIRE_BAD_REQUEST, why, whysz, "dims[%d] = %u (want 1..%u)", k,
                         rq->dims[k], 1u << 20);
        items *= rq->dims[k];
    }
    if (items > 1u << 24)
        return fault(BF_WIRE_BAD_REQUEST, why, whysz, "an item of %zu values is too large",
                     items);
    rq->item_values = items;
    if (rq->count == 0)
        return fault(BF_WIRE_BAD_REQUEST, why, whysz, "count is 0");
    if (rq->count > max_items)
        return fault(BF_WIRE_TOO_LARGE, why, whysz,
                     "count %u is more than the %u items this service takes per request",
                     rq->count, max_items);
    size_t payload = len - BF_WIRE_REQUEST_HEADER;
    /* count <= 2^32 and items * vb <= 2^26: the product fits in 64 bits */
    uint64_t want = (uint64_t)rq->count * items * vb;
    if (payload != want)
        return fault(BF_WIRE_BAD_REQUEST, why, whysz,
                     "payload is %zu bytes; %u items of %zu %s values need %llu", payload,
                     rq->count, items, rq->dtype == BF_DTYPE_F32 ? "float32" : "uint16",
                     (unsigned long long)want);
    rq->payload = b + BF_WIRE_REQUEST_HEADER;
    if (rq->dtype == BF_DTYPE_F32) {
        size_t n = (size_t)want / 4;
        for (size_t i = 0; i < n; i++) {
            float v;
            memcpy(&v, rq->payload + 4 * i, 4);
            if (!isfinite(v))
                return fault(BF_WIRE_BAD_VALUE, why, whysz, "item %zu value %zu is %s",
                             i / items, i % items, isnan(v) ? "NaN" : "infinite");
        }
    }
    return BF_WIRE_OK;
}

void bf_wire_encode_request_header(const bf_wire_request *rq, uint8_t out[BF_WIRE_REQUEST_HEADER])
{
    memset(out, 0, BF_WIRE_REQUEST_HEADER);
    memcpy(out, REQUEST_MAGIC, 4);
    put16(out + 4, BF_WIRE_VERSION);
    out[6] = (uint8_t)rq->op;
    out[7] = (uint8_t)rq->model;
    put64(out + 8, rq->id);
    put32(out + 16, rq->count);
    out[20] = (uint8_t)rq->dtype;
    out[21] = (uint8_t)rq->ndims;
    for (int k = 0; k < 3; k++)
        put32(out + 24 + 4 * k, k < rq->ndims ? rq->dims[k] : 0);
}

void bf_wire_encode_reply_header(const bf_wire_reply *rp, uint8_t out[BF_WIRE_REPLY_HEADER])
{
    memcpy(out, REPLY_MAGIC, 4);
    put16(out + 4, BF_WIRE_VERSION);
    put16(out + 6, (uint16_t)rp->status);
    put64(out + 8, rp->id);
    memcpy(out + 16, rp->model_hash, 32);
    put32(out + 48, rp->count);
    put32(out + 52, rp->values);
}

int bf_wire_decode_reply(const void *frame, size_t len, bf_wire_reply *rp, char *why,
                         size_t whysz)
{
    const uint8_t *b = frame;
    memset(rp, 0, sizeof *rp);
    if (len < BF_WIRE_REPLY_HEADER)
        return fault(BF_WIRE_BAD_REQUEST, why, whysz,
                     "reply is %zu bytes, shorter than the %d-byte header", len,
                     BF_WIRE_REPLY_HEADER);
    if (memcmp(b, REPLY_MAGIC, 4))
        return fault(BF_WIRE_BAD_REQUEST, why, whysz, "bad reply magic");
    if (get16(b + 4) != BF_WIRE_VERSION)
        return fault(BF_WIRE_BAD_REQUEST, why, whysz, "reply version %u", get16(b + 4));
    rp->status = get16(b + 6);
    rp->id = get64(b + 8);
    memcpy(rp->model_hash, b + 16, 32);
    rp->count = get32(b + 48);
    rp->values = get32(b + 52);
    rp->body = b + BF_WIRE_REPLY_HEADER;
    rp->body_bytes = len - BF_WIRE_REPLY_HEADER;
    if (rp->status == BF_WIRE_OK && (uint64_t)rp->count * rp->values * 4 != rp->body_bytes &&
        !(rp->count == 0 && rp->values == 0))
        return fault(BF_WIRE_BAD_REQUEST, why, whysz,
                     "reply body is %zu bytes; %u x %u float32 need %llu", rp->body_bytes,
                     rp->count, rp->values, (unsigned long long)rp->count * rp->values * 4);
    return BF_WIRE_OK;
}
