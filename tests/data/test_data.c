/* tests/data/test_data.c — symmetry classes, samplers (random, grid, phased)
 * and the `sample` INI configuration. */
#include "braggflow/data.h"
#include "test.h"

#include <sys/stat.h>

static bf_class_spec builtin(const char *name)
{
    bf_class_spec c;
    bf_error err = {0};
    if (bf_class_builtin(name, &c, &err) != BF_OK) {
        fprintf(stderr, "bf_class_builtin(%s): %s\n", name, err.msg);
        abort();
    }
    return c;
}

static int cells_equal(const bf_cell *x, const bf_cell *y)
{
    return x->a == y->a && x->b == y->b && x->c == y->c && x->alpha == y->alpha &&
           x->beta == y->beta && x->gamma == y->gamma;
}

/* ---- classes --------------------------------------------------------------------- */

BF_TEST(test_builtin_classes_have_the_seed_boxes_labels_and_constraints)
{
    bf_class_spec cub = builtin("cubic"), tri = builtin("trigonal"), tet = builtin("tetragonal");
    CHECK(cub.label == BF_CLASS_CUBIC && tri.label == BF_CLASS_TRIGONAL &&
          tet.label == BF_CLASS_TETRAGONAL);
    CHECK(bf_class_n_free(&cub) == 1 && bf_class_n_free(&tri) == 2 && bf_class_n_free(&tet) == 2);

    CHECK(cub.rule[BF_P_A].kind == BF_PARAM_FREE && cub.rule[BF_P_A].lo == 2.5 &&
          cub.rule[BF_P_A].hi == 5.5);
    CHECK(cub.rule[BF_P_B].kind == BF_PARAM_TIED && cub.rule[BF_P_B].tied_to == BF_P_A);
    CHECK(cub.rule[BF_P_GAMMA].kind == BF_PARAM_FIXED && cub.rule[BF_P_GAMMA].value == 90);
    CHECK(cub.n_constraints == 0);

    CHECK(tri.rule[BF_P_ALPHA].kind == BF_PARAM_FREE && tri.rule[BF_P_ALPHA].lo == 30 &&
          tri.rule[BF_P_ALPHA].hi == 119.5);
    CHECK(tri.rule[BF_P_GAMMA].kind == BF_PARAM_TIED && tri.rule[BF_P_GAMMA].tied_to == BF_P_ALPHA);
    CHECK(tri.n_constraints == 1 && tri.constraint[0].p_param == BF_P_ALPHA &&
          tri.constraint[0].q_param < 0 && tri.constraint[0].q_value == 90 &&
          tri.constraint[0].tol == 0.2);

    CHECK(tet.rule[BF_P_C].kind == BF_PARAM_FREE && tet.rule[BF_P_C].lo == 3.5 &&
          tet.rule[BF_P_C].hi == 4.5);
    CHECK(tet.rule[BF_P_ALPHA].kind == BF_PARAM_FIXED);
    CHECK(tet.n_constraints == 1 && tet.constraint[0].p_param == BF_P_A &&
          tet.constraint[0].q_param == BF_P_C && tet.constraint[0].tol == 0.001);

    bf_error err = {0};
    bf_class_spec other;
    CHECK(bf_class_builtin("hexagonal", &other, &err) == BF_ERR_INVALID);
    CHECK(strstr(err.msg, "hexagonal") != NULL);
    for (int p = 0; p < BF_N_CELL_PARAMS; p++)
        CHECK(bf_cell_param_names[p] != NULL);
    CHECK(strcmp(bf_cell_param_names[BF_P_ALPHA], "alpha") == 0);
}

BF_TEST(test_make_cell_takes_free_values_in_parameter_order_and_fills_ties)
{
    bf_class_spec tri = builtin("trigonal"), tet = builtin("tetragonal");
    bf_cell cell;
    bf_class_make_cell(&tri, (double[]){4.0, 60.0}, &cell);
    CHECK(cell.a == 4.0 && cell.b == 4.0 && cell.c == 4.0);
    CHECK(cell.alpha == 60.0 && cell.beta == 60.0 && cell.gamma == 60.0);
    bf_class_make_cell(&tet, (double[]){3.8, 4.1}, &cell);
    CHECK(cell.a == 3.8 && cell.b == 3.8 && cell.c == 4.1);
    CHECK(cell.alpha == 90 && cell.beta == 90 && cell.gamma == 90);
}

BF_TEST(test_accepts_checks_box_ties_and_constraints)
{
    bf_class_spec tri = builtin("trigonal"), tet = builtin("tetragonal"), cub = builtin("cubic");
    bf_cell cell;
    bf_class_make_cell(&tet, (double[]){4.0, 4.0}, &cell);
    CHECK(!bf_class_accepts(&tet, &cell)); /* a = c is cubic */
    bf_class_make_cell(&tet, (double[]){4.0, 4.0005}, &cell);
    CHECK(!bf_class_accepts(&tet, &cell));
    bf_class_make_cell(&tet, (double[]){4.0, 4.002}, &cell);
    CHECK(bf_class_accepts(&tet, &cell));
    bf_class_make_cell(&tet, (double[]){4.0, 4.6}, &cell);
    CHECK(!bf_class_accepts(&tet, &cell)); /* c outside the box */

    bf_class_make_cell(&tri, (double[]){4.0, 90.1}, &cell);
    CHECK(!bf_class_accepts(&tri, &cell));
    bf_class_make_cell(&tri, (double[]){4.0, 89.7}, &cell);
    CHECK(bf_class_accepts(&tri, &cell));
    bf_class_make_cell(&tri, (double[]){4.0, 120.0}, &cell);
    CHECK(!bf_class_accepts(&tri, &cell)); /* flat rhombohedron: not a real cell */

    bf_class_make_cell(&cub, (double[]){4.0}, &cell);
    CHECK(bf_class_accepts(&cub, &cell));
    cell.b = 4.1;
    CHECK(!bf_class_accepts(&cub, &cell)); /* breaks the b = a tie */
}

BF_TEST(test_validate_accepts_builtins_and_rejects_boxes_the_constraints_exclude)
{
    bf_error err = {0};
    bf_class_spec c = builtin("trigonal");
    CHECK(bf_class_validate(&c, &err) == BF_OK);
    c.rule[BF_P_ALPHA].lo = 89.9;
    c.rule[BF_P_ALPHA].hi = 90.1;
    CHECK(bf_class_validate(&c, &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "trigonal") && strstr(err.msg, "alpha"), "%s", err.msg);

    bf_error err2 = {0};
    c = builtin("tetragonal");
    CHECK(bf_class_validate(&c, &err2) == BF_OK);
    c.rule[BF_P_A].lo = c.rule[BF_P_C].lo = 4.0;
    c.rule[BF_P_A].hi = c.rule[BF_P_C].hi = 4.0;
    CHECK(bf_class_validate(&c, &err2) == BF_ERR_INVALID); /* only a = c = 4 */

    bf_error err3 = {0};
    c = builtin("cubic");
    c.rule[BF_P_A].lo = 4.5;
    c.rule[BF_P_A].hi = 4.0;
    CHECK(bf_class_validate(&c, &err3) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err3.msg, "cubic") && strstr(err3.msg, "a:"), "%s", err3.msg);
}

/* ---- random sampler --------------------------------------------------------------- */

BF_TEST(test_random_sampler_is_reproducible_per_sample_stream)
{
    bf_class_spec tet = builtin("tetragonal");
    bf_error err = {0};
    bf_cell x[8], y[8], z[8], tail[3];
    CHECK(bf_sample_random(&tet, 8, 42, 0, x, &err) == BF_OK);
    CHECK(bf_sample_random(&tet, 8, 42, 0, y, &err) == BF_OK);
    CHECK(bf_sample_random(&tet, 8, 42, 100, z, &err) == BF_OK);
    int differs = 0;
    for (int i = 0; i < 8; i++) {
        CHECK(cells_equal(&x[i], &y[i]));
        differs |= !cells_equal(&x[i], &z[i]);
    }
    CHECK(differs);
    /* Sample i depends only on stream stream_base + i. */
    CHECK(bf_sample_random(&tet, 3, 42, 5, tail, &err) == BF_OK);
    for (int i = 0; i < 3; i++)
        CHECK(cells_equal(&tail[i], &x[5 + i]));
    bf_cell w[8];
    CHECK(bf_sample_random(&tet, 8, 43, 0, w, &err) == BF_OK);
    CHECK(!cells_equal(&w[0], &x[0]));
}

BF_TEST(test_random_samples_lie_in_the_box_and_satisfy_the_constraints)
{
    enum { N = 3000 };
    static bf_cell cells[N];
    bf_error err = {0};
    /* Narrow boxes, so the constraints reject a good share of the draws. */
    bf_class_spec tri = builtin("trigonal");
    tri.rule[BF_P_ALPHA].lo = 89.5;
    tri.rule[BF_P_ALPHA].hi = 90.5;
    CHECK(bf_sample_random(&tri, N, 7, 0, cells, &err) == BF_OK);
    double amin = 1e9, amax = -1e9;
    for (int i = 0; i < N; i++) {
        CHECK(bf_class_accepts(&tri, &cells[i]));
        CHECK(fabs(cells[i].alpha - 90) > 0.2);
        CHECK(cells[i].a >= 3.5 && cells[i].a <= 4.5 && cells[i].b == cells[i].a);
        CHECK(cells[i].beta == cells[i].alpha && cells[i].gamma == cells[i].alpha);
        amin = fmin(amin, cells[i].alpha);
        amax = fmax(amax, cells[i].alpha);
    }
    CHECK(amin < 89.55 && amax > 90.45); /* fills the box */

    bf_class_spec tet = builtin("tetragonal");
    tet.rule[BF_P_A].lo = tet.rule[BF_P_C].lo = 3.5;
    tet.rule[BF_P_A].hi = tet.rule[BF_P_C].hi = 3.503;
    CHECK(bf_sample_random(&tet, N, 7, 0, cells, &err) == BF_OK);
    for (int i = 0; i < N; i++) {
        CHECK(bf_class_accepts(&tet, &cells[i]));
        CHECK(fabs(cells[i].a - cells[i].c) > 0.001);
        CHECK(cells[i].alpha == 90 && cells[i].b == cells[i].a);
    }
}

BF_TEST(test_random_sampler_gives_up_when_the_constraints_leave_nothing)
{
    bf_class_spec tri = builtin("trigonal");
    tri.rule[BF_P_ALPHA].lo = 89.9;
    tri.rule[BF_P_ALPHA].hi = 90.1;
    bf_cell cell;
    bf_error err = {0};
    CHECK(bf_sample_random(&tri, 1, 1, 0, &cell, &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "trigonal") != NULL, "%s", err.msg);
}

/* ---- grid and phased samplers ------------------------------------------------------ */

BF_TEST(test_grid_includes_both_ends_of_the_range)
{
    bf_class_spec cub = builtin("cubic");
    cub.rule[BF_P_A].lo = 3.5;
    cub.rule[BF_P_A].hi = 3.6;
    cub.rule[BF_P_A].step = 0.05;
    bf_error err = {0};
    long n = 0;
    CHECK(bf_sample_grid(&cub, 1, 1, NULL, &n, &err) == BF_OK);
    CHECK(n == 3);
    bf_cell cells[3];
    n = 3;
    CHECK(bf_sample_grid(&cub, 1, 1, cells, &n, &err) == BF_OK);
    CHECK(n == 3);
    CHECK_NEAR(cells[0].a, 3.5, 1e-12);
    CHECK_NEAR(cells[1].a, 3.55, 1e-12);
    CHECK_NEAR(cells[2].a, 3.6, 1e-12);
    CHECK(cells[2].a <= 3.6 && cells[2].c == cells[2].a && cells[2].alpha == 90);

    cub = builtin("cubic");
    cub.rule[BF_P_A].lo = 3.5;
    cub.rule[BF_P_A].hi = 4.5;
    cub.rule[BF_P_A].step = 0.1; /* (4.5 - 3.5) / 0.1 = 9.999... in floating point */
    CHECK(bf_sample_grid(&cub, 1, 1, NULL, &n, &err) == BF_OK);
    CHECK(n == 11);
}

BF_TEST(test_grid_orders_first_free_parameter_slowest_and_drops_violators)
{
    bf_class_spec tet = builtin("tetragonal");
    tet.rule[BF_P_A].lo = tet.rule[BF_P_C].lo = 3.5;
    tet.rule[BF_P_A].hi = tet.rule[BF_P_C].hi = 3.6;
    tet.rule[BF_P_A].step = tet.rule[BF_P_C].step = 0.05;
    bf_error err = {0};
    long n = 0;
    CHECK(bf_sample_grid(&tet, 1, 1, NULL, &n, &err) == BF_OK);
    CHECK(n == 6); /* 3 x 3 minus the diagonal a = c */
    bf_cell cells[6];
    CHECK(bf_sample_grid(&tet, 1, 1, cells, &n, &err) == BF_OK);
    const double want[6][2] = {{3.5, 3.55}, {3.5, 3.6}, {3.55, 3.5},
                               {3.55, 3.6}, {3.6, 3.5}, {3.6, 3.55}};
    for (int i = 0; i < 6; i++) {
        CHECK_NEAR(cells[i].a, want[i][0], 1e-12);
        CHECK_NEAR(cells[i].c, want[i][1], 1e-12);
    }
    /* Too little room is an error, not a silent truncation. */
    bf_error err2 = {0};
    n = 5;
    CHECK(bf_sample_grid(&tet, 1, 1, cells, &n, &err2) == BF_ERR_RANGE);
}

BF_TEST(test_grid_needs_a_positive_step_per_free_parameter)
{
    bf_class_spec tet = builtin("tetragonal");
    tet.rule[BF_P_A].step = 0.1;
    bf_error err = {0};
    long n = 0;
    CHECK(bf_sample_grid(&tet, 1, 1, NULL, &n, &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "tetragonal") && strstr(err.msg, "c_step"), "%s", err.msg);
    bf_error err2 = {0};
    tet.rule[BF_P_C].step = 0.1;
    CHECK(bf_sample_grid(&tet, 2, 3, NULL, &n, &err2) == BF_ERR_INVALID); /* phase > phases */
}

BF_TEST(test_phased_partition_covers_the_grid_exactly_once)
{
    bf_class_spec tet = builtin("tetragonal");
    tet.rule[BF_P_A].lo = tet.rule[BF_P_C].lo = 3.5;
    tet.rule[BF_P_A].hi = tet.rule[BF_P_C].hi = 3.7;
    tet.rule[BF_P_A].step = tet.rule[BF_P_C].step = 0.02;
    bf_error err = {0};
    enum { MAXN = 200 };
    bf_cell full[MAXN], part[MAXN];
    long n_full = MAXN;
    CHECK(bf_sample_grid(&tet, 1, 1, full, &n_full, &err) == BF_OK);
    CHECK(n_full == 11 * 11 - 11);
    int hits[MAXN] = {0};
    long total = 0;
    const int phases = 3;
    for (int k = 1; k <= phases; k++) {
        long n = MAXN;
        CHECK(bf_sample_grid(&tet, phases, k, part, &n, &err) == BF_OK);
        total += n;
        for (long i = 0; i < n; i++) {
            int found = 0;
            for (long j = 0; j < n_full; j++)
                if (cells_equal(&part[i], &full[j])) {
                    hits[j]++;
                    found = 1;
                }
            CHECK(found);
        }
    }
    CHECK(total == n_full);
    for (long j = 0; j < n_full; j++)
        CHECK(hits[j] == 1);
}

BF_TEST(test_phase_k_of_a_sweep_is_lo_plus_k_minus_1_d_with_stride_n_d)
{
    bf_class_spec cub = builtin("cubic");
    cub.rule[BF_P_A].lo = 3.5;
    cub.rule[BF_P_A].hi = 4.5;
    cub.rule[BF_P_A].step = 0.01; /* 101 points */
    const int n = 4;
    bf_error err = {0};
    for (int k = 1; k <= n; k++) {
        bf_cell cells[64];
        long count = 64;
        CHECK(bf_sample_grid(&cub, n, k, cells, &count, &err) == BF_OK);
        CHECK(count == (101 - (k - 1) + n - 1) / n);
        for (long m = 0; m < count; m++)
            CHECK_NEAR(cells[m].a, 3.5 + ((k - 1) + m * n) * 0.01, 1e-9);
    }
}

/* ---- INI configuration ------------------------------------------------------------ */

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (!fp) {
        perror(path);
        abort();
    }
    fputs(text, fp);
    fclose(fp);
}

static const char *good_ini =
    "; a comment line\n"
    "# another\n"
    "[run]\n"
    "seed = 18446744073709551615   ; max uint64\n"
    "sampler = random   # inline hash comment\n"
    "layout = seed\n"
    "\n"
    "[instrument]\n"
    "  instprm = ../inst/bank.instprm\n"
    "tof_max_ms = 15.5\n"
    "scale = 250\n"
    "\n"
    "[class.tetragonal]\n"
    "cif = cif/BaTiO3.cif\n"
    "count = 7\n"
    "c = 3.9 4.1\n"
    "\n"
    "[class.cubic]\n"
    "cif = /abs/NaCl.cif\n"
    "count = 2\n"
    "a = 4.5 5.5\n"
    "\n"
    "[class.ortho]\n"
    "cif = cif/ortho.cif\n"
    "count = 3\n"
    "a = 3.5 4.5\n"
    "b = 4.6 5.0\n"
    "c = = a\n"
    "alpha = 90\n"
    "beta = 90\n"
    "gamma = 90\n"
    "constraint = b a 0.01\n";

BF_TEST(test_config_parses_a_good_file_and_resolves_paths_against_its_folder)
{
    char dir[4200], path[4300];
    snprintf(dir, sizeof dir, "%s/cfg", bf_test_tmp_dir());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/good.ini", dir);
    write_text(path, good_ini);

    static bf_sample_config cfg;
    bf_error err = {0};
    bf_status st = bf_sample_config_read(path, &cfg, &err);
    CHECK_MSG(st == BF_OK, "%s", err.msg);
    CHECK(cfg.seed == UINT64_MAX);
    CHECK(cfg.sampler == BF_SAMPLER_RANDOM && cfg.layout == BF_LAYOUT_SEED);
    CHECK(strcmp(cfg.path, path) == 0);
    char want[4400];
    snprintf(want, sizeof want, "%s/../inst/bank.instprm", dir);
    CHECK_MSG(strcmp(cfg.instprm_path, want) == 0, "%s", cfg.instprm_path);
    CHECK_NEAR(cfg.grid.tmin_ms, 1.36, 1e-12);
    CHECK_NEAR(cfg.grid.tmax_ms, 15.5, 1e-12);
    CHECK_NEAR(cfg.grid.tstep_rel, 0.0009381, 1e-12);
    CHECK(cfg.sample.scale == 250);

    CHECK(cfg.n_classes == 3);
    const bf_class_spec *tet = &cfg.classes[0], *cub = &cfg.classes[1], *ort = &cfg.classes[2];
    CHECK(strcmp(tet->name, "tetragonal") == 0 && tet->label == BF_CLASS_TETRAGONAL);
    CHECK(tet->count == 7);
    CHECK(tet->rule[BF_P_A].lo == 3.5 && tet->rule[BF_P_A].hi == 4.5); /* default box */
    CHECK(tet->rule[BF_P_C].lo == 3.9 && tet->rule[BF_P_C].hi == 4.1);
    CHECK(tet->n_constraints == 1);
    snprintf(want, sizeof want, "%s/cif/BaTiO3.cif", dir);
    CHECK(strcmp(tet->cif_path, want) == 0);
    CHECK(strcmp(cub->cif_path, "/abs/NaCl.cif") == 0);
    CHECK(cub->label == BF_CLASS_CUBIC && cub->rule[BF_P_A].hi == 5.5);

    CHECK(strcmp(ort->name, "ortho") == 0 && ort->label == 3); /* next label after the built-ins */
    CHECK(bf_class_n_free(ort) == 2);
    CHECK(ort->rule[BF_P_C].kind == BF_PARAM_TIED && ort->rule[BF_P_C].tied_to == BF_P_A);
    CHECK(ort->rule[BF_P_ALPHA].kind == BF_PARAM_FIXED && ort->rule[BF_P_ALPHA].value == 90);
    CHECK(ort->n_constraints == 1 && ort->constraint[0].p_param == BF_P_B &&
          ort->constraint[0].q_param == BF_P_A);
    CHECK(strcmp(cfg.config_text, good_ini) == 0);
}

BF_TEST(test_config_grid_and_phased_keys)
{
    static bf_sample_config cfg;
    bf_error err = {0};
    const char *text = "[run]\nsampler = phased\nphases = 3\nphase = 2\n"
                       "[instrument]\ninstprm = i.instprm\n"
                       "[class.trigonal]\ncif = t.cif\na = 3.5 3.7\na_step = 0.1\n"
                       "alpha = 80 100\nalpha_step = 0.5\nlabel = 7\n";
    bf_status st = bf_sample_config_parse(text, "dir/p.ini", &cfg, &err);
    CHECK_MSG(st == BF_OK, "%s", err.msg);
    CHECK(cfg.sampler == BF_SAMPLER_PHASED && cfg.phases == 3 && cfg.phase == 2);
    CHECK(cfg.classes[0].rule[BF_P_A].step == 0.1);
    CHECK(cfg.classes[0].rule[BF_P_ALPHA].step == 0.5);
    CHECK(cfg.classes[0].label == 7);
    CHECK(strcmp(cfg.classes[0].cif_path, "dir/t.cif") == 0);
    CHECK(strcmp(bf_sampler_name(cfg.sampler), "phased") == 0);
    CHECK(cfg.sample.b_table == BF_B_TABLE_GSAS2); /* GSAS-II's scattering lengths by default */
    text = "[instrument]\ninstprm = i.instprm\n[sample]\nb_table = sears\n"
           "[class.cubic]\ncif = c.cif\ncount = 1\n";
    st = bf_sample_config_parse(text, "dir/s.ini", &cfg, &err);
    CHECK_MSG(st == BF_OK, "%s", err.msg);
    CHECK(cfg.sample.b_table == BF_B_TABLE_SEARS);
}

/* Parses text as "bad.ini" and expects failure with every needle in the message. */
static int fails_with(const char *text, bf_status want, const char *needle1, const char *needle2)
{
    static bf_sample_config cfg;
    bf_error err = {0};
    bf_status st = bf_sample_config_parse(text, "bad.ini", &cfg, &err);
    int ok = st == want && strncmp(err.msg, "bad.ini:", 8) == 0 &&
             (!needle1 || strstr(err.msg, needle1)) && (!needle2 || strstr(err.msg, needle2));
    if (!ok)
        fprintf(stderr, "    status %s, message: %s\n", bf_status_name(st), err.msg);
    return ok;
}

#define HEAD "[instrument]\ninstprm = i.instprm\n" /* lines 1-2 */

BF_TEST(test_config_errors_name_the_file_line_and_key)
{
    CHECK(fails_with(HEAD "[run]\nseeed = 1\n", BF_ERR_PARSE, "bad.ini:4:", "seeed"));
    CHECK(fails_with(HEAD "[class.cubic]\ncif = c.cif\ncount = ten\n", BF_ERR_PARSE, "bad.ini:5:",
                     "count"));
    CHECK(fails_with(HEAD "[class.cubic]\ncif = c.cif\ncount = 3\na = 4 x\n", BF_ERR_PARSE,
                     "bad.ini:6:", "[class.cubic] a:"));
    CHECK(fails_with(HEAD "[class.cubic]\ncount = 3\n", BF_ERR_INVALID, "[class.cubic] cif:",
                     "missing"));
    CHECK(fails_with(HEAD "[run]\nsampler = phased\nphases = 2\nphase = 3\n"
                          "[class.cubic]\ncif = c.cif\na_step = 0.1\n",
                     BF_ERR_INVALID, "bad.ini:6:", "phase"));
    CHECK(fails_with(HEAD "[class.trigonal]\ncif = t.cif\ncount = 1\nalpha = 89.9 90.1\n",
                     BF_ERR_INVALID, "trigonal", "alpha"));
    CHECK(fails_with(HEAD "[colours]\nred = 1\n", BF_ERR_PARSE, "bad.ini:3:", "colours"));
    CHECK(fails_with(HEAD "[class.cubic]\ncif = c.cif\ncount = 3\nalpha = 80 100\n",
                     BF_ERR_INVALID, "bad.ini:6:", "alpha"));
    CHECK(fails_with(HEAD "[run]\nsampler = grid\n[class.tetragonal]\ncif = c.cif\na_step = 0.1\n",
                     BF_ERR_INVALID, "c_step", "missing"));
    CHECK(fails_with(HEAD "[class.cubic]\ncif = c.cif\n", BF_ERR_INVALID, "count", "missing"));
    CHECK(fails_with(HEAD "[run]\nthis line has no equals sign\n", BF_ERR_PARSE, "bad.ini:4:",
                     NULL));
    CHECK(fails_with(HEAD "[run]\nseed = 1\nseed = 2\n", BF_ERR_PARSE, "bad.ini:5:", "twice"));
    CHECK(fails_with(HEAD "[run]\nseed = -1\n", BF_ERR_PARSE, "bad.ini:4:", "seed"));
    CHECK(fails_with("[run]\nseed = 1\n[class.cubic]\ncif = c.cif\ncount = 1\n", BF_ERR_INVALID,
                     "instprm", "missing"));
    CHECK(fails_with(HEAD "[run]\nseed = 1\n", BF_ERR_INVALID, "class", NULL));
    CHECK(fails_with(HEAD "[class.mono]\ncif = m.cif\ncount = 1\na = 3 4\nb = 3 4\nc = 3 4\n"
                          "alpha = 90\nbeta = 100\n",
                     BF_ERR_INVALID, "[class.mono] gamma:", "missing"));
    CHECK(fails_with(HEAD "[class.mono]\ncif = m.cif\ncount = 1\na = 3 4\nb = = c\nc = 5\n"
                          "alpha = 90\nbeta = 100\ngamma = 90\n",
                     BF_ERR_INVALID, "bad.ini:7:", "not a free parameter"));
    CHECK(fails_with(HEAD "[class.cubic]\ncif = c.cif\ncount = 1\nconstraint = a 4\n",
                     BF_ERR_PARSE, "bad.ini:6:", "constraint"));
    CHECK(fails_with(HEAD "[class.cubic]\ncif = c.cif\ncount = 1\nlabel = 0\n"
                          "[class.trigonal]\ncif = t.cif\ncount = 1\n",
                     BF_ERR_INVALID, "label", "cubic"));
    CHECK(fails_with(HEAD "[class.cubic]\ncif = c.cif\ncount = 1\n[class.cubic]\n", BF_ERR_PARSE,
                     "bad.ini:6:", "twice"));
    CHECK(fails_with("seed = 1\n" HEAD, BF_ERR_PARSE, "bad.ini:1:", "section"));
    CHECK(fails_with(HEAD "[sample]\nb_table = nist\n", BF_ERR_PARSE, "bad.ini:4:",
                     "[sample] b_table"));
}

BF_TEST(test_config_keeps_a_long_text_truncated_at_a_line_end)
{
    size_t big = 3 * sizeof(((bf_sample_config *)0)->config_text);
    char *text = malloc(big + 256);
    size_t n = (size_t)snprintf(text, 256, "%s[class.cubic]\ncif = c.cif\ncount = 1\n", HEAD);
    while (n + 40 < big)
        n += (size_t)sprintf(text + n, "; padding comment line %06zu\n", n);
    static bf_sample_config cfg;
    bf_error err = {0};
    bf_status st = bf_sample_config_parse(text, "long.ini", &cfg, &err);
    free(text);
    CHECK_MSG(st == BF_OK, "%s", err.msg);
    size_t len = strlen(cfg.config_text);
    CHECK(len < sizeof cfg.config_text);
    CHECK(strstr(cfg.config_text, "truncated") != NULL);
    CHECK(cfg.config_text[len - 1] == '\n');
}

BF_TEST(test_config_example_files_parse)
{
    static const char *files[] = {"examples/sample-small.ini", "examples/sample-grid-phased.ini"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", bf_test_source_dir(), files[i]);
        static bf_sample_config cfg;
        bf_error err = {0};
        bf_status st = bf_sample_config_read(path, &cfg, &err);
        CHECK_MSG(st == BF_OK, "%s", err.msg);
        CHECK(cfg.n_classes >= 1);
        struct stat sb;
        CHECK_MSG(stat(cfg.instprm_path, &sb) == 0, "%s", cfg.instprm_path);
        for (int k = 0; k < cfg.n_classes; k++)
            CHECK_MSG(stat(cfg.classes[k].cif_path, &sb) == 0, "%s", cfg.classes[k].cif_path);
    }
}
