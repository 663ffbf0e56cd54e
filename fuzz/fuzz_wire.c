/* fuzz/fuzz_wire.c — the service's request decoder (and the client's reply decoder) on
 * arbitrary bytes. The frame is copied to an exact-size heap buffer so that ASan sees
 * every read past its end; a decoded request's payload must lie inside the frame. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/serve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *frame = malloc(size ? size : 1);
    if (!frame)
        return 0;
    memcpy(frame, data, size);
    bf_wire_request rq;
    char why[256];
    uint32_t max_items = size ? 1u + data[size - 1] : 1u;
    if (bf_wire_decode_request(frame, size, max_items, &rq, why, sizeof why) == BF_WIRE_OK &&
        rq.op == BF_OP_INFER) {
        size_t bytes = (size_t)rq.count * rq.item_values * (rq.dtype == BF_DTYPE_F32 ? 4 : 2);
        if (rq.payload != frame + BF_WIRE_REQUEST_HEADER || BF_WIRE_REQUEST_HEADER + bytes != size)
            abort();
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < bytes; i++)
            sink ^= rq.payload[i];
        (void)sink;
    }
    bf_wire_reply rp;
    if (bf_wire_decode_reply(frame, size, &rp, why, sizeof why) == BF_WIRE_OK &&
        rp.body + rp.body_bytes != frame + size)
        abort();
    free(frame);
    return 0;
}
