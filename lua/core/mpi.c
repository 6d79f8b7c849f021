/* MPI's process state for require("moonflow.mpi") (mf_mpi_*); the
 * collectives themselves are graph ops. */
#include "lmf.h"

static int mpi_built(lua_State *L)
{
  lua_pushboolean(L, mf_mpi_built());
  return 1;
}

static int mpi_init(lua_State *L)
{
  mf_status *s = mf_status_new();
  if (!mf_mpi_init(s)) return lmf_error(L, s);
  mf_status_delete(s);
  return 0;
}

static int mpi_finalize(lua_State *L)
{
  mf_status *s = mf_status_new();
  if (!mf_mpi_finalize(s)) return lmf_error(L, s);
  mf_status_delete(s);
  return 0;
}

/* mpi_info() -> {initialized=, rank=, size=, local_rank=, local_size=, timeout=, calls=} */
static int mpi_info(lua_State *L)
{
  lua_createtable(L, 0, 7);
  lua_pushboolean(L, mf_mpi_initialized()), lua_setfield(L, -2, "initialized");
  lua_pushinteger(L, mf_mpi_rank()), lua_setfield(L, -2, "rank");
  lua_pushinteger(L, mf_mpi_size()), lua_setfield(L, -2, "size");
  lua_pushinteger(L, mf_mpi_local_rank()), lua_setfield(L, -2, "local_rank");
  lua_pushinteger(L, mf_mpi_local_size()), lua_setfield(L, -2, "local_size");
  lua_pushnumber(L, mf_mpi_timeout()), lua_setfield(L, -2, "timeout");
  lua_pushinteger(L, (lua_Integer)mf_mpi_calls()), lua_setfield(L, -2, "calls");
  return 1;
}

static int mpi_set_timeout(lua_State *L)
{
  mf_mpi_set_timeout(luaL_checknumber(L, 1));
  return 0;
}

void lmf_open_mpi(lua_State *L)
{
  static const luaL_Reg fns[] = {{"mpi_built", mpi_built},
                                 {"mpi_init", mpi_init},
                                 {"mpi_finalize", mpi_finalize},
                                 {"mpi_info", mpi_info},
                                 {"mpi_set_timeout", mpi_set_timeout},
                                 {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
