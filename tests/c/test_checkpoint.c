/* Checkpoints through the C API: save and restore of variables of several
 * dtypes and shapes, the safetensors layout on disk, every error case with
 * the session keeping its values, files from other writers, and a loop of
 * truncations and byte flips that must each load or fail cleanly (run it
 * under AddressSanitizer). */
#include "../../csrc/fileio.h"
#include "check.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---------------------------------------------------------------- fixture */

static char dir[64];

static char *in_dir(const char *name)
{
  static char buf[4][512]; /* room for dir (64) and any name passed here */
  static int k;
  char *b = buf[k++ % 4];
  snprintf(b, sizeof buf[0], "%s/%s", dir, name);
  return b;
}

static int count_files(void)
{
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    if (e->d_name[0] != '.') n++;
  if (d) closedir(d);
  return n;
}

static int tmp_files(void)
{
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    if (strstr(e->d_name, ".tmp.")) n++;
  if (d) closedir(d);
  return n;
}

static void remove_all(void)
{
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));)
    if (e->d_name[0] != '.') unlink(in_dir(e->d_name));
  if (d) closedir(d);
  rmdir(dir);
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)size + 1);
  *n = fread(b, 1, (size_t)size, f);
  fclose(f);
  return b;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
  FILE *f = fopen(path, "wb");
  if (!f) return;
  if (n) fwrite(p, 1, n, f);
  fclose(f);
}

/* Three variables: w float32 {2, 3}, d float64 {4}, k int32 scalar, and u
 * float32 with a partly unknown shape {-1, 2}; each with an Assign from a
 * constant (set A) and another (set B). */
typedef struct {
  mf_graph *g;
  mf_op *var[4];
  mf_op *assign_a[4], *assign_b[4];
} model;

static const int64_t w_dims[2] = {2, 3}, d_dims[1] = {4}, u_dims[2] = {3, 2};
static const float w_a[6] = {1.5f, -2.25f, 3.0f, 1e-20f, -0.0f, 123456.78f};
static const double d_a[4] = {3.141592653589793, -1e300, 2.5e-310, 42};
static const int32_t k_a = -123456789;
static const float u_a[6] = {9, 8, 7, 6, 5, 4};

static mf_op *constant(mf_graph *g, const char *name, mf_dtype dt, int ndim, const int64_t *dims,
                       const void *vals, mf_status *s)
{
  mf_tensor *t = mf_tensor_new(dt, ndim, dims, s);
  void *p = mf_tensor_mutable_data(t, s);
  memcpy(p, vals, mf_tensor_nbytes(t));
  mf_op_desc *d = mf_op_begin(g, "Const", name);
  mf_op_set_attr_tensor(d, "value", t);
  mf_op_set_attr_type(d, "dtype", dt);
  mf_tensor_delete(t);
  return mf_op_finish(d, s);
}

static mf_op *variable(mf_graph *g, const char *name, mf_dtype dt, int ndim, const int64_t *dims,
                       mf_status *s)
{
  mf_op_desc *d = mf_op_begin(g, "VariableV2", name);
  mf_op_set_attr_type(d, "dtype", dt);
  mf_op_set_attr_shape(d, "shape", dims, ndim);
  return mf_op_finish(d, s);
}

static mf_op *assign(mf_graph *g, const char *name, mf_op *var, mf_op *val, mf_status *s)
{
  mf_op_desc *d = mf_op_begin(g, "Assign", name);
  mf_op_add_input(d, (mf_output){var, 0});
  mf_op_add_input(d, (mf_output){val, 0});
  mf_op_set_attr_bool(d, "validate_shape", 0);
  return mf_op_finish(d, s);
}

static void build(model *m, mf_status *s)
{
  mf_graph *g = m->g = mf_graph_new();
  static const int64_t u_decl[2] = {-1, 2};
  static const float w_b[6] = {0}, u_b[6] = {0};
  static const double d_b[4] = {0};
  static const int32_t k_b = 7;
  m->var[0] = variable(g, "w", MF_FLOAT32, 2, w_dims, s);
  m->var[1] = variable(g, "layer/d", MF_FLOAT64, 1, d_dims, s);
  m->var[2] = variable(g, "k", MF_INT32, 0, NULL, s);
  m->var[3] = variable(g, "u", MF_FLOAT32, 2, u_decl, s);
  const mf_dtype dts[4] = {MF_FLOAT32, MF_FLOAT64, MF_INT32, MF_FLOAT32};
  const int nd[4] = {2, 1, 0, 2};
  const int64_t *dims[4] = {w_dims, d_dims, NULL, u_dims};
  const void *a[4] = {w_a, d_a, &k_a, u_a}, *b[4] = {w_b, d_b, &k_b, u_b};
  for (int i = 0; i < 4; i++) {
    char name[32], cname[32];
    snprintf(name, sizeof name, "a%d", i);
    snprintf(cname, sizeof cname, "ca%d", i);
    mf_op *ca = constant(g, cname, dts[i], nd[i], dims[i], a[i], s);
    m->assign_a[i] = assign(g, name, m->var[i], ca, s);
    snprintf(name, sizeof name, "b%d", i);
    snprintf(cname, sizeof cname, "cb%d", i);
    mf_op *cb = constant(g, cname, dts[i], nd[i], dims[i], b[i], s);
    m->assign_b[i] = assign(g, name, m->var[i], cb, s);
  }
}

static void run_targets(mf_session *sess, mf_op **ops, mf_status *s)
{
  mf_session_run(sess, NULL, NULL, 0, NULL, NULL, 0, ops, 4, s);
}

/* 1 when the session's variables hold set A exactly (bytes, so -0.0 and
 * denormals count). */
static int holds_a(mf_session *sess, const model *m)
{
  mf_status *s = mf_status_new();
  mf_output outs[4];
  mf_tensor *vals[4] = {0};
  for (int i = 0; i < 4; i++) outs[i] = (mf_output){m->var[i], 0};
  mf_session_run(sess, NULL, NULL, 0, outs, vals, 4, NULL, 0, s);
  int ok = mf_status_code(s) == MF_OK;
  const void *a[4] = {w_a, d_a, &k_a, u_a};
  const size_t nb[4] = {sizeof w_a, sizeof d_a, sizeof k_a, sizeof u_a};
  for (int i = 0; ok && i < 4; i++)
    ok = mf_tensor_nbytes(vals[i]) == nb[i] && !memcmp(mf_tensor_data(vals[i]), a[i], nb[i]);
  if (ok) ok = mf_tensor_ndim(vals[3]) == 2 && mf_tensor_dims(vals[3])[0] == 3;
  for (int i = 0; i < 4; i++) mf_tensor_delete(vals[i]);
  mf_status_delete(s);
  return ok;
}

static const char *const names[4] = {"w", "layer/d", "k", "u"};

/* ---------------------------------------------------------------- tests */

static uint64_t header_len(const unsigned char *b)
{
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n |= (uint64_t)b[i] << (8 * i);
  return n;
}

static void test_round_trip(void)
{
  mf_status *s = mf_status_new();
  model m;
  build(&m, s);
  CHECK_OK(s);
  mf_session *sess = mf_session_new(m.g, NULL, s);

  /* saving an uninitialized variable names it */
  mf_checkpoint_save(sess, m.var, names, 4, in_dir("never"), s);
  CHECK_ERR(s, MF_FAILED_PRECONDITION, "'w' is uninitialized");
  CHECK(count_files() == 0);

  run_targets(sess, m.assign_a, s);
  CHECK_OK(s);
  CHECK(holds_a(sess, &m));
  const char *path = in_dir("model-1");
  mf_checkpoint_save(sess, m.var, names, 4, path, s);
  CHECK_OK(s);
  CHECK(count_files() == 1 && tmp_files() == 0);

  /* listed without a session, sorted by name */
  mf_checkpoint_contents *c = mf_checkpoint_list(path, s);
  CHECK_OK(s);
  CHECK(mf_checkpoint_contents_count(c) == 4);
  static const char *const sorted[4] = {"k", "layer/d", "u", "w"};
  static const mf_dtype sorted_dt[4] = {MF_INT32, MF_FLOAT64, MF_FLOAT32, MF_FLOAT32};
  static const int sorted_nd[4] = {0, 1, 2, 2};
  for (int i = 0; c && i < 4; i++) {
    CHECK(strcmp(mf_checkpoint_contents_name(c, i), sorted[i]) == 0);
    CHECK(mf_checkpoint_contents_dtype(c, i) == sorted_dt[i]);
    CHECK(mf_checkpoint_contents_ndim(c, i) == sorted_nd[i]);
  }
  CHECK(mf_checkpoint_contents_dims(c, 3)[0] == 2 && mf_checkpoint_contents_dims(c, 3)[1] == 3);
  CHECK(strcmp(mf_checkpoint_contents_file_dtype(c, 1), "F64") == 0);
  CHECK(mf_checkpoint_contents_name(c, 4) == NULL && mf_checkpoint_contents_ndim(c, -1) == -1);
  mf_checkpoint_contents_delete(c);
  CHECK(!mf_checkpoint_list(in_dir("missing"), s));
  CHECK(mf_status_code(s) != MF_OK && strstr(mf_status_message(s), "missing") != NULL);

  /* the layout: header length, padded JSON, packed data sorted by name */
  size_t n;
  unsigned char *b = read_bytes(path, &n);
  CHECK(b && n > 8);
  uint64_t h = header_len(b);
  CHECK(h % 8 == 0 && b[8] == '{');
  CHECK(n == 8 + h + sizeof w_a + sizeof d_a + sizeof k_a + sizeof u_a);
  char *json = strndup((const char *)b + 8, h);
  CHECK(strstr(json, "\"k\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]}"));
  CHECK(strstr(json, "\"layer/d\":{\"dtype\":\"F64\",\"shape\":[4],\"data_offsets\":[4,36]}"));
  CHECK(strstr(json, "\"u\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[36,60]}"));
  CHECK(strstr(json, "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[60,84]}"));
  CHECK(strstr(json, "\"format\":\"moonflow\"") && strstr(json, "\"moonflow_crc32\":\"") &&
        strstr(json, "\"moonflow_header_crc32\":\""));
  CHECK(!memcmp(b + 8 + h + 60, w_a, sizeof w_a) && !memcmp(b + 8 + h + 4, d_a, sizeof d_a));
  free(json);
  free(b);

  /* restore over changed values */
  run_targets(sess, m.assign_b, s);
  CHECK_OK(s);
  CHECK(!holds_a(sess, &m));
  mf_checkpoint_restore(sess, m.var, names, 4, path, s);
  CHECK_OK(s);
  CHECK(holds_a(sess, &m));

  /* into a fresh session of the same graph, and of a rebuilt graph */
  mf_session *fresh = mf_session_new(m.g, NULL, s);
  mf_checkpoint_restore(fresh, m.var, names, 4, path, s);
  CHECK_OK(s);
  CHECK(holds_a(fresh, &m));
  mf_session_delete(fresh);
  model m2;
  build(&m2, s);
  mf_session *other = mf_session_new(m2.g, NULL, s);
  mf_checkpoint_restore(other, m2.var, names, 4, path, s);
  CHECK_OK(s);
  CHECK(holds_a(other, &m2));
  /* a variable of another graph is refused, and nothing changes */
  run_targets(other, m2.assign_b, s);
  mf_op *mixed[4] = {m2.var[0], m2.var[1], m2.var[2], m.var[3]};
  mf_checkpoint_restore(other, mixed, names, 4, path, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "'u' is not a variable of this session's graph");
  CHECK(!holds_a(other, &m2));
  mf_session_delete(other);
  mf_graph_delete(m2.g);

  /* overwriting keeps one file; a missing directory is a clear error */
  mf_checkpoint_save(sess, m.var, names, 4, path, s);
  CHECK_OK(s);
  CHECK(count_files() == 1 && tmp_files() == 0);
  mf_checkpoint_save(sess, m.var, names, 4, in_dir("no/such/dir/model"), s);
  CHECK_ERR(s, MF_NOT_FOUND, "no/such/dir/model");
  CHECK_ERR(s, MF_NOT_FOUND, "No such file or directory");
  CHECK(count_files() == 1);
  /* two variables under one name */
  const char *dup[4] = {"w", "x", "x", "y"};
  mf_checkpoint_save(sess, m.var, dup, 4, in_dir("dup"), s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "two variables named 'x'");
  CHECK(count_files() == 1);

  mf_session_delete(sess);
  mf_graph_delete(m.g);
  unlink(path);
  mf_status_delete(s);
}

/* Every error leaves the values as they were (set A). */
static void test_errors(void)
{
  mf_status *s = mf_status_new();
  model m;
  build(&m, s);
  mf_session *sess = mf_session_new(m.g, NULL, s);
  run_targets(sess, m.assign_a, s);
  const char *path = in_dir("good");
  mf_checkpoint_save(sess, m.var, names, 4, path, s);
  CHECK_OK(s);

  mf_checkpoint_restore(sess, m.var, names, 4, in_dir("missing"), s);
  CHECK_ERR(s, MF_NOT_FOUND, "not found");
  CHECK_ERR(s, MF_NOT_FOUND, "missing");

  const char *other_names[4] = {"w", "layer/d", "kk", "u"};
  mf_checkpoint_restore(sess, m.var, other_names, 4, path, s);
  CHECK_ERR(s, MF_NOT_FOUND, "no tensor 'kk'");

  const char *swapped[4] = {"layer/d", "w", "k", "u"}; /* float32 var <- F64 tensor */
  mf_checkpoint_restore(sess, m.var, swapped, 4, path, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT,
            "tensor 'layer/d' is F64 (float64) but variable 'w' is float32");

  const char *shapes[4] = {"w", "layer/d", "k", "w"}; /* u {-1, 2} <- {2, 3} */
  mf_checkpoint_restore(sess, m.var, shapes, 4, path, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT,
            "tensor 'w' has shape {2, 3} but variable 'u' has shape {-1, 2}");
  CHECK(holds_a(sess, &m));

  /* the failed restores above changed nothing even partly: set B, then fail */
  run_targets(sess, m.assign_b, s);
  mf_checkpoint_restore(sess, m.var, shapes, 4, path, s);
  CHECK(mf_status_code(s) != MF_OK);
  CHECK(!holds_a(sess, &m));
  mf_checkpoint_restore(sess, m.var, names, 4, path, s);
  CHECK_OK(s);

  size_t n;
  unsigned char *good = read_bytes(path, &n);
  const char *bad = in_dir("bad");
  uint64_t h = header_len(good);

  write_bytes(bad, "", 0);
  mf_checkpoint_restore(sess, m.var, names, 4, bad, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "not a safetensors checkpoint");
  write_bytes(bad, "hello, world\nthis is text\n", 26);
  mf_checkpoint_restore(sess, m.var, names, 4, bad, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "not a safetensors checkpoint");
  write_bytes(bad, good, n - 1);
  mf_checkpoint_restore(sess, m.var, names, 4, bad, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "beyond the 83 data bytes (is the file truncated?)");
  write_bytes(bad, good, 8 + h / 2);
  mf_checkpoint_restore(sess, m.var, names, 4, bad, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "exceeds the file size");

  unsigned char *copy = malloc(n);
  memcpy(copy, good, n);
  copy[n - 3] ^= 0x10;
  write_bytes(bad, copy, n);
  mf_checkpoint_restore(sess, m.var, names, 4, bad, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "data checksum mismatch");
  memcpy(copy, good, n);
  char *at = strstr((char *)copy + 8, "[3,2]");
  at[1] = '2'; /* u's shape {2,2}: still valid JSON, offsets now wrong */
  write_bytes(bad, copy, n);
  mf_checkpoint_restore(sess, m.var, names, 4, bad, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "need 16 bytes");
  memcpy(copy, good, n);
  at = strstr((char *)copy + 8, "\"k\"");
  at[1] = 'j'; /* a renamed tensor: consistent, but the header checksum catches it */
  write_bytes(bad, copy, n);
  mf_checkpoint_restore(sess, m.var, names, 4, bad, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "header checksum mismatch");
  free(copy);
  CHECK(holds_a(sess, &m));

  /* a directory is not a checkpoint */
  mf_checkpoint_restore(sess, m.var, names, 4, dir, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "not a regular file");

  /* a closed session */
  mf_session_close(sess);
  mf_checkpoint_restore(sess, m.var, names, 4, path, s);
  CHECK_ERR(s, MF_FAILED_PRECONDITION, "closed session");
  mf_checkpoint_save(sess, m.var, names, 4, path, s);
  CHECK_ERR(s, MF_FAILED_PRECONDITION, "closed session");

  free(good);
  unlink(bad);
  unlink(path);
  mf_session_delete(sess);
  mf_graph_delete(m.g);
  mf_status_delete(s);
}

/* A file from another writer: no moonflow metadata, keys in another order,
 * escapes, whitespace and space padding, a tensor we cannot load (F16). */
static void test_foreign_file(void)
{
  mf_status *s = mf_status_new();
  mf_graph *g = mf_graph_new();
  int64_t d2[1] = {2};
  mf_op *v = variable(g, "v", MF_FLOAT32, 1, d2, s);
  mf_op *e = variable(g, "e", MF_FLOAT32, 1, d2, s);
  mf_session *sess = mf_session_new(g, NULL, s);
  const char json[] = "{ \"h\" : {\"shape\": [1], \"dtype\": \"F16\", \"data_offsets\": [8, 10]},\n"
                      "  \"__metadata__\": {\"format\": \"pt\"},\n"
                      "  \"q\\\"\\u00e9\\ud83d\\ude00\\n\": {\"data_offsets\": [0, 8], "
                      "\"dtype\": \"F32\", \"shape\": [2]} }    ";
  size_t h = sizeof json - 1;
  unsigned char file[512];
  for (int i = 0; i < 8; i++) file[i] = (unsigned char)((uint64_t)h >> (8 * i));
  memcpy(file + 8, json, h);
  float vals[2] = {0.25f, -8};
  memcpy(file + 8 + h, vals, 8);
  file[8 + h + 8] = 0, file[8 + h + 9] = 0x3c; /* 1.0 in F16 */
  const char *path = in_dir("foreign.safetensors");
  write_bytes(path, file, 8 + h + 10);
  const char *name = "q\"\xc3\xa9\xf0\x9f\x98\x80\n";
  mf_checkpoint_restore(sess, &v, &name, 1, path, s);
  CHECK_OK(s);
  mf_tensor *out = NULL;
  mf_output o = {v, 0};
  mf_session_run(sess, NULL, NULL, 0, &o, &out, 1, NULL, 0, s);
  CHECK_OK(s);
  CHECK(out && ((const float *)mf_tensor_data(out))[0] == 0.25f &&
        ((const float *)mf_tensor_data(out))[1] == -8);
  mf_tensor_delete(out);
  const char *hname = "h";
  mf_checkpoint_restore(sess, &e, &hname, 1, path, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "dtype F16, which moonflow cannot load");
  /* a foreign file lists too, a dtype moonflow cannot load by the file's name */
  mf_checkpoint_contents *c = mf_checkpoint_list(path, s);
  CHECK_OK(s);
  CHECK(mf_checkpoint_contents_count(c) == 2);
  CHECK(strcmp(mf_checkpoint_contents_name(c, 0), "h") == 0);
  CHECK(mf_checkpoint_contents_dtype(c, 0) == MF_NUM_DTYPES);
  CHECK(strcmp(mf_checkpoint_contents_file_dtype(c, 0), "F16") == 0);
  CHECK(strcmp(mf_checkpoint_contents_name(c, 1), name) == 0);
  CHECK(mf_checkpoint_contents_dtype(c, 1) == MF_FLOAT32);
  mf_checkpoint_contents_delete(c);

  /* names with escapes survive our own round trip */
  const char *tricky = "a\\b \"c\"\t\x01/\xc3\xa9";
  mf_checkpoint_save(sess, &v, &tricky, 1, in_dir("tricky"), s);
  CHECK_OK(s);
  mf_checkpoint_restore(sess, &v, &tricky, 1, in_dir("tricky"), s);
  CHECK_OK(s);
  const char *invalid = "bad\xff";
  mf_checkpoint_save(sess, &v, &invalid, 1, in_dir("invalid"), s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "not valid UTF-8");
  unlink(in_dir("tricky"));
  unlink(path);
  mf_session_delete(sess);
  mf_graph_delete(g);
  mf_status_delete(s);
}

/* Truncations at every length and byte flips everywhere: never a crash;
 * truncations and flips in the data always fail; failures change nothing. */
static void test_fuzz(void)
{
  mf_status *s = mf_status_new();
  model m;
  build(&m, s);
  mf_session *sess = mf_session_new(m.g, NULL, s);
  run_targets(sess, m.assign_a, s);
  const char *path = in_dir("fuzz-src");
  mf_checkpoint_save(sess, m.var, names, 4, path, s);
  CHECK_OK(s);
  size_t n;
  unsigned char *good = read_bytes(path, &n);
  uint64_t h = header_len(good);
  unsigned char *copy = malloc(n);
  const char *bad = in_dir("fuzz");
  int trunc_fail = 0, flips = 0, flip_fail = 0, data_flip_ok = 0, kept = 1;

  for (size_t len = 0; len < n; len++) {
    write_bytes(bad, good, len);
    mf_checkpoint_restore(sess, m.var, names, 4, bad, s);
    trunc_fail += mf_status_code(s) != MF_OK;
  }
  CHECK(trunc_fail == (int)n);
  CHECK(holds_a(sess, &m));

  const unsigned char masks[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff};
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < sizeof masks; k++) {
      memcpy(copy, good, n);
      copy[i] ^= masks[k];
      write_bytes(bad, copy, n);
      run_targets(sess, m.assign_b, s);
      mf_checkpoint_restore(sess, m.var, names, 4, bad, s);
      flips++;
      if (mf_status_code(s) != MF_OK) {
        flip_fail++;
        kept &= !holds_a(sess, &m); /* still set B */
        if (!*mf_status_message(s)) kept = 0;
      } else {
        data_flip_ok += i >= 8 + h;
        kept &= holds_a(sess, &m); /* a harmless flip (the format string) */
      }
    }
  CHECK(kept);
  CHECK(data_flip_ok == 0);
  CHECK(flip_fail > flips * 9 / 10);

  /* hostile headers, then random bytes, each refused with set A kept */
  mf_checkpoint_restore(sess, m.var, names, 4, path, s);
  CHECK_OK(s);
  static const char *const hostile[] = {
      "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999,99999999999,99999999999],"
      "\"data_offsets\":[0,0]}}",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}",
      "{\"a\":\"\\ud800\"}",
      "{\"a\\u0000\":{}}",
      "{\"__metadata__\":{\"moonflow_crc32\":\"zz\"}}",
      "{\"__metadata__\":{\"moonflow_crc32\":1}}",
      "{} x",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":[]}}",
  };
  for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
    size_t hl = strlen(hostile[i]);
    unsigned char *f = malloc(8 + hl + 4);
    for (int b = 0; b < 8; b++) f[b] = (unsigned char)((uint64_t)hl >> (8 * b));
    memcpy(f + 8, hostile[i], hl);
    memset(f + 8 + hl, 0, 4);
    write_bytes(bad, f, 8 + hl + 4);
    free(f);
    mf_checkpoint_restore(sess, m.var, names, 4, bad, s);
    CHECK(mf_status_code(s) == MF_INVALID_ARGUMENT && *mf_status_message(s));
    if (getenv("MF_TEST_VERBOSE")) printf("  %s\n", mf_status_message(s));
  }
  srand(12345);
  for (int r = 0; r < 200; r++) {
    unsigned char f[64];
    for (size_t b = 0; b < sizeof f; b++) f[b] = (unsigned char)rand();
    if (r % 2) memset(f + 1, 0, 7), f[0] = (unsigned char)(r % 60); /* plausible lengths */
    write_bytes(bad, f, sizeof f);
    mf_checkpoint_restore(sess, m.var, names, 4, bad, s);
    CHECK(mf_status_code(s) == MF_INVALID_ARGUMENT);
  }
  CHECK(holds_a(sess, &m));
  printf("test_checkpoint: %zu truncations, %d flips (%d refused)\n", n, flips, flip_fail);

  free(copy);
  free(good);
  unlink(bad);
  unlink(path);
  mf_session_delete(sess);
  mf_graph_delete(m.g);
  mf_status_delete(s);
}

/* ---------------------------------------------------------------- stale temporary files, the index
 */

static void plant(const char *name)
{
  FILE *f = fopen(in_dir(name), "wb");
  CHECK(f != NULL);
  if (f) fclose(f);
}

/* A write in progress: its own temporary file is kept by a cleanup. */
static bool fill_and_clean(FILE *f, void *ctx)
{
  (void)f;
  mf_status *s = ctx;
  char own[40];
  snprintf(own, sizeof own, "model-6.tmp.%ld", (long)getpid());
  CHECK(mfi_remove_stale_temps(in_dir("model"), s) == 0);
  CHECK(access(in_dir(own), F_OK) == 0);
  return fputs("x", f) >= 0;
}

static void test_stale_temps(void)
{
  mf_status *s = mf_status_new();
  /* this process writing: its own temporary files are not stale */
  CHECK(mfi_write_file_atomic(in_dir("model-6"), "test file", fill_and_clean, s, s));
  CHECK_OK(s);
  CHECK(unlink(in_dir("model-6")) == 0);

  pid_t dead = fork(); /* a pid that names no process once reaped */
  if (dead == 0) _exit(0);
  CHECK(dead > 0);
  waitpid(dead, NULL, 0);
  char name[10][40];
  snprintf(name[0], sizeof name[0], "model-3.tmp.%ld", (long)dead); /* removed */
  snprintf(name[1], sizeof name[1], "model.tmp.%ld", (long)dead);   /* removed */
  snprintf(name[2], sizeof name[2], "model-4.tmp.%ld",
           (long)getpid());                                         /* ours, no write: removed */
  snprintf(name[3], sizeof name[3], "other-3.tmp.%ld", (long)dead); /* another prefix */
  snprintf(name[4], sizeof name[4], "model-5.tmp.%ld", (long)getppid()); /* a live writer */
  snprintf(name[5], sizeof name[5], "model-6.tmp.1");                    /* init: alive */
  snprintf(name[6], sizeof name[6], "model-7.tmp.12x");                  /* not a temporary file */
  snprintf(name[7], sizeof name[7], "model-8.tmp.");
  snprintf(name[8], sizeof name[8], "model-9.tmp.0");
  snprintf(name[9], sizeof name[9], "model-10.tmp.99999999999999999999");
  for (int i = 0; i < 10; i++) plant(name[i]);
  char subdir[40];
  snprintf(subdir, sizeof subdir, "model-11.tmp.%ld", (long)dead); /* not a regular file */
  CHECK(mkdir(in_dir(subdir), 0700) == 0);

  CHECK(mf_checkpoint_remove_stale_temps(in_dir("model"), s) == 3);
  CHECK_OK(s);
  for (int i = 0; i < 10; i++) CHECK((access(in_dir(name[i]), F_OK) == 0) == (i >= 3));
  CHECK(access(in_dir(subdir), F_OK) == 0);
  CHECK(mf_checkpoint_remove_stale_temps(in_dir("model"), s) == 0);
  CHECK(mf_checkpoint_remove_stale_temps(in_dir("other-3"), s) == 1);
  CHECK(access(in_dir(name[3]), F_OK) != 0);

  CHECK(mf_checkpoint_remove_stale_temps(NULL, s) == -1);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_checkpoint_remove_stale_temps");
  CHECK(mf_checkpoint_remove_stale_temps(in_dir(""), s) == -1);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "prefix");
  CHECK(mf_checkpoint_remove_stale_temps(in_dir("nowhere/model"), s) == -1);
  CHECK_ERR(s, MF_NOT_FOUND, "nowhere");

  /* the index file: written whole, atomically, no temporary file left */
  const char text[] = "model_checkpoint_path: \"model-3\"\n";
  mf_checkpoint_write_file(in_dir("checkpoint"), text, sizeof text - 1, s);
  CHECK_OK(s);
  size_t n = 0;
  unsigned char *got = read_bytes(in_dir("checkpoint"), &n);
  CHECK(got && n == sizeof text - 1 && !memcmp(got, text, n));
  free(got);
  mf_checkpoint_write_file(NULL, text, 1, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_checkpoint_write_file");
  mf_checkpoint_write_file(in_dir("nowhere/checkpoint"), text, 1, s);
  CHECK_ERR(s, MF_NOT_FOUND, "nowhere");

  for (int i = 0; i < 10; i++) unlink(in_dir(name[i]));
  unlink(in_dir("checkpoint"));
  rmdir(in_dir(subdir));
  mf_status_delete(s);
}

int main(void)
{
  snprintf(dir, sizeof dir, "/tmp/mf-ckpt-XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_round_trip();
  test_errors();
  test_foreign_file();
  test_fuzz();
  test_stale_temps();
  CHECK(tmp_files() == 0);
  remove_all();
  return check_report("test_checkpoint");
}
