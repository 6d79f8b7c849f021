-- Gradient clipping: tf.clip_by_value, tf.clip_by_norm, tf.clip_by_global_norm
-- and tf.global_norm against plain-Lua (float64) computations.
local tf = require("moonflow")
local NUM = dofile("tests/spec/support/numeric.lua")
local f32, rand_list, flatten, rows_of, assert_close = NUM.f32, NUM.rand_list, NUM.flatten, NUM.rows_of, NUM.assert_close

math.randomseed(31337)


local TOL = { float64 = 1e-12, float32 = 1e-5 }

local function sumsq(xs)
  local s = 0
  for _, v in ipairs(xs) do s = s + v * v end
  return s
end

local function scaled(xs, k)
  local o = {}
  for i, v in ipairs(xs) do o[i] = v * k end
  return o
end

before_each(function() tf.reset_default_graph() end)

local DTYPES = { "float64", "float32" }

describe("tf.clip_by_value", function()
  for _, dt in ipairs(DTYPES) do
    it("clamps every element into [lo, hi] in " .. dt, function()
      local xs = rand_list(20, -5, 5, dt == "float32")
      local t = tf.clip_by_value(tf.constant(rows_of(xs, 5), { dtype = dt }), -1.5, 2.25)
      assert.are.equal(dt, t.dtype)
      local sess <close> = tf.Session()
      local out = sess:run(t)
      assert.are.same({ 4, 5 }, out:shape())
      local e = {}
      for i, v in ipairs(xs) do e[i] = math.min(math.max(v, -1.5), 2.25) end
      assert.are.same(e, flatten(out:totable())) -- exact: clamping does no arithmetic
    end)
  end

  it("accepts tensor bounds", function()
    local lo = tf.placeholder("float32", {}, "lo")
    local t = tf.clip_by_value(tf.constant({ -3.0, 0.5, 3.0 }), lo, 1.0)
    local sess <close> = tf.Session()
    assert.are.same({ -0.5, 0.5, 1.0 }, sess:run(t, { [lo] = -0.5 }):totable())
  end)
end)

describe("tf.clip_by_norm", function()
  for _, dt in ipairs(DTYPES) do
    it("scales to clip_norm when the L2 norm exceeds it in " .. dt, function()
      local xs = rand_list(12, -3, 3, dt == "float32")
      local norm = math.sqrt(sumsq(xs))
      local clip = norm / 2
      if dt == "float32" then clip = f32(clip) end
      local t = tf.clip_by_norm(tf.constant(rows_of(xs, 4), { dtype = dt }), clip)
      local sess <close> = tf.Session()
      local out = sess:run(t)
      assert.are.same({ 3, 4 }, out:shape())
      assert_close(scaled(xs, clip / norm), out:totable(), TOL[dt], "clipped")
      assert_close({ clip }, { math.sqrt(sumsq(flatten(out:totable()))) }, TOL[dt], "new norm")
    end)

    it("leaves the tensor unchanged when the norm is below clip_norm in " .. dt, function()
      local xs = rand_list(12, -3, 3, dt == "float32")
      local norm = math.sqrt(sumsq(xs))
      local t = tf.clip_by_norm(tf.constant(xs, { dtype = dt }), norm * 2 + 1)
      local sess <close> = tf.Session()
      assert_close(xs, sess:run(t):totable(), TOL[dt], "unclipped")
    end)
  end

  it("clips each row separately with axes", function()
    local rows = { { 3.0, 4.0 }, { 0.3, 0.4 }, { 6.0, 8.0 } } -- norms 5, 0.5, 10
    local t = tf.clip_by_norm(tf.constant(rows, { dtype = "float64" }), 2.0, { 2 })
    local sess <close> = tf.Session()
    assert_close({ { 1.2, 1.6 }, { 0.3, 0.4 }, { 1.2, 1.6 } }, sess:run(t):totable(), 1e-12, "rows")
  end)
end)

describe("tf.global_norm", function()
  for _, dt in ipairs(DTYPES) do
    it("is sqrt of the sum of squares over all tensors in " .. dt, function()
      local r = dt == "float32"
      local a, b, c = rand_list(6, -2, 2, r), rand_list(4, -2, 2, r), rand_list(1, -2, 2, r)
      local n = tf.global_norm({ tf.constant(rows_of(a, 3), { dtype = dt }), tf.constant(b, { dtype = dt }),
        tf.constant(c[1], { dtype = dt }) })
      local sess <close> = tf.Session()
      local e = math.sqrt(sumsq(a) + sumsq(b) + sumsq(c))
      assert_close({ e }, { sess:run(n):item() }, TOL[dt], "global norm")
    end)
  end

  it("skips nil entries (list with .n)", function()
    local a, b = rand_list(3, -2, 2), rand_list(3, -2, 2)
    local n = tf.global_norm({ tf.constant(a, { dtype = "float64" }), nil, tf.constant(b, { dtype = "float64" }), n = 3 })
    local sess <close> = tf.Session()
    assert_close({ math.sqrt(sumsq(a) + sumsq(b)) }, { sess:run(n):item() }, 1e-12, "global norm")
  end)
end)

describe("tf.clip_by_global_norm", function()
  for _, dt in ipairs(DTYPES) do
    it("scales every tensor by clip / global_norm when it exceeds, returning the norm, in " .. dt, function()
      local r = dt == "float32"
      local a, b = rand_list(6, -2, 2, r), rand_list(5, -2, 2, r)
      local gn = math.sqrt(sumsq(a) + sumsq(b))
      local clip = r and f32(gn / 3) or gn / 3
      local list, norm = tf.clip_by_global_norm({ tf.constant(rows_of(a, 2), { dtype = dt }),
        tf.constant(b, { dtype = dt }) }, clip)
      assert.is_true(tf.is_tensor(norm))
      local sess <close> = tf.Session()
      local out = sess:run({ list[1], list[2], norm })
      assert.are.same({ 3, 2 }, out[1]:shape())
      assert_close(scaled(a, clip / gn), out[1]:totable(), TOL[dt], "first")
      assert_close(scaled(b, clip / gn), out[2]:totable(), TOL[dt], "second")
      assert_close({ gn }, { out[3]:item() }, TOL[dt], "global norm")
    end)

    it("leaves the tensors unchanged below the clip norm in " .. dt, function()
      local r = dt == "float32"
      local a, b = rand_list(4, -2, 2, r), rand_list(4, -2, 2, r)
      local gn = math.sqrt(sumsq(a) + sumsq(b))
      local list, norm = tf.clip_by_global_norm({ tf.constant(a, { dtype = dt }), tf.constant(b, { dtype = dt }) },
        gn * 2)
      local sess <close> = tf.Session()
      local out = sess:run({ list[1], list[2], norm })
      assert_close(a, out[1]:totable(), TOL[dt], "first")
      assert_close(b, out[2]:totable(), TOL[dt], "second")
      assert_close({ gn }, { out[3]:item() }, TOL[dt], "global norm")
    end)
  end

  it("keeps a nil entry as nil (the list's .n field) and ignores it in the norm", function()
    local a, c = rand_list(3, -2, 2), rand_list(2, -2, 2)
    local input = { tf.constant(a, { dtype = "float64" }), nil, tf.constant(c, { dtype = "float64" }), n = 3 }
    local list, norm = tf.clip_by_global_norm(input, 1.0)
    assert.are.equal(3, list.n)
    assert.is_nil(list[2])
    assert.is_true(tf.is_tensor(list[1]) and tf.is_tensor(list[3]))
    local gn = math.sqrt(sumsq(a) + sumsq(c))
    local k = 1.0 / math.max(gn, 1.0)
    local sess <close> = tf.Session()
    local out = sess:run({ list[1], list[3], norm })
    assert_close(scaled(a, k), out[1]:totable(), 1e-12, "first")
    assert_close(scaled(c, k), out[2]:totable(), 1e-12, "third")
    assert_close({ gn }, { out[3]:item() }, 1e-12, "global norm")
  end)

  it("keeps a trailing nil entry (from tf.gradients) as nil", function()
    local w = tf.Variable({ 3.0, 4.0 }, { name = "w", dtype = "float64" })
    local u = tf.Variable({ 1.0 }, { name = "u", dtype = "float64" })
    local grads = tf.gradients(tf.reduce_sum(w * w), { w, u })
    assert.are.equal(2, grads.n)
    local list, norm = tf.clip_by_global_norm(grads, 5.0)
    assert.are.equal(2, list.n)
    assert.is_nil(list[2])
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local out = sess:run({ list[1], norm })
    -- grad = 2w = {6, 8}, norm 10, scaled by 5/10
    assert_close({ 3.0, 4.0 }, out[1]:totable(), 1e-12, "clipped gradient")
    assert_close({ 10.0 }, { out[2]:item() }, 1e-12, "global norm")
  end)

  it("works with an optimizer: clipped gradients applied by apply_gradients", function()
    local w0 = { 3.0, -4.0 }
    local w = tf.Variable(w0, { name = "w", dtype = "float64" })
    local opt = tf.train.GradientDescentOptimizer(0.1)
    local gvs = opt:compute_gradients(tf.reduce_sum(w * w))
    local clipped = tf.clip_by_global_norm({ gvs[1][1] }, 1.0)
    local train_op = opt:apply_gradients({ { clipped[1], w } })
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    sess:run(train_op)
    -- grad {6, -8}, norm 10 -> {0.6, -0.8}
    assert_close({ 3.0 - 0.06, -4.0 + 0.08 }, sess:run(w):totable(), 1e-12, "w")
  end)
end)
