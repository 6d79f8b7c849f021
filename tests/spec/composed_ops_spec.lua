-- The ops composed from existing op types (math_ops.lua, activations.lua,
-- masks.lua, einsum.lua), the Adadelta and FTRL optimizers and Nesterov
-- momentum (optimizers.lua, train.lua) and the variance-scaling
-- initializers (initializers.lua): values against plain float64 Lua
-- references on random inputs, gradients against float64 central
-- differences.
local tf = require("moonflow")
local N = require("tests.spec.support.numeric")
local numel = N.numel
local nest = N.nest
local flat_of = N.flat_of

math.randomseed(20261202)

before_each(function() tf.reset_default_graph() end)

-- ---------------------------------------------------------------- helpers

local function draw(n, lo, hi, gap)
  local out = {}
  for i = 1, n do
    local v
    repeat v = lo + (hi - lo) * math.random() until not gap or math.abs(v) >= gap
    out[i] = v
  end
  return out
end

-- A float64 constant of shape with random values; returns the tensor and the flat values.
local function rand_const(shape, lo, hi, gap)
  local v = draw(numel(shape), lo or -2, hi or 2, gap)
  return tf.constant(nest(v, shape), { dtype = "float64", shape = shape }), v
end

local function run(t, feeds)
  local sess <close> = tf.Session()
  return sess:run(t, feeds)
end

local function assert_close(expected, got, tol, what)
  assert.are.equal(#expected, #got, (what or "value") .. ": element count")
  for i = 1, #expected do
    local e, g = expected[i], got[i]
    if e ~= g then -- equal infinities pass
      assert(math.abs(e - g) <= tol * math.max(1, math.abs(e)),
             string.format("%s: element %d: expected %.17g, got %.17g", what or "value", i, e, g))
    end
  end
end

-- Row-major strides and the flat index of a 1-based multi-index.
local function strides(shape)
  local s, acc = {}, 1
  for d = #shape, 1, -1 do s[d] = acc; acc = acc * shape[d] end
  return s
end

-- Every multi-index of shape, row-major.
local function each_index(shape, fn)
  local idx = {}
  for d = 1, #shape do idx[d] = 1 end
  local n = numel(shape)
  for _ = 1, n do
    fn(idx)
    for d = #shape, 1, -1 do
      idx[d] = idx[d] + 1
      if idx[d] <= shape[d] then break end
      idx[d] = 1
    end
  end
end

-- Reference reduction over `axes` (1-based list, nil = all) of a flat
-- array of shape: returns flat result (kept dims of size 1 when keep) and its shape.
local function ref_reduce(flat, shape, axes, keep, init, combine, finish)
  local red = {}
  if axes == nil then for d = 1, #shape do red[d] = true end
  else for _, a in ipairs(axes) do red[a < 0 and #shape + a + 1 or a] = true end end
  local oshape, kshape = {}, {}
  for d = 1, #shape do
    kshape[d] = red[d] and 1 or shape[d]
    if not red[d] then oshape[#oshape + 1] = shape[d] end
  end
  local ks, acc = strides(kshape), {}
  local st = strides(shape)
  each_index(shape, function(idx)
    local o, f = 1, 1
    for d = 1, #shape do
      if not red[d] then o = o + (idx[d] - 1) * ks[d] end
      f = f + (idx[d] - 1) * st[d]
    end
    acc[o] = combine(acc[o] == nil and init or acc[o], flat[f])
  end)
  local n = numel(kshape)
  for i = 1, n do acc[i] = finish and finish(acc[i] == nil and init or acc[i], i) or (acc[i] == nil and init or acc[i]) end
  return acc, keep and kshape or oshape
end

-- Symbolic gradients of sum(f(x...) * w) (w random) against float64 central
-- differences; inputs are {shape, lo, hi, gap}.
local function check_gradient(build, specs, tol)
  tf.reset_default_graph()
  local phs, vals = {}, {}
  for i, s in ipairs(specs) do
    phs[i] = tf.placeholder("float64", s[1])
    vals[i] = draw(numel(s[1]), s[2] or -2, s[3] or 2, s[4])
  end
  local y = build(table.unpack(phs))
  local sess <close> = tf.Session()
  local function feeds()
    local f = {}
    for i, s in ipairs(specs) do f[phs[i]] = tf.array(nest(vals[i], s[1]), "float64") end
    return f
  end
  local yshape = sess:run(y, feeds()):shape()
  local w = tf.constant(nest(draw(numel(yshape), -1, 1), yshape), { dtype = "float64", shape = yshape })
  local loss = tf.reduce_sum(y * w)
  local grads = tf.gradients(loss, phs)
  local got = sess:run(grads, feeds())
  local h = 1e-6
  for i = 1, #specs do
    local numeric = {}
    for k = 1, #vals[i] do
      local v0 = vals[i][k]
      vals[i][k] = v0 + h
      local lp = sess:run(loss, feeds()):item()
      vals[i][k] = v0 - h
      local lm = sess:run(loss, feeds()):item()
      vals[i][k] = v0
      numeric[k] = (lp - lm) / (2 * h)
    end
    assert_close(numeric, flat_of(got[i]), tol or 1e-6, "gradient of input " .. i)
  end
end

-- ---------------------------------------------------------------- reductions

describe("logical reductions", function()
  it("reduce_any and reduce_all match a loop over random bools, with axis and keepdims", function()
    local shape = { 3, 4, 5 }
    local v = {}
    for i = 1, numel(shape) do v[i] = math.random() < 0.3 end
    local x = tf.constant(nest(v, shape))
    for _, case in ipairs({ { nil, false }, { { 2 }, false }, { { 1, 3 }, true }, { { -1 }, false } }) do
      local axes, keep = case[1], case[2]
      local any = run(tf.reduce_any(x, axes, { keepdims = keep }))
      local all = run(tf.reduce_all(x, axes, { keepdims = keep }))
      local e_any, shp = ref_reduce(v, shape, axes, keep, false, function(a, b) return a or b end)
      local e_all = ref_reduce(v, shape, axes, keep, true, function(a, b) return a and b end)
      assert.are.same(shp, any:shape())
      assert.are.same(e_any, flat_of(any))
      assert.are.same(e_all, flat_of(all))
    end
  end)

  it("reduce_any / reduce_all of an empty reduction are false / true, as TF", function()
    local x = tf.zeros({ 2, 0 }, "bool")
    assert.are.same({ false, false }, run(tf.reduce_any(x, 2)):totable())
    assert.are.same({ true, true }, run(tf.reduce_all(x, 2)):totable())
  end)

  it("refuse a non-bool input naming the function", function()
    assert.has_error(function() tf.reduce_any(tf.constant({ 1.0 })) end)
    local ok, err = pcall(tf.reduce_all, tf.constant({ 1, 2 }))
    assert.is_false(ok)
    assert.matches("tf.reduce_all", tostring(err))
  end)
end)

describe("tf.reduce_logsumexp", function()
  it("matches log(sum(exp)) computed in float64 over random axes", function()
    local shape = { 3, 4, 2 }
    local x, v = rand_const(shape, -5, 5)
    for _, case in ipairs({ { nil, false }, { { 2 }, false }, { { 1, 3 }, true }, { { -1 }, true } }) do
      local r = run(tf.reduce_logsumexp(x, case[1], { keepdims = case[2] }))
      local s, shp = ref_reduce(v, shape, case[1], case[2], 0, function(a, b) return a + math.exp(b) end)
      for i = 1, #s do s[i] = math.log(s[i]) end
      assert.are.same(shp, r:shape())
      assert_close(s, flat_of(r), 1e-12)
    end
  end)

  it("is stable for large values and keeps -inf rows", function()
    local r = run(tf.reduce_logsumexp(tf.constant({ { 1000.0, 1000.0 }, { -1000.0, -1001.0 } }), 2))
    assert_close({ 1000 + math.log(2), -1000 + math.log(1 + math.exp(-1)) }, flat_of(r), 1e-6)
    local inf = run(tf.reduce_logsumexp(tf.constant({ -math.huge, -math.huge }, { dtype = "float64" })))
    assert.are.equal(-math.huge, inf:item())
  end)

  it("has the softmax as gradient (central differences)", function()
    check_gradient(function(x) return tf.reduce_logsumexp(x, 2) end, { { { 3, 5 } } })
    check_gradient(function(x) return tf.reduce_logsumexp(x, { 1, 3 }, { keepdims = true }) end, { { { 2, 3, 2 } } })
  end)
end)

describe("tf.reduce_prod", function()
  it("matches a product loop and has the product rule as gradient", function()
    local shape = { 3, 4 }
    local x, v = rand_const(shape, -2, 2)
    local r = run(tf.reduce_prod(x, 2))
    local e = ref_reduce(v, shape, { 2 }, false, 1, function(a, b) return a * b end)
    assert_close(e, flat_of(r), 1e-12)
    check_gradient(function(p) return tf.reduce_prod(p, 1) end, { { { 3, 4 }, -2, 2, 0.1 } })
  end)
end)

describe("tf.count_nonzero", function()
  it("counts non-zero numbers and true bools as int64 by default", function()
    local shape = { 4, 5 }
    local v = {}
    for i = 1, numel(shape) do v[i] = math.random() < 0.5 and 0 or math.random(-3, 3) end
    local x = tf.constant(nest(v, shape))
    local r = run(tf.count_nonzero(x, 1))
    assert.are.equal("int64", r.dtype)
    local e = ref_reduce(v, shape, { 1 }, false, 0, function(a, b) return a + (b ~= 0 and 1 or 0) end)
    assert.are.same(e, flat_of(r))
    assert.are.equal(#(function() local t = {} for _, b in ipairs(v) do if b ~= 0 then t[#t + 1] = b end end return t end)(),
                     run(tf.count_nonzero(x)):item())
    local b = run(tf.count_nonzero(tf.not_equal(x, 0), { axis = 2, keepdims = true, dtype = "int32" }))
    assert.are.equal("int32", b.dtype)
    assert.are.same({ 4, 1 }, b:shape())
    assert.are.same(ref_reduce(v, shape, { 2 }, true, 0, function(a, c) return a + (c ~= 0 and 1 or 0) end), flat_of(b))
  end)
end)

-- ---------------------------------------------------------------- element-wise

local function elementwise_case(name, fn, ref, lo, hi, gap, tol)
  it(name .. " matches the float64 reference and central differences", function()
    local shape = { 3, 7 }
    local x, v = rand_const(shape, lo, hi, gap)
    local r = run(fn(x))
    local e = {}
    for i, a in ipairs(v) do e[i] = ref(a) end
    assert_close(e, flat_of(r), tol or 1e-12)
    check_gradient(fn, { { shape, lo, hi, gap } })
  end)
end

describe("element-wise ops", function()
  elementwise_case("tf.rsqrt", tf.rsqrt, function(a) return 1 / math.sqrt(a) end, 0.2, 4)
  elementwise_case("tf.nn.leaky_relu", tf.nn.leaky_relu, function(a) return a > 0 and a or 0.2 * a end, -3, 3, 0.05)
  elementwise_case("tf.nn.leaky_relu (alpha = 0.01)", function(x) return tf.nn.leaky_relu(x, 0.01) end,
                   function(a) return a > 0 and a or 0.01 * a end, -3, 3, 0.05)
  elementwise_case("tf.nn.elu", tf.nn.elu, function(a) return a > 0 and a or math.exp(a) - 1 end, -4, 3, 0.05)
  local alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
  elementwise_case("tf.nn.selu", tf.nn.selu, function(a) return scale * (a > 0 and a or alpha * (math.exp(a) - 1)) end,
                   -4, 3, 0.05)
  elementwise_case("tf.nn.softplus", tf.nn.softplus, function(a) return math.log(1 + math.exp(a)) end, -6, 6)
  elementwise_case("tf.nn.softsign", tf.nn.softsign, function(a) return a / (1 + math.abs(a)) end, -5, 5)

  it("tf.squared_difference matches (x - y)^2 with broadcasting, gradients included", function()
    local x, xv = rand_const({ 3, 4 })
    local y, yv = rand_const({ 4 })
    local r = run(tf.squared_difference(x, y))
    local e = {}
    for i = 1, 12 do e[i] = (xv[i] - yv[(i - 1) % 4 + 1]) ^ 2 end
    assert_close(e, flat_of(r), 1e-12)
    check_gradient(tf.squared_difference, { { { 3, 4 } }, { { 4 } } })
  end)

  it("softplus is finite and exact for large |x|, and its gradient at 0 is 0.5", function()
    local x = tf.constant({ -800.0, 0.0, 800.0 }, { dtype = "float64" })
    local r = flat_of(run(tf.nn.softplus(x)))
    assert_close({ 0, math.log(2), 800 }, r, 1e-15)
    local g = flat_of(run(tf.gradients(tf.reduce_sum(tf.nn.softplus(x)), x)[1]))
    assert_close({ 0, 0.5, 1 }, g, 1e-15)
  end)

  it("elu and selu have finite gradients for large inputs", function()
    local x = tf.constant({ 1000.0, -1000.0 }, { dtype = "float64" })
    for _, f in ipairs({ tf.nn.elu, tf.nn.selu }) do
      local g = flat_of(run(tf.gradients(tf.reduce_sum(f(x)), x)[1]))
      for _, v in ipairs(g) do assert.is_true(v == v and math.abs(v) < math.huge) end
    end
  end)

  it("refuse integer features naming the function", function()
    local ok, err = pcall(tf.nn.elu, tf.constant({ 1, 2 }))
    assert.is_false(ok)
    assert.matches("tf.nn.elu: features", tostring(err))
  end)
end)

describe("tf.nn.bias_add", function()
  it("adds the bias along the last axis (NHWC) and sums its gradient", function()
    local x, xv = rand_const({ 2, 3, 2, 4 })
    local b, bv = rand_const({ 4 })
    local r = run(tf.nn.bias_add(x, b))
    local e = {}
    for i = 1, #xv do e[i] = xv[i] + bv[(i - 1) % 4 + 1] end
    assert_close(e, flat_of(r), 1e-15)
    check_gradient(tf.nn.bias_add, { { { 2, 3, 4 } }, { { 4 } } })
  end)

  it("adds along axis 2 for NCHW", function()
    local x, xv = rand_const({ 2, 3, 2, 2 })
    local b, bv = rand_const({ 3 })
    local r = run(tf.nn.bias_add(x, b, "NCHW"))
    local e = {}
    for i = 1, #xv do e[i] = xv[i] + bv[((i - 1) // 4) % 3 + 1] end
    assert_close(e, flat_of(r), 1e-15)
  end)

  it("refuses a bias of the wrong length or rank", function()
    assert.has_error(function() tf.nn.bias_add(tf.zeros({ 2, 3 }), tf.zeros({ 4 })) end)
    assert.has_error(function() tf.nn.bias_add(tf.zeros({ 2, 3 }), tf.zeros({ 1, 3 })) end)
  end)
end)

describe("tf.nn.l2_normalize", function()
  it("divides by the L2 norm along axis, floored at sqrt(epsilon), with gradients", function()
    local shape = { 3, 4 }
    local x, v = rand_const(shape)
    for _, axes in ipairs({ { 2 }, { 1 } }) do
      local r = run(tf.nn.l2_normalize(x, axes[1]))
      local s = ref_reduce(v, shape, axes, true, 0, function(a, b) return a + b * b end)
      local e = {}
      each_index(shape, function(idx)
        local k = axes[1] == 2 and idx[1] or idx[2]
        local f = (idx[1] - 1) * 4 + idx[2]
        e[f] = v[f] / math.sqrt(math.max(s[k], 1e-12))
      end)
      assert_close(e, flat_of(r), 1e-12)
    end
    local all = run(tf.nn.l2_normalize(x))
    local tot = 0
    for _, a in ipairs(v) do tot = tot + a * a end
    local e = {}
    for i, a in ipairs(v) do e[i] = a / math.sqrt(tot) end
    assert_close(e, flat_of(all), 1e-12)
    assert_close({ 0, 0 }, flat_of(run(tf.nn.l2_normalize(tf.zeros({ 2 }), 1))), 0)
    check_gradient(function(p) return tf.nn.l2_normalize(p, { dim = 2 }) end, { { { 3, 4 } } })
  end)
end)

describe("tf.clip_by_norm", function()
  it("clips over axes as TF and has a zero (not NaN) gradient at a zero tensor", function()
    local x, v = rand_const({ 3, 4 })
    local r = run(tf.clip_by_norm(x, 1.5, { 2 }))
    local e = {}
    for i = 0, 2 do
      local s = 0
      for j = 1, 4 do s = s + v[i * 4 + j] ^ 2 end
      for j = 1, 4 do e[i * 4 + j] = v[i * 4 + j] * 1.5 / math.max(math.sqrt(s), 1.5) end
    end
    assert_close(e, flat_of(r), 1e-12)
    local z = tf.zeros({ 3 }, "float64")
    local g = flat_of(run(tf.gradients(tf.reduce_sum(tf.clip_by_norm(z, 1.0)), z)[1]))
    assert_close({ 1, 1, 1 }, g, 0)
    check_gradient(function(p) return tf.clip_by_norm(p, 0.5, { 1 }) end, { { { 3, 2 } } })
  end)
end)

-- ---------------------------------------------------------------- masks

describe("tf.sequence_mask", function()
  local function ref(lengths, maxlen)
    local t = {}
    for i, n in ipairs(lengths) do
      t[i] = {}
      for j = 1, maxlen do t[i][j] = j <= n end
    end
    return t
  end

  it("marks the first lengths[i] entries of each row, maxlen given or the largest length", function()
    local lengths = {}
    for i = 1, 6 do lengths[i] = math.random(0, 7) end
    assert.are.same(ref(lengths, 9), run(tf.sequence_mask(lengths, 9)):totable())
    local m = 0
    for _, n in ipairs(lengths) do m = math.max(m, n) end
    assert.are.same(ref(lengths, m), run(tf.sequence_mask(lengths)):totable())
  end)

  it("takes run-time lengths and maxlen (placeholders), and a dtype", function()
    local l = tf.placeholder("int32", { -1 })
    local ml = tf.placeholder("int32", {})
    local lengths = { 3, 0, 5, 1 }
    local sess <close> = tf.Session()
    assert.are.same(ref(lengths, 5), sess:run(tf.sequence_mask(l), { [l] = lengths }):totable())
    assert.are.same(ref(lengths, 7), sess:run(tf.sequence_mask(l, ml), { [l] = lengths, [ml] = 7 }):totable())
    local f = sess:run(tf.sequence_mask(l, 6, { dtype = "float32" }), { [l] = lengths })
    assert.are.equal("float32", f.dtype)
    assert.are.same({ 1, 1, 1, 0, 0, 0 }, f:totable()[1])
  end)

  it("keeps the shape of rank-2 lengths", function()
    local r = run(tf.sequence_mask({ { 1, 2 }, { 3, 0 } }, 3))
    assert.are.same({ { { true, false, false }, { true, true, false } }, { { true, true, true }, { false, false, false } } },
                    r:totable())
  end)

  it("refuses bad maxlen and lengths naming the parameter", function()
    local ok, err = pcall(tf.sequence_mask, { 1, 2 }, -1)
    assert.is_false(ok)
    assert.matches("maxlen", tostring(err))
    ok, err = pcall(tf.sequence_mask, tf.constant({ 1.5 }))
    assert.is_false(ok)
    assert.matches("lengths", tostring(err))
  end)
end)

describe("tf.matrix_band_part", function()
  local function ref(v, shape, lo, up)
    local m, n = shape[#shape - 1], shape[#shape]
    local e = {}
    for f = 1, #v do
      local k = (f - 1) % (m * n)
      local i, j = k // n, k % n
      local keep = (lo < 0 or i - j <= lo) and (up < 0 or j - i <= up)
      e[f] = keep and v[f] or 0
    end
    return e
  end

  it("keeps the band of each innermost matrix, for static, tensor and run-time sizes, with gradients", function()
    local shape = { 2, 4, 5 }
    local x, v = rand_const(shape)
    for _, b in ipairs({ { 0, 0 }, { 1, 2 }, { -1, 0 }, { 0, -1 }, { 2, -1 }, { -1, -1 } }) do
      assert_close(ref(v, shape, b[1], b[2]), flat_of(run(tf.matrix_band_part(x, b[1], b[2]))), 0)
      assert_close(ref(v, shape, b[1], b[2]),
                   flat_of(run(tf.linalg.band_part(x, tf.constant(b[1]), tf.constant(b[2])))), 0)
    end
    local p = tf.placeholder("float64", { -1, -1 })
    local m = { { 1, 2, 3 }, { 4, 5, 6 }, { 7, 8, 9 }, { 10, 11, 12 } }
    assert.are.same({ { 1, 2, 0 }, { 4, 5, 6 }, { 0, 8, 9 }, { 0, 0, 12 } },
                    run(tf.matrix_band_part(p, 1, 1), { [p] = tf.array(m, "float64") }):totable())
    check_gradient(function(q) return tf.matrix_band_part(q, 1, 0) end, { { { 2, 3, 3 } } })
  end)
end)

-- ---------------------------------------------------------------- einsum

-- A reference einsum: loops over every assignment of the letters.
local function ref_einsum(eq, operands)
  local lhs, rhs = eq:match("^(.-)%->(.*)$")
  local terms = {}
  for t in (lhs .. ","):gmatch("([^,]*),") do terms[#terms + 1] = t end
  local size, order = {}, {}
  for k, t in ipairs(terms) do
    for p = 1, #t do
      local ch = t:sub(p, p)
      if not size[ch] then order[#order + 1] = ch end
      size[ch] = operands[k].shape[p]
    end
  end
  local oshape = {}
  for p = 1, #rhs do oshape[p] = size[rhs:sub(p, p)] end
  local out = {}
  for i = 1, numel(oshape) do out[i] = 0 end
  local all = {}
  for i, ch in ipairs(order) do all[i] = size[ch] end
  local ost = strides(oshape)
  each_index(all, function(idx)
    local val = {}
    for i, ch in ipairs(order) do val[ch] = idx[i] end
    local prod = 1
    for k, t in ipairs(terms) do
      local st, f = strides(operands[k].shape), 1
      for p = 1, #t do f = f + (val[t:sub(p, p)] - 1) * st[p] end
      prod = prod * operands[k].v[f]
    end
    local o = 1
    for p = 1, #rhs do o = o + (val[rhs:sub(p, p)] - 1) * ost[p] end
    out[o] = out[o] + prod
  end)
  return out, oshape
end

describe("tf.einsum", function()
  local cases = {
    { "ij,jk->ik", { { 3, 4 }, { 4, 2 } } },
    { "bij,bjk->bik", { { 2, 3, 4 }, { 2, 4, 5 } } },
    { "ij->ji", { { 3, 4 } } },
    { "ij->i", { { 3, 4 } } },
    { "ij->", { { 3, 4 } } },
    { "i,j->ij", { { 3 }, { 4 } } },
    { "bi,bi->b", { { 5, 3 }, { 5, 3 } } },
    { "ij,ij->ij", { { 2, 3 }, { 2, 3 } } },
    { "bij,jk->bik", { { 2, 3, 4 }, { 4, 2 } } },
    { "ij,kj->ik", { { 3, 4 }, { 2, 4 } } },
    { "bhqd,bhkd->bhqk", { { 2, 2, 3, 4 }, { 2, 2, 5, 4 } } },
    { "abc,cd,de->ae", { { 2, 3, 4 }, { 4, 2 }, { 2, 3 } } },
    { "ij,jk->ki", { { 2, 3 }, { 3, 4 } } },
    { "ik,jk->", { { 2, 3 }, { 4, 3 } } },
  }
  for _, c in ipairs(cases) do
    it(c[1] .. " matches a loop over the letters, gradients included", function()
      local ts, ops = {}, {}
      for k, shape in ipairs(c[2]) do
        local t, v = rand_const(shape)
        ts[k], ops[k] = t, { shape = shape, v = v }
      end
      local r = run(tf.einsum(c[1], table.unpack(ts)))
      local e, shape = ref_einsum(c[1], ops)
      assert.are.same(shape, r:shape())
      assert_close(e, flat_of(r), 1e-12)
      local specs = {}
      for k, shape_k in ipairs(c[2]) do specs[k] = { shape_k } end
      check_gradient(function(...) return tf.einsum(c[1], ...) end, specs)
    end)
  end

  it("takes the implicit output (letters used once, sorted) and a name", function()
    local a, av = rand_const({ 3, 4 })
    local b, bv = rand_const({ 4, 2 })
    local r = tf.einsum("ij,jk", a, b, { name = "prod" })
    assert.matches("^prod", r.op.name)
    local e = ref_einsum("ij,jk->ik", { { shape = { 3, 4 }, v = av }, { shape = { 4, 2 }, v = bv } })
    assert_close(e, flat_of(run(r)), 1e-12)
  end)

  it("works with an unknown batch dimension", function()
    local p = tf.placeholder("float64", { -1, 3, 4 })
    local w, wv = rand_const({ 4, 2 })
    local xv = draw(24, -1, 1)
    local r = run(tf.einsum("bij,jk->bik", p, w), { [p] = tf.array(nest(xv, { 2, 3, 4 }), "float64") })
    local e = ref_einsum("bij,jk->bik", { { shape = { 2, 3, 4 }, v = xv }, { shape = { 4, 2 }, v = wv } })
    assert.are.same({ 2, 3, 2 }, r:shape())
    assert_close(e, flat_of(r), 1e-12)
  end)

  it("refuses unsupported and malformed equations clearly", function()
    local x = tf.zeros({ 3, 3 })
    for _, bad in ipairs({ { "ii->i", "not supported" }, { "...ij->...ji", "not supported" },
                           { "ij,jk->ik", "2 operand" }, { "ijk->ij", "rank" }, { "ij->iz", "no operand" },
                           { "i-j", "malformed" } }) do
      local ok, err = pcall(tf.einsum, bad[1], x)
      assert.is_false(ok, bad[1])
      assert.matches("tf.einsum", tostring(err))
      assert.matches(bad[2], tostring(err), 1, true)
    end
    assert.has_error(function() tf.einsum("ij,jk->ik", tf.zeros({ 2, 3 }), tf.zeros({ 4, 2 })) end)
    assert.has_error(function() tf.einsum(tf.zeros({ 2 }), tf.zeros({ 2 })) end)
  end)
end)

-- ---------------------------------------------------------------- optimizers

describe("optimizers composed from assigns", function()
  local GRADS = 4
  -- Runs steps of opt on a float64 variable with random gradients fed; returns the trajectory and the grads.
  local function trajectory(make, init, grads)
    tf.reset_default_graph()
    local v = tf.Variable(tf.constant(init, { dtype = "float64" }), { name = "w" })
    local g = tf.placeholder("float64", { #init })
    local opt = make()
    local step = opt:apply_gradients({ { g, v } })
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    local out = {}
    for k = 1, #grads do
      sess:run(step, { [g] = tf.array(grads[k], "float64") })
      out[k] = sess:run(v):totable()
    end
    return out, opt, v
  end

  local function random_run()
    local init, grads = draw(5, -1, 1), {}
    for k = 1, GRADS do grads[k] = draw(5, -1, 1) end
    return init, grads
  end

  it("Adadelta follows TF's ApplyAdadelta rule", function()
    local init, grads = random_run()
    local lr, rho, eps = 0.7, 0.9, 1e-6
    local got = trajectory(function() return tf.train.AdadeltaOptimizer(lr, rho, eps) end, init, grads)
    local var, acc, accu = { table.unpack(init) }, {}, {}
    for i = 1, 5 do acc[i], accu[i] = 0, 0 end
    for k = 1, GRADS do
      for i = 1, 5 do
        local gr = grads[k][i]
        acc[i] = rho * acc[i] + (1 - rho) * gr * gr
        local upd = math.sqrt(accu[i] + eps) / math.sqrt(acc[i] + eps) * gr
        var[i] = var[i] - lr * upd
        accu[i] = rho * accu[i] + (1 - rho) * upd * upd
      end
      assert_close(var, got[k], 1e-12, "step " .. k)
    end
  end)

  local function ftrl_ref(init, grads, lr, p, acc0, l1, l2, shrink)
    local var, acc, lin, traj = { table.unpack(init) }, {}, {}, {}
    for i = 1, #init do acc[i], lin[i] = acc0, 0 end
    for k = 1, #grads do
      for i = 1, #init do
        local gr = grads[k][i]
        local gs = gr + 2 * shrink * var[i]
        local na = acc[i] + gr * gr
        lin[i] = lin[i] + gs - (na ^ -p - acc[i] ^ -p) / lr * var[i]
        local quad = na ^ -p / lr + 2 * l2
        local sign = lin[i] > 0 and 1 or lin[i] < 0 and -1 or 0
        var[i] = math.abs(lin[i]) > l1 and (sign * l1 - lin[i]) / quad or 0
        acc[i] = na
      end
      traj[k] = { table.unpack(var) }
    end
    return traj
  end

  for _, c in ipairs({
    { "the defaults", { 0.3 }, { 0.3, -0.5, 0.1, 0, 0, 0 } },
    { "l1 and l2", { 0.2, { l1_regularization_strength = 0.05, l2_regularization_strength = 0.1 } },
      { 0.2, -0.5, 0.1, 0.05, 0.1, 0 } },
    { "learning_rate_power -0.3", { 0.2, -0.3, 0.5, 0.02, 0.01 }, { 0.2, -0.3, 0.5, 0.02, 0.01, 0 } },
    { "l2 shrinkage", { 0.2, { l1_regularization_strength = 0.01, l2_shrinkage_regularization_strength = 0.2 } },
      { 0.2, -0.5, 0.1, 0.01, 0, 0.2 } },
  }) do
    it("FTRL follows TF's ApplyFtrl rule with " .. c[1], function()
      local init, grads = random_run()
      local got, opt, v = trajectory(function() return tf.train.FtrlOptimizer(table.unpack(c[2])) end, init, grads)
      local e = ftrl_ref(init, grads, table.unpack(c[3]))
      for k = 1, GRADS do assert_close(e[k], got[k], 1e-12, "step " .. k) end
      assert.are.equal("w/Ftrl:0", opt:get_slot(v, "accum").name)
      assert.are.equal("w/Ftrl_1:0", opt:get_slot(v, "linear").name)
    end)
  end

  it("FTRL refuses bad hyperparameters naming them", function()
    local ok, err = pcall(tf.train.FtrlOptimizer, 0.1, { l1_regularization_strength = -1 })
    assert.is_false(ok)
    assert.matches("l1_regularization_strength", tostring(err))
    assert.has_error(function() tf.train.FtrlOptimizer(0.1, 0.5) end)
    assert.has_error(function() tf.train.FtrlOptimizer(0.1, { initial_accumulator_value = 0 }) end)
  end)

  it("Nesterov momentum follows TF's ApplyMomentum rule (use_nesterov)", function()
    local init, grads = random_run()
    local lr, mu = 0.1, 0.9
    local got = trajectory(function() return tf.train.MomentumOptimizer(lr, mu, { use_nesterov = true }) end, init, grads)
    local var, acc = { table.unpack(init) }, { 0, 0, 0, 0, 0 }
    for k = 1, GRADS do
      for i = 1, 5 do
        local gr = grads[k][i]
        acc[i] = acc[i] * mu + gr
        var[i] = var[i] - (gr * lr + acc[i] * mu * lr)
      end
      assert_close(var, got[k], 1e-12, "step " .. k)
    end
  end)

  it("Adadelta and FTRL minimize a quadratic with sparse (embedding) gradients too", function()
    for _, c in ipairs({ { function() return tf.train.AdadeltaOptimizer(1.0) end, "accum", 0 },
                         { function() return tf.train.FtrlOptimizer(0.5) end, "accum", string.unpack("<f", string.pack("<f", 0.1)) } }) do
      local make = c[1]
      tf.reset_default_graph()
      local emb = tf.Variable(tf.constant({ { 1.0, -1.0 }, { 2.0, 0.5 }, { -1.5, 1.0 } }), { name = "emb" })
      local rows = tf.nn.embedding_lookup(emb, { 1, 3 })
      local loss = tf.reduce_sum(tf.square(rows))
      local opt = make()
      local step = opt:minimize(loss)
      local sess <close> = tf.Session()
      sess:run(tf.global_variables_initializer())
      local before = sess:run(loss):item()
      for _ = 1, 30 do sess:run(step) end
      assert.is_true(sess:run(loss):item() < before)
      -- the row not looked up is left alone, slots included (TF's SparseApply*)
      assert.are.same({ 2.0, 0.5 }, sess:run(emb):totable()[2])
      local slot = sess:run(opt:get_slot(emb, c[2])):totable()
      assert.are.same({ c[3], c[3] }, { slot[2][1], slot[2][2] })
      assert.is_true(slot[1][1] ~= c[3])
    end
  end)
end)

-- ---------------------------------------------------------------- initializers

describe("variance-scaling initializers", function()
  local function stats(init, shape, dtype)
    tf.reset_default_graph()
    tf.set_random_seed(7)
    local v = run(init(shape, dtype))
    local n, s, s2, lo, hi = v:numel(), 0, 0, math.huge, -math.huge
    for i = 1, n do
      local a = v:flat(i)
      s, s2, lo, hi = s + a, s2 + a * a, math.min(lo, a), math.max(hi, a)
    end
    local mean = s / n
    return mean, math.sqrt(s2 / n - mean * mean), lo, hi, v
  end

  -- shape {5, 6, 40, 50}: fan_in 5 * 6 * 40 = 1200, fan_out 1500
  local SHAPE, FIN, FOUT = { 5, 6, 40, 50 }, 1200, 1500

  it("tf.variance_scaling_initializer defaults: truncated normal, variance 1 / fan_in", function()
    local mean, sd, lo, hi = stats(tf.variance_scaling_initializer(), SHAPE)
    assert.is_true(math.abs(mean) < 0.002)
    assert.is_true(math.abs(sd / math.sqrt(1 / FIN) - 1) < 0.02, "stddev " .. sd)
    local bound = 2 * math.sqrt(1 / FIN) / 0.87962566103423978
    assert.is_true(lo >= -bound * 1.0001 and hi <= bound * 1.0001)
  end)

  it("takes mode and distribution as TF does", function()
    local _, sd = stats(tf.variance_scaling_initializer(2.0, "fan_out", "untruncated_normal"), SHAPE)
    assert.is_true(math.abs(sd / math.sqrt(2 / FOUT) - 1) < 0.02, "stddev " .. sd)
    local _, sd2, lo, hi = stats(tf.variance_scaling_initializer({ scale = 3.0, mode = "fan_avg",
                                                                   distribution = "uniform" }), SHAPE, "float64")
    local limit = math.sqrt(3 * 3.0 / ((FIN + FOUT) / 2))
    assert.is_true(math.abs(sd2 / (limit / math.sqrt(3)) - 1) < 0.02)
    assert.is_true(lo >= -limit and hi <= limit and hi > 0.99 * limit)
    assert.has_error(function() tf.variance_scaling_initializer(1.0, "fan_sideways") end)
    assert.has_error(function() tf.variance_scaling_initializer(1.0, "fan_in", "cauchy") end)
    assert.has_error(function() tf.variance_scaling_initializer(-1.0) end)
  end)

  it("he_normal (tf.initializers, tf.keras.initializers): truncated, variance 2 / fan_in", function()
    assert.are.equal(tf.initializers.he_normal, tf.keras.initializers.he_normal)
    local _, sd = stats(tf.keras.initializers.he_normal(), SHAPE)
    assert.is_true(math.abs(sd / math.sqrt(2 / FIN) - 1) < 0.02, "stddev " .. sd)
    local _, sd2, lo, hi = stats(tf.initializers.he_uniform(3), SHAPE)
    local limit = math.sqrt(6 / FIN)
    assert.is_true(math.abs(sd2 / (limit / math.sqrt(3)) - 1) < 0.02 and lo >= -limit and hi <= limit)
  end)

  it("contrib.layers.xavier_initializer: uniform limit sqrt(6 / (fan_in + fan_out)), or truncated normal", function()
    local limit = math.sqrt(6 / (FIN + FOUT))
    local _, sd, lo, hi = stats(tf.contrib.layers.xavier_initializer(), SHAPE)
    assert.is_true(lo >= -limit and hi <= limit and hi > 0.99 * limit)
    assert.is_true(math.abs(sd / (limit / math.sqrt(3)) - 1) < 0.02)
    -- contrib's truncated normal has stddev sqrt(1.3 / n) before truncation: about 0.88 of that after
    local _, sd2 = stats(tf.contrib.layers.xavier_initializer(false), SHAPE)
    local expect = math.sqrt(1.3 / ((FIN + FOUT) / 2)) * 0.87962566103423978
    assert.is_true(math.abs(sd2 / expect - 1) < 0.02, "stddev " .. sd2)
  end)

  it("is taken by tf.get_variable", function()
    local w = tf.get_variable("w", { 30, 40 }, { initializer = tf.variance_scaling_initializer() })
    local sess <close> = tf.Session()
    sess:run(tf.global_variables_initializer())
    assert.are.same({ 30, 40 }, sess:run(w):shape())
  end)
end)
