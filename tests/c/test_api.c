/* The public C API without Lua: graph building, runs with feeds and fetches,
 * variables, errors through mf_status, ownership, borrowed tensors and
 * copy-on-write. A tiny harness: a failing check prints file:line, and the
 * program exits nonzero if any check failed. */
#include "check.h"

/* ---------------------------------------------------------------- tests */

static void test_basics(void)
{
  CHECK(strcmp(mf_version(), MF_VERSION_STRING) == 0);
  CHECK(MF_VERSION_MAJOR == 0 && MF_VERSION_MINOR == 1);
  CHECK(strcmp(mf_dtype_name(MF_FLOAT32), "float32") == 0);
  CHECK(strcmp(mf_dtype_name(MF_INT64), "int64") == 0);
  mf_dtype dt = MF_NUM_DTYPES;
  CHECK(mf_dtype_from_name("float64", &dt) == 1 && dt == MF_FLOAT64);
  CHECK(mf_dtype_from_name("float99", &dt) == 0);
  CHECK(mf_dtype_size(MF_FLOAT32) == 4 && mf_dtype_size(MF_FLOAT64) == 8 &&
        mf_dtype_size(MF_INT32) == 4 && mf_dtype_size(MF_UINT8) == 1);
  CHECK(mf_op_type_exists("Add") && mf_op_type_exists("MatMul") && mf_op_type_exists("Sum"));
  CHECK(!mf_op_type_exists("NoSuchOp"));

  /* every delete function accepts NULL */
  mf_status_delete(NULL);
  mf_tensor_delete(NULL);
  mf_graph_delete(NULL);
  mf_session_delete(NULL);

  mf_status *s = mf_status_new();
  CHECK(mf_status_code(s) == MF_OK && strcmp(mf_status_message(s), "") == 0);
  mf_status_set(s, MF_NOT_FOUND, "gone");
  CHECK_ERR(s, MF_NOT_FOUND, "gone");
  mf_status_set(s, MF_OK, "ignored");
  CHECK(mf_status_code(s) == MF_OK && strcmp(mf_status_message(s), "") == 0);

  int64_t dims[2] = {2, 3};
  mf_tensor *t = mf_tensor_new(MF_INT32, 2, dims, s);
  CHECK_OK(s);
  CHECK(mf_tensor_dtype(t) == MF_INT32 && mf_tensor_ndim(t) == 2);
  CHECK(mf_tensor_dims(t)[0] == 2 && mf_tensor_dims(t)[1] == 3);
  CHECK(mf_tensor_numel(t) == 6 && mf_tensor_nbytes(t) == 24);
  const int32_t *z = mf_tensor_data(t);
  int zero = 1;
  for (int i = 0; i < 6; i++) zero &= z[i] == 0;
  CHECK(zero); /* owned memory starts zero-filled */
  mf_tensor_delete(t);
  mf_status_delete(s);
}

/* Const, Placeholder, Add, MatMul and Sum with feeds and fetches. */
static void test_run(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  int64_t d22[2] = {2, 2};
  float av[4] = {1, 2, 3, 4}, bv[4] = {5, 6, 7, 8};
  mf_output a = const_f32(g, "a", 2, d22, av, s);
  CHECK_OK(s);
  mf_output b = const_f32(g, "b", 2, d22, bv, s);
  CHECK_OK(s);
  int64_t pd[2] = {-1, 2};
  mf_output x = placeholder(g, "x", MF_FLOAT32, 2, pd, HERE, s);
  CHECK_OK(s);
  CHECK(mf_op_output_ndim(x.op, 0) == 2 && mf_op_output_dims(x.op, 0)[0] == -1);

  mf_output mm = binary(g, "MatMul", "mm", a, b, s); /* [[19,22],[43,50]] */
  CHECK_OK(s);
  CHECK(mf_op_output_dtype(mm.op, 0) == MF_FLOAT32);
  CHECK(mf_op_output_ndim(mm.op, 0) == 2 && mf_op_output_dims(mm.op, 0)[1] == 2);

  mf_op_desc *dt = mf_op_begin(g, "MatMul", "mm_t");
  mf_op_add_input(dt, a);
  mf_op_add_input(dt, b);
  mf_op_set_attr_bool(dt, "transpose_b", 1); /* a * b^T = [[17,23],[39,53]] */
  mf_output mmt = {mf_op_finish(dt, s), 0};
  CHECK_OK(s);

  mf_output sum = binary(g, "Add", "sum", mm, x, s); /* broadcast {2,2} + {-1,2} */
  CHECK_OK(s);
  CHECK(strcmp(mf_op_name(sum.op), "sum") == 0 && strcmp(mf_op_type(sum.op), "Add") == 0);
  CHECK(mf_op_num_inputs(sum.op) == 2 && mf_op_input(sum.op, 0).op == mm.op);
  CHECK(mf_op_graph(sum.op) == g);
  CHECK(mf_graph_op_by_name(g, "sum") == sum.op);
  CHECK(mf_graph_op_by_name(g, "nope") == NULL);
  CHECK(mf_graph_num_ops(g) == 6 && mf_graph_op(g, 0) == a.op && mf_op_id(sum.op) == 5);

  int64_t axis2 = 2, axis1 = 1;
  mf_op_desc *rd = mf_op_begin(g, "Sum", "rowsum");
  mf_op_add_input(rd, sum);
  mf_op_set_attr_ints(rd, "axis", &axis2, 1);
  mf_output rowsum = {mf_op_finish(rd, s), 0};
  CHECK_OK(s);
  rd = mf_op_begin(g, "Sum", "colsum");
  mf_op_add_input(rd, a);
  mf_op_set_attr_ints(rd, "axis", &axis1, 1);
  mf_op_set_attr_bool(rd, "keep_dims", 1);
  mf_output colsum = {mf_op_finish(rd, s), 0};
  CHECK_OK(s);
  CHECK(mf_op_output_ndim(colsum.op, 0) == 2 && mf_op_output_dims(colsum.op, 0)[0] == 1);

  char buf[64];
  int n = mf_graph_unique_name(g, "sum", buf, sizeof buf);
  CHECK(n == 5 && strcmp(buf, "sum_1") == 0);

  mf_session_config cfg;
  mf_session_config_init(&cfg);
  mf_session *sess = mf_session_new(g, &cfg, s);
  CHECK_OK(s);

  float xv[4] = {0.5f, -1, 10, 100};
  mf_tensor *xt = tensor_f32(2, d22, xv, s);
  mf_tensor *fetched[5] = {0};
  mf_output fetches[5] = {mm, mmt, sum, rowsum, colsum};
  mf_session_run(sess, &x, &xt, 1, fetches, fetched, 5, NULL, 0, s);
  CHECK_OK(s);
  if (mf_status_code(s) == MF_OK) {
    const float *m = fdata(fetched[0]);
    CHECK(m[0] == 19 && m[1] == 22 && m[2] == 43 && m[3] == 50);
    const float *mt = fdata(fetched[1]);
    CHECK(mt[0] == 17 && mt[1] == 23 && mt[2] == 39 && mt[3] == 53);
    const float *sm = fdata(fetched[2]);
    CHECK(sm[0] == 19.5f && sm[1] == 21 && sm[2] == 53 && sm[3] == 150);
    CHECK(mf_tensor_ndim(fetched[3]) == 1 && mf_tensor_dims(fetched[3])[0] == 2);
    const float *rs = fdata(fetched[3]);
    CHECK(rs[0] == 40.5f && rs[1] == 203);
    CHECK(mf_tensor_ndim(fetched[4]) == 2 && mf_tensor_dims(fetched[4])[0] == 1 &&
          mf_tensor_dims(fetched[4])[1] == 2);
    const float *cs = fdata(fetched[4]);
    CHECK(cs[0] == 4 && cs[1] == 6);
  }
  for (int i = 0; i < 5; i++) mf_tensor_delete(fetched[i]); /* the caller owns fetches */

  /* the feed stays valid and unchanged; run again with one row (batch 1) */
  CHECK(fdata(xt)[0] == 0.5f && fdata(xt)[3] == 100);
  int64_t d12[2] = {1, 2};
  float x1[2] = {1, 2};
  mf_tensor *xt1 = tensor_f32(2, d12, x1, s);
  mf_tensor *out = NULL;
  mf_session_run(sess, &x, &xt1, 1, &sum, &out, 1, NULL, 0, s);
  CHECK_OK(s);
  if (out) {
    const float *o = fdata(out);
    CHECK(o[0] == 20 && o[1] == 24 && o[2] == 44 && o[3] == 52);
  }
  mf_tensor_delete(out);
  mf_tensor_delete(xt1);

  /* tracing records the ops that ran */
  mf_session_set_tracing(sess, 1);
  out = NULL;
  mf_session_run(sess, &x, &xt, 1, &rowsum, &out, 1, NULL, 0, s);
  CHECK_OK(s);
  mf_op_trace tr[16];
  int ntr = mf_session_trace(sess, tr, 16);
  CHECK(ntr > 0 && ntr <= 16);
  int saw_mm = 0, saw_rowsum = 0, saw_mmt = 0;
  for (int i = 0; i < ntr; i++) {
    saw_mm |= tr[i].op == mm.op;
    saw_rowsum |= tr[i].op == rowsum.op;
    saw_mmt |= tr[i].op == mmt.op;
    CHECK(tr[i].end_ns >= tr[i].start_ns && tr[i].thread == 0);
  }
  CHECK(saw_mm && saw_rowsum && !saw_mmt); /* only the needed subgraph runs */
  mf_tensor_delete(out);

  /* the session keeps the graph alive */
  mf_graph_delete(g);
  out = NULL;
  mf_session_run(sess, &x, &xt, 1, &rowsum, &out, 1, NULL, 0, s);
  CHECK_OK(s);
  CHECK(out && fdata(out)[0] == 40.5f);
  mf_tensor_delete(out);
  mf_tensor_delete(xt);
  mf_session_delete(sess);
  mf_status_delete(s);
}

static void test_errors(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  int64_t d2[1] = {2}, d3[1] = {3};
  float v2[2] = {1, 2}, v3[3] = {1, 2, 3};
  mf_output a = const_f32(g, "a", 1, d2, v2, s);
  mf_output b = const_f32(g, "b", 1, d3, v3, s);
  CHECK_OK(s);
  int nops = mf_graph_num_ops(g);

  /* a shape mismatch at finish names the op and where it was created */
  mf_op_desc *d = mf_op_begin(g, "Add", "bad_add");
  mf_op_add_input(d, a);
  mf_op_add_input(d, b);
  mf_op_set_location(d, "model.lua:42");
  mf_op *bad = mf_op_finish(d, s);
  CHECK(bad == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "Add 'bad_add'");
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "model.lua:42");
  CHECK(mf_graph_num_ops(g) == nops && mf_graph_op_by_name(g, "bad_add") == NULL);

  /* the status is cleared by the next success */
  mf_output ok = binary(g, "Add", "good_add", a, a, s);
  CHECK_OK(s);
  CHECK(strcmp(mf_status_message(s), "") == 0);

  /* matmul inner dimensions */
  int64_t d23[2] = {2, 3};
  float m6[6] = {1, 2, 3, 4, 5, 6};
  mf_output m = const_f32(g, "m", 2, d23, m6, s);
  mf_output bad_mm = binary(g, "MatMul", "bad_mm", m, m, s);
  CHECK(bad_mm.op == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "MatMul 'bad_mm'");

  /* a bad axis (axes count from 1) */
  int64_t axis0 = 0;
  d = mf_op_begin(g, "Sum", "bad_sum");
  mf_op_add_input(d, m);
  mf_op_set_attr_ints(d, "axis", &axis0, 1);
  CHECK(mf_op_finish(d, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "Sum 'bad_sum'");

  /* an unknown op type and a duplicate name */
  d = mf_op_begin(g, "NoSuchOp", "x");
  CHECK(mf_op_finish(d, s) == NULL);
  CHECK(mf_status_code(s) != MF_OK && strstr(mf_status_message(s), "NoSuchOp"));
  d = mf_op_begin(g, "Add", "good_add");
  mf_op_add_input(d, a);
  mf_op_add_input(d, a);
  CHECK(mf_op_finish(d, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "good_add");

  /* a missing feed names the placeholder */
  mf_output p = placeholder(g, "feed_me", MF_FLOAT32, 1, d2, "input.lua:7", s);
  CHECK_OK(s);
  mf_output pa = binary(g, "Add", "pa", p, a, s);
  CHECK_OK(s);
  mf_session *sess = mf_session_new(g, NULL, s);
  CHECK_OK(s);
  mf_tensor *out = (mf_tensor *)(intptr_t)1; /* must stay untouched on failure */
  mf_session_run(sess, NULL, NULL, 0, &pa, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "Placeholder 'feed_me'");
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "input.lua:7");
  CHECK(out == (mf_tensor *)(intptr_t)1);

  /* feeds of the wrong shape or dtype name the placeholder */
  mf_tensor *f3 = tensor_f32(1, d3, v3, s);
  out = NULL;
  mf_session_run(sess, &p, &f3, 1, &pa, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "Placeholder 'feed_me'");
  CHECK(out == NULL);
  mf_tensor *i2 = mf_tensor_new(MF_INT32, 1, d2, s);
  mf_session_run(sess, &p, &i2, 1, &pa, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "Placeholder 'feed_me'");
  CHECK(out == NULL);
  mf_tensor_delete(i2);
  mf_tensor_delete(f3);

  /* and a correct run still works */
  mf_tensor *f2 = tensor_f32(1, d2, v2, s);
  mf_output both[2] = {pa, ok};
  mf_tensor *vals[2] = {0};
  mf_session_run(sess, &p, &f2, 1, both, vals, 2, NULL, 0, s);
  CHECK_OK(s);
  CHECK(vals[0] && fdata(vals[0])[0] == 2 && fdata(vals[0])[1] == 4);
  CHECK(vals[1] && fdata(vals[1])[0] == 2 && fdata(vals[1])[1] == 4);
  mf_tensor_delete(vals[0]);
  mf_tensor_delete(vals[1]);

  /* an integer division by zero at run time */
  int64_t d1[1] = {1};
  mf_tensor *seven = mf_tensor_new(MF_INT32, 1, d1, s), *zero = mf_tensor_new(MF_INT32, 1, d1, s);
  *(int32_t *)mf_tensor_mutable_data(seven, s) = 7;
  mf_op_desc *cd = mf_op_begin(g, "Const", "seven");
  mf_op_set_attr_tensor(cd, "value", seven);
  mf_op_set_attr_type(cd, "dtype", MF_INT32);
  mf_output c7 = {mf_op_finish(cd, s), 0};
  cd = mf_op_begin(g, "Const", "zero");
  mf_op_set_attr_tensor(cd, "value", zero);
  mf_op_set_attr_type(cd, "dtype", MF_INT32);
  mf_output c0 = {mf_op_finish(cd, s), 0};
  mf_tensor_delete(seven);
  mf_tensor_delete(zero);
  CHECK_OK(s);
  mf_output div = binary(g, "Div", "int_div", c7, c0, s);
  CHECK_OK(s);
  out = NULL;
  mf_session_run(sess, NULL, NULL, 0, &div, &out, 1, NULL, 0, s);
  CHECK(mf_status_code(s) != MF_OK && strstr(mf_status_message(s), "Div 'int_div'"));
  CHECK(out == NULL);

  /* a closed session fails cleanly, twice */
  mf_session_close(sess);
  mf_session_run(sess, &p, &f2, 1, &pa, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_FAILED_PRECONDITION, "closed session");
  CHECK(out == NULL);
  mf_session_close(sess);
  mf_session_run(sess, NULL, NULL, 0, &ok, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_FAILED_PRECONDITION, "closed session");
  mf_session_delete(sess);
  mf_tensor_delete(f2);

  /* a fetch from another graph */
  mf_graph *g2 = mf_graph_new();
  mf_session *s2 = mf_session_new(g2, NULL, s);
  out = NULL;
  mf_session_run(s2, NULL, NULL, 0, &ok, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "graph");
  CHECK(out == NULL);
  /* an input from another graph */
  d = mf_op_begin(g2, "Add", "cross");
  mf_op_add_input(d, a);
  mf_op_add_input(d, a);
  CHECK(mf_op_finish(d, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "Add 'cross'");
  mf_session_delete(s2);
  mf_graph_delete(g2);
  mf_graph_delete(g);
  mf_status_delete(s);
}

/* Each attribute's kind is checked when the op is created; nothing is
 * coerced (a float seed used to be truncated when the session planned). */
static void test_attribute_kinds(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  int64_t d2[1] = {2}, d12[2] = {1, 2};
  float v2[2] = {1, 2};
  mf_output a = const_f32(g, "a", 1, d2, v2, s);
  CHECK_OK(s);
  int nops = mf_graph_num_ops(g);

  mf_op_desc *d = mf_op_begin(g, "ConcatV2", "cat");
  mf_op_add_input(d, a);
  mf_op_add_input(d, a);
  mf_op_set_attr_float(d, "axis", 1.0);
  mf_op_set_location(d, "model.lua:9");
  CHECK(mf_op_finish(d, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT,
            "ConcatV2 'cat' (created at model.lua:9): attribute 'axis' must be an integer, got a "
            "float");

  d = mf_op_begin(g, "RandomNormal", "noise");
  mf_op_set_attr_shape(d, "shape", d2, 1);
  mf_op_set_attr_float(d, "seed", 1.5);
  CHECK(mf_op_finish(d, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT,
            "RandomNormal 'noise': attribute 'seed' must be an integer, got a float");

  d = mf_op_begin(g, "RandomNormal", "noise");
  mf_op_set_attr_shape(d, "shape", d2, 1);
  mf_op_set_attr_int(d, "stddev", 2);
  CHECK(mf_op_finish(d, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "attribute 'stddev' must be a float, got an integer");

  d = mf_op_begin(g, "MatMul", "mm");
  mf_op_add_input(d, a);
  mf_op_add_input(d, a);
  mf_op_set_attr_int(d, "transpose_b", 1);
  CHECK(mf_op_finish(d, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "MatMul 'mm': attribute 'transpose_b' must be a bool");

  d = mf_op_begin(g, "Cast", "cast");
  mf_op_add_input(d, a);
  mf_op_set_attr_int(d, "DstT", MF_INT32);
  CHECK(mf_op_finish(d, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "Cast 'cast': attribute 'DstT' must be a type, got an integer");
  d = mf_op_begin(g, "Cast", "cast");
  mf_op_add_input(d, a);
  mf_op_set_attr_type(d, "DstT", (mf_dtype)99);
  CHECK(mf_op_finish(d, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "attribute 'DstT' is not a valid type (99)");
  d = mf_op_begin(g, "Cast", "cast");
  mf_op_add_input(d, a);
  CHECK(mf_op_finish(d, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "Cast 'cast': needs a type attribute 'DstT'");
  CHECK(mf_graph_num_ops(g) == nops);

  /* the right kinds work */
  d = mf_op_begin(g, "ConcatV2", "cat");
  mf_op_add_input(d, a);
  mf_op_add_input(d, a);
  mf_op_set_attr_int(d, "axis", 1);
  mf_op *cat = mf_op_finish(d, s);
  CHECK_OK(s);
  CHECK(cat && mf_op_output_ndim(cat, 0) == 1 && mf_op_output_dims(cat, 0)[0] == 4);
  d = mf_op_begin(g, "RandomNormal", "noise");
  mf_op_set_attr_shape(d, "shape", d12, 2);
  mf_op_set_attr_int(d, "seed", 1);
  mf_op_set_attr_float(d, "stddev", 2);
  CHECK(mf_op_finish(d, s) != NULL);
  CHECK_OK(s);
  mf_graph_delete(g);
  mf_status_delete(s);
}

static void test_variables(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  int64_t d2[1] = {2};
  float init[2] = {1, 2};
  mf_op_desc *d = mf_op_begin(g, "VariableV2", "v");
  mf_op_set_attr_type(d, "dtype", MF_FLOAT32);
  mf_op_set_attr_shape(d, "shape", d2, 1);
  mf_op_set_location(d, "vars.lua:3");
  mf_output v = {mf_op_finish(d, s), 0};
  CHECK_OK(s);
  mf_output iv = const_f32(g, "init", 1, d2, init, s);
  mf_output assign = binary(g, "Assign", "assign", v, iv, s);
  CHECK_OK(s);
  mf_output delta = placeholder(g, "delta", MF_FLOAT32, 1, d2, "", s);
  mf_output add = binary(g, "AssignAdd", "add", v, delta, s);
  CHECK_OK(s);
  mf_output twice = binary(g, "Add", "twice", v, v, s);
  CHECK_OK(s);

  mf_session *sess = mf_session_new(g, NULL, s);
  mf_tensor *out = NULL;
  mf_session_run(sess, NULL, NULL, 0, &twice, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_FAILED_PRECONDITION, "VariableV2 'v'");
  CHECK_ERR(s, MF_FAILED_PRECONDITION, "vars.lua:3");
  CHECK(out == NULL);

  /* Assign as a target */
  mf_session_run(sess, NULL, NULL, 0, NULL, NULL, 0, &assign.op, 1, s);
  CHECK_OK(s);
  mf_session_run(sess, NULL, NULL, 0, &v, &out, 1, NULL, 0, s);
  CHECK_OK(s);
  mf_tensor *held = out; /* a fetched value of the variable */
  CHECK(held && fdata(held)[0] == 1 && fdata(held)[1] == 2);

  float dv[2] = {10, 100};
  mf_tensor *dt = tensor_f32(1, d2, dv, s);
  for (int step = 1; step <= 3; step++) {
    out = NULL;
    mf_session_run(sess, &delta, &dt, 1, &add, &out, 1, NULL, 0, s);
    CHECK_OK(s);
    CHECK(out && fdata(out)[0] == 1 + 10 * step && fdata(out)[1] == 2 + 100 * step);
    mf_tensor_delete(out);
  }
  /* the earlier fetch did not change (copy-on-write) */
  CHECK(fdata(held)[0] == 1 && fdata(held)[1] == 2);
  /* writing through the fetched value does not change the variable */
  float *w = mf_tensor_mutable_data(held, s);
  CHECK_OK(s);
  if (w) w[0] = -999;
  out = NULL;
  mf_session_run(sess, NULL, NULL, 0, &twice, &out, 1, NULL, 0, s);
  CHECK_OK(s);
  CHECK(out && fdata(out)[0] == 62 && fdata(out)[1] == 604);
  mf_tensor_delete(out);
  /* a fetched value, written, then the variable read again */
  mf_session_run(sess, NULL, NULL, 0, &v, &out, 1, NULL, 0, s);
  CHECK_OK(s);
  float *w2 = out ? mf_tensor_mutable_data(out, s) : NULL;
  if (w2) w2[1] = 12345;
  mf_tensor *again = NULL;
  mf_session_run(sess, NULL, NULL, 0, &v, &again, 1, NULL, 0, s);
  CHECK(again && fdata(again)[0] == 31 && fdata(again)[1] == 302);
  mf_tensor_delete(again);
  mf_tensor_delete(out);
  mf_tensor_delete(held);

  /* each session has its own values */
  mf_session *other = mf_session_new(g, NULL, s);
  out = NULL;
  mf_session_run(other, NULL, NULL, 0, &v, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_FAILED_PRECONDITION, "VariableV2 'v'");
  mf_session_run(other, NULL, NULL, 0, &assign, &out, 1, NULL, 0, s);
  CHECK_OK(s);
  CHECK(out && fdata(out)[0] == 1 && fdata(out)[1] == 2);
  mf_tensor_delete(out);
  mf_session_delete(other);

  /* a closed session releases the variables; later runs fail */
  mf_session_close(sess);
  out = NULL;
  mf_session_run(sess, NULL, NULL, 0, &v, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_FAILED_PRECONDITION, "closed session");
  CHECK(out == NULL);
  mf_tensor_delete(dt);
  mf_session_delete(sess);
  mf_graph_delete(g);
  mf_status_delete(s);
}

static int dealloc_calls;
static void *dealloc_data, *dealloc_arg;
static void count_dealloc(void *data, void *arg)
{
  dealloc_calls++;
  dealloc_data = data;
  dealloc_arg = arg;
}

static void test_borrowed_and_cow(void)
{
  mf_status *s = mf_status_new();
  int64_t d3[1] = {3};

  /* a borrowed tensor used as a Const and as a feed: dealloc runs once, at the end */
  float *mem = malloc(sizeof(float) * 3);
  mem[0] = 1;
  mem[1] = 2;
  mem[2] = 3;
  int marker;
  dealloc_calls = 0;
  mf_tensor *bt = mf_tensor_new_borrowed(MF_FLOAT32, 1, d3, mem, count_dealloc, &marker, s);
  CHECK_OK(s);
  CHECK(mf_tensor_data(bt) == mem);
  mf_graph *g = mf_graph_new();
  mf_op_desc *d = mf_op_begin(g, "Const", "borrowed");
  mf_op_set_attr_tensor(d, "value", bt);
  mf_op_set_attr_type(d, "dtype", MF_FLOAT32);
  mf_output c = {mf_op_finish(d, s), 0};
  CHECK_OK(s);
  mf_output p = placeholder(g, "p", MF_FLOAT32, 1, d3, "", s);
  mf_output sum = binary(g, "Add", "sum", c, p, s);
  CHECK_OK(s);
  mf_session *sess = mf_session_new(g, NULL, s);
  mf_tensor *out = NULL;
  mf_session_run(sess, &p, &bt, 1, &sum, &out, 1, NULL, 0, s);
  CHECK_OK(s);
  CHECK(out && fdata(out)[0] == 2 && fdata(out)[1] == 4 && fdata(out)[2] == 6);
  mf_tensor_delete(out);

  /* a fetched Const over borrowed memory: writing copies, the memory stays */
  out = NULL;
  mf_session_run(sess, NULL, NULL, 0, &c, &out, 1, NULL, 0, s);
  CHECK_OK(s);
  float *w = out ? mf_tensor_mutable_data(out, s) : NULL;
  CHECK_OK(s);
  CHECK(w != NULL && w != mem);
  if (w) w[0] = 50;
  CHECK(mem[0] == 1);
  mf_tensor_delete(out);

  /* the caller's borrowed tensor: writable data is a copy too */
  mf_tensor *view = mf_tensor_retain(bt);
  CHECK(view == bt);
  mf_tensor_delete(view);
  CHECK(dealloc_calls == 0);
  mf_tensor_delete(bt); /* the graph still holds the memory */
  CHECK(dealloc_calls == 0);
  mf_session_run(sess, NULL, NULL, 0, &c, &out, 1, NULL, 0, s);
  CHECK_OK(s);
  CHECK(out && fdata(out)[2] == 3);
  mf_tensor_delete(out);
  mf_session_delete(sess);
  CHECK(dealloc_calls == 0);
  mf_graph_delete(g);
  CHECK(dealloc_calls == 1 && dealloc_data == mem && dealloc_arg == &marker);
  free(mem);

  /* a borrowed tensor with no dealloc, written through mutable_data */
  float local[3] = {7, 8, 9};
  mf_tensor *lt = mf_tensor_new_borrowed(MF_FLOAT32, 1, d3, local, NULL, NULL, s);
  CHECK_OK(s);
  float *lw = mf_tensor_mutable_data(lt, s);
  CHECK(lw && lw != local);
  if (lw) lw[0] = 70;
  CHECK(local[0] == 7 && fdata(lt)[0] == 70 && fdata(lt)[1] == 8);
  mf_tensor_delete(lt);

  /* copy-on-write between a tensor and its views */
  int64_t d23[2] = {2, 3}, d6[1] = {6};
  float v6[6] = {1, 2, 3, 4, 5, 6};
  mf_tensor *t = tensor_f32(2, d23, v6, s);
  float *tw = mf_tensor_mutable_data(t, s);
  CHECK(tw && tw == mf_tensor_data(t)); /* sole holder: written in place */
  mf_tensor *flat = mf_tensor_reshape(t, 1, d6, s);
  CHECK_OK(s);
  CHECK(flat && mf_tensor_data(flat) == mf_tensor_data(t)); /* shares the buffer */
  mf_tensor *row = mf_tensor_subtensor(t, 1, s);
  CHECK_OK(s);
  CHECK(row && mf_tensor_ndim(row) == 1 && mf_tensor_dims(row)[0] == 3 && fdata(row)[0] == 4);
  float *rw = mf_tensor_mutable_data(row, s);
  if (rw) rw[0] = 40;
  CHECK(fdata(t)[3] == 4 && fdata(flat)[3] == 4 && fdata(row)[0] == 40);
  float *fw = mf_tensor_mutable_data(flat, s);
  CHECK(fw && fw != mf_tensor_data(t));
  if (fw) fw[5] = 60;
  CHECK(fdata(t)[5] == 6 && fdata(flat)[5] == 60);
  mf_tensor *bad = mf_tensor_reshape(t, 1, d3, s);
  CHECK(bad == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "reshape");
  mf_tensor *oob = mf_tensor_subtensor(t, 2, s);
  CHECK(oob == NULL && mf_status_code(s) != MF_OK);
  mf_tensor_delete(row);
  mf_tensor_delete(flat);

  /* a tensor given to a Const: writing it afterwards does not change the graph */
  mf_graph *g2 = mf_graph_new();
  d = mf_op_begin(g2, "Const", "k");
  mf_op_set_attr_tensor(d, "value", t);
  mf_op_set_attr_type(d, "dtype", MF_FLOAT32);
  mf_output k = {mf_op_finish(d, s), 0};
  CHECK_OK(s);
  float *kw = mf_tensor_mutable_data(t, s);
  if (kw) kw[0] = 100;
  mf_session *s2 = mf_session_new(g2, NULL, s);
  out = NULL;
  mf_session_run(s2, NULL, NULL, 0, &k, &out, 1, NULL, 0, s);
  CHECK_OK(s);
  CHECK(out && fdata(out)[0] == 1 && fdata(t)[0] == 100);
  /* and writing a fetched Const does not change the next run's value */
  float *ow = out ? mf_tensor_mutable_data(out, s) : NULL;
  if (ow) ow[1] = -2;
  mf_tensor *out2 = NULL;
  mf_session_run(s2, NULL, NULL, 0, &k, &out2, 1, NULL, 0, s);
  CHECK(out2 && fdata(out2)[1] == 2);
  mf_tensor_delete(out2);
  mf_tensor_delete(out);
  mf_tensor_delete(t);
  mf_session_delete(s2);
  mf_graph_delete(g2);

  /* invalid shapes for new tensors are errors, not crashes */
  int64_t neg[1] = {-3};
  CHECK(mf_tensor_new(MF_FLOAT32, 1, neg, s) == NULL && mf_status_code(s) != MF_OK);
  int64_t many[MF_MAX_DIMS + 1];
  for (int i = 0; i <= MF_MAX_DIMS; i++) many[i] = 1;
  CHECK(mf_tensor_new(MF_FLOAT32, MF_MAX_DIMS + 1, many, s) == NULL && mf_status_code(s) != MF_OK);
  mf_status_delete(s);
}

/* Independent branches on an inter-op pool give the same values as inline. */
static void test_threads(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  int64_t d22[2] = {2, 2};
  float av[4] = {1, 2, 3, 4};
  mf_output a = const_f32(g, "a", 2, d22, av, s);
  mf_output outs[8];
  mf_output prev = a;
  for (int i = 0; i < 8; i++) {
    char name[16];
    snprintf(name, sizeof name, "mm%d", i);
    outs[i] = binary(g, "MatMul", name, i % 2 ? prev : a, a, s);
    prev = outs[i];
  }
  CHECK_OK(s);
  mf_session_config cfg;
  mf_session_config_init(&cfg);
  cfg.inter_op_threads = 4;
  mf_session *sess = mf_session_new(g, &cfg, s);
  CHECK_OK(s);
  mf_tensor *vals[8] = {0};
  mf_session_run(sess, NULL, NULL, 0, outs, vals, 8, NULL, 0, s);
  CHECK_OK(s);
  /* a*a = [[7,10],[15,22]]; outs[1] = a^3 = [[37,54],[81,118]] */
  CHECK(vals[0] && fdata(vals[0])[0] == 7 && fdata(vals[0])[3] == 22);
  CHECK(vals[1] && fdata(vals[1])[0] == 37 && fdata(vals[1])[1] == 54 && fdata(vals[1])[2] == 81 &&
        fdata(vals[1])[3] == 118);
  for (int i = 0; i < 8; i++) mf_tensor_delete(vals[i]);
  mf_session_delete(sess);
  mf_graph_delete(g);
  mf_status_delete(s);
}

/* A variable assigned from a borrowed feed keeps its own copy: the caller
 * may free its memory after the run (found in review: the variable kept the
 * caller's buffer). */
static void test_assign_from_borrowed_feed(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  int64_t d4[1] = {4};
  mf_op_desc *d = mf_op_begin(g, "VariableV2", "v");
  mf_op_set_attr_type(d, "dtype", MF_FLOAT32);
  mf_op_set_attr_shape(d, "shape", d4, 1);
  mf_output v = {mf_op_finish(d, s), 0};
  mf_output p = placeholder(g, "p", MF_FLOAT32, 1, d4, HERE, s);
  mf_output assign = binary(g, "Assign", "assign", v, p, s);
  CHECK_OK(s);
  float *mem = malloc(sizeof(float) * 4);
  for (int i = 0; i < 4; i++) mem[i] = (float)(i + 1) * 1.5f;
  mf_tensor *t = mf_tensor_new_borrowed(MF_FLOAT32, 1, d4, mem, NULL, NULL, s);
  mf_session *sess = mf_session_new(g, NULL, s);
  mf_session_run(sess, &p, &t, 1, NULL, NULL, 0, &assign.op, 1, s);
  CHECK_OK(s);
  mf_tensor_delete(t);
  for (int i = 0; i < 4; i++) mem[i] = -1;
  free(mem);
  mf_tensor *out = NULL;
  mf_session_run(sess, NULL, NULL, 0, &v, &out, 1, NULL, 0, s);
  CHECK_OK(s);
  if (out)
    for (int i = 0; i < 4; i++) CHECK_CLOSE(fdata(out)[i], (i + 1) * 1.5);
  mf_tensor_delete(out);
  mf_session_delete(sess);
  mf_graph_delete(g);
  mf_status_delete(s);
}

int main(void)
{
  test_basics();
  test_run();
  test_errors();
  test_attribute_kinds();
  test_variables();
  test_borrowed_and_cow();
  test_threads();
  test_assign_from_borrowed_feed();
  if (failures) {
    fprintf(stderr, "test_api: %d of %d checks failed\n", failures, checks);
    return 1;
  }
  printf("test_api: all %d checks passed\n", checks);
  return 0;
}
