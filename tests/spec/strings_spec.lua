-- TF's string dtype: constants, placeholders, feeds, fetches, Arrays, and
-- the ops that pass strings on; every other op refuses them.
local tf = require("moonflow")

local function random_bytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
end

describe("string tensors", function()
  before_each(function() tf.reset_default_graph() end)

  it("hold any bytes through constants, feeds, fetches, identity and reshape", function()
    local words = {}
    for i = 1, 6 do words[i] = random_bytes(math.random(0, 40)) end
    local p = tf.placeholder(tf.string, { 6 })
    local r = tf.reshape(tf.identity(p), { 2, 3 })
    local c = tf.constant(words[3])
    assert.are.equal("string", c.dtype)
    local got = tf.Session():run({ r, c, tf.expand_dims(c, 1) }, { [p] = words })
    assert.are.same({ { words[1], words[2], words[3] }, { words[4], words[5], words[6] } }, got[1]:totable())
    assert.are.equal(words[3], got[2]:item())
    assert.are.same({ words[3] }, got[3]:totable())
  end)

  it("make Arrays of strings that index, copy on write and print", function()
    local a = tf.array({ { "a", "bb" }, { "", "c\0d" } })
    assert.are.equal("string", a.dtype)
    assert.are.equal("c\0d", a[2][2])
    local row = a[1]
    row[1] = "changed"
    assert.are.equal("changed", row[1])
    assert.are.equal("a", a[1][1])
    assert.is_truthy(tostring(a):find("[moonflow.Array of dimension 2x2, string]", 1, true))
  end)

  it("are refused by ops that compute, by variables and by tobytes, with errors naming them", function()
    local c = tf.constant({ "x", "y" })
    local ok, err = pcall(tf.add, c, c)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("Add does not take or give string tensors", 1, true))
    ok, err = pcall(tf.Variable, "s")
    assert.is_truthy(not ok and tostring(err):find("VariableV2 does not take or give string tensors", 1, true))
    ok, err = pcall(tf.constant, { "a", 1 })
    assert.is_truthy(not ok and tostring(err):find("cannot mix strings and numbers", 1, true))
    ok, err = pcall(function() return tf.array({ "a" }):tobytes() end)
    assert.is_truthy(not ok and tostring(err):find("no flat bytes", 1, true))
    ok, err = pcall(tf.array, { 1.5 }, "string")
    assert.is_truthy(not ok and tostring(err):find("needs strings", 1, true))
  end)

  it("stay in host memory whatever device is asked (as TF's host-memory string kernels)", function()
    local c = tf.device("/device:TEST:0", function() return tf.identity(tf.constant({ "q", "r" })) end)
    assert.are.same({ "q", "r" }, tf.Session():run(c):totable())
  end)
end)
