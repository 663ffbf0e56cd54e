/* braggflow/nn.h — the neural-network engine: float32 layers with forward and
 * backward passes, losses, Adam, models as code, safetensors checkpoints.
 *
 * Tensors are plain contiguous float32 arrays in row-major (C) order; every
 * function documents its shapes, B = batch. Three levels:
 *   1. reference layers (src/nn/layers*.c): plain loops, the specification that
 *      finite-difference checks and the PyTorch fixture test;
 *   2. a backend (bf_backend): the operations models are written in; the CPU
 *      backend (OpenBLAS sgemm + OpenMP, fused kernels) is tested against (1);
 *      a CUDA backend implements the same table;
 *   3. models (src/nn/models/): structure_net (DESIGN §4); braggnn later.
 * Backward functions ACCUMULATE (+=) into dinp, dw, db; any of them may be NULL. */
#ifndef BRAGGFLOW_NN_H
#define BRAGGFLOW_NN_H

#include "braggflow/core.h"
#include "braggflow/data.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- 1. Reference layers ---------------------------------------------------------- */

/* Conv1d, no padding: inp (B, C_in, L_in), w (C_out, C_in, K), b (C_out) or NULL,
 * out (B, C_out, L_out) with L_out = (L_in - K) / stride + 1. */
void bf_conv1d_forward(float *out, const float *inp, const float *w, const float *b, int B,
                       int C_in, int L_in, int C_out, int K, int stride);
void bf_conv1d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int B, int C_in, int L_in, int C_out, int K, int stride);

/* Conv2d, square kernel K, zero padding pad: inp (B, C_in, H, W), w (C_out, C_in, K, K),
 * out (B, C_out, H_out, W_out), H_out = (H + 2 pad - K) / stride + 1 (same for W). */
void bf_conv2d_forward(float *out, const float *inp, const float *w, const float *b, int B,
                       int C_in, int H, int W, int C_out, int K, int stride, int pad);
void bf_conv2d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int B, int C_in, int H, int W, int C_out, int K,
                        int stride, int pad);

/* MaxPool1d over the last axis: inp (N, L) with N = B*C, out (N, L_out),
 * L_out = (L - K) / stride + 1. Ties go to the first maximum (as PyTorch's CPU
 * kernel); the backward pass recomputes the argmax from inp. */
void bf_maxpool1d_forward(float *out, const float *inp, int N, int L, int K, int stride);
void bf_maxpool1d_backward(float *dinp, const float *dout, const float *inp, int N, int L, int K,
                           int stride);
/* MaxPool2d: inp (N, H, W) -> out (N, H_out, W_out), square window K, no padding. */
void bf_maxpool2d_forward(float *out, const float *inp, int N, int H, int W, int K, int stride);
void bf_maxpool2d_backward(float *dinp, const float *dout, const float *inp, int N, int H, int W,
                           int K, int stride);

/* LeakyReLU: out = x > 0 ? x : slope x, elementwise over n values. */
void bf_leaky_relu_forward(float *out, const float *inp, size_t n, float slope);
void bf_leaky_relu_backward(float *dinp, const float *dout, const float *inp, size_t n,
                            float slope);

/* Linear: inp (B, n_in), w (n_out, n_in) (PyTorch layout), b (n_out) or NULL,
 * out (B, n_out) = inp w^T + b.
 * Uses cblas_sgemm (the reference for the layer's math is a triple loop in the tests). */
void bf_linear_forward(float *out, const float *inp, const float *w, const float *b, int B,
                       int n_in, int n_out);
void bf_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                        const float *w, int B, int n_in, int n_out);

/* Batched matmul: c (N, M, P) = op(a) op(b), op(a) (M, K), op(b) (K, P).
 * a is stored (N, M, K), or (N, K, M) when trans_a; b is (N, K, P), or (N, P, K) when trans_b. */
void bf_bmm_forward(float *c, const float *a, const float *b, int N, int M, int K, int P,
                    int trans_a, int trans_b);
void bf_bmm_backward(float *da, float *db, const float *dc, const float *a, const float *b, int N,
                     int M, int K, int P, int trans_a, int trans_b);

/* Softmax over the last axis: inp (rows, cols). Backward uses the forward output. */
void bf_softmax_forward(float *out, const float *inp, int rows, int cols);
void bf_softmax_backward(float *dinp, const float *dout, const float *out, int rows, int cols);

/* ---- Losses: return the loss; the gradient is WRITTEN (not accumulated) to dpred
 * when dpred != NULL, scaled by dloss (1 for a plain mean). ----------------------- */

/* Softmax cross-entropy, mean over the batch: logits (B, C), labels (B) in [0, C). */
double bf_cross_entropy_loss(float *dlogits, const float *logits, const int32_t *labels, int B,
                             int C, float dloss);
/* Heteroscedastic regression loss (seed 001 Eq. 6): pred (B, P+1) holds P values and
 * s = log sigma^2 last; target (B, P). loss = mean_n( sum_j (y_nj - yhat_nj)^2 e^{-s_n} + s_n ). */
double bf_hetero_loss(float *dpred, const float *pred, const float *target, int B, int P,
                      float dloss);
/* Mean squared error over all B*P values (PyTorch MSELoss, reduction 'mean'). */
double bf_mse_loss(float *dpred, const float *pred, const float *target, int B, int P,
                   float dloss);

/* ---- Parameters, initialisation, optimiser ---------------------------------------- */

#define BF_MAX_PARAMS 32
#define BF_PARAM_NAME 64

typedef struct {
    char name[BF_PARAM_NAME];   /* PyTorch state_dict name, e.g. "conv1.weight" */
    int ndim;
    int shape[4];
    size_t offset;              /* into bf_params.value / grad, in floats */
    size_t count;
    int fan_in;                 /* for PyTorch-default initialisation */
} bf_param_info;

/* All of a model's parameters in one buffer (and their gradients in another), in
 * state_dict order. */
typedef struct {
    int n;
    bf_param_info info[BF_MAX_PARAMS];
    size_t total;               /* floats */
    float *value;
    float *grad;
} bf_params;

/* Registers a tensor; shape has ndim entries; fan_in is used by bf_params_init. */
bf_status bf_params_add(bf_params *p, const char *name, int ndim, const int *shape, int fan_in,
                        bf_error *err);
/* Allocates value and grad (zeroed) once every tensor is added. */
bf_status bf_params_alloc(bf_params *p, bf_error *err);
void bf_params_free(bf_params *p);
const bf_param_info *bf_params_find(const bf_params *p, const char *name);
/* PyTorch's default for Linear/Conv: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
 * (kaiming_uniform with a = sqrt(5)), drawn from bf_rng stream (seed, 0). */
void bf_params_init(bf_params *p, uint64_t seed);
void bf_params_zero_grad(bf_params *p);

/* Adam exactly as torch.optim.Adam (no weight decay, no amsgrad). */
typedef struct {
    float lr, beta1, beta2, eps;
    long step;
    size_t n;
    float *m, *v;               /* first and second moments, n floats each */
} bf_adam;

bf_status bf_adam_init(bf_adam *opt, size_t n, float lr, bf_error *err); /* betas .9 .999, eps 1e-8 */
void bf_adam_free(bf_adam *opt);
void bf_adam_step(bf_adam *opt, float *value, const float *grad);
/* torch.nn.utils.clip_grad_norm_: scales grad by max_norm / (norm + 1e-6) when the
 * global L2 norm exceeds max_norm; returns the norm before clipping. */
double bf_clip_grad_norm(float *grad, size_t n, double max_norm);

/* ---- 2. Backends -------------------------------------------------------------------
 * Models call only these operations, so a CUDA backend (device pointers) plugs in
 * without touching model code. Pointers passed to the ops are backend memory. */
typedef struct bf_backend {
    const char *name;
    void *(*alloc)(size_t nbytes);           /* zeroed; NULL on failure */
    void (*free)(void *p);
    void (*upload)(void *dst, const void *host_src, size_t nbytes);
    void (*download)(void *host_dst, const void *src, size_t nbytes);
    void (*zero)(void *p, size_t nbytes);
    void (*set_threads)(int threads);        /* 0 = all cores */

    /* Linear as bf_linear_*, optionally fused with LeakyReLU (slope < 0: no activation).
     * With an activation, backward takes the activated output to mask dout (in place). */
    void (*linear_forward)(float *out, const float *inp, const float *w, const float *b, int B,
                           int n_in, int n_out, float slope);
    void (*linear_backward)(float *dinp, float *dw, float *db, float *dout, const float *out,
                            const float *inp, const float *w, int B, int n_in, int n_out, float slope);

    /* Conv1d (no padding) -> MaxPool1d(2, 2) -> LeakyReLU(slope), fused: inp (B, C_in, L_in),
     * out (B, C_out, P) with P = ((L_in - K) / stride + 1) / 2; argmax (B, C_out, P) bytes
     * record which of the two pooled positions won (kept for backward). Since LeakyReLU
     * is monotonic, pool-then-activate equals activate-then-pool. dinp may be NULL. */
    void (*conv1d_pool_lrelu_forward)(float *out, uint8_t *argmax, const float *inp,
                                      const float *w, const float *b, int B, int C_in, int L_in,
                                      int C_out, int K, int stride, float slope);
    void (*conv1d_pool_lrelu_backward)(float *dinp, float *dw, float *db, const float *dout,
                                       const float *out, const uint8_t *argmax, const float *inp,
                                       const float *w, int B, int C_in, int L_in, int C_out,
                                       int K, int stride, float slope);

    /* Per-sample min-max scaling to [0, 1] (constant rows become 0): x (B, L) in place. */
    void (*minmax_scale)(float *x, int B, int L);
    /* Optimiser on backend memory. */
    double (*grad_norm_clip)(float *grad, size_t n, double max_norm);
    void (*adam_step)(bf_adam *opt, float *value, const float *grad);
} bf_backend;

const bf_backend *bf_backend_cpu(void);
/* "cpu" (or "cuda" when built with it); an unknown or unavailable name is an error. */
bf_status bf_backend_get(const char *name, const bf_backend **out, bf_error *err);

/* ---- 3. Models ----------------------------------------------------------------------
 * A model is a network from a flat input (B, input_len) to a flat output (B, n_out);
 * the task (which loss reads which outputs) belongs to the model kind. */
typedef enum {
    BF_TASK_STRUCTURE,   /* out = 3 class logits + 3 scaled lattice values + log sigma^2 */
    BF_TASK_PEAK,        /* out = peak position (row, col), MSE (BraggNN) */
} bf_task;

typedef struct {
    int input_len;       /* points per pattern (structure_net: 2806 for the seed grid) */
    int hidden;          /* structure_net's fc1 width (256) */
    int n_classes;       /* structure_net: 3 */
} bf_model_shape;

typedef struct bf_model bf_model;

typedef struct {
    const char *name;                 /* "structure_net" */
    const char *description;
    bf_task task;
    bf_model_shape default_shape;
    /* Registers parameters (state_dict names and shapes) and model state; checks shape. */
    bf_status (*create)(bf_model *m, bf_error *err);
    void (*destroy)(bf_model *m);
    /* Sizes activation buffers for B samples (called only to grow). */
    bf_status (*reserve)(bf_model *m, int B, bf_error *err);
    /* x (B, input_len) -> out (B, n_out); keeps what backward needs (B <= reserved). */
    bf_status (*forward)(bf_model *m, const float *x, int B, float *out, bf_error *err);
    /* Accumulates parameter gradients from dout (B, n_out) of the last forward. */
    bf_status (*backward)(bf_model *m, const float *x, int B, const float *dout, bf_error *err);
} bf_model_kind;

struct bf_model {
    const bf_model_kind *kind;
    const bf_backend *be;
    bf_model_shape shape;
    int n_out;
    bf_params params;     /* host memory: the master copy checkpoints hold */
    int batch_capacity;   /* activations are sized for this many samples */
    int inference;        /* 1: forward keeps nothing for backward (torch.no_grad) */
    void *state;          /* the kind's activations */
};

/* Registry: structure_net now; braggnn plugs in the same way. */
const bf_model_kind *bf_model_kind_find(const char *name);
int bf_model_kind_count(void);
const bf_model_kind *bf_model_kind_at(int i);

/* shape NULL = the kind's default. Parameters are initialised from seed. */
bf_status bf_model_create(const char *kind, const bf_model_shape *shape, const bf_backend *be,
                          uint64_t seed, bf_model **out, bf_error *err);
void bf_model_destroy(bf_model *m);
/* Grows activation buffers to hold B samples. */
bf_status bf_model_reserve(bf_model *m, int B, bf_error *err);

/* ---- Safetensors (https://huggingface.co/docs/safetensors: u64 LE header length,
 * JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
 * then the little-endian tensor bytes) --------------------------------------------- */
typedef struct {
    char name[128];
    char dtype[8];        /* "F32", "F64", "I32", "I64", "U8", ... */
    int ndim;
    int64_t shape[8];
    const void *data;     /* into the file buffer (read) or the caller's memory (write) */
    size_t nbytes;
} bf_st_tensor;

typedef struct {
    char key[64];
    char *value;          /* heap, NUL-terminated */
} bf_st_meta;

typedef struct {
    int n_tensors;
    bf_st_tensor *tensors;
    int n_meta;
    bf_st_meta *meta;
    void *buffer;         /* the file's bytes (owned) */
    size_t buffer_len;
} bf_safetensors;

/* Writes atomically; tensors in the order given; meta values are strings. */
bf_status bf_safetensors_write(const char *path, const bf_st_tensor *tensors, int n_tensors,
                               const bf_st_meta *meta, int n_meta, bf_error *err);
/* Parses a whole file image (takes ownership of buf on success and failure alike).
 * name is used in messages. Validates header JSON, dtypes, shapes against byte
 * ranges, overlaps and bounds. */
bf_status bf_safetensors_parse(void *buf, size_t len, const char *name, bf_safetensors *out,
                               bf_error *err);
bf_status bf_safetensors_read(const char *path, bf_safetensors *out, bf_error *err);
void bf_safetensors_free(bf_safetensors *st);
const bf_st_tensor *bf_safetensors_find(const bf_safetensors *st, const char *name);
const char *bf_safetensors_meta(const bf_safetensors *st, const char *key); /* NULL if absent */

/* ---- 4. Checkpoints: the model's state_dict as safetensors + metadata -------------
 * Tensors keep the seed's PyTorch names, so a file loads into its FullModel with
 * load_state_dict and back. The optimiser's state goes to a sidecar
 * (X.safetensors -> X.optim.safetensors) for warm restarts. */
#define BF_N_TARGETS 3            /* a, c, alpha */
#define BF_MAX_MODEL_CLASSES 16

typedef struct {
    /* scaled = (physical - offset) / scale (DESIGN §4: a-3.5, c-3.5, (alpha-30)/90) */
    double offset[BF_N_TARGETS], scale[BF_N_TARGETS];
} bf_label_scaling;

extern const bf_label_scaling bf_label_scaling_seed;
extern const char *const bf_target_names[BF_N_TARGETS];   /* "a", "c", "alpha" */
extern const char *const bf_target_units[BF_N_TARGETS];   /* "A", "A", "deg" */

typedef struct {
    char model[32];
    bf_model_shape shape;
    bf_label_scaling scaling;
    char class_names[BF_MAX_MODEL_CLASSES][32];   /* by label */
    int epoch;                                    /* epochs trained when saved */
    double val_loss;
    char training_config[2048];                   /* JSON, provenance */
    char train_sha256[65], val_sha256[65];
    char version[32];
} bf_checkpoint_info;

/* Writes model (and, when opt != NULL, the optimiser sidecar) atomically. */
bf_status bf_checkpoint_save(const char *path, const bf_model *m, const bf_checkpoint_info *info,
                             const bf_adam *opt, bf_error *err);
/* Reads a checkpoint into a new model on backend be. info may be NULL. When opt != NULL
 * and a sidecar exists, the optimiser state is restored (opt is initialised either way;
 * *have_opt says whether a sidecar was read). Every tensor's name, dtype, shape and
 * finiteness is checked. */
bf_status bf_checkpoint_load(const char *path, const bf_backend *be, bf_model **m,
                             bf_checkpoint_info *info, bf_adam *opt, int *have_opt,
                             bf_error *err);
void bf_checkpoint_optim_path(const char *path, char *out, size_t outsz);

/* ---- 5. Training protocol for the structure task (DESIGN §4) ------------------------ */
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

typedef struct {
    int epoch, epochs;
    double train_loss;
    bf_metrics val;
    double seconds;                        /* this epoch, training + validation */
    double samples_per_s;                  /* training throughput */
    int improved;                          /* best validation loss so far: checkpoint saved */
} bf_epoch_log;

typedef struct {
    const char *model;          /* "structure_net" (default) */
    const char *init_path;      /* warm start from this checkpoint (+ its sidecar), or NULL */
    const char *out_path;       /* best-validation checkpoint */
    int epochs, batch, patience;            /* patience 0 = no early stopping */
    double lr, min_delta, clip_norm;
    uint64_t seed;
    int threads;                            /* 0 = all cores */
    int hidden;                             /* 0 = the model's default */
    const char *train_name, *val_name;      /* for messages */
    char train_sha256[65], val_sha256[65];  /* provenance (may be empty) */
    void (*on_epoch)(const bf_epoch_log *log, void *user);
    void *user;
    int progress;                           /* progress bar on stderr when a terminal */
} bf_train_config;

void bf_train_config_defaults(bf_train_config *cfg);  /* epochs 30, batch 512, lr 5e-4, ... */

typedef struct {
    int epochs_run, best_epoch;
    double best_val_loss;
    bf_metrics best_val;
    int stopped_early;
    double train_seconds;
} bf_train_result;

/* Trains on train, validates on val after every epoch, keeps the best checkpoint.
 * A non-finite loss stops training with an error; the best checkpoint stays. */
bf_status bf_train(const bf_train_config *cfg, const bf_dataset *train, const bf_dataset *val,
                   bf_train_result *res, bf_error *err);

/* Model inputs from a dataset: checks length, finiteness and labels; min-max scales
 * per pattern; scaled targets from the cells. labels/targets may be NULL. */
bf_status bf_structure_inputs(const bf_model *m, const bf_dataset *d, const char *name,
                              const bf_label_scaling *sc, float **x, int32_t **labels,
                              float **targets, bf_error *err);
/* Runs m over n inputs x (n, input_len), already scaled: out (n, n_out). */
bf_status bf_model_predict(bf_model *m, const float *x, long n, int batch, float *out,
                           bf_error *err);
/* Loads a checkpoint and computes its metrics on dataset d (name for messages). */
bf_status bf_checkpoint_evaluate(const char *path, const bf_dataset *d, const char *name,
                                 int batch, bf_metrics *mt, bf_error *err);
/* Metrics of outputs (n, n_out) against labels and scaled targets. */
void bf_structure_metrics(const float *out, const int32_t *labels, const float *targets, long n,
                          int n_classes, const bf_label_scaling *sc, bf_metrics *mt);

#ifdef __cplusplus
}
#endif
#endif
