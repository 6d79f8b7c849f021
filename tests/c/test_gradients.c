/* Gradients from C: mf_gradients on a small graph, checked against
 * hand-derived values, the error for a non-differentiable path, and a C
 * host training a variable with ApplyGradientDescent. */
#include "check.h"

static double run_scalar(mf_session *sess, mf_output fetch, mf_output feed, mf_tensor *val,
                         mf_status *s)
{
  mf_tensor *out = NULL;
  mf_session_run(sess, &feed, &val, feed.op ? 1 : 0, &fetch, &out, 1, NULL, 0, s);
  if (!out) return NAN;
  double v = fdata(out)[0];
  mf_tensor_delete(out);
  return v;
}

/* y = sum((x * w + b)^2) with x fed: dy/dw = sum(2 (x w + b) x), dy/db = sum(2 (x w + b)). */
static void test_values(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  int64_t d3[1] = {3};
  mf_output x = placeholder(g, "x", MF_FLOAT32, 1, d3, HERE, s);
  float wv[1] = {2.0f}, bv[1] = {-1.0f};
  mf_output w = const_f32(g, "w", 0, NULL, wv, s);
  mf_output b = const_f32(g, "b", 0, NULL, bv, s);
  mf_output r = binary(g, "Add", "r", binary(g, "Mul", "xw", x, w, s), b, s);
  mf_output y = unary(g, "Sum", "y", unary(g, "Square", "sq", r, s), s);
  CHECK_OK(s);

  mf_output xs[2] = {w, b}, dx[2];
  mf_gradients(g, &y, 1, xs, 2, NULL, dx, s);
  CHECK_OK(s);
  CHECK(dx[0].op != NULL && dx[1].op != NULL);
  if (dx[0].op) CHECK(strncmp(mf_op_name(dx[0].op), "gradients/", 10) == 0);

  float xv[3] = {1.0f, -2.0f, 0.5f};
  mf_tensor *xt = tensor_f32(1, d3, xv, s);
  mf_session *sess = mf_session_new(g, NULL, s);
  double gw = 0, gb = 0;
  for (int i = 0; i < 3; i++) {
    double ri = xv[i] * wv[0] + bv[0];
    gw += 2 * ri * xv[i], gb += 2 * ri;
  }
  CHECK_CLOSE(run_scalar(sess, dx[0], x, xt, s), gw);
  CHECK_CLOSE(run_scalar(sess, dx[1], x, xt, s), gb);
  CHECK_OK(s);

  /* an x that y does not depend on gets no gradient */
  mf_output lone = const_f32(g, "lone", 0, NULL, wv, s), dl;
  mf_gradients(g, &y, 1, &lone, 1, NULL, &dl, s);
  CHECK_OK(s);
  CHECK(dl.op == NULL);

  mf_tensor_delete(xt);
  mf_session_delete(sess);
  mf_graph_delete(g);
  mf_status_delete(s);
}

/* A path through an op without a gradient is an error naming its type. */
static void test_error(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  float one[1] = {1.0f};
  mf_op_desc *d = mf_op_begin(g, "VariableV2", "v");
  mf_op_set_attr_type(d, "dtype", MF_FLOAT32);
  mf_op_set_attr_shape(d, "shape", NULL, 0);
  mf_output v = {mf_op_finish(d, s), 0};
  mf_output x = const_f32(g, "x", 0, NULL, one, s);
  mf_output upd = binary(g, "AssignAdd", "upd", v, x, s);
  CHECK_OK(s);
  mf_output dx;
  mf_gradients(g, &upd, 1, &x, 1, NULL, &dx, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "AssignAdd");
  CHECK(dx.op == NULL);
  /* an output index out of range (negative) is an error, not a write out of bounds */
  mf_output bad = {v.op, -1};
  mf_gradients(g, &bad, 1, &x, 1, &x, &dx, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "not an output");
  mf_graph_delete(g);
  mf_status_delete(s);
}

/* Minimise (w - 3)^2 from w = 0 with plain gradient descent, all from C. */
static void test_training(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  float zero[1] = {0.0f}, three[1] = {3.0f}, lr[1] = {0.25f};
  mf_op_desc *d = mf_op_begin(g, "VariableV2", "w");
  mf_op_set_attr_type(d, "dtype", MF_FLOAT32);
  mf_op_set_attr_shape(d, "shape", NULL, 0);
  mf_output w = {mf_op_finish(d, s), 0};
  mf_output init = binary(g, "Assign", "w/Assign", w, const_f32(g, "w/init", 0, NULL, zero, s), s);
  mf_output loss = unary(g, "Square", "loss",
                         binary(g, "Sub", "diff", w, const_f32(g, "t", 0, NULL, three, s), s), s);
  mf_output grad;
  mf_gradients(g, &loss, 1, &w, 1, NULL, &grad, s);
  CHECK_OK(s);
  d = mf_op_begin(g, "ApplyGradientDescent", "train");
  mf_op_add_input(d, w);
  mf_op_add_input(d, const_f32(g, "lr", 0, NULL, lr, s));
  mf_op_add_input(d, grad);
  mf_output train = {mf_op_finish(d, s), 0};
  CHECK_OK(s);

  mf_session *sess = mf_session_new(g, NULL, s);
  mf_session_run(sess, NULL, NULL, 0, NULL, NULL, 0, &init.op, 1, s);
  double expect = 0;
  for (int i = 0; i < 5; i++) {
    double got = run_scalar(sess, train, (mf_output){NULL, 0}, NULL, s);
    expect -= 0.25 * 2 * (expect - 3); /* w -= lr * 2 (w - 3) */
    CHECK_CLOSE(got, expect);
  }
  CHECK_OK(s);
  mf_session_delete(sess);
  mf_graph_delete(g);
  mf_status_delete(s);
}

int main(void)
{
  test_values();
  test_error();
  test_training();
  return check_report("test_gradients");
}
