/* tests/sim/test_fidelity_cw.c — constant-wavelength patterns against GSAS-II's
 * (shared/reference/gsas2_cw/: lab Cu Ka1/Ka2, synchrotron, CW neutron; README
 * there): the grid point for point, every reflection's position, multiplicity,
 * widths, |F|^2 and intensity factor, and whole patterns by Rwp.
 * Skipped (passing, with a note) when ../shared is absent. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/sim.h"
#include "gsas_reference.h"
#include "gsas_sf_reference.h"
#include "test.h"

/* issue 12 asks Rwp <= 0.1 % of every pattern; the limits below are tighter */

typedef struct {
    const char *h5, *instprm;         /* under reference/gsas2_cw/ */
    /* Rwp limits just above the worst of the 4 rows measured: with GSAS-II's f', f''
     * and with braggflow's (X-rays: xraylib's instead of Cromer-Liberman) */
    double rwp_limit, rwp_limit_own_fprime;
} cw_file;

static const cw_file cw_files[] = {
    /* measured 0.0016-0.0064 % */
    {"gsas2_cw_neutron_1p54A.h5", "Neutron_CW_1.54A_HB2A-like.instprm", 0.0001, 0.0001},
    /* 0.0034-0.0059 %; own f', f'': 0.0169-0.0575 % */
    {"gsas2_cw_lab_xray_cuka12.h5", "CuKa_lab_GSASII_default.instprm", 0.0001, 0.0007},
    /* 0.0149-0.0252 %; own: 0.0159-0.0289 % */
    {"gsas2_cw_synchrotron_xray_0p4579A.h5", "Synchrotron_0.4579A_11BM-like.instprm", 0.0003,
     0.00035},
};
#define N_CW_FILES (int)(sizeof cw_files / sizeof cw_files[0])

/* The four rows of every CW file (README "Files"), CIFs under reference/. */
static const char *const row_cif[4] = {
    "seed-workflow/1001460.cif", "seed-workflow/1531431.cif", "gsas2_cw/cifs/9001833.cif",
    "gsas2_cw/cifs/2013358.cif"};

static const char *const row_material[4] = {"cubic_1001460", "tetragonal_1531431",
                                            "triclinic_9001833", "partialocc_2013358"};

typedef struct {
    gsas_reference ref;
    char path[4096];
    bf_instrument inst;
    bf_sample sample;
    bf_grid_spec grid;
} cw_fixture;

/* The f', f'' GSAS-II used for a row's atom types (materials/NAME attribute
 * scattering_json) as the sample's overrides; 0, or -1 when the file has none. */
static int gsas2_fprime(const cw_fixture *fx, int row, bf_sample *s)
{
    gsas_sf_file f;
    if (gsas_sf_open(fx->path, &f) != 0)
        return -1;
    char group[128];
    snprintf(group, sizeof group, "materials/%s", row_material[row]);
    char *json = gsas_sf_attribute(&f, group, "scattering_json");
    gsas_sf_close(&f);
    bf_radiation rad;
    int rc = json != NULL ? gsas_sf_xray_radiation(json, fx->inst.lam1_A, &rad) : -1;
    free(json);
    if (rc != 0 || rad.n_fprime == 0)
        return -1;
    s->n_fprime = rad.n_fprime;
    memcpy(s->fprime, rad.fprime, sizeof s->fprime);
    return 0;
}

/* 1 opened, 0 no shared data (skip), -1 failure. */
static int cw_fixture_open(const cw_file *f, cw_fixture *fx)
{
    const char *shared = bf_test_shared_dir();
    if (shared == NULL)
        return 0;
    char path[4096];
    bf_error err = {0};
    snprintf(fx->path, sizeof fx->path, "%s/reference/gsas2_cw/%s", shared, f->h5);
    if (gsas_reference_read(fx->path, &fx->ref) != 0) {
        fprintf(stderr, "  cannot read %s\n", fx->path);
        return -1;
    }
    snprintf(path, sizeof path, "%s/reference/gsas2_cw/instprm/%s", shared, f->instprm);
    if (bf_instrument_read(path, &fx->inst, &err) != BF_OK) {
        fprintf(stderr, "  %s\n", err.msg);
        gsas_reference_free(&fx->ref);
        return -1;
    }
    bf_sample_defaults(&fx->sample);
    fx->sample.scale = 1000.0;
    bf_grid_spec_defaults(&fx->grid);
    const double *x = fx->ref.x;
    const int n = fx->ref.length;
    fx->grid.tth_min_deg = x[0];
    fx->grid.tth_max_deg = x[n - 1];
    fx->grid.tth_step_deg = round((x[n - 1] - x[0]) / (n - 1) * 1e6) / 1e6;
    return 1;
}

/* The simulator of a row: X-ray rows with GSAS-II's own f', f'' when gsas2_f is set
 * (else braggflow's table). */
static bf_status row_sim(const cw_fixture *fx, int row, int gsas2_f, bf_crystal *c,
                         bf_powder_sim **sim, bf_error *err)
{
    bf_sample sample = fx->sample;
    if (gsas2_f && fx->inst.kind == BF_INST_PXC && gsas2_fprime(fx, row, &sample) != 0)
        return bf_error_set(err, BF_ERR_IO, "%s: no scattering_json for row %d", fx->path, row);
    char path[4096];
    snprintf(path, sizeof path, "%s/reference/%s", bf_test_shared_dir(), row_cif[row]);
    bf_status st = bf_crystal_read_cif(path, c, err);
    if (st != BF_OK)
        return st;
    const double *cl = fx->ref.cell[row];
    double longest = fmax(cl[0], fmax(cl[1], cl[2]));
    st = bf_powder_sim_create(c, &fx->inst, &sample, &fx->grid, longest, sim, err);
    if (st != BF_OK)
        bf_crystal_free(c);
    return st;
}

static bf_cell row_cell(const gsas_reference *ref, int r)
{
    const double *c = ref->cell[r];
    return (bf_cell){c[0], c[1], c[2], c[3], c[4], c[5]};
}

/* A check of one row of one file; CHECK failures return from it and mark the test. */
typedef void (*row_check)(int *bf_failed_, const cw_fixture *fx, int f, int r);

/* Runs check on every row of every CW reference file, or says "skipped" (and passes)
 * when ../shared is absent. */
static void each_row(int *bf_failed_, row_check check)
{
    for (int f = 0; f < N_CW_FILES; f++) {
        cw_fixture fx = {0};
        int ok = cw_fixture_open(&cw_files[f], &fx);
        if (ok == 0) {
            fprintf(stderr, "  (skipped: no shared/reference)\n");
            return;
        }
        CHECK(ok == 1);
        for (int r = 0; r < fx.ref.n_rows; r++)
            check(bf_failed_, &fx, f, r);
        gsas_reference_free(&fx.ref);
    }
}

/* The grid is the file's, point for point (checked once per file, on its first row). */
static void check_grid(int *bf_failed_, const cw_fixture *fx, int f, int r)
{
    (void)f;
    if (r != 0)
        return;
    bf_grid g;
    CHECK(bf_grid_build(&fx->grid, &fx->inst, &g, NULL) == BF_OK);
    CHECK(g.n == fx->ref.length && g.unit == BF_X_TTH_DEG);
    for (int i = 0; i < g.n && i < fx->ref.length; i++)
        CHECK_NEAR(g.x[i], fx->ref.x[i], 1e-12);
    bf_grid_free(&g);
}

BF_TEST(cw_grids_match_gsas2_point_for_point)
{
    each_row(bf_failed_, check_grid);
}

/* Reflections in order of position, then multiplicity, then |F|^2 (several hkl
 * share a position in cubic and hexagonal cells). */
static int compare_keys(double pa, int ma, double fa, double pb, int mb, double fb)
{
    if (fabs(pa - pb) > 1e-7 * pa)
        return pa < pb ? -1 : 1;
    if (ma != mb)
        return ma < mb ? -1 : 1;
    return (fa > fb) - (fa < fb);
}

static int by_pos(const void *pa, const void *pb)
{
    const double *a = pa, *b = pb;
    return compare_keys(a[GRC_POS], (int)a[GRC_MULT], a[GRC_FCALC2], b[GRC_POS],
                        (int)b[GRC_MULT], b[GRC_FCALC2]);
}

static int by_tth(const void *pa, const void *pb)
{
    const bf_reflection *a = pa, *b = pb;
    return compare_keys(a->tth_deg, a->mult, a->f2, b->tth_deg, b->mult, b->f2);
}

static void check_reflections(int *bf_failed_, const cw_fixture *fx, int f, int r)
{
    bf_error err = {0};
    bf_crystal c;
    bf_powder_sim *sim = NULL;
    CHECK_MSG(row_sim(fx, r, 1, &c, &sim, &err) == BF_OK, "%s row %d: %s", cw_files[f].h5, r,
              err.msg);
    bf_cell cell = row_cell(&fx->ref, r);
    bf_reflection *ours = NULL;
    int n = 0;
    CHECK(bf_powder_sim_reflections(sim, &cell, &ours, &n, &err) == BF_OK);
    const int m = fx->ref.n_refl[r], nc = fx->ref.n_cols;
    CHECK(n == m);
    double *theirs = malloc((size_t)m * (size_t)nc * sizeof *theirs);
    memcpy(theirs, fx->ref.refl[r], (size_t)m * (size_t)nc * sizeof *theirs);
    qsort(theirs, (size_t)m, (size_t)nc * sizeof(double), by_pos);
    qsort(ours, (size_t)n, sizeof *ours, by_tth);
    double worst_f2 = 0.0, worst_icorr = 0.0;
    for (int i = 0; i < n && i < m; i++) {
        const double *t = theirs + (size_t)i * (size_t)nc;
        CHECK_REL(ours[i].tth_deg, t[GRC_POS], 1e-9);
        CHECK(ours[i].mult == (int)t[GRC_MULT]);
        CHECK_REL(ours[i].d_A, t[GRC_D], 1e-9);
        CHECK_REL(ours[i].sig_cdeg2, t[GRC_SIG], 1e-9);
        CHECK_REL(ours[i].gam_cdeg, t[GRC_GAM], 1e-9);
        worst_icorr = fmax(worst_icorr, fabs(ours[i].icorr / t[GRC_ICORR] - 1.0));
        if (t[GRC_FCALC2] > 1e-6)
            worst_f2 = fmax(worst_f2, fabs(ours[i].f2 / t[GRC_FCALC2] - 1.0));
    }
    fprintf(stderr, "  %s row %d: %d reflections, |F|^2 worst rel %.2e, Icorr %.2e\n",
            cw_files[f].h5, r, n, worst_f2, worst_icorr);
    CHECK(worst_f2 < 1e-10); /* measured <= 2e-11 */
    CHECK(worst_icorr < 1e-13); /* measured <= 4e-15 */
    free(theirs);
    free(ours);
    bf_powder_sim_destroy(sim);
    bf_crystal_free(&c);
}

/* With GSAS-II's f', f'' (the profile and F as GSAS-II computes them), then with
 * braggflow's own (X-rays: xraylib's instead of Cromer-Liberman). */
static void check_pattern(int *bf_failed_, const cw_fixture *fx, int f, int r)
{
    for (int own = 0; own <= (fx->inst.kind == BF_INST_PXC); own++) {
        bf_error err = {0};
        bf_crystal c;
        bf_powder_sim *sim = NULL;
        CHECK_MSG(row_sim(fx, r, !own, &c, &sim, &err) == BF_OK, "%s row %d: %s",
                  cw_files[f].h5, r, err.msg);
        bf_cell cell = row_cell(&fx->ref, r);
        const int n = fx->ref.length;
        double *y = malloc((size_t)n * sizeof *y);
        CHECK(bf_powder_sim_pattern(sim, &cell, y, &err) == BF_OK);
        const double *ref = fx->ref.intensity + (size_t)r * (size_t)n;
        double rwp = gsas_rwp(ref, y, 0, n);
        fprintf(stderr, "  %s row %d: Rwp = %.4f %%%s\n", cw_files[f].h5, r, 100.0 * rwp,
                own ? " (braggflow's f', f'')" : "");
        CHECK(rwp < (own ? cw_files[f].rwp_limit_own_fprime : cw_files[f].rwp_limit));
        free(y);
        bf_powder_sim_destroy(sim);
        bf_crystal_free(&c);
    }
}

BF_TEST(cw_reflections_match_gsas2)
{
    each_row(bf_failed_, check_reflections);
}

BF_TEST(cw_patterns_match_gsas2_rwp)
{
    each_row(bf_failed_, check_pattern);
}
