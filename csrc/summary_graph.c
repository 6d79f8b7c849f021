/* A graph as a serialized GraphDef (TensorBoard's graph page,
 * mf_graph_export): each op's name, type, inputs, device and attributes in
 * TF's AttrValue encoding, and the graph functions as a FunctionDefLibrary
 * (proto/function.proto says how). Two attributes beside TF's
 * "_output_shapes" let graph_import.c rebuild the graph exactly:
 * "_mf_location" (the op's file:line) and "_mf_f64" (float attributes
 * whose value a float32 does not hold: names in list.s, the doubles' bits
 * in list.i). */
/* protoc-c's initializer macros cast its const empty string to char *. */
#pragma GCC diagnostic ignored "-Wcast-qual"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "proto/function.pb-c.h"
#include "proto/graph.pb-c.h"
#include "summary.h"

static char *mut(const char *p) { return (char *)(uintptr_t)p; }

static Tensorflow__DataType tf_dtype(mf_dtype dt)
{
  switch (dt) {
  case MF_FLOAT32: return TENSORFLOW__DATA_TYPE__DT_FLOAT;
  case MF_FLOAT64: return TENSORFLOW__DATA_TYPE__DT_DOUBLE;
  case MF_INT32: return TENSORFLOW__DATA_TYPE__DT_INT32;
  case MF_INT64: return TENSORFLOW__DATA_TYPE__DT_INT64;
  case MF_BOOL: return TENSORFLOW__DATA_TYPE__DT_BOOL;
  case MF_UINT8: return TENSORFLOW__DATA_TYPE__DT_UINT8;
  case MF_STRING: return TENSORFLOW__DATA_TYPE__DT_STRING;
  default: return TENSORFLOW__DATA_TYPE__DT_INVALID;
  }
}

bool mfi_dtype_from_tf(int tf, mf_dtype *dt)
{
  switch (tf) {
  case TENSORFLOW__DATA_TYPE__DT_FLOAT: *dt = MF_FLOAT32; return true;
  case TENSORFLOW__DATA_TYPE__DT_DOUBLE: *dt = MF_FLOAT64; return true;
  case TENSORFLOW__DATA_TYPE__DT_INT32: *dt = MF_INT32; return true;
  case TENSORFLOW__DATA_TYPE__DT_INT64: *dt = MF_INT64; return true;
  case TENSORFLOW__DATA_TYPE__DT_BOOL: *dt = MF_BOOL; return true;
  case TENSORFLOW__DATA_TYPE__DT_UINT8: *dt = MF_UINT8; return true;
  case TENSORFLOW__DATA_TYPE__DT_STRING: *dt = MF_STRING; return true;
  default: return false;
  }
}

/* Everything one encoding allocates, freed together. */
typedef struct {
  void **p;
  size_t n, cap;
  bool oom;
} arena;

static void *take(arena *a, void *p)
{
  if (!p || a->oom) {
    free(p);
    a->oom = true;
    return NULL;
  }
  if (a->n == a->cap) {
    size_t cap = a->cap ? 2 * a->cap : 256;
    void **q = realloc(a->p, cap * sizeof *q);
    if (!q) {
      free(p);
      a->oom = true;
      return NULL;
    }
    a->p = q, a->cap = cap;
  }
  return a->p[a->n++] = p;
}
static void *alloc(arena *a, size_t size) { return take(a, calloc(1, size ? size : 1)); }

static Tensorflow__TensorShapeProto *shape_proto(arena *a, int ndim, const int64_t *dims)
{
  Tensorflow__TensorShapeProto *sp = alloc(a, sizeof *sp);
  if (!sp) return NULL;
  tensorflow__tensor_shape_proto__init(sp);
  if (ndim < 0) {
    sp->unknown_rank = true;
    return sp;
  }
  Tensorflow__TensorShapeProto__Dim *d = alloc(a, (size_t)ndim * sizeof *d);
  sp->dim = alloc(a, (size_t)ndim * sizeof *sp->dim);
  if (!d || !sp->dim) return NULL;
  for (int i = 0; i < ndim; i++) {
    tensorflow__tensor_shape_proto__dim__init(&d[i]);
    d[i].size = dims[i];
    sp->dim[i] = &d[i];
  }
  sp->n_dim = (size_t)ndim;
  return sp;
}

static Tensorflow__TensorProto *tensor_proto(arena *a, mf_tensor *t, mf_status *s)
{
  Tensorflow__TensorProto *tp = alloc(a, sizeof *tp);
  if (!tp) return NULL;
  tensorflow__tensor_proto__init(tp);
  tp->dtype = tf_dtype(t->dtype);
  tp->tensor_shape = shape_proto(a, t->ndim, t->dims);
  if (t->dtype == MF_STRING) { /* host memory; one string_val per element */
    tp->string_val = alloc(a, (size_t)(t->numel ? t->numel : 1) * sizeof *tp->string_val);
    if (!tp->string_val) return NULL;
    for (int64_t i = 0; i < t->numel; i++) {
      size_t n = 0;
      const char *p = mfi_string_get(t, i, &n);
      tp->string_val[i].data = (uint8_t *)(uintptr_t)(p ? p : "");
      tp->string_val[i].len = p ? n : 0;
    }
    tp->n_string_val = (size_t)t->numel;
    return tp;
  }
  mf_tensor *h = mfi_tensor_to(t, mfi_device_cpu(), s);
  if (!h) return NULL;
  size_t nb = mf_tensor_nbytes(h);
  void *copy = alloc(a, nb);
  if (copy && nb) memcpy(copy, mfi_data(h), nb);
  mf_tensor_delete(h);
  tp->tensor_content.data = copy;
  tp->tensor_content.len = nb;
  return tp;
}

static Tensorflow__AttrValue *attr_value(arena *a, const mfi_attr *at, mf_status *s)
{
  Tensorflow__AttrValue *v = alloc(a, sizeof *v);
  if (!v) return NULL;
  tensorflow__attr_value__init(v);
  switch (at->kind) {
  case MFI_A_INT: v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_I, v->i = at->i; break;
  case MFI_A_FLOAT: v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_F, v->f = (float)at->f; break;
  case MFI_A_BOOL: v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_B, v->b = at->i != 0; break;
  case MFI_A_TYPE:
    v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_TYPE;
    v->type = tf_dtype((mf_dtype)at->i);
    break;
  case MFI_A_STRING:
    v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_S;
    v->s.data = (uint8_t *)at->s, v->s.len = at->s ? strlen(at->s) : 0;
    break;
  case MFI_A_INTS: {
    Tensorflow__AttrValue__ListValue *l = alloc(a, sizeof *l);
    if (!l) return NULL;
    tensorflow__attr_value__list_value__init(l);
    l->n_i = (size_t)at->i, l->i = at->ints;
    v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_LIST, v->list = l;
    break;
  }
  case MFI_A_SHAPE:
    v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_SHAPE;
    v->shape = shape_proto(a, (int)at->i, at->ints);
    break;
  case MFI_A_TENSOR:
    v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_TENSOR;
    v->tensor = tensor_proto(a, at->t, s);
    if (!v->tensor) return NULL;
    break;
  }
  return v;
}

/* "_output_shapes": a list of the outputs' static shapes, as TF writes
 * with add_shapes. */
static Tensorflow__AttrValue *output_shapes(arena *a, const mf_op *op)
{
  Tensorflow__AttrValue *v = alloc(a, sizeof *v);
  Tensorflow__AttrValue__ListValue *l = alloc(a, sizeof *l);
  if (!v || !l) return NULL;
  tensorflow__attr_value__init(v);
  tensorflow__attr_value__list_value__init(l);
  l->shape = alloc(a, (size_t)op->nout * sizeof *l->shape);
  if (!l->shape) return NULL;
  for (int i = 0; i < op->nout; i++)
    if (!(l->shape[i] = shape_proto(a, op->out[i].ndim, op->out[i].dims))) return NULL;
  l->n_shape = (size_t)op->nout;
  v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_LIST, v->list = l;
  return v;
}

static bool node_def(arena *a, const mf_op *op, Tensorflow__NodeDef *nd, bool full, mf_status *s)
{
  tensorflow__node_def__init(nd);
  nd->name = op->name;
  nd->op = mut(op->def ? op->def->type : "");
  nd->device = op->device ? op->device : mut("");
  nd->input = alloc(a, (size_t)(op->nin + op->nctrl) * sizeof *nd->input);
  if (!nd->input) return false;
  for (int i = 0; i < op->nin; i++) {
    const mf_output *in = &op->inputs[i];
    size_t len = strlen(in->op->name) + 24;
    char *str = alloc(a, len);
    if (!str) return false;
    if (in->index == 0)
      snprintf(str, len, "%s", in->op->name);
    else
      snprintf(str, len, "%s:%d", in->op->name, in->index);
    nd->input[nd->n_input++] = str;
  }
  for (int i = 0; i < op->nctrl; i++) {
    size_t len = strlen(op->ctrl[i]->name) + 2;
    char *str = alloc(a, len);
    if (!str) return false;
    snprintf(str, len, "^%s", op->ctrl[i]->name);
    nd->input[nd->n_input++] = str;
  }
  Tensorflow__NodeDef__AttrEntry *e = alloc(a, (size_t)(op->nattr + 3) * sizeof *e);
  nd->attr = alloc(a, (size_t)(op->nattr + 3) * sizeof *nd->attr);
  if (!e || !nd->attr) return false;
  for (int i = 0; i <= op->nattr; i++) {
    tensorflow__node_def__attr_entry__init(&e[i]);
    if (i < op->nattr) {
      e[i].key = op->attrs[i].name;
      e[i].value = attr_value(a, &op->attrs[i], s);
    } else {
      e[i].key = mut("_output_shapes");
      e[i].value = output_shapes(a, op);
    }
    if (!e[i].value) return false;
    nd->attr[nd->n_attr++] = &e[i];
  }
  int k = op->nattr + 1;
  if (!full) return true;
  if (op->location && op->location[0]) {
    Tensorflow__AttrValue *v = alloc(a, sizeof *v);
    if (!v) return false;
    tensorflow__attr_value__init(v);
    v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_S;
    v->s.data = (uint8_t *)op->location, v->s.len = strlen(op->location);
    tensorflow__node_def__attr_entry__init(&e[k]);
    e[k].key = mut("_mf_location"), e[k].value = v;
    nd->attr[nd->n_attr++] = &e[k++];
  }
  int nf = 0;
  for (int i = 0; i < op->nattr; i++)
    nf += op->attrs[i].kind == MFI_A_FLOAT && (double)(float)op->attrs[i].f != op->attrs[i].f;
  if (nf) {
    Tensorflow__AttrValue *v = alloc(a, sizeof *v);
    Tensorflow__AttrValue__ListValue *l = alloc(a, sizeof *l);
    if (!v || !l) return false;
    tensorflow__attr_value__init(v);
    tensorflow__attr_value__list_value__init(l);
    l->s = alloc(a, (size_t)nf * sizeof *l->s);
    l->i = alloc(a, (size_t)nf * sizeof *l->i);
    if (!l->s || !l->i) return false;
    for (int i = 0; i < op->nattr; i++) {
      const mfi_attr *at = &op->attrs[i];
      if (at->kind != MFI_A_FLOAT || (double)(float)at->f == at->f) continue;
      l->s[l->n_s].data = (uint8_t *)at->name, l->s[l->n_s++].len = strlen(at->name);
      memcpy(&l->i[l->n_i++], &at->f, sizeof at->f);
    }
    v->value_case = TENSORFLOW__ATTR_VALUE__VALUE_LIST, v->list = l;
    tensorflow__node_def__attr_entry__init(&e[k]);
    e[k].key = mut("_mf_f64"), e[k].value = v;
    nd->attr[nd->n_attr++] = &e[k++];
  }
  return true;
}

static char *out_name(arena *a, const mf_output *o)
{
  size_t len = strlen(o->op->name) + 24;
  char *str = alloc(a, len);
  if (str) snprintf(str, len, "%s:%d", o->op->name, o->index);
  return str;
}

static Tensorflow__OpDef__ArgDef *arg_def(arena *a, char *name, mf_dtype dt)
{
  Tensorflow__OpDef__ArgDef *ad = alloc(a, sizeof *ad);
  if (!ad) return NULL;
  tensorflow__op_def__arg_def__init(ad);
  ad->name = name, ad->type = tf_dtype(dt);
  return ad;
}

/* A graph function as a FunctionDef over main-list nodes (see
 * proto/function.proto). */
static Tensorflow__FunctionDef *function_def(arena *a, const mfi_function *f)
{
  Tensorflow__FunctionDef *fd = alloc(a, sizeof *fd);
  Tensorflow__OpDef *sig = alloc(a, sizeof *sig);
  if (!fd || !sig) return NULL;
  tensorflow__function_def__init(fd);
  tensorflow__op_def__init(sig);
  fd->signature = sig;
  sig->name = f->name;
  sig->input_arg = alloc(a, (size_t)f->nargs * sizeof *sig->input_arg);
  sig->output_arg = alloc(a, (size_t)f->nres * sizeof *sig->output_arg);
  fd->ret = alloc(a, (size_t)f->nres * sizeof *fd->ret);
  sig->control_output = alloc(a, (size_t)f->ntargets * sizeof *sig->control_output);
  fd->control_ret = alloc(a, (size_t)f->ntargets * sizeof *fd->control_ret);
  if (!sig->input_arg || !sig->output_arg || !fd->ret || !sig->control_output || !fd->control_ret)
    return NULL;
  for (int i = 0; i < f->nargs; i++) {
    if (!(sig->input_arg[i] = arg_def(a, f->args[i]->name, f->args[i]->out[0].dtype))) return NULL;
    sig->n_input_arg++;
  }
  for (int i = 0; i < f->nres; i++) {
    char *name = alloc(a, 24);
    Tensorflow__FunctionDef__RetEntry *r = alloc(a, sizeof *r);
    if (!name || !r) return NULL;
    snprintf(name, 24, "output_%d", i);
    const mf_output *o = &f->res[i];
    if (!(sig->output_arg[i] = arg_def(a, name, o->op->out[o->index].dtype))) return NULL;
    sig->n_output_arg++;
    tensorflow__function_def__ret_entry__init(r);
    r->key = name;
    if (!(r->value = out_name(a, o))) return NULL;
    fd->ret[fd->n_ret++] = r;
  }
  for (int i = 0; i < f->ntargets; i++) {
    Tensorflow__FunctionDef__ControlRetEntry *r = alloc(a, sizeof *r);
    if (!r) return NULL;
    tensorflow__function_def__control_ret_entry__init(r);
    r->key = r->value = f->targets[i]->name;
    sig->control_output[sig->n_control_output++] = f->targets[i]->name;
    fd->control_ret[fd->n_control_ret++] = r;
  }
  return fd;
}

uint8_t *mfi_graph_def(const char *what, mf_graph *g, size_t *n, mf_status *s)
{
  return mfi_graph_def_full(what, g, n, false, s);
}

uint8_t *mfi_graph_def_full(const char *what, mf_graph *g, size_t *n, bool full, mf_status *s)
{
  if (!g) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s: graph must not be NULL", what);
    return NULL;
  }
  arena a = {0};
  uint8_t *out = NULL;
  pthread_mutex_lock(&g->lock);
  int nops = g->nops;
  Tensorflow__GraphDef gd = TENSORFLOW__GRAPH_DEF__INIT;
  Tensorflow__VersionDef ver = TENSORFLOW__VERSION_DEF__INIT;
  Tensorflow__NodeDef *nodes = alloc(&a, (size_t)nops * sizeof *nodes);
  gd.node = alloc(&a, (size_t)nops * sizeof *gd.node);
  for (int i = 0; nodes && gd.node && i < nops; i++) {
    if (!node_def(&a, g->ops[i], &nodes[i], full, s)) break;
    gd.node[gd.n_node++] = &nodes[i];
  }
  Tensorflow__FunctionDefLibrary lib = TENSORFLOW__FUNCTION_DEF_LIBRARY__INIT;
  if (full && g->nfuncs && (int)gd.n_node == nops) {
    lib.function = alloc(&a, (size_t)g->nfuncs * sizeof *lib.function);
    for (int i = 0; lib.function && i < g->nfuncs; i++) {
      if (!(lib.function[i] = function_def(&a, g->funcs[i]))) break;
      lib.n_function++;
    }
    gd.library = &lib;
  }
  pthread_mutex_unlock(&g->lock);
  if (mfi_ok(s) && !a.oom && (int)gd.n_node == nops) {
    gd.versions = &ver;
    size_t len = tensorflow__graph_def__get_packed_size(&gd);
    out = malloc(len ? len : 1);
    if (out)
      tensorflow__graph_def__pack(&gd, out), *n = len;
    else
      a.oom = true;
  }
  if (a.oom && mfi_ok(s))
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "%s: out of memory encoding the graph", what);
  for (size_t i = 0; i < a.n; i++) free(a.p[i]);
  free(a.p);
  return mfi_ok(s) ? out : (free(out), NULL);
}
