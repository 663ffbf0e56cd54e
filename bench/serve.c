/* bench/serve.c — the inference service against `peaks` in-process, same run, same
 * compute threads (issue 10's targets, docs/serve.md §Measured):
 *   latency     batch 1, one connection, one request in flight, over loopback TCP,
 *               --max-delay-us 0: round-trip p50/p99 next to bf_peaks_predict's on
 *               one patch (what `peaks` runs); target p99 ratio <= 2.
 *   throughput  dynamic batching (max batch 512), several connections with requests
 *               in flight: items/s next to bf_peaks_predict over the same patches at
 *               batch 512 (`peaks` offline); target ratio >= 0.8.
 * Next to the latency, the transport's floor in the same run: a bare ZeroMQ echo of a
 * frame of the same size (no model, no batching).
 * The model is a fresh BraggNN (its speed does not depend on its weights); the server
 * runs in this process on its own threads, the client on others, as they would share
 * this machine's cores as two processes. Prints one JSON object.
 *
 *   ./build/bench/bench_serve [--threads 2] [--patches 20000] [--seconds 3]
 *       [--port 5599] [--batch 64] [--concurrency 4] [--inflight 4] [--busy-poll-us 1000]
 *       [--core N]
 * The batch-1 round trip is measured three ways: the server sleeping on its socket (the
 * default), spinning on it for --busy-poll-us after each request, and sleeping with the
 * server's and the client's threads (their own and ZeroMQ's I/O threads) on one core,
 * --core (serve --core, serve-client --core: no cross-core wake-up on the round trip,
 * docs/serve.md §Latency; default the last core, on this VM the quieter one). The throughput run busy-polls, unbound (it spins only while
 * no batch computes). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "braggflow/serve.h"

typedef struct {
    bf_server *s;
    bf_error err;
} server_thread;

static void *run_server(void *arg)
{
    server_thread *t = arg;
    bf_server_run(t->s, &t->err);
    return NULL;
}

static int die(const bf_error *err)
{
    fprintf(stderr, "bench_serve: %s\n", err->msg);
    return 2;
}

/* p50 and p99 (us) of bf_peaks_predict on one patch at a time, for `seconds`. */
static bf_status inprocess_latency(bf_model *m, const bf_patches *p, double seconds, double q[2],
                                   bf_error *err)
{
    long cap = 200000, n = 0;
    double *lat = malloc(sizeof(double) * (size_t)cap), c[2];
    if (!lat)
        return bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    bf_patches one = *p;
    one.n = 1;
    one.centre = NULL;
    bf_status st = BF_OK;
    double t_end = bf_now_seconds() + seconds;
    for (long i = 0; st == BF_OK && n < cap && bf_now_seconds() < t_end; i++) {
        one.patches = p->patches + (size_t)(i % p->n) * p->size * p->size;
        double t0 = bf_now_seconds();
        st = bf_peaks_predict(m, &one, "bench", 1, c, err);
        lat[n++] = 1e6 * (bf_now_seconds() - t0);
    }
    bf_sort_doubles(lat, n);
    q[0] = bf_percentile_sorted(lat, n, 0.5);
    q[1] = bf_percentile_sorted(lat, n, 0.99);
    free(lat);
    return st;
}

/* The transport's own floor: a bare ROUTER that echoes each frame back, the same
 * size as a batch-1 request, over the same kind of endpoint. */
static void *echo_main(void *arg)
{
    void *router = arg;
    for (;;) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, router, 0) < 0 || zmq_msg_recv(&body, router, 0) < 0) {
            zmq_msg_close(&id);
            zmq_msg_close(&body);
            return NULL;   /* the context was terminated */
        }
        zmq_msg_send(&id, router, ZMQ_SNDMORE);
        zmq_msg_send(&body, router, 0);
    }
}

static bf_status echo_latency(const char *ep, int n, double q[2], bf_error *err)
{
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER), *dealer = zmq_socket(ctx, ZMQ_DEALER);
    double *lat = malloc(sizeof(double) * (size_t)n);
    uint8_t frame[BF_WIRE_REQUEST_HEADER + 4 * 121] = {0};
    pthread_t tid;
    int linger = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    if (!lat || zmq_bind(router, ep) || zmq_connect(dealer, ep) ||
        pthread_create(&tid, NULL, echo_main, router)) {
        free(lat);
        return bf_error_set(err, BF_ERR_IO, "%s: echo set-up failed", ep);
    }
    for (int i = -500; i < n; i++) {
        double t0 = bf_now_seconds();
        zmq_send(dealer, frame, sizeof frame, 0);
        zmq_recv(dealer, frame, sizeof frame, 0);
        if (i >= 0)
            lat[i] = 1e6 * (bf_now_seconds() - t0);
    }
    zmq_close(dealer);
    zmq_ctx_shutdown(ctx);   /* wakes the echo thread's recv with ETERM */
    pthread_join(tid, NULL);
    zmq_close(router);
    zmq_ctx_term(ctx);
    bf_sort_doubles(lat, n);
    q[0] = bf_percentile_sorted(lat, n, 0.5);
    q[1] = bf_percentile_sorted(lat, n, 0.99);
    free(lat);
    return BF_OK;
}

/* The patches, the model file and what `peaks` does with them in-process: throughput at
 * batch 512 (best of three passes) and batch-1 latency. On a thread of its own whose
 * OpenMP team ends with it: libgomp shortens every team's spin-wait to a few hundred
 * iterations while it manages more threads than there are cores, and this team next to
 * the server's worker team would do that to the server, which as `serve` has its
 * process to itself. */
typedef struct {
    const char *model;
    int threads;
    long n_patches;
    double seconds;
    bf_patches p;
    double items_per_s, inproc[2];
    bf_status st;
    bf_error err;
} offline_run;

static void *offline_main(void *arg)
{
    offline_run *o = arg;
    bf_model *m = NULL;
    bf_checkpoint_info info = {0};
    bf_peaks_config pc;
    bf_peaks_config_defaults(&pc);
    pc.count = o->n_patches, pc.seed = 1;
    memset(&o->p, 0, sizeof o->p);
    bf_backend_cpu()->set_threads(o->threads);
    o->st = bf_model_create("braggnn", NULL, bf_backend_cpu(), 1, &m, &o->err);
    if (o->st == BF_OK)
        o->st = bf_checkpoint_save(o->model, m, &info, NULL, &o->err);
    if (o->st == BF_OK)
        o->st = bf_patches_simulate(&pc, o->threads, &o->p, &o->err);
    double *centres = o->st == BF_OK ? malloc(sizeof(double) * 2 * (size_t)o->p.n) : NULL;
    if (o->st == BF_OK && !centres)
        o->st = bf_error_set(&o->err, BF_ERR_NOMEM, "out of memory");
    for (int rep = 0; o->st == BF_OK && rep < 3; rep++) {
        double t0 = bf_now_seconds();
        o->st = bf_peaks_predict(m, &o->p, "bench", 512, centres, &o->err);
        double r = (double)o->p.n / (bf_now_seconds() - t0);
        o->items_per_s = r > o->items_per_s ? r : o->items_per_s;
    }
    free(centres);
    if (o->st == BF_OK)
        o->st = inprocess_latency(m, &o->p, o->seconds, o->inproc, &o->err);
    bf_model_destroy(m);
    return NULL;
}

static bf_status start_server(const char *model, const char *ep, int threads, int delay_us,
                              int busy_poll_us, int core, server_thread *t, pthread_t *tid,
                              bf_error *err)
{
    bf_serve_config c;
    bf_serve_config_defaults(&c);
    c.model_path = model, c.bind = ep, c.threads = threads, c.quiet = 1, c.watch = 0;
    c.max_delay_us = delay_us, c.busy_poll_us = busy_poll_us, c.core = core;
    bf_status st = bf_server_start(&c, &t->s, err);
    if (st != BF_OK) {
        bf_server_destroy(t->s);
        return st;
    }
    if (pthread_create(tid, NULL, run_server, t)) {
        bf_server_destroy(t->s);
        return bf_error_set(err, BF_ERR_NOMEM, "cannot start the server thread");
    }
    return BF_OK;
}

static void stop_server(server_thread *t, pthread_t tid)
{
    bf_server_stop(t->s);
    pthread_join(tid, NULL);
    bf_server_destroy(t->s);
}

int main(int argc, char **argv)
{
    int threads = 2, port = 5599, batch = 64, concurrency = 4, inflight = 4, busy_poll_us = 1000,
        core = -1;
    long n_patches = 20000;
    double seconds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--patches"))
            n_patches = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--port"))
            port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch"))
            batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--concurrency"))
            concurrency = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--inflight"))
            inflight = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--busy-poll-us"))
            busy_poll_us = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--core"))
            core = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench_serve: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    bf_error err = {0};
    char why[256];
    int cpus[64];
    if (core < 0)   /* the last core */
        for (core = 0; bf_core_os_cpus(core + 1, cpus, 64, why, sizeof why) > 0; core++)
            ;
    char model[256], ep[64];
    snprintf(model, sizeof model, "/tmp/bench_serve_%d.safetensors", (int)getpid());
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
    offline_run off = {.model = model, .threads = threads, .n_patches = n_patches,
                       .seconds = seconds};
    pthread_t off_tid;
    if (pthread_create(&off_tid, NULL, offline_main, &off))
        return fprintf(stderr, "bench_serve: cannot start a thread\n"), 2;
    pthread_join(off_tid, NULL);
    if (off.st != BF_OK)
        return die(&off.err);
    bf_patches p = off.p;
    double offline = off.items_per_s, *inproc = off.inproc;

    double echo[2] = {0, 0};
    if (echo_latency(ep, 5000, echo, &err) != BF_OK)
        return die(&err);

    /* batch-1 round trips: no queueing delay; the server sleeping on its socket, then
     * spinning on it (--busy-poll-us) */
    server_thread t;
    pthread_t tid;
    bf_client_config cc;
    bf_client_config_defaults(&cc);
    cc.connect = ep, cc.batch = 1, cc.concurrency = 1, cc.inflight = 1;
    /* every patch, one request each (20,000 by default, 2-3 s): a p99 over a few
     * thousand round trips moves with a single millisecond-long stall of the VM */
    enum { SLEEPING, BUSY_POLL, ONE_CORE, MODES };
    bf_client_result lat[MODES];
    bf_status st = BF_OK;
    for (int mode = 0; mode < MODES && st == BF_OK; mode++) {
        int on_core = mode == ONE_CORE ? core : -1;
        if (start_server(model, ep, threads, 0, mode == BUSY_POLL ? busy_poll_us : 0, on_core,
                         &t, &tid, &err) != BF_OK)
            return die(&err);
        cc.core = on_core;
        st = bf_client_run(&cc, &p, &lat[mode], &err);
        stop_server(&t, tid);
    }
    cc.core = -1;
    if (st != BF_OK)
        return die(&err);

    /* throughput with dynamic batching */
    if (start_server(model, ep, threads, 500, busy_poll_us, -1, &t, &tid, &err) != BF_OK)
        return die(&err);
    cc.batch = batch, cc.concurrency = concurrency, cc.inflight = inflight, cc.repeat = 2;
    bf_client_result thr;
    st = bf_client_run(&cc, &p, &thr, &err);
    char *stats = bf_server_stats_json(t.s);
    stop_server(&t, tid);
    remove(model);
    if (st != BF_OK)
        return die(&err);
    int clean = thr.faults == 0 && thr.errors == 0;
    for (int mode = 0; mode < MODES; mode++)
        clean = clean && lat[mode].faults == 0 && lat[mode].errors == 0;
    const double *sl = lat[SLEEPING].latency_us, *bp = lat[BUSY_POLL].latency_us,
                 *oc = lat[ONE_CORE].latency_us;
    printf("{\"bench\": \"serve\", \"model\": \"braggnn\", \"threads\": %d, \"endpoint\": \"%s\", "
           "\"all_replies_ok\": %s,\n"
           " \"latency_batch1_us\": {\"inprocess_p50\": %.1f, \"inprocess_p99\": %.1f, "
           "\"service_p50\": %.1f, \"service_p99\": %.1f, \"service_p99.9\": %.1f, "
           "\"p99_ratio\": %.3f, \"busy_poll_us\": %d, \"busy_poll_p50\": %.1f, "
           "\"busy_poll_p99\": %.1f, \"busy_poll_p99.9\": %.1f, \"busy_poll_p99_ratio\": %.3f, "
           "\"one_core\": %d, \"one_core_p50\": %.1f, \"one_core_p99\": %.1f, "
           "\"one_core_p99.9\": %.1f, \"one_core_p99_ratio\": %.3f, "
           "\"target_ratio_max\": 2, \"zmq_echo_p50\": %.1f, "
           "\"zmq_echo_p99\": %.1f},\n"
           " \"throughput_items_per_s\": {\"offline_batch512\": %.0f, \"service\": %.0f, "
           "\"ratio\": %.3f, \"target_ratio_min\": 0.8, \"client_batch\": %d, "
           "\"concurrency\": %d, \"inflight\": %d, \"max_delay_us\": 500},\n"
           " \"server_stats\": %s}\n",
           threads, ep, clean ? "true" : "false", inproc[0], inproc[1], sl[0], sl[2], sl[3],
           sl[2] / inproc[1], busy_poll_us, bp[0], bp[2], bp[3], bp[2] / inproc[1], core, oc[0],
           oc[2], oc[3], oc[2] / inproc[1], echo[0], echo[1],
           offline,
           thr.items_per_s, thr.items_per_s / offline, batch, concurrency, inflight,
           stats ? stats : "null");
    free(stats);
    for (int mode = 0; mode < MODES; mode++)
        bf_client_result_free(&lat[mode]);
    bf_client_result_free(&thr);
    bf_patches_free(&p);
    return clean ? 0 : 1;
}
