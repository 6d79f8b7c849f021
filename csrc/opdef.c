/* Op introspection: each registry row's description, input, output and
 * attribute declarations (mfi_opdef's doc, inputs, outputs, attrs strings),
 * parsed once into the tables behind mf_op_def_*. */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(MF_ATTR_INT == (int)MFI_A_INT && MF_ATTR_FLOAT == (int)MFI_A_FLOAT &&
                   MF_ATTR_BOOL == (int)MFI_A_BOOL && MF_ATTR_TYPE == (int)MFI_A_TYPE &&
                   MF_ATTR_STRING == (int)MFI_A_STRING && MF_ATTR_INTS == (int)MFI_A_INTS &&
                   MF_ATTR_SHAPE == (int)MFI_A_SHAPE && MF_ATTR_TENSOR == (int)MFI_A_TENSOR,
               "mf_attr_kind and mfi_attr_kind are out of step");

typedef struct {
  char *name;
  int flags; /* MF_ARG_* */
} argdef;

typedef struct {
  char *name;
  mf_attr_kind kind;
  char *dflt; /* NULL: none */
  bool required;
} attrdef;

struct mf_op_def {
  const mfi_opdef *row;
  int nin, nout, nattr;
  argdef *in, *out;
  attrdef *attr;
};

static const char *const kind_names[] = {
    [MF_ATTR_INT] = "int",     [MF_ATTR_FLOAT] = "float",   [MF_ATTR_BOOL] = "bool",
    [MF_ATTR_TYPE] = "type",   [MF_ATTR_STRING] = "string", [MF_ATTR_INTS] = "ints",
    [MF_ATTR_SHAPE] = "shape", [MF_ATTR_TENSOR] = "tensor"};

const char *mf_attr_kind_name(mf_attr_kind k)
{
  return (int)k >= 0 && k <= MF_ATTR_TENSOR ? kind_names[k] : NULL;
}

/* ---------------------------------------------------------------- parsing */

static char *trimmed(const char *b, const char *e)
{
  while (b < e && isspace((unsigned char)*b)) b++;
  while (e > b && isspace((unsigned char)e[-1])) e--;
  char *s = malloc(e - b + 1);
  if (s) memcpy(s, b, e - b), s[e - b] = 0;
  return s;
}

static bool is_ident(const char *s)
{
  if (!isalpha((unsigned char)*s) && *s != '_') return false;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_') return false;
  return true;
}

/* "x, y?, z*" -> args; false when malformed or out of memory. */
static bool parse_args(const char *spec, argdef **out, int *n)
{
  *out = NULL, *n = 0;
  if (!spec) return false;
  const char *p = spec;
  while (isspace((unsigned char)*p)) p++;
  if (!*p) return true;
  int cap = 1;
  for (const char *q = spec; *q; q++) cap += *q == ',';
  argdef *a = calloc(cap, sizeof *a);
  if (!a) return false;
  *out = a;
  for (const char *b = spec;; b++) {
    const char *e = strchr(b, ',');
    if (!e) e = b + strlen(b);
    char *name = trimmed(b, e);
    if (!name) return false;
    a[*n].name = name;
    (*n)++;
    size_t len = strlen(name);
    if (len && name[len - 1] == '?') a[*n - 1].flags |= MF_ARG_OPTIONAL, name[--len] = 0;
    if (len && name[len - 1] == '*') a[*n - 1].flags |= MF_ARG_LIST, name[--len] = 0;
    if (!is_ident(name)) return false;
    if (!*e) break;
    b = e;
  }
  return true;
}

static bool valid_default(mf_attr_kind k, const char *v)
{
  char *end;
  errno = 0;
  switch (k) {
  case MF_ATTR_INT: (void)strtoll(v, &end, 10); return *v && !*end && errno == 0;
  case MF_ATTR_FLOAT: (void)strtod(v, &end); return *v && !*end;
  case MF_ATTR_BOOL: return strcmp(v, "true") == 0 || strcmp(v, "false") == 0;
  case MF_ATTR_TYPE: {
    mf_dtype dt;
    return mf_dtype_from_name(v, &dt) == 1;
  }
  case MF_ATTR_STRING: return true;
  default: return false; /* lists, shapes and tensors have no written defaults */
  }
}

/* One "name: kind[?] [= default]". */
static bool parse_attr(const char *b, const char *e, attrdef *a)
{
  const char *colon = memchr(b, ':', e - b);
  if (!colon) return false;
  const char *eq = memchr(colon, '=', e - colon);
  a->name = trimmed(b, colon);
  char *kind = trimmed(colon + 1, eq ? eq : e);
  bool ok = a->name && kind && is_ident(a->name);
  if (ok) {
    size_t len = strlen(kind);
    bool optional = len && kind[len - 1] == '?';
    if (optional) kind[--len] = 0;
    int k = 0;
    while (k <= MF_ATTR_TENSOR && strcmp(kind_names[k], kind) != 0) k++;
    ok = k <= MF_ATTR_TENSOR && !(optional && eq);
    a->kind = (mf_attr_kind)k;
    a->required = !optional && !eq;
  }
  free(kind);
  if (ok && eq) {
    a->dflt = trimmed(eq + 1, e);
    size_t len = a->dflt ? strlen(a->dflt) : 0;
    if (a->kind == MF_ATTR_STRING && len >= 2 && a->dflt[0] == '"' && a->dflt[len - 1] == '"')
      memmove(a->dflt, a->dflt + 1, len - 2), a->dflt[len - 2] = 0;
    ok = a->dflt && valid_default(a->kind, a->dflt);
  }
  return ok;
}

static bool parse_attrs(const mfi_opdef *row, attrdef **out, int *n)
{
  const char *spec = row->attrs;
  *out = NULL, *n = 0;
  if (!spec) return false;
  bool random = row->flags & MFI_RANDOM;
  int cap = 1 + 2 * random;
  for (const char *q = spec; *q; q++) cap += *q == ';';
  attrdef *a = calloc(cap, sizeof *a);
  if (!a) return false;
  *out = a;
  const char *p = spec;
  while (isspace((unsigned char)*p)) p++;
  for (const char *b = spec; *p;) {
    const char *e = strchr(b, ';');
    if (!e) e = b + strlen(b);
    if (!parse_attr(b, e, &a[(*n)++])) return false;
    if (!*e) break;
    b = e + 1;
  }
  for (int i = 0; random && i < 2; i++) { /* graph.c reads them for every random op */
    attrdef *s = &a[(*n)++];
    s->name = strdup(i ? "seed2" : "seed");
    s->dflt = strdup("0");
    s->kind = MF_ATTR_INT;
    if (!s->name || !s->dflt) return false;
  }
  for (int i = 0; i < *n; i++)
    for (int j = 0; j < i; j++)
      if (strcmp(a[i].name, a[j].name) == 0) return false;
  return true;
}

static void free_def(mf_op_def *d)
{
  for (int i = 0; i < d->nin; i++) free(d->in[i].name);
  for (int i = 0; i < d->nout; i++) free(d->out[i].name);
  for (int i = 0; i < d->nattr; i++) free(d->attr[i].name), free(d->attr[i].dflt);
  free(d->in), free(d->out), free(d->attr);
  memset(d, 0, sizeof *d);
}

/* Host-memory and reference marks come from the row itself. A list's
 * marks are its first position's. */
static bool parse_def(const mfi_opdef *row, mf_op_def *d)
{
  d->row = row;
  if (!row->doc || !parse_args(row->inputs, &d->in, &d->nin) ||
      !parse_args(row->outputs, &d->out, &d->nout) || !parse_attrs(row, &d->attr, &d->nattr)) {
    free_def(d);
    return false;
  }
  for (int i = 0; i < d->nin; i++) {
    if (i < row->nref) d->in[i].flags |= MF_ARG_REF;
    if (mfi_bit(row->host_in, i)) d->in[i].flags |= MF_ARG_HOST;
  }
  for (int i = 0; i < d->nout; i++)
    if (mfi_bit(row->host_out, i)) d->out[i].flags |= MF_ARG_HOST;
  return true;
}

static mf_op_def *defs; /* one per registered type, in mf_op_type_name order */
static int ndefs;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void)
{
  int n = 0;
  while (mf_op_type_name(n)) n++;
  mf_op_def *t = calloc(n ? n : 1, sizeof *t);
  if (!t) return;
  for (int i = 0; i < n; i++) parse_def(mfi_opdef_find(mf_op_type_name(i)), &t[i]);
  defs = t, ndefs = n;
}

/* ---------------------------------------------------------------- public */

const mf_op_def *mf_op_def_get(const char *type)
{
  const mfi_opdef *row = mfi_opdef_find(type);
  if (!row) return NULL;
  pthread_once(&once, build);
  for (int i = 0; i < ndefs; i++)
    if (defs[i].row == row) return &defs[i];
  return NULL; /* undescribed, malformed, or out of memory */
}

const char *mf_op_def_type(const mf_op_def *d) { return d ? d->row->type : NULL; }
const char *mf_op_def_doc(const mf_op_def *d) { return d ? d->row->doc : NULL; }
int mf_op_def_min_inputs(const mf_op_def *d) { return d ? d->row->min_inputs : -1; }
int mf_op_def_max_inputs(const mf_op_def *d) { return d ? d->row->max_inputs : -1; }

int mf_op_def_num_inputs(const mf_op_def *d) { return d ? d->nin : 0; }
const char *mf_op_def_input_name(const mf_op_def *d, int i)
{
  return d && i >= 0 && i < d->nin ? d->in[i].name : NULL;
}
int mf_op_def_input_flags(const mf_op_def *d, int i)
{
  return d && i >= 0 && i < d->nin ? d->in[i].flags : -1;
}

int mf_op_def_num_outputs(const mf_op_def *d) { return d ? d->nout : 0; }
const char *mf_op_def_output_name(const mf_op_def *d, int i)
{
  return d && i >= 0 && i < d->nout ? d->out[i].name : NULL;
}
int mf_op_def_output_flags(const mf_op_def *d, int i)
{
  return d && i >= 0 && i < d->nout ? d->out[i].flags : -1;
}

int mf_op_def_num_attrs(const mf_op_def *d) { return d ? d->nattr : 0; }
const char *mf_op_def_attr_name(const mf_op_def *d, int i)
{
  return d && i >= 0 && i < d->nattr ? d->attr[i].name : NULL;
}
int mf_op_def_attr_kind(const mf_op_def *d, int i)
{
  return d && i >= 0 && i < d->nattr ? (int)d->attr[i].kind : -1;
}
const char *mf_op_def_attr_default(const mf_op_def *d, int i)
{
  return d && i >= 0 && i < d->nattr ? d->attr[i].dflt : NULL;
}
int mf_op_def_attr_required(const mf_op_def *d, int i)
{
  return d && i >= 0 && i < d->nattr && d->attr[i].required;
}

/* ---------------------------------------------------------------- for mf_op_finish */

/* Straight from the row's string, so that building ops never waits on the
 * parsed tables. */
bool mfi_opdef_declares(const mfi_opdef *row, const char *name)
{
  if (!row->attrs) return true;
  if ((row->flags & MFI_RANDOM) && (strcmp(name, "seed") == 0 || strcmp(name, "seed2") == 0))
    return true;
  size_t len = strlen(name);
  for (const char *p = row->attrs; *p;) {
    while (isspace((unsigned char)*p)) p++;
    const char *colon = strchr(p, ':');
    if (!colon) return false;
    const char *e = colon;
    while (e > p && isspace((unsigned char)e[-1])) e--;
    if ((size_t)(e - p) == len && memcmp(p, name, len) == 0) return true;
    p = strchr(colon, ';');
    if (!p) return false;
    p++;
  }
  return false;
}
