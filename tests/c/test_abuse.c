/* The C API under abuse: every function of moonflow.h and moonflow_cuda.h
 * called with NULL for each pointer argument, negative counts and indices
 * out of range. Each call must end in an error status (or the failure value
 * its comment in the header gives), never in a crash; scripts/test.sh runs
 * this file under ASan + UBSan too. Also here: shapes whose element count
 * overflows, thread counts clamped before OpenBLAS, over-long names, and a
 * checkpoint restored from a FIFO (refused at once, not a hang).
 *
 * A new API function needs a line here: the list follows the header, in
 * its order, one block per section. */
#include "check.h"

#include <moonflow_cuda.h>

#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

int openblas_get_num_threads(void); /* OpenBLAS, linked with the library */

/* The status holds an error (any code but MF_OK). */
#define CHECK_FAIL(s) CHECK(mf_status_code(s) != MF_OK)

static void abuse_status(void)
{
  CHECK(mf_version() != NULL);
  CHECK(strcmp(mf_dtype_name((mf_dtype)-1), "invalid") == 0);
  CHECK(strcmp(mf_dtype_name(MF_NUM_DTYPES), "invalid") == 0);
  mf_dtype dt;
  CHECK(mf_dtype_from_name(NULL, &dt) == 0);
  CHECK(mf_dtype_from_name("float32", NULL) == 0);
  CHECK(mf_dtype_size((mf_dtype)99) == 0);
  mf_status_delete(NULL);
  CHECK(mf_status_code(NULL) != MF_OK);
  CHECK(mf_status_message(NULL) != NULL);
  mf_status_set(NULL, MF_INTERNAL, "x");
  mf_status *s = mf_status_new();
  mf_status_set(s, MF_INTERNAL, NULL);
  CHECK(mf_status_code(s) == MF_INTERNAL && mf_status_message(s) != NULL);
  mf_status_delete(s);
}

static void abuse_tensors(mf_status *s)
{
  int64_t dims[2] = {2, 3};
  CHECK(!mf_tensor_new(MF_FLOAT32, 2, NULL, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "dims is NULL");
  CHECK(!mf_tensor_new(MF_FLOAT32, -1, dims, s));
  CHECK_FAIL(s);
  CHECK(!mf_tensor_new(MF_FLOAT32, MF_MAX_DIMS + 1, dims, s));
  CHECK_FAIL(s);
  CHECK(!mf_tensor_new((mf_dtype)-3, 2, dims, s));
  CHECK_FAIL(s);
  CHECK(!mf_tensor_new(MF_FLOAT32, 2, NULL, NULL)); /* no status: no crash */
  mf_tensor_delete(mf_tensor_new(MF_FLOAT32, 2, dims, NULL));
  CHECK(!mf_tensor_new_borrowed(MF_FLOAT32, 2, dims, NULL, NULL, NULL, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "data is NULL");
  CHECK(!mf_tensor_new_borrowed(MF_FLOAT32, 2, NULL, NULL, NULL, NULL, s));
  CHECK_FAIL(s);

  /* Shapes whose element count overflows int64: refused, even with a zero. */
  int64_t huge0[3] = {INT64_C(1) << 62, INT64_C(1) << 62, 0}, huge[2] = {INT64_C(1) << 62, 4};
  CHECK(!mf_tensor_new(MF_FLOAT32, 3, huge0, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "overflows");
  CHECK(!mf_tensor_new(MF_UINT8, 2, huge, s));
  CHECK_FAIL(s);
  float one = 1;
  CHECK(!mf_tensor_new_borrowed(MF_FLOAT32, 3, huge0, &one, NULL, NULL, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "overflows");

  CHECK(mf_tensor_retain(NULL) == NULL);
  mf_tensor_delete(NULL);
  CHECK(mf_tensor_dtype(NULL) == MF_NUM_DTYPES);
  CHECK(mf_tensor_ndim(NULL) == -1);
  CHECK(mf_tensor_dims(NULL) == NULL);
  CHECK(mf_tensor_numel(NULL) == 0);
  CHECK(mf_tensor_nbytes(NULL) == 0);
  CHECK(mf_tensor_data(NULL) == NULL);
  CHECK(mf_tensor_mutable_data(NULL, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_tensor_mutable_data");
  /* strings: only string tensors, in range, unshared */
  CHECK(mf_tensor_string(NULL, 0, NULL) == NULL);
  CHECK(!mf_tensor_set_string(NULL, 0, "x", 1, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "tensor is NULL");
  {
    int64_t two = 2;
    mf_tensor *st = mf_tensor_new(MF_STRING, 1, &two, s);
    size_t n = 7;
    CHECK(st && mf_tensor_string(st, 1, &n) && n == 0);
    CHECK(mf_tensor_string(st, 2, &n) == NULL && mf_tensor_string(st, -1, &n) == NULL);
    CHECK(!mf_tensor_set_string(st, 2, "x", 1, s));
    CHECK_ERR(s, MF_INVALID_ARGUMENT, "index out of range");
    CHECK(!mf_tensor_set_string(st, 0, NULL, 3, s));
    CHECK_ERR(s, MF_INVALID_ARGUMENT, "bytes is NULL");
    CHECK(mf_tensor_set_string(st, 0, "a\0b", 3, s));
    const char *p = mf_tensor_string(st, 0, &n);
    CHECK(p && n == 3 && memcmp(p, "a\0b", 3) == 0);
    CHECK(mf_tensor_data(st) == NULL && !mf_tensor_mutable_data(st, s));
    mf_tensor *shared = mf_tensor_retain(st);
    CHECK(!mf_tensor_set_string(st, 1, "y", 1, s));
    CHECK_ERR(s, MF_FAILED_PRECONDITION, "shared");
    mf_tensor_delete(shared);
    mf_tensor *f = mf_tensor_new(MF_FLOAT32, 1, &two, s);
    CHECK(!mf_tensor_set_string(f, 0, "x", 1, s) && mf_tensor_string(f, 0, NULL) == NULL);
    CHECK(!mf_tensor_new_borrowed(MF_STRING, 1, &two, &n, NULL, NULL, s));
    mf_tensor_delete(f), mf_tensor_delete(st);
  }
  CHECK(mf_tensor_mutable_data(NULL, NULL) == NULL);
  CHECK(!mf_tensor_reshape(NULL, 2, dims, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_tensor_reshape");
  mf_tensor *t = mf_tensor_new(MF_FLOAT32, 2, dims, s);
  CHECK_OK(s);
  CHECK(mf_tensor_mutable_data(t, NULL) != NULL);
  CHECK(!mf_tensor_reshape(t, 2, NULL, s));
  CHECK_FAIL(s);
  CHECK(!mf_tensor_reshape(t, -2, dims, s));
  CHECK_FAIL(s);
  CHECK(!mf_tensor_reshape(t, 3, huge0, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "overflows");
  CHECK(!mf_tensor_subtensor(NULL, 0, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_tensor_subtensor");
  CHECK(!mf_tensor_subtensor(t, -1, s));
  CHECK_FAIL(s);
  CHECK(!mf_tensor_subtensor(t, 2, s));
  CHECK_FAIL(s);
  CHECK(!mf_tensor_subtensor(t, INT64_MAX, NULL));
  mf_tensor_delete(t);
}

/* A graph with x (Placeholder [2]), y = x + x and v (VariableV2 [2]). */
static mf_graph *small_graph(mf_output *x, mf_output *y, mf_op **v, mf_status *s)
{
  mf_graph *g = mf_graph_new();
  int64_t two = 2;
  *x = placeholder(g, "x", MF_FLOAT32, 1, &two, "test", s);
  *y = binary(g, "Add", "y", *x, *x, s);
  mf_op_desc *d = mf_op_begin(g, "VariableV2", "v");
  mf_op_set_attr_type(d, "dtype", MF_FLOAT32);
  mf_op_set_attr_shape(d, "shape", &two, 1);
  *v = mf_op_finish(d, s);
  return g;
}

static void abuse_graphs(mf_status *s)
{
  mf_output x, y;
  mf_op *v;
  mf_graph *g = small_graph(&x, &y, &v, s);
  CHECK_OK(s);
  mf_graph_delete(NULL);
  CHECK(mf_graph_retain(NULL) == NULL);
  CHECK(mf_graph_retain(g) == g);
  mf_graph_delete(g); /* the reference just taken */
  CHECK(mf_graph_num_ops(NULL) == 0);
  CHECK(mf_graph_op(NULL, 0) == NULL);
  CHECK(mf_graph_op(g, -1) == NULL && mf_graph_op(g, 3) == NULL &&
        mf_graph_op(g, INT32_MAX) == NULL);
  CHECK(mf_graph_op_by_name(NULL, "x") == NULL);
  CHECK(mf_graph_op_by_name(g, NULL) == NULL);
  char buf[16] = "junk";
  CHECK(mf_graph_unique_name(NULL, "a", buf, sizeof buf) == -1 && buf[0] == 0);
  CHECK(mf_graph_unique_name(g, NULL, buf, sizeof buf) == -1);
  CHECK(mf_graph_unique_name(g, "a", NULL, 4) == -1);
  CHECK(mf_graph_unique_name(g, "abcdefghijklmnopqrstuvwxyz", buf, sizeof buf) == 26);
  CHECK(strlen(buf) == sizeof buf - 1);
  mf_graph_set_seed(NULL, 3);
  CHECK(mf_graph_seed(NULL) == 0);
  /* Functions: arguments must be this graph's Placeholders. */
  CHECK(!mf_graph_add_function(NULL, "f", 0, NULL, 0, NULL, 0, NULL, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "graph is NULL");
  CHECK(!mf_graph_add_function(g, NULL, 0, NULL, 0, NULL, 0, NULL, s));
  CHECK(!mf_graph_add_function(g, "f", -1, NULL, 0, NULL, 0, NULL, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "nargs is negative");
  CHECK(!mf_graph_add_function(g, "f", 1, NULL, 0, NULL, 0, NULL, s));
  CHECK(!mf_graph_add_function(g, "f", 0, NULL, 1, NULL, 0, NULL, s));
  CHECK(!mf_graph_add_function(g, "f", 0, NULL, 0, NULL, -2, NULL, s));
  mf_op *not_placeholder = y.op;
  CHECK(!mf_graph_add_function(g, "f", 1, &not_placeholder, 0, NULL, 0, NULL, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "argument 1 is not a Placeholder");
  mf_output bad_res = {y.op, 7};
  CHECK(!mf_graph_add_function(g, "f", 0, NULL, 1, &bad_res, 0, NULL, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "result 1 is not an output");
  mf_op *null_op = NULL;
  CHECK(!mf_graph_add_function(g, "f", 0, NULL, 0, NULL, 1, &null_op, s));
  CHECK(mf_graph_add_function(g, "f", 0, NULL, 1, &y, 0, NULL, s));
  CHECK(!mf_graph_add_function(g, "f", 0, NULL, 1, &y, 0, NULL, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "already has a function named 'f'");
  CHECK(mf_graph_has_function(g, "f") && !mf_graph_has_function(g, "g") &&
        !mf_graph_has_function(NULL, "f") && !mf_graph_has_function(g, NULL));

  /* Graph export and import. */
  {
    uint8_t *bytes = NULL;
    size_t len = 0;
    char *text = NULL;
    CHECK(!mf_graph_export(NULL, &bytes, &len, s));
    CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_graph_export: g is NULL");
    CHECK(!mf_graph_export(g, NULL, &len, s));
    CHECK(!mf_graph_export(g, &bytes, NULL, s));
    CHECK(!mf_graph_def_to_text(NULL, 3, &text, &len, s));
    CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_graph_def_to_text: bytes is NULL");
    CHECK(!mf_graph_def_to_text("\377", 1, &text, &len, s) && text == NULL);
    CHECK(!mf_graph_def_to_text("", 0, NULL, &len, s));
    CHECK(mf_graph_def_to_text("", 0, &text, &len, s) && len == 0);
    free(text);
    mf_import_options_init(NULL);
    mf_import_options o;
    mf_import_options_init(&o);
    CHECK(mf_graph_import(NULL, "", 0, NULL, s) == -1);
    CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_graph_import: g is NULL");
    CHECK(mf_graph_import(g, NULL, 5, NULL, s) == -1);
    CHECK(mf_graph_import(g, "\377\377", 2, NULL, s) == -1);
    CHECK_ERR(s, MF_INVALID_ARGUMENT, "not a GraphDef");
    o.ninput_map = -1;
    CHECK(mf_graph_import(g, "", 0, &o, s) == -1);
    CHECK_ERR(s, MF_INVALID_ARGUMENT, "ninput_map is negative");
    o.ninput_map = 1;
    CHECK(mf_graph_import(g, "", 0, &o, s) == -1);
    const char *key = "a:0";
    mf_output bad = {NULL, 0};
    o.input_map_keys = &key, o.input_map_values = &bad;
    CHECK(mf_graph_import(g, "", 0, &o, s) == -1);
    CHECK_ERR(s, MF_INVALID_ARGUMENT, "input_map value");
    mf_import_options_init(&o);
    o.nreturn = 1;
    CHECK(mf_graph_import(g, "", 0, &o, s) == -1);
    CHECK(mf_graph_import(g, "", 0, NULL, s) == 0);
    CHECK(mf_graph_import(g, "", 0, NULL, NULL) == 0);
  }

  /* Builders: a bad argument fails the finish, naming the function. */
  mf_op_desc *d = mf_op_begin(NULL, "Add", "z");
  mf_op_add_input(d, x), mf_op_add_input(d, x);
  CHECK(!mf_op_finish(d, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_op_begin: graph is NULL");
  d = mf_op_begin(g, NULL, "z");
  CHECK(!mf_op_finish(d, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_op_begin: type is NULL");
  d = mf_op_begin(g, "Add", ""); /* the empty name, not valid */
  mf_op_add_input(d, x), mf_op_add_input(d, x);
  CHECK(!mf_op_finish(d, s));
  CHECK_FAIL(s);
  d = mf_op_begin(g, "Add", NULL); /* no name: one is picked */
  mf_op_add_input(d, x), mf_op_add_input(d, x);
  CHECK(mf_op_finish(d, s) != NULL);
  d = mf_op_begin(g, "Add", NULL);
  mf_op_set_attr_int(d, "no_such_attr", 1);
  mf_op_add_input(d, x), mf_op_add_input(d, x);
  CHECK(!mf_op_finish(d, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "no attribute 'no_such_attr'");
  mf_op_add_input(NULL, x);
  mf_op_add_control_input(NULL, v);
  mf_op_set_device(NULL, "/cpu:0");
  mf_op_set_location(NULL, "here");
  mf_op_set_attr_int(NULL, "a", 1);
  mf_op_set_attr_float(NULL, "a", 1);
  mf_op_set_attr_bool(NULL, "a", 1);
  mf_op_set_attr_type(NULL, "a", MF_FLOAT32);
  mf_op_set_attr_string(NULL, "a", "b");
  mf_op_set_attr_ints(NULL, "a", NULL, 3);
  mf_op_set_attr_shape(NULL, "a", NULL, 3);
  mf_op_set_attr_tensor(NULL, "a", NULL);
  CHECK(!mf_op_finish(NULL, s));
  CHECK_FAIL(s);
  CHECK(!mf_op_finish(NULL, NULL));
  mf_op_abandon(NULL);
  struct {
    const char *fn;
    int which;
  } bad[] = {
      {"mf_op_set_attr", 0},        {"mf_op_set_attr_string", 1}, {"mf_op_set_attr_ints", 2},
      {"mf_op_set_attr_ints", 3},   {"mf_op_set_attr_shape", 4},  {"mf_op_set_attr_shape", 5},
      {"mf_op_set_attr_tensor", 6}, {"input 2 comes from", 7},    {"control input 1", 8}};
  for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
    d = mf_op_begin(g, "AddN", "id"); /* any number of inputs */
    mf_op_add_input(d, x);
    mf_op_set_device(d, NULL);   /* NULL: none */
    mf_op_set_location(d, NULL); /* NULL: none */
    switch (bad[k].which) {
    case 0: mf_op_set_attr_int(d, NULL, 1); break;
    case 1: mf_op_set_attr_string(d, "a", NULL); break;
    case 2: mf_op_set_attr_ints(d, "a", NULL, 2); break;
    case 3: mf_op_set_attr_ints(d, "a", (int64_t[1]){1}, -1); break;
    case 4: mf_op_set_attr_shape(d, "a", NULL, 2); break;
    case 5: mf_op_set_attr_shape(d, "a", (int64_t[1]){1}, -2); break;
    case 6: mf_op_set_attr_tensor(d, "a", NULL); break;
    case 7: mf_op_add_input(d, (mf_output){NULL, 0}); break;
    case 8: mf_op_add_control_input(d, NULL); break;
    }
    CHECK(!mf_op_finish(d, s));
    CHECK_ERR(s, MF_INVALID_ARGUMENT, bad[k].fn);
  }
  /* an input index out of range */
  d = mf_op_begin(g, "Identity", "id");
  mf_op_add_input(d, (mf_output){x.op, 5});
  CHECK(!mf_op_finish(d, s));
  CHECK_FAIL(s);
  d = mf_op_begin(g, "Identity", "id");
  mf_op_add_input(d, (mf_output){x.op, -1});
  CHECK(!mf_op_finish(d, s));
  CHECK_FAIL(s);

  /* Names over MF_MAX_NAME bytes are refused, not cut. */
  char *longname = malloc(MF_MAX_NAME + 2);
  memset(longname, 'n', MF_MAX_NAME + 1);
  longname[MF_MAX_NAME + 1] = 0;
  d = mf_op_begin(g, "Identity", longname);
  mf_op_add_input(d, x);
  CHECK(!mf_op_finish(d, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "at most 1023 bytes");
  longname[MF_MAX_NAME] = 0; /* exactly the limit: fine */
  d = mf_op_begin(g, "Identity", longname);
  mf_op_add_input(d, x);
  CHECK(mf_op_finish(d, s) != NULL);
  CHECK_OK(s);
  free(longname);

  /* A static shape whose element count overflows int64. */
  int64_t huge0[3] = {INT64_C(1) << 62, INT64_C(1) << 62, 0}, huge[2] = {INT64_C(1) << 62, 4};
  CHECK(!placeholder(g, "p_huge0", MF_FLOAT32, 3, huge0, "test", s).op);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "overflows");
  CHECK(!placeholder(g, "p_huge", MF_FLOAT32, 2, huge, "test", s).op);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "overflows");
  int64_t part[3] = {INT64_C(1) << 62, -1, 4}; /* the known dims alone overflow */
  CHECK(!placeholder(g, "p_part", MF_FLOAT32, 3, part, "test", s).op);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "overflows");

  /* Queries: NULL ops and out-of-range indices. */
  CHECK(mf_op_name(NULL) == NULL && mf_op_type(NULL) == NULL);
  CHECK(mf_op_device(NULL) == NULL && mf_op_location(NULL) == NULL);
  CHECK(mf_op_id(NULL) == -1 && mf_op_graph(NULL) == NULL);
  CHECK(mf_op_num_inputs(NULL) == 0 && mf_op_num_control_inputs(NULL) == 0);
  CHECK(mf_op_num_outputs(NULL) == 0);
  mf_output o = mf_op_input(NULL, 0);
  CHECK(o.op == NULL && o.index == 0);
  o = mf_op_input(y.op, 2);
  CHECK(o.op == NULL);
  o = mf_op_input(y.op, -1);
  CHECK(o.op == NULL);
  o = mf_op_input(y.op, INT32_MAX);
  CHECK(o.op == NULL);
  CHECK(mf_op_input(y.op, 1).op == x.op);
  CHECK(mf_op_control_input(NULL, 0) == NULL);
  CHECK(mf_op_control_input(y.op, 0) == NULL && mf_op_control_input(y.op, -1) == NULL);
  CHECK(mf_op_output_dtype(NULL, 0) == MF_NUM_DTYPES);
  CHECK(mf_op_output_dtype(y.op, 1) == MF_NUM_DTYPES &&
        mf_op_output_dtype(y.op, -1) == MF_NUM_DTYPES);
  CHECK(mf_op_output_ndim(NULL, 0) == -1 && mf_op_output_ndim(y.op, 1) == -1);
  CHECK(mf_op_output_dims(NULL, 0) == NULL && mf_op_output_dims(y.op, 7) == NULL);
  CHECK(mf_op_output_dims(y.op, -7) == NULL);
  CHECK(mf_op_output_ndim(y.op, 0) == 1 && mf_op_output_dims(y.op, 0)[0] == 2);
  int64_t iv;
  const int64_t *dv;
  int nd;
  CHECK(mf_op_get_attr_int(NULL, "dtype", &iv) == 0);
  CHECK(mf_op_get_attr_int(x.op, NULL, &iv) == 0);
  CHECK(mf_op_get_attr_int(x.op, "dtype", NULL) == 0);
  CHECK(mf_op_get_attr_shape(NULL, "shape", &dv, &nd) == 0);
  CHECK(mf_op_get_attr_shape(x.op, NULL, &dv, &nd) == 0);
  CHECK(mf_op_get_attr_shape(x.op, "shape", NULL, &nd) == 0);
  CHECK(mf_op_get_attr_shape(x.op, "shape", &dv, NULL) == 0);
  CHECK(mf_op_get_attr_shape(x.op, "shape", &dv, &nd) == 1 && nd == 1);
  double fv;
  int bv;
  mf_dtype tv;
  const char *sv;
  mf_tensor *tt;
  CHECK(mf_op_get_attr_float(NULL, "a", &fv) == 0 && mf_op_get_attr_float(x.op, NULL, &fv) == 0);
  CHECK(mf_op_get_attr_float(x.op, "shape", NULL) == 0);
  CHECK(mf_op_get_attr_bool(NULL, "a", &bv) == 0 && mf_op_get_attr_bool(x.op, NULL, &bv) == 0);
  CHECK(mf_op_get_attr_bool(x.op, "shape", NULL) == 0);
  CHECK(mf_op_get_attr_type(NULL, "dtype", &tv) == 0 && mf_op_get_attr_type(x.op, NULL, &tv) == 0);
  CHECK(mf_op_get_attr_type(x.op, "dtype", NULL) == 0);
  CHECK(mf_op_get_attr_string(NULL, "a", &sv) == 0 && mf_op_get_attr_string(x.op, NULL, &sv) == 0);
  CHECK(mf_op_get_attr_string(x.op, "shape", NULL) == 0);
  CHECK(mf_op_get_attr_ints(NULL, "a", &dv, &nd) == 0 &&
        mf_op_get_attr_ints(x.op, NULL, &dv, &nd) == 0);
  CHECK(mf_op_get_attr_ints(x.op, "a", NULL, &nd) == 0 &&
        mf_op_get_attr_ints(x.op, "a", &dv, NULL) == 0);
  CHECK(mf_op_get_attr_tensor(NULL, "value", &tt) == 0 &&
        mf_op_get_attr_tensor(x.op, NULL, &tt) == 0);
  CHECK(mf_op_get_attr_tensor(x.op, "value", NULL) == 0);
  { /* what the getter gives is the caller's: writing it never changes the graph's constant */
    float one = 1.0f;
    mf_output c = const_f32(g, "getter_const", 0, NULL, &one, s);
    mf_tensor *got = NULL;
    CHECK(c.op && mf_op_get_attr_tensor(c.op, "value", &got) == 1 && got);
    float *w = got ? mf_tensor_mutable_data(got, s) : NULL;
    if (w) *w = 42.0f;
    mf_tensor *again = NULL;
    CHECK(mf_op_get_attr_tensor(c.op, "value", &again) == 1 && again &&
          *(const float *)mf_tensor_data(again) == 1.0f);
    mf_tensor_delete(got), mf_tensor_delete(again);
  }
  CHECK(mf_op_num_attrs(NULL) == 0);
  CHECK(mf_op_attr_name(NULL, 0) == NULL && mf_op_attr_name(x.op, -1) == NULL);
  CHECK(mf_op_attr_name(x.op, INT32_MAX) == NULL);
  CHECK(mf_op_attr_kind(NULL, 0) == -1 && mf_op_attr_kind(x.op, -1) == -1);
  CHECK(mf_op_attr_kind(x.op, INT32_MAX) == -1);
  CHECK(mf_attr_kind_name((mf_attr_kind)-1) == NULL && mf_attr_kind_name((mf_attr_kind)99) == NULL);
  CHECK(mf_op_def_get(NULL) == NULL && mf_op_def_get("NoSuchOp") == NULL);
  const mf_op_def *od = mf_op_def_get("Add");
  CHECK(mf_op_def_type(NULL) == NULL && mf_op_def_doc(NULL) == NULL);
  CHECK(mf_op_def_min_inputs(NULL) == -1 && mf_op_def_max_inputs(NULL) == -1);
  CHECK(mf_op_def_num_inputs(NULL) == 0 && mf_op_def_num_outputs(NULL) == 0);
  CHECK(mf_op_def_num_attrs(NULL) == 0);
  CHECK(mf_op_def_input_name(NULL, 0) == NULL && mf_op_def_input_name(od, -1) == NULL);
  CHECK(mf_op_def_input_name(od, INT32_MAX) == NULL);
  CHECK(mf_op_def_input_flags(NULL, 0) == -1 && mf_op_def_input_flags(od, -1) == -1);
  CHECK(mf_op_def_output_name(NULL, 0) == NULL && mf_op_def_output_name(od, 5) == NULL);
  CHECK(mf_op_def_output_flags(NULL, 0) == -1 && mf_op_def_output_flags(od, -1) == -1);
  CHECK(mf_op_def_attr_name(NULL, 0) == NULL && mf_op_def_attr_name(od, 0) == NULL);
  CHECK(mf_op_def_attr_kind(NULL, 0) == -1 && mf_op_def_attr_kind(od, -1) == -1);
  CHECK(mf_op_def_attr_default(NULL, 0) == NULL && mf_op_def_attr_default(od, 9) == NULL);
  CHECK(mf_op_def_attr_required(NULL, 0) == 0 && mf_op_def_attr_required(od, -1) == 0);
  CHECK(mf_op_type_exists(NULL) == 0);
  CHECK(mf_op_type_name(-1) == NULL && mf_op_type_name(INT32_MAX) == NULL);
  CHECK(mf_op_type_has_gradient(NULL) == 0);
  CHECK(mf_op_type_num_ref_inputs(NULL) == 0);
  CHECK(mf_op_type_num_ref_inputs("NoSuchOp") == 0);

  /* Gradients */
  mf_output dx;
  mf_gradients(NULL, &y, 1, &x, 1, NULL, &dx, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_gradients: graph is NULL");
  mf_gradients(g, NULL, 1, &x, 1, NULL, &dx, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "ys is NULL");
  mf_gradients(g, &y, 1, NULL, 1, NULL, &dx, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "xs is NULL");
  mf_gradients(g, &y, 1, &x, 1, NULL, NULL, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "dx is NULL");
  mf_gradients(g, &y, -1, &x, 1, NULL, &dx, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "ny is negative");
  mf_gradients(g, &y, 1, &x, -5, NULL, &dx, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "nx is negative");
  mf_output none = {NULL, 0}, far = {y.op, 9};
  mf_gradients(g, &none, 1, &x, 1, NULL, &dx, s);
  CHECK_FAIL(s);
  mf_gradients(g, &far, 1, &x, 1, NULL, &dx, s);
  CHECK_FAIL(s);
  mf_gradients(g, &y, 1, &x, 1, &far, &dx, s);
  CHECK_FAIL(s);
  mf_gradients(g, &y, 1, &x, 1, NULL, &dx, NULL);
  mf_graph_delete(g);
}

static void abuse_sessions(mf_status *s)
{
  mf_output x, y;
  mf_op *v;
  mf_graph *g = small_graph(&x, &y, &v, s);
  mf_session_config_init(NULL);
  CHECK(!mf_session_new(NULL, NULL, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_session_new: graph is NULL");
  CHECK(!mf_session_new(NULL, NULL, NULL));

  /* Thread counts far past the machine's are clamped, OpenBLAS's too. */
  mf_session_config c;
  mf_session_config_init(&c);
  c.inter_op_threads = 1000000000, c.intra_op_threads = 1000000000;
  mf_session *sess = mf_session_new(g, &c, s);
  CHECK_OK(s);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  CHECK(openblas_get_num_threads() <= cpus);
  mf_session_delete(sess);
  c.inter_op_threads = -7, c.intra_op_threads = -7;
  sess = mf_session_new(g, &c, s);
  CHECK_OK(s);

  float two[2] = {1, 2};
  int64_t d2 = 2;
  mf_tensor *xt = tensor_f32(1, &d2, two, s), *out = NULL;
  mf_op *targets[1] = {y.op};
  /* negative counts: refused before anything is sized from them */
  mf_session_run(sess, &x, &xt, 1, &y, &out, 1, targets, -1, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_session_run: ntargets is negative");
  mf_session_run(sess, &x, &xt, -1, &y, &out, 1, targets, 1, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_session_run: nfeeds is negative");
  mf_session_run(sess, &x, &xt, 1, &y, &out, -3, targets, 1, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_session_run: nfetches is negative");
  mf_session_run(sess, &x, &xt, 1, &y, &out, 1, targets, INT32_MIN, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "ntargets is negative");
  CHECK(out == NULL);
  /* NULL arrays with positive counts */
  mf_session_run(NULL, &x, &xt, 1, &y, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_session_run: sess is NULL");
  mf_session_run(sess, NULL, &xt, 1, &y, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "feeds is NULL");
  mf_session_run(sess, &x, NULL, 1, &y, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "feed_values is NULL");
  mf_session_run(sess, &x, &xt, 1, NULL, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "fetches is NULL");
  mf_session_run(sess, &x, &xt, 1, &y, NULL, 1, NULL, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "fetch_values is NULL");
  mf_session_run(sess, &x, &xt, 1, &y, &out, 1, NULL, 1, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "targets is NULL");
  /* bad elements */
  mf_tensor *nullt = NULL;
  mf_op *nullop = NULL;
  mf_output far = {y.op, 3}, neg = {y.op, -1}, none = {NULL, 0};
  mf_session_run(sess, &x, &nullt, 1, &y, &out, 1, NULL, 0, s);
  CHECK_FAIL(s);
  mf_session_run(sess, &x, &xt, 1, &far, &out, 1, NULL, 0, s);
  CHECK_FAIL(s);
  mf_session_run(sess, &x, &xt, 1, &neg, &out, 1, NULL, 0, s);
  CHECK_FAIL(s);
  mf_session_run(sess, &none, &xt, 1, &y, &out, 1, NULL, 0, s);
  CHECK_FAIL(s);
  mf_session_run(sess, &x, &xt, 1, &y, &out, 1, &nullop, 1, s);
  CHECK_FAIL(s);
  mf_session_run(sess, &x, &xt, 1, &y, &out, 1, NULL, 0, NULL); /* no status */
  mf_tensor_delete(out);
  out = NULL;

  /* Tracing */
  mf_session_set_tracing(NULL, 1);
  mf_op_trace tr[4];
  CHECK(mf_session_trace(NULL, tr, 4) == -1);
  CHECK(mf_session_trace(sess, NULL, 4) == -1);
  CHECK(mf_session_trace(sess, tr, -1) == -1);
  CHECK(mf_session_trace(sess, NULL, 0) >= 0);

  /* Checkpoint files: the index writer and the stale-temp sweep */
  mf_checkpoint_write_file(NULL, "x", 1, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_checkpoint_write_file");
  mf_checkpoint_write_file("/tmp/mf_abuse_index", NULL, 4, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_checkpoint_write_file");
  mf_checkpoint_write_file(NULL, NULL, 0, NULL);
  CHECK(mf_checkpoint_remove_stale_temps(NULL, s) == -1);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_checkpoint_remove_stale_temps");
  CHECK(mf_checkpoint_remove_stale_temps("/tmp/", s) == -1);
  CHECK(mf_checkpoint_remove_stale_temps(NULL, NULL) == -1);
  CHECK(mf_checkpoint_list(NULL, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_checkpoint_list: path is NULL");
  CHECK(mf_checkpoint_list("", NULL) == NULL);
  mf_checkpoint_contents_delete(NULL);
  CHECK(mf_checkpoint_contents_count(NULL) == 0 && mf_checkpoint_contents_name(NULL, 0) == NULL);
  CHECK(mf_checkpoint_contents_dtype(NULL, 0) == MF_NUM_DTYPES);
  CHECK(mf_checkpoint_contents_file_dtype(NULL, 0) == NULL);
  CHECK(mf_checkpoint_contents_ndim(NULL, 0) == -1 && mf_checkpoint_contents_dims(NULL, 0) == NULL);

  /* Saved models */
  const char *bad_tags[1] = {NULL};
  CHECK(mf_model_load(NULL, NULL, 0, NULL, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_model_load: dir is NULL");
  CHECK(mf_model_load("/tmp", NULL, -1, NULL, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_model_load: ntags is negative");
  CHECK(mf_model_load("/tmp", NULL, 1, NULL, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_model_load: tags is NULL");
  CHECK(mf_model_load("/tmp", bad_tags, 1, NULL, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_model_load: tags[0] is NULL");
  CHECK(mf_model_load("/nonexistent/mf_abuse_model", NULL, 0, NULL, s) == NULL);
  CHECK_ERR(s, MF_NOT_FOUND, "/nonexistent/mf_abuse_model/saved_model.pb");
  CHECK(mf_model_load(NULL, NULL, 0, NULL, NULL) == NULL);
  mf_model_delete(NULL);
  size_t meta_len = 7;
  CHECK(mf_model_graph(NULL) == NULL && mf_model_session(NULL) == NULL);
  CHECK(mf_model_meta_graph(NULL, &meta_len) == NULL && meta_len == 0);
  CHECK(mf_model_meta_graph(NULL, NULL) == NULL);
  CHECK(mf_model_num_signatures(NULL) == 0 && mf_model_signature(NULL, 0) == NULL);
  CHECK(mf_model_signature_by_key(NULL, "serving_default") == NULL);
  CHECK(mf_signature_key(NULL) == NULL && mf_signature_method(NULL) == NULL);
  CHECK(mf_signature_num_tensors(NULL, MF_SIG_INPUTS) == 0);
  CHECK(mf_signature_tensor_name(NULL, MF_SIG_OUTPUTS, 0) == NULL);
  CHECK(mf_signature_tensor(NULL, MF_SIG_INPUTS, -1).op == NULL);
  CHECK(mf_signature_find(NULL, MF_SIG_OUTPUTS, NULL).op == NULL);

  /* Checkpoints */
  const char *names[1] = {"v"}, *nullname[1] = {NULL};
  mf_op *vars[1] = {v}, *nullvar[1] = {NULL}, *notvar[1] = {y.op};
  char path[] = "/tmp/mf_abuse_XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  void (*fns[2])(mf_session *, mf_op *const *, const char *const *, int, const char *,
                 mf_status *) = {mf_checkpoint_save, mf_checkpoint_restore};
  for (int k = 0; k < 2; k++) {
    fns[k](NULL, vars, names, 1, path, s);
    CHECK_ERR(s, MF_INVALID_ARGUMENT, k ? "mf_checkpoint_restore" : "mf_checkpoint_save");
    fns[k](sess, NULL, names, 1, path, s);
    CHECK_FAIL(s);
    fns[k](sess, vars, NULL, 1, path, s);
    CHECK_FAIL(s);
    fns[k](sess, vars, names, 1, NULL, s);
    CHECK_FAIL(s);
    fns[k](sess, vars, names, -1, path, s);
    CHECK_FAIL(s);
    fns[k](sess, nullvar, names, 1, path, s);
    CHECK_FAIL(s);
    fns[k](sess, vars, nullname, 1, path, s);
    CHECK_FAIL(s);
    fns[k](sess, notvar, names, 1, path, s);
    CHECK_FAIL(s);
    fns[k](sess, vars, names, 1, path, NULL);
  }
  unlink(path);

  mf_session_close(NULL);
  mf_session_delete(NULL);
  mf_session_close(sess);
  mf_session_run(sess, &x, &xt, 1, &y, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_FAILED_PRECONDITION, "closed");
  CHECK(mf_session_trace(sess, tr, 4) == 0);
  mf_session_delete(sess);
  mf_tensor_delete(xt);
  mf_graph_delete(g);
}

/* Host callbacks: without a hook (a C host), LuaFunc and Print's callback
 * stream fail naming the op; a C hook serves them; a hook's error, or an
 * output it leaves unset, becomes the op's error. */
static char printed[256];

static void c_hook(void *ctx, mf_host_call *call, mf_status *s)
{
  int mode = *(int *)ctx;
  if (call->text) {
    snprintf(printed, sizeof printed, "%s", call->text);
    return;
  }
  if (mode == 1) {
    mf_status_set(s, MF_INVALID_ARGUMENT, "the host refused");
    return;
  }
  if (mode == 2) return; /* sets no output */
  CHECK(call->nin == 1 && call->nout == 1 && call->tout[0] == MF_FLOAT32 && call->func == 7);
  mf_tensor *t =
      mf_tensor_new(MF_FLOAT32, mf_tensor_ndim(call->in[0]), mf_tensor_dims(call->in[0]), s);
  if (!t) return;
  float *d = mf_tensor_mutable_data(t, s);
  for (int64_t i = 0; i < mf_tensor_numel(t); i++) d[i] = 2 * fdata(call->in[0])[i];
  call->out[0] = t;
}

static void abuse_host_calls(mf_status *s)
{
  CHECK(mf_set_host_callback(NULL, NULL) == NULL);
  mf_graph *g = mf_graph_new();
  int64_t dims[1] = {3};
  float vals[3] = {1, -2, 3};
  mf_output x = const_f32(g, "x", 1, dims, vals, s);
  mf_op_desc *d = mf_op_begin(g, "LuaFunc", "f");
  mf_op_add_input(d, x);
  mf_op_set_attr_int(d, "func", 7);
  mf_op_set_attr_string(d, "Tout", "float32");
  mf_op_set_location(d, "model.lua:4");
  mf_output f = {mf_op_finish(d, s), 0};
  CHECK_OK(s);
  d = mf_op_begin(g, "PrintV2", "p");
  mf_op_add_input(d, x);
  mf_op_set_attr_string(d, "template", "x=%v");
  mf_op_set_attr_string(d, "stream", "callback");
  mf_op_set_attr_int(d, "func", 8);
  mf_op *p = mf_op_finish(d, s);
  CHECK_OK(s);
  d = mf_op_begin(g, "LuaFunc", "bad_tout");
  mf_op_set_attr_int(d, "func", 1);
  mf_op_set_attr_string(d, "Tout", "float32,nonsense");
  CHECK(!mf_op_finish(d, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "Tout must list");
  d = mf_op_begin(g, "PrintV2", "bad_template");
  mf_op_add_input(d, x);
  mf_op_set_attr_string(d, "template", "no values");
  CHECK(!mf_op_finish(d, s));
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "shows 0 values but it has 1 data inputs");

  mf_session *sess = mf_session_new(g, NULL, s);
  mf_tensor *out = NULL;
  mf_session_run(sess, NULL, NULL, 0, &f, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_FAILED_PRECONDITION,
            "LuaFunc 'f' (created at model.lua:4): it runs a Lua function");
  CHECK_ERR(s, MF_FAILED_PRECONDITION, "no host callback");
  mf_session_run(sess, NULL, NULL, 0, NULL, NULL, 0, &p, 1, s);
  CHECK_ERR(s, MF_FAILED_PRECONDITION, "PrintV2 'p'");

  int mode = 0;
  CHECK(mf_set_host_callback(c_hook, &mode) == NULL);
  mf_session_run(sess, NULL, NULL, 0, &f, &out, 1, &p, 1, s);
  CHECK_OK(s);
  CHECK(out && mf_tensor_numel(out) == 3 && fdata(out)[1] == -4.0f);
  CHECK(strcmp(printed, "x=[1 -2 3]") == 0);
  mf_tensor_delete(out);
  mode = 1;
  mf_session_run(sess, NULL, NULL, 0, &f, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "LuaFunc 'f' (created at model.lua:4): the host refused");
  mode = 2;
  mf_session_run(sess, NULL, NULL, 0, &f, &out, 1, NULL, 0, s);
  CHECK_ERR(s, MF_INTERNAL, "gave no float32 value for output 1");
  CHECK(mf_set_host_callback(NULL, NULL) == c_hook);
  mf_session_delete(sess);
  mf_graph_delete(g);
}

static void abuse_devices(mf_status *s)
{
  CHECK(mf_gpu_count() >= 0);
  CHECK(mf_device_count() >= 1);
  CHECK(mf_device_name(-1) == NULL && mf_device_name(INT32_MAX) == NULL);
  CHECK(mf_device_type(-1) == NULL && mf_device_type(INT32_MAX) == NULL);
  mf_memory_stats st;
  CHECK(mf_device_memory_stats(0, NULL) == 0);
  CHECK(mf_device_memory_stats(-1, &st) == 0 && mf_device_memory_stats(INT32_MAX, &st) == 0);
  mf_allocator_trim();
  CHECK(mf_kernel_backend_name(-1) == NULL && mf_kernel_backend_name(INT32_MAX) == NULL);
  CHECK(mf_op_type_has_kernel(NULL, "cpu") == 0);
  CHECK(mf_op_type_has_kernel("Add", NULL) == 0);
  CHECK(mf_op_type_has_kernel("NoSuchOp", "cpu") == 0);
  CHECK(mf_cpu_gemm_kernel() != NULL);
  /* MPI: NULL statuses, bad timeouts; nothing is initialized here */
  CHECK(mf_mpi_built() == 0 || mf_mpi_built() == 1);
  CHECK(mf_mpi_initialized() == 0);
  CHECK(mf_mpi_rank() == -1 && mf_mpi_size() == -1);
  CHECK(mf_mpi_local_rank() == -1 && mf_mpi_local_size() == -1);
  CHECK(mf_mpi_finalize(NULL) == 1); /* nothing to finalize */
  CHECK(mf_mpi_finalize(s) == 1);
  CHECK_OK(s);
  double t = mf_mpi_timeout();
  mf_mpi_set_timeout(-1);
  mf_mpi_set_timeout(0);
  mf_mpi_set_timeout(0.0 / 0.0);
  CHECK(mf_mpi_timeout() == t);
  CHECK(mf_mpi_calls() == 0);
  if (!mf_mpi_built()) {
    CHECK(mf_mpi_init(s) == 0);
    CHECK_FAIL(s);
    CHECK(strstr(mf_status_message(s), "openmpi") != NULL);
  }
  /* moonflow_cuda.h */
  CHECK(mf_cuda_built() == 0 || mf_cuda_built() == 1);
  CHECK(mf_cuda_device_count() >= 0);
  mf_cuda_device_info info;
  mf_cuda_device_info_get(0, NULL, s);
  CHECK_FAIL(s);
  mf_cuda_device_info_get(-1, &info, s);
  CHECK_FAIL(s);
  mf_cuda_device_info_get(INT32_MAX, &info, s);
  CHECK_FAIL(s);
  mf_cuda_device_info_get(0, NULL, NULL);
}

/* Restoring from a FIFO (or any special file) is refused at once: opening
 * one for reading would wait for a writer for ever. An alarm turns a hang
 * into a failure. */
static void restore_from_fifo(mf_status *s)
{
  mf_output x, y;
  mf_op *v;
  mf_graph *g = small_graph(&x, &y, &v, s);
  mf_session *sess = mf_session_new(g, NULL, s);
  char dir[] = "/tmp/mf_fifo_XXXXXX", path[64];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/ckpt", dir);
  CHECK(mkfifo(path, 0600) == 0);
  const char *names[1] = {"v"};
  alarm(20);
  mf_checkpoint_restore(sess, &v, names, 1, path, s);
  alarm(0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "not a regular file");
  mf_checkpoint_restore(sess, &v, names, 1, "/dev/null", s); /* a character device */
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "not a regular file");
  mf_checkpoint_restore(sess, &v, names, 1, dir, s); /* a directory */
  CHECK_FAIL(s);
  unlink(path);
  rmdir(dir);
  mf_session_delete(sess);
  mf_graph_delete(g);
}

/* Summary writers: NULL writers, statuses, tags and buffers; a closed writer. */
static void abuse_summaries(mf_status *s)
{
  CHECK(mf_summary_writer_new(NULL, s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_new: logdir");
  CHECK(mf_summary_writer_new("", s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_new: logdir");
  CHECK(mf_summary_writer_new("/tmp", NULL) == NULL);
  CHECK(mf_summary_writer_new("/dev/null/x", s) == NULL);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "cannot create logdir");
  CHECK(mf_summary_writer_path(NULL) == NULL);
  mf_summary_writer_add_scalar(NULL, "t", 1, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_scalar: writer");
  mf_summary_writer_add_histogram(NULL, "t", NULL, 0, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_histogram: writer");
  mf_summary_writer_add_text(NULL, "t", "x", 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_text: writer");
  mf_summary_writer_add_image(NULL, "t", NULL, 1, 1, 1, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_image: writer");
  mf_summary_writer_add_summary(NULL, "", 0, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_summary: writer");
  mf_summary_writer_add_event_bytes(NULL, "", 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_event_bytes: writer");
  mf_summary_writer_add_graph(NULL, NULL, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_graph: writer");
  mf_summary_writer_flush(NULL, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_flush: writer");
  mf_summary_writer_close(NULL, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_close: writer");
  mf_summary_writer_close(NULL, NULL);
  mf_summary_writer_delete(NULL);
  CHECK(mf_summary_metadata(NULL, NULL, 0, s) == -1);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_metadata: plugin_name");
  CHECK(mf_summary_metadata("text", NULL, 8, s) == -1);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_metadata: buf");
  CHECK(mf_summary_metadata("text", NULL, 0, NULL) == -1);
  CHECK(mf_summary_metadata("text", NULL, 0, s) > 0);

  char dir[] = "/tmp/mf_abuse_sum_XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  mf_summary_writer *w = mf_summary_writer_new(dir, s);
  CHECK_OK(s);
  mf_summary_writer_add_scalar(w, "t", 1, 0, NULL); /* no status: nothing */
  mf_summary_writer_add_histogram(w, "t", NULL, 3, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_histogram: values");
  mf_summary_writer_add_histogram(w, "t", NULL, -1, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_histogram: values");
  mf_summary_writer_add_histogram(w, "empty", NULL, 0, 0, s);
  CHECK_OK(s);
  mf_summary_writer_add_text(w, "t", NULL, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_text: text");
  mf_summary_writer_add_image(w, "t", NULL, 1, 1, 1, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_image: pixels");
  uint8_t px[4] = {0};
  mf_summary_writer_add_image(w, "t", px, 0, 1, 1, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_image: height");
  mf_summary_writer_add_image(w, "t", px, 1, INT32_MAX, 1, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_image: height");
  mf_summary_writer_add_summary(w, NULL, 4, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_summary: bytes");
  mf_summary_writer_add_event_bytes(w, NULL, 4, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_event_bytes: bytes");
  mf_summary_writer_add_graph(w, NULL, 0, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_summary_writer_add_graph: graph");
  mf_summary_writer_close(w, s);
  CHECK_OK(s);
  mf_summary_writer_add_text(w, "t", "x", 0, s);
  CHECK_ERR(s, MF_FAILED_PRECONDITION, "closed");
  mf_summary_writer_delete(w);
  CHECK(remove_tree(dir));
}

int main(void)
{
  mf_status *s = mf_status_new();
  abuse_status();
  abuse_tensors(s);
  abuse_graphs(s);
  abuse_sessions(s);
  abuse_host_calls(s);
  abuse_devices(s);
  abuse_summaries(s);
  restore_from_fifo(s);
  mf_status_delete(s);
  return check_report("test_abuse");
}
