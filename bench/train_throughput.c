/* bench/train_throughput.c — training and inference throughput of structure_net or
 * braggnn, braggflow next to the PyTorch peer (shared/anchors/torch/bench.py, its
 * multitask or braggnn model) in the same run, same shapes (batch 512), same threads.
 *
 * Method as the peer's (its README): synthetic uniform inputs and random
 * labels/targets, pre-generated; a batch is a contiguous slice; timings are
 * compute only (forward, losses, backward, clipping, Adam step). Warm-up steps
 * are not timed; then `reps` repetitions of at least `seconds` each; the median
 * samples/s is reported. Prints one JSON object on stdout.
 *
 *   ./build/bench/train_throughput [--model structure_net|braggnn] [--threads 2]
 *       [--seconds 10] [--infer-seconds 2] [--reps 3] [--peer PATH | --no-peer]
 *       [--device cpu|cuda[:N]] [--infer-batches 1,64,512]
 * --device runs braggflow on that backend (the CPU peer then does not run: bench/gpu.sh
 * runs the GPU peer); --infer-batches (divisors of 4096) adds "infer_sweep" {batch:
 * samples/s} to the JSON, measured for every model.
 * Inference is timed at batch 512 (and, for braggnn, 1 and 64: latency) through
 * bf_model_predict, host arrays in and out; training through bf_train_step.
 * The peer needs Debian's python3-torch; it runs with the OpenMP build of
 * OpenBLAS (the README's fair configuration). Without it the JSON says why. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "braggflow/nn.h"

#define BATCH 512
#define N_SAMPLES (BATCH * 8)   /* a multiple of every inference batch */
#define PEER_BLAS "/usr/lib/x86_64-linux-gnu/openblas-openmp"

typedef struct {
    bf_model *m;
    bf_adam opt;
    bf_step_ws *ws;
    bf_objective obj;
    int n_classes;                    /* structure_net: 3; braggnn: 0 */
    float *x, *targets, *out, *dl, *dr, *bt;
    int32_t *labels;
    int batch;
    long batch_no;
} bench_state;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The peer's losses: CE + Eq. 6 (targets: label then 3 values) or MSE (braggnn). */
static double bench_loss(void *user, const float *out, const float *target, int B, int n_out,
                         float *dout)
{
    bench_state *s = user;
    if (!s->n_classes)
        return bf_mse_loss(dout, out, target, B, n_out, 1);
    int C = s->n_classes;
    for (int i = 0; i < B; i++) {
        s->labels[i] = (int32_t)target[i * 4];
        memcpy(s->bt + i * 3, target + i * 4 + 1, 3 * sizeof(float));
        memcpy(s->dl + i * C, out + (size_t)i * n_out, C * sizeof(float));
        memcpy(s->dr + i * 4, out + (size_t)i * n_out + C, 4 * sizeof(float));
    }
    double loss = bf_cross_entropy_loss(s->dl, s->dl, s->labels, B, C, 1) +
                  bf_hetero_loss(s->dr, s->dr, s->bt, B, 3, 1);
    for (int i = 0; i < B; i++) {
        memcpy(dout + (size_t)i * n_out, s->dl + i * C, C * sizeof(float));
        memcpy(dout + (size_t)i * n_out + C, s->dr + i * 4, 4 * sizeof(float));
    }
    return loss;
}

static void train_step(bench_state *s)
{
    bf_model *m = s->m;
    long off = (s->batch_no++ % (N_SAMPLES / BATCH)) * BATCH;
    bf_error err = {0};
    double loss; /* read every step, as the peer's loss.item() */
    int T = s->obj.target_len;
    if (bf_train_step(m, &s->opt, &s->obj, s->ws, s->x + (size_t)off * m->input_len,
                      s->targets + (size_t)off * T, BATCH, s->n_classes ? 50 : 0, &loss,
                      &err) != BF_OK) {
        fprintf(stderr, "train_throughput: %s\n", err.msg);
        exit(2);
    }
}

/* Inference as a user runs it: host inputs in, host outputs back (bf_model_predict). */
static void infer_step(bench_state *s)
{
    long off = (s->batch_no++ % (N_SAMPLES / s->batch)) * s->batch;
    bf_error err = {0};
    if (bf_model_predict(s->m, s->x + (size_t)off * s->m->input_len, s->batch, s->batch, s->out,
                         &err) != BF_OK) {
        fprintf(stderr, "train_throughput: %s\n", err.msg);
        exit(2);
    }
}

/* x as a JSON number (2 decimals), or null when it is not finite (not measured). */
static const char *json_number(double x, char out[32])
{
    if (isfinite(x))
        snprintf(out, 32, "%.2f", x);
    else
        snprintf(out, 32, "null");
    return out;
}

/* Median over reps of samples/s, each rep >= seconds and >= 3 steps of batch samples. */
static double timed(bench_state *s, void (*step)(bench_state *), int batch, int warmup,
                    double seconds, int reps)
{
    for (int i = 0; i < warmup; i++)
        step(s);
    double rate[16];
    for (int r = 0; r < reps; r++) {
        double t0 = bf_now_seconds(), dt;
        long n = 0;
        do {
            step(s);
            n++;
            dt = bf_now_seconds() - t0;
        } while (dt < seconds || n < 3);
        rate[r] = n * (double)batch / dt;
    }
    qsort(rate, (size_t)reps, sizeof(double), cmp_double);
    return rate[reps / 2];
}

/* The peer's figures: training, and per inference batch the eager and the best variant. */
typedef struct {
    double train;
    double eager[3], best[3];         /* batches of infer_batches[] */
} peer_figures;

static const int infer_batches[3] = {1, 64, 512};

/* Runs the peer's model (multitask or braggnn) in one process. */
static int run_peer(const char *peer, const char *model, int threads, double seconds,
                    double infer_seconds, int reps, peer_figures *pf, char *why, size_t whysz)
{
    if (access(peer, R_OK) != 0) {
        snprintf(why, whysz, "peer script %s not found", peer);
        return -1;
    }
    char out[] = "/tmp/bf-peer-XXXXXX";
    int fd = mkstemp(out);
    if (fd < 0) {
        snprintf(why, whysz, "cannot create a temporary file");
        return -1;
    }
    close(fd);
    char cmd[4096];
    /* prints: train, then eager and best samples/s at batch 1, 64, 512 (nan if absent) */
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=%d LD_LIBRARY_PATH=%s /usr/bin/python3 '%s' --threads %d "
             "--models %s --train-seconds %g --infer-seconds %g --reps %d --out '%s' "
             "--tag openblas 1>&2 && /usr/bin/python3 -c 'import json,sys; "
             "d=json.load(open(sys.argv[1]))[\"models\"][\"%s\"]; r=d[\"infer\"][\"rows\"]; "
             "f=lambda b,v: max([x[\"samples_per_s_median\"] for x in r if x[\"batch\"]==b "
             "and (v is None or x[\"variant\"]==v)] or [float(\"nan\")]); "
             "print(d[\"train\"][\"samples_per_s_median\"], "
             "*[f(b,v) for b in (1,64,512) for v in (\"eager\",None)])' '%s'",
             threads, PEER_BLAS, peer, threads, model, seconds, infer_seconds, reps, out, model,
             out);
    FILE *p = popen(cmd, "r");
    int ok = p && fscanf(p, "%lf %lf %lf %lf %lf %lf %lf", &pf->train, &pf->eager[0],
                         &pf->best[0], &pf->eager[1], &pf->best[1], &pf->eager[2],
                         &pf->best[2]) == 7;
    int rc = p ? pclose(p) : -1;
    unlink(out);
    if (!ok || rc != 0) {
        snprintf(why, whysz, "the PyTorch peer did not run (is python3-torch installed? "
                             "see shared/anchors/torch/README.md)");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 3, peer_on = 1, n_sweep = 0, sweep[16];
    double seconds = 10, infer_seconds = 2;
    const char *peer = "../shared/anchors/torch/bench.py", *model = "structure_net";
    const char *device = "cpu";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--infer-seconds") && i + 1 < argc)
            infer_seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--peer") && i + 1 < argc)
            peer = argv[++i];
        else if (!strcmp(argv[i], "--no-peer"))
            peer_on = 0;
        else if (!strcmp(argv[i], "--device") && i + 1 < argc)
            device = argv[++i];
        else if (!strcmp(argv[i], "--infer-batches") && i + 1 < argc) {
            for (char *t = strtok(argv[++i], ","); t; t = strtok(NULL, ",")) {
                int b = atoi(t);
                if (n_sweep == 16 || b < 1 || N_SAMPLES % b) {
                    fprintf(stderr, "train_throughput: --infer-batches: at most 16 divisors "
                                    "of %d\n", N_SAMPLES);
                    return 2;
                }
                sweep[n_sweep++] = b;
            }
        } else {
            fprintf(stderr, "usage: %s [--model structure_net|braggnn] [--threads N] "
                            "[--seconds S] [--infer-seconds S] [--reps R] [--peer PATH | "
                            "--no-peer] [--device cpu|cuda[:N]] [--infer-batches B,B,...]\n",
                    argv[0]);
            return 2;
        }
    }
    int braggnn = !strcmp(model, "braggnn");
    if (threads < 1 || reps < 1 || reps > 15 || (!braggnn && strcmp(model, "structure_net"))) {
        fprintf(stderr, "train_throughput: --model structure_net|braggnn, --threads >= 1 and "
                        "--reps 1..15\n");
        return 2;
    }

    bf_error err = {0};
    bench_state s = {0};
    const bf_backend *be = NULL;
    if (bf_backend_get(device, &be, &err) != BF_OK) {
        fprintf(stderr, "train_throughput: --device %s: %s\n", device, err.msg);
        return 2;
    }
    bf_backend_cpu()->set_threads(threads); /* the host side (losses) */
    be->set_threads(threads);
    s.n_classes = braggnn ? 0 : 3;
    s.obj = (bf_objective){.name = braggnn ? "mse" : "cross_entropy+hetero_eq6",
                           .target_len = braggnn ? 2 : 4, .loss = bench_loss, .user = &s};
    if (bf_model_create(model, NULL, be, 1, &s.m, &err) != BF_OK ||
        bf_model_reserve(s.m, BATCH, &err) != BF_OK ||
        bf_step_ws_create(s.m, BATCH, &s.ws, &err) != BF_OK ||
        bf_adam_init(&s.opt, be, s.m->params.total, braggnn ? 1e-3f : 5e-4f, &err) != BF_OK) {
        fprintf(stderr, "train_throughput: %s\n", err.msg);
        return 2;
    }
    int L = s.m->input_len, T = s.obj.target_len;
    s.x = malloc(sizeof(float) * (size_t)N_SAMPLES * L);
    s.targets = malloc(sizeof(float) * N_SAMPLES * T);
    s.labels = malloc(sizeof(int32_t) * BATCH);
    s.out = malloc(sizeof(float) * N_SAMPLES * s.m->n_out); /* inference batches up to 4096 */
    s.dl = malloc(sizeof(float) * BATCH * 3);
    s.dr = malloc(sizeof(float) * BATCH * 4);
    s.bt = malloc(sizeof(float) * BATCH * 3);
    if (!s.x || !s.targets || !s.labels || !s.out || !s.dl || !s.dr || !s.bt) {
        fprintf(stderr, "train_throughput: out of memory\n");
        return 2;
    }
    /* synthetic uniform inputs and random labels/targets, as the peer's */
    bf_rng rng;
    bf_rng_init(&rng, 7, 0);
    for (size_t i = 0; i < (size_t)N_SAMPLES * L; i++)
        s.x[i] = (float)bf_rng_uniform(&rng);
    for (int i = 0; i < N_SAMPLES; i++)
        for (int k = 0; k < T; k++)
            s.targets[i * T + k] = !braggnn && k == 0 ? (float)(bf_rng_u64(&rng) % 3)
                                                      : (float)bf_rng_uniform(&rng);

    double bf_train = timed(&s, train_step, BATCH, braggnn ? 10 : 3, seconds, reps);
    double bf_infer[3], sweep_rate[16];
    if (n_sweep && bf_model_reserve(s.m, N_SAMPLES, &err) != BF_OK) {
        fprintf(stderr, "train_throughput: %s\n", err.msg);
        return 2;
    }
    for (int k = 0; k < n_sweep; k++) {
        s.batch = sweep[k];
        sweep_rate[k] = timed(&s, infer_step, s.batch, 8, infer_seconds, reps);
    }
    for (int b = 0; b < 3; b++) {
        s.batch = infer_batches[b];
        bf_infer[b] = NAN;
        for (int k = 0; k < n_sweep; k++)
            if (sweep[k] == s.batch)
                bf_infer[b] = sweep_rate[k];
        if (!n_sweep && (braggnn || s.batch == BATCH)) /* the peer: multitask at 512 only */
            bf_infer[b] = timed(&s, infer_step, s.batch, 8, infer_seconds, reps);
    }

    peer_figures pf;
    char why[256] = "";
    int cpu = be == bf_backend_cpu();
    int have_peer = peer_on && cpu &&
                    run_peer(peer, braggnn ? "braggnn" : "multitask", threads, seconds,
                             infer_seconds, reps, &pf, why, sizeof why) == 0;
    if (!peer_on)
        snprintf(why, sizeof why, "--no-peer");
    else if (!cpu)
        snprintf(why, sizeof why, "--device %s: the CPU peer does not run (bench/gpu.sh runs "
                                  "the GPU one)", device);

    char b1[32], b64[32], b512[32], l1[32], l64[32];
    printf("{\"bench\":\"train_throughput\",\"model\":\"%s\",\"device\":\"%s\","
           "\"input_len\":%d,\"batch\":%d,"
           "\"threads\":%d,\"reps\":%d,\"train_seconds\":%g,\"infer_seconds\":%g,"
           "\"braggflow\":{\"train_samples_per_s\":%.1f,\"infer_samples_per_s\":{\"1\":%s,"
           "\"64\":%s,\"512\":%s},\"latency_us\":{\"1\":%s,\"64\":%s}",
           model, device, L, BATCH, threads, reps, seconds, infer_seconds, bf_train,
           json_number(bf_infer[0], b1), json_number(bf_infer[1], b64),
           json_number(bf_infer[2], b512), json_number(1e6 / bf_infer[0], l1),
           json_number(64e6 / bf_infer[1], l64));
    if (n_sweep) {
        printf(",\"infer_sweep\":{");
        for (int k = 0; k < n_sweep; k++)
            printf("%s\"%d\":%s", k ? "," : "", sweep[k], json_number(sweep_rate[k], b1));
        printf("}");
    }
    printf("},");
    if (have_peer) {
        char e1[32], e64[32], x1[32], x64[32], r1[32], r64[32];
        printf("\"pytorch\":{\"train_samples_per_s\":%.1f,\"infer_eager\":{\"1\":%s,"
               "\"64\":%s,\"512\":%.1f},\"infer_best\":{\"1\":%s,\"64\":%s,\"512\":%.1f},"
               "\"blas\":\"%s\"},\"ratio\":{\"train\":%.2f,\"infer_512_vs_best\":%.2f,"
               "\"infer_512_vs_eager\":%.2f,\"infer_64_vs_best\":%s,\"infer_1_vs_best\":%s}}\n",
               pf.train, json_number(pf.eager[0], e1), json_number(pf.eager[1], e64), pf.eager[2],
               json_number(pf.best[0], x1), json_number(pf.best[1], x64), pf.best[2], PEER_BLAS,
               bf_train / pf.train, bf_infer[2] / pf.best[2], bf_infer[2] / pf.eager[2],
               json_number(bf_infer[1] / pf.best[1], r64), json_number(bf_infer[0] / pf.best[0], r1));
    } else {
        printf("\"pytorch\":null,\"peer_error\":\"%s\"}\n", why);
    }

    free(s.x), free(s.targets), free(s.labels), free(s.out), free(s.dl), free(s.dr), free(s.bt);
    bf_step_ws_destroy(s.ws);
    bf_adam_free(&s.opt);
    bf_model_destroy(s.m);
    return 0;
}
