/* Saved models: mf_model_load reads a directory that tf.saved_model wrote
 * (lua/moonflow/saved_model.lua):
 *   saved_model.pb                   TensorFlow's SavedModel protocol buffer:
 *                                    schema version 1, one MetaGraphDef per
 *                                    tag set (graph, collections, signatures)
 *   variables/variables.safetensors  each saved variable under its op name
 * and gives a host a graph, a session holding the variables' values, and
 * the signatures' tensors. Everything in the directory comes from outside:
 * each part is checked (the version, the tags, the graph through
 * mf_graph_import, each signature tensor's name and dtype, the variables
 * file's checksum and every variable's presence, dtype and shape) and a
 * failure names the directory and the part. */
/* protoc-c's initializer macros cast its const empty string to char *. */
#pragma GCC diagnostic ignored "-Wcast-qual"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "proto/saved_model.pb-c.h"
#include "proto/variable.pb-c.h"
#include "summary.h"

#define WHAT "mf_model_load"
/* The only SavedModel schema version there is (TF writes 1 too). */
#define SCHEMA_VERSION 1
/* What meta_graph_version starts with when moonflow wrote the meta graph. */
#define PRODUCER "moonflow "

typedef struct {
  char **names;
  mf_output *outs;
  int n;
} tensor_map;

struct mf_signature {
  char *key, *method;
  tensor_map in, out;
};

struct mf_model {
  mf_graph *g;
  mf_session *sess;
  struct mf_signature *sig;
  int nsig;
  uint8_t *meta; /* the chosen MetaGraphDef, serialized */
  size_t meta_len;
};

static char *dup_str(const char *p)
{
  size_t n = strlen(p) + 1;
  char *q = malloc(n);
  if (q) memcpy(q, p, n);
  return q;
}

static char *path_join(const char *dir, const char *name)
{
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static void map_free(tensor_map *m)
{
  for (int i = 0; i < m->n; i++) free(m->names[i]);
  free(m->names), free(m->outs);
}

void mf_model_delete(mf_model *m)
{
  if (!m) return;
  mf_session_delete(m->sess);
  mf_graph_delete(m->g);
  for (int i = 0; i < m->nsig; i++) {
    free(m->sig[i].key), free(m->sig[i].method);
    map_free(&m->sig[i].in), map_free(&m->sig[i].out);
  }
  free(m->sig);
  free(m->meta);
  free(m);
}

/* ---------------------------------------------------------------- tags */

static bool has_tag(char *const *tags, size_t n, const char *t)
{
  for (size_t i = 0; i < n; i++)
    if (!strcmp(tags[i], t)) return true;
  return false;
}

/* TF's rule: the meta graph's tags equal the requested ones as sets. */
static bool tags_match(const Tensorflow__MetaGraphDef *mg, const char *const *tags, int ntags)
{
  const Tensorflow__MetaGraphDef__MetaInfoDef *info = mg->meta_info_def;
  size_t n = info ? info->n_tags : 0;
  char *const *have = info ? info->tags : NULL;
  for (int i = 0; i < ntags; i++)
    if (!has_tag(have, n, tags[i])) return false;
  for (size_t i = 0; i < n; i++) {
    bool asked = false;
    for (int j = 0; j < ntags && !asked; j++) asked = !strcmp(have[i], tags[j]);
    if (!asked) return false;
  }
  return true;
}

/* "{serve}, {train, gpu}": the tag sets of the file, for the error. */
static void tag_sets(const Tensorflow__SavedModel *sm, char *buf, size_t size)
{
  size_t used = 0;
  buf[0] = 0;
  for (size_t i = 0; i < sm->n_meta_graphs && used < size; i++) {
    const Tensorflow__MetaGraphDef__MetaInfoDef *info = sm->meta_graphs[i]->meta_info_def;
    used += (size_t)snprintf(buf + used, size - used, "%s{", i ? ", " : "");
    for (size_t j = 0; info && j < info->n_tags && used < size; j++)
      used += (size_t)snprintf(buf + used, size - used, "%s%s", j ? ", " : "", info->tags[j]);
    if (used < size) used += (size_t)snprintf(buf + used, size - used, "}");
  }
}

/* ---------------------------------------------------------------- signatures */

/* The output a TensorInfo names, checked against its dtype and rank. */
static bool resolve(mf_graph *g, const char *dir, const char *sig, const char *what,
                    const char *key, const Tensorflow__TensorInfo *ti, mf_output *out, mf_status *s)
{
  size_t len = 0;
  int idx = 0;
  const char *name = ti ? ti->name : "";
  char op_name[MF_MAX_NAME + 1];
  if (!*name || !mfi_split_tensor_name(name, &len, &idx) || len > MF_MAX_NAME) {
    mfi_set(s, MF_INVALID_ARGUMENT, WHAT ": '%s': signature '%s' %s '%s' names no tensor ('%s')",
            dir, sig, what, key, name);
    return false;
  }
  memcpy(op_name, name, len);
  op_name[len] = 0;
  mf_op *op = mf_graph_op_by_name(g, op_name);
  if (!op || idx >= mf_op_num_outputs(op)) {
    mfi_set(s, MF_NOT_FOUND, WHAT ": '%s': signature '%s' %s '%s' is '%s', which the graph lacks",
            dir, sig, what, key, name);
    return false;
  }
  mf_dtype dt = mf_op_output_dtype(op, idx);
  mf_dtype want = dt;
  if (ti->dtype != TENSORFLOW__DATA_TYPE__DT_INVALID &&
      (!mfi_dtype_from_tf(ti->dtype, &want) || want != dt)) {
    mfi_set(s, MF_INVALID_ARGUMENT,
            WHAT ": '%s': signature '%s' %s '%s' ('%s') is %s in the graph, the signature says "
                 "DataType %d",
            dir, sig, what, key, name, mf_dtype_name(dt), (int)ti->dtype);
    return false;
  }
  const Tensorflow__TensorShapeProto *sh = ti->tensor_shape;
  int ndim = mf_op_output_ndim(op, idx);
  if (sh && !sh->unknown_rank && ndim >= 0 && (size_t)ndim != sh->n_dim) {
    mfi_set(s, MF_INVALID_ARGUMENT,
            WHAT ": '%s': signature '%s' %s '%s' ('%s') has rank %d in the graph, the signature "
                 "says %zu",
            dir, sig, what, key, name, ndim, sh->n_dim);
    return false;
  }
  out->op = op, out->index = idx;
  return true;
}

/* One map<string, TensorInfo> of a SignatureDef (inputs and outputs have
 * the same entry layout). */
typedef struct {
  ProtobufCMessage base;
  char *key;
  Tensorflow__TensorInfo *value;
} info_entry;

static int by_entry_key(const void *a, const void *b)
{
  return strcmp((*(info_entry *const *)a)->key, (*(info_entry *const *)b)->key);
}

static void oom(mf_status *s) { mfi_set(s, MF_RESOURCE_EXHAUSTED, WHAT ": out of memory"); }

/* Puts "mf_model_load: '<dir>': <part>: " before the status's message. */
static void prefix(mf_status *s, const char *dir, const char *part)
{
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", mf_status_message(s));
  mfi_set(s, mf_status_code(s), WHAT ": '%s': %s: %s", dir, part, msg);
}

/* The tensors of one side of a signature, sorted by name (a map's order on
 * the wire is the writer's); a name twice is an error. */
static bool load_map(mf_graph *g, const char *dir, const char *sig, const char *what, size_t n,
                     info_entry *const *entries, tensor_map *m, mf_status *s)
{
  info_entry **sorted = malloc((n + 1) * sizeof *sorted);
  m->names = calloc(n + 1, sizeof *m->names);
  m->outs = calloc(n + 1, sizeof *m->outs);
  bool ok = sorted && m->names && m->outs;
  if (!ok)
    oom(s);
  else if (n)
    memcpy(sorted, entries, n * sizeof *sorted), qsort(sorted, n, sizeof *sorted, by_entry_key);
  for (size_t i = 0; ok && i < n; i++) {
    if (i && !strcmp(sorted[i]->key, sorted[i - 1]->key)) {
      mfi_set(s, MF_INVALID_ARGUMENT, WHAT ": '%s': signature '%s' has %s '%s' twice", dir, sig,
              what, sorted[i]->key);
      ok = false;
    } else if (!resolve(g, dir, sig, what, sorted[i]->key, sorted[i]->value, &m->outs[i], s)) {
      ok = false;
    } else if (!(m->names[i] = dup_str(sorted[i]->key))) {
      oom(s);
      ok = false;
    } else {
      m->n = (int)i + 1;
    }
  }
  free(sorted);
  return ok;
}

typedef Tensorflow__MetaGraphDef__SignatureDefEntry sig_entry;

static int by_sig_key(const void *a, const void *b)
{
  return strcmp((*(sig_entry *const *)a)->key, (*(sig_entry *const *)b)->key);
}

/* The signatures, sorted by key; a key twice is an error. */
static bool load_signatures(mf_model *m, const Tensorflow__MetaGraphDef *mg, const char *dir,
                            mf_status *s)
{
  size_t n = mg->n_signature_def;
  sig_entry **sorted = malloc((n + 1) * sizeof *sorted);
  m->sig = calloc(n + 1, sizeof *m->sig);
  bool ok = sorted && m->sig;
  if (!ok)
    oom(s);
  else if (n)
    memcpy(sorted, mg->signature_def, n * sizeof *sorted),
        qsort(sorted, n, sizeof *sorted, by_sig_key);
  for (size_t i = 0; ok && i < n; i++) {
    const sig_entry *e = sorted[i];
    const Tensorflow__SignatureDef *d = e->value;
    struct mf_signature *sg = &m->sig[i];
    m->nsig = (int)i + 1;
    if (i && !strcmp(e->key, sorted[i - 1]->key)) {
      mfi_set(s, MF_INVALID_ARGUMENT, WHAT ": '%s': signature '%s' appears twice", dir, e->key);
      ok = false;
    } else if (!(sg->key = dup_str(e->key)) || !(sg->method = dup_str(d ? d->method_name : ""))) {
      oom(s);
      ok = false;
    } else if (d) {
      ok = load_map(m->g, dir, e->key, "input", d->n_inputs, (info_entry *const *)d->inputs,
                    &sg->in, s) &&
           load_map(m->g, dir, e->key, "output", d->n_outputs, (info_entry *const *)d->outputs,
                    &sg->out, s);
    }
  }
  free(sorted);
  return ok;
}

/* ---------------------------------------------------------------- variables */

static const Tensorflow__CollectionDef *collection(const Tensorflow__MetaGraphDef *mg,
                                                   const char *key)
{
  for (size_t i = 0; i < mg->n_collection_def; i++)
    if (!strcmp(mg->collection_def[i]->key, key)) return mg->collection_def[i]->value;
  return NULL;
}

static bool is_variable(const mf_op *op) { return op && !strcmp(mf_op_type(op), "VariableV2"); }

/* Whether the listing (sorted by name) holds `name`. */
static bool listed(const mf_checkpoint_contents *c, const char *name)
{
  int lo = 0, hi = mf_checkpoint_contents_count(c) - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2, cmp = strcmp(mf_checkpoint_contents_name(c, mid), name);
    if (!cmp) return true;
    if (cmp < 0)
      lo = mid + 1;
    else
      hi = mid - 1;
  }
  return false;
}

/* Checks that the meta graph's "variables" collection (VariableDefs) names
 * only variables of the graph that the file holds. */
static bool check_collection(const mf_model *m, const Tensorflow__MetaGraphDef *mg,
                             const mf_checkpoint_contents *c, const char *dir, const char *path,
                             mf_status *s)
{
  const Tensorflow__CollectionDef *vc = collection(mg, "variables");
  if (!vc) return true;
  if (vc->kind_case != TENSORFLOW__COLLECTION_DEF__KIND_BYTES_LIST) {
    mfi_set(s, MF_INVALID_ARGUMENT,
            WHAT ": '%s': the meta graph's \"variables\" collection is not a list of VariableDefs",
            dir);
    return false;
  }
  bool ok = true;
  for (size_t i = 0; ok && i < vc->bytes_list->n_value; i++) {
    const ProtobufCBinaryData *b = &vc->bytes_list->value[i];
    Tensorflow__VariableDef *vd = tensorflow__variable_def__unpack(NULL, b->len, b->data);
    size_t len = 0;
    int idx = 0;
    char op_name[MF_MAX_NAME + 1];
    ok = vd && mfi_split_tensor_name(vd->variable_name, &len, &idx) && len <= MF_MAX_NAME;
    if (ok) {
      memcpy(op_name, vd->variable_name, len);
      op_name[len] = 0;
      if (!is_variable(mf_graph_op_by_name(m->g, op_name)) || idx != 0) {
        mfi_set(s, MF_INVALID_ARGUMENT,
                WHAT ": '%s': the meta graph's variable '%s' is not a variable of the graph", dir,
                vd->variable_name);
        ok = false;
      } else if (!listed(c, op_name)) {
        mfi_set(s, MF_NOT_FOUND,
                WHAT ": '%s': variable '%s' of the meta graph is not in the variables file '%s'",
                dir, op_name, path);
        ok = false;
      }
    } else {
      mfi_set(s, MF_INVALID_ARGUMENT,
              WHAT ": '%s': the meta graph's \"variables\" collection holds a malformed "
                   "VariableDef",
              dir);
    }
    tensorflow__variable_def__free_unpacked(vd, NULL);
  }
  return ok;
}

/* Restores every variable the file holds (each must be a variable of the
 * graph, once) and checks the "variables" collection against the file. */
static bool restore_variables(mf_model *m, const Tensorflow__MetaGraphDef *mg, const char *dir,
                              mf_status *s)
{
  char *path = path_join(dir, "variables/variables.safetensors");
  mf_checkpoint_contents *c = path ? mf_checkpoint_list(path, s) : NULL;
  int n = mf_checkpoint_contents_count(c);
  mf_op **ops = c ? calloc((size_t)n + 1, sizeof *ops) : NULL;
  const char **names = c ? calloc((size_t)n + 1, sizeof *names) : NULL;
  bool ok = c && ops && names;
  if (!ok && (!path || c)) oom(s);
  for (int i = 0; ok && i < n; i++) {
    names[i] = mf_checkpoint_contents_name(c, i);
    ops[i] = mf_graph_op_by_name(m->g, names[i]);
    if (!is_variable(ops[i]) || (i && !strcmp(names[i], names[i - 1]))) {
      mfi_set(s, MF_INVALID_ARGUMENT, WHAT ": '%s': the variables file holds '%s'%s", dir, names[i],
              is_variable(ops[i]) ? " twice" : ", which is not a variable of the graph");
      ok = false;
    }
  }
  ok = ok && check_collection(m, mg, c, dir, path, s);
  if (ok) {
    mf_checkpoint_restore(m->sess, ops, names, n, path, s);
    ok = mf_status_code(s) == MF_OK;
  }
  free(ops), free(names), free(path);
  mf_checkpoint_contents_delete(c);
  return ok;
}

/* Runs the op TF's builder records as the main op (or legacy init op):
 * initializers of what the variables file does not hold (local variables,
 * tables). */
static bool run_main_op(mf_model *m, const Tensorflow__MetaGraphDef *mg, const char *dir,
                        mf_status *s)
{
  static const char *const keys[] = {"saved_model_main_op", "legacy_init_op"};
  for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
    const Tensorflow__CollectionDef *c = collection(mg, keys[k]);
    if (!c || c->kind_case != TENSORFLOW__COLLECTION_DEF__KIND_NODE_LIST) continue;
    for (size_t i = 0; i < c->node_list->n_value; i++) {
      mf_op *op = mf_graph_op_by_name(m->g, c->node_list->value[i]);
      if (!op) {
        mfi_set(s, MF_NOT_FOUND, WHAT ": '%s': the %s '%s' is not in the graph", dir, keys[k],
                c->node_list->value[i]);
        return false;
      }
      mf_session_run(m->sess, NULL, NULL, 0, NULL, NULL, 0, &op, 1, s);
      if (mf_status_code(s) != MF_OK) {
        char part[64 + MF_MAX_NAME];
        snprintf(part, sizeof part, "the %s '%s'", keys[k], c->node_list->value[i]);
        prefix(s, dir, part);
        return false;
      }
    }
  }
  return true;
}

/* ---------------------------------------------------------------- loading */

static const Tensorflow__MetaGraphDef *pick(const Tensorflow__SavedModel *sm, const char *dir,
                                            const char *const *tags, int ntags, mf_status *s)
{
  const Tensorflow__MetaGraphDef *mg = NULL;
  for (size_t i = 0; i < sm->n_meta_graphs && !mg; i++)
    if (tags_match(sm->meta_graphs[i], tags, ntags)) mg = sm->meta_graphs[i];
  if (!mg) {
    char want[256], have[512];
    size_t used = 0;
    want[0] = 0;
    for (int i = 0; i < ntags && used < sizeof want; i++)
      used += (size_t)snprintf(want + used, sizeof want - used, "%s%s", i ? ", " : "", tags[i]);
    tag_sets(sm, have, sizeof have);
    mfi_set(s, MF_NOT_FOUND, WHAT ": '%s' has no meta graph tagged {%s} (it has %s)", dir, want,
            sm->n_meta_graphs ? have : "none");
    return NULL;
  }
  const char *version = mg->meta_info_def ? mg->meta_info_def->meta_graph_version : "";
  if (strncmp(version, PRODUCER, strlen(PRODUCER)) != 0) {
    mfi_set(s, MF_INVALID_ARGUMENT,
            WHAT ": '%s' was not written by moonflow (meta_graph_version '%s'): moonflow loads "
                 "the saved models tf.saved_model writes",
            dir, version);
    return NULL;
  }
  if (!mg->graph_def) {
    mfi_set(s, MF_INVALID_ARGUMENT, WHAT ": '%s': the meta graph has no graph_def", dir);
    return NULL;
  }
  return mg;
}

/* Packs a message into malloc'ed bytes; NULL when out of memory. */
static uint8_t *pack(const ProtobufCMessage *msg, size_t *n)
{
  *n = protobuf_c_message_get_packed_size(msg);
  uint8_t *p = malloc(*n ? *n : 1);
  if (p) protobuf_c_message_pack(msg, p);
  return p;
}

static bool build(mf_model *m, const Tensorflow__MetaGraphDef *mg, const char *dir,
                  const mf_session_config *c, mf_status *s)
{
  size_t n = 0;
  uint8_t *gd = pack(&mg->graph_def->base, &n);
  m->meta = pack(&mg->base, &m->meta_len);
  if (!gd || !m->meta || !(m->g = mf_graph_new())) {
    free(gd);
    mfi_set(s, MF_RESOURCE_EXHAUSTED, WHAT ": out of memory");
    return false;
  }
  int added = mf_graph_import(m->g, gd, n, NULL, s);
  free(gd);
  if (added < 0) {
    prefix(s, dir, "the graph");
    return false;
  }
  if (!load_signatures(m, mg, dir, s)) return false;
  if (!(m->sess = mf_session_new(m->g, c, s))) {
    prefix(s, dir, "the session");
    return false;
  }
  return restore_variables(m, mg, dir, s) && run_main_op(m, mg, dir, s);
}

mf_model *mf_model_load(const char *dir, const char *const *tags, int ntags,
                        const mf_session_config *c, mf_status *s)
{
  static const char *const serve[] = {"serve"};
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  if (!dir || ntags < 0 || (ntags > 0 && !tags)) {
    mfi_set(s, MF_INVALID_ARGUMENT, WHAT ": %s",
            !dir        ? "dir is NULL"
            : ntags < 0 ? "ntags is negative"
                        : "tags is NULL");
    return NULL;
  }
  for (int i = 0; i < ntags; i++)
    if (!tags[i]) {
      mfi_set(s, MF_INVALID_ARGUMENT, WHAT ": tags[%d] is NULL", i);
      return NULL;
    }
  if (ntags == 0) tags = serve, ntags = 1;
  char *path = path_join(dir, "saved_model.pb");
  size_t size = 0;
  uint8_t *bytes = path ? mfi_read_file(path, "saved model", &size, s) : NULL;
  if (!path) mfi_set(s, MF_RESOURCE_EXHAUSTED, WHAT ": out of memory");
  free(path);
  if (!bytes) return NULL;
  Tensorflow__SavedModel *sm = tensorflow__saved_model__unpack(NULL, size, bytes);
  free(bytes);
  if (!sm) {
    mfi_set(s, MF_INVALID_ARGUMENT,
            WHAT ": '%s/saved_model.pb' is not a SavedModel protocol buffer (truncated or "
                 "malformed)",
            dir);
    return NULL;
  }
  mf_model *m = NULL;
  const Tensorflow__MetaGraphDef *mg = NULL;
  if (sm->saved_model_schema_version != SCHEMA_VERSION)
    mfi_set(s, MF_UNIMPLEMENTED,
            WHAT ": '%s': SavedModel schema version %lld (this moonflow reads version %d)", dir,
            (long long)sm->saved_model_schema_version, SCHEMA_VERSION);
  else if ((mg = pick(sm, dir, tags, ntags, s)) && !(m = calloc(1, sizeof *m)))
    mfi_set(s, MF_RESOURCE_EXHAUSTED, WHAT ": out of memory");
  if (m && !build(m, mg, dir, c, s)) {
    mf_model_delete(m);
    m = NULL;
  }
  tensorflow__saved_model__free_unpacked(sm, NULL);
  return m;
}

/* ---------------------------------------------------------------- queries */

mf_graph *mf_model_graph(const mf_model *m) { return m ? m->g : NULL; }
mf_session *mf_model_session(const mf_model *m) { return m ? m->sess : NULL; }
int mf_model_num_signatures(const mf_model *m) { return m ? m->nsig : 0; }

const mf_signature *mf_model_signature(const mf_model *m, int i)
{
  return m && i >= 0 && i < m->nsig ? &m->sig[i] : NULL;
}

static int sig_has_key(const void *key, const void *sig)
{
  return strcmp(key, ((const struct mf_signature *)sig)->key);
}

const mf_signature *mf_model_signature_by_key(const mf_model *m, const char *key)
{
  if (!m || !key || m->nsig == 0) return NULL;
  return bsearch(key, m->sig, (size_t)m->nsig, sizeof *m->sig, sig_has_key); /* sorted by key */
}

const uint8_t *mf_model_meta_graph(const mf_model *m, size_t *len)
{
  if (len) *len = m ? m->meta_len : 0;
  return m ? m->meta : NULL;
}

const char *mf_signature_key(const mf_signature *sig) { return sig ? sig->key : NULL; }
const char *mf_signature_method(const mf_signature *sig) { return sig ? sig->method : NULL; }

static const tensor_map *tensors(const mf_signature *sig, mf_sig_side side)
{
  return !sig ? NULL : side == MF_SIG_OUTPUTS ? &sig->out : side == MF_SIG_INPUTS ? &sig->in : NULL;
}

int mf_signature_num_tensors(const mf_signature *sig, mf_sig_side side)
{
  const tensor_map *t = tensors(sig, side);
  return t ? t->n : 0;
}

const char *mf_signature_tensor_name(const mf_signature *sig, mf_sig_side side, int i)
{
  const tensor_map *t = tensors(sig, side);
  return t && i >= 0 && i < t->n ? t->names[i] : NULL;
}

mf_output mf_signature_tensor(const mf_signature *sig, mf_sig_side side, int i)
{
  const tensor_map *t = tensors(sig, side);
  mf_output none = {NULL, 0};
  return t && i >= 0 && i < t->n ? t->outs[i] : none;
}

mf_output mf_signature_find(const mf_signature *sig, mf_sig_side side, const char *name)
{
  const tensor_map *t = tensors(sig, side);
  mf_output none = {NULL, 0};
  for (int i = 0; t && name && i < t->n; i++)
    if (!strcmp(t->names[i], name)) return t->outs[i];
  return none;
}
