/* tests/nn/test_train_comm.c — bf_train's data-parallel path (DESIGN §10) without MPI:
 * two threads are two ranks of an in-process bf_comm (sums through a barrier), so the
 * path is tested on every machine. Two ranks must follow the one-process loss curve,
 * end with bit-identical weights on both ranks, and a failure on one rank must reach
 * both as that rank's error. Also: a training step on the backend's train_chunk samples
 * at a time is the whole-batch step. */
#include <omp.h>
#include <pthread.h>
#include <unistd.h>

#include "braggflow/nn.h"
#include "test.h"

#define RANKS 2

/* ---- an in-process communicator: every collective is barrier, sum, barrier ---- */
typedef struct {
    pthread_barrier_t bar;
    void *buf[RANKS];
    int calls[RANKS];   /* float sums started per rank: the bucket count */
} shared_comm;

static shared_comm g_sc;
static bf_comm g_comm[RANKS];

static bf_status fake_sum_f32(const bf_comm *c, float *buf, size_t n, int *req, bf_error *err)
{
    shared_comm *sc = c->impl;
    float *tmp = malloc(sizeof(float) * (n ? n : 1));
    if (!tmp)
        return bf_error_set(err, BF_ERR_NOMEM, "fake comm: out of memory");
    sc->buf[c->rank] = buf;
    pthread_barrier_wait(&sc->bar);
    for (size_t i = 0; i < n; i++) { /* the same order on every rank, as MPI gives */
        float s = 0;
        for (int r = 0; r < RANKS; r++)
            s += ((float *)sc->buf[r])[i];
        tmp[i] = s;
    }
    pthread_barrier_wait(&sc->bar);
    memcpy(buf, tmp, sizeof(float) * n);
    free(tmp);
    sc->calls[c->rank]++;
    *req = 0;
    return BF_OK;
}

static bf_status fake_wait(const bf_comm *c, int req, bf_error *err)
{
    return BF_OK;
}

static bf_status fake_sum_f64(const bf_comm *c, double *buf, int n, bf_error *err)
{
    shared_comm *sc = c->impl;
    double tmp[512];
    if (n > 512)
        return bf_error_set(err, BF_ERR_INVALID, "fake comm: %d doubles", n);
    sc->buf[c->rank] = buf;
    pthread_barrier_wait(&sc->bar);
    for (int i = 0; i < n; i++) {
        tmp[i] = 0;
        for (int r = 0; r < RANKS; r++)
            tmp[i] += ((double *)sc->buf[r])[i];
    }
    pthread_barrier_wait(&sc->bar);
    memcpy(buf, tmp, sizeof(double) * (size_t)n);
    return BF_OK;
}

static bf_status fake_bcast(const bf_comm *c, void *buf, size_t bytes, int root, bf_error *err)
{
    shared_comm *sc = c->impl;
    sc->buf[c->rank] = buf;
    pthread_barrier_wait(&sc->bar);
    if (c->rank != root)
        memcpy(buf, sc->buf[root], bytes);
    pthread_barrier_wait(&sc->bar);
    return BF_OK;
}

static void comm_setup(void)
{
    memset(&g_sc, 0, sizeof g_sc);
    pthread_barrier_init(&g_sc.bar, NULL, RANKS);
    for (int r = 0; r < RANKS; r++)
        g_comm[r] = (bf_comm){.rank = r, .size = RANKS, .impl = &g_sc,
                              .iallreduce_sum_f32 = fake_sum_f32, .wait = fake_wait,
                              .allreduce_sum_f64 = fake_sum_f64, .bcast = fake_bcast};
}

/* ---- a small regression problem: MSE of a model's outputs on random targets ---- */
static double mse_loss(void *user, const float *out, const float *target, int B, int n_out,
                       float *dout)
{
    return bf_mse_loss(dout, out, target, B, n_out, 1);
}

static double mse_score(void *user, const float *out, const float *target, long n, int n_out)
{
    return bf_mse_loss(NULL, out, target, (int)n, n_out, 1);
}

#define EPOCHS 3
typedef struct {
    const char *kind;
    int rank;                 /* -1: no comm */
    int fail_rank;            /* this rank fails its first step's forward (-1: none) */
    long split;               /* > 0: rank 0 holds rows [0, split), rank 1 the rest */
    int keyed;                /* make_batch adds a shift keyed by (epoch, global row) */
    bf_arrays tr, va;
    char out_path[256];
    double train_loss[EPOCHS], val_score[EPOCHS];
    int epochs_logged;
    float *w;                 /* final weights (copy) */
    size_t n_w;
    bf_status st;
    bf_error err;
} run_spec;

static void on_epoch(const bf_epoch_log *log, void *user)
{
    run_spec *r = user;
    if (r->epochs_logged < EPOCHS) {
        r->train_loss[r->epochs_logged] = log->train_loss;
        r->val_score[r->epochs_logged] = log->val_score;
    }
    r->epochs_logged++;
}

/* Copies rows and shifts each input by a value of (epoch, global row), as the peaks
 * augmentation keys its crops: a shard indexing its rows locally would train on
 * other values. */
static bf_status keyed_batch(void *user, const bf_arrays *set, const long *idx, int B,
                             uint64_t seed, int epoch, float *bx, float *bt, bf_error *err)
{
    const int *dims = user; /* input_len, target_len */
    for (int i = 0; i < B; i++) {
        size_t k = (size_t)(idx[i] - set->first);
        float shift = (float)((idx[i] * 7 + epoch * 3) % 11) * 0.01f;
        for (int j = 0; j < dims[0]; j++)
            bx[(size_t)i * dims[0] + j] = set->x[k * dims[0] + j] + shift;
        memcpy(bt + (size_t)i * dims[1], set->target + k * dims[1], sizeof(float) * dims[1]);
    }
    return BF_OK;
}

static void *run_train(void *arg)
{
    run_spec *r = arg;
    omp_set_num_threads(1);
    bf_model *m = NULL;
    bf_model_shape shape = bf_model_kind_find(r->kind)->default_shape;
    if (!strcmp(r->kind, "structure_net")) {
        bf_model_dim_set(bf_model_kind_find(r->kind), &shape, "input_len", 200, NULL);
        bf_model_dim_set(bf_model_kind_find(r->kind), &shape, "hidden", 8, NULL);
    }
    bf_adam opt = {0};
    bf_checkpoint_info *info = calloc(1, sizeof *info);
    r->st = info ? bf_model_create(r->kind, &shape, NULL, 7, &m, &r->err) : BF_ERR_NOMEM;
    if (r->st == BF_OK)
        r->st = bf_adam_init(&opt, m->be, m->params.total, 1e-3f, &r->err);
    if (r->st == BF_OK) {
        bf_train_config cfg;
        bf_train_config_defaults(&cfg);
        cfg.model = r->kind;
        cfg.epochs = EPOCHS;
        cfg.batch = 16;
        cfg.lr = 1e-3;
        cfg.seed = 3;
        cfg.patience = 0;
        cfg.progress = 0;
        cfg.out_path = r->out_path;
        cfg.on_epoch = on_epoch;
        cfg.user = r;
        cfg.bucket_floats = 997; /* many buckets, cut across tensors */
        cfg.comm = r->rank >= 0 ? &g_comm[r->rank] : NULL;
        bf_arrays tr = r->tr;
        if (r->fail_rank >= 0 && r->rank == r->fail_rank)
            tr.n = -1; /* refused by this rank alone: bf_train's set-up fails here */
        if (r->split > 0) { /* only this rank's rows, as a shard read from a file */
            long lo = r->rank == 0 ? 0 : r->split, hi = r->rank == 0 ? r->split : tr.n;
            tr = (bf_arrays){.x = tr.x + (size_t)lo * m->input_len,
                             .target = tr.target + (size_t)lo * m->n_out, .n = hi - lo,
                             .first = lo, .total = tr.n};
        }
        int dims[2] = {m->input_len, m->n_out};
        bf_train_result res;
        bf_objective obj = {.name = "mse", .target_len = m->n_out, .loss = mse_loss,
                            .score = mse_score, .make_batch = r->keyed ? keyed_batch : NULL,
                            .user = dims};
        r->st = bf_train(&cfg, m, &opt, &obj, &tr, &r->va, info, &res, &r->err);
    }
    if (r->st == BF_OK) {
        r->n_w = m->params.total;
        r->w = malloc(sizeof(float) * r->n_w);
        if (r->w)
            memcpy(r->w, m->w, sizeof(float) * r->n_w); /* CPU backend: host memory */
    }
    bf_adam_free(&opt);
    bf_model_destroy(m);
    free(info);
    return NULL;
}

typedef struct {
    float *x, *t;
    long n_tr, n_va;
} problem;

static int make_problem(const char *kind, problem *p)
{
    bf_model *m = NULL;
    bf_model_shape shape = bf_model_kind_find(kind)->default_shape;
    if (!strcmp(kind, "structure_net")) {
        bf_model_dim_set(bf_model_kind_find(kind), &shape, "input_len", 200, NULL);
        bf_model_dim_set(bf_model_kind_find(kind), &shape, "hidden", 8, NULL);
    }
    if (bf_model_create(kind, &shape, NULL, 7, &m, NULL) != BF_OK)
        return -1;
    p->n_tr = 45; /* batches 16 + 16 + 13: the last splits 6 + 7 */
    p->n_va = 11;
    long n = p->n_tr + p->n_va;
    p->x = malloc(sizeof(float) * (size_t)n * m->input_len);
    p->t = malloc(sizeof(float) * (size_t)n * m->n_out);
    bf_rng rng;
    bf_rng_init(&rng, 11, 0);
    for (size_t i = 0; p->x && i < (size_t)n * m->input_len; i++)
        p->x[i] = (float)bf_rng_uniform(&rng);
    for (size_t i = 0; p->t && i < (size_t)n * m->n_out; i++)
        p->t[i] = (float)bf_rng_uniform(&rng);
    int L = m->input_len, O = m->n_out;
    bf_model_destroy(m);
    return p->x && p->t ? L * 1000 + O : -1;
}

static void spec_init(run_spec *r, const char *kind, int rank, const problem *p, int L, int O)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->rank = rank;
    r->fail_rank = -1;
    r->tr = (bf_arrays){.x = p->x, .target = p->t, .n = p->n_tr};
    r->va = (bf_arrays){.x = p->x + (size_t)p->n_tr * L, .target = p->t + (size_t)p->n_tr * O,
                        .n = p->n_va};
    snprintf(r->out_path, sizeof r->out_path, "/tmp/bf_test_train_comm_%d_%s_%d.safetensors",
             (int)getpid(), kind, rank);
}

static void cleanup(run_spec *r)
{
    char optim[300];
    remove(r->out_path);
    bf_checkpoint_optim_path(r->out_path, optim, sizeof optim);
    remove(optim);
    free(r->w);
}

static void same_curve_for(const char *kind, int *bf_failed_)
{
    problem p = {0};
    int lo = make_problem(kind, &p);
    CHECK_MSG(lo > 0, "%s: problem set-up", kind);
    int L = lo / 1000, O = lo % 1000;
    run_spec one, ranks[RANKS];
    spec_init(&one, kind, -1, &p, L, O);
    run_train(&one);
    CHECK_MSG(one.st == BF_OK, "%s", one.err.msg);
    comm_setup();
    pthread_t th[RANKS];
    for (int r = 0; r < RANKS; r++) {
        spec_init(&ranks[r], kind, r, &p, L, O);
        pthread_create(&th[r], NULL, run_train, &ranks[r]);
    }
    for (int r = 0; r < RANKS; r++)
        pthread_join(th[r], NULL);
    pthread_barrier_destroy(&g_sc.bar);
    for (int r = 0; r < RANKS; r++)
        CHECK_MSG(ranks[r].st == BF_OK, "rank %d: %s", r, ranks[r].err.msg);
    CHECK_MSG(one.epochs_logged == EPOCHS && ranks[0].epochs_logged == EPOCHS,
              "epoch lines: %d and %d", one.epochs_logged, ranks[0].epochs_logged);
    CHECK_MSG(ranks[1].epochs_logged == 0, "rank 1 logged %d epochs", ranks[1].epochs_logged);
    for (int e = 0; e < EPOCHS; e++) {
        CHECK_REL(ranks[0].train_loss[e], one.train_loss[e], 1e-4);
        CHECK_REL(ranks[0].val_score[e], one.val_score[e], 1e-4);
    }
    /* the same summed gradients, clipping and Adam on every rank: the same bits */
    CHECK(ranks[0].n_w == ranks[1].n_w && ranks[0].w && ranks[1].w);
    CHECK(!memcmp(ranks[0].w, ranks[1].w, sizeof(float) * ranks[0].n_w));
    /* buckets of 997 floats: many float sums per step, not one */
    CHECK_MSG(g_sc.calls[0] > 3 * EPOCHS * 3, "%d float sums", g_sc.calls[0]);
    FILE *f0 = fopen(ranks[0].out_path, "rb"), *f1 = fopen(ranks[1].out_path, "rb");
    CHECK_MSG(f0 && !f1, "rank 0 alone writes the checkpoint");
    fclose(f0);
    cleanup(&one);
    for (int r = 0; r < RANKS; r++)
        cleanup(&ranks[r]);
    free(p.x);
    free(p.t);
}

BF_TEST(two_ranks_follow_the_one_process_curve_braggnn)
{
    same_curve_for("braggnn", bf_failed_);
}

BF_TEST(two_ranks_follow_the_one_process_curve_structure_net)
{
    same_curve_for("structure_net", bf_failed_);
}

BF_TEST(a_failing_rank_stops_every_rank_with_its_error)
{
    problem p = {0};
    int lo = make_problem("braggnn", &p);
    CHECK(lo > 0);
    comm_setup();
    run_spec ranks[RANKS];
    pthread_t th[RANKS];
    for (int r = 0; r < RANKS; r++) {
        spec_init(&ranks[r], "braggnn", r, &p, lo / 1000, lo % 1000);
        ranks[r].fail_rank = 1;
        remove(ranks[r].out_path); /* not one left by a failed test before */
        pthread_create(&th[r], NULL, run_train, &ranks[r]);
    }
    for (int r = 0; r < RANKS; r++)
        pthread_join(th[r], NULL);
    pthread_barrier_destroy(&g_sc.bar);
    for (int r = 0; r < RANKS; r++) {
        CHECK_MSG(ranks[r].st != BF_OK, "rank %d went on", r);
        CHECK_MSG(strstr(ranks[r].err.msg, "rank 1: "), "rank %d: '%s'", r, ranks[r].err.msg);
        FILE *f = fopen(ranks[r].out_path, "rb");
        CHECK_MSG(!f, "rank %d: a checkpoint was written", r);
        cleanup(&ranks[r]);
    }
    free(p.x);
    free(p.t);
}

/* kind's 1-process curve against 2 ranks holding whole arrays and 2 ranks holding
 * shards split at `split` (few rows on rank 0: some batches have none of them). */
static void shards_follow_whole_arrays(const char *kind, long split, int keyed,
                                       int *bf_failed_)
{
    problem p = {0};
    int lo = make_problem(kind, &p);
    CHECK_MSG(lo > 0, "%s: problem set-up", kind);
    int L = lo / 1000, O = lo % 1000;
    run_spec one, whole[RANKS], shard[RANKS];
    spec_init(&one, kind, -1, &p, L, O);
    one.keyed = keyed;
    run_train(&one);
    CHECK_MSG(one.st == BF_OK, "%s", one.err.msg);
    run_spec *sets[2] = {whole, shard};
    for (int k = 0; k < 2; k++) {
        comm_setup();
        pthread_t th[RANKS];
        for (int r = 0; r < RANKS; r++) {
            spec_init(&sets[k][r], kind, r, &p, L, O);
            sets[k][r].keyed = keyed;
            sets[k][r].split = k ? split : 0;
            pthread_create(&th[r], NULL, run_train, &sets[k][r]);
        }
        for (int r = 0; r < RANKS; r++)
            pthread_join(th[r], NULL);
        pthread_barrier_destroy(&g_sc.bar);
        for (int r = 0; r < RANKS; r++)
            CHECK_MSG(sets[k][r].st == BF_OK, "%s rank %d: %s", k ? "shards" : "whole", r,
                      sets[k][r].err.msg);
        CHECK(sets[k][0].epochs_logged == EPOCHS);
        for (int e = 0; e < EPOCHS; e++) {
            CHECK_REL(sets[k][0].train_loss[e], one.train_loss[e], 1e-4);
            CHECK_REL(sets[k][0].val_score[e], one.val_score[e], 1e-4);
        }
        CHECK(sets[k][0].w && sets[k][1].w &&
              !memcmp(sets[k][0].w, sets[k][1].w, sizeof(float) * sets[k][0].n_w));
    }
    cleanup(&one);
    for (int r = 0; r < RANKS; r++) {
        cleanup(&whole[r]);
        cleanup(&shard[r]);
    }
    free(p.x);
    free(p.t);
}

BF_TEST(sharded_arrays_give_the_losses_of_whole_arrays_structure_net)
{
    shards_follow_whole_arrays("structure_net", 3, 0, bf_failed_);
}

BF_TEST(sharded_arrays_hand_make_batch_global_rows_braggnn)
{
    shards_follow_whole_arrays("braggnn", 20, 1, bf_failed_);
}

BF_TEST(shards_that_do_not_make_up_one_set_are_refused_on_every_rank)
{
    problem p = {0};
    int lo = make_problem("braggnn", &p);
    CHECK(lo > 0);
    comm_setup();
    run_spec ranks[RANKS];
    pthread_t th[RANKS];
    for (int r = 0; r < RANKS; r++) {
        spec_init(&ranks[r], "braggnn", r, &p, lo / 1000, lo % 1000);
        /* both ranks claim rows [0, 20) of 45 */
        ranks[r].tr = (bf_arrays){.x = p.x, .target = p.t, .n = 20, .first = 0, .total = 45};
        pthread_create(&th[r], NULL, run_train, &ranks[r]);
    }
    for (int r = 0; r < RANKS; r++)
        pthread_join(th[r], NULL);
    pthread_barrier_destroy(&g_sc.bar);
    for (int r = 0; r < RANKS; r++) {
        CHECK_MSG(ranks[r].st == BF_ERR_INVALID && strstr(ranks[r].err.msg, "shards"),
                  "rank %d: '%s'", r, ranks[r].err.msg);
        cleanup(&ranks[r]);
    }
    run_spec one; /* and a shard without ranks */
    spec_init(&one, "braggnn", -1, &p, lo / 1000, lo % 1000);
    one.tr = (bf_arrays){.x = p.x, .target = p.t, .n = 20, .first = 0, .total = 45};
    run_train(&one);
    CHECK_MSG(one.st == BF_ERR_INVALID && strstr(one.err.msg, "several ranks"), "'%s'",
              one.err.msg);
    cleanup(&one);
    free(p.x);
    free(p.t);
}

BF_TEST(lr_scaling_names_round_trip)
{
    bf_lr_scaling s;
    const char *names[] = {"none", "sqrt", "linear"};
    for (int i = 0; i < 3; i++) {
        CHECK(bf_lr_scaling_parse(names[i], &s) == 0);
        CHECK(!strcmp(bf_lr_scaling_name(s), names[i]));
    }
    CHECK(bf_lr_scaling_parse("cubic", &s) == -1);
    CHECK(bf_comm_agree(NULL, BF_ERR_IO, NULL) == BF_ERR_IO);
}

/* ---- bf_train_step on the backend's train_chunk samples at a time ---- */

/* Two steps of braggnn (clipped Adam) on the CPU backend with the given train_chunk:
 * the losses, and copies of the first step's gradient (before clipping: *g) and the
 * weights after the second (*w), n floats each. */
static int two_steps(int train_chunk, int B, const float *x, const float *t, double loss[2],
                     float **g, float **w, size_t *n)
{
    bf_backend be = *bf_backend_cpu();
    be.train_chunk = train_chunk;
    bf_error err = {0};
    bf_model *m = NULL;
    bf_adam opt = {0};
    bf_step_ws *ws = NULL;
    bf_objective obj = {.name = "mse", .target_len = 2, .loss = mse_loss, .score = mse_score};
    bf_status st = bf_model_create("braggnn", NULL, &be, 5, &m, &err);
    if (st == BF_OK)
        st = bf_adam_init(&opt, &be, m->params.total, 1e-3f, &err);
    if (st == BF_OK)
        st = bf_step_ws_create(m, B, &ws, &err);
    *g = *w = NULL;
    for (int s = 0; st == BF_OK && s < 2; s++) {
        st = bf_train_step(m, &opt, &obj, ws, x, t, B, s ? 1.0 : 0.0, &loss[s], &err);
        float **copy = s ? w : g;
        *n = m->params.total;
        if (st == BF_OK && (*copy = malloc(sizeof(float) * *n)))
            memcpy(*copy, s ? m->w : m->g, sizeof(float) * *n);
    }
    if (st != BF_OK)
        fprintf(stderr, "  two_steps: %s\n", err.msg);
    bf_step_ws_destroy(ws);
    bf_adam_free(&opt);
    bf_model_destroy(m);
    return st == BF_OK && *g && *w ? 0 : -1;
}

/* The chunks' gradients are the batch mean's (each chunk's mean times its share), so
 * a chunked step is the whole-batch step up to the order of the sums; a batch no
 * larger than a chunk is the same bits. */
BF_TEST(a_chunked_training_step_is_the_whole_batch_step)
{
    enum { B = 300 };   /* chunks of 128, 128 and 44 */
    static float x[B * 121], t[B * 2];
    bf_rng r;
    bf_rng_init(&r, 3, 0);
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)bf_rng_uniform(&r);
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        t[i] = (float)bf_rng_uniform(&r);
    double loss_whole[2], loss_chunked[2];
    float *g_whole = NULL, *g_chunked = NULL, *w_whole = NULL, *w_chunked = NULL;
    size_t n = 0;
    int ok = two_steps(0, B, x, t, loss_whole, &g_whole, &w_whole, &n) == 0 &&
             two_steps(128, B, x, t, loss_chunked, &g_chunked, &w_chunked, &n) == 0;
    /* the losses (the second after one step on slightly different gradients) and the
     * first gradient, relative to its largest component */
    double dloss[2] = {1, 1}, worst = 1, gmax = 0;
    if (ok) {
        for (int s = 0; s < 2; s++)
            dloss[s] = fabs(loss_chunked[s] / loss_whole[s] - 1);
        for (size_t i = 0; i < n; i++)
            gmax = fmax(gmax, fabs(g_whole[i]));
        worst = 0;
        for (size_t i = 0; i < n; i++)
            worst = fmax(worst, fabs((double)g_chunked[i] - g_whole[i]) / gmax);
        fprintf(stderr, "  chunked against whole: losses %.2g, %.2g apart (relative), gradient "
                "%.2g of its largest component\n", dloss[0], dloss[1], worst);
    }
    free(g_whole), free(g_chunked), free(w_whole), free(w_chunked);
    g_whole = g_chunked = w_whole = w_chunked = NULL;
    CHECK(ok);
    CHECK_MSG(dloss[0] < 1e-9 && dloss[1] < 1e-8, "losses %g, %g apart", dloss[0], dloss[1]);
    CHECK_MSG(worst < 2e-7, "first-step gradients differ by %g of the largest", worst);
    /* B = 100 <= 128: no chunking, bit for bit */
    ok = two_steps(0, 100, x, t, loss_whole, &g_whole, &w_whole, &n) == 0 &&
         two_steps(128, 100, x, t, loss_chunked, &g_chunked, &w_chunked, &n) == 0;
    int same = ok && loss_chunked[1] == loss_whole[1] &&
               !memcmp(w_chunked, w_whole, sizeof(float) * n);
    free(g_whole), free(g_chunked), free(w_whole), free(w_chunked);
    CHECK(ok && same);
}
