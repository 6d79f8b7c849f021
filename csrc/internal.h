/* Internals shared by the C core's files. Nothing here is public API. */
#ifndef MOONFLOW_INTERNAL_H
#define MOONFLOW_INTERNAL_H

#include "device.h"
#include "moonflow.h"
#include "philox.h"

#include <pthread.h>
#include <stdbool.h>

/* The CUDA kernels (gpu/, C++) include this header too. They never touch
 * reference counts, so C++ sees a plain int of the same size and alignment. */
#ifdef __cplusplus
typedef int mfi_refcount;
extern "C" {
#else
#include <stdatomic.h>
typedef atomic_int mfi_refcount;
_Static_assert(sizeof(atomic_int) == sizeof(int) && _Alignof(atomic_int) == _Alignof(int),
               "atomic_int is laid out as int");
#endif

/* ---------------------------------------------------------------- status */

struct mf_status {
  mf_code code;
  char msg[1024];
};

void mfi_set(mf_status *s, mf_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline bool mfi_ok(const mf_status *s) { return s->code == MF_OK; }
static inline void mfi_clear(mf_status *s) { s->code = MF_OK, s->msg[0] = 0; }

/* ---------------------------------------------------------------- memory */

/* Host scratch memory from the CPU device's caching allocator (alloc.c). */
void *mfi_alloc(size_t nbytes);
void mfi_free(void *p, size_t nbytes);
/* n bytes from src (on src_dev) to dst (on dst_dev), through the host
 * between two non-CPU devices; complete when it returns. */
bool mfi_device_copy(mfi_device *dst_dev, void *dst, mfi_device *src_dev, const void *src, size_t n,
                     mf_status *s);

/* One element of a string tensor: its own heap copy of the bytes. */
typedef struct {
  char *p; /* NULL when empty */
  size_t n;
} mfi_str;

typedef struct mfi_buffer {
  mfi_refcount refs;
  size_t nbytes;
  void *data;
  void (*dealloc)(void *data, void *arg); /* borrowed memory; NULL: ours */
  void *arg;
  bool borrowed;
  bool strings;    /* data is mfi_str elements, each owning its bytes */
  mfi_device *dev; /* where data lives; borrowed memory is the CPU's */
} mfi_buffer;

struct mf_tensor {
  mfi_refcount refs;
  mf_dtype dtype;
  int ndim;
  int64_t dims[MF_MAX_DIMS];
  int64_t numel;
  size_t offset; /* bytes into the buffer (sub-tensor views) */
  mfi_buffer *buf;
};

/* An uninitialised (not zeroed) tensor on a device (mfi_tensor_empty: the
 * CPU): NULL + status on failure (out of memory or bad shape). */
mf_tensor *mfi_tensor_empty_on(mfi_device *d, mf_dtype dt, int ndim, const int64_t *dims,
                               mf_status *s);
mf_tensor *mfi_tensor_empty(mf_dtype dt, int ndim, const int64_t *dims, mf_status *s);
static inline mfi_device *mfi_tensor_device(const mf_tensor *t) { return t->buf->dev; }
static inline void *mfi_data(const mf_tensor *t) { return (char *)t->buf->data + t->offset; }
/* String tensors (host memory only): a tensor of empty strings, element i
 * set (copying n bytes; the tensor must not be shared yet) or read. */
mf_tensor *mfi_string_tensor_new(int ndim, const int64_t *dims, mf_status *s);
bool mfi_string_set(mf_tensor *t, int64_t i, const void *bytes, size_t n, mf_status *s);
const char *mfi_string_get(const mf_tensor *t, int64_t i, size_t *n);

/* True when this tensor is the only holder of its buffer. */
bool mfi_tensor_exclusive(const mf_tensor *t);
/* A copy on the same device. */
mf_tensor *mfi_tensor_copy(const mf_tensor *t, mf_status *s);
/* t on device d: a new reference when it is there already, else a copy. */
mf_tensor *mfi_tensor_to(mf_tensor *t, mfi_device *d, mf_status *s);
/* A new tensor object sharing t's buffer, so each holder has its own header
 * and copy-on-write decisions see every holder. NULL when out of memory. */
mf_tensor *mfi_tensor_view(mf_tensor *t);
/* The product of the dims: 0 with any zero dim, -1 when it overflows. */
int64_t mfi_numel(int ndim, const int64_t *dims);
/* True when a shape's known non-zero dimensions multiply past int64: no
 * tensor can have it. */
bool mfi_shape_overflows(int ndim, const int64_t *dims);
/* Element access through double / int64 for dtype-generic code paths. */
double mfi_get_f(mf_dtype dt, const void *p, int64_t i);
int64_t mfi_get_i(mf_dtype dt, const void *p, int64_t i);
void mfi_set_f(mf_dtype dt, void *p, int64_t i, double v);
void mfi_set_i(mf_dtype dt, void *p, int64_t i, int64_t v);
static inline bool mfi_is_float(mf_dtype dt) { return dt == MF_FLOAT32 || dt == MF_FLOAT64; }
int mfi_shape_str(int ndim, const int64_t *dims, char *buf, size_t size); /* "{2, -1}" */

/* ---------------------------------------------------------------- graph */

typedef enum {
  MFI_A_INT,
  MFI_A_FLOAT,
  MFI_A_BOOL,
  MFI_A_TYPE,
  MFI_A_STRING,
  MFI_A_INTS,
  MFI_A_SHAPE,
  MFI_A_TENSOR
} mfi_attr_kind;

typedef struct {
  char *name;
  mfi_attr_kind kind;
  int64_t i; /* INT, BOOL, TYPE; SHAPE: ndim */
  double f;
  char *s;
  int64_t *ints; /* INTS, SHAPE: n = i */
  mf_tensor *t;
} mfi_attr;

typedef struct {
  mf_dtype dtype;
  int ndim; /* -1: unknown rank */
  int64_t dims[MF_MAX_DIMS];
} mfi_meta;

struct mfi_opdef;

/* A device string as TensorFlow spells it ("/gpu:1", "/device:CPU:0",
 * "/job:localhost/replica:0/task:0/device:GPU:0", "" for none); type and
 * index are -1 where the string leaves them open. */
typedef struct {
  int type;  /* mfi_device_type or -1 */
  int index; /* or -1 */
} mfi_device_spec;
/* false + a message in `err` (for the op's error) when the string is not a
 * device name. */
bool mfi_device_spec_parse(const char *str, mfi_device_spec *spec, char *err, size_t errsize);

struct mf_op {
  mf_graph *graph;
  int id;
  char *name, *device, *location;
  mfi_device_spec spec; /* `device` parsed when the op is created */
  const struct mfi_opdef *def;
  int nin, nctrl, nout, nattr;
  mf_output *inputs;
  mf_op **ctrl;
  mfi_meta *out;
  mfi_attr *attrs;
};

/* A graph function (mf_graph_add_function): arguments, results, targets. */
typedef struct {
  char *name;
  int nargs, nres, ntargets;
  mf_op **args;
  mf_output *res;
  mf_op **targets;
} mfi_function;

struct mf_graph {
  mfi_refcount refs;
  pthread_mutex_t lock; /* guards growth against sessions planning */
  mf_op **ops;
  int nops, cap;
  int64_t seed;
  /* names in use: open-addressing hash of lower-cased name -> count */
  char **nkeys;
  int *ncount;
  int ncap, nused;
  /* operations by exact name: open-addressing hash of op ids + 1 (0: empty) */
  int *byname;
  int bycap;
  mfi_function **funcs; /* under lock; each stays where it is */
  int nfuncs, fcap;
};

mf_graph *mfi_graph_retain(mf_graph *g);
/* The function of that name, or NULL. */
const mfi_function *mfi_graph_function(mf_graph *g, const char *name);
void mfi_graph_free_functions(mf_graph *g);

/* "Add 'scope/add' (created at x.lua:3)" */
int mfi_op_label(const mf_op *op, char *buf, size_t size);
/* Sets status to "<label>: <message>". */
void mfi_op_error(mf_status *s, mf_code code, const mf_op *op, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---------------------------------------------------------------- op registry */

/* What inference sees: the op under construction (inputs, attrs set) and
 * the metadata of its inputs; it sets op->nout and op->out[] (sized by
 * mfi_set_outputs through `building`). Kernels reuse shape functions with
 * a context that only reads the op: `building` NULL. */
typedef struct {
  const mf_op *op;
  const mfi_meta *in; /* op->nin entries */
  mf_status *status;
  mf_op *building;
} mfi_infer_ctx;

/* What a kernel sees: input values, attributes (through op), output slots
 * to fill with new references, its device, and for stateful ops a variable
 * slot or the random stream's key. Kernels never reach into the graph or
 * session: what they need of the variables they update comes in vars. */
#define MFI_MAX_REFS 4
#define MFI_MAX_SCRATCH 4

typedef struct {
  mf_tensor **slot;     /* the session's value slot (NULL: uninitialized) */
  const char *name;     /* the variable's name, for messages */
  const mfi_meta *decl; /* its declared dtype and shape */
  const char *init;     /* its initializer: the first Assign to it (NULL: none) */
} mfi_var_ref;

/* The op's error for reading variable i while uninitialized: neutral
 * wording naming the initializer op (the Lua layer rewrites the hint into
 * its own idiom). */
void mfi_uninitialized_error(mfi_kctx *k, int i);

struct mfi_kctx {
  const mf_op *op;
  mf_tensor *const *in; /* NULL for variable-reference inputs */
  mf_tensor **out;
  /* Variables: VariableV2 gets its own in vars[0]; an op whose first
   * def->nref inputs name variables gets theirs in vars[i]. */
  mfi_var_ref vars[MFI_MAX_REFS];
  uint64_t key; /* random ops: Philox key */
  /* Random and control-flow ops: which draw (call) this is. At the top of
   * a run: how many times the op ran before in this session. Inside a
   * function call: a hash of the call's path and the op, so a gradient's
   * replay of a branch or loop iteration draws what the forward call drew. */
  uint64_t run;
  uint64_t count;       /* random ops: how many times this op ran before (Print's first_n) */
  const uint64_t *path; /* inside a function call: its path key; NULL at the top of a run */
  int threads;          /* intra-op threads */
  bool allow_tf32;      /* GPU float32 products may use TF32 (session config allow_tf32) */
  mfi_device *dev;
  void *stream; /* the device's stream for this run (NULL on the CPU) */
  /* What prepare worked out for the kernel, so that kernels never re-run
   * shape functions: each output's run-time dtype and shape, and small
   * integers such as a resolved axis or a permutation. */
  mfi_meta *shapes;
  int64_t params[2 * MF_MAX_DIMS];
  /* scratch memory from dev, released after the kernel (mfi_scratch) */
  int nscratch;
  void *scratch[MFI_MAX_SCRATCH];
  size_t scratch_bytes[MFI_MAX_SCRATCH];
  mf_status *status;
  /* How many consumers (and fetches) each output has in this run's plan:
   * an output nobody reads may be left out (a While's history). */
  const int *out_uses;
  /* Control flow (MFI_CONTROL ops): the session, and this node's plans for
   * the functions it calls (mfi_call). */
  mf_session *sess;
  struct mfi_plan **calls;
};

/* Functions a control-flow op calls, each through its own cached plan. */
#define MFI_MAX_CALLS 2

/* Calls function f for the control-flow op of k (its `which`-th function):
 * feeds args (one per argument, checked against the argument's dtype and
 * shape), runs serially on the calling thread with call path `path`, and
 * gives results (new references, wherever they were computed). false with
 * k's status set (an error inside names the op that failed). */
bool mfi_call(mfi_kctx *k, int which, const mfi_function *f, mf_tensor *const *args,
              mf_tensor **results, uint64_t path);
/* The path of a call made by a control-flow op whose run is `run`
 * (k->run), for its `salt`-th call (a branch, an iteration). */
uint64_t mfi_call_path(uint64_t run, uint64_t salt);
/* The `run` that op (a control-flow op k depends on, in k's context) had:
 * what a gradient needs to replay that op's calls. */
uint64_t mfi_run_of(const mfi_kctx *k, const mf_op *op);

/* Scratch memory on the kernel's device for the kernel's duration; NULL
 * with the op's out-of-memory error set when it cannot be had. */
void *mfi_scratch(mfi_kctx *k, size_t nbytes);

/* Variable (or slot) i's value, to update in place: copied first when a
 * reader still holds the buffer; NULL with the op's error when it is
 * uninitialized or the copy fails. */
mf_tensor *mfi_var_writable(mfi_kctx *k, int i);

enum {
  MFI_VARIABLE = 1 << 1, /* owns a variable slot */
  MFI_RANDOM = 1 << 2,
  MFI_PLACEHOLDER = 1 << 3, /* must be fed */
  MFI_NO_GRADIENT = 1 << 4, /* gradients stop here silently (comparisons, shapes, ...) */
  /* The kernel never touches element data (it passes references, views or
   * metadata on), so it serves every device: Identity, Reshape, reading a
   * variable. */
  MFI_ANY_DEVICE = 1 << 5,
  /* Control flow (If, While): the kernel calls graph functions (mfi_call);
   * its outputs stay where the functions computed them. Implies
   * MFI_ANY_DEVICE. */
  MFI_CONTROL = 1 << 6,
  /* Takes or gives string tensors (Const, Placeholder, Identity, Reshape,
   * summaries ...): any other op refuses them when it is created. Such ops
   * run on the CPU, where strings live. */
  MFI_STRINGS = 1 << 7,
};

typedef struct mfi_grad_ctx mfi_grad_ctx;

/* One row per op type, with designated initializers:
 *   {.type = "GatherV2", .min_inputs = 2, .max_inputs = 2, .infer = infer_gather,
 *    .prepare = prepare_gather, .kernel = {[MFI_DEVICE_CPU] = cpu_gather},
 *    .host_in = 1u << 1, .grad = grad_gather}
 * Kernels for other devices are registered by name by their backend
 * (mfi_register_kernels), so a row never depends on what a build has. */
typedef struct mfi_opdef {
  const char *type;
  /* What the type takes, for introspection (opdef.c, mf_op_def_*): a
   * one-line description; input and output names, comma-separated ("x, y";
   * "name?" optional, "name*" any number); attributes as "name: kind =
   * default; name: kind" (no default: required; "kind?": optional with
   * none), kind one of int float bool type string ints shape tensor. A row
   * with attrs NULL is undescribed: mf_op_finish then checks no attribute
   * names. Random ops also take seed and seed2 (graph.c reads them). */
  const char *doc, *inputs, *outputs, *attrs;
  int min_inputs, max_inputs; /* max -1: any number */
  int flags;
  int nref; /* leading inputs that name variables (not data edges) */
  void (*infer)(mfi_infer_ctx *c);
  /* Run-time validation, on the host, before the kernel on any device:
   * it sees every input's shape and the contents of host-memory inputs,
   * and sets the status to refuse. */
  void (*prepare)(mfi_kctx *k);
  mfi_kernel kernel[MFI_NUM_DEVICE_TYPES];
  /* Inputs / outputs (bit i) that live in host memory whatever the op's
   * device: ids checked on the host, sequence lengths, shapes. */
  uint32_t host_in, host_out;
  /* Adds the ops computing the inputs' gradients; NULL (without
   * MFI_NO_GRADIENT) means the op is not differentiable: an error when it
   * lies on a gradient path. */
  void (*grad)(mfi_grad_ctx *g);
} mfi_opdef;

/* Bit i of a host_in / host_out mask (ops with any number of inputs have
 * more than 32). */
static inline bool mfi_bit(uint32_t mask, int i) { return i < 32 && (mask >> i & 1); }

/* Where input / output i of an op of this row running on `dev` lives: the
 * host's memory for host-memory ones, else the op's device. */
static inline mfi_device *mfi_in_device(const mfi_opdef *def, int i, mfi_device *dev)
{
  return mfi_bit(def->host_in, i) ? mfi_device_cpu() : dev;
}
static inline mfi_device *mfi_out_device(const mfi_opdef *def, int i, mfi_device *dev)
{
  return mfi_bit(def->host_out, i) ? mfi_device_cpu() : dev;
}

const mfi_opdef *mfi_opdef_find(const char *type);
/* Whether the row declares attribute `name` (opdef.c); true for an
 * undescribed row (attrs NULL). */
bool mfi_opdef_declares(const mfi_opdef *row, const char *name);
/* The same row, writable: only for registering kernels at start-up. */
mfi_opdef *mfi_opdef_lookup(const char *type);
/* Gives rows flagged MFI_ANY_DEVICE their CPU kernel on every backend (at
 * start-up, after the backends registered theirs). */
void mfi_registry_fill_any_device(void);

/* Registry tables, one per op family file. */
extern mfi_opdef mfi_ops_math[];
extern mfi_opdef mfi_ops_array[];
extern mfi_opdef mfi_ops_reduce[];
extern mfi_opdef mfi_ops_state[];
extern mfi_opdef mfi_ops_matmul[];
extern mfi_opdef mfi_ops_random[];
extern mfi_opdef mfi_ops_grad[];
extern mfi_opdef mfi_ops_nn[];
extern mfi_opdef mfi_ops_conv[];
extern mfi_opdef mfi_ops_train[];
extern mfi_opdef mfi_ops_sparse[];
extern mfi_opdef mfi_ops_rnn[];
extern mfi_opdef mfi_ops_control[];
extern mfi_opdef mfi_ops_debug[];
extern mfi_opdef mfi_ops_summary[];
extern mfi_opdef mfi_ops_index[];
extern mfi_opdef mfi_ops_mpi[]; /* csrc/mpi.c: empty without MPI */

/* CheckNumerics's end on every backend (ops/debug.c): the op's error for
 * what the scan found (bit 0: a NaN, bit 1: an Inf), else the input passed on. */
void mfi_check_numerics_done(mfi_kctx *k, int found);

/* Shared inference helpers. */
void mfi_infer_error(mfi_infer_ctx *c, mf_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool mfi_set_outputs(mfi_infer_ctx *c, int n);
/* NumPy broadcast of two static shapes into `out`; false + error on mismatch. */
bool mfi_broadcast_meta(mfi_infer_ctx *c, const mfi_meta *a, const mfi_meta *b, mfi_meta *out);
/* Resolves a 1-based (or negative) axis against rank; -1 + error if bad. */
int mfi_axis(mfi_infer_ctx *c, int64_t axis, int rank, const char *what);
bool mfi_out_new(mfi_kctx *k, int i, mf_dtype dt, int ndim, const int64_t *dims);

/* Broadcast iteration: for an output shape and an input's shape, the input
 * strides (in elements) with 0 on broadcast dimensions. */
void mfi_bcast_strides(int ondim, const int64_t *odims, int indim, const int64_t *idims,
                       int64_t *strides);
bool mfi_broadcast_shape(int andim, const int64_t *ad, int bndim, const int64_t *bd, int *ondim,
                         int64_t *od);

/* ---------------------------------------------------------------- attributes */

/* One rule for reading attributes. Inference, which runs when an op is
 * created, reads every attribute that its kernel, its gradient or the
 * planner will use through the checking readers below; so a missing or
 * wrongly-kinded attribute is an error at creation, naming the op. After
 * that, kernels and gradient builders read through the mfi_attr_*
 * accessors, which assume that check. Nothing converts between kinds: an
 * integer attribute set as a float is an error, not a truncation. */
const mfi_attr *mfi_attr_find(const mf_op *op, const char *name);

/* Checking readers: *v gets the attribute's value, or dflt when it is absent
 * and not needed; false after reporting "<op>: attribute 'x' must be an
 * integer, got a float" or "<op>: needs an integer attribute 'x'". */
bool mfi_check_int(mfi_infer_ctx *c, const char *name, bool need, int64_t dflt, int64_t *v);
bool mfi_check_float(mfi_infer_ctx *c, const char *name, bool need, double dflt, double *v);
bool mfi_check_bool(mfi_infer_ctx *c, const char *name, bool need, bool dflt, bool *v);
/* A TYPE attribute, which must also name one of the dtypes. */
bool mfi_check_type(mfi_infer_ctx *c, const char *name, bool need, mf_dtype dflt, mf_dtype *v);
/* An integer list (INTS, or a SHAPE of known rank; a single INT counts as a
 * list of one): 1 present, 0 absent, -1 after reporting an error. */
int mfi_check_ints(mfi_infer_ctx *c, const char *name, const int64_t **v, int *n);

/* Accessors, for attributes the op's inference checked: the value, or dflt
 * when absent (inference refused every other kind). */
int64_t mfi_attr_int(const mf_op *op, const char *name, int64_t dflt);
double mfi_attr_float(const mf_op *op, const char *name, double dflt);
bool mfi_attr_bool(const mf_op *op, const char *name, bool dflt);
mf_dtype mfi_attr_type(const mf_op *op, const char *name, mf_dtype dflt);
/* An integer list as mfi_check_ints reads it, or NULL when absent. */
const int64_t *mfi_attr_ints(const mf_op *op, const char *name, int *n);

/* ---------------------------------------------------------------- gradients */

/* What a gradient builder sees: the forward op, the gradient of each of its
 * outputs (op NULL: none flows back), and where to put each input's
 * gradient (leave op NULL for none). Builders create ops with the mfi_gb_*
 * helpers, which name them under gradients/<op>_grad/ and stop quietly
 * once the status holds an error. */
struct mfi_grad_ctx {
  mf_graph *graph;
  mf_op *op; /* not const: its outputs become inputs of the new ops */
  const mf_output *dy;
  mf_output *dx;
  const char *scope; /* "gradients/<op name>_grad" */
  mf_status *status;
};

mf_op_desc *mfi_gb_begin(mfi_grad_ctx *g, const char *type);
mf_output mfi_gb_finish(mfi_grad_ctx *g, mf_op_desc *d, int index);
mf_output mfi_gb1(mfi_grad_ctx *g, const char *type, mf_output a);
mf_output mfi_gb2(mfi_grad_ctx *g, const char *type, mf_output a, mf_output b);
mf_output mfi_gb3(mfi_grad_ctx *g, const char *type, mf_output a, mf_output b, mf_output c);
mf_output mfi_gb_scalar(mfi_grad_ctx *g, mf_dtype dt, double v);
/* Copies the forward op's attribute `name` (if set) onto a gradient op. */
void mfi_gb_copy_attr(mf_op_desc *d, const mf_op *op, const char *name);
/* dy (possibly none) made concrete: zeros like the op's output i. */
mf_output mfi_gb_dy(mfi_grad_ctx *g, int i);
/* Sums t over broadcast dimensions down to the runtime shape of `like`. */
mf_output mfi_gb_reduce_like(mfi_grad_ctx *g, mf_output t, mf_output like);
static inline bool mfi_is_none(mf_output o) { return o.op == NULL; }
static inline mfi_meta mfi_meta_of(mf_output o) { return o.op->out[o.index]; }

/* ---------------------------------------------------------------- sessions */

/* Direct access to variable values for checkpoints. Lock the session around
 * any use; a slot holds a reference (NULL: uninitialized). A closed session
 * is reported with a status. */
bool mfi_session_lock(mf_session *sess, mf_status *s);
void mfi_session_unlock(mf_session *sess);
mf_tensor **mfi_session_slot(mf_session *sess, const mf_op *var, mf_status *s);
/* Where a variable of the session's graph keeps its value (placing it if
 * no run has yet). */
mfi_device *mfi_session_device(mf_session *sess, const mf_op *var, mf_status *s);

/* ---------------------------------------------------------------- random */

/* Philox, mfi_random_unit and mfi_random_normal live in philox.h, which
 * the GPU's kernels share. */
uint64_t mfi_seed_key(int64_t seed, int64_t seed2);

/* The columns of the row-major n x w matrix q (n >= w) made orthonormal in
 * place: Gram-Schmidt with re-orthogonalisation, on the host (RandomOrthogonal
 * on every device, so all give the same matrix). */
void mfi_gram_schmidt(double *q, int64_t n, int64_t w);

/* Element i's block in a random kernel's run (its attempt-th redraw). */
void mfi_random_draw(const mfi_kctx *k, int64_t i, uint32_t attempt, uint32_t out[4]);

/* ---------------------------------------------------------------- threads */

/* Row-major C = beta C + op(A) op(B) for float32/float64 (C is [m, n],
 * op(A) [m, k], op(B) [k, n]): float32 through our own kernels (mfi_sgemm)
 * where they run, the rest through OpenBLAS, where a single row of C
 * (m = 1) goes to GEMV, which needs no packing of B. */
void mfi_gemm(mf_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const void *a,
              int64_t lda, const void *b, int64_t ldb, double beta, void *c, int64_t ldc);

/* OpenBLAS's thread count, process-wide (float64 GEMMs, and float32 ones
 * where our kernels do not run). */
void mfi_blas_set_threads(int n);

/* The intra-op thread team (parallel.c): fn(ctx, i, n) for parts i = 0..n-1,
 * part 0 on the caller; n may come out smaller than asked (1 when another
 * region is running), so fn must split its work by the n it is given. */
typedef void (*mfi_part_fn)(void *ctx, int part, int nparts);
void mfi_parallel(int nparts, mfi_part_fn fn, void *ctx);
/* Parts a region may have on this thread: the team's size (one per usable
 * CPU unless set), capped by the limit of the session whose kernel runs
 * here (mfi_parallel_limit returns the previous one; 0 = none). */
int mfi_parallel_threads(void);
int mfi_parallel_limit(int n);
/* The CPUs this process may run on (affinity, cpusets), capped at the team's maximum. */
int mfi_usable_cpus(void);
void mfi_parallel_set_threads(int n);

/* float32 GEMM with our own kernels (sgemm.c), row-major like mfi_gemm.
 * Available when the CPU has AVX-512F or AVX2+FMA, unless MOONFLOW_GEMM is
 * "blas" ("avx2" skips the AVX-512 kernel); mf_cpu_gemm_kernel names the
 * one in use. */
bool mfi_sgemm_available(void);
void mfi_sgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
               const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* op(B) [k, n] packed once for many products with it (an RNN's recurrent
 * weights, once per time step); keeps pointing at b for fallbacks. Only
 * where mfi_sgemm_available(); false when out of memory. */
typedef struct {
  int64_t k, n;
  bool tb;
  const float *b;
  int64_t ldb;
  float *p;
  size_t bytes;
} mfi_packed_b;
bool mfi_pack_b(mfi_packed_b *pb, bool tb, int64_t k, int64_t n, const float *b, int64_t ldb);
void mfi_packed_b_free(mfi_packed_b *pb);
/* C [m, n] = beta C + op(A) B on the calling thread (mfi_sgemm_available()). */
void mfi_sgemm_packed(bool ta, int64_t m, const float *a, int64_t lda, const mfi_packed_b *pb,
                      float beta, float *c, int64_t ldc);

#ifdef __cplusplus
}
#endif
#endif
