/* Graphs and operations for Lua. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lmf.h"

/* Raises the status's message, its C hints put in Lua's idiom. */
int lmf_error(lua_State *L, mf_status *s)
{
  luaL_gsub(L, mf_status_message(s), "' first: a target of mf_session_run)",
            "', or tf.global_variables_initializer(), first)");
  mf_status_delete(s);
  return lua_error(L);
}

mf_graph *lmf_checkgraph(lua_State *L, int i)
{
  lmf_graph *g = luaL_checkudata(L, i, LMF_GRAPH);
  if (!g->g) luaL_error(L, "attempted to use a finalized Graph (its __gc has run)");
  return g->g;
}

/* An Operation is valid while its Graph (the user value) is: a finalized
 * Graph may have freed its ops. */
mf_op *lmf_checkop(lua_State *L, int i)
{
  lmf_op *o = luaL_checkudata(L, i, LMF_OP);
  lmf_graph *g = lua_getiuservalue(L, i, 1) == LUA_TUSERDATA ? lua_touserdata(L, -1) : NULL;
  lua_pop(L, 1);
  if (!g || !g->g) luaL_error(L, "attempted to use an Operation of a finalized Graph");
  return o->op;
}

const char *lmf_checkstring(lua_State *L, int i)
{
  size_t len;
  const char *s = luaL_checklstring(L, i, &len);
  if (strlen(s) != len) luaL_argerror(L, i, "string contains a NUL byte");
  return s;
}

mf_dtype lmf_checkdtype(lua_State *L, int i)
{
  mf_dtype dt;
  const char *name = lmf_checkstring(L, i);
  if (!mf_dtype_from_name(name, &dt)) luaL_error(L, "unknown dtype '%s'", name);
  return dt;
}

int lmf_checkshape(lua_State *L, int i, int64_t *dims, int allow_unknown)
{
  luaL_checktype(L, i, LUA_TTABLE);
  lua_Integer len = luaL_len(L, i);
  if (len < 0 || len > MF_MAX_DIMS) luaL_error(L, "rank %I is outside 0..%d", len, MF_MAX_DIMS);
  int n = (int)len;
  for (int k = 0; k < n; k++) {
    lua_geti(L, i, k + 1);
    int isint;
    lua_Integer d = lua_tointegerx(L, -1, &isint);
    if (!isint || d < (allow_unknown ? -1 : 0))
      luaL_error(L, "dimension %d of a shape must be an integer >= %d", k + 1,
                 allow_unknown ? -1 : 0);
    dims[k] = d;
    lua_pop(L, 1);
  }
  return n;
}

static int graph_new(lua_State *L)
{
  lmf_graph *g = lua_newuserdatauv(L, sizeof *g, 0);
  g->g = NULL;
  luaL_setmetatable(L, LMF_GRAPH);
  if (!(g->g = mf_graph_new())) return luaL_error(L, "out of memory creating a graph");
  return 1;
}

static int graph_gc(lua_State *L)
{
  lmf_graph *g = luaL_checkudata(L, 1, LMF_GRAPH);
  mf_graph_delete(g->g);
  g->g = NULL;
  return 0;
}

void lmf_pushop(lua_State *L, mf_op *op, int g)
{
  g = lua_absindex(L, g);
  lmf_op *o = lua_newuserdatauv(L, sizeof *o, 1);
  o->op = op;
  luaL_setmetatable(L, LMF_OP);
  lua_pushvalue(L, g);
  lua_setiuservalue(L, -2, 1);
}

static int graph_num_ops(lua_State *L)
{
  lua_pushinteger(L, mf_graph_num_ops(lmf_checkgraph(L, 1)));
  return 1;
}

/* graph_op(g, i): the i-th operation (1-based), or nil. */
static int graph_op(lua_State *L)
{
  mf_graph *g = lmf_checkgraph(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2); /* any integer: out of range is nil */
  mf_op *op = i >= 1 && i <= mf_graph_num_ops(g) ? mf_graph_op(g, (int)(i - 1)) : NULL;
  if (!op) return 0;
  lmf_pushop(L, op, 1);
  return 1;
}

static int graph_op_id_by_name(lua_State *L)
{
  mf_op *op = mf_graph_op_by_name(lmf_checkgraph(L, 1), lmf_checkstring(L, 2));
  if (!op) return 0;
  lua_pushinteger(L, mf_op_id(op) + 1);
  return 1;
}

static int graph_unique_name(lua_State *L)
{
  char buf[MF_MAX_NAME + 1];
  mf_graph *g = lmf_checkgraph(L, 1);
  const char *name = lmf_checkstring(L, 2);
  if (strlen(name) > MF_MAX_NAME)
    return luaL_error(L, "name '%s...' is %d bytes long; names are at most %d bytes",
                      lua_pushlstring(L, name, 40), (int)strlen(name), MF_MAX_NAME);
  if (mf_graph_unique_name(g, name, buf, sizeof buf) > MF_MAX_NAME)
    return luaL_error(L, "the unique name for '%s' is longer than %d bytes", name, MF_MAX_NAME);
  lua_pushstring(L, buf);
  return 1;
}

static int graph_set_seed(lua_State *L)
{
  mf_graph_set_seed(lmf_checkgraph(L, 1), luaL_checkinteger(L, 2));
  return 0;
}

static int graph_seed(lua_State *L)
{
  lua_pushinteger(L, mf_graph_seed(lmf_checkgraph(L, 1)));
  return 1;
}

/* ---------------------------------------------------------------- building */

static void set_attr(lua_State *L, mf_op_desc *d, const char *name, const char *kind, int v)
{
  int64_t ints[64];
  int isnum;
  if (strcmp(kind, "int") == 0) {
    lua_Integer x = lua_tointegerx(L, v, &isnum);
    if (!isnum)
      luaL_error(L, "attribute '%s' must be an integer, got %s", name,
                 lua_type(L, v) == LUA_TNUMBER ? lua_tostring(L, v) : luaL_typename(L, v));
    mf_op_set_attr_int(d, name, x);
  } else if (strcmp(kind, "float") == 0) {
    lua_Number x = lua_tonumberx(L, v, &isnum);
    if (!isnum || lua_type(L, v) != LUA_TNUMBER)
      luaL_error(L, "attribute '%s' must be a number, got %s", name, luaL_typename(L, v));
    mf_op_set_attr_float(d, name, x);
  } else if (strcmp(kind, "string") == 0 && lua_type(L, v) != LUA_TSTRING)
    luaL_error(L, "attribute '%s' must be a string, got %s", name, luaL_typename(L, v));
  else if (strcmp(kind, "tensor") == 0 && !luaL_testudata(L, v, LMF_ARRAY))
    luaL_error(L, "attribute '%s' must be an Array, got %s", name, luaL_typename(L, v));
  else if (strcmp(kind, "bool") == 0)
    mf_op_set_attr_bool(d, name, lua_toboolean(L, v));
  else if (strcmp(kind, "type") == 0)
    mf_op_set_attr_type(d, name, lmf_checkdtype(L, v));
  else if (strcmp(kind, "string") == 0)
    mf_op_set_attr_string(d, name, lmf_checkstring(L, v));
  else if (strcmp(kind, "tensor") == 0)
    mf_op_set_attr_tensor(d, name, lmf_checkarray(L, v));
  else if (strcmp(kind, "shape") == 0 && lua_isnil(L, v))
    mf_op_set_attr_shape(d, name, NULL, -1);
  else if (strcmp(kind, "shape") == 0 || strcmp(kind, "ints") == 0) {
    luaL_checktype(L, v, LUA_TTABLE);
    int n = (int)luaL_len(L, v);
    if (n > 64) luaL_error(L, "attribute '%s' has too many values", name);
    for (int k = 0; k < n; k++) {
      lua_geti(L, v, k + 1);
      int isint;
      ints[k] = lua_tointegerx(L, -1, &isint);
      if (!isint) luaL_error(L, "attribute '%s' needs integers", name);
      lua_pop(L, 1);
    }
    if (kind[0] == 's')
      mf_op_set_attr_shape(d, name, ints, n);
    else
      mf_op_set_attr_ints(d, name, ints, n);
  } else
    luaL_error(L, "unknown attribute kind '%s'", kind);
}

/* op_new(g, type, name, inputs, controls, attrs, device, location)
 *   inputs: {op1, index1, op2, index2, ...} (indices from 0)
 *   controls: {op, ...}; attrs: {name, kind, value, name, kind, value, ...}
 * Raises the core's message on failure. The description is built inside a
 * protected call so a Lua error in an argument never leaks it. */
static int build(lua_State *L)
{
  mf_op_desc *d = lua_touserdata(L, lua_upvalueindex(1));
  int nin = (int)luaL_len(L, 4);
  for (int k = 1; k <= nin; k += 2) {
    lua_geti(L, 4, k);
    lua_geti(L, 4, k + 1);
    mf_output o = {lmf_checkop(L, -2), (int)luaL_checkinteger(L, -1)};
    mf_op_add_input(d, o);
    lua_pop(L, 2);
  }
  int nctrl = (int)luaL_len(L, 5);
  for (int k = 1; k <= nctrl; k++) {
    lua_geti(L, 5, k);
    mf_op_add_control_input(d, lmf_checkop(L, -1));
    lua_pop(L, 1);
  }
  int nattr = (int)luaL_len(L, 6);
  for (int k = 1; k + 2 <= nattr + 1; k += 3) {
    lua_geti(L, 6, k);
    lua_geti(L, 6, k + 1);
    lua_geti(L, 6, k + 2);
    set_attr(L, d, lmf_checkstring(L, -3), lmf_checkstring(L, -2), lua_gettop(L));
    lua_pop(L, 3);
  }
  if (!lua_isnil(L, 7)) mf_op_set_device(d, lmf_checkstring(L, 7));
  if (!lua_isnil(L, 8)) mf_op_set_location(d, lmf_checkstring(L, 8));
  return 0;
}

static int op_new(lua_State *L)
{
  mf_graph *g = lmf_checkgraph(L, 1);
  const char *type = lmf_checkstring(L, 2), *name = lmf_checkstring(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  luaL_checktype(L, 5, LUA_TTABLE);
  luaL_checktype(L, 6, LUA_TTABLE);
  lua_settop(L, 8);
  mf_op_desc *d = mf_op_begin(g, type, name);
  if (!d) return luaL_error(L, "out of memory building '%s'", name);
  lua_pushlightuserdata(L, d);
  lua_pushcclosure(L, build, 1);
  for (int i = 1; i <= 8; i++) lua_pushvalue(L, i);
  int bad = lua_pcall(L, 8, 0, 0);
  if (bad) { /* a bad argument: nothing is added; name the op it was for */
    mf_op_abandon(d);
    const char *where = lua_tostring(L, 8);
    lua_pushfstring(L, "%s '%s'%s%s%s: %s", type, name, where ? " (created at " : "",
                    where ? where : "", where ? ")" : "", lua_tostring(L, -1));
    return lua_error(L);
  }
  mf_status *s = mf_status_new();
  if (!s) return luaL_error(L, "out of memory");
  mf_op *op = mf_op_finish(d, s); /* consumes d either way */
  if (!op) return lmf_error(L, s);
  mf_status_delete(s);
  lmf_pushop(L, op, 1);
  return 1;
}

/* ---------------------------------------------------------------- queries */

static int op_info(lua_State *L)
{
  mf_op *op = lmf_checkop(L, 1);
  lua_createtable(L, 0, 8);
  lua_pushstring(L, mf_op_name(op)), lua_setfield(L, -2, "name");
  lua_pushstring(L, mf_op_type(op)), lua_setfield(L, -2, "type");
  lua_pushstring(L, mf_op_device(op)), lua_setfield(L, -2, "device");
  lua_pushstring(L, mf_op_location(op)), lua_setfield(L, -2, "location");
  lua_pushinteger(L, mf_op_id(op) + 1), lua_setfield(L, -2, "id");
  int nout = mf_op_num_outputs(op);
  lua_createtable(L, nout, 0);
  for (int i = 0; i < nout; i++) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, mf_dtype_name(mf_op_output_dtype(op, i)));
    lua_setfield(L, -2, "dtype");
    int nd = mf_op_output_ndim(op, i);
    if (nd >= 0) {
      const int64_t *dims = mf_op_output_dims(op, i);
      lua_createtable(L, nd, 0);
      for (int k = 0; k < nd; k++) lua_pushinteger(L, dims[k]), lua_rawseti(L, -2, k + 1);
      lua_setfield(L, -2, "shape");
    }
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "outputs");
  int nin = mf_op_num_inputs(op);
  lua_createtable(L, nin * 2, 0);
  for (int i = 0; i < nin; i++) {
    mf_output in = mf_op_input(op, i);
    lua_pushinteger(L, mf_op_id(in.op) + 1), lua_rawseti(L, -2, 2 * i + 1);
    lua_pushinteger(L, in.index), lua_rawseti(L, -2, 2 * i + 2);
  }
  lua_setfield(L, -2, "inputs");
  int nc = mf_op_num_control_inputs(op);
  lua_createtable(L, nc, 0);
  for (int i = 0; i < nc; i++)
    lua_pushinteger(L, mf_op_id(mf_op_control_input(op, i)) + 1), lua_rawseti(L, -2, i + 1);
  lua_setfield(L, -2, "control_inputs");
  return 1;
}

/* Reads {op, index, ...} at i into a new array (userdata-owned, on the stack). */
static mf_output *read_pairs(lua_State *L, int i, int *n)
{
  luaL_checktype(L, i, LUA_TTABLE);
  lua_Integer len = luaL_len(L, i);
  if (len < 0 || len > (1 << 24)) luaL_argerror(L, i, "length out of range");
  *n = (int)len / 2;
  mf_output *o = lua_newuserdatauv(L, sizeof *o * (size_t)(*n ? *n : 1), 0);
  for (int k = 0; k < *n; k++) {
    lua_geti(L, i, 2 * k + 1);
    lua_geti(L, i, 2 * k + 2);
    o[k].op = lua_isnil(L, -2) ? NULL : lmf_checkop(L, -2);
    o[k].index = (int)luaL_optinteger(L, -1, 0);
    lua_pop(L, 2);
  }
  return o;
}

/* gradients(g, ys {op, i, ...}, xs {op, i, ...}, grad_ys {op|false, i, ...} or nil)
 *   -> {op_or_false, index, ...} per x (false: no gradient) */
static int gradients(lua_State *L)
{
  mf_graph *g = lmf_checkgraph(L, 1);
  int ny, nx, ng = 0;
  mf_output *ys = read_pairs(L, 2, &ny), *xs = read_pairs(L, 3, &nx), *gys = NULL;
  if (!lua_isnoneornil(L, 4)) {
    gys = read_pairs(L, 4, &ng);
    if (ng != ny) return luaL_error(L, "tf.gradients: %d grad_ys for %d ys", ng, ny);
  }
  mf_output *dx = lua_newuserdatauv(L, sizeof *dx * (size_t)(nx ? nx : 1), 0);
  mf_status *s = mf_status_new();
  if (!s) return luaL_error(L, "out of memory");
  mf_gradients(g, ys, ny, xs, nx, gys, dx, s);
  if (mf_status_code(s) != MF_OK) return lmf_error(L, s);
  mf_status_delete(s);
  lua_createtable(L, 2 * nx, 0);
  for (int k = 0; k < nx; k++) {
    if (dx[k].op)
      lmf_pushop(L, dx[k].op, 1);
    else
      lua_pushboolean(L, 0);
    lua_rawseti(L, -2, 2 * k + 1);
    lua_pushinteger(L, dx[k].index);
    lua_rawseti(L, -2, 2 * k + 2);
  }
  return 1;
}

static int op_type_exists(lua_State *L)
{
  lua_pushboolean(L, mf_op_type_exists(lmf_checkstring(L, 1)));
  return 1;
}

static int op_type_nref(lua_State *L)
{
  lua_pushinteger(L, mf_op_type_num_ref_inputs(lmf_checkstring(L, 1)));
  return 1;
}

/* Pushes a def's input or output list: {{name =, optional =, list =, ref =,
 * host =}, ...} (flags only where true). */
static void push_args(lua_State *L, const mf_op_def *d, bool out)
{
  int n = out ? mf_op_def_num_outputs(d) : mf_op_def_num_inputs(d);
  lua_createtable(L, n, 0);
  static const struct {
    int flag;
    const char *key;
  } marks[] = {{MF_ARG_OPTIONAL, "optional"},
               {MF_ARG_LIST, "list"},
               {MF_ARG_REF, "ref"},
               {MF_ARG_HOST, "host"}};
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, out ? mf_op_def_output_name(d, i) : mf_op_def_input_name(d, i));
    lua_setfield(L, -2, "name");
    int f = out ? mf_op_def_output_flags(d, i) : mf_op_def_input_flags(d, i);
    for (size_t m = 0; m < sizeof marks / sizeof *marks; m++)
      if (f & marks[m].flag) lua_pushboolean(L, 1), lua_setfield(L, -2, marks[m].key);
    lua_rawseti(L, -2, i + 1);
  }
}

/* A default in its kind's Lua form: integer, number, boolean or string. */
static void push_default(lua_State *L, int kind, const char *v)
{
  if (kind == MF_ATTR_INT)
    lua_pushinteger(L, (lua_Integer)strtoll(v, NULL, 10));
  else if (kind == MF_ATTR_FLOAT)
    lua_pushnumber(L, strtod(v, NULL));
  else if (kind == MF_ATTR_BOOL)
    lua_pushboolean(L, strcmp(v, "true") == 0);
  else
    lua_pushstring(L, v);
}

/* op_def(type) -> {type, doc, min_inputs, max_inputs (nil: any number),
 * inputs, outputs, attrs = {{name, kind, default, required}, ...}}, or nil */
static int op_def(lua_State *L)
{
  const mf_op_def *d = mf_op_def_get(lmf_checkstring(L, 1));
  if (!d) return 0;
  lua_createtable(L, 0, 7);
  lua_pushstring(L, mf_op_def_type(d));
  lua_setfield(L, -2, "type");
  lua_pushstring(L, mf_op_def_doc(d));
  lua_setfield(L, -2, "doc");
  lua_pushinteger(L, mf_op_def_min_inputs(d));
  lua_setfield(L, -2, "min_inputs");
  if (mf_op_def_max_inputs(d) >= 0) {
    lua_pushinteger(L, mf_op_def_max_inputs(d));
    lua_setfield(L, -2, "max_inputs");
  }
  push_args(L, d, false);
  lua_setfield(L, -2, "inputs");
  push_args(L, d, true);
  lua_setfield(L, -2, "outputs");
  int n = mf_op_def_num_attrs(d);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 4);
    lua_pushstring(L, mf_op_def_attr_name(d, i));
    lua_setfield(L, -2, "name");
    int kind = mf_op_def_attr_kind(d, i);
    lua_pushstring(L, mf_attr_kind_name((mf_attr_kind)kind));
    lua_setfield(L, -2, "kind");
    const char *v = mf_op_def_attr_default(d, i);
    if (v) push_default(L, kind, v), lua_setfield(L, -2, "default");
    lua_pushboolean(L, mf_op_def_attr_required(d, i));
    lua_setfield(L, -2, "required");
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "attrs");
  return 1;
}

/* graph_add_function(g, name, args {op, ...}, results {op, index, ...}, targets {op, ...}) */
static int graph_add_function(lua_State *L)
{
  mf_graph *g = lmf_checkgraph(L, 1);
  const char *name = lmf_checkstring(L, 2);
  int nres;
  mf_op **lists[2];
  int counts[2];
  for (int l = 0; l < 2; l++) {
    int idx = l ? 5 : 3;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_Integer len = luaL_len(L, idx);
    if (len < 0 || len > (1 << 24)) luaL_argerror(L, idx, "length out of range");
    counts[l] = (int)len;
    lists[l] = lua_newuserdatauv(L, sizeof(mf_op *) * (size_t)(len ? len : 1), 0);
    for (int k = 0; k < counts[l]; k++) {
      lua_geti(L, idx, k + 1);
      lists[l][k] = lmf_checkop(L, -1);
      lua_pop(L, 1);
    }
  }
  mf_output *res = read_pairs(L, 4, &nres);
  mf_status *s = mf_status_new();
  if (!s) return luaL_error(L, "out of memory");
  if (!mf_graph_add_function(g, name, counts[0], lists[0], nres, res, counts[1], lists[1], s))
    return lmf_error(L, s);
  mf_status_delete(s);
  return 0;
}

/* op_types() -> {type = has_gradient, ...} for every registered op type */
static int op_types(lua_State *L)
{
  lua_newtable(L);
  const char *t;
  for (int i = 0; (t = mf_op_type_name(i)) != NULL; i++) {
    lua_pushboolean(L, mf_op_type_has_gradient(t));
    lua_setfield(L, -2, t);
  }
  return 1;
}

void lmf_open_graph(lua_State *L)
{
  static const luaL_Reg graph_mt[] = {{"__gc", graph_gc}, {NULL, NULL}};
  luaL_newmetatable(L, LMF_GRAPH);
  luaL_setfuncs(L, graph_mt, 0);
  lua_pop(L, 1);
  luaL_newmetatable(L, LMF_OP);
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {{"graph_new", graph_new},
                                 {"graph_num_ops", graph_num_ops},
                                 {"graph_op", graph_op},
                                 {"graph_op_id_by_name", graph_op_id_by_name},
                                 {"graph_unique_name", graph_unique_name},
                                 {"graph_set_seed", graph_set_seed},
                                 {"graph_seed", graph_seed},
                                 {"op_new", op_new},
                                 {"op_info", op_info},
                                 {"op_type_exists", op_type_exists},
                                 {"gradients", gradients},
                                 {"op_types", op_types},
                                 {"op_type_nref", op_type_nref},
                                 {"op_def", op_def},
                                 {"graph_add_function", graph_add_function},
                                 {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
