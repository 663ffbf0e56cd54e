/* cli/cmd_predict.c — `braggflow predict`: class and lattice parameters of patterns. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/nn.h"
#include "cli/cli.h"

static const char *usage =
    "usage: braggflow predict --model model.safetensors (--data X.h5 | --csv pattern.csv)\n"
    "                         [--batch 512] [--threads N]\n\n"
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
    "  --batch N           inference batch (default 512)\n"
    "  --threads N         threads (0 or absent: all cores)\n\n"
    "example:\n"
    "  braggflow simulate --cif examples/cif/NaCl.cif \\\n"
    "      --instprm examples/instrument/nomad-like-bank4.instprm \\\n"
    "      --cell \"4.2 4.2 4.2 90 90 90\" --out p.csv\n"
    "  braggflow predict --model model.safetensors --csv p.csv\n";

/* Reads the last numeric column of each data line into a new pattern. */
static bf_status read_csv_pattern(const char *path, bf_dataset *d, bf_error *err)
{
    char *text = NULL;
    size_t len = 0;
    bf_status st = bf_read_file(path, &text, &len, err);
    if (st != BF_OK)
        return st;
    size_t cap = 4096;
    float *v = malloc(sizeof(float) * cap);
    int n = 0, line = 0, columns = 0;
    if (!v) {
        free(text);
        return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", path);
    }
    for (char *save = NULL, *ln = strtok_r(text, "\n", &save); st == BF_OK && ln;
         ln = strtok_r(NULL, "\n", &save)) {
        line++;
        ln[strcspn(ln, "\r#")] = 0;
        if (!ln[strspn(ln, " \t,")])
            continue;
        double x[2];
        int k = 0;
        char *end = ln;
        for (char *p = ln; k < 2; p = end) {
            p += strspn(p, " \t,");
            if (!*p)
                break;
            x[k] = strtod(p, &end);
            if (end == p)
                break;
            k++;
        }
        end += strspn(end, " \t,");
        if (k == 0 && n == 0)
            continue; /* header lines before the data */
        if (k == 0 || *end)
            st = bf_error_set(err, BF_ERR_PARSE, "%s:%d: expected 1 or 2 numbers per line",
                              path, line);
        else if (columns && k != columns)
            st = bf_error_set(err, BF_ERR_PARSE, "%s:%d: %d columns, earlier lines have %d",
                              path, line, k, columns);
        else if (!isfinite(x[k - 1]))
            st = bf_error_set(err, BF_ERR_INVALID, "%s:%d: intensity is not finite", path, line);
        else {
            columns = k;
            if ((size_t)n == cap) {
                float *nv = realloc(v, sizeof(float) * (cap *= 2));
                if (!nv) {
                    st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", path);
                    break;
                }
                v = nv;
            }
            v[n++] = (float)x[k - 1];
        }
    }
    free(text);
    if (st == BF_OK && n == 0)
        st = bf_error_set(err, BF_ERR_PARSE, "%s: no data lines", path);
    if (st != BF_OK) {
        free(v);
        return st;
    }
    d->n = 1;
    d->length = n;
    d->patterns = v;
    return BF_OK;
}

static void print_predictions(const bf_model *m, const bf_checkpoint_info *info,
                              const float *out, long n)
{
    int C = m->shape.n_classes;
    printf("index,class");
    for (int c = 0; c < C; c++)
        printf(",p_%s", info->class_names[c]);
    for (int k = 0; k < BF_N_TARGETS; k++)
        printf(",%s_%s,sigma_%s_%s", bf_target_names[k], bf_target_units[k], bf_target_names[k],
               bf_target_units[k]);
    printf("\n");
    for (long i = 0; i < n; i++) {
        const float *o = out + (size_t)i * m->n_out, *reg = o + C;
        double mx = o[0], sum = 0, p[BF_MAX_MODEL_CLASSES];
        int best = 0;
        for (int c = 1; c < C; c++)
            if (o[c] > o[best])
                best = c;
        mx = o[best];
        for (int c = 0; c < C; c++)
            sum += p[c] = exp(o[c] - mx);
        printf("%ld,%s", i, info->class_names[best]);
        for (int c = 0; c < C; c++)
            printf(",%.4f", p[c] / sum);
        /* sigma in scaled units is exp(s / 2); scaled = (physical - offset) / scale */
        double sigma = exp(0.5 * reg[BF_N_TARGETS]);
        for (int k = 0; k < BF_N_TARGETS; k++)
            printf(",%.4f,%.4f", reg[k] * info->scaling.scale[k] + info->scaling.offset[k],
                   sigma * fabs(info->scaling.scale[k]));
        printf("\n");
    }
}

int cmd_predict(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, 0, OPT_MODEL}, {"data", required_argument, 0, OPT_DATA},
        {"csv", required_argument, 0, OPT_CSV},     {"batch", required_argument, 0, OPT_BATCH},
        {"threads", required_argument, 0, OPT_THREADS}, {"help", no_argument, 0, OPT_HELP},
        {0, 0, 0, 0}};
    const char *model_path = NULL, *data_path = NULL, *csv_path = NULL;
    long batch = 512, threads = 0;
    int opt, rc = 0;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, BF_CLI_OPTSTRING, longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
        case OPT_HELP: fputs(usage, stdout); return BF_EXIT_OK;
        case OPT_MODEL: model_path = optarg; break;
        case OPT_DATA: data_path = optarg; break;
        case OPT_CSV: csv_path = optarg; break;
        case OPT_BATCH: rc = bf_cli_parse_count("predict", "--batch", optarg, 1, 65536, &batch); break;
        case OPT_THREADS:
            rc = bf_cli_parse_count("predict", "--threads", optarg, 0, 4096, &threads);
            break;
        default: return bf_cli_bad_option("predict", opt == ':' ? ':' : '?', argv);
        }
    }
    if (rc)
        return rc;
    if (optind < argc)
        return bf_cli_usage_error("predict", "unexpected argument '%s'", argv[optind]);
    if (!model_path || !(data_path || csv_path) || (data_path && csv_path))
        return bf_cli_usage_error("predict", "--model and one of --data or --csv are required");

    bf_error err = {0};
    bf_model *m = NULL;
    bf_checkpoint_info info;
    bf_dataset d = {0};
    float *x = NULL, *out = NULL;
    bf_backend_cpu()->set_threads((int)threads);
    bf_status st = bf_checkpoint_load(model_path, bf_backend_cpu(), &m, &info, NULL, NULL, &err);
    if (st == BF_OK)
        st = data_path ? bf_dataset_read_h5(data_path, &d, &err)
                       : read_csv_pattern(csv_path, &d, &err);
    if (st == BF_OK)
        st = bf_structure_inputs(m, &d, data_path ? data_path : csv_path, &info.scaling, &x,
                                 NULL, NULL, &err);
    if (st == BF_OK && !(out = malloc(sizeof(float) * (size_t)d.n * m->n_out)))
        st = bf_error_set(&err, BF_ERR_NOMEM, "out of memory");
    if (st == BF_OK)
        st = bf_model_predict(m, x, d.n, (int)batch, out, &err);
    if (st == BF_OK)
        print_predictions(m, &info, out, d.n);
    free(x);
    free(out);
    bf_dataset_free(&d);
    bf_model_destroy(m);
    return st == BF_OK ? BF_EXIT_OK : bf_cli_fail(&err);
}
