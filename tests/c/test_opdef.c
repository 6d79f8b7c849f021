/* Op introspection: every registered type describes its inputs, outputs and
 * attributes consistently with the registry, mf_op_finish holds ops to the
 * declared attributes, attributes read back through their getters, and a
 * NULL name picks TensorFlow's unique name. */
#include "check.h"

#include <stdint.h>

/* The declarations agree with the row's input counts. */
static void check_def(const char *type)
{
  const mf_op_def *d = mf_op_def_get(type);
  if (!d) {
    fprintf(stderr, "op type %s has no definition\n", type);
    CHECK(d != NULL);
    return;
  }
  CHECK(strcmp(mf_op_def_type(d), type) == 0);
  const char *doc = mf_op_def_doc(d);
  CHECK(doc && doc[0] && !strchr(doc, '\n') && doc[strlen(doc) - 1] == '.');
  int n = mf_op_def_num_inputs(d), nreq = 0, nopt = 0, list = -1;
  for (int i = 0; i < n; i++) {
    int f = mf_op_def_input_flags(d, i);
    CHECK(mf_op_def_input_name(d, i) && f >= 0);
    if (f & MF_ARG_LIST) {
      CHECK(list < 0 && i == n - 1); /* one list, last */
      list = i;
    } else if (f & MF_ARG_OPTIONAL) {
      nopt++;
    } else {
      CHECK(nopt == 0); /* optional ones trail */
      nreq++;
    }
  }
  int min = mf_op_def_min_inputs(d), max = mf_op_def_max_inputs(d);
  if (list < 0) {
    if (min != nreq || max != nreq + nopt)
      fprintf(stderr, "%s: declares %d + %d optional inputs, takes %d..%d\n", type, nreq, nopt, min,
              max);
    CHECK(min == nreq && max == nreq + nopt);
  } else {
    CHECK(nreq <= min && (max < 0 || max >= min));
  }
  for (int i = 0; i < mf_op_def_num_outputs(d); i++) {
    int f = mf_op_def_output_flags(d, i);
    CHECK(mf_op_def_output_name(d, i) && f >= 0 && !(f & (MF_ARG_OPTIONAL | MF_ARG_REF)));
    if (f & MF_ARG_LIST) CHECK(i == mf_op_def_num_outputs(d) - 1);
  }
  for (int i = 0; i < mf_op_def_num_attrs(d); i++) {
    const char *name = mf_op_def_attr_name(d, i);
    int k = mf_op_def_attr_kind(d, i);
    CHECK(name && mf_attr_kind_name((mf_attr_kind)k));
    CHECK(!(mf_op_def_attr_required(d, i) && mf_op_def_attr_default(d, i)));
  }
}

/* An op of `type` with one attribute and no inputs: the attribute check
 * comes before the input count, so the status says which failed. */
static int attr_refused(mf_graph *g, const char *type, const char *attr)
{
  mf_status *s = mf_status_new();
  mf_op_desc *d = mf_op_begin(g, type, NULL);
  mf_op_set_attr_int(d, attr, 1);
  mf_op *op = mf_op_finish(d, s);
  int refused = !op && strstr(mf_status_message(s), "has no attribute") != NULL;
  mf_status_delete(s);
  return refused;
}

static void test_registry(void)
{
  mf_graph *g = mf_graph_new();
  int n = 0;
  for (const char *type; (type = mf_op_type_name(n)); n++) {
    check_def(type);
    const mf_op_def *d = mf_op_def_get(type);
    CHECK(attr_refused(g, type, "no_such_attribute"));
    for (int i = 0; d && i < mf_op_def_num_attrs(d); i++)
      CHECK(!attr_refused(g, type, mf_op_def_attr_name(d, i)));
  }
  CHECK(n > 100);
  mf_graph_delete(g);
}

static int find_attr(const mf_op_def *d, const char *name)
{
  for (int i = 0; i < mf_op_def_num_attrs(d); i++)
    if (strcmp(mf_op_def_attr_name(d, i), name) == 0) return i;
  return -1;
}

static void test_examples(void)
{
  const mf_op_def *d = mf_op_def_get("MatMul");
  CHECK(mf_op_def_num_inputs(d) == 2 && strcmp(mf_op_def_input_name(d, 1), "b") == 0);
  int i = find_attr(d, "transpose_a");
  CHECK(i >= 0 && mf_op_def_attr_kind(d, i) == MF_ATTR_BOOL);
  CHECK(strcmp(mf_op_def_attr_default(d, i), "false") == 0 && !mf_op_def_attr_required(d, i));

  d = mf_op_def_get("Split");
  i = find_attr(d, "num_split");
  CHECK(i >= 0 && mf_op_def_attr_required(d, i) && !mf_op_def_attr_default(d, i));
  CHECK(mf_op_def_output_flags(d, 0) & MF_ARG_LIST);

  d = mf_op_def_get("ApplyAdam"); /* references and values */
  CHECK(mf_op_def_input_flags(d, 2) & MF_ARG_REF);
  CHECK(!(mf_op_def_input_flags(d, 3) & MF_ARG_REF));

  d = mf_op_def_get("Reshape"); /* the shape as a host input or an attribute */
  CHECK(mf_op_def_input_flags(d, 1) == (MF_ARG_OPTIONAL | MF_ARG_HOST));
  CHECK(find_attr(d, "shape") >= 0);

  d = mf_op_def_get("RandomUniform"); /* random ops take seeds */
  CHECK(find_attr(d, "seed") >= 0 && find_attr(d, "seed2") >= 0);
  CHECK(find_attr(mf_op_def_get("Add"), "seed") < 0);

  d = mf_op_def_get("Print");
  i = find_attr(d, "stream");
  CHECK(i >= 0 && strcmp(mf_op_def_attr_default(d, i), "stderr") == 0);
  CHECK(mf_op_def_attr_kind(d, i) == MF_ATTR_STRING);
}

static void test_getters(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  int64_t two = 2;
  mf_output x = placeholder(g, "x", MF_FLOAT32, 1, &two, HERE, s);
  CHECK_OK(s);

  mf_op_desc *d = mf_op_begin(g, "OneHot", NULL);
  mf_op_add_input(d, placeholder(g, "ids", MF_INT32, 1, &two, HERE, s));
  mf_op_set_attr_int(d, "depth", 3);
  mf_op_set_attr_float(d, "on_value", 2.5);
  mf_op_set_attr_type(d, "dtype", MF_FLOAT64);
  mf_op *oh = mf_op_finish(d, s);
  CHECK_OK(s);
  CHECK(oh && strcmp(mf_op_name(oh), "OneHot") == 0);
  double f;
  mf_dtype dt;
  int64_t iv;
  CHECK(mf_op_get_attr_float(oh, "on_value", &f) == 1 && f == 2.5);
  CHECK(mf_op_get_attr_float(oh, "depth", &f) == 0); /* an int */
  CHECK(mf_op_get_attr_type(oh, "dtype", &dt) == 1 && dt == MF_FLOAT64);
  CHECK(mf_op_get_attr_int(oh, "depth", &iv) == 1 && iv == 3);
  CHECK(mf_op_num_attrs(oh) == 3);
  CHECK(strcmp(mf_op_attr_name(oh, 1), "on_value") == 0 && mf_op_attr_kind(oh, 1) == MF_ATTR_FLOAT);
  CHECK(mf_op_attr_kind(oh, 2) == MF_ATTR_TYPE);

  d = mf_op_begin(g, "MatMul", NULL);
  mf_op_add_input(d, binary(g, "Pack", "m", x, x, s));
  mf_op_add_input(d, binary(g, "Pack", "n", x, x, s));
  mf_op_set_attr_bool(d, "transpose_b", 1);
  mf_op *mm = mf_op_finish(d, s);
  CHECK_OK(s);
  int b;
  CHECK(mf_op_get_attr_bool(mm, "transpose_b", &b) == 1 && b == 1);
  CHECK(mf_op_get_attr_bool(mm, "transpose_a", &b) == 0); /* absent */

  d = mf_op_begin(g, "Transpose", NULL);
  mf_op_add_input(d, (mf_output){mm, 0});
  int64_t perm[2] = {2, 1};
  mf_op_set_attr_ints(d, "perm", perm, 2);
  mf_op *tr = mf_op_finish(d, s);
  CHECK_OK(s);
  const int64_t *v;
  int n;
  CHECK(mf_op_get_attr_ints(tr, "perm", &v, &n) == 1 && n == 2 && v[0] == 2 && v[1] == 1);

  d = mf_op_begin(g, "CheckNumerics", NULL);
  mf_op_add_input(d, x);
  mf_op_set_attr_string(d, "message", "bad x");
  mf_op *cn = mf_op_finish(d, s);
  CHECK_OK(s);
  const char *str;
  CHECK(mf_op_get_attr_string(cn, "message", &str) == 1 && strcmp(str, "bad x") == 0);

  float one = 1;
  mf_output c = const_f32(g, "c", 0, NULL, &one, s);
  mf_tensor *t = NULL;
  CHECK(mf_op_get_attr_tensor(c.op, "value", &t) == 1 && t && fdata(t)[0] == 1);
  mf_tensor_delete(t);

  /* unique names from the type, as TensorFlow picks them */
  mf_op *a1 = mf_op_finish(mf_op_begin(g, "NoOp", NULL), s);
  mf_op *a2 = mf_op_finish(mf_op_begin(g, "NoOp", NULL), s);
  CHECK_OK(s);
  CHECK(a1 && a2 && strcmp(mf_op_name(a1), "NoOp") == 0 && strcmp(mf_op_name(a2), "NoOp_1") == 0);

  /* a declared attribute of the wrong kind is inference's error */
  d = mf_op_begin(g, "MatMul", "bad");
  mf_op_add_input(d, (mf_output){mm, 0});
  mf_op_add_input(d, (mf_output){mm, 0});
  mf_op_set_attr_int(d, "transpose_a", 1);
  CHECK(!mf_op_finish(d, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "attribute 'transpose_a' must be a bool");
  d = mf_op_begin(g, "MatMul", "bad");
  mf_op_add_input(d, (mf_output){mm, 0});
  mf_op_add_input(d, (mf_output){mm, 0});
  mf_op_set_attr_bool(d, "transpose", 1);
  CHECK(!mf_op_finish(d, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "MatMul 'bad': has no attribute 'transpose'");

  /* Const's dtype must agree with its value */
  d = mf_op_begin(g, "Const", "c2");
  mf_tensor *val = tensor_f32(0, NULL, &one, s);
  mf_op_set_attr_tensor(d, "value", val);
  mf_op_set_attr_type(d, "dtype", MF_INT32);
  CHECK(!mf_op_finish(d, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "attribute 'dtype' is int32 but the value is float32");
  mf_tensor_delete(val);

  mf_graph_delete(g);
  mf_status_delete(s);
}

/* The uninitialized-variable error names the initializer op in C terms. */
static void test_uninitialized(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  int64_t two = 2;
  mf_op_desc *d = mf_op_begin(g, "VariableV2", "v");
  mf_op_set_attr_type(d, "dtype", MF_FLOAT32);
  mf_op_set_attr_shape(d, "shape", &two, 1);
  mf_op *v = mf_op_finish(d, s);
  d = mf_op_begin(g, "VariableV2", "w");
  mf_op_set_attr_type(d, "dtype", MF_FLOAT32);
  mf_op_set_attr_shape(d, "shape", &two, 1);
  mf_op *w = mf_op_finish(d, s);
  float vals[2] = {1, 2};
  d = mf_op_begin(g, "Assign", "v/Assign");
  mf_op_add_input(d, (mf_output){v, 0});
  mf_op_add_input(d, const_f32(g, "init", 1, &two, vals, s));
  mf_op *init = mf_op_finish(d, s);
  CHECK_OK(s);
  mf_session *sess = mf_session_new(g, NULL, s);
  mf_output fv = {v, 0}, fw = {w, 0};
  mf_tensor *out = NULL;
  mf_session_run(sess, NULL, NULL, 0, &fv, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_FAILED_PRECONDITION,
            "uninitialized value v (run its initializer op 'v/Assign' first: a target of "
            "mf_session_run)");
  mf_session_run(sess, NULL, NULL, 0, &fw, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_FAILED_PRECONDITION, "uninitialized value w (no Assign op initializes it");
  mf_session_run(sess, NULL, NULL, 0, NULL, NULL, 0, &init, 1, s);
  mf_session_run(sess, NULL, NULL, 0, &fv, &out, 1, NULL, 0, s);
  CHECK_OK(s);
  CHECK(out && fdata(out)[1] == 2);
  mf_tensor_delete(out);
  mf_session_delete(sess);
  mf_graph_delete(g);
  mf_status_delete(s);
}

int main(void)
{
  test_uninitialized();
  test_registry();
  test_examples();
  test_getters();
  return check_report("test_opdef");
}
