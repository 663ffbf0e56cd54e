/* cli/cmd_predict.c — `braggflow predict`: class and lattice parameters of patterns. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/nn.h"
#include "cli/cli.h"

static const char *usage =
    "usage: braggflow predict --model model.safetensors\n"
    "                         (--data X.h5 | --csv pattern.csv | --pattern FILE\n"
    "                          [--format xy|xye|gsa|fxye|csv]) [--batch 512] [--threads N]\n"
    "                         [--device D]\n\n"
    "Prints one CSV line per pattern: the predicted class, the class probabilities\n"
    "(softmax), and a, c (Angstrom) and alpha (degrees), each with its predicted\n"
    "standard deviation sigma (the model's heteroscedastic uncertainty, seed 001\n"
    "Eq. 6, back in physical units). Patterns are min-max scaled as in training and\n"
    "must have the model's length (the grid it was trained on).\n\n"
    "options:\n"
    "  --model FILE        checkpoint (*.safetensors)\n"
    "  --data FILE.h5      patterns from a dataset (either HDF5 layout; labels unused)\n"
    "  --csv FILE          one pattern: a column of intensities, or tof,intensity\n"
    "                      columns as `braggflow simulate --out x.csv` writes\n"
    "                      (a header line and '#' comments are skipped)\n"
    "  --pattern FILE      one measured pattern, regridded onto the grid the model\n"
    "                      was trained on (recorded in the checkpoint) by linear\n"
    "                      interpolation; grid points outside the measured x range\n"
    "                      are 0. Formats: xy / xye (x y [esd] columns, blanks or\n"
    "                      commas, '#' '!' comments), GSAS .gsa/.gss/.fxye (first\n"
    "                      BANK: CONST, SLOG or RALF; FXYE, FXY, ESD or STD records;\n"
    "                      CONST 2theta in centidegrees), csv (simulate's; header\n"
    "                      tof_us or two_theta_deg). x is TOF in us or 2theta in\n"
    "                      degrees: from the file where it says, else the model's\n"
    "  --format F          xy, xye, gsa, fxye or csv (default: from the extension:\n"
    "                      .xy .dat .txt .xye .gsa .gss .gsas .raw .fxye .csv)\n"
    "  --batch N           inference batch (default 512)\n"
    "  --threads N         threads (0 or absent: all cores)\n"
    BF_CLI_DEVICE_HELP
    "\n"
    "example:\n"
    "  braggflow simulate --cif examples/cif/NaCl.cif \\\n"
    "      --instprm examples/instrument/nomad-like-bank4.instprm \\\n"
    "      --cell \"4.2 4.2 4.2 90 90 90\" --out p.csv\n"
    "  braggflow predict --model model.safetensors --csv p.csv\n"
    "  braggflow predict --model model.safetensors --pattern measured.xye\n";

static void print_predictions(const bf_model *m, const bf_structure_meta *info,
                              const float *out, long n)
{
    int C = info->n_classes;
    printf("index,class");
    for (int c = 0; c < C; c++)
        printf(",p_%s", info->class_names[c]);
    for (int k = 0; k < BF_N_TARGETS; k++)
        printf(",%s_%s,sigma_%s_%s", bf_target_names[k], bf_target_units[k], bf_target_names[k],
               bf_target_units[k]);
    printf("\n");
    for (long i = 0; i < n; i++) {
        double p[BF_MAX_MODEL_CLASSES], value[BF_N_TARGETS], sigma[BF_N_TARGETS];
        int best = bf_structure_decode(info, out + (size_t)i * m->n_out, p, value, sigma);
        printf("%ld,%s", i, info->class_names[best]);
        for (int c = 0; c < C; c++)
            printf(",%.4f", p[c]);
        for (int k = 0; k < BF_N_TARGETS; k++)
            printf(",%.4f,%.4f", value[k], sigma[k]);
        printf("\n");
    }
}

int cmd_predict(int argc, char **argv)
{
    bf_cli_inference a;
    int rc = bf_cli_inference_parse("predict", usage, argc, argv, &a);
    if (rc >= 0)
        return rc;
    bf_error err = {0};
    bf_status st = bf_cli_inference_run(&a, 0, &err);
    if (st == BF_OK)
        print_predictions(a.m, &a.meta, a.out, a.d.n);
    bf_cli_inference_free(&a);
    return st == BF_OK ? BF_EXIT_OK : bf_cli_fail(&err);
}
