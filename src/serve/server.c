/* serve/server.c — the inference service (docs/serve.md §Service, DESIGN §9).
 *
 *   main thread   ROUTER socket: decode each request (bf_wire_decode_request), answer
 *                 a fault at once, queue the rest; forward the workers' replies back
 *                 by identity (ZMQ_ROUTER_MANDATORY, so a gone peer is counted, not
 *                 silently dropped).
 *   workers       take a dynamic batch (up to max_batch items, waiting at most
 *                 max_delay_us after the oldest queued request arrived), run it on
 *                 their own copy of the current model, build one reply per request
 *                 and hand the batch's jobs to the main thread in one inproc message
 *                 (a ZeroMQ socket is one thread's; one wake-up of the main thread
 *                 a batch, not one a reply: each takes a core from the computing
 *                 threads, docs/serve.md §Throughput).
 *   watcher       inotify on the model file's directory: a new file is loaded and
 *                 validated completely (bf_served_load) and then swapped in under a
 *                 lock; a batch holds a reference to the model it started on.
 *
 * Every request gets exactly one reply, also while draining (UNAVAILABLE). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "serve/service_internal.h"

#define MAX_ENVELOPE 4          /* routing frames before the body (identity, delimiter) */
#define LAT_SUB 16              /* latency histogram: buckets per octave (4.4 %) */
#define LAT_BUCKETS (1 + 32 * LAT_SUB)
#define BATCH_BUCKETS 24        /* batch sizes: 1, 2-3, 4-7, ... */
#define REPLY_ENDPOINT "inproc://bf-serve-replies"

typedef struct job {
    struct job *next;
    zmq_msg_t env[MAX_ENVELOPE];
    int n_env;
    zmq_msg_t body;             /* the request frame, decoded and checked */
    bf_wire_request rq;         /* points into body */
    double t_recv;
    zmq_msg_t reply;            /* built by run_batch; empty: no memory for it */
} job;

typedef struct {
    long requests, items, batches, stats_requests, replies_dropped;
    long errors[8];             /* by bf_wire_status */
    long batch_hist[BATCH_BUCKETS];
    long latency[LAT_BUCKETS];  /* request received -> its batch computed */
    long swaps, failed_loads;
    char last_load_error[512];
} counters;

struct bf_server {
    bf_serve_config cfg;
    void *zctx, *router, *pull;
    int kind_code, ndims;       /* what the service was started with; swaps must match */
    uint32_t dims[3], values;
    atomic_int stop;            /* bf_server_stop */
    int draining;
    long outstanding;           /* main thread: queued or computing, reply not forwarded */
    double t_start;

    pthread_mutex_t q_mu;       /* the queue */
    pthread_cond_t q_cv;
    job *q_head, *q_tail;
    long q_items;
    int workers_exit;

    pthread_mutex_t model_mu;   /* current, refs */
    bf_served *current;

    pthread_mutex_t stats_mu;
    counters st;

    pthread_t *worker_tid;
    struct worker_arg *worker_args;   /* one per worker, alive as long as the server */
    atomic_int workers_busy;          /* workers running a batch now */
    struct worker_arg *main_worker;   /* the main thread's lone-request path: copy `workers` */
    float *main_x, *main_r;
    size_t main_xcap, main_rcap;
    int n_workers_started;
    pthread_t watcher_tid;
    int watcher_started, inotify_fd;
};

void bf_serve_config_defaults(bf_serve_config *c)
{
    *c = (bf_serve_config){.bind = "tcp://127.0.0.1:5555",
                           .max_batch = 512,
                           .max_delay_us = 200,
                           .core = -1,
                           .workers = 1,
                           .threads = 0,
                           .max_request_items = 65536,
                           .max_queue_items = 1L << 20,
                           .watch = 1};
}

static void logf_(bf_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(bf_server *s, const char *fmt, ...)
{
    if (s->cfg.quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("braggflow serve: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int latency_bucket(double us)
{
    if (!(us >= 1.0))
        return 0;
    int b = 1 + (int)(log2(us) * LAT_SUB);
    return b < LAT_BUCKETS ? b : LAT_BUCKETS - 1;
}

/* The percentile q of a latency histogram, as its bucket's geometric middle (us). */
static double latency_percentile(const long *h, double q)
{
    long n = 0, seen = 0;
    for (int b = 0; b < LAT_BUCKETS; b++)
        n += h[b];
    if (n == 0)
        return 0;
    long want = (long)ceil(q * (double)n);
    if (want < 1)
        want = 1;
    for (int b = 0; b < LAT_BUCKETS; b++) {
        seen += h[b];
        if (seen >= want)
            return b == 0 ? 0.5 : exp2(((double)(b - 1) + 0.5) / LAT_SUB);
    }
    return exp2((double)(LAT_BUCKETS - 1) / LAT_SUB);
}

static int batch_bucket(long n)
{
    int b = 0;
    while (n > 1 && b < BATCH_BUCKETS - 1)
        n >>= 1, b++;
    return b;
}

/* ---- Replies ------------------------------------------------------------------ */

/* Sends env frames then body on sock (moving them; all are closed either way).
 * Returns 0, or the errno of the failed send. */
static int send_routed(void *sock, zmq_msg_t *env, int n_env, zmq_msg_t *body)
{
    int rc = 0;
    for (int i = 0; i < n_env; i++) {
        if (rc == 0 && zmq_msg_send(&env[i], sock, ZMQ_SNDMORE) < 0)
            rc = zmq_errno();
        if (rc)
            zmq_msg_close(&env[i]);
    }
    if (rc == 0 && zmq_msg_send(body, sock, 0) < 0)
        rc = zmq_errno();
    if (rc)
        zmq_msg_close(body);
    return rc;
}

static void reply_header(zmq_msg_t *msg, int status, uint64_t id, const uint8_t hash[32],
                         uint32_t count, uint32_t values)
{
    bf_wire_reply rp = {.status = status, .id = id, .count = count, .values = values};
    if (hash)
        memcpy(rp.model_hash, hash, 32);
    bf_wire_encode_reply_header(&rp, zmq_msg_data(msg));
}

/* An error (or stats) reply with a text body. Returns 0 or -1 (no memory). */
static int text_reply(zmq_msg_t *msg, int status, uint64_t id, const uint8_t hash[32],
                      const char *text)
{
    size_t n = strlen(text);
    if (zmq_msg_init_size(msg, BF_WIRE_REPLY_HEADER + n))
        return -1;
    reply_header(msg, status, id, hash, 0, 0);
    memcpy((uint8_t *)zmq_msg_data(msg) + BF_WIRE_REPLY_HEADER, text, n);
    return 0;
}

/* Main thread: sends a reply to the envelope now, counting what happened. */
static void answer_now(bf_server *s, zmq_msg_t *env, int n_env, int status, uint64_t id,
                       const char *text)
{
    zmq_msg_t body;
    uint8_t hash[32];
    pthread_mutex_lock(&s->model_mu);
    memcpy(hash, s->current->hash, 32);
    pthread_mutex_unlock(&s->model_mu);
    int rc = text_reply(&body, status, id, hash, text) ? ENOMEM : 0;
    if (rc == 0)
        rc = send_routed(s->router, env, n_env, &body);
    else
        for (int i = 0; i < n_env; i++)
            zmq_msg_close(&env[i]);
    pthread_mutex_lock(&s->stats_mu);
    if (status != BF_WIRE_OK)
        s->st.errors[status & 7]++;
    if (rc)
        s->st.replies_dropped++;
    pthread_mutex_unlock(&s->stats_mu);
}

/* ---- Workers ------------------------------------------------------------------ */

typedef struct worker_arg {
    bf_server *s;
    int index;
    int threads, threads_now;   /* compute threads for large batches; as set now */
} worker_arg;

/* Below this many items a batch runs on one thread: batch-1 BraggNN takes the same
 * ~50 us on one thread as on two, and a second thread's fork/join and spin-wait
 * only take a core from the threads that move the replies. */
#define SMALL_BATCH 32

static void job_free(job *j)
{
    for (int i = 0; i < j->n_env; i++)
        zmq_msg_close(&j->env[i]);
    zmq_msg_close(&j->body);
    zmq_msg_close(&j->reply);
    free(j);
}

/* Frees a list of jobs; returns how many there were. */
static long job_list_free(job *j)
{
    long n = 0;
    for (job *next; j; j = next, n++) {
        next = j->next;
        job_free(j);
    }
    return n;
}

static void count_dropped(bf_server *s, long n)
{
    pthread_mutex_lock(&s->stats_mu);
    s->st.replies_dropped += n;
    pthread_mutex_unlock(&s->stats_mu);
}

/* Main thread: sends each job's reply to its envelope and frees the jobs. An empty
 * reply (a worker had no memory to build it) still answers, INTERNAL, so none is lost. */
static void send_replies(bf_server *s, job *jobs)
{
    long dropped = 0;
    for (job *j = jobs, *next; j; j = next) {
        next = j->next;
        if (zmq_msg_size(&j->reply) == 0) {
            zmq_msg_close(&j->reply);
            if (text_reply(&j->reply, BF_WIRE_INTERNAL, j->rq.id, NULL,
                           "out of memory for the reply"))
                zmq_msg_init(&j->reply);
        }
        if (send_routed(s->router, j->env, j->n_env, &j->reply))
            dropped++;
        zmq_msg_init(&j->reply);   /* moved or closed by send_routed */
        j->n_env = 0;
        job_free(j);
        s->outstanding--;
    }
    if (dropped)
        count_dropped(s, dropped);
}

/* Takes a batch off the queue: blocks for the first request, then waits for more
 * until max_batch items or max_delay_us after the oldest one arrived. NULL: exit. */
static job *take_batch(bf_server *s)
{
    pthread_mutex_lock(&s->q_mu);
    for (;;) {
        while (!s->q_head && !s->workers_exit)
            pthread_cond_wait(&s->q_cv, &s->q_mu);
        if (!s->q_head) {
            pthread_mutex_unlock(&s->q_mu);
            return NULL;
        }
        double deadline = s->q_head->t_recv + 1e-6 * s->cfg.max_delay_us;
        while (s->q_head && s->q_items < s->cfg.max_batch && !s->workers_exit &&
               !atomic_load(&s->stop)) {
            double now = bf_now_seconds();
            if (now >= deadline)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            double wait = deadline - now;
            ts.tv_sec += (time_t)wait;
            ts.tv_nsec += (long)((wait - floor(wait)) * 1e9);
            if (ts.tv_nsec >= 1000000000L)
                ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&s->q_cv, &s->q_mu, &ts);
        }
        if (s->q_head)
            break;
        /* another worker took them while this one waited: wait for new work */
    }
    job *first = s->q_head, *last = NULL;
    long items = 0;
    for (job *j = s->q_head; j && (items == 0 || items + j->rq.count <= s->cfg.max_batch);
         j = j->next)
        items += j->rq.count, last = j;
    s->q_head = last->next;
    if (!s->q_head)
        s->q_tail = NULL;
    last->next = NULL;
    s->q_items -= items;
    pthread_mutex_unlock(&s->q_mu);
    return first;
}

/* Request values -> float32, into x. */
static void item_values(const bf_wire_request *rq, float *x)
{
    size_t n = (size_t)rq->count * rq->item_values;
    if (rq->dtype == BF_DTYPE_F32)
        memcpy(x, rq->payload, 4 * n);
    else
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(rq->payload[2 * i] | rq->payload[2 * i + 1] << 8);
}

static int grow(float **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    float *p = realloc(*buf, sizeof(float) * need);
    if (!p)
        return -1;
    *buf = p, *cap = need;
    return 0;
}

/* Runs one batch (the jobs of a list) on the current model and builds each job's
 * reply; the caller sends them (send_replies, or a worker's hand-off). */
static void run_batch(bf_server *s, worker_arg *w, job *jobs, float **x, size_t *xcap,
                      float **r, size_t *rcap)
{
    pthread_mutex_lock(&s->model_mu);
    bf_served *sv = s->current;
    sv->refs++;
    pthread_mutex_unlock(&s->model_mu);

    long items = 0, n_jobs = 0;
    for (job *j = jobs; j; j = j->next)
        items += j->rq.count, n_jobs++;
    bf_error err = {0};
    bf_status st = BF_OK;
    if (grow(x, xcap, (size_t)items * sv->item_values) ||
        grow(r, rcap, (size_t)items * sv->values))
        st = bf_error_set(&err, BF_ERR_NOMEM, "out of memory for a batch of %ld items", items);
    long at = 0;
    for (job *j = jobs; st == BF_OK && j; j = j->next) {
        item_values(&j->rq, *x + (size_t)at * sv->item_values);
        at += j->rq.count;
    }
    int threads = items < SMALL_BATCH ? 1 : w->threads;
    if (threads != w->threads_now)
        bf_backend_cpu()->set_threads(w->threads_now = threads);
    for (long i = 0; st == BF_OK && i < items; i += s->cfg.max_batch) {
        long B = items - i < s->cfg.max_batch ? items - i : s->cfg.max_batch;
        st = bf_served_predict(sv, w->index, *x + (size_t)i * sv->item_values, B,
                               *r + (size_t)i * sv->values, &err);
    }

    /* Counters first, replies second: a client that has its reply can read stats
     * that already include it. Every job of a batch finished computing now. */
    double t_done = bf_now_seconds();
    pthread_mutex_lock(&s->stats_mu);
    s->st.batches++;
    s->st.batch_hist[batch_bucket(items)]++;
    if (st == BF_OK)
        s->st.items += items;
    else
        s->st.errors[BF_WIRE_INTERNAL] += n_jobs;
    for (job *j = jobs; j; j = j->next)
        s->st.latency[latency_bucket(1e6 * (t_done - j->t_recv))]++;
    pthread_mutex_unlock(&s->stats_mu);

    at = 0;
    for (job *j = jobs; j; j = j->next) {
        zmq_msg_t *body = &j->reply;
        int ok;
        zmq_msg_close(body);
        if (st == BF_OK) {
            size_t bytes = sizeof(float) * (size_t)j->rq.count * sv->values;
            ok = zmq_msg_init_size(body, BF_WIRE_REPLY_HEADER + bytes) == 0;
            if (ok) {
                reply_header(body, BF_WIRE_OK, j->rq.id, sv->hash, j->rq.count, sv->values);
                memcpy((uint8_t *)zmq_msg_data(body) + BF_WIRE_REPLY_HEADER,
                       *r + (size_t)at * sv->values, bytes);
            }
        } else {
            ok = text_reply(body, BF_WIRE_INTERNAL, j->rq.id, sv->hash, err.msg) == 0;
        }
        at += j->rq.count;
        if (!ok)
            zmq_msg_init(body);   /* send_replies answers it INTERNAL */
    }

    pthread_mutex_lock(&s->model_mu);
    int last = --sv->refs == 0;
    pthread_mutex_unlock(&s->model_mu);
    if (last)
        bf_served_free(sv);
}

static void *worker_main(void *arg)
{
    worker_arg *w = arg;
    bf_server *s = w->s;
    int threads = s->cfg.threads;
    if (threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = (int)(cores / s->cfg.workers > 0 ? cores / s->cfg.workers : 1);
    }
    bf_backend_cpu()->set_threads(w->threads = w->threads_now = threads);
    void *push = zmq_socket(s->zctx, ZMQ_PUSH);
    int zero = 0;
    if (push)
        zmq_setsockopt(push, ZMQ_SNDHWM, &zero, sizeof zero);   /* never drop a reply */
    if (!push || zmq_connect(push, REPLY_ENDPOINT)) {
        logf_(s, "worker %d: cannot connect its reply socket: %s", w->index,
              zmq_strerror(zmq_errno()));
        if (push)
            zmq_close(push);
        return NULL;
    }
    float *x = NULL, *r = NULL;
    size_t xcap = 0, rcap = 0;
    job *jobs;
    while ((jobs = take_batch(s))) {
        atomic_fetch_add(&s->workers_busy, 1);
        run_batch(s, w, jobs, &x, &xcap, &r, &rcap);
        atomic_fetch_sub(&s->workers_busy, 1);
        /* The jobs themselves go over: the main thread owns them from here. inproc with
         * no high-water mark does not refuse a message; should it fail all the same the
         * main thread could not answer them, so they are counted as dropped. */
        if (zmq_send(push, &jobs, sizeof jobs, 0) != sizeof jobs)
            count_dropped(s, job_list_free(jobs));
    }
    free(x);
    free(r);
    zmq_close(push);
    return NULL;
}

/* ---- Live model swap ------------------------------------------------------------ */

static void try_swap(bf_server *s)
{
    char hex[65];
    bf_error err = {0};
    pthread_mutex_lock(&s->model_mu);
    char cur[65];
    memcpy(cur, s->current->hash_hex, 65);
    pthread_mutex_unlock(&s->model_mu);
    /* The same bytes again (a touch, a copy of the same file): nothing to load. */
    if (bf_sha256_file_hex(s->cfg.model_path, hex, &err) == BF_OK && !strcmp(hex, cur))
        return;
    bf_served *sv = NULL;
    bf_status st =
        bf_served_load(s->cfg.model_path, s->cfg.workers + 1, s->cfg.max_batch, &sv, &err);
    if (st == BF_OK && (sv->wire_model != s->kind_code || sv->ndims != s->ndims ||
                        memcmp(sv->dims, s->dims, sizeof sv->dims) || sv->values != s->values)) {
        char have[64], want[64];
        bf_served_describe(sv, have, sizeof have);
        pthread_mutex_lock(&s->model_mu);
        bf_served_describe(s->current, want, sizeof want);
        pthread_mutex_unlock(&s->model_mu);
        bf_error_set(&err, BF_ERR_INVALID, "%s: the new file is %s; the service serves %s",
                     s->cfg.model_path, have, want);
        bf_served_free(sv);
        st = BF_ERR_INVALID;
    }
    if (st != BF_OK) {
        pthread_mutex_lock(&s->stats_mu);
        s->st.failed_loads++;
        snprintf(s->st.last_load_error, sizeof s->st.last_load_error, "%s", err.msg);
        pthread_mutex_unlock(&s->stats_mu);
        logf_(s, "new model refused, still serving %.12s: %s", cur, err.msg);
        return;
    }
    sv->refs = 1;   /* the server's own reference */
    pthread_mutex_lock(&s->model_mu);
    bf_served *old = s->current;
    s->current = sv;
    int last = --old->refs == 0;
    pthread_mutex_unlock(&s->model_mu);
    if (last)
        bf_served_free(old);
    pthread_mutex_lock(&s->stats_mu);
    s->st.swaps++;
    pthread_mutex_unlock(&s->stats_mu);
    logf_(s, "swapped in %.12s (was %.12s), loaded in %.1f ms", sv->hash_hex, cur, sv->load_ms);
}

static void *watcher_main(void *arg)
{
    bf_server *s = arg;
    const char *slash = strrchr(s->cfg.model_path, '/');
    const char *base = slash ? slash + 1 : s->cfg.model_path;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {.fd = s->inotify_fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        int changed = 0;
        ssize_t n;
        while ((n = read(s->inotify_fd, buf, sizeof buf)) > 0)
            for (char *p = buf; p < buf + n;) {
                struct inotify_event *ev = (struct inotify_event *)p;
                if (ev->len && !strcmp(ev->name, base))
                    changed = 1;
                p += sizeof *ev + ev->len;
            }
        if (changed)
            try_swap(s);
    }
    return NULL;
}

static bf_status start_watcher(bf_server *s, bf_error *err)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", s->cfg.model_path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    s->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    /* A finished write (IN_CLOSE_WRITE) or an atomic rename into place (IN_MOVED_TO);
     * watching the directory survives the file being replaced. */
    if (s->inotify_fd < 0 ||
        inotify_add_watch(s->inotify_fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0)
        return bf_error_set(err, BF_ERR_IO, "%s: cannot watch its directory: %s",
                            s->cfg.model_path, strerror(errno));
    if (pthread_create(&s->watcher_tid, NULL, watcher_main, s))
        return bf_error_set(err, BF_ERR_NOMEM, "cannot start the model watcher thread");
    s->watcher_started = 1;
    return BF_OK;
}

/* ---- Start, run, stop ------------------------------------------------------------- */

bf_status bf_server_start(const bf_serve_config *c, bf_server **out, bf_error *err)
{
    *out = NULL;
    if (!c->model_path || !c->bind)
        return bf_error_set(err, BF_ERR_INVALID, "serve: a model path and an endpoint are needed");
    if (c->max_batch < 1 || c->max_batch > 65536 || c->workers < 1 || c->workers > 256 ||
        c->max_delay_us < 0 || c->busy_poll_us < 0 || c->max_request_items < 1 ||
        c->max_queue_items < 1)
        return bf_error_set(err, BF_ERR_INVALID,
                            "serve: max_batch 1..65536, workers 1..256, max_delay_us and "
                            "busy_poll_us >= 0");
    bf_server *s = calloc(1, sizeof *s);
    if (!s)
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    s->cfg = *c;
    s->inotify_fd = -1;
    s->t_start = bf_now_seconds();
    pthread_mutex_init(&s->q_mu, NULL);
    pthread_cond_init(&s->q_cv, NULL);
    pthread_mutex_init(&s->model_mu, NULL);
    pthread_mutex_init(&s->stats_mu, NULL);
    *out = s;   /* bf_server_destroy cleans up whatever started */

    bf_status st = bf_served_load(c->model_path, c->workers + 1, c->max_batch, &s->current, err);
    if (st != BF_OK)
        return st;
    s->current->refs = 1;
    s->kind_code = s->current->wire_model;
    s->ndims = s->current->ndims;
    memcpy(s->dims, s->current->dims, sizeof s->dims);
    s->values = s->current->values;

    s->zctx = zmq_ctx_new();
    if (!s->zctx)
        return bf_error_set(err, BF_ERR_NOMEM, "zmq: cannot create a context");
    if (c->core >= 0 && (st = bf_zmq_io_on_core(s->zctx, c->core, "serve", err)) != BF_OK)
        return st;
    s->router = zmq_socket(s->zctx, ZMQ_ROUTER);
    s->pull = zmq_socket(s->zctx, ZMQ_PULL);
    if (!s->router || !s->pull)
        return bf_error_set(err, BF_ERR_NOMEM, "zmq: cannot create sockets");
    int one = 1, hwm = 100000, sndtimeo = 1000, zero = 0;
    zmq_setsockopt(s->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(s->router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s->router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s->router, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    zmq_setsockopt(s->pull, ZMQ_RCVHWM, &zero, sizeof zero);
    if (zmq_bind(s->router, c->bind))
        return bf_error_set(err, BF_ERR_IO, "%s: cannot bind: %s", c->bind,
                            zmq_strerror(zmq_errno()));
    if (zmq_bind(s->pull, REPLY_ENDPOINT))
        return bf_error_set(err, BF_ERR_IO, "zmq: cannot bind the reply queue: %s",
                            zmq_strerror(zmq_errno()));

    s->worker_tid = calloc((size_t)c->workers, sizeof *s->worker_tid);
    s->worker_args = calloc((size_t)c->workers + 1, sizeof *s->worker_args);
    if (!s->worker_tid || !s->worker_args)
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    s->main_worker = &s->worker_args[c->workers];   /* copy `workers`, one thread */
    s->main_worker->s = s;
    s->main_worker->index = c->workers;
    s->main_worker->threads = 1;
    for (int i = 0; i < c->workers; i++) {
        s->worker_args[i].s = s;
        s->worker_args[i].index = i;
        if (pthread_create(&s->worker_tid[i], NULL, worker_main, &s->worker_args[i]))
            return bf_error_set(err, BF_ERR_NOMEM, "cannot start worker thread %d", i);
        s->n_workers_started++;
    }
    if (c->watch)
        st = start_watcher(s, err);
    char what[64];
    bf_served_describe(s->current, what, sizeof what);
    if (st == BF_OK)
        logf_(s, "serving %s %.12s from %s on %s (%d worker%s, max batch %d, max delay %d us)",
              what, s->current->hash_hex, c->model_path, c->bind, c->workers,
              c->workers == 1 ? "" : "s", c->max_batch, c->max_delay_us);
    return st;
}

void bf_server_stop(bf_server *s) { atomic_store(&s->stop, 1); }

/* Receives one multipart message from the router: envelope frames and the body. */
static int recv_routed(void *sock, zmq_msg_t *env, int *n_env, zmq_msg_t *body)
{
    *n_env = 0;
    zmq_msg_init(body);
    for (;;) {
        if (zmq_msg_recv(body, sock, ZMQ_DONTWAIT) < 0)
            return -1;
        if (!zmq_msg_more(body))
            return 0;
        if (*n_env < MAX_ENVELOPE) {
            zmq_msg_init(&env[*n_env]);
            zmq_msg_move(&env[(*n_env)++], body);
        }
        /* deeper envelopes than ours keep only the first frames: the reply goes to the
         * identity, which is the first */
    }
}

/* "11x11", "3000" */
static void format_dims(const uint32_t *dims, int ndims, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%u", dims[0]);
    for (int k = 1; k < ndims && n > 0 && (size_t)n < outsz; k++)
        n += snprintf(out + n, outsz - (size_t)n, "x%u", dims[k]);
}

/* Decodes one request: a fault or stats request is answered now (NULL); a good one
 * becomes a job for the caller to queue or run. */
static job *handle_request(bf_server *s, zmq_msg_t *env, int n_env, zmq_msg_t *body)
{
    char why[256] = "";
    bf_wire_request rq;
    int status = bf_wire_decode_request(zmq_msg_data(body), zmq_msg_size(body),
                                        s->cfg.max_request_items, &rq, why, sizeof why);
    if (status == BF_WIRE_OK && rq.op == BF_OP_STATS) {
        pthread_mutex_lock(&s->stats_mu);
        s->st.stats_requests++;
        pthread_mutex_unlock(&s->stats_mu);
        char *json = bf_server_stats_json(s);
        answer_now(s, env, n_env, json ? BF_WIRE_OK : BF_WIRE_INTERNAL, rq.id,
                   json ? json : "out of memory");
        free(json);
        zmq_msg_close(body);
        return NULL;
    }
    pthread_mutex_lock(&s->stats_mu);
    s->st.requests++;
    pthread_mutex_unlock(&s->stats_mu);
    if (status == BF_WIRE_OK && rq.model != s->kind_code)
        status = BF_WIRE_WRONG_MODEL,
        snprintf(why, sizeof why, "model %s requested; this service serves %s",
                 bf_wire_model_name(rq.model), bf_wire_model_name(s->kind_code));
    if (status == BF_WIRE_OK &&
        (rq.ndims != s->ndims || memcmp(rq.dims, s->dims, sizeof rq.dims))) {
        status = BF_WIRE_WRONG_MODEL;
        char have[48], want[48];
        format_dims(rq.dims, rq.ndims, have, sizeof have);
        format_dims(s->dims, s->ndims, want, sizeof want);
        snprintf(why, sizeof why, "items of %s values; the model takes %s", have, want);
    }
    if (status == BF_WIRE_OK && s->draining)
        status = BF_WIRE_UNAVAILABLE, snprintf(why, sizeof why, "the service is shutting down");
    job *j = NULL;
    if (status == BF_WIRE_OK) {
        pthread_mutex_lock(&s->q_mu);
        long queued = s->q_items;
        pthread_mutex_unlock(&s->q_mu);
        if (queued + rq.count > s->cfg.max_queue_items)
            status = BF_WIRE_UNAVAILABLE,
            snprintf(why, sizeof why, "queue full (%ld items waiting)", queued);
        else if (!(j = calloc(1, sizeof *j)))
            status = BF_WIRE_INTERNAL, snprintf(why, sizeof why, "out of memory");
    }
    if (status != BF_WIRE_OK) {
        answer_now(s, env, n_env, status, rq.id, why);
        zmq_msg_close(body);
        return NULL;
    }
    j->t_recv = bf_now_seconds();
    j->n_env = n_env;
    for (int i = 0; i < n_env; i++) {
        zmq_msg_init(&j->env[i]);
        zmq_msg_move(&j->env[i], &env[i]);
    }
    zmq_msg_init(&j->body);
    zmq_msg_move(&j->body, body);
    j->rq = rq;
    j->rq.payload = (const uint8_t *)zmq_msg_data(&j->body) + BF_WIRE_REQUEST_HEADER;
    zmq_msg_init(&j->reply);
    return j;
}

static void enqueue(bf_server *s, job *j)
{
    pthread_mutex_lock(&s->q_mu);
    if (s->q_tail)
        s->q_tail->next = j;
    else
        s->q_head = j;
    s->q_tail = j;
    s->q_items += j->rq.count;
    pthread_cond_signal(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
    s->outstanding++;
}

/* Sends the replies of every batch the workers have handed over. */
static void forward_replies(bf_server *s)
{
    job *jobs;
    while (zmq_recv(s->pull, &jobs, sizeof jobs, ZMQ_DONTWAIT) == sizeof jobs)
        send_replies(s, jobs);
}

bf_status bf_server_run(bf_server *s, bf_error *err)
{
    char why[256];
    if (s->cfg.core >= 0 && bf_pin_thread_to_cores(s->cfg.core, 1, why, sizeof why))
        return bf_error_set(err, BF_ERR_INVALID, "serve: --core %d: %s", s->cfg.core, why);
    zmq_pollitem_t items[2] = {{s->router, 0, ZMQ_POLLIN, 0}, {s->pull, 0, ZMQ_POLLIN, 0}};
    /* Draining ends when nothing is in flight and no request has come for DRAIN_QUIET_S:
     * a request already on its way when the stop came still gets its reply. */
    const double DRAIN_QUIET_S = 0.1;
    double last_request = bf_now_seconds();
    for (;;) {
        if (atomic_load(&s->stop) && !s->draining) {
            s->draining = 1;
            logf_(s, "draining %ld request%s in flight", s->outstanding,
                  s->outstanding == 1 ? "" : "s");
            pthread_mutex_lock(&s->q_mu);
            pthread_cond_broadcast(&s->q_cv);   /* no more waiting for fuller batches */
            pthread_mutex_unlock(&s->q_mu);
        }
        if (s->draining && s->outstanding == 0 && bf_now_seconds() - last_request > DRAIN_QUIET_S)
            break;
        /* Busy polling: a woken thread costs 40-50 us on this VM (a bare ROUTER echo,
         * blocking 82 us p50, spinning 32 us), so while requests keep coming and no
         * batch computes (it would lose the core) the main thread spins, for at most
         * busy_poll_us after the last request (docs/serve.md §Latency). */
        int spin = s->cfg.busy_poll_us > 0 && !s->draining && s->outstanding == 0 &&
                   atomic_load(&s->workers_busy) == 0 &&
                   bf_now_seconds() - last_request < 1e-6 * s->cfg.busy_poll_us;
        int rc = zmq_poll(items, 2, spin ? 0 : s->draining ? 10 : 50);
        if (spin && rc == 0)
            sched_yield();
        if (rc < 0 && zmq_errno() != EINTR)
            return bf_error_set(err, BF_ERR_IO, "zmq_poll: %s", zmq_strerror(zmq_errno()));
        forward_replies(s);
        /* a bounded number per turn, so replies keep flowing under load */
        job *turn = NULL;
        int n_turn = 0;
        for (int k = 0; k < 256; k++) {
            zmq_msg_t env[MAX_ENVELOPE], body;
            int n_env;
            if (recv_routed(s->router, env, &n_env, &body)) {
                zmq_msg_close(&body);
                for (int i = 0; i < n_env; i++)
                    zmq_msg_close(&env[i]);
                break;
            }
            if (n_env == 0) {   /* nothing to route a reply to (cannot happen on ROUTER) */
                zmq_msg_close(&body);
                continue;
            }
            job *j = handle_request(s, env, n_env, &body);
            last_request = bf_now_seconds();
            if (j)
                j->next = turn, turn = j, n_turn++;
        }
        /* A lone small request while every worker is idle and nothing is queued runs
         * here, on the main thread's own model copy: two thread hand-offs fewer on
         * its round trip (docs/serve.md §Service). Under load requests arrive several
         * per turn and go to the workers, which batch them. */
        int queue_empty = 0;
        if (n_turn == 1) {
            pthread_mutex_lock(&s->q_mu);
            queue_empty = s->q_head == NULL;
            pthread_mutex_unlock(&s->q_mu);
        }
        if (n_turn == 1 && turn->rq.count < SMALL_BATCH && !s->draining && queue_empty &&
            atomic_load(&s->workers_busy) == 0) {
            s->outstanding++;
            run_batch(s, s->main_worker, turn, &s->main_x, &s->main_xcap, &s->main_r,
                      &s->main_rcap);
            send_replies(s, turn);
        } else {
            job *in_order = NULL;   /* turn holds them newest first */
            while (turn) {
                job *next = turn->next;
                turn->next = in_order, in_order = turn, turn = next;
            }
            for (job *next; in_order; in_order = next) {
                next = in_order->next;
                in_order->next = NULL;
                enqueue(s, in_order);
            }
        }
    }
    logf_(s, "drained; %ld requests, %ld items, %ld errors", s->st.requests, s->st.items,
          s->st.errors[1] + s->st.errors[2] + s->st.errors[3] + s->st.errors[4] +
              s->st.errors[5] + s->st.errors[6]);
    return BF_OK;
}

void bf_server_destroy(bf_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    pthread_mutex_lock(&s->q_mu);
    s->workers_exit = 1;
    pthread_cond_broadcast(&s->q_cv);
    pthread_mutex_unlock(&s->q_mu);
    for (int i = 0; i < s->n_workers_started; i++)
        pthread_join(s->worker_tid[i], NULL);
    if (s->watcher_started)
        pthread_join(s->watcher_tid, NULL);
    if (s->inotify_fd >= 0)
        close(s->inotify_fd);
    job_list_free(s->q_head);   /* only after a failed run */
    job *handed;   /* batches a worker finished that no one forwarded (a failed run) */
    while (s->pull && zmq_recv(s->pull, &handed, sizeof handed, ZMQ_DONTWAIT) == sizeof handed)
        job_list_free(handed);
    int linger = 1000;
    if (s->router) {
        zmq_setsockopt(s->router, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(s->router);
    }
    if (s->pull)
        zmq_close(s->pull);
    if (s->zctx)
        zmq_ctx_term(s->zctx);
    if (s->current)
        bf_served_free(s->current);
    pthread_mutex_destroy(&s->q_mu);
    pthread_cond_destroy(&s->q_cv);
    pthread_mutex_destroy(&s->model_mu);
    pthread_mutex_destroy(&s->stats_mu);
    free(s->worker_tid);
    free(s->worker_args);
    free(s->main_x);
    free(s->main_r);
    free(s);
}

char *bf_server_stats_json(bf_server *s)
{
    counters c;
    pthread_mutex_lock(&s->stats_mu);
    c = s->st;
    pthread_mutex_unlock(&s->stats_mu);
    char hash[65], path[1024], loaded_at[32], what[64];
    double load_ms;
    pthread_mutex_lock(&s->model_mu);
    memcpy(hash, s->current->hash_hex, 65);
    snprintf(path, sizeof path, "%s", s->current->path);
    memcpy(loaded_at, s->current->loaded_at, 32);
    load_ms = s->current->load_ms;
    bf_served_describe(s->current, what, sizeof what);
    pthread_mutex_unlock(&s->model_mu);
    long errors = 0;
    for (int i = 1; i < 8; i++)
        errors += c.errors[i];

    bf_buf b = {0};
    bf_buf_printf(&b, "{\"requests\": %ld, \"items\": %ld, \"errors\": %ld, \"errors_by_status\": {",
                  c.requests, c.items, errors);
    for (int i = 1; i <= BF_WIRE_INTERNAL; i++)
        bf_buf_printf(&b, "%s\"%s\": %ld", i > 1 ? ", " : "", bf_wire_status_name(i),
                      c.errors[i]);
    bf_buf_printf(&b, "}, \"batches\": %ld, \"batch_size_histogram\": {", c.batches);
    const char *sep = "";
    for (int k = 0; k < BATCH_BUCKETS; k++) {
        if (!c.batch_hist[k])
            continue;
        long lo = 1L << k, hi = (1L << (k + 1)) - 1;
        if (lo == hi)
            bf_buf_printf(&b, "%s\"%ld\": %ld", sep, lo, c.batch_hist[k]);
        else
            bf_buf_printf(&b, "%s\"%ld-%ld\": %ld", sep, lo, hi, c.batch_hist[k]);
        sep = ", ";
    }
    /* a path or a message can hold anything: quoted as JSON strings (6 bytes a byte at
     * worst) */
    char q_path[6 * sizeof path + 3], q_err[6 * sizeof c.last_load_error + 3];
    bf_buf_printf(&b,
                  "}, \"latency_us\": {\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, "
                  "\"p99.9\": %.1f}, \"stats_requests\": %ld, \"replies_dropped\": %ld, "
                  "\"uptime_s\": %.3f, \"workers\": %d, \"max_batch\": %d, "
                  "\"max_delay_us\": %d, \"busy_poll_us\": %d, "
                  "\"model\": {\"kind\": \"%s\", \"hash\": \"%s\", \"path\": %s, "
                  "\"loaded_at\": \"%s\", \"load_ms\": %.2f, \"swaps\": %ld, "
                  "\"failed_loads\": %ld, \"last_load_error\": %s}}",
                  latency_percentile(c.latency, 0.50), latency_percentile(c.latency, 0.90),
                  latency_percentile(c.latency, 0.99), latency_percentile(c.latency, 0.999),
                  c.stats_requests, c.replies_dropped, bf_now_seconds() - s->t_start,
                  s->cfg.workers, s->cfg.max_batch, s->cfg.max_delay_us, s->cfg.busy_poll_us,
                  what, hash, bf_json_quote(path, q_path, sizeof q_path), loaded_at, load_ms,
                  c.swaps, c.failed_loads, bf_json_quote(c.last_load_error, q_err, sizeof q_err));
    if (b.failed) {
        bf_buf_free(&b);
        return NULL;
    }
    return b.data;
}
