-- How far a char-RNN training step is from its GEMM bound: the time raw
-- OpenBLAS (cblas_sgemm for float32, cblas_dgemm for float64) takes for the
-- step's products (lib/peer_compare.lua's step_gemms: the shapes a fused
-- sequence kernel runs, the recurrent ones once per time step), against
-- tf.matmul at the same shapes and against the whole measured step
-- (scripts/bench/char_rnn.lua run with the same flags). One JSON line per
-- product shape, then a summary line:
--   lua5.4 scripts/bench/gemm_bound.lua --input ../shared/data/tinyshakespeare.txt \
--     [--dtype float32|float64] [--cell lstm] [--embed 64] [--hidden 128] [--layers 2] \
--     [--batch 50] [--seq 50] [--steps 10] [--warmup 3] [--reps 7] [--no_step]
-- step_over_bound = step_ms / openblas_gemm_ms: 1.0 would be a step that
-- is nothing but OpenBLAS's products. Thread counts are each library's
-- default (OPENBLAS_NUM_THREADS, moonflow's intra-op team): both the cores.
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = script_dir .. "/lib/?.lua;" .. script_dir .. "/../lib/?.lua;" .. package.path

local argparse = require("argparse")
local cjson = require("cjson")
local tf = require("moonflow")
local C = require("peer_compare")
local D = require("char_data")
local matmul_vs_blas = require("matmul_vs_blas")

local p = argparse("bench/gemm_bound.lua", "A char-RNN step against the OpenBLAS time of its GEMMs.")
p:option("--input", "Training text (its symbols are the vocabulary)."):args(1)
p:option("--dtype", "float32 or float64."):choices({ "float32", "float64" }):default("float32")
p:option("--cell", "lstm, gru or rnn."):choices({ "lstm", "gru", "rnn" }):default("lstm")
for _, o in ipairs({ { "embed", 64 }, { "hidden", 128 }, { "layers", 2 }, { "batch", 50 }, { "seq", 50 },
                     { "steps", 10 }, { "warmup", 3 }, { "reps", 7 } }) do
  p:option("--" .. o[1]):default(tostring(o[2])):convert(math.tointeger)
end
p:flag("--no_step", "Only the products (do not run the training step).")
local a = p:parse(arg)
if not a.input then p:error("--input is required") end

local vocab = #D.build_vocab(D.read_file(a.input))
local model = { cell = a.cell, embed = a.embed, hidden = a.hidden, layers = a.layers, batch = a.batch,
                seq = a.seq, vocab = vocab }

local sess <close> = tf.Session()
local blas_s, mf_s, flop = 0, 0, 0
for _, g in ipairs(C.step_gemms(model)) do
  local m, n, k, ta, tb, count, what = table.unpack(g)
  local g_mf, g_raw = matmul_vs_blas(tf, sess, m, n, k, { transpose_a = ta, transpose_b = tb, reps = a.reps,
                                                          dtype = a.dtype })
  local f = 2 * m * n * k
  blas_s, mf_s, flop = blas_s + count * f / (g_raw * 1e9), mf_s + count * f / (g_mf * 1e9), flop + count * f
  print(cjson.encode({ bench = "step_gemm", product = what, m = m, n = n, k = k, transpose_a = ta,
                       transpose_b = tb, count = count, dtype = a.dtype, openblas_gflops = g_raw,
                       moonflow_gflops = g_mf }))
end

local out = { bench = "gemm_bound", dtype = a.dtype, cell = a.cell, embed = a.embed, hidden = a.hidden,
              layers = a.layers, batch = a.batch, seq = a.seq, vocab = vocab, step_gflop = flop / 1e9,
              openblas_gemm_ms = blas_s * 1e3, moonflow_matmul_ms = mf_s * 1e3 }
if not a.no_step then
  local cmd = { arg[-1] or "lua5.4", script_dir .. "/char_rnn.lua", "--input", a.input, "--dtype", a.dtype }
  for _, o in ipairs({ "cell", "embed", "hidden", "layers", "batch", "seq", "steps", "warmup" }) do
    cmd[#cmd + 1] = "--" .. o
    cmd[#cmd + 1] = tostring(a[o])
  end
  for i, w in ipairs(cmd) do cmd[i] = "'" .. w:gsub("'", "'\\''") .. "'" end
  local f = assert(io.popen(table.concat(cmd, " ") .. " 2>/dev/null"))
  local last
  for line in f:lines() do last = line end
  assert(f:close() and last, "char_rnn.lua failed: " .. table.concat(cmd, " "))
  local r = cjson.decode(last)
  out.step_ms = r.step_ms_median
  out.step_over_bound = r.step_ms_median / out.openblas_gemm_ms
end
print(cjson.encode(out))
