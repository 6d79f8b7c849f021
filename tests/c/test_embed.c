/* include/moonflow_lua.h: a C host with its own lua_State. A Lua script
 * trains on the host's buffers (pushed without a copy) and the host reads
 * the weights back; host-built graphs and sessions used from Lua and the
 * other way round; Lua errors as statuses; and the abuse block (NULL for
 * every pointer, bad stack indices, a state that is not ready). Run with
 * LUA_PATH reaching lua/ and examples/embed/ (CMake sets it). */
#include "check.h"

#include <lauxlib.h>
#include <lualib.h>
#include <moonflow_lua.h>

#define N 256
#define D 2

static float xs[N * D], ys[N];
static int deallocs;

static void count_dealloc(void *data, void *arg)
{
  (void)data, (void)arg;
  deallocs++;
}

static void make_points(void)
{
  unsigned st = 7;
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < D; j++) {
      st = st * 1664525u + 1013904223u;
      xs[i * D + j] = (float)(st >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
    }
    ys[i] = 2.0f * xs[i * D] - 3.0f * xs[i * D + 1] + 0.5f;
  }
}

static lua_State *new_state(mf_status *s)
{
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  CHECK(mf_lua_open(L, s) == 1);
  CHECK_OK(s);
  return L;
}

/* Runs chunk (which returns a function) with the n values on the top. */
static int run_chunk(lua_State *L, const char *chunk, int nargs, int nresults, mf_status *s)
{
  if (luaL_loadstring(L, chunk) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    mf_lua_error_to_status(L, s);
    return 0;
  }
  lua_insert(L, -nargs - 1);
  return mf_lua_pcall(L, nargs, nresults, s);
}

static void test_open(mf_status *s)
{
  lua_State *L = new_state(s);
  CHECK(lua_istable(L, -1));
  CHECK(mf_lua_open(L, s) == 1 && lua_rawequal(L, -1, -2)); /* the same table */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "loaded");
  lua_getfield(L, -1, "moonflow");
  CHECK(lua_rawequal(L, -1, -4));
  lua_close(L);
}

static void test_training(mf_status *s)
{
  make_points();
  float xs_copy[N * D];
  memcpy(xs_copy, xs, sizeof xs);
  lua_State *L = new_state(s);
  lua_pop(L, 1);
  const int64_t xd[2] = {N, D}, yd[2] = {N, 1};
  mf_tensor *x = mf_tensor_new_borrowed(MF_FLOAT32, 2, xd, xs, count_dealloc, NULL, s);
  mf_tensor *y = mf_tensor_new_borrowed(MF_FLOAT32, 2, yd, ys, count_dealloc, NULL, s);
  CHECK_OK(s);
  CHECK(mf_lua_push_tensor(L, x, s) == 1);
  lua_setglobal(L, "X");
  lua_getglobal(L, "require");
  lua_pushliteral(L, "train");
  CHECK(mf_lua_pcall(L, 1, 1, s) == 1);
  CHECK_OK(s);
  lua_getglobal(L, "X");
  CHECK(mf_lua_push_tensor(L, y, s) == 1);
  lua_pushinteger(L, 200);
  lua_pushnumber(L, 0.5);
  int top = lua_gettop(L) - 5;
  CHECK(mf_lua_pcall(L, 4, 3, s) == 1);
  CHECK_OK(s);
  CHECK(lua_gettop(L) == top + 3);
  mf_tensor *w = mf_lua_to_tensor(L, -3), *b = mf_lua_to_tensor(L, -2);
  CHECK(w && b && mf_tensor_numel(w) == 2 && mf_tensor_numel(b) == 1);
  if (w && b) {
    CHECK(fabs(fdata(w)[0] - 2.0) < 1e-3 && fabs(fdata(w)[1] + 3.0) < 1e-3);
    CHECK(fabs(fdata(b)[0] - 0.5) < 1e-3);
    printf("test_embed: w = {%.5f, %.5f}, b = %.5f, loss %.3g\n", fdata(w)[0], fdata(w)[1],
           fdata(b)[0], lua_tonumber(L, -1));
  }
  lua_pop(L, 3);
  /* The Array in Lua is the host's tensor on the host's buffer, untouched. */
  lua_getglobal(L, "X");
  mf_tensor *back = mf_lua_to_tensor(L, -1);
  CHECK(back == x && mf_tensor_data(back) == xs);
  CHECK(mf_tensor_data(mf_lua_check_tensor(L, -1)) == xs);
  CHECK(memcmp(xs, xs_copy, sizeof xs) == 0);
  lua_pop(L, 1);
  mf_tensor_delete(back), mf_tensor_delete(w), mf_tensor_delete(b);
  mf_tensor_delete(x), mf_tensor_delete(y);
  CHECK(deallocs == 0); /* the state still holds the Arrays */
  lua_close(L);
  CHECK(deallocs == 2);
}

static void test_graphs_and_sessions(mf_status *s)
{
  lua_State *L = new_state(s);
  lua_setglobal(L, "tf");
  mf_graph *g = mf_graph_new();
  const int64_t two = 2;
  const_f32(g, "c", 1, &two, (const float[]){1, 2}, s);
  mf_session *sess = mf_session_new(g, NULL, s);
  CHECK_OK(s);
  /* Lua adds an op to the host's graph and runs it in the host's session. */
  CHECK(mf_lua_push_graph(L, g, s) == 1);
  CHECK(mf_lua_push_session(L, sess, g, s) == 1);
  CHECK(run_chunk(L,
                  "return function(g, sess)"
                  "  local t = g:as_default(function()"
                  "    return tf.identity(g:get_tensor_by_name('c:0') * 10, 'tenfold') end)"
                  "  assert(sess.graph == g)"
                  "  local v = sess:run(t); return v[1] + v[2] end",
                  2, 1, s));
  CHECK_OK(s);
  CHECK(lua_tonumber(L, -1) == 30);
  lua_pop(L, 1);
  mf_op *op = mf_graph_op_by_name(g, "tenfold");
  CHECK(op != NULL);
  mf_tensor *v = NULL;
  mf_session_run(sess, NULL, NULL, 0, &(mf_output){op, 0}, &v, 1, NULL, 0, s);
  CHECK_OK(s);
  CHECK(v && fdata(v)[0] == 10 && fdata(v)[1] == 20);
  mf_tensor_delete(v);
  /* A Lua function op on the host's graph: runs from Lua, and the host's
   * own run of it is a clean error. */
  CHECK(mf_lua_push_graph(L, g, s) && mf_lua_push_session(L, sess, g, s));
  CHECK(run_chunk(L,
                  "return function(g, sess)"
                  "  local t = g:as_default(function() return tf.lua_func("
                  "    function(a) return {a:flat(1) + 0.5, a:flat(2)} end,"
                  "    {g:get_tensor_by_name('c:0')}, tf.float32, {name = 'from_lua'}) end)"
                  "  return sess:run(t):flat(1) end",
                  2, 1, s));
  CHECK_OK(s);
  CHECK(lua_tonumber(L, -1) == 1.5);
  lua_pop(L, 1);
  mf_session_run(sess, NULL, NULL, 0, &(mf_output){mf_graph_op_by_name(g, "from_lua"), 0}, &v, 1,
                 NULL, 0, s);
  CHECK_ERR(s, MF_FAILED_PRECONDITION, "belongs to no Lua state");
  /* One Lua object per graph and session; both come back. */
  CHECK(mf_lua_push_graph(L, g, s) && mf_lua_push_graph(L, g, s) && lua_rawequal(L, -1, -2));
  mf_graph *back = mf_lua_to_graph(L, -1);
  CHECK(back == g);
  mf_graph_delete(back);
  lua_pop(L, 2);
  CHECK(mf_lua_push_session(L, sess, g, s) && mf_lua_to_session(L, -1) == sess);
  /* sess:close() in Lua lets the host's session go without closing it. */
  CHECK(run_chunk(L, "return function(sess) sess:close() end", 1, 0, s));
  CHECK(mf_lua_push_session(L, sess, g, s) && mf_lua_to_session(L, -1) == sess);
  lua_pop(L, 1);
  mf_session_run(sess, NULL, NULL, 0, &(mf_output){op, 0}, &v, 1, NULL, 0, s);
  CHECK_OK(s);
  mf_tensor_delete(v);
  /* A graph and session made in Lua, used from C. */
  CHECK(run_chunk(L,
                  "return function() local g = tf.Graph();"
                  " g:as_default(function() tf.identity(tf.constant({4.0, 5.0}), 'k') end)"
                  " return g, tf.Session{graph = g} end",
                  0, 2, s));
  CHECK_OK(s);
  mf_graph *lg = mf_lua_to_graph(L, -2);
  mf_session *ls = mf_lua_to_session(L, -1);
  CHECK(lg && ls);
  if (lg && ls) {
    mf_op *k = mf_graph_op_by_name(lg, "k");
    mf_session_run(ls, NULL, NULL, 0, &(mf_output){k, 0}, &v, 1, NULL, 0, s);
    CHECK_OK(s);
    CHECK(v && fdata(v)[1] == 5);
    mf_tensor_delete(v);
    CHECK(mf_lua_push_graph(L, lg, s) && lua_rawequal(L, -1, -3));
  }
  mf_graph_delete(lg);
  lua_settop(L, 0);
  lua_close(L);
  mf_session_delete(sess);
  mf_graph_delete(g);
}

static int check_tensor_fn(lua_State *L)
{
  mf_lua_check_tensor(L, 1);
  return 0;
}

static void test_errors(mf_status *s)
{
  lua_State *L = new_state(s);
  lua_setglobal(L, "tf");
  int top = lua_gettop(L);
  CHECK(run_chunk(L, "return function() error('boom') end", 0, 0, s) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "boom");
  CHECK(strstr(mf_status_message(s), "stack traceback") != NULL);
  CHECK(lua_gettop(L) == top);
  /* moonflow's own error, naming the op */
  CHECK(run_chunk(L,
                  "return function() tf.matmul(tf.constant({{1, 2}}), tf.constant({{1, 2}})) end",
                  0, 0, s) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "MatMul");
  CHECK(lua_gettop(L) == top);
  /* a non-string error value, and lua_pcall's own error */
  CHECK(run_chunk(L, "return function() error({}) end", 0, 0, s) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "table value");
  luaL_loadstring(L, "error('plain')");
  CHECK(lua_pcall(L, 0, 0, 0) != LUA_OK);
  mf_lua_error_to_status(L, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "plain");
  CHECK(lua_gettop(L) == top);
  /* mf_lua_check_tensor raises a Lua error in a C function */
  lua_pushcfunction(L, check_tensor_fn);
  lua_pushinteger(L, 3);
  CHECK(mf_lua_pcall(L, 1, 0, s) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "moonflow.Array expected");
  lua_close(L);
}

static void abuse(mf_status *s)
{
  mf_tensor *t = mf_tensor_new(MF_FLOAT32, 0, NULL, s);
  mf_graph *g = mf_graph_new();
  mf_session *sess = mf_session_new(g, NULL, s);
  CHECK_OK(s);
  /* NULL L */
  CHECK(mf_lua_open(NULL, s) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_lua_open: L");
  CHECK(mf_lua_open(NULL, NULL) == 0);
  CHECK(mf_lua_push_tensor(NULL, t, s) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_lua_push_tensor: L");
  CHECK(mf_lua_to_tensor(NULL, 1) == NULL);
  CHECK(mf_lua_check_tensor(NULL, 1) == NULL);
  CHECK(mf_lua_push_graph(NULL, g, s) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_lua_push_graph: L");
  CHECK(mf_lua_to_graph(NULL, 1) == NULL);
  CHECK(mf_lua_push_session(NULL, sess, g, s) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_lua_push_session: L");
  CHECK(mf_lua_to_session(NULL, 1) == NULL);
  CHECK(mf_lua_pcall(NULL, 0, 0, s) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_lua_pcall: L");
  mf_lua_error_to_status(NULL, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_lua_error_to_status: L");
  mf_lua_error_to_status(NULL, NULL);

  /* a state where moonflow is not open */
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  CHECK(mf_lua_push_tensor(L, t, s) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "call mf_lua_open first");
  CHECK(mf_lua_push_graph(L, g, s) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "call mf_lua_open first");
  CHECK(mf_lua_push_session(L, sess, g, s) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "call mf_lua_open first");
  lua_newuserdatauv(L, 8, 0);
  CHECK(mf_lua_to_tensor(L, -1) == NULL && mf_lua_to_graph(L, -1) == NULL &&
        mf_lua_to_session(L, -1) == NULL);
  lua_pop(L, 1);
  mf_lua_error_to_status(L, s);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "stack is empty");
  CHECK(lua_gettop(L) == 0);
  CHECK(mf_lua_pcall(L, 0, 0, s) == 0); /* no function */
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "mf_lua_pcall: nargs 0");
  lua_pushnil(L);
  CHECK(mf_lua_pcall(L, -1, 0, s) == 0 && mf_lua_pcall(L, 0, -7, s) == 0 &&
        mf_lua_pcall(L, 1, 0, s) == 0);
  CHECK(lua_gettop(L) == 1);
  lua_pop(L, 1);
  /* moonflow's C module loaded by the state itself: refused */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "loaded");
  lua_newtable(L);
  lua_setfield(L, -2, "moonflow.core");
  lua_pop(L, 2);
  CHECK(mf_lua_open(L, s) == 0 && lua_gettop(L) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "already loaded");
  lua_close(L);
  /* no package library; moonflow's Lua files out of reach */
  L = luaL_newstate();
  CHECK(mf_lua_open(L, s) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "package library");
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushliteral(L, "/nonexistent/?.lua");
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  CHECK(mf_lua_open(L, s) == 0 && lua_gettop(L) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "package.path");
  lua_close(L);

  /* an open state: NULL objects, bad indices, wrong values */
  L = new_state(s);
  CHECK(mf_lua_push_tensor(L, NULL, s) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "t (the tensor) is NULL");
  CHECK(mf_lua_push_graph(L, NULL, s) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "g (the graph) is NULL");
  CHECK(mf_lua_push_session(L, NULL, g, s) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "sess (the session) is NULL");
  CHECK(mf_lua_push_session(L, sess, NULL, s) == 0);
  CHECK_ERR(s, MF_INVALID_ARGUMENT, "g (the session's graph) is NULL");
  CHECK(mf_lua_push_tensor(L, t, NULL) == 1); /* a NULL status is fine */
  int idx[] = {0, 3, -3, 1000, -1000, LUA_REGISTRYINDEX, LUA_REGISTRYINDEX - 1, INT32_MIN};
  for (size_t i = 0; i < sizeof idx / sizeof *idx; i++)
    CHECK(mf_lua_to_tensor(L, idx[i]) == NULL && mf_lua_to_graph(L, idx[i]) == NULL &&
          mf_lua_to_session(L, idx[i]) == NULL);
  CHECK(mf_lua_to_graph(L, -1) == NULL && mf_lua_to_session(L, -1) == NULL);
  CHECK(mf_lua_to_tensor(L, -2) == NULL); /* the module table */
  mf_tensor *back = mf_lua_to_tensor(L, -1);
  CHECK(back == t);
  mf_tensor_delete(back);
  CHECK(lua_gettop(L) == 2);
  lua_close(L);
  mf_session_delete(sess);
  mf_graph_delete(g);
  mf_tensor_delete(t);
}

int main(void)
{
  mf_status *s = mf_status_new();
  test_open(s);
  test_training(s);
  test_graphs_and_sessions(s);
  test_errors(s);
  abuse(s);
  mf_status_delete(s);
  return check_report("test_embed");
}
