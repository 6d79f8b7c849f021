/* Step statistics under threads (scripts/test.sh runs this file under
 * ThreadSanitizer): one session, with an inter-op pool, run from 4 threads
 * at once while they also switch tracing on and off and read the trace.
 * Every run's value is checked, and every record read must be whole: an op
 * of the graph, a start before its end, a thread of the pool. */
#include "check.h"

#include <pthread.h>

#define NTHREADS 4
#define RUNS 60
#define CHAIN 24

typedef struct {
  mf_session *sess;
  mf_graph *g;
  mf_output x, y;
  int id;
} ctx;

static void check_records(const ctx *c, const mf_op_trace *tr, int n)
{
  for (int i = 0; i < n; i++) {
    CHECK(tr[i].op && mf_op_graph(tr[i].op) == c->g);
    CHECK(tr[i].end_ns >= tr[i].start_ns);
    CHECK(tr[i].thread >= 0 && tr[i].thread < NTHREADS);
  }
}

static void *worker(void *arg)
{
  ctx *c = arg;
  mf_status *s = mf_status_new();
  int64_t two = 2;
  mf_op_trace tr[4 * CHAIN];
  for (int r = 0; r < RUNS; r++) {
    mf_session_set_tracing(c->sess, (r + c->id) % 3 != 0);
    float xv[2] = {(float)c->id, (float)r};
    mf_tensor *xt = tensor_f32(1, &two, xv, s), *out = NULL;
    mf_session_run(c->sess, &c->x, &xt, 1, &c->y, &out, 1, NULL, 0, s);
    CHECK_OK(s);
    /* y = x * 2^CHAIN: exact in float32 for these small integers */
    if (out) CHECK(fdata(out)[0] == xv[0] * (1 << CHAIN) && fdata(out)[1] == xv[1] * (1 << CHAIN));
    mf_tensor_delete(out);
    mf_tensor_delete(xt);
    /* Read while the other threads run: the count, then a copy of at most that. */
    int n = mf_session_trace(c->sess, NULL, 0);
    CHECK(n >= 0 && n <= 4 * CHAIN);
    int got = mf_session_trace(c->sess, tr, 4 * CHAIN);
    CHECK(got >= 0 && got <= 4 * CHAIN);
    check_records(c, tr, got < 4 * CHAIN ? got : 4 * CHAIN);
    /* A buffer smaller than the records: only that many are written. */
    mf_op_trace few[2];
    CHECK(mf_session_trace(c->sess, few, 2) >= 0);
  }
  mf_status_delete(s);
  return NULL;
}

int main(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  int64_t two = 2;
  mf_output x = placeholder(g, "x", MF_FLOAT32, 1, &two, "test", s), y = x;
  /* Two branches, so the inter-op pool has parallel work: y = a + b with
   * a and b each x doubled CHAIN-1 times. */
  mf_output a = x, b = x;
  char name[32];
  for (int i = 0; i < CHAIN - 1; i++) {
    snprintf(name, sizeof name, "a%d", i);
    a = binary(g, "Add", name, a, a, s);
    snprintf(name, sizeof name, "b%d", i);
    b = binary(g, "Add", name, b, b, s);
  }
  y = binary(g, "Add", "y", a, b, s);
  CHECK_OK(s);
  mf_session_config c;
  mf_session_config_init(&c);
  c.inter_op_threads = NTHREADS;
  mf_session *sess = mf_session_new(g, &c, s);
  CHECK_OK(s);

  pthread_t th[NTHREADS];
  ctx cx[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    cx[i] = (ctx){sess, g, x, y, i};
    CHECK(pthread_create(&th[i], NULL, worker, &cx[i]) == 0);
  }
  for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);

  /* After the storm: a traced run records every op it ran, in the pool's threads. */
  mf_session_set_tracing(sess, 1);
  float xv[2] = {1, 2};
  mf_tensor *xt = tensor_f32(1, &two, xv, s), *out = NULL;
  mf_session_run(sess, &x, &xt, 1, &y, &out, 1, NULL, 0, s);
  CHECK_OK(s);
  mf_op_trace tr[4 * CHAIN];
  int n = mf_session_trace(sess, tr, 4 * CHAIN);
  CHECK(n == 2 * (CHAIN - 1) + 1); /* the Adds; the fed placeholder does not run */
  check_records(&cx[0], tr, n < 4 * CHAIN ? n : 0);
  mf_tensor_delete(out);
  out = NULL;
  mf_session_set_tracing(sess, 0);
  mf_session_run(sess, &x, &xt, 1, &y, &out, 1, NULL, 0, s);
  CHECK(mf_session_trace(sess, NULL, 0) == 0); /* that run was not traced */
  mf_tensor_delete(out);
  mf_tensor_delete(xt);
  mf_session_delete(sess);
  mf_graph_delete(g);
  mf_status_delete(s);
  return check_report("test_tracing");
}
