-- Session overhead and matmul throughput. Prints JSON lines:
--   trivial_run:  µs per sess:run of a one-op graph fetching a scalar
--   chain_add:    µs per operation for a chain of 1,000 scalar adds
--   matmul:       GFLOP/s of a 1024^3 float32 tf.matmul next to raw
--                 cblas_sgemm measured in this process (same threads)
-- Medians over --reps repetitions.   lua5.4 scripts/bench/session_overhead.lua [--reps N]
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = script_dir .. "/lib/?.lua;" .. package.path
local tf = require("moonflow")
local bench = require("moonflow.bench")
local matmul_vs_blas = require("matmul_vs_blas")

local reps = 15
for i = 1, #arg do if arg[i] == "--reps" then reps = tonumber(arg[i + 1]) end end

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local function json(t)
  local parts = {}
  for _, k in ipairs(t) do
    local v = t[k]
    parts[#parts + 1] = string.format("%q: %s", k, type(v) == "string" and string.format("%q", v)
                                     or string.format("%.4g", v))
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local function emit(fields)
  local t = {}
  for i = 1, #fields, 2 do t[#t + 1] = fields[i]; t[fields[i]] = fields[i + 1] end
  print(json(t))
  io.stdout:flush()
end

-- 1. trivial run
do
  local sess = tf.Session()
  local c = tf.constant(1.5)
  local n, samples = 20000, {}
  for _ = 1, 2000 do sess:run(c) end
  for r = 1, reps do
    local t0 = bench.now()
    for _ = 1, n do sess:run(c) end
    samples[r] = (bench.now() - t0) / n * 1e6
  end
  emit({ "bench", "trivial_run", "us_per_run_median", median(samples), "runs_per_sample", n })
  sess:close()
end

-- 2. chain of 1,000 scalar adds
do
  local x = tf.placeholder("float32", {}, "x")
  local y = x
  for _ = 1, 1000 do y = y + 1.0 end
  local sess = tf.Session()
  local feeds = { [x] = 0.5 }
  for _ = 1, 20 do sess:run(y, feeds) end
  local samples = {}
  for r = 1, reps do
    local n = 200
    local t0 = bench.now()
    for _ = 1, n do sess:run(y, feeds) end
    samples[r] = (bench.now() - t0) / (n * 1000) * 1e6
  end
  assert(math.abs(sess:run(y, feeds):item() - 1000.5) < 1e-3)
  emit({ "bench", "chain_add", "us_per_op_median", median(samples), "ops", 1000 })
  sess:close()
end

-- 3. 1024^3 float32 matmul: moonflow vs raw sgemm, alternating
do
  local sess = tf.Session()
  local g_mf, g_raw = matmul_vs_blas(tf, sess, 1024, 1024, 1024, { reps = reps })
  emit({ "bench", "matmul_1024", "moonflow_gflops_median", g_mf, "sgemm_gflops_median", g_raw,
         "ratio", g_mf / g_raw })
  sess:close()
end
