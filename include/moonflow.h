/*
 * moonflow — public C API.
 *
 * A dataflow-graph runtime in the style of TensorFlow 1.x: build a graph of
 * operations, then run parts of it in a session that owns variable values.
 *
 * Conventions
 *   - Opaque handles are created and destroyed by the API; every destroy
 *     function accepts NULL.
 *   - Functions that can fail take an `mf_status *` last; on success it is
 *     cleared (code MF_OK), on failure it holds a code and a message that
 *     names the operation involved. The library never exits or aborts on
 *     user input.
 *   - No argument crashes the library: a NULL handle or pointer, a negative
 *     count, an index out of range is an MF_INVALID_ARGUMENT status naming
 *     the function and the parameter, or, for functions without a status,
 *     the failure value their comment gives (NULL, 0, -1). A NULL status is
 *     allowed too (the error is then not reported). tests/c/test_abuse.c
 *     holds every function to this.
 *   - Axes, slice starts and index-valued tensor contents (gather ids,
 *     one_hot ids, argmax results) count from 1, as in Lua; negative axes
 *     count from the end (-1 is the last). Raw buffers are C memory.
 */
#ifndef MOONFLOW_H
#define MOONFLOW_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MF_VERSION_MAJOR 0
#define MF_VERSION_MINOR 1
#define MF_VERSION_PATCH 0
#define MF_VERSION_STRING "0.1.0"

/* Marks the public API: the library is built with hidden visibility, so
 * only these symbols leave libmoonflow.so. */
#ifndef MF_API
#if defined(__GNUC__) || defined(__clang__)
#define MF_API __attribute__((visibility("default")))
#else
#define MF_API
#endif
#endif

/* The version of the library actually linked (may differ from the header). */
MF_API const char *mf_version(void);

/* ---------------------------------------------------------------- dtypes */

typedef enum {
  MF_FLOAT32 = 0,
  MF_FLOAT64,
  MF_INT32,
  MF_INT64,
  MF_BOOL,
  MF_UINT8,
  MF_STRING, /* byte strings (any bytes, any length), in host memory */
  MF_NUM_DTYPES
} mf_dtype;

MF_API const char *mf_dtype_name(mf_dtype dt);                 /* "float32", ... */
MF_API int mf_dtype_from_name(const char *name, mf_dtype *dt); /* 1 if known */
MF_API size_t mf_dtype_size(mf_dtype dt);

/* ---------------------------------------------------------------- status */

typedef enum {
  MF_OK = 0,
  MF_INVALID_ARGUMENT,    /* shape, dtype, axis, bad feed */
  MF_FAILED_PRECONDITION, /* uninitialized variable, closed session */
  MF_OUT_OF_RANGE,        /* index out of range at run time */
  MF_NOT_FOUND,
  MF_RESOURCE_EXHAUSTED, /* out of memory */
  MF_UNIMPLEMENTED,
  MF_INTERNAL
} mf_code;

typedef struct mf_status mf_status;

MF_API mf_status *mf_status_new(void);
MF_API void mf_status_delete(mf_status *s);
/* A NULL status reads as MF_INVALID_ARGUMENT with a message saying so. */
MF_API mf_code mf_status_code(const mf_status *s);
MF_API const char *mf_status_message(const mf_status *s); /* "" when MF_OK */
MF_API void mf_status_set(mf_status *s, mf_code code, const char *message);

/* ---------------------------------------------------------------- tensors */

#define MF_MAX_DIMS 8

/* A dense, row-major, contiguous value with a reference-counted buffer. */
typedef struct mf_tensor mf_tensor;

/* A new tensor that owns zero-filled memory allocated by the library. */
MF_API mf_tensor *mf_tensor_new(mf_dtype dt, int ndim, const int64_t *dims, mf_status *s);

/* A new tensor that borrows `data` (64-byte alignment is not required).
 * The library never writes to it; `dealloc(data, arg)` runs when the last
 * reference goes (dealloc may be NULL). The memory must stay valid until
 * then: a value fetched from a run (an Identity of a fed tensor, say) may
 * share it. Variables never keep it: assigning one copies. */
MF_API mf_tensor *mf_tensor_new_borrowed(mf_dtype dt, int ndim, const int64_t *dims, void *data,
                                         void (*dealloc)(void *data, void *arg), void *arg,
                                         mf_status *s);

MF_API mf_tensor *mf_tensor_retain(mf_tensor *t); /* another reference; returns t */
MF_API void mf_tensor_delete(mf_tensor *t);       /* drops one reference */

/* For a NULL tensor: MF_NUM_DTYPES, rank -1, NULL dims, 0 elements and
 * bytes, NULL data. A shape whose non-zero dimensions multiply past int64
 * is refused where a tensor is made. */
MF_API mf_dtype mf_tensor_dtype(const mf_tensor *t);
MF_API int mf_tensor_ndim(const mf_tensor *t);
MF_API const int64_t *mf_tensor_dims(const mf_tensor *t);
MF_API int64_t mf_tensor_numel(const mf_tensor *t);
MF_API size_t mf_tensor_nbytes(const mf_tensor *t);
MF_API const void *mf_tensor_data(const mf_tensor *t);

/* Writable data: copies the buffer first when anything else shares it
 * (another tensor, a variable, a fetched value), so a write never shows
 * through any other value. NULL with a status on failure. */
MF_API void *mf_tensor_mutable_data(mf_tensor *t, mf_status *s);

/* String tensors (MF_STRING): mf_tensor_new makes one of empty strings,
 * which mf_tensor_set_string fills (copying the bytes) while the caller
 * holds the only reference; mf_tensor_string reads element i (flat index
 * from 0): its bytes (not NUL-terminated; "" when empty) and *len.
 * mf_tensor_data and mf_tensor_mutable_data do not apply to strings (NULL
 * and an error). NULL for a NULL or non-string tensor or an index out of
 * range. */
MF_API int mf_tensor_set_string(mf_tensor *t, int64_t i, const void *bytes, size_t len,
                                mf_status *s);
MF_API const char *mf_tensor_string(const mf_tensor *t, int64_t i, size_t *len);

/* Views sharing the buffer: a new shape with the same element count, and the
 * i-th sub-tensor along the first dimension (i counts from 0 here). */
MF_API mf_tensor *mf_tensor_reshape(mf_tensor *t, int ndim, const int64_t *dims, mf_status *s);
MF_API mf_tensor *mf_tensor_subtensor(mf_tensor *t, int64_t i, mf_status *s);

/* ---------------------------------------------------------------- graphs */

typedef struct mf_graph mf_graph;
typedef struct mf_op mf_op;
typedef struct mf_op_desc mf_op_desc;

/* One output of an operation. */
typedef struct {
  mf_op *op;
  int index; /* from 0 */
} mf_output;

/* Operation names are at most this many bytes (C strings: no NUL inside). */
#define MF_MAX_NAME 1023

MF_API mf_graph *mf_graph_new(void);
MF_API void mf_graph_delete(mf_graph *g); /* drops the caller's reference */
/* Another reference (a binding's object holding the graph); returns g, NULL for NULL. */
MF_API mf_graph *mf_graph_retain(mf_graph *g);

MF_API int mf_graph_num_ops(const mf_graph *g); /* 0 for NULL */
/* In creation order, from 0; NULL past the end or for a NULL graph. */
MF_API mf_op *mf_graph_op(const mf_graph *g, int i);
MF_API mf_op *mf_graph_op_by_name(const mf_graph *g, const char *name); /* NULL: none */

/* TensorFlow's unique-name rule: `name` itself if unused, else name_1,
 * name_2, ... (case-insensitively unique). Marks the result used. Returns the
 * length of the name (what was written is truncated to size-1), like
 * snprintf: a result >= size means buf was too small. -1 for a NULL graph
 * or name, or a NULL buf with size > 0. */
MF_API int mf_graph_unique_name(mf_graph *g, const char *name, char *buf, size_t size);

/* Graph-level random seed (0 = none; also for a NULL graph). Random ops
 * record seeds at creation. */
MF_API void mf_graph_set_seed(mf_graph *g, int64_t seed);
MF_API int64_t mf_graph_seed(const mf_graph *g);

/* Functions: the branches of If and the condition and body of While (and
 * their gradients). A function is a slice of the graph's own operations:
 * its arguments are Placeholder operations of the graph (distinct, each
 * output 0), its results are outputs computed from them, and its targets
 * (may be none) are operations that must run when it is called. A call
 * feeds the arguments and runs what the results and targets need, as a
 * session run would: operations reachable from the results that are not
 * behind an argument run at each call (constants, variable reads).
 * Gradients flow only through the arguments. Names are unique per graph
 * (as TensorFlow's function library): 1 on success, else 0 and a status. */
MF_API int mf_graph_add_function(mf_graph *g, const char *name, int nargs, mf_op *const *args,
                                 int nresults, const mf_output *results, int ntargets,
                                 mf_op *const *targets, mf_status *s);
/* 1 when the graph has a function of that name. */
MF_API int mf_graph_has_function(mf_graph *g, const char *name);

/* Building an operation: begin, add inputs and attributes, finish. Finish
 * infers output dtypes and shapes and fails with a message naming the
 * operation on any mismatch. `desc` is consumed by finish either way. A bad
 * argument to any builder call (a NULL graph, type, attribute name or
 * value, a negative count) is remembered in the description and reported
 * by finish; a NULL description is ignored by every builder call. */
/* A NULL name picks a unique one from the type (TensorFlow's: "Add", then
 * "Add_1", ...). */
MF_API mf_op_desc *mf_op_begin(mf_graph *g, const char *type, const char *name);
MF_API void mf_op_add_input(mf_op_desc *d, mf_output in);
MF_API void mf_op_add_control_input(mf_op_desc *d, mf_op *op);
MF_API void mf_op_set_device(mf_op_desc *d, const char *device);
MF_API void mf_op_set_location(mf_op_desc *d, const char *where); /* "file.lua:12" */
MF_API void mf_op_set_attr_int(mf_op_desc *d, const char *name, int64_t v);
MF_API void mf_op_set_attr_float(mf_op_desc *d, const char *name, double v);
MF_API void mf_op_set_attr_bool(mf_op_desc *d, const char *name, int v);
MF_API void mf_op_set_attr_type(mf_op_desc *d, const char *name, mf_dtype v);
MF_API void mf_op_set_attr_string(mf_op_desc *d, const char *name, const char *v);
MF_API void mf_op_set_attr_ints(mf_op_desc *d, const char *name, const int64_t *v, int n);
/* A shape: ndim -1 is an unknown rank; a dimension -1 is unknown. */
MF_API void mf_op_set_attr_shape(mf_op_desc *d, const char *name, const int64_t *dims, int ndim);
MF_API void mf_op_set_attr_tensor(mf_op_desc *d, const char *name, mf_tensor *v); /* retains */
MF_API mf_op *mf_op_finish(mf_op_desc *d, mf_status *s);
/* Drops a description without adding anything to the graph. */
MF_API void mf_op_abandon(mf_op_desc *d);

/* Queries: for a NULL op, NULL strings and graph, id -1, counts 0; an input
 * or output index out of range gives {NULL, 0}, NULL, MF_NUM_DTYPES, ndim -1
 * and NULL dims. */
MF_API const char *mf_op_name(const mf_op *op);
MF_API const char *mf_op_type(const mf_op *op);
MF_API const char *mf_op_device(const mf_op *op);
MF_API const char *mf_op_location(const mf_op *op);
MF_API int mf_op_id(const mf_op *op); /* creation index in its graph */
MF_API mf_graph *mf_op_graph(const mf_op *op);
MF_API int mf_op_num_inputs(const mf_op *op);
MF_API mf_output mf_op_input(const mf_op *op, int i);
MF_API int mf_op_num_control_inputs(const mf_op *op);
MF_API mf_op *mf_op_control_input(const mf_op *op, int i);
MF_API int mf_op_num_outputs(const mf_op *op);
MF_API mf_dtype mf_op_output_dtype(const mf_op *op, int i);
MF_API int mf_op_output_ndim(const mf_op *op, int i);            /* -1: unknown rank */
MF_API const int64_t *mf_op_output_dims(const mf_op *op, int i); /* -1: unknown */
/* Attribute lookups: 1 if present with that kind (0 for NULL arguments).
 * mf_op_get_attr_int also reads bool and type attributes, and
 * mf_op_get_attr_shape integer lists (ndim: the length). The others read
 * their own kind only. Pointers stay valid while the graph lives;
 * mf_op_get_attr_tensor gives a new reference the caller deletes. */
MF_API int mf_op_get_attr_int(const mf_op *op, const char *name, int64_t *v);
MF_API int mf_op_get_attr_shape(const mf_op *op, const char *name, const int64_t **dims, int *ndim);
MF_API int mf_op_get_attr_float(const mf_op *op, const char *name, double *v);
MF_API int mf_op_get_attr_bool(const mf_op *op, const char *name, int *v);
MF_API int mf_op_get_attr_type(const mf_op *op, const char *name, mf_dtype *v);
MF_API int mf_op_get_attr_string(const mf_op *op, const char *name, const char **v);
MF_API int mf_op_get_attr_ints(const mf_op *op, const char *name, const int64_t **v, int *n);
MF_API int mf_op_get_attr_tensor(const mf_op *op, const char *name, mf_tensor **v);

/* The kinds of attribute values (the mf_op_set_attr_* that set them). */
typedef enum {
  MF_ATTR_INT = 0,
  MF_ATTR_FLOAT,
  MF_ATTR_BOOL,
  MF_ATTR_TYPE,
  MF_ATTR_STRING,
  MF_ATTR_INTS,
  MF_ATTR_SHAPE,
  MF_ATTR_TENSOR
} mf_attr_kind;
/* "int", "float", "bool", "type", "string", "ints", "shape", "tensor";
 * NULL for anything else. */
MF_API const char *mf_attr_kind_name(mf_attr_kind k);

/* An operation's attributes in the order they were first set: how many,
 * the i-th's name (NULL out of range) and kind (-1 out of range). */
MF_API int mf_op_num_attrs(const mf_op *op);
MF_API const char *mf_op_attr_name(const mf_op *op, int i);
MF_API int mf_op_attr_kind(const mf_op *op, int i);

/* The registered op types: 1 if `type` exists; the i-th type name (from 0;
 * NULL past the end); whether a type has a gradient. NULL type: 0. */
MF_API int mf_op_type_exists(const char *type);
MF_API const char *mf_op_type_name(int i);
MF_API int mf_op_type_has_gradient(const char *type);
/* How many leading inputs of the type name variables (VariableV2 outputs
 * that the op reads or updates in place, not values): Assign's first,
 * ApplyAdam's three. 0 for NULL or an unknown type. */
MF_API int mf_op_type_num_ref_inputs(const char *type);

/* ---------------------------------------------------------------- op definitions */

/* What an op type takes, from the registry: a one-line description, its
 * inputs and outputs by name, and its attributes with kinds and defaults.
 * mf_op_finish refuses an attribute the type does not declare. */
typedef struct mf_op_def mf_op_def;

/* Marks of an input or output. */
enum {
  MF_ARG_OPTIONAL = 1, /* may be left out (only trailing ones) */
  MF_ARG_LIST = 2,     /* any number of inputs (or outputs) from here on */
  MF_ARG_REF = 4,      /* names a variable (a VariableV2 output), not a value */
  MF_ARG_HOST = 8      /* lives in host memory whatever the op's device */
};

/* The definition of a type (static: never freed); NULL for NULL, an
 * unknown type or one the registry does not describe. */
MF_API const mf_op_def *mf_op_def_get(const char *type);
/* For a NULL def: NULL strings, counts 0, flags, kinds and input bounds -1;
 * an index out of range gives NULL, -1, or 0 (required). */
MF_API const char *mf_op_def_type(const mf_op_def *d);
MF_API const char *mf_op_def_doc(const mf_op_def *d);
/* How many inputs an op takes: max -1 for any number. */
MF_API int mf_op_def_min_inputs(const mf_op_def *d);
MF_API int mf_op_def_max_inputs(const mf_op_def *d);
MF_API int mf_op_def_num_inputs(const mf_op_def *d); /* declared names */
MF_API const char *mf_op_def_input_name(const mf_op_def *d, int i);
MF_API int mf_op_def_input_flags(const mf_op_def *d, int i); /* MF_ARG_* */
MF_API int mf_op_def_num_outputs(const mf_op_def *d);
MF_API const char *mf_op_def_output_name(const mf_op_def *d, int i);
MF_API int mf_op_def_output_flags(const mf_op_def *d, int i);
MF_API int mf_op_def_num_attrs(const mf_op_def *d);
MF_API const char *mf_op_def_attr_name(const mf_op_def *d, int i);
MF_API int mf_op_def_attr_kind(const mf_op_def *d, int i); /* mf_attr_kind */
/* The default as text ("1", "0.5", "false", "float32", "stderr"), or NULL
 * when it has none: then it is required, or optional with its absence
 * meaning something of its own (Squeeze without axis squeezes all). */
MF_API const char *mf_op_def_attr_default(const mf_op_def *d, int i);
MF_API int mf_op_def_attr_required(const mf_op_def *d, int i);

/* ---------------------------------------------------------------- graph export and import */

/* The graph as a binary GraphDef (TensorFlow's tensorflow.GraphDef, field
 * numbers and all): each operation as a NodeDef with moonflow's op type and
 * attributes, "_output_shapes", and the graph functions (If/While bodies)
 * as a FunctionDefLibrary whose functions name nodes of the main list
 * (moonflow's functions are slices of the graph: see proto/function.proto).
 * *bytes is malloc'ed (release it with free()), *len its size. 1 on
 * success, else 0 with status. */
MF_API int mf_graph_export(mf_graph *g, uint8_t **bytes, size_t *len, mf_status *s);

/* A binary GraphDef as TensorFlow's text format (.pbtxt, what
 * tf.train.write_graph(..., as_text=True) writes and
 * google.protobuf.text_format parses): *text is malloc'ed, NUL-terminated
 * (release it with free()), *len its length. 1, or 0 with status when the
 * bytes are not a GraphDef. */
MF_API int mf_graph_def_to_text(const void *bytes, size_t len, char **text, size_t *text_len,
                                mf_status *s);

/* What mf_graph_import does besides adding the nodes. */
typedef struct {
  /* Each imported node is named prefix/name ("" or NULL: names as they
   * are), and so is each imported graph function. */
  const char *prefix;
  /* Inputs of imported nodes named input_map_keys[i] ("op:i", or "op" for
   * "op:0", names in the GraphDef) read input_map_values[i] (an existing
   * output of the graph) instead. */
  int ninput_map;
  const char *const *input_map_keys;
  const mf_output *input_map_values;
  /* Names in the GraphDef to look up after the import: "op:i" fills
   * return_outputs[i] with that output, "op" with {op, -1}. return_outputs
   * has room for nreturn entries. */
  int nreturn;
  const char *const *return_elements;
  mf_output *return_outputs;
} mf_import_options;

MF_API void mf_import_options_init(mf_import_options *o); /* all empty; NULL: nothing */

/* Adds the nodes of a binary GraphDef to g, each through mf_op_begin /
 * mf_op_finish (so types, attributes, dtypes and shapes are checked as for
 * any new op), inputs before the nodes that read them whatever the node
 * order (a cycle is an error), and registers the GraphDef's functions
 * (before the first node that names one). Attributes whose names start
 * with '_' are TensorFlow's hints and are ignored (moonflow's own
 * "_mf_location" and "_mf_f64" excepted). options may be NULL. Malformed
 * or hostile bytes are an error naming what is wrong; everything is
 * decoded, checked and built in a scratch graph first (input_map's values
 * stood for there by Placeholders of their dtypes and shapes), and names
 * are checked against g, so on an error g is left as it was. String
 * attributes that name a function of the GraphDef (If's branches, While's
 * condition and body) are renamed with the prefix, as is If's "forward"
 * (an operation's name). Returns the number of operations added, or -1
 * with status. */
MF_API int mf_graph_import(mf_graph *g, const void *bytes, size_t len,
                           const mf_import_options *options, mf_status *s);

/* ---------------------------------------------------------------- gradients */

/* Adds operations computing the gradient of sum(ys) with respect to each x,
 * under a "gradients" name scope. grad_ys (may be NULL, or hold {NULL, 0}
 * entries) weights each y; the default is ones. On success dx[i] is the
 * gradient of xs[i], or {NULL, 0} when no y depends on it (or it is not a
 * float). Gradients of broadcasting ops are summed back to each input's
 * run-time shape. A path through an op without a gradient is an error naming
 * that op. */
MF_API void mf_gradients(mf_graph *g, const mf_output *ys, int ny, const mf_output *xs, int nx,
                         const mf_output *grad_ys, mf_output *dx, mf_status *s);

/* ---------------------------------------------------------------- sessions */

typedef struct mf_session mf_session;

typedef struct {
  int inter_op_threads; /* independent operations in parallel; 1 = inline; at most 64 */
  /* Threads inside one kernel (float32 GEMMs, RNN time loops) of this
   * session, at most one per usable CPU (larger values are clamped to
   * that); 0 = one per usable CPU. A value
   * > 0 also sets OpenBLAS's own thread count (float64 GEMMs, float32 ones
   * where moonflow's kernels do not run), which is process-wide. */
  int intra_op_threads;
  /* An op whose requested device is missing or has no kernel for it runs
   * on the default device instead of failing (TF's allow_soft_placement). */
  int allow_soft_placement;
  /* Print each op's device to stderr when it is first placed. */
  int log_device_placement;
  /* float32 products on GPUs may use TF32 tensor cores (10-bit mantissas;
   * about 1e-3 relative error). Off by default: results then match the
   * CPU's to float32 rounding. */
  int allow_tf32;
} mf_session_config;

MF_API void mf_session_config_init(mf_session_config *c); /* NULL: nothing */

/* The session keeps a reference to the graph; variables live in the session. */
MF_API mf_session *mf_session_new(mf_graph *g, const mf_session_config *c, mf_status *s);

/* Runs the smallest subgraph that computes `fetches` and runs `targets`,
 * each operation at most once. Feed values stay with the caller (the session
 * takes its own references); on success fetch_values[i] are new references
 * the caller must mf_tensor_delete. On failure no fetch value is set. A
 * negative count, or a NULL array with a positive count, is refused. Runs
 * from several threads are serialized. */
MF_API void mf_session_run(mf_session *sess, const mf_output *feeds, mf_tensor *const *feed_values,
                           int nfeeds, const mf_output *fetches, mf_tensor **fetch_values,
                           int nfetches, mf_op *const *targets, int ntargets, mf_status *s);

/* Step statistics: with tracing on, each run records when each operation
 * ran and on which inter-op thread (0 = the calling thread). */
typedef struct {
  const mf_op *op;
  int64_t start_ns, end_ns; /* CLOCK_MONOTONIC */
  int thread;
} mf_op_trace;

/* Either may be called from any thread, during runs too; a run that is
 * under way when tracing changes may keep some of its records. */
MF_API void mf_session_set_tracing(mf_session *sess, int on);
/* Copies the records of the last finished run, in completion order, into
 * buf (at most cap of them); returns how many that run made (call with
 * cap 0 for the count). The copy is the caller's: later runs never touch
 * it. -1 for a NULL session, a negative cap or a NULL buf with cap > 0. */
MF_API int mf_session_trace(mf_session *sess, mf_op_trace *buf, int cap);

/* Releases the variables and caches; later runs fail cleanly. */
MF_API void mf_session_close(mf_session *sess);
MF_API void mf_session_delete(mf_session *sess);

/* ---------------------------------------------------------------- host callbacks */

/* Ops that run code of the program hosting the library: LuaFunc (a function
 * of the host language, named by the op's integer attribute "func") and
 * Print with the stream "callback" (the text it formats goes to the host,
 * "func" naming the receiver). The core calls one process-wide hook for
 * them, from whichever thread runs the kernel, and may call it from several
 * threads at once (the hook serializes what needs it). A host that sets no
 * hook (a C program) gets an error naming the op when such an op runs. */
typedef struct {
  const mf_op *op;
  int64_t func;     /* the op's "func" attribute */
  const char *text; /* Print: the text to deliver; NULL for LuaFunc */
  int nin;          /* LuaFunc: its inputs, in host memory, borrowed */
  mf_tensor *const *in;
  int nout;             /* LuaFunc: outputs of these dtypes to set (new */
  const mf_dtype *tout; /*   references the core takes over) */
  mf_tensor **out;
} mf_host_call;

/* Sets the status to fail the op (the core adds the op's name). */
typedef void (*mf_host_fn)(void *ctx, mf_host_call *call, mf_status *s);
/* Installs the hook (NULL removes it); returns the previous one. */
MF_API mf_host_fn mf_set_host_callback(mf_host_fn fn, void *ctx);

/* ---------------------------------------------------------------- checkpoints */

/* Saves the values of variables (VariableV2 ops) in a session to a
 * safetensors file, tensor i named names[i]. The file is written to a
 * temporary name, flushed, fsynced and renamed, so `path` is either the old
 * file or the complete new one. A checksum goes into the metadata. */
MF_API void mf_checkpoint_save(mf_session *sess, mf_op *const *vars, const char *const *names,
                               int n, const char *path, mf_status *s);

/* Restores variables from a safetensors file written by mf_checkpoint_save
 * (or any safetensors file with those names). Everything is verified first —
 * checksum, presence, dtype and shape of each tensor — and only then are the
 * variables set, so on any error the session keeps its old values. */
MF_API void mf_checkpoint_restore(mf_session *sess, mf_op *const *vars, const char *const *names,
                                  int n, const char *path, mf_status *s);

/* Writes `size` bytes to the file at path as checkpoints are written (a
 * temporary file "<path>.tmp.<pid>", flushed, fsynced, renamed over path):
 * path is either the old file or the complete new one. For the index file
 * ("checkpoint") beside the checkpoints. */
MF_API void mf_checkpoint_write_file(const char *path, const void *data, size_t size, mf_status *s);

/* Removes the temporary files "<prefix>*.tmp.<pid>" in prefix's directory
 * that a save killed mid-write left behind, only those no live writer can
 * own: the pid names no process, or names this process while none of its
 * saves is in progress (an earlier process had the pid). Files of other
 * live pids (a concurrent save) are kept. Returns how many were removed,
 * or -1 with status if the directory cannot be read. */
MF_API int mf_checkpoint_remove_stale_temps(const char *prefix, mf_status *s);

/* What a checkpoint file holds, without a session: the file is read and
 * verified as mf_checkpoint_restore verifies it (layout, checksums), then
 * each tensor's name, dtype and shape are listed, sorted by name. NULL with
 * status on error. */
typedef struct mf_checkpoint_contents mf_checkpoint_contents;
MF_API mf_checkpoint_contents *mf_checkpoint_list(const char *path, mf_status *s);
MF_API void mf_checkpoint_contents_delete(mf_checkpoint_contents *c);
/* For a NULL listing or an index out of range: count 0, NULL strings and
 * dims, MF_NUM_DTYPES, ndim -1. The dtype is MF_NUM_DTYPES for a tensor
 * moonflow cannot load (a bfloat16, say); file_dtype is the file's own
 * name for it ("F32", "BF16"). Ranks go up to 64 (restoring takes at most
 * MF_MAX_DIMS). Strings and dims live as long as the listing. */
MF_API int mf_checkpoint_contents_count(const mf_checkpoint_contents *c);
MF_API const char *mf_checkpoint_contents_name(const mf_checkpoint_contents *c, int i);
MF_API mf_dtype mf_checkpoint_contents_dtype(const mf_checkpoint_contents *c, int i);
MF_API const char *mf_checkpoint_contents_file_dtype(const mf_checkpoint_contents *c, int i);
MF_API int mf_checkpoint_contents_ndim(const mf_checkpoint_contents *c, int i);
MF_API const int64_t *mf_checkpoint_contents_dims(const mf_checkpoint_contents *c, int i);

/* ---------------------------------------------------------------- devices */

/* Number of CUDA devices usable by this build (0 without CUDA). */
MF_API int mf_gpu_count(void);

/* The devices of this process: 0 is the CPU, then GPUs (and the test
 * device when MOONFLOW_TEST_DEVICE is set). Names are TensorFlow's full
 * names ("/job:localhost/replica:0/task:0/device:GPU:0"); types "CPU",
 * "GPU", "TEST". NULL past the end. */
MF_API int mf_device_count(void);
MF_API const char *mf_device_name(int i);
MF_API const char *mf_device_type(int i);

typedef struct {
  size_t bytes_in_use;      /* held by live buffers */
  size_t peak_bytes_in_use; /* the most held at once */
  size_t bytes_cached;      /* freed, kept by the caching allocator for reuse */
  uint64_t num_allocs;      /* blocks asked of the system (cache misses) */
} mf_memory_stats;

/* Device i's memory statistics; 0 when there is no device i (or out is NULL). */
MF_API int mf_device_memory_stats(int i, mf_memory_stats *out);
/* Gives every device's cached blocks back to the system (also done when
 * the last session is deleted). */
MF_API void mf_allocator_trim(void);

/* Kernel backends: "cpu", "cuda", "test" for i = 0, 1, ...; NULL past the
 * end. mf_op_type_has_kernel says whether an op type has a kernel for one
 * (0 for NULL arguments). */
MF_API const char *mf_kernel_backend_name(int i);
MF_API int mf_op_type_has_kernel(const char *type, const char *backend);

/* The float32 GEMM kernel this process uses on the CPU: "avx512" or "avx2"
 * (moonflow's own, picked for the CPU; MOONFLOW_GEMM=avx2 or =blas in the
 * environment narrows the choice) or "openblas". A static string. */
MF_API const char *mf_cpu_gemm_kernel(void);

/* ---------------------------------------------------------------- MPI (data-parallel training) */

/* Collectives (MPIAllreduce, MPIAllgather, MPIBroadcast) are graph ops; a
 * build finds Open MPI at configure time (mf_mpi_built: 1) or leaves them
 * out (0: mf_mpi_init fails with MF_UNIMPLEMENTED saying how to get it).
 * mf_mpi_init initializes MPI once per process (MPI_THREAD_SERIALIZED or
 * better: kernels call it from the session's threads, one collective at a
 * time), on its own communicator whose errors return as statuses; a second
 * call does nothing. It sets the default intra-op and OpenBLAS threads to
 * usable cores / local_size (MOONFLOW_MPI_THREADS=n overrides). A
 * collective waits at most timeout seconds (MOONFLOW_MPI_TIMEOUT, default
 * 60) for the other ranks, then fails: a rank that died or runs another
 * graph is an error, never a hang. mf_mpi_finalize waits (bounded) for
 * every rank and finalizes; a process that exits without it does the same
 * at exit, or aborts the job when a collective failed. rank, size,
 * local_rank, local_size: -1 before mf_mpi_init. */
MF_API int mf_mpi_built(void);
MF_API int mf_mpi_init(mf_status *s); /* 1 on success */
MF_API int mf_mpi_finalize(mf_status *s);
MF_API int mf_mpi_initialized(void); /* 1 between init and finalize */
MF_API int mf_mpi_rank(void);
MF_API int mf_mpi_size(void);
MF_API int mf_mpi_local_rank(void);
MF_API int mf_mpi_local_size(void);
/* Seconds a collective waits (> 0; other values are ignored). */
MF_API void mf_mpi_set_timeout(double seconds);
MF_API double mf_mpi_timeout(void);
/* Data collectives this process issued (a fused allreduce of many tensors
 * counts once; the headers that check the ranks agree are not counted). */
MF_API int64_t mf_mpi_calls(void);

/* ---------------------------------------------------------------- summaries (TensorBoard) */

/* An event file "<logdir>/events.out.tfevents.<secs>.<hostname>" (logdir is
 * created if missing) of TFRecord-framed Event protocol buffers, as
 * TensorFlow's FileWriter writes, for TensorBoard. Adds queue events (with
 * the current wall time) and write them every 10 events and at flush and
 * close; written events survive a crash, the queued ones do not. A writer may
 * be used from several threads. Errors (a bad argument, a failed write, a
 * closed writer) set status and name the function and parameter. */
typedef struct mf_summary_writer mf_summary_writer;
MF_API mf_summary_writer *mf_summary_writer_new(const char *logdir, mf_status *s);
MF_API const char *mf_summary_writer_path(const mf_summary_writer *w); /* the event file */
/* A scalar (stored as a float, as TF's simple_value). */
MF_API void mf_summary_writer_add_scalar(mf_summary_writer *w, const char *tag, double value,
                                         int64_t step, mf_status *s);
/* A histogram of n values over TF's default buckets; NaN or Inf is an error. */
MF_API void mf_summary_writer_add_histogram(mf_summary_writer *w, const char *tag,
                                            const double *values, int64_t n, int64_t step,
                                            mf_status *s);
MF_API void mf_summary_writer_add_text(mf_summary_writer *w, const char *tag, const char *text,
                                       int64_t step, mf_status *s);
/* height x width x channels bytes, row-major; channels 1 (gray), 2 (gray,
 * alpha), 3 (RGB) or 4 (RGBA); stored as PNG. */
MF_API void mf_summary_writer_add_image(mf_summary_writer *w, const char *tag,
                                        const uint8_t *pixels, int height, int width, int channels,
                                        int64_t step, mf_status *s);
/* A serialized Summary (what a summary op's run returned) at step. */
MF_API void mf_summary_writer_add_summary(mf_summary_writer *w, const void *bytes, size_t n,
                                          int64_t step, mf_status *s);
/* A whole serialized Event (it must parse), written with the fields TF's
 * Event has that moonflow knows (others dropped). */
MF_API void mf_summary_writer_add_event_bytes(mf_summary_writer *w, const void *bytes, size_t n,
                                              mf_status *s);
/* The graph as a GraphDef (TensorBoard's graph page; name scopes group). */
MF_API void mf_summary_writer_add_graph(mf_summary_writer *w, mf_graph *g, int64_t step,
                                        mf_status *s);
/* A serialized SummaryMetadata naming a TensorBoard plugin ("text"), the
 * serialized_summary_metadata input of a TensorSummaryV2 op: its size in
 * bytes, written to buf when size allows (as snprintf); -1 with status on
 * error. */
MF_API int64_t mf_summary_metadata(const char *plugin_name, void *buf, size_t size, mf_status *s);
MF_API void mf_summary_writer_flush(mf_summary_writer *w, mf_status *s);
MF_API void mf_summary_writer_close(mf_summary_writer *w, mf_status *s); /* flushes */
MF_API void mf_summary_writer_delete(mf_summary_writer *w);              /* closes; NULL: nothing */

/* ---------------------------------------------------------------- saved models */

/* A model exported by tf.saved_model.simple_save or SavedModelBuilder (Lua):
 * a directory holding saved_model.pb (TensorFlow's SavedModel protocol
 * buffer, schema version 1: a MetaGraphDef per tag set, each with a GraphDef
 * of moonflow's op types and named signatures) and
 * variables/variables.safetensors. mf_model_load picks the meta graph whose
 * tags equal `tags` as a set (TensorFlow's rule; ntags 0: {"serve"}),
 * imports its graph, makes a session with config c (NULL: defaults),
 * restores the variables and runs the main op the builder recorded. Every
 * part is validated (version, tags, producer, graph, each signature
 * tensor's name, dtype and rank, the variables file's checksum and each
 * variable's presence, dtype and shape); an error names the directory and
 * the part. NULL with status on error. The model owns its graph and
 * session: run the signature's tensors with mf_session_run. */
typedef struct mf_model mf_model;
MF_API mf_model *mf_model_load(const char *dir, const char *const *tags, int ntags,
                               const mf_session_config *c, mf_status *s);
MF_API void mf_model_delete(mf_model *m);               /* deletes its session and graph */
MF_API mf_graph *mf_model_graph(const mf_model *m);     /* NULL for NULL */
MF_API mf_session *mf_model_session(const mf_model *m); /* NULL for NULL */
/* The MetaGraphDef loaded (serialized; its collections, say): *len bytes
 * that live as long as the model. NULL (and 0) for NULL. */
MF_API const uint8_t *mf_model_meta_graph(const mf_model *m, size_t *len);

/* A signature: named input and output tensors (TF's SignatureDef). It
 * lives as long as its model. */
typedef struct mf_signature mf_signature;
MF_API int mf_model_num_signatures(const mf_model *m);
/* Sorted by key; NULL out of range. */
MF_API const mf_signature *mf_model_signature(const mf_model *m, int i);
/* By key ("serving_default"); NULL when there is none. */
MF_API const mf_signature *mf_model_signature_by_key(const mf_model *m, const char *key);
MF_API const char *mf_signature_key(const mf_signature *sig);    /* NULL for NULL */
MF_API const char *mf_signature_method(const mf_signature *sig); /* "tensorflow/serving/predict" */

typedef enum { MF_SIG_INPUTS = 0, MF_SIG_OUTPUTS = 1 } mf_sig_side;
/* The inputs' or outputs' count, i-th name (sorted by name) and tensor;
 * for NULL or an index out of range: 0, NULL, {NULL, 0}. */
MF_API int mf_signature_num_tensors(const mf_signature *sig, mf_sig_side side);
MF_API const char *mf_signature_tensor_name(const mf_signature *sig, mf_sig_side side, int i);
MF_API mf_output mf_signature_tensor(const mf_signature *sig, mf_sig_side side, int i);
/* The tensor named `name`; {NULL, 0} when there is none. */
MF_API mf_output mf_signature_find(const mf_signature *sig, mf_sig_side side, const char *name);

#ifdef __cplusplus
}
#endif
#endif
