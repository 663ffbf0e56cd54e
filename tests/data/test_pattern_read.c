/* tests/data/test_pattern_read.c — measured patterns: a simulated NaCl pattern
 * written as xy, xye, braggflow CSV and GSAS files (FXYE and ESD records on SLOG
 * BANK lines as GSAS-II exports TOF; STD and FXYE on CONST lines in centidegrees
 * for constant wavelength) reads back to the same values on the model's grid; the
 * grid a model records; regridding by hand arithmetic; bad files name file:line. */
#include <stdarg.h>

#include "braggflow/data.h"
#include "braggflow/sim.h"
#include "test.h"

/* A growing text buffer. */
typedef struct {
    char *s;
    size_t len, cap;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (t->len + (size_t)n + 1 > t->cap) {
        t->cap = (t->len + (size_t)n + 1) * 2;
        t->s = realloc(t->s, t->cap);
        if (!t->s)
            abort();
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* NaCl on the default TOF grid, scaled to a maximum of 10000 (GSAS F8.2 fields). */
static int nacl_pattern(double **x, double **y, int *n)
{
    char cif[4096], inst_path[4096];
    snprintf(cif, sizeof cif, "%s/examples/cif/NaCl.cif", bf_test_source_dir());
    snprintf(inst_path, sizeof inst_path, "%s/examples/instrument/nomad-like-bank4.instprm",
             bf_test_source_dir());
    bf_crystal c;
    bf_instrument inst;
    bf_powder_sim *sim = NULL;
    if (bf_crystal_read_cif(cif, &c, NULL) != BF_OK)
        return -1;
    int rc = -1;
    if (bf_instrument_read(inst_path, &inst, NULL) == BF_OK) {
        bf_sample s;
        bf_sample_defaults(&s);
        bf_grid_spec spec;
        bf_grid_spec_defaults(&spec);
        bf_cell cell = {5.5, 5.5, 5.5, 90, 90, 90};
        if (bf_powder_sim_create(&c, &inst, &s, &spec, 0, &sim, NULL) == BF_OK) {
            const bf_grid *g = bf_powder_sim_grid(sim);
            *n = g->n;
            *x = malloc(sizeof(double) * (size_t)g->n);
            *y = malloc(sizeof(double) * (size_t)g->n);
            memcpy(*x, g->x, sizeof(double) * (size_t)g->n);
            if (bf_powder_sim_pattern(sim, &cell, *y, NULL) == BF_OK) {
                double m = 0;
                for (int i = 0; i < *n; i++)
                    m = fmax(m, (*y)[i]);
                for (int i = 0; i < *n; i++)
                    (*y)[i] *= 10000 / m;
                rc = m > 0 ? 0 : -1;
            }
            bf_powder_sim_destroy(sim);
        }
    }
    bf_crystal_free(&c);
    return rc;
}

/* Largest |regridded - y| over the model grid x for text in fmt. */
static double readback_error(const char *txt, const char *name, bf_measured_format fmt,
                             const double *x, const double *y, int n, const bf_x_unit *hint,
                             int *ok)
{
    bf_measured m;
    bf_error err = {0};
    *ok = 0;
    if (bf_measured_parse(txt, name, fmt, hint, &m, &err) != BF_OK) {
        fprintf(stderr, "  %s: %s\n", name, err.msg);
        return INFINITY;
    }
    float *g = malloc(sizeof(float) * (size_t)n);
    int covered = 0;
    double worst = INFINITY;
    if (m.n == n && bf_measured_to_grid(&m, name, x, n, BF_X_TOF_US, g, &covered, &err) == BF_OK &&
        covered == n) {
        worst = 0;
        for (int i = 0; i < n; i++)
            worst = fmax(worst, fabs(g[i] - y[i]));
        *ok = 1;
        printf("  %s: largest |regridded - simulated| %.3g\n", name, worst);
    } else {
        fprintf(stderr, "  %s: %d points, covered %d: %s\n", name, m.n, covered, err.msg);
    }
    free(g);
    bf_measured_free(&m);
    return worst;
}

BF_TEST(a_simulated_pattern_in_each_format_reads_back_on_the_model_grid)
{
    double *x = NULL, *y = NULL;
    int n = 0, ok;
    if (nacl_pattern(&x, &y, &n)) {
        printf("skipped: examples/ NaCl.cif or instprm not readable\n");
        return;
    }
    /* the model's grid as train records it: geometric, regenerated within 1e-9 */
    bf_x_grid g;
    bf_error err = {0};
    CHECK(bf_x_grid_describe(x, n, BF_X_TOF_US, &g, &err) == BF_OK);
    CHECK(g.spacing == BF_GRID_GEOMETRIC && g.n == 2806);
    double *gx = malloc(sizeof(double) * (size_t)n);
    CHECK(bf_x_grid_values(&g, gx, &err) == BF_OK);
    for (int i = 0; i < n; i++)
        CHECK_REL(gx[i], x[i], 1e-12);

    text xy = {0}, xye = {0}, csv = {0}, fxye = {0}, esd = {0};
    put(&xy, "# NaCl, simulated\nTOF(us) Intensity\n");
    put(&xye, "! NaCl, simulated: x y esd\n");
    put(&csv, "tof_us,intensity\n"); /* simulate --out x.csv's header and format */
    double r = pow(x[n - 1] / x[0], 1.0 / (n - 1)) - 1;
    /* GSAS-II's TOF export: 80-column title, instrument line, SLOG BANK, FXYE records */
    put(&fxye, "%-80s\n%-80s\n", "NaCl simulated", "Instrument parameter file:nomad.instprm");
    put(&fxye, "%-80s\n", "# comment line");
    char bank[128];
    snprintf(bank, sizeof bank, "BANK 1 %d %d SLOG %.10g %.10g %.15g 0 FXYE", n, n, x[0],
             x[n - 1], r);
    put(&fxye, "%-80s\n", bank);
    put(&esd, "%-80s\n", "NaCl simulated, ESD records");
    snprintf(bank, sizeof bank, "BANK 1 %d %d SLOG %.10g %.10g %.15g 0 ESD", n, (n + 4) / 5, x[0],
             x[n - 1], r);
    put(&esd, "%-80s\n", bank);
    for (int i = 0; i < n; i++) {
        double e = sqrt(y[i] + 1);
        put(&xy, "%.9f %.9g\n", x[i], y[i]);
        put(&xye, "%.9f, %.9g, %.6g\n", x[i], y[i], e);
        put(&csv, "%.6f,%.9g\n", x[i], y[i]);
        put(&fxye, "%20.9f%20.9g%20.9g%20s\n", x[i], y[i], e, "");
        put(&esd, "%8.2f%8.2f%s", y[i], e, i % 5 == 4 || i == n - 1 ? "\n" : "");
    }
    bf_x_unit tof = BF_X_TOF_US;
    /* the regridded pattern is float32 (half an ulp at 10000: 4.9e-4); measured worst
     * errors 2.42e-4 (xy, xye, csv with x to 1e-6 us, fxye) and 5.18e-3 (ESD: F8.2
     * fields round by 5e-3); the bounds are just above */
    CHECK_MSG(readback_error(xy.s, "p.xy", BF_MEAS_XY, x, y, n, &tof, &ok) < 3e-4 && ok, "xy");
    CHECK_MSG(readback_error(xy.s, "p.xy", BF_MEAS_XY, x, y, n, NULL, &ok) == INFINITY && !ok,
              "xy without a unit is refused");
    CHECK_MSG(readback_error(xye.s, "p.xye", BF_MEAS_XYE, x, y, n, &tof, &ok) < 3e-4 && ok,
              "xye");
    CHECK_MSG(readback_error(csv.s, "p.csv", BF_MEAS_CSV, x, y, n, NULL, &ok) < 3e-4 && ok,
              "csv (unit from the header)");
    CHECK_MSG(readback_error(fxye.s, "p.fxye", BF_MEAS_FXYE, x, y, n, NULL, &ok) < 3e-4 && ok,
              "fxye");
    CHECK_MSG(readback_error(esd.s, "p.gsa", BF_MEAS_GSA, x, y, n, NULL, &ok) < 0.0056 && ok,
              "esd");

    /* the esd column and the SLOG positions themselves */
    bf_measured m;
    CHECK_MSG(bf_measured_parse(esd.s, "p.gsa", BF_MEAS_GSA, NULL, &m, &err) == BF_OK, "%s",
              err.msg);
    CHECK(m.unit == BF_X_TOF_US && m.unit_known && m.sigma);
    CHECK_REL(m.x[n - 1], x[n - 1], 1e-9);
    CHECK_NEAR(m.sigma[7], sqrt(y[7] + 1), 0.005);
    bf_measured_free(&m);

    /* a file on disk, format from the extension */
    char path[4096];
    snprintf(path, sizeof path, "%s/p.fxye", bf_test_tmp_dir());
    FILE *fp = fopen(path, "w");
    CHECK(fp);
    fputs(fxye.s, fp);
    fclose(fp);
    CHECK_MSG(bf_measured_read(path, BF_MEAS_AUTO, NULL, &m, &err) == BF_OK, "%s", err.msg);
    CHECK(m.n == n);
    bf_measured_free(&m);
    free(xy.s), free(xye.s), free(csv.s), free(fxye.s), free(esd.s);
    free(gx), free(x), free(y);
}

/* Constant wavelength: CONST in centidegrees, STD records (I2 counters + F6.0) and
 * FXYE; the grid is linear. */
BF_TEST(gsas_const_banks_are_two_theta_in_centidegrees)
{
    text std = {0}, fx = {0};
    put(&std, "%-80s\n", "CW scan 10..10.3 deg");
    put(&std, "%-80s\n", "BANK 1 16 2 CONST 1000.00 2.00 0 0 STD");
    for (int i = 0; i < 16; i++)
        put(&std, "%2d%6d%s", i % 2 ? 1 : 0, 100 + i * i, i % 10 == 9 || i == 15 ? "\n" : "");
    put(&fx, "title\nBANK 1 3 3 CONST 1000 2 0 0 FXYE\n1000 5 1\n1002 7 1\n1004 9 1\n");
    bf_x_unit tth = BF_X_TTH_DEG;
    bf_measured m;
    bf_error err = {0};
    CHECK_MSG(bf_measured_parse(std.s, "cw.gsa", BF_MEAS_GSA, &tth, &m, &err) == BF_OK, "%s",
              err.msg);
    CHECK(m.n == 16 && m.unit == BF_X_TTH_DEG && !m.sigma);
    CHECK_NEAR(m.x[0], 10.0, 1e-12);
    CHECK_NEAR(m.x[15], 10.30, 1e-12);
    CHECK_NEAR(m.y[0], 100, 0);
    CHECK_NEAR(m.y[15], 325, 0);
    bf_x_grid g;
    CHECK(bf_x_grid_describe(m.x, m.n, BF_X_TTH_DEG, &g, &err) == BF_OK);
    CHECK(g.spacing == BF_GRID_LINEAR);
    bf_measured_free(&m);
    CHECK_MSG(bf_measured_parse(fx.s, "cw.fxye", BF_MEAS_FXYE, &tth, &m, &err) == BF_OK, "%s",
              err.msg);
    CHECK(m.n == 3);
    CHECK_NEAR(m.x[2], 10.04, 1e-12);
    CHECK_NEAR(m.y[1], 7, 0);
    bf_measured_free(&m);
    /* CONST alone does not say TOF or 2theta */
    bf_error e2 = {0};
    CHECK(bf_measured_parse(fx.s, "cw.fxye", BF_MEAS_FXYE, NULL, &m, &e2) == BF_ERR_INVALID);
    CHECK(strstr(e2.msg, "cw.fxye:2: BANK ... CONST does not say"));
    free(std.s), free(fx.s);
}

/* x = 1, 2, 4 with y = 0, 10, 30 at 0.5 1 1.5 3 4 5: 0 0 5 20 30 0 (outside -> 0). */
BF_TEST(regridding_interpolates_linearly_and_zeroes_outside)
{
    double mx[] = {1, 2, 4}, my[] = {0, 10, 30};
    bf_measured m = {.n = 3, .x = mx, .y = my, .unit = BF_X_TOF_US};
    double gx[] = {0.5, 1, 1.5, 3, 4, 5};
    float gy[6];
    int covered;
    bf_error err = {0};
    CHECK(bf_measured_to_grid(&m, "m", gx, 6, BF_X_TOF_US, gy, &covered, &err) == BF_OK);
    float want[] = {0, 0, 5, 20, 30, 0};
    for (int i = 0; i < 6; i++)
        CHECK_NEAR(gy[i], want[i], 0);
    CHECK(covered == 4);
    double far[] = {10, 11};
    CHECK(bf_measured_to_grid(&m, "m.xy", far, 2, BF_X_TOF_US, gy, &covered, &err) ==
          BF_ERR_INVALID);
    CHECK(strstr(err.msg, "m.xy: x 1..4 us does not overlap the model's grid 10..11 us"));
    bf_error e2 = {0};
    CHECK(bf_measured_to_grid(&m, "m.xy", gx, 6, BF_X_TTH_DEG, gy, &covered, &e2) ==
          BF_ERR_INVALID);
    CHECK(strstr(e2.msg, "x is tof_us but the model's grid is two_theta_deg"));
    /* within a thousandth of the end step: the end value (x printed with few digits) */
    double edge[] = {1 - 0.0009, 4 + 0.0019, 4 + 0.0021};
    CHECK(bf_measured_to_grid(&m, "m", edge, 3, BF_X_TOF_US, gy, &covered, &err) == BF_OK);
    CHECK(gy[0] == 0 && gy[1] == 30 && gy[2] == 0 && covered == 2);
    /* a grid that is neither linear nor geometric is an array with a hash */
    double odd[] = {1, 2, 4, 5};
    bf_x_grid g;
    CHECK(bf_x_grid_describe(odd, 4, BF_X_TOF_US, &g, &err) == BF_OK);
    CHECK(g.spacing == BF_GRID_ARRAY && strlen(g.sha256) == 64);
    bf_error e3 = {0};
    CHECK(bf_x_grid_values(&g, odd, &e3) == BF_ERR_INVALID);
}

static int rejects(const char *txt, bf_measured_format fmt, const char *want)
{
    bf_measured m;
    bf_error err = {0};
    bf_x_unit tof = BF_X_TOF_US;
    if (bf_measured_parse(txt, "m.dat", fmt, &tof, &m, &err) == BF_OK) {
        bf_measured_free(&m);
        fprintf(stderr, "  accepted: '%s'\n", txt);
        return 0;
    }
    if (!strstr(err.msg, want)) {
        fprintf(stderr, "  '%s' lacks '%s'\n", err.msg, want);
        return 0;
    }
    return 1;
}

BF_TEST(bad_measured_files_are_errors_naming_file_and_line)
{
    CHECK(rejects("# h\nx y\n1 2\n3 4\n2 5\n", BF_MEAS_XY, "m.dat:5: x 2 does not increase"));
    CHECK(rejects("1 2\n1 4\n", BF_MEAS_XY, "m.dat:2: x 1 does not increase"));
    CHECK(rejects("1 2\n2 nan\n", BF_MEAS_XY, "m.dat:2: intensity is not finite"));
    CHECK(rejects("1 2 1\ninf 2 1\n", BF_MEAS_XYE, "m.dat:2: x is not finite"));
    CHECK(rejects("1 2\n", BF_MEAS_XY, "m.dat: 1 point (a pattern needs at least 2)"));
    CHECK(rejects("1 2\n2 3\n", BF_MEAS_XYE, "m.dat:1: 2 columns; xye needs x y esd"));
    CHECK(rejects("# c\n1 2 3\n2 3 4\n", BF_MEAS_XY, "m.dat:2: 3 columns; xy needs x y"));
    CHECK(rejects("1 2\n2 3 4\n", BF_MEAS_XY, "m.dat:2: 3 columns, earlier lines have 2"));
    CHECK(rejects("1 2 3 4\n", BF_MEAS_XY, "m.dat:1: expected 1 to 3 numbers"));
    CHECK(rejects("1\n2\n", BF_MEAS_CSV, "m.dat:1: 1 column; csv needs x,intensity"));
    /* GSAS */
    CHECK(rejects("t\nno bank\n", BF_MEAS_GSA, "m.dat: no BANK line"));
    CHECK(rejects("t\nBANK 1\n", BF_MEAS_GSA, "m.dat:2: BANK line: expected BANK IBANK"));
    CHECK(rejects("t\nBANK 1 0 1 CONST 1 1\n", BF_MEAS_GSA, "m.dat:2: BANK line: NCHAN '0'"));
    CHECK(rejects("t\n#\nBANK 1 2 1 LOG 1 1 0 0 STD\n1 2\n", BF_MEAS_GSA,
                  "m.dat:3: BANK line: BINTYP 'LOG'"));
    CHECK(rejects("t\nBANK 1 2 1 CONST 1\n", BF_MEAS_GSA, "m.dat:2: BANK line: CONST needs"));
    CHECK(rejects("t\nBANK 1 2 1 CONST 1 0 0 0 STD\n", BF_MEAS_GSA, "CONST step 0 is not > 0"));
    CHECK(rejects("t\nBANK 1 2 1 CONST 1 1 0 0 ALT\n", BF_MEAS_GSA, "m.dat:2: BANK line: TYPE ALT"));
    CHECK(rejects("t\nBANK 1 2 1 CONST 1 1 0 0 XYZ\n", BF_MEAS_GSA, "'XYZ' is not a number, nor"));
    CHECK(rejects("t\nBANK 1 2 1 RALF 1 1 0 0 STD\n", BF_MEAS_GSA, "RALF is read with FXYE"));
    CHECK(rejects("t\nBANK 1 3 1 SLOG 1000 2000 0.001 0 FXYE\n1000 1 1\n1001 2 1\n",
                  BF_MEAS_GSA, "m.dat:2: BANK line says 3 points; 2 follow it"));
    CHECK(rejects("t\nBANK 1 2 1 SLOG 1000 2000 0.001 0 FXYE\n1000 1 1\n1001 2\n", BF_MEAS_GSA,
                  "m.dat:4: expected 3 numbers (x y esd) for a FXYE record"));
    CHECK(rejects("t\nBANK 1 2 1 SLOG 1000 2000 0.001 0 FXYE\n1000 1 1\n999 2 1\n", BF_MEAS_GSA,
                  "m.dat:4: x 999 does not increase"));
    CHECK(rejects("t\nBANK 1 2 1 SLOG 1000 2000 0.001 0 FXYE\n1000 1 1\n1001 nan 1\n",
                  BF_MEAS_GSA, "m.dat:4: intensity is not finite"));
    CHECK(rejects("t\nBANK 1 2 1 CONST 100 1 0 0 ESD\n     1.0     1.0     2.0\n", BF_MEAS_GSA,
                  "m.dat:3: expected up to 5 (y, esd) pairs"));
    CHECK(rejects("t\nTIME_MAP 1 2 3\n", BF_MEAS_GSA, "m.dat:2: TIME_MAP"));
    bf_measured m;
    bf_error err = {0};
    CHECK(bf_measured_read("/nonexistent/p.xy", BF_MEAS_AUTO, NULL, &m, &err) == BF_ERR_IO);
    bf_error e2 = {0};
    CHECK(bf_measured_read("p.unknown", BF_MEAS_AUTO, NULL, &m, &e2) == BF_ERR_INVALID);
    CHECK(strstr(e2.msg, "p.unknown: cannot tell the format"));
}
