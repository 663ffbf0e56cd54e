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

/* Writes m (with its checkpoint info, may be NULL) to path atomically, from its host
 * master copy (downloaded from the backend first). Initialisers carry the state_dict
 * names; with fp16 each is FLOAT16 followed by a Cast whose output is "<name>.float32".
 * Errors: BF_ERR_UNSUPPORTED for a kind without a graph, BF_ERR_INVALID for a
 * non-finite weight or a task metadata key equal to one of the export's, BF_ERR_RANGE
 * for a weight beyond float16 (|w| >= 65520) with fp16, BF_ERR_IO, BF_ERR_NOMEM; no
 * file is left behind on any of them. */
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
/* Checks every input (finite, in range; field named in the error) and evaluates. */
bf_status bf_cost_evaluate(const bf_cost_inputs *in, bf_cost_result *out, bf_error *err);

#ifdef __cplusplus
}
#endif
#endif
