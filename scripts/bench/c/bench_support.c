/* moonflow_bench: what the Lua benchmarks need that Lua lacks — a monotonic
 * clock, and raw OpenBLAS sgemm/dgemm timed in the same process as the peer figure. */
#include <cblas.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>
#include <stdlib.h>

#include "bench_timing.h"

static int l_now(lua_State *L)
{
  lua_pushnumber(L, bench_now());
  return 1;
}

/* One product C[m, n] = op(A) op(B) of either precision. */
static void gemm(bool f64, CBLAS_TRANSPOSE xa, CBLAS_TRANSPOSE xb, int m, int n, int k,
                 const void *a, int lda, const void *b, int ldb, void *c)
{
  if (f64)
    cblas_dgemm(CblasRowMajor, xa, xb, m, n, k, 1, a, lda, b, ldb, 0, c, n);
  else
    cblas_sgemm(CblasRowMajor, xa, xb, m, n, k, 1, a, lda, b, ldb, 0, c, n);
}

/* n deterministic values in [0, 1) of either precision, spread by `step`. */
static void fill(bool f64, void *p, size_t n, size_t step)
{
  for (size_t i = 0; i < n; i++) {
    double v = (double)((i * step) % 1000) / 1000.0;
    if (f64)
      ((double *)p)[i] = v;
    else
      ((float *)p)[i] = (float)v;
  }
}

/* gemm_seconds(dtype, m, n, k, reps[, transpose_a, transpose_b]) -> seconds
 * per call of OpenBLAS's C[m, n] = op(A) op(B) (dtype "float32": sgemm,
 * "float64": dgemm), the median of reps calls after one untimed call. */
static int l_gemm(lua_State *L)
{
  static const char *const dtypes[] = {"float32", "float64", NULL};
  bool f64 = luaL_checkoption(L, 1, NULL, dtypes) == 1;
  int m = (int)luaL_checkinteger(L, 2), n = (int)luaL_checkinteger(L, 3);
  int k = (int)luaL_checkinteger(L, 4), reps = (int)luaL_optinteger(L, 5, 10);
  bool ta = lua_toboolean(L, 6), tb = lua_toboolean(L, 7);
  CBLAS_TRANSPOSE xa = ta ? CblasTrans : CblasNoTrans, xb = tb ? CblasTrans : CblasNoTrans;
  int lda = ta ? m : k, ldb = tb ? k : n;
  if (m < 1 || n < 1 || k < 1 || reps < 1)
    return luaL_error(L, "gemm_seconds: sizes and reps must be positive");
  size_t es = f64 ? sizeof(double) : sizeof(float);
  void *a = malloc(es * (size_t)m * k), *b = malloc(es * (size_t)k * n),
       *c = malloc(es * (size_t)m * n);
  double *t = malloc(sizeof(double) * (size_t)reps);
  if (!a || !b || !c || !t) {
    free(a), free(b), free(c), free(t);
    return luaL_error(L, "out of memory");
  }
  fill(f64, a, (size_t)m * k, 7919);
  fill(f64, b, (size_t)k * n, 104729);
  gemm(f64, xa, xb, m, n, k, a, lda, b, ldb, c);
  for (int r = 0; r < reps; r++) {
    double t0 = bench_now();
    gemm(f64, xa, xb, m, n, k, a, lda, b, ldb, c);
    t[r] = bench_now() - t0;
  }
  lua_pushnumber(L, bench_median(t, reps));
  free(a), free(b), free(c), free(t);
  return 1;
}

int luaopen_moonflow_bench(lua_State *L); /* the module's entry point */

int luaopen_moonflow_bench(lua_State *L)
{
  static const luaL_Reg fns[] = {{"now", l_now}, {"gemm_seconds", l_gemm}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
