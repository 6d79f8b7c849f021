-- Objects used after their finalizer ran (issue 15, defect 2): a Graph whose
-- __gc was called by hand, or one finalized before another object's
-- finalizer touches it (Lua's order at collection and at lua_close), gives
-- a Lua error naming what was finalized -- never a crash.
local tf = require("moonflow")
local sh = require("tests.spec.support.process").sh

local function gc_by_hand(ud) getmetatable(ud).__gc(ud) end

local function error_of(f)
  local ok, err = pcall(f)
  assert(not ok, "expected an error, but the call succeeded")
  return tostring(err)
end

describe("finalized objects", function()
  it("a Graph whose __gc ran refuses every use", function()
    local g = tf.Graph()
    local c = g:as_default(function() return tf.constant(1.0) end)
    gc_by_hand(g._g)
    gc_by_hand(g._g) -- twice is harmless
    assert.matches("finalized Graph", error_of(function() return g:get_operations() end))
    assert.matches("finalized Graph", error_of(function() return g:get_operation_by_name("Const") end))
    assert.matches("finalized Graph", error_of(function() return tostring(g) end))
    assert.matches("finalized Graph", error_of(function()
      return g:as_default(function() return tf.constant(2.0) end)
    end))
    assert.matches("finalized Graph", error_of(function() return tf.Session{ graph = g } end))
    assert.matches("finalized Graph", error_of(function() return c + c end))
    assert.matches("finalized Graph", error_of(function() return tf.gradients(c, { c }) end))
  end)

  it("an Operation of a finalized Graph is refused, also by a session still holding the graph", function()
    local g = tf.Graph()
    local c = g:as_default(function() return tf.constant(3.0) end)
    local sess = tf.Session{ graph = g }
    assert.are.equal(3.0, sess:run(c):item())
    gc_by_hand(g._g)
    assert.matches("Operation of a finalized Graph", error_of(function() return sess:run(c) end))
    assert.matches("Operation of a finalized Graph", error_of(function()
      return require("moonflow.core").op_info(c.op._ud)
    end))
    sess:close()
  end)

  it("Sessions and Arrays finalized by hand give clean errors too", function()
    local g = tf.Graph()
    local c = g:as_default(function() return tf.constant(1.0) end)
    local sess = tf.Session{ graph = g }
    gc_by_hand(sess._ud)
    assert.matches("closed session", error_of(function() return sess:run(c) end))
    local a = tf.array({ 1, 2 })
    gc_by_hand(a)
    assert.matches("released Array", error_of(function() return a:shape() end))
    assert.matches("released Array", error_of(function() return #a end))
  end)

  it("a finalizer that uses a graph finalized before it, at lua_close, ends in an error, not a crash", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
local tf = require("moonflow")
-- Created before the graph: finalized after it at lua_close.
local holder = setmetatable({}, { __gc = function(self)
  local ok, err = pcall(function()
    local n = #self.g:get_operations()
    self.g:as_default(function() return tf.constant(2.0) end)
    local sess = tf.Session{ graph = self.g }
    return n, sess:run(self.c)
  end)
  io.stdout:write("finalizer: ", tostring(ok), " ", tostring(err), "\n")
  io.stdout:flush()
end })
holder.g = tf.Graph()
holder.c = holder.g:as_default(function() return tf.constant(1.0) end)
holder.sess = tf.Session{ graph = holder.g }
print("built")
]])
    f:close()
    local out, ok, how, code = sh("lua5.4 " .. script)
    os.remove(script)
    assert(ok, string.format("the process ended by %s %s:\n%s", tostring(how), tostring(code), out))
    assert.matches("built", out)
    assert.matches("finalizer: false [^\n]*finalized Graph", out)
  end)
end)
