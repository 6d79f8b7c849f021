/* Planning: prune the graph to what the fetches and targets need, order it,
 * and lay out value slots, consumer counts and successor lists so that a run
 * only executes. */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

void mfi_plan_delete(mfi_plan *p)
{
  if (!p) return;
  for (int k = 0; p->nodes && k < p->nnodes; k++)
    for (int c = 0; c < MFI_MAX_CALLS; c++) mfi_plan_delete(p->nodes[k].calls[c]);
  free(p->sig), free(p->nodes), free(p->in_val), free(p->succ), free(p->uses0);
  free(p->feed_val), free(p->fetch_val), free(p->vals), free(p->uses), free(p->pending);
  free(p->in_ptrs), free(p->copies), free(p->shapes), free(p->ctx);
  free(p);
}

static bool is_ref(const mf_op *op, int i) { return i < op->def->nref; }

/* The feed index that replaces output (op, idx), or -1. */
static int fed(const mf_output *feeds, int nfeeds, const mf_op *op, int idx)
{
  for (int f = nfeeds - 1; f >= 0; f--) /* the last feed of a tensor wins */
    if (feeds[f].op == op && feeds[f].index == idx) return f;
  return -1;
}

typedef struct {
  int *a;
  int n, cap;
} ivec;

static bool push(ivec *v, int x)
{
  if (v->n == v->cap) {
    int nc = v->cap ? v->cap * 2 : 16;
    int *q = realloc(v->a, sizeof(int) * nc);
    if (!q) return false;
    v->a = q, v->cap = nc;
  }
  v->a[v->n++] = x;
  return true;
}

/* Copies planned so far, each with the node after which it runs (-1: feeds). */
typedef struct {
  mfi_copy *a;
  int *owner;
  int n, cap;
} copy_vec;

/* The slot holding value `src` (located on `from`, NULL: not known until
 * it runs) on device `to`: src itself, or the destination of a copy, made
 * on first need. */
static int slot_on(copy_vec *cv, int src, mfi_device *from, mfi_device *to, int owner, int *nvals)
{
  if (from == to) return src;
  for (int c = 0; c < cv->n; c++)
    if (cv->a[c].src == src && cv->a[c].dev == to) return cv->a[c].dst;
  if (cv->n == cv->cap) {
    int nc = cv->cap ? cv->cap * 2 : 16;
    mfi_copy *a = realloc(cv->a, sizeof *a * nc);
    if (a) cv->a = a;
    int *o = a ? realloc(cv->owner, sizeof *o * nc) : NULL;
    if (!o) return -1;
    cv->owner = o, cv->cap = nc;
  }
  cv->a[cv->n] = (mfi_copy){src, *nvals, to};
  cv->owner[cv->n++] = owner;
  return (*nvals)++;
}

/* Orders the copies by owner (feeds, then nodes in plan order) into p. */
static bool lay_out_copies(mfi_plan *p, const copy_vec *cv)
{
  p->ncopies = cv->n;
  p->copies = malloc(sizeof *p->copies * (cv->n ? cv->n : 1));
  if (!p->copies) return false;
  int c = 0;
  for (int i = 0; i < cv->n; i++)
    if (cv->owner[i] < 0) p->copies[c++] = cv->a[i];
  p->nfeed_copies = c;
  for (int k = 0; k < p->nnodes; k++) {
    p->nodes[k].copy_off = c;
    for (int i = 0; i < cv->n; i++)
      if (cv->owner[i] == k) p->copies[c++] = cv->a[i];
    p->nodes[k].ncopy = c - p->nodes[k].copy_off;
  }
  return true;
}

mfi_plan *mfi_plan_build(mf_graph *g, const mf_output *feeds, int nfeeds, const mf_output *fetches,
                         int nfetches, mf_op *const *targets, int ntargets, uint64_t nondet_key,
                         mfi_placer *placer, bool feeds_anywhere, mf_status *s)
{
  int nops = g->nops;
  mfi_plan *p = calloc(1, sizeof *p);
  int *node_of = malloc(sizeof(int) * (nops ? nops : 1)); /* op id -> node index, -1 */
  char *need = calloc(nops ? nops : 1, 1);
  int *stack = malloc(sizeof(int) * (nops ? nops : 1));
  int *last_touch = malloc(sizeof(int) * (nops ? nops : 1));
  ivec edges_from = {0}, edges_to = {0};
  copy_vec cv = {0};
  if (!p || !node_of || !need || !stack || !last_touch) goto oom;

  /* 1. Which operations must run: walk back from fetches and targets, stopping at fed outputs. */
  int sp = 0;
  for (int i = 0; i < nfetches; i++)
    if (fed(feeds, nfeeds, fetches[i].op, fetches[i].index) < 0 && !need[fetches[i].op->id])
      need[fetches[i].op->id] = 1, stack[sp++] = fetches[i].op->id;
  for (int i = 0; i < ntargets; i++)
    if (!need[targets[i]->id]) need[targets[i]->id] = 1, stack[sp++] = targets[i]->id;
  while (sp) {
    mf_op *op = g->ops[stack[--sp]];
    for (int i = 0; i < op->nin; i++) {
      mf_output in = op->inputs[i];
      if (is_ref(op, i) || fed(feeds, nfeeds, in.op, in.index) >= 0 || need[in.op->id]) continue;
      need[in.op->id] = 1, stack[sp++] = in.op->id;
    }
    for (int i = 0; i < op->nctrl; i++)
      if (!need[op->ctrl[i]->id]) need[op->ctrl[i]->id] = 1, stack[sp++] = op->ctrl[i]->id;
  }

  /* 2. Creation order is a topological order: inputs always exist before their consumers. */
  int nn = 0, nin = 0;
  for (int id = 0; id < nops; id++) {
    node_of[id] = -1;
    if (!need[id]) continue;
    mf_op *op = g->ops[id];
    if (op->def->flags & MFI_PLACEHOLDER) {
      mfi_op_error(s, MF_INVALID_ARGUMENT, op,
                   "you must feed a value for placeholder '%s' (dtype %s)", op->name,
                   mf_dtype_name(op->out[0].dtype));
      goto fail;
    }
    node_of[id] = nn++;
    nin += op->nin;
  }
  p->nnodes = nn;
  p->nodes = calloc(nn ? nn : 1, sizeof *p->nodes);
  p->in_val = malloc(sizeof(int) * (nin ? nin : 1));
  p->in_ptrs = malloc(sizeof(mf_tensor *) * (nin ? nin : 1));
  p->pending = malloc(sizeof(int) * (nn ? nn : 1));
  p->feed_val = malloc(sizeof(int) * (nfeeds ? nfeeds : 1));
  p->fetch_val = malloc(sizeof(int) * (nfetches ? nfetches : 1));
  if (!p->nodes || !p->in_val || !p->in_ptrs || !p->pending || !p->feed_val || !p->fetch_val)
    goto oom;

  /* 3. Devices, and value slots: feeds first, then each node's outputs,
   * then the copies that move values to their consumers' devices. */
  for (int id = 0, k = 0; id < nops; id++) {
    if (node_of[id] < 0) continue;
    mfi_node *n = &p->nodes[k++];
    n->op = g->ops[id];
    if (!(n->dev = mfi_place(placer, n->op, s))) goto fail;
    n->kernel = n->op->def->kernel[n->dev->type];
    bool seen = n->dev == mfi_device_cpu();
    for (int j = 0; j < p->ndevs; j++) seen = seen || p->devs[j] == n->dev;
    if (!seen && p->ndevs < (int)(sizeof p->devs / sizeof *p->devs)) p->devs[p->ndevs++] = n->dev;
  }
  for (int f = 0; f < nfeeds; f++) p->feed_val[f] = f;
  int v = nfeeds, io = 0;
  for (int k = 0; k < nn; k++) p->nodes[k].first_val = v, v += p->nodes[k].op->nout;
  for (int id = 0; id < nops; id++) {
    if (node_of[id] < 0) continue;
    mf_op *op = g->ops[id];
    mfi_node *n = &p->nodes[node_of[id]];
    n->in_off = io;
    n->nvar = 0;
    if (op->def->flags & MFI_VARIABLE) n->var_id[n->nvar++] = op->id;
    for (int i = 0; i < op->def->nref && n->nvar < MFI_MAX_REFS; i++)
      n->var_id[n->nvar++] = op->inputs[i].op->id;
    if (op->def->flags & MFI_RANDOM) {
      int64_t s1 = mfi_attr_int(op, "seed", 0), s2 = mfi_attr_int(op, "seed2", 0);
      n->key = (s1 || s2) ? mfi_seed_key(s1, s2) : mfi_seed_key((int64_t)nondet_key, op->id);
    }
    for (int i = 0; i < op->nin; i++, io++) {
      mf_output in = op->inputs[i];
      if (is_ref(op, i)) {
        p->in_val[io] = -1;
        continue;
      }
      int f = fed(feeds, nfeeds, in.op, in.index);
      mfi_node *from = f >= 0 ? NULL : &p->nodes[node_of[in.op->id]];
      int slot = from ? from->first_val + in.index : f;
      mfi_device *at =
          !from ? (feeds_anywhere ? NULL : mfi_device_cpu())
          : (in.op->def->flags & MFI_CONTROL) && !mfi_bit(in.op->def->host_out, in.index)
              ? NULL
              : mfi_out_device(in.op->def, in.index, from->dev);
      /* A control-flow op takes its inputs where they are (its functions
       * move them where their ops need them). */
      bool anywhere = (op->def->flags & MFI_CONTROL) && !mfi_bit(op->def->host_in, i);
      mfi_device *want = anywhere ? at : mfi_in_device(op->def, i, n->dev);
      if ((p->in_val[io] = slot_on(&cv, slot, at, want, from ? node_of[in.op->id] : -1, &v)) < 0)
        goto oom;
      if (from && (!push(&edges_from, node_of[in.op->id]) || !push(&edges_to, node_of[id])))
        goto oom;
    }
    for (int i = 0; i < op->nctrl; i++)
      if (!push(&edges_from, node_of[op->ctrl[i]->id]) || !push(&edges_to, node_of[id])) goto oom;
  }
  /* Consumers of each slot: inputs, copies and fetches (fetches come back
   * to host memory when they are handed out). */
  int nvals = p->nvals = v;
  p->uses0 = calloc(nvals ? nvals : 1, sizeof(int));
  p->uses = malloc(sizeof(int) * (nvals ? nvals : 1));
  p->vals = calloc(nvals ? nvals : 1, sizeof(mf_tensor *));
  p->shapes = calloc(nvals ? nvals : 1, sizeof(mfi_meta));
  p->ctx = calloc(nn ? nn : 1, sizeof *p->ctx);
  if (!p->uses0 || !p->uses || !p->vals || !p->shapes || !p->ctx || !lay_out_copies(p, &cv))
    goto oom;
  for (int i = 0; i < nin; i++)
    if (p->in_val[i] >= 0) p->uses0[p->in_val[i]]++;
  for (int c = 0; c < cv.n; c++) p->uses0[cv.a[c].src]++;
  for (int i = 0; i < nfetches; i++) {
    int f = fed(feeds, nfeeds, fetches[i].op, fetches[i].index);
    p->fetch_val[i] =
        f >= 0 ? f : p->nodes[node_of[fetches[i].op->id]].first_val + fetches[i].index;
    p->uses0[p->fetch_val[i]]++;
  }

  /* Each variable's initializer, for the uninitialized-value error: the
   * first Assign to it (last_touch is free until step 4). */
  const mfi_opdef *assign = mfi_opdef_find("Assign");
  for (int id = 0; id < nops; id++) last_touch[id] = -1;
  for (int id = 0; id < nops; id++) {
    const mf_op *op = g->ops[id];
    if (op->def == assign && op->nin > 0 && last_touch[op->inputs[0].op->id] < 0)
      last_touch[op->inputs[0].op->id] = id;
  }

  /* Kernel contexts: all but the run's status, counters and variable slots. */
  for (int k = 0; k < nn; k++) {
    mfi_node *n = &p->nodes[k];
    mfi_kctx *c = &p->ctx[k];
    c->op = n->op;
    c->in = p->in_ptrs + n->in_off;
    c->out = p->vals + n->first_val;
    c->shapes = p->shapes + n->first_val;
    c->out_uses = p->uses0 + n->first_val;
    c->calls = n->calls;
    c->key = n->key;
    c->dev = n->dev;
    c->stream = n->dev->stream;
    for (int j = 0; j < n->nvar; j++) {
      const mf_op *var = g->ops[n->var_id[j]];
      c->vars[j].name = var->name;
      c->vars[j].decl = &var->out[0];
      c->vars[j].init = last_touch[var->id] >= 0 ? g->ops[last_touch[var->id]]->name : NULL;
    }
  }

  /* 4. Operations that touch one variable run in creation order. Since every
   * real edge also goes from earlier to later, these edges never form a cycle,
   * and a run's result never depends on scheduling. */
  for (int id = 0; id < nops; id++) last_touch[id] = -1;
  for (int k = 0; k < nn; k++)
    for (int j = 0; j < p->nodes[k].nvar; j++) {
      int var = p->nodes[k].var_id[j];
      if (last_touch[var] >= 0 && (!push(&edges_from, last_touch[var]) || !push(&edges_to, k)))
        goto oom;
      last_touch[var] = k;
    }
  /* Control-flow ops may touch any variable (and random streams) inside
   * their functions: they run in creation order with each other and with
   * every op that touches a variable. */
  for (int k = 0, last_control = -1, since = 0; k < nn; k++) {
    bool control = (p->nodes[k].op->def->flags & MFI_CONTROL) != 0;
    if (!control && p->nodes[k].nvar == 0) continue;
    if (last_control >= 0 && (!push(&edges_from, last_control) || !push(&edges_to, k))) goto oom;
    if (!control) {
      stack[since++] = k; /* the stack is free again: touching ops since the last control op */
      continue;
    }
    for (int i = 0; i < since; i++)
      if (!push(&edges_from, stack[i]) || !push(&edges_to, k)) goto oom;
    since = 0, last_control = k;
  }

  /* 5. Successor lists in CSR form (duplicates are harmless: counted both ways). */
  int ne = edges_from.n;
  p->succ = malloc(sizeof(int) * (ne ? ne : 1));
  if (!p->succ) goto oom;
  for (int e = 0; e < ne; e++) p->nodes[edges_from.a[e]].nsucc++, p->nodes[edges_to.a[e]].npred++;
  int off = 0;
  for (int k = 0; k < nn; k++)
    p->nodes[k].succ_off = off, off += p->nodes[k].nsucc, p->nodes[k].nsucc = 0;
  for (int e = 0; e < ne; e++) {
    mfi_node *n = &p->nodes[edges_from.a[e]];
    p->succ[n->succ_off + n->nsucc++] = edges_to.a[e];
  }
  free(node_of), free(need), free(stack), free(last_touch), free(edges_from.a), free(edges_to.a);
  free(cv.a), free(cv.owner);
  return p;
oom:
  mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory while planning a run");
fail:
  free(node_of), free(need), free(stack), free(last_touch), free(edges_from.a), free(edges_to.a);
  free(cv.a), free(cv.owner);
  mfi_plan_delete(p);
  return NULL;
}
