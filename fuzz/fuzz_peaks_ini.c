/* fuzz/fuzz_peaks_ini.c — `sample-peaks` INI reader (bf_peaks_config_parse, and the
 * INI tokenizer under it) on arbitrary bytes; a config it accepts must pass the
 * simulator's own checks and format to text that parses back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/data.h"
#include "data/data_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    static bf_peaks_config cfg, back; /* large: keep them off the stack */
    static char formatted[8192];
    bf_error err = {0};
    if (bf_peaks_config_parse(text, "/tmp/fuzz.ini", &cfg, &err) == BF_OK) {
        bf_peaks_config_format(&cfg, formatted, sizeof formatted);
        bf_error err2 = {0};
        if (bf_peaks_config_parse(formatted, "formatted", &back, &err2) != BF_OK)
            abort(); /* the formatted config must read back */
        cfg.count = 2;                 /* simulate a little of what was accepted */
        bf_patches p;
        bf_error err3 = {0};
        if (bf_patches_simulate(&cfg, 1, &p, &err3) != BF_OK)
            abort();
        bf_patches_free(&p);
    }
    free(text);
    return 0;
}
