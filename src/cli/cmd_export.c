/* cli/cmd_export.c — `braggflow export`: a checkpoint as an ONNX file (serve.h,
 * docs/serve.md §ONNX export), and with --fp16 --data the accuracy change of float16
 * weights, measured by braggflow itself running the model both ways on a test set. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "braggflow/serve.h"
#include "braggflow/task.h"
#include "cli/cli.h"

enum { OPT_FORMAT = 4200, OPT_FP16 };

static const char *usage =
    "usage: braggflow export --model M.safetensors --out M.onnx [--format onnx] [--fp16]\n"
    "                        [--data D.h5] [--batch 512] [--threads N]\n\n"
    "Writes a checkpoint (of `braggflow train`, or a bare BraggNN state_dict) as an ONNX\n"
    "model: IR 8, opset 17, a dynamic batch dimension N, the per-sample min-max scaling\n"
    "inside the graph so that it takes raw data, and the checkpoint's task metadata in\n"
    "metadata_props (docs/serve.md). Graph inputs and outputs, all float32:\n"
    "  braggnn        patch (N, 1, S, S) raw counts -> ploc (N, 2) = (col, row) / S\n"
    "  structure_net  pattern (N, L) raw intensities -> logits (N, C), regression (N, 4)\n"
    "                 (a, c, alpha scaled as the checkpoint's label_offset/label_scale,\n"
    "                 then log sigma^2)\n"
    "--fp16 stores the weights as float16, each Cast to float32 in the graph. With --data\n"
    "braggflow runs the model with the float32 and with the float16-rounded weights on\n"
    "that file and prints the change: the error in pixels against the true centres\n"
    "(braggnn, a patches file) or accuracy and MAE (structure_net, a dataset).\n\n"
    "options:\n"
    "  --model FILE        checkpoint (*.safetensors)\n"
    "  --out FILE.onnx     the ONNX file (written to a temporary file, then renamed)\n"
    "  --format onnx       the output format; onnx is the only one (and the default)\n"
    "  --fp16              float16 weights (half the size)\n"
    "  --data FILE.h5      with --fp16: patches (braggnn) or a dataset (structure_net)\n"
    "  --batch N           inference batch for --data (default 512)\n"
    "  --threads N         threads for --data (0 or absent: all cores)\n\n"
    "example:\n"
    "  braggflow export --model peaks.safetensors --out peaks.onnx\n"
    "  braggflow export --model peaks.safetensors --out peaks16.onnx --fp16 --data test.h5\n";

/* The weights as the float16 file stores them (round to nearest even), on the backend. */
static bf_status round_weights_to_half(bf_model *m, bf_error *err)
{
    bf_status st = bf_model_params_download(m, 0, err);
    for (size_t i = 0; st == BF_OK && i < m->params.total; i++)
        m->params.value[i] = bf_half_to_float(bf_half_from_float(m->params.value[i]));
    return st == BF_OK ? bf_model_params_upload(m, err) : st;
}

/* Runs m over x (n samples) with its float32 weights into out32, then with float16-rounded
 * ones into out16; m keeps the rounded weights. */
static bf_status run_both(bf_model *m, const float *x, long n, int batch, float **out32,
                          float **out16, bf_error *err)
{
    size_t k = (size_t)n * m->n_out;
    *out32 = malloc(sizeof(float) * k);
    *out16 = malloc(sizeof(float) * k);
    if (!*out32 || !*out16)
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory for %ld outputs", n);
    bf_status st = bf_model_predict(m, x, n, batch, *out32, err);
    if (st == BF_OK)
        st = round_weights_to_half(m, err);
    return st == BF_OK ? bf_model_predict(m, x, n, batch, *out16, err) : st;
}

/* max |a - b| over columns first .. first + k - 1 of (n, ld) arrays. */
static double max_diff(const float *a, const float *b, long n, int ld, int first, int k)
{
    double d = 0;
    for (long i = 0; i < n; i++)
        for (int j = first; j < first + k; j++)
            d = fmax(d, fabs((double)a[i * ld + j] - b[i * ld + j]));
    return d;
}

static void change_row(const char *label, double a, double b)
{
    printf("  %-22s %10.6f -> %10.6f  (%+.6f)\n", label, a, b, b - a);
}

/* The --data test set, read and checked before anything is written. */
typedef enum { SET_PEAKS, SET_STRUCTURE } set_kind;
typedef struct {
    set_kind kind;
    const char *path;
    long n;
    float *x;                      /* (n, input_len), scaled as the task scales it */
    bf_patches p;                  /* peaks: the patches and their true centres */
    bf_dataset d;                  /* structure: the patterns, labels and cells */
    bf_structure_meta meta;
    float *targets;
    int32_t *labels;
} test_set;

static void test_set_free(test_set *t)
{
    free(t->x);
    free(t->targets);
    free(t->labels);
    bf_patches_free(&t->p);
    bf_dataset_free(&t->d);
}

static bf_status test_set_read(test_set *t, const bf_model *m, const bf_checkpoint_info *info,
                               const char *model_path, const char *data, bf_error *err)
{
    t->path = data;
    const char *task = bf_task_of_model(m->kind->name);
    if (task && !strcmp(task, "peaks")) {
        t->kind = SET_PEAKS;
        bf_status st = bf_patches_read_h5(data, &t->p, err);
        if (st == BF_OK && !t->p.centre)
            st = bf_error_set(err, BF_ERR_INVALID, "%s: no true centres: --data needs patches "
                              "that have them (sample-peaks, import-peaks)", data);
        t->n = t->p.n;
        return st == BF_OK ? bf_peaks_inputs(m, &t->p, data, &t->x, NULL, err) : st;
    }
    if (task && !strcmp(task, "structure")) {
        t->kind = SET_STRUCTURE;
        bf_status st = bf_structure_meta_read(info, m, model_path, &t->meta, err);
        if (st == BF_OK)
            st = bf_dataset_read_h5(data, &t->d, err);
        t->n = t->d.n;
        return st == BF_OK ? bf_structure_inputs(m, &t->d, data, &t->meta.scaling, &t->x,
                                                 &t->labels, &t->targets, err)
                           : st;
    }
    return bf_error_set(err, BF_ERR_UNSUPPORTED, "--data: no test metrics for model '%s'",
                        m->kind->name);
}

static bf_status peaks_change(const test_set *t, const float *o32, const float *o16,
                              bf_error *err)
{
    const bf_patches *p = &t->p;
    double *c32 = malloc(sizeof(double) * 2 * (size_t)p->n);
    double *c16 = malloc(sizeof(double) * 2 * (size_t)p->n);
    bf_status st = c32 && c16 ? BF_OK : bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    bf_peak_errors e32, e16;
    if (st == BF_OK) {
        bf_peaks_centres(o32, p->n, p->size, c32);
        bf_peaks_centres(o16, p->n, p->size, c16);
        st = bf_peak_errors_of(c32, p->centre, p->n, &e32, err);
    }
    if (st == BF_OK)
        st = bf_peak_errors_of(c16, p->centre, p->n, &e16, err);
    if (st == BF_OK) {
        printf("float16 weights on %s (%ld patches), braggflow's inference, float32 -> "
               "float16:\n", t->path, p->n);
        change_row("error px mean", e32.mean, e16.mean);
        change_row("error px p95", e32.p95, e16.p95);
        printf("  max |ploc difference|  %.3e\n", max_diff(o32, o16, p->n, 2, 0, 2));
    }
    free(c32);
    free(c16);
    return st;
}

static bf_status structure_change(const test_set *t, const bf_model *m, const float *o32,
                                  const float *o16, bf_error *err)
{
    bf_metrics *mt = calloc(2, sizeof *mt); /* each holds a confusion matrix: heap */
    if (!mt)
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    int C = t->meta.n_classes;
    bf_structure_metrics(o32, t->labels, t->targets, t->n, C, &t->meta.scaling, &mt[0]);
    bf_structure_metrics(o16, t->labels, t->targets, t->n, C, &t->meta.scaling, &mt[1]);
    printf("float16 weights on %s (%ld patterns), braggflow's inference, float32 -> "
           "float16:\n", t->path, t->n);
    change_row("accuracy", mt[0].accuracy, mt[1].accuracy);
    for (int k = 0; k < BF_N_TARGETS; k++) {
        char label[40];
        snprintf(label, sizeof label, "MAE %s (%s)", bf_target_names[k], bf_target_units[k]);
        change_row(label, mt[0].mae[k], mt[1].mae[k]);
    }
    printf("  max |logits difference|      %.3e\n", max_diff(o32, o16, t->n, m->n_out, 0, C));
    printf("  max |regression difference|  %.3e\n",
           max_diff(o32, o16, t->n, m->n_out, C, m->n_out - C));
    free(mt);
    return BF_OK;
}

/* Runs m both ways on the test set and prints the change; m keeps the rounded weights. */
static bf_status fp16_change(bf_model *m, const test_set *t, int batch, bf_error *err)
{
    float *o32 = NULL, *o16 = NULL;
    bf_status st = run_both(m, t->x, t->n, batch, &o32, &o16, err);
    if (st == BF_OK)
        st = t->kind == SET_PEAKS ? peaks_change(t, o32, o16, err)
                                  : structure_change(t, m, o32, o16, err);
    free(o32);
    free(o16);
    return st;
}

int cmd_export(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, 0, OPT_MODEL}, {"out", required_argument, 0, OPT_OUT},
        {"format", required_argument, 0, OPT_FORMAT}, {"fp16", no_argument, 0, OPT_FP16},
        {"data", required_argument, 0, OPT_DATA},   {"batch", required_argument, 0, OPT_BATCH},
        {"threads", required_argument, 0, OPT_THREADS}, {"help", no_argument, 0, OPT_HELP},
        {0, 0, 0, 0}};
    const char *model = NULL, *out = NULL, *format = "onnx", *data = NULL;
    long batch = 512, threads = 0;
    int fp16 = 0, opt, rc = 0;
    optind = 1;
    opterr = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, BF_CLI_OPTSTRING, longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
        case OPT_HELP: fputs(usage, stdout); return BF_EXIT_OK;
        case OPT_MODEL: model = optarg; break;
        case OPT_OUT: out = optarg; break;
        case OPT_FORMAT: format = optarg; break;
        case OPT_FP16: fp16 = 1; break;
        case OPT_DATA: data = optarg; break;
        case OPT_BATCH:
            rc = bf_cli_parse_count("export", "--batch", optarg, 1, 65536, &batch);
            break;
        case OPT_THREADS:
            rc = bf_cli_parse_count("export", "--threads", optarg, 0, 4096, &threads);
            break;
        default: return bf_cli_bad_option("export", opt == ':' ? ':' : '?', argv);
        }
    }
    if (rc)
        return rc;
    if (optind < argc)
        return bf_cli_usage_error("export", "unexpected argument '%s'", argv[optind]);
    if (strcmp(format, "onnx"))
        return bf_cli_usage_error("export", "--format '%s': unknown (the one format is onnx)",
                                  format);
    if (!model || !out)
        return bf_cli_usage_error("export", "--model and --out are required");
    if (!bf_path_has_suffix(out, ".onnx"))
        return bf_cli_usage_error("export", "--out must end in .onnx");
    if (data && !fp16)
        return bf_cli_usage_error("export", "--data measures the change of --fp16: give both");

    bf_error err = {0};
    bf_model *m = NULL;
    bf_checkpoint_info *info = calloc(1, sizeof *info);
    bf_backend_cpu()->set_threads((int)threads);
    bf_status st = info ? bf_checkpoint_load(model, bf_backend_cpu(), &m, info, NULL, NULL, &err)
                        : bf_error_set(&err, BF_ERR_NOMEM, "out of memory");
    test_set t = {0};
    if (st == BF_OK && data) /* read and checked first: a bad --data writes nothing */
        st = test_set_read(&t, m, info, model, data, &err);
    bf_onnx_options o = {.fp16 = fp16};
    if (st == BF_OK)
        st = bf_onnx_export(m, info, &o, out, &err);
    if (st == BF_OK) {
        struct stat sb;
        char shape[256];
        bf_model_shape_format(m->kind, &m->shape, shape, sizeof shape);
        double kb = stat(out, &sb) == 0 ? sb.st_size / 1e3 : NAN;
        printf("braggflow export: %s, %.1f kB: %s (%s), ONNX opset 17, %s weights\n", out, kb,
               m->kind->name, shape, fp16 ? "float16" : "float32");
        if (data)
            st = fp16_change(m, &t, (int)batch, &err);
    }
    test_set_free(&t);
    free(info);
    bf_model_destroy(m);
    return st == BF_OK ? BF_EXIT_OK : bf_cli_fail(&err);
}
