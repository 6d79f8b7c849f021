/* mf_graph_import: a binary GraphDef (what mf_graph_export writes, or any
 * GraphDef with moonflow's op types) added to a graph. Every node goes
 * through mf_op_begin / mf_op_finish, in an order where the nodes an input
 * names come first (a min-heap on the GraphDef's own order: Kahn's
 * algorithm, so a cycle is an error). Each function of the library is a
 * node of its own in that order: it depends on the nodes it names and the
 * nodes whose string attributes name it depend on it, so it is registered
 * (mf_graph_add_function) once its nodes exist and before its first
 * caller. The bytes come from outside: every count, index and name is
 * checked, and work and memory stay proportional to their length. */
/* protoc-c's initializer macros cast its const empty string to char *. */
#pragma GCC diagnostic ignored "-Wcast-qual"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/graph.pb-c.h"
#include "summary.h"

#define WHAT "mf_graph_import"

void mf_import_options_init(mf_import_options *o)
{
  if (o) memset(o, 0, sizeof *o);
}

/* ---------------------------------------------------------------- names */

/* Open-addressing map of names to indices (first one wins). */
typedef struct {
  const char **key;
  int *val;
  size_t cap;
} namemap;

static uint64_t hash(const char *s, size_t n)
{
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
  return h;
}

static bool map_init(namemap *m, size_t n)
{
  m->cap = 16;
  while (m->cap < 2 * n + 1) m->cap *= 2;
  m->key = calloc(m->cap, sizeof *m->key);
  m->val = calloc(m->cap, sizeof *m->val);
  return m->key && m->val;
}

static void map_free(namemap *m) { free(m->key), free(m->val); }

/* The index of the name of n bytes at s, or -1. */
static int map_get(const namemap *m, const char *s, size_t n)
{
  for (size_t i = hash(s, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (!m->key[i]) return -1;
    if (strlen(m->key[i]) == n && memcmp(m->key[i], s, n) == 0) return m->val[i];
  }
}

/* false when the name is there already. */
static bool map_put(namemap *m, const char *s, int v)
{
  size_t n = strlen(s);
  size_t i = hash(s, n) & (m->cap - 1);
  for (; m->key[i]; i = (i + 1) & (m->cap - 1))
    if (strcmp(m->key[i], s) == 0) return false;
  m->key[i] = s, m->val[i] = v;
  return true;
}

/* "op", "op:i": the op part's length and the index (0 when absent); false
 * for a bad index. */
bool mfi_split_tensor_name(const char *s, size_t *oplen, int *index)
{
  size_t n = strlen(s);
  const char *colon = strrchr(s, ':');
  *oplen = n, *index = 0;
  if (!colon || !colon[1]) return colon == NULL;
  long long v = 0;
  for (const char *p = colon + 1; *p; p++) {
    if (*p < '0' || *p > '9' || v > INT_MAX / 10) return false;
    v = v * 10 + (*p - '0');
  }
  if (v > INT_MAX - 9) return false;
  *oplen = (size_t)(colon - s), *index = (int)v;
  return true;
}

/* ---------------------------------------------------------------- values */

/* Broadcast values (TF's *_val with fewer values than elements) fill at
 * most this many elements. */
#define MAX_FILL ((int64_t)1 << 20)

static mf_tensor *tensor_of(const Tensorflow__TensorProto *tp, char *err, size_t esz, mf_status *s)
{
  mf_dtype dt;
  if (!mfi_dtype_from_tf(tp->dtype, &dt))
    return snprintf(err, esz, "a tensor of data type %d, which moonflow lacks", tp->dtype), NULL;
  const Tensorflow__TensorShapeProto *sp = tp->tensor_shape;
  int ndim = sp ? (int)sp->n_dim : 0;
  if (sp && (sp->unknown_rank || sp->n_dim > MF_MAX_DIMS))
    return snprintf(err, esz, "a tensor of unknown rank or more than %d dimensions", MF_MAX_DIMS),
           NULL;
  int64_t dims[MF_MAX_DIMS], numel = 1;
  size_t esize = dt == MF_STRING ? 1 : mf_dtype_size(dt);
  for (int i = 0; i < ndim; i++) {
    dims[i] = sp->dim[i]->size;
    if (dims[i] < 0) return snprintf(err, esz, "a tensor with a negative dimension"), NULL;
  }
  for (int i = 0; i < ndim; i++) {
    if (dims[i] == 0) {
      numel = 0;
      break;
    }
    if (numel > INT64_MAX / (int64_t)esize / dims[i])
      return snprintf(err, esz, "a tensor whose size overflows"), NULL;
    numel *= dims[i];
  }
  size_t nvals = 0;
  const void *vals = NULL;
  if (dt == MF_STRING) {
    if ((int64_t)tp->n_string_val != numel && !(numel <= MAX_FILL && tp->n_string_val <= 1))
      return snprintf(err, esz, "a string tensor of %lld elements with %zu values",
                      (long long)numel, tp->n_string_val),
             NULL;
  } else if (tp->tensor_content.len) {
    if ((uint64_t)numel * esize != tp->tensor_content.len)
      return snprintf(err, esz, "a tensor of %lld elements with %zu bytes of content",
                      (long long)numel, tp->tensor_content.len),
             NULL;
  } else {
    switch (dt) {
    case MF_FLOAT32: nvals = tp->n_float_val, vals = tp->float_val; break;
    case MF_FLOAT64: nvals = tp->n_double_val, vals = tp->double_val; break;
    case MF_INT64: nvals = tp->n_int64_val, vals = tp->int64_val; break;
    case MF_BOOL: nvals = tp->n_bool_val, vals = tp->bool_val; break;
    default: nvals = tp->n_int_val, vals = tp->int_val; break;
    }
    if ((int64_t)nvals > numel || ((int64_t)nvals < numel && numel > MAX_FILL))
      return snprintf(err, esz, "a tensor of %lld elements with %zu values", (long long)numel,
                      nvals),
             NULL;
  }
  mf_tensor *t = mf_tensor_new(dt, ndim, dims, s);
  if (!t) return NULL;
  if (dt == MF_STRING) {
    for (int64_t i = 0; i < numel && tp->n_string_val; i++) {
      const ProtobufCBinaryData *b = &tp->string_val[(size_t)i < tp->n_string_val ? i : 0];
      if (!mf_tensor_set_string(t, i, b->data, b->len, s)) return mf_tensor_delete(t), NULL;
    }
    return t;
  }
  if (!numel) return t;
  void *data = mf_tensor_mutable_data(t, s);
  if (!data) return mf_tensor_delete(t), NULL;
  if (tp->tensor_content.len) {
    memcpy(data, tp->tensor_content.data, tp->tensor_content.len);
  } else if (nvals) {
    for (int64_t i = 0; i < numel; i++) {
      size_t k = (size_t)i < nvals ? (size_t)i : nvals - 1;
      switch (dt) {
      case MF_FLOAT32: ((float *)data)[i] = ((const float *)vals)[k]; break;
      case MF_FLOAT64: ((double *)data)[i] = ((const double *)vals)[k]; break;
      case MF_INT64: ((int64_t *)data)[i] = ((const int64_t *)vals)[k]; break;
      case MF_BOOL: ((uint8_t *)data)[i] = ((const protobuf_c_boolean *)vals)[k] != 0; break;
      default: mfi_set_i(dt, data, i, ((const int32_t *)vals)[k]); break;
      }
    }
  }
  return t;
}

/* b as a C string (NULL when it holds a NUL byte or memory runs out); an
 * empty field has no data pointer, which the mem* functions may not see. */
static char *cstr(const ProtobufCBinaryData *b)
{
  if (b->len && memchr(b->data, 0, b->len)) return NULL;
  char *p = malloc(b->len + 1);
  if (!p) return NULL;
  if (b->len) memcpy(p, b->data, b->len);
  p[b->len] = 0;
  return p;
}

/* Sets one attribute on d; false with err. f64: the "_mf_f64" list (or NULL). */
static bool set_attr(mf_op_desc *d, const char *name, const Tensorflow__AttrValue *v,
                     const Tensorflow__AttrValue__ListValue *f64, char *err, size_t esz,
                     mf_status *s)
{
  switch (v->value_case) {
  case TENSORFLOW__ATTR_VALUE__VALUE_I: mf_op_set_attr_int(d, name, v->i); return true;
  case TENSORFLOW__ATTR_VALUE__VALUE_B: mf_op_set_attr_bool(d, name, v->b); return true;
  case TENSORFLOW__ATTR_VALUE__VALUE_F: {
    double f = v->f;
    for (size_t i = 0; f64 && i < f64->n_s && i < f64->n_i; i++) {
      double exact;
      memcpy(&exact, &f64->i[i], sizeof exact);
      /* only where it agrees with the float TF reads */
      if (f64->s[i].len == strlen(name) &&
          (f64->s[i].len == 0 || memcmp(f64->s[i].data, name, f64->s[i].len) == 0) &&
          (float)exact == v->f)
        f = exact;
    }
    mf_op_set_attr_float(d, name, f);
    return true;
  }
  case TENSORFLOW__ATTR_VALUE__VALUE_TYPE: {
    mf_dtype dt;
    if (!mfi_dtype_from_tf(v->type, &dt))
      return snprintf(err, esz, "attribute '%s' names data type %d, which moonflow lacks", name,
                      v->type),
             false;
    mf_op_set_attr_type(d, name, dt);
    return true;
  }
  case TENSORFLOW__ATTR_VALUE__VALUE_S: {
    char *str = cstr(&v->s);
    if (!str) return snprintf(err, esz, "attribute '%s' holds a NUL byte", name), false;
    mf_op_set_attr_string(d, name, str);
    free(str);
    return true;
  }
  case TENSORFLOW__ATTR_VALUE__VALUE_LIST: {
    const Tensorflow__AttrValue__ListValue *l = v->list;
    if (l->n_s || l->n_f || l->n_b || l->n_type || l->n_shape || l->n_tensor)
      return snprintf(err, esz, "attribute '%s' is a list of a kind moonflow lacks (only integers)",
                      name),
             false;
    if (l->n_i > INT_MAX) return snprintf(err, esz, "attribute '%s' is too long", name), false;
    mf_op_set_attr_ints(d, name, l->i, (int)l->n_i);
    return true;
  }
  case TENSORFLOW__ATTR_VALUE__VALUE_SHAPE: {
    const Tensorflow__TensorShapeProto *sp = v->shape;
    if (sp->unknown_rank) {
      mf_op_set_attr_shape(d, name, NULL, -1);
      return true;
    }
    if (sp->n_dim > MF_MAX_DIMS)
      return snprintf(err, esz, "attribute '%s' has more than %d dimensions", name, MF_MAX_DIMS),
             false;
    int64_t dims[MF_MAX_DIMS];
    for (size_t i = 0; i < sp->n_dim; i++) dims[i] = sp->dim[i]->size;
    mf_op_set_attr_shape(d, name, dims, (int)sp->n_dim);
    return true;
  }
  case TENSORFLOW__ATTR_VALUE__VALUE_TENSOR: {
    char why[160] = "";
    mf_tensor *t = tensor_of(v->tensor, why, sizeof why, s);
    if (!t) {
      if (!why[0]) snprintf(why, sizeof why, "%s", mf_status_message(s));
      return snprintf(err, esz, "attribute '%s': %s", name, why), false;
    }
    mf_op_set_attr_tensor(d, name, t);
    mf_tensor_delete(t);
    return true;
  }
  default: return snprintf(err, esz, "attribute '%s' has no value", name), false;
  }
}

/* ---------------------------------------------------------------- the import */

/* String attributes that name an operation of the graph (If's "forward":
 * the If it differentiates): renamed with the prefix, and the node comes
 * after the one it names. */
static bool names_op(const char *attr) { return strcmp(attr, "forward") == 0; }

typedef struct {
  int node;          /* -1: mapped */
  int index;         /* output */
  mf_output mapped;  /* input_map's value */
  mf_output scratch; /* the scratch pass's placeholder for it */
} input_ref;

typedef struct {
  const Tensorflow__GraphDef *gd;
  int n, nf;       /* nodes, functions */
  namemap nodes;   /* node name -> index */
  namemap funcs;   /* function name -> index */
  int *ninputs;    /* data inputs per node */
  input_ref **ins; /* per node */
  int **ctrl;      /* control inputs (node indices) per node */
  int *nctrl;
  int *deps_start; /* CSR of dependencies of each vertex (nodes, then functions) */
  int *deps;
  int **fn_args, **fn_res_idx, **fn_res_node, **fn_targets;
} plan;

static void plan_free(plan *p)
{
  for (int i = 0; i < p->n; i++) {
    if (p->ins) free(p->ins[i]);
    if (p->ctrl) free(p->ctrl[i]);
  }
  for (int i = 0; i < p->nf; i++) {
    if (p->fn_args) free(p->fn_args[i]);
    if (p->fn_res_idx) free(p->fn_res_idx[i]);
    if (p->fn_res_node) free(p->fn_res_node[i]);
    if (p->fn_targets) free(p->fn_targets[i]);
  }
  free(p->ins), free(p->ctrl), free(p->ninputs), free(p->nctrl), free(p->deps_start), free(p->deps);
  free(p->fn_args), free(p->fn_res_idx), free(p->fn_res_node), free(p->fn_targets);
  map_free(&p->nodes), map_free(&p->funcs);
}

#define FAIL(...)                                                                                  \
  do {                                                                                             \
    mfi_set(s, MF_INVALID_ARGUMENT, WHAT ": " __VA_ARGS__);                                        \
    return false;                                                                                  \
  } while (0)
#define OOM()                                                                                      \
  do {                                                                                             \
    mfi_set(s, MF_RESOURCE_EXHAUSTED, WHAT ": out of memory");                                     \
    return false;                                                                                  \
  } while (0)

static int node_of(const plan *p, const char *name, size_t len)
{
  return map_get(&p->nodes, name, len);
}

static const char *fn_name(const Tensorflow__FunctionDef *f) { return f->signature->name; }

/* Decodes names into indices; checks everything that needs no graph. */
static bool make_plan(plan *p, const Tensorflow__GraphDef *gd, const mf_import_options *o,
                      mf_status *s)
{
  p->gd = gd;
  if (gd->n_node > INT_MAX / 4) FAIL("the GraphDef has too many nodes");
  p->n = (int)gd->n_node;
  const Tensorflow__FunctionDefLibrary *lib = gd->library;
  if (lib && lib->n_function > INT_MAX / 4) FAIL("the GraphDef has too many functions");
  p->nf = lib ? (int)lib->n_function : 0;
  if (!map_init(&p->nodes, (size_t)p->n) || !map_init(&p->funcs, (size_t)p->nf)) OOM();
  for (int i = 0; i < p->n; i++) {
    const char *name = gd->node[i]->name;
    if (!name[0]) FAIL("node %d has no name", i + 1);
    if (!map_put(&p->nodes, name, i)) FAIL("two nodes are named '%.200s'", name);
  }
  size_t n = (size_t)p->n ? (size_t)p->n : 1, nf = (size_t)p->nf ? (size_t)p->nf : 1;
  p->ninputs = calloc(n, sizeof *p->ninputs), p->nctrl = calloc(n, sizeof *p->nctrl);
  p->ins = calloc(n, sizeof *p->ins), p->ctrl = calloc(n, sizeof *p->ctrl);
  p->fn_args = calloc(nf, sizeof *p->fn_args), p->fn_targets = calloc(nf, sizeof *p->fn_targets);
  p->fn_res_idx = calloc(nf, sizeof *p->fn_res_idx);
  p->fn_res_node = calloc(nf, sizeof *p->fn_res_node);
  if (!p->ninputs || !p->nctrl || !p->ins || !p->ctrl || !p->fn_args || !p->fn_targets ||
      !p->fn_res_idx || !p->fn_res_node)
    OOM();

  /* functions: names, and the nodes they name */
  for (int f = 0; f < p->nf; f++) {
    const Tensorflow__FunctionDef *fd = lib->function[f];
    if (!fd->signature || !fd->signature->name[0]) FAIL("function %d has no name", f + 1);
    const char *name = fn_name(fd);
    if (!map_put(&p->funcs, name, f)) FAIL("two functions are named '%.200s'", name);
    const Tensorflow__OpDef *sig = fd->signature;
    if (sig->n_input_arg > INT_MAX / 4 || sig->n_output_arg > INT_MAX / 4 ||
        fd->n_control_ret > INT_MAX / 4)
      FAIL("function '%.200s' is too large", name);
    p->fn_args[f] = malloc((sig->n_input_arg + 1) * sizeof(int));
    p->fn_res_node[f] = malloc((sig->n_output_arg + 1) * sizeof(int));
    p->fn_res_idx[f] = malloc((sig->n_output_arg + 1) * sizeof(int));
    p->fn_targets[f] = malloc((fd->n_control_ret + 1) * sizeof(int));
    if (!p->fn_args[f] || !p->fn_res_node[f] || !p->fn_res_idx[f] || !p->fn_targets[f]) OOM();
    for (size_t i = 0; i < sig->n_input_arg; i++) {
      const char *a = sig->input_arg[i]->name;
      if ((p->fn_args[f][i] = node_of(p, a, strlen(a))) < 0)
        FAIL("function '%.200s': argument '%.200s' is not a node of the GraphDef", name, a);
    }
    for (size_t i = 0; i < sig->n_output_arg; i++) {
      const char *key = sig->output_arg[i]->name, *val = NULL;
      for (size_t k = 0; k < fd->n_ret && !val; k++)
        if (strcmp(fd->ret[k]->key, key) == 0) val = fd->ret[k]->value;
      size_t len;
      int idx;
      if (!val) FAIL("function '%.200s': output '%.200s' has no ret entry", name, key);
      if (!mfi_split_tensor_name(val, &len, &idx) ||
          (p->fn_res_node[f][i] = node_of(p, val, len)) < 0)
        FAIL("function '%.200s': result '%.200s' is not an output of a node of the GraphDef", name,
             val);
      p->fn_res_idx[f][i] = idx;
    }
    for (size_t i = 0; i < fd->n_control_ret; i++) {
      const char *t = fd->control_ret[i]->value;
      if ((p->fn_targets[f][i] = node_of(p, t, strlen(t))) < 0)
        FAIL("function '%.200s': target '%.200s' is not a node of the GraphDef", name, t);
    }
  }

  /* inputs */
  size_t nedges = 0;
  for (int i = 0; i < p->n; i++) {
    const Tensorflow__NodeDef *nd = gd->node[i];
    if (nd->n_input > INT_MAX / 4) FAIL("node '%.200s' has too many inputs", nd->name);
    p->ins[i] = malloc((nd->n_input + 1) * sizeof *p->ins[i]);
    p->ctrl[i] = malloc((nd->n_input + 1) * sizeof *p->ctrl[i]);
    if (!p->ins[i] || !p->ctrl[i]) OOM();
    for (size_t k = 0; k < nd->n_input; k++) {
      const char *in = nd->input[k];
      if (in[0] == '^') {
        int c = node_of(p, in + 1, strlen(in + 1));
        if (c < 0)
          FAIL("node '%.200s': control input '%.200s' is not a node of the GraphDef", nd->name,
               in + 1);
        p->ctrl[i][p->nctrl[i]++] = c;
        continue;
      }
      if (p->nctrl[i])
        FAIL("node '%.200s': data input '%.200s' comes after a control input", nd->name, in);
      size_t len;
      int idx;
      if (!mfi_split_tensor_name(in, &len, &idx))
        FAIL("node '%.200s': input '%.200s' is not a name 'op' or 'op:i'", nd->name, in);
      input_ref *r = &p->ins[i][p->ninputs[i]++];
      r->node = -1, r->index = idx;
      r->mapped = r->scratch = (mf_output){NULL, 0};
      for (int m = 0; o && m < o->ninput_map; m++) {
        size_t klen;
        int kidx;
        const char *key = o->input_map_keys[m];
        if (mfi_split_tensor_name(key, &klen, &kidx) && klen == len && kidx == idx &&
            memcmp(key, in, len) == 0) {
          r->mapped = o->input_map_values[m];
          break;
        }
      }
      if (r->mapped.op) continue;
      if ((r->node = node_of(p, in, len)) < 0)
        FAIL("node '%.200s': input '%.200s' is not a node of the GraphDef (nor in input_map)",
             nd->name, in);
    }
    nedges += nd->n_input + nd->n_attr;
  }
  for (int f = 0; f < p->nf; f++) {
    const Tensorflow__FunctionDef *fd = lib->function[f];
    nedges += fd->signature->n_input_arg + fd->signature->n_output_arg + fd->n_control_ret;
  }
  if (nedges > INT_MAX / 2) FAIL("the GraphDef is too large");

  /* dependencies: nodes' inputs and the functions their string attributes
   * name; functions' nodes */
  p->deps_start = malloc(((size_t)p->n + (size_t)p->nf + 1) * sizeof *p->deps_start);
  p->deps = malloc((nedges + 1) * sizeof *p->deps);
  if (!p->deps_start || !p->deps) OOM();
  int e = 0;
  for (int i = 0; i < p->n; i++) {
    const Tensorflow__NodeDef *nd = gd->node[i];
    p->deps_start[i] = e;
    for (int k = 0; k < p->ninputs[i]; k++)
      if (p->ins[i][k].node >= 0) p->deps[e++] = p->ins[i][k].node;
    for (int k = 0; k < p->nctrl[i]; k++) p->deps[e++] = p->ctrl[i][k];
    for (size_t k = 0; k < nd->n_attr; k++) {
      const Tensorflow__AttrValue *v = nd->attr[k]->value;
      if (!v || v->value_case != TENSORFLOW__ATTR_VALUE__VALUE_S) continue;
      if (names_op(nd->attr[k]->key)) {
        int u = map_get(&p->nodes, (const char *)v->s.data, v->s.len);
        if (u >= 0) p->deps[e++] = u;
        continue;
      }
      int f = p->nf ? map_get(&p->funcs, (const char *)v->s.data, v->s.len) : -1;
      if (f >= 0) p->deps[e++] = p->n + f;
    }
  }
  for (int f = 0; f < p->nf; f++) {
    const Tensorflow__FunctionDef *fd = lib->function[f];
    p->deps_start[p->n + f] = e;
    for (size_t i = 0; i < fd->signature->n_input_arg; i++) p->deps[e++] = p->fn_args[f][i];
    for (size_t i = 0; i < fd->signature->n_output_arg; i++) p->deps[e++] = p->fn_res_node[f][i];
    for (size_t i = 0; i < fd->n_control_ret; i++) p->deps[e++] = p->fn_targets[f][i];
  }
  p->deps_start[p->n + p->nf] = e;

  /* return elements */
  for (int r = 0; o && r < o->nreturn; r++) {
    size_t len;
    int idx;
    const char *name = o->return_elements[r];
    if (!mfi_split_tensor_name(name, &len, &idx) || node_of(p, name, len) < 0)
      FAIL("return element '%.200s' is not a node or output of the GraphDef", name);
  }
  return true;
}

static char *full_name(const char *prefix, const char *name)
{
  size_t n = strlen(prefix) + strlen(name) + 2;
  char *out = malloc(n);
  if (out) snprintf(out, n, "%s%s%s", prefix, prefix[0] ? "/" : "", name);
  return out;
}

/* A min-heap of vertex indices. */
static void heap_push(int *h, int *n, int v)
{
  int i = (*n)++;
  while (i > 0 && h[(i - 1) / 2] > v) h[i] = h[(i - 1) / 2], i = (i - 1) / 2;
  h[i] = v;
}

static int heap_pop(int *h, int *n)
{
  int top = h[0], v = h[--*n], i = 0;
  for (;;) {
    int c = 2 * i + 1;
    if (c >= *n) break;
    if (c + 1 < *n && h[c + 1] < h[c]) c++;
    if (h[c] >= v) break;
    h[i] = h[c], i = c;
  }
  if (*n) h[i] = v;
  return top;
}

static mf_op *build_node(mf_graph *g, const plan *p, int i, mf_op *const *made, const char *prefix,
                         char *const *fnames, bool scratch, mf_status *s)
{
  const Tensorflow__NodeDef *nd = p->gd->node[i];
  char *name = full_name(prefix, nd->name);
  if (!name) return mfi_set(s, MF_RESOURCE_EXHAUSTED, WHAT ": out of memory"), NULL;
  mf_op_desc *d = mf_op_begin(g, nd->op, name);
  free(name);
  for (int k = 0; k < p->ninputs[i]; k++) {
    const input_ref *r = &p->ins[i][k];
    mf_op_add_input(d, r->node >= 0 ? (mf_output){made[r->node], r->index}
                       : scratch    ? r->scratch
                                    : r->mapped);
  }
  for (int k = 0; k < p->nctrl[i]; k++) mf_op_add_control_input(d, made[p->ctrl[i][k]]);
  if (nd->device[0]) mf_op_set_device(d, nd->device);
  const Tensorflow__AttrValue__ListValue *f64 = NULL;
  char err[400] = "";
  for (size_t k = 0; k < nd->n_attr; k++) {
    const char *key = nd->attr[k]->key;
    const Tensorflow__AttrValue *v = nd->attr[k]->value;
    if (!v) continue;
    if (strcmp(key, "_mf_f64") == 0 && v->value_case == TENSORFLOW__ATTR_VALUE__VALUE_LIST)
      f64 = v->list;
    if (strcmp(key, "_mf_location") == 0 && v->value_case == TENSORFLOW__ATTR_VALUE__VALUE_S) {
      char *loc = cstr(&v->s);
      if (loc) mf_op_set_location(d, loc);
      free(loc);
    }
  }
  for (size_t k = 0; k < nd->n_attr && !err[0]; k++) {
    const char *key = nd->attr[k]->key;
    const Tensorflow__AttrValue *v = nd->attr[k]->value;
    if (key[0] == '_') continue;
    if (!key[0]) {
      snprintf(err, sizeof err, "an attribute has no name");
      break;
    }
    if (!v) {
      snprintf(err, sizeof err, "attribute '%.200s' has no value", key);
      break;
    }
    if (v->value_case == TENSORFLOW__ATTR_VALUE__VALUE_S && names_op(key)) {
      int u = map_get(&p->nodes, (const char *)v->s.data, v->s.len);
      if (u >= 0) {
        mf_op_set_attr_string(d, key, mf_op_name(made[u]));
        continue;
      }
    }
    if (v->value_case == TENSORFLOW__ATTR_VALUE__VALUE_S && p->nf) {
      int f = map_get(&p->funcs, (const char *)v->s.data, v->s.len);
      if (f >= 0) {
        mf_op_set_attr_string(d, key, fnames[f]);
        continue;
      }
    }
    set_attr(d, key, v, f64, err, sizeof err, s);
  }
  if (err[0]) {
    mf_op_abandon(d);
    mfi_set(s, MF_INVALID_ARGUMENT, WHAT ": node '%.200s': %s", nd->name, err);
    return NULL;
  }
  mf_op *op = mf_op_finish(d, s);
  if (!op) {
    char msg[sizeof s->msg];
    snprintf(msg, sizeof msg, "%s", s->msg);
    mfi_set(s, mf_status_code(s), WHAT ": node '%.200s': %s", nd->name, msg);
  }
  return op;
}

static bool register_function(mf_graph *g, const plan *p, int f, mf_op *const *made,
                              const char *name, mf_status *s)
{
  const Tensorflow__FunctionDef *fd = p->gd->library->function[f];
  int na = (int)fd->signature->n_input_arg, nr = (int)fd->signature->n_output_arg;
  int nt = (int)fd->n_control_ret;
  mf_op **args = malloc(((size_t)na + 1) * sizeof *args);
  mf_output *res = malloc(((size_t)nr + 1) * sizeof *res);
  mf_op **targets = malloc(((size_t)nt + 1) * sizeof *targets);
  bool ok = args && res && targets;
  if (ok) {
    for (int i = 0; i < na; i++) args[i] = made[p->fn_args[f][i]];
    for (int i = 0; i < nr; i++)
      res[i] = (mf_output){made[p->fn_res_node[f][i]], p->fn_res_idx[f][i]};
    for (int i = 0; i < nt; i++) targets[i] = made[p->fn_targets[f][i]];
    ok = mf_graph_add_function(g, name, na, args, nr, res, nt, targets, s);
    if (!ok) {
      char msg[sizeof s->msg];
      snprintf(msg, sizeof msg, "%s", s->msg);
      mfi_set(s, mf_status_code(s), WHAT ": %s", msg);
    }
  } else {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, WHAT ": out of memory");
  }
  free(args), free(res), free(targets);
  return ok;
}

/* Builds the plan's nodes and functions in g; made[i] gets node i. */
static bool build(mf_graph *g, const plan *p, const char *prefix, mf_op **made, bool scratch,
                  mf_status *s)
{
  int nv = p->n + p->nf;
  size_t cnt = (size_t)nv + 1;
  int *indeg = calloc(cnt, sizeof *indeg), *rstart = calloc(cnt + 1, sizeof *rstart);
  int *radj = malloc(((size_t)p->deps_start[nv] + 1) * sizeof *radj);
  int *heap = malloc(cnt * sizeof *heap);
  char **fnames = calloc((size_t)p->nf + 1, sizeof *fnames);
  bool ok = indeg && rstart && radj && heap && fnames;
  for (int f = 0; ok && f < p->nf; f++) {
    ok = (fnames[f] = full_name(prefix, fn_name(p->gd->library->function[f]))) != NULL;
    if (ok && mf_graph_has_function(g, fnames[f])) {
      mfi_set(s, MF_INVALID_ARGUMENT, WHAT ": the graph already has a function named '%.200s'",
              fnames[f]);
      goto done;
    }
  }
  if (!ok) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, WHAT ": out of memory");
    goto done;
  }
  /* reverse edges: dependency -> dependents */
  for (int v = 0; v < nv; v++)
    for (int k = p->deps_start[v]; k < p->deps_start[v + 1]; k++)
      rstart[p->deps[k] + 1]++, indeg[v]++;
  for (int v = 0; v < nv; v++) rstart[v + 1] += rstart[v];
  {
    int *fill = calloc(cnt, sizeof *fill);
    if (!fill) {
      mfi_set(s, MF_RESOURCE_EXHAUSTED, WHAT ": out of memory");
      ok = false;
      goto done;
    }
    for (int v = 0; v < nv; v++)
      for (int k = p->deps_start[v]; k < p->deps_start[v + 1]; k++) {
        int u = p->deps[k];
        radj[rstart[u] + fill[u]++] = v;
      }
    free(fill);
  }
  int nh = 0, done_count = 0;
  for (int v = 0; v < nv; v++)
    if (!indeg[v]) heap_push(heap, &nh, v);
  while (ok && nh) {
    int v = heap_pop(heap, &nh);
    if (v < p->n) {
      ok = (made[v] = build_node(g, p, v, made, prefix, fnames, scratch, s)) != NULL;
    } else {
      ok = register_function(g, p, v - p->n, made, fnames[v - p->n], s);
    }
    if (!ok) break;
    done_count++;
    for (int k = rstart[v]; k < rstart[v + 1]; k++)
      if (--indeg[radj[k]] == 0) heap_push(heap, &nh, radj[k]);
  }
  if (ok && done_count < nv) {
    int v = 0;
    while (v < nv && !indeg[v]) v++;
    const char *what = v < p->n ? "node" : "function";
    const char *name =
        v < p->n ? p->gd->node[v]->name : fn_name(p->gd->library->function[v - p->n]);
    mfi_set(s, MF_INVALID_ARGUMENT,
            WHAT ": the GraphDef's nodes form a cycle (through %s '%.200s'): no order has every "
                 "input before its reader",
            what, name);
    ok = false;
  }
done:
  for (int f = 0; fnames && f < p->nf; f++) free(fnames[f]);
  free(fnames), free(indeg), free(rstart), free(radj), free(heap);
  return ok;
}

int mf_graph_import(mf_graph *g, const void *bytes, size_t len, const mf_import_options *o,
                    mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  const char *bad =
      !g                                                  ? "g is NULL"
      : !bytes && len                                     ? "bytes is NULL"
      : o && o->ninput_map < 0                            ? "options->ninput_map is negative"
      : o && o->nreturn < 0                               ? "options->nreturn is negative"
      : o && o->ninput_map && !o->input_map_keys          ? "options->input_map_keys is NULL"
      : o && o->ninput_map && !o->input_map_values        ? "options->input_map_values is NULL"
      : o && o->nreturn && !o->return_elements            ? "options->return_elements is NULL"
      : o && o->nreturn && !o->return_outputs             ? "options->return_outputs is NULL"
      : o && o->prefix && strlen(o->prefix) > MF_MAX_NAME ? "options->prefix is too long"
                                                          : NULL;
  for (int i = 0; !bad && o && i < o->ninput_map; i++) {
    const mf_output *v = &o->input_map_values[i];
    if (!o->input_map_keys[i])
      bad = "an input_map key is NULL";
    else if (!v->op || mf_op_graph(v->op) != g || v->index < 0 ||
             v->index >= mf_op_num_outputs(v->op))
      bad = "an input_map value is not an output of the graph";
  }
  for (int i = 0; !bad && o && i < o->nreturn; i++)
    if (!o->return_elements[i]) bad = "a return element is NULL";
  if (bad) {
    mfi_set(s, MF_INVALID_ARGUMENT, WHAT ": %s", bad);
    return -1;
  }
  const char *prefix = o && o->prefix ? o->prefix : "";
  Tensorflow__GraphDef *gd =
      tensorflow__graph_def__unpack(NULL, len, len ? bytes : (const void *)"");
  if (!gd) {
    mfi_set(s, MF_INVALID_ARGUMENT,
            WHAT ": the bytes are not a GraphDef (a malformed protocol buffer)");
    return -1;
  }
  plan p = {0};
  mf_graph *scratch = NULL;
  mf_op **made = NULL;
  int result = -1, before = 0;
  if (!make_plan(&p, gd, o, s)) goto out;
  for (int i = 0; i < p.n; i++) {
    char *name = full_name(prefix, gd->node[i]->name);
    bool taken = name && mf_graph_op_by_name(g, name);
    if (taken)
      mfi_set(s, MF_INVALID_ARGUMENT, WHAT ": the graph already has an operation named '%.200s'",
              name);
    if (!name) mfi_set(s, MF_RESOURCE_EXHAUSTED, WHAT ": out of memory");
    free(name);
    if (!mfi_ok(s)) goto out;
  }
  made = calloc((size_t)p.n + 1, sizeof *made);
  scratch = mf_graph_new();
  if (!made || !scratch) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, WHAT ": out of memory");
    goto out;
  }
  /* The scratch pass (mapped inputs read placeholders like them), then the
   * real one. */
  mf_graph_set_seed(scratch, mf_graph_seed(g));
  for (int i = 0; i < p.n; i++)
    for (int k = 0; k < p.ninputs[i]; k++) {
      input_ref *r = &p.ins[i][k];
      if (r->node >= 0) continue;
      mf_op_desc *d = mf_op_begin(scratch, "Placeholder", NULL);
      mf_op_set_attr_type(d, "dtype", mf_op_output_dtype(r->mapped.op, r->mapped.index));
      int nd = mf_op_output_ndim(r->mapped.op, r->mapped.index);
      mf_op_set_attr_shape(d, "shape", mf_op_output_dims(r->mapped.op, r->mapped.index), nd);
      r->scratch = (mf_output){mf_op_finish(d, s), 0};
      if (!r->scratch.op) goto out;
    }
  if (!build(scratch, &p, prefix, made, true, s)) goto out;
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1 && !build(g, &p, prefix, made, false, s)) goto out;
    for (int r = 0; o && r < o->nreturn; r++) {
      size_t n;
      int idx;
      const char *name = o->return_elements[r];
      mfi_split_tensor_name(name, &n, &idx);
      mf_op *op = made[node_of(&p, name, n)];
      bool is_out = n < strlen(name);
      if (is_out && idx >= mf_op_num_outputs(op)) {
        mfi_set(s, MF_INVALID_ARGUMENT, WHAT ": return element '%.200s': '%.200s' has %d outputs",
                name, mf_op_name(op), mf_op_num_outputs(op));
        goto out;
      }
      if (pass == 1) o->return_outputs[r] = (mf_output){op, is_out ? idx : -1};
    }
    if (pass == 0) before = mf_graph_num_ops(g);
  }
  result = mf_graph_num_ops(g) - before;
out:
  mf_graph_delete(scratch);
  free(made);
  plan_free(&p);
  tensorflow__graph_def__free_unpacked(gd, NULL);
  return result;
}
