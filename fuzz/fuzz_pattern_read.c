/* fuzz/fuzz_pattern_read.c — the measured-pattern reader (`predict --pattern`) on
 * arbitrary bytes: the first byte picks the format (xy, xye, gsa, fxye, csv) and
 * whether a unit is assumed; a pattern read is regridded onto a small grid. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const bf_measured_format formats[] = {BF_MEAS_XY, BF_MEAS_XYE, BF_MEAS_GSA,
                                                 BF_MEAS_FXYE, BF_MEAS_CSV};
    bf_measured_format fmt = formats[data[0] % 5];
    bf_x_unit unit = (data[0] / 5) % 2 ? BF_X_TTH_DEG : BF_X_TOF_US;
    int hint = (data[0] / 10) % 2;
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    bf_measured m;
    bf_error err = {0};
    if (bf_measured_parse(text, "fuzz.gsa", fmt, hint ? &unit : NULL, &m, &err) == BF_OK) {
        double x[64];
        float y[64];
        for (int i = 0; i < 64; i++)
            x[i] = m.x[0] + (m.x[m.n - 1] - m.x[0]) * i / 63.0;
        bf_measured_to_grid(&m, "fuzz.gsa", x, 64, m.unit, y, NULL, &err);
        bf_x_grid g;
        bf_x_grid_describe(m.x, m.n, m.unit, &g, &err);
        bf_measured_free(&m);
    }
    free(text);
    return 0;
}
