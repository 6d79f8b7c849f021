-- Graph building: constants, dtype inference, static shapes, operator
-- overloads, Tensor / Operation fields, and the default-graph machinery.
-- Every expected value is computed here in plain Lua, never by moonflow.
local tf = require("moonflow")

math.randomseed(20240611)

-- The float32 nearest to x (IEEE round-to-nearest), for exact comparisons.
local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end

local function rand_floats(n, lo, hi)
  local t = {}
  for i = 1, n do t[i] = lo + (hi - lo) * math.random() end
  return t
end

local function rand_ints(n, lo, hi, nonzero)
  local t = {}
  for i = 1, n do
    local v
    repeat v = math.random(lo, hi) until not (nonzero and v == 0)
    t[i] = v
  end
  return t
end

local function run(t, feeds)
  local sess <close> = tf.Session{ graph = t.graph }
  return sess:run(t, feeds)
end

local function assert_shape(t, expected)
  assert.are.same(expected, t.shape)
end

-- Asserts |actual[i] - expected[i]| <= tol * max(1, |expected[i]|) for flat lists.
local function assert_close(expected, actual, tol)
  assert.are.equal(#expected, #actual)
  for i = 1, #expected do
    local e, a = expected[i], actual[i]
    if math.abs(e - a) > tol * math.max(1, math.abs(e)) then
      error(string.format("element %d: expected %.9g, got %.9g", i, e, a), 2)
    end
  end
end

before_each(function() tf.reset_default_graph() end)

describe("tf.constant", function()
  it("makes a scalar from a Lua number", function()
    local n = math.random(-1000, 1000)
    local c = tf.constant(n)
    assert_shape(c, {})
    assert.are.equal(n, run(c):item())
  end)

  it("makes a tensor from a nested table, keeping its shape and values", function()
    local m = { rand_ints(3, -50, 50), rand_ints(3, -50, 50) }
    local c = tf.constant(m)
    assert_shape(c, { 2, 3 })
    assert.are.same(m, run(c):totable())
  end)

  it("makes a rank-3 tensor from a table of tables of tables", function()
    local t = { { { 1 }, { 2 } }, { { 3 }, { 4 } }, { { 5 }, { 6 } } }
    local c = tf.constant(t)
    assert_shape(c, { 3, 2, 1 })
    assert.are.same(t, run(c):totable())
  end)

  it("makes a tensor from an Array, with the Array's dtype and shape", function()
    local vals = rand_floats(6, -2, 2)
    local a = tf.array({ { vals[1], vals[2], vals[3] }, { vals[4], vals[5], vals[6] } }, "float64")
    local c = tf.constant(a)
    assert.are.equal("float64", c.dtype)
    assert_shape(c, { 2, 3 })
    -- float64 keeps every bit of the Lua number
    assert.are.same({ { vals[1], vals[2], vals[3] }, { vals[4], vals[5], vals[6] } }, run(c):totable())
  end)

  it("fills a requested shape from a single value", function()
    local c = tf.constant(7, { shape = { 2, 2 } })
    assert_shape(c, { 2, 2 })
    assert.are.same({ { 7, 7 }, { 7, 7 } }, run(c):totable())
  end)

  it("rejects a Lua integer outside the int32 range, quoting the value the user wrote", function()
    local ok, err = pcall(tf.constant, 2147483648)
    assert.is_false(ok)
    assert.matches("2147483648", err)
    assert.not_matches("%-2147483648", err)
    ok, err = pcall(tf.constant, { 1, 3000000000 })
    assert.is_false(ok)
    assert.matches("3000000000", err)
  end)

  it("rejects ragged tables", function()
    assert.has_error(function() tf.constant({ { 1, 2 }, { 3 } }) end)
  end)
end)

describe("dtype inference", function()
  it("makes Lua integers int32", function()
    assert.are.equal("int32", tf.constant(3).dtype)
    assert.are.equal("int32", tf.constant({ 1, 2, 3 }).dtype)
  end)

  it("makes Lua floats float32, rounding the value to float32", function()
    local c = tf.constant(0.1)
    assert.are.equal("float32", c.dtype)
    assert.are.equal(f32(0.1), run(c):item())
    assert.are_not.equal(0.1, run(c):item())
  end)

  it("makes a table holding any float float32", function()
    local c = tf.constant({ 1, 2, 2.5 })
    assert.are.equal("float32", c.dtype)
    assert.are.same({ 1.0, 2.0, 2.5 }, run(c):totable())
  end)

  it("honours {dtype = 'float64'}, keeping full precision", function()
    local c = tf.constant({ 1, 0.1 }, { dtype = "float64" })
    assert.are.equal("float64", c.dtype)
    assert.are.same({ 1.0, 0.1 }, run(c):totable())
  end)

  it("honours a dtype override for an Array too, converting it as tf.constant(np_array, dtype) does", function()
    local c = tf.constant(tf.array({ 1.5, 2.25 }, "float64"), { dtype = "float32" })
    assert.are.equal("float32", c.dtype)
    assert.are.same({ 1.5, 2.25 }, run(c):totable())
  end)

  it("makes booleans bool", function()
    local c = tf.constant({ true, false, true })
    assert.are.equal("bool", c.dtype)
    assert.are.same({ true, false, true }, run(c):totable())
  end)

  it("offers the dtype names as tf.float32, tf.int32, ...", function()
    for _, name in ipairs({ "float32", "float64", "int32", "int64", "bool", "uint8" }) do
      assert.are.equal(name, tf[name])
      local value = name == "bool" and true or 1
      assert.are.equal(name, tf.constant(value, { dtype = tf[name] }).dtype)
    end
  end)

  it("rejects an unknown dtype name", function()
    assert.has_error(function() tf.constant(1, { dtype = "float17" }) end)
  end)
end)

describe("the scalar-adopts-tensor-dtype rule", function()
  it("keeps a float32 tensor float32 when multiplied by a Lua integer", function()
    local xs = rand_floats(4, -10, 10)
    local x = tf.constant(xs)
    local y = x * 2
    assert.are.equal("float32", y.dtype)
    local expected = {}
    for i, v in ipairs(xs) do expected[i] = f32(f32(v) * 2) end
    assert.are.same(expected, run(y):totable())
  end)

  it("applies with the Lua number on the left too", function()
    local x = tf.constant({ 1.5, -3.0 })
    local y = 2 - x
    assert.are.equal("float32", y.dtype)
    assert.are.same({ 0.5, 5.0 }, run(y):totable())
  end)

  it("keeps a float64 tensor float64 when a Lua float is added", function()
    local xs = rand_floats(3, -1, 1)
    local x = tf.constant(xs, { dtype = "float64" })
    local y = x + 2.5
    assert.are.equal("float64", y.dtype)
    local expected = {}
    for i, v in ipairs(xs) do expected[i] = v + 2.5 end
    assert.are.same(expected, run(y):totable())
  end)

  it("gives a Lua table next to a tensor the tensor's dtype", function()
    local x = tf.constant({ 1, 2 }, { dtype = "float64" })
    local y = x + { 0.1, 0.2 }
    assert.are.equal("float64", y.dtype)
    assert.are.same({ 1 + 0.1, 2 + 0.2 }, run(y):totable())
  end)

  it("makes an int32 tensor plus a Lua integer int32", function()
    local y = tf.constant({ 5, -7 }) + 3
    assert.are.equal("int32", y.dtype)
    assert.are.same({ 8, -4 }, run(y):totable())
  end)

  it("refuses two tensors of different dtypes, naming the operation and both dtypes", function()
    local a, b = tf.constant({ 1, 2 }), tf.constant({ 1.5, 2.5 })
    local ok, err = pcall(function() return a + b end)
    assert.is_false(ok)
    assert.matches("Add", err)
    assert.matches("int32", err)
    assert.matches("float32", err)
  end)

  it("refuses float32 next to float64 (no silent cast)", function()
    local a = tf.constant({ 1.5 })
    local b = tf.constant({ 1.5 }, { dtype = "float64" })
    assert.has_error(function() return tf.mul(a, b) end)
  end)
end)

describe("static shape inference", function()
  it("gives a placeholder its partial shape, -1 for unknown", function()
    assert_shape(tf.placeholder("float32", { -1, 784 }), { -1, 784 })
  end)

  it("broadcasts an unknown dimension against a known one", function()
    local x = tf.placeholder("float32", { -1, 3 })
    assert_shape(x + tf.constant({ 1.0, 2.0, 3.0 }), { -1, 3 })
    assert_shape(x * 2, { -1, 3 })
  end)

  it("broadcasts size-1 dimensions next to unknown ones", function()
    local col = tf.placeholder("float32", { -1, 1 })
    assert_shape(col + tf.ones({ 1, 5 }), { -1, 5 })
    assert_shape(col + tf.placeholder("float32", { -1, 4 }), { -1, 4 })
  end)

  it("broadcasts ranks as NumPy does", function()
    assert_shape(tf.ones({ 4, 1, 3 }) + tf.ones({ 2, 1 }), { 4, 2, 3 })
  end)

  it("rejects incompatible shapes when the operation is created", function()
    assert.has_error(function() return tf.ones({ 2, 3 }) + tf.ones({ 4 }) end)
  end)

  it("infers matmul shapes with an unknown batch", function()
    local x = tf.placeholder("float32", { -1, 3 })
    assert_shape(tf.matmul(x, tf.ones({ 3, 4 })), { -1, 4 })
    assert_shape(tf.matmul(tf.ones({ 5, 3 }), tf.ones({ 5, 3 }), { transpose_a = true }), { 3, 3 })
    assert_shape(tf.matmul(tf.ones({ 5, 3 }), tf.ones({ 5, 3 }), { transpose_b = true }), { 5, 5 })
  end)

  it("rejects matmul with mismatched inner dimensions", function()
    assert.has_error(function() return tf.matmul(tf.ones({ 2, 3 }), tf.ones({ 4, 2 })) end)
  end)

  it("infers reductions over 1-based axes, with keep_dims and negative axes", function()
    local x = tf.placeholder("float32", { -1, 3 })
    assert_shape(tf.reduce_sum(x, 1), { 3 })
    assert_shape(tf.reduce_sum(x, 2), { -1 })
    assert_shape(tf.reduce_sum(x, -1), { -1 })
    assert_shape(tf.reduce_sum(x), {})
    assert_shape(tf.reduce_mean(x, 2, { keep_dims = true }), { -1, 1 })
    assert_shape(tf.reduce_max(x, { 1, 2 }), {})
  end)

  it("infers reshape, resolving -1 when the element count is known", function()
    assert_shape(tf.reshape(tf.ones({ 2, 6 }), { 3, -1 }), { 3, 4 })
    local x = tf.placeholder("float32", { -1, 3 })
    assert_shape(tf.reshape(x, { -1 }), { -1 })
    assert_shape(tf.reshape(x, { -1, 3, 1 }), { -1, 3, 1 })
  end)

  it("rejects a reshape to a different element count", function()
    assert.has_error(function() return tf.reshape(tf.ones({ 2, 3 }), { 4 }) end)
  end)

  it("leaves the shape unknown for a placeholder without one", function()
    local x = tf.placeholder("float32")
    assert.is_nil(x.shape)
    assert.is_nil((x + 1).shape)
  end)
end)

describe("operator overloads", function()
  local N = 8

  it("+ - * / on float32 tensors agree with Lua arithmetic rounded to float32", function()
    local a, b = rand_floats(N, -100, 100), rand_floats(N, 0.5, 50)
    local ta, tb = tf.constant(a), tf.constant(b)
    local sess <close> = tf.Session()
    local got = sess:run({ ta + tb, ta - tb, ta * tb, ta / tb })
    for i = 1, N do
      local x, y = f32(a[i]), f32(b[i])
      assert.are.equal(f32(x + y), got[1][i])
      assert.are.equal(f32(x - y), got[2][i])
      assert.are.equal(f32(x * y), got[3][i])
      assert.are.equal(f32(x / y), got[4][i])
    end
  end)

  it("+ - * on int32 tensors agree with Lua integer arithmetic", function()
    local a, b = rand_ints(N, -1000, 1000), rand_ints(N, -1000, 1000)
    local ta, tb = tf.constant(a), tf.constant(b)
    local sess <close> = tf.Session()
    local got = sess:run({ ta + tb, ta - tb, ta * tb })
    for i = 1, N do
      assert.are.equal(a[i] + b[i], got[1][i])
      assert.are.equal(a[i] - b[i], got[2][i])
      assert.are.equal(a[i] * b[i], got[3][i])
    end
  end)

  it("% is floor modulo on integers, like Lua's %, for every sign combination", function()
    local a = { 7, -7, 7, -7, 0, 13, -1 }
    local b = { 3, 3, -3, -3, 5, 4, 6 }
    for i = 1, N do a[#a + 1], b[#b + 1] = math.random(-99, 99), (math.random(1, 9) * (math.random(0, 1) * 2 - 1)) end
    local got = run(tf.constant(a) % tf.constant(b))
    for i = 1, #a do assert.are.equal(a[i] % b[i], got[i]) end
  end)

  it("% is floor modulo on floats, like Lua's %", function()
    local a = rand_floats(N, -20, 20)
    local b = rand_floats(N, 0.5, 5)
    for i = 1, N, 2 do b[i] = -b[i] end
    local got = run(tf.constant(a, { dtype = "float64" }) % tf.constant(b, { dtype = "float64" }))
    local expected = {}
    for i = 1, N do expected[i] = a[i] % b[i] end
    assert_close(expected, got:totable(), 1e-12)
  end)

  it("^ raises to a power, like Lua's ^", function()
    local a = rand_floats(N, 0.1, 4)
    local b = rand_floats(N, -2, 3)
    local got = run(tf.constant(a, { dtype = "float64" }) ^ tf.constant(b, { dtype = "float64" }))
    local expected = {}
    for i = 1, N do expected[i] = a[i] ^ b[i] end
    assert_close(expected, got:totable(), 1e-12)
  end)

  it("^ with a Lua integer exponent on an int32 tensor stays exact", function()
    local a = rand_ints(N, -12, 12)
    local got = run(tf.constant(a) ^ 3)
    for i = 1, N do assert.are.equal(a[i] * a[i] * a[i], got[i]) end
  end)

  it("unary - negates", function()
    local a = rand_ints(N, -500, 500)
    local got = run(-tf.constant(a))
    for i = 1, N do assert.are.equal(-a[i], got[i]) end
  end)

  it("/ on integer tensors divides like Lua's / (7 / 2 == 3.5, not 3)", function()
    local got = run(tf.constant({ 7, -7, 9 }) / tf.constant({ 2, 2, 3 }))
    assert_close({ 7 / 2, -7 / 2, 9 / 3 }, got:totable(), 1e-6)
  end)

  it("combines overloads as Lua's precedence says", function()
    local a, b, c = rand_floats(1, -3, 3)[1], rand_floats(1, 1, 3)[1], rand_floats(1, -3, 3)[1]
    local ta, tb, tc = tf.constant(a, { dtype = "float64" }), tf.constant(b, { dtype = "float64" }),
                       tf.constant(c, { dtype = "float64" })
    local got = run(-ta + tb ^ 2 * tc - ta / tb):item()
    assert_close({ -a + b ^ 2 * c - a / b }, { got }, 1e-12)
  end)
end)

describe("Tensor", function()
  it("has .name 'op:index', .op, .dtype, .shape and .graph", function()
    local t = tf.constant({ { 1.0, 2.0 } }, "weights")
    assert.are.equal("weights:0", t.name)
    assert.are.equal("weights", t.op.name)
    assert.are.equal("float32", t.dtype)
    assert.are.same({ 1, 2 }, t.shape)
    assert.are.equal(tf.get_default_graph(), t.graph)
  end)

  it("is the op's outputs[i], output i numbered from 0 in its name", function()
    local parts = tf.split(tf.ones({ 4 }), 2, 1)
    assert.are.equal(parts[1].op, parts[2].op)
    assert.are.equal(parts[1].op.name .. ":0", parts[1].name)
    assert.are.equal(parts[2].op.name .. ":1", parts[2].name)
    assert.are.equal(parts[2], parts[2].op.outputs[2])
  end)
end)

describe("Operation", function()
  it("has .name and .type", function()
    local c = tf.constant(1)
    local s = tf.add(c, c, "total")
    assert.are.equal("total", s.op.name)
    assert.are.equal("Add", s.op.type)
    assert.are.equal("Const", c.op.type)
  end)

  it("lists its .inputs as the tensors it consumes, in order", function()
    local a, b = tf.constant(1, "a"), tf.constant(2, "b")
    local d = b - a
    local ins = d.op.inputs
    assert.are.equal(2, #ins)
    assert.are.equal(b, ins[1])
    assert.are.equal(a, ins[2])
    assert.are.same({}, a.op.inputs)
  end)

  it("lists its .outputs", function()
    local a = tf.constant(1)
    assert.are.equal(1, #a.op.outputs)
    assert.are.equal(a, a.op.outputs[1])
    assert.are.equal(3, #tf.unstack(tf.ones({ 3, 2 }), { axis = 1 })[1].op.outputs)
  end)

  it("lists its .control_inputs", function()
    local a = tf.constant(1, "first")
    local b
    tf.control_dependencies({ a }, function() b = tf.constant(2) end)
    assert.are.same({}, a.op.control_inputs)
    assert.are.equal(1, #b.op.control_inputs)
    assert.are.equal(a.op, b.op.control_inputs[1])
  end)

  it("has .device, empty unless a device scope set it, in TF's canonical spelling", function()
    local a = tf.constant(1)
    assert.are.equal("", a.op.device)
    local b
    tf.device("/cpu:0", function() b = tf.constant(2) end)
    assert.are.equal("/device:CPU:0", b.op.device)
  end)
end)

describe("graphs", function()
  it("has a default graph as soon as the module is loaded, the same one each call", function()
    local g = tf.get_default_graph()
    assert.is_not_nil(g)
    assert.are.equal(getmetatable(tf.Graph()), getmetatable(g))
    assert.are.equal(g, tf.get_default_graph())
    assert.are.equal(g, tf.constant(1).graph)
  end)

  it("makes a new, empty graph with tf.Graph()", function()
    local g = tf.Graph()
    assert.are_not.equal(tf.get_default_graph(), g)
    assert.are.same({}, g:get_operations())
  end)

  it("puts operations into g inside `local _ <close> = g:as_default()` and restores afterwards", function()
    local outer = tf.get_default_graph()
    local g = tf.Graph()
    local c
    do
      local _ <close> = g:as_default()
      assert.are.equal(g, tf.get_default_graph())
      c = tf.constant({ 1.0, 2.0 })
    end
    assert.are.equal(g, c.graph)
    assert.are.equal(outer, tf.get_default_graph())
    assert.are.same({}, outer:get_operations())
    assert.are.equal(1, #g:get_operations())
  end)

  it("runs the callback form of g:as_default in g and returns all its results", function()
    local g = tf.Graph()
    local a, b, c = g:as_default(function() return tf.constant(3), "two", 3 end)
    assert.are.equal(g, a.graph)
    assert.are.equal("two", b)
    assert.are.equal(3, c)
    assert.are_not.equal(g, tf.get_default_graph())
  end)

  it("restores the previous default graph when the callback raises, and re-raises", function()
    local outer = tf.get_default_graph()
    local g = tf.Graph()
    local ok, err = pcall(g.as_default, g, function() error("boom in the callback") end)
    assert.is_false(ok)
    assert.matches("boom in the callback", err)
    assert.are.equal(outer, tf.get_default_graph())
  end)

  it("restores the previous default graph when a `<close>` block raises", function()
    local outer = tf.get_default_graph()
    local g = tf.Graph()
    local ok = pcall(function()
      local _ <close> = g:as_default()
      error("boom in the block")
    end)
    assert.is_false(ok)
    assert.are.equal(outer, tf.get_default_graph())
  end)

  it("nests as_default blocks", function()
    local g1, g2 = tf.Graph(), tf.Graph()
    g1:as_default(function()
      g2:as_default(function() assert.are.equal(g2, tf.get_default_graph()) end)
      assert.are.equal(g1, tf.get_default_graph())
    end)
  end)

  it("replaces the default graph with tf.reset_default_graph()", function()
    local old = tf.get_default_graph()
    local c = tf.constant(5)
    local new = tf.reset_default_graph()
    assert.are_not.equal(old, tf.get_default_graph())
    assert.are.same({}, tf.get_default_graph():get_operations())
    if new ~= nil then assert.are.equal(new, tf.get_default_graph()) end
    assert.are.equal(old, c.graph)
  end)

  it("refuses tf.reset_default_graph() inside an as_default block", function()
    local g = tf.Graph()
    assert.has_error(function() g:as_default(function() tf.reset_default_graph() end) end)
  end)

  it("lists operations in creation order with g:get_operations()", function()
    local a = tf.constant(1, "a")
    local b = tf.constant(2, "b")
    local s = a + b
    local ops = tf.get_default_graph():get_operations()
    assert.are.equal(3, #ops)
    assert.are.equal(a.op, ops[1])
    assert.are.equal(b.op, ops[2])
    assert.are.equal(s.op, ops[3])
  end)

  it("finds operations and tensors by name", function()
    local g = tf.get_default_graph()
    local m
    tf.name_scope("Scope1", function() m = tf.mul(5, 5) end)
    assert.are.equal(m.op, g:get_operation_by_name("Scope1/Mul"))
    assert.are.equal(m, g:get_tensor_by_name("Scope1/Mul:0"))
  end)

  it("raises on names it does not have", function()
    local g = tf.get_default_graph()
    tf.constant(1, "here")
    assert.has_error(function() g:get_operation_by_name("not_here") end)
    assert.has_error(function() g:get_tensor_by_name("here:1") end)
    assert.has_error(function() g:get_tensor_by_name("here") end)
  end)

  it("refuses to combine tensors from different graphs", function()
    local a = tf.constant(1)
    local b = tf.Graph():as_default(function() return tf.constant(2) end)
    assert.has_error(function() return a + b end)
  end)
end)
