/* al/policy.c — acquisition weights and the three batch policies of DESIGN §5
 * (seed 001 Sec. II): seed-mix (the seed code's multinomial + per-point
 * Gaussians), gaussian-mixture (Eq. 4 with tau and a class prior) and uniform.
 *
 * Random streams (all from bf_rng, so a batch is fixed by (seed, stream)):
 *   R = bf_rng(seed, stream); its first u64 is a draw key K; R then drives the
 *   seed-mix counts and the whole gaussian-mixture sampler.
 *   seed-mix: study point i draws its cells from bf_rng(K, i).
 *   uniform: output j (classes in order) comes from bf_rng(K, j)
 *   (bf_sample_random's stream_base is the class's offset in the batch).
 * K is a pseudo-random 64-bit key, so these streams cannot line up with the
 * (seed, stream') streams of another phase the way stream * M + i could. */
#include "braggflow/al.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One draw gives up after this many rejections (al.h). */
#define MAX_REJECTIONS 10000L

static const char *const kind_names[] = {
    [BF_AL_UNIFORM] = "uniform",
    [BF_AL_SEED_MIX] = "seed-mix",
    [BF_AL_GAUSSIAN_MIXTURE] = "gaussian-mixture",
};

bf_status bf_al_kind_parse(const char *name, bf_al_kind *out, bf_error *err)
{
    for (int k = 0; k < (int)(sizeof kind_names / sizeof kind_names[0]); k++) {
        if (name != NULL && strcmp(name, kind_names[k]) == 0) {
            *out = (bf_al_kind)k;
            return BF_OK;
        }
    }
    return bf_error_set(err, BF_ERR_INVALID,
                        "al policy: '%s' is not a policy (seed-mix, gaussian-mixture, uniform)",
                        name ? name : "(null)");
}

const char *bf_al_kind_name(bf_al_kind k)
{
    if ((int)k >= 0 && (int)k < (int)(sizeof kind_names / sizeof kind_names[0]))
        return kind_names[k];
    return "unknown";
}

/* The seed's Gaussian stds (DESIGN §5.3), by class name; 0 = not given. */
static const struct {
    const char *name;
    double std[BF_N_CELL_PARAMS];
} seed_stds[] = {
    {"cubic", {[BF_P_A] = 1e-4}},
    {"trigonal", {[BF_P_A] = 2e-3, [BF_P_ALPHA] = 0.3}},
    {"tetragonal", {[BF_P_A] = 2e-3, [BF_P_C] = 2e-3}},
};

void bf_al_policy_defaults(bf_al_policy *p, bf_al_kind kind, const bf_class_spec *classes,
                           int n_classes)
{
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->mix_reg = 0.5;
    p->mix_cls = 0.5;
    p->tau = 1.0;
    for (int c = 0; c < BF_MAX_CLASSES; c++)
        p->prior[c] = 1.0;
    if (n_classes > BF_MAX_CLASSES)
        n_classes = BF_MAX_CLASSES;
    for (int c = 0; c < n_classes; c++) {
        const bf_class_spec *cls = &classes[c];
        const double *seed = NULL;
        for (size_t s = 0; s < sizeof seed_stds / sizeof seed_stds[0]; s++)
            if (strcmp(cls->name, seed_stds[s].name) == 0)
                seed = seed_stds[s].std;
        for (int q = 0; q < BF_N_CELL_PARAMS; q++) {
            const bf_param_rule *r = &cls->rule[q];
            if (r->kind != BF_PARAM_FREE)
                continue; /* fixed and tied parameters follow the free ones */
            /* A free parameter the seed gave no std (a custom box) moves by 1e-3 of its box. */
            p->std[c][q] = seed && seed[q] > 0 ? seed[q] : 1e-3 * (r->hi - r->lo);
        }
    }
}

/* ---- Weights ------------------------------------------------------------------- */

/* Shannon entropy (nats) of softmax(logits): log Z - sum_c p_c (l_c - max), which
 * never evaluates 0 * log 0 and cannot overflow. */
static double softmax_entropy(const float *logits, int n_classes)
{
    double m = logits[0];
    for (int c = 1; c < n_classes; c++)
        if (logits[c] > m)
            m = logits[c];
    double z = 0, zl = 0;
    for (int c = 0; c < n_classes; c++) {
        double d = (double)logits[c] - m;
        double e = exp(d);
        z += e;
        zl += e * d;
    }
    double h = log(z) - zl / z;
    return h > 0 ? h : 0; /* rounding can leave -1e-17 for a one-hot softmax */
}

static const char *output_name(int j, int n_classes, char *buf, size_t n)
{
    if (j < n_classes)
        snprintf(buf, n, "logit %d", j);
    else if (j < n_classes + 3)
        snprintf(buf, n, "lattice value %d", j - n_classes);
    else
        snprintf(buf, n, "log sigma^2");
    return buf;
}

bf_status bf_al_weights(const bf_al_policy *p, const float *out, long n, int n_classes,
                        double *w, bf_error *err)
{
    if (n < 1)
        return bf_error_set(err, BF_ERR_INVALID, "al weights: %ld study points; need at least 1",
                            n);
    if (n_classes < 1)
        return bf_error_set(err, BF_ERR_INVALID, "al weights: n_classes: %d must be >= 1",
                            n_classes);
    if (out == NULL && p->kind != BF_AL_UNIFORM)
        return bf_error_set(err, BF_ERR_INVALID, "al weights: %s needs the model's outputs",
                            bf_al_kind_name(p->kind));
    const long stride = n_classes + 4;
    for (long i = 0; out != NULL && i < n; i++) {
        for (int j = 0; j < stride; j++) {
            float v = out[i * stride + j];
            if (!isfinite(v)) {
                char what[32];
                return bf_error_set(err, BF_ERR_INVALID,
                                    "al weights: study point %ld: %s is not finite (%g)", i,
                                    output_name(j, n_classes, what, sizeof what), (double)v);
            }
        }
    }

    if (p->kind == BF_AL_UNIFORM) {
        for (long i = 0; i < n; i++)
            w[i] = 1.0 / (double)n;
        return BF_OK;
    }
    if (p->kind != BF_AL_SEED_MIX && p->kind != BF_AL_GAUSSIAN_MIXTURE)
        return bf_error_set(err, BF_ERR_INVALID, "al weights: unknown policy %d", (int)p->kind);

    double mix_reg = 1.0, mix_cls = 0.0;
    if (p->kind == BF_AL_SEED_MIX) {
        mix_reg = p->mix_reg;
        mix_cls = p->mix_cls;
        if (!(mix_reg >= 0 && mix_cls >= 0 && isfinite(mix_reg) && isfinite(mix_cls) &&
              mix_reg + mix_cls > 0))
            return bf_error_set(err, BF_ERR_INVALID,
                                "al weights: seed-mix: mix_reg %g and mix_cls %g must be >= 0 "
                                "and not both 0",
                                mix_reg, mix_cls);
    }

    /* w_reg = exp(s)/sum exp(s) (s = log sigma^2), shifted by max s against overflow. */
    const float *s = out + n_classes + 3;
    double smax = s[0];
    for (long i = 1; i < n; i++)
        if (s[i * stride] > smax)
            smax = s[i * stride];
    double sum_e = 0;
    for (long i = 0; i < n; i++) {
        w[i] = exp((double)s[i * stride] - smax);
        sum_e += w[i]; /* >= 1: the max contributes exp(0) */
    }
    for (long i = 0; i < n; i++)
        w[i] *= mix_reg / sum_e;

    if (mix_cls > 0) {
        /* w_cls = H/sum H; all-confident outputs (sum H = 0) contribute uniformly (al.h). */
        double sum_h = 0;
        for (long i = 0; i < n; i++)
            sum_h += softmax_entropy(out + i * stride, n_classes);
        for (long i = 0; i < n; i++)
            w[i] += mix_cls * (sum_h > 0 ? softmax_entropy(out + i * stride, n_classes) / sum_h
                                         : 1.0 / (double)n);
    }
    /* Mixes that do not add up to 1 are read as proportions. */
    double total = 0;
    for (long i = 0; i < n; i++)
        total += w[i];
    for (long i = 0; i < n; i++)
        w[i] /= total;
    return BF_OK;
}

/* ---- Multinomial ------------------------------------------------------------------ */

/* Binomial(n, p). Inversion (walk the pmf up from 0) while the variance is at most 100,
 * so the walk is short; beyond that the normal approximation with continuity
 * correction (its error there is far below the statistical noise of one batch). */
static long binomial(long n, double p, bf_rng *rng)
{
    if (n <= 0 || !(p > 0))
        return 0;
    if (p >= 1)
        return n;
    if (p > 0.5)
        return n - binomial(n, 1.0 - p, rng);
    double q = 1.0 - p, mean = (double)n * p, var = mean * q;
    if (var > 100) {
        double x = floor(mean + sqrt(var) * bf_rng_normal(rng) + 0.5);
        if (x < 0)
            x = 0;
        if (x > (double)n)
            x = (double)n;
        return (long)x;
    }
    /* p <= 1/2 and mean <= 200, so P(0) = q^n >= e^-278 does not underflow. */
    double u = bf_rng_uniform(rng);
    double pk = exp((double)n * log1p(-p)), cdf = pk, ratio = p / q;
    long k = 0;
    while (u >= cdf && k < n) {
        pk *= (double)(n - k) / (double)(k + 1) * ratio;
        k++;
        cdf += pk;
        if (pk == 0 && (double)k > mean)
            break; /* rounding left cdf a hair below u, deep in the tail */
    }
    return k;
}

void bf_multinomial(const double *w, long n, long N, bf_rng *rng, long *counts)
{
    if (n <= 0)
        return;
    memset(counts, 0, (size_t)n * sizeof *counts);
    if (N <= 0)
        return;
    /* Non-positive and non-finite weights count as 0; scale by the largest so sums of
     * huge weights cannot overflow. No positive weight at all: uniform. */
    double wmax = 0;
    for (long i = 0; i < n; i++)
        if (isfinite(w[i]) && w[i] > wmax)
            wmax = w[i];
    const int uniform = !(wmax > 0);
#define WEIGHT(i) (uniform ? 1.0 : (isfinite(w[i]) && w[i] > 0 ? w[i] / wmax : 0.0))
    long last = -1;
    double mass = 0;
    for (long i = 0; i < n; i++) {
        double wi = WEIGHT(i);
        if (wi > 0) {
            mass += wi;
            last = i;
        }
    }
    double ref = mass;
    long remaining = N;
    /* Sequential conditionals: n_i ~ Binomial(remaining, w_i / mass of w_i.. w_last). */
    for (long i = 0; i < last && remaining > 0; i++) {
        double wi = WEIGHT(i);
        if (!(wi > 0))
            continue;
        if (mass < 1e-3 * ref) {
            /* Running subtraction loses digits once most mass is gone: re-add the rest. */
            mass = 0;
            for (long j = i; j <= last; j++)
                mass += WEIGHT(j);
            ref = mass;
        }
        long c = binomial(remaining, mass > wi ? wi / mass : 1.0, rng);
        counts[i] = c;
        remaining -= c;
        mass -= wi;
    }
    counts[last] += remaining; /* the last positive weight takes the rest: sum is N */
#undef WEIGHT
}

/* ---- Proposals --------------------------------------------------------------------- */

static double cell_param(const bf_cell *cell, int p)
{
    switch (p) {
    case BF_P_A: return cell->a;
    case BF_P_B: return cell->b;
    case BF_P_C: return cell->c;
    case BF_P_ALPHA: return cell->alpha;
    case BF_P_BETA: return cell->beta;
    default: return cell->gamma;
    }
}

static int free_params(const bf_class_spec *cls, int idx[BF_N_CELL_PARAMS])
{
    int f = 0;
    for (int p = 0; p < BF_N_CELL_PARAMS; p++)
        if (cls->rule[p].kind == BF_PARAM_FREE)
            idx[f++] = p;
    return f;
}

/* Draws x = centre + sd * N(0, 1) per free parameter; 1 if the class accepts the cell. */
static int gaussian_draw(const bf_class_spec *cls, const bf_cell *centre, const double *sd,
                         bf_rng *rng, bf_cell *cell)
{
    int idx[BF_N_CELL_PARAMS];
    int f = free_params(cls, idx);
    double x[BF_N_CELL_PARAMS];
    for (int j = 0; j < f; j++)
        x[j] = cell_param(centre, idx[j]) + sd[idx[j]] * bf_rng_normal(rng);
    bf_class_make_cell(cls, x, cell);
    return bf_class_accepts(cls, cell);
}

static bf_status check_study(const char *what, const bf_study_set *study, const double *w,
                             int n_classes, bf_error *err)
{
    if (study == NULL || study->n < 1 || study->cells == NULL || study->class_index == NULL)
        return bf_error_set(err, BF_ERR_INVALID, "al propose %s: needs a non-empty study set",
                            what);
    if (w == NULL)
        return bf_error_set(err, BF_ERR_INVALID, "al propose %s: needs the weights", what);
    double sum = 0;
    for (long i = 0; i < study->n; i++) {
        if (study->class_index[i] < 0 || study->class_index[i] >= n_classes)
            return bf_error_set(err, BF_ERR_INVALID,
                                "al propose %s: study point %ld: class index %d is outside "
                                "0..%d",
                                what, i, (int)study->class_index[i], n_classes - 1);
        if (!(isfinite(w[i]) && w[i] >= 0))
            return bf_error_set(err, BF_ERR_INVALID,
                                "al propose %s: study point %ld: weight %g must be finite and "
                                ">= 0",
                                what, i, w[i]);
        sum += w[i];
    }
    if (!(sum > 0))
        return bf_error_set(err, BF_ERR_INVALID, "al propose %s: every weight is 0", what);
    return BF_OK;
}

static bf_status propose_uniform(const bf_class_spec *classes, int n_classes, long N,
                                 uint64_t key, bf_cell *cells, int32_t *labels, bf_error *err)
{
    long base = N / n_classes, extra = N % n_classes, off = 0;
    for (int c = 0; c < n_classes; c++) {
        long nc = base + (c < extra);
        bf_status st = bf_sample_random(&classes[c], nc, key, (uint64_t)off, cells + off, err);
        if (st != BF_OK) {
            bf_error_prefix(err, "al propose uniform");
            return st;
        }
        for (long j = 0; j < nc; j++)
            labels[off + j] = classes[c].label;
        off += nc;
    }
    return BF_OK;
}

/* The seed's variant (DESIGN §5.3): counts ~ Multinomial(N, w), then each count a
 * Gaussian around its study point, redrawn until the class accepts it. */
static bf_status propose_seed_mix(const bf_al_policy *p, const bf_class_spec *classes,
                                  int n_classes, const bf_study_set *study, const double *w,
                                  long N, bf_rng *rng, uint64_t key, bf_cell *cells,
                                  int32_t *labels, bf_error *err)
{
    for (int c = 0; c < n_classes; c++)
        for (int q = 0; q < BF_N_CELL_PARAMS; q++)
            if (classes[c].rule[q].kind == BF_PARAM_FREE &&
                !(isfinite(p->std[c][q]) && p->std[c][q] >= 0))
                return bf_error_set(err, BF_ERR_INVALID,
                                    "al propose seed-mix: class %s: std %s: %g must be finite "
                                    "and >= 0",
                                    classes[c].name, bf_cell_param_names[q], p->std[c][q]);
    long *counts = malloc((size_t)study->n * sizeof *counts);
    if (counts == NULL)
        return bf_error_set(err, BF_ERR_NOMEM, "al propose seed-mix: no memory for %ld counts",
                            study->n);
    bf_status st = BF_OK;
    bf_multinomial(w, study->n, N, rng, counts);
    long off = 0;
    for (long i = 0; i < study->n; i++) {
        if (counts[i] == 0)
            continue;
        int c = study->class_index[i];
        const bf_class_spec *cls = &classes[c];
        bf_rng r; /* the point's own stream: independent of the other points' draws */
        bf_rng_init(&r, key, (uint64_t)i);
        for (long d = 0; d < counts[i]; d++) {
            long rejected = 0;
            while (!gaussian_draw(cls, &study->cells[i], p->std[c], &r, &cells[off])) {
                if (++rejected >= MAX_REJECTIONS) {
                    st = bf_error_set(err, BF_ERR_INVALID,
                                      "al propose seed-mix: class %s: study point %ld: %ld "
                                      "draws in a row fell outside the class box or "
                                      "constraints (std too wide, or the point on an edge?)",
                                      cls->name, i, MAX_REJECTIONS);
                    goto done;
                }
            }
            labels[off] = cls->label;
            off++;
        }
    }
done:
    free(counts);
    return st;
}

/* Seed 001 Eq. 4: p(class k, x) ∝ prior_k 1[x in box_k, constraints_k]
 *                                   * sum_{n in k} w_n N(x; x_n, (tau step_k)^2).
 * Exact rejection sampling: pick component n with probability ∝ prior w_n, draw x from
 * its Gaussian, and on rejection pick the component afresh. (Redrawing x around the
 * same component would instead give every component its full weight inside the box,
 * inflating points near edges and constraints above Eq. 4.) The batch is then ordered
 * by study point, draws in order. */
static bf_status propose_gaussian_mixture(const bf_al_policy *p, const bf_class_spec *classes,
                                          int n_classes, const bf_study_set *study,
                                          const double *w, long N, bf_rng *rng, bf_cell *cells,
                                          int32_t *labels, bf_error *err)
{
    if (!(isfinite(p->tau) && p->tau > 0))
        return bf_error_set(err, BF_ERR_INVALID,
                            "al propose gaussian-mixture: tau: %g must be > 0 (study steps)",
                            p->tau);
    for (int c = 0; c < n_classes; c++)
        if (!(isfinite(p->prior[c]) && p->prior[c] >= 0))
            return bf_error_set(err, BF_ERR_INVALID,
                                "al propose gaussian-mixture: class %s: prior %g must be finite "
                                "and >= 0",
                                classes[c].name, p->prior[c]);
    const long n = study->n;
    bf_status st = BF_OK;
    double *cum = malloc((size_t)n * sizeof *cum);
    long *comp = malloc((size_t)N * sizeof *comp);
    long *start = calloc((size_t)n + 1, sizeof *start);
    bf_cell *drawn = malloc((size_t)N * sizeof *drawn);
    if (!cum || !comp || !start || !drawn) {
        st = bf_error_set(err, BF_ERR_NOMEM, "al propose gaussian-mixture: no memory for %ld "
                          "cells", N);
        goto done;
    }
    double total = 0;
    for (long i = 0; i < n; i++) {
        total += w[i] * p->prior[study->class_index[i]];
        cum[i] = total;
    }
    if (!(total > 0)) {
        st = bf_error_set(err, BF_ERR_INVALID, "al propose gaussian-mixture: every study point "
                          "has weight 0 once the class prior is applied");
        goto done;
    }
    for (long j = 0; j < N; j++) {
        long rejected = 0;
        for (;;) {
            /* First i with cum[i] > u: a component of positive weight. */
            double u = bf_rng_uniform(rng) * total;
            long lo = 0, hi = n - 1;
            while (lo < hi) {
                long mid = lo + (hi - lo) / 2;
                if (cum[mid] > u)
                    hi = mid;
                else
                    lo = mid + 1;
            }
            int c = study->class_index[lo];
            double sd[BF_N_CELL_PARAMS];
            for (int q = 0; q < BF_N_CELL_PARAMS; q++)
                sd[q] = p->tau * study->step[c][q];
            if (gaussian_draw(&classes[c], &study->cells[lo], sd, rng, &drawn[j])) {
                comp[j] = lo;
                break;
            }
            if (++rejected >= MAX_REJECTIONS) {
                st = bf_error_set(err, BF_ERR_INVALID,
                                  "al propose gaussian-mixture: class %s: study point %ld: %ld "
                                  "proposals in a row fell outside the class boxes or "
                                  "constraints (tau %g study steps too wide?)",
                                  classes[c].name, lo, MAX_REJECTIONS, p->tau);
                goto done;
            }
        }
    }
    /* Counting sort by study point (stable, so draws stay in order). */
    for (long j = 0; j < N; j++)
        start[comp[j] + 1]++;
    for (long i = 0; i < n; i++)
        start[i + 1] += start[i];
    for (long j = 0; j < N; j++) {
        long at = start[comp[j]]++;
        cells[at] = drawn[j];
        labels[at] = classes[study->class_index[comp[j]]].label;
    }
done:
    free(cum);
    free(comp);
    free(start);
    free(drawn);
    return st;
}

bf_status bf_al_propose(const bf_al_policy *p, const bf_class_spec *classes, int n_classes,
                        const bf_study_set *study, const double *w, long N, uint64_t seed,
                        uint64_t stream, bf_cell *cells, int32_t *labels, bf_error *err)
{
    if (n_classes < 1 || n_classes > BF_MAX_CLASSES)
        return bf_error_set(err, BF_ERR_INVALID, "al propose: n_classes: %d is outside 1..%d",
                            n_classes, BF_MAX_CLASSES);
    if (N < 0)
        return bf_error_set(err, BF_ERR_INVALID, "al propose: N: %ld must be >= 0", N);
    const char *what = bf_al_kind_name(p->kind);
    bf_status st;
    if (p->kind != BF_AL_UNIFORM) {
        if (p->kind != BF_AL_SEED_MIX && p->kind != BF_AL_GAUSSIAN_MIXTURE)
            return bf_error_set(err, BF_ERR_INVALID, "al propose: unknown policy %d",
                                (int)p->kind);
        if ((st = check_study(what, study, w, n_classes, err)) != BF_OK)
            return st;
    }
    if (N == 0)
        return BF_OK;
    bf_rng rng;
    bf_rng_init(&rng, seed, stream);
    uint64_t key = bf_rng_u64(&rng);
    switch (p->kind) {
    case BF_AL_UNIFORM: return propose_uniform(classes, n_classes, N, key, cells, labels, err);
    case BF_AL_SEED_MIX:
        return propose_seed_mix(p, classes, n_classes, study, w, N, &rng, key, cells, labels,
                                err);
    default:
        return propose_gaussian_mixture(p, classes, n_classes, study, w, N, &rng, cells, labels,
                                        err);
    }
}

/* ---- Eq. 4 in 1-D ----------------------------------------------------------------- */

/* Phi(b) - Phi(a) for a <= b without cancellation: erf near 0, erfc in either tail. */
static double phi_diff(double a, double b)
{
    const double r = 1.0 / sqrt(2.0);
    if (a >= 0)
        return 0.5 * (erfc(a * r) - erfc(b * r));
    if (b <= 0)
        return 0.5 * (erfc(-b * r) - erfc(-a * r));
    return 0.5 * (erf(b * r) - erf(a * r));
}

double bf_al_mixture_density_1d(const double *centres, const double *w, long n, double tau,
                                double lo, double hi, double x)
{
    if (n < 1 || !(tau > 0) || !(hi > lo))
        return NAN;
    if (x < lo || x > hi)
        return 0.0; /* the uniform prior vanishes outside the box */
    double num = 0, z = 0;
    for (long i = 0; i < n; i++) {
        double d = (x - centres[i]) / tau;
        num += w[i] * exp(-0.5 * d * d);
        z += w[i] * phi_diff((lo - centres[i]) / tau, (hi - centres[i]) / tau);
    }
    num /= tau * sqrt(2.0 * M_PI);
    return z > 0 ? num / z : NAN;
}
