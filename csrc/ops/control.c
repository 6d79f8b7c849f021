/* Control flow: If and While call graph functions (mf_graph_add_function)
 * through the session (mfi_call); WhileGrad runs a While's gradient
 * function backwards over the iterations.
 *
 *   If(pred, args...)            then_branch / else_branch: args -> results
 *   While(vars..., slices...)    cond: vars -> bool; body: vars, rows -> vars, outs
 *     outputs: trip count (host), final vars, stacked outs, history of vars
 *
 * A While's `slices` are read one row per iteration (map_fn's elems, an
 * RNN's inputs), its `outs` are stacked over the iterations (map_fn's
 * results, an RNN's outputs). The history (each iteration's loop variables,
 * stacked) is kept only when a consumer reads it: the gradient, which
 * re-runs the body from it (recomputing the body's intermediates instead
 * of storing them) and differentiates each iteration in reverse. */
#include "../internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- shared */

/* The function named by string attribute `attr`, or NULL after an error. */
static const mfi_function *function_attr(mfi_infer_ctx *c, const char *attr)
{
  const mfi_attr *a = mfi_attr_find(c->op, attr);
  if (!a || a->kind != MFI_A_STRING) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs a string attribute '%s' naming a function",
                    attr);
    return NULL;
  }
  const mfi_function *f = mfi_graph_function(c->op->graph, a->s);
  if (!f) mfi_infer_error(c, MF_NOT_FOUND, "the graph has no function named '%s'", a->s);
  return f;
}

static const mfi_function *function_of(const mf_op *op, const char *attr)
{
  return mfi_graph_function(op->graph, mfi_attr_find(op, attr)->s);
}

static bool compatible(const mfi_meta *a, const mfi_meta *b)
{
  if (a->dtype != b->dtype) return false;
  if (a->ndim < 0 || b->ndim < 0) return true;
  if (a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->dims[i] >= 0 && b->dims[i] >= 0 && a->dims[i] != b->dims[i]) return false;
  return true;
}

/* What both a and b may be: dims that differ become unknown. */
static mfi_meta merged(const mfi_meta *a, const mfi_meta *b)
{
  mfi_meta m = *a;
  if (a->ndim != b->ndim) {
    m.ndim = -1;
    return m;
  }
  for (int i = 0; i < a->ndim; i++)
    if (a->dims[i] != b->dims[i]) m.dims[i] = -1;
  return m;
}

static const mfi_meta *arg_meta(const mfi_function *f, int i) { return &f->args[i]->out[0]; }
static mfi_meta res_meta(const mfi_function *f, int i) { return mfi_meta_of(f->res[i]); }

/* "float32 {2, -1}" */
static const char *describe(const mfi_meta *m, char *buf, size_t size)
{
  int n = snprintf(buf, size, "%s ", mf_dtype_name(m->dtype));
  if (n > 0 && (size_t)n < size) mfi_shape_str(m->ndim, m->dims, buf + n, size - (size_t)n);
  return buf;
}

/* Checks that value meta v can be fed to argument i of f. */
static bool check_feed(mfi_infer_ctx *c, const mfi_function *f, int i, const mfi_meta *v,
                       const char *what, int which)
{
  if (compatible(arg_meta(f, i), v)) return true;
  char a[160], b[160];
  mfi_infer_error(c, MF_INVALID_ARGUMENT, "%s %d is %s, but argument %d of '%s' is %s", what, which,
                  describe(v, a, sizeof a), i + 1, f->name, describe(arg_meta(f, i), b, sizeof b));
  return false;
}

static bool read_bool(mfi_kctx *k, mf_tensor *t, const char *what, bool *v)
{
  if (t->dtype != MF_BOOL || t->numel != 1) {
    char sh[128];
    mfi_shape_str(t->ndim, t->dims, sh, sizeof sh);
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op, "%s must be a bool scalar, got %s %s", what,
                 mf_dtype_name(t->dtype), sh);
    return false;
  }
  mf_tensor *h = mfi_tensor_to(t, mfi_device_cpu(), k->status);
  if (!h) return false;
  *v = *(const uint8_t *)mfi_data(h) != 0;
  mf_tensor_delete(h);
  return true;
}

/* Stacks n values of one shape into a new [n, ...] tensor where the first
 * lives (n == 0: an empty one shaped like `like`, unknown dims as 0). */
static mf_tensor *stack(mfi_kctx *k, mf_tensor **v, int64_t n, const mfi_meta *like,
                        const char *what, int which)
{
  int64_t dims[MF_MAX_DIMS];
  if (n == 0) {
    int nd = like->ndim < 0 ? 0 : like->ndim;
    if (nd + 1 > MF_MAX_DIMS) nd = MF_MAX_DIMS - 1;
    dims[0] = 0;
    for (int i = 0; i < nd; i++) dims[i + 1] = like->dims[i] < 0 ? 0 : like->dims[i];
    return mfi_tensor_empty(like->dtype, nd + 1, dims, k->status);
  }
  const mf_tensor *a = v[0];
  if (a->ndim + 1 > MF_MAX_DIMS) {
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                 "%s %d has rank %d; stacking it over iterations needs at most %d", what, which,
                 a->ndim, MF_MAX_DIMS - 1);
    return NULL;
  }
  for (int64_t i = 1; i < n; i++) {
    bool same = v[i]->dtype == a->dtype && v[i]->ndim == a->ndim;
    for (int d = 0; same && d < a->ndim; d++) same = v[i]->dims[d] == a->dims[d];
    if (!same) {
      char s0[128], s1[128];
      mfi_shape_str(a->ndim, a->dims, s0, sizeof s0);
      mfi_shape_str(v[i]->ndim, v[i]->dims, s1, sizeof s1);
      mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                   "%s %d has shape %s in iteration 1 but %s in iteration %lld; stacking it "
                   "over the iterations (for outputs, or to differentiate the loop) needs one "
                   "shape",
                   what, which, s0, s1, (long long)i + 1);
      return NULL;
    }
  }
  dims[0] = n;
  memcpy(dims + 1, a->dims, sizeof(int64_t) * a->ndim);
  mfi_device *dev = mfi_tensor_device(a);
  mf_tensor *t = mfi_tensor_empty_on(dev, a->dtype, a->ndim + 1, dims, k->status);
  size_t row = mf_tensor_nbytes(a);
  for (int64_t i = 0; t && i < n; i++)
    if (!mfi_device_copy(dev, (char *)mfi_data(t) + (size_t)i * row, mfi_tensor_device(v[i]),
                         mfi_data(v[i]), row, k->status)) {
      mf_tensor_delete(t);
      t = NULL;
    }
  return t;
}

/* The meta of one row of m (m without its first dimension). */
static mfi_meta row_meta(const mfi_meta *m)
{
  mfi_meta r = *m;
  if (r.ndim > 0) r.ndim--, memmove(r.dims, r.dims + 1, sizeof(int64_t) * (size_t)r.ndim);
  return r;
}

/* A growable list of tensor references. */
typedef struct {
  mf_tensor **v;
  int64_t n, cap;
} tlist;

static bool tpush(mfi_kctx *k, tlist *l, mf_tensor *t)
{
  if (l->n == l->cap) {
    int64_t cap = l->cap ? 2 * l->cap : 16;
    mf_tensor **v = realloc(l->v, sizeof *v * (size_t)cap);
    if (!v) {
      mf_tensor_delete(t);
      mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
      return false;
    }
    l->v = v, l->cap = cap;
  }
  l->v[l->n++] = t;
  return true;
}

static void tfree(tlist *l)
{
  for (int64_t i = 0; i < l->n; i++) mf_tensor_delete(l->v[i]);
  free(l->v);
  l->v = NULL, l->n = l->cap = 0;
}

static void release(mf_tensor **v, int n)
{
  for (int i = 0; i < n; i++) mf_tensor_delete(v[i]), v[i] = NULL;
}

/* Placeholder for a function argument of a gradient function. */
static mf_output gb_placeholder(mfi_grad_ctx *g, const mfi_meta *m)
{
  mf_op_desc *d = mfi_gb_begin(g, "Placeholder");
  if (d) {
    mf_op_set_attr_type(d, "dtype", m->dtype);
    if (m->ndim >= 0) mf_op_set_attr_shape(d, "shape", m->dims, m->ndim);
  }
  return mfi_gb_finish(g, d, 0);
}

/* Registers a gradient function under a unique name derived from the op's
 * (written to name). */
static void gb_function(mfi_grad_ctx *g, const char *suffix, int nargs, mf_op *const *args,
                        int nres, const mf_output *res, char *name, size_t size)
{
  if (!mfi_ok(g->status)) return;
  char base[MF_MAX_NAME + 64];
  snprintf(base, sizeof base, "%s_%s", g->op->name, suffix);
  mf_graph_unique_name(g->graph, base, name, size);
  mf_status s;
  mfi_clear(&s);
  if (!mf_graph_add_function(g->graph, name, nargs, args, nres, res, 0, NULL, &s))
    mfi_set(g->status, s.code, "while differentiating %s '%s': %s", g->op->def->type, g->op->name,
            s.msg);
}

/* The first op a call of f runs that updates a variable (Assign*, the
 * optimizers' Apply*), or NULL; gradients replay a function's calls, which
 * would update it again. */
static const mf_op *updater_in(const mfi_function *f, mf_status *s)
{
  mf_graph *g = f->nres ? f->res[0].op->graph : f->ntargets ? f->targets[0]->graph : NULL;
  if (!g) return NULL;
  int n = g->nops;
  char *seen = calloc((size_t)n + 1, 1);
  int *stack = malloc(sizeof(int) * ((size_t)n + 1));
  const mf_op *found = NULL;
  int sp = 0;
  if (!seen || !stack) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory");
    goto done;
  }
  for (int i = 0; i < f->nargs; i++) seen[f->args[i]->id] = 1;
  for (int i = 0; i < f->nres; i++)
    if (!seen[f->res[i].op->id]) seen[f->res[i].op->id] = 1, stack[sp++] = f->res[i].op->id;
  for (int i = 0; i < f->ntargets; i++)
    if (!seen[f->targets[i]->id]) seen[f->targets[i]->id] = 1, stack[sp++] = f->targets[i]->id;
  while (sp && !found) {
    const mf_op *op = g->ops[stack[--sp]];
    const char *t = op->def->type;
    if (strncmp(t, "Assign", 6) == 0 || strstr(t, "Apply")) found = op;
    for (int i = 0; i < op->nin + op->nctrl; i++) {
      const mf_op *in = i < op->nin ? op->inputs[i].op : op->ctrl[i - op->nin];
      if (!seen[in->id]) seen[in->id] = 1, stack[sp++] = in->id;
    }
  }
done:
  free(seen), free(stack);
  return found;
}

/* Refuses to differentiate through a function that updates a variable. */
static bool no_updates(mfi_grad_ctx *g, const mfi_function *f)
{
  const mf_op *u = updater_in(f, g->status);
  if (u && mfi_ok(g->status)) {
    char where[MF_MAX_NAME + 128];
    mfi_op_label(u, where, sizeof where);
    mfi_op_error(g->status, MF_UNIMPLEMENTED, g->op,
                 "cannot differentiate it: its function '%s' updates a variable (%s), and the "
                 "gradient re-runs the function; move the update out, or cut the path with "
                 "tf.stop_gradient",
                 f->name, where);
  }
  return mfi_ok(g->status);
}

/* d(sum ys * dys)/d(xs) as outputs computed from xs' function: zeros where
 * no y depends on an x. */
static bool gb_grads(mfi_grad_ctx *g, int ny, const mf_output *ys, const mf_output *dys, int nx,
                     const mf_output *xs, mf_output *dx)
{
  if (!mfi_ok(g->status)) return false;
  mf_status s;
  mfi_clear(&s);
  mf_gradients(g->graph, ys, ny, xs, nx, dys, dx, &s);
  if (!mfi_ok(&s)) {
    mfi_set(g->status, s.code, "while differentiating %s '%s': %s", g->op->def->type, g->op->name,
            s.msg);
    return false;
  }
  for (int i = 0; i < nx; i++)
    if (mfi_is_none(dx[i])) dx[i] = mfi_gb1(g, "ZerosLike", xs[i]);
  return mfi_ok(g->status);
}

/* ---------------------------------------------------------------- If */

static void infer_if(mfi_infer_ctx *c)
{
  const mfi_attr *fwd = mfi_attr_find(c->op, "forward");
  if (fwd) {
    const mf_op *of = fwd->kind == MFI_A_STRING ? mf_graph_op_by_name(c->op->graph, fwd->s) : NULL;
    if (!of || strcmp(of->def->type, "If") != 0) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "attribute 'forward' must name an If operation");
      return;
    }
  }
  const mfi_function *t = function_attr(c, "then_branch");
  const mfi_function *e = t ? function_attr(c, "else_branch") : NULL;
  if (!e) return;
  int n = c->op->nin - 1;
  if (c->in[0].dtype != MF_BOOL || c->in[0].ndim > 0) {
    char a[160];
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "the predicate must be a bool scalar, got %s",
                    describe(&c->in[0], a, sizeof a));
    return;
  }
  for (int b = 0; b < 2; b++) {
    const mfi_function *f = b ? e : t;
    if (f->nargs != n) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "'%s' takes %d arguments, the op passes %d", f->name,
                      f->nargs, n);
      return;
    }
    for (int i = 0; i < n; i++)
      if (!check_feed(c, f, i, &c->in[i + 1], "input", i + 2)) return;
  }
  if (t->nres != e->nres) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "the branches return %d and %d values", t->nres,
                    e->nres);
    return;
  }
  if (!mfi_set_outputs(c, t->nres)) return;
  for (int i = 0; i < t->nres; i++) {
    mfi_meta a = res_meta(t, i), b = res_meta(e, i);
    if (a.dtype != b.dtype) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT,
                      "result %d is %s from the true branch but %s from the false branch", i + 1,
                      mf_dtype_name(a.dtype), mf_dtype_name(b.dtype));
      return;
    }
    c->op->out[i] = merged(&a, &b);
  }
}

/* A gradient If (attribute "forward": the If it differentiates) replays
 * the forward call's path, so random ops in the branch draw what they drew. */
static void cpu_if(mfi_kctx *k)
{
  bool p;
  if (!read_bool(k, k->in[0], "the predicate", &p)) return;
  const mfi_function *f = function_of(k->op, p ? "then_branch" : "else_branch");
  const mfi_attr *fwd = mfi_attr_find(k->op, "forward");
  const mf_op *of = fwd ? mf_graph_op_by_name(k->op->graph, fwd->s) : NULL;
  uint64_t run = of ? mfi_run_of(k, of) : k->run;
  mfi_call(k, p ? 0 : 1, f, k->in + 1, k->out, mfi_call_path(run, p));
}

/* Each branch's gradient is a function of the branch's own arguments and
 * the results' gradients; the gradient op is an If on the same predicate. */
static void grad_if(mfi_grad_ctx *g)
{
  const mf_op *op = g->op;
  const mfi_function *br[2] = {function_of(op, "then_branch"), function_of(op, "else_branch")};
  int n = op->nin - 1, r = op->nout;
  int *dx_of = malloc(sizeof(int) * (n ? n : 1)), *dy_of = malloc(sizeof(int) * (r ? r : 1));
  mf_output *ys = malloc(sizeof *ys * (r ? r : 1)), *dys = malloc(sizeof *dys * (r ? r : 1));
  mf_output *xs = malloc(sizeof *xs * (n ? n : 1)), *dx = malloc(sizeof *dx * (n ? n : 1));
  mf_op **args = malloc(sizeof *args * (n + r ? n + r : 1));
  char names[2][MF_MAX_NAME + 1];
  if (!dx_of || !dy_of || !ys || !dys || !xs || !dx || !args) {
    mfi_set(g->status, MF_RESOURCE_EXHAUSTED, "out of memory differentiating '%s'", op->name);
    goto done;
  }
  int nd = 0, ny = 0;
  for (int i = 0; i < n; i++)
    if (mfi_is_float(op->inputs[i + 1].op->out[op->inputs[i + 1].index].dtype)) dx_of[nd++] = i;
  for (int i = 0; i < r; i++)
    if (mfi_is_float(op->out[i].dtype)) dy_of[ny++] = i;
  if (nd == 0 || ny == 0 || !no_updates(g, br[0]) || !no_updates(g, br[1])) goto done;
  for (int b = 0; b < 2 && mfi_ok(g->status); b++) {
    const mfi_function *f = br[b];
    for (int i = 0; i < ny; i++) {
      ys[i] = f->res[dy_of[i]];
      dys[i] = gb_placeholder(g, &op->out[dy_of[i]]);
      args[n + i] = dys[i].op;
    }
    for (int i = 0; i < nd; i++) xs[i] = (mf_output){f->args[dx_of[i]], 0};
    for (int i = 0; i < n; i++) args[i] = f->args[i];
    if (!gb_grads(g, ny, ys, dys, nd, xs, dx)) break;
    gb_function(g, b ? "else_grad" : "then_grad", n + ny, args, nd, dx, names[b], sizeof names[b]);
  }
  mf_op_desc *d = mfi_gb_begin(g, "If");
  for (int i = 0; d && i <= n; i++) mf_op_add_input(d, op->inputs[i]);
  for (int i = 0; d && i < ny; i++) mf_op_add_input(d, mfi_gb_dy(g, dy_of[i]));
  if (d) mf_op_set_attr_string(d, "then_branch", names[0]);
  if (d) mf_op_set_attr_string(d, "else_branch", names[1]);
  if (d) mf_op_set_attr_string(d, "forward", op->name);
  mf_output gop = mfi_gb_finish(g, d, 0);
  for (int i = 0; i < nd && gop.op; i++) g->dx[dx_of[i] + 1] = (mf_output){gop.op, i};
done:
  free(dx_of), free(dy_of), free(ys), free(dys), free(xs), free(dx), free(args);
}

/* ---------------------------------------------------------------- While */

typedef struct {
  int n, k, m; /* loop variables, sliced inputs, stacked outputs */
} while_sizes;

static while_sizes sizes_of(const mf_op *op)
{
  int k = (int)mfi_attr_int(op, "num_slices", 0), m = (int)mfi_attr_int(op, "num_outputs", 0);
  return (while_sizes){op->nin - k, k, m};
}

/* Outputs: 0 the trip count, then 1 + i the final vars, 1 + n + j the
 * stacked outs, 1 + n + m + i the vars' history. */
static void infer_while(mfi_infer_ctx *c)
{
  const mfi_function *cond = function_attr(c, "cond");
  const mfi_function *body = cond ? function_attr(c, "body") : NULL;
  int64_t k64, m64;
  bool back_prop;
  if (!body || !mfi_check_int(c, "num_slices", false, 0, &k64) ||
      !mfi_check_int(c, "num_outputs", false, 0, &m64) ||
      !mfi_check_bool(c, "back_prop", false, true, &back_prop))
    return;
  if (k64 < 0 || k64 > c->op->nin || m64 < 0 || m64 > 100000) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "num_slices %lld / num_outputs %lld out of range",
                    (long long)k64, (long long)m64);
    return;
  }
  int k = (int)k64, m = (int)m64, n = c->op->nin - k;
  if (cond->nargs != n || cond->nres != 1) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "the condition '%s' takes %d arguments and returns %d values; the loop has "
                    "%d variables and needs one bool",
                    cond->name, cond->nargs, cond->nres, n);
    return;
  }
  mfi_meta cm = res_meta(cond, 0);
  if (cm.dtype != MF_BOOL || cm.ndim > 0) {
    char a[160];
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "the condition must return a bool scalar, got %s",
                    describe(&cm, a, sizeof a));
    return;
  }
  if (body->nargs != n + k || body->nres != n + m) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "the body '%s' takes %d arguments and returns %d values; the loop has %d "
                    "variables, %d sliced inputs and %d stacked outputs",
                    body->name, body->nargs, body->nres, n, k, m);
    return;
  }
  for (int i = 0; i < n; i++)
    if (!check_feed(c, cond, i, &c->in[i], "loop variable", i + 1) ||
        !check_feed(c, body, i, &c->in[i], "loop variable", i + 1))
      return;
  for (int j = 0; j < k; j++) {
    mfi_meta row = c->in[n + j];
    if (row.ndim == 0) {
      mfi_infer_error(c, MF_INVALID_ARGUMENT, "sliced input %d is a scalar", j + 1);
      return;
    }
    row = row_meta(&row);
    if (!check_feed(c, body, n + j, &row, "a row of sliced input", j + 1)) return;
  }
  for (int i = 0; i < n; i++) {
    mfi_meta r = res_meta(body, i);
    if (!compatible(arg_meta(body, i), &r)) {
      char a[160], b[160];
      mfi_infer_error(c, MF_INVALID_ARGUMENT,
                      "loop variable %d enters as %s but the body returns %s (give it a shape "
                      "invariant that covers both)",
                      i + 1, describe(arg_meta(body, i), a, sizeof a), describe(&r, b, sizeof b));
      return;
    }
  }
  if (!mfi_set_outputs(c, 1 + 2 * n + m)) return;
  mfi_meta *o = c->op->out;
  o[0] = (mfi_meta){.dtype = MF_INT32, .ndim = 0};
  for (int i = 0; i < n; i++) {
    o[1 + i] = *arg_meta(body, i);
    mfi_meta *h = &o[1 + n + m + i];
    *h = *arg_meta(body, i);
    if (h->ndim >= MF_MAX_DIMS) h->ndim = -1;
    if (h->ndim >= 0) {
      memmove(h->dims + 1, h->dims, sizeof(int64_t) * h->ndim);
      h->dims[0] = -1, h->ndim++;
    }
  }
  for (int j = 0; j < m; j++) {
    mfi_meta *s = &o[1 + n + j];
    *s = res_meta(body, n + j);
    if (s->ndim >= MF_MAX_DIMS) s->ndim = -1;
    if (s->ndim >= 0) {
      memmove(s->dims + 1, s->dims, sizeof(int64_t) * s->ndim);
      s->dims[0] = -1, s->ndim++;
    }
  }
}

static void cpu_while(mfi_kctx *k)
{
  const mf_op *op = k->op;
  while_sizes z = sizes_of(op);
  const mfi_function *cond = function_of(op, "cond"), *body = function_of(op, "body");
  mf_tensor **args = calloc((size_t)(z.n + z.k) + 1, sizeof *args);
  mf_tensor **res = calloc((size_t)(z.n + z.m) + 1, sizeof *res);
  tlist *outs = calloc((size_t)z.m + 1, sizeof *outs),
        *hist = calloc((size_t)z.n + 1, sizeof *hist);
  if (!args || !res || !outs || !hist) {
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, op, "out of memory");
    goto done;
  }
  int64_t rows = -1;
  for (int j = 0; j < z.k; j++) {
    const mf_tensor *s = k->in[z.n + j];
    if (s->ndim == 0) {
      mfi_op_error(k->status, MF_INVALID_ARGUMENT, op, "sliced input %d is a scalar", j + 1);
      goto done;
    }
    if (rows < 0 || s->dims[0] < rows) rows = s->dims[0];
  }
  for (int i = 0; i < z.n; i++) args[i] = mf_tensor_retain(k->in[i]);
  int64_t it = 0;
  for (;; it++) {
    mf_tensor *c = NULL;
    bool go = false;
    if (!mfi_call(k, 0, cond, args, &c, mfi_call_path(k->run, 2 * (uint64_t)it))) goto done;
    bool ok = read_bool(k, c, "the loop condition", &go);
    mf_tensor_delete(c);
    if (!ok) goto done;
    if (!go) break;
    if (it >= INT32_MAX) {
      mfi_op_error(k->status, MF_OUT_OF_RANGE, op, "ran %lld iterations", (long long)it);
      goto done;
    }
    if (z.k && it >= rows) {
      mfi_op_error(k->status, MF_OUT_OF_RANGE, op,
                   "its condition asked for iteration %lld, but the sliced inputs have %lld rows",
                   (long long)it + 1, (long long)rows);
      goto done;
    }
    for (int j = 0; j < z.k; j++)
      if (!(args[z.n + j] = mf_tensor_subtensor(k->in[z.n + j], it, k->status))) goto done;
    for (int i = 0; i < z.n; i++)
      if (k->out_uses[1 + z.n + z.m + i] > 0 && !tpush(k, &hist[i], mf_tensor_retain(args[i])))
        goto done;
    ok = mfi_call(k, 1, body, args, res, mfi_call_path(k->run, 2 * (uint64_t)it + 1));
    release(args, z.n + z.k);
    if (!ok) goto done;
    for (int i = 0; i < z.n; i++) args[i] = res[i], res[i] = NULL;
    for (int j = 0; j < z.m; j++) {
      bool pushed = tpush(k, &outs[j], res[z.n + j]);
      res[z.n + j] = NULL;
      if (!pushed) goto done;
    }
  }
  int32_t trips = (int32_t)it;
  if (!(k->out[0] = mfi_tensor_empty(MF_INT32, 0, NULL, k->status))) goto done;
  *(int32_t *)mfi_data(k->out[0]) = trips;
  for (int i = 0; i < z.n; i++) k->out[1 + i] = args[i], args[i] = NULL;
  for (int j = 0; j < z.m; j++) {
    mfi_meta elem = row_meta(&op->out[1 + z.n + j]);
    if (!(k->out[1 + z.n + j] = stack(k, outs[j].v, outs[j].n, &elem, "output", j + 1))) goto done;
  }
  for (int i = 0; i < z.n; i++) {
    int o = 1 + z.n + z.m + i;
    const mfi_meta *h = &op->out[o];
    if (k->out_uses[o] > 0) {
      mfi_meta elem = row_meta(h);
      k->out[o] = stack(k, hist[i].v, hist[i].n, &elem, "loop variable", i + 1);
    } else {
      k->out[o] = mfi_tensor_empty(h->dtype, 1, (const int64_t[]){0}, k->status); /* unread */
    }
    if (!k->out[o]) goto done;
  }
done:
  if (args) release(args, z.n + z.k);
  if (res) release(res, z.n + z.m);
  for (int j = 0; outs && j < z.m; j++) tfree(&outs[j]);
  for (int i = 0; hist && i < z.n; i++) tfree(&hist[i]);
  free(args), free(res), free(outs), free(hist);
}

/* The gradient function G of a While's body: arguments the body's own
 * (n vars, k rows), then the gradients of the next iteration's vars and of
 * this iteration's outs (float ones); results the gradients of this
 * iteration's float vars and rows. WhileGrad runs it from the last
 * iteration to the first, feeding each iteration's vars from the history
 * (or the loop's input, for vars the body passes through unchanged). */
static void grad_while(mfi_grad_ctx *g)
{
  mf_op *op = g->op;
  if (!mfi_attr_bool(op, "back_prop", true)) return;
  while_sizes z = sizes_of(op);
  const mfi_function *body = function_of(op, "body");
  int na = z.n + z.k, nr = z.n + z.m;
  int *dvar = malloc(sizeof(int) * (size_t)(z.n + 1)),
      *dslice = malloc(sizeof(int) * (size_t)(z.k + 1));
  int *dout = malloc(sizeof(int) * (size_t)(z.m + 1));
  int64_t *stacked = malloc(sizeof(int64_t) * (size_t)(z.n + 1)); /* the attribute's list */
  mf_output *ys = malloc(sizeof *ys * (size_t)(nr + 1)),
            *dys = malloc(sizeof *dys * (size_t)(nr + 1));
  mf_output *xs = malloc(sizeof *xs * (size_t)(na + 1)),
            *dx = malloc(sizeof *dx * (size_t)(na + 1));
  mf_op **args = malloc(sizeof *args * (size_t)(na + nr + 1));
  int64_t *lists = malloc(sizeof(int64_t) * (size_t)(z.n + z.k + z.m + 1));
  char name[MF_MAX_NAME + 1] = "";
  if (!dvar || !dslice || !dout || !stacked || !ys || !dys || !xs || !dx || !args || !lists) {
    mfi_set(g->status, MF_RESOURCE_EXHAUSTED, "out of memory differentiating '%s'", op->name);
    goto done;
  }
  int nv = 0, ns = 0, no = 0;
  for (int i = 0; i < z.n; i++)
    if (mfi_is_float(op->out[1 + i].dtype)) dvar[nv++] = i;
  for (int j = 0; j < z.k; j++)
    if (mfi_is_float(arg_meta(body, z.n + j)->dtype)) dslice[ns++] = j;
  for (int j = 0; j < z.m; j++)
    if (mfi_is_float(op->out[1 + z.n + j].dtype)) dout[no++] = j;
  if (nv + ns == 0 || !no_updates(g, body)) goto done;
  int ny = 0;
  for (int i = 0; i < nv; i++, ny++) {
    ys[ny] = body->res[dvar[i]];
    dys[ny] = gb_placeholder(g, arg_meta(body, dvar[i]));
  }
  for (int j = 0; j < no; j++, ny++) {
    ys[ny] = body->res[z.n + dout[j]];
    mfi_meta m = res_meta(body, z.n + dout[j]);
    dys[ny] = gb_placeholder(g, &m);
  }
  int nx = 0;
  for (int i = 0; i < nv; i++) xs[nx++] = (mf_output){body->args[dvar[i]], 0};
  for (int j = 0; j < ns; j++) xs[nx++] = (mf_output){body->args[z.n + dslice[j]], 0};
  if (!gb_grads(g, ny, ys, dys, nx, xs, dx)) goto done;
  for (int i = 0; i < na; i++) args[i] = body->args[i];
  for (int i = 0; i < ny; i++) args[na + i] = dys[i].op;
  gb_function(g, "body_grad", na + ny, args, nx, dx, name, sizeof name);

  mf_op_desc *d = mfi_gb_begin(g, "WhileGrad");
  if (d) mf_op_add_input(d, (mf_output){op, 0});
  for (int i = 0; i < z.n; i++) {
    mf_output r = body->res[i];
    stacked[i] = !(r.op == body->args[i] && r.index == 0);
    if (d) mf_op_add_input(d, stacked[i] ? (mf_output){op, 1 + z.n + z.m + i} : op->inputs[i]);
  }
  for (int j = 0; d && j < z.k; j++) mf_op_add_input(d, op->inputs[z.n + j]);
  for (int i = 0; d && i < nv; i++) mf_op_add_input(d, mfi_gb_dy(g, 1 + dvar[i]));
  for (int j = 0; d && j < no; j++) mf_op_add_input(d, mfi_gb_dy(g, 1 + z.n + dout[j]));
  if (d) {
    mf_op_set_attr_string(d, "grad", name);
    mf_op_set_attr_int(d, "num_vars", z.n);
    mf_op_set_attr_int(d, "num_slices", z.k);
    mf_op_set_attr_ints(d, "stacked", stacked, z.n);
    for (int i = 0; i < nv; i++) lists[i] = dvar[i];
    mf_op_set_attr_ints(d, "diff_vars", lists, nv);
    for (int j = 0; j < ns; j++) lists[j] = dslice[j];
    mf_op_set_attr_ints(d, "diff_slices", lists, ns);
    for (int j = 0; j < no; j++) lists[j] = dout[j];
    mf_op_set_attr_ints(d, "diff_outputs", lists, no);
  }
  mf_output w = mfi_gb_finish(g, d, 0);
  for (int i = 0; w.op && i < nv; i++) g->dx[dvar[i]] = (mf_output){w.op, i};
  for (int j = 0; w.op && j < ns; j++) g->dx[z.n + dslice[j]] = (mf_output){w.op, nv + j};
done:
  free(dvar), free(dslice), free(dout), free(stacked), free(ys), free(dys);
  free(xs), free(dx), free(args), free(lists);
}

/* ---------------------------------------------------------------- WhileGrad */

/* Inputs: 0 the trip count, 1 + i each var's history (stacked) or value,
 * 1 + n + j the sliced inputs, then the gradients of the float final vars
 * (diff_vars) and of the float stacked outputs (diff_outputs). Outputs:
 * the gradients of the float initial vars, then of the float sliced
 * inputs (diff_slices). */
typedef struct {
  int n, k, nv, ns, no;
  const int64_t *stacked, *dvar, *dslice, *dout;
} wgrad_sizes;

static bool wgrad_sizes_of(mfi_infer_ctx *c, const mf_op *op, wgrad_sizes *z)
{
  int64_t n, k;
  int cnt;
  if (c) {
    if (!mfi_check_int(c, "num_vars", true, 0, &n) || !mfi_check_int(c, "num_slices", true, 0, &k))
      return false;
  } else {
    n = mfi_attr_int(op, "num_vars", 0), k = mfi_attr_int(op, "num_slices", 0);
  }
  z->n = (int)n, z->k = (int)k;
  z->stacked = mfi_attr_ints(op, "stacked", &cnt);
  if (cnt != z->n && z->n) z->stacked = NULL;
  z->dvar = mfi_attr_ints(op, "diff_vars", &z->nv);
  z->dslice = mfi_attr_ints(op, "diff_slices", &z->ns);
  z->dout = mfi_attr_ints(op, "diff_outputs", &z->no);
  if (!z->dvar) z->nv = 0;
  if (!z->dslice) z->ns = 0;
  if (!z->dout) z->no = 0;
  return true;
}

static void infer_while_grad(mfi_infer_ctx *c)
{
  wgrad_sizes z;
  const mfi_function *f = function_attr(c, "grad");
  const int64_t *v;
  int cnt;
  if (!f || !wgrad_sizes_of(c, c->op, &z)) return;
  const char *lists[] = {"stacked", "diff_vars", "diff_slices", "diff_outputs"};
  for (int i = 0; i < 4; i++)
    if (mfi_check_ints(c, lists[i], &v, &cnt) < 0) return;
  bool ok = z.n >= 0 && z.k >= 0 && (z.n == 0 || z.stacked) &&
            c->op->nin == 1 + z.n + z.k + z.nv + z.no && f->nargs == z.n + z.k + z.nv + z.no &&
            f->nres == z.nv + z.ns;
  for (int i = 0; ok && i < z.nv; i++) ok = z.dvar[i] >= 0 && z.dvar[i] < z.n;
  for (int i = 0; ok && i < z.ns; i++) ok = z.dslice[i] >= 0 && z.dslice[i] < z.k;
  if (!ok || c->in[0].dtype != MF_INT32) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT,
                    "inputs and attributes do not describe a While gradient (%d inputs, "
                    "function '%s' with %d arguments and %d results)",
                    c->op->nin, f->name, f->nargs, f->nres);
    return;
  }
  if (!mfi_set_outputs(c, z.nv + z.ns)) return;
  for (int i = 0; i < z.nv; i++) c->op->out[i] = c->in[1 + z.n + z.k + i];
  for (int j = 0; j < z.ns; j++) c->op->out[z.nv + j] = c->in[1 + z.n + z.dslice[j]];
}

static void cpu_while_grad(mfi_kctx *k)
{
  wgrad_sizes z;
  wgrad_sizes_of(NULL, k->op, &z);
  const mfi_function *f = function_of(k->op, "grad");
  const mf_tensor *tt = k->in[0];
  int64_t trips = tt->numel == 1 ? *(const int32_t *)mfi_data(tt) : -1;
  /* The trip count and the stacked inputs come from the While; a C host (or
   * a feed) may hand in anything else: refuse what does not fit. */
  bool fits = trips >= 0;
  for (int i = 0; fits && i < z.n; i++) {
    const mf_tensor *src = k->in[1 + i];
    fits = !z.stacked[i] || (src->ndim > 0 && src->dims[0] == trips);
  }
  for (int j = 0; fits && j < z.k; j++) {
    const mf_tensor *sl = k->in[1 + z.n + j];
    fits = sl->ndim > 0 && sl->dims[0] >= trips;
  }
  for (int j = 0; fits && j < z.no; j++) {
    const mf_tensor *g = k->in[1 + z.n + z.k + z.nv + j];
    fits = g->ndim > 0 && g->dims[0] == trips;
  }
  if (!fits) {
    mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
                 "the trip count (%lld) does not match the loop's history, sliced inputs or "
                 "output gradients",
                 (long long)trips);
    return;
  }
  uint64_t fwd_run = mfi_run_of(k, k->op->inputs[0].op);
  int na = z.n + z.k + z.nv + z.no, nr = z.nv + z.ns;
  mf_tensor **args = calloc((size_t)na + 1, sizeof *args);
  mf_tensor **res = calloc((size_t)nr + 1, sizeof *res);
  mf_tensor **dv = calloc((size_t)z.nv + 1, sizeof *dv);
  tlist *rows = calloc((size_t)z.ns + 1, sizeof *rows);
  if (!args || !res || !dv || !rows) {
    mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
    goto done;
  }
  for (int j = 0; j < z.ns; j++) {
    rows[j].v = calloc((size_t)trips + 1, sizeof(mf_tensor *));
    if (!rows[j].v) {
      mfi_op_error(k->status, MF_RESOURCE_EXHAUSTED, k->op, "out of memory");
      goto done;
    }
    rows[j].n = rows[j].cap = trips;
  }
  for (int i = 0; i < z.nv; i++) dv[i] = mf_tensor_retain(k->in[1 + z.n + z.k + i]);
  for (int64_t it = trips - 1; it >= 0; it--) {
    for (int i = 0; i < z.n; i++) {
      mf_tensor *src = k->in[1 + i];
      args[i] = z.stacked[i] ? mf_tensor_subtensor(src, it, k->status) : mf_tensor_retain(src);
      if (!args[i]) goto done;
    }
    for (int j = 0; j < z.k; j++)
      if (!(args[z.n + j] = mf_tensor_subtensor(k->in[1 + z.n + j], it, k->status))) goto done;
    for (int i = 0; i < z.nv; i++) args[z.n + z.k + i] = dv[i], dv[i] = NULL;
    for (int j = 0; j < z.no; j++) {
      mf_tensor *g = k->in[1 + z.n + z.k + z.nv + j];
      if (!(args[z.n + z.k + z.nv + j] = mf_tensor_subtensor(g, it, k->status))) goto done;
    }
    bool ok = mfi_call(k, 0, f, args, res, mfi_call_path(fwd_run, 2 * (uint64_t)it + 1));
    release(args, na);
    if (!ok) goto done;
    for (int i = 0; i < z.nv; i++) dv[i] = res[i], res[i] = NULL;
    for (int j = 0; j < z.ns; j++) rows[j].v[it] = res[z.nv + j], res[z.nv + j] = NULL;
  }
  for (int i = 0; i < z.nv; i++) k->out[i] = dv[i], dv[i] = NULL;
  for (int j = 0; j < z.ns; j++) {
    const mf_tensor *in = k->in[1 + z.n + z.dslice[j]];
    mfi_meta elem = row_meta(&k->op->out[z.nv + j]);
    mf_tensor *st = stack(k, rows[j].v, trips, &elem, "sliced input", (int)z.dslice[j] + 1);
    if (!st) goto done;
    bool same = st->ndim == in->ndim;
    for (int d = 0; same && d < in->ndim; d++) same = st->dims[d] == in->dims[d];
    if (same) {
      k->out[z.nv + j] = st;
      continue;
    }
    /* The loop stopped before the last rows (or never ran): their gradient is zero. */
    mf_tensor *full =
        mfi_tensor_empty_on(mfi_tensor_device(st), in->dtype, in->ndim, in->dims, k->status);
    mfi_device *d = full ? mfi_tensor_device(full) : NULL;
    bool ok = full &&
              d->ops.fill(d, mfi_data(full), 0, mf_tensor_nbytes(full), k->stream, k->status) &&
              (st->numel == 0 || mfi_device_copy(d, mfi_data(full), mfi_tensor_device(st),
                                                 mfi_data(st), mf_tensor_nbytes(st), k->status));
    mf_tensor_delete(st);
    if (!ok) {
      mf_tensor_delete(full);
      goto done;
    }
    k->out[z.nv + j] = full;
  }
done:
  if (args) release(args, na);
  if (res) release(res, nr);
  if (dv) release(dv, z.nv);
  for (int j = 0; rows && j < z.ns; j++) tfree(&rows[j]);
  free(args), free(res), free(dv), free(rows);
}

/* ---------------------------------------------------------------- registry */

mfi_opdef mfi_ops_control[] = {
    {.type = "If",
     .doc = "Calls the function then_branch or else_branch on the inputs, by the scalar bool cond.",
     .inputs = "cond, input*",
     .outputs = "output*",
     .attrs = "then_branch: string; else_branch: string; forward: string?",
     .min_inputs = 1,
     .max_inputs = -1,
     .flags = MFI_CONTROL | MFI_ANY_DEVICE,
     .infer = infer_if,
     .kernel = {[MFI_DEVICE_CPU] = cpu_if},
     .host_in = 1u << 0,
     .grad = grad_if},
    {.type = "While",
     .doc = "Runs the function body while the function cond holds, over loop variables and sliced "
            "inputs.",
     .inputs = "input*",
     .outputs = "trip_count, output*",
     .attrs = "cond: string; body: string; num_slices: int = 0; num_outputs: int = 0; back_prop: "
              "bool = true",
     .min_inputs = 0,
     .max_inputs = -1,
     .flags = MFI_CONTROL | MFI_ANY_DEVICE,
     .infer = infer_while,
     .kernel = {[MFI_DEVICE_CPU] = cpu_while},
     .host_out = 1u << 0,
     .grad = grad_while},
    {.type = "WhileGrad",
     .doc = "Runs a While's gradient function backwards over the iterations.",
     .inputs = "trip_count, input*",
     .outputs = "output*",
     .attrs = "grad: string; num_vars: int; num_slices: int; stacked: ints?; diff_vars: ints?; "
              "diff_slices: ints?; diff_outputs: ints?",
     .min_inputs = 1,
     .max_inputs = -1,
     .flags = MFI_CONTROL | MFI_ANY_DEVICE,
     .infer = infer_while_grad,
     .kernel = {[MFI_DEVICE_CPU] = cpu_while_grad},
     .host_in = 1u << 0},
    {0}};
