-- Element-wise math (LUA_API.md "Math"): every op, for the dtypes where it
-- makes sense, checked element by element against plain-Lua float64
-- references on random inputs, plus NumPy broadcasting.
local tf = require("moonflow")
local O = dofile("tests/spec/support/oracle.lua")

math.randomseed(20240601)

local sess = tf.Session()
local function run(t, feeds) return sess:run(t, feeds) end

local SHAPE = { 3, 4 }
local N = O.numel(SHAPE)

-- Random flat values for a dtype.
local function values(dtype, lo, hi)
  if dtype == "float32" then return O.rand_floats(N, lo, hi, true)
  elseif dtype == "float64" then return O.rand_floats(N, lo, hi, false)
  elseif dtype == "bool" then return O.rand_bools(N)
  else return O.rand_ints(N, math.tointeger(lo), math.tointeger(hi)) end
end

local function const(flat, shape, dtype) return tf.constant(O.nest(flat, shape), { dtype = dtype }) end

local function tol(dtype) return O.tol[dtype] or {} end

-- Reference result rounded to the output dtype.
local function to_dtype(x, dtype)
  if dtype == "float32" then return O.f32(x) end
  return x
end

local function check_binary(op, dtype, ref, a, b, opts)
  opts = opts or {}
  local x, y = const(a, SHAPE, dtype), const(b, SHAPE, dtype)
  local out = op(x, y)
  local exp = {}
  for i = 1, N do exp[i] = ref(a[i], b[i]) end
  local out_dtype = opts.out_dtype or dtype
  if out_dtype:match("float") then for i = 1, N do exp[i] = to_dtype(exp[i], out_dtype) end end
  assert.are.equal(out_dtype, out.dtype)
  local t = out_dtype:match("float") and tol(out_dtype) or {}
  O.check(run(out), exp, SHAPE, { dtype = out_dtype, rtol = t.rtol, atol = t.atol,
                                  int = out_dtype:match("int") and true or nil })
end

local function check_unary(op, dtype, ref, a)
  local out = op(const(a, SHAPE, dtype))
  local exp = {}
  for i = 1, N do exp[i] = to_dtype(ref(a[i]), dtype) end
  local t = dtype:match("float") and tol(dtype) or {}
  O.check(run(out), exp, SHAPE, { dtype = dtype, rtol = t.rtol, atol = t.atol })
end

local FLOATS = { "float32", "float64" }
local INTS = { "int32", "int64" }
local NUMERIC = { "float32", "float64", "int32", "int64" }

local function nonzero(t, dtype)
  for i, v in ipairs(t) do
    if v == 0 or (dtype:match("float") and math.abs(v) < 0.5) then t[i] = dtype:match("float") and 1.5 or 3 end
  end
  return t
end

local function floor_div(a, b) return a // b end
local function floor_mod(a, b) return a % b end

describe("math: add, sub, mul", function()
  for _, dt in ipairs(NUMERIC) do
    local lo, hi = -100, 100
    it("tf.add adds " .. dt .. " element-wise", function()
      check_binary(tf.add, dt, function(p, q) return p + q end, values(dt, lo, hi), values(dt, lo, hi))
    end)
    it("tf.sub and tf.subtract subtract " .. dt .. " element-wise", function()
      local a, b = values(dt, lo, hi), values(dt, lo, hi)
      check_binary(tf.sub, dt, function(p, q) return p - q end, a, b)
      check_binary(tf.subtract, dt, function(p, q) return p - q end, a, b)
    end)
    it("tf.mul and tf.multiply multiply " .. dt .. " element-wise", function()
      local a, b = values(dt, lo, hi), values(dt, lo, hi)
      check_binary(tf.mul, dt, function(p, q) return p * q end, a, b)
      check_binary(tf.multiply, dt, function(p, q) return p * q end, a, b)
    end)
  end

  it("int64 arithmetic keeps 64 bits", function()
    local a = { 1 << 40, -(1 << 41) + 3, (1 << 62) - 1 }
    local b = { (1 << 40) + 7, 5, -1 }
    local x, y = tf.constant(a, { dtype = "int64" }), tf.constant(b, { dtype = "int64" })
    O.check(run(tf.add(x, y)), { a[1] + b[1], a[2] + b[2], a[3] + b[3] }, { 3 }, { dtype = "int64" })
    O.check(run(tf.mul(x, tf.constant({ 4, 3, 2 }, { dtype = "int64" }))),
      { a[1] * 4, a[2] * 3, a[3] * 2 }, { 3 }, { dtype = "int64" })
  end)

  it("int32 arithmetic wraps around like a 32-bit integer", function()
    local x = tf.constant({ 2147483647, -2147483648 })
    O.check(run(tf.add(x, 1)), { -2147483648, -2147483647 }, { 2 }, { dtype = "int32" })
  end)

  it("tf.add_n sums a list of tensors element-wise, and refuses mixed dtypes or an empty list", function()
    local a, b, c = values("float64", -10, 10), values("float64", -10, 10), values("float64", -10, 10)
    local want = {}
    for i = 1, #a do want[i] = a[i] + b[i] + c[i] end
    local f64 = { dtype = "float64" }
    O.check(run(tf.add_n({ tf.constant(a, f64), tf.constant(b, f64), tf.constant(c, f64) })), want, { #a },
      { dtype = "float64" })
    local ok, err = pcall(tf.add_n, { tf.constant({ 1 }), tf.constant({ 1.5 }) })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("AddN", 1, true), tostring(err))
    assert.is_false((pcall(tf.add_n, {})))
  end)
end)

describe("math: div and mod", function()
  for _, dt in ipairs(FLOATS) do
    it("tf.div and tf.divide divide " .. dt .. " element-wise", function()
      local a, b = values(dt, -100, 100), nonzero(values(dt, -10, 10), dt)
      check_binary(tf.div, dt, function(p, q) return p / q end, a, b)
      check_binary(tf.divide, dt, function(p, q) return p / q end, a, b)
    end)
    it("tf.mod is floor modulo on " .. dt .. " (sign of the divisor, like Lua %)", function()
      local a, b = values(dt, -100, 100), nonzero(values(dt, -10, 10), dt)
      check_binary(tf.mod, dt, floor_mod, a, b)
    end)
    it(dt .. " division by zero gives inf / nan, not an error", function()
      local x = tf.constant({ 1.0, -1.0, 0.0 }, { dtype = dt })
      local r = run(tf.div(x, tf.constant({ 0.0, 0.0, 0.0 }, { dtype = dt }))):totable()
      assert.are.equal(math.huge, r[1])
      assert.are.equal(-math.huge, r[2])
      assert.is_true(r[3] ~= r[3])
    end)
  end

  for _, dt in ipairs(INTS) do
    it("tf.div on " .. dt .. " is floor division (like Lua //)", function()
      local a, b = values(dt, -100, 100), nonzero(values(dt, -10, 10), dt)
      check_binary(tf.div, dt, floor_div, a, b)
    end)
    it("tf.divide on " .. dt .. " is true division into float64 (TF truediv, like Lua /)", function()
      local a, b = values(dt, -100, 100), nonzero(values(dt, -10, 10), dt)
      check_binary(tf.divide, dt, function(p, q) return p / q end, a, b, { out_dtype = "float64" })
    end)
    it("tf.mod on " .. dt .. " is floor modulo (like Lua %)", function()
      local a, b = values(dt, -100, 100), nonzero(values(dt, -10, 10), dt)
      check_binary(tf.mod, dt, floor_mod, a, b)
    end)
    it("hand-worked floor division and modulo on " .. dt, function()
      local a = tf.constant({ 7, -7, 7, -7, 6, -6 }, { dtype = dt })
      local b = tf.constant({ 2, 2, -2, -2, 3, 3 }, { dtype = dt })
      O.check(run(tf.div(a, b)), { 3, -4, -4, 3, 2, -2 }, { 6 }, { dtype = dt })
      O.check(run(tf.mod(a, b)), { 1, 1, -1, -1, 0, 0 }, { 6 }, { dtype = dt })
    end)
    it(dt .. " division by zero is a run-time error naming the operation", function()
      local d = tf.div(tf.constant({ 4, 5 }, { dtype = dt }), tf.constant({ 1, 0 }, { dtype = dt }))
      local msg = O.err(function() return run(d) end)
      assert.matches("Div", msg, 1, true)
      assert.matches(d.op.name, msg, 1, true)
      local m = tf.mod(tf.constant({ 4, 5 }, { dtype = dt }), tf.constant({ 0, 1 }, { dtype = dt }))
      msg = O.err(function() return run(m) end)
      assert.matches("FloorMod", msg, 1, true)
    end)
  end

  it("on int32 tensors / is true division, // floor division and % floor modulo, as in Lua", function()
    local x = tf.constant({ -7, 7 })
    O.check(run(x / 2), { -3.5, 3.5 }, { 2 }, { dtype = "float64" })
    O.check(run(x // 2), { -4, 3 }, { 2 }, { dtype = "int32" })
    O.check(run(x % 3), { 2, 1 }, { 2 }, { dtype = "int32" })
  end)
end)

describe("math: unary ops", function()
  for _, dt in ipairs(NUMERIC) do
    it("tf.abs on " .. dt, function() check_unary(tf.abs, dt, math.abs, values(dt, -50, 50)) end)
    it("tf.neg and tf.negative on " .. dt, function()
      local a = values(dt, -50, 50)
      check_unary(tf.neg, dt, function(v) return -v end, a)
      check_unary(tf.negative, dt, function(v) return -v end, a)
    end)
    it("tf.sign on " .. dt .. " (0 for 0)", function()
      local a = values(dt, -5, 5)
      a[1], a[2] = 0, 0
      if dt:match("float") then a[1], a[2] = 0.0, -0.0 end
      check_unary(tf.sign, dt, function(v)
        local s = v > 0 and 1 or v < 0 and -1 or 0
        return dt:match("float") and s + 0.0 or s
      end, a)
    end)
    it("tf.square on " .. dt, function() check_unary(tf.square, dt, function(v) return v * v end, values(dt, -50, 50)) end)
  end

  for _, dt in ipairs(FLOATS) do
    it("tf.inv and tf.reciprocal on " .. dt, function()
      local a = nonzero(values(dt, -10, 10), dt)
      check_unary(tf.inv, dt, function(v) return 1 / v end, a)
      check_unary(tf.reciprocal, dt, function(v) return 1 / v end, a)
    end)
    it("tf.round on " .. dt .. " rounds half to even", function()
      local a = values(dt, -20, 20)
      local halves = { 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, -3.5 }
      for i, h in ipairs(halves) do a[i] = h end
      check_unary(tf.round, dt, O.round_half_even, a)
      -- hand-worked
      O.check(run(tf.round(tf.constant({ 0.5, 1.5, 2.5, -2.5, 2.4, 2.6 }, { dtype = dt }))),
        { 0.0, 2.0, 2.0, -2.0, 2.0, 3.0 }, { 6 }, { dtype = dt })
    end)
    it("tf.sqrt on " .. dt, function() check_unary(tf.sqrt, dt, math.sqrt, values(dt, 0, 100)) end)
    it("tf.exp on " .. dt, function() check_unary(tf.exp, dt, math.exp, values(dt, -10, 10)) end)
    it("tf.log on " .. dt, function() check_unary(tf.log, dt, math.log, values(dt, 0.01, 100)) end)
    it("tf.cos on " .. dt, function() check_unary(tf.cos, dt, math.cos, values(dt, -10, 10)) end)
    it("tf.sin on " .. dt, function() check_unary(tf.sin, dt, math.sin, values(dt, -10, 10)) end)
    it("tf.tanh on " .. dt, function()
      check_unary(tf.tanh, dt, function(v)
        local e = math.exp(2 * v)
        return (e - 1) / (e + 1)
      end, values(dt, -10, 10))
    end)
    it("tf.sigmoid on " .. dt, function()
      check_unary(tf.sigmoid, dt, function(v) return 1 / (1 + math.exp(-v)) end, values(dt, -10, 10))
    end)
    it("tf.log and tf.sqrt follow IEEE at the edges on " .. dt, function()
      local r = run(tf.log(tf.constant({ 0.0, -1.0 }, { dtype = dt }))):totable()
      assert.are.equal(-math.huge, r[1])
      assert.is_true(r[2] ~= r[2])
      local s = run(tf.sqrt(tf.constant({ -1.0 }, { dtype = dt }))):totable()
      assert.is_true(s[1] ~= s[1])
    end)
  end

  it("float-only ops reject integer tensors at construction", function()
    for _, f in ipairs({ "sqrt", "exp", "log", "cos", "sin", "tanh", "sigmoid", "inv" }) do
      local msg = O.err(function() return tf[f](tf.constant({ 1, 2 })) end)
      assert.matches("int32", msg, 1, true)
    end
  end)
end)

describe("math: pow, maximum, minimum", function()
  for _, dt in ipairs(FLOATS) do
    it("tf.pow on " .. dt, function()
      check_binary(tf.pow, dt, function(p, q) return p ^ q end, values(dt, 0.1, 5), values(dt, -3, 3))
    end)
  end
  for _, dt in ipairs(INTS) do
    it("tf.pow on " .. dt .. " is exact integer power", function()
      check_binary(tf.pow, dt, function(p, q)
        local r = 1
        for _ = 1, q do r = r * p end
        return r
      end, values(dt, -6, 6), values(dt, 0, 7))
    end)
  end
  for _, dt in ipairs(NUMERIC) do
    it("tf.maximum on " .. dt, function()
      check_binary(tf.maximum, dt, math.max, values(dt, -50, 50), values(dt, -50, 50))
    end)
    it("tf.minimum on " .. dt, function()
      check_binary(tf.minimum, dt, math.min, values(dt, -50, 50), values(dt, -50, 50))
    end)
  end
  it("the ^ operator is tf.pow", function()
    O.check(run(tf.constant({ 2.0, 3.0 }) ^ 2), { 4.0, 9.0 }, { 2 }, { dtype = "float32" })
  end)
end)

describe("math: comparisons", function()
  local cmps = {
    equal = function(p, q) return p == q end,
    not_equal = function(p, q) return p ~= q end,
    less = function(p, q) return p < q end,
    less_equal = function(p, q) return p <= q end,
    greater = function(p, q) return p > q end,
    greater_equal = function(p, q) return p >= q end,
  }
  for _, dt in ipairs(NUMERIC) do
    for name, ref in pairs(cmps) do
      it("tf." .. name .. " on " .. dt .. " gives bool", function()
        local a, b = values(dt, -5, 5), values(dt, -5, 5)
        for i = 1, N, 3 do b[i] = a[i] end -- ties
        check_binary(tf[name], dt, ref, a, b, { out_dtype = "bool" })
      end)
    end
  end
  it("tf.equal on bool tensors", function()
    local a, b = values("bool"), values("bool")
    check_binary(tf.equal, "bool", function(p, q) return p == q end, a, b, { out_dtype = "bool" })
  end)
end)

describe("math: logical ops", function()
  it("tf.logical_and", function()
    check_binary(tf.logical_and, "bool", function(p, q) return p and q end, values("bool"), values("bool"))
  end)
  it("tf.logical_or", function()
    check_binary(tf.logical_or, "bool", function(p, q) return p or q end, values("bool"), values("bool"))
  end)
  it("tf.logical_not", function()
    local a = values("bool")
    local out = run(tf.logical_not(const(a, SHAPE, "bool")))
    local exp = {}
    for i = 1, N do exp[i] = not a[i] end
    O.check(out, exp, SHAPE, { dtype = "bool" })
  end)
  it("hand-worked truth tables", function()
    local p = tf.constant({ true, true, false, false })
    local q = tf.constant({ true, false, true, false })
    O.check(run(tf.logical_and(p, q)), { true, false, false, false }, { 4 }, { dtype = "bool" })
    O.check(run(tf.logical_or(p, q)), { true, true, true, false }, { 4 }, { dtype = "bool" })
    O.check(run(tf.logical_not(q)), { false, true, false, true }, { 4 }, { dtype = "bool" })
  end)
  it("logical ops reject non-bool tensors at construction", function()
    O.err(function() return tf.logical_and(tf.constant({ 1, 0 }), tf.constant({ 1, 1 })) end)
    O.err(function() return tf.logical_not(tf.constant({ 1.0 })) end)
  end)
end)

describe("math: where", function()
  for _, dt in ipairs(NUMERIC) do
    it("tf.where picks from x where cond is true, else from y (" .. dt .. ")", function()
      local c, a, b = values("bool"), values(dt, -9, 9), values(dt, -9, 9)
      local out = tf.where(const(c, SHAPE, "bool"), const(a, SHAPE, dt), const(b, SHAPE, dt))
      local exp = {}
      for i = 1, N do exp[i] = c[i] and a[i] or b[i] end
      O.check(run(out), exp, SHAPE, { dtype = dt })
    end)
  end
  it("tf.where takes a condition computed by a comparison", function()
    local x = tf.constant({ -2.0, 3.0, -1.0, 4.0 })
    O.check(run(tf.where(tf.less(x, 0), tf.neg(x), tf.square(x))), { 2.0, 9.0, 1.0, 16.0 }, { 4 },
      { dtype = "float32" })
  end)
  it("tf.where broadcasts a {1, n} condition over rows", function()
    local out = tf.where(tf.constant({ { true, false, true } }),
      tf.constant({ { 1, 2, 3 }, { 4, 5, 6 } }), tf.constant({ { 7, 8, 9 }, { 10, 11, 12 } }))
    O.check(run(out), { 1, 8, 3, 4, 11, 6 }, { 2, 3 }, { dtype = "int32" })
  end)
  it("tf.where rejects x and y of different dtypes", function()
    O.err(function()
      return tf.where(tf.constant({ true }), tf.constant({ 1.0 }), tf.constant({ 1.0 }, { dtype = "float64" }))
    end)
  end)
end)

describe("math: cast", function()
  local ALL = { "float32", "float64", "int32", "int64", "bool", "uint8" }
  local src = {
    float32 = { 1.75, -1.75, 0.0, 2.5, -0.25, 100.0, 254.75, 1e6 },
    float64 = { 1.75, -1.75, 0.0, 2.5, -0.25, 100.0, 254.75, 1e6 + 0.5 },
    int32 = { 1, -1, 0, 7, -300, 300, 2147483647, -2147483648 },
    int64 = { 1, -1, 0, (1 << 40) + 5, -300, 300, (1 << 33) + 17, -(1 << 35) },
    bool = { true, false, true, false },
    uint8 = { 0, 1, 255, 128, 7 },
  }
  local function trunc(x) return x >= 0 and math.floor(x) or math.ceil(x) end
  local function num(x) if type(x) == "boolean" then return x and 1 or 0 end return x end
  local function ref(x, from, to)
    local isf = from:match("float")
    if to == "bool" then return num(x) ~= 0 end
    if to == "float32" then return O.f32(num(x) + 0.0) end
    if to == "float64" then return num(x) + 0.0 end
    local v = isf and math.tointeger(trunc(x)) or num(x)
    if to == "int32" then return O.wrap32(v) end
    if to == "int64" then return v end
    if to == "uint8" then return O.wrap8u(v) end
  end
  for _, from in ipairs(ALL) do
    for _, to in ipairs(ALL) do
      it("tf.cast from " .. from .. " to " .. to, function()
        local vals = {}
        for _, v in ipairs(src[from]) do
          -- float -> narrower integer outside its range is undefined (C, NumPy): skip those values
          local ok = true
          if from:match("float") and to == "uint8" then ok = v >= 0 and v < 256 end
          if from:match("float") and to == "int32" then ok = math.abs(v) < 2 ^ 31 end
          if ok then vals[#vals + 1] = v end
        end
        local x = tf.constant(vals, { dtype = from })
        local y = tf.cast(x, to)
        assert.are.equal(to, y.dtype)
        assert.are.same({ #vals }, y.shape)
        local exp = {}
        for i, v in ipairs(vals) do exp[i] = ref(v, from, to) end
        O.check(run(y), exp, { #vals }, { dtype = to })
      end)
    end
  end
  it("tf.cast of random float64 to float32 rounds to nearest", function()
    local a = O.rand_floats(50, -1e3, 1e3)
    local exp = {}
    for i, v in ipairs(a) do exp[i] = O.f32(v) end
    O.check(run(tf.cast(tf.constant(a, { dtype = "float64" }), "float32")), exp, { 50 }, { dtype = "float32" })
  end)
  it("tf.cast rejects an unknown dtype", function()
    O.err(function() return tf.cast(tf.constant({ 1 }), "float16x") end)
  end)
end)

describe("math: broadcasting", function()
  it("a scalar tensor with a matrix", function()
    local m = O.rand_floats(12, -5, 5, true)
    local s = O.f32(math.random() * 4 - 2)
    local out = tf.mul(tf.constant(s), const(m, { 3, 4 }, "float32"))
    assert.are.same({ 3, 4 }, out.shape)
    local exp = {}
    for i = 1, 12 do exp[i] = O.f32(s * m[i]) end
    O.check(run(out), exp, { 3, 4 }, { dtype = "float32", rtol = 1e-6, atol = 1e-7 })
  end)
  it("a Lua number with a matrix takes the matrix's dtype", function()
    local m = O.rand_floats(6, -5, 5)
    local x = const(m, { 2, 3 }, "float64")
    local out = tf.sub(2, x)
    assert.are.equal("float64", out.dtype)
    local exp = {}
    for i = 1, 6 do exp[i] = 2 - m[i] end
    O.check(run(out), exp, { 2, 3 }, { dtype = "float64", rtol = 1e-15, atol = 0 })
  end)
  it("a row {1, n} with a column {m, 1} gives {m, n}", function()
    local r, c = O.rand_ints(5, -20, 20), O.rand_ints(3, -20, 20)
    local out = tf.sub(const(r, { 1, 5 }, "int32"), const(c, { 3, 1 }, "int32"))
    assert.are.same({ 3, 5 }, out.shape)
    local exp = O.bmap(function(p, q) return p - q end, { r, { 1, 5 } }, { c, { 3, 1 } })
    O.check(run(out), exp, { 3, 5 }, { dtype = "int32" })
  end)
  it("rank 3 against rank 1", function()
    local a, b = O.rand_floats(24, -3, 3), O.rand_floats(4, -3, 3)
    local out = tf.add(const(a, { 2, 3, 4 }, "float64"), const(b, { 4 }, "float64"))
    assert.are.same({ 2, 3, 4 }, out.shape)
    local exp = O.bmap(function(p, q) return p + q end, { a, { 2, 3, 4 } }, { b, { 4 } })
    O.check(run(out), exp, { 2, 3, 4 }, { dtype = "float64", rtol = 1e-15, atol = 1e-15 })
  end)
  it("rank 1 against rank 3 (the lower-rank operand first)", function()
    local a, b = O.rand_floats(4, -3, 3), O.rand_floats(24, -3, 3)
    local out = tf.sub(const(a, { 4 }, "float64"), const(b, { 2, 3, 4 }, "float64"))
    assert.are.same({ 2, 3, 4 }, out.shape)
    local exp = O.bmap(function(p, q) return p - q end, { a, { 4 } }, { b, { 2, 3, 4 } })
    O.check(run(out), exp, { 2, 3, 4 }, { dtype = "float64", rtol = 1e-15, atol = 1e-15 })
  end)
  it("{3, 1, 4} against {2, 1} gives {3, 2, 4}", function()
    local a, b = O.rand_ints(12, -9, 9), O.rand_ints(2, -9, 9)
    local out = tf.maximum(const(a, { 3, 1, 4 }, "int64"), const(b, { 2, 1 }, "int64"))
    assert.are.same({ 3, 2, 4 }, out.shape)
    local exp = O.bmap(math.max, { a, { 3, 1, 4 } }, { b, { 2, 1 } })
    O.check(run(out), exp, { 3, 2, 4 }, { dtype = "int64" })
  end)
  it("comparisons broadcast too", function()
    local a, b = O.rand_ints(4, -3, 3), O.rand_ints(3, -3, 3)
    local out = tf.less_equal(const(a, { 4, 1 }, "int32"), const(b, { 3 }, "int32"))
    local exp = O.bmap(function(p, q) return p <= q end, { a, { 4, 1 } }, { b, { 3 } })
    O.check(run(out), exp, { 4, 3 }, { dtype = "bool" })
  end)
  it("broadcasting with a placeholder of unknown leading dimension", function()
    local p = tf.placeholder("float32", { -1, 3 })
    local out = tf.add(p, tf.constant({ 1.0, 2.0, 3.0 }))
    assert.are.same({ -1, 3 }, out.shape)
    O.check(run(out, { [p] = { { 0.5, 0.5, 0.5 }, { 1.0, 1.0, 1.0 } } }),
      { 1.5, 2.5, 3.5, 2.0, 3.0, 4.0 }, { 2, 3 }, { dtype = "float32" })
  end)
  it("incompatible shapes are an error at construction naming the op", function()
    local ok, msg = pcall(tf.add, tf.constant({ { 1, 2, 3 }, { 4, 5, 6 } }), tf.constant({ 1, 2, 3, 4 }))
    assert.is_false(ok)
    msg = tostring(msg)
    assert.matches("Add", msg, 1, true)
    assert.matches("math_spec.lua", msg, 1, true)
    O.err(function() return tf.mul(tf.zeros({ 2, 3 }), tf.zeros({ 3, 2 })) end)
  end)
  it("two tensors of different dtypes are an error, never a silent cast", function()
    O.err(function() return tf.add(tf.constant({ 1.0 }), tf.constant({ 1.0 }, { dtype = "float64" })) end)
    O.err(function() return tf.add(tf.constant({ 1 }), tf.constant({ 1 }, { dtype = "int64" })) end)
  end)
end)

describe("math: casts out of an integer type's range", function()
  it("saturate, and NaN becomes 0", function()
    local x = tf.constant({ 3.7e10, -3.7e10, 0 / 0, 2.9, -2.9 }, { dtype = "float64" })
    local r = tf.Session():run(tf.cast(x, "int32")):totable()
    assert.are.same({ 2147483647, -2147483648, 0, 2, -2 }, r)
    local u = tf.Session():run(tf.cast(tf.constant({ 300.0, -5.0 }), "uint8")):totable()
    assert.are.same({ 255, 0 }, u)
  end)
end)
