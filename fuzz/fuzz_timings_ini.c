/* fuzz/fuzz_timings_ini.c — the edge demo's DIR/timings.ini reader (bf_edge_timings_parse,
 * and the INI tokenizer under it) on arbitrary bytes; timings it accepts must give the
 * cost model finite, non-negative inputs that it evaluates. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/serve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    bf_edge_timings t;
    bf_error err = {0};
    if (bf_edge_timings_parse(text, "/tmp/timings.ini", &t, &err) == BF_OK) {
        bf_cost_inputs in;
        bf_cost_defaults(&in);
        unsigned measured = 0;
        bf_cost_from_timings(&t, &in, &measured);
        if (!isfinite(in.analysis_us_per_item) || in.analysis_us_per_item < 0 ||
            !isfinite(in.inference_us_per_item) || in.inference_us_per_item < 0 ||
            !isfinite(in.train_s) || in.train_s < 0 || !(in.item_bytes >= 0) ||
            !(in.model_bytes >= 0))
            abort();
        in.n_items = 1e6; /* sizes up to 1e18 bytes stay finite at a million items */
        bf_cost_result r;
        bf_error err2 = {0};
        if (bf_cost_evaluate(&in, &r, &err2) != BF_OK)
            abort();
    } else if (err.msg[0] == 0) {
        abort(); /* a rejection always says why */
    }
    free(text);
    return 0;
}
