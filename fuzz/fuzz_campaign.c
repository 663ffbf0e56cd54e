/* fuzz/fuzz_campaign.c — campaign INI reader (sample part + [campaign], [train], [al])
 * on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/flow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    static bf_campaign_config cfg; /* large: keep it off the stack */
    bf_error err = {0};
    bf_campaign_config_parse(text, "/tmp/fuzz-campaign.ini", &cfg, &err);
    free(text);
    return 0;
}
