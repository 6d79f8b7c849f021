/* The Lua binding's shared declarations: userdata types over the public C
 * API (and nothing else from the core). */
#ifndef LMF_H
#define LMF_H

#include <lauxlib.h>
#include <lua.h>

#include "moonflow.h"
#include "moonflow_cuda.h"

#define LMF_GRAPH "moonflow.Graph"
#define LMF_OP "moonflow.Operation"
#define LMF_SESSION "moonflow.Session"
#define LMF_ARRAY "moonflow.Array"

typedef struct {
  mf_graph *g;
} lmf_graph;

typedef struct {
  mf_op *op; /* owned by the graph, kept alive by the op's user value */
} lmf_op;

typedef struct {
  mf_session *s;
  int borrowed;    /* a C host's session (moonflow_lua.h): never closed or deleted here */
  mf_model *model; /* a loaded model's session: deleted with the model */
} lmf_session;

typedef struct {
  mf_tensor *t;
} lmf_array;

/* Raises the status as a Lua error (after the caller cleaned up). */
int lmf_error(lua_State *L, mf_status *s);
mf_graph *lmf_checkgraph(lua_State *L, int i);
mf_op *lmf_checkop(lua_State *L, int i);
mf_tensor *lmf_checkarray(lua_State *L, int i);
/* Pushes a new Operation userdata (its user value is the Graph at index g). */
void lmf_pushop(lua_State *L, mf_op *op, int g);
/* Pushes an Array that takes over the reference `t`. */
void lmf_pusharray(lua_State *L, mf_tensor *t);
/* luaL_checkstring that refuses a NUL byte inside (C would cut the string there). */
const char *lmf_checkstring(lua_State *L, int i);
mf_dtype lmf_checkdtype(lua_State *L, int i);
/* A Lua sequence of dims at index i into dims; returns the rank. */
int lmf_checkshape(lua_State *L, int i, int64_t *dims, int allow_unknown);

void lmf_open_graph(lua_State *L);
void lmf_open_array(lua_State *L);
void lmf_open_session(lua_State *L);
void lmf_open_hostcall(lua_State *L);
void lmf_open_summary(lua_State *L);
void lmf_open_graph_io(lua_State *L);
void lmf_open_model(lua_State *L);
void lmf_open_mpi(lua_State *L);

/* Host callbacks (hostcall.c): a run registers its state for Lua function
 * ops (enter: 0 when too many states run at once); in_callback is true on
 * a thread that is running such a function. */
int lmf_host_enter(lua_State *L);
void lmf_host_leave(lua_State *L);
int lmf_host_in_callback(void);

/* The module's entry point, its one exported symbol (MF_API: the binding is
 * built with hidden visibility like the library). */
MF_API int luaopen_moonflow_core(lua_State *L);

#endif
