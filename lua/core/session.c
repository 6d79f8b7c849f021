/* Sessions for Lua: create, run with flat feed/fetch lists, close. */
#include <stdlib.h>
#include <string.h>

#include "lmf.h"

static mf_session *check_session(lua_State *L, int i)
{
  lmf_session *s = luaL_checkudata(L, i, LMF_SESSION);
  if (!s->s) luaL_error(L, "attempted to use a closed session");
  return s->s;
}

/* session_new(graph, inter_op_threads, intra_op_threads, allow_soft_placement,
 *             log_device_placement, allow_tf32) */
static int session_new(lua_State *L)
{
  mf_graph *g = lmf_checkgraph(L, 1);
  mf_session_config c;
  mf_session_config_init(&c);
  c.inter_op_threads = (int)luaL_optinteger(L, 2, 1);
  c.intra_op_threads = (int)luaL_optinteger(L, 3, 0);
  c.allow_soft_placement = lua_toboolean(L, 4);
  c.log_device_placement = lua_toboolean(L, 5);
  c.allow_tf32 = lua_toboolean(L, 6);
  lmf_session *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->s = NULL;
  u->borrowed = 0;
  u->model = NULL;
  luaL_setmetatable(L, LMF_SESSION);
  mf_status *s = mf_status_new();
  if (!(u->s = mf_session_new(g, &c, s))) return lmf_error(L, s);
  mf_status_delete(s);
  return 1;
}

static int session_gc(lua_State *L)
{
  lmf_session *u = luaL_checkudata(L, 1, LMF_SESSION);
  if (u->model)
    mf_model_delete(u->model);
  else if (!u->borrowed)
    mf_session_delete(u->s);
  u->s = NULL, u->model = NULL;
  return 0;
}

/* The length of the table argument at index i, as a count for the C API: a
 * negative or huge __len is an argument error, never an array size. */
static int count_arg(lua_State *L, int i, const char *fn)
{
  lua_Integer n = luaL_len(L, i);
  if (n < 0 || n > (1 << 24))
    luaL_error(L, "%s: argument #%d has length %I (must be 0..%d)", fn, i, n, 1 << 24);
  return (int)n;
}

/* Reads {op1, i1, op2, i2, ...} at index t into outs; returns the count. */
static int read_outputs(lua_State *L, int t, mf_output *outs, int max)
{
  int n = count_arg(L, t, "session_run") / 2;
  if (n > max) luaL_error(L, "too many tensors");
  for (int k = 0; k < n; k++) {
    lua_geti(L, t, 2 * k + 1);
    lua_geti(L, t, 2 * k + 2);
    outs[k].op = lmf_checkop(L, -2);
    outs[k].index = (int)luaL_checkinteger(L, -1);
    lua_pop(L, 2);
  }
  return n;
}

/* session_run(sess, feeds {op, i, ...}, feed_values {Array, ...},
 *             fetches {op, i, ...}, targets {op, ...}) -> {Array, ...} */
/* Raises when called from a Lua function that a running graph called: the
 * run holds its session, which these calls would wait for. */
static void refuse_in_callback(lua_State *L, const char *what)
{
  if (lmf_host_in_callback())
    luaL_error(L,
               "%s: called from a Lua function that a running graph called (tf.lua_func, "
               "tf.print's output_stream): a graph cannot use sessions from inside itself",
               what);
}

static int session_run(lua_State *L)
{
  refuse_in_callback(L, "sess:run");
  mf_session *sess = check_session(L, 1);
  for (int i = 2; i <= 5; i++) luaL_checktype(L, i, LUA_TTABLE);
  int nf = count_arg(L, 2, "session_run") / 2, nx = count_arg(L, 4, "session_run") / 2,
      nt = count_arg(L, 5, "session_run");
  /* One block for all the argument arrays; a userdata so a Lua error frees it. */
  size_t bytes = sizeof(mf_output) * (size_t)(nf + nx) + sizeof(mf_tensor *) * (size_t)(nf + nx) +
                 sizeof(mf_op *) * (size_t)nt + 1;
  char *mem = lua_newuserdatauv(L, bytes, 0);
  mf_output *feeds = (mf_output *)mem, *fetches = feeds + nf;
  mf_tensor **vals = (mf_tensor **)(fetches + nx), **outs = vals + nf;
  mf_op **targets = (mf_op **)(outs + nx);
  read_outputs(L, 2, feeds, nf);
  read_outputs(L, 4, fetches, nx);
  for (int k = 0; k < nf; k++) {
    lua_geti(L, 3, k + 1);
    vals[k] = lmf_checkarray(L, -1);
    lua_pop(L, 1);
  }
  for (int k = 0; k < nt; k++) {
    lua_geti(L, 5, k + 1);
    targets[k] = lmf_checkop(L, -1);
    lua_pop(L, 1);
  }
  mf_status *s = mf_status_new();
  if (!s) return luaL_error(L, "out of memory");
  if (!lmf_host_enter(L)) {
    mf_status_delete(s);
    return luaL_error(L, "sess:run: too many Lua states are running sessions at once");
  }
  mf_session_run(sess, feeds, vals, nf, fetches, outs, nx, targets, nt, s);
  lmf_host_leave(L);
  if (mf_status_code(s) != MF_OK) return lmf_error(L, s);
  mf_status_delete(s);
  lua_createtable(L, nx, 0);
  for (int k = 0; k < nx; k++) {
    lmf_pusharray(L, outs[k]);
    lua_rawseti(L, -2, k + 1);
  }
  return 1;
}

/* A host's session is only let go: the host closes and deletes it. */
static int session_close(lua_State *L)
{
  refuse_in_callback(L, "sess:close");
  lmf_session *u = luaL_checkudata(L, 1, LMF_SESSION);
  if (u->s && u->borrowed)
    u->s = NULL;
  else if (u->s)
    mf_session_close(u->s);
  return 0;
}

static int session_set_tracing(lua_State *L)
{
  mf_session_set_tracing(check_session(L, 1), lua_toboolean(L, 2));
  return 0;
}

/* session_trace(sess) -> {{name, type, start_ns, end_ns, thread}, ...} */
static int session_trace(lua_State *L)
{
  mf_session *sess = check_session(L, 1);
  /* A copy (userdata, freed by Lua on any error); another thread's run may
   * replace the records between the count and the copy: ask again. */
  int n = mf_session_trace(sess, NULL, 0), cap;
  mf_op_trace *t;
  do {
    cap = n > 0 ? n : 1;
    t = lua_newuserdatauv(L, sizeof *t * (size_t)cap, 0);
    n = mf_session_trace(sess, t, cap);
    if (n > cap) lua_pop(L, 1);
  } while (n > cap);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 5);
    lua_pushstring(L, mf_op_name(t[i].op)), lua_setfield(L, -2, "name");
    lua_pushstring(L, mf_op_type(t[i].op)), lua_setfield(L, -2, "type");
    lua_pushinteger(L, t[i].start_ns), lua_setfield(L, -2, "start_ns");
    lua_pushinteger(L, t[i].end_ns), lua_setfield(L, -2, "end_ns");
    lua_pushinteger(L, t[i].thread), lua_setfield(L, -2, "thread");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* Reads the argument lists of a checkpoint call into one userdata block:
 * {op, ...} at index 2 and {name, ...} at index 3, names held by the table. */
static int checkpoint_args(lua_State *L, mf_op ***ops, const char ***names)
{
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  int n = count_arg(L, 2, "checkpoint");
  if (luaL_len(L, 3) != n)
    luaL_error(L, "checkpoint: %d variables but %d names", n, (int)luaL_len(L, 3));
  char *mem = lua_newuserdatauv(L, (sizeof(mf_op *) + sizeof(char *)) * (size_t)n + 1, 0);
  *ops = (mf_op **)mem;
  *names = (const char **)(void *)(mem + sizeof(mf_op *) * (size_t)n);
  for (int k = 0; k < n; k++) {
    lua_geti(L, 2, k + 1);
    (*ops)[k] = lmf_checkop(L, -1);
    lua_pop(L, 1);
    if (lua_geti(L, 3, k + 1) != LUA_TSTRING)
      luaL_error(L, "checkpoint: name %d is not a string", k + 1);
    size_t len;
    (*names)[k] = lua_tolstring(L, -1, &len); /* stays alive in the table */
    if (strlen((*names)[k]) != len) luaL_error(L, "checkpoint: name %d contains a NUL byte", k + 1);
    lua_pop(L, 1);
  }
  return n;
}

/* checkpoint_save / checkpoint_restore (sess, {op, ...}, {name, ...}, path) */
static int checkpoint(lua_State *L, void (*fn)(mf_session *, mf_op *const *, const char *const *,
                                               int, const char *, mf_status *))
{
  refuse_in_callback(L, "saving or restoring a checkpoint");
  mf_session *sess = check_session(L, 1);
  const char *path = lmf_checkstring(L, 4);
  mf_op **ops;
  const char **names;
  int n = checkpoint_args(L, &ops, &names);
  mf_status *s = mf_status_new();
  if (!s) return luaL_error(L, "out of memory");
  fn(sess, ops, names, n, path, s);
  if (mf_status_code(s) != MF_OK) return lmf_error(L, s);
  mf_status_delete(s);
  return 0;
}

static int checkpoint_save(lua_State *L) { return checkpoint(L, mf_checkpoint_save); }
static int checkpoint_restore(lua_State *L) { return checkpoint(L, mf_checkpoint_restore); }

/* checkpoint_write_file(path, bytes): atomically, as checkpoints are */
static int checkpoint_write_file(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  mf_status *s = mf_status_new();
  if (!s) return luaL_error(L, "out of memory");
  mf_checkpoint_write_file(path, data, n, s);
  if (mf_status_code(s) != MF_OK) return lmf_error(L, s);
  mf_status_delete(s);
  return 0;
}

/* checkpoint_remove_stale_temps(prefix) -> number removed */
static int checkpoint_remove_stale_temps(lua_State *L)
{
  const char *prefix = luaL_checkstring(L, 1);
  mf_status *s = mf_status_new();
  if (!s) return luaL_error(L, "out of memory");
  int n = mf_checkpoint_remove_stale_temps(prefix, s);
  if (mf_status_code(s) != MF_OK) return lmf_error(L, s);
  mf_status_delete(s);
  lua_pushinteger(L, n);
  return 1;
}

#define LMF_CKPT_LIST "moonflow.checkpoint_contents"

static int contents_gc(lua_State *L)
{
  mf_checkpoint_contents **box = luaL_checkudata(L, 1, LMF_CKPT_LIST);
  mf_checkpoint_contents_delete(*box);
  *box = NULL;
  return 0;
}

/* checkpoint_list(path) -> {{name, dtype, shape}, ...} sorted by name; dtype
 * is the file's own name ("BF16") for one moonflow cannot load. */
static int checkpoint_list(lua_State *L)
{
  const char *path = lmf_checkstring(L, 1);
  /* boxed first, so that a Lua error while building the table frees it */
  mf_checkpoint_contents **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, LMF_CKPT_LIST);
  mf_status *s = mf_status_new();
  if (!s) return luaL_error(L, "out of memory");
  mf_checkpoint_contents *c = *box = mf_checkpoint_list(path, s);
  if (!c) return lmf_error(L, s);
  mf_status_delete(s);
  int n = mf_checkpoint_contents_count(c);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 3);
    lua_pushstring(L, mf_checkpoint_contents_name(c, i));
    lua_setfield(L, -2, "name");
    mf_dtype dt = mf_checkpoint_contents_dtype(c, i);
    lua_pushstring(L, dt < MF_NUM_DTYPES ? mf_dtype_name(dt)
                                         : mf_checkpoint_contents_file_dtype(c, i));
    lua_setfield(L, -2, "dtype");
    int nd = mf_checkpoint_contents_ndim(c, i);
    const int64_t *dims = mf_checkpoint_contents_dims(c, i);
    lua_createtable(L, nd, 0);
    for (int d = 0; d < nd; d++)
      lua_pushinteger(L, (lua_Integer)dims[d]), lua_rawseti(L, -2, d + 1);
    lua_setfield(L, -2, "shape");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

void lmf_open_session(lua_State *L)
{
  static const luaL_Reg contents_mt[] = {{"__gc", contents_gc}, {NULL, NULL}};
  luaL_newmetatable(L, LMF_CKPT_LIST);
  luaL_setfuncs(L, contents_mt, 0);
  lua_pop(L, 1);
  static const luaL_Reg mt[] = {{"__gc", session_gc}, {"__close", session_gc}, {NULL, NULL}};
  luaL_newmetatable(L, LMF_SESSION);
  luaL_setfuncs(L, mt, 0);
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"session_new", session_new},
                                 {"session_run", session_run},
                                 {"session_close", session_close},
                                 {"session_set_tracing", session_set_tracing},
                                 {"session_trace", session_trace},
                                 {"checkpoint_save", checkpoint_save},
                                 {"checkpoint_restore", checkpoint_restore},
                                 {"checkpoint_write_file", checkpoint_write_file},
                                 {"checkpoint_remove_stale_temps", checkpoint_remove_stale_temps},
                                 {"checkpoint_list", checkpoint_list},
                                 {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
