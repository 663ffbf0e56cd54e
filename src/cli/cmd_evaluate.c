/* cli/cmd_evaluate.c — `braggflow evaluate`: a trained model's metrics on a dataset. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "braggflow/nn.h"
#include "cli/cli.h"

static const char *usage =
    "usage: braggflow evaluate --model model.safetensors --data test.h5 [--json]\n"
    "                          [--batch 512] [--threads N]\n\n"
    "Runs a checkpoint written by `braggflow train` over a dataset and prints the\n"
    "metrics: class loss (cross-entropy) and accuracy, the regression loss (Eq. 6),\n"
    "the MSE of the scaled lattice values next to the MSE of always predicting the\n"
    "set's mean, MAE and RMSE of a, c (Angstrom) and alpha (degrees), the mean\n"
    "predicted sigma^2 and the confusion matrix.\n\n"
    "options:\n"
    "  --model FILE        checkpoint (*.safetensors)\n"
    "  --data FILE.h5      dataset (either HDF5 layout)\n"
    "  --json              one JSON object instead of the table\n"
    "  --batch N           inference batch (default 512)\n"
    "  --threads N         threads (0 or absent: all cores)\n\n"
    "example:\n"
    "  braggflow evaluate --model model.safetensors --data test.h5 --json\n";

static void print_table(const bf_metrics *mt, const bf_checkpoint_info *info, const char *data)
{
    printf("%s: %ld patterns\n", data, mt->n);
    printf("  class loss      %.5f\n  accuracy        %.2f %%\n", mt->class_loss,
           100 * mt->accuracy);
    printf("  regression loss %.5f   (Eq. 6)\n  total loss      %.5f\n", mt->reg_loss, mt->loss);
    printf("  mse (scaled)    %.4e   (predicting the mean: %.4e)\n", mt->mse, mt->mse_baseline);
    printf("  mean sigma^2    %.4e\n", mt->mean_sigma2);
    printf("  %-8s %12s %12s\n", "param", "MAE", "RMSE");
    for (int k = 0; k < BF_N_TARGETS; k++)
        printf("  %-8s %8.4f %-3s %8.4f %-3s\n", bf_target_names[k], mt->mae[k],
               bf_target_units[k], mt->rmse[k], bf_target_units[k]);
    printf("  confusion (rows: true, columns: predicted)\n  %-12s", "");
    for (int c = 0; c < mt->n_classes; c++)
        printf(" %11.11s", info->class_names[c]);
    printf("\n");
    for (int r = 0; r < mt->n_classes; r++) {
        printf("  %-12.12s", info->class_names[r]);
        for (int c = 0; c < mt->n_classes; c++)
            printf(" %11ld", mt->confusion[r][c]);
        printf("\n");
    }
}

static void print_json(const bf_metrics *mt, const bf_checkpoint_info *info, const char *model,
                       const char *data)
{
    printf("{\"model\":\"%s\",\"data\":\"%s\",\"n\":%ld,\"accuracy\":%.9g,\"class_loss\":%.9g,"
           "\"reg_loss\":%.9g,\"loss\":%.9g,\"mse\":%.9g,\"mse_baseline\":%.9g,"
           "\"mean_sigma2\":%.9g,\"mae\":{",
           model, data, mt->n, mt->accuracy, mt->class_loss, mt->reg_loss, mt->loss, mt->mse,
           mt->mse_baseline, mt->mean_sigma2);
    for (int k = 0; k < BF_N_TARGETS; k++)
        printf("%s\"%s_%s\":%.9g", k ? "," : "", bf_target_names[k], bf_target_units[k],
               mt->mae[k]);
    printf("},\"rmse\":{");
    for (int k = 0; k < BF_N_TARGETS; k++)
        printf("%s\"%s_%s\":%.9g", k ? "," : "", bf_target_names[k], bf_target_units[k],
               mt->rmse[k]);
    printf("},\"classes\":[");
    for (int c = 0; c < mt->n_classes; c++)
        printf("%s\"%s\"", c ? "," : "", info->class_names[c]);
    printf("],\"confusion\":[");
    for (int r = 0; r < mt->n_classes; r++) {
        printf("%s[", r ? "," : "");
        for (int c = 0; c < mt->n_classes; c++)
            printf("%s%ld", c ? "," : "", mt->confusion[r][c]);
        printf("]");
    }
    printf("]}\n");
}

int cmd_evaluate(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, 0, OPT_MODEL}, {"data", required_argument, 0, OPT_DATA},
        {"json", no_argument, 0, OPT_JSON},         {"batch", required_argument, 0, OPT_BATCH},
        {"threads", required_argument, 0, OPT_THREADS}, {"help", no_argument, 0, OPT_HELP},
        {0, 0, 0, 0}};
    const char *model_path = NULL, *data_path = NULL;
    long batch = 512, threads = 0;
    int opt, rc = 0, json = 0;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, BF_CLI_OPTSTRING, longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
        case OPT_HELP: fputs(usage, stdout); return BF_EXIT_OK;
        case OPT_MODEL: model_path = optarg; break;
        case OPT_DATA: data_path = optarg; break;
        case OPT_JSON: json = 1; break;
        case OPT_BATCH: rc = bf_cli_parse_count("evaluate", "--batch", optarg, 1, 65536, &batch); break;
        case OPT_THREADS:
            rc = bf_cli_parse_count("evaluate", "--threads", optarg, 0, 4096, &threads);
            break;
        default: return bf_cli_bad_option("evaluate", opt == ':' ? ':' : '?', argv);
        }
    }
    if (rc)
        return rc;
    if (optind < argc)
        return bf_cli_usage_error("evaluate", "unexpected argument '%s'", argv[optind]);
    if (!model_path || !data_path)
        return bf_cli_usage_error("evaluate", "--model and --data are required");

    bf_error err = {0};
    bf_model *m = NULL;
    bf_checkpoint_info info;
    bf_dataset d = {0};
    float *x = NULL, *targets = NULL, *out = NULL;
    int32_t *labels = NULL;
    bf_backend_cpu()->set_threads((int)threads);
    bf_status st = bf_checkpoint_load(model_path, bf_backend_cpu(), &m, &info, NULL, NULL, &err);
    if (st == BF_OK)
        st = bf_dataset_read_h5(data_path, &d, &err);
    if (st == BF_OK)
        st = bf_structure_inputs(m, &d, data_path, &info.scaling, &x, &labels, &targets, &err);
    if (st == BF_OK && !(out = malloc(sizeof(float) * (size_t)d.n * m->n_out)))
        st = bf_error_set(&err, BF_ERR_NOMEM, "out of memory");
    if (st == BF_OK)
        st = bf_model_predict(m, x, d.n, (int)batch, out, &err);
    if (st == BF_OK) {
        bf_metrics mt;
        bf_structure_metrics(out, labels, targets, d.n, m->shape.n_classes, &info.scaling, &mt);
        if (json)
            print_json(&mt, &info, model_path, data_path);
        else
            print_table(&mt, &info, data_path);
    }
    free(x);
    free(labels);
    free(targets);
    free(out);
    bf_dataset_free(&d);
    bf_model_destroy(m);
    return st == BF_OK ? BF_EXIT_OK : bf_cli_fail(&err);
}
