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
