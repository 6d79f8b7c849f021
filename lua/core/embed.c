/* moonflow_lua.h: the binding for C hosts that run their own lua_State.
 * Built into libmoonflow_lua with the rest of lua/core (not into the
 * moonflow.core module, which exports luaopen_moonflow_core alone).
 *
 * Everything that may allocate runs inside lua_pcall, so a memory error
 * becomes a status rather than a panic; the functions that only read (the
 * to_ ones) compare metatables kept in one registry table under integer
 * keys. */
#include <stdio.h>
#include <string.h>

#include "lmf.h"
#include "moonflow_lua.h"

/* The registry entries (keyed by these addresses) that mf_lua_open fills:
 * the state table, and moonflow.core as this library opened it. */
static const char state_key = 0, core_key = 0;

enum {
  ST_TF = 1,     /* the module table */
  ST_CORE,       /* moonflow.core as this library opened it */
  ST_WRAP_GRAPH, /* graph.lua's wrap_graph(ud) */
  ST_WRAP_SESS,  /* session.lua's Session._wrap(ud, graph) */
  ST_GRAPH_MT,   /* the tf.Graph and tf.Session metatables (Lua tables) */
  ST_SESS_MT,
  ST_ARRAY_UD, /* the userdata metatables of lmf.h */
  ST_GRAPH_UD,
  ST_SESS_UD,
  ST_GRAPHS,   /* mf_graph* -> tf.Graph, weak values: one object per graph */
  ST_SESSIONS, /* mf_session* -> tf.Session, the same */
  ST_N = ST_SESSIONS
};

/* Pushes the state table, or nothing and returns 0 when the module is not
 * open through mf_lua_open in L. Allocates nothing. */
static int get_state(lua_State *L)
{
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key) == LUA_TTABLE) return 1;
  lua_pop(L, 1);
  return 0;
}

/* A stack index a caller may name (not a pseudo-index: an upvalue index
 * cannot be checked). */
static int valid_index(lua_State *L, int idx)
{
  int top = lua_gettop(L);
  return (idx > 0 && idx <= top) || (idx < 0 && idx > LUA_REGISTRYINDEX && -idx <= top);
}

/* Whether the value at idx has the metatable in state slot `slot` (st: the
 * state table's index). Allocates nothing. */
static int has_mt(lua_State *L, int idx, int st, int slot)
{
  if (!lua_getmetatable(L, idx)) return 0;
  lua_rawgeti(L, st, slot);
  int same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same;
}

/* Makes room and checks L and the state; 0 with the status set otherwise. */
static int ready(lua_State *L, const char *fn, int need_state, mf_status *s)
{
  char msg[200];
  if (!L) {
    snprintf(msg, sizeof msg, "%s: L (the lua_State) is NULL", fn);
  } else if (!lua_checkstack(L, 8)) {
    snprintf(msg, sizeof msg, "%s: no room on the Lua stack", fn);
  } else if (need_state && !get_state(L)) {
    snprintf(msg, sizeof msg, "%s: moonflow is not open in this lua_State: call mf_lua_open first",
             fn);
  } else {
    if (need_state) lua_pop(L, 1);
    return 1;
  }
  mf_status_set(s, MF_INVALID_ARGUMENT, msg);
  return 0;
}

static void to_status(lua_State *L, mf_code code, mf_status *s)
{
  const char *msg = lua_tostring(L, -1);
  if (msg) {
    mf_status_set(s, code, msg);
  } else {
    char buf[100];
    snprintf(buf, sizeof buf, "(the Lua error is a %s value, not a string)", luaL_typename(L, -1));
    mf_status_set(s, code, buf);
  }
  lua_pop(L, 1);
}

void mf_lua_error_to_status(lua_State *L, mf_status *s)
{
  if (!L) {
    mf_status_set(s, MF_INVALID_ARGUMENT, "mf_lua_error_to_status: L (the lua_State) is NULL");
  } else if (lua_gettop(L) == 0) {
    mf_status_set(s, MF_INVALID_ARGUMENT, "mf_lua_error_to_status: the Lua stack is empty");
  } else {
    to_status(L, MF_INVALID_ARGUMENT, s);
  }
}

/* Runs f with the n values on the top as arguments, protected; leaves its
 * one result, or sets the status (prefixed with fn) and leaves nothing. */
static int protected_call(lua_State *L, lua_CFunction f, int n, const char *fn, mf_status *s)
{
  lua_pushcfunction(L, f);
  lua_insert(L, -n - 1);
  int r = lua_pcall(L, n, 1, 0);
  if (r == LUA_OK) return 1;
  const char *msg = lua_tostring(L, -1);
  char buf[1024];
  snprintf(buf, sizeof buf, "%s: %s", fn, msg ? msg : "(error object is not a string)");
  lua_pop(L, 1);
  mf_status_set(s, r == LUA_ERRMEM ? MF_RESOURCE_EXHAUSTED : MF_INVALID_ARGUMENT, buf);
  return 0;
}

/* ---------------------------------------------------------------- opening */

static int open_p(lua_State *L)
{
  if (lua_getglobal(L, "package") != LUA_TTABLE || lua_getfield(L, -1, "loaded") != LUA_TTABLE)
    return luaL_error(L, "the package library is not open in this state (luaL_openlibs first)");
  int loaded = lua_gettop(L);
  lua_getfield(L, loaded, "moonflow.core");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &core_key);
  if (!lua_isnil(L, -2) && !lua_rawequal(L, -1, -2))
    return luaL_error(L, "moonflow's C module (moonflow/core.so) is already loaded in this "
                         "state, a separate copy of the runtime: call mf_lua_open before any "
                         "script requires moonflow");
  lua_pop(L, 2);
  luaL_requiref(L, "moonflow.core", luaopen_moonflow_core, 0); /* or the one loaded before */
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &core_key);
  int core = lua_gettop(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "moonflow");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK)
    return luaL_error(L,
                      "require(\"moonflow\") failed (package.path must reach moonflow's Lua "
                      "files): %s",
                      lua_tostring(L, -1));
  int tf = lua_gettop(L);
  if (!lua_istable(L, tf)) return luaL_error(L, "require(\"moonflow\") did not give a table");
  lua_createtable(L, ST_N, 0);
  int st = lua_gettop(L);
  lua_pushvalue(L, tf), lua_rawseti(L, st, ST_TF);
  lua_pushvalue(L, core), lua_rawseti(L, st, ST_CORE);
  lua_getfield(L, loaded, "moonflow.graph");
  lua_getfield(L, -1, "wrap_graph"), lua_rawseti(L, st, ST_WRAP_GRAPH);
  lua_getfield(L, -1, "Graph"), lua_rawseti(L, st, ST_GRAPH_MT);
  lua_pop(L, 1);
  lua_getfield(L, tf, "Session_mt");
  lua_getfield(L, -1, "_wrap"), lua_rawseti(L, st, ST_WRAP_SESS);
  lua_rawseti(L, st, ST_SESS_MT);
  for (int i = ST_TF; i <= ST_SESS_MT; i++)
    if (lua_rawgeti(L, st, i) == LUA_TNIL)
      return luaL_error(L, "the moonflow Lua files do not match this library (slot %d missing)", i);
  luaL_getmetatable(L, LMF_ARRAY), lua_rawseti(L, st, ST_ARRAY_UD);
  luaL_getmetatable(L, LMF_GRAPH), lua_rawseti(L, st, ST_GRAPH_UD);
  luaL_getmetatable(L, LMF_SESSION), lua_rawseti(L, st, ST_SESS_UD);
  for (int slot = ST_GRAPHS; slot <= ST_SESSIONS; slot++) {
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v"), lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawseti(L, st, slot);
  }
  lua_pushvalue(L, st);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &state_key);
  lua_pushvalue(L, tf);
  return 1;
}

int mf_lua_open(lua_State *L, mf_status *s)
{
  if (!ready(L, "mf_lua_open", 0, s)) return 0;
  if (get_state(L)) {
    lua_rawgeti(L, -1, ST_TF);
    lua_remove(L, -2);
    mf_status_set(s, MF_OK, NULL);
    return 1;
  }
  if (!protected_call(L, open_p, 0, "mf_lua_open", s)) return 0;
  mf_status_set(s, MF_OK, NULL);
  return 1;
}

/* ---------------------------------------------------------------- tensors */

static int push_tensor_p(lua_State *L)
{
  mf_tensor *t = lua_touserdata(L, 1);
  get_state(L);
  lmf_array *a = lua_newuserdatauv(L, sizeof *a, 0);
  a->t = NULL;
  lua_rawgeti(L, -2, ST_ARRAY_UD);
  lua_setmetatable(L, -2);
  a->t = mf_tensor_retain(t);
  return 1;
}

int mf_lua_push_tensor(lua_State *L, mf_tensor *t, mf_status *s)
{
  if (!ready(L, "mf_lua_push_tensor", 1, s)) return 0;
  if (!t) {
    mf_status_set(s, MF_INVALID_ARGUMENT, "mf_lua_push_tensor: t (the tensor) is NULL");
    return 0;
  }
  lua_pushlightuserdata(L, t);
  if (!protected_call(L, push_tensor_p, 1, "mf_lua_push_tensor", s)) return 0;
  mf_status_set(s, MF_OK, NULL);
  return 1;
}

/* The Array's tensor at idx (borrowed), or NULL. */
static mf_tensor *array_at(lua_State *L, int idx)
{
  if (!L || !valid_index(L, idx) || !lua_checkstack(L, 4)) return NULL;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TUSERDATA || !get_state(L)) return NULL;
  int ok = has_mt(L, idx, lua_gettop(L), ST_ARRAY_UD);
  lua_pop(L, 1);
  return ok ? ((lmf_array *)lua_touserdata(L, idx))->t : NULL;
}

mf_tensor *mf_lua_to_tensor(lua_State *L, int idx) { return mf_tensor_retain(array_at(L, idx)); }

mf_tensor *mf_lua_check_tensor(lua_State *L, int idx)
{
  if (!L) return NULL;
  mf_tensor *t = array_at(L, idx);
  if (t) return t;
  if (!get_state(L))
    luaL_error(L, "mf_lua_check_tensor: moonflow is not open in this lua_State (mf_lua_open)");
  if (!valid_index(L, idx)) luaL_error(L, "mf_lua_check_tensor: index %d is not on the stack", idx);
  luaL_typeerror(L, idx, "moonflow.Array"); /* a released Array is refused too */
  return NULL;
}

/* ---------------------------------------------------------------- graphs */

/* Pushes the tf.Graph for the mf_graph g (the state table at st): the cached
 * one, or a new one holding a reference. */
static void push_graph(lua_State *L, int st, mf_graph *g)
{
  lua_rawgeti(L, st, ST_GRAPHS);
  if (lua_rawgetp(L, -1, g) == LUA_TTABLE) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  lua_rawgeti(L, st, ST_WRAP_GRAPH);
  lmf_graph *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->g = NULL;
  lua_rawgeti(L, st, ST_GRAPH_UD);
  lua_setmetatable(L, -2);
  u->g = mf_graph_retain(g);
  lua_call(L, 1, 1);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, -3, g);
  lua_remove(L, -2);
}

static int push_graph_p(lua_State *L)
{
  mf_graph *g = lua_touserdata(L, 1);
  get_state(L);
  push_graph(L, lua_gettop(L), g);
  return 1;
}

int mf_lua_push_graph(lua_State *L, mf_graph *g, mf_status *s)
{
  if (!ready(L, "mf_lua_push_graph", 1, s)) return 0;
  if (!g) {
    mf_status_set(s, MF_INVALID_ARGUMENT, "mf_lua_push_graph: g (the graph) is NULL");
    return 0;
  }
  lua_pushlightuserdata(L, g);
  if (!protected_call(L, push_graph_p, 1, "mf_lua_push_graph", s)) return 0;
  mf_status_set(s, MF_OK, NULL);
  return 1;
}

/* to_graph_p(value) -> light userdata mf_graph*, or nil; caches the object
 * so that pushing the graph back gives it. */
static int to_graph_p(lua_State *L)
{
  get_state(L);
  int st = lua_gettop(L);
  if (!lua_istable(L, 1) || !has_mt(L, 1, st, ST_GRAPH_MT)) return 0;
  lua_getfield(L, 1, "_g");
  if (lua_type(L, -1) != LUA_TUSERDATA || !has_mt(L, -1, st, ST_GRAPH_UD)) return 0;
  mf_graph *g = ((lmf_graph *)lua_touserdata(L, -1))->g;
  if (!g) return 0;
  lua_rawgeti(L, st, ST_GRAPHS);
  lua_pushvalue(L, 1);
  lua_rawsetp(L, -2, g);
  lua_pushlightuserdata(L, g);
  return 1;
}

/* Calls f(value at idx) protected: its light userdata result, or NULL. */
static void *to_object(lua_State *L, int idx, lua_CFunction f)
{
  if (!L || !valid_index(L, idx) || !lua_checkstack(L, 8)) return NULL;
  idx = lua_absindex(L, idx);
  if (!get_state(L)) return NULL;
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  if (!protected_call(L, f, 1, "", NULL)) return NULL;
  void *p = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return p;
}

mf_graph *mf_lua_to_graph(lua_State *L, int idx)
{
  return mf_graph_retain(to_object(L, idx, to_graph_p));
}

/* ---------------------------------------------------------------- sessions */

static int push_session_p(lua_State *L)
{
  mf_session *sess = lua_touserdata(L, 1);
  mf_graph *g = lua_touserdata(L, 2);
  get_state(L);
  int st = lua_gettop(L);
  lua_rawgeti(L, st, ST_SESSIONS);
  int cache = lua_gettop(L);
  if (lua_rawgetp(L, cache, sess) == LUA_TTABLE) {
    lua_getfield(L, -1, "_closed");
    if (!lua_toboolean(L, -1)) {
      lua_pop(L, 1);
      return 1;
    }
  }
  lua_rawgeti(L, st, ST_WRAP_SESS);
  lmf_session *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->s = NULL;
  u->borrowed = 1;
  u->model = NULL;
  lua_rawgeti(L, st, ST_SESS_UD);
  lua_setmetatable(L, -2);
  u->s = sess;
  push_graph(L, st, g);
  lua_call(L, 2, 1);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, cache, sess);
  return 1;
}

int mf_lua_push_session(lua_State *L, mf_session *sess, mf_graph *g, mf_status *s)
{
  if (!ready(L, "mf_lua_push_session", 1, s)) return 0;
  if (!sess || !g) {
    mf_status_set(s, MF_INVALID_ARGUMENT,
                  !sess ? "mf_lua_push_session: sess (the session) is NULL"
                        : "mf_lua_push_session: g (the session's graph) is NULL");
    return 0;
  }
  lua_pushlightuserdata(L, sess);
  lua_pushlightuserdata(L, g);
  if (!protected_call(L, push_session_p, 2, "mf_lua_push_session", s)) return 0;
  mf_status_set(s, MF_OK, NULL);
  return 1;
}

static int to_session_p(lua_State *L)
{
  get_state(L);
  int st = lua_gettop(L);
  if (!lua_istable(L, 1) || !has_mt(L, 1, st, ST_SESS_MT)) return 0;
  lua_getfield(L, 1, "_closed");
  if (lua_toboolean(L, -1)) return 0;
  lua_getfield(L, 1, "_ud");
  if (lua_type(L, -1) != LUA_TUSERDATA || !has_mt(L, -1, st, ST_SESS_UD)) return 0;
  mf_session *sess = ((lmf_session *)lua_touserdata(L, -1))->s;
  if (!sess) return 0;
  lua_rawgeti(L, st, ST_SESSIONS);
  lua_pushvalue(L, 1);
  lua_rawsetp(L, -2, sess);
  lua_pushlightuserdata(L, sess);
  return 1;
}

mf_session *mf_lua_to_session(lua_State *L, int idx) { return to_object(L, idx, to_session_p); }

/* ---------------------------------------------------------------- errors */

/* lua.c's message handler: a traceback after the message. */
static int traceback(lua_State *L)
{
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    lua_settop(L, 1);
    msg = lua_pushfstring(L, "(the Lua error is a %s value, not a string)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int mf_lua_pcall(lua_State *L, int nargs, int nresults, mf_status *s)
{
  if (!ready(L, "mf_lua_pcall", 0, s)) return 0;
  if (nargs < 0 || lua_gettop(L) < nargs + 1 || (nresults < 0 && nresults != LUA_MULTRET)) {
    char msg[160];
    snprintf(msg, sizeof msg,
             "mf_lua_pcall: nargs %d, nresults %d with %d values on the stack (needs the "
             "function and nargs >= 0 arguments; nresults >= 0 or LUA_MULTRET)",
             nargs, nresults, lua_gettop(L));
    mf_status_set(s, MF_INVALID_ARGUMENT, msg);
    return 0;
  }
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  int r = lua_pcall(L, nargs, nresults, base);
  if (r != LUA_OK) to_status(L, r == LUA_ERRMEM ? MF_RESOURCE_EXHAUSTED : MF_INVALID_ARGUMENT, s);
  lua_remove(L, base);
  if (r == LUA_OK) mf_status_set(s, MF_OK, NULL);
  return r == LUA_OK;
}
