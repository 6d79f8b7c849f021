-- Errors a user can cause: each is a Lua error (never a crash) whose message
-- names the operation (type and scoped name) and the file:line of this spec
-- where that operation was created; after each, the process keeps working.
local tf = require("moonflow")

local SPEC = "errors_spec.lua"

-- The error message of f(), which must fail.
local function error_of(f)
  local ok, err = pcall(f)
  assert(not ok, "expected an error, but the call succeeded")
  assert.are.equal("string", type(err))
  return err
end

-- Asserts that `msg` contains each of the plain strings in the list.
local function has(msg, ...)
  for _, s in ipairs({ ... }) do
    assert(msg:find(s, 1, true), string.format("expected %q in the message:\n%s", s, msg))
  end
end

-- "errors_spec.lua:<line>": where an op was created or a call was made.
local function at(line) return SPEC .. ":" .. line end

-- A later, correct run in a fresh session: 2 + 3 == 5.
local function still_works()
  local g = tf.Graph()
  local sum = g:as_default(function() return tf.add(tf.constant(2.0), tf.constant(3.0)) end)
  local sess = tf.Session{ graph = g }
  assert.are.equal(5.0, sess:run(sum):item())
  sess:close()
end

describe("errors", function()
  before_each(function() tf.reset_default_graph() end)

  describe("at construction", function()
    it("a broadcast shape mismatch names the op, its scope and the line", function()
      local a = tf.constant({ 1.0, 2.0, 3.0 })
      local b = tf.constant({ 1.0, 2.0 })
      local line
      local msg = error_of(function()
        local _ <close> = tf.name_scope("scope")
        line = debug.getinfo(1, "l").currentline; local c = a + b
        return c
      end)
      has(msg, "Add 'scope/Add'", at(line), "{3}", "{2}")
      still_works()
    end)

    it("a matmul with different inner dimensions", function()
      local a = tf.constant({ { 1.0, 2.0, 3.0 } })        -- 1x3
      local b = tf.constant({ { 1.0, 2.0 }, { 3.0, 4.0 } }) -- 2x2
      local line
      local msg = error_of(function()
        line = debug.getinfo(1, "l").currentline; local m = tf.matmul(a, b)
        return m
      end)
      has(msg, "MatMul 'MatMul'", at(line), "inner")
      -- the failed op left no trace: the next MatMul gets the plain name
      local ok = tf.matmul(a, tf.constant({ { 1.0 }, { 1.0 }, { 1.0 } }))
      local sess = tf.Session()
      assert.are.same({ { 6.0 } }, sess:run(ok):totable())
      still_works()
    end)

    it("a concat of mismatched shapes", function()
      local a = tf.constant({ { 1.0, 2.0 } })        -- 1x2
      local b = tf.constant({ { 1.0, 2.0, 3.0 } })   -- 1x3: dimension 2 differs, axis is 1
      local line
      local msg = error_of(function()
        line = debug.getinfo(1, "l").currentline; local c = tf.concat({ a, b }, 1, "cat")
        return c
      end)
      has(msg, "ConcatV2 'cat'", at(line))
      local line2
      local msg2 = error_of(function()
        line2 = debug.getinfo(1, "l").currentline; local c = tf.concat({ a, tf.constant({ 1.0, 2.0 }) }, 1)
        return c
      end)
      has(msg2, "ConcatV2 'concat'", at(line2), "rank")
      still_works()
    end)

    it("a dtype mismatch between two tensors (int32 + float32)", function()
      local i = tf.constant({ 1, 2 })
      local f = tf.constant({ 1.0, 2.0 })
      assert.are.equal("int32", i.dtype)
      assert.are.equal("float32", f.dtype)
      local line
      local msg = error_of(function()
        line = debug.getinfo(1, "l").currentline; local s = tf.add(i, f)
        return s
      end)
      has(msg, "Add 'Add'", at(line), "int32", "float32")
      still_works()
    end)

    it("a bad reduction axis (5 and 0 on rank 2)", function()
      local x = tf.constant({ { 1.0, 2.0 }, { 3.0, 4.0 } })
      local line
      local msg = error_of(function()
        line = debug.getinfo(1, "l").currentline; local s = tf.reduce_sum(x, 5)
        return s
      end)
      has(msg, "Sum 'Sum'", at(line), "axis 5")
      local line0
      local msg0 = error_of(function()
        line0 = debug.getinfo(1, "l").currentline; local s = tf.reduce_sum(x, 0)
        return s
      end)
      -- axes count from 1: 0 is out of range
      has(msg0, "Sum 'Sum_1'", at(line0), "axis 0")
      local sess = tf.Session()
      assert.are.same({ 3.0, 7.0 }, sess:run(tf.reduce_sum(x, 2)):totable())
    end)

    -- Through the op builder under tf.* (which always passes the right kinds):
    -- each attribute's kind is checked when the op is created, never coerced.
    it("an attribute of the wrong kind names the op and the attribute", function()
      local G = require("moonflow.graph")
      local logits = tf.constant({ { 1.0, 2.0 } })
      local line
      local msg = error_of(function()
        line = debug.getinfo(1, "l").currentline; local op = G.make_op("Multinomial", { logits }, { "num_samples", "float", 2.5 })
        return op
      end)
      has(msg, "Multinomial 'Multinomial'", at(line),
          "attribute 'num_samples' must be an integer, got a float")
      msg = error_of(function()
        return G.make_op("MatMul", { logits, logits }, { "transpose_b", "int", 1 })
      end)
      has(msg, "MatMul 'MatMul'", "attribute 'transpose_b' must be a bool, got an integer")
      msg = error_of(function() return G.make_op("ConcatV2", { logits, logits }) end)
      has(msg, "ConcatV2 'ConcatV2'", "needs an integer attribute 'axis'")
      -- a Lua float with an integer value is a legitimate integer attribute
      local op = G.make_op("ConcatV2", { logits, logits }, { "axis", "int", 1.0 })
      local sess = tf.Session()
      assert.are.same({ { 1.0, 2.0 }, { 1.0, 2.0 } }, sess:run(op.outputs[1]):totable())
      still_works()
    end)
  end)

  describe("at run time", function()
    it("an out-of-range gather index names the Gather op and its line", function()
      local params = tf.constant({ 10.0, 20.0, 30.0 })
      local ids = tf.placeholder("int32", { 2 }, "ids")
      local g = tf.gather(params, ids); local line = debug.getinfo(1, "l").currentline
      local sess = tf.Session()
      local msg = error_of(function() local r = sess:run(g, { [ids] = { 1, 4 } }); return r end)
      has(msg, "GatherV2 '" .. g.op.name .. "'", at(line))
      msg = error_of(function() local r = sess:run(g, { [ids] = { 0, 1 } }); return r end)
      has(msg, "GatherV2 '" .. g.op.name .. "'", at(line))
      -- the same session still runs correct feeds (ids count from 1)
      assert.are.same({ 30.0, 10.0 }, sess:run(g, { [ids] = { 3, 1 } }):totable())
      still_works()
    end)

    -- Checks that wait for the run-time shapes (placeholders with unknown
    -- dims) or values: the op's prepare step refuses before its kernel runs,
    -- wherever the op is placed, and the session keeps working.
    it("shapes only the run knows: matmul, reshape, concat, slice, cross-entropy", function()
      local a = tf.placeholder("float32", { -1, -1 }, "a")
      local b = tf.placeholder("float32", { -1, -1 }, "b")
      local v = tf.placeholder("float32", { -1 }, "v")
      local cases = {}
      local function case(t, feeds, ...)
        cases[#cases + 1] = { t = t, line = debug.getinfo(2, "l").currentline, feeds = feeds, texts = { ... } }
      end
      case(tf.matmul(a, b), { [a] = { { 1, 2, 3 } }, [b] = { { 1, 2, 3 } } },
           "cannot multiply {1, 3} by {1, 3}")
      case(tf.reshape(v, { 2, 2 }), { [v] = { 1, 2, 3 } },
           "cannot reshape a {3} value (3 elements) to {2, 2} (4 elements)")
      case(tf.concat({ a, b }, 1), { [a] = { { 1, 2 } }, [b] = { { 1, 2, 3 } } },
           "input 2 has shape {1, 3} but input 1 has shape {1, 2}; only dimension 1 (the axis) may differ")
      case(tf.slice(v, { 2 }, { 3 }), { [v] = { 1, 2 } },
           "slice begin 2 size 3 is out of bounds for dimension 1 of the input {2}")
      case(tf.nn.softmax_cross_entropy_with_logits{ logits = a, labels = b },
           { [a] = { { 1, 2 } }, [b] = { { 1, 0, 0 } } },
           "the logits (shape {1, 2}) and the labels (shape {1, 3}) must have the same shape")
      local sess = tf.Session()
      for _, c in ipairs(cases) do
        local msg = error_of(function() local r = sess:run(c.t, c.feeds); return r end)
        has(msg, c.t.op.type .. " '" .. c.t.op.name .. "'", at(c.line), table.unpack(c.texts))
      end
      assert.are.same({ { 14.0 } }, sess:run(tf.matmul(a, b, { transpose_b = true }),
                                           { [a] = { { 1, 2, 3 } }, [b] = { { 1, 2, 3 } } }):totable())
      sess:close()
      still_works()
    end)

    it("a fed keep_prob outside (0, 1] and logits without classes", function()
      local x = tf.constant({ 1.0, 2.0 })
      local p = tf.placeholder("float32", {}, "keep")
      local d = tf.nn.dropout(x, p); local line = debug.getinfo(1, "l").currentline
      local logits = tf.placeholder("float32", { -1, -1 }, "logits")
      local m = tf.multinomial(logits, 2); local mline = debug.getinfo(1, "l").currentline
      local sess = tf.Session()
      local msg = error_of(function() local r = sess:run(d, { [p] = 1.5 }); return r end)
      has(msg, "Dropout '" .. d.op.name .. "'", at(line), "keep_prob is 1.5; it must be in (0, 1]")
      assert.are.same({ 1.0, 2.0 }, sess:run(d, { [p] = 1.0 }):totable())
      msg = error_of(function() local r = sess:run(m, { [logits] = { {}, {} } }); return r end)
      has(msg, "Multinomial '" .. m.op.name .. "'", at(mline), "needs logits [batch, classes >= 1]")
      assert.are.same({ { 1, 1 } }, sess:run(m, { [logits] = { { 0.0 } } }):totable())
      sess:close()
      still_works()
    end)

    it("integer division by zero", function()
      local x = tf.constant({ 7, 8 })
      local d = tf.placeholder("int32", { 2 }, "den")
      local q = tf.div(x, d); local line = debug.getinfo(1, "l").currentline
      local sess = tf.Session()
      local msg = error_of(function() local r = sess:run(q, { [d] = { 2, 0 } }); return r end)
      has(msg, q.op.type .. " '" .. q.op.name .. "'", at(line), "division by zero")
      assert.are.same({ 3, 2 }, sess:run(q, { [d] = { 2, 4 } }):totable())
      local m = tf.mod(x, d); local mline = debug.getinfo(1, "l").currentline
      msg = error_of(function() local r = sess:run(m, { [d] = { 0, 3 } }); return r end)
      has(msg, m.op.type .. " '" .. m.op.name .. "'", at(mline), "division by zero")
      assert.are.same({ 1, 2 }, sess:run(m, { [d] = { 3, 3 } }):totable())
    end)

    it("a missing feed names the placeholder", function()
      local p = tf.placeholder("float32", { 2 }, "input_x"); local line = debug.getinfo(1, "l").currentline
      local y = p * 2
      local sess = tf.Session()
      local msg = error_of(function() local r = sess:run(y); return r end)
      has(msg, "Placeholder 'input_x'", at(line))
      assert.are.same({ 2.0, 4.0 }, sess:run(y, { [p] = { 1.0, 2.0 } }):totable())
    end)

    it("a feed of the wrong shape names the placeholder", function()
      local p = tf.placeholder("float32", { 2 }, "px"); local line = debug.getinfo(1, "l").currentline
      local y = p + 1
      local sess = tf.Session()
      local msg = error_of(function() local r = sess:run(y, { [p] = { 1.0, 2.0, 3.0 } }); return r end)
      has(msg, "Placeholder 'px'", at(line), "{3}")
      msg = error_of(function() local r = sess:run(y, { ["px:0"] = { { 1.0, 2.0 } } }); return r end)
      has(msg, "Placeholder 'px'", at(line))
      assert.are.same({ 2.0, 3.0 }, sess:run(y, { [p] = { 1.0, 2.0 } }):totable())
    end)

    it("a feed of the wrong dtype names the placeholder", function()
      local p = tf.placeholder("float32", { 2 }, "pf"); local line = debug.getinfo(1, "l").currentline
      local y = p + 1
      local sess = tf.Session()
      local msg = error_of(function()
        local r = sess:run(y, { [p] = tf.array({ 1, 2 }, "int32") }); return r
      end)
      has(msg, "Placeholder 'pf'", at(line), "int32", "float32")
      msg = error_of(function()
        local r = sess:run(y, { ["pf:0"] = tf.array({ 1.0, 2.0 }, "float64") }); return r
      end)
      has(msg, "Placeholder 'pf'", at(line), "float64", "float32")
      assert.are.same({ 2.0, 3.0 }, sess:run(y, { [p] = tf.array({ 1.0, 2.0 }, "float32") }):totable())
    end)

    it("an uninitialized variable is named", function()
      local v = tf.Variable(3.0, "my_var"); local line = debug.getinfo(1, "l").currentline
      local y = v * 2
      local sess = tf.Session()
      local msg = error_of(function() local r = sess:run(y); return r end)
      has(msg, "VariableV2 'my_var'", at(line), "uninitialized")
      sess:run(v.initializer)
      assert.are.equal(6.0, sess:run(y):item())
    end)

    it("a closed session", function()
      local c = tf.constant(1.0)
      local sess = tf.Session()
      assert.are.equal(1.0, sess:run(c):item())
      sess:close()
      local line
      local msg = error_of(function()
        line = debug.getinfo(1, "l").currentline; local r = sess:run(c)
        return r
      end)
      has(msg, "closed session", at(line))
      sess:close() -- a second close is harmless
      still_works()
    end)

    it("an unknown fetch name", function()
      local c = tf.constant(1.0, { name = "known" })
      local sess = tf.Session()
      local line
      local msg = error_of(function()
        line = debug.getinfo(1, "l").currentline; local r = sess:run("no_such_op:0")
        return r
      end)
      has(msg, "no_such_op", at(line))
      msg = error_of(function() local r = sess:run("no_such_op"); return r end)
      has(msg, "no_such_op")
      msg = error_of(function() local r = sess:run("known:3"); return r end)
      has(msg, "known")
      assert.are.equal(1.0, sess:run("known:0"):item())
      assert.are.equal(1.0, sess:run(c):item())
    end)
  end)

  describe("tensors from another graph", function()
    it("cannot be mixed in one op", function()
      local g1, g2 = tf.Graph(), tf.Graph()
      local a = g1:as_default(function() return tf.constant(1.0, { name = "in_g1" }) end)
      local b = g2:as_default(function() return tf.constant(2.0, { name = "in_g2" }) end)
      local line
      local msg = error_of(function()
        line = debug.getinfo(1, "l").currentline; local c = a + b
        return c
      end)
      has(msg, "Add", "different graph", "in_g1", "in_g2", at(line))
      local sess = tf.Session{ graph = g1 }
      assert.are.equal(3.0, sess:run(g1:as_default(function() return a + 2.0 end)):item())
    end)

    it("cannot be fetched or fed in a session of another graph", function()
      local g1, g2 = tf.Graph(), tf.Graph()
      local a = g1:as_default(function() return tf.constant(1.0, { name = "only_in_g1" }) end)
      local p = g1:as_default(function() return tf.placeholder("float32", nil, "p_in_g1") end)
      local b = g2:as_default(function() return tf.constant(2.0) end)
      local sess = tf.Session{ graph = g2 }
      local line
      local msg = error_of(function()
        line = debug.getinfo(1, "l").currentline; local r = sess:run(a)
        return r
      end)
      has(msg, "only_in_g1", "different graph", at(line))
      msg = error_of(function() local r = sess:run({ a, b }); return r end)
      has(msg, "only_in_g1", "different graph")
      msg = error_of(function() local r = sess:run(b, { [p] = 1.0 }); return r end)
      has(msg, "p_in_g1", "different graph")
      assert.are.equal(2.0, sess:run(b):item())
    end)
  end)

  describe("wrong argument types from Lua", function()
    it("tf.reshape with a string shape", function()
      local x = tf.constant({ 1.0, 2.0 })
      local line
      local msg = error_of(function()
        line = debug.getinfo(1, "l").currentline; local r = tf.reshape(x, "a")
        return r
      end)
      has(msg, "tf.reshape", at(line))
      local sess = tf.Session()
      assert.are.same({ { 1.0 }, { 2.0 } }, sess:run(tf.reshape(x, { 2, 1 })):totable())
    end)

    it("a ragged nested table", function()
      local line
      local msg = error_of(function()
        line = debug.getinfo(1, "l").currentline; local r = tf.constant({ 1, { 2 } })
        return r
      end)
      has(msg, "tf.constant", at(line))
      -- the message says what is wrong with the table, not only that it is one
      assert(msg:lower():find("ragged", 1, true), "expected the message to say the table is ragged:\n" .. msg)
      local line2
      local msg2 = error_of(function()
        line2 = debug.getinfo(1, "l").currentline; local r = tf.constant({ { 1, 2 }, { 3 } })
        return r
      end)
      has(msg2, "tf.constant", at(line2))
      assert(msg2:lower():find("ragged", 1, true), msg2)
      still_works()
    end)

    it("an unknown dtype name", function()
      local line
      local msg = error_of(function()
        line = debug.getinfo(1, "l").currentline; local r = tf.placeholder("float99")
        return r
      end)
      has(msg, "tf.placeholder", "float99", at(line))
      msg = error_of(function() local r = tf.zeros({ 2 }, "float99"); return r end)
      has(msg, "float99")
      local p = tf.placeholder("float32")
      local sess = tf.Session()
      assert.are.equal(4.0, sess:run(p * 2, { [p] = 2.0 }):item())
    end)

    it("a non-integer axis names the reduction", function()
      local x = tf.constant({ { 1.0, 2.0 }, { 3.0, 4.0 } })
      local line
      local msg = error_of(function()
        line = debug.getinfo(1, "l").currentline; local r = tf.reduce_sum(x, 1.5)
        return r
      end)
      assert(msg:find("reduce_sum", 1, true) or msg:find("Sum", 1, true),
             "expected the message to name tf.reduce_sum or the Sum op:\n" .. msg)
      has(msg, "axis", at(line))
      local sess = tf.Session()
      assert.are.same({ 4.0, 6.0 }, sess:run(tf.reduce_sum(x, 1)):totable())
    end)

    it("non-tensor arguments", function()
      local msg = error_of(function() local r = tf.add(tf.constant(1.0), "x"); return r end)
      has(msg, "string")
      msg = error_of(function() local r = tf.matmul(tf.constant({ { 1.0 } }), {}); return r end)
      assert.is_true(#msg > 0)
      msg = error_of(function() local r = tf.constant(nil); return r end)
      has(msg, "tf.constant")
      still_works()
    end)
  end)

  it("many errors in a row leave the process working", function()
    local x = tf.placeholder("float32", { 2 })
    local ids = tf.placeholder("int32", { 1 })
    local g = tf.gather(x, ids)
    local sess = tf.Session()
    for i = 1, 200 do
      local ok = pcall(sess.run, sess, g, { [x] = { 1.0, 2.0 }, [ids] = { 3 + i } })
      assert.is_false(ok)
      ok = pcall(sess.run, sess, g, { [x] = { 1.0, 2.0, 3.0 }, [ids] = { 1 } })
      assert.is_false(ok)
    end
    collectgarbage()
    assert.are.same({ 2.0 }, sess:run(g, { [x] = { 1.0, 2.0 }, [ids] = { 2 } }):totable())
  end)
end)

describe("errors found in review", function()
  it("a placeholder_with_default shape of too high a rank is an error, not a crash", function()
    local sh = {}
    for i = 1, 40 do sh[i] = -1 end
    local ok, err = pcall(tf.placeholder_with_default, tf.placeholder("float32"), sh)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("rank 40", 1, true))
  end)

  it("an op whose arguments are bad is not added to the graph", function()
    local g = tf.Graph()
    g:as_default(function()
      local x = tf.constant({ { 1.0, 2.0 }, { 3.0, 4.0 } })
      local n = #g:get_operations()
      local ok, err = pcall(tf.reduce_sum, x, 1.5)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("tf.reduce_sum: axis", 1, true))
      assert.are.equal(n, #g:get_operations())
    end)
  end)

  it("misspelt options are errors naming the option", function()
    local cases = {
      function() return tf.random_normal({ 2 }, { stdev = 5 }) end,
      function() return tf.matmul({ { 1.0 } }, { { 1.0 } }, { transpose_B = true }) end,
      function() return tf.Variable(1, { nmae = "x" }) end,
      function() return tf.Session{ config = { inter_op = 2 } } end,
      function() return tf.layers.dense(tf.placeholder("float32", { 2, 3 }), 4, { activaton = tf.nn.relu }) end,
    }
    for i, f in ipairs(cases) do
      local ok, err = pcall(f)
      assert.is_false(ok, "case " .. i)
      assert.is_truthy(tostring(err):find("unknown option", 1, true), tostring(err))
    end
    local ok, err = pcall(tf.constant, 0, { 2, 2 })
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("positional", 1, true))
  end)

  it("calling sess.run with a dot says to use a colon", function()
    local sess = tf.Session()
    local ok, err = pcall(function() return sess.run(tf.constant(1)) end)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("sess:run", 1, true))
  end)
end)
