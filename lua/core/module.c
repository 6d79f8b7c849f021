/* luaopen_moonflow_core: the C half of require("moonflow"). */
#include "lmf.h"

static int version(lua_State *L)
{
  lua_pushstring(L, mf_version());
  return 1;
}

static int cpu_gemm_kernel(lua_State *L)
{
  lua_pushstring(L, mf_cpu_gemm_kernel());
  return 1;
}

static int cuda_built(lua_State *L)
{
  lua_pushboolean(L, mf_cuda_built());
  return 1;
}

/* devices() -> {{name=, device_type=}, ...} */
static int devices(lua_State *L)
{
  int n = mf_device_count();
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 2);
    lua_pushstring(L, mf_device_name(i)), lua_setfield(L, -2, "name");
    lua_pushstring(L, mf_device_type(i)), lua_setfield(L, -2, "device_type");
    lua_seti(L, -2, i + 1);
  }
  return 1;
}

/* memory_stats() -> {[device name] = {bytes_in_use=, peak_bytes_in_use=, bytes_cached=,
 * num_allocs=}} */
static int memory_stats(lua_State *L)
{
  lua_newtable(L);
  mf_memory_stats st;
  for (int i = 0; mf_device_memory_stats(i, &st); i++) {
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)st.bytes_in_use), lua_setfield(L, -2, "bytes_in_use");
    lua_pushinteger(L, (lua_Integer)st.peak_bytes_in_use), lua_setfield(L, -2, "peak_bytes_in_use");
    lua_pushinteger(L, (lua_Integer)st.bytes_cached), lua_setfield(L, -2, "bytes_cached");
    lua_pushinteger(L, (lua_Integer)st.num_allocs), lua_setfield(L, -2, "num_allocs");
    lua_setfield(L, -2, mf_device_name(i));
  }
  return 1;
}

static int allocator_trim(lua_State *L)
{
  (void)L;
  mf_allocator_trim();
  return 0;
}

/* op_kernels() -> {[op type] = {"cpu", ...}} */
static int op_kernels(lua_State *L)
{
  lua_newtable(L);
  const char *type;
  for (int i = 0; (type = mf_op_type_name(i)); i++) {
    lua_newtable(L);
    const char *backend;
    for (int b = 0, n = 0; (backend = mf_kernel_backend_name(b)); b++)
      if (mf_op_type_has_kernel(type, backend)) lua_pushstring(L, backend), lua_seti(L, -2, ++n);
    lua_setfield(L, -2, type);
  }
  return 1;
}

int luaopen_moonflow_core(lua_State *L)
{
  static const luaL_Reg fns[] = {
      {"version", version},           {"cpu_gemm_kernel", cpu_gemm_kernel},
      {"cuda_built", cuda_built},     {"devices", devices},
      {"memory_stats", memory_stats}, {"allocator_trim", allocator_trim},
      {"op_kernels", op_kernels},     {NULL, NULL}};
  lua_newtable(L);
  lmf_open_graph(L);
  lmf_open_array(L);
  lmf_open_session(L);
  lmf_open_hostcall(L);
  lmf_open_summary(L);
  lmf_open_graph_io(L);
  lmf_open_model(L);
  lmf_open_mpi(L);
  luaL_setfuncs(L, fns, 0);
  return 1;
}
