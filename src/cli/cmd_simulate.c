/* cli/cmd_simulate.c — `braggflow simulate`: one pattern to CSV or HDF5. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/data.h"
#include "cli/cli.h"

static const char *usage =
    "usage: braggflow simulate --cif FILE --instprm FILE --cell \"a b c alpha beta gamma\"\n"
    "                          [--tof-min 1.36 --tof-max 18.919 --tof-step 0.0009381]\n"
    "                          [--tth-min 10 --tth-max 120 --tth-step 0.01]\n"
    "                          [--scale 1000] --out FILE\n\n"
    "Simulates one GSAS-II-compatible powder pattern on GSAS-II's grid: TOF neutrons\n"
    "(instrument Type PNT; L = 2806 bin centres for the default settings, intensity 0\n"
    "below d = 0.4 A), or constant-wavelength X-rays (PXC: one wavelength or Ka1/Ka2)\n"
    "or neutrons (PNC) on a 2theta grid (the --tth-* options).\n\n"
    "options:\n" BF_CLI_SIM_HELP
    "  --out FILE          *.csv: header tof_us,intensity (TOF) or two_theta_deg,intensity\n"
    "                      (CW) then one line per point\n"
    "                      ('-' writes CSV to stdout); *.h5: braggflow HDF5 layout\n\n"
    "example:\n"
    "  braggflow simulate --cif examples/cif/NaCl.cif --instprm examples/instrument/nomad-like-bank4.instprm \\\n"
    "      --cell \"5.64 5.64 5.64 90 90 90\" --out nacl.csv\n"
    "  braggflow simulate --cif examples/cif/NaCl.cif --instprm examples/instrument/cuka-lab.instprm \\\n"
    "      --cell \"5.64 5.64 5.64 90 90 90\" --tth-min 10 --tth-max 120 --tth-step 0.01 --out nacl-xray.csv\n";

static bf_status write_csv(FILE *fp, const bf_grid *g, const double *y)
{
    fprintf(fp, "%s,intensity\n", bf_x_unit_name(g->unit));
    for (int i = 0; i < g->n; i++)
        fprintf(fp, "%.6f,%.9g\n", g->x[i], y[i]);
    return ferror(fp) ? BF_ERR_IO : BF_OK;
}

static bf_status write_h5(const char *path, const bf_cli_sim_args *a, const bf_cell *cell,
                          const bf_grid *g, const double *y, bf_error *err)
{
    bf_dataset d = {0};
    float *pattern = malloc(sizeof *pattern * (size_t)g->n);
    double cells[6] = {cell->a, cell->b, cell->c, cell->alpha, cell->beta, cell->gamma};
    int32_t label = -1;
    if (!pattern)
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    for (int i = 0; i < g->n; i++)
        pattern[i] = (float)y[i];
    d.n = 1;
    d.length = g->n;
    d.patterns = pattern;
    d.x = g->x;
    d.x_unit = g->unit;
    d.cells = cells;
    d.labels = &label;
    d.n_classes = 1;
    snprintf(d.class_names[0], sizeof d.class_names[0], "%s", "single");
    snprintf(d.sampler, sizeof d.sampler, "%s", "single");
    bf_status st = bf_sha256_file_hex(a->instprm_path, d.instprm_sha256, err);
    if (st == BF_OK)
        st = bf_sha256_file_hex(a->cif_path, d.cif_sha256[0], err);
    if (st == BF_OK) {
        snprintf(d.config_text, sizeof d.config_text,
                 "simulate --cif %s%s%s --instprm %s --cell \"%s\" --scale %g", a->cif_path,
                 a->cif_block ? " --block " : "", a->cif_block ? a->cif_block : "",
                 a->instprm_path, a->cell_text, a->sample.scale);
        st = bf_dataset_write_h5(&d, path, BF_LAYOUT_BRAGGFLOW, err);
    }
    free(pattern);
    return st;
}

int cmd_simulate(int argc, char **argv)
{
    static const struct option longopts[] = {BF_CLI_SIM_OPTIONS,
                                             {"out", required_argument, 0, OPT_OUT},
                                             {0, 0, 0, 0}};
    bf_cli_sim_args a;
    bf_cli_sim_args_defaults(&a);
    int status = bf_cli_sim_parse("simulate", usage, longopts, argc, argv, &a);
    if (status >= 0)
        return status;
    bf_error err = {0};
    const char *out = a.out_path;
    if (!a.cif_path || !a.instprm_path || !a.cell_text || !out)
        return bf_cli_usage_error("simulate", "--cif, --instprm, --cell and --out are required");
    int to_h5 = bf_path_has_suffix(out, ".h5") || bf_path_has_suffix(out, ".hdf5");
    if (!to_h5 && strcmp(out, "-") != 0 && !bf_path_has_suffix(out, ".csv"))
        return bf_cli_usage_error("simulate", "--out must end in .csv or .h5 (or be '-')");

    bf_cell cell;
    bf_powder_sim *sim = NULL;
    double *y = NULL;
    bf_atomic_file af = {0};
    bf_status st = bf_cli_sim_open(&a, &cell, &sim, &err);
    if (st != BF_OK)
        goto cleanup;
    const bf_grid *g = bf_powder_sim_grid(sim);
    y = malloc(sizeof *y * (size_t)g->n);
    if (!y) {
        st = bf_error_set(&err, BF_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if ((st = bf_powder_sim_pattern(sim, &cell, y, &err)) != BF_OK)
        goto cleanup;
    if (to_h5) {
        st = write_h5(out, &a, &cell, g, y, &err);
    } else if (strcmp(out, "-") == 0) {
        st = write_csv(stdout, g, y);
        if (st != BF_OK || fflush(stdout) != 0)
            st = bf_error_set(&err, BF_ERR_IO, "stdout: write failed");
    } else {
        if ((st = bf_atomic_begin(&af, out, 1, &err)) != BF_OK)
            goto cleanup;
        if ((st = write_csv(af.fp, g, y)) != BF_OK) {
            bf_error_set(&err, BF_ERR_IO, "%s: write failed", out);
            goto cleanup;
        }
        st = bf_atomic_commit(&af, &err);
    }
cleanup:
    bf_atomic_abort(&af);
    free(y);
    bf_powder_sim_destroy(sim);
    return st == BF_OK ? BF_EXIT_OK : bf_cli_fail(&err);
}
