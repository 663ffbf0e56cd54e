/* serve/serve_internal.h — what the serve layer's files share (not public). */
#ifndef BF_SERVE_INTERNAL_H
#define BF_SERVE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "braggflow/core.h"

/* ---- Protocol-buffer encoding (serve/protobuf.c; docs/serve.md §ONNX) -----------------
 * The wire format of https://protobuf.dev/programming-guides/encoding/, only what the
 * ONNX export writes: a message is a sequence of fields, each a tag
 * varint(field << 3 | wire type) followed by a varint (int32, int64, enum), four
 * little-endian bytes (float) or a varint length and that many bytes (strings, bytes,
 * packed repeated numbers, nested messages). Fields are written as given (proto3 readers
 * accept any order and defaults written out). Everything appends to a bf_buf, so an
 * allocation failure shows once, at bf_buf_check. */
enum { BF_PB_VARINT = 0, BF_PB_I64 = 1, BF_PB_LEN = 2, BF_PB_I32 = 5 };

/* Base-128 little-endian groups, high bit = more follows (1..10 bytes). */
void bf_pb_varint(bf_buf *b, uint64_t v);
void bf_pb_tag(bf_buf *b, int field, int wire_type);
/* int32/int64/enum fields; a negative value is its 64-bit two's complement (10 bytes),
 * as protobuf encodes int32 and int64. */
void bf_pb_int(bf_buf *b, int field, int64_t v);
void bf_pb_float(bf_buf *b, int field, float v);
void bf_pb_bytes(bf_buf *b, int field, const void *bytes, size_t n);
void bf_pb_string(bf_buf *b, int field, const char *s);
/* repeated int64 as one packed field (proto3's default encoding for repeated scalars). */
void bf_pb_packed_int64(bf_buf *b, int field, const int64_t *v, size_t n);
/* A nested message: bf_pb_begin writes the tag and returns a mark; the fields follow;
 * bf_pb_end(mark) inserts their length before them. Nest freely, end in reverse order. */
size_t bf_pb_begin(bf_buf *b, int field);
void bf_pb_end(bf_buf *b, size_t mark);

#endif
