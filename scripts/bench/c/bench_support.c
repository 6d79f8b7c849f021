/* moonflow_bench: what the Lua benchmarks need that Lua lacks — a monotonic
 * clock, and raw cblas_sgemm timed in the same process as the peer figure. */
#include <cblas.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int l_now(lua_State *L)
{
  lua_pushnumber(L, now());
  return 1;
}

/* sgemm_seconds(m, n, k, reps[, transpose_a, transpose_b]) -> seconds per
 * call of C[m, n] = op(A) op(B), median of reps */
static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int l_sgemm(lua_State *L)
{
  int m = (int)luaL_checkinteger(L, 1), n = (int)luaL_checkinteger(L, 2);
  int k = (int)luaL_checkinteger(L, 3), reps = (int)luaL_optinteger(L, 4, 10);
  bool ta = lua_toboolean(L, 5), tb = lua_toboolean(L, 6);
  CBLAS_TRANSPOSE xa = ta ? CblasTrans : CblasNoTrans, xb = tb ? CblasTrans : CblasNoTrans;
  int lda = ta ? m : k, ldb = tb ? k : n;
  if (m < 1 || n < 1 || k < 1 || reps < 1) return luaL_error(L, "sgemm_seconds: sizes and reps must be positive");
  float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
  float *c = malloc(sizeof(float) * (size_t)m * n);
  double *t = malloc(sizeof(double) * (size_t)reps);
  if (!a || !b || !c || !t) {
    free(a), free(b), free(c), free(t);
    return luaL_error(L, "out of memory");
  }
  for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)((i * 7919) % 1000) / 1000.0f;
  for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (float)((i * 104729) % 1000) / 1000.0f;
  cblas_sgemm(CblasRowMajor, xa, xb, m, n, k, 1, a, lda, b, ldb, 0, c, n);
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    cblas_sgemm(CblasRowMajor, xa, xb, m, n, k, 1, a, lda, b, ldb, 0, c, n);
    t[r] = now() - t0;
  }
  qsort(t, (size_t)reps, sizeof(double), cmp);
  lua_pushnumber(L, t[reps / 2]);
  free(a), free(b), free(c), free(t);
  return 1;
}

int luaopen_moonflow_bench(lua_State *L); /* the module's entry point */

int luaopen_moonflow_bench(lua_State *L)
{
  static const luaL_Reg fns[] = {{"now", l_now}, {"sgemm_seconds", l_sgemm}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
