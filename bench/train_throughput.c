/* bench/train_throughput.c — structure_net training and inference throughput,
 * braggflow next to the PyTorch peer (shared/anchors/torch/bench.py) in the
 * same run, same shapes (batch 512, input 2806), same thread count.
 *
 * Method as the peer's (its README): synthetic uniform inputs and random
 * labels/targets, pre-generated; a batch is a contiguous slice; timings are
 * compute only (forward, losses, backward, clipping, Adam step). Warm-up steps
 * are not timed; then `reps` repetitions of at least `seconds` each; the median
 * samples/s is reported. Prints one JSON object on stdout.
 *
 *   ./build/bench/train_throughput [--threads 2] [--seconds 10] [--infer-seconds 2]
 *                                  [--reps 3] [--peer PATH | --no-peer]
 * The peer needs Debian's python3-torch; it runs with the OpenMP build of
 * OpenBLAS (the README's fair configuration). Without it the JSON says why. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "braggflow/nn.h"

#define BATCH 512
#define N_SAMPLES (BATCH * 8)
#define PEER_BLAS "/usr/lib/x86_64-linux-gnu/openblas-openmp"

typedef struct {
    bf_model *m;
    bf_adam opt;
    float *x, *targets, *out, *dout, *dl, *dr;
    int32_t *labels;
    long batch_no;
} bench_state;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void train_step(bench_state *s)
{
    bf_model *m = s->m;
    int L = m->shape.input_len, n_out = m->n_out;
    long off = (s->batch_no++ % (N_SAMPLES / BATCH)) * BATCH;
    bf_error err = {0};
    const float *x = s->x + (size_t)off * L;
    m->kind->forward(m, x, BATCH, s->out, &err);
    for (int i = 0; i < BATCH; i++) {
        memcpy(s->dl + i * 3, s->out + (size_t)i * n_out, 3 * sizeof(float));
        memcpy(s->dr + i * 4, s->out + (size_t)i * n_out + 3, 4 * sizeof(float));
    }
    volatile double loss = bf_cross_entropy_loss(s->dl, s->dl, s->labels + off, BATCH, 3, 1) +
                           bf_hetero_loss(s->dr, s->dr, s->targets + off * 3, BATCH, 3, 1);
    (void)loss; /* read every step, as the peer's loss.item() */
    for (int i = 0; i < BATCH; i++) {
        memcpy(s->dout + (size_t)i * n_out, s->dl + i * 3, 3 * sizeof(float));
        memcpy(s->dout + (size_t)i * n_out + 3, s->dr + i * 4, 4 * sizeof(float));
    }
    bf_params_zero_grad(&m->params);
    m->kind->backward(m, x, BATCH, s->dout, &err);
    m->be->grad_norm_clip(m->params.grad, m->params.total, 50);
    m->be->adam_step(&s->opt, m->params.value, m->params.grad);
}

static void infer_step(bench_state *s)
{
    long off = (s->batch_no++ % (N_SAMPLES / BATCH)) * BATCH;
    bf_error err = {0};
    s->m->kind->forward(s->m, s->x + (size_t)off * s->m->shape.input_len, BATCH, s->out, &err);
}

/* Median over reps of samples/s, each rep >= seconds and >= 3 steps. */
static double timed(bench_state *s, void (*step)(bench_state *), int warmup, double seconds,
                    int reps)
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
        rate[r] = n * (double)BATCH / dt;
    }
    qsort(rate, (size_t)reps, sizeof(double), cmp_double);
    return rate[reps / 2];
}

/* Runs the peer; fills its training and best batch-512 inference samples/s. */
static int run_peer(const char *peer, int threads, double seconds, double infer_seconds,
                    int reps, double *train, double *infer, char *why, size_t whysz)
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
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=%d LD_LIBRARY_PATH=%s /usr/bin/python3 '%s' --threads %d "
             "--models multitask --train-seconds %g --infer-seconds %g --reps %d --out '%s' "
             "--tag openblas 1>&2 && /usr/bin/python3 -c 'import json,sys; "
             "d=json.load(open(sys.argv[1]))[\"models\"][\"multitask\"]; "
             "print(d[\"train\"][\"samples_per_s_median\"], max(r[\"samples_per_s_median\"] "
             "for r in d[\"infer\"][\"rows\"] if r[\"batch\"]==512))' '%s'",
             threads, PEER_BLAS, peer, threads, seconds, infer_seconds, reps, out, out);
    FILE *p = popen(cmd, "r");
    int ok = p && fscanf(p, "%lf %lf", train, infer) == 2;
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
    int threads = 2, reps = 3, peer_on = 1;
    double seconds = 10, infer_seconds = 2;
    const char *peer = "../shared/anchors/torch/bench.py";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
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
        else {
            fprintf(stderr, "usage: %s [--threads N] [--seconds S] [--infer-seconds S] "
                            "[--reps R] [--peer PATH | --no-peer]\n", argv[0]);
            return 2;
        }
    }
    if (threads < 1 || reps < 1 || reps > 15) {
        fprintf(stderr, "train_throughput: --threads >= 1 and --reps 1..15\n");
        return 2;
    }

    bf_error err = {0};
    bench_state s = {0};
    const bf_backend *be = bf_backend_cpu();
    be->set_threads(threads);
    if (bf_model_create("structure_net", NULL, be, 1, &s.m, &err) != BF_OK ||
        bf_model_reserve(s.m, BATCH, &err) != BF_OK ||
        bf_adam_init(&s.opt, s.m->params.total, 5e-4f, &err) != BF_OK) {
        fprintf(stderr, "train_throughput: %s\n", err.msg);
        return 2;
    }
    int L = s.m->shape.input_len;
    s.x = malloc(sizeof(float) * (size_t)N_SAMPLES * L);
    s.targets = malloc(sizeof(float) * N_SAMPLES * 3);
    s.labels = malloc(sizeof(int32_t) * N_SAMPLES);
    s.out = malloc(sizeof(float) * BATCH * 7);
    s.dout = malloc(sizeof(float) * BATCH * 7);
    s.dl = malloc(sizeof(float) * BATCH * 3);
    s.dr = malloc(sizeof(float) * BATCH * 4);
    if (!s.x || !s.targets || !s.labels || !s.out || !s.dout || !s.dl || !s.dr) {
        fprintf(stderr, "train_throughput: out of memory\n");
        return 2;
    }
    bf_rng rng;
    bf_rng_init(&rng, 7, 0);
    for (size_t i = 0; i < (size_t)N_SAMPLES * L; i++)
        s.x[i] = (float)bf_rng_uniform(&rng);
    for (int i = 0; i < N_SAMPLES; i++) {
        s.labels[i] = (int32_t)(bf_rng_u64(&rng) % 3);
        for (int k = 0; k < 3; k++)
            s.targets[i * 3 + k] = (float)bf_rng_uniform(&rng);
    }

    double bf_train = timed(&s, train_step, 3, seconds, reps);
    s.m->inference = 1; /* as the peer's torch.no_grad() */
    double bf_infer = timed(&s, infer_step, 2, infer_seconds, reps);

    double pt_train = NAN, pt_infer = NAN;
    char why[256] = "";
    int have_peer = peer_on && run_peer(peer, threads, seconds, infer_seconds, reps, &pt_train,
                                        &pt_infer, why, sizeof why) == 0;
    if (!peer_on)
        snprintf(why, sizeof why, "--no-peer");

    printf("{\"bench\":\"train_throughput\",\"model\":\"structure_net\",\"input_len\":%d,"
           "\"batch\":%d,\"threads\":%d,\"reps\":%d,\"train_seconds\":%g,\"infer_seconds\":%g,"
           "\"braggflow\":{\"train_samples_per_s\":%.1f,\"infer_samples_per_s\":%.1f},",
           L, BATCH, threads, reps, seconds, infer_seconds, bf_train, bf_infer);
    if (have_peer)
        printf("\"pytorch\":{\"train_samples_per_s\":%.1f,\"infer_samples_per_s\":%.1f,"
               "\"infer_variant\":\"best of eager/jit at batch 512\",\"blas\":\"%s\"},"
               "\"ratio\":{\"train\":%.2f,\"infer\":%.2f}}\n",
               pt_train, pt_infer, PEER_BLAS, bf_train / pt_train, bf_infer / pt_infer);
    else
        printf("\"pytorch\":null,\"peer_error\":\"%s\"}\n", why);

    free(s.x);
    free(s.targets);
    free(s.labels);
    free(s.out);
    free(s.dout);
    free(s.dl);
    free(s.dr);
    bf_adam_free(&s.opt);
    bf_model_destroy(s.m);
    return 0;
}
