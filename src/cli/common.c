/* cli/common.c — option parsing and set-up shared by the subcommands. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* Writes s with control characters escaped, so that a message quoting user
 * input (a file name, an option value) always stays on one line. */
static void put_one_line(FILE *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\r')
            fputs("\\r", out);
        else if (*p == '\t')
            fputc(' ', out);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\x%02x", *p);
        else
            fputc(*p, out);
    }
}

int bf_cli_fail(const bf_error *err)
{
    fputs("braggflow: ", stderr);
    put_one_line(stderr, err->msg[0] ? err->msg : bf_status_name(err->code));
    fputc('\n', stderr);
    return BF_EXIT_FAIL;
}

int bf_cli_device(const char *cmd, const char *text, const bf_backend **out)
{
    *out = bf_backend_cpu();
    if (!text || !strcmp(text, "cpu"))
        return 0;
    int ok = !strcmp(text, "cuda");
    if (!ok && !strncmp(text, "cuda:", 5)) { /* 1 to 4 digits (text + 5 exists only here) */
        size_t n = strspn(text + 5, "0123456789");
        ok = n >= 1 && n <= 4 && !text[5 + n];
    }
    if (!ok)
        return bf_cli_usage_error(cmd, "--device: '%s' is not cpu, cuda or cuda:N", text);
    bf_error err = {0};
    if (bf_backend_get(text, out, &err) != BF_OK) {
        *out = NULL;
        bf_error_prefix(&err, "%s --device %s", cmd, text);
        return bf_cli_fail(&err);
    }
    return 0;
}

int bf_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "braggflow %s: ", cmd);
    put_one_line(stderr, msg);
    fprintf(stderr, " (see braggflow %s --help)\n", cmd);
    return BF_EXIT_FAIL;
}

int bf_cli_bad_option(const char *cmd, int opt, char **argv)
{
    /* A short option is named by optopt; a long one is the argument getopt
     * just stepped over (GNU getopt leaves optind past it in both cases). */
    char name[256];
    if (optopt > 0 && optopt < 128)
        snprintf(name, sizeof name, "-%c", optopt);
    else
        snprintf(name, sizeof name, "%s", optind > 0 ? argv[optind - 1] : "?");
    if (opt == ':') {
        char *eq = strchr(name, '=');
        if (eq)
            *eq = 0;
        return bf_cli_usage_error(cmd, "option '%s' needs a value", name);
    }
    return bf_cli_usage_error(cmd, "unknown option '%s'", name);
}

bf_status bf_cli_parse_number(const char *opt, const char *text, double *out, bf_error *err)
{
    if (bf_parse_double(text, out) != 0)
        return bf_error_set(err, BF_ERR_PARSE, "%s: '%s' is not a number", opt, text);
    return BF_OK;
}

int bf_cli_parse_count(const char *cmd, const char *opt, const char *text, long lo, long hi,
                       long *out)
{
    if (bf_parse_long(text, out) != 0 || *out < lo || *out > hi)
        return bf_cli_usage_error(cmd, "%s: '%s' is not a whole number in %ld..%ld", opt, text,
                                  lo, hi);
    return 0;
}

int bf_cli_parse_int(const char *cmd, const char *opt, const char *text, int lo, int hi, int *out)
{
    long v;
    int rc = bf_cli_parse_count(cmd, opt, text, lo, hi, &v);
    if (rc == 0)
        *out = (int)v;
    return rc;
}

int bf_cli_parse_positive(const char *cmd, const char *opt, const char *text, double hi,
                          double *out)
{
    if (bf_parse_double(text, out) != 0 || !(*out > 0) || *out > hi)
        return bf_cli_usage_error(cmd, "%s: '%s' is not a number in (0, %g]", opt, text, hi);
    return 0;
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
    bf_grid_spec_defaults(&a->grid);
    bf_sample_defaults(&a->sample);
    a->sample.scale = 1000.0; /* the documented default, as `sample` and the seed workflow */
}

/* Handles one shared option: 1 if consumed, 0 if not one of them, -1 on a bad
 * value (err set). */
static int sim_option(bf_cli_sim_args *a, int opt, const char *arg, bf_error *err)
{
    switch (opt) {
    case OPT_CIF: a->cif_path = arg; return 1;
    case OPT_BLOCK: a->cif_block = arg; return 1;
    case OPT_INSTPRM: a->instprm_path = arg; return 1;
    case OPT_CELL: a->cell_text = arg; return 1;
    case OPT_TOF_MIN: return bf_cli_parse_number("--tof-min", arg, &a->grid.tmin_ms, err) ? -1 : 1;
    case OPT_TOF_MAX: return bf_cli_parse_number("--tof-max", arg, &a->grid.tmax_ms, err) ? -1 : 1;
    case OPT_TOF_STEP: return bf_cli_parse_number("--tof-step", arg, &a->grid.tstep_rel, err) ? -1 : 1;
    case OPT_TTH_MIN: return bf_cli_parse_number("--tth-min", arg, &a->grid.tth_min_deg, err) ? -1 : 1;
    case OPT_TTH_MAX: return bf_cli_parse_number("--tth-max", arg, &a->grid.tth_max_deg, err) ? -1 : 1;
    case OPT_TTH_STEP: return bf_cli_parse_number("--tth-step", arg, &a->grid.tth_step_deg, err) ? -1 : 1;
    case OPT_FPRIME:
        return bf_fprime_overrides_parse(arg, "--fprime", a->sample.fprime, &a->sample.n_fprime,
                                         err) == BF_OK ? 1 : -1;
    case OPT_B_TABLE:
        if (bf_b_table_parse(arg, &a->sample.b_table) != 0) {
            bf_error_set(err, BF_ERR_INVALID, "--b-table: '%s' (expected gsas2 or sears)", arg);
            return -1;
        }
        return 1;
    case OPT_SCALE:
        if (bf_cli_parse_number("--scale", arg, &a->sample.scale, err) != BF_OK)
            return -1;
        if (!(a->sample.scale > 0)) { /* as the INI's scale: a negative one flips the pattern */
            bf_error_set(err, BF_ERR_INVALID, "--scale: %s must be > 0", arg);
            return -1;
        }
        return 1;
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
    if ((st = bf_crystal_read_cif_block(a->cif_path, a->cif_block, &crystal, err)) != BF_OK)
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

int bf_cli_sim_parse(const char *cmd, const char *usage, const struct option *longopts, int argc,
                     char **argv, bf_cli_sim_args *a)
{
    bf_error err = {0};
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, BF_CLI_OPTSTRING, longopts, NULL)) != -1) {
        if (opt == '?' || opt == ':')
            return bf_cli_bad_option(cmd, opt, argv);
        if (opt == OPT_HELP || opt == 'h') {
            fputs(usage, stdout);
            return BF_EXIT_OK;
        }
        if (opt == OPT_OUT) {
            a->out_path = optarg;
            continue;
        }
        int used = sim_option(a, opt, optarg, &err);
        if (used < 0)
            return bf_cli_fail(&err);
        if (used == 0)
            return bf_cli_bad_option(cmd, '?', argv);
    }
    if (optind < argc)
        return bf_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return -1;
}
