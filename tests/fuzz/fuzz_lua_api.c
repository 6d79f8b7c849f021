/* libFuzzer target: the Lua argument layer, moonflow.core (the sources in lua/core)
 * driven with arbitrary Lua values. Each input is a program for a fresh
 * Lua 5.4 state: a sequence of calls, each picking a function of
 * moonflow.core (or an Array method or metamethod) by index and building
 * its arguments from the bytes: nil, booleans, integers (negative, huge,
 * INT64_MIN), floats (NaN, infinities, -0, denormals, 2^63), short strings
 * with embedded NULs, names the core knows (op types, attribute names and
 * kinds, dtypes, devices), small tables, tables whose __len and __index
 * return odd values or raise, and userdata returned by earlier calls
 * (graphs, operations, sessions, arrays). Every call is protected: a Lua
 * error is the expected answer to a bad argument; a crash or a sanitizer
 * report is a finding. Work per input is bounded: at most MAX_CALLS calls,
 * a Lua heap of LUA_MEM_LIMIT, and (ASan) no allocation over 256 MiB,
 * which the core must answer with an error. */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "moonflow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int luaopen_moonflow_core(lua_State *L);
const char *__asan_default_options(void);

/* A request the core cannot serve must fail with a status, not abort. */
const char *__asan_default_options(void)
{
  return "allocator_may_return_null=1:max_allocation_size_mb=256";
}

#define MAX_CALLS 32
#define MAX_DEPTH 3
#define POOL_MAX 32
#define LUA_MEM_LIMIT ((size_t)64 << 20)

/* ---------------------------------------------------------------- input */

typedef struct {
  const uint8_t *p;
  size_t n;
} input;

static unsigned next(input *in)
{
  if (!in->n) return 0;
  in->n--;
  return *in->p++;
}

/* ---------------------------------------------------------------- palettes */

static const lua_Integer ints[] = {0,
                                   1,
                                   2,
                                   3,
                                   4,
                                   -1,
                                   -2,
                                   -3,
                                   7,
                                   8,
                                   9,
                                   64,
                                   65,
                                   255,
                                   256,
                                   1023,
                                   1024,
                                   65536,
                                   INT32_MAX,
                                   (lua_Integer)INT32_MAX + 1,
                                   INT32_MIN,
                                   (lua_Integer)INT32_MIN - 1,
                                   (lua_Integer)1 << 32,
                                   (lua_Integer)1 << 53,
                                   (lua_Integer)1 << 62,
                                   -((lua_Integer)1 << 62),
                                   INT64_MAX,
                                   INT64_MIN,
                                   INT64_MIN + 1};
#define NINTS (sizeof ints / sizeof ints[0])

static double float_at(unsigned i)
{
  static const double f[] = {0.5,    -0.0,    1e300, -1e300, 1e-310, 3.7,  -2.5,
                             9.2e18, -9.3e18, 2e9,   -3e9,   1e38,   4e38, 0.0};
  switch (i % 18) {
  case 0: return NAN;
  case 1: return -NAN;
  case 2: return INFINITY;
  case 3: return -INFINITY;
  default: return f[(i % 18) - 4];
  }
}

static const char *const words[] = {
    /* dtypes */
    "float32", "float64", "int32", "int64", "bool", "uint8", "float16", "string", "",
    /* attribute kinds (op_new) */
    "int", "float", "type", "tensor", "shape", "ints",
    /* attribute names */
    "dtype", "value", "T", "DstT", "axis", "perm", "keep_dims", "transpose_a", "transpose_b",
    "validate_shape", "use_nesterov", "seed", "seed2", "mean", "stddev", "minval", "maxval",
    "start", "limit", "delta", "depth", "on_value", "off_value", "num_split", "num_samples",
    "output_dtype", "multiples", "begin", "size", "keep_prob", "forget_bias", "gain", "N", "num",
    "act", "min", "max",
    /* devices */
    "/cpu:0", "/device:CPU:0", "/gpu:0", "/device:GPU:1", "/job:localhost/replica:0/task:0",
    "/device:TEST:0", "/cpu:-1", "/cpu:99999999999999999999",
    /* names and locations */
    "x", "a/b", "a_1", "Variable", "init", "x.lua:12"};
#define NWORDS (sizeof words / sizeof words[0])
#define FIRST_DEVICE 52 /* words[FIRST_DEVICE...]: the devices */
#define NDEVICES 8

static int num_op_types;
static int trace; /* MF_FUZZ_TRACE=1: each call and its answer on stderr */

/* ---------------------------------------------------------------- Lua heap */

static size_t lua_heap;

static void *bounded_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
  (void)ud;
  if (!ptr) osize = 0;
  if (nsize == 0) {
    lua_heap -= osize;
    free(ptr);
    return NULL;
  }
  if (nsize > osize && lua_heap + (nsize - osize) > LUA_MEM_LIMIT) return NULL;
  void *q = realloc(ptr, nsize);
  if (q) lua_heap = lua_heap - osize + nsize;
  return q;
}

/* ---------------------------------------------------------------- odd tables */

/* Metamethod calls left for this input: a table whose __len claims 2^62
 * elements and whose __index answers each would keep the core reading for
 * ever (finding: tf.constant / core.array trusts __len), so past the budget
 * the metamethods raise. */
static long metamethod_budget;
#define METAMETHOD_BUDGET 20000

static void spend(lua_State *L)
{
  if (--metamethod_budget < 0) luaL_error(L, "metamethod budget spent");
}

/* __len: the value in upvalue 1. */
static int odd_len(lua_State *L)
{
  spend(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  return 1;
}

/* __index: the value in upvalue 1, or an error when upvalue 2 is true. */
static int odd_index(lua_State *L)
{
  spend(L);
  if (lua_toboolean(L, lua_upvalueindex(2))) return luaL_error(L, "__index raised");
  lua_pushvalue(L, lua_upvalueindex(1));
  return 1;
}

/* The stack while a program runs: the callable list and the pool of values
 * returned by earlier calls. */
enum { FNS = 1, POOL = 2, MOD = 3 };

static void push_pool(lua_State *L, input *in);
static void push_typed(lua_State *L, input *in, char kind);

static void push_value(lua_State *L, input *in, int depth);

static void push_int(lua_State *L, input *in)
{
  unsigned k = next(in);
  if (k & 0x80)
    lua_pushinteger(L, ints[k % NINTS]);
  else
    lua_pushinteger(L, (lua_Integer)(k & 0x3f) - 8);
}

static void push_word(lua_State *L, input *in)
{
  unsigned k = next(in);
  if ((k & 1) && num_op_types > 0)
    lua_pushstring(L, mf_op_type_name((int)((k >> 1) % (unsigned)num_op_types)));
  else
    lua_pushstring(L, words[(k >> 1) % NWORDS]);
}

static void push_pool(lua_State *L, input *in)
{
  lua_Integer n = luaL_len(L, POOL);
  unsigned k = next(in);
  if (n == 0)
    lua_pushnil(L);
  else
    lua_geti(L, POOL, 1 + (lua_Integer)(k % (unsigned)n));
}

/* {x1, i1, x2, i2, ...}: pool values with small integers (the shape of
 * input, feed and fetch lists). */
static void push_pairs(lua_State *L, input *in)
{
  int n = (int)(next(in) % 5);
  lua_createtable(L, 2 * n, 0);
  for (int k = 0; k < n; k++) {
    push_pool(L, in);
    lua_rawseti(L, -2, 2 * k + 1);
    push_int(L, in);
    lua_rawseti(L, -2, 2 * k + 2);
  }
}

/* {name, kind, value, ...}: attribute lists of op_new. */
static void push_attrs(lua_State *L, input *in, int depth)
{
  int n = (int)(next(in) % 5);
  lua_createtable(L, 3 * n, 0);
  for (int k = 0; k < n; k++) {
    push_word(L, in);
    lua_rawseti(L, -2, 3 * k + 1);
    push_word(L, in);
    lua_rawseti(L, -2, 3 * k + 2);
    push_value(L, in, depth + 1);
    lua_rawseti(L, -2, 3 * k + 3);
  }
}

/* A rectangular nested table of numbers or booleans (Array values); the
 * last row is sometimes ragged. */
static void push_nested(lua_State *L, input *in, int rank, const int *dims, unsigned leaf)
{
  if (rank == 0) {
    switch (leaf % 4) {
    case 0: push_int(L, in); break;
    case 1: lua_pushnumber(L, float_at(next(in))); break;
    case 2: lua_pushboolean(L, next(in) & 1); break;
    default: push_value(L, in, MAX_DEPTH); break;
    }
    return;
  }
  luaL_checkstack(L, 4, "nested");
  lua_createtable(L, dims[0], 0);
  for (int k = 0; k < dims[0]; k++) {
    push_nested(L, in, rank - 1, dims + 1, leaf);
    lua_rawseti(L, -2, k + 1);
  }
}

static void push_value(lua_State *L, input *in, int depth)
{
  luaL_checkstack(L, 8, "fuzz value");
  unsigned k = next(in);
  if (depth >= MAX_DEPTH && k % 14 >= 8) k = 3; /* no deeper tables */
  switch (k % 14) {
  case 0: lua_pushnil(L); break;
  case 1: lua_pushboolean(L, k & 0x10); break;
  case 2: push_int(L, in); break;
  case 3: {
    uint64_t v = 0;
    for (int b = 0; b < 8; b++) v = v << 8 | next(in);
    lua_pushinteger(L, (lua_Integer)v);
    break;
  }
  case 4: lua_pushnumber(L, float_at(next(in))); break;
  case 5: {
    char buf[24];
    size_t n = next(in) % sizeof buf;
    for (size_t b = 0; b < n; b++) buf[b] = (char)next(in);
    lua_pushlstring(L, buf, n);
    break;
  }
  case 6: push_word(L, in); break;
  case 7: push_pool(L, in); break;
  case 8: { /* a small table of anything */
    int n = (int)(next(in) % 6);
    lua_createtable(L, n, 0);
    for (int e = 0; e < n; e++) {
      push_value(L, in, depth + 1);
      lua_rawseti(L, -2, e + 1);
    }
    break;
  }
  case 9: { /* a table whose __len and __index answer odd things */
    int n = (int)(next(in) % 4);
    lua_createtable(L, n, 0);
    for (int e = 0; e < n; e++) {
      push_value(L, in, depth + 1);
      lua_rawseti(L, -2, e + 1);
    }
    lua_createtable(L, 0, 2);
    unsigned how = next(in);
    if (how & 1) { /* __len: an odd count, or not a number at all */
      if (how & 2)
        push_int(L, in);
      else
        push_value(L, in, MAX_DEPTH);
      lua_pushcclosure(L, odd_len, 1);
      lua_setfield(L, -2, "__len");
    }
    if (how & 4) { /* __index: an odd value, or an error */
      push_value(L, in, MAX_DEPTH);
      lua_pushboolean(L, how & 8);
      lua_pushcclosure(L, odd_index, 2);
      lua_setfield(L, -2, "__index");
    }
    lua_setmetatable(L, -2);
    break;
  }
  case 10: push_pairs(L, in); break;
  case 11: push_attrs(L, in, depth); break;
  case 12: { /* nested numbers for array() */
    int rank = (int)(next(in) % 4), dims[3];
    for (int d = 0; d < rank; d++) dims[d] = (int)(next(in) % 4);
    unsigned leaf = next(in);
    if (rank == 0) {
      lua_createtable(L, 0, 0);
    } else {
      push_nested(L, in, rank, dims, leaf);
    }
    break;
  }
  default: { /* a list of pool values (targets, controls, checkpoint vars) */
    int n = (int)(next(in) % 4);
    lua_createtable(L, n, 0);
    for (int e = 0; e < n; e++) {
      push_pool(L, in);
      lua_rawseti(L, -2, e + 1);
    }
    break;
  }
  }
}

/* ---------------------------------------------------------------- typed arguments */

/* What each function expects, one letter an argument, so that most calls
 * get past the first check and reach the next: g graph, o operation, s
 * session, a Array, i integer, n number, b boolean, w word, p {x, i, ...}
 * pairs, l list of operations, v list of Arrays, m list of names, t
 * attribute triples, x nested values, d dtype, f checkpoint path, k shape,
 * y op type, e device or nil, c thread count. */
static const struct {
  const char *name, *args;
} sigs[] = {{"graph_new", ""},
            {"graph_num_ops", "g"},
            {"graph_op", "gi"},
            {"graph_op_id_by_name", "gw"},
            {"graph_unique_name", "gw"},
            {"graph_set_seed", "gi"},
            {"graph_seed", "g"},
            {"op_new", "gywpltee"},
            {"op_info", "o"},
            {"op_type_exists", "w"},
            {"op_type_nref", "y"},
            {"op_def", "y"},
            {"graph_add_function", "gwlpl"},
            {"gradients", "gppp"},
            {"array", "xd"},
            {"array_from_bytes", "w"},
            {"session_new", "gccbbb"},
            {"session_run", "spvpl"},
            {"session_close", "s"},
            {"session_set_tracing", "sb"},
            {"session_trace", "s"},
            {"checkpoint_save", "slmf"},
            {"checkpoint_restore", "slmf"},
            {"checkpoint_write_file", "fw"},
            {"checkpoint_remove_stale_temps", "f"},
            {"checkpoint_list", "f"},
            {"model_load", "fmccbbb"},
            {"summary_metadata", "w"},
            {"__index", "aw"},
            {"__newindex", "ain"},
            {"__len", "a"},
            {"__gc", "a"},
            {"__close", "a"},
            {"shape", "a"},
            {"numel", "a"},
            {"item", "a"},
            {"flat", "ai"},
            {"totable", "a"},
            {"reshape", "ak"},
            {"tobytes", "a"}};
#define NSIGS (sizeof sigs / sizeof sigs[0])

static char ckpt_path[96];

static void remove_checkpoint(void)
{
  unlink(ckpt_path);
  char dir[96];
  snprintf(dir, sizeof dir, "%s", ckpt_path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0, rmdir(dir);
}

/* A value from the pool with the metatable `tname` (the first from a
 * position the input picks), else anything from the pool. */
static void push_pool_typed(lua_State *L, input *in, const char *tname)
{
  lua_Integer n = luaL_len(L, POOL);
  unsigned k = next(in);
  for (lua_Integer j = 0; j < n; j++) {
    lua_geti(L, POOL, 1 + (lua_Integer)((k + j) % (unsigned)n));
    if (luaL_testudata(L, -1, tname)) return;
    lua_pop(L, 1);
  }
  push_pool(L, in);
}

static void push_list_typed(lua_State *L, input *in, const char *tname)
{
  int n = (int)(next(in) % 4);
  lua_createtable(L, n, 0);
  for (int e = 0; e < n; e++) {
    push_pool_typed(L, in, tname);
    lua_rawseti(L, -2, e + 1);
  }
}

static void push_pairs_typed(lua_State *L, input *in)
{
  int n = (int)(next(in) % 4);
  lua_createtable(L, 2 * n, 0);
  for (int k = 0; k < n; k++) {
    push_pool_typed(L, in, "moonflow.Operation");
    lua_rawseti(L, -2, 2 * k + 1);
    unsigned b = next(in); /* mostly output 0 */
    lua_pushinteger(L, b < 160 ? 0 : (lua_Integer)(b % 4) - (b == 0xff));
    lua_rawseti(L, -2, 2 * k + 2);
  }
}

static void push_typed(lua_State *L, input *in, char kind)
{
  switch (kind) {
  case 'g': push_pool_typed(L, in, "moonflow.Graph"); break;
  case 'o': push_pool_typed(L, in, "moonflow.Operation"); break;
  case 's': push_pool_typed(L, in, "moonflow.Session"); break;
  case 'a': push_pool_typed(L, in, "moonflow.Array"); break;
  case 'i': push_int(L, in); break;
  case 'c': { /* a thread count: mostly small (each session starts its threads) */
    unsigned d = next(in);
    if (d >= 0xf8)
      push_int(L, in);
    else
      lua_pushinteger(L, d % 4);
    break;
  }
  case 'n': lua_pushnumber(L, float_at(next(in))); break;
  case 'b': lua_pushboolean(L, next(in) & 1); break;
  case 'w': push_word(L, in); break;
  case 'p': push_pairs_typed(L, in); break;
  case 'l': push_list_typed(L, in, "moonflow.Operation"); break;
  case 'v': push_list_typed(L, in, "moonflow.Array"); break;
  case 'm': {
    int n = (int)(next(in) % 4);
    lua_createtable(L, n, 0);
    for (int e = 0; e < n; e++) {
      push_word(L, in);
      lua_rawseti(L, -2, e + 1);
    }
    break;
  }
  case 't': { /* attributes the ops read, each with a value of its kind */
    static const char *const attrs[][2] = {{"dtype", "type"},
                                           {"value", "tensor"},
                                           {"shape", "shape"},
                                           {"T", "type"},
                                           {"DstT", "type"},
                                           {"output_dtype", "type"},
                                           {"axis", "int"},
                                           {"perm", "ints"},
                                           {"multiples", "ints"},
                                           {"begin", "ints"},
                                           {"size", "ints"},
                                           {"keep_dims", "bool"},
                                           {"transpose_a", "bool"},
                                           {"transpose_b", "bool"},
                                           {"validate_shape", "bool"},
                                           {"use_nesterov", "bool"},
                                           {"seed", "int"},
                                           {"seed2", "int"},
                                           {"depth", "int"},
                                           {"num_split", "int"},
                                           {"num_samples", "int"},
                                           {"N", "int"},
                                           {"num", "int"},
                                           {"mean", "float"},
                                           {"stddev", "float"},
                                           {"minval", "float"},
                                           {"maxval", "float"},
                                           {"start", "float"},
                                           {"limit", "float"},
                                           {"delta", "float"},
                                           {"on_value", "float"},
                                           {"off_value", "float"},
                                           {"keep_prob", "float"},
                                           {"forget_bias", "float"},
                                           {"gain", "float"},
                                           {"min", "float"},
                                           {"max", "float"},
                                           {"act", "string"},
                                           {"shape", "ints"}};
    int n = (int)(next(in) % 4);
    lua_createtable(L, 3 * n, 0);
    for (int e = 0; e < n; e++) {
      unsigned a = next(in) % (sizeof attrs / sizeof attrs[0]);
      lua_pushstring(L, attrs[a][0]);
      lua_rawseti(L, -2, 3 * e + 1);
      lua_pushstring(L, attrs[a][1]);
      lua_rawseti(L, -2, 3 * e + 2);
      const char *k = attrs[a][1];
      char c = !strcmp(k, "type")     ? 'd'
               : !strcmp(k, "tensor") ? 'a'
               : !strcmp(k, "int")    ? 'i'
               : !strcmp(k, "float")  ? 'n'
               : !strcmp(k, "bool")   ? 'b'
               : !strcmp(k, "string") ? 'w'
                                      : 'k';
      if (c == 'n' && (next(in) & 1))
        push_int(L, in); /* ordinary values, mostly */
      else
        push_typed(L, in, c);
      lua_rawseti(L, -2, 3 * e + 3);
    }
    break;
  }
  case 'y': /* an op type */
    lua_pushstring(L, mf_op_type_name((int)(next(in) % (unsigned)num_op_types)));
    break;
  case 'e': { /* mostly no device, else one of the device names */
    unsigned d = next(in);
    if (d < 192)
      lua_pushnil(L);
    else
      lua_pushstring(L, words[FIRST_DEVICE + d % NDEVICES]);
    break;
  }
  case 'k': { /* a shape: small dims, sometimes -1 or huge */
    int n = (int)(next(in) % 5);
    lua_createtable(L, n, 0);
    for (int e = 0; e < n; e++) {
      unsigned d = next(in);
      if (d >= 0xf0)
        lua_pushinteger(L, ints[d % NINTS]);
      else
        lua_pushinteger(L, (lua_Integer)(d % 5) - 1);
      lua_rawseti(L, -2, e + 1);
    }
    break;
  }
  case 'd': lua_pushstring(L, words[next(in) % 9]); break;
  case 'f': /* never a path outside this process's directory */
    switch (next(in) % 4) {
    case 0: lua_pushliteral(L, "/nonexistent/dir/ck"); break;
    case 1: lua_pushliteral(L, "/dev/null"); break;
    default: lua_pushstring(L, ckpt_path); break;
    }
    break;
  default: { /* 'x' */
    int rank = (int)(next(in) % 4), dims[3];
    for (int d = 0; d < rank; d++) dims[d] = (int)(next(in) % 4);
    if (rank == 0)
      push_int(L, in);
    else
      push_nested(L, in, rank, dims, next(in));
    break;
  }
  }
}

/* ---------------------------------------------------------------- the callables */

/* Fills the table at FNS with every function of moonflow.core (sorted by
 * name: pairs' order differs between states), the Array methods and the
 * Array metamethods. The module table is at `mod`. */
static const char *fn_names[160]; /* FNS[k]'s name, valid while its state lives */

static void collect(lua_State *L, int mod)
{
  int n = 0;
  const char *names[128];
  lua_pushnil(L);
  while (lua_next(L, mod) && n < 128) {
    /* summary_writer_new would create directories and event files where
     * the bytes say (fuzz_event_file covers what the writer parses);
     * mpi_init starts Open MPI in this process for good, whose own
     * allocations live until exit (LeakSanitizer reports them; mpi_spec
     * covers its arguments) */
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TFUNCTION &&
        strcmp(lua_tostring(L, -2), "summary_writer_new") != 0 &&
        strcmp(lua_tostring(L, -2), "mpi_init") != 0)
      names[n++] = lua_tostring(L, -2); /* the key stays in the module table */
    lua_pop(L, 1);
  }
  for (int i = 1; i < n; i++) /* insertion sort */
    for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
      const char *t = names[j];
      names[j] = names[j - 1], names[j - 1] = t;
    }
  int k = 0;
  for (int i = 0; i < n; i++) {
    lua_getfield(L, mod, names[i]);
    lua_rawseti(L, FNS, ++k);
    fn_names[k] = names[i];
  }
  lua_getfield(L, mod, "array_metatable");
  static const char *const meta[] = {"__index", "__newindex", "__len", "__gc", "__close"};
  for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++) {
    lua_getfield(L, -1, meta[i]);
    lua_rawseti(L, FNS, ++k);
    fn_names[k] = meta[i];
  }
  lua_getfield(L, -1, "methods");
  static const char *const methods[] = {"shape",   "numel",   "item",   "flat",
                                        "totable", "reshape", "tobytes"};
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
    lua_getfield(L, -1, methods[i]);
    lua_rawseti(L, FNS, ++k);
    fn_names[k] = methods[i];
  }
  lua_pop(L, 2);
}

/* Keeps the call's userdata and table results for later calls. */
static void keep_results(lua_State *L, int base)
{
  for (int i = base; i <= lua_gettop(L); i++) {
    int t = lua_type(L, i);
    if (t != LUA_TUSERDATA && t != LUA_TTABLE) continue;
    lua_Integer n = luaL_len(L, POOL);
    lua_pushvalue(L, i);
    lua_rawseti(L, POOL, n < POOL_MAX ? n + 1 : 1 + (n + i) % POOL_MAX);
  }
}

/* The program, in a protected call (an out-of-memory error while building
 * arguments ends it). */
static int run_program(lua_State *L)
{
  input *in = lua_touserdata(L, 1);
  lua_settop(L, 0);
  lua_createtable(L, 64, 0);       /* FNS */
  lua_createtable(L, POOL_MAX, 0); /* POOL */
  lua_pushcfunction(L, luaopen_moonflow_core);
  lua_call(L, 0, 1); /* MOD: stays, its keys are fn_names */
  collect(L, MOD);
  lua_Integer nfns = luaL_len(L, FNS);
  if (nfns == 0) abort();
  /* the pool starts with a graph, Arrays, and operations to take as inputs */
  luaL_loadstring(L, "local c = ...\n"
                     "local g = c.graph_new()\n"
                     "local a, b, t = c.array({1.5, -2, 3}), c.array({{1, 2}, {3, 4}}, 'int32'), "
                     "c.array(true)\n"
                     "local function const(name, v)\n"
                     "  return c.op_new(g, 'Const', name, {}, {}, {'value', 'tensor', v, 'dtype', "
                     "'type', v.dtype})\n"
                     "end\n"
                     "return g, a, b, t, const('a', a), const('b', b), const('t', t),\n"
                     "  c.op_new(g, 'Placeholder', 'p', {}, {}, {'dtype', 'type', 'float32', "
                     "'shape', 'shape', {-1, 3}}),\n"
                     "  c.op_new(g, 'VariableV2', 'v', {}, {}, {'dtype', 'type', 'float32', "
                     "'shape', 'shape', {3}})");
  lua_pushvalue(L, MOD);
  lua_call(L, 1, 9);
  for (int i = 9; i >= 1; i--) lua_rawseti(L, POOL, i);

  for (int call = 0; call < MAX_CALLS && in->n > 0; call++) {
    lua_settop(L, MOD);
    unsigned a = next(in);
    int base = lua_gettop(L) + 1;
    lua_Integer f = 1 + (lua_Integer)(next(in) % (unsigned)nfns);
    lua_geti(L, FNS, f);
    const char *sig = NULL;
    for (size_t k = 0; k < NSIGS && !sig; k++)
      if (!strcmp(sigs[k].name, fn_names[f])) sig = sigs[k].args;
    int argc;
    if (sig && (a & 3) != 0) {
      /* mostly the expected kinds, each sometimes replaced by anything */
      argc = (int)strlen(sig);
      for (int k = 0; k < argc; k++) {
        if (next(in) < 24)
          push_value(L, in, 0);
        else
          push_typed(L, in, sig[k]);
      }
    } else {
      argc = (int)(a % 9);
      for (int k = 0; k < argc; k++) push_value(L, in, 0);
    }
    /* Paths always stay this process's: whatever the bytes say, a path
     * parameter ('f') is the checkpoint path. */
    for (int k = 0; sig && k < argc && sig[k]; k++)
      if (sig[k] == 'f') {
        lua_pushstring(L, ckpt_path);
        lua_replace(L, base + 1 + k);
      }
    int bad = lua_pcall(L, argc, 2, 0);
    if (trace)
      fprintf(stderr, "%s(%d args): %s\n", fn_names[f], argc,
              bad ? lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error)" : "ok");
    if (!bad) keep_results(L, base);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!num_op_types) {
    while (mf_op_type_name(num_op_types)) num_op_types++;
    trace = getenv("MF_FUZZ_TRACE") != NULL;
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(ckpt_path, sizeof ckpt_path, "%s/mf_fuzz_lua.%ld", dir, (long)getpid());
    mkdir(ckpt_path, 0700);
    strcat(ckpt_path, "/ck");
    atexit(remove_checkpoint);
  }
  lua_heap = 0;
  metamethod_budget = METAMETHOD_BUDGET;
  lua_State *L = lua_newstate(bounded_alloc, NULL);
  if (!L) return 0;
  input in = {data, size};
  lua_pushcfunction(L, run_program);
  lua_pushlightuserdata(L, &in);
  lua_pcall(L, 1, 0, 0);
  lua_close(L);      /* finalizers: sessions, graphs and arrays in Lua's order */
  unlink(ckpt_path); /* each input starts without a checkpoint */
  return 0;
}
