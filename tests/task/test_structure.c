/* tests/task/test_structure.c — the structure task's data path, metrics, checkpoints
 * and training at the library level (the CLI tests cover the same through the
 * commands), and the engine's allocation failures surfacing from training. */
#include <stdlib.h>
#include <string.h>

#include "braggflow/task.h"
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
    bf_model_shape shape = {{L, 8, 3}};
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
    /* logits (5, 0, 0) for labels 0 and 2: mean CE = (ln(1 + 2e^-5) + 5 + ln(1 + 2e^-5)) / 2 */
    double ce = log(1 + 2 * exp(-5.0)) + 2.5;
    CHECK_NEAR(mt.class_loss, ce, 1e-6);
    /* Eq. 6 with log sigma^2 = 0: the second sample's squared errors 0.1^2 + (1/3)^2 */
    double sq = 0.01 + 1.0 / 9;
    CHECK_NEAR(mt.reg_loss, sq / 2, 1e-6);
    CHECK_NEAR(mt.loss, ce + sq / 2, 1e-6);
    CHECK_NEAR(mt.mse, sq / 6, 1e-7);
}

BF_TEST(checkpoint_round_trip_keeps_weights_metadata_and_optimiser_state)
{
    char path[512], optim[600];
    snprintf(path, sizeof path, "%s/rt.safetensors", bf_test_tmp_dir());
    bf_model *m = tiny_model();
    CHECK(m);
    bf_adam opt;
    bf_error err = {0};
    CHECK(bf_adam_init(&opt, NULL, m->params.total, 1e-3f, &err) == BF_OK);
    for (size_t i = 0; i < m->params.total; i++)
        m->params.grad[i] = (float)(i % 7) - 3;
    bf_adam_step(&opt, m->params.value, m->params.grad); /* on the host copy, then uploaded */
    CHECK(bf_model_params_upload(m, &err) == BF_OK);
    bf_checkpoint_info info = {.epoch = 4, .val_loss = 0.25};
    bf_structure_meta meta = {.scaling = bf_label_scaling_seed, .n_classes = 3};
    strcpy(meta.class_names[0], "trigonal");
    strcpy(meta.class_names[1], "tetragonal");
    strcpy(meta.class_names[2], "cubic");
    CHECK(bf_structure_meta_write(&meta, &info, &err) == BF_OK);
    strcpy(info.training_config, "{\"seed\":3}");
    CHECK(bf_checkpoint_save(path, m, &info, &opt, &err) == BF_OK);
    bf_checkpoint_optim_path(path, optim, sizeof optim);
    CHECK(strstr(optim, "rt.optim.safetensors"));

    bf_model *back = NULL;
    bf_checkpoint_info got;
    bf_structure_meta gm;
    bf_adam opt2;
    int have = 0;
    CHECK_MSG(bf_checkpoint_load(path, bf_backend_cpu(), &back, &got, &opt2, &have, &err) == BF_OK,
              "%s", err.msg);
    CHECK_MSG(bf_structure_meta_read(&got, back, path, &gm, &err) == BF_OK, "%s", err.msg);
    CHECK(have == 1 && opt2.step == 1);
    CHECK(memcmp(back->params.value, m->params.value, sizeof(float) * m->params.total) == 0);
    float *m1 = malloc(sizeof(float) * opt.n), *m2 = malloc(sizeof(float) * opt.n);
    CHECK(opt2.be == bf_backend_cpu() && opt2.n == opt.n);
    CHECK(opt2.be->download(m1, opt2.m, sizeof(float) * opt.n, &err) == BF_OK);
    CHECK(opt2.be->download(m2, opt2.v, sizeof(float) * opt.n, &err) == BF_OK);
    CHECK(memcmp(m1, opt.m, sizeof(float) * opt.n) == 0);
    CHECK(memcmp(m2, opt.v, sizeof(float) * opt.n) == 0);
    free(m1), free(m2);
    CHECK(back->shape.dim[0] == L && back->shape.dim[1] == 8 && back->shape.dim[2] == 3);
    CHECK(!strcmp(gm.class_names[1], "tetragonal") && got.epoch == 4 && gm.n_classes == 3);
    CHECK_NEAR(gm.scaling.scale[2], 90, 0);
    CHECK(!strcmp(bf_checkpoint_info_get(&got, "task"), "structure"));
    CHECK(!strcmp(got.training_config, "{\"seed\":3}"));
    bf_adam_free(&opt2);
    bf_model_destroy(back);

    /* a NaN weight is refused naming the tensor */
    m->params.value[m->params.info[4].offset] = NAN; /* fc1.weight */
    CHECK(bf_model_params_upload(m, &err) == BF_OK);
    CHECK(bf_checkpoint_save(path, m, &info, NULL, &err) == BF_OK);
    err = (bf_error){0};
    CHECK(bf_checkpoint_load(path, bf_backend_cpu(), &back, NULL, NULL, NULL, &err) != BF_OK);
    CHECK_MSG(strstr(err.msg, "'fc1.weight' element 0 is not finite"), "%s", err.msg);
    bf_adam_free(&opt);
    bf_model_destroy(m);
    remove(path);
    remove(optim);
}

BF_TEST(a_safetensors_file_without_metadata_and_no_known_state_dict_is_refused)
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
    CHECK_MSG(strstr(err.msg, "no braggflow __metadata__") &&
                  strstr(err.msg, "not a state_dict of a known model"), "%s", err.msg);
    CHECK(m == NULL);
    remove(path);
}

BF_TEST(backward_after_an_inference_forward_is_an_error)
{
    bf_model *m = tiny_model();
    CHECK(m);
    bf_error err = {0};
    float x[L] = {0}, out[7];
    float *x_be = NULL, *d_be = NULL;
    CHECK(bf_model_predict(m, x, 1, 1, out, &err) == BF_OK);
    CHECK(m->be->alloc(sizeof x, (void **)&x_be, &err) == BF_OK);
    CHECK(m->be->alloc(sizeof out, (void **)&d_be, &err) == BF_OK);
    CHECK(m->kind->backward(m, x_be, 1, d_be, &err) != BF_OK);
    CHECK(strstr(err.msg, "backward without a training forward"));
    m->be->free(x_be);
    m->be->free(d_be);
    bf_model_destroy(m);
}

typedef struct {
    int epochs;
    double min_val, val[64];
} epoch_record;

static void record_epoch(const bf_epoch_log *log, void *user)
{
    epoch_record *r = user;
    const bf_metrics *mt = log->task_metrics;
    if (r->epochs < 64)
        r->val[r->epochs] = mt->loss;
    r->epochs++;
    r->min_val = fmin(r->min_val, log->val_score);
}

BF_TEST(training_keeps_the_checkpoint_with_the_lowest_validation_loss)
{
    float pat[N * L];
    double cells[N * 6];
    int32_t lab[N];
    bf_dataset d;
    tiny_dataset(&d, pat, cells, lab);
    char path[512];
    snprintf(path, sizeof path, "%s/best.safetensors", bf_test_tmp_dir());
    bf_train_config cfg;
    bf_train_config_defaults(&cfg);
    /* validation on the same patterns with other labels and cells: as the model learns
     * the training set, the validation loss first falls, then rises */
    float vpat[N * L];
    double vcells[N * 6];
    int32_t vlab[N];
    bf_dataset v;
    tiny_dataset(&v, vpat, vcells, vlab);
    for (int i = 0; i < N; i++) {
        vlab[i] = (lab[i] + 1) % 3;
        memcpy(vcells + 6 * i, cells + 6 * ((i + 1) % N), sizeof(double) * 6);
    }
    epoch_record rec = {.min_val = INFINITY};
    cfg.out_path = path, cfg.epochs = 12, cfg.batch = 3, cfg.threads = 2, cfg.lr = 3e-2;
    cfg.patience = 0, cfg.progress = 0, cfg.on_epoch = record_epoch, cfg.user = &rec;
    bf_structure_result res;
    bf_error err = {0};
    CHECK_MSG(bf_structure_train(&cfg, 8, &d, &v, &res, &err) == BF_OK, "%s", err.msg);
    CHECK(rec.epochs == 12 && res.train.epochs_run == 12);
    /* so the best epoch is not the last one: keeping the last would fail below */
    CHECK_MSG(rec.val[11] > rec.min_val, "the last epoch (%g) is the best (%g)", rec.val[11],
              rec.min_val);
    /* the kept checkpoint is the minimum's: its recorded score and its loss re-measured */
    bf_model *m = NULL;
    bf_checkpoint_info info;
    CHECK_MSG(bf_checkpoint_load(path, bf_backend_cpu(), &m, &info, NULL, NULL, &err) == BF_OK,
              "%s", err.msg);
    bf_model_destroy(m);
    CHECK_REL(info.val_loss, rec.min_val, 1e-7);
    CHECK_REL(res.train.best_val_score, rec.min_val, 0);
    CHECK(rec.val[res.train.best_epoch - 1] == rec.min_val && info.epoch == res.train.best_epoch);
    bf_metrics mt;
    CHECK_MSG(bf_structure_evaluate(path, &v, "tiny", 4, &mt, &err) == BF_OK, "%s", err.msg);
    CHECK_REL(mt.loss, rec.min_val, 1e-5);
    printf("  (best epoch %d of 12: %g; last %g)\n", res.train.best_epoch, rec.min_val,
           rec.val[11]);
    char optim[600];
    bf_checkpoint_optim_path(path, optim, sizeof optim);
    remove(path);
    remove(optim);
}

/* A backend whose allocations fail after a budget: the CPU backend otherwise. */
static int allocs_left;
static bf_status failing_alloc(size_t nbytes, void **out, bf_error *err)
{
    if (allocs_left-- <= 0) {
        *out = NULL;
        return bf_error_set(err, BF_ERR_NOMEM, "test backend: allocation of %zu bytes refused",
                            nbytes);
    }
    return bf_backend_cpu()->alloc(nbytes, out, err);
}

BF_TEST(a_backend_allocation_failure_is_an_error_from_training_not_a_skipped_step)
{
    float pat[N * L];
    double cells[N * 6];
    int32_t lab[N];
    bf_dataset d;
    tiny_dataset(&d, pat, cells, lab);
    bf_backend failing = *bf_backend_cpu();
    failing.name = "failing";
    failing.alloc = failing_alloc;
    char path[512];
    snprintf(path, sizeof path, "%s/nomem.safetensors", bf_test_tmp_dir());
    bf_train_config cfg;
    bf_train_config_defaults(&cfg);
    cfg.out_path = path, cfg.epochs = 1, cfg.batch = 3, cfg.progress = 0;
    cfg.backend = &failing;
    int refused = 0, budget;
    bf_structure_result res;
    /* every allocation in turn is the one that fails, until training needs no more */
    for (budget = 0; budget < 200; budget++) {
        allocs_left = budget;
        bf_error err = {0};
        bf_status st = bf_structure_train(&cfg, 8, &d, &d, &res, &err);
        if (st == BF_OK)
            break;
        CHECK_MSG(st == BF_ERR_NOMEM && strstr(err.msg, "refused"), "budget %d: %s", budget,
                  err.msg);
        refused++;
    }
    CHECK_MSG(budget < 200 && refused >= 10, "%d refusals, budget %d", refused, budget);
    char optim[600];
    bf_checkpoint_optim_path(path, optim, sizeof optim);
    remove(path);
    remove(optim);
}

static void count_epochs(const bf_epoch_log *log, void *user)
{
    (void)log;
    ++*(int *)user;
}

BF_TEST(training_stops_on_a_non_finite_loss_keeping_a_loadable_checkpoint)
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
    cfg.out_path = path, cfg.epochs = 2, cfg.batch = 3, cfg.threads = 2;
    cfg.progress = 0, cfg.on_epoch = count_epochs, cfg.user = &epochs_seen;
    bf_structure_result res;
    bf_error err = {0};
    CHECK_MSG(bf_structure_train(&cfg, 8, &d, &d, &res, &err) == BF_OK, "%s", err.msg);
    CHECK(epochs_seen == 2 && res.train.epochs_run == 2 && res.train.best_epoch >= 1);
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
    CHECK(bf_structure_train(&cfg, 8, &d, &d, &res, &err) != BF_OK);
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
