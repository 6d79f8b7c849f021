/* Control flow from a C host, with no Lua: graph functions, an If whose
 * branches are functions, a While over a run-time trip count with a
 * stacked per-iteration output, gradients through both (mf_gradients), and
 * the errors a C host sees for bad functions. */
#include "check.h"

static mf_output scalar_i32(mf_graph *g, const char *name, int32_t v, mf_status *s)
{
  mf_tensor *t = mf_tensor_new(MF_INT32, 0, NULL, s);
  if (!t) return (mf_output){NULL, 0};
  *(int32_t *)mf_tensor_mutable_data(t, s) = v;
  mf_op_desc *d = mf_op_begin(g, "Const", name);
  mf_op_set_attr_tensor(d, "value", t);
  mf_tensor_delete(t);
  return (mf_output){mf_op_finish(d, s), 0};
}

static double run1(mf_session *sess, mf_output fetch, int nfeeds, const mf_output *feeds,
                   mf_tensor *const *vals, mf_status *s)
{
  mf_tensor *out = NULL;
  mf_session_run(sess, feeds, vals, nfeeds, &fetch, &out, 1, NULL, 0, s);
  if (!out) return NAN;
  double v =
      mf_tensor_dtype(out) == MF_INT32 ? *(const int32_t *)mf_tensor_data(out) : fdata(out)[0];
  mf_tensor_delete(out);
  return v;
}

/* y = p ? x * x : 3 - x, as an If with two functions of one argument. */
static void test_if(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  mf_output x, p, y = if_square_or_sub(g, &x, &p, HERE, s);
  CHECK_OK(s);
  mf_output dx;
  mf_gradients(g, &y, 1, &x, 1, NULL, &dx, s);
  CHECK_OK(s);

  mf_session *sess = mf_session_new(g, NULL, s);
  float xv = 1.5f;
  mf_tensor *xt = tensor_f32(0, NULL, &xv, s);
  mf_tensor *pt = mf_tensor_new(MF_BOOL, 0, NULL, s);
  mf_output feeds[2] = {x, p};
  mf_tensor *vals[2] = {xt, pt};
  for (int b = 0; b < 2; b++) {
    *(uint8_t *)mf_tensor_mutable_data(pt, s) = (uint8_t)b;
    CHECK_CLOSE(run1(sess, y, 2, feeds, vals, s), b ? xv * xv : 3 - xv);
    CHECK_CLOSE(run1(sess, dx, 2, feeds, vals, s), b ? 2 * xv : -1);
    CHECK_OK(s);
  }
  mf_tensor_delete(xt), mf_tensor_delete(pt);
  mf_session_delete(sess);
  mf_graph_delete(g);
  mf_status_delete(s);
}

/* h_{t+1} = h_t * w + x_t over the rows of xs [n, 2]; outputs each h. */
static void test_while(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  int64_t d2[1] = {2}, dn2[2] = {-1, 2};
  mf_output xs = placeholder(g, "xs", MF_FLOAT32, 2, dn2, HERE, s);
  mf_output h0 = placeholder(g, "h0", MF_FLOAT32, 1, d2, HERE, s);
  mf_output w = placeholder(g, "w", MF_FLOAT32, 0, NULL, HERE, s);
  mf_output n = unary(g, "Shape", "n_shape", xs, s); /* rows: its first element */
  /* cond(i, h, w, n) = i < n[0] */
  mf_output ci = placeholder(g, "c/i", MF_INT32, 0, NULL, HERE, s);
  mf_output ch = placeholder(g, "c/h", MF_FLOAT32, 1, d2, HERE, s);
  mf_output cw = placeholder(g, "c/w", MF_FLOAT32, 0, NULL, HERE, s);
  mf_output cn = placeholder(g, "c/n", MF_INT32, 1, (const int64_t[]){-1}, HERE, s);
  mf_op_desc *d = mf_op_begin(g, "GatherV2", "c/rows");
  mf_op_add_input(d, cn);
  mf_op_add_input(d, scalar_i32(g, "c/one", 1, s));
  mf_op_set_attr_int(d, "axis", 1);
  mf_output rows = {mf_op_finish(d, s), 0};
  mf_output cres = binary(g, "Less", "c/less", ci, rows, s);
  /* body(i, h, w, n, x) = i + 1, h * w + x, w, n; out: the new h */
  mf_output bi = placeholder(g, "b/i", MF_INT32, 0, NULL, HERE, s);
  mf_output bh = placeholder(g, "b/h", MF_FLOAT32, 1, d2, HERE, s);
  mf_output bw = placeholder(g, "b/w", MF_FLOAT32, 0, NULL, HERE, s);
  mf_output bn = placeholder(g, "b/n", MF_INT32, 1, (const int64_t[]){-1}, HERE, s);
  mf_output bx = placeholder(g, "b/x", MF_FLOAT32, 1, d2, HERE, s);
  mf_output bi1 = binary(g, "Add", "b/inc", bi, scalar_i32(g, "b/one", 1, s), s);
  mf_output bh1 = binary(g, "Add", "b/h1", binary(g, "Mul", "b/hw", bh, bw, s), bx, s);
  CHECK_OK(s);
  mf_op *cargs[4] = {ci.op, ch.op, cw.op, cn.op}, *bargs[5] = {bi.op, bh.op, bw.op, bn.op, bx.op};
  mf_output bres[5] = {bi1, bh1, bw, bn, bh1};
  CHECK(mf_graph_add_function(g, "cond_fn", 4, cargs, 1, &cres, 0, NULL, s));
  CHECK(mf_graph_add_function(g, "body_fn", 5, bargs, 5, bres, 0, NULL, s));
  CHECK_OK(s);
  d = mf_op_begin(g, "While", "loop");
  mf_op_add_input(d, scalar_i32(g, "i0", 0, s));
  mf_op_add_input(d, h0);
  mf_op_add_input(d, w);
  mf_op_add_input(d, n);
  mf_op_add_input(d, xs);
  mf_op_set_attr_string(d, "cond", "cond_fn");
  mf_op_set_attr_string(d, "body", "body_fn");
  mf_op_set_attr_int(d, "num_slices", 1);
  mf_op_set_attr_int(d, "num_outputs", 1);
  mf_op *loop = mf_op_finish(d, s);
  CHECK_OK(s);
  if (!loop) return;
  CHECK(mf_op_num_outputs(loop) == 1 + 2 * 4 + 1);
  mf_output trips = {loop, 0}, hn = {loop, 2}, hs = {loop, 5};
  mf_output loss = binary(g, "Add", "loss", unary(g, "Sum", "hn_sum", hn, s),
                          unary(g, "Sum", "hs_sum", hs, s), s);
  mf_output wrt[3] = {w, h0, xs}, grads[3];
  mf_gradients(g, &loss, 1, wrt, 3, NULL, grads, s);
  CHECK_OK(s);

  mf_session *sess = mf_session_new(g, NULL, s);
  float xv[6] = {0.5f, -1.0f, 2.0f, 0.25f, -0.75f, 1.5f}, hv[2] = {1.0f, -2.0f}, wv = 0.8f;
  int64_t d32[2] = {3, 2};
  mf_output feeds[3] = {xs, h0, w};
  mf_tensor *vals[3] = {tensor_f32(2, d32, xv, s), tensor_f32(1, d2, hv, s),
                        tensor_f32(0, NULL, &wv, s)};
  /* reference: forward, then dloss/dw by central differences in double */
  double hsum = 0, h[2] = {hv[0], hv[1]};
  for (int t = 0; t < 3; t++)
    for (int k = 0; k < 2; k++) h[k] = h[k] * wv + xv[2 * t + k], hsum += h[k];
  CHECK_CLOSE(run1(sess, trips, 3, feeds, vals, s), 3);
  CHECK(fabs(run1(sess, loss, 3, feeds, vals, s) - (h[0] + h[1] + hsum)) < 1e-4);
  double e = 1e-3, lp = 0, lm = 0;
  for (int sign = -1; sign <= 1; sign += 2) {
    double ww = wv + sign * e, hh[2] = {hv[0], hv[1]}, tot = 0;
    for (int t = 0; t < 3; t++)
      for (int k = 0; k < 2; k++) hh[k] = hh[k] * ww + xv[2 * t + k], tot += hh[k];
    *(sign < 0 ? &lm : &lp) = tot + hh[0] + hh[1];
  }
  CHECK(fabs(run1(sess, grads[0], 3, feeds, vals, s) - (lp - lm) / (2 * e)) < 1e-3);
  /* d loss / d xs[0][0]: x_0 reaches h_1.. h_3 with w^0, w^1, w^2, and the final h3 once more */
  mf_tensor *gx = NULL;
  mf_session_run(sess, feeds, vals, 3, &grads[2], &gx, 1, NULL, 0, s);
  CHECK_OK(s);
  if (gx) {
    CHECK(mf_tensor_ndim(gx) == 2 && mf_tensor_dims(gx)[0] == 3);
    CHECK_CLOSE(fdata(gx)[0], 1 + wv + wv * wv + wv * wv);
    mf_tensor_delete(gx);
  }
  for (int i = 0; i < 3; i++) mf_tensor_delete(vals[i]);
  mf_session_delete(sess);
  mf_graph_delete(g);
  mf_status_delete(s);
}

/* What a C host sees for bad control flow: an unknown function, a branch
 * taking the wrong arguments, a loop variable whose shape the body changes. */
static void test_errors(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  mf_output x = placeholder(g, "x", MF_FLOAT32, 1, (const int64_t[]){-1}, HERE, s);
  mf_output p = placeholder(g, "p", MF_BOOL, 0, NULL, HERE, s);
  mf_op_desc *d = mf_op_begin(g, "If", "bad");
  mf_op_add_input(d, p);
  mf_op_set_attr_string(d, "then_branch", "nope");
  mf_op_set_attr_string(d, "else_branch", "nope");
  CHECK(!mf_op_finish(d, s));
  CHECK_ERR(s, MF_NOT_FOUND, "no function named 'nope'");
  mf_output a = placeholder(g, "f/a", MF_INT32, 0, NULL, HERE, s);
  CHECK(mf_graph_add_function(g, "f", 1, &a.op, 1, &a, 0, NULL, s));
  d = mf_op_begin(g, "If", "bad2");
  mf_op_add_input(d, p);
  mf_op_add_input(d, x);
  mf_op_set_attr_string(d, "then_branch", "f");
  mf_op_set_attr_string(d, "else_branch", "f");
  CHECK(!mf_op_finish(d, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "argument 1 of 'f' is int32");
  /* a loop variable declared {2} that the body grows to {4}: refused when built */
  mf_output c = placeholder(g, "c/v", MF_FLOAT32, 1, (const int64_t[]){2}, HERE, s);
  mf_output t = const_f32(g, "c/t", 0, NULL, (const float[]){1}, s);
  mf_output lt = binary(g, "Less", "c/lt", unary(g, "Sum", "c/sum", c, s), t, s);
  mf_output b = placeholder(g, "b/v", MF_FLOAT32, 1, (const int64_t[]){2}, HERE, s);
  mf_op_desc *cd = mf_op_begin(g, "ConcatV2", "b/grow");
  mf_op_add_input(cd, b);
  mf_op_add_input(cd, b);
  mf_op_set_attr_int(cd, "axis", 1);
  mf_output grown = {mf_op_finish(cd, s), 0};
  CHECK_OK(s);
  CHECK(mf_graph_add_function(g, "c", 1, &c.op, 1, &lt, 0, NULL, s));
  CHECK(mf_graph_add_function(g, "b", 1, &b.op, 1, &grown, 0, NULL, s));
  d = mf_op_begin(g, "While", "grow");
  mf_op_add_input(d, const_f32(g, "v0", 1, (const int64_t[]){2}, (const float[]){-1, -2}, s));
  mf_op_set_attr_string(d, "cond", "c");
  mf_op_set_attr_string(d, "body", "b");
  CHECK(!mf_op_finish(d, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT,
            "loop variable 1 enters as float32 {2} but the body returns float32 {4}");
  mf_graph_delete(g);
  mf_status_delete(s);
}

int main(void)
{
  test_if();
  test_while();
  test_errors();
  return check_report("test_control");
}
