/* fuzz/fuzz_cif.c — CIF reader (libcif + braggflow's item handling) on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/crystal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bf_crystal c = {0};
    bf_error err = {0};
    if (bf_crystal_read_cif_text((const char *)data, size, "fuzz.cif", &c, &err) == BF_OK) {
        /* A structure that parsed must also yield a reflection table or a clean error. */
        bf_reflection_table t = {0};
        if (bf_reflection_table_build(&c, &(bf_radiation){.kind = BF_RADIATION_NEUTRON, .b_table = BF_B_TABLE_GSAS2}, 3, 3, 3, &t, &err) == BF_OK)
            bf_reflection_table_free(&t);
        bf_crystal_free(&c);
    }
    return 0;
}
