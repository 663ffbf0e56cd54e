/* flow/campaign_ranks.c — a campaign over MPI ranks (seed 001 §IV-C, §V-D; DESIGN §10):
 * the roles, the simulation ranks' job loop and the messages between rank 0 and the
 * others. The workflow itself stays in campaign.c, on rank 0.
 *
 * Messages (world, point to point, blocking; every wait polls, bf_dist_recv):
 *   JOB   rank 0 -> lead -> each other simulation rank: sim_job_head, cells, class indices
 *   PART  simulation rank -> lead: part_head, then its rows in blocks of <= BLOCK_BYTES
 *   DONE  lead -> rank 0: done_msg (status, the lead's start and end, the error)
 *   STOP  rank 0 -> lead -> the others, and rank 0 -> each training rank (an order)
 *   ORDER rank 0 -> training ranks 1..: bf_train_order
 * Rows are split over the simulation ranks by ceil(n j / K), so the lead always has rows
 * (its own slice heads the set) and the set equals the one-process set. */
#include "flow_internal.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "braggflow/dist.h"

enum { TAG_JOB = 7101, TAG_PART, TAG_DONE, TAG_STOP, TAG_ORDER };
#define BLOCK_BYTES (64u << 20) /* rows per PART block: far below MPI's 2 GiB count limit */

typedef struct {
    char file[64];
    uint64_t seed;
    int64_t n;
    int32_t sampler, pad;
} sim_job_head;

typedef struct {
    int32_t status, length;
    int64_t rows;
    char msg[512];
} part_head;

typedef struct {
    int32_t status, pad;
    double start, end;
    char msg[512];
} done_msg;

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

void bf_sim_set_free(bf_sim_set *s)
{
    free(s->cells);
    free(s->class_index);
    s->cells = NULL;
    s->class_index = NULL;
    s->n = 0;
}

bf_status bf_sim_set_simulate(const bf_sample_config *cfg, const bf_sim_set *s, long first,
                              long count, int threads, bf_dataset *d, bf_error *err)
{
    bf_sample_config *sc = malloc(sizeof *sc);
    if (!sc)
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    *sc = *cfg;
    sc->seed = s->seed; /* the set's provenance: bf_sim_rows_begin records cfg->seed */
    bf_status st = bf_dataset_simulate_cells(sc, s->cells + first, s->class_index + first, count,
                                            threads, d, err);
    if (st == BF_OK && s->sampler >= 0)
        snprintf(d->sampler, sizeof d->sampler, "%s", bf_sampler_name((bf_sampler_kind)s->sampler));
    free(sc);
    return st;
}

/* ---- roles ------------------------------------------------------------------------- */

bf_status bf_campaign_ranks_init(const bf_campaign_config *cfg, const bf_comm *world,
                                 bf_campaign_ranks *r, bf_error *err)
{
    memset(r, 0, sizeof *r);
    r->rank = world->rank;
    r->size = world->size;
    if (cfg->sim_ranks < 1 || cfg->sim_ranks >= world->size)
        return bf_error_set(err, BF_ERR_INVALID,
                            "%s: [campaign] sim_ranks = %d: under mpirun with %d ranks it must "
                            "be 1..%d (the other ranks train)%s", cfg->path, cfg->sim_ranks,
                            world->size, world->size - 1,
                            cfg->sim_ranks ? "" : "; it is not set");
    r->n_sim = cfg->sim_ranks;
    r->n_train = world->size - r->n_sim;
    r->sim_lead = r->n_train;
    int sim = r->rank >= r->n_train;
    bf_comm *group = NULL;
    bf_status st = bf_dist_split(sim, &group, err);
    if (st != BF_OK)
        return st;
    if (!sim && r->n_train > 1)
        r->train = group;
    else
        bf_dist_comm_free(group);

    /* each rank its role's threads' worth of cores, after the lower ranks on its node */
    int threads = sim ? cfg->sim_threads : cfg->train_threads, first = 0;
    char why[128] = "sim_threads or train_threads is 0 (all cores)";
    st = bf_dist_node_offset(threads, &first, err);
    int mine = threads < 1 || bf_pin_thread_to_cores(first, threads, why, sizeof why) != 0;
    double unpinned = mine;
    if (st == BF_OK)
        st = world->allreduce_sum_f64(world, &unpinned, 1, err);
    if (st != BF_OK) {
        bf_campaign_ranks_free(r);
        return st;
    }
    r->pinned = unpinned == 0;
    char failed[192] = "";
    if (!r->pinned && mine) /* rank 0 knows its own reason, and how many others failed */
        snprintf(failed, sizeof failed, "not pinned: %s (%d rank(s) unpinned)", why,
                 (int)unpinned);
    else if (!r->pinned)
        snprintf(failed, sizeof failed, "not pinned on %d rank(s) (more cores asked for than "
                 "their node has, or threads 0)", (int)unpinned);
    snprintf(r->note, sizeof r->note,
             "%d rank(s) train%s (%d thread(s) each), %d simulate (%d thread(s) each); %s",
             r->n_train, r->n_train > 1 ? " data-parallel" : "", cfg->train_threads, r->n_sim,
             cfg->sim_threads, r->pinned ? "each rank pinned to cores of its own (hwloc)" : failed);
    return BF_OK;
}

void bf_campaign_ranks_free(bf_campaign_ranks *r)
{
    bf_dist_comm_free(r->train);
    r->train = NULL;
}

/* ---- rank 0's side ---------------------------------------------------------------------- */

/* head, cells, class indices as one message */
static bf_status send_job(int dest, const sim_job_head *h, const bf_cell *cells,
                          const int32_t *class_index, bf_error *err)
{
    size_t n = (size_t)h->n, bytes = sizeof *h + n * (sizeof *cells + sizeof *class_index);
    char *buf = malloc(bytes);
    if (!buf)
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory for a simulation job");
    memcpy(buf, h, sizeof *h);
    memcpy(buf + sizeof *h, cells, n * sizeof *cells);
    memcpy(buf + sizeof *h + n * sizeof *cells, class_index, n * sizeof *class_index);
    bf_status st = bf_dist_send(dest, TAG_JOB, buf, bytes, err);
    free(buf);
    return st;
}

bf_status bf_campaign_sim_post(const bf_campaign_ranks *r, const bf_sim_set *s, bf_error *err)
{
    sim_job_head h = {.seed = s->seed, .n = s->n, .sampler = s->sampler};
    snprintf(h.file, sizeof h.file, "%s", s->file);
    return send_job(r->sim_lead, &h, s->cells, s->class_index, err);
}

bf_status bf_campaign_sim_wait(const bf_campaign_ranks *r, double *start, double *end,
                               bf_error *err)
{
    void *buf = NULL;
    size_t bytes = 0;
    bf_status st = bf_dist_recv(r->sim_lead, TAG_DONE, NULL, NULL, &buf, &bytes, err);
    if (st != BF_OK)
        return st;
    done_msg d;
    if (bytes != sizeof d) {
        free(buf);
        return bf_error_set(err, BF_ERR_IO, "rank %d: a malformed reply (%zu bytes)",
                            r->sim_lead, bytes);
    }
    memcpy(&d, buf, sizeof d);
    free(buf);
    d.msg[sizeof d.msg - 1] = 0;
    if (d.status != BF_OK)
        return bf_error_set(err, (bf_status)d.status, "%s", d.msg);
    *start = d.start;
    *end = d.end;
    return BF_OK;
}

bf_status bf_campaign_train_post(const bf_campaign_ranks *r, const bf_train_order *o,
                                 bf_error *err)
{
    bf_status st = BF_OK;
    for (int k = 1; k < r->n_train && st == BF_OK; k++)
        st = bf_dist_send(k, TAG_ORDER, o, sizeof *o, err);
    return st;
}

bf_status bf_campaign_train_next(const bf_campaign_ranks *r, bf_train_order *o, bf_error *err)
{
    void *buf = NULL;
    size_t bytes = 0;
    (void)r;
    bf_status st = bf_dist_recv(0, TAG_ORDER, NULL, NULL, &buf, &bytes, err);
    if (st == BF_OK && bytes != sizeof *o)
        st = bf_error_set(err, BF_ERR_IO, "a malformed training order (%zu bytes)", bytes);
    if (st == BF_OK)
        memcpy(o, buf, sizeof *o);
    free(buf);
    return st;
}

void bf_campaign_ranks_stop(const bf_campaign_ranks *r, int followers_listening)
{
    bf_error ignore = {0};
    bf_dist_send(r->sim_lead, TAG_STOP, NULL, 0, &ignore);
    bf_train_order stop = {.stop = 1};
    for (int k = 1; followers_listening && k < r->n_train; k++)
        bf_dist_send(k, TAG_ORDER, &stop, sizeof stop, &ignore);
}

/* ---- the simulation ranks ------------------------------------------------------------- */

/* Row j of K's slice of n rows: [ceil(n j / K), ceil(n (j + 1) / K)). */
static long slice_start(long n, int j, int K)
{
    return (long)(((long long)n * j + K - 1) / K);
}

static bf_status decode_job(const void *buf, size_t bytes, bf_sim_set *s, bf_error *err)
{
    sim_job_head h;
    memset(s, 0, sizeof *s);
    if (bytes < sizeof h)
        return bf_error_set(err, BF_ERR_IO, "a malformed simulation job (%zu bytes)", bytes);
    memcpy(&h, buf, sizeof h);
    size_t per = sizeof(bf_cell) + sizeof(int32_t);
    if (h.n < 1 || (size_t)h.n > (bytes - sizeof h) / per || bytes != sizeof h + (size_t)h.n * per)
        return bf_error_set(err, BF_ERR_IO, "a malformed simulation job (%zu bytes)", bytes);
    h.file[sizeof h.file - 1] = 0;
    snprintf(s->file, sizeof s->file, "%s", h.file);
    s->seed = h.seed;
    s->sampler = h.sampler;
    s->n = (long)h.n;
    s->cells = malloc(sizeof(bf_cell) * (size_t)s->n);
    s->class_index = malloc(sizeof(int32_t) * (size_t)s->n);
    if (!s->cells || !s->class_index) {
        bf_sim_set_free(s);
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory for a simulation job");
    }
    const char *p = (const char *)buf + sizeof h;
    memcpy(s->cells, p, sizeof(bf_cell) * (size_t)s->n);
    memcpy(s->class_index, p + sizeof(bf_cell) * (size_t)s->n, sizeof(int32_t) * (size_t)s->n);
    return BF_OK;
}

/* A worker's slice to the lead: the head (status or rows), then blocks of rows, each
 * its patterns, cells and labels. */
static bf_status send_part(int lead, bf_status st, const bf_error *why, const bf_dataset *d,
                           bf_error *err)
{
    part_head h = {.status = st};
    if (st != BF_OK)
        snprintf(h.msg, sizeof h.msg, "%s", why->msg);
    else
        h.rows = d->n, h.length = d->length;
    bf_status sst = bf_dist_send(lead, TAG_PART, &h, sizeof h, err);
    if (st != BF_OK || sst != BF_OK)
        return sst;
    size_t row = sizeof(float) * (size_t)d->length + 6 * sizeof(double) + sizeof(int32_t);
    long per = (long)(BLOCK_BYTES / row) > 0 ? (long)(BLOCK_BYTES / row) : 1;
    char *buf = malloc(row * (size_t)(per < d->n ? per : d->n));
    if (!buf)
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory for a block of rows");
    for (long i = 0; i < d->n && sst == BF_OK; i += per) {
        size_t m = (size_t)(d->n - i < per ? d->n - i : per), L = (size_t)d->length;
        char *p = buf;
        memcpy(p, d->patterns + (size_t)i * L, sizeof(float) * m * L), p += sizeof(float) * m * L;
        memcpy(p, d->cells + (size_t)i * 6, sizeof(double) * m * 6), p += sizeof(double) * m * 6;
        memcpy(p, d->labels + i, sizeof(int32_t) * m);
        sst = bf_dist_send(lead, TAG_PART, buf, row * m, err);
    }
    free(buf);
    return sst;
}

/* The lead: worker `from`'s slice appended to d (or its error, kept when it is the first
 * failure: workers are read in rank order, so that is the lowest failing rank's). */
static bf_status take_part(int from, bf_dataset *d, bf_status st, bf_error *err)
{
    void *buf = NULL;
    size_t bytes = 0;
    bf_error e = {0};
    bf_status rst = bf_dist_recv(from, TAG_PART, NULL, NULL, &buf, &bytes, &e);
    part_head h = {0};
    if (rst == BF_OK && bytes != sizeof h)
        rst = bf_error_set(&e, BF_ERR_IO, "a malformed reply (%zu bytes)", bytes);
    if (rst == BF_OK)
        memcpy(&h, buf, sizeof h);
    free(buf);
    int own = rst == BF_OK && h.status != BF_OK; /* its message names its rank already */
    if (own) {
        h.msg[sizeof h.msg - 1] = 0;
        rst = bf_error_set(&e, (bf_status)h.status, "%s", h.msg);
    }
    size_t row = sizeof(float) * (size_t)h.length + 6 * sizeof(double) + sizeof(int32_t);
    for (long got = 0; rst == BF_OK && got < h.rows;) {
        rst = bf_dist_recv(from, TAG_PART, NULL, NULL, &buf, &bytes, &e);
        long m = (long)(bytes / row);
        if (rst == BF_OK && (bytes % row || m < 1 || got + m > h.rows))
            rst = bf_error_set(&e, BF_ERR_IO, "a malformed block of rows (%zu bytes)", bytes);
        if (rst == BF_OK && st == BF_OK) { /* still assembling: append, else only drain */
            char *p = buf;
            size_t L = (size_t)h.length;
            bf_dataset rows = {.n = m, .length = h.length, .patterns = (float *)p,
                               .cells = (double *)(p + sizeof(float) * (size_t)m * L),
                               .labels = (int32_t *)(p + (sizeof(float) * L + 6 * sizeof(double)) *
                                                             (size_t)m)};
            rst = bf_dataset_append(d, &rows, &e);
        }
        free(buf);
        got += m;
    }
    if (rst != BF_OK && st == BF_OK) {
        *err = e;
        if (!own)
            bf_error_prefix(err, "rank %d", from);
        return rst;
    }
    return st;
}

/* One job on every simulation rank: its slice, gathered on the lead and written. */
static bf_status run_job(const bf_campaign_config *cfg, const char *dir,
                         const bf_campaign_ranks *r, const bf_sim_set *s, bf_error *err)
{
    int K = r->n_sim, j = r->rank - r->sim_lead;
    long first = slice_start(s->n, j, K), count = slice_start(s->n, j + 1, K) - first;
    bf_dataset d = {0};
    bf_status st = count > 0 ? bf_sim_set_simulate(&cfg->sample, s, first, count,
                                                    cfg->sim_threads, &d, err)
                             : BF_OK;
    if (st != BF_OK)
        bf_error_prefix(err, "rank %d", r->rank);
    if (j > 0) {
        bf_error e = {0};
        bf_status sst = send_part(r->sim_lead, st, err, &d, &e);
        bf_dataset_free(&d);
        return sst; /* a failed send means MPI is gone: this rank stops too */
    }
    for (int w = 1; w < K; w++)
        st = take_part(r->sim_lead + w, &d, st, err);
    char path[4200];
    snprintf(path, sizeof path, "%s/data/%s", dir, s->file);
    if (st == BF_OK)
        st = bf_dataset_write_h5(&d, path, BF_LAYOUT_BRAGGFLOW, err);
    bf_dataset_free(&d);
    return st;
}

bf_status bf_campaign_sim_serve(const bf_campaign_config *cfg, const char *dir,
                                const bf_campaign_ranks *r, bf_error *err)
{
    int lead = r->rank == r->sim_lead;
    const char *kill_env = getenv("BF_CAMPAIGN_KILL_SIM_JOB");
    long kill_at = kill_env ? atol(kill_env) : 0, jobs = 0;
    for (;;) {
        void *buf = NULL;
        size_t bytes = 0;
        int tag = 0;
        bf_status st = bf_dist_recv(lead ? 0 : r->sim_lead, BF_DIST_ANY, NULL, &tag, &buf,
                                    &bytes, err);
        if (st != BF_OK)
            return st;
        if (tag == TAG_STOP) {
            for (int w = 1; lead && w < r->n_sim; w++)
                bf_dist_send(r->sim_lead + w, TAG_STOP, NULL, 0, err);
            free(buf);
            return BF_OK;
        }
        if (lead && ++jobs == kill_at)
            raise(SIGKILL); /* the test of a killed rank (tests/cli/test_mpi_campaign.sh) */
        bf_sim_set s;
        double start = wall_s();
        st = tag == TAG_JOB ? decode_job(buf, bytes, &s, err)
                            : bf_error_set(err, BF_ERR_IO, "unexpected message %d", tag);
        if (st == BF_OK && lead) {
            sim_job_head h;
            memcpy(&h, buf, sizeof h);
            for (int w = 1; w < r->n_sim && st == BF_OK; w++)
                st = send_job(r->sim_lead + w, &h, s.cells, s.class_index, err);
        }
        free(buf);
        if (st != BF_OK)
            return st; /* MPI or the job message is broken: nothing sensible is left */
        bf_error job_err = {0};
        bf_status jst = run_job(cfg, dir, r, &s, &job_err);
        bf_sim_set_free(&s);
        if (!lead) {
            if (jst != BF_OK) {
                *err = job_err;
                return jst;
            }
            continue;
        }
        done_msg d = {.status = jst, .start = start, .end = wall_s()};
        if (jst != BF_OK)
            snprintf(d.msg, sizeof d.msg, "%s", job_err.msg);
        st = bf_dist_send(0, TAG_DONE, &d, sizeof d, err);
        if (st != BF_OK)
            return st;
    }
}
