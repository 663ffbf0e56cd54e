/* flow/campaign.c — runs a campaign (DESIGN §6): the tasks of the chosen
 * workflow, each timed, each leaving its outputs and a tasks/NAME.done record
 * (written last, atomically) so that --resume skips exactly the finished ones.
 *
 * Determinism: every simulated set has its own seed (README "Campaigns"), AL
 * proposals depend only on the previous phase's checkpoint and (seed, phase),
 * and training is deterministic for a thread count; so a resumed campaign
 * reproduces the uninterrupted one.
 *
 * Under mpirun (bf_campaign_ranks, campaign_ranks.c) rank 0 runs this same workflow:
 * its simulation sets go to the simulation ranks instead of its own threads (a task
 * beside training is posted before and awaited after it), each training task is ordered
 * on every training rank, which trains data-parallel on its shard of the rows. */
#include "flow_internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Seeds of the fixed sets, offset from the campaign seed so no two sets share
 * random streams with the phase-0 training set. */
#define SEED_VAL 0x56414cull
#define SEED_TEST 0x54455354ull
#define STREAM_AL 0x414c0000ull

typedef struct {
    const bf_campaign_config *cfg;
    char dir[4096];
    double t0;                          /* wall clock (s) when the campaign first started */
    bf_campaign_result *res;
    void (*on_line)(const char *line, void *user);
    void *user;
    bf_dataset val, test, study;
    bf_study_set study_cells;
    int n_train;                        /* training sets so far (data/train-*.h5) */
    char train_files[BF_CAMPAIGN_MAX_FILES][64];
    pthread_mutex_t lock;               /* res->tasks and on_line: S'_k runs beside T_k */
    int pinned;                         /* training on cores [0, T), simulation beside it */
    const bf_campaign_ranks *ranks;     /* NULL: one process, simulation on threads */
    int followers_listening;            /* ranks 1.. of the training group await orders */
} campaign;

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static void say(campaign *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(campaign *c, const char *fmt, ...)
{
    if (!c->on_line)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&c->lock);
    c->on_line(line, c->user);
    pthread_mutex_unlock(&c->lock);
}

static void path_in(const campaign *c, char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void path_in(const campaign *c, char *out, size_t n, const char *fmt, ...)
{
    char rel[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    snprintf(out, n, "%s/%s", c->dir, rel);
}

/* ---- task records -------------------------------------------------------------------
 * tasks/NAME.done: "start_s end_s samples" and, for training, the phase's test
 * metrics. Written after the task's outputs, so its presence means they are complete. */

static void done_path(const campaign *c, const char *name, char *out, size_t n)
{
    char safe[32];
    snprintf(safe, sizeof safe, "%s", name);
    for (char *p = safe; *p; p++)
        if (*p == '\'')
            *p = 'p'; /* S'_1 -> Sp_1 */
    path_in(c, out, n, "tasks/%s.done", safe);
}

static int task_done(campaign *c, const char *name, int phase, bf_phase_metrics *pm)
{
    char path[4200];
    done_path(c, name, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    bf_task_time t = {.phase = phase};
    snprintf(t.name, sizeof t.name, "%s", name);
    int ok = fscanf(f, "%lf %lf %ld", &t.start_s, &t.end_s, &t.samples) == 3;
    if (ok && pm) {
        bf_metrics *m = &pm->test;
        ok = fscanf(f, "%ld %d %ld %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf", &pm->n_train,
                    &pm->epochs, &m->n, &m->loss, &m->class_loss, &m->reg_loss, &m->accuracy,
                    &m->mse, &m->mse_baseline, &m->mae[0], &m->mae[1], &m->mae[2],
                    &m->mean_sigma2, &m->rmse[0]) == 14;
        pm->phase = phase;
    }
    fclose(f);
    if (!ok)
        return 0; /* unreadable: redo the task */
    pthread_mutex_lock(&c->lock);
    c->res->tasks[c->res->n_tasks++] = t;
    c->res->resumed_tasks++;
    pthread_mutex_unlock(&c->lock);
    say(c, "%-6s phase %d: done in an earlier run (%.1f s), skipped", name, phase,
        t.end_s - t.start_s);
    return 1;
}

/* Records a task that ran from start to end (wall clock, s). */
static bf_status task_finish(campaign *c, const char *name, int phase, double start,
                             double end, long n, const bf_phase_metrics *pm, bf_error *err)
{
    bf_task_time t = {.phase = phase, .start_s = start - c->t0, .end_s = end - c->t0,
                      .samples = n};
    snprintf(t.name, sizeof t.name, "%s", name);
    char path[4200];
    done_path(c, name, path, sizeof path);
    bf_atomic_file af;
    bf_status st = bf_atomic_begin(&af, path, 1, err);
    if (st != BF_OK)
        return st;
    fprintf(af.fp, "%.6f %.6f %ld\n", t.start_s, t.end_s, t.samples);
    if (pm) {
        const bf_metrics *m = &pm->test;
        fprintf(af.fp, "%ld %d %ld %.9g %.9g %.9g %.9g %.9g %.9g %.9g %.9g %.9g %.9g %.9g\n",
                pm->n_train, pm->epochs, m->n, m->loss, m->class_loss, m->reg_loss, m->accuracy,
                m->mse, m->mse_baseline, m->mae[0], m->mae[1], m->mae[2], m->mean_sigma2,
                m->rmse[0]);
    }
    st = bf_atomic_commit(&af, err);
    if (st == BF_OK) {
        pthread_mutex_lock(&c->lock);
        c->res->tasks[c->res->n_tasks++] = t;
        pthread_mutex_unlock(&c->lock);
        say(c, "%-6s phase %d: %ld patterns, %.1f s", name, phase, n, t.end_s - t.start_s);
    }
    return st;
}

/* ---- simulation ----------------------------------------------------------------------
 * Each set's cells are made here, on rank 0 (flow_internal.h: bf_sim_set); they are
 * simulated on this process's threads or, under mpirun, on the simulation ranks. */

/* n patterns split evenly over the classes (first classes take the remainder),
 * uniform in each box, from seed: the cells bf_dataset_simulate would draw. */
static bf_status set_uniform(const campaign *c, long n, uint64_t seed, const char *file,
                             bf_sim_set *s, bf_error *err)
{
    memset(s, 0, sizeof *s);
    bf_sample_config *sc = malloc(sizeof *sc);
    if (!sc)
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    *sc = c->cfg->sample;
    sc->seed = seed;
    sc->sampler = BF_SAMPLER_RANDOM; /* also for grid campaigns' validation and test sets */
    int C = sc->n_classes;
    for (int k = 0; k < C; k++)
        sc->classes[k].count = n / C + (k < n % C);
    bf_status st = bf_dataset_draw_cells(sc, &s->cells, &s->class_index, &s->n, err);
    free(sc);
    snprintf(s->file, sizeof s->file, "%s", file);
    s->seed = seed;
    s->sampler = BF_SAMPLER_RANDOM;
    return st;
}

/* The given cells, with labels (label -> class index). */
static bf_status set_cells(const campaign *c, const bf_cell *cells, const int32_t *labels,
                           long n, const char *file, bf_sim_set *s, bf_error *err)
{
    const bf_sample_config *sc = &c->cfg->sample;
    *s = (bf_sim_set){.seed = sc->seed, .sampler = -1, .n = n,
                      .cells = malloc(sizeof(bf_cell) * (size_t)(n ? n : 1)),
                      .class_index = malloc(sizeof(int32_t) * (size_t)(n ? n : 1))};
    snprintf(s->file, sizeof s->file, "%s", file);
    if (!s->cells || !s->class_index) {
        bf_sim_set_free(s);
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    }
    memcpy(s->cells, cells, sizeof(bf_cell) * (size_t)n);
    for (long i = 0; i < n; i++) {
        s->class_index[i] = -1;
        for (int k = 0; k < sc->n_classes; k++)
            if (sc->classes[k].label == labels[i])
                s->class_index[i] = k;
    }
    return BF_OK;
}

/* Seed 000's bias-free partition: phase k of n (1-based) of every class's grid;
 * phase 0 of 0 means the whole grid. */
static bf_status set_partition(const campaign *c, int n, int k, const char *file,
                               bf_sim_set *s, bf_error *err)
{
    const bf_sample_config *sc = &c->cfg->sample;
    *s = (bf_sim_set){.seed = sc->seed, .sampler = -1};
    snprintf(s->file, sizeof s->file, "%s", file);
    long counts[BF_MAX_CLASSES], total = 0;
    for (int j = 0; j < sc->n_classes; j++) {
        bf_status st = bf_sample_grid(&sc->classes[j], n ? n : 1, n ? k : 1, NULL, &counts[j],
                                      err);
        if (st != BF_OK)
            return st;
        total += counts[j];
    }
    if (total == 0)
        return bf_error_set(err, BF_ERR_INVALID, "phase %d of %d of the grid holds no cells", k,
                            n);
    s->cells = malloc(sizeof(bf_cell) * (size_t)total);
    s->class_index = malloc(sizeof(int32_t) * (size_t)total);
    bf_status st = s->cells && s->class_index ? BF_OK
                                              : bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    long off = 0;
    for (int j = 0; j < sc->n_classes && st == BF_OK; j++) {
        long m = counts[j];
        st = bf_sample_grid(&sc->classes[j], n ? n : 1, n ? k : 1, s->cells + off, &m, err);
        for (long i = off; i < off + m; i++)
            s->class_index[i] = j;
        off += m;
    }
    s->n = total;
    if (st != BF_OK)
        bf_sim_set_free(s);
    return st;
}

static bf_status load_set(campaign *c, bf_dataset *d, const char *file, bf_error *err)
{
    char path[4200];
    path_in(c, path, sizeof path, "data/%s", file);
    return bf_dataset_read_h5(path, d, err);
}

/* s simulated on this process's threads and written to data/; kept in *keep (or freed). */
static bf_status run_set_here(campaign *c, const bf_sim_set *s, bf_dataset *keep, bf_error *err)
{
    bf_dataset d = {0};
    char path[4200];
    path_in(c, path, sizeof path, "data/%s", s->file);
    bf_status st = bf_sim_set_simulate(&c->cfg->sample, s, 0, s->n, c->cfg->sim_threads, &d, err);
    if (st == BF_OK)
        st = bf_dataset_write_h5(&d, path, BF_LAYOUT_BRAGGFLOW, err);
    if (st == BF_OK && keep)
        *keep = d;
    else
        bf_dataset_free(&d);
    return st;
}

/* s simulated (here or on the simulation ranks), written to data/, kept in *keep if
 * wanted; then freed. */
static bf_status run_set(campaign *c, bf_sim_set *s, bf_dataset *keep, bf_error *err)
{
    bf_status st;
    if (c->ranks) {
        double start, end;
        st = bf_campaign_sim_post(c->ranks, s, err);
        if (st == BF_OK)
            st = bf_campaign_sim_wait(c->ranks, &start, &end, err);
        if (st == BF_OK && keep)
            st = load_set(c, keep, s->file, err);
    } else {
        st = run_set_here(c, s, keep, err);
    }
    bf_sim_set_free(s);
    return st;
}

static void add_train_file(campaign *c, const char *file)
{
    snprintf(c->train_files[c->n_train++], sizeof c->train_files[0], "%s", file);
}

/* ---- training ----------------------------------------------------------------------
 * T_k trains on every data/train-*.h5 so far, joined in order and read back from data/
 * (as --resume must). With several training ranks each reads only its shard of those
 * rows and they train data-parallel (DESIGN §10); rank 0 orders each task. */

/* Starts the training set afresh (seed 000's phases each train on their own cells). */
static void reset_training(campaign *c)
{
    c->n_train = 0;
}

/* Rows [total r / P, total (r + 1) / P) of o's files joined (P = 1: all of them). */
static bf_status load_shard(campaign *c, const bf_train_order *o, int r, int P, bf_dataset *d,
                            long *first, long *total, bf_error *err)
{
    long sum = 0;
    char path[4200];
    memset(d, 0, sizeof *d);
    bf_status st = BF_OK;
    for (int f = 0; f < o->n_files; f++)
        sum += (long)o->rows[f];
    long lo = sum * r / P, hi = sum * (r + 1) / P, at = 0;
    *first = lo;
    *total = sum;
    for (int f = 0; f < o->n_files && st == BF_OK; at += (long)o->rows[f], f++) {
        long nf = (long)o->rows[f];
        long a = lo > at ? lo : at, b = hi < at + nf ? hi : at + nf;
        if (b <= a)
            continue;
        bf_dataset part = {0};
        path_in(c, path, sizeof path, "data/%s", o->files[f]);
        st = bf_dataset_read_h5_rows(path, a - at, b - a, &part, err);
        if (st == BF_OK && d->n == 0) {
            *d = part; /* the first file's provenance heads the shard */
            continue;
        }
        if (st == BF_OK)
            st = bf_dataset_append(d, &part, err);
        bf_dataset_free(&part);
    }
    if (st != BF_OK)
        bf_dataset_free(d);
    return st;
}

static int epochs_for(const bf_campaign_config *cfg, int phase, long n0, long n)
{
    if (cfg->n_epochs_given > 1)
        return cfg->epochs[phase];
    if (n0 <= 0) /* seed 000's phased workflows: the same epochs every phase */
        return cfg->epochs[0];
    /* DESIGN §6: epochs ∝ 1/sqrt(N_train) (seed 001: 400/300/250/200) */
    int e = (int)lround(cfg->epochs[0] * sqrt((double)n0 / (double)n));
    return e < 1 ? 1 : e;
}

/* Order o on this training rank (every training rank at once): models/phase-K from
 * phase K-1's (K > 0), the best validation checkpoint written by rank 0. *n_rows: the
 * rows trained on, all ranks together. */
static bf_status train_order(campaign *c, const bf_train_order *o, long *n_rows, bf_error *err)
{
    const bf_comm *group = c->ranks ? c->ranks->train : NULL;
    bf_dataset shard;
    long first = 0, total = 0;
    bf_status st = load_shard(c, o, group ? group->rank : 0, group ? group->size : 1, &shard,
                              &first, &total, err);
    if (st == BF_OK && !c->val.n)
        st = load_set(c, &c->val, "val.h5", err);
    st = bf_comm_agree(group, st, err); /* a rank that cannot read its shard stops them all */
    *n_rows = total;
    char out[4200], init[4200];
    path_in(c, out, sizeof out, "models/phase-%d.safetensors", o->phase);
    path_in(c, init, sizeof init, "models/phase-%d.safetensors", o->phase - 1);
    bf_train_config tc;
    bf_train_config_defaults(&tc);
    tc.out_path = out;
    tc.init_path = o->phase > 0 ? init : NULL;
    tc.epochs = o->epochs;
    tc.batch = c->cfg->batch;
    tc.lr = c->cfg->lr;
    tc.clip_norm = c->cfg->clip;
    tc.patience = c->cfg->patience;
    tc.seed = c->cfg->sample.seed + (uint64_t)o->phase;
    tc.threads = c->cfg->train_threads;
    tc.progress = 0;
    tc.train_name = "training set";
    tc.val_name = "data/val.h5";
    tc.comm = group;
    tc.train_first = first;
    tc.train_total = total;
    bf_structure_result tr;
    if (st == BF_OK)
        st = bf_structure_train(&tc, c->cfg->hidden, &shard, &c->val, &tr, err);
    if (st != BF_OK && group)
        c->followers_listening = 0; /* every training rank failed with it and stops */
    bf_dataset_free(&shard);
    return st;
}

static bf_status train_phase(campaign *c, int phase, long n0, bf_error *err)
{
    char name[16];
    snprintf(name, sizeof name, "T_%d", phase);
    bf_phase_metrics *pm = &c->res->phase[phase];
    if (task_done(c, name, phase, pm)) {
        c->res->n_phases = phase + 1;
        return BF_OK;
    }
    double start = wall_now();
    bf_train_order o = {.phase = phase, .n_files = c->n_train};
    long n = 0;
    bf_status st = BF_OK;
    for (int f = 0; f < c->n_train && st == BF_OK; f++) {
        char path[4200];
        snprintf(o.files[f], sizeof o.files[f], "%s", c->train_files[f]);
        path_in(c, path, sizeof path, "data/%s", o.files[f]);
        long nf = 0;
        st = bf_dataset_h5_count(path, &nf, err);
        o.rows[f] = nf;
        n += nf;
    }
    o.epochs = epochs_for(c->cfg, phase, n0, n);
    if (st == BF_OK && c->ranks && c->ranks->train)
        st = bf_campaign_train_post(c->ranks, &o, err);
    if (st == BF_OK)
        st = train_order(c, &o, &n, err);
    char out[4200];
    path_in(c, out, sizeof out, "models/phase-%d.safetensors", phase);
    if (st == BF_OK)
        st = bf_structure_evaluate(out, &c->test, "data/test.h5", c->cfg->batch, &pm->test, err);
    *pm = (bf_phase_metrics){.phase = phase, .n_train = n, .epochs = o.epochs, .test = pm->test};
    if (st != BF_OK) {
        bf_error_prefix(err, "%s", name);
        return st;
    }
    c->res->n_phases = phase + 1;
    return task_finish(c, name, phase, start, wall_now(), n, pm, err);
}

/* Ranks 1.. of the training group: the orders of rank 0 until it says stop. */
static bf_status follow_orders(campaign *c, bf_error *err)
{
    for (;;) {
        bf_train_order o;
        long n = 0;
        bf_status st = bf_campaign_train_next(c->ranks, &o, err);
        if (st != BF_OK || o.stop)
            return st;
        if (o.n_files < 0 || o.n_files > BF_CAMPAIGN_MAX_FILES)
            return bf_error_set(err, BF_ERR_IO, "a malformed training order");
        for (int f = 0; f < o.n_files; f++) {
            o.files[f][sizeof o.files[f] - 1] = 0;
            if (o.rows[f] < 0)
                return bf_error_set(err, BF_ERR_IO, "a malformed training order");
        }
        st = train_order(c, &o, &n, err);
        if (st != BF_OK)
            return st;
    }
}

/* ---- tasks ------------------------------------------------------------------------- */

/* Runs a task (skipping it when done) and records it. */
static bf_status run_task(campaign *c, const char *name, int phase,
                          bf_status (*work)(campaign *, void *, long *, bf_error *), void *arg,
                          bf_error *err)
{
    if (task_done(c, name, phase, NULL))
        return BF_OK;
    double start = wall_now();
    long n = 0;
    bf_status st = work(c, arg, &n, err);
    if (st != BF_OK) {
        bf_error_prefix(err, "%s", name);
        return st;
    }
    return task_finish(c, name, phase, start, wall_now(), n, NULL, err);
}

/* A simulation task beside T_k: one set, made (on this thread) before training starts,
 * simulated on another thread or on the simulation ranks while it trains. */
typedef struct {
    campaign *c;
    const char *name;
    int phase;
    bf_status (*make)(campaign *c, void *arg, bf_sim_set *s, bf_error *err);
    void *arg;
    bf_dataset *keep;                   /* the set is also kept here (the study set) */
    bf_sim_set set;
    double start;
    bf_status st;
    bf_error err;
} bg_task;

static void *bg_main(void *p)
{
    bg_task *t = p;
    char why[128];
    if (t->c->pinned) /* a fresh thread: its OpenMP team inherits this binding */
        bf_pin_thread_to_cores(t->c->cfg->train_threads, t->c->cfg->sim_threads, why,
                               sizeof why);
    long n = t->set.n;
    t->st = run_set_here(t->c, &t->set, t->keep, &t->err);
    if (t->st == BF_OK) /* recorded as it ends, while training goes on */
        t->st = task_finish(t->c, t->name, t->phase, t->start, wall_now(), n, NULL, &t->err);
    return NULL;
}

/* bg's end on the simulation ranks, recorded (rank 0, after T_k). */
static bf_status bg_wait_ranks(bg_task *bg, bf_error *err)
{
    campaign *c = bg->c;
    double start = 0, end = 0;
    bf_status st = bf_campaign_sim_wait(c->ranks, &start, &end, err);
    if (st == BF_OK && bg->keep)
        st = load_set(c, bg->keep, bg->set.file, err);
    if (st == BF_OK)
        st = task_finish(c, bg->name, bg->phase, start, end, bg->set.n, NULL, err);
    return st;
}

/* T_k with a simulation task beside it (none when bg is NULL); the pair is recorded as
 * the parallel group PG_k. */
static bf_status train_beside(campaign *c, int k, long n0, bg_task *bg, bf_error *err)
{
    pthread_t thread;
    double start = wall_now();
    bf_status st = BF_OK;
    int running = 0;
    if (bg && !task_done(c, bg->name, bg->phase, NULL)) {
        st = bg->make(c, bg->arg, &bg->set, err);
        bg->start = wall_now();
        if (st == BF_OK && c->ranks)
            st = bf_campaign_sim_post(c->ranks, &bg->set, err);
        else if (st == BF_OK && pthread_create(&thread, NULL, bg_main, bg) != 0)
            st = bf_error_set(err, BF_ERR_NOMEM, "cannot start a simulation thread");
        running = st == BF_OK;
        if (st != BF_OK) {
            bf_error_prefix(err, "%s", bg->name);
            bf_sim_set_free(&bg->set);
            return st;
        }
    }
    st = train_phase(c, k, n0, err);
    if (running) {
        bf_error bg_err = {0};
        bf_status bst;
        if (c->ranks) {
            bst = bg_wait_ranks(bg, &bg_err);
        } else {
            pthread_join(thread, NULL);
            bst = bg->st;
            bg_err = bg->err;
        }
        if (bst != BF_OK)
            bf_error_prefix(&bg_err, "%s", bg->name);
        bf_sim_set_free(&bg->set);
        if (st == BF_OK && bst != BF_OK) {
            *err = bg_err;
            st = bst;
        }
    }
    if (st == BF_OK) {
        bf_task_time pg = {.phase = k, .start_s = start - c->t0, .end_s = wall_now() - c->t0};
        snprintf(pg.name, sizeof pg.name, "PG_%d", k);
        pthread_mutex_lock(&c->lock);
        c->res->tasks[c->res->n_tasks++] = pg;
        pthread_mutex_unlock(&c->lock);
    }
    return st;
}

/* ---- phase 0 ----------------------------------------------------------------------- */

static bf_status make_study(campaign *c, void *arg, bf_sim_set *s, bf_error *err)
{
    (void)arg;
    bf_study_set_free(&c->study_cells);
    bf_status st = bf_study_set_make(c->cfg->sample.classes, c->cfg->sample.n_classes,
                                     c->cfg->study_per_class, &c->study_cells, err);
    if (st == BF_OK)
        st = set_cells(c, c->study_cells.cells, c->study_cells.labels, c->study_cells.n,
                       "study.h5", s, err);
    return st;
}

/* S_0: training set, validation and test (and, serially, the study set). */
static bf_status work_s0(campaign *c, void *arg, long *n, bf_error *err)
{
    int with_study = *(int *)arg;
    const bf_campaign_config *cfg = c->cfg;
    bf_sim_set s;
    bf_status st;
    long n_train = 0;
    if (cfg->sample.sampler == BF_SAMPLER_GRID) {
        /* seed 000: the whole grid (baseline) or the first bias-free phase */
        st = set_partition(c, cfg->workflow == BF_FLOW_BASELINE ? 0 : cfg->phases, 1,
                           "train-0.h5", &s, err);
        n_train = st == BF_OK ? s.n : 0;
    } else {
        for (int k = 0; k < cfg->sample.n_classes; k++)
            n_train += cfg->sample.classes[k].count;
        if (cfg->workflow == BF_FLOW_BASELINE) /* every later phase's batch, uniform, up front */
            n_train += (long)(cfg->phases - 1) * cfg->new_per_phase;
        st = set_uniform(c, n_train, cfg->sample.seed, "train-0.h5", &s, err);
    }
    if (st == BF_OK)
        st = run_set(c, &s, NULL, err);
    if (st == BF_OK)
        st = set_uniform(c, cfg->val, cfg->sample.seed + SEED_VAL, "val.h5", &s, err);
    if (st == BF_OK)
        st = run_set(c, &s, &c->val, err);
    if (st == BF_OK)
        st = set_uniform(c, cfg->test, cfg->sample.seed + SEED_TEST, "test.h5", &s, err);
    if (st == BF_OK)
        st = run_set(c, &s, &c->test, err);
    if (st == BF_OK && with_study)
        st = make_study(c, NULL, &s, err);
    if (st == BF_OK && with_study)
        st = run_set(c, &s, &c->study, err);
    *n = n_train + cfg->val + cfg->test + (with_study ? c->study.n : 0);
    return st;
}

/* ---- later phases ------------------------------------------------------------------- */

typedef struct {
    int phase;
    bf_cell *cells;
    int32_t *labels;
    long first, count;                  /* the slice of the proposal this task simulates */
    char file[64];
} sim_slice;

static bf_status make_slice(campaign *c, void *arg, bf_sim_set *s, bf_error *err)
{
    sim_slice *sl = arg;
    return set_cells(c, sl->cells + sl->first, sl->labels + sl->first, sl->count, sl->file, s,
                     err);
}

static bf_status work_slice(campaign *c, void *arg, long *n, bf_error *err)
{
    bf_sim_set s;
    bf_status st = make_slice(c, arg, &s, err);
    *n = s.n;
    return st == BF_OK ? run_set(c, &s, NULL, err) : st;
}

/* AL_k: the phase's batch from M_{k-1} on the study set, saved as data/al-k.csv. */
static bf_status work_al(campaign *c, void *arg, long *n, bf_error *err)
{
    sim_slice *s = arg;
    const bf_campaign_config *cfg = c->cfg;
    char model_path[4200], csv[4200];
    path_in(c, model_path, sizeof model_path, "models/phase-%d.safetensors", s->phase - 1);
    bf_model *m = NULL;
    bf_checkpoint_info info;
    bf_structure_meta meta;
    float *x = NULL, *out = NULL;
    double *w = NULL;
    bf_status st = bf_structure_load(model_path, bf_backend_cpu(), &m, &info, &meta, err);
    if (st == BF_OK)
        st = bf_structure_inputs(m, &c->study, "data/study.h5", &meta.scaling, &x, NULL, NULL,
                                 err);
    if (st == BF_OK) {
        out = malloc(sizeof(float) * (size_t)c->study.n * m->n_out);
        w = malloc(sizeof(double) * (size_t)c->study.n);
        if (!out || !w)
            st = bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    }
    if (st == BF_OK)
        st = bf_model_predict(m, x, c->study.n, cfg->batch, out, err);
    if (st == BF_OK)
        st = bf_al_weights(&cfg->policy, out, c->study.n, meta.n_classes, w, err);
    if (st == BF_OK)
        st = bf_al_propose(&cfg->policy, cfg->sample.classes, cfg->sample.n_classes,
                           &c->study_cells, w, cfg->new_per_phase, cfg->sample.seed,
                           STREAM_AL + (uint64_t)s->phase, s->cells, s->labels, err);
    path_in(c, csv, sizeof csv, "data/al-%d.csv", s->phase);
    bf_atomic_file af;
    if (st == BF_OK)
        st = bf_atomic_begin(&af, csv, 1, err);
    if (st == BF_OK) {
        fprintf(af.fp, "label,a,b,c,alpha,beta,gamma\n");
        for (long i = 0; i < cfg->new_per_phase; i++) {
            const bf_cell *q = &s->cells[i];
            fprintf(af.fp, "%d,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g\n", (int)s->labels[i], q->a,
                    q->b, q->c, q->alpha, q->beta, q->gamma);
        }
        st = bf_atomic_commit(&af, err);
    }
    *n = cfg->new_per_phase;
    free(x);
    free(out);
    free(w);
    bf_model_destroy(m);
    return st;
}

/* Reads a finished AL task's proposal back (resume). */
static bf_status read_proposal(campaign *c, sim_slice *s, bf_error *err)
{
    char csv[4200];
    path_in(c, csv, sizeof csv, "data/al-%d.csv", s->phase);
    FILE *f = fopen(csv, "r");
    if (!f)
        return bf_error_set(err, BF_ERR_IO, "%s: %s", csv, strerror(errno));
    long i = 0;
    int lab = 0;
    bf_status st = fscanf(f, "%*[^\n]\n") == 0 ? BF_OK : BF_ERR_PARSE;
    for (; st == BF_OK && i < c->cfg->new_per_phase; i++) {
        bf_cell *q = &s->cells[i];
        if (fscanf(f, "%d,%lf,%lf,%lf,%lf,%lf,%lf", &lab, &q->a, &q->b, &q->c, &q->alpha,
                   &q->beta, &q->gamma) != 7)
            st = BF_ERR_PARSE;
        s->labels[i] = lab;
    }
    fclose(f);
    if (st != BF_OK)
        return bf_error_set(err, BF_ERR_PARSE, "%s: line %ld: expected 7 values", csv, i + 1);
    return BF_OK;
}

static bf_status later_phase(campaign *c, int k, long n0, bf_error *err)
{
    const bf_campaign_config *cfg = c->cfg;
    long N = cfg->new_per_phase;
    sim_slice s = {.phase = k, .cells = malloc(sizeof(bf_cell) * (size_t)N),
                   .labels = malloc(sizeof(int32_t) * (size_t)N)};
    char name[16];
    bf_status st = s.cells && s.labels ? BF_OK : bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    snprintf(name, sizeof name, "AL_%d", k);
    if (st == BF_OK)
        st = task_done(c, name, k, NULL) ? read_proposal(c, &s, err)
                                         : run_task(c, name, k, work_al, &s, err);
    /* streaming: S_k takes stream_fraction of the batch, S'_k the rest during T_k;
     * the last phase simulates the whole batch before training */
    int stream = cfg->workflow == BF_FLOW_STREAMING && k < cfg->phases - 1;
    long first = stream ? lround(cfg->stream_fraction * (double)N) : N;
    s.first = 0, s.count = first;
    snprintf(s.file, sizeof s.file, "train-%d.h5", k);
    snprintf(name, sizeof name, "S_%d", k);
    if (st == BF_OK && s.count > 0) {
        st = run_task(c, name, k, work_slice, &s, err);
        add_train_file(c, s.file);
    }
    sim_slice rest = s;
    rest.first = first, rest.count = N - first;
    snprintf(rest.file, sizeof rest.file, "train-%d-stream.h5", k);
    char bg_name[16];
    snprintf(bg_name, sizeof bg_name, "S'_%d", k);
    bg_task bg = {.c = c, .name = bg_name, .phase = k, .make = make_slice, .arg = &rest};
    if (st == BF_OK)
        st = train_beside(c, k, n0, stream && rest.count > 0 ? &bg : NULL, err);
    if (stream && rest.count > 0)
        add_train_file(c, rest.file); /* used from phase k+1 on */
    free(s.cells);
    free(s.labels);
    return st;
}

/* ---- seed 000's phased workflows ----------------------------------------------------
 * serial: S_k then T_k; parallel: S_{k+1} simulated while T_k trains. T_k continues
 * from M_{k-1} on phase k's partition only (seed 000 Sec. IV: "training was
 * continued with the data generated in phase 2"). */

/* Phase k's cells (0-based) into data/train-k.h5. */
static bf_status make_partition(campaign *c, void *arg, bf_sim_set *s, bf_error *err)
{
    int k = *(int *)arg;
    char file[64];
    snprintf(file, sizeof file, "train-%d.h5", k);
    return set_partition(c, c->cfg->phases, k + 1, file, s, err);
}

static bf_status work_partition(campaign *c, void *arg, long *n, bf_error *err)
{
    bf_sim_set s;
    bf_status st = make_partition(c, arg, &s, err);
    *n = st == BF_OK ? s.n : 0;
    return st == BF_OK ? run_set(c, &s, NULL, err) : st;
}

static bf_status grid_phases(campaign *c, long n0, bf_error *err)
{
    const bf_campaign_config *cfg = c->cfg;
    int parallel = cfg->workflow == BF_FLOW_PARALLEL;
    bf_status st = BF_OK;
    int next[BF_MAX_PHASES];
    for (int k = 0; k < cfg->phases && st == BF_OK; k++) {
        char name[16], next_name[16], file[64];
        if (k > 0 && !parallel) { /* serial: this phase's cells now */
            int kk = k;
            snprintf(name, sizeof name, "S_%d", k);
            st = run_task(c, name, k, work_partition, &kk, err);
        }
        /* parallel: the next phase's cells while this one trains */
        next[k] = k + 1;
        snprintf(next_name, sizeof next_name, "S_%d", k + 1);
        bg_task bg = {.c = c, .name = next_name, .phase = k + 1, .make = make_partition,
                      .arg = &next[k]};
        reset_training(c); /* phase k trains on its own partition */
        snprintf(file, sizeof file, "train-%d.h5", k);
        add_train_file(c, file);
        if (st == BF_OK)
            st = train_beside(c, k, n0, parallel && k + 1 < cfg->phases ? &bg : NULL, err);
    }
    return st;
}

/* ---- outputs ------------------------------------------------------------------------ */

static bf_status write_tables(campaign *c, bf_error *err)
{
    char path[4200];
    bf_atomic_file af;
    path_in(c, path, sizeof path, "timeline.csv");
    bf_status st = bf_atomic_begin(&af, path, 1, err);
    if (st != BF_OK)
        return st;
    fprintf(af.fp, "task,phase,start_s,end_s,seconds,samples\n");
    for (int i = 0; i < c->res->n_tasks; i++) {
        const bf_task_time *t = &c->res->tasks[i];
        fprintf(af.fp, "%s,%d,%.3f,%.3f,%.3f,%ld\n", t->name, t->phase, t->start_s, t->end_s,
                t->end_s - t->start_s, t->samples);
    }
    st = bf_atomic_commit(&af, err);
    path_in(c, path, sizeof path, "metrics.csv");
    if (st == BF_OK)
        st = bf_atomic_begin(&af, path, 1, err);
    if (st != BF_OK)
        return st;
    fprintf(af.fp, "phase,n_train,epochs,test_n,test_loss,test_class_loss,test_reg_loss,"
                   "test_accuracy,test_mse,test_mse_baseline,mae_a_A,mae_c_A,mae_alpha_deg,"
                   "mean_sigma2\n");
    for (int k = 0; k < c->res->n_phases; k++) {
        const bf_phase_metrics *p = &c->res->phase[k];
        const bf_metrics *m = &p->test;
        fprintf(af.fp, "%d,%ld,%d,%ld,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", k,
                p->n_train, p->epochs, m->n, m->loss, m->class_loss, m->reg_loss, m->accuracy,
                m->mse, m->mse_baseline, m->mae[0], m->mae[1], m->mae[2], m->mean_sigma2);
    }
    st = bf_atomic_commit(&af, err);
    path_in(c, path, sizeof path, "summary.txt");
    if (st == BF_OK)
        st = bf_atomic_begin(&af, path, 1, err);
    if (st == BF_OK) {
        bf_campaign_print_summary(af.fp, c->cfg, c->res);
        st = bf_atomic_commit(&af, err);
    }
    return st;
}

static bf_status write_text(const char *path, const char *text, bf_error *err)
{
    bf_atomic_file af;
    bf_status st = bf_atomic_begin(&af, path, 1, err);
    if (st == BF_OK) {
        fputs(text, af.fp);
        st = bf_atomic_commit(&af, err);
    }
    return st;
}

/* provenance.json: version, workflow, seed, policy, threads, the config's SHA-256
 * and those of its input files (a file that cannot be hashed is left out). */
static bf_status write_provenance(const campaign *c, bf_error *err)
{
    const bf_campaign_config *cfg = c->cfg;
    char path[4200], sha[65], q[8192];
    path_in(c, path, sizeof path, "provenance.json");
    bf_atomic_file af;
    bf_status st = bf_atomic_begin(&af, path, 1, err);
    if (st != BF_OK)
        return st;
    bf_sha256_hex(cfg->sample.config_text, strlen(cfg->sample.config_text), sha);
    fprintf(af.fp,
            "{\n  \"braggflow_version\": \"%s\",\n  \"workflow\": \"%s\",\n  \"seed\": %llu,\n"
            "  \"config_sha256\": \"%s\",\n  \"policy\": \"%s\",\n  \"sim_threads\": %d,\n"
            "  \"train_threads\": %d,\n  \"inputs\": {",
            BF_VERSION, bf_workflow_name(cfg->workflow), (unsigned long long)cfg->sample.seed,
            sha, bf_al_kind_name(cfg->policy.kind), cfg->sim_threads, cfg->train_threads);
    const char *sep = "";
    for (int k = -1; k < cfg->sample.n_classes; k++) {
        const char *file = k < 0 ? cfg->sample.instprm_path : cfg->sample.classes[k].cif_path;
        bf_error ignore = {0};
        if (bf_sha256_file_hex(file, sha, &ignore) != BF_OK)
            continue;
        fprintf(af.fp, "%s\n    %s: \"%s\"", sep, bf_json_quote(file, q, sizeof q), sha);
        sep = ",";
    }
    fprintf(af.fp, "\n  }\n}\n");
    return bf_atomic_commit(&af, err);
}

/* The folder, the config copy, provenance and the start time (kept on resume). */
static bf_status prepare_dir(campaign *c, int resume, bf_error *err)
{
    char path[4200];
    if (!resume && mkdir(c->dir, 0777) != 0)
        return bf_error_set(err, BF_ERR_IO, "%s: %s%s", c->dir, strerror(errno),
                            errno == EEXIST ? " (use --resume to continue it, or another --out)"
                                            : "");
    if (resume) {
        path_in(c, path, sizeof path, "config.ini");
        char *old = NULL;
        if (bf_read_file(path, &old, NULL, err) != BF_OK)
            return bf_error_set(err, BF_ERR_IO, "%s: not a campaign folder (no config.ini)",
                                c->dir);
        int same = !strcmp(old, c->cfg->sample.config_text);
        free(old);
        if (!same)
            return bf_error_set(err, BF_ERR_INVALID,
                                "%s: config.ini differs from %s; resume with the campaign's own "
                                "config (braggflow campaign --resume DIR)", c->dir, c->cfg->path);
    }
    const char *sub[] = {"data", "models", "tasks"};
    for (int i = 0; i < 3; i++) {
        path_in(c, path, sizeof path, "%s", sub[i]);
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return bf_error_set(err, BF_ERR_IO, "%s: %s", path, strerror(errno));
    }
    bf_status st = BF_OK;
    path_in(c, path, sizeof path, "config.ini");
    if (!resume)
        st = write_text(path, c->cfg->sample.config_text, err);
    /* where the config came from: --resume parses config.ini's text against it, so
     * its relative paths (instprm, cif) keep meaning what they meant */
    path_in(c, path, sizeof path, "tasks/config_path");
    if (!resume && st == BF_OK) {
        char *abs = realpath(c->cfg->path, NULL);
        char text[4200];
        snprintf(text, sizeof text, "%s\n", abs ? abs : c->cfg->path);
        free(abs);
        st = write_text(path, text, err);
    }
    /* the effective workflow (the config's, or the command line's) for --resume */
    path_in(c, path, sizeof path, "tasks/workflow");
    if (!resume && st == BF_OK) {
        char text[32];
        snprintf(text, sizeof text, "%s\n", bf_workflow_name(c->cfg->workflow));
        st = write_text(path, text, err);
    }
    path_in(c, path, sizeof path, "tasks/start");
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%lf", &c->t0) != 1)
            c->t0 = wall_now();
        fclose(f);
    } else if (st == BF_OK) {
        char text[64];
        c->t0 = wall_now();
        snprintf(text, sizeof text, "%.6f\n", c->t0);
        st = write_text(path, text, err);
    }
    if (st == BF_OK)
        st = write_provenance(c, err);
    return st;
}

/* SHA256SUMS (sha256sum's format) of every file in data/ and models/: the
 * provenance of the campaign's outputs, checkable with `sha256sum -c`. */
static bf_status write_checksums(const campaign *c, bf_error *err)
{
    char path[4200];
    path_in(c, path, sizeof path, "SHA256SUMS");
    bf_atomic_file af;
    bf_status st = bf_atomic_begin(&af, path, 1, err);
    const char *sub[] = {"data", "models"};
    for (int i = 0; i < 2 && st == BF_OK; i++) {
        char folder[4200];
        path_in(c, folder, sizeof folder, "%s", sub[i]);
        struct dirent **names = NULL;
        int n = scandir(folder, &names, NULL, alphasort); /* sorted: a stable file */
        for (int j = 0; j < n; j++) {
            char file[4600], hex[65];
            snprintf(file, sizeof file, "%s/%s", folder, names[j]->d_name);
            struct stat sb;
            if (st == BF_OK && names[j]->d_name[0] != '.' && !strstr(names[j]->d_name, ".tmp.") &&
                stat(file, &sb) == 0 && S_ISREG(sb.st_mode)) {
                st = bf_sha256_file_hex(file, hex, err);
                if (st == BF_OK)
                    fprintf(af.fp, "%s  %s/%s\n", hex, sub[i], names[j]->d_name);
            }
            free(names[j]);
        }
        free(names);
    }
    if (st == BF_OK)
        return bf_atomic_commit(&af, err);
    bf_atomic_abort(&af);
    return st;
}

/* A finished serial campaign with the same config in dir's parent folder: its
 * total time (the end of its last task in timeline.csv). */
static void find_serial_twin(const campaign *c)
{
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", c->dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = 0;
    else
        snprintf(parent, sizeof parent, "%s", slash ? "/" : ".");
    DIR *d = opendir(parent);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        char sub[4400], path[4600];
        if (e->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof sub, "%s/%s", parent, e->d_name);
        snprintf(path, sizeof path, "%s/tasks/workflow", sub);
        char *text = NULL, *conf = NULL;
        bf_error ignore = {0};
        int match = bf_read_file(path, &text, NULL, &ignore) == BF_OK &&
                    !strncmp(text, "serial\n", 7);
        snprintf(path, sizeof path, "%s/config.ini", sub);
        match = match && bf_read_file(path, &conf, NULL, &ignore) == BF_OK &&
                !strcmp(conf, c->cfg->sample.config_text);
        free(text);
        free(conf);
        snprintf(path, sizeof path, "%s/timeline.csv", sub);
        FILE *f = match ? fopen(path, "r") : NULL;
        if (!f)
            continue;
        char line[256], task[32];
        double start, end, total = 0;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "%31[^,],%*d,%lf,%lf", task, &start, &end) == 3 && end > total)
                total = end;
        fclose(f);
        if (total > 0 && strcmp(sub, c->dir) != 0) {
            snprintf(c->res->serial_dir, sizeof c->res->serial_dir, "%s", sub);
            c->res->serial_total_s = total;
        }
    }
    closedir(d);
}

bf_status bf_campaign_run(const bf_campaign_config *cfg, const char *dir, int resume,
                          const bf_comm *world, void (*on_line)(const char *line, void *user),
                          void *user, bf_campaign_result *res, bf_error *err)
{
    memset(res, 0, sizeof *res);
    campaign *c = calloc(1, sizeof *c);
    if (!c)
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    *c = (campaign){.cfg = cfg, .res = res, .on_line = on_line, .user = user};
    pthread_mutex_init(&c->lock, NULL);
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    bf_campaign_ranks ranks;
    bf_status st = BF_OK;
    if (world && world->size > 1) { /* roles (DESIGN §10): only rank 0 goes on below */
        st = bf_campaign_ranks_init(cfg, world, &ranks, err);
        if (st != BF_OK)
            goto done;
        c->ranks = &ranks;
        if (world->rank >= ranks.n_train)
            st = bf_campaign_sim_serve(cfg, dir, &ranks, err);
        else if (world->rank > 0)
            st = follow_orders(c, err);
        if (world->rank > 0)
            goto done;
        c->followers_listening = 1;
        say(c, "%s", ranks.note);
    }
    st = prepare_dir(c, resume, err);
    /* Training on the first train_threads cores, concurrent simulation tasks on the
     * next sim_threads, when both are set and fit (hwloc); otherwise unpinned. */
    char why[128] = "sim_threads or train_threads is 0 (all cores)";
    if (c->ranks)
        ; /* each rank is bound to its role's cores already */
    else if (st == BF_OK && cfg->sim_threads > 0 && cfg->train_threads > 0)
        c->pinned = bf_pin_thread_to_cores(0, cfg->train_threads + cfg->sim_threads, why,
                                           sizeof why) == 0 &&
                    bf_pin_thread_to_cores(0, cfg->train_threads, why, sizeof why) == 0;
    if (c->pinned)
        say(c, "pinned: training on cores 0-%d, concurrent simulation on cores %d-%d",
            cfg->train_threads - 1, cfg->train_threads,
            cfg->train_threads + cfg->sim_threads - 1);
    else if (!c->ranks)
        say(c, "threads not pinned: %s", why);
    int streaming = cfg->workflow == BF_FLOW_STREAMING;
    int with_study = cfg->workflow == BF_FLOW_SERIAL && cfg->phases > 1 &&
                     cfg->sample.sampler == BF_SAMPLER_RANDOM;
    long n0 = 0;
    for (int k = 0; k < cfg->sample.n_classes; k++)
        n0 += cfg->sample.classes[k].count;

    int grid = cfg->sample.sampler == BF_SAMPLER_GRID;
    /* phase 0 */
    if (st == BF_OK)
        st = run_task(c, "S_0", 0, work_s0, &with_study, err);
    if (grid) {
        if (st == BF_OK && !c->val.n)
            st = load_set(c, &c->val, "val.h5", err);
        if (st == BF_OK && !c->test.n)
            st = load_set(c, &c->test, "test.h5", err);
        if (st == BF_OK && cfg->workflow == BF_FLOW_BASELINE) {
            add_train_file(c, "train-0.h5");
            st = train_phase(c, 0, 0, err);
        } else if (st == BF_OK) {
            st = grid_phases(c, 0, err);
        }
        goto finish;
    }
    if (st == BF_OK && !c->val.n) /* S_0 was done earlier: read its sets back */
        st = load_set(c, &c->val, "val.h5", err);
    if (st == BF_OK && !c->test.n)
        st = load_set(c, &c->test, "test.h5", err);
    add_train_file(c, "train-0.h5");
    bg_task bg = {.c = c, .name = "S'_0", .phase = 0, .make = make_study, .keep = &c->study};
    int al = cfg->workflow != BF_FLOW_BASELINE && cfg->phases > 1;
    if (st == BF_OK)
        st = train_beside(c, 0, n0, streaming && al ? &bg : NULL, err);
    if (st == BF_OK && al && !c->study.n) { /* simulated in an earlier run: read it back */
        st = load_set(c, &c->study, "study.h5", err);
        bf_study_set_free(&c->study_cells);
        if (st == BF_OK)
            st = bf_study_set_make(cfg->sample.classes, cfg->sample.n_classes,
                                   cfg->study_per_class, &c->study_cells, err);
    }

    /* baseline: one phase holding every phase's data (S_0 simulated it all) */
    int phases = cfg->workflow == BF_FLOW_BASELINE ? 1 : cfg->phases;
    for (int k = 1; st == BF_OK && k < phases; k++)
        st = later_phase(c, k, n0, err);

finish:
    if (st == BF_OK) {
        double ts = 0, tt = 0;
        int ns = 0, nt = 0;
        for (int i = 0; i < res->n_tasks; i++) {
            const bf_task_time *t = &res->tasks[i];
            double dt = t->end_s - t->start_s;
            if (t->name[0] == 'S')
                ts += dt, ns++;
            else if (t->name[0] == 'T')
                tt += dt, nt++;
            if (t->end_s > res->total_s)
                res->total_s = t->end_s;
        }
        res->t_sim_s = ns ? ts / ns : 0;
        res->t_train_s = nt ? tt / nt : 0;
        if (cfg->workflow != BF_FLOW_SERIAL)
            find_serial_twin(c);
        st = write_tables(c, err);
        if (st == BF_OK)
            st = write_checksums(c, err);
    }
    if (c->ranks)
        bf_campaign_ranks_stop(c->ranks, c->followers_listening);
done:
    if (c->ranks)
        bf_campaign_ranks_free(&ranks);
    bf_dataset_free(&c->val);
    bf_dataset_free(&c->test);
    bf_dataset_free(&c->study);
    bf_study_set_free(&c->study_cells);
    pthread_mutex_destroy(&c->lock);
    free(c);
    return st;
}

/* ---- summary ------------------------------------------------------------------------- */

double bf_flow_speedup_bound(int n, double t_s, double t_t)
{
    double mx = t_s > t_t ? t_s : t_t, den = t_s + t_t + (n - 1) * mx;
    return den > 0 ? n * (t_s + t_t) / den : 1.0;
}

void bf_campaign_print_summary(FILE *f, const bf_campaign_config *cfg,
                               const bf_campaign_result *res)
{
    fprintf(f, "campaign: %s workflow, %d phase(s)%s, policy %s, seed %llu\n\n",
            bf_workflow_name(cfg->workflow), res->n_phases,
            cfg->workflow == BF_FLOW_BASELINE ? " (holding the data of the AL phases)" : "",
            bf_al_kind_name(cfg->policy.kind), (unsigned long long)cfg->sample.seed);
    fprintf(f, "Task times (seed 001 Table III)\n  %-8s %7s %10s %10s %10s\n", "task", "phase",
            "start s", "end s", "seconds");
    for (int i = 0; i < res->n_tasks; i++) {
        const bf_task_time *t = &res->tasks[i];
        fprintf(f, "  %-8s %7d %10.2f %10.2f %10.2f\n", t->name, t->phase, t->start_s, t->end_s,
                t->end_s - t->start_s);
    }
    fprintf(f, "  %-8s %7s %10s %10.2f %10.2f\n\n", "total", "", "", res->total_s, res->total_s);
    fprintf(f, "Test metrics per phase (seed 001 Table IV)\n"
               "  %5s %8s %6s %10s %9s %10s %9s %9s %9s\n",
            "phase", "n_train", "epochs", "class loss", "accuracy", "mse", "MAE a A", "MAE c A",
            "alpha deg");
    for (int k = 0; k < res->n_phases; k++) {
        const bf_phase_metrics *p = &res->phase[k];
        fprintf(f, "  %5d %8ld %6d %10.4f %8.2f%% %10.3e %9.4f %9.4f %9.3f\n", k, p->n_train,
                p->epochs, p->test.class_loss, 100 * p->test.accuracy, p->test.mse,
                p->test.mae[0], p->test.mae[1], p->test.mae[2]);
    }
    if (res->n_phases > 1)
        fprintf(f, "\nSeed 000 Eq. 1: with mean simulation task %.2f s and training task %.2f s, "
                   "overlapping them over %d phases is at most %.3fx faster than running them "
                   "one after the other.\n",
                res->t_sim_s, res->t_train_s, cfg->phases,
                bf_flow_speedup_bound(cfg->phases, res->t_sim_s, res->t_train_s));
    if (res->serial_total_s > 0)
        fprintf(f, "Speed-up over the serial run of the same config (%s, %.2f s): %.3fx\n",
                res->serial_dir, res->serial_total_s,
                res->total_s > 0 ? res->serial_total_s / res->total_s : 0.0);
    if (res->resumed_tasks)
        fprintf(f, "(%d task(s) finished in an earlier run and were not redone.)\n",
                res->resumed_tasks);
}
