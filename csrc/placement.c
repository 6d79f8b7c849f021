/* Placement: which device runs each operation.
 *
 * An op's device string is parsed when the op is created. At planning time
 * each op gets a device: variables' reads and updates that of their
 * variable; otherwise the requested device when it exists and has a kernel
 * for the op (for a variable: for every op that updates it too); otherwise
 * (no request, or soft placement) the default (default_device). A session
 * keeps the result per op, so a variable never moves once placed. */
#include "placement.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------- parsing */

static bool parse_index(const char *p, size_t n, int *index)
{
  if (n == 1 && *p == '*') return *index = -1, true;
  if (n == 0 || n > 6) return false;
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)p[i])) return false;
    v = v * 10 + (p[i] - '0');
  }
  *index = v;
  return true;
}

static int parse_type(const char *p, size_t n)
{
  for (int t = 0; t < MFI_NUM_DEVICE_TYPES; t++) {
    const char *name = mfi_device_type_name((mfi_device_type)t);
    if (strlen(name) == n && strncasecmp(p, name, n) == 0) return t;
  }
  return -1;
}

static const char usage[] = "write \"/cpu:0\", \"/gpu:1\", \"/device:GPU:0\" or "
                            "\"/job:localhost/replica:0/task:0/device:CPU:0\"";

/* "TYPE", "TYPE:N" or "TYPE:*" */
static bool parse_device(const char *str, const char *p, size_t n, mfi_device_spec *spec, char *err,
                         size_t errsize)
{
  const char *colon = memchr(p, ':', n);
  size_t tn = colon ? (size_t)(colon - p) : n;
  int t = parse_type(p, tn);
  if (t < 0) {
    snprintf(err, errsize,
             "device '%s' has an unknown device type '%.*s' (moonflow has CPU, GPU%s)", str,
             (int)tn, p, mfi_device_find(MFI_DEVICE_TEST, 0) ? ", TEST" : "");
    return false;
  }
  /* A later part that leaves the index open keeps an earlier one of the same
   * type, as TF merges nested device scopes ("/gpu:1" then "/device:GPU"). */
  int index = t == spec->type ? spec->index : -1;
  spec->type = t;
  spec->index = -1;
  if (colon && !parse_index(colon + 1, n - tn - 1, &spec->index)) {
    snprintf(err, errsize, "'%s' is not a device name (%s)", str, usage);
    return false;
  }
  if (spec->index < 0) spec->index = index;
  return true;
}

bool mfi_device_spec_parse(const char *str, mfi_device_spec *spec, char *err, size_t errsize)
{
  spec->type = spec->index = -1;
  if (!str) str = "";
  for (const char *p = str; *p;) {
    if (*p == '/') p++;
    size_t n = strcspn(p, "/");
    const char *colon = memchr(p, ':', n);
    size_t key = colon ? (size_t)(colon - p) : n;
    if (key == 3 && strncmp(p, "job", 3) == 0) {
      if (n != 13 || strncmp(colon + 1, "localhost", 9) != 0) {
        snprintf(err, errsize,
                 "device '%s' names another job: a moonflow session runs in one process "
                 "(use /job:localhost or leave the job out)",
                 str);
        return false;
      }
    } else if ((key == 7 && strncmp(p, "replica", 7) == 0) ||
               (key == 4 && strncmp(p, "task", 4) == 0)) {
      int v = -1;
      if (!colon || !parse_index(colon + 1, n - key - 1, &v) || v != 0) {
        snprintf(err, errsize, "device '%s': a moonflow session has only %.*s 0", str, (int)key, p);
        return false;
      }
    } else if (key == 6 && strncmp(p, "device", 6) == 0 && colon) {
      if (!parse_device(str, colon + 1, n - 7, spec, err, errsize)) return false;
    } else if (n) {
      if (!parse_device(str, p, n, spec, err, errsize)) return false;
    } else {
      snprintf(err, errsize, "'%s' is not a device name (%s)", str, usage);
      return false;
    }
    p += n;
  }
  return true;
}

/* ---------------------------------------------------------------- placing */

static bool preferred_types[MFI_NUM_DEVICE_TYPES];

void mfi_prefer_device_type(mfi_device_type t) { preferred_types[t] = true; }

static bool has_kernel(const mf_op *op, const mfi_device *d)
{
  return op->def->kernel[d->type] != NULL;
}

static bool matches(mfi_device_spec spec, const mfi_device *d)
{
  return (int)d->type == spec.type && (spec.index < 0 || d->index == spec.index);
}

static bool exists(mfi_device_spec spec)
{
  for (int i = 0; i < mfi_device_count(); i++)
    if (matches(spec, mfi_device_at(i))) return true;
  return false;
}

/* A variable's group: the variables that must live together because one
 * op updates them together (a variable and its optimizer slots), and the
 * ops that read or update any of them through reference inputs. */
typedef struct {
  const mf_op **vars;
  int n, cap;
} var_set;

static bool var_set_add(var_set *vs, const mf_op *v)
{
  for (int i = 0; i < vs->n; i++)
    if (vs->vars[i] == v) return true;
  if (vs->n == vs->cap) {
    int cap = vs->cap ? 2 * vs->cap : 8;
    const mf_op **p = realloc(vs->vars, sizeof *p * (size_t)cap);
    if (!p) return false;
    vs->vars = p, vs->cap = cap;
  }
  vs->vars[vs->n++] = v;
  return true;
}

static bool refers_to(const mf_op *op, const var_set *vs)
{
  for (int i = 0; i < op->def->nref; i++)
    for (int j = 0; j < vs->n; j++)
      if (op->inputs[i].op == vs->vars[j]) return true;
  return false;
}

/* Collects var's group (false when out of memory). */
static bool group_of(const mf_op *var, var_set *vs)
{
  if (!var_set_add(vs, var)) return false;
  const mf_graph *g = var->graph;
  for (int grew = 1; grew;) {
    grew = 0;
    for (int id = 0; id < g->nops; id++) {
      const mf_op *op = g->ops[id];
      if (op->def->nref < 2 || !refers_to(op, vs)) continue;
      for (int i = 0; i < op->def->nref; i++) {
        int before = vs->n;
        if (!var_set_add(vs, op->inputs[i].op)) return false;
        grew |= vs->n > before;
      }
    }
  }
  return true;
}

/* The first op of the group with no kernel on d; NULL when the whole group
 * can live there. `*uses` says whether an op that computes (not one that
 * only passes references on) reads or updates the group there: only then
 * is an accelerator worth its copies. */
static const mf_op *group_misfit(const var_set *vs, const mfi_device *d, bool *uses)
{
  *uses = false;
  for (int j = 0; j < vs->n; j++)
    if (!has_kernel(vs->vars[j], d)) return vs->vars[j];
  const mf_graph *g = vs->vars[0]->graph;
  for (int id = 0; id < g->nops; id++) {
    const mf_op *op = g->ops[id];
    bool touches = refers_to(op, vs);
    for (int i = op->def->nref; !touches && i < op->nin; i++)
      for (int j = 0; !touches && j < vs->n; j++) touches = op->inputs[i].op == vs->vars[j];
    if (!touches) continue;
    if (op->def->nref > 0 && !has_kernel(op, d)) return op;
    if (!(op->def->flags & MFI_ANY_DEVICE) && has_kernel(op, d)) *uses = true;
  }
  return NULL;
}

/* The device of output `o`: its producer's, or the host's for a host-memory
 * output; NULL when the producer is not placed (it is fed). */
static mfi_device *output_device(const mfi_placer *pl, mf_output o)
{
  mfi_device *d = pl->place[o.op->id];
  return d ? mfi_out_device(o.op->def, o.index, d) : NULL;
}

static mfi_device *refuse(const mf_op *op, const mf_op *misfit, mf_status *s)
{
  char kernels[64];
  mfi_device_type t = (mfi_device_type)op->spec.type;
  if (!exists(op->spec))
    mfi_op_error(s, MF_INVALID_ARGUMENT, op,
                 "cannot assign a device: '%s' was requested, but no such device exists (this "
                 "process has %d device%s; set config.allow_soft_placement to fall back)",
                 op->device, mfi_device_count(), mfi_device_count() == 1 ? "" : "s");
  else if (misfit == op)
    mfi_op_error(s, MF_INVALID_ARGUMENT, op,
                 "cannot assign a device: '%s' was requested, but %s has no kernel for %s devices "
                 "(it has: %s; set config.allow_soft_placement to fall back)",
                 op->device, op->def->type, mfi_device_type_name(t),
                 mfi_kernel_list(op->def, kernels, sizeof kernels));
  else
    mfi_op_error(s, MF_INVALID_ARGUMENT, op,
                 "cannot assign a device: '%s' was requested, but %s '%s', which updates this "
                 "variable and must run where it lives, has no kernel for %s devices (set "
                 "config.allow_soft_placement to fall back)",
                 op->device, misfit->def->type, misfit->name, mfi_device_type_name(t));
  return NULL;
}

/* Where a variable's group goes: where a member already lives; else, with
 * a request, the first matching device that fits the group; else the first
 * preferred device that fits it and computes on it; else the CPU. */
static mfi_device *place_variable(mfi_placer *pl, const mf_op *var, mf_status *s)
{
  var_set vs = {0};
  mfi_device *d = NULL;
  const mf_op *misfit = var;
  bool uses;
  if (!group_of(var, &vs)) {
    mfi_op_error(s, MF_RESOURCE_EXHAUSTED, var, "out of memory placing it");
    goto out;
  }
  for (int j = 0; j < vs.n && !d; j++) d = pl->place[vs.vars[j]->id];
  if (d) goto out; /* joins its group, checked where they are used together */
  for (int i = 0; var->spec.type >= 0 && i < mfi_device_count() && !d; i++) {
    mfi_device *c = mfi_device_at(i);
    if (matches(var->spec, c) && !(misfit = group_misfit(&vs, c, &uses))) d = c;
  }
  if (var->spec.type >= 0 && !d && !pl->soft) {
    refuse(var, misfit, s);
    goto out;
  }
  for (int i = 0; i < mfi_device_count() && !d; i++) {
    mfi_device *c = mfi_device_at(i);
    if (preferred_types[c->type] && !group_misfit(&vs, c, &uses) && uses) d = c;
  }
  if (!d) d = mfi_device_cpu();
  /* The whole group goes there now, so it is worked out once. */
  for (int j = 0; j < vs.n; j++)
    if (!pl->place[vs.vars[j]->id] && vs.vars[j] != var) {
      pl->place[vs.vars[j]->id] = d;
      if (pl->log)
        fprintf(stderr, "%s: (%s): %s\n", vs.vars[j]->name, vs.vars[j]->def->type, d->name);
    }
out:
  free(vs.vars);
  return d;
}

/* Where an op goes when nothing (or nothing possible) was asked: an op that
 * only passes values on (Identity, Reshape) with its first input's value;
 * the rest on the first preferred device with a kernel; else the CPU. */
static mfi_device *default_device(mfi_placer *pl, const mf_op *op)
{
  if (op->def->flags & MFI_ANY_DEVICE) {
    mfi_device *d = op->nin > 0 ? output_device(pl, op->inputs[0]) : NULL;
    return d ? d : mfi_device_cpu();
  }
  for (int i = 0; i < mfi_device_count(); i++) {
    mfi_device *d = mfi_device_at(i);
    if (preferred_types[d->type] && has_kernel(op, d)) return d;
  }
  return mfi_device_cpu();
}

/* An op that reads or updates variables runs where the first one lives;
 * the others (an optimizer's slots) must live there too. */
static mfi_device *place_updater(mfi_placer *pl, const mf_op *op, mf_status *s)
{
  mfi_device *home = mfi_place(pl, op->inputs[0].op, s);
  if (!home) return NULL;
  if (!has_kernel(op, home)) {
    mfi_op_error(s, MF_INVALID_ARGUMENT, op,
                 "must run where its variable '%s' lives (%s), but %s has no %s kernel (it was "
                 "created after the variable was placed)",
                 op->inputs[0].op->name, home->name, op->def->type,
                 mfi_device_type_kernel_name(home->type));
    return NULL;
  }
  for (int i = 1; i < op->def->nref; i++) {
    mfi_device *d = mfi_place(pl, op->inputs[i].op, s);
    if (!d) return NULL;
    if (d != home) {
      mfi_op_error(s, MF_INVALID_ARGUMENT, op,
                   "its variables live on different devices: '%s' on %s, '%s' on %s (create an "
                   "optimizer's slots where their variable lives)",
                   op->inputs[0].op->name, home->name, op->inputs[i].op->name, d->name);
      return NULL;
    }
  }
  /* Reads and assignments go with the variable silently (TF colocates
   * them); an update that computes must not be moved without consent. */
  if (op->spec.type >= 0 && !matches(op->spec, home) && !pl->soft &&
      !(op->def->flags & MFI_ANY_DEVICE)) {
    mfi_op_error(s, MF_INVALID_ARGUMENT, op,
                 "'%s' was requested, but it reads or updates variable '%s', which lives on %s "
                 "(set config.allow_soft_placement to run it there)",
                 op->device, op->inputs[0].op->name, home->name);
    return NULL;
  }
  return home;
}

/* Whether the op takes or gives a string tensor: it runs on the CPU, where
 * strings live (as TF's string kernels are host-memory ones). */
static bool uses_strings(const mf_op *op)
{
  for (int i = 0; i < op->nin; i++)
    if (op->inputs[i].op->out[op->inputs[i].index].dtype == MF_STRING) return true;
  for (int i = 0; i < op->nout; i++)
    if (op->out[i].dtype == MF_STRING) return true;
  return false;
}

static mfi_device *place_one(mfi_placer *pl, const mf_op *op, mf_status *s)
{
  if ((op->def->flags & MFI_STRINGS) && uses_strings(op)) return mfi_device_cpu();
  if (op->def->nref > 0) return place_updater(pl, op, s);
  if (op->def->flags & MFI_VARIABLE) return place_variable(pl, op, s);
  if (op->spec.type < 0) return default_device(pl, op);
  for (int i = 0; i < mfi_device_count(); i++) {
    mfi_device *d = mfi_device_at(i);
    if (matches(op->spec, d) && has_kernel(op, d)) return d;
  }
  return pl->soft ? default_device(pl, op) : refuse(op, op, s);
}

mfi_device *mfi_place(mfi_placer *pl, const mf_op *op, mf_status *s)
{
  if (pl->place[op->id]) return pl->place[op->id];
  mfi_device *d = place_one(pl, op, s);
  if (d && pl->log) fprintf(stderr, "%s: (%s): %s\n", op->name, op->def->type, d->name);
  return pl->place[op->id] = d;
}

const char *mfi_kernel_list(const mfi_opdef *def, char *buf, size_t size)
{
  size_t n = 0;
  buf[0] = 0;
  for (int t = 0; t < MFI_NUM_DEVICE_TYPES; t++)
    if (def->kernel[t] && n < size)
      n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "",
                            mfi_device_type_kernel_name((mfi_device_type)t));
  return buf;
}
