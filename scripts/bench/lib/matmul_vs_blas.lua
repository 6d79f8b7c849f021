-- tf.matmul against raw OpenBLAS (cblas_sgemm for float32, cblas_dgemm for
-- float64) in the same process, for the GEMM benchmarks. Each repetition
-- times a block of 3 calls of one library, then of the other, and keeps each
-- block's last call: right after one library's call its threads still spin
-- and slow the other's (moonflow measured 161 GFLOP/s alternating call by
-- call, 447 alone).
--   local gflops = require("matmul_vs_blas")
--   local mf, raw = gflops(tf, sess, m, n, k, { transpose_a = ..., transpose_b = ..., reps = 7,
--                                               dtype = "float32" | "float64" })
local bench = require("moonflow.bench")

local function median(t)
  local s = table.move(t, 1, #t, 1, {})
  table.sort(s)
  return s[(#s + 1) // 2]
end

-- GFLOP/s medians of C[m, n] = op(A) op(B): moonflow's, then OpenBLAS's.
return function(tf, sess, m, n, k, opts)
  local ta, tb, reps = opts.transpose_a or false, opts.transpose_b or false, opts.reps or 7
  local dtype = opts.dtype or "float32"
  local adims = ta and { k, m } or { m, k }
  local bdims = tb and { n, k } or { k, n }
  local vals = sess:run({ tf.random_uniform(adims, { seed = 1, dtype = dtype }),
                          tf.random_uniform(bdims, { seed = 2, dtype = dtype }) })
  local x, y = tf.placeholder(dtype, adims), tf.placeholder(dtype, bdims)
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
    for _ = 1, 3 do raw[r] = bench.gemm_seconds(dtype, m, n, k, 1, ta, tb) end
  end
  local flop = 2 * m * n * k
  return flop / median(mf) / 1e9, flop / median(raw) / 1e9
end
