-- The benchmarks run as a user would run them, briefly, and print the JSON
-- lines their readers (compare.sh, the README's tables) expect. Timings are
-- not checked here: benchmarks measure, specs check behaviour.
local tf = require("moonflow")
local cjson = require("cjson")
local sh = dofile("tests/spec/support/process.lua").sh

local function json_lines(out)
  local rows = {}
  for line in out:gmatch("[^\n]+") do
    if line:sub(1, 1) == "{" then rows[#rows + 1] = cjson.decode(line) end
  end
  return rows
end

describe("benchmarks", function()
  local kernel = tf.sysconfig.cpu_gemm_kernel()

  -- a tiny corpus for the char-RNN benchmarks; the path, removed by the caller
  local function corpus()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    for i = 1, 400 do f:write("To be, or not to be: that is the question ", i % 7, ".\n") end
    f:close()
    return path
  end

  it("session_overhead.lua reports run overhead and tf.matmul against raw sgemm", function()
    local out, ok = sh("lua5.4 scripts/bench/session_overhead.lua --reps 1")
    assert(ok, out)
    local rows = json_lines(out)
    assert.are.equal(3, #rows, out)
    assert.are.equal("matmul_1024", rows[3].bench)
    assert.is_true(rows[3].moonflow_gflops_median > 0 and rows[3].sgemm_gflops_median > 0)
  end)

  it("gemm.lua reports every shape with the kernel that ran", function()
    local out, ok = sh("lua5.4 scripts/bench/gemm.lua --reps 1")
    assert(ok, out)
    local rows = json_lines(out)
    assert.are.equal(9, #rows, out)
    for _, r in ipairs(rows) do
      assert.are.equal(kernel, r.gemm_kernel)
      assert.is_true(r.moonflow_gflops_median > 0 and r.ratio > 0, out)
    end
  end)

  it("gemm.lua --dtype float64 compares tf.matmul with OpenBLAS's dgemm", function()
    local out, ok = sh("lua5.4 scripts/bench/gemm.lua --reps 1 --dtype float64")
    assert(ok, out)
    local rows = json_lines(out)
    assert.are.equal(9, #rows, out)
    for _, r in ipairs(rows) do
      assert.are.equal("float64", r.dtype)
      assert.are.equal("openblas", r.gemm_kernel)
      assert.is_true(r.moonflow_gflops_median > 0 and r.openblas_gflops_median > 0, out)
    end
  end)

  it("cnn.lua trains a LeNet-style CNN a few steps and prints its JSON line", function()
    local out, ok = sh("lua5.4 scripts/bench/cnn.lua --steps 2 --warmup 1 --batch 8")
    assert(ok, out)
    local rows = json_lines(out)
    assert.are.equal(1, #rows, out)
    assert.are.equal("moonflow", rows[1].framework)
    assert.are.equal(kernel, rows[1].gemm_kernel)
    assert.is_true(rows[1].examples_per_s > 0 and rows[1].final_loss > 0, out)
  end)

  it("char_rnn.lua trains a few steps and prints the peer's fields plus the kernel", function()
    local path = corpus()
    local out, ok = sh("lua5.4 scripts/bench/char_rnn.lua --input " .. path
                       .. " --embed 8 --hidden 16 --batch 4 --seq 10 --steps 2 --warmup 1 --sample 20")
    os.remove(path)
    assert(ok, out)
    local rows = json_lines(out)
    assert.are.equal(1, #rows, out)
    local r = rows[1]
    for _, k in ipairs({ "framework", "cell", "tokens_per_s", "step_ms_median", "final_loss",
                         "sample_chars_per_s", "peak_rss_mb" }) do
      assert(r[k] ~= nil, "no " .. k .. " in " .. out)
    end
    assert.are.equal(kernel, r.gemm_kernel)
  end)

  it("char_rnn.lua --dtype float64 trains and samples in float64", function()
    local path = corpus()
    local out, ok = sh("lua5.4 scripts/bench/char_rnn.lua --input " .. path
                       .. " --dtype float64 --embed 8 --hidden 16 --batch 4 --seq 10 --steps 2 --warmup 1 --sample 5")
    os.remove(path)
    assert(ok, out)
    local rows = json_lines(out)
    assert.are.equal(1, #rows, out)
    assert.are.equal("float64", rows[1].dtype)
    assert.are.equal("openblas", rows[1].gemm_kernel) -- float64 products are OpenBLAS's dgemm
    assert.is_true(rows[1].final_loss > 0 and rows[1].sample_chars_per_s > 0, out)
  end)

  it("op_times.lua lists each op type's time per step, largest first, and the rest of the step", function()
    local path = corpus()
    local out, ok = sh("lua5.4 scripts/bench/op_times.lua --input " .. path
                       .. " --embed 8 --hidden 16 --batch 4 --seq 10 --steps 2 --warmup 1")
    os.remove(path)
    assert(ok, out)
    local rows = json_lines(out)
    local ops, share, last = {}, 0, math.huge
    for i = 1, #rows - 2 do
      ops[rows[i].op] = true
      assert.is_true(rows[i].ms_per_step <= last, out)
      last, share = rows[i].ms_per_step, share + rows[i].share
    end
    assert.is_true(ops.LSTMSequenceGrad and ops.ApplyAdam and ops.MatMul, out)
    assert.near(1, share + rows[#rows - 1].share, 1e-9)
    assert.are.equal("op_times_step", rows[#rows].bench)
  end)

  -- profile.lua under perf (callgrind takes minutes), 399 steps apart so
  -- that the runs' start-up noise (tens of ms) stays small; perf needs the
  -- kernel's permission, and is not run under AddressSanitizer's preload.
  local perf_ok = select(2, sh("perf stat -e cpu-clock -o /dev/null true"))
  local it_perf = (perf_ok and not os.getenv("MF_SPEC_ASAN")) and it or pending
  it_perf("profile.lua subtracts two perf profiles into shares per category", function()
    local path = corpus()
    local core = package.searchpath("moonflow.core", package.cpath)
    local out, ok = sh("lua5.4 scripts/bench/profile.lua --tool perf --input " .. path .. " --core " .. core
                       .. " --embed 8 --hidden 16 --batch 4 --seq 10 --short 1 --long 400 --top 5")
    os.remove(path)
    assert(ok, out)
    local rows = json_lines(out)
    local share, cats = 0, 0
    for _, r in ipairs(rows) do
      if r.kind == "category" then share, cats = share + r.share, cats + 1 end
    end
    assert.are.equal(11, cats, out)
    assert.near(1, share, 1e-9)
    assert.are.equal("total", rows[#rows].kind)
    assert.is_true(rows[#rows].per_step > 0, out)
  end)

  it("gemm_bound.lua times every product of a step and the step itself", function()
    local path = corpus()
    local out, ok = sh("lua5.4 scripts/bench/gemm_bound.lua --input " .. path
                       .. " --dtype float64 --embed 8 --hidden 16 --batch 4 --seq 10 --steps 2 --warmup 1 --reps 1")
    os.remove(path)
    assert(ok, out)
    local rows = json_lines(out)
    assert.are.equal(2 * 5 + 3 + 1, #rows, out) -- 5 products per layer, 3 for the output layer, the summary
    local sum = rows[#rows]
    assert.are.equal("gemm_bound", sum.bench)
    assert.are.equal(25, sum.vocab) -- the corpus's symbols
    assert.is_true(sum.openblas_gemm_ms > 0 and sum.moonflow_matmul_ms > 0 and sum.step_ms > 0, out)
    assert.near(sum.step_ms / sum.openblas_gemm_ms, sum.step_over_bound, 1e-9)
  end)
end)

-- scripts/bench/compare.sh runs the peers (PyTorch, TensorFlow) and installs
-- them on first use: far too heavy for the suite. What is checked here is
-- light: its usage, and the report's parsing and arithmetic on fixed lines.
describe("compare.sh and its report (scripts/bench/lib/peer_compare.lua)", function()
  package.path = "scripts/bench/lib/?.lua;" .. package.path
  local C = require("peer_compare")

  local function line(who, tps, extra)
    local t = { framework = who:match("^[^/]+"), version = "v", tokens_per_s = tps, step_ms_median = 2500 / tps * 1000 }
    for k, v in pairs(extra or {}) do t[k] = v end
    return who .. " " .. cjson.encode(t)
  end

  it("--help prints the usage without running or installing anything", function()
    local out, ok = sh("scripts/bench/compare.sh --help")
    assert(ok, out)
    assert.truthy(out:find("--tf_settings", 1, true), out)
    assert.truthy(out:find("--setup", 1, true), out)
  end)

  it("refuses an unknown option and --threads", function()
    local out, ok, _, code = sh("scripts/bench/compare.sh --frobnicate 1")
    assert.is_false(ok, out)
    assert.are.equal(2, code)
    out, ok, _, code = sh("scripts/bench/compare.sh --threads 2")
    assert.is_false(ok, out)
    assert.are.equal(2, code)
  end)

  it("takes medians of odd and even counts", function()
    assert.are.equal(2, C.median({ 3, 1, 2 }))
    assert.are.equal(2.5, C.median({ 4, 1, 3, 2 }))
    assert.is_nil(C.median({}))
  end)

  it("splits a contender from its thread setting", function()
    assert.are.same({ "pytorch-debian", "1/2" }, { C.split_who("pytorch-debian/1/2") })
    assert.are.same({ "moonflow", "0" }, { C.split_who("moonflow/0") })
    assert.are.same({ "moonflow", "" }, { C.split_who("moonflow") })
  end)

  it("parses a run's line, names the peers' sampling rate as moonflow's, rejects the rest", function()
    local who, v = C.parse_line('tf-keras/1/1 {"tokens_per_s": 10.5, "chars_per_s": 7}')
    assert.are.equal("tf-keras/1/1", who)
    assert.are.equal(10.5, v.tokens_per_s)
    assert.are.equal(7, v.sample_chars_per_s)
    assert.is_nil(C.parse_line("pytorch/1 "))                         -- a run that failed
    assert.is_nil(C.parse_line('pytorch/1 {"step_ms_median": 3}'))     -- no tokens/s
    assert.is_nil(C.parse_line("pytorch/1 Traceback (most recent"))
    local errors = {}
    local runs, order = C.collect({ line("moonflow/0", 100), "pytorch/1 ", line("pytorch/1", 50) }, errors)
    assert.are.same({ "moonflow/0", "pytorch/1" }, order)
    assert.are.equal(1, #runs["pytorch/1"])
    assert.are.equal(1, #errors)
  end)

  it("compares moonflow's best setting with each peer's best and with the best peer", function()
    local lines = {
      line("moonflow/1", 90), line("moonflow/2", 300, { peak_rss_mb = 80 }),
      line("pytorch/1", 100, { peak_rss_mb = 400 }), line("pytorch/2", 40),
      line("tf-keras/1/1", 120, { chars_per_s = 10 }), line("tf-keras/2/2", 60),
      line("moonflow/1", 95), line("moonflow/2", 310, { peak_rss_mb = 90 }),
      line("pytorch/1", 110, { peak_rss_mb = 420 }), line("pytorch/2", 45),
      line("tf-keras/1/1", 130, { chars_per_s = 12 }), line("tf-keras/2/2", 50),
      line("moonflow/2", 290, { peak_rss_mb = 70, sample_chars_per_s = 55 }),
    }
    local runs, order = C.collect(lines)
    local best, names = C.best_settings(runs, order)
    assert.are.same({ "moonflow", "pytorch", "tf-keras" }, names)
    assert.are.equal("moonflow/2", best.moonflow.who)
    assert.are.equal(300, best.moonflow.tokens_per_s)              -- median of 300, 310, 290
    assert.are.equal(3, best.moonflow.rounds)
    assert.are.equal(80, best.moonflow.peak_rss_mb)
    assert.are.equal("pytorch/1", best.pytorch.who)
    assert.are.equal(105, best.pytorch.tokens_per_s)               -- median of 100 and 110
    assert.are.equal("tf-keras/1/1", best["tf-keras"].who)
    assert.are.equal(11, best["tf-keras"].sample_chars_per_s)
    local ratios = C.ratios(best, names)
    local got = {}
    for _, r in ipairs(ratios) do got[r.against .. " " .. r.metric] = r end
    assert.are.equal(2.857, got["pytorch tokens_per_s"].ratio)      -- 300 / 105
    assert.are.equal(0.195, got["pytorch peak_rss_mb"].ratio)       -- 80 / 410
    assert.are.equal(2.4, got["tf-keras tokens_per_s"].ratio)       -- 300 / 125
    assert.are.equal(5, got["tf-keras sample_chars_per_s"].ratio)   -- 55 / 11
    assert.are.equal("tf-keras/1/1", got["best_peer tokens_per_s"].peer)
    assert.are.equal(2.4, got["best_peer tokens_per_s"].ratio)
    assert.is_nil(got["pytorch sample_chars_per_s"])                 -- pytorch did not sample
    assert.is_nil(C.ratios({ pytorch = best.pytorch }, { "pytorch" }))
  end)

  it("counts a step's GEMM FLOPs: 3 x (gate products + output layer) over batch x seq tokens", function()
    -- config b by hand: forward 2*2500*(128+512)*2048 + 2*2500*(512+512)*2048 + 2*2500*512*65
    local fwd_b = 6553600000 + 10485760000 + 166400000
    assert.are.equal(3 * fwd_b, C.step_flops({ cell = "lstm", embed = 128, hidden = 512, layers = 2, batch = 50,
                                                seq = 50, vocab = 65 }))
    assert.are.equal(51617280000, 3 * fwd_b)
    -- one GRU layer has 3 gate blocks, a vanilla RNN 1
    assert.are.equal(3 * (2 * 6 * (3 + 4) * 3 * 4 + 2 * 6 * 4 * 5),
                     C.step_flops({ cell = "gru", embed = 3, hidden = 4, layers = 1, batch = 2, seq = 3, vocab = 5 }))
    assert.are.equal(3 * (2 * 6 * (3 + 4) * 4 + 2 * 6 * (4 + 4) * 4 + 2 * 6 * 4 * 5),
                     C.step_flops({ cell = "rnn", embed = 3, hidden = 4, layers = 2, batch = 2, seq = 3, vocab = 5 }))
  end)

  it("lists a step's products one by one, their FLOPs summing to the formula", function()
    for _, c in ipairs({ { cell = "lstm", embed = 128, hidden = 512, layers = 2, batch = 50, seq = 50, vocab = 65 },
                         { cell = "gru", embed = 3, hidden = 4, layers = 1, batch = 2, seq = 3, vocab = 5 },
                         { cell = "rnn", embed = 5, hidden = 7, layers = 3, batch = 2, seq = 4, vocab = 11 } }) do
      local list, flops = C.step_gemms(c), 0
      assert.are.equal(5 * c.layers + 3, #list)
      for _, g in ipairs(list) do flops = flops + 2 * g[1] * g[2] * g[3] * g[6] end
      assert.are.equal(C.step_flops(c), flops)
      -- every product's inner dimension: the kernel gradient sums over all tokens
      assert.are.same({ c.embed + c.hidden, ({ lstm = 4, gru = 3, rnn = 1 })[c.cell] * c.hidden,
                        c.batch * c.seq, true, false, 1 }, table.move(list[4], 1, 6, 1, {}))
    end
  end)

  it("prints every median and ratio as a JSON line, then the table", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    local sizes = { cell = "rnn", embed = 3, hidden = 4, layers = 2, batch = 2, seq = 3, step_ms_median = 0.0288 }
    f:write(line("moonflow/0", 200, sizes), "\n", line("pytorch/1/2", 100), "\n")
    f:close()
    local out = assert(io.tmpfile())
    C.main(path, out, { vocab = 5, peak_gflops = 1 })
    os.remove(path)
    out:seek("set")
    local text = out:read("a")
    local rows = {}
    for l in text:gmatch("[^\n]+") do
      if l:sub(1, 1) == "{" then rows[#rows + 1] = cjson.decode(l) end
    end
    assert.are.equal(4, #rows, text)   -- two medians, the ratio against pytorch and against the best peer
    assert.are.equal("pytorch/1/2", rows[2].who)
    -- 2,880 FLOPs (the RNN case above) in 0.0288 ms: 0.1 GFLOP/s, 10 % of a peak of 1;
    -- none for a line without the model's sizes
    assert.are.equal(0.1, rows[1].gflops_per_s)
    assert.are.equal(10, rows[1].pct_of_peak)
    assert.is_nil(rows[2].gflops_per_s)
    assert.truthy(text:find('"who": "pytorch/1/2"', 1, true), text)
    assert.are.equal(2, rows[3].ratio)
    assert.truthy(text:find("moonflow / best peer (pytorch/1/2): 2.00x tokens/s", 1, true), text)
  end)
end)
