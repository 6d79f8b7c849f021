/* libFuzzer target: the whole restore path, mf_checkpoint_restore from a
 * file into a session (reading, parsing, verifying, loading, and setting the
 * variables), beyond the safetensors parser alone (fuzz_safetensors), and
 * mf_checkpoint_list of the same file (a success lists well-formed entries
 * in order). The session holds seven variables of every dtype, one with a
 * partly unknown shape and one never initialized. Each input is written to a temporary
 * file of this process and restored twice: into all the variables, then
 * into a subset picked by the input's last byte, in another order. The
 * invariant (issue 15): a failed restore never changes a variable's value,
 * and a refusal always sets the status. The seed corpus
 * (tests/fuzz/corpus/checkpoint_restore) is written by moonflow's own Saver:
 * tests/fuzz/make_checkpoint_seeds.lua. */
#include "moonflow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NVARS 7
#define UNINIT 6 /* the variable no assign ever runs for */

static const char *const names[NVARS] = {"w", "layer/d", "k", "step", "bytes", "mask", "u"};
static const mf_dtype dtypes[NVARS] = {MF_FLOAT32, MF_FLOAT64, MF_INT32,  MF_INT64,
                                       MF_UINT8,   MF_BOOL,    MF_FLOAT32};
static const int ndims[NVARS] = {2, 1, 0, 0, 1, 1, 2};
static const int64_t decl_dims[NVARS][2] = {{2, 3}, {4}, {0}, {0}, {5}, {3}, {-1, 2}};

/* The initial values (set by assigns from constants), compared bytewise so
 * -0.0, NaN payloads and denormals count. */
static const float w0[6] = {1.5f, -2.25f, 3.0f, 1e-20f, -0.0f, 123456.78f};
static const double d0[4] = {3.141592653589793, -1e300, 2.5e-310, 42};
static const int32_t k0 = -123456789;
static const int64_t step0 = INT64_MIN + 7;
static const uint8_t bytes0[5] = {0, 1, 127, 128, 255};
static const uint8_t mask0[3] = {1, 0, 1};
static const void *const init[NVARS] = {w0, d0, &k0, &step0, bytes0, mask0, NULL};
static const size_t init_bytes[NVARS] = {sizeof w0,     sizeof d0,    sizeof k0, sizeof step0,
                                         sizeof bytes0, sizeof mask0, 0};

static mf_graph *graph;
static mf_op *vars[NVARS], *assigns[NVARS];
static mf_session *sess;
static char path[64];

static void fail(const char *what, mf_status *s)
{
  fprintf(stderr, "fuzz_checkpoint_restore: %s: %s\n", what, s ? mf_status_message(s) : "");
  abort();
}

static void remove_file(void) { unlink(path); }

static void build(void)
{
  mf_status *s = mf_status_new();
  graph = mf_graph_new();
  for (int i = 0; i < NVARS; i++) {
    mf_op_desc *d = mf_op_begin(graph, "VariableV2", names[i]);
    mf_op_set_attr_type(d, "dtype", dtypes[i]);
    mf_op_set_attr_shape(d, "shape", decl_dims[i], ndims[i]);
    if (!(vars[i] = mf_op_finish(d, s))) fail("VariableV2", s);
    if (i == UNINIT) continue;
    mf_tensor *t = mf_tensor_new(dtypes[i], ndims[i], decl_dims[i], s);
    void *p = t ? mf_tensor_mutable_data(t, s) : NULL;
    if (!p || mf_tensor_nbytes(t) != init_bytes[i]) fail("initial value", s);
    memcpy(p, init[i], init_bytes[i]);
    char name[32];
    snprintf(name, sizeof name, "init%d", i);
    d = mf_op_begin(graph, "Const", name);
    mf_op_set_attr_tensor(d, "value", t);
    mf_op_set_attr_type(d, "dtype", dtypes[i]);
    mf_tensor_delete(t);
    mf_op *c = mf_op_finish(d, s);
    if (!c) fail("Const", s);
    snprintf(name, sizeof name, "assign%d", i);
    d = mf_op_begin(graph, "Assign", name);
    mf_op_add_input(d, (mf_output){vars[i], 0});
    mf_op_add_input(d, (mf_output){c, 0});
    if (!(assigns[i] = mf_op_finish(d, s))) fail("Assign", s);
  }
  mf_status_delete(s);
}

/* A new session holding the initial values (u uninitialized). */
static void fresh_session(void)
{
  mf_status *s = mf_status_new();
  mf_session_delete(sess);
  mf_session_config c;
  mf_session_config_init(&c);
  c.intra_op_threads = 1;
  if (!(sess = mf_session_new(graph, &c, s))) fail("mf_session_new", s);
  mf_op *targets[NVARS - 1];
  for (int i = 0; i < NVARS - 1; i++) targets[i] = assigns[i];
  mf_session_run(sess, NULL, NULL, 0, NULL, NULL, 0, targets, NVARS - 1, s);
  if (mf_status_code(s) != MF_OK) fail("initializing", s);
  mf_status_delete(s);
}

static void setup(void)
{
  const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(path, sizeof path, "%s/mf_fuzz_restore.%ld", dir, (long)getpid());
  atexit(remove_file);
  build();
  fresh_session();
}

/* Aborts unless the session still holds the initial values, and u is still
 * uninitialized. */
static void check_unchanged(const char *after)
{
  mf_status *s = mf_status_new();
  mf_output outs[NVARS - 1];
  mf_tensor *vals[NVARS - 1] = {0};
  for (int i = 0; i < NVARS - 1; i++) outs[i] = (mf_output){vars[i], 0};
  mf_session_run(sess, NULL, NULL, 0, outs, vals, NVARS - 1, NULL, 0, s);
  if (mf_status_code(s) != MF_OK) fail("fetching the variables", s);
  for (int i = 0; i < NVARS - 1; i++) {
    if (mf_tensor_dtype(vals[i]) != dtypes[i] || mf_tensor_ndim(vals[i]) != ndims[i] ||
        mf_tensor_nbytes(vals[i]) != init_bytes[i] ||
        memcmp(mf_tensor_data(vals[i]), init[i], init_bytes[i]) != 0) {
      fprintf(stderr, "variable '%s' changed by a failed restore (%s)\n", names[i], after);
      abort();
    }
    mf_tensor_delete(vals[i]);
  }
  mf_output u = {vars[UNINIT], 0};
  mf_tensor *uv = NULL;
  mf_session_run(sess, NULL, NULL, 0, &u, &uv, 1, NULL, 0, s);
  if (mf_status_code(s) != MF_FAILED_PRECONDITION) {
    fprintf(stderr, "variable 'u' initialized by a failed restore (%s)\n", after);
    abort();
  }
  mf_status_delete(s);
}

/* After a successful restore: every restored variable has its dtype and a
 * shape its declaration allows. Then back to the initial state. */
static void check_restored(mf_op *const *vs, const int *which, int n)
{
  mf_status *s = mf_status_new();
  for (int k = 0; k < n; k++) {
    int i = which[k];
    mf_output o = {vs[k], 0};
    mf_tensor *v = NULL;
    mf_session_run(sess, NULL, NULL, 0, &o, &v, 1, NULL, 0, s);
    if (mf_status_code(s) != MF_OK) fail("fetching a restored variable", s);
    int ok = mf_tensor_dtype(v) == dtypes[i] && mf_tensor_ndim(v) == ndims[i];
    for (int d = 0; ok && d < ndims[i]; d++)
      ok = decl_dims[i][d] < 0 || mf_tensor_dims(v)[d] == decl_dims[i][d];
    if (!ok) {
      fprintf(stderr, "restored variable '%s' has the wrong dtype or shape\n", names[i]);
      abort();
    }
    mf_tensor_delete(v);
  }
  mf_status_delete(s);
  fresh_session();
}

static void restore(mf_op *const *vs, const char *const *ns, const int *which, int n,
                    const char *what)
{
  mf_status *s = mf_status_new();
  mf_checkpoint_restore(sess, vs, ns, n, path, s);
  if (mf_status_code(s) == MF_OK) {
    check_restored(vs, which, n);
  } else {
    if (!mf_status_message(s)[0]) fail("a refusal without a message", NULL);
    check_unchanged(what);
  }
  mf_status_delete(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!graph) setup();
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  if (size && fwrite(data, 1, size, f) != size) {
    fclose(f);
    return 0;
  }
  if (fclose(f) != 0) return 0;

  /* listed without a session: any success gives well-formed entries */
  mf_status *ls = mf_status_new();
  mf_checkpoint_contents *c = mf_checkpoint_list(path, ls);
  if (!c && !mf_status_message(ls)[0]) fail("a listing refused without a message", NULL);
  for (int i = 0; i < mf_checkpoint_contents_count(c); i++) {
    const char *nm = mf_checkpoint_contents_name(c, i);
    const char *fd = mf_checkpoint_contents_file_dtype(c, i);
    int nd = mf_checkpoint_contents_ndim(c, i);
    const int64_t *dims = mf_checkpoint_contents_dims(c, i);
    if (!nm || !fd || !*fd || nd < 0 || nd > 64 || !dims) fail("a malformed listing", NULL);
    for (int d = 0; d < nd; d++)
      if (dims[d] < 0) fail("a negative dimension listed", NULL);
    if (i > 0 && strcmp(mf_checkpoint_contents_name(c, i - 1), nm) > 0)
      fail("a listing out of order", NULL);
  }
  mf_checkpoint_contents_delete(c);
  mf_status_delete(ls);

  /* every variable, in declaration order */
  int all[NVARS];
  for (int i = 0; i < NVARS; i++) all[i] = i;
  restore(vars, names, all, NVARS, "all variables");

  /* a subset in reverse order, from the last byte (never empty) */
  unsigned mask = size ? data[size - 1] : 0;
  mask = (mask & ((1u << NVARS) - 1)) ? mask : 1u;
  mf_op *vs[NVARS];
  const char *ns[NVARS];
  int which[NVARS], n = 0;
  for (int i = NVARS - 1; i >= 0; i--)
    if (mask & (1u << i)) vs[n] = vars[i], ns[n] = names[i], which[n++] = i;
  restore(vs, ns, which, n, "a subset");
  return 0;
}
