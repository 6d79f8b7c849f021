-- Regressions for what the fuzzers in tests/fuzz found in moonflow.core
-- (the crash inputs are in tests/fuzz/corpus/lua_api).
local core = require("moonflow.core")

describe("moonflow.core (fuzz_lua_api findings)", function()
  it("graph_op answers nil for any integer out of range, never another op", function()
    local g = core.graph_new()
    core.op_new(g, "NoOp", "first", {}, {}, {})
    assert.equal("first", core.op_info(core.graph_op(g, 1)).name)
    -- 2^32 + 1 was truncated to 1, and math.mininteger overflowed (UBSan)
    for _, i in ipairs({ 0, -1, 2, (1 << 32) + 1, 1 << 32, math.mininteger, math.maxinteger }) do
      assert.is_nil(core.graph_op(g, i), tostring(i))
    end
  end)
end)

describe("ops (UBSan float-cast-overflow findings)", function()
  local tf = require("moonflow")

  it("tf.range with more elements than int64 holds is refused by name", function()
    -- the count (1e300) was converted to int64 unchecked: undefined, and
    -- INT64_MIN on x86 (a negative dimension)
    for _, a in ipairs({ { 0, 1e300 }, { -1e300, 1e300 }, { 0, 1e19 }, { 0, 10, 1e-300 } }) do
      local ok, err = pcall(tf.range, a[1], a[2], a[3])
      assert.is_false(ok)
      assert.matches("Range .*cannot make that range", err)
    end
  end)
end)

describe("tables from Lua (fuzz findings)", function()
  local tf = require("moonflow")

  it("reads value tables raw: a lying __len or __index cannot make it read for ever", function()
    local liar = setmetatable({}, { __len = function() return 1 << 62 end, __index = function() return 1 end })
    local t = tf.constant(liar)
    assert.are.same({ 0 }, t.shape)
    local nested = { setmetatable({ 1, 2 }, { __len = function() return 7 end }), { 3, 4 } }
    assert.are.same({ { 1, 2 }, { 3, 4 } }, tf.Session():run(tf.constant(nested)):totable())
  end)

  it("refuses a seed that is not an integer, naming it", function()
    for _, seed in ipairs({ 1e300, 2 ^ 70, 0.5, 0 / 0 }) do
      local ok, err = pcall(tf.random_normal, { 3 }, { seed = seed })
      assert.is_false(ok)
      assert.matches("seed must be an integer", err)
    end
  end)
end)
