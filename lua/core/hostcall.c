/* The host callback for Lua: LuaFunc ops and Print's callback stream call
 * Lua functions while a session runs.
 *
 * Kernels may run on inter-op worker threads while the Lua thread that
 * called sess:run is blocked inside mf_session_run. So each session_run
 * registers its lua_State for the duration of the run (lmf_host_enter /
 * lmf_host_leave), and the hook calls into a registered state with one
 * process-wide mutex held: one call at a time, never while that state's
 * own thread runs Lua (it is blocked in the run, or waiting for the mutex
 * to leave it). A Lua function that calls sess:run again is refused
 * (lmf_host_in_callback): it would wait for the run it is part of. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "lmf.h"

#define DISPATCH_KEY "moonflow.host_dispatch"
#define MAX_STATES 64

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  lua_State *L;
  int depth;
} active[MAX_STATES];
static int nactive;
static _Thread_local int in_callback;
static _Atomic int64_t next_id;

int lmf_host_in_callback(void) { return in_callback; }

int lmf_host_enter(lua_State *L)
{
  pthread_mutex_lock(&lock);
  int i = 0;
  while (i < nactive && active[i].L != L) i++;
  int ok = i < MAX_STATES;
  if (ok && i == nactive) active[nactive].L = L, active[nactive++].depth = 0;
  if (ok) active[i].depth++;
  pthread_mutex_unlock(&lock);
  return ok;
}

void lmf_host_leave(lua_State *L)
{
  pthread_mutex_lock(&lock);
  for (int i = 0; i < nactive; i++)
    if (active[i].L == L && --active[i].depth == 0) {
      active[i] = active[--nactive];
      break;
    }
  pthread_mutex_unlock(&lock);
}

/* Runs in L, protected: dispatcher(func, text) for Print, or
 * dispatcher(func, nil, {Array, ...}, {dtype name, ...}) for LuaFunc, which
 * returns false when the function is not this state's, else true and the
 * outputs (Arrays of the Tout dtypes). */
static int dispatch(lua_State *L)
{
  mf_host_call *call = lua_touserdata(L, 1);
  if (lua_getfield(L, LUA_REGISTRYINDEX, DISPATCH_KEY) != LUA_TFUNCTION) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushinteger(L, call->func);
  if (call->text) {
    lua_pushstring(L, call->text);
    lua_call(L, 2, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_createtable(L, call->nin, 0);
  for (int i = 0; i < call->nin; i++) {
    /* A view, so that a[i] = v in the function copies rather than change the run's value. */
    mf_tensor *t = call->in[i];
    mf_status *s = mf_status_new();
    mf_tensor *v = s ? mf_tensor_reshape(t, mf_tensor_ndim(t), mf_tensor_dims(t), s) : NULL;
    if (!v) return s ? lmf_error(L, s) : luaL_error(L, "out of memory");
    mf_status_delete(s);
    lmf_pusharray(L, v);
    lua_rawseti(L, -2, i + 1);
  }
  lua_createtable(L, call->nout, 0);
  for (int i = 0; i < call->nout; i++) {
    lua_pushstring(L, mf_dtype_name(call->tout[i]));
    lua_rawseti(L, -2, i + 1);
  }
  lua_call(L, 4, 2);
  if (!lua_toboolean(L, -2)) {
    lua_pop(L, 1);
    return 1;
  }
  luaL_checktype(L, -1, LUA_TTABLE);
  for (int i = 0; i < call->nout; i++) {
    lua_geti(L, -1, i + 1);
    mf_tensor *t = lmf_checkarray(L, -1);
    if (mf_tensor_dtype(t) != call->tout[i])
      return luaL_error(L, "output %d is %s, not %s", i + 1, mf_dtype_name(mf_tensor_dtype(t)),
                        mf_dtype_name(call->tout[i]));
    lua_pop(L, 1);
  }
  /* Only now, when nothing can fail: each output a header of its own. */
  for (int i = 0; i < call->nout; i++) {
    lua_geti(L, -1, i + 1);
    mf_tensor *t = lmf_checkarray(L, -1);
    call->out[i] = mf_tensor_reshape(t, mf_tensor_ndim(t), mf_tensor_dims(t), NULL);
    lua_pop(L, 1);
    if (!call->out[i]) return luaL_error(L, "out of memory");
  }
  lua_pop(L, 1);
  return 1;
}

/* Offers the call to L: 1 when L took it (or failed it), 0 when its
 * function is not L's. */
static int offer(lua_State *L, mf_host_call *call, mf_status *s)
{
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 8)) {
    mf_status_set(s, MF_RESOURCE_EXHAUSTED, "no room on the Lua stack");
    return 1;
  }
  lua_pushcfunction(L, dispatch);
  lua_pushlightuserdata(L, call);
  int taken = 1;
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    mf_status_set(s, MF_INVALID_ARGUMENT, msg ? msg : "(the Lua error is not a string)");
  } else {
    taken = lua_toboolean(L, -1);
  }
  lua_settop(L, top);
  return taken;
}

static void hook(void *ctx, mf_host_call *call, mf_status *s)
{
  (void)ctx;
  pthread_mutex_lock(&lock);
  in_callback = 1;
  int taken = 0;
  for (int i = 0; i < nactive && !taken; i++) taken = offer(active[i].L, call, s);
  in_callback = 0;
  pthread_mutex_unlock(&lock);
  if (!taken)
    mf_status_set(s, MF_FAILED_PRECONDITION,
                  "its Lua function belongs to no Lua state that is running a session now (a "
                  "graph with Lua functions runs only from the Lua state that built it)");
}

/* host_install(dispatcher): the Lua module's dispatcher for this state. */
static int host_install(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_pushvalue(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, DISPATCH_KEY);
  mf_set_host_callback(hook, NULL);
  return 0;
}

/* host_new_id() -> an integer no other Lua function op in this process has */
static int host_new_id(lua_State *L)
{
  /* atomic, not under `lock`: a callback (which holds it) may build ops */
  int64_t id = atomic_fetch_add(&next_id, 1) + 1;
  lua_pushinteger(L, (lua_Integer)id);
  return 1;
}

void lmf_open_hostcall(lua_State *L)
{
  static const luaL_Reg fns[] = {
      {"host_install", host_install}, {"host_new_id", host_new_id}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
