-- tf.variable_scope, tf.get_variable, the initializers and tf.layers.dense.
-- Expected values are computed here in plain Lua (statistics from the
-- defining formulas, matrix products by hand), never by moonflow.
local tf = require("moonflow")

math.randomseed(9090)

local function f32(x) return (string.unpack("<f", string.pack("<f", x))) end

local function rand_matrix(rows, cols, lo, hi)
  local m = {}
  for i = 1, rows do
    m[i] = {}
    for j = 1, cols do m[i][j] = f32(lo + (hi - lo) * math.random()) end
  end
  return m
end

-- pcall f, assert that it failed, return the message as a string
local function err_of(f)
  local ok, e = pcall(f)
  assert.is_false(ok, "expected an error")
  return tostring(e)
end

local function contains(s, part)
  return s:find(part, 1, true) ~= nil
end

local function assert_contains(s, part)
  assert.is_true(contains(s, part), string.format("expected %q in the message: %s", part, s))
end

local function names_of(vars)
  local r = {}
  for i, v in ipairs(vars) do r[i] = v.name end
  return r
end

local function has_name(vars, name)
  for _, v in ipairs(vars) do if v.name == name then return true end end
  return false
end

-- all elements of an Array as a flat Lua list
local function flat(a)
  local r = {}
  for i = 1, a:numel() do r[i] = a:flat(i) end
  return r
end

local function mean_var(xs)
  local n, s = #xs, 0.0
  for i = 1, n do s = s + xs[i] end
  local mean = s / n
  local ss = 0.0
  for i = 1, n do ss = ss + (xs[i] - mean) ^ 2 end
  return mean, ss / (n - 1)
end

local function close(a, b, tol) return math.abs(a - b) <= tol end

local function assert_close(expected, actual, tol, what)
  assert.is_true(close(expected, actual, tol),
    string.format("%s: expected %.8g, got %.8g (tol %g)", what or "value", expected, actual, tol))
end

-- value of a variable after running the global initializer in a fresh session
local function init_value(v)
  local sess <close> = tf.Session()
  sess:run(tf.global_variables_initializer())
  return sess:run(v)
end

before_each(function() tf.reset_default_graph() end)

describe("tf.variable_scope", function()
  it("prefixes get_variable names, nested, in the callback form", function()
    local w
    tf.variable_scope("a", function()
      tf.variable_scope("b", function()
        w = tf.get_variable("w", { 2, 3 })
      end)
    end)
    assert.are.equal("a/b/w:0", w.name)
    assert.are.same({ 2, 3 }, w.shape)
    assert.are.equal("float32", w.dtype)
  end)

  it("returns the callback's results", function()
    local x, y = tf.variable_scope("a", function() return 1, "two" end)
    assert.are.equal(1, x)
    assert.are.equal("two", y)
  end)

  it("prefixes get_variable names, nested, in the <close> form, and pops at the end of the block", function()
    local w
    do
      local _ <close> = tf.variable_scope("a")
      do
        local _ <close> = tf.variable_scope("b")
        assert.are.equal("a/b", tf.get_variable_scope().name)
        w = tf.get_variable("w", { 3 })
      end
      assert.are.equal("a", tf.get_variable_scope().name)
      assert.are.equal("a/v:0", tf.get_variable("v", { 1 }).name)
    end
    assert.are.equal("", tf.get_variable_scope().name)
    assert.are.equal("a/b/w:0", w.name)
    assert.are.equal("top:0", tf.get_variable("top", { 1 }).name)
  end)

  it("pops the scope when the callback raises", function()
    assert.has_error(function()
      tf.variable_scope("broken", function() error("boom") end)
    end)
    assert.are.equal("", tf.get_variable_scope().name)
    assert.are.equal("w:0", tf.get_variable("w", { 1 }).name)
  end)

  it("opens a name scope of the same name for ops created inside", function()
    local m, n
    tf.variable_scope("a", function()
      local w = tf.get_variable("w", { 2 })
      m = w * 2.0
      tf.variable_scope("b", function() n = w + 1.0 end)
    end)
    assert.are.equal("a/Mul", m.op.name)
    assert.are.equal("a/Mul:0", m.name)
    assert.are.equal("a/b/Add", n.op.name)
  end)

  it("uniquifies the name scope of ops, but not variable names, when a scope is re-entered", function()
    local w1, w2, m
    tf.variable_scope("a", function() w1 = tf.get_variable("w", { 2 }) end)
    tf.variable_scope("a", { reuse = true }, function()
      w2 = tf.get_variable("w", { 2 })
      m = w2 * 3.0
    end)
    assert.are.equal(w1, w2)
    assert.are.equal("a/w:0", w2.name)
    assert.are.equal("a_1/Mul", m.op.name) -- as TensorFlow 1.x names it
  end)

  it("is not affected by tf.name_scope (get_variable ignores name scopes)", function()
    local w, m
    tf.name_scope("ns", function()
      w = tf.get_variable("w", { 2 })
      m = w * 2.0
    end)
    assert.are.equal("w:0", w.name)
    assert.are.equal("ns/Mul", m.op.name)
  end)

  it("returns the same Variable object on re-entry with reuse = true", function()
    local w1, w2
    tf.variable_scope("layer", function() w1 = tf.get_variable("w", { 4, 2 }) end)
    tf.variable_scope("layer", { reuse = true }, function() w2 = tf.get_variable("w", { 4, 2 }) end)
    assert.are.equal(w1, w2)
    assert.is_true(rawequal(w1, w2))
    assert.are.equal(1, #tf.global_variables())
  end)

  it("shares with reuse = true in the <close> form too, and without restating the shape", function()
    local w1 = tf.variable_scope("s", function() return tf.get_variable("w", { 3 }) end)
    local _ <close> = tf.variable_scope("s", { reuse = true })
    local w2 = tf.get_variable("w")
    assert.is_true(rawequal(w1, w2))
  end)

  it("passes reuse = true on to nested scopes", function()
    local w1, w2
    tf.variable_scope("outer", function()
      tf.variable_scope("inner", function() w1 = tf.get_variable("w", { 2 }) end)
    end)
    tf.variable_scope("outer", { reuse = true }, function()
      tf.variable_scope("inner", function() w2 = tf.get_variable("w", { 2 }) end)
    end)
    assert.is_true(rawequal(w1, w2))
    -- reuse = false inside a reusing scope does not turn reuse off (TensorFlow 1.x)
    local w3
    tf.variable_scope("outer", { reuse = true }, function()
      tf.variable_scope("inner", { reuse = false }, function() w3 = tf.get_variable("w", { 2 }) end)
    end)
    assert.is_true(rawequal(w1, w3))
    assert.are.equal(1, #tf.global_variables())
  end)

  it("reports reuse on tf.get_variable_scope()", function()
    tf.variable_scope("a", { reuse = true }, function()
      assert.are.equal(true, tf.get_variable_scope().reuse)
      tf.variable_scope("b", function()
        assert.are.equal(true, tf.get_variable_scope().reuse)
        assert.are.equal("a/b", tf.get_variable_scope().name)
      end)
    end)
  end)

  it("creates then reuses with tf.AUTO_REUSE", function()
    local function build()
      return tf.variable_scope("auto", { reuse = tf.AUTO_REUSE }, function()
        return tf.get_variable("w", { 2, 2 })
      end)
    end
    local w1 = build()
    local w2 = build()
    assert.is_true(rawequal(w1, w2))
    assert.are.equal("auto/w:0", w1.name)
    assert.are.equal(1, #tf.global_variables())
    -- inherited by a nested scope: two calls in the same scope share
    local a, b = tf.variable_scope("auto", { reuse = tf.AUTO_REUSE }, function()
      return tf.variable_scope("in", function()
        return tf.get_variable("v", { 1 }), tf.get_variable("v", { 1 })
      end)
    end)
    assert.is_true(rawequal(a, b))
    assert.are.equal("auto/in/v:0", a.name)
    assert.are.equal(2, #tf.global_variables())
  end)

  describe("errors", function()
    it("refuses to create an existing variable at the top level without reuse", function()
      tf.get_variable("w", { 2 })
      local msg = err_of(function() tf.get_variable("w", { 2 }) end)
      assert_contains(msg, "already exists")
      assert_contains(msg, "w")
    end)

    it("refuses to create an existing variable when a scope is re-entered without reuse", function()
      tf.variable_scope("a", function() tf.get_variable("w", { 2 }) end)
      local msg = err_of(function()
        tf.variable_scope("a", function() tf.get_variable("w", { 2 }) end)
      end)
      assert_contains(msg, "already exists")
      assert_contains(msg, "a/w")
      assert.are.equal(1, #tf.global_variables())
    end)

    it("refuses to create the same variable twice inside one scope without reuse", function()
      local msg = err_of(function()
        tf.variable_scope("a", function()
          tf.get_variable("w", { 2 })
          tf.get_variable("w", { 2 })
        end)
      end)
      assert_contains(msg, "already exists")
      assert_contains(msg, "a/w")
    end)

    it("refuses accidental sharing in the <close> form and in nested scopes", function()
      tf.variable_scope("a", function()
        tf.variable_scope("b", function() tf.get_variable("w", { 2 }) end)
      end)
      local msg = err_of(function()
        local _ <close> = tf.variable_scope("a")
        local _ <close> = tf.variable_scope("b")
        tf.get_variable("w", { 2 })
      end)
      assert_contains(msg, "already exists")
      assert_contains(msg, "a/b/w")
      assert.are.equal("", tf.get_variable_scope().name)
    end)

    it("refuses reuse = true for a variable that does not exist", function()
      local msg = err_of(function()
        tf.variable_scope("a", { reuse = true }, function() tf.get_variable("missing", { 2 }) end)
      end)
      assert_contains(msg, "does not exist")
      assert_contains(msg, "a/missing")
      assert.are.equal(0, #tf.global_variables())
      assert.are.equal("", tf.get_variable_scope().name)
    end)

    it("refuses to share a variable with a different shape", function()
      tf.variable_scope("s", function() tf.get_variable("w", { 2, 3 }) end)
      local msg = err_of(function()
        tf.variable_scope("s", { reuse = true }, function() tf.get_variable("w", { 3, 2 }) end)
      end)
      assert_contains(msg, "s/w")
      assert_contains(msg, "shape")
      msg = err_of(function()
        tf.variable_scope("s", { reuse = tf.AUTO_REUSE }, function() tf.get_variable("w", { 2, 3, 1 }) end)
      end)
      assert_contains(msg, "s/w")
    end)

    it("refuses to share a variable with a different dtype", function()
      tf.variable_scope("s", function() tf.get_variable("w", { 2 }) end)
      local msg = err_of(function()
        tf.variable_scope("s", { reuse = true }, function() tf.get_variable("w", { 2 }, { dtype = "float64" }) end)
      end)
      assert_contains(msg, "s/w")
    end)

    it("refuses an empty or missing scope name", function()
      assert.has_error(function() tf.variable_scope("", function() end) end)
      assert.has_error(function() tf.variable_scope(nil, function() end) end)
    end)
  end)

  describe("initializer option", function()
    it("is used by get_variable inside the scope", function()
      local w = tf.variable_scope("a", { initializer = tf.constant_initializer(0.75) }, function()
        return tf.get_variable("w", { 2, 3 })
      end)
      assert.are.same({ { 0.75, 0.75, 0.75 }, { 0.75, 0.75, 0.75 } }, init_value(w):totable())
    end)

    it("is inherited by nested scopes, and a nested scope can override it", function()
      local w, v
      tf.variable_scope("a", { initializer = tf.constant_initializer(3.0) }, function()
        tf.variable_scope("b", function() w = tf.get_variable("w", { 2 }) end)
        tf.variable_scope("c", { initializer = tf.constant_initializer(-1.0) }, function()
          v = tf.get_variable("v", { 2 })
        end)
      end)
      local sess <close> = tf.Session()
      sess:run(tf.global_variables_initializer())
      assert.are.same({ 3.0, 3.0 }, sess:run(w):totable())
      assert.are.same({ -1.0, -1.0 }, sess:run(v):totable())
    end)

    it("is overridden by get_variable's own initializer", function()
      local w = tf.variable_scope("a", { initializer = tf.constant_initializer(3.0) }, function()
        return tf.get_variable("w", { 2 }, { initializer = tf.zeros_initializer() })
      end)
      assert.are.same({ 0.0, 0.0 }, init_value(w):totable())
    end)

    it("does not leak out of the scope", function()
      tf.variable_scope("a", { initializer = tf.constant_initializer(3.0) }, function() end)
      local w = tf.get_variable("w", { 40, 50 })
      local limit = math.sqrt(6 / 90)
      local saw_other = false
      for _, x in ipairs(flat(init_value(w))) do
        assert.is_true(math.abs(x) <= limit)
        if x ~= 3.0 then saw_other = true end
      end
      assert.is_true(saw_other)
    end)
  end)
end)

describe("tf.get_variable", function()
  it("puts trainable variables in tf.trainable_variables(), and trainable = false ones only in the globals", function()
    local w = tf.get_variable("w", { 2 })
    local step = tf.get_variable("step", {}, { dtype = "int32", trainable = false })
    assert.is_true(has_name(tf.trainable_variables(), "w:0"))
    assert.is_false(has_name(tf.trainable_variables(), "step:0"))
    assert.are.same({ "w:0", "step:0" }, names_of(tf.global_variables()))
    assert.are.same({ "w:0" }, names_of(tf.trainable_variables()))
    assert.is_true(w.trainable)
    assert.is_false(step.trainable)
  end)

  it("takes a dtype option", function()
    local d = tf.get_variable("d", { 2, 2 }, { dtype = "float64" })
    local i = tf.get_variable("i", { 3 }, { dtype = "int32" })
    assert.are.equal("float64", d.dtype)
    assert.are.equal("int32", i.dtype)
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    assert.are.equal("float64", sess:run(d).dtype)
    assert.are.same({ 2, 2 }, sess:run(d):shape())
    -- the default initializer of non-float variables is zeros
    assert.are.same({ 0, 0, 0 }, sess:run(i):totable())
  end)

  it("defaults to float32 and a glorot uniform initializer", function()
    local w = tf.get_variable("w", { 200, 300 })
    assert.are.equal("float32", w.dtype)
    local xs = flat(init_value(w))
    assert.are.equal(60000, #xs)
    local limit = math.sqrt(6 / (200 + 300))
    for _, x in ipairs(xs) do assert.is_true(math.abs(x) <= limit + 1e-7) end
    local mean, var = mean_var(xs)
    assert_close(0.0, mean, 0.01 * limit, "mean")
    assert_close(limit * limit / 3, var, 0.03 * limit * limit / 3, "variance")
  end)

  it("is initialized by the global initializer and by its own initializer op", function()
    local w = tf.get_variable("w", { 2 }, { initializer = tf.constant_initializer(5.0) })
    local sess <close> = tf.Session()
    sess:run(w.initializer)
    assert.are.same({ 5.0, 5.0 }, sess:run(w):totable())
  end)
end)

describe("initializers", function()
  it("tf.zeros_initializer gives zeros", function()
    local w = tf.get_variable("w", { 3, 4 }, { initializer = tf.zeros_initializer() })
    for _, x in ipairs(flat(init_value(w))) do assert.are.equal(0.0, x) end
  end)

  it("tf.constant_initializer fills with a number", function()
    local w = tf.get_variable("w", { 2, 3 }, { initializer = tf.constant_initializer(2.5) })
    local i = tf.get_variable("i", { 3 }, { initializer = tf.constant_initializer(7), dtype = "int32" })
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    assert.are.same({ { 2.5, 2.5, 2.5 }, { 2.5, 2.5, 2.5 } }, sess:run(w):totable())
    assert.are.same({ 7, 7, 7 }, sess:run(i):totable())
    assert.are.equal("int32", sess:run(i).dtype)
  end)

  it("tf.constant_initializer takes a table, flat or nested, laid out row-major", function()
    local a = tf.get_variable("a", { 2, 3 }, { initializer = tf.constant_initializer({ 1, 2, 3, 4, 5, 6 }) })
    local b = tf.get_variable("b", { 2, 3 }, { initializer = tf.constant_initializer({ { 1, 2, 3 }, { 4, 5, 6 } }) })
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    assert.are.same({ { 1, 2, 3 }, { 4, 5, 6 } }, sess:run(a):totable())
    assert.are.same({ { 1, 2, 3 }, { 4, 5, 6 } }, sess:run(b):totable())
  end)

  it("tf.random_normal_initializer has the given mean and stddev", function()
    local w = tf.get_variable("w", { 200, 300 },
      { initializer = tf.random_normal_initializer({ mean = 2.0, stddev = 3.0 }) })
    local mean, var = mean_var(flat(init_value(w)))
    -- standard errors: 3/sqrt(60000) = 0.012 for the mean, about 0.009 for the stddev
    assert_close(2.0, mean, 0.06, "mean")
    assert_close(3.0, math.sqrt(var), 0.05, "stddev")
  end)

  it("tf.random_uniform_initializer stays in [minval, maxval) with the uniform moments", function()
    local lo, hi = -2.0, 5.0
    local w = tf.get_variable("w", { 200, 300 },
      { initializer = tf.random_uniform_initializer({ minval = lo, maxval = hi }) })
    local xs = flat(init_value(w))
    local mn, mx = math.huge, -math.huge
    for _, x in ipairs(xs) do
      assert.is_true(x >= lo and x < hi, "value out of range: " .. x)
      mn, mx = math.min(mn, x), math.max(mx, x)
    end
    -- 60000 draws cover the interval
    assert.is_true(mn < lo + 0.01 and mx > hi - 0.01)
    local mean, var = mean_var(xs)
    assert_close((lo + hi) / 2, mean, 0.05, "mean")
    assert_close((hi - lo) ^ 2 / 12, var, 0.03 * (hi - lo) ^ 2 / 12, "variance")
  end)

  it("tf.truncated_normal_initializer keeps all values within 2 stddev, with the truncated variance", function()
    local sd = 0.5
    local w = tf.get_variable("w", { 200, 300 },
      { initializer = tf.truncated_normal_initializer({ stddev = sd }) })
    local xs = flat(init_value(w))
    local mx = 0
    for _, x in ipairs(xs) do
      assert.is_true(math.abs(x) <= 2 * sd, "value beyond 2 stddev: " .. x)
      mx = math.max(mx, math.abs(x))
    end
    assert.is_true(mx > 1.9 * sd)
    -- variance of N(0, sd^2) truncated to [-2sd, 2sd]: sd^2 (1 - 2*2*phi(2) / Z),
    -- Z = integral of phi over [-2, 2] (Simpson's rule)
    local function phi(t) return math.exp(-t * t / 2) / math.sqrt(2 * math.pi) end
    local n, h, z = 2000, 4 / 2000, 0
    for k = 0, n do
      local wk = (k == 0 or k == n) and 1 or (k % 2 == 1 and 4 or 2)
      z = z + wk * phi(-2 + k * h)
    end
    z = z * h / 3
    local expected_var = sd * sd * (1 - 4 * phi(2) / z)
    local mean, var = mean_var(xs)
    assert_close(0.0, mean, 0.01, "mean")
    assert_close(expected_var, var, 0.03 * expected_var, "variance")
  end)

  it("tf.glorot_uniform_initializer uses limit sqrt(6 / (fan_in + fan_out))", function()
    local w = tf.get_variable("w", { 200, 300 }, { initializer = tf.glorot_uniform_initializer() })
    local xs = flat(init_value(w))
    local limit = math.sqrt(6 / (200 + 300))
    local mx = 0
    for _, x in ipairs(xs) do
      assert.is_true(math.abs(x) <= limit + 1e-7, "value beyond the limit: " .. x)
      mx = math.max(mx, math.abs(x))
    end
    assert.is_true(mx > 0.99 * limit)
    local mean, var = mean_var(xs)
    assert_close(0.0, mean, 0.01 * limit, "mean")
    assert_close(limit * limit / 3, var, 0.03 * limit * limit / 3, "variance")
  end)

  it("tf.glorot_uniform_initializer counts the receptive field for conv kernels", function()
    -- {3, 3, 16, 32}: fan_in = 9*16 = 144, fan_out = 9*32 = 288
    local w = tf.get_variable("w", { 3, 3, 16, 32 }, { initializer = tf.glorot_uniform_initializer() })
    local xs = flat(init_value(w))
    local limit = math.sqrt(6 / (144 + 288))
    local mx = 0
    for _, x in ipairs(xs) do
      assert.is_true(math.abs(x) <= limit + 1e-7)
      mx = math.max(mx, math.abs(x))
    end
    assert.is_true(mx > 0.98 * limit)
  end)

  -- Gram matrix of the columns (Q^T Q) or of the rows (Q Q^T) of a 2-D table
  local function gram(q, of_rows)
    local rows, cols = #q, #q[1]
    local n, len = of_rows and rows or cols, of_rows and cols or rows
    local r = {}
    for i = 1, n do
      r[i] = {}
      for j = 1, n do
        local s = 0.0
        for k = 1, len do
          if of_rows then s = s + q[i][k] * q[j][k] else s = s + q[k][i] * q[k][j] end
        end
        r[i][j] = s
      end
    end
    return r
  end

  local function assert_scaled_identity(m, scale, tol)
    for i = 1, #m do
      for j = 1, #m do
        assert_close(i == j and scale or 0.0, m[i][j], tol, string.format("entry (%d, %d)", i, j))
      end
    end
  end

  it("tf.orthogonal_initializer gives orthonormal columns for a tall matrix (Q^T Q = I)", function()
    local w = tf.get_variable("w", { 6, 4 }, { initializer = tf.orthogonal_initializer() })
    local q = init_value(w)
    assert.are.same({ 6, 4 }, q:shape())
    assert_scaled_identity(gram(q:totable(), false), 1.0, 1e-5)
  end)

  it("tf.orthogonal_initializer gives orthonormal rows for a wide matrix (Q Q^T = I)", function()
    local w = tf.get_variable("w", { 3, 5 }, { initializer = tf.orthogonal_initializer() })
    local q = init_value(w)
    assert.are.same({ 3, 5 }, q:shape())
    assert_scaled_identity(gram(q:totable(), true), 1.0, 1e-5)
  end)

  it("tf.orthogonal_initializer scales by gain", function()
    local a = tf.get_variable("a", { 6, 4 }, { initializer = tf.orthogonal_initializer({ gain = 2.0 }) })
    local b = tf.get_variable("b", { 3, 5 }, { initializer = tf.orthogonal_initializer({ gain = 0.5 }) })
    local c = tf.get_variable("c", { 5, 5 }, { initializer = tf.orthogonal_initializer({ gain = 3.0 }) })
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    assert_scaled_identity(gram(sess:run(a):totable(), false), 4.0, 4e-5)
    assert_scaled_identity(gram(sess:run(b):totable(), true), 0.25, 1e-5)
    local cq = sess:run(c):totable()
    assert_scaled_identity(gram(cq, false), 9.0, 1e-4)
    assert_scaled_identity(gram(cq, true), 9.0, 1e-4)
  end)

  it("tf.orthogonal_initializer is not the identity or a permutation (it is random)", function()
    local w = tf.get_variable("w", { 4, 4 }, { initializer = tf.orthogonal_initializer() })
    local n_small = 0
    for _, x in ipairs(flat(init_value(w))) do
      if math.abs(x) < 1e-6 or math.abs(math.abs(x) - 1) < 1e-6 then n_small = n_small + 1 end
    end
    assert.is_true(n_small < 16)
  end)

  describe("seeds", function()
    local cases = {
      { "random_normal", function(s) return tf.random_normal_initializer({ seed = s }) end },
      { "random_uniform", function(s) return tf.random_uniform_initializer({ seed = s }) end },
      { "truncated_normal", function(s) return tf.truncated_normal_initializer({ seed = s }) end },
      { "glorot_uniform", function(s) return tf.glorot_uniform_initializer({ seed = s }) end },
      { "orthogonal", function(s) return tf.orthogonal_initializer({ seed = s }) end },
    }
    for _, case in ipairs(cases) do
      local name, make = case[1], case[2]
      it(name .. ": the same seed gives the same values in another graph and session, another seed differs", function()
        local function values(seed)
          tf.reset_default_graph()
          local w = tf.get_variable("w", { 5, 4 }, { initializer = make(seed) })
          return init_value(w):totable()
        end
        local a, b, c = values(17), values(17), values(18)
        assert.are.same(a, b)
        assert.are_not.same(a, c)
      end)
    end

    it("the same seed gives the same values for two variables in one graph", function()
      local a = tf.get_variable("a", { 3 }, { initializer = tf.random_normal_initializer({ seed = 5 }) })
      local b = tf.get_variable("b", { 3 }, { initializer = tf.random_normal_initializer({ seed = 5 }) })
      local sess <close> = tf.Session()
      sess:run(tf.global_variables_initializer())
      assert.are.same(sess:run(a):totable(), sess:run(b):totable())
    end)
  end)
end)

describe("tf.layers.dense", function()
  -- x (rows x n) times w (n x m) plus b (m), in doubles
  local function affine(x, w, b)
    local y = {}
    for i = 1, #x do
      y[i] = {}
      for j = 1, #w[1] do
        local s = b and b[j] or 0.0
        for k = 1, #w do s = s + x[i][k] * w[k][j] end
        y[i][j] = s
      end
    end
    return y
  end

  local function assert_matrix_close(expected, actual, tol)
    assert.are.equal(#expected, #actual)
    for i = 1, #expected do
      assert.are.equal(#expected[i], #actual[i])
      for j = 1, #expected[i] do
        local e = expected[i][j]
        assert_close(e, actual[i][j], tol * math.max(1, math.abs(e)), string.format("(%d, %d)", i, j))
      end
    end
  end

  it("has output shape {batch, units} and variables dense/kernel and dense/bias", function()
    local x = tf.placeholder("float32", { 4, 3 })
    local y = tf.layers.dense(x, 5)
    assert.are.same({ 4, 5 }, y.shape)
    assert.are.equal("float32", y.dtype)
    assert.are.same({ "dense/kernel:0", "dense/bias:0" }, names_of(tf.global_variables()))
    assert.are.same({ "dense/kernel:0", "dense/bias:0" }, names_of(tf.trainable_variables()))
    local vars = tf.global_variables()
    assert.are.same({ 3, 5 }, vars[1].shape)
    assert.are.same({ 5 }, vars[2].shape)
  end)

  it("keeps an unknown batch dimension", function()
    local x = tf.placeholder("float32", { -1, 3 })
    local y = tf.layers.dense(x, 2)
    assert.are.same({ -1, 2 }, y.shape)
  end)

  it("names a second unnamed layer dense_1, and a named layer by its name", function()
    local x = tf.placeholder("float32", { 2, 3 })
    local h = tf.layers.dense(x, 4)
    tf.layers.dense(h, 2)
    tf.layers.dense(h, 2, { name = "logits" })
    assert.are.same({
      "dense/kernel:0", "dense/bias:0",
      "dense_1/kernel:0", "dense_1/bias:0",
      "logits/kernel:0", "logits/bias:0",
    }, names_of(tf.global_variables()))
  end)

  it("restarts layer numbering in a new graph", function()
    tf.layers.dense(tf.placeholder("float32", { 2, 3 }), 4)
    tf.reset_default_graph()
    tf.layers.dense(tf.placeholder("float32", { 2, 3 }), 4)
    assert.are.same({ "dense/kernel:0", "dense/bias:0" }, names_of(tf.global_variables()))
  end)

  it("nests its variables in the enclosing variable scope", function()
    local x = tf.placeholder("float32", { 2, 3 })
    tf.variable_scope("model", function() tf.layers.dense(x, 4, { name = "hidden" }) end)
    assert.are.same({ "model/hidden/kernel:0", "model/hidden/bias:0" }, names_of(tf.global_variables()))
  end)

  it("refuses a second layer with the same name (accidental sharing)", function()
    local x = tf.placeholder("float32", { 2, 3 })
    tf.layers.dense(x, 4, { name = "d" })
    local msg = err_of(function() tf.layers.dense(x, 4, { name = "d" }) end)
    assert_contains(msg, "already exists")
    assert_contains(msg, "d/kernel")
  end)

  it("computes x W + b", function()
    local xv = rand_matrix(4, 3, -1, 1)
    local x = tf.placeholder("float32", { 4, 3 })
    local y = tf.layers.dense(x, 5)
    local kernel, bias = tf.global_variables()[1], tf.global_variables()[2]
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    -- the bias starts at zero; give it values so that the sum is tested
    local bv = { 0.5, -1.25, 2.0, 0.0, -0.75 }
    sess:run(bias:assign(bv))
    local r = sess:run({ y = y, w = kernel, b = bias }, { [x] = xv })
    assert.are.same(bv, r.b:totable())
    local w = r.w:totable()
    -- the kernel is glorot uniform: limit sqrt(6 / (3 + 5))
    for i = 1, 3 do for j = 1, 5 do assert.is_true(math.abs(w[i][j]) <= math.sqrt(6 / 8) + 1e-7) end end
    assert.are.same({ 4, 5 }, r.y:shape())
    assert_matrix_close(affine(xv, w, bv), r.y:totable(), 1e-5)
  end)

  it("starts with a zero bias", function()
    local x = tf.placeholder("float32", { 2, 3 })
    tf.layers.dense(x, 4)
    local bias = tf.global_variables()[2]
    assert.are.same({ 0, 0, 0, 0 }, init_value(bias):totable())
  end)

  it("applies the activation", function()
    local xv = rand_matrix(3, 4, -2, 2)
    local x = tf.placeholder("float32", { 3, 4 })
    local y = tf.layers.dense(x, 2, { activation = tf.tanh })
    local kernel, bias = tf.global_variables()[1], tf.global_variables()[2]
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local bv = { 0.3, -0.6 }
    sess:run(bias:assign(bv))
    local r = sess:run({ y = y, w = kernel }, { [x] = xv })
    local expected = affine(xv, r.w:totable(), bv)
    for i = 1, #expected do for j = 1, #expected[i] do expected[i][j] = math.tanh(expected[i][j]) end end
    assert_matrix_close(expected, r.y:totable(), 1e-5)
  end)

  it("with use_bias = false creates no bias and computes x W", function()
    local xv = rand_matrix(2, 3, -1, 1)
    local x = tf.placeholder("float32", { 2, 3 })
    local y = tf.layers.dense(x, 4, { use_bias = false, name = "nobias" })
    assert.are.same({ "nobias/kernel:0" }, names_of(tf.global_variables()))
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local r = sess:run({ y = y, w = tf.global_variables()[1] }, { [x] = xv })
    assert_matrix_close(affine(xv, r.w:totable(), nil), r.y:totable(), 1e-5)
  end)

  it("applies to the last axis of a rank-3 input", function()
    local b, t, n, units = 2, 3, 4, 5
    local xv = {}
    for i = 1, b do xv[i] = rand_matrix(t, n, -1, 1) end
    local x = tf.placeholder("float32", { b, t, n })
    local y = tf.layers.dense(x, units)
    assert.are.same({ b, t, units }, y.shape)
    local kernel, bias = tf.global_variables()[1], tf.global_variables()[2]
    assert.are.same({ n, units }, kernel.shape)
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local bv = { 1, -1, 0.5, -0.5, 0.25 }
    sess:run(bias:assign(bv))
    local r = sess:run({ y = y, w = kernel }, { [x] = xv })
    assert.are.same({ b, t, units }, r.y:shape())
    local yt, w = r.y:totable(), r.w:totable()
    for i = 1, b do
      assert_matrix_close(affine(xv[i], w, bv), yt[i], 1e-5)
    end
  end)

  it("takes the dtype of its input", function()
    local x = tf.placeholder("float64", { 2, 3 })
    local y = tf.layers.dense(x, 2)
    assert.are.equal("float64", y.dtype)
    assert.are.equal("float64", tf.global_variables()[1].dtype)
    assert.are.equal("float64", tf.global_variables()[2].dtype)
  end)
end)
