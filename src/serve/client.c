/* serve/client.c — the service's client (serve-client, the service test, the bench):
 * C connections (DEALER sockets, one thread each), each keeping `inflight` requests
 * outstanding; every reply is decoded without trust and matched to exactly one
 * outstanding request. Request k (k = 0 .. R-1, R = repeat x ceil(n / batch)) carries
 * patches [(k mod per_pass) batch, ...) with id k + 1 and goes out on connection
 * k mod C. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "serve/service_internal.h"

void bf_client_config_defaults(bf_client_config *c)
{
    *c = (bf_client_config){.connect = "tcp://127.0.0.1:5555",
                            .concurrency = 1,
                            .batch = 1,
                            .inflight = 1,
                            .dtype = BF_DTYPE_F32,
                            .repeat = 1,
                            .rate_items_per_s = 0,
                            .timeout_s = 10,
                            .core = -1};
}

void bf_client_result_free(bf_client_result *r)
{
    free(r->centre_rc);
    r->centre_rc = NULL;
}

typedef struct {
    const bf_client_config *cfg;
    const bf_patches *p;
    void *zctx;
    long per_pass, total;         /* requests per pass, in all */
    double t0;
    bf_client_result *r;
    double *latency_us;           /* [total] round trips */
    uint8_t *answered;            /* [total] */
    pthread_mutex_t mu;           /* r (counters, hashes, first fault), first_seen */
    double first_seen[8];         /* when each model hash was first received */
    atomic_int abort;
} run_state;

typedef struct {
    run_state *rs;
    int c;                        /* connection index */
} conn_arg;

static void fault(run_state *rs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fault(run_state *rs, const char *fmt, ...)
{
    pthread_mutex_lock(&rs->mu);
    if (rs->r->faults++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rs->r->first_fault, sizeof rs->r->first_fault, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&rs->mu);
}

/* Request k's patches: first index and count. */
static void request_span(const run_state *rs, long k, long *first, long *count)
{
    long b = rs->cfg->batch;
    *first = (k % rs->per_pass) * b;
    *count = rs->p->n - *first < b ? rs->p->n - *first : b;
}

static int send_request(run_state *rs, void *sock, long k, uint8_t *buf)
{
    long first, count;
    request_span(rs, k, &first, &count);
    int S = rs->p->size;
    size_t values = (size_t)count * S * S;
    bf_wire_request rq = {.op = BF_OP_INFER,
                          .model = BF_WIRE_MODEL_BRAGGNN,
                          .id = (uint64_t)k + 1,
                          .count = (uint32_t)count,
                          .dtype = rs->cfg->dtype,
                          .ndims = 2,
                          .dims = {(uint32_t)S, (uint32_t)S, 0}};
    bf_wire_encode_request_header(&rq, buf);
    const float *x = rs->p->patches + (size_t)first * S * S;
    size_t bytes;
    if (rs->cfg->dtype == BF_DTYPE_F32) {
        bytes = 4 * values;
        memcpy(buf + BF_WIRE_REQUEST_HEADER, x, bytes);
    } else {
        bytes = 2 * values;
        for (size_t i = 0; i < values; i++) {
            double v = nearbyint(x[i]);
            uint16_t u = (uint16_t)(v < 0 ? 0 : v > 65535 ? 65535 : v);
            buf[BF_WIRE_REQUEST_HEADER + 2 * i] = (uint8_t)u;
            buf[BF_WIRE_REQUEST_HEADER + 2 * i + 1] = (uint8_t)(u >> 8);
        }
    }
    return zmq_send(sock, buf, BF_WIRE_REQUEST_HEADER + bytes, 0) < 0 ? -1 : 0;
}

/* The index of a model hash in r->hashes (adding it when new), or -1 when full. */
static int hash_index(run_state *rs, const uint8_t h[32], double now)
{
    bf_client_result *r = rs->r;
    for (int i = 0; i < r->n_hashes; i++)
        if (!memcmp(r->hashes[i], h, 32))
            return i;
    if (r->n_hashes == 8)
        return -1;
    memcpy(r->hashes[r->n_hashes], h, 32);
    rs->first_seen[r->n_hashes] = now;
    return r->n_hashes++;
}

/* Checks one reply frame; sent = the send times of the outstanding requests. Returns 1
 * when it answered one of them (its slot is free again), else 0. */
static int take_reply(run_state *rs, const void *frame, size_t len, const double *sent,
                       long *slot_k, int inflight)
{
    double now = bf_now_seconds();
    bf_wire_reply rp;
    char why[256];
    if (bf_wire_decode_reply(frame, len, &rp, why, sizeof why) != BF_WIRE_OK) {
        fault(rs, "malformed reply: %s", why);
        return 0;
    }
    long k = (long)rp.id - 1;
    int slot = -1;
    for (int i = 0; i < inflight; i++)
        if (slot_k[i] == k && k >= 0)
            slot = i;
    if (slot < 0) {
        fault(rs, "reply for request id %llu, which is not outstanding on this connection%s",
              (unsigned long long)rp.id,
              k >= 0 && k < rs->total && rs->answered[k] ? " (answered twice)" : "");
        return 0;
    }
    slot_k[slot] = -1;
    rs->answered[k] = 1;
    rs->latency_us[k] = 1e6 * (now - sent[slot]);
    long first, count;
    request_span(rs, k, &first, &count);
    pthread_mutex_lock(&rs->mu);
    if (rp.status != BF_WIRE_OK) {
        rs->r->errors++;
        if (rs->r->errors == 1 && !rs->r->faults)
            snprintf(rs->r->first_fault, sizeof rs->r->first_fault, "request %ld: %s: %.*s",
                     k + 1, bf_wire_status_name(rp.status), (int)(rp.body_bytes < 200 ? rp.body_bytes : 200),
                     (const char *)rp.body);
        pthread_mutex_unlock(&rs->mu);
        return 1;
    }
    int h = hash_index(rs, rp.model_hash, now);
    if (h >= 0) {
        rs->r->hash_replies[h]++;
        /* A model first seen before this request was sent was already swapped in: the
         * request must not be answered by an earlier one. */
        for (int later = h + 1; later < rs->r->n_hashes; later++)
            if (rs->first_seen[later] < sent[slot])
                rs->r->swap_order_ok = 0;
    }
    rs->r->items += count;
    pthread_mutex_unlock(&rs->mu);
    if (rp.count != (uint32_t)count || rp.values != 2) {
        fault(rs, "request %ld: reply holds %u x %u values, want %ld x 2", k + 1, rp.count,
              rp.values, count);
        return 1;
    }
    int last_pass = k / rs->per_pass == rs->cfg->repeat - 1;
    for (long i = 0; i < count; i++) {
        float rc[2];
        memcpy(rc, rp.body + 8 * i, 8);
        if (!isfinite(rc[0]) || !isfinite(rc[1])) {
            fault(rs, "request %ld: item %ld is not finite", k + 1, i);
            return 1;
        }
        if (last_pass)
            rs->r->centre_rc[2 * (first + i)] = rc[0], rs->r->centre_rc[2 * (first + i) + 1] = rc[1];
    }
    return 1;
}

static void *conn_main(void *arg)
{
    conn_arg *ca = arg;
    run_state *rs = ca->rs;
    const bf_client_config *cfg = rs->cfg;
    int inflight = cfg->inflight, C = cfg->concurrency;
    char why[256];
    if (cfg->core >= 0 && bf_pin_thread_to_cores(cfg->core, 1, why, sizeof why)) {
        fault(rs, "connection %d: --core %d: %s", ca->c, cfg->core, why);
        return NULL;
    }
    void *sock = zmq_socket(rs->zctx, ZMQ_DEALER);
    int linger = 0;
    uint8_t *buf = malloc(BF_WIRE_REQUEST_HEADER + 4 * (size_t)cfg->batch * rs->p->size * rs->p->size);
    long *slot_k = malloc(sizeof(long) * (size_t)inflight);
    double *sent = malloc(sizeof(double) * (size_t)inflight);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (!sock || !buf || !slot_k || !sent || zmq_connect(sock, cfg->connect)) {
        fault(rs, "connection %d: cannot connect to %s: %s", ca->c, cfg->connect,
              sock ? zmq_strerror(zmq_errno()) : "out of memory");
        goto done;
    }
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    for (int i = 0; i < inflight; i++)
        slot_k[i] = -1;
    /* at a rate, request k leaves at t0 + (items before it) / rate */
    double per_request_s = cfg->rate_items_per_s > 0 ? cfg->batch / cfg->rate_items_per_s : 0;
    long next = ca->c, open = 0;
    while (!atomic_load(&rs->abort) && (next < rs->total || open > 0)) {
        double now = bf_now_seconds();
        while (open < inflight && next < rs->total &&
               (per_request_s == 0 || now >= rs->t0 + (double)next * per_request_s)) {
            int slot = 0;
            while (slot_k[slot] >= 0)
                slot++;
            if (send_request(rs, sock, next, buf)) {
                fault(rs, "connection %d: send failed: %s", ca->c, zmq_strerror(zmq_errno()));
                goto done;
            }
            slot_k[slot] = next, sent[slot] = bf_now_seconds();
            pthread_mutex_lock(&rs->mu);
            rs->r->requests++;
            pthread_mutex_unlock(&rs->mu);
            next += C, open++;
        }
        /* wait for a reply, at most until the next scheduled send or the oldest timeout */
        double oldest = INFINITY;
        for (int i = 0; i < inflight; i++)
            if (slot_k[i] >= 0 && sent[i] < oldest)
                oldest = sent[i];
        if (open > 0 && now - oldest > cfg->timeout_s) {
            fault(rs, "connection %d: no reply to a request within %.1f s", ca->c, cfg->timeout_s);
            goto done;
        }
        long wait_ms = open > 0 ? 10 : 1;
        if (per_request_s > 0 && next < rs->total && open < inflight) {
            double until = rs->t0 + (double)next * per_request_s - now;
            wait_ms = until <= 0 ? 0 : (long)ceil(until * 1e3);
            if (wait_ms > 10)
                wait_ms = 10;
        }
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, wait_ms) <= 0)
            continue;
        while (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) >= 0) {
            open -= take_reply(rs, zmq_msg_data(&msg), zmq_msg_size(&msg), sent, slot_k,
                               inflight);
        }
    }
done:
    zmq_msg_close(&msg);
    if (sock)
        zmq_close(sock);
    free(buf);
    free(slot_k);
    free(sent);
    return NULL;
}

bf_status bf_client_run(const bf_client_config *c, const bf_patches *p, bf_client_result *r,
                        bf_error *err)
{
    memset(r, 0, sizeof *r);
    r->swap_order_ok = 1;
    if (p->n < 1 || c->batch < 1 || c->concurrency < 1 || c->inflight < 1 || c->repeat < 1 ||
        !(c->timeout_s > 0))
        return bf_error_set(err, BF_ERR_INVALID,
                            "serve-client: needs patches, batch, concurrency, inflight, repeat >= 1");
    run_state rs = {.cfg = c, .p = p, .r = r};
    rs.per_pass = (p->n + c->batch - 1) / c->batch;
    rs.total = rs.per_pass * c->repeat;
    rs.latency_us = calloc((size_t)rs.total, sizeof(double));
    rs.answered = calloc((size_t)rs.total, 1);
    r->centre_rc = calloc((size_t)p->n * 2, sizeof(double));
    conn_arg *args = calloc((size_t)c->concurrency, sizeof *args);
    pthread_t *tid = calloc((size_t)c->concurrency, sizeof *tid);
    rs.zctx = zmq_ctx_new();
    bf_status st = BF_OK;
    if (!rs.latency_us || !rs.answered || !r->centre_rc || !args || !tid || !rs.zctx)
        st = bf_error_set(err, BF_ERR_NOMEM, "out of memory");
    if (st == BF_OK && c->core >= 0)
        st = bf_zmq_io_on_core(rs.zctx, c->core, "serve-client", err);
    pthread_mutex_init(&rs.mu, NULL);
    rs.t0 = bf_now_seconds();
    int started = 0;
    for (int i = 0; st == BF_OK && i < c->concurrency; i++) {
        args[i] = (conn_arg){&rs, i};
        if (pthread_create(&tid[i], NULL, conn_main, &args[i]))
            st = bf_error_set(err, BF_ERR_NOMEM, "cannot start connection thread %d", i);
        else
            started++;
    }
    if (st != BF_OK)
        atomic_store(&rs.abort, 1);
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    r->wall_s = bf_now_seconds() - rs.t0;
    if (st == BF_OK) {
        long missing = 0, m = 0;
        for (long k = 0; k < rs.total; k++)
            if (rs.answered[k])
                rs.latency_us[m++] = rs.latency_us[k];
            else
                missing++;
        if (missing) {
            if (r->faults == 0)
                snprintf(r->first_fault, sizeof r->first_fault,
                         "%ld of %ld requests got no reply", missing, rs.total);
            r->faults += missing;
        }
        bf_sort_doubles(rs.latency_us, m);
        const double q[4] = {0.5, 0.9, 0.99, 0.999};
        for (int i = 0; i < 4 && m > 0; i++)
            r->latency_us[i] = bf_percentile_sorted(rs.latency_us, m, q[i]);
        r->latency_us[4] = m > 0 ? rs.latency_us[m - 1] : 0;
        r->items_per_s = r->wall_s > 0 ? (double)r->items / r->wall_s : 0;
    }
    pthread_mutex_destroy(&rs.mu);
    if (rs.zctx)
        zmq_ctx_term(rs.zctx);
    free(rs.latency_us);
    free(rs.answered);
    free(args);
    free(tid);
    if (st != BF_OK)
        bf_client_result_free(r);
    return st;
}

bf_status bf_client_stats(const char *connect, double timeout_s, char **json, bf_error *err)
{
    *json = NULL;
    void *ctx = zmq_ctx_new();
    void *sock = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
    bf_status st = BF_OK;
    int linger = 0, tmo = (int)(timeout_s * 1e3);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (!sock)
        st = bf_error_set(err, BF_ERR_NOMEM, "zmq: cannot create a socket");
    else {
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(sock, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    }
    if (st == BF_OK && zmq_connect(sock, connect))
        st = bf_error_set(err, BF_ERR_IO, "%s: cannot connect: %s", connect,
                          zmq_strerror(zmq_errno()));
    uint8_t hdr[BF_WIRE_REQUEST_HEADER];
    bf_wire_request rq = {.op = BF_OP_STATS, .id = 1};
    bf_wire_encode_request_header(&rq, hdr);
    if (st == BF_OK && zmq_send(sock, hdr, sizeof hdr, 0) < 0)
        st = bf_error_set(err, BF_ERR_IO, "%s: send failed: %s", connect,
                          zmq_strerror(zmq_errno()));
    if (st == BF_OK && zmq_msg_recv(&msg, sock, 0) < 0)
        st = bf_error_set(err, BF_ERR_IO, "%s: no stats reply within %.1f s", connect, timeout_s);
    bf_wire_reply rp;
    char why[256];
    if (st == BF_OK && bf_wire_decode_reply(zmq_msg_data(&msg), zmq_msg_size(&msg), &rp, why,
                                            sizeof why) != BF_WIRE_OK)
        st = bf_error_set(err, BF_ERR_PARSE, "%s: malformed stats reply: %s", connect, why);
    if (st == BF_OK && rp.status != BF_WIRE_OK)
        st = bf_error_set(err, BF_ERR_IO, "%s: stats request failed: %s", connect,
                          bf_wire_status_name(rp.status));
    if (st == BF_OK) {
        *json = malloc(rp.body_bytes + 1);
        if (!*json)
            st = bf_error_set(err, BF_ERR_NOMEM, "out of memory");
        else {
            memcpy(*json, rp.body, rp.body_bytes);
            (*json)[rp.body_bytes] = 0;
        }
    }
    zmq_msg_close(&msg);
    if (sock)
        zmq_close(sock);
    if (ctx)
        zmq_ctx_term(ctx);
    return st;
}
