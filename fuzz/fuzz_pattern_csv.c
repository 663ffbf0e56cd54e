/* fuzz/fuzz_pattern_csv.c — the one-pattern CSV reader (`predict --csv`) on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    bf_dataset d;
    bf_error err = {0};
    if (bf_pattern_csv_parse(text, "fuzz.csv", &d, &err) == BF_OK)
        bf_dataset_free(&d);
    free(text);
    return 0;
}
