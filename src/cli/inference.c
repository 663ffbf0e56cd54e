/* cli/inference.c — what `evaluate` and `predict` share: the command line
 * (--model, --data, --csv or --pattern [--format], --batch, --threads, --device) and
 * running a checkpoint over the patterns. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int bf_cli_inference_parse(const char *cmd, const char *usage, int argc, char **argv,
                           bf_cli_inference *a)
{
    static const struct option longopts[] = {
        {"model", required_argument, 0, OPT_MODEL}, {"data", required_argument, 0, OPT_DATA},
        {"csv", required_argument, 0, OPT_CSV},     {"json", no_argument, 0, OPT_JSON},
        {"pattern", required_argument, 0, OPT_PATTERN},
        {"format", required_argument, 0, OPT_PAT_FORMAT},
        {"batch", required_argument, 0, OPT_BATCH}, {"threads", required_argument, 0, OPT_THREADS},
        {"device", required_argument, 0, OPT_DEVICE},
        {"help", no_argument, 0, OPT_HELP},         {0, 0, 0, 0}};
    const char *device = NULL;
    int takes_csv = !strcmp(cmd, "predict"), takes_json = !strcmp(cmd, "evaluate");
    memset(a, 0, sizeof *a);
    a->batch = 512;
    int opt, rc = 0;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, BF_CLI_OPTSTRING, longopts, NULL)) != -1) {
        if (((opt == OPT_CSV || opt == OPT_PATTERN || opt == OPT_PAT_FORMAT) && !takes_csv) ||
            (opt == OPT_JSON && !takes_json))
            opt = '?';
        switch (opt) {
        case 'h':
        case OPT_HELP: fputs(usage, stdout); return BF_EXIT_OK;
        case OPT_MODEL: a->model_path = optarg; break;
        case OPT_DATA: a->data_path = optarg; break;
        case OPT_CSV: a->csv_path = optarg; break;
        case OPT_PATTERN: a->pattern_path = optarg; break;
        case OPT_PAT_FORMAT:
            if (bf_measured_format_parse(optarg, &a->format))
                return bf_cli_usage_error(cmd, "--format: '%s' is not xy, xye, gsa, fxye or csv",
                                          optarg);
            break;
        case OPT_JSON: a->json = 1; break;
        case OPT_DEVICE: device = optarg; break;
        case OPT_BATCH:
            rc = bf_cli_parse_count(cmd, "--batch", optarg, 1, 65536, &a->batch);
            break;
        case OPT_THREADS:
            rc = bf_cli_parse_count(cmd, "--threads", optarg, 0, 4096, &a->threads);
            break;
        default: return bf_cli_bad_option(cmd, opt == ':' ? ':' : '?', argv);
        }
    }
    if (rc)
        return rc;
    if (optind < argc)
        return bf_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    int inputs = !!a->data_path + !!a->csv_path + !!a->pattern_path;
    if (takes_csv && (!a->model_path || inputs != 1))
        return bf_cli_usage_error(cmd,
                                  "--model and one of --data, --csv or --pattern are required");
    if (a->format != BF_MEAS_AUTO && !a->pattern_path)
        return bf_cli_usage_error(cmd, "--format goes with --pattern");
    if (!takes_csv && (!a->model_path || !a->data_path))
        return bf_cli_usage_error(cmd, "--model and --data are required");
    if ((rc = bf_cli_device(cmd, device, &a->be)) != 0)
        return rc;
    return -1;
}

/* --pattern: the measured file regridded onto the model's recorded grid (one pattern,
 * as --csv gives). */
static bf_status read_measured(bf_cli_inference *a, bf_error *err)
{
    const bf_x_grid *g = &a->meta.grid;
    if (!a->meta.has_grid)
        return bf_error_set(err, BF_ERR_INVALID, "%s: the checkpoint does not record the grid it "
                            "was trained on (trained before braggflow recorded it): --pattern "
                            "needs that; retrain, or give --csv or --data on the model's grid",
                            a->model_path);
    if (g->spacing == BF_GRID_ARRAY)
        return bf_error_set(err, BF_ERR_INVALID, "%s: the model's grid is neither linear nor "
                            "geometric (x_sha256 %.16s...): a measured pattern cannot be "
                            "regridded onto it; give --data on that grid", a->model_path,
                            g->sha256);
    if (g->n != a->m->input_len)
        return bf_error_set(err, BF_ERR_INVALID, "%s: x_count %d is not the model's input "
                            "length %d", a->model_path, g->n, a->m->input_len);
    bf_measured ms = {0};
    double *x = malloc(sizeof(double) * (size_t)g->n);
    float *y = malloc(sizeof(float) * (size_t)g->n);
    bf_status st = x && y ? bf_x_grid_values(g, x, err)
                          : bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    if (st == BF_OK)
        st = bf_measured_read(a->pattern_path, a->format, &g->unit, &ms, err);
    if (st == BF_OK)
        st = bf_measured_to_grid(&ms, a->pattern_path, x, g->n, g->unit, y, NULL, err);
    bf_measured_free(&ms);
    free(x);
    if (st != BF_OK) {
        free(y);
        return st;
    }
    memset(&a->d, 0, sizeof a->d);
    a->d.n = 1;
    a->d.length = g->n;
    a->d.patterns = y;
    return BF_OK;
}

bf_status bf_cli_inference_run(bf_cli_inference *a, int with_labels, bf_error *err)
{
    const char *name = a->data_path ? a->data_path : a->csv_path ? a->csv_path : a->pattern_path;
    const bf_backend *be = a->be ? a->be : bf_backend_cpu();
    be->set_threads((int)a->threads);
    bf_backend_cpu()->set_threads((int)a->threads); /* the host side (scaling) either way */
    bf_status st = bf_structure_load(a->model_path, be, &a->m, &a->info,
                                     &a->meta, err);
    if (st == BF_OK)
        st = a->data_path  ? bf_dataset_read_h5(a->data_path, &a->d, err)
             : a->csv_path ? bf_pattern_csv_read(a->csv_path, &a->d, err)
                           : read_measured(a, err);
    if (st == BF_OK)
        st = bf_structure_inputs(a->m, &a->d, name, &a->meta.scaling, &a->x,
                                 with_labels ? &a->labels : NULL,
                                 with_labels ? &a->targets : NULL, err);
    if (st == BF_OK && !(a->out = malloc(sizeof(float) * (size_t)a->d.n * a->m->n_out)))
        st = bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    if (st == BF_OK)
        st = bf_model_predict(a->m, a->x, a->d.n, (int)a->batch, a->out, err);
    return st;
}

void bf_cli_inference_free(bf_cli_inference *a)
{
    free(a->x);
    free(a->labels);
    free(a->targets);
    free(a->out);
    bf_dataset_free(&a->d);
    bf_model_destroy(a->m);
}
