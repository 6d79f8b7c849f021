/* A C host that runs its own Lua and lets a script train on its data:
 * the points live in the host's buffers, pushed into Lua as Arrays without
 * a copy (mf_tensor_new_borrowed + mf_lua_push_tensor); the script
 * (train.lua) fits y = x·w + b and returns the weights, which the host
 * reads back as tensors.
 *
 *   build/examples/embed_host [dir of train.lua]
 * with LUA_PATH reaching moonflow's Lua files (`. scripts/env.sh build`). */
#include <lauxlib.h>
#include <lualib.h>
#include <moonflow_lua.h>

#include <stdio.h>
#include <stdlib.h>

#define N 512
#define D 2

static float xs[N * D], ys[N]; /* the host's data */

static void make_points(void)
{
  const float w[D] = {2.0f, -3.0f}, b = 0.5f;
  unsigned state = 12345;
  for (int i = 0; i < N; i++) {
    float y = b;
    for (int j = 0; j < D; j++) {
      state = state * 1664525u + 1013904223u;
      xs[i * D + j] = (float)(state >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
      y += w[j] * xs[i * D + j];
    }
    state = state * 1664525u + 1013904223u;
    ys[i] = y + 0.001f * ((float)(state >> 8) / (float)(1u << 24) - 0.5f);
  }
}

static int fail(mf_status *s)
{
  fprintf(stderr, "embed_host: %s\n", mf_status_message(s));
  return 1;
}

int main(int argc, char **argv)
{
  make_points();
  mf_status *s = mf_status_new();
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  if (argc > 1) { /* where train.lua is */
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/?.lua;", argv[1]);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
  }
  if (!mf_lua_open(L, s)) return fail(s);
  lua_pop(L, 1); /* the module table: train.lua requires it itself */

  const int64_t xd[2] = {N, D}, yd[2] = {N, 1};
  mf_tensor *x = mf_tensor_new_borrowed(MF_FLOAT32, 2, xd, xs, NULL, NULL, s);
  mf_tensor *y = mf_tensor_new_borrowed(MF_FLOAT32, 2, yd, ys, NULL, NULL, s);
  if (!x || !y) return fail(s);

  /* train = require("train"); w, b, loss = train(X, Y, 300, 0.5) */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "train");
  if (!mf_lua_pcall(L, 1, 1, s)) return fail(s);
  if (!mf_lua_push_tensor(L, x, s) || !mf_lua_push_tensor(L, y, s)) return fail(s);
  lua_pushinteger(L, 300);
  lua_pushnumber(L, 0.5);
  if (!mf_lua_pcall(L, 4, 3, s)) return fail(s);
  mf_tensor *w = mf_lua_to_tensor(L, -3), *b = mf_lua_to_tensor(L, -2);
  double loss = lua_tonumber(L, -1);
  lua_pop(L, 3);
  if (!w || !b) {
    fprintf(stderr, "embed_host: train.lua did not return Arrays\n");
    return 1;
  }
  const float *wv = mf_tensor_data(w), *bv = mf_tensor_data(b);
  printf("w = {%.4f, %.4f}  b = %.4f  loss %.2e  (generated with w = {2, -3}, b = 0.5)\n", wv[0],
         wv[1], bv[0], loss);

  mf_tensor_delete(w), mf_tensor_delete(b);
  mf_tensor_delete(x), mf_tensor_delete(y);
  lua_close(L); /* the Arrays' references go with the state */
  mf_status_delete(s);
  return 0;
}
