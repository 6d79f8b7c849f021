/* Graph functions: named slices of a graph (arguments, results, targets)
 * that control-flow operations call. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void free_function(mfi_function *f)
{
  if (!f) return;
  free(f->name), free(f->args), free(f->res), free(f->targets);
  free(f);
}

void mfi_graph_free_functions(mf_graph *g)
{
  for (int i = 0; i < g->nfuncs; i++) free_function(g->funcs[i]);
  free(g->funcs);
  g->funcs = NULL, g->nfuncs = g->fcap = 0;
}

static const mfi_function *find_locked(const mf_graph *g, const char *name)
{
  for (int i = 0; i < g->nfuncs; i++)
    if (strcmp(g->funcs[i]->name, name) == 0) return g->funcs[i];
  return NULL;
}

const mfi_function *mfi_graph_function(mf_graph *g, const char *name)
{
  if (!g || !name) return NULL;
  pthread_mutex_lock(&g->lock);
  const mfi_function *f = find_locked(g, name);
  pthread_mutex_unlock(&g->lock);
  return f;
}

int mf_graph_has_function(mf_graph *g, const char *name)
{
  return mfi_graph_function(g, name) != NULL;
}

static bool in_graph(const mf_graph *g, const mf_op *op) { return op && op->graph == g; }

/* false with the reason in msg when the arguments cannot define a function. */
static bool check(const mf_graph *g, int nargs, mf_op *const *args, int nres, const mf_output *res,
                  int ntargets, mf_op *const *targets, char *msg, size_t size)
{
  for (int i = 0; i < nargs; i++) {
    const char *why = !in_graph(g, args[i]) ? "is not an operation of this graph"
                      : strcmp(args[i]->def->type, "Placeholder") != 0 ? "is not a Placeholder"
                                                                       : NULL;
    for (int j = 0; !why && j < i; j++)
      if (args[j] == args[i]) why = "repeats an earlier one";
    if (why) return snprintf(msg, size, "argument %d %s", i + 1, why), false;
  }
  for (int i = 0; i < nres; i++)
    if (!in_graph(g, res[i].op) || res[i].index < 0 || res[i].index >= res[i].op->nout)
      return snprintf(msg, size, "result %d is not an output of this graph", i + 1), false;
  for (int i = 0; i < ntargets; i++)
    if (!in_graph(g, targets[i]))
      return snprintf(msg, size, "target %d is not an operation of this graph", i + 1), false;
  return true;
}

int mf_graph_add_function(mf_graph *g, const char *name, int nargs, mf_op *const *args,
                          int nresults, const mf_output *results, int ntargets,
                          mf_op *const *targets, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  const char *bad = !g                           ? "graph is NULL"
                    : !name                      ? "name is NULL"
                    : !name[0]                   ? "name is empty"
                    : strlen(name) > MF_MAX_NAME ? "name is too long"
                    : nargs < 0                  ? "nargs is negative"
                    : nresults < 0               ? "nresults is negative"
                    : ntargets < 0               ? "ntargets is negative"
                    : nargs > 0 && !args         ? "args is NULL"
                    : nresults > 0 && !results   ? "results is NULL"
                    : ntargets > 0 && !targets   ? "targets is NULL"
                                                 : NULL;
  if (bad) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_graph_add_function: %s", bad);
    return 0;
  }
  char msg[128];
  if (!check(g, nargs, args, nresults, results, ntargets, targets, msg, sizeof msg)) {
    mfi_set(s, MF_INVALID_ARGUMENT, "function '%s': %s", name, msg);
    return 0;
  }
  mfi_function *f = calloc(1, sizeof *f);
  if (f) {
    f->name = strdup(name);
    f->args = malloc(sizeof *f->args * (nargs ? nargs : 1));
    f->res = malloc(sizeof *f->res * (nresults ? nresults : 1));
    f->targets = malloc(sizeof *f->targets * (ntargets ? ntargets : 1));
  }
  if (!f || !f->name || !f->args || !f->res || !f->targets) {
    free_function(f);
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory adding function '%s'", name);
    return 0;
  }
  f->nargs = nargs, f->nres = nresults, f->ntargets = ntargets;
  if (nargs) memcpy(f->args, args, sizeof *args * nargs);
  if (nresults) memcpy(f->res, results, sizeof *results * nresults);
  if (ntargets) memcpy(f->targets, targets, sizeof *targets * ntargets);
  pthread_mutex_lock(&g->lock);
  bool dup = find_locked(g, name) != NULL, ok = !dup;
  if (ok && g->nfuncs == g->fcap) {
    int cap = g->fcap ? 2 * g->fcap : 8;
    mfi_function **v = realloc(g->funcs, sizeof *v * cap);
    if (v) g->funcs = v, g->fcap = cap;
    ok = v != NULL;
  }
  if (ok) g->funcs[g->nfuncs++] = f;
  pthread_mutex_unlock(&g->lock);
  if (!ok) {
    free_function(f);
    if (dup)
      mfi_set(s, MF_INVALID_ARGUMENT, "the graph already has a function named '%s'", name);
    else
      mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory adding function '%s'", name);
    return 0;
  }
  return 1;
}
