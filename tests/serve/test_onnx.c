#define _GNU_SOURCE /* memmem */
/* tests/serve/test_onnx.c — the ONNX export run in ONNX Runtime (tests/serve/onnx_run.js,
 * npm onnxruntime-node from scripts/install-deps.sh) against braggflow itself: both
 * models, 100 raw inputs of very different scales with constant ones among them, two
 * different batch sizes through the dynamic batch dimension, the float16 file against
 * braggflow with the same rounded weights, the graph's input and output names and
 * shapes as ONNX Runtime reads them, the metadata, and the error paths.
 *
 * Agreement: |ort - bf| <= RTOL max(|ort|, |bf|) + ATOL for every output value.
 * RTOL = 1e-5 is the acceptance of issue 10. ATOL is for outputs near zero: an output is
 * a sum of float32 products, each rounded to about 2^-24 of its size, so its error
 * follows the sum of |terms|, not the output; where the terms cancel (structure_net's
 * fc1 at the seed's shape adds 11,200 of them, sum of |terms| ~ 30) an output of 1e-2
 * is off by ~1e-7, beyond 1e-5 of it. ATOL = 1e-6 is about 7x the largest such
 * difference measured (1.5e-7). The test prints the measured maxima and how many
 * values needed ATOL. */
#include "braggflow/serve.h"
#include "braggflow/task.h"
#include "test.h"

#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define RTOL 1e-5
#define ATOL 1e-6
#define N_INPUTS 100

static int have_node(void)
{
    return system("command -v node >/dev/null 2>&1") == 0;
}

static const char *tmp_path(const char *name)
{
    static char paths[8][4200];
    static int k;
    char *p = paths[k++ % 8];
    snprintf(p, 4200, "%s/%s", bf_test_tmp_dir(), name);
    return p;
}

/* Runs onnx_run.js; its JSON line into json. Returns the exit status (3: no
 * onnxruntime-node). */
static int run_ort(const char *model, const char *input, long n, const char *prefix,
                   const char *batches, char *json, size_t jsz)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "node '%s/tests/serve/onnx_run.js' '%s' '%s' %ld '%s' %s",
             bf_test_source_dir(), model, input, n, prefix, batches ? batches : "");
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t got = fread(json, 1, jsz - 1, p);
    json[got] = 0;
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int write_f32(const char *path, const float *x, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(x, sizeof *x, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* Reads exactly n floats; -1 when the file is missing or has another size. */
static int read_f32(const char *path, float *x, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t r = fread(x, sizeof *x, n, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    return r == n && !extra ? 0 : -1;
}

/* A fresh model whose biases are random too (BraggNN's start at zero, which would leave
 * the bias path of the graph untested). */
static bf_model *fresh_model(const char *kind, const bf_model_shape *shape, uint64_t seed)
{
    bf_model *m = NULL;
    bf_error err = {0};
    if (bf_model_create(kind, shape, bf_backend_cpu(), seed, &m, &err) != BF_OK) {
        fprintf(stderr, "  %s\n", err.msg);
        return NULL;
    }
    bf_rng rng;
    bf_rng_init(&rng, seed, 1);
    for (int i = 0; i < m->params.n; i++) {
        const bf_param_info *p = &m->params.info[i];
        if (bf_path_has_suffix(p->name, ".bias"))
            for (size_t k = 0; k < p->count; k++)
                m->params.value[p->offset + k] = (float)bf_rng_uniform_range(&rng, -0.2, 0.2);
    }
    if (bf_model_params_upload(m, &err) != BF_OK) {
        bf_model_destroy(m);
        return NULL;
    }
    return m;
}

/* n raw samples of `len` values (an S x S patch when S > 0): a bump on a tilted
 * background with noise, each sample with its own scale 10^U(-3, 4) and offset
 * U(-50, 50) times the scale; sample 0 is all zeros, sample 1 a constant 7.25, sample
 * 2 a constant -3e3. */
static void raw_inputs(float *x, long n, int len, int S, uint64_t seed)
{
    for (long i = 0; i < n; i++) {
        bf_rng rng;
        bf_rng_init(&rng, seed, (uint64_t)i);
        double scale = pow(10, bf_rng_uniform_range(&rng, -3, 4));
        double offset = bf_rng_uniform_range(&rng, -50, 50) * scale;
        double c0 = bf_rng_uniform_range(&rng, 0.3, 0.7), c1 = bf_rng_uniform_range(&rng, 0.3, 0.7);
        double w = bf_rng_uniform_range(&rng, 0.01, 0.05), tilt = bf_rng_uniform_range(&rng, -1, 1);
        float *r = x + (size_t)i * len;
        for (int j = 0; j < len; j++) {
            double u = S ? (j % S + 0.5) / S : (j + 0.5) / len, v = S ? (j / S + 0.5) / S : c1;
            double bump = exp(-((u - c0) * (u - c0) + (v - c1) * (v - c1)) / w);
            r[j] = (float)(offset + scale * (5 * bump + tilt * u + 0.3 * bf_rng_normal(&rng)));
        }
        if (i < 3)
            for (int j = 0; j < len; j++)
                r[j] = i == 0 ? 0.0f : i == 1 ? 7.25f : -3e3f;
    }
}

/* braggflow's own outputs for raw inputs: the task layer's scaling, then the model. */
static int bf_outputs(bf_model *m, const float *x, long n, float *out)
{
    size_t nx = (size_t)n * m->input_len;
    float *xs = malloc(nx * sizeof *xs);
    if (!xs)
        return -1;
    memcpy(xs, x, nx * sizeof *xs);
    bf_minmax_scale_rows(xs, n, m->input_len);
    bf_error err = {0};
    bf_status st = bf_model_predict(m, xs, n, 64, out, &err);
    free(xs);
    if (st != BF_OK)
        fprintf(stderr, "  %s\n", err.msg);
    return st == BF_OK ? 0 : -1;
}

typedef struct {
    double max_abs, max_rel;  /* max |a - b|; max |a - b| / max(|a|, |b|) over |.| >= 1e-3 */
    long bad;                 /* values outside RTOL max(|a|, |b|) + ATOL */
    long floor_used;          /* values within the bound only thanks to ATOL */
} agreement;

/* ort (n, k) against braggflow's outputs, column `first` .. first + k - 1 of (n, ld). */
static void agree(agreement *a, const float *ort, const float *bf, long n, int k, int ld,
                  int first)
{
    for (long i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            double x = ort[i * k + j], y = bf[i * ld + first + j];
            double d = fabs(x - y), mag = fmax(fabs(x), fabs(y));
            a->max_abs = fmax(a->max_abs, d);
            if (mag >= 1e-3)
                a->max_rel = fmax(a->max_rel, d / mag);
            a->bad += !(d <= RTOL * mag + ATOL);
            a->floor_used += d > RTOL * mag && d <= RTOL * mag + ATOL;
        }
}

/* Output `name` of an ORT run (prefix) against braggflow's columns first..first+k-1. */
static int compare_output(agreement *a, const char *prefix, const char *name, const float *bf,
                          long n, int k, int ld, int first)
{
    char path[4300];
    snprintf(path, sizeof path, "%s.%s.f32", prefix, name);
    float *ort = malloc(sizeof(float) * (size_t)n * k);
    int rc = ort ? read_f32(path, ort, (size_t)n * k) : -1;
    if (rc == 0)
        agree(a, ort, bf, n, k, ld, first);
    free(ort);
    return rc;
}

/* The file holds the StringStringEntryProto {key, value} as ModelProto.metadata_props. */
static int has_metadata(const char *path, const char *key, const char *value)
{
    char *text = NULL;
    size_t len = 0;
    if (bf_read_file(path, &text, &len, NULL) != BF_OK)
        return 0;
    size_t kl = strlen(key), vl = strlen(value);
    char want[1200];
    size_t n = 0;
    if (kl + vl + 4 > 127 || kl + vl + 8 > sizeof want) { /* one-byte lengths only here */
        free(text);
        return 0;
    }
    want[n++] = 0x72;                       /* field 14, wire type 2 */
    want[n++] = (char)(kl + vl + 4);
    want[n++] = 0x0a, want[n++] = (char)kl; /* key */
    memcpy(want + n, key, kl), n += kl;
    want[n++] = 0x12, want[n++] = (char)vl; /* value */
    memcpy(want + n, value, vl), n += vl;
    int found = memmem(text, len, want, n) != NULL;
    free(text);
    return found;
}

/* Exports m (fp32 and fp16), runs both in ORT with batches `split` (adding up to N_INPUTS)
 * and all at once, and checks names, shapes and agreement. outputs[k] = {name, width}. */
typedef struct {
    const char *name;
    int width;
} out_spec;

static void check_model(int *bf_failed_, bf_model *m, const char *tag, const char *in_json,
                        const char *out_json, const out_spec *outs, int n_outs,
                        const char *split)
{
    if (!have_node()) {
        printf("skipped: node not found (ONNX Runtime runs under Node.js)\n");
        return;
    }
    int S = bf_model_dim(m->kind, &m->shape, "patch");
    long n = N_INPUTS;
    size_t nx = (size_t)n * m->input_len;
    float *x = malloc(nx * sizeof *x), *bf = malloc(sizeof(float) * (size_t)n * m->n_out);
    float *bf16 = malloc(sizeof(float) * (size_t)n * m->n_out);
    CHECK(x && bf && bf16);
    raw_inputs(x, n, m->input_len, S > 0 ? S : 0, 77);
    char name[64], onnx[4200], onnx16[4200], input[4200], json[8192];
    snprintf(name, sizeof name, "%s.onnx", tag);
    snprintf(onnx, sizeof onnx, "%s", tmp_path(name));
    snprintf(name, sizeof name, "%s.fp16.onnx", tag);
    snprintf(onnx16, sizeof onnx16, "%s", tmp_path(name));
    snprintf(name, sizeof name, "%s.in.f32", tag);
    snprintf(input, sizeof input, "%s", tmp_path(name));
    CHECK(write_f32(input, x, nx) == 0);
    CHECK(bf_outputs(m, x, n, bf) == 0);

    bf_error err = {0};
    bf_checkpoint_info info = {.epoch = 3, .val_loss = 0.25};
    CHECK(bf_checkpoint_info_set(&info, "label_scale", "1 1 90", &err) == BF_OK);
    bf_onnx_options o32 = {.fp16 = 0}, o16 = {.fp16 = 1};
    CHECK_MSG(bf_onnx_export(m, &info, &o32, onnx, &err) == BF_OK, "%s", err.msg);
    CHECK_MSG(bf_onnx_export(m, &info, &o16, onnx16, &err) == BF_OK, "%s", err.msg);
    CHECK(has_metadata(onnx, "model", m->kind->name));
    CHECK(has_metadata(onnx, "label_scale", "1 1 90"));  /* the task's, verbatim */
    CHECK(has_metadata(onnx, "epoch", "3"));
    CHECK(has_metadata(onnx, "onnx_weights", "float32"));
    CHECK(has_metadata(onnx16, "onnx_weights", "float16 initialisers, each Cast to float32"));

    /* braggflow with the weights rounded as the float16 file stores them */
    for (size_t i = 0; i < m->params.total; i++)
        m->params.value[i] = bf_half_to_float(bf_half_from_float(m->params.value[i]));
    CHECK(bf_model_params_upload(m, &err) == BF_OK);
    CHECK(bf_outputs(m, x, n, bf16) == 0);

    const char *files[2] = {onnx, onnx16};
    const float *want[2] = {bf, bf16};
    const char *runs[2] = {NULL, split};
    for (int f = 0; f < 2; f++)
        for (int r = 0; r < 2; r++) {
            char prefix[4300];
            snprintf(prefix, sizeof prefix, "%s.%d%d", files[f], f, r);
            int rc = run_ort(files[f], input, n, prefix, runs[r], json, sizeof json);
            CHECK_MSG(rc != 3, "onnxruntime-node is missing: run scripts/install-deps.sh");
            CHECK_MSG(rc == 0, "onnx_run.js exit status %d", rc);
            /* what ONNX Runtime decoded from the file: names, types, shapes, batch "N" */
            CHECK_MSG(strstr(json, in_json) != NULL, "inputs: %s", json);
            CHECK_MSG(strstr(json, out_json) != NULL, "outputs: %s", json);
            agreement a = {0};
            for (int k = 0, first = 0; k < n_outs; first += outs[k].width, k++)
                CHECK(compare_output(&a, prefix, outs[k].name, want[f], n, outs[k].width,
                                     m->n_out, first) == 0);
            printf("  %s %s, batches %s: max |diff| %.3g, max rel diff %.3g (|value| >= 1e-3), "
                   "%ld values need the floor, %ld outside %g rel + %g\n", tag,
                   f ? "fp16" : "fp32", runs[r] ? runs[r] : "100", a.max_abs, a.max_rel,
                   a.floor_used, a.bad, RTOL, ATOL);
            CHECK(a.bad == 0);
        }
    /* the float16 weights did change the outputs (else the test above proves nothing) */
    double moved = 0;
    for (long i = 0; i < n * m->n_out; i++)
        moved = fmax(moved, fabs(bf16[i] - bf[i]));
    printf("  %s: float16 weights move the outputs by up to %.3g\n", tag, moved);
    CHECK(moved > 10 * ATOL);
    free(x);
    free(bf);
    free(bf16);
}

BF_TEST(braggnn_in_onnx_runtime_matches_braggflow_on_100_raw_patches)
{
    bf_model *m = fresh_model("braggnn", NULL, 11);
    CHECK(m);
    static const out_spec outs[] = {{"ploc", 2}};
    check_model(bf_failed_, m, "braggnn",
                "\"inputs\":[{\"name\":\"patch\",\"type\":\"float32\",\"shape\":[\"N\",1,11,11]}]",
                "\"outputs\":[{\"name\":\"ploc\",\"type\":\"float32\",\"shape\":[\"N\",2]}]",
                outs, 1, "37,63");
    bf_model_destroy(m);
}

BF_TEST(braggnn_with_another_patch_size_exports_that_size)
{
    bf_model_shape sh = bf_model_kind_find("braggnn")->default_shape;
    sh.dim[0] = 15; /* patch */
    bf_model *m = fresh_model("braggnn", &sh, 12);
    CHECK(m);
    static const out_spec outs[] = {{"ploc", 2}};
    check_model(bf_failed_, m, "braggnn15",
                "\"inputs\":[{\"name\":\"patch\",\"type\":\"float32\",\"shape\":[\"N\",1,15,15]}]",
                "\"outputs\":[{\"name\":\"ploc\",\"type\":\"float32\",\"shape\":[\"N\",2]}]",
                outs, 1, "1,99");
    bf_model_destroy(m);
}

BF_TEST(structure_net_in_onnx_runtime_matches_braggflow_on_100_raw_patterns)
{
    bf_model_shape sh = {{701, 24, 3}}; /* input_len, hidden, n_classes: odd lengths pool down */
    bf_model *m = fresh_model("structure_net", &sh, 13);
    CHECK(m);
    static const out_spec outs[] = {{"logits", 3}, {"regression", 4}};
    check_model(bf_failed_, m, "structure",
                "\"inputs\":[{\"name\":\"pattern\",\"type\":\"float32\",\"shape\":[\"N\",701]}]",
                "\"outputs\":[{\"name\":\"logits\",\"type\":\"float32\",\"shape\":[\"N\",3]},"
                "{\"name\":\"regression\",\"type\":\"float32\",\"shape\":[\"N\",4]}]",
                outs, 2, "50,25,25");
    bf_model_destroy(m);
}

/* ---- error paths ------------------------------------------------------------------- */

BF_TEST(export_to_a_missing_folder_fails_naming_the_path)
{
    bf_model *m = fresh_model("braggnn", NULL, 1);
    CHECK(m);
    bf_error err = {0};
    bf_onnx_options o = {0};
    bf_status st = bf_onnx_export(m, NULL, &o, "/nonexistent-braggflow-dir/m.onnx", &err);
    bf_model_destroy(m);
    CHECK(st == BF_ERR_IO);
    CHECK_MSG(strstr(err.msg, "/nonexistent-braggflow-dir/m.onnx") != NULL, "%s", err.msg);
}

BF_TEST(a_weight_beyond_float16_fails_the_fp16_export_and_keeps_the_old_file)
{
    bf_model *m = fresh_model("braggnn", NULL, 2);
    CHECK(m);
    const bf_param_info *p = bf_params_find(&m->params, "dense_layers.4.weight");
    CHECK(p);
    m->params.value[p->offset + 3] = 7e4f; /* > 65504: inf in float16 */
    bf_error err = {0};
    CHECK(bf_model_params_upload(m, &err) == BF_OK);
    const char *path = tmp_path("keep.onnx");
    FILE *f = fopen(path, "w");
    CHECK(f && fputs("old", f) >= 0 && fclose(f) == 0);
    bf_onnx_options o16 = {.fp16 = 1}, o32 = {0};
    bf_status st = bf_onnx_export(m, NULL, &o16, path, &err);
    CHECK(st == BF_ERR_RANGE);
    CHECK_MSG(strstr(err.msg, "keep.onnx") && strstr(err.msg, "dense_layers.4.weight") &&
              strstr(err.msg, "element 3") && strstr(err.msg, "float16"), "%s", err.msg);
    char *text = NULL;
    CHECK(bf_read_file(path, &text, NULL, NULL) == BF_OK);
    CHECK(strcmp(text, "old") == 0);
    free(text);
    /* float32 holds it */
    bf_error err2 = {0};
    CHECK_MSG(bf_onnx_export(m, NULL, &o32, path, &err2) == BF_OK, "%s", err2.msg);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && sb.st_size > 100000); /* 33,172 float32 weights */
    bf_model_destroy(m);
}

BF_TEST(a_non_finite_weight_is_an_error_not_a_file)
{
    bf_model *m = fresh_model("structure_net", &(bf_model_shape){{64, 8, 3}}, 3);
    CHECK(m);
    const bf_param_info *p = bf_params_find(&m->params, "fc1.bias");
    m->params.value[p->offset] = NAN;
    bf_error err = {0};
    CHECK(bf_model_params_upload(m, &err) == BF_OK);
    const char *path = tmp_path("nan.onnx");
    bf_onnx_options o = {0};
    CHECK(bf_onnx_export(m, NULL, &o, path, &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "fc1.bias") && strstr(err.msg, "not finite"), "%s", err.msg);
    CHECK(access(path, F_OK) != 0);
    bf_model_destroy(m);
}

BF_TEST(a_task_key_equal_to_an_export_key_is_refused)
{
    bf_model *m = fresh_model("structure_net", &(bf_model_shape){{64, 8, 3}}, 4);
    CHECK(m);
    bf_checkpoint_info info = {0};
    bf_error err = {0};
    CHECK(bf_checkpoint_info_set(&info, "onnx_io", "clash", &err) == BF_OK);
    bf_onnx_options o = {0};
    CHECK(bf_onnx_export(m, &info, &o, tmp_path("dup.onnx"), &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "'onnx_io' twice"), "%s", err.msg);
    bf_model_destroy(m);
}

BF_TEST(structure_net_at_the_seeds_shape_matches_too)
{
    /* 2806 points, fc1 of 11,200 -> 256: the longest sums of the two models */
    bf_model *m = fresh_model("structure_net", NULL, 14);
    CHECK(m);
    static const out_spec outs[] = {{"logits", 3}, {"regression", 4}};
    check_model(bf_failed_, m, "structure2806",
                "\"inputs\":[{\"name\":\"pattern\",\"type\":\"float32\",\"shape\":[\"N\",2806]}]",
                "\"outputs\":[{\"name\":\"logits\",\"type\":\"float32\",\"shape\":[\"N\",3]},"
                "{\"name\":\"regression\",\"type\":\"float32\",\"shape\":[\"N\",4]}]",
                outs, 2, "64,36");
    bf_model_destroy(m);
}
