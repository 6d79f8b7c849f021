/* Symbolic differentiation: mf_gradients adds the operations computing
 * d(sum of ys)/d(xs) to the graph, under a gradients/ name scope, walking the
 * ops between xs and ys in reverse creation order (a reverse topological
 * order, since inputs always exist before their consumers). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- builder helpers */

mf_op_desc *mfi_gb_begin(mfi_grad_ctx *g, const char *type)
{
  if (!mfi_ok(g->status)) return NULL;
  char base[600], name[700];
  snprintf(base, sizeof base, "%s/%s", g->scope, type);
  mf_graph_unique_name(g->graph, base, name, sizeof name);
  mf_op_desc *d = mf_op_begin(g->graph, type, name);
  /* Errors in gradient ops point at the forward op's creation site. */
  if (d) mf_op_set_location(d, g->op->location);
  if (d && g->op->device[0]) mf_op_set_device(d, g->op->device);
  return d;
}

mf_output mfi_gb_finish(mfi_grad_ctx *g, mf_op_desc *d, int index)
{
  mf_output none = {NULL, 0};
  if (!mfi_ok(g->status)) {
    if (d) mf_op_finish(d, g->status); /* frees d; keeps the first error */
    return none;
  }
  mf_status s;
  mfi_clear(&s);
  mf_op *op = mf_op_finish(d, &s);
  if (!op) {
    mfi_set(g->status, s.code, "while differentiating %s '%s': %s", g->op->def->type, g->op->name,
            s.msg);
    return none;
  }
  return (mf_output){op, index};
}

static mf_output gb(mfi_grad_ctx *g, const char *type, int n, const mf_output *in)
{
  for (int i = 0; i < n; i++)
    if (mfi_is_none(in[i]) && mfi_ok(g->status))
      mfi_set(g->status, MF_INTERNAL, "gradient of %s '%s': a missing intermediate",
              g->op->def->type, g->op->name);
  mf_op_desc *d = mfi_gb_begin(g, type);
  for (int i = 0; d && i < n; i++) mf_op_add_input(d, in[i]);
  return mfi_gb_finish(g, d, 0);
}

mf_output mfi_gb1(mfi_grad_ctx *g, const char *type, mf_output a) { return gb(g, type, 1, &a); }
mf_output mfi_gb2(mfi_grad_ctx *g, const char *type, mf_output a, mf_output b)
{
  mf_output in[2] = {a, b};
  return gb(g, type, 2, in);
}
mf_output mfi_gb3(mfi_grad_ctx *g, const char *type, mf_output a, mf_output b, mf_output c)
{
  mf_output in[3] = {a, b, c};
  return gb(g, type, 3, in);
}

mf_output mfi_gb_scalar(mfi_grad_ctx *g, mf_dtype dt, double v)
{
  mf_status s;
  mfi_clear(&s);
  mf_tensor *t = mfi_tensor_empty(dt, 0, NULL, &s);
  if (!t) {
    if (mfi_ok(g->status)) *g->status = s;
    return (mf_output){NULL, 0};
  }
  mfi_set_f(dt, mfi_data(t), 0, v);
  mf_op_desc *d = mfi_gb_begin(g, "Const");
  if (d) mf_op_set_attr_tensor(d, "value", t);
  mf_tensor_delete(t);
  return mfi_gb_finish(g, d, 0);
}

void mfi_gb_copy_attr(mf_op_desc *d, const mf_op *op, const char *name)
{
  const mfi_attr *a = mfi_attr_find(op, name);
  if (!d || !a) return;
  switch (a->kind) {
  case MFI_A_INT: mf_op_set_attr_int(d, name, a->i); break;
  case MFI_A_FLOAT: mf_op_set_attr_float(d, name, a->f); break;
  case MFI_A_BOOL: mf_op_set_attr_bool(d, name, (int)a->i); break;
  case MFI_A_TYPE: mf_op_set_attr_type(d, name, (mf_dtype)a->i); break;
  case MFI_A_STRING: mf_op_set_attr_string(d, name, a->s); break;
  case MFI_A_INTS: mf_op_set_attr_ints(d, name, a->ints, (int)a->i); break;
  case MFI_A_SHAPE: mf_op_set_attr_shape(d, name, a->ints, (int)a->i); break;
  case MFI_A_TENSOR: mf_op_set_attr_tensor(d, name, a->t); break;
  }
}

mf_output mfi_gb_dy(mfi_grad_ctx *g, int i)
{
  if (!mfi_is_none(g->dy[i])) return g->dy[i];
  return mfi_gb1(g, "ZerosLike", (mf_output){g->op, i});
}

mf_output mfi_gb_reduce_like(mfi_grad_ctx *g, mf_output t, mf_output like)
{
  /* Statically equal shapes need no reduction. */
  mfi_meta a = mfi_meta_of(t), b = mfi_meta_of(like);
  bool same = a.ndim >= 0 && a.ndim == b.ndim;
  for (int i = 0; same && i < a.ndim; i++) same = a.dims[i] >= 0 && a.dims[i] == b.dims[i];
  if (same) return t;
  return mfi_gb2(g, "SumToShapeOf", t, like);
}

/* ---------------------------------------------------------------- the walk */

typedef struct {
  mf_output *v;
  int n, cap;
} olist;

static bool olist_push(olist *l, mf_output o)
{
  if (l->n == l->cap) {
    int cap = l->cap ? l->cap * 2 : 2;
    mf_output *v = realloc(l->v, sizeof *v * cap);
    if (!v) return false;
    l->v = v, l->cap = cap;
  }
  l->v[l->n++] = o;
  return true;
}

static bool is_float(mf_output o) { return mfi_is_float(o.op->out[o.index].dtype); }

/* The sum of a list of gradients (AddN when there are several). */
static mf_output sum_grads(mfi_grad_ctx *g, olist *l)
{
  if (l->n == 0) return (mf_output){NULL, 0};
  if (l->n == 1) return l->v[0];
  mf_op_desc *d = mfi_gb_begin(g, "AddN");
  for (int i = 0; d && i < l->n; i++) mf_op_add_input(d, l->v[i]);
  return mfi_gb_finish(g, d, 0);
}

static bool valid_output(const mf_graph *g, mf_output o)
{
  return o.op && o.op->graph == g && o.index >= 0 && o.index < o.op->nout;
}

void mf_gradients(mf_graph *graph, const mf_output *ys, int ny, const mf_output *xs, int nx,
                  const mf_output *grad_ys, mf_output *dx, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  const char *bad = !graph          ? "graph is NULL"
                    : ny < 0        ? "ny is negative"
                    : nx < 0        ? "nx is negative"
                    : ny > 0 && !ys ? "ys is NULL"
                    : nx > 0 && !xs ? "xs is NULL"
                    : nx > 0 && !dx ? "dx is NULL"
                                    : NULL;
  if (bad) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_gradients: %s", bad);
    return;
  }
  for (int i = 0; i < nx; i++) dx[i] = (mf_output){NULL, 0};
  for (int i = 0; i < ny; i++)
    if (!valid_output(graph, ys[i])) {
      mfi_set(s, MF_INVALID_ARGUMENT, "gradients: y %d is not an output in this graph", i + 1);
      return;
    }
  for (int i = 0; i < nx; i++)
    if (!valid_output(graph, xs[i])) {
      mfi_set(s, MF_INVALID_ARGUMENT, "gradients: x %d is not an output in this graph", i + 1);
      return;
    }
  for (int i = 0; grad_ys && i < ny; i++)
    if (!mfi_is_none(grad_ys[i]) && !valid_output(graph, grad_ys[i])) {
      mfi_set(s, MF_INVALID_ARGUMENT, "gradients: grad_y %d is not an output in this graph", i + 1);
      return;
    }
  int nops = graph->nops;
  char *from_x = calloc(nops ? nops : 1, 1), *to_y = calloc(nops ? nops : 1, 1);
  olist *grads = NULL; /* per (op, output): pending gradient contributions */
  int *first = malloc(sizeof(int) * (nops ? nops : 1));
  int total = 0;
  if (!from_x || !to_y || !first) goto oom;
  for (int id = 0; id < nops; id++) first[id] = total, total += graph->ops[id]->nout;
  grads = calloc(total ? total : 1, sizeof *grads);
  if (!grads) goto oom;

  /* Ops that depend on some x (forward) and that some y depends on (backward). */
  for (int i = 0; i < nx; i++) from_x[xs[i].op->id] = 1;
  int lo = nops;
  for (int i = 0; i < nx; i++) lo = xs[i].op->id < lo ? xs[i].op->id : lo;
  for (int id = lo; id < nops; id++) {
    const mf_op *op = graph->ops[id];
    for (int j = 0; j < op->nin && !from_x[id]; j++)
      if (from_x[op->inputs[j].op->id]) from_x[id] = 1;
  }
  for (int i = 0; i < ny; i++) to_y[ys[i].op->id] = 1;
  for (int id = nops - 1; id >= 0; id--) {
    if (!to_y[id]) continue;
    const mf_op *op = graph->ops[id];
    for (int j = 0; j < op->nin; j++) to_y[op->inputs[j].op->id] = 1;
  }

  char prefix[256];
  mf_graph_unique_name(graph, "gradients", prefix, sizeof prefix);
  for (int i = 0; i < ny; i++) {
    mf_output y = ys[i], gy;
    if (!from_x[y.op->id]) continue;
    if (grad_ys && !mfi_is_none(grad_ys[i])) {
      gy = grad_ys[i];
    } else {
      char scope[300];
      snprintf(scope, sizeof scope, "%s", prefix);
      mfi_grad_ctx g = {graph, y.op, NULL, NULL, scope, s};
      gy = mfi_gb1(&g, "OnesLike", y);
    }
    if (!mfi_ok(s)) goto done;
    if (!olist_push(&grads[first[y.op->id] + y.index], gy)) goto oom;
  }

  /* Reverse creation order; stop below the earliest x. */
  for (int id = nops - 1; id >= lo && mfi_ok(s); id--) {
    mf_op *op = graph->ops[id];
    if (!from_x[id] || !to_y[id]) continue;
    char scope[600];
    snprintf(scope, sizeof scope, "%s/%s_grad", prefix, op->name);
    mfi_grad_ctx g = {graph, op, NULL, NULL, scope, s};
    mf_output *dy = calloc(op->nout ? op->nout : 1, sizeof *dy);
    mf_output *din = calloc(op->nin ? op->nin : 1, sizeof *din);
    if (!dy || !din) {
      free(dy), free(din);
      goto oom;
    }
    bool any = false;
    for (int k = 0; k < op->nout; k++) {
      olist *l = &grads[first[id] + k];
      dy[k] = sum_grads(&g, l);
      /* Keep the summed gradient: an x may be this very output. */
      if (l->n > 1 && !mfi_is_none(dy[k])) l->n = 0, olist_push(l, dy[k]);
      any |= !mfi_is_none(dy[k]);
    }
    bool needs_inputs = false; /* does any input lead back to an x? */
    for (int j = 0; j < op->nin; j++) needs_inputs |= from_x[op->inputs[j].op->id];
    if (any && needs_inputs && !(op->def->flags & MFI_NO_GRADIENT)) {
      if (!op->def->grad) {
        mfi_op_error(s, MF_INVALID_ARGUMENT, op,
                     "no gradient is defined for operation type %s, which lies between the ys "
                     "and the xs (use tf.stop_gradient to cut the path)",
                     op->def->type);
      } else {
        g.dy = dy, g.dx = din;
        op->def->grad(&g);
        for (int j = 0; j < op->nin && mfi_ok(s); j++) {
          mf_output in = op->inputs[j];
          if (mfi_is_none(din[j]) || !from_x[in.op->id] || !is_float(in)) continue;
          if (!olist_push(&grads[first[in.op->id] + in.index], din[j])) {
            free(dy), free(din);
            goto oom;
          }
        }
      }
    }
    free(dy), free(din);
  }
  for (int i = 0; i < nx && mfi_ok(s); i++) {
    olist *l = &grads[first[xs[i].op->id] + xs[i].index];
    if (l->n) dx[i] = l->v[0];
  }
  goto done;
oom:
  mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory while differentiating");
done:
  if (!mfi_ok(s))
    for (int i = 0; i < nx; i++) dx[i] = (mf_output){NULL, 0};
  if (grads)
    for (int i = 0; i < total; i++) free(grads[i].v);
  free(grads), free(from_x), free(to_y), free(first);
}
