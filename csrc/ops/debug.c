/* Debugging and host ops: CheckNumerics, Assert, Print / PrintV2,
 * IsVariableInitialized, and LuaFunc, which runs a function of the host
 * language through the process-wide host callback (mf_set_host_callback).
 *
 * Assert, Print and LuaFunc read their data in host memory (host_in), so
 * one kernel serves every device; CheckNumerics reads its input where it
 * lives and has a kernel per backend (gpu/debug.cu). */
#include "../internal.h"
#include "../strbuf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the host callback */

static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
static mf_host_fn hook_fn;
static void *hook_ctx;

mf_host_fn mf_set_host_callback(mf_host_fn fn, void *ctx)
{
  pthread_mutex_lock(&hook_lock);
  mf_host_fn old = hook_fn;
  hook_fn = fn, hook_ctx = ctx;
  pthread_mutex_unlock(&hook_lock);
  return old;
}

/* Hands the call to the host; false with the op's error set. */
static bool host_call(mfi_kctx *k, mf_host_call *call, const char *what)
{
  pthread_mutex_lock(&hook_lock);
  mf_host_fn fn = hook_fn;
  void *ctx = hook_ctx;
  pthread_mutex_unlock(&hook_lock);
  if (!fn) {
    mfi_op_error(k->status, MF_FAILED_PRECONDITION, k->op,
                 "%s, but this process has no host callback: the graph was built by the Lua "
                 "module and runs where no Lua state is (a C host cannot run it)",
                 what);
    return false;
  }
  mf_status tmp;
  mfi_clear(&tmp);
  fn(ctx, call, &tmp);
  if (!mfi_ok(&tmp)) {
    mfi_op_error(k->status, tmp.code, k->op, "%s", tmp.msg);
    return false;
  }
  return true;
}

/* ---------------------------------------------------------------- formatting values */

static void put_value(mfi_strbuf *b, const mf_tensor *t, int64_t i, bool v2)
{
  const void *p = mfi_data(t);
  switch (t->dtype) {
  case MF_FLOAT32:
  case MF_FLOAT64: mfi_sb_fmt(b, "%.6g", mfi_get_f(t->dtype, p, i)); break;
  case MF_BOOL:
    mfi_sb_str(b, mfi_get_i(t->dtype, p, i) ? (v2 ? "True" : "1") : (v2 ? "False" : "0"));
    break;
  default: mfi_sb_fmt(b, "%lld", (long long)mfi_get_i(t->dtype, p, i)); break;
  }
}

/* TF 1.x's Tensor::SummarizeValue: the first `limit` elements in order,
 * inner dimensions in brackets (none between them), the outermost without;
 * "..." where a row or a vector is cut. */
static void summarize_v1(mfi_strbuf *b, const mf_tensor *t, int dim, int64_t *at, int64_t limit)
{
  int64_t n = t->dims[dim];
  if (*at >= limit) return;
  if (dim == t->ndim - 1) {
    for (int64_t i = 0; i < n; i++) {
      if (*at >= limit) {
        mfi_sb_str(b, "...");
        return;
      }
      if (i > 0) mfi_sb_str(b, " ");
      put_value(b, t, (*at)++, false);
    }
    if (dim == 0 && *at < t->numel) mfi_sb_str(b, "...");
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    bool open = *at < limit;
    if (open) mfi_sb_str(b, "[");
    summarize_v1(b, t, dim + 1, at, limit);
    if (open) mfi_sb_str(b, "]");
  }
}

/* TF 2's tf.print (NumPy's layout): the first and last `edge` entries of
 * each dimension, " ..." between, rows on lines of their own. */
static void summarize_v2(mfi_strbuf *b, const mf_tensor *t, int dim, int64_t base, int64_t edge)
{
  int64_t n = t->dims[dim], stride = 1;
  for (int d = dim + 1; d < t->ndim; d++) stride *= t->dims[d];
  mfi_sb_str(b, "[");
  for (int64_t i = 0; i < n; i++) {
    bool skip = edge >= 0 && n > 2 * edge && i == edge;
    if (i > 0) {
      if (dim == t->ndim - 1) {
        mfi_sb_str(b, " ");
      } else {
        mfi_sb_str(b, "\n");
        for (int d = 0; d <= dim; d++) mfi_sb_str(b, " ");
      }
    }
    if (skip) {
      mfi_sb_str(b, "...");
      i = n - edge - 1;
      continue;
    }
    if (dim == t->ndim - 1)
      put_value(b, t, base + i, true);
    else
      summarize_v2(b, t, dim + 1, base + i * stride, edge);
  }
  mfi_sb_str(b, "]");
}

static void summarize(mfi_strbuf *b, const mf_tensor *t, int64_t n, bool v2)
{
  if (t->ndim == 0) {
    put_value(b, t, 0, v2);
  } else if (v2) {
    if (t->numel == 0) {
      mfi_sb_str(b, "[]");
      return;
    }
    summarize_v2(b, t, 0, 0, n);
  } else {
    int64_t at = 0;
    summarize_v1(b, t, 0, &at, n < 0 ? t->numel : n);
  }
}

/* The op's "template" attribute with each "%v" replaced by the next of the
 * inputs first..nin-1 ("%%" is a percent sign). False with the op's error
 * set when memory runs out. */
static bool expand(mfi_kctx *k, mfi_strbuf *b, int first, bool v2)
{
  const mfi_attr *a = mfi_attr_find(k->op, "template");
  const char *s = a && a->kind == MFI_A_STRING ? a->s : "";
  int64_t n = mfi_attr_int(k->op, "summarize", 3);
  int next = first;
  for (; *s; s++) {
    if (s[0] == '%' && s[1] == 'v') {
      if (next < k->op->nin) summarize(b, k->in[next++], n, v2);
      s++;
    } else if (s[0] == '%' && s[1] == '%') {
      mfi_sb_str(b, "%");
      s++;
    } else {
      mfi_sb_add(b, s, 1);
    }
  }
  if (b->oom) {
    free(b->p);
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory formatting its message");
    return false;
  }
  return true;
}

/* Reads the string attribute `name` in inference: NULL when absent, and
 * false after an error when it is there but not a string. */
static bool check_string(mfi_infer_ctx *c, const char *name, const char **v)
{
  const mfi_attr *a = mfi_attr_find(c->op, name);
  *v = NULL;
  if (!a) return true;
  if (a->kind != MFI_A_STRING) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "attribute '%s' must be a string", name);
    return false;
  }
  *v = a->s;
  return true;
}

/* The inputs' "%v" count must match the data inputs. */
static bool check_template(mfi_infer_ctx *c, int ndata)
{
  const char *t;
  if (!check_string(c, "template", &t)) return false;
  int n = 0;
  for (const char *s = t ? t : ""; *s; s++)
    if (s[0] == '%') {
      if (s[1] == 'v') n++;
      if (s[1] == 'v' || s[1] == '%') s++;
    }
  if (n != ndata) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "its template shows %d values but it has %d data inputs", n, ndata);
    return false;
  }
  int64_t v;
  return mfi_check_int(c, "summarize", false, 3, &v);
}

/* ---------------------------------------------------------------- CheckNumerics */

static void infer_check_numerics(mfi_infer_ctx *c)
{
  const char *msg;
  if (!check_string(c, "message", &msg)) return;
  if (!mfi_is_float(c->in[0].dtype)) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "checks float tensors, got %s",
                    mf_dtype_name(c->in[0].dtype));
    return;
  }
  if (mfi_set_outputs(c, 1)) c->op->out[0] = c->in[0];
}

/* Shared with the device kernels: the error for what a scan found (bit 0:
 * a NaN, bit 1: an Inf), or the input passed on. */
void mfi_check_numerics_done(mfi_kctx *k, int found)
{
  if (found) {
    const mfi_attr *a = mfi_attr_find(k->op, "message");
    const char *what = found == 3 ? "Inf and NaN" : found == 1 ? "NaN" : "Inf";
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op, "%s%sTensor had %s values",
                 a && a->s[0] ? a->s : "", a && a->s[0] ? " : " : "", what);
    return;
  }
  k->out[0] = mf_tensor_retain(k->in[0]);
}

static void cpu_check_numerics(mfi_kctx *k)
{
  const mf_tensor *x = k->in[0];
  int found = 0;
  if (x->dtype == MF_FLOAT32) {
    const float *p = mfi_data(x);
    for (int64_t i = 0; i < x->numel; i++)
      if (!isfinite(p[i])) found |= isnan(p[i]) ? 1 : 2;
  } else {
    const double *p = mfi_data(x);
    for (int64_t i = 0; i < x->numel; i++)
      if (!isfinite(p[i])) found |= isnan(p[i]) ? 1 : 2;
  }
  mfi_check_numerics_done(k, found);
}

static void grad_identity(mfi_grad_ctx *g) { g->dx[0] = g->dy[0]; }

/* ---------------------------------------------------------------- Assert */

static void infer_assert(mfi_infer_ctx *c)
{
  if (c->in[0].dtype != MF_BOOL) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "the condition must be bool, got %s",
                    mf_dtype_name(c->in[0].dtype));
    return;
  }
  if (check_template(c, c->op->nin - 1)) mfi_set_outputs(c, 0);
}

/* Passes when every element of the condition is true (TF's is a scalar). */
static void cpu_assert(mfi_kctx *k)
{
  const mf_tensor *cond = k->in[0];
  const uint8_t *p = mfi_data(cond);
  bool ok = true;
  for (int64_t i = 0; ok && i < cond->numel; i++) ok = p[i] != 0;
  if (ok) return;
  mfi_strbuf b = {0};
  if (!expand(k, &b, 1, false)) return;
  mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op, "%s", b.p ? b.p : "assertion failed");
  free(b.p);
}

/* ---------------------------------------------------------------- Print, PrintV2 */

static bool check_print_attrs(mfi_infer_ctx *c, int ndata)
{
  const char *stream;
  int64_t v;
  if (!check_template(c, ndata) || !check_string(c, "stream", &stream) ||
      !mfi_check_int(c, "first_n", false, -1, &v) || !mfi_check_int(c, "func", false, 0, &v))
    return false;
  if (stream && strcmp(stream, "stderr") != 0 && strcmp(stream, "stdout") != 0 &&
      strcmp(stream, "callback") != 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "stream must be \"stderr\", \"stdout\" or \"callback\", got \"%s\"", stream);
    return false;
  }
  return true;
}

static void infer_print(mfi_infer_ctx *c)
{
  if (check_print_attrs(c, c->op->nin - 1) && mfi_set_outputs(c, 1)) c->op->out[0] = c->in[0];
}

static void infer_print_v2(mfi_infer_ctx *c)
{
  if (check_print_attrs(c, c->op->nin)) mfi_set_outputs(c, 0);
}

/* Formats the data inputs from `first` on and writes them, the first
 * first_n runs of the op in this session (k->count counts them). */
static void print_kernel(mfi_kctx *k, int first, bool v2)
{
  int64_t first_n = mfi_attr_int(k->op, "first_n", -1);
  if (first_n >= 0 && k->count >= (uint64_t)first_n) return;
  mfi_strbuf b = {0};
  if (!expand(k, &b, first, v2)) return;
  const mfi_attr *a = mfi_attr_find(k->op, "stream");
  const char *stream = a ? a->s : "stderr", *text = b.p ? b.p : "";
  if (strcmp(stream, "callback") == 0) {
    mf_host_call call = {.op = k->op, .func = mfi_attr_int(k->op, "func", 0), .text = text};
    host_call(k, &call, "it prints to a Lua function");
  } else {
    FILE *f = strcmp(stream, "stdout") == 0 ? stdout : stderr;
    fwrite(text, 1, strlen(text), f); /* one write: lines from parallel ops do not interleave */
    fflush(f);
  }
  free(b.p);
}

static void cpu_print(mfi_kctx *k)
{
  print_kernel(k, 1, false);
  if (mfi_ok(k->status)) k->out[0] = mf_tensor_retain(k->in[0]);
}

static void cpu_print_v2(mfi_kctx *k) { print_kernel(k, 0, true); }

/* ---------------------------------------------------------------- IsVariableInitialized */

static void infer_is_initialized(mfi_infer_ctx *c)
{
  if (!mfi_set_outputs(c, 1)) return;
  c->op->out[0].dtype = MF_BOOL;
  c->op->out[0].ndim = 0;
}

static void cpu_is_initialized(mfi_kctx *k)
{
  if (mfi_out_new(k, 0, MF_BOOL, 0, NULL))
    *(uint8_t *)mfi_data(k->out[0]) = *k->vars[0].slot != NULL;
}

/* ---------------------------------------------------------------- LuaFunc */

#define MAX_HOST_OUT 32

/* "float32,int32" -> dtypes; the count, or -1 when a name is unknown. */
static int parse_tout(const char *s, mf_dtype *dt)
{
  int n = 0;
  while (s && *s) {
    char name[32];
    size_t len = strcspn(s, ",");
    if (len >= sizeof name || n == MAX_HOST_OUT) return -1;
    memcpy(name, s, len);
    name[len] = 0;
    if (!mf_dtype_from_name(name, &dt[n++])) return -1;
    s += len + (s[len] == ',');
  }
  return n;
}

static void infer_lua_func(mfi_infer_ctx *c)
{
  const char *tout;
  int64_t func;
  bool stateful;
  mf_dtype dt[MAX_HOST_OUT];
  if (!check_string(c, "Tout", &tout) || !mfi_check_int(c, "func", true, 0, &func) ||
      !mfi_check_bool(c, "stateful", false, true, &stateful))
    return;
  int n = parse_tout(tout, dt);
  if (n < 0) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "Tout must list at most %d dtype names (\"float32,int32\"), got \"%s\"",
                    MAX_HOST_OUT, tout);
    return;
  }
  if (!mfi_set_outputs(c, n)) return;
  for (int i = 0; i < n; i++) c->op->out[i].dtype = dt[i], c->op->out[i].ndim = -1;
}

static void cpu_lua_func(mfi_kctx *k)
{
  const mfi_attr *a = mfi_attr_find(k->op, "Tout");
  mf_dtype dt[MAX_HOST_OUT];
  int n = parse_tout(a ? a->s : NULL, dt);
  mf_host_call call = {.op = k->op,
                       .func = mfi_attr_int(k->op, "func", 0),
                       .nin = k->op->nin,
                       .in = k->in,
                       .nout = n,
                       .tout = dt,
                       .out = k->out};
  if (!host_call(k, &call, "it runs a Lua function (tf.lua_func)")) {
    for (int i = 0; i < n; i++) mf_tensor_delete(k->out[i]), k->out[i] = NULL;
    return;
  }
  for (int i = 0; i < n; i++) {
    const mf_tensor *t = k->out[i];
    if (!t || t->dtype != dt[i] || mfi_tensor_device(t) != mfi_device_cpu()) {
      mfi_op_error(k->status, MF_INTERNAL, k->op,
                   "the host callback gave no %s value for output %d", mf_dtype_name(dt[i]), i + 1);
      for (int j = 0; j < n; j++) mf_tensor_delete(k->out[j]), k->out[j] = NULL;
      return;
    }
  }
}

/* ---------------------------------------------------------------- registry */

#define ALL_HOST 0xffffffffu

mfi_opdef mfi_ops_debug[] = {
    {.type = "CheckNumerics",
     .doc = "Passes the tensor on, failing with message when it holds a NaN or an Inf.",
     .inputs = "tensor",
     .outputs = "output",
     .attrs = "message: string = \"\"",
     .min_inputs = 1,
     .max_inputs = 1,
     .infer = infer_check_numerics,
     .kernel = {[MFI_DEVICE_CPU] = cpu_check_numerics},
     .grad = grad_identity},
    {.type = "Assert",
     .doc = "Fails with the formatted template when any element of condition is false.",
     .inputs = "condition, data*",
     .outputs = "",
     .attrs = "template: string = \"\"; summarize: int = 3",
     .min_inputs = 1,
     .max_inputs = 32,
     .flags = MFI_ANY_DEVICE | MFI_NO_GRADIENT,
     .infer = infer_assert,
     .kernel = {[MFI_DEVICE_CPU] = cpu_assert},
     .host_in = ALL_HOST},
    /* MFI_RANDOM for k->count only: how many times the op ran in this
     * session, which first_n needs; Print draws no random numbers. */
    {.type = "Print",
     .doc = "Passes input on, printing the data inputs through template (TF 1.x's tf.Print).",
     .inputs = "input, data*",
     .outputs = "output",
     .attrs = "template: string = \"\"; summarize: int = 3; first_n: int = -1; stream: string = "
              "\"stderr\"; func: int = 0",
     .min_inputs = 1,
     .max_inputs = 32,
     .flags = MFI_ANY_DEVICE | MFI_RANDOM,
     .infer = infer_print,
     .kernel = {[MFI_DEVICE_CPU] = cpu_print},
     .host_in = ALL_HOST & ~1u,
     .grad = grad_identity},
    {.type = "PrintV2",
     .doc = "Prints its inputs through template (tf.print).",
     .inputs = "inputs*",
     .outputs = "",
     .attrs = "template: string = \"\"; summarize: int = 3; first_n: int = -1; stream: string = "
              "\"stderr\"; func: int = 0",
     .min_inputs = 0,
     .max_inputs = 32,
     .flags = MFI_ANY_DEVICE | MFI_RANDOM | MFI_NO_GRADIENT,
     .infer = infer_print_v2,
     .kernel = {[MFI_DEVICE_CPU] = cpu_print_v2},
     .host_in = ALL_HOST},
    {.type = "IsVariableInitialized",
     .doc = "Whether the variable has a value in this session.",
     .inputs = "ref",
     .outputs = "is_initialized",
     .attrs = "",
     .min_inputs = 1,
     .max_inputs = 1,
     .flags = MFI_ANY_DEVICE | MFI_NO_GRADIENT,
     .nref = 1,
     .infer = infer_is_initialized,
     .kernel = {[MFI_DEVICE_CPU] = cpu_is_initialized},
     .host_out = ALL_HOST},
    /* No gradient, as TF's py_func: an error on a gradient path. */
    {.type = "LuaFunc",
     .doc = "Calls a function of the host language (named by func) on the inputs.",
     .inputs = "input*",
     .outputs = "output*",
     .attrs = "func: int; Tout: string = \"\"; stateful: bool = true",
     .min_inputs = 0,
     .max_inputs = 32,
     .flags = MFI_ANY_DEVICE,
     .infer = infer_lua_func,
     .kernel = {[MFI_DEVICE_CPU] = cpu_lua_func},
     .host_in = ALL_HOST,
     .host_out = ALL_HOST},
    {0}};
