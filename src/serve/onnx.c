/* serve/onnx.c — a model as an ONNX file (serve.h; docs/serve.md §ONNX export; DESIGN §9).
 *
 * One graph builder per model kind (the table at the end of the file: a third model
 * adds an entry), each writing its nodes in the order of the model's forward pass with
 * the state_dict tensors as initialisers under their state_dict names. The per-sample
 * min-max scaling of the task layer is the first part of every graph, so a caller feeds
 * raw counts. The whole ModelProto is built in memory with serve/protobuf.c and written
 * atomically. */
#include "braggflow/serve.h"
#include "serve/serve_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IR_VERSION 8   /* 2021-07-30: what opset 17 needs at least */
#define OPSET 17

/* Field numbers of onnx/onnx.proto3 (docs/serve.md lists them). */
enum { MODEL_IR_VERSION = 1, MODEL_PRODUCER_NAME = 2, MODEL_PRODUCER_VERSION = 3,
       MODEL_DOC_STRING = 6, MODEL_GRAPH = 7, MODEL_OPSET_IMPORT = 8, MODEL_METADATA = 14 };
enum { OPSET_DOMAIN = 1, OPSET_VERSION = 2 };
enum { ENTRY_KEY = 1, ENTRY_VALUE = 2 };                          /* StringStringEntryProto */
enum { GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INITIALIZER = 5, GRAPH_INPUT = 11,
       GRAPH_OUTPUT = 12 };
enum { NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4, NODE_ATTRIBUTE = 5 };
enum { ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_INTS = 8, ATTR_TYPE = 20 };
enum { ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_INTS_TYPE = 7 };        /* AttributeType */
enum { TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW_DATA = 9 };
enum { DT_FLOAT = 1, DT_INT64 = 7, DT_FLOAT16 = 10 };             /* TensorProto.DataType */
enum { VALUE_NAME = 1, VALUE_TYPE = 2 };                          /* ValueInfoProto */
enum { TYPE_TENSOR = 1 };                                         /* TypeProto.tensor_type */
enum { TENSOR_ELEM_TYPE = 1, TENSOR_SHAPE = 2 };                  /* TypeProto.Tensor */
enum { SHAPE_DIM = 1 };                                           /* TensorShapeProto */
enum { DIM_VALUE = 1, DIM_PARAM = 2 };                            /* .Dimension */

#define BATCH (-1)     /* a dims entry for the dynamic batch dimension, dim_param "N" */
#define NAME_LEN 160

/* A graph being built: GraphProto's repeated fields, each in its own buffer until the
 * model is assembled (nodes and initialisers interleave while the builder walks the
 * forward pass). */
typedef struct {
    bf_buf nodes, inits, io;
    const bf_params *p;
    int fp16;
    int n_nodes;
    char io_note[512];        /* the graph's inputs and outputs in words (metadata) */
    bf_error *err;
    bf_status st;
} graph;

static void fail(graph *g, bf_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(graph *g, bf_status code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g->st == BF_OK)
        g->st = bf_error_set(g->err, code, "%s", msg);
}

/* ---- values, tensors, nodes ------------------------------------------------------- */

/* A graph input or output (field GRAPH_INPUT / GRAPH_OUTPUT): float32, dims with BATCH
 * for the dynamic "N". */
static void value_info(graph *g, int field, const char *name, const int64_t *dims, int nd)
{
    bf_buf *b = &g->io;
    size_t vi = bf_pb_begin(b, field);
    bf_pb_string(b, VALUE_NAME, name);
    size_t type = bf_pb_begin(b, VALUE_TYPE), tensor = bf_pb_begin(b, TYPE_TENSOR);
    bf_pb_int(b, TENSOR_ELEM_TYPE, DT_FLOAT);
    size_t shape = bf_pb_begin(b, TENSOR_SHAPE);
    for (int d = 0; d < nd; d++) {
        size_t dim = bf_pb_begin(b, SHAPE_DIM);
        if (dims[d] == BATCH)
            bf_pb_string(b, DIM_PARAM, "N");
        else
            bf_pb_int(b, DIM_VALUE, dims[d]);
        bf_pb_end(b, dim);
    }
    bf_pb_end(b, shape);
    bf_pb_end(b, tensor);
    bf_pb_end(b, type);
    bf_pb_end(b, vi);
}

/* Opens an initialiser: name, dims, data type, and the raw_data tag and length; the
 * caller appends nbytes little-endian bytes and closes it with bf_pb_end. */
static size_t tensor_begin(graph *g, const char *name, const int64_t *dims, int nd, int dtype,
                           size_t nbytes)
{
    size_t t = bf_pb_begin(&g->inits, GRAPH_INITIALIZER);
    bf_pb_packed_int64(&g->inits, TENSOR_DIMS, dims, (size_t)nd);
    bf_pb_int(&g->inits, TENSOR_DATA_TYPE, dtype);
    bf_pb_string(&g->inits, TENSOR_NAME, name);
    bf_pb_tag(&g->inits, TENSOR_RAW_DATA, BF_PB_LEN);
    bf_pb_varint(&g->inits, nbytes);
    return t;
}

/* n values of `size` bytes each, little-endian whatever the host (raw_data's order). */
static void append_le(bf_buf *b, const void *v, size_t n, size_t size)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    bf_buf_append(b, v, n * size);
#else
    const unsigned char *p = v;
    for (size_t i = 0; i < n; i++)
        for (size_t k = size; k-- > 0;)
            bf_buf_putc(b, (char)p[i * size + k]);
#endif
}

static void init_int64(graph *g, const char *name, const int64_t *v, int n)
{
    int64_t dims[1] = {n};
    size_t t = tensor_begin(g, name, dims, 1, DT_INT64, (size_t)n * 8);
    append_le(&g->inits, v, (size_t)n, 8);
    bf_pb_end(&g->inits, t);
}

/* A float32 scalar (no dims). */
static void init_scalar(graph *g, const char *name, float v)
{
    size_t t = tensor_begin(g, name, NULL, 0, DT_FLOAT, 4);
    append_le(&g->inits, &v, 1, 4);
    bf_pb_end(&g->inits, t);
}

static size_t node_begin(graph *g, const char *op)
{
    char name[48];
    snprintf(name, sizeof name, "%s_%d", op, g->n_nodes++);
    size_t n = bf_pb_begin(&g->nodes, GRAPH_NODE);
    bf_pb_string(&g->nodes, NODE_NAME, name);
    bf_pb_string(&g->nodes, NODE_OP_TYPE, op);
    return n;
}

static void node_in(graph *g, const char *v) { bf_pb_string(&g->nodes, NODE_INPUT, v); }
static void node_out(graph *g, const char *v) { bf_pb_string(&g->nodes, NODE_OUTPUT, v); }
static void node_end(graph *g, size_t n) { bf_pb_end(&g->nodes, n); }

static void attr_int(graph *g, const char *name, int64_t v)
{
    size_t a = bf_pb_begin(&g->nodes, NODE_ATTRIBUTE);
    bf_pb_string(&g->nodes, ATTR_NAME, name);
    bf_pb_int(&g->nodes, ATTR_TYPE, ATTR_INT);
    bf_pb_int(&g->nodes, ATTR_I, v);
    bf_pb_end(&g->nodes, a);
}

static void attr_float(graph *g, const char *name, float v)
{
    size_t a = bf_pb_begin(&g->nodes, NODE_ATTRIBUTE);
    bf_pb_string(&g->nodes, ATTR_NAME, name);
    bf_pb_int(&g->nodes, ATTR_TYPE, ATTR_FLOAT);
    bf_pb_float(&g->nodes, ATTR_F, v);
    bf_pb_end(&g->nodes, a);
}

static void attr_ints(graph *g, const char *name, const int64_t *v, int n)
{
    size_t a = bf_pb_begin(&g->nodes, NODE_ATTRIBUTE);
    bf_pb_string(&g->nodes, ATTR_NAME, name);
    bf_pb_int(&g->nodes, ATTR_TYPE, ATTR_INTS_TYPE);
    bf_pb_packed_int64(&g->nodes, ATTR_INTS, v, (size_t)n);
    bf_pb_end(&g->nodes, a);
}

/* A node without attributes: inputs a and b (b may be NULL), one output. */
static void op2(graph *g, const char *op, const char *out, const char *a, const char *b)
{
    size_t n = node_begin(g, op);
    node_in(g, a);
    if (b)
        node_in(g, b);
    node_out(g, out);
    node_end(g, n);
}

/* ---- weights ---------------------------------------------------------------------- */

/* The state_dict tensor `name` as an initialiser of that name, and the value a node
 * reads: the initialiser itself, or with fp16 the float32 output of its Cast, which
 * ends in ".float32" (written to buf). Weights come from the host master copy. */
static const char *weight(graph *g, const char *name, char buf[NAME_LEN])
{
    const bf_param_info *pi = bf_params_find(g->p, name);
    if (!pi) {
        fail(g, BF_ERR_INVALID, "model has no tensor '%s'", name);
        return name;
    }
    const float *v = g->p->value + pi->offset;
    for (size_t i = 0; i < pi->count; i++)
        if (!isfinite(v[i])) {
            fail(g, BF_ERR_INVALID, "tensor '%s' element %zu is not finite", name, i);
            return name;
        }
    int64_t dims[4];
    for (int d = 0; d < pi->ndim; d++)
        dims[d] = pi->shape[d];
    if (!g->fp16) {
        size_t t = tensor_begin(g, name, dims, pi->ndim, DT_FLOAT, pi->count * 4);
        append_le(&g->inits, v, pi->count, 4);
        bf_pb_end(&g->inits, t);
        return name;
    }
    uint16_t *h = malloc(pi->count * sizeof *h + 1);
    if (!h) {
        fail(g, BF_ERR_NOMEM, "tensor '%s': out of memory for %zu float16 values", name,
             pi->count);
        return name;
    }
    for (size_t i = 0; i < pi->count; i++) {
        h[i] = bf_half_from_float(v[i]);
        if ((h[i] & 0x7c00) == 0x7c00) { /* a finite weight would turn into infinity */
            fail(g, BF_ERR_RANGE, "tensor '%s' element %zu = %g does not fit float16 "
                 "(|x| < 65520); export it without --fp16", name, i, (double)v[i]);
            break;
        }
    }
    size_t t = tensor_begin(g, name, dims, pi->ndim, DT_FLOAT16, pi->count * 2);
    append_le(&g->inits, h, pi->count, 2);
    bf_pb_end(&g->inits, t);
    free(h);
    snprintf(buf, NAME_LEN, "%s.float32", name);
    size_t n = node_begin(g, "Cast");
    node_in(g, name);
    node_out(g, buf);
    attr_int(g, "to", DT_FLOAT);
    node_end(g, n);
    return buf;
}

/* ---- layers ------------------------------------------------------------------------ */

/* Per-sample min-max scaling over `axes` of x, exactly bf_minmax_scale_rows (task.h):
 * y = (x - min) * (1 / (max - min)), reciprocal then product as there, and 0 for a
 * constant sample: Where(max - min > 0, 1 / (max - min), 0) makes its factor 0 (the
 * reciprocal's inf is never used). */
static void minmax_scale(graph *g, const char *x, const int64_t *axes, int n_axes,
                         const char *y)
{
    init_scalar(g, "scale/zero", 0.0f);
    static const char *const reduce[2][2] = {{"ReduceMin", "scale/min"},
                                             {"ReduceMax", "scale/max"}};
    for (int r = 0; r < 2; r++) {
        size_t n = node_begin(g, reduce[r][0]);
        node_in(g, x);
        node_out(g, reduce[r][1]);
        attr_ints(g, "axes", axes, n_axes); /* an attribute up to opset 17 (input from 18) */
        attr_int(g, "keepdims", 1);
        node_end(g, n);
    }
    op2(g, "Sub", "scale/span", "scale/max", "scale/min");
    op2(g, "Greater", "scale/spread", "scale/span", "scale/zero");
    op2(g, "Reciprocal", "scale/inv_span", "scale/span", NULL);
    size_t n = node_begin(g, "Where");
    node_in(g, "scale/spread");
    node_in(g, "scale/inv_span");
    node_in(g, "scale/zero");
    node_out(g, "scale/factor");
    node_end(g, n);
    op2(g, "Sub", "scale/shifted", x, "scale/min");
    op2(g, "Mul", y, "scale/shifted", "scale/factor");
}

/* Conv over `spatial` axes (1 or 2), square kernel k, stride, no padding, with bias:
 * layer.weight (C_out, C_in, k[, k]) and layer.bias (C_out) as PyTorch stores them. */
static void conv(graph *g, const char *out, const char *in, const char *layer, int spatial,
                 int k, int stride)
{
    char wn[NAME_LEN], bn[NAME_LEN], wb[NAME_LEN], bb[NAME_LEN];
    snprintf(wn, sizeof wn, "%s.weight", layer);
    snprintf(bn, sizeof bn, "%s.bias", layer);
    const char *w = weight(g, wn, wb), *b = weight(g, bn, bb);
    int64_t ks[2] = {k, k}, strides[2] = {stride, stride}, pads[4] = {0, 0, 0, 0};
    size_t n = node_begin(g, "Conv");
    node_in(g, in);
    node_in(g, w);
    node_in(g, b);
    node_out(g, out);
    attr_ints(g, "kernel_shape", ks, spatial);
    attr_ints(g, "strides", strides, spatial);
    attr_ints(g, "pads", pads, 2 * spatial);
    node_end(g, n);
}

/* Linear: Gemm with transB = 1 takes PyTorch's (n_out, n_in) weight as it is (DESIGN §9). */
static void linear(graph *g, const char *out, const char *in, const char *layer)
{
    char wn[NAME_LEN], bn[NAME_LEN], wb[NAME_LEN], bb[NAME_LEN];
    snprintf(wn, sizeof wn, "%s.weight", layer);
    snprintf(bn, sizeof bn, "%s.bias", layer);
    const char *w = weight(g, wn, wb), *b = weight(g, bn, bb);
    size_t n = node_begin(g, "Gemm");
    node_in(g, in);
    node_in(g, w);
    node_in(g, b);
    node_out(g, out);
    attr_int(g, "transB", 1);
    node_end(g, n);
}

static void leaky_relu(graph *g, const char *out, const char *in, float slope)
{
    size_t n = node_begin(g, "LeakyRelu");
    node_in(g, in);
    node_out(g, out);
    attr_float(g, "alpha", slope);
    node_end(g, n);
}

/* MaxPool1d(2, 2): ONNX's strides default to 1, not to the kernel, so they are written
 * (DESIGN §9). */
static void maxpool2(graph *g, const char *out, const char *in)
{
    const int64_t two[1] = {2};
    size_t n = node_begin(g, "MaxPool");
    node_in(g, in);
    node_out(g, out);
    attr_ints(g, "kernel_shape", two, 1);
    attr_ints(g, "strides", two, 1);
    node_end(g, n);
}

static void transpose12(graph *g, const char *out, const char *in)
{
    const int64_t perm[3] = {0, 2, 1};
    size_t n = node_begin(g, "Transpose");
    node_in(g, in);
    node_out(g, out);
    attr_ints(g, "perm", perm, 3);
    node_end(g, n);
}

static void flatten(graph *g, const char *out, const char *in)
{
    size_t n = node_begin(g, "Flatten");
    node_in(g, in);
    node_out(g, out);
    attr_int(g, "axis", 1); /* (N, everything else in C order): PyTorch's view(B, -1) */
    node_end(g, n);
}

/* ---- BraggNN (src/nn/models/braggnn.c, DESIGN §7) -------------------------------------- */

#define BRAGGNN_SLOPE 0.01f

static void braggnn_graph(graph *g, const bf_model *m)
{
    int S = bf_model_dim(m->kind, &m->shape, "patch"), H = S - 2;
    int64_t in_dims[4] = {BATCH, 1, S, S}, out_dims[2] = {BATCH, 2};
    value_info(g, GRAPH_INPUT, "patch", in_dims, 4);
    value_info(g, GRAPH_OUTPUT, "ploc", out_dims, 2);
    snprintf(g->io_note, sizeof g->io_note,
             "patch (N, 1, %d, %d) float32 raw counts, min-max scaled per patch inside the "
             "graph -> ploc (N, 2) float32 = (col, row) / %d of the peak centre, column "
             "first, pixel k spanning [k, k+1)", S, S, S);

    const int64_t axes[3] = {1, 2, 3};
    minmax_scale(g, "patch", axes, 3, "patch/scaled");
    conv(g, "cnn_layers.0/out", "patch/scaled", "cnn_layers.0", 2, 3, 1); /* (N, 64, H, H) */

    /* Non-local block on x = cnn_layers.0/out with P = H^2 positions (braggnn.c, nn.h
     * nonlocal_forward): A = softmax over the last axis of theta^T phi (no 1/sqrt(d)),
     * y = g A^T, out = W(y) + x. Reshape's 0 copies the batch, so it stays dynamic. */
    const int64_t flat[3] = {0, 32, -1}, map[4] = {0, 32, H, H};
    init_int64(g, "nlb/flat_shape", flat, 3);
    init_int64(g, "nlb/map_shape", map, 4);
    static const char *const branch[3][3] = {
        {"nlb.theta_layer", "nlb/theta", "nlb/theta_flat"},
        {"nlb.phi_layer", "nlb/phi", "nlb/phi_flat"},
        {"nlb.g_layer", "nlb/g", "nlb/g_flat"},
    };
    for (int i = 0; i < 3; i++) {
        conv(g, branch[i][1], "cnn_layers.0/out", branch[i][0], 2, 1, 1);  /* (N, 32, H, H) */
        op2(g, "Reshape", branch[i][2], branch[i][1], "nlb/flat_shape");   /* (N, 32, P) */
    }
    transpose12(g, "nlb/theta_t", "nlb/theta_flat");                    /* (N, P, 32) */
    op2(g, "MatMul", "nlb/logits", "nlb/theta_t", "nlb/phi_flat");      /* (N, P, P) */
    size_t n = node_begin(g, "Softmax");
    node_in(g, "nlb/logits");
    node_out(g, "nlb/attention");
    attr_int(g, "axis", -1); /* opset >= 13: this axis alone (DESIGN §9) */
    node_end(g, n);
    transpose12(g, "nlb/attention_t", "nlb/attention");
    op2(g, "MatMul", "nlb/y", "nlb/g_flat", "nlb/attention_t");         /* (N, 32, P) */
    op2(g, "Reshape", "nlb/y_map", "nlb/y", "nlb/map_shape");           /* (N, 32, H, H) */
    conv(g, "nlb/w_y", "nlb/y_map", "nlb.out_cnn", 2, 1, 1);            /* (N, 64, H, H) */
    op2(g, "Add", "nlb/out", "nlb/w_y", "cnn_layers.0/out");
    leaky_relu(g, "nlb/act", "nlb/out", BRAGGNN_SLOPE);

    conv(g, "cnn_layers.2/out", "nlb/act", "cnn_layers.2", 2, 3, 1);
    leaky_relu(g, "cnn_layers.2/act", "cnn_layers.2/out", BRAGGNN_SLOPE);
    conv(g, "cnn_layers.4/out", "cnn_layers.2/act", "cnn_layers.4", 2, 3, 1);
    leaky_relu(g, "cnn_layers.4/act", "cnn_layers.4/out", BRAGGNN_SLOPE);
    flatten(g, "flat", "cnn_layers.4/act");                             /* (N, 8 (S-6)^2) */
    char in[NAME_LEN] = "flat";
    for (int j = 0; j < 5; j++) { /* dense_layers.0 .. .8, LeakyReLU after all but the last */
        char layer[32], out[NAME_LEN];
        snprintf(layer, sizeof layer, "dense_layers.%d", 2 * j);
        if (j == 4) {
            linear(g, "ploc", in, layer);
            break;
        }
        snprintf(out, sizeof out, "%s/out", layer);
        linear(g, out, in, layer);
        snprintf(in, sizeof in, "%s/act", layer);
        leaky_relu(g, in, out, BRAGGNN_SLOPE);
    }
}

/* ---- structure_net (src/nn/models/structure_net.c, DESIGN §4) ------------------------- */

#define STRUCTURE_SLOPE 0.1f

static void structure_net_graph(graph *g, const bf_model *m)
{
    int L = m->input_len, C = m->n_out - 4;
    int64_t in_dims[2] = {BATCH, L}, logit_dims[2] = {BATCH, C}, reg_dims[2] = {BATCH, 4};
    value_info(g, GRAPH_INPUT, "pattern", in_dims, 2);
    value_info(g, GRAPH_OUTPUT, "logits", logit_dims, 2);
    value_info(g, GRAPH_OUTPUT, "regression", reg_dims, 2);
    snprintf(g->io_note, sizeof g->io_note,
             "pattern (N, %d) float32 raw intensities, min-max scaled per pattern inside the "
             "graph -> logits (N, %d) float32 (classes in class_names order), regression "
             "(N, 4) float32 = a, c, alpha scaled by label_offset and label_scale, then "
             "log sigma^2", L, C);

    const int64_t axes[1] = {1}, channels[3] = {0, 1, -1};
    minmax_scale(g, "pattern", axes, 1, "pattern/scaled");
    init_int64(g, "pattern/channel_shape", channels, 3);
    op2(g, "Reshape", "pattern/channels", "pattern/scaled", "pattern/channel_shape"); /* (N,1,L) */
    /* Conv -> LeakyReLU -> MaxPool(2, 2) as the seed orders them (the backend pools first:
     * the same, LeakyReLU being monotonic) */
    conv(g, "conv1/out", "pattern/channels", "conv1", 1, 3, 1);
    leaky_relu(g, "conv1/act", "conv1/out", STRUCTURE_SLOPE);
    maxpool2(g, "conv1/pool", "conv1/act");
    conv(g, "conv2/out", "conv1/pool", "conv2", 1, 4, 2);
    leaky_relu(g, "conv2/act", "conv2/out", STRUCTURE_SLOPE);
    maxpool2(g, "conv2/pool", "conv2/act");
    flatten(g, "flat", "conv2/pool");                                   /* (N, 32 P2) */
    linear(g, "fc1/out", "flat", "fc1");
    leaky_relu(g, "fc1/act", "fc1/out", STRUCTURE_SLOPE);
    linear(g, "logits", "fc1/act", "fc2");
    linear(g, "regression", "fc1/act", "regression_layer");
}

/* ---- the model -------------------------------------------------------------------- */

static const struct {
    const char *kind;
    void (*build)(graph *g, const bf_model *m);
} builders[] = {
    {"braggnn", braggnn_graph},
    {"structure_net", structure_net_graph},
};

#define MAX_META (8 + BF_CKPT_MAX_EXTRA)

typedef struct {
    const char *key, *value;
} meta_entry;

/* metadata_props: braggflow's keys, then the checkpoint's task metadata verbatim. Keys
 * must be distinct (onnx.proto3); a task key equal to one of ours is an error. */
static bf_status metadata(const bf_model *m, const bf_checkpoint_info *info, const graph *g,
                          bf_buf *b, bf_error *err)
{
    char shape[256], epoch[32], val_loss[32];
    bf_model_shape_format(m->kind, &m->shape, shape, sizeof shape);
    meta_entry e[MAX_META];
    int n = 0;
    e[n++] = (meta_entry){"braggflow_version", BF_VERSION};
    e[n++] = (meta_entry){"model", m->kind->name};
    e[n++] = (meta_entry){"shape", shape};
    e[n++] = (meta_entry){"onnx_io", g->io_note};
    e[n++] = (meta_entry){"onnx_weights", g->fp16 ? "float16 initialisers, each Cast to float32"
                                                  : "float32"};
    if (info && !info->bare) {
        snprintf(epoch, sizeof epoch, "%d", info->epoch);
        e[n++] = (meta_entry){"epoch", epoch};
        if (isfinite(info->val_loss)) {
            snprintf(val_loss, sizeof val_loss, "%.9g", info->val_loss);
            e[n++] = (meta_entry){"val_loss", val_loss};
        }
        if (info->train_sha256[0])
            e[n++] = (meta_entry){"train_sha256", info->train_sha256};
    }
    for (int k = 0; info && k < info->n_extra && n < MAX_META; k++)
        e[n++] = (meta_entry){info->extra[k].key, info->extra[k].value};
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(e[i].key, e[j].key))
                return bf_error_set(err, BF_ERR_INVALID, "metadata key '%s' twice (a task key "
                                    "equal to one of the export's)", e[i].key);
    for (int i = 0; i < n; i++) {
        size_t p = bf_pb_begin(b, MODEL_METADATA);
        bf_pb_string(b, ENTRY_KEY, e[i].key);
        bf_pb_string(b, ENTRY_VALUE, e[i].value);
        bf_pb_end(b, p);
    }
    return BF_OK;
}

static bf_status write_file(const char *path, const bf_buf *b, bf_error *err)
{
    bf_atomic_file af = {0};
    bf_status st = bf_atomic_begin(&af, path, 1, err);
    if (st != BF_OK)
        return st;
    if (fwrite(b->data, 1, b->len, af.fp) != b->len || fflush(af.fp) != 0) {
        bf_atomic_abort(&af);
        return bf_error_set(err, BF_ERR_IO, "%s: write failed", path);
    }
    return bf_atomic_commit(&af, err);
}

bf_status bf_onnx_export(bf_model *m, const bf_checkpoint_info *info, const bf_onnx_options *o,
                         const char *path, bf_error *err)
{
    void (*build)(graph *, const bf_model *) = NULL;
    for (size_t i = 0; i < sizeof builders / sizeof builders[0]; i++)
        if (!strcmp(builders[i].kind, m->kind->name))
            build = builders[i].build;
    if (!build)
        return bf_error_set(err, BF_ERR_UNSUPPORTED, "%s: model '%s' has no ONNX graph "
                            "(exportable: braggnn, structure_net)", path, m->kind->name);
    bf_status st = bf_model_params_download(m, 0, err);
    if (st != BF_OK)
        return st;
    graph g = {.p = &m->params, .fp16 = o && o->fp16, .err = err};
    bf_buf model = {0};
    build(&g, m);
    st = g.st;
    if (st == BF_OK) {
        bf_pb_int(&model, MODEL_IR_VERSION, IR_VERSION);
        bf_pb_string(&model, MODEL_PRODUCER_NAME, "braggflow");
        bf_pb_string(&model, MODEL_PRODUCER_VERSION, BF_VERSION);
        bf_pb_string(&model, MODEL_DOC_STRING, m->kind->description);
        size_t gr = bf_pb_begin(&model, MODEL_GRAPH);
        bf_buf_append(&model, g.nodes.data, g.nodes.len);
        bf_pb_string(&model, GRAPH_NAME, m->kind->name);
        bf_buf_append(&model, g.inits.data, g.inits.len);
        bf_buf_append(&model, g.io.data, g.io.len);
        bf_pb_end(&model, gr);
        size_t os = bf_pb_begin(&model, MODEL_OPSET_IMPORT);
        bf_pb_string(&model, OPSET_DOMAIN, "");
        bf_pb_int(&model, OPSET_VERSION, OPSET);
        bf_pb_end(&model, os);
        st = metadata(m, info, &g, &model, err);
    }
    bf_buf *bufs[] = {&g.nodes, &g.inits, &g.io, &model};
    for (size_t i = 0; st == BF_OK && i < sizeof bufs / sizeof bufs[0]; i++)
        st = bf_buf_check(bufs[i], path, err);
    if (st == BF_OK)
        st = write_file(path, &model, err);
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        bf_buf_free(bufs[i]);
    if (st != BF_OK && g.st != BF_OK)
        bf_error_prefix(err, "%s", path);
    return st;
}
