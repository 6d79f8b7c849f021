/* Arrays: tensor values in Lua (what sess:run returns and feeds take). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lmf.h"

mf_tensor *lmf_checkarray(lua_State *L, int i)
{
  lmf_array *a = luaL_checkudata(L, i, LMF_ARRAY);
  if (!a->t) luaL_error(L, "attempt to use a released Array");
  return a->t;
}

void lmf_pusharray(lua_State *L, mf_tensor *t)
{
  lmf_array *a = lua_newuserdatauv(L, sizeof *a, 0);
  a->t = t;
  luaL_setmetatable(L, LMF_ARRAY);
}

static int array_gc(lua_State *L)
{
  lmf_array *a = luaL_checkudata(L, 1, LMF_ARRAY);
  mf_tensor_delete(a->t);
  a->t = NULL;
  return 0;
}

/* ---------------------------------------------------------------- element access */

static void push_elem(lua_State *L, const mf_tensor *t, int64_t i)
{
  const void *p = mf_tensor_data(t);
  switch (mf_tensor_dtype(t)) {
  case MF_FLOAT32: lua_pushnumber(L, ((const float *)p)[i]); break;
  case MF_FLOAT64: lua_pushnumber(L, ((const double *)p)[i]); break;
  case MF_INT32: lua_pushinteger(L, ((const int32_t *)p)[i]); break;
  case MF_INT64: lua_pushinteger(L, ((const int64_t *)p)[i]); break;
  case MF_BOOL: lua_pushboolean(L, ((const uint8_t *)p)[i]); break;
  case MF_UINT8: lua_pushinteger(L, ((const uint8_t *)p)[i]); break;
  case MF_STRING: {
    size_t n;
    const char *str = mf_tensor_string(t, i, &n);
    lua_pushlstring(L, str, n);
    break;
  }
  default: lua_pushnil(L);
  }
}

/* Stores the Lua value at index v as element i of t (data p, unless a
 * string tensor); raises on a value that does not fit the dtype. */
static void store_elem(lua_State *L, mf_tensor *t, void *p, int64_t i, int v)
{
  mf_dtype dt = mf_tensor_dtype(t);
  if (dt == MF_STRING) {
    if (lua_type(L, v) != LUA_TSTRING)
      luaL_error(L, "a string Array needs strings, got %s", luaL_typename(L, v));
    size_t n;
    const char *str = lua_tolstring(L, v, &n);
    mf_status *s = mf_status_new();
    if (!mf_tensor_set_string(t, i, str, n, s)) lmf_error(L, s);
    mf_status_delete(s);
    return;
  }
  if (lua_type(L, v) == LUA_TSTRING)
    luaL_error(L, "a %s Array needs %s, got a string", mf_dtype_name(dt),
               dt == MF_BOOL ? "true/false" : "numbers");
  if (dt == MF_BOOL) {
    if (!lua_isboolean(L, v))
      luaL_error(L, "a bool Array needs true/false, got %s", luaL_typename(L, v));
    ((uint8_t *)p)[i] = (uint8_t)lua_toboolean(L, v);
    return;
  }
  if (lua_type(L, v) != LUA_TNUMBER)
    luaL_error(L, "a %s Array needs numbers, got %s", mf_dtype_name(dt), luaL_typename(L, v));
  if (dt == MF_FLOAT32) {
    ((float *)p)[i] = (float)lua_tonumber(L, v);
    return;
  }
  if (dt == MF_FLOAT64) {
    ((double *)p)[i] = lua_tonumber(L, v);
    return;
  }
  int isint;
  lua_Integer x = lua_tointegerx(L, v, &isint);
  if (!isint)
    luaL_error(L, "%s is not an integer, cannot store it in a %s Array", lua_tostring(L, v),
               mf_dtype_name(dt));
  if ((dt == MF_INT32 && (x < INT32_MIN || x > INT32_MAX)) ||
      (dt == MF_UINT8 && (x < 0 || x > 255)))
    luaL_error(L, "%I is out of range for %s", (LUAI_UACINT)x, mf_dtype_name(dt));
  switch (dt) {
  case MF_INT32: ((int32_t *)p)[i] = (int32_t)x; break;
  case MF_INT64: ((int64_t *)p)[i] = x; break;
  default: ((uint8_t *)p)[i] = (uint8_t)x; break;
  }
}

/* ---------------------------------------------------------------- from Lua values */

typedef struct {
  int ndim;
  int64_t dims[MF_MAX_DIMS];
  int floats, ints, bools, strings;
} scan_state;

/* Checks that the nested table at index v is rectangular with the shape
 * found along its first elements, and notes the kinds of its leaves. Tables
 * are read raw: values are data, and a __len or __index that lies (2^62
 * elements, always answering) must not make moonflow read for ever. */
static void scan(lua_State *L, int v, int depth, scan_state *st)
{
  if (depth == st->ndim) {
    int t = lua_type(L, v);
    if (t == LUA_TBOOLEAN)
      st->bools++;
    else if (t == LUA_TNUMBER)
      lua_isinteger(L, v) ? st->ints++ : st->floats++;
    else if (t == LUA_TSTRING)
      st->strings++;
    else if (t == LUA_TTABLE && depth > 0)
      luaL_error(L, "ragged nested table: expected a number at depth %d, got a table", depth);
    else
      luaL_error(L, "cannot make a tensor from a %s", luaL_typename(L, v));
    return;
  }
  if (lua_type(L, v) != LUA_TTABLE)
    luaL_error(L, "ragged nested table: expected a table at depth %d, got %s", depth + 1,
               luaL_typename(L, v));
  if ((int64_t)lua_rawlen(L, v) != st->dims[depth])
    luaL_error(L, "ragged nested table: lengths %d and %d at depth %d", (int)st->dims[depth],
               (int)lua_rawlen(L, v), depth + 1);
  luaL_checkstack(L, 4, "nested table");
  for (int64_t k = 1; k <= st->dims[depth]; k++) {
    lua_rawgeti(L, v, k);
    scan(L, lua_gettop(L), depth + 1, st);
    lua_pop(L, 1);
  }
}

static void fill(lua_State *L, int v, int depth, const scan_state *st, mf_tensor *t, void *p,
                 int64_t *pos)
{
  if (depth == st->ndim) {
    store_elem(L, t, p, (*pos)++, v);
    return;
  }
  for (int64_t k = 1; k <= st->dims[depth]; k++) {
    lua_rawgeti(L, v, k);
    fill(L, lua_gettop(L), depth + 1, st, t, p, pos);
    lua_pop(L, 1);
  }
}

/* array(value [, dtype]) -> Array. value: number, boolean, nested table. The
 * dtype defaults to the Lua convention: any float -> float32, integers ->
 * int32, booleans -> bool, strings -> string. */
static int array_new(lua_State *L)
{
  scan_state st = {0};
  lua_settop(L, 2);
  int v = 1;
  /* the shape along first elements */
  lua_pushvalue(L, 1);
  while (lua_type(L, -1) == LUA_TTABLE) {
    if (st.ndim == MF_MAX_DIMS) return luaL_error(L, "nested table deeper than %d", MF_MAX_DIMS);
    st.dims[st.ndim++] = (int64_t)lua_rawlen(L, -1);
    if (st.dims[st.ndim - 1] == 0) break;
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
  scan(L, v, 0, &st); /* every row, even when the first is empty */
  mf_dtype dt;
  if (!lua_isnil(L, 2))
    dt = lmf_checkdtype(L, 2);
  else if ((st.bools > 0) + (st.ints + st.floats > 0) + (st.strings > 0) > 1)
    return luaL_error(L, "cannot mix %s",
                      st.strings && st.bools ? "strings and booleans"
                      : st.strings           ? "strings and numbers"
                                             : "booleans and numbers");
  else
    dt = st.strings              ? MF_STRING
         : st.bools              ? MF_BOOL
         : st.floats || !st.ints ? MF_FLOAT32
                                 : MF_INT32;
  mf_status *s = mf_status_new();
  mf_tensor *t = mf_tensor_new(dt, st.ndim, st.dims, s);
  /* a new tensor: never copies (strings are set element by element) */
  void *data = t && dt != MF_STRING ? mf_tensor_mutable_data(t, s) : NULL;
  if (!t || (!data && dt != MF_STRING)) {
    mf_tensor_delete(t);
    return lmf_error(L, s);
  }
  mf_status_delete(s);
  lmf_pusharray(L, t); /* owns t from here, even if fill raises */
  int64_t pos = 0;
  if (mf_tensor_numel(t) > 0) fill(L, v, 0, &st, t, data, &pos);
  return 1;
}

/* array_from_bytes(s) -> uint8 Array of the string's bytes. */
static int array_from_bytes(lua_State *L)
{
  size_t n;
  const char *str = luaL_checklstring(L, 1, &n);
  int64_t dims[1] = {(int64_t)n};
  mf_status *s = mf_status_new();
  mf_tensor *t = mf_tensor_new(MF_UINT8, 1, dims, s);
  void *data = t ? mf_tensor_mutable_data(t, s) : NULL; /* a new tensor: never copies */
  if (!data) {
    mf_tensor_delete(t);
    return lmf_error(L, s);
  }
  mf_status_delete(s);
  memcpy(data, str, n);
  lmf_pusharray(L, t);
  return 1;
}

/* ---------------------------------------------------------------- methods */

static int64_t check_index(lua_State *L, const mf_tensor *t, int i)
{
  int isint;
  lua_Integer k = lua_tointegerx(L, i, &isint);
  if (!isint) luaL_error(L, "Array index must be an integer");
  if (mf_tensor_ndim(t) == 0) luaL_error(L, "cannot index a scalar Array (use :item())");
  int64_t n = mf_tensor_dims(t)[0];
  if (k < 1 || k > n) luaL_error(L, "index %d is out of range 1..%d", (int)k, (int)n);
  return k - 1;
}

static int array_index(lua_State *L)
{
  mf_tensor *t = lmf_checkarray(L, 1);
  if (lua_type(L, 2) == LUA_TNUMBER) {
    int64_t k = check_index(L, t, 2);
    if (mf_tensor_ndim(t) == 1) {
      push_elem(L, t, k);
      return 1;
    }
    mf_status *s = mf_status_new();
    mf_tensor *sub = mf_tensor_subtensor(t, k, s);
    if (!sub) return lmf_error(L, s);
    mf_status_delete(s);
    lmf_pusharray(L, sub);
    return 1;
  }
  const char *key = lmf_checkstring(L, 2);
  if (strcmp(key, "dtype") == 0) {
    lua_pushstring(L, mf_dtype_name(mf_tensor_dtype(t)));
    return 1;
  }
  lua_getfield(L, lua_upvalueindex(1), key); /* methods */
  return 1;
}

/* A string Array's own copy of its strings, replacing the shared one (what
 * mf_tensor_mutable_data does for the other dtypes). */
static mf_tensor *own_strings(lua_State *L, int i)
{
  lmf_array *a = luaL_checkudata(L, i, LMF_ARRAY);
  mf_tensor *t = a->t;
  mf_status *s = mf_status_new();
  mf_tensor *c = mf_tensor_new(MF_STRING, mf_tensor_ndim(t), mf_tensor_dims(t), s);
  for (int64_t e = 0; c && e < mf_tensor_numel(t); e++) {
    size_t n;
    const char *p = mf_tensor_string(t, e, &n);
    if (!mf_tensor_set_string(c, e, p, n, s)) mf_tensor_delete(c), c = NULL;
  }
  if (!c) lmf_error(L, s);
  mf_status_delete(s);
  mf_tensor_delete(t);
  return a->t = c;
}

static int array_newindex(lua_State *L)
{
  mf_tensor *t = lmf_checkarray(L, 1);
  if (mf_tensor_ndim(t) != 1) return luaL_error(L, "a[i] = v needs a rank-1 Array");
  int64_t k = check_index(L, t, 2);
  if (mf_tensor_dtype(t) == MF_STRING) {
    /* in place when nothing else holds the strings, else on a copy */
    if (lua_type(L, 3) == LUA_TSTRING) {
      size_t n;
      const char *str = lua_tolstring(L, 3, &n);
      mf_status *s = mf_status_new();
      if (mf_tensor_set_string(t, k, str, n, s)) {
        mf_status_delete(s);
        return 0;
      }
      mf_status_delete(s);
    }
    store_elem(L, own_strings(L, 1), NULL, k, 3);
    return 0;
  }
  mf_status *s = mf_status_new();
  void *p = mf_tensor_mutable_data(t, s); /* copy-on-write: never changes another value */
  if (!p) return lmf_error(L, s);
  mf_status_delete(s);
  store_elem(L, t, p, k, 3);
  return 0;
}

static int array_len(lua_State *L)
{
  mf_tensor *t = lmf_checkarray(L, 1);
  if (mf_tensor_ndim(t) == 0) return luaL_error(L, "a scalar Array has no length (use :item())");
  lua_pushinteger(L, mf_tensor_dims(t)[0]);
  return 1;
}

static int array_shape(lua_State *L)
{
  mf_tensor *t = lmf_checkarray(L, 1);
  int nd = mf_tensor_ndim(t);
  lua_createtable(L, nd, 0);
  for (int i = 0; i < nd; i++) lua_pushinteger(L, mf_tensor_dims(t)[i]), lua_rawseti(L, -2, i + 1);
  return 1;
}

static int array_numel(lua_State *L)
{
  lua_pushinteger(L, mf_tensor_numel(lmf_checkarray(L, 1)));
  return 1;
}

static int array_item(lua_State *L)
{
  mf_tensor *t = lmf_checkarray(L, 1);
  if (mf_tensor_numel(t) != 1)
    return luaL_error(L, "item() needs an Array with one element, this one has %d",
                      (int)mf_tensor_numel(t));
  push_elem(L, t, 0);
  return 1;
}

/* flat(i): element i (1-based) in row-major order. */
static int array_flat(lua_State *L)
{
  mf_tensor *t = lmf_checkarray(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  if (i < 1 || i > mf_tensor_numel(t))
    return luaL_error(L, "flat index %d is out of range 1..%d", (int)i, (int)mf_tensor_numel(t));
  push_elem(L, t, i - 1);
  return 1;
}

static void to_table(lua_State *L, const mf_tensor *t, int depth, int64_t *pos)
{
  int nd = mf_tensor_ndim(t);
  if (depth == nd) {
    push_elem(L, t, (*pos)++);
    return;
  }
  int64_t n = mf_tensor_dims(t)[depth];
  luaL_checkstack(L, 4, "totable");
  lua_createtable(L, (int)n, 0);
  for (int64_t k = 0; k < n; k++) {
    to_table(L, t, depth + 1, pos);
    lua_rawseti(L, -2, k + 1);
  }
}

static int array_totable(lua_State *L)
{
  int64_t pos = 0;
  to_table(L, lmf_checkarray(L, 1), 0, &pos);
  return 1;
}

/* reshape(shape): a view with a new shape and the same elements. */
static int array_reshape(lua_State *L)
{
  mf_tensor *t = lmf_checkarray(L, 1);
  int64_t dims[MF_MAX_DIMS];
  int nd = lmf_checkshape(L, 2, dims, 0);
  mf_status *s = mf_status_new();
  mf_tensor *v = mf_tensor_reshape(t, nd, dims, s);
  if (!v) return lmf_error(L, s);
  mf_status_delete(s);
  lmf_pusharray(L, v);
  return 1;
}

/* tobytes(): the raw bytes of the buffer (little-endian on these machines). */
static int array_tobytes(lua_State *L)
{
  mf_tensor *t = lmf_checkarray(L, 1);
  if (mf_tensor_dtype(t) == MF_STRING)
    return luaL_error(L, "tobytes(): a string Array has no flat bytes (use totable() or a[i])");
  lua_pushlstring(L, mf_tensor_data(t), mf_tensor_nbytes(t));
  return 1;
}

void lmf_open_array(lua_State *L)
{
  static const luaL_Reg methods[] = {{"shape", array_shape},     {"numel", array_numel},
                                     {"item", array_item},       {"flat", array_flat},
                                     {"totable", array_totable}, {"reshape", array_reshape},
                                     {"tobytes", array_tobytes}, {NULL, NULL}};
  luaL_newmetatable(L, LMF_ARRAY);
  luaL_newlib(L, methods);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "methods"); /* the Lua side adds methods and __tostring */
  lua_pushcclosure(L, array_index, 1);
  lua_setfield(L, -2, "__index");
  static const luaL_Reg mt[] = {{"__newindex", array_newindex},
                                {"__len", array_len},
                                {"__gc", array_gc},
                                {"__close", array_gc},
                                {NULL, NULL}};
  luaL_setfuncs(L, mt, 0);
  lua_setfield(L, -2, "array_metatable");
  static const luaL_Reg fns[] = {
      {"array", array_new}, {"array_from_bytes", array_from_bytes}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
