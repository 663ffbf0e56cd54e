/* fuzz/fuzz_ini.c — `sample` INI configuration reader on arbitrary bytes. */
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
    static bf_sample_config cfg; /* large: keep it off the stack */
    bf_error err = {0};
    bf_sample_config_parse(text, "/tmp/fuzz.ini", &cfg, &err);
    free(text);
    return 0;
}
