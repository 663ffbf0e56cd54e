/* braggflow/nn.h — the neural-network engine: float32 layers with forward and
 * backward passes, losses, Adam, models as code, safetensors checkpoints, and a
 * training loop that drives any registered model.
 *
 * The engine knows nothing of datasets or of what a model's outputs mean: a
 * task (include/braggflow/task.h) turns its data into input and target arrays
 * and supplies the loss and the validation score (bf_objective).
 *
 * Tensors are plain contiguous float32 arrays in row-major (C) order; every
 * function documents its shapes, B = batch. Three levels:
 *   1. reference layers (src/nn/layers*.c): plain loops (no BLAS), the
 *      specification that finite-difference checks and the PyTorch fixture test;
 *   2. backends (bf_backend): the operations models are written in. Two exist:
 *      "reference" (the layers of 1, composed) and "cpu" (OpenBLAS sgemm +
 *      OpenMP, fused kernels), tested against each other on whole models; a
 *      CUDA backend implements the same table;
 *   3. models (src/nn/models/): structure_net (DESIGN §4), braggnn (DESIGN §7).
 * Backward functions ACCUMULATE (+=) into dinp, dw, db; any of them may be NULL. */
#ifndef BRAGGFLOW_NN_H
#define BRAGGFLOW_NN_H

#include "braggflow/core.h"

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
 * out (B, n_out) = inp w^T + b. */
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

/* How bf_params_init draws a tensor. */
typedef enum {
    BF_INIT_TORCH_DEFAULT,      /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)): Linear/Conv reset_parameters */
    BF_INIT_XAVIER_UNIFORM,     /* U(-a, a), a = sqrt(6 / (fan_in + fan_out)) */
    BF_INIT_ZERO,
} bf_init;

typedef struct {
    char name[BF_PARAM_NAME];   /* PyTorch state_dict name, e.g. "conv1.weight" */
    int ndim;
    int shape[4];
    size_t offset;              /* into bf_params.value / grad, in floats */
    size_t count;
    int fan_in, fan_out;        /* for initialisation */
    bf_init init;
} bf_param_info;

/* All of a model's parameters in one buffer (and their gradients in another), in
 * state_dict order. value and grad are HOST memory: the master copy checkpoints read
 * and write and the reference functions below work on; a model computes with its
 * backend's copy (bf_model.w, .g) and syncs explicitly (bf_model_params_*). */
typedef struct {
    int n;
    bf_param_info info[BF_MAX_PARAMS];
    size_t total;               /* floats */
    float *value;
    float *grad;
} bf_params;

/* Registers a tensor; shape has ndim entries; fan_in/fan_out/init drive bf_params_init. */
bf_status bf_params_add(bf_params *p, const char *name, int ndim, const int *shape, int fan_in,
                        bf_error *err);
/* The same with Xavier fans or a zero initialisation (BraggNN). */
bf_status bf_params_add_init(bf_params *p, const char *name, int ndim, const int *shape,
                             int fan_in, int fan_out, bf_init init, bf_error *err);
/* Allocates value and grad (host, zeroed) once every tensor is added. */
bf_status bf_params_alloc(bf_params *p, bf_error *err);
void bf_params_free(bf_params *p);
const bf_param_info *bf_params_find(const bf_params *p, const char *name);
/* Draws every tensor as its bf_init says from bf_rng stream (seed, 0), in state_dict
 * order (PyTorch default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))). */
void bf_params_init(bf_params *p, uint64_t seed);
void bf_params_zero_grad(bf_params *p);

/* Adam exactly as torch.optim.Adam (no weight decay, no amsgrad). m and v live where
 * the values they update do: host memory (be = NULL: bf_adam_step) or a backend's
 * (be->adam_step). */
typedef struct bf_backend bf_backend;
typedef struct {
    float lr, beta1, beta2, eps;
    long step;
    size_t n;
    float *m, *v;               /* first and second moments, n floats each */
    const bf_backend *be;       /* owner of m and v; NULL = host */
} bf_adam;

/* betas .9 .999, eps 1e-8; moments zeroed, allocated on be (NULL = host). */
bf_status bf_adam_init(bf_adam *opt, const bf_backend *be, size_t n, float lr, bf_error *err);
void bf_adam_free(bf_adam *opt);
/* Reference step on host arrays (opt->be must be NULL). */
void bf_adam_step(bf_adam *opt, float *value, const float *grad);
/* torch.nn.utils.clip_grad_norm_: scales grad by max_norm / (norm + 1e-6) when the
 * global L2 norm exceeds max_norm; returns the norm before clipping. Host arrays. */
double bf_clip_grad_norm(float *grad, size_t n, double max_norm);

/* ---- 2. Backends -------------------------------------------------------------------
 * Models call only these operations, so a CUDA backend (device pointers) plugs in
 * without touching model code. Every pointer an op takes is backend memory from
 * alloc (never dereferenced by a model); host memory crosses only through upload
 * and download. Every op returns a status: an allocation failure inside a kernel
 * is BF_ERR_NOMEM, never a skipped computation.
 *
 * Fused activations: slope >= 0 applies LeakyReLU(slope) to the op's output;
 * slope < 0 means none. With an activation, backward takes the activated output
 * `out` and masks dout by the activation's derivative IN PLACE first. */
struct bf_backend {
    const char *name;
    bf_status (*alloc)(size_t nbytes, void **out, bf_error *err);  /* zeroed */
    void (*free)(void *p);                                         /* NULL is a no-op */
    bf_status (*upload)(void *dst, const void *host_src, size_t nbytes, bf_error *err);
    bf_status (*download)(void *host_dst, const void *src, size_t nbytes, bf_error *err);
    bf_status (*zero)(void *p, size_t nbytes, bf_error *err);
    void (*set_threads)(int threads);                              /* 0 = all cores */
    /* bf_model_predict runs forward on at most this many samples at a time for models
     * that allow it (bf_model_kind.chunked_inference; 0: the whole uploaded batch): the
     * CPU backend's activations then stay in cache between layers. */
    int infer_chunk;
    /* bf_train_step runs forward and backward on at most this many samples at a time
     * for models that allow it (bf_model_kind.chunked_training; 0: the whole batch),
     * the parameter gradients summed over the chunks: the same step, with a chunk's
     * activations kept in cache instead of a batch's streamed through memory. */
    int train_chunk;
    /* Optional (NULL: one forward at a time). workers: how many tasks run_tasks runs at
     * once. run_tasks: task(ctx, i, worker, err) for every i in [0, n), each on one host
     * thread (worker in [0, workers())) whose backend ops are then single-threaded;
     * returns the status (and err) of the lowest failing i. bf_model_predict runs its
     * chunks this way, each worker on its own activations: no barrier between layers. */
    int (*workers)(void);
    bf_status (*run_tasks)(int n, bf_status (*task)(void *ctx, int i, int worker, bf_error *err),
                           void *ctx, bf_error *err);

    /* Linear as bf_linear_*: inp (B, n_in) -> out rows of n_out values, ldo apart
     * (ldo >= n_out: heads can write side by side into one (B, ldo) buffer). dout has
     * the same row stride ldo. */
    bf_status (*linear_forward)(float *out, int ldo, const float *inp, const float *w,
                                const float *b, int B, int n_in, int n_out, float slope,
                                bf_error *err);
    bf_status (*linear_backward)(float *dinp, float *dw, float *db, float *dout, int ldo,
                                 const float *out, const float *inp, const float *w, int B,
                                 int n_in, int n_out, float slope, bf_error *err);

    /* Conv1d (no padding) -> MaxPool1d(2, 2) -> LeakyReLU(slope >= 0), fused: inp (B, C_in,
     * L_in), out (B, C_out, P) with P = ((L_in - K) / stride + 1) / 2; argmax (B, C_out, P)
     * bytes record which of the two pooled positions won (NULL in inference). Since
     * LeakyReLU is monotonic, pool-then-activate equals activate-then-pool. dinp may be
     * NULL. */
    bf_status (*conv1d_pool_lrelu_forward)(float *out, uint8_t *argmax, const float *inp,
                                           const float *w, const float *b, int B, int C_in,
                                           int L_in, int C_out, int K, int stride, float slope,
                                           bf_error *err);
    bf_status (*conv1d_pool_lrelu_backward)(float *dinp, float *dw, float *db,
                                            const float *dout, const float *out,
                                            const uint8_t *argmax, const float *inp,
                                            const float *w, int B, int C_in, int L_in,
                                            int C_out, int K, int stride, float slope,
                                            bf_error *err);

    /* Conv2d, stride 1, no padding, square kernel K, then the optional activation:
     * inp (B, C_in, H, W) -> out (B, C_out, H-K+1, W-K+1). dinp may be NULL. */
    bf_status (*conv2d_forward)(float *out, const float *inp, const float *w, const float *b,
                                int B, int C_in, int H, int W, int C_out, int K, float slope,
                                bf_error *err);
    bf_status (*conv2d_backward)(float *dinp, float *dw, float *db, float *dout,
                                 const float *out, const float *inp, const float *w, int B,
                                 int C_in, int H, int W, int C_out, int K, float slope,
                                 bf_error *err);

    /* Non-local block (DESIGN §7; Wang et al. 2018 embedded-Gaussian form without the
     * 1/sqrt(d) scale) on x (B, C, N) with N = H W positions and Ci inner channels:
     *   theta, phi, g = 1x1 convs C -> Ci of x (with biases)          (B, Ci, N) each
     *   A = softmax over the last axis of theta^T phi                  (B, N, N)
     *   y = g A^T, i.e. y[c][n] = sum_m A[n][m] g[c][m]                (B, Ci, N)
     *   out = act(Conv1x1(Ci -> C)(y) + x)                             (B, C, N)
     * w holds the four 1x1 convs' weights and biases in state_dict order: theta.w (Ci, C),
     * theta.b (Ci), phi.w, phi.b, g.w, g.b, out.w (C, Ci), out.b (C), contiguous.
     * ws (backend memory, bf_nonlocal_workspace floats) keeps what backward needs; a
     * forward no backward follows (inference) passes NULL and the op keeps nothing
     * (for B = 512 the workspace is 35 MB written for nothing). dw likewise contiguous. */
    bf_status (*nonlocal_forward)(float *out, float *ws, const float *x, const float *w, int B,
                                  int C, int Ci, int N, float slope, bf_error *err);
    bf_status (*nonlocal_backward)(float *dx, float *dw, float *dout, const float *out,
                                   const float *ws, const float *x, const float *w, int B,
                                   int C, int Ci, int N, float slope, bf_error *err);

    /* Optimiser on backend memory: *norm (may be NULL) gets the norm before clipping. */
    bf_status (*grad_norm_clip)(float *grad, size_t n, double max_norm, double *norm,
                                bf_error *err);
    bf_status (*adam_step)(bf_adam *opt, float *value, const float *grad, bf_error *err);
};

/* Floats of a non-local block's workspace for B samples (theta, phi, g, A, y). */
size_t bf_nonlocal_workspace(int B, int Ci, int N);

const bf_backend *bf_backend_cpu(void);
/* Plain loops over the reference layers of section 1 (host memory): the
 * specification the CPU backend is tested against, whole models included. */
const bf_backend *bf_backend_reference(void);
/* "cpu", "reference" (or "cuda" when built with it); an unknown or unavailable name
 * is an error. */
bf_status bf_backend_get(const char *name, const bf_backend **out, bf_error *err);

/* ---- 3. Models ----------------------------------------------------------------------
 * A model is a registered description (bf_model_kind): a network from a flat input
 * (B, input_len) to a flat output (B, n_out), its parameters under PyTorch state_dict
 * names, and a few integer sizes (its shape) that checkpoints record. What the
 * outputs mean (loss, metrics, units) is the task's business, not the engine's. */
#define BF_MODEL_DIMS 8

typedef struct {
    int dim[BF_MODEL_DIMS];   /* the kind's sizes, named by kind->dim_names */
} bf_model_shape;

typedef struct bf_model bf_model;
typedef struct bf_safetensors bf_safetensors;

typedef struct {
    const char *name;                 /* "structure_net", "braggnn" */
    const char *description;
    int n_dims;
    const char *dim_names[BF_MODEL_DIMS];  /* e.g. "input_len", "hidden", "n_classes" */
    bf_model_shape default_shape;
    /* 1: inference may run forward on the backend's infer_chunk samples at a time (the
     * model's activations per sample are large next to its weights: BraggNN); 0: whole
     * batches (structure_net's dense layers are faster on large ones). */
    int chunked_inference;
    /* 1: a training step may run on the backend's train_chunk samples at a time (the
     * loss being a per-sample mean, as bf_objective.loss is); 0: whole batches. */
    int chunked_training;
    /* Registers parameters (names, shapes, init) and sets m->input_len, m->n_out. */
    bf_status (*create)(bf_model *m, bf_error *err);
    void (*destroy)(bf_model *m);
    /* Allocates activation buffers for B samples on m->be (called only to grow). */
    bf_status (*reserve)(bf_model *m, int B, bf_error *err);
    /* x (B, input_len), backend memory -> m->out (B, n_out), backend memory; keeps what
     * backward needs unless m->inference (B <= reserved). */
    bf_status (*forward)(bf_model *m, const float *x, int B, bf_error *err);
    /* Accumulates gradients into m->g from dout (B, n_out, backend memory; may be
     * overwritten) of the last training forward on x. */
    bf_status (*backward)(bf_model *m, const float *x, int B, float *dout, bf_error *err);
    /* Optional: the shape of a bare state_dict (tensors only, no braggflow metadata),
     * from the tensors' shapes; BF_ERR_INVALID when the tensors are not this model's. */
    bf_status (*shape_from_tensors)(const bf_safetensors *st, bf_model_shape *out,
                                    bf_error *err);
} bf_model_kind;

struct bf_model {
    const bf_model_kind *kind;
    const bf_backend *be;
    bf_model_shape shape;
    int input_len, n_out;
    bf_params params;     /* layout + host master copy (checkpoints) */
    float *w, *g;         /* backend: parameter values and gradients, params.total each */
    float *out;           /* backend: (batch_capacity, n_out) outputs of the last forward */
    int batch_capacity;   /* activations are sized for this many samples */
    int inference;        /* 1: forward keeps nothing for backward (torch.no_grad) */
    void *state;          /* the kind's activations */
    /* Parallel inference (bf_backend.run_tasks): one model per worker, of this kind and
     * shape, computing with these weights (w borrowed) on its own activations. */
    struct bf_model **workers;
    int n_workers;
    /* Optional, set by the trainer: backward calls it (through bf_model_grads_final)
     * once the gradients g[from_float, params.total) are final, so their reduction across
     * ranks can start while the layers before them are still differentiated. */
    void (*grads_final)(bf_model *m, size_t from_float, void *user);
    void *grads_user;
};

/* For a kind's backward: parameters param_index.. (all of them to the end of the
 * buffer) have their final gradients. No-op without m->grads_final. */
void bf_model_grads_final(bf_model *m, int param_index);

/* Registry: structure_net, braggnn. */
const bf_model_kind *bf_model_kind_find(const char *name);
int bf_model_kind_count(void);
const bf_model_kind *bf_model_kind_at(int i);
/* "structure_net, braggnn": for messages. */
const char *bf_model_kind_list(void);

/* shape NULL = the kind's default; be NULL = the CPU backend. Parameters are
 * initialised from seed (host) and uploaded. */
bf_status bf_model_create(const char *kind, const bf_model_shape *shape, const bf_backend *be,
                          uint64_t seed, bf_model **out, bf_error *err);
void bf_model_destroy(bf_model *m);
/* Grows activation buffers to hold B samples. */
bf_status bf_model_reserve(bf_model *m, int B, bf_error *err);
/* Host master copy <-> backend: values (and gradients with grads = 1). */
bf_status bf_model_params_download(bf_model *m, int grads, bf_error *err);
bf_status bf_model_params_upload(bf_model *m, bf_error *err);
/* Zeroes the backend gradients. */
bf_status bf_model_zero_grad(bf_model *m, bf_error *err);
/* Runs m over n host inputs x (n, input_len) in batches: host out (n, n_out). */
bf_status bf_model_predict(bf_model *m, const float *x, long n, int batch, float *out,
                           bf_error *err);
/* A size by its name in kind->dim_names: its value, or -1 when the kind has none. */
int bf_model_dim(const bf_model_kind *kind, const bf_model_shape *shape, const char *name);
/* Sets a size by name; BF_ERR_INVALID when the kind has no such size. */
bf_status bf_model_dim_set(const bf_model_kind *kind, bf_model_shape *shape, const char *name,
                           int value, bf_error *err);
/* "patch=11 fc1=16 ...": the shape with the kind's names, for messages. */
void bf_model_shape_format(const bf_model_kind *kind, const bf_model_shape *shape, char *out,
                           size_t outsz);

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

struct bf_safetensors {
    int n_tensors;
    bf_st_tensor *tensors;
    int n_meta;
    bf_st_meta *meta;
    void *buffer;         /* the file's bytes (owned) */
    size_t buffer_len;
};

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
 * Tensors keep PyTorch's names, so a file loads into the PyTorch model with
 * load_state_dict and back. The optimiser's state goes to a sidecar
 * (X.safetensors -> X.optim.safetensors) for warm restarts. Metadata: the engine's
 * own keys (format, model, shape, epoch, ...) plus the task's (BF_CKPT_MAX_EXTRA
 * "key" -> "value" strings, e.g. label scaling and class names), kept verbatim. */
#define BF_CKPT_MAX_EXTRA 16

typedef struct {
    char key[32];
    char value[512];
} bf_ckpt_extra;

typedef struct {
    char model[32];
    bf_model_shape shape;
    int epoch;                                    /* epochs trained when saved */
    double val_loss;                              /* the task's validation score */
    char training_config[2048];                   /* JSON, provenance */
    char train_sha256[65], val_sha256[65];
    char version[32];
    int bare;                                     /* 1: read from a bare state_dict */
    int n_extra;
    bf_ckpt_extra extra[BF_CKPT_MAX_EXTRA];       /* the task's metadata */
} bf_checkpoint_info;

/* Sets (or replaces) a task metadata string; BF_ERR_RANGE when the table is full or
 * the value does not fit. */
bf_status bf_checkpoint_info_set(bf_checkpoint_info *info, const char *key, const char *value,
                                 bf_error *err);
/* The task metadata string for key, or NULL. */
const char *bf_checkpoint_info_get(const bf_checkpoint_info *info, const char *key);

/* Writes model (and, when opt != NULL, the optimiser sidecar) atomically; downloads
 * the backend's parameters (and moments) first. */
bf_status bf_checkpoint_save(const char *path, bf_model *m, const bf_checkpoint_info *info,
                             const bf_adam *opt, bf_error *err);
/* Reads a checkpoint into a new model on backend be. info may be NULL. When opt != NULL
 * and a sidecar exists, the optimiser state is restored (opt is initialised either way,
 * on be; *have_opt says whether a sidecar was read). Every tensor's name, dtype, shape
 * and finiteness is checked. A file without braggflow metadata is accepted when its
 * tensors are exactly one model kind's state_dict (its shape from the tensors:
 * kind->shape_from_tensors); info->bare is then 1. */
bf_status bf_checkpoint_load(const char *path, const bf_backend *be, bf_model **m,
                             bf_checkpoint_info *info, bf_adam *opt, int *have_opt,
                             bf_error *err);
void bf_checkpoint_optim_path(const char *path, char *out, size_t outsz);

/* ---- 5. Training: any model, any task ---------------------------------------------
 * The task supplies host arrays (inputs already scaled) and an objective; the engine
 * shuffles, batches, uploads, runs forward/backward, clips, steps Adam, validates after
 * every epoch and keeps the checkpoint with the best validation score. */
/* The arrays hold rows [first, first + n) of a set of `total` rows (a rank's shard
 * under data parallelism, DESIGN §10); total 0 (and first 0): the whole set, n rows.
 * Row indices the engine hands to make_batch are global: row r is x[r - first]. */
typedef struct {
    const float *x;          /* (n, input_len) */
    const float *target;     /* (n, target_len) */
    long n;
    long first, total;
} bf_arrays;

typedef struct {
    const char *name;        /* "cross_entropy+hetero_eq6", "mse": recorded in the config */
    int target_len;          /* floats per sample in bf_arrays.target */
    /* Mean loss of B outputs (B, n_out) against targets (B, target_len), host memory;
     * writes d loss / d out to dout (B, n_out) when dout != NULL. */
    double (*loss)(void *user, const float *out, const float *target, int B, int n_out,
                   float *dout);
    /* The validation score (lower is better; the best checkpoint is kept by it) of all
     * outputs (n, n_out) against targets; may compute the task's metrics into user. */
    double (*score)(void *user, const float *out, const float *target, long n, int n_out);
    /* Optional: builds a training batch (augmentation): inputs bx (B, input_len) and
     * targets bt (B, target_len) for the global rows idx of set (set holds row r at
     * r - set->first), with a random stream fixed by (seed, epoch, global row). NULL: the
     * rows are copied as they are. */
    bf_status (*make_batch)(void *user, const bf_arrays *set, const long *idx, int B,
                            uint64_t seed, int epoch, float *bx, float *bt, bf_error *err);
    void *user;
    /* Optional: the task's metrics that score() fills (metrics_size bytes); each epoch's
     * log carries them as task_metrics, and the best epoch's are copied to best_metrics. */
    const void *metrics;
    void *best_metrics;
    size_t metrics_size;
} bf_objective;

typedef struct {
    int epoch, epochs;
    double train_loss;
    double val_score;                      /* objective->score of this epoch */
    const float *val_out;                  /* (n_val, n_out) host outputs of this epoch */
    const void *task_metrics;              /* the objective's metrics of this epoch, or NULL */
    double seconds;                        /* this epoch, training + validation */
    double samples_per_s;                  /* training throughput */
    double allreduce_s;                    /* this epoch: time waiting for gradient sums */
    long steps;                            /* optimiser steps this epoch */
    int improved;                          /* best validation score so far: checkpoint saved */
} bf_epoch_log;

/* A group of cooperating processes (ranks) for data-parallel training (DESIGN §10).
 * The engine sees only this interface; src/dist implements it with MPI. Every rank
 * calls the collectives in the same order. Buffers are host memory. */
typedef struct bf_comm bf_comm;
struct bf_comm {
    int rank, size;
    void *impl;
    /* Starts an in-place sum of buf[0, n) over all ranks; *req names it for wait. */
    bf_status (*iallreduce_sum_f32)(const bf_comm *c, float *buf, size_t n, int *req,
                                    bf_error *err);
    bf_status (*wait)(const bf_comm *c, int req, bf_error *err);
    /* Blocking in-place sum of n doubles (loss sums, status flags). */
    bf_status (*allreduce_sum_f64)(const bf_comm *c, double *buf, int n, bf_error *err);
    /* buf[0, bytes) of rank root to every rank. */
    bf_status (*bcast)(const bf_comm *c, void *buf, size_t bytes, int root, bf_error *err);
};

/* Collective: every rank passes its own status; all get BF_OK when every rank is fine,
 * else the error of the lowest failing rank (its message, "rank R: " in front when
 * there are several ranks) in err. c NULL: returns st. */
bf_status bf_comm_agree(const bf_comm *c, bf_status st, bf_error *err);

typedef enum {
    BF_LR_SCALING_NONE,    /* lr as given: --batch is the global batch (default) */
    BF_LR_SCALING_SQRT,    /* lr * sqrt(ranks) (seed 001) */
    BF_LR_SCALING_LINEAR,  /* lr * ranks, warmed up linearly (Goyal et al.; Horovod) */
} bf_lr_scaling;

/* "none", "sqrt", "linear" -> 0 and *out; -1 for anything else. */
int bf_lr_scaling_parse(const char *s, bf_lr_scaling *out);
const char *bf_lr_scaling_name(bf_lr_scaling s);

typedef struct {
    const char *model;          /* registered kind for a fresh model */
    const char *init_path;      /* warm start from this checkpoint (+ its sidecar), or NULL */
    const char *out_path;       /* best-validation checkpoint */
    const bf_backend *backend;  /* NULL = the CPU backend */
    int epochs, batch, patience;            /* patience 0 = no early stopping */
    double lr, min_delta;
    double clip_norm;                       /* 0 = no gradient clipping */
    uint64_t seed;
    int threads;                            /* 0 = all cores */
    const char *train_name, *val_name;      /* for messages */
    char train_sha256[65], val_sha256[65];  /* provenance (may be empty) */
    void (*on_epoch)(const bf_epoch_log *log, void *user);
    void *user;
    int progress;                           /* progress bar on stderr when a terminal */
    /* Data parallelism (DESIGN §10): NULL = one process. Each rank holds its shard of
     * the training rows (bf_arrays first/total; train_first/train_total below for the
     * tasks) and takes, of every global batch of `batch` over all rows, the members it
     * holds; gradients are summed in buckets of bucket_floats (0 = 262144) while
     * backward runs; validation is whole on every rank, its predictions sharded; only
     * rank 0 writes the checkpoint and calls on_epoch. */
    const bf_comm *comm;
    /* For the tasks (bf_structure_train, bf_peaks_train): the training set they are
     * given is rows [train_first, train_first + n) of a set of train_total rows (this
     * rank's shard); train_total 0: the whole set. bf_train reads bf_arrays instead. */
    long train_first, train_total;
    size_t bucket_floats;
    bf_lr_scaling lr_scaling;
    int warmup_epochs;                      /* linear scaling: epochs to reach lr * ranks */
} bf_train_config;

/* epochs 30, batch 512, lr 5e-4, patience 10, clip 50, seed 1 (a task may change them). */
void bf_train_config_defaults(bf_train_config *cfg);
bf_status bf_train_config_check(const bf_train_config *cfg, bf_error *err);

typedef struct {
    int epochs_run, best_epoch;
    double best_val_score;
    int stopped_early;
    double train_seconds;
} bf_train_result;

/* One optimisation step on a host batch bx (B, input_len), bt (B, target_len): upload,
 * forward, the objective's loss on the downloaded outputs (*loss), backward, clipping
 * (clip_norm > 0), Adam. A non-finite loss returns BF_OK before the parameters are
 * touched. What bf_train runs per batch (benchmarks time it); ws holds the batch's host
 * and backend buffers, for batches of at most B. */
typedef struct bf_step_ws bf_step_ws;
bf_status bf_step_ws_create(const bf_model *m, int B, bf_step_ws **out, bf_error *err);
void bf_step_ws_destroy(bf_step_ws *ws);
bf_status bf_train_step(bf_model *m, bf_adam *opt, const bf_objective *obj, bf_step_ws *ws,
                        const float *bx, const float *bt, int B, double clip_norm,
                        double *loss, bf_error *err);

/* Trains m (optimiser opt, on m's backend) on train, validates on val after every
 * epoch and saves m with info (epoch, val_loss and training_config filled in) to
 * cfg->out_path whenever the score improves. A non-finite loss stops training with an
 * error naming the epoch and batch; the best checkpoint stays. info->epoch on entry is
 * the count a warm start continues from. Under cfg->comm, train is this rank's shard
 * (bf_arrays first/total; the ranks' shards must make up one set, checked) or the whole
 * set on every rank; val is whole on every rank. One rank with the whole set trains
 * bit for bit as one process. */
bf_status bf_train(const bf_train_config *cfg, bf_model *m, bf_adam *opt,
                   const bf_objective *obj, const bf_arrays *train, const bf_arrays *val,
                   bf_checkpoint_info *info, bf_train_result *res, bf_error *err);

#ifdef __cplusplus
}
#endif
#endif
