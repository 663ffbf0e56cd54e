/* cli/common.c — option parsing and set-up shared by the subcommands. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int bf_cli_fail(const bf_error *err)
{
    fprintf(stderr, "braggflow: %s\n", err->msg[0] ? err->msg : bf_status_name(err->code));
    return BF_EXIT_FAIL;
}

int bf_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "braggflow %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see braggflow %s --help)\n", cmd);
    va_end(ap);
    return BF_EXIT_FAIL;
}

bf_status bf_cli_parse_number(const char *opt, const char *text, double *out, bf_error *err)
{
    if (bf_parse_double(text, out) != 0)
        return bf_error_set(err, BF_ERR_PARSE, "%s: '%s' is not a number", opt, text);
    return BF_OK;
}

bf_status bf_cli_parse_cell(const char *text, bf_cell *cell, bf_error *err)
{
    double v[6];
    int n = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save = NULL, *tok = strtok_r(buf, " ,\t", &save); tok;
         tok = strtok_r(NULL, " ,\t", &save)) {
        if (n == 6 || bf_parse_double(tok, &v[n]) != 0)
            return bf_error_set(err, BF_ERR_PARSE,
                                "--cell: expected six numbers \"a b c alpha beta gamma\", got \"%s\"",
                                text);
        n++;
    }
    if (n != 6)
        return bf_error_set(err, BF_ERR_PARSE,
                            "--cell: expected six numbers \"a b c alpha beta gamma\", got \"%s\"",
                            text);
    *cell = (bf_cell){v[0], v[1], v[2], v[3], v[4], v[5]};
    return bf_cell_validate(cell, "--cell", err);
}

void bf_cli_sim_args_defaults(bf_cli_sim_args *a)
{
    memset(a, 0, sizeof *a);
    bf_tof_grid_spec_defaults(&a->grid);
    bf_sample_defaults(&a->sample);
}

int bf_cli_sim_option(bf_cli_sim_args *a, int opt, const char *arg, bf_error *err)
{
    switch (opt) {
    case OPT_CIF: a->cif_path = arg; return 1;
    case OPT_INSTPRM: a->instprm_path = arg; return 1;
    case OPT_CELL: a->cell_text = arg; return 1;
    case OPT_TOF_MIN: return bf_cli_parse_number("--tof-min", arg, &a->grid.tmin_ms, err) ? -1 : 1;
    case OPT_TOF_MAX: return bf_cli_parse_number("--tof-max", arg, &a->grid.tmax_ms, err) ? -1 : 1;
    case OPT_TOF_STEP: return bf_cli_parse_number("--tof-step", arg, &a->grid.tstep_rel, err) ? -1 : 1;
    case OPT_SCALE: return bf_cli_parse_number("--scale", arg, &a->sample.scale, err) ? -1 : 1;
    }
    return 0;
}

bf_status bf_cli_sim_open(const bf_cli_sim_args *a, bf_cell *cell, bf_powder_sim **sim,
                          bf_error *err)
{
    bf_crystal crystal = {0};
    bf_instrument inst;
    bf_status st = bf_cli_parse_cell(a->cell_text, cell, err);
    if (st != BF_OK)
        return st;
    if ((st = bf_crystal_read_cif(a->cif_path, &crystal, err)) != BF_OK)
        return st;
    if ((st = bf_instrument_read(a->instprm_path, &inst, err)) != BF_OK)
        goto cleanup;
    double longest = cell->a > cell->b ? cell->a : cell->b;
    longest = longest > cell->c ? longest : cell->c;
    st = bf_powder_sim_create(&crystal, &inst, &a->sample, &a->grid, longest, sim, err);
cleanup:
    bf_crystal_free(&crystal);
    return st;
}
