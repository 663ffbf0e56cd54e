/* tests/nn/test_train.c — the structure task's data path, metrics and checkpoints
 * at the library level (the CLI tests cover the same through the commands). */
#include <stdlib.h>
#include <string.h>

#include "braggflow/nn.h"
#include "test.h"

enum { L = 32, N = 4 };

/* A tiny in-memory dataset: N patterns of L points, cells and labels 0..2. */
static void tiny_dataset(bf_dataset *d, float *patterns, double *cells, int32_t *labels)
{
    memset(d, 0, sizeof *d);
    for (int i = 0; i < N * L; i++)
        patterns[i] = (float)((i * 37) % 11) + 2.0f;
    const double cell[N][6] = {{4.0, 4.0, 4.0, 60, 60, 60},
                               {3.6, 3.6, 4.4, 90, 90, 90},
                               {5.5, 5.5, 5.5, 90, 90, 90},
                               {2.5, 2.5, 2.5, 90, 90, 90}};
    memcpy(cells, cell, sizeof cell);
    const int32_t lab[N] = {0, 1, 2, 2};
    memcpy(labels, lab, sizeof lab);
    d->n = N;
    d->length = L;
    d->patterns = patterns;
    d->cells = cells;
    d->labels = labels;
}

static bf_model *tiny_model(void)
{
    bf_model *m = NULL;
    bf_error err = {0};
    bf_model_shape shape = {L, 8, 3};
    if (bf_model_create("structure_net", &shape, bf_backend_cpu(), 3, &m, &err) != BF_OK)
        fprintf(stderr, "%s\n", err.msg);
    return m;
}

BF_TEST(inputs_are_min_max_scaled_and_targets_follow_design_section_4)
{
    float pat[N * L];
    double cells[N * 6];
    int32_t lab[N];
    bf_dataset d;
    tiny_dataset(&d, pat, cells, lab);
    bf_model *m = tiny_model();
    CHECK(m);
    float *x = NULL, *t = NULL;
    int32_t *y = NULL;
    bf_error err = {0};
    CHECK(bf_structure_inputs(m, &d, "tiny", &bf_label_scaling_seed, &x, &y, &t, &err) == BF_OK);
    float lo = 1, hi = 0;
    for (int i = 0; i < L; i++)
        lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
    CHECK_NEAR(lo, 0, 0);
    CHECK_NEAR(hi, 1, 1e-7);
    /* trigonal a = 4, alpha = 60: (a - 3.5, c - 3.5, (alpha - 30) / 90) */
    CHECK_NEAR(t[0], 0.5, 1e-6);
    CHECK_NEAR(t[1], 0.5, 1e-6);
    CHECK_NEAR(t[2], 30.0 / 90.0, 1e-6);
    /* tetragonal c = 4.4, alpha = 90 */
    CHECK_NEAR(t[4], 0.9, 1e-6);
    CHECK_NEAR(t[5], 60.0 / 90.0, 1e-6);
    CHECK(y[2] == 2);
    free(x), free(y), free(t);
    bf_model_destroy(m);
}

BF_TEST(inputs_reject_nan_wrong_length_and_labels_out_of_range_naming_them)
{
    float pat[N * L];
    double cells[N * 6];
    int32_t lab[N];
    bf_dataset d;
    bf_model *m = tiny_model();
    CHECK(m);
    float *x = NULL, *t = NULL;
    int32_t *y = NULL;

    tiny_dataset(&d, pat, cells, lab);
    pat[2 * L + 5] = NAN;
    bf_error err = {0};
    CHECK(bf_structure_inputs(m, &d, "set.h5", &bf_label_scaling_seed, &x, &y, &t, &err) != BF_OK);
    CHECK_MSG(strstr(err.msg, "set.h5: pattern 2 point 5 is NaN"), "%s", err.msg);

    tiny_dataset(&d, pat, cells, lab);
    pat[7] = INFINITY;
    err = (bf_error){0};
    CHECK(bf_structure_inputs(m, &d, "set.h5", &bf_label_scaling_seed, &x, &y, &t, &err) != BF_OK);
    CHECK_MSG(strstr(err.msg, "pattern 0 point 7 is infinite"), "%s", err.msg);

    tiny_dataset(&d, pat, cells, lab);
    lab[3] = 3;
    err = (bf_error){0};
    CHECK(bf_structure_inputs(m, &d, "set.h5", &bf_label_scaling_seed, &x, &y, &t, &err) != BF_OK);
    CHECK_MSG(strstr(err.msg, "pattern 3 has class label 3"), "%s", err.msg);

    tiny_dataset(&d, pat, cells, lab);
    d.length = L - 1;
    err = (bf_error){0};
    CHECK(bf_structure_inputs(m, &d, "set.h5", &bf_label_scaling_seed, &x, &y, &t, &err) != BF_OK);
    CHECK_MSG(strstr(err.msg, "have 31 points but model 'structure_net' takes 32"), "%s", err.msg);
    bf_model_destroy(m);
}

BF_TEST(metrics_count_accuracy_confusion_and_physical_errors)
{
    /* two samples, 3 classes; outputs = 3 logits + a, c, alpha (scaled) + log sigma^2 */
    const float out[2 * 7] = {5, 0, 0, 0.5f, 0.5f, 1.0f / 3, 0,    /* right class, exact */
                              5, 0, 0, 0.6f, 0.5f, 0.0f, 0};       /* wrong class */
    const int32_t labels[2] = {0, 2};
    const float targets[2 * 3] = {0.5f, 0.5f, 1.0f / 3, 0.5f, 0.5f, 1.0f / 3};
    bf_metrics mt;
    bf_structure_metrics(out, labels, targets, 2, 3, &bf_label_scaling_seed, &mt);
    CHECK_NEAR(mt.accuracy, 0.5, 0);
    CHECK(mt.confusion[0][0] == 1 && mt.confusion[2][0] == 1);
    CHECK_NEAR(mt.mae[0], 0.05, 1e-6);          /* 0.1 A in one of two */
    CHECK_NEAR(mt.mae[2], 15.0, 1e-4);          /* 1/3 x 90 deg in one of two */
    CHECK_NEAR(mt.mse_baseline, 0, 1e-12);      /* both targets equal their mean */
    CHECK_NEAR(mt.mean_sigma2, 1, 1e-12);
    CHECK(mt.class_loss > 0 && isfinite(mt.loss));
}

BF_TEST(checkpoint_round_trip_keeps_weights_metadata_and_optimiser_state)
{
    char path[512], optim[600];
    snprintf(path, sizeof path, "%s/rt.safetensors", bf_test_tmp_dir());
    bf_model *m = tiny_model();
    CHECK(m);
    bf_adam opt;
    bf_error err = {0};
    CHECK(bf_adam_init(&opt, m->params.total, 1e-3f, &err) == BF_OK);
    for (size_t i = 0; i < m->params.total; i++)
        m->params.grad[i] = (float)(i % 7) - 3;
    bf_adam_step(&opt, m->params.value, m->params.grad);
    bf_checkpoint_info info = {.scaling = bf_label_scaling_seed, .epoch = 4, .val_loss = 0.25};
    strcpy(info.class_names[0], "trigonal");
    strcpy(info.class_names[1], "tetragonal");
    strcpy(info.class_names[2], "cubic");
    strcpy(info.training_config, "{\"seed\":3}");
    CHECK(bf_checkpoint_save(path, m, &info, &opt, &err) == BF_OK);
    bf_checkpoint_optim_path(path, optim, sizeof optim);
    CHECK(strstr(optim, "rt.optim.safetensors"));

    bf_model *back = NULL;
    bf_checkpoint_info got;
    bf_adam opt2;
    int have = 0;
    CHECK_MSG(bf_checkpoint_load(path, bf_backend_cpu(), &back, &got, &opt2, &have, &err) == BF_OK,
              "%s", err.msg);
    CHECK(have == 1 && opt2.step == 1);
    CHECK(memcmp(back->params.value, m->params.value, sizeof(float) * m->params.total) == 0);
    CHECK(memcmp(opt2.m, opt.m, sizeof(float) * opt.n) == 0);
    CHECK(memcmp(opt2.v, opt.v, sizeof(float) * opt.n) == 0);
    CHECK(back->shape.input_len == L && back->shape.hidden == 8);
    CHECK(!strcmp(got.class_names[1], "tetragonal") && got.epoch == 4);
    CHECK_NEAR(got.scaling.scale[2], 90, 0);
    CHECK(!strcmp(got.training_config, "{\"seed\":3}"));
    bf_adam_free(&opt2);
    bf_model_destroy(back);

    /* a NaN weight is refused naming the tensor */
    m->params.value[m->params.info[4].offset] = NAN; /* fc1.weight */
    CHECK(bf_checkpoint_save(path, m, &info, NULL, &err) == BF_OK);
    err = (bf_error){0};
    CHECK(bf_checkpoint_load(path, bf_backend_cpu(), &back, NULL, NULL, NULL, &err) != BF_OK);
    CHECK_MSG(strstr(err.msg, "'fc1.weight' element 0 is not finite"), "%s", err.msg);
    bf_adam_free(&opt);
    bf_model_destroy(m);
    remove(path);
    remove(optim);
}

BF_TEST(a_safetensors_file_without_braggflow_metadata_is_not_a_checkpoint)
{
    char path[512];
    snprintf(path, sizeof path, "%s/plain.safetensors", bf_test_tmp_dir());
    float v[2] = {1, 2};
    bf_st_tensor t = {.name = "conv1.weight", .dtype = "F32", .ndim = 1, .shape = {2},
                      .data = v, .nbytes = sizeof v};
    bf_error err = {0};
    CHECK(bf_safetensors_write(path, &t, 1, NULL, 0, &err) == BF_OK);
    bf_model *m = NULL;
    CHECK(bf_checkpoint_load(path, bf_backend_cpu(), &m, NULL, NULL, NULL, &err) != BF_OK);
    CHECK_MSG(strstr(err.msg, "not a braggflow checkpoint"), "%s", err.msg);
    CHECK(m == NULL);
    remove(path);
}

BF_TEST(backward_after_an_inference_forward_is_an_error)
{
    bf_model *m = tiny_model();
    CHECK(m);
    bf_error err = {0};
    float x[L] = {0}, out[7], dout[7] = {0};
    CHECK(bf_model_predict(m, x, 1, 1, out, &err) == BF_OK);
    CHECK(m->kind->backward(m, x, 1, dout, &err) != BF_OK);
    CHECK(strstr(err.msg, "backward without a training forward"));
    bf_model_destroy(m);
}

static void count_epochs(const bf_epoch_log *log, void *user)
{
    (void)log;
    ++*(int *)user;
}

BF_TEST(training_keeps_the_best_checkpoint_and_stops_on_a_non_finite_loss)
{
    float pat[N * L];
    double cells[N * 6];
    int32_t lab[N];
    bf_dataset d;
    tiny_dataset(&d, pat, cells, lab);
    char path[512];
    snprintf(path, sizeof path, "%s/train.safetensors", bf_test_tmp_dir());
    bf_train_config cfg;
    bf_train_config_defaults(&cfg);
    int epochs_seen = 0;
    cfg.out_path = path, cfg.epochs = 2, cfg.batch = 3, cfg.hidden = 8, cfg.threads = 2;
    cfg.progress = 0, cfg.on_epoch = count_epochs, cfg.user = &epochs_seen;
    bf_train_result res;
    bf_error err = {0};
    CHECK_MSG(bf_train(&cfg, &d, &d, &res, &err) == BF_OK, "%s", err.msg);
    CHECK(epochs_seen == 2 && res.epochs_run == 2 && res.best_epoch >= 1);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    fclose(f);

    /* a huge learning rate without clipping overflows the loss: an error naming the
     * epoch, and the checkpoint of the warm start's best epoch stays loadable */
    cfg.init_path = path;
    cfg.lr = 10;
    cfg.clip_norm = 1e30;
    cfg.epochs = 50;
    cfg.patience = 0;
    err = (bf_error){0};
    CHECK(bf_train(&cfg, &d, &d, &res, &err) != BF_OK);
    CHECK_MSG(strstr(err.msg, "training diverged"), "%s", err.msg);
    bf_model *m = NULL;
    err = (bf_error){0};
    CHECK_MSG(bf_checkpoint_load(path, bf_backend_cpu(), &m, NULL, NULL, NULL, &err) == BF_OK,
              "%s", err.msg);
    bf_model_destroy(m);
    char optim[600];
    bf_checkpoint_optim_path(path, optim, sizeof optim);
    remove(path);
    remove(optim);
}
