/* Sessions: variable values, random counters, the plan cache, and the
 * executor that runs a plan inline or on an inter-op thread pool. */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct run_state run_state;

struct mf_session {
  mf_graph *graph;
  mf_session_config cfg;
  bool closed;
  pthread_mutex_t lock; /* one run at a time */
  mf_tensor **vars;     /* by op id: a variable's value */
  uint64_t *runs;       /* by op id: how often a random op ran */
  mfi_device **place;   /* by op id: its device once placed, else NULL */
  int nslots;
  uint64_t nondet_key;
  mfi_plan *plans;
  /* By device id: this session's stream on devices that have streams
   * (made when a plan first uses the device), else NULL. */
  void *streams[MFI_MAX_DEVICES];
  /* inter-op workers */
  pthread_t *workers;
  int nworkers;
  pthread_mutex_t qlock;
  pthread_cond_t qcond; /* new ready work, or a run's end */
  run_state *cur;       /* the run the workers serve, NULL when idle */
  bool stopping;
  /* Step statistics, under qlock: the records of the run in progress
   * (trace) and of the last one finished (last), swapped when a run ends,
   * so a reader never sees a buffer that record() may move. */
  atomic_bool tracing;
  mf_op_trace *trace, *last;
  int ntrace, trace_cap, nlast, last_cap;
};

static _Thread_local int worker_index; /* 0 on the calling thread */

struct run_state {
  mfi_plan *plan;
  int *queue, qhead, qtail; /* ready nodes */
  int completed, in_flight;
  bool failed;
  mf_status *status;
};

void mf_session_config_init(mf_session_config *c)
{
  if (!c) return;
  c->inter_op_threads = 1;
  c->intra_op_threads = 0;
  c->allow_soft_placement = 0;
  c->log_device_placement = 0;
  c->allow_tf32 = 0;
}

static atomic_int live_sessions;

typedef struct {
  mf_session *sess;
  int index;
} worker_arg;

static void *worker_main(void *arg);

mf_session *mf_session_new(mf_graph *g, const mf_session_config *c, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  if (!g) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_session_new: graph is NULL");
    return NULL;
  }
  mf_session *sess = calloc(1, sizeof *sess);
  if (!sess) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory creating a session");
    return NULL;
  }
  if (c)
    sess->cfg = *c;
  else
    mf_session_config_init(&sess->cfg);
  if (sess->cfg.inter_op_threads < 1) sess->cfg.inter_op_threads = 1;
  if (sess->cfg.inter_op_threads > 64) sess->cfg.inter_op_threads = 64;
  /* At most one per usable CPU, as documented: OpenBLAS would start them all. */
  int cpus = mfi_usable_cpus();
  if (sess->cfg.intra_op_threads < 0) sess->cfg.intra_op_threads = 0;
  if (sess->cfg.intra_op_threads > cpus) sess->cfg.intra_op_threads = cpus;
  sess->graph = mfi_graph_retain(g);
  atomic_fetch_add(&live_sessions, 1);
  pthread_mutex_init(&sess->lock, NULL);
  pthread_mutex_init(&sess->qlock, NULL);
  pthread_cond_init(&sess->qcond, NULL);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  sess->nondet_key =
      mfi_seed_key(ts.tv_nsec ^ ((int64_t)ts.tv_sec << 20), (int64_t)(uintptr_t)sess);
  if (sess->cfg.intra_op_threads > 0) mfi_blas_set_threads(sess->cfg.intra_op_threads);
  int nw = sess->cfg.inter_op_threads - 1;
  if (nw > 0) {
    sess->workers = calloc(nw, sizeof(pthread_t));
    for (int i = 0; sess->workers && i < nw; i++) {
      worker_arg *wa = malloc(sizeof *wa);
      if (!wa) break;
      wa->sess = sess, wa->index = i + 1;
      if (pthread_create(&sess->workers[i], NULL, worker_main, wa) != 0) {
        free(wa);
        break;
      }
      sess->nworkers++;
    }
  }
  return sess;
}

/* Ends the session's streams once their work is done. */
static void release_streams(mf_session *sess)
{
  for (int i = 0; i < MFI_MAX_DEVICES; i++) {
    if (!sess->streams[i]) continue;
    mfi_device *d = mfi_device_at(i);
    d->ops.synchronize(d, sess->streams[i], NULL);
    mfi_device_forget_stream(d, sess->streams[i]);
    d->ops.stream_free(d, sess->streams[i]);
    sess->streams[i] = NULL;
  }
}

/* The session's stream on each device of a plan, made on first use. */
static bool ensure_streams(mf_session *sess, const mfi_plan *p, mf_status *s)
{
  for (int i = 0; i < p->ndevs; i++) {
    mfi_device *d = p->devs[i];
    if (d->ops.stream_new && !sess->streams[d->id] &&
        !(sess->streams[d->id] = d->ops.stream_new(d, s)))
      return false;
  }
  return true;
}

/* Where a run's work on d is ordered. */
static void *stream_on(const mf_session *sess, const mfi_device *d)
{
  return sess->streams[d->id] ? sess->streams[d->id] : d->stream;
}

static void release_state(mf_session *sess)
{
  for (int i = 0; i < sess->nslots; i++) mf_tensor_delete(sess->vars[i]);
  free(sess->vars), free(sess->runs), free(sess->place);
  pthread_mutex_lock(&sess->qlock); /* a trace reader may be copying */
  free(sess->trace), free(sess->last);
  sess->trace = sess->last = NULL;
  sess->ntrace = sess->trace_cap = sess->nlast = sess->last_cap = 0;
  pthread_mutex_unlock(&sess->qlock);
  sess->vars = NULL, sess->runs = NULL, sess->place = NULL, sess->nslots = 0;
  while (sess->plans) {
    mfi_plan *p = sess->plans;
    sess->plans = p->next;
    mfi_plan_delete(p);
  }
  release_streams(sess);
}

void mf_session_close(mf_session *sess)
{
  if (!sess) return;
  pthread_mutex_lock(&sess->lock);
  if (!sess->closed) {
    sess->closed = true;
    pthread_mutex_lock(&sess->qlock);
    sess->stopping = true;
    pthread_cond_broadcast(&sess->qcond);
    pthread_mutex_unlock(&sess->qlock);
    for (int i = 0; i < sess->nworkers; i++) pthread_join(sess->workers[i], NULL);
    free(sess->workers);
    sess->workers = NULL, sess->nworkers = 0;
    release_state(sess);
  }
  pthread_mutex_unlock(&sess->lock);
}

void mf_session_delete(mf_session *sess)
{
  if (!sess) return;
  mf_session_close(sess);
  mf_graph_delete(sess->graph);
  pthread_mutex_destroy(&sess->lock);
  pthread_mutex_destroy(&sess->qlock);
  pthread_cond_destroy(&sess->qcond);
  free(sess);
  /* The last session gives the devices' cached memory back. */
  if (atomic_fetch_sub(&live_sessions, 1) == 1) mf_allocator_trim();
}

/* ---------------------------------------------------------------- step statistics */

void mf_session_set_tracing(mf_session *sess, int on)
{
  if (sess) atomic_store(&sess->tracing, on != 0);
}

int mf_session_trace(mf_session *sess, mf_op_trace *buf, int cap)
{
  if (!sess || cap < 0 || (cap > 0 && !buf)) return -1;
  pthread_mutex_lock(&sess->qlock);
  int n = sess->nlast;
  if (cap > 0 && n > 0) memcpy(buf, sess->last, sizeof *buf * (size_t)(n < cap ? n : cap));
  pthread_mutex_unlock(&sess->qlock);
  return n;
}

/* The run in progress becomes the last finished one. */
static void finish_trace(mf_session *sess)
{
  pthread_mutex_lock(&sess->qlock);
  mf_op_trace *t = sess->last;
  int cap = sess->last_cap;
  sess->last = sess->trace, sess->last_cap = sess->trace_cap, sess->nlast = sess->ntrace;
  sess->trace = t, sess->trace_cap = cap, sess->ntrace = 0;
  pthread_mutex_unlock(&sess->qlock);
}

static void record(mf_session *sess, const mf_op *op, struct timespec t0, struct timespec t1)
{
  pthread_mutex_lock(&sess->qlock);
  if (sess->ntrace == sess->trace_cap) {
    int cap = sess->trace_cap ? sess->trace_cap * 2 : 64;
    mf_op_trace *t = realloc(sess->trace, sizeof *t * cap);
    if (t) sess->trace = t, sess->trace_cap = cap;
  }
  if (sess->ntrace < sess->trace_cap)
    sess->trace[sess->ntrace++] =
        (mf_op_trace){op, t0.tv_sec * 1000000000LL + t0.tv_nsec,
                      t1.tv_sec * 1000000000LL + t1.tv_nsec, worker_index};
  pthread_mutex_unlock(&sess->qlock);
}

/* ---------------------------------------------------------------- one node */

/* Values leave their producer's device for consumers elsewhere. */
static void run_copies(mfi_plan *p, const mfi_copy *c, int n, mf_status *s)
{
  for (int i = 0; i < n && mfi_ok(s); i++) {
    mf_tensor *t = p->vals[c[i].src];
    if (!(p->vals[c[i].dst] = mfi_tensor_to(t, c[i].dev, s))) return;
    if (__atomic_sub_fetch(&p->uses[c[i].src], 1, __ATOMIC_ACQ_REL) == 0)
      mf_tensor_delete(t), p->vals[c[i].src] = NULL;
  }
}

/* splitmix64's finalizer over a and b: call paths and in-call run numbers. */
static uint64_t mix(uint64_t a, uint64_t b)
{
  uint64_t z = a ^ (b + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t mfi_call_path(uint64_t run, uint64_t salt) { return mix(run, salt); }

uint64_t mfi_run_of(const mfi_kctx *k, const mf_op *op)
{
  /* At the top of a run, op ran before k in this run (k reads its output):
   * its count has moved on by one. */
  return k->path ? mix(*k->path, (uint64_t)op->id) : k->sess->runs[op->id] - 1;
}

/* path: the call path when running inside a function call, else NULL. */
static void run_node(mf_session *sess, mfi_plan *p, int k, mf_status *s, const uint64_t *path)
{
  mfi_node *n = &p->nodes[k];
  mf_op *op = n->op;
  const mfi_opdef *def = op->def;
  for (int i = 0; i < op->nin; i++) {
    int v = p->in_val[n->in_off + i];
    p->in_ptrs[n->in_off + i] = v >= 0 ? p->vals[v] : NULL;
  }
  mfi_kctx *c = &p->ctx[k]; /* built with the plan */
  c->status = s;
  c->sess = sess;
  c->threads = sess->cfg.intra_op_threads;
  c->allow_tf32 = sess->cfg.allow_tf32 != 0;
  c->stream = stream_on(sess, n->dev);
  c->nscratch = 0;
  for (int j = 0; j < n->nvar; j++) c->vars[j].slot = &sess->vars[n->var_id[j]];
  c->path = path;
  if (def->flags & (MFI_RANDOM | MFI_CONTROL)) {
    c->count = sess->runs[op->id]++;
    c->run = path ? mix(*path, (uint64_t)op->id) : c->count;
  }
  struct timespec t0, t1;
  bool tracing = atomic_load(&sess->tracing); /* read once: another thread may toggle it */
  if (tracing) clock_gettime(CLOCK_MONOTONIC, &t0);
  int outer = mfi_parallel_limit(c->threads);
  if (n->dev->ops.bind) n->dev->ops.bind(n->dev);
  if (def->prepare) def->prepare(c);
  if (mfi_ok(s)) n->kernel(c);
  mfi_parallel_limit(outer);
  for (int i = 0; i < c->nscratch; i++) mfi_device_free(n->dev, c->scratch[i], c->scratch_bytes[i]);
  if (tracing) {
    clock_gettime(CLOCK_MONOTONIC, &t1);
    record(sess, op, t0, t1);
  }
  for (int i = 0; mfi_ok(s) && i < op->nout; i++) {
    mf_tensor **o = &p->vals[n->first_val + i];
    if (!*o) {
      mfi_op_error(s, MF_INTERNAL, op, "the kernel produced no output %d", i);
      break;
    }
    /* A kernel may hand out a value it holds elsewhere (a constant, a
     * restored variable): it moves to where the plan expects it. */
    mfi_device *want = mfi_out_device(def, i, n->dev);
    bool stays = (def->flags & MFI_CONTROL) && !mfi_bit(def->host_out, i); /* see plan.h */
    if (!stays && (*o)->buf->dev != want) {
      mf_tensor *moved = mfi_tensor_to(*o, want, s);
      mf_tensor_delete(*o);
      *o = moved;
    }
  }
  if (n->ncopy > 0 && mfi_ok(s)) run_copies(p, p->copies + n->copy_off, n->ncopy, s);
  /* Release what nobody reads any more: unused outputs now, inputs at their last use. */
  for (int i = 0; i < op->nout; i++) {
    int v = n->first_val + i;
    if (p->uses[v] == 0) mf_tensor_delete(p->vals[v]), p->vals[v] = NULL;
  }
  for (int i = 0; i < op->nin; i++) {
    int v = p->in_val[n->in_off + i];
    if (v >= 0 && __atomic_sub_fetch(&p->uses[v], 1, __ATOMIC_ACQ_REL) == 0)
      mf_tensor_delete(p->vals[v]), p->vals[v] = NULL;
  }
}

/* ---------------------------------------------------------------- parallel execution */

/* Takes a ready node, runs it, and makes its successors ready. Called with
 * qlock held; returns with it held. */
static void serve_one(mf_session *sess, run_state *r)
{
  int k = r->queue[r->qhead++];
  r->in_flight++;
  pthread_mutex_unlock(&sess->qlock);
  mf_status st;
  mfi_clear(&st);
  run_node(sess, r->plan, k, &st, NULL);
  pthread_mutex_lock(&sess->qlock);
  r->in_flight--;
  r->completed++;
  if (!mfi_ok(&st) && !r->failed) r->failed = true, *r->status = st;
  if (!r->failed) {
    mfi_node *n = &r->plan->nodes[k];
    for (int j = 0; j < n->nsucc; j++) {
      int q = r->plan->succ[n->succ_off + j];
      if (--r->plan->pending[q] == 0) r->queue[r->qtail++] = q;
    }
  }
  /* New work, or the end of the run: wake the workers and the caller alike. */
  if (r->qtail > r->qhead || (r->failed && r->in_flight == 0) || r->completed == r->plan->nnodes)
    pthread_cond_broadcast(&sess->qcond);
}

static void *worker_main(void *arg)
{
  worker_arg wa = *(worker_arg *)arg;
  free(arg);
  mf_session *sess = wa.sess;
  worker_index = wa.index;
  mfi_set_run_streams(sess->streams); /* it only ever serves this session's runs */
  pthread_mutex_lock(&sess->qlock);
  for (;;) {
    while (!sess->stopping &&
           !(sess->cur && !sess->cur->failed && sess->cur->qtail > sess->cur->qhead))
      pthread_cond_wait(&sess->qcond, &sess->qlock);
    if (sess->stopping) break;
    serve_one(sess, sess->cur);
  }
  pthread_mutex_unlock(&sess->qlock);
  return NULL;
}

static void execute_parallel(mf_session *sess, mfi_plan *p, mf_status *s)
{
  run_state r = {p, malloc(sizeof(int) * (p->nnodes ? p->nnodes : 1)), 0, 0, 0, 0, false, s};
  if (!r.queue) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory starting a run");
    return;
  }
  for (int k = 0; k < p->nnodes; k++)
    if (p->pending[k] == 0) r.queue[r.qtail++] = k;
  pthread_mutex_lock(&sess->qlock);
  sess->cur = &r;
  pthread_cond_broadcast(&sess->qcond);
  for (;;) {
    if (r.failed ? r.in_flight == 0 : r.completed == p->nnodes) break;
    if (!r.failed && r.qtail > r.qhead)
      serve_one(sess, &r);
    else
      pthread_cond_wait(&sess->qcond, &sess->qlock);
  }
  sess->cur = NULL;
  pthread_mutex_unlock(&sess->qlock);
  free(r.queue);
}

/* ---------------------------------------------------------------- function calls */

static mfi_placer placer(mf_session *sess);

/* A value fed to a function's argument fits its declared dtype and shape
 * (for a loop variable: its shape invariant). */
static bool check_arg(const mfi_kctx *k, const mfi_function *f, int i, const mf_tensor *t)
{
  const mfi_meta *m = &f->args[i]->out[0];
  bool ok = t->dtype == m->dtype && (m->ndim < 0 || m->ndim == t->ndim);
  for (int d = 0; ok && m->ndim >= 0 && d < m->ndim; d++)
    ok = m->dims[d] < 0 || m->dims[d] == t->dims[d];
  if (ok) return true;
  char a[128], b[128];
  mfi_shape_str(t->ndim, t->dims, a, sizeof a);
  mfi_shape_str(m->ndim, m->dims, b, sizeof b);
  mfi_op_error(k->status, MF_INVALID_ARGUMENT, k->op,
               "argument %d of '%s' ('%s') got a %s value of shape %s, but it is declared %s "
               "of shape %s (a loop variable that changes shape needs a shape invariant)",
               i + 1, f->name, f->args[i]->name, mf_dtype_name(t->dtype), a,
               mf_dtype_name(m->dtype), b);
  return false;
}

bool mfi_call(mfi_kctx *k, int which, const mfi_function *f, mf_tensor *const *args,
              mf_tensor **results, uint64_t path)
{
  mf_session *sess = k->sess;
  mf_status *s = k->status;
  for (int i = 0; i < f->nres; i++) results[i] = NULL;
  if (which < 0 || which >= MFI_MAX_CALLS || !sess) {
    mfi_op_error(s, MF_INTERNAL, k->op, "cannot call function '%s' here", f->name);
    return false;
  }
  for (int i = 0; i < f->nargs; i++)
    if (!check_arg(k, f, i, args[i])) return false;
  mfi_plan *p = k->calls[which];
  if (!p) {
    mf_output *feeds = malloc(sizeof *feeds * (f->nargs ? f->nargs : 1));
    if (!feeds) {
      mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory calling '%s'", f->name);
      return false;
    }
    for (int i = 0; i < f->nargs; i++) feeds[i] = (mf_output){f->args[i], 0};
    pthread_mutex_lock(&sess->graph->lock);
    mfi_placer pl = placer(sess);
    p = mfi_plan_build(sess->graph, feeds, f->nargs, f->res, f->nres, f->targets, f->ntargets,
                       sess->nondet_key, &pl, true, s);
    pthread_mutex_unlock(&sess->graph->lock);
    free(feeds);
    if (!p) return false;
    k->calls[which] = p;
  }
  if (!ensure_streams(sess, p, s)) return false;
  memcpy(p->uses, p->uses0, sizeof(int) * p->nvals);
  for (int i = 0; i < f->nargs; i++)
    if (!(p->vals[p->feed_val[i]] = mfi_tensor_view(args[i]))) {
      mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory calling '%s'", f->name);
      goto release;
    }
  run_copies(p, p->copies, p->nfeed_copies, s);
  for (int n = 0; n < p->nnodes && mfi_ok(s); n++) run_node(sess, p, n, s, &path);
  for (int i = 0; mfi_ok(s) && i < f->nres; i++)
    results[i] = mf_tensor_retain(p->vals[p->fetch_val[i]]);
release:
  for (int v = 0; v < p->nvals; v++) mf_tensor_delete(p->vals[v]), p->vals[v] = NULL;
  if (mfi_ok(s)) return true;
  for (int i = 0; i < f->nres; i++) mf_tensor_delete(results[i]), results[i] = NULL;
  return false;
}

/* ---------------------------------------------------------------- run */

static uint64_t hash_ints(const int *a, int n)
{
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < n; i++) h = (h ^ (uint32_t)a[i]) * 1099511628211ull;
  return h;
}

/* The signature: counts, then (op id, index) of feeds and fetches, then target ids. */
static int *signature(const mf_output *feeds, int nfeeds, const mf_output *fetches, int nfetches,
                      mf_op *const *targets, int ntargets, int *n)
{
  *n = 3 + 2 * nfeeds + 2 * nfetches + ntargets;
  int *sig = malloc(sizeof(int) * *n), j = 0;
  if (!sig) return NULL;
  sig[j++] = nfeeds, sig[j++] = nfetches, sig[j++] = ntargets;
  for (int i = 0; i < nfeeds; i++) sig[j++] = feeds[i].op->id, sig[j++] = feeds[i].index;
  for (int i = 0; i < nfetches; i++) sig[j++] = fetches[i].op->id, sig[j++] = fetches[i].index;
  for (int i = 0; i < ntargets; i++) sig[j++] = targets[i]->id;
  return sig;
}

static bool check_args(mf_session *sess, const mf_output *feeds, mf_tensor *const *feed_values,
                       int nfeeds, const mf_output *fetches, int nfetches, mf_op *const *targets,
                       int ntargets, mf_status *s)
{
  mf_graph *g = sess->graph;
  for (int i = 0; i < nfetches; i++) {
    mf_output f = fetches[i];
    if (!f.op || f.op->graph != g) {
      mfi_set(s, MF_INVALID_ARGUMENT, "fetch %d is not an element of this session's graph", i + 1);
      return false;
    }
    if (f.index < 0 || f.index >= f.op->nout) {
      mfi_op_error(s, MF_INVALID_ARGUMENT, f.op, "has no output %d to fetch", f.index);
      return false;
    }
  }
  for (int i = 0; i < ntargets; i++)
    if (!targets[i] || targets[i]->graph != g) {
      mfi_set(s, MF_INVALID_ARGUMENT, "target %d is not an element of this session's graph", i + 1);
      return false;
    }
  for (int i = 0; i < nfeeds; i++) {
    mf_output f = feeds[i];
    const mf_tensor *t = feed_values[i];
    if (!f.op || f.op->graph != g) {
      mfi_set(s, MF_INVALID_ARGUMENT, "feed %d is not an element of this session's graph", i + 1);
      return false;
    }
    if (f.index < 0 || f.index >= f.op->nout) {
      mfi_op_error(s, MF_INVALID_ARGUMENT, f.op, "has no output %d to feed", f.index);
      return false;
    }
    if (!t) {
      mfi_op_error(s, MF_INVALID_ARGUMENT, f.op, "fed a NULL value");
      return false;
    }
    const mfi_meta *m = &f.op->out[f.index];
    if (t->dtype != m->dtype) {
      mfi_op_error(s, MF_INVALID_ARGUMENT, f.op, "fed a %s value, but '%s:%d' is %s",
                   mf_dtype_name(t->dtype), f.op->name, f.index, mf_dtype_name(m->dtype));
      return false;
    }
    bool ok = m->ndim < 0 || m->ndim == t->ndim;
    for (int d = 0; ok && m->ndim >= 0 && d < m->ndim; d++)
      ok = m->dims[d] < 0 || m->dims[d] == t->dims[d];
    if (!ok) {
      char a[128], b[128];
      mfi_shape_str(t->ndim, t->dims, a, sizeof a);
      mfi_shape_str(m->ndim, m->dims, b, sizeof b);
      mfi_op_error(s, MF_INVALID_ARGUMENT, f.op,
                   "fed a value of shape %s, but '%s:%d' has shape %s", a, f.op->name, f.index, b);
      return false;
    }
  }
  return true;
}

/* ---------------------------------------------------------------- placement */

/* The session's placement: ops are placed on first need and kept, so a
 * variable never moves. */
static mfi_placer placer(mf_session *sess)
{
  return (mfi_placer){sess->place, sess->cfg.allow_soft_placement != 0,
                      sess->cfg.log_device_placement != 0};
}

static mfi_plan *find_plan(mf_session *sess, const mf_output *feeds, int nfeeds,
                           const mf_output *fetches, int nfetches, mf_op *const *targets,
                           int ntargets, mf_status *s)
{
  int nsig;
  int *sig = signature(feeds, nfeeds, fetches, nfetches, targets, ntargets, &nsig);
  if (!sig) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory");
    return NULL;
  }
  uint64_t h = hash_ints(sig, nsig);
  for (mfi_plan *p = sess->plans; p; p = p->next)
    if (p->hash == h && p->nsig == nsig && memcmp(p->sig, sig, sizeof(int) * nsig) == 0) {
      free(sig);
      return p;
    }
  pthread_mutex_lock(&sess->graph->lock); /* planning reads the op table, which may be growing */
  mfi_placer pl = placer(sess);
  mfi_plan *p = mfi_plan_build(sess->graph, feeds, nfeeds, fetches, nfetches, targets, ntargets,
                               sess->nondet_key, &pl, false, s);
  pthread_mutex_unlock(&sess->graph->lock);
  if (!p) {
    free(sig);
    return NULL;
  }
  p->sig = sig, p->nsig = nsig, p->hash = h;
  p->next = sess->plans;
  sess->plans = p;
  return p;
}

static bool grow_slots(mf_session *sess, mf_status *s)
{
  pthread_mutex_lock(&sess->graph->lock); /* another thread may be adding ops */
  int n = sess->graph->nops;
  pthread_mutex_unlock(&sess->graph->lock);
  if (n <= sess->nslots) return true;
  mf_tensor **v = realloc(sess->vars, sizeof *v * n);
  if (v) sess->vars = v;
  uint64_t *r = v ? realloc(sess->runs, sizeof *r * n) : NULL;
  if (r) sess->runs = r;
  mfi_device **d = r ? realloc(sess->place, sizeof *d * n) : NULL;
  if (!d) {
    mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory");
    return false;
  }
  sess->place = d;
  for (int i = sess->nslots; i < n; i++) sess->vars[i] = NULL, sess->runs[i] = 0, d[i] = NULL;
  sess->nslots = n;
  return true;
}

bool mfi_session_lock(mf_session *sess, mf_status *s)
{
  pthread_mutex_lock(&sess->lock);
  if (!sess->closed) return true;
  pthread_mutex_unlock(&sess->lock);
  mfi_set(s, MF_FAILED_PRECONDITION, "attempted to use a closed session");
  return false;
}

void mfi_session_unlock(mf_session *sess) { pthread_mutex_unlock(&sess->lock); }

/* var is a variable of the session's graph, and the slots cover it. */
static bool check_var(mf_session *sess, const mf_op *var, mf_status *s)
{
  if (var->graph != sess->graph || !(var->def->flags & MFI_VARIABLE)) {
    mfi_set(s, MF_INVALID_ARGUMENT, "'%s' is not a variable of this session's graph", var->name);
    return false;
  }
  return grow_slots(sess, s);
}

mf_tensor **mfi_session_slot(mf_session *sess, const mf_op *var, mf_status *s)
{
  return check_var(sess, var, s) ? &sess->vars[var->id] : NULL;
}

mfi_device *mfi_session_device(mf_session *sess, const mf_op *var, mf_status *s)
{
  if (!check_var(sess, var, s)) return NULL;
  pthread_mutex_lock(&sess->graph->lock);
  mfi_placer pl = placer(sess);
  mfi_device *d = mfi_place(&pl, var, s);
  pthread_mutex_unlock(&sess->graph->lock);
  return d;
}

void mf_session_run(mf_session *sess, const mf_output *feeds, mf_tensor *const *feed_values,
                    int nfeeds, const mf_output *fetches, mf_tensor **fetch_values, int nfetches,
                    mf_op *const *targets, int ntargets, mf_status *s)
{
  mf_status local;
  if (!s) s = &local;
  mfi_clear(s);
  const char *bad = !sess                           ? "sess is NULL"
                    : nfeeds < 0                    ? "nfeeds is negative"
                    : nfetches < 0                  ? "nfetches is negative"
                    : ntargets < 0                  ? "ntargets is negative"
                    : nfeeds > 0 && !feeds          ? "feeds is NULL"
                    : nfeeds > 0 && !feed_values    ? "feed_values is NULL"
                    : nfetches > 0 && !fetches      ? "fetches is NULL"
                    : nfetches > 0 && !fetch_values ? "fetch_values is NULL"
                    : ntargets > 0 && !targets      ? "targets is NULL"
                                                    : NULL;
  if (bad) {
    mfi_set(s, MF_INVALID_ARGUMENT, "mf_session_run: %s", bad);
    return;
  }
  pthread_mutex_lock(&sess->lock);
  if (sess->closed) {
    mfi_set(s, MF_FAILED_PRECONDITION, "attempted to use a closed session");
    goto out;
  }
  if (!check_args(sess, feeds, feed_values, nfeeds, fetches, nfetches, targets, ntargets, s) ||
      !grow_slots(sess, s))
    goto out;
  mfi_plan *p = find_plan(sess, feeds, nfeeds, fetches, nfetches, targets, ntargets, s);
  if (!p || !ensure_streams(sess, p, s)) goto out;
  /* Copies and allocations on this thread follow the run's streams. */
  mfi_set_run_streams(sess->streams);

  memcpy(p->uses, p->uses0, sizeof(int) * p->nvals);
  pthread_mutex_lock(&sess->qlock);
  sess->ntrace = 0;
  pthread_mutex_unlock(&sess->qlock);
  /* Feeds enter as views too: a variable assigned from a feed must not share
   * the caller's tensor object. */
  for (int f = 0; f < nfeeds; f++)
    if (!(p->vals[p->feed_val[f]] = mfi_tensor_view(feed_values[f]))) {
      mfi_set(s, MF_RESOURCE_EXHAUSTED, "out of memory taking feeds");
      goto release;
    }
  run_copies(p, p->copies, p->nfeed_copies, s);
  if (!mfi_ok(s)) goto release;
  /* Fetches hold their own use, so they survive until handed out. */
  if (sess->nworkers > 0 && p->nnodes > 1) {
    for (int k = 0; k < p->nnodes; k++) p->pending[k] = p->nodes[k].npred;
    execute_parallel(sess, p, s);
  } else {
    for (int k = 0; k < p->nnodes && mfi_ok(s); k++) run_node(sess, p, k, s, NULL);
  }
  /* The plan's devices, and any other that a function call used (it made
   * the session's stream there). */
  for (int i = 0, n = mfi_device_count(); i < n; i++) {
    mfi_device *d = mfi_device_at(i);
    bool used = sess->streams[i] != NULL;
    for (int j = 0; !used && j < p->ndevs; j++) used = p->devs[j] == d;
    mf_status tmp;
    mfi_clear(&tmp);
    if (used && !d->ops.synchronize(d, stream_on(sess, d), &tmp) && mfi_ok(s)) *s = tmp;
  }
  /* Each fetch gets its own tensor object, in host memory. */
  for (int i = 0; mfi_ok(s) && i < nfetches; i++) {
    fetch_values[i] = mfi_tensor_to(p->vals[p->fetch_val[i]], mfi_device_cpu(), s);
    if (!fetch_values[i])
      while (i > 0) mf_tensor_delete(fetch_values[--i]);
  }
release:
  for (int v = 0; v < p->nvals; v++) mf_tensor_delete(p->vals[v]), p->vals[v] = NULL;
  finish_trace(sess);
out:
  mfi_set_run_streams(NULL);
  pthread_mutex_unlock(&sess->lock);
}
