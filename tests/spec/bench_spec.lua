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
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    for i = 1, 400 do f:write("To be, or not to be: that is the question ", i % 7, ".\n") end
    f:close()
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
end)
