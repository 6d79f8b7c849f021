-- tf.lua_func (TF's py_func) and tf.print's Lua callback: Lua functions run
-- as ops, also from inter-op worker threads (this spec runs under
-- ThreadSanitizer in scripts/test.sh, so it starts no processes).
local tf = require("moonflow")

local function rand(n, lo, hi)
  local t = {}
  for i = 1, n do t[i] = (lo or -2) + ((hi or 2) - (lo or -2)) * math.random() end
  return t
end

local function close(a, b, tol)
  assert.are.equal(#a, #b)
  for i = 1, #a do assert(math.abs(a[i] - b[i]) <= (tol or 1e-5), string.format("[%d] %g vs %g", i, a[i], b[i])) end
end

describe("tf.lua_func", function()
  before_each(function() tf.reset_default_graph() end)

  it("passes the inputs' values as Arrays and converts a returned table to Tout", function()
    local x = tf.placeholder("float32", { -1 })
    local y = tf.lua_func(function(a)
      assert.are.equal("float32", a.dtype)
      local out = {}
      for i, v in ipairs(a:totable()) do out[i] = v * v + 1 end
      return out
    end, { x }, tf.float32)
    assert.are.equal("float32", y.dtype)
    local v = rand(5)
    local got = tf.Session():run(y, { [x] = v }):totable()
    local want = {}
    for i = 1, 5 do want[i] = v[i] * v[i] + 1 end
    close(want, got)
  end)

  it("returns a list for a list Tout; the function returns several values or a list", function()
    local a, b = tf.constant(rand(3)), tf.constant({ 1, 2, 3 })
    local outs = tf.lua_func(function(x, y) return y, x end, { a, b }, { "int32", "float32" })
    assert.are.equal(2, #outs)
    local outs2 = tf.lua_func(function(_, y) return { y:totable()[1] + 0, 7.5 } end, { a, b }, { "int64", "float64" })
    local sess = tf.Session()
    local r = sess:run({ outs[1], outs[2], outs2[1], outs2[2] })
    assert.are.same({ 1, 2, 3 }, r[1]:totable())
    close(sess:run(a):totable(), r[2]:totable(), 0)
    assert.are.equal("int64", r[3].dtype)
    assert.are.equal(1, r[3]:item())
    assert.are.equal(7.5, r[4]:item())
  end)

  it("an empty Tout gives the Operation, run for its effect (stateful)", function()
    local seen = {}
    local x = tf.constant(rand(2))
    local op = tf.lua_func(function(a) seen[#seen + 1] = a:totable() end, { x }, {}, { stateful = true, name = "effect" })
    assert.is_true(tf.is_tensor(op) == false and op.name == "effect")
    local sess = tf.Session()
    sess:run(op)
    sess:run(op)
    assert.are.equal(2, #seen)
    close(sess:run(x):totable(), seen[2], 0)
  end)

  it("makes the function's error the op's error, with its Lua message and the op's line", function()
    local x = tf.constant(rand(2))
    local y = tf.lua_func(function() error("the function failed") end, { x }, "float32") local line = debug.getinfo(1, "l").currentline
    local ok, err = pcall(function() return tf.Session():run(y) end)
    assert.is_false(ok)
    assert.is_truthy(err:find("LuaFunc 'LuaFunc' (created at ", 1, true), err)
    assert.is_truthy(err:find("lua_func_spec.lua:" .. line, 1, true), err)
    assert.is_truthy(err:find("the function failed", 1, true), err)
  end)

  it("refuses values that do not fit Tout, naming the output", function()
    local x = tf.constant(rand(2))
    local sess = tf.Session()
    local count = tf.lua_func(function() return 1, 2 end, { x }, "float32")
    assert.has_error(function() sess:run(count) end)
    local ok, err = pcall(sess.run, sess, count)
    assert.is_false(ok)
    assert.is_truthy(err:find("returned 2 values, Tout has 1", 1, true), err)
    local wrong = tf.lua_func(function(a) return a end, { x }, "int32")
    ok, err = pcall(sess.run, sess, wrong)
    assert.is_false(ok)
    assert.is_truthy(err:find("output 1 is a float32 Array, Tout says int32", 1, true), err)
    local junk = tf.lua_func(function() return "text" end, { x }, "float32")
    ok, err = pcall(sess.run, sess, junk)
    assert.is_false(ok)
    assert.is_truthy(err:find("LuaFunc", 1, true), err)
  end)

  it("gives the function copies: changing an input Array does not change the run's values", function()
    local v = rand(3)
    local x = tf.constant(v)
    local y = tf.lua_func(function(a) a[1] = 100; return a end, { x }, "float32")
    local sess = tf.Session()
    local r = sess:run({ x, y })
    close(v, r[1]:totable())
    assert.are.equal(100, r[2]:totable()[1])
  end)

  it("is an error, not a deadlock, when the function calls sess:run", function()
    local x = tf.constant(rand(2))
    local sess = tf.Session{ config = { inter_op_threads = 2 } }
    local y = tf.lua_func(function(_) local r = sess:run(x) return r end, { x }, "float32")
    local ok, err = pcall(sess.run, sess, y)
    assert.is_false(ok)
    assert.is_truthy(err:find("a graph cannot use sessions from inside itself", 1, true), err)
    -- the session still works
    close(sess:run(x):totable(), sess:run(x):totable(), 0)
  end)

  it("is an error, not a deadlock, when the function closes the session or saves a checkpoint; it may build ops", function()
    local x = tf.constant(rand(2))
    local sess = tf.Session()
    local v = tf.Variable(1.0)
    local saver = tf.train.Saver({ v })
    local dir = os.tmpname()
    os.remove(dir)
    for _, act in ipairs({ function() sess:close() end, function() saver:save(sess, dir .. "/m") end }) do
      local y = tf.lua_func(function(a) act() return a end, { x }, "float32")
      local ok, err = pcall(sess.run, sess, y)
      assert.is_false(ok)
      assert.is_truthy(err:find("cannot use sessions from inside itself", 1, true), err)
    end
    local built
    local z = tf.lua_func(function(a) built = tf.lua_func(function() end, {}, {}) return a end, { x }, "float32")
    close(sess:run(z):totable(), sess:run(x):totable(), 0)
    assert.is_truthy(built)
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("has no gradient: an error on a gradient path, as TF's py_func", function()
    local x = tf.constant(rand(2))
    local y = tf.lua_func(function(a) return a end, { x }, "float32")
    assert.has_error(function() tf.gradients(tf.reduce_sum(y), x) end)
  end)

  it("runs from inter-op worker threads, several functions at once, many runs", function()
    local x = tf.placeholder("float64", { 4 })
    local branches = {}
    for k = 1, 6 do
      branches[k] = tf.lua_func(function(a)
        local out = {}
        for i, v in ipairs(a:totable()) do out[i] = v * k end
        return out
      end, { x * 1 }, "float64")
    end
    local total = tf.add_n and tf.add_n(branches) or branches[1]
    if not tf.add_n then for k = 2, 6 do total = total + branches[k] end end
    local sess = tf.Session{ config = { inter_op_threads = 2 } }
    for _ = 1, 20 do
      local v = rand(4)
      local got = sess:run(total, { [x] = v }):totable()
      local want = {}
      for i = 1, 4 do want[i] = v[i] * 21 end
      close(want, got, 1e-9)
    end
  end)

  it("tf.print's output_stream function gets the text, from worker threads too", function()
    local lines = {}
    local x = tf.placeholder("int32", { 3 })
    local p1 = tf.print("a:", x, { output_stream = function(s) lines[#lines + 1] = s end })
    local p2 = tf.print("b:", x * 2, { output_stream = function(s) lines[#lines + 1] = s end })
    local sess = tf.Session{ config = { inter_op_threads = 2 } }
    sess:run({ p1, p2 }, { [x] = { 1, 2, 3 } })
    table.sort(lines)
    assert.are.same({ "a: [1 2 3]", "b: [2 4 6]" }, lines)
  end)

  it("checks its arguments, naming them", function()
    local x = tf.constant(1.0)
    assert.has_error(function() tf.lua_func(nil, { x }, "float32") end, "tf.lua_func: func must be a function, got nil")
    assert.has_error(function() tf.lua_func(print, { x }) end, "tf.lua_func: needs Tout (a dtype or a list of dtypes)")
    assert.has_error(function() tf.lua_func(print, { x }, "float") end)
    assert.has_error(function() tf.lua_func(print, { x }, { 3 }) end, "tf.lua_func: Tout[1] must be a dtype name, got 3")
    assert.has_error(function() tf.lua_func(print, 5, "float32") end, "tf.lua_func: inp must be a list of tensors, got number")
    assert.has_error(function() tf.lua_func(print, { x }, "float32", { bogus = 1 }) end)
  end)
end)
