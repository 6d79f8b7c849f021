/* Summary writers (mf_summary_writer) for tf.summary.FileWriter. */
#include <stdlib.h>
#include <string.h>

#include "lmf.h"

#define LMF_SUMMARY_WRITER "moonflow.SummaryWriter"

typedef struct {
  mf_summary_writer *w;
} lmf_writer;

static mf_summary_writer *checkwriter(lua_State *L, int i)
{
  lmf_writer *w = luaL_checkudata(L, i, LMF_SUMMARY_WRITER);
  if (!w->w) luaL_error(L, "attempt to use a deleted summary writer");
  return w->w;
}

/* Raises the status (after the caller cleaned up) unless it is OK. */
static int done(lua_State *L, mf_status *s)
{
  if (mf_status_code(s) != MF_OK) return lmf_error(L, s);
  mf_status_delete(s);
  return 0;
}

/* Bytes at index i: a Lua string, or a scalar (or one-element) string Array. */
static const char *checkbytes(lua_State *L, int i, size_t *n)
{
  if (lua_type(L, i) == LUA_TSTRING) return lua_tolstring(L, i, n);
  mf_tensor *t = lmf_checkarray(L, i);
  if (mf_tensor_dtype(t) != MF_STRING || mf_tensor_numel(t) != 1)
    luaL_argerror(L, i, "a serialized Summary (a string, or a string Array of one element)");
  return mf_tensor_string(t, 0, n);
}

/* summary_writer_new(logdir) -> writer */
static int writer_new(lua_State *L)
{
  const char *logdir = lmf_checkstring(L, 1);
  lmf_writer *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->w = NULL;
  luaL_setmetatable(L, LMF_SUMMARY_WRITER);
  mf_status *s = mf_status_new();
  ud->w = mf_summary_writer_new(logdir, s);
  if (!ud->w) return lmf_error(L, s);
  mf_status_delete(s);
  return 1;
}

static int writer_path(lua_State *L)
{
  lua_pushstring(L, mf_summary_writer_path(checkwriter(L, 1)));
  return 1;
}

/* w:add_summary(bytes, step) */
static int writer_add_summary(lua_State *L)
{
  mf_summary_writer *w = checkwriter(L, 1);
  size_t n;
  const char *b = checkbytes(L, 2, &n);
  lua_Integer step = luaL_optinteger(L, 3, 0);
  mf_status *s = mf_status_new();
  mf_summary_writer_add_summary(w, b, n, (int64_t)step, s);
  return done(L, s);
}

/* w:add_event(bytes) */
static int writer_add_event(lua_State *L)
{
  mf_summary_writer *w = checkwriter(L, 1);
  size_t n;
  const char *b = checkbytes(L, 2, &n);
  mf_status *s = mf_status_new();
  mf_summary_writer_add_event_bytes(w, b, n, s);
  return done(L, s);
}

/* w:add_graph(core graph, step) */
static int writer_add_graph(lua_State *L)
{
  mf_summary_writer *w = checkwriter(L, 1);
  mf_graph *g = lmf_checkgraph(L, 2);
  lua_Integer step = luaL_optinteger(L, 3, 0);
  mf_status *s = mf_status_new();
  mf_summary_writer_add_graph(w, g, (int64_t)step, s);
  return done(L, s);
}

/* w:add_scalar(tag, value, step) */
static int writer_add_scalar(lua_State *L)
{
  mf_summary_writer *w = checkwriter(L, 1);
  const char *tag = lmf_checkstring(L, 2);
  double v = luaL_checknumber(L, 3);
  lua_Integer step = luaL_optinteger(L, 4, 0);
  mf_status *s = mf_status_new();
  mf_summary_writer_add_scalar(w, tag, v, (int64_t)step, s);
  return done(L, s);
}

/* w:add_text(tag, text, step) */
static int writer_add_text(lua_State *L)
{
  mf_summary_writer *w = checkwriter(L, 1);
  const char *tag = lmf_checkstring(L, 2);
  const char *text = lmf_checkstring(L, 3);
  lua_Integer step = luaL_optinteger(L, 4, 0);
  mf_status *s = mf_status_new();
  mf_summary_writer_add_text(w, tag, text, (int64_t)step, s);
  return done(L, s);
}

/* w:add_histogram(tag, {numbers} | numeric Array, step) */
static int writer_add_histogram(lua_State *L)
{
  mf_summary_writer *w = checkwriter(L, 1);
  const char *tag = lmf_checkstring(L, 2);
  lua_Integer step = luaL_optinteger(L, 4, 0);
  int64_t n;
  double *v;
  if (lua_type(L, 3) == LUA_TTABLE) {
    /* Raw length and reads (values are data; a __len or __index must not
     * size the buffer or raise past it), into a Lua-owned buffer. */
    lua_Unsigned len = lua_rawlen(L, 3);
    if (len > (1u << 28))
      return luaL_error(L, "add_histogram: %I values is too many", (LUAI_UACINT)len);
    n = (int64_t)len;
    v = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *v, 0);
    for (int64_t i = 0; i < n; i++) {
      lua_rawgeti(L, 3, (lua_Integer)i + 1);
      int ok;
      v[i] = lua_tonumberx(L, -1, &ok);
      lua_pop(L, 1);
      if (!ok) return luaL_error(L, "add_histogram: values[%d] is not a number", (int)i + 1);
    }
    mf_status *s = mf_status_new();
    mf_summary_writer_add_histogram(w, tag, v, n, (int64_t)step, s);
    return done(L, s);
  } else {
    mf_tensor *t = lmf_checkarray(L, 3);
    n = mf_tensor_numel(t);
    mf_dtype dt = mf_tensor_dtype(t);
    const void *d = mf_tensor_data(t);
    if (dt == MF_STRING || dt == MF_BOOL || (!d && n))
      return luaL_argerror(L, 3, "a list of numbers or a numeric Array");
    v = malloc((size_t)(n ? n : 1) * sizeof *v);
    if (!v) return luaL_error(L, "add_histogram: out of memory");
    for (int64_t i = 0; i < n; i++) switch (dt) {
      case MF_FLOAT32: v[i] = ((const float *)d)[i]; break;
      case MF_FLOAT64: v[i] = ((const double *)d)[i]; break;
      case MF_INT32: v[i] = ((const int32_t *)d)[i]; break;
      case MF_INT64: v[i] = (double)((const int64_t *)d)[i]; break;
      default: v[i] = ((const uint8_t *)d)[i]; break;
      }
  }
  mf_status *s = mf_status_new();
  mf_summary_writer_add_histogram(w, tag, v, n, (int64_t)step, s);
  free(v);
  return done(L, s);
}

/* w:add_image(tag, Array [h, w, c] of uint8 (or floats in [0, 1]), step) */
static int writer_add_image(lua_State *L)
{
  mf_summary_writer *w = checkwriter(L, 1);
  const char *tag = lmf_checkstring(L, 2);
  mf_tensor *t = lmf_checkarray(L, 3);
  lua_Integer step = luaL_optinteger(L, 4, 0);
  const int64_t *dims = mf_tensor_dims(t);
  mf_dtype dt = mf_tensor_dtype(t);
  if (mf_tensor_ndim(t) != 3 || (dt != MF_UINT8 && dt != MF_FLOAT32 && dt != MF_FLOAT64))
    return luaL_argerror(L, 3, "an Array [height, width, channels] of uint8, float32 or float64");
  if (dims[0] > (1 << 20) || dims[1] > (1 << 20) || dims[2] > 4)
    return luaL_argerror(L, 3, "an image of at most 2^20 x 2^20 pixels and 4 channels");
  int64_t n = mf_tensor_numel(t);
  const void *d = mf_tensor_data(t);
  uint8_t *px = (uint8_t *)(uintptr_t)d, *own = NULL;
  if (dt != MF_UINT8) {
    own = px = malloc((size_t)(n ? n : 1));
    if (!px) return luaL_error(L, "add_image: out of memory");
    for (int64_t i = 0; i < n; i++) {
      double x = dt == MF_FLOAT32 ? ((const float *)d)[i] : ((const double *)d)[i];
      x = x != x ? 0 : x < 0 ? 0 : x > 1 ? 1 : x;
      px[i] = (uint8_t)(x * 255.0 + 0.5);
    }
  }
  mf_status *s = mf_status_new();
  mf_summary_writer_add_image(w, tag, px, (int)dims[0], (int)dims[1], (int)dims[2], (int64_t)step,
                              s);
  free(own);
  return done(L, s);
}

static int writer_flush(lua_State *L)
{
  mf_summary_writer *w = checkwriter(L, 1);
  mf_status *s = mf_status_new();
  mf_summary_writer_flush(w, s);
  return done(L, s);
}

static int writer_close(lua_State *L)
{
  mf_summary_writer *w = checkwriter(L, 1);
  mf_status *s = mf_status_new();
  mf_summary_writer_close(w, s);
  return done(L, s);
}

static int writer_gc(lua_State *L)
{
  lmf_writer *w = luaL_checkudata(L, 1, LMF_SUMMARY_WRITER);
  mf_summary_writer_delete(w->w);
  w->w = NULL;
  return 0;
}

/* summary_metadata(plugin_name) -> bytes */
static int summary_metadata(lua_State *L)
{
  const char *name = lmf_checkstring(L, 1);
  mf_status *s = mf_status_new();
  int64_t n = mf_summary_metadata(name, NULL, 0, s);
  if (n < 0) return lmf_error(L, s);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, (size_t)n);
  mf_summary_metadata(name, p, (size_t)n, s);
  mf_status_delete(s);
  luaL_pushresultsize(&b, (size_t)n);
  return 1;
}

void lmf_open_summary(lua_State *L)
{
  static const luaL_Reg methods[] = {{"path", writer_path},
                                     {"add_summary", writer_add_summary},
                                     {"add_event", writer_add_event},
                                     {"add_graph", writer_add_graph},
                                     {"add_scalar", writer_add_scalar},
                                     {"add_text", writer_add_text},
                                     {"add_histogram", writer_add_histogram},
                                     {"add_image", writer_add_image},
                                     {"flush", writer_flush},
                                     {"close", writer_close},
                                     {NULL, NULL}};
  luaL_newmetatable(L, LMF_SUMMARY_WRITER);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, writer_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_pushcfunction(L, writer_new);
  lua_setfield(L, -2, "summary_writer_new");
  lua_pushcfunction(L, summary_metadata);
  lua_setfield(L, -2, "summary_metadata");
}
