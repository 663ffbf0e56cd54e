/* fuzz/fuzz_sweep_ini.c — the sweep INI reader (bf_sweep_config_parse, and the INI
 * tokenizer under it) on arbitrary bytes; for a config it accepts, every trial of the
 * expansion (the first 1000) must hold values inside the train options' bounds. */
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
    static bf_sweep_config cfg; /* large: keep it off the stack */
    bf_error err = {0};
    if (bf_sweep_config_parse(text, "/tmp/fuzz.ini", &cfg, &err) == BF_OK) {
        if (cfg.n_trials < 1 || cfg.n_trials > BF_SWEEP_MAX_TRIALS)
            abort();
        for (long i = 0; i < cfg.n_trials && i < 1000; i++) {
            bf_sweep_trial t;
            bf_sweep_trial_at(&cfg, i, &t);
            if (!(t.lr > 0 && t.lr <= 10) || t.batch < 1 || t.batch > 65536 || t.epochs < 1 ||
                t.epochs > 10000 || t.hidden < 0 || t.patience < 0 || !(t.clip >= 0) ||
                !(t.min_delta >= 0))
                abort();
            char json[1024];
            bf_sweep_trial_json(&cfg, &t, json, sizeof json);
        }
    } else if (!err.msg[0] || strchr(err.msg, '\n')) {
        abort(); /* an error is one line that says something */
    }
    free(text);
    return 0;
}
