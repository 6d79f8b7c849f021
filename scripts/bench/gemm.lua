-- float32 GEMM throughput: tf.matmul (moonflow's kernel for this CPU, or
-- OpenBLAS under MOONFLOW_GEMM=blas) against raw cblas_sgemm in the same
-- process, on the char-RNN's shapes and 1024^3. One JSON line per shape:
--   lua5.4 scripts/bench/gemm.lua [--reps 7]
-- Each repetition times a block of 3 calls of one library, then of the
-- other, and keeps each block's last call: right after one library's
-- call its threads still spin and would slow the other's.
local tf = require("moonflow")
local bench = require("moonflow.bench")

local reps = 7
if arg[1] == "--reps" then reps = assert(math.tointeger(tonumber(arg[2])), "--reps N") end

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

local function median(t)
  local s = table.move(t, 1, #t, 1, {})
  table.sort(s)
  return s[(#s + 1) // 2]
end

local sess <close> = tf.Session()
for _, sh in ipairs(shapes) do
  local m, n, k, ta, tb, what = table.unpack(sh)
  local adims = ta and { k, m } or { m, k }
  local bdims = tb and { n, k } or { k, n }
  local vals = sess:run({ tf.random_uniform(adims, { seed = 1 }), tf.random_uniform(bdims, { seed = 2 }) })
  local x, y = tf.placeholder("float32", adims), tf.placeholder("float32", bdims)
  local prod = tf.matmul(x, y, { transpose_a = ta, transpose_b = tb })
  local feeds = { [x] = vals[1], [y] = vals[2] }
  sess:run(prod.op, feeds)
  local mf, raw = {}, {}
  for r = 1, reps do
    for _ = 1, 3 do
      local t0 = bench.now()
      sess:run(prod.op, feeds)
      mf[r] = bench.now() - t0
    end
    for _ = 1, 3 do raw[r] = bench.sgemm_seconds(m, n, k, 1, ta, tb) end
  end
  local flop = 2 * m * n * k
  local g_mf, g_raw = flop / median(mf) / 1e9, flop / median(raw) / 1e9
  print(string.format('{"bench": "gemm", "shape": "%s", "m": %d, "n": %d, "k": %d, "transpose_a": %s, '
                      .. '"transpose_b": %s, "moonflow_gflops_median": %.1f, "sgemm_gflops_median": %.1f, '
                      .. '"ratio": %.3f}', what, m, n, k, tostring(ta), tostring(tb), g_mf, g_raw, g_mf / g_raw))
end
