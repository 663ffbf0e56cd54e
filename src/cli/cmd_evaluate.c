/* cli/cmd_evaluate.c — `braggflow evaluate`: a trained model's metrics on a dataset. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "braggflow/nn.h"
#include "cli/cli.h"

static const char *usage =
    "usage: braggflow evaluate --model model.safetensors --data test.h5 [--json]\n"
    "                          [--batch 512] [--threads N] [--device D]\n\n"
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
    "  --threads N         threads (0 or absent: all cores)\n"
    BF_CLI_DEVICE_HELP
    "\n"
    "example:\n"
    "  braggflow evaluate --model model.safetensors --data test.h5 --json\n";

static void print_table(const bf_metrics *mt, const bf_structure_meta *info, const char *data)
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

static void print_json(const bf_metrics *mt, const bf_structure_meta *info, const char *model,
                       const char *data)
{
    char q[8192];
    printf("{\"model\":%s", bf_json_quote(model, q, sizeof q));
    printf(",\"data\":%s", bf_json_quote(data, q, sizeof q));
    printf(",\"n\":%ld,\"accuracy\":%.9g,\"class_loss\":%.9g,"
           "\"reg_loss\":%.9g,\"loss\":%.9g,\"mse\":%.9g,\"mse_baseline\":%.9g,"
           "\"mean_sigma2\":%.9g,\"mae\":{",
           mt->n, mt->accuracy, mt->class_loss, mt->reg_loss, mt->loss, mt->mse,
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
        printf("%s%s", c ? "," : "", bf_json_quote(info->class_names[c], q, sizeof q));
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
    bf_cli_inference a;
    int rc = bf_cli_inference_parse("evaluate", usage, argc, argv, &a);
    if (rc >= 0)
        return rc;
    bf_error err = {0};
    bf_status st = bf_cli_inference_run(&a, 1, &err);
    if (st == BF_OK) {
        bf_metrics mt;
        bf_structure_metrics(a.out, a.labels, a.targets, a.d.n, a.meta.n_classes,
                             &a.meta.scaling, &mt);
        if (a.json)
            print_json(&mt, &a.meta, a.model_path, a.data_path);
        else
            print_table(&mt, &a.meta, a.data_path);
    }
    bf_cli_inference_free(&a);
    return st == BF_OK ? BF_EXIT_OK : bf_cli_fail(&err);
}
