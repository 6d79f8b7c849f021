-- Run-time shapes (issue 10, item 3): tf.shape(x) and int32/int64 tensors
-- computed from it wherever TF takes a shape, static inference that stays
-- exact for constant shapes, and TF's static-shape API (tf.TensorShape,
-- Tensor:get_shape, Tensor:set_shape). Gradients through the run-time forms
-- are checked against central differences in gradient_check_spec (variants
-- of Reshape, Slice, Tile and the BroadcastTo case); the device kernels in
-- conformance_spec.
local tf = require("moonflow")

math.randomseed(os.time())

local function rand_matrix(r, c)
  local t = {}
  for i = 1, r do
    t[i] = {}
    for j = 1, c do t[i][j] = math.random() * 4 - 2 end
  end
  return t
end

local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end

local function run(t, feeds)
  local sess <close> = tf.Session()
  return sess:run(t, feeds)
end

local function run_err(t, feeds)
  local sess <close> = tf.Session()
  local ok, err = pcall(sess.run, sess, t, feeds)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

before_each(function() tf.reset_default_graph() end)

describe("tf.shape(x) as a shape", function()
  it("reshapes to a shape computed at run time, with the rank known statically", function()
    local x = tf.placeholder("float32", { -1, 6 })
    local y = tf.reshape(x, tf.stack({ tf.gather(tf.shape(x), 1), 3, 2 }))
    assert.are.same({ -1, 3, 2 }, y.shape)
    local rows = math.random(1, 4)
    local v = rand_matrix(rows, 6)
    local out = run(y, { [x] = v })
    assert.are.same({ rows, 3, 2 }, out:shape())
    for i = 1, rows do
      for j = 1, 6 do
        assert.are.equal(f32(v[i][j]), out[i][(j - 1) // 2 + 1][(j - 1) % 2 + 1])
      end
    end
  end)

  it("keeps the static shape exact when the shape is a constant tensor", function()
    local x = tf.constant(rand_matrix(2, 6))
    assert.are.same({ 3, 4 }, tf.reshape(x, tf.constant({ 3, -1 })).shape)
    assert.are.same({ 3, 4 }, tf.reshape(x, { 3, -1 }).shape)
    assert.are.same({ 2, 3 }, tf.zeros(tf.constant({ 2, 3 })).shape)
    assert.are.same({ 2, 6, 5 }, tf.ones(tf.concat({ tf.shape(x), { 5 } }, 1)).shape)
    assert.are.same({ 6, 2 }, tf.reshape(x, tf.stack({ tf.gather(tf.shape(x), 2), -1 })).shape)
    assert.are.same({ 2, 6 }, tf.random_normal(tf.shape(x)).shape)
  end)

  it("gives -1 dims for a computed shape and an unknown rank for one of unknown length", function()
    local s = tf.placeholder("int32", { 3 })
    assert.are.same({ -1, -1, -1 }, tf.zeros(s).shape)
    local u = tf.placeholder("int32")
    assert.is_nil(tf.zeros(u).shape)
    local p = tf.placeholder("float32", { -1, 4 })
    assert.are.same({ -1, 4 }, tf.fill(tf.shape(p), 1.5).shape)
    local n = math.random(1, 5)
    assert.are.same({ n, 4, 2 }, run(tf.zeros(tf.concat({ tf.shape(p), { 2 } }, 1)), { [p] = rand_matrix(n, 4) }):shape())
  end)

  it("accepts a list mixing integers and scalar tensors (packed, as TF does)", function()
    local p = tf.placeholder("float32", { -1, 4 })
    local z = tf.zeros({ tf.gather(tf.shape(p), 1), 3 })
    assert.are.same({ -1, 3 }, z.shape)
    local n = math.random(1, 5)
    assert.are.same({ n, 3 }, run(z, { [p] = rand_matrix(n, 4) }):shape())
  end)

  it("fills, zeros, ones with run-time shapes and int64 shapes", function()
    local p = tf.placeholder("float32", { -1, 3 })
    local n = math.random(1, 4)
    local feeds = { [p] = rand_matrix(n, 3) }
    local f = run(tf.fill(tf.shape(p), 7), feeds)
    assert.are.same({ n, 3 }, f:shape())
    assert.are.equal("int32", f.dtype)
    assert.are.equal(7, f[n][3])
    local o = run(tf.ones(tf.cast(tf.shape(p), "int64"), "float64"), feeds)
    assert.are.same({ n, 3 }, o:shape())
    assert.are.equal(1.0, o[1][2])
  end)

  it("draws random values with a run-time shape that match the attribute form's", function()
    local p = tf.placeholder("float32", { -1, 5 })
    local n = math.random(1, 4)
    local seed = math.random(1, 1000)
    for _, fn in ipairs({ tf.random_normal, tf.random_uniform, tf.truncated_normal }) do
      local a = run(fn(tf.shape(p), { seed = seed }), { [p] = rand_matrix(n, 5) })
      local b = run(fn({ n, 5 }, { seed = seed }))
      assert.are.same({ n, 5 }, a:shape())
      assert.are.same(b:totable(), a:totable())
    end
  end)

  it("tiles by run-time multiples", function()
    local x = tf.placeholder("float32", { -1, 2 })
    local y = tf.tile(x, tf.stack({ 2, tf.gather(tf.shape(x), 1) }))
    assert.are.same({ -1, -1 }, y.shape)
    local n = math.random(1, 3)
    local v = rand_matrix(n, 2)
    local out = run(y, { [x] = v })
    assert.are.same({ 2 * n, 2 * n }, out:shape())
    for i = 1, 2 * n do
      for j = 1, 2 * n do assert.are.equal(f32(v[(i - 1) % n + 1][(j - 1) % 2 + 1]), out[i][j]) end
    end
  end)

  it("slices with begin and size tensors", function()
    local x = tf.placeholder("float32", { -1, 5 })
    local y = tf.slice(x, tf.constant({ 1, 2 }), tf.stack({ tf.gather(tf.shape(x), 1), 3 }))
    assert.are.same({ -1, 3 }, y.shape)
    local n = math.random(1, 4)
    local v = rand_matrix(n, 5)
    local out = run(y, { [x] = v })
    assert.are.same({ n, 3 }, out:shape())
    assert.are.equal(f32(v[n][4]), out[n][3])
    -- a constant begin tensor with a list size: static shape still exact
    assert.are.same({ 2, 2 }, tf.slice(tf.constant(rand_matrix(3, 4)), tf.constant({ 2, 1 }), { 2, 2 }).shape)
  end)

  it("takes one_hot's depth from a tensor", function()
    local ids = tf.placeholder("int32", { -1 })
    local y = tf.one_hot(ids, tf.size(ids))
    assert.are.same({ -1, -1 }, y.shape)
    local n = math.random(2, 5)
    local v = {}
    for i = 1, n do v[i] = math.random(1, n) end
    local out = run(y, { [ids] = tf.array(v, "int32") })
    assert.are.same({ n, n }, out:shape())
    for i = 1, n do assert.are.equal(1, out[i][v[i]]) end
    assert.are.same({ 3, 4 }, tf.one_hot({ 1, 2, 3 }, tf.constant(4)).shape)
  end)
end)

describe("tf.broadcast_to", function()
  it("broadcasts to a list shape and to a run-time shape", function()
    local v = { math.random() + 0.5, math.random() - 1.5, math.random() }
    local b = tf.broadcast_to(tf.constant(v), { 2, 3 })
    assert.are.same({ 2, 3 }, b.shape)
    local out = run(b)
    for i = 1, 2 do for j = 1, 3 do assert.are.equal(f32(v[j]), out[i][j]) end end
    local p = tf.placeholder("float32", { -1, 1 })
    local n = math.random(1, 4)
    local c = tf.broadcast_to(p, tf.stack({ tf.gather(tf.shape(p), 1), 4 }))
    assert.are.same({ -1, 4 }, c.shape)
    local pv = rand_matrix(n, 1)
    local co = run(c, { [p] = pv })
    assert.are.same({ n, 4 }, co:shape())
    assert.are.equal(f32(pv[n][1]), co[n][4])
    assert.are.same({ { true, false }, { true, false } },
                    run(tf.broadcast_to(tf.constant({ true, false }), { 2, 2 })):totable())
  end)

  it("refuses shapes x cannot broadcast to, statically and at run time", function()
    assert.has_error(function() tf.broadcast_to(tf.constant({ 1.0, 2.0, 3.0 }), { 2, 2 }) end,
                     "tf.broadcast_to: cannot broadcast a {3} value to {2, 2}")
    assert.has_error(function() tf.broadcast_to(tf.constant({ 1.0, 2.0, 3.0 }), { 1 }) end)
    assert.has_error(function() tf.broadcast_to(tf.zeros({ 2, 3 }), { 3 }) end)
    local s = tf.placeholder("int32", { 1 })
    local err = run_err(tf.broadcast_to(tf.constant({ 1.0, 2.0, 3.0 }), s), { [s] = tf.array({ 1 }, "int32") })
    assert.matches("BroadcastTo", err)
  end)
end)

describe("bad run-time shapes", function()
  it("are errors naming the op", function()
    local s = tf.placeholder("int32", { -1 })
    local x = tf.constant(rand_matrix(2, 6))
    assert.matches("Reshape 'Reshape'.*12 elements.*15 elements", run_err(tf.reshape(x, s), { [s] = tf.array({ 5, 3 }, "int32") }))
    assert.matches("Fill 'zeros'.*dimension 1 of the shape is %-2", run_err(tf.zeros(s), { [s] = tf.array({ -2, 3 }, "int32") }))
    assert.matches("RandomNormal.*dimension 2 of the shape is %-1",
                   run_err(tf.random_normal(s), { [s] = tf.array({ 2, -1 }, "int32") }))
    assert.matches("Tile.*multiple %-1", run_err(tf.tile(x, s), { [s] = tf.array({ 1, -1 }, "int32") }))
    assert.matches("Tile.*multiples has 3 entries for an input of rank 2",
                   run_err(tf.tile(x, s), { [s] = tf.array({ 1, 1, 1 }, "int32") }))
    assert.matches("Slice.*out of bounds", run_err(tf.slice(x, s, { 1, 2 }), { [s] = tf.array({ 2, 6 }, "int32") }))
    local d = tf.placeholder("int32", {})
    assert.matches("OneHot.*depth is %-1", run_err(tf.one_hot({ 1 }, d), { [d] = tf.array(-1, "int32") }))
  end)

  it("refuse a shape of the wrong rank or dtype", function()
    local m = tf.placeholder("int32")
    assert.matches("Fill.*shape must be a vector, got a value of rank 2",
                   run_err(tf.zeros(m), { [m] = tf.array({ { 2, 3 } }, "int32") }))
    assert.has_error(function() tf.reshape(tf.zeros({ 2 }), tf.constant({ 2.0 })) end,
                     "tf.reshape: the shape must be an int32 or int64 tensor, got float32")
    assert.has_error(function() tf.zeros(tf.placeholder("float32", { 2 })) end)
    assert.has_error(function() tf.reshape(tf.zeros({ 2 }), tf.constant({ { 1, 2 } })) end)
    assert.has_error(function() tf.zeros({ 1, tf.constant({ 2, 3 }) }) end)
  end)
end)

describe("tf.TensorShape", function()
  it("has as_list, ndims, is_fully_defined, merge_with, #, indexing and tostring", function()
    local d = math.random(1, 9)
    local s = tf.TensorShape({ d, -1, 3 })
    assert.are.same({ d, -1, 3 }, s:as_list())
    assert.are.equal(3, s.ndims)
    assert.are.equal(3, #s)
    assert.are.equal(d, s[1])
    assert.are.equal(3, s[-1])
    assert.is_false(s:is_fully_defined())
    assert.are.equal("TensorShape(" .. d .. ", ?, 3)", tostring(s))
    local m = s:merge_with({ -1, 5, -1 })
    assert.are.same({ d, 5, 3 }, m:as_list())
    assert.is_true(m:is_fully_defined())
    assert.are.equal(d * 15, m:num_elements())
    assert.has_error(function() s:merge_with({ d + 1, -1, 3 }) end)
    assert.has_error(function() s:merge_with({ d, 1 }) end)
    assert.is_true(s:is_compatible_with(tf.TensorShape({ -1, 7, 3 })))
    assert.is_true(tf.TensorShape({ 2, 3 }) == tf.TensorShape({ 2, 3 }))
  end)

  it("represents an unknown rank", function()
    local s = tf.TensorShape(nil)
    assert.is_nil(s.ndims)
    assert.is_false(s:is_fully_defined())
    assert.are.equal("TensorShape<unknown>", tostring(s))
    assert.has_error(function() return #s end)
    assert.has_error(function() s:as_list() end)
    assert.are.same({ 2, -1 }, s:merge_with({ 2, -1 }):as_list())
  end)

  it("refuses dims that are not integers >= -1", function()
    assert.has_error(function() tf.TensorShape({ 2.5 }) end)
    assert.has_error(function() tf.TensorShape({ -3 }) end)
    assert.has_error(function() tf.TensorShape("2,3") end)
  end)

  it("is accepted where a shape is taken", function()
    local s = tf.TensorShape({ 2, math.random(1, 4) })
    assert.are.same(s:as_list(), tf.zeros(s).shape)
  end)
end)

describe("Tensor:get_shape and Tensor:set_shape", function()
  it("get_shape returns the static shape as a TensorShape", function()
    local x = tf.placeholder("float32", { -1, 7 })
    assert.are.same({ -1, 7 }, x:get_shape():as_list())
    assert.are.equal(7, x:get_shape()[2])
    assert.is_nil(tf.placeholder("float32"):get_shape().ndims)
  end)

  it("set_shape merges with the static shape, and refuses an incompatible one", function()
    local x = tf.placeholder("float32", { -1, 7 })
    local n = math.random(1, 9)
    x:set_shape({ n, -1 })
    assert.are.same({ n, 7 }, x.shape)
    assert.are.same({ n, 7 }, x:get_shape():as_list())
    assert.has_error(function() x:set_shape({ n + 1, 7 }) end)
    assert.has_error(function() x:set_shape({ n, 7, 1 }) end)
    local u = tf.placeholder("float32")
    u:set_shape(tf.TensorShape({ 2, 3 }))
    assert.are.same({ 2, 3 }, u.shape)
  end)
end)

describe("TensorShape where a static shape is declared", function()
  it("tf.placeholder takes another tensor's get_shape()", function()
    local n = math.random(1, 6)
    local x = tf.placeholder("float32", { -1, n })
    assert.are.same({ -1, n }, tf.placeholder("float32", x:get_shape()).shape)
    assert.is_nil(tf.placeholder("float32", tf.TensorShape(nil)).shape)
  end)
end)
