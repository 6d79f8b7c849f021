/* Graphs: an append-only list of operations with unique names. */
#include "internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mf_op_desc {
  mf_op op;      /* filled in place, moved into the graph on success */
  char type[64]; /* as requested, for the error when it is unknown */
  int incap, ctrlcap, attrcap;
  bool oom;
  char bad[160]; /* the first bad argument to a builder call, reported by finish */
};

/* Keeps the first bad argument; finish fails with it. */
static void refuse(mf_op_desc *d, const char *fn, const char *what)
{
  if (d && !d->bad[0]) snprintf(d->bad, sizeof d->bad, "%s: %s", fn, what);
}

mf_graph *mf_graph_new(void)
{
  mf_graph *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  atomic_init(&g->refs, 1);
  pthread_mutex_init(&g->lock, NULL);
  return g;
}

mf_graph *mfi_graph_retain(mf_graph *g)
{
  atomic_fetch_add(&g->refs, 1);
  return g;
}

mf_graph *mf_graph_retain(mf_graph *g) { return g ? mfi_graph_retain(g) : NULL; }

static void free_attrs(mfi_attr *a, int n)
{
  for (int i = 0; i < n; i++) {
    free(a[i].name);
    free(a[i].s);
    free(a[i].ints);
    mf_tensor_delete(a[i].t);
  }
  free(a);
}

static void free_op_fields(mf_op *op)
{
  free(op->name), free(op->device), free(op->location);
  free(op->inputs), free(op->ctrl), free(op->out);
  free_attrs(op->attrs, op->nattr);
}

void mf_graph_delete(mf_graph *g)
{
  if (!g || atomic_fetch_sub(&g->refs, 1) != 1) return;
  for (int i = 0; i < g->nops; i++) {
    free_op_fields(g->ops[i]);
    free(g->ops[i]);
  }
  free(g->ops);
  for (int i = 0; i < g->ncap; i++) free(g->nkeys[i]);
  free(g->nkeys), free(g->ncount), free(g->byname);
  mfi_graph_free_functions(g);
  pthread_mutex_destroy(&g->lock);
  free(g);
}

int mf_graph_num_ops(const mf_graph *g) { return g ? g->nops : 0; }
mf_op *mf_graph_op(const mf_graph *g, int i)
{
  return g && i >= 0 && i < g->nops ? g->ops[i] : NULL;
}
void mf_graph_set_seed(mf_graph *g, int64_t seed)
{
  if (g) g->seed = seed;
}
int64_t mf_graph_seed(const mf_graph *g) { return g ? g->seed : 0; }

static uint64_t hash_str(const char *s);

mf_op *mf_graph_op_by_name(const mf_graph *g, const char *name)
{
  if (!g || !name || !g->bycap) return NULL;
  int mask = g->bycap - 1;
  for (int i = (int)(hash_str(name) & (uint64_t)mask); g->byname[i]; i = (i + 1) & mask) {
    mf_op *op = g->ops[g->byname[i] - 1];
    if (strcmp(op->name, name) == 0) return op;
  }
  return NULL;
}

/* Adds op (already in g->ops) to the by-name index; false when out of memory. */
static bool index_op(mf_graph *g, const mf_op *op)
{
  if (2 * (op->id + 1) > g->bycap) {
    int cap = g->bycap ? g->bycap * 2 : 64;
    int *t = calloc(cap, sizeof *t);
    if (!t) return false;
    free(g->byname);
    g->byname = t, g->bycap = cap;
    for (int k = 0; k < op->id; k++) { /* rehash the earlier ops */
      int i = (int)(hash_str(g->ops[k]->name) & (uint64_t)(cap - 1));
      while (t[i]) i = (i + 1) & (cap - 1);
      t[i] = k + 1;
    }
  }
  int i = (int)(hash_str(op->name) & (uint64_t)(g->bycap - 1));
  while (g->byname[i]) i = (i + 1) & (g->bycap - 1);
  g->byname[i] = op->id + 1;
  return true;
}

/* ---------------------------------------------------------------- unique names */

static uint64_t hash_str(const char *s)
{
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* Slot of `key` in the open-addressing table (an empty slot if absent). */
static int name_slot(const mf_graph *g, const char *key)
{
  int mask = g->ncap - 1, i = (int)(hash_str(key) & (uint64_t)mask);
  while (g->nkeys[i] && strcmp(g->nkeys[i], key) != 0) i = (i + 1) & mask;
  return i;
}

static int names_get(const mf_graph *g, const char *key)
{
  if (!g->ncap) return 0;
  int i = name_slot(g, key);
  return g->nkeys[i] ? g->ncount[i] : 0;
}

static bool names_put(mf_graph *g, const char *key, int count)
{
  if ((g->nused + 1) * 2 > g->ncap) {
    int ncap = g->ncap ? g->ncap * 2 : 64;
    char **keys = calloc(ncap, sizeof *keys);
    int *counts = calloc(ncap, sizeof *counts);
    if (!keys || !counts) return free(keys), free(counts), false;
    char **okeys = g->nkeys;
    int *ocounts = g->ncount, ocap = g->ncap;
    g->nkeys = keys, g->ncount = counts, g->ncap = ncap;
    for (int i = 0; i < ocap; i++)
      if (okeys[i]) {
        int j = name_slot(g, okeys[i]);
        g->nkeys[j] = okeys[i], g->ncount[j] = ocounts[i];
      }
    free(okeys), free(ocounts);
  }
  int i = name_slot(g, key);
  if (!g->nkeys[i]) {
    if (!(g->nkeys[i] = strdup(key))) return false;
    g->nused++;
  }
  g->ncount[i] = count;
  return true;
}

static void lower(char *s)
{
  for (; *s; s++) *s = (char)tolower((unsigned char)*s);
}

/* TensorFlow's Graph.unique_name: the first use of a name keeps it; later
 * uses get _1, _2, ... skipping any that are taken. */
int mf_graph_unique_name(mf_graph *g, const char *name, char *buf, size_t size)
{
  if (buf && size > 0) buf[0] = 0;
  if (!g || !name || (!buf && size > 0)) return -1;
  size_t n = strlen(name);
  char *key = malloc(n + 32), *cand = malloc(n + 32);
  if (!key || !cand) {
    free(key), free(cand);
    return snprintf(buf, size, "%s", name);
  }
  strcpy(key, name);
  lower(key);
  int i = names_get(g, key);
  names_put(g, key, i + 1);
  int len;
  if (i == 0) {
    len = snprintf(buf, size, "%s", name);
  } else {
    for (;; i++) {
      snprintf(cand, n + 32, "%s_%d", key, i);
      if (!names_get(g, cand)) break;
    }
    names_put(g, cand, 1);
    len = snprintf(buf, size, "%s_%d", name, i);
  }
  free(key), free(cand);
  return len;
}

/* ---------------------------------------------------------------- building ops */

mf_op_desc *mf_op_begin(mf_graph *g, const char *type, const char *name)
{
  mf_op_desc *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->op.graph = g;
  d->op.def = mfi_opdef_find(type);
  if (!name && g && type) { /* the type, then type_1, ... */
    size_t size = strlen(type) + 24;
    if ((d->op.name = malloc(size))) mf_graph_unique_name(g, type, d->op.name, size);
  } else {
    d->op.name = strdup(name ? name : "");
  }
  d->op.device = strdup("");
  d->op.location = strdup("");
  if (!d->op.name || !d->op.device || !d->op.location) d->oom = true;
  snprintf(d->type, sizeof d->type, "%s", type ? type : "");
  if (!g) refuse(d, "mf_op_begin", "graph is NULL");
  if (!type) refuse(d, "mf_op_begin", "type is NULL");
  return d;
}

static bool grow(void **p, int *cap, int need, size_t elem)
{
  if (need <= *cap) return true;
  int ncap = *cap ? *cap * 2 : 4;
  while (ncap < need) ncap *= 2;
  void *q = realloc(*p, ncap * elem);
  if (!q) return false;
  *p = q, *cap = ncap;
  return true;
}

void mf_op_add_input(mf_op_desc *d, mf_output in)
{
  if (!d || d->oom) return;
  if (!grow((void **)&d->op.inputs, &d->incap, d->op.nin + 1, sizeof(mf_output))) {
    d->oom = true;
    return;
  }
  d->op.inputs[d->op.nin++] = in;
}

void mf_op_add_control_input(mf_op_desc *d, mf_op *op)
{
  if (!d || d->oom) return;
  if (!grow((void **)&d->op.ctrl, &d->ctrlcap, d->op.nctrl + 1, sizeof(mf_op *))) {
    d->oom = true;
    return;
  }
  d->op.ctrl[d->op.nctrl++] = op;
}

static void replace_str(mf_op_desc *d, char **field, const char *v)
{
  if (!d || d->oom) return;
  char *c = strdup(v ? v : "");
  if (!c) {
    d->oom = true;
    return;
  }
  free(*field);
  *field = c;
}

void mf_op_set_device(mf_op_desc *d, const char *device)
{
  if (d) replace_str(d, &d->op.device, device);
}
void mf_op_set_location(mf_op_desc *d, const char *where)
{
  if (d) replace_str(d, &d->op.location, where);
}

/* A fresh attribute slot named `name` (replacing an earlier one). */
static mfi_attr *new_attr(mf_op_desc *d, const char *name, mfi_attr_kind kind)
{
  if (!d || d->oom) return NULL;
  if (!name) {
    refuse(d, "mf_op_set_attr", "attribute name is NULL");
    return NULL;
  }
  for (int i = 0; i < d->op.nattr; i++)
    if (strcmp(d->op.attrs[i].name, name) == 0) {
      mfi_attr *a = &d->op.attrs[i];
      free(a->s), free(a->ints), mf_tensor_delete(a->t);
      char *nm = a->name;
      memset(a, 0, sizeof *a);
      a->name = nm, a->kind = kind;
      return a;
    }
  if (!grow((void **)&d->op.attrs, &d->attrcap, d->op.nattr + 1, sizeof(mfi_attr))) {
    d->oom = true;
    return NULL;
  }
  mfi_attr *a = &d->op.attrs[d->op.nattr];
  memset(a, 0, sizeof *a);
  if (!(a->name = strdup(name))) {
    d->oom = true;
    return NULL;
  }
  d->op.nattr++;
  a->kind = kind;
  return a;
}

void mf_op_set_attr_int(mf_op_desc *d, const char *name, int64_t v)
{
  mfi_attr *a = new_attr(d, name, MFI_A_INT);
  if (a) a->i = v;
}
void mf_op_set_attr_float(mf_op_desc *d, const char *name, double v)
{
  mfi_attr *a = new_attr(d, name, MFI_A_FLOAT);
  if (a) a->f = v;
}
void mf_op_set_attr_bool(mf_op_desc *d, const char *name, int v)
{
  mfi_attr *a = new_attr(d, name, MFI_A_BOOL);
  if (a) a->i = v != 0;
}
void mf_op_set_attr_type(mf_op_desc *d, const char *name, mf_dtype v)
{
  mfi_attr *a = new_attr(d, name, MFI_A_TYPE);
  if (a) a->i = v;
}
void mf_op_set_attr_string(mf_op_desc *d, const char *name, const char *v)
{
  if (!v) {
    refuse(d, "mf_op_set_attr_string", "value is NULL");
    return;
  }
  mfi_attr *a = new_attr(d, name, MFI_A_STRING);
  if (a && !(a->s = strdup(v))) d->oom = true;
}

static void set_ints(mf_op_desc *d, const char *name, mfi_attr_kind kind, const int64_t *v, int n)
{
  const char *fn = kind == MFI_A_SHAPE ? "mf_op_set_attr_shape" : "mf_op_set_attr_ints";
  const char *bad = n < (kind == MFI_A_SHAPE ? -1 : 0)
                        ? (kind == MFI_A_SHAPE ? "ndim is below -1" : "n is negative")
                    : n > 0 && !v ? "the values are NULL"
                                  : NULL;
  if (bad) {
    refuse(d, fn, bad);
    return;
  }
  mfi_attr *a = new_attr(d, name, kind);
  if (!a) return;
  a->i = n;
  int cnt = n > 0 ? n : 0;
  a->ints = malloc(sizeof(int64_t) * (cnt ? cnt : 1));
  if (!a->ints) {
    d->oom = true;
    return;
  }
  if (cnt) memcpy(a->ints, v, sizeof(int64_t) * cnt);
}

void mf_op_set_attr_ints(mf_op_desc *d, const char *name, const int64_t *v, int n)
{
  set_ints(d, name, MFI_A_INTS, v, n);
}
void mf_op_set_attr_shape(mf_op_desc *d, const char *name, const int64_t *dims, int ndim)
{
  set_ints(d, name, MFI_A_SHAPE, dims, ndim);
}
void mf_op_set_attr_tensor(mf_op_desc *d, const char *name, mf_tensor *v)
{
  if (!v) {
    refuse(d, "mf_op_set_attr_tensor", "value is NULL");
    return;
  }
  mfi_attr *a = new_attr(d, name, MFI_A_TENSOR);
  if (a && v && !(a->t = mfi_tensor_view(v))) d->oom = true;
}

int mfi_op_label(const mf_op *op, char *buf, size_t size)
{
  if (op->location[0])
    return snprintf(buf, size, "%s '%s' (created at %s)", op->def ? op->def->type : "?", op->name,
                    op->location);
  return snprintf(buf, size, "%s '%s'", op->def ? op->def->type : "?", op->name);
}

void mfi_op_error(mf_status *s, mf_code code, const mf_op *op, const char *fmt, ...)
{
  char label[512], msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  mfi_op_label(op, label, sizeof label);
  mfi_set(s, code, "%s: %s", label, msg);
}

static bool check_inputs(mf_op_desc *d, mf_status *s)
{
  mf_op *op = &d->op;
  const mfi_opdef *def = op->def;
  if (op->nin < def->min_inputs || (def->max_inputs >= 0 && op->nin > def->max_inputs)) {
    if (def->max_inputs == def->min_inputs)
      mfi_op_error(s, MF_INVALID_ARGUMENT, op, "takes %d inputs, got %d", def->min_inputs, op->nin);
    else if (def->max_inputs < 0)
      mfi_op_error(s, MF_INVALID_ARGUMENT, op, "takes %d or more inputs, got %d", def->min_inputs,
                   op->nin);
    else
      mfi_op_error(s, MF_INVALID_ARGUMENT, op, "takes %d to %d inputs, got %d", def->min_inputs,
                   def->max_inputs, op->nin);
    return false;
  }
  for (int i = 0; i < op->nin; i++) {
    mf_output in = op->inputs[i];
    if (!in.op || in.op->graph != op->graph) {
      mfi_op_error(s, MF_INVALID_ARGUMENT, op, "input %d comes from a different graph", i + 1);
      return false;
    }
    if (in.index < 0 || in.index >= in.op->nout) {
      mfi_op_error(s, MF_INVALID_ARGUMENT, op, "input %d refers to output %d of '%s', which has %d",
                   i + 1, in.index, in.op->name, in.op->nout);
      return false;
    }
  }
  for (int i = 0; i < op->nctrl; i++)
    if (!op->ctrl[i] || op->ctrl[i]->graph != op->graph) {
      mfi_op_error(s, MF_INVALID_ARGUMENT, op, "control input %d comes from a different graph",
                   i + 1);
      return false;
    }
  for (int i = 0; i < def->nref && i < op->nin; i++)
    if (!(op->inputs[i].op->def->flags & MFI_VARIABLE)) {
      mfi_op_error(s, MF_INVALID_ARGUMENT, op, "input %d must be a variable, got %s '%s'", i + 1,
                   op->inputs[i].op->def->type, op->inputs[i].op->name);
      return false;
    }
  return true;
}

/* TensorFlow's op name rule: [A-Za-z0-9.][A-Za-z0-9_./>-]* (each scope part too). */
static bool valid_name(const char *n)
{
  if (!isalnum((unsigned char)n[0]) && n[0] != '.') return false;
  for (const char *p = n + 1; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("_./>-", *p)) return false;
  return strstr(n, "//") == NULL && n[strlen(n) - 1] != '/';
}

void mf_op_abandon(mf_op_desc *d)
{
  if (!d) return;
  free_op_fields(&d->op);
  free(d);
}

mf_op *mf_op_finish(mf_op_desc *d, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  if (!d) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory building an operation");
    return NULL;
  }
  mf_op *op = &d->op;
  mf_graph *g = op->graph;
  mfi_meta *in = NULL;
  if (d->bad[0]) {
    mfi_set(s, MF_INVALID_ARGUMENT, "%s (building operation '%.200s')", d->bad, op->name);
    goto fail;
  }
  if (d->oom) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory building operation '%s'", op->name);
    goto fail;
  }
  if (!op->def) {
    mfi_set(s, MF_NOT_FOUND, "unknown operation type '%s' for '%s'", d->type, op->name);
    goto fail;
  }
  if (strlen(op->name) > MF_MAX_NAME) {
    mfi_set(s, MF_INVALID_ARGUMENT,
            "operation name '%.40s...' is %zu bytes long; names are at most %d bytes", op->name,
            strlen(op->name), MF_MAX_NAME);
    goto fail;
  }
  if (!valid_name(op->name)) {
    mfi_op_error(s, MF_INVALID_ARGUMENT, op,
                 "'%s' is not a valid operation name (TensorFlow's rule: a letter, digit or '.' "
                 "first, then letters, digits, '_', '.', '-', '/')",
                 op->name);
    goto fail;
  }
  if (mf_graph_op_by_name(g, op->name)) {
    mfi_op_error(s, MF_INVALID_ARGUMENT, op, "the graph already has an operation named '%s'",
                 op->name);
    goto fail;
  }
  char err[256];
  if (!mfi_device_spec_parse(op->device, &op->spec, err, sizeof err)) {
    mfi_op_error(s, MF_INVALID_ARGUMENT, op, "%s", err);
    goto fail;
  }
  /* Kept in TensorFlow's canonical spelling: "/gpu:1" reads "/device:GPU:1". */
  char canon[64] = "";
  if (op->spec.type >= 0 && op->spec.index >= 0)
    snprintf(canon, sizeof canon, "/device:%s:%d", mfi_device_type_name(op->spec.type),
             op->spec.index);
  else if (op->spec.type >= 0)
    snprintf(canon, sizeof canon, "/device:%s:*", mfi_device_type_name(op->spec.type));
  mf_op_set_device(d, canon);
  if (d->oom) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory building operation '%s'", op->name);
    goto fail;
  }
  for (int i = 0; i < op->nattr; i++)
    if (!mfi_opdef_declares(op->def, op->attrs[i].name)) {
      const char *a = op->def->attrs;
      mfi_op_error(s, MF_INVALID_ARGUMENT, op, "has no attribute '%s' (%s takes %s%s%s)",
                   op->attrs[i].name, op->def->type, a[0] ? "" : "none", a[0] ? "these: " : "", a);
      goto fail;
    }
  if (!check_inputs(d, s)) goto fail;
  in = malloc(sizeof *in * (op->nin ? op->nin : 1));
  if (!in) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory");
    goto fail;
  }
  for (int i = 0; i < op->nin; i++) in[i] = op->inputs[i].op->out[op->inputs[i].index];
  mfi_infer_ctx c = {op, in, s, op};
  int64_t seed;
  /* The planner reads the seeds of every random op; the rest is the op's. */
  if (!(op->def->flags & MFI_RANDOM) ||
      (mfi_check_int(&c, "seed", false, 0, &seed) && mfi_check_int(&c, "seed2", false, 0, &seed)))
    op->def->infer(&c);
  free(in);
  in = NULL;
  if (!mfi_ok(s)) goto fail;
  for (int i = 0; i < op->nout; i++)
    if (op->out[i].ndim > 0 && mfi_shape_overflows(op->out[i].ndim, op->out[i].dims)) {
      char sh[256];
      mfi_shape_str(op->out[i].ndim, op->out[i].dims, sh, sizeof sh);
      mfi_op_error(s, MF_INVALID_ARGUMENT, op,
                   "output %d has shape %s, whose element count overflows int64", i, sh);
      goto fail;
    }

  if (!(op->def->flags & MFI_STRINGS)) {
    bool str = false;
    for (int i = 0; i < op->nin; i++)
      str |= op->inputs[i].op->out[op->inputs[i].index].dtype == MF_STRING;
    for (int i = 0; i < op->nout; i++) str |= op->out[i].dtype == MF_STRING;
    if (str) {
      mfi_op_error(s, MF_INVALID_ARGUMENT, op, "%s does not take or give string tensors",
                   op->def->type);
      goto fail;
    }
  }

  pthread_mutex_lock(&g->lock);
  int cap = g->cap;
  bool ok = grow((void **)&g->ops, &cap, g->nops + 1, sizeof(mf_op *));
  mf_op *final = ok ? malloc(sizeof *final) : NULL;
  if (final) {
    g->cap = cap;
    *final = *op;
    final->id = g->nops;
    g->ops[g->nops] = final;
    if (index_op(g, final)) {
      g->nops++;
    } else {
      free(final);
      final = NULL;
    }
  }
  pthread_mutex_unlock(&g->lock);
  if (!final) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory adding '%s'", op->name);
    goto fail;
  }
  /* Mark the name used so unique_name never hands it out again. */
  char *key = strdup(final->name);
  if (key) {
    lower(key);
    if (!names_get(g, key)) names_put(g, key, 1);
    free(key);
  }
  free(d);
  return final;
fail:
  free(in);
  free_op_fields(op);
  free(d);
  return NULL;
}

/* ---------------------------------------------------------------- op queries */

/* A NULL op or an index out of range gives the documented failure value
 * (NULL, -1, 0, {NULL, 0}, MF_NUM_DTYPES), never a read past an array. */
const char *mf_op_name(const mf_op *op) { return op ? op->name : NULL; }
const char *mf_op_type(const mf_op *op) { return op ? op->def->type : NULL; }
const char *mf_op_device(const mf_op *op) { return op ? op->device : NULL; }
const char *mf_op_location(const mf_op *op) { return op ? op->location : NULL; }
int mf_op_id(const mf_op *op) { return op ? op->id : -1; }
mf_graph *mf_op_graph(const mf_op *op) { return op ? op->graph : NULL; }
int mf_op_num_inputs(const mf_op *op) { return op ? op->nin : 0; }
mf_output mf_op_input(const mf_op *op, int i)
{
  return op && i >= 0 && i < op->nin ? op->inputs[i] : (mf_output){NULL, 0};
}
int mf_op_num_control_inputs(const mf_op *op) { return op ? op->nctrl : 0; }
mf_op *mf_op_control_input(const mf_op *op, int i)
{
  return op && i >= 0 && i < op->nctrl ? op->ctrl[i] : NULL;
}
int mf_op_num_outputs(const mf_op *op) { return op ? op->nout : 0; }
static const mfi_meta *output_meta(const mf_op *op, int i)
{
  return op && i >= 0 && i < op->nout ? &op->out[i] : NULL;
}
mf_dtype mf_op_output_dtype(const mf_op *op, int i)
{
  const mfi_meta *m = output_meta(op, i);
  return m ? m->dtype : MF_NUM_DTYPES;
}
int mf_op_output_ndim(const mf_op *op, int i)
{
  const mfi_meta *m = output_meta(op, i);
  return m ? m->ndim : -1;
}
const int64_t *mf_op_output_dims(const mf_op *op, int i)
{
  const mfi_meta *m = output_meta(op, i);
  return m ? m->dims : NULL;
}

int mf_op_get_attr_int(const mf_op *op, const char *name, int64_t *v)
{
  if (!op || !name || !v) return 0;
  const mfi_attr *a = mfi_attr_find(op, name);
  if (!a || (a->kind != MFI_A_INT && a->kind != MFI_A_BOOL && a->kind != MFI_A_TYPE)) return 0;
  *v = a->i;
  return 1;
}

int mf_op_get_attr_shape(const mf_op *op, const char *name, const int64_t **dims, int *ndim)
{
  if (!op || !name || !dims || !ndim) return 0;
  const mfi_attr *a = mfi_attr_find(op, name);
  if (!a || (a->kind != MFI_A_SHAPE && a->kind != MFI_A_INTS)) return 0;
  *dims = a->ints;
  *ndim = (int)a->i;
  return 1;
}

int mf_op_get_attr_float(const mf_op *op, const char *name, double *v)
{
  const mfi_attr *a = op && name && v ? mfi_attr_find(op, name) : NULL;
  if (!a || a->kind != MFI_A_FLOAT) return 0;
  *v = a->f;
  return 1;
}

int mf_op_get_attr_bool(const mf_op *op, const char *name, int *v)
{
  const mfi_attr *a = op && name && v ? mfi_attr_find(op, name) : NULL;
  if (!a || a->kind != MFI_A_BOOL) return 0;
  *v = a->i != 0;
  return 1;
}

int mf_op_get_attr_type(const mf_op *op, const char *name, mf_dtype *v)
{
  const mfi_attr *a = op && name && v ? mfi_attr_find(op, name) : NULL;
  if (!a || a->kind != MFI_A_TYPE) return 0;
  *v = (mf_dtype)a->i;
  return 1;
}

int mf_op_get_attr_string(const mf_op *op, const char *name, const char **v)
{
  const mfi_attr *a = op && name && v ? mfi_attr_find(op, name) : NULL;
  if (!a || a->kind != MFI_A_STRING) return 0;
  *v = a->s;
  return 1;
}

int mf_op_get_attr_ints(const mf_op *op, const char *name, const int64_t **v, int *n)
{
  const mfi_attr *a = op && name && v && n ? mfi_attr_find(op, name) : NULL;
  if (!a || a->kind != MFI_A_INTS) return 0;
  *v = a->ints;
  *n = (int)a->i;
  return 1;
}

int mf_op_get_attr_tensor(const mf_op *op, const char *name, mf_tensor **v)
{
  const mfi_attr *a = op && name && v ? mfi_attr_find(op, name) : NULL;
  if (!a || a->kind != MFI_A_TENSOR) return 0;
  *v = mfi_tensor_view(a->t); /* its own header: a write copies the buffer */
  return *v != NULL;
}

int mf_op_num_attrs(const mf_op *op) { return op ? op->nattr : 0; }
const char *mf_op_attr_name(const mf_op *op, int i)
{
  return op && i >= 0 && i < op->nattr ? op->attrs[i].name : NULL;
}
int mf_op_attr_kind(const mf_op *op, int i)
{
  return op && i >= 0 && i < op->nattr ? (int)op->attrs[i].kind : -1;
}

int mf_op_type_exists(const char *type) { return mfi_opdef_find(type) != NULL; }

/* ---------------------------------------------------------------- reading attributes */

const mfi_attr *mfi_attr_find(const mf_op *op, const char *name)
{
  for (int i = 0; i < op->nattr; i++)
    if (strcmp(op->attrs[i].name, name) == 0) return &op->attrs[i];
  return NULL;
}

static const char *const kind_name[] = {
    [MFI_A_INT] = "an integer", [MFI_A_FLOAT] = "a float",   [MFI_A_BOOL] = "a bool",
    [MFI_A_TYPE] = "a type",    [MFI_A_STRING] = "a string", [MFI_A_INTS] = "a list of integers",
    [MFI_A_SHAPE] = "a shape",  [MFI_A_TENSOR] = "a tensor"};

/* c's attribute `name` when it has kind `want`; otherwise NULL, and *ok
 * false after an error when it has another kind or is needed but absent. */
static const mfi_attr *checked(mfi_infer_ctx *c, const char *name, mfi_attr_kind want, bool need,
                               bool *ok)
{
  const mfi_attr *a = mfi_attr_find(c->op, name);
  *ok = true;
  if (a && a->kind == want) return a;
  if (a)
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "attribute '%s' must be %s, got %s", name,
                    kind_name[want], kind_name[a->kind]);
  else if (need)
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "needs %s attribute '%s'", kind_name[want], name);
  *ok = !a && !need;
  return NULL;
}

bool mfi_check_int(mfi_infer_ctx *c, const char *name, bool need, int64_t dflt, int64_t *v)
{
  bool ok;
  const mfi_attr *a = checked(c, name, MFI_A_INT, need, &ok);
  *v = a ? a->i : dflt;
  return ok;
}

bool mfi_check_float(mfi_infer_ctx *c, const char *name, bool need, double dflt, double *v)
{
  bool ok;
  const mfi_attr *a = checked(c, name, MFI_A_FLOAT, need, &ok);
  *v = a ? a->f : dflt;
  return ok;
}

bool mfi_check_bool(mfi_infer_ctx *c, const char *name, bool need, bool dflt, bool *v)
{
  bool ok;
  const mfi_attr *a = checked(c, name, MFI_A_BOOL, need, &ok);
  *v = a ? a->i != 0 : dflt;
  return ok;
}

bool mfi_check_type(mfi_infer_ctx *c, const char *name, bool need, mf_dtype dflt, mf_dtype *v)
{
  bool ok;
  const mfi_attr *a = checked(c, name, MFI_A_TYPE, need, &ok);
  *v = dflt;
  if (!a) return ok;
  if (a->i < 0 || a->i >= MF_NUM_DTYPES) {
    mfi_infer_error(c, MF_INVALID_ARGUMENT, "attribute '%s' is not a valid type (%lld)", name,
                    (long long)a->i);
    return false;
  }
  *v = (mf_dtype)a->i;
  return true;
}

int mfi_check_ints(mfi_infer_ctx *c, const char *name, const int64_t **v, int *n)
{
  const mfi_attr *a = mfi_attr_find(c->op, name);
  if (!a) return 0;
  if ((*v = mfi_attr_ints(c->op, name, n))) return 1;
  mfi_infer_error(c, MF_INVALID_ARGUMENT, "attribute '%s' must be a list of integers, got %s", name,
                  a->kind == MFI_A_SHAPE ? "a shape of unknown rank" : kind_name[a->kind]);
  return -1;
}

int64_t mfi_attr_int(const mf_op *op, const char *name, int64_t dflt)
{
  const mfi_attr *a = mfi_attr_find(op, name);
  return a && a->kind == MFI_A_INT ? a->i : dflt;
}

double mfi_attr_float(const mf_op *op, const char *name, double dflt)
{
  const mfi_attr *a = mfi_attr_find(op, name);
  return a && a->kind == MFI_A_FLOAT ? a->f : dflt;
}

bool mfi_attr_bool(const mf_op *op, const char *name, bool dflt)
{
  const mfi_attr *a = mfi_attr_find(op, name);
  return a && a->kind == MFI_A_BOOL ? a->i != 0 : dflt;
}

mf_dtype mfi_attr_type(const mf_op *op, const char *name, mf_dtype dflt)
{
  const mfi_attr *a = mfi_attr_find(op, name);
  return a && a->kind == MFI_A_TYPE ? (mf_dtype)a->i : dflt;
}

const int64_t *mfi_attr_ints(const mf_op *op, const char *name, int *n)
{
  const mfi_attr *a = mfi_attr_find(op, name);
  if (a && a->kind == MFI_A_INT) return *n = 1, &a->i;
  if (a && (a->kind == MFI_A_INTS || a->kind == MFI_A_SHAPE) && a->i >= 0)
    return *n = (int)a->i, a->ints;
  return *n = 0, NULL;
}
