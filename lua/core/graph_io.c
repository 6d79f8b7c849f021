/* Graph export and import (mf_graph_export, mf_graph_def_to_text,
 * mf_graph_import) for graph:as_graph_def, tf.train.write_graph and
 * tf.import_graph_def. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lmf.h"

/* graph_export(core graph) -> bytes */
static int graph_export(lua_State *L)
{
  mf_graph *g = lmf_checkgraph(L, 1);
  luaL_checkstack(L, 2, NULL);
  mf_status *s = mf_status_new();
  uint8_t *bytes = NULL;
  size_t len = 0;
  if (!mf_graph_export(g, &bytes, &len, s)) return lmf_error(L, s);
  mf_status_delete(s);
  /* (only a memory error raises here, leaking the bytes) */
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, len);
  if (len) memcpy(p, bytes, len);
  free(bytes);
  luaL_pushresultsize(&b, len);
  return 1;
}

/* graph_def_to_text(bytes) -> text */
static int graph_def_to_text(lua_State *L)
{
  size_t n = 0;
  const char *bytes = luaL_checklstring(L, 1, &n);
  mf_status *s = mf_status_new();
  char *text = NULL;
  size_t len = 0;
  if (!mf_graph_def_to_text(bytes, n, &text, &len, s)) return lmf_error(L, s);
  mf_status_delete(s);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, len);
  memcpy(p, text, len);
  free(text);
  luaL_pushresultsize(&b, len);
  return 1;
}

/* graph_import(core graph, bytes, prefix, map_keys, map_ops, map_indices,
 * return_names) -> count, {op id (from 1), index (-1: the op), ...} */
static int graph_import(lua_State *L)
{
  mf_graph *g = lmf_checkgraph(L, 1);
  size_t n = 0;
  const char *bytes = luaL_checklstring(L, 2, &n);
  const char *prefix = luaL_optstring(L, 3, "");
  luaL_checktype(L, 4, LUA_TTABLE);
  luaL_checktype(L, 5, LUA_TTABLE);
  luaL_checktype(L, 6, LUA_TTABLE);
  luaL_checktype(L, 7, LUA_TTABLE);
  lua_Integer nmap = luaL_len(L, 4), nret = luaL_len(L, 7);
  if (nmap < 0 || nmap > 1000000 || nret < 0 || nret > 1000000)
    return luaL_error(L, "graph_import: too many input_map or return entries");
  /* arrays owned by userdata, so a Lua error frees them */
  const char **keys = lua_newuserdatauv(L, sizeof *keys * (size_t)(nmap + 1), 0);
  mf_output *vals = lua_newuserdatauv(L, sizeof *vals * (size_t)(nmap + 1), 0);
  const char **rets = lua_newuserdatauv(L, sizeof *rets * (size_t)(nret + 1), 0);
  mf_output *outs = lua_newuserdatauv(L, sizeof *outs * (size_t)(nret + 1), 0);
  for (lua_Integer i = 1; i <= nmap; i++) {
    lua_geti(L, 4, i);
    keys[i - 1] = lmf_checkstring(L, -1);
    lua_pop(L, 1); /* the table keeps the string */
    lua_geti(L, 5, i);
    vals[i - 1].op = lmf_checkop(L, -1);
    lua_pop(L, 1);
    lua_geti(L, 6, i);
    vals[i - 1].index = (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  for (lua_Integer i = 1; i <= nret; i++) {
    lua_geti(L, 7, i);
    rets[i - 1] = lmf_checkstring(L, -1);
    lua_pop(L, 1);
  }
  mf_import_options o;
  mf_import_options_init(&o);
  o.prefix = prefix;
  o.ninput_map = (int)nmap, o.input_map_keys = keys, o.input_map_values = vals;
  o.nreturn = (int)nret, o.return_elements = rets, o.return_outputs = outs;
  lua_createtable(L, (int)(2 * nret), 0);
  mf_status *s = mf_status_new();
  int added = mf_graph_import(g, bytes, n, &o, s);
  if (added < 0) return lmf_error(L, s);
  mf_status_delete(s);
  for (lua_Integer i = 0; i < nret; i++) {
    lua_pushinteger(L, mf_op_id(outs[i].op) + 1), lua_seti(L, -2, 2 * i + 1);
    lua_pushinteger(L, outs[i].index), lua_seti(L, -2, 2 * i + 2);
  }
  lua_pushinteger(L, added);
  lua_insert(L, -2);
  return 2;
}

/* make_dirs(path): mkdir -p (tf.train.write_graph's logdir); raises on failure. */
static int make_dirs(lua_State *L)
{
  size_t n = 0;
  const char *dir = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, n + 1);
  memcpy(p, dir, n + 1);
  for (char *q = p + 1;; q++) {
    if (*q != '/' && *q) continue;
    char c = *q;
    *q = 0;
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
      return luaL_error(L, "cannot create directory '%s': %s", p, strerror(errno));
    *q = c;
    if (!c) break;
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return luaL_error(L, "'%s' is not a directory", dir);
  return 0;
}

void lmf_open_graph_io(lua_State *L)
{
  static const luaL_Reg fns[] = {{"graph_export", graph_export},
                                 {"graph_def_to_text", graph_def_to_text},
                                 {"graph_import", graph_import},
                                 {"make_dirs", make_dirs},
                                 {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
