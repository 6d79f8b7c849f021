-- Device conformance, as ggml's test-backend-ops: every op type that a
-- device other than the CPU has a kernel for is built on fresh random
-- inputs (several shapes, broadcasting, empty dimensions), once on the CPU
-- and once on that device, and must give the CPU's outputs and gradients.
-- The cases and the comparison live in support/conformance.lua;
-- support/conformance_check.lua runs them from the command line.
--
-- Devices come from the session (MOONFLOW_TEST_DEVICE=1 adds the test
-- device, a CUDA build adds GPUs), kernels from tf.sysconfig.op_kernels().
-- Without a device other than the CPU the comparisons are pending; the
-- table's coverage and its builders are checked in every run.
local tf = require("moonflow")
local core = require("moonflow.core")
local sh = dofile("tests/spec/support/process.lua").sh
local C = dofile("tests/spec/support/conformance.lua")

local kernels = C.kernels()
local devices = C.devices()
local function devices_of_type(t)
  for _, d in ipairs(devices) do if d.device_type == t then return true end end
  return false
end
local has_gradient = core.op_types()

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- Asserts that a comparison report has no mismatches, listing them all.
local function assert_agrees(report)
  assert(#report.mismatches == 0, "\n" .. table.concat(report.mismatches, "\n"))
  assert(report.trials > 0, report.op_type .. ": no trial ran")
end

describe("device conformance", function()
  describe("the op table", function()
    it("has a case or a reasoned skip for every op type in the registry", function()
      local missing = {}
      for _, op_type in ipairs(sorted_keys(kernels)) do
        if not C.cases[op_type] and not C.skip[op_type] then missing[#missing + 1] = op_type end
      end
      assert.are.same({}, missing)
    end)

    it("has a case or a reasoned skip for every op type with a kernel on a non-CPU backend", function()
      local missing = {}
      for _, op_type in ipairs(sorted_keys(kernels)) do
        for backend in pairs(kernels[op_type]) do
          if backend ~= "cpu" and not C.cases[op_type] and not C.skip[op_type] then
            missing[#missing + 1] = op_type .. " (" .. backend .. ")"
          end
        end
      end
      assert.are.same({}, missing)
    end)

    it("names only registered op types, each either built or skipped", function()
      local unknown = {}
      for _, op_type in ipairs(sorted_keys(C.cases)) do
        if not kernels[op_type] then unknown[#unknown + 1] = op_type end
      end
      for _, op_type in ipairs(sorted_keys(C.skip)) do
        if not kernels[op_type] then unknown[#unknown + 1] = op_type end
        if C.cases[op_type] then unknown[#unknown + 1] = op_type .. " (both built and skipped)" end
      end
      assert.are.same({}, unknown)
    end)

    -- The CUDA backend has a kernel for every op type the CPU has, except
    -- those that exist only for the host (C.host_only, which the README
    -- lists). The test device runs the same kernel source, so a build
    -- without nvcc checks the coverage too.
    it("has a CUDA kernel for every op type with a CPU kernel, on every build", function()
      local missing = {}
      for _, op_type in ipairs(sorted_keys(kernels)) do
        local b = kernels[op_type]
        if b.cpu and not C.host_only[op_type] then
          if devices_of_type("TEST") and not b.test then missing[#missing + 1] = op_type .. " (test)" end
          if tf.sysconfig.cuda_built() and not b.cuda then missing[#missing + 1] = op_type .. " (cuda)" end
        end
      end
      assert.are.same({}, missing)
      for op_type in pairs(C.host_only) do assert(kernels[op_type], op_type .. " is not an op type") end
    end)

    it("skips only gradient ops that comparing their forward op's gradient runs on each backend", function()
      for _, op_type in ipairs(sorted_keys(C.skip)) do
        local via = C.skip[op_type].via
        assert(C.cases[via] and has_gradient[via], op_type .. ": 'via' must name a built op type with a gradient")
        -- Placement happens when a session runs: any device name shows where ops ask to go.
        local placed = C.device_op_types(via, "/device:GPU:0")
        assert(placed[op_type], string.format("%s: %s's gradient does not put it on %s's device", op_type, via, via))
        for backend in pairs(kernels[op_type]) do
          assert(kernels[via][backend], string.format("%s has a %s kernel but %s has none, so comparing %s there "
                                                      .. "never runs it: give it a case", op_type, backend, via, via))
        end
      end
    end)
  end)

  for _, dev in ipairs(devices) do
    describe("on " .. dev.name, function()
      if not dev.backend then
        it("maps its device type to a kernel backend", function()
          error(string.format("%s: device type %s has no backend in the conformance table's backend_of",
                              dev.name, dev.device_type))
        end)
        return
      end
      local any = false
      for _, op_type in ipairs(sorted_keys(C.cases)) do
        if kernels[op_type][dev.backend] then
          any = true
          local what = has_gradient[op_type] and "outputs and gradients" or "outputs"
          it(string.format("%s gives the CPU's %s (%s kernel)", op_type, what, dev.backend), function()
            assert_agrees(C.compare(op_type, dev.name, dev.backend))
          end)
        end
      end
      if not any then pending(dev.name .. " has no " .. dev.backend .. " kernels to compare") end
    end)
  end
  if #devices == 0 then
    pending("comparing device kernels with the CPU's: this process has no device but the CPU "
            .. "(run with MOONFLOW_TEST_DEVICE=1, or on a machine with a GPU)")
  end

  -- Cases that no device here runs are still built and run, CPU against CPU
  -- (bit for bit): they stay buildable for backends to come, and the CPU
  -- kernels they compare against are deterministic.
  describe("on the CPU alone", function()
    for _, op_type in ipairs(sorted_keys(C.cases)) do
      local elsewhere = false
      for _, dev in ipairs(devices) do
        if dev.backend and kernels[op_type][dev.backend] then elsewhere = true end
      end
      if not elsewhere then
        it(op_type .. " builds, runs, and gives the same values twice", function()
          assert_agrees(C.compare(op_type, C.CPU, "cpu"))
        end)
      end
    end
  end)

  -- The comparison must catch a wrong kernel: the test device's Add or
  -- MatMul kernel adds 1 to its first output element, in a subprocess run
  -- of the same comparison; the op that is not broken must still pass.
  it("reports a mismatch when a device kernel is wrong (MOONFLOW_TEST_DEVICE_BROKEN)", function()
    local env = string.format("LUA_PATH='%s' LUA_CPATH='%s' MOONFLOW_TEST_DEVICE=1", package.path, package.cpath)
    for _, broken in ipairs({ "Add", "MatMul" }) do
      local sound = broken == "Add" and "MatMul" or "Add"
      local out, ok, how, code = sh(string.format("%s MOONFLOW_TEST_DEVICE_BROKEN=%s lua5.4 "
                                                  .. "tests/spec/support/conformance_check.lua Add MatMul", env, broken))
      assert.is_false(ok, out)
      assert.are.equal("exit", how, out)
      assert.are.equal(1, code, out) -- a mismatch, not a crash (2 would be "nothing compared")
      assert.is_truthy(out:find("mismatch: " .. broken .. " on /device:TEST:0, float32, x1{3,4}", 1, true), out)
      assert.is_truthy(out:find("(tolerance 1e-05;", 1, true), out)
      assert.is_truthy(("\n" .. out):find("\n" .. sound .. " on /device:TEST:0: %d+ trials, [^\n]*, ok\n"), out)
      assert.is_truthy(out:find("2 comparisons, 1 with mismatches", 1, true), out)
    end
  end)
end)
