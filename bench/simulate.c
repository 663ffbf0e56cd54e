/* bench/simulate.c — patterns/s of the TOF powder simulator for the seed
 * workflow's three materials over their published ranges, on one core and on
 * all cores, next to GSAS-II's seconds per pattern measured on this machine
 * kind (docs/gsas2.md §12, from shared/reference/gsas2/README.md) as a speed-up ratio.
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
    bf_tof_grid_spec grid;
    bf_tof_grid_spec_defaults(&grid);
    struct utsname u;
    uname(&u);

    printf("{\n  \"bench\": \"simulate\",\n  \"version\": \"%s\",\n  \"machine\": \"%s %s\",\n"
           "  \"threads_all\": %d,\n  \"patterns_per_material\": %d,\n  \"inputs\": \"%s\",\n"
           "  \"peer\": \"GSAS-II seconds per pattern, one core (shared/reference/gsas2/README.md)\",\n"
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
        bf_class_spec cls;
        bf_crystal crystal = {0};
        bf_powder_sim *sim = NULL;
        bf_cell *cells = calloc((size_t)n, sizeof *cells);
        if (bf_class_builtin(mat->class_name, &cls, &err) != BF_OK ||
            bf_crystal_read_cif(cif, &crystal, &err) != BF_OK ||
            bf_sample_random(&cls, n, 12345, 0, cells, &err) != BF_OK) {
            fprintf(stderr, "bench_simulate: %s\n", err.msg);
            return 2;
        }
        /* setup: reflection table + profile table, paid once per dataset class */
        double t_setup = bf_now_seconds();
        if (bf_powder_sim_create(&crystal, &inst, &sample, &grid, max_length(&cls), &sim, &err) !=
            BF_OK) {
            fprintf(stderr, "bench_simulate: %s\n", err.msg);
            return 2;
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
        double us1 = 1e6 * t1 / n;
        printf("    {\"material\": \"%s\", \"cif\": \"%s\", \"reflections_per_pattern\": %.1f,\n"
               "     \"setup_ms\": %.1f, \"us_per_pattern_1core\": %.2f, \"patterns_per_s_1core\": %.1f,\n"
               "     \"patterns_per_s_all_cores\": %.1f, \"failures\": %d,\n"
               "     \"gsas2_s_per_pattern_1core\": %.3f, \"speedup_vs_gsas2_1core\": %.0f}%s\n",
               mat->class_name, cif, (double)n_refl / n, 1e3 * t_setup, us1, n / t1, n / tall, failures,
               mat->gsas2_s_per_pattern, mat->gsas2_s_per_pattern / (t1 / n),
               m + 1 < sizeof materials / sizeof materials[0] ? "," : "");
        status |= failures != 0;
        free(cells);
        bf_powder_sim_destroy(sim);
        bf_crystal_free(&crystal);
    }
    printf("  ]\n}\n");
    return status;
}
