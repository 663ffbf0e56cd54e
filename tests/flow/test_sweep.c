/* tests/flow/test_sweep.c — sweep INI parsing (good and every error, with FILE:LINE and
 * key), grid order, reproducible random draws, the registry's life cycle (create, claim,
 * finish, resume: a 'running' trial runs again, 'done' ones do not) and the report's
 * best trial. Whole sweeps (training, kill, MPI) run in tests/cli/test_sweep.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "braggflow/flow.h"
#include "test.h"

static bf_sweep_config cfg; /* large */

static bf_status parse(const char *text, bf_error *err)
{
    return bf_sweep_config_parse(text, "/d/s.ini", &cfg, err);
}

static const char *grid_ini = "[sweep]\nmodel = structure_net\ntrain = t.h5\nval = v.h5\n"
                              "out = out\nmode = grid\nmetric = val_score\nthreads = 1\n"
                              "[grid]\nlr = 1e-3, 3e-4\nbatch = 128, 512\nepochs = 3\n"
                              "seed = 1, 2\n";

BF_TEST(a_grid_config_is_read_with_paths_next_to_the_ini)
{
    bf_error err = {0};
    CHECK_MSG(parse(grid_ini, &err) == BF_OK, "%s", err.msg);
    CHECK(cfg.mode == BF_SWEEP_GRID);
    CHECK(cfg.n_params == 4);
    CHECK(cfg.n_trials == 8);
    CHECK(!strcmp(cfg.train, "/d/t.h5"));
    CHECK(!strcmp(cfg.out, "/d/out"));
    CHECK(cfg.threads == 1);
    CHECK(cfg.param[1].n == 2 && cfg.param[1].value[1] == 512);
}

BF_TEST(grid_trials_run_with_the_first_key_slowest)
{
    bf_error err = {0};
    CHECK(parse(grid_ini, &err) == BF_OK);
    bf_sweep_trial t;
    bf_sweep_trial_at(&cfg, 0, &t);
    CHECK(t.lr == 1e-3 && t.batch == 128 && t.seed == 1 && t.epochs == 3);
    bf_sweep_trial_at(&cfg, 1, &t);
    CHECK(t.lr == 1e-3 && t.batch == 128 && t.seed == 2);
    bf_sweep_trial_at(&cfg, 2, &t);
    CHECK(t.lr == 1e-3 && t.batch == 512 && t.seed == 1);
    bf_sweep_trial_at(&cfg, 7, &t);
    CHECK(t.lr == 3e-4 && t.batch == 512 && t.seed == 2);
    /* keys not swept keep the task's defaults (structure_net: patience 10, clip 50) */
    CHECK(t.patience == 10 && t.clip == 50);
    char json[1024];
    bf_sweep_trial_json(&cfg, &t, json, sizeof json);
    CHECK_MSG(strstr(json, "\"batch\":512") && strstr(json, "\"seed\":2"), "%s", json);
}

BF_TEST(braggnn_trials_start_from_its_own_defaults)
{
    bf_error err = {0};
    CHECK(parse("[sweep]\nmodel = braggnn\ntrain = a\nval = b\nout = c\n[grid]\nbatch = 4\n",
                &err) == BF_OK);
    bf_sweep_trial t;
    bf_sweep_trial_at(&cfg, 0, &t);
    CHECK(t.lr == 3e-4 && t.clip == 0 && t.batch == 4);
}

static const char *random_ini = "[sweep]\ntrain = t.h5\nval = v.h5\nout = out\nmode = random\n"
                                "count = 20\nseed = 7\n[random]\nlr = log 1e-4..1e-2\n"
                                "batch = 16, 32, 64\nhidden = 8..12\n";

/* A range of one value, on a log scale: exp(log(10)) rounds to 10.000000000000002, which
 * the draw must not return (found by fuzz_sweep_ini: lr > 10 fails the train check). */
BF_TEST(a_one_value_log_range_draws_exactly_that_value)
{
    bf_error err = {0};
    CHECK_MSG(parse("[sweep]\nmodel = braggnn\ntrain = p.h5\nval = q.h5\nout = s\n"
                    "mode = random\ncount = 8\nseed = 2\n[random]\nlr = log 10 ..10\n"
                    "min_delta = 0\n", &err) == BF_OK, "%s", err.msg);
    for (long i = 0; i < cfg.n_trials; i++) {
        bf_sweep_trial t;
        bf_sweep_trial_at(&cfg, i, &t);
        CHECK_MSG(t.lr == 10, "trial %ld: lr %.17g", i, t.lr);
    }
}

BF_TEST(random_draws_are_reproducible_by_seed_and_stay_in_their_ranges)
{
    bf_error err = {0};
    CHECK_MSG(parse(random_ini, &err) == BF_OK, "%s", err.msg);
    CHECK(cfg.n_trials == 20);
    bf_sweep_trial a[20], b;
    int seen_hidden[13] = {0};
    for (long i = 0; i < 20; i++) {
        bf_sweep_trial_at(&cfg, i, &a[i]);
        bf_sweep_trial_at(&cfg, i, &b);
        CHECK(a[i].lr == b.lr && a[i].batch == b.batch && a[i].hidden == b.hidden);
        CHECK(a[i].lr >= 1e-4 && a[i].lr <= 1e-2);
        CHECK(a[i].batch == 16 || a[i].batch == 32 || a[i].batch == 64);
        CHECK(a[i].hidden >= 8 && a[i].hidden <= 12);
        seen_hidden[a[i].hidden] = 1;
    }
    CHECK(a[0].lr != a[1].lr);
    CHECK(seen_hidden[8] + seen_hidden[9] + seen_hidden[10] + seen_hidden[11] +
              seen_hidden[12] >= 3);
    /* another seed, other draws */
    char other[1024];
    snprintf(other, sizeof other, "%s", random_ini);
    memcpy(strstr(other, "seed = 7"), "seed = 8", 8);
    CHECK(parse(other, &err) == BF_OK);
    bf_sweep_trial_at(&cfg, 0, &b);
    CHECK(b.lr != a[0].lr);
}

/* Each bad INI: an error naming the file, line and key. */
static void expect_error(int *bf_failed_, const char *text, const char *want)
{
    bf_error err = {0};
    CHECK_MSG(parse(text, &err) != BF_OK, "accepted: %s", text);
    CHECK_MSG(strstr(err.msg, want) != NULL, "'%s' lacks '%s'", err.msg, want);
    CHECK_MSG(!strchr(err.msg, '\n'), "%s", err.msg);
}

#define BASE "[sweep]\ntrain = t.h5\nval = v.h5\nout = out\n"

BF_TEST(bad_sweep_inis_name_the_file_line_and_key)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {BASE "colour = red\n[grid]\nlr = 1\n", "/d/s.ini:5: [sweep] colour: unknown key"},
        {BASE "[grid]\nwidth = 1, 2\n", "/d/s.ini:6: [grid] width: unknown key"},
        {BASE "[grid]\nlr =\n", "/d/s.ini:6: [grid] lr: empty list"},
        {BASE "[grid]\nlr = 1e-3,\n", "/d/s.ini:6: [grid] lr: empty item"},
        {BASE "[grid]\nlr = fast\n", "/d/s.ini:6: [grid] lr: 'fast' is not a number"},
        {BASE "[grid]\nlr = 0\n", "/d/s.ini:6: [grid] lr: '0' is not a number"},
        {BASE "[grid]\nbatch = 1.5\n", "/d/s.ini:6: [grid] batch: '1.5' is not an integer"},
        {BASE "[grid]\nlr = 1e-4..1e-3\n", "/d/s.ini:6: [grid] lr: a range lo..hi is for"},
        {BASE "mode = random\ncount = 3\n[random]\nlr = 1e-3..1e-4\n",
         "/d/s.ini:8: [random] lr: empty range"},
        {BASE "mode = random\ncount = 3\n[random]\nmin_delta = log 0..1\n",
         "/d/s.ini:8: [random] min_delta: a log range needs lo > 0"},
        {BASE "mode = random\n[random]\nlr = 1, 2\n", "/d/s.ini:5: [sweep] count: missing"},
        {BASE "mode = random\ncount = 3\n[grid]\nlr = 1\n", "/d/s.ini:7: [grid]: mode is random"},
        {BASE "[grid]\nlr = 1\nlr = 2\n", "/d/s.ini:7: [grid] lr: given twice"},
        {BASE "[grid]\n", "/d/s.ini:5: [grid]: no parameter to sweep"},
        {BASE "[fun]\n", "/d/s.ini:5: [fun]: unknown section"},
        {BASE "metric = accuracy\n[grid]\nlr = 1\n", "/d/s.ini:5: [sweep] metric:"},
        {BASE "model = resnet\n[grid]\nlr = 1\n", "/d/s.ini:5: [sweep] model:"},
        {BASE "model = braggnn\n[grid]\nhidden = 8\n", "/d/s.ini:7: [grid] hidden:"},
        {"[sweep]\ntrain = t.h5\nout = o\n[grid]\nlr = 1\n", "[sweep] val: missing"},
        {BASE "count = 2\n[grid]\nlr = 1\n", "/d/s.ini:5: [sweep] count: for mode = random"},
        {BASE "[grid]\nlr = 1, 2\n[random]\nlr = 1\n", "/d/s.ini:7: [random]: a second"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_error(bf_failed_, cases[i].text, cases[i].want);
        if (*bf_failed_)
            return;
    }
}

/* A result as a worker would send it: metric, one epoch. */
static bf_sweep_result result(long id, double metric)
{
    static bf_sweep_epoch e = {1, 2.0, 1.5, 0.1, 1};
    bf_sweep_result r = {.id = id, .ok = 1, .metric = metric, .best_epoch = 1, .epochs_run = 1,
                         .start_s = 10, .end_s = 12, .n_epochs = 1, .epochs = &e};
    snprintf(r.host, sizeof r.host, "h");
    snprintf(r.sha256, sizeof r.sha256, "%064d", 0);
    return r;
}

BF_TEST(the_registry_resumes_a_killed_sweep_without_rerunning_done_trials)
{
    bf_error err = {0};
    CHECK(parse(grid_ini, &err) == BF_OK);
    snprintf(cfg.out, sizeof cfg.out, "%s/reg", bf_test_tmp_dir());
    bf_sweep_registry *r = NULL;
    long done = -1, id = -1;
    CHECK_MSG(bf_sweep_registry_open(&cfg, &r, &done, &err) == BF_OK, "%s", err.msg);
    CHECK(done == 0);
    CHECK(bf_sweep_registry_claim(r, "h", 0, &id, &err) == BF_OK && id == 0);
    bf_sweep_result res = result(0, 0.5);
    CHECK(bf_sweep_registry_finish(r, &res, &err) == BF_OK);
    CHECK(bf_sweep_registry_claim(r, "h", 0, &id, &err) == BF_OK && id == 1);
    bf_sweep_registry_close(r); /* as a kill: trial 1 stays 'running' */

    CHECK_MSG(bf_sweep_registry_open(&cfg, &r, &done, &err) == BF_OK, "%s", err.msg);
    CHECK(done == 1);
    CHECK(bf_sweep_registry_claim(r, "h", 0, &id, &err) == BF_OK);
    CHECK_MSG(id == 1, "claimed %ld, not the interrupted trial 1", id);
    long claimed = 1;
    for (;;) {
        res = result(id, id == 2 ? 0.1 : 1.0 + (double)id);
        CHECK(bf_sweep_registry_finish(r, &res, &err) == BF_OK);
        CHECK(bf_sweep_registry_claim(r, "h", 0, &id, &err) == BF_OK);
        if (id < 0)
            break;
        CHECK(id != 0); /* done before the kill */
        claimed++;
    }
    CHECK(claimed == 7);
    bf_sweep_registry_close(r);

    /* the report names trial 2 (lowest val_score) best */
    FILE *f = tmpfile();
    CHECK(f);
    CHECK_MSG(bf_sweep_report(cfg.out, f, 3, &err) == BF_OK, "%s", err.msg);
    char text[4096] = "";
    rewind(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    CHECK_MSG(strstr(text, "best: trial 0002 val_score 0.1 (lr=0.001 batch=512"), "%s", text);
    CHECK_MSG(strstr(text, "8 trials: 8 done"), "%s", text);

    /* another configuration may not reuse the folder */
    cfg.text[0] = '#';
    CHECK(bf_sweep_registry_open(&cfg, &r, &done, &err) != BF_OK);
    CHECK_MSG(strstr(err.msg, "another configuration"), "%s", err.msg);
}

BF_TEST(a_report_of_a_folder_without_registry_is_an_error)
{
    bf_error err = {0};
    CHECK(bf_sweep_report(bf_test_tmp_dir(), NULL, 0, &err) != BF_OK);
    CHECK_MSG(strstr(err.msg, "registry.sqlite: not a sweep"), "%s", err.msg);
}
