/* mf_graph_export / mf_graph_import / mf_graph_def_to_text from C: an If
 * with gradients exported and imported (with a prefix, an input_map and
 * return elements) runs as the original; the text format; what a host gets
 * for bytes that do not fit (a clear error, the graph unchanged). */
#include "check.h"

static double run1(mf_session *sess, mf_output fetch, int nfeeds, const mf_output *feeds,
                   mf_tensor *const *vals, mf_status *s)
{
  mf_tensor *out = NULL;
  mf_session_run(sess, feeds, vals, nfeeds, &fetch, &out, 1, NULL, 0, s);
  if (!out) return NAN;
  double v = fdata(out)[0];
  mf_tensor_delete(out);
  return v;
}

/* y = p ? x * x : 3 - x, and dy/dx. */
static mf_graph *build_if(mf_status *s)
{
  mf_graph *g = mf_graph_new();
  mf_output x, p, y = if_square_or_sub(g, &x, &p, HERE, s);
  CHECK_OK(s);
  mf_output dx;
  mf_gradients(g, &y, 1, &x, 1, NULL, &dx, s);
  CHECK_OK(s);
  mf_op_desc *d = mf_op_begin(g, "Identity", "dx");
  mf_op_add_input(d, dx);
  mf_op_finish(d, s);
  CHECK_OK(s);
  return g;
}

static void test_round_trip(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = build_if(s);
  uint8_t *bytes = NULL;
  size_t len = 0;
  CHECK(mf_graph_export(g, &bytes, &len, s));
  CHECK_OK(s);
  CHECK(bytes && len > 100);

  /* into a graph with its own x, under a prefix */
  mf_graph *g2 = mf_graph_new();
  float two = 2.0f;
  mf_output mine = const_f32(g2, "mine", 0, NULL, &two, s);
  mf_import_options o;
  mf_import_options_init(&o);
  const char *keys[] = {"x"};
  const char *rets[] = {"cond:0", "dx", "p:0", "dx:0"};
  mf_output outs[4];
  o.prefix = "imp";
  o.ninput_map = 1, o.input_map_keys = keys, o.input_map_values = &mine;
  o.nreturn = 4, o.return_elements = rets, o.return_outputs = outs;
  int n = mf_graph_import(g2, bytes, len, &o, s);
  CHECK_OK(s);
  CHECK(n == mf_graph_num_ops(g));
  CHECK(mf_graph_has_function(g2, "imp/then_fn") && mf_graph_has_function(g2, "imp/else_fn"));
  CHECK(outs[1].index == -1 && strcmp(mf_op_name(outs[1].op), "imp/dx") == 0);
  CHECK(strcmp(mf_op_name(outs[0].op), "imp/cond") == 0 && outs[0].index == 0);
  CHECK(strstr(mf_op_location(outs[2].op), "test_graph_io.c") != NULL);
  mf_session *sess = mf_session_new(g2, NULL, s);
  mf_tensor *pt = mf_tensor_new(MF_BOOL, 0, NULL, s);
  for (int b = 0; b < 2; b++) {
    *(uint8_t *)mf_tensor_mutable_data(pt, s) = (uint8_t)b;
    CHECK_CLOSE(run1(sess, outs[0], 1, &outs[2], &pt, s), b ? 4 : 1);
    CHECK_CLOSE(run1(sess, outs[3], 1, &outs[2], &pt, s), b ? 4 : -1);
    CHECK_OK(s);
  }
  mf_session_delete(sess);

  /* a second import under the same prefix collides, leaving the graph be */
  int before = mf_graph_num_ops(g2);
  CHECK(mf_graph_import(g2, bytes, len, &o, s) == -1);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "already has an operation named 'imp/x'");
  CHECK(mf_graph_num_ops(g2) == before);
  /* the text format names what is there */
  char *text = NULL;
  size_t tlen = 0;
  CHECK(mf_graph_def_to_text(bytes, len, &text, &tlen, s));
  CHECK(text && strlen(text) == tlen);
  CHECK(text && strstr(text, "name: \"cond\"") && strstr(text, "then_branch") &&
        strstr(text, "library {") && strstr(text, "type: DT_FLOAT"));
  free(text);
  free(bytes);
  mf_tensor_delete(pt);
  mf_graph_delete(g2);
  mf_graph_delete(g);
  mf_status_delete(s);
}

/* Hand-encoded GraphDefs: a node is field 1 (NodeDef: name 1, op 2, input 3,
 * attr 5). */
static size_t put_str(uint8_t *p, int field, const char *str, size_t n)
{
  p[0] = (uint8_t)(field << 3 | 2), p[1] = (uint8_t)n;
  memcpy(p + 2, str, n);
  return n + 2;
}

static size_t node(uint8_t *p, const char *name, const char *op, const char *input)
{
  uint8_t body[200];
  size_t n = put_str(body, 1, name, strlen(name));
  n += put_str(body + n, 2, op, strlen(op));
  if (input) n += put_str(body + n, 3, input, strlen(input));
  return put_str(p, 1, (const char *)body, n);
}

static void test_hostile(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  uint8_t buf[1024];
  size_t n = 0;
  /* a cycle: a reads b, b reads a */
  n = node(buf, "a", "Identity", "b");
  n += node(buf + n, "b", "Identity", "a");
  CHECK(mf_graph_import(g, buf, n, NULL, s) == -1);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "form a cycle");
  /* an input naming nothing */
  n = node(buf, "a", "Identity", "zz:3");
  CHECK(mf_graph_import(g, buf, n, NULL, s) == -1);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "input 'zz:3' is not a node");
  /* a bad index */
  n = node(buf, "a", "Identity", "a:99999999999");
  CHECK(mf_graph_import(g, buf, n, NULL, s) == -1);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "is not a name 'op' or 'op:i'");
  /* two nodes of one name */
  n = node(buf, "a", "NoOp", NULL);
  n += node(buf + n, "a", "NoOp", NULL);
  CHECK(mf_graph_import(g, buf, n, NULL, s) == -1);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "two nodes are named 'a'");
  /* an unknown op type, and an undeclared attribute, through mf_op_finish */
  n = node(buf, "a", "NoSuchOp", NULL);
  CHECK(mf_graph_import(g, buf, n, NULL, s) == -1);
  CHECK_ERR(s, MF_NOT_FOUND, "unknown operation type 'NoSuchOp'");
  /* a Const whose tensor claims 2^40 x 128 elements and holds none */
  uint8_t dims[32], shape[40], tensor[48], value[56], entry[72], nd[96], huge[104];
  size_t k = 0;
  const uint8_t dim1[] = {0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20}, dim2[] = {0x08, 0x80, 0x01};
  k = put_str(dims, 2, (const char *)dim1, sizeof dim1);
  k += put_str(dims + k, 2, (const char *)dim2, sizeof dim2);
  size_t ks = k;
  memcpy(shape, dims, ks);
  tensor[0] = 0x08, tensor[1] = 0x01; /* dtype: DT_FLOAT */
  k = 2 + put_str(tensor + 2, 2, (const char *)shape, ks);
  k = put_str(value, 8, (const char *)tensor, k);
  size_t ke = put_str(entry, 1, "value", 5);
  ke += put_str(entry + ke, 2, (const char *)value, k);
  k = put_str(nd, 1, "c", 1);
  k += put_str(nd + k, 2, "Const", 5);
  k += put_str(nd + k, 5, (const char *)entry, ke);
  size_t kh = put_str(huge, 1, (const char *)nd, k);
  CHECK(mf_graph_import(g, huge, kh, NULL, s) == -1);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "elements with 0 values");
  CHECK(mf_graph_num_ops(g) == 0);
  /* a truncated message */
  CHECK(mf_graph_import(g, huge, kh - 3, NULL, s) == -1);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "not a GraphDef");
  /* in order the other way round works */
  n = node(buf, "b", "Identity", "a");
  n += node(buf + n, "a", "Placeholder", NULL);
  CHECK(mf_graph_import(g, buf, n, NULL, s) == 2);
  CHECK_OK(s);
  CHECK(mf_op_id(mf_graph_op_by_name(g, "a")) == 0);
  mf_graph_delete(g);
  mf_status_delete(s);
}

int main(void)
{
  test_round_trip();
  test_hostile();
  return check_report("test_graph_io");
}
