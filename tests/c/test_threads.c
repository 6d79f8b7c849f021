/* The library under threads (scripts/test.sh also runs this file under
 * ThreadSanitizer): concurrent runs of one session from several host
 * threads, a session with an inter-op pool whose kernels use the intra-op
 * team, two sessions of one graph running at once, a graph that grows
 * while it runs, and host threads racing for the team directly. Every value
 * is checked against one computed here: the products take small integers,
 * so float32 gives them exactly whatever the split; the RNN is checked to a
 * tolerance against a double loop. */
#include "../../csrc/internal.h" /* mfi_parallel: the intra-op team itself */
#include "check.h"

#include <pthread.h>

/* x [M, K] times w [K, N]: 2 M N K = 16.8 MFLOP, split over the whole team. */
#define M 256
#define K 64
#define N 512
#define NTHREADS 4
#define RUNS 6

static float xval(int seed, int i, int j) { return (float)((i * 7 + j * 3 + seed) % 5 - 2); }
static float wval(int seed, int i, int j) { return (float)((i * 5 + j + seed) % 3 - 1); }

static mf_tensor *matrix(int seed, int rows, int cols, float (*f)(int, int, int), mf_status *s)
{
  int64_t dims[2] = {rows, cols};
  mf_tensor *t = mf_tensor_new(MF_FLOAT32, 2, dims, s);
  float *d = t ? mf_tensor_mutable_data(t, s) : NULL;
  if (d)
    for (int i = 0; i < rows; i++)
      for (int j = 0; j < cols; j++) d[i * cols + j] = f(seed, i, j);
  return t;
}

static mf_output const_tensor(mf_graph *g, const char *name, mf_tensor *t, mf_status *s)
{
  mf_op_desc *d = mf_op_begin(g, "Const", name);
  mf_op_set_attr_tensor(d, "value", t);
  mf_op_set_attr_type(d, "dtype", mf_tensor_dtype(t));
  mf_output o = {mf_op_finish(d, s), 0};
  return o;
}

static mf_output variable(mf_graph *g, const char *name, int ndim, const int64_t *dims,
                          mf_status *s)
{
  mf_op_desc *d = mf_op_begin(g, "VariableV2", name);
  mf_op_set_attr_type(d, "dtype", MF_FLOAT32);
  mf_op_set_attr_shape(d, "shape", dims, ndim);
  mf_output o = {mf_op_finish(d, s), 0};
  return o;
}

/* Mismatches of y against x(xs) w(ws), in integers. */
static int product_errors(const mf_tensor *y, int xs, int ws)
{
  if (!y || mf_tensor_numel(y) != (int64_t)M * N) return 1;
  const float *v = fdata(y);
  int bad = 0;
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      long acc = 0;
      for (int p = 0; p < K; p++) acc += (long)xval(xs, i, p) * (long)wval(ws, p, j);
      bad += v[i * N + j] != (float)acc;
    }
  return bad;
}

/* ---------------------------------------------------------------- one session, many callers */

typedef struct {
  mf_session *sess;
  mf_output x, y, w;
  mf_op *inc;
  int seed;
} caller;

static void *call_runs(void *arg)
{
  caller *c = arg;
  mf_status *s = mf_status_new();
  mf_tensor *xt = matrix(c->seed, M, K, xval, s);
  CHECK_OK(s);
  for (int r = 0; r < RUNS; r++) {
    mf_output fetches[2] = {c->y, c->w};
    mf_tensor *out[2] = {NULL, NULL};
    mf_session_run(c->sess, &c->x, &xt, 1, fetches, out, 2, &c->inc, 1, s);
    CHECK_OK(s);
    CHECK(product_errors(out[0], c->seed, 0) == 0);
    CHECK(out[1] && fdata(out[1])[1] == wval(0, 0, 1)); /* the variable, shared by every caller */
    mf_tensor_delete(out[0]), mf_tensor_delete(out[1]);
  }
  mf_tensor_delete(xt);
  mf_status_delete(s);
  return NULL;
}

/* mf_session_run from NTHREADS threads at once on one session: each gets its
 * own feed's product, and every AssignAdd of the shared counter lands. */
static void test_one_session_many_callers(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  int64_t xd[2] = {-1, K}, wd[2] = {K, N};
  mf_output x = placeholder(g, "x", MF_FLOAT32, 2, xd, HERE, s);
  mf_output w = variable(g, "w", 2, wd, s);
  mf_tensor *wt = matrix(0, K, N, wval, s);
  mf_output init_w = binary(g, "Assign", "init_w", w, const_tensor(g, "w0", wt, s), s);
  mf_tensor_delete(wt);
  mf_output y = binary(g, "MatMul", "y", x, w, s);
  mf_output count = variable(g, "count", 0, NULL, s);
  float zero = 0, one = 1;
  mf_output init_count =
      binary(g, "Assign", "init_count", count, const_f32(g, "c0", 0, NULL, &zero, s), s);
  mf_output inc = binary(g, "AssignAdd", "inc", count, const_f32(g, "one", 0, NULL, &one, s), s);
  CHECK_OK(s);

  mf_session_config cfg;
  mf_session_config_init(&cfg);
  cfg.intra_op_threads = 4;
  mf_session *sess = mf_session_new(g, &cfg, s);
  CHECK_OK(s);
  mf_op *inits[2] = {init_w.op, init_count.op};
  mf_session_run(sess, NULL, NULL, 0, NULL, NULL, 0, inits, 2, s);
  CHECK_OK(s);

  pthread_t th[NTHREADS];
  caller c[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    c[i] = (caller){sess, x, y, w, inc.op, i + 1};
    CHECK(pthread_create(&th[i], NULL, call_runs, &c[i]) == 0);
  }
  for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);

  mf_tensor *n = NULL;
  mf_session_run(sess, NULL, NULL, 0, &count, &n, 1, NULL, 0, s);
  CHECK_OK(s);
  CHECK(n && fdata(n)[0] == NTHREADS * RUNS);
  mf_tensor_delete(n);
  mf_session_delete(sess);
  mf_graph_delete(g);
  mf_status_delete(s);
}

/* ---------------------------------------------------------------- inter-op pool */

/* RNNSequence: B sequences (enough for its time loop to split by rows over
 * the team) of T steps. */
#define B 8
#define T 16
#define I 8
#define H 32

static float rnn_x(int seed, int i, int j) { return (float)((i * 3 + j + seed) % 7 - 3) / 4; }
static float rnn_w(int seed, int i, int j) { return (float)((i * 11 + j * 5 + seed) % 9 - 4) / 32; }

/* The largest |y - reference| over y [B, T, H]: h_t = tanh(x_t Wx + h_{t-1} Wh + b),
 * h_0 = 0, bias 0.1, in double. */
static double rnn_error(const mf_tensor *y, int seed)
{
  if (!y || mf_tensor_numel(y) != (int64_t)B * T * H) return INFINITY;
  const float *v = fdata(y);
  double worst = 0;
  for (int b = 0; b < B; b++) {
    double h[H] = {0}, hn[H];
    for (int t = 0; t < T; t++) {
      for (int u = 0; u < H; u++) {
        double z = 0.1;
        for (int i = 0; i < I; i++) z += (double)rnn_x(seed, b * T + t, i) * rnn_w(0, i, u);
        for (int i = 0; i < H; i++) z += h[i] * rnn_w(0, I + i, u);
        hn[u] = tanh(z);
        double e = fabs(hn[u] - v[(b * T + t) * H + u]);
        if (!(e <= worst)) worst = e;
      }
      memcpy(h, hn, sizeof h);
    }
  }
  return worst;
}

#define BRANCHES 4

typedef struct {
  mf_graph *g;
  mf_output x[BRANCHES], y[BRANCHES], sum, rx, ry;
} model;

/* BRANCHES independent products, their sum, and an RNN beside them. */
static void build_model(model *m, mf_status *s)
{
  mf_graph *g = m->g = mf_graph_new();
  int64_t xd[2] = {M, K};
  for (int b = 0; b < BRANCHES; b++) {
    char name[16];
    snprintf(name, sizeof name, "x%d", b);
    m->x[b] = placeholder(g, name, MF_FLOAT32, 2, xd, HERE, s);
    mf_tensor *wt = matrix(b, K, N, wval, s);
    snprintf(name, sizeof name, "w%d", b);
    mf_output w = const_tensor(g, name, wt, s);
    mf_tensor_delete(wt);
    snprintf(name, sizeof name, "y%d", b);
    m->y[b] = binary(g, "MatMul", name, m->x[b], w, s);
  }
  mf_op_desc *d = mf_op_begin(g, "AddN", "sum");
  for (int b = 0; b < BRANCHES; b++) mf_op_add_input(d, m->y[b]);
  m->sum = (mf_output){mf_op_finish(d, s), 0};

  int64_t rxd[3] = {B, T, I}, hd[2] = {B, H};
  m->rx = placeholder(g, "rx", MF_FLOAT32, 3, rxd, HERE, s);
  float h0v[B * H] = {0}, bv[H];
  for (int u = 0; u < H; u++) bv[u] = 0.1f;
  mf_tensor *kt = matrix(0, I + H, H, rnn_w, s);
  d = mf_op_begin(g, "RNNSequence", "rnn");
  mf_op_add_input(d, m->rx);
  mf_op_add_input(d, const_f32(g, "h0", 2, hd, h0v, s));
  mf_op_add_input(d, const_tensor(g, "kernel", kt, s));
  int64_t bd[1] = {H};
  mf_op_add_input(d, const_f32(g, "bias", 1, bd, bv, s));
  mf_tensor_delete(kt);
  m->ry = (mf_output){mf_op_finish(d, s), 0};
}

/* One run with feeds made from `seed`; every fetched value checked. */
static void run_model(mf_session *sess, const model *m, int seed)
{
  mf_status *s = mf_status_new();
  mf_output feeds[BRANCHES + 1];
  mf_tensor *fv[BRANCHES + 1];
  for (int b = 0; b < BRANCHES; b++) feeds[b] = m->x[b], fv[b] = matrix(seed + b, M, K, xval, s);
  feeds[BRANCHES] = m->rx;
  int64_t rxd[3] = {B, T, I};
  mf_tensor *rx = matrix(seed, B * T, I, rnn_x, s);
  fv[BRANCHES] = mf_tensor_reshape(rx, 3, rxd, s);
  mf_tensor_delete(rx);
  CHECK_OK(s);
  mf_output fetches[BRANCHES + 2];
  mf_tensor *out[BRANCHES + 2] = {NULL};
  for (int b = 0; b < BRANCHES; b++) fetches[b] = m->y[b];
  fetches[BRANCHES] = m->sum, fetches[BRANCHES + 1] = m->ry;
  mf_session_run(sess, feeds, fv, BRANCHES + 1, fetches, out, BRANCHES + 2, NULL, 0, s);
  CHECK_OK(s);
  for (int b = 0; b < BRANCHES; b++) CHECK(product_errors(out[b], seed + b, b) == 0);
  if (out[BRANCHES]) {
    const float *sum = fdata(out[BRANCHES]);
    int bad = 0;
    for (int64_t i = 0; i < (int64_t)M * N; i++) {
      float e = 0;
      for (int b = 0; b < BRANCHES; b++) e += fdata(out[b])[i];
      bad += sum[i] != e;
    }
    CHECK(bad == 0);
  }
  CHECK(rnn_error(out[BRANCHES + 1], seed) < 1e-4);
  for (int i = 0; i < BRANCHES + 2; i++) mf_tensor_delete(out[i]);
  for (int i = 0; i < BRANCHES + 1; i++) mf_tensor_delete(fv[i]);
  mf_status_delete(s);
}

/* inter_op_threads = 4: the branches run on the pool, each product and the
 * RNN asking the intra-op team for threads at the same time. */
static void test_inter_op_pool(void)
{
  mf_status *s = mf_status_new();
  model m;
  build_model(&m, s);
  CHECK_OK(s);
  mf_session_config cfg;
  mf_session_config_init(&cfg);
  cfg.inter_op_threads = 4;
  cfg.intra_op_threads = 2;
  mf_session *sess = mf_session_new(m.g, &cfg, s);
  CHECK_OK(s);
  for (int r = 0; r < RUNS; r++) run_model(sess, &m, r);
  mf_session_delete(sess);
  mf_graph_delete(m.g);
  mf_status_delete(s);
}

/* ---------------------------------------------------------------- sessions side by side */

typedef struct {
  const model *m;
  int seed;
} side;

static void *side_runs(void *arg)
{
  side *sd = arg;
  mf_status *s = mf_status_new();
  mf_session_config cfg;
  mf_session_config_init(&cfg);
  cfg.inter_op_threads = 2;
  mf_session *sess = mf_session_new(sd->m->g, &cfg, s);
  CHECK_OK(s);
  for (int r = 0; r < RUNS / 2; r++) run_model(sess, sd->m, sd->seed + r);
  mf_session_delete(sess);
  mf_status_delete(s);
  return NULL;
}

/* Two sessions of one graph, each run from its own thread: the graph's
 * constants are shared, and the team is raced for from both. */
static void test_sessions_side_by_side(void)
{
  mf_status *s = mf_status_new();
  model m;
  build_model(&m, s);
  CHECK_OK(s);
  pthread_t th[2];
  side sd[2] = {{&m, 10}, {&m, 20}};
  for (int i = 0; i < 2; i++) CHECK(pthread_create(&th[i], NULL, side_runs, &sd[i]) == 0);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  mf_graph_delete(m.g);
  mf_status_delete(s);
}

/* ---------------------------------------------------------------- a graph growing under a run */

typedef struct {
  mf_graph *g;
  mf_output a;
  mf_op *latest; /* the newest op, published with release/acquire */
  int done;
} growing;

static void *grow_ops(void *arg)
{
  growing *gr = arg;
  mf_status *s = mf_status_new();
  for (int i = 0; i < 300; i++) {
    char name[16];
    snprintf(name, sizeof name, "grown%d", i);
    mf_output o = binary(gr->g, "Add", name, gr->a, gr->a, s);
    CHECK_OK(s);
    __atomic_store_n(&gr->latest, o.op, __ATOMIC_RELEASE);
  }
  __atomic_store_n(&gr->done, 1, __ATOMIC_RELEASE);
  mf_status_delete(s);
  return NULL;
}

/* One thread adds ops while another runs the graph, planning new fetches
 * among them (the op table is reallocated as it grows). */
static void test_graph_growing_under_runs(void)
{
  mf_status *s = mf_status_new();
  growing gr = {mf_graph_new(), {NULL, 0}, NULL, 0};
  int64_t d3[1] = {3};
  float av[3] = {1, 2, 3};
  gr.a = const_f32(gr.g, "a", 1, d3, av, s);
  mf_output y = binary(gr.g, "Mul", "y", gr.a, gr.a, s);
  CHECK_OK(s);
  mf_session *sess = mf_session_new(gr.g, NULL, s);
  pthread_t th;
  CHECK(pthread_create(&th, NULL, grow_ops, &gr) == 0);
  int bad = 0;
  while (!__atomic_load_n(&gr.done, __ATOMIC_ACQUIRE)) {
    mf_op *latest = __atomic_load_n(&gr.latest, __ATOMIC_ACQUIRE);
    mf_output fetches[2] = {y, {latest, 0}};
    mf_tensor *out[2] = {NULL, NULL};
    mf_session_run(sess, NULL, NULL, 0, fetches, out, latest ? 2 : 1, NULL, 0, s);
    bad += mf_status_code(s) != MF_OK || fdata(out[0])[2] != 9 || (latest && fdata(out[1])[2] != 6);
    mf_tensor_delete(out[0]), mf_tensor_delete(out[1]);
  }
  pthread_join(th, NULL);
  CHECK(bad == 0);
  mf_session_delete(sess);
  mf_graph_delete(gr.g);
  mf_status_delete(s);
}

/* ---------------------------------------------------------------- the team, raced */

#define CELLS 4096

typedef struct {
  int cells[CELLS];
  int nested_bad; /* nested regions that split while their outer one held the team */
} region;

typedef struct {
  int calls, nparts;
} inner_count;

/* Part i of n adds 1 to its share of the cells. */
static void bump(void *ctx, int i, int n)
{
  region *r = ctx;
  for (int c = CELLS * i / n; c < CELLS * (i + 1) / n; c++) r->cells[c]++;
}

static void count_part(void *ctx, int i, int n)
{
  (void)i;
  inner_count *ic = ctx;
  __atomic_fetch_add(&ic->calls, 1, __ATOMIC_RELAXED);
  __atomic_store_n(&ic->nparts, n, __ATOMIC_RELAXED);
}

/* As bump, after a region of its own: every part of that one runs, and
 * while this region holds the team (n > 1) it runs whole on this thread. */
static void bump_nested(void *ctx, int i, int n)
{
  region *r = ctx;
  inner_count ic = {0, 0};
  mfi_parallel(4, count_part, &ic);
  if (ic.calls != ic.nparts || (n > 1 && ic.nparts != 1))
    __atomic_fetch_add(&r->nested_bad, 1, __ATOMIC_RELAXED);
  bump(ctx, i, n);
}

static void *race_team(void *arg)
{
  (void)arg;
  region *r = calloc(1, sizeof *r);
  int rounds = 200;
  for (int k = 0; k < rounds; k++) mfi_parallel(4, k % 2 ? bump_nested : bump, r);
  int bad = 0;
  for (int c = 0; c < CELLS; c++) bad += r->cells[c] != rounds;
  CHECK(bad == 0);
  CHECK(r->nested_bad == 0);
  free(r);
  return NULL;
}

/* Three host threads start regions back to back: whoever holds the team
 * splits, the others run whole; every cell is covered once per region. */
static void test_team_raced(void)
{
  pthread_t th[3];
  for (int i = 0; i < 3; i++) CHECK(pthread_create(&th[i], NULL, race_team, NULL) == 0);
  for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
}

int main(void)
{
  mfi_parallel_set_threads(4); /* more parts than CPUs is allowed, and races more */
  fprintf(stderr, "float32 GEMM kernel: %s\n", mf_cpu_gemm_kernel());
  test_team_raced();
  test_one_session_many_callers();
  test_inter_op_pool();
  test_sessions_side_by_side();
  test_graph_growing_under_runs();
  return check_report("test_threads");
}
