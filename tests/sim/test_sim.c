/* tests/sim/test_sim.c — instrument files, the TOF grid, E1 against known
 * values and an independent integral, the profile's normalisation, the fast
 * (tabulated) path against the exact one, Bragg positions and bad input. */
#include <complex.h>
#include <stdio.h>
#include <stdlib.h>

#include "braggflow/sim.h"
#include "sim/sim_internal.h"
#include "test.h"

static const char *example_instprm(void)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/examples/instrument/nomad-like-bank4.instprm",
             bf_test_source_dir());
    return path;
}

static int complex_close(double complex a, double complex b, double rel)
{
    return cabs(a - b) <= rel * cabs(b);
}

BF_TEST(e1_matches_known_values)
{
    /* A&S table 5.1 and E1(ix) = -Ci(x) + i (Si(x) - pi/2); E1(-x + i0) = -Ei(x) - i pi */
    CHECK(complex_close(bf_expint_e1(1.0), 0.219383934395520, 1e-13));
    CHECK(complex_close(bf_expint_e1(0.1), 1.822923958419390, 1e-13));
    CHECK(complex_close(bf_expint_e1(10.0), 4.156968929685324e-6, 1e-12));
    CHECK(complex_close(bf_expint_e1(CMPLX(0, 1)), CMPLX(-0.337403922900968, -0.624713256427714),
                        1e-12));
    CHECK(complex_close(bf_expint_e1(CMPLX(-1, 1e-13)), CMPLX(-1.895117816355937, -M_PI), 1e-11));
    CHECK(complex_close(bf_expint_e1(CMPLX(-5, 1e-13)), CMPLX(-40.18527535580318, -M_PI), 1e-11));
    CHECK(complex_close(bf_expint_e1(CMPLX(-20, 1e-13)), CMPLX(-25615652.66405658, -M_PI), 1e-11));
    /* conjugate symmetry */
    CHECK(complex_close(bf_expint_e1(CMPLX(2, -3)), conj(bf_expint_e1(CMPLX(2, 3))), 1e-14));
}

/* exp(z) E1(z) = integral_0^inf exp(-t) / (t + z) dt (Re z > -inf, Im z != 0),
 * by composite Simpson on [0, 60]: independent of all three regimes. */
static double complex scaled_e1_by_quadrature(double complex z)
{
    const int n = 600000;
    const double h = 60.0 / n;
    double complex s = 0;
    for (int i = 0; i <= n; i++) {
        double t = i * h, w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
        s += w * exp(-t) / (t + z);
    }
    return s * h / 3.0;
}

BF_TEST(scaled_e1_matches_quadrature_across_regimes)
{
    /* the arguments the profile produces: Im = lambda F / 2 of a few, Re = -lambda D */
    const double complex z[] = {CMPLX(0.5, 2), CMPLX(-3, 2.6), CMPLX(-30, 2.6), CMPLX(-80, 4),
                                CMPLX(-8, 40), CMPLX(25, 3), CMPLX(-150, 60), CMPLX(3, 0.5)};
    for (size_t i = 0; i < sizeof z / sizeof z[0]; i++) {
        double complex want = scaled_e1_by_quadrature(z[i]), got = bf_expint_e1_scaled(z[i]);
        CHECK_MSG(complex_close(got, want, 1e-8), "z = %g%+gi: %.12g%+.12gi vs %.12g%+.12gi",
                  creal(z[i]), cimag(z[i]), creal(got), cimag(got), creal(want), cimag(want));
    }
}

static bf_tof_peak example_peak(double d)
{
    bf_instrument inst;
    bf_sample s;
    bf_tof_peak p = {0};
    if (bf_instrument_read(example_instprm(), &inst, NULL) != BF_OK)
        return p;
    bf_sample_defaults(&s);
    bf_tof_peak_at(&inst, &s, d, &p);
    return p;
}

BF_TEST(profile_has_unit_area_and_peaks_near_the_position)
{
    const double ds[] = {0.45, 1.0, 1.9};
    for (int k = 0; k < 3; k++) {
        bf_tof_peak p = example_peak(ds[k]);
        CHECK(p.tof_us > 0);
        double area = 0, best = -1, at = 0;
        const double h = 0.25;
        for (double t = -20000; t <= 20000; t += h) {
            double v = bf_tof_profile_eval(&p, t);
            CHECK(isfinite(v) && v > -1e-12);
            area += v * h;
            if (v > best)
                best = v, at = t;
        }
        /* the Lorentzian tails beyond +-20 ms hold ~ (2/pi)(F/2)/20000 * eta */
        CHECK_NEAR(area, 1.0, 2e-3);
        CHECK(fabs(at) < sqrt(p.sigma2_us2)); /* maximum within a sigma of TOF(hkl) */
    }
}

/* The tabulated core + analytic tails against the exact profile on a grid. */
BF_TEST(fast_path_matches_exact_profile)
{
    bf_instrument inst;
    CHECK(bf_instrument_read(example_instprm(), &inst, NULL) == BF_OK);
    bf_sample s;
    bf_sample_defaults(&s);
    bf_tof_grid_spec spec;
    bf_tof_grid_spec_defaults(&spec);
    bf_tof_grid g;
    CHECK(bf_tof_grid_build(&spec, &inst, &g, NULL) == BF_OK);
    bf_profile_table table;
    CHECK(bf_profile_table_build(&table, &inst, &s, g.dmin_A, 1.98, NULL) == BF_OK);
    double *y = calloc((size_t)g.n, sizeof *y);
    CHECK(y != NULL);
    const double ds[] = {0.41, 0.777, 1.2345, 1.9};
    for (int k = 0; k < 4; k++) {
        bf_tof_peak p;
        bf_tof_peak_at(&inst, &s, ds[k], &p);
        for (int i = 0; i < g.n; i++)
            y[i] = 0;
        bf_profile_table_add(&table, ds[k], 1.0, &g, y);
        double peak = 0, worst = 0, area_exact = 0, area_fast = 0;
        for (int i = g.first_active; i < g.end_active; i++)
            peak = fmax(peak, bf_tof_profile_eval(&p, g.tof_us[i] - p.tof_us));
        for (int i = g.first_active + 1; i < g.end_active; i++) {
            double exact = bf_tof_profile_eval(&p, g.tof_us[i] - p.tof_us);
            double bin = g.tof_us[i] - g.tof_us[i - 1];
            worst = fmax(worst, fabs(y[i] - exact));
            area_exact += exact * bin;
            area_fast += y[i] * bin;
        }
        CHECK_MSG(worst < 2e-4 * peak, "d = %g: worst error %.3g of the maximum", ds[k],
                  worst / peak);
        /* the fast path draws Lorentzian tails out to 25 W only: ~0.2 % of the area */
        CHECK_MSG(fabs(area_fast - area_exact) < 4e-3 * area_exact, "d = %g: area %g vs %g",
                  ds[k], area_fast, area_exact);
    }
    free(y);
    bf_profile_table_free(&table);
    bf_tof_grid_free(&g);
}

BF_TEST(instrument_file_reads_and_grid_has_gsas2_length)
{
    bf_instrument inst;
    bf_error err = {0};
    CHECK_MSG(bf_instrument_read(example_instprm(), &inst, &err) == BF_OK, "%s", err.msg);
    CHECK(strcmp(inst.type, "PNT") == 0);
    CHECK_NEAR(inst.difc, 9500.0, 0);
    CHECK_NEAR(inst.two_theta_deg, 122.0, 0);
    bf_tof_grid_spec spec;
    bf_tof_grid_spec_defaults(&spec);
    bf_tof_grid g;
    CHECK(bf_tof_grid_build(&spec, &inst, &g, &err) == BF_OK);
    CHECK(g.n == 2806);
    CHECK_NEAR(g.tof_us[0], 1360.638, 1e-3);
    CHECK_NEAR(g.tof_us[g.n - 1], 18903.070, 1e-3);
    /* log-spaced: constant ratio of neighbours */
    CHECK_REL(g.tof_us[1] / g.tof_us[0], g.tof_us[2000] / g.tof_us[1999], 1e-12);
    CHECK_NEAR(g.lower_us, 9500.0 * 0.4 + 19.0 * 0.16 + 5.0, 1e-9);
    bf_tof_grid_free(&g);
}

BF_TEST(bad_instrument_files_name_file_line_and_key)
{
    bf_instrument inst;
    const char *no_difc = "Type:PNT\n2-theta:122\nalpha:0.1\nbeta-0:0.2\nbeta-1:0\nsig-0:0\n"
                          "sig-1:1\nsig-2:0\n";
    bf_error err = {0};
    CHECK(bf_instrument_parse(no_difc, strlen(no_difc), "x.instprm", &inst, &err) ==
          BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "x.instprm: difC: missing"), "%s", err.msg);
    const char *bad_number = "Type:PNT\ndifC:9500\nalpha:0.1x\n";
    bf_error e2 = {0};
    CHECK(bf_instrument_parse(bad_number, strlen(bad_number), "x.instprm", &inst, &e2) ==
          BF_ERR_PARSE);
    CHECK_MSG(strstr(e2.msg, "x.instprm:3: alpha"), "%s", e2.msg);
    const char *no_colon = "Type:PNT\ndifC 9500\n";
    bf_error e3 = {0};
    CHECK(bf_instrument_parse(no_colon, strlen(no_colon), "x.instprm", &inst, &e3) == BF_ERR_PARSE);
    CHECK(strstr(e3.msg, "x.instprm:2"));
    const char *cw = "Type:PXC\ndifC:1\n2-theta:1\nalpha:1\nbeta-0:1\nbeta-1:0\nsig-0:0\nsig-1:0\n"
                     "sig-2:0\n";
    bf_error e4 = {0};
    CHECK(bf_instrument_parse(cw, strlen(cw), "x.instprm", &inst, &e4) == BF_ERR_UNSUPPORTED);
    bf_error e5 = {0};
    CHECK(bf_instrument_read("/nonexistent/x.instprm", &inst, &e5) == BF_ERR_IO);
    CHECK(strstr(e5.msg, "/nonexistent/x.instprm"));
}

static bf_powder_sim *nacl_sim(double max_length)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/examples/cif/NaCl.cif", bf_test_source_dir());
    bf_crystal c;
    bf_instrument inst;
    bf_powder_sim *sim = NULL;
    if (bf_crystal_read_cif(path, &c, NULL) != BF_OK)
        return NULL;
    if (bf_instrument_read(example_instprm(), &inst, NULL) == BF_OK) {
        bf_sample s;
        bf_sample_defaults(&s);
        bf_tof_grid_spec spec;
        bf_tof_grid_spec_defaults(&spec);
        bf_powder_sim_create(&c, &inst, &s, &spec, max_length, &sim, NULL);
    }
    bf_crystal_free(&c);
    return sim;
}

/* Bragg's law in TOF: t = difC d + difA d^2 + Zero with d = a / sqrt(h2+k2+l2);
 * F-centred cubic: only unmixed hkl, h2+k2+l2 = 3, 4, 8, 11, 12, 16, ... */
BF_TEST(reflection_positions_follow_bragg_law)
{
    bf_powder_sim *sim = nacl_sim(0);
    CHECK(sim != NULL);
    bf_cell cell = {5.6402, 5.6402, 5.6402, 90, 90, 90};
    bf_reflection *r = NULL;
    int n = 0;
    CHECK(bf_powder_sim_reflections(sim, &cell, &r, &n, NULL) == BF_OK);
    CHECK(n > 5);
    for (int i = 0; i < n; i++) {
        int s = r[i].h * r[i].h + r[i].k * r[i].k + r[i].l * r[i].l;
        double d = 5.6402 / sqrt(s);
        CHECK_REL(r[i].d_A, d, 1e-13);
        CHECK_REL(r[i].tof_us, 9500.0 * d + 19.0 * d * d + 5.0, 1e-13);
        CHECK((r[i].h & 1) == (r[i].k & 1) && (r[i].k & 1) == (r[i].l & 1));
        if (i > 0)
            CHECK(r[i].d_A <= r[i - 1].d_A);
    }
    free(r);
    bf_powder_sim_destroy(sim);
}

BF_TEST(pattern_is_deterministic_and_rejects_bad_cells)
{
    bf_powder_sim *sim = nacl_sim(6.0);
    CHECK(sim != NULL);
    const bf_tof_grid *g = bf_powder_sim_grid(sim);
    double *y1 = malloc((size_t)g->n * sizeof *y1), *y2 = malloc((size_t)g->n * sizeof *y2);
    bf_cell cell = {5.5, 5.5, 5.5, 90, 90, 90};
    CHECK(bf_powder_sim_pattern(sim, &cell, y1, NULL) == BF_OK);
    CHECK(bf_powder_sim_pattern(sim, &cell, y2, NULL) == BF_OK);
    CHECK(memcmp(y1, y2, (size_t)g->n * sizeof *y1) == 0);
    double top = 0;
    for (int i = 0; i < g->n; i++)
        top = fmax(top, y1[i]);
    CHECK(top > 0);
    bf_error err = {0};
    bf_cell too_long = {6.5, 6.5, 6.5, 90, 90, 90};
    CHECK(bf_powder_sim_pattern(sim, &too_long, y1, &err) == BF_ERR_RANGE);
    bf_error e2 = {0};
    bf_cell tiny = {0.5, 0.5, 0.5, 90, 90, 90}; /* d(111) = 0.29 A < 0.4 A */
    CHECK(bf_powder_sim_pattern(sim, &tiny, y1, &e2) == BF_ERR_INVALID);
    CHECK_MSG(strstr(e2.msg, "no reflection"), "%s", e2.msg);
    bf_error e3 = {0};
    bf_cell broken = {5, 5, 5, 10, 10, 170};
    CHECK(bf_powder_sim_pattern(sim, &broken, y1, &e3) == BF_ERR_INVALID);
    free(y1);
    free(y2);
    bf_powder_sim_destroy(sim);
}
