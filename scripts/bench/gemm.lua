-- GEMM throughput: tf.matmul against raw OpenBLAS in the same process, on
-- the char-RNN's shapes and 1024^3. float32: moonflow's kernel for this CPU
-- (or OpenBLAS under MOONFLOW_GEMM=blas) against cblas_sgemm; float64 (routed
-- to OpenBLAS) against cblas_dgemm. One JSON line per shape:
--   lua5.4 scripts/bench/gemm.lua [--reps 7] [--dtype float32|float64]
-- (lib/matmul_vs_blas.lua says how the two are timed.)
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = script_dir .. "/lib/?.lua;" .. package.path
local tf = require("moonflow")
local matmul_vs_blas = require("matmul_vs_blas")

local argparse = require("argparse")
local p = argparse("bench/gemm.lua", "tf.matmul against raw OpenBLAS GEMM.")
p:option("--reps", "Timed repetitions per shape."):default("7"):convert(math.tointeger)
p:option("--dtype", "float32 or float64."):choices({ "float32", "float64" }):default("float32")
local a = p:parse(arg)
local reps = a.reps

-- {m, n, k, transpose_a, transpose_b, what}
local shapes = {
  { 50, 512, 128, false, false, "config a: one recurrent step, forward" },
  { 50, 128, 512, false, true, "config a: one recurrent step, backward" },
  { 2500, 512, 128, false, false, "config a: input projection" },
  { 256, 512, 2500, true, false, "config a: kernel gradient [x, h]^T dZ" },
  { 2500, 128, 512, false, true, "config a: input gradient dZ W^T" },
  { 2500, 65, 128, false, false, "config a: logits" },
  { 50, 2048, 512, false, false, "config b: one recurrent step, forward" },
  { 1024, 2048, 2500, true, false, "config b: kernel gradient" },
  { 1024, 1024, 1024, false, false, "square" },
}

local sess <close> = tf.Session()
for _, sh in ipairs(shapes) do
  local m, n, k, ta, tb, what = table.unpack(sh)
  local g_mf, g_raw = matmul_vs_blas(tf, sess, m, n, k, { transpose_a = ta, transpose_b = tb, reps = reps,
                                                                   dtype = a.dtype })
  print(string.format('{"bench": "gemm", "shape": "%s", "m": %d, "n": %d, "k": %d, "transpose_a": %s, '
                      .. '"transpose_b": %s, "dtype": "%s", "moonflow_gflops_median": %.1f, "openblas_gflops_median": %.1f, '
                      .. '"ratio": %.3f, "gemm_kernel": "%s"}', what, m, n, k, tostring(ta), tostring(tb), a.dtype,
                      g_mf, g_raw, g_mf / g_raw, a.dtype == "float32" and tf.sysconfig.cpu_gemm_kernel() or "openblas"))
end
