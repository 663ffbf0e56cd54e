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

/* ---- The wire format (docs/serve.md §Wire format) ---------------------------------
 * One ZeroMQ frame per request and per reply, little-endian, fixed headers:
 *   request  "BFRQ" u16 version, u8 op, u8 model, u64 id, u32 count, u8 dtype, u8 ndims,
 *            u16 reserved (0), u32 dims[3] (unused 0), then count x prod(dims) values
 *   reply    "BFRP" u16 version, u16 status, u64 id, 32-byte model SHA-256, u32 count,
 *            u32 values per item, then count x values float32 (status OK), a UTF-8
 *            message (an error), or a JSON object (a stats reply). */
#define BF_WIRE_VERSION 1
enum { BF_WIRE_REQUEST_HEADER = 36, BF_WIRE_REPLY_HEADER = 56 };
enum { BF_OP_INFER = 1, BF_OP_STATS = 2 };
enum { BF_DTYPE_F32 = 1, BF_DTYPE_U16 = 2 };
enum { BF_WIRE_MODEL_BRAGGNN = 1, BF_WIRE_MODEL_STRUCTURE_NET = 2 };
typedef enum {
    BF_WIRE_OK = 0,
    BF_WIRE_BAD_REQUEST = 1,   /* malformed: length, magic, version, op, dtype, dims */
    BF_WIRE_WRONG_MODEL = 2,   /* well formed, but not what the served model takes */
    BF_WIRE_BAD_VALUE = 3,     /* a NaN or infinite input value */
    BF_WIRE_TOO_LARGE = 4,     /* more items than the service takes in one request */
    BF_WIRE_UNAVAILABLE = 5,   /* queue full, or the service is draining */
    BF_WIRE_INTERNAL = 6,      /* the computation failed */
} bf_wire_status;
const char *bf_wire_status_name(int status);   /* "ok", "bad_request", ... */
int bf_wire_model_code(const char *model_kind); /* BF_WIRE_MODEL_*, 0 for none */
const char *bf_wire_model_name(int code);       /* NULL for none */

typedef struct {
    int op, model;             /* BF_OP_*, BF_WIRE_MODEL_* (0 in a stats request) */
    uint64_t id;
    uint32_t count;            /* items */
    int dtype, ndims;          /* BF_DTYPE_*; 1..3 */
    uint32_t dims[3];          /* one item's shape */
    size_t item_values;        /* prod(dims) */
    const uint8_t *payload;    /* count x item_values values of dtype (unaligned) */
} bf_wire_request;

/* Decodes one request frame without trusting anything in it. Returns BF_WIRE_OK or the
 * fault's status with a message in why ("payload is 480 bytes; 1 x 11 x 11 float32
 * needs 484"); rq->id is set whenever the frame holds one (>= 16 bytes), else 0.
 * Checks structure, count <= max_items and (float32) that every value is finite. */
int bf_wire_decode_request(const void *frame, size_t len, uint32_t max_items,
                           bf_wire_request *rq, char *why, size_t whysz);
/* The 36 header bytes of rq (payload not included). */
void bf_wire_encode_request_header(const bf_wire_request *rq, uint8_t out[BF_WIRE_REQUEST_HEADER]);

typedef struct {
    int status;                /* bf_wire_status */
    uint64_t id;
    uint8_t model_hash[32];
    uint32_t count, values;    /* items answered, float32 values per item */
    const uint8_t *body;       /* results, message or JSON */
    size_t body_bytes;
} bf_wire_reply;

void bf_wire_encode_reply_header(const bf_wire_reply *rp, uint8_t out[BF_WIRE_REPLY_HEADER]);
/* Decodes a reply frame (as a client must: nothing trusted); BF_WIRE_OK or
 * BF_WIRE_BAD_REQUEST with why. For status OK the body must be count x values floats. */
int bf_wire_decode_reply(const void *frame, size_t len, bf_wire_reply *rp, char *why,
                         size_t whysz);

/* ---- The service (docs/serve.md §Service) --------------------------------------------
 * A ROUTER socket; the main thread decodes requests and queues them; worker threads
 * take dynamic batches (up to max_batch items, waiting at most max_delay_us after the
 * oldest queued request), each on its own copy of the current model, and hand replies
 * back to the main thread, which routes them by identity (ZMQ_ROUTER_MANDATORY). The
 * model file's directory is watched (inotify); a new file is loaded and validated
 * completely, then swapped in; batches finish on the model they started with. */
typedef struct {
    const char *model_path;    /* a peaks or structure checkpoint (or bare BraggNN) */
    const char *bind;          /* ZeroMQ endpoint, e.g. tcp://127.0.0.1:5555 */
    int max_batch;             /* items per batch (default 512) */
    int max_delay_us;          /* queueing delay for a fuller batch (default 200) */
    int busy_poll_us;          /* spin on the socket this long after a request while no
                                * batch is computing (default 0: block; docs/serve.md) */
    int core;                  /* >= 0: the thread in bf_server_run and ZeroMQ's I/O thread
                                * on this core (hwloc index), a lone request's whole path
                                * on one core (default -1: unbound; docs/serve.md) */
    int workers;               /* worker threads (default 1) */
    int threads;               /* compute threads per worker (0: cores / workers) */
    uint32_t max_request_items; /* items in one request (default 65536) */
    long max_queue_items;      /* queued items before UNAVAILABLE (default 1 << 20) */
    int watch;                 /* 1: swap in a new model file (inotify) */
    int quiet;                 /* 1: no log lines on stderr */
} bf_serve_config;

void bf_serve_config_defaults(bf_serve_config *c);

typedef struct bf_server bf_server;
/* Loads the model, binds and starts the workers and the watcher. */
bf_status bf_server_start(const bf_serve_config *c, bf_server **out, bf_error *err);
/* Serves until bf_server_stop; then drains: requests already received are answered
 * (later ones get UNAVAILABLE), replies are flushed, threads joined. With core >= 0 it
 * binds the calling thread to that core first (and leaves it bound). */
bf_status bf_server_run(bf_server *s, bf_error *err);
/* Async-signal-safe: asks bf_server_run to drain and return. */
void bf_server_stop(bf_server *s);
void bf_server_destroy(bf_server *s);
/* The stats reply's JSON (also what a BF_OP_STATS request returns); malloc'd. */
char *bf_server_stats_json(bf_server *s);

/* ---- The client (serve-client, tests, bench) ---------------------------------------- */
typedef struct {
    const char *connect;       /* endpoint */
    int concurrency;           /* connections (DEALER sockets), one thread each */
    int batch;                 /* patches per request */
    int inflight;              /* requests outstanding per connection (pipelining) */
    int dtype;                 /* BF_DTYPE_F32 or BF_DTYPE_U16 (counts rounded, clamped) */
    long repeat;               /* passes over the data */
    double rate_items_per_s;   /* 0: as fast as replies come */
    double timeout_s;          /* a reply later than this is an error (default 10) */
    int core;                  /* >= 0: the connection threads and ZeroMQ's I/O thread on
                                * this core (hwloc index; default -1: unbound) */
} bf_client_config;

typedef struct {
    long requests, items;
    long errors;               /* error replies (any status but OK) */
    long faults;               /* malformed, duplicate, unknown or missing replies */
    char first_fault[256];
    double wall_s, items_per_s;
    double latency_us[5];      /* round trip p50, p90, p99, p99.9, max */
    int n_hashes;              /* distinct model hashes seen, in order of first sight */
    uint8_t hashes[8][32];
    long hash_replies[8];
    int swap_order_ok;         /* 0: a request sent after a reply with a later model was
                                  answered by an earlier one */
    double *centre_rc;         /* (n patches, 2) the last pass's centres (peaks); owned */
} bf_client_result;

void bf_client_config_defaults(bf_client_config *c);
/* Sends every patch of p (repeat times) and checks every reply. */
bf_status bf_client_run(const bf_client_config *c, const bf_patches *p, bf_client_result *r,
                        bf_error *err);
void bf_client_result_free(bf_client_result *r);
/* One stats request: the JSON text (malloc'd). */
bf_status bf_client_stats(const char *connect, double timeout_s, char **json, bf_error *err);

#ifdef __cplusplus
}
#endif
#endif
