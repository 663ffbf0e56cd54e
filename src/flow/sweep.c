/* flow/sweep.c — hyper-parameter sweeps (braggflow/flow.h, README "braggflow sweep",
 * DESIGN §10): the SQLite registry, one trial's training, the MPI task farm and the
 * report.
 *
 * The registry (DIR/registry.sqlite) is written by one process only, rank 0: SQLite's
 * file locks are unreliable on HPC shared filesystems. Every change is one transaction,
 * so a kill leaves either the state before or after it; a trial killed while 'running'
 * is 'pending' again when the sweep is rerun. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "braggflow/dist.h"
#include "braggflow/flow.h"
#include "flow/flow_internal.h"

static const char *const schema =
    "CREATE TABLE sweep(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE trials(id INTEGER PRIMARY KEY, status TEXT NOT NULL DEFAULT 'pending' "
    "  CHECK(status IN ('pending','running','done','failed')), config TEXT NOT NULL, "
    "  seed INTEGER NOT NULL, starts INTEGER NOT NULL DEFAULT 0, host TEXT, rank INTEGER, "
    "  started REAL, finished REAL, seconds REAL, metric REAL, best_epoch INTEGER, "
    "  epochs_run INTEGER, checkpoint TEXT, checkpoint_sha256 TEXT, error TEXT);"
    "CREATE TABLE params(trial INTEGER NOT NULL, key TEXT NOT NULL, value REAL NOT NULL, "
    "  PRIMARY KEY(trial, key));"
    "CREATE TABLE epochs(trial INTEGER NOT NULL, epoch INTEGER NOT NULL, train_loss REAL, "
    "  val_score REAL, seconds REAL, improved INTEGER, PRIMARY KEY(trial, epoch));";

struct bf_sweep_registry {
    sqlite3 *db;
    char path[4200];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bf_status db_fail(sqlite3 *db, const char *path, const char *what, bf_error *err)
{
    return bf_error_set(err, BF_ERR_IO, "%s: %s: %s", path, what,
                        db ? sqlite3_errmsg(db) : "cannot open");
}

static bf_status exec(bf_sweep_registry *r, const char *sql, bf_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(r->db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return BF_OK;
    bf_status st = bf_error_set(err, BF_ERR_IO, "%s: %s", r->path, msg ? msg : "error");
    sqlite3_free(msg);
    return st;
}

/* Runs a prepared statement to completion (no rows wanted), then finalizes it. */
static bf_status step_done(bf_sweep_registry *r, sqlite3_stmt *s, bf_error *err)
{
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? BF_OK : db_fail(r->db, r->path, "write", err);
}

static bf_status prepare(bf_sweep_registry *r, const char *sql, sqlite3_stmt **s, bf_error *err)
{
    return sqlite3_prepare_v2(r->db, sql, -1, s, NULL) == SQLITE_OK
               ? BF_OK
               : db_fail(r->db, r->path, "prepare", err);
}

static bf_status create_trials(bf_sweep_registry *r, const bf_sweep_config *cfg, bf_error *err)
{
    bf_status st = exec(r, "BEGIN IMMEDIATE;", err);
    if (st == BF_OK)
        st = exec(r, schema, err);
    sqlite3_stmt *s = NULL;
    char keys[256] = "";
    for (int p = 0; p < cfg->n_params; p++)
        snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s", p ? "," : "",
                 cfg->param[p].key);
    const char *meta[][2] = {{"config", cfg->text}, {"ini", cfg->path}, {"model", cfg->model},
                             {"params", keys}, {"metric", "val_score"}};
    for (size_t i = 0; st == BF_OK && i < sizeof meta / sizeof meta[0]; i++) {
        st = prepare(r, "INSERT INTO sweep(key, value) VALUES(?, ?);", &s, err);
        if (st != BF_OK)
            break;
        sqlite3_bind_text(s, 1, meta[i][0], -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, meta[i][1], -1, SQLITE_STATIC);
        st = step_done(r, s, err);
    }
    for (long i = 0; st == BF_OK && i < cfg->n_trials; i++) {
        bf_sweep_trial t;
        char json[1024];
        bf_sweep_trial_at(cfg, i, &t);
        bf_sweep_trial_json(cfg, &t, json, sizeof json);
        st = prepare(r, "INSERT INTO trials(id, config, seed) VALUES(?, ?, ?);", &s, err);
        if (st != BF_OK)
            break;
        sqlite3_bind_int64(s, 1, i);
        sqlite3_bind_text(s, 2, json, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)t.seed);
        st = step_done(r, s, err);
        for (int p = 0; st == BF_OK && p < cfg->n_params; p++) {
            st = prepare(r, "INSERT INTO params(trial, key, value) VALUES(?, ?, ?);", &s, err);
            if (st != BF_OK)
                break;
            sqlite3_bind_int64(s, 1, i);
            sqlite3_bind_text(s, 2, cfg->param[p].key, -1, SQLITE_STATIC);
            sqlite3_bind_double(s, 3, bf_sweep_trial_value(&t, cfg->param[p].key));
            st = step_done(r, s, err);
        }
    }
    if (st == BF_OK)
        return exec(r, "COMMIT;", err);
    sqlite3_exec(r->db, "ROLLBACK;", NULL, NULL, NULL);
    return st;
}

static bf_status open_db(bf_sweep_registry *r, const char *dir, int flags, bf_error *err)
{
    snprintf(r->path, sizeof r->path, "%s/registry.sqlite", dir);
    if (sqlite3_open_v2(r->path, &r->db, flags, NULL) != SQLITE_OK) {
        bf_status st = db_fail(r->db, r->path, "cannot open", err);
        sqlite3_close(r->db);
        r->db = NULL;
        return st;
    }
    sqlite3_busy_timeout(r->db, 10000);
    return BF_OK;
}

bf_status bf_sweep_registry_open(const bf_sweep_config *cfg, bf_sweep_registry **out,
                                 long *n_done, bf_error *err)
{
    *out = NULL;
    *n_done = 0;
    bf_sweep_registry *r = calloc(1, sizeof *r);
    if (!r)
        return bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", cfg->out);
    struct stat sb;
    bf_status st = BF_OK;
    char trials[4200];
    snprintf(trials, sizeof trials, "%s/trials", cfg->out);
    if (stat(cfg->out, &sb) != 0) {
        if (mkdir(cfg->out, 0777) != 0 || mkdir(trials, 0777) != 0)
            st = bf_error_set(err, BF_ERR_IO, "%s: cannot create: %s", cfg->out,
                              strerror(errno));
        if (st == BF_OK)
            st = open_db(r, cfg->out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err);
        if (st == BF_OK)
            st = create_trials(r, cfg, err);
    } else {
        snprintf(r->path, sizeof r->path, "%s/registry.sqlite", cfg->out);
        if (stat(r->path, &sb) != 0)
            st = bf_error_set(err, BF_ERR_INVALID, "%s: exists and is not a sweep (no "
                              "registry.sqlite)", cfg->out);
        if (st == BF_OK)
            st = open_db(r, cfg->out, SQLITE_OPEN_READWRITE, err);
        sqlite3_stmt *s = NULL;
        if (st == BF_OK)
            st = prepare(r, "SELECT value FROM sweep WHERE key = 'config';", &s, err);
        if (st == BF_OK) {
            const unsigned char *text = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_text(s, 0)
                                                                      : NULL;
            if (!text || strcmp((const char *)text, cfg->text) != 0)
                st = bf_error_set(err, BF_ERR_INVALID, "%s: holds a sweep of another "
                                  "configuration than %s (use a new out)", r->path, cfg->path);
            sqlite3_finalize(s);
        }
        /* a kill leaves 'running' trials; failed ones get another try */
        if (st == BF_OK)
            st = exec(r, "UPDATE trials SET status = 'pending' WHERE status IN "
                         "('running', 'failed');", err);
    }
    sqlite3_stmt *s = NULL;
    if (st == BF_OK)
        st = prepare(r, "SELECT count(*) FROM trials WHERE status = 'done';", &s, err);
    if (st == BF_OK) {
        if (sqlite3_step(s) == SQLITE_ROW)
            *n_done = (long)sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    if (st != BF_OK) {
        bf_sweep_registry_close(r);
        return st;
    }
    *out = r;
    return BF_OK;
}

bf_status bf_sweep_registry_claim(bf_sweep_registry *r, const char *host, int rank, long *id,
                                  bf_error *err)
{
    *id = -1;
    bf_status st = exec(r, "BEGIN IMMEDIATE;", err);
    sqlite3_stmt *s = NULL;
    if (st == BF_OK)
        st = prepare(r, "SELECT min(id) FROM trials WHERE status = 'pending';", &s, err);
    if (st == BF_OK) {
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
            *id = (long)sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
    }
    if (st == BF_OK && *id >= 0) {
        st = prepare(r, "UPDATE trials SET status = 'running', starts = starts + 1, host = ?, "
                        "rank = ?, started = ?, finished = NULL, error = NULL WHERE id = ?;",
                     &s, err);
        if (st == BF_OK) {
            sqlite3_bind_text(s, 1, host, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(s, 2, rank);
            sqlite3_bind_double(s, 3, now_s());
            sqlite3_bind_int64(s, 4, *id);
            st = step_done(r, s, err);
        }
    }
    if (st == BF_OK)
        return exec(r, "COMMIT;", err);
    sqlite3_exec(r->db, "ROLLBACK;", NULL, NULL, NULL);
    *id = -1;
    return st;
}

bf_status bf_sweep_registry_finish(bf_sweep_registry *r, const bf_sweep_result *res,
                                   bf_error *err)
{
    bf_status st = exec(r, "BEGIN IMMEDIATE;", err);
    sqlite3_stmt *s = NULL;
    if (st == BF_OK)
        st = prepare(r, "DELETE FROM epochs WHERE trial = ?;", &s, err);
    if (st == BF_OK) {
        sqlite3_bind_int64(s, 1, res->id);
        st = step_done(r, s, err);
    }
    for (int i = 0; st == BF_OK && i < res->n_epochs; i++) {
        const bf_sweep_epoch *e = &res->epochs[i];
        st = prepare(r, "INSERT INTO epochs(trial, epoch, train_loss, val_score, seconds, "
                        "improved) VALUES(?, ?, ?, ?, ?, ?);", &s, err);
        if (st != BF_OK)
            break;
        sqlite3_bind_int64(s, 1, res->id);
        sqlite3_bind_int(s, 2, e->epoch);
        sqlite3_bind_double(s, 3, e->train_loss);
        sqlite3_bind_double(s, 4, e->val_score);
        sqlite3_bind_double(s, 5, e->seconds);
        sqlite3_bind_int(s, 6, e->improved);
        st = step_done(r, s, err);
    }
    if (st == BF_OK)
        st = prepare(r, "UPDATE trials SET status = ?, host = ?, rank = ?, finished = ?, "
                        "seconds = ?, metric = ?, best_epoch = ?, epochs_run = ?, "
                        "checkpoint = ?, checkpoint_sha256 = ?, error = ? WHERE id = ?;",
                     &s, err);
    if (st == BF_OK) {
        char ckpt[64];
        snprintf(ckpt, sizeof ckpt, "trials/%04ld/model.safetensors", res->id);
        sqlite3_bind_text(s, 1, res->ok ? "done" : "failed", -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, res->host, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(s, 3, res->rank);
        sqlite3_bind_double(s, 4, res->end_s);
        sqlite3_bind_double(s, 5, res->end_s - res->start_s);
        if (res->ok) {
            sqlite3_bind_double(s, 6, res->metric);
            sqlite3_bind_text(s, 9, ckpt, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(s, 10, res->sha256, -1, SQLITE_TRANSIENT);
        } else {
            sqlite3_bind_text(s, 11, res->error, -1, SQLITE_TRANSIENT);
        }
        sqlite3_bind_int(s, 7, res->best_epoch);
        sqlite3_bind_int(s, 8, res->epochs_run);
        sqlite3_bind_int64(s, 12, res->id);
        st = step_done(r, s, err);
    }
    if (st == BF_OK)
        return exec(r, "COMMIT;", err);
    sqlite3_exec(r->db, "ROLLBACK;", NULL, NULL, NULL);
    return st;
}

void bf_sweep_registry_close(bf_sweep_registry *r)
{
    if (!r)
        return;
    sqlite3_close(r->db);
    free(r);
}

/* ---- one trial ------------------------------------------------------------------------ */

static int is_peaks(const bf_sweep_config *cfg)
{
    return !strcmp(cfg->model, "braggnn");
}

bf_status bf_sweep_data_load(const bf_sweep_config *cfg, bf_sweep_data *d, bf_error *err)
{
    memset(d, 0, sizeof *d);
    bf_status st;
    if (is_peaks(cfg)) {
        st = bf_patches_read_h5(cfg->train, &d->train_patches, err);
        if (st == BF_OK)
            st = bf_patches_read_h5(cfg->val, &d->val_patches, err);
    } else {
        st = bf_dataset_read_h5(cfg->train, &d->train_set, err);
        if (st == BF_OK)
            st = bf_dataset_read_h5(cfg->val, &d->val_set, err);
    }
    if (st != BF_OK)
        bf_sweep_data_free(d);
    return st;
}

void bf_sweep_data_free(bf_sweep_data *d)
{
    bf_dataset_free(&d->train_set);
    bf_dataset_free(&d->val_set);
    bf_patches_free(&d->train_patches);
    bf_patches_free(&d->val_patches);
}

static void collect_epoch(const bf_epoch_log *log, void *user)
{
    bf_sweep_result *res = user;
    bf_sweep_epoch *e = realloc(res->epochs, (size_t)(res->n_epochs + 1) * sizeof *e);
    if (!e)
        return; /* the registry then lacks this epoch's row; training goes on */
    res->epochs = e;
    e[res->n_epochs++] = (bf_sweep_epoch){log->epoch, log->train_loss, log->val_score,
                                          log->seconds, log->improved};
}

/* trials/NNNN/train.log: the trial's config, one JSON line per epoch, the outcome. */
static bf_status write_log(const char *path, const char *json, const bf_sweep_result *res,
                           bf_error *err)
{
    bf_atomic_file af = {0};
    bf_status st = bf_atomic_begin(&af, path, 1, err);
    if (st != BF_OK)
        return st;
    fprintf(af.fp, "{\"config\":%s}\n", json);
    for (int i = 0; i < res->n_epochs; i++) {
        const bf_sweep_epoch *e = &res->epochs[i];
        fprintf(af.fp, "{\"epoch\":%d,\"train_loss\":%.17g,\"val_score\":%.17g,\"seconds\":%.6g,"
                "\"improved\":%d}\n", e->epoch, e->train_loss, e->val_score, e->seconds,
                e->improved);
    }
    if (res->ok)
        fprintf(af.fp, "{\"best_epoch\":%d,\"val_score\":%.17g,\"checkpoint_sha256\":\"%s\"}\n",
                res->best_epoch, res->metric, res->sha256);
    else
        fprintf(af.fp, "{\"error\":\"%s\"}\n", res->error); /* messages hold no quotes */
    return bf_atomic_commit(&af, err);
}

void bf_sweep_run_trial(const bf_sweep_config *cfg, const bf_sweep_data *d, long id,
                        bf_sweep_result *res)
{
    memset(res, 0, sizeof *res);
    res->id = id;
    res->start_s = now_s();
    gethostname(res->host, sizeof res->host - 1);
    bf_sweep_trial t;
    bf_sweep_trial_at(cfg, id, &t);
    char dir[4200], ckpt[4300], log_path[4300], json[1024];
    snprintf(dir, sizeof dir, "%s/trials/%04ld", cfg->out, id);
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", dir);
    snprintf(log_path, sizeof log_path, "%s/train.log", dir);
    bf_sweep_trial_json(cfg, &t, json, sizeof json);
    bf_error err = {0};
    bf_status st = BF_OK;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        st = bf_error_set(&err, BF_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
    bf_train_config tc;
    bf_train_config_defaults(&tc);
    tc.model = cfg->model;
    tc.out_path = ckpt;
    tc.epochs = t.epochs;
    tc.batch = t.batch;
    tc.patience = t.patience;
    tc.lr = t.lr;
    tc.min_delta = t.min_delta;
    tc.clip_norm = t.clip;
    tc.seed = t.seed;
    tc.threads = cfg->threads;
    tc.train_name = cfg->train;
    tc.val_name = cfg->val;
    tc.on_epoch = collect_epoch;
    tc.user = res;
    tc.comm = NULL; /* trials are independent: one process each */
    bf_train_result tr = {0};
    if (st == BF_OK && is_peaks(cfg)) {
        bf_peaks_options po = {0};
        bf_peaks_result pr;
        st = bf_peaks_train(&tc, &po, &d->train_patches, &d->val_patches, &pr, &err);
        tr = pr.train;
    } else if (st == BF_OK) {
        bf_structure_result sr;
        st = bf_structure_train(&tc, t.hidden, &d->train_set, &d->val_set, &sr, &err);
        tr = sr.train;
    }
    if (st == BF_OK)
        st = bf_sha256_file_hex(ckpt, res->sha256, &err);
    res->ok = st == BF_OK;
    if (res->ok) {
        res->metric = tr.best_val_score;
        res->best_epoch = tr.best_epoch;
        res->epochs_run = tr.epochs_run;
    } else {
        snprintf(res->error, sizeof res->error, "trial %04ld: %s", id, err.msg);
        for (char *q = res->error; *q; q++)
            if (*q == '"' || *q == '\\' || (unsigned char)*q < 0x20)
                *q = '\'';
    }
    bf_error lerr = {0};
    if (write_log(log_path, json, res, &lerr) != BF_OK && res->ok) {
        res->ok = 0;
        snprintf(res->error, sizeof res->error, "trial %04ld: %s", id, lerr.msg);
    }
    res->end_s = now_s();
}

/* ---- the farm ------------------------------------------------------------------------ */

enum { TAG_READY = 1, TAG_TRIAL, TAG_STOP, TAG_RESULT };

/* A result on the wire: the struct (its epochs pointer meaningless) then the epochs. Ranks
 * run the same binary, so the layout is the same on both sides. */
static bf_status send_result(const bf_sweep_result *res, bf_error *err)
{
    size_t n = sizeof *res + (size_t)res->n_epochs * sizeof *res->epochs;
    char *buf = malloc(n);
    if (!buf)
        return bf_error_set(err, BF_ERR_NOMEM, "sweep: %zu bytes for a result", n);
    memcpy(buf, res, sizeof *res);
    if (res->n_epochs)
        memcpy(buf + sizeof *res, res->epochs, (size_t)res->n_epochs * sizeof *res->epochs);
    bf_status st = bf_dist_send(0, TAG_RESULT, buf, n, err);
    free(buf);
    return st;
}

static bf_status decode_result(const void *buf, size_t n, bf_sweep_result *res, bf_error *err)
{
    if (n < sizeof *res)
        return bf_error_set(err, BF_ERR_PARSE, "sweep: a result of %zu bytes", n);
    memcpy(res, buf, sizeof *res);
    res->epochs = NULL;
    if (res->n_epochs < 0 || n != sizeof *res + (size_t)res->n_epochs * sizeof *res->epochs)
        return bf_error_set(err, BF_ERR_PARSE, "sweep: a result of %zu bytes", n);
    if (res->n_epochs) {
        res->epochs = malloc((size_t)res->n_epochs * sizeof *res->epochs);
        if (!res->epochs)
            return bf_error_set(err, BF_ERR_NOMEM, "sweep: a result's epochs");
        memcpy(res->epochs, (const char *)buf + sizeof *res,
               (size_t)res->n_epochs * sizeof *res->epochs);
    }
    res->error[sizeof res->error - 1] = 0;
    res->host[sizeof res->host - 1] = 0;
    res->sha256[64] = 0;
    return BF_OK;
}

typedef struct {
    const bf_sweep_config *cfg;
    bf_sweep_registry *reg;
    void (*on_line)(const char *line, void *user);
    void *user;
    long finished, failed, kill_after;
    char first_error[512];
} farm;

static bf_status record(farm *f, const bf_sweep_result *res, bf_error *err)
{
    bf_status st = bf_sweep_registry_finish(f->reg, res, err);
    if (st != BF_OK)
        return st;
    f->finished++;
    if (!res->ok && f->failed++ == 0)
        snprintf(f->first_error, sizeof f->first_error, "%s", res->error);
    if (f->on_line) {
        char line[1024];
        if (res->ok)
            snprintf(line, sizeof line, "trial %04ld done: val_score %.6g (best epoch %d of %d) "
                     "on %s rank %d, %.1f s", res->id, res->metric, res->best_epoch,
                     res->epochs_run, res->host, res->rank, res->end_s - res->start_s);
        else
            snprintf(line, sizeof line, "trial %04ld failed: %s", res->id, res->error);
        f->on_line(line, f->user);
    }
    return BF_OK;
}

/* BF_SWEEP_KILL_AFTER=N (tests): SIGKILL once N trials finished in this run and the next
 * is claimed, so a test can interrupt a sweep at a known point. */
static void maybe_kill(const farm *f, long id)
{
    if (f->kill_after > 0 && id >= 0 && f->finished >= f->kill_after)
        raise(SIGKILL);
}

static bf_status run_alone(farm *f, const bf_sweep_data *d, bf_error *err)
{
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    for (;;) {
        long id;
        bf_status st = bf_sweep_registry_claim(f->reg, host, 0, &id, err);
        if (st != BF_OK || id < 0)
            return st;
        maybe_kill(f, id);
        bf_sweep_result res;
        bf_sweep_run_trial(f->cfg, d, id, &res);
        st = record(f, &res, err);
        free(res.epochs);
        if (st != BF_OK)
            return st;
    }
}

/* Rank 0: answers each READY or RESULT with the next trial, or STOP when none is left. A
 * registry error stops every worker and is returned once all have stopped. */
static bf_status run_master(farm *f, int size, bf_error *err)
{
    int active = size - 1;
    bf_status first = BF_OK;
    while (active > 0) {
        int src = 0, tag = 0;
        void *buf = NULL;
        size_t n = 0;
        bf_status st = bf_dist_recv(BF_DIST_ANY, BF_DIST_ANY, &src, &tag, &buf, &n, err);
        if (st != BF_OK)
            return st; /* the transport itself failed: nothing more can be said */
        if (tag == TAG_RESULT) {
            bf_sweep_result res;
            bf_error rerr = {0};
            st = decode_result(buf, n, &res, &rerr);
            if (st == BF_OK)
                st = record(f, &res, &rerr);
            free(res.epochs);
            if (st != BF_OK && first == BF_OK) {
                first = st;
                *err = rerr;
            }
        }
        free(buf);
        long id = -1;
        if (first == BF_OK) {
            bf_error cerr = {0};
            char host[64] = "";
            snprintf(host, sizeof host, "rank %d", src); /* the worker reports its own host */
            st = bf_sweep_registry_claim(f->reg, host, src, &id, &cerr);
            if (st != BF_OK) {
                first = st;
                *err = cerr;
            }
        }
        maybe_kill(f, id);
        int32_t msg = (int32_t)id;
        if (id >= 0) {
            st = bf_dist_send(src, TAG_TRIAL, &msg, sizeof msg, err);
        } else {
            st = bf_dist_send(src, TAG_STOP, NULL, 0, err);
            active--;
        }
        if (st != BF_OK)
            return st;
    }
    return first;
}

static bf_status run_worker(const bf_sweep_config *cfg, const bf_sweep_data *d, int rank,
                            bf_error *err)
{
    bf_status st = bf_dist_send(0, TAG_READY, NULL, 0, err);
    while (st == BF_OK) {
        int src = 0, tag = 0;
        void *buf = NULL;
        size_t n = 0;
        st = bf_dist_recv(BF_DIST_ANY, BF_DIST_ANY, &src, &tag, &buf, &n, err);
        if (st != BF_OK)
            break;
        int32_t id = -1;
        if (tag == TAG_TRIAL && n == sizeof id)
            memcpy(&id, buf, sizeof id);
        free(buf);
        if (tag != TAG_TRIAL)
            break; /* STOP */
        if (id < 0 || id >= cfg->n_trials) {
            st = bf_error_set(err, BF_ERR_PARSE, "sweep: rank %d got trial %d", rank, id);
            break;
        }
        bf_sweep_result res;
        bf_sweep_run_trial(cfg, d, id, &res);
        res.rank = rank;
        st = send_result(&res, err);
        free(res.epochs);
    }
    return st;
}

bf_status bf_sweep_run(const bf_sweep_config *cfg, const bf_comm *world,
                       void (*on_line)(const char *line, void *user), void *user, bf_error *err)
{
    int rank = world ? world->rank : 0, size = world ? world->size : 1;
    farm f = {.cfg = cfg, .on_line = on_line, .user = user};
    const char *k = getenv("BF_SWEEP_KILL_AFTER");
    f.kill_after = k ? atol(k) : 0;
    bf_sweep_data d;
    memset(&d, 0, sizeof d);
    bf_status st = BF_OK;
    struct stat sb;
    char reg_path[4200];
    snprintf(reg_path, sizeof reg_path, "%s/registry.sqlite", cfg->out);
    /* everything that can be checked before DIR is created, on every rank */
    if (rank == 0 && stat(cfg->out, &sb) == 0 && stat(reg_path, &sb) != 0)
        st = bf_error_set(err, BF_ERR_INVALID, "%s: exists and is not a sweep (no "
                          "registry.sqlite)", cfg->out);
    if (st == BF_OK && (size == 1 || rank > 0))
        st = bf_sweep_data_load(cfg, &d, err);
    st = bf_comm_agree(size > 1 ? world : NULL, st, err);
    long n_done = 0;
    if (st == BF_OK && rank == 0)
        st = bf_sweep_registry_open(cfg, &f.reg, &n_done, err);
    st = bf_comm_agree(size > 1 ? world : NULL, st, err);
    if (st == BF_OK && rank == 0 && on_line) {
        char line[512];
        snprintf(line, sizeof line, "sweep %s: %ld trials (%s), %ld already done; %d rank(s)",
                 cfg->out, cfg->n_trials, cfg->mode == BF_SWEEP_GRID ? "grid" : "random",
                 n_done, size);
        on_line(line, user);
    }
    if (st == BF_OK) {
        if (size == 1)
            st = run_alone(&f, &d, err);
        else if (rank == 0)
            st = run_master(&f, size, err);
        else
            st = run_worker(cfg, &d, rank, err);
    }
    bf_sweep_registry_close(f.reg);
    bf_sweep_data_free(&d);
    if (st == BF_OK && rank == 0) {
        char html[4200];
        snprintf(html, sizeof html, "%s", cfg->out);
        st = bf_sweep_report(html, NULL, 0, err);
    }
    if (st == BF_OK && f.failed)
        st = bf_error_set(err, BF_ERR_INVALID, "%s: %ld of the %ld trials run failed; first: %s",
                          cfg->out, f.failed, f.finished, f.first_error);
    return st;
}

/* ---- the report ------------------------------------------------------------------------ */

typedef struct {
    long id;
    double metric;
    int starts, best_epoch;
    double seconds;
    char host[64];
} row;

bf_status bf_sweep_report(const char *dir, FILE *f, int top, bf_error *err)
{
    bf_sweep_registry r = {0};
    struct stat sb;
    snprintf(r.path, sizeof r.path, "%s/registry.sqlite", dir);
    if (stat(r.path, &sb) != 0)
        return bf_error_set(err, BF_ERR_IO, "%s: not a sweep: %s", r.path, strerror(errno));
    bf_status st = open_db(&r, dir, SQLITE_OPEN_READONLY, err);
    if (st != BF_OK)
        return st;
    char keys_text[256] = "", model[64] = "";
    char keys[BF_SWEEP_MAX_PARAMS][16];
    int n_keys = 0;
    long count[4] = {0}; /* pending, running, done, failed */
    row *rows = NULL;
    double *values = NULL; /* (n_rows, n_keys) */
    long n_rows = 0;
    sqlite3_stmt *s = NULL;
    st = prepare(&r, "SELECT key, value FROM sweep WHERE key IN ('params', 'model');", &s, err);
    if (st == BF_OK) {
        while (sqlite3_step(s) == SQLITE_ROW) {
            const char *key = (const char *)sqlite3_column_text(s, 0);
            const char *v = (const char *)sqlite3_column_text(s, 1);
            snprintf(!strcmp(key, "params") ? keys_text : model, 64, "%s", v ? v : "");
        }
        sqlite3_finalize(s);
        for (char *save = NULL, *t = strtok_r(keys_text, ",", &save);
             t && n_keys < BF_SWEEP_MAX_PARAMS; t = strtok_r(NULL, ",", &save))
            snprintf(keys[n_keys++], sizeof keys[0], "%s", t);
        st = prepare(&r, "SELECT status, count(*) FROM trials GROUP BY status;", &s, err);
    }
    if (st == BF_OK) {
        static const char *const names[4] = {"pending", "running", "done", "failed"};
        while (sqlite3_step(s) == SQLITE_ROW)
            for (int i = 0; i < 4; i++)
                if (!strcmp((const char *)sqlite3_column_text(s, 0), names[i]))
                    count[i] = sqlite3_column_int64(s, 1);
        sqlite3_finalize(s);
        rows = calloc((size_t)count[2] + 1, sizeof *rows);
        values = calloc(((size_t)count[2] + 1) * (size_t)(n_keys + 1), sizeof *values);
        if (!rows || !values)
            st = bf_error_set(err, BF_ERR_NOMEM, "%s: out of memory", r.path);
    }
    if (st == BF_OK)
        st = prepare(&r, "SELECT id, metric, starts, best_epoch, seconds, host FROM trials "
                         "WHERE status = 'done' ORDER BY metric, id;", &s, err);
    if (st == BF_OK) {
        while (n_rows < count[2] && sqlite3_step(s) == SQLITE_ROW) {
            row *w = &rows[n_rows++];
            w->id = (long)sqlite3_column_int64(s, 0);
            w->metric = sqlite3_column_double(s, 1);
            w->starts = sqlite3_column_int(s, 2);
            w->best_epoch = sqlite3_column_int(s, 3);
            w->seconds = sqlite3_column_double(s, 4);
            const unsigned char *h = sqlite3_column_text(s, 5);
            snprintf(w->host, sizeof w->host, "%s", h ? (const char *)h : "");
        }
        sqlite3_finalize(s);
        st = prepare(&r, "SELECT value FROM params WHERE trial = ? AND key = ?;", &s, err);
    }
    for (long i = 0; st == BF_OK && i < n_rows; i++)
        for (int p = 0; p < n_keys; p++) {
            sqlite3_reset(s);
            sqlite3_bind_int64(s, 1, rows[i].id);
            sqlite3_bind_text(s, 2, keys[p], -1, SQLITE_STATIC);
            values[i * n_keys + p] = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_double(s, 0)
                                                                   : NAN;
        }
    if (s)
        sqlite3_finalize(s);
    sqlite3_close(r.db);

    long total = count[0] + count[1] + count[2] + count[3];
    if (st == BF_OK && f) {
        fprintf(f, "sweep %s (%s): %ld trials: %ld done, %ld failed, %ld pending, %ld running\n",
                dir, model, total, count[2], count[3], count[0], count[1]);
        fprintf(f, "%4s %5s %12s", "rank", "trial", "val_score");
        for (int p = 0; p < n_keys; p++)
            fprintf(f, " %10s", keys[p]);
        fprintf(f, " %6s %8s\n", "starts", "seconds");
        for (long i = 0; i < n_rows && (top <= 0 || i < top); i++) {
            fprintf(f, "%4ld %5.4ld %12.6g", i + 1, rows[i].id, rows[i].metric);
            for (int p = 0; p < n_keys; p++)
                fprintf(f, " %10.4g", values[i * n_keys + p]);
            fprintf(f, " %6d %8.2f\n", rows[i].starts, rows[i].seconds);
        }
        if (n_rows) {
            fprintf(f, "best: trial %04ld val_score %.6g (", rows[0].id, rows[0].metric);
            for (int p = 0; p < n_keys; p++)
                fprintf(f, "%s%s=%.6g", p ? " " : "", keys[p], values[p]);
            fprintf(f, ") %s/trials/%04ld/model.safetensors\n", dir, rows[0].id);
        } else {
            fprintf(f, "best: none (no trial done yet)\n");
        }
    }
    bf_buf b = {0};
    if (st == BF_OK) {
        bf_buf_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
                          "\n<title>braggflow sweep report</title>\n<style>\n%s</style>\n</head>"
                          "\n<body>\n<header>\n<h1>Sweep ", bf_report_css());
        bf_report_html_esc(&b, dir);
        bf_buf_printf(&b, "</h1>\n<p class=\"meta\">model ");
        bf_report_html_esc(&b, model);
        bf_buf_printf(&b, " · %ld trials: %ld done, %ld failed, %ld pending, %ld running · "
                          "metric val_score (lower is better)</p>\n</header>\n", total, count[2],
                      count[3], count[0], count[1]);
        bf_buf_puts(&b, "<section id=\"trials\">\n<h2>Trials, best first</h2>\n<table>\n<tr>"
                        "<th>rank</th><th>trial</th><th>val_score</th>");
        for (int p = 0; p < n_keys; p++)
            bf_buf_printf(&b, "<th>%s</th>", keys[p]); /* keys are the INI's known names */
        bf_buf_puts(&b, "<th>best epoch</th><th>starts</th><th>seconds</th><th>host</th></tr>\n");
        for (long i = 0; i < n_rows; i++) {
            bf_buf_printf(&b, "<tr><td>%ld</td><td>%04ld</td><td>%.6g</td>", i + 1, rows[i].id,
                          rows[i].metric);
            for (int p = 0; p < n_keys; p++)
                bf_buf_printf(&b, "<td>%.6g</td>", values[i * n_keys + p]);
            bf_buf_printf(&b, "<td>%d</td><td>%d</td><td>%.2f</td><td>", rows[i].best_epoch,
                          rows[i].starts, rows[i].seconds);
            bf_report_html_esc(&b, rows[i].host);
            bf_buf_puts(&b, "</td></tr>\n");
        }
        bf_buf_puts(&b, "</table>\n</section>\n<section id=\"plots\">\n<h2>val_score against "
                        "each swept parameter</h2>\n");
        double *x = calloc((size_t)n_rows + 1, sizeof *x), *y = calloc((size_t)n_rows + 1,
                                                                        sizeof *y);
        for (int p = 0; x && y && p < n_keys; p++) {
            for (long i = 0; i < n_rows; i++) {
                x[i] = values[i * n_keys + p];
                y[i] = rows[i].metric;
            }
            char id[32], title[64];
            snprintf(id, sizeof id, "sweep-%s", keys[p]);
            snprintf(title, sizeof title, "val_score vs %s", keys[p]);
            /* learning rates span decades */
            bf_report_scatter(&b, id, title, keys[p], "val_score", x, y, (int)n_rows,
                              !strcmp(keys[p], "lr") || !strcmp(keys[p], "min_delta"), 0);
        }
        if (!x || !y)
            b.failed = 1;
        free(x);
        free(y);
        bf_buf_printf(&b, "</section>\n<footer><p>Written by braggflow %s from registry.sqlite "
                          "(braggflow sweep --report).</p></footer>\n</body>\n</html>\n",
                      BF_VERSION);
        st = bf_buf_check(&b, "report.html", err);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/report.html", dir);
    bf_atomic_file af = {0};
    if (st == BF_OK)
        st = bf_atomic_begin(&af, path, 1, err);
    if (st == BF_OK && fwrite(b.data, 1, b.len, af.fp) != b.len)
        st = bf_error_set(err, BF_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    if (st == BF_OK)
        st = bf_atomic_commit(&af, err);
    else
        bf_atomic_abort(&af);
    bf_buf_free(&b);
    free(rows);
    free(values);
    return st;
}
