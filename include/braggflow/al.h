/* braggflow/al.h — active learning (DESIGN §5; seed 001 Sec. II and its code
 * active_learning.py): the study set, acquisition weights from a model's
 * outputs on it, and three policies that turn them into the next batch of
 * cells to simulate:
 *   seed-mix          w = mix_reg * normalised exp(log sigma^2)
 *                       + mix_cls * normalised softmax entropy;
 *                     counts ~ Multinomial(N, w) over the study points; each
 *                     count draws a cell from a Gaussian centred on its study
 *                     point with per-class, per-parameter standard deviations
 *                     (the seed's: cubic a 1e-4; trigonal a 2e-3, alpha 0.3;
 *                     tetragonal a, c 2e-3), rejecting draws outside the class
 *                     box or its constraints;
 *   gaussian-mixture  seed 001 Eq. 4: p(x) ∝ p_X(x) sum_n w_n N(x; x_n, tau^2),
 *                     w_n = sigma^2_n / sum_m sigma^2_m, tau in units of the
 *                     study set's spacing per free parameter; the prior p_X is
 *                     uniform over each class box, weighted per class;
 *   uniform           no AL: uniform random cells in each class box.
 * Reproducible: every draw comes from bf_rng streams derived from (seed, phase). */
#ifndef BRAGGFLOW_AL_H
#define BRAGGFLOW_AL_H

#include "braggflow/core.h"
#include "braggflow/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Study set ---------------------------------------------------------------
 * An equally spaced sweep of every class's box: per class, the same number of
 * steps k along each free parameter, k the smallest with k^f >= per_class (f =
 * free parameters); grid points lo + (i + 1/2) (hi - lo) / k (cell centres, so
 * no point sits on a box edge); points violating the class constraints are
 * dropped. step[p] records the spacing of each free parameter (0 if fixed/tied). */
typedef struct {
    long n;
    bf_cell *cells;              /* [n] */
    int32_t *labels;             /* [n] class label */
    int32_t *class_index;        /* [n] index into the classes array given */
    double step[BF_MAX_CLASSES][BF_N_CELL_PARAMS];
} bf_study_set;

bf_status bf_study_set_make(const bf_class_spec *classes, int n_classes, long per_class,
                            bf_study_set *out, bf_error *err);
void bf_study_set_free(bf_study_set *s);

/* ---- Policies ---------------------------------------------------------------- */
typedef enum { BF_AL_UNIFORM, BF_AL_SEED_MIX, BF_AL_GAUSSIAN_MIXTURE } bf_al_kind;

typedef struct {
    bf_al_kind kind;
    double mix_reg, mix_cls;                            /* seed-mix (0.5, 0.5) */
    double tau;                                         /* gaussian-mixture (1 study step) */
    double std[BF_MAX_CLASSES][BF_N_CELL_PARAMS];       /* seed-mix, by class index */
    double prior[BF_MAX_CLASSES];                       /* gaussian-mixture p_X class weights (1) */
} bf_al_policy;

/* "seed-mix" | "gaussian-mixture" | "uniform" (BF_ERR_INVALID otherwise, naming it). */
bf_status bf_al_kind_parse(const char *name, bf_al_kind *out, bf_error *err);
const char *bf_al_kind_name(bf_al_kind k);
/* Defaults: mix 0.5/0.5, tau 1, prior 1, and the seed's stds for classes named
 * cubic, trigonal, tetragonal (others: 1e-3 of their box width per free parameter). */
void bf_al_policy_defaults(bf_al_policy *p, bf_al_kind kind, const bf_class_spec *classes,
                           int n_classes);

/* Acquisition weights over n study points from the model's outputs out (n, C + 4) =
 * [C logits, 3 scaled lattice values, log sigma^2]: w (n) sums to 1.
 * seed-mix: mix_reg * exp(s)/sum exp(s) + mix_cls * H/sum H (H = softmax entropy;
 * a term whose sum is 0 contributes uniformly); gaussian-mixture: exp(s)/sum exp(s);
 * uniform: 1/n. Non-finite outputs are an error naming the study point. */
bf_status bf_al_weights(const bf_al_policy *p, const float *out, long n, int n_classes,
                        double *w, bf_error *err);

/* counts (n) ~ Multinomial(N, w), by sequential conditional binomials; sum = N. */
void bf_multinomial(const double *w, long n, long N, bf_rng *rng, long *counts);

/* The next batch: N cells (with labels) drawn by the policy from the study set and
 * weights w. Every cell satisfies its class box and constraints (rejection; after
 * 10000 rejections for one draw it is an error naming the class). uniform ignores
 * the study set and w: N split over classes as evenly as possible (first classes
 * get the remainder), uniform in each box. Deterministic for (seed, stream). */
bf_status bf_al_propose(const bf_al_policy *p, const bf_class_spec *classes, int n_classes,
                        const bf_study_set *study, const double *w, long N, uint64_t seed,
                        uint64_t stream, bf_cell *cells, int32_t *labels, bf_error *err);

/* Eq. 4 in one dimension, as a normalised density on [lo, hi] with a uniform prior:
 * p(x) = sum_n w_n N(x; c_n, tau^2) / Z, Z = sum_n w_n (Phi((hi-c_n)/tau) - Phi((lo-c_n)/tau)).
 * For tests and plots; w need not be normalised. */
double bf_al_mixture_density_1d(const double *centres, const double *w, long n, double tau,
                                double lo, double hi, double x);

#ifdef __cplusplus
}
#endif
#endif
