-- scripts/bench/torch_cnn.py (PyTorch's side of scripts/bench/cnn.lua) and
-- scripts/bench/cnn_compare.sh, run briefly: the same JSON fields as
-- cnn.lua, and the comparison's three lines. Needs a python3 with torch
-- (PyPI's in /tmp/torchvenv, which cnn_compare.sh installs, or Debian's
-- python3-torch); pending without one, as the install is several GB.
-- Timings are not checked: benchmarks measure, specs check behaviour.
local cjson = require("cjson")
local P = dofile("tests/spec/support/process.lua")
local sh = P.sh

local function json_lines(out)
  local rows = {}
  for line in out:gmatch("[^\n]+") do
    if line:sub(1, 1) == "{" then rows[#rows + 1] = cjson.decode(line) end
  end
  return rows
end

local function torch_python()
  local env = os.getenv("PYTHON")
  for _, py in ipairs({ env ~= "" and env or "/tmp/torchvenv/bin/python", "/tmp/torchvenv/bin/python",
                        "/usr/bin/python3" }) do
    if P.exists(py) and select(2, sh(py .. " -c 'import torch'")) then return py end
  end
end

local FIELDS = { "framework", "version", "size", "batch", "threads", "step_ms_median", "examples_per_s",
                 "final_loss", "gemm_kernel" }

describe("the CNN benchmark's PyTorch peer", function()
  local py = torch_python()
  if not py then
    pending("no python3 with torch (PYTHON=..., /tmp/torchvenv, or apt-get install python3-torch)")
    return
  end

  it("torch_cnn.py prints cnn.lua's JSON fields for the same flags", function()
    local flags = " --steps 2 --warmup 1 --batch 8 --size 12 --threads 1"
    local out, ok = sh(py .. " scripts/bench/torch_cnn.py" .. flags)
    assert(ok, out)
    local peer = json_lines(out)
    assert.are.equal(1, #peer, out)
    out, ok = sh("lua5.4 scripts/bench/cnn.lua" .. flags)
    assert(ok, out)
    local mf = json_lines(out)
    assert.are.equal(1, #mf, out)
    for _, k in ipairs(FIELDS) do
      assert(peer[1][k] ~= nil, "torch_cnn.py lacks " .. k)
      assert(mf[1][k] ~= nil, "cnn.lua lacks " .. k)
    end
    assert.are.equal("pytorch", peer[1].framework)
    assert.are.equal(12, peer[1].size)
    assert.are.equal(8, peer[1].batch)
    assert.are.equal(1, peer[1].threads)
    assert.is_true(peer[1].examples_per_s > 0 and peer[1].final_loss > 0, out)
  end)

  it("torch_cnn.py refuses a size that is not a multiple of 4", function()
    local out, ok = sh(py .. " scripts/bench/torch_cnn.py --size 10 --steps 1 --warmup 1")
    assert.is_false(ok, out)
    assert.matches("multiple of 4", out)
  end)

  it("cnn_compare.sh prints both frameworks' medians and the ratio", function()
    local out, ok = sh("PYTHON=" .. py .. " scripts/bench/cnn_compare.sh --rounds 1 --peer_threads 1"
      .. " --moonflow_threads 1 --steps 2 --warmup 1 --batch 8")
    assert(ok, out)
    local rows = json_lines(out)
    assert.are.equal(3, #rows, out)
    assert.are.equal("moonflow", rows[1].framework)
    assert.are.equal("pytorch", rows[2].framework)
    assert.are.equal(1, rows[1].runs)
    local ratio = rows[3].examples_per_s_ratio
    assert.is_true(ratio > 0, out)
    assert.near(rows[1].examples_per_s / rows[2].examples_per_s, ratio, 1e-3)
    assert.are.equal(ratio >= 1.5, rows[3].meets_target)
    assert.are.equal(ratio, rows[3].ratio_at_equal_threads["1"])
  end)
end)
