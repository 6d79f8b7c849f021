/* TensorBoard summaries: serialized Summary and GraphDef protocol buffers
 * (the .proto files in proto/, through protobuf-c) and the pieces of event files. Each
 * encoder returns malloc'ed bytes (*n of them), or NULL with status; errors
 * name `what` (the op or function) and the parameter. */
#ifndef MOONFLOW_SUMMARY_H
#define MOONFLOW_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* A Summary with one simple_value (a float, as TF writes it). */
uint8_t *mfi_summary_scalar(const char *what, const char *tag, double value, size_t *n,
                            mf_status *s);
/* A Summary with one histogram over TF's default bucket edges (count values;
 * NaN or infinite values are an error, as in TF). */
uint8_t *mfi_summary_histogram(const char *what, const char *tag, const double *values,
                               int64_t count, size_t *n, mf_status *s);
/* A Summary with one scalar string tensor for TensorBoard's text plugin. */
uint8_t *mfi_summary_text(const char *what, const char *tag, const void *text, size_t len,
                          size_t *n, mf_status *s);
/* A Summary with one string tensor (ndim, dims; strs[i] of lens[i] bytes
 * for each element) and the serialized SummaryMetadata given (none when
 * metadata_len is 0; unparsable metadata is an error). */
uint8_t *mfi_summary_strings(const char *what, const char *tag, const void *metadata,
                             size_t metadata_len, int ndim, const int64_t *dims,
                             const char *const *strs, const size_t *lens, size_t *n, mf_status *s);
/* A serialized SummaryMetadata naming a plugin ("text"); NULL: out of memory. */
uint8_t *mfi_summary_plugin_metadata(const char *plugin_name, size_t *n);
/* A Summary with one PNG image: height x width x channels (1 to 4) bytes,
 * row-major. */
uint8_t *mfi_summary_image(const char *what, const char *tag, const uint8_t *pixels, int height,
                           int width, int channels, size_t *n, mf_status *s);
/* Several serialized Summaries as one (their values in order); a tag
 * twice is an error, as in TF's MergeSummary. */
uint8_t *mfi_summary_merge(const char *what, int k, const void *const *parts, const size_t *lens,
                           size_t *n, mf_status *s);
/* True when bytes parse as a Summary; else false with status. */
bool mfi_summary_check(const char *what, const void *bytes, size_t len, mf_status *s);

/* The graph as a serialized GraphDef: each op's name, type, inputs ("op",
 * "op:i", "^ctrl"), device and attributes in AttrValue encoding, with
 * "_output_shapes" (TensorBoard's graph). mfi_graph_def_full with `full`
 * (mf_graph_export) adds the function library and "_mf_location" /
 * "_mf_f64". */
uint8_t *mfi_graph_def(const char *what, mf_graph *g, size_t *n, mf_status *s);
uint8_t *mfi_graph_def_full(const char *what, mf_graph *g, size_t *n, bool full, mf_status *s);

/* moonflow's dtype of a TensorFlow DataType value; false for one moonflow
 * does not have. */
bool mfi_dtype_from_tf(int tf, mf_dtype *dt);

/* Splits a tensor name "op:i" (or "op", output 0): the op name's length and
 * i; false when what follows the last ':' is not a number. */
bool mfi_split_tensor_name(const char *s, size_t *oplen, int *index);

/* Drops the unknown fields of an unpacked message and of every message in
 * it (free_unpacked still frees it): what comes from outside is written
 * back with the fields we know only, which every reader parses. */
struct ProtobufCMessage;
void mfi_proto_strip_unknown(struct ProtobufCMessage *m);

/* TF's default histogram bucket limits: -DBL_MAX, -1e20.., -1e-12, 0,
 * 1e-12, .. 1e20, DBL_MAX (count of them in *n; a static table). */
const double *mfi_histogram_default_limits(int *n);

/* PNG (8 bits per channel, zlib-deflated): malloc'ed, *n bytes. */
uint8_t *mfi_png_encode(const uint8_t *pixels, int height, int width, int channels, size_t *n);

#endif

/* ---------------------------------------------------------------- reading (tests, fuzzing) */

/* Walks the TFRecords of an event file's bytes, calling fn for each record's
 * data (fn returning false stops the walk). A record whose length or CRCs do
 * not check is an error naming `what` and the record's offset; a last
 * record cut short (a crash mid-write) ends the walk quietly when
 * allow_torn_tail. Returns the number of records, or -1 with status. */
int64_t mfi_tfrecord_walk(const char *what, const uint8_t *data, size_t n, bool allow_torn_tail,
                          bool (*fn)(void *ctx, const uint8_t *rec, size_t len), void *ctx,
                          mf_status *s);

/* What one serialized Event holds, for checks. */
typedef struct {
  int kind; /* 'v' file_version, 'g' graph_def, 's' summary, '?' other */
  double wall_time;
  int64_t step;
  int nvalues;         /* summary values */
  char tag[256];       /* the first value's tag (cut to fit) */
  int value_kind;      /* the first value's: 'f' simple, 'h' histogram, 't' tensor, 'i' image */
  double value;        /* simple_value; histogram: num; image: width * height; tensor: bytes */
  int64_t graph_nodes; /* graph_def: nodes */
} mfi_event_info;
/* A serialized Event parsed and packed again without unknown fields
 * (malloc'ed, *len bytes); NULL when it does not parse (or no memory). */
uint8_t *mfi_event_reencode(const uint8_t *bytes, size_t n, size_t *len);
/* False when rec does not parse as an Event. */
bool mfi_event_info_parse(const uint8_t *rec, size_t len, mfi_event_info *info);
