/* braggflow/serve.h — the model at the instrument (DESIGN §9, seed 002): ONNX export,
 * the ZeroMQ inference service with live model swap, its wire format, and seed 002's
 * cost model. This layer sits on the task layer: it serves what a task's checkpoint
 * predicts, in that task's units. */
#ifndef BRAGGFLOW_SERVE_H
#define BRAGGFLOW_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "braggflow/core.h"
#include "braggflow/nn.h"
#include "braggflow/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- ONNX export (docs/serve.md §ONNX) ------------------------------------------
 * An ONNX ModelProto (IR version 8, opset 17) written with braggflow's own protobuf
 * encoder. The batch dimension is dynamic ("N"). Graph inputs and outputs:
 *   braggnn:       patch (N, 1, S, S) float32, raw counts -> ploc (N, 2) float32
 *   structure_net: pattern (N, L) float32, raw intensities -> logits (N, C),
 *                  regression (N, 4) float32
 * Per-sample min-max scaling is inside the graph, so a caller feeds raw data exactly as
 * `braggflow peaks` / `predict` read it. The task metadata of the checkpoint (label
 * scaling, class names) is copied into metadata_props. */
typedef struct {
    int fp16;            /* 1: initialisers stored as float16 and Cast to float32 */
} bf_onnx_options;

/* Writes m (with its checkpoint info, may be NULL) to path atomically. */
bf_status bf_onnx_export(bf_model *m, const bf_checkpoint_info *info, const bf_onnx_options *o,
                         const char *path, bf_error *err);

/* ---- Seed 002's cost model (Eqs. 1-5; docs/serve.md §Cost model) ------------------ */
typedef struct {
    double n_items;                /* N */
    double labelled_fraction;      /* p: the share labelled by the conventional analysis */
    double item_bytes;             /* one item (a patch) on the wire */
    double label_bytes;            /* one label (a result) on the wire */
    double model_bytes;            /* the trained model shipped back */
    double bandwidth_bytes_per_s;  /* edge <-> data centre */
    double analysis_us_per_item;   /* A: conventional analysis, wall time per item */
    double inference_us_per_item;  /* E: surrogate inference, wall time per item */
    double train_s;                /* T: (re)training */
} bf_cost_inputs;

typedef struct {
    double transfer_item_us, transfer_label_us, transfer_model_us;
    double fc_per_item_us;         /* f_c = fc_per_item_us * N */
    double fml_per_item_us;        /* f_ml = fml_per_item_us * N + fml_fixed_us */
    double fml_fixed_us;
    double fc_us, fml_us;          /* at inputs.n_items */
    double break_even_items;       /* N where f_c = f_ml; +inf when the surrogate never pays */
} bf_cost_result;

/* The paper's example (DESIGN §9): 242-byte patches at 1 GB/s, 8-byte labels, a 3 MB
 * model, A = 2.44 us, E = 0.35 us, p = 0.1, T = 19 s, N = 1e7. */
void bf_cost_defaults(bf_cost_inputs *in);
/* Checks every input (finite, in range; field named in the error) and evaluates
 * seed 002 Eqs. 4-5 in their general form (docs/serve.md §Cost model):
 *   transfer_x_us = x_bytes / bandwidth_bytes_per_s * 1e6
 *   f_c  = N (transfer_item + A + transfer_label)                              (Eq. 1, 4)
 *   f_ml = p N (transfer_item + A + transfer_label) + T + transfer_model
 *          + (1 - p) N E                                                       (Eq. 3, 5)
 * break_even_items = fml_fixed_us / (fc_per_item_us - fml_per_item_us), +inf when
 * the difference, (1 - p)(transfer_item + A + transfer_label - E), is <= 0.
 * BF_ERR_RANGE when a cost overflows a double. */
bf_status bf_cost_evaluate(const bf_cost_inputs *in, bf_cost_result *out, bf_error *err);

/* One bit per bf_cost_inputs field: where an input came from (bf_cost_measure's
 * `measured`, the plan command's sources). */
enum {
    BF_COST_N_ITEMS = 1u << 0,
    BF_COST_LABELLED_FRACTION = 1u << 1,
    BF_COST_ITEM_BYTES = 1u << 2,
    BF_COST_LABEL_BYTES = 1u << 3,
    BF_COST_MODEL_BYTES = 1u << 4,
    BF_COST_BANDWIDTH = 1u << 5,
    BF_COST_ANALYSIS = 1u << 6,
    BF_COST_INFERENCE = 1u << 7,
    BF_COST_TRAIN = 1u << 8,
};

/* DIR/timings.ini, seed 002's Table 1 measured on one machine (written by
 * scripts/edge-demo.sh; the format is in docs/serve.md §Cost model): one [edge]
 * section, every key optional, an unknown section or key, a repeated key or a
 * malformed number is an error naming FILE:LINE and the key. Counts (threads,
 * *_items) are whole numbers >= 1, times 0..1e9 s, sizes 0..1e18 bytes; label_s and
 * label_items come together, as do inference_s and inference_items. */
enum {
    BF_TIMING_THREADS = 1u << 0,
    BF_TIMING_LABEL_ITEMS = 1u << 1,
    BF_TIMING_LABEL_S = 1u << 2,
    BF_TIMING_TRAIN_ITEMS = 1u << 3,
    BF_TIMING_TRAIN_S = 1u << 4,
    BF_TIMING_DEPLOY_S = 1u << 5,
    BF_TIMING_INFERENCE_ITEMS = 1u << 6,
    BF_TIMING_INFERENCE_S = 1u << 7,
    BF_TIMING_ITEM_BYTES = 1u << 8,
    BF_TIMING_MODEL_BYTES = 1u << 9,
    BF_TIMING_END_TO_END_S = 1u << 10,
};
typedef struct {
    unsigned present;              /* BF_TIMING_* bit per key the file gave */
    double threads;                /* cores used by every step */
    double label_items, label_s;   /* the conventional analysis (fit-peaks): items, wall s */
    double train_items, train_s;   /* the fine-tuning */
    double deploy_s;               /* checkpoint written -> first reply with its hash */
    double inference_items, inference_s; /* answered by the service, wall s */
    double item_bytes, model_bytes;
    double end_to_end_s;           /* labelling + training + deployment */
} bf_edge_timings;

/* Parses timings.ini text; name (the path) goes into messages. Absent keys stay 0. */
bf_status bf_edge_timings_parse(const char *text, const char *name, bf_edge_timings *t,
                                bf_error *err);
/* Reads and parses DIR/timings.ini ("DIR/timings.ini: cannot open: ..." when absent). */
bf_status bf_edge_timings_read(const char *dir, bf_edge_timings *t, bf_error *err);
/* Fills the inputs the timings measure and sets their BF_COST_* bits in *measured
 * (which is first cleared; may be NULL): A = label_s / label_items,
 * E = inference_s / inference_items (wall time per item with `threads` cores),
 * T = train_s, item_bytes, model_bytes. The others are left as they are. */
void bf_cost_from_timings(const bf_edge_timings *t, bf_cost_inputs *in, unsigned *measured);
/* bf_edge_timings_read + bf_cost_from_timings; on an error *in is left as it was and
 * *measured is 0. */
bf_status bf_cost_measure(const char *dir, bf_cost_inputs *in, unsigned *measured,
                          bf_error *err);

#ifdef __cplusplus
}
#endif
#endif
