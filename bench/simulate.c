/* bench/simulate.c — patterns/s of the powder simulator for the seed
 * workflow's three materials over their published ranges (TOF), and for the
 * tetragonal one on the three constant-wavelength instruments of
 * shared/reference/gsas2_cw/ (lab Cu Ka1/Ka2, synchrotron, CW neutron), on one
 * core and on all cores, next to GSAS-II's seconds per pattern measured on this
 * machine kind (docs/gsas2.md §12, gsas2_cw/README.md §9) as a speed-up ratio.
 *
 * usage: bench_simulate [--shared DIR] [--patterns N] [--threads T]
 * Uses the seed's CIFs and NOMAD bank-4 instrument from DIR/reference/seed-workflow
 * (default ../shared); falls back to braggflow's examples/ when absent. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "braggflow/data.h"

typedef struct {
    const char *class_name, *cod, *example_cif;
    double gsas2_s_per_pattern; /* GSAS-II, one core, this machine kind */
} material;

static const material materials[] = {
    {"cubic", "1001460", "examples/cif/NaCl.cif", 0.057},
    {"trigonal", "1522004", "examples/cif/LaAlO3-R-3c-rhombohedral.cif", 0.179},
    {"tetragonal", "1531431", "examples/cif/BaTiO3-P4mm.cif", 0.237},
};

/* GSAS-II's seconds per pattern, tetragonal 1531431 (gsas2_cw/README.md §9). */
typedef struct {
    const char *name, *instprm, *example_instprm;
    double tth_min, tth_max, tth_step;
    double gsas2_s_per_pattern;
} cw_instrument;

static const cw_instrument cw_instruments[] = {
    {"lab_xray_cuka12", "CuKa_lab_GSASII_default.instprm", "examples/instrument/cuka-lab.instprm",
     10.0, 120.0, 0.01, 0.078},
    {"synchrotron_0p4579A", "Synchrotron_0.4579A_11BM-like.instprm",
     "examples/instrument/synchrotron-0.4579A.instprm", 1.0, 40.0, 0.002, 0.174},
    {"cw_neutron_1p54A", "Neutron_CW_1.54A_HB2A-like.instprm",
     "examples/instrument/cw-neutron-1.54A.instprm", 5.0, 150.0, 0.05, 0.079},
};

static int file_exists(const char *p)
{
    FILE *f = fopen(p, "r");
    if (f)
        fclose(f);
    return f != NULL;
}

static double max_length(const bf_class_spec *cls)
{
    double m = 0;
    for (int p = BF_P_A; p <= BF_P_C; p++) {
        double v = cls->rule[p].kind == BF_PARAM_FREE ? cls->rule[p].hi : cls->rule[p].value;
        if (cls->rule[p].kind == BF_PARAM_TIED)
            v = cls->rule[cls->rule[p].tied_to].hi;
        m = v > m ? v : m;
    }
    return m;
}

/* Simulates all cells on `threads` threads; returns seconds. */
static double run(const bf_powder_sim *sim, const bf_cell *cells, int n, int threads, int L,
                  int *failures)
{
    int bad = 0;
    double t0 = bf_now_seconds();
#pragma omp parallel num_threads(threads) reduction(+ : bad)
    {
        double *y = malloc(sizeof *y * (size_t)L);
#pragma omp for schedule(dynamic, 4)
        for (int i = 0; i < n; i++) {
            bf_error err = {0};
            bad += bf_powder_sim_pattern(sim, &cells[i], y, &err) != BF_OK;
        }
        free(y);
    }
    *failures += bad;
    return bf_now_seconds() - t0;
}

/* Times one (material, instrument, grid) and prints the rest of its JSON object;
 * 0, or 1 when any pattern failed, 2 on a setup error. */
static int bench_one(const char *class_name, const char *cif, const bf_instrument *inst,
                     const bf_sample *sample, const bf_grid_spec *grid, int n, int threads,
                     double gsas2_s)
{
    bf_error err = {0};
    bf_class_spec cls;
    bf_crystal crystal = {0};
    bf_powder_sim *sim = NULL;
    bf_cell *cells = calloc((size_t)n, sizeof *cells);
    if (cells == NULL || bf_class_builtin(class_name, &cls, &err) != BF_OK ||
        bf_crystal_read_cif(cif, &crystal, &err) != BF_OK ||
        bf_sample_random(&cls, n, 12345, 0, cells, &err) != BF_OK) {
        fprintf(stderr, "bench_simulate: %s\n", err.msg);
        exit(2);
    }
    /* setup: reflection table + profile table, paid once per dataset class */
    double t_setup = bf_now_seconds();
    if (bf_powder_sim_create(&crystal, inst, sample, grid, max_length(&cls), &sim, &err) !=
        BF_OK) {
        /* reported in the JSON (e.g. a table braggflow lacks), the other entries still run */
        printf("\"error\": \"");
        for (const char *c = err.msg; *c; c++)
            printf(*c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
        printf("\"}");
        free(cells);
        bf_crystal_free(&crystal);
        return 1;
    }
    t_setup = bf_now_seconds() - t_setup;
    long n_refl = 0;
    for (int i = 0; i < n; i++) {
        bf_reflection *r = NULL;
        int nr = 0;
        if (bf_powder_sim_reflections(sim, &cells[i], &r, &nr, &err) == BF_OK)
            n_refl += nr;
        free(r);
    }
    int L = bf_powder_sim_grid(sim)->n, failures = 0;
    run(sim, cells, n < 50 ? n : 50, 1, L, &failures); /* warm-up */
    double t1 = run(sim, cells, n, 1, L, &failures);
    double tall = run(sim, cells, n, threads, L, &failures);
    printf("\"points\": %d, \"reflections_per_pattern\": %.1f,\n"
           "     \"setup_ms\": %.1f, \"us_per_pattern_1core\": %.2f, \"patterns_per_s_1core\": %.1f,\n"
           "     \"patterns_per_s_all_cores\": %.1f, \"failures\": %d,\n"
           "     \"gsas2_s_per_pattern_1core\": %.3f, \"speedup_vs_gsas2_1core\": %.0f}",
           L, (double)n_refl / n, 1e3 * t_setup, 1e6 * t1 / n, n / t1, n / tall, failures,
           gsas2_s, gsas2_s / (t1 / n));
    free(cells);
    bf_powder_sim_destroy(sim);
    bf_crystal_free(&crystal);
    return failures != 0;
}

int main(int argc, char **argv)
{
    const char *shared = "../shared";
    int n = 400, threads = bf_default_threads();
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--shared") == 0)
            shared = argv[i + 1];
        else if (strcmp(argv[i], "--patterns") == 0)
            n = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
    }
    char inst_path[4096];
    snprintf(inst_path, sizeof inst_path, "%s/reference/seed-workflow/NOMAD-Bank4-ExperimentMatch.instprm", shared);
    int use_seed = file_exists(inst_path);
    if (!use_seed)
        snprintf(inst_path, sizeof inst_path, "examples/instrument/nomad-like-bank4.instprm");

    bf_error err = {0};
    bf_instrument inst;
    if (bf_instrument_read(inst_path, &inst, &err) != BF_OK) {
        fprintf(stderr, "bench_simulate: %s\n", err.msg);
        return 2;
    }
    bf_sample sample;
    bf_sample_defaults(&sample);
    bf_grid_spec grid;
    bf_grid_spec_defaults(&grid);
    struct utsname u;
    uname(&u);

    printf("{\n  \"bench\": \"simulate\",\n  \"version\": \"%s\",\n  \"machine\": \"%s %s\",\n"
           "  \"threads_all\": %d,\n  \"patterns_per_material\": %d,\n  \"inputs\": \"%s\",\n"
           "  \"peer\": \"GSAS-II seconds per pattern, one core (shared/reference/gsas2/README.md, "
           "gsas2_cw/README.md)\",\n"
           "  \"materials\": [\n",
           BF_VERSION, u.sysname, u.machine, threads, n, use_seed ? "seed-workflow" : "examples");
    int status = 0;
    for (size_t m = 0; m < sizeof materials / sizeof materials[0]; m++) {
        const material *mat = &materials[m];
        char cif[4096];
        if (use_seed)
            snprintf(cif, sizeof cif, "%s/reference/seed-workflow/%s.cif", shared, mat->cod);
        else
            snprintf(cif, sizeof cif, "%s", mat->example_cif);
        printf("    {\"material\": \"%s\", \"cif\": \"%s\", ", mat->class_name, cif);
        status |= bench_one(mat->class_name, cif, &inst, &sample, &grid, n, threads,
                            mat->gsas2_s_per_pattern);
        printf("%s\n", m + 1 < sizeof materials / sizeof materials[0] ? "," : "");
    }
    printf("  ],\n  \"cw_instruments\": [\n");
    const material *tetragonal = &materials[2];
    for (size_t k = 0; k < sizeof cw_instruments / sizeof cw_instruments[0]; k++) {
        const cw_instrument *ci = &cw_instruments[k];
        char cif[4096], path[4096];
        if (use_seed) {
            snprintf(cif, sizeof cif, "%s/reference/seed-workflow/%s.cif", shared, tetragonal->cod);
            snprintf(path, sizeof path, "%s/reference/gsas2_cw/instprm/%s", shared, ci->instprm);
        } else {
            snprintf(cif, sizeof cif, "%s", tetragonal->example_cif);
            snprintf(path, sizeof path, "%s", ci->example_instprm);
        }
        bf_instrument cw;
        if (bf_instrument_read(path, &cw, &err) != BF_OK) {
            fprintf(stderr, "bench_simulate: %s\n", err.msg);
            return 2;
        }
        bf_grid_spec g = grid;
        g.tth_min_deg = ci->tth_min;
        g.tth_max_deg = ci->tth_max;
        g.tth_step_deg = ci->tth_step;
        printf("    {\"instrument\": \"%s\", \"instprm\": \"%s\", \"material\": \"%s\", ",
               ci->name, path, tetragonal->class_name);
        status |= bench_one(tetragonal->class_name, cif, &cw, &sample, &g, n, threads,
                            ci->gsas2_s_per_pattern);
        printf("%s\n", k + 1 < sizeof cw_instruments / sizeof cw_instruments[0] ? "," : "");
    }
    printf("  ]\n}\n");
    return status;
}
