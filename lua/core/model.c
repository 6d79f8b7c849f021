/* Saved models for Lua (mf_model_load) behind tf.saved_model.load. */
#include <string.h>

#include "lmf.h"

/* {{name, op id (from 1), output index}, ...} of one side of a signature. */
static void push_tensors(lua_State *L, const mf_signature *sig, mf_sig_side side)
{
  int n = mf_signature_num_tensors(sig, side);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    mf_output o = mf_signature_tensor(sig, side, i);
    lua_createtable(L, 3, 0);
    lua_pushstring(L, mf_signature_tensor_name(sig, side, i)), lua_rawseti(L, -2, 1);
    lua_pushinteger(L, mf_op_id(o.op) + 1), lua_rawseti(L, -2, 2);
    lua_pushinteger(L, o.index), lua_rawseti(L, -2, 3);
    lua_rawseti(L, -2, i + 1);
  }
}

/* model_load(dir, tags, inter_op_threads, intra_op_threads, allow_soft_placement,
 *            log_device_placement, allow_tf32)
 *   -> core graph, core session (owning the model), signatures, meta graph bytes
 * signatures: {{key, method, inputs, outputs}, ...} (see push_tensors). */
static int model_load(lua_State *L)
{
  const char *dir = lmf_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer ntags = luaL_len(L, 2);
  if (ntags < 0 || ntags > 64) return luaL_error(L, "model_load: at most 64 tags");
  const char *tags[64];
  for (lua_Integer i = 0; i < ntags; i++) {
    if (lua_geti(L, 2, i + 1) != LUA_TSTRING)
      return luaL_error(L, "model_load: tags must be strings");
    tags[i] = lmf_checkstring(L, -1);
    lua_pop(L, 1); /* the string stays in the table */
  }
  mf_session_config c;
  mf_session_config_init(&c);
  c.inter_op_threads = (int)luaL_optinteger(L, 3, 1);
  c.intra_op_threads = (int)luaL_optinteger(L, 4, 0);
  c.allow_soft_placement = lua_toboolean(L, 5);
  c.log_device_placement = lua_toboolean(L, 6);
  c.allow_tf32 = lua_toboolean(L, 7);
  luaL_checkstack(L, 8, NULL);
  /* the userdata first, so a memory error later leaks nothing */
  lmf_graph *gu = lua_newuserdatauv(L, sizeof *gu, 0);
  gu->g = NULL;
  luaL_setmetatable(L, LMF_GRAPH);
  lmf_session *su = lua_newuserdatauv(L, sizeof *su, 0);
  su->s = NULL, su->borrowed = 0, su->model = NULL;
  luaL_setmetatable(L, LMF_SESSION);
  mf_status *s = mf_status_new();
  mf_model *m = mf_model_load(dir, tags, (int)ntags, &c, s);
  if (!m) return lmf_error(L, s);
  mf_status_delete(s);
  su->model = m, su->s = mf_model_session(m);
  gu->g = mf_graph_retain(mf_model_graph(m));
  int n = mf_model_num_signatures(m);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    const mf_signature *sig = mf_model_signature(m, i);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, mf_signature_key(sig)), lua_setfield(L, -2, "key");
    lua_pushstring(L, mf_signature_method(sig)), lua_setfield(L, -2, "method");
    push_tensors(L, sig, MF_SIG_INPUTS), lua_setfield(L, -2, "inputs");
    push_tensors(L, sig, MF_SIG_OUTPUTS), lua_setfield(L, -2, "outputs");
    lua_rawseti(L, -2, i + 1);
  }
  size_t len = 0;
  const uint8_t *meta = mf_model_meta_graph(m, &len);
  lua_pushlstring(L, (const char *)meta, len);
  return 4;
}

void lmf_open_model(lua_State *L)
{
  static const luaL_Reg fns[] = {{"model_load", model_load}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
