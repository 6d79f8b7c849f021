-- Session overhead and matmul throughput. Prints JSON lines:
--   trivial_run:  µs per sess:run of a one-op graph fetching a scalar
--   chain_add:    µs per operation for a chain of 1,000 scalar adds
--   matmul:       GFLOP/s of a 1024^3 float32 tf.matmul next to raw
--                 cblas_sgemm measured in this process (same threads)
-- Medians over --reps repetitions.   lua5.4 scripts/bench/session_overhead.lua [--reps N]
local tf = require("moonflow")
local bench = require("moonflow.bench")

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
  local N = 1024
  local a = tf.random_uniform({ N, N }, { seed = 1 })
  local b = tf.random_uniform({ N, N }, { seed = 2 })
  local sess = tf.Session()
  local vals = sess:run({ a, b })
  local av, bv = vals[1], vals[2]
  local x = tf.placeholder("float32", { N, N })
  local y = tf.placeholder("float32", { N, N })
  local prod = tf.matmul(x, y)
  local feeds = { [x] = av, [y] = bv }
  sess:run(prod.op, feeds)
  -- Alternating blocks, each timed on its last call: right after one
  -- library's call, its threads still spin and slow the other's (moonflow
  -- measured 161 GFLOP/s alternating call by call, 447 alone).
  local mf, raw = {}, {}
  for r = 1, reps do
    for _ = 1, 3 do
      local t0 = bench.now()
      sess:run(prod.op, feeds)
      mf[r] = bench.now() - t0
    end
    for _ = 1, 3 do raw[r] = bench.sgemm_seconds(N, N, N, 1) end
  end
  local flop = 2 * N * N * N
  local g_mf, g_raw = flop / median(mf) / 1e9, flop / median(raw) / 1e9
  emit({ "bench", "matmul_1024", "moonflow_gflops_median", g_mf, "sgemm_gflops_median", g_raw,
         "ratio", g_mf / g_raw })
  sess:close()
end
