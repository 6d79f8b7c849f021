-- MPI benchmarks (issue 13), one JSON line per measurement:
--   lua5.4 scripts/bench/mpi.lua [--ranks 2] [--iters 200] [--steps 20] [--skip_char_rnn]
-- 1. allreduce latency and bandwidth (float32 sum, 4 B .. 64 MiB): moonflow's
--    MPIAllreduce run by a session against Open MPI's MPI_Allreduce in a plain
--    C loop (scripts/bench/c/mpi_allreduce.c, compiled here with mpicc), the
--    same sizes and ranks; overhead_pct compares the two. impl "moonflow": one
--    sess:run per allreduce; "moonflow_in_run": per allreduce of a chain of 16
--    in one run (the op's own cost, as in a training step's run).
-- 2. char-RNN training step time (scripts/char_rnn.lua, its default model):
--    1 rank x 1 thread, 1 rank x 2 threads, 2 ranks x 1 thread (--distributed;
--    the same global batch, so a step is the same work).
-- Run inside mpirun it is the allreduce worker (--worker).
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local argparse = require("argparse")
local cjson = require("cjson")

local p = argparse("bench/mpi.lua", "MPI allreduce and data-parallel char-RNN benchmarks.")
p:option("--ranks", "MPI ranks."):default("2"):convert(tonumber)
p:option("--iters", "Allreduces per size (a tenth from 16 MiB on)."):default("200"):convert(tonumber)
p:option("--steps", "char-RNN training steps per configuration."):default("20"):convert(tonumber)
p:option("--sizes", "Bytes, comma-separated."):default("4,64,1024,16384,262144,4194304,67108864")
p:flag("--skip_char_rnn", "Only the allreduce.")
p:flag("--worker", "(internal) the allreduce loop, under mpirun.")
local opt = p:parse(arg)
local sizes = {}
for s in opt.sizes:gmatch("%d+") do sizes[#sizes + 1] = math.tointeger(tonumber(s)) end

-- allreduces per run in the in-run measurement
local CHAIN = 16

if opt.worker then
  local tf = require("moonflow")
  local bench = require("moonflow.bench")
  local mpi = require("moonflow.mpi")
  mpi.init()
  local sess = tf.Session()
  for _, bytes in ipairs(sizes) do
    local n = bytes // 4
    local x = tf.Variable(tf.fill({ n }, 1.0), { name = "x" })
    local y = mpi.allreduce(x:value(), { average = false })
    sess:run(x.initializer)
    local reps = bytes >= (1 << 24) and opt.iters // 10 + 1 or opt.iters
    for _ = 1, 3 do sess:run(y.op) end
    local t0 = bench.now()
    for _ = 1, reps do sess:run(y.op) end
    local dt = (bench.now() - t0) / reps
    -- the same inside one run: a chain of CHAIN allreduces (each reduces the
    -- last one's sum), so the session run's own cost is spread over them
    local z = x:value()
    for _ = 1, CHAIN do z = mpi.allreduce(z, { average = false }) end
    for _ = 1, 3 do sess:run(z.op) end
    local runs = math.max(1, reps // CHAIN)
    t0 = bench.now()
    for _ = 1, runs do sess:run(z.op) end
    local dt_chain = (bench.now() - t0) / (runs * CHAIN)
    if mpi.rank() == 0 then
      print(cjson.encode({ bench = "mpi_allreduce", impl = "moonflow", ranks = mpi.size(), bytes = bytes,
                           iters = reps, us = dt * 1e6, algbw_GBps = bytes / dt / 1e9 }))
      print(cjson.encode({ bench = "mpi_allreduce", impl = "moonflow_in_run", ranks = mpi.size(), bytes = bytes,
                           iters = runs * CHAIN, us = dt_chain * 1e6, algbw_GBps = bytes / dt_chain / 1e9 }))
    end
  end
  mpi.shutdown()
  return
end

local mpirun = string.format("mpirun --allow-run-as-root --oversubscribe -np %d", opt.ranks)
local function lines(cmd)
  local f = assert(io.popen(cmd))
  local out = {}
  for l in f:lines() do out[#out + 1] = l end
  assert(f:close(), "failed: " .. cmd)
  return out
end

-- 1. allreduce
local exe = os.tmpname()
assert(os.execute(string.format("mpicc -O2 '%s/c/mpi_allreduce.c' -o '%s'", script_dir, exe)), "mpicc failed")
local sz = table.concat(sizes, " ")
local c = {}
for _, l in ipairs(lines(string.format("%s '%s' %d %s", mpirun, exe, opt.iters, sz))) do
  local r = cjson.decode(l)
  if r.impl == "c_mpi" then c[r.bytes] = r end
  print(l)
end
os.remove(exe)
local lua = arg[-1] or "lua5.4"
for _, l in ipairs(lines(string.format("%s %s '%s/mpi.lua' --worker --iters %d --sizes %s", mpirun, lua,
                                       script_dir, opt.iters, table.concat(sizes, ",")))) do
  local r = cjson.decode(l)
  if c[r.bytes] then r.overhead_pct = (r.us / c[r.bytes].us - 1) * 100 end
  print(cjson.encode(r))
end

-- 2. char-RNN step time
if not opt.skip_char_rnn then
  local root = script_dir .. "/../.."
  local base = string.format("%s %s/scripts/char_rnn.lua --max_steps %d --eval_val_every 0 --checkpoint_every 0 "
                             .. "--quiet --checkpoint_dir %s", lua, root, opt.steps, os.tmpname() .. ".d")
  local configs = {
    { ranks = 1, threads = 1, cmd = base .. " --threads 1" },
    { ranks = 1, threads = 2, cmd = base .. " --threads 2" },
    { ranks = 2, threads = 1, cmd = mpirun:gsub("-np %d+", "-np 2") .. " " .. base .. " --distributed" },
  }
  for _, cfg in ipairs(configs) do
    local out = table.concat(lines(cfg.cmd .. " 2>&1"), "\n")
    local rate = tonumber(out:match("([%d.]+)k tokens/s"))
    assert(rate, out)
    local tokens = 50 * 50 -- char_rnn.lua's default global batch x seq_length
    print(cjson.encode({ bench = "char_rnn_step", ranks = cfg.ranks, threads_per_rank = cfg.threads,
                         steps = opt.steps, tokens_per_sec = rate * 1000, step_ms = tokens / (rate * 1000) * 1000 }))
  end
end
