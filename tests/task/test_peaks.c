/* tests/task/test_peaks.c — the peak-finding task: BraggNN's target convention
 * (column first, scaled by S) and its inverse, the error statistics, bad patches,
 * training keeping the best checkpoint, augmentation crops, and loading a bare
 * BraggNN state_dict (no braggflow metadata) that runs as PyTorch runs it. */
#include <stdlib.h>
#include <string.h>

#include "braggflow/task.h"
#include "test.h"

enum { S = 11 };

/* n tiny patches: a bright pixel at (row, col) = (5 + i % 2, 5) on a flat 1, the true
 * centre 0.5 px inside it. size may carry a margin (S + 2). */
static void tiny_patches(bf_patches *p, int n, int size)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    p->size = size;
    p->patches = calloc((size_t)n * size * size, sizeof(float));
    p->centre = calloc((size_t)n * 2, sizeof(double));
    int m = (size - S) / 2;
    for (int i = 0; i < n; i++) {
        float *x = p->patches + (size_t)i * size * size;
        for (int k = 0; k < size * size; k++)
            x[k] = 1;
        int r = m + 5 + i % 2, c = m + 5 - (i % 3 == 0);
        x[r * size + c] = 100 + 10 * i;
        p->centre[2 * i] = r + 0.5;
        p->centre[2 * i + 1] = c + 0.5;
    }
}

static bf_model *braggnn(int patch)
{
    bf_model *m = NULL;
    bf_error err = {0};
    bf_model_shape shape = {{patch, 16, 8, 4, 2}};
    if (bf_model_create("braggnn", &shape, bf_backend_cpu(), 1, &m, &err) != BF_OK)
        fprintf(stderr, "%s\n", err.msg);
    return m;
}

BF_TEST(targets_are_column_first_scaled_by_the_patch_size_and_centres_invert_them)
{
    bf_patches p;
    tiny_patches(&p, 3, S);
    bf_model *m = braggnn(S);
    CHECK(m);
    float *x = NULL, *t = NULL;
    bf_error err = {0};
    CHECK_MSG(bf_peaks_inputs(m, &p, "tiny", &x, &t, &err) == BF_OK, "%s", err.msg);
    /* patch 1: bright pixel (6, 5) -> centre (6.5, 5.5) -> target (5.5 / 11, 6.5 / 11) */
    CHECK_NEAR(t[2], 5.5 / 11, 1e-7);
    CHECK_NEAR(t[3], 6.5 / 11, 1e-7);
    /* min-max scaled per patch: flat 1 -> 0, the peak -> 1 */
    CHECK_NEAR(x[S * S + 6 * S + 5], 1, 1e-7);
    CHECK_NEAR(x[S * S], 0, 0);
    double c[6];
    bf_peaks_centres(t, 3, S, c);
    for (int i = 0; i < 6; i++)
        CHECK_NEAR(c[i], p.centre[i], 1e-6);
    free(x), free(t);
    bf_model_destroy(m);
    bf_patches_free(&p);
}

BF_TEST(error_statistics_are_numpys_linear_percentiles_of_euclidean_distances)
{
    /* distances 0, 1, 2, 3, 4 (3-4-5 triangles scaled) */
    const double truth[10] = {0};
    const double pred[10] = {0, 0, 0.6, 0.8, 1.2, 1.6, 1.8, 2.4, 2.4, 3.2};
    bf_peak_errors e;
    bf_error err = {0};
    CHECK(bf_peak_errors_of(pred, truth, 5, &e, &err) == BF_OK);
    CHECK(e.n == 5);
    CHECK_NEAR(e.mean, 2, 1e-12);
    CHECK_NEAR(e.p50, 2, 1e-12);
    CHECK_NEAR(e.p75, 3, 1e-12);
    CHECK_NEAR(e.p95, 3.8, 1e-12);
    CHECK_NEAR(e.p995, 3.98, 1e-12);
    CHECK_NEAR(e.max, 4, 1e-12);
}

BF_TEST(patches_of_another_size_or_with_nan_are_refused_naming_file_and_field)
{
    bf_patches p;
    tiny_patches(&p, 2, 13);
    bf_model *m = braggnn(S);
    CHECK(m);
    float *x = NULL, *t = NULL;
    bf_error err = {0};
    CHECK(bf_peaks_inputs(m, &p, "big.h5", &x, &t, &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "big.h5: patches: 13 x 13 pixels, the model takes 11 x 11"), "%s",
              err.msg);
    bf_patches_free(&p);
    tiny_patches(&p, 2, S);
    p.patches[S * S + 3 * S + 4] = NAN;
    err = (bf_error){0};
    CHECK(bf_peaks_inputs(m, &p, "nan.h5", &x, &t, &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "nan.h5: patches: patch 1 pixel (3, 4) is NaN"), "%s", err.msg);
    bf_patches_free(&p);
    bf_model_destroy(m);
}

BF_TEST(a_structure_checkpoint_is_refused_by_the_peaks_task)
{
    char path[512];
    snprintf(path, sizeof path, "%s/structure.safetensors", bf_test_tmp_dir());
    bf_model *m = NULL;
    bf_error err = {0};
    bf_model_shape shape = {{32, 8, 3}};
    CHECK(bf_model_create("structure_net", &shape, bf_backend_cpu(), 1, &m, &err) == BF_OK);
    bf_checkpoint_info info = {0};
    CHECK(bf_checkpoint_save(path, m, &info, NULL, &err) == BF_OK);
    bf_model_destroy(m);
    m = NULL;
    CHECK(bf_task_load("peaks", path, bf_backend_cpu(), &m, &info, &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "model 'structure_net' is not a peaks model (braggnn)"), "%s",
              err.msg);
    CHECK(m == NULL);
    remove(path);
}

typedef struct {
    int epochs;
    double min_val, last_val;
} epoch_record;

static void record_epoch(const bf_epoch_log *log, void *user)
{
    epoch_record *r = user;
    const bf_peak_errors *e = log->task_metrics;
    r->epochs++;
    r->last_val = log->val_score;
    r->min_val = fmin(r->min_val, log->val_score);
    if (!e || e->n < 1)
        r->min_val = NAN; /* every epoch reports its errors in pixels */
}

BF_TEST(training_keeps_the_lowest_validation_mse_and_augments_from_a_margin)
{
    bf_patches tr, va, wide;
    tiny_patches(&tr, 24, S);
    tiny_patches(&va, 6, S);
    tiny_patches(&wide, 24, S + 2);
    char path[512];
    snprintf(path, sizeof path, "%s/peaks.safetensors", bf_test_tmp_dir());
    bf_train_config cfg;
    bf_train_config_defaults(&cfg);
    epoch_record rec = {.min_val = INFINITY};
    cfg.model = "braggnn", cfg.out_path = path, cfg.epochs = 6, cfg.batch = 8, cfg.lr = 1e-3;
    cfg.clip_norm = 0, cfg.patience = 0, cfg.progress = 0, cfg.threads = 2;
    cfg.on_epoch = record_epoch, cfg.user = &rec;
    bf_peaks_result res;
    bf_error err = {0};
    CHECK_MSG(bf_peaks_train(&cfg, NULL, &tr, &va, &res, &err) == BF_OK, "%s", err.msg);
    CHECK(rec.epochs == 6 && isfinite(rec.min_val));
    bf_model *m = NULL;
    bf_checkpoint_info info;
    CHECK_MSG(bf_task_load("peaks", path, bf_backend_cpu(), &m, &info, &err) == BF_OK, "%s",
              err.msg);
    CHECK_REL(info.val_loss, rec.min_val, 1e-7);
    CHECK(!strcmp(bf_checkpoint_info_get(&info, "task"), "peaks"));
    CHECK(bf_model_dim(m->kind, &m->shape, "patch") == S);
    /* the kept model's errors are the best epoch's */
    double *c = malloc(sizeof(double) * 2 * (size_t)va.n);
    CHECK(bf_peaks_predict(m, &va, "val", 4, c, &err) == BF_OK);
    bf_peak_errors e;
    CHECK(bf_peak_errors_of(c, va.centre, va.n, &e, &err) == BF_OK);
    CHECK_REL(e.mean, res.best_val.mean, 1e-5);
    free(c);
    bf_model_destroy(m);

    /* augmentation crops from a 1-pixel margin: 13 x 13 patches train an 11 x 11 model */
    bf_peaks_options aug = {.augment = 1};
    cfg.epochs = 1;
    CHECK_MSG(bf_peaks_train(&cfg, &aug, &wide, &va, &res, &err) == BF_OK, "%s", err.msg);
    CHECK(bf_task_load("peaks", path, bf_backend_cpu(), &m, &info, &err) == BF_OK);
    CHECK(bf_model_dim(m->kind, &m->shape, "patch") == S);
    bf_model_destroy(m);
    /* warm-starting that 11 x 11 model with augmentation needs 13 x 13 patches again */
    char init[600];
    snprintf(init, sizeof init, "%s/init.safetensors", bf_test_tmp_dir());
    CHECK(rename(path, init) == 0);
    cfg.init_path = init;
    err = (bf_error){0};
    CHECK(bf_peaks_train(&cfg, &aug, &tr, &va, &res, &err) == BF_ERR_INVALID);
    CHECK_MSG(strstr(err.msg, "--augment needs 13 x 13 patches (the model's 11 plus a 1-pixel "
                     "margin), these are 11 x 11"), "%s", err.msg);
    remove(init);
    remove(path);
    bf_patches_free(&tr);
    bf_patches_free(&va);
    bf_patches_free(&wide);
}

BF_TEST(a_bare_braggnn_state_dict_loads_with_sizes_from_its_tensors_and_runs_as_pytorch)
{
    char path[4096], io_path[4096];
    snprintf(path, sizeof path, "%s/tests/nn/fixtures/braggnn_state_dict.safetensors",
             bf_test_source_dir());
    snprintf(io_path, sizeof io_path, "%s/tests/nn/fixtures/braggnn_state_dict_io.safetensors",
             bf_test_source_dir());
    bf_model *m = NULL;
    bf_checkpoint_info info;
    bf_error err = {0};
    CHECK_MSG(bf_task_load("peaks", path, bf_backend_cpu(), &m, &info, &err) == BF_OK, "%s",
              err.msg);
    CHECK(info.bare == 1 && !strcmp(info.model, "braggnn"));
    CHECK(bf_model_dim(m->kind, &m->shape, "patch") == 15);
    CHECK(bf_model_dim(m->kind, &m->shape, "fc1") == 16);
    bf_safetensors io = {0};
    CHECK_MSG(bf_safetensors_read(io_path, &io, &err) == BF_OK, "%s", err.msg);
    const bf_st_tensor *in = bf_safetensors_find(&io, "input"), *want = bf_safetensors_find(&io, "output");
    CHECK(in && want && in->shape[0] == 3 && in->nbytes == 3 * 15 * 15 * sizeof(float));
    float out[6];
    CHECK(bf_model_predict(m, in->data, 3, 3, out, &err) == BF_OK);
    const float *w = want->data;
    for (int i = 0; i < 6; i++)
        CHECK_MSG(fabs(out[i] - w[i]) <= 1e-5 * fmax(1e-1, fabs(w[i])), "output %d: %g vs %g", i,
                  out[i], w[i]);
    bf_safetensors_free(&io);
    bf_model_destroy(m);
}
