-- A training run resumed from a checkpoint in a fresh process continues
-- exactly: optimizer slots, Adam's powers and the global step are saved too.
describe("resuming from a checkpoint", function()
  local function run(cmd)
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    local ok, _, code = p:close()
    assert(ok, "command failed (" .. tostring(code) .. "): " .. cmd .. "\n" .. out)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    return lines
  end

  it("gives bit-identical losses for the steps after the save", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local script = "lua5.4 tests/spec/support/resume_train.lua "
    local first = run(script .. "first " .. dir .. " 25 15")
    local second = run(script .. "second " .. dir .. " 15")
    assert.are.equal(15, #first)
    assert.are.same(first, second)
    -- and training was really happening: the losses change
    assert.are_not.equal(first[1], first[15])
    os.execute("rm -rf " .. dir)
  end)
end)
