/* fuzz/fuzz_instprm.c — GSAS-II .instprm reader on arbitrary bytes (TOF and CW keys);
 * an accepted constant-wavelength file also has its grid built and a peak's
 * widths, window and profile evaluated (UBSan watches the arithmetic). */
#include <stdint.h>

#include "braggflow/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bf_instrument inst;
    bf_error err = {0};
    if (bf_instrument_parse((const char *)data, size, "fuzz.instprm", &inst, &err) != BF_OK ||
        !bf_instrument_is_cw(&inst))
        return 0;
    bf_grid_spec spec;
    bf_grid_spec_defaults(&spec);
    spec.tth_step_deg = 0.5; /* small grids: this is about the arithmetic, not the size */
    bf_grid g;
    if (bf_grid_build(&spec, &inst, &g, &err) != BF_OK)
        return 0;
    bf_sample s;
    bf_sample_defaults(&s);
    for (int i = 0; i < g.n; i += 37) {
        bf_cw_peak p;
        bf_cw_peak_at(&inst, &s, g.x[i], &p);
        double below, above;
        bf_cw_window(&p, &below, &above);
        (void)bf_cw_profile_eval(&p, 0.01 * (i % 7 - 3));
        (void)bf_cw_lorentz_polarization(&inst, g.x[i]);
        if (inst.lam2_A > 0)
            (void)bf_cw_ka2_position_deg(&inst, g.x[i]);
    }
    bf_grid_free(&g);
    return 0;
}
