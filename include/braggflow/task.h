/* braggflow/task.h — what a model is FOR. A task sits above the data layer and the
 * nn engine: it turns a dataset into scaled input and target arrays, supplies the
 * loss and the validation score the engine trains with (bf_objective), defines the
 * metrics and the checkpoint metadata it needs to read predictions back into
 * physical units, and knows which registered models serve it.
 *
 *   structure: powder pattern -> crystal class + a, c, alpha with sigma^2
 *              (seed 001, DESIGN §4; model structure_net)
 *   peaks:     detector patch -> Bragg-peak centre in pixels (BraggNN, DESIGN §7;
 *              model braggnn) */
#ifndef BRAGGFLOW_TASK_H
#define BRAGGFLOW_TASK_H

#include "braggflow/core.h"
#include "braggflow/data.h"
#include "braggflow/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-row min-max scaling to [0, 1] in place: x (n, L); a constant row is left as it
 * is minus its value (all zeros), as the seed's and BraggNN's preprocessing. */
void bf_minmax_scale_rows(float *x, long n, int L);

/* Loads a checkpoint for a task: the model must be one the task serves
 * ("FILE: model 'structure_net' is not a peaks model (braggnn)"). */
bf_status bf_task_load(const char *task, const char *path, const bf_backend *be, bf_model **m,
                       bf_checkpoint_info *info, bf_error *err);
/* The training set's name for messages: cfg->train_name (or "training set") and, for a
 * rank's shard of n rows (cfg->train_total > 0), "NAME rows [first, first + n) of total". */
void bf_task_train_name(const bf_train_config *cfg, long n, char *out, size_t outsz);
/* A warm start: the checkpoint at path and its optimiser sidecar (opt initialised on
 * be either way), the model one task serves, Adam's learning rate set to lr. */
bf_status bf_task_warm_start(const char *task, const char *path, const bf_backend *be,
                             double lr, bf_model **m, bf_adam *opt, bf_checkpoint_info *info,
                             bf_error *err);
/* The registered kind named model, when it serves task. */
bf_status bf_task_model_kind(const char *task, const char *model, const bf_model_kind **kind,
                             bf_error *err);
/* "structure" or "peaks" for a model kind name; NULL for none. */
const char *bf_task_of_model(const char *model);

/* ---- Structure finding (DESIGN §4) --------------------------------------------- */
#define BF_N_TARGETS 3            /* a, c, alpha */
#define BF_MAX_MODEL_CLASSES 16

typedef struct {
    /* scaled = (physical - offset) / scale (DESIGN §4: a-3.5, c-3.5, (alpha-30)/90) */
    double offset[BF_N_TARGETS], scale[BF_N_TARGETS];
} bf_label_scaling;

extern const bf_label_scaling bf_label_scaling_seed;
extern const char *const bf_target_names[BF_N_TARGETS];   /* "a", "c", "alpha" */
extern const char *const bf_target_units[BF_N_TARGETS];   /* "A", "A", "deg" */

/* The structure task's checkpoint metadata. */
typedef struct {
    bf_label_scaling scaling;
    int n_classes;
    char class_names[BF_MAX_MODEL_CLASSES][32];   /* by label */
    int has_grid;                                 /* 0: a checkpoint from before grids */
    bf_x_grid grid;                               /* the training set's x axis */
} bf_structure_meta;

/* From / into the checkpoint's task metadata (label_offset, label_scale, class_names;
 * the grid as x_unit (tof_us | two_theta_deg), x_count, x_first, x_last, x_spacing
 * (geometric | linear | array) and, for an array, x_sha256; absent in older
 * checkpoints: has_grid = 0). */
bf_status bf_structure_meta_read(const bf_checkpoint_info *info, const bf_model *m,
                                 const char *path, bf_structure_meta *out, bf_error *err);
bf_status bf_structure_meta_write(const bf_structure_meta *sm, bf_checkpoint_info *info,
                                  bf_error *err);
/* Loads a structure checkpoint with its metadata. */
bf_status bf_structure_load(const char *path, const bf_backend *be, bf_model **m,
                            bf_checkpoint_info *info, bf_structure_meta *meta, bf_error *err);

typedef struct {
    long n;
    double loss, class_loss, reg_loss;     /* loss = class_loss + reg_loss */
    double accuracy;
    double mse;                            /* scaled lattice values, mean over n x 3 */
    double mse_baseline;                   /* MSE of always predicting the set's mean */
    double mae[BF_N_TARGETS];              /* physical units: A, A, deg */
    double rmse[BF_N_TARGETS];
    double mean_sigma2;                    /* mean predicted sigma^2 (scaled units) */
    int n_classes;
    long confusion[BF_MAX_MODEL_CLASSES][BF_MAX_MODEL_CLASSES];  /* [true][predicted] */
} bf_metrics;

/* Model inputs from a dataset: checks length, finiteness and labels; min-max scales
 * per pattern; scaled targets from the cells. labels/targets may be NULL. */
bf_status bf_structure_inputs(const bf_model *m, const bf_dataset *d, const char *name,
                              const bf_label_scaling *sc, float **x, int32_t **labels,
                              float **targets, bf_error *err);
/* Metrics of outputs (n, n_classes + 4) against labels and scaled targets. */
void bf_structure_metrics(const float *out, const int32_t *labels, const float *targets, long n,
                          int n_classes, const bf_label_scaling *sc, bf_metrics *mt);
/* One output row [logits (C), regression (4)] in physical terms: class probabilities
 * (softmax; prob[C]), the predicted class, a, c, alpha and their sigma (the model's
 * heteroscedastic uncertainty, seed 001 Eq. 6) in A, A, deg. Returns the class. */
int bf_structure_decode(const bf_structure_meta *meta, const float *out, double *prob,
                        double value[BF_N_TARGETS], double sigma[BF_N_TARGETS]);
/* Loads a checkpoint and computes its metrics on dataset d (name for messages). */
bf_status bf_structure_evaluate(const char *path, const bf_dataset *d, const char *name,
                                int batch, bf_metrics *mt, bf_error *err);

typedef struct {
    bf_train_result train;
    bf_metrics best_val;                   /* validation metrics of the kept checkpoint */
} bf_structure_result;

/* Trains cfg->model (default structure_net; or warm-starts cfg->init_path) on two
 * datasets. hidden > 0 overrides fc1's width. cfg->on_epoch receives
 * log->task_metrics = the epoch's validation bf_metrics. Under cfg->comm, train may be
 * this rank's shard: rows [cfg->train_first, + train->n) of cfg->train_total (its
 * attributes those of the whole file); a rank whose preparation fails stops all. */
bf_status bf_structure_train(const bf_train_config *cfg, int hidden, const bf_dataset *train,
                             const bf_dataset *val, bf_structure_result *res, bf_error *err);

/* ---- Peak finding (BraggNN, DESIGN §7) ------------------------------------------- */
/* Model inputs from patches: checks the patch size against the model's, finiteness;
 * min-max scales per patch. targets (n, 2) = (col, row) / S (BraggNN's labels,
 * column first) when wanted (needs p->centre). */
bf_status bf_peaks_inputs(const bf_model *m, const bf_patches *p, const char *name, float **x,
                          float **targets, bf_error *err);
/* Model outputs (n, 2) -> centres (n, 2) as (row, col) in patch pixels. */
void bf_peaks_centres(const float *out, long n, int S, double *centre_rc);
/* Loads a peaks checkpoint (braggflow's, or a bare BraggNN state_dict) and predicts the
 * centres of every patch of p: centre_rc (p->n, 2). */
bf_status bf_peaks_predict(bf_model *m, const bf_patches *p, const char *name, int batch,
                           double *centre_rc, bf_error *err);

typedef struct {
    int fc[4];                   /* dense widths fc1..fc4 of a fresh model (0: BraggNN's
                                    16, 8, 4, 2) */
    int augment;                 /* 1: shift each crop by a uniform integer in [-1, 1] per
                                    axis, as BraggNN's training (needs a margin; see
                                    bf_peaks_train) */
} bf_peaks_options;

typedef struct {
    bf_train_result train;
    bf_peak_errors best_val;     /* validation errors of the kept checkpoint */
} bf_peaks_result;

/* Trains cfg->model (braggnn) on patch files; cfg->on_epoch receives
 * log->task_metrics = the epoch's validation bf_peak_errors. MSE on the scaled centre;
 * the kept checkpoint has the lowest validation MSE. Under cfg->comm, train may be
 * this rank's shard, as for bf_structure_train (augmentation keyed by the global row). */
bf_status bf_peaks_train(const bf_train_config *cfg, const bf_peaks_options *o,
                         const bf_patches *train, const bf_patches *val, bf_peaks_result *res,
                         bf_error *err);

#ifdef __cplusplus
}
#endif
#endif
