/* luaopen_moonflow_core: the C half of require("moonflow"). */
#include "lmf.h"

static int version(lua_State *L)
{
  lua_pushstring(L, mf_version());
  return 1;
}

static int gpu_count(lua_State *L)
{
  lua_pushinteger(L, mf_gpu_count());
  return 1;
}

static int cpu_gemm_kernel(lua_State *L)
{
  lua_pushstring(L, mf_cpu_gemm_kernel());
  return 1;
}

int luaopen_moonflow_core(lua_State *L)
{
  lua_newtable(L);
  lmf_open_graph(L);
  lmf_open_array(L);
  lmf_open_session(L);
  lua_pushcfunction(L, version);
  lua_setfield(L, -2, "version");
  lua_pushcfunction(L, gpu_count);
  lua_setfield(L, -2, "gpu_count");
  lua_pushcfunction(L, cpu_gemm_kernel);
  lua_setfield(L, -2, "cpu_gemm_kernel");
  return 1;
}
