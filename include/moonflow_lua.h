/* moonflow for C hosts that already run Lua 5.4 (a game engine, a
 * simulator): open the moonflow module in the host's lua_State, hand the
 * host's tensors, graphs and sessions to its scripts without copying, take
 * them back, and turn Lua errors into an mf_status. In the spirit of Torch's
 * luaT_pushudata / luaT_checkudata.
 *
 * Link: -lmoonflow_lua -lmoonflow, and Lua 5.4 from the host (the library
 * leaves the lua_* symbols to the program, as a Lua C module does: link
 * liblua5.4, or export a static Lua with -Wl,-E). libmoonflow_lua holds the
 * Lua binding's C code and uses libmoonflow's: one copy of the runtime, so
 * a tensor or graph made by the host is the same object in Lua.
 *
 * Every function takes any argument NULL (and any stack index) without
 * crashing: the push / open functions then return 0 with an error in the
 * status (the status may be NULL too), the to_ functions return NULL. None
 * of them raises a Lua error except mf_lua_check_tensor, which is meant for
 * lua_CFunctions the host registers, like luaL_checkudata. Call them from
 * the thread that owns L, never while the state is running a session's
 * Lua callback (tf.lua_func). */
#ifndef MOONFLOW_LUA_H
#define MOONFLOW_LUA_H

#include "moonflow.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Lua's state, declared here so that this header needs no Lua header (and
 * takes no side in how the host includes Lua: lua.h, or lua.hpp from C++). */
typedef struct lua_State lua_State;

/* Loads moonflow into L as require("moonflow") does and pushes the module
 * table (the `tf` of scripts); package.loaded["moonflow"] is set, so the
 * scripts' own require("moonflow") gets the same table. The standard
 * libraries must be open (luaL_openlibs) and package.path must reach
 * moonflow's Lua files (share/lua/5.4/moonflow/ of the install, or the
 * source tree's lua/?.lua). A second call pushes the same table. Fails if
 * the state already loaded moonflow's C module (moonflow/core.so) itself:
 * call this before any script requires moonflow. Returns 1, or 0 with the
 * status set and nothing pushed. */
MF_API int mf_lua_open(lua_State *L, mf_status *s);

/* Pushes t as a moonflow.Array without copying: the Array holds its own
 * reference (the host keeps its own, to delete when it likes). A tensor
 * from mf_tensor_new_borrowed stays on the host's memory, which must then
 * live until the tensor's dealloc runs. Returns 1, or 0 with the status set
 * and nothing pushed. */
MF_API int mf_lua_push_tensor(lua_State *L, mf_tensor *t, mf_status *s);
/* The tensor of the Array at idx, as a new reference the caller deletes
 * (the same tensor and buffer, not a copy); NULL if the value is not an
 * Array. */
MF_API mf_tensor *mf_lua_to_tensor(lua_State *L, int idx);
/* For lua_CFunctions: the Array's tensor at idx, borrowed (valid while the
 * Array is on the stack), or a Lua argument error. */
MF_API mf_tensor *mf_lua_check_tensor(lua_State *L, int idx);

/* Pushes a tf.Graph over g: the scripts see the host's operations
 * (graph:get_operation_by_name, get_tensor_by_name) and add their own to the
 * same graph, which the host then finds by name. The Graph holds a
 * reference to g. The same g pushes the same tf.Graph while it lives.
 * Returns 1, or 0 with the status set and nothing pushed. */
MF_API int mf_lua_push_graph(lua_State *L, mf_graph *g, mf_status *s);
/* The graph of the tf.Graph at idx, as a new reference the caller drops
 * with mf_graph_delete; NULL if the value is not a tf.Graph. */
MF_API mf_graph *mf_lua_to_graph(lua_State *L, int idx);

/* Pushes a tf.Session over the host's session `sess` on graph g (the graph
 * the session was made with: with another, the scripts' runs fail with an
 * error naming the fetch). The session stays the host's: sess:close() in
 * Lua only lets it go (later Lua runs on it fail), and the host closes and
 * deletes it after the scripts are done with it (after lua_close, or once
 * the tf.Session object is closed). Ops that call Lua (tf.lua_func, tf.print
 * to a Lua stream) run only in runs from Lua (sess:run); the host's own
 * mf_session_run of them fails cleanly. Returns 1, or 0 with the status set
 * and nothing pushed. */
MF_API int mf_lua_push_session(lua_State *L, mf_session *sess, mf_graph *g, mf_status *s);
/* The session of the open tf.Session at idx, borrowed: valid while that
 * object lives and stays open (the host does not delete it). NULL if the
 * value is not an open tf.Session. */
MF_API mf_session *mf_lua_to_session(lua_State *L, int idx);

/* lua_pcall with the error turned into the status: the message with a
 * traceback, code MF_RESOURCE_EXHAUSTED for a memory error and
 * MF_INVALID_ARGUMENT for others (as for a tf.lua_func's error). Returns 1 with nresults values
 * pushed, or 0 with the function and arguments popped and nothing pushed. */
MF_API int mf_lua_pcall(lua_State *L, int nargs, int nresults, mf_status *s);
/* Pops the error value on the top of the stack (what lua_pcall left) into
 * the status as MF_INVALID_ARGUMENT (a value that is not a string is
 * described by its type). */
MF_API void mf_lua_error_to_status(lua_State *L, mf_status *s);

#ifdef __cplusplus
}
#endif

#endif
