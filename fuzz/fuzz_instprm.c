/* fuzz/fuzz_instprm.c — GSAS-II .instprm reader on arbitrary bytes. */
#include <stdint.h>

#include "braggflow/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bf_instrument inst;
    bf_error err = {0};
    bf_instrument_parse((const char *)data, size, "fuzz.instprm", &inst, &err);
    return 0;
}
